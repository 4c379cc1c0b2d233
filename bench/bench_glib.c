/*
 * bench_glib.c -- the workloads on GLib's GThreadPool (W1, W3, W4, W5; GLib has no map).
 *
 * One exclusive pool of --workers threads serves every workload.  A GThreadPool runs one
 * function for the whole pool, so c->task says what the current workload's tasks do; it is
 * set before the workload pushes anything (g_thread_pool_push locks the pool's queue, which
 * publishes it to the workers).  GThreadPool has no per-task result or completion: a task
 * writes its result into c->results and counts down c->done, and the main thread waits on
 * that latch -- the nearest equivalent of waiting on futures.  W3 hands each result back
 * through a GAsyncQueue, as a GLib program would.
 *
 * Locking: GLib's own; the latches are described in bench_common.h.
 * Invariants: c->task changes only while no task is queued or running.
 */
#include "bench_common.h"

#include <glib.h>

/* Far beyond run.py's per-program limit: only a lost task makes a wait last that long. */
#define DONE_TIMEOUT 600.0

typedef struct bench_ctx bench_ctx;

struct bench_ctx {
    int workers;
    GThreadPool *pool;
    void (*task)(bench_ctx *c, void *data); /* what the current workload's tasks do */
    void **inputs;                          /* BENCH_TASKS inputs */
    void **results;                         /* W1's results, by input index */
    GAsyncQueue *reply;                     /* W3's way back */
    bench_latch done;                       /* counts finished tasks */
    bench_latch gate;                       /* W5 */
    int gate_failed;
    bench_cpu cpu;
};

static void pool_fn(gpointer data, gpointer user_data)
{
    bench_ctx *c = (bench_ctx *)user_data;
    c->task(c, data);
}

static void push(bench_ctx *c, void *data)
{
    GError *err = NULL;
    if (!g_thread_pool_push(c->pool, data, &err))
        bench_die("g_thread_pool_push: %s", err->message);
}

/* Pushes n tasks of kind `task` with data args[i] and waits until all have finished. */
static void push_and_wait(bench_ctx *c, void (*task)(bench_ctx *, void *), void *const *args,
                          size_t n, const char *what)
{
    c->task = task;
    bench_latch_reset(&c->done, (unsigned)n);
    for (size_t i = 0; i < n; i++)
        push(c, args[i]);
    if (bench_latch_wait(&c->done, DONE_TIMEOUT) != 0)
        bench_die("%s: tasks did not finish", what);
}

static void echo_task(bench_ctx *c, void *data)
{
    c->results[bench_input_index(data)] = data;
    bench_latch_count_down(&c->done);
}

static double w1_submit_wait(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    double t0 = bench_now();
    push_and_wait(c, echo_task, c->inputs, BENCH_TASKS, "W1");
    double t = bench_now() - t0;
    for (size_t i = 0; i < BENCH_TASKS; i++)
        if (c->results[i] != c->inputs[i])
            bench_die("W1: task %zu did not deliver its result", i);
    memset(c->results, 0, BENCH_TASKS * sizeof *c->results);
    return t * 1e9 / BENCH_TASKS;
}

static void reply_task(bench_ctx *c, void *data)
{
    g_async_queue_push(c->reply, data);
}

static double w3_ping_pong(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    c->task = reply_task;
    double t0 = bench_now();
    for (size_t r = 0; r < BENCH_ROUNDS; r++) {
        push(c, c->inputs[r]);
        if (g_async_queue_pop(c->reply) != c->inputs[r])
            bench_die("W3: round %zu returned a wrong value", r);
    }
    return (bench_now() - t0) * 1e6 / BENCH_ROUNDS;
}

static void cpu_task(bench_ctx *c, void *data)
{
    bench_cpu_run_job(data);
    bench_latch_count_down(&c->done);
}

static void w4_parallel(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    push_and_wait(c, cpu_task, c->cpu.args, c->cpu.ntasks, "W4");
}

static double w4_cpu(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    return bench_cpu_efficiency(&c->cpu, w4_parallel, c);
}

static void gate_task(bench_ctx *c, void *data)
{
    (void)data;
    if (bench_latch_arrive_and_wait(&c->gate, BENCH_GATE_TIMEOUT) != 0)
        __atomic_store_n(&c->gate_failed, 1, __ATOMIC_RELAXED);
    bench_latch_count_down(&c->done);
}

static double w5_idle(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    bench_latch_reset(&c->gate, (unsigned)c->workers);
    push_and_wait(c, gate_task, c->inputs, (size_t)c->workers, "W5");
    if (__atomic_load_n(&c->gate_failed, __ATOMIC_RELAXED))
        bench_die("W5: not every worker took a task within %.0f s", BENCH_GATE_TIMEOUT);
    return bench_idle_percent(BENCH_IDLE_SECONDS);
}

int main(int argc, char **argv)
{
    bench_args args = bench_parse_args(argc, argv);
    bench_ctx c;
    GError *err = NULL;
    const bench_workload workloads[] = {
        {"W1", "ns/task", w1_submit_wait, 1, 0,
         "no per-task result in GThreadPool: a task stores its result in an array slot and "
         "counts down a latch the caller waits on",
         NULL},
        {"W3", "us/round", w3_ping_pong, 1, 0,
         "g_thread_pool_push, result handed back through a GAsyncQueue", NULL},
        {"W4", "%", w4_cpu, 1, 0, NULL, NULL},
        {"W5", "%core", w5_idle, 0, BENCH_IDLE_MAX_REPS, NULL, NULL},
    };

    memset(&c, 0, sizeof c);
    c.workers = args.workers;
    c.cpu.workers = args.workers;
    c.inputs = bench_inputs(BENCH_TASKS);
    c.results = (void **)bench_alloc(BENCH_TASKS, sizeof *c.results);
    c.reply = g_async_queue_new();
    bench_latch_init(&c.done);
    bench_latch_init(&c.gate);
    c.pool = g_thread_pool_new(pool_fn, &c, args.workers, TRUE, &err);
    if (c.pool == NULL)
        bench_die("g_thread_pool_new: %s", err->message);
    bench_info("version", "%u.%u.%u", glib_major_version, glib_minor_version,
               glib_micro_version);
    bench_info("workers", "%u", g_thread_pool_get_max_threads(c.pool));

    bench_run(&args, workloads, sizeof workloads / sizeof workloads[0], &c);

    g_thread_pool_free(c.pool, FALSE, TRUE);
    g_async_queue_unref(c.reply);
    bench_latch_destroy(&c.gate);
    bench_latch_destroy(&c.done);
    bench_cpu_report(&c.cpu);
    bench_cpu_free(&c.cpu);
    free(c.results);
    free(c.inputs);
    return 0;
}
