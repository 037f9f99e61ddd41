/* audit.c - the privacy audit: the most recent requests as the privacy
 * guard saw them (GET /v1/edgeagent/audit, `edgeagent audit`): time, id,
 * task, the policy applied, where the request went (or "device only"), the
 * entity counts per type and the bytes sent off the device. Never a value,
 * never text: a ring of fixed-size records in memory.
 * Does not hold: detection or redaction (src/privacy/, privacy_req.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/server_int.h"

struct ea__audit {
    pthread_mutex_t mu;
    struct ea__audit_entry ring[EA__AUDIT_RING];
    uint64_t n; /* entries ever added; the newest is ring[(n - 1) % EA__AUDIT_RING] */
};

ea_status ea__audit_create(struct ea__audit **out)
{
    *out = ea_calloc(1, sizeof **out);
    if (!*out)
        return EA_ENOMEM;
    pthread_mutex_init(&(*out)->mu, NULL);
    return EA_OK;
}

void ea__audit_destroy(struct ea__audit *a)
{
    if (!a)
        return;
    pthread_mutex_destroy(&a->mu);
    ea_free(a);
}

void ea__audit_add(struct ea__audit *a, const struct ea__audit_entry *e)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->mu);
    a->ring[a->n % EA__AUDIT_RING] = *e;
    a->n++;
    pthread_mutex_unlock(&a->mu);
}

static const char *policy_name(enum ea_privacy_mode p) { return ea_privacy_mode_name(p); }

int ea__handle_audit(struct ea__req_ctx *c, struct MHD_Connection *conn)
{
    struct ea__audit *a = c->srv->audit;
    const char *lim = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit");
    long limit = lim ? strtol(lim, NULL, 10) : 50;
    if (limit < 1 || limit > EA__AUDIT_RING)
        return ea__respond_errorf(c, conn, 400, "invalid_request_error", NULL, "limit",
                                  "'limit' must be 1 to %d", EA__AUDIT_RING);
    struct ea_buf b;
    ea__buf_init(&b, (size_t)EA__AUDIT_RING * EA__AUDIT_JSON_MAX + 64);
    ea_status st = ea__buf_puts(&b, "{\"object\":\"list\",\"data\":[");
    pthread_mutex_lock(&a->mu);
    uint64_t have = a->n < EA__AUDIT_RING ? a->n : EA__AUDIT_RING;
    for (uint64_t k = 0; k < have && k < (uint64_t)limit && !st; k++) {
        const struct ea__audit_entry *e = &a->ring[(a->n - 1 - k) % EA__AUDIT_RING];
        st = ea__buf_printf(&b,
                            "%s{\"time\":%" PRId64 ",\"id\":\"%s\",\"task\":%s%s%s,\"policy\":\"%s\","
                            "\"destination\":\"%s\",\"outcome\":\"%s\",\"outbound_bytes\":%" PRIu64
                            ",\"redacted\":%s,\"entities\":{",
                            k ? "," : "", e->time_ms, e->id, e->task[0] ? "\"" : "",
                            e->task[0] ? e->task : "null", e->task[0] ? "\"" : "",
                            policy_name(e->policy), e->destination, e->outcome, e->outbound_bytes,
                            e->redacted ? "true" : "false");
        for (int i = 0; i < e->n_types && !st; i++)
            st = ea__buf_printf(&b, "%s\"%s\":%u", i ? "," : "", e->types[i].name,
                                (unsigned)e->types[i].count);
        if (!st)
            st = ea__buf_puts(&b, "}}");
    }
    pthread_mutex_unlock(&a->mu);
    if (!st)
        st = ea__buf_puts(&b, "]}");
    int ret = st ? ea__respond_errorf(c, conn, 500, "server_error", NULL, NULL, "out of memory")
                 : ea__respond_json(c, conn, 200, b.data, b.len);
    ea__buf_release(&b);
    return ret;
}
