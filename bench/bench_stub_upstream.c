/* bench_stub_upstream.c - a minimal OpenAI-compatible upstream for the
 * router-path benchmark (EA_TEST_NEEDS_NET: libmicrohttpd), so that the
 * upstream's own cost is small and steady next to edgeagent's: POST
 * .../chat/completions answers a fixed reply, as one JSON object or, with
 * "stream": true in the body, as Server-Sent Events (3 content chunks, a
 * usage chunk, [DONE]). Nothing is parsed beyond looking for "stream":true.
 *
 *   bench_stub_upstream [PORT=0] [THREADS=1]   prints "PORT n", serves until killed
 *
 * Loopback only. Not a test double for behaviour: tests/node/openai_stub.mjs
 * is (faults, logs).
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BODY_MAX 65536 /* request bodies past this are answered 413 */

static const char json_reply[] =
    "{\"id\":\"chatcmpl-stub\",\"object\":\"chat.completion\",\"created\":0,\"model\":\"stub\","
    "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"stub:reply\"},"
    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":3,"
    "\"total_tokens\":5}}";

#define CHUNK(content, finish)                                                                     \
    "data: {\"id\":\"chatcmpl-stub\",\"object\":\"chat.completion.chunk\",\"created\":0,"          \
    "\"model\":\"stub\",\"choices\":[{\"index\":0,\"delta\":{" content "},\"finish_reason\":" finish \
    "}]}\n\n"
static const char sse_reply[] =
    CHUNK("\"role\":\"assistant\",\"content\":\"stub\"", "null")
    CHUNK("\"content\":\":\"", "null")
    CHUNK("\"content\":\"reply\"", "\"stop\"")
    "data: {\"id\":\"chatcmpl-stub\",\"object\":\"chat.completion.chunk\",\"created\":0,"
    "\"model\":\"stub\",\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":3,"
    "\"total_tokens\":5}}\n\n"
    "data: [DONE]\n\n";

struct req {
    char body[BODY_MAX];
    size_t len;
    int too_big;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con_cls)
{
    (void)cls;
    (void)url;
    (void)version;
    struct req *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        return MHD_YES;
    }
    if (*size) {
        if (r->len + *size < sizeof r->body) {
            memcpy(r->body + r->len, data, *size);
            r->len += *size;
        } else {
            r->too_big = 1;
        }
        *size = 0;
        return MHD_YES;
    }
    r->body[r->len] = '\0';
    int stream = strstr(r->body, "\"stream\":true") != NULL;
    unsigned status = strcmp(method, "POST") ? 405 : r->too_big ? 413 : 200;
    const char *text = stream ? sse_reply : json_reply;
    size_t n = stream ? sizeof sse_reply - 1 : sizeof json_reply - 1;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(status == 200 ? n : 0, (void *)text, MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, "Content-Type", stream ? "text/event-stream" : "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode code)
{
    (void)cls;
    (void)c;
    (void)code;
    free(*con_cls);
    *con_cls = NULL;
}

int main(int argc, char **argv)
{
    unsigned port = argc > 1 ? (unsigned)atoi(argv[1]) : 0, threads = argc > 2 ? (unsigned)atoi(argv[2]) : 1;
    if (port > 65535 || threads < 1 || threads > 64) {
        fprintf(stderr, "usage: bench_stub_upstream [PORT=0] [THREADS=1..64]\n");
        return 2;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_POLL_INTERNAL_THREAD, 0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
        MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "bench_stub_upstream: cannot listen on 127.0.0.1:%u\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("PORT %u\n", di ? di->port : port);
    fflush(stdout);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGTERM);
    sigaddset(&s, SIGINT);
    sigprocmask(SIG_BLOCK, &s, NULL);
    int sig;
    sigwait(&s, &sig);
    MHD_stop_daemon(d);
    return 0;
}
