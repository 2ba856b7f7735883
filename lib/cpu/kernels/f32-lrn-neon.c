/* Local response normalisation across channels, NEON (AArch64): 4 pixels of one channel at a time, each
 * with its own sum of squares over the clipped channel window (one fused multiply-add per window channel),
 * then in / (k + alpha sum)^beta. The power takes the cheapest exact-enough route for the common exponents:
 * beta = 0.75 (every AlexNet) as sqrt(b) * sqrt(sqrt(b)), 0.5 as sqrt, 1 as the base itself (vector FSQRT
 * and FDIV, correctly rounded); any other beta as exp(-beta log b) with f32-math-neon.h. The operations are
 * those of the AVX2 kernel in the same order, so both sets give the same bits. The last partial vector of a
 * plane goes through a zero-padded copy (NEON has no masked loads), computed exactly like the others. */
#include <arm_neon.h>

#include "cpu/kernels/f32-math-neon.h"
#include "cpu/kernels/kernels-neon.h"

typedef enum an_lrn_power { AN_POW_3_4, AN_POW_1_2, AN_POW_1, AN_POW_GENERAL } an_lrn_power;

static inline float32x4_t an_lrn_scale(float32x4_t x, float32x4_t base, an_lrn_power power, float32x4_t minus_beta)
{
    switch (power) {
    case AN_POW_3_4: {
        const float32x4_t root = vsqrtq_f32(base);
        return vdivq_f32(x, vmulq_f32(root, vsqrtq_f32(root)));
    }
    case AN_POW_1_2: return vdivq_f32(x, vsqrtq_f32(base));
    case AN_POW_1: return vdivq_f32(x, base);
    default: return vmulq_f32(x, an_exp_neon(vmulq_f32(minus_beta, an_log_neon(base))));
    }
}

void an_f32_lrn_neon(const an_lrn_desc *d, const float *in, float *out, size_t image, size_t channel_begin,
                     size_t channel_end)
{
    const size_t plane = (size_t)d->height * d->width;
    const size_t before = d->size / 2, after = (d->size - 1) / 2;
    const float *src = in + image * d->channels * plane;
    float *dst = out + image * d->channels * plane;
    const an_lrn_power power = d->beta == 0.75f ? AN_POW_3_4
                               : d->beta == 0.5f ? AN_POW_1_2
                               : d->beta == 1.0f ? AN_POW_1
                                                 : AN_POW_GENERAL;
    const float32x4_t alpha = vdupq_n_f32(d->alpha), k = vdupq_n_f32(d->k), minus_beta = vdupq_n_f32(-d->beta);
    const size_t body = plane / 4 * 4, tail = plane - body;
    for (size_t c = channel_begin; c < channel_end; c++) {
        const size_t c0 = c < before ? 0 : c - before;
        const size_t c1 = c + after >= d->channels ? d->channels - 1 : c + after;
        for (size_t i = 0; i < body; i += 4) {
            float32x4_t sum = vdupq_n_f32(0.0f);
            for (size_t j = c0; j <= c1; j++) {
                const float32x4_t v = vld1q_f32(src + j * plane + i);
                sum = vfmaq_f32(sum, v, v);
            }
            const float32x4_t base = vfmaq_f32(k, alpha, sum);
            vst1q_f32(dst + c * plane + i, an_lrn_scale(vld1q_f32(src + c * plane + i), base, power, minus_beta));
        }
        if (tail) {
            float32x4_t sum = vdupq_n_f32(0.0f);
            for (size_t j = c0; j <= c1; j++) {
                const float32x4_t v = an_neon_load_partial(src + j * plane + body, tail, 0.0f);
                sum = vfmaq_f32(sum, v, v);
            }
            const float32x4_t base = vfmaq_f32(k, alpha, sum);
            const float32x4_t x = an_neon_load_partial(src + c * plane + body, tail, 0.0f);
            an_neon_store_partial(dst + c * plane + body, an_lrn_scale(x, base, power, minus_beta), tail);
        }
    }
}
