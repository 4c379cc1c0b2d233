/*
 * bench_openmp.c -- the workloads on OpenMP (libgomp): tasks for W1, W3, W4, a parallel
 * for loop for W2, a parallel region for W5.
 *
 * Every workload is one parallel region of --workers threads.  For the task workloads one
 * thread (inside `single`) creates the tasks and then waits in `taskwait`, where it runs
 * queued tasks itself, so unlike the other libraries the submitting thread is one of the
 * workers.  OpenMP tasks return nothing: a task writes its result into an array slot.
 * Because the submitter may run a task itself (libgomp also runs a new task at once when
 * many are queued), W1 and W3 count which thread ran each task and report the share the
 * submitter ran.
 *
 * Locking: OpenMP's own; tasks write disjoint slots, and `taskwait` / the end of the
 * region order those writes before the main thread reads them.
 * Invariants: c->where counts the tasks of the current workload (W1 or W3), warm-up round
 * included; its report clears it.
 */
#include "bench_common.h"

#include <omp.h>

typedef struct bench_ctx {
    int workers;
    void **inputs;  /* BENCH_TASKS inputs */
    void **results; /* results by input index */
    bench_cpu cpu;
    bench_latch gate;
    int gate_failed;
    bench_where where;
    int submitter; /* thread number of the task-creating thread */
} bench_ctx;

/* Checks and clears the first n results of a workload that copied inputs to results. */
static void check_results(bench_ctx *c, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        if (c->results[i] != c->inputs[i])
            bench_die("%s: task %zu did not deliver its result", what, i);
        c->results[i] = NULL;
    }
}

static double w1_submit_wait(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    double t0 = bench_now();
#pragma omp parallel num_threads(c->workers)
#pragma omp single
    {
        c->submitter = omp_get_thread_num();
        for (size_t i = 0; i < BENCH_TASKS; i++) {
#pragma omp task
            {
                bench_where_count(&c->where, omp_get_thread_num());
                c->results[i] = c->inputs[i];
            }
        }
#pragma omp taskwait
    }
    double t = bench_now() - t0;
    check_results(c, BENCH_TASKS, "W1");
    return t * 1e9 / BENCH_TASKS;
}

static double w2_map(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    bench_item_fn fn = bench_item_callee();
    void **in = c->inputs, **out = c->results;
    double t0 = bench_now();
#pragma omp parallel for num_threads(c->workers)
    for (size_t i = 0; i < BENCH_TASKS; i++)
        out[i] = fn(in[i]);
    double t = bench_now() - t0;
    for (size_t i = 0; i < BENCH_TASKS; i++) {
        if (out[i] != bench_item(in[i]))
            bench_die("W2: item %zu has a wrong value", i);
        out[i] = NULL;
    }
    return t * 1e9 / BENCH_TASKS;
}

static double w3_ping_pong(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    double t0 = bench_now();
#pragma omp parallel num_threads(c->workers)
#pragma omp single
    {
        c->submitter = omp_get_thread_num();
        for (size_t r = 0; r < BENCH_ROUNDS; r++) {
#pragma omp task
            {
                bench_where_count(&c->where, omp_get_thread_num());
                c->results[r] = c->inputs[r];
            }
#pragma omp taskwait
            if (c->results[r] != c->inputs[r])
                bench_die("W3: round %zu returned a wrong value", r);
        }
    }
    double t = bench_now() - t0;
    check_results(c, BENCH_ROUNDS, "W3");
    return t * 1e6 / BENCH_ROUNDS;
}

static void w4_parallel(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
#pragma omp parallel num_threads(c->workers)
#pragma omp single
    {
        for (size_t i = 0; i < c->cpu.ntasks; i++) {
#pragma omp task
            bench_cpu_run_job(&c->cpu.jobs[i]);
        }
#pragma omp taskwait
    }
}

static double w4_cpu(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    return bench_cpu_efficiency(&c->cpu, w4_parallel, c);
}

static double w5_idle(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    bench_latch_reset(&c->gate, (unsigned)c->workers);
#pragma omp parallel num_threads(c->workers)
    if (bench_latch_arrive_and_wait(&c->gate, BENCH_GATE_TIMEOUT) != 0)
        __atomic_store_n(&c->gate_failed, 1, __ATOMIC_RELAXED);
    if (__atomic_load_n(&c->gate_failed, __ATOMIC_RELAXED))
        bench_die("W5: the parallel region did not get %d threads", c->workers);
    return bench_idle_percent(BENCH_IDLE_SECONDS);
}

static void w1_report(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    bench_where_report(&c->where, "W1", c->submitter);
}

static void w3_report(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    bench_where_report(&c->where, "W3", c->submitter);
}

int main(int argc, char **argv)
{
    bench_args args = bench_parse_args(argc, argv);
    bench_ctx *c = (bench_ctx *)bench_alloc(1, sizeof *c);
    const bench_workload workloads[] = {
        {"W1", "ns/task", w1_submit_wait, 1, 0,
         "omp task inside single + taskwait; no per-task result (a task writes an array "
         "slot); the submitting thread is one of the workers",
         w1_report},
        {"W2", "ns/item", w2_map, 1, 0, "omp parallel for (default schedule) into an array",
         NULL},
        {"W3", "us/round", w3_ping_pong, 1, 0, "omp task + taskwait inside single", w3_report},
        {"W4", "%", w4_cpu, 1, 0, NULL, NULL},
        {"W5", "%core", w5_idle, 0, BENCH_IDLE_MAX_REPS, NULL, NULL},
    };

    c->workers = args.workers;
    c->cpu.workers = args.workers;
    c->inputs = bench_inputs(BENCH_TASKS);
    c->results = (void **)bench_alloc(BENCH_TASKS, sizeof *c->results);
    bench_latch_init(&c->gate);
    omp_set_dynamic(0);
    bench_info("version", "_OPENMP %d (libgomp of gcc %d.%d)", _OPENMP, __GNUC__,
               __GNUC_MINOR__);
    bench_info("workers", "%d", args.workers);

    bench_run(&args, workloads, sizeof workloads / sizeof workloads[0], c);

    bench_latch_destroy(&c->gate);
    bench_cpu_report(&c->cpu);
    bench_cpu_free(&c->cpu);
    free(c->results);
    free(c->inputs);
    free(c);
    return 0;
}
