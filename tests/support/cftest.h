/*
 * cftest.h -- the test harness shared by every unit and stress test.
 *
 * Each test file is one cmocka program.  ctest registers every cmocka_unit_test(name) of a
 * file as its own entry (see cf_add_test_suite in tests/CMakeLists.txt) and runs the
 * program with the test's name as argv[1], so each test runs in its own process under its
 * own timeout.  A name that matches no test is a failure, never a silent pass.
 */
#ifndef CFTEST_H
#define CFTEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cfutures.h"

static inline int cf_test_main(int argc, char **argv, const char *group_name,
                               const struct CMUnitTest *tests, size_t count)
{
    if (argc > 1) {
        size_t i;
        for (i = 0; i < count; i++)
            if (strcmp(tests[i].name, argv[1]) == 0)
                break;
        if (i == count) {
            fprintf(stderr, "%s: no test named '%s'\n", group_name, argv[1]);
            return 2;
        }
        cmocka_set_test_filter(argv[1]);
    }
    return _cmocka_run_group_tests(group_name, tests, count, NULL, NULL);
}

/*
 * An entry of the tests array for a test that needs in-process tasks (pointer tasks,
 * nested submission, the thread pool's own properties): ctest registers it for the thread
 * pool only, while every cmocka_unit_test(name) of a suite built for several backends is
 * registered once per backend (see cf_add_test_suite).
 */
#define cf_inprocess_test(f) cmocka_unit_test(f)

/* Ends a test file: CF_TEST_MAIN(tests) where tests is the CMUnitTest array.  Every test
 * program may start process pools, whose workers are the program itself: cf_init first. */
#define CF_TEST_MAIN(tests)                                                                \
    int main(int argc, char **argv)                                                        \
    {                                                                                      \
        cf_init(&argc, &argv);                                                             \
        return cf_test_main(argc, argv, __FILE__, tests, sizeof(tests) / sizeof(tests[0])); \
    }

#endif
