/*
 * 11_task_crash.c -- a task that crashes its worker process, and the caller carrying on.
 *
 * Shows what processes buy over threads: isolation.  Five tasks go to a pool of two worker
 * processes; each sums the Collatz steps of a small range, except the third, which hits a
 * bug (raise(SIGSEGV), standing in for a write through a NULL pointer) and kills its
 * worker.  In a thread pool that would kill the whole program.  Here it costs one future:
 * that one reports CF_ELOST, and cf_future_error() gives the worker's wait status (which
 * signal killed it) and a message naming it, cf_future_pid() its pid.  The other tasks
 * succeed -- also any that were already waiting in the crashed worker behind the bad one:
 * they never started there, so the pool hands them to another worker -- and the pool
 * starts a new worker, so a task submitted after the crash runs too.
 *
 * Expected output (pids vary):
 *     task 1: 109730 steps (worker 4242)
 *     task 2: 111950 steps (worker 4242)
 *     task 3: lost its worker 4242, killed by signal 11 (Segmentation fault)
 *             message: worker lost: worker 4242 killed by signal 11 (Segmentation fault)
 *     task 4: 119635 steps (worker 4243)
 *     task 5: 121200 steps (worker 4243)
 *     after the crash: 119401 steps (worker 4244)
 *     Finished in 0.01 second(s)
 * Under AddressSanitizer or ThreadSanitizer the sanitizer's own handler catches the SIGSEGV
 * and ends the worker its own way (SIGABRT, or an exit status), so the cause printed differs.
 *
 * Exits non-zero if a call fails, the crash is not reported as a lost worker with its pid
 * and how it died, or another task does not return its sum.
 */
#include "example_util.h"

#include <signal.h>
#include <sys/wait.h>

#define TASKS 5
#define CRASHING_TASK 2 /* the third */
#define NUMBERS_PER_TASK 1000

/* The task: sums the Collatz steps of NUMBERS_PER_TASK numbers from the one it is given
 * (8 bytes); a start of 0 is the bug. */
static int sum_from_bytes(const void *in, size_t len, cf_ctx *ctx)
{
    uint64_t first;
    if (len != sizeof first)
        return cf_fail(ctx, EINVAL, "the input is %zu bytes, not %zu", len, sizeof first);
    memcpy(&first, in, sizeof first);
    if (first == 0)
        raise(SIGSEGV);
    uint64_t total = sum_steps(first, first + NUMBERS_PER_TASK);
    return cf_ctx_set_output(ctx, &total, sizeof total);
}

CF_FUNCTION(sum_from, sum_from_bytes);

/* Submits sum_from for the numbers from `first`. */
static cf_future *submit_sum(cf_executor *pool, uint64_t first)
{
    cf_future *f;
    check(cf_submit_bytes(pool, &sum_from, &first, sizeof first, &f), "cf_submit_bytes");
    return f;
}

/* Waits for a task that must succeed and prints its sum and worker. */
static void print_sum(const char *label, cf_future *f, uint64_t first)
{
    const void *data;
    size_t len;
    check(cf_future_bytes(f, CF_FOREVER, &data, &len), "cf_future_bytes");
    uint64_t total;
    expect(len == sizeof total, "a result is one 64-bit total");
    memcpy(&total, data, sizeof total);
    expect(total == sum_steps(first, first + NUMBERS_PER_TASK), "the task's sum is right");
    printf("%s: %" PRIu64 " steps (worker %ld)\n", label, total, cf_future_pid(f));
}

/* Waits for the crashed task and prints how its worker died. */
static void print_crash(const char *label, cf_future *f)
{
    expect(cf_future_wait(f, CF_FOREVER) == 0, "the crashed task is done");
    int status;
    const char *message;
    int rc = cf_future_error(f, &status, &message);
    expect(rc == CF_ELOST, "the crashed task reports a lost worker");
    long pid = cf_future_pid(f);
    if (WIFSIGNALED(status))
        printf("%s: lost its worker %ld, killed by signal %d (%s)\n", label, pid,
               WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        printf("%s: lost its worker %ld, which exited with status %d\n", label, pid,
               WEXITSTATUS(status));
    printf("        message: %s\n", message != NULL ? message : "(none)");

    char pid_text[32];
    snprintf(pid_text, sizeof pid_text, "%ld", pid);
    expect(pid > 0 && message != NULL && strstr(message, pid_text) != NULL,
           "the message names the worker's pid");
    expect(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0),
           "the wait status says the worker died");
}

int main(int argc, char **argv)
{
    /* Workers are this program started again: see 10_process_pool.c. */
    cf_init(&argc, &argv);

    double start = now_seconds();

    cf_executor_opts opts;
    cf_executor_opts_init(&opts);
    opts.workers = 2;
    cf_executor *pool;
    check(cf_executor_new(&pool, CF_BACKEND_PROCESSES, &opts), "cf_executor_new");

    uint64_t firsts[TASKS];
    cf_future *futures[TASKS];
    for (int i = 0; i < TASKS; i++) {
        firsts[i] = i == CRASHING_TASK ? 0 : 100000 + (uint64_t)i * NUMBERS_PER_TASK;
        futures[i] = submit_sum(pool, firsts[i]);
    }

    for (int i = 0; i < TASKS; i++) {
        char label[32];
        snprintf(label, sizeof label, "task %d", i + 1);
        if (i == CRASHING_TASK)
            print_crash(label, futures[i]);
        else
            print_sum(label, futures[i], firsts[i]);
        cf_future_release(futures[i]);
    }

    /* The crash is over and reported; the pool goes on as before. */
    uint64_t first = 100000 + (uint64_t)TASKS * NUMBERS_PER_TASK;
    cf_future *after = submit_sum(pool, first);
    print_sum("after the crash", after, first);
    cf_future_release(after);

    cf_executor_free(pool);

    print_finished(start);
    return 0;
}
