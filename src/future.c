/*
 * future.c -- the future, which is also the task record, from allocation to recycling.
 *
 * State: one 32-bit atomic word holds the public state (PENDING, RUNNING, CANCELLED,
 * FINISHED) and three flags: LOCK (a tiny spin lock over the callback list), CBS (the list
 * is not empty) and WAITERS (some thread sleeps on the word with futex).  Leaving PENDING or
 * RUNNING is a CAS, so exactly one party starts or cancels a task and exactly one completes
 * it; the first outcome is the only outcome.  The completer writes the outcome fields before
 * its CAS (release) and readers load the word with acquire, so a done future's fields are
 * immutable and readable without locks.
 *
 * Callbacks: appended under LOCK while the future is not done.  The completer's CAS never
 * succeeds while LOCK is held, so after it, nobody appends; the completer then detaches the
 * whole list under LOCK and runs it outside, in order.  Removing a callback (an abandoned
 * wait) succeeds only while it is still listed; otherwise the completer owns it.
 *
 * Waking: a waiter sets WAITERS with a CAS against the value it saw and sleeps on that
 * value, so a completion between its check and its sleep makes the sleep return at once.
 * The completer calls futex_wake only if WAITERS was set: completing an unwatched future
 * costs one CAS and no system call.
 *
 * Recycling: freed futures go to per-thread magazines (no atomics), exchanged whole with a
 * global depot under a mutex once per MAG_SIZE frees or allocations (see below).  So
 * steady-state submission never calls malloc.  The depot is released when the last
 * executor is freed, and at unload.
 *
 * Lock order: a future's LOCK is a leaf (no other lock is taken while holding it; callbacks
 * run after it is released).  The depot mutex is a leaf too.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>

/* ---- recycling ---------------------------------------------------------------------- */

/*
 * Magazines (Bonwick's): a thread keeps two arrays of free futures, `loaded` and
 * `previous`, and exchanges whole arrays with a global depot only when both are full (on
 * free) or both empty (on allocation).  An array, not a list threaded through the futures:
 * with a million futures in flight they are not in cache, and popping a linked list would
 * be one dependent cache miss per allocation.  From an array the next futures' addresses
 * are known ahead, so they are prefetched while the current one is used.
 */
#define MAG_SIZE 254 /* two words of header: a magazine is 2 KiB */
#define PREFETCH_AHEAD 4

typedef struct magazine {
    struct magazine *next;
    size_t count;
    cf_future *items[MAG_SIZE];
} magazine;

typedef struct future_cache {
    magazine *loaded, *previous;
    bool registered; /* the thread-exit hook is armed */
} future_cache;

static CF__THREAD_LOCAL future_cache cache;

static struct {
    pthread_mutex_t lock;
    magazine *full, *empty;
} depot = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL};

static pthread_once_t exit_hook_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_hook_key;

static void depot_put(magazine **list, magazine *m)
{
    pthread_mutex_lock(&depot.lock);
    m->next = *list;
    *list = m;
    pthread_mutex_unlock(&depot.lock);
}

static magazine *depot_take(magazine **list)
{
    pthread_mutex_lock(&depot.lock);
    magazine *m = *list;
    if (m)
        *list = m->next;
    pthread_mutex_unlock(&depot.lock);
    return m;
}

static void depot_put_any(magazine *m)
{
    if (m)
        depot_put(m->count ? &depot.full : &depot.empty, m);
}

/* Thread exit: hand the thread's magazines to the depot so nothing is stranded. */
static void cache_flush_at_exit(void *unused)
{
    (void)unused;
    depot_put_any(cache.loaded);
    depot_put_any(cache.previous);
    cache.loaded = cache.previous = NULL;
}

static void create_exit_hook(void)
{
    pthread_key_create(&exit_hook_key, cache_flush_at_exit);
}

static void arm_exit_hook(void)
{
    pthread_once(&exit_hook_once, create_exit_hook);
    pthread_setspecific(exit_hook_key, &cache); /* any non-NULL value arms the hook */
    cache.registered = true;
}

/*
 * Both of the thread's magazines are empty (allocating) or full (freeing): hand `previous`
 * to the depot's `give` list and load one from its `take` list (or, when freeing, a new
 * empty one).  False if there is none to load.
 */
static bool exchange_magazine(magazine **take, magazine **give, bool may_create)
{
    magazine *m = depot_take(take);
    if (!m && may_create && (m = malloc(sizeof *m)))
        m->count = 0;
    if (!m)
        return false;
    if (!cache.registered)
        arm_exit_hook();
    if (cache.previous)
        depot_put(give, cache.previous);
    cache.previous = cache.loaded;
    cache.loaded = m;
    return true;
}

static void swap_magazines(void)
{
    magazine *m = cache.loaded;
    cache.loaded = cache.previous;
    cache.previous = m;
}

static cf_future *cache_get(void)
{
    magazine *m = cache.loaded;
    if (CF__UNLIKELY(!m || m->count == 0)) {
        if (cache.previous && cache.previous->count)
            swap_magazines();
        else if (!exchange_magazine(&depot.full, &depot.empty, false))
            return NULL;
        m = cache.loaded;
    }
    cf_future *f = m->items[--m->count];
    if (m->count >= PREFETCH_AHEAD)
        __builtin_prefetch(m->items[m->count - PREFETCH_AHEAD], 1, 3);
    return f;
}

static void cache_put(cf_future *f)
{
    magazine *m = cache.loaded;
    if (CF__UNLIKELY(!m || m->count == MAG_SIZE)) {
        if (cache.previous && cache.previous->count == 0) {
            swap_magazines();
        } else if (!exchange_magazine(&depot.empty, &depot.full, true)) {
            free(f); /* no memory for a magazine: let this one go */
            return;
        }
        m = cache.loaded;
    }
    m->items[m->count++] = f;
}

void cf__futures_trim(void)
{
    pthread_mutex_lock(&depot.lock);
    magazine *full = depot.full, *empty = depot.empty;
    depot.full = depot.empty = NULL;
    pthread_mutex_unlock(&depot.lock);
    while (full) {
        magazine *next = full->next;
        for (size_t i = 0; i < full->count; i++)
            free(full->items[i]);
        free(full);
        full = next;
    }
    while (empty) {
        magazine *next = empty->next;
        free(empty);
        empty = next;
    }
}

__attribute__((destructor)) static void trim_at_unload(void)
{
    cf__futures_trim();
}

cf_future *cf__future_alloc(uint32_t refs)
{
    cf_future *f = cache_get();
    if (CF__UNLIKELY(!f) && !(f = aligned_alloc(CF__CACHELINE, sizeof *f)))
        return NULL;
    atomic_init(&f->state, CF_PENDING);
    atomic_init(&f->refs, refs);
    f->kind = CF__TASK_POINTER;
    f->bounded = false;
    f->outcome = 0;
    f->arg = NULL;
    f->value = NULL;
    f->cb_head = NULL;
    f->next = NULL;
    f->extra = NULL;
    return f;
}

cf__future_extra *cf__future_extra_get(cf_future *f)
{
    if (!f->extra)
        f->extra = calloc(1, sizeof *f->extra);
    return f->extra;
}

void cf__future_set_error(cf_future *f, int outcome, int code, char *message)
{
    f->outcome = outcome;
    cf__future_extra *x = cf__future_extra_get(f);
    if (x) {
        x->code = code;
        x->message = message;
    } else {
        free(message); /* out of memory: the outcome still tells what happened */
    }
}

cf_future *cf_future_retain(cf_future *f)
{
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

void cf_future_release(cf_future *f)
{
    if (!f)
        return;
    /* The last reference needs no read-modify-write: holding it, nobody else can change the
     * count (the acquire pairs with the release of whoever dropped the previous one). */
    if (atomic_load_explicit(&f->refs, memory_order_acquire) != 1 &&
        atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (f->kind == CF__TASK_BYTES) {
        if (f->extra && f->extra->value_mapped) {
            munmap(f->value, f->extra->value_len);
            if (f->extra->value_home)
                f->extra->value_home->take_back(f->extra->value_home, f->extra->value_fd);
        } else
            free(f->value);
        free(f->arg); /* the input, if the task never completed (never submitted) */
    }
    if (f->extra) {
        free(f->extra->message);
        free(f->extra);
    }
    cache_put(f);
}

/* ---- state transitions -------------------------------------------------------------- */

static uint32_t lock_list(cf_future *f)
{
    uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
    for (;;) {
        if (s & CF__ST_LOCK) {
            cf__cpu_relax();
            s = atomic_load_explicit(&f->state, memory_order_relaxed);
        } else if (atomic_compare_exchange_weak_explicit(&f->state, &s, s | CF__ST_LOCK,
                                                         memory_order_acquire,
                                                         memory_order_relaxed)) {
            return s | CF__ST_LOCK;
        }
    }
}

static void unlock_list(cf_future *f, bool has_callbacks)
{
    if (has_callbacks)
        atomic_fetch_or_explicit(&f->state, CF__ST_CBS, memory_order_relaxed);
    else
        atomic_fetch_and_explicit(&f->state, ~CF__ST_CBS, memory_order_relaxed);
    atomic_fetch_and_explicit(&f->state, ~CF__ST_LOCK, memory_order_release);
}

bool cf__future_start(cf_future *f)
{
    uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
    for (;;) {
        if ((s & CF__ST_MASK) != CF_PENDING)
            return false;
        if (s & CF__ST_LOCK) {
            cf__cpu_relax();
            s = atomic_load_explicit(&f->state, memory_order_relaxed);
            continue;
        }
        if (atomic_compare_exchange_weak_explicit(&f->state, &s, (s & ~CF__ST_MASK) | CF_RUNNING,
                                                  memory_order_acquire, memory_order_relaxed))
            return true;
    }
}

static void run_callbacks(cf_future *f)
{
    lock_list(f);
    cf__callback *cb = f->cb_head;
    f->cb_head = NULL;
    unlock_list(f, false);
    while (cb) {
        cf__callback *next = cb->next; /* cb may be gone once its fn returns */
        cb->fn(cb, f);
        cb = next;
    }
}

/*
 * A recorded task's event must be in the executor's log before anybody can see the future
 * done: the list lock (which every transition waits for) is taken while the future is
 * still in `from`, the event appended, and `final` published with the lock's release in
 * one CAS.  Returns the state before that CAS, or 0 if the future was not in `from`.
 */
static uint32_t complete_recorded(cf_future *f, cf_state from, cf_state final)
{
    uint32_t s = lock_list(f);
    if ((s & CF__ST_MASK) != (uint32_t)from) {
        unlock_list(f, f->cb_head != NULL);
        return 0;
    }
    cf__events_record(f, final == CF_CANCELLED ? CF_ECANCELLED : f->outcome);
    for (;;) { /* waiters may set their bit meanwhile */
        uint32_t next = (s & ~(CF__ST_MASK | CF__ST_WAITERS | CF__ST_LOCK)) | (uint32_t)final;
        if (atomic_compare_exchange_weak_explicit(&f->state, &s, next, memory_order_acq_rel,
                                                  memory_order_relaxed))
            return s | 1u << 31;
    }
}

bool cf__future_complete(cf_future *f, cf_state from, cf_state final)
{
    uint32_t s = atomic_load_explicit(&f->state, memory_order_relaxed);
    if (CF__UNLIKELY(f->extra && f->extra->recorder)) {
        if (!(s = complete_recorded(f, from, final)))
            return false;
    } else {
        for (;;) {
            if ((s & CF__ST_MASK) != (uint32_t)from)
                return false;
            if (s & CF__ST_LOCK) {
                cf__cpu_relax();
                s = atomic_load_explicit(&f->state, memory_order_relaxed);
                continue;
            }
            uint32_t next = (s & ~(CF__ST_MASK | CF__ST_WAITERS)) | (uint32_t)final;
            if (atomic_compare_exchange_weak_explicit(&f->state, &s, next,
                                                      memory_order_acq_rel,
                                                      memory_order_relaxed))
                break;
        }
    }
    if (f->kind == CF__TASK_BYTES) {
        free(f->arg); /* nobody reads the input once the task is over */
        f->arg = NULL;
    }
    if (s & CF__ST_WAITERS)
        cf__futex_wake(&f->state, INT_MAX);
    if (s & CF__ST_CBS)
        run_callbacks(f);
    return true;
}

bool cf__future_fail_pending(cf_future *f, int outcome, int code, const char *message)
{
    /* Own the future first (PENDING -> RUNNING), so no canceller can race the writes. */
    if (!cf__future_start(f))
        return false;
    cf__future_set_error(f, outcome, code, message ? strdup(message) : NULL);
    return cf__future_complete(f, CF_RUNNING, CF_FINISHED);
}

bool cf__future_add_callback(cf_future *f, cf__callback *cb)
{
    uint32_t s = lock_list(f);
    if (cf__state_done(s)) {
        unlock_list(f, f->cb_head != NULL);
        return false;
    }
    cb->next = NULL;
    cf__callback **link = &f->cb_head; /* lists are short: a tail pointer is not worth a
                                           second cache line per future */
    while (*link)
        link = &(*link)->next;
    *link = cb;
    unlock_list(f, true);
    return true;
}

bool cf__future_remove_callback(cf_future *f, cf__callback *cb)
{
    lock_list(f);
    cf__callback *prev = NULL, *c = f->cb_head;
    while (c && c != cb) {
        prev = c;
        c = c->next;
    }
    if (c) {
        if (prev)
            prev->next = c->next;
        else
            f->cb_head = c->next;
    }
    unlock_list(f, f->cb_head != NULL);
    return c != NULL;
}

/* ---- waiting ------------------------------------------------------------------------ */

int cf__future_wait_until(cf_future *f, int64_t deadline)
{
    uint32_t s = atomic_load_explicit(&f->state, memory_order_acquire);
    if (cf__state_done(s))
        return 0;
    int rc = cf__threads_wait_in_worker(f, deadline);
    if (rc != 1)
        return rc;
    cf__spin spin = {0}; /* at most the thread's spin budget (park.c), never past the deadline */
    int64_t left = deadline - cf__now_ns();
    while (cf__spin_step(&spin, left)) {
        if (cf__state_done(atomic_load_explicit(&f->state, memory_order_acquire))) {
            cf__spin_end(true);
            return 0;
        }
    }
    cf__spin_end(false);
    for (;;) {
        s = atomic_load_explicit(&f->state, memory_order_acquire);
        if (cf__state_done(s))
            return 0;
        if (!(s & CF__ST_WAITERS)) {
            if (!atomic_compare_exchange_weak_explicit(&f->state, &s, s | CF__ST_WAITERS,
                                                       memory_order_relaxed,
                                                       memory_order_relaxed))
                continue;
            s |= CF__ST_WAITERS;
        }
        if (cf__futex_wait(&f->state, s, deadline) == CF_ETIMEDOUT)
            return cf__state_done(atomic_load_explicit(&f->state, memory_order_acquire))
                       ? 0
                       : CF_ETIMEDOUT;
    }
}

static int wait_timeout(cf_future *f, double timeout)
{
    if (CF__BAD_TIMEOUT(timeout))
        return CF_EINVAL;
    if (cf__state_done(atomic_load_explicit(&f->state, memory_order_acquire)))
        return 0;
    return cf__future_wait_until(f, cf__deadline(timeout));
}

/* ---- public API --------------------------------------------------------------------- */

cf_state cf_future_state(const cf_future *f)
{
    return (cf_state)(atomic_load_explicit(&((cf_future *)f)->state, memory_order_acquire) &
                      CF__ST_MASK);
}

int cf_future_done(const cf_future *f)
{
    return cf__state_done(atomic_load_explicit(&((cf_future *)f)->state, memory_order_acquire));
}

int cf_future_cancel(cf_future *f)
{
    if (!f)
        return CF_EINVAL;
    if (cf__future_complete(f, CF_PENDING, CF_CANCELLED))
        return 0;
    cf_state st = cf_future_state(f);
    if (st == CF_RUNNING && f->extra && f->extra->owner)
        return f->extra->owner->backend->cancel_running(f->extra->owner, f);
    return st == CF_CANCELLED ? 0 : CF_EBUSY;
}

long cf_future_pid(const cf_future *f)
{
    return f && f->extra ? __atomic_load_n(&f->extra->pid, __ATOMIC_RELAXED) : 0;
}

int cf_future_wait(cf_future *f, double timeout)
{
    return f ? wait_timeout(f, timeout) : CF_EINVAL;
}

int cf_future_result(cf_future *f, double timeout, void **value)
{
    if (!f)
        return CF_EINVAL;
    int rc = wait_timeout(f, timeout);
    if (rc)
        return rc;
    rc = cf__future_outcome(f);
    if (rc == 0 && value)
        *value = f->value;
    return rc;
}

int cf_future_bytes(cf_future *f, double timeout, const void **data, size_t *len)
{
    if (!f)
        return CF_EINVAL;
    int rc = wait_timeout(f, timeout);
    if (rc)
        return rc;
    rc = cf__future_outcome(f);
    if (rc == 0) {
        if (data)
            *data = f->value;
        if (len)
            *len = f->extra ? f->extra->value_len : 0;
    }
    return rc;
}

int cf_future_error(const cf_future *f, int *code, const char **message)
{
    if (!f)
        return CF_EINVAL;
    if (!cf_future_done(f))
        return CF_ETIMEDOUT;
    int rc = cf__future_outcome(f);
    bool failed = rc != 0 && rc != CF_ECANCELLED;
    if (code)
        *code = failed && f->extra ? f->extra->code : 0;
    if (message)
        *message = failed && f->extra ? f->extra->message : NULL;
    return rc;
}

typedef struct user_callback {
    cf__callback base;
    cf_done_fn fn;
    void *data;
} user_callback;

static void run_user_callback(cf__callback *self, cf_future *f)
{
    user_callback *ucb = (user_callback *)self;
    ucb->fn(f, ucb->data);
    free(ucb);
}

int cf_future_add_callback(cf_future *f, cf_done_fn fn, void *data)
{
    if (!f || !fn)
        return CF_EINVAL;
    if (!cf_future_done(f)) {
        user_callback *ucb = malloc(sizeof *ucb);
        if (!ucb)
            return CF_ENOMEM;
        ucb->base.fn = run_user_callback;
        ucb->fn = fn;
        ucb->data = data;
        if (cf__future_add_callback(f, &ucb->base))
            return 0;
        free(ucb);
    }
    fn(f, data);
    return 0;
}

/* ---- task context ------------------------------------------------------------------- */

int cf_fail(cf_ctx *ctx, int code, const char *fmt, ...)
{
    if (code == 0)
        code = -1;
    if (!ctx)
        return code;
    free(ctx->message);
    ctx->message = NULL;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&ctx->message, fmt, ap) < 0)
            ctx->message = NULL;
        va_end(ap);
    }
    return code;
}

void *cf_ctx_output(cf_ctx *ctx, size_t len)
{
    if (!ctx->out_is_shared)
        free(ctx->out);
    ctx->out = ctx->out_shared ? ctx->out_shared(len) : NULL;
    ctx->out_is_shared = ctx->out != NULL;
    if (!ctx->out)
        ctx->out = malloc(len ? len : 1);
    ctx->out_len = ctx->out ? len : 0;
    return ctx->out;
}

int cf_ctx_set_output(cf_ctx *ctx, const void *data, size_t len)
{
    void *buf = cf_ctx_output(ctx, len);
    if (!buf)
        return CF_ENOMEM;
    if (len)
        memcpy(buf, data, len);
    return 0;
}

cf_executor *cf_ctx_executor(const cf_ctx *ctx)
{
    return ctx->ex;
}

int cf_ctx_worker(const cf_ctx *ctx)
{
    return ctx->worker;
}

void cf__ctx_reset(cf_ctx *ctx)
{
    free(ctx->message);
    if (!ctx->out_is_shared)
        free(ctx->out);
    ctx->out_is_shared = false;
    ctx->message = NULL;
    ctx->out = NULL;
    ctx->out_len = 0;
}
