/*
 * stress_process_kill.c -- a process pool's map while workers are killed from outside
 * (issue #3; SEMANTICS 13, 23).
 *
 * 100,000 small inputs go through cf_map_bytes_start on a pool of 3 workers while a killer
 * thread, every 2 to 5 ms, sends SIGKILL to a random live worker (a child of this process
 * that is not a zombie, found in /proc; whatever state it is in: starting, running a task,
 * or idle).  Every position must be returned exactly once, in order, with either its right
 * value (a function of its input the test recomputes) or CF_ELOST; anything else fails.
 * The kills must really hit running tasks (at least one CF_ELOST) and most positions must
 * succeed.  Afterwards no child process is left (live or zombie) and no descriptor.
 *
 * The killer signals through a pidfd opened after the pid was found and checked again to
 * be a child of this process, so a recycled pid can never be signalled.  After each kill it
 * waits until the pool has reaped the worker, and then for a value from a task that started
 * after that (each result carries its task's start time): the pool got a result between
 * any two deaths.  Kills by time alone, where starting a worker takes longer than the kill
 * interval (a sanitized worker: 40 ms and more), would kill START_FAILURES_MAX (3) starting
 * workers in a row with no result between, which the pool rightly takes for an endless
 * restart loop and breaks on (SEMANTICS 32); waiting for positions to come back is not
 * enough, as they may be results that arrived before the kill.
 *
 * Until a kill has cost a task, every kill aims at a worker inside its task: the task names
 * its thread IN_TASK while it runs (prctl), and the killer looks for that name in /proc.
 * Kills at random alone can miss every task where tasks are short beside the messages
 * around them and starting workers are slow (an ASan run: 4 kills, none in a task).
 *
 * CF_STRESS_SHORT (sanitizer builds) runs 10,000 positions.
 */
#include "testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#ifdef CF_STRESS_SHORT
#define POSITIONS 10000u
#else
#define POSITIONS 100000u
#endif
#define WORKERS 3
#define ROUNDS 8000 /* mixing rounds per task: some microseconds of work, so that most
                       * kills of a started worker land in a task */
#define MAX_CHILDREN 64
#define IN_TASK "in-task"  /* a worker's thread name while it runs mix_fn */
#define AIM_TRIES 50       /* looks for a worker in its task before any live one will do */

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

typedef struct answer {
    uint64_t h;       /* mix(input) */
    uint64_t started; /* CLOCK_MONOTONIC at the task's start, ns */
} answer;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The task's result for input x; also computed by the test to check it. */
static uint64_t mix(uint32_t x)
{
    uint64_t h = x * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < ROUNDS; i++) {
        h ^= h >> 29;
        h *= 0xBF58476D1CE4E5B9ull;
        h ^= h >> 32;
    }
    return h;
}

static int mix_fn(const void *in, size_t len, cf_ctx *ctx)
{
    uint32_t x;
    if (len != sizeof x)
        return cf_fail(ctx, 1, "input of %zu bytes", len);
    memcpy(&x, in, sizeof x);
    answer a = {.started = now_ns()};
    char name[16] = "";
    prctl(PR_GET_NAME, name, 0, 0, 0);
    prctl(PR_SET_NAME, IN_TASK, 0, 0, 0);
    a.h = mix(x);
    prctl(PR_SET_NAME, name, 0, 0, 0);
    return cf_ctx_set_output(ctx, &a, sizeof a);
}

CF_FUNCTION(mix_task, mix_fn);

/* ---- finding and killing workers ----------------------------------------------------- */

/* 1 if pid is a child of this process and not a zombie. */
static int live_child(long pid)
{
    char state = tu_child_state((pid_t)pid);
    return state && state != 'Z' && state != 'X';
}

/* 1 if pid's main thread is named IN_TASK (it is running mix_fn). */
static int in_task(long pid)
{
    char path[64], name[32] = "";
    snprintf(path, sizeof path, "/proc/%ld/comm", pid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return 0;
    int ok = fgets(name, sizeof name, fp) != NULL && strcmp(name, IN_TASK "\n") == 0;
    fclose(fp);
    return ok;
}

/* The live children of this process (only those in their task if `aim`): up to `cap`
 * pids into out; returns how many. */
static int live_children(long *out, int cap, int aim)
{
    DIR *d = opendir("/proc");
    struct dirent *e;
    int n = 0;
    if (!d)
        return 0;
    while ((e = readdir(d)) != NULL && n < cap) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end == '\0' && pid > 0 && live_child(pid) && (!aim || in_task(pid)))
            out[n++] = pid;
    }
    closedir(d);
    return n;
}

typedef struct killer {
    atomic_int stop;
    atomic_uint_least64_t newest; /* latest start (ns) of a task whose value came back */
    atomic_size_t lost; /* of which CF_ELOST */
    unsigned seed;
    long kills;
} killer;

static void *killer_main(void *arg)
{
    killer *k = arg;
    unsigned seed = k->seed;
    uint64_t reaped = 0; /* when the pool had reaped the last worker killed */
    int misses = 0; /* looks in a row for a worker in its task that found none */
    while (!atomic_load(&k->stop)) {
        tu_sleep(0.002 + 0.001 * (rand_r(&seed) % 4)); /* the kill rate, not a handshake */
        while (atomic_load(&k->newest) <= reaped && !atomic_load(&k->stop))
            tu_sleep(0.001);
        long pids[MAX_CHILDREN];
        int aim = atomic_load(&k->lost) == 0 && misses < AIM_TRIES;
        int n = live_children(pids, MAX_CHILDREN, aim);
        if (n == 0) {
            misses += aim;
            continue;
        }
        misses = 0;
        long pid = pids[rand_r(&seed) % (unsigned)n];
        int fd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0)
            continue; /* gone already */
        /* The pidfd holds this process whatever happens to the number: check it is still
         * one of ours before signalling it. */
        if (live_child(pid) && (!aim || in_task(pid)) &&
            syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0) == 0) {
            k->kills++;
            /* The pool reaps it in the same step that counts its death (WNOWAIT: only
             * looks); ECHILD once it has. */
            siginfo_t si;
            while (waitid((idtype_t)P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
                   !atomic_load(&k->stop))
                tu_sleep(0.001);
            reaped = now_ns();
        }
        close(fd);
    }
    return NULL;
}

/* ---- the run --------------------------------------------------------------------------- */

static void map_survives_random_worker_kills(void **state)
{
    (void)state;
    uint32_t *values = malloc(POSITIONS * sizeof *values);
    cf_bytes *inputs = malloc(POSITIONS * sizeof *inputs);
    assert_non_null(values);
    assert_non_null(inputs);
    for (uint32_t i = 0; i < POSITIONS; i++) {
        values[i] = i;
        inputs[i] = (cf_bytes){&values[i], sizeof values[i]};
    }
    int fds = tu_count_fds();
    cf_executor *ex = NULL;
    cf_executor_opts o;
    cf_executor_opts_init(&o);
    o.workers = WORKERS;
    o.name = "kill";
    assert_int_equal(cf_executor_new(&ex, CF_BACKEND_PROCESSES, &o), 0);

    killer k = {.seed = (unsigned)time(NULL)};
    atomic_init(&k.stop, 0);
    atomic_init(&k.newest, 0);
    atomic_init(&k.lost, 0);
    pthread_t t = tu_thread_start(killer_main, &k);
    cf_map *m = NULL;
    assert_int_equal(cf_map_bytes_start(&m, ex, &mix_task, inputs, POSITIONS, NULL), 0);
    size_t ok = 0, lost = 0;
    char failure[256] = "";
    for (size_t i = 0; i < POSITIONS && !failure[0]; i++) {
        size_t idx = SIZE_MAX;
        void *v = NULL;
        answer a = {0};
        int rc = cf_map_next(m, &idx, &v);
        if (rc == 0 && cf_map_value_len(m) == sizeof a)
            memcpy(&a, v, sizeof a);
        if (idx != i || (rc != 0 && rc != CF_ELOST)) {
            int code = 0;
            cf_executor_error(ex, &code, NULL);
            snprintf(failure, sizeof failure, "position %zu: index %zu, %s (executor code %d)", i,
                     idx, cf_err_name(rc), code);
        } else if (rc == CF_ELOST) {
            lost++;
            atomic_store(&k.lost, lost);
        } else if (cf_map_value_len(m) != sizeof a || a.h != mix((uint32_t)i)) {
            snprintf(failure, sizeof failure, "position %zu: wrong value (%zu bytes)", i,
                     cf_map_value_len(m));
        } else {
            ok++;
            if (a.started > atomic_load(&k.newest))
                atomic_store(&k.newest, a.started);
        }
    }
    if (!failure[0] && cf_map_next(m, NULL, NULL) != CF_EEND)
        snprintf(failure, sizeof failure, "more than %u positions", POSITIONS);
    atomic_store(&k.stop, 1);
    tu_thread_join(t);
    cf_map_free(m);
    cf_executor_free(ex);
    free(inputs);
    free(values);
    if (failure[0])
        fail_msg("%s; before it: %zu values, %zu lost, %ld kills (seed %u)", failure, ok, lost,
                 k.kills, k.seed);
    print_message("%u positions: %zu values, %zu lost, %ld kills (seed %u)\n", POSITIONS, ok,
                  lost, k.kills, k.seed);
    assert_true(lost >= 1);
    assert_true(ok >= POSITIONS / 2);

    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* no child left, live or zombie */
    assert_int_equal(errno, ECHILD);
    assert_int_equal(tu_count_fds(), fds);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(map_survives_random_worker_kills),
};

CF_TEST_MAIN(tests)
