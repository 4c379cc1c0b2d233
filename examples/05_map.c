/*
 * 05_map.c -- one function over many inputs, results in input order.
 *
 * Shows: cf_map_start() runs the task over the inputs 5, 4, 3, 2, 1 concurrently, and
 * cf_map_next() hands the results back in input order, whatever order they finish in:
 * the five-unit result comes first (after five units), then the others at once, since
 * they finished meanwhile.  Then the same map again the way Python's with-block runs
 * it, every item run and waited for without reading the results (cf_map_wait).  Each part
 * takes about five units.
 *
 * Expected output (the "Sleeping" lines come in any order):
 *     Sleeping 5 unit(s)...  ... Sleeping 1 unit(s)...
 *     Done Sleeping...5
 *     Done Sleeping...4
 *     Done Sleeping...3
 *     Done Sleeping...2
 *     Done Sleeping...1
 *     Sleeping 5 unit(s)...  ... Sleeping 1 unit(s)...
 *     Ran all 5 items again without reading them (cf_map_wait)
 *     Finished in 1.00 second(s)
 *
 * Exits non-zero if a call fails, a position comes out of order, or a result is wrong.
 */
#include "example_util.h"

#define ITEMS 5

int main(void)
{
    double start = now_seconds();

    cf_executor_opts opts;
    cf_executor_opts_init(&opts);
    opts.workers = ITEMS;
    cf_executor *pool;
    check(cf_executor_new(&pool, CF_BACKEND_THREADS, &opts), "cf_executor_new");

    /* map takes an array of pointers, one per input; they must stay valid until
     * cf_map_free(). */
    int units[ITEMS] = {5, 4, 3, 2, 1};
    void *inputs[ITEMS];
    for (int i = 0; i < ITEMS; i++)
        inputs[i] = &units[i];

    /* The default schedule (CF_CHUNK_AUTO) times the items: long ones like these waits go
     * out one at a time, so all five wait together, while many tiny ones would go out in
     * ranges of thousands.  opts may be NULL for those defaults; cf_map_opts.chunk = N
     * would hand out exactly N items at a time instead. */
    cf_map *map;
    check(cf_map_start(&map, pool, do_something_task, inputs, ITEMS, NULL), "cf_map_start");

    size_t expected_index = 0;
    size_t index;
    void *value;
    int rc;
    while ((rc = cf_map_next(map, &index, &value)) != CF_EEND) {
        check(rc, "cf_map_next");
        expect(index == expected_index, "results come in input order");
        char *message = value;
        expect(is_done_message(message, units[index]), "the result is the task's message");
        printf("%s\n", message);
        free(message); /* the task's own allocation: the map does not free it */
        expected_index++;
    }
    expect(expected_index == ITEMS, "every input gave a result");

    cf_map_free(map);

    /* Python's `with ThreadPoolExecutor() as executor: executor.map(f, items)` runs every
     * item although nobody reads the results.  cf_map_free alone would stop the items not
     * started yet (it is how a program abandons a map); cf_map_wait runs them all first,
     * drops the results (here through `discard`, which frees each message) and says how
     * many failed, which Python's with-block would not. */
    cf_map_opts drop;
    cf_map_opts_init(&drop);
    drop.discard = free;
    check(cf_map_start(&map, pool, do_something_task, inputs, ITEMS, &drop), "cf_map_start");
    size_t failed;
    check(cf_map_wait(map, &failed), "cf_map_wait");
    expect(failed == 0, "every item ran and succeeded");
    cf_map_free(map);
    printf("Ran all %d items again without reading them (cf_map_wait)\n", ITEMS);

    cf_executor_free(pool);

    print_finished(start);
    return 0;
}
