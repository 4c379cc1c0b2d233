/*
 * 08_bytes_task.c -- a bytes task: the form of task every backend can run.
 *
 * Shows: a task whose input and result are plain bytes rather than pointers.  It is named
 * with CF_FUNCTION, because workers that are other processes cannot share our addresses,
 * and submitted with cf_submit_bytes(), which copies the input -- so one buffer is reused
 * for every submission here.  The task writes its result into a buffer the library gives
 * it (cf_ctx_output), and the caller reads it with cf_future_bytes(); the bytes belong to
 * the future, so there is nothing to free but the future.  Written this way, the same task
 * will run unchanged on the process pool.
 *
 * Expected output (the order of the "Shouting" lines varies):
 *     Shouting 21 byte(s)...
 *     Shouting 28 byte(s)...
 *     Shouting 17 byte(s)...
 *     threads wait together -> THREADS WAIT TOGETHER
 *     processes keep crashes apart -> PROCESSES KEEP CRASHES APART
 *     bytes go anywhere -> BYTES GO ANYWHERE
 *     Ran on the "threads" backend
 *     Finished in 0.10 second(s)
 *
 * Exits non-zero if a call fails or a result is not its input in capitals.
 */
#include "example_util.h"

#include <ctype.h>

#define TASKS 3

/* Upper-cases its input after one unit of pretend work. */
static int shout_bytes(const void *in, size_t len, cf_ctx *ctx)
{
    printf("Shouting %zu byte(s)...\n", len);
    sleep_units(1);
    char *out = cf_ctx_output(ctx, len);
    if (out == NULL)
        return cf_fail(ctx, ENOMEM, "no memory for %zu bytes", len);
    const unsigned char *text = in;
    for (size_t i = 0; i < len; i++)
        out[i] = (char)toupper(text[i]);
    return 0;
}

/* The task's name ("shout") and function, as every backend finds it. */
CF_FUNCTION(shout, shout_bytes);

/* Whether data[0 .. len) is `text` in capitals. */
static int is_shouted(const void *data, size_t len, const char *text)
{
    if (len != strlen(text))
        return 0;
    const char *bytes = data;
    for (size_t i = 0; i < len; i++)
        if (bytes[i] != (char)toupper((unsigned char)text[i]))
            return 0;
    return 1;
}

int main(void)
{
    double start = now_seconds();

    cf_executor_opts opts;
    cf_executor_opts_init(&opts);
    opts.workers = TASKS;
    cf_executor *pool;
    check(cf_executor_new(&pool, CF_BACKEND_THREADS, &opts), "cf_executor_new");

    const char *sentences[TASKS] = {"threads wait together", "processes keep crashes apart",
                                    "bytes go anywhere"};
    cf_future *futures[TASKS];
    char buffer[64];
    for (int i = 0; i < TASKS; i++) {
        size_t len = (size_t)snprintf(buffer, sizeof buffer, "%s", sentences[i]);
        check(cf_submit_bytes(pool, &shout, buffer, len, &futures[i]), "cf_submit_bytes");
    }
    memset(buffer, '#', sizeof buffer); /* harmless: each task got its own copy */

    for (int i = 0; i < TASKS; i++) {
        const void *data;
        size_t len;
        check(cf_future_bytes(futures[i], CF_FOREVER, &data, &len), "cf_future_bytes");
        expect(is_shouted(data, len, sentences[i]), "the result is the input in capitals");
        printf("%s -> %.*s\n", sentences[i], (int)len, (const char *)data);
        cf_future_release(futures[i]);
    }
    printf("Ran on the \"%s\" backend\n", cf_executor_backend(pool));

    cf_executor_free(pool);

    print_finished(start);
    return 0;
}
