/*
 * cfutures.h -- executors, futures and queues for C.
 *
 * One executor API over several backends: a thread pool and a process pool behind the
 * same calls (an MPI pool is to follow).  Work is submitted as a task and observed through a
 * future: wait for it, read its value or its error, cancel it, attach callbacks, wait on
 * many at once, iterate them in completion order, or map a function over many inputs with
 * results in input order.  A bounded blocking queue completes the toolkit.
 *
 * Conventions (every function below follows them unless its comment says otherwise):
 *   - Functions that can fail return 0 or a negative CF_E* code; cf_strerror() names it.
 *   - Constructors give the new object through an out-parameter and leave nothing behind on
 *     failure.  Destructors and release functions accept NULL.
 *   - Timeouts are in seconds as a double: a negative value (CF_FOREVER) waits forever,
 *     0 polls, anything else is a relative limit measured on the monotonic clock; NaN is
 *     CF_EINVAL.
 *   - All functions are thread safe unless marked otherwise.
 */
#ifndef CFUTURES_H
#define CFUTURES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(CF_STATIC_DEFINE) || !defined(__GNUC__)
#define CF_EXPORT
#else
#define CF_EXPORT __attribute__((visibility("default")))
#endif

#if defined(__GNUC__)
#define CF_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define CF_PRINTF(fmt, args)
#endif

#define CF_VERSION_MAJOR 0
#define CF_VERSION_MINOR 1
#define CF_VERSION_PATCH 0

/* Returns the library's version as "MAJOR.MINOR.PATCH". */
CF_EXPORT const char *cf_version(void);

/* ------------------------------------------------------------------------------------ */
/* Errors                                                                               */
/* ------------------------------------------------------------------------------------ */

/*
 * Every error the library reports.  Values are stable: new codes are added at the end.
 * A task's own error code (see cf_fail) is separate from these: a future that failed in its
 * task reports CF_ETASK, and cf_future_error() gives the task's code and message.
 */
#define CF_ERRNO_MAP(XX)                                                                   \
    XX(INVAL, -1, "invalid argument")                                                      \
    XX(NOMEM, -2, "out of memory")                                                         \
    XX(SYS, -3, "system call failed")                                                      \
    XX(SHUTDOWN, -4, "executor is shut down")                                              \
    XX(TIMEDOUT, -5, "timed out waiting")                                                  \
    XX(CANCELLED, -6, "cancelled")                                                         \
    XX(TASK, -7, "task failed")                                                            \
    XX(BUSY, -8, "future is running or done")                                              \
    XX(LOST, -9, "worker lost")                                                            \
    XX(BROKEN, -10, "executor is broken")                                                  \
    XX(FULL, -11, "queue is full")                                                         \
    XX(EMPTY, -12, "queue is empty")                                                       \
    XX(CLOSED, -13, "closed")                                                              \
    XX(NOTSUP, -14, "not supported by this backend")                                       \
    XX(TASKTIMEOUT, -15, "task exceeded its time limit")                                   \
    XX(TOOBIG, -16, "payload too large")                                                   \
    XX(END, -17, "no more items")                                                          \
    XX(NOFUNC, -18, "function cannot be found in worker processes")                        \
    XX(PROTO, -19, "malformed message from a worker process")                              \
    XX(NOINIT, -20, "cf_init() was not called at the start of main()")                   \
    XX(FORKED, -21, "executor belongs to the process this one was forked from")

typedef enum cf_errno {
#define CF__ERRNO_ENUM(name, value, text) CF_E##name = value,
    CF_ERRNO_MAP(CF__ERRNO_ENUM)
#undef CF__ERRNO_ENUM
} cf_errno;

/* Describes a CF_E* code ("timed out waiting"), or 0 ("success", so that printing any
 * return value reads right); "unknown error" for anything else. */
CF_EXPORT const char *cf_strerror(int err);
/* The code's name without prefix ("TIMEDOUT"); "OK" for 0; "UNKNOWN" for anything else. */
CF_EXPORT const char *cf_err_name(int err);

/*
 * Program set-up for process pools.  Call first thing in main(), before anything with side
 * effects:
 *
 *     int main(int argc, char **argv) { cf_init(&argc, &argv); ... }
 *
 * A process pool's workers are this same program, started again with exec (never a bare
 * fork of a process that may run threads).  In such a worker, cf_init() runs the worker
 * and never returns (the process exits when the pool lets it go); in every other process it
 * returns 0 at once, having noted that main() calls it.  cf_executor_new() refuses
 * CF_BACKEND_PROCESSES with CF_ENOINIT until it has been called, so a program that forgot
 * it fails at once instead of starting copies of its own main().  argc and argv may be
 * NULL; they are left unchanged.  Not needed for thread pools.  Call it once, from main.
 * Tasks running in a worker process may use thread pools; creating a process pool there
 * fails with CF_ENOINIT (workers do not start workers).  A worker starts with no signal
 * blocked and every signal at its default action, except the signals this program
 * ignores when the worker starts (SIGHUP under nohup, SIGINT in a background job), which
 * stay ignored in it; SIGCHLD is always at its default there (a task's system() and
 * waitpid work).  Only a pool makes a process its worker: the CFUTURES_WORKER variable is
 * obeyed only if it names this process's parent and carries the per-spawn secret its pool
 * wrote in the control block it gave this process (descriptor 4), descriptor 3 is a
 * socket whose peer is that parent with this process's uid, and the process is not in
 * secure-execution mode
 * (setuid, setgid, file capabilities: getauxval(AT_SECURE)).  Otherwise cf_init() prints
 * one line on stderr saying why, unsets the variable and returns 0: the program runs as a
 * normal program.
 *
 * Isolation promise of process pools: whatever a task does (crash, scribble on its
 * worker's memory, write to its descriptors or send descriptors over them, keep writable
 * mappings of its buffers in threads or children, leave children), it can affect only
 * later tasks of its own worker process: never a task that finished before it, never a
 * task of another worker, and no result is ever reported as success with bytes that its
 * own task did not write.  (A big result's memory is reused only by the worker process
 * that wrote it, and is closed once that process is gone.)
 */
CF_EXPORT int cf_init(int *argc, char ***argv);

/* Timeout values. */
#define CF_FOREVER (-1.0)
#define CF_POLL 0.0

/* ------------------------------------------------------------------------------------ */
/* Tasks                                                                                */
/* ------------------------------------------------------------------------------------ */

/* The context of one running task (or initializer); valid only during that call and only in
 * the thread that runs it. */
typedef struct cf_ctx cf_ctx;
typedef struct cf_executor cf_executor;
typedef struct cf_future cf_future;

/*
 * An in-process task: takes a pointer, returns a pointer through *result (which starts as
 * NULL).  Return 0 on success.  Any other value is the task's own error code (the C analogue of an
 * exception): the future finishes with CF_ETASK and cf_future_error() returns that code,
 * with the message set by cf_fail() if the task called it; a *result set by a failing task
 * is ignored.  `arg` stays the caller's: the library never frees it (a task that is
 * cancelled never sees it, so free it from a done-callback if it must be freed).
 * Accepted by the thread pool only; other backends refuse it at submit with CF_ENOTSUP.
 * The task may call any library function, including cf_submit() and waiting on futures of
 * the same executor.  Every way of waiting (cf_future_result, cf_future_bytes,
 * cf_future_wait, cf_wait, cf_as_completed_next, cf_map_next) helps: a waiting worker runs
 * other queued tasks of its executor meanwhile, so waiting cannot deadlock for lack of
 * workers.  What that means for the task that waits:
 *   - the tasks it runs meanwhile run on its stack, in its thread: it must hold no lock (and
 *     no other resource a task might want) across the wait;
 *   - its timeout may be overrun by the length of a task it ran (a task is never
 *     interrupted); the wait returns when that task ends;
 *   - waits nest: a task run inside a wait may wait in turn, one level deeper on the same
 *     stack.  Each level costs the frames of the tasks involved plus under 0.5 KiB of the
 *     library's, so a worker's stack (the process default, usually 8 MiB) holds thousands
 *     of levels; deeper recursion overflows it like any recursion.
 */
typedef int (*cf_fn)(void *arg, void **result, cf_ctx *ctx);

/*
 * A bytes-in / bytes-out task, accepted by every backend.  `in` holds `len` bytes owned by
 * the library for the duration of the call, with no particular alignment (copy multi-byte
 * values out with memcpy: in a worker process they sit inside a message buffer).  The result is set with cf_ctx_output() or
 * cf_ctx_set_output() (none set means an empty result).  Return 0 or the task's own error
 * code, as for cf_fn.
 */
typedef int (*cf_bytes_fn)(const void *in, size_t len, cf_ctx *ctx);

/*
 * A named bytes task.  Define one with CF_FUNCTION at file scope.  Process pools find the
 * function in their workers by module and offset (the program or a shared library it has
 * loaded, checked by build ID and by this name), since addresses differ between
 * processes; a function they cannot find that way (generated code, a module without a
 * file) is refused at submit with CF_ENOFUNC.
 */
typedef struct cf_function {
    const char *name;
    cf_bytes_fn fn;
} cf_function;

#define CF_FUNCTION(ident, fnptr) const cf_function ident = {#ident, (fnptr)}

/*
 * Records the task's failure message and returns `code`, so a task can write
 *     return cf_fail(ctx, 22, "bad input %d", x);
 * `code` must be non-zero (0 is turned into -1, since 0 means success).  A later call
 * replaces the message.  Call only from the task (or initializer) that owns ctx.
 */
CF_EXPORT int cf_fail(cf_ctx *ctx, int code, const char *fmt, ...) CF_PRINTF(3, 4);

/*
 * Bytes tasks: gives a buffer of `len` bytes that becomes the task's result when it returns
 * 0 (a valid pointer even for len 0).  Its contents are unspecified until the task writes
 * them (a process pool may reuse a released result's memory).  Calling again replaces the
 * previous buffer.  Returns NULL if out of memory (the task should then fail).  The buffer
 * is owned by the library.
 */
CF_EXPORT void *cf_ctx_output(cf_ctx *ctx, size_t len);
/* Bytes tasks: copies `len` bytes as the result.  Returns 0 or CF_ENOMEM. */
CF_EXPORT int cf_ctx_set_output(cf_ctx *ctx, const void *data, size_t len);
/* The executor running this task, for nested submission; NULL in a worker process. */
CF_EXPORT cf_executor *cf_ctx_executor(const cf_ctx *ctx);
/* Index of the worker running this task, 0 .. workers-1. */
CF_EXPORT int cf_ctx_worker(const cf_ctx *ctx);

/* ------------------------------------------------------------------------------------ */
/* Executors                                                                            */
/* ------------------------------------------------------------------------------------ */

typedef enum cf_backend {
    CF_BACKEND_THREADS = 1,  /* a pool of threads in this process */
    CF_BACKEND_PROCESSES = 2 /* a pool of worker processes: bytes tasks only; a task that
                                crashes, exits or hangs costs its own future and a new
                                worker, nothing else (requires cf_init in main) */
} cf_backend;

/*
 * Per-worker initializer: runs once in each worker before it takes its first task.  Return
 * 0, or an error code (with cf_fail for a message).  If any initializer fails, the executor
 * is broken: every pending task and every later submission fails with CF_EBROKEN, and
 * cf_future_error() / cf_executor_error() report the initializer's code and message.
 * In a process pool it runs in each worker process and must be named (cf_initializer,
 * below); its `arg` is a copy of the initializer_arg_len bytes at initializer_arg, or NULL
 * when that length is 0.  Process pools: 3 worker processes in a row that die before they are ready (in
 * the initializer or before it: any exit or signal, SIGKILL from the out-of-memory killer
 * included; only the pool's own kills at shutdown or cancel do not count) break the
 * executor with CF_EBROKEN, the last one's wait status as the code and a message ending
 * "3 workers in a row died before they were ready"; a worker that gets ready, or any
 * task's result, resets the count (the pool is getting work done).  So no pool restarts
 * workers for ever, and workers killed while starting do not break a pool that works.
 */
typedef int (*cf_init_fn)(void *arg, cf_ctx *ctx);

/*
 * A named initializer: define one with CF_INITIALIZER at file scope and set
 * cf_executor_opts.named_initializer.  Process pools require this form: a worker finds it
 * like a CF_FUNCTION (module, offset, build ID and this name), and never calls a bare
 * address, which a forged start message could point anywhere.  Thread pools take either.
 */
typedef struct cf_initializer {
    const char *name;
    cf_init_fn fn;
} cf_initializer;

#define CF_INITIALIZER(ident, fnptr) const cf_initializer ident = {#ident, (fnptr)}

/* What submit does when max_queued tasks are already waiting. */
typedef enum cf_full_mode {
    CF_FULL_BLOCK = 0, /* block until there is room (or the executor shuts down) */
    CF_FULL_FAIL = 1   /* return CF_EFULL at once */
} cf_full_mode;

/* cf_executor_opts.workers: as many workers as CPUs this process may use (affinity mask and
 * cgroup CPU quota). */
#define CF_WORKERS_AUTO (-0x7fffffff - 1)

/* Start from cf_executor_opts_init(), then set what you need. */
typedef struct cf_executor_opts {
    int workers;            /* maximum workers, >= 1, or CF_WORKERS_AUTO (the default) */
    const char *name;       /* worker thread name prefix, at most 11 chars; "cf" default;
                               threads are named "<name>-<index>" */
    cf_init_fn initializer; /* optional per-worker initializer (thread pools) */
    const cf_initializer *named_initializer; /* the same, named (CF_INITIALIZER): the form
                               process pools require; set at most one of the two */
    void *initializer_arg;  /* thread pools: must stay valid until the executor is freed
                               (workers start lazily); process pools copy
                               initializer_arg_len bytes from it at creation */
    size_t max_queued;      /* bound on tasks waiting to start; 0 = unbounded.  A process
                               pool hands such a task only to an idle worker (never
                               ahead), so every task waiting to start holds a place until
                               a worker takes it.  A cancelled
                               task frees its place when a worker discards it; tasks
                               submitted by the executor's own workers are not bounded
                               (a worker blocked on its own pool could wait forever). */
    cf_full_mode full_mode; /* what submit does when the bound is reached */

    /* Process pools only (a thread pool refuses any non-zero value with CF_ENOTSUP): */
    size_t initializer_arg_len;    /* bytes at initializer_arg copied to each worker, at
                                      most 64 KiB */
    double task_timeout;           /* seconds a task may run; 0: no limit.  The worker of a
                                      task that runs longer is killed and replaced, and the
                                      future fails with CF_ETASKTIMEOUT.  A worker whose
                                      channel to the pool closes while it lives (a task
                                      closed its descriptors) is killed and replaced too;
                                      tasks it had not started go to other workers */
    size_t memory_limit;           /* bytes of address space per worker (RLIMIT_AS); 0: none.
                                      A task past it sees allocations fail (and usually dies
                                      of it: CF_ELOST for that task only) */
    unsigned max_tasks_per_worker; /* a worker is replaced after this many tasks; 0: never */
    int kill_on_cancel;            /* cf_future_cancel of a running task kills its worker
                                      (the future becomes CF_CANCELLED) instead of refusing
                                      with CF_EBUSY */
    size_t max_payload;            /* largest task input or result in bytes; 0: the default,
                                      CF_PAYLOAD_DEFAULT; at most CF_PAYLOAD_MAX */

    int record_events;             /* record one cf_event per task (see cf_executor_events);
                                      0: off, and it then costs one test per task */
} cf_executor_opts;

/* Payload limits of process pools (see cf_executor_opts.max_payload). */
#define CF_PAYLOAD_DEFAULT ((size_t)1 << 30) /* 1 GiB */
#define CF_PAYLOAD_MAX ((size_t)1 << 32)     /* 4 GiB */

/* Fills *opts with the defaults: CF_WORKERS_AUTO, the rest zero / NULL. */
CF_EXPORT void cf_executor_opts_init(cf_executor_opts *opts);

/*
 * Creates an executor of the given backend.  opts may be NULL for defaults; it is copied
 * (the name string too, and the initializer's bytes for process pools).  Workers start
 * lazily, on submission, up to the maximum.
 * Errors: CF_EINVAL (unknown backend, workers 0 or negative other than CF_WORKERS_AUTO,
 * name longer than 11 characters, a negative or NaN task_timeout, max_payload over
 * CF_PAYLOAD_MAX, initializer_arg_len over 64 KiB or with a NULL initializer_arg), CF_ENOTSUP (a process-pool option given to a thread pool), CF_ENOINIT
 * (process pool in a program whose main() did not call cf_init), CF_ENOFUNC (an
 * initializer a process pool cannot find in its workers, and any bare `initializer` given
 * to a process pool), CF_EINVAL also for both initializer and named_initializer set,
 * CF_ENOMEM, CF_ESYS.
 * A process pool also runs one manager thread in this process, named "<name>-mgr".
 *
 * fork(): an executor belongs to the process that created it.  In a child made by fork()
 * (which has none of the parent's threads), every call on the parent's executors fails at
 * once with CF_EFORKED (submit, map, shutdown; cancelling a running process-pool task),
 * and waiting on a future that was pending at the fork returns CF_EFORKED at once instead
 * of waiting for a task that runs in the parent, if anywhere (cf_future_result/_wait/
 * _bytes, cf_wait unless already satisfied, cf_as_completed_next, cf_map_next).  Futures
 * done before the fork read as usual.  cf_executor_free of a parent's executor returns at
 * once and releases nothing (its threads, processes and locks are the parent's).  The child
 * may create executors of its own, which work as anywhere.  The parent is unaffected.
 */
CF_EXPORT int cf_executor_new(cf_executor **out, cf_backend backend,
                              const cf_executor_opts *opts);

/*
 * Shuts down (as cf_shutdown(ex, CF_SHUTDOWN_WAIT)), joins every worker and frees the
 * executor.  Futures the caller still holds stay valid.  Must not be called from one of
 * the executor's own tasks or callbacks.  Accepts NULL.  It waits for every running task:
 * there are no daemon workers (Python's daemon threads do not keep a program from
 * exiting), so a task blocked for ever, say in cf_queue_get on an open queue, keeps this
 * call waiting for ever.  Release such tasks first: close the queue (cf_queue_close), then
 * free the executor.
 */
CF_EXPORT void cf_executor_free(cf_executor *ex);

/* The maximum number of workers of this executor. */
CF_EXPORT int cf_executor_workers(const cf_executor *ex);
/* The backend's name: "threads" or "processes". */
CF_EXPORT const char *cf_executor_backend(const cf_executor *ex);
/*
 * If the executor is broken, returns CF_EBROKEN and gives the initializer's code and
 * message (valid until the executor is freed); returns 0 otherwise.  Either out-pointer may
 * be NULL.
 */
CF_EXPORT int cf_executor_error(const cf_executor *ex, int *code, const char **message);

/*
 * Submits fn(arg) and gives a new future (the caller's reference) through *out; out may be
 * NULL for fire-and-forget.  On error nothing was created and nothing will be called.
 * Errors: CF_ESHUTDOWN, CF_EBROKEN, CF_EFULL (bounded queue with CF_FULL_FAIL), CF_ENOTSUP
 * (backend without in-process tasks), CF_ENOMEM, CF_EINVAL (fn NULL), CF_ESYS (no worker
 * thread could be started for the executor's first task), CF_EFORKED (see fork below).
 * May be called from any thread, including from inside tasks and callbacks.
 */
CF_EXPORT int cf_submit(cf_executor *ex, cf_fn fn, void *arg, cf_future **out);

/*
 * Submits fn->fn over a copy of the `len` bytes at `in` (the caller's buffer may be reused
 * at once).  Errors as cf_submit, plus CF_ETOOBIG beyond the backend's payload limit (the
 * thread pool has none but memory; a process pool's is max_payload) and CF_ENOFUNC (a
 * process pool cannot find fn in its workers).
 */
CF_EXPORT int cf_submit_bytes(cf_executor *ex, const cf_function *fn, const void *in,
                              size_t len, cf_future **out);

/* Flags for cf_shutdown(). */
#define CF_SHUTDOWN_WAIT 1u           /* return after every accepted task is done */
#define CF_SHUTDOWN_CANCEL_PENDING 2u /* cancel tasks that have not started */
#define CF_SHUTDOWN_KILL 4u           /* also stop running tasks: a process pool kills
                                         their workers (those futures become
                                         CF_CANCELLED); a thread pool cannot stop a
                                         running thread and treats it as CANCEL_PENDING */

/*
 * Stops accepting tasks: later submissions fail with CF_ESHUTDOWN.  With
 * CF_SHUTDOWN_CANCEL_PENDING, queued tasks are cancelled (their futures report
 * CF_ECANCELLED and their callbacks run).  With CF_SHUTDOWN_WAIT, returns once every
 * accepted task is done and the workers have exited.  May be called any number of times,
 * from any thread; but a thread the executor needs in order to stop (one of its thread
 * pool's workers, that is a task, or a callback its process pool runs) cannot wait for it:
 * CF_SHUTDOWN_WAIT from there returns CF_EINVAL and does nothing at all (the executor is
 * not shut down; call without CF_SHUTDOWN_WAIT to shut it down from there).
 * Returns 0, or CF_EFORKED in a fork child (nothing done).
 */
CF_EXPORT int cf_shutdown(cf_executor *ex, unsigned flags);

/* ------------------------------------------------------------------------------------ */
/* Per-task events: what ran where and when                                             */
/* ------------------------------------------------------------------------------------ */

/* One task's life, recorded when the executor was created with record_events. */
typedef struct cf_event {
    uint64_t task;        /* the task's number in its executor: 1, 2, ... in submission order */
    const char *name;     /* its CF_FUNCTION's name; NULL for pointer tasks (static storage) */
    double submitted;     /* seconds since the executor was created (monotonic clock) */
    double started;       /* when a worker started it; negative if it never started */
    double finished;      /* when it finished, failed or was cancelled */
    int worker;           /* index of the worker that ran it, 0 .. workers-1; -1 if none */
    long pid;             /* process pools: the worker process; 0 otherwise */
    int outcome;          /* 0 or a CF_E* code, as cf_future_result reports it */
} cf_event;

/*
 * Gives a copy of the events of every task of ex that is done, in the order they became
 * done: *events (free it with free(); NULL when *n is 0) and *n.  Map positions are not
 * tasks and are not recorded (the map's runner tasks are).  Errors: CF_EINVAL (ex was not
 * created with record_events, or a NULL argument), CF_ENOMEM.
 */
CF_EXPORT int cf_executor_events(cf_executor *ex, cf_event **events, size_t *n);

/*
 * Writes events as Chrome trace-event JSON to `path` (Perfetto and chrome://tracing open
 * it): one complete ("X") event per task that started, on a track per worker (process
 * pools: per worker process), named after the task, with its number and outcome in its
 * arguments.  Works on any array, so a program can trace work it ran itself.  Returns 0,
 * CF_EINVAL, or CF_ESYS (the file could not be written; errno tells why).
 */
CF_EXPORT int cf_events_write_trace(const cf_event *events, size_t n, const char *path);

/* ------------------------------------------------------------------------------------ */
/* Futures                                                                              */
/* ------------------------------------------------------------------------------------ */

typedef enum cf_state {
    CF_PENDING = 0,   /* accepted, not started */
    CF_RUNNING = 1,   /* started: a worker runs it (process pools: a task handed ahead
                         to a worker stays CF_PENDING until that worker starts it) */
    CF_CANCELLED = 2, /* cancelled before it started, or killed on request (process pools:
                         kill_on_cancel, CF_SHUTDOWN_KILL); done */
    CF_FINISHED = 3   /* finished with a value or an error; done */
} cf_state;

/* Adds a reference; returns f.  The future is freed when the last reference is released. */
CF_EXPORT cf_future *cf_future_retain(cf_future *f);
/* Drops a reference.  Accepts NULL.  Never blocks; a pending task still runs. */
CF_EXPORT void cf_future_release(cf_future *f);

/*
 * The caller's own pointer on a future (Python programs keep a dict from future to input):
 * set it after submitting, read it back from the futures cf_wait or cf_as_completed_next
 * give, and know which input each belongs to without searching.  An index fits too:
 * (void *)(uintptr_t)i.  NULL until set; the library never reads or frees it.  A plain
 * field: set it before other threads read it (or order the two yourself); it costs no
 * memory and no time of its own.
 */
CF_EXPORT void cf_future_set_data(cf_future *f, void *data);
CF_EXPORT void *cf_future_data(const cf_future *f);

/*
 * The current state (a snapshot).  CF_PENDING until a worker starts the task: on a process
 * pool also while it is handed ahead to a worker busy with another task (SEMANTICS 30);
 * CF_RUNNING from the moment that worker starts it, before any answer comes back.  Any
 * thread; on a process pool a future handed ahead costs a look under the pool's lock.
 */
CF_EXPORT cf_state cf_future_state(const cf_future *f);
/* 1 when cancelled or finished, else 0. */
CF_EXPORT int cf_future_done(const cf_future *f);

/*
 * Cancels a pending future: it becomes CF_CANCELLED, its task never starts, its callbacks
 * run in this thread.  Returns 0, also when it was already cancelled; CF_EBUSY when it is
 * running or finished (state unchanged).  On a process pool a task handed ahead to a
 * worker but not started there (CF_PENDING by its state) is taken back, cancelled (0) and
 * never runs; a pool never lets a task wait at a worker busy with another for more than about a
 * millisecond while a worker is idle, nor at a worker that has not started it within a
 * second (stopped, say): it takes the task back and gives it to another.  A running task
 * of a process pool created with kill_on_cancel is cancelled too: its worker is killed
 * (and replaced) and 0 is returned; the caller must not free that executor concurrently
 * with this call.
 */
CF_EXPORT int cf_future_cancel(cf_future *f);

/*
 * Waits until f is done or the timeout passes, and returns its outcome:
 *   0              finished with a value: *value (if value is not NULL) gets it; for a
 *                  bytes task, the result's data pointer (see cf_future_bytes)
 *   CF_ETASK       the task failed: see cf_future_error()
 *   CF_ECANCELLED  cancelled
 *   CF_ETIMEDOUT   not done within the timeout; the future is unchanged
 *   CF_ELOST, CF_ETASKTIMEOUT   the worker running it died / the task hit its time limit
 *                  (process backends)
 *   CF_EPROTO      its worker sent a malformed or truncated message (process backends)
 *   CF_ETOOBIG, CF_ENOFUNC, CF_ENOMEM   process backends: the result exceeded max_payload,
 *                  the worker could not find the function, memory ran out moving it
 *   CF_EBROKEN     the executor broke (failed initializer) before the task ran; such a
 *                  future is CF_FINISHED with an error (it counts for CF_FIRST_ERROR)
 *   CF_EFORKED     not done, and this process was forked from the one whose executor runs
 *                  it (see cf_executor_new): it can never complete here; unchanged
 * May be called any number of times from any thread.  Inside a task of the thread pool,
 * the waiting worker runs other queued tasks meanwhile.
 */
CF_EXPORT int cf_future_result(cf_future *f, double timeout, void **value);

/*
 * As cf_future_result, for bytes tasks: *data and *len get the result bytes, owned by the
 * future (valid while the caller holds a reference).  Either pointer may be NULL.  A result
 * of 0 bytes (a task that set none, or set an empty one) is *data NULL and *len 0 on every
 * backend.  For a pointer task, *data gets its pointer result and *len 0.
 */
CF_EXPORT int cf_future_bytes(cf_future *f, double timeout, const void **data, size_t *len);

/*
 * Waits until f is done: returns 0, or CF_ETIMEDOUT.  The outcome is left to
 * cf_future_result().
 */
CF_EXPORT int cf_future_wait(cf_future *f, double timeout);

/*
 * For a future done with an error (CF_ETASK, CF_EBROKEN, CF_ELOST, ...): gives the task's
 * own error code (or the initializer's for CF_EBROKEN; 0 when there is none) and its
 * message (NULL when there is none; valid while the caller holds a reference).  Does not
 * wait.  Returns the future's outcome code as cf_future_result would with timeout 0.
 * When a process pool's worker ended the task (CF_ELOST, CF_ETASKTIMEOUT, CF_EPROTO), the
 * code is the worker's wait status (test it with WIFSIGNALED / WTERMSIG / WEXITSTATUS from
 * <sys/wait.h>) and the message names the pid and the signal or exit status.  This holds
 * also when the program ignores SIGCHLD (or sets SA_NOCLDWAIT) or reaps children itself:
 * the pool's own kills (time limit, cancel, CF_SHUTDOWN_KILL, a distrusted worker) are
 * SIGKILL, and a worker notes a task's SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT and
 * exit() where the pool reads them (a task that installs its own handler for one of those
 * signals gives that up).  When the cause cannot be known, the code is -1 (neither
 * WIFEXITED nor WIFSIGNALED) and the message says it is unknown: never an invented
 * "exited with status 0".
 */
CF_EXPORT int cf_future_error(const cf_future *f, int *code, const char **message);

/*
 * The process id of the worker process that ran (or is running) the task: process pools,
 * once the task has been handed to a worker; 0 otherwise.
 */
CF_EXPORT long cf_future_pid(const cf_future *f);

/*
 * A done-callback: called exactly once when the future finishes or is cancelled, with the
 * future (borrowed: retain it to keep it) and the user's data.  Callbacks of one future run
 * in the order they were added, all in the thread that completes the future: a worker
 * thread of the executor (a process pool's manager thread), or the thread calling
 * cf_future_cancel() or cf_shutdown().  One added while that thread is still running the
 * future's callbacks joins the end of the list and runs there, after them.  Only one added
 * to a future whose callbacks have all run runs at once, in the thread adding it (before
 * cf_future_add_callback returns).  A callback may read the future, release references,
 * submit tasks and cancel other futures; it must not wait on futures, shut down or free an
 * executor, and should be short (it delays the worker's next task).
 */
typedef void (*cf_done_fn)(cf_future *f, void *data);

/* Adds a done-callback.  Returns 0 or CF_ENOMEM (the callback will then never run). */
CF_EXPORT int cf_future_add_callback(cf_future *f, cf_done_fn fn, void *data);

/* ------------------------------------------------------------------------------------ */
/* Waiting on many futures                                                              */
/* ------------------------------------------------------------------------------------ */

typedef enum cf_wait_mode {
    CF_FIRST_COMPLETED = 0, /* return when any future is done */
    CF_FIRST_ERROR = 1,     /* when any finishes with an error (not cancelled), or all done */
    CF_ALL_COMPLETED = 2    /* when all are done */
} cf_wait_mode;

/*
 * Waits on n futures (any executors, duplicates allowed) until the mode's condition holds
 * or the timeout passes; a timeout is not an error.  Gives the split: the distinct done
 * futures in done[0 .. *n_done) and the distinct not-done ones in not_done[0 .. *n_not_done),
 * each in first-appearance order (borrowed pointers; either array may be NULL, else it must
 * hold n entries).  Futures already done count at once; cancelled counts as done.
 * n may be 0; n_done and n_not_done may be NULL.  Total cost O(n), whatever the number of
 * completions.  Returns 0 or CF_EINVAL/CF_ENOMEM, or CF_EFORKED (nothing written) when the
 * condition does not hold yet and a pending future belongs to the process this one was
 * forked from.
 */
CF_EXPORT int cf_wait(cf_future *const *fs, size_t n, cf_wait_mode mode, double timeout,
                      cf_future **done, size_t *n_done, cf_future **not_done,
                      size_t *n_not_done);

/* An iterator over futures in completion order. */
typedef struct cf_as_completed cf_as_completed;

/*
 * Starts iterating n futures (any executors; duplicates are yielded once): futures already
 * done come first, then each as it completes.  The timeout is one deadline for the whole
 * iteration, counted from this call.  Returns 0, CF_EINVAL or CF_ENOMEM.
 */
CF_EXPORT int cf_as_completed_new(cf_as_completed **out, cf_future *const *fs, size_t n,
                                  double timeout);

/*
 * Gives the next done future (borrowed from the caller's array; it stays valid while the
 * caller holds its reference).  Returns 0; CF_EEND when every future has been yielded;
 * CF_ETIMEDOUT when the deadline passed first (cf_as_completed_pending() then says how many
 * of cf_as_completed_total() remain; later calls still give futures that have completed
 * since, else CF_ETIMEDOUT at once); CF_EFORKED in a fork child when what is left would
 * complete in the parent.  Not thread safe: one thread per iterator.
 */
CF_EXPORT int cf_as_completed_next(cf_as_completed *it, cf_future **f);
/* Futures not yet yielded. */
CF_EXPORT size_t cf_as_completed_pending(const cf_as_completed *it);
/* Distinct futures in the iteration. */
CF_EXPORT size_t cf_as_completed_total(const cf_as_completed *it);
/* Ends the iteration (early or not) and frees it; leaves the futures alone.  Accepts NULL. */
CF_EXPORT void cf_as_completed_free(cf_as_completed *it);

/* ------------------------------------------------------------------------------------ */
/* Map                                                                                  */
/* ------------------------------------------------------------------------------------ */

typedef struct cf_map cf_map;

/* cf_map_opts.chunk: an adaptive schedule, on every backend: each runner starts with single
 * items and sizes its next range from the time its items took, so that a range lasts about
 * 100 us (slow items go one at a time, tiny ones in ranges of thousands), and ranges shrink
 * again towards the end so that no worker is left with a long tail. */
#define CF_CHUNK_AUTO ((size_t)-1)

/* Start from cf_map_opts_init(), then set what you need. */
typedef struct cf_map_opts {
    size_t chunk;         /* items handed to a worker at a time (>= 1): exactly that many
                             per range (the last may be shorter), run one after another by
                             one worker; or CF_CHUNK_AUTO (the default), the adaptive
                             schedule.  Process pools send each range's items to one
                             worker in as few messages as their sizes allow */
    size_t max_in_flight; /* bound on items started but not yet consumed by cf_map_next
                             (backpressure: memory stays bounded); 0 = no bound */
    double timeout;       /* deadline for the whole map from its start; CF_FOREVER: none */
    void (*discard)(void *value); /* pointer maps: called by cf_map_free for each result
                                     produced but never returned by cf_map_next (early free,
                                     deadline), so it can be freed; NULL: left alone */
} cf_map_opts;

/* Fills *opts with the defaults: CF_CHUNK_AUTO, no bound, no deadline, no discard. */
CF_EXPORT void cf_map_opts_init(cf_map_opts *opts);

/*
 * Starts fn(inputs[i]) for i in 0 .. n-1 and gives an iterator over the results in input
 * order.  The caller keeps `inputs` (and what it points to) valid until cf_map_free.
 * opts may be NULL.  Work is handed out in chunks, not as n separate submissions.
 * Errors: CF_EINVAL (fn NULL, inputs NULL with n > 0, chunk 0), CF_ESHUTDOWN, CF_EBROKEN,
 * CF_ENOTSUP (pointer tasks on a process pool), CF_ENOMEM, CF_EFORKED.
 */
CF_EXPORT int cf_map_start(cf_map **out, cf_executor *ex, cf_fn fn, void *const *inputs,
                           size_t n, const cf_map_opts *opts);

/* A bytes input for cf_map_bytes_start. */
typedef struct cf_bytes {
    const void *data;
    size_t len;
} cf_bytes;

/* As cf_map_start for a bytes task; inputs[i] must stay valid until cf_map_free.  Every
 * backend accepts it; process pools also refuse CF_ENOFUNC, and an input over their
 * max_payload reports CF_ETOOBIG at its own position. */
CF_EXPORT int cf_map_bytes_start(cf_map **out, cf_executor *ex, const cf_function *fn,
                                 const cf_bytes *inputs, size_t n, const cf_map_opts *opts);

/*
 * Waits for the next position's outcome, in input order, and returns it as
 * cf_future_result would (0, CF_ETASK, CF_ECANCELLED, CF_EBROKEN, ...), or CF_EEND after the
 * last position, or CF_ETIMEDOUT once the map's deadline has passed (that position and every
 * later one not finished by then report CF_ETIMEDOUT; items not started never start).
 * A position that can never start because the executor shut down (a bounded map restarts
 * its work as the window frees) reports CF_ECANCELLED.
 * *index gets the position (may be NULL).  *value gets the pointer result (pointer maps) or
 * the data pointer (bytes maps; NULL for 0 bytes, on every backend), valid until the next
 * call.  On CF_ETASK, cf_map_error()
 * describes the failure.  One failed item does not affect the others.  Not thread safe:
 * one consumer thread per map.
 */
CF_EXPORT int cf_map_next(cf_map *m, size_t *index, void **value);

/* Byte length of the value last returned by cf_map_next (bytes maps; 0 otherwise). */
CF_EXPORT size_t cf_map_value_len(const cf_map *m);
/* The code and message of the position last returned with an error: the task's own for
 * CF_ETASK; for positions a process pool's worker ended (CF_ELOST, CF_ETASKTIMEOUT,
 * CF_EPROTO) the worker's wait status and a message naming its pid, as cf_future_error
 * gives; else what the failure has (0 and NULL when nothing).  The message stays valid
 * until the next cf_map_next or cf_map_free.  Either pointer may be NULL. */
CF_EXPORT void cf_map_error(const cf_map *m, int *code, const char **message);

/*
 * Runs the map to its end: every position not yet returned by cf_map_next runs (also those
 * not started yet, and a bounded map keeps moving its window) and is waited for; their
 * results are dropped (pointer maps: passed to opts.discard if set; bytes maps: freed).
 * This is the C form of Python's `with ThreadPoolExecutor() as ex: ex.map(f, items)`,
 * which runs every item before the block ends: call cf_map_wait, then cf_map_free.  Unlike
 * Python, a failed item is not lost silently: returns 0 if every position it waited for
 * succeeded, else the outcome of the first that did not (CF_ETASK, CF_ETIMEDOUT past the
 * map's deadline, CF_ECANCELLED after a shutdown, ...), and *failed (may be NULL) gets how
 * many did not.  CF_EINVAL for a NULL map.  Afterwards cf_map_next returns CF_EEND.  The
 * map's consumer thread only, as cf_map_next; inside a task it helps like every wait.
 */
CF_EXPORT int cf_map_wait(cf_map *m, size_t *failed);

/* Stops the map: items not started never start (to run them all first, see cf_map_wait);
 * waits for running ones; frees everything.  Accepts NULL. */
CF_EXPORT void cf_map_free(cf_map *m);

/* ------------------------------------------------------------------------------------ */
/* Queue                                                                                */
/* ------------------------------------------------------------------------------------ */

/* A bounded blocking FIFO of pointers for any number of producers and consumers. */
typedef struct cf_queue cf_queue;

/* Creates a queue holding at most `capacity` items (0: unbounded).  CF_ENOMEM on failure. */
CF_EXPORT int cf_queue_new(cf_queue **out, size_t capacity);
/* Frees the queue and any items left in it (not what they point to).  No thread may be
 * using it.  Accepts NULL. */
CF_EXPORT void cf_queue_free(cf_queue *q);

/*
 * Appends item.  With the queue full, waits up to `timeout` (CF_POLL: not at all) for room.
 * Returns 0, CF_EFULL (no room in time), CF_ECLOSED (closed or shut down; the item was
 * not added), CF_ENOMEM (an unbounded queue could not grow), or CF_EINVAL.
 */
CF_EXPORT int cf_queue_put(cf_queue *q, void *item, double timeout);

/*
 * Takes the oldest item into *item.  With the queue empty, waits up to `timeout`.
 * Returns 0, CF_EEMPTY (nothing in time), or CF_ECLOSED (closed and drained, or shut down).
 */
CF_EXPORT int cf_queue_get(cf_queue *q, void **item, double timeout);

/* Marks one item taken by get as processed.  CF_EINVAL if called more often than put. */
CF_EXPORT int cf_queue_task_done(cf_queue *q);
/* Waits until every item put has been marked done: 0, or CF_ETIMEDOUT.  After an immediate
 * close it returns at once: 0 if every item is accounted for (discarded items count as
 * done), CF_ECLOSED if an item taken before the close is still unfinished. */
CF_EXPORT int cf_queue_join(cf_queue *q, double timeout);

/* Items in the queue now (a snapshot). */
CF_EXPORT size_t cf_queue_size(const cf_queue *q);

/*
 * Closes the queue: put fails with CF_ECLOSED; get drains what is left, then reports
 * CF_ECLOSED.  With `immediate`, remaining items are discarded (and counted done for join)
 * and every blocked caller returns CF_ECLOSED at once.  Idempotent.  Consumers that are
 * tasks of a pool stop this way: close the queue before cf_executor_free, which waits for
 * those tasks (examples/07_queue_workers.c).
 */
CF_EXPORT void cf_queue_close(cf_queue *q, int immediate);

#ifdef __cplusplus
}
#endif
#endif /* CFUTURES_H */
