/*
 * test_process_memlimit.c -- a process pool's memory_limit (RLIMIT_AS per worker; issue #3,
 * SEMANTICS 23: a worker that dies of running out of memory costs its task only).
 *
 * Its own program because the sanitizer runtimes reserve terabytes of address space at
 * start, so a worker under an address-space limit cannot even run there: tests/CMakeLists.txt
 * builds this suite only when CF_SANITIZE is empty.
 */
#include "testutil.h"

#include <signal.h>
#include <sys/wait.h>

#define LIMIT ((size_t)256 << 20)
#define BLOCK ((size_t)8 << 20)
#define MAX_BLOCKS 48 /* 384 MiB: past the limit, but harmless if the limit did not apply */

/*
 * Allocates and touches 8 MiB blocks until malloc fails, then aborts: a task that cannot
 * get memory has nothing sensible left to do, and abort() is a definite death (a NULL
 * dereference would be undefined behaviour, not a guaranteed signal).  If malloc never fails
 * the limit was not applied: the task returns, and the test fails on its outcome.
 */
static int exhaust_fn(const void *in, size_t len, cf_ctx *ctx)
{
    (void)in;
    (void)len;
    void *blocks[MAX_BLOCKS];
    for (int i = 0; i < MAX_BLOCKS; i++) {
        blocks[i] = malloc(BLOCK);
        if (!blocks[i])
            abort();
        memset(blocks[i], 0xA5, BLOCK);
    }
    for (int i = 0; i < MAX_BLOCKS; i++)
        free(blocks[i]);
    return cf_fail(ctx, 1, "%d blocks of %zu bytes fitted under the limit", MAX_BLOCKS, BLOCK);
}

CF_FUNCTION(exhaust, exhaust_fn);
CF_FUNCTION(xor_fn, tu_bytes_xor);

static void task_past_memory_limit_is_lost_alone(void **state)
{
    (void)state;
    int fds = tu_count_fds();
    cf_executor *ex = NULL;
    cf_executor_opts o;
    cf_executor_opts_init(&o);
    o.workers = 1;
    o.memory_limit = LIMIT;
    assert_int_equal(cf_executor_new(&ex, CF_BACKEND_PROCESSES, &o), 0);

    cf_future *hog = NULL;
    assert_int_equal(cf_submit_bytes(ex, &exhaust, NULL, 0, &hog), 0);
    int code = 0;
    const char *message = NULL;
    int rc = cf_future_result(hog, TU_LONG, NULL);
    cf_future_error(hog, &code, &message);
    if (rc != CF_ELOST)
        fail_msg("the task past the limit: %s (%d, %s)", cf_err_name(rc), code,
                 message ? message : "no message");
    assert_true(WIFSIGNALED(code));
    assert_int_equal(WTERMSIG(code), SIGABRT);
    assert_non_null(message);
    char pid[24];
    snprintf(pid, sizeof pid, " %ld ", cf_future_pid(hog));
    assert_non_null(strstr(message, pid));

    /* The same pool, a new worker under the same limit: a normal task works. */
    unsigned char in[4096], expected[4096];
    tu_fill_pattern(in, sizeof in, 7);
    for (size_t i = 0; i < sizeof in; i++)
        expected[i] = in[i] ^ 0x5a;
    cf_future *f = NULL;
    assert_int_equal(cf_submit_bytes(ex, &xor_fn, in, sizeof in, &f), 0);
    const void *data = NULL;
    size_t len = 0;
    assert_int_equal(cf_future_bytes(f, TU_LONG, &data, &len), 0);
    assert_int_equal(len, sizeof in);
    assert_memory_equal(data, expected, sizeof in);
    assert_int_not_equal(cf_future_pid(f), cf_future_pid(hog));
    cf_future_release(f);
    cf_future_release(hog);
    cf_executor_free(ex);

    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1); /* no child left, live or zombie */
    assert_int_equal(errno, ECHILD);
    assert_int_equal(tu_count_fds(), fds);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(task_past_memory_limit_is_lost_alone),
};

CF_TEST_MAIN(tests)
