/*
 * bench_tbb.cpp -- the workloads on oneTBB: task_group for W1, W3, W4, W5, parallel_for
 * for W2.
 *
 * tbb::global_control caps the parallelism at --workers for the whole run.  That count
 * includes the main thread, which runs tasks while it waits in task_group::wait(): TBB
 * starts workers - 1 threads of its own, and the submitting thread is one of the workers
 * (as in OpenMP).  task_group tasks return nothing: a task writes its result into an array
 * slot.  Because the waiting submitter usually takes its own task back, W1 and W3 count
 * which thread ran each task and report the share the submitter ran.
 *
 * Locking: TBB's own; tasks write disjoint slots, and task_group::wait() orders those
 * writes before the main thread reads them.
 * Invariants: c->where counts the tasks of the current workload (W1 or W3), warm-up round
 * included; its report clears it.
 */
#include "bench_common.h"

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_for.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#include <oneapi/tbb/version.h>

#include <atomic>

namespace {

struct bench_ctx {
    int workers = 0;
    void **inputs = nullptr;  // BENCH_TASKS inputs
    void **results = nullptr; // results by input index
    bench_cpu cpu{};
    bench_latch gate{};
    std::atomic<bool> gate_failed{false};
    bench_where where{};
    int submitter = -1; // the main thread's index in the arena, known once it ran a task
};

int thread_index()
{
    return tbb::this_task_arena::current_thread_index();
}

void check_results(bench_ctx *c, size_t n, const char *what)
{
    for (size_t i = 0; i < n; i++) {
        if (c->results[i] != c->inputs[i])
            bench_die("%s: task %zu did not deliver its result", what, i);
        c->results[i] = nullptr;
    }
}

double w1_submit_wait(void *p)
{
    bench_ctx *c = static_cast<bench_ctx *>(p);
    tbb::task_group tg;
    double t0 = bench_now();
    for (size_t i = 0; i < BENCH_TASKS; i++)
        tg.run([c, i] {
            bench_where_count(&c->where, thread_index());
            c->results[i] = c->inputs[i];
        });
    tg.wait();
    double t = bench_now() - t0;
    c->submitter = thread_index();
    check_results(c, BENCH_TASKS, "W1");
    return t * 1e9 / BENCH_TASKS;
}

double w2_map(void *p)
{
    bench_ctx *c = static_cast<bench_ctx *>(p);
    bench_item_fn fn = bench_item_callee();
    void **in = c->inputs, **out = c->results;
    double t0 = bench_now();
    tbb::parallel_for(tbb::blocked_range<size_t>(0, BENCH_TASKS),
                      [in, out, fn](const tbb::blocked_range<size_t> &r) {
                          for (size_t i = r.begin(); i != r.end(); i++)
                              out[i] = fn(in[i]);
                      });
    double t = bench_now() - t0;
    for (size_t i = 0; i < BENCH_TASKS; i++) {
        if (out[i] != bench_item(in[i]))
            bench_die("W2: item %zu has a wrong value", i);
        out[i] = nullptr;
    }
    return t * 1e9 / BENCH_TASKS;
}

double w3_ping_pong(void *p)
{
    bench_ctx *c = static_cast<bench_ctx *>(p);
    tbb::task_group tg;
    double t0 = bench_now();
    for (size_t r = 0; r < BENCH_ROUNDS; r++) {
        tg.run([c, r] {
            bench_where_count(&c->where, thread_index());
            c->results[r] = c->inputs[r];
        });
        tg.wait();
        if (c->results[r] != c->inputs[r])
            bench_die("W3: round %zu returned a wrong value", r);
    }
    double t = bench_now() - t0;
    c->submitter = thread_index();
    check_results(c, BENCH_ROUNDS, "W3");
    return t * 1e6 / BENCH_ROUNDS;
}

void w4_parallel(void *p)
{
    bench_ctx *c = static_cast<bench_ctx *>(p);
    tbb::task_group tg;
    for (size_t i = 0; i < c->cpu.ntasks; i++)
        tg.run([c, i] { bench_cpu_run_job(&c->cpu.jobs[i]); });
    tg.wait();
}

double w4_cpu(void *p)
{
    bench_ctx *c = static_cast<bench_ctx *>(p);
    return bench_cpu_efficiency(&c->cpu, w4_parallel, c);
}

double w5_idle(void *p)
{
    bench_ctx *c = static_cast<bench_ctx *>(p);
    tbb::task_group tg;
    bench_latch_reset(&c->gate, static_cast<unsigned>(c->workers));
    for (int i = 0; i < c->workers; i++)
        tg.run([c] {
            if (bench_latch_arrive_and_wait(&c->gate, BENCH_GATE_TIMEOUT) != 0)
                c->gate_failed = true;
        });
    tg.wait();
    if (c->gate_failed)
        bench_die("W5: not every worker took a task within %.0f s", BENCH_GATE_TIMEOUT);
    return bench_idle_percent(BENCH_IDLE_SECONDS);
}

void w1_report(void *p)
{
    bench_ctx *c = static_cast<bench_ctx *>(p);
    bench_where_report(&c->where, "W1", c->submitter);
}

void w3_report(void *p)
{
    bench_ctx *c = static_cast<bench_ctx *>(p);
    bench_where_report(&c->where, "W3", c->submitter);
}

} // namespace

int main(int argc, char **argv)
{
    bench_args args = bench_parse_args(argc, argv);
    tbb::global_control limit(tbb::global_control::max_allowed_parallelism,
                              static_cast<size_t>(args.workers));
    const bench_workload workloads[] = {
        {"W1", "ns/task", w1_submit_wait, 1, 0,
         "task_group::run + wait; no per-task result (a task writes an array slot); the "
         "submitting thread is one of the workers",
         w1_report},
        {"W2", "ns/item", w2_map, 1, 0,
         "parallel_for over a blocked_range (auto partitioner) into an array", nullptr},
        {"W3", "us/round", w3_ping_pong, 1, 0, "task_group::run + wait", w3_report},
        {"W4", "%", w4_cpu, 1, 0, nullptr, nullptr},
        {"W5", "%core", w5_idle, 0, BENCH_IDLE_MAX_REPS, nullptr, nullptr},
    };
    auto *c = new bench_ctx;

    c->workers = args.workers;
    c->cpu.workers = args.workers;
    c->inputs = bench_inputs(BENCH_TASKS);
    c->results = static_cast<void **>(bench_alloc(BENCH_TASKS, sizeof *c->results));
    bench_latch_init(&c->gate);
    bench_info("version", "%s", TBB_runtime_version());
    bench_info("workers", "%zu",
               tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism));

    bench_run(&args, workloads, sizeof workloads / sizeof workloads[0], c);

    bench_latch_destroy(&c->gate);
    bench_cpu_report(&c->cpu);
    bench_cpu_free(&c->cpu);
    free(c->results);
    free(c->inputs);
    delete c;
    return 0;
}
