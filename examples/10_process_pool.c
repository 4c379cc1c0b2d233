/*
 * 10_process_pool.c -- the same sum through a cfutures process pool.
 *
 * Shows: the eight ranges of 09_processes_by_hand.c handed to a pool of worker processes
 * (CF_BACKEND_PROCESSES) with cf_map_bytes_start(), and the results taken in input order
 * with cf_map_next().  The pool starts one worker per CPU, hands the ranges out to them,
 * carries the results back and lets the workers go in cf_executor_free() -- the chores 09
 * did with fork, pipes and waitpid.
 *
 * Workers are other processes, so a task's input and result are bytes (a range in, a
 * total out) and the task is named with CF_FUNCTION, through which each worker finds the
 * same function in its own copy of the program.  Switching the pool to threads is one
 * word: CF_BACKEND_THREADS runs the same task unchanged.  The pool's time includes starting
 * its workers, a program start each (milliseconds).
 *
 * Expected output (the times and the speedup vary with the machine and its load):
 *     In a row:  131434272 steps in 0.38 second(s)
 *     range 1: 13735048 steps
 *     ... one line per range, in input order ...
 *     Pool of 2 worker processes: 131434272 steps in 0.25 second(s)
 *     Speedup: 1.51x (2 CPU(s) online)
 *     Finished in 0.63 second(s)
 *
 * Exits non-zero if a call fails, a range comes out of order or with a wrong sum, or the
 * total differs from the sum in a row.
 */
#include "example_util.h"

/* A range of numbers as it travels to a worker: lo .. hi - 1. */
typedef struct range {
    uint64_t lo, hi;
} range;

/* The task: sums the Collatz steps of one range; its result is the 8-byte total. */
static int sum_range_bytes(const void *in, size_t len, cf_ctx *ctx)
{
    range r;
    if (len != sizeof r)
        return cf_fail(ctx, EINVAL, "a range is %zu bytes, not %zu", sizeof r, len);
    memcpy(&r, in, sizeof r); /* the input bytes carry no alignment promise */
    uint64_t total = sum_steps(r.lo, r.hi);
    return cf_ctx_set_output(ctx, &total, sizeof total);
}

CF_FUNCTION(sum_range_task, sum_range_bytes);

int main(int argc, char **argv)
{
    /* The pool's workers are this program started again: in them cf_init() becomes the
     * worker and never returns, so it must come before anything main() does itself. */
    cf_init(&argc, &argv);

    double start = now_seconds();

    uint64_t parts[SUM_RANGES];
    double in_a_row;
    uint64_t expected = sum_in_a_row(parts, &in_a_row);

    /* map reads its inputs in place: they must stay valid until cf_map_free(). */
    range ranges[SUM_RANGES];
    cf_bytes inputs[SUM_RANGES];
    for (int i = 0; i < SUM_RANGES; i++) {
        sum_range(i, &ranges[i].lo, &ranges[i].hi);
        inputs[i] = (cf_bytes){.data = &ranges[i], .len = sizeof ranges[i]};
    }

    double pool_start = now_seconds();
    cf_executor *pool;
    check(cf_executor_new(&pool, CF_BACKEND_PROCESSES, NULL), "cf_executor_new");
    cf_map *map;
    check(cf_map_bytes_start(&map, pool, &sum_range_task, inputs, SUM_RANGES, NULL),
          "cf_map_bytes_start");

    uint64_t total = 0;
    size_t expected_index = 0;
    size_t index;
    void *value;
    int rc;
    while ((rc = cf_map_next(map, &index, &value)) != CF_EEND) {
        check(rc, "cf_map_next");
        expect(index == expected_index, "results come in input order");
        expect(cf_map_value_len(map) == sizeof(uint64_t), "a result is one 64-bit total");
        uint64_t part;
        memcpy(&part, value, sizeof part);
        expect(part == parts[index], "the range's sum equals its sum in a row");
        printf("range %zu: %" PRIu64 " steps\n", index + 1, part);
        total += part;
        expected_index++;
    }
    expect(expected_index == SUM_RANGES, "every range gave a result");
    cf_map_free(map);
    int workers = cf_executor_workers(pool);
    cf_executor_free(pool); /* lets the workers go and waits for them */
    double parallel = now_seconds() - pool_start;

    printf("Pool of %d worker processes: %" PRIu64 " steps in %.2f second(s)\n", workers,
           total, parallel);
    expect(total == expected, "the pool's sum equals the sum in a row");
    print_speedup(in_a_row, parallel);

    print_finished(start);
    return 0;
}
