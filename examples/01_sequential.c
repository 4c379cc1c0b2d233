/*
 * 01_sequential.c -- the baseline: do_something() called ten times in a row.
 *
 * Shows: without concurrency every wait adds up.  Each call waits one unit (0.1 s), so ten
 * calls take about ten units.  The next examples do the same work concurrently.
 *
 * Expected output (the time varies a little):
 *     Sleeping 1 unit(s)...
 *     Done Sleeping...1
 *     ... the same pair ten times ...
 *     Finished in 1.00 second(s)
 *
 * Exits non-zero if a call did not return its message.
 */
#include "example_util.h"

#define CALLS 10

int main(void)
{
    double start = now_seconds();

    for (int i = 0; i < CALLS; i++) {
        char *message = do_something(1);
        expect(is_done_message(message, 1), "do_something(1) returned its message");
        printf("%s\n", message);
        free(message);
    }

    print_finished(start);
    return 0;
}
