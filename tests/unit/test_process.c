/*
 * test_process.c -- the process pool's faults and limits (issue #3; SEMANTICS 12-17 and
 * 21-26 on CF_BACKEND_PROCESSES).
 *
 * Each fault gets its own test: a task that segfaults, aborts, exits, loops past its time
 * limit, writes garbage or a truncated message; a worker killed from outside while busy,
 * idle or still starting; results and inputs over max_payload; initializers that fail or
 * crash; shutdown in each mode while tasks run.  After each, the affected future holds its
 * own outcome with the pid and the wait status, every other future has its right value
 * (each task ran exactly once), the pool still serves new tasks, and once the executor is
 * freed this process has no child left (live or zombie) and as many descriptors as before.
 *
 * Tasks run in other processes, so the test and its tasks meet on a "board": a small file
 * under /dev/shm, mapped by both (workers inherit no descriptors, so a task opens it by
 * name).  Tasks record their pid and that they ran, announce that they reached their gate,
 * and wait there (futex on the shared page, always with a time limit) until the test
 * releases them.  Every board is unlinked at exit, failed tests included.
 *
 * Every task is one function, run_cmd, driven by a small command (cmd): the fault to
 * commit or the value to compute.
 */
#include "testutil.h"
#include "process.h" /* the control block's layout, for OP_CLAIM_AHEAD */

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <spawn.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* The library's test hook (src/processes/process.h, a hidden symbol of the static library
 * these tests link): from inside a task, writes raw bytes where the worker's messages to
 * the parent go, as a broken worker would. */
int cf__worker_send_raw(const void *bytes, size_t len);

/* ---- the board: memory shared with the tasks -------------------------------------- */

#define SLOTS 64

typedef struct board {
    _Atomic uint32_t started;  /* tasks that reached their gate (futex word) */
    _Atomic uint32_t release;  /* non-zero: gated tasks go on (futex word) */
    _Atomic uint32_t passed;   /* gated tasks that went through their gate */
    _Atomic int32_t pid[SLOTS]; /* the process each slot's task ran in */
    _Atomic uint32_t ran[SLOTS]; /* how many times each slot's task started */
} board;

#define BOARD_NAME_MAX 48
#define BOARDS_MAX 4 /* at once in one test */

static char board_names[BOARDS_MAX][BOARD_NAME_MAX]; /* "" when free */
static int boards_unlinked_at_exit; /* atexit(unlink_boards) done */

static void unlink_boards(void)
{
    for (int i = 0; i < BOARDS_MAX; i++)
        if (board_names[i][0])
            unlink(board_names[i]);
}

static board *board_mmap(int fd)
{
    void *p = mmap(NULL, sizeof(board), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    return p == MAP_FAILED ? NULL : p;
}

/* A task's view of an existing board. */
static board *board_open(const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    return fd < 0 ? NULL : board_mmap(fd);
}

/* A new zeroed board under a name nobody else holds; name gets its path.  The name is
 * mkostemp's, not built from the pid: a board left by a process killed before its atexit
 * ran (or one in another pid namespace sharing /dev/shm) must never collide with ours. */
static board *board_create(char name[BOARD_NAME_MAX])
{
    int i = 0;
    if (!boards_unlinked_at_exit++)
        atexit(unlink_boards);
    while (i < BOARDS_MAX && board_names[i][0])
        i++;
    assert_true(i < BOARDS_MAX);
    snprintf(name, BOARD_NAME_MAX, "/dev/shm/cf-test-process-XXXXXX");
    int fd = mkostemp(name, O_CLOEXEC);
    if (fd < 0)
        fail_msg("cannot create a board under /dev/shm: %s", strerror(errno));
    snprintf(board_names[i], BOARD_NAME_MAX, "%s", name);
    if (ftruncate(fd, sizeof(board)) != 0) {
        close(fd);
        fail_msg("cannot size %s: %s", name, strerror(errno));
    }
    board *b = board_mmap(fd);
    if (!b)
        fail_msg("cannot map %s: %s", name, strerror(errno));
    return b;
}

static void board_free(board *b, const char *name)
{
    munmap(b, sizeof *b);
    unlink(name);
    for (int i = 0; i < BOARDS_MAX; i++)
        if (strcmp(board_names[i], name) == 0)
            board_names[i][0] = '\0';
}

static void word_wake(_Atomic uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* 0 once *word >= target, -1 if not within timeout seconds. */
static int word_wait(_Atomic uint32_t *word, uint32_t target, double timeout)
{
    double end = tu_now() + timeout;
    for (;;) {
        uint32_t v = atomic_load(word);
        if (v >= target)
            return 0;
        double left = end - tu_now();
        if (left <= 0)
            return -1;
        struct timespec ts = {.tv_sec = (time_t)left,
                              .tv_nsec = (long)((left - (double)(time_t)left) * 1e9)};
        syscall(SYS_futex, word, FUTEX_WAIT, v, &ts, NULL, 0);
    }
}

static void board_release(board *b)
{
    atomic_store(&b->release, 1);
    word_wake(&b->release);
}

/* ---- the task ----------------------------------------------------------------------- */

enum op {
    OP_VALUE,     /* result: value * 3 + 1 and the pid */
    OP_GATE,      /* announce, wait for the release, then as OP_VALUE */
    OP_SEGV,      /* write to a page that does not allow it */
    OP_ABORT,     /* abort() */
    OP_EXIT,      /* exit(value) */
    OP_SPIN,      /* burn CPU without end (a minute, then give up: the test fails) */
    OP_GARBAGE,   /* write 64 bytes of 0xAB to the parent, then wait to be killed */
    OP_TRUNCATED, /* write the start of a RESULT message, then _exit(0) */
    OP_HEADER,    /* write a RESULT header announcing `value` body bytes, then return */
    OP_OUTPUT,    /* result: `value` bytes of 0x3C */
    OP_INIT_ARG,  /* result: what the initializer stored */
    OP_STRAY_FD,  /* send a memfd of `value` bytes of 0xEE over the channel, then as OP_VALUE */
    OP_SCRIBBLE,  /* as OP_OUTPUT, keeping a thread that writes 0xEE into its result's memfd */
    OP_WRECK_CTL, /* write 0xAB over the worker's control block (descriptor 4), _exit(0) */
    OP_SEGV_RAW,  /* a real invalid access, under whatever SIGSEGV handler the worker has */
    OP_TAKE_FDS,  /* close every descriptor above 2, keep a socket on the channel's number
                     (3), then as OP_VALUE */
    OP_SIGNALS,   /* raise(SIGHUP), then result (as OP_VALUE): 1 SIGHUP ignored | 2 SIGINT
                     ignored | 4 SIGCHLD at its default */
    OP_BUSY,      /* burn CPU for `value` microseconds, then as OP_VALUE */
    OP_SLEEP,     /* sleep `value` microseconds, then as OP_VALUE */
    OP_CLAIM_AHEAD /* claim every later task in the control block's start word (as no
                      worker would), then as OP_VALUE */
};

typedef struct cmd {
    uint32_t op;
    uint32_t slot;            /* the board slot it records in */
    uint64_t value;
    char board[BOARD_NAME_MAX]; /* "" when the task has no board */
} cmd;

typedef struct answer {
    uint64_t value;
    int64_t pid;
} answer;

static uint64_t expected(uint64_t value)
{
    return value * 3 + 1;
}

static char init_stored[32];

/* Keeps its argument for OP_INIT_ARG. */
static int init_store(void *arg, cf_ctx *ctx)
{
    (void)ctx;
    snprintf(init_stored, sizeof init_stored, "%s", arg ? (const char *)arg : "(null)");
    return 0;
}

static int init_refuse(void *arg, cf_ctx *ctx)
{
    (void)arg;
    return cf_fail(ctx, 42, "initializer refuses");
}

static int init_abort(void *arg, cf_ctx *ctx)
{
    (void)arg;
    (void)ctx;
    abort();
}

/* Dies as the out-of-memory killer would make it. */
static int init_sigkill(void *arg, cf_ctx *ctx)
{
    (void)arg;
    (void)ctx;
    raise(SIGKILL);
    return 0;
}

/* Dies of SIGSEGV from a real invalid access.  The sanitizer runtimes catch SIGSEGV and
 * exit(1) instead; the default action restores what a plain program gets from the kernel.
 * The page is mapped without access so the address is not null (UBSan would report a null
 * store and exit as well). */
static void __attribute__((noreturn)) segfault(void)
{
    volatile char *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    signal(SIGSEGV, SIG_DFL);
    if (p != MAP_FAILED)
        *p = 1;
    abort(); /* not reached unless the mapping failed: die some other, visible way */
}

static void spin_without_end(void)
{
    volatile uint64_t x = 0;
    double end = tu_now() + 60.0;
    while (tu_now() < end)
        for (int i = 0; i < 100000; i++)
            x += (uint64_t)i;
    (void)x; /* only written: clang's -Wunused-but-set-variable */
}

static void send_garbage(void)
{
    unsigned char junk[64];
    memset(junk, 0xAB, sizeof junk);
    cf__worker_send_raw(junk, sizeof junk);
}

/* A RESULT header (tag 0xCF5A0011, native endian) announcing a body of body_len bytes. */
static void send_result_header(uint32_t body_len)
{
    unsigned char hdr[16];
    uint32_t tag = 0xCF5A0011u;
    uint64_t seq = 1;
    memcpy(hdr, &tag, 4);
    memcpy(hdr + 4, &body_len, 4);
    memcpy(hdr + 8, &seq, 8);
    cf__worker_send_raw(hdr, sizeof hdr);
}

/* A header announcing 1000 bytes and 20 of them, then the process ends: the parent holds
 * a message that can never complete. */
static void __attribute__((noreturn)) send_truncated_and_exit(void)
{
    unsigned char part[20];
    memset(part, 0, sizeof part);
    send_result_header(1000);
    cf__worker_send_raw(part, sizeof part);
    _exit(0);
}

/* A memfd of len bytes of 0xEE passed on the worker's channel (descriptor 3), as a task
 * that writes to its descriptors could: a result's descriptor, by its shape. */
static int send_stray_memfd(size_t len)
{
    int fd = memfd_create("cf-result", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || ftruncate(fd, (off_t)len) != 0)
        return -1;
    unsigned char *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (map == MAP_FAILED)
        return -1;
    memset(map, 0xEE, len);
    munmap(map, len);
    char byte = 0, ctl[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {&byte, 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
                        .msg_controllen = sizeof ctl};
    memset(ctl, 0, sizeof ctl);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    ssize_t n = sendmsg(3, &mh, MSG_NOSIGNAL);
    close(fd);
    return n == 1 ? 0 : -1;
}

typedef struct scribble {
    unsigned char *map;
    size_t len;
} scribble;

static void *scribble_main(void *arg)
{
    scribble *sc = arg;
    double end = tu_now() + 20.0;
    while (tu_now() < end) {
        memset(sc->map, 0xEE, sc->len);
        tu_sleep(0.0002);
    }
    return NULL;
}

/* Opens the memfd this worker writes its big result into again (through /proc/self/fd)
 * and leaves a thread writing 0xEE into it for 20 s: a leftover writer. */
static int leave_a_writer(size_t len)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int fd = -1;
    struct dirent *e;
    while (fd < 0 && (e = readdir(d))) {
        char path[300], target[128];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n > 0 && (target[n] = '\0', strstr(target, "memfd:cf-result")))
            fd = open(path, O_RDWR | O_CLOEXEC);
    }
    closedir(d);
    if (fd < 0)
        return -1;
    static scribble sc;
    sc.len = len;
    sc.map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    pthread_t t;
    if (sc.map == MAP_FAILED || pthread_create(&t, NULL, scribble_main, &sc) != 0)
        return -1;
    pthread_detach(t);
    return 0;
}

/* Does what c says, with board b (NULL when c names none). */
static int act(const cmd *c, board *b, cf_ctx *ctx)
{
    if ((c->op == OP_GATE || c->op == OP_GARBAGE) && !b)
        return cf_fail(ctx, 3, "op %u needs a board", c->op);
    switch (c->op) {
    case OP_GATE:
        atomic_fetch_add(&b->started, 1);
        word_wake(&b->started);
        if (word_wait(&b->release, 1, TU_LONG) != 0)
            return cf_fail(ctx, TU_EGATE, "gate never opened");
        atomic_fetch_add(&b->passed, 1);
        break;
    case OP_SEGV:
        segfault();
    case OP_ABORT:
        abort();
    case OP_EXIT:
        exit((int)c->value);
    case OP_SPIN:
        spin_without_end();
        break;
    case OP_CLAIM_AHEAD: {
        cf__control *ctl = mmap(NULL, CF__CONTROL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
                                CF__WFD_CONTROL, 0);
        if (ctl == MAP_FAILED)
            return cf_fail(ctx, 15, "cannot map the control block");
        atomic_store(&ctl->start_word, UINT64_MAX - 1);
        munmap(ctl, CF__CONTROL_SIZE);
        break;
    }
    case OP_SLEEP:
        tu_sleep((double)c->value * 1e-6);
        break;
    case OP_BUSY:
        for (double end = tu_now() + (double)c->value * 1e-6; tu_now() < end;)
            ;
        break;
    case OP_GARBAGE:
        send_garbage();
        /* Wait to be killed (bounded: if the parent never reacts, the task returns and the
         * test fails on its outcome), so no later task runs in this worker before it dies. */
        word_wait(&b->release, 1, TU_LONG);
        break;
    case OP_HEADER:
        send_result_header((uint32_t)c->value);
        break;
    case OP_TRUNCATED:
        send_truncated_and_exit();
    case OP_OUTPUT: {
        unsigned char *out = cf_ctx_output(ctx, (size_t)c->value);
        if (!out)
            return cf_fail(ctx, 12, "no memory for %llu bytes", (unsigned long long)c->value);
        memset(out, 0x3C, (size_t)c->value);
        return 0;
    }
    case OP_INIT_ARG:
        return cf_ctx_set_output(ctx, init_stored, strlen(init_stored) + 1);
    case OP_TAKE_FDS: {
        syscall(SYS_close_range, 3u, ~0u, 0u);
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || sv[0] != 3)
            return cf_fail(ctx, 16, "the socket did not land on descriptor 3");
        break; /* both ends stay open: a cached connection */
    }
    case OP_SIGNALS: {
        struct sigaction hup, intr, chld;
        sigaction(SIGHUP, NULL, &hup);
        sigaction(SIGINT, NULL, &intr);
        sigaction(SIGCHLD, NULL, &chld);
        raise(SIGHUP);
        answer a = {(hup.sa_handler == SIG_IGN) | (intr.sa_handler == SIG_IGN) << 1 |
                        (chld.sa_handler == SIG_DFL) << 2,
                    (int64_t)getpid()};
        return cf_ctx_set_output(ctx, &a, sizeof a);
    }
    case OP_SEGV_RAW: {
        volatile char *p = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p != MAP_FAILED)
            *p = 1;
        abort();
    }
    case OP_WRECK_CTL: {
        unsigned char *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, 4, 0);
        if (page == MAP_FAILED)
            return cf_fail(ctx, 15, "cannot map the control block");
        memset(page, 0xAB, 4096);
        _exit(0);
    }
    case OP_STRAY_FD:
        if (send_stray_memfd((size_t)c->value) != 0)
            return cf_fail(ctx, 13, "cannot send a stray descriptor");
        break;
    case OP_SCRIBBLE: {
        unsigned char *out = cf_ctx_output(ctx, (size_t)c->value);
        if (!out)
            return cf_fail(ctx, 12, "no memory for %llu bytes", (unsigned long long)c->value);
        memset(out, 0x3C, (size_t)c->value);
        if (leave_a_writer((size_t)c->value) != 0)
            return cf_fail(ctx, 14, "cannot leave a writer");
        return 0;
    }
    default:
        break;
    }
    answer a = {expected(c->value), (int64_t)getpid()};
    return cf_ctx_set_output(ctx, &a, sizeof a);
}

static int run_cmd_fn(const void *in, size_t len, cf_ctx *ctx)
{
    cmd c;
    board *b = NULL;
    if (len != sizeof c)
        return cf_fail(ctx, 1, "input of %zu bytes is not a command", len);
    memcpy(&c, in, sizeof c);
    if (c.board[0]) {
        if (c.slot >= SLOTS || !(b = board_open(c.board)))
            return cf_fail(ctx, 2, "cannot use board %s slot %u", c.board, c.slot);
        atomic_store(&b->pid[c.slot], (int32_t)getpid());
        atomic_fetch_add(&b->ran[c.slot], 1);
    }
    int rc = act(&c, b, ctx);
    if (b)
        munmap(b, sizeof *b);
    return rc;
}

CF_FUNCTION(run_cmd, run_cmd_fn);
CF_FUNCTION(xor_fn, tu_bytes_xor);

static cmd make_cmd(enum op op, const char *board_name, uint32_t slot, uint64_t value)
{
    cmd c;
    memset(&c, 0, sizeof c);
    c.op = op;
    c.slot = slot;
    c.value = value;
    if (board_name)
        snprintf(c.board, sizeof c.board, "%s", board_name);
    return c;
}

static cf_future *submit_cmd(cf_executor *ex, enum op op, const char *board_name,
                             uint32_t slot, uint64_t value)
{
    cmd c = make_cmd(op, board_name, slot, value);
    cf_future *f = NULL;
    int rc = cf_submit_bytes(ex, &run_cmd, &c, sizeof c, &f);
    if (rc != 0 || !f)
        fail_msg("cf_submit_bytes(op %d): %s", (int)op, cf_err_name(rc));
    return f;
}

/* f finished with value*3+1, computed in the process cf_future_pid names. */
static void expect_answer(cf_future *f, uint64_t value)
{
    const void *data = NULL;
    size_t len = 0;
    int rc = cf_future_bytes(f, TU_LONG, &data, &len);
    if (rc != 0 || len != sizeof(answer))
        fail_msg("task for value %llu: %s, %zu bytes", (unsigned long long)value,
                 cf_err_name(rc), len);
    answer a;
    memcpy(&a, data, sizeof a);
    assert_int_equal(a.value, expected(value));
    assert_true(a.pid > 0);
    assert_int_equal(a.pid, cf_future_pid(f));
}

/* ---- processes and descriptors ----------------------------------------------------- */


/* pid has been reaped (it is no child of ours any more), within the time limit. */
static void expect_reaped(pid_t pid)
{
    double end = tu_now() + TU_LONG;
    while (tu_child_state(pid) != 0 && tu_now() < end)
        tu_sleep(0.001);
    if (tu_child_state(pid) != 0)
        fail_msg("worker %ld is still a child of this process (state %c)", (long)pid,
                 tu_child_state(pid));
}

/* After cf_executor_free: no child process at all (live or zombie) and no descriptor more
 * than before the pool. */
static void expect_clean(int fds_before)
{
    errno = 0;
    pid_t w = waitpid(-1, NULL, WNOHANG);
    if (w != -1 || errno != ECHILD)
        fail_msg("a child process is left after free (waitpid: %ld, %s)", (long)w,
                 strerror(errno));
    assert_int_equal(tu_count_fds(), fds_before);
}

/* What a test opens and must find closed again: the descriptors open at its start, the
 * options of its pool and, when it coordinates with its tasks, a board. */
typedef struct fixture {
    int fds;
    cf_executor_opts o;
    char name[BOARD_NAME_MAX]; /* the board's file, "" without one */
    board *b;
} fixture;

static void open_fixture(fixture *t, bool with_board)
{
    t->name[0] = '\0';
    t->b = with_board ? board_create(t->name) : NULL;
    t->fds = tu_count_fds();
    cf_executor_opts_init(&t->o);
}

/* Frees the pool, checks that no child process and no descriptor is left, frees the board. */
static void close_fixture(fixture *t, cf_executor *ex)
{
    cf_executor_free(ex);
    expect_clean(t->fds);
    if (t->b)
        board_free(t->b, t->name);
}

/* message names pid as a whole decimal number. */
static void expect_names_pid(const char *message, long pid)
{
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%ld", pid);
    assert_non_null(message);
    for (const char *p = strstr(message, digits); p; p = strstr(p + 1, digits)) {
        int before = p > message && p[-1] >= '0' && p[-1] <= '9';
        int after = p[n] >= '0' && p[n] <= '9';
        if (!before && !after)
            return;
    }
    fail_msg("message \"%s\" does not name pid %ld", message, pid);
}

/* f failed with `outcome`; its worker is the process the task recorded in b's `slot`, the
 * message names it, and it was reaped before the future finished.  Returns the error's code
 * (the worker's wait status) for the caller to check. */
static int expect_death(cf_future *f, int outcome, board *b, uint32_t slot)
{
    int code = 0;
    const char *message = NULL;
    assert_int_equal(cf_future_result(f, TU_LONG, NULL), outcome);
    assert_int_equal(cf_future_state(f), CF_FINISHED);
    assert_int_equal(cf_future_error(f, &code, &message), outcome);
    long pid = cf_future_pid(f);
    assert_true(pid > 0);
    assert_int_equal(pid, atomic_load(&b->pid[slot]));
    expect_names_pid(message, pid);
    assert_int_equal(tu_child_state((pid_t)pid), 0);
    return code;
}

static cf_executor *new_pool(cf_executor_opts *o, int workers)
{
    cf_executor *ex = NULL;
    o->workers = workers;
    o->name = "tp";
    int rc = cf_executor_new(&ex, CF_BACKEND_PROCESSES, o);
    if (rc != 0)
        fail_msg("cf_executor_new(processes): %s", cf_err_name(rc));
    assert_string_equal(cf_executor_backend(ex), "processes");
    return ex;
}

/* ---- a task that dies -------------------------------------------------------------- */

enum { BEFORE = 8, AFTER = 8 };

/*
 * Two workers run BEFORE value tasks, the fault (slot BEFORE), and AFTER more, all
 * submitted at once so some wait in the dying worker's queue.  The fault's future gets
 * `outcome` and the wait status (returned); every other task ran exactly once and has its
 * value; the pool then runs one more task; nothing is left after free.  task_timeout:
 * the pool's option (0: none).
 */
static int die_among_others(enum op op, uint64_t value, double task_timeout, int outcome)
{
    fixture t;
    open_fixture(&t, true);
    t.o.task_timeout = task_timeout;
    cf_executor *ex = new_pool(&t.o, 2);
    cf_future *f[BEFORE + 1 + AFTER];
    for (uint32_t i = 0; i < BEFORE + 1 + AFTER; i++)
        f[i] = i == BEFORE ? submit_cmd(ex, op, t.name, i, value)
                           : submit_cmd(ex, OP_VALUE, t.name, i, 100 + i);
    int status = expect_death(f[BEFORE], outcome, t.b, BEFORE);
    for (uint32_t i = 0; i < BEFORE + 1 + AFTER; i++) {
        if (i != BEFORE) {
            expect_answer(f[i], 100 + i);
            assert_int_equal(atomic_load(&t.b->ran[i]), 1);
        }
        cf_future_release(f[i]);
    }
    assert_int_equal(atomic_load(&t.b->ran[BEFORE]), 1);
    cf_future *again = submit_cmd(ex, OP_VALUE, NULL, 0, 7);
    expect_answer(again, 7);
    assert_int_not_equal(cf_future_pid(again), atomic_load(&t.b->pid[BEFORE]));
    cf_future_release(again);
    close_fixture(&t, ex);
    return status;
}

static void segfault_fails_only_its_task(void **state)
{
    (void)state;
    int status = die_among_others(OP_SEGV, 0, 0, CF_ELOST);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
}

static void abort_fails_only_its_task(void **state)
{
    (void)state;
    int status = die_among_others(OP_ABORT, 0, 0, CF_ELOST);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

static void exit_fails_only_its_task(void **state)
{
    (void)state;
    int status = die_among_others(OP_EXIT, 3, 0, CF_ELOST);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 3);
}

/* SEMANTICS 32 (issue 12 item 3): with SIGCHLD ignored the kernel reaps workers itself
 * and no wait status exists; the pool still reports the cause exactly for its own kills
 * (time limit) and a task's synchronous fatal signals, and exit(), never "status 0". */
static void causes_are_exact_with_sigchld_ignored(void **state)
{
    (void)state;
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGCHLD, &ign, &old);
    int status = die_among_others(OP_SEGV_RAW, 0, 0, CF_ELOST);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
    status = die_among_others(OP_ABORT, 0, 0, CF_ELOST);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
    status = die_among_others(OP_EXIT, 3, 0, CF_ELOST);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 3);
    status = die_among_others(OP_SPIN, 0, 0.5, CF_ETASKTIMEOUT);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    sigaction(SIGCHLD, &old, NULL);
}

/* SEMANTICS 33 (issue 12 item 7): a program under nohup (SIGHUP ignored) in a background
 * job (SIGINT ignored) that also ignores SIGCHLD: its workers keep SIGHUP and SIGINT
 * ignored (a SIGHUP used to kill every worker) and have SIGCHLD at its default, so a
 * task's own waitpid and system() work. */
static void ignored_signals_stay_ignored_in_workers(void **state)
{
    (void)state;
    static const int sigs[] = {SIGHUP, SIGINT, SIGCHLD};
    struct sigaction ign = {.sa_handler = SIG_IGN}, old[3];
    sigemptyset(&ign.sa_mask);
    for (int i = 0; i < 3; i++)
        sigaction(sigs[i], &ign, &old[i]);
    fixture t;
    open_fixture(&t, false);
    cf_executor *ex = new_pool(&t.o, 2);
    cf_future *f = submit_cmd(ex, OP_SIGNALS, NULL, 0, 0);
    const void *data = NULL;
    size_t len = 0;
    int rc = cf_future_bytes(f, TU_LONG, &data, &len);
    if (rc != 0 || len != sizeof(answer))
        fail_msg("the task that raised SIGHUP: %s", cf_err_name(rc));
    answer a;
    memcpy(&a, data, sizeof a);
    assert_int_equal(a.value, 7);
    cf_future_release(f);
    close_fixture(&t, ex);
    for (int i = 0; i < 3; i++)
        sigaction(sigs[i], &old[i], NULL);
}

/* Issue 12 item 4: a task closes every descriptor above 2 and keeps a socket on the
 * channel's number, then returns.  Its worker can never get a task again; the pool
 * replaces it, and later tasks run on another worker within their time limit (they used
 * to stay RUNNING for ever, their sends failing silently). */
static void worker_without_its_channel_is_replaced(void **state)
{
    (void)state;
    fixture t;
    open_fixture(&t, false);
    t.o.task_timeout = 1.0;
    cf_executor *ex = new_pool(&t.o, 1);
    cf_future *taker = submit_cmd(ex, OP_TAKE_FDS, NULL, 0, 5);
    int rc = cf_future_result(taker, TU_LONG, NULL);
    assert_true(rc == 0 || rc == CF_ELOST);
    long first = cf_future_pid(taker);
    cf_future_release(taker);
    for (int i = 0; i < 3; i++) {
        cf_future *f = submit_cmd(ex, OP_VALUE, NULL, 0, 20u + i);
        assert_int_equal(cf_future_result(f, 10.0, NULL), 0);
        expect_answer(f, 20u + i);
        assert_int_not_equal(cf_future_pid(f), first);
        cf_future_release(f);
    }
    close_fixture(&t, ex);
}

/*
 * Starts `path` (this program, or a copy of it) as a would-be worker: `marker` its whole
 * environment, `fd3` and `fd4` (or /dev/null where -1) its descriptors 3 and 4, running
 * this suite's test `test`.  Its stderr goes to text; returns its wait status.
 */
static int run_marked(const char *path, const char *marker, int fd3, int fd4, const char *test,
                      char *text, size_t cap)
{
    int err[2];
    assert_int_equal(pipe(err), 0);
    char *envp[] = {(char *)marker, NULL};
    char *argv[] = {(char *)path, (char *)test, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    if (fd3 >= 0)
        posix_spawn_file_actions_adddup2(&fa, fd3, 3);
    else
        posix_spawn_file_actions_addopen(&fa, 3, "/dev/null", O_RDWR, 0);
    if (fd4 >= 0)
        posix_spawn_file_actions_adddup2(&fa, fd4, 4);
    else
        posix_spawn_file_actions_addopen(&fa, 4, "/dev/null", O_RDWR, 0);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, path, &fa, NULL, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    close(err[1]);
    assert_int_equal(rc, 0);
    size_t got = 0;
    ssize_t n;
    while (got < cap - 1 && (n = read(err[0], text + got, cap - 1 - got)) > 0)
        got += (size_t)n;
    text[got] = '\0';
    close(err[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return status;
}

/* Run as a would-be worker, it refused and ran as a normal program: one test of this
 * suite, which passes. */
static void expect_refused(int status, const char *text, const char *why)
{
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        !strstr(text, "is not a pool's worker") || !strstr(text, why))
        fail_msg("expected a refusal (%s) and a normal run: status %#x, stderr: %s", why,
                 status, text);
}

/* SEMANTICS 36 (issue 12 item 9): this test program started again with the worker marker
 * naming its parent (this process) but descriptor 3 no pool's channel (/dev/null), as
 * someone running it by hand could: it is no worker; it says so on stderr and runs as a
 * normal program (here: one test of this suite, which passes).  It used to enter worker
 * mode and exit 1. */
static void worker_marker_alone_makes_no_worker(void **state)
{
    (void)state;
    char marker[64], text[4096];
    snprintf(marker, sizeof marker, "CFUTURES_WORKER=%ld", (long)getpid());
    int status = run_marked("/proc/self/exe", marker, -1, -1, "pointer_tasks_are_not_supported",
                            text, sizeof text);
    expect_refused(status, text, "no secret");
}

/* SEMANTICS 36: the per-spawn secret.  Started by its parent (this process), as this
 * user, with a socket to this process as descriptor 3 and a control block as descriptor
 * 4, as a pool does: without the secret of that control block in its marker (none, a
 * wrong one, one that is no hex) it is no worker; nor with it, if descriptor 3 is no
 * socket.  Before the secret, the wrong-secret
 * starts became workers, serving whoever held the socket. */
static void worker_needs_its_pools_secret(void **state)
{
    (void)state;
    int ctl = memfd_create("test-control", MFD_CLOEXEC);
    assert_true(ctl >= 0);
    assert_int_equal(ftruncate(ctl, CF__CONTROL_SIZE), 0);
    cf__control *c = mmap(NULL, CF__CONTROL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, ctl, 0);
    assert_true(c != MAP_FAILED);
    for (int i = 0; i < CF__SECRET_LEN; i++)
        c->secret[i] = (unsigned char)(0x5a ^ i);
    char right[2 * CF__SECRET_LEN + 1];
    for (int i = 0; i < CF__SECRET_LEN; i++)
        snprintf(right + 2 * i, 3, "%02x", c->secret[i]);
    char wrong[sizeof right], nonhex[sizeof right];
    memcpy(wrong, right, sizeof right);
    wrong[2 * CF__SECRET_LEN - 1] = wrong[2 * CF__SECRET_LEN - 1] == '0' ? '1' : '0';
    memcpy(nonhex, right, sizeof right);
    nonhex[0] = 'z';
    const struct {
        const char *secret, *why;
        bool socket; /* descriptor 3: a socket to this process, or /dev/null */
    } cases[] = {{NULL, "no secret", true},
                 {wrong, "secret is not the one", true},
                 {nonhex, "secret is not the one", true},
                 {"", "secret is not the one", true},
                 /* the right secret does not do without the channel's peer check */
                 {right, "descriptor 3 is not a pool's channel", false}};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        char marker[128], text[4096];
        if (cases[k].secret)
            snprintf(marker, sizeof marker, "CFUTURES_WORKER=%ld:%s", (long)getpid(),
                     cases[k].secret);
        else
            snprintf(marker, sizeof marker, "CFUTURES_WORKER=%ld", (long)getpid());
        /* The far end closes at once: a process that wrongly became a worker leaves on
         * end-of-file without a word instead of waiting for tasks. */
        close(sv[0]);
        int status = run_marked("/proc/self/exe", marker, cases[k].socket ? sv[1] : -1, ctl,
                                "pointer_tasks_are_not_supported", text, sizeof text);
        close(sv[1]);
        expect_refused(status, text, cases[k].why);
    }
    munmap(c, CF__CONTROL_SIZE);
    close(ctl);
}

/* A copy of this program, set-user-ID to nobody, in the first of `dirs` on a file system
 * that honours set-user-ID bits; its path in `path`, or 0. */
static int setuid_copy(char *path, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return 0;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    *slash = '\0';
    const char *dirs[] = {exe, "/tmp", "/dev/shm", "/var/tmp"};
    for (size_t d = 0; d < sizeof dirs / sizeof dirs[0]; d++) {
        struct statvfs vfs;
        if (statvfs(dirs[d], &vfs) != 0 || (vfs.f_flag & ST_NOSUID))
            continue;
        snprintf(path, cap, "%s/setuid-copy-%ld", dirs[d], (long)getpid());
        int in = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
        int out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0700);
        char buf[65536];
        ssize_t got;
        int ok = in >= 0 && out >= 0;
        while (ok && (got = read(in, buf, sizeof buf)) > 0)
            ok = write(out, buf, (size_t)got) == got;
        if (in >= 0)
            close(in);
        if (out >= 0)
            close(out);
        if (ok && chown(path, 65534, 65534) == 0 && chmod(path, 04755) == 0)
            return 1;
        unlink(path);
    }
    return 0;
}

/* SEMANTICS 36 (issue 12 item 9): a set-user-ID program (secure-execution mode) is never a
 * worker, even started by its would-be parent with the marker and a real socket as
 * descriptor 3: it says so and runs as a normal program (which here ends at once: no test
 * of that name).  Needs root, to give a copy of this program to nobody. */
static void setuid_program_is_never_a_worker(void **state)
{
    (void)state;
    if (geteuid() != 0)
        fail_msg("needs root: makes a set-user-ID copy of this program owned by nobody");
    char path[PATH_MAX];
    if (!setuid_copy(path, sizeof path)) {
        print_message("no file system here honours set-user-ID bits: not testable\n");
        skip();
    }
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    char marker[64], text[4096];
    snprintf(marker, sizeof marker, "CFUTURES_WORKER=%ld:00", (long)getpid());
    int status = run_marked(path, marker, sv[1], -1, "no-such-test", text, sizeof text);
    close(sv[0]);
    close(sv[1]);
    unlink(path);
    /* (Its exit status is the program's own: 2 for the unknown test, but a sanitizer's
     * runtime may end a set-user-ID program otherwise.) */
    if (!WIFEXITED(status) || !strstr(text, "secure-execution mode") ||
        !strstr(text, "running as a normal program"))
        fail_msg("the set-user-ID copy with the marker: status %#x, stderr: %s", status, text);
}

/* SEMANTICS 24: the worker of a task past its time limit is killed and replaced. */
static void endless_task_hits_its_time_limit(void **state)
{
    (void)state;
    int status = die_among_others(OP_SPIN, 0, 0.5, CF_ETASKTIMEOUT);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
}

/* SEMANTICS 21: a time limit fires while the other worker streams results.  Results come
 * through the rings without a system call, and the manager used to take them for as long
 * as they kept coming without ever looking at its deadlines or the workers' pidfds: the
 * endless task was killed only once the map (10 us tasks, 3 s of them on each of the two
 * other workers) had ended, 2.8-3.3 s after it was due. */
static void time_limit_fires_while_results_stream(void **state)
{
    (void)state;
    enum { ITEMS = 600000, BUSY_US = 10, WORKERS = 3 };
    fixture t;
    open_fixture(&t, false);
    t.o.task_timeout = 0.5;
    cf_executor *ex = new_pool(&t.o, WORKERS);
    cmd busy = make_cmd(OP_BUSY, NULL, 0, BUSY_US);
    cf_bytes *in = malloc(ITEMS * sizeof *in);
    assert_non_null(in);
    for (size_t i = 0; i < ITEMS; i++)
        in[i] = (cf_bytes){&busy, sizeof busy};
    double t0 = tu_now();
    cf_future *spin = submit_cmd(ex, OP_SPIN, NULL, 0, 0);
    cf_map *m = NULL;
    assert_int_equal(cf_map_bytes_start(&m, ex, &run_cmd, in, ITEMS, NULL), 0);
    assert_int_equal(cf_future_result(spin, TU_LONG, NULL), CF_ETASKTIMEOUT);
    double took = tu_now() - t0;
    print_message("killed %.2f s after submission (limit 0.5 s)\n", took);
    assert_true(took < 2.0); /* the map alone lasts 3 s and more */
    cf_future_release(spin);
    /* The items are all right, including any that had been handed to the killed worker. */
    for (size_t i = 0; i < 1000; i++) {
        size_t idx = SIZE_MAX;
        void *v = NULL;
        assert_int_equal(cf_map_next(m, &idx, &v), 0);
        assert_int_equal(idx, i);
        assert_int_equal(cf_map_value_len(m), sizeof(answer));
        answer a;
        memcpy(&a, v, sizeof a);
        assert_int_equal(a.value, expected(BUSY_US));
    }
    cf_map_free(m); /* the rest never start */
    free(in);
    close_fixture(&t, ex);
}

typedef struct shutdown_probe {
    cf_executor *ex;
    _Atomic int rc;   /* what cf_shutdown returned in the callback */
    _Atomic uint32_t done; /* the callback has run */
} shutdown_probe;

static void shutdown_wait_in_callback(cf_future *f, void *data)
{
    (void)f;
    shutdown_probe *sp = data;
    atomic_store(&sp->rc, cf_shutdown(sp->ex, CF_SHUTDOWN_WAIT));
    atomic_store(&sp->done, 1);
    word_wake(&sp->done);
}

/* SEMANTICS 14 (issue 12 item 8): a process pool runs callbacks in its manager thread,
 * which cannot wait for itself to end: cf_shutdown(CF_SHUTDOWN_WAIT) there is CF_EINVAL
 * and does nothing (it used to shut the pool down all the same). */
static void shutdown_wait_from_callback_changes_nothing(void **state)
{
    (void)state;
    fixture t;
    open_fixture(&t, false);
    cf_executor *ex = new_pool(&t.o, 1);
    shutdown_probe sp = {.ex = ex};
    cf_future *gate = submit_cmd(ex, OP_BUSY, NULL, 0, 100000); /* pending while we add */
    assert_int_equal(cf_future_add_callback(gate, shutdown_wait_in_callback, &sp), 0);
    expect_answer(gate, 100000);
    assert_int_equal(word_wait(&sp.done, 1, TU_LONG), 0);
    assert_int_equal(atomic_load(&sp.rc), CF_EINVAL);
    cf_future *after = submit_cmd(ex, OP_VALUE, NULL, 0, 5);
    expect_answer(after, 5);
    cf_future_release(after);
    cf_future_release(gate);
    close_fixture(&t, ex);
}

/* ---- tasks handed ahead (issue 12 items 1 and 5; SEMANTICS 30) ------------------------ */

/* Tasks [1 s, then six of 0.15 s] on 2 workers: no short task waits behind the long one
 * while the other worker is idle.  One used to be handed to the long task's worker (a
 * worker holds two tasks while their time is not known) and ran after it: 1.15 s where
 * threads take 1.0 s.  Now every short one runs on the other worker. */
static void no_task_waits_behind_a_busy_worker(void **state)
{
    (void)state;
    enum { SHORT = 6 };
    fixture t;
    open_fixture(&t, false);
    cf_executor *ex = new_pool(&t.o, 2);
    tu_start_workers(ex);
    double t0 = tu_now();
    cf_future *slow = submit_cmd(ex, OP_SLEEP, NULL, 0, 1000000);
    cf_future *quick[SHORT];
    for (int i = 0; i < SHORT; i++)
        quick[i] = submit_cmd(ex, OP_SLEEP, NULL, 0, 150000);
    expect_answer(slow, 1000000);
    for (int i = 0; i < SHORT; i++) {
        expect_answer(quick[i], 150000);
        if (cf_future_pid(quick[i]) == cf_future_pid(slow))
            fail_msg("short task %d ran behind the long one (worker %ld)", i,
                     cf_future_pid(slow));
        cf_future_release(quick[i]);
    }
    print_message("all done in %.2f s\n", tu_now() - t0);
    cf_future_release(slow);
    close_fixture(&t, ex);
}

static void *burn_until(void *arg)
{
    while (!atomic_load((atomic_int *)arg))
        ;
    return NULL;
}

/* Under CPU load, rounds of 4 quick tasks and then 4 that block until released, on 4
 * workers: every blocking task starts (one used to be handed, a few rounds in 60, to a
 * worker already running another, and did not start until that one was released). */
static void blocking_tasks_each_get_a_worker_under_load(void **state)
{
    (void)state;
    enum { W = 4, ROUNDS = 30 };
    atomic_int stop = 0;
    pthread_t burner[2];
    for (int i = 0; i < 2; i++)
        burner[i] = tu_thread_start(burn_until, &stop);
    fixture t;
    open_fixture(&t, true);
    cf_executor *ex = new_pool(&t.o, W);
    for (uint32_t r = 0; r < ROUNDS; r++) {
        cf_future *q[W], *g[W];
        for (uint32_t i = 0; i < W; i++)
            q[i] = submit_cmd(ex, OP_VALUE, NULL, 0, i);
        atomic_store(&t.b->release, 0);
        atomic_store(&t.b->started, 0);
        for (uint32_t i = 0; i < W; i++)
            g[i] = submit_cmd(ex, OP_GATE, t.name, i, i);
        if (word_wait(&t.b->started, W, 10.0) != 0)
            fail_msg("round %u: %u of %d blocking tasks started in 10 s", r,
                     atomic_load(&t.b->started), W);
        board_release(t.b);
        for (uint32_t i = 0; i < W; i++) {
            expect_answer(q[i], i);
            expect_answer(g[i], i);
            cf_future_release(q[i]);
            cf_future_release(g[i]);
        }
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < 2; i++)
        tu_thread_join(burner[i]);
    close_fixture(&t, ex);
}

/* SEMANTICS 31: a task that claims every later task in its worker's start word (so the
 * worker skips them all, answering none) costs nothing but its worker: after 1 s without
 * starting what it claimed, the worker is killed and the tasks behind run on another
 * (they stayed RUNNING for ever). */
static void claimed_tasks_never_hang(void **state)
{
    (void)state;
    enum { N = 3 };
    fixture t;
    open_fixture(&t, false);
    cf_executor *ex = new_pool(&t.o, 1);
    cf_future *bad = submit_cmd(ex, OP_CLAIM_AHEAD, NULL, 0, 1);
    cf_future *f[N];
    for (uint32_t i = 0; i < N; i++)
        f[i] = submit_cmd(ex, OP_VALUE, NULL, 0, 10 + i);
    expect_answer(bad, 1);
    for (uint32_t i = 0; i < N; i++) {
        expect_answer(f[i], 10 + i);
        assert_int_not_equal(cf_future_pid(f[i]), cf_future_pid(bad));
        cf_future_release(f[i]);
    }
    cf_future_release(bad);
    close_fixture(&t, ex);
}

/* SEMANTICS 30: a task handed ahead to a busy worker, not started, is PENDING (it read
 * RUNNING) and cancellable: cf_future_cancel returns 0 (it was CF_EBUSY), it never runs,
 * and the task queued behind it still runs.  The running one reads RUNNING and cannot be
 * cancelled (no kill_on_cancel). */
static void task_handed_ahead_is_cancellable(void **state)
{
    (void)state;
    fixture t;
    open_fixture(&t, true);
    cf_executor *ex = new_pool(&t.o, 1);
    cf_future *held = submit_cmd(ex, OP_GATE, t.name, 0, 0);
    assert_int_equal(word_wait(&t.b->started, 1, TU_LONG), 0);
    cf_future *ahead = submit_cmd(ex, OP_VALUE, t.name, 1, 1);
    cf_future *after = submit_cmd(ex, OP_VALUE, t.name, 2, 2);
    assert_int_equal(cf_future_state(held), CF_RUNNING);
    assert_int_equal(cf_future_state(ahead), CF_PENDING); /* written to the worker */
    assert_int_equal(cf_future_cancel(ahead), 0);
    assert_int_equal(cf_future_state(ahead), CF_CANCELLED);
    assert_int_equal(cf_future_cancel(held), CF_EBUSY);
    board_release(t.b);
    expect_answer(held, 0);
    expect_answer(after, 2);
    assert_int_equal(cf_future_result(ahead, CF_POLL, NULL), CF_ECANCELLED);
    assert_int_equal(atomic_load(&t.b->ran[1]), 0);
    assert_int_equal(atomic_load(&t.b->ran[2]), 1);
    cf_future_release(held);
    cf_future_release(ahead);
    cf_future_release(after);
    close_fixture(&t, ex);
}

/* SEMANTICS 30: a task handed ahead reads PENDING while the worker runs the one before it,
 * and RUNNING once the worker has started it, before any answer comes back; then it can no
 * longer be cancelled. */
static void handed_task_reads_running_once_started(void **state)
{
    (void)state;
    fixture t;
    open_fixture(&t, true);
    cf_executor *ex = new_pool(&t.o, 1);
    tu_start_workers(ex);
    cf_future *first = submit_cmd(ex, OP_SLEEP, t.name, 0, 1000000); /* 1 s */
    double end = tu_now() + TU_LONG;
    while (cf_future_state(first) != CF_RUNNING && tu_now() < end)
        tu_sleep(0.001);
    assert_int_equal(cf_future_state(first), CF_RUNNING);
    cf_future *ahead = submit_cmd(ex, OP_GATE, t.name, 1, 1);
    assert_int_equal(cf_future_state(ahead), CF_PENDING);
    assert_int_equal(cf_future_pid(ahead), cf_future_pid(first)); /* handed to that worker */
    assert_int_equal(word_wait(&t.b->started, 1, TU_LONG), 0);     /* it started */
    assert_int_equal(cf_future_state(ahead), CF_RUNNING);
    assert_int_equal(cf_future_cancel(ahead), CF_EBUSY);
    board_release(t.b);
    expect_answer(first, 1000000);
    expect_answer(ahead, 1);
    cf_future_release(first);
    cf_future_release(ahead);
    close_fixture(&t, ex);
}

/* A worker stopped (SIGSTOP) while idle is handed tasks: after STALL_NS (1 s) without
 * reaching them it gives them back and another worker runs them (they stayed RUNNING for
 * ever).  Once continued, the pool still works. */
static void stopped_worker_gives_its_tasks_back(void **state)
{
    (void)state;
    enum { N = 4 };
    fixture t;
    open_fixture(&t, true);
    t.o.task_timeout = 0.5;
    cf_executor *ex = new_pool(&t.o, 2);
    /* Both workers' pids, then both idle. */
    cf_future *g[2];
    for (uint32_t i = 0; i < 2; i++)
        g[i] = submit_cmd(ex, OP_GATE, t.name, i, i);
    assert_int_equal(word_wait(&t.b->started, 2, TU_LONG), 0);
    board_release(t.b);
    long stopped = 0;
    for (int i = 0; i < 2; i++) {
        expect_answer(g[i], (uint64_t)i);
        stopped = cf_future_pid(g[i]);
        cf_future_release(g[i]);
    }
    assert_int_equal(kill((pid_t)stopped, SIGSTOP), 0);
    while (tu_child_state((pid_t)stopped) != 'T')
        tu_sleep(0.001);
    double t0 = tu_now();
    cf_future *f[N];
    for (uint32_t i = 0; i < N; i++)
        f[i] = submit_cmd(ex, OP_VALUE, NULL, 0, 10 + i);
    for (uint32_t i = 0; i < N; i++) {
        expect_answer(f[i], 10 + i);
        assert_int_not_equal(cf_future_pid(f[i]), stopped);
    }
    double took = tu_now() - t0;
    print_message("done %.2f s after submission with a worker stopped\n", took);
    assert_true(took < 10.0); /* 1 s and a little; they used to wait for ever */
    assert_int_equal(kill((pid_t)stopped, SIGCONT), 0);
    for (uint32_t i = 0; i < N; i++) {
        cf_future_release(f[i]);
        f[i] = submit_cmd(ex, OP_VALUE, NULL, 0, 20 + i);
    }
    for (uint32_t i = 0; i < N; i++) {
        expect_answer(f[i], 20 + i);
        cf_future_release(f[i]);
    }
    close_fixture(&t, ex);
}

/* SEMANTICS 26: bytes that can never be a message fail the task that was running. */
static void garbage_message_fails_only_its_task(void **state)
{
    (void)state;
    int status = die_among_others(OP_GARBAGE, 0, 0, CF_EPROTO);
    assert_true(WIFSIGNALED(status)); /* the parent kills a worker it no longer believes */
    assert_int_equal(WTERMSIG(status), SIGKILL);
}

/* SEMANTICS 26: a message cut short (then the worker exits) fails the task that was
 * running.  A worker publishes whole messages only, so the parent may see the partial one
 * before the exit and kill the worker (SIGKILL), or after it (status 0): either way the
 * status is in the future. */
static void truncated_message_fails_only_its_task(void **state)
{
    (void)state;
    int status = die_among_others(OP_TRUNCATED, 0, 0, CF_EPROTO);
    if (WIFSIGNALED(status))
        assert_int_equal(WTERMSIG(status), SIGKILL);
    else
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* f succeeded with len bytes of 0x3C (OP_OUTPUT), not one byte of anything else. */
static void expect_output(cf_future *f, size_t len)
{
    const unsigned char *out = NULL;
    size_t got = 0;
    int rc = cf_future_bytes(f, TU_LONG, (const void **)&out, &got);
    if (rc != 0 || got != len)
        fail_msg("output task: %s, %zu bytes", cf_err_name(rc), got);
    for (size_t k = 0; k < len; k++)
        if (out[k] != 0x3C)
            fail_msg("byte %zu of a successful result is 0x%02x, not its task's 0x3C", k,
                     out[k]);
}

/*
 * A task publishes a RESULT header announcing 4096 body bytes and returns; the next task
 * in the same worker returns 8 KiB.  The parent kills the worker as soon as it sees the
 * cut-short message, which may be before the next task starts, while it runs (even before
 * its first line has recorded it) or after it ended.  The first task fails with CF_EPROTO;
 * the next never runs twice: if it had started (by the worker's word) it fails, having run
 * at most once, else it runs on another worker, exactly once, and gives its value.
 */
static void tasks_run_before_a_bad_message_is_seen_run_once(void **state)
{
    (void)state;
    fixture t;
    open_fixture(&t, true);
    cf_executor *ex = new_pool(&t.o, 1);
    cf_future *bad = submit_cmd(ex, OP_HEADER, t.name, 0, 4096);
    cf_future *next = submit_cmd(ex, OP_OUTPUT, t.name, 1, 8192);
    int status = expect_death(bad, CF_EPROTO, t.b, 0);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    int rc = cf_future_result(next, TU_LONG, NULL);
    assert_true(rc == 0 || rc == CF_EPROTO || rc == CF_ELOST);
    assert_int_equal(atomic_load(&t.b->ran[0]), 1);
    unsigned ran = (unsigned)atomic_load(&t.b->ran[1]);
    if (rc == 0 ? ran != 1 : ran > 1)
        fail_msg("the task behind the bad message ran %u times (outcome %s)", ran,
                 rc ? cf_err_name(rc) : "its value");
    if (rc == 0)
        expect_output(next, 8192);
    cf_future *again = submit_cmd(ex, OP_VALUE, NULL, 0, 6);
    expect_answer(again, 6);
    cf_future_release(again);
    cf_future_release(bad);
    cf_future_release(next);
    close_fixture(&t, ex);
}

/* ---- workers killed from outside ---------------------------------------------------- */

/* A worker killed while its task runs: that task is lost, the tasks waiting in the queue
 * run on its replacement, the other worker's running task is unaffected. */
static void worker_killed_while_busy(void **state)
{
    (void)state;
    fixture t;
    open_fixture(&t, true);
    /* kill_on_cancel makes each worker hold one task at a time, so the second gated task
     * starts on the second worker instead of waiting behind the first (with the default,
     * see tasks_start_on_every_worker).  Nothing here is cancelled. */
    t.o.kill_on_cancel = 1;
    cf_executor *ex = new_pool(&t.o, 2);
    cf_future *gated[2], *queued[8];
    for (uint32_t i = 0; i < 2; i++)
        gated[i] = submit_cmd(ex, OP_GATE, t.name, i, i);
    assert_int_equal(word_wait(&t.b->started, 2, TU_LONG), 0);
    for (uint32_t i = 0; i < 8; i++)
        queued[i] = submit_cmd(ex, OP_VALUE, t.name, 2 + i, 2 + i);
    long victim = cf_future_pid(gated[0]);
    assert_int_equal(victim, atomic_load(&t.b->pid[0]));
    assert_int_equal(cf_future_state(gated[0]), CF_RUNNING);
    assert_int_equal(kill((pid_t)victim, SIGKILL), 0);

    int status = expect_death(gated[0], CF_ELOST, t.b, 0);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);
    /* The other worker is still held at its gate, so these ran on the replacement. */
    for (uint32_t i = 0; i < 8; i++) {
        expect_answer(queued[i], 2 + i);
        assert_int_not_equal(cf_future_pid(queued[i]), victim);
        assert_int_equal(atomic_load(&t.b->ran[2 + i]), 1);
        cf_future_release(queued[i]);
    }
    assert_int_equal(cf_future_state(gated[1]), CF_RUNNING);
    board_release(t.b);
    expect_answer(gated[1], 1);
    assert_int_equal(atomic_load(&t.b->passed), 1);
    cf_future_release(gated[0]);
    cf_future_release(gated[1]);
    close_fixture(&t, ex);
}

/* SEMANTICS 15: in a pool of two workers, a task submitted while the only live worker is
 * busy starts on a second worker; it does not wait behind the running task (two tasks that
 * wait for each other would never finish). */
static void tasks_start_on_every_worker(void **state)
{
    (void)state;
    fixture t;
    open_fixture(&t, true);
    cf_executor *ex = new_pool(&t.o, 2);
    cf_future *f[2];
    f[0] = submit_cmd(ex, OP_GATE, t.name, 0, 0);
    assert_int_equal(word_wait(&t.b->started, 1, TU_LONG), 0);
    f[1] = submit_cmd(ex, OP_GATE, t.name, 1, 1);
    int both = word_wait(&t.b->started, 2, TU_LONG);
    board_release(t.b);
    if (both != 0)
        fail_msg("only %u of 2 tasks started on a pool of 2 workers",
                 (unsigned)atomic_load(&t.b->started));
    for (uint32_t i = 0; i < 2; i++) {
        expect_answer(f[i], i);
        cf_future_release(f[i]);
    }
    close_fixture(&t, ex);
}

/* SEMANTICS 23: a worker killed between tasks is replaced and nothing is lost, also for
 * tasks submitted before the pool has noticed the death. */
static void worker_killed_while_idle(void **state)
{
    (void)state;
    fixture t;
    open_fixture(&t, false);
    cf_executor *ex = new_pool(&t.o, 1);
    cf_future *first = submit_cmd(ex, OP_VALUE, NULL, 0, 1);
    expect_answer(first, 1);
    long victim = cf_future_pid(first);
    cf_future_release(first);
    assert_int_equal(kill((pid_t)victim, SIGKILL), 0);
    cf_future *after[8];
    for (uint32_t i = 0; i < 8; i++)
        after[i] = submit_cmd(ex, OP_VALUE, NULL, 0, 10 + i);
    for (uint32_t i = 0; i < 8; i++) {
        expect_answer(after[i], 10 + i);
        assert_int_not_equal(cf_future_pid(after[i]), victim);
        cf_future_release(after[i]);
    }
    expect_reaped((pid_t)victim);
    assert_int_equal(cf_executor_error(ex, NULL, NULL), 0);
    close_fixture(&t, ex);
}

/* Workers of worker_killed_while_starting hold here, before main(), when the test names a
 * board in this variable: the first one waits to be killed, later ones go on.  Only the
 * test's children can see it (the test sets it after its own start). */
#define HOLD_ENV "CF_TEST_PROCESS_HOLD_START"

__attribute__((constructor)) static void hold_first_worker(void)
{
    const char *path = getenv(HOLD_ENV);
    board *b = path ? board_open(path) : NULL;
    if (!b)
        return;
    uint32_t n = atomic_fetch_add(&b->started, 1);
    if (n < SLOTS)
        atomic_store(&b->pid[n], (int32_t)getpid());
    word_wake(&b->started);
    if (n == 0)
        word_wait(&b->release, 1, TU_LONG);
    munmap(b, sizeof *b);
}

/* SEMANTICS 23: a worker killed from outside before it is ready (a pool without an
 * initializer, so nothing failed in it) is replaced like any idle worker; the pool does
 * not break. */
static void worker_killed_while_starting(void **state)
{
    (void)state;
    fixture t;
    open_fixture(&t, true);
    assert_int_equal(setenv(HOLD_ENV, t.name, 1), 0);
    cf_executor *ex = new_pool(&t.o, 1);
    cf_future *f = submit_cmd(ex, OP_VALUE, NULL, 0, 5);
    assert_int_equal(word_wait(&t.b->started, 1, TU_LONG), 0);
    pid_t victim = atomic_load(&t.b->pid[0]);
    assert_int_equal(kill(victim, SIGKILL), 0);
    int rc = cf_future_result(f, TU_LONG, NULL);
    int code = 0;
    const char *message = NULL;
    cf_future_error(f, &code, &message);
    if (rc != 0)
        fail_msg("the task after a worker killed while starting: %s (%d, %s)", cf_err_name(rc),
                 code, message ? message : "no message");
    expect_answer(f, 5);
    assert_int_not_equal(cf_future_pid(f), victim);
    assert_int_equal(cf_executor_error(ex, NULL, NULL), 0);
    cf_future_release(f);
    unsetenv(HOLD_ENV);
    close_fixture(&t, ex);
}

/* ---- payload limits (SEMANTICS 22) ---------------------------------------------------- */

static void payload_sizes_round_trip(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, 64 * 1024, 64 * 1024 + 1, (size_t)64 << 20};
    enum { N = sizeof sizes / sizeof sizes[0] };
    fixture t;
    open_fixture(&t, false);
    cf_executor *ex = new_pool(&t.o, 2);
    unsigned char *in[N];
    cf_future *f[N];
    for (int i = 0; i < N; i++) {
        in[i] = malloc(sizes[i] ? sizes[i] : 1);
        assert_non_null(in[i]);
        tu_fill_pattern(in[i], sizes[i], (unsigned)i + 1);
        assert_int_equal(cf_submit_bytes(ex, &xor_fn, in[i], sizes[i], &f[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        const unsigned char *out = NULL;
        size_t len = 99;
        assert_int_equal(cf_future_bytes(f[i], TU_LONG, (const void **)&out, &len), 0);
        assert_int_equal(len, sizes[i]);
        for (size_t k = 0; k < len; k++)
            if (out[k] != (in[i][k] ^ 0x5a))
                fail_msg("%zu-byte payload: byte %zu is %#x, not %#x", sizes[i], k, out[k],
                         in[i][k] ^ 0x5a);
        cf_future_release(f[i]);
        free(in[i]);
    }
    close_fixture(&t, ex);
}

/* The inode of the file mapped at addr in this process (a result's memfd), or 0. */
static unsigned long mapped_inode(const void *addr)
{
    FILE *maps = fopen("/proc/self/maps", "r");
    assert_non_null(maps);
    char line[512];
    unsigned long inode = 0;
    while (!inode && fgets(line, sizeof line, maps)) {
        uintptr_t lo, hi;
        unsigned long ino;
        if (sscanf(line, "%" SCNxPTR "-%" SCNxPTR " %*s %*s %*s %lu", &lo, &hi, &ino) == 3 &&
            (uintptr_t)addr >= lo && (uintptr_t)addr < hi)
            inode = ino;
    }
    fclose(maps);
    return inode;
}

/* How many descriptors of this process are big-result memfds. */
static int result_memfds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        char target[128];
        ssize_t len = readlinkat(dirfd(d), e->d_name, target, sizeof target - 1);
        if (len > 0) {
            target[len] = '\0';
            n += strstr(target, "memfd:cf-result") != NULL;
        }
    }
    closedir(d);
    return n;
}

/* Runs xor_fn over a fresh `len`-byte pattern; checks the result; returns its future. */
static cf_future *xor_checked(cf_executor *ex, size_t len, unsigned seed)
{
    unsigned char *in = malloc(len);
    assert_non_null(in);
    tu_fill_pattern(in, len, seed);
    cf_future *f;
    assert_int_equal(cf_submit_bytes(ex, &xor_fn, in, len, &f), 0);
    const unsigned char *out;
    size_t out_len;
    assert_int_equal(cf_future_bytes(f, TU_LONG, (const void **)&out, &out_len), 0);
    assert_int_equal(out_len, len);
    for (size_t k = 0; k < len; k++)
        if (out[k] != (in[k] ^ 0x5a))
            fail_msg("seed %u, %zu bytes: byte %zu is %#x, not %#x", seed, len, k, out[k],
                     in[k] ^ 0x5a);
    free(in);
    return f;
}

/*
 * Big results' buffers are reused once their futures let go (spares.c), and never while a
 * future holds one: a held result keeps its bytes and its buffer while forty others, of
 * four sizes, pass through a one-worker pool, and the forty share a few buffers between
 * them.  Buffers nobody reuses are closed after a second; a result released after its pool
 * is freed closes its buffer (no descriptor left).
 */
static void big_result_buffers_are_recycled_not_shared(void **state)
{
    (void)state;
    static const size_t sizes[] = {1 << 20, 700 << 10, (1 << 20) + 1, 100 << 10};
    enum { ROUNDS = 40 };
    fixture t;
    open_fixture(&t, false);
    cf_executor *ex = new_pool(&t.o, 1);
    cf_future *held = xor_checked(ex, (size_t)2 << 20, 1000);
    const unsigned char *held_out;
    size_t held_len;
    assert_int_equal(cf_future_bytes(held, 0, (const void **)&held_out, &held_len), 0);
    unsigned long held_inode = mapped_inode(held_out);
    assert_true(held_inode != 0);

    unsigned long inodes[ROUNDS];
    int distinct = 0;
    for (int i = 0; i < ROUNDS; i++) {
        cf_future *f = xor_checked(ex, sizes[i % 4], (unsigned)i);
        const void *out;
        assert_int_equal(cf_future_bytes(f, 0, &out, NULL), 0);
        unsigned long inode = mapped_inode(out);
        assert_true(inode != 0);
        if (inode == held_inode)
            fail_msg("result %d was written into the buffer a held future maps", i);
        int seen = 0;
        for (int k = 0; k < distinct; k++)
            seen |= inodes[k] == inode;
        if (!seen)
            inodes[distinct++] = inode;
        cf_future_release(f);
    }
    /* Without reuse every result is a new memfd; the pool keeps at most a few in play. */
    if (distinct > ROUNDS / 2)
        fail_msg("%d results used %d different buffers: none was reused", ROUNDS, distinct);

    /* Released buffers wait for reuse, then go after a quiet second: only the held
     * future's remains. */
    assert_true(result_memfds() >= 2);
    double waited = 0;
    while (result_memfds() > 1 && waited < TU_LONG) {
        tu_sleep(0.05);
        waited += 0.05;
    }
    assert_int_equal(result_memfds(), 1);

    unsigned char *expect = malloc(held_len);
    assert_non_null(expect);
    tu_fill_pattern(expect, held_len, 1000);
    for (size_t k = 0; k < held_len; k++)
        if (held_out[k] != (expect[k] ^ 0x5a))
            fail_msg("the held result changed at byte %zu", k);
    free(expect);

    cf_future *late = xor_checked(ex, 1 << 20, 7);
    cf_executor_free(ex);
    cf_future_release(late); /* after its pool: its buffer is closed, not kept */
    cf_future_release(held);
    close_fixture(&t, NULL);
}

/* An input over max_payload is refused at submit and creates nothing; in a map, only its
 * own position reports CF_ETOOBIG. */
static void input_over_limit_is_refused(void **state)
{
    (void)state;
    enum { LIMIT = 4096 };
    fixture t;
    open_fixture(&t, false);
    t.o.max_payload = LIMIT;
    cf_executor *ex = new_pool(&t.o, 2);
    unsigned char *big = calloc(1, LIMIT + 1);
    assert_non_null(big);
    cf_future *f = (cf_future *)1;
    assert_int_equal(cf_submit_bytes(ex, &xor_fn, big, LIMIT + 1, &f), CF_ETOOBIG);
    assert_null(f);
    assert_int_equal(cf_submit_bytes(ex, &xor_fn, big, LIMIT, &f), 0);
    const void *data;
    size_t len = 0;
    assert_int_equal(cf_future_bytes(f, TU_LONG, &data, &len), 0);
    assert_int_equal(len, LIMIT);
    cf_future_release(f);

    cf_bytes inputs[5];
    for (int i = 0; i < 5; i++)
        inputs[i] = (cf_bytes){big, i == 2 ? LIMIT + 1 : (size_t)i};
    cf_map *m = NULL;
    assert_int_equal(cf_map_bytes_start(&m, ex, &xor_fn, inputs, 5, NULL), 0);
    for (size_t i = 0; i < 5; i++) {
        size_t idx = 99;
        void *v = NULL;
        int rc = cf_map_next(m, &idx, &v);
        assert_int_equal(idx, i);
        assert_int_equal(rc, i == 2 ? CF_ETOOBIG : 0);
        if (rc == 0)
            assert_int_equal(cf_map_value_len(m), i);
    }
    assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
    cf_map_free(m);
    free(big);
    close_fixture(&t, ex);
}

/* A result over max_payload fails that task only, with CF_ETOOBIG; one at the limit is
 * delivered. */
static void result_over_limit_fails_only_its_task(void **state)
{
    (void)state;
    enum { LIMIT = 1 << 20 };
    fixture t;
    open_fixture(&t, false);
    t.o.max_payload = LIMIT;
    cf_executor *ex = new_pool(&t.o, 2);
    cf_future *before = submit_cmd(ex, OP_VALUE, NULL, 0, 1);
    cf_future *over = submit_cmd(ex, OP_OUTPUT, NULL, 0, LIMIT + 1);
    cf_future *at = submit_cmd(ex, OP_OUTPUT, NULL, 0, LIMIT);
    cf_future *after = submit_cmd(ex, OP_VALUE, NULL, 0, 2);
    const char *message = NULL;
    assert_int_equal(cf_future_result(over, TU_LONG, NULL), CF_ETOOBIG);
    assert_int_equal(cf_future_error(over, NULL, &message), CF_ETOOBIG);
    assert_non_null(message);
    const unsigned char *data = NULL;
    size_t len = 0;
    assert_int_equal(cf_future_bytes(at, TU_LONG, (const void **)&data, &len), 0);
    assert_int_equal(len, LIMIT);
    assert_int_equal(data[0], 0x3C);
    assert_int_equal(data[LIMIT - 1], 0x3C);
    expect_answer(before, 1);
    expect_answer(after, 2);
    cf_future_release(before);
    cf_future_release(over);
    cf_future_release(at);
    cf_future_release(after);
    close_fixture(&t, ex);
}

CF_INITIALIZER(store_init, init_store);
CF_INITIALIZER(refuse_init, init_refuse);
CF_INITIALIZER(abort_init, init_abort);
CF_INITIALIZER(sigkill_init, init_sigkill);

/* ---- initializers (SEMANTICS 16) ----------------------------------------------------- */

static void initializer_runs_with_its_arg(void **state)
{
    (void)state;
    static const char arg[] = "init-arg";
    fixture t;
    open_fixture(&t, false);
    t.o.named_initializer = &store_init;
    t.o.initializer_arg = (void *)arg;
    t.o.initializer_arg_len = sizeof arg;
    cf_executor *ex = new_pool(&t.o, 2);
    cf_future *f = submit_cmd(ex, OP_INIT_ARG, NULL, 0, 0);
    const void *data = NULL;
    size_t len = 0;
    assert_int_equal(cf_future_bytes(f, TU_LONG, &data, &len), 0);
    assert_int_equal(len, sizeof arg);
    assert_string_equal((const char *)data, arg);
    cf_future_release(f);
    close_fixture(&t, ex);
}

/* The pool is broken with the initializer's code and message: the task submitted before
 * fails with CF_EBROKEN, later submissions are refused. */
static void failing_initializer_breaks_the_pool(void **state)
{
    (void)state;
    fixture t;
    open_fixture(&t, false);
    t.o.named_initializer = &refuse_init;
    cf_executor *ex = new_pool(&t.o, 2);
    cf_future *f = submit_cmd(ex, OP_VALUE, NULL, 0, 1);
    int code = 0;
    const char *message = NULL;
    assert_int_equal(cf_future_result(f, TU_LONG, NULL), CF_EBROKEN);
    assert_int_equal(cf_future_error(f, &code, &message), CF_EBROKEN);
    assert_int_equal(code, 42);
    assert_string_equal(message, "initializer refuses");
    assert_int_equal(cf_executor_error(ex, &code, &message), CF_EBROKEN);
    assert_int_equal(code, 42);
    assert_string_equal(message, "initializer refuses");
    cmd c = make_cmd(OP_VALUE, NULL, 0, 2);
    cf_future *later = (cf_future *)1;
    assert_int_equal(cf_submit_bytes(ex, &run_cmd, &c, sizeof c, &later), CF_EBROKEN);
    assert_null(later);
    cf_future_release(f);
    close_fixture(&t, ex);
}

/* A pool of `workers` whose initializer `init` dies of signal `sig`: the pending task and
 * the executor report CF_EBROKEN, the wait status as the code, and a message containing
 * `needle`. */
static void initializer_death_breaks(const cf_initializer *init, int workers, int sig,
                                     const char *needle)
{
    fixture t;
    open_fixture(&t, false);
    t.o.named_initializer = init;
    cf_executor *ex = new_pool(&t.o, workers);
    cf_future *f = submit_cmd(ex, OP_VALUE, NULL, 0, 1);
    int code = 0;
    const char *message = NULL;
    assert_int_equal(cf_future_result(f, TU_LONG, NULL), CF_EBROKEN);
    assert_int_equal(cf_executor_error(ex, &code, &message), CF_EBROKEN);
    assert_true(WIFSIGNALED(code));
    assert_int_equal(WTERMSIG(code), sig);
    assert_non_null(message);
    assert_non_null(strstr(message, needle));
    cf_future_release(f);
    close_fixture(&t, ex);
}

/* A worker that dies in its initializer counts as a failed initializer; the executor's
 * error is the wait status and names the pid. */
static void crashing_initializer_breaks_the_pool(void **state)
{
    (void)state;
    initializer_death_breaks(&abort_init, 1, SIGABRT, "worker");
}

/* SEMANTICS 32 (issue 12 item 2): an initializer killed by SIGKILL (the OOM killer's
 * signal) counts as a failed start too; after START_FAILURES (3) deaths before ready in a
 * row the pool is broken, the pending task fails, the message says why: no endless
 * restarts. */
static void sigkilled_initializer_breaks_the_pool(void **state)
{
    (void)state;
    initializer_death_breaks(&sigkill_init, 2, SIGKILL,
                             "3 workers in a row died before they were ready");
}

enum { BIG = 200 << 10 };

/* SEMANTICS 31 (issue 12 item 6): a task sends a memfd shaped like a result's over its
 * channel and returns; the big results of later tasks of that worker are their own bytes
 * (they were the stray file's bytes, reported as success). */
static void stray_descriptor_never_becomes_a_result(void **state)
{
    (void)state;
    fixture t;
    open_fixture(&t, false);
    cf_executor *ex = new_pool(&t.o, 1);
    cf_future *stray = submit_cmd(ex, OP_STRAY_FD, NULL, 0, 2 * BIG);
    expect_answer(stray, 2 * BIG);
    for (int i = 0; i < 4; i++) {
        cf_future *f = submit_cmd(ex, OP_OUTPUT, NULL, 0, BIG);
        expect_output(f, BIG);
        cf_future_release(f);
    }
    cf_future_release(stray);
    close_fixture(&t, ex);
}

/* SEMANTICS 31 (issue 12 item 6): a task leaves a thread writing into its result's memfd;
 * once that buffer is let go, no result of another worker is ever written into it (it
 * used to be recycled to any worker: their results read back as 0xEE, as success).  Only
 * the scribbling worker's own later results may be touched, and are not checked. */
static void leftover_writer_touches_no_other_worker(void **state)
{
    (void)state;
    fixture t;
    open_fixture(&t, false);
    cf_executor *ex = new_pool(&t.o, 2);
    cf_future *sc = submit_cmd(ex, OP_SCRIBBLE, NULL, 0, BIG);
    assert_int_equal(cf_future_result(sc, TU_LONG, NULL), 0);
    long scribbler = cf_future_pid(sc);
    cf_future_release(sc); /* its buffer goes back to the pool */
    enum { ROUNDS = 30, BATCH = 4 };
    int others = 0;
    /* At least ROUNDS rounds, and on until the other worker has returned some (under a
     * sanitizer it may still be starting after ROUNDS rounds have gone to the scribbler). */
    double end = tu_now() + TU_LONG;
    for (int r = 0; r < ROUNDS || (others == 0 && tu_now() < end); r++) {
        cf_future *f[BATCH];
        for (int i = 0; i < BATCH; i++)
            f[i] = submit_cmd(ex, OP_OUTPUT, NULL, 0, BIG);
        for (int i = 0; i < BATCH; i++) {
            assert_int_equal(cf_future_result(f[i], TU_LONG, NULL), 0);
            if (cf_future_pid(f[i]) != scribbler) {
                expect_output(f[i], BIG);
                others++;
            }
            cf_future_release(f[i]);
        }
    }
    assert_true(others > 0);
    close_fixture(&t, ex);
}

/* SEMANTICS 31 (issue 12 item 6): a task writes garbage over its worker's control block
 * (ring head, started task) and exits.  The tasks before it (their results may be in the
 * ring still) and behind it (never started: they go to another worker) get their own
 * values; only the wrecking task fails.  Rounds, because which results are still in the
 * ring when it dies varies. */
static void wrecked_control_block_costs_only_its_task(void **state)
{
    (void)state;
    enum { ROUNDS = 10, N = 7, WRECK = 3 };
    fixture t;
    open_fixture(&t, false);
    cf_executor *ex = new_pool(&t.o, 1);
    for (int r = 0; r < ROUNDS; r++) {
        cf_future *f[N];
        for (int i = 0; i < N; i++)
            f[i] = submit_cmd(ex, i == WRECK ? OP_WRECK_CTL : OP_VALUE, NULL, 0, 10u * r + i);
        for (int i = 0; i < N; i++) {
            if (i == WRECK) {
                int rc = cf_future_result(f[i], TU_LONG, NULL);
                assert_true(rc == CF_ELOST || rc == CF_EPROTO);
            } else {
                expect_answer(f[i], 10u * r + i);
            }
            cf_future_release(f[i]);
        }
    }
    close_fixture(&t, ex);
}

/* ---- shutdown while tasks run (SEMANTICS 14) ------------------------------------------ */

enum { HELD = 1, QUEUED = 6 };

typedef struct running_pool {
    fixture t;
    cf_executor *ex;
    cf_future *f[HELD + QUEUED];
    cf_state before[HELD + QUEUED]; /* the states when shutdown was called */
} running_pool;

/* One worker held at a gate, then QUEUED more tasks: the first of them handed to the held
 * worker behind its task (a worker holds two tasks when their time is not known yet), the
 * rest waiting in the pool's queue. */
static void start_running_pool(running_pool *rp)
{
    open_fixture(&rp->t, true);
    rp->ex = new_pool(&rp->t.o, 1);
    for (uint32_t i = 0; i < HELD; i++)
        rp->f[i] = submit_cmd(rp->ex, OP_GATE, rp->t.name, i, i);
    assert_int_equal(word_wait(&rp->t.b->started, HELD, TU_LONG), 0);
    for (uint32_t i = HELD; i < HELD + QUEUED; i++)
        rp->f[i] = submit_cmd(rp->ex, OP_VALUE, rp->t.name, i, i);
    for (int i = 0; i < HELD + QUEUED; i++)
        rp->before[i] = cf_future_state(rp->f[i]);
}

static void finish_running_pool(running_pool *rp)
{
    cmd c = make_cmd(OP_VALUE, NULL, 0, 1);
    cf_future *late = (cf_future *)1;
    assert_int_equal(cf_submit_bytes(rp->ex, &run_cmd, &c, sizeof c, &late), CF_ESHUTDOWN);
    assert_null(late);
    for (int i = 0; i < HELD + QUEUED; i++)
        cf_future_release(rp->f[i]);
    close_fixture(&rp->t, rp->ex);
}

typedef struct waiter {
    running_pool *rp;
    unsigned flags;
    atomic_int all_done; /* every future was done when cf_shutdown returned */
} waiter;

static void *shutdown_thread(void *arg)
{
    waiter *w = arg;
    cf_shutdown(w->rp->ex, w->flags);
    int all = 1;
    for (int i = 0; i < HELD + QUEUED; i++)
        all &= cf_future_done(w->rp->f[i]);
    atomic_store(&w->all_done, all);
    return NULL;
}

/* Every accepted task runs to its value; shutdown(WAIT) returns only after all are done,
 * and the workers are gone by then. */
static void shutdown_wait_while_tasks_run(void **state)
{
    (void)state;
    running_pool rp;
    start_running_pool(&rp);
    assert_int_equal(cf_shutdown(rp.ex, 0), 0); /* no more submissions from here */
    waiter w = {&rp, CF_SHUTDOWN_WAIT, 0};
    pthread_t t = tu_thread_start(shutdown_thread, &w);
    assert_int_equal(cf_future_state(rp.f[0]), CF_RUNNING);
    board_release(rp.t.b);
    tu_thread_join(t);
    assert_int_equal(atomic_load(&w.all_done), 1);
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    for (uint32_t i = 0; i < HELD + QUEUED; i++) {
        expect_answer(rp.f[i], i);
        assert_int_equal(atomic_load(&rp.t.b->ran[i]), 1);
    }
    finish_running_pool(&rp);
}

/* Tasks not started are cancelled and never run: those still queued, and (issue 12 item
 * 1) the one handed ahead to the held worker, which is RUNNING by its state but had not
 * started (it used to run); the held one finishes. */
static void shutdown_cancel_pending_while_tasks_run(void **state)
{
    (void)state;
    running_pool rp;
    start_running_pool(&rp);
    int pending = 0;
    for (int i = 0; i < HELD + QUEUED; i++)
        pending += rp.before[i] == CF_PENDING;
    assert_true(pending > 0); /* the workers' queues are bounded: some must wait */
    waiter w = {&rp, CF_SHUTDOWN_WAIT | CF_SHUTDOWN_CANCEL_PENDING, 0};
    pthread_t t = tu_thread_start(shutdown_thread, &w);
    /* Wait for the cancellations before releasing, so none can start in between. */
    for (int i = HELD; i < HELD + QUEUED; i++)
        assert_int_equal(cf_future_wait(rp.f[i], TU_LONG), 0);
    board_release(rp.t.b);
    tu_thread_join(t);
    assert_int_equal(atomic_load(&w.all_done), 1);
    for (uint32_t i = 0; i < HELD + QUEUED; i++) {
        if (i >= HELD) {
            assert_int_equal(cf_future_result(rp.f[i], CF_POLL, NULL), CF_ECANCELLED);
            assert_int_equal(atomic_load(&rp.t.b->ran[i]), 0);
        } else {
            expect_answer(rp.f[i], i);
            assert_int_equal(atomic_load(&rp.t.b->ran[i]), 1);
        }
    }
    finish_running_pool(&rp);
}

/* KILL with CANCEL_PENDING: running tasks' workers are killed (their futures cancelled),
 * queued ones are cancelled; shutdown returns without the gates ever opening. */
static void shutdown_kill_while_tasks_run(void **state)
{
    (void)state;
    running_pool rp;
    start_running_pool(&rp);
    long held_pid[HELD];
    for (int i = 0; i < HELD; i++)
        held_pid[i] = cf_future_pid(rp.f[i]);
    assert_int_equal(
        cf_shutdown(rp.ex, CF_SHUTDOWN_WAIT | CF_SHUTDOWN_CANCEL_PENDING | CF_SHUTDOWN_KILL), 0);
    for (int i = 0; i < HELD + QUEUED; i++) {
        assert_int_equal(cf_future_result(rp.f[i], CF_POLL, NULL), CF_ECANCELLED);
        assert_int_equal(cf_future_state(rp.f[i]), CF_CANCELLED);
    }
    for (int i = 0; i < HELD; i++)
        assert_int_equal(tu_child_state((pid_t)held_pid[i]), 0);
    assert_int_equal(atomic_load(&rp.t.b->passed), 0);
    for (int i = HELD; i < HELD + QUEUED; i++)
        assert_int_equal(atomic_load(&rp.t.b->ran[i]), 0);
    finish_running_pool(&rp);
}

/* ---- cancelling a running task (SEMANTICS 2, 24) ----------------------------------- */

static void cancel_running_task_is_refused(void **state)
{
    (void)state;
    fixture t;
    open_fixture(&t, true);
    cf_executor *ex = new_pool(&t.o, 1);
    cf_future *f = submit_cmd(ex, OP_GATE, t.name, 0, 4);
    assert_int_equal(word_wait(&t.b->started, 1, TU_LONG), 0);
    assert_int_equal(cf_future_cancel(f), CF_EBUSY);
    assert_int_equal(cf_future_state(f), CF_RUNNING);
    board_release(t.b);
    expect_answer(f, 4);
    cf_future_release(f);
    close_fixture(&t, ex);
}

static void kill_on_cancel_kills_only_that_worker(void **state)
{
    (void)state;
    fixture t;
    open_fixture(&t, true);
    t.o.kill_on_cancel = 1;
    cf_executor *ex = new_pool(&t.o, 2);
    cf_future *f[2];
    for (uint32_t i = 0; i < 2; i++)
        f[i] = submit_cmd(ex, OP_GATE, t.name, i, i);
    assert_int_equal(word_wait(&t.b->started, 2, TU_LONG), 0);
    long victim = cf_future_pid(f[0]);
    assert_int_equal(victim, atomic_load(&t.b->pid[0]));
    assert_int_equal(cf_future_cancel(f[0]), 0);
    assert_int_equal(cf_future_state(f[0]), CF_CANCELLED);
    assert_int_equal(cf_future_result(f[0], CF_POLL, NULL), CF_ECANCELLED);
    assert_int_equal(cf_future_cancel(f[0]), 0);
    expect_reaped((pid_t)victim);
    assert_int_equal(cf_future_state(f[1]), CF_RUNNING);
    board_release(t.b);
    expect_answer(f[1], 1);
    assert_int_equal(atomic_load(&t.b->passed), 1); /* the killed task never went on */
    cf_future *again = submit_cmd(ex, OP_VALUE, NULL, 0, 9);
    expect_answer(again, 9);
    assert_int_not_equal(cf_future_pid(again), victim);
    cf_future_release(again);
    cf_future_release(f[0]);
    cf_future_release(f[1]);
    close_fixture(&t, ex);
}

/* ---- the rest of the process pool's contract --------------------------------------- */

/* SEMANTICS 25: with one worker and N = 3, tasks run in threes, each three in a new
 * process. */
static void max_tasks_per_worker_replaces_workers(void **state)
{
    (void)state;
    enum { N = 3, TASKS = 9 };
    fixture t;
    open_fixture(&t, false);
    t.o.max_tasks_per_worker = N;
    cf_executor *ex = new_pool(&t.o, 1);
    cf_future *f[TASKS];
    for (uint32_t i = 0; i < TASKS; i++)
        f[i] = submit_cmd(ex, OP_VALUE, NULL, 0, i);
    for (uint32_t i = 0; i < TASKS; i++)
        expect_answer(f[i], i);
    for (int i = 1; i < TASKS; i++) {
        if (i % N)
            assert_int_equal(cf_future_pid(f[i]), cf_future_pid(f[i - 1]));
        else
            for (int k = 0; k < i; k++)
                assert_int_not_equal(cf_future_pid(f[i]), cf_future_pid(f[k]));
    }
    for (int i = 0; i < TASKS; i++)
        cf_future_release(f[i]);
    close_fixture(&t, ex);
}

/* SEMANTICS 21: workers start (by exec) while other threads of the parent allocate without
 * pause, so any lock a fork could copy held is busy at every spawn. */
static atomic_int stop_churn;

static int churn_task(void *arg, void **result, cf_ctx *ctx)
{
    (void)arg;
    (void)result;
    (void)ctx;
    double end = tu_now() + TU_LONG;
    while (!atomic_load(&stop_churn) && tu_now() < end) {
        void *p = malloc(1000);
        free(p);
    }
    return 0;
}

static void workers_start_while_threads_run(void **state)
{
    (void)state;
    enum { TASKS = 12 };
    cf_executor *threads = NULL;
    cf_executor_opts to;
    cf_executor_opts_init(&to);
    to.workers = 2;
    assert_int_equal(cf_executor_new(&threads, CF_BACKEND_THREADS, &to), 0);
    cf_future *churn[2];
    for (int i = 0; i < 2; i++)
        churn[i] = tu_submit(threads, churn_task, NULL);
    fixture t;
    open_fixture(&t, false);
    t.o.max_tasks_per_worker = 1; /* a new worker for every task */
    cf_executor *ex = new_pool(&t.o, 2);
    cf_future *f[TASKS];
    for (uint32_t i = 0; i < TASKS; i++)
        f[i] = submit_cmd(ex, OP_VALUE, NULL, 0, i);
    for (uint32_t i = 0; i < TASKS; i++) {
        expect_answer(f[i], i);
        cf_future_release(f[i]);
    }
    assert_int_equal(cf_future_state(churn[0]), CF_RUNNING); /* threads ran throughout */
    close_fixture(&t, ex);
    atomic_store(&stop_churn, 1);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(cf_future_result(churn[i], TU_LONG, NULL), 0);
        cf_future_release(churn[i]);
    }
    cf_executor_free(threads);
}

/*
 * CF_ENOFUNC: resolve.c refuses, at submit, a cf_function object that no loaded module
 * maps (here: on the heap) and a cf_function whose code no module maps (here: an anonymous
 * executable mapping, as generated code would be); an initializer in such code is refused
 * by cf_executor_new.
 */
static int unreachable_fn(const void *in, size_t len, cf_ctx *ctx)
{
    (void)in;
    (void)len;
    return cf_fail(ctx, 1, "must never run");
}

static cf_function generated_fn = {"generated_fn", NULL};

static void functions_outside_modules_are_refused(void **state)
{
    (void)state;
    fixture t;
    open_fixture(&t, false);
    cf_executor *ex = new_pool(&t.o, 1);
    cf_function *heap_fn = malloc(sizeof *heap_fn);
    assert_non_null(heap_fn);
    heap_fn->name = "heap_fn";
    heap_fn->fn = unreachable_fn;
    void *code = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(code != MAP_FAILED);
    generated_fn.fn = (cf_bytes_fn)(uintptr_t)code;

    const cf_function *refused[] = {heap_fn, &generated_fn};
    for (int i = 0; i < 2; i++) {
        cf_future *f = (cf_future *)1;
        assert_int_equal(cf_submit_bytes(ex, refused[i], "x", 1, &f), CF_ENOFUNC);
        assert_null(f);
        cf_bytes in = {"x", 1};
        cf_map *m = (cf_map *)1;
        assert_int_equal(cf_map_bytes_start(&m, ex, refused[i], &in, 1, NULL), CF_ENOFUNC);
        assert_null(m);
    }
    cf_future *f = submit_cmd(ex, OP_VALUE, NULL, 0, 3); /* the pool is unharmed */
    expect_answer(f, 3);
    cf_future_release(f);
    cf_executor_free(ex);

    cf_executor_opts bad;
    cf_executor_opts_init(&bad);
    bad.workers = 1;
    static cf_initializer generated = {"generated", NULL};
    generated.fn = (cf_init_fn)(uintptr_t)code;
    bad.named_initializer = &generated;
    cf_executor *none = (cf_executor *)1;
    assert_int_equal(cf_executor_new(&none, CF_BACKEND_PROCESSES, &bad), CF_ENOFUNC);
    assert_null(none);
    munmap(code, 4096);
    free(heap_fn);
    expect_clean(t.fds);
}

/* SEMANTICS 36 (issue 12 item 9): a process pool never calls a bare address in a worker:
 * a bare `initializer` is refused at creation (CF_ENOFUNC, nothing left behind), both
 * forms at once are CF_EINVAL, and the named form runs.  Thread pools take either. */
static void process_initializer_must_be_named(void **state)
{
    (void)state;
    fixture t;
    open_fixture(&t, false);
    cf_executor_opts o;
    cf_executor_opts_init(&o);
    o.workers = 1;
    o.initializer = init_store;
    cf_executor *ex = (cf_executor *)1;
    assert_int_equal(cf_executor_new(&ex, CF_BACKEND_PROCESSES, &o), CF_ENOFUNC);
    assert_null(ex);
    o.named_initializer = &store_init;
    ex = (cf_executor *)1;
    assert_int_equal(cf_executor_new(&ex, CF_BACKEND_PROCESSES, &o), CF_EINVAL);
    assert_null(ex);
    assert_int_equal(cf_executor_new(&ex, CF_BACKEND_THREADS, &o), CF_EINVAL);
    assert_null(ex);
    expect_clean(t.fds);
    /* A thread pool runs the named form too. */
    cf_executor_opts to;
    cf_executor_opts_init(&to);
    to.workers = 1;
    to.named_initializer = &store_init;
    to.initializer_arg = (void *)"threads";
    assert_int_equal(cf_executor_new(&ex, CF_BACKEND_THREADS, &to), 0);
    cf_future *tf = NULL;
    assert_int_equal(cf_submit_bytes(ex, &run_cmd, &(cmd){.op = OP_VALUE}, sizeof(cmd), &tf), 0);
    assert_int_equal(cf_future_wait(tf, TU_LONG), 0);
    cf_future_release(tf);
    cf_executor_free(ex);
    assert_string_equal(init_stored, "threads");
    o.initializer = NULL;
    static const char arg[] = "named";
    o.initializer_arg = (void *)arg;
    o.initializer_arg_len = sizeof arg;
    assert_int_equal(cf_executor_new(&ex, CF_BACKEND_PROCESSES, &o), 0);
    cf_future *f = submit_cmd(ex, OP_INIT_ARG, NULL, 0, 0);
    const void *data = NULL;
    size_t len = 0;
    assert_int_equal(cf_future_bytes(f, TU_LONG, &data, &len), 0);
    assert_string_equal((const char *)data, arg);
    cf_future_release(f);
    close_fixture(&t, ex);
}

/* Pointer tasks cannot cross processes: cf_submit and cf_map_start refuse them. */
static void pointer_tasks_are_not_supported(void **state)
{
    (void)state;
    fixture t;
    open_fixture(&t, false);
    cf_executor *ex = new_pool(&t.o, 1);
    cf_future *f = (cf_future *)1;
    assert_int_equal(cf_submit(ex, tu_task_identity, NULL, &f), CF_ENOTSUP);
    assert_null(f);
    void *inputs[1] = {NULL};
    cf_map *m = (cf_map *)1;
    assert_int_equal(cf_map_start(&m, ex, tu_task_identity, inputs, 1, NULL), CF_ENOTSUP);
    assert_null(m);
    close_fixture(&t, ex);
}

/* SEMANTICS 13, 23: a map over processes with one crashing position: that position is
 * CF_ELOST with its worker's status, every other one has its value, in order. */
static void map_with_a_crashing_position(void **state)
{
    (void)state;
    enum { N = 300, CRASH = 123 };
    fixture t;
    open_fixture(&t, true);
    cf_executor *ex = new_pool(&t.o, 2);
    cmd *cmds = calloc(N, sizeof *cmds);
    cf_bytes *inputs = calloc(N, sizeof *inputs);
    assert_non_null(cmds);
    assert_non_null(inputs);
    for (uint32_t i = 0; i < N; i++) {
        cmds[i] = i == CRASH ? make_cmd(OP_ABORT, t.name, 0, 0) : make_cmd(OP_VALUE, NULL, 0, i);
        inputs[i] = (cf_bytes){&cmds[i], sizeof cmds[i]};
    }
    cf_map *m = NULL;
    assert_int_equal(cf_map_bytes_start(&m, ex, &run_cmd, inputs, N, NULL), 0);
    for (size_t i = 0; i < N; i++) {
        size_t idx = SIZE_MAX;
        void *v = NULL;
        int rc = cf_map_next(m, &idx, &v);
        assert_int_equal(idx, i);
        if (i == CRASH) {
            assert_int_equal(rc, CF_ELOST);
            continue;
        }
        if (rc != 0 || cf_map_value_len(m) != sizeof(answer))
            fail_msg("position %zu: %s", i, cf_err_name(rc));
        answer a;
        memcpy(&a, v, sizeof a);
        assert_int_equal(a.value, expected(i));
    }
    assert_int_equal(cf_map_next(m, NULL, NULL), CF_EEND);
    cf_map_free(m);
    expect_reaped(atomic_load(&t.b->pid[0]));
    cf_future *f = submit_cmd(ex, OP_VALUE, NULL, 0, 8);
    expect_answer(f, 8);
    cf_future_release(f);
    free(cmds);
    free(inputs);
    close_fixture(&t, ex);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(segfault_fails_only_its_task),
    cmocka_unit_test(abort_fails_only_its_task),
    cmocka_unit_test(exit_fails_only_its_task),
    cmocka_unit_test(endless_task_hits_its_time_limit),
    cmocka_unit_test(causes_are_exact_with_sigchld_ignored),
    cmocka_unit_test(ignored_signals_stay_ignored_in_workers),
    cmocka_unit_test(worker_without_its_channel_is_replaced),
    cmocka_unit_test(worker_marker_alone_makes_no_worker),
    cmocka_unit_test(worker_needs_its_pools_secret),
    cmocka_unit_test(garbage_message_fails_only_its_task),
    cmocka_unit_test(truncated_message_fails_only_its_task),
    cmocka_unit_test(tasks_run_before_a_bad_message_is_seen_run_once),
    cmocka_unit_test(worker_killed_while_busy),
    cmocka_unit_test(tasks_start_on_every_worker),
    cmocka_unit_test(worker_killed_while_idle),
    cmocka_unit_test(worker_killed_while_starting),
    cmocka_unit_test(payload_sizes_round_trip),
    cmocka_unit_test(input_over_limit_is_refused),
    cmocka_unit_test(result_over_limit_fails_only_its_task),
    cmocka_unit_test(initializer_runs_with_its_arg),
    cmocka_unit_test(failing_initializer_breaks_the_pool),
    cmocka_unit_test(crashing_initializer_breaks_the_pool),
    cmocka_unit_test(sigkilled_initializer_breaks_the_pool),
    cmocka_unit_test(shutdown_wait_while_tasks_run),
    cmocka_unit_test(shutdown_cancel_pending_while_tasks_run),
    cmocka_unit_test(shutdown_kill_while_tasks_run),
    cmocka_unit_test(cancel_running_task_is_refused),
    cmocka_unit_test(kill_on_cancel_kills_only_that_worker),
    cmocka_unit_test(max_tasks_per_worker_replaces_workers),
    cmocka_unit_test(workers_start_while_threads_run),
    cmocka_unit_test(functions_outside_modules_are_refused),
    cmocka_unit_test(pointer_tasks_are_not_supported),
    cmocka_unit_test(process_initializer_must_be_named),
    cmocka_unit_test(setuid_program_is_never_a_worker),
    cmocka_unit_test(map_with_a_crashing_position),
    cmocka_unit_test(big_result_buffers_are_recycled_not_shared),
    cmocka_unit_test(stray_descriptor_never_becomes_a_result),
    cmocka_unit_test(leftover_writer_touches_no_other_worker),
    cmocka_unit_test(time_limit_fires_while_results_stream),
    cmocka_unit_test(shutdown_wait_from_callback_changes_nothing),
    cmocka_unit_test(no_task_waits_behind_a_busy_worker),
    cmocka_unit_test(task_handed_ahead_is_cancellable),
    cmocka_unit_test(handed_task_reads_running_once_started),
    cmocka_unit_test(claimed_tasks_never_hang),
    cmocka_unit_test(blocking_tasks_each_get_a_worker_under_load),
    cmocka_unit_test(stopped_worker_gives_its_tasks_back),
    cmocka_unit_test(wrecked_control_block_costs_only_its_task),
};

CF_TEST_MAIN(tests)
