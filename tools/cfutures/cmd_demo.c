/*
 * cmd_demo.c -- `cfutures demo`: the tour.  Every workload (sleep, sum, download, images)
 * on its default data in every mode (sequential, threads, processes), one table of wall
 * times and speedups, a lesson per workload, a timeline per run in the output folder, and
 * OUTPUT/report.html: the table, the lessons and the timelines on one self-contained page.
 *
 * How: each run is the subcommand itself, called through its cli_command with the
 * arguments a user would type, and with cli_common.outcome set so that cli_finish hands
 * the figures back instead of printing them.  So the demo measures exactly what
 * `cfutures sleep --mode threads ...` measures, and has no workload code of its own.
 *
 * The download workload needs a web server: nginx on 127.0.0.1 (http_server.c) serves the
 * photos of the images workload, started before the first run and stopped after the
 * last, and each transfer is held to a rate (--limit-rate) that stands in for a slow
 * network.  A workload that cannot run (no nginx, no photos) is reported as failed with
 * its reason and the others go on; the exit status is then 1.
 *
 * Sizes are chosen so that the whole tour takes about 35 s on 2 CPUs (the goal: under 60):
 * the sequential runs dominate (10 s of sleeping, 4 s of downloads, 5 to 6 s of images).
 */
#define _GNU_SOURCE
#include "cli.h"
#include "http_server.h"
#include "progress.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define DEMO_OUTPUT "cfutures-demo"
#define SLEEP_TASKS "10"
#define SLEEP_SECONDS "1"
#define SUM_N "2e9"
#define DOWNLOAD_RATE "8M" /* bytes per second per transfer: 8 MiB/s */
#define DOWNLOAD_RATE_TEXT "8 MiB/s"
#define N_MODES 3

typedef enum workload { W_SLEEP, W_SUM, W_DOWNLOAD, W_IMAGES, N_WORKLOADS } workload;

typedef struct demo_row {
    const char *name;
    const cli_command *cmd;   /* NULL when its module could not be loaded (skipped says) */
    const char *lesson;
    char what[160];                  /* what the run does, for the table's caption */
    cli_outcome outcome[N_MODES];    /* per mode, in cli_mode order */
    int status[N_MODES];             /* the subcommand's exit status */
    char timeline[N_MODES][PATH_MAX];
    char skipped[256];               /* why the workload could not run, or "" */
} demo_row;

static const cli_mode modes[N_MODES] = {CLI_SEQUENTIAL, CLI_THREADS, CLI_PROCESSES};

/* A growing argument vector of copied strings.  A subcommand gets argv, a copy of the
 * pointers (cli_parse reorders its argv); owned keeps them for freeing. */
typedef struct arg_list {
    int n, cap;
    char **owned;
    char **argv; /* n + 1 entries, the last NULL */
} arg_list;

static int arg_add(arg_list *a, const char *s)
{
    if (a->n + 1 >= a->cap) {
        int cap = a->cap ? 2 * a->cap : 32;
        char **owned = realloc(a->owned, (size_t)cap * sizeof *owned);
        if (owned == NULL)
            return -1;
        a->owned = owned;
        char **argv = realloc(a->argv, (size_t)cap * sizeof *argv);
        if (argv == NULL)
            return -1;
        a->argv = argv;
        a->cap = cap;
    }
    if ((a->owned[a->n] = strdup(s)) == NULL)
        return -1;
    a->argv[a->n] = a->owned[a->n];
    a->argv[++a->n] = NULL;
    return 0;
}

/* Adds each string up to a NULL, in order; 0, or -1 when out of memory. */
static int args(arg_list *a, ...)
{
    va_list ap;
    va_start(ap, a);
    int rc = 0;
    for (const char *s; rc == 0 && (s = va_arg(ap, const char *)) != NULL;)
        rc = arg_add(a, s);
    va_end(ap);
    return rc;
}

static void arg_free(arg_list *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->owned[i]);
    free(a->owned);
    free(a->argv);
    *a = (arg_list){0};
}

/* What a workload's runs do, for the caption and the JSON. */
static void describe(workload w, size_t n_photos, char *what, size_t cap)
{
    switch (w) {
    case W_SLEEP:
        snprintf(what, cap, "%s tasks sleeping %s s each, one worker per task", SLEEP_TASKS,
                 SLEEP_SECONDS);
        break;
    case W_SUM:
        snprintf(what, cap, "sum of 0..%s by a loop, one range per CPU (%d)", SUM_N,
                 cli_cpus());
        break;
    case W_DOWNLOAD:
        snprintf(what, cap, "%zu photos from nginx on 127.0.0.1, each at %s, one worker per "
                            "photo", n_photos, DOWNLOAD_RATE_TEXT);
        break;
    case W_IMAGES:
        snprintf(what, cap, "%zu photos: Gaussian blur (sigma 15), 1200x1200 thumbnail, "
                            "one worker per CPU", n_photos);
        break;
    case N_WORKLOADS:
        break;
    }
}

/* The workload's own arguments for a run in mode. */
static int workload_args(arg_list *a, workload w, cli_mode mode, const char *out,
                         const http_server *server, const glob_t *photos)
{
    char buf[PATH_MAX + 64];
    int rc = 0;
    switch (w) {
    case W_SLEEP:
        rc = args(a, "--tasks", SLEEP_TASKS, "--seconds", SLEEP_SECONDS, "--workers",
                  SLEEP_TASKS, NULL);
        break;
    case W_SUM:
        rc = args(a, "-n", SUM_N, NULL);
        break;
    case W_DOWNLOAD:
        snprintf(buf, sizeof buf, "%zu", photos->gl_pathc);
        rc = args(a, "--limit-rate", DOWNLOAD_RATE, "--workers", buf, NULL);
        snprintf(buf, sizeof buf, "%s/downloads/%s", out, cli_mode_name(mode));
        rc = rc ? rc : args(a, "--output", buf, NULL);
        for (size_t i = 0; i < photos->gl_pathc && rc == 0; i++) {
            const char *slash = strrchr(photos->gl_pathv[i], '/');
            snprintf(buf, sizeof buf, "http://127.0.0.1:%d/%s", server->port,
                     slash ? slash + 1 : photos->gl_pathv[i]);
            rc = arg_add(a, buf);
        }
        break;
    case W_IMAGES:
        snprintf(buf, sizeof buf, "%s/thumbnails/%s", out, cli_mode_name(mode));
        rc = args(a, "--output", buf, NULL);
        break;
    case N_WORKLOADS:
        break;
    }
    return rc;
}

/* Runs one workload in one mode through its subcommand; fills row's entries for mode. */
static void run_one(demo_row *row, workload w, int m, const char *out,
                    const http_server *server, const glob_t *photos, int progress)
{
    arg_list a = {0};
    cli_mode mode = modes[m];
    snprintf(row->timeline[m], sizeof row->timeline[m], "%s/timelines/%s-%s.svg", out,
             row->name, cli_mode_name(mode));
    int rc = args(&a, row->name, "--mode", cli_mode_name(mode), "--timeline", row->timeline[m],
                  NULL);
    if (rc == 0 && progress >= 0)
        rc = arg_add(&a, progress ? "--progress" : "--no-progress");
    if (rc == 0)
        rc = workload_args(&a, w, mode, out, server, photos);
    if (rc != 0) {
        snprintf(row->skipped, sizeof row->skipped, "out of memory");
        row->status[m] = CLI_EXIT_FAILED;
    } else {
        /* Every mode on the time axis of the sequential run, the reference. */
        cli_common common = {.outcome = &row->outcome[m],
                             .timeline_span = m > 0 && row->outcome[0].done
                                                  ? row->outcome[0].seconds
                                                  : 0};
        row->status[m] = row->cmd->run(a.n, a.argv, &common);
    }
    arg_free(&a);
}

static const char *lessons[N_WORKLOADS] = {
    "waiting uses no CPU: the sleeps overlap, so threads and processes finish in about "
    "one task's time",
    "pure computation: the speedup stops at the number of CPUs; C threads run in parallel "
    "(no GIL), so they do as well as processes",
    "waiting on the network: the transfers overlap, and the largest file sets the time; "
    "threads are enough, processes only add start-up",
    "CPU-bound work: parallel up to the number of CPUs; processes add isolation (a crash "
    "takes one photo, not the program) at some start-up cost",
};

static int row_ok(const demo_row *r)
{
    for (int m = 0; m < N_MODES; m++)
        if (!r->outcome[m].done || r->outcome[m].failed > 0 || r->status[m] != 0)
            return 0;
    return 1;
}

/* Why a run failed, for the summary. */
static const char *run_problem(const demo_row *r, int m)
{
    if (r->skipped[0])
        return r->skipped;
    if (!r->outcome[m].done)
        return "the run could not be done (see the message above)";
    if (r->outcome[m].failed > 0)
        return r->outcome[m].first_error;
    return r->status[m] != 0 ? "its timeline could not be written" : NULL;
}

static void print_table(const demo_row *rows, const char *out, double total)
{
    printf("\n%-10s %12s %18s %18s\n", "workload", "sequential", "threads", "processes");
    for (int w = 0; w < N_WORKLOADS; w++) {
        const demo_row *r = &rows[w];
        printf("%-10s", r->name);
        double base = r->outcome[0].done ? r->outcome[0].seconds : 0;
        for (int m = 0; m < N_MODES; m++) {
            const cli_outcome *o = &r->outcome[m];
            char cell[32];
            if (!o->done || r->skipped[0])
                snprintf(cell, sizeof cell, "failed");
            else if (m == 0)
                snprintf(cell, sizeof cell, "%.2f s", o->seconds);
            else if (base > 0 && o->seconds > 0)
                snprintf(cell, sizeof cell, "%.2f s %5.1fx", o->seconds, base / o->seconds);
            else
                snprintf(cell, sizeof cell, "%.2f s", o->seconds);
            if (o->done && o->failed > 0 && !r->skipped[0])
                snprintf(cell + strlen(cell), sizeof cell - strlen(cell), "!");
            printf(m == 0 ? " %12s" : " %18s", cell);
        }
        printf("\n");
    }
    printf("(speedup: sequential time / mode's time; ! = some items failed)\n\nLessons:\n");
    for (int w = 0; w < N_WORKLOADS; w++)
        printf("  %-9s %s.\n", rows[w].name, rows[w].lesson);
    printf("\nTimelines (a row per worker, a bar per task): %s/timelines/<workload>-<mode>.svg\n"
           "Downloads: %s/downloads/<mode>/   Thumbnails: %s/thumbnails/<mode>/\n",
           out, out, out);
    int bad = 0;
    for (int w = 0; w < N_WORKLOADS; w++)
        for (int m = 0; m < N_MODES; m++) {
            const char *why = run_problem(&rows[w], m);
            if (why != NULL) {
                if (!bad++)
                    printf("\nProblems:\n");
                printf("  %s, %s: %s\n", rows[w].name, cli_mode_name(modes[m]), why);
            }
        }
    printf("\nFinished in %.2f second(s)\n", total);
}

/* s as HTML text: the characters HTML gives a meaning escaped. */
static void html_text(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* Copies the SVG file at path into f, without its XML declaration (not allowed inside
 * HTML); 0, or -1 when it cannot be read. */
static int inline_svg(FILE *f, const char *path)
{
    FILE *in = fopen(path, "r");
    if (in == NULL)
        return -1;
    char buf[8192];
    size_t n, total = 0;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) {
        const char *at = buf;
        if (total == 0 && strncmp(buf, "<?xml", 5) == 0) {
            const char *end = memchr(buf, '>', n);
            if (end != NULL)
                at = end + 1;
        }
        fwrite(at, 1, n - (size_t)(at - buf), f);
        total += n;
    }
    int bad = ferror(in);
    fclose(in);
    return bad ? -1 : 0;
}

/* Writes OUTPUT/report.html: one self-contained page (no script, no external file) with
 * the table, the lessons and every run's timeline drawn inline.  Returns 0, or -1 with
 * errno (a timeline that cannot be read is named on the page instead). */
static int write_report(const demo_row *rows, const char *path, double total)
{
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
               "<title>cfutures demo</title>\n<style>\n"
               "body{font-family:sans-serif;margin:2em;max-width:80em;color:#222}\n"
               "table{border-collapse:collapse}td,th{border:1px solid #999;padding:.3em .8em;"
               "text-align:right}th:first-child,td:first-child{text-align:left}\n"
               "figure{margin:1em 0}figcaption{font-weight:bold}\n"
               "</style></head><body>\n<h1>cfutures demo</h1>\n"
               "<p id=\"machine\">%d workloads &times; %d modes on <b>%d CPU(s)</b>, "
               "%.1f s in all.</p>\n<table id=\"results\">\n<tr><th>workload</th>"
               "<th>sequential</th><th>threads</th><th>processes</th></tr>\n",
            N_WORKLOADS, N_MODES, cli_cpus(), total);
    for (int w = 0; w < N_WORKLOADS; w++) {
        const demo_row *r = &rows[w];
        fprintf(f, "<tr><td>%s</td>", r->name);
        double base = r->outcome[0].done ? r->outcome[0].seconds : 0;
        for (int m = 0; m < N_MODES; m++) {
            const cli_outcome *o = &r->outcome[m];
            if (!o->done || r->skipped[0])
                fputs("<td>failed</td>", f);
            else if (m > 0 && base > 0 && o->seconds > 0)
                fprintf(f, "<td>%.2f s (%.1f&times;)%s</td>", o->seconds, base / o->seconds,
                        o->failed ? " !" : "");
            else
                fprintf(f, "<td>%.2f s%s</td>", o->seconds, o->failed ? " !" : "");
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n<p>Speedup: sequential time / the mode's time; ! = some items "
          "failed.</p>\n<h2>Lessons</h2>\n<ul id=\"lessons\">\n", f);
    for (int w = 0; w < N_WORKLOADS; w++) {
        fprintf(f, "<li><b>%s</b>: ", rows[w].name);
        html_text(f, rows[w].lesson);
        fputs(".</li>\n", f);
    }
    fputs("</ul>\n<h2>Timelines</h2>\n<p>A row per worker, a bar per task from its start "
          "to its end; hover a bar for its task and times.</p>\n", f);
    for (int w = 0; w < N_WORKLOADS; w++) {
        const demo_row *r = &rows[w];
        fprintf(f, "<section class=\"workload\" id=\"workload-%s\">\n<h3>%s: ", r->name,
                r->name);
        html_text(f, r->skipped[0] ? r->skipped : r->what);
        fputs("</h3>\n", f);
        for (int m = 0; m < N_MODES; m++) {
            if (!r->outcome[m].done)
                continue;
            fprintf(f, "<figure class=\"run\" data-mode=\"%s\"><figcaption>%s, %.2f s, %d "
                       "worker(s)</figcaption>\n",
                    cli_mode_name(modes[m]), cli_mode_name(modes[m]), r->outcome[m].seconds,
                    r->outcome[m].workers);
            if (inline_svg(f, r->timeline[m]) != 0) {
                fputs("<p>(timeline missing: ", f);
                html_text(f, r->timeline[m]);
                fputs(")</p>", f);
            }
            fputs("</figure>\n", f);
        }
        fputs("</section>\n", f);
    }
    fputs("</body></html>\n", f);
    int bad = ferror(f);
    return fclose(f) != 0 || bad ? -1 : 0;
}

static void print_json(const demo_row *rows, const char *out, double total,
                       const char *report)
{
    printf("{\n  \"command\": \"demo\",\n  \"cpus\": %d,\n  \"output\": ", cli_cpus());
    cli_json_string(stdout, out);
    if (report != NULL) {
        printf(",\n  \"report\": ");
        cli_json_string(stdout, report);
    }
    printf(",\n  \"seconds\": %.6f,\n  \"runs\": [", total);
    const char *sep = "";
    for (int w = 0; w < N_WORKLOADS; w++) {
        const demo_row *r = &rows[w];
        for (int m = 0; m < N_MODES; m++) {
            const cli_outcome *o = &r->outcome[m];
            printf("%s\n    {\"workload\": ", sep);
            cli_json_string(stdout, r->name);
            printf(", \"mode\": \"%s\", \"what\": ", cli_mode_name(modes[m]));
            cli_json_string(stdout, r->what);
            printf(", \"done\": %s, \"workers\": %d, \"items\": %zu, \"failed\": %zu, "
                   "\"seconds\": %.6f",
                   o->done ? "true" : "false", o->workers, o->items, o->failed, o->seconds);
            if (o->done && r->outcome[0].done && o->seconds > 0)
                printf(", \"speedup\": %.4f", r->outcome[0].seconds / o->seconds);
            const char *why = run_problem(r, m);
            if (why != NULL) {
                printf(", \"problem\": ");
                cli_json_string(stdout, why);
            }
            if (o->done) {
                printf(", \"timeline\": ");
                cli_json_string(stdout, r->timeline[m]);
            }
            printf("}");
            sep = ",";
        }
    }
    printf("\n  ],\n  \"lessons\": {");
    for (int w = 0; w < N_WORKLOADS; w++) {
        printf("%s\n    ", w ? "," : "");
        cli_json_string(stdout, rows[w].name);
        printf(": ");
        cli_json_string(stdout, rows[w].lesson);
    }
    printf("\n  }\n}\n");
}

static int run_demo(int argc, char **argv, cli_common *common);

const cli_command cli_demo = {
    "demo",
    "the tour: every workload in every mode, one table (about 35 s on 2 CPUs)",
    NULL,
    "Runs sleep, sum, download and images on their default data, each sequentially,\n"
    "with threads and with processes, and prints one table: the wall time of every run\n"
    "and its speedup over sequential, then a one-line lesson per workload.  The download\n"
    "workload fetches the photos of the images workload from an nginx server that the demo\n"
    "starts on 127.0.0.1 (and stops afterwards), each transfer held to " DOWNLOAD_RATE_TEXT
    " to\n"
    "stand in for a slow network.  Everything the runs write goes under OUTPUT: the timeline\n"
    "of every run (timelines/<workload>-<mode>.svg), the downloads (downloads/<mode>/)\n"
    "and the thumbnails (thumbnails/<mode>/).  A workload that cannot run is reported and\n"
    "the others go on.",
    run_demo,
    CLI_COMMON_MODE | CLI_COMMON_WORKERS | CLI_COMMON_TIMELINE | CLI_COMMON_TRACE,
    "Exit status: 0 when every run of every workload succeeded, 1 when a workload could\n"
    "not run or an item failed, 2 for bad usage.",
};

static int run_demo(int argc, char **argv, cli_common *common)
{
    const char *output = DEMO_OUTPUT;
    const cli_option opts[] = {
        {"output", 'o', CLI_OPT_STRING, &output, "DIR",
         "folder for timelines, downloads and thumbnails (default: " DEMO_OUTPUT ")"},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    int rc = cli_parse(&cli_demo, argc, argv, common, opts, NULL);
    if (rc != CLI_PARSED)
        return rc;
    if (*output == '\0')
        return cli_usage_error(&cli_demo, "--output needs a folder name");

    /* The subcommands make the folders of their own output; the timelines' is the demo's. */
    char *out = cli_output_folder(output), *timelines = NULL;
    if (out == NULL)
        return cli_fail("demo", "output folder %s: %s", output, strerror(errno));
    char sub[PATH_MAX + 32];
    snprintf(sub, sizeof sub, "%s/timelines", out);
    if ((timelines = cli_output_folder(sub)) == NULL) {
        int status = cli_fail("demo", "cannot make %s: %s", sub, strerror(errno));
        free(out);
        return status;
    }
    free(timelines);

    demo_row rows[N_WORKLOADS] = {0};
    const char *names[N_WORKLOADS] = {"sleep", "sum", "download", "images"};
    for (int w = 0; w < N_WORKLOADS; w++) {
        rows[w].name = names[w], rows[w].lesson = lessons[w];
        rows[w].cmd = cli_find_command(names[w], rows[w].skipped, sizeof rows[w].skipped);
    }

    glob_t photos = {0};
    if (cli_default_photos(&photos) != 0 || photos.gl_pathc == 0) {
        const char *why = photos.gl_pathc == 0 ? "the default photos are not installed "
                                                 "(Debian package mate-backgrounds)"
                                               : "out of memory";
        for (int w = W_DOWNLOAD; w <= W_IMAGES; w++)
            if (!rows[w].skipped[0])
                snprintf(rows[w].skipped, sizeof rows[w].skipped, "%s", why);
    }
    for (int w = 0; w < N_WORKLOADS; w++)
        describe((workload)w, photos.gl_pathc, rows[w].what, sizeof rows[w].what);
    /* Started once for the three download runs, stopped after the last run. */
    http_server server = {0};
    if (!rows[W_DOWNLOAD].skipped[0]) {
        char err[512];
        const http_content served = {NULL, (const char *const *)photos.gl_pathv,
                                     photos.gl_pathc, NULL};
        if (http_server_start(&server, &served, err, sizeof err) != 0)
            snprintf(rows[W_DOWNLOAD].skipped, sizeof rows[W_DOWNLOAD].skipped,
                     "the web server did not start: %.200s", err);
    }

    double start = cli_now();
    if (!common->json)
        printf("cfutures demo: %d workloads x %d modes on %d CPU(s); files under %s/\n",
               N_WORKLOADS, N_MODES, cli_cpus(), out);
    for (int w = 0; w < N_WORKLOADS; w++) {
        demo_row *r = &rows[w];
        for (int m = 0; m < N_MODES && !r->skipped[0]; m++) {
            run_one(r, (workload)w, m, out, &server, &photos, common->progress);
            if (!common->json) {
                if (m == 0)
                    printf("\n%s: %s\n", r->name, r->what);
                const cli_outcome *o = &r->outcome[m];
                if (o->done)
                    printf("  %-10s %7.2f s  %2d worker(s)  %zu of %zu items done\n",
                           cli_mode_name(modes[m]), o->seconds, o->workers, o->items - o->failed,
                           o->items);
                else
                    printf("  %-10s failed (see the message above)\n", cli_mode_name(modes[m]));
            }
            fflush(stdout);
        }
        if (r->skipped[0] && !common->json)
            printf("\n%s: not run: %s\n", r->name, r->skipped);
    }
    http_server_stop(&server);
    double total = cli_now() - start;

    char report[PATH_MAX + 16];
    snprintf(report, sizeof report, "%s/report.html", out);
    int report_bad = write_report(rows, report, total);
    if (report_bad)
        cli_fail("demo", "cannot write %s: %s", report, strerror(errno));
    if (common->json)
        print_json(rows, out, total, report_bad ? NULL : report);
    else
        print_table(rows, out, total);
    if (!common->json && !report_bad)
        printf("Report: %s\n", report); /* last: the page to open */
    fflush(stdout);
    int status = report_bad ? CLI_EXIT_FAILED : CLI_EXIT_OK;
    for (int w = 0; w < N_WORKLOADS; w++)
        if (!row_ok(&rows[w]) || rows[w].skipped[0])
            status = CLI_EXIT_FAILED;
    globfree(&photos);
    free(out);
    return status;
}
