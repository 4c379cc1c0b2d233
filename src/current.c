/*
 * current.c -- which worker the calling thread is, and waits that let a worker help.
 *
 * A backend whose workers are threads of this process sets cf__current around its worker
 * loop.  Every blocking wait of the core (cf_future_result/wait, cf_wait,
 * cf_as_completed_next, and the map's consumer through its own helping) goes through
 * cf__cond_wait: a plain thread sleeps on the condition's own futex word; a worker of a
 * backend with a help_wait operation hands the condition to it, and the backend runs other
 * queued tasks of its executor until the condition holds.  So no way of waiting inside a
 * task can deadlock a pool for lack of workers (SEMANTICS 19, 28).
 *
 * The handshake: the waiter publishes `sleeping` (sequentially consistent), then re-checks
 * its condition, then sleeps on *word; whoever may have made the condition true changes
 * its state first (sequentially consistent), then reads `sleeping` and bumps and wakes
 * *word.  One of the two sees the other, so no wake-up is lost.  A helping backend points
 * `word` at the futex word its worker parks on, so the same bump ends its park, before it
 * sets `sleeping`.
 *
 * Fork: a child made by fork() has only the forking thread, so the parent's executors
 * have no workers there (and a process pool no manager).  The child handler bumps
 * cf__fork_gen; executors and futures remember the generation they were made in, so every
 * call on a parent's executor fails at once with CF_EFORKED and a wait on a parent's
 * pending future returns CF_EFORKED instead of sleeping for ever (SEMANTICS 35).  The
 * parent is untouched: the handler runs in the child only.
 *
 * No locks.  The thread-local is initial-exec (internal.h): one load per submission.
 */
#include "internal.h"

#include <limits.h>

CF__THREAD_LOCAL cf__current_worker cf__current;
uint16_t cf__fork_gen;

static void in_fork_child(void)
{
    cf__futures_fork_after();
    cf__fork_gen++;
    /* A task that forked: its copy in the child is no worker of anything. */
    cf__current = (cf__current_worker){0};
}

static void install_fork_handler(void)
{
    pthread_atfork(cf__futures_fork_prepare, cf__futures_fork_after, in_fork_child);
}

void cf__fork_watch(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, install_fork_handler);
}

void cf__cond_init(cf__cond *c, bool (*met)(cf__cond *c))
{
    c->met = met;
    atomic_init(&c->own, 0);
    atomic_init(&c->word, &c->own);
    atomic_init(&c->sleeping, 0);
}

void cf__cond_signal(cf__cond *c)
{
    if (!atomic_load(&c->sleeping))
        return;
    _Atomic uint32_t *word = atomic_load(&c->word);
    atomic_fetch_add(word, 1);
    cf__futex_wake(word, INT_MAX);
}

int cf__cond_wait(cf__cond *c, int64_t deadline)
{
    cf_executor *ex = cf__current.ex;
    if (ex && ex->backend->help_wait)
        return ex->backend->help_wait(ex, cf__current.worker, c, deadline);
    atomic_store(&c->word, &c->own); /* a worker may have used c before */
    for (;;) {
        if (c->met(c))
            return 0;
        uint32_t seen = atomic_load(&c->own);
        atomic_store(&c->sleeping, 1);
        if (c->met(c))
            return 0;
        if (cf__futex_wait(&c->own, seen, deadline) == CF_ETIMEDOUT)
            return c->met(c) ? 0 : CF_ETIMEDOUT;
    }
}
