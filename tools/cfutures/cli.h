/*
 * cli.h -- the shared interface of the `cfutures` command's subcommands.
 *
 * A subcommand is a cli_command in the table of main.c.  Its run() function:
 *   1. declares its own options as a cli_option array (pointing at its locals) and calls
 *      cli_parse(), which also handles the common options (--mode, --workers, --json,
 *      --timeline, --trace, --progress/--no-progress, --help) and reports bad options
 *      (message + usage, exit status 2);
 *   2. checks its values (cli_usage_error() for a bad one: exit status 2);
 *   3. builds one input per item and runs them with cli_run_items(): in sequential mode
 *      one after the other in this thread, else on a thread or process pool of
 *      common->workers workers, with a progress bar on a terminal; the outcome of every
 *      item is kept in input order, and every item's start and end are recorded (events
 *      of the executor, or timed here in sequential mode) for the timeline;
 *   4. calls cli_finish(), which writes the timeline / trace if asked, prints the summary
 *      (text: the subcommand's own lines, each failed item, "Finished in X second(s)";
 *      or one JSON object) and returns the exit status: 0 when every item succeeded, 1
 *      otherwise.
 *
 * The work of an item is a cli_work_fn, wrapped by CLI_TASK into a CF_FUNCTION so the same
 * code runs inline (sequential), in a worker thread, or in a worker process (the function
 * must then depend only on its input bytes: it runs in another copy of the program).
 *
 * Exit statuses: 0 all items succeeded (or --help), 1 an item failed or the run could not
 * be done (message on stderr), 2 bad usage, 128 + the signal's number (130 SIGINT, 143
 * SIGTERM) when a signal interrupted the run (cli_run_items).
 */
#ifndef CFUTURES_CLI_H
#define CFUTURES_CLI_H

#include <glob.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cfutures.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAILED 1
#define CLI_EXIT_USAGE 2
#define CLI_EXIT_SIGNAL(sig) (128 + (sig))

/* ------------------------------------------------------------------------------------ */
/* Subcommands and options                                                              */
/* ------------------------------------------------------------------------------------ */

typedef enum cli_mode { CLI_SEQUENTIAL = 0, CLI_THREADS = 1, CLI_PROCESSES = 2 } cli_mode;

/* The common options, parsed by cli_parse. */
typedef struct cli_common {
    const char *command;  /* the subcommand's name */
    cli_mode mode;        /* --mode; default threads */
    int workers;          /* --workers; 0 when not given (the subcommand picks a default,
                             else CF_WORKERS_AUTO); always 1 in effect in sequential mode */
    int json;             /* --json: one JSON object on stdout instead of text */
    const char *timeline; /* --timeline FILE.svg, or NULL */
    const char *trace;    /* --trace FILE.json (Chrome trace-event JSON), or NULL */
    int progress;         /* --progress: 1, --no-progress: 0, else -1 (on a terminal) */
    double timeline_span; /* set by a caller before run() (the demo), else 0: the timeline's
                             axis covers at least this many seconds, so that runs drawn
                             with the same span compare by length; cli_parse leaves it */
    struct cli_outcome *outcome; /* set by a caller that runs a subcommand itself (the
                                    demo) before run(); cli_parse leaves it alone.  When
                                    non-NULL, cli_finish fills it in and prints nothing. */
} cli_common;

/* What cli_finish tells the caller of a subcommand's run() through cli_common.outcome. */
typedef struct cli_outcome {
    int done;            /* 1 once cli_finish ran: the run took place */
    double seconds;      /* wall time of the run */
    int workers;         /* workers it had (1 in sequential mode) */
    size_t items, failed;
    char first_error[256]; /* "<label>: <message>" of the first failed item, or "" */
} cli_outcome;

/* Common options a subcommand does not take (cli_command.common_off). */
#define CLI_COMMON_MODE 1u     /* --mode */
#define CLI_COMMON_WORKERS 2u  /* --workers */
#define CLI_COMMON_TIMELINE 4u /* --timeline */
#define CLI_COMMON_TRACE 8u    /* --trace */
#define CLI_COMMON_JSON 16u    /* --json */
#define CLI_COMMON_PROGRESS 32u /* --progress and --no-progress */

typedef struct cli_command {
    const char *name;    /* "sleep" */
    const char *summary; /* one line for `cfutures --help` */
    const char *args;    /* positional arguments for the usage line ("[URL...]"), or NULL
                            when the subcommand takes none */
    const char *about;   /* a paragraph for `cfutures NAME --help`: what it does, what the
                            items are */
    int (*run)(int argc, char **argv, cli_common *common); /* argv[0] is the name */
    unsigned common_off; /* CLI_COMMON_* options it does not take (0: it takes them all) */
    const char *exit_help; /* "Exit status: ..." for --help, or NULL: that of the commands
                              that run items (0 all succeeded, 1, 2, 130 / 143) */
} cli_command;

/* The subcommands built into the program. */
extern const cli_command cli_sleep, cli_sum, cli_demo, cli_serve;

/*
 * The subcommand called name, or NULL with why in why[0 .. cap) (an unknown name, a module
 * that cannot be loaded).  sleep, sum and demo are built in; download and images live in
 * modules of their own, cfutures-download.so and cfutures-images.so, loaded on first use
 * (each defines the cli_command `cli_<name>`).  So libcurl, libvips and the hundred
 * libraries behind them are loaded only by a program that runs those subcommands: a
 * worker process of a process pool, which is this program started again, loads a module
 * only when its task lives there.  Modules are looked for next to the program (the build
 * tree), then in CF_CLI_MODULE_DIR relative to it (an installed tree).  Not thread safe:
 * call from the main thread.
 */
const cli_command *cli_find_command(const char *name, char *why, size_t cap);

typedef enum cli_opt_kind {
    CLI_OPT_FLAG,   /* int *: set to 1; takes no value */
    CLI_OPT_INT,    /* int *: a decimal integer */
    CLI_OPT_U64,    /* uint64_t *: a non-negative decimal integer */
    CLI_OPT_DOUBLE, /* double *: a finite number */
    CLI_OPT_STRING  /* const char **: the argument itself (points into argv) */
} cli_opt_kind;

/* One subcommand option.  An array of them ends with an entry whose name is NULL. */
typedef struct cli_option {
    const char *name;    /* long name without the dashes: "tasks" */
    char short_name;     /* 'n', or 0 for none */
    cli_opt_kind kind;
    void *target;        /* where the value goes (see cli_opt_kind) */
    const char *metavar; /* the value's name in --help ("N", "SECONDS"); NULL for flags */
    const char *help;    /* one line for --help; say the default */
} cli_option;

/* cli_parse's return value when the subcommand should go on. */
#define CLI_PARSED (-1)

/*
 * Parses argv[1 .. argc) of a subcommand: its own options `opts` (may be NULL) and the
 * common ones into *common (filled with defaults first; command is set to cmd->name).
 * Accepts --name VALUE, --name=VALUE, -x VALUE, -xVALUE, and "--" ending the options.
 * Positional arguments are moved, in order, to argv[1 .. 1 + *n_args); with n_args NULL
 * (or cmd->args NULL) any positional argument is a usage error.
 * Returns CLI_PARSED to go on, or the exit status to return at once: 0 after printing
 * --help, CLI_EXIT_USAGE after a message and the usage on stderr.
 */
int cli_parse(const cli_command *cmd, int argc, char **argv, cli_common *common,
              const cli_option *opts, int *n_args);

/* Prints "cfutures NAME: <message>", the usage line and a pointer to --help on stderr;
 * returns CLI_EXIT_USAGE.  For values that parsed but are out of range. */
int cli_usage_error(const cli_command *cmd, const char *fmt, ...) CF_PRINTF(2, 3);

/* Prints "cfutures NAME: <message>" on stderr and returns CLI_EXIT_FAILED.  For a run
 * that cannot be done (a folder that cannot be read, an executor that cannot start). */
int cli_fail(const char *command, const char *fmt, ...) CF_PRINTF(2, 3);

/* The mode's name: "sequential", "threads", "processes". */
const char *cli_mode_name(cli_mode mode);

/* CPUs this process may run on (at least 1): the default number of workers and chunks of
 * CPU-bound subcommands. */
int cli_cpus(void);

/* The default photos of `images` and `demo`: Debian's mate-backgrounds, the JPEG files
 * of nature/ and abstract/Elephants*.jpg.  Globs them into *g (each pattern's matches in name order; free
 * with globfree) and returns 0 (also when none is installed: g->gl_pathc is then 0), or
 * GLOB_NOSPACE. */
int cli_default_photos(glob_t *g);

/* ------------------------------------------------------------------------------------ */
/* Items: the work, and running it                                                      */
/* ------------------------------------------------------------------------------------ */

/* What a work function gives back: set with cli_out_set / cli_out_fail. */
typedef struct cli_out {
    void *data;         /* the result (malloc'd, owned by the runner) */
    size_t len;
    char message[512];  /* the failure's message */
} cli_out;

/*
 * The work of one item: reads its input bytes (no alignment: memcpy multi-byte values
 * out), returns 0 with an optional result set by cli_out_set, or a non-zero error code of
 * its own (errno-like, positive) with a message set by cli_out_fail.  It must not exit the
 * program and must be thread safe (several run at once in thread mode).
 */
typedef int (*cli_work_fn)(const void *in, size_t len, cli_out *out);

/*
 * Creates a new, empty temporary file for `name` in folder `dir` (".NAME.part-PID-N", so a
 * reader of the folder never takes it for a finished file), exclusively, and puts its path
 * in tmp[0 .. cap).  Returns the open descriptor, or -1 with errno.  Write the file, then
 * rename it to its name: nothing half-written ever carries the real name.  Thread safe.
 */
int cli_open_temporary(const char *dir, const char *name, char *tmp, size_t cap);

/* After a run was interrupted: items stopped by it end as CF_ECANCELLED (see cli_run_items).
 * The SIGINT or SIGTERM that interrupted the current run, or 0: a work function running in
 * this process (sequential and threads modes) that can stop early looks at it and then
 * returns cli_out_fail(out, EINTR, "interrupted"), having removed its partial files.
 * Async-signal safe. */
int cli_interrupted(void);

/* "SIGINT", "SIGTERM" (what cli_interrupted returns), else "a signal". */
const char *cli_signal_name(int sig);

/* Removes the temporary files for `name` in `dir` (cli_open_temporary's naming) that a
 * process no longer running left behind (an earlier run killed with SIGKILL, a crash):
 * call before a run, for each output name.  Files of live processes are left alone. */
void cli_remove_stale(const char *dir, const char *name);

/* Creates folder `path` and any missing parents (like mkdir -p) and returns its real path
 * (malloc'd), or NULL with errno. */
char *cli_output_folder(const char *path);

/* Copies len bytes as the item's result.  Returns 0, or ENOMEM (then fail the item). */
int cli_out_set(cli_out *out, const void *data, size_t len);
/* Sets the failure message and returns code (so: return cli_out_fail(out, EIO, "...")). */
int cli_out_fail(cli_out *out, int code, const char *fmt, ...) CF_PRINTF(3, 4);

/* A work function and the CF_FUNCTION that runs it in a pool. */
typedef struct cli_task {
    const cf_function *fn; /* its name names the task in timelines and traces */
    cli_work_fn work;
} cli_task;

/* Runs a work function under a pool's task context (used by CLI_TASK). */
int cli_task_adapter(cli_work_fn work, const void *in, size_t len, cf_ctx *ctx);

/*
 * Defines, at file scope, the static CF_FUNCTION `name` (its name shows in timelines and
 * traces) running `work`, and `static const cli_task name##_task` to pass to cli_run_items:
 *     static int sleep_work(const void *in, size_t len, cli_out *out) { ... }
 *     CLI_TASK(sleep_seconds, sleep_work);
 *     ... cli_run_items(&run, common, &sleep_seconds_task, inputs, n) ...
 */
#define CLI_TASK(name, work)                                                               \
    static int name##_bytes(const void *in_, size_t len_, cf_ctx *ctx_)                   \
    {                                                                                      \
        return cli_task_adapter((work), in_, len_, ctx_);                                  \
    }                                                                                      \
    static CF_FUNCTION(name, name##_bytes);                                                \
    static const cli_task name##_task = {&name, (work)}

/* The outcome of one item. */
typedef struct cli_item {
    int status;    /* 0: succeeded; else the CF_E* outcome: CF_ETASK when the work function
                      failed, CF_ELOST / CF_ETASKTIMEOUT ... when its worker process died */
    int code;      /* the work function's own code (CF_ETASK), the worker's wait status
                      (CF_ELOST ...), or 0 */
    char *message; /* what went wrong (malloc'd; never NULL when status != 0) */
    void *data;    /* the result (malloc'd copy; NULL when empty or failed) */
    size_t len;
    double seconds; /* how long the work ran (start to end), or 0 when it never started */
    long pid;       /* when it failed: the worker process that ran it (process pools), or 0 */
    int unstarted;  /* 1 when a signal interrupted the run before this item started */
} cli_item;

/* A finished run.  Zero it (or let cli_run_items do it) before use; free with
 * cli_run_free. */
typedef struct cli_run {
    cli_item *items;   /* n items, in input order */
    size_t n;
    size_t failed;     /* items with status != 0, the interrupted ones included */
    size_t interrupted; /* items the signal stopped (status CF_ECANCELLED, code the
                           signal), when it interrupted the run */
    int signal;        /* the SIGINT / SIGTERM that interrupted the run, or 0 */
    cf_event *events;  /* one per item that was accepted (started < 0: never started), in
                          completion order; times in seconds from the start of the run;
                          events[k].task is the item's index + 1 */
    size_t n_events;
    int workers;       /* workers the run had (1 in sequential mode) */
    double seconds;    /* wall time of the whole run, pool start-up and shutdown included */
} cli_run;

/*
 * Runs task over inputs[0 .. n) in common->mode with common->workers workers (0: the CPU
 * count, CF_WORKERS_AUTO) and fills *run.  Catches SIGINT and SIGTERM (unless ignored) for
 * the rest of the program: on the first, no further item starts, running items in worker
 * processes are killed, and those in this process stop if their work function looks at
 * cli_interrupted(); every item so stopped is counted in run->interrupted, with the
 * message "interrupted by SIGINT" (" before it started").  A second signal has its
 * default effect.  Shows a progress bar on stderr per
 * common->progress.  Returns 0 when the run took place (items may have failed: see
 * run->failed), or CLI_EXIT_FAILED after a message on stderr when it could not (the pool
 * could not start, out of memory); *run is then empty.
 */
int cli_run_items(cli_run *run, const cli_common *common, const cli_task *task,
                  const cf_bytes *inputs, size_t n);

/* Copies the result of item `it` into out (`size` bytes) when the item succeeded with a
 * result of exactly that size; returns 1 then, else 0 (out untouched). */
int cli_item_result(const cli_item *it, void *out, size_t size);

/* Frees what *run holds and zeroes it. */
void cli_run_free(cli_run *run);

/* After a run: when item `it` failed because its worker process died (killed, crashed,
 * timed out), removes what that process left of the temporary files cli_open_temporary
 * made for `name` in `dir` -- a dead worker cannot clean up after itself.  Call from the
 * parent, after cli_run_items. */
void cli_remove_leftovers(const char *dir, const char *name, const cli_item *it);

/* ------------------------------------------------------------------------------------ */
/* The summary                                                                          */
/* ------------------------------------------------------------------------------------ */

typedef enum cli_field_kind {
    CLI_FIELD_STRING, /* str */
    CLI_FIELD_INT,    /* i */
    CLI_FIELD_NUMBER, /* num */
    CLI_FIELD_RAW     /* str is a JSON value already (e.g. a 128-bit integer's digits) */
} cli_field_kind;

/* A subcommand's own entry in the JSON summary. */
typedef struct cli_field {
    const char *key;
    cli_field_kind kind;
    const char *str;
    long long i;
    double num;
} cli_field;

/*
 * Ends a subcommand: writes common->timeline (SVG) and common->trace if asked, then the
 * summary on stdout.  Text: `text` (the subcommand's own lines saying what it did, ending
 * in a newline; may be NULL), then for each failed item "  FAILED <label>: <message>" and
 * "<k> of <n> items failed", then "Finished in X second(s)".  JSON: one object with
 * "command", "mode", "workers", "items", "succeeded", "failed", "seconds", "errors" (a list
 * of {"item", "label", "error", "code", "message"}), "timeline"/"trace" when written, and
 * the subcommand's `fields` (n_fields of them).  labels[i] names item i (a URL, a file);
 * labels NULL: "item <i + 1>" (what users see is numbered from 1, as is JSON's "item").
 * With common->outcome set, the summary goes there instead (the files are still written).
 * Returns the exit status: 0 when every item succeeded and the files were written, else 1.
 */
int cli_finish(const cli_common *common, const cli_run *run, const char *const *labels,
               const char *text, const cli_field *fields, size_t n_fields);

/* Checks that the files common->timeline and common->trace asked for can be written (a
 * new one is created and removed again), so that a bad path is reported before the work,
 * not after it.  Returns 0, or CLI_EXIT_FAILED after a message on stderr.  Called by
 * cli_run_items. */
int cli_check_outputs(const cli_common *common);

/* Writes s as a JSON string (quotes and escapes included). */
void cli_json_string(FILE *out, const char *s);

#endif /* CFUTURES_CLI_H */
