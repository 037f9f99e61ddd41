/* bench_burst.c - bursts of simultaneous requests against a running server
 * on loopback: for each round, CONNS connections are opened at once, each
 * sends one small chat completion, and every answer is awaited (up to
 * --wait seconds). Prints per round how many got 200, 429, another status,
 * or nothing at all, and the slowest answer; exits 1 when any request went
 * unanswered. Bounded: ROUNDS x CONNS requests, 127.0.0.1 only.
 *
 *   bench_burst PORT [--rounds 10] [--conns 300] [--max-tokens 8] [--wait 30]
 *
 * bench/burst_load.sh runs it against a fresh `serve` with the CPU kept busy.
 * Does not hold: any assertion on time (it prints figures).
 */
#define _GNU_SOURCE /* strcasestr */
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 4096
#define RESP_CAP 8192

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct conn {
    int fd;
    int status; /* 0 waiting, -1 closed without an answer, else the HTTP status */
    size_t got;
    double t_done;
    char buf[RESP_CAP];
};

/* Whether c holds a whole response (headers and Content-Length bytes). */
static int complete(struct conn *c)
{
    c->buf[c->got] = '\0';
    char *start = c->buf;
    while (!strncmp(start, "HTTP/1.1 1", 10) && strstr(start, "\r\n\r\n"))
        start = strstr(start, "\r\n\r\n") + 4;
    char *h = strstr(start, "\r\n\r\n");
    if (!h)
        return 0;
    const char *cl = strcasestr(start, "\r\nContent-Length:");
    if (!cl || cl > h)
        return 0;
    if ((size_t)(h + 4 - c->buf) + strtoul(cl + 17, NULL, 10) > c->got)
        return 0;
    c->status = atoi(start + 9);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: bench_burst PORT [--rounds N] [--conns N] [--max-tokens N] [--wait S]\n");
        return 2;
    }
    int port = atoi(argv[1]), rounds = 10, conns = 300, max_tokens = 8, wait_s = 30;
    for (int i = 2; i + 1 < argc; i += 2) {
        int v = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--rounds"))
            rounds = v;
        else if (!strcmp(argv[i], "--conns"))
            conns = v;
        else if (!strcmp(argv[i], "--max-tokens"))
            max_tokens = v;
        else if (!strcmp(argv[i], "--wait"))
            wait_s = v;
        else {
            fprintf(stderr, "bench_burst: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (port <= 0 || port > 65535 || rounds < 1 || rounds > 1000 || conns < 1 || conns > MAX_CONNS ||
        max_tokens < 1 || wait_s < 1) {
        fprintf(stderr, "bench_burst: PORT 1-65535, --rounds 1-1000, --conns 1-%d, --max-tokens >= 1, --wait >= 1\n",
                MAX_CONNS);
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)conns + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)conns + 64 ? rl.rlim_max : (rlim_t)conns + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    char body[256], req[1024];
    snprintf(body, sizeof body,
             "{\"messages\":[{\"role\":\"user\",\"content\":\"burst\"}],\"max_tokens\":%d}", max_tokens);
    int rn = snprintf(req, sizeof req,
                      "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                      port, strlen(body), body);
    struct conn *cs = calloc((size_t)conns, sizeof *cs);
    struct pollfd *pf = calloc((size_t)conns, sizeof *pf);
    if (!cs || !pf)
        return 1;
    long t200 = 0, t429 = 0, tother = 0, tnone = 0;
    printf("round  200   429  other  unanswered  slowest_s\n");
    for (int r = 0; r < rounds; r++) {
        double t0 = now_s();
        for (int i = 0; i < conns; i++) {
            struct conn *c = &cs[i];
            c->status = 0;
            c->got = 0;
            c->fd = socket(AF_INET, SOCK_STREAM, 0);
            struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
            sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
                c->status = -1;
        }
        for (int i = 0; i < conns; i++)
            if (!cs[i].status && send(cs[i].fd, req, (size_t)rn, MSG_NOSIGNAL) != rn)
                cs[i].status = -1;
        int pending = 0;
        for (int i = 0; i < conns; i++)
            pending += cs[i].status == 0;
        while (pending && now_s() - t0 < wait_s) {
            for (int i = 0; i < conns; i++)
                pf[i] = (struct pollfd){.fd = cs[i].status ? -1 : cs[i].fd, .events = POLLIN};
            if (poll(pf, (nfds_t)conns, 100) <= 0)
                continue;
            for (int i = 0; i < conns; i++) {
                struct conn *c = &cs[i];
                if (c->status || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
                    continue;
                ssize_t n = recv(c->fd, c->buf + c->got, RESP_CAP - 1 - c->got, 0);
                if (n <= 0) {
                    c->status = -1;
                    pending--;
                    continue;
                }
                c->got += (size_t)n;
                if (complete(c) || c->got >= RESP_CAP - 1) {
                    if (!c->status)
                        c->status = -1;
                    c->t_done = now_s();
                    pending--;
                }
            }
        }
        long n200 = 0, n429 = 0, nother = 0, nnone = 0;
        double slowest = 0;
        for (int i = 0; i < conns; i++) {
            struct conn *c = &cs[i];
            if (c->status == 200)
                n200++;
            else if (c->status == 429)
                n429++;
            else if (c->status > 0)
                nother++;
            else
                nnone++;
            if (c->status > 0 && c->t_done - t0 > slowest)
                slowest = c->t_done - t0;
            if (c->fd >= 0)
                close(c->fd);
        }
        printf("%5d %4ld %5ld %6ld %11ld %10.2f\n", r + 1, n200, n429, nother, nnone, slowest);
        fflush(stdout);
        t200 += n200;
        t429 += n429;
        tother += nother;
        tnone += nnone;
    }
    printf("total: %ld requests: %ld x 200, %ld x 429, %ld other, %ld unanswered\n",
           (long)rounds * conns, t200, t429, tother, tnone);
    free(cs);
    free(pf);
    return tnone || tother ? 1 : 0;
}
