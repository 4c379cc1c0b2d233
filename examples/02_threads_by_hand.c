/*
 * 02_threads_by_hand.c -- the same ten calls on ten threads managed by hand.
 *
 * Shows: the waits overlap, so ten one-unit calls take about one unit in total.  It also
 * shows the chores a pool takes over: creating each thread, passing it its argument,
 * bringing its result back through a slot of our own, joining every thread (also the ones
 * already started when a later pthread_create fails) and freeing the results.
 *
 * Expected output (the order of the lines varies from run to run):
 *     Sleeping 1 unit(s)...          (ten times, at once)
 *     Done Sleeping...1              (ten times, about one unit later)
 *     Finished in 0.10 second(s)
 *
 * Exits non-zero if a thread could not be created or a call did not return its message.
 */
#include "example_util.h"

#include <pthread.h>

#define THREADS 10

/* What one thread is given and what it gives back. */
typedef struct job {
    int units;
    char *message;
} job;

static void *run_job(void *arg)
{
    job *j = arg;
    j->message = do_something(j->units);
    return NULL;
}

int main(void)
{
    double start = now_seconds();
    pthread_t threads[THREADS];
    job jobs[THREADS];
    int started = 0;
    int create_error = 0;

    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (job){.units = 1, .message = NULL};
        create_error = pthread_create(&threads[i], NULL, run_job, &jobs[i]);
        if (create_error != 0)
            break;
        started++;
    }

    /* Every started thread must be joined, whatever happened to the others. */
    for (int i = 0; i < started; i++)
        check_pthread(pthread_join(threads[i], NULL), "pthread_join");
    check_pthread(create_error, "pthread_create");

    int all_done = 1;
    for (int i = 0; i < THREADS; i++) {
        all_done = all_done && is_done_message(jobs[i].message, jobs[i].units);
        printf("%s\n", jobs[i].message != NULL ? jobs[i].message : "(no message)");
        free(jobs[i].message);
    }
    expect(all_done, "every thread returned its message");

    print_finished(start);
    return 0;
}
