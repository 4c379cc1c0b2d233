/*
 * 04_as_completed.c -- results in the order the tasks finish.
 *
 * Shows: tasks sleeping 5, 4, 3, 2 and 1 units are submitted in that order, and
 * cf_as_completed_next() yields each future as soon as it is done, so the shortest task
 * is reported first and nobody waits behind the five-unit task.  The whole run takes
 * about five units, the longest task, not fifteen.
 *
 * Expected output (the "Sleeping" lines come in any order):
 *     Sleeping 5 unit(s)...  ... Sleeping 1 unit(s)...
 *     Done Sleeping...1
 *     Done Sleeping...2
 *     Done Sleeping...3
 *     Done Sleeping...4
 *     Done Sleeping...5
 *     Finished in 0.50 second(s)
 *
 * Exits non-zero if a call fails, a future is yielded twice or not at all, a yielded
 * future is not done, or a result is wrong.  Which task finishes first is up to the
 * clock, not the library: if they finish out of sleep order (a machine too busy to keep
 * tasks a unit apart) the program says so but does not fail, since
 * cf_as_completed_next() then rightly follows the actual completion order.
 */
#include "example_util.h"

#define TASKS 5

int main(void)
{
    double start = now_seconds();

    cf_executor_opts opts;
    cf_executor_opts_init(&opts);
    opts.workers = TASKS; /* all five sleep at the same time */
    cf_executor *pool;
    check(cf_executor_new(&pool, CF_BACKEND_THREADS, &opts), "cf_executor_new");

    int units[TASKS] = {5, 4, 3, 2, 1};
    cf_future *futures[TASKS];
    for (int i = 0; i < TASKS; i++)
        check(cf_submit(pool, do_something_task, &units[i], &futures[i]), "cf_submit");

    cf_as_completed *it;
    check(cf_as_completed_new(&it, futures, TASKS, CF_FOREVER), "cf_as_completed_new");

    int yielded[TASKS] = {0};
    int count = 0;
    int in_sleep_order = 1;
    cf_future *f;
    int rc;
    while ((rc = cf_as_completed_next(it, &f)) == 0) {
        /* The iterator gives back our own pointers: find which task this is. */
        int i = 0;
        while (i < TASKS && futures[i] != f)
            i++;
        expect(i < TASKS, "the iterator yields one of the submitted futures");
        expect(!yielded[i], "each future is yielded once");
        yielded[i] = 1;
        expect(cf_future_done(f), "a yielded future is done");

        /* Done already, so reading the result does not wait. */
        void *value;
        check(cf_future_result(f, CF_POLL, &value), "cf_future_result");
        char *message = value;
        expect(is_done_message(message, units[i]), "the result is the task's message");
        printf("%s\n", message);
        free(message);

        count++;
        in_sleep_order = in_sleep_order && units[i] == count;
    }
    expect(rc == CF_EEND, "the iteration ends with CF_EEND");
    expect(count == TASKS && cf_as_completed_pending(it) == 0, "every future was yielded");
    cf_as_completed_free(it);

    if (!in_sleep_order)
        printf("(the tasks finished out of sleep order: they did not all run at once, "
               "or the machine was too busy to keep them a unit apart)\n");

    for (int i = 0; i < TASKS; i++)
        cf_future_release(futures[i]);
    cf_executor_free(pool);

    print_finished(start);
    return 0;
}
