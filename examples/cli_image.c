/* Decoding image files for the `alexnet` example program: binary PPM/PGM always, PNG and JPEG optionally. */
#include "cli_image.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_PNG
#include <png.h>
#endif
#ifdef HAVE_JPEG
#include <setjmp.h>
/* jpeglib.h uses FILE and size_t without including their headers itself (stdio.h is included above). */
#include <jpeglib.h>
#include <jerror.h>
#endif

/* A sanity bound on each side: it rejects garbage headers before they become multi-gigabyte allocations,
 * while staying far above any photograph worth classifying at 227 x 227. */
#define CLI_IMAGE_MAX_SIDE 20000u

#if defined(__GNUC__)
#define CLI_PRINTF_LIKE(format_index, first_argument) __attribute__((format(printf, format_index, first_argument)))
#else
#define CLI_PRINTF_LIKE(format_index, first_argument)
#endif

static void set_error(char *error, size_t error_size, const char *format, ...) CLI_PRINTF_LIKE(3, 4);

static void set_error(char *error, size_t error_size, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(error, error_size, format, args);
    va_end(args);
}

static size_t bytes_per_pixel(alexnet_pixel_format format)
{
    switch (format) {
    case ALEXNET_PIXEL_GRAY8: return 1;
    case ALEXNET_PIXEL_RGB8:
    case ALEXNET_PIXEL_BGR8: return 3;
    case ALEXNET_PIXEL_RGBA8:
    case ALEXNET_PIXEL_BGRA8: return 4;
    }
    return 0;
}

/* Allocate the pixel buffer for a width x height image after checking the size is sane. */
static int allocate_pixels(cli_image *image, uint32_t width, uint32_t height, alexnet_pixel_format format,
                           char *error, size_t error_size)
{
    if (width == 0 || height == 0 || width > CLI_IMAGE_MAX_SIDE || height > CLI_IMAGE_MAX_SIDE) {
        set_error(error, error_size, "unsupported image size %ux%u (each side must be 1..%u)", (unsigned)width,
                  (unsigned)height, CLI_IMAGE_MAX_SIDE);
        return -1;
    }
    image->pixels = malloc((size_t)width * height * bytes_per_pixel(format));
    if (image->pixels == NULL) {
        set_error(error, error_size, "out of memory for a %ux%u image", (unsigned)width, (unsigned)height);
        return -1;
    }
    image->width = width;
    image->height = height;
    image->format = format;
    return 0;
}

/* ---- PPM / PGM ---------------------------------------------------------------------------------------- */

static int is_header_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Skip whitespace and '#' comments (which run to the end of the line) between header fields. */
static int skip_header_space(FILE *file)
{
    int c = getc(file);
    for (;;) {
        if (c == '#') {
            while (c != '\n' && c != '\r' && c != EOF) {
                c = getc(file);
            }
        } else if (is_header_space(c)) {
            c = getc(file);
        } else {
            return c;
        }
    }
}

/* Read one decimal header field. The character after it is left unread: it may start a comment. */
static int read_header_number(FILE *file, const char *field, uint32_t *out, char *error, size_t error_size)
{
    int c = skip_header_space(file);
    if (c < '0' || c > '9') {
        set_error(error, error_size, "malformed PPM/PGM header: expected the %s, found %s", field,
                  c == EOF ? "the end of the file" : "a non-digit");
        return -1;
    }
    uint64_t value = 0;
    while (c >= '0' && c <= '9') {
        value = value * 10 + (uint64_t)(c - '0');
        if (value > UINT32_MAX) {
            set_error(error, error_size, "malformed PPM/PGM header: the %s is too large", field);
            return -1;
        }
        c = getc(file);
    }
    *out = (uint32_t)value;
    if (c != EOF) {
        ungetc(c, file);
    }
    return 0;
}

/* `file` is positioned just after the two magic bytes "P6" or "P5". */
static int load_netpbm(FILE *file, int is_color, cli_image *out, char *error, size_t error_size)
{
    int after_magic = getc(file);
    if (!is_header_space(after_magic) && after_magic != '#') {
        set_error(error, error_size, "malformed PPM/PGM header: no whitespace after the magic number");
        return -1;
    }
    ungetc(after_magic, file);
    uint32_t width = 0, height = 0, maxval = 0;
    if (read_header_number(file, "width", &width, error, error_size) != 0 ||
        read_header_number(file, "height", &height, error, error_size) != 0 ||
        read_header_number(file, "maximum value", &maxval, error, error_size) != 0) {
        return -1;
    }
    /* Exactly one whitespace character separates maxval from the raster; a comment may not sit there. */
    if (!is_header_space(getc(file))) {
        set_error(error, error_size, "malformed PPM/PGM header: no whitespace after the maximum value");
        return -1;
    }
    if (maxval != 255) {
        set_error(error, error_size, "unsupported PPM/PGM maximum value %u (only 255, 8 bits per sample)",
                  (unsigned)maxval);
        return -1;
    }
    alexnet_pixel_format format = is_color ? ALEXNET_PIXEL_RGB8 : ALEXNET_PIXEL_GRAY8;
    if (allocate_pixels(out, width, height, format, error, error_size) != 0) {
        return -1;
    }
    size_t expected = (size_t)width * height * bytes_per_pixel(format);
    size_t got = fread(out->pixels, 1, expected, file);
    if (got != expected) {
        set_error(error, error_size, "truncated %s: %ux%u needs %zu bytes of pixels, the file has %zu",
                  is_color ? "PPM" : "PGM", (unsigned)width, (unsigned)height, expected, got);
        return -1;
    }
    return 0;
}

/* ---- PNG ---------------------------------------------------------------------------------------------- */
#ifdef HAVE_PNG
/* libpng's lower-level API rather than its "simplified" one: the simplified reader treats 16-bit files as
 * linear light and applies gAMA chunks, whereas torchvision's PIL pipeline uses the stored sample values as
 * they are. Fatal errors longjmp back to decode_png. */
typedef struct png_decoder {
    png_structp png;
    png_infop info;
    char message[200];
} png_decoder;

static void png_fail(png_structp png, png_const_charp message)
{
    png_decoder *decoder = png_get_error_ptr(png);
    snprintf(decoder->message, sizeof decoder->message, "%s", message);
    png_longjmp(png, 1);
}

static void png_ignore_warning(png_structp png, png_const_charp message)
{
    (void)png;
    (void)message;
}

/* Ask libpng for 8-bit gray, RGB or RGBA whatever the file holds; returns the matching pixel format. */
static alexnet_pixel_format request_8bit_output(png_structp png, png_infop info)
{
    png_byte color_type = png_get_color_type(png, info);
    int has_transparency = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    png_set_expand(png);   /* palette -> RGB, gray below 8 bits -> 8 bits, tRNS -> alpha */
    png_set_strip_16(png); /* keep the high byte, as PIL does */
    int gray = (color_type & PNG_COLOR_MASK_COLOR) == 0;
    int alpha = (color_type & PNG_COLOR_MASK_ALPHA) != 0 || has_transparency;
    if (gray && alpha) {
        png_set_gray_to_rgb(png); /* the library has no gray + alpha format */
    }
    if (alpha) {
        return ALEXNET_PIXEL_RGBA8;
    }
    return gray ? ALEXNET_PIXEL_GRAY8 : ALEXNET_PIXEL_RGB8;
}

/* Everything that changes after setjmp lives in *decoder and *out, not in this function's locals. */
static int decode_png(FILE *file, png_decoder *decoder, cli_image *out, char *error, size_t error_size)
{
    decoder->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, decoder, png_fail, png_ignore_warning);
    decoder->info = decoder->png != NULL ? png_create_info_struct(decoder->png) : NULL;
    if (decoder->info == NULL) {
        png_destroy_read_struct(&decoder->png, NULL, NULL);
        set_error(error, error_size, "out of memory");
        return -1;
    }
    if (setjmp(png_jmpbuf(decoder->png))) {
        png_destroy_read_struct(&decoder->png, &decoder->info, NULL);
        set_error(error, error_size, "invalid PNG: %s", decoder->message);
        return -1;
    }
    png_init_io(decoder->png, file);
    png_read_info(decoder->png, decoder->info);
    alexnet_pixel_format format = request_8bit_output(decoder->png, decoder->info);
    int passes = png_set_interlace_handling(decoder->png);
    png_read_update_info(decoder->png, decoder->info);
    if (allocate_pixels(out, png_get_image_width(decoder->png, decoder->info),
                        png_get_image_height(decoder->png, decoder->info), format, error, error_size) != 0) {
        png_destroy_read_struct(&decoder->png, &decoder->info, NULL);
        return -1;
    }
    /* Reading every row once per pass fills in interlaced images progressively. */
    size_t row_bytes = (size_t)out->width * bytes_per_pixel(format);
    for (int pass = 0; pass < passes; pass++) {
        for (uint32_t y = 0; y < out->height; y++) {
            png_read_row(decoder->png, out->pixels + y * row_bytes, NULL);
        }
    }
    png_read_end(decoder->png, NULL);
    png_destroy_read_struct(&decoder->png, &decoder->info, NULL);
    return 0;
}

static int load_png(FILE *file, cli_image *out, char *error, size_t error_size)
{
    png_decoder *decoder = calloc(1, sizeof *decoder);
    if (decoder == NULL) {
        set_error(error, error_size, "out of memory");
        return -1;
    }
    int result = decode_png(file, decoder, out, error, error_size);
    free(decoder);
    return result;
}
#endif

/* ---- JPEG --------------------------------------------------------------------------------------------- */
#ifdef HAVE_JPEG
/* libjpeg reports fatal errors by calling error_exit, which must not return: it jumps back to the decoder. */
typedef struct jpeg_decoder {
    struct jpeg_decompress_struct info;
    struct jpeg_error_mgr error_manager;
    jmp_buf on_error;
    char message[JMSG_LENGTH_MAX];
    int truncated;
} jpeg_decoder;

static void jpeg_fail(j_common_ptr info)
{
    jpeg_decoder *decoder = (jpeg_decoder *)info->client_data;
    info->err->format_message(info, decoder->message);
    longjmp(decoder->on_error, 1);
}

/* Warnings would go to stderr by default; note the one that matters (missing data) and stay quiet. */
static void jpeg_note_message(j_common_ptr info, int level)
{
    jpeg_decoder *decoder = (jpeg_decoder *)info->client_data;
    if (level < 0 && info->err->msg_code == JWRN_JPEG_EOF) {
        decoder->truncated = 1;
    }
}

/* Everything that changes after setjmp lives in *decoder and *out (not in this function's locals), so
 * nothing is left indeterminate when libjpeg jumps back. */
static int decode_jpeg(FILE *file, jpeg_decoder *decoder, cli_image *out, char *error, size_t error_size)
{
    decoder->info.err = jpeg_std_error(&decoder->error_manager);
    decoder->error_manager.error_exit = jpeg_fail;
    decoder->error_manager.emit_message = jpeg_note_message;
    decoder->info.client_data = decoder; /* kept by jpeg_create_decompress */
    if (setjmp(decoder->on_error)) {
        set_error(error, error_size, "invalid JPEG: %s", decoder->message);
        jpeg_destroy_decompress(&decoder->info);
        return -1;
    }
    jpeg_create_decompress(&decoder->info);
    jpeg_stdio_src(&decoder->info, file);
    jpeg_read_header(&decoder->info, TRUE);
    if (decoder->info.num_components == 1) {
        decoder->info.out_color_space = JCS_GRAYSCALE;
    } else if (decoder->info.num_components == 3) {
        decoder->info.out_color_space = JCS_RGB;
    } else {
        set_error(error, error_size, "unsupported JPEG with %d colour components (CMYK?)",
                  decoder->info.num_components);
        jpeg_destroy_decompress(&decoder->info);
        return -1;
    }
    jpeg_start_decompress(&decoder->info);
    alexnet_pixel_format format = decoder->info.output_components == 1 ? ALEXNET_PIXEL_GRAY8 : ALEXNET_PIXEL_RGB8;
    if (allocate_pixels(out, decoder->info.output_width, decoder->info.output_height, format, error,
                        error_size) != 0) {
        jpeg_destroy_decompress(&decoder->info);
        return -1;
    }
    size_t row_bytes = (size_t)out->width * bytes_per_pixel(format);
    while (decoder->info.output_scanline < decoder->info.output_height) {
        JSAMPROW row = out->pixels + (size_t)decoder->info.output_scanline * row_bytes;
        jpeg_read_scanlines(&decoder->info, &row, 1);
    }
    jpeg_finish_decompress(&decoder->info);
    jpeg_destroy_decompress(&decoder->info);
    /* libjpeg pads a truncated file with grey and carries on; classifying that would be misleading. */
    if (decoder->truncated) {
        set_error(error, error_size, "truncated JPEG: the file ends before the image data does");
        return -1;
    }
    return 0;
}

static int load_jpeg(FILE *file, cli_image *out, char *error, size_t error_size)
{
    jpeg_decoder *decoder = calloc(1, sizeof *decoder);
    if (decoder == NULL) {
        set_error(error, error_size, "out of memory");
        return -1;
    }
    int result = decode_jpeg(file, decoder, out, error, error_size);
    free(decoder);
    return result;
}
#endif

/* ---- dispatch ----------------------------------------------------------------------------------------- */

static int has_prefix(const unsigned char *bytes, size_t count, const char *prefix, size_t prefix_length)
{
    return count >= prefix_length && memcmp(bytes, prefix, prefix_length) == 0;
}

/* Pick the decoder from the magic bytes; `file` is positioned at the start. */
static int load_by_signature(FILE *file, cli_image *out, char *error, size_t error_size)
{
    unsigned char magic[8] = {0};
    size_t count = fread(magic, 1, sizeof magic, file);
    if (has_prefix(magic, count, "P6", 2) || has_prefix(magic, count, "P5", 2)) {
        if (fseek(file, 2, SEEK_SET) != 0) {
            set_error(error, error_size, "cannot seek in the file");
            return -1;
        }
        return load_netpbm(file, magic[1] == '6', out, error, error_size);
    }
    if (has_prefix(magic, count, "P3", 2) || has_prefix(magic, count, "P2", 2)) {
        set_error(error, error_size, "plain (ASCII) PPM/PGM is not supported; use binary P6/P5");
        return -1;
    }
    if (has_prefix(magic, count, "\x89PNG\r\n\x1a\n", 8)) {
#ifdef HAVE_PNG
        rewind(file);
        return load_png(file, out, error, error_size);
#else
        set_error(error, error_size, "PNG support was not built in (libpng was not found)");
        return -1;
#endif
    }
    if (has_prefix(magic, count, "\xff\xd8\xff", 3)) {
#ifdef HAVE_JPEG
        rewind(file);
        return load_jpeg(file, out, error, error_size);
#else
        set_error(error, error_size, "JPEG support was not built in (libjpeg was not found)");
        return -1;
#endif
    }
    set_error(error, error_size, "not a recognised image (this build reads %s)", cli_image_supported_formats());
    return -1;
}

int cli_image_load(const char *path, cli_image *out, char *error, size_t error_size)
{
    memset(out, 0, sizeof *out);
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        set_error(error, error_size, "cannot open the file: %s", strerror(errno));
        return -1;
    }
    int result = load_by_signature(file, out, error, error_size);
    fclose(file);
    if (result != 0) {
        cli_image_free(out);
    }
    return result;
}

void cli_image_free(cli_image *image)
{
    free(image->pixels);
    memset(image, 0, sizeof *image);
}

alexnet_image cli_image_view(const cli_image *image)
{
    alexnet_image view;
    view.pixels = image->pixels;
    view.width = image->width;
    view.height = image->height;
    view.row_stride_bytes = (size_t)image->width * bytes_per_pixel(image->format);
    view.format = image->format;
    return view;
}

const char *cli_image_supported_formats(void)
{
#if defined(HAVE_PNG) && defined(HAVE_JPEG)
    return "PPM/PGM, PNG, JPEG";
#elif defined(HAVE_PNG)
    return "PPM/PGM, PNG";
#elif defined(HAVE_JPEG)
    return "PPM/PGM, JPEG";
#else
    return "PPM/PGM";
#endif
}
