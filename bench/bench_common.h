/*
 * bench_common.h -- what every C/C++ benchmark program shares.
 *
 * Each bench_*.c / bench_*.cpp program runs the same workloads (W1..W5, see README.md) on
 * one executor library and prints one "RESULT <workload> <median> <unit> ..." line per
 * figure for run.py.  Everything that must be identical across the programs for their
 * figures to compare lives here: the workload sizes, the harness (warm-up round, timed
 * repetitions, median), the calibrated CPU work of W4, the per-item function of W2, the
 * latch that holds one task on each worker (W5), the idle measurement, and the count of
 * which thread ran each task.
 *
 * Header-only (static inline) because every program is a single translation unit.  Include
 * it before any other header: it defines _GNU_SOURCE.  It is valid C11 and C++.
 *
 * Locking: bench_latch has one mutex, taken only by a thread about to sleep and by the
 * arrival that releases sleepers; the count itself is atomic, so all arrivals but the last
 * are lock-free.
 * Invariants: a RESULT line is printed only after every repetition of its workload ran and
 * was checked; any failed check ends the program with status 1 (run.py reports it), so no
 * figure is printed for work that was not done or was done wrong.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* Workload sizes (py_threads.py states its own, scaled down). */
#define BENCH_TASKS 1000000u          /* W1 tasks and W2 items */
#define BENCH_ROUNDS 100000u          /* W3 round trips */
#define BENCH_CPU_TASK_SECONDS 1e-3   /* W4: work per task */
#define BENCH_CPU_TASKS_PER_WORKER 100u /* W4: 2 * 50 tasks per worker */
#define BENCH_IDLE_SECONDS 2.0        /* W5: length of the idle period */
#define BENCH_IDLE_MAX_REPS 3         /* W5: each repetition costs BENCH_IDLE_SECONDS */
#define BENCH_GATE_TIMEOUT 30.0       /* W5: how long a task waits for the other workers */

#define BENCH_MAX_REPS 100
#define BENCH_MAX_THREADS 256 /* thread slots of bench_where; --workers stays below it */

#if defined(__cplusplus)
#define BENCH_NORETURN [[noreturn]]
#else
#define BENCH_NORETURN _Noreturn
#endif

#if defined(__GNUC__)
#define BENCH_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define BENCH_PRINTF(fmt, args)
#endif

/* ------------------------------------------------------------------------------------ */
/* Output                                                                               */
/* ------------------------------------------------------------------------------------ */

/* Reports a failed check and ends the program: a wrong run must not produce a figure. */
BENCH_NORETURN static inline void bench_die(const char *fmt, ...) BENCH_PRINTF(1, 2);
BENCH_NORETURN static inline void bench_die(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fputs("bench: error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* "INFO <key> <value>": facts about the run (library version, workers) for RESULTS.md. */
static inline void bench_info(const char *key, const char *fmt, ...) BENCH_PRINTF(2, 3);
static inline void bench_info(const char *key, const char *fmt, ...)
{
    va_list ap;
    printf("INFO %s ", key);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

/* "NOTE <workload> <text>": a caveat run.py attaches to that workload's figure. */
static inline void bench_note(const char *workload, const char *fmt, ...) BENCH_PRINTF(2, 3);
static inline void bench_note(const char *workload, const char *fmt, ...)
{
    va_list ap;
    printf("NOTE %s ", workload);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static inline void *bench_alloc(size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (p == NULL)
        bench_die("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

/* ------------------------------------------------------------------------------------ */
/* Clocks                                                                               */
/* ------------------------------------------------------------------------------------ */

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time (user + system) used so far by every thread of the process. */
static inline double bench_cpu_time(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        bench_die("getrusage: %s", strerror(errno));
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static inline void bench_sleep(double seconds)
{
    struct timespec ts;
    ts.tv_sec = (time_t)seconds;
    ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/*
 * W5: sleeps for `seconds` and returns the CPU time the whole process used meanwhile, in
 * percent of one core.  The caller has just run a task on every worker, so this is what
 * the library's idle workers cost (spinning after work, timers, polling).
 */
static inline double bench_idle_percent(double seconds)
{
    double c0 = bench_cpu_time(), t0 = bench_now();
    bench_sleep(seconds);
    double c1 = bench_cpu_time(), t1 = bench_now();
    return 100.0 * (c1 - c0) / (t1 - t0);
}

/* ------------------------------------------------------------------------------------ */
/* Arguments and the harness                                                            */
/* ------------------------------------------------------------------------------------ */

/* The CPUs this process may run on: the default worker count of every program. */
static inline int bench_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0)
        return 1;
    return CPU_COUNT(&set);
}

typedef struct bench_args {
    int reps;         /* timed repetitions per workload, after one warm-up round */
    int workers;      /* worker threads */
    const char *only; /* comma-separated workload names to run, NULL for all */
} bench_args;

static inline int bench_parse_int(const char *prog, const char *opt, const char *s, int lo,
                                  int hi)
{
    char *end;
    long v;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "%s: %s wants an integer in %d..%d, not '%s'\n", prog, opt, lo, hi, s);
        exit(2);
    }
    return (int)v;
}

/* Parses [--reps N] [--workers N] [--only W1,W3]; exits with status 2 on anything else. */
static inline bench_args bench_parse_args(int argc, char **argv)
{
    bench_args a;
    a.reps = 5;
    a.workers = bench_cpus();
    a.only = NULL;
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (i + 1 < argc && strcmp(opt, "--reps") == 0)
            a.reps = bench_parse_int(argv[0], opt, argv[++i], 1, BENCH_MAX_REPS);
        else if (i + 1 < argc && strcmp(opt, "--workers") == 0)
            a.workers = bench_parse_int(argv[0], opt, argv[++i], 1, BENCH_MAX_THREADS - 1);
        else if (i + 1 < argc && strcmp(opt, "--only") == 0)
            a.only = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--reps N] [--workers N] [--only W1,W2,...]\n",
                    argv[0]);
            exit(2);
        }
    }
    return a;
}

/* Whether the workload `name` was asked for. */
static inline int bench_selected(const bench_args *a, const char *name)
{
    size_t len = strlen(name);
    const char *p = a->only;
    if (p == NULL)
        return 1;
    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        if (n == len && strncmp(p, name, len) == 0)
            return 1;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* One timed repetition of a workload; returns its figure in the workload's unit. */
typedef double (*bench_rep_fn)(void *ctx);

typedef struct bench_workload {
    const char *name;          /* "W1" */
    const char *unit;          /* "ns/task" */
    bench_rep_fn rep;
    int warmup;                /* run one untimed repetition first */
    int max_reps;              /* cap on repetitions (0: none) */
    const char *note;          /* a fixed caveat printed as a NOTE, or NULL */
    void (*report)(void *ctx); /* prints measured NOTEs after the repetitions, or NULL */
} bench_workload;

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static inline double bench_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/*
 * Runs each selected workload: the warm-up round (so the timed rounds see started threads
 * and recycled memory), then the timed repetitions, then one line
 *     RESULT <name> <median> <unit> min=<x> max=<y> reps=<n>
 */
static inline void bench_run(const bench_args *a, const bench_workload *w, size_t n, void *ctx)
{
    for (size_t i = 0; i < n; i++) {
        double v[BENCH_MAX_REPS];
        int reps = a->reps;
        if (!bench_selected(a, w[i].name))
            continue;
        if (w[i].max_reps > 0 && reps > w[i].max_reps)
            reps = w[i].max_reps;
        if (w[i].warmup)
            w[i].rep(ctx);
        for (int r = 0; r < reps; r++)
            v[r] = w[i].rep(ctx);
        double med = bench_median(v, reps);
        printf("RESULT %s %.6g %s min=%.6g max=%.6g reps=%d\n", w[i].name, med, w[i].unit,
               v[0], v[reps - 1], reps);
        fflush(stdout);
        if (w[i].note != NULL)
            bench_note(w[i].name, "%s", w[i].note);
        if (w[i].report != NULL)
            w[i].report(ctx);
    }
}

/* ------------------------------------------------------------------------------------ */
/* W1 / W2 inputs                                                                       */
/* ------------------------------------------------------------------------------------ */

/* Distinct non-NULL input pointers (GLib's queue refuses NULL), built once per program. */
static inline void **bench_inputs(size_t n)
{
    void **in = (void **)bench_alloc(n, sizeof *in);
    for (size_t i = 0; i < n; i++)
        in[i] = (void *)(uintptr_t)(i + 1);
    return in;
}

/* Index of an input made by bench_inputs. */
static inline size_t bench_input_index(const void *input)
{
    return (size_t)(uintptr_t)input - 1;
}

/* W2's per-item function: trivial work behind a real call. */
static inline void *bench_item(void *x)
{
    return (void *)((uintptr_t)x * 2u + 1u);
}

typedef void *(*bench_item_fn)(void *);

/*
 * bench_item through a pointer the compiler cannot see through: cfutures calls its task
 * through a pointer per item, so a peer whose loop body the compiler could inline (OpenMP,
 * oneTBB) makes the same call instead of being measured as a bare memory copy.
 */
static inline bench_item_fn bench_item_callee(void)
{
    bench_item_fn volatile fn = bench_item;
    return fn;
}

/* ------------------------------------------------------------------------------------ */
/* W4: calibrated CPU work                                                              */
/* ------------------------------------------------------------------------------------ */

/* xorshift64: a serial dependency chain, so the loop can be neither vectorised nor
 * replaced by a closed form, and its result depends on every iteration. */
static inline uint64_t bench_spin(uint64_t iters, uint64_t seed)
{
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1u;
    for (uint64_t i = 0; i < iters; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    return x;
}

/* Makes the compiler compute v although nothing reads it. */
static inline void bench_keep(uint64_t v)
{
    __asm__ __volatile__("" : : "r"(v));
}

/* Iterations of bench_spin that take `seconds` on this core at its fastest observed pace
 * (the shortest of several timings, so tasks are never shorter than asked). */
static inline uint64_t bench_spin_calibrate(double seconds, double *per_iter)
{
    uint64_t iters = 1u << 16;
    double t, best;
    for (;;) {
        double t0 = bench_now();
        bench_keep(bench_spin(iters, iters));
        t = bench_now() - t0;
        if (t >= 0.02)
            break;
        iters *= 2;
    }
    best = t;
    for (int k = 0; k < 3; k++) {
        double t0 = bench_now();
        bench_keep(bench_spin(iters, (uint64_t)k));
        t = bench_now() - t0;
        if (t < best)
            best = t;
    }
    *per_iter = best / (double)iters;
    return (uint64_t)(seconds / *per_iter) + 1u;
}

/* One W4 task: what a worker runs, given as the task's argument. */
typedef struct bench_cpu_job {
    uint64_t iters;
    uint64_t seed;
    uint64_t out;
} bench_cpu_job;

static inline void bench_cpu_run_job(void *job)
{
    bench_cpu_job *j = (bench_cpu_job *)job;
    j->out = bench_spin(j->iters, j->seed);
}

/* W4's state; zero-initialise it, set `workers`, and let bench_cpu_efficiency do the rest. */
typedef struct bench_cpu {
    int workers;
    size_t ntasks;
    bench_cpu_job *jobs;
    void **args;      /* &jobs[i], for libraries that take an array of task arguments */
    uint64_t *expect; /* each job's output from the sequential run */
    /* The host's ceiling in each round: the same jobs on `workers` bare threads. */
    double bare[BENCH_MAX_REPS + 1];
    int nbare;
} bench_cpu;

/* Runs the ntasks jobs of `cpu` on the library's workers and returns when all are done. */
typedef void (*bench_cpu_parallel_fn)(void *ctx);

typedef struct bench_bare_thread {
    bench_cpu *cpu;
    size_t first; /* runs jobs first, first + workers, ... */
    pthread_t tid;
} bench_bare_thread;

static inline void *bench_bare_main(void *arg)
{
    bench_bare_thread *t = (bench_bare_thread *)arg;
    for (size_t i = t->first; i < t->cpu->ntasks; i += (size_t)t->cpu->workers)
        bench_cpu_run_job(&t->cpu->jobs[i]);
    return NULL;
}

/* The jobs split evenly over `workers` threads created for the purpose, no library: what
 * the host gives two busy threads, which bounds every library's efficiency in that round
 * (a VM's vCPUs may share a core's resources, or be descheduled). */
static inline double bench_cpu_bare_seconds(bench_cpu *cpu)
{
    bench_bare_thread t[BENCH_MAX_THREADS];
    double t0 = bench_now();
    for (int k = 0; k < cpu->workers; k++) {
        t[k].cpu = cpu;
        t[k].first = (size_t)k;
        if (pthread_create(&t[k].tid, NULL, bench_bare_main, &t[k]) != 0)
            bench_die("W4: pthread_create failed");
    }
    for (int k = 0; k < cpu->workers; k++)
        pthread_join(t[k].tid, NULL);
    return bench_now() - t0;
}

static inline void bench_cpu_check(const bench_cpu *cpu, const char *who)
{
    for (size_t i = 0; i < cpu->ntasks; i++)
        if (cpu->jobs[i].out != cpu->expect[i])
            bench_die("W4: task %zu did not run on %s or computed a different value", i, who);
}

/*
 * One W4 repetition: runs the jobs one after another in this thread (T_sequential), then
 * through the library (T_parallel), checks that every job ran exactly once with the same
 * output, and returns the parallel efficiency T_sequential / (workers * T_parallel) in
 * percent.  The first call calibrates the work and states the task length as a NOTE.
 */
static inline double bench_cpu_efficiency(bench_cpu *cpu, bench_cpu_parallel_fn parallel,
                                          void *ctx)
{
    if (cpu->jobs == NULL) {
        double per_iter;
        uint64_t iters = bench_spin_calibrate(BENCH_CPU_TASK_SECONDS, &per_iter);
        cpu->ntasks = (size_t)cpu->workers * BENCH_CPU_TASKS_PER_WORKER;
        cpu->jobs = (bench_cpu_job *)bench_alloc(cpu->ntasks, sizeof *cpu->jobs);
        cpu->args = (void **)bench_alloc(cpu->ntasks, sizeof *cpu->args);
        cpu->expect = (uint64_t *)bench_alloc(cpu->ntasks, sizeof *cpu->expect);
        for (size_t i = 0; i < cpu->ntasks; i++) {
            cpu->jobs[i].iters = iters;
            cpu->jobs[i].seed = i;
            cpu->args[i] = &cpu->jobs[i];
        }
        bench_note("W4", "%zu tasks of %.3f ms each (calibrated xorshift loop), %d workers",
                   cpu->ntasks, (double)iters * per_iter * 1e3, cpu->workers);
    }
    double t0 = bench_now();
    for (size_t i = 0; i < cpu->ntasks; i++)
        bench_cpu_run_job(&cpu->jobs[i]);
    double tseq = bench_now() - t0;
    for (size_t i = 0; i < cpu->ntasks; i++) {
        cpu->expect[i] = cpu->jobs[i].out;
        cpu->jobs[i].out = 0;
    }
    t0 = bench_now();
    parallel(ctx);
    double tpar = bench_now() - t0;
    bench_cpu_check(cpu, "the library's workers");
    for (size_t i = 0; i < cpu->ntasks; i++)
        cpu->jobs[i].out = 0;
    double tbare = bench_cpu_bare_seconds(cpu);
    bench_cpu_check(cpu, "bare threads");
    if (cpu->nbare < BENCH_MAX_REPS + 1)
        cpu->bare[cpu->nbare++] = 100.0 * tseq / ((double)cpu->workers * tbare);
    return 100.0 * tseq / ((double)cpu->workers * tpar);
}

/* States the host's ceiling over W4's rounds (warm-up included) as a NOTE. */
static inline void bench_cpu_report(bench_cpu *cpu)
{
    if (cpu->nbare == 0)
        return;
    double v[BENCH_MAX_REPS + 1];
    memcpy(v, cpu->bare, (size_t)cpu->nbare * sizeof v[0]);
    double med = bench_median(v, cpu->nbare);
    bench_note("W4", "the host's ceiling: the same jobs split evenly over %d bare pthreads "
               "right after each round reached a median of %.2f %% (min %.2f, max %.2f, %d "
               "rounds)", cpu->workers, med, v[0], v[cpu->nbare - 1], cpu->nbare);
}

static inline void bench_cpu_free(bench_cpu *cpu)
{
    free(cpu->jobs);
    free(cpu->args);
    free(cpu->expect);
    cpu->jobs = NULL;
    cpu->args = NULL;
    cpu->expect = NULL;
}

/* ------------------------------------------------------------------------------------ */
/* Latch                                                                                */
/* ------------------------------------------------------------------------------------ */

/*
 * A count-down latch.  W5 holds one task on each worker with it (each task arrives and
 * waits, so no worker can take two); GLib, which has no per-task completion, also counts
 * finished tasks with it.  Reset only while nobody uses it.
 */
typedef struct bench_latch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned left;
} bench_latch;

static inline void bench_latch_init(bench_latch *l)
{
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (pthread_mutex_init(&l->mu, NULL) != 0 || pthread_cond_init(&l->cv, &attr) != 0)
        bench_die("latch: pthread init failed");
    pthread_condattr_destroy(&attr);
    l->left = 0;
}

static inline void bench_latch_destroy(bench_latch *l)
{
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
}

static inline void bench_latch_reset(bench_latch *l, unsigned count)
{
    __atomic_store_n(&l->left, count, __ATOMIC_SEQ_CST);
}

/* The last arrival takes the mutex before broadcasting, so a waiter that saw the count
 * non-zero under the mutex is already asleep on the condition and cannot miss it. */
static inline void bench_latch_count_down(bench_latch *l)
{
    if (__atomic_sub_fetch(&l->left, 1u, __ATOMIC_ACQ_REL) == 0) {
        pthread_mutex_lock(&l->mu);
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
    }
}

/* Waits until the count reaches zero: 0, or -1 after `timeout` seconds. */
static inline int bench_latch_wait(bench_latch *l, double timeout)
{
    struct timespec dl;
    int rc = 0;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    long ns = dl.tv_nsec + (long)((timeout - (double)(time_t)timeout) * 1e9);
    dl.tv_sec += (time_t)timeout + ns / 1000000000L;
    dl.tv_nsec = ns % 1000000000L;
    pthread_mutex_lock(&l->mu);
    while (__atomic_load_n(&l->left, __ATOMIC_ACQUIRE) != 0 && rc == 0)
        if (pthread_cond_timedwait(&l->cv, &l->mu, &dl) == ETIMEDOUT)
            rc = __atomic_load_n(&l->left, __ATOMIC_ACQUIRE) != 0 ? -1 : 0;
    pthread_mutex_unlock(&l->mu);
    return rc;
}

static inline int bench_latch_arrive_and_wait(bench_latch *l, double timeout)
{
    bench_latch_count_down(l);
    return bench_latch_wait(l, timeout);
}

/* ------------------------------------------------------------------------------------ */
/* Where tasks ran                                                                      */
/* ------------------------------------------------------------------------------------ */

/*
 * Counts tasks per thread index, for runtimes whose submitting thread also runs tasks
 * (OpenMP, oneTBB): their figures mean something else when the submitter ran the task
 * itself, so the programs state how often it did.  One cache line per thread, so counting
 * does not add false sharing to the figure being measured.
 */
typedef struct bench_slot {
    uint64_t n;
    char pad[64 - sizeof(uint64_t)];
} bench_slot;

typedef struct bench_where {
    bench_slot slot[BENCH_MAX_THREADS];
} bench_where;

static inline void bench_where_count(bench_where *w, int thread)
{
    if (thread < 0 || thread >= BENCH_MAX_THREADS)
        bench_die("thread index %d out of range", thread);
    w->slot[thread].n++;
}

/* NOTE <workload> with the share of counted tasks run by thread `submitter`; then clears
 * the counts for the next workload. */
static inline void bench_where_report(bench_where *w, const char *workload, int submitter)
{
    uint64_t total = 0;
    if (submitter < 0 || submitter >= BENCH_MAX_THREADS)
        bench_die("%s: submitting thread's index %d out of range", workload, submitter);
    for (int i = 0; i < BENCH_MAX_THREADS; i++)
        total += w->slot[i].n;
    if (total > 0)
        bench_note(workload, "%.1f%% of tasks ran on the submitting thread itself",
                   100.0 * (double)w->slot[submitter].n / (double)total);
    memset(w, 0, sizeof *w);
}

#endif /* BENCH_COMMON_H */
