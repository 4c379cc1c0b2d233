/*
 * executor.c -- the public executor calls and what every backend shares.
 *
 * Backends are rows of a table chosen at build time (like SQLite's VFS): cf_executor_new
 * picks one by id, allocates its struct (which starts with struct cf_executor) and calls
 * its start.  Everything a caller can observe the same way on every backend lives here:
 * option checks, the admission gate, the bound on queued tasks, the broken state, and the
 * running of an in-process task with its outcome.
 *
 * The gate costs a submission two plain loads: `flags` before queueing (the common refusal)
 * and `flags` again after the queue's own sequentially consistent CAS.  Shutdown sets
 * SHUTDOWN with a sequentially consistent RMW before it drains.  If the second load misses
 * SHUTDOWN, the task was queued before shutdown began and draining will find it; if it
 * sees SHUTDOWN, the submitter takes the task back by cancelling it (PENDING -> CANCELLED:
 * nobody else holds it yet) and refuses; if a worker already started it, it was accepted.
 * A task taken back stays in the queue holding the executor's reference, which the worker
 * that pops it, or the backend's destroy, drops.  No lock and no extra atomic RMW.
 *
 * The bound: `queued` counts admitted tasks not yet taken by a worker.  A submitter that
 * finds no room sleeps on the `room` futex word after announcing itself in `room_waiters`;
 * whoever frees a slot bumps `room` and wakes one if anybody announced.  Shutdown wakes all.
 *
 * Lock order: broken_lock is a leaf.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const cf__backend *const backends[] = {
    &cf__threads_backend,
    &cf__processes_backend,
};

static _Atomic int live_executors;

void cf_executor_opts_init(cf_executor_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->workers = CF_WORKERS_AUTO;
    opts->full_mode = CF_FULL_BLOCK;
}

/* CPUs this process may use: the affinity mask, capped by a cgroup v2 CPU quota. */
static int default_workers(void)
{
    int n = 1;
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        n = CPU_COUNT(&set);
    FILE *fp = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (fp) {
        char quota[32];
        long long period;
        if (fscanf(fp, "%31s %lld", quota, &period) == 2 && strcmp(quota, "max") != 0 &&
            period > 0) {
            long long q = atoll(quota);
            int limit = (int)((q + period - 1) / period);
            if (limit >= 1 && limit < n)
                n = limit;
        }
        fclose(fp);
    }
    return n;
}

int cf_executor_new(cf_executor **out, cf_backend backend, const cf_executor_opts *opts)
{
    if (!out)
        return CF_EINVAL;
    *out = NULL;
    cf_executor_opts defaults;
    if (!opts) {
        cf_executor_opts_init(&defaults);
        opts = &defaults;
    }
    const cf__backend *b = NULL;
    for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
        if (backends[i]->id == backend)
            b = backends[i];
    const char *name = opts->name ? opts->name : "cf";
    if (!b || (opts->workers < 1 && opts->workers != CF_WORKERS_AUTO) || strlen(name) > 11 ||
        (opts->full_mode != CF_FULL_BLOCK && opts->full_mode != CF_FULL_FAIL) ||
        CF__BAD_TIMEOUT(opts->task_timeout) || opts->task_timeout < 0 ||
        opts->max_payload > CF_PAYLOAD_MAX || (opts->initializer && opts->named_initializer) ||
        (opts->named_initializer && !opts->named_initializer->fn))
        return CF_EINVAL;
    /* Options only a backend whose tasks run in other processes can honour. */
    if (b->pointer_tasks && (opts->initializer_arg_len || opts->task_timeout > 0 ||
                             opts->memory_limit || opts->max_tasks_per_worker ||
                             opts->kill_on_cancel || opts->max_payload))
        return CF_ENOTSUP;

    cf_executor *ex;
    if (posix_memalign((void **)&ex, CF__CACHELINE, b->struct_size))
        return CF_ENOMEM;
    memset(ex, 0, b->struct_size);
    cf__fork_watch();
    ex->backend = b;
    ex->fork_gen = cf__fork_gen;
    ex->workers = opts->workers == CF_WORKERS_AUTO ? default_workers() : opts->workers;
    strcpy(ex->name, name);
    ex->initializer = opts->named_initializer ? opts->named_initializer->fn : opts->initializer;
    ex->initializer_arg = opts->initializer_arg;
    ex->max_queued = opts->max_queued;
    ex->full_mode = opts->full_mode;
    pthread_mutex_init(&ex->broken_lock, NULL);
    cf__events_init(ex, opts);
    int rc = b->start(ex, opts);
    if (rc) {
        cf__events_destroy(ex);
        pthread_mutex_destroy(&ex->broken_lock);
        free(ex);
        return rc;
    }
    atomic_fetch_add(&live_executors, 1);
    *out = ex;
    return 0;
}

void cf_executor_free(cf_executor *ex)
{
    if (!ex)
        return;
    /* A parent's executor in a fork child: its threads and processes are the parent's, and
     * its locks may have been held by threads that do not exist here.  Touch nothing. */
    if (CF__UNLIKELY(ex->fork_gen != cf__fork_gen))
        return;
    cf_shutdown(ex, CF_SHUTDOWN_WAIT);
    ex->backend->destroy(ex);
    cf__events_destroy(ex);
    pthread_mutex_destroy(&ex->broken_lock);
    free(ex->broken_message);
    free(ex);
    /* With no executor left, no future can be submitted until a new one exists: give the
     * recycled futures back to the system. */
    if (atomic_fetch_sub(&live_executors, 1) == 1)
        cf__futures_trim();
}

int cf_executor_workers(const cf_executor *ex)
{
    return ex->workers;
}

const char *cf_executor_backend(const cf_executor *ex)
{
    return ex->backend->name;
}

int cf_executor_error(const cf_executor *ex, int *code, const char **message)
{
    if (!(atomic_load_explicit(&((cf_executor *)ex)->flags, memory_order_acquire) &
          CF__EX_BROKEN))
        return 0;
    if (code)
        *code = ex->broken_code;
    if (message)
        *message = ex->broken_message;
    return CF_EBROKEN;
}

void cf__executor_break(cf_executor *ex, int code, const char *message)
{
    pthread_mutex_lock(&ex->broken_lock);
    if (!(atomic_load_explicit(&ex->flags, memory_order_relaxed) & CF__EX_BROKEN)) {
        ex->broken_code = code;
        ex->broken_message = message ? strdup(message) : NULL;
        atomic_fetch_or_explicit(&ex->flags, CF__EX_BROKEN, memory_order_release);
    }
    pthread_mutex_unlock(&ex->broken_lock);
}

/* ---- the bound on queued tasks ------------------------------------------------------ */

static int reserve_room(cf_executor *ex)
{
    for (;;) {
        size_t q = atomic_load(&ex->queued);
        if (q < ex->max_queued) {
            if (atomic_compare_exchange_weak(&ex->queued, &q, q + 1))
                return 0;
            continue;
        }
        if (ex->full_mode == CF_FULL_FAIL)
            return CF_EFULL;
        if (atomic_load(&ex->flags) & CF__EX_SHUTDOWN)
            return CF_ESHUTDOWN;
        uint32_t seen = atomic_load(&ex->room);
        atomic_fetch_add(&ex->room_waiters, 1);
        if (atomic_load(&ex->queued) >= ex->max_queued &&
            !(atomic_load(&ex->flags) & CF__EX_SHUTDOWN))
            cf__futex_wait(&ex->room, seen, CF__NO_DEADLINE);
        atomic_fetch_sub(&ex->room_waiters, 1);
    }
}

static void wake_room_waiters(cf_executor *ex, int count)
{
    if (atomic_load(&ex->room_waiters)) {
        atomic_fetch_add(&ex->room, 1);
        cf__futex_wake(&ex->room, count);
    }
}

void cf__executor_unqueued(cf_executor *ex)
{
    atomic_fetch_sub(&ex->queued, 1);
    wake_room_waiters(ex, 1);
}

/* ---- submission --------------------------------------------------------------------- */

int cf__executor_admit(cf_executor *ex, cf_future *f, bool internal)
{
    int rc;
    if (CF__UNLIKELY(ex->fork_gen != cf__fork_gen)) {
        rc = CF_EFORKED;
        goto refused_early;
    }
    /* A worker of this executor waiting for room could wait for itself: its submissions
     * go past the bound (they are nested work the pool must finish anyway). */
    if (!internal && ex->max_queued && cf__current.ex != ex) {
        if ((rc = reserve_room(ex)))
            goto refused;
        f->bounded = true;
    }
    if (CF__UNLIKELY(ex->record_events) && (rc = cf__events_submitted(ex, f)))
        goto refused;
    uint32_t flags = atomic_load_explicit(&ex->flags, memory_order_acquire);
    rc = (flags & CF__EX_SHUTDOWN) ? CF_ESHUTDOWN
         : (flags & CF__EX_BROKEN) ? CF_EBROKEN
                                   : ex->backend->submit(ex, f);
    if (rc) {
        if (f->bounded)
            cf__executor_unqueued(ex);
        goto refused;
    }
    if (CF__UNLIKELY(atomic_load(&ex->flags) & CF__EX_SHUTDOWN) &&
        cf__future_complete(f, CF_PENDING, CF_CANCELLED))
        return CF_ESHUTDOWN; /* taken back: the queue keeps the executor's reference */
    return 0;
refused:
    cf__events_unsubmitted(f);
refused_early:
    atomic_store_explicit(&f->refs, 1, memory_order_relaxed); /* the executor's is gone */
    return rc;
}

/* Hands f to the executor and gives the caller its reference (or drops it). */
static int submit_prepared(cf_executor *ex, cf_future *f, cf_future **out)
{
    int rc = cf__executor_admit(ex, f, false);
    if (rc || !out)
        cf_future_release(f);
    else
        *out = f;
    return rc;
}

int cf_submit(cf_executor *ex, cf_fn fn, void *arg, cf_future **out)
{
    if (out)
        *out = NULL;
    if (!ex || !fn)
        return CF_EINVAL;
    if (!ex->backend->pointer_tasks)
        return CF_ENOTSUP;
    cf_future *f = cf__future_alloc(2);
    if (!f)
        return CF_ENOMEM;
    f->task.fn = fn;
    f->arg = arg;
    return submit_prepared(ex, f, out);
}

int cf_submit_bytes(cf_executor *ex, const cf_function *fn, const void *in, size_t len,
                    cf_future **out)
{
    if (out)
        *out = NULL;
    if (!ex || !fn || !fn->fn || (!in && len))
        return CF_EINVAL;
    if (CF__UNLIKELY(ex->fork_gen != cf__fork_gen))
        return CF_EFORKED; /* before check_bytes, which may take the parent's locks */
    if (ex->backend->check_bytes) {
        int rc = ex->backend->check_bytes(ex, fn, len);
        if (rc)
            return rc;
    }
    cf_future *f = cf__future_alloc(1);
    if (!f)
        return CF_ENOMEM;
    f->kind = CF__TASK_BYTES;
    f->task.bytes_fn = fn;
    cf__future_extra *x = cf__future_extra_get(f);
    f->arg = malloc(len ? len : 1);
    if (!x || !f->arg) {
        cf_future_release(f);
        return CF_ENOMEM;
    }
    x->in_len = len;
    if (ex->backend->cancel_running)
        x->owner = ex;
    atomic_store_explicit(&f->refs, 2, memory_order_relaxed);
    if (len)
        memcpy(f->arg, in, len);
    return submit_prepared(ex, f, out);
}

int cf_shutdown(cf_executor *ex, unsigned flags)
{
    if (!ex)
        return CF_EINVAL;
    if (CF__UNLIKELY(ex->fork_gen != cf__fork_gen))
        return CF_EFORKED;
    /* Refused before anything is done: an error return has no side effect. */
    if ((flags & CF_SHUTDOWN_WAIT) && ex->backend->own_thread && ex->backend->own_thread(ex))
        return CF_EINVAL;
    uint32_t set = CF__EX_SHUTDOWN;
    if (flags & CF_SHUTDOWN_KILL)
        flags |= CF_SHUTDOWN_CANCEL_PENDING;
    if (flags & CF_SHUTDOWN_CANCEL_PENDING)
        set |= CF__EX_CANCEL_PENDING;
    atomic_fetch_or(&ex->flags, set); /* seq_cst: see the gate in cf__executor_admit */
    if (ex->max_queued) {
        atomic_fetch_add(&ex->room, 1);
        cf__futex_wake(&ex->room, INT_MAX);
    }
    return ex->backend->shutdown(ex, flags);
}

/* ---- joining once ------------------------------------------------------------------- */

void cf__join_init(cf__join_once *j)
{
    pthread_cond_init(&j->joined_cond, NULL);
    j->joining = j->joined = false;
}

void cf__join_destroy(cf__join_once *j)
{
    pthread_cond_destroy(&j->joined_cond);
}

bool cf__join_claim(cf__join_once *j, pthread_mutex_t *lock)
{
    if (!j->joining) {
        j->joining = true;
        return true;
    }
    while (!j->joined)
        pthread_cond_wait(&j->joined_cond, lock);
    return false;
}

void cf__join_done_locked(cf__join_once *j)
{
    j->joined = true;
    pthread_cond_broadcast(&j->joined_cond);
}

void cf__join_done(cf__join_once *j, pthread_mutex_t *lock)
{
    pthread_mutex_lock(lock);
    cf__join_done_locked(j);
    pthread_mutex_unlock(lock);
}

/* ---- running an in-process task ----------------------------------------------------- */

void cf__cancel_queued(cf_executor *ex, cf_future *f)
{
    if (f->bounded)
        cf__executor_unqueued(ex);
    cf__future_complete(f, CF_PENDING, CF_CANCELLED);
    cf_future_release(f);
}

void cf__run_task(cf_executor *ex, cf_future *f, cf_ctx *ctx)
{
    uint32_t flags = atomic_load_explicit(&ex->flags, memory_order_acquire);
    if (CF__UNLIKELY(flags & CF__EX_CANCEL_PENDING)) {
        cf__cancel_queued(ex, f);
        return;
    }
    if (f->bounded)
        cf__executor_unqueued(ex);
    if (CF__UNLIKELY(flags & CF__EX_BROKEN)) {
        cf__future_fail_pending(f, CF_EBROKEN, ex->broken_code, ex->broken_message);
        cf_future_release(f);
        return;
    }
    if (!cf__future_start(f)) { /* cancelled while queued */
        cf_future_release(f);
        return;
    }
    if (CF__UNLIKELY(f->extra && f->extra->recorder))
        cf__events_started(f, ctx->worker, cf__now_ns());
    int rc;
    if (f->kind == CF__TASK_POINTER) {
        void *value = NULL;
        rc = f->task.fn(f->arg, &value, ctx);
        f->value = value;
    } else {
        rc = f->task.bytes_fn->fn(f->arg, f->extra->in_len, ctx);
        if (rc == 0 && ctx->out_len) { /* 0 bytes: NULL, as on every backend */
            f->value = ctx->out;
            f->extra->value_len = ctx->out_len;
            ctx->out = NULL;
            ctx->out_len = 0;
        }
    }
    if (rc) {
        cf__future_set_error(f, CF_ETASK, rc, ctx->message);
        ctx->message = NULL;
    }
    if (CF__UNLIKELY(ctx->message || ctx->out))
        cf__ctx_reset(ctx);
    cf__future_complete(f, CF_RUNNING, CF_FINISHED);
    cf_future_release(f);
}
