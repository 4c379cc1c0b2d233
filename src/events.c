/*
 * events.c -- per-task events (record_events) and their Chrome trace-event JSON.
 *
 * A recording executor stamps each task at admission (its number and submission time);
 * backends stamp the start (worker, pid, time) where they start a task, or the start and
 * end a worker process reported; cf__future_complete appends the event before it makes the
 * future done (so a caller that has seen every future done finds every event).  An executor that
 * does not record pays one predictable branch per task at admission and one at start
 * (whether the future has a recorder).
 *
 * Times are CLOCK_MONOTONIC, system-wide, so a worker process's start time and the
 * parent's submission time are on one axis; events store them relative to the executor's
 * creation.
 *
 * Lock order: events_lock is a leaf, taken by completing threads and by readers.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cf__events_init(cf_executor *ex, const cf_executor_opts *opts)
{
    ex->record_events = opts->record_events != 0;
    ex->created_ns = cf__now_ns();
    pthread_mutex_init(&ex->events_lock, NULL);
}

void cf__events_destroy(cf_executor *ex)
{
    pthread_mutex_destroy(&ex->events_lock);
    free(ex->events);
}

static double seconds_since(const cf_executor *ex, int64_t t)
{
    return (double)(t - ex->created_ns) * 1e-9;
}

void cf__events_record(cf_future *f, int outcome)
{
    cf__future_extra *x = f->extra;
    cf_executor *ex = x->recorder;
    int64_t finished = x->finished_ns ? x->finished_ns : cf__now_ns();
    cf_event e = {
        .task = x->task_no,
        .name = f->kind == CF__TASK_BYTES ? f->task.bytes_fn->name : NULL,
        .submitted = seconds_since(ex, x->submitted_ns),
        .started = x->started_ns ? seconds_since(ex, x->started_ns) : -1.0,
        .finished = seconds_since(ex, finished),
        .worker = x->started_ns ? x->worker : -1,
        .pid = x->pid,
        .outcome = outcome,
    };
    pthread_mutex_lock(&ex->events_lock);
    if (ex->events_len == ex->events_cap) {
        size_t cap = ex->events_cap ? 2 * ex->events_cap : 256;
        cf_event *grown = realloc(ex->events, cap * sizeof *grown);
        if (grown) {
            ex->events = grown;
            ex->events_cap = cap;
        }
    }
    if (ex->events_len < ex->events_cap)
        ex->events[ex->events_len++] = e;
    else
        ex->events_lost++;
    pthread_mutex_unlock(&ex->events_lock);
}

int cf__events_submitted(cf_executor *ex, cf_future *f)
{
    cf__future_extra *x = cf__future_extra_get(f);
    if (!x)
        return CF_ENOMEM;
    x->recorder = ex;
    x->task_no = atomic_fetch_add(&ex->tasks_numbered, 1) + 1;
    x->submitted_ns = cf__now_ns();
    return 0;
}

void cf__events_unsubmitted(cf_future *f)
{
    if (f->extra)
        f->extra->recorder = NULL;
}

void cf__events_started(cf_future *f, int worker, int64_t when)
{
    cf__future_extra *x = f->extra;
    x->worker = worker;
    x->started_ns = when;
}

void cf__events_ran(cf_future *f, int worker, int64_t start, int64_t end)
{
    cf__events_started(f, worker, start);
    f->extra->finished_ns = end;
}

int cf_executor_events(cf_executor *ex, cf_event **events, size_t *n)
{
    if (!ex || !events || !n || !ex->record_events)
        return CF_EINVAL;
    *events = NULL;
    *n = 0;
    pthread_mutex_lock(&ex->events_lock);
    size_t len = ex->events_len;
    cf_event *copy = len ? malloc(len * sizeof *copy) : NULL;
    if (copy)
        memcpy(copy, ex->events, len * sizeof *copy);
    pthread_mutex_unlock(&ex->events_lock);
    if (len && !copy)
        return CF_ENOMEM;
    *events = copy;
    *n = len;
    return 0;
}

/* ---- Chrome trace-event JSON -------------------------------------------------------- */

static void json_string(FILE *fp, const char *s)
{
    fputc('"', fp);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(fp, "\\%c", c);
        else if (c < 0x20)
            fprintf(fp, "\\u%04x", c);
        else
            fputc(c, fp);
    }
    fputc('"', fp);
}

/* The track of an event: a process pool's worker process, else one process of workers. */
static long track_pid(const cf_event *e)
{
    return e->pid ? e->pid : 1;
}

int cf_events_write_trace(const cf_event *events, size_t n, const char *path)
{
    if ((!events && n) || !path)
        return CF_EINVAL;
    FILE *fp = fopen(path, "w");
    if (!fp)
        return CF_ESYS;
    fputs("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n", fp);
    const char *sep = "";
    /* Name each track once: a worker process, or a worker thread. */
    for (size_t i = 0; i < n; i++) {
        const cf_event *e = &events[i];
        if (e->started < 0)
            continue;
        bool first = true;
        for (size_t k = 0; k < i && first; k++)
            first = !(events[k].started >= 0 && track_pid(&events[k]) == track_pid(e) &&
                      events[k].worker == e->worker);
        if (!first)
            continue;
        fprintf(fp, "%s{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":%ld,\"tid\":%d,"
                    "\"args\":{\"name\":\"worker %d\"}}",
                sep, track_pid(e), e->worker, e->worker);
        sep = ",\n";
        if (e->pid)
            fprintf(fp, "%s{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":%ld,"
                        "\"args\":{\"name\":\"worker process %ld\"}}",
                    sep, e->pid, e->pid);
    }
    for (size_t i = 0; i < n; i++) {
        const cf_event *e = &events[i];
        if (e->started < 0)
            continue;
        double dur = e->finished > e->started ? e->finished - e->started : 0;
        fprintf(fp, "%s{\"ph\":\"X\",\"cat\":\"task\",\"name\":", sep);
        json_string(fp, e->name ? e->name : "task");
        fprintf(fp, ",\"pid\":%ld,\"tid\":%d,\"ts\":%.3f,\"dur\":%.3f,"
                    "\"args\":{\"task\":%llu,\"outcome\":\"%s\",\"submitted_us\":%.3f}}",
                track_pid(e), e->worker, e->started * 1e6, dur * 1e6,
                (unsigned long long)e->task, e->outcome ? cf_err_name(e->outcome) : "OK",
                e->submitted * 1e6);
        sep = ",\n";
    }
    fputs("\n]}\n", fp);
    int failed = ferror(fp);
    if (fclose(fp) != 0 || failed)
        return CF_ESYS;
    return 0;
}
