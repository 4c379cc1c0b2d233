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

/*
 * Starts nginx serving the n files at paths (each under its base name, through a symbolic
 * link) on 127.0.0.1 at a free port, and returns once it accepts connections: 0, or -1
 * with why in err[0 .. cap) and nothing left behind.  It forks, and the child runs only
 * async-signal-safe calls before exec, so other threads may be running.
 */
int http_server_start(http_server *s, const char *const *paths, size_t n, char *err,
                      size_t cap);

/* Stops the server, waits until its master and worker processes have all exited (killing
 * them after a grace period) and removes its folder.  Accepts a server never started. */
void http_server_stop(http_server *s);

#endif /* CFUTURES_HTTP_SERVER_H */
