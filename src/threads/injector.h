/*
 * injector.h -- the queue through which threads outside the pool hand tasks to workers.
 *
 * Two lock-free parts, so that neither submitters nor workers ever wait on each other:
 *   - a bounded multi-producer multi-consumer ring (Vyukov's: each cell carries a sequence
 *     number saying whose turn it is, so producers and consumers each pay one CAS on their
 *     own index); producers and consumers touch different index cache lines and meet only
 *     on the cells, four to a line;
 *   - for when the ring is full (a burst far larger than the workers' pace), an unbounded
 *     array of task pointers that doubles as needed, under a spin lock (its critical
 *     sections are one append or moving one batch: a mutex's second atomic operation and
 *     call cost more than waiting ever does; a contended waiter yields its CPU).  A worker takes a batch
 *     at a time into its own deque (where the others steal from it), prefetching each
 *     task as it goes: a backlog of a million tasks is far out of cache, and an array lets
 *     those misses overlap, where a list threaded through the tasks would chain them.  The
 *     producer takes the lock once per task only while the ring is full.
 *
 * Order: FIFO within each part.  Once anything overflowed, producers keep appending to the
 * overflow queue until it is empty again, and consumers take from the ring first; a task is
 * overtaken by at most one ring's worth of later tasks, never starved.
 *
 * Invariants: ring cell i holds a task for position p when seq == p + 1 and is free for
 * position p when seq == p.  overflow_len mirrors the overflow count (written under the
 * lock, read without it as a hint; the wake-up protocol in pool.c re-checks).
 */
#ifndef CF_THREADS_INJECTOR_H
#define CF_THREADS_INJECTOR_H

#include "deque.h"

#define CF__INJECTOR_SIZE 8192
#define CF__OVERFLOW_BATCH 64

typedef struct cf__cell {
    _Atomic size_t seq;
    cf_future *task;
} cf__cell;

typedef struct cf__injector {
    _Atomic size_t tail CF__ALIGNED;             /* ring: next position to fill */
    _Atomic size_t head CF__ALIGNED;             /* ring: next position to take */
    _Atomic size_t overflow_len CF__ALIGNED;
    _Atomic int overflow_lock;                   /* 1 while held */
    cf_future **overflow;                        /* circular, under overflow_lock */
    size_t overflow_cap, overflow_head, overflow_count;
    int64_t overflow_grown_at; /* when the array last grew (monotonic ns) */
    cf__cell *cells;
} cf__injector;

int cf__injector_init(cf__injector *q);
void cf__injector_destroy(cf__injector *q);
/* Queues f: 0, or CF_ENOMEM when the ring is full and the overflow cannot grow. */
int cf__injector_push(cf__injector *q, cf_future *f);
/* Takes the oldest task.  From the overflow queue it takes a batch: the first is returned,
 * the rest go to `spill` (a worker's own deque; NULL: take one only). */
cf_future *cf__injector_pop(cf__injector *q, cf__deque *spill);
/* True if a task is queued or being queued. */
bool cf__injector_nonempty(cf__injector *q);

#endif
