/* Max pooling, portable C: any window and stride, no padding; each output scans its window row by row.
 * NaN propagates as in PyTorch: a NaN input always replaces the running maximum, and once the running
 * maximum is NaN nothing replaces it. */
#include "cpu/kernels/kernels-scalar.h"

static inline float an_max_nan(float best, float v) { return v > best || v != v ? v : best; }

void an_f32_maxpool_scalar(const an_pool_desc *d, const float *in, float *out, size_t plane_begin,
                           size_t plane_end)
{
    const size_t in_plane = (size_t)d->in_height * d->in_width, out_plane = (size_t)d->out_height * d->out_width;
    for (size_t p = plane_begin; p < plane_end; p++) {
        const float *src = in + p * in_plane;
        float *dst = out + p * out_plane;
        for (size_t oy = 0; oy < d->out_height; oy++) {
            const float *rows = src + oy * d->stride * d->in_width;
            for (size_t ox = 0; ox < d->out_width; ox++) {
                const float *window = rows + ox * d->stride;
                float best = window[0];
                for (size_t ky = 0; ky < d->kernel_size; ky++)
                    for (size_t kx = 0; kx < d->kernel_size; kx++)
                        best = an_max_nan(best, window[ky * d->in_width + kx]);
                dst[oy * d->out_width + ox] = best;
            }
        }
    }
}
