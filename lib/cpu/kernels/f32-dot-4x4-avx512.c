/* Dot-product tile, AVX-512F: 16 ZMM accumulators (one per element of the 4 x 4 tile), each step loads 16
 * floats of the 4 A rows and of the 4 B rows and does 16 FMAs (24 of the 32 registers live): lane i of an
 * accumulator sums the products at positions i (mod 16) of every segment, in order. The lanes are then added
 * pairwise (8 + 8, 4 + 4, 2 + 2, 1 + 1), a fixed order. */
#include <immintrin.h>

#include "cpu/kernels/kernels-avx512.h"

static float an_sum_lanes(__m512 v)
{
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v),
                                   _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_shuffle_ps(x, x, 1));
    return _mm_cvtss_f32(x);
}

void an_f32_dot_4x4_avx512(const an_dot_tile_args *args)
{
    __m512 acc[AN_DOT_ROWS][AN_DOT_ROWS];
    for (size_t r = 0; r < AN_DOT_ROWS; r++)
        for (size_t j = 0; j < AN_DOT_ROWS; j++)
            acc[r][j] = _mm512_setzero_ps();
    for (size_t s = 0; s < args->segments; s++) {
        const float *a0 = args->a[0] + s * args->a_step, *a1 = args->a[1] + s * args->a_step;
        const float *a2 = args->a[2] + s * args->a_step, *a3 = args->a[3] + s * args->a_step;
        const float *b0 = args->b[0] + s * args->b_step, *b1 = args->b[1] + s * args->b_step;
        const float *b2 = args->b[2] + s * args->b_step, *b3 = args->b[3] + s * args->b_step;
        for (size_t l = 0; l < args->length; l += 16) {
            const __m512 va[4] = {_mm512_loadu_ps(a0 + l), _mm512_loadu_ps(a1 + l), _mm512_loadu_ps(a2 + l),
                                  _mm512_loadu_ps(a3 + l)};
            const __m512 vb[4] = {_mm512_loadu_ps(b0 + l), _mm512_loadu_ps(b1 + l), _mm512_loadu_ps(b2 + l),
                                  _mm512_loadu_ps(b3 + l)};
            for (size_t r = 0; r < AN_DOT_ROWS; r++)
                for (size_t j = 0; j < AN_DOT_ROWS; j++)
                    acc[r][j] = _mm512_fmadd_ps(va[r], vb[j], acc[r][j]);
        }
    }
    for (size_t r = 0; r < args->m; r++)
        for (size_t j = 0; j < args->n; j++) {
            const float sum = an_sum_lanes(acc[r][j]);
            args->c[r * args->ldc + j] = args->accumulate ? args->c[r * args->ldc + j] + sum : sum;
        }
}
