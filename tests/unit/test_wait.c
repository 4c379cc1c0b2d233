/*
 * test_wait.c -- waiting on many futures: cf_wait's three modes, its timeout split,
 * duplicates, cancelled and already-done inputs, mixed executors; cf_as_completed's order,
 * single deadline, duplicates, early abandonment; a 20,000-future smoke run
 * (SEMANTICS 8-11).  Every test runs on every backend (CF_TEST_BACKEND), with x-tasks.
 *
 * Each future of interest has its own gate (a "solo" task), so the test decides which one
 * completes next; the order assertions are therefore exact, not statistical.  Solos that
 * must run at the same time are started on an executor whose workers were all started
 * first (tu_start_workers), so each finds an idle worker of its own.  Timeouts are checked
 * with lower bounds on the elapsed time only.
 */
#include "testutil.h"

/* An x-task with a gate of its own. */
typedef struct solo {
    tu_gate gate;
    cf_future *f;
} solo;

static void solo_start_code(solo *s, cf_executor *ex, tu_latch *started, int64_t value,
                            int code)
{
    tu_xtask t;
    tu_gate_init(&s->gate);
    t = (tu_xtask){.gate = &s->gate, .started = started, .code = code, .value = value};
    s->f = tu_xsubmit(ex, &t);
}

static void solo_start(solo *s, cf_executor *ex, tu_latch *started, int64_t value)
{
    solo_start_code(s, ex, started, value, 0);
}

/* Opens the gate and waits until the future is done. */
static void solo_finish(solo *s)
{
    tu_gate_open(&s->gate);
    assert_int_equal(cf_future_wait(s->f, TU_LONG), 0);
}

static void solo_free(solo *s)
{
    solo_finish(s);
    cf_future_release(s->f);
    tu_gate_destroy(&s->gate);
}

/* A finished future with the given value. */
static cf_future *done_future(cf_executor *ex, int64_t value)
{
    tu_xtask t = {.value = value};
    cf_future *f = tu_xsubmit(ex, &t);
    assert_int_equal(cf_future_wait(f, TU_LONG), 0);
    return f;
}

typedef struct split {
    cf_future *done[16], *not_done[16];
    size_t nd, nn;
    int rc;
    double elapsed;
} split;

static void do_wait(split *s, cf_future *const *fs, size_t n, cf_wait_mode mode, double timeout)
{
    double t0 = tu_now();
    assert_true(n <= 16);
    s->nd = s->nn = 999;
    s->rc = cf_wait(fs, n, mode, timeout, s->done, &s->nd, s->not_done, &s->nn);
    s->elapsed = tu_now() - t0;
    assert_int_equal(s->rc, 0);
}

/* ---- SEMANTICS 8: cf_wait ----------------------------------------------------------- */

/* Two gated tasks, running (values 1 and 2), on a new 2-worker executor; fs gets them. */
static cf_executor *start_pair(solo *a, solo *b, cf_future **fs, tu_latch *started)
{
    cf_executor *ex = make_executor(2, NULL);
    tu_start_workers(ex);
    tu_latch_init(started);
    solo_start(a, ex, started, 1);
    solo_start(b, ex, started, 2);
    fs[0] = a->f;
    fs[1] = b->f;
    assert_int_equal(tu_latch_wait(started, 2, TU_LONG), 0);
    return ex;
}

/* SEMANTICS 8: first-completed returns with the first done future and the rest not done;
 * before anything completes, a timeout returns the all-not-done split (not an error). */
static void wait_first_completed(void **state)
{
    tu_latch started;
    solo a, b;
    cf_future *fs[2];
    cf_executor *ex;
    split s;
    (void)state;
    ex = start_pair(&a, &b, fs, &started);

    do_wait(&s, fs, 2, CF_FIRST_COMPLETED, 0.05);
    assert_true(s.elapsed >= 0.05 - 1e-3);
    assert_int_equal(s.nd, 0);
    assert_int_equal(s.nn, 2);
    assert_ptr_equal(s.not_done[0], a.f);
    assert_ptr_equal(s.not_done[1], b.f);

    do_wait(&s, fs, 2, CF_FIRST_COMPLETED, CF_POLL);
    assert_int_equal(s.nd, 0);
    assert_int_equal(s.nn, 2);

    tu_gate_open(&b.gate);
    do_wait(&s, fs, 2, CF_FIRST_COMPLETED, TU_LONG);
    assert_int_equal(s.nd, 1);
    assert_ptr_equal(s.done[0], b.f);
    assert_int_equal(s.nn, 1);
    assert_ptr_equal(s.not_done[0], a.f);

    solo_free(&a);
    solo_free(&b);
    cf_executor_free(ex);
    tu_latch_destroy(&started);
}

/* SEMANTICS 8: all-completed: a timeout returns the split so far; once all are done it
 * returns every future in first-appearance order. */
static void wait_all_completed(void **state)
{
    tu_latch started;
    solo x[3];
    cf_future *fs[3];
    cf_executor *ex;
    split s;
    int i;
    (void)state;
    tu_latch_init(&started);
    ex = make_executor(3, NULL);
    tu_start_workers(ex);
    for (i = 0; i < 3; i++) {
        solo_start(&x[i], ex, &started, i);
        fs[i] = x[i].f;
    }
    assert_int_equal(tu_latch_wait(&started, 3, TU_LONG), 0);
    solo_finish(&x[1]);
    do_wait(&s, fs, 3, CF_ALL_COMPLETED, 0.1);
    assert_true(s.elapsed >= 0.1 - 1e-3);
    assert_int_equal(s.nd, 1);
    assert_ptr_equal(s.done[0], x[1].f);
    assert_int_equal(s.nn, 2);
    assert_ptr_equal(s.not_done[0], x[0].f);
    assert_ptr_equal(s.not_done[1], x[2].f);

    tu_gate_open(&x[2].gate);
    tu_gate_open(&x[0].gate);
    do_wait(&s, fs, 3, CF_ALL_COMPLETED, TU_LONG);
    assert_int_equal(s.nd, 3);
    assert_int_equal(s.nn, 0);
    for (i = 0; i < 3; i++)
        assert_ptr_equal(s.done[i], x[i].f);

    for (i = 0; i < 3; i++)
        solo_free(&x[i]);
    cf_executor_free(ex);
    tu_latch_destroy(&started);
}

/* SEMANTICS 8: futures already done count at once: with one done among futures that can
 * never complete meanwhile, first-completed returns without a timeout; all-completed over
 * done futures does too.  The done/not-done arrays may be NULL. */
static void wait_already_done_counts_at_once(void **state)
{
    tu_latch started;
    solo a;
    cf_future *fs[3];
    cf_executor *ex;
    split s;
    size_t nd = 0, nn = 0;
    (void)state;
    tu_watchdog(120);
    tu_latch_init(&started);
    ex = make_executor(2, NULL);
    fs[1] = done_future(ex, 2); /* first: none may wait behind the gated one */
    fs[2] = done_future(ex, 3);
    solo_start(&a, ex, &started, 1);
    fs[0] = a.f;
    assert_int_equal(tu_latch_wait(&started, 1, TU_LONG), 0);
    do_wait(&s, fs, 3, CF_FIRST_COMPLETED, CF_FOREVER); /* a's gate stays closed */
    assert_int_equal(s.nd, 2);
    assert_ptr_equal(s.done[0], fs[1]);
    assert_ptr_equal(s.done[1], fs[2]);
    assert_int_equal(s.nn, 1);
    assert_ptr_equal(s.not_done[0], a.f);
    do_wait(&s, fs + 1, 2, CF_ALL_COMPLETED, CF_FOREVER);
    assert_int_equal(s.nd, 2);
    assert_int_equal(s.nn, 0);
    assert_int_equal(cf_wait(fs, 3, CF_FIRST_COMPLETED, CF_FOREVER, NULL, &nd, NULL, &nn), 0);
    assert_int_equal(nd, 2);
    assert_int_equal(nn, 1);
    assert_int_equal(cf_future_state(a.f), CF_RUNNING);
    solo_free(&a);
    cf_future_release(fs[1]);
    cf_future_release(fs[2]);
    cf_executor_free(ex);
    tu_latch_destroy(&started);
}

/* SEMANTICS 8: duplicates in the set count once, on both sides of the split. */
static void wait_duplicates_count_once(void **state)
{
    tu_latch started;
    solo p;
    cf_future *a, *b, *fs[6];
    cf_executor *ex;
    split s;
    (void)state;
    tu_latch_init(&started);
    ex = make_executor(2, NULL);
    a = done_future(ex, 1);
    b = done_future(ex, 2);
    solo_start(&p, ex, &started, 3);
    fs[0] = a;
    fs[1] = p.f;
    fs[2] = a;
    fs[3] = b;
    fs[4] = p.f;
    fs[5] = a;
    do_wait(&s, fs, 6, CF_ALL_COMPLETED, 0.05);
    assert_int_equal(s.nd, 2);
    assert_ptr_equal(s.done[0], a);
    assert_ptr_equal(s.done[1], b);
    assert_int_equal(s.nn, 1);
    assert_ptr_equal(s.not_done[0], p.f);

    solo_finish(&p);
    do_wait(&s, fs, 6, CF_ALL_COMPLETED, TU_LONG);
    assert_int_equal(s.nd, 3);
    assert_ptr_equal(s.done[0], a);
    assert_ptr_equal(s.done[1], p.f);
    assert_ptr_equal(s.done[2], b);
    assert_int_equal(s.nn, 0);

    solo_free(&p);
    cf_future_release(a);
    cf_future_release(b);
    cf_executor_free(ex);
    tu_latch_destroy(&started);
}

typedef struct delayed_cancel {
    cf_future *f;
    double delay;
    int rc;
} delayed_cancel;

static void *cancel_later(void *arg)
{
    delayed_cancel *d = arg;
    tu_sleep(d->delay);
    d->rc = cf_future_cancel(d->f);
    return NULL;
}

/* SEMANTICS 8: a cancelled future is done: it completes a first-completed wait (also when
 * cancelled while the wait is blocked) and an all-completed one. */
static void wait_cancelled_counts_as_done(void **state)
{
    tu_hold hold;
    tu_latch ran;
    tu_xtask task;
    cf_future *c1, *c2, *fs[2];
    cf_executor *ex;
    delayed_cancel d;
    pthread_t t;
    split s;
    (void)state;
    tu_latch_init(&ran);
    task = (tu_xtask){.finished = &ran};
    ex = make_executor(1, NULL);
    tu_hold_workers(&hold, ex);
    c1 = tu_xsubmit(ex, &task);
    c2 = tu_xsubmit(ex, &task);
    fs[0] = tu_hold_running(&hold);
    fs[1] = c1;
    d.f = c1;
    d.delay = 0.05;
    t = tu_thread_start(cancel_later, &d);
    do_wait(&s, fs, 2, CF_FIRST_COMPLETED, TU_LONG);
    tu_thread_join(t);
    assert_int_equal(d.rc, 0);
    assert_int_equal(s.nd, 1);
    assert_ptr_equal(s.done[0], c1);
    assert_int_equal(s.nn, 1);

    assert_int_equal(cf_future_cancel(c2), 0);
    fs[0] = c2;
    do_wait(&s, fs, 2, CF_ALL_COMPLETED, TU_LONG);
    assert_int_equal(s.nd, 2);
    assert_int_equal(s.nn, 0);

    tu_hold_release(&hold);
    cf_executor_free(ex);
    assert_int_equal(tu_latch_count(&ran), 0);
    cf_future_release(c1);
    cf_future_release(c2);
    tu_latch_destroy(&ran);
}

/* ---- SEMANTICS 9: first-error ------------------------------------------------------- */

/* SEMANTICS 9: first-error returns when a future fails (here while the wait is blocked),
 * with the failed one done and the others not. */
static void wait_first_error_returns_on_error(void **state)
{
    tu_latch started;
    solo a, bad, c;
    cf_future *fs[3];
    cf_executor *ex;
    tu_opener op;
    split s;
    (void)state;
    tu_latch_init(&started);
    ex = make_executor(3, NULL);
    tu_start_workers(ex);
    solo_start(&a, ex, &started, 1);
    solo_start_code(&bad, ex, &started, 2, 66);
    solo_start(&c, ex, &started, 3);
    fs[0] = a.f;
    fs[1] = bad.f;
    fs[2] = c.f;
    assert_int_equal(tu_latch_wait(&started, 3, TU_LONG), 0);
    tu_open_later(&op, &bad.gate, 0.05);
    do_wait(&s, fs, 3, CF_FIRST_ERROR, TU_LONG);
    tu_opener_join(&op);
    assert_int_equal(s.nd, 1);
    assert_ptr_equal(s.done[0], bad.f);
    assert_int_equal(s.nn, 2);
    assert_ptr_equal(s.not_done[0], a.f);
    assert_ptr_equal(s.not_done[1], c.f);
    assert_int_equal(cf_future_result(bad.f, CF_POLL, NULL), CF_ETASK);
    solo_free(&a);
    solo_free(&bad);
    solo_free(&c);
    cf_executor_free(ex);
    tu_latch_destroy(&started);
}

/* SEMANTICS 9: with only successes, first-error does not return at the first success; it
 * returns when all are done. */
static void wait_first_error_only_successes_waits_for_all(void **state)
{
    tu_latch started;
    solo a, b;
    cf_future *fs[2];
    cf_executor *ex;
    tu_opener op;
    split s;
    (void)state;
    ex = start_pair(&a, &b, fs, &started);
    solo_finish(&a);
    do_wait(&s, fs, 2, CF_FIRST_ERROR, 0.1);
    assert_true(s.elapsed >= 0.1 - 1e-3);
    assert_int_equal(s.nd, 1);
    assert_ptr_equal(s.done[0], a.f);
    assert_int_equal(s.nn, 1);

    tu_open_later(&op, &b.gate, 0.05);
    do_wait(&s, fs, 2, CF_FIRST_ERROR, TU_LONG);
    tu_opener_join(&op);
    assert_int_equal(s.nd, 2);
    assert_int_equal(s.nn, 0);
    solo_free(&a);
    solo_free(&b);
    cf_executor_free(ex);
    tu_latch_destroy(&started);
}

/* SEMANTICS 9: a cancelled future is not an error for first-error (the header's rule); an
 * already-failed one counts at once. */
static void wait_first_error_cancel_is_not_error(void **state)
{
    tu_latch started, ran;
    tu_hold hold;
    solo a2;
    tu_xtask task, failing = {.code = 4};
    cf_future *c, *bad, *fs[3];
    cf_executor *ex;
    split s;
    (void)state;
    tu_watchdog(120);
    tu_latch_init(&started);
    tu_latch_init(&ran);
    task = (tu_xtask){.finished = &ran};
    ex = make_executor(1, NULL);
    tu_hold_workers(&hold, ex);
    c = tu_xsubmit(ex, &task);
    assert_int_equal(cf_future_cancel(c), 0);
    fs[0] = tu_hold_running(&hold);
    fs[1] = c;
    do_wait(&s, fs, 2, CF_FIRST_ERROR, 0.1);
    assert_true(s.elapsed >= 0.1 - 1e-3);
    assert_int_equal(s.nd, 1);
    assert_ptr_equal(s.done[0], c);
    assert_int_equal(s.nn, 1);
    tu_hold_release(&hold);

    bad = tu_xsubmit(ex, &failing);
    assert_int_equal(cf_future_wait(bad, TU_LONG), 0);
    solo_start(&a2, ex, &started, 2);
    fs[0] = a2.f;
    fs[2] = bad;
    do_wait(&s, fs, 3, CF_FIRST_ERROR, CF_FOREVER); /* a2's gate stays closed */
    assert_int_equal(s.nd, 2);
    assert_ptr_equal(s.done[0], c);
    assert_ptr_equal(s.done[1], bad);
    assert_int_equal(s.nn, 1);
    assert_ptr_equal(s.not_done[0], a2.f);
    solo_free(&a2);
    cf_future_release(c);
    cf_future_release(bad);
    cf_executor_free(ex);
    assert_int_equal(tu_latch_count(&ran), 0);
    tu_latch_destroy(&ran);
    tu_latch_destroy(&started);
}

/* ---- SEMANTICS 11: mixed executors, invalid input, cost ----------------------------- */

/* SEMANTICS 11, 8, 10: futures of two executors mixed in one wait and one iteration: one
 * of the test backend, one thread pool (so on the process backend, two backends). */
static void wait_and_as_completed_mixed_executors(void **state)
{
    tu_latch started;
    solo a, b;
    cf_future *fs[2], *g = NULL;
    cf_executor *ex1, *ex2;
    cf_as_completed *it = NULL;
    split s;
    (void)state;
    tu_latch_init(&started);
    ex1 = make_executor(1, NULL);
    ex2 = make_thread_executor(1, NULL);
    solo_start(&a, ex1, &started, 1);
    solo_start(&b, ex2, &started, 2);
    fs[0] = a.f;
    fs[1] = b.f;
    assert_int_equal(tu_latch_wait(&started, 2, TU_LONG), 0);
    assert_int_equal(cf_as_completed_new(&it, fs, 2, TU_LONG), 0);
    tu_gate_open(&b.gate);
    do_wait(&s, fs, 2, CF_FIRST_COMPLETED, TU_LONG);
    assert_int_equal(s.nd, 1);
    assert_ptr_equal(s.done[0], b.f);
    assert_int_equal(cf_as_completed_next(it, &g), 0);
    assert_ptr_equal(g, b.f);
    tu_gate_open(&a.gate);
    assert_int_equal(cf_as_completed_next(it, &g), 0);
    assert_ptr_equal(g, a.f);
    assert_int_equal(cf_as_completed_next(it, &g), CF_EEND);
    do_wait(&s, fs, 2, CF_ALL_COMPLETED, TU_LONG);
    assert_int_equal(s.nd, 2);
    cf_as_completed_free(it);
    solo_free(&a);
    solo_free(&b);
    cf_executor_free(ex1);
    cf_executor_free(ex2);
    tu_latch_destroy(&started);
}

/* SEMANTICS 8, 10: a NULL set with n > 0 is CF_EINVAL. */
static void wait_invalid_arguments(void **state)
{
    size_t nd = 0, nn = 0;
    cf_as_completed *it = NULL;
    (void)state;
    assert_int_equal(cf_wait(NULL, 3, CF_ALL_COMPLETED, 0, NULL, &nd, NULL, &nn), CF_EINVAL);
    assert_int_equal(cf_as_completed_new(&it, NULL, 3, 0), CF_EINVAL);
    assert_null(it);
    cf_as_completed_free(NULL);
}

enum { MANY = 20000 };

/* SEMANTICS 11 (smoke only; the O(n) bound itself is the implementation's to guarantee):
 * cf_wait and as_completed over 20,000 futures that complete one by one on one worker,
 * released while the waiter is already waiting. */
static void wait_and_as_completed_many_futures(void **state)
{
    static cf_future *fs[MANY];
    static unsigned char seen[MANY];
    tu_hold hold;
    cf_executor *ex;
    cf_as_completed *it = NULL;
    size_t nd = 0, nn = 0, yielded = 0;
    cf_future *g;
    tu_opener op;
    int round, i, rc;
    (void)state;
    ex = make_executor(1, NULL);
    for (round = 0; round < 2; round++) {
        tu_hold_workers(&hold, ex);
        for (i = 0; i < MANY; i++) {
            tu_xtask t = {.value = i};
            fs[i] = tu_xsubmit(ex, &t);
        }
        tu_open_later(&op, &hold.gate, 0.05);
        if (round == 0) {
            assert_int_equal(cf_wait(fs, MANY, CF_ALL_COMPLETED, 10 * TU_LONG, NULL, &nd,
                                     NULL, &nn), 0);
            assert_int_equal(nd, MANY);
            assert_int_equal(nn, 0);
        } else {
            memset(seen, 0, sizeof seen);
            assert_int_equal(cf_as_completed_new(&it, fs, MANY, 10 * TU_LONG), 0);
            assert_int_equal(cf_as_completed_total(it), MANY);
            while ((rc = cf_as_completed_next(it, &g)) == 0) {
                int64_t v = tu_xresult(g, CF_POLL);
                assert_true(v >= 0 && v < MANY);
                assert_int_equal(seen[v]++, 0);
                yielded++;
            }
            assert_int_equal(rc, CF_EEND);
            assert_int_equal(yielded, MANY);
            assert_int_equal(cf_as_completed_pending(it), 0);
            cf_as_completed_free(it);
        }
        tu_opener_join(&op);
        tu_hold_release(&hold);
        for (i = 0; i < MANY; i++)
            cf_future_release(fs[i]);
    }
    cf_executor_free(ex);
}

/* SEMANTICS 7, 8, 10: waits without a timeout on fresh batches whose tasks complete while
 * the wait is setting up and sleeping: every mode and as_completed must wake for the last
 * completion (a missed one leaves the waiter asleep, and the watchdog fails the test). */
static void wait_wakes_for_completions_racing_its_setup(void **state)
{
    enum { B = 64, ROUNDS = 1500 };
    static const cf_wait_mode modes[3] = {CF_ALL_COMPLETED, CF_FIRST_ERROR, CF_FIRST_COMPLETED};
    cf_executor *ex;
    int round, i;
    (void)state;
    tu_watchdog(50);
    ex = make_executor(2, NULL);
    for (round = 0; round < ROUNDS; round++) {
        cf_future *f[B], *g;
        size_t nd = 0, nn = 0, n = 0;
        cf_as_completed *it = NULL;
        int rc;
        for (i = 0; i < B; i++) {
            tu_xtask t = {.value = i};
            f[i] = tu_xsubmit(ex, &t);
        }
        if (round % 4 < 3) {
            cf_wait_mode mode = modes[round % 4];
            assert_int_equal(cf_wait(f, B, mode, CF_FOREVER, NULL, &nd, NULL, &nn), 0);
            assert_true(mode == CF_FIRST_COMPLETED ? nd >= 1 : nd == B);
            assert_int_equal(nd + nn, B);
        } else {
            assert_int_equal(cf_as_completed_new(&it, f, B, CF_FOREVER), 0);
            while ((rc = cf_as_completed_next(it, &g)) == 0)
                n++;
            assert_int_equal(rc, CF_EEND);
            assert_int_equal(n, B);
            cf_as_completed_free(it);
        }
        for (i = 0; i < B; i++) {
            assert_int_equal(cf_future_wait(f[i], CF_FOREVER), 0);
            cf_future_release(f[i]);
        }
    }
    cf_executor_free(ex);
}

/* ---- SEMANTICS 10: as_completed ----------------------------------------------------- */

/* SEMANTICS 10: already-done futures come first, then each in completion order (gates
 * opened in a known order), every one exactly once, then CF_EEND (repeatedly). */
static void as_completed_done_first_then_completion_order(void **state)
{
    static const int open_order[4] = {2, 0, 3, 1};
    tu_latch started;
    solo x[4];
    cf_future *d1, *d2, *fs[6], *g = NULL, *first[2];
    cf_executor *ex;
    cf_as_completed *it = NULL;
    int i;
    (void)state;
    tu_latch_init(&started);
    ex = make_executor(4, NULL);
    tu_start_workers(ex);
    d1 = done_future(ex, 100);
    d2 = done_future(ex, 200);
    for (i = 0; i < 4; i++)
        solo_start(&x[i], ex, &started, i);
    assert_int_equal(tu_latch_wait(&started, 4, TU_LONG), 0);
    fs[0] = x[0].f;
    fs[1] = d1;
    fs[2] = x[1].f;
    fs[3] = x[2].f;
    fs[4] = d2;
    fs[5] = x[3].f;
    assert_int_equal(cf_as_completed_new(&it, fs, 6, TU_LONG), 0);
    assert_int_equal(cf_as_completed_total(it), 6);
    assert_int_equal(cf_as_completed_pending(it), 6);
    for (i = 0; i < 2; i++) {
        assert_int_equal(cf_as_completed_next(it, &first[i]), 0);
        assert_int_equal(cf_as_completed_pending(it), (size_t)(5 - i));
    }
    assert_true((first[0] == d1 && first[1] == d2) || (first[0] == d2 && first[1] == d1));
    for (i = 0; i < 4; i++) {
        tu_gate_open(&x[open_order[i]].gate);
        assert_int_equal(cf_as_completed_next(it, &g), 0);
        assert_ptr_equal(g, x[open_order[i]].f);
        assert_int_equal(cf_as_completed_pending(it), (size_t)(3 - i));
    }
    assert_int_equal(cf_as_completed_next(it, &g), CF_EEND);
    assert_int_equal(cf_as_completed_next(it, &g), CF_EEND);
    assert_int_equal(cf_as_completed_total(it), 6);
    cf_as_completed_free(it);
    for (i = 0; i < 4; i++)
        solo_free(&x[i]);
    cf_future_release(d1);
    cf_future_release(d2);
    cf_executor_free(ex);
    tu_latch_destroy(&started);
}

/* SEMANTICS 10: the timeout is one deadline from cf_as_completed_new, not per call: with a
 * 0.5 s deadline, a call made at 0.6 s reports CF_ETIMEDOUT although a future completes at
 * 0.8 s (a per-call timeout would still be waiting then and yield it); it reports how many
 * of how many remain, and keeps reporting the timeout. */
static void as_completed_deadline_from_start(void **state)
{
    tu_latch started;
    solo a, b;
    cf_future *d, *fs[3], *g = NULL;
    cf_executor *ex;
    cf_as_completed *it = NULL;
    tu_opener op;
    double t0;
    (void)state;
    tu_latch_init(&started);
    ex = make_executor(2, NULL);
    tu_start_workers(ex);
    d = done_future(ex, 7);
    solo_start(&a, ex, &started, 1);
    solo_start(&b, ex, &started, 2);
    assert_int_equal(tu_latch_wait(&started, 2, TU_LONG), 0);
    fs[0] = a.f;
    fs[1] = d;
    fs[2] = b.f;
    t0 = tu_now();
    assert_int_equal(cf_as_completed_new(&it, fs, 3, 0.5), 0);
    tu_open_later(&op, &a.gate, 0.8);
    tu_sleep(0.6);
    assert_int_equal(cf_as_completed_next(it, &g), 0);
    assert_ptr_equal(g, d);
    assert_int_equal(cf_as_completed_next(it, &g), CF_ETIMEDOUT);
    assert_true(tu_now() - t0 >= 0.5 - 1e-3);
    assert_int_equal(cf_as_completed_pending(it), 2);
    assert_int_equal(cf_as_completed_total(it), 3);
    assert_int_equal(cf_as_completed_next(it, &g), CF_ETIMEDOUT);
    assert_int_equal(cf_as_completed_pending(it), 2);
    tu_opener_join(&op);
    cf_as_completed_free(it);

    /* A deadline reached while blocked in next(): waited at least until the deadline. */
    t0 = tu_now();
    assert_int_equal(cf_as_completed_new(&it, &b.f, 1, 0.1), 0);
    assert_int_equal(cf_as_completed_next(it, &g), CF_ETIMEDOUT);
    assert_true(tu_now() - t0 >= 0.1 - 1e-3);
    assert_int_equal(cf_as_completed_pending(it), 1);
    assert_int_equal(cf_as_completed_total(it), 1);
    cf_as_completed_free(it);

    solo_free(&a);
    solo_free(&b);
    cf_future_release(d);
    cf_executor_free(ex);
    tu_latch_destroy(&started);
}

/* SEMANTICS 10: abandoning iterations early (before the first next, in the middle) frees
 * them while their futures are still running; the futures complete normally afterwards
 * (ASan reports any leak or use after free). */
static void as_completed_early_free_leaks_nothing(void **state)
{
    enum { N = 4 };
    tu_latch started;
    solo x[N];
    cf_future *fs[N + 1], *g = NULL;
    cf_executor *ex;
    cf_as_completed *it = NULL, *it2 = NULL;
    int i;
    (void)state;
    tu_latch_init(&started);
    ex = make_executor(N, NULL);
    tu_start_workers(ex);
    fs[N] = done_future(ex, 99); /* before the gated tasks take every worker */
    for (i = 0; i < N; i++) {
        solo_start(&x[i], ex, &started, i);
        fs[i] = x[i].f;
    }
    assert_int_equal(tu_latch_wait(&started, N, TU_LONG), 0);
    assert_int_equal(cf_as_completed_new(&it, fs, N + 1, TU_LONG), 0);
    assert_int_equal(cf_as_completed_new(&it2, fs, N + 1, TU_LONG), 0);
    assert_int_equal(cf_as_completed_next(it, &g), 0);
    assert_ptr_equal(g, fs[N]);
    solo_finish(&x[3]);
    assert_int_equal(cf_as_completed_next(it, &g), 0);
    assert_ptr_equal(g, x[3].f);
    cf_as_completed_free(it);
    cf_as_completed_free(it2);
    for (i = 0; i < N; i++) {
        solo_finish(&x[i]);
        assert_int_equal(tu_xresult(x[i].f, CF_POLL), i);
        solo_free(&x[i]);
    }
    cf_future_release(fs[N]);
    cf_executor_free(ex);
    tu_latch_destroy(&started);
}

/* SEMANTICS 10, 8: duplicates are yielded once; a future cancelled during the iteration is
 * yielded (cancelled counts as done). */
static void as_completed_duplicates_and_cancelled(void **state)
{
    tu_hold hold;
    tu_latch ran;
    tu_xtask task;
    cf_future *a, *c, *q, *fs[6], *g = NULL, *got[3];
    cf_executor *ex;
    cf_as_completed *it = NULL;
    int i;
    (void)state;
    tu_latch_init(&ran);
    task = (tu_xtask){.finished = &ran};
    ex = make_executor(1, NULL);
    a = done_future(ex, 1);
    tu_hold_workers(&hold, ex);
    c = tu_xsubmit(ex, &task);
    q = tu_xsubmit(ex, &task);
    fs[0] = a;
    fs[1] = c;
    fs[2] = a;
    fs[3] = q;
    fs[4] = c;
    fs[5] = a;
    assert_int_equal(cf_as_completed_new(&it, fs, 6, TU_LONG), 0);
    assert_int_equal(cf_as_completed_total(it), 3);
    assert_int_equal(cf_as_completed_next(it, &got[0]), 0);
    assert_ptr_equal(got[0], a);
    assert_int_equal(cf_future_cancel(c), 0);
    assert_int_equal(cf_as_completed_next(it, &got[1]), 0);
    assert_ptr_equal(got[1], c);
    tu_hold_release(&hold);
    assert_int_equal(cf_as_completed_next(it, &got[2]), 0);
    assert_ptr_equal(got[2], q);
    assert_int_equal(cf_as_completed_next(it, &g), CF_EEND);
    assert_int_equal(cf_as_completed_pending(it), 0);
    cf_as_completed_free(it);
    for (i = 0; i < 3; i++)
        assert_int_equal(cf_future_done(got[i]), 1);
    cf_executor_free(ex);
    assert_int_equal(tu_latch_count(&ran), 1);
    cf_future_release(a);
    cf_future_release(c);
    cf_future_release(q);
    tu_latch_destroy(&ran);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(wait_first_completed),
    cmocka_unit_test(wait_all_completed),
    cmocka_unit_test(wait_already_done_counts_at_once),
    cmocka_unit_test(wait_duplicates_count_once),
    cmocka_unit_test(wait_cancelled_counts_as_done),
    cmocka_unit_test(wait_first_error_returns_on_error),
    cmocka_unit_test(wait_first_error_only_successes_waits_for_all),
    cmocka_unit_test(wait_first_error_cancel_is_not_error),
    cmocka_unit_test(wait_and_as_completed_mixed_executors),
    cmocka_unit_test(wait_invalid_arguments),
    cmocka_unit_test(wait_and_as_completed_many_futures),
    cmocka_unit_test(wait_wakes_for_completions_racing_its_setup),
    cmocka_unit_test(as_completed_done_first_then_completion_order),
    cmocka_unit_test(as_completed_deadline_from_start),
    cmocka_unit_test(as_completed_early_free_leaks_nothing),
    cmocka_unit_test(as_completed_duplicates_and_cancelled),
};

CF_TEST_MAIN(tests)
