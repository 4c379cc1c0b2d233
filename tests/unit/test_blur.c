/*
 * test_blur.c -- the images subcommand's blur (tools/cfutures/blur.c) against a plain
 * reference: each pass a direct weighted sum over 2l + 3 taps with the edge pixels
 * repeated, in the same fixed point, vertical passes first, then horizontal ones.  The
 * streaming implementation (rings of rows, running sums, rows written back in place) must
 * give the same bytes for every shape, including images smaller than the box and a stride
 * wider than the row, and must leave the bytes between rows alone.
 */
#include "cftest.h"

#include <math.h>
#include <stdlib.h>

#include "blur.h"

typedef struct ref_box {
    int l;
    uint32_t w, f;
} ref_box;

/* The box of blur.c's contract: variance sigma^2 / passes per pass (Gwosdek et al.). */
static ref_box ref_box_for(double sigma, int passes)
{
    double var = sigma * sigma / passes;
    int l = (int)floor((sqrt(12.0 * var + 1.0) - 1.0) / 2.0);
    double a = (2 * l + 1) * (l * (l + 1) - 3.0 * var) / (6.0 * (var - (l + 1.0) * (l + 1.0)));
    ref_box b = {.l = l, .w = (uint32_t)(65536.0 / (2.0 * (l + a) + 1.0))};
    b.f = (65536u - (uint32_t)(2 * l + 1) * b.w) / 2;
    return b;
}

static int clampi(long v, int n)
{
    return v < 0 ? 0 : v >= n ? n - 1 : (int)v;
}

/* One pass along an axis: `count` samples `step` bytes apart, starting at line. */
static void ref_line(uint8_t *line, int count, long step, ref_box b, uint8_t *tmp)
{
    for (int i = 0; i < count; i++) {
        uint32_t sum = 0;
        for (int k = -b.l; k <= b.l; k++)
            sum += line[clampi(i + k, count) * step];
        uint32_t edge = (uint32_t)line[clampi(i - b.l - 1, count) * step] +
                        line[clampi(i + b.l + 1, count) * step];
        tmp[i] = (uint8_t)((b.w * sum + b.f * edge + 32768u) >> 16);
    }
    for (int i = 0; i < count; i++)
        line[i * step] = tmp[i];
}

static void ref_blur(uint8_t *img, int w, int h, int bands, long stride, double sigma,
                     int passes)
{
    ref_box b = ref_box_for(sigma, passes);
    uint8_t *tmp = malloc((size_t)(w > h ? w : h));
    assert_non_null(tmp);
    for (int p = 0; p < passes; p++)
        for (long x = 0; x < (long)w * bands; x++)
            ref_line(img + x, h, stride, b, tmp);
    for (int p = 0; p < passes; p++)
        for (int y = 0; y < h; y++)
            for (int c = 0; c < bands; c++)
                ref_line(img + y * stride + c, w, bands, b, tmp);
    free(tmp);
}

static void check_shape(int w, int h, int bands, int slack, double sigma, int passes)
{
    long stride = (long)w * bands + slack;
    size_t size = (size_t)stride * (size_t)h;
    uint8_t *got = malloc(size), *want = malloc(size);
    assert_non_null(got);
    assert_non_null(want);
    uint32_t seed = (uint32_t)(w * 7919 + h * 104729 + bands * 31 + passes);
    for (size_t i = 0; i < size; i++) {
        seed = seed * 1664525u + 1013904223u;
        got[i] = want[i] = (uint8_t)(seed >> 24);
    }
    assert_int_equal(blur_gaussian_u8(got, w, h, bands, stride, sigma, passes), 0);
    ref_blur(want, w, h, bands, stride, sigma, passes);
    for (int y = 0; y < h; y++) {
        if (memcmp(got + y * stride, want + y * stride, (size_t)stride) != 0) {
            fail_msg("%dx%d, %d bands, stride %ld, sigma %g, %d passes: row %d differs", w, h,
                     bands, stride, sigma, passes, y);
        }
    }
    free(got);
    free(want);
}

static void test_matches_reference(void **state)
{
    (void)state;
    static const int shapes[][3] = {{1, 1, 3}, {7, 3, 1}, {1, 90, 3}, {90, 1, 3}, {50, 40, 3},
                                    {33, 77, 4}, {64, 64, 2}, {301, 123, 3}};
    static const double sigmas[] = {0.5, 3.0, 15.0, 40.0};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (size_t g = 0; g < sizeof sigmas / sizeof sigmas[0]; g++)
            for (int passes = 1; passes <= 4; passes++)
                check_shape(shapes[s][0], shapes[s][1], shapes[s][2], (int)(s % 3) * 5,
                            sigmas[g], passes);
}

static void test_flat_image_stays_flat(void **state)
{
    /* The weights sum to exactly 1 in fixed point: a flat image, 255 included, keeps its
     * value (no drift, no overflow past 255). */
    (void)state;
    for (int v = 0; v <= 255; v += 51) {
        uint8_t img[40 * 30 * 3];
        memset(img, v, sizeof img);
        assert_int_equal(blur_gaussian_u8(img, 40, 30, 3, 40 * 3, 15.0, 3), 0);
        for (size_t i = 0; i < sizeof img; i++)
            assert_int_equal(img[i], v);
    }
}

static void test_spreads_like_the_gaussian(void **state)
{
    /* A bright band of 21 rows in a dark image spreads with the Gaussian's variance added
     * to the band's own, (21^2 - 1) / 12: the blurred column's standard deviation is
     * sqrt(225 + 36.7) = 16.18 for sigma 15, within 2 % (rounding each pass to 8 bits
     * trims the faint tails a little). */
    (void)state;
    enum { W = 8, H = 401, BAND = 21 };
    static uint8_t img[W * H];
    memset(img, 0, sizeof img);
    memset(img + (H / 2 - BAND / 2) * W, 255, (size_t)BAND * W);
    assert_int_equal(blur_gaussian_u8(img, W, H, 1, W, 15.0, 3), 0);
    double total = 0, moment = 0;
    for (int y = 0; y < H; y++) {
        double d = y - H / 2;
        total += img[y * W];
        moment += img[y * W] * d * d;
    }
    double sd = sqrt(moment / total), want = sqrt(225.0 + (BAND * BAND - 1) / 12.0);
    if (fabs(sd - want) > 0.02 * want)
        fail_msg("standard deviation %.3f, expected %.3f", sd, want);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_matches_reference),
    cmocka_unit_test(test_flat_image_stays_flat),
    cmocka_unit_test(test_spreads_like_the_gaussian),
};

CF_TEST_MAIN(tests)
