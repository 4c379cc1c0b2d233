/*
 * test_map.c -- cf_map_bytes_start / cf_map_start / cf_map_next: results in input order,
 * per-position errors, chunking, the in-flight bound, the deadline, early free, edge cases
 * and a million items (SEMANTICS 13, with 12 for refusals).
 *
 * Bytes maps run on every backend (CF_TEST_BACKEND); pointer maps and their discard hook
 * are the thread pool's (the last two tests).  Items that must be running or unfinished at
 * a given moment are x-tasks waiting at gates the test opens; items count their starts on
 * latches shared with worker processes.  Where several items must run at once, the
 * executor's workers are started first (tu_start_workers) and max_in_flight bounds how many
 * items are handed out, since a process pool hands a worker more than one item at a time.
 * The in-flight bound is checked by the items themselves against a count the consumer keeps
 * (see map_max_in_flight_bounds_started_items for why the check cannot fire falsely).
 */
#include "testutil.h"

#include <math.h> /* NAN */

CF_FUNCTION(xor_fn, tu_bytes_xor);
CF_FUNCTION(maybe_fail_fn, tu_bytes_maybe_fail);

static int64_t map_value(int64_t i)
{
    return i * 3 + 1;
}

/* Input: an int64_t i; output: the int64_t 3i+1. */
static int bytes_affine(const void *in, size_t len, cf_ctx *ctx)
{
    int64_t i, v;
    if (len != sizeof i)
        return cf_fail(ctx, 1, "input of %zu bytes", len);
    memcpy(&i, in, sizeof i);
    v = map_value(i);
    return cf_ctx_set_output(ctx, &v, sizeof v) == 0 ? 0 : cf_fail(ctx, 12, "no memory");
}

CF_FUNCTION(affine_fn, bytes_affine);

/* Inputs 0 .. n-1 as int64_t bytes. */
typedef struct index_inputs {
    int64_t *v;
    cf_bytes *b;
} index_inputs;

static index_inputs index_inputs_new(size_t n)
{
    index_inputs in;
    size_t i;
    in.v = malloc((n ? n : 1) * sizeof *in.v);
    in.b = malloc((n ? n : 1) * sizeof *in.b);
    assert_non_null(in.v);
    assert_non_null(in.b);
    for (i = 0; i < n; i++) {
        in.v[i] = (int64_t)i;
        in.b[i].data = &in.v[i];
        in.b[i].len = sizeof in.v[i];
    }
    return in;
}

static void index_inputs_free(index_inputs *in)
{
    free(in->v);
    free(in->b);
}

/* The int64_t value of the position last returned by m. */
static int64_t map_last_value(cf_map *m, void *v)
{
    return tu_xvalue(v, cf_map_value_len(m));
}

/* Reads every position of m and checks it is in order with value 3i+1. */
static void consume_affine(cf_map *m, size_t n)
{
    size_t i, idx = 0;
    void *v = NULL;
    for (i = 0; i < n; i++) {
        int rc = cf_map_next(m, &idx, &v);
        if (rc != 0 || idx != i || map_last_value(m, v) != map_value((int64_t)i))
            fail_msg("position %zu: rc %s, index %zu", i, cf_err_name(rc), idx);
    }
    assert_int_equal(cf_map_next(m, &idx, &v), CF_EEND);
}

/* n x-task inputs: item i returns map_value(i), is held at gate[i] (gate NULL: none, or
 * shared: one gate for all when gates_shared), and counts itself on started/finished. */
typedef struct xitems {
    tu_xmsg *msg;
    cf_bytes *b;
} xitems;

static xitems xitems_new(size_t n, tu_gate *gates, int gates_shared, size_t ungated,
                         tu_latch *started, tu_latch *finished)
{
    xitems it;
    size_t i;
    it.msg = malloc((n ? n : 1) * sizeof *it.msg);
    it.b = malloc((n ? n : 1) * sizeof *it.b);
    assert_non_null(it.msg);
    assert_non_null(it.b);
    for (i = 0; i < n; i++) {
        tu_xtask t = {.started = started, .finished = finished, .value = map_value((int64_t)i)};
        if (gates != NULL && i >= ungated)
            t.gate = gates_shared ? gates : &gates[i];
        it.b[i] = tu_xtask_input(&t, &it.msg[i]);
    }
    return it;
}

static void xitems_free(xitems *it)
{
    free(it->msg);
    free(it->b);
}

/* ---- order ------------------------------------------------------------------------- */

enum { ORD_N = 4 };

/* SEMANTICS 13: results come in input order although the items complete in reverse order
 * (each item held at its own gate, the gates opened last to first, each completion seen
 * before the next gate opens). */
static void map_input_order_with_reverse_completion(void **state)
{
    tu_gate gate[ORD_N];
    tu_latch started, finished;
    xitems items;
    cf_map_opts mo;
    cf_map *m = NULL;
    cf_executor *ex;
    int i;
    (void)state;
    tu_latch_init(&started);
    tu_latch_init(&finished);
    for (i = 0; i < ORD_N; i++)
        tu_gate_init(&gate[i]);
    items = xitems_new(ORD_N, gate, 0, 0, &started, &finished);
    ex = make_executor(ORD_N, NULL);
    tu_start_workers(ex);
    cf_map_opts_init(&mo);
    mo.chunk = 1;
    assert_int_equal(cf_map_bytes_start(&m, ex, &tu_xtask_fn, items.b, ORD_N, &mo), 0);
    if (tu_latch_wait(&started, ORD_N, TU_LONG) != 0)
        fail_msg("only %d of %d items run at once with chunk 1 on %d workers",
                 tu_latch_count(&started), ORD_N, ORD_N);
    for (i = ORD_N - 1; i >= 0; i--) {
        tu_gate_open(&gate[i]);
        assert_int_equal(tu_latch_wait(&finished, ORD_N - i, TU_LONG), 0);
    }
    for (i = 0; i < ORD_N; i++) {
        size_t idx = 99;
        void *v = NULL;
        assert_int_equal(cf_map_next(m, &idx, &v), 0);
        assert_int_equal(idx, i);
        assert_int_equal(map_last_value(m, v), map_value(i));
    }
    assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
    assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
    cf_map_free(m);
    cf_executor_free(ex);
    xitems_free(&items);
    for (i = 0; i < ORD_N; i++)
        tu_gate_destroy(&gate[i]);
    tu_latch_destroy(&started);
    tu_latch_destroy(&finished);
}

/* ---- errors ------------------------------------------------------------------------ */

/* SEMANTICS 13, 4: one failing item does not hide or cancel the others: each position
 * reports its own outcome, the failed ones with their own code and message. */
static void map_each_position_own_outcome(void **state)
{
    enum { N = 20 };
    tu_xmsg msg[N];
    cf_bytes in[N];
    cf_map *m = NULL;
    cf_executor *ex;
    size_t i;
    (void)state;
    for (i = 0; i < N; i++) {
        tu_xtask t = {.value = map_value((int64_t)i)};
        if (i == 3 || i == 11)
            t.code = 30 + (int)i;
        in[i] = tu_xtask_input(&t, &msg[i]);
    }
    ex = make_executor(3, NULL);
    assert_int_equal(cf_map_bytes_start(&m, ex, &tu_xtask_fn, in, N, NULL), 0);
    for (i = 0; i < N; i++) {
        size_t idx = 99;
        void *v = NULL;
        int rc = cf_map_next(m, &idx, &v);
        assert_int_equal(idx, i);
        if (i == 3 || i == 11) {
            int code = 0;
            const char *message = NULL;
            char expect[64];
            assert_int_equal(rc, CF_ETASK);
            cf_map_error(m, &code, &message);
            assert_int_equal(code, 30 + (int)i);
            snprintf(expect, sizeof expect, "task %d failed with %d",
                     (int)map_value((int64_t)i), 30 + (int)i);
            assert_string_equal(message, expect);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(map_last_value(m, v), map_value((int64_t)i));
        }
    }
    assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
    cf_map_free(m);
    cf_executor_free(ex);
}

/* ---- chunk ------------------------------------------------------------------------- */

static int bytes_worker_index(const void *in, size_t len, cf_ctx *ctx)
{
    int64_t w = cf_ctx_worker(ctx);
    (void)in;
    (void)len;
    return cf_ctx_set_output(ctx, &w, sizeof w) == 0 ? 0 : cf_fail(ctx, 12, "no memory");
}

CF_FUNCTION(worker_index_fn, bytes_worker_index);

/* SEMANTICS 13: chunk 0 is CF_EINVAL; other chunk sizes (smaller than, not dividing, or
 * larger than n) give the right results; a chunk of all n items goes to one worker. */
static void map_chunk_option(void **state)
{
    static const size_t chunks[] = {1, 5, 23, 1000, CF_CHUNK_AUTO};
    enum { N = 23, WHOLE = 40 };
    index_inputs in = index_inputs_new(WHOLE);
    cf_map_opts mo;
    cf_map *m = NULL;
    cf_executor *ex;
    size_t c, i;
    void *v = NULL;
    int64_t first = -1;
    (void)state;
    ex = make_executor(2, NULL);
    cf_map_opts_init(&mo);
    assert_true(mo.chunk == CF_CHUNK_AUTO);
    assert_int_equal(mo.max_in_flight, 0);
    assert_true(mo.timeout < 0);
    mo.chunk = 0;
    assert_int_equal(cf_map_bytes_start(&m, ex, &affine_fn, in.b, N, &mo), CF_EINVAL);
    assert_null(m);
    for (c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        mo.chunk = chunks[c];
        assert_int_equal(cf_map_bytes_start(&m, ex, &affine_fn, in.b, N, &mo), 0);
        consume_affine(m, N);
        cf_map_free(m);
        m = NULL;
    }
    mo.chunk = WHOLE;
    assert_int_equal(cf_map_bytes_start(&m, ex, &worker_index_fn, in.b, WHOLE, &mo), 0);
    for (i = 0; i < WHOLE; i++) {
        assert_int_equal(cf_map_next(m, NULL, &v), 0);
        if (i == 0)
            first = map_last_value(m, v);
        assert_true(first >= 0 && first < 2);
        assert_int_equal(map_last_value(m, v), first);
    }
    cf_map_free(m);
    cf_executor_free(ex);
    index_inputs_free(&in);
}

/* ---- max_in_flight ----------------------------------------------------------------- */

/* A flight item: its index and the words it shares with the consumer. */
typedef struct flight_msg {
    tu_xhead head;
    uint32_t started;  /* items whose task has begun */
    uint32_t consumed; /* positions the consumer has asked for (see below) */
    uint32_t worst;    /* largest started - consumed seen by any item */
    int64_t index;
} flight_msg;

static int bytes_flight(const void *in, size_t len, cf_ctx *ctx)
{
    flight_msg m;
    _Atomic uint32_t *started, *consumed, *worst;
    int64_t v;
    uint32_t w;
    int32_t seen;
    if (len != sizeof m)
        return cf_fail(ctx, TU_EXMSG, "input of %zu bytes", len);
    memcpy(&m, in, sizeof m);
    started = tu_xword(&m.head, m.started);
    consumed = tu_xword(&m.head, m.consumed);
    worst = tu_xword(&m.head, m.worst);
    if (started == NULL || consumed == NULL || worst == NULL)
        return cf_fail(ctx, TU_EXMSG, "cannot reach %s", m.head.region);
    seen = (int32_t)(atomic_fetch_add(started, 1) + 1 - atomic_load(consumed));
    w = atomic_load(worst);
    while (seen > (int32_t)w && !atomic_compare_exchange_weak(worst, &w, (uint32_t)seen))
        ;
    v = map_value(m.index);
    return cf_ctx_set_output(ctx, &v, sizeof v) == 0 ? 0 : cf_fail(ctx, 12, "no memory");
}

CF_FUNCTION(flight_fn, bytes_flight);

/*
 * SEMANTICS 13: max_in_flight bounds the items started but not yet consumed, while the
 * consumer is slow.  The consumer counts a position as consumed just BEFORE asking for it,
 * so its count is never below the library's, and each item counts itself after the library
 * started it, so started - consumed as seen by an item can only under-state the true figure:
 * a value above the bound is a real violation.
 */
static void map_max_in_flight_bounds_started_items(void **state)
{
    static const struct {
        size_t bound, chunk;
    } cfg[] = {{1, CF_CHUNK_AUTO}, {4, CF_CHUNK_AUTO}, {5, 1}, {3, 8}};
    enum { N = 300 };
    static flight_msg msg[N];
    static cf_bytes in[N];
    cf_executor *ex;
    size_t k, i;
    (void)state;
    ex = make_executor(3, NULL);
    for (k = 0; k < sizeof cfg / sizeof cfg[0]; k++) {
        tu_latch started, consumed, worst;
        cf_map_opts mo;
        cf_map *m = NULL;
        tu_latch_init(&started);
        tu_latch_init(&consumed);
        tu_latch_init(&worst);
        for (i = 0; i < N; i++) {
            memset(&msg[i], 0, sizeof msg[i]);
            tu_xhead_init(&msg[i].head);
            msg[i].started = started.w;
            msg[i].consumed = consumed.w;
            msg[i].worst = worst.w;
            msg[i].index = (int64_t)i;
            in[i].data = &msg[i];
            in[i].len = sizeof msg[i];
        }
        cf_map_opts_init(&mo);
        mo.max_in_flight = cfg[k].bound;
        mo.chunk = cfg[k].chunk;
        assert_int_equal(cf_map_bytes_start(&m, ex, &flight_fn, in, N, &mo), 0);
        for (i = 0; i < N; i++) {
            size_t idx = 0;
            void *v = NULL;
            tu_sleep(0.0003); /* a slow consumer: producers get every chance to run ahead */
            tu_latch_arrive(&consumed);
            assert_int_equal(cf_map_next(m, &idx, &v), 0);
            assert_int_equal(idx, i);
            assert_int_equal(map_last_value(m, v), map_value((int64_t)i));
        }
        assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
        cf_map_free(m);
        print_message("max_in_flight %zu chunk %zd: worst seen %d\n", cfg[k].bound,
                      (ssize_t)cfg[k].chunk, tu_latch_count(&worst));
        assert_true(tu_latch_count(&worst) >= 1);
        assert_true(tu_latch_count(&worst) <= (int)cfg[k].bound);
        assert_int_equal(tu_latch_count(&started), N);
        tu_latch_destroy(&worst);
        tu_latch_destroy(&consumed);
        tu_latch_destroy(&started);
    }
    cf_executor_free(ex);
}

/* ---- deadline ---------------------------------------------------------------------- */

/* SEMANTICS 13: the deadline counts from the start; once it passes, the position being
 * waited for and every later unfinished one report CF_ETIMEDOUT, and items not started by
 * then never start, even when workers become free again.  2 workers, chunk 1, at most 2
 * items in flight: items 0-1 finish at once; once consumed they let items 2-3 start, which
 * wait at a gate opened only after the deadline; items 4 and later cannot start before the
 * deadline (the bound) and must not start after it. */
static void map_deadline_times_out_remaining(void **state)
{
    enum { N = 8, UNGATED = 2, BOUND = 2 };
    tu_gate gate;
    tu_latch started, finished;
    xitems items;
    cf_map_opts mo;
    cf_map *m = NULL;
    cf_executor *ex;
    double t0;
    int at_deadline = -1, total;
    size_t i;
    (void)state;
    tu_gate_init(&gate);
    tu_latch_init(&started);
    tu_latch_init(&finished);
    items = xitems_new(N, &gate, 1, UNGATED, &started, &finished);
    ex = make_executor(2, NULL);
    tu_start_workers(ex);
    cf_map_opts_init(&mo);
    mo.chunk = 1;
    mo.max_in_flight = BOUND;
    mo.timeout = 0.3;
    t0 = tu_now();
    assert_int_equal(cf_map_bytes_start(&m, ex, &tu_xtask_fn, items.b, N, &mo), 0);
    for (i = 0; i < N; i++) {
        size_t idx = 99;
        void *v = NULL;
        int rc = cf_map_next(m, &idx, &v);
        assert_int_equal(idx, i);
        if (i < UNGATED) {
            assert_int_equal(rc, 0);
            assert_int_equal(map_last_value(m, v), map_value((int64_t)i));
            continue;
        }
        assert_int_equal(rc, CF_ETIMEDOUT);
        assert_true(tu_now() - t0 >= 0.3 - 1e-3);
        if (at_deadline < 0)
            at_deadline = tu_latch_count(&started);
    }
    assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
    assert_true(at_deadline > UNGATED); /* some held item was running at the deadline */
    tu_gate_open(&gate);
    cf_map_free(m);       /* waits for the running ones */
    cf_executor_free(ex); /* and nothing else can start any more */
    total = tu_latch_count(&started);
    print_message("started: %d at the deadline, %d in all\n", at_deadline, total);
    assert_true(total >= at_deadline && total <= UNGATED + BOUND);
    assert_int_equal(tu_latch_count(&finished), total);
    xitems_free(&items);
    tu_latch_destroy(&started);
    tu_latch_destroy(&finished);
    tu_gate_destroy(&gate);
}

/* SEMANTICS 13 (issue 12 item 8): no position starts after the deadline, also one already
 * handed to a worker process ahead of time.  One worker, every item held at one gate, no
 * in-flight bound: item 0 is running at the deadline and the rest are queued (threads) or
 * written to the worker (processes).  The gate opens after the deadline; only item 0 may
 * ever have started.  On processes the others used to start once the worker was free
 * (positions starting 0.2-1 s after a 0.45 s deadline, cf_map_free blocking meanwhile). */
static void map_deadline_stops_positions_handed_ahead(void **state)
{
    enum { N = 8 };
    tu_gate gate;
    tu_latch started, finished;
    cf_map_opts mo;
    cf_map *m = NULL;
    (void)state;
    tu_gate_init(&gate);
    tu_latch_init(&started);
    tu_latch_init(&finished);
    xitems items = xitems_new(N, &gate, 1, 0, &started, &finished);
    cf_executor *ex = make_executor(1, NULL);
    tu_start_workers(ex);
    cf_map_opts_init(&mo);
    mo.timeout = 0.3;
    assert_int_equal(cf_map_bytes_start(&m, ex, &tu_xtask_fn, items.b, N, &mo), 0);
    assert_int_equal(tu_latch_wait(&started, 1, TU_LONG), 0);
    for (size_t i = 0; i < N; i++) {
        size_t idx = 99;
        void *v = NULL;
        assert_int_equal(cf_map_next(m, &idx, &v), CF_ETIMEDOUT);
        assert_int_equal(idx, i);
    }
    assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
    tu_gate_open(&gate);
    cf_map_free(m);
    cf_executor_free(ex);
    int total = tu_latch_count(&started);
    print_message("positions started: %d of %d\n", total, N);
    assert_int_equal(total, 1);
    assert_int_equal(tu_latch_count(&finished), 1);
    xitems_free(&items);
    tu_latch_destroy(&started);
    tu_latch_destroy(&finished);
    tu_gate_destroy(&gate);
}

static void *open_gate_later(void *arg)
{
    tu_sleep(0.2);
    tu_gate_open(arg);
    return NULL;
}

/* SEMANTICS 13 (issue 12 item 8): cf_map_free starts no position, also none already
 * handed to a worker process: one worker, every item held at one gate, no in-flight
 * bound, the map freed while item 0 runs (the gate opens 0.2 s later): only item 0 ever
 * starts.  On processes the others written ahead to the worker used to run. */
static void map_free_stops_positions_handed_ahead(void **state)
{
    enum { N = 8 };
    tu_gate gate;
    tu_latch started;
    cf_map *m = NULL;
    (void)state;
    tu_gate_init(&gate);
    tu_latch_init(&started);
    xitems items = xitems_new(N, &gate, 1, 0, &started, NULL);
    cf_executor *ex = make_executor(1, NULL);
    tu_start_workers(ex);
    assert_int_equal(cf_map_bytes_start(&m, ex, &tu_xtask_fn, items.b, N, NULL), 0);
    assert_int_equal(tu_latch_wait(&started, 1, TU_LONG), 0);
    pthread_t opener = tu_thread_start(open_gate_later, &gate);
    cf_map_free(m); /* waits for item 0 */
    tu_thread_join(opener);
    cf_executor_free(ex);
    int total = tu_latch_count(&started);
    print_message("positions started: %d of %d\n", total, N);
    assert_int_equal(total, 1);
    xitems_free(&items);
    tu_latch_destroy(&started);
    tu_gate_destroy(&gate);
}

/* ---- early free -------------------------------------------------------------------- */

/* SEMANTICS 13: freeing a map half consumed stops it: no item starts after cf_map_free
 * returns (checked after the executor, and so every worker, is gone); a map freed before
 * any next() too.  ASan reports anything left allocated. */
static void map_free_early_stops_items(void **state)
{
    enum { N = 200, HALF = 100, BOUND = 8 };
    tu_latch started, started2;
    xitems items, items2;
    cf_map_opts mo;
    cf_map *m = NULL, *m2 = NULL;
    cf_executor *ex;
    int at_free, at_free2;
    size_t i;
    (void)state;
    tu_latch_init(&started);
    tu_latch_init(&started2);
    items = xitems_new(N, NULL, 0, 0, &started, NULL);
    items2 = xitems_new(N, NULL, 0, 0, &started2, NULL);
    ex = make_executor(2, NULL);
    cf_map_opts_init(&mo);
    mo.chunk = 1;
    mo.max_in_flight = BOUND;
    assert_int_equal(cf_map_bytes_start(&m, ex, &tu_xtask_fn, items.b, N, &mo), 0);
    for (i = 0; i < HALF; i++) {
        void *v = NULL;
        assert_int_equal(cf_map_next(m, NULL, &v), 0);
        assert_int_equal(map_last_value(m, v), map_value((int64_t)i));
    }
    cf_map_free(m);
    at_free = tu_latch_count(&started);
    assert_true(at_free >= HALF && at_free <= HALF + BOUND);

    assert_int_equal(cf_map_bytes_start(&m2, ex, &tu_xtask_fn, items2.b, N, &mo), 0);
    cf_map_free(m2);
    at_free2 = tu_latch_count(&started2);
    assert_true(at_free2 <= BOUND);

    cf_executor_free(ex);
    assert_int_equal(tu_latch_count(&started), at_free);
    assert_int_equal(tu_latch_count(&started2), at_free2);
    cf_map_free(NULL);
    xitems_free(&items);
    xitems_free(&items2);
    tu_latch_destroy(&started);
    tu_latch_destroy(&started2);
}

/* SEMANTICS 13: cf_map_free waits for the items running when it is called and starts no
 * other (gated items, 2 workers, at most 2 in flight: only the two running ever run). */
static void map_free_waits_for_running_items(void **state)
{
    enum { N = 10 };
    tu_gate gate;
    tu_latch started, finished;
    tu_opener op;
    xitems items;
    cf_map_opts mo;
    cf_map *m = NULL;
    cf_executor *ex;
    double t0;
    int running;
    (void)state;
    tu_watchdog(120);
    tu_gate_init(&gate);
    tu_latch_init(&started);
    tu_latch_init(&finished);
    items = xitems_new(N, &gate, 1, 0, &started, &finished);
    ex = make_executor(2, NULL);
    tu_start_workers(ex);
    cf_map_opts_init(&mo);
    mo.chunk = 1;
    mo.max_in_flight = 2;
    assert_int_equal(cf_map_bytes_start(&m, ex, &tu_xtask_fn, items.b, N, &mo), 0);
    if (tu_latch_wait(&started, 2, TU_LONG) != 0)
        fail_msg("with chunk 1, only %d item(s) of %d started on 2 workers",
                 tu_latch_count(&started), N);
    running = tu_latch_count(&started);
    assert_int_equal(running, 2); /* both workers wait at the gate */
    t0 = tu_now();
    tu_open_later(&op, &gate, 0.3);
    cf_map_free(m);
    assert_true(tu_now() - t0 >= 0.3 - 1e-3);
    assert_int_equal(tu_latch_count(&finished), running);
    tu_opener_join(&op);
    cf_executor_free(ex);
    assert_int_equal(tu_latch_count(&started), running);
    xitems_free(&items);
    tu_latch_destroy(&started);
    tu_latch_destroy(&finished);
    tu_gate_destroy(&gate);
}

/* ---- edge cases -------------------------------------------------------------------- */

/* SEMANTICS 13: n = 0 ends at once; invalid arguments are CF_EINVAL; a shut-down executor
 * refuses maps with CF_ESHUTDOWN (SEMANTICS 12). */
static void map_edge_cases(void **state)
{
    cf_bytes b = {"x", 1};
    cf_function no_fn = {"no_fn", NULL};
    cf_map *m = NULL;
    cf_executor *ex;
    (void)state;
    tu_watchdog(120);
    ex = make_executor(1, NULL);
    assert_int_equal(cf_map_bytes_start(&m, ex, &xor_fn, NULL, 0, NULL), 0);
    assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
    assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
    cf_map_free(m);
    m = NULL;
    assert_int_equal(cf_map_bytes_start(&m, ex, NULL, &b, 1, NULL), CF_EINVAL);
    assert_null(m);
    assert_int_equal(cf_map_bytes_start(&m, ex, &no_fn, &b, 1, NULL), CF_EINVAL);
    assert_null(m);
    assert_int_equal(cf_map_bytes_start(&m, ex, &xor_fn, NULL, 1, NULL), CF_EINVAL);
    assert_null(m);
    assert_int_equal(cf_shutdown(ex, 0), 0);
    assert_int_equal(cf_map_bytes_start(&m, ex, &xor_fn, &b, 1, NULL), CF_ESHUTDOWN);
    assert_null(m);
    cf_executor_free(ex);
}

#ifdef CF_STRESS_SHORT
#define MILLION 250000 /* a sanitized process pool takes ~15 us per item */
#else
#define MILLION 1000000
#endif

/* SEMANTICS 13: a million tiny items (a quarter of that under the sanitizers), default
 * options and with a bound, give every value in order. */
static void map_million_items(void **state)
{
    index_inputs in = index_inputs_new(MILLION);
    cf_map_opts mo;
    cf_map *m = NULL;
    cf_executor *ex;
    (void)state;
    ex = make_executor(CF_WORKERS_AUTO, NULL);
    assert_int_equal(cf_map_bytes_start(&m, ex, &affine_fn, in.b, MILLION, NULL), 0);
    consume_affine(m, MILLION);
    cf_map_free(m);
    cf_map_opts_init(&mo);
    mo.max_in_flight = 1000;
    assert_int_equal(cf_map_bytes_start(&m, ex, &affine_fn, in.b, MILLION, &mo), 0);
    consume_affine(m, MILLION);
    cf_map_free(m);
    cf_executor_free(ex);
    index_inputs_free(&in);
}

/* SEMANTICS 13: a bytes map over inputs of 0 to 3,000 bytes gives each position's bytes
 * and length in order; a failing position reports its own error. */
static void map_bytes(void **state)
{
    enum { N = 64 };
    cf_bytes in[N];
    unsigned char *buf[N];
    cf_map *m = NULL;
    cf_executor *ex;
    size_t i, j;
    (void)state;
    ex = make_executor(3, NULL);
    for (i = 0; i < N; i++) {
        size_t len = (i * 47) % 3001;
        buf[i] = malloc(len ? len : 1);
        assert_non_null(buf[i]);
        tu_fill_pattern(buf[i], len, (unsigned)i);
        in[i].data = buf[i];
        in[i].len = len;
    }
    assert_int_equal(cf_map_bytes_start(&m, ex, &xor_fn, in, N, NULL), 0);
    for (i = 0; i < N; i++) {
        size_t idx = 99;
        void *v = NULL;
        const unsigned char *out;
        assert_int_equal(cf_map_next(m, &idx, &v), 0);
        assert_int_equal(idx, i);
        assert_int_equal(cf_map_value_len(m), in[i].len);
        out = v;
        for (j = 0; j < in[i].len; j++)
            if (out[j] != (buf[i][j] ^ 0x5a))
                fail_msg("position %zu byte %zu differs", i, j);
    }
    assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
    cf_map_free(m);
    m = NULL;

    buf[5][0] = '!';
    buf[5][1] = 19;
    assert_int_equal(cf_map_bytes_start(&m, ex, &maybe_fail_fn, in, N, NULL), 0);
    for (i = 0; i < N; i++) {
        void *v = NULL;
        int rc = cf_map_next(m, NULL, &v);
        if (i == 5) {
            int code = 0;
            const char *msg = NULL;
            assert_int_equal(rc, CF_ETASK);
            cf_map_error(m, &code, &msg);
            assert_int_equal(code, 19);
            assert_non_null(msg);
        } else {
            assert_int_equal(rc, 0);
            assert_int_equal(cf_map_value_len(m), in[i].len);
            if (in[i].len > 0)
                assert_memory_equal(v, buf[i], in[i].len);
        }
    }
    cf_map_free(m);
    cf_executor_free(ex);
    for (i = 0; i < N; i++)
        free(buf[i]);
}

/* Timeouts: NaN is CF_EINVAL for every call that takes one. */
static void nan_timeouts_refused(void **state)
{
    tu_xtask t = {.value = 1};
    cf_bytes b = {"x", 1};
    cf_executor *ex;
    cf_future *f;
    cf_map *m = NULL;
    cf_as_completed *it = NULL;
    cf_map_opts mo;
    size_t nd;
    (void)state;
    ex = make_executor(1, NULL);
    f = tu_xsubmit(ex, &t);
    assert_int_equal(cf_future_result(f, NAN, NULL), CF_EINVAL);
    assert_int_equal(cf_future_wait(f, NAN), CF_EINVAL);
    assert_int_equal(cf_future_bytes(f, NAN, NULL, NULL), CF_EINVAL);
    assert_int_equal(cf_wait(&f, 1, CF_ALL_COMPLETED, NAN, NULL, &nd, NULL, NULL), CF_EINVAL);
    assert_int_equal(cf_as_completed_new(&it, &f, 1, NAN), CF_EINVAL);
    assert_null(it);
    cf_map_opts_init(&mo);
    mo.timeout = NAN;
    assert_int_equal(cf_map_bytes_start(&m, ex, &xor_fn, &b, 1, &mo), CF_EINVAL);
    assert_null(m);
    assert_int_equal(tu_xresult(f, TU_LONG), 1);
    cf_future_release(f);
    cf_executor_free(ex);
}

/* ---- pointer maps (the thread pool) ------------------------------------------------- */

/* Input i (as a pointer) -> 3i+1. */
static int task_affine(void *arg, void **result, cf_ctx *ctx)
{
    (void)ctx;
    *result = (void *)(intptr_t)map_value((intptr_t)arg);
    return 0;
}

/* SEMANTICS 13 for pointer tasks: values in order (cf_map_value_len 0), chunk 0 and
 * missing arguments are CF_EINVAL, n = 0 ends at once, a shut-down executor refuses. */
static void map_pointer_tasks(void **state)
{
    enum { N = 1000 };
    static void *inputs[N];
    cf_map_opts mo;
    cf_map *m = NULL;
    cf_executor *ex;
    size_t i, idx = 0;
    void *v = NULL;
    (void)state;
    for (i = 0; i < N; i++)
        inputs[i] = (void *)(intptr_t)i;
    ex = make_thread_executor(2, NULL);
    assert_int_equal(cf_map_start(&m, ex, task_affine, inputs, N, NULL), 0);
    for (i = 0; i < N; i++) {
        assert_int_equal(cf_map_next(m, &idx, &v), 0);
        assert_int_equal(idx, i);
        assert_ptr_equal(v, (void *)(intptr_t)map_value((int64_t)i));
        assert_int_equal(cf_map_value_len(m), 0);
    }
    assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
    cf_map_free(m);
    m = NULL;
    cf_map_opts_init(&mo);
    mo.chunk = 0;
    assert_int_equal(cf_map_start(&m, ex, task_affine, inputs, N, &mo), CF_EINVAL);
    assert_null(m);
    assert_int_equal(cf_map_start(&m, ex, NULL, inputs, 1, NULL), CF_EINVAL);
    assert_null(m);
    assert_int_equal(cf_map_start(&m, ex, task_affine, NULL, 1, NULL), CF_EINVAL);
    assert_null(m);
    assert_int_equal(cf_map_start(&m, ex, task_affine, NULL, 0, NULL), 0);
    assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
    cf_map_free(m);
    m = NULL;
    assert_int_equal(cf_shutdown(ex, 0), 0);
    assert_int_equal(cf_map_start(&m, ex, task_affine, inputs, 1, NULL), CF_ESHUTDOWN);
    assert_null(m);
    cf_executor_free(ex);
}

typedef struct owned_results {
    tu_gate *gate;       /* positions >= 1 wait for it */
    atomic_int produced; /* results allocated by tasks */
    atomic_int discarded;
} owned_results;

static owned_results *owned; /* the test running now: discard has no user pointer */

static int task_owned(void *arg, void **result, cf_ctx *ctx)
{
    intptr_t i = (intptr_t)arg;
    (void)ctx;
    if (i >= 1 && tu_gate_wait(owned->gate, TU_LONG) != 0)
        return 1;
    *result = malloc(16);
    if (*result == NULL)
        return 2;
    atomic_fetch_add(&owned->produced, 1);
    return 0;
}

static void discard_owned(void *value)
{
    free(value);
    atomic_fetch_add(&owned->discarded, 1);
}

/* SEMANTICS 13 (and cf_map_opts.discard, for pointer maps): a result produced after its
 * position reported CF_ETIMEDOUT, and results produced but never consumed before
 * cf_map_free, are handed to discard exactly once each; results that were returned are not
 * (ASan checks no leak). */
static void map_discard_gets_unreturned_results(void **state)
{
    enum { N = 4 };
    void *inputs[N];
    tu_gate gate;
    owned_results r;
    cf_map_opts mo;
    cf_map *m = NULL;
    cf_executor *ex;
    void *v = NULL;
    size_t i;
    (void)state;
    tu_gate_init(&gate);
    r.gate = &gate;
    atomic_init(&r.produced, 0);
    atomic_init(&r.discarded, 0);
    owned = &r;
    for (i = 0; i < N; i++)
        inputs[i] = (void *)(intptr_t)i;
    ex = make_thread_executor(1, NULL);
    cf_map_opts_init(&mo);
    mo.chunk = 1;
    mo.timeout = 0.2;
    mo.discard = discard_owned;
    assert_int_equal(cf_map_start(&m, ex, task_owned, inputs, N, &mo), 0);
    assert_int_equal(cf_map_next(m, NULL, &v), 0); /* position 0: ours to free */
    free(v);
    assert_int_equal(cf_map_next(m, NULL, &v), CF_ETIMEDOUT); /* position 1 still gated */
    tu_gate_open(&gate); /* position 1 now finishes, after its deadline */
    cf_map_free(m);      /* waits for position 1; positions 2, 3 never start */
    assert_int_equal(atomic_load(&r.produced), 2);
    assert_int_equal(atomic_load(&r.discarded), 1);

    /* Early free with finished but unconsumed positions. */
    atomic_store(&r.produced, 0);
    atomic_store(&r.discarded, 0);
    cf_map_opts_init(&mo);
    mo.discard = discard_owned;
    assert_int_equal(cf_map_start(&m, ex, task_owned, inputs, N, &mo), 0);
    assert_int_equal(cf_map_next(m, NULL, &v), 0);
    free(v);
    assert_int_equal(cf_map_next(m, NULL, &v), 0);
    free(v);
    cf_map_free(m); /* positions 2 and 3 may or may not have run: each one that did is
                       discarded */
    assert_int_equal(atomic_load(&r.discarded), atomic_load(&r.produced) - 2);
    cf_executor_free(ex);
    tu_gate_destroy(&gate);
}

/* ---- cf_map_wait: run them all (Python's `with executor: executor.map(...)`) ------------ */

enum { WAITALL_N = 15 };

/* cf_map_wait runs every position, also those not started and beyond a bounded window (the
 * trial's cf_map_free on an unread map ran 0 of 15), and reports the failures: positions
 * 3 and 11 fail with their own codes, the first one's outcome is returned. */
static void map_wait_runs_every_position(void **state)
{
    unsigned char data[WAITALL_N][2];
    cf_bytes in[WAITALL_N];
    cf_map_opts mo;
    cf_map *m = NULL;
    cf_executor *ex;
    size_t failed = 99, i;
    (void)state;
    for (i = 0; i < WAITALL_N; i++) {
        data[i][0] = (i == 3 || i == 11) ? '!' : 'a';
        data[i][1] = (unsigned char)(i + 1);
        in[i].data = data[i];
        in[i].len = 2;
    }
    ex = make_executor(2, NULL);
    for (int bounded = 0; bounded < 2; bounded++) {
        cf_map_opts_init(&mo);
        mo.max_in_flight = bounded ? 4 : 0;
        assert_int_equal(cf_map_bytes_start(&m, ex, &maybe_fail_fn, in, WAITALL_N, &mo), 0);
        assert_int_equal(cf_map_wait(m, &failed), CF_ETASK);
        assert_int_equal(failed, 2);
        assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
        cf_map_free(m);
    }
    /* Everything ran: all but the two failures, and after a partial read only the rest. */
    for (i = 0; i < WAITALL_N; i++)
        data[i][0] = 'a';
    assert_int_equal(cf_map_bytes_start(&m, ex, &maybe_fail_fn, in, WAITALL_N, NULL), 0);
    assert_int_equal(cf_map_next(m, NULL, NULL), 0);
    assert_int_equal(cf_map_wait(m, &failed), 0);
    assert_int_equal(failed, 0);
    assert_int_equal(cf_map_wait(m, NULL), 0); /* nothing left: still 0 */
    cf_map_free(m);
    assert_int_equal(cf_map_wait(NULL, &failed), CF_EINVAL);
    cf_executor_free(ex);
}

static _Atomic int counted_runs;

static int task_count_run(void *arg, void **result, cf_ctx *ctx)
{
    (void)arg;
    atomic_fetch_add(&counted_runs, 1);
    *result = malloc(8);
    return *result ? 0 : cf_fail(ctx, 12, "no memory");
}

static _Atomic int counted_discards;

static void discard_count(void *value)
{
    free(value);
    atomic_fetch_add(&counted_discards, 1);
}

/* Pointer maps: every position runs and every result nobody read goes to discard. */
static void map_wait_pointer_results_discarded(void **state)
{
    void *inputs[WAITALL_N] = {0};
    cf_map_opts mo;
    cf_map *m = NULL;
    cf_executor *ex = make_thread_executor(3, NULL);
    (void)state;
    cf_map_opts_init(&mo);
    mo.discard = discard_count;
    mo.max_in_flight = 2;
    assert_int_equal(cf_map_start(&m, ex, task_count_run, inputs, WAITALL_N, &mo), 0);
    assert_int_equal(cf_map_wait(m, NULL), 0);
    cf_map_free(m);
    assert_int_equal(atomic_load(&counted_runs), WAITALL_N);
    assert_int_equal(atomic_load(&counted_discards), WAITALL_N);
    cf_executor_free(ex);
}

/* ---- chunk means exactly that many items; CF_CHUNK_AUTO paces by time ------------------ */

enum { EXACT_N = 100 };

typedef struct exact_item {
    tu_gate *hold;      /* position 0 waits here */
    tu_latch *finished; /* every other position arrives here when done */
    _Atomic int *started_1;
    size_t i;
} exact_item;

static int exact_task(void *arg, void **result, cf_ctx *ctx)
{
    exact_item *it = arg;
    (void)result;
    (void)ctx;
    if (it->i == 0)
        return tu_gate_wait(it->hold, TU_LONG) == 0 ? 0 : cf_fail(ctx, TU_EGATE, "held");
    if (it->i == 1)
        atomic_store(it->started_1, 1);
    tu_latch_arrive(it->finished);
    return 0;
}

/* chunk = 2 means ranges of exactly two positions: while position 0 is held, its range
 * partner 1 cannot start and every other position can run on the second worker.  (chunk
 * used to be only the floor of guided ranges: the first range was positions 0-11, so
 * 2-11 waited behind the held position.) */
static void map_explicit_chunk_is_exact(void **state)
{
    tu_gate hold;
    tu_latch finished;
    _Atomic int started_1 = 0;
    exact_item items[EXACT_N];
    void *inputs[EXACT_N];
    cf_map_opts mo;
    cf_map *m = NULL;
    cf_executor *ex;
    size_t i;
    (void)state;
    tu_gate_init(&hold);
    tu_latch_init(&finished);
    for (i = 0; i < EXACT_N; i++) {
        items[i] = (exact_item){&hold, &finished, &started_1, i};
        inputs[i] = &items[i];
    }
    ex = make_thread_executor(2, NULL);
    tu_start_workers(ex);
    cf_map_opts_init(&mo);
    mo.chunk = 2;
    assert_int_equal(cf_map_start(&m, ex, exact_task, inputs, EXACT_N, &mo), 0);
    if (tu_latch_wait(&finished, EXACT_N - 2, TU_LONG) != 0)
        fail_msg("only %d of %d positions outside the held range ran", tu_latch_count(&finished),
                 EXACT_N - 2);
    assert_int_equal(atomic_load(&started_1), 0);
    tu_gate_open(&hold);
    for (i = 0; i < EXACT_N; i++)
        assert_int_equal(cf_map_next(m, NULL, NULL), 0);
    assert_int_equal(atomic_load(&started_1), 1);
    cf_map_free(m);
    cf_executor_free(ex);
    tu_latch_destroy(&finished);
    tu_gate_destroy(&hold);
}

enum { UNEVEN_N = 100, UNEVEN_SLOW = 12 };

/* The first 12 positions sleep 0.1 s, the rest 1 ms. */
static int uneven_task(void *arg, void **result, cf_ctx *ctx)
{
    (void)result;
    (void)ctx;
    tu_sleep((intptr_t)arg < UNEVEN_SLOW ? 0.1 : 0.001);
    return 0;
}

static double uneven_map(cf_executor *ex, void *const *inputs, size_t chunk)
{
    cf_map_opts mo;
    cf_map *m = NULL;
    double t0 = tu_now();
    cf_map_opts_init(&mo);
    mo.chunk = chunk;
    assert_int_equal(cf_map_start(&m, ex, uneven_task, inputs, UNEVEN_N, &mo), 0);
    for (size_t i = 0; i < UNEVEN_N; i++)
        assert_int_equal(cf_map_next(m, NULL, NULL), 0);
    cf_map_free(m);
    return tu_now() - t0;
}

/* On uneven work the adaptive schedule and chunk 1 are within 1.2x of one submission per
 * item (measured in the same run; guided ranges took 1.20 s against 0.65 s). */
static void map_auto_chunk_on_uneven_work(void **state)
{
    void *inputs[UNEVEN_N];
    cf_future *fs[UNEVEN_N];
    cf_executor *ex = make_thread_executor(2, NULL);
    double t0, each, autos, ones;
    size_t i;
    (void)state;
    for (i = 0; i < UNEVEN_N; i++)
        inputs[i] = (void *)(intptr_t)i;
    tu_start_workers(ex);
    t0 = tu_now();
    for (i = 0; i < UNEVEN_N; i++)
        fs[i] = tu_submit(ex, uneven_task, inputs[i]);
    assert_int_equal(cf_wait(fs, UNEVEN_N, CF_ALL_COMPLETED, TU_LONG, NULL, NULL, NULL, NULL), 0);
    each = tu_now() - t0;
    for (i = 0; i < UNEVEN_N; i++)
        cf_future_release(fs[i]);
    autos = uneven_map(ex, inputs, CF_CHUNK_AUTO);
    ones = uneven_map(ex, inputs, 1);
    print_message("uneven work: submit each %.3f s, map auto %.3f s, map chunk 1 %.3f s\n", each,
                  autos, ones);
    assert_true(autos <= 1.2 * each);
    assert_true(ones <= 1.2 * each);
    cf_executor_free(ex);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(map_input_order_with_reverse_completion),
    cmocka_unit_test(map_each_position_own_outcome),
    cmocka_unit_test(map_chunk_option),
    cmocka_unit_test(map_max_in_flight_bounds_started_items),
    cmocka_unit_test(map_deadline_times_out_remaining),
    cmocka_unit_test(map_deadline_stops_positions_handed_ahead),
    cmocka_unit_test(map_free_early_stops_items),
    cmocka_unit_test(map_free_stops_positions_handed_ahead),
    cmocka_unit_test(map_wait_runs_every_position),
    cmocka_unit_test(map_free_waits_for_running_items),
    cmocka_unit_test(map_edge_cases),
    cmocka_unit_test(map_million_items),
    cmocka_unit_test(map_bytes),
    cmocka_unit_test(nan_timeouts_refused),
    cf_inprocess_test(map_pointer_tasks),
    cf_inprocess_test(map_explicit_chunk_is_exact),
    cf_inprocess_test(map_wait_pointer_results_discarded),
    cf_inprocess_test(map_auto_chunk_on_uneven_work),
    cf_inprocess_test(map_discard_gets_unreturned_results),
};

CF_TEST_MAIN(tests)
