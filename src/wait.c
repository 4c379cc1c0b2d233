/*
 * wait.c -- cf_wait and cf_as_completed: waiting on many futures in O(n) total.
 *
 * Both put one internal callback node on each distinct pending future (duplicates are
 * removed first with a hash set) and then wait on one condition of their own
 * (cf__cond_wait: a worker of a thread pool runs other queued tasks meanwhile).  A
 * completion costs O(1): the node bumps a counter (wait) or pushes itself on a lock-free
 * stack (as_completed) and wakes the sleeper only if it sleeps.  Python's versions re-scan
 * every future on every completion; these never do.
 *
 * Leaving early (timeout, abandoned iteration): each node still listed on its future is
 * removed; a node the future has already taken is waited for until its `fired` mark, which
 * is the node's last touch of our memory.  So nothing outlives the call or the iterator.
 *
 * as_completed retains every distinct future, so the caller may release its own references
 * while iterating.  Locks: only each future's own callback-list lock, briefly.
 */
#include "internal.h"

#include <stdlib.h>

static bool done_now(cf_future *f)
{
    return cf__state_done(atomic_load_explicit(&f->state, memory_order_acquire));
}

/* A finished (not cancelled) future with an error outcome. */
static bool failed(cf_future *f)
{
    return (atomic_load_explicit(&f->state, memory_order_acquire) & CF__ST_MASK) ==
               CF_FINISHED &&
           f->outcome != 0;
}

/*
 * Copies the distinct futures of fs into out (first appearance order) and returns how many,
 * or (size_t)-1 if out of memory.
 */
static size_t unique_futures(cf_future *const *fs, size_t n, cf_future **out)
{
    size_t cap = 16;
    while (cap < 2 * n)
        cap <<= 1;
    cf_future **set = calloc(cap, sizeof *set);
    if (!set)
        return (size_t)-1;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uintptr_t h = ((uintptr_t)fs[i] >> 4) * 0x9E3779B97F4A7C15ull;
        size_t j = (size_t)(h >> 20) & (cap - 1);
        while (set[j] && set[j] != fs[i])
            j = (j + 1) & (cap - 1);
        if (!set[j]) {
            set[j] = fs[i];
            out[m++] = fs[i];
        }
    }
    free(set);
    return m;
}

static bool check_futures(cf_future *const *fs, size_t n)
{
    if (n && !fs)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return false;
    return true;
}

/* ---- cf_wait ------------------------------------------------------------------------ */

typedef struct waiter {
    cf__cond cond;             /* first: met() casts it back */
    _Atomic size_t done;
    _Atomic size_t errors;
    size_t total;
    cf_wait_mode mode;
} waiter;

typedef struct wait_node {
    cf__callback base;
    waiter *w;
    bool counted; /* counted as done by the first look */
    bool listed;
    _Atomic int fired;
} wait_node;

static bool condition_met(waiter *w)
{
    size_t done = atomic_load(&w->done);
    switch (w->mode) {
    case CF_FIRST_COMPLETED:
        return done > 0 || w->total == 0;
    case CF_FIRST_ERROR:
        return atomic_load(&w->errors) > 0 || done == w->total;
    default:
        return done == w->total;
    }
}

static void count_done(waiter *w, cf_future *f)
{
    if (failed(f))
        atomic_fetch_add(&w->errors, 1);
    atomic_fetch_add(&w->done, 1);
}

static bool waiter_met(cf__cond *c)
{
    return condition_met((waiter *)c);
}

static void wait_node_fired(cf__callback *self, cf_future *f)
{
    wait_node *node = (wait_node *)self;
    waiter *w = node->w;
    count_done(w, f);
    if (condition_met(w))
        cf__cond_signal(&w->cond);
    atomic_store_explicit(&node->fired, 1, memory_order_release);
}

int cf_wait(cf_future *const *fs, size_t n, cf_wait_mode mode, double timeout,
            cf_future **done, size_t *n_done, cf_future **not_done, size_t *n_not_done)
{
    if (!check_futures(fs, n) || CF__BAD_TIMEOUT(timeout) ||
        (mode != CF_FIRST_COMPLETED && mode != CF_FIRST_ERROR && mode != CF_ALL_COMPLETED))
        return CF_EINVAL;
    int64_t deadline = cf__deadline(timeout);
    cf_future **uniq = malloc((n ? n : 1) * sizeof *uniq);
    size_t m = uniq ? unique_futures(fs, n, uniq) : (size_t)-1;
    wait_node *nodes = m != (size_t)-1 ? calloc(m ? m : 1, sizeof *nodes) : NULL;
    if (!nodes) {
        free(uniq);
        return CF_ENOMEM;
    }

    waiter w = {.total = m, .mode = mode};
    cf__cond_init(&w.cond, waiter_met);
    bool forked = false;
    for (size_t i = 0; i < m; i++) {
        if (done_now(uniq[i])) {
            count_done(&w, uniq[i]);
            nodes[i].counted = true;
        } else if (uniq[i]->fork_gen != cf__fork_gen) {
            forked = true;
        }
    }
    if (forked && !condition_met(&w)) { /* it could only wait for the parent's workers */
        free(nodes);
        free(uniq);
        return CF_EFORKED;
    }
    if (!condition_met(&w) && timeout != 0) {
        for (size_t i = 0; i < m; i++) {
            if (nodes[i].counted) /* not done_now(): one done since must still count */
                continue;
            nodes[i].base.fn = wait_node_fired;
            nodes[i].w = &w;
            if (cf__future_add_callback(uniq[i], &nodes[i].base))
                nodes[i].listed = true;
            else
                count_done(&w, uniq[i]);
        }
        cf__cond_wait(&w.cond, deadline); /* a timeout is not an error: the split tells */
        for (size_t i = 0; i < m; i++)
            if (nodes[i].listed && !cf__future_remove_callback(uniq[i], &nodes[i].base))
                while (!atomic_load_explicit(&nodes[i].fired, memory_order_acquire))
                    cf__cpu_relax();
    }

    size_t nd = 0, nn = 0;
    for (size_t i = 0; i < m; i++) {
        if (done_now(uniq[i])) {
            if (done)
                done[nd] = uniq[i];
            nd++;
        } else {
            if (not_done)
                not_done[nn] = uniq[i];
            nn++;
        }
    }
    if (n_done)
        *n_done = nd;
    if (n_not_done)
        *n_not_done = nn;
    free(nodes);
    free(uniq);
    return 0;
}

/* ---- cf_as_completed ---------------------------------------------------------------- */

typedef struct ac_node {
    cf__callback base;
    cf_as_completed *it;
    struct ac_node *next_ready;
    bool listed;
    _Atomic int fired;
} ac_node;

struct cf_as_completed {
    cf__cond cond;               /* first: met() casts it back; met when incoming is not
                                    empty */
    _Atomic(ac_node *) incoming; /* completed since the consumer last looked (a stack) */
    size_t total;
    size_t yielded;
    int64_t deadline;
    uint16_t fork_gen;           /* cf__fork_gen at creation */
    bool forked;                 /* a future was pending from an ancestor process */
    cf_future **futures;         /* distinct, retained */
    ac_node *nodes;              /* nodes[i] belongs to futures[i] */
    size_t *ready;               /* indices in yield order */
    size_t ready_len;
};

static void ac_node_fired(cf__callback *self, cf_future *f)
{
    (void)f;
    ac_node *node = (ac_node *)self;
    cf_as_completed *it = node->it;
    ac_node *head = atomic_load(&it->incoming);
    do
        node->next_ready = head;
    while (!atomic_compare_exchange_weak(&it->incoming, &head, node));
    cf__cond_signal(&it->cond);
    atomic_store_explicit(&node->fired, 1, memory_order_release);
}

static bool incoming_met(cf__cond *c)
{
    return atomic_load(&((cf_as_completed *)c)->incoming) != NULL;
}

/* Moves what completed since the last look into the ready list, in completion order. */
static void take_incoming(cf_as_completed *it)
{
    ac_node *stack = atomic_exchange(&it->incoming, NULL);
    size_t first = it->ready_len;
    for (; stack; stack = stack->next_ready)
        it->ready[it->ready_len++] = (size_t)(stack - it->nodes);
    for (size_t a = first, b = it->ready_len; a + 1 < b; a++, b--) { /* stack was LIFO */
        size_t t = it->ready[a];
        it->ready[a] = it->ready[b - 1];
        it->ready[b - 1] = t;
    }
}

int cf_as_completed_new(cf_as_completed **out, cf_future *const *fs, size_t n, double timeout)
{
    if (!out)
        return CF_EINVAL;
    *out = NULL;
    if (!check_futures(fs, n) || CF__BAD_TIMEOUT(timeout))
        return CF_EINVAL;
    cf_as_completed *it = calloc(1, sizeof *it);
    if (!it)
        return CF_ENOMEM;
    size_t cap = n ? n : 1;
    it->futures = malloc(cap * sizeof *it->futures);
    it->nodes = calloc(cap, sizeof *it->nodes);
    it->ready = malloc(cap * sizeof *it->ready);
    size_t m = it->futures ? unique_futures(fs, n, it->futures) : (size_t)-1;
    if (!it->nodes || !it->ready || m == (size_t)-1) {
        free(it->futures);
        free(it->nodes);
        free(it->ready);
        free(it);
        return CF_ENOMEM;
    }
    it->total = m;
    it->deadline = cf__deadline(timeout);
    it->fork_gen = cf__fork_gen;
    cf__cond_init(&it->cond, incoming_met);
    for (size_t i = 0; i < m; i++) {
        cf_future_retain(it->futures[i]);
        ac_node *node = &it->nodes[i];
        node->base.fn = ac_node_fired;
        node->it = it;
        if (!done_now(it->futures[i]) && cf__future_add_callback(it->futures[i], &node->base)) {
            node->listed = true;
            it->forked |= it->futures[i]->fork_gen != cf__fork_gen;
        } else {
            it->ready[it->ready_len++] = i;
        }
    }
    *out = it;
    return 0;
}

int cf_as_completed_next(cf_as_completed *it, cf_future **f)
{
    if (!it || !f)
        return CF_EINVAL;
    if (it->yielded == it->total)
        return CF_EEND;
    while (it->yielded == it->ready_len) {
        take_incoming(it);
        if (it->yielded < it->ready_len)
            break;
        if (it->forked || it->fork_gen != cf__fork_gen)
            return CF_EFORKED; /* what is left completes in the parent, if anywhere */
        if (cf__cond_wait(&it->cond, it->deadline) == CF_ETIMEDOUT) {
            take_incoming(it);
            if (it->yielded < it->ready_len)
                break;
            return CF_ETIMEDOUT;
        }
    }
    *f = it->futures[it->ready[it->yielded++]];
    return 0;
}

size_t cf_as_completed_pending(const cf_as_completed *it)
{
    return it->total - it->yielded;
}

size_t cf_as_completed_total(const cf_as_completed *it)
{
    return it->total;
}

void cf_as_completed_free(cf_as_completed *it)
{
    if (!it)
        return;
    for (size_t i = 0; i < it->total; i++) {
        ac_node *node = &it->nodes[i];
        if (node->listed && !cf__future_remove_callback(it->futures[i], &node->base))
            while (!atomic_load_explicit(&node->fired, memory_order_acquire))
                cf__cpu_relax();
        cf_future_release(it->futures[i]);
    }
    free(it->futures);
    free(it->nodes);
    free(it->ready);
    free(it);
}
