/* Convolution GEMM microkernel, AVX2 + FMA: a 6 x 16 tile of C in 12 YMM accumulators.
 *
 * Blocking: per step of K, two aligned loads bring the 16 im2col values of the packed B row, and each of
 * the 6 packed weights of the A column is broadcast once and multiplied into both halves: 12 FMAs for 2
 * loads + 6 broadcasts, with 12 independent accumulator chains (enough to cover the FMA latency on two
 * pipes). 15 of the 16 YMM registers are live. The driver (lib/cpu/cpu_conv.c) keeps the kc x 16 B panel
 * in L1 across consecutive A panels and the A block in L2 (see gemm_kc in the table).
 *
 * The indirect variant reads B row k with two unaligned loads from b_rows[k] instead (conv1's unpacked
 * panels: the rows are consecutive floats of the bordered input, in L1 for all M panels of one N panel;
 * loads have ports to spare here: 2 B + 6 broadcasts per 6 cycles of FMAs). Both come from one body. */
#include <immintrin.h>

#include "cpu/kernels/f32-math-avx2.h"
#include "cpu/kernels/kernels-avx2.h"

#define MR 6
#define NR 16
#define AN_ALWAYS_INLINE inline __attribute__((always_inline))

/* Store one 16-wide row, clipped to n columns. */
static inline void an_store_row(float *c, __m256 lo, __m256 hi, size_t n)
{
    if (n == NR) {
        _mm256_storeu_ps(c, lo);
        _mm256_storeu_ps(c + 8, hi);
    } else if (n > 8) {
        _mm256_storeu_ps(c, lo);
        _mm256_maskstore_ps(c + 8, an_avx2_tail_mask(n - 8), hi);
    } else {
        _mm256_maskstore_ps(c, an_avx2_tail_mask(n), lo);
    }
}

static inline void an_load_row(const float *c, size_t n, __m256 *lo, __m256 *hi)
{
    if (n == NR) {
        *lo = _mm256_loadu_ps(c);
        *hi = _mm256_loadu_ps(c + 8);
    } else if (n > 8) {
        *lo = _mm256_loadu_ps(c);
        *hi = _mm256_maskload_ps(c + 8, an_avx2_tail_mask(n - 8));
    } else {
        *lo = _mm256_maskload_ps(c, an_avx2_tail_mask(n));
        *hi = _mm256_setzero_ps();
    }
}

/* b_rows == NULL: the packed panel b; else row k at b_rows[k] (the branch folds away in each caller). */
static AN_ALWAYS_INLINE void an_gemm_6x16(size_t kc, const float *a, const float *b, const float *const *b_rows,
                                         const float *bias, float *c, size_t ldc, size_t m, size_t n, uint32_t flags)
{
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    if (flags & AN_GEMM_ACCUMULATE) {
        /* rows past m are never stored: start them anywhere (zero) without touching memory */
        c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();
        an_load_row(c, n, &c00, &c01);
        if (m > 1)
            an_load_row(c + ldc, n, &c10, &c11);
        if (m > 2)
            an_load_row(c + 2 * ldc, n, &c20, &c21);
        if (m > 3)
            an_load_row(c + 3 * ldc, n, &c30, &c31);
        if (m > 4)
            an_load_row(c + 4 * ldc, n, &c40, &c41);
        if (m > 5)
            an_load_row(c + 5 * ldc, n, &c50, &c51);
    } else {
        c00 = c01 = _mm256_broadcast_ss(bias + 0);
        c10 = c11 = _mm256_broadcast_ss(bias + 1);
        c20 = c21 = _mm256_broadcast_ss(bias + 2);
        c30 = c31 = _mm256_broadcast_ss(bias + 3);
        c40 = c41 = _mm256_broadcast_ss(bias + 4);
        c50 = c51 = _mm256_broadcast_ss(bias + 5);
    }

    for (size_t k = 0; k < kc; k++) {
        __m256 b0, b1;
        if (b_rows != NULL) {
            b0 = _mm256_loadu_ps(b_rows[k]);
            b1 = _mm256_loadu_ps(b_rows[k] + 8);
        } else {
            b0 = _mm256_load_ps(b);
            b1 = _mm256_load_ps(b + 8);
            b += NR;
        }
        __m256 av = _mm256_broadcast_ss(a + 0);
        c00 = _mm256_fmadd_ps(av, b0, c00);
        c01 = _mm256_fmadd_ps(av, b1, c01);
        av = _mm256_broadcast_ss(a + 1);
        c10 = _mm256_fmadd_ps(av, b0, c10);
        c11 = _mm256_fmadd_ps(av, b1, c11);
        av = _mm256_broadcast_ss(a + 2);
        c20 = _mm256_fmadd_ps(av, b0, c20);
        c21 = _mm256_fmadd_ps(av, b1, c21);
        av = _mm256_broadcast_ss(a + 3);
        c30 = _mm256_fmadd_ps(av, b0, c30);
        c31 = _mm256_fmadd_ps(av, b1, c31);
        av = _mm256_broadcast_ss(a + 4);
        c40 = _mm256_fmadd_ps(av, b0, c40);
        c41 = _mm256_fmadd_ps(av, b1, c41);
        av = _mm256_broadcast_ss(a + 5);
        c50 = _mm256_fmadd_ps(av, b0, c50);
        c51 = _mm256_fmadd_ps(av, b1, c51);
        a += MR;
    }

    if (flags & AN_GEMM_RELU) {
        /* max(0, x) returns x (its second operand) when x is NaN, and keeps -0 as the reference does */
        const __m256 zero = _mm256_setzero_ps();
        c00 = _mm256_max_ps(zero, c00), c01 = _mm256_max_ps(zero, c01);
        c10 = _mm256_max_ps(zero, c10), c11 = _mm256_max_ps(zero, c11);
        c20 = _mm256_max_ps(zero, c20), c21 = _mm256_max_ps(zero, c21);
        c30 = _mm256_max_ps(zero, c30), c31 = _mm256_max_ps(zero, c31);
        c40 = _mm256_max_ps(zero, c40), c41 = _mm256_max_ps(zero, c41);
        c50 = _mm256_max_ps(zero, c50), c51 = _mm256_max_ps(zero, c51);
    }

    an_store_row(c, c00, c01, n);
    if (m > 1)
        an_store_row(c + ldc, c10, c11, n);
    if (m > 2)
        an_store_row(c + 2 * ldc, c20, c21, n);
    if (m > 3)
        an_store_row(c + 3 * ldc, c30, c31, n);
    if (m > 4)
        an_store_row(c + 4 * ldc, c40, c41, n);
    if (m > 5)
        an_store_row(c + 5 * ldc, c50, c51, n);
}

void an_f32_gemm_6x16_avx2(size_t kc, const float *a, const float *b, const float *bias, float *c, size_t ldc,
                           size_t m, size_t n, uint32_t flags)
{
    an_gemm_6x16(kc, a, b, NULL, bias, c, ldc, m, n, flags);
}

void an_f32_gemm_6x16_avx2_indirect(size_t kc, const float *a, const float *const *b_rows, const float *bias,
                                    float *c, size_t ldc, size_t m, size_t n, uint32_t flags)
{
    an_gemm_6x16(kc, a, NULL, b_rows, bias, c, ldc, m, n, flags);
}
