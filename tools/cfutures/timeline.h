/*
 * timeline.h -- the SVG picture of a run (internal to the command).
 */
#ifndef CFUTURES_TIMELINE_H
#define CFUTURES_TIMELINE_H

#include "cli.h"

/*
 * Writes run's events to `path` as an SVG timeline: one row per worker, one bar per task
 * from its start to its end (failed ones red with a cross), a time axis in seconds from the
 * start of the run, a title (subcommand, mode, workers, wall time) and a legend.  labels
 * as for cli_finish.  Returns 0, or -1 with errno set when the file cannot be written.
 */
int cli_timeline_write(const char *path, const cli_common *common, const cli_run *run,
                       const char *const *labels);

#endif /* CFUTURES_TIMELINE_H */
