/* fuzz_ledger_journal.c - libFuzzer target for the ledger's row journal
 * reader (EA_TEST_NEEDS_NET: the ledger is built with the server's
 * libraries). The input is a journal file's bytes: ea__journal_parse reads
 * records until one is cut or does not check out; every row it hands over
 * must pass ea_ledger_row_check with finite costs, and it must stop inside
 * the input, after whole records only, counting a stop before the end.
 * Build: make fuzz; run: make fuzz-smoke. Seeds: fuzz/corpus/ledger_journal/. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "ledger/ledger_int.h"

static size_t rows;

static void row(void *ud, uint64_t seq, const struct ea_ledger_row *r)
{
    (void)ud;
    (void)seq;
    struct ea_error e = {0};
    if (ea_ledger_row_check(r, &e) || !isfinite(r->cost_usd) || !isfinite(r->counterfactual_usd))
        abort();
    rows++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rows = 0;
    uint64_t unreadable = 0;
    size_t at = ea__journal_parse(data, size, row, NULL, &unreadable);
    if (at > size || (at < size) != (unreadable == 1) || unreadable > 1)
        abort();
    if (!rows && at) /* bytes read are whole records */
        abort();
    return 0;
}
