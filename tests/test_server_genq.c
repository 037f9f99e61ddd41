/* test_server_genq.c - the generation queue (src/server/genq.h) on its own
 * (EA_TEST_NEEDS_NET: src/server/ is built only with the server's libraries):
 * what a producer emits is what the consumer takes, in order and once; the
 * caps stop a producer whose output is not read; the wake callback sees
 * every piece and can stop the producer; finish records the end and drops
 * the producer's reference; the last reference frees; a producer thread
 * and a consumer thread racing lose and duplicate nothing.
 */
#include <pthread.h>
#include <string.h>

#include "harness.h"
#include "server/genq.h"

struct probe {
    int wakes, finished_wakes, last_choice;
    bool stop; /* what wake answers for unfinished pieces: !stop */
    int freed;
};

static bool probe_wake(void *user, int choice, bool finished)
{
    struct probe *p = user;
    p->wakes++;
    p->finished_wakes += finished;
    p->last_choice = choice;
    return !p->stop;
}

static void probe_free(void *user) { ((struct probe *)user)->freed++; }

static struct ea_sample_result sample(int32_t tok, int n_top)
{
    struct ea_sample_result r;
    memset(&r, 0, sizeof r);
    r.token = tok;
    r.logprob = -0.5f;
    r.n_top = n_top;
    for (int i = 0; i < n_top; i++) {
        r.top[i].token = tok + i;
        r.top[i].logprob = -1.0f - (float)i;
    }
    return r;
}

static void emit_take_finish(void)
{
    struct probe pr = {0};
    struct ea__genq q;
    ASSERT_EQ(ea__genq_init(&q, 2, 4096, true, 2, probe_wake, probe_free, &pr), EA_OK);
    ea__genq_begin(&q, 1);
    struct ea_sample_result s1 = sample(7, 5);
    ASSERT(ea__genq_emit(&q, 1, "ab", 2, &s1));
    ASSERT(ea__genq_emit(&q, 1, "c", 1, NULL)); /* no entry without a sample */
    ASSERT_EQ(pr.wakes, 2);
    ASSERT_EQ(pr.last_choice, 1);

    struct ea__genq_buf local;
    ea__genq_buf_init(&local, q.cap);
    pthread_mutex_lock(&q.mu);
    ASSERT(!ea__genq_take_locked(&q, 0, &local)); /* nothing for choice 0 */
    ASSERT(ea__genq_take_locked(&q, 1, &local));
    ASSERT(!ea__genq_take_locked(&q, 1, &local)); /* taken once */
    pthread_mutex_unlock(&q.mu);
    ASSERT_EQ((int)local.text.len, 3);
    ASSERT(!memcmp(local.text.data, "abc", 3));
    ASSERT_EQ(local.n_lps, 1);
    ASSERT_EQ(local.lps[0].token, 7);
    ASSERT_EQ(local.lps[0].n_top, 2); /* top_logprobs of the request, not all 5 */
    ASSERT_EQ(local.lps[0].top[1].token, 8);

    struct ea__genq_end end = {.finish = EA_FINISH_LENGTH, .error = "detail", .n_prompt = 4,
                               .n_generated = 3, .ttft_ms = 1.5};
    ea__genq_finish(&q, 1, "d", 1, &end);
    ASSERT_EQ(pr.finished_wakes, 1);
    ASSERT(q.c[1].done && !q.c[0].done);
    ASSERT_EQ(q.n_done, 1);
    ASSERT_EQ(q.c[1].end.finish, EA_FINISH_LENGTH);
    ASSERT_EQ(q.c[1].end.n_generated, 3);
    ASSERT_STR_EQ(q.c[1].end.error, "detail");
    ASSERT_EQ(pr.freed, 0); /* the creator's reference is left */
    ea__genq_buf_reset(&local);
    pthread_mutex_lock(&q.mu);
    ASSERT(ea__genq_take_locked(&q, 1, &local));
    pthread_mutex_unlock(&q.mu);
    ASSERT_EQ((int)local.text.len, 1);
    ASSERT_EQ(local.n_lps, 0);
    ea__genq_buf_release(&local);
    ea__genq_unref(&q);
    ASSERT_EQ(pr.freed, 1);
    ea__genq_release(&q);
}

static void caps_and_stop(void)
{
    struct probe pr = {0};
    struct ea__genq q;
    ASSERT_EQ(ea__genq_init(&q, 1, 8, true, 0, probe_wake, probe_free, &pr), EA_OK);
    ea__genq_begin(&q, 0);
    ASSERT(ea__genq_emit(&q, 0, "12345678", 8, NULL));
    ASSERT(!q.overflow);
    ASSERT(!ea__genq_emit(&q, 0, "9", 1, NULL)); /* past the text cap */
    ASSERT(q.overflow);
    /* logprob entries are capped too (cap * 4 bytes of entries) */
    struct ea__genq q2;
    struct probe pr2 = {0};
    ASSERT_EQ(ea__genq_init(&q2, 1, 4096, true, 0, probe_wake, probe_free, &pr2), EA_OK);
    struct ea_sample_result s = sample(1, 0);
    size_t max = ea__genq_max_lps(q2.cap);
    bool ok = true;
    size_t n = 0;
    while (ok && n <= max + 32) {
        ok = ea__genq_emit(&q2, 0, NULL, 0, &s);
        n++;
    }
    ASSERT(!ok);
    ASSERT(q2.overflow);
    ASSERT(q2.c[0].pending.n_lps > 0);
    ASSERT((size_t)q2.c[0].pending.n_lps <= max);
    ea__genq_unref(&q2);
    ASSERT_EQ(pr2.freed, 1);
    ea__genq_release(&q2);

    /* the consumer asks the producer to stop: no overflow */
    struct ea__genq q3;
    struct probe pr3 = {.stop = true};
    ASSERT_EQ(ea__genq_init(&q3, 1, 64, false, 0, probe_wake, probe_free, &pr3), EA_OK);
    ASSERT(!ea__genq_emit(&q3, 0, "x", 1, NULL));
    ASSERT(!q3.overflow);
    ASSERT_EQ((int)q3.c[0].pending.text.len, 1); /* what came is kept */
    /* abort undoes begin without freeing */
    ea__genq_begin(&q3, 0);
    ea__genq_abort(&q3, 0);
    ASSERT(!q3.c[0].started);
    ASSERT_EQ(pr3.freed, 0);
    ea__genq_unref(&q3);
    ASSERT_EQ(pr3.freed, 1);
    ea__genq_release(&q3);

    struct ea__genq_end end = {.finish = EA_FINISH_STOP};
    ea__genq_finish(&q, 0, NULL, 0, &end); /* drops the producer's reference */
    ASSERT_EQ(pr.freed, 0);
    ea__genq_unref(&q);
    ASSERT_EQ(pr.freed, 1);
    ea__genq_release(&q);
}

#define RACE_PIECES 20000

static void *producer(void *arg)
{
    struct ea__genq *q = arg;
    char piece[8];
    for (int i = 0; i < RACE_PIECES; i++) {
        piece[0] = (char)('a' + i % 26);
        ea__genq_emit(q, 0, piece, 1, NULL);
    }
    struct ea__genq_end end = {.finish = EA_FINISH_STOP, .n_generated = RACE_PIECES};
    ea__genq_finish(q, 0, "!", 1, &end);
    return NULL;
}

static void producer_consumer_race(void)
{
    struct probe pr = {0};
    struct ea__genq q;
    ASSERT_EQ(ea__genq_init(&q, 1, (size_t)RACE_PIECES + 16, false, 0, probe_wake, probe_free, &pr),
              EA_OK);
    ea__genq_begin(&q, 0);
    pthread_t t;
    ASSERT_EQ(pthread_create(&t, NULL, producer, &q), 0);
    struct ea__genq_buf local;
    ea__genq_buf_init(&local, q.cap);
    size_t got = 0;
    bool done = false, order_ok = true, bang = false;
    while (!done) {
        pthread_mutex_lock(&q.mu);
        bool any = ea__genq_take_locked(&q, 0, &local);
        done = q.c[0].done && !any;
        pthread_mutex_unlock(&q.mu);
        for (size_t i = 0; i < local.text.len; i++, got++) {
            if (local.text.data[i] == '!')
                bang = true;
            else if (local.text.data[i] != (char)('a' + got % 26))
                order_ok = false;
        }
        ea__genq_buf_reset(&local);
    }
    pthread_join(t, NULL);
    ASSERT(order_ok);
    ASSERT(bang);
    ASSERT_EQ((int)got, RACE_PIECES + 1);
    ASSERT(!q.overflow);
    ea__genq_buf_release(&local);
    ea__genq_unref(&q);
    ASSERT_EQ(pr.freed, 1);
    ea__genq_release(&q);
}

EA_TESTS(EA_TEST(emit_take_finish), EA_TEST(caps_and_stop), EA_TEST(producer_consumer_race))
