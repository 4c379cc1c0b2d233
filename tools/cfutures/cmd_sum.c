/*
 * cmd_sum.c -- `cfutures sum`: the sum of the integers A..N (A = 0 by default), split into
 * ranges, one task per range: the CPU-bound workload.  Sequentially and with threads that
 * cannot run Python-style in parallel it takes the same time; with threads (C has no GIL)
 * and with processes it divides by the number of cores.
 *
 * The loop must really run: a compiler sees that sum(i for i in lo..hi) is a closed form
 * and replaces the loop with it (gcc and clang both do at -O2), which would make the time
 * constant.  An empty asm statement that claims to modify i on every iteration hides the
 * value of i from the optimizer: it can no longer know the sequence of i, so it can neither
 * use the formula nor vectorize, and the trip count is unknown, so the iteration counter
 * the task reports is a count of iterations that ran.  The asm emits no instruction, so
 * the loop costs what a plain loop costs (an add with carry, an increment, a compare).
 *
 * Exactness: the sum is accumulated in an unsigned __int128, which holds the sum of any
 * range of 64-bit integers (less than 2^64 terms, each less than 2^64), so every N the
 * options accept (up to 2^64 - 2) gives the exact result, printed in decimal.  After the
 * run the parts are added and checked against the closed form (A + N)(N - A + 1) / 2 and
 * the iteration counts against N - A + 1; a mismatch fails the run.
 */
#include "cli.h"
#include "sum_loop.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;

#define MAX_CHUNKS 1000000
#define DEFAULT_N 1000000000ULL
#define BLOCK (((uint64_t)1 << 24) - 1) /* iterations - 1 between looks at cli_interrupted() */

/* A task's input: the range [lo, hi], both included. */
typedef struct sum_input {
    uint64_t lo, hi;
} sum_input;

/* A task's result. */
typedef struct sum_result {
    uint64_t sum_low, sum_high; /* the range's sum, low and high 64 bits */
    uint64_t iterations;        /* iterations the loop ran */
} sum_result;

static int sum_work(const void *in, size_t len, cli_out *out)
{
    sum_input r;
    if (len != sizeof r)
        return cli_out_fail(out, EINVAL, "bad input (%zu bytes)", len);
    memcpy(&r, in, sizeof r);

    u128 acc = 0;
    uint64_t iterations = 0;
    /* In blocks of BLOCK + 1 iterations, between which an interrupted run stops it.  The
     * exit test reads the hidden i, so the trip count is unknown to the optimizer and
     * `iterations` is a real count (a separate down-counter would let it be computed). */
    for (uint64_t i = r.lo;; i = i + BLOCK + 1) {
        uint64_t stop = r.hi - i > BLOCK ? i + BLOCK : r.hi;
        sum_loop(i, stop, &acc, &iterations);
        if (stop == r.hi)
            break;
        if (cli_interrupted())
            return cli_out_fail(out, EINTR, "interrupted");
    }
    sum_result res = {(uint64_t)acc, (uint64_t)(acc >> 64), iterations};
    return cli_out_set(out, &res, sizeof res);
}

CLI_TASK(sum_range, sum_work);

/* Decimal digits of v into buf (at least 40 bytes). */
static const char *u128_str(u128 v, char *buf, size_t cap)
{
    char *p = buf + cap - 1;
    *p = '\0';
    do {
        *--p = (char)('0' + (int)(v % 10));
        v /= 10;
    } while (v != 0);
    return p;
}

/* The sum of a..b by the formula: one of (a + b) and (b - a + 1) is even (their sum is
 * odd), so halving it first keeps the product within 128 bits. */
static u128 closed_form(uint64_t a, uint64_t b)
{
    u128 s = (u128)a + b, count = (u128)b - a + 1;
    return s % 2 == 0 ? (s / 2) * count : s * (count / 2);
}

static int run_sum(int argc, char **argv, cli_common *common)
{
    uint64_t n = DEFAULT_N, from = 0, chunks = UINT64_MAX; /* UINT64_MAX: not given */
    const cli_option opts[] = {
        {"n", 'n', CLI_OPT_U64, &n, "N",
         "add the integers up to N, included (default: 1e9)"},
        {"from", 0, CLI_OPT_U64, &from, "A", "start at A instead of 0 (A <= N)"},
        {"chunks", 'c', CLI_OPT_U64, &chunks, "K",
         "split the range into K tasks (default: the workers)"},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    int rc = cli_parse(&cli_sum, argc, argv, common, opts, NULL);
    if (rc != CLI_PARSED)
        return rc;
    if (n == UINT64_MAX)
        return cli_usage_error(&cli_sum, "--n must be below 2^64 - 1");
    if (from > n)
        return cli_usage_error(&cli_sum, "--from (%" PRIu64 ") must not exceed --n (%" PRIu64
                                         ")", from, n);
    if (chunks == UINT64_MAX)
        chunks = common->workers > 0 ? (uint64_t)common->workers : (uint64_t)cli_cpus();
    if (chunks == 0 || chunks > MAX_CHUNKS)
        return cli_usage_error(&cli_sum, "--chunks must be between 1 and %d", MAX_CHUNKS);
    /* No empty ranges: at most one chunk per term. */
    uint64_t terms = n - from + 1;
    if (chunks > terms)
        chunks = terms;

    sum_input *ranges = calloc(chunks, sizeof *ranges);
    cf_bytes *inputs = calloc(chunks, sizeof *inputs);
    char **labels = calloc(chunks, sizeof *labels);
    char *label_text = calloc(chunks, 48);
    if (ranges == NULL || inputs == NULL || labels == NULL || label_text == NULL) {
        free(ranges);
        free(inputs);
        free(labels);
        free(label_text);
        return cli_fail(cli_sum.name, "out of memory");
    }
    uint64_t base = terms / chunks, extra = terms % chunks, lo = from;
    for (uint64_t k = 0; k < chunks; k++) {
        uint64_t count = base + (k < extra);
        ranges[k] = (sum_input){lo, lo + (count - 1)};
        inputs[k] = (cf_bytes){&ranges[k], sizeof ranges[k]};
        labels[k] = label_text + k * 48;
        snprintf(labels[k], 48, "%" PRIu64 "..%" PRIu64, ranges[k].lo, ranges[k].hi);
        lo += count;
    }

    cli_run run;
    rc = cli_run_items(&run, common, &sum_range_task, inputs, chunks);
    free(ranges);
    free(inputs);
    if (rc != 0) {
        free(labels);
        free(label_text);
        return rc;
    }

    u128 total = 0;
    uint64_t iterations = 0;
    for (size_t k = 0; k < run.n; k++) {
        sum_result res;
        if (!cli_item_result(&run.items[k], &res, sizeof res))
            continue;
        total += ((u128)res.sum_high << 64) | res.sum_low;
        iterations += res.iterations;
    }
    char sum_buf[48], expect_buf[48];
    const char *sum_s = u128_str(total, sum_buf, sizeof sum_buf);
    u128 expect = closed_form(from, n);
    int complete = run.failed == 0;
    int correct = complete && total == expect && iterations == terms;

    char text[512];
    int k = snprintf(text, sizeof text, "Sum of %" PRIu64 "..%" PRIu64 " = %s\n", from, n,
                     complete ? sum_s : "(incomplete: a chunk failed)");
    snprintf(text + k, sizeof text - (size_t)k,
             "%" PRIu64 " additions in %zu chunk%s: %s, %d worker%s\n", iterations, run.n,
             run.n == 1 ? "" : "s", cli_mode_name(common->mode), run.workers,
             run.workers == 1 ? "" : "s");
    char n_s[24], from_s[24], iter_s[24];
    snprintf(n_s, sizeof n_s, "%" PRIu64, n);
    snprintf(from_s, sizeof from_s, "%" PRIu64, from);
    snprintf(iter_s, sizeof iter_s, "%" PRIu64, iterations);
    const cli_field fields[] = {
        {.key = "from", .kind = CLI_FIELD_RAW, .str = from_s},
        {.key = "n", .kind = CLI_FIELD_RAW, .str = n_s},
        {.key = "chunks", .kind = CLI_FIELD_INT, .i = (long long)run.n},
        {.key = "sum", .kind = CLI_FIELD_RAW, .str = complete ? sum_s : "null"},
        {.key = "iterations", .kind = CLI_FIELD_RAW, .str = iter_s},
        {.key = "correct", .kind = CLI_FIELD_RAW, .str = correct ? "true" : "false"},
    };
    rc = cli_finish(common, &run, (const char *const *)labels, text, fields,
                    sizeof fields / sizeof fields[0]);
    if (complete && !correct) {
        cli_fail(cli_sum.name, "wrong result: expected %s in %" PRIu64 " additions",
                 u128_str(expect, expect_buf, sizeof expect_buf), terms);
        rc = CLI_EXIT_FAILED;
    }
    cli_run_free(&run);
    free(labels);
    free(label_text);
    return rc;
}

const cli_command cli_sum = {
    .name = "sum",
    .summary = "the sum of 0..N in ranges, one task per range (CPU-bound)",
    .args = NULL,
    .about = "Adds the integers 0..N (or A..N with --from) one by one, split into K ranges,\n"
             "one task per range, and prints the exact sum (128-bit arithmetic, so any N\n"
             "below 2^64 - 1 is exact), checked against the closed form.  The loop really\n"
             "runs N iterations (the compiler is kept from using the formula), so the time\n"
             "grows linearly with N and only more cores make it shorter: threads and\n"
             "processes both divide it by the number of CPUs.  The default number of\n"
             "workers is the number of CPUs this process may use.  Numbers may be written\n"
             "as 1000000000 or 1e9.",
    .run = run_sum,
};
