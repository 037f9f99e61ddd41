/* cmd_gen_model.c - `edgeagent gen-model`: writes a deterministic random
 * model of a real model's shape (see src/model/gen_model.c). */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "edgeagent/gguf.h"
#include "edgeagent/kernels.h"
#include "edgeagent/model.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: edgeagent gen-model --preset P [--type T] [--seed S] [--vocab VOCAB.gguf] "
               "-o FILE\n  presets:");
    for (unsigned i = 0; ea_model_preset_at(i); i++)
        fprintf(f, " %s", ea_model_preset_at(i)->name);
    fprintf(f, "\n  types:  ");
    for (unsigned i = 0; ea_ftype_at(i); i++)
        fprintf(f, " %s", ea_ftype_at(i)->name);
    fprintf(f, " (default F16)\n  seed:    default 1\n");
}

int cmd_gen_model(int argc, char **argv)
{
    struct ea_gen_params p = {.ftype = "F16", .seed = 1};
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            cli_errorf("gen-model", "option '%s' needs a value (or is unknown)", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--preset") == 0)
            p.preset = v;
        else if (strcmp(a, "--type") == 0) {
            if (!ea_ftype_find(v)) {
                cli_errorf("gen-model", "--type %s is not a type gen-model can write", v);
                return 2;
            }
            p.ftype = v;
        } else if (strcmp(a, "--seed") == 0) {
            if (!cli_parse_u64("gen-model", "--seed", v, &p.seed))
                return 2;
        } else if (strcmp(a, "--vocab") == 0)
            p.vocab_path = v;
        else if (strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0)
            out = v;
        else {
            cli_errorf("gen-model", "unknown option '%s'", a);
            return 2;
        }
    }
    if (!p.preset || !out) {
        usage(stderr);
        return 2;
    }
    struct ea_error err = {0};
    if (ea_model_generate(&p, out, &err) != EA_OK) {
        cli_error("gen-model", &err);
        return 1;
    }
    return 0;
}
