/* ledger_int.h - what the ledger's files share and nothing outside uses:
 * the handle's layout (database connections, the writer's queue, budget
 * counters) and the helpers between ledger.c, budget.c and report.c.
 * Does not hold: the public API (include/edgeagent/ledger.h).
 */
#ifndef EDGEAGENT_LEDGER_INT_H
#define EDGEAGENT_LEDGER_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "edgeagent/ledger.h"

#define EA__LEDGER_FILE "ledger.db"
#define EA__LEDGER_BATCH_MAX 512      /* rows per transaction at most */
#define EA__LEDGER_BUSY_MS 5000       /* how long a connection waits for a lock (default) */
#define EA__LEDGER_BUSY_TRIES 4       /* busy timeouts a batch waits before it is given up */
#define EA__LEDGER_WRITER_NICE 10     /* the writer thread's priority below the others' */
#define EA__MS_PER_DAY 86400000LL
#define EA__MS_PER_MINUTE 60000LL
#define EA__MS_PER_SECOND 1000LL
#define EA__LEDGER_MMAP_BYTES (1LL << 30) /* address space, not memory: pages stay in the page cache */

/* One cap's counters (spend is cloud-tier cost in the current period). */
struct ea__budget {
    char task[EA_LEDGER_NAME_MAX + 1]; /* "" = global */
    struct ea_ledger_caps caps;
    enum ea_budget_action action;
    double spent_day, spent_month, reserved;
    uint64_t active; /* reservations held: at 0, reserved is set to exactly 0 */
};

/* One rollup_minute row being summed from a batch. */
struct ea__rollup {
    int64_t minute;
    enum ea_upstream_tier tier;
    char task[EA_LEDGER_NAME_MAX + 1], upstream[EA_LEDGER_NAME_MAX + 1];
    uint64_t requests, ok, estimated, fallbacks, requests_with_fallback, hedges, attempts;
    uint64_t prompt_tokens, completion_tokens, cached_prompt_tokens;
    double cost_usd, counterfactual_usd;
};

/* One rollup_privacy row being summed from a batch. */
struct ea__entity_sum {
    int64_t minute;
    char type[EA_LEDGER_ENTITY_NAME_MAX + 1];
    uint64_t count;
};

/* A queued row's completion callback (ea_ledger_record_notify) and its
 * journal sequence number. */
struct ea__ledger_notify {
    ea_ledger_done_fn fn; /* NULL: none */
    void *user;
    uint64_t seq;         /* 0: not in the journal */
};

/* ---- the row journal (journal.c) ---- */
#define EA__JOURNAL_FILE "ledger.journal"   /* + ".0" / ".1" */
#define EA__JOURNAL_SWITCH_BYTES (1u << 20) /* a file this full is emptied once its rows are committed */
#define EA__JOURNAL_PATH_MAX 4352           /* a data directory path and the file name */
#define EA__LEDGER_COMMIT_MS 100            /* journaled rows wait at most this long for a batch */

struct ea__journal {
    int fd[2];            /* -1: no journal (read-only ledger) */
    size_t bytes[2];      /* what each file holds */
    uint64_t last_seq[2]; /* the newest row in each file */
    int cur;              /* the file appends go to */
};

typedef void (*ea__journal_row_fn)(void *ud, uint64_t seq, const struct ea_ledger_row *row);
/* Opens (creating) both files of dir and takes the data directory's writer
 * lock (EA_ESTATE when another process holds it). */
ea_status ea__journal_open(struct ea__journal *j, const char *dir, struct ea_error *err);
void ea__journal_close(struct ea__journal *j);
/* Calls fn for every readable record of both files; *unreadable counts the
 * files whose reading stopped before their end. */
ea_status ea__journal_read(struct ea__journal *j, ea__journal_row_fn fn, void *ud, uint64_t *unreadable,
                           struct ea_error *err);
/* The records of p[0, n) in order, until one is cut or does not check out;
 * returns the bytes read and counts a stop before n in *unreadable. */
size_t ea__journal_parse(const unsigned char *p, size_t n, ea__journal_row_fn fn, void *ud, uint64_t *unreadable);
/* Empties both files. */
ea_status ea__journal_reset(struct ea__journal *j, struct ea_error *err);
/* Appends row as sequence number seq; false when it could not be written
 * whole (nothing of it is left in the file then). */
bool ea__journal_append(struct ea__journal *j, uint64_t seq, const struct ea_ledger_row *row);
/* Empties the files whose rows are all committed (seq <= committed). */
void ea__journal_release(struct ea__journal *j, uint64_t committed);

struct ea_ledger {
    char *dir, *path;
    struct ea_ledger_config cfg; /* a deep copy */
    bool read_only;
    uint32_t busy_ms;
    int64_t (*clock_ms)(void *ud);
    void *clock_ud;

    /* the report reader's connection (its own, so the writer never waits) */
    sqlite3 *rdb;
    pthread_mutex_t rmu;

    /* the writer: wdb and ins are used by the writer thread only (and by
     * open before it starts) */
    sqlite3 *wdb;
    sqlite3_stmt *ins, *rollup, *privacy, *begin, *commit;
    struct ea__rollup *sums;     /* EA__LEDGER_BATCH_MAX */
    struct ea__entity_sum *entity_sums; /* EA__LEDGER_BATCH_MAX x EA_LEDGER_ENTITY_TYPES */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t qmu;
    pthread_cond_t qcond;    /* rows arrived, or stop */
    pthread_cond_t donecond; /* a batch finished */
    struct ea_ledger_row *ring, *batch;
    struct ea__ledger_notify *ring_done, *batch_done; /* parallel to ring and batch */
    size_t cap, head, count;
    bool stop;
    uint64_t accepted, finished; /* rows queued since open; rows committed or failed */
    /* the journal (under qmu): rows are durable once appended; the writer
     * commits them every EA__LEDGER_COMMIT_MS (commit_ms) unless a queued
     * row waits for its commit (waiting: its append failed) or a flush
     * asks (flushers) */
    struct ea__journal j;
    uint64_t seq, committed_seq; /* the last appended; the newest committed */
    uint32_t commit_ms;
    size_t waiting, flushers;
    sqlite3_stmt *watermark;     /* sync_state 'journal_seq' (writer thread) */
    struct ea_ledger_stats st;

    /* the summary sync (sync.c); NULL when not started */
    struct ea__sync *sync;

    /* budgets, under bmu */
    pthread_mutex_t bmu;
    int64_t day, month;          /* the periods the counters hold */
    struct ea__budget global;
    struct ea__budget *tasks;    /* cfg.n_tasks, same order */
};

/* The ledger's clock: Unix ms, UTC. */
int64_t ea__ledger_now(const ea_ledger *l);
/* The UTC day index (days since 1970-01-01) and month index (year*12 +
 * month0) of t, and the first millisecond of t's month. */
int64_t ea__ledger_day(int64_t t_ms);
int64_t ea__ledger_minute(int64_t t_ms);
int64_t ea__ledger_month(int64_t t_ms);
int64_t ea__ledger_month_start(int64_t t_ms);

/* Sets up the budget counters from l->cfg and reads this period's cloud
 * spend back from the rows (through db). */
ea_status ea__ledger_budget_init(ea_ledger *l, sqlite3 *db, struct ea_error *err);
void ea__ledger_budget_release(ea_ledger *l);

/* "device" ... for the tier column; the tier of a name (-1 when unknown). */
const char *ea__ledger_tier_name(enum ea_upstream_tier t);
int ea__ledger_tier_parse(const char *s);

/* Stops the summary sync's thread (if started) and frees it. */
void ea__ledger_sync_stop(ea_ledger *l);

/* Deep copy of a configuration (dst initialised here). */
ea_status ea__ledger_config_copy(struct ea_ledger_config *dst, const struct ea_ledger_config *src);

#endif
