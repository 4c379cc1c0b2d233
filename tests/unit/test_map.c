/*
 * test_map.c -- cf_map_start / cf_map_bytes_start / cf_map_next: results in input order,
 * per-position errors, chunking, the in-flight bound, the deadline, early free, edge cases
 * and a million items (SEMANTICS 13, with 12 for refusals).
 *
 * Items that must be running or unfinished at a given moment wait at gates the test opens;
 * the in-flight bound is checked by the items themselves against a count the consumer keeps
 * (see map_max_in_flight_bounds_started_items for why the check cannot fire falsely).
 */
#include "testutil.h"

#include <math.h> /* NAN */

CF_FUNCTION(xor_fn, tu_bytes_xor);
CF_FUNCTION(maybe_fail_fn, tu_bytes_maybe_fail);

static void *map_value(intptr_t i)
{
    return (void *)(i * 3 + 1);
}

/* Input i (as a pointer) -> 3i+1. */
static int task_affine(void *arg, void **result, cf_ctx *ctx)
{
    (void)ctx;
    *result = map_value((intptr_t)arg);
    return 0;
}

static void **index_inputs(size_t n)
{
    void **in = malloc((n ? n : 1) * sizeof *in);
    size_t i;
    assert_non_null(in);
    for (i = 0; i < n; i++)
        in[i] = (void *)(intptr_t)i;
    return in;
}

/* Reads every position of m and checks it is in order with value 3i+1. */
static void consume_affine(cf_map *m, size_t n)
{
    size_t i, idx = 0;
    void *v = NULL;
    for (i = 0; i < n; i++) {
        int rc = cf_map_next(m, &idx, &v);
        if (rc != 0 || idx != i || v != map_value((intptr_t)i))
            fail_msg("position %zu: rc %s, index %zu, value %p", i, cf_err_name(rc), idx, v);
    }
    assert_int_equal(cf_map_next(m, &idx, &v), CF_EEND);
}

/* ---- order ------------------------------------------------------------------------- */

enum { ORD_N = 6 };

typedef struct ord_item {
    int index;
    tu_gate gate;
    tu_latch *started, *finished;
    atomic_int *seq;
    int finished_as; /* completion rank */
} ord_item;

static int task_ord(void *arg, void **result, cf_ctx *ctx)
{
    ord_item *it = arg;
    tu_latch_arrive(it->started);
    if (tu_gate_wait(&it->gate, TU_LONG) != 0)
        return cf_fail(ctx, TU_EGATE, "gate %d never opened", it->index);
    it->finished_as = atomic_fetch_add(it->seq, 1);
    *result = map_value(it->index);
    tu_latch_arrive(it->finished);
    return 0;
}

/* SEMANTICS 13: results come in input order although the items complete in reverse order
 * (each item held at its own gate, the gates opened last to first). */
static void map_input_order_with_reverse_completion(void **state)
{
    ord_item item[ORD_N];
    void *inputs[ORD_N];
    tu_latch started, finished;
    atomic_int seq;
    cf_map_opts mo;
    cf_map *m = NULL;
    cf_executor *ex;
    int i;
    (void)state;
    TU_REQUIRE_INPROCESS();
    tu_latch_init(&started);
    tu_latch_init(&finished);
    atomic_init(&seq, 0);
    for (i = 0; i < ORD_N; i++) {
        item[i].index = i;
        tu_gate_init(&item[i].gate);
        item[i].started = &started;
        item[i].finished = &finished;
        item[i].seq = &seq;
        item[i].finished_as = -1;
        inputs[i] = &item[i];
    }
    ex = make_executor(ORD_N, NULL);
    cf_map_opts_init(&mo);
    mo.chunk = 1;
    assert_int_equal(cf_map_start(&m, ex, task_ord, inputs, ORD_N, &mo), 0);
    if (tu_latch_wait(&started, ORD_N, TU_LONG) != 0)
        fail_msg("only %d of %d items run at once with chunk 1 on %d workers",
                 tu_latch_count(&started), ORD_N, ORD_N);
    for (i = ORD_N - 1; i >= 0; i--) {
        tu_gate_open(&item[i].gate);
        assert_int_equal(tu_latch_wait(&finished, ORD_N - i, TU_LONG), 0);
    }
    for (i = 0; i < ORD_N; i++) {
        size_t idx = 99;
        void *v = NULL;
        assert_int_equal(cf_map_next(m, &idx, &v), 0);
        assert_int_equal(idx, i);
        assert_ptr_equal(v, map_value(i));
        assert_int_equal(item[i].finished_as, ORD_N - 1 - i);
    }
    assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
    assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
    cf_map_free(m);
    cf_executor_free(ex);
    for (i = 0; i < ORD_N; i++)
        tu_gate_destroy(&item[i].gate);
    tu_latch_destroy(&started);
    tu_latch_destroy(&finished);
}

/* ---- errors ------------------------------------------------------------------------ */

static int task_fail_some(void *arg, void **result, cf_ctx *ctx)
{
    intptr_t i = (intptr_t)arg;
    if (i == 3 || i == 11)
        return cf_fail(ctx, 30 + (int)i, "item %d refused", (int)i);
    *result = map_value(i);
    return 0;
}

/* SEMANTICS 13, 4: one failing item does not hide or cancel the others: each position
 * reports its own outcome, the failed ones with their own code and message. */
static void map_each_position_own_outcome(void **state)
{
    enum { N = 20 };
    void **inputs = index_inputs(N);
    cf_map *m = NULL;
    cf_executor *ex;
    size_t i;
    (void)state;
    TU_REQUIRE_INPROCESS();
    ex = make_executor(3, NULL);
    assert_int_equal(cf_map_start(&m, ex, task_fail_some, inputs, N, NULL), 0);
    for (i = 0; i < N; i++) {
        size_t idx = 99;
        void *v = NULL;
        int rc = cf_map_next(m, &idx, &v);
        assert_int_equal(idx, i);
        if (i == 3 || i == 11) {
            int code = 0;
            const char *msg = NULL;
            char expect[32];
            assert_int_equal(rc, CF_ETASK);
            cf_map_error(m, &code, &msg);
            assert_int_equal(code, 30 + (int)i);
            snprintf(expect, sizeof expect, "item %d refused", (int)i);
            assert_string_equal(msg, expect);
        } else {
            assert_int_equal(rc, 0);
            assert_ptr_equal(v, map_value((intptr_t)i));
        }
    }
    assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
    cf_map_free(m);
    cf_executor_free(ex);
    free(inputs);
}

/* ---- chunk ------------------------------------------------------------------------- */

static int task_worker_index(void *arg, void **result, cf_ctx *ctx)
{
    (void)arg;
    *result = (void *)(intptr_t)cf_ctx_worker(ctx);
    return 0;
}

/* SEMANTICS 13: chunk 0 is CF_EINVAL; other chunk sizes (smaller than, not dividing, or
 * larger than n) give the right results; a chunk of all n items goes to one worker. */
static void map_chunk_option(void **state)
{
    static const size_t chunks[] = {1, 5, 23, 1000, CF_CHUNK_AUTO};
    enum { N = 23, WHOLE = 40 };
    void **inputs = index_inputs(WHOLE);
    cf_map_opts mo;
    cf_map *m = NULL;
    cf_executor *ex;
    size_t c, i;
    void *v = NULL, *first = NULL;
    (void)state;
    TU_REQUIRE_INPROCESS();
    ex = make_executor(2, NULL);
    cf_map_opts_init(&mo);
    assert_true(mo.chunk == CF_CHUNK_AUTO);
    assert_int_equal(mo.max_in_flight, 0);
    assert_true(mo.timeout < 0);
    mo.chunk = 0;
    assert_int_equal(cf_map_start(&m, ex, task_affine, inputs, N, &mo), CF_EINVAL);
    assert_null(m);
    for (c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        mo.chunk = chunks[c];
        assert_int_equal(cf_map_start(&m, ex, task_affine, inputs, N, &mo), 0);
        consume_affine(m, N);
        cf_map_free(m);
        m = NULL;
    }
    mo.chunk = WHOLE;
    assert_int_equal(cf_map_start(&m, ex, task_worker_index, inputs, WHOLE, &mo), 0);
    for (i = 0; i < WHOLE; i++) {
        assert_int_equal(cf_map_next(m, NULL, &v), 0);
        if (i == 0)
            first = v;
        assert_ptr_equal(v, first);
    }
    cf_map_free(m);
    cf_executor_free(ex);
    free(inputs);
}

/* ---- max_in_flight ----------------------------------------------------------------- */

typedef struct flight {
    atomic_long started;  /* items whose task has begun */
    atomic_long consumed; /* positions the consumer has asked for (see below) */
    atomic_long worst;    /* largest started - consumed seen by any item */
} flight;

typedef struct flight_in {
    flight *fl;
    intptr_t index;
} flight_in;

static int task_flight(void *arg, void **result, cf_ctx *ctx)
{
    flight_in *in = arg;
    long s = atomic_fetch_add(&in->fl->started, 1) + 1;
    long c = atomic_load(&in->fl->consumed);
    long seen = s - c, w = atomic_load(&in->fl->worst);
    (void)ctx;
    while (seen > w && !atomic_compare_exchange_weak(&in->fl->worst, &w, seen))
        ;
    *result = map_value(in->index);
    return 0;
}

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
    static flight_in in[N];
    static void *inputs[N];
    cf_executor *ex;
    size_t k, i;
    (void)state;
    TU_REQUIRE_INPROCESS();
    ex = make_executor(3, NULL);
    for (k = 0; k < sizeof cfg / sizeof cfg[0]; k++) {
        flight fl;
        cf_map_opts mo;
        cf_map *m = NULL;
        atomic_init(&fl.started, 0);
        atomic_init(&fl.consumed, 0);
        atomic_init(&fl.worst, 0);
        for (i = 0; i < N; i++) {
            in[i].fl = &fl;
            in[i].index = (intptr_t)i;
            inputs[i] = &in[i];
        }
        cf_map_opts_init(&mo);
        mo.max_in_flight = cfg[k].bound;
        mo.chunk = cfg[k].chunk;
        assert_int_equal(cf_map_start(&m, ex, task_flight, inputs, N, &mo), 0);
        for (i = 0; i < N; i++) {
            size_t idx = 0;
            void *v = NULL;
            tu_sleep(0.0003); /* a slow consumer: producers get every chance to run ahead */
            atomic_fetch_add(&fl.consumed, 1);
            assert_int_equal(cf_map_next(m, &idx, &v), 0);
            assert_int_equal(idx, i);
            assert_ptr_equal(v, map_value((intptr_t)i));
        }
        assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
        cf_map_free(m);
        print_message("max_in_flight %zu chunk %zd: worst seen %ld\n", cfg[k].bound,
                      (ssize_t)cfg[k].chunk, atomic_load(&fl.worst));
        assert_true(atomic_load(&fl.worst) >= 1);
        assert_true(atomic_load(&fl.worst) <= (long)cfg[k].bound);
        assert_int_equal(atomic_load(&fl.started), N);
    }
    cf_executor_free(ex);
}

/* ---- deadline ---------------------------------------------------------------------- */

typedef struct dl_item {
    intptr_t index;
    tu_gate *gate;      /* NULL: return at once */
    tu_latch *started;  /* every item arrives when it begins ... */
    tu_latch *finished; /* ... and when it ends */
} dl_item;

static int task_dl(void *arg, void **result, cf_ctx *ctx)
{
    dl_item *it = arg;
    int rc = 0;
    tu_latch_arrive(it->started);
    if (it->gate != NULL && tu_gate_wait(it->gate, TU_LONG) != 0)
        rc = cf_fail(ctx, TU_EGATE, "gate never opened");
    *result = map_value(it->index);
    tu_latch_arrive(it->finished);
    return rc;
}

static void dl_items_init(dl_item *item, void **inputs, size_t n, size_t ungated,
                          tu_gate *gate, tu_latch *started, tu_latch *finished)
{
    size_t i;
    for (i = 0; i < n; i++) {
        item[i].index = (intptr_t)i;
        item[i].gate = i < ungated ? NULL : gate;
        item[i].started = started;
        item[i].finished = finished;
        inputs[i] = &item[i];
    }
}

/* SEMANTICS 13: the deadline counts from the start; once it passes, the position being
 * waited for and every later unfinished one report CF_ETIMEDOUT, and items not started by
 * then never start, even when workers become free again (2 workers, chunk 1: items 0-1
 * finish at once, the others wait at a gate opened only after the deadline). */
static void map_deadline_times_out_remaining(void **state)
{
    enum { N = 6 };
    dl_item item[N];
    void *inputs[N];
    tu_gate gate;
    tu_latch started, finished;
    cf_map_opts mo;
    cf_map *m = NULL;
    cf_executor *ex;
    double t0;
    int at_deadline = -1;
    size_t i;
    (void)state;
    TU_REQUIRE_INPROCESS();
    tu_gate_init(&gate);
    tu_latch_init(&started);
    tu_latch_init(&finished);
    dl_items_init(item, inputs, N, 2, &gate, &started, &finished);
    ex = make_executor(2, NULL);
    cf_map_opts_init(&mo);
    mo.chunk = 1;
    mo.timeout = 0.3;
    t0 = tu_now();
    assert_int_equal(cf_map_start(&m, ex, task_dl, inputs, N, &mo), 0);
    for (i = 0; i < N; i++) {
        size_t idx = 99;
        void *v = NULL;
        int rc = cf_map_next(m, &idx, &v);
        assert_int_equal(idx, i);
        if (i < 2) {
            assert_int_equal(rc, 0);
            assert_ptr_equal(v, map_value((intptr_t)i));
            continue;
        }
        assert_int_equal(rc, CF_ETIMEDOUT);
        assert_true(tu_now() - t0 >= 0.3 - 1e-3);
        if (at_deadline < 0)
            at_deadline = tu_latch_count(&started);
    }
    assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
    assert_true(at_deadline >= 3 && at_deadline < N); /* 2 done, >= 1 held, not all */
    tu_gate_open(&gate);
    assert_int_equal(tu_latch_wait(&finished, at_deadline, TU_LONG), 0);
    tu_sleep(0.05); /* free workers: give a wrongly started item the chance to show */
    assert_int_equal(tu_latch_count(&started), at_deadline);
    cf_map_free(m);
    cf_executor_free(ex);
    assert_int_equal(tu_latch_count(&started), at_deadline);
    tu_latch_destroy(&started);
    tu_latch_destroy(&finished);
    tu_gate_destroy(&gate);
}

/* ---- early free -------------------------------------------------------------------- */

typedef struct count_in {
    atomic_int *started;
    intptr_t index;
} count_in;

static int task_count_start(void *arg, void **result, cf_ctx *ctx)
{
    count_in *in = arg;
    (void)ctx;
    atomic_fetch_add(in->started, 1);
    *result = map_value(in->index);
    return 0;
}

/* SEMANTICS 13: freeing a map half consumed stops it: no item starts after cf_map_free
 * returns (checked after the executor, and so every worker, is gone); a map freed before
 * any next() too.  ASan reports anything left allocated. */
static void map_free_early_stops_items(void **state)
{
    enum { N = 200, HALF = 100, BOUND = 8 };
    static count_in in[N];
    static void *inputs[N];
    atomic_int started, started2;
    cf_map_opts mo;
    cf_map *m = NULL, *m2 = NULL;
    cf_executor *ex;
    int at_free, at_free2;
    size_t i;
    (void)state;
    TU_REQUIRE_INPROCESS();
    atomic_init(&started, 0);
    atomic_init(&started2, 0);
    ex = make_executor(2, NULL);
    cf_map_opts_init(&mo);
    mo.chunk = 1;
    mo.max_in_flight = BOUND;
    for (i = 0; i < N; i++) {
        in[i].started = &started;
        in[i].index = (intptr_t)i;
        inputs[i] = &in[i];
    }
    assert_int_equal(cf_map_start(&m, ex, task_count_start, inputs, N, &mo), 0);
    for (i = 0; i < HALF; i++) {
        void *v = NULL;
        assert_int_equal(cf_map_next(m, NULL, &v), 0);
        assert_ptr_equal(v, map_value((intptr_t)i));
    }
    cf_map_free(m);
    at_free = atomic_load(&started);
    assert_true(at_free >= HALF && at_free <= HALF + BOUND);

    for (i = 0; i < N; i++)
        in[i].started = &started2;
    assert_int_equal(cf_map_start(&m2, ex, task_count_start, inputs, N, &mo), 0);
    cf_map_free(m2);
    at_free2 = atomic_load(&started2);
    assert_true(at_free2 <= BOUND);

    cf_executor_free(ex);
    assert_int_equal(atomic_load(&started), at_free);
    assert_int_equal(atomic_load(&started2), at_free2);
    cf_map_free(NULL);
}

/* SEMANTICS 13: cf_map_free waits for the items running when it is called and starts no
 * other (gated items on 2 workers: only those already running ever run). */
static void map_free_waits_for_running_items(void **state)
{
    enum { N = 10 };
    dl_item item[N];
    void *inputs[N];
    tu_gate gate;
    tu_latch started, finished;
    tu_opener op;
    cf_map_opts mo;
    cf_map *m = NULL;
    cf_executor *ex;
    double t0;
    int running;
    (void)state;
    TU_REQUIRE_INPROCESS();
    tu_watchdog(120);
    tu_gate_init(&gate);
    tu_latch_init(&started);
    tu_latch_init(&finished);
    dl_items_init(item, inputs, N, 0, &gate, &started, &finished);
    ex = make_executor(2, NULL);
    cf_map_opts_init(&mo);
    mo.chunk = 1;
    assert_int_equal(cf_map_start(&m, ex, task_dl, inputs, N, &mo), 0);
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
    tu_latch_destroy(&started);
    tu_latch_destroy(&finished);
    tu_gate_destroy(&gate);
}

/* ---- edge cases -------------------------------------------------------------------- */

/* SEMANTICS 13: n = 0 ends at once; invalid arguments are CF_EINVAL; a shut-down executor
 * refuses maps with CF_ESHUTDOWN (SEMANTICS 12). */
static void map_edge_cases(void **state)
{
    void *one[1] = {NULL};
    cf_bytes b = {"x", 1};
    cf_map *m = NULL;
    cf_executor *ex;
    (void)state;
    TU_REQUIRE_INPROCESS();
    tu_watchdog(120);
    ex = make_executor(1, NULL);
    assert_int_equal(cf_map_start(&m, ex, task_affine, NULL, 0, NULL), 0);
    assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
    assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
    cf_map_free(m);
    m = NULL;
    assert_int_equal(cf_map_bytes_start(&m, ex, &xor_fn, NULL, 0, NULL), 0);
    assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
    cf_map_free(m);
    m = NULL;
    assert_int_equal(cf_map_start(&m, ex, NULL, one, 1, NULL), CF_EINVAL);
    assert_null(m);
    assert_int_equal(cf_map_start(&m, ex, task_affine, NULL, 1, NULL), CF_EINVAL);
    assert_null(m);
    assert_int_equal(cf_map_bytes_start(&m, ex, NULL, &b, 1, NULL), CF_EINVAL);
    assert_null(m);
    assert_int_equal(cf_map_bytes_start(&m, ex, &xor_fn, NULL, 1, NULL), CF_EINVAL);
    assert_null(m);
    assert_int_equal(cf_shutdown(ex, 0), 0);
    assert_int_equal(cf_map_start(&m, ex, task_affine, one, 1, NULL), CF_ESHUTDOWN);
    assert_null(m);
    assert_int_equal(cf_map_bytes_start(&m, ex, &xor_fn, &b, 1, NULL), CF_ESHUTDOWN);
    assert_null(m);
    cf_executor_free(ex);
}

/* SEMANTICS 13: a million tiny items, default options and with a bound, give every value
 * in order. */
static void map_million_items(void **state)
{
    enum { N = 1000000 };
    void **inputs = index_inputs(N);
    cf_map_opts mo;
    cf_map *m = NULL;
    cf_executor *ex;
    (void)state;
    TU_REQUIRE_INPROCESS();
    ex = make_executor(CF_WORKERS_AUTO, NULL);
    assert_int_equal(cf_map_start(&m, ex, task_affine, inputs, N, NULL), 0);
    consume_affine(m, N);
    cf_map_free(m);
    cf_map_opts_init(&mo);
    mo.max_in_flight = 1000;
    assert_int_equal(cf_map_start(&m, ex, task_affine, inputs, N, &mo), 0);
    consume_affine(m, N);
    cf_map_free(m);
    cf_executor_free(ex);
    free(inputs);
}

/* SEMANTICS 13: a bytes map (the cross-backend form) over inputs of 0 to 3,000 bytes gives
 * each position's bytes and length in order; a failing position reports its own error;
 * cf_map_value_len is 0 for pointer maps. */
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
    m = NULL;

    if (tu_backend_inprocess()) {
        void **inputs = index_inputs(3);
        assert_int_equal(cf_map_start(&m, ex, task_affine, inputs, 3, NULL), 0);
        assert_int_equal(cf_map_next(m, NULL, NULL), 0);
        assert_int_equal(cf_map_value_len(m), 0);
        cf_map_free(m);
        free(inputs);
    }
    cf_executor_free(ex);
    for (i = 0; i < N; i++)
        free(buf[i]);
}


/* ---- results nobody receives (cf_map_opts.discard) ---------------------------------- */

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

/* SEMANTICS 13 (and cf_map_opts.discard): a result produced after its position reported
 * CF_ETIMEDOUT, and results produced but never consumed before cf_map_free, are handed to
 * discard exactly once each; results that were returned are not (ASan checks no leak). */
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
    TU_REQUIRE_INPROCESS();
    tu_gate_init(&gate);
    r.gate = &gate;
    atomic_init(&r.produced, 0);
    atomic_init(&r.discarded, 0);
    owned = &r;
    for (i = 0; i < N; i++)
        inputs[i] = (void *)(intptr_t)i;
    ex = make_executor(1, NULL);
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

/* Timeouts: NaN is CF_EINVAL for every call that takes one. */
static void nan_timeouts_refused(void **state)
{
    cf_executor *ex;
    cf_future *f;
    cf_map *m = NULL;
    cf_as_completed *it = NULL;
    cf_map_opts mo;
    void *in[1] = {NULL};
    size_t nd;
    (void)state;
    TU_REQUIRE_INPROCESS();
    ex = make_executor(1, NULL);
    f = tu_submit(ex, tu_task_identity, (void *)0x1);
    assert_int_equal(cf_future_result(f, NAN, NULL), CF_EINVAL);
    assert_int_equal(cf_future_wait(f, NAN), CF_EINVAL);
    assert_int_equal(cf_future_bytes(f, NAN, NULL, NULL), CF_EINVAL);
    assert_int_equal(cf_wait(&f, 1, CF_ALL_COMPLETED, NAN, NULL, &nd, NULL, NULL), CF_EINVAL);
    assert_int_equal(cf_as_completed_new(&it, &f, 1, NAN), CF_EINVAL);
    assert_null(it);
    cf_map_opts_init(&mo);
    mo.timeout = NAN;
    assert_int_equal(cf_map_start(&m, ex, tu_task_identity, in, 1, &mo), CF_EINVAL);
    assert_null(m);
    assert_int_equal(cf_future_result(f, TU_LONG, NULL), 0);
    cf_future_release(f);
    cf_executor_free(ex);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(map_input_order_with_reverse_completion),
    cmocka_unit_test(map_each_position_own_outcome),
    cmocka_unit_test(map_chunk_option),
    cmocka_unit_test(map_max_in_flight_bounds_started_items),
    cmocka_unit_test(map_deadline_times_out_remaining),
    cmocka_unit_test(map_free_early_stops_items),
    cmocka_unit_test(map_free_waits_for_running_items),
    cmocka_unit_test(map_edge_cases),
    cmocka_unit_test(map_million_items),
    cmocka_unit_test(map_bytes),
    cmocka_unit_test(map_discard_gets_unreturned_results),
    cmocka_unit_test(nan_timeouts_refused),
};

CF_TEST_MAIN(tests)
