/*
 * cmd_serve.c -- `cfutures serve DIR`: the demo's web server (nginx on 127.0.0.1, see
 * http_server.c) serving a folder until told to stop, for running `cfutures download`
 * against local files -- and for the project's own download tests and benchmark, which
 * use it rather than a second way of starting nginx.
 *
 * It prints the base URL on stdout once nginx accepts connections, then waits for
 * SIGTERM, SIGINT or SIGHUP -- or for its parent to die (PR_SET_PDEATHSIG), so a test
 * harness that crashes leaves no server behind -- and stops nginx, waiting until its
 * processes are gone and its folder removed, before it exits 0.
 */
#include "cli.h"
#include "http_server.h"

#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static int run_serve(int argc, char **argv, cli_common *common);

const cli_command cli_serve = {
    .name = "serve",
    .summary = "serve a folder over HTTP on 127.0.0.1 with nginx, until interrupted",
    .args = "DIR",
    .about = "Serves the folder DIR (and what is below it) with Debian's nginx on 127.0.0.1\n"
             "at a free port, as the demo does, and prints the base URL\n"
             "(http://127.0.0.1:PORT/) once it accepts connections.  It runs until SIGTERM,\n"
             "SIGINT (Ctrl-C) or SIGHUP, or until the process that started it exits, then\n"
             "stops nginx and returns once no nginx process of its own is left.  Everything\n"
             "nginx writes goes to a fresh folder under $TMPDIR, removed at the end.  The\n"
             "common options --mode, --workers, --json, --timeline, --trace and --progress do\n"
             "not apply.",
    .run = run_serve,
    .common_off = CLI_COMMON_MODE | CLI_COMMON_WORKERS | CLI_COMMON_TIMELINE |
                  CLI_COMMON_TRACE | CLI_COMMON_JSON | CLI_COMMON_PROGRESS,
    .exit_help = "Exit status: 0 after a clean stop (a signal, or the parent gone), 1 when\n"
                 "nginx could not be started or the folder cannot be served, 2 for bad usage.",
};

static int run_serve(int argc, char **argv, cli_common *common)
{
    const char *rate = NULL;
    const cli_option opts[] = {
        {"limit-rate", 0, CLI_OPT_STRING, &rate, "RATE",
         "hold every transfer to RATE bytes/s: digits, then k or m (default: none)"},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    int n_args = 0;
    int rc = cli_parse(&cli_serve, argc, argv, common, opts, &n_args);
    if (rc != CLI_PARSED)
        return rc;
    if (n_args != 1)
        return cli_usage_error(&cli_serve, "give one folder to serve");
    if (rate != NULL && !http_rate_valid(rate))
        return cli_usage_error(&cli_serve, "--limit-rate is digits, then optionally k or m "
                                           "(like 8m), not '%s'", rate);

    /* Blocked before anything starts, so a signal that comes early is waited for, not
     * lost (nginx's process unblocks them again before its exec). */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGHUP);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        return cli_fail("serve", "the process that started it has already exited");

    http_server server;
    const http_content what = {argv[1], NULL, 0, rate};
    char err[PATH_MAX + 256];
    if (http_server_start(&server, &what, err, sizeof err) != 0)
        return cli_fail("serve", "%s", err);
    printf("http://127.0.0.1:%d/\n", server.port);
    fflush(stdout);
    int sig;
    sigwait(&stop, &sig);
    http_server_stop(&server);
    return CLI_EXIT_OK;
}
