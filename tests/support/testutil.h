/*
 * testutil.h -- helpers shared by the future, executor, wait, map and stress tests.
 *
 * Everything here is static inline so each test program stays self-contained.  The helpers
 * create states deterministically instead of sleeping: a gate holds tasks until the test
 * opens it, a latch counts arrivals so the test knows when tasks are running.  Every wait in
 * these helpers has a time limit (TU_LONG unless told), so a library bug fails a test instead
 * of hanging it; tests that must block without a limit arm tu_watchdog() first.
 *
 * One test source runs against every backend.  make_executor() picks the backend from the
 * environment variable CF_TEST_BACKEND ("threads", the default, or "processes"); ctest runs
 * each backend-neutral test once per backend (see cf_add_test_suite in tests/CMakeLists.txt).
 * Such tests use bytes tasks only, and the gates and latches they share with their tasks
 * live in memory that worker processes map too (see "words shared with worker processes"),
 * so a gate opened by the test releases a task in a worker process exactly as it releases
 * one in a worker thread.  Tests that are about the thread pool itself (pointer tasks,
 * nested submission, callbacks in the task's thread, ...) are listed as cf_inprocess_test
 * (cftest.h) and create their executor with make_thread_executor(), so they test the thread
 * pool whatever CF_TEST_BACKEND says.
 *
 * cmocka's assertions may only be used in the test's own thread (they longjmp), so threads
 * and tasks report problems through TU_CHECK, which records the first failure; the test then
 * calls tu_assert_no_check_failures() in its own thread.  Tasks in worker processes report
 * through their outcome (a failing task's code and message reach the test's future).
 */
#ifndef CF_TESTUTIL_H
#define CF_TESTUTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
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

/* ---- words shared with worker processes --------------------------------------------- */

/*
 * Gates, latches and counters are 32-bit words in one shared region: a memfd of the test
 * process, which worker processes (they inherit no descriptor) open by path as
 * /proc/<test pid>/fd/<n>.  A memfd has no name in the file system, so nothing is left
 * behind however the test ends.  Waits are futex waits on the shared words (not the private
 * kind: waiter and waker may be different processes), each bounded by its timeout.  Words
 * are allocated in the test process only; word 0 is never handed out, so 0 means "none" in
 * a task's input.  In the test process tasks find the region already mapped, so threads and
 * worker processes go through the same code.
 */
#define TU_XWORDS 16384u
#define TU_XREGION_SIZE ((size_t)TU_XWORDS * sizeof(uint32_t))

typedef struct tu__region {
    pthread_mutex_t mu;
    int own_fd;                    /* the test process's memfd; -1 elsewhere or before use */
    char name[40];                 /* the path other processes open */
    _Atomic uint32_t *words;       /* this process's own region, or the one last named */
    uint32_t cursor;               /* owner: where the search for a free word resumes */
    unsigned char used[TU_XWORDS]; /* owner: words handed out */
} tu__region;

static inline tu__region *tu__region_state(void)
{
    static tu__region r = {PTHREAD_MUTEX_INITIALIZER, -1, "", NULL, 1, {0}};
    return &r;
}

/* Creates the test process's region if it has none; 0 or an errno value.  Lock held. */
static inline int tu__region_create_locked(tu__region *r)
{
    int fd;
    void *map;
    if (r->own_fd >= 0)
        return 0;
    if (r->words != NULL)
        return EINVAL; /* a worker process maps its test's region; it owns none */
    fd = memfd_create("cftest-words", MFD_CLOEXEC);
    if (fd < 0)
        return errno;
    if (ftruncate(fd, (off_t)TU_XREGION_SIZE) != 0) {
        int e = errno;
        close(fd);
        return e;
    }
    map = mmap(NULL, TU_XREGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED) {
        int e = errno;
        close(fd);
        return e;
    }
    r->own_fd = fd;
    r->words = map;
    snprintf(r->name, sizeof r->name, "/proc/%ld/fd/%d", (long)getpid(), fd);
    return 0;
}

/* The words of the region at `name`: this process's own, or another process's, mapped on
 * first use.  NULL if it cannot be mapped. */
static inline _Atomic uint32_t *tu__words_named(const char *name)
{
    tu__region *r = tu__region_state();
    _Atomic uint32_t *words = NULL;
    pthread_mutex_lock(&r->mu);
    if (r->words != NULL && strcmp(r->name, name) == 0) {
        words = r->words;
    } else if (r->own_fd < 0 && strlen(name) < sizeof r->name) {
        int fd = open(name, O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
            void *map = mmap(NULL, TU_XREGION_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            close(fd);
            if (map != MAP_FAILED) {
                if (r->words != NULL)
                    munmap((void *)r->words, TU_XREGION_SIZE);
                r->words = map;
                strcpy(r->name, name);
                words = map;
            }
        }
    }
    pthread_mutex_unlock(&r->mu);
    return words;
}

/* Hands out a free word, set to 0 (test process only). */
static inline uint32_t tu__word_alloc(void)
{
    tu__region *r = tu__region_state();
    uint32_t w = 0, i;
    int err;
    pthread_mutex_lock(&r->mu);
    err = tu__region_create_locked(r);
    for (i = 0; err == 0 && w == 0 && i < TU_XWORDS - 1; i++) {
        uint32_t k = 1 + (r->cursor - 1 + i) % (TU_XWORDS - 1);
        if (!r->used[k]) {
            r->used[k] = 1;
            r->cursor = k + 1 < TU_XWORDS ? k + 1 : 1;
            atomic_store(&r->words[k], 0);
            w = k;
        }
    }
    pthread_mutex_unlock(&r->mu);
    if (err != 0)
        fail_msg("shared words: %s", strerror(err));
    if (w == 0)
        fail_msg("all %u shared words are in use", TU_XWORDS - 1);
    return w;
}

static inline void tu__word_free(uint32_t w)
{
    tu__region *r = tu__region_state();
    pthread_mutex_lock(&r->mu);
    if (w > 0 && w < TU_XWORDS)
        r->used[w] = 0;
    pthread_mutex_unlock(&r->mu);
}

/* A word of the test process's own region. */
static inline _Atomic uint32_t *tu__word(uint32_t w)
{
    tu__region *r = tu__region_state();
    _Atomic uint32_t *words;
    pthread_mutex_lock(&r->mu);
    words = r->words;
    pthread_mutex_unlock(&r->mu);
    if (words == NULL || w == 0 || w >= TU_XWORDS)
        fail_msg("shared word %u was never allocated", w);
    return &words[w];
}

/* Adds one and wakes every waiter. */
static inline void tu__word_arrive(_Atomic uint32_t *p)
{
    atomic_fetch_add(p, 1);
    syscall(SYS_futex, (void *)p, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* 0 once the word is at least target, -1 if not after timeout (0: just look). */
static inline int tu__word_wait(_Atomic uint32_t *p, uint32_t target, double timeout)
{
    double end = tu_now() + timeout;
    for (;;) {
        uint32_t v = atomic_load(p);
        double left;
        struct timespec ts;
        if (v >= target)
            return 0;
        left = end - tu_now();
        if (left <= 0)
            return -1;
        ts.tv_sec = (time_t)left;
        ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
        syscall(SYS_futex, (void *)p, FUTEX_WAIT, v, &ts, NULL, 0);
    }
}

/*
 * For tasks of any process: a task's input carries a tu_xhead (filled in the test process)
 * and word numbers taken from gates and latches (.w); tu_xword gives the word, NULL
 * if the region cannot be mapped or the number is out of range (the task should then fail).
 */
typedef struct tu_xhead {
    char region[40];
} tu_xhead;

static inline void tu_xhead_init(tu_xhead *h)
{
    tu__region *r = tu__region_state();
    int err;
    memset(h, 0, sizeof *h);
    pthread_mutex_lock(&r->mu);
    err = tu__region_create_locked(r);
    if (err == 0)
        strcpy(h->region, r->name);
    pthread_mutex_unlock(&r->mu);
    if (err != 0)
        fail_msg("shared words: %s", strerror(err));
}

static inline _Atomic uint32_t *tu_xword(const tu_xhead *h, uint32_t w)
{
    _Atomic uint32_t *words;
    char name[sizeof h->region];
    if (w == 0 || w >= TU_XWORDS)
        return NULL;
    memcpy(name, h->region, sizeof name);
    name[sizeof name - 1] = '\0';
    words = tu__words_named(name);
    return words == NULL ? NULL : &words[w];
}

/* Adds one to word w and wakes its waiters: -1 if the word cannot be reached. */
static inline int tu_xarrive(const tu_xhead *h, uint32_t w)
{
    _Atomic uint32_t *p = tu_xword(h, w);
    if (p == NULL)
        return -1;
    tu__word_arrive(p);
    return 0;
}

/* Waits until word w is at least target: 0, or -1 after timeout or if it cannot be
 * reached. */
static inline int tu_xwait(const tu_xhead *h, uint32_t w, uint32_t target, double timeout)
{
    _Atomic uint32_t *p = tu_xword(h, w);
    return p == NULL ? -1 : tu__word_wait(p, target, timeout);
}

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

/* Open descriptors of this process now: the directory stream's own one and the shared
 * words' memfd (created at the first gate or latch, whenever that is) excluded. */
static inline int tu_count_fds(void)
{
    tu__region *r = tu__region_state();
    int own;
    pthread_mutex_lock(&r->mu);
    own = r->own_fd >= 0;
    pthread_mutex_unlock(&r->mu);
    return tu__count_dir("/proc/self/fd") - 1 - own;
}

/* Child processes of this process now (a process pool's workers), zombies included: each
 * thread lists the children it started.  -1 if the kernel does not list them. */
/* The state letter of process pid if it is a child of this process ('Z': a zombie), or 0
 * when it is not (gone, reaped, or someone else's). */
/* The state letter ('R', 'S', 'Z', ...) and parent pid in a /proc/.../stat file, or 0 when
 * it cannot be read (the process or thread is gone). */
static inline char tu__proc_stat(const char *path, long *ppid)
{
    char buf[512];
    FILE *fp = fopen(path, "r");
    if (!fp)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    char *close_paren = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
    char state = 0;
    if (!close_paren || sscanf(close_paren + 1, " %c %ld", &state, ppid) != 2)
        return 0;
    return state;
}

static inline char tu_child_state(pid_t pid)
{
    char path[64];
    long ppid = 0;
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    char state = tu__proc_stat(path, &ppid);
    return ppid == (long)getpid() ? state : 0;
}

static inline int tu_count_children(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0, listed = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        char path[300];
        FILE *fp;
        long pid;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
        fp = fopen(path, "r");
        if (fp == NULL)
            continue; /* the thread has just exited */
        listed = 1;
        while (fscanf(fp, "%ld", &pid) == 1)
            n++;
        fclose(fp);
    }
    closedir(d);
    return listed ? n : -1;
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

/* 1 if every other thread of this process is asleep ('S', 'D', 'T' or 't') right now. */
static inline int tu__others_asleep(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    long self = (long)syscall(SYS_gettid);
    int asleep = 1;
    if (d == NULL)
        return 0;
    while (asleep && (e = readdir(d)) != NULL) {
        char path[300], state;
        long ppid;
        if (e->d_name[0] == '.' || strtol(e->d_name, NULL, 10) == self)
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/stat", e->d_name);
        state = tu__proc_stat(path, &ppid);
        asleep = state == 0 || state == 'S' || state == 'D' || state == 'T' || state == 't';
    }
    closedir(d);
    return asleep;
}

/*
 * Waits until every other thread of this process is asleep at two looks 1 ms apart (a
 * thread pool's workers have parked: a spinning worker is runnable, and spins for far less
 * than 1 ms), or `seconds` pass.  1 if they are, 0 at the deadline.  Unlike a fixed sleep,
 * it holds however slowly the host runs the workers (a sanitizer, a busy VM).
 */
static inline int tu_wait_others_asleep(double seconds)
{
    double end = tu_now() + seconds;
    int looks = 0;
    while (looks < 2) {
        if (tu_now() > end)
            return 0;
        looks = tu__others_asleep() ? looks + 1 : 0;
        tu_sleep(0.001);
    }
    return 1;
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

/* Closed until opened; then every waiter, present and future, passes.  A shared word, so a
 * task in a worker process can wait at it (its number goes in the task's input). */
typedef struct tu_gate {
    uint32_t w;
} tu_gate;

static inline void tu_gate_init(tu_gate *g)
{
    g->w = tu__word_alloc();
}

static inline void tu_gate_destroy(tu_gate *g)
{
    tu__word_free(g->w);
    g->w = 0;
}

static inline void tu_gate_open(tu_gate *g)
{
    _Atomic uint32_t *p = tu__word(g->w);
    atomic_store(p, 1);
    syscall(SYS_futex, (void *)p, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* 0 once open, -1 if still closed after timeout. */
static inline int tu_gate_wait(tu_gate *g, double timeout)
{
    return tu__word_wait(tu__word(g->w), 1, timeout);
}

/* A counter that threads and processes can wait on until it reaches a target.  Also the
 * counter of choice for "how many times did this run" (tu_latch_count). */
typedef struct tu_latch {
    uint32_t w;
} tu_latch;

static inline void tu_latch_init(tu_latch *l)
{
    l->w = tu__word_alloc();
}

static inline void tu_latch_destroy(tu_latch *l)
{
    tu__word_free(l->w);
    l->w = 0;
}

static inline void tu_latch_arrive(tu_latch *l)
{
    tu__word_arrive(tu__word(l->w));
}

static inline int tu_latch_count(tu_latch *l)
{
    return (int)atomic_load(tu__word(l->w));
}

/* 0 once the count is at least target, -1 if not after timeout. */
static inline int tu_latch_wait(tu_latch *l, int target, double timeout)
{
    return tu__word_wait(tu__word(l->w), target < 0 ? 0u : (uint32_t)target, timeout);
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
    if (strcmp(name, "processes") == 0)
        return CF_BACKEND_PROCESSES;
    fail_msg("CF_TEST_BACKEND=%s names no backend these tests know", name);
    return CF_BACKEND_THREADS;
}

/* Whether the test backend runs tasks in this process (its workers are threads). */
static inline int tu_backend_inprocess(void)
{
    return tu_backend() == CF_BACKEND_THREADS;
}

/* For programs that only make sense with in-process tasks: a hard failure on any other
 * backend, never a skip (a skipped test must not count as passed). */
#define TU_REQUIRE_INPROCESS()                                                             \
    do {                                                                                   \
        if (!tu_backend_inprocess())                                                       \
            fail_msg("this test needs in-process tasks; CF_TEST_BACKEND=%s",               \
                     getenv("CF_TEST_BACKEND"));                                           \
    } while (0)

static inline cf_executor *tu__new_executor(cf_backend backend, int workers,
                                            const cf_executor_opts *base)
{
    cf_executor_opts o;
    cf_executor *ex = NULL;
    int rc;
    if (base != NULL)
        o = *base;
    else
        cf_executor_opts_init(&o);
    o.workers = workers;
    rc = cf_executor_new(&ex, backend, &o);
    if (rc != 0 || ex == NULL)
        fail_msg("cf_executor_new(%d workers): %s", workers, cf_err_name(rc));
    return ex;
}

/*
 * Creates an executor of the test backend with `workers` workers (CF_WORKERS_AUTO allowed)
 * and the other options from base (NULL: defaults); fails the test if it cannot.
 */
static inline cf_executor *make_executor(int workers, const cf_executor_opts *base)
{
    return tu__new_executor(tu_backend(), workers, base);
}

/* A thread pool, whatever the test backend: for the tests about the thread pool itself. */
static inline cf_executor *make_thread_executor(int workers, const cf_executor_opts *base)
{
    return tu__new_executor(CF_BACKEND_THREADS, workers, base);
}

/*
 * Sets an initializer whose argument is the `len` bytes at arg on every backend: a thread
 * pool passes the pointer itself (it refuses initializer_arg_len), a process pool passes a
 * copy of the bytes to each worker.  arg must stay valid until the executor is freed.
 */
/* The initializer `named` on every backend: in the named form on process pools (the only
 * one they take), as a plain function on thread pools (their usual form). */
static inline void tu_set_initializer(cf_executor_opts *o, const cf_initializer *named,
                                      void *arg, size_t len)
{
    if (tu_backend_inprocess())
        o->initializer = named->fn;
    else
        o->named_initializer = named;
    o->initializer_arg = arg;
    o->initializer_arg_len = tu_backend_inprocess() ? 0 : len;
}

/* What tu_count_workers counts from: threads (see tu_thread_baseline) and children. */
typedef struct tu_baseline {
    int threads, children;
} tu_baseline;

static inline tu_baseline tu_worker_baseline(void)
{
    tu_baseline b;
    b.threads = tu_thread_baseline();
    b.children = tu_count_children();
    return b;
}

/* Workers of the test backend started since the baseline and alive now: threads for the
 * thread pool; child processes for a process pool, whose one thread of its own (the
 * manager) is not a worker. */
static inline int tu_count_workers(const tu_baseline *b)
{
    return tu_backend_inprocess() ? tu_count_threads() - b->threads
                                  : tu_count_children() - b->children;
}

/* ---- pointer tasks (thread pool only) ---------------------------------------------- */

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

/* ---- bytes tasks, usable on every backend ------------------------------------------- */

/* Output: the input, unchanged. */
static inline int tu_bytes_echo(const void *in, size_t len, cf_ctx *ctx)
{
    return cf_ctx_set_output(ctx, in, len) == 0 ? 0 : cf_fail(ctx, 12, "no memory");
}

CF_FUNCTION(tu_echo_fn, tu_bytes_echo);

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


/* The code an x-task fails with when its input is malformed or its words unreachable. */
#define TU_EXMSG 9998

/*
 * The x-task ("cross-process task"), the bytes counterpart of tu_task_gated: announces
 * itself on `started`, waits for `gate`, counts itself on `finished`, then fails with
 * `code` (message "task <value> failed with <code>") when it is non-zero, else returns the
 * 8 bytes of `value`.  Every field may be left 0/NULL.  Submit it with tu_xsubmit, or put
 * its input (tu_xtask_input) in a bytes map.
 */
typedef struct tu_xtask {
    tu_gate *gate;
    tu_latch *started;
    tu_latch *finished;
    int code;
    int64_t value;
} tu_xtask;

/* An x-task's input as it travels. */
typedef struct tu_xmsg {
    tu_xhead head;
    uint32_t gate, started, finished;
    int32_t code;
    int64_t value;
} tu_xmsg;

static inline int tu__xtask_run(const void *in, size_t len, cf_ctx *ctx)
{
    tu_xmsg m;
    if (len != sizeof m)
        return cf_fail(ctx, TU_EXMSG, "x-task input of %zu bytes", len);
    memcpy(&m, in, sizeof m);
    if (m.started != 0 && tu_xarrive(&m.head, m.started) != 0)
        return cf_fail(ctx, TU_EXMSG, "cannot reach %s", m.head.region);
    if (m.gate != 0 && tu_xwait(&m.head, m.gate, 1, TU_LONG) != 0)
        return cf_fail(ctx, TU_EGATE, "gate never opened");
    if (m.finished != 0 && tu_xarrive(&m.head, m.finished) != 0)
        return cf_fail(ctx, TU_EXMSG, "cannot reach %s", m.head.region);
    if (m.code != 0)
        return cf_fail(ctx, m.code, "task %" PRId64 " failed with %d", m.value, (int)m.code);
    return cf_ctx_set_output(ctx, &m.value, sizeof m.value) == 0 ? 0 : cf_fail(ctx, 12, "no memory");
}

CF_FUNCTION(tu_xtask_fn, tu__xtask_run);

/* Writes t's input into *m and returns it as a bytes input (valid while *m is). */
static inline cf_bytes tu_xtask_input(const tu_xtask *t, tu_xmsg *m)
{
    cf_bytes b;
    memset(m, 0, sizeof *m);
    tu_xhead_init(&m->head);
    m->gate = t->gate ? t->gate->w : 0;
    m->started = t->started ? t->started->w : 0;
    m->finished = t->finished ? t->finished->w : 0;
    m->code = t->code;
    m->value = t->value;
    b.data = m;
    b.len = sizeof *m;
    return b;
}

/* Submits t and returns what cf_submit_bytes returned (for tests of refusals). */
static inline int tu_xtask_submit(cf_executor *ex, const tu_xtask *t, cf_future **out)
{
    tu_xmsg m;
    cf_bytes in = tu_xtask_input(t, &m);
    return cf_submit_bytes(ex, &tu_xtask_fn, in.data, in.len, out);
}

/* Submits t and fails the test if the submission is refused. */
static inline cf_future *tu_xsubmit(cf_executor *ex, const tu_xtask *t)
{
    cf_future *f = NULL;
    int rc = tu_xtask_submit(ex, t, &f);
    if (rc != 0 || f == NULL)
        fail_msg("cf_submit_bytes: %s", cf_err_name(rc));
    return f;
}

/* An x-task's value from its result bytes; INT64_MIN when they are not 8 bytes. */
static inline int64_t tu_xvalue(const void *data, size_t len)
{
    int64_t v;
    if (data == NULL || len != sizeof v)
        return INT64_MIN;
    memcpy(&v, data, sizeof v);
    return v;
}

/* Waits up to timeout for an x-task's future and returns its value; fails the test on any
 * other outcome. */
static inline int64_t tu_xresult(cf_future *f, double timeout)
{
    const void *data = NULL;
    size_t len = 0;
    int rc = cf_future_bytes(f, timeout, &data, &len);
    if (rc != 0) {
        int code = 0;
        const char *msg = NULL;
        cf_future_error(f, &code, &msg);
        fail_msg("x-task: %s (code %d: %s)", cf_err_name(rc), code, msg ? msg : "no message");
    }
    return tu_xvalue(data, len);
}

/* ---- holding every worker busy ------------------------------------------------------ */

#define TU_HOLD_MAX 1024

/*
 * Gated x-tasks that occupy every worker of an executor until tu_hold_release, with one of
 * them left queued, so every task submitted after tu_hold_workers returns is queued behind
 * it (CF_PENDING) and stays so until the release.
 *
 * Why not just one task per worker: a process pool hands a worker more than one task at a
 * time (the next is there when one ends), and before all its workers have started it may
 * give one worker two of them.  So tasks are submitted one at a time until every worker is
 * running one and the last one submitted stays queued: a task still queued right after its
 * submission, with every worker busy, means no worker will take more until one finishes.
 * (On the thread pool that happens with the first task beyond one per worker.)  Counting
 * the queued one matters for a bounded queue: it holds one of its places.
 *
 * Take the hold on an executor with nothing else in flight.  f[0] is running (a worker is
 * executing it); f[n - 1] is the queued one.  Values: f[i] returns i + 1.
 */
typedef struct tu_hold {
    tu_gate gate;
    tu_latch started;
    int n;
    cf_future *f[TU_HOLD_MAX];
} tu_hold;

static inline void tu_hold_workers(tu_hold *h, cf_executor *ex)
{
    int workers = cf_executor_workers(ex);
    double end = tu_now() + TU_LONG;
    tu_gate_init(&h->gate);
    tu_latch_init(&h->started);
    h->n = 0;
    for (;;) {
        int started = tu_latch_count(&h->started);
        int queued = h->n > 0 && cf_future_state(h->f[h->n - 1]) == CF_PENDING;
        if (started >= workers && queued)
            return;
        if (!queued) { /* only the last one submitted can be queued */
            tu_xtask t = {.gate = &h->gate, .started = &h->started, .value = h->n + 1};
            if (h->n == TU_HOLD_MAX)
                fail_msg("holding %d workers: %d tasks submitted, %d running, none queued",
                         workers, h->n, started);
            h->f[h->n++] = tu_xsubmit(ex, &t);
            continue;
        }
        if (tu_now() > end)
            fail_msg("holding %d workers: only %d running after %.0f s", workers, started,
                     TU_LONG);
        /* The queued task waits for a worker still starting: go on when one arrives (or
         * look again shortly: it may have been handed to a worker that is busy). */
        tu_latch_wait(&h->started, started + 1, 0.002);
    }
}

/* The running task of the hold, and the queued one. */
static inline cf_future *tu_hold_running(const tu_hold *h)
{
    return h->f[0];
}

static inline cf_future *tu_hold_queued(const tu_hold *h)
{
    return h->f[h->n - 1];
}

/* Opens the gate and checks that each holding task returned its value, or was cancelled
 * by the test before it started (the queued one, or one a process pool had handed ahead
 * to a busy worker): exactly the tasks that started return values. */
static inline void tu_hold_release(tu_hold *h)
{
    int i, values = 0;
    tu_gate_open(&h->gate);
    for (i = 0; i < h->n; i++) {
        const void *data = NULL;
        size_t len = 0;
        int rc = cf_future_bytes(h->f[i], TU_LONG, &data, &len);
        if (rc == 0 && tu_xvalue(data, len) == i + 1)
            values++;
        else if (rc != CF_ECANCELLED || i == 0)
            fail_msg("holding task %d of %d: %s", i, h->n, cf_err_name(rc));
    }
    if (values != tu_latch_count(&h->started))
        fail_msg("holding tasks: %d values, %d started", values, tu_latch_count(&h->started));
    for (i = 0; i < h->n; i++)
        cf_future_release(h->f[i]);
    tu_latch_destroy(&h->started);
    tu_gate_destroy(&h->gate);
}

/* Starts every worker of ex and lets them go idle again, so tasks submitted next one at a
 * time each find an idle worker (a process pool hands a task to its least busy worker, but
 * only to one that has started). */
static inline void tu_start_workers(cf_executor *ex)
{
    tu_hold h;
    tu_hold_workers(&h, ex);
    tu_hold_release(&h);
}

#endif
