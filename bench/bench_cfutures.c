/*
 * bench_cfutures.c -- the five workloads (README.md) on cfutures' thread pool.
 *
 * One executor with --workers threads serves every workload, so the timed rounds see
 * started workers and recycled memory.  The main thread submits and waits; W1 and W3 count
 * where their tasks ran (slot 0: the submitting thread, slot 1 + i: worker i), as the
 * OpenMP and oneTBB programs do, so the report shows whether a waiting submitter ran
 * tasks itself.  Each result is checked against its input, inside the timed region where
 * reading it is part of the workload (W1, W2, W3) and after it otherwise.
 *
 * Locking: none of its own; each where-slot is written by one thread only, and reading a
 * future's result orders its task's writes before the report reads them.  W5's latch is
 * described in bench_common.h.
 * Invariants: c->futures has room for BENCH_TASKS futures, more than W4 (100 per worker)
 * or W5 (one per worker) submit at once since workers <= BENCH_MAX_THREADS; and
 * every workload releases each future it created before it returns.
 */
#include "bench_common.h"

#include "cfutures.h"

typedef struct bench_ctx {
    int workers;
    cf_executor *ex;
    void **inputs;        /* BENCH_TASKS inputs from bench_inputs() */
    cf_future **futures;  /* reused by W1, W4 and W5 */
    bench_cpu cpu;
    bench_latch gate;
} bench_ctx;

/* Where echo_task ran, for W1 and W3 (each reports and clears it after its rounds). */
static bench_where where;
/* Set in the main thread only: tells a task it is running on the submitting thread. */
static _Thread_local int on_submitter;

static void check(int rc, const char *what)
{
    if (rc != 0)
        bench_die("%s: %s", what, cf_strerror(rc));
}

static int echo_task(void *arg, void **result, cf_ctx *ctx)
{
    bench_where_count(&where, on_submitter ? 0 : 1 + cf_ctx_worker(ctx));
    *result = arg;
    return 0;
}

static int item_task(void *arg, void **result, cf_ctx *ctx)
{
    (void)ctx;
    *result = bench_item(arg);
    return 0;
}

static int cpu_task(void *arg, void **result, cf_ctx *ctx)
{
    (void)ctx;
    bench_cpu_run_job(arg);
    *result = arg;
    return 0;
}

/* Holds its worker until one task is running on every worker. */
static int gate_task(void *arg, void **result, cf_ctx *ctx)
{
    (void)result;
    if (bench_latch_arrive_and_wait((bench_latch *)arg, BENCH_GATE_TIMEOUT) != 0)
        return cf_fail(ctx, 1, "not every worker took a task within %.0f s",
                       BENCH_GATE_TIMEOUT);
    return 0;
}

/* Submits fn(args[i]) for i < n into c->futures, then waits for each in order and checks
 * that its value is args[i]. */
static void submit_and_wait(bench_ctx *c, cf_fn fn, void *const *args, size_t n,
                            const char *what)
{
    for (size_t i = 0; i < n; i++)
        check(cf_submit(c->ex, fn, args[i], &c->futures[i]), what);
    for (size_t i = 0; i < n; i++) {
        void *v = NULL;
        check(cf_future_result(c->futures[i], CF_FOREVER, &v), what);
        if (v != args[i])
            bench_die("%s: task %zu returned a wrong value", what, i);
        cf_future_release(c->futures[i]);
    }
}

static double w1_submit_wait(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    double t0 = bench_now();
    submit_and_wait(c, echo_task, c->inputs, BENCH_TASKS, "W1");
    return (bench_now() - t0) * 1e9 / BENCH_TASKS;
}

static double w2_map(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    cf_map *m;
    size_t index, expect = 0;
    void *v;
    int rc;
    double t0 = bench_now();
    check(cf_map_start(&m, c->ex, item_task, c->inputs, BENCH_TASKS, NULL), "W2 start");
    while ((rc = cf_map_next(m, &index, &v)) == 0) {
        if (index != expect || v != bench_item(c->inputs[index]))
            bench_die("W2: position %zu: wrong index or value", expect);
        expect++;
    }
    cf_map_free(m);
    double t = bench_now() - t0;
    if (rc != CF_EEND || expect != BENCH_TASKS)
        bench_die("W2: ended with %s after %zu items", cf_err_name(rc), expect);
    return t * 1e9 / BENCH_TASKS;
}

static double w3_ping_pong(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    double t0 = bench_now();
    for (size_t r = 0; r < BENCH_ROUNDS; r++) {
        cf_future *f;
        void *v = NULL;
        check(cf_submit(c->ex, echo_task, c->inputs[r], &f), "W3 submit");
        check(cf_future_result(f, CF_FOREVER, &v), "W3 result");
        if (v != c->inputs[r])
            bench_die("W3: round %zu returned a wrong value", r);
        cf_future_release(f);
    }
    return (bench_now() - t0) * 1e6 / BENCH_ROUNDS;
}

static void w4_parallel(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    submit_and_wait(c, cpu_task, c->cpu.args, c->cpu.ntasks, "W4");
}

static double w4_cpu(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    return bench_cpu_efficiency(&c->cpu, w4_parallel, c);
}

static void w1_report(void *p)
{
    (void)p;
    bench_where_report(&where, "W1", 0);
}

static void w3_report(void *p)
{
    (void)p;
    bench_where_report(&where, "W3", 0);
}

static double w5_idle(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    bench_latch_reset(&c->gate, (unsigned)c->workers);
    for (int i = 0; i < c->workers; i++)
        check(cf_submit(c->ex, gate_task, &c->gate, &c->futures[i]), "W5 submit");
    for (int i = 0; i < c->workers; i++) {
        int code = 0;
        const char *msg = NULL;
        if (cf_future_result(c->futures[i], CF_FOREVER, NULL) != 0) {
            cf_future_error(c->futures[i], &code, &msg);
            bench_die("W5: %s", msg != NULL ? msg : "gate task failed");
        }
        cf_future_release(c->futures[i]);
    }
    return bench_idle_percent(BENCH_IDLE_SECONDS);
}

int main(int argc, char **argv)
{
    bench_args args = bench_parse_args(argc, argv);
    bench_ctx c;
    cf_executor_opts opts;
    const bench_workload workloads[] = {
        {"W1", "ns/task", w1_submit_wait, 1, 0, NULL, w1_report},
        {"W2", "ns/item", w2_map, 1, 0, "cf_map_start + cf_map_next, default (adaptive) chunks",
         NULL},
        {"W3", "us/round", w3_ping_pong, 1, 0, NULL, w3_report},
        {"W4", "%", w4_cpu, 1, 0, NULL, NULL},
        {"W5", "%core", w5_idle, 0, BENCH_IDLE_MAX_REPS, NULL, NULL},
    };

    on_submitter = 1;
    memset(&c, 0, sizeof c);
    c.workers = args.workers;
    c.cpu.workers = args.workers;
    c.inputs = bench_inputs(BENCH_TASKS);
    c.futures = (cf_future **)bench_alloc(BENCH_TASKS, sizeof *c.futures);
    bench_latch_init(&c.gate);

    cf_executor_opts_init(&opts);
    opts.workers = args.workers;
    opts.name = "bench";
    check(cf_executor_new(&c.ex, CF_BACKEND_THREADS, &opts), "cf_executor_new");
    bench_info("version", "%s", cf_version());
    bench_info("workers", "%d", cf_executor_workers(c.ex));

    bench_run(&args, workloads, sizeof workloads / sizeof workloads[0], &c);

    cf_executor_free(c.ex);
    bench_latch_destroy(&c.gate);
    bench_cpu_free(&c.cpu);
    free(c.futures);
    free(c.inputs);
    return 0;
}
