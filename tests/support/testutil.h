/*
 * testutil.h -- helpers shared by the future, executor, wait, map and stress tests.
 *
 * Everything here is static inline so each test program stays self-contained.  The helpers
 * create states deterministically instead of sleeping: a gate holds tasks until the test
 * opens it, a latch counts arrivals so the test knows when tasks are running.  Every wait in
 * these helpers has a time limit (TU_LONG unless told), so a library bug fails a test instead
 * of hanging it; tests that must block without a limit arm tu_watchdog() first.
 *
 * cmocka's assertions may only be used in the test's own thread (they longjmp), so threads
 * and tasks report problems through TU_CHECK, which records the first failure; the test then
 * asserts tu_check_failures() == 0 in its own thread.
 *
 * Executor-level tests get their executor from make_executor(), which picks the backend from
 * the environment variable CF_TEST_BACKEND ("threads", the default), so the same source can
 * later run against other backends.  Tests that need in-process tasks (cf_submit, shared
 * memory between the test and its tasks) call TU_REQUIRE_INPROCESS() and are skipped on
 * backends whose tasks run elsewhere.
 */
#ifndef CF_TESTUTIL_H
#define CF_TESTUTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cftest.h"
#include "cfutures.h"

/* The limit for waits that must succeed; a correct library needs a tiny fraction of it. */
#define TU_LONG 30.0
/* The code a gated task returns when its gate never opened (the test then fails). */
#define TU_EGATE 9999

/* ---- clock ------------------------------------------------------------------------- */

static inline double tu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void tu_sleep(double seconds)
{
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static inline double tu_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

/* Kills the test process (SIGALRM) if it is still running after `seconds`: the backstop for
 * calls that block without a limit by contract (CF_FOREVER, shutdown with wait, free). */
static inline void tu_watchdog(unsigned seconds)
{
    alarm(seconds);
}

/* ---- failures reported from other threads ------------------------------------------ */

static inline atomic_int *tu__check_count(void)
{
    static atomic_int count;
    return &count;
}

static inline char *tu__check_first(void)
{
    static char first[256];
    return first;
}

static inline void tu__check_failed(const char *what, const char *file, int line)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    if (atomic_fetch_add(tu__check_count(), 1) == 0)
        snprintf(tu__check_first(), 256, "%s:%d: %s", file, line, what);
    pthread_mutex_unlock(&lock);
}

/* Usable in any thread; never aborts the thread. */
#define TU_CHECK(cond)                                                                     \
    do {                                                                                   \
        if (!(cond))                                                                       \
            tu__check_failed(#cond, __FILE__, __LINE__);                                   \
    } while (0)

/* In the test's thread: fails the test if any TU_CHECK failed. */
#define tu_assert_no_check_failures()                                                      \
    do {                                                                                   \
        int tu__n = atomic_load(tu__check_count());                                        \
        if (tu__n != 0)                                                                    \
            fail_msg("%d check(s) failed in other threads; first: %s", tu__n,              \
                     tu__check_first());                                                   \
    } while (0)

/* ---- counting threads and descriptors ---------------------------------------------- */

static inline int tu__count_dir(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Threads of this process now. */
static inline int tu_count_threads(void)
{
    return tu__count_dir("/proc/self/task");
}

/* Open descriptors of this process now (the directory stream's own one excluded). */
static inline int tu_count_fds(void)
{
    return tu__count_dir("/proc/self/fd") - 1;
}

/* A joined thread can stay listed in /proc for a moment after pthread_join returns (the
 * kernel clears the tid before it reaps the task), so counts that must drop are re-read
 * until they do or `timeout` passes.  Returns the last count. */
static inline int tu_wait_thread_count(int expected, double timeout)
{
    double end = tu_now() + timeout;
    int n;
    while ((n = tu_count_threads()) != expected && tu_now() < end)
        tu_sleep(0.001);
    return n;
}

static inline void *tu__noop_thread(void *arg)
{
    return arg;
}

/* The thread count to compare against later: sanitizers may start helper threads of their
 * own at the first pthread_create, so one thread is created and joined (and given a moment
 * to leave /proc) before counting. */
static inline int tu_thread_baseline(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, tu__noop_thread, NULL) == 0)
        pthread_join(t, NULL);
    tu_sleep(0.01);
    return tu_count_threads();
}

/* Threads whose name (/proc/self/task/N/comm) starts with prefix. */
static inline int tu_count_threads_named(const char *prefix)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        char path[300], comm[64] = {0};
        FILE *fp;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        fp = fopen(path, "r");
        if (fp == NULL)
            continue;
        if (fgets(comm, sizeof comm, fp) != NULL && strncmp(comm, prefix, strlen(prefix)) == 0)
            n++;
        fclose(fp);
    }
    closedir(d);
    return n;
}

/* ---- CPUs this process may use ------------------------------------------------------ */

static inline int tu_affinity_cpus(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return -1;
    return CPU_COUNT(&set);
}

/* The CPU quota of a cgroup directory, rounded up, or 0 when it has none. */
static inline int tu__cgroup_quota_cpus(const char *dir, int v2)
{
    char path[1100];
    FILE *fp;
    long long quota = -1, period = 0;
    if (v2) {
        char q[32] = {0};
        snprintf(path, sizeof path, "%s/cpu.max", dir);
        fp = fopen(path, "r");
        if (fp == NULL)
            return 0;
        if (fscanf(fp, "%31s %lld", q, &period) != 2 || strcmp(q, "max") == 0)
            period = 0;
        else
            quota = atoll(q);
        fclose(fp);
    } else {
        snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir);
        fp = fopen(path, "r");
        if (fp == NULL)
            return 0;
        if (fscanf(fp, "%lld", &quota) != 1)
            quota = -1;
        fclose(fp);
        snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir);
        fp = fopen(path, "r");
        if (fp == NULL)
            return 0;
        if (fscanf(fp, "%lld", &period) != 1)
            period = 0;
        fclose(fp);
    }
    if (quota <= 0 || period <= 0)
        return 0;
    return (int)((quota + period - 1) / period);
}

/* The smallest quota on the path from this process's cgroup up to the mount root. */
static inline int tu__cgroup_path_quota(const char *root, const char *rel, int v2)
{
    char dir[1024];
    int best = 0;
    snprintf(dir, sizeof dir, "%s%s", root, rel);
    for (;;) {
        char *slash;
        int q = tu__cgroup_quota_cpus(dir, v2);
        if (q > 0 && (best == 0 || q < best))
            best = q;
        if (strlen(dir) <= strlen(root))
            break;
        slash = strrchr(dir, '/');
        if (slash == NULL || slash < dir + strlen(root))
            break;
        *slash = '\0';
    }
    return best;
}

/* The cgroup CPU quota (v2 or v1) in whole CPUs rounded up, or 0 when there is none. */
static inline int tu_cgroup_cpus(void)
{
    FILE *fp = fopen("/proc/self/cgroup", "r");
    char line[512];
    int best = 0;
    if (fp == NULL)
        return 0;
    while (fgets(line, sizeof line, fp) != NULL) {
        char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        int q = 0;
        if (c2 == NULL)
            continue;
        line[strcspn(line, "\n")] = '\0';
        *c2 = '\0';
        if (strcmp(c1 + 1, "") == 0)
            q = tu__cgroup_path_quota("/sys/fs/cgroup", c2 + 1, 1);
        else if (strstr(c1 + 1, "cpu") != NULL && strstr(c1 + 1, "cpuset") == NULL) {
            char root[320];
            snprintf(root, sizeof root, "/sys/fs/cgroup/%s", c1 + 1);
            q = tu__cgroup_path_quota(root, c2 + 1, 0);
            if (q == 0)
                q = tu__cgroup_path_quota("/sys/fs/cgroup/cpu", c2 + 1, 0);
        }
        if (q > 0 && (best == 0 || q < best))
            best = q;
    }
    fclose(fp);
    return best;
}

/* What CF_WORKERS_AUTO must give: the affinity mask's CPUs, capped by the cgroup quota. */
static inline int tu_expected_cpus(void)
{
    int n = tu_affinity_cpus(), q = tu_cgroup_cpus();
    if (q > 0 && q < n)
        n = q;
    return n < 1 ? 1 : n;
}

/* ---- gates and latches -------------------------------------------------------------- */

static inline void tu__cond_init(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
}

static inline struct timespec tu__deadline(double timeout)
{
    struct timespec ts;
    double end = tu_now() + timeout;
    ts.tv_sec = (time_t)end;
    ts.tv_nsec = (long)((end - (double)ts.tv_sec) * 1e9);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Closed until opened; then every waiter, present and future, passes. */
typedef struct tu_gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
} tu_gate;

static inline void tu_gate_init(tu_gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    tu__cond_init(&g->cv);
    g->open = 0;
}

static inline void tu_gate_destroy(tu_gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

static inline void tu_gate_open(tu_gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* 0 once open, -1 if still closed after timeout. */
static inline int tu_gate_wait(tu_gate *g, double timeout)
{
    struct timespec ts = tu__deadline(timeout);
    int rc = 0;
    pthread_mutex_lock(&g->mu);
    while (!g->open && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&g->cv, &g->mu, &ts);
    rc = g->open ? 0 : -1;
    pthread_mutex_unlock(&g->mu);
    return rc;
}

/* A counter that threads can wait on until it reaches a target. */
typedef struct tu_latch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int count;
} tu_latch;

static inline void tu_latch_init(tu_latch *l)
{
    pthread_mutex_init(&l->mu, NULL);
    tu__cond_init(&l->cv);
    l->count = 0;
}

static inline void tu_latch_destroy(tu_latch *l)
{
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
}

static inline void tu_latch_arrive(tu_latch *l)
{
    pthread_mutex_lock(&l->mu);
    l->count++;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

static inline int tu_latch_count(tu_latch *l)
{
    int n;
    pthread_mutex_lock(&l->mu);
    n = l->count;
    pthread_mutex_unlock(&l->mu);
    return n;
}

/* 0 once the count is at least target, -1 if not after timeout. */
static inline int tu_latch_wait(tu_latch *l, int target, double timeout)
{
    struct timespec ts = tu__deadline(timeout);
    int rc = 0;
    pthread_mutex_lock(&l->mu);
    while (l->count < target && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&l->cv, &l->mu, &ts);
    rc = l->count >= target ? 0 : -1;
    pthread_mutex_unlock(&l->mu);
    return rc;
}

/* Arrive, then wait until `n` have arrived: a barrier that proves n threads ran at once. */
static inline int tu_latch_meet(tu_latch *l, int n, double timeout)
{
    tu_latch_arrive(l);
    return tu_latch_wait(l, n, timeout);
}

/* ---- threads ------------------------------------------------------------------------ */

static inline pthread_t tu_thread_start(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    int rc = pthread_create(&t, NULL, fn, arg);
    if (rc != 0)
        fail_msg("pthread_create: %s", strerror(rc));
    return t;
}

static inline void tu_thread_join(pthread_t t)
{
    pthread_join(t, NULL);
}

/* Opens a gate from another thread after a delay: for releases that must happen while the
 * test's own thread is blocked in a library call. */
typedef struct tu_opener {
    tu_gate *gate;
    double delay;
    pthread_t thread;
} tu_opener;

static inline void *tu__open_later(void *arg)
{
    tu_opener *o = arg;
    tu_sleep(o->delay);
    tu_gate_open(o->gate);
    return NULL;
}

static inline void tu_open_later(tu_opener *o, tu_gate *gate, double delay)
{
    o->gate = gate;
    o->delay = delay;
    o->thread = tu_thread_start(tu__open_later, o);
}

static inline void tu_opener_join(tu_opener *o)
{
    pthread_join(o->thread, NULL);
}

/* ---- executors ---------------------------------------------------------------------- */

/* The backend named by CF_TEST_BACKEND ("threads" when unset or empty). */
static inline cf_backend tu_backend(void)
{
    const char *name = getenv("CF_TEST_BACKEND");
    if (name == NULL || name[0] == '\0' || strcmp(name, "threads") == 0)
        return CF_BACKEND_THREADS;
    fail_msg("CF_TEST_BACKEND=%s names no backend these tests know", name);
    return CF_BACKEND_THREADS;
}

/* Whether the backend runs cf_fn tasks in this process (so tasks can share memory). */
static inline int tu_backend_inprocess(void)
{
    return tu_backend() == CF_BACKEND_THREADS;
}

#define TU_REQUIRE_INPROCESS()                                                             \
    do {                                                                                   \
        if (!tu_backend_inprocess())                                                       \
            skip();                                                                        \
    } while (0)

/*
 * Creates an executor of the test backend with `workers` workers (CF_WORKERS_AUTO allowed)
 * and the other options from base (NULL: defaults); fails the test if it cannot.
 */
static inline cf_executor *make_executor(int workers, const cf_executor_opts *base)
{
    cf_executor_opts o;
    cf_executor *ex = NULL;
    int rc;
    if (base != NULL)
        o = *base;
    else
        cf_executor_opts_init(&o);
    o.workers = workers;
    rc = cf_executor_new(&ex, tu_backend(), &o);
    if (rc != 0 || ex == NULL)
        fail_msg("cf_executor_new(%d workers): %s", workers, cf_err_name(rc));
    return ex;
}

/* ---- small tasks -------------------------------------------------------------------- */

/* Returns its argument as its value. */
static inline int tu_task_identity(void *arg, void **result, cf_ctx *ctx)
{
    (void)ctx;
    *result = arg;
    return 0;
}

/* Increments the atomic_int at arg, returns the new count as its value. */
static inline int tu_task_count(void *arg, void **result, cf_ctx *ctx)
{
    (void)ctx;
    *result = (void *)(intptr_t)(atomic_fetch_add((atomic_int *)arg, 1) + 1);
    return 0;
}

/* Fails with the code at arg (an int) and a message naming it. */
static inline int tu_task_fail(void *arg, void **result, cf_ctx *ctx)
{
    int code = *(const int *)arg;
    (void)result;
    return cf_fail(ctx, code, "failed with %d", code);
}

/*
 * A task held at a gate: announces itself on `started`, waits for `gate`, counts itself in
 * `ran`, records its thread, then returns `value` or fails with `code` when non-zero.
 */
typedef struct tu_gated {
    tu_gate *gate;
    tu_latch *started; /* may be NULL */
    atomic_int ran;
    void *value;
    int code;
    pthread_t thread;
} tu_gated;

static inline void tu_gated_init(tu_gated *g, tu_gate *gate, tu_latch *started, void *value)
{
    g->gate = gate;
    g->started = started;
    atomic_init(&g->ran, 0);
    g->value = value;
    g->code = 0;
}

static inline int tu_task_gated(void *arg, void **result, cf_ctx *ctx)
{
    tu_gated *g = arg;
    g->thread = pthread_self();
    if (g->started != NULL)
        tu_latch_arrive(g->started);
    if (tu_gate_wait(g->gate, TU_LONG) != 0)
        return cf_fail(ctx, TU_EGATE, "gate never opened");
    atomic_fetch_add(&g->ran, 1);
    if (g->code != 0)
        return cf_fail(ctx, g->code, "gated task failed with %d", g->code);
    *result = g->value;
    return 0;
}

/* Submits fn(arg) and fails the test if the submission is refused. */
static inline cf_future *tu_submit(cf_executor *ex, cf_fn fn, void *arg)
{
    cf_future *f = NULL;
    int rc = cf_submit(ex, fn, arg, &f);
    if (rc != 0 || f == NULL)
        fail_msg("cf_submit: %s", cf_err_name(rc));
    return f;
}

/* ---- holding every worker busy ------------------------------------------------------ */

#define TU_HOLD_MAX 16

/* n gated tasks that occupy n workers until tu_hold_release, so later tasks stay queued. */
typedef struct tu_hold {
    tu_gate gate;
    tu_latch started;
    int n;
    tu_gated task[TU_HOLD_MAX];
    cf_future *f[TU_HOLD_MAX];
} tu_hold;

/* Occupies n workers of ex (in-process backends) and returns once all n tasks are running. */
static inline void tu_hold_workers(tu_hold *h, cf_executor *ex, int n)
{
    int i;
    if (n > TU_HOLD_MAX)
        fail_msg("tu_hold_workers: at most %d", TU_HOLD_MAX);
    tu_gate_init(&h->gate);
    tu_latch_init(&h->started);
    h->n = n;
    for (i = 0; i < n; i++) {
        tu_gated_init(&h->task[i], &h->gate, &h->started, (void *)(intptr_t)(i + 1));
        h->f[i] = tu_submit(ex, tu_task_gated, &h->task[i]);
    }
    if (tu_latch_wait(&h->started, n, TU_LONG) != 0)
        fail_msg("only %d of %d holding tasks started", tu_latch_count(&h->started), n);
}

/* Lets the holding tasks finish and checks that each returned its value. */
static inline void tu_hold_release(tu_hold *h)
{
    int i;
    tu_gate_open(&h->gate);
    for (i = 0; i < h->n; i++) {
        void *v = NULL;
        int rc = cf_future_result(h->f[i], TU_LONG, &v);
        if (rc != 0 || v != (void *)(intptr_t)(i + 1))
            fail_msg("holding task %d: %s", i, cf_err_name(rc));
        cf_future_release(h->f[i]);
    }
    tu_latch_destroy(&h->started);
    tu_gate_destroy(&h->gate);
}

/* ---- bytes tasks, usable on every backend ------------------------------------------- */

/* Output: the input with every byte xor 0x5a, written through cf_ctx_output. */
static inline int tu_bytes_xor(const void *in, size_t len, cf_ctx *ctx)
{
    const unsigned char *p = in;
    unsigned char *out = cf_ctx_output(ctx, len);
    size_t i;
    if (out == NULL && len > 0)
        return cf_fail(ctx, 12, "no memory for %zu bytes", len);
    for (i = 0; i < len; i++)
        out[i] = p[i] ^ 0x5a;
    return 0;
}

/* Output: the input reversed, copied with cf_ctx_set_output. */
static inline int tu_bytes_reverse(const void *in, size_t len, cf_ctx *ctx)
{
    const unsigned char *p = in;
    unsigned char *tmp = malloc(len ? len : 1);
    size_t i;
    int rc;
    if (tmp == NULL)
        return cf_fail(ctx, 12, "no memory");
    for (i = 0; i < len; i++)
        tmp[i] = p[len - 1 - i];
    rc = cf_ctx_set_output(ctx, tmp, len);
    free(tmp);
    return rc == 0 ? 0 : cf_fail(ctx, 12, "set_output: %d", rc);
}

/* Fails when the input starts with '!' (code = the second byte), else echoes the input. */
static inline int tu_bytes_maybe_fail(const void *in, size_t len, cf_ctx *ctx)
{
    const unsigned char *p = in;
    if (len >= 2 && p[0] == '!')
        return cf_fail(ctx, p[1], "refused input of %zu bytes", len);
    return cf_ctx_set_output(ctx, in, len) == 0 ? 0 : cf_fail(ctx, 12, "no memory");
}

/* A deterministic byte pattern, different for each seed. */
static inline void tu_fill_pattern(unsigned char *buf, size_t len, unsigned seed)
{
    uint32_t x = seed * 2654435761u + 1u;
    size_t i;
    for (i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (unsigned char)x;
    }
}

#endif
