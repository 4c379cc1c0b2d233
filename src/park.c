/*
 * park.c -- monotonic time and futex-based sleeping.
 *
 * Every blocking wait in the library ends here: a thread publishes that it sleeps (a flag or
 * a counter its waker reads), re-checks its condition, then sleeps on a 32-bit word with
 * FUTEX_WAIT_PRIVATE, which returns at once if the word no longer holds the value the
 * thread saw.  That closes the window between the check and the sleep, so no wake-up is
 * lost, and no wait ever polls.  Deadlines are absolute CLOCK_MONOTONIC nanoseconds, so a
 * wait that is interrupted or woken spuriously keeps its original limit.
 *
 * Also the asymmetric fences (internal.h): membarrier(2) registered once per process.
 *
 * No locks; the only state is whether membarrier works, set once.  This file holds the
 * core's Linux-specific waiting (futex, membarrier); the process pool uses more of Linux
 * on its own (memfd, pidfd, epoll, prctl), so a port would start with both.
 */
#define _GNU_SOURCE
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int64_t cf__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t cf__deadline(double timeout)
{
    if (timeout < 0) /* NaN never gets here: public entry points refuse it */
        return CF__NO_DEADLINE;
    if (timeout > 1e9) /* ~31 years: as good as forever, and no overflow */
        return CF__NO_DEADLINE;
    return cf__now_ns() + (int64_t)(timeout * 1e9);
}

int cf__futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t deadline)
{
    struct timespec ts, *tsp = NULL;
    if (deadline != CF__NO_DEADLINE) {
        int64_t left = deadline - cf__now_ns();
        if (left <= 0)
            return CF_ETIMEDOUT;
        ts.tv_sec = left / 1000000000;
        ts.tv_nsec = left % 1000000000;
        tsp = &ts;
    }
    /* A relative timeout is fine: the caller recomputes it from the absolute deadline on
     * every return. */
    if (syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, tsp, NULL, 0) == -1 &&
        errno == ETIMEDOUT)
        return CF_ETIMEDOUT;
    return 0;
}

void cf__futex_wake(_Atomic uint32_t *word, int count)
{
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, count, NULL, NULL, 0);
}

/* The most a waiter spins: long enough to catch a task about to finish (a round trip through
 * an idle worker takes under a microsecond), short enough to cost little when it is long. */
#define SPIN_BUDGET_MAX 20000
#define SPIN_BUDGET_MIN 500

static CF__THREAD_LOCAL int64_t spin_budget = SPIN_BUDGET_MAX;

bool cf__spin_step(cf__spin *s, int64_t limit_ns)
{
    if (++s->steps < 64) { /* the first few hundred nanoseconds: no clock reads */
        cf__cpu_relax();
        return true;
    }
    int64_t now = cf__now_ns();
    if (!s->start)
        s->start = now;
    if (now - s->start >= (limit_ns < spin_budget ? limit_ns : spin_budget))
        return false;
    if (now - s->start < 2000)
        for (int k = 0; k < 16; k++)
            cf__cpu_relax();
    else
        sched_yield();
    return true;
}

void cf__spin_end(bool succeeded)
{
    if (succeeded)
        spin_budget = spin_budget * 2 > SPIN_BUDGET_MAX ? SPIN_BUDGET_MAX : spin_budget * 2;
    else
        spin_budget = spin_budget / 2 < SPIN_BUDGET_MIN ? SPIN_BUDGET_MIN : spin_budget / 2;
}

/* Written once, under fences_once, before any map that relies on it exists. */
bool cf__membarrier_ok;
static pthread_once_t fences_once = PTHREAD_ONCE_INIT;

static void register_membarrier(void)
{
    long cmds = syscall(SYS_membarrier, MEMBARRIER_CMD_QUERY, 0, 0);
    cf__membarrier_ok =
        cmds > 0 && (cmds & MEMBARRIER_CMD_PRIVATE_EXPEDITED) &&
        syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
}

void cf__fences_init(void)
{
    pthread_once(&fences_once, register_membarrier);
}

void cf__fence_heavy(void)
{
    cf__fence_full();
    /* Registration is per process and survives fork (not exec, which starts the library
     * afresh), so once it worked this cannot fail. */
    if (cf__membarrier_ok)
        syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
}
