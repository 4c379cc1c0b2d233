/*
 * blur.c -- Gaussian blur of 8-bit images by extended box filters (Gwosdek, Grewenig, Bruhn
 * and Weickert, "Theoretical foundations of Gaussian convolution by extended box
 * filtering", 2011): the filter Pillow's ImageFilter.GaussianBlur uses, so that
 * `cfutures images` gives what the Python tutorial gives.
 *
 * Why not libvips' own blur: on the 15 default photos (65.7 megapixels), one thread,
 * vips_gaussblur took 11.1 s with its approximate (box) precision and far longer with the
 * others, where Pillow's blur took 3.6 s; blurring is most of the subcommand's work, so it
 * set the subcommand's speed.  libvips still reads, converts, resizes and writes.
 *
 * The filter: per axis, `passes` times, out[i] = (sum of in[i-l .. i+l] + a * (in[i-l-1] +
 * in[i+l+1])) / (2l + 1 + 2a), where l + a is the radius whose box variance, summed over
 * the passes, is sigma^2 (the paper's formula).  Weights are 16-bit fixed point, inner
 * weight w and edge weight f with (2l + 1) w + 2 f = 2^16 exactly, so a result never
 * exceeds 255; each pass rounds to 8 bits, as Pillow does.  Outside the image the edge
 * pixel repeats.
 *
 * Speed: a running sum makes each pass cost the same for any sigma.  Vertical passes
 * work a whole row at a time (independent columns, so the compiler vectorises the loop);
 * horizontal passes work one row at a time in a padded copy that stays in cache.
 *
 * Invariants: no state outside a call; memory: one row of sums and padded rows, plus one
 * image-sized buffer for the vertical passes.
 */
#include "blur.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ONE (1u << 16)
#define HALF (1u << 15)

typedef struct box {
    int l;      /* the box covers l pixels each side at full weight */
    uint32_t w; /* weight of those 2l + 1 pixels */
    uint32_t f; /* weight of the two pixels just outside, l + 1 away */
} box;

/* The extended box whose `passes`-fold repetition has variance sigma^2. */
static box box_for(double sigma, int passes)
{
    double var = sigma * sigma / passes;
    double big = sqrt(12.0 * var + 1.0);
    int l = (int)floor((big - 1.0) / 2.0);
    double a = (2 * l + 1) * (l * (l + 1) - 3.0 * var) / (6.0 * (var - (l + 1.0) * (l + 1.0)));
    box b = {.l = l};
    b.w = (uint32_t)(ONE / (2.0 * (l + a) + 1.0));
    b.f = (ONE - (uint32_t)(2 * l + 1) * b.w) / 2;
    return b;
}

static const uint8_t *row_at(const uint8_t *img, long stride, int height, long y)
{
    y = y < 0 ? 0 : y >= height ? height - 1 : y;
    return img + y * stride;
}

/* One vertical pass from src to dst (n samples per row); sum holds n running sums. */
static void vertical_pass(const uint8_t *src, uint8_t *dst, long stride, long n, int height,
                          box b, uint32_t *restrict sum)
{
    for (long x = 0; x < n; x++)
        sum[x] = 0;
    for (long k = -b.l; k <= b.l; k++) {
        const uint8_t *restrict r = row_at(src, stride, height, k);
        for (long x = 0; x < n; x++)
            sum[x] += r[x];
    }
    for (long y = 0; y < height; y++) {
        const uint8_t *restrict before = row_at(src, stride, height, y - b.l - 1);
        const uint8_t *restrict after = row_at(src, stride, height, y + b.l + 1);
        const uint8_t *restrict first = row_at(src, stride, height, y - b.l);
        uint8_t *restrict out = dst + y * stride;
        for (long x = 0; x < n; x++) {
            out[x] = (uint8_t)((b.w * sum[x] + b.f * ((uint32_t)before[x] + after[x]) + HALF) >> 16);
            sum[x] += (uint32_t)after[x] - first[x];
        }
    }
}

/* Repeats the first and last pixel of the row at pad[margin * bands ..] into the margin
 * pixels before and after it. */
static void fill_padding(uint8_t *pad, int width, int bands, int margin)
{
    uint8_t *row = pad + (long)margin * bands;
    for (int i = 0; i < margin; i++) {
        memcpy(pad + (long)i * bands, row, (size_t)bands);
        memcpy(row + (long)(width + i) * bands, row + (long)(width - 1) * bands, (size_t)bands);
    }
}

/* One horizontal pass from the padded row `in` into the interior of the padded row `out`.
 * `bands` is a constant in each caller after inlining, so the channel loop unrolls. */
static inline void horizontal_pass(const uint8_t *restrict in, uint8_t *restrict out,
                                   int width, int bands, box b)
{
    int margin = b.l + 1;
    uint32_t sum[4] = {0, 0, 0, 0};
    const uint8_t *centre = in + (long)margin * bands;
    for (int k = -b.l; k <= b.l; k++)
        for (int c = 0; c < bands; c++)
            sum[c] += centre[(long)k * bands + c];
    uint8_t *dst = out + (long)margin * bands;
    for (long i = 0; i < width; i++) {
        const uint8_t *p = centre + i * bands;
        for (int c = 0; c < bands; c++) {
            uint32_t edge = (uint32_t)p[(long)-margin * bands + c] + p[(long)margin * bands + c];
            dst[i * bands + c] = (uint8_t)((b.w * sum[c] + b.f * edge + HALF) >> 16);
            sum[c] += (uint32_t)p[(long)margin * bands + c] - p[(long)-b.l * bands + c];
        }
    }
}

/* The horizontal passes from src to dst (which may be src), one row at a time. */
static void horizontal_passes(const uint8_t *src, uint8_t *dst, long stride, int width,
                              int height, int bands, box b, int passes, uint8_t *pad0,
                              uint8_t *pad1)
{
    int margin = b.l + 1;
    size_t row_bytes = (size_t)width * bands;
    for (long y = 0; y < height; y++) {
        uint8_t *in = pad0, *out = pad1;
        memcpy(in + (long)margin * bands, src + y * stride, row_bytes);
        for (int p = 0; p < passes; p++) {
            fill_padding(in, width, bands, margin);
            if (bands == 3)
                horizontal_pass(in, out, width, 3, b);
            else if (bands == 1)
                horizontal_pass(in, out, width, 1, b);
            else
                horizontal_pass(in, out, width, bands, b);
            uint8_t *t = in;
            in = out, out = t;
        }
        memcpy(dst + y * stride, in + (long)margin * bands, row_bytes);
    }
}

int blur_gaussian_u8(uint8_t *pixels, int width, int height, int bands, long stride,
                     double sigma, int passes)
{
    if (width <= 0 || height <= 0 || bands < 1 || bands > 4 || passes < 1 || !(sigma > 0))
        return 0;
    box b = box_for(sigma, passes);
    long n = (long)width * bands;
    size_t padded = ((size_t)width + 2 * ((size_t)b.l + 1)) * (size_t)bands;
    uint32_t *sum = malloc((size_t)n * sizeof *sum);
    uint8_t *copy = malloc((size_t)stride * (size_t)height);
    uint8_t *pad = malloc(2 * padded);
    int rc = ENOMEM;
    if (sum != NULL && copy != NULL && pad != NULL) {
        /* The vertical passes go back and forth between the image and its copy; the
         * horizontal ones, a row at a time through the padded rows, bring the result
         * home. */
        uint8_t *src = pixels, *dst = copy;
        for (int p = 0; p < passes; p++) {
            vertical_pass(src, dst, stride, n, height, b, sum);
            uint8_t *t = src;
            src = dst, dst = t;
        }
        horizontal_passes(src, pixels, stride, width, height, bands, b, passes, pad,
                          pad + padded);
        rc = 0;
    }
    free(sum);
    free(copy);
    free(pad);
    return rc;
}
