/* Dot-product tile, AVX2 + FMA: 16 YMM accumulators (one per element of the 4 x 4 tile), each step loads
 * 8 floats of the 4 A rows and of the 4 B rows and does 16 FMAs: lane i of an accumulator sums the products
 * at positions i (mod 8) of every segment, in order. The lanes are then added pairwise (4 + 4, 2 + 2, 1 + 1),
 * a fixed order. */
#include <immintrin.h>

#include "cpu/kernels/kernels-avx2.h"

static float an_sum_lanes(__m256 v)
{
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_shuffle_ps(x, x, 1));
    return _mm_cvtss_f32(x);
}

void an_f32_dot_4x4_avx2(const an_dot_tile_args *args)
{
    __m256 acc[AN_DOT_ROWS][AN_DOT_ROWS];
    for (size_t r = 0; r < AN_DOT_ROWS; r++)
        for (size_t j = 0; j < AN_DOT_ROWS; j++)
            acc[r][j] = _mm256_setzero_ps();
    for (size_t s = 0; s < args->segments; s++) {
        const float *a0 = args->a[0] + s * args->a_step, *a1 = args->a[1] + s * args->a_step;
        const float *a2 = args->a[2] + s * args->a_step, *a3 = args->a[3] + s * args->a_step;
        const float *b0 = args->b[0] + s * args->b_step, *b1 = args->b[1] + s * args->b_step;
        const float *b2 = args->b[2] + s * args->b_step, *b3 = args->b[3] + s * args->b_step;
        for (size_t l = 0; l < args->length; l += 8) {
            const __m256 va[4] = {_mm256_loadu_ps(a0 + l), _mm256_loadu_ps(a1 + l), _mm256_loadu_ps(a2 + l),
                                  _mm256_loadu_ps(a3 + l)};
            const __m256 vb[4] = {_mm256_loadu_ps(b0 + l), _mm256_loadu_ps(b1 + l), _mm256_loadu_ps(b2 + l),
                                  _mm256_loadu_ps(b3 + l)};
            for (size_t r = 0; r < AN_DOT_ROWS; r++)
                for (size_t j = 0; j < AN_DOT_ROWS; j++)
                    acc[r][j] = _mm256_fmadd_ps(va[r], vb[j], acc[r][j]);
        }
    }
    for (size_t r = 0; r < args->m; r++)
        for (size_t j = 0; j < args->n; j++) {
            const float sum = an_sum_lanes(acc[r][j]);
            args->c[r * args->ldc + j] = args->accumulate ? args->c[r * args->ldc + j] + sum : sum;
        }
}
