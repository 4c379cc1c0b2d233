/*
 * 06_task_error.c -- a task that fails, and where its error shows up.
 *
 * Shows: a task reports failure by returning its own error code, through cf_fail() so
 * that it carries a message (the C analogue of raising an exception).  Nothing happens to
 * the caller until it reads the result: cf_future_result() then returns CF_ETASK, and
 * cf_future_error() gives the task's own code and message -- as often as asked, from any
 * thread.  The task's code (EINVAL here) is its own business and never mixed up with the
 * library's CF_E* codes.  The other tasks are not affected.
 *
 * Expected output (the "Sleeping" lines come in any order):
 *     Sleeping 1 unit(s)...
 *     Sleeping 2 unit(s)...
 *     Done Sleeping...1
 *     Task 2 failed: cannot sleep -1 unit(s) (its code 22; cf_future_result: task failed)
 *     Done Sleeping...2
 *     Finished in 0.20 second(s)
 *
 * Exits non-zero if a call fails, the bad task does not report its code and message, or a
 * good task does not return its message.
 */
#include "example_util.h"

#define TASKS 3

/* do_something_task() for a sane number of units; refuses a negative one. */
static int checked_sleep_task(void *arg, void **result, cf_ctx *ctx)
{
    int units = *(const int *)arg;
    if (units < 0)
        return cf_fail(ctx, EINVAL, "cannot sleep %d unit(s)", units);
    return do_something_task(arg, result, ctx);
}

int main(void)
{
    double start = now_seconds();

    cf_executor_opts opts;
    cf_executor_opts_init(&opts);
    opts.workers = TASKS;
    cf_executor *pool;
    check(cf_executor_new(&pool, CF_BACKEND_THREADS, &opts), "cf_executor_new");

    int units[TASKS] = {1, -1, 2};
    cf_future *futures[TASKS];
    for (int i = 0; i < TASKS; i++)
        check(cf_submit(pool, checked_sleep_task, &units[i], &futures[i]), "cf_submit");

    for (int i = 0; i < TASKS; i++) {
        void *value;
        int rc = cf_future_result(futures[i], CF_FOREVER, &value);
        if (rc == 0) {
            char *message = value;
            expect(units[i] >= 0, "only good input succeeds");
            expect(is_done_message(message, units[i]), "the result is the task's message");
            printf("%s\n", message);
            free(message);
        } else if (rc == CF_ETASK) {
            int code;
            const char *message;
            expect(cf_future_error(futures[i], &code, &message) == CF_ETASK,
                   "cf_future_error reports the same outcome");
            printf("Task %d failed: %s (its code %d; cf_future_result: %s)\n", i + 1,
                   message != NULL ? message : "(no message)", code, cf_strerror(rc));

            char expected[64];
            snprintf(expected, sizeof expected, "cannot sleep %d unit(s)", units[i]);
            expect(units[i] < 0, "only bad input fails");
            expect(code == EINVAL, "the task's own code comes back");
            expect(message != NULL && strcmp(message, expected) == 0,
                   "the task's own message comes back");

            /* A failed future stays failed: reading it again gives the same outcome. */
            expect(cf_future_result(futures[i], CF_POLL, NULL) == CF_ETASK,
                   "reading the result again reports the failure again");
        } else {
            check(rc, "cf_future_result");
        }
        cf_future_release(futures[i]);
    }

    cf_executor_free(pool);

    print_finished(start);
    return 0;
}
