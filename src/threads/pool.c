/*
 * pool.c -- the thread-pool backend: work-stealing workers that spin briefly, then sleep.
 *
 * Where tasks go:  a task submitted by one of this pool's workers goes to the bottom of
 * that worker's own deque (no shared write at all); any other thread's task goes to the
 * injector.  A worker looks for work in its deque (LIFO), then the injector, then steals
 * from the top of the other workers' deques.  Every 61st look starts with the injector so
 * that a worker busy with its own nested tasks cannot starve outside submitters.
 *
 * Sleeping and waking (the part that decides both latency and idle cost):
 *   - A worker that finds nothing becomes "spinning" for about SPIN_NS, yielding its CPU
 *     between looks, then "parks": it puts itself on the idle list, increments idle_count,
 *     only then stops counting as spinning, re-checks every queue, and only then sleeps on
 *     its own futex word.  In that order, a submitter that sees no spinner sees the worker
 *     idle and wakes it rather than starting another thread.
 *   - A submitter, after queueing, reads `spinning`; if no worker is spinning it wakes one
 *     parked worker, or starts a new one while fewer than the maximum exist and the work is
 *     still queued (a worker may have taken it meanwhile: then nobody else is needed).  If
 *     a worker is spinning, the submitter does nothing: the spinner will find the task.  A
 *     steady stream of submissions therefore costs no system calls.
 *   - The spinner that finds work while it was the last spinner wakes one more parked
 *     worker if work remains, so a burst ramps up all workers one hop at a time.
 *   Both sides order "publish, then read the other side" with sequentially consistent
 *   operations (queue CAS / idle_count increment), so a task queued while a worker goes to
 *   sleep is seen by the worker's re-check or the worker is seen by the submitter: no lost
 *   wake-up, and no timed polling.  An idle pool sleeps in futex_wait with no timeout.
 *
 * Waiting inside a task (help_wait, called by every wait of the core): a worker whose task
 * waits for a condition keeps taking tasks (next_task with `waited`) and, when there are
 * none, parks as an idle worker with the condition's word pointed at its own park word, so
 * either new work or the condition wakes it.  So a task may wait for tasks it submitted,
 * in any way, even with one worker.
 *
 * Starting workers is allowed while the pool is being joined (work queued before the
 * shutdown still gets every worker it needs); join_workers joins those too and declares
 * the pool joined only when nobody is left, after which no worker starts.
 *
 * Lock order: start_lock before idle_lock; both are taken only when starting, parking or
 * waking workers, never per task, and neither is held while joining.  Invariants: workers [0, started) have
 * threads; a worker is on the idle list iff its `idle` flag is set (under idle_lock), and
 * idle_count equals the list's length.
 */
#define _GNU_SOURCE
#include "../internal.h"
#include "deque.h"
#include "injector.h"

#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPIN_NS 50000
#define YIELD_EVERY 15 /* looks between yields, minus one (a mask) */
#define FAIRNESS_TICKS 61

typedef struct pool pool;

typedef struct worker {
    cf__deque deque;
    _Atomic uint32_t wake CF__ALIGNED; /* futex word: set to 1 to end a park */
    pool *pool;
    pthread_t thread;
    int index;
    unsigned ticks;
    uint32_t rng;
    bool spinning;     /* counted in pool.spinning (only this worker changes it) */
    bool idle;         /* on the idle list (under idle_lock) */
    bool woken_to_look; /* popped by add_looker, which counted it as spinning (idle_lock) */
    struct worker *next_idle;
} worker;

struct pool {
    cf_executor base;
    worker *workers; /* array of base.workers */
    cf__injector injector;
    _Atomic int started CF__ALIGNED;
    _Atomic int spinning CF__ALIGNED;
    _Atomic int idle_count CF__ALIGNED;
    _Atomic bool stopping;
    pthread_mutex_t idle_lock;
    worker *idle_head;
    pthread_mutex_t start_lock;
    cf__join_once join; /* once joined, no worker may start any more (under start_lock) */
};

/* The calling thread's worker record if it is a worker of p, else NULL. */
static worker *current_in(const pool *p)
{
    return cf__current.ex == &p->base ? cf__current.worker : NULL;
}

static bool cond_met(cf__cond *c)
{
    return c && c->met(c);
}

/* ---- finding work ------------------------------------------------------------------- */

static cf_future *steal(worker *w)
{
    pool *p = w->pool;
    int n = atomic_load_explicit(&p->started, memory_order_acquire);
    if (n <= 1)
        return NULL;
    w->rng ^= w->rng << 13; /* xorshift: spreads thieves over victims */
    w->rng ^= w->rng >> 17;
    w->rng ^= w->rng << 5;
    int start = (int)(w->rng % (uint32_t)n);
    for (int i = 0; i < n; i++) {
        worker *victim = &p->workers[(start + i) % n];
        if (victim == w)
            continue;
        cf_future *f = cf__deque_steal(&victim->deque);
        if (f)
            return f;
    }
    return NULL;
}

static cf_future *find_work(worker *w)
{
    pool *p = w->pool;
    cf_future *f;
    if (++w->ticks % FAIRNESS_TICKS == 0 && (f = cf__injector_pop(&p->injector, &w->deque)))
        return f;
    if ((f = cf__deque_pop(&w->deque)) || (f = cf__injector_pop(&p->injector, &w->deque)))
        return f;
    return steal(w);
}

static bool work_available(pool *p)
{
    if (cf__injector_nonempty(&p->injector))
        return true;
    int n = atomic_load_explicit(&p->started, memory_order_acquire);
    for (int i = 0; i < n; i++)
        if (cf__deque_nonempty(&p->workers[i].deque))
            return true;
    return false;
}

/* ---- parking ------------------------------------------------------------------------ */

static void unpark(worker *w)
{
    atomic_store_explicit(&w->wake, 1, memory_order_release);
    cf__futex_wake(&w->wake, 1);
}

/* Wakes one parked worker, already counted as spinning by the caller; false if none. */
static bool wake_one(pool *p)
{
    if (atomic_load(&p->idle_count) == 0)
        return false;
    pthread_mutex_lock(&p->idle_lock);
    worker *w = p->idle_head;
    if (w) {
        p->idle_head = w->next_idle;
        w->idle = false;
        w->woken_to_look = true;
        atomic_fetch_sub(&p->idle_count, 1);
    }
    pthread_mutex_unlock(&p->idle_lock);
    if (w)
        unpark(w);
    return w != NULL;
}

/* Wakes every parked worker (shutdown).  Unparks under the lock: a woken worker may re-park
 * and rewrite its link at once, so the list cannot be walked after letting go. */
static void wake_all(pool *p)
{
    pthread_mutex_lock(&p->idle_lock);
    for (worker *w = p->idle_head; w; w = w->next_idle) {
        w->idle = false;
        atomic_fetch_sub(&p->idle_count, 1);
        unpark(w);
    }
    p->idle_head = NULL;
    pthread_mutex_unlock(&p->idle_lock);
}

static void leave_idle_list(worker *w)
{
    pool *p = w->pool;
    pthread_mutex_lock(&p->idle_lock);
    if (w->idle) {
        worker **link = &p->idle_head;
        while (*link != w)
            link = &(*link)->next_idle;
        *link = w->next_idle;
        w->idle = false;
        atomic_fetch_sub(&p->idle_count, 1);
    }
    w->spinning = w->woken_to_look;
    w->woken_to_look = false;
    pthread_mutex_unlock(&p->idle_lock);
}

/* Counts w among the spinning workers, once. */
static void count_spinning(worker *w)
{
    if (!w->spinning) {
        w->spinning = true;
        atomic_fetch_add(&w->pool->spinning, 1);
    }
}

/* Stops counting w as spinning; true if it was the last spinner. */
static bool uncount_spinning(worker *w)
{
    if (!w->spinning)
        return false;
    w->spinning = false;
    return atomic_fetch_sub(&w->pool->spinning, 1) == 1;
}

/*
 * Sleeps until woken for new work, until `waited` (if any) is met (its signal bumps w->wake:
 * see help_wait), or the deadline.  Returns CF_ETIMEDOUT only for the deadline.
 */
static int park(worker *w, cf__cond *waited, int64_t deadline)
{
    pool *p = w->pool;
    atomic_store_explicit(&w->wake, 0, memory_order_relaxed);

    pthread_mutex_lock(&p->idle_lock);
    w->idle = true;
    w->next_idle = p->idle_head;
    p->idle_head = w;
    atomic_fetch_add(&p->idle_count, 1);
    pthread_mutex_unlock(&p->idle_lock);
    /* Only now, and without handing the looking on: this worker re-checks the queues
     * below itself (see the design note). */
    (void)uncount_spinning(w);

    int rc = 0;
    bool leave = waited ? waited->met(waited) : atomic_load(&p->stopping);
    if (!leave && !work_available(p)) {
        while (atomic_load_explicit(&w->wake, memory_order_acquire) == 0)
            if ((rc = cf__futex_wait(&w->wake, 0, deadline)) == CF_ETIMEDOUT)
                break;
    }
    leave_idle_list(w);
    return rc;
}

/* ---- the worker --------------------------------------------------------------------- */

static void add_looker(pool *p);

/*
 * Leaves the spinning state.  The last spinner to leave makes sure another worker looks for
 * whatever is still queued, so a burst ramps up every worker one hop at a time, and a worker
 * woken to look that returns to its own waiting task hands the looking on.
 */
static void stop_spinning(worker *w)
{
    if (uncount_spinning(w) && work_available(w->pool))
        add_looker(w->pool);
}

/* Looks for work for about SPIN_NS, counted as spinning, before the caller parks. */
static cf_future *spin_for_work(worker *w, cf__cond *waited)
{
    pool *p = w->pool;
    count_spinning(w);
    int64_t end = cf__now_ns() + SPIN_NS;
    for (unsigned i = 1;; i++) {
        for (int k = 0; k < 8; k++)
            cf__cpu_relax();
        cf_future *f = find_work(w);
        if (f || cond_met(waited) || atomic_load_explicit(&p->stopping, memory_order_relaxed))
            return f;
        if ((i & YIELD_EVERY) == 0) {
            if (cf__now_ns() > end)
                return NULL;
            sched_yield(); /* give the CPU to a submitter if it shares ours */
        }
    }
}

/*
 * The next task for w, or NULL when `waited` is met or the deadline passed (waiting in a
 * task), or when the pool is stopping and every queue is empty (the worker then exits).
 */
static cf_future *next_task(worker *w, cf__cond *waited, int64_t deadline)
{
    pool *p = w->pool;
    for (;;) {
        cf_future *f = find_work(w);
        if (!f && !cond_met(waited) && !atomic_load(&p->stopping))
            f = spin_for_work(w, waited);
        if (f || cond_met(waited) ||
            (!waited && atomic_load(&p->stopping) && !work_available(p))) {
            stop_spinning(w);
            return f;
        }
        /* park() stops the spinning once this worker is on the idle list. */
        if (park(w, waited, deadline) == CF_ETIMEDOUT) {
            stop_spinning(w);
            return NULL;
        }
        /* Back from park without being woken to look (work showed up at its re-check, or
         * the waited future finished): look again as a spinner, so that finding work
         * hands the looking on to another worker when more remains (stop_spinning). */
        count_spinning(w);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    cf_executor *ex = &w->pool->base;
    cf__current = (cf__current_worker){.ex = ex, .index = w->index, .worker = w};
    w->spinning = true; /* counted by whoever started it */
    char name[16];
    snprintf(name, sizeof name, "%s-%d", ex->name, w->index);
    pthread_setname_np(pthread_self(), name);

    cf_ctx ctx = {.ex = ex, .worker = w->index};
    if (ex->initializer) {
        int rc = ex->initializer(ex->initializer_arg, &ctx);
        if (rc)
            cf__executor_break(ex, rc, ctx.message);
        cf__ctx_reset(&ctx);
    }
    cf_future *f;
    while ((f = next_task(w, NULL, CF__NO_DEADLINE)))
        cf__run_task(ex, f, &ctx);
    cf__current = (cf__current_worker){0};
    return NULL;
}

/*
 * A task of this pool waits for c: its worker runs other queued tasks on this stack until c
 * is met, parking on its own word (which c's signals bump) when there are none.  A task
 * run here that waits in turn nests one level deeper on the same stack.
 */
static int pool_help_wait(cf_executor *ex, void *worker_rec, cf__cond *c, int64_t deadline)
{
    worker *w = worker_rec;
    atomic_store(&c->word, &w->wake);
    atomic_store(&c->sleeping, 1);
    for (;;) {
        if (c->met(c))
            return 0;
        cf_future *task = next_task(w, c, deadline);
        if (task) {
            cf_ctx ctx = {.ex = ex, .worker = w->index};
            cf__run_task(ex, task, &ctx);
        } else if (!c->met(c) && deadline != CF__NO_DEADLINE && cf__now_ns() >= deadline) {
            return CF_ETIMEDOUT;
        }
    }
}

/*
 * Starts worker number `started` if the maximum allows.  Called with start_lock held.
 * Also while the pool is being joined (work queued before the shutdown gets every worker
 * it needs: the joiner joins the newcomer too), never once it has been joined.
 */
static int start_worker_locked(pool *p)
{
    int n = atomic_load_explicit(&p->started, memory_order_relaxed);
    if (n >= p->base.workers || p->join.joined)
        return 0;
    worker *w = &p->workers[n];
    /* Workers block every signal, so process-directed signals reach the application's own
     * threads, as in libuv's pool. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    atomic_fetch_add(&p->spinning, 1); /* it starts out looking for work */
    int rc = pthread_create(&w->thread, NULL, worker_main, w);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        atomic_fetch_sub(&p->spinning, 1);
        return CF_ESYS;
    }
    atomic_store_explicit(&p->started, n + 1, memory_order_release);
    return 0;
}

/* Puts one more worker to looking for work: a parked one, else a new one if allowed. */
static void add_looker(pool *p)
{
    atomic_fetch_add(&p->spinning, 1); /* on behalf of the worker woken below */
    if (wake_one(p))
        return;
    atomic_fetch_sub(&p->spinning, 1);
    if (atomic_load_explicit(&p->started, memory_order_relaxed) >= p->base.workers)
        return;
    /* A worker took the work since the caller looked: it needs no second thread.  (Only
     * on this path, which ends once every worker has started.) */
    if (!work_available(p))
        return;
    pthread_mutex_lock(&p->start_lock);
    /* A failure here is harmless: at least one worker exists (see pool_submit). */
    start_worker_locked(p);
    pthread_mutex_unlock(&p->start_lock);
}

/* After queueing: make sure some worker will look at the queues.  When every worker is
 * busy and no more may start, there is nobody to tell: plain loads only. */
static void notify(pool *p)
{
    if (atomic_load(&p->spinning) == 0 &&
        (atomic_load(&p->idle_count) > 0 ||
         atomic_load_explicit(&p->started, memory_order_relaxed) < p->base.workers))
        add_looker(p);
}

/* ---- backend operations ------------------------------------------------------------- */

static int pool_start(cf_executor *ex, const cf_executor_opts *opts)
{
    (void)opts; /* executor.c has refused the options a thread pool cannot honour */
    pool *p = (pool *)ex;
    if (posix_memalign((void **)&p->workers, CF__CACHELINE, sizeof(worker) * ex->workers))
        return CF_ENOMEM;
    memset(p->workers, 0, sizeof(worker) * ex->workers);
    if (cf__injector_init(&p->injector)) {
        free(p->workers);
        return CF_ENOMEM;
    }
    for (int i = 0; i < ex->workers; i++) {
        worker *w = &p->workers[i];
        w->pool = p;
        w->index = i;
        w->rng = 2654435761u * (uint32_t)(i + 1);
    }
    pthread_mutex_init(&p->idle_lock, NULL);
    pthread_mutex_init(&p->start_lock, NULL);
    cf__join_init(&p->join);
    return 0;
}

static int pool_submit(cf_executor *ex, cf_future *f)
{
    pool *p = (pool *)ex;
    if (CF__UNLIKELY(atomic_load_explicit(&p->started, memory_order_acquire) == 0)) {
        /* The first task needs a worker for sure: start it before queueing, so that a
         * failure to create a thread is this submission's error, not a lost task. */
        pthread_mutex_lock(&p->start_lock);
        int rc = atomic_load(&p->started) == 0 ? start_worker_locked(p) : 0;
        pthread_mutex_unlock(&p->start_lock);
        if (rc)
            return rc;
    }
    worker *w = current_in(p);
    if (!(w && cf__deque_push(&w->deque, f))) {
        int rc = cf__injector_push(&p->injector, f);
        if (rc)
            return rc;
    }
    notify(p);
    return 0;
}

/*
 * Joins every worker once; concurrent callers wait for the first.  The joins happen outside
 * start_lock, because an exiting worker may still want it (add_looker) and may start a
 * worker while it still has queued work: `started` is read again after each join, and the
 * pool counts as joined only when a look under the lock finds no worker left to join.
 */
static void join_workers(pool *p)
{
    pthread_mutex_lock(&p->start_lock);
    bool mine = cf__join_claim(&p->join, &p->start_lock);
    pthread_mutex_unlock(&p->start_lock);
    if (!mine)
        return;
    for (int i = 0;; i++) {
        pthread_mutex_lock(&p->start_lock);
        if (i >= atomic_load(&p->started)) {
            cf__join_done_locked(&p->join);
            pthread_mutex_unlock(&p->start_lock);
            return;
        }
        pthread_mutex_unlock(&p->start_lock);
        pthread_join(p->workers[i].thread, NULL);
    }
}

static int pool_shutdown(cf_executor *ex, unsigned flags)
{
    pool *p = (pool *)ex;
    if (flags & CF_SHUTDOWN_CANCEL_PENDING) {
        cf_future *f;
        while ((f = cf__injector_pop(&p->injector, NULL)))
            cf__cancel_queued(&p->base, f);
        int n = atomic_load(&p->started);
        for (int i = 0; i < n; i++) {
            cf__deque *d = &p->workers[i].deque;
            while (cf__deque_nonempty(d))
                if ((f = cf__deque_steal(d)))
                    cf__cancel_queued(&p->base, f);
        }
    }
    atomic_store(&p->stopping, true);
    wake_all(p);
    if (flags & CF_SHUTDOWN_WAIT)
        join_workers(p);
    return 0;
}

static bool pool_own_thread(cf_executor *ex)
{
    return current_in((pool *)ex) != NULL;
}

static void pool_destroy(cf_executor *ex)
{
    pool *p = (pool *)ex;
    join_workers(p);
    /* Left in the queues only: tasks their submitters took back at shutdown. */
    cf_future *f;
    while ((f = cf__injector_pop(&p->injector, NULL)))
        cf_future_release(f);
    for (int i = 0; i < atomic_load(&p->started); i++)
        while ((f = cf__deque_pop(&p->workers[i].deque)))
            cf_future_release(f);
    cf__injector_destroy(&p->injector);
    pthread_mutex_destroy(&p->idle_lock);
    pthread_mutex_destroy(&p->start_lock);
    cf__join_destroy(&p->join);
    free(p->workers);
}

const cf__backend cf__threads_backend = {
    .name = "threads",
    .id = CF_BACKEND_THREADS,
    .pointer_tasks = true,
    .struct_size = sizeof(pool),
    .start = pool_start,
    .submit = pool_submit,
    .shutdown = pool_shutdown,
    .own_thread = pool_own_thread,
    .destroy = pool_destroy,
    .help_wait = pool_help_wait,
};
