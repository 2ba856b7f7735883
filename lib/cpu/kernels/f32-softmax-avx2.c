/* Softmax of one row, AVX2 + FMA: vector maximum, vector exp (f32-math-avx2.h) of in - max, the
 * exponentials summed in double (two YMM of 4 doubles), then one multiply by the inverse sum. The last
 * partial vector uses masked loads; its dead lanes are excluded from the max (-inf) and the sum (0). */
#include <immintrin.h>
#include <math.h>

#include "cpu/kernels/f32-math-avx2.h"
#include "cpu/kernels/kernels-avx2.h"

void an_f32_softmax_avx2(const float *in, float *out, size_t classes)
{
    const size_t body = classes / 8 * 8, tail = classes - body;
    const __m256i mask = an_avx2_tail_mask(tail);
    const __m256 minus_inf = _mm256_set1_ps(-INFINITY);
    __m256 maxv = minus_inf;
    for (size_t i = 0; i < body; i += 8)
        maxv = _mm256_max_ps(maxv, _mm256_loadu_ps(in + i));
    if (tail)
        maxv = _mm256_max_ps(maxv, _mm256_blendv_ps(minus_inf, _mm256_maskload_ps(in + body, mask),
                                                    _mm256_castsi256_ps(mask)));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(maxv), _mm256_extractf128_ps(maxv, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
    const __m256 max = _mm256_broadcastss_ps(m4);

    __m256d sum_lo = _mm256_setzero_pd(), sum_hi = _mm256_setzero_pd();
    for (size_t i = 0; i < body; i += 8) {
        __m256 e = an_exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(in + i), max));
        _mm256_storeu_ps(out + i, e);
        sum_lo = _mm256_add_pd(sum_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        sum_hi = _mm256_add_pd(sum_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    if (tail) {
        __m256 e = an_exp_avx2(_mm256_sub_ps(_mm256_maskload_ps(in + body, mask), max));
        e = _mm256_and_ps(e, _mm256_castsi256_ps(mask));
        _mm256_maskstore_ps(out + body, mask, e);
        sum_lo = _mm256_add_pd(sum_lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
        sum_hi = _mm256_add_pd(sum_hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
    }
    __m256d s = _mm256_add_pd(sum_lo, sum_hi);
    __m128d s2 = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    double sum = _mm_cvtsd_f64(_mm_add_sd(s2, _mm_unpackhi_pd(s2, s2)));

    const __m256 inverse = _mm256_set1_ps((float)(1.0 / sum));
    for (size_t i = 0; i < body; i += 8)
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(out + i), inverse));
    if (tail)
        _mm256_maskstore_ps(out + body, mask, _mm256_mul_ps(_mm256_maskload_ps(out + body, mask), inverse));
}
