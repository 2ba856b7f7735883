/* Max pooling, AVX2: AlexNet's 3x3 stride-2 windows eight outputs at a time; other windows go to the
 * portable kernel, and rows of fewer than 8 outputs to a scalar loop.
 *
 * Scheme: for 8 outputs starting at column ox the windows read input columns 2ox .. 2ox+16. The three input
 * rows are first reduced vertically at four offsets (2ox, 2ox+8, 2ox+2, 2ox+10: four YMM loads per row),
 * then the even columns, the odd columns and the even columns shifted by one are separated with a shuffle
 * and a 64-bit permute, and their maximum is the 8 outputs. NaN: max_ps drops a NaN in its first operand,
 * so every maximum is ORed with an unordered-compare mask (all ones, a NaN) of its inputs. */
#include <immintrin.h>

#include "cpu/kernels/kernels-avx2.h"
#include "cpu/kernels/kernels-scalar.h"

static inline __m256 an_max3(__m256 a, __m256 b, __m256 c)
{
    __m256 m = _mm256_max_ps(_mm256_max_ps(a, b), c);
    __m256 nan = _mm256_or_ps(_mm256_cmp_ps(a, b, _CMP_UNORD_Q), _mm256_cmp_ps(c, c, _CMP_UNORD_Q));
    return _mm256_or_ps(m, nan);
}

static inline __m256 an_column_max(const float *r0, const float *r1, const float *r2, size_t x)
{
    return an_max3(_mm256_loadu_ps(r0 + x), _mm256_loadu_ps(r1 + x), _mm256_loadu_ps(r2 + x));
}

/* Elements 0, 2, ..., 14 of the 16 in (lo, hi); with odd = 1: elements 1, 3, ..., 15. */
static inline __m256 an_even(__m256 lo, __m256 hi)
{
    __m256 t = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(2, 0, 2, 0)); /* lo0 lo2 hi0 hi2 | lo4 lo6 hi4 hi6 */
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}

static inline __m256 an_odd(__m256 lo, __m256 hi)
{
    __m256 t = _mm256_shuffle_ps(lo, hi, _MM_SHUFFLE(3, 1, 3, 1));
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(t), _MM_SHUFFLE(3, 1, 2, 0)));
}

/* The 8 outputs whose windows start at input column x (they read columns x .. x + 17). */
static inline __m256 an_eight(const float *r0, const float *r1, const float *r2, size_t x)
{
    __m256 lo = an_column_max(r0, r1, r2, x), hi = an_column_max(r0, r1, r2, x + 8);
    __m256 lo2 = an_column_max(r0, r1, r2, x + 2), hi2 = an_column_max(r0, r1, r2, x + 10);
    return an_max3(an_even(lo, hi), an_odd(lo, hi), an_even(lo2, hi2));
}

static inline float an_max_nan(float best, float v) { return v > best || v != v ? v : best; }

void an_f32_maxpool_3x3s2_avx2(const an_pool_desc *d, const float *in, float *out, size_t plane_begin,
                               size_t plane_end)
{
    if (d->kernel_size != 3 || d->stride != 2) {
        an_f32_maxpool_scalar(d, in, out, plane_begin, plane_end);
        return;
    }
    const size_t w = d->in_width, in_plane = (size_t)d->in_height * w;
    const size_t ow = d->out_width, out_plane = (size_t)d->out_height * ow;
    const float *limit = in + plane_end * in_plane;
    for (size_t p = plane_begin; p < plane_end; p++) {
        for (size_t oy = 0; oy < d->out_height; oy++) {
            const float *r0 = in + p * in_plane + 2 * oy * w, *r1 = r0 + w, *r2 = r1 + w;
            float *dst = out + p * out_plane + oy * ow;
            size_t ox = 0;
            /* the vector step reads columns 2ox .. 2ox+17 */
            for (; ox + 8 <= ow && 2 * ox + 18 <= w; ox += 8)
                _mm256_storeu_ps(dst + ox, an_eight(r0, r1, r2, 2 * ox));
            /* The row's tail: its last 8 outputs once more, overlapping (the same bits), where the reads stay
             * inside the planes; column 2ow + 1 past a row's end only feeds a lane that is dropped. Instead of
             * 3 of pool1's 27 and 5 of pool2's 13 outputs per row in the scalar loop: 4096 55x55 planes
             * 2.9 -> 2.25 ms, 12288 27x27 planes 2.6 -> 1.8 ms (1 thread, Zen 5). */
            if (ox < ow && ow >= 8 && r2 + 2 * (ow - 8) + 18 <= limit) {
                _mm256_storeu_ps(dst + ow - 8, an_eight(r0, r1, r2, 2 * (ow - 8)));
                ox = ow;
            }
            for (; ox < ow; ox++) {
                const float *window = r0 + 2 * ox;
                float best = window[0];
                for (size_t ky = 0; ky < 3; ky++)
                    for (size_t kx = 0; kx < 3; kx++)
                        best = an_max_nan(best, window[ky * w + kx]);
                dst[ox] = best;
            }
        }
    }
}
