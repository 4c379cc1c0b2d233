/*
 * example_util.h -- what every tutorial example shares: the tutorial's do_something(),
 * time measured in "units", the CPU-bound sum of the process examples, and the ways an
 * example stops on a failure.
 *
 * Time is counted in units of a tenth of a second so the whole tour runs in seconds; the
 * programs print real seconds.  The examples about processes (09-11) share a CPU-bound
 * task instead: a sum that takes real computing, split into ranges.  Everything here is
 * static inline so each example stays a single file to compile.  Include this header
 * first: it asks for the POSIX declarations (clock_gettime, nanosleep, sysconf) that
 * -std=c11 hides.  No shared state: do_something() and sum_steps() may be called from any
 * number of threads at once.
 */
#ifndef EXAMPLE_UTIL_H
#define EXAMPLE_UTIL_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfutures.h"

/* One unit of work, in seconds. */
#define EXAMPLE_UNIT_SECONDS 0.1

/* Seconds on the monotonic clock (only differences mean anything). */
static inline double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps `units` tenths of a second, resuming after signals. */
static inline void sleep_units(int units)
{
    long long ns = (long long)units * (long long)(EXAMPLE_UNIT_SECONDS * 1e9);
    struct timespec left = {(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        ;
}

/*
 * The tutorial's task: says what it does, waits `units`, and returns the malloc'd text
 * "Done Sleeping...<units>" for the caller to free (NULL when out of memory).
 */
static inline char *do_something(int units)
{
    printf("Sleeping %d unit(s)...\n", units);
    sleep_units(units);
    int len = snprintf(NULL, 0, "Done Sleeping...%d", units);
    char *text = malloc((size_t)len + 1);
    if (text != NULL)
        snprintf(text, (size_t)len + 1, "Done Sleeping...%d", units);
    return text;
}

/*
 * do_something() as a pool task (a cf_fn).  The argument comes in through `arg`, here a
 * pointer to the number of units; the result goes out through *result, here the malloc'd
 * message, which whoever reads the result frees; 0 means success, and a failure is the
 * task's own error code, returned through cf_fail() so that it carries a message.
 */
static inline int do_something_task(void *arg, void **result, cf_ctx *ctx)
{
    int units = *(const int *)arg;
    char *message = do_something(units);
    if (message == NULL)
        return cf_fail(ctx, ENOMEM, "no memory for the message");
    *result = message;
    return 0;
}

/* Whether `text` is what do_something(units) returns. */
static inline int is_done_message(const char *text, int units)
{
    char expected[32];
    snprintf(expected, sizeof expected, "Done Sleeping...%d", units);
    return text != NULL && strcmp(text, expected) == 0;
}

/*
 * The CPU-bound work of 09-11: the number of Collatz steps of n >= 1 (halve n when it is
 * even, else make it 3n + 1, until it is 1).  No formula for it is known, so no compiler
 * can fold the loop away: the time it takes is real computing.  Below SUM_LIMIT every
 * value stays far inside 64 bits and the totals are exact.
 */
static inline uint64_t collatz_steps(uint64_t n)
{
    uint64_t steps = 0;
    while (n != 1) {
        n = (n & 1) ? 3 * n + 1 : n / 2;
        steps++;
    }
    return steps;
}

/* The numbers 1 .. SUM_LIMIT - 1, split into SUM_RANGES ranges of about the same size: about
 * half a second of work in a row on the machine bench/RESULTS.md describes. */
#define SUM_LIMIT 1000000u
#define SUM_RANGES 8

/* The total number of Collatz steps of the numbers lo .. hi - 1. */
static inline uint64_t sum_steps(uint64_t lo, uint64_t hi)
{
    uint64_t total = 0;
    for (uint64_t n = lo; n < hi; n++)
        total += collatz_steps(n);
    return total;
}

/* Range i (0 .. SUM_RANGES - 1) of the numbers: lo .. hi - 1. */
static inline void sum_range(int i, uint64_t *lo, uint64_t *hi)
{
    *lo = 1 + (uint64_t)(SUM_LIMIT - 1) * (uint64_t)i / SUM_RANGES;
    *hi = 1 + (uint64_t)(SUM_LIMIT - 1) * (uint64_t)(i + 1) / SUM_RANGES;
}

/* The baseline of 09 and 10: every range in a row, in this thread.  Gives each range's sum
 * in parts[] and the time in *seconds, prints the total and the time, returns the total. */
static inline uint64_t sum_in_a_row(uint64_t parts[SUM_RANGES], double *seconds)
{
    double start = now_seconds();
    uint64_t total = 0;
    for (int i = 0; i < SUM_RANGES; i++) {
        uint64_t lo, hi;
        sum_range(i, &lo, &hi);
        parts[i] = sum_steps(lo, hi);
        total += parts[i];
    }
    *seconds = now_seconds() - start;
    printf("In a row:  %" PRIu64 " steps in %.2f second(s)\n", total, *seconds);
    return total;
}

/* Prints how many times faster the parallel run was than the one in a row. */
static inline void print_speedup(double in_a_row, double parallel)
{
    printf("Speedup: %.2fx (%ld CPU(s) online)\n",
           parallel > 0 ? in_a_row / parallel : 0.0, sysconf(_SC_NPROCESSORS_ONLN));
}

/* Prints the closing line every example ends with. */
static inline void print_finished(double start)
{
    printf("Finished in %.2f second(s)\n", now_seconds() - start);
}

/* Stops the program when a cfutures call returned an error (a negative CF_E* code). */
static inline void check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "%s failed: %s (CF_E%s)\n", what, cf_strerror(rc), cf_err_name(rc));
        exit(EXIT_FAILURE);
    }
}

/* Stops the program when a pthread call returned an error (a positive errno value). */
static inline void check_pthread(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "%s failed: %s\n", what, strerror(rc));
        exit(EXIT_FAILURE);
    }
}

/* Stops the program when something the example demonstrates did not happen. */
static inline void expect(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "unexpected: %s\n", what);
        exit(EXIT_FAILURE);
    }
}

#endif
