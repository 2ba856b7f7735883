/* Fully connected layer, AVX2 + FMA, on the model's row-major [out][in] weights (never copied).
 *
 * Every dot product (image i, output o) is one YMM accumulator: lane l takes the terms k = l mod 8 with one
 * FMA each, in k order; the last K % 8 terms come through masked loads (zeros elsewhere); then the lanes
 * are added in the fixed order ((0+4)+(2+6)) + ((1+5)+(3+7)) and the bias last. That chain does not depend
 * on which tile computes it, so any row split (threads) and any batch gives the same bits.
 *
 * Blocking: batch 1 is a memory-bound GEMV: 8 rows x 1 image streams 8 weight rows at once (8 prefetch
 * streams, 8 independent FMA chains). Larger batches use tiles of 4 rows x 3 images (12 accumulators, 7
 * loads per 12 FMAs) over the whole of K: the 4 rows (4 x in floats, 144 KiB for fc6) stay in L2 while every
 * image passes over them, so the weights are read from memory once per call. (Blocking K so that the rows
 * stay in L1 measured slower here: the inputs then stream from L2 instead. A GEMM with packed panels, as
 * the convolutions use, is the way to go further at large batch.) */
#include <immintrin.h>

#include "cpu/kernels/f32-math-avx2.h"
#include "cpu/kernels/kernels-avx2.h"

#define AN_ALWAYS_INLINE inline __attribute__((always_inline))

static AN_ALWAYS_INLINE float an_hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1)); /* l0+l4 .. l3+l7 */
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));                                          /* (0+4)+(2+6), (1+5)+(3+7) */
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* acc[r * C + c] += the terms k in [k_begin, k_end) of dot(w[r], x[c]), lane l taking k = l mod 8; k_begin is
 * a multiple of 8, and the last K % 8 terms come in (masked) when k_end == k_all. R and C are compile-time
 * constants at every call, so the accumulators live in registers for the whole range. */
static AN_ALWAYS_INLINE void an_fc_tile(const float *const *w, const float *const *x, size_t k_begin, size_t k_end,
                                        size_t k_all, __m256 *acc_io, const int R, const int C)
{
    __m256 acc[4][3];
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            acc[r][c] = acc_io[r * C + c];
    size_t k = k_begin;
    for (; k + 8 <= k_end; k += 8) {
        __m256 xv[3];
        for (int c = 0; c < C; c++)
            xv[c] = _mm256_loadu_ps(x[c] + k);
        for (int r = 0; r < R; r++) {
            const __m256 wv = _mm256_loadu_ps(w[r] + k);
            for (int c = 0; c < C; c++)
                acc[r][c] = _mm256_fmadd_ps(wv, xv[c], acc[r][c]);
        }
    }
    if (k < k_end && k_end == k_all) {
        const __m256i mask = an_avx2_tail_mask(k_all - k);
        __m256 xv[3];
        for (int c = 0; c < C; c++)
            xv[c] = _mm256_maskload_ps(x[c] + k, mask);
        for (int r = 0; r < R; r++) {
            const __m256 wv = _mm256_maskload_ps(w[r] + k, mask);
            for (int c = 0; c < C; c++)
                acc[r][c] = _mm256_fmadd_ps(wv, xv[c], acc[r][c]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++)
            acc_io[r * C + c] = acc[r][c];
}

static void an_fc_tile_4x3(const float *const *w, const float *const *x, size_t k0, size_t k1, size_t k_all,
                           __m256 *acc)
{
    an_fc_tile(w, x, k0, k1, k_all, acc, 4, 3);
}
static void an_fc_tile_4x2(const float *const *w, const float *const *x, size_t k0, size_t k1, size_t k_all,
                           __m256 *acc)
{
    an_fc_tile(w, x, k0, k1, k_all, acc, 4, 2);
}
static void an_fc_tile_4x1(const float *const *w, const float *const *x, size_t k0, size_t k1, size_t k_all,
                           __m256 *acc)
{
    an_fc_tile(w, x, k0, k1, k_all, acc, 4, 1);
}

/* Batch 1: 8 rows at once over the whole of K (the input vector stays in L1 by itself). */
static void an_fc_gemv_8(const float *const *w, const float *x, size_t k_all, float *sums)
{
    __m256 acc[8];
    for (int r = 0; r < 8; r++)
        acc[r] = _mm256_setzero_ps();
    size_t k = 0;
    for (; k + 8 <= k_all; k += 8) {
        const __m256 xv = _mm256_loadu_ps(x + k);
        for (int r = 0; r < 8; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(w[r] + k), xv, acc[r]);
    }
    if (k < k_all) {
        const __m256i mask = an_avx2_tail_mask(k_all - k);
        const __m256 xv = _mm256_maskload_ps(x + k, mask);
        for (int r = 0; r < 8; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_maskload_ps(w[r] + k, mask), xv, acc[r]);
    }
    for (int r = 0; r < 8; r++)
        sums[r] = an_hsum(acc[r]);
}

static inline void an_fc_store(const an_fc_desc *d, const float *bias, float *out, size_t o0, size_t rows,
                               size_t i0, size_t images, const float *sums, size_t stride)
{
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < images; c++) {
            float v = sums[r * stride + c] + bias[o0 + r];
            out[(i0 + c) * d->out_features + o0 + r] = d->relu && v < 0.0f ? 0.0f : v;
        }
    }
}

void an_f32_fc_4x3_avx2(const an_fc_desc *d, const float *in, const float *weight, const float *bias, float *out,
                        size_t row_begin, size_t row_end)
{
    const size_t k_all = d->in_features;
    if (d->batch == 1) {
        for (size_t o0 = row_begin; o0 < row_end; o0 += 8) {
            size_t rows = row_end - o0 < 8 ? row_end - o0 : 8;
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
        size_t rows = row_end - o0 < 4 ? row_end - o0 : 4;
        const float *w[4];
        for (size_t r = 0; r < 4; r++)
            w[r] = weight + (o0 + (r < rows ? r : rows - 1)) * k_all;
        for (size_t i0 = 0; i0 < d->batch; i0 += 3) {
            size_t images = d->batch - i0 < 3 ? d->batch - i0 : 3;
            const float *x[3] = {in + i0 * k_all, in + (i0 + (images > 1)) * k_all, in + (i0 + images - 1) * k_all};
            __m256 acc[12];
            for (int i = 0; i < 12; i++)
                acc[i] = _mm256_setzero_ps();
            if (images == 3)
                an_fc_tile_4x3(w, x, 0, k_all, k_all, acc);
            else if (images == 2)
                an_fc_tile_4x2(w, x, 0, k_all, k_all, acc);
            else
                an_fc_tile_4x1(w, x, 0, k_all, k_all, acc);
            float sums[12];
            for (size_t i = 0; i < 4 * images; i++)
                sums[i] = an_hsum(acc[i]);
            an_fc_store(d, bias, out, o0, rows, i0, images, sums, images);
        }
    }
}
