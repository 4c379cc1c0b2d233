/*
 * test_events.c -- per-task events (record_events, cf_executor_events) and their Chrome
 * trace-event JSON (cf_events_write_trace), on every backend.
 *
 * The events are checked against what the test knows independently: how many tasks it
 * submitted and in which order, which failed and how, which one was cancelled before it
 * could start, and the order of time stamps (submitted <= started <= finished).  The trace
 * file is parsed back with python3's json module, so a malformed file fails the test.
 */
#include "testutil.h"

#include <stdio.h>
#include <sys/stat.h>

static cf_executor *recording_executor(int workers)
{
    cf_executor_opts o;
    cf_executor_opts_init(&o);
    o.record_events = 1;
    return make_executor(workers, &o);
}

static const cf_event *find_task(const cf_event *ev, size_t n, uint64_t task)
{
    for (size_t i = 0; i < n; i++)
        if (ev[i].task == task)
            return &ev[i];
    return NULL;
}

/* Every finished task has one event, numbered in submission order, with ordered times, a
 * worker in range, its function's name and its outcome. */
static void events_record_each_task(void **state)
{
    (void)state;
    cf_executor *ex = recording_executor(2);
    enum { N = 12 };
    cf_future *f[N];
    for (int i = 0; i < N; i++) {
        tu_xtask t = {.code = i % 4 == 3 ? 55 : 0, .value = i};
        f[i] = tu_xsubmit(ex, &t);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(cf_future_wait(f[i], TU_LONG), 0);
    cf_event *ev;
    size_t n;
    assert_int_equal(cf_executor_events(ex, &ev, &n), 0);
    assert_int_equal(n, N);
    for (int i = 0; i < N; i++) {
        const cf_event *e = find_task(ev, n, (uint64_t)i + 1);
        assert_non_null(e);
        assert_string_equal(e->name, "tu_xtask_fn");
        assert_true(e->submitted >= 0);
        assert_true(e->started >= e->submitted);
        assert_true(e->finished >= e->started);
        assert_true(e->worker >= 0 && e->worker < 2);
        assert_int_equal(e->outcome, i % 4 == 3 ? CF_ETASK : 0);
        if (strcmp(cf_executor_backend(ex), "processes") == 0)
            assert_int_equal(e->pid, cf_future_pid(f[i]));
        else
            assert_int_equal(e->pid, 0);
    }
    free(ev);
    for (int i = 0; i < N; i++)
        cf_future_release(f[i]);
    cf_executor_free(ex);
}

/* A task cancelled before it started is recorded as cancelled and never started. */
static void events_cancelled_task_never_started(void **state)
{
    (void)state;
    cf_executor *ex = recording_executor(1);
    tu_hold h;
    tu_hold_workers(&h, ex);
    tu_xtask t = {.value = 7};
    cf_future *victim = tu_xsubmit(ex, &t);
    assert_int_equal(cf_future_cancel(victim), 0);
    tu_hold_release(&h);
    assert_int_equal(cf_future_wait(victim, TU_LONG), 0);
    cf_event *ev;
    size_t n;
    assert_int_equal(cf_executor_events(ex, &ev, &n), 0);
    const cf_event *e = NULL;
    for (size_t i = 0; i < n; i++)
        if (ev[i].outcome == CF_ECANCELLED && ev[i].started < 0)
            e = &ev[i];
    assert_non_null(e);
    assert_int_equal(e->worker, -1);
    free(ev);
    cf_future_release(victim);
    cf_executor_free(ex);
}

/* Without record_events the calls say so; with it, a trace file is valid JSON holding one
 * complete event per task that started. */
static void events_trace_is_valid_json(void **state)
{
    (void)state;
    cf_executor *plain = make_executor(1, NULL);
    cf_event *ev = (cf_event *)1;
    size_t n = 99;
    assert_int_equal(cf_executor_events(plain, &ev, &n), CF_EINVAL);
    cf_executor_free(plain);

    cf_executor *ex = recording_executor(2);
    enum { N = 5 };
    cf_future *f[N];
    for (int i = 0; i < N; i++) {
        tu_xtask t = {.value = i};
        f[i] = tu_xsubmit(ex, &t);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(tu_xresult(f[i], TU_LONG), i);
        cf_future_release(f[i]);
    }
    assert_int_equal(cf_executor_events(ex, &ev, &n), 0);
    char path[64];
    snprintf(path, sizeof path, "/tmp/cf-trace-%ld.json", (long)getpid());
    assert_int_equal(cf_events_write_trace(ev, n, path), 0);
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import json,sys; d=json.load(open(sys.argv[1]));"
             " x=[e for e in d[\"traceEvents\"] if e[\"ph\"]==\"X\"];"
             " sys.exit(0 if len(x)==%d and all(e[\"dur\"]>=0 for e in x) else 3)' %s",
             N, path);
    int status = system(cmd);
    unlink(path);
    assert_int_equal(status, 0);
    assert_int_equal(cf_events_write_trace(ev, n, "/nonexistent-dir/x.json"), CF_ESYS);
    assert_int_equal(cf_events_write_trace(NULL, 1, path), CF_EINVAL);
    free(ev);
    cf_executor_free(ex);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(events_record_each_task),
    cmocka_unit_test(events_cancelled_task_never_started),
    cmocka_unit_test(events_trace_is_valid_json),
};

CF_TEST_MAIN(tests)
