/* Local response normalisation across channels, AVX2 + FMA: 8 pixels of one channel at a time, each with
 * its own sum of squares over the clipped channel window (one FMA per window channel), then
 * in / (k + alpha sum)^beta. The power takes the cheapest exact-enough route for the common exponents:
 * beta = 0.75 (every AlexNet) as sqrt(b) * sqrt(sqrt(b)), 0.5 as sqrt, 1 as the base itself; any other beta
 * as exp(-beta log b) with the vector exp/log of f32-math-avx2.h. The last partial vector of a plane uses
 * masked loads and stores. */
#include <immintrin.h>

#include "cpu/kernels/f32-math-avx2.h"
#include "cpu/kernels/kernels-avx2.h"

typedef enum an_lrn_power { AN_POW_3_4, AN_POW_1_2, AN_POW_1, AN_POW_GENERAL } an_lrn_power;

static inline __m256 an_lrn_scale(__m256 x, __m256 base, an_lrn_power power, __m256 minus_beta)
{
    switch (power) {
    case AN_POW_3_4: {
        __m256 root = _mm256_sqrt_ps(base);
        return _mm256_div_ps(x, _mm256_mul_ps(root, _mm256_sqrt_ps(root)));
    }
    case AN_POW_1_2: return _mm256_div_ps(x, _mm256_sqrt_ps(base));
    case AN_POW_1: return _mm256_div_ps(x, base);
    default: return _mm256_mul_ps(x, an_exp_avx2(_mm256_mul_ps(minus_beta, an_log_avx2(base))));
    }
}

void an_f32_lrn_avx2(const an_lrn_desc *d, const float *in, float *out, size_t image, size_t channel_begin,
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
    const __m256 alpha = _mm256_set1_ps(d->alpha), k = _mm256_set1_ps(d->k), minus_beta = _mm256_set1_ps(-d->beta);
    for (size_t c = channel_begin; c < channel_end; c++) {
        size_t c0 = c < before ? 0 : c - before;
        size_t c1 = c + after >= d->channels ? d->channels - 1 : c + after;
        size_t i = 0;
        for (; i + 8 <= plane; i += 8) {
            __m256 sum = _mm256_setzero_ps();
            for (size_t j = c0; j <= c1; j++) {
                __m256 v = _mm256_loadu_ps(src + j * plane + i);
                sum = _mm256_fmadd_ps(v, v, sum);
            }
            __m256 base = _mm256_fmadd_ps(alpha, sum, k);
            _mm256_storeu_ps(dst + c * plane + i,
                             an_lrn_scale(_mm256_loadu_ps(src + c * plane + i), base, power, minus_beta));
        }
        if (i < plane) {
            const __m256i mask = an_avx2_tail_mask(plane - i);
            __m256 sum = _mm256_setzero_ps();
            for (size_t j = c0; j <= c1; j++) {
                __m256 v = _mm256_maskload_ps(src + j * plane + i, mask);
                sum = _mm256_fmadd_ps(v, v, sum);
            }
            __m256 base = _mm256_fmadd_ps(alpha, sum, k);
            _mm256_maskstore_ps(dst + c * plane + i, mask,
                                an_lrn_scale(_mm256_maskload_ps(src + c * plane + i, mask), base, power, minus_beta));
        }
    }
}
