/*
 * 07_queue_workers.c -- a producer and a team of workers sharing a bounded queue.
 *
 * Shows the queue.Queue pattern with cf_queue: a producer thread puts 20 work items into a
 * queue that holds at most 4 (so it waits whenever the workers fall behind), three worker
 * threads take items and call cf_queue_task_done() for each one they finish, and the main
 * thread waits in cf_queue_join() until every item put has been done.  Then it closes the
 * queue: each worker's cf_queue_get() returns CF_ECLOSED once the queue is empty, which
 * is the worker's signal to stop, and the main thread joins them.
 *
 * Expected output (which worker takes which item varies):
 *     Worker 1 processed item 1
 *     Worker 2 processed item 2
 *     ... twenty lines, about three per unit ...
 *     All 20 items processed (sum 210) by 3 workers
 *     Finished in 0.70 second(s)
 *
 * Exits non-zero if a call fails or an item was lost or processed twice.
 */
#include "example_util.h"

#include <pthread.h>

#define ITEMS 20
#define WORKERS 3
#define CAPACITY 4

typedef struct producer {
    cf_queue *queue;
    int *items;
} producer;

typedef struct worker {
    cf_queue *queue;
    int number;
    int processed; /* written by the worker, read by main after pthread_join */
    long sum;
} worker;

static void *produce(void *arg)
{
    producer *p = arg;
    for (int i = 0; i < ITEMS; i++)
        check(cf_queue_put(p->queue, &p->items[i], CF_FOREVER), "cf_queue_put");
    return NULL;
}

static void *work(void *arg)
{
    worker *w = arg;
    for (;;) {
        void *item;
        int rc = cf_queue_get(w->queue, &item, CF_FOREVER);
        if (rc == CF_ECLOSED)
            return NULL; /* closed and drained: no more work will come */
        check(rc, "cf_queue_get");

        int value = *(const int *)item;
        sleep_units(1);
        printf("Worker %d processed item %d\n", w->number, value);
        w->processed++;
        w->sum += value;
        check(cf_queue_task_done(w->queue), "cf_queue_task_done");
    }
}

int main(void)
{
    double start = now_seconds();

    cf_queue *queue;
    check(cf_queue_new(&queue, CAPACITY), "cf_queue_new");

    worker workers[WORKERS];
    pthread_t worker_threads[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        workers[i] = (worker){.queue = queue, .number = i + 1};
        check_pthread(pthread_create(&worker_threads[i], NULL, work, &workers[i]),
                      "pthread_create");
    }

    int items[ITEMS];
    for (int i = 0; i < ITEMS; i++)
        items[i] = i + 1;
    producer p = {.queue = queue, .items = items};
    pthread_t producer_thread;
    check_pthread(pthread_create(&producer_thread, NULL, produce, &p), "pthread_create");

    /* cf_queue_join() counts the items put so far: wait for the producer to have put them
     * all first, or the join could return before the first put. */
    check_pthread(pthread_join(producer_thread, NULL), "pthread_join");
    check(cf_queue_join(queue, CF_FOREVER), "cf_queue_join");

    cf_queue_close(queue, 0);
    int processed = 0;
    long sum = 0;
    for (int i = 0; i < WORKERS; i++) {
        check_pthread(pthread_join(worker_threads[i], NULL), "pthread_join");
        processed += workers[i].processed;
        sum += workers[i].sum;
    }
    printf("All %d items processed (sum %ld) by %d workers\n", processed, sum, WORKERS);
    expect(processed == ITEMS && sum == (long)ITEMS * (ITEMS + 1) / 2,
           "every item was processed exactly once");
    expect(cf_queue_size(queue) == 0, "the queue is empty");
    cf_queue_free(queue);

    print_finished(start);
    return 0;
}
