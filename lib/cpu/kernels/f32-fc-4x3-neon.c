/* Fully connected layer, NEON (AArch64), on the model's row-major [out][in] weights (never copied).
 *
 * Every dot product (image i, output o) has 8 lanes in two float32x4 accumulators: lane l takes the terms
 * k = l mod 8 with one fused multiply-add each, in k order; the last K % 8 terms come through a zero-padded
 * copy (NEON has no masked loads); then the lanes are added in the fixed order ((0+4)+(2+6)) + ((1+5)+(3+7))
 * and the bias last. That is the chain of the AVX2 kernel (f32-fc-4x3-avx2.c), so both sets give the same
 * bits, and it does not depend on which tile computes it, so any row split (threads) and any batch does not
 * change them either.
 *
 * Blocking: batch 1 is a memory-bound GEMV: 8 rows x 1 image streams 8 weight rows at once (16 accumulators,
 * 8 independent prefetch streams). Larger batches use tiles of 4 rows x 3 images over the whole of K: 24
 * accumulators, and per 8 terms 6 input and 8 weight loads for 24 FMAs, taken a half (4 lanes) at a time so
 * that 28 of the 32 vector registers are live; the 4 rows (4 x in floats) stay in L2 while every image passes
 * over them, so the weights are read from memory once per call. The loops over rows, images and halves are
 * fully unrolled (GCC unroll pragmas), so the accumulators are registers even at -O2. */
#include <arm_neon.h>
#include <string.h>

#include "cpu/kernels/kernels-neon.h"

#define AN_ALWAYS_INLINE inline __attribute__((always_inline))

static AN_ALWAYS_INLINE float an_hsum8(float32x4_t lo, float32x4_t hi)
{
    const float32x4_t s = vaddq_f32(lo, hi);                             /* l0+l4 .. l3+l7 */
    const float32x2_t t = vadd_f32(vget_low_f32(s), vget_high_f32(s)); /* (0+4)+(2+6), (1+5)+(3+7) */
    return vget_lane_f32(t, 0) + vget_lane_f32(t, 1);
}

/* acc[(r * C + c) * 2 + h] += the terms of dot(w[r], x[c]), lane 4h + l taking k = 4h + l mod 8. R and C are
 * compile-time constants at every call, so the accumulators live in registers for the whole of K. */
static AN_ALWAYS_INLINE void an_fc_tile(const float *const *w, const float *const *x, size_t k_all, float *sums,
                                        const int R, const int C)
{
    float32x4_t acc[4][3][2];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int c = 0; c < C; c++)
            acc[r][c][0] = acc[r][c][1] = vdupq_n_f32(0.0f);
    size_t k = 0;
    for (; k + 8 <= k_all; k += 8) {
#pragma GCC unroll 8
        for (int h = 0; h < 2; h++) {
            float32x4_t xv[3];
#pragma GCC unroll 8
            for (int c = 0; c < C; c++)
                xv[c] = vld1q_f32(x[c] + k + 4 * h);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                const float32x4_t wv = vld1q_f32(w[r] + k + 4 * h);
#pragma GCC unroll 8
                for (int c = 0; c < C; c++)
                    acc[r][c][h] = vfmaq_f32(acc[r][c][h], wv, xv[c]);
            }
        }
    }
    if (k < k_all) {
        /* the last K % 8 terms, zeros in the other lanes (0 x 0 leaves a sum as a masked load would) */
        float xt[3][8] = {{0}}, wt[4][8] = {{0}};
#pragma GCC unroll 8
        for (int c = 0; c < C; c++)
            memcpy(xt[c], x[c] + k, (k_all - k) * sizeof(float));
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
            memcpy(wt[r], w[r] + k, (k_all - k) * sizeof(float));
#pragma GCC unroll 8
        for (int h = 0; h < 2; h++)
#pragma GCC unroll 8
            for (int r = 0; r < R; r++)
#pragma GCC unroll 8
                for (int c = 0; c < C; c++)
                    acc[r][c][h] = vfmaq_f32(acc[r][c][h], vld1q_f32(wt[r] + 4 * h), vld1q_f32(xt[c] + 4 * h));
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int c = 0; c < C; c++)
            sums[r * C + c] = an_hsum8(acc[r][c][0], acc[r][c][1]);
}

static void an_fc_tile_4x3(const float *const *w, const float *const *x, size_t k_all, float *sums)
{
    an_fc_tile(w, x, k_all, sums, 4, 3);
}
static void an_fc_tile_4x2(const float *const *w, const float *const *x, size_t k_all, float *sums)
{
    an_fc_tile(w, x, k_all, sums, 4, 2);
}
static void an_fc_tile_4x1(const float *const *w, const float *const *x, size_t k_all, float *sums)
{
    an_fc_tile(w, x, k_all, sums, 4, 1);
}

/* Batch 1: 8 rows at once over the whole of K (the input vector stays in L1 by itself). */
static void an_fc_gemv_8(const float *const *w, const float *x, size_t k_all, float *sums)
{
    float32x4_t lo[8], hi[8];
#pragma GCC unroll 8
    for (int r = 0; r < 8; r++)
        lo[r] = hi[r] = vdupq_n_f32(0.0f);
    size_t k = 0;
    for (; k + 8 <= k_all; k += 8) {
        const float32x4_t x0 = vld1q_f32(x + k), x1 = vld1q_f32(x + k + 4);
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++) {
            lo[r] = vfmaq_f32(lo[r], vld1q_f32(w[r] + k), x0);
            hi[r] = vfmaq_f32(hi[r], vld1q_f32(w[r] + k + 4), x1);
        }
    }
    if (k < k_all) {
        float xt[8] = {0}, wt[8];
        memcpy(xt, x + k, (k_all - k) * sizeof(float));
        const float32x4_t x0 = vld1q_f32(xt), x1 = vld1q_f32(xt + 4);
#pragma GCC unroll 8
        for (int r = 0; r < 8; r++) {
            memset(wt, 0, sizeof wt);
            memcpy(wt, w[r] + k, (k_all - k) * sizeof(float));
            lo[r] = vfmaq_f32(lo[r], vld1q_f32(wt), x0);
            hi[r] = vfmaq_f32(hi[r], vld1q_f32(wt + 4), x1);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < 8; r++)
        sums[r] = an_hsum8(lo[r], hi[r]);
}

static inline void an_fc_store(const an_fc_desc *d, const float *bias, float *out, size_t o0, size_t rows,
                               size_t i0, size_t images, const float *sums, size_t stride)
{
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < images; c++) {
            const float v = sums[r * stride + c] + bias[o0 + r];
            out[(i0 + c) * d->out_features + o0 + r] = d->relu && v < 0.0f ? 0.0f : v;
        }
    }
}

void an_f32_fc_4x3_neon(const an_fc_desc *d, const float *in, const float *weight, const float *bias, float *out,
                        size_t row_begin, size_t row_end)
{
    const size_t k_all = d->in_features;
    if (d->batch == 1) {
        for (size_t o0 = row_begin; o0 < row_end; o0 += 8) {
            const size_t rows = row_end - o0 < 8 ? row_end - o0 : 8;
            const float *w[8];
            for (size_t r = 0; r < 8; r++) /* rows past the end repeat the last one; their sums are dropped */
                w[r] = weight + (o0 + (r < rows ? r : rows - 1)) * k_all;
            float sums[8];
            an_fc_gemv_8(w, in, k_all, sums);
            an_fc_store(d, bias, out, o0, rows, 0, 1, sums, 1);
        }
        return;
    }
    for (size_t o0 = row_begin; o0 < row_end; o0 += 4) {
        const size_t rows = row_end - o0 < 4 ? row_end - o0 : 4;
        const float *w[4];
        for (size_t r = 0; r < 4; r++)
            w[r] = weight + (o0 + (r < rows ? r : rows - 1)) * k_all;
        for (size_t i0 = 0; i0 < d->batch; i0 += 3) {
            const size_t images = d->batch - i0 < 3 ? d->batch - i0 : 3;
            const float *x[3] = {in + i0 * k_all, in + (i0 + (images > 1)) * k_all, in + (i0 + images - 1) * k_all};
            float sums[12];
            if (images == 3)
                an_fc_tile_4x3(w, x, k_all, sums);
            else if (images == 2)
                an_fc_tile_4x2(w, x, k_all, sums);
            else
                an_fc_tile_4x1(w, x, k_all, sums);
            an_fc_store(d, bias, out, o0, rows, i0, images, sums, images);
        }
    }
}
