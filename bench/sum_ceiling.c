/*
 * sum_ceiling.c -- the host's ceiling for the sum workload (C3, C4 of bench/workloads.py):
 * the loop of `cfutures sum` (tools/cfutures/sum_loop.h, the same code) run over 0..N in
 * one thread, then split into W equal ranges on W bare pthreads (no library, no queue, no
 * process), and the speedup between the two printed:
 *
 *     sum_ceiling N W   ->   CEILING <speedup> sequential=<s> parallel=<s>
 *
 * On a host whose W busy vCPUs deliver less than W times one busy vCPU (two hyperthreads of
 * one core, a contended VM) the ceiling is below W, and a pool cannot beat it; the goals
 * compare the command's speedups with it, measured in the same run.  The sums are checked
 * against the closed form (exit status 1 if wrong).
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../tools/cfutures/sum_loop.h"

#define MAX_THREADS 256

/* Each range on a cache line of its own: side by side, the two threads' ranges shared one,
 * and the "ceiling" came out at 1.27-1.31 where the pool itself reached 1.99. */
typedef struct range {
    _Alignas(64) uint64_t lo;
    uint64_t hi;
    sum_u128 acc;
    uint64_t iterations;
} range;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Not inlined: the sequential run and the threads must run the very same machine code (inlined
 * into main, the loop once ran twice as fast there as in the threads, and the "ceiling"
 * came out below what the pool reached). */
__attribute__((noinline)) static void *run_range(void *arg)
{
    range *r = arg;
    sum_loop(r->lo, r->hi, &r->acc, &r->iterations);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return fprintf(stderr, "usage: sum_ceiling N THREADS\n"), 2;
    uint64_t n = (uint64_t)strtod(argv[1], NULL);
    int w = atoi(argv[2]);
    if (n < 1 || w < 1 || w > MAX_THREADS)
        return fprintf(stderr, "sum_ceiling: N >= 1, 1 <= THREADS <= %d\n", MAX_THREADS), 2;
    sum_u128 want = (sum_u128)n * (n + 1) / 2;

    range all = {0, n, 0, 0};
    double t0 = now();
    run_range(&all);
    double seq = now() - t0;

    range parts[MAX_THREADS];
    pthread_t threads[MAX_THREADS];
    for (int k = 0; k < w; k++) {
        uint64_t lo = (uint64_t)((sum_u128)(n + 1) * k / w);
        uint64_t hi = (uint64_t)((sum_u128)(n + 1) * (k + 1) / w) - 1;
        parts[k] = (range){lo, hi, 0, 0};
    }
    t0 = now();
    for (int k = 0; k < w; k++)
        if (pthread_create(&threads[k], NULL, run_range, &parts[k]) != 0)
            return fprintf(stderr, "sum_ceiling: pthread_create failed\n"), 1;
    sum_u128 got = 0;
    for (int k = 0; k < w; k++) {
        pthread_join(threads[k], NULL);
        got += parts[k].acc;
    }
    double par = now() - t0;
    if (all.acc != want || got != want)
        return fprintf(stderr, "sum_ceiling: wrong sum\n"), 1;
    printf("CEILING %.4f sequential=%.4f parallel=%.4f\n", seq / par, seq, par);
    return 0;
}
