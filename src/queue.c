/*
 * queue.c -- cf_queue, a blocking FIFO of pointers for any number of producers and
 * consumers (Python's queue.Queue, including task_done/join and shutdown).
 *
 * Design: one mutex guards everything; three condition variables say why a thread sleeps:
 * not_empty (getters), not_full (putters, bounded queues only), all_done (joiners).  Items
 * live in a ring buffer.  A bounded queue allocates its `capacity` slots once, so put and
 * get never allocate; an unbounded one (capacity 0) starts small and doubles when full
 * (never shrinks: it keeps its high-water mark).  Each put or get can satisfy at most one
 * waiter on the other side, so they signal; close changes the answer for every waiter, so
 * it broadcasts.  The condition variables run on CLOCK_MONOTONIC, so a jump of the wall
 * clock cannot stretch or cut a timeout.  A waiter whose timed wait expires re-checks its
 * condition before reporting the timeout: if it consumed a signal while timing out, it
 * still takes the item or slot that signal was for, so no wake-up is lost.
 *
 * Lock order: q->lock only; nothing else is locked or called out to while holding it.
 *
 * Invariants (under q->lock):
 *   - count <= ring_len; the items are ring[(head + i) % ring_len] for i < count, oldest
 *     first.
 *   - capacity != 0 implies ring_len == capacity and count <= capacity.
 *   - unfinished = puts - task_done calls - items discarded by an immediate close (task_done
 *     may run before the matching get, so unfinished may be below count).
 *   - immediate implies closed and count == 0: nothing is added after close.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <math.h> /* isnan, a macro: no libm */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cfutures.h"

/* First ring of an unbounded queue; it doubles from here. */
#define UNBOUNDED_INITIAL_SLOTS 16

/*
 * Timeouts longer than this wait forever: about 31 years, so the absolute deadline fits a
 * time_t even where it is 32 bits wide.
 */
#define LONGEST_TIMED_WAIT 1e9

struct cf_queue {
    pthread_mutex_t lock;
    pthread_cond_t not_empty;
    pthread_cond_t not_full;
    pthread_cond_t all_done;
    void **ring;
    size_t ring_len;
    size_t head;
    size_t count;
    size_t capacity;
    size_t unfinished;
    bool closed;
    bool immediate;
};

/*
 * Turns a positive relative timeout into the absolute CLOCK_MONOTONIC deadline the
 * condition variables wait for.  Returns `buf`, or NULL when the timeout is too long to
 * matter and the caller should wait forever.
 */
static const struct timespec *deadline_after(double timeout, struct timespec *buf)
{
    if (timeout > LONGEST_TIMED_WAIT)
        return NULL;
    clock_gettime(CLOCK_MONOTONIC, buf);
    time_t whole = (time_t)timeout;
    double frac = (timeout - (double)whole) * 1e9;
    long nanos = (long)frac;
    if ((double)nanos < frac) /* round up: waking a nanosecond late is fine, early is not */
        nanos++;
    buf->tv_sec += whole;
    buf->tv_nsec += nanos;
    if (buf->tv_nsec >= 1000000000L) {
        buf->tv_sec++;
        buf->tv_nsec -= 1000000000L;
    }
    return buf;
}

/* How long one call may wait, fixed when the call starts. */
typedef struct wait_limit {
    bool poll;                       /* never sleep */
    const struct timespec *deadline; /* NULL: no deadline */
    struct timespec at;
} wait_limit;

static void wait_limit_init(wait_limit *w, double timeout)
{
    w->poll = timeout == 0;
    w->deadline = timeout > 0 ? deadline_after(timeout, &w->at) : NULL;
}

/* Sleeps on cv once.  Returns false when the caller's time is up (or it must not sleep). */
static bool wait_once(pthread_cond_t *cv, pthread_mutex_t *lock, const wait_limit *w)
{
    if (w->poll)
        return false;
    if (w->deadline == NULL) {
        pthread_cond_wait(cv, lock);
        return true;
    }
    /* Any error but a timeout could only come from a bad deadline, and retrying it would
     * spin: it ends the wait like a timeout. */
    return pthread_cond_timedwait(cv, lock, w->deadline) == 0;
}

/* Creates the three condition variables on CLOCK_MONOTONIC; all or none. */
static int init_conds(cf_queue *q)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return CF_ENOMEM;
    pthread_cond_t *conds[] = {&q->not_empty, &q->not_full, &q->all_done};
    size_t made = 0;
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ? CF_ESYS : 0;
    while (rc == 0 && made < sizeof conds / sizeof conds[0]) {
        if (pthread_cond_init(conds[made], &attr) != 0)
            rc = CF_ENOMEM;
        else
            made++;
    }
    if (rc != 0)
        while (made > 0)
            pthread_cond_destroy(conds[--made]);
    pthread_condattr_destroy(&attr);
    return rc;
}

int cf_queue_new(cf_queue **out, size_t capacity)
{
    if (out == NULL)
        return CF_EINVAL;
    *out = NULL;

    size_t slots = capacity != 0 ? capacity : UNBOUNDED_INITIAL_SLOTS;
    if (slots > SIZE_MAX / sizeof(void *))
        return CF_ENOMEM;

    cf_queue *q = calloc(1, sizeof *q);
    if (q == NULL)
        return CF_ENOMEM;
    int rc = CF_ENOMEM;
    q->ring = malloc(slots * sizeof *q->ring);
    if (q->ring == NULL)
        goto free_queue;
    q->ring_len = slots;
    q->capacity = capacity;
    if (pthread_mutex_init(&q->lock, NULL) != 0)
        goto free_ring;
    rc = init_conds(q);
    if (rc != 0)
        goto destroy_mutex;
    *out = q;
    return 0;

destroy_mutex:
    pthread_mutex_destroy(&q->lock);
free_ring:
    free(q->ring);
free_queue:
    free(q);
    return rc;
}

void cf_queue_free(cf_queue *q)
{
    if (q == NULL)
        return;
    pthread_cond_destroy(&q->all_done);
    pthread_cond_destroy(&q->not_full);
    pthread_cond_destroy(&q->not_empty);
    pthread_mutex_destroy(&q->lock);
    free(q->ring);
    free(q);
}

/* Doubles an unbounded queue's full ring, unwrapping it so the oldest item is at 0. */
static int grow(cf_queue *q)
{
    if (q->ring_len > SIZE_MAX / 2 / sizeof(void *))
        return CF_ENOMEM;
    size_t len = q->ring_len * 2;
    void **ring = malloc(len * sizeof *ring);
    if (ring == NULL)
        return CF_ENOMEM;
    size_t first = q->ring_len - q->head; /* items from head to the end of the old ring */
    memcpy(ring, q->ring + q->head, first * sizeof *ring);
    memcpy(ring + first, q->ring, (q->count - first) * sizeof *ring);
    free(q->ring);
    q->ring = ring;
    q->ring_len = len;
    q->head = 0;
    return 0;
}

int cf_queue_put(cf_queue *q, void *item, double timeout)
{
    if (q == NULL || isnan(timeout))
        return CF_EINVAL;
    wait_limit w;
    wait_limit_init(&w, timeout);

    int rc;
    bool time_up = false;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        if (q->closed) {
            rc = CF_ECLOSED;
            break;
        }
        if (q->count == q->ring_len && q->capacity == 0) {
            rc = grow(q);
            if (rc != 0)
                break;
        }
        if (q->count < q->ring_len) {
            q->ring[(q->head + q->count) % q->ring_len] = item;
            q->count++;
            q->unfinished++;
            pthread_cond_signal(&q->not_empty);
            rc = 0;
            break;
        }
        if (time_up) {
            rc = CF_EFULL;
            break;
        }
        time_up = !wait_once(&q->not_full, &q->lock, &w);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

int cf_queue_get(cf_queue *q, void **item, double timeout)
{
    if (q == NULL || item == NULL || isnan(timeout))
        return CF_EINVAL;
    wait_limit w;
    wait_limit_init(&w, timeout);

    int rc;
    bool time_up = false;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        if (q->count > 0) {
            *item = q->ring[q->head];
            q->head = (q->head + 1) % q->ring_len;
            q->count--;
            if (q->capacity != 0)
                pthread_cond_signal(&q->not_full);
            rc = 0;
            break;
        }
        if (q->closed) {
            rc = CF_ECLOSED;
            break;
        }
        if (time_up) {
            rc = CF_EEMPTY;
            break;
        }
        time_up = !wait_once(&q->not_empty, &q->lock, &w);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

int cf_queue_task_done(cf_queue *q)
{
    if (q == NULL)
        return CF_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&q->lock);
    if (q->unfinished == 0)
        rc = CF_EINVAL;
    else if (--q->unfinished == 0)
        pthread_cond_broadcast(&q->all_done); /* every joiner is satisfied at once */
    pthread_mutex_unlock(&q->lock);
    return rc;
}

int cf_queue_join(cf_queue *q, double timeout)
{
    if (q == NULL || isnan(timeout))
        return CF_EINVAL;
    wait_limit w;
    wait_limit_init(&w, timeout);

    int rc;
    bool time_up = false;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        if (q->unfinished == 0) {
            rc = 0;
            break;
        }
        /* Items taken before an immediate close may never be marked done: don't wait. */
        if (q->immediate) {
            rc = CF_ECLOSED;
            break;
        }
        if (time_up) {
            rc = CF_ETIMEDOUT;
            break;
        }
        time_up = !wait_once(&q->all_done, &q->lock, &w);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

size_t cf_queue_size(const cf_queue *q)
{
    if (q == NULL)
        return 0;
    /* The queue is never really const (cf_queue_new hands out a mutable object); locking
     * is a read as far as the caller can tell. */
    cf_queue *mq = (cf_queue *)q;
    pthread_mutex_lock(&mq->lock);
    size_t n = mq->count;
    pthread_mutex_unlock(&mq->lock);
    return n;
}

void cf_queue_close(cf_queue *q, int immediate)
{
    if (q == NULL)
        return;
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    if (immediate && !q->immediate) {
        q->immediate = true;
        /* Discarded items count as done; task_done may already have covered some. */
        q->unfinished -= q->count < q->unfinished ? q->count : q->unfinished;
        q->count = 0;
        q->head = 0;
        pthread_cond_broadcast(&q->all_done);
    }
    pthread_cond_broadcast(&q->not_empty);
    pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->lock);
}
