/*
 * main.c -- the `cfutures` command: the subcommand table, top-level help, and the option
 * parser every subcommand uses (cli_parse).
 *
 * main() calls cf_init() before anything else: a process pool's workers are this program
 * started again, and cf_init() is where they turn into workers (it never returns there).
 * That is also why download and images are modules loaded on first use (cli_find_command):
 * a worker that never runs them never loads libcurl, libvips and what they pull in.
 *
 * Options are declared as tables (cli_option), so the parser and --help come from the same
 * data and --help cannot forget an option.  The common options are one more table, looked
 * up after the subcommand's own.  Values are checked for their type here (exit status 2
 * with the reason); ranges are the subcommand's business (cli_usage_error).
 */
#include "cli.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The subcommands, in the order `cfutures --help` lists them: built in (command set), or
 * in a module (command NULL until loaded). */
static struct {
    const char *name;
    const cli_command *command;
} commands[] = {
    {"sleep", &cli_sleep}, {"sum", &cli_sum},   {"download", NULL},
    {"images", NULL},      {"demo", &cli_demo},   {"serve", &cli_serve},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

/* Loads the module of subcommand name: dir/cfutures-NAME.so, for the first directory of
 * the program's own and CF_CLI_MODULE_DIR under it that has the file. */
static const cli_command *load_module(const char *name, char *why, size_t cap)
{
    char exe[PATH_MAX], path[PATH_MAX + 64];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        snprintf(why, cap, "cannot find the program's folder: %s", strerror(errno));
        return NULL;
    }
    exe[n] = '\0';
    *strrchr(exe, '/') = '\0';
    const char *dirs[] = {"", "/" CF_CLI_MODULE_DIR};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s%s/cfutures-%s.so", exe, dirs[i], name);
        if (access(path, F_OK) != 0)
            continue;
        /* Never closed: its functions run as tasks until the program ends. */
        void *module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
        char symbol[64];
        snprintf(symbol, sizeof symbol, "cli_%s", name);
        const cli_command *cmd = module != NULL ? dlsym(module, symbol) : NULL;
        if (cmd == NULL)
            snprintf(why, cap, "cannot load the %s module %s: %s", name, path, dlerror());
        return cmd;
    }
    snprintf(why, cap, "its module cfutures-%s.so is in neither %s nor %s/%s", name, exe, exe,
             CF_CLI_MODULE_DIR);
    return NULL;
}

const cli_command *cli_find_command(const char *name, char *why, size_t cap)
{
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(commands[i].name, name) != 0)
            continue;
        if (commands[i].command == NULL)
            commands[i].command = load_module(name, why, cap);
        return commands[i].command;
    }
    snprintf(why, cap, "unknown command '%s'", name);
    return NULL;
}

/* ---- the common options ---------------------------------------------------------------- */

/* Values of the common options as parsed, before checking. */
typedef struct common_raw {
    const char *mode;
    int workers;
    int workers_given;
    int json;
    const char *timeline;
    const char *trace;
    int progress;
    int no_progress;
    int help;
} common_raw;

/* The common options' table of cmd for a given destination (built per call: targets are
 * addresses in *raw), without those cmd does not take. */
static void common_table(const cli_command *cmd, cli_option table[10], common_raw *raw)
{
    const cli_option t[10] = {
        {"mode", 'm', CLI_OPT_STRING, &raw->mode, "MODE",
         "sequential, threads or processes (default: threads)"},
        {"workers", 'w', CLI_OPT_INT, &raw->workers, "N",
         "pool size, 1 to 1024 (default: see above)"},
        {"json", 0, CLI_OPT_FLAG, &raw->json, NULL,
         "print a JSON summary on stdout instead of text"},
        {"timeline", 0, CLI_OPT_STRING, &raw->timeline, "FILE.svg",
         "draw the run: a row per worker, a bar per task"},
        {"trace", 0, CLI_OPT_STRING, &raw->trace, "FILE.json",
         "write a Chrome trace-event file (for Perfetto)"},
        {"progress", 0, CLI_OPT_FLAG, &raw->progress, NULL,
         "show a progress bar on stderr even if not a terminal"},
        {"no-progress", 0, CLI_OPT_FLAG, &raw->no_progress, NULL,
         "never show it (default: on a terminal, after 0.5 s)"},
        {"help", 'h', CLI_OPT_FLAG, &raw->help, NULL, "show this help and exit"},
        {NULL, 0, 0, NULL, NULL, NULL},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    const struct {
        const void *target;
        unsigned flag;
    } optional[] = {
        {&raw->mode, CLI_COMMON_MODE},
        {&raw->workers, CLI_COMMON_WORKERS},
        {&raw->timeline, CLI_COMMON_TIMELINE},
        {&raw->trace, CLI_COMMON_TRACE},
        {&raw->json, CLI_COMMON_JSON},
        {&raw->progress, CLI_COMMON_PROGRESS},
        {&raw->no_progress, CLI_COMMON_PROGRESS},
    };
    size_t k = 0;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int off = 0;
        for (size_t j = 0; j < sizeof optional / sizeof optional[0]; j++)
            off |= t[i].target == optional[j].target && (cmd->common_off & optional[j].flag);
        if (!off)
            table[k++] = t[i];
    }
    while (k < sizeof t / sizeof t[0])
        table[k++] = (cli_option){NULL, 0, 0, NULL, NULL, NULL};
}

const char *cli_mode_name(cli_mode mode)
{
    switch (mode) {
    case CLI_SEQUENTIAL:
        return "sequential";
    case CLI_THREADS:
        return "threads";
    case CLI_PROCESSES:
        return "processes";
    }
    return "?";
}

/* ---- help and usage ---------------------------------------------------------------------- */

static void print_usage_line(FILE *out, const cli_command *cmd)
{
    fprintf(out, "Usage: cfutures %s [options]%s%s\n", cmd->name, cmd->args ? " " : "",
            cmd->args ? cmd->args : "");
}

static void print_options(FILE *out, const cli_option *opts)
{
    for (const cli_option *o = opts; o != NULL && o->name != NULL; o++) {
        char left[64];
        int k;
        if (o->short_name)
            k = snprintf(left, sizeof left, "  -%c, --%s", o->short_name, o->name);
        else
            k = snprintf(left, sizeof left, "      --%s", o->name);
        if (o->metavar && k > 0 && (size_t)k < sizeof left)
            snprintf(left + k, sizeof left - (size_t)k, " %s", o->metavar);
        fprintf(out, "%-28s %s\n", left, o->help);
    }
}

static void print_help(const cli_command *cmd, const cli_option *opts, const cli_option *common)
{
    print_usage_line(stdout, cmd);
    printf("\n%s\n", cmd->about);
    if (opts != NULL && opts->name != NULL) {
        printf("\nOptions:\n");
        print_options(stdout, opts);
    }
    printf("\nCommon options:\n");
    print_options(stdout, common);
    if (cmd->exit_help != NULL)
        printf("\n%s\n", cmd->exit_help);
    else
        printf("\nExit status: 0 when every item succeeded, 1 when any failed (with a summary),\n"
               "2 for bad usage, 130 / 143 when SIGINT (Ctrl-C) / SIGTERM stopped the run\n"
               "(the summary says what finished; no partial file is left).\n");
}

static void vusage_error(const cli_command *cmd, const char *fmt, va_list ap)
{
    fprintf(stderr, "cfutures %s: ", cmd->name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    print_usage_line(stderr, cmd);
    fprintf(stderr, "Try 'cfutures %s --help' for more information.\n", cmd->name);
}

int cli_usage_error(const cli_command *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vusage_error(cmd, fmt, ap);
    va_end(ap);
    return CLI_EXIT_USAGE;
}

/* ---- parsing ------------------------------------------------------------------------------ */

/* Parses a non-negative integer: decimal digits, or a number in exponent form that is a
 * whole number below 2^64 ("1e9", handy for sizes). */
static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end == '\0')
        return errno == ERANGE ? -1 : (*out = v, 0);
    double d = strtod(s, &end);
    if (*end != '\0' || !(d >= 0 && d < 18446744073709551616.0) || d != floor(d))
        return -1;
    *out = (uint64_t)d;
    return 0;
}

/* Stores `value` into option o; returns 0 or prints why it is not a valid value (-1). */
static int store(const cli_command *cmd, const cli_option *o, const char *value)
{
    char *end;
    switch (o->kind) {
    case CLI_OPT_FLAG:
        *(int *)o->target = 1;
        return 0;
    case CLI_OPT_STRING:
        *(const char **)o->target = value;
        return 0;
    case CLI_OPT_INT: {
        errno = 0;
        long v = strtol(value, &end, 10);
        if (end != value && *end == '\0' && errno == 0 && v >= -2147483647L - 1 &&
            v <= 2147483647L) {
            *(int *)o->target = (int)v;
            return 0;
        }
        cli_usage_error(cmd, "--%s needs an integer, not '%s'", o->name, value);
        return -1;
    }
    case CLI_OPT_U64:
        if (parse_u64(value, (uint64_t *)o->target) == 0)
            return 0;
        cli_usage_error(cmd, "--%s needs a whole number from 0 to 2^64 - 1 "
                             "(18446744073709551615), not '%s'", o->name, value);
        return -1;
    case CLI_OPT_DOUBLE: {
        double v = strtod(value, &end);
        if (end != value && *end == '\0' && isfinite(v)) {
            *(double *)o->target = v;
            return 0;
        }
        cli_usage_error(cmd, "--%s needs a number, not '%s'", o->name, value);
        return -1;
    }
    }
    return -1;
}

static const cli_option *find_long(const cli_option *opts, const cli_option *common,
                                   const char *name, size_t len)
{
    const cli_option *tables[2] = {opts, common};
    for (int t = 0; t < 2; t++)
        for (const cli_option *o = tables[t]; o != NULL && o->name != NULL; o++)
            if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
                return o;
    return NULL;
}

static const cli_option *find_short(const cli_option *opts, const cli_option *common, char c)
{
    const cli_option *tables[2] = {opts, common};
    for (int t = 0; t < 2; t++)
        for (const cli_option *o = tables[t]; o != NULL && o->name != NULL; o++)
            if (o->short_name == c)
                return o;
    return NULL;
}

/* Checks the raw common options and fills *common; returns CLI_PARSED or CLI_EXIT_USAGE. */
static int finish_common(const cli_command *cmd, const common_raw *raw, cli_common *common)
{
    common->command = cmd->name;
    common->mode = CLI_THREADS;
    if (raw->mode != NULL) {
        if (strcmp(raw->mode, "sequential") == 0)
            common->mode = CLI_SEQUENTIAL;
        else if (strcmp(raw->mode, "threads") == 0)
            common->mode = CLI_THREADS;
        else if (strcmp(raw->mode, "processes") == 0)
            common->mode = CLI_PROCESSES;
        else
            return cli_usage_error(cmd,
                                   "--mode must be sequential, threads or processes, not '%s'",
                                   raw->mode);
    }
    common->workers = 0;
    if (raw->workers_given) {
        if (raw->workers < 1 || raw->workers > 1024)
            return cli_usage_error(cmd, "--workers must be between 1 and 1024, not %d",
                                   raw->workers);
        common->workers = raw->workers;
    }
    if (raw->progress && raw->no_progress)
        return cli_usage_error(cmd, "--progress and --no-progress exclude each other");
    common->progress = raw->progress ? 1 : raw->no_progress ? 0 : -1;
    common->json = raw->json;
    common->timeline = raw->timeline;
    common->trace = raw->trace;
    if ((common->timeline && !*common->timeline) || (common->trace && !*common->trace))
        return cli_usage_error(cmd, "--timeline and --trace need a file name");
    return CLI_PARSED;
}

int cli_parse(const cli_command *cmd, int argc, char **argv, cli_common *common,
              const cli_option *opts, int *n_args)
{
    common_raw raw = {0};
    cli_option table[10];
    common_table(cmd, table, &raw);
    /* Positional arguments are compacted into argv[1 ..): entries already read are the
     * only ones overwritten, since kept <= i. */
    int kept = 1;
    int only_args = 0;

    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (only_args || a[0] != '-' || a[1] == '\0') {
            argv[kept++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_args = 1;
            continue;
        }
        const cli_option *o = NULL;
        const char *value = NULL;
        if (a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            o = find_long(opts, table, name, len);
            if (o == NULL)
                return cli_usage_error(cmd, "unknown option '--%.*s'", (int)len, name);
            if (eq != NULL) {
                if (o->kind == CLI_OPT_FLAG)
                    return cli_usage_error(cmd, "--%s takes no value", o->name);
                value = eq + 1;
            }
        } else {
            /* Short options may be grouped (-hq); a value may follow its letter (-n5). */
            for (const char *c = a + 1; *c != '\0'; c++) {
                o = find_short(opts, table, *c);
                if (o == NULL)
                    return cli_usage_error(cmd, "unknown option '-%c'", *c);
                if (o->kind != CLI_OPT_FLAG) {
                    if (c[1] != '\0')
                        value = c + 1;
                    break;
                }
                store(cmd, o, NULL);
            }
            if (o->kind == CLI_OPT_FLAG)
                continue;
        }
        if (o->kind == CLI_OPT_FLAG) {
            store(cmd, o, NULL);
            continue;
        }
        if (value == NULL) {
            if (i + 1 >= argc)
                return cli_usage_error(cmd, "--%s needs a value (%s)", o->name, o->metavar);
            value = argv[++i];
        }
        if (store(cmd, o, value) != 0)
            return CLI_EXIT_USAGE;
        if (o->target == &raw.workers)
            raw.workers_given = 1;
    }

    if (raw.help) {
        print_help(cmd, opts, table);
        return CLI_EXIT_OK;
    }
    int n = kept - 1;
    if (n > 0 && (n_args == NULL || cmd->args == NULL))
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[1]);
    if (n_args != NULL)
        *n_args = n;
    return finish_common(cmd, &raw, common);
}

/* ---- main ---------------------------------------------------------------------------------- */

static void print_top_usage(FILE *out)
{
    fprintf(out, "Usage: cfutures COMMAND [options]\n"
                 "       cfutures COMMAND --help\n"
                 "\nThe classic workloads, run sequentially, on a thread pool or on a process "
                 "pool,\ntimed (cfutures library %s).\n\nCommands:\n",
            cf_version());
    for (size_t i = 0; i < N_COMMANDS; i++) {
        char why[PATH_MAX + 256];
        const cli_command *cmd = cli_find_command(commands[i].name, why, sizeof why);
        fprintf(out, "  %-12s %s\n", commands[i].name, cmd ? cmd->summary : why);
    }
    fprintf(out, "\nThe workloads (sleep, sum, download, images) take --mode "
                 "sequential|threads|processes,\n--workers N, --json, --timeline FILE.svg, "
                 "--trace FILE.json and --progress; see\n'cfutures COMMAND --help' for what "
                 "each command takes.\n");
}

int main(int argc, char **argv)
{
    /* First: in a process pool's worker, this runs the worker and never returns.  A worker
     * runs it with SIGINT ignored: a terminal's Ctrl-C reaches the whole process group,
     * and the parent, which catches it, stops the run and its workers (run.c).  The
     * parent gets its own disposition back. */
    struct sigaction ignore = {.sa_handler = SIG_IGN}, before;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGINT, &ignore, &before);
    int rc = cf_init(&argc, &argv);
    sigaction(SIGINT, &before, NULL);
    if (rc != 0)
        return cli_fail("init", "cf_init: %s", cf_strerror(rc));

    if (argc < 2) {
        print_top_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        print_top_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0) {
        printf("cfutures %s\n", cf_version());
        return CLI_EXIT_OK;
    }
    char why[PATH_MAX + 256];
    const cli_command *cmd = cli_find_command(name, why, sizeof why);
    if (cmd != NULL) {
        cli_common common = {0};
        return cmd->run(argc - 1, argv + 1, &common);
    }
    fprintf(stderr, "cfutures: %s\n", why);
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0)
            return CLI_EXIT_FAILED; /* a known command whose module did not load */
    print_top_usage(stderr);
    return CLI_EXIT_USAGE;
}
