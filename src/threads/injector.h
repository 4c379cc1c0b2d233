/*
 * injector.h -- the queue through which threads outside the pool hand tasks to workers.
 *
 * A bounded multi-producer multi-consumer ring (Vyukov's: each cell carries a sequence
 * number saying whose turn it is, so producers and consumers each pay one CAS on their own
 * index and never share a lock), backed by a mutex-protected overflow list for the rare
 * moment the ring is full.  Producers and consumers touch different index cache lines; they
 * meet only on the cells, eight to a line.
 *
 * Order: FIFO within the ring.  Once anything overflowed, producers keep appending to the
 * overflow list until consumers have drained it, and consumers take from the ring first; a
 * task can therefore be overtaken by at most one ring's worth of later tasks, never starved.
 *
 * Invariants: cell i holds a task for position p when seq == p + 1; it is free for position
 * p when seq == p.  `overflow_len` is written under `overflow_lock` and read without it as a
 * hint (a consumer that misses a just-added item is told about it by the wake-up protocol,
 * which re-checks under the Dekker ordering in pool.c).
 */
#ifndef CF_THREADS_INJECTOR_H
#define CF_THREADS_INJECTOR_H

#include "../internal.h"

#define CF__INJECTOR_SIZE 8192

typedef struct cf__cell {
    _Atomic size_t seq;
    cf_future *task;
} cf__cell;

typedef struct cf__injector {
    _Atomic size_t tail CF__ALIGNED; /* next position to fill */
    _Atomic size_t head CF__ALIGNED; /* next position to take */
    _Atomic size_t overflow_len CF__ALIGNED;
    pthread_mutex_t overflow_lock;
    cf_future *overflow_head, *overflow_tail;
    cf__cell *cells;
} cf__injector;

int cf__injector_init(cf__injector *q);
void cf__injector_destroy(cf__injector *q);
void cf__injector_push(cf__injector *q, cf_future *f);
cf_future *cf__injector_pop(cf__injector *q);
/* True if a task is queued or being queued (a producer reserved a cell). */
bool cf__injector_nonempty(cf__injector *q);

#endif
