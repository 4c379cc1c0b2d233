/*
 * test_error.c -- the error table and the version string.
 *
 * The table under test is CF_ERRNO_MAP itself, expanded here into an array, so a code added
 * to the header is checked without touching this file: values negative, distinct and
 * numbered in table order (new codes go at the end, old values never move), each with its
 * own non-empty text and its name, and anything outside the table reported as unknown.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cfutures.h"
#include "cftest.h"

struct code {
    int value;
    int enum_value;
    const char *name;
    const char *text;
};

static const struct code codes[] = {
#define ROW(name, value, text) {value, CF_E##name, #name, text},
    CF_ERRNO_MAP(ROW)
#undef ROW
};
#define NCODES (sizeof codes / sizeof codes[0])

static void test_values_negative_distinct_in_order(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCODES; i++) {
        assert_true(codes[i].value < 0);
        assert_int_equal(codes[i].enum_value, codes[i].value);
        /* -1, -2, ...: distinct, and a new code can only be appended. */
        assert_int_equal(codes[i].value, -(int)(i + 1));
    }
}

static void test_texts_nonempty_and_distinct(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCODES; i++) {
        const char *text = cf_strerror(codes[i].value);
        assert_non_null(text);
        assert_true(text[0] != '\0');
        assert_string_equal(text, codes[i].text);
        assert_string_not_equal(text, "unknown error");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(text, cf_strerror(codes[j].value));
    }
}

static void test_names_match_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < NCODES; i++) {
        const char *name = cf_err_name(codes[i].value);
        assert_non_null(name);
        assert_true(name[0] != '\0');
        assert_string_equal(name, codes[i].name);
        assert_string_not_equal(name, "UNKNOWN");
    }
}

static void test_unknown_codes(void **state)
{
    (void)state;
    const int unknown[] = {1, 5, 22, -(int)NCODES - 1, -1000, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        assert_string_equal(cf_strerror(unknown[i]), "unknown error");
        assert_string_equal(cf_err_name(unknown[i]), "UNKNOWN");
    }
    /* Success reads as such: programs print cf_strerror(rc) whatever rc is. */
    assert_string_equal(cf_strerror(0), "success");
    assert_string_equal(cf_err_name(0), "OK");
}

static void test_version_matches_macros(void **state)
{
    (void)state;
    char want[64];
    snprintf(want, sizeof want, "%d.%d.%d", CF_VERSION_MAJOR, CF_VERSION_MINOR,
             CF_VERSION_PATCH);
    assert_non_null(cf_version());
    assert_string_equal(cf_version(), want);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_values_negative_distinct_in_order),
    cmocka_unit_test(test_texts_nonempty_and_distinct),
    cmocka_unit_test(test_names_match_table),
    cmocka_unit_test(test_unknown_codes),
    cmocka_unit_test(test_version_matches_macros),
};

CF_TEST_MAIN(tests)
