/*
 * Image preprocessing: torchvision's evaluation transform applied to a PIL image,
 *
 *     Resize(resize_size) -> CenterCrop((height, width)) -> ToTensor() -> Normalize(mean, std),
 *
 * reproduced bit for bit on the 8-bit image PIL produces, without allocating anything. The float outputs
 * can differ from torch's only by rounding in the last step (at most a few 1e-7); on x86-64 with torch 1.13
 * they were identical for every golden case (tests/data/image_goldens.txt).
 *
 * What PIL does (Pillow's BILINEAR resampling, which torchvision uses for PIL images):
 *  - each axis is resampled separately, horizontal pass first; the horizontal result is rounded to 8 bits
 *    before the vertical pass reads it, and the vertical result is rounded to 8 bits again;
 *  - output pixel i of an axis with scale = in / out is centred on input coordinate (i + 0.5) * scale; the
 *    filter is a triangle of half-width max(scale, 1) (so downscaling averages every input pixel it covers:
 *    the antialiasing), evaluated at input pixel centres (+0.5) and normalised to sum 1 per output pixel;
 *  - the normalised weights are turned into 22-bit fixed point, sums start at one half (rounding) and are
 *    clamped to 0..255 after the shift.
 * Every one of those steps is mirrored below with the same double and integer arithmetic, so the 8-bit
 * image after Resize + CenterCrop is identical to PIL's; ToTensor/Normalize is ((p / 255) - mean) / std in
 * float, as torch computes it.
 *
 * Scheme (nothing allocated, no buffer proportional to the image): only the cropped region is produced,
 * out(y, x) = round8(sum_j kv_j * round8(sum_i kh_i * src(row_j, col_i))), straight from the source.
 * Output columns are processed in chunks (128 at most, fewer for wide filters). For a chunk, the horizontal
 * tap windows and their fixed-point weights are computed once into a table. Then, output row by output
 * row, the source rows of the row's vertical window are filtered horizontally for the chunk's columns into
 * a ring of 8-bit rows (Pillow's intermediate image, restricted to the chunk), and the vertical pass
 * combines them. Vertical windows only move down, so each source row is filtered once per chunk; for a
 * 4000 x 3000 RGB image to 224 x 224 that is ~15 M taps, about 20 ms on one core. All state lives in one
 * fixed-size struct on the stack (~40 KiB; the ring and table sizes bound the chunk width).
 * When the filter is too wide even for a one-column chunk (a downscale by more than ~4000 times), the
 * horizontal weights are recomputed for every use and nothing is cached: slow, but bounded and exact.
 *
 * A resized image smaller than the crop (resize_size smaller than the crop size) is padded with zero pixels,
 * centred as torchvision's center_crop pads it; those outputs are (0 - mean) / std.
 */
#include "image/preprocess.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "util/checked.h"
#include "util/error.h"

/* Compile-time knobs, overridable so that a test build can force chunking and the wide-filter path. */
#ifndef AN_PREPROCESS_CHUNK_COLUMNS
#define AN_PREPROCESS_CHUNK_COLUMNS 128
#endif
#ifndef AN_PREPROCESS_WEIGHT_CAPACITY
#define AN_PREPROCESS_WEIGHT_CAPACITY 4096 /* int32 weights: 16 KiB */
#endif
#ifndef AN_PREPROCESS_RING_BYTES
#define AN_PREPROCESS_RING_BYTES 16384
#endif

enum {
    PRECISION_BITS = 22,           /* Pillow's fixed point for 8-bit images: 32 - 8 - 2 */
    DIRECT_SEGMENT_TAPS = 64,      /* weights computed at a time on the wide-filter path */
    DEFAULT_RESIZE_SIZE = 256
};

static const float default_mean[3] = {0.485f, 0.456f, 0.406f};
static const float default_std[3] = {0.229f, 0.224f, 0.225f};

/* ---- source pixels -------------------------------------------------------------------------------- */

/* What one resampled value is made of. */
typedef enum sample_mode {
    SAMPLE_RGB,  /* three values: red, green, blue */
    SAMPLE_GRAY, /* one value: the grey byte itself */
    SAMPLE_LUMA  /* one value: PIL's convert('L') of the colour pixel, taken before resizing as PIL would */
} sample_mode;

typedef struct source_view {
    const uint8_t *pixels;
    size_t stride;
    uint32_t bytes_per_pixel;
    uint32_t red, green, blue; /* byte offsets inside a pixel */
    sample_mode mode;
    uint32_t values;           /* values per resampled pixel: 3 for SAMPLE_RGB, else 1 */
} source_view;

static uint32_t bytes_per_pixel(alexnet_pixel_format format)
{
    switch (format) {
    case ALEXNET_PIXEL_RGB8:
    case ALEXNET_PIXEL_BGR8: return 3;
    case ALEXNET_PIXEL_RGBA8:
    case ALEXNET_PIXEL_BGRA8: return 4;
    case ALEXNET_PIXEL_GRAY8: return 1;
    }
    return 0; /* unknown format */
}

static source_view make_source_view(const alexnet_image *image, uint32_t channels)
{
    source_view view;
    view.pixels = image->pixels;
    view.stride = image->row_stride_bytes;
    view.bytes_per_pixel = bytes_per_pixel(image->format);
    switch (image->format) {
    case ALEXNET_PIXEL_BGR8:
    case ALEXNET_PIXEL_BGRA8: view.red = 2, view.green = 1, view.blue = 0; break;
    case ALEXNET_PIXEL_GRAY8: view.red = 0, view.green = 0, view.blue = 0; break;
    default: view.red = 0, view.green = 1, view.blue = 2; break; /* RGB8, RGBA8 (alpha ignored) */
    }
    if (image->format == ALEXNET_PIXEL_GRAY8)
        view.mode = SAMPLE_GRAY; /* replicated to three channels when writing, if asked for */
    else
        view.mode = channels == 3 ? SAMPLE_RGB : SAMPLE_LUMA;
    view.values = view.mode == SAMPLE_RGB ? 3 : 1;
    return view;
}

/* Pillow's RGB -> L conversion: ITU-R 601 weights in 16-bit fixed point, rounded. */
static inline uint32_t luma601(uint32_t r, uint32_t g, uint32_t b)
{
    return (r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16;
}

/* The resampled values of the pixel at p (values[0] only unless SAMPLE_RGB). */
static inline void read_pixel(const source_view *src, const uint8_t *p, uint32_t values[3])
{
    switch (src->mode) {
    case SAMPLE_RGB:
        values[0] = p[src->red];
        values[1] = p[src->green];
        values[2] = p[src->blue];
        break;
    case SAMPLE_GRAY: values[0] = p[0]; break;
    case SAMPLE_LUMA: values[0] = luma601(p[src->red], p[src->green], p[src->blue]); break;
    }
}

/* sums[v] += weights[i] * value v of pixel (first + i) of row, for count pixels: the horizontal inner loop of
 * the wide-filter path (the cached path's is filter_row_layout). Sums are 64-bit because a window that wide
 * can be longer than a 32-bit sum of 22-bit weights allows. */
static void accumulate_taps(const source_view *src, const uint8_t *row, int64_t first, int64_t count,
                            const int32_t *weights, int64_t sums[3])
{
    const size_t step = src->bytes_per_pixel;
    const uint8_t *p = row + (size_t)first * step;
    for (int64_t i = 0; i < count; i++, p += step) {
        uint32_t values[3];
        read_pixel(src, p, values);
        for (uint32_t v = 0; v < src->values; v++)
            sums[v] += (int64_t)values[v] * weights[i];
    }
}

/* Pillow's rounding of a fixed-point sum (which started at one half) back to 8 bits, clamped. */
static inline uint32_t clip8(int64_t sum)
{
    if (sum >= ((int64_t)256 << PRECISION_BITS))
        return 255;
    if (sum <= 0)
        return 0;
    return (uint32_t)(sum >> PRECISION_BITS);
}

/* ---- one axis of the resampling filter --------------------------------------------------------------- */

typedef struct axis_filter {
    int64_t in_size;
    double scale;           /* input pixels per output pixel */
    double support;         /* the triangle's half-width in input pixels: max(scale, 1) */
    double inv_filterscale; /* 1 / max(scale, 1): input distance -> filter argument */
    int64_t max_taps;       /* Pillow's ksize; no window is longer */
} axis_filter;

/* The input pixels that one output pixel reads. */
typedef struct tap_window {
    int64_t first;
    int64_t count;
    double center;
    double weight_sum; /* of the raw triangle weights, to normalise them */
} tap_window;

static axis_filter make_axis_filter(int64_t in_size, int64_t out_size)
{
    axis_filter axis;
    axis.in_size = in_size;
    /* Pillow receives the box as floats, so the input extent goes through float first (exact below 2^24). */
    axis.scale = (double)(float)in_size / (double)out_size;
    double filterscale = axis.scale < 1.0 ? 1.0 : axis.scale;
    axis.support = 1.0 * filterscale; /* BILINEAR's support is 1 */
    axis.inv_filterscale = 1.0 / filterscale;
    axis.max_taps = (int64_t)ceil(axis.support) * 2 + 1;
    return axis;
}

static inline double triangle(double x)
{
    if (x < 0.0)
        x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static inline double raw_weight(const axis_filter *axis, const tap_window *window, int64_t tap)
{
    return triangle(((double)(window->first + tap) - window->center + 0.5) * axis->inv_filterscale);
}

/* Window of output pixel `index`, with the same rounding of its ends as Pillow (truncation after +0.5). */
static tap_window window_at(const axis_filter *axis, int64_t index)
{
    tap_window window;
    window.center = ((double)index + 0.5) * axis->scale;
    int64_t first = (int64_t)(window.center - axis->support + 0.5);
    int64_t end = (int64_t)(window.center + axis->support + 0.5);
    if (first < 0)
        first = 0;
    if (end > axis->in_size)
        end = axis->in_size;
    window.first = first;
    window.count = end - first;
    /* Never true (a window spans at most 2 * support + 1 pixels, as Pillow's own buffers assume); the clamp
     * keeps the weight table and ring indexing in bounds regardless of any rounding surprise. */
    if (window.count > axis->max_taps)
        window.count = axis->max_taps;
    window.weight_sum = 0.0;
    for (int64_t tap = 0; tap < window.count; tap++)
        window.weight_sum += raw_weight(axis, &window, tap);
    return window;
}

/* Normalised weight of one tap in Pillow's 22-bit fixed point. Triangle weights are never negative, so
 * only Pillow's rounding for non-negative weights is needed. */
static inline int32_t fixed_weight(const axis_filter *axis, const tap_window *window, int64_t tap)
{
    double weight = raw_weight(axis, window, tap);
    if (window->weight_sum != 0.0)
        weight /= window->weight_sum;
    return (int32_t)(0.5 + weight * (double)(1 << PRECISION_BITS));
}

/* ---- geometry of resize + centre crop, per axis ---------------------------------------------------------- */

/* Where the crop starts in the resized image; negative when torchvision pads (resized smaller than crop):
 * it pads (crop - resized) // 2 zero pixels before. Otherwise round((resized - crop) / 2), half to even. */
static int64_t crop_offset(int64_t resized, int64_t crop)
{
    if (resized < crop)
        return -((crop - resized) / 2);
    int64_t excess = resized - crop;
    int64_t half = excess / 2;
    if ((excess & 1) && (half & 1))
        half += 1; /* x.5 rounds to the even neighbour, as Python's round() does */
    return half;
}

/* The output range [begin, end) whose resized coordinate (offset + i) lies inside [0, resized). */
typedef struct output_span {
    uint32_t begin, end;
} output_span;

static output_span inside_span(int64_t offset, int64_t resized, uint32_t crop)
{
    output_span span;
    int64_t begin = offset < 0 ? -offset : 0;
    int64_t end = resized - offset;
    if (end > crop)
        end = crop;
    span.begin = (uint32_t)begin;
    span.end = (uint32_t)end;
    return span;
}

/* ---- output ------------------------------------------------------------------------------------------ */

/* Everything the writer needs: where out is and the float value of each 8-bit level per output channel,
 * computed exactly as ToTensor (p / 255) then Normalize ((x - mean) / std) compute it in float. */
typedef struct output_plan {
    float *out;
    uint32_t channels, height, width;
    float level[3][256];
} output_plan;

static void make_levels(output_plan *plan, const float mean[3], const float std[3])
{
    for (uint32_t c = 0; c < plan->channels; c++)
        for (uint32_t p = 0; p < 256; p++)
            plan->level[c][p] = ((float)p / 255.0f - mean[c]) / std[c];
}

static inline float *out_at(const output_plan *plan, uint32_t c, uint32_t y, uint32_t x)
{
    return plan->out + ((size_t)c * plan->height + y) * plan->width + x;
}

/* Write one pixel's resampled 8-bit values; a single value (grey or luminance) goes to every channel. */
static inline void write_pixel(const output_plan *plan, uint32_t y, uint32_t x, const uint32_t values[3],
                               uint32_t value_count)
{
    for (uint32_t c = 0; c < plan->channels; c++)
        *out_at(plan, c, y, x) = plan->level[c][values[value_count == 3 ? c : 0]];
}

/* Fill the outputs outside the resized image (rows outside `rows`, columns outside `cols`) with the value of
 * a zero pixel, as torchvision's padding does. */
static void write_padding(const output_plan *plan, output_span rows, output_span cols)
{
    for (uint32_t c = 0; c < plan->channels; c++) {
        float zero = plan->level[c][0];
        for (uint32_t y = 0; y < plan->height; y++) {
            int inside = y >= rows.begin && y < rows.end;
            for (uint32_t x = 0; x < plan->width; x++)
                if (!inside || x < cols.begin || x >= cols.end)
                    *out_at(plan, c, y, x) = zero;
        }
    }
}

/* ---- crop without resampling (resize_size 0, or a resize that keeps the size) ------------------------ */

static void crop_only(const source_view *src, const output_plan *plan, int64_t top, int64_t left,
                      output_span rows, output_span cols)
{
    for (uint32_t y = rows.begin; y < rows.end; y++) {
        const uint8_t *row = src->pixels + (size_t)(top + y) * src->stride;
        for (uint32_t x = cols.begin; x < cols.end; x++) {
            uint32_t values[3];
            read_pixel(src, row + (size_t)(left + x) * src->bytes_per_pixel, values);
            write_pixel(plan, y, x, values, src->values);
        }
    }
}

/* ---- resampling ------------------------------------------------------------------------------------------ */

/* State for one chunk of output columns. In the cached mode (every realistic image) the chunk holds the
 * fixed-point weights of all its horizontal taps, and a ring of the horizontally filtered 8-bit rows of the
 * current vertical window: source row r lives in slot r % ring_rows, and since windows only move down, every
 * source row is filtered once per chunk. In the wide-filter mode (a filter too long for those arrays) both
 * are recomputed on every use instead. */
typedef struct column_chunk {
    uint32_t x0, count; /* output columns [x0, x0 + count) */
    int cached;
    int64_t max_taps;   /* weights[k * max_taps + i] is tap i of column k */
    int64_t ring_rows;  /* ring slots: the longest vertical window */
    int64_t ring_end;   /* one past the last source row filtered into the ring */
    tap_window windows[AN_PREPROCESS_CHUNK_COLUMNS];
    int32_t weights[AN_PREPROCESS_WEIGHT_CAPACITY];
    uint8_t ring[AN_PREPROCESS_RING_BYTES];
    int64_t sums[AN_PREPROCESS_CHUNK_COLUMNS][3]; /* vertical accumulators of the current output row */
} column_chunk;

/* How many columns the next chunk takes, and whether the cached mode fits at all. */
static void size_chunk(column_chunk *chunk, const axis_filter *ax, const axis_filter *ay, uint32_t values,
                       uint32_t columns_left)
{
    int64_t columns = AN_PREPROCESS_CHUNK_COLUMNS;
    int64_t by_weights = AN_PREPROCESS_WEIGHT_CAPACITY / ax->max_taps;
    int64_t by_ring = AN_PREPROCESS_RING_BYTES / (ay->max_taps * values);
    if (by_weights < columns)
        columns = by_weights;
    if (by_ring < columns)
        columns = by_ring;
    chunk->cached = columns >= 1;
    if (!chunk->cached)
        columns = AN_PREPROCESS_CHUNK_COLUMNS;
    chunk->count = columns_left < columns ? columns_left : (uint32_t)columns;
    chunk->max_taps = ax->max_taps;
    chunk->ring_rows = ay->max_taps;
    chunk->ring_end = 0;
}

static void prepare_chunk(column_chunk *chunk, const axis_filter *ax, int64_t left)
{
    for (uint32_t k = 0; k < chunk->count; k++) {
        tap_window *window = &chunk->windows[k];
        *window = window_at(ax, left + chunk->x0 + k);
        if (chunk->cached)
            for (int64_t i = 0; i < window->count; i++)
                chunk->weights[k * chunk->max_taps + i] = fixed_weight(ax, window, i);
    }
}

/* Horizontal pass for column k of the chunk on one source row, in the wide-filter mode: the weights are
 * recomputed a segment at a time (the same values the table would hold). */
static void filter_wide_column(const column_chunk *chunk, const axis_filter *ax, const source_view *src,
                               const uint8_t *row, uint32_t k, uint8_t values[3])
{
    const tap_window *window = &chunk->windows[k];
    const int64_t half = (int64_t)1 << (PRECISION_BITS - 1);
    int64_t sums[3] = {half, half, half};
    int32_t segment[DIRECT_SEGMENT_TAPS];
    for (int64_t start = 0; start < window->count; start += DIRECT_SEGMENT_TAPS) {
        int64_t n = window->count - start < DIRECT_SEGMENT_TAPS ? window->count - start : DIRECT_SEGMENT_TAPS;
        for (int64_t i = 0; i < n; i++)
            segment[i] = fixed_weight(ax, window, start + i);
        accumulate_taps(src, row, window->first + start, n, segment, sums);
    }
    for (uint32_t v = 0; v < src->values; v++)
        values[v] = (uint8_t)clip8(sums[v]);
}

/* A 32-bit sum holds 2^21 + 255 x (2^22 + taps / 2) (each fixed weight rounds up by at most one half). */
_Static_assert(AN_PREPROCESS_WEIGHT_CAPACITY <= (1 << 20), "horizontal sums must fit 32 bits");

/* Horizontal pass of one source row for every column of the chunk, with the table's weights, into dst
 * (src values per column): Pillow's intermediate 8-bit values. This is where nearly all the time goes; the
 * layout is a parameter so that each call in filter_row, with constants, compiles to its own tight loop. */
static inline void filter_row_layout(const column_chunk *chunk, const uint8_t *row, uint8_t *dst, size_t step,
                                     size_t red, size_t green, size_t blue, sample_mode mode)
{
    const int32_t half = 1 << (PRECISION_BITS - 1);
    for (uint32_t k = 0; k < chunk->count; k++) {
        const tap_window *window = &chunk->windows[k];
        const int32_t *weights = &chunk->weights[k * chunk->max_taps];
        const uint8_t *p = row + (size_t)window->first * step;
        const int32_t count = (int32_t)window->count;
        int32_t r = half, g = half, b = half;
        for (int32_t i = 0; i < count; i++, p += step) {
            if (mode == SAMPLE_RGB) {
                r += p[red] * weights[i];
                g += p[green] * weights[i];
                b += p[blue] * weights[i];
            } else if (mode == SAMPLE_LUMA) {
                r += (int32_t)luma601(p[red], p[green], p[blue]) * weights[i];
            } else {
                r += p[0] * weights[i];
            }
        }
        *dst++ = (uint8_t)clip8(r);
        if (mode == SAMPLE_RGB) {
            *dst++ = (uint8_t)clip8(g);
            *dst++ = (uint8_t)clip8(b);
        }
    }
}

static void filter_row(const column_chunk *chunk, const source_view *src, const uint8_t *row, uint8_t *dst)
{
    if (src->mode == SAMPLE_GRAY)
        filter_row_layout(chunk, row, dst, 1, 0, 0, 0, SAMPLE_GRAY);
    else if (src->bytes_per_pixel == 3 && src->red == 0)
        filter_row_layout(chunk, row, dst, 3, 0, 1, 2, src->mode);
    else if (src->bytes_per_pixel == 3)
        filter_row_layout(chunk, row, dst, 3, 2, 1, 0, src->mode);
    else if (src->red == 0)
        filter_row_layout(chunk, row, dst, 4, 0, 1, 2, src->mode);
    else
        filter_row_layout(chunk, row, dst, 4, 2, 1, 0, src->mode);
}

static inline uint8_t *ring_slot(column_chunk *chunk, int64_t source_row, uint32_t values)
{
    return chunk->ring + (size_t)(source_row % chunk->ring_rows) * chunk->count * values;
}

/* Make sure the ring holds the filtered rows of `window` (rows before it are no longer needed). */
static void fill_ring(column_chunk *chunk, const source_view *src, const tap_window *window)
{
    int64_t begin = chunk->ring_end > window->first ? chunk->ring_end : window->first;
    int64_t end = window->first + window->count;
    for (int64_t r = begin; r < end; r++)
        filter_row(chunk, src, src->pixels + (size_t)r * src->stride, ring_slot(chunk, r, src->values));
    if (end > chunk->ring_end)
        chunk->ring_end = end;
}

/* One output row of the chunk: Pillow's vertical pass over the horizontally filtered rows. */
static void resample_chunk_row(column_chunk *chunk, const axis_filter *ax, const axis_filter *ay,
                               const source_view *src, const output_plan *plan, int64_t top, uint32_t y)
{
    const int64_t half = (int64_t)1 << (PRECISION_BITS - 1);
    const uint32_t nv = src->values;
    for (uint32_t k = 0; k < chunk->count; k++)
        chunk->sums[k][0] = chunk->sums[k][1] = chunk->sums[k][2] = half;

    tap_window vertical = window_at(ay, top + y);
    if (chunk->cached)
        fill_ring(chunk, src, &vertical);
    for (int64_t j = 0; j < vertical.count; j++) {
        int64_t weight = fixed_weight(ay, &vertical, j);
        if (weight == 0)
            continue; /* contributes nothing; Pillow adds the zero */
        int64_t r = vertical.first + j;
        if (chunk->cached) {
            const uint8_t *filtered = ring_slot(chunk, r, nv);
            for (uint32_t k = 0; k < chunk->count; k++, filtered += nv)
                for (uint32_t v = 0; v < nv; v++)
                    chunk->sums[k][v] += weight * filtered[v];
        } else {
            const uint8_t *row = src->pixels + (size_t)r * src->stride;
            for (uint32_t k = 0; k < chunk->count; k++) {
                uint8_t filtered[3];
                filter_wide_column(chunk, ax, src, row, k, filtered);
                for (uint32_t v = 0; v < nv; v++)
                    chunk->sums[k][v] += weight * filtered[v];
            }
        }
    }

    for (uint32_t k = 0; k < chunk->count; k++) {
        uint32_t values[3];
        for (uint32_t v = 0; v < nv; v++)
            values[v] = clip8(chunk->sums[k][v]);
        write_pixel(plan, y, chunk->x0 + k, values, nv);
    }
}

static void resample(const source_view *src, const output_plan *plan, const axis_filter *ax,
                     const axis_filter *ay, int64_t top, int64_t left, output_span rows, output_span cols)
{
    column_chunk chunk;
    for (uint32_t x0 = cols.begin; x0 < cols.end; x0 += chunk.count) {
        size_chunk(&chunk, ax, ay, src->values, cols.end - x0);
        chunk.x0 = x0;
        prepare_chunk(&chunk, ax, left);
        for (uint32_t y = rows.begin; y < rows.end; y++)
            resample_chunk_row(&chunk, ax, ay, src, plan, top, y);
    }
}

/* ---- validation ------------------------------------------------------------------------------------------ */

static alexnet_status check_image(const alexnet_image *image)
{
    if (!image)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "image is NULL");
    if (!image->pixels)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "image.pixels is NULL");
    if (image->width == 0 || image->height == 0)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "image.width and image.height must be >= 1 (got %u x %u)",
                        image->width, image->height);
    uint32_t bpp = bytes_per_pixel(image->format);
    if (bpp == 0)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "image.format (%d) is not a known pixel format",
                        (int)image->format);
    size_t row_bytes, last_row_start, extent;
    if (an_mul_overflow_size(image->width, bpp, &row_bytes))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "image.width (%u) x %u bytes per pixel overflows size_t",
                        image->width, bpp);
    if (image->row_stride_bytes < row_bytes)
        return an_error(ALEXNET_E_INVALID_ARGUMENT,
                        "image.row_stride_bytes (%zu) is smaller than width x bytes per pixel (%u x %u = %zu)",
                        image->row_stride_bytes, image->width, bpp, row_bytes);
    /* Every address the resampler forms is below pixels + extent; it must be representable. */
    if (an_mul_overflow_size(image->height - 1, image->row_stride_bytes, &last_row_start) ||
        an_add_overflow_size(last_row_start, row_bytes, &extent))
        return an_error(ALEXNET_E_INVALID_ARGUMENT,
                        "image.height (%u) x image.row_stride_bytes (%zu) overflows size_t", image->height,
                        image->row_stride_bytes);
    return ALEXNET_OK;
}

static alexnet_status check_options(const alexnet_image_options *options, uint32_t channels)
{
    if (options->struct_size < sizeof(alexnet_image_options))
        return an_error(ALEXNET_E_INVALID_ARGUMENT,
                        "options.struct_size (%zu) is smaller than sizeof(alexnet_image_options) (%zu); "
                        "call alexnet_image_options_init",
                        options->struct_size, sizeof(alexnet_image_options));
    /* Only the channels actually written are checked: a one-channel caller needs mean[0] and std[0] only. */
    for (uint32_t c = 0; c < channels; c++) {
        if (!isfinite(options->mean[c]))
            return an_error(ALEXNET_E_INVALID_ARGUMENT, "options.mean[%u] (%g) is not finite", c,
                            (double)options->mean[c]);
        if (!isfinite(options->std[c]) || options->std[c] == 0.0f)
            return an_error(ALEXNET_E_INVALID_ARGUMENT, "options.std[%u] (%g) must be finite and nonzero", c,
                            (double)options->std[c]);
    }
    return ALEXNET_OK;
}

static alexnet_status check_output(uint32_t channels, uint32_t height, uint32_t width, const float *out,
                                   size_t out_count)
{
    if (channels != 1 && channels != 3)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "channels must be 1 or 3 (got %u)", channels);
    if (height == 0 || width == 0)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "height and width must be >= 1 (got %u x %u)", height, width);
    if (!out)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "out is NULL");
    size_t plane, needed;
    if (an_mul_overflow_size(height, width, &plane) || an_mul_overflow_size(plane, channels, &needed))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "channels x height x width (%u x %u x %u) overflows size_t",
                        channels, height, width);
    if (out_count < needed)
        return an_error(ALEXNET_E_INVALID_ARGUMENT,
                        "out_count (%zu) is smaller than channels x height x width (%u x %u x %u = %zu)", out_count,
                        channels, height, width, needed);
    return ALEXNET_OK;
}

/* ---- entry point ----------------------------------------------------------------------------------------- */

/* torchvision's Resize(s): the shorter side becomes s, the longer int(s * long / short), where Python divides
 * exactly and rounds once to a double. Integer division gives the same result unless that rounding reaches
 * the next integer, which needs s * long >= 2^53 with a result below 2^31, hence short > 2^22: an image of
 * more than 2^44 pixels. Sides beyond PIL's C int are refused, since PIL's arithmetic (mirrored here) stops
 * there. */
static alexnet_status resized_size(const alexnet_image *image, uint32_t s, int64_t *out_width, int64_t *out_height)
{
    uint64_t w = s, h = s;
    if (image->width <= image->height)
        h = (uint64_t)s * image->height / image->width;
    else
        w = (uint64_t)s * image->width / image->height;
    if (w > INT32_MAX || h > INT32_MAX)
        return an_error(ALEXNET_E_INVALID_ARGUMENT,
                        "options.resize_size (%u) would make the %u x %u image %llu x %llu, beyond 2^31 - 1 per side",
                        s, image->width, image->height, (unsigned long long)w, (unsigned long long)h);
    *out_width = (int64_t)w;
    *out_height = (int64_t)h;
    return ALEXNET_OK;
}

/* Validation that needs the options resolved: the size of the image the crop is taken from. */
static alexnet_status source_size(const alexnet_image *image, uint32_t resize, uint32_t height, uint32_t width,
                                  int64_t *resized_w, int64_t *resized_h)
{
    if (resize != 0)
        return resized_size(image, resize, resized_w, resized_h);
    if (image->width < width || image->height < height)
        return an_error(ALEXNET_E_INVALID_ARGUMENT,
                        "image (%u x %u) is smaller than the %u x %u crop and options.resize_size is 0 (no resize)",
                        image->width, image->height, width, height);
    *resized_w = image->width;
    *resized_h = image->height;
    return ALEXNET_OK;
}

alexnet_status an_image_preprocess(const alexnet_image *image, const alexnet_image_options *options,
                                   uint32_t channels, uint32_t height, uint32_t width, float *out, size_t out_count)
{
    int64_t resized_w = 0, resized_h = 0;
    alexnet_status status = check_image(image);
    if (status == ALEXNET_OK)
        status = check_output(channels, height, width, out, out_count);
    if (status == ALEXNET_OK && options)
        status = check_options(options, channels);
    if (status == ALEXNET_OK)
        status = source_size(image, options ? options->resize_size : DEFAULT_RESIZE_SIZE, height, width, &resized_w,
                             &resized_h);
    if (status != ALEXNET_OK)
        return status; /* nothing has been written to out */

    output_plan plan;
    plan.out = out;
    plan.channels = channels;
    plan.height = height;
    plan.width = width;
    make_levels(&plan, options ? options->mean : default_mean, options ? options->std : default_std);

    const source_view src = make_source_view(image, channels);
    const int64_t top = crop_offset(resized_h, height), left = crop_offset(resized_w, width);
    const output_span rows = inside_span(top, resized_h, height), cols = inside_span(left, resized_w, width);
    if (rows.begin != 0 || rows.end != height || cols.begin != 0 || cols.end != width)
        write_padding(&plan, rows, cols);

    if (resized_w == image->width && resized_h == image->height) {
        crop_only(&src, &plan, top, left, rows, cols); /* torchvision skips a resize to the same size */
    } else {
        const axis_filter ax = make_axis_filter(image->width, resized_w);
        const axis_filter ay = make_axis_filter(image->height, resized_h);
        resample(&src, &plan, &ax, &ay, top, left, rows, cols);
    }
    return ALEXNET_OK;
}
