/* Convolution GEMM microkernel, portable C: a 4 x 8 tile of C.
 *
 * Blocking: the whole tile lives in a local 4 x 8 accumulator array (the compiler keeps it in registers and
 * vectorises the 8 columns with whatever baseline SIMD the target has); each step of K reads 4 weights
 * (one per row) and 8 im2col values (one per column) from the packed panels and does 32 multiply-adds.
 * The driver (lib/cpu/cpu_conv.c) does the cache blocking around it. This is the fallback on CPUs without
 * a dedicated set, and it computes the same thing as the SIMD microkernels (in another rounding, since it
 * does not fuse the multiply and the add). The indirect variant reads B row k at b_rows[k] instead. */
#include "cpu/kernels/kernels-scalar.h"

#define MR 4
#define NR 8

/* b_rows == NULL: the packed panel b; else row k at b_rows[k]. */
static void an_gemm_4x8(size_t kc, const float *a, const float *b, const float *const *b_rows, const float *bias,
                        float *c, size_t ldc, size_t m, size_t n, uint32_t flags)
{
    float acc[MR][NR];
    for (size_t r = 0; r < MR; r++)
        for (size_t j = 0; j < NR; j++)
            acc[r][j] = (flags & AN_GEMM_ACCUMULATE) && r < m && j < n ? c[r * ldc + j] : bias[r];
    for (size_t k = 0; k < kc; k++) {
        const float *ak = a + k * MR, *bk = b_rows != NULL ? b_rows[k] : b + k * NR;
        for (size_t r = 0; r < MR; r++)
            for (size_t j = 0; j < NR; j++)
                acc[r][j] += ak[r] * bk[j];
    }
    for (size_t r = 0; r < m; r++) {
        for (size_t j = 0; j < n; j++) {
            float v = acc[r][j];
            /* `v < 0` is false for NaN and -0, which therefore pass through as in the reference */
            c[r * ldc + j] = (flags & AN_GEMM_RELU) && v < 0.0f ? 0.0f : v;
        }
    }
}

void an_f32_gemm_4x8_scalar(size_t kc, const float *a, const float *b, const float *bias, float *c, size_t ldc,
                            size_t m, size_t n, uint32_t flags)
{
    an_gemm_4x8(kc, a, b, NULL, bias, c, ldc, m, n, flags);
}

void an_f32_gemm_4x8_scalar_indirect(size_t kc, const float *a, const float *const *b_rows, const float *bias,
                                     float *c, size_t ldc, size_t m, size_t n, uint32_t flags)
{
    an_gemm_4x8(kc, a, NULL, b_rows, bias, c, ldc, m, n, flags);
}
