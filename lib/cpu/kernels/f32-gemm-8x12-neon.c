/* Convolution GEMM microkernel, NEON (AArch64): an 8 x 12 tile of C in 24 float32x4 accumulators.
 *
 * Blocking: per step of K, three loads bring the 12 im2col values of the packed B row (b0 b1 b2) and two
 * bring the 8 packed weights of the A column (a0 a1); each weight multiplies the B row straight from its
 * lane (FMLA by element, no broadcast): 24 fused multiply-adds for 5 loads, with 24 independent accumulator
 * chains (enough to cover a 4-cycle FMA latency on two to four pipes). 29 of the 32 vector registers are
 * live. MR = 8 divides the output channels per group of every AlexNet layer (48 ... 384), so the M tail is
 * rare; NR = 12 wastes little on the N tail either (3025, 729 and 169 pixels). Partial tiles load and store
 * their last vector of each row through a small buffer. The driver (lib/cpu/cpu_conv.c) keeps the kc x 12
 * B panel in L1 across consecutive A panels and the A block in L2 (gemm_kc in the table).
 *
 * Each C element is bias (or C) followed by one FMA per k in k order, the chain kernels.h prescribes, and
 * the same one the AVX2 and AVX-512 microkernels compute, so every set gives the same bits here.
 *
 * The indirect variant reads B row k with three loads from b_rows[k] instead; both come from one body. */
#include <arm_neon.h>

#include "cpu/kernels/f32-math-neon.h"
#include "cpu/kernels/kernels-neon.h"

#define MR 8
#define NR 12
#define AN_ALWAYS_INLINE inline __attribute__((always_inline))

/* The 24 accumulators are named variables (c<row>_<vector>), never an array, so that nothing forces them
 * to memory: AN_ROWS(X) expands X(r, a, lane) for the 8 rows, with the A vector and lane each row's weight
 * sits in. */
#define AN_ROWS(X) X(0, a0, 0) X(1, a0, 1) X(2, a0, 2) X(3, a0, 3) X(4, a1, 0) X(5, a1, 1) X(6, a1, 2) X(7, a1, 3)

/* Column vector v (columns 4v .. 4v+3) of a row of C clipped to n columns; lanes past n read as 0. */
static inline float32x4_t an_load_vector(const float *c, size_t n, size_t v)
{
    const size_t j = 4 * v;
    return n >= j + 4 ? vld1q_f32(c + j) : n > j ? an_neon_load_partial(c + j, n - j, 0.0f) : vdupq_n_f32(0.0f);
}

static inline void an_store_row(float *c, size_t n, float32x4_t v0, float32x4_t v1, float32x4_t v2)
{
    if (n == NR) {
        vst1q_f32(c, v0);
        vst1q_f32(c + 4, v1);
        vst1q_f32(c + 8, v2);
    } else if (n > 8) {
        vst1q_f32(c, v0);
        vst1q_f32(c + 4, v1);
        an_neon_store_partial(c + 8, v2, n - 8);
    } else if (n > 4) {
        vst1q_f32(c, v0);
        an_neon_store_partial(c + 4, v1, n - 4);
    } else {
        an_neon_store_partial(c, v0, n);
    }
}

/* b_rows == NULL: the packed panel b; else row k at b_rows[k] (the branch folds away in each caller). */
static AN_ALWAYS_INLINE void an_gemm_8x12(size_t kc, const float *a, const float *b, const float *const *b_rows,
                                         const float *bias, float *c, size_t ldc, size_t m, size_t n, uint32_t flags)
{
#define AN_DECLARE(r, av, lane) float32x4_t c##r##_0, c##r##_1, c##r##_2;
    AN_ROWS(AN_DECLARE)
    if (flags & AN_GEMM_ACCUMULATE) {
        /* rows past m are never stored: start them at zero without touching memory */
#define AN_LOAD(r, av, lane)                                                                                        \
    if ((r) < m) {                                                                                                  \
        c##r##_0 = an_load_vector(c + (r) * ldc, n, 0);                                                             \
        c##r##_1 = an_load_vector(c + (r) * ldc, n, 1);                                                             \
        c##r##_2 = an_load_vector(c + (r) * ldc, n, 2);                                                             \
    } else {                                                                                                        \
        c##r##_0 = c##r##_1 = c##r##_2 = vdupq_n_f32(0.0f);                                                         \
    }
        AN_ROWS(AN_LOAD)
    } else {
        const float32x4_t a0 = vld1q_f32(bias), a1 = vld1q_f32(bias + 4);
#define AN_BIAS(r, av, lane) c##r##_0 = c##r##_1 = c##r##_2 = vdupq_laneq_f32(av, lane);
        AN_ROWS(AN_BIAS)
    }

    for (size_t k = 0; k < kc; k++) {
        const float *bk = b_rows != NULL ? b_rows[k] : b;
        const float32x4_t b0 = vld1q_f32(bk), b1 = vld1q_f32(bk + 4), b2 = vld1q_f32(bk + 8);
        const float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
#define AN_FMA(r, av, lane)                                                                                         \
    c##r##_0 = vfmaq_laneq_f32(c##r##_0, b0, av, lane);                                                             \
    c##r##_1 = vfmaq_laneq_f32(c##r##_1, b1, av, lane);                                                             \
    c##r##_2 = vfmaq_laneq_f32(c##r##_2, b2, av, lane);
        AN_ROWS(AN_FMA)
        a += MR;
        if (b_rows == NULL)
            b += NR;
    }

    if (flags & AN_GEMM_RELU) {
#define AN_RELU(r, av, lane)                                                                                        \
    c##r##_0 = an_neon_relu(c##r##_0);                                                                              \
    c##r##_1 = an_neon_relu(c##r##_1);                                                                              \
    c##r##_2 = an_neon_relu(c##r##_2);
        AN_ROWS(AN_RELU)
    }
#define AN_STORE(r, av, lane)                                                                                       \
    if ((r) < m)                                                                                                    \
        an_store_row(c + (r) * ldc, n, c##r##_0, c##r##_1, c##r##_2);
    AN_ROWS(AN_STORE)
}

void an_f32_gemm_8x12_neon(size_t kc, const float *a, const float *b, const float *bias, float *c, size_t ldc,
                           size_t m, size_t n, uint32_t flags)
{
    an_gemm_8x12(kc, a, b, NULL, bias, c, ldc, m, n, flags);
}

void an_f32_gemm_8x12_neon_indirect(size_t kc, const float *a, const float *const *b_rows, const float *bias,
                                    float *c, size_t ldc, size_t m, size_t n, uint32_t flags)
{
    an_gemm_8x12(kc, a, NULL, b_rows, bias, c, ldc, m, n, flags);
}
