/* gen_privacy_eval.c - writes the privacy evaluation set
 * (tests/privacy_eval.h, seed PE_SEED) as JSON lines: `make
 * privacy-eval-data` regenerates tests/data/privacy_eval.jsonl, which the
 * tests and the benchmark read. A build-time tool; not part of edgeagent.
 * Usage: gen_privacy_eval OUT.jsonl
 */
#include "privacy_eval.h"

struct out {
    FILE *f;
    bool failed, overflow;
};

static void put(const struct pe_text *t, bool negative, void *ud)
{
    struct out *o = ud;
    o->overflow |= t->overflow;
    if (!pe_write_line(o->f, t, negative))
        o->failed = true;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_privacy_eval OUT.jsonl\n");
        return 2;
    }
    struct out o = {fopen(argv[1], "w"), false, false};
    if (!o.f) {
        perror(argv[1]);
        return 1;
    }
    pe_generate(PE_SEED, put, &o);
    if (fclose(o.f) != 0 || o.failed || o.overflow) {
        fprintf(stderr, "gen_privacy_eval: %s\n", o.overflow ? "a text overflowed its buffer" : "write error");
        return 1;
    }
    return 0;
}
