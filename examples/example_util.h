/*
 * example_util.h -- what every tutorial example shares: the tutorial's do_something(),
 * time measured in "units", and the two ways an example stops on a failure.
 *
 * Time is counted in units of a tenth of a second so the whole tour runs in seconds; the
 * programs print real seconds.  Everything here is static inline so each example stays a
 * single file to compile.  Include this header first: it asks for the POSIX declarations
 * (clock_gettime, nanosleep) that -std=c11 hides.  No shared state: do_something() may be
 * called from any number of threads at once.
 */
#ifndef EXAMPLE_UTIL_H
#define EXAMPLE_UTIL_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
