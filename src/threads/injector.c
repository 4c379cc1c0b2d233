/*
 * injector.c -- the pool's shared submission queue (design in injector.h).
 *
 * Lock order: overflow_lock is a leaf.
 */
#include "injector.h"

#include <stdlib.h>

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
    q->overflow_head = q->overflow_tail = NULL;
    pthread_mutex_init(&q->overflow_lock, NULL);
    return 0;
}

void cf__injector_destroy(cf__injector *q)
{
    pthread_mutex_destroy(&q->overflow_lock);
    free(q->cells);
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

void cf__injector_push(cf__injector *q, cf_future *f)
{
    if (atomic_load_explicit(&q->overflow_len, memory_order_relaxed) == 0 && ring_push(q, f))
        return;
    f->next = NULL;
    pthread_mutex_lock(&q->overflow_lock);
    if (q->overflow_tail)
        q->overflow_tail->next = f;
    else
        q->overflow_head = f;
    q->overflow_tail = f;
    atomic_fetch_add_explicit(&q->overflow_len, 1, memory_order_seq_cst);
    pthread_mutex_unlock(&q->overflow_lock);
}

cf_future *cf__injector_pop(cf__injector *q)
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
            break; /* empty, or a producer is still filling this cell */
        } else {
            pos = atomic_load_explicit(&q->head, memory_order_relaxed);
        }
    }
    if (atomic_load_explicit(&q->overflow_len, memory_order_relaxed) == 0)
        return NULL;
    pthread_mutex_lock(&q->overflow_lock);
    cf_future *f = q->overflow_head;
    if (f) {
        q->overflow_head = f->next;
        if (!q->overflow_head)
            q->overflow_tail = NULL;
        atomic_fetch_sub_explicit(&q->overflow_len, 1, memory_order_relaxed);
    }
    pthread_mutex_unlock(&q->overflow_lock);
    return f;
}

bool cf__injector_nonempty(cf__injector *q)
{
    return atomic_load_explicit(&q->tail, memory_order_seq_cst) !=
               atomic_load_explicit(&q->head, memory_order_seq_cst) ||
           atomic_load_explicit(&q->overflow_len, memory_order_seq_cst) != 0;
}
