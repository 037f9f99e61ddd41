/* journal.c - the ledger's row journal: each recorded row is appended, in
 * one write(), to ledger.journal.0 or ledger.journal.1 in the data
 * directory by the thread that records it, so that the row is durable when
 * ea_ledger_record_notify returns (like the database under WAL with
 * synchronous=NORMAL: it survives the process being killed, not a power
 * cut; no fsync). The writer thread then commits rows to SQLite in batches,
 * at its own pace, with the newest committed journal sequence number
 * (sync_state 'journal_seq') in the same transaction; a journal file whose
 * rows are all committed is emptied. Appends go to one file until it holds
 * EA__JOURNAL_SWITCH_BYTES and the other is empty, so that one file can be
 * emptied while rows keep arriving. At open, the rows of both files past
 * the committed sequence number are replayed into the database.
 *
 * A record: a header (magic, payload size, sequence number, checksum of
 * the rest) and the row as the struct's bytes. The format is this build's:
 * a journal written by a build with another row layout is refused record
 * by record (the size or the checks differ) and counted as unreadable.
 * Reading stops at the first record of a file that is cut or does not
 * check out (a write the process did not live to finish).
 *
 * Thread safety: append and release run under the ledger's queue lock;
 * open/replay/close before the writer starts and after it stopped.
 * Does not hold: the queue, the writer thread, SQL (ledger.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ledger/ledger_int.h"

#define JOURNAL_MAGIC 0x314a4145u /* "EAJ1" */

struct journal_head {
    uint32_t magic;
    uint32_t size; /* payload bytes: sizeof(struct ea_ledger_row) */
    uint64_t seq;
    uint64_t sum; /* FNV-1a of size, seq and the payload */
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t record_sum(uint32_t size, uint64_t seq, const void *payload)
{
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv(h, &size, sizeof size);
    h = fnv(h, &seq, sizeof seq);
    return fnv(h, payload, size);
}

/* A payload's bytes as a row, when every field is one a row may hold
 * (strings terminated in their arrays, the flag 0 or 1, the figures
 * finite; then ea_ledger_row_check). */
static bool row_from_bytes(const unsigned char *p, struct ea_ledger_row *row)
{
    unsigned char flag = p[offsetof(struct ea_ledger_row, estimated)];
    if (flag > 1)
        return false;
    memcpy(row, p, sizeof *row);
    struct ea_error e = {0};
    if (ea_ledger_row_check(row, &e))
        return false;
    return isfinite(row->cost_usd) && row->cost_usd >= 0 && isfinite(row->counterfactual_usd) &&
           row->counterfactual_usd >= 0;
}

size_t ea__journal_parse(const unsigned char *p, size_t n, ea__journal_row_fn fn, void *ud, uint64_t *unreadable)
{
    size_t at = 0;
    struct ea_ledger_row row;
    while (n - at >= sizeof(struct journal_head)) {
        struct journal_head h;
        memcpy(&h, p + at, sizeof h);
        if (h.magic != JOURNAL_MAGIC || h.size != sizeof row || n - at - sizeof h < h.size ||
            h.sum != record_sum(h.size, h.seq, p + at + sizeof h) || !row_from_bytes(p + at + sizeof h, &row))
            break;
        if (fn)
            fn(ud, h.seq, &row);
        at += sizeof h + h.size;
    }
    if (at < n && unreadable)
        (*unreadable)++;
    return at;
}

static void journal_path(const char *dir, int k, char *out, size_t size)
{
    snprintf(out, size, "%s%s%s.%d", dir, dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/", EA__JOURNAL_FILE, k);
}

ea_status ea__journal_open(struct ea__journal *j, const char *dir, struct ea_error *err)
{
    memset(j, 0, sizeof *j);
    j->fd[0] = j->fd[1] = -1;
    for (int k = 0; k < 2; k++) {
        char path[EA__JOURNAL_PATH_MAX];
        journal_path(dir, k, path, sizeof path);
        j->fd[k] = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (j->fd[k] < 0) {
            ea_status s = ea_error_set(err, EA_EIO, "ledger journal %s: %s", path, strerror(errno));
            ea__journal_close(j);
            return s;
        }
        /* one writer per data directory: two would empty each other's files */
        if (k == 0 && flock(j->fd[0], LOCK_EX | LOCK_NB) != 0) {
            ea_status s = ea_error_set(err, errno == EWOULDBLOCK ? EA_ESTATE : EA_EIO,
                                       "ledger journal %s: %s", path,
                                       errno == EWOULDBLOCK ? "another process is writing this ledger"
                                                            : strerror(errno));
            ea__journal_close(j);
            return s;
        }
    }
    return EA_OK;
}

void ea__journal_close(struct ea__journal *j)
{
    for (int k = 0; k < 2; k++)
        if (j->fd[k] >= 0) {
            close(j->fd[k]);
            j->fd[k] = -1;
        }
}

ea_status ea__journal_read(struct ea__journal *j, ea__journal_row_fn fn, void *ud, uint64_t *unreadable,
                           struct ea_error *err)
{
    for (int k = 0; k < 2; k++) {
        struct stat sb;
        if (fstat(j->fd[k], &sb) != 0)
            return ea_error_set(err, EA_EIO, "ledger journal: %s", strerror(errno));
        if (sb.st_size == 0)
            continue;
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, j->fd[k], 0);
        if (m == MAP_FAILED)
            return ea_error_set(err, EA_EIO, "ledger journal: %s", strerror(errno));
        ea__journal_parse(m, (size_t)sb.st_size, fn, ud, unreadable);
        munmap(m, (size_t)sb.st_size);
    }
    return EA_OK;
}

ea_status ea__journal_reset(struct ea__journal *j, struct ea_error *err)
{
    for (int k = 0; k < 2; k++) {
        if (ftruncate(j->fd[k], 0) != 0)
            return ea_error_set(err, EA_EIO, "ledger journal: emptying: %s", strerror(errno));
        j->bytes[k] = 0;
        j->last_seq[k] = 0;
    }
    j->cur = 0;
    return EA_OK;
}

bool ea__journal_append(struct ea__journal *j, uint64_t seq, const struct ea_ledger_row *row)
{
    if (j->fd[0] < 0)
        return false;
    int o = 1 - j->cur;
    if (j->bytes[j->cur] >= EA__JOURNAL_SWITCH_BYTES && j->bytes[o] == 0)
        j->cur = o;
    int c = j->cur;
    unsigned char rec[sizeof(struct journal_head) + sizeof *row];
    struct journal_head h = {JOURNAL_MAGIC, (uint32_t)sizeof *row, seq, 0};
    memcpy(rec + sizeof h, row, sizeof *row);
    h.sum = record_sum(h.size, seq, rec + sizeof h);
    memcpy(rec, &h, sizeof h);
    ssize_t w = write(j->fd[c], rec, sizeof rec);
    if (w == (ssize_t)sizeof rec) {
        j->bytes[c] += sizeof rec;
        j->last_seq[c] = seq;
        return true;
    }
    /* a short write (disk full) would hide the records after it: undone
     * (when even that fails, reading stops at the cut record) */
    if (w > 0 && ftruncate(j->fd[c], (off_t)j->bytes[c]) != 0) {
    }
    return false;
}

void ea__journal_release(struct ea__journal *j, uint64_t committed)
{
    for (int k = 0; k < 2; k++) {
        if (!j->bytes[k] || j->last_seq[k] > committed)
            continue;
        /* the current file only once it is worth it: appends keep going */
        if (k == j->cur && j->bytes[k] < EA__JOURNAL_SWITCH_BYTES)
            continue;
        if (ftruncate(j->fd[k], 0) == 0) {
            j->bytes[k] = 0;
            j->last_seq[k] = 0;
        }
    }
}
