/* test_sse.c (EA_TEST_NEEDS_NET: src/router/ is built only with the
 * server's libraries) - the Server-Sent Events parser (src/router/sse.h):
 * a recorded OpenAI chat stream gives the same events whatever two places
 * it is split at (every pair of positions) and fed byte by byte; CR, LF and
 * CRLF line ends (a CRLF split between chunks is one line end); a BOM at
 * the start only, even split; comments, event names, multi-line data,
 * fields without a colon or value; events without data are dropped; the
 * per-event cap fails cleanly (an error, the same wherever the input is
 * split) and the parser stays failed; the callback can stop the parser.
 */
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "router/sse.h"

/* A chat.completion stream as OpenAI sends it (stream_options.include_usage):
 * the role chunk, content chunks (one splits a UTF-8 sequence if cut in its
 * middle: "café" and an emoji), the finish chunk, the usage chunk, [DONE]. */
static const char OPENAI_STREAM[] =
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1733600000,"
    "\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_0ba0d124f1\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,"
    "\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1733600000,"
    "\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_0ba0d124f1\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"content\":\"Un caf\xc3\xa9\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1733600000,"
    "\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_0ba0d124f1\",\"choices\":[{\"index\":0,"
    "\"delta\":{\"content\":\" \xf0\x9f\x98\x80!\"},\"logprobs\":null,\"finish_reason\":null}],\"usage\":null}\n\n"
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1733600000,"
    "\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_0ba0d124f1\",\"choices\":[{\"index\":0,"
    "\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
    "data: {\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1733600000,"
    "\"model\":\"gpt-4o-mini-2024-07-18\",\"system_fingerprint\":\"fp_0ba0d124f1\",\"choices\":[],"
    "\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":4,\"total_tokens\":15,"
    "\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},"
    "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,"
    "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}}}\n\n"
    "data: [DONE]\n\n";
#define OPENAI_EVENTS 6

#define MAX_EV 64

struct rec {
    int n;
    char *name[MAX_EV];
    char *data[MAX_EV];
    size_t len[MAX_EV];
    int stop_after; /* 0 = never stop */
};

static bool rec_cb(void *user, const char *event, const char *data, size_t len)
{
    struct rec *r = user;
    if (r->n < MAX_EV) {
        r->name[r->n] = strdup(event);
        r->data[r->n] = malloc(len + 1);
        memcpy(r->data[r->n], data, len + 1);
        r->len[r->n] = len;
    }
    r->n++;
    return !(r->stop_after && r->n >= r->stop_after);
}

static void rec_free(struct rec *r)
{
    for (int i = 0; i < r->n && i < MAX_EV; i++) {
        free(r->name[i]);
        free(r->data[i]);
    }
    memset(r, 0, sizeof *r);
}

static void rec_same(const struct rec *a, const struct rec *b)
{
    ASSERT_EQ(a->n, b->n);
    for (int i = 0; i < a->n && i < MAX_EV; i++) {
        ASSERT_STR_EQ(a->name[i], b->name[i]);
        ASSERT_EQ(a->len[i], b->len[i]);
        ASSERT(memcmp(a->data[i], b->data[i], a->len[i]) == 0);
    }
}

/* Feeds s in pieces cut at the given positions (sorted, within s). */
static ea_status feed_cuts(const char *s, size_t n, const size_t *cuts, int n_cuts, size_t max,
                           struct rec *r)
{
    struct ea__sse p;
    ea__sse_init(&p, max, rec_cb, r);
    struct ea_error err = {0};
    size_t at = 0;
    ea_status st = EA_OK;
    for (int i = 0; i <= n_cuts && !st; i++) {
        size_t end = i < n_cuts ? cuts[i] : n;
        st = ea__sse_feed(&p, s + at, end - at, &err);
        at = end;
    }
    ea__sse_release(&p);
    return st;
}

static ea_status feed_all(const char *s, size_t max, struct rec *r)
{
    return feed_cuts(s, strlen(s), NULL, 0, max, r);
}

static void openai_stream_whole(void)
{
    struct rec r = {0};
    ASSERT_EQ(feed_all(OPENAI_STREAM, 0, &r), EA_OK);
    ASSERT_EQ(r.n, OPENAI_EVENTS);
    for (int i = 0; i < r.n; i++)
        ASSERT_STR_EQ(r.name[i], "message");
    ASSERT(strstr(r.data[1], "\"content\":\"Un caf\xc3\xa9\""));
    ASSERT(r.data[0][0] == '{' && r.data[0][r.len[0] - 1] == '}'); /* no line end kept */
    ASSERT_STR_EQ(r.data[5], "[DONE]");
    rec_free(&r);
}

/* Every split of the stream into three pieces (two cut positions), and
 * byte by byte, gives exactly the events of the whole. */
static void openai_stream_every_split(void)
{
    const size_t n = strlen(OPENAI_STREAM);
    struct rec whole = {0};
    ASSERT_EQ(feed_all(OPENAI_STREAM, 0, &whole), EA_OK);
    long checked = 0;
    for (size_t a = 0; a <= n; a++) {
        for (size_t b = a; b <= n; b += b < a + 32 ? 1 : 31) {
            size_t cuts[2] = {a, b};
            struct rec r = {0};
            ASSERT_EQ(feed_cuts(OPENAI_STREAM, n, cuts, 2, 0, &r), EA_OK);
            rec_same(&whole, &r);
            rec_free(&r);
            checked++;
        }
    }
    ASSERT(checked > (long)n * 40);
    /* one byte at a time */
    size_t *cuts = malloc(sizeof *cuts * n);
    for (size_t i = 0; i < n; i++)
        cuts[i] = i;
    struct rec r = {0};
    ASSERT_EQ(feed_cuts(OPENAI_STREAM, n, cuts, (int)n, 0, &r), EA_OK);
    rec_same(&whole, &r);
    rec_free(&r);
    free(cuts);
    rec_free(&whole);
}

/* The same stream with CRLF and with CR line ends, split everywhere. */
static void line_ends(void)
{
    const size_t n = strlen(OPENAI_STREAM);
    char *crlf = malloc(n * 2 + 1), *cr = malloc(n + 1);
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (OPENAI_STREAM[i] == '\n')
            crlf[o++] = '\r';
        crlf[o++] = OPENAI_STREAM[i];
        cr[i] = OPENAI_STREAM[i] == '\n' ? '\r' : OPENAI_STREAM[i];
    }
    crlf[o] = '\0';
    cr[n] = '\0';
    struct rec whole = {0};
    ASSERT_EQ(feed_all(OPENAI_STREAM, 0, &whole), EA_OK);
    for (size_t a = 0; a <= o; a++) {
        size_t cuts[1] = {a};
        struct rec r = {0};
        ASSERT_EQ(feed_cuts(crlf, o, cuts, 1, 0, &r), EA_OK);
        rec_same(&whole, &r);
        rec_free(&r);
        if (a <= n) {
            ASSERT_EQ(feed_cuts(cr, n, cuts, 1, 0, &r), EA_OK);
            rec_same(&whole, &r);
            rec_free(&r);
        }
    }
    /* mixed ends in one event; a CR then an LF in the next chunk is one end,
     * a CR then CR is two (a blank line: dispatch) */
    struct rec r = {0};
    ASSERT_EQ(feed_all("data: a\rdata: b\r\ndata: c\n\r\n", 0, &r), EA_OK);
    ASSERT_EQ(r.n, 1);
    ASSERT_STR_EQ(r.data[0], "a\nb\nc");
    rec_free(&r);
    const char *s = "data: x\r\r";
    size_t cut[1] = {8};
    ASSERT_EQ(feed_cuts(s, strlen(s), cut, 1, 0, &r), EA_OK);
    ASSERT_EQ(r.n, 1);
    rec_free(&r);
    s = "data: x\r\ndata: y\r\n\r\n";
    cut[0] = 8; /* between the CR and the LF */
    ASSERT_EQ(feed_cuts(s, strlen(s), cut, 1, 0, &r), EA_OK);
    ASSERT_EQ(r.n, 1);
    ASSERT_STR_EQ(r.data[0], "x\ny");
    rec_free(&r);
    free(crlf);
    free(cr);
    rec_free(&whole);
}

static void bom(void)
{
    const char *s = "\xef\xbb\xbf" "data: 1\n\n";
    struct rec r = {0};
    for (size_t a = 0; a <= strlen(s); a++) {
        size_t cuts[1] = {a};
        ASSERT_EQ(feed_cuts(s, strlen(s), cuts, 1, 0, &r), EA_OK);
        ASSERT_EQ(r.n, 1);
        ASSERT_STR_EQ(r.data[0], "1");
        rec_free(&r);
    }
    /* a second BOM is content: the line "\xef\xbb\xbf" "data: 2" is a field
     * whose name is not "data" (ignored) */
    ASSERT_EQ(feed_all("\xef\xbb\xbf\xef\xbb\xbf" "data: 2\n\ndata: 3\n\n", 0, &r), EA_OK);
    ASSERT_EQ(r.n, 1);
    ASSERT_STR_EQ(r.data[0], "3");
    rec_free(&r);
    /* a partial BOM is not skipped: "\xef" "data" is not the field "data" */
    ASSERT_EQ(feed_all("\xef" "data: 4\n\ndata: 5\n\n", 0, &r), EA_OK);
    ASSERT_EQ(r.n, 1);
    ASSERT_STR_EQ(r.data[0], "5");
    rec_free(&r);
    /* a stream that is not SSE at all gives no event */
    ASSERT_EQ(feed_all("<html><body>Bad gateway</body></html>\n", 0, &r), EA_OK);
    ASSERT_EQ(r.n, 0);
    rec_free(&r);
}

static void fields(void)
{
    struct rec r = {0};
    ASSERT_EQ(feed_all(": keep-alive\n"
                       ":\n"
                       "event: error\n"
                       "id: 7\n"
                       "retry: 1000\n"
                       "foo: bar\n"
                       "data:{\"error\":{\"message\":\"boom\"}}\n"
                       "\n"
                       "data\n"          /* no colon: the field "data" with an empty value */
                       "\n"
                       "data:  two spaces\n" /* only one space is removed */
                       "data:\n"
                       "\n"
                       "event: lonely\n" /* no data: dropped, and the name with it */
                       "\n"
                       "data: after\n"
                       "\n"
                       "event: first\n"
                       "event: second\n" /* the last name wins */
                       "data: z\n"
                       "\n"
                       "data: unterminated\n", /* no blank line: not dispatched */
                       0, &r),
              EA_OK);
    ASSERT_EQ(r.n, 5);
    ASSERT_STR_EQ(r.name[0], "error");
    ASSERT_STR_EQ(r.data[0], "{\"error\":{\"message\":\"boom\"}}");
    ASSERT_STR_EQ(r.name[1], "message");
    ASSERT_EQ(r.len[1], 0);
    ASSERT_STR_EQ(r.data[2], " two spaces\n");
    ASSERT_STR_EQ(r.name[3], "message");
    ASSERT_STR_EQ(r.data[3], "after");
    ASSERT_STR_EQ(r.name[4], "second");
    ASSERT_STR_EQ(r.data[4], "z");
    rec_free(&r);
    /* partial: a line not ended, or data waiting for its blank line */
    struct ea__sse p;
    struct ea_error err = {0};
    ea__sse_init(&p, 0, rec_cb, &r);
    ASSERT(!ea__sse_partial(&p));
    ASSERT_EQ(ea__sse_feed(&p, "data: x", 7, &err), EA_OK);
    ASSERT(ea__sse_partial(&p));
    ASSERT_EQ(ea__sse_feed(&p, "\n", 1, &err), EA_OK);
    ASSERT(ea__sse_partial(&p));
    ASSERT_EQ(ea__sse_feed(&p, "\n", 1, &err), EA_OK);
    ASSERT(!ea__sse_partial(&p));
    ASSERT_EQ(r.n, 1);
    ea__sse_release(&p);
    rec_free(&r);
}

/* An event or a line over the cap is EA_ETOOBIG wherever the input is
 * split, the events before it are dispatched, and the parser stays failed. */
static void cap(void)
{
    const size_t max = 64;
    char big[512];
    memset(big, 'x', sizeof big);
    /* an event of 40 + 40 bytes of data: over 64 only together */
    char s[1024];
    snprintf(s, sizeof s, "data: ok\n\ndata: %.40s\ndata: %.40s\n\ndata: never\n\n", big, big);
    size_t n = strlen(s);
    for (size_t a = 0; a <= n; a++) {
        size_t cuts[1] = {a};
        struct rec r = {0};
        ASSERT_EQ(feed_cuts(s, n, cuts, 1, max, &r), EA_ETOOBIG);
        ASSERT_EQ(r.n, 1);
        ASSERT_STR_EQ(r.data[0], "ok");
        rec_free(&r);
    }
    /* one line over the cap (a comment too), ended or not */
    snprintf(s, sizeof s, "data: ok\n\n:%.100s\n", big); /* 101 > 64 + the slack */
    n = strlen(s);
    for (size_t a = 0; a <= n; a++) {
        size_t cuts[1] = {a};
        struct rec r = {0};
        ASSERT_EQ(feed_cuts(s, n, cuts, 1, max, &r), EA_ETOOBIG);
        ASSERT_EQ(r.n, 1);
        rec_free(&r);
        ASSERT_EQ(feed_cuts(s, n - 1, cuts, a < n ? 1 : 0, max, &r), EA_ETOOBIG);
        rec_free(&r);
    }
    /* exactly at the cap is fine: 63 bytes of data + its \n */
    snprintf(s, sizeof s, "data: %.63s\n\n", big);
    struct rec r = {0};
    ASSERT_EQ(feed_all(s, max, &r), EA_OK);
    ASSERT_EQ(r.n, 1);
    ASSERT_EQ(r.len[0], 63);
    rec_free(&r);
    /* failed for good */
    struct ea__sse p;
    struct ea_error err = {0};
    ea__sse_init(&p, max, rec_cb, &r);
    snprintf(s, sizeof s, "data: %.100s", big);
    ASSERT_EQ(ea__sse_feed(&p, s, strlen(s), &err), EA_ETOOBIG);
    ASSERT(strstr(err.msg, "64-byte cap"));
    ASSERT_EQ(ea__sse_feed(&p, "\n\ndata: y\n\n", 11, &err), EA_ETOOBIG);
    ASSERT_EQ(r.n, 0);
    ea__sse_release(&p);
    rec_free(&r);
}

static void callback_stops(void)
{
    struct rec r = {0};
    r.stop_after = 2;
    struct ea__sse p;
    struct ea_error err = {0};
    ea__sse_init(&p, 0, rec_cb, &r);
    ASSERT_EQ(ea__sse_feed(&p, OPENAI_STREAM, strlen(OPENAI_STREAM), &err), EA_ECANCELLED);
    ASSERT_EQ(r.n, 2);
    ASSERT_EQ(ea__sse_feed(&p, "data: 1\n\n", 9, &err), EA_ECANCELLED);
    ASSERT_EQ(r.n, 2);
    ea__sse_release(&p);
    rec_free(&r);
}

/* NUL bytes inside data are kept (the length says where data ends). */
static void nul_bytes(void)
{
    static const char s[] = "data: a\0b\n\n";
    struct rec r = {0};
    ASSERT_EQ(feed_cuts(s, sizeof s - 1, NULL, 0, 0, &r), EA_OK);
    ASSERT_EQ(r.n, 1);
    ASSERT_EQ(r.len[0], 3);
    ASSERT(memcmp(r.data[0], "a\0b", 3) == 0);
    rec_free(&r);
    /* an event name ends at a NUL (fuzz_sse found a name "\0..." passed as
     * an empty C string): empty, it is "message" */
    static const char s2[] = "event: \0x\ndata: 1\n\nevent: ab\0cd\ndata: 2\n\n";
    ASSERT_EQ(feed_cuts(s2, sizeof s2 - 1, NULL, 0, 0, &r), EA_OK);
    ASSERT_EQ(r.n, 2);
    ASSERT_STR_EQ(r.name[0], "message");
    ASSERT_STR_EQ(r.name[1], "ab");
    rec_free(&r);
}

/* An allocation failure is EA_ENOMEM (said so), and the parser stays failed. */
static void out_of_memory(void)
{
    struct rec r = {0};
    struct ea__sse p;
    struct ea_error err = {0};
    ea__sse_init(&p, 0, rec_cb, &r);
    ea_alloc_fail_after(1);
    ea_status st = ea__sse_feed(&p, "data: x\n\n", 9, &err);
    ea_alloc_fail_after(0);
    ASSERT_EQ(st, EA_ENOMEM);
    ASSERT(strstr(err.msg, "out of memory"));
    ASSERT_EQ(ea__sse_feed(&p, "data: y\n\n", 9, &err), EA_ENOMEM);
    ASSERT_EQ(r.n, 0);
    ea__sse_release(&p);
}

EA_TESTS(EA_TEST(openai_stream_whole), EA_TEST(openai_stream_every_split), EA_TEST(line_ends), EA_TEST(bom),
         EA_TEST(fields), EA_TEST(cap), EA_TEST(callback_stops), EA_TEST(nul_bytes),
         EA_TEST(out_of_memory))
