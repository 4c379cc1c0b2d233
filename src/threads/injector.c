/*
 * injector.c -- the pool's shared submission queue (design in injector.h).
 *
 * Lock order: overflow_lock (a spin lock) is a leaf; nothing is called while holding it but
 * malloc and the worker's own deque push.
 */
#include "injector.h"

#include <sched.h>
#include <stdlib.h>

#define OVERFLOW_KEEP 65536                 /* entries kept in any case (512 KiB) */
#define OVERFLOW_RELEASE_NS 1000000000      /* a larger array goes after a quiet second */

int cf__injector_init(cf__injector *q)
{
    q->cells = malloc(sizeof *q->cells * CF__INJECTOR_SIZE);
    if (!q->cells)
        return CF_ENOMEM;
    for (size_t i = 0; i < CF__INJECTOR_SIZE; i++)
        atomic_init(&q->cells[i].seq, i);
    atomic_init(&q->tail, 0);
    atomic_init(&q->head, 0);
    atomic_init(&q->overflow_len, 0);
    q->overflow = NULL;
    q->overflow_cap = q->overflow_head = q->overflow_count = 0;
    atomic_init(&q->overflow_lock, 0);
    return 0;
}

void cf__injector_destroy(cf__injector *q)
{
    free(q->overflow);
    free(q->cells);
}

static void overflow_lock(cf__injector *q)
{
    while (atomic_exchange_explicit(&q->overflow_lock, 1, memory_order_acquire))
        while (atomic_load_explicit(&q->overflow_lock, memory_order_relaxed))
            sched_yield(); /* the holder may be waiting for this CPU */
}

static void overflow_unlock(cf__injector *q)
{
    atomic_store_explicit(&q->overflow_lock, 0, memory_order_release);
}

static bool ring_push(cf__injector *q, cf_future *f)
{
    size_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
    for (;;) {
        cf__cell *c = &q->cells[pos & (CF__INJECTOR_SIZE - 1)];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)pos;
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1,
                                                      memory_order_seq_cst,
                                                      memory_order_relaxed)) {
                c->task = f;
                atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
                return true;
            }
        } else if (dif < 0) {
            return false; /* full */
        } else {
            pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
        }
    }
}

static cf_future *ring_pop(cf__injector *q)
{
    size_t pos = atomic_load_explicit(&q->head, memory_order_relaxed);
    for (;;) {
        cf__cell *c = &q->cells[pos & (CF__INJECTOR_SIZE - 1)];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t dif = (intptr_t)seq - (intptr_t)(pos + 1);
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed)) {
                cf_future *f = c->task;
                atomic_store_explicit(&c->seq, pos + CF__INJECTOR_SIZE, memory_order_release);
                return f;
            }
        } else if (dif < 0) {
            return NULL; /* empty, or a producer is still filling this cell */
        } else {
            pos = atomic_load_explicit(&q->head, memory_order_relaxed);
        }
    }
}

static bool overflow_nonempty(cf__injector *q)
{
    return atomic_load_explicit(&q->overflow_len, memory_order_seq_cst) != 0;
}

/* Appends under overflow_lock, doubling the array (a power of two) when full. */
static int overflow_append(cf__injector *q, cf_future *f)
{
    if (q->overflow_count == q->overflow_cap) {
        size_t cap = q->overflow_cap ? 2 * q->overflow_cap : 1024;
        cf_future **grown = malloc(cap * sizeof *grown);
        if (!grown)
            return CF_ENOMEM;
        for (size_t i = 0; i < q->overflow_count; i++)
            grown[i] = q->overflow[(q->overflow_head + i) & (q->overflow_cap - 1)];
        free(q->overflow);
        q->overflow = grown;
        q->overflow_cap = cap;
        q->overflow_head = 0;
        q->overflow_grown_at = cf__now_ns();
    }
    q->overflow[(q->overflow_head + q->overflow_count) & (q->overflow_cap - 1)] = f;
    /* Only becoming non-empty can race with a worker going to sleep (its re-check must see
     * it: sequentially consistent); later appends just update the hint. */
    if (++q->overflow_count == 1) /* (a run-time order would compile as seq_cst every time) */
        atomic_store_explicit(&q->overflow_len, 1, memory_order_seq_cst);
    else
        atomic_store_explicit(&q->overflow_len, q->overflow_count, memory_order_relaxed);
    return 0;
}

/* Takes the oldest overflow task, under overflow_lock. */
static cf_future *overflow_take(cf__injector *q)
{
    if (q->overflow_count == 0)
        return NULL;
    cf_future *f = q->overflow[q->overflow_head];
    q->overflow_head = (q->overflow_head + 1) & (q->overflow_cap - 1);
    atomic_store_explicit(&q->overflow_len, --q->overflow_count, memory_order_relaxed);
    return f;
}

int cf__injector_push(cf__injector *q, cf_future *f)
{
    if (!overflow_nonempty(q) && ring_push(q, f))
        return 0;
    overflow_lock(q);
    int rc = overflow_append(q, f);
    overflow_unlock(q);
    return rc;
}

cf_future *cf__injector_pop(cf__injector *q, cf__deque *spill)
{
    cf_future *f = ring_pop(q);
    if (f || !overflow_nonempty(q))
        return f;
    overflow_lock(q);
    f = overflow_take(q);
    for (int i = 1; f && spill && i < CF__OVERFLOW_BATCH && q->overflow_count; i++) {
        cf_future *more = q->overflow[q->overflow_head];
        __builtin_prefetch(more, 1, 3); /* the worker is about to start it */
        if (!cf__deque_push(spill, more))
            break;
        overflow_take(q);
    }
    if (q->overflow_count == 0 && q->overflow_cap > OVERFLOW_KEEP &&
        cf__now_ns() - q->overflow_grown_at > OVERFLOW_RELEASE_NS) {
        /* A past burst's memory: give it back once drained, unless bursts are recurring
         * (it grew within the last second), when regrowing it each time would cost more. */
        free(q->overflow);
        q->overflow = NULL;
        q->overflow_cap = q->overflow_head = 0;
    }
    overflow_unlock(q);
    return f;
}

bool cf__injector_nonempty(cf__injector *q)
{
    return atomic_load_explicit(&q->tail, memory_order_seq_cst) !=
               atomic_load_explicit(&q->head, memory_order_seq_cst) ||
           overflow_nonempty(q);
}
