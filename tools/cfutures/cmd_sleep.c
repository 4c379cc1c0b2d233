/*
 * cmd_sleep.c -- `cfutures sleep`: N tasks that each sleep S seconds, the stand-in for
 * waiting on I/O.  Sequentially it takes N x S; with enough workers, threads or processes,
 * about S, since a sleeping task needs no CPU.
 *
 * Each task sleeps until an absolute deadline on the monotonic clock, so a signal that
 * interrupts the sleep does not shorten or lengthen it.  --fail-every K makes every K-th
 * task (the K-th, 2K-th, ... counting from 1) fail after its sleep, to show what failures
 * look like in the summary, the exit status and the timeline.
 */
#include "cli.h"
#include "progress.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_TASKS 100000
#define MAX_SECONDS 3600.0
#define DEFAULT_MAX_WORKERS 64
#define SLICE 0.05 /* seconds of sleep between looks at cli_interrupted() */

/* A task's input. */
typedef struct sleep_input {
    double seconds;
    uint32_t number; /* 1-based */
    uint32_t fail;   /* fail on purpose after sleeping */
} sleep_input;

static int sleep_work(const void *in, size_t len, cli_out *out)
{
    sleep_input job;
    if (len != sizeof job)
        return cli_out_fail(out, EINVAL, "bad input (%zu bytes)", len);
    memcpy(&job, in, sizeof job);

    /* In slices, so that an interrupted run does not wait out the sleep. */
    double end = cli_now() + job.seconds;
    for (;;) {
        if (cli_interrupted())
            return cli_out_fail(out, EINTR, "interrupted");
        double left = end - cli_now();
        if (left <= 0)
            break;
        double slice = left < SLICE ? left : SLICE;
        struct timespec ts = {(time_t)slice, (long)((slice - floor(slice)) * 1e9)};
        nanosleep(&ts, NULL);
    }
    if (job.fail)
        return cli_out_fail(out, EIO, "task %u failed on purpose (--fail-every)", job.number);
    return 0;
}

CLI_TASK(sleep_task, sleep_work);

static int run_sleep(int argc, char **argv, cli_common *common)
{
    int tasks = 10;
    double seconds = 1.0;
    int fail_every = 0;
    const cli_option opts[] = {
        {"tasks", 'n', CLI_OPT_INT, &tasks, "N", "number of tasks, 1 to 100000 (default: 10)"},
        {"seconds", 's', CLI_OPT_DOUBLE, &seconds, "S",
         "seconds each task sleeps, 0 to 3600 (default: 1)"},
        {"fail-every", 0, CLI_OPT_INT, &fail_every, "K",
         "make every K-th task fail after its sleep (default: 0, none)"},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    int rc = cli_parse(&cli_sleep, argc, argv, common, opts, NULL);
    if (rc != CLI_PARSED)
        return rc;
    if (tasks < 1 || tasks > MAX_TASKS)
        return cli_usage_error(&cli_sleep, "--tasks must be between 1 and %d, not %d",
                               MAX_TASKS, tasks);
    if (!(seconds >= 0 && seconds <= MAX_SECONDS))
        return cli_usage_error(&cli_sleep, "--seconds must be between 0 and %.0f, not %g",
                               MAX_SECONDS, seconds);
    if (fail_every < 0)
        return cli_usage_error(&cli_sleep, "--fail-every must be 0 or more, not %d",
                               fail_every);
    /* Sleeping needs no CPU: one worker per task, as the classic example does, within
     * reason for a process pool of many tasks. */
    if (common->workers == 0)
        common->workers = tasks < DEFAULT_MAX_WORKERS ? tasks : DEFAULT_MAX_WORKERS;

    sleep_input *jobs = calloc((size_t)tasks, sizeof *jobs);
    cf_bytes *inputs = calloc((size_t)tasks, sizeof *inputs);
    if (jobs == NULL || inputs == NULL) {
        free(jobs);
        free(inputs);
        return cli_fail(cli_sleep.name, "out of memory");
    }
    for (int i = 0; i < tasks; i++) {
        jobs[i] = (sleep_input){.seconds = seconds,
                                .number = (uint32_t)i + 1,
                                .fail = fail_every > 0 && (i + 1) % fail_every == 0};
        inputs[i] = (cf_bytes){&jobs[i], sizeof jobs[i]};
    }

    cli_run run;
    rc = cli_run_items(&run, common, &sleep_task_task, inputs, (size_t)tasks);
    free(jobs);
    free(inputs);
    if (rc != 0)
        return rc;

    char text[256];
    snprintf(text, sizeof text, "Ran %d task%s that each sleep %g second(s): %s, %d worker%s\n",
             tasks, tasks == 1 ? "" : "s", seconds, cli_mode_name(common->mode), run.workers,
             run.workers == 1 ? "" : "s");
    const cli_field fields[] = {
        {.key = "tasks", .kind = CLI_FIELD_INT, .i = tasks},
        {.key = "seconds_per_task", .kind = CLI_FIELD_NUMBER, .num = seconds},
    };
    rc = cli_finish(common, &run, NULL, text, fields, sizeof fields / sizeof fields[0]);
    cli_run_free(&run);
    return rc;
}

const cli_command cli_sleep = {
    .name = "sleep",
    .summary = "N tasks that each sleep S seconds (waiting on I/O)",
    .args = NULL,
    .about = "Runs N tasks that each sleep S seconds: the stand-in for tasks that wait on\n"
             "I/O.  One after the other they take N x S seconds; on a pool with a worker\n"
             "per task, about S, since a sleeping task leaves the CPU free.  The default\n"
             "number of workers is one per task, at most 64.",
    .run = run_sleep,
};
