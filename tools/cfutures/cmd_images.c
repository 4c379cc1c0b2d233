/*
 * cmd_images.c -- `cfutures images`: for every image in a folder, a Gaussian blur of sigma 15
 * and a thumbnail fitting 1200x1200, saved as JPEG in an output folder, with libvips: the
 * CPU-bound workload of the tutorials, whose Python form is Pillow's
 *     img = img.filter(ImageFilter.GaussianBlur(15)); img.thumbnail((1200, 1200))
 * One file is one item, sequentially, on a thread pool or on a process pool.
 *
 * Shrink on load (the default; --exact blurs at full size, as the tutorial does): a blur
 * of sigma 15 leaves no detail finer than the thumbnail shows, so a JPEG is decoded at
 * 1/shrink of its size by libjpeg's DCT scaling (libvips' "shrink" load option) and blurred
 * there with the sigma that gives the same total blur (decoded_sigma), then resized to
 * Pillow's thumbnail size (computed from the stored size), upwards if the decoded image is
 * smaller: the blurred picture has no detail interpolation could lose.  choose_shrink takes
 * the largest of 1, 2, 4, 8 that leaves the blur at least MIN_DECODED_SIGMA (3) decoded
 * pixels wide and the decoded image at least a quarter of the thumbnail's size.  Measured
 * against Pillow's full-size pipeline, JPEG encoding included, on the 15 default photos
 * and 5 JPEGs of other sizes (900x562 to 8000x4500): 1/4 (what the rule picks for sigma 15)
 * gave 41.9-48.5 dB, --exact 42.0-48.8 dB; 1/8 fell to 38.5 dB on the largest photo, whose
 * thumbnail keeps the most detail.  Other formats are decoded at full size.
 *
 * Matching Pillow (tests/cli/images checks at least 40 dB PSNR against it on real photos):
 * - Blur: Pillow's GaussianBlur(15) is three passes per axis of an extended box filter
 *   with a total variance of 15^2 (its "radius" is a standard deviation), edges extended
 *   by copying.  blur.c implements the same filter (libvips' own blur was three times
 *   slower than Pillow's on one thread: see blur.c).
 * - Size: Pillow's thumbnail rule, computed here (fit_size): never enlarge; the limiting
 *   axis gets the box size, the other the floor or the ceiling of its exact size, whichever
 *   keeps the aspect ratio closer.  vips_resize then uses Pillow's BICUBIC (Catmull-Rom,
 *   VIPS_KERNEL_CUBIC) and Pillow's reducing gap of 2 (an integer box shrink first, the
 *   cubic for the last factor of at most 2).
 * - Pixels as stored: no EXIF auto-rotation, no metadata written, JPEG quality 75 -- all
 *   as Pillow does by default.  Beyond what Pillow does: any format libvips reads is first
 *   converted to 8-bit sRGB (or grey), and an alpha channel is flattened onto white, since
 *   JPEG holds neither (Pillow refuses to save such images as JPEG).
 * - Speed: the image is decoded into memory (width x height x bands bytes; 54 MB for the
 *   largest default photo), blurred there, and resized from there.
 *
 * Invariants:
 * - Each task uses one libvips worker thread (vips_concurrency_set(1)); the pool supplies
 *   the parallelism.  VIPS_INIT runs once per process under a pthread_once: in the parent
 *   before any pool exists, and on the first task of a worker process (a fresh copy of the
 *   program).  The concurrency, like the operation cache (off: no operation repeats) and
 *   the warning handler, is process-wide, so that one call covers every thread.
 * - A failure belongs to its file: an image libvips cannot read, or cannot decode without a
 *   complaint (fail_on WARNING: truncation and the corrupt data libjpeg recovers from with
 *   a warning included), fails its item with code EIO and libvips' message; a file-system
 *   error fails it with its errno; the other items go on.
 * - No partial output: the whole image is decoded and blurred before anything is written;
 *   the JPEG is encoded in memory, written to a hidden temporary file in the output folder
 *   (same file system, so the rename is atomic) and renamed to its final name; any failure
 *   unlinks the temporary file.  A worker process that dies mid-write cannot; the parent
 *   then removes its ".NAME.part-PID-N" file (cli_remove_leftovers), as it does for the
 *   workers it kills on SIGINT / SIGTERM; and a run first removes such files of processes
 *   that are gone (cli_remove_stale: an earlier run killed with SIGKILL).
 * - Names: OUTPUT/<input name without its extension>.jpg, decided by the parent.  An item
 *   whose output name an earlier item already has fails at once (EEXIST): one run never
 *   overwrites its own output.  The output folder may not be a folder of the inputs (the
 *   thumbnails would replace the photos).
 * - libvips' error buffer is one per process, so in threads mode two items failing at once
 *   would mix their texts.  Every item runs holding vips_errors shared; a failed item runs
 *   again holding it exclusively, from a cleared buffer, and its message is that run's: the
 *   same text in every mode, at the cost of a second decode of a bad file only.  libvips'
 *   warnings (the "error in tile" flood after a decode error) are dropped: every failure is
 *   reported with its item, and stderr belongs to the progress bar.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vips/vips.h>

#include "blur.h"
#include "cli.h"

#define BLUR_SIGMA 15.0
#define BLUR_PASSES 3 /* Pillow's */
#define FIT_BOX 1200
#define JPEG_QUALITY 75
#define DEFAULT_OUTPUT "thumbnails"
#define MAX_SHRINK 8          /* libjpeg's largest DCT reduction */
#define MIN_DECODED_SIGMA 3.0 /* see "Shrink on load" */
#define MAX_UPSCALE 4.0

/* An item's result (no padding: every byte of it is sent). */
typedef struct img_result {
    int32_t width, height; /* of the input */
    int64_t out_bytes;     /* size of the JPEG written */
    int32_t shrink;        /* the decoder's reduction: 1 (full size), 2, 4 or 8 */
    int32_t unused;        /* zero */
} img_result;

/* ---- libvips, once per process ----------------------------------------------------------- */

static pthread_once_t vips_once = PTHREAD_ONCE_INIT;
static int vips_ready;           /* set by vips_setup: 1 when libvips started */
static char vips_setup_error[256];
/* Held shared by every thumbnail being made, and exclusively by a failed one made again
 * for its message: libvips' error buffer is one per process (see the design note). */
static pthread_rwlock_t vips_errors;

static void drop_log(const gchar *domain, GLogLevelFlags level, const gchar *message,
                     gpointer data)
{
    (void)domain, (void)level, (void)message, (void)data;
}

static void vips_setup(void)
{
    if (VIPS_INIT("cfutures") != 0) {
        snprintf(vips_setup_error, sizeof vips_setup_error, "libvips failed to start: %s",
                 vips_error_buffer());
        return;
    }
    /* Undone at exit, not at the end of a run: a program may run the subcommand more than
     * once (the demo does), and libvips cannot start again after vips_shutdown. */
    atexit(vips_shutdown);
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    /* A failed item waiting to run alone must not wait for a gap between the others. */
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    if (pthread_rwlock_init(&vips_errors, &attr) != 0) {
        snprintf(vips_setup_error, sizeof vips_setup_error, "cannot make a lock: %s",
                 strerror(errno));
        return;
    }
    pthread_rwlockattr_destroy(&attr);
    vips_concurrency_set(1);
    vips_cache_set_max(0);
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING, drop_log, NULL);
    vips_ready = 1;
}

/* libvips' error text, newlines turned into "; ", and the buffer cleared. */
static void vips_message(char *buf, size_t cap)
{
    char *text = vips_error_buffer_copy();
    size_t k = 0;
    for (const char *p = text != NULL ? text : ""; *p && k + 3 < cap; p++) {
        if (*p != '\n')
            buf[k++] = *p;
        else if (p[1] != '\0')
            buf[k++] = ';', buf[k++] = ' ';
    }
    buf[k] = '\0';
    if (k == 0)
        snprintf(buf, cap, "libvips failed without a message");
    g_free(text);
}

/* ---- one image ------------------------------------------------------------------------------ */

/* Pillow's Image.thumbnail size for a w x h image in a box x box square. */
static void fit_size(int w, int h, int box, int *fit_w, int *fit_h)
{
    *fit_w = w, *fit_h = h;
    if (w <= box && h <= box)
        return;
    double aspect = (double)w / h;
    if (1.0 >= aspect) { /* the height limits: the width follows */
        double x = (double)box * aspect, lo = floor(x), hi = ceil(x);
        double n = fabs(aspect - lo / box) <= fabs(aspect - hi / box) ? lo : hi;
        *fit_w = n >= 1 ? (int)n : 1;
        *fit_h = box;
    } else { /* the width limits: the height follows */
        double y = (double)box / aspect, lo = floor(y), hi = ceil(y);
        double klo = lo == 0 ? 0 : fabs(aspect - box / lo);
        double khi = hi == 0 ? 0 : fabs(aspect - box / hi);
        double n = klo <= khi ? lo : hi;
        *fit_w = box;
        *fit_h = n >= 1 ? (int)n : 1;
    }
}

/* The blur's sigma on an image decoded at 1/shrink of its size for a blur of sigma at full
 * size: decoding at 1/shrink averages shrink x shrink blocks, a box of variance
 * (shrink^2 - 1) / 12 full-size pixels^2 per axis, so the blur adds the rest. */
static double decoded_sigma(double sigma, int shrink)
{
    return sqrt(sigma * sigma - (shrink * shrink - 1) / 12.0) / shrink;
}

/* The JPEG decoder's reduction for a w x h photo (1, 2, 4 or 8): the largest that leaves
 * the blur at least MIN_DECODED_SIGMA decoded pixels wide and the decoded image at least
 * 1 / MAX_UPSCALE of the thumbnail's size (see the design note, "Shrink on load"). */
static int choose_shrink(int w, int h, double sigma)
{
    int fw, fh;
    fit_size(w, h, FIT_BOX, &fw, &fh);
    int shrink = 1;
    while (shrink < MAX_SHRINK && sigma / (2 * shrink) >= MIN_DECODED_SIGMA &&
           (double)w / (2 * shrink) * MAX_UPSCALE >= fw &&
           (double)h / (2 * shrink) * MAX_UPSCALE >= fh)
        shrink *= 2;
    return shrink;
}

/* Opens path for a sequential read that fails on any decoder warning; for a JPEG with
 * shrink-on-load (exact 0), at the reduction choose_shrink picks (*shrink; else 1). */
static VipsImage *open_image(const char *path, int exact, int *shrink)
{
    *shrink = 1;
    const char *loader = exact ? NULL : vips_foreign_find_load(path);
    if (loader != NULL && strcmp(loader, "VipsForeignLoadJpegFile") == 0) {
        VipsImage *header = vips_image_new_from_file(path, NULL);
        if (header == NULL)
            return NULL;
        *shrink = choose_shrink(header->Xsize, header->Ysize, BLUR_SIGMA);
        g_object_unref(header);
    }
    if (*shrink > 1)
        return vips_image_new_from_file(path, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                        VIPS_FAIL_ON_WARNING, "shrink", *shrink, NULL);
    return vips_image_new_from_file(path, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                    VIPS_FAIL_ON_WARNING, NULL);
}

/* Reads, blurs and thumbnails the image at path and encodes the JPEG into *jpeg (g_free it);
 * exact: at full size, else decoded at a reduced scale (open_image).  Returns 0, or -1
 * with libvips' error buffer saying why. */
static int make_thumbnail(const char *path, int exact, img_result *res, void **jpeg,
                          size_t *jpeg_len)
{
    VipsImage *t[6] = {NULL};
    int rc = -1, shrink;

    if (!(t[0] = open_image(path, exact, &shrink)))
        goto done;
    VipsImage *img = t[0];
    /* The full size: the loader's header (a JPEG decoded at 1/shrink keeps the stored
     * size in no field of the image, so the header is read again: it is cheap). */
    int w = img->Xsize, h = img->Ysize;
    if (shrink > 1) {
        VipsImage *header = vips_image_new_from_file(path, NULL);
        if (header == NULL)
            goto done;
        w = header->Xsize, h = header->Ysize;
        g_object_unref(header);
    }
    res->width = w, res->height = h, res->shrink = shrink;
    if (vips_colourspace(img, &t[1],
                         img->Bands < 3 ? VIPS_INTERPRETATION_B_W : VIPS_INTERPRETATION_sRGB,
                         NULL))
        goto done;
    img = t[1];
    if (vips_image_hasalpha(img)) {
        VipsArrayDouble *white = vips_array_double_newv(1, 255.0);
        int bad = vips_flatten(img, &t[2], "background", white, NULL);
        vips_area_unref(VIPS_AREA(white));
        if (bad)
            goto done;
        img = t[2];
    }
    if (vips_image_get_format(img) != VIPS_FORMAT_UCHAR) { /* a float or 16-bit file */
        if (vips_cast_uchar(img, &t[5], NULL))
            goto done;
        img = t[5];
    }
    /* Decoded into memory, then blurred there (blur.c). */
    if (!(t[3] = vips_image_copy_memory(img)))
        goto done;
    img = t[3];
    if (blur_gaussian_u8(VIPS_IMAGE_ADDR(img, 0, 0), img->Xsize, img->Ysize, img->Bands,
                         (long)VIPS_IMAGE_SIZEOF_LINE(img), decoded_sigma(BLUR_SIGMA, shrink),
                         BLUR_PASSES) != 0) {
        vips_error("cfutures", "out of memory for blurring a %dx%d image", img->Xsize,
                   img->Ysize);
        goto done;
    }

    int fw, fh;
    fit_size(w, h, FIT_BOX, &fw, &fh);
    if (fw != img->Xsize || fh != img->Ysize) {
        if (vips_resize(img, &t[4], (double)fw / img->Xsize, "vscale", (double)fh / img->Ysize,
                        "kernel", VIPS_KERNEL_CUBIC, "gap", 2.0, NULL))
            goto done;
        img = t[4];
    }
    if (vips_jpegsave_buffer(img, jpeg, jpeg_len, "Q", JPEG_QUALITY, "strip", TRUE, NULL))
        goto done;
    rc = 0;

done:
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (t[i] != NULL)
            g_object_unref(t[i]);
    return rc;
}

/* Writes data to dir/name through a hidden temporary file renamed into place.  Returns 0,
 * or an errno value with msg saying what failed; nothing is left behind on failure. */
static int write_atomically(const char *dir, const char *name, const void *data, size_t len,
                            char *msg, size_t cap)
{
    char tmp[PATH_MAX], final[PATH_MAX];
    const char *step = "creating a temporary file for";
    int fd = -1, err = 0;
    int k = snprintf(final, sizeof final, "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= sizeof final)
        err = ENAMETOOLONG;
    if (err == 0 && (fd = cli_open_temporary(dir, name, tmp, sizeof tmp)) < 0)
        err = errno;
    if (fd >= 0) {
        step = "writing";
        const char *p = data;
        size_t left = len;
        while (left > 0 && err == 0) {
            ssize_t w = write(fd, p, left);
            if (w > 0)
                p += w, left -= (size_t)w;
            else if (w == 0)
                err = EIO;
            else if (errno != EINTR)
                err = errno;
        }
        if (close(fd) != 0 && err == 0)
            err = errno;
        if (err == 0 && rename(tmp, final) != 0) {
            step = "renaming the temporary file to";
            err = errno;
        }
        if (err != 0)
            unlink(tmp);
    }
    if (err != 0)
        snprintf(msg, cap, "%s %.240s/%.120s: %s", step, dir, name, strerror(err));
    return err;
}

/* An item's input: four NUL-terminated strings -- the output folder, the input file, the
 * output file name, and the reason the item is refused ("" when it is not). */
enum { IN_DIR, IN_PATH, IN_NAME, IN_REFUSAL, IN_EXACT, IN_STRINGS };

static int images_work(const void *in, size_t len, cli_out *out)
{
    const char *s[IN_STRINGS];
    const char *p = in, *end = p + len;
    for (int i = 0; i < IN_STRINGS; i++) {
        const char *nul = p < end ? memchr(p, '\0', (size_t)(end - p)) : NULL;
        if (nul == NULL)
            return cli_out_fail(out, EINVAL, "malformed item input (%zu bytes)", len);
        s[i] = p;
        p = nul + 1;
    }
    if (*s[IN_REFUSAL] != '\0')
        return cli_out_fail(out, EEXIST, "%s", s[IN_REFUSAL]);

    pthread_once(&vips_once, vips_setup);
    if (!vips_ready)
        return cli_out_fail(out, EIO, "%s", vips_setup_error);

    img_result res = {0};
    void *jpeg = NULL;
    size_t jpeg_len = 0;
    int exact = *s[IN_EXACT] != '\0';
    pthread_rwlock_rdlock(&vips_errors);
    int failed = make_thumbnail(s[IN_PATH], exact, &res, &jpeg, &jpeg_len);
    pthread_rwlock_unlock(&vips_errors);
    if (failed) {
        /* Again, alone, so that the message is this file's and only this file's, the same
         * in every mode. */
        pthread_rwlock_wrlock(&vips_errors);
        vips_error_clear();
        failed = make_thumbnail(s[IN_PATH], exact, &res, &jpeg, &jpeg_len);
        if (failed)
            vips_message(out->message, sizeof out->message);
        pthread_rwlock_unlock(&vips_errors);
        if (failed)
            return EIO;
    }
    res.out_bytes = (int64_t)jpeg_len;
    int err = write_atomically(s[IN_DIR], s[IN_NAME], jpeg, jpeg_len, out->message,
                               sizeof out->message);
    g_free(jpeg);
    if (err != 0)
        return err;
    return cli_out_set(out, &res, sizeof res) == 0
               ? 0
               : cli_out_fail(out, ENOMEM, "out of memory for the result");
}

CLI_TASK(blur_thumbnail, images_work);

/* ---- the parent: listing, naming, the run ------------------------------------------------ */

typedef struct input_file {
    const char *path;
    off_t size;
} input_file;

/* Larger files first, then by name.  A file's size stands for its work: started last, the
 * largest photo would run alone at the end while the other workers idle. */
static int larger_first(const void *a, const void *b)
{
    const input_file *x = a, *y = b;
    if (x->size != y->size)
        return x->size > y->size ? -1 : 1;
    return strcmp(x->path, y->path);
}

/* Lists the inputs: the regular files of in_dir (symbolic links followed, hidden names
 * skipped), or the default photos when in_dir is NULL; largest first (larger_first).
 * *files gets pointers into *g (free both).  Returns 0, or -1 when out of memory. */
static int find_inputs(const char *in_dir, glob_t *g, const char ***files, size_t *n)
{
    int rc = 0;
    if (in_dir != NULL) {
        /* The folder's name is taken literally: its pattern characters are escaped. */
        char *pattern = malloc(2 * strlen(in_dir) + 3), *p = pattern;
        if (pattern == NULL)
            return -1;
        for (const char *c = in_dir; *c != '\0'; c++) {
            if (strchr("*?[\\", *c) != NULL)
                *p++ = '\\';
            *p++ = *c;
        }
        strcpy(p, "/*");
        rc = glob(pattern, 0, NULL, g);
        free(pattern);
    } else {
        rc = cli_default_photos(g);
    }
    if (rc == GLOB_NOSPACE || (*files = malloc((g->gl_pathc + 1) * sizeof **files)) == NULL)
        return -1;
    input_file *found = malloc((g->gl_pathc + 1) * sizeof *found);
    if (found == NULL)
        return -1;
    *n = 0;
    for (size_t i = 0; i < g->gl_pathc; i++) {
        struct stat st;
        if (stat(g->gl_pathv[i], &st) == 0 && S_ISREG(st.st_mode))
            found[(*n)++] = (input_file){g->gl_pathv[i], st.st_size};
    }
    qsort(found, *n, sizeof *found, larger_first);
    for (size_t i = 0; i < *n; i++)
        (*files)[i] = found[i].path;
    free(found);
    return 0;
}

/* Whether out_dir is the folder of one of the inputs (the thumbnails would replace them). */
static int is_input_folder(const char *out_dir, const char *const *files, size_t n)
{
    struct stat out;
    if (stat(out_dir, &out) != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char *folder = strndup(files[i], (size_t)(strrchr(files[i], '/') - files[i]));
        struct stat st;
        int same = folder != NULL && stat(*folder ? folder : "/", &st) == 0 &&
                   st.st_dev == out.st_dev && st.st_ino == out.st_ino;
        free(folder);
        if (same)
            return 1;
    }
    return 0;
}

/* The output name of an input file: its name without the last extension, plus ".jpg". */
static char *output_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash != NULL ? slash + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t stem = dot != NULL && dot != base ? (size_t)(dot - base) : strlen(base);
    char *name;
    return asprintf(&name, "%.*s.jpg", (int)stem, base) < 0 ? NULL : name;
}

/* Builds every item's input, and its output name in names[i] (malloc'd; the caller frees
 * them, also after a failure): refusals of names an earlier item has.  Returns 0 or -1
 * (out of memory). */
static int plan_items(cf_bytes *inputs, char **names, const char *const *files, size_t n,
                      const char *dir, int exact)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        names[i] = output_name(files[i]);
        if (names[i] == NULL) {
            rc = -1;
            break;
        }
        char refusal[PATH_MAX + 64] = "";
        for (size_t j = 0; j < i; j++) {
            if (strcmp(names[j], names[i]) == 0) {
                snprintf(refusal, sizeof refusal, "same output name '%s' as %s", names[i],
                         files[j]);
                break;
            }
        }
        const char *s[IN_STRINGS] = {dir, files[i], names[i], refusal, exact ? "1" : ""};
        size_t len = 0;
        for (int k = 0; k < IN_STRINGS; k++)
            len += strlen(s[k]) + 1;
        char *buf = malloc(len), *at = buf;
        if (buf == NULL) {
            rc = -1;
            break;
        }
        for (int k = 0; k < IN_STRINGS; k++) {
            size_t len_k = strlen(s[k]) + 1;
            memcpy(at, s[k], len_k);
            at += len_k;
        }
        inputs[i] = (cf_bytes){buf, len};
    }
    return rc;
}

/* Runs the items and prints the summary; returns the exit status. */
static int process_all(cli_common *common, const char *const *files, size_t n,
                       const char *source, const char *dir, int exact)
{
    cf_bytes *inputs = calloc(n, sizeof *inputs);
    char **names = calloc(n, sizeof *names);
    cli_run run = {0};
    int status = CLI_EXIT_FAILED;
    if (inputs == NULL || names == NULL || plan_items(inputs, names, files, n, dir, exact) != 0) {
        cli_fail("images", "out of memory");
    } else {
        /* CPU-bound: a worker per CPU, and no more workers than images. */
        if (common->workers == 0)
            common->workers = (size_t)cli_cpus() < n ? cli_cpus() : (int)n;
        for (size_t i = 0; i < n; i++) /* what an earlier run killed left behind */
            cli_remove_stale(dir, names[i]);
        if (cli_run_items(&run, common, &blur_thumbnail_task, inputs, n) == 0) {
            for (size_t i = 0; i < n; i++)
                cli_remove_leftovers(dir, names[i], &run.items[i]);
            double pixels = 0, bytes = 0;
            size_t at_scale[MAX_SHRINK + 1] = {0};
            /* "decoded_at": {file: reduction} of the items that succeeded. */
            char *scales = NULL;
            size_t scales_len = 0;
            FILE *js = open_memstream(&scales, &scales_len);
            if (js != NULL)
                fputc('{', js);
            for (size_t i = 0; i < n; i++) {
                img_result r;
                if (!cli_item_result(&run.items[i], &r, sizeof r))
                    continue;
                pixels += (double)r.width * r.height;
                bytes += (double)r.out_bytes;
                if (r.shrink >= 1 && r.shrink <= MAX_SHRINK)
                    at_scale[r.shrink]++;
                if (js != NULL) {
                    fputs(at_scale[0]++ ? ", " : "", js);
                    cli_json_string(js, files[i]);
                    fprintf(js, ": %d", (int)r.shrink);
                }
            }
            if (js == NULL || (fputc('}', js), fclose(js)) != 0) {
                free(scales);
                scales = NULL;
            }
            char decoded[128] = "", *d = decoded;
            for (int k = 1; k <= MAX_SHRINK; k++) {
                if (at_scale[k] == 0)
                    continue;
                d += snprintf(d, sizeof decoded - (size_t)(d - decoded), "%s%zu at %s%.0d",
                              d == decoded ? "" : ", ", at_scale[k], k == 1 ? "full size" : "1/",
                              k == 1 ? 0 : k);
            }
            char *size = g_format_size_full((guint64)bytes, G_FORMAT_SIZE_IEC_UNITS);
            char text[2 * PATH_MAX + 384];
            snprintf(text, sizeof text,
                     "Blurred (sigma %g) and thumbnailed (fit %dx%d) %zu of %zu image(s) from "
                     "%s into %s with %s (%d worker%s): %.1f megapixels read, %s of JPEG "
                     "written\nDecoded %s\n",
                     BLUR_SIGMA, FIT_BOX, FIT_BOX, n - run.failed, n, source, dir,
                     cli_mode_name(common->mode), run.workers, run.workers == 1 ? "" : "s",
                     pixels / 1e6, size, *decoded ? decoded : "none");
            g_free(size);
            const cli_field fields[] = {
                {"input", CLI_FIELD_STRING, source, 0, 0},
                {"output", CLI_FIELD_STRING, dir, 0, 0},
                {"sigma", CLI_FIELD_NUMBER, NULL, 0, BLUR_SIGMA},
                {"fit", CLI_FIELD_INT, NULL, FIT_BOX, 0},
                {"exact", CLI_FIELD_RAW, exact ? "true" : "false", 0, 0},
                {"megapixels", CLI_FIELD_NUMBER, NULL, 0, pixels / 1e6},
                {"bytes", CLI_FIELD_INT, NULL, (long long)bytes, 0},
                {"decoded_at", CLI_FIELD_RAW, scales != NULL ? scales : "{}", 0, 0},
            };
            status = cli_finish(common, &run, files, text, fields,
                                sizeof fields / sizeof fields[0]);
            free(scales);
        }
    }
    cli_run_free(&run);
    for (size_t i = 0; i < n; i++) {
        if (inputs != NULL)
            free((void *)inputs[i].data);
        if (names != NULL)
            free(names[i]);
    }
    free(inputs);
    free(names);
    return status;
}

static int run_images(int argc, char **argv, cli_common *common);

const cli_command cli_images = {
    "images",
    "blur and thumbnail photos with libvips (CPU-bound: processes and threads help)",
    NULL,
    "For every image in the input folder (its regular files; hidden ones skipped): a\n"
    "Gaussian blur of sigma 15 and a thumbnail fitting 1200x1200 (never enlarged), saved\n"
    "as OUTPUT/<name>.jpg with libvips -- the picture Pillow's\n"
    "img.filter(ImageFilter.GaussianBlur(15)); img.thumbnail((1200, 1200)) makes (at\n"
    "least 40 dB PSNR against it).  By default a JPEG is decoded at 1/2, 1/4 or 1/8 of its\n"
    "size (chosen per photo from its size, the box and sigma) and blurred there with sigma\n"
    "scaled to match: the blur removes every detail that decoding at full size would\n"
    "keep.  --exact blurs at full size, as the tutorial does.  Each\n"
    "file is one item, and each item uses one libvips thread: the pool supplies the\n"
    "parallelism.  Items go largest file first (then by name), so that no big photo\n"
    "starts last and runs alone.  A file libvips cannot read or decode without a warning\n"
    "(not an image, corrupt, truncated) fails alone, with code 5 (EIO), and leaves no output\n"
    "file; a file whose output name an earlier item already has fails at once (code 17,\n"
    "EEXIST).  Without --input: the 15 photographs of Debian's mate-backgrounds package\n"
    "(nature/*.jpg and abstract/Elephants*.jpg under /usr/share/backgrounds/mate).\n"
    "Default workers: one per CPU, at most one per image.",
    run_images,
    0,    /* every common option */
    NULL, /* the exit statuses of the commands that run items */
};

static int run_images(int argc, char **argv, cli_common *common)
{
    const char *input = NULL;
    const char *output = DEFAULT_OUTPUT;
    int exact = 0;
    const cli_option opts[] = {
        {"input", 'i', CLI_OPT_STRING, &input, "DIR",
         "folder of images (default: mate-backgrounds' 15 photos)"},
        {"output", 'o', CLI_OPT_STRING, &output, "DIR",
         "folder for the JPEGs, created if missing (default: " DEFAULT_OUTPUT ")"},
        {"exact", 0, CLI_OPT_FLAG, &exact, NULL,
         "blur at full size, as the Python tutorial does (default: decode JPEGs at a "
         "reduced scale)"},
        {NULL, 0, 0, NULL, NULL, NULL},
    };
    int status = cli_parse(&cli_images, argc, argv, common, opts, NULL);
    if (status != CLI_PARSED)
        return status;
    if (*output == '\0')
        return cli_usage_error(&cli_images, "--output needs a folder name");
    if (input != NULL && *input == '\0')
        return cli_usage_error(&cli_images, "--input needs a folder name");

    char *in_dir = NULL, *out_dir = NULL;
    glob_t found = {0};
    const char **files = NULL;
    size_t n = 0;
    DIR *d = NULL;
    if (input != NULL &&
        ((in_dir = realpath(input, NULL)) == NULL || (d = opendir(in_dir)) == NULL)) {
        status = cli_fail("images", "input folder %s: %s", input, strerror(errno));
        goto done;
    }
    if (d != NULL)
        closedir(d);
    if (find_inputs(in_dir, &found, &files, &n) != 0) {
        status = cli_fail("images", "out of memory");
        goto done;
    }
    if (n == 0) {
        status = in_dir != NULL ? cli_fail("images", "no files in %s", in_dir)
                                : cli_fail("images", "the default photos are not installed "
                                                     "(Debian package mate-backgrounds): "
                                                     "give --input DIR");
        goto done;
    }
    if (is_input_folder(output, files, n)) {
        status = cli_usage_error(&cli_images, "--output %s is a folder of the input images: "
                                              "their thumbnails would replace them", output);
        goto done;
    }
    if ((out_dir = cli_output_folder(output)) == NULL) {
        status = cli_fail("images", "output folder %s: %s", output, strerror(errno));
        goto done;
    }
    /* Still single-threaded, before any pool: the place for libvips' set-up. */
    pthread_once(&vips_once, vips_setup);
    if (!vips_ready) {
        status = cli_fail("images", "%s", vips_setup_error);
        goto done;
    }
    status = process_all(common, files, n, in_dir ? in_dir : "mate-backgrounds", out_dir,
                         exact);

done:
    free(files);
    globfree(&found);
    free(in_dir);
    free(out_dir);
    return status;
}
