/* pull.c - downloading a model into the store with libcurl: the Hugging
 * Face file list (/api/models/ORG/REPO?blobs=true), the bytes
 * (/ORG/REPO/resolve/REV/FILE, redirects followed), NAME.gguf.partial with
 * Range resume and a restart when the server ignores the range, sha256
 * while the bytes arrive (a second thread reads back what was written, so
 * hashing overlaps receiving), writeback started as the file grows (the
 * final fsync is short), then ea_store_register (model checks, manifest).
 * Does not hold: source parsing (source.c), the store's files (store.c),
 * rendering progress (a callback the caller gives). */
#define _GNU_SOURCE /* sync_file_range */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "edgeagent/store.h"
#include "store/store_int.h"
#include "util/buf.h"
#include "util/sha256.h"
#include "util/threadpool.h"

#define DEFAULT_ENDPOINT "https://huggingface.co"
#define DEFAULT_REVISION "main"
#define USER_AGENT "edgeagent/0.1.0"
#define FILE_LIST_MAX ((size_t)16 << 20)  /* bytes of one /api/models answer */
#define RECV_BUFFER (512 * 1024)          /* curl's receive buffer: the most a crash loses */
#define MAX_REDIRECTS 10
#define CONNECT_TIMEOUT_S 30L
#define STALL_SECONDS 60L                 /* abort when nothing arrives for this long */
#define PROGRESS_INTERVAL_S 0.1           /* at most this often to the callback */
#define RETRY_PAUSE_MS 250                /* times the attempt number */
#define HASH_CHUNK ((size_t)1 << 20)      /* bytes the hashing thread reads at a time */
#define WRITEBACK_STEP ((uint64_t)32 << 20) /* start writeback every this many bytes */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- one transfer ------------------------------------------------------------ */

/* Two threads behind the writer (the thread receiving the bytes): one
 * hashes the partial file, reading back [hashed, written) (the page cache
 * has it), one starts writeback every WRITEBACK_STEP bytes (sync_file_range
 * does ext4's block allocation and can wait for a full disk queue: neither
 * the receiver nor the hasher should), until told to stop. */
struct hasher {
    pthread_t thread, wb_thread;
    bool running, wb_running;
    pthread_mutex_t mu;
    pthread_cond_t cv, wb_cv;
    uint64_t written;        /* bytes the writer has put in the file (under mu) */
    uint64_t wb_mark;        /* under mu: wake the writeback thread when written reaches it */
    bool stop;               /* under mu */
    uint64_t hashed;         /* owned by the hashing thread while it runs */
    uint64_t synced;         /* bytes handed to writeback (the writeback thread's while it runs) */
    struct ea_sha256 sha;    /* over [0, hashed) */
    int fd;
    int read_errno;
    unsigned char *buf;      /* HASH_CHUNK */
};

struct xfer {
    const struct ea_pull_params *p;
    struct ea_pull_progress prog;
    int fd;
    uint64_t start;          /* bytes on disk when this request was made */
    uint64_t done;           /* bytes on disk */
    struct hasher h;
    long status;             /* of the response being received */
    bool body_seen;          /* first body byte of this response handled */
    bool has_range;
    uint64_t range_start, range_total;
    char linked_etag[80];    /* X-Linked-Etag of the redirect (HF: the LFS sha256) */
    int write_errno;
    bool range_mismatch;
    bool restarted;          /* the server ignored Range at least once */
    double last_progress;
    unsigned last_pct;       /* percent at the last report */
};

static void report(struct xfer *x, bool force)
{
    double t = now_s();
    /* every whole percent is reported, so a caller printing every 10%
     * misses none; in between, at most every PROGRESS_INTERVAL_S */
    unsigned pct = x->prog.total ? (unsigned)(x->done * 100 / x->prog.total) : 0;
    if (!x->p->progress ||
        (!force && pct == x->last_pct && t - x->last_progress < PROGRESS_INTERVAL_S))
        return;
    x->last_progress = t;
    x->last_pct = pct;
    x->prog.done = x->done;
    x->p->progress(x->p->progress_ud, &x->prog);
    x->prog.note = NULL;
}

/* ---- the hashing thread ---------------------------------------------------- */

static void *hasher_main(void *arg)
{
    struct hasher *h = arg;
    for (;;) {
        pthread_mutex_lock(&h->mu);
        while (!h->stop && h->written == h->hashed)
            pthread_cond_wait(&h->cv, &h->mu);
        uint64_t upto = h->written;
        bool stop = h->stop;
        pthread_mutex_unlock(&h->mu);
        if (stop)
            break;
        while (h->hashed < upto) {
            size_t want = upto - h->hashed < HASH_CHUNK ? (size_t)(upto - h->hashed) : HASH_CHUNK;
            ssize_t r = pread(h->fd, h->buf, want, (off_t)h->hashed);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                h->read_errno = r ? errno : EIO;
                return NULL;
            }
            ea__sha256_update(&h->sha, h->buf, (size_t)r);
            h->hashed += (uint64_t)r;
        }
    }
    return NULL;
}

static void *writeback_main(void *arg)
{
    struct hasher *h = arg;
    for (;;) {
        pthread_mutex_lock(&h->mu);
        h->wb_mark = h->synced + WRITEBACK_STEP;
        while (!h->stop && h->written < h->wb_mark)
            pthread_cond_wait(&h->wb_cv, &h->mu);
        uint64_t upto = h->written;
        bool stop = h->stop;
        pthread_mutex_unlock(&h->mu);
        if (stop)
            break;
        /* start writing these pages now, without waiting: the fsync at the
         * end then has little left to do */
        sync_file_range(h->fd, (off64_t)h->synced, (off64_t)(upto - h->synced), SYNC_FILE_RANGE_WRITE);
        h->synced = upto;
    }
    return NULL;
}

static ea_status hasher_init(struct hasher *h, int fd)
{
    memset(h, 0, sizeof *h);
    h->fd = fd;
    h->buf = ea_malloc(HASH_CHUNK);
    if (!h->buf)
        return EA_ENOMEM;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    pthread_cond_init(&h->wb_cv, NULL);
    ea__sha256_init(&h->sha);
    return EA_OK;
}

/* Back to an empty file (the thread must be stopped). */
static void hasher_reset(struct hasher *h)
{
    h->hashed = 0;
    h->synced = 0;
    h->written = 0;
    h->read_errno = 0;
    ea__sha256_init(&h->sha);
}

static int hasher_start(struct hasher *h)
{
    h->stop = false;
    h->synced = h->written; /* what is on disk already was synced when it was written */
    h->wb_mark = h->synced + WRITEBACK_STEP;
    /* without it the final fsync does all the writing */
    h->wb_running = ea__thread_start(&h->wb_thread, writeback_main, h) == 0;
    if (ea__thread_start(&h->thread, hasher_main, h))
        return -1; /* hashed later, in the calling thread */
    h->running = true;
    return 0;
}

static void hasher_advance(struct hasher *h, uint64_t written)
{
    pthread_mutex_lock(&h->mu);
    h->written = written;
    pthread_cond_signal(&h->cv);
    if (written >= h->wb_mark) /* not at every chunk: a wake-up per step */
        pthread_cond_signal(&h->wb_cv);
    pthread_mutex_unlock(&h->mu);
}

static void hasher_stop(struct hasher *h)
{
    if (!h->running && !h->wb_running)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_cond_signal(&h->cv);
    pthread_cond_signal(&h->wb_cv);
    pthread_mutex_unlock(&h->mu);
    if (h->running)
        pthread_join(h->thread, NULL);
    if (h->wb_running)
        pthread_join(h->wb_thread, NULL);
    h->running = h->wb_running = false;
}

/* Stops the thread and hashes what it had not reached, here. */
static ea_status hasher_finish(struct hasher *h, uint64_t size, const char *path,
                               struct ea_error *err)
{
    hasher_stop(h);
    while (!h->read_errno && h->hashed < size) {
        size_t want = size - h->hashed < HASH_CHUNK ? (size_t)(size - h->hashed) : HASH_CHUNK;
        ssize_t r = pread(h->fd, h->buf, want, (off_t)h->hashed);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            h->read_errno = r ? errno : EIO;
            break;
        }
        ea__sha256_update(&h->sha, h->buf, (size_t)r);
        h->hashed += (uint64_t)r;
    }
    if (h->read_errno)
        return ea_error_set(err, EA_EIO, "reading back %s: %s", path, strerror(h->read_errno));
    return EA_OK;
}

static void hasher_release(struct hasher *h)
{
    hasher_stop(h);
    if (h->buf) {
        pthread_mutex_destroy(&h->mu);
        pthread_cond_destroy(&h->cv);
        pthread_cond_destroy(&h->wb_cv);
    }
    ea_free(h->buf);
    h->buf = NULL;
}

static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;
    char line[512];
    size_t k = len < sizeof line - 1 ? len : sizeof line - 1;
    memcpy(line, buf, k);
    line[k] = '\0';
    while (k && (line[k - 1] == '\r' || line[k - 1] == '\n'))
        line[--k] = '\0';
    if (strncmp(line, "HTTP/", 5) == 0) {
        const char *sp = strchr(line, ' ');
        x->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        x->has_range = false;
        x->body_seen = false;
    } else if (strncasecmp(line, "content-range:", 14) == 0) {
        unsigned long long a, b, t;
        if (sscanf(line + 14, " bytes %llu-%llu/%llu", &a, &b, &t) == 3) {
            x->has_range = true;
            x->range_start = a;
            x->range_total = t;
        }
    } else if (strncasecmp(line, "x-linked-etag:", 14) == 0) {
        const char *v = line + 14;
        while (*v == ' ' || *v == '"')
            v++;
        snprintf(x->linked_etag, sizeof x->linked_etag, "%.*s", (int)strcspn(v, "\""), v);
    }
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    size_t len = size * n;
    if (!x->body_seen) {
        x->body_seen = true;
        if (x->status == 206) {
            if (!x->has_range || x->range_start != x->done) {
                x->range_mismatch = true;
                return 0;
            }
            if (!x->prog.total && x->range_total)
                x->prog.total = x->range_total;
        } else if (x->status == 200 && x->done > 0) {
            /* the server ignored Range: start the file over */
            hasher_stop(&x->h);
            if (ftruncate(x->fd, 0)) {
                x->write_errno = errno;
                return 0;
            }
            x->done = 0;
            x->prog.resumed_from = 0;
            hasher_reset(&x->h);
            if (hasher_start(&x->h)) {
                x->write_errno = ENOMEM;
                return 0;
            }
            x->restarted = true;
            x->prog.note = "the server ignored the range request: restarting from byte 0";
            report(x, true);
        }
    }
    size_t off = 0;
    while (off < len) {
        ssize_t w = pwrite(x->fd, data + off, len - off, (off_t)(x->done + off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            x->write_errno = w < 0 ? errno : ENOSPC;
            /* keep what was written: the partial stays resumable */
            x->done += off;
            hasher_advance(&x->h, x->done);
            return 0;
        }
        off += (size_t)w;
    }
    x->done += len;
    hasher_advance(&x->h, x->done);
    report(x, false);
    return len;
}

static int on_xferinfo(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    struct xfer *x = ud;
    return x->p->cancel && *x->p->cancel ? 1 : 0;
}

static void common_opts(CURL *c, struct curl_slist *hdrs)
{
    curl_easy_setopt(c, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, STALL_SECONDS);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    if (hdrs)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
}

/* ---- file list ------------------------------------------------------------------ */

static size_t on_list(char *data, size_t size, size_t n, void *ud)
{
    return ea__buf_append(ud, data, size * n) ? 0 : size * n;
}

static ea_status http_status_error(long code, const char *what, const char *endpoint,
                                   bool have_token, struct ea_error *err)
{
    if (code == 401 || code == 403)
        return ea_error_set(err, EA_EAUTH,
                            "%s: HTTP %ld from %s: %s", what, code, endpoint,
                            have_token ? "HF_TOKEN was not accepted for this repository"
                                       : "the repository is gated, private or absent; set HF_TOKEN "
                                         "to a token with access");
    if (code == 404)
        return ea_error_set(err, EA_ENOTFOUND, "%s: not found at %s (HTTP 404)", what, endpoint);
    return ea_error_set(err, EA_EUNAVAILABLE, "%s: HTTP %ld from %s", what, code, endpoint);
}

static int on_list_xferinfo(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    volatile int *cancel = ud;
    return cancel && *cancel ? 1 : 0;
}

static ea_status fetch_list(const char *endpoint, const char *repo, const char *rev,
                            struct curl_slist *hdrs, bool have_token, volatile int *cancel,
                            struct ea_buf *out, struct ea_error *err)
{
    char url[EA_STORE_URL_MAX + EA_STORE_NAME_MAX * 2];
    if (strcmp(rev, DEFAULT_REVISION) == 0)
        snprintf(url, sizeof url, "%s/api/models/%s?blobs=true", endpoint, repo);
    else
        snprintf(url, sizeof url, "%s/api/models/%s/revision/%s?blobs=true", endpoint, repo, rev);
    CURL *c = curl_easy_init();
    if (!c)
        return ea_error_set(err, EA_ENOMEM, "curl: out of memory");
    common_opts(c, hdrs);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_list);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_list_xferinfo);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)cancel);
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_cleanup(c);
    char what[EA_STORE_NAME_MAX + 16];
    snprintf(what, sizeof what, "hf.co/%s", repo);
    if (rc == CURLE_ABORTED_BY_CALLBACK)
        return ea_error_set(err, EA_ECANCELLED, "%s: interrupted", what);
    if (rc == CURLE_WRITE_ERROR)
        return ea_error_set(err, EA_ETOOBIG, "%s: file list larger than %zu bytes", what, FILE_LIST_MAX);
    if (rc != CURLE_OK)
        return ea_error_set(err, EA_EUNAVAILABLE, "%s: %s", what, cerr[0] ? cerr : curl_easy_strerror(rc));
    if (code != 200)
        return http_status_error(code, what, endpoint, have_token, err);
    return EA_OK;
}

/* ---- the partial file's record ----------------------------------------------------- */

struct plan {
    char url[EA_STORE_URL_MAX];
    char sha256[65];   /* expected; "" when unknown */
    uint64_t size;     /* expected; 0 when unknown */
};

static bool partial_matches(const char *meta_path, const struct plan *pl)
{
    FILE *f = fopen(meta_path, "rb");
    if (!f)
        return false;
    char buf[EA_STORE_URL_MAX * 2];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    json_t *o = json_loadb(buf, n, 0, NULL);
    if (!o)
        return false;
    const char *url = json_string_value(json_object_get(o, "url"));
    const char *sha = json_string_value(json_object_get(o, "sha256"));
    json_int_t size = json_integer_value(json_object_get(o, "size"));
    bool ok = sha && url;
    if (ok && pl->sha256[0])
        ok = strcmp(sha, pl->sha256) == 0; /* same content, wherever it comes from */
    else if (ok)
        ok = strcmp(url, pl->url) == 0 && (uint64_t)size == pl->size;
    json_decref(o);
    return ok;
}

static ea_status write_partial_meta(const char *meta_path, const struct plan *pl,
                                    struct ea_error *err)
{
    json_t *o = json_pack("{s:s, s:s, s:I}", "url", pl->url, "sha256", pl->sha256, "size",
                          (json_int_t)pl->size);
    char *txt = o ? json_dumps(o, 0) : NULL;
    json_decref(o);
    if (!txt)
        return ea_error_set(err, EA_ENOMEM, "out of memory");
    ea_status s = ea__store_write_file(meta_path, txt, strlen(txt), err);
    free(txt);
    return s;
}

/* Empties the partial file (the hashing thread follows). */
static ea_status restart_file(struct xfer *x, const char *partial, struct ea_error *err)
{
    hasher_stop(&x->h);
    if (ftruncate(x->fd, 0))
        return ea_error_set(err, EA_EIO, "%s: %s", partial, strerror(errno));
    x->done = 0;
    hasher_reset(&x->h);
    hasher_start(&x->h);
    return EA_OK;
}

static bool transient(CURLcode rc)
{
    return rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR ||
           rc == CURLE_GOT_NOTHING || rc == CURLE_OPERATION_TIMEDOUT ||
           rc == CURLE_COULDNT_CONNECT || rc == CURLE_HTTP2_STREAM;
}

/* Downloads pl->url into partial (resuming), retrying broken transfers. */
static ea_status download(struct xfer *x, const struct plan *pl, const char *partial,
                          struct curl_slist *hdrs, bool have_token, const char *endpoint,
                          struct ea_error *err)
{
    const struct ea_pull_params *p = x->p;
    ea_status s = EA_OK;
    CURL *c = curl_easy_init();
    if (!c)
        return ea_error_set(err, EA_ENOMEM, "curl: out of memory");
    bool range_refused_once = false;
    for (int attempt = 0;; attempt++) {
        if (pl->size && x->done == pl->size)
            break; /* complete already (an earlier run got every byte) */
        if (pl->size && x->done > pl->size && (s = restart_file(x, partial, err)))
            break;
        curl_easy_reset(c);
        common_opts(c, hdrs);
        char cerr[CURL_ERROR_SIZE] = "";
        char range[48];
        curl_easy_setopt(c, CURLOPT_URL, pl->url);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
        curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(c, CURLOPT_BUFFERSIZE, (long)RECV_BUFFER);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
        if (x->done > 0) {
            snprintf(range, sizeof range, "%" PRIu64 "-", x->done);
            curl_easy_setopt(c, CURLOPT_RANGE, range);
        }
        x->start = x->done;
        x->prog.resumed_from = x->done;
        x->status = 0;
        x->body_seen = false;
        x->range_mismatch = false;
        x->write_errno = 0;
        report(x, true);
        CURLcode rc = curl_easy_perform(c);
        long code = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        report(x, true);
        if (rc == CURLE_OK && (code == 200 || code == 206)) {
            if (!pl->size || x->done == pl->size)
                break;
            rc = CURLE_PARTIAL_FILE; /* the server ended early: resume */
        }
        if (rc == CURLE_ABORTED_BY_CALLBACK && p->cancel && *p->cancel) {
            s = ea_error_set(err, EA_ECANCELLED,
                             "interrupted: %" PRIu64 " bytes kept in %s; run the same pull to resume",
                             x->done, partial);
            break;
        }
        if (rc == CURLE_WRITE_ERROR && x->write_errno) {
            s = ea_error_set(err, EA_EIO,
                             "writing %s: %s (disk full or file size limit); %" PRIu64
                             " bytes kept: free space and run the same pull to resume",
                             partial, strerror(x->write_errno), x->done);
            break;
        }
        if (rc == CURLE_WRITE_ERROR && x->range_mismatch) {
            s = ea_error_set(err, EA_EFORMAT, "%s: the server answered a different range than asked",
                             pl->url);
            break;
        }
        if (rc == CURLE_HTTP_RETURNED_ERROR && code == 416 && x->done > 0 && !range_refused_once) {
            /* our partial is not a prefix the server knows: start over once */
            range_refused_once = true;
            if ((s = restart_file(x, partial, err)))
                break;
            attempt--;
            continue;
        }
        if (rc == CURLE_HTTP_RETURNED_ERROR) {
            char what[EA_STORE_NAME_MAX + 16];
            snprintf(what, sizeof what, "%s", x->prog.file);
            s = http_status_error(code, what, endpoint, have_token, err);
            break;
        }
        if (transient(rc) && attempt < p->retries) {
            x->prog.note = "connection broken: resuming";
            report(x, true);
            struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)RETRY_PAUSE_MS * 1000000L * (attempt + 1)};
            while (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            nanosleep(&ts, NULL);
            continue;
        }
        s = ea_error_set(err, EA_EUNAVAILABLE,
                         "%s: transfer broken after %" PRIu64 " bytes (%s); the partial file is "
                         "kept: run the same pull to resume",
                         x->prog.file, x->done, cerr[0] ? cerr : curl_easy_strerror(rc));
        break;
    }
    curl_easy_cleanup(c);
    return s;
}

/* ---- pull ---------------------------------------------------------------------------- */

static void note_waiting(void *ud)
{
    struct xfer *x = ud;
    x->prog.note = "another pull of this model is running: waiting for it";
    report(x, true);
}

ea_status ea_store_pull(ea_store *s, const struct ea_pull_params *p,
                        struct ea_store_manifest *out, struct ea_error *err)
{
    pthread_once(&curl_once, curl_init_once);
    struct ea_pull_source src;
    ea_status st = ea_pull_parse_source(p->source, &src, err);
    if (st)
        return st;
    const char *name = p->name && *p->name ? p->name : src.name;
    const char *endpoint = p->endpoint && *p->endpoint ? p->endpoint : DEFAULT_ENDPOINT;
    const char *rev = p->revision && *p->revision ? p->revision : DEFAULT_REVISION;
    char ep[EA_STORE_URL_MAX];
    snprintf(ep, sizeof ep, "%s", endpoint);
    for (size_t n = strlen(ep); n && ep[n - 1] == '/';)
        ep[--n] = '\0';
    for (const char *r = rev; *r; r++)
        if (!(((unsigned char)*r > 0x20 && (unsigned char)*r < 0x7F) && *r != '?' && *r != '#'))
            return ea_error_set(err, EA_EINVAL, "revision holds a character not allowed in a URL");

    char partial[EA_STORE_PATH_MAX], meta[EA_STORE_PATH_MAX];
    if ((st = ea__store_path(s, name, ".gguf.partial", partial, sizeof partial, err)) ||
        (st = ea__store_path(s, name, ".partial-meta", meta, sizeof meta, err)))
        return st;

    struct xfer x = {.p = p, .fd = -1};
    x.prog.name = name;
    x.prog.file = src.file[0] ? src.file : src.repo;
    x.prog.phase = EA_PULL_RESOLVING;
    report(&x, true);

    struct curl_slist *hdrs = NULL;
    bool have_token = p->token && *p->token;
    if (have_token) {
        char auth[EA_STORE_URL_MAX];
        if ((size_t)snprintf(auth, sizeof auth, "Authorization: Bearer %s", p->token) >= sizeof auth ||
            strpbrk(p->token, "\r\n"))
            return ea_error_set(err, EA_EINVAL, "HF_TOKEN is not a usable token");
        hdrs = curl_slist_append(NULL, auth);
        memset(auth, 0, sizeof auth);
        if (!hdrs)
            return ea_error_set(err, EA_ENOMEM, "out of memory");
    }

    struct plan pl = {0};
    struct ea_store_manifest m = {0};
    char file[EA_STORE_NAME_MAX] = "";
    snprintf(m.name, sizeof m.name, "%s", name);
    snprintf(m.source, sizeof m.source, "%s", p->source);
    if (src.kind == EA_PULL_URL) {
        snprintf(pl.url, sizeof pl.url, "%s", src.url);
        snprintf(file, sizeof file, "%s", src.file);
    } else {
        struct ea_buf list;
        ea__buf_init(&list, FILE_LIST_MAX);
        st = fetch_list(ep, src.repo, rev, hdrs, have_token, p->cancel, &list, err);
        if (!st && (st = ea_pull_pick_file(list.data ? list.data : "", list.len,
                                   src.kind == EA_PULL_HF_REPO ? src.quant : NULL,
                                   src.kind == EA_PULL_HF_FILE ? src.file : NULL, file, sizeof file,
                                   &pl.size, pl.sha256, err)))
            ea_error_prefix(err, "hf.co/%s", src.repo);
        ea__buf_release(&list);
        if (st)
            goto out_headers;
        snprintf(pl.url, sizeof pl.url, "%s/%s/resolve/%s/%s", ep, src.repo, rev, file);
        snprintf(m.repo, sizeof m.repo, "%s", src.repo);
        snprintf(m.revision, sizeof m.revision, "%s", rev);
    }
    snprintf(m.file, sizeof m.file, "%s", file);
    snprintf(m.url, sizeof m.url, "%s", pl.url);
    x.prog.file = m.file;
    x.prog.total = pl.size;

    int lock = -1;
    if ((st = ea__store_lock(s, name, true, note_waiting, &x, p->cancel, &lock, err)))
        goto out_headers;

    /* already there? */
    struct ea_store_manifest have;
    struct ea_error e2 = {0};
    if (ea_store_get(s, name, &have, &e2) == EA_OK &&
        (pl.sha256[0] ? strcmp(have.sha256, pl.sha256) == 0 : strcmp(have.url, pl.url) == 0)) {
        char path[EA_STORE_PATH_MAX];
        if (ea_store_model_path(s, name, path, sizeof path, &e2) == EA_OK) {
            x.prog.phase = EA_PULL_DONE;
            x.prog.total = x.done = have.size;
            x.prog.note = "already in the store";
            report(&x, true);
            if (out)
                *out = have;
            goto out_unlock;
        }
    }

    /* resume or start over */
    struct stat sb;
    if (stat(partial, &sb) == 0 && !partial_matches(meta, &pl))
        unlink(partial);
    if ((st = write_partial_meta(meta, &pl, err)))
        goto out_unlock;
    x.fd = open(partial, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (x.fd < 0) {
        st = ea_error_set(err, EA_EIO, "%s: %s", partial, strerror(errno));
        goto out_unlock;
    }
    if (hasher_init(&x.h, x.fd)) {
        st = ea_error_set(err, EA_ENOMEM, "out of memory");
        goto out_close;
    }
    if (fstat(x.fd, &sb) == 0 && sb.st_size > 0) {
        uint64_t have_bytes = (uint64_t)sb.st_size;
        if (pl.size && have_bytes > pl.size) {
            if (ftruncate(x.fd, 0)) {
                st = ea_error_set(err, EA_EIO, "%s: %s", partial, strerror(errno));
                goto out_close;
            }
            have_bytes = 0;
        }
        x.done = x.h.written = have_bytes; /* the thread hashes these first */
    }

    x.prog.phase = EA_PULL_DOWNLOADING;
    hasher_start(&x.h);
    st = download(&x, &pl, partial, hdrs, have_token, ep, err);
    if (!st)
        st = hasher_finish(&x.h, x.done, partial, err);
    if (st)
        goto out_close;
    if (fsync(x.fd)) {
        st = ea_error_set(err, EA_EIO, "writing %s: %s", partial, strerror(errno));
        goto out_close;
    }
    close(x.fd);
    x.fd = -1;
    unsigned char dg[EA_SHA256_DIGEST];
    ea__sha256_final(&x.h.sha, dg);
    ea__sha256_hex(dg, m.sha256);
    hasher_release(&x.h);

    x.prog.phase = EA_PULL_VERIFYING;
    x.prog.total = x.done;
    report(&x, true);
    /* a plain URL to an HF-like server still names the LFS sha256 */
    const char *want = pl.sha256[0] ? pl.sha256 : (strlen(x.linked_etag) == 64 ? x.linked_etag : NULL);
    if (want && strcasecmp(want, m.sha256) != 0) {
        unlink(partial);
        unlink(meta);
        st = ea_error_set(err, EA_EFORMAT,
                          "%s: sha256 mismatch (expected %s, got %s); the download was deleted",
                          m.file, want, m.sha256);
        goto out_unlock;
    }
    if ((st = ea_store_register(s, partial, &m, err))) {
        if (st != EA_EIO) {
            unlink(partial);
            unlink(meta);
            ea_error_prefix(err, "%s (the download was deleted)", m.file);
        }
        goto out_unlock;
    }
    unlink(meta);
    x.prog.phase = EA_PULL_DONE;
    report(&x, true);
    if (out)
        *out = m;
    goto out_unlock;

out_close:
    hasher_release(&x.h);
    if (x.fd >= 0)
        close(x.fd);
out_unlock:
    ea__store_unlock(lock);
out_headers:
    curl_slist_free_all(hdrs);
    return st;
}
