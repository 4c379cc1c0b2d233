/*
 * http_server.h -- a loopback HTTP server for the demo: Debian's nginx with a throwaway
 * configuration of its own (see http_server.c).
 */
#ifndef CFUTURES_HTTP_SERVER_H
#define CFUTURES_HTTP_SERVER_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct http_server {
    pid_t pid;             /* nginx's master process, a child of this one; 0: not running */
    int port;              /* on 127.0.0.1 */
    char state[PATH_MAX];  /* the folder of its configuration, logs and served files */
} http_server;

/* What to serve: a folder as it is (root), or the files at paths (each under its base
 * name, through symbolic links in the server's own folder) when root is NULL; each
 * transfer held to rate bytes per second when rate is not NULL (nginx's limit_rate:
 * digits, then optionally k or m, as "8m"). */
typedef struct http_content {
    const char *root;
    const char *const *paths;
    size_t n_paths;
    const char *rate;
} http_content;

/*
 * Starts nginx serving `what` on 127.0.0.1 at a free port, and returns once it accepts
 * connections: 0, or -1 with why in err[0 .. cap) and nothing left behind.  It forks, and
 * the child runs only async-signal-safe calls before exec, so other threads may be
 * running.
 */
int http_server_start(http_server *s, const http_content *what, char *err, size_t cap);

/* Whether rate is a rate http_content takes: digits, then optionally k or m. */
int http_rate_valid(const char *rate);

/* Stops the server, waits until its master and worker processes have all exited (killing
 * them after a grace period) and removes its folder.  Accepts a server never started. */
void http_server_stop(http_server *s);

#endif /* CFUTURES_HTTP_SERVER_H */
