/*
 * bench_libuv.c -- the workloads on libuv's thread pool, uv_queue_work (W1, W3, W4, W5;
 * libuv has no map).
 *
 * libuv's pool is fed from a loop thread and reports each completion back to it: the work
 * callback runs on a pool thread, the after-work callback on the loop thread, which is the
 * result delivery the other libraries' futures provide.  So the main thread is the loop
 * thread: it queues the work and runs the loop until every after-work callback has run.
 * W3's round trip chains inside the loop: each after-work callback queues the next round,
 * so one round is loop thread -> pool thread -> loop thread, the same path as a submit +
 * wait elsewhere, without a uv_run() start and stop in every round.  UV_THREADPOOL_SIZE is
 * set to --workers before the pool's first use (libuv reads it once).
 *
 * Locking: libuv's own; W5's latch is described in bench_common.h.
 * Invariants: every request's data points to the context; a request's index in c->reqs is
 * its input's index; a workload returns only after uv_run() found no pending request.
 */
#include "bench_common.h"

#include <uv.h>

typedef struct bench_ctx {
    int workers;
    uv_loop_t loop;
    uv_work_t *reqs;   /* BENCH_TASKS requests, reused by every workload */
    void **inputs;     /* BENCH_TASKS inputs */
    void **results;    /* written by work callbacks, read by after-work callbacks */
    size_t completed;  /* after-work callbacks run in this workload */
    size_t rounds_left; /* W3 */
    bench_cpu cpu;
    bench_latch gate;
    int gate_failed;
} bench_ctx;

static size_t req_index(const uv_work_t *req)
{
    const bench_ctx *c = (const bench_ctx *)req->data;
    return (size_t)(req - c->reqs);
}

static void queue(bench_ctx *c, size_t i, uv_work_cb work, uv_after_work_cb after)
{
    int rc = uv_queue_work(&c->loop, &c->reqs[i], work, after);
    if (rc != 0)
        bench_die("uv_queue_work: %s", uv_strerror(rc));
}

/* Runs the loop until every queued request's after-work callback has run. */
static void run_loop(bench_ctx *c, size_t expect, const char *what)
{
    int rc = uv_run(&c->loop, UV_RUN_DEFAULT);
    if (rc != 0 || c->completed != expect)
        bench_die("%s: loop ended with %zu of %zu requests completed", what, c->completed,
                  expect);
}

static void echo_work(uv_work_t *req)
{
    bench_ctx *c = (bench_ctx *)req->data;
    size_t i = req_index(req);
    c->results[i] = c->inputs[i];
}

static void echo_after(uv_work_t *req, int status)
{
    bench_ctx *c = (bench_ctx *)req->data;
    size_t i = req_index(req);
    if (status != 0 || c->results[i] != c->inputs[i])
        bench_die("task %zu: status %d or wrong result", i, status);
    c->results[i] = NULL;
    c->completed++;
}

static double w1_submit_wait(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    c->completed = 0;
    double t0 = bench_now();
    for (size_t i = 0; i < BENCH_TASKS; i++)
        queue(c, i, echo_work, echo_after);
    run_loop(c, BENCH_TASKS, "W1");
    return (bench_now() - t0) * 1e9 / BENCH_TASKS;
}

static void pong_after(uv_work_t *req, int status)
{
    bench_ctx *c = (bench_ctx *)req->data;
    echo_after(req, status);
    if (--c->rounds_left > 0)
        queue(c, req_index(req), echo_work, pong_after);
}

static double w3_ping_pong(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    c->completed = 0;
    c->rounds_left = BENCH_ROUNDS;
    double t0 = bench_now();
    queue(c, 0, echo_work, pong_after);
    run_loop(c, BENCH_ROUNDS, "W3");
    return (bench_now() - t0) * 1e6 / BENCH_ROUNDS;
}

static void cpu_work(uv_work_t *req)
{
    bench_ctx *c = (bench_ctx *)req->data;
    bench_cpu_run_job(&c->cpu.jobs[req_index(req)]);
}

static void count_after(uv_work_t *req, int status)
{
    bench_ctx *c = (bench_ctx *)req->data;
    if (status != 0)
        bench_die("task %zu: status %d", req_index(req), status);
    c->completed++;
}

static void w4_parallel(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    c->completed = 0;
    for (size_t i = 0; i < c->cpu.ntasks; i++)
        queue(c, i, cpu_work, count_after);
    run_loop(c, c->cpu.ntasks, "W4");
}

static double w4_cpu(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    return bench_cpu_efficiency(&c->cpu, w4_parallel, c);
}

static void gate_work(uv_work_t *req)
{
    bench_ctx *c = (bench_ctx *)req->data;
    if (bench_latch_arrive_and_wait(&c->gate, BENCH_GATE_TIMEOUT) != 0)
        __atomic_store_n(&c->gate_failed, 1, __ATOMIC_RELAXED);
}

static double w5_idle(void *p)
{
    bench_ctx *c = (bench_ctx *)p;
    c->completed = 0;
    bench_latch_reset(&c->gate, (unsigned)c->workers);
    for (size_t i = 0; i < (size_t)c->workers; i++)
        queue(c, i, gate_work, count_after);
    run_loop(c, (size_t)c->workers, "W5");
    if (__atomic_load_n(&c->gate_failed, __ATOMIC_RELAXED))
        bench_die("W5: not every worker took a task within %.0f s", BENCH_GATE_TIMEOUT);
    return bench_idle_percent(BENCH_IDLE_SECONDS);
}

int main(int argc, char **argv)
{
    bench_args args = bench_parse_args(argc, argv);
    bench_ctx c;
    char size[16];
    const bench_workload workloads[] = {
        {"W1", "ns/task", w1_submit_wait, 1, 0,
         "uv_queue_work from the loop thread; the result is read in the after-work callback "
         "on the loop thread",
         NULL},
        {"W3", "us/round", w3_ping_pong, 1, 0,
         "each after-work callback queues the next round: loop thread -> pool thread -> "
         "loop thread",
         NULL},
        {"W4", "%", w4_cpu, 1, 0, NULL, NULL},
        {"W5", "%core", w5_idle, 0, BENCH_IDLE_MAX_REPS, NULL, NULL},
    };

    snprintf(size, sizeof size, "%d", args.workers);
    if (setenv("UV_THREADPOOL_SIZE", size, 1) != 0)
        bench_die("setenv: %s", strerror(errno));

    memset(&c, 0, sizeof c);
    c.workers = args.workers;
    c.cpu.workers = args.workers;
    c.inputs = bench_inputs(BENCH_TASKS);
    c.results = (void **)bench_alloc(BENCH_TASKS, sizeof *c.results);
    c.reqs = (uv_work_t *)bench_alloc(BENCH_TASKS, sizeof *c.reqs);
    for (size_t i = 0; i < BENCH_TASKS; i++)
        c.reqs[i].data = &c;
    bench_latch_init(&c.gate);
    if (uv_loop_init(&c.loop) != 0)
        bench_die("uv_loop_init failed");
    bench_info("version", "%s", uv_version_string());
    bench_info("workers", "%s", getenv("UV_THREADPOOL_SIZE"));

    bench_run(&args, workloads, sizeof workloads / sizeof workloads[0], &c);

    if (uv_loop_close(&c.loop) != 0)
        bench_die("uv_loop_close: requests left behind");
    bench_latch_destroy(&c.gate);
    bench_cpu_report(&c.cpu);
    bench_cpu_free(&c.cpu);
    free(c.reqs);
    free(c.results);
    free(c.inputs);
    return 0;
}
