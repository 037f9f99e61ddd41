/* cmd_tokenize.c - `edgeagent tokenize -m MODEL [--no-bos] [--ids]
 * [--parse-special] (TEXT | --file F)`: prints the tokens of a text with ids
 * and pieces (llama-tokenize's layout), or only the id list.
 * Does not hold: tokenization itself (src/tokenizer). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "edgeagent/gguf.h"
#include "edgeagent/tokenizer.h"

/* --file / stdin is read whole: 64 MiB is several books, more than anyone
 * inspects token by token, and bounds the id array (4 bytes a token). */
#define MAX_TEXT ((size_t)64 << 20)

static void usage(FILE *f)
{
    fprintf(f, "usage: edgeagent tokenize -m MODEL.gguf [--no-bos] [--ids] [--parse-special] "
               "(TEXT | --file FILE)\n"
               "  --no-bos         do not add BOS/EOS even if the vocabulary asks for them\n"
               "  --ids            print only the ids, as [1, 2, 3]\n"
               "  --parse-special  recognise control tokens such as <|im_start|> in the text\n"
               "  --file FILE      read the text from FILE (- for stdin) instead\n");
}

/* The whole of path (- for stdin), at most MAX_TEXT bytes; NULL after
 * printing why (a directory, a read error, too large, out of memory). */
static char *read_all(const char *path, size_t *n)
{
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) {
        cli_errorf("tokenize", "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && S_ISDIR(st.st_mode)) {
        cli_errorf("tokenize", "%s is a directory, not a text file", path);
        goto fail_close;
    }
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        goto fail_oom;
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_TEXT && fgetc(f) == EOF)
                break; /* exactly MAX_TEXT bytes */
            if (cap >= MAX_TEXT) {
                cli_errorf("tokenize", "%s is larger than %zu MiB", path, MAX_TEXT >> 20);
                goto fail_free;
            }
            char *b = realloc(buf, cap * 2);
            if (!b)
                goto fail_oom;
            buf = b;
            cap *= 2;
        }
        size_t k = fread(buf + len, 1, cap - len, f);
        len += k;
        if (k == 0)
            break;
    }
    if (ferror(f)) {
        cli_errorf("tokenize", "cannot read %s: %s", path, strerror(errno));
        goto fail_free;
    }
    if (!is_stdin)
        fclose(f);
    *n = len;
    return buf;
fail_oom:
    cli_errorf("tokenize", "out of memory reading %s", path);
fail_free:
    free(buf);
fail_close:
    if (!is_stdin)
        fclose(f);
    return NULL;
}

/* Prints a piece quoted, with control characters and invalid bytes escaped. */
static void print_piece(const char *p, size_t n)
{
    putchar('\'');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c == '\\' || c == '\'')
            printf("\\%c", c);
        else if (c < 0x20 || c == 0x7F)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
    putchar('\'');
}

int cmd_tokenize(int argc, char **argv)
{
    const char *model = NULL, *file = NULL, *text = NULL;
    bool ids_only = false;
    unsigned flags = EA_TOK_ADD_SPECIAL;
    const char *models_dir = cli_take_models_dir(&argc, argv);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--no-bos") == 0) {
            flags &= ~EA_TOK_ADD_SPECIAL;
        } else if (strcmp(a, "--ids") == 0) {
            ids_only = true;
        } else if (strcmp(a, "--parse-special") == 0) {
            flags |= EA_TOK_PARSE_SPECIAL;
        } else if (strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0 || strcmp(a, "-f") == 0 ||
                   strcmp(a, "--file") == 0) {
            if (i + 1 >= argc) {
                cli_errorf("tokenize", "option '%s' needs a value", a);
                return 2;
            }
            bool is_model = strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0;
            *(is_model ? &model : &file) = argv[++i];
        } else if (a[0] == '-' && a[1]) {
            cli_errorf("tokenize", "unknown option '%s'", a);
            return 2;
        } else if (text) {
            cli_errorf("tokenize", "give the text as one argument (quote it)");
            return 2;
        } else {
            text = a;
        }
    }
    if (!model || (!text && !file) || (text && file)) {
        usage(stderr);
        return 2;
    }
    char model_path[4096];
    if (!cli_resolve_model("tokenize", model, models_dir, model_path, sizeof model_path))
        return 1;
    model = model_path;
    size_t len = 0;
    char *owned = NULL;
    if (file) {
        owned = read_all(file, &len);
        if (!owned)
            return 1;
        text = owned;
    } else {
        len = strlen(text);
    }

    struct ea_error err = {0};
    ea_gguf *g = NULL;
    ea_tokenizer *t = NULL;
    int rc = 1;
    int32_t *ids = NULL;
    if (ea_gguf_open(model, &g, &err) || ea_tokenizer_create(g, &t, &err)) {
        cli_error("tokenize", &err);
        goto out;
    }
    ea_gguf_close(g);
    g = NULL;
    size_t n = 0, cap = 256;
    for (;;) {
        free(ids);
        ids = malloc(cap * sizeof *ids);
        if (!ids) {
            cli_errorf("tokenize", "out of memory");
            goto out;
        }
        ea_status s = ea_tokenize(t, text, len, flags, ids, cap, &n, &err);
        if (s == EA_ETOOBIG && n > cap) {
            cap = n;
            continue;
        }
        if (s) {
            cli_error("tokenize", &err);
            goto out;
        }
        break;
    }
    if (ids_only) {
        putchar('[');
        for (size_t i = 0; i < n; i++)
            printf("%s%d", i ? ", " : "", ids[i]);
        puts("]");
    } else {
        for (size_t i = 0; i < n; i++) {
            const char *p;
            size_t pn;
            ea_token_piece(t, ids[i], true, &p, &pn);
            printf("%6d -> ", ids[i]);
            print_piece(p, pn);
            putchar('\n');
        }
    }
    rc = 0;
out:
    free(ids);
    free(owned);
    ea_tokenizer_destroy(t);
    ea_gguf_close(g);
    return rc;
}
