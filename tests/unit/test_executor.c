/*
 * test_executor.c -- executors: submit and its refusals, shutdown, worker count and lazy
 * start, initializers, the bounded queue, task context and bytes tasks on every backend
 * (SEMANTICS 12, 14-17, with 6 and 4 where callbacks and errors meet the executor); thread
 * names, nested submission and waiting, idle workers and the injector's overflow on the
 * thread pool (SEMANTICS 18-20).
 *
 * Backend-neutral tests get their executor from make_executor() (CF_TEST_BACKEND) and use
 * x-tasks, whose gates and latches worker processes share with the test.  Queued and
 * running states are made with them (tu_hold_workers holds every worker and leaves one of
 * its own tasks queued), never with sleeps; the few sleeps give a thread that must stay
 * blocked the chance to show it did not.  Thread-pool tests (cf_inprocess_test) use
 * pointer tasks on make_thread_executor().
 */
#include "testutil.h"

#include <limits.h>
#include <signal.h>
#include <sys/wait.h>

CF_FUNCTION(xor_fn, tu_bytes_xor);
CF_FUNCTION(reverse_fn, tu_bytes_reverse);
CF_FUNCTION(maybe_fail_fn, tu_bytes_maybe_fail);

/* ---- SEMANTICS 12: submit ----------------------------------------------------------- */

/* SEMANTICS 12: after shutdown (waiting or not), every form of submission fails with
 * CF_ESHUTDOWN, creates no future and calls nothing. */
static void submit_after_shutdown_refused(void **state)
{
    tu_latch ran;
    tu_xtask t;
    tu_xmsg msg;
    cf_bytes in;
    cf_executor *ex;
    cf_future *f = NULL;
    cf_map *m = NULL;
    (void)state;
    tu_latch_init(&ran);
    t = (tu_xtask){.finished = &ran};
    in = tu_xtask_input(&t, &msg);
    ex = make_executor(2, NULL);
    assert_int_equal(cf_shutdown(ex, 0), 0);
    assert_int_equal(cf_submit_bytes(ex, &tu_xtask_fn, in.data, in.len, &f), CF_ESHUTDOWN);
    assert_null(f);
    assert_int_equal(cf_submit_bytes(ex, &tu_xtask_fn, in.data, in.len, NULL), CF_ESHUTDOWN);
    assert_int_equal(cf_map_bytes_start(&m, ex, &tu_xtask_fn, &in, 1, NULL), CF_ESHUTDOWN);
    assert_null(m);
    assert_int_equal(cf_shutdown(ex, CF_SHUTDOWN_WAIT), 0);
    assert_int_equal(cf_submit_bytes(ex, &tu_xtask_fn, in.data, in.len, &f), CF_ESHUTDOWN);
    assert_null(f);
    cf_executor_free(ex);
    assert_int_equal(tu_latch_count(&ran), 0);
    tu_latch_destroy(&ran);
}

/* SEMANTICS 12: a missing task function or input is CF_EINVAL and creates nothing. */
static void submit_null_fn_einval(void **state)
{
    cf_function no_fn = {"no_fn", NULL};
    cf_executor *ex;
    cf_future *f = NULL;
    unsigned char byte = 1;
    (void)state;
    ex = make_executor(1, NULL);
    assert_int_equal(cf_submit(ex, NULL, NULL, &f), CF_EINVAL);
    assert_null(f);
    assert_int_equal(cf_submit_bytes(ex, NULL, &byte, 1, &f), CF_EINVAL);
    assert_null(f);
    assert_int_equal(cf_submit_bytes(ex, &no_fn, &byte, 1, &f), CF_EINVAL);
    assert_null(f);
    assert_int_equal(cf_submit_bytes(ex, &xor_fn, NULL, 1, &f), CF_EINVAL);
    assert_null(f);
    cf_executor_free(ex);
}

/* ---- SEMANTICS 14: shutdown --------------------------------------------------------- */

enum { SD_N = 20 };

typedef struct shutdown_waiter {
    cf_executor *ex;
    cf_future **f;
    int n;
    atomic_int returned;
    int rc;
    int done_when_returned;
} shutdown_waiter;

static void *shutdown_wait_thread(void *arg)
{
    shutdown_waiter *s = arg;
    int i;
    s->rc = cf_shutdown(s->ex, CF_SHUTDOWN_WAIT);
    s->done_when_returned = 0;
    for (i = 0; i < s->n; i++)
        s->done_when_returned += cf_future_done(s->f[i]);
    atomic_store(&s->returned, 1);
    return NULL;
}

/* SEMANTICS 14: shutdown(wait) returns only after every accepted task (running or queued)
 * is done; submissions are refused from the first shutdown call on. */
static void shutdown_wait_waits_for_accepted(void **state)
{
    tu_gate gate;
    tu_latch started, finished;
    cf_future *f[SD_N];
    shutdown_waiter sw;
    tu_xtask late = {.value = -1};
    cf_executor *ex;
    pthread_t t;
    int i;
    (void)state;
    tu_watchdog(120);
    tu_gate_init(&gate);
    tu_latch_init(&started);
    tu_latch_init(&finished);
    ex = make_executor(2, NULL);
    for (i = 0; i < SD_N; i++) {
        tu_xtask task = {.gate = &gate, .started = &started, .finished = &finished, .value = i};
        f[i] = tu_xsubmit(ex, &task);
    }
    assert_int_equal(tu_latch_wait(&started, 1, TU_LONG), 0);
    assert_int_equal(cf_shutdown(ex, 0), 0); /* stop accepting; returns at once */
    assert_int_equal(tu_xtask_submit(ex, &late, NULL), CF_ESHUTDOWN);
    sw.ex = ex;
    sw.f = f;
    sw.n = SD_N;
    atomic_init(&sw.returned, 0);
    t = tu_thread_start(shutdown_wait_thread, &sw);
    tu_sleep(0.1);
    assert_int_equal(atomic_load(&sw.returned), 0); /* the gate is still closed */
    tu_gate_open(&gate);
    tu_thread_join(t);
    assert_int_equal(sw.rc, 0);
    assert_int_equal(sw.done_when_returned, SD_N);
    assert_int_equal(tu_latch_count(&finished), SD_N);
    for (i = 0; i < SD_N; i++) {
        assert_int_equal(tu_xresult(f[i], CF_POLL), i);
        cf_future_release(f[i]);
    }
    cf_executor_free(ex);
    tu_latch_destroy(&finished);
    tu_latch_destroy(&started);
    tu_gate_destroy(&gate);
}

typedef struct cancel_note {
    atomic_int calls;
    pthread_t thread;
} cancel_note;

static void note_cb(cf_future *f, void *data)
{
    cancel_note *n = data;
    TU_CHECK(cf_future_state(f) == CF_CANCELLED);
    n->thread = pthread_self();
    atomic_fetch_add(&n->calls, 1);
}

/* SEMANTICS 14 (cfutures.h, CF_SHUTDOWN_KILL): a thread cannot be killed, so on a thread
 * pool KILL cancels what is queued, like CANCEL_PENDING, and lets the running task end. */
static void shutdown_kill_on_threads_cancels_pending(void **state)
{
    (void)state;
    cf_executor *ex = make_thread_executor(1, NULL);
    tu_hold h;
    tu_hold_workers(&h, ex);
    cf_future *queued = tu_hold_queued(&h);
    assert_int_equal(cf_shutdown(ex, CF_SHUTDOWN_KILL), 0);
    assert_int_equal(cf_future_result(queued, TU_LONG, NULL), CF_ECANCELLED);
    assert_int_equal(cf_future_state(tu_hold_running(&h)), CF_RUNNING);
    tu_hold_release(&h); /* the running task still returns its value */
    cf_executor_free(ex);
}

/* SEMANTICS 14, 6: shutdown with cancel_pending cancels every queued task at once (their
 * callbacks run in the shutting-down thread before it returns) and leaves the running ones
 * to finish; a cancelled task never runs. */
static void shutdown_cancel_pending_cancels_queued(void **state)
{
    enum { Q = 10 };
    tu_hold hold;
    tu_latch ran;
    tu_xtask task;
    cancel_note note[Q];
    cf_future *f[Q];
    cf_executor *ex;
    int i;
    (void)state;
    tu_latch_init(&ran);
    task = (tu_xtask){.finished = &ran};
    ex = make_executor(2, NULL);
    tu_hold_workers(&hold, ex);
    for (i = 0; i < Q; i++) {
        atomic_init(&note[i].calls, 0);
        f[i] = tu_xsubmit(ex, &task);
        assert_int_equal(cf_future_add_callback(f[i], note_cb, &note[i]), 0);
    }
    assert_int_equal(cf_shutdown(ex, CF_SHUTDOWN_CANCEL_PENDING), 0);
    for (i = 0; i < Q; i++) {
        assert_int_equal(cf_future_state(f[i]), CF_CANCELLED);
        assert_int_equal(atomic_load(&note[i].calls), 1);
        assert_true(pthread_equal(note[i].thread, pthread_self()));
    }
    assert_int_equal(cf_future_state(tu_hold_queued(&hold)), CF_CANCELLED);
    assert_int_equal(cf_future_state(tu_hold_running(&hold)), CF_RUNNING);
    assert_int_equal(tu_xtask_submit(ex, &task, NULL), CF_ESHUTDOWN);
    tu_hold_release(&hold); /* the running tasks still finish with their values */
    assert_int_equal(cf_shutdown(ex, CF_SHUTDOWN_WAIT), 0);
    assert_int_equal(tu_latch_count(&ran), 0);
    for (i = 0; i < Q; i++) {
        assert_int_equal(cf_future_result(f[i], CF_POLL, NULL), CF_ECANCELLED);
        assert_int_equal(atomic_load(&note[i].calls), 1);
        cf_future_release(f[i]);
    }
    cf_executor_free(ex);
    tu_latch_destroy(&ran);
    tu_assert_no_check_failures();
}

/* SEMANTICS 14: shutdown may be called any number of times, with any flags, also from two
 * threads waiting at once; each returns 0, the waiting ones after every task is done. */
static void shutdown_more_than_once(void **state)
{
    tu_gate gate;
    tu_latch started, finished;
    cf_future *f[4];
    shutdown_waiter sw[2];
    pthread_t t[2];
    cf_executor *ex;
    int i;
    (void)state;
    tu_watchdog(120);
    tu_gate_init(&gate);
    tu_latch_init(&started);
    tu_latch_init(&finished);
    ex = make_executor(1, NULL);
    for (i = 0; i < 4; i++) {
        tu_xtask task = {.gate = &gate, .started = &started, .finished = &finished, .value = i};
        f[i] = tu_xsubmit(ex, &task);
    }
    assert_int_equal(tu_latch_wait(&started, 1, TU_LONG), 0);
    assert_int_equal(cf_shutdown(ex, 0), 0);
    assert_int_equal(cf_shutdown(ex, 0), 0);
    for (i = 0; i < 2; i++) {
        sw[i].ex = ex;
        sw[i].f = f;
        sw[i].n = 4;
        atomic_init(&sw[i].returned, 0);
        t[i] = tu_thread_start(shutdown_wait_thread, &sw[i]);
    }
    tu_gate_open(&gate);
    for (i = 0; i < 2; i++) {
        tu_thread_join(t[i]);
        assert_int_equal(sw[i].rc, 0);
        assert_int_equal(sw[i].done_when_returned, 4);
    }
    assert_int_equal(cf_shutdown(ex, CF_SHUTDOWN_WAIT | CF_SHUTDOWN_CANCEL_PENDING), 0);
    assert_int_equal(cf_shutdown(ex, CF_SHUTDOWN_CANCEL_PENDING), 0);
    assert_int_equal(cf_shutdown(ex, CF_SHUTDOWN_WAIT), 0);
    assert_int_equal(tu_latch_count(&finished), 4);
    for (i = 0; i < 4; i++) {
        assert_int_equal(cf_future_state(f[i]), CF_FINISHED);
        assert_int_equal(tu_xresult(f[i], CF_POLL), i);
        cf_future_release(f[i]);
    }
    cf_executor_free(ex);
    tu_latch_destroy(&finished);
    tu_latch_destroy(&started);
    tu_gate_destroy(&gate);
}

/* SEMANTICS 14: freeing the executor is shutdown(wait): it returns after every accepted
 * task ran; the caller's futures stay valid afterwards.  cf_executor_free(NULL) is fine. */
static void free_implies_shutdown_wait(void **state)
{
    enum { N = 6 };
    tu_gate gate;
    tu_latch started, finished;
    cf_future *f[N];
    tu_opener op;
    cf_executor *ex;
    double t0;
    int i;
    (void)state;
    tu_watchdog(120);
    tu_gate_init(&gate);
    tu_latch_init(&started);
    tu_latch_init(&finished);
    ex = make_executor(2, NULL);
    for (i = 0; i < N; i++) {
        tu_xtask task = {.gate = &gate, .started = &started, .finished = &finished,
                         .value = i + 50};
        f[i] = tu_xsubmit(ex, &task);
    }
    assert_int_equal(tu_latch_wait(&started, 1, TU_LONG), 0);
    t0 = tu_now();
    tu_open_later(&op, &gate, 0.2);
    cf_executor_free(ex);
    assert_true(tu_now() - t0 >= 0.2 - 1e-3);
    tu_opener_join(&op);
    assert_int_equal(tu_latch_count(&finished), N);
    for (i = 0; i < N; i++) {
        assert_int_equal(tu_xresult(f[i], CF_POLL), i + 50);
        cf_future_release(f[i]);
    }
    cf_executor_free(NULL);
    tu_latch_destroy(&finished);
    tu_latch_destroy(&started);
    tu_gate_destroy(&gate);
}

/* SEMANTICS 14: no thread, worker process or descriptor is left once an executor is freed,
 * whether it never ran a task, ran some on all its workers, or was shut down with
 * cancel_pending first; repeated to catch slow leaks.  (A process pool's workers are child
 * processes, and it has one thread of its own.) */
static void no_threads_or_fds_left(void **state)
{
    tu_baseline base;
    int fds0, round;
    (void)state;
    base = tu_worker_baseline();
    fds0 = tu_count_fds();
    for (round = 0; round < 20; round++) {
        cf_executor *ex = make_executor(4, NULL);
        if (round % 3 != 0) {
            tu_start_workers(ex);
            assert_true(tu_count_workers(&base) >= 4);
        }
        if (round % 3 == 2) {
            unsigned char byte = 0;
            int i;
            for (i = 0; i < 100; i++)
                assert_int_equal(cf_submit_bytes(ex, &tu_echo_fn, &byte, 1, NULL), 0);
            assert_int_equal(cf_shutdown(ex, CF_SHUTDOWN_CANCEL_PENDING), 0);
        }
        cf_executor_free(ex);
        assert_int_equal(tu_wait_thread_count(base.threads, 5.0), base.threads);
        assert_int_equal(tu_count_children(), base.children);
        assert_int_equal(tu_count_fds(), fds0);
    }
}

/* ---- SEMANTICS 15: worker count, lazy start ----------------------------------------- */

/* SEMANTICS 15: the default is the number of CPUs this process may use (affinity mask,
 * capped by a cgroup quota), with NULL options or CF_WORKERS_AUTO; opts_init's defaults. */
static void default_workers_is_usable_cpus(void **state)
{
    cf_executor_opts o;
    cf_executor *ex = NULL;
    int expected = tu_expected_cpus();
    (void)state;
    cf_executor_opts_init(&o);
    assert_int_equal(o.workers, CF_WORKERS_AUTO);
    assert_null(o.name);
    assert_true(o.initializer == NULL);
    assert_null(o.named_initializer);
    assert_null(o.initializer_arg);
    assert_int_equal(o.max_queued, 0);
    assert_int_equal(o.full_mode, CF_FULL_BLOCK);
    assert_int_equal(cf_executor_new(&ex, tu_backend(), NULL), 0);
    assert_int_equal(cf_executor_workers(ex), expected);
    cf_executor_free(ex);
    ex = make_executor(CF_WORKERS_AUTO, &o);
    assert_int_equal(cf_executor_workers(ex), expected);
    cf_executor_free(ex);
    print_message("CPUs usable: %d (affinity %d, cgroup quota %d)\n", expected,
                  tu_affinity_cpus(), tu_cgroup_cpus());
}

/* SEMANTICS 15: the default follows the affinity mask: restricted to one CPU, one worker. */
static void default_workers_follow_affinity(void **state)
{
    cpu_set_t old, one;
    cf_executor *ex;
    int cpu;
    (void)state;
    CPU_ZERO(&old);
    assert_int_equal(sched_getaffinity(0, sizeof old, &old), 0);
    for (cpu = 0; cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &old); cpu++)
        ;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
    ex = make_executor(CF_WORKERS_AUTO, NULL);
    assert_int_equal(sched_setaffinity(0, sizeof old, &old), 0);
    assert_int_equal(cf_executor_workers(ex), 1);
    cf_executor_free(ex);
}

/* SEMANTICS 15: 0 or negative workers, an unknown backend or a too-long name are
 * CF_EINVAL and create nothing; explicit counts are kept; an 11-char name is fine. */
static void invalid_executor_options(void **state)
{
    static const int bad[] = {0, -1, -2, -100, INT_MIN + 1};
    cf_executor_opts o;
    cf_executor *ex = NULL;
    size_t i;
    (void)state;
    cf_executor_opts_init(&o);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.workers = bad[i];
        assert_int_equal(cf_executor_new(&ex, tu_backend(), &o), CF_EINVAL);
        assert_null(ex);
    }
    cf_executor_opts_init(&o);
    assert_int_equal(cf_executor_new(&ex, (cf_backend)9999, &o), CF_EINVAL);
    assert_null(ex);
    o.name = "abcdefghijkl"; /* 12 */
    assert_int_equal(cf_executor_new(&ex, tu_backend(), &o), CF_EINVAL);
    assert_null(ex);
    o.name = "abcdefghijk"; /* 11 */
    ex = make_executor(1, &o);
    assert_int_equal(cf_executor_workers(ex), 1);
    cf_executor_free(ex);
    ex = make_executor(3, NULL);
    assert_int_equal(cf_executor_workers(ex), 3);
    cf_executor_free(ex);
}

/* SEMANTICS 15: no worker exists before the first task; one task starts one worker; tasks
 * submitted one after another (each after the previous finished and its worker went idle)
 * reuse that worker.  "Went idle" is observed, not assumed from a sleep: a worker between
 * completing a future and looking for the next task is neither spinning nor parked, and a
 * task submitted then may start a second worker (as in Python's ThreadPoolExecutor). */
static void workers_start_lazily_and_are_reused(void **state)
{
    tu_latch ran;
    tu_xtask task;
    cf_executor *ex;
    tu_baseline base;
    int i;
    (void)state;
    tu_latch_init(&ran);
    task = (tu_xtask){.finished = &ran};
    base = tu_worker_baseline();
    ex = make_executor(4, NULL);
    assert_int_equal(tu_count_workers(&base), 0);
    for (i = 0; i < 20; i++) {
        cf_future *f = tu_xsubmit(ex, &task);
        assert_int_equal(cf_future_result(f, TU_LONG, NULL), 0);
        cf_future_release(f);
        assert_int_equal(tu_count_workers(&base), 1);
        assert_true(tu_wait_others_asleep(TU_LONG)); /* the worker has parked */
    }
    cf_executor_free(ex);
    assert_int_equal(tu_latch_count(&ran), 20);
    tu_latch_destroy(&ran);
}

/* SEMANTICS 15: a first task starts exactly one worker, even when that worker takes the
 * task before the submitter has finished submitting (the race is likeliest right after
 * the thread starts, so it is run on many fresh executors). */
static void first_task_starts_one_worker(void **state)
{
    tu_latch ran;
    tu_xtask task;
    int i;
    (void)state;
    tu_latch_init(&ran);
    task = (tu_xtask){.finished = &ran};
    for (i = 0; i < 40; i++) {
        tu_baseline base = tu_worker_baseline();
        cf_executor *ex = make_executor(4, NULL);
        cf_future *f = tu_xsubmit(ex, &task);
        assert_int_equal(cf_future_result(f, TU_LONG, NULL), 0);
        cf_future_release(f);
        assert_true(tu_wait_others_asleep(TU_LONG)); /* any worker started has parked */
        assert_int_equal(tu_count_workers(&base), 1);
        cf_executor_free(ex);
    }
    assert_int_equal(tu_latch_count(&ran), 40);
    tu_latch_destroy(&ran);
}

/* SEMANTICS 15: a burst of 300 tasks never raises the worker count above the maximum. */
static void workers_never_exceed_max(void **state)
{
    enum { N = 300, MAX = 3 };
    tu_gate gate;
    tu_latch started;
    cf_future *f[N];
    cf_executor *ex;
    tu_baseline base;
    int i, peak = 0;
    (void)state;
    tu_gate_init(&gate);
    tu_latch_init(&started);
    base = tu_worker_baseline();
    ex = make_executor(MAX, NULL);
    for (i = 0; i < N; i++) {
        tu_xtask task = {.gate = &gate, .started = &started, .value = i};
        f[i] = tu_xsubmit(ex, &task);
    }
    assert_int_equal(tu_latch_wait(&started, MAX, TU_LONG), 0);
    assert_int_equal(tu_count_workers(&base), MAX);
    assert_int_equal(tu_latch_count(&started), MAX);
    tu_gate_open(&gate);
    for (i = 0; i < N; i++) {
        int n = tu_count_workers(&base);
        if (n > peak)
            peak = n;
        assert_int_equal(tu_xresult(f[i], TU_LONG), i);
        cf_future_release(f[i]);
    }
    assert_true(peak <= MAX);
    cf_executor_free(ex);
    tu_latch_destroy(&started);
    tu_gate_destroy(&gate);
}

/* ---- SEMANTICS 16: initializer ------------------------------------------------------ */

/* The initializer's argument (tu_set_initializer passes these bytes on every backend). */
typedef struct init_msg {
    tu_xhead head;
    uint32_t calls; /* word: initializer calls so far */
    uint32_t mask;  /* word: bit w set by worker w's initializer */
    int32_t fail_on_call; /* 1-based call that fails, and every later one; 0: none */
} init_msg;

static int init_record(void *arg, cf_ctx *ctx)
{
    const init_msg *m = arg;
    _Atomic uint32_t *calls = tu_xword(&m->head, m->calls);
    _Atomic uint32_t *mask = tu_xword(&m->head, m->mask);
    int w = cf_ctx_worker(ctx);
    uint32_t call;
    if (calls == NULL || mask == NULL)
        return cf_fail(ctx, TU_EXMSG, "cannot reach %s", m->head.region);
    call = atomic_fetch_add(calls, 1) + 1;
    if (w < 0 || w >= 31)
        return cf_fail(ctx, 78, "worker index %d", w);
    atomic_fetch_or(mask, 1u << w);
    if (m->fail_on_call != 0 && call >= (uint32_t)m->fail_on_call)
        return cf_fail(ctx, 77, "cannot init: %s", "no device");
    return 0;
}

CF_INITIALIZER(record_init, init_record);

static void init_msg_init(init_msg *m, tu_latch *calls, tu_latch *mask, int fail_on_call)
{
    memset(m, 0, sizeof *m);
    tu_xhead_init(&m->head);
    m->calls = calls->w;
    m->mask = mask->w;
    m->fail_on_call = fail_on_call;
}

/* A task that checks its worker's initializer ran (its bit is in the mask), and counts. */
typedef struct after_init_msg {
    tu_xhead head;
    uint32_t mask, ran;
} after_init_msg;

static int bytes_after_init(const void *in, size_t len, cf_ctx *ctx)
{
    after_init_msg m;
    _Atomic uint32_t *mask;
    int w = cf_ctx_worker(ctx);
    if (len != sizeof m)
        return cf_fail(ctx, TU_EXMSG, "input of %zu bytes", len);
    memcpy(&m, in, sizeof m);
    mask = tu_xword(&m.head, m.mask);
    if (mask == NULL || tu_xarrive(&m.head, m.ran) != 0)
        return cf_fail(ctx, TU_EXMSG, "cannot reach %s", m.head.region);
    if (w < 0 || w >= 31 || !(atomic_load(mask) & (1u << w)))
        return cf_fail(ctx, 79, "worker %d ran a task before its initializer", w);
    return 0;
}

CF_FUNCTION(after_init_fn, bytes_after_init);

/* SEMANTICS 16: the initializer runs exactly once in each worker, before that worker's
 * first task, with the worker's own context. */
static void initializer_runs_once_per_worker(void **state)
{
    enum { N = 100 };
    tu_latch calls, mask, ran;
    init_msg im;
    after_init_msg am;
    cf_future *f[N];
    cf_executor_opts o;
    cf_executor *ex;
    int i;
    (void)state;
    tu_latch_init(&calls);
    tu_latch_init(&mask);
    tu_latch_init(&ran);
    init_msg_init(&im, &calls, &mask, 0);
    memset(&am, 0, sizeof am);
    tu_xhead_init(&am.head);
    am.mask = mask.w;
    am.ran = ran.w;
    cf_executor_opts_init(&o);
    tu_set_initializer(&o, &record_init, &im, sizeof im);
    ex = make_executor(3, &o);
    assert_int_equal(tu_latch_count(&calls), 0); /* lazy: no worker yet */
    tu_start_workers(ex);
    for (i = 0; i < N; i++)
        assert_int_equal(cf_submit_bytes(ex, &after_init_fn, &am, sizeof am, &f[i]), 0);
    for (i = 0; i < N; i++) {
        assert_int_equal(cf_future_result(f[i], TU_LONG, NULL), 0);
        cf_future_release(f[i]);
    }
    tu_start_workers(ex); /* all of them again: none starts a second time */
    cf_executor_free(ex);
    assert_int_equal(tu_latch_count(&ran), N);
    assert_int_equal(tu_latch_count(&calls), 3);
    assert_int_equal(tu_latch_count(&mask), 7);
    tu_latch_destroy(&ran);
    tu_latch_destroy(&mask);
    tu_latch_destroy(&calls);
}

/* SEMANTICS 16: a failing initializer breaks the executor: pending tasks fail with
 * CF_EBROKEN carrying the initializer's code and message, later submissions of every kind
 * are CF_EBROKEN, cf_executor_error reports it, and no task runs. */
static void failing_initializer_breaks_executor(void **state)
{
    enum { N = 5 };
    tu_latch calls, mask, ran;
    init_msg im;
    tu_xtask task;
    tu_xmsg msg;
    cf_bytes in;
    cf_executor_opts o;
    cf_executor *ex;
    cf_future *f[N] = {NULL};
    cf_map *m = NULL;
    int code = 0, i, accepted = 0;
    const char *message = NULL;
    (void)state;
    tu_latch_init(&calls);
    tu_latch_init(&mask);
    tu_latch_init(&ran);
    init_msg_init(&im, &calls, &mask, 1);
    task = (tu_xtask){.finished = &ran};
    in = tu_xtask_input(&task, &msg);
    cf_executor_opts_init(&o);
    tu_set_initializer(&o, &record_init, &im, sizeof im);
    ex = make_executor(2, &o);
    assert_int_equal(cf_executor_error(ex, &code, &message), 0);
    for (i = 0; i < N; i++) {
        int rc = cf_submit_bytes(ex, &tu_xtask_fn, in.data, in.len, &f[i]);
        assert_true(rc == 0 || rc == CF_EBROKEN);
        if (rc != 0)
            continue;
        accepted++;
        assert_int_equal(cf_future_result(f[i], TU_LONG, NULL), CF_EBROKEN);
        assert_int_equal(cf_future_error(f[i], &code, &message), CF_EBROKEN);
        assert_int_equal(code, 77);
        assert_string_equal(message, "cannot init: no device");
        assert_int_equal(cf_future_state(f[i]), CF_FINISHED);
    }
    assert_true(accepted >= 1); /* the first submission cannot know yet */
    assert_int_equal(cf_submit_bytes(ex, &tu_xtask_fn, in.data, in.len, NULL), CF_EBROKEN);
    assert_int_equal(cf_map_bytes_start(&m, ex, &tu_xtask_fn, &in, 1, NULL), CF_EBROKEN);
    assert_null(m);
    code = 0;
    message = NULL;
    assert_int_equal(cf_executor_error(ex, &code, &message), CF_EBROKEN);
    assert_int_equal(code, 77);
    assert_string_equal(message, "cannot init: no device");
    assert_int_equal(cf_executor_error(ex, NULL, NULL), CF_EBROKEN);
    cf_executor_free(ex);
    assert_int_equal(tu_latch_count(&ran), 0);
    assert_true(tu_latch_count(&calls) >= 1);
    for (i = 0; i < N; i++)
        cf_future_release(f[i]);
    tu_latch_destroy(&ran);
    tu_latch_destroy(&mask);
    tu_latch_destroy(&calls);
}

/* SEMANTICS 16: when a second worker's initializer fails while the first worker runs a
 * task, the queued tasks fail with CF_EBROKEN, the running one still finishes with its
 * value, and later submissions are refused.  Tasks are submitted until one is not taken by
 * the first worker (a process pool hands a worker several): that one needs the second. */
static void initializer_failing_later_breaks_pending(void **state)
{
    enum { MAX_TAKEN = 256 };
    tu_latch calls, mask, started;
    tu_gate gate;
    init_msg im;
    tu_xtask a;
    cf_executor_opts o;
    cf_executor *ex;
    cf_future *fa, *fb = NULL, *taken[MAX_TAKEN];
    int code = 0, n = 0, i;
    (void)state;
    tu_latch_init(&calls);
    tu_latch_init(&mask);
    tu_latch_init(&started);
    tu_gate_init(&gate);
    init_msg_init(&im, &calls, &mask, 2);
    a = (tu_xtask){.gate = &gate, .started = &started, .value = 0x12};
    cf_executor_opts_init(&o);
    tu_set_initializer(&o, &record_init, &im, sizeof im);
    ex = make_executor(2, &o);
    fa = tu_xsubmit(ex, &a);
    assert_int_equal(tu_latch_wait(&started, 1, TU_LONG), 0);
    while (fb == NULL) {
        tu_xtask t = {.gate = &gate, .value = n};
        cf_future *f = tu_xsubmit(ex, &t);
        if (cf_future_state(f) != CF_RUNNING)
            fb = f;
        else if (n < MAX_TAKEN)
            taken[n++] = f;
        else
            fail_msg("the first worker took %d tasks", n);
    }
    assert_int_equal(cf_future_result(fb, TU_LONG, NULL), CF_EBROKEN);
    assert_int_equal(cf_future_error(fb, &code, NULL), CF_EBROKEN);
    assert_int_equal(code, 77);
    assert_int_equal(tu_xtask_submit(ex, &a, NULL), CF_EBROKEN);
    assert_int_equal(cf_future_state(fa), CF_RUNNING);
    tu_gate_open(&gate);
    assert_int_equal(tu_xresult(fa, TU_LONG), 0x12);
    for (i = 0; i < n; i++) {
        assert_int_equal(tu_xresult(taken[i], TU_LONG), i);
        cf_future_release(taken[i]);
    }
    cf_executor_free(ex);
    assert_int_equal(tu_latch_count(&calls), 2);
    cf_future_release(fa);
    cf_future_release(fb);
    tu_gate_destroy(&gate);
    tu_latch_destroy(&started);
    tu_latch_destroy(&mask);
    tu_latch_destroy(&calls);
}

/* ---- SEMANTICS 17: bounded queue ---------------------------------------------------- */

/* SEMANTICS 17: with room for 3 queued tasks and CF_FULL_FAIL, behind a hold (which keeps
 * one of its tasks queued) two more fit and the next is refused at once with CF_EFULL
 * (nothing created, nothing called); room comes back as tasks start. */
static void bounded_queue_full_fails(void **state)
{
    tu_hold hold;
    tu_latch ran;
    tu_xtask task;
    cf_executor_opts o;
    cf_executor *ex;
    cf_future *b, *c, *d = NULL;
    unsigned char byte = 0;
    (void)state;
    tu_latch_init(&ran);
    task = (tu_xtask){.finished = &ran};
    cf_executor_opts_init(&o);
    o.max_queued = 3;
    o.full_mode = CF_FULL_FAIL;
    ex = make_executor(1, &o);
    tu_hold_workers(&hold, ex);
    b = tu_xsubmit(ex, &task);
    c = tu_xsubmit(ex, &task);
    assert_int_equal(tu_xtask_submit(ex, &task, &d), CF_EFULL);
    assert_null(d);
    assert_int_equal(tu_xtask_submit(ex, &task, NULL), CF_EFULL);
    assert_int_equal(cf_submit_bytes(ex, &xor_fn, &byte, 1, &d), CF_EFULL);
    assert_null(d);
    tu_hold_release(&hold);
    assert_int_equal(cf_future_result(b, TU_LONG, NULL), 0);
    assert_int_equal(cf_future_result(c, TU_LONG, NULL), 0);
    d = tu_xsubmit(ex, &task);
    assert_int_equal(cf_future_result(d, TU_LONG, NULL), 0);
    cf_executor_free(ex);
    assert_int_equal(tu_latch_count(&ran), 3);
    cf_future_release(b);
    cf_future_release(c);
    cf_future_release(d);
    tu_latch_destroy(&ran);
}

typedef struct blocked_submit {
    cf_executor *ex;
    tu_xmsg msg;
    cf_future *f;
    int rc;
    atomic_int returned;
} blocked_submit;

static void *submit_in_thread(void *arg)
{
    blocked_submit *s = arg;
    s->rc = cf_submit_bytes(s->ex, &tu_xtask_fn, &s->msg, sizeof s->msg, &s->f);
    atomic_store(&s->returned, 1);
    return NULL;
}

/* SEMANTICS 17: with CF_FULL_BLOCK, a submit into a full queue blocks until a task leaves
 * the queue, then succeeds. */
static void bounded_queue_full_blocks(void **state)
{
    tu_hold hold;
    tu_latch ran;
    tu_xtask task;
    cf_executor_opts o;
    cf_executor *ex;
    cf_future *b, *c;
    blocked_submit s;
    pthread_t t;
    (void)state;
    tu_latch_init(&ran);
    task = (tu_xtask){.finished = &ran};
    cf_executor_opts_init(&o);
    o.max_queued = 3;
    o.full_mode = CF_FULL_BLOCK;
    ex = make_executor(1, &o);
    tu_hold_workers(&hold, ex); /* one of its tasks queued */
    b = tu_xsubmit(ex, &task);
    c = tu_xsubmit(ex, &task);
    s.ex = ex;
    tu_xtask_input(&task, &s.msg);
    s.f = NULL;
    atomic_init(&s.returned, 0);
    t = tu_thread_start(submit_in_thread, &s);
    tu_sleep(0.1);
    assert_int_equal(atomic_load(&s.returned), 0);
    assert_int_equal(tu_latch_count(&ran), 0);
    tu_hold_release(&hold);
    tu_thread_join(t);
    assert_int_equal(s.rc, 0);
    assert_non_null(s.f);
    assert_int_equal(cf_future_result(s.f, TU_LONG, NULL), 0);
    assert_int_equal(cf_future_result(b, TU_LONG, NULL), 0);
    assert_int_equal(cf_future_result(c, TU_LONG, NULL), 0);
    cf_executor_free(ex);
    assert_int_equal(tu_latch_count(&ran), 3);
    cf_future_release(b);
    cf_future_release(c);
    cf_future_release(s.f);
    tu_latch_destroy(&ran);
}

/* SEMANTICS 17, 12: a submit blocked on a full queue returns CF_ESHUTDOWN when the executor
 * shuts down, and its task never runs; the queued ones still do. */
static void bounded_queue_block_released_by_shutdown(void **state)
{
    tu_hold hold;
    tu_latch ran;
    tu_xtask task;
    cf_executor_opts o;
    cf_executor *ex;
    blocked_submit s;
    pthread_t t;
    (void)state;
    tu_watchdog(120);
    tu_latch_init(&ran);
    task = (tu_xtask){.finished = &ran};
    cf_executor_opts_init(&o);
    o.max_queued = 2;
    o.full_mode = CF_FULL_BLOCK;
    ex = make_executor(1, &o);
    tu_hold_workers(&hold, ex); /* one of its tasks queued */
    assert_int_equal(tu_xtask_submit(ex, &task, NULL), 0);
    s.ex = ex;
    tu_xtask_input(&task, &s.msg);
    s.f = NULL;
    atomic_init(&s.returned, 0);
    t = tu_thread_start(submit_in_thread, &s);
    tu_sleep(0.1);
    assert_int_equal(atomic_load(&s.returned), 0);
    assert_int_equal(cf_shutdown(ex, 0), 0);
    tu_thread_join(t);
    assert_int_equal(s.rc, CF_ESHUTDOWN);
    assert_null(s.f);
    tu_hold_release(&hold);
    cf_executor_free(ex);
    assert_int_equal(tu_latch_count(&ran), 1);
    tu_latch_destroy(&ran);
}

/* ---- task context ------------------------------------------------------------------- */

typedef struct ctx_msg {
    tu_xhead head;
    uint32_t meet; /* word: arrivals */
    int32_t n;     /* tasks that must run at once */
} ctx_msg;

/* Waits until all n tasks run, then reports its worker index and the executor its context
 * names (as an integer). */
static int bytes_ctx(const void *in, size_t len, cf_ctx *ctx)
{
    ctx_msg m;
    int64_t out[2];
    if (len != sizeof m)
        return cf_fail(ctx, TU_EXMSG, "input of %zu bytes", len);
    memcpy(&m, in, sizeof m);
    if (tu_xarrive(&m.head, m.meet) != 0 || tu_xwait(&m.head, m.meet, (uint32_t)m.n, TU_LONG) != 0)
        return cf_fail(ctx, TU_EGATE, "the %d tasks did not run at once", (int)m.n);
    out[0] = cf_ctx_worker(ctx);
    out[1] = (int64_t)(intptr_t)cf_ctx_executor(ctx);
    return cf_ctx_set_output(ctx, out, sizeof out) == 0 ? 0 : cf_fail(ctx, 12, "no memory");
}

CF_FUNCTION(ctx_fn, bytes_ctx);

/* cf_ctx_worker gives distinct indexes 0 .. n-1 to tasks running at once; cf_ctx_executor
 * gives the running executor in a thread pool and NULL in a worker process (the header's
 * rule). */
static void task_context_and_worker_index(void **state)
{
    tu_latch meet;
    ctx_msg m;
    cf_future *f[3];
    cf_executor *ex;
    int64_t expect_ex;
    int i, seen = 0;
    (void)state;
    tu_latch_init(&meet);
    memset(&m, 0, sizeof m);
    tu_xhead_init(&m.head);
    m.meet = meet.w;
    m.n = 3;
    ex = make_executor(3, NULL);
    tu_start_workers(ex); /* so each of the three finds an idle worker of its own */
    expect_ex = tu_backend_inprocess() ? (int64_t)(intptr_t)ex : 0;
    for (i = 0; i < 3; i++)
        assert_int_equal(cf_submit_bytes(ex, &ctx_fn, &m, sizeof m, &f[i]), 0);
    for (i = 0; i < 3; i++) {
        const void *data = NULL;
        size_t len = 0;
        int64_t out[2];
        assert_int_equal(cf_future_bytes(f[i], TU_LONG, &data, &len), 0);
        assert_int_equal(len, sizeof out);
        memcpy(out, data, sizeof out);
        assert_true(out[0] >= 0 && out[0] < 3);
        seen |= 1 << out[0];
        assert_true(out[1] == expect_ex);
        cf_future_release(f[i]);
    }
    assert_int_equal(seen, 7);
    cf_executor_free(ex);
    tu_latch_destroy(&meet);
}

/* The backend's name; a new executor is not broken. */
static void executor_backend_name(void **state)
{
    cf_executor *ex;
    (void)state;
    ex = make_executor(1, NULL);
    assert_string_equal(cf_executor_backend(ex),
                        tu_backend_inprocess() ? "threads" : "processes");
    assert_int_equal(cf_executor_error(ex, NULL, NULL), 0);
    cf_executor_free(ex);
}

/* ---- bytes tasks (SEMANTICS 12, 4: the cross-backend form) -------------------------- */

static int bytes_no_output(const void *in, size_t len, cf_ctx *ctx)
{
    (void)in;
    (void)len;
    (void)ctx;
    return 0;
}

CF_FUNCTION(no_output_fn, bytes_no_output);

static void check_bytes(cf_future *f, const unsigned char *expect, size_t n)
{
    const void *data = NULL;
    size_t len = 12345;
    assert_int_equal(cf_future_bytes(f, TU_LONG, &data, &len), 0);
    assert_int_equal(len, n);
    if (n > 0)
        assert_memory_equal(data, expect, n);
}

/* SEMANTICS 12: bytes tasks over 0 and 1 bytes, and a task that sets no output, give the
 * right (possibly empty) results. */
static void bytes_task_empty_and_one_byte(void **state)
{
    unsigned char empty = 0, one = 0x33, expect = 0x33 ^ 0x5a;
    cf_executor *ex;
    cf_future *f0 = NULL, *f1 = NULL, *f2 = NULL, *f3 = NULL;
    (void)state;
    ex = make_executor(2, NULL);
    assert_int_equal(cf_submit_bytes(ex, &xor_fn, &empty, 0, &f0), 0);
    assert_int_equal(cf_submit_bytes(ex, &xor_fn, &one, 1, &f1), 0);
    assert_int_equal(cf_submit_bytes(ex, &reverse_fn, &one, 1, &f2), 0);
    assert_int_equal(cf_submit_bytes(ex, &no_output_fn, &one, 1, &f3), 0);
    check_bytes(f0, NULL, 0);
    check_bytes(f1, &expect, 1);
    check_bytes(f2, &one, 1);
    check_bytes(f3, NULL, 0);
    cf_future_release(f0);
    cf_future_release(f1);
    cf_future_release(f2);
    cf_future_release(f3);
    cf_executor_free(ex);
}

/* SEMANTICS 12: 1 MiB in and out, through cf_ctx_output and cf_ctx_set_output, content
 * checked; the input is copied at submit, so the caller may overwrite it at once. */
static void bytes_task_one_mebibyte(void **state)
{
    enum { MIB = 1 << 20 };
    unsigned char *in = malloc(MIB), *x = malloc(MIB), *r = malloc(MIB);
    cf_executor *ex;
    cf_future *fx = NULL, *fr = NULL;
    size_t i;
    (void)state;
    assert_non_null(in);
    assert_non_null(x);
    assert_non_null(r);
    tu_fill_pattern(in, MIB, 1);
    for (i = 0; i < MIB; i++) {
        x[i] = in[i] ^ 0x5a;
        r[i] = in[MIB - 1 - i];
    }
    ex = make_executor(2, NULL);
    assert_int_equal(cf_submit_bytes(ex, &xor_fn, in, MIB, &fx), 0);
    assert_int_equal(cf_submit_bytes(ex, &reverse_fn, in, MIB, &fr), 0);
    memset(in, 0xee, MIB);
    check_bytes(fx, x, MIB);
    check_bytes(fr, r, MIB);
    cf_future_release(fx);
    cf_future_release(fr);
    cf_executor_free(ex);
    free(in);
    free(x);
    free(r);
}

/* SEMANTICS 4, 12: a bytes task's failure reaches the caller with its code and message. */
static void bytes_task_error(void **state)
{
    const unsigned char bad[] = {'!', 23, 'x'};
    cf_executor *ex;
    cf_future *f = NULL;
    int code = 0;
    const char *msg = NULL;
    (void)state;
    ex = make_executor(1, NULL);
    assert_int_equal(cf_submit_bytes(ex, &maybe_fail_fn, bad, sizeof bad, &f), 0);
    assert_int_equal(cf_future_bytes(f, TU_LONG, NULL, NULL), CF_ETASK);
    assert_int_equal(cf_future_error(f, &code, &msg), CF_ETASK);
    assert_int_equal(code, 23);
    assert_string_equal(msg, "refused input of 3 bytes");
    cf_future_release(f);
    cf_executor_free(ex);
}

/* ---- the thread pool: pointer tasks, nested submission (SEMANTICS 17-20, 14) -------- */

typedef struct meet {
    tu_latch latch;
    int n;
} meet;

/* Arrives at a shared latch and waits until all n tasks have: proves n ran at once. */
static int task_meet(void *arg, void **result, cf_ctx *ctx)
{
    meet *m = arg;
    if (tu_latch_meet(&m->latch, m->n, TU_LONG) != 0)
        return cf_fail(ctx, TU_EGATE, "only %d of %d tasks ran at once",
                       tu_latch_count(&m->latch), m->n);
    *result = (void *)(intptr_t)cf_ctx_worker(ctx);
    return 0;
}

typedef struct fanout {
    int children;
    atomic_int *count;
} fanout;

static int task_fanout(void *arg, void **result, cf_ctx *ctx)
{
    fanout *p = arg;
    cf_future *c[8] = {NULL};
    int i, rc = 0;
    (void)result;
    for (i = 0; i < p->children && rc == 0; i++)
        rc = cf_submit(cf_ctx_executor(ctx), tu_task_count, p->count, &c[i]);
    for (i = 0; i < p->children && rc == 0; i++)
        rc = cf_future_result(c[i], TU_LONG, NULL);
    for (i = 0; i < p->children; i++)
        cf_future_release(c[i]);
    return rc == 0 ? 0 : cf_fail(ctx, rc, "children: %s", cf_err_name(rc));
}

/* SEMANTICS 17, 19: with ONE worker and room for one queued task (CF_FULL_BLOCK), a task
 * that submits 4 children and waits for them must not deadlock: the worker itself would be
 * the one to make room.  (If it hangs, shutdown releases the blocked submit and the test
 * fails rather than hanging.) */
static void bounded_queue_nested_submit_does_not_deadlock(void **state)
{
    atomic_int count;
    fanout p;
    cf_executor_opts o;
    cf_executor *ex;
    cf_future *f;
    int rc;
    (void)state;
    atomic_init(&count, 0);
    p.children = 4;
    p.count = &count;
    cf_executor_opts_init(&o);
    o.max_queued = 1;
    o.full_mode = CF_FULL_BLOCK;
    ex = make_thread_executor(1, &o);
    f = tu_submit(ex, task_fanout, &p);
    rc = cf_future_result(f, 10.0, NULL);
    if (rc == CF_ETIMEDOUT)
        cf_shutdown(ex, CF_SHUTDOWN_CANCEL_PENDING);
    assert_int_equal(rc, 0);
    assert_int_equal(atomic_load(&count), 4);
    cf_future_release(f);
    cf_executor_free(ex);
}

/* ---- SEMANTICS 18: thread names ----------------------------------------------------- */

/* SEMANTICS 18: worker threads carry the name prefix, given or default ("cf"). */
static void worker_threads_named_with_prefix(void **state)
{
    cf_executor_opts o;
    cf_executor *ex;
    int before;
    (void)state;
    cf_executor_opts_init(&o);
    o.name = "cftestpool";
    assert_int_equal(tu_count_threads_named("cftestpool"), 0);
    ex = make_thread_executor(2, &o);
    tu_start_workers(ex);
    assert_int_equal(tu_count_threads_named("cftestpool"), 2);
    cf_executor_free(ex);
    assert_int_equal(tu_count_threads_named("cftestpool"), 0);

    before = tu_count_threads_named("cf");
    ex = make_thread_executor(3, NULL);
    tu_start_workers(ex);
    assert_int_equal(tu_count_threads_named("cf"), before + 3);
    cf_executor_free(ex);
}

/* ---- SEMANTICS 29: a burst of blocking tasks gets its workers -------------------------- */

enum { BURST_N = 10 };

typedef enum burst_next { NEXT_FREE, NEXT_SHUTDOWN, NEXT_WAIT, NEXT_NOTHING } burst_next;

/* Arrives, then waits (5 s at most) until all BURST_N tasks have: a task that ran alone
 * fails with the count it saw. */
static int task_burst(void *arg, void **result, cf_ctx *ctx)
{
    tu_latch *met = arg;
    (void)result;
    if (tu_latch_meet(met, BURST_N, 5.0) != 0)
        return cf_fail(ctx, TU_EGATE, "%d of %d ran at once", tu_latch_count(met), BURST_N);
    return 0;
}

/* 10 blocking tasks on 10 workers, then `next` at once: all 10 run at the same time (the
 * C form of Python's `with ThreadPoolExecutor(10) as ex: ex.submit(...)` freed them one
 * worker at a time: 2 s instead of 0.2 s). */
static void run_burst(burst_next next)
{
    static const char *const names[] = {"free", "shutdown", "cf_wait", "nothing"};
    cf_executor *ex = make_thread_executor(BURST_N, NULL);
    cf_future *fs[BURST_N];
    tu_latch met;
    int i;
    tu_latch_init(&met);
    for (i = 0; i < BURST_N; i++)
        fs[i] = tu_submit(ex, task_burst, &met);
    if (next == NEXT_FREE) {
        cf_executor_free(ex);
        ex = NULL;
    } else if (next == NEXT_SHUTDOWN) {
        assert_int_equal(cf_shutdown(ex, CF_SHUTDOWN_WAIT), 0);
    } else if (next == NEXT_WAIT) {
        assert_int_equal(cf_wait(fs, BURST_N, CF_ALL_COMPLETED, TU_LONG, NULL, NULL, NULL, NULL), 0);
    }
    for (i = 0; i < BURST_N; i++) {
        int code = 0;
        const char *msg = NULL;
        if (cf_future_result(fs[i], TU_LONG, NULL) != 0) {
            cf_future_error(fs[i], &code, &msg);
            fail_msg("burst then %s: task %d: %s", names[next], i, msg ? msg : "not done");
        }
        cf_future_release(fs[i]);
    }
    cf_executor_free(ex);
    tu_latch_destroy(&met);
}

static void burst_gets_its_workers_then_free(void **state)
{
    (void)state;
    run_burst(NEXT_FREE);
}

static void burst_gets_its_workers_then_shutdown(void **state)
{
    (void)state;
    run_burst(NEXT_SHUTDOWN);
}

static void burst_gets_its_workers_then_wait(void **state)
{
    (void)state;
    run_burst(NEXT_WAIT);
}

static void burst_gets_its_workers_then_nothing(void **state)
{
    (void)state;
    run_burst(NEXT_NOTHING);
}

/* The documented way to stop consumers that are pool tasks (no daemon workers): close the
 * queue, then free.  Three tasks block in cf_queue_get; the close releases every one of
 * them after the queue is drained, and cf_executor_free returns. */
typedef struct consumer {
    cf_queue *q;
    _Atomic int *taken;
} consumer;

static int task_consume(void *arg, void **result, cf_ctx *ctx)
{
    consumer *c = arg;
    void *item;
    int rc;
    (void)result;
    while ((rc = cf_queue_get(c->q, &item, TU_LONG)) == 0)
        atomic_fetch_add(c->taken, 1);
    return rc == CF_ECLOSED ? 0 : cf_fail(ctx, rc, "cf_queue_get: %s", cf_err_name(rc));
}

static void queue_consumers_stop_when_closed_before_free(void **state)
{
    cf_executor *ex = make_thread_executor(3, NULL);
    cf_queue *q = NULL;
    cf_future *fs[3];
    _Atomic int taken = 0;
    consumer c;
    int i, item = 1;
    (void)state;
    assert_int_equal(cf_queue_new(&q, 2), 0);
    c = (consumer){q, &taken};
    for (i = 0; i < 3; i++)
        fs[i] = tu_submit(ex, task_consume, &c);
    for (i = 0; i < 5; i++)
        assert_int_equal(cf_queue_put(q, &item, TU_LONG), 0);
    cf_queue_close(q, 0);
    cf_executor_free(ex);
    assert_int_equal(atomic_load(&taken), 5);
    for (i = 0; i < 3; i++) {
        assert_int_equal(cf_future_result(fs[i], 0, NULL), 0);
        cf_future_release(fs[i]);
    }
    cf_queue_free(q);
}

/* ---- SEMANTICS 35: fork ------------------------------------------------------------- */

#if defined(__has_feature)
#define TU_HAS_FEATURE(x) __has_feature(x)
#else
#define TU_HAS_FEATURE(x) 0
#endif

/* The child's checks: each failure exits with its own status, so the parent names it. */
static int forked_child_checks(cf_executor *ex, cf_future *pending, cf_future *finished)
{
    cf_future *f = NULL, *done[2], *fs[2] = {pending, finished};
    cf_as_completed *it = NULL;
    cf_map *m = NULL;
    size_t nd = 9;
    tu_xtask quick = {.value = 5};
    tu_xmsg msg;
    cf_bytes in = tu_xtask_input(&quick, &msg);
    alarm(20); /* a hang is a failure, not a stuck test */
    if (tu_xtask_submit(ex, &quick, &f) != CF_EFORKED || f != NULL)
        return 10; /* accepted work that could never run */
    if (cf_future_result(pending, CF_FOREVER, NULL) != CF_EFORKED)
        return 11; /* would wait for ever for the parent's worker */
    if (cf_future_cancel(pending) != (tu_backend() == CF_BACKEND_PROCESSES ? CF_EFORKED : CF_EBUSY))
        return 19; /* running: a process pool's cancel would reach the parent's manager */
    if (tu_xresult(finished, 0) != 42)
        return 12; /* a future done before the fork still reads */
    if (cf_wait(fs, 2, CF_ALL_COMPLETED, CF_FOREVER, done, &nd, NULL, NULL) != CF_EFORKED ||
        nd != 9)
        return 13;
    if (cf_wait(fs, 2, CF_FIRST_COMPLETED, CF_FOREVER, done, &nd, NULL, NULL) != 0 || nd != 1)
        return 14; /* already satisfied: the split as usual */
    if (cf_as_completed_new(&it, fs, 2, CF_FOREVER) != 0 || cf_as_completed_next(it, &f) != 0 ||
        f != finished || cf_as_completed_next(it, &f) != CF_EFORKED)
        return 15;
    cf_as_completed_free(it);
    if (cf_map_bytes_start(&m, ex, &tu_xtask_fn, &in, 1, NULL) != CF_EFORKED || m != NULL)
        return 16;
    if (cf_shutdown(ex, CF_SHUTDOWN_WAIT) != CF_EFORKED)
        return 17;
    cf_executor_free(ex); /* the parent's: must neither hang nor crash */
#if defined(__SANITIZE_THREAD__) || TU_HAS_FEATURE(thread_sanitizer)
    /* ThreadSanitizer refuses to start threads in the child of a multi-threaded process
     * ("not supported"), so the child's own pool is checked by the other builds only. */
    return 0;
#endif
    /* A new executor of the child's own works. */
    cf_executor *mine = make_executor(1, NULL);
    f = tu_xsubmit(mine, &quick);
    if (tu_xresult(f, TU_LONG) != 5)
        return 18;
    cf_future_release(f);
    cf_executor_free(mine);
    return 0;
}

/* SEMANTICS 35: after fork(), the child's copy of an executor fails every call at once with
 * CF_EFORKED and a wait on a future pending at the fork returns CF_EFORKED (it used to
 * accept submissions that never ran and wait for ever); the parent's executor is
 * untouched and finishes its task. */
static void fork_child_gets_eforked_parent_untouched(void **state)
{
    tu_gate gate;
    tu_latch started;
    tu_xtask held, done;
    cf_executor *ex;
    cf_future *pending, *finished;
    pid_t pid;
    int status = 0;
    (void)state;
    tu_gate_init(&gate);
    tu_latch_init(&started);
    held = (tu_xtask){.gate = &gate, .started = &started, .value = 7};
    done = (tu_xtask){.value = 42};
    ex = make_executor(2, NULL);
    finished = tu_xsubmit(ex, &done);
    assert_int_equal(tu_xresult(finished, TU_LONG), 42);
    pending = tu_xsubmit(ex, &held);
    assert_int_equal(tu_latch_wait(&started, 1, TU_LONG), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(forked_child_checks(ex, pending, finished));
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("forked child: %s %d", WIFEXITED(status) ? "failed check" : "killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    tu_gate_open(&gate);
    assert_int_equal(tu_xresult(pending, TU_LONG), 7); /* the parent's pool carries on */
    cf_future_release(pending);
    pending = tu_xsubmit(ex, &done);
    assert_int_equal(tu_xresult(pending, TU_LONG), 42);
    cf_future_release(pending);
    cf_future_release(finished);
    cf_executor_free(ex);
    tu_latch_destroy(&started);
    tu_gate_destroy(&gate);
}

/* ---- SEMANTICS 19, 20: nested submission, idle workers ------------------------------ */

static int task_fib(void *arg, void **result, cf_ctx *ctx)
{
    intptr_t n = (intptr_t)arg;
    cf_executor *ex = cf_ctx_executor(ctx);
    cf_future *a = NULL, *b = NULL;
    void *va = NULL, *vb = NULL;
    int rc;
    if (n < 2) {
        *result = (void *)n;
        return 0;
    }
    rc = cf_submit(ex, task_fib, (void *)(n - 1), &a);
    if (rc == 0)
        rc = cf_submit(ex, task_fib, (void *)(n - 2), &b);
    if (rc == 0)
        rc = cf_future_result(a, TU_LONG, &va);
    if (rc == 0)
        rc = cf_future_result(b, TU_LONG, &vb);
    cf_future_release(a);
    cf_future_release(b);
    if (rc != 0)
        return cf_fail(ctx, rc, "fib(%d): %s", (int)n, cf_err_name(rc));
    *result = (void *)((intptr_t)va + (intptr_t)vb);
    return 0;
}

/* SEMANTICS 19: recursive fib(15) through a pool of ONE worker, every call a task that
 * submits two tasks and waits for them: no deadlock (the waiting worker runs queued work). */
static void nested_submit_and_wait_one_worker(void **state)
{
    cf_executor *ex;
    cf_future *f;
    void *v = NULL;
    int code = 0;
    const char *msg = NULL;
    (void)state;
    ex = make_thread_executor(1, NULL);
    f = tu_submit(ex, task_fib, (void *)(intptr_t)15);
    if (cf_future_result(f, 4 * TU_LONG, &v) != 0) {
        cf_future_error(f, &code, &msg);
        fail_msg("fib(15) failed: %d %s", code, msg ? msg : "");
    }
    assert_int_equal((intptr_t)v, 610);
    cf_future_release(f);
    cf_executor_free(ex);
}

/* SEMANTICS 28: every way of waiting helps.  fib(n) where each call waits for its two
 * children in one of the library's ways. */
enum wait_way {
    WAY_RESULT,
    WAY_BYTES,
    WAY_FUTURE_WAIT,
    WAY_WAIT_ALL,
    WAY_WAIT_FIRST,
    WAY_AS_COMPLETED,
    WAY_MAP,
    WAY_COUNT
};
static const char *const way_names[WAY_COUNT] = {
    "cf_future_result", "cf_future_bytes",      "cf_future_wait", "cf_wait(ALL)",
    "cf_wait(FIRST)",   "cf_as_completed_next", "cf_map_next"};

typedef struct fib_arg {
    enum wait_way way;
    intptr_t n;
} fib_arg;

/* Waits for both children in way `way`: 0, or the first error. */
static int wait_children(enum wait_way way, cf_future *c[2])
{
    size_t nd = 0, nn = 2, i;
    cf_future *done[2], *left[2] = {c[0], c[1]};
    cf_as_completed *it = NULL;
    int rc = 0;
    switch (way) {
    case WAY_RESULT:
        return 0; /* the caller reads them, waiting */
    case WAY_BYTES:
        for (i = 0; i < 2 && rc == 0; i++)
            rc = cf_future_bytes(c[i], TU_LONG, NULL, NULL);
        return rc;
    case WAY_FUTURE_WAIT:
        for (i = 0; i < 2 && rc == 0; i++)
            rc = cf_future_wait(c[i], TU_LONG);
        return rc;
    case WAY_WAIT_ALL:
        rc = cf_wait(c, 2, CF_ALL_COMPLETED, TU_LONG, done, &nd, NULL, NULL);
        return rc ? rc : nd == 2 ? 0 : CF_ETIMEDOUT;
    case WAY_WAIT_FIRST:
        while (rc == 0 && nn > 0) /* one at a time, as a loop over FIRST_COMPLETED does */
            rc = cf_wait(left, nn, CF_FIRST_COMPLETED, TU_LONG, done, &nd, left, &nn);
        return rc;
    case WAY_AS_COMPLETED:
        rc = cf_as_completed_new(&it, c, 2, TU_LONG);
        for (i = 0; i < 2 && rc == 0; i++)
            rc = cf_as_completed_next(it, &done[0]);
        cf_as_completed_free(it);
        return rc;
    default:
        return CF_EINVAL;
    }
}

static int task_fib_way(void *arg, void **result, cf_ctx *ctx);

/* The children's values through a map of the two, read with cf_map_next. */
static int map_children(cf_executor *ex, fib_arg kids[2], void *v[2])
{
    void *inputs[2] = {&kids[0], &kids[1]};
    cf_map *m = NULL;
    int rc = cf_map_start(&m, ex, task_fib_way, inputs, 2, NULL), i;
    for (i = 0; i < 2 && rc == 0; i++)
        rc = cf_map_next(m, NULL, &v[i]);
    cf_map_free(m);
    return rc;
}

static int task_fib_way(void *arg, void **result, cf_ctx *ctx)
{
    const fib_arg *a = arg;
    cf_future *c[2] = {NULL, NULL};
    fib_arg kids[2] = {{a->way, a->n - 1}, {a->way, a->n - 2}};
    void *v[2] = {NULL, NULL};
    int rc = 0, i;
    if (a->n < 2) {
        *result = (void *)a->n;
        return 0;
    }
    if (a->way == WAY_MAP) {
        if ((rc = map_children(cf_ctx_executor(ctx), kids, v)) != 0)
            return cf_fail(ctx, rc, "fib(%d): %s", (int)a->n, cf_err_name(rc));
        *result = (void *)((intptr_t)v[0] + (intptr_t)v[1]);
        return 0;
    }
    for (i = 0; i < 2 && rc == 0; i++)
        rc = cf_submit(cf_ctx_executor(ctx), task_fib_way, &kids[i], &c[i]);
    if (rc == 0)
        rc = wait_children(a->way, c);
    for (i = 0; i < 2 && rc == 0; i++)
        rc = cf_future_result(c[i], a->way == WAY_RESULT ? TU_LONG : CF_POLL, &v[i]);
    cf_future_release(c[0]);
    cf_future_release(c[1]);
    if (rc != 0)
        return cf_fail(ctx, rc, "fib(%d): %s", (int)a->n, cf_err_name(rc));
    *result = (void *)((intptr_t)v[0] + (intptr_t)v[1]);
    return 0;
}

static void fib_every_way(int workers, intptr_t n, intptr_t expect)
{
    for (int way = 0; way < WAY_COUNT; way++) {
        cf_executor *ex = make_thread_executor(workers, NULL);
        fib_arg a = {(enum wait_way)way, n};
        cf_future *f = tu_submit(ex, task_fib_way, &a);
        void *v = NULL;
        int code = 0;
        const char *msg = NULL;
        if (cf_future_result(f, 4 * TU_LONG, &v) != 0) {
            cf_future_error(f, &code, &msg);
            fail_msg("fib(%d) waiting with %s on %d worker(s): %d %s", (int)n, way_names[way],
                     workers, code, msg ? msg : "(not done)");
        }
        assert_int_equal((intptr_t)v, expect);
        cf_future_release(f);
        cf_executor_free(ex);
    }
}

/* SEMANTICS 28: fib(12) on one worker and fib(3) on two (which hung with cf_wait), every
 * call waiting for its children in each of the seven ways. */
static void nested_wait_every_way_helps(void **state)
{
    (void)state;
    fib_every_way(1, 12, 144);
    fib_every_way(2, 3, 2);
    fib_every_way(2, 12, 144);
}

static int task_child_value(void *arg, void **result, cf_ctx *ctx)
{
    (void)ctx;
    *result = arg;
    return 0;
}

/* A task that submits one child and waits for it with cf_wait(ALL, 2 s): it must see the
 * child done (it saw 0 done after 2 s on a 1-worker pool). */
static int task_wait_child_bounded(void *arg, void **result, cf_ctx *ctx)
{
    cf_future *c = NULL, *done[1];
    size_t nd = 0;
    int rc = cf_submit(cf_ctx_executor(ctx), task_child_value, (void *)(intptr_t)7, &c);
    (void)arg;
    if (rc == 0)
        rc = cf_wait(&c, 1, CF_ALL_COMPLETED, 2.0, done, &nd, NULL, NULL);
    cf_future_release(c);
    *result = (void *)(intptr_t)nd;
    return rc;
}

/* Header, at cf_fn: a waiting task's timeout may be overrun by the length of a task it ran.
 * On one worker, a task waits 50 ms for a future that never completes while a 0.3 s child
 * is queued: the wait runs the child and returns CF_ETIMEDOUT only after it ends. */
static int task_sleep_then_mark(void *arg, void **result, cf_ctx *ctx)
{
    (void)result;
    (void)ctx;
    tu_sleep(0.3);
    atomic_store((_Atomic int *)arg, 1);
    return 0;
}

typedef struct overrun {
    tu_gate never;
    _Atomic int child_done;
    int child_done_at_return;
    int rc;
} overrun;

static int task_wait_overrun(void *arg, void **result, cf_ctx *ctx)
{
    overrun *o = arg;
    cf_future *child = NULL, *never = NULL;
    tu_xtask blocked = {.gate = &o->never};
    (void)result;
    if (cf_submit(cf_ctx_executor(ctx), task_sleep_then_mark, &o->child_done, &child) != 0)
        return cf_fail(ctx, 1, "submit");
    /* A future that stays pending: a task of another executor, held at a gate. */
    cf_executor *other = make_thread_executor(1, NULL);
    never = tu_xsubmit(other, &blocked);
    o->rc = cf_future_wait(never, 0.05);
    o->child_done_at_return = atomic_load(&o->child_done);
    tu_gate_open(&o->never);
    cf_future_release(never);
    cf_executor_free(other);
    cf_future_wait(child, TU_LONG);
    cf_future_release(child);
    return 0;
}

static void nested_wait_timeout_overrun_by_task_it_ran(void **state)
{
    cf_executor *ex = make_thread_executor(1, NULL);
    overrun o = {.rc = 99};
    cf_future *f;
    (void)state;
    tu_gate_init(&o.never);
    atomic_init(&o.child_done, 0);
    f = tu_submit(ex, task_wait_overrun, &o);
    assert_int_equal(cf_future_result(f, TU_LONG, NULL), 0);
    assert_int_equal(o.rc, CF_ETIMEDOUT);
    assert_int_equal(o.child_done_at_return, 1); /* it ran the child, then timed out */
    cf_future_release(f);
    cf_executor_free(ex);
    tu_gate_destroy(&o.never);
}

static void nested_wait_with_timeout_one_worker(void **state)
{
    cf_executor *ex = make_thread_executor(1, NULL);
    cf_future *f = tu_submit(ex, task_wait_child_bounded, NULL);
    void *v = NULL;
    (void)state;
    assert_int_equal(cf_future_result(f, TU_LONG, &v), 0);
    assert_int_equal((intptr_t)v, 1);
    cf_future_release(f);
    cf_executor_free(ex);
}

typedef struct parent_arg {
    meet m;
    int help; /* 1: wait on the children's futures; 0: block without running anything */
} parent_arg;

static int task_parent(void *arg, void **result, cf_ctx *ctx)
{
    parent_arg *p = arg;
    cf_executor *ex = cf_ctx_executor(ctx);
    cf_future *c[2] = {NULL, NULL};
    int rc = cf_submit(ex, task_meet, &p->m, &c[0]), i;
    (void)result;
    if (rc == 0)
        rc = cf_submit(ex, task_meet, &p->m, &c[1]);
    if (rc == 0 && !p->help && tu_latch_wait(&p->m.latch, 2, TU_LONG) != 0)
        rc = TU_EGATE;
    for (i = 0; i < 2 && rc == 0; i++)
        rc = cf_future_result(c[i], TU_LONG, NULL);
    cf_future_release(c[0]);
    cf_future_release(c[1]);
    return rc == 0 ? 0 : cf_fail(ctx, rc, "children: %s", cf_err_name(rc));
}

static void run_parent(cf_executor *ex, int help)
{
    parent_arg p;
    cf_future *f;
    int code = 0;
    const char *msg = NULL;
    tu_latch_init(&p.m.latch);
    p.m.n = 2;
    p.help = help;
    f = tu_submit(ex, task_parent, &p);
    if (cf_future_result(f, 2 * TU_LONG, NULL) != 0) {
        cf_future_error(f, &code, &msg);
        fail_msg("parent failed: %d %s", code, msg ? msg : "");
    }
    cf_future_release(f);
    tu_latch_destroy(&p.m.latch);
}

/* SEMANTICS 20, 19: with 2 workers, a task submits 2 subtasks that can only finish if both
 * run at the same time, and waits for them: one runs in the waiting worker, the other must
 * be taken by the idle worker. */
static void nested_tasks_taken_by_idle_worker(void **state)
{
    cf_executor *ex;
    (void)state;
    ex = make_thread_executor(2, NULL);
    tu_start_workers(ex); /* the second worker exists and is idle */
    run_parent(ex, 1);
    cf_executor_free(ex);
}

/* SEMANTICS 20: with 3 workers, a task submits 2 subtasks that must run at the same time
 * and blocks without running anything itself: both idle workers must take them. */
static void nested_tasks_taken_by_idle_workers_without_help(void **state)
{
    cf_executor *ex;
    (void)state;
    ex = make_thread_executor(3, NULL);
    tu_start_workers(ex);
    run_parent(ex, 0);
    cf_executor_free(ex);
}

/* SEMANTICS 20: idle workers sleep: 4 started, idle workers use less than 20 ms of CPU in
 * 300 ms (a resource check, not a speed check). */
static void idle_workers_burn_no_cpu(void **state)
{
    cf_executor *ex;
    double cpu0, cpu;
    (void)state;
    ex = make_thread_executor(4, NULL);
    tu_start_workers(ex);
    cpu0 = tu_cpu_seconds();
    tu_sleep(0.3);
    cpu = tu_cpu_seconds() - cpu0;
    print_message("CPU used by 4 idle workers over 300 ms: %.1f ms\n", cpu * 1e3);
    assert_true(cpu < 0.020);
    cf_executor_free(ex);
}

static int task_shutdown_self(void *arg, void **result, cf_ctx *ctx)
{
    (void)arg;
    *result = (void *)(intptr_t)cf_shutdown(cf_ctx_executor(ctx), CF_SHUTDOWN_WAIT);
    return 0;
}

/* SEMANTICS 14: a worker cannot wait for its own executor's shutdown: CF_EINVAL, and
 * nothing done (the executor used to be shut down all the same): it still takes tasks. */
static void shutdown_wait_from_worker_einval(void **state)
{
    cf_executor *ex;
    cf_future *f;
    void *v = NULL;
    (void)state;
    ex = make_thread_executor(1, NULL);
    f = tu_submit(ex, task_shutdown_self, NULL);
    assert_int_equal(cf_future_result(f, TU_LONG, &v), 0);
    assert_int_equal((int)(intptr_t)v, CF_EINVAL);
    cf_future_release(f);
    f = tu_submit(ex, task_shutdown_self, NULL); /* tu_submit fails the test if refused */
    assert_int_equal(cf_future_result(f, TU_LONG, &v), 0);
    assert_int_equal((int)(intptr_t)v, CF_EINVAL);
    cf_future_release(f);
    cf_executor_free(ex);
}

/* ---- bursts larger than the injector's ring (its overflow array) --------------------- */

#ifdef CF_STRESS_SHORT
#define BURST_N 12000 /* still past the ring's 8192 cells */
#else
#define BURST_N 60000
#endif

/* Both workers of a 2-worker pool held at a gate, so everything submitted next queues up. */
static void hold_two_workers(cf_executor *ex, tu_gated held[2], tu_gate *gate, tu_latch *started,
                             cf_future *hf[2])
{
    int i;
    tu_gate_init(gate);
    tu_latch_init(started);
    for (i = 0; i < 2; i++) {
        tu_gated_init(&held[i], gate, started, NULL);
        hf[i] = tu_submit(ex, tu_task_gated, &held[i]);
    }
    assert_int_equal(tu_latch_wait(started, 2, TU_LONG), 0);
}

/* SEMANTICS 12, 14, 20: a burst of queued tasks far past the ring (so through the overflow
 * array, its growth and its batches into the workers' deques) runs every task once with its
 * own result; and the same burst cancelled by shutdown(CANCEL_PENDING) never runs any. */
static void burst_beyond_injector_ring(void **state)
{
    static cf_future *f[BURST_N];
    tu_gated held[2];
    cf_future *hf[2];
    tu_gate gate;
    tu_latch started;
    atomic_int count;
    cf_executor *ex;
    intptr_t i;
    (void)state;
    atomic_init(&count, 0);

    ex = make_thread_executor(2, NULL);
    hold_two_workers(ex, held, &gate, &started, hf);
    for (i = 0; i < BURST_N; i++)
        f[i] = tu_submit(ex, tu_task_identity, (void *)(i + 1));
    tu_gate_open(&gate);
    for (i = 0; i < BURST_N; i++) {
        void *v = NULL;
        assert_int_equal(cf_future_result(f[i], TU_LONG, &v), 0);
        assert_ptr_equal(v, (void *)(i + 1));
        cf_future_release(f[i]);
    }
    for (i = 0; i < 2; i++) {
        assert_int_equal(cf_future_result(hf[i], TU_LONG, NULL), 0);
        cf_future_release(hf[i]);
    }
    tu_gate_destroy(&gate);

    hold_two_workers(ex, held, &gate, &started, hf);
    for (i = 0; i < BURST_N; i++)
        f[i] = tu_submit(ex, tu_task_count, &count);
    assert_int_equal(cf_shutdown(ex, CF_SHUTDOWN_CANCEL_PENDING), 0);
    for (i = 0; i < BURST_N; i++) /* cancelled by shutdown itself, before it returned */
        assert_int_equal(cf_future_state(f[i]), CF_CANCELLED);
    tu_gate_open(&gate);
    cf_executor_free(ex);
    for (i = 0; i < BURST_N; i++)
        cf_future_release(f[i]);
    for (i = 0; i < 2; i++) {
        assert_int_equal(cf_future_result(hf[i], CF_POLL, NULL), 0);
        cf_future_release(hf[i]);
    }
    assert_int_equal(atomic_load(&count), 0);
    tu_gate_destroy(&gate);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(submit_after_shutdown_refused),
    cmocka_unit_test(submit_null_fn_einval),
    cmocka_unit_test(shutdown_wait_waits_for_accepted),
    cmocka_unit_test(shutdown_cancel_pending_cancels_queued),
    cmocka_unit_test(shutdown_more_than_once),
    cmocka_unit_test(free_implies_shutdown_wait),
    cmocka_unit_test(no_threads_or_fds_left),
    cmocka_unit_test(default_workers_is_usable_cpus),
    cmocka_unit_test(default_workers_follow_affinity),
    cmocka_unit_test(invalid_executor_options),
    cmocka_unit_test(workers_start_lazily_and_are_reused),
    cmocka_unit_test(first_task_starts_one_worker),
    cmocka_unit_test(workers_never_exceed_max),
    cmocka_unit_test(initializer_runs_once_per_worker),
    cmocka_unit_test(failing_initializer_breaks_executor),
    cmocka_unit_test(initializer_failing_later_breaks_pending),
    cmocka_unit_test(bounded_queue_full_fails),
    cmocka_unit_test(bounded_queue_full_blocks),
    cmocka_unit_test(bounded_queue_block_released_by_shutdown),
    cmocka_unit_test(task_context_and_worker_index),
    cmocka_unit_test(executor_backend_name),
    cmocka_unit_test(bytes_task_empty_and_one_byte),
    cmocka_unit_test(bytes_task_one_mebibyte),
    cmocka_unit_test(bytes_task_error),
    cmocka_unit_test(fork_child_gets_eforked_parent_untouched),
    cf_inprocess_test(bounded_queue_nested_submit_does_not_deadlock),
    cf_inprocess_test(worker_threads_named_with_prefix),
    cf_inprocess_test(burst_gets_its_workers_then_free),
    cf_inprocess_test(burst_gets_its_workers_then_shutdown),
    cf_inprocess_test(burst_gets_its_workers_then_wait),
    cf_inprocess_test(burst_gets_its_workers_then_nothing),
    cf_inprocess_test(queue_consumers_stop_when_closed_before_free),
    cf_inprocess_test(nested_submit_and_wait_one_worker),
    cf_inprocess_test(nested_wait_every_way_helps),
    cf_inprocess_test(nested_wait_with_timeout_one_worker),
    cf_inprocess_test(nested_wait_timeout_overrun_by_task_it_ran),
    cf_inprocess_test(nested_tasks_taken_by_idle_worker),
    cf_inprocess_test(nested_tasks_taken_by_idle_workers_without_help),
    cf_inprocess_test(idle_workers_burn_no_cpu),
    cf_inprocess_test(shutdown_wait_from_worker_einval),
    cf_inprocess_test(burst_beyond_injector_ring),
    cf_inprocess_test(shutdown_kill_on_threads_cancels_pending),
};

CF_TEST_MAIN(tests)
