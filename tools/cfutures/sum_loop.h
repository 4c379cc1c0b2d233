/*
 * sum_loop.h -- the sum workload's loop, shared by `cfutures sum` (cmd_sum.c) and the
 * benchmark's bare-pthreads ceiling (bench/sum_ceiling.c), so that the ceiling runs exactly
 * the command's loop.  See cmd_sum.c for why the empty asm statement is there.
 */
#ifndef CFUTURES_SUM_LOOP_H
#define CFUTURES_SUM_LOOP_H

#include <stdint.h>

typedef unsigned __int128 sum_u128;

/* Adds i = lo .. stop (both included) to *acc and counts the iterations in *iterations. */
static inline void sum_loop(uint64_t lo, uint64_t stop, sum_u128 *acc, uint64_t *iterations)
{
    sum_u128 a = *acc;
    uint64_t n = *iterations;
    for (uint64_t i = lo;; i++) {
        /* The optimizer must assume i changed here (see cmd_sum.c). */
        __asm__ volatile("" : "+r"(i));
        a += i;
        n++;
        if (i == stop)
            break;
    }
    *acc = a;
    *iterations = n;
}

#endif /* CFUTURES_SUM_LOOP_H */
