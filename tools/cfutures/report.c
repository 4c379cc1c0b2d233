/*
 * report.c -- the end of every subcommand: the timeline and trace files, the summary (text
 * or JSON) and the exit status.
 *
 * One function (cli_finish) decides the exit status for every subcommand, so "0 when every
 * item succeeded, 1 otherwise" holds the same way everywhere.  Files are written before the
 * summary so that the summary can say where they are, and a file that could not be written
 * makes the run fail: the user asked for it.  JSON goes to stdout as one object; messages
 * about the run itself (a file that could not be written) go to stderr in both forms.  A
 * run a signal interrupted exits with 128 + its number whatever else happened, as a shell
 * expects of a program that stopped on Ctrl-C.
 */
#include "cli.h"
#include "timeline.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <unistd.h>

int cli_fail(const char *command, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "cfutures %s: ", command);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return CLI_EXIT_FAILED;
}

void cli_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        default:
            if (*p < 0x20)
                fprintf(out, "\\u%04x", *p);
            else
                fputc(*p, out);
        }
    }
    fputc('"', out);
}

int cli_check_outputs(const cli_common *c)
{
    const char *paths[] = {c->timeline, c->trace}, *what[] = {"timeline", "trace"};
    for (int k = 0; k < 2; k++) {
        if (paths[k] == NULL)
            continue;
        /* Opened as it will be, but not truncated: an existing file stays as it is until
         * the run's end, and a new one is removed again. */
        int existed = access(paths[k], F_OK) == 0;
        int fd = open(paths[k], O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0)
            return cli_fail(c->command, "cannot write the %s %s: %s", what[k], paths[k],
                            strerror(errno));
        close(fd);
        if (!existed)
            unlink(paths[k]);
    }
    return 0;
}

static void json_key(FILE *out, const char *key)
{
    fputs(",\n  ", out);
    cli_json_string(out, key);
    fputs(": ", out);
}

static void print_json(const cli_common *c, const cli_run *run, const char *const *labels,
                       const cli_field *fields, size_t n_fields, int timeline_ok, int trace_ok)
{
    FILE *out = stdout;
    fputs("{\n  \"command\": ", out);
    cli_json_string(out, c->command);
    json_key(out, "mode");
    cli_json_string(out, cli_mode_name(c->mode));
    json_key(out, "workers");
    fprintf(out, "%d", run->workers);
    json_key(out, "items");
    fprintf(out, "%zu", run->n);
    json_key(out, "succeeded");
    fprintf(out, "%zu", run->n - run->failed);
    json_key(out, "failed");
    fprintf(out, "%zu", run->failed - run->interrupted);
    if (run->signal != 0) {
        json_key(out, "interrupted");
        fprintf(out, "%zu", run->interrupted);
        json_key(out, "signal");
        cli_json_string(out, cli_signal_name(run->signal));
    }
    json_key(out, "seconds");
    fprintf(out, "%.6f", run->seconds);
    if (c->timeline && timeline_ok) {
        json_key(out, "timeline");
        cli_json_string(out, c->timeline);
    }
    if (c->trace && trace_ok) {
        json_key(out, "trace");
        cli_json_string(out, c->trace);
    }
    for (size_t k = 0; k < n_fields; k++) {
        const cli_field *f = &fields[k];
        json_key(out, f->key);
        switch (f->kind) {
        case CLI_FIELD_STRING:
            cli_json_string(out, f->str);
            break;
        case CLI_FIELD_INT:
            fprintf(out, "%lld", f->i);
            break;
        case CLI_FIELD_NUMBER:
            fprintf(out, "%.15g", f->num);
            break;
        case CLI_FIELD_RAW:
            fputs(f->str, out);
            break;
        }
    }
    json_key(out, "errors");
    fputc('[', out);
    const char *sep = "";
    for (size_t i = 0; i < run->n; i++) {
        const cli_item *it = &run->items[i];
        if (it->status == 0)
            continue;
        fprintf(out, "%s\n    {\"item\": %zu, \"label\": ", sep, i + 1);
        if (labels != NULL)
            cli_json_string(out, labels[i]);
        else
            fprintf(out, "\"item %zu\"", i + 1);
        fputs(", \"error\": ", out);
        cli_json_string(out, cf_err_name(it->status));
        fprintf(out, ", \"code\": %d, \"message\": ", it->code);
        cli_json_string(out, it->message);
        fputc('}', out);
        sep = ",";
    }
    fputs(*sep ? "\n  ]\n}\n" : "]\n}\n", out);
}

static void print_text(const cli_common *c, const cli_run *run, const char *const *labels,
                       const char *text, int timeline_ok, int trace_ok)
{
    if (text != NULL)
        fputs(text, stdout);
    size_t not_started = 0;
    for (size_t i = 0; i < run->n; i++) {
        const cli_item *it = &run->items[i];
        if (it->status == 0)
            continue;
        /* Items stopped by a signal are listed (those it caught running) or counted. */
        const char *what = run->signal != 0 && it->status == CF_ECANCELLED ? "STOPPED" : "FAILED";
        if (*what == 'S' && it->unstarted) {
            not_started++;
            continue;
        }
        if (labels != NULL)
            printf("  %s %s: %s\n", what, labels[i], it->message);
        else
            printf("  %s item %zu: %s\n", what, i + 1, it->message);
    }
    if (run->failed > run->interrupted)
        printf("%zu of %zu items failed\n", run->failed - run->interrupted, run->n);
    if (run->signal != 0)
        printf("Interrupted by %s: %zu of %zu items done, %zu stopped, %zu never started\n",
               cli_signal_name(run->signal), run->n - run->failed, run->n,
               run->interrupted - not_started, not_started);
    if (c->timeline && timeline_ok)
        printf("Timeline: %s\n", c->timeline);
    if (c->trace && trace_ok)
        printf("Trace: %s\n", c->trace);
    printf("Finished in %.2f second(s)\n", run->seconds);
}

static void record_outcome(cli_outcome *o, const cli_run *run, const char *const *labels)
{
    o->done = 1;
    o->seconds = run->seconds;
    o->workers = run->workers;
    o->items = run->n;
    o->failed = run->failed;
    o->first_error[0] = '\0';
    for (size_t i = 0; i < run->n; i++) {
        if (run->items[i].status == 0)
            continue;
        if (labels != NULL)
            snprintf(o->first_error, sizeof o->first_error, "%s: %s", labels[i],
                     run->items[i].message);
        else
            snprintf(o->first_error, sizeof o->first_error, "item %zu: %s", i + 1,
                     run->items[i].message);
        break;
    }
}

int cli_finish(const cli_common *common, const cli_run *run, const char *const *labels,
               const char *text, const cli_field *fields, size_t n_fields)
{
    int status = run->signal != 0  ? CLI_EXIT_SIGNAL(run->signal)
                 : run->failed > 0 ? CLI_EXIT_FAILED
                                   : CLI_EXIT_OK;
    int timeline_ok = 1, trace_ok = 1;
    if (common->timeline != NULL && cli_timeline_write(common->timeline, common, run, labels)) {
        cli_fail(common->command, "cannot write the timeline %s: %s", common->timeline,
                 strerror(errno));
        timeline_ok = 0;
        if (run->signal == 0)
            status = CLI_EXIT_FAILED;
    }
    if (common->trace != NULL) {
        int rc = cf_events_write_trace(run->events, run->n_events, common->trace);
        if (rc != 0) {
            cli_fail(common->command, "cannot write the trace %s: %s", common->trace,
                     rc == CF_ESYS ? strerror(errno) : cf_strerror(rc));
            trace_ok = 0;
            if (run->signal == 0)
                status = CLI_EXIT_FAILED;
        }
    }
    if (common->outcome != NULL)
        record_outcome(common->outcome, run, labels);
    else if (common->json)
        print_json(common, run, labels, fields, n_fields, timeline_ok, trace_ok);
    else
        print_text(common, run, labels, text, timeline_ok, trace_ok);
    fflush(stdout);
    return status;
}
