/*
 * internal.h -- what the core files and the backends share, never exported.
 *
 * Layout of the core:
 *   error.c         cf_strerror, cf_err_name, cf_version
 *   park.c          clocks, futex wait/wake, spinning, asymmetric fences
 *   current.c       which worker the calling thread is, waits that let a worker help, fork
 *   future.c        the future (which is also the task record), its callbacks, its result
 *   future_alloc.c  where futures' memory comes from: slabs, magazines, a depot
 *   executor.c      the public executor calls, the admission gate (shutdown, broken,
 *                   bound) and the backend table
 *   events.c        per-task events and the Chrome trace
 *   wait.c          cf_wait and cf_as_completed
 *   map.c           ordered, bounded map through runner tasks that claim ranges
 *   queue.c         the blocking queue
 *   threads/        the thread-pool backend (pool.c, injector.c, deque.h)
 *   processes/      the process-pool backend (pool.c, worker.c, wire.c, resolve.c,
 *                   spares.c; process.h is what they share)
 *
 * A future's life: allocated by submit with two references (caller, executor) -> queued by
 * the backend -> started (PENDING -> RUNNING) or cancelled (PENDING -> CANCELLED) by exactly
 * one party -> completed by that party -> callbacks run, waiters woken -> the executor drops
 * its reference -> the caller releases its own -> recycled.
 */
#ifndef CF_INTERNAL_H
#define CF_INTERNAL_H

#include "cfutures.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define CF__CACHELINE 64
#define CF__ALIGNED __attribute__((aligned(CF__CACHELINE)))
#define CF__LIKELY(x) __builtin_expect(!!(x), 1)
#define CF__UNLIKELY(x) __builtin_expect(!!(x), 0)
/* The library's thread-local variables.  initial-exec: an access is one %fs-relative load
 * instead of a call to __tls_get_addr (3 % of a submit+wait loop); it costs a few dozen
 * bytes of the static TLS surplus that glibc keeps for libraries loaded by dlopen. */
#define CF__THREAD_LOCAL _Thread_local __attribute__((tls_model("initial-exec")))

/* ---- park.c: time and waiting ----------------------------------------------------- */

#define CF__NO_DEADLINE INT64_MAX

int64_t cf__now_ns(void);
/* Absolute monotonic deadline for a public timeout (negative: none, 0: now; not NaN). */
int64_t cf__deadline(double timeout);
/* A NaN timeout is refused with CF_EINVAL by every public call. */
#define CF__BAD_TIMEOUT(t) ((t) != (t))
/*
 * Sleeps while *word == expected, until woken or the deadline.  Returns 0 when woken or when
 * the word already differed (callers re-check their condition: spurious returns happen),
 * CF_ETIMEDOUT when the deadline passed.
 */
int cf__futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t deadline);
void cf__futex_wake(_Atomic uint32_t *word, int count);

/*
 * Spinning before sleeping, for a waiter whose result may be microseconds away: call
 * cf__spin_step between checks of the condition, starting from a zeroed cf__spin, and
 * cf__spin_end with whether the condition came true while spinning.  A step pauses for
 * about the first 2 us, then yields the CPU (the thread that will produce the result may be
 * waiting for it: there can be more threads than cores), and returns false once the
 * thread's spin budget (at most `limit_ns`) is spent: time to sleep.  The budget adapts per
 * thread: it halves each time spinning fails and doubles back when it succeeds, so a thread
 * that waits for long tasks soon stops taking CPU from their workers, and one that waits for
 * short ones keeps its fast path.
 */
typedef struct cf__spin {
    int64_t start;
    unsigned steps;
} cf__spin;
bool cf__spin_step(cf__spin *s, int64_t limit_ns);
void cf__spin_end(bool succeeded);

/*
 * Asymmetric fences, for a store-then-load handshake where one side runs per item and the
 * other rarely (a consumer about to sleep): the frequent side calls cf__fence_light, which
 * is free, and the rare side cf__fence_heavy, which makes every thread of the process pass
 * a full barrier (membarrier(2), private expedited).  Together they order as two full
 * fences would.  cf__fences_init must run before any thread relies on the pair; where the
 * kernel lacks membarrier both are full fences.
 */
extern bool cf__membarrier_ok;
void cf__fences_init(void);
void cf__fence_heavy(void);

/* A full fence.  ThreadSanitizer has no model of fences and GCC refuses them under it: there,
 * a sequentially consistent exchange on a thread-private word, a full barrier in hardware. */
static inline void cf__fence_full(void)
{
#if defined(__SANITIZE_THREAD__)
    static CF__THREAD_LOCAL _Atomic int word;
    atomic_exchange(&word, 0);
#else
    atomic_thread_fence(memory_order_seq_cst);
#endif
}

static inline void cf__fence_light(void)
{
    if (CF__LIKELY(cf__membarrier_ok))
        atomic_signal_fence(memory_order_seq_cst);
    else
        cf__fence_full();
}

static inline void cf__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* ---- future.c ----------------------------------------------------------------------- */

/* The state word: the public state in the low bits, plus flags.  It is the futex word. */
#define CF__ST_MASK 3u
#define CF__ST_LOCK 4u    /* the callback list is being changed */
#define CF__ST_CBS 8u     /* the callback list is not empty */
#define CF__ST_WAITERS 16u /* a thread sleeps on this word */
#define CF__ST_CALLING 32u /* done, and its callbacks are being run: a user callback added
                              now joins the list, to run after them in that thread */
#define CF__ST_HANDED 64u  /* RUNNING to the core, but handed ahead to a worker that may not
                              have started it: PENDING to the user unless its backend's
                              task_started says otherwise (SEMANTICS 30) */

static inline bool cf__state_done(uint32_t s)
{
    return (s & CF__ST_MASK) >= CF_CANCELLED;
}

typedef enum cf__task_kind {
    CF__TASK_POINTER = 0,
    CF__TASK_BYTES = 1,
    CF__TASK_MAP_RUNNER = 2 /* backends without pointer tasks: arg is the cf_map */
} cf__task_kind;

/*
 * A done-callback registration.  `fn` runs once when the future completes, unless the node
 * is removed first.  Internal registrations (wait, as_completed, waiting workers) embed the
 * node in their own memory and set `fired` as the very last thing their fn does, so the
 * owner knows when the memory is free to go (see cf__future_remove_callback).
 */
typedef struct cf__callback cf__callback;
struct cf__callback {
    cf__callback *next;
    void (*fn)(cf__callback *self, cf_future *f);
};

/*
 * Where a mapped bytes result's descriptor goes once its future has unmapped the value (the
 * process pool's spare buffers, processes/spares.c).  take_back owns fd from then on and
 * gives up the future's reference to the home; it runs in whichever thread releases the
 * future.
 */
typedef struct cf__value_home cf__value_home;
struct cf__value_home {
    void (*take_back)(cf__value_home *home, int fd);
};

/* What few futures need: an error's code and message, a bytes task's lengths. */
typedef struct cf__future_extra {
    int code;          /* the task's (or initializer's) own code */
    char *message;     /* malloc'd, or NULL */
    size_t in_len;     /* bytes tasks: input length */
    size_t value_len;  /* bytes tasks: result length */
    long pid;          /* process pools: the worker process that took the task */
    bool value_mapped; /* the bytes result is a read-only mapping (munmap, not free) */
    cf__value_home *value_home; /* value_mapped: where value_fd goes after, or NULL */
    int value_fd;
    cf_executor *owner; /* process pools: for kill_on_cancel of a running task */
    /* record_events (events.c): the executor recording this task, or NULL */
    cf_executor *recorder;
    uint64_t task_no;
    int64_t submitted_ns, started_ns; /* started_ns 0: never started */
    int64_t finished_ns;              /* 0: when the future completes */
    int worker;
} cf__future_extra;

/* Exactly one cache line: a task costs one line moved to the worker and back. */
struct cf_future {
    _Atomic uint32_t state; /* CF__ST_* ; futex word */
    _Atomic uint32_t refs;
    uint8_t kind;           /* cf__task_kind */
    bool bounded;           /* counts against the executor's max_queued */
    uint16_t fork_gen;      /* cf__fork_gen when allocated: a future of an ancestor
                               process can never complete here */
    /* The outcome, written once by the party that completes the future, before it sets the
     * done state (release), read by others after seeing done (acquire). */
    int outcome;            /* 0 or CF_E* */
    union {
        cf_fn fn;
        const cf_function *bytes_fn;
    } task;
    void *arg;              /* pointer tasks: the argument; bytes tasks: the input copy */
    void *value;            /* pointer result, or the bytes result's data */
    cf__callback *cb_head;  /* guarded by CF__ST_LOCK */
    union {
        cf_future *next;    /* free: the recycling lists' link */
        void *data;         /* live: the caller's (cf_future_set_data); NULL at first */
    } u;
    cf__future_extra *extra; /* NULL until needed */
} CF__ALIGNED;

/* The future's extra record, created on first use; NULL if out of memory. */
cf__future_extra *cf__future_extra_get(cf_future *f);
/* Records a failure's code and message (taking ownership of message). */
void cf__future_set_error(cf_future *f, int outcome, int code, char *message);

/* future_alloc.c: a future's memory, uninitialised (NULL if out of memory), and back. */
cf_future *cf__future_cache_get(void);
void cf__future_cache_put(cf_future *f);

/* Allocates a future (recycled when possible) in the PENDING state with `refs` references. */
cf_future *cf__future_alloc(uint32_t refs);

/* PENDING -> RUNNING.  False if the future was cancelled (then it must not run). */
bool cf__future_start(cf_future *f);
/* The same for a task handed ahead to a worker: RUNNING with CF__ST_HANDED, which its
 * backend clears (cf__future_started) once it knows the worker started it. */
bool cf__future_hand(cf_future *f);
static inline void cf__future_started(cf_future *f)
{
    atomic_fetch_and_explicit(&f->state, ~CF__ST_HANDED, memory_order_relaxed);
}

/*
 * Moves the future to `final` (CF_FINISHED or CF_CANCELLED) from `from` (RUNNING, or
 * PENDING), publishing the outcome fields already written, then runs callbacks and wakes
 * waiters.  Returns false (and changes nothing) if the future was not in `from`.
 */
bool cf__future_complete(cf_future *f, cf_state from, cf_state final);

/* Finishes a PENDING future without running it (broken executor): outcome, code, message
 * (copied).  False if it had been cancelled meanwhile. */
bool cf__future_fail_pending(cf_future *f, int outcome, int code, const char *message);

/*
 * Registers an internal callback.  Returns true if registered; false if the future is
 * already done (nothing registered; the caller handles the done future itself).
 */
bool cf__future_add_callback(cf_future *f, cf__callback *cb);
/*
 * Unregisters cb.  Returns true if it was removed before running; false if the future's
 * completion has taken it (it has run or is running: wait for its own `fired` mark).
 */
bool cf__future_remove_callback(cf_future *f, cf__callback *cb);

/* Outcome of a done future: 0 or a CF_E* code. */
static inline int cf__future_outcome(const cf_future *f)
{
    return (atomic_load_explicit(&((cf_future *)f)->state, memory_order_acquire) & CF__ST_MASK) ==
                   CF_CANCELLED
               ? CF_ECANCELLED
               : f->outcome;
}

/* Blocks until f is done (0) or the deadline passes (CF_ETIMEDOUT). */
int cf__future_wait_until(cf_future *f, int64_t deadline);

/* fork(): take the allocator's lock before, release it after, in parent and child. */
void cf__futures_fork_prepare(void);
void cf__futures_fork_after(void);

/* Frees the futures kept for recycling (when no executor is left). */
void cf__futures_trim(void);

/* Frees what a task's context accumulated (message, output) that nobody took. */
void cf__ctx_reset(cf_ctx *ctx);

/* ---- executor.c: the backend table ------------------------------------------------- */

struct cf_ctx {
    cf_executor *ex;
    int worker;
    char *message;  /* set by cf_fail */
    void *out;      /* bytes output, set by cf_ctx_output */
    size_t out_len;
    /* Worker processes: gives output memory of len bytes in shared memory the parent will
     * map, or NULL to use malloc (NULL everywhere else).  Output it gave is not freed. */
    void *(*out_shared)(size_t len);
    bool out_is_shared;
};

typedef struct cf__cond cf__cond; /* a condition to wait for (current.c) */

/* What every backend provides, chosen at build time (see executor.c's table). */
typedef struct cf__backend {
    const char *name;
    cf_backend id;
    bool pointer_tasks; /* accepts cf_fn tasks (shares our address space) */
    size_t struct_size; /* the backend's executor struct, which starts with cf_executor */
    /* Set up after the common fields; reads its own options.  Must leave nothing behind
     * when it fails. */
    int (*start)(cf_executor *ex, const cf_executor_opts *opts);
    int (*submit)(cf_executor *ex, cf_future *f); /* queue an admitted task */
    /* Backends whose tasks run elsewhere (pointer_tasks false), else NULL:
     *   check_bytes: may fn and an input of len bytes be submitted?  (CF_ENOFUNC,
     *                CF_ETOOBIG), called before anything is allocated;
     *   cancel_running: cancel a running task on request (kill_on_cancel): 0 if it was
     *                cancelled, CF_EBUSY if not.
     * Such a backend's submit also takes map runners (kind CF__TASK_MAP_RUNNER, arg the
     * cf_map): it claims ranges of the map (cf__map_claim), runs their positions and
     * publishes each (cf__map_publish) until nothing is left, then finishes the runner. */
    int (*check_bytes)(cf_executor *ex, const cf_function *fn, size_t len);
    int (*cancel_running)(cf_executor *ex, cf_future *f);
    /* Backends that hand tasks ahead (cf__future_hand), else NULL: has a worker started f,
     * a RUNNING future with CF__ST_HANDED?  Clears the flag when it has.  Called by
     * cf_future_state from any thread; may take the backend's lock, never runs callbacks. */
    bool (*task_started)(cf_executor *ex, cf_future *f);
    /* After the gate has closed: cancel / wake / join as flags say (never asked to wait
     * from a thread own_thread claims); 0. */
    int (*shutdown)(cf_executor *ex, unsigned flags);
    /* Is the calling thread one the executor needs in order to stop (a worker, or the
     * thread that finishes its futures and runs their callbacks)?  Such a thread cannot
     * wait for it to stop.  NULL: none ever is. */
    bool (*own_thread)(cf_executor *ex);
    /* Backends that hand map positions to workers ahead of time, else NULL: m has stopped
     * (cf_map_free), so those not started must not start; called before the map waits for
     * its runners. */
    void (*map_stopped)(cf_executor *ex, cf_map *m);
    void (*destroy)(cf_executor *ex);         /* join and free the backend's resources */
    /* Backends whose workers are threads here (cf__current set), else NULL: waits in one
     * of its workers (`worker` is cf__current.worker) until c is met, running other queued
     * tasks of ex meanwhile; 0, or CF_ETIMEDOUT at the deadline.  Sets c->word to the word
     * the worker parks on before it sets c->sleeping. */
    int (*help_wait)(cf_executor *ex, void *worker, cf__cond *c, int64_t deadline);
} cf__backend;

#define CF__EX_SHUTDOWN 1u
#define CF__EX_CANCEL_PENDING 2u
#define CF__EX_BROKEN 4u

struct cf_executor {
    const cf__backend *backend;
    uint16_t fork_gen;  /* cf__fork_gen at creation: every call refuses in a fork child */
    int workers;
    char name[12];
    cf_init_fn initializer;
    void *initializer_arg;
    size_t max_queued;
    cf_full_mode full_mode;

    /* Read by every submission and by workers for every task, written only at shutdown or
     * breakage: alone on its line so that everybody's copy stays valid. */
    _Atomic uint32_t flags CF__ALIGNED; /* CF__EX_* */

    _Atomic size_t queued CF__ALIGNED;  /* tasks admitted and still pending (bounded mode) */
    _Atomic uint32_t room;              /* futex word bumped when a queued slot frees */
    _Atomic uint32_t room_waiters;

    pthread_mutex_t broken_lock;
    int broken_code;
    char *broken_message;

    /* record_events (events.c) */
    bool record_events;
    int64_t created_ns;
    _Atomic uint64_t tasks_numbered;
    pthread_mutex_t events_lock;
    cf_event *events; /* in completion order */
    size_t events_len, events_cap, events_lost;
};

/* ---- events.c ----------------------------------------------------------------------- */

void cf__events_init(cf_executor *ex, const cf_executor_opts *opts);
void cf__events_destroy(cf_executor *ex);
/* Numbers and stamps an admitted task of a recording executor; 0 or CF_ENOMEM. */
int cf__events_submitted(cf_executor *ex, cf_future *f);
/* Undoes cf__events_submitted for a task that was refused after all. */
void cf__events_unsubmitted(cf_future *f);
/* Stamps the start of a recorded task (f->extra->recorder set): worker index and time. */
void cf__events_started(cf_future *f, int worker, int64_t when);
/* Stamps a recorded task's start and end as its worker process reported them. */
void cf__events_ran(cf_future *f, int worker, int64_t start, int64_t end);
/* Appends a recorded task's event (cf__future_complete, before the future is done). */
void cf__events_record(cf_future *f, int outcome);

/*
 * Admits and queues a prepared future holding two references (the caller's and the
 * executor's).  `internal` work skips the bound.  On success the executor owns one
 * reference; on refusal the caller's reference is all that is left to release.
 */
int cf__executor_admit(cf_executor *ex, cf_future *f, bool internal);
/* A task left the pending state (started or cancelled): frees a bounded-queue slot. */
void cf__executor_unqueued(cf_executor *ex);
/* A queued task that will not run because of cancellation: frees its bounded-queue slot,
 * cancels it unless it already was, drops the executor's reference. */
void cf__cancel_queued(cf_executor *ex, cf_future *f);
/* Marks the executor broken by a failed initializer (first failure wins). */
void cf__executor_break(cf_executor *ex, int code, const char *message);

/* Runs a task that a worker has taken: start (unless cancelled, broken or shut down with
 * cancel-pending), call, publish the outcome, drop the executor's reference. */
void cf__run_task(cf_executor *ex, cf_future *f, cf_ctx *ctx);

/*
 * Joining a backend's threads exactly once, when several threads may ask at the same time
 * (cf_shutdown with wait, and cf_executor_free, from different threads): the first asker
 * joins, the others wait until it has.  cf__join_claim is called with `lock` held and
 * returns with it held: true means "join them now (after unlocking), then call
 * cf__join_done"; false means they were joined meanwhile.
 */
typedef struct cf__join_once {
    pthread_cond_t joined_cond;
    bool joining; /* somebody joins or has joined */
    bool joined;
} cf__join_once;

void cf__join_init(cf__join_once *j);
void cf__join_destroy(cf__join_once *j);
bool cf__join_claim(cf__join_once *j, pthread_mutex_t *lock);
void cf__join_done(cf__join_once *j, pthread_mutex_t *lock);
/* As cf__join_done, with `lock` already held. */
void cf__join_done_locked(cf__join_once *j);

/* ---- map.c: what a backend that runs map positions elsewhere needs ------------------ */

/* One runner's pace under CF_CHUNK_AUTO: zeroed before its first claim, then kept by the
 * runner and passed to each of its claims (map.c sizes ranges from it). */
typedef struct cf__map_pace {
    size_t last;        /* the previous range's size; 0 before the first */
    int64_t claimed_ns; /* when it was claimed */
} cf__map_pace;

/* Claims the next range [lo, hi) of positions to run; false when there is none (all
 * claimed, the map stopped, or the executor is cancelling pending work). */
bool cf__map_claim(cf_map *m, cf__map_pace *pace, size_t *lo, size_t *hi);
/* Position i's function and input; the map's deadline (CF__NO_DEADLINE when none), past
 * which no position may start. */
const cf_function *cf__map_function(const cf_map *m);
int64_t cf__map_deadline(const cf_map *m);
/* Has the map stopped (freed, or past its deadline)?  Its positions not started never do. */
bool cf__map_stopped(const cf_map *m);
cf_bytes cf__map_input(const cf_map *m, size_t i);
/* Publishes position i's outcome (0 or CF_E*), the task's code, a malloc'd message (taken,
 * may be NULL) and a malloc'd value of len bytes (taken, may be NULL). */
void cf__map_publish(cf_map *m, size_t i, int outcome, int code, char *message, void *value,
                     size_t len);

/* ---- current.c: the calling thread's worker, and waits that help ----------------- */

/* Set by a backend in each of its worker threads (ex NULL elsewhere). */
typedef struct cf__current_worker {
    cf_executor *ex;
    int index;    /* 0 .. workers-1 */
    void *worker; /* the backend's own record of that worker */
} cf__current_worker;

extern CF__THREAD_LOCAL cf__current_worker cf__current;

/* Bumped in the child of every fork() (after cf__fork_watch): what was made before, in the
 * parent, belongs to the parent.  Read without synchronisation: only fork changes it. */
extern uint16_t cf__fork_gen;
/* Installs the fork handler once (every executor's creation calls it). */
void cf__fork_watch(void);

/*
 * A condition a thread waits for, with the futex word its waiter sleeps on (see
 * current.c for the handshake).  `met` must be cheap and may be called from any thread.
 */
struct cf__cond {
    bool (*met)(cf__cond *c);
    _Atomic uint32_t own;               /* a plain thread's futex word */
    _Atomic(_Atomic uint32_t *) word;   /* what cf__cond_signal bumps: &own, or a helping
                                           worker's own park word */
    _Atomic uint32_t sleeping;          /* the waiter may sleep: signals must wake it */
};

void cf__cond_init(cf__cond *c, bool (*met)(cf__cond *c));
/* Called after changing what `met` reads (sequentially consistent). */
void cf__cond_signal(cf__cond *c);
/* Waits until met: 0, or CF_ETIMEDOUT at the deadline.  A worker of a backend that has
 * help_wait runs other tasks of its executor meanwhile (and may return past the deadline by
 * the length of a task it ran). */
int cf__cond_wait(cf__cond *c, int64_t deadline);

/* ---- backends ---------------------------------------------------------------------- */

extern const cf__backend cf__threads_backend;
extern const cf__backend cf__processes_backend;

/* Set by cf_init in the program's own process (not in workers). */
extern _Atomic int cf__init_called;

#endif
