/*
 * bench_cfutures.c -- the workloads of README.md on cfutures: the five thread-pool ones
 * (W1..W5, by default) and, with --processes, the four process-pool ones (P1..P4).
 *
 * Threads: one executor with --workers threads serves every workload, so the timed rounds
 * see started workers and recycled memory.  The main thread submits and waits; W1 and W3
 * count where their tasks ran (slot 0: the submitting thread, slot 1 + i: worker i), as
 * the OpenMP and oneTBB programs do, so the report shows whether a waiting submitter ran
 * tasks itself.  Each result is checked against its input, inside the timed region where
 * reading it is part of the workload (W1, W2, W3) and after it otherwise.
 *
 * Processes: one process pool with --workers worker processes serves P1..P4; its workers
 * are this program re-executed, which is why main() calls cf_init() before anything else
 * (in a worker it never returns).  Tasks are bytes tasks named with CF_FUNCTION.  Every
 * result is read and checked inside the timed region: its length and the task index it
 * carries, and for P3 a sample of its bytes, so no task can be skipped or its copy elided.
 *
 * Locking: none of its own; each where-slot is written by one thread only, and reading a
 * future's result orders its task's writes before the report reads them.  W5's latch is
 * described in bench_common.h.
 * Invariants: c->futures has room for BENCH_TASKS futures, more than W4 (100 per worker)
 * or W5 (one per worker) submit at once since workers <= BENCH_MAX_THREADS; the process
 * context's futures have room for P_TASKS, more than P3 or P4 submit; and every workload
 * releases each future it created before it returns.
 */
#include "bench_common.h"

#include "cfutures.h"

#include <inttypes.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <unistd.h>

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

/* The pool of a run, with the facts run.py records about it. */
static cf_executor *new_executor(cf_backend backend, int workers)
{
    cf_executor_opts opts;
    cf_executor_opts_init(&opts);
    opts.workers = workers;
    opts.name = "bench";
    cf_executor *ex = NULL;
    check(cf_executor_new(&ex, backend, &opts), "cf_executor_new");
    bench_info("version", "%s", cf_version());
    bench_info("workers", "%d", cf_executor_workers(ex));
    return ex;
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

/* Submits fn(args[i]) for i < n into c->futures, then (with wait_all, after cf_wait for
 * all of them) takes each result in order and checks that its value is args[i]. */
static void submit_and_wait(bench_ctx *c, cf_fn fn, void *const *args, size_t n,
                            bool wait_all, const char *what)
{
    for (size_t i = 0; i < n; i++)
        check(cf_submit(c->ex, fn, args[i], &c->futures[i]), what);
    if (wait_all)
        check(cf_wait(c->futures, n, CF_ALL_COMPLETED, CF_FOREVER, NULL, NULL, NULL, NULL),
              what);
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
    submit_and_wait(c, echo_task, c->inputs, BENCH_TASKS, false, "W1");
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
    /* Waiting for all first, as the peers do (a latch, taskwait, task_group::wait): a
     * result() that sleeps on each 1 ms task in turn takes a wake-up per task, and on a
     * machine with as many CPUs as workers each wake-up takes a core from a worker. */
    submit_and_wait(c, cpu_task, c->cpu.args, c->cpu.ntasks, true, "W4");
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

static int run_threads(const bench_args *args)
{
    bench_ctx c;
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
    c.workers = args->workers;
    c.cpu.workers = args->workers;
    c.inputs = bench_inputs(BENCH_TASKS);
    c.futures = (cf_future **)bench_alloc(BENCH_TASKS, sizeof *c.futures);
    bench_latch_init(&c.gate);

    c.ex = new_executor(CF_BACKEND_THREADS, args->workers);

    bench_run(args, workloads, sizeof workloads / sizeof workloads[0], &c);

    cf_executor_free(c.ex);
    bench_latch_destroy(&c.gate);
    bench_cpu_report(&c.cpu);
    bench_cpu_free(&c.cpu);
    free(c.futures);
    free(c.inputs);
    return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Process pool: P1..P4                                                                 */
/* ------------------------------------------------------------------------------------ */

/* Workload sizes (py_processes.py states its own, scaled down where Python is slow). */
#define P_TASKS 100000u                /* P1 tasks */
#define P_ROUNDS 10000u                /* P2 round trips */
#define P_BIG_BYTES ((size_t)1 << 20)  /* P3: bytes in, and bytes out, per task */
#define P_BIG_TASKS 1000u              /* P3 tasks */
#define P_BIG_SAMPLE 4096u             /* P3: one result byte in this many is checked */
#define P_CPU_TASK_SECONDS 10e-3       /* P4: work per task */
#define P_CPU_TASKS_PER_WORKER 100u    /* P4 */
#define P_CPU_MAX_REPS 3               /* P4: each repetition costs about 3 s on 2 workers */

typedef struct pbench_ctx {
    int workers;
    cf_executor *ex;
    cf_future **futures;  /* P_TASKS, reused by every workload */
    uint8_t *big;         /* P3's input: P_BIG_BYTES of a pattern, the task index first */
    double big_in_gbs[BENCH_MAX_REPS + 1]; /* P3: input-only GB/s of each round */
    int big_rounds;
    uint64_t cpu_iters;   /* P4: bench_spin iterations of one task, 0 until calibrated */
    size_t cpu_tasks;
    uint64_t *cpu_expect; /* P4: each task's output from the sequential run */
} pbench_ctx;

/* P1, P2, P3: the result is a copy of the input. */
static int echo_bytes(const void *in, size_t len, cf_ctx *ctx)
{
    if (cf_ctx_set_output(ctx, in, len) != 0)
        return cf_fail(ctx, 1, "no memory for a result of %zu bytes", len);
    return 0;
}
CF_FUNCTION(p_echo, echo_bytes);

/* P4's input: the work of one task. */
typedef struct p_cpu_job {
    uint64_t iters;
    uint64_t seed;
} p_cpu_job;

/* P4: the result is bench_spin's 8-byte output. */
static int spin_bytes(const void *in, size_t len, cf_ctx *ctx)
{
    p_cpu_job job;
    uint64_t out;
    if (len != sizeof job)
        return cf_fail(ctx, 1, "spin: %zu bytes of input, not %zu", len, sizeof job);
    memcpy(&job, in, sizeof job);
    out = bench_spin(job.iters, job.seed);
    if (cf_ctx_set_output(ctx, &out, sizeof out) != 0)
        return cf_fail(ctx, 1, "no memory for the result");
    return 0;
}
CF_FUNCTION(p_spin, spin_bytes);

/* Waits for task `i` of workload `what` and gives its result, which must be `len` bytes
 * long and start with the 8 bytes at `head`. */
static const uint8_t *p_result(cf_future *f, const char *what, size_t i, const void *head,
                               size_t len)
{
    const void *data = NULL;
    size_t got = 0;
    int rc = cf_future_bytes(f, CF_FOREVER, &data, &got);
    if (rc != 0) {
        int code = 0;
        const char *msg = NULL;
        cf_future_error(f, &code, &msg);
        bench_die("%s: task %zu: %s (code %d%s%s)", what, i, cf_strerror(rc), code,
                  msg != NULL ? ": " : "", msg != NULL ? msg : "");
    }
    if (got != len || memcmp(data, head, sizeof(uint64_t)) != 0)
        bench_die("%s: task %zu returned a wrong result (%zu bytes)", what, i, got);
    return (const uint8_t *)data;
}

static double p1_submit_wait(void *p)
{
    pbench_ctx *c = (pbench_ctx *)p;
    double t0 = bench_now();
    for (uint64_t i = 0; i < P_TASKS; i++)
        check(cf_submit_bytes(c->ex, &p_echo, &i, sizeof i, &c->futures[i]), "P1 submit");
    for (uint64_t i = 0; i < P_TASKS; i++) {
        p_result(c->futures[i], "P1", i, &i, sizeof i);
        cf_future_release(c->futures[i]);
    }
    return (bench_now() - t0) * 1e6 / P_TASKS;
}

static double p2_ping_pong(void *p)
{
    pbench_ctx *c = (pbench_ctx *)p;
    double t0 = bench_now();
    for (uint64_t r = 0; r < P_ROUNDS; r++) {
        cf_future *f;
        check(cf_submit_bytes(c->ex, &p_echo, &r, sizeof r, &f), "P2 submit");
        p_result(f, "P2", r, &r, sizeof r);
        cf_future_release(f);
    }
    return (bench_now() - t0) * 1e6 / P_ROUNDS;
}

/* One round: every task gets the pattern with its index in the first 8 bytes (the input
 * is copied at submit, so the buffer is reused); each result is checked at its index and
 * at one byte in P_BIG_SAMPLE, beyond the index.  Returns (in + out bytes) / time. */
static double p3_big(void *p)
{
    pbench_ctx *c = (pbench_ctx *)p;
    double t0 = bench_now();
    for (uint64_t i = 0; i < P_BIG_TASKS; i++) {
        memcpy(c->big, &i, sizeof i);
        check(cf_submit_bytes(c->ex, &p_echo, c->big, P_BIG_BYTES, &c->futures[i]),
              "P3 submit");
    }
    for (uint64_t i = 0; i < P_BIG_TASKS; i++) {
        const uint8_t *r = p_result(c->futures[i], "P3", i, &i, P_BIG_BYTES);
        for (size_t k = P_BIG_SAMPLE - 1; k < P_BIG_BYTES; k += P_BIG_SAMPLE)
            if (r[k] != c->big[k])
                bench_die("P3: task %" PRIu64 ": byte %zu differs from the input", i, k);
        cf_future_release(c->futures[i]);
    }
    double t = bench_now() - t0;
    double in_bytes = (double)P_BIG_TASKS * (double)P_BIG_BYTES;
    if (c->big_rounds < (int)(sizeof c->big_in_gbs / sizeof c->big_in_gbs[0]))
        c->big_in_gbs[c->big_rounds++] = in_bytes / t * 1e-9;
    return 2.0 * in_bytes / t * 1e-9;
}

static void p1_report(void *p)
{
    (void)p;
    bench_note("P1", "cf_submit_bytes of %u tasks (8 bytes in, the same 8 out), then "
               "cf_future_bytes of each in order", P_TASKS);
}

static void p2_report(void *p)
{
    (void)p;
    bench_note("P2", "cf_submit_bytes + cf_future_bytes of one 8-byte task, %u rounds",
               P_ROUNDS);
}

/* States P3's definition and the input-only figure of its timed rounds (the first round
 * recorded is the warm-up). */
static void p3_report(void *p)
{
    pbench_ctx *c = (pbench_ctx *)p;
    bench_note("P3", "%u tasks of %zu MiB in, %zu MiB out (a copy of the input), submitted "
               "then waited in order; figure = (input + output bytes) / wall time",
               P_BIG_TASKS, P_BIG_BYTES >> 20, P_BIG_BYTES >> 20);
    if (c->big_rounds > 1)
        bench_note("P3", "input bytes only: median %.3g GB/s",
                   bench_median(c->big_in_gbs + 1, c->big_rounds - 1));
}

/*
 * One P4 repetition: the tasks one after another in this process (T_sequential), then
 * through the pool (T_parallel), every output compared with the sequential one; returns
 * T_sequential / (workers * T_parallel) in percent.  The first call calibrates the work.
 */
static double p4_cpu(void *p)
{
    pbench_ctx *c = (pbench_ctx *)p;
    if (c->cpu_iters == 0) {
        double per_iter;
        c->cpu_iters = bench_spin_calibrate(P_CPU_TASK_SECONDS, &per_iter);
        c->cpu_tasks = (size_t)c->workers * P_CPU_TASKS_PER_WORKER;
        c->cpu_expect = (uint64_t *)bench_alloc(c->cpu_tasks, sizeof *c->cpu_expect);
        bench_note("P4", "%zu tasks of %.2f ms each (calibrated xorshift loop), %d worker "
                   "processes, cf_submit_bytes + cf_future_bytes", c->cpu_tasks,
                   (double)c->cpu_iters * per_iter * 1e3, c->workers);
    }
    double t0 = bench_now();
    for (size_t i = 0; i < c->cpu_tasks; i++)
        c->cpu_expect[i] = bench_spin(c->cpu_iters, i);
    double tseq = bench_now() - t0;
    t0 = bench_now();
    for (size_t i = 0; i < c->cpu_tasks; i++) {
        p_cpu_job job = {c->cpu_iters, i};
        check(cf_submit_bytes(c->ex, &p_spin, &job, sizeof job, &c->futures[i]), "P4 submit");
    }
    for (size_t i = 0; i < c->cpu_tasks; i++) {
        p_result(c->futures[i], "P4", i, &c->cpu_expect[i], sizeof(uint64_t));
        cf_future_release(c->futures[i]);
    }
    double tpar = bench_now() - t0;
    return 100.0 * tseq / ((double)c->workers * tpar);
}

/*
 * What the host charges for the two things a process pool cannot avoid and a thread pool
 * never pays: a page fault on fresh memory (every new shared mapping) and a system call
 * (every hand-off between processes).  Both vary widely between hosts, and P1-P3 with
 * them, so RESULTS.md records the figures beside the results.
 */
static void report_host_costs(void)
{
    enum { PAGES = 4096, ROUNDS = 5, CALLS = 100000 };
    const size_t page = 4096, len = PAGES * page;
    double fault_us[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        volatile uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
                                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            bench_die("mmap of %zu bytes failed", len);
        madvise((void *)m, len, MADV_NOHUGEPAGE); /* one fault per 4 KiB page */
        double t0 = bench_now();
        for (size_t i = 0; i < len; i += page)
            m[i] = 1;
        fault_us[r] = (bench_now() - t0) * 1e6 / PAGES;
        munmap((void *)m, len);
    }
    double t0 = bench_now();
    for (int i = 0; i < CALLS; i++)
        (void)getppid();
    double call_us = (bench_now() - t0) * 1e6 / CALLS;
    bench_info("host_costs", "a page fault on fresh memory %.2f us (median of %d rounds of "
               "%d pages), a system call (getppid) %.2f us", bench_median(fault_us, ROUNDS),
               ROUNDS, PAGES, call_us);
}

static int run_processes(const bench_args *args)
{
    pbench_ctx c;
    const bench_workload workloads[] = {
        {"P1", "us/task", p1_submit_wait, 1, 0, NULL, p1_report},
        {"P2", "us/round", p2_ping_pong, 1, 0, NULL, p2_report},
        {"P3", "GB/s", p3_big, 1, 0, NULL, p3_report},
        {"P4", "%", p4_cpu, 1, P_CPU_MAX_REPS, NULL, NULL},
    };

    memset(&c, 0, sizeof c);
    c.workers = args->workers;
    c.futures = (cf_future **)bench_alloc(P_TASKS, sizeof *c.futures);
    c.big = (uint8_t *)bench_alloc(P_BIG_BYTES, 1);
    for (size_t k = 0; k < P_BIG_BYTES; k++)
        c.big[k] = (uint8_t)(k * 251u + 7u);

    report_host_costs();
    c.ex = new_executor(CF_BACKEND_PROCESSES, args->workers);

    bench_run(args, workloads, sizeof workloads / sizeof workloads[0], &c);

    cf_executor_free(c.ex);
    free(c.cpu_expect);
    free(c.big);
    free(c.futures);
    return 0;
}

/* Takes --processes out of argv (bench_parse_args knows only the common options) and
 * says whether it was there. */
static int take_processes_flag(int *argc, char **argv)
{
    int found = 0, out = 1;
    for (int i = 1; i < *argc; i++) {
        if (strcmp(argv[i], "--processes") == 0)
            found = 1;
        else
            argv[out++] = argv[i];
    }
    *argc = out;
    argv[out] = NULL;
    return found;
}

int main(int argc, char **argv)
{
    /* First: in a process-pool worker this runs the worker and never returns. */
    check(cf_init(&argc, &argv), "cf_init");
    int processes = take_processes_flag(&argc, argv);
    bench_args args = bench_parse_args(argc, argv);
    return processes ? run_processes(&args) : run_threads(&args);
}
