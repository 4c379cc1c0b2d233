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
 * Memory: futures come from and go back to the recycling allocator of future_alloc.c.
 *
 * Lock order: a future's LOCK is a leaf (no other lock is taken while holding it; callbacks
 * run after it is released).
 */
#define _GNU_SOURCE
#include "internal.h"

#include <stddef.h>

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <string.h>

cf_future *cf__future_alloc(uint32_t refs)
{
    cf_future *f = cf__future_cache_get();
    if (CF__UNLIKELY(!f))
        return NULL;
    atomic_init(&f->state, CF_PENDING);
    atomic_init(&f->refs, refs);
    f->kind = CF__TASK_POINTER;
    f->bounded = false;
    f->fork_gen = cf__fork_gen;
    f->outcome = 0;
    f->arg = NULL;
    f->value = NULL;
    f->cb_head = NULL;
    f->u.data = NULL;
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
    cf__future_cache_put(f);
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

static bool start_with(cf_future *f, uint32_t flags)
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
        if (atomic_compare_exchange_weak_explicit(&f->state, &s,
                                                  (s & ~CF__ST_MASK) | CF_RUNNING | flags,
                                                  memory_order_acquire, memory_order_relaxed))
            return true;
    }
}

bool cf__future_start(cf_future *f)
{
    return start_with(f, 0);
}

bool cf__future_hand(cf_future *f)
{
    return start_with(f, CF__ST_HANDED);
}

/*
 * Runs the list in the completing thread; callbacks that users add meanwhile (CF__ST_CALLING
 * is set) are appended and run here too, after those already there, until a look under the
 * lock finds the list empty and clears the flag.  The completing party holds a reference,
 * so f outlives the callbacks even when one of them drops the caller's.
 */
static void run_callbacks(cf_future *f)
{
    for (;;) {
        lock_list(f);
        cf__callback *cb = f->cb_head;
        f->cb_head = NULL;
        if (!cb)
            atomic_fetch_and_explicit(&f->state, ~CF__ST_CALLING, memory_order_relaxed);
        unlock_list(f, false);
        if (!cb)
            return;
        while (cb) {
            cf__callback *next = cb->next; /* cb may be gone once its fn returns */
            cb->fn(cb, f);
            cb = next;
        }
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
        if (f->cb_head)
            next |= CF__ST_CALLING;
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
            if (s & CF__ST_CBS) /* set with the done state: no add can slip in before */
                next |= CF__ST_CALLING;
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

/* Appends cb unless the future is done; a user's callback (`ordered`) is also appended while
 * the completing thread still runs the list, so that it runs after the ones added before. */
static bool add_callback(cf_future *f, cf__callback *cb, bool ordered)
{
    uint32_t s = lock_list(f);
    if (cf__state_done(s) && !(ordered && (s & CF__ST_CALLING))) {
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

bool cf__future_add_callback(cf_future *f, cf__callback *cb)
{
    return add_callback(f, cb, false);
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

/* A worker's wait for one future: a condition its completion signals. */
typedef struct future_cond {
    cf__cond cond;
    cf__callback node;
    cf_future *f;
    _Atomic int fired;
} future_cond;

static bool future_cond_met(cf__cond *c)
{
    future_cond *fc = (future_cond *)c;
    return cf__state_done(atomic_load(&fc->f->state));
}

static void future_cond_fired(cf__callback *self, cf_future *f)
{
    (void)f;
    future_cond *fc = (future_cond *)((char *)self - offsetof(future_cond, node));
    cf__cond_signal(&fc->cond);
    atomic_store_explicit(&fc->fired, 1, memory_order_release);
}

/* In a worker that can help: run other tasks until f is done (see current.c). */
static int help_until_done(cf_future *f, int64_t deadline)
{
    future_cond fc = {.node.fn = future_cond_fired, .f = f};
    atomic_init(&fc.fired, 0);
    cf__cond_init(&fc.cond, future_cond_met);
    if (!cf__future_add_callback(f, &fc.node))
        return 0;
    int rc = cf__cond_wait(&fc.cond, deadline);
    if (!cf__future_remove_callback(f, &fc.node))
        while (!atomic_load_explicit(&fc.fired, memory_order_acquire))
            cf__cpu_relax();
    return rc;
}

int cf__future_wait_until(cf_future *f, int64_t deadline)
{
    uint32_t s = atomic_load_explicit(&f->state, memory_order_acquire);
    if (cf__state_done(s))
        return 0;
    if (CF__UNLIKELY(f->fork_gen != cf__fork_gen))
        return CF_EFORKED; /* its task runs in the parent, if anywhere: never here */
    if (CF__UNLIKELY(cf__current.ex && cf__current.ex->backend->help_wait))
        return help_until_done(f, deadline);
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
    cf_future *m = (cf_future *)f;
    uint32_t s = atomic_load_explicit(&m->state, memory_order_acquire);
    /* Handed ahead: pending until its worker starts it.  In a fork child the worker is
     * the parent's, and the parent's pool must not be touched: as it was last seen. */
    if (CF__UNLIKELY((s & (CF__ST_MASK | CF__ST_HANDED)) == (CF_RUNNING | CF__ST_HANDED)) &&
        m->fork_gen == cf__fork_gen &&
        !m->extra->owner->backend->task_started(m->extra->owner, m))
        return CF_PENDING;
    return (cf_state)(s & CF__ST_MASK);
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
    /* RUNNING to the core (handed ahead or started): only its backend can tell. */
    cf_state st = atomic_load_explicit(&f->state, memory_order_acquire) & CF__ST_MASK;
    if (st == CF_RUNNING && f->extra && f->extra->owner)
        return f->fork_gen != cf__fork_gen ? CF_EFORKED /* its worker is the parent's */
                                           : f->extra->owner->backend->cancel_running(
                                                 f->extra->owner, f);
    return st == CF_CANCELLED ? 0 : CF_EBUSY;
}

void cf_future_set_data(cf_future *f, void *data)
{
    f->u.data = data;
}

void *cf_future_data(const cf_future *f)
{
    return f->u.data;
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
    uint32_t s = atomic_load_explicit(&f->state, memory_order_acquire);
    if (!cf__state_done(s) || (s & CF__ST_CALLING)) {
        user_callback *ucb = malloc(sizeof *ucb);
        if (!ucb)
            return CF_ENOMEM;
        ucb->base.fn = run_user_callback;
        ucb->fn = fn;
        ucb->data = data;
        if (add_callback(f, &ucb->base, true))
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
