/*
 * run.c -- running a subcommand's items: sequentially in this thread, or on a thread or
 * process pool, with the outcome of each item kept in input order.
 *
 * The same cli_work_fn runs in every mode; CLI_TASK wraps it as a CF_FUNCTION, and the
 * wrapper (cli_task_adapter) turns its cli_out into the task's result or cf_fail message,
 * so a pool reports exactly what the function said, and sequential mode calls the function
 * itself with no pool and no task context.
 *
 * Timing: the wall time runs from just before the pool is created to after it is freed
 * (start-up and shutdown are part of what a pool costs).  Per-item times come from the
 * executor's recorded events (record_events), or in sequential mode from the clock around
 * each call, so the timeline draws every mode from the same cf_event records, with times
 * from the start of the run.  Events are renumbered so event.task is the item's index + 1.
 *
 * Interruption: SIGINT and SIGTERM set a flag (cli_interrupted) for the whole run; a second
 * one has its default effect.  Sequentially no item starts once it is set; on a pool the
 * collecting thread sees it within POLL_INTERVAL and shuts the pool down, cancelling the
 * items not started and, on a process pool, killing the workers of the running ones
 * (their temporary files are the caller's to remove: cli_remove_leftovers).  Work
 * functions in this process look at the flag and end early with EINTR; a task a thread
 * worker takes after the signal, before the shutdown, does not start its work at all (it
 * ends with ECANCELED and counts as not started).  Worker processes
 * ignore SIGINT (main.c), so a terminal's Ctrl-C, which reaches the whole process group,
 * leaves them to the parent.  Every item the signal stopped (cancelled, killed, ended with
 * EINTR, or a worker dead of SIGINT / SIGTERM) ends as CF_ECANCELLED with the signal as
 * its code and "interrupted by SIG..." as its message, counted in run->interrupted.
 *
 * Progress: a done-callback counts finished futures; the collecting thread waits on the
 * items in order with a short timeout and redraws the bar in between.  The counter lives
 * on this function's stack, which is safe because the executor is shut down (every thread
 * that runs callbacks joined) before it returns.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "progress.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define POLL_INTERVAL 0.1 /* seconds between progress redraws while waiting */

/* The first SIGINT / SIGTERM of the run, or 0. Worker threads read it while the handler
 * writes it, so it is a lock-free atomic (async-signal-safe) rather than a volatile. */
static atomic_int caught;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the signal handler needs a lock-free int");

static void on_signal(int sig)
{
    int none = 0;
    if (!atomic_compare_exchange_strong(&caught, &none, sig)) {
        /* a second one: what the user would get without us */
        signal(sig, SIG_DFL);
        raise(sig); /* delivered when the handler returns */
    }
}

int cli_interrupted(void)
{
    return atomic_load_explicit(&caught, memory_order_relaxed);
}

/* Catches SIGINT and SIGTERM from now on, unless they are ignored (nohup, a background job
 * of a non-interactive shell): the program is then not to be interrupted by them. */
static void catch_signals(void)
{
    const int sigs[] = {SIGINT, SIGTERM};
    for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++) {
        struct sigaction old, sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART};
        sigemptyset(&sa.sa_mask);
        if (sigaction(sigs[k], NULL, &old) == 0 && old.sa_handler != SIG_IGN)
            sigaction(sigs[k], &sa, NULL);
    }
}

const char *cli_signal_name(int sig)
{
    return sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "a signal";
}

int cli_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    return 1;
}

int cli_out_set(cli_out *out, const void *data, size_t len)
{
    void *copy = NULL;
    if (len > 0) {
        copy = malloc(len);
        if (copy == NULL)
            return ENOMEM;
        memcpy(copy, data, len);
    }
    free(out->data);
    out->data = copy;
    out->len = len;
    return 0;
}

int cli_out_fail(cli_out *out, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof out->message, fmt, ap);
    va_end(ap);
    return code != 0 ? code : -1;
}

int cli_task_adapter(cli_work_fn work, const void *in, size_t len, cf_ctx *ctx)
{
    /* Taken by a worker after the signal, before the main thread cancelled what is queued:
     * its work never starts (ECANCELED tells mark_interrupted so). */
    if (cli_interrupted())
        return cf_fail(ctx, ECANCELED, "interrupted before it started");
    cli_out out = {0};
    int rc = work(in, len, &out);
    if (rc == 0 && out.len > 0 && cf_ctx_set_output(ctx, out.data, out.len) != 0)
        rc = cli_out_fail(&out, ENOMEM, "out of memory for the result");
    free(out.data);
    if (rc != 0)
        return cf_fail(ctx, rc, "%s", out.message[0] ? out.message : "failed");
    return 0;
}

void cli_run_free(cli_run *run)
{
    for (size_t i = 0; i < run->n; i++) {
        free(run->items[i].message);
        free(run->items[i].data);
    }
    free(run->items);
    free(run->events);
    memset(run, 0, sizeof *run);
}

/* Records a failure on item it; 0, or -1 when out of memory. */
static int item_fail(cli_item *it, int status, int code, const char *message)
{
    it->status = status;
    it->code = code;
    it->message = strdup(message != NULL && *message ? message : cf_strerror(status));
    return it->message != NULL ? 0 : -1;
}

static int run_sequential(cli_run *run, const cli_common *common, const cli_task *task,
                          const cf_bytes *inputs, size_t n)
{
    cli_progress bar;
    double t0 = cli_now();
    cli_progress_start(&bar, common->progress, n);
    run->workers = 1;
    size_t i;
    for (i = 0; i < n && !cli_interrupted(); i++) {
        cli_item *it = &run->items[i];
        cli_out out = {0};
        double start = cli_now() - t0;
        int rc = task->work(inputs[i].data, inputs[i].len, &out);
        double end = cli_now() - t0;
        it->seconds = end - start;
        run->events[i] = (cf_event){.task = i + 1, .name = task->fn->name, .submitted = 0,
                                    .started = start, .finished = end, .worker = 0,
                                    .pid = 0, .outcome = rc ? CF_ETASK : 0};
        if (rc != 0) {
            free(out.data);
            if (item_fail(it, CF_ETASK, rc, out.message[0] ? out.message : "failed") != 0)
                return -1;
        } else {
            it->data = out.data;
            it->len = out.len;
        }
        cli_progress_update(&bar, i + 1);
    }
    run->n_events = i;
    for (size_t k = i; k < n; k++) /* never started: marked by mark_interrupted */
        if (item_fail(&run->items[k], CF_ECANCELLED, 0, NULL) != 0)
            return -1;
    cli_progress_end(&bar, i);
    run->seconds = cli_now() - t0;
    return 0;
}

static void count_done(cf_future *f, void *data)
{
    (void)f;
    atomic_fetch_add_explicit((atomic_size_t *)data, 1, memory_order_relaxed);
}

/* Copies the outcome of future f into it; 0, or -1 when out of memory. */
static int collect(cli_item *it, cf_future *f)
{
    const void *data;
    size_t len;
    int rc = cf_future_bytes(f, CF_POLL, &data, &len);
    if (rc == 0) {
        if (len > 0) {
            it->data = malloc(len);
            if (it->data == NULL)
                return -1;
            memcpy(it->data, data, len);
            it->len = len;
        }
        return 0;
    }
    int code = 0;
    const char *message = NULL;
    cf_future_error(f, &code, &message);
    it->pid = cf_future_pid(f);
    return item_fail(it, rc, code, message);
}

/* Moves the executor's events into run, renumbered by item, and sets each item's time. */
static int take_events(cli_run *run, cf_executor *ex, const size_t *item_of_task, size_t n_tasks)
{
    cf_event *ev;
    size_t n_ev;
    if (cf_executor_events(ex, &ev, &n_ev) != 0)
        return -1;
    for (size_t k = 0; k < n_ev; k++) {
        if (ev[k].task < 1 || ev[k].task > n_tasks)
            continue;
        size_t i = item_of_task[ev[k].task - 1];
        ev[k].task = i + 1;
        if (ev[k].started >= 0)
            run->items[i].seconds = ev[k].finished - ev[k].started;
    }
    run->events = ev;
    run->n_events = n_ev;
    return 0;
}

static int run_pool(cli_run *run, const cli_common *common, const cli_task *task,
                    const cf_bytes *inputs, size_t n)
{
    cf_executor_opts opts;
    cf_executor_opts_init(&opts);
    opts.workers = common->workers > 0 ? common->workers : CF_WORKERS_AUTO;
    opts.name = "cfutures";
    opts.record_events = 1;

    cf_future **fs = calloc(n ? n : 1, sizeof *fs);
    size_t *item_of_task = calloc(n ? n : 1, sizeof *item_of_task);
    if (fs == NULL || item_of_task == NULL) {
        free(fs);
        free(item_of_task);
        return cli_fail(common->command, "out of memory");
    }

    double t0 = cli_now();
    cf_executor *ex;
    int rc = cf_executor_new(&ex, common->mode == CLI_PROCESSES ? CF_BACKEND_PROCESSES
                                                                : CF_BACKEND_THREADS,
                             &opts);
    if (rc != 0) {
        free(fs);
        free(item_of_task);
        return cli_fail(common->command, "cannot start the %s pool: %s",
                        cli_mode_name(common->mode), cf_strerror(rc));
    }
    run->workers = cf_executor_workers(ex);

    atomic_size_t done = 0;
    size_t n_tasks = 0;
    int oom = 0;
    cli_progress bar;
    cli_progress_start(&bar, common->progress, n);
    for (size_t i = 0; i < n; i++) {
        rc = cli_interrupted() ? CF_ECANCELLED
                               : cf_submit_bytes(ex, task->fn, inputs[i].data, inputs[i].len,
                                                 &fs[i]);
        if (rc == 0) {
            item_of_task[n_tasks++] = i;
            if (cf_future_add_callback(fs[i], count_done, &done) != 0)
                oom = 1;
        } else {
            fs[i] = NULL;
            atomic_fetch_add_explicit(&done, 1, memory_order_relaxed);
            if (item_fail(&run->items[i], rc, 0, NULL) != 0)
                oom = 1;
        }
    }
    int stopped = 0;
    for (size_t i = 0; i < n; i++) {
        if (fs[i] == NULL)
            continue;
        while (cf_future_wait(fs[i], POLL_INTERVAL) == CF_ETIMEDOUT) {
            if (!stopped && cli_interrupted()) {
                /* Not started: cancelled; running in a worker process: killed. */
                cf_shutdown(ex, CF_SHUTDOWN_CANCEL_PENDING | CF_SHUTDOWN_KILL);
                stopped = 1;
            }
            cli_progress_update(&bar, atomic_load(&done));
        }
        if (collect(&run->items[i], fs[i]) != 0)
            oom = 1;
        cf_future_release(fs[i]);
        cli_progress_update(&bar, atomic_load(&done));
    }
    /* The events are complete only once every done-callback has run (a future can be
     * seen done just before its recorder's callback appends its event), which the shutdown
     * guarantees: it returns after the threads that run callbacks have exited. */
    cf_shutdown(ex, CF_SHUTDOWN_WAIT);
    if (take_events(run, ex, item_of_task, n_tasks) != 0)
        oom = 1;
    cf_executor_free(ex);
    run->seconds = cli_now() - t0;
    cli_progress_end(&bar, n);
    free(fs);
    free(item_of_task);
    return oom ? -1 : 0;
}

/* Whether item it, which failed, was stopped by the signal: cancelled, killed, ended with
 * EINTR by its work function, or its worker process died of SIGINT / SIGTERM. */
static int stopped_by_signal(const cli_item *it)
{
    switch (it->status) {
    case CF_ECANCELLED:
        return 1;
    case CF_ETASK:
        return it->code == EINTR || it->code == ECANCELED;
    case CF_ELOST:
        return WIFSIGNALED(it->code) &&
               (WTERMSIG(it->code) == SIGINT || WTERMSIG(it->code) == SIGTERM);
    default:
        return 0;
    }
}

/* After a run the signal interrupted: turns every item it stopped into an interrupted one
 * (see the design note).  0, or -1 when out of memory. */
static int mark_interrupted(cli_run *run, int sig)
{
    run->signal = sig;
    char *started = calloc(run->n ? run->n : 1, 1);
    if (started == NULL)
        return -1;
    for (size_t k = 0; k < run->n_events; k++)
        if (run->events[k].started >= 0 && run->events[k].task >= 1 &&
            run->events[k].task <= run->n)
            started[run->events[k].task - 1] = 1;
    int rc = 0;
    for (size_t i = 0; i < run->n && rc == 0; i++) {
        cli_item *it = &run->items[i];
        if (it->status == 0 || !stopped_by_signal(it))
            continue;
        if (it->status == CF_ETASK && it->code == ECANCELED)
            started[i] = 0; /* its task began only to see the signal (cli_task_adapter) */
        free(it->message);
        it->status = CF_ECANCELLED;
        it->code = sig;
        it->unstarted = !started[i];
        if (asprintf(&it->message, "interrupted by %s%s", cli_signal_name(sig),
                     started[i] ? "" : " before it started") < 0) {
            it->message = NULL;
            rc = -1;
        }
        run->interrupted++;
    }
    free(started);
    return rc;
}

int cli_run_items(cli_run *run, const cli_common *common, const cli_task *task,
                  const cf_bytes *inputs, size_t n)
{
    memset(run, 0, sizeof *run);
    if (cli_check_outputs(common) != 0)
        return CLI_EXIT_FAILED;
    catch_signals();
    run->items = calloc(n ? n : 1, sizeof *run->items);
    run->n = n;
    int rc = CLI_EXIT_FAILED;
    if (run->items == NULL)
        goto fail;
    if (common->mode == CLI_SEQUENTIAL) {
        run->events = calloc(n ? n : 1, sizeof *run->events);
        if (run->events == NULL)
            goto fail;
        rc = run_sequential(run, common, task, inputs, n);
    } else {
        rc = run_pool(run, common, task, inputs, n);
        if (rc == CLI_EXIT_FAILED) {
            cli_run_free(run);
            return rc;
        }
    }
    if (rc != 0 || (cli_interrupted() && mark_interrupted(run, cli_interrupted()) != 0))
        goto fail;
    for (size_t i = 0; i < n; i++)
        run->failed += run->items[i].status != 0;
    return 0;

fail:
    cli_run_free(run);
    return cli_fail(common->command, "out of memory");
}

int cli_item_result(const cli_item *it, void *out, size_t size)
{
    if (it->status != 0 || it->len != size)
        return 0;
    memcpy(out, it->data, size);
    return 1;
}

/* Globs the temporary files cli_open_temporary made for `name` in `dir` whose
 * "PID-N" part matches tail (a glob pattern) into *g; dir and name are taken literally.
 * Returns glob's code (GLOB_NOMATCH when there are none). */
static int glob_temporaries(const char *dir, const char *name, const char *tail, glob_t *g)
{
    char pattern[PATH_MAX];
    char *p = pattern, *end = pattern + sizeof pattern - 32;
    const char *parts[] = {dir, "/.", name};
    memset(g, 0, sizeof *g);
    for (size_t k = 0; k < 3 && p < end; k++)
        for (const char *c = parts[k]; *c != '\0' && p < end; c++) {
            if (k != 1 && strchr("*?[\\", *c) != NULL)
                *p++ = '\\';
            *p++ = *c;
        }
    if (p >= end)
        return GLOB_NOMATCH;
    snprintf(p, 32, ".part-%s", tail);
    return glob(pattern, GLOB_NOSORT, NULL, g);
}

void cli_remove_leftovers(const char *dir, const char *name, const cli_item *it)
{
    if (it->status == 0 || it->status == CF_ETASK || it->pid <= 0)
        return; /* the work function ended on its own and cleaned up */
    char tail[32];
    snprintf(tail, sizeof tail, "%ld-*", it->pid);
    glob_t g;
    if (glob_temporaries(dir, name, tail, &g) == 0)
        for (size_t i = 0; i < g.gl_pathc; i++)
            unlink(g.gl_pathv[i]);
    globfree(&g);
}

void cli_remove_stale(const char *dir, const char *name)
{
    glob_t g;
    if (glob_temporaries(dir, name, "*-*", &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            const char *at = strrchr(g.gl_pathv[i], '/');
            at = strstr(at != NULL ? at : g.gl_pathv[i], ".part-");
            char *end;
            long pid = at != NULL ? strtol(at + 6, &end, 10) : 0;
            /* Only a file whose process is gone: another run may be writing the others. */
            if (pid > 0 && *end == '-' && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
                unlink(g.gl_pathv[i]);
        }
    }
    globfree(&g);
}

char *cli_output_folder(const char *path)
{
    char *partial = strdup(path);
    if (partial == NULL)
        return NULL;
    int rc = 0;
    for (char *p = partial + 1; rc == 0; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (mkdir(partial, 0777) != 0 && errno != EEXIST)
            rc = -1;
        *p = c;
        if (c == '\0')
            break;
    }
    free(partial);
    return rc == 0 ? realpath(path, NULL) : NULL;
}

int cli_open_temporary(const char *dir, const char *name, char *tmp, size_t cap)
{
    static atomic_uint counter;
    for (;;) {
        unsigned k = atomic_fetch_add(&counter, 1);
        /* The name is shortened so the whole stays within NAME_MAX. */
        int len = snprintf(tmp, cap, "%s/.%.200s.part-%ld-%u", dir, name, (long)getpid(), k);
        if (len < 0 || (size_t)len >= cap) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
}
