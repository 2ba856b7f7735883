/* Decoding image files for the `alexnet` example program.
 *
 * PPM (P6) and PGM (P5) with maxval 255 are always supported; PNG and JPEG when the program was built with
 * libpng (HAVE_PNG) and libjpeg (HAVE_JPEG). The format is recognised from the file's first bytes, not its
 * name. The library never touches files for images: decoding belongs to the application. */
#ifndef ALEXNET_EXAMPLES_CLI_IMAGE_H
#define ALEXNET_EXAMPLES_CLI_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "alexnet/alexnet.h"

/* A decoded image with tightly packed rows. */
typedef struct cli_image {
    uint8_t *pixels; /* malloc'd; width x height x bytes per pixel */
    uint32_t width, height;
    alexnet_pixel_format format; /* RGB8, RGBA8 or GRAY8 */
} cli_image;

/* Decode the file at path. Returns 0 on success; otherwise nonzero with a one-line reason in `error`
 * (and `out` zeroed). */
int cli_image_load(const char *path, cli_image *out, char *error, size_t error_size);
void cli_image_free(cli_image *image);

/* The library's borrowed view of a decoded image. */
alexnet_image cli_image_view(const cli_image *image);

/* The formats this build can read, for --help ("PPM/PGM, PNG, JPEG"). */
const char *cli_image_supported_formats(void);

#endif
