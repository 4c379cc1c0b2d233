/*
 * stress_mixed.c -- every executor operation at once, from several threads, over many
 * executors, with exact bookkeeping of every task (SEMANTICS 1-2, 5-6, 8, 10, 12-14, 19).
 *
 * The run is a sequence of rounds.  Each round creates an executor (2 to 4 workers; some
 * rounds with a bounded queue) and 4 client threads that, until the round's share of work is
 * done, pick operations at random: batches of futures with cancels and cf_wait, batches read
 * through as_completed, parent tasks that submit and wait for children inside the pool, and
 * maps (varied chunk and in-flight bound, some abandoned half way).  Some rounds are cut
 * short by a shutdown: cancel_pending from a client, or shutdown(wait) from the main thread,
 * while everything else is in flight.  Then the executor is freed and the next round starts.
 *
 * Every task has an id.  A task increments ran[id]; a future's done-callback increments
 * cbs[id]; whoever learns a task's fate records it in fate[id].  At the end, for every id:
 *   - a finished future: ran == 1 and its value was id + 1; a cancelled one: ran == 0;
 *     either way exactly one callback;
 *   - a map position that reported a value: ran == 1; one that reported cancellation: 0;
 *     positions of abandoned maps: ran 0 or 1, never more;
 *   - an id never accepted (refused submit, unused): ran == 0 and no callback.
 * and at least TARGET tasks ran, and no thread is left.  Leaks are ASan's to report.
 *
 * CF_STRESS_SHORT (sanitizer builds) shrinks the run from 10 million tasks to 200,000.
 */
#include "testutil.h"

#ifdef CF_STRESS_SHORT
#define TARGET 200000L
#else
#define TARGET 10000000L
#endif
#define CAPACITY (TARGET + TARGET / 2 + 2000000L)
#define CLIENTS 4
#define ROUNDS 24
#define MAX_ROUNDS 60
#define BATCH_MAX 256
#define CHILDREN_MAX 32
#define WAIT_LIMIT 120.0

enum fate {
    FATE_NONE = 0,      /* never accepted: must not run */
    FATE_FINISHED = 1,  /* a future that finished: ran once */
    FATE_CANCELLED = 2, /* a future that was cancelled: never ran */
    FATE_MAP_OK = 3,    /* a map position that reported its value: ran once */
    FATE_MAP_NOT_RUN = 4, /* a map position that reported cancellation: never ran */
    FATE_UNKNOWN = 5    /* an abandoned map's position: ran at most once */
};

static _Atomic unsigned char *ran;
static _Atomic unsigned char *cbs;
static unsigned char *fate;
static atomic_long next_id;
static atomic_long ran_ok; /* tasks seen to have run, as verified by their clients */
static atomic_long n_futures, n_cancelled, n_map_items, n_refused;

/* Reserves n consecutive ids; -1 when the arrays are used up. */
static long take_ids(long n)
{
    long base = atomic_fetch_add(&next_id, n);
    return base + n <= CAPACITY ? base : -1;
}

static int task_slot(void *arg, void **result, cf_ctx *ctx)
{
    intptr_t id = (intptr_t)arg;
    (void)ctx;
    atomic_fetch_add_explicit(&ran[id], 1, memory_order_relaxed);
    *result = (void *)(id + 1);
    return 0;
}

static void count_callback(cf_future *f, void *data)
{
    (void)f;
    atomic_fetch_add_explicit(&cbs[(intptr_t)data], 1, memory_order_relaxed);
}

#define NOT_TRIED 1 /* cancel_rc of a future nobody tried to cancel */

/* Records the fate of a done future and checks it against what was seen; 1 if it ran. */
static int settle(cf_future *f, intptr_t id, int cancel_rc)
{
    cf_state s = cf_future_state(f);
    void *v = NULL;
    if (s == CF_FINISHED) {
        TU_CHECK(cf_future_result(f, CF_POLL, &v) == 0);
        TU_CHECK(v == (void *)(id + 1));
        TU_CHECK(cancel_rc != 0);
        TU_CHECK(atomic_load_explicit(&ran[id], memory_order_relaxed) == 1);
        fate[id] = FATE_FINISHED;
        return 1;
    }
    TU_CHECK(s == CF_CANCELLED);
    TU_CHECK(cf_future_result(f, CF_POLL, NULL) == CF_ECANCELLED);
    TU_CHECK(cancel_rc == 0 || cancel_rc == NOT_TRIED);
    fate[id] = FATE_CANCELLED;
    atomic_fetch_add(&n_cancelled, 1);
    return 0;
}

/* ---- a round ------------------------------------------------------------------------ */

typedef enum round_kind {
    ROUND_PLAIN,
    ROUND_CLIENT_CANCELS,   /* a client calls shutdown(cancel_pending) half way */
    ROUND_MAIN_WAITS,       /* the main thread calls shutdown(wait) half way */
    ROUND_BOUNDED           /* max_queued with CF_FULL_BLOCK */
} round_kind;

typedef struct round {
    cf_executor *ex;
    round_kind kind;
    long goal, half;   /* ran_ok values that end the round / trigger its shutdown */
    atomic_int shut;   /* a submission was refused for shutdown: stop */
    atomic_int shutdown_called;
} round;

typedef struct client {
    round *r;
    int index;
    uint32_t rng;
} client;

static uint32_t next_rand(client *c)
{
    c->rng ^= c->rng << 13;
    c->rng ^= c->rng >> 17;
    c->rng ^= c->rng << 5;
    return c->rng;
}

/* Submits fn(id) with a counting callback; NULL (and the round marked shut) if refused. */
static cf_future *submit_counted(round *r, cf_executor *ex, cf_fn fn, void *arg, intptr_t id)
{
    cf_future *f = NULL;
    int rc = cf_submit(ex, fn, arg, &f);
    if (rc != 0) {
        TU_CHECK(rc == CF_ESHUTDOWN);
        TU_CHECK(f == NULL);
        atomic_fetch_add(&n_refused, 1);
        if (r)
            atomic_store(&r->shut, 1);
        return NULL;
    }
    atomic_fetch_add_explicit(&n_futures, 1, memory_order_relaxed);
    TU_CHECK(cf_future_add_callback(f, count_callback, (void *)id) == 0);
    return f;
}

/* A batch of futures, some cancelled at once, waited for with cf_wait. */
static void op_wait_batch(client *c)
{
    cf_future *f[BATCH_MAX], *done[BATCH_MAX];
    int cancel_rc[BATCH_MAX];
    long n = 16 + next_rand(c) % (BATCH_MAX - 16), base = take_ids(n), i, k = 0, ok = 0;
    size_t nd = 0, nn = 0;
    if (base < 0)
        return;
    for (i = 0; i < n; i++) {
        if (!(f[k] = submit_counted(c->r, c->r->ex, task_slot, (void *)(intptr_t)(base + i),
                                    base + i)))
            break;
        cancel_rc[k] = i % 5 == 4 ? cf_future_cancel(f[k]) : NOT_TRIED;
        TU_CHECK(cancel_rc[k] == 0 || cancel_rc[k] == CF_EBUSY || cancel_rc[k] == NOT_TRIED);
        k++;
    }
    if (k == 0)
        return;
    TU_CHECK(cf_wait(f, (size_t)k, CF_FIRST_COMPLETED, WAIT_LIMIT, NULL, &nd, NULL, &nn) == 0);
    TU_CHECK(nd >= 1 && nd + nn == (size_t)k);
    TU_CHECK(cf_wait(f, (size_t)k, CF_ALL_COMPLETED, WAIT_LIMIT, done, &nd, NULL, &nn) == 0);
    TU_CHECK(nd == (size_t)k && nn == 0);
    for (i = 0; i < k; i++) {
        if (nd == (size_t)k)
            TU_CHECK(done[i] == f[i]); /* first-appearance order */
        ok += settle(f[i], base + i, cancel_rc[i]);
        cf_future_release(f[i]);
    }
    atomic_fetch_add(&ran_ok, ok);
}

typedef struct fut_index {
    cf_future *f;
    long i;
} fut_index;

static int by_future(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const fut_index *)a)->f, y = (uintptr_t)((const fut_index *)b)->f;
    return x < y ? -1 : x > y;
}

/* A batch of futures read through as_completed: each exactly once, then CF_EEND. */
static void op_as_completed_batch(client *c)
{
    cf_future *f[BATCH_MAX], *g;
    fut_index idx[BATCH_MAX];
    unsigned char seen[BATCH_MAX] = {0};
    long n = 16 + next_rand(c) % (BATCH_MAX - 16), base = take_ids(n), i, k = 0, ok = 0,
         yielded = 0;
    cf_as_completed *it = NULL;
    int rc;
    if (base < 0)
        return;
    for (i = 0; i < n; i++) {
        if (!(f[k] = submit_counted(c->r, c->r->ex, task_slot, (void *)(intptr_t)(base + i),
                                    base + i)))
            break;
        if (i % 7 == 6)
            cf_future_cancel(f[k]); /* either outcome is fine; settle checks the state */
        idx[k].f = f[k];
        idx[k].i = k;
        k++;
    }
    if (k == 0)
        return;
    qsort(idx, (size_t)k, sizeof idx[0], by_future);
    TU_CHECK(cf_as_completed_new(&it, f, (size_t)k, WAIT_LIMIT) == 0);
    if (it != NULL) {
        TU_CHECK(cf_as_completed_total(it) == (size_t)k);
        while ((rc = cf_as_completed_next(it, &g)) == 0) {
            fut_index key = {g, 0}, *hit = bsearch(&key, idx, (size_t)k, sizeof idx[0], by_future);
            TU_CHECK(hit != NULL);
            if (hit != NULL) {
                TU_CHECK(seen[hit->i] == 0);
                seen[hit->i] = 1;
                TU_CHECK(cf_future_done(g) == 1);
            }
            yielded++;
        }
        TU_CHECK(rc == CF_EEND);
        TU_CHECK(yielded == k);
        cf_as_completed_free(it);
    }
    for (i = 0; i < k; i++) {
        ok += settle(f[i], base + i, NOT_TRIED);
        cf_future_release(f[i]);
    }
    atomic_fetch_add(&ran_ok, ok);
}

/* A parent task: runs as id `base`, submits children base+1 .. base+k from inside the pool
 * (cancelling one), waits for each, and records their fates itself. */
typedef struct parent {
    long base;
    int k;
    long children_ran;
} parent;

static int task_parent(void *arg, void **result, cf_ctx *ctx)
{
    parent *p = arg;
    cf_executor *ex = cf_ctx_executor(ctx);
    cf_future *child[CHILDREN_MAX];
    int cancel_rc[CHILDREN_MAX], i;
    atomic_fetch_add_explicit(&ran[p->base], 1, memory_order_relaxed);
    for (i = 0; i < p->k; i++) {
        intptr_t id = p->base + 1 + i;
        child[i] = submit_counted(NULL, ex, task_slot, (void *)id, id);
        cancel_rc[i] = child[i] && i == p->k - 1 ? cf_future_cancel(child[i]) : NOT_TRIED;
    }
    p->children_ran = 0;
    for (i = 0; i < p->k; i++) {
        int rc;
        if (child[i] == NULL)
            continue;
        rc = cf_future_result(child[i], WAIT_LIMIT, NULL);
        TU_CHECK(rc == 0 || rc == CF_ECANCELLED);
        if (rc == 0 || rc == CF_ECANCELLED)
            p->children_ran += settle(child[i], p->base + 1 + i, cancel_rc[i]);
        cf_future_release(child[i]);
    }
    *result = (void *)(intptr_t)(p->base + 1);
    return 0;
}

static void op_nested(client *c)
{
    enum { PARENTS = 4 };
    parent p[PARENTS];
    cf_future *f[PARENTS];
    int i, k = 0;
    long ok = 0;
    size_t nd = 0, nn = 0;
    for (i = 0; i < PARENTS; i++) {
        p[i].k = 4 + (int)(next_rand(c) % (CHILDREN_MAX - 4));
        if ((p[i].base = take_ids(p[i].k + 1)) < 0)
            break;
        p[i].children_ran = 0;
        if (!(f[i] = submit_counted(c->r, c->r->ex, task_parent, &p[i], p[i].base)))
            break;
        k++;
    }
    if (k == 0)
        return;
    TU_CHECK(cf_wait(f, (size_t)k, CF_ALL_COMPLETED, 2 * WAIT_LIMIT, NULL, &nd, NULL, &nn) == 0);
    TU_CHECK(nd == (size_t)k);
    for (i = 0; i < k; i++) {
        if (settle(f[i], p[i].base, NOT_TRIED))
            ok += 1 + p[i].children_ran;
        cf_future_release(f[i]);
    }
    atomic_fetch_add(&ran_ok, ok);
}

/* A map over fresh ids with varied options; one in eight is abandoned half way. */
static void op_map(client *c)
{
    static const size_t chunks[] = {CF_CHUNK_AUTO, CF_CHUNK_AUTO, 1, 7, 256};
    static const size_t bounds[] = {0, 0, 64, 1024};
    long n = 100 + next_rand(c) % 4000, base = take_ids(n), i, ok = 0;
    int abandon = next_rand(c) % 8 == 0;
    void **inputs;
    cf_map_opts mo;
    cf_map *m = NULL;
    int rc;
    if (base < 0)
        return;
    inputs = malloc((size_t)n * sizeof *inputs);
    TU_CHECK(inputs != NULL);
    if (inputs == NULL)
        return;
    for (i = 0; i < n; i++)
        inputs[i] = (void *)(intptr_t)(base + i);
    cf_map_opts_init(&mo);
    mo.chunk = chunks[next_rand(c) % (sizeof chunks / sizeof chunks[0])];
    mo.max_in_flight = bounds[next_rand(c) % (sizeof bounds / sizeof bounds[0])];
    rc = cf_map_start(&m, c->r->ex, task_slot, inputs, (size_t)n, &mo);
    if (rc != 0) {
        TU_CHECK(rc == CF_ESHUTDOWN);
        atomic_store(&c->r->shut, 1);
        free(inputs);
        return;
    }
    for (i = 0; i < n; i++) {
        size_t idx = 0;
        void *v = NULL;
        if (abandon && i == n / 2)
            break;
        rc = cf_map_next(m, &idx, &v);
        TU_CHECK(idx == (size_t)i);
        if (rc == 0) {
            TU_CHECK(v == (void *)(intptr_t)(base + i + 1));
            fate[base + i] = FATE_MAP_OK;
            ok++;
        } else {
            TU_CHECK(rc == CF_ECANCELLED);
            fate[base + i] = FATE_MAP_NOT_RUN;
        }
    }
    if (!abandon)
        TU_CHECK(cf_map_next(m, NULL, NULL) == CF_EEND);
    for (; i < n; i++)
        fate[base + i] = FATE_UNKNOWN;
    cf_map_free(m);
    free(inputs);
    atomic_fetch_add_explicit(&n_map_items, n, memory_order_relaxed);
    atomic_fetch_add(&ran_ok, ok);
}

static void *client_main(void *arg)
{
    client *c = arg;
    round *r = c->r;
    while (!atomic_load(&r->shut) && atomic_load(&ran_ok) < r->goal &&
           atomic_load(&next_id) < CAPACITY) {
        uint32_t op = next_rand(c) % 100;
        if (r->kind == ROUND_CLIENT_CANCELS && c->index == 0 &&
            atomic_load(&ran_ok) >= r->half && !atomic_exchange(&r->shutdown_called, 1)) {
            TU_CHECK(cf_shutdown(r->ex, CF_SHUTDOWN_CANCEL_PENDING) == 0);
            continue;
        }
        if (op < 40)
            op_wait_batch(c);
        else if (op < 70)
            op_as_completed_batch(c);
        else if (op < 95)
            op_nested(c);
        else
            op_map(c);
    }
    return NULL;
}

static void run_round(int index, long goal)
{
    static const round_kind kinds[4] = {ROUND_PLAIN, ROUND_CLIENT_CANCELS, ROUND_MAIN_WAITS,
                                        ROUND_BOUNDED};
    cf_executor_opts o;
    client c[CLIENTS];
    pthread_t t[CLIENTS];
    round r;
    long start = atomic_load(&ran_ok);
    int i;
    r.kind = kinds[index % 4];
    r.goal = goal;
    r.half = start + (goal - start) / 2;
    atomic_init(&r.shut, 0);
    atomic_init(&r.shutdown_called, 0);
    cf_executor_opts_init(&o);
    if (r.kind == ROUND_BOUNDED) {
        o.max_queued = 512;
        o.full_mode = CF_FULL_BLOCK;
    }
    r.ex = make_executor(2 + index % 3, &o);
    for (i = 0; i < CLIENTS; i++) {
        c[i].r = &r;
        c[i].index = i;
        c[i].rng = 0x9e3779b9u * (uint32_t)(index * CLIENTS + i + 1);
        t[i] = tu_thread_start(client_main, &c[i]);
    }
    if (r.kind == ROUND_MAIN_WAITS) {
        while (atomic_load(&ran_ok) < r.half && atomic_load(&next_id) < CAPACITY)
            tu_sleep(0.001);
        assert_int_equal(cf_shutdown(r.ex, CF_SHUTDOWN_WAIT), 0);
        atomic_store(&r.shut, 1);
    }
    for (i = 0; i < CLIENTS; i++)
        tu_thread_join(t[i]);
    cf_executor_free(r.ex);
}

/* The whole run: rounds until TARGET tasks ran, then every id is checked. */
static void stress_mixed_operations(void **state)
{
    long id, finished = 0, map_ok = 0, total_ran = 0;
    int threads0, round = 0;
    double t0 = tu_now();
    (void)state;
    TU_REQUIRE_INPROCESS();
    threads0 = tu_thread_baseline();
    ran = calloc(CAPACITY, 1);
    cbs = calloc(CAPACITY, 1);
    fate = calloc(CAPACITY, 1);
    assert_non_null(ran);
    assert_non_null(cbs);
    assert_non_null(fate);
    while (atomic_load(&ran_ok) < TARGET && atomic_load(&next_id) < CAPACITY &&
           round < MAX_ROUNDS) {
        long goal = (long)((double)TARGET * (round + 1) / ROUNDS);
        run_round(round, goal < TARGET ? goal : TARGET);
        round++;
        tu_assert_no_check_failures();
    }
    assert_int_equal(tu_wait_thread_count(threads0, 5.0), threads0);

    for (id = 0; id < CAPACITY; id++) {
        unsigned r = atomic_load_explicit(&ran[id], memory_order_relaxed);
        unsigned cb = atomic_load_explicit(&cbs[id], memory_order_relaxed);
        int ok;
        total_ran += r;
        switch (fate[id]) {
        case FATE_FINISHED:
            ok = r == 1 && cb == 1;
            finished++;
            break;
        case FATE_CANCELLED:
            ok = r == 0 && cb == 1;
            break;
        case FATE_MAP_OK:
            ok = r == 1 && cb == 0;
            map_ok++;
            break;
        case FATE_MAP_NOT_RUN:
            ok = r == 0 && cb == 0;
            break;
        case FATE_UNKNOWN:
            ok = r <= 1 && cb == 0;
            break;
        default:
            ok = r == 0 && cb == 0;
            break;
        }
        if (!ok)
            fail_msg("id %ld: fate %d, ran %u times, %u callbacks", id, fate[id], r, cb);
    }
    print_message("%d rounds, %.1f s: %ld tasks ran; %ld futures (%ld finished, %ld "
                  "cancelled), %ld submissions refused; %ld map items, %ld reported values\n",
                  round, tu_now() - t0, total_ran, atomic_load(&n_futures), finished,
                  atomic_load(&n_cancelled), atomic_load(&n_refused),
                  atomic_load(&n_map_items), map_ok);
    assert_true(total_ran >= TARGET);
    assert_true(atomic_load(&ran_ok) >= TARGET);
    tu_assert_no_check_failures();
    free(ran);
    free(cbs);
    free(fate);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(stress_mixed_operations),
};

CF_TEST_MAIN(tests)
