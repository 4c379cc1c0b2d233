/*
 * test_future.c -- futures: states, cancel, result and its timeouts, task errors, completion
 * exactly once, done-callbacks, wake-ups and reference counting (SEMANTICS 1-7).
 *
 * Every test but the last two runs on every backend (CF_TEST_BACKEND), with bytes tasks:
 * x-tasks (testutil.h) wait at gates and count themselves on latches that worker processes
 * share with the test.  States are produced with them, never with sleeps: a task seen at
 * its latch is reliably running, a task submitted behind tu_hold_workers is reliably
 * pending.  Sleeps appear only where the behaviour is about time (result timeouts), and
 * only lower bounds on elapsed time are asserted.  The last three tests are about pointer
 * tasks, the thread that runs callbacks in a thread pool, and where futures' memory goes.
 */
#include "testutil.h"

/* ---- SEMANTICS 1: states ------------------------------------------------------------ */

/* SEMANTICS 1: pending -> running -> finished; done means cancelled or finished. */
static void future_states_and_transitions(void **state)
{
    tu_hold hold;
    tu_gate gate;
    tu_latch started, finished;
    tu_xtask b;
    cf_executor *ex;
    cf_future *fa, *fb;
    (void)state;
    tu_gate_init(&gate);
    tu_latch_init(&started);
    tu_latch_init(&finished);
    b = (tu_xtask){.gate = &gate, .started = &started, .finished = &finished, .value = 0x22};
    ex = make_executor(1, NULL);

    tu_hold_workers(&hold, ex);
    fa = cf_future_retain(tu_hold_running(&hold));
    assert_int_equal(cf_future_state(fa), CF_RUNNING);
    assert_int_equal(cf_future_done(fa), 0);

    fb = tu_xsubmit(ex, &b); /* every worker is busy */
    assert_int_equal(cf_future_state(fb), CF_PENDING);
    assert_int_equal(cf_future_done(fb), 0);
    assert_int_equal(tu_latch_count(&started), 0);

    tu_hold_release(&hold);
    assert_int_equal(tu_xresult(fa, CF_POLL), 1);
    assert_int_equal(cf_future_state(fa), CF_FINISHED);
    assert_int_equal(cf_future_done(fa), 1);

    assert_int_equal(tu_latch_wait(&started, 1, TU_LONG), 0);
    assert_int_equal(cf_future_state(fb), CF_RUNNING);
    assert_int_equal(cf_future_done(fb), 0);
    tu_gate_open(&gate);
    assert_int_equal(tu_xresult(fb, TU_LONG), 0x22);
    assert_int_equal(cf_future_state(fb), CF_FINISHED);
    assert_int_equal(cf_future_done(fb), 1);
    assert_int_equal(tu_latch_count(&finished), 1);

    cf_future_release(fa);
    cf_future_release(fb);
    cf_executor_free(ex);
    tu_latch_destroy(&finished);
    tu_latch_destroy(&started);
    tu_gate_destroy(&gate);
}

/* SEMANTICS 1: a failed task is finished (done), not cancelled. */
static void future_failed_is_finished(void **state)
{
    tu_xtask t = {.code = 3};
    cf_executor *ex;
    cf_future *f;
    int code = 0;
    const char *msg = NULL;
    (void)state;
    ex = make_executor(1, NULL);
    f = tu_xsubmit(ex, &t);
    assert_int_equal(cf_future_result(f, TU_LONG, NULL), CF_ETASK);
    assert_int_equal(cf_future_state(f), CF_FINISHED);
    assert_int_equal(cf_future_done(f), 1);
    assert_int_equal(cf_future_error(f, &code, &msg), CF_ETASK);
    assert_int_equal(code, 3);
    assert_string_equal(msg, "task 0 failed with 3");
    cf_future_release(f);
    cf_executor_free(ex);
}

/* ---- SEMANTICS 1: reference counting ------------------------------------------------ */

/* SEMANTICS 1: retain returns the future; each reference is released separately. */
static void future_retain_release(void **state)
{
    tu_xtask t = {.value = 0x77};
    cf_executor *ex;
    cf_future *f;
    (void)state;
    ex = make_executor(1, NULL);
    f = tu_xsubmit(ex, &t);
    assert_ptr_equal(cf_future_retain(f), f);
    assert_ptr_equal(cf_future_retain(f), f);
    cf_future_release(f);
    cf_future_release(f);
    assert_int_equal(tu_xresult(f, TU_LONG), 0x77); /* still ours: one ref left */
    cf_future_release(f);
    cf_future_release(NULL);
    cf_executor_free(ex);
}

typedef struct released_probe {
    atomic_int calls;
    cf_state state_seen;
    int64_t value_seen;
    tu_latch done;
} released_probe;

static void probe_cb(cf_future *f, void *data)
{
    released_probe *p = data;
    const void *bytes = NULL;
    size_t len = 0;
    p->state_seen = cf_future_state(f);
    TU_CHECK(cf_future_bytes(f, CF_POLL, &bytes, &len) == 0);
    p->value_seen = tu_xvalue(bytes, len);
    atomic_fetch_add(&p->calls, 1);
    tu_latch_arrive(&p->done);
}

/* SEMANTICS 1: the pool holds its own reference until the task completes: releasing the
 * caller's reference of a pending future neither cancels nor frees it (ASan checks the
 * latter); the task runs and the callback sees the finished future. */
static void future_pool_holds_reference(void **state)
{
    tu_hold hold;
    released_probe p;
    tu_latch ran;
    tu_xtask t;
    cf_executor *ex;
    cf_future *f;
    (void)state;
    atomic_init(&p.calls, 0);
    tu_latch_init(&p.done);
    tu_latch_init(&ran);
    t = (tu_xtask){.finished = &ran, .value = 1};
    ex = make_executor(1, NULL);
    tu_hold_workers(&hold, ex);
    f = tu_xsubmit(ex, &t);
    assert_int_equal(cf_future_add_callback(f, probe_cb, &p), 0);
    cf_future_release(f); /* pending, and now only the pool holds it */
    tu_hold_release(&hold);
    assert_int_equal(tu_latch_wait(&p.done, 1, TU_LONG), 0);
    cf_executor_free(ex);
    assert_int_equal(tu_latch_count(&ran), 1);
    assert_int_equal(atomic_load(&p.calls), 1);
    assert_int_equal(p.state_seen, CF_FINISHED);
    assert_int_equal(p.value_seen, 1);
    tu_latch_destroy(&ran);
    tu_latch_destroy(&p.done);
    tu_assert_no_check_failures();
}

/* SEMANTICS 1: futures the caller holds stay valid after the executor is freed. */
static void future_outlives_executor(void **state)
{
    tu_xtask good = {.value = 0x5}, failing = {.code = 8};
    cf_executor *ex;
    cf_future *ok, *bad;
    int c = 0;
    (void)state;
    ex = make_executor(2, NULL);
    ok = tu_xsubmit(ex, &good);
    bad = tu_xsubmit(ex, &failing);
    cf_executor_free(ex);
    assert_int_equal(tu_xresult(ok, CF_POLL), 0x5);
    assert_int_equal(cf_future_error(bad, &c, NULL), CF_ETASK);
    assert_int_equal(c, 8);
    cf_future_release(ok);
    cf_future_release(bad);
}

/* ---- SEMANTICS 2: cancel ------------------------------------------------------------ */

/* SEMANTICS 2: cancelling a pending future succeeds, makes it cancelled and done, and its
 * task never runs; cancelling it again succeeds again. */
static void cancel_pending(void **state)
{
    tu_hold hold;
    tu_latch ran;
    tu_xtask t;
    cf_executor *ex;
    cf_future *f;
    int code = -1;
    const char *msg = "unset";
    (void)state;
    tu_latch_init(&ran);
    t = (tu_xtask){.finished = &ran};
    ex = make_executor(1, NULL);
    tu_hold_workers(&hold, ex);
    f = tu_xsubmit(ex, &t);
    assert_int_equal(cf_future_state(f), CF_PENDING);
    assert_int_equal(cf_future_cancel(f), 0);
    assert_int_equal(cf_future_state(f), CF_CANCELLED);
    assert_int_equal(cf_future_done(f), 1);
    assert_int_equal(cf_future_cancel(f), 0); /* twice: succeeds twice */
    assert_int_equal(cf_future_state(f), CF_CANCELLED);
    assert_int_equal(cf_future_result(f, CF_POLL, NULL), CF_ECANCELLED);
    assert_int_equal(cf_future_result(f, TU_LONG, NULL), CF_ECANCELLED);
    assert_int_equal(cf_future_wait(f, CF_POLL), 0);
    assert_int_equal(cf_future_error(f, &code, &msg), CF_ECANCELLED);
    assert_int_equal(code, 0);
    assert_null(msg);
    tu_hold_release(&hold);
    cf_executor_free(ex); /* every accepted task is done: a cancelled one would have run */
    assert_int_equal(tu_latch_count(&ran), 0);
    assert_int_equal(cf_future_state(f), CF_CANCELLED);
    cf_future_release(f);
    tu_latch_destroy(&ran);
}

/* SEMANTICS 2: cancelling a running future is refused with CF_EBUSY; it runs to the end. */
static void cancel_running_refused(void **state)
{
    tu_gate gate;
    tu_latch started, finished;
    tu_xtask a;
    cf_executor *ex;
    cf_future *f;
    (void)state;
    tu_gate_init(&gate);
    tu_latch_init(&started);
    tu_latch_init(&finished);
    a = (tu_xtask){.gate = &gate, .started = &started, .finished = &finished, .value = 0x99};
    ex = make_executor(1, NULL);
    f = tu_xsubmit(ex, &a);
    assert_int_equal(tu_latch_wait(&started, 1, TU_LONG), 0);
    assert_int_equal(cf_future_cancel(f), CF_EBUSY);
    assert_int_equal(cf_future_state(f), CF_RUNNING);
    assert_int_equal(cf_future_cancel(f), CF_EBUSY);
    tu_gate_open(&gate);
    assert_int_equal(tu_xresult(f, TU_LONG), 0x99);
    assert_int_equal(tu_latch_count(&finished), 1);
    cf_future_release(f);
    cf_executor_free(ex);
    tu_latch_destroy(&finished);
    tu_latch_destroy(&started);
    tu_gate_destroy(&gate);
}

/* SEMANTICS 2, 5: cancelling a finished future (value or error) is refused and leaves the
 * first outcome in place. */
static void cancel_finished_refused(void **state)
{
    tu_xtask good = {.value = 0x31}, failing = {.code = 21};
    cf_executor *ex;
    cf_future *ok, *bad;
    int c = 0;
    (void)state;
    ex = make_executor(1, NULL);
    ok = tu_xsubmit(ex, &good);
    bad = tu_xsubmit(ex, &failing);
    assert_int_equal(tu_xresult(ok, TU_LONG), 0x31);
    assert_int_equal(cf_future_result(bad, TU_LONG, NULL), CF_ETASK);
    assert_int_equal(cf_future_cancel(ok), CF_EBUSY);
    assert_int_equal(cf_future_cancel(bad), CF_EBUSY);
    assert_int_equal(cf_future_cancel(ok), CF_EBUSY);
    assert_int_equal(cf_future_state(ok), CF_FINISHED);
    assert_int_equal(cf_future_state(bad), CF_FINISHED);
    assert_int_equal(tu_xresult(ok, CF_POLL), 0x31);
    assert_int_equal(cf_future_result(bad, CF_POLL, NULL), CF_ETASK);
    assert_int_equal(cf_future_error(bad, &c, NULL), CF_ETASK);
    assert_int_equal(c, 21);
    cf_future_release(ok);
    cf_future_release(bad);
    cf_executor_free(ex);
}

/* SEMANTICS 2: many cancelled tasks: not one of them ever starts. */
static void cancelled_tasks_never_run(void **state)
{
    enum { N = 200 };
    tu_hold hold;
    tu_latch ran;
    tu_xtask t;
    cf_executor *ex;
    cf_future *f[N];
    int i;
    (void)state;
    tu_latch_init(&ran);
    t = (tu_xtask){.finished = &ran};
    ex = make_executor(2, NULL);
    tu_hold_workers(&hold, ex);
    for (i = 0; i < N; i++)
        f[i] = tu_xsubmit(ex, &t);
    for (i = 0; i < N; i++)
        assert_int_equal(cf_future_cancel(f[i]), 0);
    tu_hold_release(&hold);
    cf_executor_free(ex);
    assert_int_equal(tu_latch_count(&ran), 0);
    for (i = 0; i < N; i++) {
        assert_int_equal(cf_future_state(f[i]), CF_CANCELLED);
        cf_future_release(f[i]);
    }
    tu_latch_destroy(&ran);
}

/* ---- SEMANTICS 3: result and its timeout -------------------------------------------- */

/* SEMANTICS 3: timeout 0 polls; it reports CF_ETIMEDOUT and changes nothing (a pending
 * future polled is still pending and can still be cancelled; a running one still runs). */
static void result_poll_leaves_future_unchanged(void **state)
{
    tu_hold hold;
    tu_latch ran;
    tu_xtask t;
    cf_executor *ex;
    cf_future *fa, *fb;
    void *v = NULL;
    (void)state;
    tu_latch_init(&ran);
    t = (tu_xtask){.finished = &ran};
    ex = make_executor(1, NULL);
    tu_hold_workers(&hold, ex);
    fa = cf_future_retain(tu_hold_running(&hold));
    fb = tu_xsubmit(ex, &t);

    assert_int_equal(cf_future_result(fa, CF_POLL, &v), CF_ETIMEDOUT);
    assert_int_equal(cf_future_result(fb, CF_POLL, &v), CF_ETIMEDOUT);
    assert_int_equal(cf_future_wait(fa, CF_POLL), CF_ETIMEDOUT);
    assert_int_equal(cf_future_bytes(fb, CF_POLL, NULL, NULL), CF_ETIMEDOUT);
    assert_int_equal(cf_future_error(fa, NULL, NULL), CF_ETIMEDOUT); /* as result(0) */
    assert_int_equal(cf_future_state(fa), CF_RUNNING);
    assert_int_equal(cf_future_state(fb), CF_PENDING);
    assert_int_equal(cf_future_cancel(fb), 0);

    tu_hold_release(&hold);
    assert_int_equal(tu_xresult(fa, CF_POLL), 1);
    cf_future_release(fa);
    cf_future_release(fb);
    cf_executor_free(ex);
    assert_int_equal(tu_latch_count(&ran), 0);
    tu_latch_destroy(&ran);
}

/* SEMANTICS 3: a positive timeout waits at least that long, reports CF_ETIMEDOUT, and the
 * future then completes normally. */
static void result_positive_timeout(void **state)
{
    tu_gate gate;
    tu_latch started;
    tu_xtask a;
    cf_executor *ex;
    cf_future *f;
    void *v = NULL;
    double t0, elapsed;
    (void)state;
    tu_gate_init(&gate);
    tu_latch_init(&started);
    a = (tu_xtask){.gate = &gate, .started = &started, .value = 0x2};
    ex = make_executor(1, NULL);
    f = tu_xsubmit(ex, &a);
    assert_int_equal(tu_latch_wait(&started, 1, TU_LONG), 0);

    t0 = tu_now();
    assert_int_equal(cf_future_result(f, 0.1, &v), CF_ETIMEDOUT);
    elapsed = tu_now() - t0;
    assert_true(elapsed >= 0.1 - 1e-3);
    t0 = tu_now();
    assert_int_equal(cf_future_wait(f, 0.05), CF_ETIMEDOUT);
    elapsed = tu_now() - t0;
    assert_true(elapsed >= 0.05 - 1e-3);
    assert_int_equal(cf_future_state(f), CF_RUNNING);

    tu_gate_open(&gate);
    assert_int_equal(tu_xresult(f, TU_LONG), 0x2);
    assert_int_equal(cf_future_wait(f, TU_LONG), 0);
    cf_future_release(f);
    cf_executor_free(ex);
    tu_latch_destroy(&started);
    tu_gate_destroy(&gate);
}

/* SEMANTICS 3: any negative timeout waits for as long as it takes (here longer than the
 * absolute value of the timeout given). */
static void result_negative_waits_forever(void **state)
{
    tu_gate gate;
    tu_latch started;
    tu_xtask a, b;
    tu_opener op;
    cf_executor *ex;
    cf_future *fa, *fb;
    const void *data = NULL;
    size_t len = 0;
    double t0;
    (void)state;
    tu_watchdog(120);
    tu_gate_init(&gate);
    tu_latch_init(&started);
    a = (tu_xtask){.gate = &gate, .started = &started, .value = 0xa};
    b = (tu_xtask){.gate = &gate, .started = &started, .value = 0xb};
    ex = make_executor(2, NULL);
    fa = tu_xsubmit(ex, &a);
    fb = tu_xsubmit(ex, &b);
    assert_int_equal(tu_latch_wait(&started, 1, TU_LONG), 0);
    t0 = tu_now();
    tu_open_later(&op, &gate, 0.3);
    assert_int_equal(cf_future_bytes(fa, -0.01, &data, &len), 0);
    assert_true(tu_now() - t0 >= 0.3 - 1e-3);
    assert_int_equal(tu_xvalue(data, len), 0xa);
    assert_int_equal(cf_future_bytes(fb, CF_FOREVER, &data, &len), 0);
    assert_int_equal(tu_xvalue(data, len), 0xb);
    assert_int_equal(cf_future_wait(fb, -1e9), 0);
    tu_opener_join(&op);
    cf_future_release(fa);
    cf_future_release(fb);
    cf_executor_free(ex);
    tu_latch_destroy(&started);
    tu_gate_destroy(&gate);
}

/* ---- SEMANTICS 4: the task's own error ---------------------------------------------- */

static int bytes_fail_42(const void *in, size_t len, cf_ctx *ctx)
{
    (void)in;
    (void)len;
    return cf_fail(ctx, 42, "bad input %d (%s)", 7, "seven");
}

CF_FUNCTION(fail_42_fn, bytes_fail_42);

typedef struct error_reader {
    cf_future *f;
    int rc_result, rc_error, code;
    char msg[64];
} error_reader;

static void *read_error(void *arg)
{
    error_reader *r = arg;
    const char *m = NULL;
    r->rc_result = cf_future_result(r->f, TU_LONG, NULL);
    r->rc_error = cf_future_error(r->f, &r->code, &m);
    snprintf(r->msg, sizeof r->msg, "%s", m ? m : "(null)");
    return NULL;
}

/* SEMANTICS 4: a failing task's code and message reach every caller, any number of times,
 * in any thread. */
static void task_error_code_and_message(void **state)
{
    cf_executor *ex;
    cf_future *f = NULL;
    error_reader r[3];
    pthread_t t[3];
    int code = 0, i;
    const char *msg = NULL;
    (void)state;
    ex = make_executor(1, NULL);
    assert_int_equal(cf_submit_bytes(ex, &fail_42_fn, NULL, 0, &f), 0);
    for (i = 0; i < 3; i++) { /* readers start before the task is necessarily done */
        r[i].f = f;
        t[i] = tu_thread_start(read_error, &r[i]);
    }
    assert_int_equal(cf_future_result(f, TU_LONG, NULL), CF_ETASK);
    assert_int_equal(cf_future_result(f, TU_LONG, NULL), CF_ETASK);
    assert_int_equal(cf_future_error(f, &code, &msg), CF_ETASK);
    assert_int_equal(code, 42);
    assert_non_null(msg);
    assert_string_equal(msg, "bad input 7 (seven)");
    code = 0;
    msg = NULL;
    assert_int_equal(cf_future_error(f, &code, &msg), CF_ETASK);
    assert_int_equal(code, 42);
    assert_string_equal(msg, "bad input 7 (seven)");
    assert_int_equal(cf_future_error(f, NULL, NULL), CF_ETASK);
    for (i = 0; i < 3; i++) {
        tu_thread_join(t[i]);
        assert_int_equal(r[i].rc_result, CF_ETASK);
        assert_int_equal(r[i].rc_error, CF_ETASK);
        assert_int_equal(r[i].code, 42);
        assert_string_equal(r[i].msg, "bad input 7 (seven)");
    }
    cf_future_release(f);
    cf_executor_free(ex);
}

static int bytes_return_5(const void *in, size_t len, cf_ctx *ctx)
{
    (void)in;
    (void)len;
    (void)ctx;
    return 5;
}

static int bytes_fail_zero(const void *in, size_t len, cf_ctx *ctx)
{
    (void)in;
    (void)len;
    return cf_fail(ctx, 0, "zero is not an error code");
}

static int bytes_fail_twice(const void *in, size_t len, cf_ctx *ctx)
{
    (void)in;
    (void)len;
    cf_fail(ctx, 1, "first message");
    return cf_fail(ctx, 2, "second %s", "message");
}

/* A result of 0 bytes three ways: none set (input byte 0), set empty (1), an empty
 * buffer asked for (2), which cf_ctx_output still gives as a valid pointer. */
static int bytes_empty(const void *in, size_t len, cf_ctx *ctx)
{
    int how = len ? *(const unsigned char *)in : 0;
    if (how == 1)
        return cf_ctx_set_output(ctx, "unused", 0);
    if (how == 2)
        return cf_ctx_output(ctx, 0) ? 0 : cf_fail(ctx, 7, "cf_ctx_output(0) gave NULL");
    return 0;
}

CF_FUNCTION(return_5_fn, bytes_return_5);
CF_FUNCTION(empty_fn, bytes_empty);
CF_FUNCTION(fail_zero_fn, bytes_fail_zero);
CF_FUNCTION(fail_twice_fn, bytes_fail_twice);

/* SEMANTICS 4: an error without cf_fail has the code and no message; cf_fail turns 0 into
 * -1; a later cf_fail replaces the message; a success carries no error. */
static void task_error_variants(void **state)
{
    tu_xtask good = {.value = 0x3};
    cf_executor *ex;
    cf_future *plain = NULL, *zero = NULL, *twice = NULL, *ok;
    int code = 0;
    const char *msg = "unset";
    (void)state;
    ex = make_executor(2, NULL);
    assert_int_equal(cf_submit_bytes(ex, &return_5_fn, NULL, 0, &plain), 0);
    assert_int_equal(cf_submit_bytes(ex, &fail_zero_fn, NULL, 0, &zero), 0);
    assert_int_equal(cf_submit_bytes(ex, &fail_twice_fn, NULL, 0, &twice), 0);
    ok = tu_xsubmit(ex, &good);

    assert_int_equal(cf_future_result(plain, TU_LONG, NULL), CF_ETASK);
    assert_int_equal(cf_future_error(plain, &code, &msg), CF_ETASK);
    assert_int_equal(code, 5);
    assert_null(msg);

    assert_int_equal(cf_future_result(zero, TU_LONG, NULL), CF_ETASK);
    assert_int_equal(cf_future_error(zero, &code, &msg), CF_ETASK);
    assert_int_equal(code, -1);
    assert_string_equal(msg, "zero is not an error code");

    assert_int_equal(cf_future_result(twice, TU_LONG, NULL), CF_ETASK);
    assert_int_equal(cf_future_error(twice, &code, &msg), CF_ETASK);
    assert_int_equal(code, 2);
    assert_string_equal(msg, "second message");

    assert_int_equal(tu_xresult(ok, TU_LONG), 0x3);
    code = 99;
    msg = "unset";
    assert_int_equal(cf_future_error(ok, &code, &msg), 0);
    assert_int_equal(code, 0);
    assert_null(msg);

    cf_future_release(plain);
    cf_future_release(zero);
    cf_future_release(twice);
    cf_future_release(ok);
    cf_executor_free(ex);
}

/* Issue 12 item 8: a 0-byte result is NULL with length 0, on every backend, through a
 * future and through a map (it was NULL on processes and a pointer on threads). */
static void empty_result_is_null_everywhere(void **state)
{
    (void)state;
    cf_executor *ex = make_executor(2, NULL);
    static const unsigned char how[3] = {0, 1, 2};
    for (int i = 0; i < 3; i++) {
        cf_future *f = NULL;
        assert_int_equal(cf_submit_bytes(ex, &empty_fn, &how[i], 1, &f), 0);
        const void *data = &data;
        size_t len = 99;
        assert_int_equal(cf_future_bytes(f, TU_LONG, &data, &len), 0);
        assert_null(data);
        assert_int_equal(len, 0);
        cf_future_release(f);
    }
    cf_bytes in[3] = {{&how[0], 1}, {&how[1], 1}, {&how[2], 1}};
    cf_map *m = NULL;
    assert_int_equal(cf_map_bytes_start(&m, ex, &empty_fn, in, 3, NULL), 0);
    for (size_t i = 0; i < 3; i++) {
        size_t idx = SIZE_MAX;
        void *v = &v;
        assert_int_equal(cf_map_next(m, &idx, &v), 0);
        assert_int_equal(idx, i);
        assert_null(v);
        assert_int_equal(cf_map_value_len(m), 0);
    }
    assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
    cf_map_free(m);
    cf_executor_free(ex);
}

/* SEMANTICS 4: a task's own "timed out" (or "cancelled", or "exceeded its time limit")
 * code is the task's error, never result()'s timeout, a cancellation or a process pool's
 * time limit. */
static void task_own_timeout_is_not_result_timeout(void **state)
{
    static const int codes[] = {CF_ETIMEDOUT, ETIMEDOUT, CF_ECANCELLED, CF_ETASKTIMEOUT};
    cf_executor *ex;
    size_t i;
    (void)state;
    ex = make_executor(1, NULL);
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        tu_xtask t = {.code = codes[i]};
        cf_future *f = tu_xsubmit(ex, &t);
        int code = 0;
        assert_int_equal(cf_future_result(f, TU_LONG, NULL), CF_ETASK);
        assert_int_equal(cf_future_wait(f, CF_POLL), 0);
        assert_int_equal(cf_future_state(f), CF_FINISHED);
        assert_int_equal(cf_future_error(f, &code, NULL), CF_ETASK);
        assert_int_equal(code, codes[i]);
        cf_future_release(f);
    }
    cf_executor_free(ex);
}

/* ---- SEMANTICS 5: completion exactly once ------------------------------------------- */

typedef struct race_slot {
    atomic_int callbacks;
    atomic_int cb_state;
    int cancel_rc;
} race_slot;

static void race_cb(cf_future *f, void *data)
{
    race_slot *s = data;
    TU_CHECK(cf_future_done(f) == 1);
    atomic_store(&s->cb_state, (int)cf_future_state(f));
    atomic_fetch_add(&s->callbacks, 1);
}

enum { RACE_N = 3000 };

typedef struct race {
    cf_future *f[RACE_N];
    race_slot slot[RACE_N];
    atomic_int published;
} race;

static void *race_canceller(void *arg)
{
    race *r = arg;
    int i;
    for (i = 0; i < RACE_N; i++) {
        while (atomic_load(&r->published) <= i)
            sched_yield();
        r->slot[i].cancel_rc = cf_future_cancel(r->f[i]);
    }
    return NULL;
}

/* SEMANTICS 5, 2, 6: cancels racing the workers that start the same tasks: each future ends
 * either cancelled (cancel said 0) or finished with its own value (cancel said CF_EBUSY),
 * never both, and its callback ran exactly once, seeing the final state.  The tasks count
 * their runs: as many as finished futures, so no cancelled task ran and none ran twice. */
static void complete_exactly_once_under_cancel_race(void **state)
{
    static race r;
    tu_latch ran;
    cf_executor *ex;
    pthread_t t;
    int i, cancelled = 0, finished = 0;
    (void)state;
    tu_latch_init(&ran);
    atomic_init(&r.published, 0);
    ex = make_executor(2, NULL);
    t = tu_thread_start(race_canceller, &r);
    for (i = 0; i < RACE_N; i++) {
        tu_xtask task = {.finished = &ran, .value = i};
        atomic_init(&r.slot[i].callbacks, 0);
        atomic_init(&r.slot[i].cb_state, -1);
        r.f[i] = tu_xsubmit(ex, &task);
        assert_int_equal(cf_future_add_callback(r.f[i], race_cb, &r.slot[i]), 0);
        atomic_store(&r.published, i + 1);
    }
    tu_thread_join(t);
    cf_executor_free(ex);
    for (i = 0; i < RACE_N; i++) {
        race_slot *s = &r.slot[i];
        assert_int_equal(atomic_load(&s->callbacks), 1);
        if (s->cancel_rc == 0) {
            cancelled++;
            assert_int_equal(cf_future_state(r.f[i]), CF_CANCELLED);
            assert_int_equal(atomic_load(&s->cb_state), CF_CANCELLED);
            assert_int_equal(cf_future_result(r.f[i], CF_POLL, NULL), CF_ECANCELLED);
            assert_int_equal(cf_future_cancel(r.f[i]), 0);
        } else {
            finished++;
            assert_int_equal(s->cancel_rc, CF_EBUSY);
            assert_int_equal(cf_future_state(r.f[i]), CF_FINISHED);
            assert_int_equal(atomic_load(&s->cb_state), CF_FINISHED);
            assert_int_equal(tu_xresult(r.f[i], CF_POLL), i);
            assert_int_equal(cf_future_cancel(r.f[i]), CF_EBUSY);
        }
        cf_future_release(r.f[i]);
    }
    assert_int_equal(cancelled + finished, RACE_N);
    assert_int_equal(tu_latch_count(&ran), finished);
    print_message("cancel race: %d cancelled, %d finished\n", cancelled, finished);
    tu_latch_destroy(&ran);
    tu_assert_no_check_failures();
}

/* A future carries the caller's data: each x-task's index set after submitting comes back
 * with the future cf_as_completed_next and cf_wait give, and matches its own result; a
 * recycled future starts with NULL again. */
static void future_carries_callers_data(void **state)
{
    enum { N = 16 };
    cf_executor *ex = make_executor(2, NULL);
    cf_future *fs[N], *f, *done[N];
    cf_as_completed *it = NULL;
    size_t nd = 0, i;
    int seen = 0;
    (void)state;
    for (i = 0; i < N; i++) {
        tu_xtask t = {.value = (int64_t)(100 + i)};
        fs[i] = tu_xsubmit(ex, &t);
        assert_null(cf_future_data(fs[i]));
        cf_future_set_data(fs[i], (void *)(uintptr_t)i);
    }
    assert_int_equal(cf_as_completed_new(&it, fs, N, TU_LONG), 0);
    while (cf_as_completed_next(it, &f) == 0) {
        size_t idx = (uintptr_t)cf_future_data(f);
        assert_true(idx < N);
        assert_ptr_equal(f, fs[idx]);
        assert_int_equal(tu_xresult(f, TU_LONG), 100 + (int64_t)idx);
        seen |= 1 << idx;
    }
    cf_as_completed_free(it);
    assert_int_equal(seen, (1 << N) - 1);
    assert_int_equal(cf_wait(fs, N, CF_ALL_COMPLETED, TU_LONG, done, &nd, NULL, NULL), 0);
    assert_int_equal(nd, N);
    for (i = 0; i < nd; i++)
        assert_int_equal(tu_xresult(done[i], 0), 100 + (int64_t)(uintptr_t)cf_future_data(done[i]));
    for (i = 0; i < N; i++)
        cf_future_release(fs[i]);
    for (i = 0; i < N; i++) { /* the same memory again: the caller's data is not inherited */
        tu_xtask t = {.value = 1};
        fs[i] = tu_xsubmit(ex, &t);
        assert_null(cf_future_data(fs[i]));
    }
    for (i = 0; i < N; i++)
        cf_future_release(fs[i]);
    cf_executor_free(ex);
}

/* ---- SEMANTICS 6: done-callbacks ---------------------------------------------------- */

enum { ORDER_N = 8 };

typedef struct order_log {
    pthread_mutex_t mu;
    int seq[ORDER_N * 2];
    int n;
    cf_future *expected;
    pthread_t thread[ORDER_N];
    int state_ok;
    tu_latch calls;
} order_log;

typedef struct order_cb {
    order_log *log;
    int index;
} order_cb;

static void order_fn(cf_future *f, void *data)
{
    order_cb *c = data;
    order_log *lg = c->log;
    pthread_mutex_lock(&lg->mu);
    if (lg->n < ORDER_N * 2)
        lg->seq[lg->n] = c->index;
    lg->n++;
    lg->thread[c->index] = pthread_self();
    if (f != lg->expected || cf_future_done(f) != 1)
        lg->state_ok = 0;
    pthread_mutex_unlock(&lg->mu);
    tu_latch_arrive(&lg->calls);
}

static void order_log_init(order_log *lg, cf_future *expected)
{
    pthread_mutex_init(&lg->mu, NULL);
    lg->n = 0;
    lg->expected = expected;
    lg->state_ok = 1;
    tu_latch_init(&lg->calls);
}

static void order_log_destroy(order_log *lg)
{
    tu_latch_destroy(&lg->calls);
    pthread_mutex_destroy(&lg->mu);
}

/* SEMANTICS 6: callbacks run exactly once each, in the order added, with the future, all
 * in the one thread that completed it, not the caller's (the header names that thread per
 * backend; callbacks_run_in_task_thread checks the thread pool's). */
static void callbacks_order_once_not_in_caller(void **state)
{
    tu_gate gate;
    tu_latch started;
    tu_xtask a;
    order_log lg;
    order_cb cbs[ORDER_N];
    cf_executor *ex;
    cf_future *f;
    int i;
    (void)state;
    tu_gate_init(&gate);
    tu_latch_init(&started);
    a = (tu_xtask){.gate = &gate, .started = &started, .value = 0x4};
    ex = make_executor(1, NULL);
    f = tu_xsubmit(ex, &a);
    order_log_init(&lg, f);
    for (i = 0; i < ORDER_N; i++) {
        cbs[i].log = &lg;
        cbs[i].index = i;
        assert_int_equal(cf_future_add_callback(f, order_fn, &cbs[i]), 0);
    }
    assert_int_equal(tu_latch_count(&lg.calls), 0);
    tu_gate_open(&gate);
    assert_int_equal(tu_latch_wait(&lg.calls, ORDER_N, TU_LONG), 0);
    assert_int_equal(tu_xresult(f, TU_LONG), 0x4);
    cf_executor_free(ex); /* nothing left that could run a callback again */
    assert_int_equal(lg.n, ORDER_N);
    assert_true(lg.state_ok);
    for (i = 0; i < ORDER_N; i++) {
        assert_int_equal(lg.seq[i], i);
        assert_true(pthread_equal(lg.thread[i], lg.thread[0]));
        assert_false(pthread_equal(lg.thread[i], pthread_self()));
    }
    cf_future_release(f);
    order_log_destroy(&lg);
    tu_latch_destroy(&started);
    tu_gate_destroy(&gate);
}

/* SEMANTICS 6: added to a future already done (finished or cancelled), the callback runs at
 * once, in the caller's thread, before cf_future_add_callback returns. */
static void callback_on_done_future_runs_at_once_in_caller(void **state)
{
    tu_hold hold;
    tu_latch ran;
    tu_xtask t;
    order_log lg;
    order_cb c0 = {&lg, 0}, c1 = {&lg, 1};
    cf_executor *ex;
    cf_future *fin, *can;
    (void)state;
    tu_latch_init(&ran);
    t = (tu_xtask){.finished = &ran};
    ex = make_executor(1, NULL);
    fin = tu_xsubmit(ex, &t);
    assert_int_equal(cf_future_result(fin, TU_LONG, NULL), 0);
    order_log_init(&lg, fin);
    assert_int_equal(cf_future_add_callback(fin, order_fn, &c0), 0);
    assert_int_equal(lg.n, 1);
    assert_true(lg.state_ok);
    assert_true(pthread_equal(lg.thread[0], pthread_self()));

    tu_hold_workers(&hold, ex);
    can = tu_xsubmit(ex, &t);
    assert_int_equal(cf_future_cancel(can), 0);
    lg.expected = can;
    assert_int_equal(cf_future_add_callback(can, order_fn, &c1), 0);
    assert_int_equal(lg.n, 2);
    assert_true(lg.state_ok);
    assert_true(pthread_equal(lg.thread[1], pthread_self()));
    tu_hold_release(&hold);

    cf_executor_free(ex);
    assert_int_equal(lg.n, 2); /* and never again */
    assert_int_equal(tu_latch_count(&ran), 1);
    cf_future_release(fin);
    cf_future_release(can);
    order_log_destroy(&lg);
    tu_latch_destroy(&ran);
}

/* A callback that, as number 0, holds the completing thread until released. */
typedef struct slow_first {
    order_cb cb;
    tu_latch *running;
    tu_gate *release;
} slow_first;

static void slow_first_fn(cf_future *f, void *data)
{
    slow_first *s = data;
    tu_latch_arrive(s->running);
    tu_gate_wait(s->release, TU_LONG);
    order_fn(f, &s->cb);
}

/* SEMANTICS 6: a callback added while the future's callbacks are being run goes after them,
 * in the completing thread (it used to run at once in the adder's thread: order 0, 2, 1);
 * only once all have run does a new one run at once in the caller's thread. */
static void callback_added_while_running_goes_last(void **state)
{
    tu_gate gate, release;
    tu_latch running;
    tu_xtask a;
    order_log lg;
    slow_first first;
    order_cb c1, c2, c3;
    cf_executor *ex;
    cf_future *f;
    (void)state;
    tu_gate_init(&gate);
    tu_gate_init(&release);
    tu_latch_init(&running);
    a = (tu_xtask){.gate = &gate, .value = 0x5};
    ex = make_executor(1, NULL);
    f = tu_xsubmit(ex, &a);
    order_log_init(&lg, f);
    first = (slow_first){.cb = {&lg, 0}, .running = &running, .release = &release};
    c1 = (order_cb){&lg, 1};
    c2 = (order_cb){&lg, 2};
    c3 = (order_cb){&lg, 3};
    assert_int_equal(cf_future_add_callback(f, slow_first_fn, &first), 0);
    assert_int_equal(cf_future_add_callback(f, order_fn, &c1), 0);
    tu_gate_open(&gate);
    assert_int_equal(tu_latch_wait(&running, 1, TU_LONG), 0);
    assert_true(cf_future_done(f));
    assert_int_equal(cf_future_add_callback(f, order_fn, &c2), 0);
    assert_int_equal(lg.n, 0); /* not run at once: callback 0 is still running */
    tu_gate_open(&release);
    assert_int_equal(tu_latch_wait(&lg.calls, 3, TU_LONG), 0);
    cf_executor_free(ex); /* joins the completing thread: every callback has now run */
    assert_int_equal(cf_future_add_callback(f, order_fn, &c3), 0);
    pthread_mutex_lock(&lg.mu);
    int n = lg.n;
    pthread_mutex_unlock(&lg.mu);
    assert_int_equal(n, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(lg.seq[i], i);
    assert_true(pthread_equal(lg.thread[2], lg.thread[0]));
    assert_false(pthread_equal(lg.thread[2], pthread_self()));
    assert_true(pthread_equal(lg.thread[3], pthread_self()));
    assert_true(lg.state_ok);
    cf_future_release(f);
    order_log_destroy(&lg);
    tu_latch_destroy(&running);
    tu_gate_destroy(&release);
    tu_gate_destroy(&gate);
}

typedef struct canceller {
    cf_future *f;
    order_log *lg;
    int rc;
    int calls_when_returned;
    pthread_t self;
} canceller;

static void *cancel_in_thread(void *arg)
{
    canceller *c = arg;
    c->self = pthread_self();
    c->rc = cf_future_cancel(c->f);
    pthread_mutex_lock(&c->lg->mu);
    c->calls_when_returned = c->lg->n;
    pthread_mutex_unlock(&c->lg->mu);
    return NULL;
}

/* SEMANTICS 6: cancelling runs the callbacks, in order, in the cancelling thread, before
 * cf_future_cancel returns. */
static void callbacks_run_on_cancel_in_canceller_thread(void **state)
{
    tu_hold hold;
    tu_latch ran;
    tu_xtask t;
    order_log lg;
    order_cb cbs[3];
    canceller c;
    cf_executor *ex;
    cf_future *f;
    pthread_t th;
    int i;
    (void)state;
    tu_latch_init(&ran);
    t = (tu_xtask){.finished = &ran};
    ex = make_executor(1, NULL);
    tu_hold_workers(&hold, ex);
    f = tu_xsubmit(ex, &t);
    order_log_init(&lg, f);
    for (i = 0; i < 3; i++) {
        cbs[i].log = &lg;
        cbs[i].index = i;
        assert_int_equal(cf_future_add_callback(f, order_fn, &cbs[i]), 0);
    }
    c.f = f;
    c.lg = &lg;
    th = tu_thread_start(cancel_in_thread, &c);
    tu_thread_join(th);
    assert_int_equal(c.rc, 0);
    assert_int_equal(c.calls_when_returned, 3);
    for (i = 0; i < 3; i++) {
        assert_int_equal(lg.seq[i], i);
        assert_true(pthread_equal(lg.thread[i], c.self));
    }
    assert_true(lg.state_ok);
    assert_int_equal(cf_future_cancel(f), 0); /* a second cancel runs nothing again */
    tu_hold_release(&hold);
    cf_executor_free(ex);
    assert_int_equal(lg.n, 3);
    assert_int_equal(tu_latch_count(&ran), 0);
    cf_future_release(f);
    order_log_destroy(&lg);
    tu_latch_destroy(&ran);
}

typedef struct busy_cb {
    cf_executor *ex;
    tu_xmsg fire;      /* the input of the task the callback submits */
    cf_future *victim;
    cf_future *handed; /* a reference the test gives the callback to release */
    cf_future *kept;   /* a reference the callback takes for the test */
    int submit_rc, cancel_rc;
    tu_latch done;
} busy_cb;

static void busy_fn(cf_future *f, void *data)
{
    busy_cb *b = data;
    b->kept = cf_future_retain(f);
    cf_future_release(b->handed);
    b->submit_rc = cf_submit_bytes(b->ex, &tu_xtask_fn, &b->fire, sizeof b->fire, NULL);
    b->cancel_rc = cf_future_cancel(b->victim);
    tu_latch_arrive(&b->done);
}

/* SEMANTICS 6: a callback, in the thread that completes the future, may retain and release
 * references, submit tasks (fire-and-forget) to the same executor and cancel other futures,
 * as the header allows.  The victim waits on a second executor held busy, so it is surely
 * still pending when the callback runs. */
static void callback_may_submit_cancel_retain(void **state)
{
    tu_gate gate;
    tu_latch started, fired, victim_ran;
    tu_hold hold;
    tu_xtask a, fire, victim;
    busy_cb b;
    cf_executor *ex, *ex2;
    cf_future *f;
    (void)state;
    tu_gate_init(&gate);
    tu_latch_init(&started);
    tu_latch_init(&fired);
    tu_latch_init(&victim_ran);
    tu_latch_init(&b.done);
    a = (tu_xtask){.gate = &gate, .started = &started, .value = 0x6};
    fire = (tu_xtask){.finished = &fired};
    victim = (tu_xtask){.finished = &victim_ran};
    tu_xtask_input(&fire, &b.fire);
    ex = make_executor(1, NULL);
    ex2 = make_executor(1, NULL);
    tu_hold_workers(&hold, ex2);
    f = tu_xsubmit(ex, &a);
    assert_int_equal(tu_latch_wait(&started, 1, TU_LONG), 0);
    b.ex = ex;
    b.victim = tu_xsubmit(ex2, &victim); /* queued behind the hold */
    b.handed = cf_future_retain(f);
    assert_int_equal(cf_future_add_callback(f, busy_fn, &b), 0);
    cf_future_release(f); /* left: the pool's, the handed one, then the callback's own */
    tu_gate_open(&gate);
    assert_int_equal(tu_latch_wait(&b.done, 1, TU_LONG), 0);
    cf_executor_free(ex);
    assert_int_equal(b.submit_rc, 0);
    assert_int_equal(b.cancel_rc, 0);
    assert_int_equal(tu_latch_count(&fired), 1);
    assert_int_equal(cf_future_state(b.victim), CF_CANCELLED);
    assert_int_equal(cf_future_state(b.kept), CF_FINISHED);
    tu_hold_release(&hold);
    cf_executor_free(ex2);
    assert_int_equal(tu_latch_count(&victim_ran), 0);
    cf_future_release(b.kept);
    cf_future_release(b.victim);
    tu_latch_destroy(&b.done);
    tu_latch_destroy(&victim_ran);
    tu_latch_destroy(&fired);
    tu_latch_destroy(&started);
    tu_gate_destroy(&gate);
}

/* ---- SEMANTICS 7: wake-ups ---------------------------------------------------------- */

enum { WAKE_N = 100, WAKE_ROUNDS = 5, WAKE_GROUP = 4 };

typedef struct wake_round {
    cf_future *f[WAKE_N];
    tu_gate *gate;
    tu_latch ready;
} wake_round;

typedef struct waiter {
    wake_round *r;
    int index; /* >= 0: that future; -1: cf_wait on all; -2: as_completed on all;
                  less: cf_future_wait on each */
    double timeout;
    int rc;
    int early; /* returned while the gate was still closed */
    int64_t value;
} waiter;

static void *wait_one_or_all(void *arg)
{
    waiter *w = arg;
    wake_round *r = w->r;
    tu_latch_arrive(&r->ready);
    if (w->index >= 0) {
        const void *data = NULL;
        size_t len = 0;
        w->rc = cf_future_bytes(r->f[w->index], w->timeout, &data, &len);
        w->value = tu_xvalue(data, len);
    } else if (w->index == -1) {
        size_t nd = 0, nn = 0;
        w->rc = cf_wait(r->f, WAKE_N, CF_ALL_COMPLETED, w->timeout, NULL, &nd, NULL, &nn);
        if (w->rc == 0 && (nd != WAKE_N || nn != 0))
            w->rc = CF_ETIMEDOUT;
    } else if (w->index == -2) {
        cf_as_completed *it = NULL;
        cf_future *g;
        int n = 0;
        w->rc = cf_as_completed_new(&it, r->f, WAKE_N, w->timeout);
        while (w->rc == 0 && (w->rc = cf_as_completed_next(it, &g)) == 0)
            n++;
        if (w->rc == CF_EEND && n == WAKE_N)
            w->rc = 0;
        cf_as_completed_free(it);
    } else {
        int i;
        w->rc = 0;
        for (i = WAKE_N - 1; i >= 0 && w->rc == 0; i--)
            w->rc = cf_future_wait(r->f[i], w->timeout);
    }
    w->early = tu_gate_wait(r->gate, CF_POLL) != 0;
    return NULL;
}

/* SEMANTICS 7: 100 tasks held at one gate complete together while 100 threads wait on one
 * future each and others wait on all of them (cf_wait, as_completed, cf_future_wait), all
 * without a timeout: a lost wake-up leaves a waiter asleep for good, which the watchdog
 * turns into a failure.  No waiter may return before the gate opens.  A thread pool gets a
 * worker per task, so all complete at once; a process pool gets 4 workers (processes are
 * costly), whose completions come in bursts.  Repeated to give the race several chances. */
static void racing_completions_lose_no_wakeup(void **state)
{
    static waiter w[WAKE_N + WAKE_GROUP];
    static pthread_t t[WAKE_N + WAKE_GROUP];
    int workers = tu_backend_inprocess() ? WAKE_N : 4;
    int round, i;
    (void)state;
    tu_watchdog(50);
    for (round = 0; round < WAKE_ROUNDS; round++) {
        wake_round r;
        tu_gate gate;
        tu_latch started;
        cf_executor *ex = make_executor(workers, NULL);
        tu_start_workers(ex); /* so each of the first tasks finds its own idle worker */
        tu_gate_init(&gate);
        tu_latch_init(&started);
        tu_latch_init(&r.ready);
        r.gate = &gate;
        for (i = 0; i < WAKE_N; i++) {
            tu_xtask task = {.gate = &gate, .started = &started, .value = i + 1000};
            r.f[i] = tu_xsubmit(ex, &task);
        }
        assert_int_equal(tu_latch_wait(&started, workers, TU_LONG), 0);
        for (i = 0; i < WAKE_N + WAKE_GROUP; i++) {
            w[i].r = &r;
            w[i].index = i < WAKE_N ? i : WAKE_N - 1 - i;
            w[i].timeout = CF_FOREVER;
            w[i].rc = -12345;
            t[i] = tu_thread_start(wait_one_or_all, &w[i]);
        }
        assert_int_equal(tu_latch_wait(&r.ready, WAKE_N + WAKE_GROUP, TU_LONG), 0);
        tu_gate_open(&gate);
        for (i = 0; i < WAKE_N + WAKE_GROUP; i++) {
            tu_thread_join(t[i]);
            if (w[i].rc != 0 || w[i].early)
                fail_msg("round %d, waiter %d (kind %d): %s, %s", round, i, w[i].index,
                         cf_err_name(w[i].rc), w[i].early ? "returned early" : "in time");
            if (i < WAKE_N)
                assert_int_equal(w[i].value, i + 1000);
        }
        for (i = 0; i < WAKE_N; i++)
            cf_future_release(r.f[i]);
        cf_executor_free(ex);
        tu_latch_destroy(&r.ready);
        tu_latch_destroy(&started);
        tu_gate_destroy(&gate);
    }
}

/* SEMANTICS 7: waiting does not spin: 16 threads blocked 300 ms in result() on a running
 * future use less than 30 ms of CPU in total, the executor's own threads included (a
 * resource check, not a speed check). */
static void waiting_burns_no_cpu(void **state)
{
    enum { WAITERS = 16 };
    tu_gate gate;
    tu_latch started;
    tu_xtask a;
    cf_executor *ex;
    waiter w[WAITERS];
    pthread_t t[WAITERS];
    wake_round r;
    double cpu0, cpu;
    int i;
    (void)state;
    tu_gate_init(&gate);
    tu_latch_init(&started);
    tu_latch_init(&r.ready);
    r.gate = &gate;
    a = (tu_xtask){.gate = &gate, .started = &started, .value = 0x8};
    ex = make_executor(1, NULL);
    r.f[0] = tu_xsubmit(ex, &a);
    assert_int_equal(tu_latch_wait(&started, 1, TU_LONG), 0);
    for (i = 0; i < WAITERS; i++) {
        w[i].r = &r;
        w[i].index = 0;
        w[i].timeout = TU_LONG;
        t[i] = tu_thread_start(wait_one_or_all, &w[i]);
    }
    assert_int_equal(tu_latch_wait(&r.ready, WAITERS, TU_LONG), 0);
    cpu0 = tu_cpu_seconds();
    tu_sleep(0.3);
    cpu = tu_cpu_seconds() - cpu0;
    tu_gate_open(&gate);
    for (i = 0; i < WAITERS; i++) {
        tu_thread_join(t[i]);
        assert_int_equal(w[i].rc, 0);
        assert_int_equal(w[i].value, 0x8);
    }
    print_message("CPU used by %d waiters over 300 ms: %.1f ms\n", WAITERS, cpu * 1e3);
    assert_true(cpu < 0.030);
    cf_future_release(r.f[0]);
    cf_executor_free(ex);
    tu_latch_destroy(&r.ready);
    tu_latch_destroy(&started);
    tu_gate_destroy(&gate);
}

/* ---- bytes futures ------------------------------------------------------------------ */

CF_FUNCTION(xor_fn, tu_bytes_xor);

/* SEMANTICS 3: cf_future_bytes gives a bytes task's result, owned by the future, the same
 * data pointer cf_future_result gives; repeated reads give the same bytes. */
static void future_bytes_result(void **state)
{
    unsigned char in[100], expect[100];
    const void *data = NULL, *data2 = NULL;
    void *v = NULL;
    size_t len = 0, i;
    cf_executor *ex;
    cf_future *f = NULL;
    (void)state;
    tu_fill_pattern(in, sizeof in, 9);
    for (i = 0; i < sizeof in; i++)
        expect[i] = in[i] ^ 0x5a;
    ex = make_executor(1, NULL);
    assert_int_equal(cf_submit_bytes(ex, &xor_fn, in, sizeof in, &f), 0);
    assert_int_equal(cf_future_bytes(f, TU_LONG, &data, &len), 0);
    assert_int_equal(len, sizeof in);
    assert_memory_equal(data, expect, sizeof in);
    assert_int_equal(cf_future_result(f, CF_POLL, &v), 0);
    assert_ptr_equal(v, data);
    assert_int_equal(cf_future_bytes(f, CF_POLL, &data2, NULL), 0);
    assert_ptr_equal(data2, data);
    cf_future_release(f);
    cf_executor_free(ex);
}

/* ---- the thread pool: pointer tasks, the callbacks' thread -------------------------- */

/* SEMANTICS 3, 4 for pointer tasks: result() gives the task's pointer; cf_future_bytes
 * gives it too, with length 0; a failing pointer task reports its code. */
static void pointer_task_result(void **state)
{
    static const int code = 13;
    cf_executor *ex;
    cf_future *ok, *bad;
    void *v = NULL;
    const void *data = NULL;
    size_t len = 99;
    int c = 0;
    (void)state;
    ex = make_thread_executor(1, NULL);
    ok = tu_submit(ex, tu_task_identity, (void *)0x77);
    bad = tu_submit(ex, tu_task_fail, (void *)&code);
    assert_int_equal(cf_future_result(ok, TU_LONG, &v), 0);
    assert_ptr_equal(v, (void *)0x77);
    assert_int_equal(cf_future_bytes(ok, CF_POLL, &data, &len), 0);
    assert_ptr_equal(data, (void *)0x77);
    assert_int_equal(len, 0);
    assert_int_equal(cf_future_result(bad, TU_LONG, &v), CF_ETASK);
    assert_int_equal(cf_future_error(bad, &c, NULL), CF_ETASK);
    assert_int_equal(c, 13);
    cf_future_release(ok);
    cf_future_release(bad);
    cf_executor_free(ex);
}

#if defined(__SANITIZE_ADDRESS__)
#define FUTURES_IN_SLABS 0 /* malloc'd one by one, for LeakSanitizer (future.c) */
#else
#define FUTURES_IN_SLABS 1
#endif

static bool address_mapped(uintptr_t a)
{
    unsigned char in_core;
    uintptr_t page = a & ~(uintptr_t)(sysconf(_SC_PAGESIZE) - 1);
    return mincore((void *)page, 1, &in_core) == 0; /* ENOMEM: not mapped */
}

/*
 * Recycled futures' memory goes back to the system once no executor is left and all the
 * futures carved with them are released; a future still held keeps its own memory, stays
 * valid, and its memory goes at the next such moment after its release.  (Under
 * AddressSanitizer futures are malloc'd one by one and LeakSanitizer checks the same.)
 */
static void future_memory_returned_when_no_executor_left(void **state)
{
    enum { N = 20000 };
    uintptr_t *addr = calloc(N, sizeof *addr);
    cf_future **f = calloc(N, sizeof *f);
    assert_non_null(addr);
    assert_non_null(f);
    (void)state;
    cf_executor *ex = make_thread_executor(2, NULL);
    for (size_t i = 0; i < N; i++)
        f[i] = tu_submit(ex, tu_task_identity, (void *)(i + 1));
    for (size_t i = 0; i < N; i++) {
        void *v = NULL;
        assert_int_equal(cf_future_result(f[i], TU_LONG, &v), 0);
        assert_ptr_equal(v, (void *)(i + 1));
        addr[i] = (uintptr_t)f[i];
    }
    cf_future *held = f[N / 2];
    for (size_t i = 0; i < N; i++)
        if (f[i] != held)
            cf_future_release(f[i]);
    cf_executor_free(ex);

    void *v = NULL;
    assert_int_equal(cf_future_result(held, CF_POLL, &v), 0);
    assert_ptr_equal(v, (void *)(N / 2 + 1));
    size_t still = 0;
    for (size_t i = 0; i < N; i++)
        still += address_mapped(addr[i]);
    if (FUTURES_IN_SLABS) {
        assert_true(address_mapped(addr[N / 2]));
        assert_true(still < N / 2); /* most went back; the held one's neighbours stayed */
    }

    cf_future_release(held);
    cf_executor_free(make_thread_executor(1, NULL)); /* no executor left once more */
    still = 0;
    for (size_t i = 0; i < N; i++)
        still += address_mapped(addr[i]);
    if (FUTURES_IN_SLABS)
        assert_int_equal(still, 0);
    free(addr);
    free(f);
}

/* SEMANTICS 6 (the header's rule for the thread pool): a task's callbacks run in the worker
 * thread that ran the task. */
static void callbacks_run_in_task_thread(void **state)
{
    tu_gate gate;
    tu_latch started;
    tu_gated a;
    order_log lg;
    order_cb cbs[2];
    cf_executor *ex;
    cf_future *f;
    int i;
    (void)state;
    tu_gate_init(&gate);
    tu_latch_init(&started);
    tu_gated_init(&a, &gate, &started, (void *)0x4);
    ex = make_thread_executor(1, NULL);
    f = tu_submit(ex, tu_task_gated, &a);
    order_log_init(&lg, f);
    for (i = 0; i < 2; i++) {
        cbs[i].log = &lg;
        cbs[i].index = i;
        assert_int_equal(cf_future_add_callback(f, order_fn, &cbs[i]), 0);
    }
    tu_gate_open(&gate);
    assert_int_equal(tu_latch_wait(&lg.calls, 2, TU_LONG), 0);
    assert_int_equal(cf_future_result(f, TU_LONG, NULL), 0);
    cf_executor_free(ex);
    for (i = 0; i < 2; i++)
        assert_true(pthread_equal(lg.thread[i], a.thread));
    cf_future_release(f);
    order_log_destroy(&lg);
    tu_latch_destroy(&started);
    tu_gate_destroy(&gate);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(future_states_and_transitions),
    cmocka_unit_test(future_failed_is_finished),
    cmocka_unit_test(future_retain_release),
    cmocka_unit_test(future_pool_holds_reference),
    cmocka_unit_test(future_outlives_executor),
    cmocka_unit_test(cancel_pending),
    cmocka_unit_test(cancel_running_refused),
    cmocka_unit_test(cancel_finished_refused),
    cmocka_unit_test(cancelled_tasks_never_run),
    cmocka_unit_test(result_poll_leaves_future_unchanged),
    cmocka_unit_test(result_positive_timeout),
    cmocka_unit_test(result_negative_waits_forever),
    cmocka_unit_test(task_error_code_and_message),
    cmocka_unit_test(empty_result_is_null_everywhere),
    cmocka_unit_test(task_error_variants),
    cmocka_unit_test(task_own_timeout_is_not_result_timeout),
    cmocka_unit_test(complete_exactly_once_under_cancel_race),
    cmocka_unit_test(callbacks_order_once_not_in_caller),
    cmocka_unit_test(callback_on_done_future_runs_at_once_in_caller),
    cmocka_unit_test(callback_added_while_running_goes_last),
    cmocka_unit_test(future_carries_callers_data),
    cmocka_unit_test(callbacks_run_on_cancel_in_canceller_thread),
    cmocka_unit_test(callback_may_submit_cancel_retain),
    cmocka_unit_test(racing_completions_lose_no_wakeup),
    cmocka_unit_test(waiting_burns_no_cpu),
    cmocka_unit_test(future_bytes_result),
    cf_inprocess_test(pointer_task_result),
    cf_inprocess_test(callbacks_run_in_task_thread),
    cf_inprocess_test(future_memory_returned_when_no_executor_left),
};

CF_TEST_MAIN(tests)
