/*
 * timeline.c -- a run drawn as an SVG timeline: the picture that shows why a concurrent
 * run is shorter (bars side by side on several rows instead of end to end on one).
 *
 * Layout, top to bottom: title and subtitle; one row per worker (all the pool's workers,
 * so idle ones show as empty rows), each task a bar from its start to its end on its
 * worker's row; the time axis (seconds from the start of the run, "nice" 1-2-5 steps) with
 * grid lines; a dashed line where the run ended (its wall time: pool start-up and shutdown
 * included, so a gap after the last bar is the pool's own cost); the legend.  A bar's
 * tooltip (<title>) gives the item, its times, worker, pid and outcome; the bar carries
 * data-* attributes with the same facts so a test can check the drawing against the run.
 *
 * The x scale covers max(wall time, last event end), so no bar leaves the plot.  Tasks that
 * never started have no bar; the subtitle counts them.  Everything written is escaped, so
 * any label (URL, file name) leaves the file well-formed XML.
 */
#include "timeline.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define WIDTH 960
#define LEFT 110 /* row labels */
#define RIGHT 30
#define TOP 70 /* title and subtitle */
#define ROW_H 30
#define BAR_H 20
#define CHAR_W 6.6 /* average width of a character at font-size 11 */

#define COLOR_OK "#4a86c8"
#define COLOR_FAILED "#d9463b"

static void xml_text(FILE *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        default:
            /* Control characters are not allowed in XML 1.0. */
            fputc((unsigned char)*s < 0x20 ? ' ' : *s, out);
        }
    }
}

/* Writes at most `max_chars` characters of the label's last path component, with an
 * ellipsis when cut; nothing when fewer than 2 would fit. */
static void fitted_label(FILE *out, const char *label, double max_chars)
{
    const char *slash = strrchr(label, '/');
    if (slash != NULL && slash[1] != '\0')
        label = slash + 1;
    size_t len = strlen(label);
    if (max_chars < 2)
        return;
    if ((double)len <= max_chars) {
        xml_text(out, label);
        return;
    }
    char buf[256];
    size_t keep = (size_t)max_chars - 1;
    if (keep >= sizeof buf)
        keep = sizeof buf - 1;
    /* Do not cut inside a UTF-8 sequence. */
    while (keep > 0 && ((unsigned char)label[keep] & 0xC0) == 0x80)
        keep--;
    memcpy(buf, label, keep);
    buf[keep] = '\0';
    xml_text(out, buf);
    fputs("\xE2\x80\xA6", out); /* … */
}

/* A 1-2-5 step giving at most 10 intervals over span. */
static double tick_step(double span)
{
    double raw = span / 10;
    double mag = pow(10, floor(log10(raw)));
    for (int k = 0; k < 3; k++) {
        static const double mult[3] = {1, 2, 5};
        if (mult[k] * mag >= raw)
            return mult[k] * mag;
    }
    return 10 * mag;
}

static const char *row_name(cli_mode mode)
{
    switch (mode) {
    case CLI_SEQUENTIAL:
        return "main thread";
    case CLI_THREADS:
        return "thread";
    case CLI_PROCESSES:
        return "process";
    }
    return "worker";
}

typedef struct scale {
    double x0, w, t_max;
} scale;

static double xpos(const scale *s, double t)
{
    return s->x0 + t / s->t_max * s->w;
}

static void draw_bar(FILE *out, const scale *sc, const cli_common *c, const cli_run *run,
                     const char *const *labels, const cf_event *e, int y)
{
    size_t i = (size_t)(e->task - 1);
    const cli_item *it = &run->items[i];
    int failed = e->outcome != 0;
    double x1 = xpos(sc, e->started), x2 = xpos(sc, e->finished);
    /* Very short tasks still get a visible sliver. */
    double w = x2 - x1 < 2 ? 2 : x2 - x1;
    char fallback[32];
    snprintf(fallback, sizeof fallback, "#%zu", i + 1);
    const char *label = labels != NULL ? labels[i] : fallback;

    fprintf(out,
            "<g class=\"task\"><title>item %zu (", i + 1);
    xml_text(out, label);
    fprintf(out, "): %.3f s to %.3f s (%.3f s) on %s %d", e->started, e->finished,
            e->finished - e->started, row_name(c->mode), e->worker);
    if (e->pid != 0)
        fprintf(out, ", pid %ld", e->pid);
    if (failed) {
        fputs(": FAILED: ", out);
        xml_text(out, it->message != NULL ? it->message : cf_strerror(e->outcome));
    } else {
        fputs(": ok", out);
    }
    fputs("</title>\n", out);
    fprintf(out,
            "  <rect class=\"bar %s\" data-item=\"%zu\" data-worker=\"%d\" "
            "data-start=\"%.6f\" data-end=\"%.6f\" x=\"%.2f\" y=\"%d\" width=\"%.2f\" "
            "height=\"%d\" rx=\"2\" fill=\"%s\" stroke=\"#ffffff\" stroke-width=\"1\"/>\n",
            failed ? "failed" : "ok", i + 1, e->worker, e->started, e->finished, x1, y, w, BAR_H,
            failed ? COLOR_FAILED : COLOR_OK);
    if (failed)
        fprintf(out,
                "  <path class=\"cross\" d=\"M%.2f %d L%.2f %d M%.2f %d L%.2f %d\" "
                "stroke=\"#5a0f0a\" stroke-width=\"1.5\"/>\n",
                x1 + 1, y + 2, x1 + w - 1, y + BAR_H - 2, x1 + 1, y + BAR_H - 2, x1 + w - 1,
                y + 2);
    double room = (w - 6) / CHAR_W;
    if (room >= 2) {
        fprintf(out, "  <text x=\"%.2f\" y=\"%d\" font-size=\"11\" fill=\"#ffffff\">",
                x1 + 3, y + BAR_H / 2 + 4);
        fitted_label(out, label, room);
        fputs("</text>\n", out);
    }
    fputs("</g>\n", out);
}

static void draw(FILE *out, const cli_common *c, const cli_run *run, const char *const *labels)
{
    int rows = run->workers > 0 ? run->workers : 1;
    /* A caller comparing runs (the demo) gives them one time axis: timeline_span. */
    double t_max = run->seconds > c->timeline_span ? run->seconds : c->timeline_span;
    size_t never = run->n, drawn_failed = 0;
    for (size_t k = 0; k < run->n_events; k++) {
        const cf_event *e = &run->events[k];
        if (e->started < 0 || e->worker < 0)
            continue;
        never--;
        if (e->worker >= rows)
            rows = e->worker + 1;
        if (e->finished > t_max)
            t_max = e->finished;
    }
    if (!(t_max > 0))
        t_max = 1e-3;
    scale sc = {LEFT, WIDTH - LEFT - RIGHT, t_max};
    int axis_y = TOP + rows * ROW_H;
    int height = axis_y + 90;

    fprintf(out,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n",
            WIDTH, height, WIDTH, height);
    fprintf(out, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", WIDTH, height);

    /* Title and subtitle. */
    fprintf(out, "<text class=\"title\" x=\"%d\" y=\"28\" font-size=\"17\" font-weight=\"bold\" "
                 "fill=\"#222222\">cfutures ", LEFT);
    xml_text(out, c->command);
    fprintf(out, " \xE2\x80\x94 %s, %d worker%s \xE2\x80\x94 %.2f s</text>\n",
            cli_mode_name(c->mode), run->workers, run->workers == 1 ? "" : "s", run->seconds);
    fprintf(out, "<text class=\"subtitle\" x=\"%d\" y=\"50\" font-size=\"12\" fill=\"#555555\">"
                 "%zu task%s: %zu succeeded, %zu failed",
            LEFT, run->n, run->n == 1 ? "" : "s", run->n - run->failed, run->failed);
    if (never > 0)
        fprintf(out, ", %zu never started", never);
    fputs("</text>\n", out);

    /* Rows: stripes and names. */
    for (int r = 0; r < rows; r++) {
        int y = TOP + r * ROW_H;
        fprintf(out,
                "<rect class=\"row\" data-worker=\"%d\" x=\"%d\" y=\"%d\" width=\"%.0f\" "
                "height=\"%d\" fill=\"%s\"/>\n",
                r, LEFT, y, sc.w, ROW_H, r % 2 ? "#ffffff" : "#f2f4f7");
        fprintf(out,
                "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"end\" "
                "fill=\"#333333\">",
                LEFT - 8, y + ROW_H / 2 + 4);
        if (c->mode == CLI_SEQUENTIAL)
            fputs(row_name(c->mode), out);
        else
            fprintf(out, "%s %d", row_name(c->mode), r);
        fputs("</text>\n", out);
    }

    /* Time axis and grid. */
    double step = tick_step(t_max);
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"#333333\"/>\n", LEFT,
            axis_y, sc.x0 + sc.w, axis_y);
    for (int k = 0; k * step <= t_max * (1 + 1e-9); k++) {
        double x = xpos(&sc, k * step);
        fprintf(out,
                "<line class=\"grid\" x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" "
                "stroke=\"#d0d4da\" stroke-width=\"1\"/>\n",
                x, TOP, x, axis_y);
        fprintf(out, "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"#333333\"/>\n",
                x, axis_y, x, axis_y + 5);
        fprintf(out,
                "<text class=\"tick\" x=\"%.2f\" y=\"%d\" font-size=\"11\" "
                "text-anchor=\"middle\" fill=\"#333333\">%.*f</text>\n",
                x, axis_y + 18, decimals, k * step);
    }
    fprintf(out,
            "<text x=\"%.2f\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\" "
            "fill=\"#333333\">seconds since the start of the run</text>\n",
            sc.x0 + sc.w / 2, axis_y + 38);

    /* Bars. */
    for (size_t k = 0; k < run->n_events; k++) {
        const cf_event *e = &run->events[k];
        if (e->started < 0 || e->worker < 0 || e->task < 1 || e->task > run->n)
            continue;
        drawn_failed += e->outcome != 0;
        draw_bar(out, &sc, c, run, labels, e, TOP + e->worker * ROW_H + (ROW_H - BAR_H) / 2);
    }

    /* The end of the run. */
    double xe = xpos(&sc, run->seconds);
    fprintf(out,
            "<line class=\"end\" x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"#222222\" "
            "stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/>\n",
            xe, TOP - 8, xe, axis_y);
    fprintf(out,
            "<text x=\"%.2f\" y=\"%d\" font-size=\"11\" text-anchor=\"end\" "
            "fill=\"#222222\">end %.2f s</text>\n",
            xe - 3, TOP - 10, run->seconds);

    /* Legend. */
    int ly = axis_y + 58;
    fprintf(out,
            "<g class=\"legend\">\n"
            "<rect x=\"%d\" y=\"%d\" width=\"28\" height=\"14\" rx=\"2\" fill=\"%s\"/>\n"
            "<text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"#333333\">task, from start to "
            "end</text>\n",
            LEFT, ly, COLOR_OK, LEFT + 36, ly + 11);
    int fx = LEFT + 210;
    fprintf(out,
            "<rect x=\"%d\" y=\"%d\" width=\"28\" height=\"14\" rx=\"2\" fill=\"%s\"/>\n"
            "<path d=\"M%d %d L%d %d M%d %d L%d %d\" stroke=\"#5a0f0a\" stroke-width=\"1.5\"/>\n"
            "<text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"#333333\">failed task%s</text>\n",
            fx, ly, COLOR_FAILED, fx + 1, ly + 2, fx + 27, ly + 12, fx + 1, ly + 12, fx + 27,
            ly + 2, fx + 36, ly + 11, drawn_failed ? "" : " (none in this run)");
    int ex = fx + 230;
    fprintf(out,
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#222222\" "
            "stroke-width=\"1.5\" stroke-dasharray=\"4 3\"/>\n"
            "<text x=\"%d\" y=\"%d\" font-size=\"12\" fill=\"#333333\">end of the run "
            "(wall time%s)</text>\n</g>\n",
            ex + 8, ly - 2, ex + 8, ly + 16, ex + 18, ly + 11,
            c->mode == CLI_SEQUENTIAL ? "" : ", pool start and stop included");
    fputs("</svg>\n", out);
}

int cli_timeline_write(const char *path, const cli_common *common, const cli_run *run,
                       const char *const *labels)
{
    FILE *out = fopen(path, "w");
    if (out == NULL)
        return -1;
    draw(out, common, run, labels);
    int err = ferror(out) ? (errno ? errno : EIO) : 0;
    if (fclose(out) != 0 && err == 0)
        err = errno;
    if (err != 0) {
        errno = err;
        return -1;
    }
    return 0;
}
