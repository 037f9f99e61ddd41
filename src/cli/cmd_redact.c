/* cmd_redact.c - `edgeagent redact [--config FILE] [--json] (TEXT | --file F
 * | -)`: the text with each detected value replaced by its placeholder
 * (<EMAIL_1>), with the same engine the server uses, so that users can
 * check what would leave the device; --json prints {"text", "entities":
 * [{"type", "start", "end", "placeholder"}]} with byte offsets into the
 * input. Exit status: 0, 1 on a failure (bad configuration, unreadable
 * file, detection error), 2 on bad usage.
 * Does not hold: detection or redaction (src/privacy/), the YAML reader
 * (src/router/).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "edgeagent/privacy.h"
#include "util/buf.h"
#ifdef EA_HAVE_NET
#include "edgeagent/router.h"
#endif

#define REDACT_MAX_TEXT ((size_t)64 << 20)   /* --file / stdin: EA_PRIVACY_MAX_TEXT */
#define REDACT_JSON_MAX ((size_t)512 << 20)  /* the --json document */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: edgeagent redact [--config FILE] [--json] (TEXT | --file FILE | -)\n"
            "  --config FILE   edgeagent.yaml: its privacy: section (types, threshold, names,\n"
            "                  allow, custom patterns and deny lists)\n"
            "  --json          {\"text\": ..., \"entities\": [{\"type\", \"start\", \"end\",\n"
            "                  \"placeholder\"}]} (byte offsets into the input)\n"
            "  --file FILE     read the text from FILE; - reads stdin\n"
            "Prints the text with each detected value replaced by a typed placeholder\n"
            "(<EMAIL_1>); the same value gets the same placeholder. See docs/PRIVACY.md.\n");
}

static ea_status make_detector(const char *config, ea_privacy_detector **d, struct ea_error *err)
{
    if (!config)
        return ea_privacy_detector_create(NULL, NULL, d, err);
#ifdef EA_HAVE_NET
    struct ea_router_config *cfg = NULL;
    ea_status s = ea_router_config_load(config, &cfg, err);
    if (!s)
        s = ea_privacy_detector_create(cfg->privacy, cfg->file, d, err);
    ea_router_config_destroy(cfg);
    return s;
#else
    return ea_error_set(err, EA_EUNSUPPORTED,
                        "--config: this build has no YAML reader (libyaml was missing at configure time)");
#endif
}

static int print_json(const ea_privacy_detector *d, const ea_privacy_map *m, const char *red,
                      size_t red_len, const struct ea_privacy_entities *e)
{
    struct ea_buf b;
    ea__buf_init(&b, REDACT_JSON_MAX);
    char ph[EA_PRIVACY_MAX_PLACEHOLDER];
    ea_status s = ea__buf_puts(&b, "{\"text\": ");
    if (!s)
        s = ea__buf_json_str(&b, red, red_len);
    if (!s)
        s = ea__buf_puts(&b, ", \"entities\": [");
    for (size_t i = 0; i < e->n && !s; i++) {
        const struct ea_privacy_entity *x = &e->v[i];
        s = ea__buf_printf(&b, "%s{\"type\": \"%s\", \"start\": %zu, \"end\": %zu, \"placeholder\": \"%s\"}",
                           i ? ", " : "", ea_privacy_type_name(d, x->type), x->start, x->end,
                           ea_privacy_placeholder(m, x->type, x->number, ph, sizeof ph));
    }
    if (!s)
        s = ea__buf_puts(&b, "]}\n");
    if (s) {
        ea__buf_release(&b);
        cli_errorf("redact", "the JSON output is too large or memory ran out");
        return 1;
    }
    fwrite(b.data, 1, b.len, stdout);
    ea__buf_release(&b);
    return 0;
}

int cmd_redact(int argc, char **argv)
{
    const char *config = NULL, *file = NULL, *text = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--config") && v) {
            config = argv[++i];
        } else if (!strcmp(a, "--file") && v) {
            file = argv[++i];
        } else if (!strcmp(a, "-")) {
            file = "-";
        } else if (a[0] == '-' && a[1] == '-') {
            cli_errorf("redact", "unknown option or missing value: '%s' (see --help)", a);
            return 2;
        } else if (!text) {
            text = a;
        } else {
            cli_errorf("redact", "one text only (quote it, or use --file)");
            return 2;
        }
    }
    if (!!text + !!file != 1) {
        cli_errorf("redact", "give the text, --file FILE or - (stdin), exactly one of them");
        return 2;
    }
    struct ea_error err = {0};
    char *owned = NULL;
    size_t len = text ? strlen(text) : 0;
    if (file && !(owned = cli_read_file(strcmp(file, "-") ? file : "/dev/stdin", REDACT_MAX_TEXT, &len, &err))) {
        cli_error("redact", &err);
        return 1;
    }
    const char *in = owned ? owned : text;
    ea_privacy_detector *d = NULL;
    ea_privacy_map *m = NULL;
    struct ea_privacy_entities ents = {0};
    char *red = NULL;
    size_t red_len = 0;
    int rc = 1;
    if (make_detector(config, &d, &err) || ea_privacy_map_create(d, &m, &err) ||
        ea_privacy_redact(d, m, in, len, EA_PRIVACY_PLAIN, &red, &red_len, &ents, &err)) {
        cli_error("redact", &err);
        goto out_free;
    }
    if (json) {
        rc = print_json(d, m, red, red_len, &ents);
    } else {
        fwrite(red, 1, red_len, stdout);
        if (text && (!red_len || red[red_len - 1] != '\n'))
            putchar('\n');
        rc = 0;
    }
out_free:
    ea_free(red);
    ea_privacy_entities_release(&ents);
    ea_privacy_map_destroy(m);
    ea_privacy_detector_destroy(d);
    free(owned);
    return rc;
}
