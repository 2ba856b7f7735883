/* Fuzz target: alexnet_preprocess_image alone (resize, centre crop, normalise), no network.
 *
 * Input layout (little-endian; see make_seeds.c, which writes seeds in it):
 *   [0]      pixel format selector: format = byte % 8 (0, 6 and 7 are not formats); with the top bit set, the
 *            bytes beyond a FUZZ_PREPROCESS_LONG_STRUCT are zero (else non-zero)
 *   [1]      channels = byte % 5 (only 1 and 3 are valid)
 *   [2]      flags, FUZZ_PREPROCESS_* in fuzz_common.h
 *   [3..4]   image width  % 512       [5..6]  image height % 512
 *   [7..8]   output height % 192      [9..10] output width % 192 (past the 128-column chunks of the resampler)
 *   [11..14] resize_size (% 1024 unless FUZZ_PREPROCESS_WIDE_RESIZE)
 *   [15]     extra bytes per row beyond width x bytes per pixel
 *   [16..39] mean[3], std[3] as raw float bits (used with FUZZ_PREPROCESS_RAW_NORMALISATION; else the defaults)
 *   [40..]   pixels, repeated as needed to fill height x stride bytes
 *
 * The pixel buffer is allocated with exactly the bytes the image describes and the output with exactly
 * out_count floats (plus a canary zone the library must not touch), so AddressSanitizer sees any read or
 * write outside them.
 *
 * Invariants: a failure is INVALID_ARGUMENT (UNSUPPORTED for a struct_size with unknown non-zero bytes), has a
 * message, and leaves the output untouched; a success writes channels x height x width values, each within
 * [(0 - mean) / std, (1 - mean) / std] of its channel, and nothing beyond them. */
#include <math.h>

#include "fuzz_common.h"

#define MAX_PIXEL_BYTES (1u << 20) /* larger images are skipped: they find nothing new, only cost time */
#define CANARY_FLOATS 16

static uint32_t bytes_per_pixel(uint32_t format)
{
    switch (format) {
    case ALEXNET_PIXEL_RGB8:
    case ALEXNET_PIXEL_BGR8: return 3;
    case ALEXNET_PIXEL_RGBA8:
    case ALEXNET_PIXEL_BGRA8: return 4;
    case ALEXNET_PIXEL_GRAY8: return 1;
    default: return 1; /* an invalid format: the library must refuse it before reading pixels */
    }
}

static int reasonable(float mean, float std)
{
    return isfinite(mean) && isfinite(std) && fabsf(mean) <= 1e6f && fabsf(std) >= 1e-6f && fabsf(std) <= 1e6f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader in = fuzz_reader_make(data, size);
    uint8_t format_byte = fuzz_u8(&in);
    uint32_t format = format_byte % 8;
    uint32_t channels = fuzz_u8(&in) % 5;
    uint32_t flags = fuzz_u8(&in);
    /* Sizes are bounded so that each input costs milliseconds under the sanitizers; the resampler's chunking,
     * ring and wide-filter paths are reached at these sizes (tests/image also runs them with tiny tables). */
    uint32_t width = fuzz_u16(&in) % 512, height = fuzz_u16(&in) % 512;
    uint32_t out_height = fuzz_u16(&in) % 192, out_width = fuzz_u16(&in) % 192;
    uint32_t resize = fuzz_u32(&in);
    if (!(flags & FUZZ_PREPROCESS_WIDE_RESIZE))
        resize %= 1024;
    size_t stride_extra = fuzz_u8(&in);
    float normalisation[6];
    for (int i = 0; i < 6; i++)
        normalisation[i] = fuzz_f32(&in);
    const uint8_t *pixel_source = in.position < size ? data + in.position : NULL;
    size_t pixel_source_size = fuzz_remaining(&in);

    /* The image: exactly the bytes it describes (at least one, so that malloc gives a distinct block). */
    size_t bpp = bytes_per_pixel(format);
    size_t stride = (size_t)width * bpp + stride_extra;
    size_t extent = height == 0 ? 0 : (size_t)(height - 1) * stride + (size_t)width * bpp;
    if (extent > MAX_PIXEL_BYTES)
        return 0;
    uint8_t *pixels = malloc(extent > 0 ? extent : 1);
    FUZZ_CHECK(pixels != NULL, "malloc(%zu)", extent);
    /* The input's pixel bytes, repeated (by doubling copies: a byte loop would dominate the run time). */
    size_t filled = 0;
    if (pixel_source != NULL && extent > 0) {
        filled = pixel_source_size < extent ? pixel_source_size : extent;
        memcpy(pixels, pixel_source, filled);
    } else if (extent > 0) {
        pixels[0] = 0x5A;
        filled = 1;
    }
    while (filled < extent) {
        size_t chunk = filled < extent - filled ? filled : extent - filled;
        memcpy(pixels + filled, pixels, chunk);
        filled += chunk;
    }
    alexnet_image image = {flags & FUZZ_PREPROCESS_NULL_PIXELS ? NULL : pixels, width, height, stride,
                           (alexnet_pixel_format)format};

    /* The options, in a buffer with room for a struct_size beyond the 0.1 layout. */
    unsigned char options_storage[sizeof(alexnet_image_options) + 16];
    memset(options_storage, 0, sizeof options_storage);
    alexnet_image_options options;
    alexnet_image_options_init(&options);
    if (flags & FUZZ_PREPROCESS_RAW_NORMALISATION) {
        memcpy(options.mean, normalisation, sizeof options.mean);
        memcpy(options.std, normalisation + 3, sizeof options.std);
    }
    options.resize_size = resize;
    int unknown_tail = 0;
    if (flags & FUZZ_PREPROCESS_SHORT_STRUCT)
        options.struct_size = sizeof options - 1;
    else if (flags & FUZZ_PREPROCESS_LONG_STRUCT) {
        options.struct_size = sizeof options + 8;
        for (size_t i = 0; i < 8; i++) {
            options_storage[sizeof options + i] = (uint8_t)(format_byte & 0x80 ? 0 : 1 + i);
            unknown_tail |= options_storage[sizeof options + i] != 0;
        }
    }
    memcpy(options_storage, &options, sizeof options);
    const alexnet_image_options *options_arg =
        flags & FUZZ_PREPROCESS_NULL_OPTIONS ? NULL : (const alexnet_image_options *)(const void *)options_storage;

    /* The output: exactly out_count floats, then a canary zone. */
    size_t needed = (size_t)(channels < 3 ? channels : 3) * out_height * out_width;
    size_t out_count = needed;
    if ((flags & FUZZ_PREPROCESS_SHORT_OUTPUT) && out_count > 0)
        out_count--;
    float *out = malloc((out_count + CANARY_FLOATS) * sizeof *out);
    FUZZ_CHECK(out != NULL, "malloc");
    const uint32_t canary_bits = 0x7FC0CAFEu; /* a NaN no computation produces */
    for (size_t i = 0; i < out_count + CANARY_FLOATS; i++)
        memcpy(&out[i], &canary_bits, sizeof canary_bits);

    const alexnet_image *image_arg = flags & FUZZ_PREPROCESS_NULL_IMAGE ? NULL : &image;
    alexnet_status status = alexnet_preprocess_image(image_arg, options_arg, channels,
                                                     out_height, out_width, out, out_count);
    fuzz_check_failure_message(status, "alexnet_preprocess_image");
    size_t untouched_from = 0;
    if (status == ALEXNET_OK) {
        FUZZ_CHECK(channels == 1 || channels == 3, "accepted channels = %u", channels);
        FUZZ_CHECK(out_count >= needed, "accepted out_count %zu < %zu", out_count, needed);
        FUZZ_CHECK(!(flags & (FUZZ_PREPROCESS_NULL_IMAGE | FUZZ_PREPROCESS_NULL_PIXELS)),
                   "accepted a NULL image or pixels");
        FUZZ_CHECK(!(flags & FUZZ_PREPROCESS_SHORT_STRUCT) || (flags & FUZZ_PREPROCESS_NULL_OPTIONS),
                   "accepted a short struct_size");
        FUZZ_CHECK(!unknown_tail || (flags & FUZZ_PREPROCESS_NULL_OPTIONS), "accepted unknown non-zero option bytes");
        const float *mean = options_arg != NULL ? options.mean : NULL;
        const float *std = options_arg != NULL ? options.std : NULL;
        alexnet_image_options defaults;
        alexnet_image_options_init(&defaults);
        if (mean == NULL) {
            mean = defaults.mean;
            std = defaults.std;
        }
        size_t plane = (size_t)out_height * out_width;
        for (uint32_t c = 0; c < channels; c++) {
            if (!reasonable(mean[c], std[c]))
                continue;
            double low = (0.0 - mean[c]) / std[c], high = (1.0 - mean[c]) / std[c];
            if (low > high) {
                double swap = low;
                low = high;
                high = swap;
            }
            double slack = 1e-5 * (fabs(low) + fabs(high)) + 1e-6;
            for (size_t i = 0; i < plane; i++) {
                float v = out[c * plane + i];
                if (!(v >= low - slack && v <= high + slack))
                    fuzz_fail("output channel %u value %zu is %g, outside [%g, %g] (mean %g, std %g)", c, i,
                              (double)v, low, high, (double)mean[c], (double)std[c]);
            }
        }
        untouched_from = needed;
    } else {
        FUZZ_CHECK(status == ALEXNET_E_INVALID_ARGUMENT || (status == ALEXNET_E_UNSUPPORTED && unknown_tail),
                   "alexnet_preprocess_image gave status %d (%s)", (int)status, alexnet_status_string(status));
    }
    for (size_t i = untouched_from; i < out_count + CANARY_FLOATS; i++)
        if (memcmp(&out[i], &canary_bits, sizeof canary_bits) != 0)
            fuzz_fail("out[%zu] was written (needed %zu, out_count %zu, status %d)", i, needed, out_count,
                      (int)status);
    free(out);
    free(pixels);
    return 0;
}
