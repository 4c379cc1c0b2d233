/*
 * process.h -- what the parent side (pool.c), the worker side (worker.c), the wire format
 * (wire.c) and function lookup (resolve.c) of the process pool share.
 *
 * A worker is this same program started again with posix_spawn + exec of /proc/self/exe,
 * recognised in cf_init() by the CF__WORKER_ENV variable.  It inherits exactly five
 * descriptors at fixed numbers: the channel (one end of a stream socketpair), the control
 * block, two input slots and the result ring (memfds).
 *
 * Parent -> worker messages go through the channel: the worker sleeps in read() when it
 * has nothing to do.  Worker -> parent messages go into the result ring, a shared-memory
 * ring mapped twice back to back (so a message that crosses the end is still contiguous);
 * the worker rings the doorbell (one byte on the channel) only when the manager has said
 * it is going to sleep.  So a busy pool makes no system call per result, and everything a
 * worker finished before it died is in the ring for the parent to read.
 *
 * Payloads up to CF__INLINE_MAX travel inside messages.  A bigger input is copied into one
 * of two input slots (memfds the parent writes, so one can be filled while the worker
 * reads the other) and the message names the slot; slots only grow, and are sealed against
 * shrinking.  A bigger result is written by the task straight into a memfd, which the
 * worker passes over the channel (SCM_RIGHTS) before it publishes the RESULT; the parent
 * seals it against shrinking and maps it read-only as the future's value: no copy in the
 * parent, and nothing can truncate a result under its reader.  When the future lets go,
 * the memfd goes back to a worker with its next tasks, to be written again (spares.c).
 *
 * Trust: everything a worker writes (messages, the control block, the output slot) is
 * untrusted input to the parent, validated before use; the parent never dereferences a
 * value it read from a worker without a bound check.
 */
#ifndef CF_PROCESS_H
#define CF_PROCESS_H

#include "../internal.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CF__WORKER_ENV "CFUTURES_WORKER"
#define CF__SECRET_LEN 16 /* bytes; hex in the marker: CFUTURES_WORKER=<parent pid>:<hex> */

/* The descriptors a worker starts with. */
#define CF__WFD_CHANNEL 3
#define CF__WFD_CONTROL 4
#define CF__WFD_IN0 5
#define CF__WFD_IN1 6
#define CF__WFD_RING 7
#define CF__WFD_FIRST_FREE 8

/* The result ring's size: a power of two, much bigger than the largest message. */
#define CF__RING_SIZE ((size_t)1 << 20)

/* Payloads up to this size travel inside messages; bigger ones through a slot. */
#define CF__INLINE_MAX ((size_t)64 * 1024)
/* A task's failure message is cut to this length. */
#define CF__TEXT_MAX 4096u
/* The largest message body of any kind: an inline payload plus text and fields. */
#define CF__BODY_MAX (CF__INLINE_MAX + 3 * CF__TEXT_MAX)

/*
 * The control block: one page shared by the parent and one worker.  The worker announces
 * the task it is running (so a worker's death is charged to that task only, and a task's
 * time limit counts from its real start); the output slot is handed back and forth.
 */
typedef struct cf__control {
    _Atomic uint64_t running_seq;  /* seq of the task running now; 0 between tasks */
    _Atomic uint64_t started_seq;  /* seq of the last task started (seqs only grow) */
    /* Taking back tasks not started (the start handshake): the worker claims a task by
     * raising start_word from below seq<<1 to seq<<1 (CAS) before anything else; the
     * parent takes back every task above the last claim by raising it to last<<1 | 1
     * (CAS).  One word, so each task is either claimed or taken back, never both: a task
     * the worker finds at or below the word's seq was taken back and is skipped without an
     * answer; the parent has already given it to another worker.  seen_seq is the last
     * task the worker reached, claimed or skipped: a sign of life after a stall. */
    _Atomic uint64_t start_word;
    _Atomic uint64_t seen_seq;
    _Atomic int64_t running_since; /* CLOCK_MONOTONIC ns when it started */
    /* The kill handshake: the parent sets kill_pending, then kills only if running_seq
     * still names the task it means; a worker that sees kill_pending does not start its next
     * task (it shows running_seq 0 and waits) until the parent withdraws the request or
     * kills it.  So a kill meant for one task never lands on the task after it. */
    _Atomic uint32_t kill_pending; /* futex word */
    /* The result ring: bytes written ever (worker) and bytes consumed ever (parent). */
    _Atomic uint64_t ring_head CF__ALIGNED;
    _Atomic uint64_t ring_tail CF__ALIGNED;
    _Atomic uint32_t tail_moved;     /* futex word: bumped when the parent frees ring space */
    _Atomic uint32_t worker_waits;   /* the worker sleeps on tail_moved */
    _Atomic uint32_t parent_sleeps CF__ALIGNED; /* the manager may sleep: ring the doorbell */
    /* How the worker is dying, noted by itself where the parent reads it even when the
     * program ignores SIGCHLD or reaps children itself (then the wait status is gone):
     * a synchronous fatal signal (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT) or exit(). */
    _Atomic int32_t fatal_signal CF__ALIGNED; /* 0: none */
    _Atomic uint32_t exited;                  /* exit() was called with exit_code */
    _Atomic int32_t exit_code;
    /* The per-spawn secret (SEMANTICS 36): random bytes the parent writes here before the
     * spawn and also puts in the marker; a process whose marker does not match the
     * control block it was given is not a pool's worker.  Read once, at the start. */
    unsigned char secret[CF__SECRET_LEN] CF__ALIGNED;
} cf__control;
#define CF__CONTROL_SIZE 4096

/* ---- wire.c: messages ---------------------------------------------------------------- */

/*
 * A message is a 16-byte header -- tag (magic << 16 | type), body length, seq -- and a
 * body of fixed fields followed by variable parts.  Lengths are native-endian: both ends
 * are the same program on the same machine.
 */
#define CF__WIRE_MAGIC 0xCF5Au
#define CF__WIRE_HDR 16u

typedef enum cf__wire_type {
    /* parent -> worker */
    CF__W_CONFIG = 1, /* once, first: index, limits, name, initializer */
    CF__W_FUNC = 2,   /* defines fn_id before the first task that uses it */
    CF__W_TASK = 3,   /* seq: run fn_id over the input */
    /* worker -> parent */
    CF__W_HELLO = 16, /* once, after the initializer: its outcome */
    CF__W_RESULT = 17 /* seq: one task's outcome and result */
} cf__wire_type;

/* Where a payload is. */
#define CF__WHERE_INLINE 0u
#define CF__WHERE_IN0 1u /* parent -> worker */
#define CF__WHERE_IN1 2u
#define CF__WHERE_OUT 3u /* worker -> parent: in the next descriptor passed on the channel */

/* How a worker finds a function: by module and offset, checked by build ID and name. */
typedef struct cf__modref {
    uint64_t offset;       /* address minus the module's load bias */
    const char *path;      /* "" for the main program */
    uint32_t path_len;
    const uint8_t *build_id;
    uint32_t build_id_len; /* 0 when the module has none */
    const char *name;      /* the descriptor's name */
    uint32_t name_len;
} cf__modref;

/* A decoded message.  Pointers point into the buffer that was decoded. */
typedef struct cf__wire_msg {
    uint32_t type;
    uint64_t seq;
    /* HELLO, RESULT */
    int32_t outcome;   /* 0 or a CF_E* code */
    int32_t code;      /* the task's (initializer's) own code */
    int32_t pid;       /* HELLO */
    uint64_t run_ns;   /* RESULT: how long the task ran */
    uint64_t start_ns; /* RESULT: when it started (CLOCK_MONOTONIC, system-wide) */
    const char *text;  /* failure message, not terminated */
    uint32_t text_len;
    /* RESULT, TASK: the payload */
    uint32_t where;    /* CF__WHERE_* */
    uint64_t data_len;
    const uint8_t *data; /* inline payloads only */
    uint64_t out_ino;  /* RESULT from CF__WHERE_OUT: the inode of the memfd that holds it */
    /* TASK: 0, or the CLOCK_MONOTONIC ns from which it must not start (a map position's
     * deadline): the worker then answers CF_ETIMEDOUT without running it */
    uint64_t not_after;
    /* FUNC, TASK */
    uint32_t fn_id;
    /* FUNC, CONFIG (the initializer, when has_init) */
    cf__modref ref;
    /* CONFIG */
    uint32_t index, max_tasks, has_init;
    uint64_t memory_limit, max_payload;
    const char *name;
    uint32_t name_len;
    const uint8_t *init_arg;
    uint32_t init_arg_len;
} cf__wire_msg;

/*
 * Decodes the message at the start of buf[0 .. len).  Returns the bytes it takes (> 0)
 * with *m filled in, 0 when the bytes so far are a valid but incomplete message, or
 * CF_EPROTO when they can never be a valid message from that side (from_worker: only HELLO
 * and RESULT are valid; else only CONFIG, FUNC and TASK).  A payload longer than
 * max_payload is malformed.  Reads nothing beyond buf[len).
 */
long cf__wire_decode(const uint8_t *buf, size_t len, int from_worker, uint64_t max_payload,
                     cf__wire_msg *m);

/* A growable output buffer. */
typedef struct cf__wbuf {
    uint8_t *data;
    size_t len, cap, sent; /* sent: bytes already written out from the front */
} cf__wbuf;

void cf__wbuf_free(cf__wbuf *b);

/* Appends one message; 0 or CF_ENOMEM.  Only the fields its type uses are read. */
int cf__wire_put(cf__wbuf *b, uint32_t type, const cf__wire_msg *m);

/* Maps a ring memfd of `size` bytes twice, back to back; NULL on failure.  Unmap with
 * munmap(ring, 2 * size). */
uint8_t *cf__ring_map(int fd, size_t size);

/* ---- wire.c: the channel, bytes with descriptors attached ------------------------------ */

/* The most descriptors one call below sends or receives. */
#define CF__CHAN_FDS_MAX 16

/* sendmsg of len bytes of buf on the channel socket, the first byte carrying nfds (at most
 * CF__CHAN_FDS_MAX) descriptors, which stay the caller's. */
ssize_t cf__chan_send(int sock, const void *buf, size_t len, const int *fds, int nfds,
                      int flags);

/* recvmsg of up to cap bytes into buf (close-on-exec descriptors); each descriptor that
 * came with them goes to take_fd(arg, fd), which owns it.  *dropped is set when the kernel
 * had to drop descriptors for lack of room. */
ssize_t cf__chan_recv(int sock, void *buf, size_t cap, int flags,
                      void (*take_fd)(void *arg, int fd), void *arg, bool *dropped);

/* ---- resolve.c: finding functions across processes ------------------------------------ */

/* Storage for a cf__modref the parent builds (its pointers point in here). */
typedef struct cf__modref_buf {
    cf__modref ref;
    char path[4096];
    uint8_t build_id[64];
} cf__modref_buf;

/* What a worker finds by name: a cf_function or a cf_initializer, which agree in layout. */
#define CF__DESCRIPTOR_SIZE sizeof(cf_function)
_Static_assert(sizeof(cf_initializer) == sizeof(cf_function) &&
                   offsetof(cf_initializer, name) == offsetof(cf_function, name) &&
                   offsetof(cf_initializer, fn) == offsetof(cf_function, fn),
               "cf_initializer and cf_function must agree in layout");

/*
 * Parent: describes the named descriptor at `desc` (a cf_function or cf_initializer) as
 * module + offset and its name.  CF_ENOFUNC when no loaded module with a file maps it or
 * its function, or its name is empty or longer than 255 bytes.
 */
int cf__modref_describe(const void *desc, cf__modref_buf *out);

/*
 * Worker: finds what `ref` names in this process (loading the module if this process has
 * not), checking build ID, segment and name.  Returns the address, or NULL with a reason
 * in why[0 .. why_len).
 */
void *cf__modref_resolve(const cf__modref *ref, char *why, size_t why_len);

/* ---- spares.c: big-result buffers recycled to the workers -------------------------------- */

/* A memfd bigger than this is closed when its future lets go, never reused. */
#define CF__SPARE_MAX ((size_t)8 << 20)
/* Spare buffers a worker is sent while it holds fewer, and keeps at most. */
#define CF__SPARES_PER_WORKER 2

typedef struct cf__spares cf__spares;

/* A stash holding the pool's reference; wake(wake_arg) tells the manager, which calls
 * cf__spares_trim, that the stash is no longer empty (called until cf__spares_close). */
int cf__spares_new(cf__spares **out, void (*wake)(void *arg), void *wake_arg);
/* The pool lets go: what is kept and whatever comes back later is closed.  NULL is fine. */
void cf__spares_close(cf__spares *s);
/* Whether the parent may keep one more result descriptor, the memfd of inode `ino` that
 * worker `owner` (a non-zero serial per spawned worker) wrote (counted until it comes back
 * through cf__spares_put or leaves through cf__spares_take); false: close it. */
bool cf__spares_keep(cf__spares *s, uint64_t ino, uint64_t owner);
/* A home for one future's kept descriptor; takes a reference the home gives back. */
cf__value_home *cf__spares_home(cf__spares *s);
/* A kept descriptor comes back: stashed for reuse, or closed; owns fd either way. */
void cf__spares_put(cf__spares *s, int fd);
/* Takes up to max stashed descriptors that `owner` wrote into fds; returns how many (the
 * caller owns them).  A buffer never goes to a worker other than the one that wrote it. */
int cf__spares_take(cf__spares *s, uint64_t owner, int *fds, int max);
/* Worker `owner` is gone: its stashed buffers are closed, and those its futures hold are
 * closed when they come back (a task's leftover writer may still hold them). */
void cf__spares_forget(cf__spares *s, uint64_t owner);
/* Closes what waited too long; returns the milliseconds until the next expiry, or -1. */
int cf__spares_trim(cf__spares *s, int64_t now);

/* ---- worker.c --------------------------------------------------------------------------- */

/* Runs this process as a worker (cf_init found CF__WORKER_ENV set); never returns. */
void cf__worker_main(const char *env) __attribute__((noreturn));

/*
 * Test hook: writes raw bytes to the worker's channel from inside a task, as a broken
 * worker would.  CF_EINVAL outside a worker process.
 */
int cf__worker_send_raw(const void *bytes, size_t len);

#endif
