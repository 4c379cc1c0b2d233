/*
 * 07_queue_workers.c -- a producer and a team of workers sharing a bounded queue.
 *
 * Shows the queue.Queue pattern with cf_queue: a producer thread puts 20 work items into a
 * queue that holds at most 4 (so it waits whenever the workers fall behind), three
 * long-running tasks of a thread pool take items and call cf_queue_task_done() for each
 * one they finish, and the main thread waits in cf_queue_join() until every item put has
 * been done.  Then it closes the queue: each worker's cf_queue_get() returns CF_ECLOSED
 * once the queue is empty, which is the worker's signal to stop, and only then does it
 * free the pool.
 *
 * The order matters.  Python's tutorial marks such consumer threads daemon=True so that
 * they cannot keep the program from exiting.  A pool has no daemon workers:
 * cf_executor_free() waits for every task, so freeing the pool while its tasks still
 * block in cf_queue_get() would wait for ever.  Close the queue first (or shut it down
 * with cf_queue_close(q, 1), which drops what is left), then free the pool.
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
    int processed; /* written by the worker task, read by main after its future is done */
    long sum;
} worker;

static void *produce(void *arg)
{
    producer *p = arg;
    for (int i = 0; i < ITEMS; i++)
        check(cf_queue_put(p->queue, &p->items[i], CF_FOREVER), "cf_queue_put");
    return NULL;
}

/* A worker task: runs until the queue is closed and drained. */
static int work(void *arg, void **result, cf_ctx *ctx)
{
    worker *w = arg;
    (void)result;
    (void)ctx;
    for (;;) {
        void *item;
        int rc = cf_queue_get(w->queue, &item, CF_FOREVER);
        if (rc == CF_ECLOSED)
            return 0; /* closed and drained: no more work will come */
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

    cf_executor_opts opts;
    cf_executor_opts_init(&opts);
    opts.workers = WORKERS;
    cf_executor *pool;
    check(cf_executor_new(&pool, CF_BACKEND_THREADS, &opts), "cf_executor_new");
    worker workers[WORKERS];
    cf_future *worker_tasks[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        workers[i] = (worker){.queue = queue, .number = i + 1};
        check(cf_submit(pool, work, &workers[i], &worker_tasks[i]), "cf_submit");
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

    /* Close first: the worker tasks return, and only then can the pool be freed (it
     * waits for its tasks; with the queue still open it would wait for ever). */
    cf_queue_close(queue, 0);
    cf_executor_free(pool);
    int processed = 0;
    long sum = 0;
    for (int i = 0; i < WORKERS; i++) {
        check(cf_future_result(worker_tasks[i], 0, NULL), "worker task");
        cf_future_release(worker_tasks[i]);
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
