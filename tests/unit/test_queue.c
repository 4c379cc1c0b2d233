/*
 * test_queue.c -- cf_queue: FIFO order, capacity, poll and timeout codes, blocking calls
 * released from other threads, many producers x many consumers, task_done/join, close
 * (draining and immediate), growth of the unbounded ring.
 *
 * Every blocking call in a helper thread is joined with a deadline (join_within), so a
 * lost wake-up fails the test instead of hanging it.  Assertions run on the test's own
 * thread only; helper threads record what happened and the test checks it afterwards.
 * Time checks are lower bounds only (a timed wait must not end early), never speed limits.
 */
#define _GNU_SOURCE /* pthread_timedjoin_np */

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "cfutures.h"
#include "cftest.h"

#define ITEM(n) ((void *)(uintptr_t)(n))

/* How long a helper thread may take to finish once released before the test fails. */
#define RELEASE_LIMIT 20.0
/* How long a call is watched to check that it really blocks. */
#define BLOCK_CHECK 0.05

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double seconds)
{
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void join_within(pthread_t thread, double seconds)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline); /* pthread_timedjoin_np measures real time */
    deadline.tv_sec += (time_t)seconds;
    int rc = pthread_timedjoin_np(thread, NULL, &deadline);
    if (rc != 0)
        fail_msg("helper thread did not finish within %.0f s (rc %d)", seconds, rc);
}

static cf_queue *new_queue(size_t capacity)
{
    cf_queue *q = NULL;
    assert_int_equal(cf_queue_new(&q, capacity), 0);
    assert_non_null(q);
    return q;
}

/* One queue call made from a helper thread. */
typedef enum { OP_PUT, OP_GET, OP_JOIN } op_kind;

typedef struct call {
    op_kind op;
    cf_queue *q;
    double timeout;
    void *item; /* OP_PUT: what to put; OP_GET: what was got */
    int rc;
    atomic_bool returned;
    pthread_t thread;
} call;

static void *run_call(void *arg)
{
    call *c = arg;
    switch (c->op) {
    case OP_PUT:
        c->rc = cf_queue_put(c->q, c->item, c->timeout);
        break;
    case OP_GET:
        c->rc = cf_queue_get(c->q, &c->item, c->timeout);
        break;
    case OP_JOIN:
        c->rc = cf_queue_join(c->q, c->timeout);
        break;
    }
    atomic_store(&c->returned, true);
    return NULL;
}

static void start_call(call *c, op_kind op, cf_queue *q, void *item, double timeout)
{
    c->op = op;
    c->q = q;
    c->item = item;
    c->timeout = timeout;
    c->rc = 1; /* no CF_E* code: proves the call wrote its own */
    atomic_init(&c->returned, false);
    assert_int_equal(pthread_create(&c->thread, NULL, run_call, c), 0);
}

/* Checks the call is still waiting a while after it started. */
static void assert_blocked(call *c)
{
    sleep_s(BLOCK_CHECK);
    assert_false(atomic_load(&c->returned));
}

static int finish_call(call *c)
{
    join_within(c->thread, RELEASE_LIMIT);
    return c->rc;
}

static void test_fifo_order(void **state)
{
    (void)state;
    cf_queue *q = new_queue(4);
    /* Many short rounds move the ring's head all the way round several times. */
    uintptr_t next_put = 1, next_get = 1;
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 1 + round % 4; i++)
            assert_int_equal(cf_queue_put(q, ITEM(next_put++), CF_POLL), 0);
        while (next_get < next_put) {
            void *v = NULL;
            assert_int_equal(cf_queue_get(q, &v, CF_POLL), 0);
            assert_ptr_equal(v, ITEM(next_get++));
        }
    }
    cf_queue_free(q);
}

static void test_null_is_an_item(void **state)
{
    (void)state;
    cf_queue *q = new_queue(2);
    void *v = ITEM(7);
    assert_int_equal(cf_queue_put(q, NULL, CF_POLL), 0);
    assert_int_equal(cf_queue_size(q), 1);
    assert_int_equal(cf_queue_get(q, &v, CF_POLL), 0);
    assert_null(v);
    cf_queue_free(q);
}

static void test_capacity_full_on_poll(void **state)
{
    (void)state;
    cf_queue *q = new_queue(3);
    for (uintptr_t i = 1; i <= 3; i++)
        assert_int_equal(cf_queue_put(q, ITEM(i), CF_POLL), 0);
    assert_int_equal(cf_queue_put(q, ITEM(4), CF_POLL), CF_EFULL);
    assert_int_equal(cf_queue_size(q), 3);

    void *v = NULL;
    assert_int_equal(cf_queue_get(q, &v, CF_POLL), 0);
    assert_ptr_equal(v, ITEM(1));
    assert_int_equal(cf_queue_put(q, ITEM(4), CF_POLL), 0);
    assert_int_equal(cf_queue_put(q, ITEM(5), CF_POLL), CF_EFULL);
    for (uintptr_t i = 2; i <= 4; i++) {
        assert_int_equal(cf_queue_get(q, &v, CF_POLL), 0);
        assert_ptr_equal(v, ITEM(i));
    }
    cf_queue_free(q);
}

static void test_full_after_timeout(void **state)
{
    (void)state;
    cf_queue *q = new_queue(1);
    assert_int_equal(cf_queue_put(q, ITEM(1), CF_POLL), 0);
    double start = now_s();
    assert_int_equal(cf_queue_put(q, ITEM(2), 0.1), CF_EFULL);
    assert_true(now_s() - start >= 0.099);
    assert_int_equal(cf_queue_size(q), 1);
    cf_queue_free(q);
}

static void test_empty_on_poll_and_timeout(void **state)
{
    (void)state;
    cf_queue *q = new_queue(2);
    void *v = ITEM(99);
    assert_int_equal(cf_queue_get(q, &v, CF_POLL), CF_EEMPTY);
    assert_ptr_equal(v, ITEM(99)); /* a failed get leaves *item alone */
    double start = now_s();
    assert_int_equal(cf_queue_get(q, &v, 0.1), CF_EEMPTY);
    assert_true(now_s() - start >= 0.099);
    assert_ptr_equal(v, ITEM(99));
    cf_queue_free(q);
}

static void test_blocked_put_released_by_get(void **state)
{
    (void)state;
    cf_queue *q = new_queue(1);
    assert_int_equal(cf_queue_put(q, ITEM(1), CF_POLL), 0);
    call forever, timed;
    start_call(&forever, OP_PUT, q, ITEM(2), CF_FOREVER);
    start_call(&timed, OP_PUT, q, ITEM(3), 60.0);
    assert_blocked(&forever);
    assert_blocked(&timed);

    /* Each get frees one slot for one putter; the two may get in either order. */
    void *v = NULL;
    unsigned seen = 0;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cf_queue_get(q, &v, RELEASE_LIMIT), 0);
        assert_in_range((uintptr_t)v, 1, 3);
        seen |= 1u << (uintptr_t)v;
    }
    assert_int_equal(seen, 0xe); /* items 1, 2 and 3, each once */
    assert_int_equal(finish_call(&forever), 0);
    assert_int_equal(finish_call(&timed), 0);
    assert_int_equal(cf_queue_size(q), 0);
    cf_queue_free(q);
}

static void test_blocked_get_released_by_put(void **state)
{
    (void)state;
    cf_queue *q = new_queue(4);
    call forever, timed;
    start_call(&forever, OP_GET, q, NULL, CF_FOREVER);
    start_call(&timed, OP_GET, q, NULL, 60.0);
    assert_blocked(&forever);
    assert_blocked(&timed);

    assert_int_equal(cf_queue_put(q, ITEM(1), CF_POLL), 0);
    assert_int_equal(cf_queue_put(q, ITEM(2), CF_POLL), 0);
    assert_int_equal(finish_call(&forever), 0);
    assert_int_equal(finish_call(&timed), 0);
    assert_true((forever.item == ITEM(1) && timed.item == ITEM(2)) ||
                (forever.item == ITEM(2) && timed.item == ITEM(1)));
    assert_int_equal(cf_queue_size(q), 0);
    cf_queue_free(q);
}

/* A timeout too long for a timespec means forever, not a deadline in the past. */
static void test_huge_timeout_waits(void **state)
{
    (void)state;
    cf_queue *q = new_queue(1);
    call get;
    start_call(&get, OP_GET, q, NULL, 1e300);
    assert_blocked(&get);
    assert_int_equal(cf_queue_put(q, ITEM(5), INFINITY), 0);
    assert_int_equal(finish_call(&get), 0);
    assert_ptr_equal(get.item, ITEM(5));
    cf_queue_free(q);
}

/* ---- many producers x many consumers ---- */

#define PRODUCERS 4
#define CONSUMERS 4
#define PER_PRODUCER 25000
#define TOTAL (PRODUCERS * PER_PRODUCER)

typedef struct mpmc {
    cf_queue *q;
    atomic_uint *seen; /* per item: times received */
} mpmc;

typedef struct producer {
    mpmc *shared;
    int index;
    int errors;
    pthread_t thread;
} producer;

typedef struct consumer {
    mpmc *shared;
    int index;
    int errors;
    int out_of_order; /* items of one producer received out of its put order */
    size_t received;
    uint64_t sum;
    pthread_t thread;
} consumer;

/* Item values are 1..TOTAL: producer p puts p*PER_PRODUCER + s + 1 for s in order. */
static void *produce(void *arg)
{
    producer *p = arg;
    /* Half the producers block forever, half retry short timed waits, so both the untimed
     * and the timed-out-then-recheck paths race with the consumers. */
    double timeout = p->index % 2 ? CF_FOREVER : 0.001;
    for (uintptr_t s = 0; s < PER_PRODUCER; s++) {
        void *item = ITEM((uintptr_t)p->index * PER_PRODUCER + s + 1);
        int rc;
        while ((rc = cf_queue_put(p->shared->q, item, timeout)) == CF_EFULL)
            ;
        if (rc != 0)
            p->errors++;
    }
    return NULL;
}

static void *consume(void *arg)
{
    consumer *c = arg;
    double timeout = c->index % 2 ? CF_FOREVER : 0.001;
    long last[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++)
        last[p] = -1;
    for (;;) {
        void *item;
        int rc = cf_queue_get(c->shared->q, &item, timeout);
        if (rc == CF_EEMPTY)
            continue;
        if (rc == CF_ECLOSED)
            break;
        uintptr_t v = (uintptr_t)item;
        if (rc != 0 || v < 1 || v > TOTAL) {
            c->errors++;
            break;
        }
        long p = (long)((v - 1) / PER_PRODUCER), s = (long)((v - 1) % PER_PRODUCER);
        if (s <= last[p])
            c->out_of_order++;
        last[p] = s;
        atomic_fetch_add(&c->shared->seen[v - 1], 1);
        c->received++;
        c->sum += v;
        if (cf_queue_task_done(c->shared->q) != 0)
            c->errors++;
    }
    return NULL;
}

static void test_many_producers_many_consumers(void **state)
{
    (void)state;
    mpmc shared = {new_queue(64), calloc(TOTAL, sizeof(atomic_uint))};
    assert_non_null(shared.seen);
    producer producers[PRODUCERS];
    consumer consumers[CONSUMERS];
    for (int i = 0; i < CONSUMERS; i++) {
        consumers[i] = (consumer){.shared = &shared, .index = i};
        assert_int_equal(pthread_create(&consumers[i].thread, NULL, consume, &consumers[i]), 0);
    }
    for (int i = 0; i < PRODUCERS; i++) {
        producers[i] = (producer){.shared = &shared, .index = i};
        assert_int_equal(pthread_create(&producers[i].thread, NULL, produce, &producers[i]), 0);
    }
    for (int i = 0; i < PRODUCERS; i++)
        join_within(producers[i].thread, 120.0);
    /* Every item put is marked done by a consumer; join sees the last one. */
    assert_int_equal(cf_queue_join(shared.q, 120.0), 0);
    cf_queue_close(shared.q, 0);
    for (int i = 0; i < CONSUMERS; i++)
        join_within(consumers[i].thread, RELEASE_LIMIT);

    size_t received = 0;
    uint64_t sum = 0;
    for (int i = 0; i < PRODUCERS; i++)
        assert_int_equal(producers[i].errors, 0);
    for (int i = 0; i < CONSUMERS; i++) {
        assert_int_equal(consumers[i].errors, 0);
        assert_int_equal(consumers[i].out_of_order, 0);
        received += consumers[i].received;
        sum += consumers[i].sum;
    }
    assert_int_equal(received, TOTAL);
    assert_int_equal(sum, (uint64_t)TOTAL * (TOTAL + 1) / 2);
    for (size_t i = 0; i < TOTAL; i++)
        if (atomic_load(&shared.seen[i]) != 1)
            fail_msg("item %zu received %u times", i + 1, atomic_load(&shared.seen[i]));
    assert_int_equal(cf_queue_task_done(shared.q), CF_EINVAL);
    free(shared.seen);
    cf_queue_free(shared.q);
}

/* ---- task_done / join ---- */

static void test_task_done_and_join(void **state)
{
    (void)state;
    cf_queue *q = new_queue(0);
    assert_int_equal(cf_queue_join(q, CF_POLL), 0); /* nothing put: nothing to wait for */
    for (uintptr_t i = 1; i <= 3; i++)
        assert_int_equal(cf_queue_put(q, ITEM(i), CF_POLL), 0);
    assert_int_equal(cf_queue_join(q, CF_POLL), CF_ETIMEDOUT);
    double start = now_s();
    assert_int_equal(cf_queue_join(q, 0.1), CF_ETIMEDOUT);
    assert_true(now_s() - start >= 0.099);

    void *v;
    for (int i = 0; i < 3; i++)
        assert_int_equal(cf_queue_get(q, &v, CF_POLL), 0);
    /* Taken is not done: join still waits for the task_done calls. */
    assert_int_equal(cf_queue_join(q, CF_POLL), CF_ETIMEDOUT);
    assert_int_equal(cf_queue_task_done(q), 0);
    assert_int_equal(cf_queue_task_done(q), 0);
    assert_int_equal(cf_queue_join(q, CF_POLL), CF_ETIMEDOUT);
    assert_int_equal(cf_queue_task_done(q), 0);
    assert_int_equal(cf_queue_join(q, CF_POLL), 0);
    cf_queue_free(q);
}

static void test_join_released_by_last_task_done(void **state)
{
    (void)state;
    cf_queue *q = new_queue(8);
    for (uintptr_t i = 1; i <= 5; i++)
        assert_int_equal(cf_queue_put(q, ITEM(i), CF_POLL), 0);
    call forever, timed;
    start_call(&forever, OP_JOIN, q, NULL, CF_FOREVER);
    start_call(&timed, OP_JOIN, q, NULL, 60.0);
    void *v;
    for (int i = 0; i < 5; i++)
        assert_int_equal(cf_queue_get(q, &v, CF_POLL), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(cf_queue_task_done(q), 0);
    assert_blocked(&forever); /* one item is still not done */
    assert_blocked(&timed);
    assert_int_equal(cf_queue_task_done(q), 0);
    assert_int_equal(finish_call(&forever), 0);
    assert_int_equal(finish_call(&timed), 0);
    cf_queue_free(q);
}

static void test_task_done_too_often(void **state)
{
    (void)state;
    cf_queue *q = new_queue(2);
    assert_int_equal(cf_queue_task_done(q), CF_EINVAL);
    assert_int_equal(cf_queue_put(q, ITEM(1), CF_POLL), 0);
    /* As in Python, task_done counts against puts, whether or not the item was taken. */
    assert_int_equal(cf_queue_task_done(q), 0);
    assert_int_equal(cf_queue_task_done(q), CF_EINVAL);
    assert_int_equal(cf_queue_join(q, CF_POLL), 0);
    void *v = NULL;
    assert_int_equal(cf_queue_get(q, &v, CF_POLL), 0);
    assert_ptr_equal(v, ITEM(1));
    assert_int_equal(cf_queue_task_done(q), CF_EINVAL);
    cf_queue_free(q);
}

/* ---- close ---- */

static void test_close_put_fails_get_drains(void **state)
{
    (void)state;
    cf_queue *q = new_queue(4);
    assert_int_equal(cf_queue_put(q, ITEM(1), CF_POLL), 0);
    assert_int_equal(cf_queue_put(q, ITEM(2), CF_POLL), 0);
    cf_queue_close(q, 0);
    assert_int_equal(cf_queue_put(q, ITEM(3), CF_POLL), CF_ECLOSED);
    assert_int_equal(cf_queue_put(q, ITEM(3), 1.0), CF_ECLOSED);
    assert_int_equal(cf_queue_size(q), 2);
    /* A draining close discards nothing: join still waits for the remaining items. */
    assert_int_equal(cf_queue_join(q, 0.01), CF_ETIMEDOUT);

    void *v = NULL;
    assert_int_equal(cf_queue_get(q, &v, CF_POLL), 0);
    assert_ptr_equal(v, ITEM(1));
    assert_int_equal(cf_queue_get(q, &v, RELEASE_LIMIT), 0);
    assert_ptr_equal(v, ITEM(2));
    v = ITEM(99);
    assert_int_equal(cf_queue_get(q, &v, CF_POLL), CF_ECLOSED);
    assert_int_equal(cf_queue_get(q, &v, RELEASE_LIMIT), CF_ECLOSED);
    assert_ptr_equal(v, ITEM(99));

    assert_int_equal(cf_queue_task_done(q), 0);
    assert_int_equal(cf_queue_task_done(q), 0);
    assert_int_equal(cf_queue_join(q, CF_POLL), 0);
    cf_queue_free(q);
}

static void test_close_releases_blocked_getters(void **state)
{
    (void)state;
    cf_queue *q = new_queue(4);
    call gets[3];
    for (int i = 0; i < 3; i++)
        start_call(&gets[i], OP_GET, q, ITEM(99), i == 0 ? 60.0 : CF_FOREVER);
    for (int i = 0; i < 3; i++)
        assert_blocked(&gets[i]);
    cf_queue_close(q, 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(finish_call(&gets[i]), CF_ECLOSED);
        assert_ptr_equal(gets[i].item, ITEM(99));
    }
    cf_queue_free(q);
}

static void test_close_releases_blocked_putters(void **state)
{
    (void)state;
    cf_queue *q = new_queue(1);
    assert_int_equal(cf_queue_put(q, ITEM(1), CF_POLL), 0);
    call puts[2];
    start_call(&puts[0], OP_PUT, q, ITEM(2), CF_FOREVER);
    start_call(&puts[1], OP_PUT, q, ITEM(3), 60.0);
    assert_blocked(&puts[0]);
    assert_blocked(&puts[1]);
    cf_queue_close(q, 0);
    assert_int_equal(finish_call(&puts[0]), CF_ECLOSED);
    assert_int_equal(finish_call(&puts[1]), CF_ECLOSED);
    void *v = NULL;
    assert_int_equal(cf_queue_get(q, &v, CF_POLL), 0);
    assert_ptr_equal(v, ITEM(1));
    assert_int_equal(cf_queue_get(q, &v, CF_POLL), CF_ECLOSED);
    cf_queue_free(q);
}

static void test_close_immediate_releases_putters_and_joiners(void **state)
{
    (void)state;
    cf_queue *q = new_queue(2);
    assert_int_equal(cf_queue_put(q, ITEM(1), CF_POLL), 0);
    assert_int_equal(cf_queue_put(q, ITEM(2), CF_POLL), 0);
    call put, join;
    start_call(&put, OP_PUT, q, ITEM(3), CF_FOREVER);
    start_call(&join, OP_JOIN, q, NULL, CF_FOREVER);
    assert_blocked(&put);
    assert_blocked(&join);

    cf_queue_close(q, 1);
    assert_int_equal(finish_call(&put), CF_ECLOSED);
    /* The discarded items count as done, so the joiner's wait is over. */
    assert_int_equal(finish_call(&join), 0);
    assert_int_equal(cf_queue_size(q), 0);
    void *v = ITEM(99);
    assert_int_equal(cf_queue_get(q, &v, CF_POLL), CF_ECLOSED);
    assert_ptr_equal(v, ITEM(99));
    assert_int_equal(cf_queue_put(q, ITEM(4), CF_POLL), CF_ECLOSED);
    assert_int_equal(cf_queue_join(q, CF_POLL), 0);
    assert_int_equal(cf_queue_task_done(q), CF_EINVAL);
    cf_queue_free(q);
}

static void test_close_immediate_releases_getters(void **state)
{
    (void)state;
    cf_queue *q = new_queue(0);
    call gets[2];
    start_call(&gets[0], OP_GET, q, NULL, CF_FOREVER);
    start_call(&gets[1], OP_GET, q, NULL, 60.0);
    assert_blocked(&gets[0]);
    assert_blocked(&gets[1]);
    cf_queue_close(q, 1);
    assert_int_equal(finish_call(&gets[0]), CF_ECLOSED);
    assert_int_equal(finish_call(&gets[1]), CF_ECLOSED);
    cf_queue_free(q);
}

/* An item taken before an immediate close may never be marked done: join must not wait
 * for it, yet its task_done still counts. */
static void test_close_immediate_with_item_in_hand(void **state)
{
    (void)state;
    cf_queue *q = new_queue(4);
    assert_int_equal(cf_queue_put(q, ITEM(1), CF_POLL), 0);
    assert_int_equal(cf_queue_put(q, ITEM(2), CF_POLL), 0);
    void *v = NULL;
    assert_int_equal(cf_queue_get(q, &v, CF_POLL), 0);
    call join;
    start_call(&join, OP_JOIN, q, NULL, CF_FOREVER);
    assert_blocked(&join);

    cf_queue_close(q, 1);
    assert_int_equal(finish_call(&join), CF_ECLOSED);
    assert_int_equal(cf_queue_join(q, CF_POLL), CF_ECLOSED);
    assert_int_equal(cf_queue_task_done(q), 0);
    assert_int_equal(cf_queue_join(q, CF_POLL), 0);
    assert_int_equal(cf_queue_task_done(q), CF_EINVAL);
    cf_queue_free(q);
}

static void test_close_twice(void **state)
{
    (void)state;
    cf_queue *q = new_queue(4);
    assert_int_equal(cf_queue_put(q, ITEM(1), CF_POLL), 0);
    cf_queue_close(q, 0);
    cf_queue_close(q, 0);
    assert_int_equal(cf_queue_size(q), 1);
    /* A draining close can still be made immediate; an immediate one stays so. */
    cf_queue_close(q, 1);
    assert_int_equal(cf_queue_size(q), 0);
    assert_int_equal(cf_queue_join(q, CF_POLL), 0);
    cf_queue_close(q, 1);
    cf_queue_close(q, 0);
    void *v;
    assert_int_equal(cf_queue_get(q, &v, CF_POLL), CF_ECLOSED);
    assert_int_equal(cf_queue_put(q, ITEM(2), CF_POLL), CF_ECLOSED);
    assert_int_equal(cf_queue_task_done(q), CF_EINVAL);
    cf_queue_free(q);
}

/* A task_done before the immediate close already covered the item it discards. */
static void test_close_immediate_after_early_task_done(void **state)
{
    (void)state;
    cf_queue *q = new_queue(4);
    assert_int_equal(cf_queue_put(q, ITEM(1), CF_POLL), 0);
    assert_int_equal(cf_queue_put(q, ITEM(2), CF_POLL), 0);
    assert_int_equal(cf_queue_task_done(q), 0);
    cf_queue_close(q, 1);
    assert_int_equal(cf_queue_join(q, CF_POLL), 0);
    assert_int_equal(cf_queue_task_done(q), CF_EINVAL);
    cf_queue_free(q);
}

/* ---- the rest ---- */

static void test_size(void **state)
{
    (void)state;
    cf_queue *q = new_queue(3);
    assert_int_equal(cf_queue_size(q), 0);
    assert_int_equal(cf_queue_put(q, ITEM(1), CF_POLL), 0);
    assert_int_equal(cf_queue_put(q, ITEM(2), CF_POLL), 0);
    assert_int_equal(cf_queue_size(q), 2);
    void *v;
    assert_int_equal(cf_queue_get(q, &v, CF_POLL), 0);
    assert_int_equal(cf_queue_size(q), 1);
    assert_int_equal(cf_queue_put(q, ITEM(3), CF_POLL), 0);
    assert_int_equal(cf_queue_put(q, ITEM(4), CF_POLL), 0);
    assert_int_equal(cf_queue_put(q, ITEM(5), CF_POLL), CF_EFULL);
    assert_int_equal(cf_queue_size(q), 3);
    assert_int_equal(cf_queue_task_done(q), 0); /* done-ness does not change the size */
    assert_int_equal(cf_queue_size(q), 3);
    cf_queue_free(q);
}

static void test_unbounded_grows_in_order(void **state)
{
    (void)state;
    cf_queue *q = new_queue(0);
    /* Put three, take two, again and again: the head keeps moving, so the ring is wrapped
     * each time it has to grow, far past any small initial size. */
    uintptr_t next_put = 1, next_get = 1;
    void *v;
    for (int round = 0; round < 1000; round++) {
        for (int i = 0; i < 3; i++)
            assert_int_equal(cf_queue_put(q, ITEM(next_put++), CF_POLL), 0);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(cf_queue_get(q, &v, CF_POLL), 0);
            assert_ptr_equal(v, ITEM(next_get++));
        }
    }
    assert_int_equal(cf_queue_size(q), 1000);
    while (next_get < next_put) {
        assert_int_equal(cf_queue_get(q, &v, CF_POLL), 0);
        assert_ptr_equal(v, ITEM(next_get++));
    }
    assert_int_equal(cf_queue_get(q, &v, CF_POLL), CF_EEMPTY);
    cf_queue_free(q);
}

static void test_free_null(void **state)
{
    (void)state;
    cf_queue_free(NULL);
}

/* Items left in the queue belong to the caller; free releases only the queue's memory
 * (the sanitizer build checks nothing leaks). */
static void test_free_with_items_left(void **state)
{
    (void)state;
    cf_queue *q = new_queue(0);
    for (uintptr_t i = 1; i <= 40; i++)
        assert_int_equal(cf_queue_put(q, ITEM(i), CF_POLL), 0);
    cf_queue_free(q);
}

static void test_new_too_large(void **state)
{
    (void)state;
    cf_queue *q = (cf_queue *)&q; /* any non-NULL value: new must clear it */
    assert_int_equal(cf_queue_new(&q, SIZE_MAX), CF_ENOMEM);
    assert_null(q);
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    assert_int_equal(cf_queue_new(NULL, 1), CF_EINVAL);
    cf_queue *q = new_queue(1);
    void *v;
    assert_int_equal(cf_queue_put(NULL, ITEM(1), CF_POLL), CF_EINVAL);
    assert_int_equal(cf_queue_get(NULL, &v, CF_POLL), CF_EINVAL);
    assert_int_equal(cf_queue_get(q, NULL, CF_POLL), CF_EINVAL);
    assert_int_equal(cf_queue_put(q, ITEM(1), NAN), CF_EINVAL);
    assert_int_equal(cf_queue_get(q, &v, NAN), CF_EINVAL);
    assert_int_equal(cf_queue_join(q, NAN), CF_EINVAL);
    assert_int_equal(cf_queue_join(NULL, CF_POLL), CF_EINVAL);
    assert_int_equal(cf_queue_task_done(NULL), CF_EINVAL);
    assert_int_equal(cf_queue_size(NULL), 0);
    cf_queue_close(NULL, 1);
    assert_int_equal(cf_queue_size(q), 0); /* nothing above touched the queue */
    cf_queue_free(q);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_fifo_order),
    cmocka_unit_test(test_null_is_an_item),
    cmocka_unit_test(test_capacity_full_on_poll),
    cmocka_unit_test(test_full_after_timeout),
    cmocka_unit_test(test_empty_on_poll_and_timeout),
    cmocka_unit_test(test_blocked_put_released_by_get),
    cmocka_unit_test(test_blocked_get_released_by_put),
    cmocka_unit_test(test_huge_timeout_waits),
    cmocka_unit_test(test_many_producers_many_consumers),
    cmocka_unit_test(test_task_done_and_join),
    cmocka_unit_test(test_join_released_by_last_task_done),
    cmocka_unit_test(test_task_done_too_often),
    cmocka_unit_test(test_close_put_fails_get_drains),
    cmocka_unit_test(test_close_releases_blocked_getters),
    cmocka_unit_test(test_close_releases_blocked_putters),
    cmocka_unit_test(test_close_immediate_releases_putters_and_joiners),
    cmocka_unit_test(test_close_immediate_releases_getters),
    cmocka_unit_test(test_close_immediate_with_item_in_hand),
    cmocka_unit_test(test_close_twice),
    cmocka_unit_test(test_close_immediate_after_early_task_done),
    cmocka_unit_test(test_size),
    cmocka_unit_test(test_unbounded_grows_in_order),
    cmocka_unit_test(test_free_null),
    cmocka_unit_test(test_free_with_items_left),
    cmocka_unit_test(test_new_too_large),
    cmocka_unit_test(test_invalid_arguments),
};

CF_TEST_MAIN(tests)
