/*
 * photos.c -- the default data of the images and download workloads: the photographs of
 * Debian's mate-backgrounds package (installed by scripts/setup-deps.sh).  In the program
 * itself, not in the images module, since the demo serves them for download too.
 */
#include "cli.h"

static const char *const default_photos[] = {
    "/usr/share/backgrounds/mate/nature/*.jpg",
    "/usr/share/backgrounds/mate/abstract/Elephants*.jpg",
};

int cli_default_photos(glob_t *g)
{
    int rc = 0;
    for (size_t i = 0; i < sizeof default_photos / sizeof default_photos[0]; i++) {
        int r = glob(default_photos[i], i > 0 ? GLOB_APPEND : 0, NULL, g);
        if (r != GLOB_NOMATCH)
            rc = r;
    }
    return rc;
}
