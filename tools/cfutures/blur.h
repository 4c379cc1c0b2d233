/*
 * blur.h -- a Gaussian blur of 8-bit images by repeated extended box filters (the images
 * subcommand's blur; see blur.c for why it is not libvips').
 */
#ifndef CFUTURES_BLUR_H
#define CFUTURES_BLUR_H

#include <stdint.h>

/*
 * Blurs the width x height image of `bands` interleaved 8-bit samples per pixel at
 * pixels (rows `stride` bytes apart) with a Gaussian of standard deviation sigma,
 * approximated by `passes` extended box filters per axis (3 makes it Pillow's
 * ImageFilter.GaussianBlur(sigma)); edges are extended by copying.  The result replaces
 * the image.  Returns 0, or ENOMEM (the image is then unchanged).  Thread safe: it touches
 * nothing but the image and memory of its own.
 */
int blur_gaussian_u8(uint8_t *pixels, int width, int height, int bands, long stride,
                     double sigma, int passes);

#endif /* CFUTURES_BLUR_H */
