/*
 * deque.h -- a worker's own task deque (Chase-Lev work stealing).
 *
 * The owner pushes and pops at the bottom (LIFO, cache-warm, no atomic read-modify-write
 * except when one item is left); any thread steals from the top (FIFO) with one CAS.  The
 * ring has a fixed power-of-two size: a full deque makes push fail and the caller falls back
 * to the shared injector, which is simpler than growing and needs no memory reclamation.
 *
 * Orderings follow the SC formulation (seq_cst on top and bottom instead of standalone
 * fences), which ThreadSanitizer understands and which costs the same on x86.  Slots are
 * atomics, so a thief's read of a slot the owner is overwriting is a stale value, not a
 * race; the thief's CAS on top then fails.
 *
 * Invariants: top <= bottom + 1 transiently during pop; items live in [top, bottom).
 */
#ifndef CF_THREADS_DEQUE_H
#define CF_THREADS_DEQUE_H

#include "../internal.h"

#define CF__DEQUE_SIZE 4096

typedef struct cf__deque {
    _Atomic int64_t top CF__ALIGNED;
    _Atomic int64_t bottom CF__ALIGNED;
    _Atomic(cf_future *) slots[CF__DEQUE_SIZE];
} cf__deque;

static inline bool cf__deque_push(cf__deque *d, cf_future *f)
{
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed);
    int64_t t = atomic_load_explicit(&d->top, memory_order_acquire);
    if (b - t >= CF__DEQUE_SIZE)
        return false;
    atomic_store_explicit(&d->slots[b & (CF__DEQUE_SIZE - 1)], f, memory_order_relaxed);
    atomic_store_explicit(&d->bottom, b + 1, memory_order_release);
    return true;
}

static inline cf_future *cf__deque_pop(cf__deque *d)
{
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_relaxed) - 1;
    int64_t t = atomic_load_explicit(&d->top, memory_order_relaxed);
    if (t > b) /* empty: no store needed, nobody else changes bottom */
        return NULL;
    atomic_store_explicit(&d->bottom, b, memory_order_seq_cst);
    t = atomic_load_explicit(&d->top, memory_order_seq_cst);
    cf_future *f = NULL;
    if (t <= b) {
        f = atomic_load_explicit(&d->slots[b & (CF__DEQUE_SIZE - 1)], memory_order_relaxed);
        if (t == b) { /* the last item: race the thieves for it */
            if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1, memory_order_seq_cst,
                                                         memory_order_relaxed))
                f = NULL;
            atomic_store_explicit(&d->bottom, b + 1, memory_order_relaxed);
        }
    } else {
        atomic_store_explicit(&d->bottom, b + 1, memory_order_relaxed);
    }
    return f;
}

static inline cf_future *cf__deque_steal(cf__deque *d)
{
    int64_t t = atomic_load_explicit(&d->top, memory_order_seq_cst);
    int64_t b = atomic_load_explicit(&d->bottom, memory_order_seq_cst);
    if (t >= b)
        return NULL;
    cf_future *f = atomic_load_explicit(&d->slots[t & (CF__DEQUE_SIZE - 1)], memory_order_relaxed);
    if (!atomic_compare_exchange_strong_explicit(&d->top, &t, t + 1, memory_order_seq_cst,
                                                 memory_order_relaxed))
        return NULL;
    return f;
}

static inline bool cf__deque_nonempty(cf__deque *d)
{
    return atomic_load_explicit(&d->bottom, memory_order_seq_cst) >
           atomic_load_explicit(&d->top, memory_order_seq_cst);
}

#endif
