/*
 * cmd_download.c -- `cfutures download`: fetches a list of URLs into a folder with libcurl,
 * one URL per item, sequentially, on a thread pool or on a process pool.
 *
 * An item's input is self-contained bytes (the transfer options, the folder, the URL, the
 * file name and any failure already decided), because in processes mode it runs in another
 * copy of the program; its result is a small fixed record (bytes received, attempts).
 * The parent decides everything that needs the whole list: the file name of each URL (its
 * last path segment, like `curl -O`; "index.html" when that is empty) and which URLs would
 * overwrite an earlier one's file (those fail at once, before any transfer).
 *
 * Invariants:
 * - No partial file is ever visible under a final name: a transfer writes to a hidden
 *   temporary file in the output folder (same file system, so the rename is atomic),
 *   renamed to the final name on success and unlinked on every failure.  A worker process
 *   that dies mid-transfer cannot unlink it; the parent then removes its
 *   ".NAME.part-PID-N" file (cli_remove_leftovers).  On SIGINT / SIGTERM transfers in this
 *   process stop (the write and progress callbacks and the pauses look at
 *   cli_interrupted()) and unlink their files; workers are killed and their files removed
 *   as above.  Only the command itself killed with SIGKILL leaves one behind, which the
 *   next run into the folder removes (cli_remove_stale: files of processes that are gone).
 * - A failure belongs to its URL: the item fails with curl's error number as its code (the
 *   number `curl` would exit with; HTTP errors are 22 and local file errors 23) and a
 *   message saying what happened; the other items are unaffected.
 * - Retries are for what may pass: timeouts, refused or reset connections, truncated
 *   bodies, and HTTP 408, 429 and 5xx.  A bad host name, a 404 or a local write error fails
 *   at once.  Each retry starts the file over, after a short doubling pause.
 * - --limit-rate holds each attempt to at most RATE bytes per second on average from its
 *   start, paced in the write callback (libcurl's own limiter lets short transfers on a
 *   fast link through unthrottled: see keep_to_rate).
 * - curl_global_init runs once per process, guarded by a pthread_once: in the parent before
 *   any pool exists (the command is still single-threaded then), and in a worker process
 *   on its first item, since a process pool's workers are fresh programs.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cli.h"

/* The fixed head of an item's input (no padding: every byte of it is sent).  Four
 * NUL-terminated strings follow it: the output folder, the URL, the file name, and the
 * message of a failure decided before the run ("" when none). */
typedef struct dl_params {
    int64_t connect_timeout_ms;
    int64_t timeout_ms;     /* per attempt; 0: none */
    int64_t rate;           /* bytes per second per attempt; 0: no limit */
    int32_t retries;
    int32_t refused; /* non-zero: fail at once with this code, the fourth string saying why */
} dl_params;

/* An item's result. */
typedef struct dl_result {
    uint64_t bytes;
    uint64_t attempts;
} dl_result;

#define DL_DEFAULT_WORKERS 8
#define DL_FIRST_RETRY_DELAY 0.25 /* seconds; doubles for each later retry */
#define DL_MAX_RETRY_DELAY 4.0
#define DL_MAX_RETRIES 100
#define DL_MAX_SECONDS 1e6 /* timeouts beyond this are surely a typo */
/* How a failed item's message ends when it took more than one attempt: the parent reads
 * the count back from it (failed_attempts), since a failed task has no result. */
#define ATTEMPTS_TAIL " attempts)"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

/* Once per process, and undone at exit: a program may run the subcommand more than once
 * (the demo does), and libcurl cannot start again after curl_global_cleanup. */
static void curl_init(void)
{
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (curl_init_result == CURLE_OK)
        atexit(curl_global_cleanup);
}

/* ------------------------------------------------------------------------------------ */
/* One transfer (runs in the item's thread or worker process)                           */
/* ------------------------------------------------------------------------------------ */

/* Where curl's bytes go: the temporary file.  err keeps the write's errno, which curl
 * itself would only report as CURLE_WRITE_ERROR. */
typedef struct dl_sink {
    int fd;
    int err;
    uint64_t bytes; /* this attempt's */
    int64_t rate;   /* bytes per second; 0: no limit */
    double start;   /* when this attempt started (monotonic seconds) */
} dl_sink;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Sleeps s seconds, in slices so that it ends early when the run is interrupted. */
static void pause_seconds(double s)
{
    double end = now_seconds() + s, left;
    while (!cli_interrupted() && (left = end - now_seconds()) > 0) {
        double slice = left < 0.05 ? left : 0.05;
        struct timespec ts = {0, (long)(slice * 1e9)};
        nanosleep(&ts, NULL);
    }
}

/*
 * The rate limit.  libcurl's own (CURLOPT_MAX_RECV_SPEED_LARGE, which `curl --limit-rate`
 * uses) only waits between wake-ups, and libcurl 7.88 reads up to 100 buffers per wake-up
 * while the socket has data: on a fast link (the loopback of the demo and the tests) a
 * 400 KiB file arrives unthrottled in a millisecond and a 4 MB one at 25 times the limit.
 * Holding each chunk until the attempt's average is back at the rate paces every byte; the
 * socket then stops being read, so TCP's window slows the server down as a slow link would.
 */
static void keep_to_rate(const dl_sink *sink)
{
    double due = sink->start + (double)sink->bytes / (double)sink->rate;
    double now = now_seconds();
    if (due > now)
        pause_seconds(due - now);
}

static size_t sink_write(char *data, size_t size, size_t n, void *arg)
{
    dl_sink *sink = arg;
    size_t total = size * n;
    size_t done = 0;
    while (done < total) {
        ssize_t w = write(sink->fd, data + done, total - done);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            sink->err = errno;
            return 0; /* anything but `total` makes curl stop with CURLE_WRITE_ERROR */
        }
        done += (size_t)w;
    }
    sink->bytes += total;
    if (sink->rate > 0)
        keep_to_rate(sink);
    return cli_interrupted() ? 0 : total;
}

/* libcurl's progress callback: non-zero stops the transfer (an interrupted run). */
static int check_interrupted(void *arg, curl_off_t dltotal, curl_off_t dlnow,
                             curl_off_t ultotal, curl_off_t ulnow)
{
    (void)arg, (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    return cli_interrupted() != 0;
}

static int transient(CURLcode rc, long http_status)
{
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_COULDNT_CONNECT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return 1;
    case CURLE_HTTP_RETURNED_ERROR:
        return http_status == 408 || http_status == 429 || http_status >= 500;
    default:
        return 0;
    }
}

static void retry_pause(int retry)
{
    double s = DL_FIRST_RETRY_DELAY * ldexp(1.0, retry - 1);
    pause_seconds(s < DL_MAX_RETRY_DELAY ? s : DL_MAX_RETRY_DELAY);
}

/* Describes a failed attempt in msg. */
static void describe(char *msg, size_t cap, CURLcode rc, long http_status,
                     const char *errbuf, const dl_sink *sink, const char *tmp)
{
    if (rc == CURLE_HTTP_RETURNED_ERROR && http_status > 0)
        snprintf(msg, cap, "server answered HTTP %ld", http_status);
    else if (rc == CURLE_WRITE_ERROR && sink->err != 0)
        snprintf(msg, cap, "writing %s: %s", tmp, strerror(sink->err));
    else
        snprintf(msg, cap, "%s", errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc));
}

/* Sets the options every attempt shares; CURLE_OK or the first option's error. */
static CURLcode configure(CURL *h, const dl_params *p, const char *url, dl_sink *sink,
                          char *errbuf)
{
    char agent[64];
    snprintf(agent, sizeof agent, "cfutures/%s", cf_version()); /* curl copies strings */
    CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                                      \
    do {                                                                                   \
        if (rc == CURLE_OK)                                                                \
            rc = curl_easy_setopt(h, opt, val);                                            \
    } while (0)
    SET(CURLOPT_URL, url);
    SET(CURLOPT_ERRORBUFFER, errbuf);
    SET(CURLOPT_NOSIGNAL, 1L); /* threads: no signals for timeouts */
    SET(CURLOPT_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SET(CURLOPT_FOLLOWLOCATION, 1L);
    SET(CURLOPT_MAXREDIRS, 10L);
    SET(CURLOPT_FAILONERROR, 1L); /* an error page is not the file */
    SET(CURLOPT_USERAGENT, agent);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)p->connect_timeout_ms);
    SET(CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
    SET(CURLOPT_WRITEFUNCTION, sink_write);
    SET(CURLOPT_WRITEDATA, sink);
    SET(CURLOPT_XFERINFOFUNCTION, check_interrupted);
    SET(CURLOPT_NOPROGRESS, 0L);
#undef SET
    return rc;
}

/* Splits an item's input into its head and its four strings; -1 if malformed. */
static int decode(const void *in, size_t len, dl_params *p, const char *s[4])
{
    if (len < sizeof *p)
        return -1;
    memcpy(p, in, sizeof *p);
    const char *at = (const char *)in + sizeof *p;
    const char *end = (const char *)in + len;
    for (int i = 0; i < 4; i++) {
        const char *nul = memchr(at, '\0', (size_t)(end - at));
        if (nul == NULL)
            return -1;
        s[i] = at;
        at = nul + 1;
    }
    return at == end ? 0 : -1;
}

/* The item: one URL into its file.  Result: a dl_result. */
static int fetch_work(const void *in, size_t len, cli_out *out)
{
    dl_params p;
    const char *s[4];
    if (decode(in, len, &p, s) != 0)
        return cli_out_fail(out, CURLE_BAD_FUNCTION_ARGUMENT, "malformed item (%zu bytes)",
                            len);
    const char *dir = s[0], *url = s[1], *name = s[2];
    if (p.refused != 0)
        return cli_out_fail(out, p.refused, "%s", s[3]);

    pthread_once(&curl_once, curl_init);
    if (curl_init_result != CURLE_OK)
        return cli_out_fail(out, curl_init_result, "curl_global_init: %s",
                            curl_easy_strerror(curl_init_result));

    char tmp[PATH_MAX];
    int fd = cli_open_temporary(dir, name, tmp, sizeof tmp);
    if (fd < 0)
        return cli_out_fail(out, CURLE_WRITE_ERROR, "creating a file in %s: %s", dir,
                            strerror(errno));

    char errbuf[CURL_ERROR_SIZE] = "";
    dl_sink sink = {.fd = fd, .rate = p.rate};
    CURL *h = curl_easy_init();
    CURLcode rc = h != NULL ? configure(h, &p, url, &sink, errbuf) : CURLE_OUT_OF_MEMORY;
    long http_status = 0;
    int attempts = 0;
    while (rc == CURLE_OK) {
        attempts++;
        errbuf[0] = '\0';
        sink.err = 0;
        sink.bytes = 0;
        sink.start = now_seconds();
        if (ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
            sink.err = errno;
            rc = CURLE_WRITE_ERROR;
            break;
        }
        rc = curl_easy_perform(h);
        if (cli_interrupted())
            break;
        http_status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &http_status);
        if (rc == CURLE_OK || attempts > p.retries || !transient(rc, http_status))
            break;
        rc = CURLE_OK;
        retry_pause(attempts);
    }
    if (cli_interrupted()) {
        curl_easy_cleanup(h);
        close(fd);
        unlink(tmp);
        return cli_out_fail(out, EINTR, "interrupted");
    }

    char msg[CURL_ERROR_SIZE + 2 * PATH_MAX + 64];
    if (rc != CURLE_OK)
        describe(msg, sizeof msg, rc, http_status, errbuf, &sink, tmp);
    curl_easy_cleanup(h);
    if (close(fd) != 0 && rc == CURLE_OK) {
        rc = CURLE_WRITE_ERROR;
        snprintf(msg, sizeof msg, "writing %s: %s", tmp, strerror(errno));
    }
    if (rc == CURLE_OK) {
        char final[PATH_MAX];
        int k = snprintf(final, sizeof final, "%s/%s", dir, name);
        int err = k < 0 || (size_t)k >= sizeof final ? ENAMETOOLONG
                  : rename(tmp, final) != 0          ? errno
                                                     : 0;
        if (err != 0) {
            rc = CURLE_WRITE_ERROR;
            snprintf(msg, sizeof msg, "renaming %s to %s: %s", tmp, name, strerror(err));
        }
    }
    if (rc != CURLE_OK) {
        unlink(tmp);
        if (attempts > 1)
            return cli_out_fail(out, (int)rc, "%s (curl error %d, %d" ATTEMPTS_TAIL, msg,
                                (int)rc, attempts);
        return cli_out_fail(out, (int)rc, "%s (curl error %d)", msg, (int)rc);
    }
    dl_result r = {sink.bytes, (uint64_t)attempts};
    return cli_out_set(out, &r, sizeof r);
}

CLI_TASK(fetch_url, fetch_work);

/* ------------------------------------------------------------------------------------ */
/* The command (parent process)                                                         */
/* ------------------------------------------------------------------------------------ */

typedef struct str_list {
    char **v;
    size_t n, cap;
} str_list;

static int list_push(str_list *l, const char *s, size_t len)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **v = realloc(l->v, cap * sizeof *v);
        if (v == NULL)
            return -1;
        l->v = v;
        l->cap = cap;
    }
    char *copy = strndup(s, len);
    if (copy == NULL)
        return -1;
    l->v[l->n++] = copy;
    return 0;
}

static void list_free(str_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

/* Adds the URLs of a list file: one per line, blank lines and lines starting with '#'
 * skipped, spaces around a URL ignored.  Returns 0, or -1 with errno set. */
static int read_url_file(FILE *f, str_list *urls)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    errno = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        const char *a = line;
        const char *b = line + len;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (a < b && *a != '#' && list_push(urls, a, (size_t)(b - a)) != 0)
            rc = -1;
    }
    if (rc == 0 && ferror(f))
        rc = -1;
    free(line);
    return rc;
}

/* Adds the URLs of `path` ("-": standard input). */
static int read_urls_from(const char *path, str_list *urls)
{
    if (strcmp(path, "-") == 0)
        return read_url_file(stdin, urls);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    int rc = read_url_file(f, urls);
    int saved = errno;
    fclose(f);
    errno = saved;
    return rc;
}

/* The file name for a URL (its last path segment), or NULL with *why set when curl cannot
 * parse it (*why NULL: out of memory). */
static char *file_name(const char *url, const char **why)
{
    CURLU *u = curl_url();
    char *path = NULL;
    CURLUcode uc = u != NULL ? curl_url_set(u, CURLUPART_URL, url, 0) : CURLUE_OUT_OF_MEMORY;
    if (uc == CURLUE_OK)
        uc = curl_url_get(u, CURLUPART_PATH, &path, 0);
    curl_url_cleanup(u);
    if (uc != CURLUE_OK) {
        *why = uc == CURLUE_OUT_OF_MEMORY ? NULL : curl_url_strerror(uc);
        return NULL;
    }
    const char *slash = strrchr(path, '/');
    const char *base = slash != NULL ? slash + 1 : path;
    if (*base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        base = "index.html";
    char *name = strdup(base);
    curl_free(path);
    *why = NULL;
    return name;
}

/* Parses a rate like curl's --limit-rate: a number of bytes per second with an optional
 * k, M or G suffix (powers of 1024); 0 means no limit.  Returns the rate, or -1 if
 * malformed or between 0 and 1 byte per second. */
static int64_t parse_rate(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || !isfinite(v) || v < 0)
        return -1;
    double unit = 1;
    switch (*end) {
    case 'k':
    case 'K':
        unit = 1024.0, end++;
        break;
    case 'm':
    case 'M':
        unit = 1024.0 * 1024, end++;
        break;
    case 'g':
    case 'G':
        unit = 1024.0 * 1024 * 1024, end++;
        break;
    }
    double rate = v * unit;
    if (*end != '\0' || rate >= 0x1p62 || (rate > 0 && rate < 1))
        return -1;
    return (int64_t)rate;
}

static void format_bytes(char *buf, size_t cap, double bytes)
{
    static const char *const units[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (bytes >= 1024 && u < 4)
        bytes /= 1024, u++;
    if (u == 0)
        snprintf(buf, cap, "%.0f bytes", bytes);
    else
        snprintf(buf, cap, "%.1f %s", bytes, units[u]);
}

/* Index order by file name, then position: equal names end up next to each other with the
 * first URL first.  (qsort has no context argument; the command is single-threaded.) */
static char *const *sort_names;

static int by_name(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    int c = strcmp(sort_names[i], sort_names[j]);
    return c != 0 ? c : (i > j) - (i < j);
}

/* What the parent decides for each URL before the run. */
typedef struct dl_plan {
    char *name;       /* file name; "" when refused as not a URL */
    int32_t refused;  /* 0, or the code the item fails with at once */
    char why[256];    /* the refusal's message */
} dl_plan;

/* Names every URL's file and refuses the URLs curl cannot parse and those whose name an
 * earlier URL already has.  Returns 0 or -1 (out of memory). */
static int plan_items(dl_plan *plan, char *const *urls, size_t n)
{
    char **names = malloc(n * sizeof *names);
    size_t *order = malloc(n * sizeof *order);
    int rc = names != NULL && order != NULL ? 0 : -1;
    for (size_t i = 0; i < n && rc == 0; i++) {
        const char *reason;
        plan[i].name = file_name(urls[i], &reason);
        if (plan[i].name == NULL && reason != NULL) {
            snprintf(plan[i].why, sizeof plan[i].why, "not a URL curl can fetch: %s", reason);
            plan[i].refused = CURLE_URL_MALFORMAT;
            plan[i].name = strdup("");
        }
        if (plan[i].name == NULL)
            rc = -1;
        else
            names[i] = plan[i].name, order[i] = i;
    }
    if (rc == 0 && n > 0) {
        sort_names = names;
        qsort(order, n, sizeof *order, by_name);
        size_t first = order[0];
        for (size_t k = 1; k < n; k++) {
            size_t i = order[k];
            if (plan[i].refused == 0 && plan[first].refused == 0 &&
                strcmp(names[first], names[i]) == 0) {
                snprintf(plan[i].why, sizeof plan[i].why, "same file name '%.100s' as %.120s",
                         names[i], urls[first]);
                plan[i].refused = CURLE_WRITE_ERROR;
            } else {
                first = i;
            }
        }
    }
    free(names);
    free(order);
    return rc;
}

/* One item's input bytes (malloc'd into item->data). */
static int encode(cf_bytes *item, const dl_params *p, const char *dir, const char *url,
                  const char *name, const char *refusal)
{
    const char *s[4] = {dir, url, name, refusal};
    size_t len = sizeof *p;
    for (int i = 0; i < 4; i++)
        len += strlen(s[i]) + 1;
    char *buf = malloc(len);
    if (buf == NULL)
        return -1;
    memcpy(buf, p, sizeof *p);
    char *at = buf + sizeof *p;
    for (int i = 0; i < 4; i++) {
        size_t k = strlen(s[i]) + 1;
        memcpy(at, s[i], k);
        at += k;
    }
    item->data = buf;
    item->len = len;
    return 0;
}

/* The attempts a failed item made (fetch_work's message says when more than one), or 0
 * when it never got to a transfer. */
static uint64_t failed_attempts(const cli_item *it)
{
    if (it->status != CF_ETASK || it->message == NULL)
        return 0;
    size_t len = strlen(it->message), tail = strlen(ATTEMPTS_TAIL);
    if (len > tail && strcmp(it->message + len - tail, ATTEMPTS_TAIL) == 0) {
        const char *digits = it->message + len - tail;
        while (digits > it->message && digits[-1] >= '0' && digits[-1] <= '9')
            digits--;
        return strtoull(digits, NULL, 10);
    }
    return 1;
}

/* The summary line: what was fetched, where, how. */
static void describe_run(char *text, size_t cap, const cli_run *run, const cli_common *common,
                         const char *dir, uint64_t bytes, uint64_t retried, int64_t rate)
{
    char size[32], rate_text[64] = "";
    format_bytes(size, sizeof size, (double)bytes);
    if (rate > 0) {
        char r[32];
        format_bytes(r, sizeof r, (double)rate);
        snprintf(rate_text, sizeof rate_text, "; at most %s/s per transfer", r);
    }
    snprintf(text, cap,
             "Downloaded %zu of %zu URL(s) into %s with %s (%d worker%s): %s, %" PRIu64
             " retr%s%s\n",
             run->n - run->failed, run->n, dir, cli_mode_name(common->mode), run->workers,
             run->workers == 1 ? "" : "s", size, retried, retried == 1 ? "y" : "ies",
             rate_text);
}

static int run_download(int argc, char **argv, cli_common *common);

const cli_command cli_download = {
    "download",
    "fetch URLs into a folder with libcurl (I/O-bound: threads help)",
    "[URL...|-]",
    "Fetches each URL into the output folder, named after the last segment of its path\n"
    "('index.html' when that is empty); '-' or --input - reads URLs from standard input.\n"
    "Each URL is one item: a failure (bad host, HTTP error, timeout, reset connection) is\n"
    "reported for its URL while the others complete, and leaves no file behind (a\n"
    "transfer writes a hidden temporary file and renames it when complete).  A URL whose\n"
    "file name an earlier URL already has fails without a transfer.  Failures that may\n"
    "pass (timeouts, refused or reset connections, HTTP 408, 429 and 5xx) are retried\n"
    "with --retries, pausing 0.25 s, 0.5 s, 1 s ... (at most 4 s) in between.  The error\n"
    "code of a failed URL is curl's error number (22: HTTP error, 23: local file error).\n"
    "Default workers: one per URL, at most 8.",
    run_download,
    0,    /* every common option */
    NULL, /* the exit statuses of the commands that run items */
};

/* Runs the planned items and prints the summary; returns the exit status. */
static int fetch_all(cli_common *common, str_list *urls, const dl_params *base,
                     const char *dir)
{
    size_t n = urls->n;
    dl_plan *plan = calloc(n, sizeof *plan);
    cf_bytes *inputs = calloc(n, sizeof *inputs);
    int oom = plan == NULL || inputs == NULL || plan_items(plan, urls->v, n) != 0;
    for (size_t i = 0; i < n && !oom; i++) {
        dl_params p = *base;
        p.refused = plan[i].refused;
        oom = encode(&inputs[i], &p, dir, urls->v[i], plan[i].name, plan[i].why) != 0;
    }
    cli_run run = {0};
    int status = CLI_EXIT_FAILED;
    if (oom) {
        cli_fail("download", "out of memory");
    } else {
        if (common->workers == 0)
            common->workers = n < DL_DEFAULT_WORKERS ? (int)n : DL_DEFAULT_WORKERS;
        for (size_t i = 0; i < n; i++) /* what an earlier run killed left behind */
            if (plan[i].name != NULL)
                cli_remove_stale(dir, plan[i].name);
        if (cli_run_items(&run, common, &fetch_url_task, inputs, n) == 0) {
            for (size_t i = 0; i < n; i++)
                if (plan[i].name != NULL)
                    cli_remove_leftovers(dir, plan[i].name, &run.items[i]);
            uint64_t bytes = 0, retried = 0;
            for (size_t i = 0; i < n; i++) {
                dl_result r;
                if (cli_item_result(&run.items[i], &r, sizeof r)) {
                    bytes += r.bytes;
                    retried += r.attempts - 1;
                } else if (failed_attempts(&run.items[i]) > 1) { /* a URL that failed */
                    retried += failed_attempts(&run.items[i]) - 1;
                }
            }
            char text[PATH_MAX + 256];
            describe_run(text, sizeof text, &run, common, dir, bytes, retried,
                         base->rate);
            const cli_field fields[] = {
                {"output", CLI_FIELD_STRING, dir, 0, 0},
                {"bytes", CLI_FIELD_INT, NULL, (long long)bytes, 0},
                {"retries", CLI_FIELD_INT, NULL, (long long)retried, 0},
                {"limit_rate", CLI_FIELD_INT, NULL, (long long)base->rate, 0},
            };
            status = cli_finish(common, &run, (const char *const *)urls->v, text, fields,
                                sizeof fields / sizeof fields[0]);
        }
    }
    cli_run_free(&run);
    for (size_t i = 0; plan != NULL && i < n; i++)
        free(plan[i].name);
    for (size_t i = 0; inputs != NULL && i < n; i++)
        free((void *)inputs[i].data);
    free(plan);
    free(inputs);
    return status;
}

static int run_download(int argc, char **argv, cli_common *common)
{
    const char *output = ".";
    const char *input = NULL;
    const char *limit = NULL;
    int retries = 0;
    double connect_timeout = 10;
    double timeout = 0;
    const cli_option opts[] = {
        {"output", 'o', CLI_OPT_STRING, &output, "DIR",
         "folder for the files, created if missing (default: .)"},
        {"input", 'i', CLI_OPT_STRING, &input, "FILE",
         "also read URLs from FILE, one per line ('-': stdin; # comments)"},
        {"retries", 0, CLI_OPT_INT, &retries, "N",
         "retry a failure that may pass up to N times (default 0)"},
        {"connect-timeout", 0, CLI_OPT_DOUBLE, &connect_timeout, "SEC",
         "limit on connecting, per attempt (default 10)"},
        {"timeout", 0, CLI_OPT_DOUBLE, &timeout, "SEC",
         "limit on a whole transfer, per attempt (default 0: none)"},
        {"limit-rate", 0, CLI_OPT_STRING, &limit, "RATE",
         "at most RATE bytes/s per transfer, e.g. 200k, 1M (default: none)"},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    int n_args = 0;
    int rc = cli_parse(&cli_download, argc, argv, common, opts, &n_args);
    if (rc != CLI_PARSED)
        return rc;

    if (retries < 0 || retries > DL_MAX_RETRIES)
        return cli_usage_error(&cli_download, "--retries must be between 0 and %d, not %d",
                               DL_MAX_RETRIES, retries);
    if (!(connect_timeout > 0 && connect_timeout <= DL_MAX_SECONDS))
        return cli_usage_error(&cli_download,
                               "--connect-timeout must be above 0 and at most %g, not %g",
                               DL_MAX_SECONDS, connect_timeout);
    if (!(timeout >= 0 && timeout <= DL_MAX_SECONDS))
        return cli_usage_error(&cli_download, "--timeout must be between 0 and %g, not %g",
                               DL_MAX_SECONDS, timeout);
    int64_t rate = 0;
    if (limit != NULL && (rate = parse_rate(limit)) < 0)
        return cli_usage_error(&cli_download,
                               "--limit-rate needs bytes per second, like 200k or 1M, not '%s'",
                               limit);
    if (*output == '\0')
        return cli_usage_error(&cli_download, "--output needs a folder name");

    str_list urls = {0};
    int status = CLI_EXIT_FAILED;
    for (int i = 1; i <= n_args; i++) {
        int err = strcmp(argv[i], "-") == 0 ? read_urls_from("-", &urls)
                                            : list_push(&urls, argv[i], strlen(argv[i]));
        if (err != 0) {
            list_free(&urls);
            return cli_fail("download", "reading URLs: %s", strerror(errno));
        }
    }
    if (input != NULL && read_urls_from(input, &urls) != 0) {
        status = cli_fail("download", "reading URLs from %s: %s", input, strerror(errno));
    } else if (urls.n == 0) {
        status = cli_usage_error(&cli_download, "no URLs given");
    } else {
        /* Still single-threaded, before any pool: the place for curl's global set-up. */
        pthread_once(&curl_once, curl_init);
        char *dir = NULL;
        if (curl_init_result != CURLE_OK) {
            status = cli_fail("download", "curl_global_init: %s",
                              curl_easy_strerror(curl_init_result));
        } else if ((dir = cli_output_folder(output)) == NULL) {
            status = cli_fail("download", "output folder %s: %s", output, strerror(errno));
        } else {
            const dl_params base = {
                .connect_timeout_ms = (int64_t)ceil(connect_timeout * 1000),
                .timeout_ms = (int64_t)ceil(timeout * 1000),
                .rate = rate,
                .retries = retries,
            };
            status = fetch_all(common, &urls, &base, dir);
        }
        free(dir);
    }
    list_free(&urls);
    return status;
}
