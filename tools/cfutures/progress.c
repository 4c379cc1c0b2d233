/*
 * progress.c -- a one-line progress bar on stderr: done/total, rate, time left.
 *
 * Drawn by the thread that collects results (the runner), never from tasks, so it needs no
 * lock.  On a terminal it redraws in place with a carriage return, so it must be the only
 * thing writing to stderr while the run lasts; that holds because items report through
 * their outcomes, which are printed after the run.  Forced onto a file or pipe, it writes
 * one plain line per redraw instead (no control characters in a log).  On a terminal it appears only once a run has lasted
 * 0.5 s: a quick run prints nothing extra; when stderr is not a terminal it never appears
 * unless --progress forces it (then from the first update, so a test can see it).
 */
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define SHOW_AFTER 0.5  /* seconds before a terminal bar appears */
#define REDRAW_EVERY 0.1

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void cli_progress_start(cli_progress *p, int setting, size_t total)
{
    struct winsize ws;
    if (setting < 0 && !isatty(STDERR_FILENO))
        setting = 0;
    p->setting = setting;
    p->total = total;
    p->start = cli_now();
    p->last_draw = -1;
    p->width = 80;
    p->tty = isatty(STDERR_FILENO);
    if (p->tty && ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40)
        p->width = ws.ws_col;
}

/* "1:05" or "1:02:03" */
static void format_duration(char *buf, size_t cap, double s)
{
    if (!(s >= 0) || s > 360000) {
        snprintf(buf, cap, "--:--");
        return;
    }
    unsigned t = (unsigned)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, cap, "%u:%02u:%02u", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, cap, "%u:%02u", t / 60, t % 60);
}

static void draw(cli_progress *p, size_t done, double now)
{
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)done / elapsed : 0;
    char left[32], used[32], tail[128];
    format_duration(used, sizeof used, elapsed);
    format_duration(left, sizeof left, done > 0 ? (double)(p->total - done) / rate : -1);
    int tail_len = snprintf(tail, sizeof tail, " %zu/%zu  %.1f/s  %s elapsed, %s left", done,
                            p->total, rate, used, left);
    /* The bar takes what the line has left (one column spare: writing the last column
     * makes some terminals wrap). */
    int bar = p->width - 1 - 2 - tail_len;
    if (bar > 40)
        bar = 40;
    char line[512];
    int k = 0;
    if (bar >= 5) {
        int filled = p->total ? (int)((double)bar * (double)done / (double)p->total) : bar;
        line[k++] = '[';
        for (int i = 0; i < bar; i++)
            line[k++] = i < filled ? '#' : '.';
        line[k++] = ']';
    }
    line[k] = '\0';
    if (p->tty)
        fprintf(stderr, "\r%s%s\033[K", line, tail);
    else
        fprintf(stderr, "%s%s\n", line, tail);
    fflush(stderr);
    p->last_draw = now;
}

void cli_progress_update(cli_progress *p, size_t done)
{
    if (p->setting == 0)
        return;
    double now = cli_now();
    if (p->setting < 0 && now - p->start < SHOW_AFTER)
        return;
    if (p->last_draw >= 0 && now - p->last_draw < REDRAW_EVERY)
        return;
    draw(p, done, now);
}

void cli_progress_end(cli_progress *p, size_t done)
{
    if (p->setting == 0)
        return;
    if (p->setting > 0 || p->last_draw >= 0) {
        draw(p, done, cli_now());
        if (p->tty)
            fputc('\n', stderr);
    }
}
