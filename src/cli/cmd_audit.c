/* cmd_audit.c - `edgeagent audit`: the privacy audit of a running server
 * (GET /v1/edgeagent/audit): the most recent requests with the policy
 * applied, where each went, the entity counts per type and the bytes that
 * left the device. Names and counts only; the server keeps no text.
 * The API key, when the server needs one, comes from EDGEAGENT_API_KEY.
 * Does not hold: the audit itself (src/server/audit.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

#ifndef EA_HAVE_NET
int cmd_audit(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    cli_errorf("audit", "this build has no HTTP client (libcurl was missing at configure time)");
    return 2;
}
#else
#include <curl/curl.h>
#include <jansson.h>

#define AUDIT_REPLY_MAX ((size_t)4 << 20) /* the server's answer, at most */

struct reply {
    char *data;
    size_t len;
    bool too_big;
};

static size_t on_data(char *p, size_t sz, size_t n, void *u)
{
    struct reply *r = u;
    size_t k = sz * n;
    if (r->len + k > AUDIT_REPLY_MAX) {
        r->too_big = true;
        return 0;
    }
    char *nd = realloc(r->data, r->len + k + 1);
    if (!nd)
        return 0;
    r->data = nd;
    memcpy(r->data + r->len, p, k);
    r->len += k;
    r->data[r->len] = '\0';
    return k;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: edgeagent audit [--url http://127.0.0.1:8080] [--limit N] [--json]\n"
               "  the privacy audit of a running `edgeagent serve`: recent requests, the policy\n"
               "  applied, where each went, entity counts per type, bytes sent off the device\n"
               "  (the key, if the server needs one: EDGEAGENT_API_KEY)\n");
}

int cmd_audit(int argc, char **argv)
{
    const char *url = "http://127.0.0.1:8080";
    long limit = 20;
    bool as_json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--url") && i + 1 < argc) {
            url = argv[++i];
        } else if (!strcmp(argv[i], "--limit") && i + 1 < argc) {
            limit = strtol(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--json")) {
            as_json = true;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (limit < 1 || limit > 256) {
        cli_errorf("audit", "--limit: 1 to 256");
        return 2;
    }
    char full[2048];
    snprintf(full, sizeof full, "%s/v1/edgeagent/audit?limit=%ld", url, limit);
    const char *key = getenv("EDGEAGENT_API_KEY");
    char auth[1024] = "";
    if (key && *key)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    CURL *c = curl_easy_init();
    struct curl_slist *h = auth[0] ? curl_slist_append(NULL, auth) : NULL;
    struct reply r = {0};
    curl_easy_setopt(c, CURLOPT_URL, full);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    int rc = 1;
    if (cc != CURLE_OK) {
        cli_errorf("audit", "%s: %s", url, r.too_big ? "the answer is too large" : curl_easy_strerror(cc));
        goto out;
    }
    if (status != 200) {
        cli_errorf("audit", "%s answered %ld: %.300s", url, status, r.data ? r.data : "");
        goto out;
    }
    if (as_json) {
        printf("%s\n", r.data ? r.data : "");
        rc = 0;
        goto out;
    }
    json_t *j = json_loads(r.data ? r.data : "", 0, NULL);
    json_t *data = json_object_get(j, "data");
    if (!json_is_array(data)) {
        cli_errorf("audit", "%s: not an audit answer", url);
        json_decref(j);
        goto out;
    }
    printf("%-20s %-28s %-12s %-10s %-22s %9s  %s\n", "time (UTC)", "request", "task", "policy",
           "went to", "out bytes", "entities");
    size_t i;
    json_t *e;
    json_array_foreach(data, i, e) {
        time_t t = (time_t)(json_integer_value(json_object_get(e, "time")) / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        char when[32];
        strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
        char ents[512] = "";
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(e, "entities"), k, v) {
            size_t n = strlen(ents);
            snprintf(ents + n, sizeof ents - n, "%s%s %lld", n ? ", " : "", k,
                     (long long)json_integer_value(v));
        }
        const char *task = json_string_value(json_object_get(e, "task"));
        printf("%-20s %-28s %-12s %-10s %-22s %9lld  %s\n", when,
               json_string_value(json_object_get(e, "id")) ?: "", task ? task : "-",
               json_string_value(json_object_get(e, "policy")) ?: "",
               json_string_value(json_object_get(e, "destination")) ?: "",
               (long long)json_integer_value(json_object_get(e, "outbound_bytes")), ents[0] ? ents : "-");
    }
    json_decref(j);
    rc = 0;
out:
    free(r.data);
    return rc;
}
#endif
