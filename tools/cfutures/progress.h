/*
 * progress.h -- the progress bar the runner draws on stderr (internal to the command).
 */
#ifndef CFUTURES_PROGRESS_H
#define CFUTURES_PROGRESS_H

#include <stddef.h>

typedef struct cli_progress {
    int setting;       /* cli_common.progress: 1 always, 0 never, -1 on a terminal */
    size_t total;
    double start;      /* monotonic seconds */
    double last_draw;  /* when it was last drawn; negative before the first time */
    int tty;           /* stderr is a terminal: redraw in place */
    int width;         /* terminal columns */
} cli_progress;

/* Starts a bar over `total` items (nothing is drawn yet). */
void cli_progress_start(cli_progress *p, int setting, size_t total);
/* Says `done` items are finished; draws when due (at most 10 times a second; on a terminal
 * only once the run has lasted half a second, so short runs leave no trace). */
void cli_progress_update(cli_progress *p, size_t done);
/* Draws the final state and ends the line, if the bar was ever shown. */
void cli_progress_end(cli_progress *p, size_t done);

/* Monotonic clock in seconds. */
double cli_now(void);

#endif /* CFUTURES_PROGRESS_H */
