/*
 * http_server.c -- Debian's nginx as the demo's loopback web server, started and stopped
 * by the demo itself, so that `cfutures demo` downloads over real HTTP from real sockets.
 *
 * Design:
 * - Everything nginx writes (configuration, pid and lock files, logs, temporary paths)
 *   lives in a fresh folder under $TMPDIR (or /tmp), and the configuration loads no module
 *   and names no system path: the server needs no root and never touches a system nginx
 *   the package may have started on port 80.  The served files are symbolic links to the
 *   photos in that folder's www/.
 * - nginx runs with `daemon off` as a child of this process, never detached: it cannot
 *   outlive the demo unnoticed, and PR_SET_PDEATHSIG sends it SIGTERM if the demo dies
 *   first.  The child runs only async-signal-safe calls between fork and exec.
 * - Run as root, nginx would hand its workers to "nobody"; a `user` line keeps the
 *   caller's identity, so the workers may read what the caller may.
 * - Ready means connectable: the port is one the kernel just handed out for port 0, and
 *   the demo polls connect() until nginx listens, or nginx exits (the port was taken in
 *   between: another port is tried) or the start-up time runs out.
 * - Stopped means gone: pidfds of the master's workers are taken before the master is
 *   told to stop (SIGTERM: fast shutdown), and stopping waits on the master and on every
 *   pidfd; what has not exited after a grace period is killed.
 */
#define _GNU_SOURCE
#include "http_server.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define START_SECONDS 10.0 /* for nginx to listen */
#define STOP_SECONDS 5.0   /* for a fast shutdown, before SIGKILL */
#define BIND_ATTEMPTS 5    /* ports tried when another program takes the one picked */
#define MAX_WORKERS 64

static const char *const nginx_paths[] = {"/usr/sbin/nginx", "/usr/local/sbin/nginx",
                                          "/usr/bin/nginx"};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void pause_ms(int ms)
{
    struct timespec t = {0, (long)ms * 1000000L};
    nanosleep(&t, NULL);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path) != 0 && errno != ENOENT ? -1 : 0;
}

static void remove_tree(const char *dir)
{
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static int connectable(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Writes the configuration for port into state/nginx.conf; 0 or -1 with errno. */
static int write_config(const char *state, int port, const char *root, const char *rate)
{
    char path[PATH_MAX + 16], user[256] = "";
    snprintf(path, sizeof path, "%s/nginx.conf", state);
    if (geteuid() == 0) {
        struct passwd *pw = getpwuid(geteuid());
        struct group *gr = getgrgid(getegid());
        if (pw != NULL && gr != NULL)
            snprintf(user, sizeof user, "user %s %s;\n", pw->pw_name, gr->gr_name);
    }
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "%sdaemon off;\nmaster_process on;\nworker_processes 1;\n"
            "pid %s/nginx.pid;\nlock_file %s/nginx.lock;\nerror_log %s/nginx.log notice;\n"
            "events { worker_connections 512; }\n"
            "http {\n"
            "    access_log %s/access.log;\n"
            "    client_body_temp_path %s/tmp/body;\n    proxy_temp_path %s/tmp/proxy;\n"
            "    fastcgi_temp_path %s/tmp/fastcgi;\n    uwsgi_temp_path %s/tmp/uwsgi;\n"
            "    scgi_temp_path %s/tmp/scgi;\n"
            "    types { image/jpeg jpg jpeg; }\n"
            "    default_type application/octet-stream;\n"
            "    sendfile on;\n"
            "    server {\n        listen 127.0.0.1:%d;\n        server_name localhost;\n"
            "        root %s;\n%s%s%s    }\n"
            "}\n",
            user, state, state, state, state, state, state, state, state, state, port, root,
            rate ? "        limit_rate " : "", rate ? rate : "", rate ? ";\n" : "");
    return fclose(f) == 0 ? 0 : -1;
}

/* Starts nginx on state's configuration; its log and output go to state/nginx.log. */
static pid_t spawn(const char *nginx, const char *state)
{
    char conf[PATH_MAX + 16], out[PATH_MAX + 16];
    snprintf(conf, sizeof conf, "%s/nginx.conf", state);
    snprintf(out, sizeof out, "%s/nginx.log", state);
    int fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    char *const argv[] = {(char *)"nginx", (char *)"-p", (char *)state, (char *)"-c", conf,
                          (char *)"-e", out, NULL};
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* Only async-signal-safe calls from here to exec. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(127);
        sigset_t none; /* the caller may block signals it waits for (serve does) */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int null = open("/dev/null", O_RDONLY);
        if (null < 0 || dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
            _exit(127);
        execv(nginx, argv);
        _exit(127);
    }
    close(fd);
    return pid;
}

/* The last line of state/nginx.log, for an error message. */
static void last_words(const char *state, char *buf, size_t cap)
{
    char path[PATH_MAX + 16], line[512];
    snprintf(path, sizeof path, "%s/nginx.log", state);
    snprintf(buf, cap, "no message");
    FILE *f = fopen(path, "r");
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (*line)
            snprintf(buf, cap, "%s", line);
    }
    if (f != NULL)
        fclose(f);
}

/* Links paths into state/www under their base names; 0 or -1 with errno. */
static int link_files(const char *state, const char *const *paths, size_t n)
{
    char dir[PATH_MAX + 16], link[PATH_MAX * 2];
    snprintf(dir, sizeof dir, "%s/www", state);
    if (mkdir(dir, 0700) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        const char *slash = strrchr(paths[i], '/');
        char *target = realpath(paths[i], NULL);
        if (target == NULL)
            return -1;
        snprintf(link, sizeof link, "%s/%s", dir, slash ? slash + 1 : paths[i]);
        int rc = symlink(target, link);
        free(target);
        if (rc != 0 && errno != EEXIST)
            return -1;
    }
    return 0;
}

/* Whether nginx's configuration can name path unquoted (its quoting has rules of its own). */
static int plain_path(const char *path)
{
    return strpbrk(path, " \t\n;{}\"'\\$#") == NULL;
}

int http_rate_valid(const char *rate)
{
    size_t digits = strspn(rate, "0123456789");
    return digits > 0 && (rate[digits] == '\0' ||
                          (strchr("kKmM", rate[digits]) && rate[digits + 1] == '\0'));
}

int http_server_start(http_server *s, const http_content *what, char *err, size_t cap)
{
    memset(s, 0, sizeof *s);
    if (what->rate != NULL && !http_rate_valid(what->rate)) {
        snprintf(err, cap, "a rate is digits, then optionally k or m (like 8m), not '%s'",
                 what->rate);
        return -1;
    }
    char *root = what->root != NULL ? realpath(what->root, NULL) : NULL;
    if (what->root != NULL && root == NULL) {
        snprintf(err, cap, "%s: %s", what->root, strerror(errno));
        return -1;
    }
    if (root != NULL && !plain_path(root)) {
        snprintf(err, cap, "the folder %s has characters nginx's configuration cannot take",
                 root);
        free(root);
        return -1;
    }
    const char *nginx = NULL;
    for (size_t i = 0; i < sizeof nginx_paths / sizeof nginx_paths[0] && !nginx; i++)
        if (access(nginx_paths[i], X_OK) == 0)
            nginx = nginx_paths[i];
    if (nginx == NULL) {
        snprintf(err, cap, "nginx is not installed (Debian package nginx-light)");
        return -1;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(s->state, sizeof s->state, "%s/cfutures-nginx-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(s->state) == NULL) {
        snprintf(err, cap, "cannot make a folder for nginx in %s: %s", tmp ? tmp : "/tmp",
                 strerror(errno));
        s->state[0] = '\0';
        return -1;
    }
    if (!plain_path(s->state)) {
        snprintf(err, cap, "the folder %s has characters nginx's configuration cannot take; "
                 "set TMPDIR to another folder", s->state);
        free(root);
        http_server_stop(s);
        return -1;
    }
    char tmpdir[PATH_MAX + 16], www[PATH_MAX + 16];
    snprintf(tmpdir, sizeof tmpdir, "%s/tmp", s->state);
    snprintf(www, sizeof www, "%s/www", s->state);
    if (mkdir(tmpdir, 0700) != 0 ||
        (root == NULL && link_files(s->state, what->paths, what->n_paths) != 0)) {
        snprintf(err, cap, "cannot prepare %s: %s", s->state, strerror(errno));
        free(root);
        http_server_stop(s);
        return -1;
    }
    for (int attempt = 0; attempt < BIND_ATTEMPTS; attempt++) {
        int port = free_port();
        if (port < 0 || write_config(s->state, port, root ? root : www, what->rate) != 0) {
            snprintf(err, cap, "cannot configure nginx: %s", strerror(errno));
            break;
        }
        if ((s->pid = spawn(nginx, s->state)) < 0) {
            s->pid = 0;
            snprintf(err, cap, "cannot start %s: %s", nginx, strerror(errno));
            break;
        }
        double deadline = now() + START_SECONDS;
        int status;
        while (now() < deadline) {
            if (connectable(port)) {
                s->port = port;
                free(root);
                return 0;
            }
            if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
                s->pid = 0;
                break;
            }
            pause_ms(10);
        }
        if (s->pid != 0) { /* alive but not listening in time */
            char words[400];
            last_words(s->state, words, sizeof words);
            snprintf(err, cap, "nginx did not listen within %.0f s: %s", START_SECONDS, words);
            break;
        }
        last_words(s->state, err, cap); /* it exited: most likely the port was taken */
    }
    free(root);
    http_server_stop(s);
    return -1;
}

/* The pids of pid's children (nginx's workers), from /proc. */
static size_t children_of(pid_t pid, pid_t *out, size_t cap)
{
    size_t n = 0;
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL && n < cap) {
        char path[300], buf[512];
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t len = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (len <= 0)
            continue;
        buf[len] = '\0';
        /* The command name is in parentheses and may hold anything: parse after the
         * last ')': " S ppid ...". */
        char *paren = strrchr(buf, ')');
        char state;
        int ppid;
        if (paren != NULL && sscanf(paren + 1, " %c %d", &state, &ppid) == 2 && ppid == pid)
            out[n++] = (pid_t)atoi(e->d_name);
    }
    if (d != NULL)
        closedir(d);
    return n;
}

void http_server_stop(http_server *s)
{
    if (s->pid > 0) {
        pid_t workers[MAX_WORKERS];
        int fds[MAX_WORKERS];
        size_t n = children_of(s->pid, workers, MAX_WORKERS), k = 0;
        for (size_t i = 0; i < n; i++) {
            int fd = (int)syscall(SYS_pidfd_open, workers[i], 0);
            if (fd >= 0)
                fds[k++] = fd;
        }
        kill(s->pid, SIGTERM);
        double deadline = now() + STOP_SECONDS;
        int status;
        while (waitpid(s->pid, &status, WNOHANG) == 0) {
            if (now() > deadline) {
                kill(s->pid, SIGKILL);
                waitpid(s->pid, &status, 0);
                break;
            }
            pause_ms(5);
        }
        for (size_t i = 0; i < k; i++) {
            struct pollfd p = {fds[i], POLLIN, 0};
            int left_ms = (int)((deadline - now()) * 1000);
            if (poll(&p, 1, left_ms > 0 ? left_ms : 0) == 0) {
                syscall(SYS_pidfd_send_signal, fds[i], SIGKILL, NULL, 0);
                poll(&p, 1, -1);
            }
            close(fds[i]);
        }
        s->pid = 0;
    }
    if (s->state[0] != '\0')
        remove_tree(s->state);
    s->state[0] = '\0';
}
