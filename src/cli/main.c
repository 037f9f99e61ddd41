/* main.c - entry point of the edgeagent binary: picks the subcommand and
 * holds the shared CLI helpers. The only place that turns errors into exit
 * codes. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

static const struct command commands[] = {
    {"pull", cmd_pull, "download a model into the store (name, hf.co/ORG/REPO[:QUANT], URL)"},
    {"list", cmd_list, "list the models in the store"},
    {"show", cmd_show, "a stored model's manifest and what inspect says of it"},
    {"rm", cmd_rm, "remove a model from the store"},
    {"inspect", cmd_inspect, "show a GGUF file's metadata, tensors and architecture"},
    {"gen-model", cmd_gen_model, "write a deterministic random-weight model of a real shape"},
    {"quantize", cmd_quantize, "convert a model's weights to a quantized type (llama.cpp mixes)"},
    {"run", cmd_run, "generate text or chat with a model in the terminal"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server with streaming, metrics and a chat page"},
    {"route", cmd_route, "recommend EDGE, CLOUD or HYBRID for a task profile, with the reasons"},
    {"report", cmd_report, "the ledger's figures: requests, latency, cost and savings per source"},
    {"redact", cmd_redact, "replace personal data and secrets in a text by typed placeholders"},
    {"audit", cmd_audit, "the privacy audit of a running server: recent requests, policy, destination"},
    {"bench", cmd_bench, "measure prompt and generation throughput of a model"},
    {"perplexity", cmd_perplexity, "perplexity of a model over a text file (llama.cpp method)"},
    {"tokenize", cmd_tokenize, "show the tokens of a text under a model's vocabulary"},
    {"convert-tokenizer", cmd_convert_tokenizer, "turn a Hugging Face tokenizer.json into a vocab GGUF"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: edgeagent <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-18s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'edgeagent <command> --help' shows a command's options.\n");
}

static void print_clean_line(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        fputc(c < 0x20 || c == 0x7F ? '?' : c, stderr);
    }
    fputc('\n', stderr);
}

void cli_error(const char *cmd, const struct ea_error *err)
{
    char line[EA_ERROR_MSG_MAX + 64];
    snprintf(line, sizeof line, "edgeagent: %s: %s", cmd,
             err->msg[0] ? err->msg : ea_status_message(err->status));
    print_clean_line(line);
}

void cli_errorf(const char *cmd, const char *fmt, ...)
{
    char msg[EA_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char line[EA_ERROR_MSG_MAX + 64];
    snprintf(line, sizeof line, "edgeagent: %s: %s", cmd, msg);
    print_clean_line(line);
}

bool cli_parse_u64(const char *cmd, const char *opt, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-') {
        cli_errorf(cmd, "%s needs a non-negative integer", opt);
        return false;
    }
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end) {
        cli_errorf(cmd, "%s: '%s' is not a non-negative integer", opt, s);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_range(const char *cmd, const char *opt, const char *s, uint64_t min, uint64_t max,
                     uint64_t *out)
{
    uint64_t v;
    if (!cli_parse_u64(cmd, opt, s, &v))
        return false;
    if (v < min || v > max) {
        cli_errorf(cmd, "%s must be in %" PRIu64 "..%" PRIu64 " (got %s)", opt, min, max, s);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_f64_range(const char *cmd, const char *opt, const char *s, double min,
                         bool min_open, double max, double *out)
{
    double v;
    if (!cli_parse_f64(cmd, opt, s, &v))
        return false;
    if (!(min_open ? v > min : v >= min) || !(v <= max)) {
        cli_errorf(cmd, "%s must be in %c%g, %g] (got %s)", opt, min_open ? '(' : '[', min, max, s);
        return false;
    }
    *out = v;
    return true;
}

bool cli_parse_f64(const char *cmd, const char *opt, const char *s, double *out)
{
    char *end;
    errno = 0;
    if (!s || !*s) {
        cli_errorf(cmd, "%s needs a number", opt);
        return false;
    }
    double v = strtod(s, &end);
    if (errno || *end) {
        cli_errorf(cmd, "%s: '%s' is not a number", opt, s);
        return false;
    }
    *out = v;
    return true;
}

const char *cli_thousands(uint64_t v, char *buf, unsigned size)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%" PRIu64, v);
    unsigned o = 0;
    for (int i = 0; i < n && o + 2 < size; i++) {
        if (i && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("edgeagent 0.1.0\n");
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return cli_env_read() ? commands[i].run(argc - 1, argv + 1) : 2;
    fprintf(stderr, "edgeagent: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
