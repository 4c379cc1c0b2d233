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
 * Speed: a running sum makes each pass cost the same for any sigma, and the whole blur is
 * one sweep down the image that stays in cache: row y of vertical pass k needs rows
 * y - l - 1 .. y + l + 1 of pass k - 1, so each pass keeps only a ring of its last
 * 2l + 3 input rows (the first pass's ring holds copies of the image's rows), and each
 * finished row goes through the horizontal passes at once and back into the image.  That
 * in-place write is safe because the image's row y was copied into the first ring before
 * the sweep got that far.  Measured on the largest default photo (5640x3172), one
 * thread: 0.40 s, where whole-image passes through a second image buffer took 0.43 s and
 * 54 MB more memory per task (bit-identical results).  Vertical passes work a whole row at a
 * time (independent columns: the compiler vectorises them); horizontal passes work one row
 * in a padded copy, through prefix sums so that they vectorise too (horizontal_pass).  The
 * row loops are compiled for AVX2 as well as for the baseline.  Back to back on an image of
 * that size (random pixels, best of 5 runs, one thread): 0.30-0.36 s, where running sums
 * along rows, baseline only, took 0.61-0.64 s, with bit-identical results.
 *
 * Invariants: no state outside a call; memory: passes rings of 2l + 3 rows, passes rows
 * of running sums, two padded rows and a padded row of prefix sums.
 */
#include "blur.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The row loops, compiled twice: for AVX2 (8 lanes, a 32-bit multiply in one instruction)
 * and for the baseline (SSE2), the better chosen at load time.  Not under ThreadSanitizer,
 * whose instrumented choice runs while the loader relocates, before its runtime exists. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__SANITIZE_THREAD__)
#define ROW_LOOPS __attribute__((target_clones("avx2", "default")))
#else
#define ROW_LOOPS
#endif

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

/* One vertical pass of the sweep: its input rows in a ring, and its running sums. */
typedef struct stage {
    uint8_t *ring;  /* ring_rows rows of n samples: input row j at slot j % ring_rows */
    uint32_t *sum;  /* n sums of the input rows next - l .. next + l (edges repeated) */
    long have;      /* input rows 0 .. have - 1 have arrived */
    long next;      /* the next row this pass outputs */
} stage;

typedef struct sweep {
    const box *b;
    stage *st;        /* passes stages: stage 0 reads the image's rows */
    int passes;
    long n, ring_rows, height, stride;
    int width, bands;
    uint8_t *image;
    uint8_t *row;     /* the last pass's output row, before the horizontal passes */
    uint8_t *pad0, *pad1;
    uint32_t *prefix; /* a padded row's prefix sums */
} sweep;

static const uint8_t *input_row(const sweep *w, const stage *s, long j)
{
    j = j < 0 ? 0 : j >= w->height ? w->height - 1 : j;
    return s->ring + (j % w->ring_rows) * w->n;
}

static void produce(sweep *w, int k);
static void horizontal_passes(const uint8_t *src, uint8_t *dst, int width, int bands, box b,
                              int passes, uint8_t *pad0, uint8_t *pad1, uint32_t *prefix);

/* Makes input rows up to `upto` (or the last row) of stage k arrive. */
static void feed(sweep *w, int k, long upto)
{
    stage *s = &w->st[k];
    if (upto >= w->height)
        upto = w->height - 1;
    while (s->have <= upto) {
        if (k == 0)
            memcpy(s->ring + (s->have % w->ring_rows) * w->n, w->image + s->have * w->stride,
                   (size_t)w->n);
        else
            produce(w, k - 1);
        s->have++;
    }
}

/* Computes the next output row of stage k into the next stage's ring, or, for the last
 * stage, through the horizontal passes into the image. */
ROW_LOOPS static void produce(sweep *w, int k)
{
    stage *s = &w->st[k];
    const box b = *w->b;
    long y = s->next, n = w->n;
    feed(w, k, y + b.l + 1);
    uint32_t *restrict sum = s->sum;
    if (y == 0) {
        for (long x = 0; x < n; x++)
            sum[x] = 0;
        for (long j = -b.l; j <= b.l; j++) {
            const uint8_t *restrict r = input_row(w, s, j);
            for (long x = 0; x < n; x++)
                sum[x] += r[x];
        }
    }
    uint8_t *restrict out = k + 1 < w->passes
                                ? w->st[k + 1].ring + (y % w->ring_rows) * n
                                : w->row;
    const uint8_t *restrict before = input_row(w, s, y - b.l - 1);
    const uint8_t *restrict after = input_row(w, s, y + b.l + 1);
    const uint8_t *restrict first = input_row(w, s, y - b.l);
    for (long x = 0; x < n; x++) {
        out[x] = (uint8_t)((b.w * sum[x] + b.f * ((uint32_t)before[x] + after[x]) + HALF) >> 16);
        sum[x] += (uint32_t)after[x] - first[x];
    }
    s->next++;
    if (k + 1 == w->passes)
        horizontal_passes(w->row, w->image + y * w->stride, w->width, w->bands, b, w->passes,
                          w->pad0, w->pad1, w->prefix);
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

/*
 * One horizontal pass from the padded row `in` into the interior of the padded row `out`.
 * A running sum along the row is one long dependency chain, and with pixels of three
 * interleaved bands it does not vectorise; so the pass first takes prefix sums per band
 * (q[j] = in[j] + q[j - bands], a cheap chain of adds) and then computes every output
 * from two of them, out of order, which the compiler vectorises: the box sum of the pixel
 * at element e is q[e + l * bands] - q[e - (l + 1) * bands].  The sums are the same as the
 * running sum's, so the result is bit-identical.
 */
static inline void horizontal_pass(const uint8_t *restrict in, uint8_t *restrict out,
                                   uint32_t *restrict q, int width, int bands, box b)
{
    long margin = b.l + 1, pixels = (long)width + 2 * margin;
    uint32_t acc[4] = {0, 0, 0, 0}; /* in registers once `bands` is a constant */
    for (long i = 0; i < pixels; i++)
        for (int c = 0; c < bands; c++)
            q[i * bands + c] = acc[c] += in[i * bands + c];
    long ahead = (long)b.l * bands, behind = margin * bands;
    for (long e = margin * bands; e < (margin + width) * bands; e++) {
        uint32_t box_sum = q[e + ahead] - q[e - behind];
        uint32_t edge = (uint32_t)in[e - behind] + in[e + behind];
        out[e] = (uint8_t)((b.w * box_sum + b.f * edge + HALF) >> 16);
    }
}

/* The horizontal passes over one row, from src to dst (which may be src). */
ROW_LOOPS static void horizontal_passes(const uint8_t *src, uint8_t *dst, int width, int bands, box b,
                              int passes, uint8_t *pad0, uint8_t *pad1, uint32_t *prefix)
{
    int margin = b.l + 1;
    size_t row_bytes = (size_t)width * bands;
    uint8_t *in = pad0, *out = pad1;
    memcpy(in + (long)margin * bands, src, row_bytes);
    for (int p = 0; p < passes; p++) {
        fill_padding(in, width, bands, margin);
        if (bands == 3) /* a constant in each call, so the band loops unroll */
            horizontal_pass(in, out, prefix, width, 3, b);
        else
            horizontal_pass(in, out, prefix, width, bands, b);
        uint8_t *t = in;
        in = out, out = t;
    }
    memcpy(dst, in + (long)margin * bands, row_bytes);
}

int blur_gaussian_u8(uint8_t *pixels, int width, int height, int bands, long stride,
                     double sigma, int passes)
{
    if (width <= 0 || height <= 0 || bands < 1 || bands > 4 || passes < 1 || !(sigma > 0))
        return 0;
    box b = box_for(sigma, passes);
    sweep w = {.b = &b, .passes = passes, .n = (long)width * bands, .ring_rows = 2L * b.l + 3,
               .height = height, .stride = stride, .width = width, .bands = bands,
               .image = pixels};
    size_t padded = ((size_t)width + 2 * ((size_t)b.l + 1)) * (size_t)bands;
    size_t rings = (size_t)passes * (size_t)w.ring_rows * (size_t)w.n;
    w.st = calloc((size_t)passes, sizeof *w.st);
    uint8_t *bytes = malloc(rings + (size_t)w.n + 2 * padded);
    uint32_t *sums = malloc(((size_t)passes * (size_t)w.n + padded) * sizeof *sums);
    int rc = ENOMEM;
    if (w.st != NULL && bytes != NULL && sums != NULL) {
        for (int k = 0; k < passes; k++) {
            w.st[k].ring = bytes + (size_t)k * (size_t)w.ring_rows * (size_t)w.n;
            w.st[k].sum = sums + (size_t)k * (size_t)w.n;
        }
        w.row = bytes + rings;
        w.pad0 = w.row + w.n;
        w.pad1 = w.pad0 + padded;
        w.prefix = sums + (size_t)passes * (size_t)w.n;
        while (w.st[passes - 1].next < height)
            produce(&w, passes - 1);
        rc = 0;
    }
    free(w.st);
    free(bytes);
    free(sums);
    return rc;
}
