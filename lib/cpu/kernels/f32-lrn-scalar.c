/* Local response normalisation across channels, portable C. Each output takes its own sum of squares
 * over the clipped window (no running sum: subtracting squares that leave the window would cancel badly
 * when a large value leaves and small ones remain). */
#include <math.h>

#include "cpu/kernels/kernels-scalar.h"

void an_f32_lrn_scalar(const an_lrn_desc *d, const float *in, float *out, size_t image, size_t channel_begin,
                       size_t channel_end)
{
    const size_t plane = (size_t)d->height * d->width;
    const size_t before = d->size / 2, after = (d->size - 1) / 2;
    const float *src = in + image * d->channels * plane;
    float *dst = out + image * d->channels * plane;
    for (size_t c = channel_begin; c < channel_end; c++) {
        size_t c0 = c < before ? 0 : c - before;
        size_t c1 = c + after >= d->channels ? d->channels - 1 : c + after;
        for (size_t i = 0; i < plane; i++) {
            float sum = 0.0f;
            for (size_t j = c0; j <= c1; j++) {
                float v = src[j * plane + i];
                sum += v * v;
            }
            dst[c * plane + i] = src[c * plane + i] / powf(d->k + d->alpha * sum, d->beta);
        }
    }
}
