/* conn_guard.c - keeps slow or greedy clients from holding the server's
 * connections: a deadline for each request's head and body, a per-IP
 * connection limit, and free slots kept for new clients.
 *
 * libmicrohttpd resets its idle timeout on every byte, so a client sending
 * one header line a second ("slowloris") holds a connection for ever, and
 * 256 of them lock every other client out. The guard follows each
 * connection through its states (libmicrohttpd's notify, URI-log and
 * completion callbacks, all on the connection's own HTTP thread):
 *
 *   IDLE  accepted, or between two requests of a kept-alive connection
 *   HEAD  the request line has arrived, the headers have not
 *   BODY  the headers have arrived, the body has not
 *   BUSY  the request is complete and being answered (never cut here)
 *
 * and a watchdog thread, every EA__GUARD_TICK_MS, shuts down the socket of
 * a connection past its state's deadline (HEAD: header_timeout from the
 * request line; BODY: body_timeout from the end of the head; IDLE:
 * idle_timeout from entering the state, whatever trickles in). When the live
 * connections reach max_connections - reserve, it also evicts the oldest
 * IDLE/HEAD connections (old enough that a real client would have sent its
 * head; a kept-alive connection idle after an answer goes first, as nginx
 * reuses keep-alive connections when it runs out) until the reserve is free
 * again, so a new client always finds a slot. It only ever calls shutdown(2): libmicrohttpd sees the end of the
 * stream and closes and frees the connection on its own thread. The
 * connection's record leaves the table (under the mutex) in the CLOSED
 * notification, which libmicrohttpd sends before it closes the descriptor,
 * so the watchdog never touches a descriptor number that was reused.
 *
 * A connection over the per-IP limit is not closed silently: it is marked,
 * and its request is answered 429 (server.c) with Connection: close.
 * Loopback clients (a local reverse proxy, the device's own agents) are
 * exempt unless limit_loopback is set.
 * Does not hold: HTTP answers (server.c), the libmicrohttpd daemon.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "server/server_int.h"
#include "util/threadpool.h"

enum conn_state { CONN_IDLE, CONN_HEAD, CONN_BODY, CONN_BUSY };

struct ea__conn {
    struct ea__conn *prev, *next;
    int fd;
    enum conn_state state;
    double since_ms; /* when the current state began */
    bool cut;        /* shutdown(2) issued; waiting for CLOSED */
    bool served;     /* answered a request before (an idle one is a kept-alive connection) */
    bool over_ip_limit;
    bool counted_ip; /* holds a slot in the per-IP table */
    unsigned char ip[16];
};

/* per-IP counts: open addressing with linear probing, keyed by the 16-byte
 * address (IPv4 as v4-mapped), sized at 2x the connection limit so that it
 * never fills; a count that drops to 0 leaves a tombstone */
struct ip_slot {
    unsigned char ip[16];
    uint32_t count;
    bool used;
};

struct ea__conn_guard {
    struct ea__guard_params p;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* the watchdog sleeps on it; signalled at destroy */
    pthread_t thread;
    bool started, stop;
    struct ea__conn *head;
    uint32_t n_live; /* connections not yet cut */
    struct ip_slot *ips;
    size_t ips_cap; /* power of two */
    _Atomic uint64_t head_timeouts, body_timeouts, idle_timeouts, evicted, ip_refused;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static void addr_key(const struct sockaddr *sa, unsigned char out[16], bool *loopback)
{
    memset(out, 0, 16);
    *loopback = false;
    if (!sa)
        return;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &a->sin_addr, 4);
        *loopback = out[12] == 127;
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        memcpy(out, &a->sin6_addr, 16);
        *loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
                    (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && out[12] == 127);
    }
}

static size_t ip_hash(const unsigned char ip[16])
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 16; i++)
        h = (h ^ ip[i]) * 1099511628211ull;
    return (size_t)h;
}

/* The slot of ip (found, or the first free one on its probe path). */
static struct ip_slot *ip_find(struct ea__conn_guard *g, const unsigned char ip[16], bool insert)
{
    size_t mask = g->ips_cap - 1, i = ip_hash(ip) & mask;
    struct ip_slot *free_slot = NULL;
    for (size_t probe = 0; probe < g->ips_cap; probe++, i = (i + 1) & mask) {
        struct ip_slot *s = &g->ips[i];
        if (!s->used) {
            if (!free_slot)
                free_slot = s;
            break;
        }
        if (s->count == 0 && !free_slot)
            free_slot = s; /* tombstone, reusable */
        if (s->count && !memcmp(s->ip, ip, 16))
            return s;
    }
    if (!insert || !free_slot)
        return NULL;
    memcpy(free_slot->ip, ip, 16);
    free_slot->used = true;
    free_slot->count = 0;
    return free_slot;
}

/* What a connection cut in the middle of its request reads first: an HTTP
 * answer, not a silent close. Nothing else writes to a connection that has
 * not finished its request, so the bytes cannot interleave with a response. */
static const char timeout_answer[] =
    "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nConnection: close\r\n"
    "Content-Length: 144\r\n\r\n"
    "{\"error\":{\"message\":\"the request was not received in time; send it again\","
    "\"type\":\"invalid_request_error\",\"param\":null,\"code\":\"request_timeout\"}}";

_Static_assert(sizeof timeout_answer - 1 - 144 ==
                   sizeof "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
                          "Connection: close\r\nContent-Length: 144\r\n\r\n" - 1,
               "Content-Length of timeout_answer");

static void cut_locked(struct ea__conn_guard *g, struct ea__conn *c)
{
    c->cut = true;
    g->n_live--;
    if (c->state == CONN_HEAD || c->state == CONN_BODY)
        (void)!send(c->fd, timeout_answer, sizeof timeout_answer - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    /* SHUT_RDWR: the HTTP thread's next read sees the end of the stream */
    shutdown(c->fd, SHUT_RDWR);
}

static void evict_for_reserve_locked(struct ea__conn_guard *g, double now)
{
    uint32_t keep_below = g->p.max_connections > g->p.reserve ? g->p.max_connections - g->p.reserve : 1;
    while (g->n_live >= keep_below) {
        struct ea__conn *oldest = NULL;
        for (struct ea__conn *c = g->head; c; c = c->next) {
            if (c->cut)
                continue;
            double age = now - c->since_ms;
            double idle_age = c->served ? EA__GUARD_EVICT_KEEPALIVE_MS : EA__GUARD_EVICT_IDLE_MS;
            bool evictable = (c->state == CONN_HEAD && age >= EA__GUARD_EVICT_HEAD_MS) ||
                             (c->state == CONN_IDLE && age >= idle_age);
            if (evictable && (!oldest || c->since_ms < oldest->since_ms))
                oldest = c;
        }
        if (!oldest)
            return; /* every connection is busy or young: nothing to take */
        cut_locked(g, oldest);
        atomic_fetch_add(&g->evicted, 1);
    }
}

static void *watchdog(void *arg)
{
    struct ea__conn_guard *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!g->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long ns = ts.tv_nsec + (long long)EA__GUARD_TICK_MS * 1000000LL;
        ts.tv_sec += (time_t)(ns / 1000000000LL);
        ts.tv_nsec = (long)(ns % 1000000000LL);
        pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        if (g->stop)
            break;
        double now = now_ms();
        for (struct ea__conn *c = g->head; c; c = c->next) {
            if (c->cut)
                continue;
            double age = now - c->since_ms;
            if (c->state == CONN_HEAD && age > g->p.header_timeout_ms) {
                cut_locked(g, c);
                atomic_fetch_add(&g->head_timeouts, 1);
            } else if (c->state == CONN_BODY && age > g->p.body_timeout_ms) {
                cut_locked(g, c);
                atomic_fetch_add(&g->body_timeouts, 1);
            } else if (c->state == CONN_IDLE && age > g->p.idle_timeout_ms) {
                cut_locked(g, c);
                atomic_fetch_add(&g->idle_timeouts, 1);
            }
        }
        evict_for_reserve_locked(g, now);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

ea_status ea__guard_create(const struct ea__guard_params *p, struct ea__conn_guard **out,
                           struct ea_error *err)
{
    *out = NULL;
    struct ea__conn_guard *g = ea_calloc(1, sizeof *g);
    if (!g)
        return ea_error_set(err, EA_ENOMEM, "server: out of memory");
    g->p = *p;
    g->ips_cap = 16;
    while (g->ips_cap < (size_t)p->max_connections * 2)
        g->ips_cap <<= 1;
    g->ips = ea_calloc(g->ips_cap, sizeof *g->ips);
    if (!g->ips) {
        ea_free(g);
        return ea_error_set(err, EA_ENOMEM, "server: out of memory");
    }
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    if (ea__thread_start(&g->thread, watchdog, g) != 0) {
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->cv);
        ea_free(g->ips);
        ea_free(g);
        return ea_error_set(err, EA_ENOMEM, "server: cannot start the connection watchdog");
    }
    g->started = true;
    *out = g;
    return EA_OK;
}

void ea__guard_destroy(struct ea__conn_guard *g)
{
    if (!g)
        return;
    if (g->started) {
        pthread_mutex_lock(&g->mu);
        g->stop = true;
        pthread_cond_broadcast(&g->cv);
        pthread_mutex_unlock(&g->mu);
        pthread_join(g->thread, NULL);
    }
    /* the daemon is stopped first, so every connection was reported closed */
    while (g->head) {
        struct ea__conn *c = g->head;
        g->head = c->next;
        ea_free(c);
    }
    pthread_mutex_destroy(&g->mu);
    pthread_cond_destroy(&g->cv);
    ea_free(g->ips);
    ea_free(g);
}

void ea__guard_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                      enum MHD_ConnectionNotificationCode code)
{
    struct ea__conn_guard *g = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        struct ea__conn *c = ea_calloc(1, sizeof *c);
        *socket_context = c;
        if (!c)
            return; /* unguarded, but served */
        const union MHD_ConnectionInfo *fi =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        const union MHD_ConnectionInfo *ai =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        c->fd = fi ? fi->connect_fd : -1;
        bool loopback;
        addr_key(ai ? ai->client_addr : NULL, c->ip, &loopback);
        c->state = CONN_IDLE;
        c->since_ms = now_ms();
        c->cut = c->fd < 0; /* nothing to shut down: never counted or picked */
        pthread_mutex_lock(&g->mu);
        c->next = g->head;
        if (g->head)
            g->head->prev = c;
        g->head = c;
        if (!c->cut)
            g->n_live++;
        if (!loopback || g->p.limit_loopback) {
            struct ip_slot *s = ip_find(g, c->ip, true);
            if (s) {
                s->count++;
                c->counted_ip = true;
                if (s->count > g->p.per_ip)
                    c->over_ip_limit = true;
            }
        }
        pthread_mutex_unlock(&g->mu);
        return;
    }
    struct ea__conn *c = *socket_context;
    if (code != MHD_CONNECTION_NOTIFY_CLOSED || !c)
        return;
    *socket_context = NULL;
    pthread_mutex_lock(&g->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        g->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (!c->cut)
        g->n_live--;
    if (c->counted_ip) {
        struct ip_slot *s = ip_find(g, c->ip, false);
        if (s && s->count)
            s->count--;
    }
    pthread_mutex_unlock(&g->mu);
    ea_free(c);
}

static struct ea__conn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void set_state(struct ea__conn_guard *g, struct MHD_Connection *conn, enum conn_state st)
{
    struct ea__conn *c = conn_of(conn);
    if (!g || !c)
        return;
    pthread_mutex_lock(&g->mu);
    if (c->state == CONN_BUSY && st == CONN_IDLE)
        c->served = true;
    c->state = st;
    c->since_ms = now_ms();
    pthread_mutex_unlock(&g->mu);
}

void *ea__guard_uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)uri;
    set_state(cls, conn, CONN_HEAD);
    return NULL; /* the request context is made by the request handler */
}

void ea__guard_head_done(struct ea__conn_guard *g, struct MHD_Connection *conn)
{
    set_state(g, conn, CONN_BODY);
}

void ea__guard_body_done(struct ea__conn_guard *g, struct MHD_Connection *conn)
{
    set_state(g, conn, CONN_BUSY);
}

void ea__guard_request_done(struct ea__conn_guard *g, struct MHD_Connection *conn)
{
    set_state(g, conn, CONN_IDLE);
}

bool ea__guard_over_ip_limit(struct MHD_Connection *conn)
{
    struct ea__conn *c = conn_of(conn);
    /* written once at STARTED on this same thread: no lock needed */
    return c && c->over_ip_limit;
}

void ea__guard_count_ip_refused(struct ea__conn_guard *g)
{
    if (g)
        atomic_fetch_add(&g->ip_refused, 1);
}

void ea__guard_stats(const struct ea__conn_guard *g, struct ea__guard_stats *st)
{
    memset(st, 0, sizeof *st);
    if (!g)
        return;
    struct ea__conn_guard *m = (struct ea__conn_guard *)g; /* the mutex changes, not the data */
    pthread_mutex_lock(&m->mu);
    st->open = m->n_live;
    pthread_mutex_unlock(&m->mu);
    st->head_timeouts = atomic_load(&g->head_timeouts);
    st->body_timeouts = atomic_load(&g->body_timeouts);
    st->idle_timeouts = atomic_load(&g->idle_timeouts);
    st->evicted = atomic_load(&g->evicted);
    st->ip_refused = atomic_load(&g->ip_refused);
}
