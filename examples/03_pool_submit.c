/*
 * 03_pool_submit.c -- the same ten calls through a cfutures thread pool.
 *
 * Shows: cf_submit() hands a task and its argument to the pool and gives back a future;
 * cf_future_result() waits for the task and hands back what it returned.  The pool starts
 * the threads, passes the arguments, carries the results back and joins its threads in
 * cf_executor_free() -- the chores 02_threads_by_hand.c did itself.
 *
 * The task is do_something_task() from example_util.h, the tutorial's do_something() in
 * the shape the pool calls (a cf_fn):
 *     int task(void *arg, void **result, cf_ctx *ctx);
 * its argument is a pointer to the number of units, and it returns 0 with the malloc'd text
 * "Done Sleeping...<units>" in *result, which the reader of the result frees.
 *
 * Expected output (the "Sleeping" lines come in any order):
 *     Sleeping 1 unit(s)...          (ten times, at once)
 *     Done Sleeping...1              (ten times, in submission order)
 *     Finished in 0.10 second(s)
 *
 * Exits non-zero if a call fails or a result is not the task's message.
 */
#include "example_util.h"

#define TASKS 10

int main(void)
{
    double start = now_seconds();

    /* The default is one worker per CPU, right for tasks that compute.  These tasks only
     * wait, so give each its own worker. */
    cf_executor_opts opts;
    cf_executor_opts_init(&opts);
    opts.workers = TASKS;
    cf_executor *pool;
    check(cf_executor_new(&pool, CF_BACKEND_THREADS, &opts), "cf_executor_new");

    /* The arguments must stay valid until the tasks have read them. */
    int units[TASKS];
    cf_future *futures[TASKS];
    for (int i = 0; i < TASKS; i++) {
        units[i] = 1;
        check(cf_submit(pool, do_something_task, &units[i], &futures[i]), "cf_submit");
    }

    for (int i = 0; i < TASKS; i++) {
        void *value;
        check(cf_future_result(futures[i], CF_FOREVER, &value), "cf_future_result");
        char *message = value;
        expect(is_done_message(message, units[i]), "the result is the task's message");
        printf("%s\n", message);
        free(message);
        cf_future_release(futures[i]);
    }

    /* Like leaving Python's `with` block: waits for every task, then joins the workers. */
    cf_executor_free(pool);

    print_finished(start);
    return 0;
}
