/*
 * pool.c -- the process-pool backend, parent side.
 *
 * Workers are this program started again (posix_spawn of /proc/self/exe, which is exec:
 * nothing of a multithreaded parent's state, locks included, survives into the child;
 * cf_init() in the worker's main() turns it into a worker, see worker.c).  Each worker has
 * its own channel (a stream socketpair), a control block and payload slots (process.h).
 *
 * Threads: callers submit and write tasks straight into an idle worker's channel; one
 * manager thread per pool does the rest: it starts workers (always this thread, because a
 * worker asks to die with the thread that started it), reads results from the rings,
 * writes the next batches, notices deaths through pidfds, enforces time limits, and
 * finishes futures.  A submitter flushes a worker's channel only when the worker had
 * nothing (so a lone task leaves at once); tasks added behind others wait for the manager,
 * which flushes each worker's batch in one write when results come back.  That keeps the
 * invariant "a worker with unsent tasks has a sent one whose result will wake the
 * manager".  The manager sleeps in epoll_wait only after setting parent_sleeps in every
 * control block and finding every ring empty, so a result published meanwhile rings the
 * doorbell.
 *
 * Queue and flight: tasks wait in `queue` (FIFO of jobs) until a worker has room; then they
 * become items in that worker's ring, in the order they were written, which is the order
 * the worker runs them and answers.  A future written to a worker is RUNNING to the core
 * but marked handed (cf__future_hand): the user sees it PENDING until the worker claims it
 * (pool_task_started reads the start handshake), and a cancel takes it back (SEMANTICS
 * 30).  Every item that leaves a ring because it ran loses the mark first, so a future
 * found in no ring and no queue is one that never started and is about to finish.
 * How many items a worker holds (`depth`) follows the average task time: many for tiny
 * tasks (one write carries a batch), two for long ones (the next is there when one ends),
 * one with kill_on_cancel.
 *
 * A death is charged to one item: the one the control block says was running (or the one
 * whose answer was malformed or truncated); it fails with CF_ELOST / CF_ETASKTIMEOUT /
 * CF_EPROTO and the wait status; items behind it never started and go back to the head of
 * the queue for another worker.  A worker that dies before saying HELLO breaks the pool
 * (its initializer failed), so a program that cannot start workers does not loop.
 *
 * Map: a map runner (CF__TASK_MAP_RUNNER) is a job that claims ranges of positions from
 * the map and writes a whole range to one worker at a time; positions come back one result
 * each and are published into the map's slots.
 *
 * Lock order: `lock` (everything above) is the only lock; futures are finished, and their
 * callbacks run, only after it is released (callbacks may submit).
 */
#define _GNU_SOURCE
#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define DEPTH_MAX 64
#define START_FAILURES_MAX 3 /* deaths before HELLO in a row, with no result between, that
                                break the pool */
#define FDQ_MAX 16 /* result descriptors a worker may have sent ahead of their RESULTs */
#define RANGE_MAX 4096 /* positions of one range written to a worker at a time */
#define TARGET_BATCH_NS 100000 /* a worker's queue should hold about this much work */
#define MANAGER_SPIN_NS 50000   /* the longest the manager watches rings before sleeping */
#define POLL_EVERY_NS 1000000   /* while results keep it busy, the manager still looks at
                                 * deaths and time limits this often */
#define HANDOVER_NS 1000000     /* a task running this long makes its worker busy: tasks
                                 * waiting behind it go to an idle worker */
#define STALL_NS 1000000000     /* a worker that has not started its next task in this long
                                 * (stopped, say) gives its tasks back */

typedef struct runner {
    cf_future *f;
    cf_map *m;
    size_t outstanding;  /* positions claimed and not yet published */
    bool started;
    bool claiming_done;  /* the map gave the last range it will give this runner */
    cf__map_pace pace;   /* CF_CHUNK_AUTO: sizes this runner's ranges */
} runner;

typedef struct job {
    struct job *next;
    cf_future *f;   /* a task; NULL for a runner's positions */
    runner *r;
    size_t lo, hi;  /* runner: positions still to write (lo == hi: claim the next range) */
    bool main;      /* the runner's own job (claims); else positions requeued after a death */
    bool started;   /* a task requeued after a death: already RUNNING */
} job;

typedef struct item {
    cf_future *f;   /* the task; NULL for a map position or a task already cancelled */
    runner *r;
    size_t index;
    uint64_t seq;
    int slot;       /* input slot in use, or -1 */
} item;

enum { W_FREE, W_STARTING, W_READY };
enum { K_NONE, K_TIMEOUT, K_CANCEL, K_SHUTDOWN, K_PROTO };

typedef struct pworker {
    int state;
    uint32_t gen;
    uint64_t serial; /* unique per spawn: the owner of the result buffers it wrote */
    pid_t pid;
    int pidfd, chan;
    cf__control *ctl;
    int in_fd[2];
    uint8_t *in_map[2];
    size_t in_size[2];
    bool in_busy[2];
    int fdq[FDQ_MAX]; /* result memfds received, not yet claimed by their RESULT */
    size_t fdq_head, fdq_len;
    int spares_held;  /* spare result buffers sent and not yet come back as results */
    item *items; /* ring */
    size_t head, count, cap;
    uint64_t handed; /* tasks written to it, for max_tasks_per_worker */
    cf__wbuf wb;
    bool want_out;   /* wb holds unsent bytes: the manager watches for EPOLLOUT */
    bool needs_flush; /* its first item since it was idle waits in wb */
    uint8_t *ring;   /* the result ring, mapped twice */
    uint64_t tail;   /* ring bytes consumed */
    uint8_t *fn_sent; /* bitmap over fn ids */
    size_t fn_sent_bytes;
    int kill_reason;  /* set under the lock by any thread */
    uint64_t kill_seq;
    bool distrusted;  /* it sent a malformed message: nothing more is read (manager only) */
    const char *distrust_why;
    bool wild_head;   /* its ring head was one no worker writes: a scribbled control block */
    bool chan_lost;   /* its channel closed or failed while it lived: killed, replaced */
    int64_t front_since; /* when its front item became the front */
    uint64_t stalled;    /* its tasks were taken back after a stall: it gets no more
                          * until it reaches this seq (seen_seq); else 0 */
    bool eof;
} pworker;

typedef struct fn_rec {
    const cf_function *fn;
    cf__modref_buf ref;
} fn_rec;

typedef struct done_rec {
    cf_future *f;
    int act;
} done_rec;
enum { ACT_FINISH, ACT_CANCEL_RUNNING, ACT_CANCEL_QUEUED, ACT_BROKEN, ACT_RELEASE };

typedef struct ppool {
    cf_executor base;
    pthread_mutex_t lock;
    pthread_t manager;
    bool manager_running;
    int epfd, evfd;
    _Atomic bool wake_pending; /* the eventfd was written and not yet read */
    pworker *w;
    int live;
    job *qhead, *qtail;
    size_t qlen;
    uint64_t next_seq;
    fn_rec *fns;
    uint32_t fns_len, fns_cap;
    int64_t avg_task_ns;
    int start_failures; /* workers that died before HELLO since one last said it or a
                           result last came */
    uint64_t spawns;    /* workers spawned ever: the last one's serial */
    uint64_t polled_ns; /* when the manager last looked at its descriptors and deadlines */
    cf__spares *spares; /* released results' memfds, for the workers to reuse */
    /* options */
    int64_t timeout_ns;
    uint64_t memory_limit, max_payload;
    uint32_t max_tasks;
    bool kill_on_cancel;
    bool has_init;
    cf__modref_buf init_ref;
    uint8_t *init_arg;
    uint32_t init_arg_len;
    /* finishing, outside the lock */
    done_rec *done;
    size_t done_len, done_cap;
    cf__join_once join; /* of the manager thread */
} ppool;

/* ---- small helpers -------------------------------------------------------------------- */

static void wake_manager(ppool *p)
{
    if (!p->wake_pending) {
        p->wake_pending = true;
        uint64_t one = 1;
        ssize_t rc = write(p->evfd, &one, sizeof one);
        (void)rc; /* an eventfd cannot be full here: the manager reads it before sleeping */
    }
}

static void wake_manager_from_stash(void *arg)
{
    wake_manager(arg);
}

static void defer(ppool *p, cf_future *f, int act)
{
    if (p->done_len == p->done_cap) {
        size_t cap = p->done_cap ? 2 * p->done_cap : 64;
        done_rec *grown = realloc(p->done, cap * sizeof *grown);
        if (!grown)
            abort(); /* finishing a future cannot be dropped; no way to report it */
        p->done = grown;
        p->done_cap = cap;
    }
    p->done[p->done_len++] = (done_rec){f, act};
}

/* Unlocks, then finishes what was deferred (callbacks run here, lock not held). */
static void unlock_and_finish(ppool *p)
{
    done_rec *list = p->done;
    size_t n = p->done_len;
    p->done = NULL;
    p->done_len = p->done_cap = 0;
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < n; i++) {
        cf_future *f = list[i].f;
        switch (list[i].act) {
        case ACT_FINISH:
            cf__future_complete(f, CF_RUNNING, CF_FINISHED);
            break;
        case ACT_CANCEL_RUNNING:
            cf__future_complete(f, CF_RUNNING, CF_CANCELLED);
            break;
        case ACT_CANCEL_QUEUED:
            cf__cancel_queued(&p->base, f);
            continue; /* it dropped the executor's reference */
        case ACT_BROKEN:
            if (f->bounded)
                cf__executor_unqueued(&p->base);
            cf__future_fail_pending(f, CF_EBROKEN, p->base.broken_code,
                                    p->base.broken_message);
            break;
        default: /* ACT_RELEASE: only the executor's reference to drop */
            break;
        }
        cf_future_release(f);
    }
    free(list);
}

/* The wait status no worker has: its death was seen, its cause could not be known. */
#define STATUS_UNKNOWN (-1)

static char *describe_status(pid_t pid, int status, const char *what)
{
    char buf[256];
    if (status == STATUS_UNKNOWN)
        snprintf(buf, sizeof buf,
                 "%s: worker %ld died; how is unknown (its wait status was taken by "
                 "another waitpid, or SIGCHLD is ignored)", what, (long)pid);
    else if (WIFSIGNALED(status))
        snprintf(buf, sizeof buf, "%s: worker %ld killed by signal %d (%s)", what, (long)pid,
                 WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, sizeof buf, "%s: worker %ld exited with status %d", what, (long)pid,
                 WEXITSTATUS(status));
    return strdup(buf);
}

/* ---- functions ----------------------------------------------------------------------- */

/* The id of fn for this pool, describing it on first use; CF_ENOFUNC if it cannot be. */
static int fn_id_locked(ppool *p, const cf_function *fn, uint32_t *id)
{
    for (uint32_t i = p->fns_len; i-- > 0;)
        if (p->fns[i].fn == fn) {
            *id = i;
            return 0;
        }
    if (p->fns_len == p->fns_cap) {
        uint32_t cap = p->fns_cap ? 2 * p->fns_cap : 8;
        fn_rec *grown = realloc(p->fns, cap * sizeof *grown);
        if (!grown)
            return CF_ENOMEM;
        p->fns = grown;
        p->fns_cap = cap;
    }
    fn_rec *r = &p->fns[p->fns_len];
    int rc = cf__modref_describe(fn, &r->ref);
    if (rc)
        return rc;
    r->fn = fn;
    *id = p->fns_len++;
    return 0;
}

static void flush(ppool *p, pworker *w);

/* ---- workers: start ------------------------------------------------------------------ */

static int fd_above(int fd, int floor)
{
    if (fd < 0 || fd >= floor)
        return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, floor);
    close(fd);
    return moved;
}

static int new_memfd(const char *name, size_t size, unsigned seals)
{
    int fd = fd_above(memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING), 16);
    if (fd < 0)
        return -1;
    if ((size && ftruncate(fd, (off_t)size) != 0) || fcntl(fd, F_ADD_SEALS, seals) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void close_worker(ppool *p, pworker *w)
{
    if (w->chan >= 0) {
        epoll_ctl(p->epfd, EPOLL_CTL_DEL, w->chan, NULL);
        close(w->chan);
    }
    if (w->pidfd >= 0) {
        epoll_ctl(p->epfd, EPOLL_CTL_DEL, w->pidfd, NULL);
        close(w->pidfd);
    }
    for (int i = 0; i < 2; i++) {
        if (w->in_map[i])
            munmap(w->in_map[i], w->in_size[i]);
        if (w->in_fd[i] >= 0)
            close(w->in_fd[i]);
    }
    while (w->fdq_len) {
        close(w->fdq[w->fdq_head]);
        w->fdq_head = (w->fdq_head + 1) % FDQ_MAX;
        w->fdq_len--;
    }
    if (w->ctl)
        munmap(w->ctl, CF__CONTROL_SIZE);
    if (w->ring)
        munmap(w->ring, 2 * CF__RING_SIZE);
    cf__wbuf_free(&w->wb);
    free(w->items);
    free(w->fn_sent);
    if (w->serial)
        cf__spares_forget(p->spares, w->serial);
    uint32_t gen = w->gen;
    memset(w, 0, sizeof *w);
    w->gen = gen + 1;
    w->state = W_FREE;
    w->chan = w->pidfd = w->in_fd[0] = w->in_fd[1] = -1;
}

static int watch(ppool *p, int fd, uint32_t events, int index, int kind)
{
    struct epoll_event ev = {.events = events};
    ev.data.u64 = (uint64_t)p->w[index].gen << 32 | (uint64_t)index << 2 | (uint64_t)kind;
    return epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev);
}

/*
 * The signals a worker starts with at their default action: all, except those the program
 * ignores (SIGHUP under nohup, SIGINT in a background job): an ignored signal stays
 * ignored across exec, as the program chose.  SIGCHLD is always reset, so that a task's
 * own system() and waitpid work.  (Handlers cannot survive exec anyway.)
 */
static void default_signals(sigset_t *set)
{
    sigfillset(set);
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sig != SIGCHLD && sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
            sigdelset(set, sig);
    }
}

static int spawn_locked(ppool *p, pworker *w, int index)
{
    int sv[2] = {-1, -1}, ctl_fd = -1;
    int rc = CF_ESYS;
    int ring_fd = -1;
    w->items = malloc(DEPTH_MAX * sizeof *w->items);
    w->cap = DEPTH_MAX;
    if (!w->items) {
        rc = CF_ENOMEM;
        goto fail;
    }
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        goto fail;
    sv[0] = fd_above(sv[0], 16);
    sv[1] = fd_above(sv[1], 16);
    ctl_fd = new_memfd("cf-control", CF__CONTROL_SIZE,
                       F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    w->in_fd[0] = new_memfd("cf-in0", 0, F_SEAL_SHRINK);
    w->in_fd[1] = new_memfd("cf-in1", 0, F_SEAL_SHRINK);
    ring_fd = new_memfd("cf-ring", CF__RING_SIZE, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    if (sv[0] < 0 || sv[1] < 0 || ctl_fd < 0 || w->in_fd[0] < 0 || w->in_fd[1] < 0 ||
        ring_fd < 0 || !(w->ring = cf__ring_map(ring_fd, CF__RING_SIZE)))
        goto fail;
    w->ctl = mmap(NULL, CF__CONTROL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ctl_fd, 0);
    if (w->ctl == MAP_FAILED) {
        w->ctl = NULL;
        goto fail;
    }
    if (getrandom(w->ctl->secret, CF__SECRET_LEN, 0) != CF__SECRET_LEN)
        goto fail;

    /* The environment: ours plus the worker marker (naming this process, the parent, and
     * the secret in the control block). */
    size_t n_env = 0;
    while (environ && environ[n_env])
        n_env++;
    char **envp = malloc((n_env + 2) * sizeof *envp);
    char marker[sizeof CF__WORKER_ENV + 24 + 2 * CF__SECRET_LEN];
    int at = snprintf(marker, sizeof marker, "%s=%ld:", CF__WORKER_ENV, (long)getpid());
    for (int i = 0; i < CF__SECRET_LEN; i++)
        at += snprintf(marker + at, sizeof marker - (size_t)at, "%02x", w->ctl->secret[i]);
    if (!envp) {
        rc = CF_ENOMEM;
        goto fail;
    }
    size_t k = 0;
    for (size_t i = 0; i < n_env; i++)
        if (strncmp(environ[i], CF__WORKER_ENV "=", sizeof CF__WORKER_ENV) != 0)
            envp[k++] = environ[i];
    envp[k++] = marker;
    envp[k] = NULL;

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, sv[1], CF__WFD_CHANNEL);
    posix_spawn_file_actions_adddup2(&fa, ctl_fd, CF__WFD_CONTROL);
    posix_spawn_file_actions_adddup2(&fa, w->in_fd[0], CF__WFD_IN0);
    posix_spawn_file_actions_adddup2(&fa, w->in_fd[1], CF__WFD_IN1);
    posix_spawn_file_actions_adddup2(&fa, ring_fd, CF__WFD_RING);
    /* Nothing else of ours: a worker holding a caller's descriptor open is a leak. */
    posix_spawn_file_actions_addclosefrom_np(&fa, CF__WFD_FIRST_FREE);
    posix_spawnattr_init(&attr);
    sigset_t none, reset;
    sigemptyset(&none);
    default_signals(&reset);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &reset);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    char argv0[32];
    snprintf(argv0, sizeof argv0, "%s-p%d", p->base.name, index);
    char *argv[] = {argv0, NULL};
    int err = posix_spawn(&w->pid, "/proc/self/exe", &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    free(envp);
    if (err) {
        errno = err;
        goto fail;
    }
    close(sv[1]);
    sv[1] = -1;
    close(ctl_fd);
    close(ring_fd);
    w->chan = sv[0];
    fcntl(w->chan, F_SETFL, O_NONBLOCK);
    w->pidfd = fd_above((int)syscall(SYS_pidfd_open, w->pid, 0), 16);
    if (w->pidfd >= 0)
        fcntl(w->pidfd, F_SETFD, FD_CLOEXEC);
    w->state = W_STARTING;
    w->serial = ++p->spawns;
    p->live++;
    if (watch(p, w->chan, EPOLLIN | EPOLLRDHUP, index, 0) != 0 ||
        (w->pidfd >= 0 && watch(p, w->pidfd, EPOLLIN, index, 1) != 0))
        kill(w->pid, SIGKILL); /* handled as a death before HELLO */

    cf__wire_msg c = {.index = (uint32_t)index,
                      .max_tasks = p->max_tasks,
                      .memory_limit = p->memory_limit,
                      .max_payload = p->max_payload,
                      .has_init = p->has_init,
                      .name = p->base.name,
                      .name_len = (uint32_t)strlen(p->base.name),
                      .init_arg = p->init_arg,
                      .init_arg_len = p->init_arg_len};
    if (p->has_init)
        c.ref = p->init_ref.ref;
    if (cf__wire_put(&w->wb, CF__W_CONFIG, &c) != 0)
        kill(w->pid, SIGKILL);
    flush(p, w);
    return 0;
fail:
    if (sv[1] >= 0)
        close(sv[1]);
    if (sv[0] >= 0)
        close(sv[0]);
    if (ctl_fd >= 0)
        close(ctl_fd);
    if (ring_fd >= 0)
        close(ring_fd);
    if (rc == CF_ESYS) {
        char msg[160];
        snprintf(msg, sizeof msg, "cannot start a worker process: %s", strerror(errno));
        cf__executor_break(&p->base, CF_ESYS, msg);
    } else {
        cf__executor_break(&p->base, rc, "cannot start a worker process: out of memory");
    }
    close_worker(p, w);
    return rc;
}

/* ---- writing ------------------------------------------------------------------------- */

/*
 * A worker whose channel is gone (it closed it, or a task did and reused the number) can
 * never get a task again, so it is dead to the pool: killed, and its death hands its
 * unstarted tasks to others.  An exiting worker closes its channel too; the kill then
 * changes nothing (the exit status is set before descriptors close).
 */
static void channel_lost(pworker *w)
{
    if (!w->chan_lost && w->pid > 0) {
        w->chan_lost = true;
        kill(w->pid, SIGKILL);
    }
}

/*
 * Writes what w's buffer holds; what does not fit waits for EPOLLOUT in the manager.  A
 * worker holding fewer than CF__SPARES_PER_WORKER spare result buffers gets kept ones with
 * the first bytes (spares.c); what was not sent goes back to the stash.
 */
static void flush(ppool *p, pworker *w)
{
    int fds[CF__SPARES_PER_WORKER];
    int nfds = 0;
    if (w->wb.sent < w->wb.len && w->spares_held < CF__SPARES_PER_WORKER)
        nfds = cf__spares_take(p->spares, w->serial, fds,
                               CF__SPARES_PER_WORKER - w->spares_held);
    while (w->wb.sent < w->wb.len) {
        ssize_t n = cf__chan_send(w->chan, w->wb.data + w->wb.sent, w->wb.len - w->wb.sent,
                                  fds, nfds, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            w->wb.sent += (size_t)n;
            w->spares_held += nfds;
            for (; nfds > 0; nfds--) /* the worker has its own copies now */
                close(fds[nfds - 1]);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            w->wb.sent = w->wb.len;
            channel_lost(w); /* its death gives its tasks to others */
            break;
        }
        if (!w->want_out) {
            w->want_out = true;
            wake_manager(p);
        }
        w->needs_flush = false; /* the manager owns the rest */
        goto unsent;
    }
    w->wb.len = w->wb.sent = 0;
    w->needs_flush = false;
unsent:
    for (int i = 0; i < nfds; i++) {
        struct stat st;
        if (fstat(fds[i], &st) == 0 &&
            cf__spares_keep(p->spares, (uint64_t)st.st_ino, w->serial))
            cf__spares_put(p->spares, fds[i]);
        else
            close(fds[i]);
    }
}

/* A submitter's flush: only workers whose first item since idle is unsent. */
static void flush_idle(ppool *p)
{
    for (int i = 0; i < p->base.workers; i++)
        if (p->w[i].needs_flush && p->w[i].state != W_FREE)
            flush(p, &p->w[i]);
}

/* The manager's flush: every worker with unsent bytes it is not already waiting on. */
static void flush_all(ppool *p)
{
    for (int i = 0; i < p->base.workers; i++) {
        pworker *w = &p->w[i];
        if (w->state != W_FREE && w->wb.len > w->wb.sent && !w->want_out)
            flush(p, w);
    }
}

static int depth(const ppool *p)
{
    if (p->kill_on_cancel)
        return 1;
    if (p->avg_task_ns <= 0)
        return 2;
    int64_t d = 1 + TARGET_BATCH_NS / p->avg_task_ns;
    return d < 2 ? 2 : d > DEPTH_MAX ? DEPTH_MAX : (int)d;
}

/* Has w's current task run HANDOVER_NS and more?  Then tasks behind it would wait. */
static bool long_running(const pworker *w, int64_t now)
{
    return w->count && atomic_load_explicit(&w->ctl->running_seq, memory_order_relaxed) &&
           now - atomic_load_explicit(&w->ctl->running_since, memory_order_relaxed) >
               HANDOVER_NS;
}

/*
 * The worker for the next task: an idle one if there is; else, while another worker is
 * starting or may still be started, none (the task waits for that worker rather than
 * queue behind a busy one: two tasks then run side by side, as on threads); else the
 * ready one with the fewest tasks, up to its depth, a worker behind a task that has run
 * HANDOVER_NS coming last.  idle_only: an idle worker or none.
 */
static pworker *pick_worker(ppool *p, bool big, bool idle_only)
{
    pworker *best = NULL;
    size_t limit = idle_only ? 1 : (size_t)depth(p), best_load = 0;
    bool coming = p->live < p->base.workers;
    int64_t now = 0; /* read once, and only if a busy worker is a candidate */
    for (int i = 0; i < p->base.workers; i++) {
        pworker *w = &p->w[i];
        coming |= w->state == W_STARTING;
        if (w->state != W_READY || w->count >= limit || w->kill_reason || w->stalled ||
            (p->max_tasks && w->handed >= p->max_tasks) ||
            (big && w->in_busy[0] && w->in_busy[1]))
            continue;
        /* Behind a long task, last: its next task would wait for as long as it runs. */
        if (w->count && !now)
            now = cf__now_ns();
        size_t load = w->count + (long_running(w, now) ? DEPTH_MAX : 0);
        if (!best || load < best_load) {
            best = w;
            best_load = load;
        }
    }
    if (best && best->count > 0 && coming)
        return NULL;
    return best;
}

static bool fn_sent(pworker *w, uint32_t id)
{
    return id / 8 < w->fn_sent_bytes && (w->fn_sent[id / 8] >> (id % 8) & 1);
}

/* Appends a task for item `it` (fn id, input) to w's buffer and its ring. */
static int write_item(ppool *p, pworker *w, item it, uint32_t id, const void *in, size_t len)
{
    if (!fn_sent(w, id)) {
        if (id / 8 >= w->fn_sent_bytes) {
            size_t n = id / 8 + 8;
            uint8_t *grown = realloc(w->fn_sent, n);
            if (!grown)
                return CF_ENOMEM;
            memset(grown + w->fn_sent_bytes, 0, n - w->fn_sent_bytes);
            w->fn_sent = grown;
            w->fn_sent_bytes = n;
        }
        cf__wire_msg d = {.fn_id = id, .ref = p->fns[id].ref.ref};
        if (cf__wire_put(&w->wb, CF__W_FUNC, &d))
            return CF_ENOMEM;
        w->fn_sent[id / 8] |= (uint8_t)(1u << (id % 8));
    }
    cf__wire_msg t = {.seq = it.seq, .fn_id = id, .data_len = len, .data = in};
    int64_t deadline = it.r ? cf__map_deadline(it.r->m) : CF__NO_DEADLINE;
    if (deadline != CF__NO_DEADLINE)
        t.not_after = (uint64_t)deadline; /* a position handed ahead never starts late */
    it.slot = -1;
    if (len > CF__INLINE_MAX) {
        int s = w->in_busy[0] ? 1 : 0;
        if (w->in_size[s] < len) {
            size_t size = len + len / 4;
            if (ftruncate(w->in_fd[s], (off_t)size) != 0)
                return CF_ENOMEM;
            uint8_t *map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, w->in_fd[s], 0);
            if (map == MAP_FAILED)
                return CF_ENOMEM;
            if (w->in_map[s])
                munmap(w->in_map[s], w->in_size[s]);
            w->in_map[s] = map;
            w->in_size[s] = size;
        }
        memcpy(w->in_map[s], in, len);
        w->in_busy[s] = true;
        it.slot = s;
        t.where = s == 0 ? CF__WHERE_IN0 : CF__WHERE_IN1;
        t.data = NULL;
    }
    if (cf__wire_put(&w->wb, CF__W_TASK, &t)) {
        if (it.slot >= 0)
            w->in_busy[it.slot] = false;
        return CF_ENOMEM;
    }
    if (w->count == w->cap) {
        item *grown = malloc(2 * w->cap * sizeof *grown);
        if (!grown)
            return CF_ENOMEM; /* the message is queued already: see the caller */
        for (size_t i = 0; i < w->count; i++)
            grown[i] = w->items[(w->head + i) % w->cap];
        free(w->items);
        w->items = grown;
        w->head = 0;
        w->cap *= 2;
    }
    if (w->count == 0) {
        w->needs_flush = true;
        w->front_since = cf__now_ns();
    }
    w->items[(w->head + w->count++) % w->cap] = it;
    w->handed++;
    return 0;
}

/* ---- runners ------------------------------------------------------------------------- */

static void runner_position_done(ppool *p, runner *r)
{
    r->outstanding--;
    if (r->outstanding == 0 && r->claiming_done) {
        defer(p, r->f, ACT_FINISH);
        free(r);
    }
}

static void publish_error(ppool *p, runner *r, size_t i, int outcome, int code,
                          const char *message)
{
    cf__map_publish(r->m, i, outcome, code, message ? strdup(message) : NULL, NULL, 0);
    runner_position_done(p, r);
}

/* Finishes item `it` with an error outcome (the code and message are the wait status and
 * its description for deaths). */
static void fail_item(ppool *p, item it, int outcome, int code, const char *message,
                      int act)
{
    if (it.r) {
        publish_error(p, it.r, it.index, outcome == CF_ECANCELLED ? CF_ECANCELLED : outcome,
                      code, message);
    } else if (it.f) {
        if (act == ACT_FINISH)
            cf__future_set_error(it.f, outcome, code, message ? strdup(message) : NULL);
        defer(p, it.f, act);
    }
}

/* ---- the queue ----------------------------------------------------------------------- */

static void push_tail(ppool *p, job *j)
{
    j->next = NULL;
    if (p->qtail)
        p->qtail->next = j;
    else
        p->qhead = j;
    p->qtail = j;
    p->qlen++;
}

static void push_head(ppool *p, job *j)
{
    j->next = p->qhead;
    p->qhead = j;
    if (!p->qtail)
        p->qtail = j;
    p->qlen++;
}

static job *pop_head(ppool *p)
{
    job *j = p->qhead;
    p->qhead = j->next;
    if (!p->qhead)
        p->qtail = NULL;
    p->qlen--;
    return j;
}

/* Positions of a job that will never be written: each gets `outcome`. */
static void drop_positions(ppool *p, job *j, int outcome)
{
    runner *r = j->r;
    if (j->main)
        r->claiming_done = true;
    size_t lo = j->lo, hi = j->hi;
    j->lo = j->hi;
    r->outstanding++; /* held while publishing, so the runner cannot finish midway */
    for (size_t i = lo; i < hi; i++)
        publish_error(p, r, i, outcome, outcome == CF_EBROKEN ? p->base.broken_code : 0,
                      outcome == CF_EBROKEN ? p->base.broken_message : NULL);
    runner_position_done(p, r);
}

/* Ends a job that will never run (shutdown with cancel, or a broken pool). */
static void drop_job(ppool *p, job *j, int outcome)
{
    if (j->f && j->started) { /* requeued after a death: RUNNING already */
        item it = {.f = j->f};
        fail_item(p, it, outcome, outcome == CF_EBROKEN ? p->base.broken_code : 0,
                  outcome == CF_EBROKEN ? p->base.broken_message : NULL,
                  outcome == CF_EBROKEN ? ACT_FINISH : ACT_CANCEL_RUNNING);
    } else if (j->f) {
        defer(p, j->f, outcome == CF_EBROKEN ? ACT_BROKEN : ACT_CANCEL_QUEUED);
    } else if (!j->r->started) {
        defer(p, j->r->f, outcome == CF_EBROKEN ? ACT_BROKEN : ACT_CANCEL_QUEUED);
        free(j->r);
    } else {
        drop_positions(p, j, outcome);
    }
    free(j);
}

static void drop_queue(ppool *p, int outcome)
{
    while (p->qhead)
        drop_job(p, pop_head(p), outcome);
}

/* A task ready to write.  False if it must not run (cancelled while queued). */
static bool start_task(ppool *p, job *j)
{
    if (j->started)
        return true;
    cf_future *f = j->f;
    if (f->bounded)
        cf__executor_unqueued(&p->base);
    if (!cf__future_hand(f)) {
        defer(p, f, ACT_RELEASE);
        return false;
    }
    j->started = true;
    return true;
}

/* Writes one queued job (or part of a runner's range) to a worker.  False when nothing
 * could be written now (no worker has room). */
static bool dispatch_one(ppool *p)
{
    job *j = p->qhead;
    uint32_t flags = atomic_load(&p->base.flags);
    if (flags & CF__EX_BROKEN) {
        drop_job(p, pop_head(p), CF_EBROKEN);
        return true;
    }
    if (j->f) {
        size_t len = j->f->extra->in_len;
        /* A task under max_queued is never handed ahead: it keeps its place in the bound
         * until a worker is free to start it ("tasks waiting to start"). */
        pworker *w = pick_worker(p, len > CF__INLINE_MAX, j->f->bounded);
        if (!w)
            return false;
        pop_head(p);
        if (!start_task(p, j)) {
            free(j);
            return true;
        }
        uint32_t id;
        item it = {.f = j->f, .seq = ++p->next_seq};
        int rc = fn_id_locked(p, j->f->task.bytes_fn, &id);
        if (!rc)
            rc = write_item(p, w, it, id, j->f->arg, len);
        if (rc) {
            cf__future_set_error(j->f, rc, 0, strdup("cannot hand the task to a worker"));
            defer(p, j->f, ACT_FINISH);
        } else {
            __atomic_store_n(&j->f->extra->pid, (long)w->pid, __ATOMIC_RELAXED);
            if (j->f->extra->recorder) /* refined from the worker's run time at the result */
                cf__events_started(j->f, (int)(w - p->w), cf__now_ns());
        }
        free(j);
        return true;
    }

    runner *r = j->r;
    if (!r->started) {
        if (!cf__future_start(r->f)) { /* cancelled while queued */
            pop_head(p);
            defer(p, r->f, ACT_RELEASE);
            free(r);
            free(j);
            return true;
        }
        r->started = true;
    }
    if (j->lo == j->hi) {
        size_t lo, hi;
        if (!j->main || !cf__map_claim(r->m, &r->pace, &lo, &hi)) {
            pop_head(p);
            if (j->main) {
                r->claiming_done = true;
                r->outstanding++;
                runner_position_done(p, r); /* finishes the runner if nothing is left */
            }
            free(j);
            return true;
        }
        j->lo = lo;
        j->hi = hi;
        r->outstanding += hi - lo;
    }
    if (cf__map_stopped(r->m)) {
        /* Freed or past its deadline: positions claimed and not written never start. */
        size_t n = j->hi - j->lo;
        j->lo = j->hi;
        if (j->main) {
            r->outstanding -= n; /* the next round claims nothing and finishes it */
            return true;
        }
        pop_head(p);
        free(j);
        r->outstanding -= n - 1;
        runner_position_done(p, r);
        return true;
    }
    const cf_function *fn = cf__map_function(r->m);
    cf_bytes first = cf__map_input(r->m, j->lo);
    pworker *w = pick_worker(p, first.len > CF__INLINE_MAX, false);
    if (!w)
        return false;
    uint32_t id;
    int rc = fn_id_locked(p, fn, &id);
    size_t end = j->hi - j->lo > RANGE_MAX ? j->lo + RANGE_MAX : j->hi;
    while (j->lo < end) {
        size_t i = j->lo;
        cf_bytes in = cf__map_input(r->m, i);
        if (in.len > p->max_payload) {
            j->lo++;
            char msg[128];
            snprintf(msg, sizeof msg, "input of %zu bytes exceeds the pool's max_payload",
                     in.len);
            publish_error(p, r, i, CF_ETOOBIG, 0, msg);
            continue;
        }
        if (in.len > CF__INLINE_MAX && w->in_busy[0] && w->in_busy[1])
            break; /* the rest goes out when a slot frees */
        item it = {.r = r, .index = i, .seq = ++p->next_seq};
        if (rc || (rc = write_item(p, w, it, id, in.data, in.len))) {
            j->lo++;
            publish_error(p, r, i, rc, 0, "cannot hand the position to a worker");
            continue;
        }
        j->lo++;
    }
    if (j->lo == j->hi && !j->main) {
        pop_head(p);
        free(j);
    }
    return true;
}

static void dispatch(ppool *p)
{
    while (p->qhead && dispatch_one(p))
        ;
}

static item *front(pworker *w);
static void requeue_item(ppool *p, item it, job **tail);
static void protocol_error(pworker *w, const char *why);

/*
 * Takes back every item of w its worker has not claimed (the start handshake, process.h):
 * they leave w's ring and go back to the head of the queue in their order, except
 * `cancel`, which is cancelled.  Returns how many left w; *cancelled tells whether
 * `cancel` was among them.
 */
static size_t take_back(ppool *p, pworker *w, cf_future *cancel, bool *cancelled)
{
    if (w->state != W_READY || !w->count || w->kill_reason || w->distrusted)
        return 0;
    uint64_t last = w->items[(w->head + w->count - 1) % w->cap].seq;
    uint64_t v = atomic_load(&w->ctl->start_word);
    do {
        if (v >> 1 >= last)
            return 0; /* all claimed: they run there */
    } while (!atomic_compare_exchange_weak(&w->ctl->start_word, &v, last << 1 | 1));
    uint64_t claimed = v >> 1;
    size_t keep = 0;
    while (keep < w->count && w->items[(w->head + keep) % w->cap].seq <= claimed)
        keep++;
    size_t n = w->count - keep;
    job *tail = NULL;
    for (size_t k = keep; k < w->count; k++) {
        item it = w->items[(w->head + k) % w->cap];
        if (it.slot >= 0)
            w->in_busy[it.slot] = false;
        w->handed--;
        if (cancel && it.f == cancel) {
            *cancelled = true;
            defer(p, it.f, ACT_CANCEL_RUNNING);
        } else if (it.f || it.r) {
            requeue_item(p, it, &tail);
        }
    }
    w->count = keep;
    return n;
}

/*
 * No task waits at a busy worker while another is idle, nor at a worker that does not
 * start it (SEMANTICS 30): with an idle worker, the tasks waiting behind one that has run
 * HANDOVER_NS are taken back and handed out again; a worker that has not started its next
 * task in STALL_NS (stopped, or starved of CPU) gives back its tasks and gets no more
 * until it shows life, and one that claimed it without starting it is killed.  Returns ms
 * until it should look again (-1: no need).
 */
static int rebalance(ppool *p)
{
    int64_t now = cf__now_ns(), next = INT64_MAX;
    bool idle = false, moved = false;
    for (int i = 0; i < p->base.workers; i++) {
        pworker *w = &p->w[i];
        if (w->state != W_READY)
            continue;
        if (w->stalled && atomic_load(&w->ctl->seen_seq) >= w->stalled)
            w->stalled = 0; /* alive again */
        idle |= !w->count && !w->kill_reason && !w->stalled &&
                !(p->max_tasks && w->handed >= p->max_tasks);
    }
    for (int i = 0; i < p->base.workers; i++) {
        pworker *w = &p->w[i];
        if (w->state != W_READY || !w->count || w->kill_reason || w->stalled)
            continue;
        item *fr = front(w);
        if (atomic_load(&w->ctl->started_seq) < fr->seq) { /* its next task not started */
            int64_t due = w->front_since + STALL_NS;
            if (due > now) {
                next = due < next ? due : next;
            } else {
                uint64_t last = w->items[(w->head + w->count - 1) % w->cap].seq;
                if (take_back(p, w, NULL, NULL)) {
                    w->stalled = last;
                    moved = true;
                } else if (!atomic_load(&w->ctl->running_seq)) {
                    /* Claimed and never started: its start word was written by a task
                     * (an honest worker starts what it claims at once). */
                    protocol_error(w, "worker claimed a task and never started it; killed");
                }
            }
            continue;
        }
        if (!idle || w->count < 2 || !atomic_load(&w->ctl->running_seq))
            continue;
        int64_t due = atomic_load(&w->ctl->running_since) + HANDOVER_NS;
        if (due > now)
            next = due < next ? due : next;
        else
            moved |= take_back(p, w, NULL, NULL) > 0;
    }
    if (moved)
        dispatch(p);
    if (next == INT64_MAX)
        return -1;
    int64_t ms = (next - now + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* ---- results --------------------------------------------------------------------------- */

static item *front(pworker *w)
{
    return w->count ? &w->items[w->head] : NULL;
}

static item pop_item(pworker *w)
{
    item it = w->items[w->head];
    w->head = (w->head + 1) % w->cap;
    w->count--;
    if (it.slot >= 0)
        w->in_busy[it.slot] = false;
    if (w->count)
        w->front_since = cf__now_ns();
    return it;
}

static void read_channel(pworker *w, bool *bad);

/*
 * Takes a result's payload: a copy of an inline one, or the memfd the worker passed for
 * it, sealed and mapped read-only (*mapped set).  NULL with *bad for a payload no honest
 * worker sends; NULL alone when out of memory.
 */
static void *take_payload(ppool *p, pworker *w, const cf__wire_msg *m, bool *mapped,
                          int *keep_fd, bool *bad)
{
    *mapped = false;
    *keep_fd = -1;
    if (m->where == CF__WHERE_INLINE) {
        void *copy = malloc((size_t)m->data_len);
        if (copy)
            memcpy(copy, m->data, (size_t)m->data_len);
        return copy;
    }
    /* The descriptor whose inode the RESULT names: any other one queued before it came
     * from a task (SCM_RIGHTS on its own channel) and is closed unread, so no result is
     * ever read from a file its task did not write. */
    struct stat st;
    int fd = -1;
    for (bool refilled = false; fd < 0;) {
        if (w->fdq_len == 0 && !refilled) {
            read_channel(w, bad); /* sent before the RESULT: it is there if it was sent */
            refilled = true;
        }
        if (w->fdq_len == 0) {
            *bad = true;
            return NULL;
        }
        fd = w->fdq[w->fdq_head];
        w->fdq_head = (w->fdq_head + 1) % FDQ_MAX;
        w->fdq_len--;
        if (fstat(fd, &st) != 0 || (uint64_t)st.st_ino != m->out_ino) {
            close(fd);
            fd = -1;
        }
    }
    if (w->spares_held > 0)
        w->spares_held--; /* a worker holding a spare writes its result into it */
    void *map = MAP_FAILED;
    /* Sealing fails on anything but a memfd.  Against shrinking, so the future's reader
     * never meets SIGBUS; not against writing, which could never be lifted: the buffer is
     * written again once its future lets go (why that is safe: spares.c). */
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < m->data_len ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) != 0)
        *bad = true;
    else
        map = mmap(NULL, (size_t)m->data_len, PROT_READ, MAP_SHARED, fd, 0);
    /* Reused only from a worker that has sent nothing wrong. */
    if (map != MAP_FAILED && !*bad && (size_t)st.st_size <= CF__SPARE_MAX &&
        cf__spares_keep(p->spares, (uint64_t)st.st_ino, w->serial))
        *keep_fd = fd;
    else
        close(fd);
    if (map == MAP_FAILED)
        return NULL;
    *mapped = true;
    return map;
}

static void on_result(ppool *p, pworker *w, const cf__wire_msg *m, bool *bad)
{
    item *fr = front(w);
    if (!fr || fr->seq != m->seq) {
        *bad = true;
        return;
    }
    /* Work gets done: workers that die while starting (killed from outside, say) are not
     * an endless restart loop. */
    p->start_failures = 0;
    void *value = NULL;
    bool mapped = false;
    int keep_fd = -1; /* the mapped value's memfd, to be reused once the value is let go */
    if (m->outcome == 0 && m->data_len) {
        value = take_payload(p, w, m, &mapped, &keep_fd, bad);
        if (*bad) {
            if (mapped)
                munmap(value, (size_t)m->data_len);
            return;
        }
    }
    int outcome = m->outcome;
    int code = m->code;
    char *text = m->text_len ? strndup(m->text, m->text_len) : NULL;
    if (outcome == 0 && m->data_len && !value) {
        outcome = CF_ENOMEM;
        free(text);
        text = strdup("out of memory for the result in the parent");
    }
    p->avg_task_ns = p->avg_task_ns ? p->avg_task_ns - p->avg_task_ns / 8 +
                                          (int64_t)(m->run_ns / 8)
                                    : (int64_t)m->run_ns + 1;
    item it = pop_item(w);
    if (it.f)
        cf__future_started(it.f);
    if (it.r && mapped) {
        /* A map's slots own malloc'd values: the rare big map result is copied once. */
        void *copy = malloc((size_t)m->data_len);
        if (copy)
            memcpy(copy, value, (size_t)m->data_len);
        munmap(value, (size_t)m->data_len);
        if (keep_fd >= 0)
            cf__spares_put(p->spares, keep_fd);
        keep_fd = -1;
        value = copy;
        mapped = false;
        if (!copy) {
            outcome = CF_ENOMEM;
            free(text);
            text = strdup("out of memory for the result in the parent");
        }
    }
    if (it.r) {
        cf__map_publish(it.r->m, it.index, outcome, code, text, value,
                        outcome ? 0 : (size_t)m->data_len);
        runner_position_done(p, it.r);
    } else if (it.f) {
        cf_future *f = it.f;
        if (outcome) {
            cf__future_set_error(f, outcome, code, text);
        } else {
            free(text);
            f->value = value;
            f->extra->value_len = (size_t)m->data_len;
            f->extra->value_mapped = mapped;
            if (keep_fd >= 0) {
                f->extra->value_home = cf__spares_home(p->spares);
                f->extra->value_fd = keep_fd;
            }
        }
        if (f->extra->recorder) {
            /* The worker's own clock (the system-wide monotonic one): exact, so one
             * worker's tasks never overlap.  Bounded by what the parent saw, in case the
             * worker lies. */
            int64_t now = cf__now_ns(), run = (int64_t)(m->run_ns < (uint64_t)now ? m->run_ns : 0);
            int64_t start = (int64_t)m->start_ns;
            if (start < f->extra->submitted_ns || start > now - run)
                start = now - run;
            cf__events_ran(f, (int)(w - p->w), start, start + run);
        }
        defer(p, f, ACT_FINISH);
    } else {
        free(text);
        if (mapped)
            munmap(value, (size_t)m->data_len);
        else
            free(value);
        if (keep_fd >= 0)
            cf__spares_put(p->spares, keep_fd);
    }
}

static void on_hello(ppool *p, pworker *w, const cf__wire_msg *m, bool *bad)
{
    if (w->state != W_STARTING || m->pid != w->pid) {
        *bad = true;
        return;
    }
    if (m->outcome) {
        char *text = m->text_len ? strndup(m->text, m->text_len) : NULL;
        cf__executor_break(&p->base, m->code, text ? text : "initializer failed");
        free(text);
        drop_queue(p, CF_EBROKEN);
        return;
    }
    w->state = W_READY;
    p->start_failures = 0;
}

/* A malformed message: the worker is killed, and its death is charged to the item whose
 * answer it was. */
static void protocol_error(pworker *w, const char *why)
{
    if (w->distrusted)
        return;
    w->distrusted = true;
    w->distrust_why = why;
    w->kill_reason = K_PROTO;
    item *fr = front(w);
    w->kill_seq = fr ? fr->seq : 0;
    kill(w->pid, SIGKILL);
}

/* Takes every complete message the worker has published in its ring. */
static void drain_ring(ppool *p, pworker *w)
{
    if (w->distrusted)
        return; /* nothing more from it is believed */
    uint64_t head = atomic_load_explicit(&w->ctl->ring_head, memory_order_acquire);
    uint64_t avail = head - w->tail;
    if (avail == 0)
        return;
    /* A head no honest worker writes (a task scribbled on the control block): the whole
     * messages the ring holds are still read, up to the first that is not one, so results
     * published before the scribble are kept; what follows is malformed. */
    bool bad = false, truncated = false;
    if (avail > CF__RING_SIZE) {
        avail = CF__RING_SIZE;
        w->wild_head = true;
    }
    while (avail && !bad) {
        cf__wire_msg m;
        long used = cf__wire_decode(w->ring + (w->tail & (CF__RING_SIZE - 1)), (size_t)avail, 1,
                                    p->max_payload, &m);
        if (used <= 0) {
            /* A worker publishes whole messages (one head store each, far smaller than the
             * ring), so a partial one is as malformed as garbage, and is never waited on. */
            truncated = used == 0;
            bad = true;
            break;
        }
        if (m.type == CF__W_HELLO)
            on_hello(p, w, &m, &bad);
        else if (w->state != W_READY)
            bad = true;
        else
            on_result(p, w, &m, &bad);
        if (!bad) {
            w->tail += (uint64_t)used;
            avail -= (uint64_t)used;
        }
    }
    atomic_store(&w->ctl->ring_tail, w->tail); /* seq_cst: before reading worker_waits */
    if (atomic_load(&w->ctl->worker_waits)) {
        atomic_fetch_add(&w->ctl->tail_moved, 1);
        syscall(SYS_futex, &w->ctl->tail_moved, FUTEX_WAKE, 1, NULL, NULL, 0);
    }
    if (bad)
        protocol_error(w, truncated ? "truncated message from the worker; killed"
                                    : "malformed message from the worker; killed");
}

typedef struct fd_sink {
    pworker *w;
    bool *bad;
} fd_sink;

/* A big result's descriptor, queued for its RESULT. */
static void queue_result_fd(void *arg, int fd)
{
    fd_sink *sink = arg;
    pworker *w = sink->w;
    if (w->fdq_len == FDQ_MAX) { /* more than any honest worker sends ahead */
        close(fd);
        *sink->bad = true;
        return;
    }
    w->fdq[(w->fdq_head + w->fdq_len++) % FDQ_MAX] = fd;
}

/* Reads the channel: doorbells, the descriptors of big results (queued for their
 * RESULTs), and its end, which means the worker is going. */
static void read_channel(pworker *w, bool *bad)
{
    char bytes[256];
    fd_sink sink = {w, bad};
    for (;;) {
        ssize_t n = cf__chan_recv(w->chan, bytes, sizeof bytes, MSG_DONTWAIT, queue_result_fd,
                                  &sink, bad);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                w->eof = true;
                channel_lost(w);
            }
            return;
        }
        if (n < (ssize_t)sizeof bytes)
            return; /* drained: no need for the EAGAIN round trip */
    }
}

/* Reads the channel and the ring. */
static void read_worker(ppool *p, pworker *w)
{
    bool bad = false;
    read_channel(w, &bad);
    if (bad)
        protocol_error(w, "malformed message from the worker; killed");
    drain_ring(p, w);
}

/* ---- deaths -------------------------------------------------------------------------- */

static void requeue_item(ppool *p, item it, job **tail)
{
    job *j = calloc(1, sizeof *j);
    if (!j) {
        fail_item(p, it, CF_ENOMEM, 0, "out of memory requeueing a task", ACT_FINISH);
        return;
    }
    j->f = it.f;
    j->r = it.r;
    j->lo = it.index;
    j->hi = it.index + 1;
    j->started = true;
    /* Keep the order: after the ones requeued before it from this worker. */
    if (*tail) {
        j->next = (*tail)->next;
        (*tail)->next = j;
        if (p->qtail == *tail)
            p->qtail = j;
        p->qlen++;
    } else {
        push_head(p, j);
    }
    *tail = j;
}

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

/*
 * The wait status of a worker that has died.  The kernel's, when this process can still
 * collect it (through the pidfd: exact even if the pid was reused); else what is known
 * without it: the pool's own SIGKILL (time limit, cancel, shutdown, distrust), or the
 * fatal signal or exit the worker noted in its control block; else STATUS_UNKNOWN,
 * never an invented "exited with status 0".
 */
static int wait_status(pworker *w)
{
    siginfo_t si;
    memset(&si, 0, sizeof si);
    int rc;
    if (w->pidfd >= 0)
        while ((rc = waitid((idtype_t)P_PIDFD, (id_t)w->pidfd, &si, WEXITED)) < 0 &&
               errno == EINTR)
            ;
    else
        while ((rc = waitid(P_PID, (id_t)w->pid, &si, WEXITED)) < 0 && errno == EINTR)
            ;
    if (rc == 0 && si.si_pid != 0) {
        if (si.si_code == CLD_EXITED)
            return (si.si_status & 0xff) << 8;
        return (si.si_status & 0x7f) | (si.si_code == CLD_DUMPED ? 0x80 : 0);
    }
    if (w->kill_reason)
        return SIGKILL;
    int sig = atomic_load(&w->ctl->fatal_signal);
    if (sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGABRT)
        return sig;
    if (atomic_load(&w->ctl->exited))
        return (atomic_load(&w->ctl->exit_code) & 0xff) << 8;
    return STATUS_UNKNOWN;
}

static void reap(ppool *p, int index)
{
    pworker *w = &p->w[index];
    if (w->kill_reason != K_PROTO)
        read_worker(p, w); /* whatever it finished before dying counts */
    int status = wait_status(w);
    bool starting = w->state == W_STARTING;
    uint64_t running = atomic_load(&w->ctl->running_seq);
    /* Every item up to the last one the worker started ran (its result, if any, was not
     * read: the worker died first, or was distrusted); items after it never started.  The
     * ring was drained above, so a worker that is still believed answered everything
     * before the first item left: at most that one ran unanswered, whatever a task wrote
     * into started_seq.  Only a worker distrusted for a malformed message (not for a wild
     * ring head) may have run later items whose results cannot be read; for it the
     * control block's word decides, among its own items. */
    uint64_t started = atomic_load(&w->ctl->started_seq);
    item *first = front(w);
    if ((!w->distrusted || w->wild_head) && first && started > first->seq)
        started = first->seq;
    int outcome = CF_ELOST;
    const char *what = "worker lost";
    if (w->kill_reason == K_PROTO) {
        outcome = CF_EPROTO;
        what = w->distrust_why;
    } else if (w->kill_reason == K_TIMEOUT && running == w->kill_seq) {
        outcome = CF_ETASKTIMEOUT;
        what = "task exceeded its time limit";
    } else if (w->chan_lost && !w->kill_reason && WIFSIGNALED(status) &&
               WTERMSIG(status) == SIGKILL) {
        what = "worker lost (its channel to the pool closed while it ran; killed)";
    } else if (p->memory_limit) {
        what = "worker lost (it had a memory limit)";
    }
    char *message = describe_status(w->pid, status, what);

    /* Deaths before HELLO, whatever killed the worker (an exit, a crash, or a SIGKILL from
     * the OOM killer or a person): START_FAILURES_MAX in a row break the pool, else it
     * would start workers for ever.  Only the pool's own kills do not count. */
    if (starting && w->kill_reason != K_SHUTDOWN && w->kill_reason != K_CANCEL &&
        ++p->start_failures >= START_FAILURES_MAX) {
        char why[384];
        snprintf(why, sizeof why, "%s; %d workers in a row died before they were ready",
                 message ? message : "worker lost", START_FAILURES_MAX);
        cf__executor_break(&p->base, status, why);
        drop_queue(p, CF_EBROKEN);
    }
    job *tail = NULL;
    uint32_t flags = atomic_load(&p->base.flags);
    while (w->count) {
        item it = pop_item(w);
        if (!it.f && !it.r)
            continue; /* a task already cancelled by kill_on_cancel */
        if (w->kill_reason == K_SHUTDOWN)
            fail_item(p, it, CF_ECANCELLED, 0, NULL, ACT_CANCEL_RUNNING);
        else if (it.seq <= started) {
            if (it.f)
                cf__future_started(it.f);
            fail_item(p, it, outcome, status, message, ACT_FINISH);
        }
        else if (flags & CF__EX_BROKEN)
            fail_item(p, it, CF_EBROKEN, p->base.broken_code, p->base.broken_message,
                      ACT_FINISH);
        else if (flags & CF__EX_CANCEL_PENDING)
            fail_item(p, it, CF_ECANCELLED, 0, NULL, ACT_CANCEL_RUNNING);
        else
            requeue_item(p, it, &tail);
    }
    free(message);
    close_worker(p, w);
    p->live--;
}

/*
 * Kills w for the item `seq` (running, or for a cancel, not started yet), unless the
 * worker has moved on to another task meanwhile: the kill handshake of process.h.  Under
 * the lock.  Returns whether it killed.
 */
static bool request_kill(pworker *w, uint64_t seq, int reason)
{
    atomic_store(&w->ctl->kill_pending, 1); /* seq_cst: before reading running_seq */
    uint64_t running = atomic_load(&w->ctl->running_seq);
    if (running == seq || (reason == K_CANCEL && running == 0)) {
        w->kill_reason = reason;
        w->kill_seq = seq;
        kill(w->pid, SIGKILL);
        return true;
    }
    atomic_store(&w->ctl->kill_pending, 0);
    syscall(SYS_futex, &w->ctl->kill_pending, FUTEX_WAKE, 1, NULL, NULL, 0);
    return false;
}

/* ---- the manager ----------------------------------------------------------------------- */

static bool quiet(ppool *p)
{
    if (p->qhead)
        return false;
    for (int i = 0; i < p->base.workers; i++)
        if (p->w[i].count)
            return false;
    return true;
}

static void spawn_needed(ppool *p)
{
    if (atomic_load(&p->base.flags) & CF__EX_BROKEN)
        return;
    size_t starting = 0;
    for (int i = 0; i < p->base.workers; i++)
        starting += p->w[i].state == W_STARTING;
    size_t want = p->qlen > starting ? p->qlen - starting : 0;
    for (int i = 0; i < p->base.workers && want > 0 && p->live < p->base.workers; i++) {
        if (p->w[i].state != W_FREE)
            continue;
        if (spawn_locked(p, &p->w[i], i) != 0) {
            drop_queue(p, CF_EBROKEN);
            return;
        }
        want--;
    }
}

/* Kills workers past their task's time limit; returns ms until the next check (-1: none). */
static int check_timeouts(ppool *p)
{
    if (p->timeout_ns <= 0)
        return -1;
    int64_t now = cf__now_ns(), next = INT64_MAX;
    for (int i = 0; i < p->base.workers; i++) {
        pworker *w = &p->w[i];
        if (w->state != W_READY || !w->count || w->kill_reason)
            continue;
        uint64_t seq = atomic_load(&w->ctl->running_seq);
        int64_t since = atomic_load(&w->ctl->running_since);
        if (seq == 0 || since > now) {
            /* It will start one soon and cannot tell us when: look again shortly. */
            int64_t again = now + (p->timeout_ns / 16 > 1000000 ? p->timeout_ns / 16 : 1000000);
            next = again < next ? again : next;
            continue;
        }
        int64_t deadline = since + p->timeout_ns;
        if (deadline <= now) {
            request_kill(w, seq, K_TIMEOUT);
        } else if (deadline < next) {
            next = deadline;
        }
    }
    if (next == INT64_MAX)
        return -1;
    int64_t ms = (next - now + 999999) / 1000000;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static void update_out_interest(ppool *p, int index)
{
    pworker *w = &p->w[index];
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (w->want_out ? EPOLLOUT : 0)};
    ev.data.u64 = (uint64_t)w->gen << 32 | (uint64_t)index << 2;
    epoll_ctl(p->epfd, EPOLL_CTL_MOD, w->chan, &ev);
}

static void handle_event(ppool *p, const struct epoll_event *ev)
{
    if (ev->data.u64 == UINT64_MAX) {
        uint64_t v;
        ssize_t rc = read(p->evfd, &v, sizeof v);
        (void)rc;
        p->wake_pending = false;
        for (int i = 0; i < p->base.workers; i++)
            if (p->w[i].state != W_FREE && p->w[i].want_out)
                update_out_interest(p, i);
        return;
    }
    int index = (int)(ev->data.u64 >> 2 & 0x3fffffff);
    uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
    int kind = (int)(ev->data.u64 & 3);
    if (index >= p->base.workers)
        return;
    pworker *w = &p->w[index];
    if (w->state == W_FREE || w->gen != gen)
        return; /* about a worker already gone */
    if (kind == 1) {
        reap(p, index);
        return;
    }
    if (ev->events & EPOLLOUT) {
        flush(p, w);
        if (w->wb.len == 0) {
            w->want_out = false;
            update_out_interest(p, index);
        }
    }
    if (ev->events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        read_worker(p, w);
    if (w->eof && w->pidfd < 0)
        reap(p, index); /* no pidfd: the closed channel is the news */
    else if (w->eof)
        epoll_ctl(p->epfd, EPOLL_CTL_DEL, w->chan, NULL);
}

/*
 * Announces (sleeping) or withdraws the manager's sleep in every worker's control block.
 * Announcing returns false if a ring already holds something (then it must not sleep):
 * the store of parent_sleeps and the load of ring_head here, and the worker's store of
 * ring_head and load of parent_sleeps, are sequentially consistent, so either the worker
 * rings the doorbell or the manager sees its message.
 */
static bool may_sleep(ppool *p, bool sleeping)
{
    bool empty = true;
    for (int i = 0; i < p->base.workers; i++) {
        pworker *w = &p->w[i];
        if (w->state == W_FREE)
            continue;
        atomic_store(&w->ctl->parent_sleeps, sleeping);
        if (sleeping && atomic_load(&w->ctl->ring_head) != w->tail && !w->distrusted)
            empty = false;
    }
    return empty;
}

/* Does any worker's ring hold something?  Manager only: workers' slots change only in
 * this thread, so it may look without the lock. */
static bool rings_ready(ppool *p)
{
    for (int i = 0; i < p->base.workers; i++) {
        pworker *w = &p->w[i];
        if (w->state != W_FREE && !w->distrusted &&
            atomic_load_explicit(&w->ctl->ring_head, memory_order_relaxed) != w->tail)
            return true;
    }
    return false;
}

/*
 * With tasks in flight, the manager watches the rings for a few microseconds before it
 * sleeps: a short task's result then costs neither the worker's doorbell nor the
 * manager's wake-up.  The budget is the thread's adaptive one (park.c): it shrinks when
 * results are slow to come, so long tasks do not pay for it in CPU.
 */
static bool spin_for_results(ppool *p)
{
    cf__spin s = {0};
    bool ready;
    while (!(ready = rings_ready(p)) && !atomic_load(&p->wake_pending) &&
           cf__spin_step(&s, MANAGER_SPIN_NS))
        ;
    cf__spin_end(ready);
    return ready;
}

static void *manager_main(void *arg)
{
    ppool *p = arg;
    char name[16];
    snprintf(name, sizeof name, "%s-mgr", p->base.name);
    pthread_setname_np(pthread_self(), name);
    struct epoll_event evs[64];
    pthread_mutex_lock(&p->lock);
    for (;;) {
        uint32_t flags = atomic_load(&p->base.flags);
        if (flags & CF__EX_CANCEL_PENDING)
            drop_queue(p, CF_ECANCELLED);
        dispatch(p);
        int look_again = rebalance(p);
        spawn_needed(p);
        if ((flags & CF__EX_SHUTDOWN) && quiet(p)) {
            /* Let the workers go: each sees the channel close and exits. */
            bool any = false;
            for (int i = 0; i < p->base.workers; i++) {
                pworker *w = &p->w[i];
                if (w->state == W_FREE)
                    continue;
                any = true;
                if (w->state == W_STARTING && !w->kill_reason) {
                    w->kill_reason = K_SHUTDOWN;
                    kill(w->pid, SIGKILL);
                }
                if (w->chan >= 0 && !w->eof) {
                    epoll_ctl(p->epfd, EPOLL_CTL_DEL, w->chan, NULL);
                    shutdown(w->chan, SHUT_RDWR);
                    w->eof = true;
                    if (w->pidfd < 0)
                        reap(p, i);
                }
            }
            if (!any)
                break;
        }
        flush_all(p);
        bool in_flight = !quiet(p);
        unlock_and_finish(p);
        /* Results in the rings are taken without a system call, but not for ever without
         * one: deaths (pidfds) and time limits are only seen below, and a stream of short
         * results from the other workers once hid a death for a second and more. */
        bool ready = in_flight && spin_for_results(p);
        pthread_mutex_lock(&p->lock);
        uint64_t now = cf__now_ns();
        if (ready && now - p->polled_ns < POLL_EVERY_NS) {
            for (int i = 0; i < p->base.workers; i++)
                if (p->w[i].state != W_FREE)
                    drain_ring(p, &p->w[i]);
            continue;
        }
        p->polled_ns = now;
        int timeout = check_timeouts(p);
        int trim = cf__spares_trim(p->spares, now);
        if (trim >= 0 && (timeout < 0 || trim < timeout))
            timeout = trim;
        if (look_again >= 0 && (timeout < 0 || look_again < timeout))
            timeout = look_again;
        if (ready || (timeout != 0 && !may_sleep(p, true)))
            timeout = 0;
        unlock_and_finish(p);
        int n = epoll_wait(p->epfd, evs, 64, timeout);
        pthread_mutex_lock(&p->lock);
        may_sleep(p, false);
        for (int i = 0; i < n; i++)
            handle_event(p, &evs[i]);
        for (int i = 0; i < p->base.workers; i++)
            if (p->w[i].state != W_FREE)
                drain_ring(p, &p->w[i]);
    }
    unlock_and_finish(p);
    return NULL;
}

/* ---- backend operations ---------------------------------------------------------------- */

static void pool_free_parts(ppool *p)
{
    cf__spares_close(p->spares); /* first: a release elsewhere may write the eventfd */
    if (p->epfd >= 0)
        close(p->epfd);
    if (p->evfd >= 0)
        close(p->evfd);
    free(p->w);
    free(p->fns);
    free(p->init_arg);
    pthread_mutex_destroy(&p->lock);
    cf__join_destroy(&p->join);
}

static int pool_start(cf_executor *ex, const cf_executor_opts *opts)
{
    ppool *p = (ppool *)ex;
    if (!atomic_load(&cf__init_called))
        return CF_ENOINIT;
    if (opts->initializer_arg_len > CF__INLINE_MAX ||
        (opts->initializer_arg_len && !opts->initializer_arg))
        return CF_EINVAL;
    pthread_mutex_init(&p->lock, NULL);
    cf__join_init(&p->join);
    p->epfd = p->evfd = -1;
    p->timeout_ns = (int64_t)(opts->task_timeout * 1e9);
    p->memory_limit = opts->memory_limit;
    p->max_payload = opts->max_payload ? opts->max_payload : CF_PAYLOAD_DEFAULT;
    p->max_tasks = opts->max_tasks_per_worker;
    p->kill_on_cancel = opts->kill_on_cancel != 0;
    int rc = CF_ENOMEM;
    if (opts->initializer) {
        rc = CF_ENOFUNC; /* a bare address: a worker never calls one (cf_initializer) */
        goto fail;
    }
    if (opts->named_initializer) {
        p->has_init = true;
        if ((rc = cf__modref_describe(opts->named_initializer, &p->init_ref)))
            goto fail;
        rc = CF_ENOMEM;
        p->init_arg_len = (uint32_t)opts->initializer_arg_len;
        if (p->init_arg_len) {
            if (!(p->init_arg = malloc(p->init_arg_len)))
                goto fail;
            memcpy(p->init_arg, opts->initializer_arg, p->init_arg_len);
        }
    }
    p->w = calloc((size_t)ex->workers, sizeof *p->w);
    if (!p->w || cf__spares_new(&p->spares, wake_manager_from_stash, p))
        goto fail;
    for (int i = 0; i < ex->workers; i++) {
        p->w[i].chan = p->w[i].pidfd = -1;
        p->w[i].in_fd[0] = p->w[i].in_fd[1] = -1;
    }
    rc = CF_ESYS;
    p->epfd = fd_above(epoll_create1(EPOLL_CLOEXEC), 16);
    p->evfd = fd_above(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), 16);
    if (p->epfd < 0 || p->evfd < 0)
        goto fail;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, p->evfd, &ev) != 0)
        goto fail;
    /* The manager must not take signals meant for the program. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&p->manager, NULL, manager_main, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err)
        goto fail;
    p->manager_running = true;
    return 0;
fail:
    pool_free_parts(p);
    return rc;
}

static int pool_check_bytes(cf_executor *ex, const cf_function *fn, size_t len)
{
    ppool *p = (ppool *)ex;
    if (len > p->max_payload)
        return CF_ETOOBIG;
    uint32_t id;
    pthread_mutex_lock(&p->lock);
    int rc = fn_id_locked(p, fn, &id);
    pthread_mutex_unlock(&p->lock);
    return rc;
}

static int pool_submit(cf_executor *ex, cf_future *f)
{
    ppool *p = (ppool *)ex;
    job *j = calloc(1, sizeof *j);
    if (!j)
        return CF_ENOMEM;
    if (f->kind == CF__TASK_MAP_RUNNER) {
        runner *r = calloc(1, sizeof *r);
        if (!r) {
            free(j);
            return CF_ENOMEM;
        }
        r->f = f;
        r->m = f->arg;
        j->r = r;
        j->main = true;
    } else {
        j->f = f;
    }
    pthread_mutex_lock(&p->lock);
    push_tail(p, j);
    dispatch(p);
    flush_idle(p);
    if (p->qhead && p->live < p->base.workers)
        wake_manager(p); /* a worker to start */
    unlock_and_finish(p);
    return 0;
}

/* Has a worker claimed f, a future handed ahead (the start handshake, process.h)?  Not
 * found in any ring: back in the queue, or failing without having started. */
static bool pool_task_started(cf_executor *ex, cf_future *f)
{
    ppool *p = (ppool *)ex;
    bool started = false;
    pthread_mutex_lock(&p->lock);
    if (!(atomic_load(&f->state) & CF__ST_HANDED)) {
        started = true;
    } else {
        for (int i = 0; i < p->base.workers && !started; i++) {
            pworker *w = &p->w[i];
            for (size_t k = 0; k < w->count; k++) {
                item *it = &w->items[(w->head + k) % w->cap];
                if (it->f != f)
                    continue;
                started = it->seq <= atomic_load(&w->ctl->start_word) >> 1;
                break;
            }
        }
        if (started)
            cf__future_started(f);
    }
    pthread_mutex_unlock(&p->lock);
    return started;
}

/*
 * A RUNNING future: written to a worker (handed ahead or really running), or back in the
 * queue after its worker died.  Not started yet: taken back and cancelled (its worker's
 * other unstarted tasks go out again).  Started: with kill_on_cancel its worker is killed,
 * else CF_EBUSY.
 */
static int pool_cancel_running(cf_executor *ex, cf_future *f)
{
    ppool *p = (ppool *)ex;
    int rc = CF_EBUSY;
    bool moved = false;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < p->base.workers && rc; i++) {
        pworker *w = &p->w[i];
        for (size_t k = 0; k < w->count; k++) {
            item *it = &w->items[(w->head + k) % w->cap];
            if (it->f != f)
                continue;
            bool cancelled = false;
            moved = take_back(p, w, f, &cancelled) > 0;
            if (cancelled) {
                rc = 0;
                break;
            }
            /* Started, or about to.  With kill_on_cancel a worker holds one task (depth
             * 1): this one.  Refused only if it finished meanwhile. */
            if (!p->kill_on_cancel || (!w->kill_reason && !request_kill(w, it->seq, K_CANCEL)))
                break;
            it->f = NULL; /* finished here; its death charges nobody for it */
            defer(p, f, ACT_CANCEL_RUNNING);
            rc = 0;
            break;
        }
    }
    /* Or back in the queue after its worker died, waiting for another. */
    for (job **link = &p->qhead; rc && *link; link = &(*link)->next) {
        job *j = *link;
        if (j->f != f)
            continue;
        *link = j->next;
        if (p->qtail == j)
            p->qtail = NULL;
        for (job *t = p->qhead; t; t = t->next)
            p->qtail = t;
        p->qlen--;
        free(j);
        defer(p, f, ACT_CANCEL_RUNNING);
        rc = 0;
        break; /* link now points at the next job, or at NULL */
    }
    if (moved)
        wake_manager(p); /* the others taken back go out again */
    unlock_and_finish(p);
    if (rc)
        return cf_future_state(f) == CF_CANCELLED ? 0 : CF_EBUSY;
    return 0;
}

static void join_manager(ppool *p)
{
    pthread_mutex_lock(&p->lock);
    bool mine = cf__join_claim(&p->join, &p->lock);
    pthread_mutex_unlock(&p->lock);
    if (!mine)
        return;
    pthread_join(p->manager, NULL);
    cf__join_done(&p->join, &p->lock);
}

static int pool_shutdown(cf_executor *ex, unsigned flags)
{
    ppool *p = (ppool *)ex;
    pthread_mutex_lock(&p->lock);
    if (flags & CF_SHUTDOWN_CANCEL_PENDING) {
        /* Tasks handed ahead and not started are pending too: back to the queue, and
         * cancelled with it. */
        for (int i = 0; i < p->base.workers; i++)
            take_back(p, &p->w[i], NULL, NULL);
        drop_queue(p, CF_ECANCELLED);
    }
    if (flags & CF_SHUTDOWN_KILL)
        for (int i = 0; i < p->base.workers; i++) {
            pworker *w = &p->w[i];
            if (w->state != W_FREE && w->kill_reason != K_SHUTDOWN) {
                w->kill_reason = K_SHUTDOWN;
                kill(w->pid, SIGKILL);
            }
        }
    wake_manager(p);
    unlock_and_finish(p);
    if (flags & CF_SHUTDOWN_WAIT)
        join_manager(p);
    return 0;
}

/* The manager runs the futures' callbacks: one cannot wait for the manager to end. */
static bool pool_own_thread(cf_executor *ex)
{
    return pthread_equal(pthread_self(), ((ppool *)ex)->manager);
}

/* Positions of m written to a worker and not started must not start: every worker holding
 * some gives back what it has not claimed (take_back); back in the queue, m's positions
 * are dropped (dispatch_one: the map has stopped) and the others go out again. */
static void pool_map_stopped(cf_executor *ex, cf_map *m)
{
    ppool *p = (ppool *)ex;
    bool moved = false;
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < p->base.workers; i++) {
        pworker *w = &p->w[i];
        for (size_t k = 0; w->state == W_READY && k < w->count; k++)
            if (w->items[(w->head + k) % w->cap].r &&
                w->items[(w->head + k) % w->cap].r->m == m) {
                moved |= take_back(p, w, NULL, NULL) > 0;
                break;
            }
    }
    if (moved)
        wake_manager(p);
    unlock_and_finish(p);
}

static void pool_destroy(cf_executor *ex)
{
    ppool *p = (ppool *)ex;
    join_manager(p);
    /* Left in the queue only: tasks their submitters took back at shutdown. */
    while (p->qhead) {
        job *j = pop_head(p);
        if (j->f)
            cf_future_release(j->f);
        else {
            cf_future_release(j->r->f);
            free(j->r);
        }
        free(j);
    }
    pool_free_parts(p);
}

const cf__backend cf__processes_backend = {
    .name = "processes",
    .id = CF_BACKEND_PROCESSES,
    .pointer_tasks = false,
    .struct_size = sizeof(ppool),
    .start = pool_start,
    .submit = pool_submit,
    .shutdown = pool_shutdown,
    .own_thread = pool_own_thread,
    .map_stopped = pool_map_stopped,
    .destroy = pool_destroy,
    .check_bytes = pool_check_bytes,
    .cancel_running = pool_cancel_running,
    .task_started = pool_task_started,
};
