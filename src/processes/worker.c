/*
 * worker.c -- cf_init() and the life of a worker process.
 *
 * cf_init() in a process started by a pool (CF__WORKER_ENV set) never returns: the worker
 * asks to be killed when the pool's manager thread goes (PR_SET_PDEATHSIG, then checks the
 * parent is still the one that started it, which closes the race), names itself
 * "<name>-p<index>", applies its memory limit, runs the initializer, says HELLO, and then
 * serves messages in order until the parent closes the channel.
 *
 * A task runs between two stores to the control block: running_seq = seq before the call
 * and 0 after its RESULT is in the ring, so a death is charged to exactly that task, and
 * tasks behind it in the channel (never started) go to another worker.  Each result is
 * published in the ring (shared memory) as soon as it exists, so everything finished
 * before a crash reaches the parent; the doorbell costs a system call only when the
 * manager sleeps.  Single-threaded; no locks.
 */
#define _GNU_SOURCE
#include "process.h"

#include <errno.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

_Atomic int cf__init_called;

#define WORKER_SPIN_NS 30000 /* the longest a worker polls for its next task */

typedef struct slot {
    int fd;
    uint8_t *map;
    size_t size;
} slot;

typedef struct fn_entry {
    const cf_function *fn; /* NULL: not found, see why */
    char *why;
} fn_entry;

static struct worker_state {
    int active;
    int fd;
    cf__control *ctl;
    uint8_t *ring;
    uint64_t head;
    int result_fd;       /* the memfd of the current task's big result, or -1 */
    uint8_t *result_map;
    size_t result_len;
    int spares[CF__SPARES_PER_WORKER]; /* released results' memfds from the parent */
    int spares_len;
    slot in[2];
    uint32_t index, max_tasks;
    uint64_t max_payload;
    uint64_t tasks_done;
    fn_entry *fns;
    uint32_t fns_len;
    uint8_t *buf;
    size_t buf_len, buf_cap;
    cf__wbuf wb;
} W;

static void __attribute__((noreturn)) leave(int status)
{
    fflush(NULL);
    _exit(status);
}

/* Puts bytes into the result ring (waiting for room), publishes them, and rings the
 * doorbell if the manager is about to sleep. */
static void ring_put(const uint8_t *p, size_t n)
{
    while (n) {
        size_t chunk = n < CF__RING_SIZE / 2 ? n : CF__RING_SIZE / 2;
        for (;;) {
            uint64_t tail = atomic_load(&W.ctl->ring_tail);
            if (W.head + chunk - tail <= CF__RING_SIZE)
                break;
            uint32_t seen = atomic_load(&W.ctl->tail_moved);
            atomic_store(&W.ctl->worker_waits, 1);
            if (W.head + chunk - atomic_load(&W.ctl->ring_tail) > CF__RING_SIZE)
                syscall(SYS_futex, &W.ctl->tail_moved, FUTEX_WAIT, seen, NULL, NULL, 0);
            atomic_store(&W.ctl->worker_waits, 0);
        }
        memcpy(W.ring + (W.head & (CF__RING_SIZE - 1)), p, chunk);
        W.head += chunk;
        atomic_store(&W.ctl->ring_head, W.head); /* seq_cst: before reading parent_sleeps */
        if (atomic_load(&W.ctl->parent_sleeps)) {
            char bell = 1;
            if (send(W.fd, &bell, 1, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno == EPIPE)
                leave(1); /* the parent is gone */
        }
        p += chunk;
        n -= chunk;
    }
}

static void send_message(uint32_t type, const cf__wire_msg *m)
{
    W.wb.len = 0;
    if (cf__wire_put(&W.wb, type, m))
        leave(1);
    ring_put(W.wb.data, W.wb.len);
}

static uint32_t text_len(const char *text)
{
    size_t n = text ? strlen(text) : 0;
    return (uint32_t)(n > CF__TEXT_MAX ? CF__TEXT_MAX : n);
}

/* Maps input slot s (read-only) with at least `need` bytes; the parent grew it already. */
static int map_slot(slot *s, size_t need)
{
    if (s->map && s->size >= need)
        return 0;
    struct stat st;
    if (fstat(s->fd, &st) != 0 || (size_t)st.st_size < need)
        return -1;
    size_t size = (size_t)st.st_size;
    if (s->map)
        munmap(s->map, s->size);
    s->map = mmap(NULL, size, PROT_READ, MAP_SHARED, s->fd, 0);
    if (s->map == MAP_FAILED) {
        s->map = NULL;
        s->size = 0;
        return -1;
    }
    s->size = size;
    return 0;
}

static void drop_result_memfd(void)
{
    if (W.result_map)
        munmap(W.result_map, W.result_len);
    if (W.result_fd >= 0)
        close(W.result_fd);
    W.result_map = NULL;
    W.result_fd = -1;
    W.result_len = 0;
}

/*
 * A memfd of at least len bytes for a big result: a spare one from the parent when it has
 * pages to reuse and not more than twice what is needed (the future keeps all of them),
 * else a fresh one.  -1 if none can be made.
 */
static int result_memfd(size_t len)
{
    while (W.spares_len > 0) {
        int fd = W.spares[--W.spares_len];
        struct stat st;
        if (fstat(fd, &st) == 0 && (size_t)st.st_size <= 2 * len &&
            ((size_t)st.st_size >= len || ftruncate(fd, (off_t)len) == 0))
            return fd;
        close(fd);
    }
    int fd = memfd_create("cf-result", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd >= 0 && ftruncate(fd, (off_t)len) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* cf_ctx_output in a worker: a big result is written straight into a memfd that the
 * parent maps as the future's value, instead of a private buffer copied twice. */
static void *output_shared(size_t len)
{
    if (len <= CF__INLINE_MAX || len > W.max_payload)
        return NULL;
    drop_result_memfd();
    int fd = result_memfd(len);
    if (fd < 0)
        return NULL;
    /* Populated: the task writes every page, and one call maps them all. */
    void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (map == MAP_FAILED) {
        close(fd);
        return NULL;
    }
    W.result_fd = fd;
    W.result_map = map;
    W.result_len = len;
    return map;
}

/* Hands the result memfd to the parent, before the RESULT that refers to it.  Unmapped and
 * closed here: from now on it is the future's, and no worker may write it (spares.c). */
static int pass_result_memfd(uint64_t *ino)
{
    struct stat st;
    if (fstat(W.result_fd, &st) != 0)
        return -1;
    *ino = (uint64_t)st.st_ino;
    munmap(W.result_map, W.result_len);
    W.result_map = NULL;
    char byte = 0;
    ssize_t n;
    while ((n = cf__chan_send(W.fd, &byte, 1, &W.result_fd, 1, MSG_NOSIGNAL)) < 0 &&
           errno == EINTR)
        ;
    drop_result_memfd();
    return n == 1 ? 0 : -1;
}

static void send_result(uint64_t seq, int rc, cf_ctx *ctx, int64_t start)
{
    cf__wire_msg r = {.seq = seq, .run_ns = (uint64_t)(cf__now_ns() - start),
                      .start_ns = (uint64_t)start, .where = CF__WHERE_INLINE};
    char why[160];
    if (rc) {
        r.outcome = CF_ETASK;
        r.code = rc;
        r.text = ctx->message;
        r.text_len = text_len(ctx->message);
    } else if (ctx->out_len > W.max_payload) {
        r.outcome = CF_ETOOBIG;
        snprintf(why, sizeof why, "result of %zu bytes exceeds the pool's max_payload of %llu",
                 ctx->out_len, (unsigned long long)W.max_payload);
        r.text = why;
        r.text_len = text_len(why);
    } else if (ctx->out_len > CF__INLINE_MAX) {
        if (!ctx->out_is_shared) { /* cf_ctx_set_output's copy, or memfds ran out earlier */
            void *shared = output_shared(ctx->out_len);
            if (shared)
                memcpy(shared, ctx->out, ctx->out_len);
        }
        if (W.result_len != ctx->out_len || pass_result_memfd(&r.out_ino) != 0) {
            r.outcome = CF_ENOMEM;
            r.text = "cannot pass the result to the parent";
            r.text_len = text_len(r.text);
        } else {
            r.where = CF__WHERE_OUT;
            r.data_len = ctx->out_len;
        }
    } else {
        r.data = ctx->out;
        r.data_len = ctx->out_len;
    }
    send_message(CF__W_RESULT, &r);
}

static void fail_task(uint64_t seq, int outcome, const char *why)
{
    cf__wire_msg r = {.seq = seq, .outcome = outcome, .text = why, .text_len = text_len(why)};
    send_message(CF__W_RESULT, &r);
}

/* ---- messages ------------------------------------------------------------------------ */

static void on_config(const cf__wire_msg *m)
{
    W.index = m->index;
    W.max_tasks = m->max_tasks;
    W.max_payload = m->max_payload;
    char name[32];
    snprintf(name, sizeof name, "%.*s-p%u", (int)m->name_len, m->name, m->index);
    prctl(PR_SET_NAME, name, 0, 0, 0);
    if (m->memory_limit) {
        struct rlimit rl = {(rlim_t)m->memory_limit, (rlim_t)m->memory_limit};
        setrlimit(RLIMIT_AS, &rl);
    }
    cf__wire_msg hello = {.pid = (int32_t)getpid()};
    cf_ctx ctx = {.worker = (int)m->index};
    char why[512];
    if (m->has_init) {
        const cf_initializer *named = cf__modref_resolve(&m->ref, why, sizeof why);
        cf_init_fn init = named ? named->fn : NULL;
        if (!init) {
            hello.outcome = CF_EBROKEN;
            hello.text = why;
        } else {
            void *arg = NULL;
            if (m->init_arg_len && (arg = malloc(m->init_arg_len)))
                memcpy(arg, m->init_arg, m->init_arg_len);
            /* arg stays for the worker's life: the initializer may keep it. */
            int rc = init(arg, &ctx);
            if (rc) {
                hello.outcome = CF_EBROKEN;
                hello.code = rc;
                hello.text = ctx.message;
            }
        }
        hello.text_len = text_len(hello.text);
    }
    send_message(CF__W_HELLO, &hello);
    cf__ctx_reset(&ctx);
    if (hello.outcome)
        leave(0);
}

static void on_func(const cf__wire_msg *m)
{
    if (m->fn_id >= W.fns_len) {
        uint32_t n = m->fn_id + 16;
        fn_entry *grown = realloc(W.fns, n * sizeof *grown);
        if (!grown)
            leave(1);
        memset(grown + W.fns_len, 0, (n - W.fns_len) * sizeof *grown);
        W.fns = grown;
        W.fns_len = n;
    }
    char why[512];
    fn_entry *e = &W.fns[m->fn_id];
    free(e->why);
    e->why = NULL;
    e->fn = cf__modref_resolve(&m->ref, why, sizeof why);
    if (!e->fn)
        e->why = strdup(why);
}

/* The start handshake (process.h): false if the parent took the task back. */
static bool claim(uint64_t seq)
{
    uint64_t v = atomic_load(&W.ctl->start_word);
    while (v >> 1 < seq)
        if (atomic_compare_exchange_weak(&W.ctl->start_word, &v, seq << 1))
            return true;
    return false;
}

static void on_task(const cf__wire_msg *m)
{
    atomic_store(&W.ctl->seen_seq, m->seq);
    if (!claim(m->seq))
        return; /* taken back: another worker runs it, and no answer is expected */
    if (m->not_after && cf__now_ns() >= (int64_t)m->not_after) {
        fail_task(m->seq, CF_ETIMEDOUT, "the map's deadline passed before it started");
        return;
    }
    fn_entry *e = m->fn_id < W.fns_len ? &W.fns[m->fn_id] : NULL;
    if (!e || !e->fn) {
        fail_task(m->seq, CF_ENOFUNC, e && e->why ? e->why : "function was never defined");
        return;
    }
    const void *in = m->data;
    if (m->where != CF__WHERE_INLINE) {
        slot *s = &W.in[m->where - CF__WHERE_IN0];
        if (map_slot(s, (size_t)m->data_len) != 0) {
            fail_task(m->seq, CF_ENOMEM, "cannot map the input slot");
            return;
        }
        in = s->map;
    }
    int64_t start = cf__now_ns();
    atomic_store(&W.ctl->running_since, start);
    for (;;) { /* the kill handshake (process.h) */
        atomic_store(&W.ctl->running_seq, m->seq); /* seq_cst: before reading kill_pending */
        if (!atomic_load(&W.ctl->kill_pending))
            break;
        atomic_store(&W.ctl->running_seq, 0);
        while (atomic_load(&W.ctl->kill_pending))
            syscall(SYS_futex, &W.ctl->kill_pending, FUTEX_WAIT, 1, NULL, NULL, 0);
        start = cf__now_ns();
        atomic_store(&W.ctl->running_since, start);
    }
    atomic_store(&W.ctl->started_seq, m->seq);
    cf_ctx ctx = {.worker = (int)W.index, .out_shared = output_shared};
    int rc = e->fn->fn(in, (size_t)m->data_len, &ctx);
    send_result(m->seq, rc, &ctx, start);
    cf__ctx_reset(&ctx);
    drop_result_memfd(); /* a failed task's big output */
    atomic_store(&W.ctl->running_seq, 0);
    if (W.max_tasks && ++W.tasks_done >= W.max_tasks)
        leave(0); /* retired: the parent starts a fresh worker */
}

/* A descriptor from the parent: a spare result buffer, kept up to CF__SPARES_PER_WORKER. */
static void keep_spare(void *arg, int fd)
{
    (void)arg;
    if (W.spares_len < CF__SPARES_PER_WORKER)
        W.spares[W.spares_len++] = fd;
    else
        close(fd);
}

static ssize_t receive(int flags)
{
    bool dropped = false; /* more than the parent ever sends: they are gone, nothing lost */
    return cf__chan_recv(W.fd, W.buf + W.buf_len, W.buf_cap - W.buf_len, flags, keep_spare,
                         NULL, &dropped);
}

/*
 * Reads the next bytes from the parent.  A worker that just finished a task polls for a
 * few microseconds before it blocks: in a stream of short tasks the next one is usually
 * on its way, and catching it without sleeping saves a wake-up (the thread's adaptive
 * budget, park.c, stops the polling when it does not pay).
 */
static ssize_t next_bytes(void)
{
    cf__spin s = {0};
    ssize_t n;
    for (;;) {
        n = receive(MSG_DONTWAIT);
        if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
            break;
        if (!cf__spin_step(&s, WORKER_SPIN_NS)) {
            cf__spin_end(false);
            return receive(0);
        }
    }
    cf__spin_end(true);
    return n;
}

/* A fatal signal of the task: noted for the parent, then the default action at once (the
 * wait status is the same as without this handler). */
static void note_fatal(int sig)
{
    atomic_store(&W.ctl->fatal_signal, sig);
    raise(sig); /* SA_RESETHAND | SA_NODEFER: the default action, now */
}

static void note_exit(int status, void *arg)
{
    (void)arg;
    atomic_store(&W.ctl->exit_code, status);
    atomic_store(&W.ctl->exited, 1);
}

static void note_deaths(void)
{
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = note_fatal;
    sa.sa_flags = SA_RESETHAND | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
        sigaction(fatal[i], &sa, NULL);
    on_exit(note_exit, NULL);
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Does hex (the marker's secret) equal the secret in the control block on descriptor 4?
 * Compared in full whatever differs first, so the time says nothing of where. */
static bool secret_matches(const char *hex)
{
    if (strlen(hex) != 2 * CF__SECRET_LEN)
        return false;
    struct stat st;
    if (fstat(CF__WFD_CONTROL, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_size != CF__CONTROL_SIZE)
        return false;
    const cf__control *ctl =
        mmap(NULL, CF__CONTROL_SIZE, PROT_READ, MAP_SHARED, CF__WFD_CONTROL, 0);
    if (ctl == MAP_FAILED)
        return false;
    unsigned diff = 0;
    for (int i = 0; i < CF__SECRET_LEN; i++) {
        int hi = hex_digit(hex[2 * i]), lo = hex_digit(hex[2 * i + 1]);
        diff |= (unsigned)(hi | lo) >> 8; /* a non-digit (-1) sets high bits */
        diff |= (((unsigned)hi << 4 | (unsigned)lo) ^ ctl->secret[i]) & 0xffu;
    }
    munmap((void *)ctl, CF__CONTROL_SIZE);
    return diff == 0;
}

/*
 * Whether this process may be a worker: only a pool may make it one.  Refused in
 * secure-execution mode (setuid, setgid, file capabilities: whoever started it may not
 * command it), unless the marker's secret is the one its pool wrote in the control block
 * (so whoever wrote only the environment cannot make it one), and unless the channel is
 * a socket whose peer is the parent named by the marker, with this process's own uid.
 * NULL when it may; else why not.
 */
static const char *worker_refusal(const char *env)
{
    if (getauxval(AT_SECURE))
        return "secure-execution mode (setuid, setgid or file capabilities)";
    char *end;
    long parent = strtol(env, &end, 10);
    if ((*end && *end != ':') || parent <= 0 || parent != (long)getppid())
        return "it does not name this process's parent";
    if (*end != ':')
        return "it carries no secret";
    if (!secret_matches(end + 1))
        return "its secret is not the one in the control block (descriptor 4)";
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(CF__WFD_CHANNEL, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        len != sizeof cred)
        return "descriptor 3 is not a pool's channel";
    if ((long)cred.pid != parent || cred.uid != geteuid() || cred.uid != getuid())
        return "the peer of descriptor 3 is not the parent, as this user";
    return NULL;
}

void cf__worker_main(const char *env)
{
    pid_t parent = (pid_t)atol(env);
    unsetenv(CF__WORKER_ENV); /* the tasks' own children are not workers */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    if (getppid() != parent)
        leave(1); /* the pool went between the check and PR_SET_PDEATHSIG */
    W.active = 1;
    W.fd = CF__WFD_CHANNEL;
    W.in[0].fd = CF__WFD_IN0;
    W.in[1].fd = CF__WFD_IN1;
    W.result_fd = -1;
    W.ctl = mmap(NULL, CF__CONTROL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, CF__WFD_CONTROL, 0);
    W.ring = cf__ring_map(CF__WFD_RING, CF__RING_SIZE);
    W.buf_cap = CF__WIRE_HDR + CF__BODY_MAX;
    W.buf = malloc(W.buf_cap);
    if (W.ctl == MAP_FAILED || !W.ring || !W.buf)
        leave(1);
    close(CF__WFD_RING);
    note_deaths();
    for (;;) {
        ssize_t n = next_bytes();
        if (n == 0)
            leave(0); /* the pool let us go */
        if (n < 0) {
            if (errno == EINTR)
                continue;
            leave(1);
        }
        W.buf_len += (size_t)n;
        size_t at = 0;
        for (;;) {
            cf__wire_msg m;
            long used = cf__wire_decode(W.buf + at, W.buf_len - at, 0, CF_PAYLOAD_MAX, &m);
            if (used < 0)
                leave(1); /* the parent never sends garbage: something is badly wrong */
            if (used == 0)
                break;
            if (m.type == CF__W_CONFIG)
                on_config(&m);
            else if (m.type == CF__W_FUNC)
                on_func(&m);
            else
                on_task(&m);
            at += (size_t)used;
        }
        memmove(W.buf, W.buf + at, W.buf_len - at);
        W.buf_len -= at;
    }
}

int cf__worker_send_raw(const void *bytes, size_t len)
{
    if (!W.active)
        return CF_EINVAL;
    ring_put(bytes, len);
    return 0;
}

int cf_init(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *env = getenv(CF__WORKER_ENV);
    if (env) {
        const char *why = worker_refusal(env);
        if (!why)
            cf__worker_main(env);
        /* Run by hand (or by someone else) with the marker set: a normal program. */
        fprintf(stderr, "cfutures: %s is set but this process is not a pool's worker (%s); "
                        "running as a normal program\n", CF__WORKER_ENV, why);
        unsetenv(CF__WORKER_ENV);
    }
    atomic_store(&cf__init_called, 1);
    return 0;
}
