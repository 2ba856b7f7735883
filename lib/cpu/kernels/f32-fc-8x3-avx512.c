/* Fully connected layer, AVX-512F, on the model's row-major [out][in] weights (never copied).
 *
 * The AVX2 kernel's scheme (f32-fc-4x3-avx2.c) with 16 lanes: each dot product (image, output) is one ZMM
 * accumulator taking the terms k = l mod 16 in lane l, the last K % 16 terms through a zero-masked load,
 * then a fixed lane reduction (upper 8 onto lower 8, then ((0+4)+(2+6)) + ((1+5)+(3+7))) and the bias last,
 * so every row split and batch gives the same bits. Tiles: 8 rows x 1 image for batch 1 (a memory-bound
 * GEMV streaming 8 rows, software-prefetched: the hardware prefetcher alone left ~15% of the DRAM
 * bandwidth unused with 8 concurrent streams), 4 rows x up to 3 images otherwise. */
#include <immintrin.h>

#include "cpu/kernels/kernels-avx512.h"

#define AN_ALWAYS_INLINE inline __attribute__((always_inline))
/* Batch 1 (the GEMV): each of the 8 weight rows is prefetched 512 bytes ahead of its loads. Measured on
 * Zen 5 (1 thread, median of 6 interleaved runs): fc6 4.25 -> 3.73 ms, fc7 1.88 -> 1.65 ms; 2 KiB ahead
 * gained less, 4 KiB nothing. Past a row's end it touches the next row, which another stream reads. */
#define AN_FC_PREFETCH_FLOATS 128
/* Keeps a loaded weight vector in a register: without it GCC folds the load into each of the C FMAs that
 * use it, and 8 x (C + ...) loads per 8 x C FMAs made the batched tiles load-port bound. (The test build's
 * emulated vectors are structs, which the constraint does not take.) */
#ifdef AN_TEST_AVX512_EMULATION_H
#define AN_FC_IN_REGISTER(v) ((void)0)
#else
#define AN_FC_IN_REGISTER(v) __asm__("" : "+v"(v))
#endif
#ifndef AN_FC_GROUP
#define AN_FC_GROUP 24
#endif
#ifndef AN_FC_BATCH_PREFETCH_FLOATS
#define AN_FC_BATCH_PREFETCH_FLOATS 512
#endif
#ifndef AN_FC_SNAKE
#define AN_FC_SNAKE 1
#endif
#ifndef AN_FC_PF_ALL
#define AN_FC_PF_ALL 0
#endif
#ifndef AN_FC_KC
#define AN_FC_KC 1024
#endif

static AN_ALWAYS_INLINE float an_hsum512(__m512 v)
{
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v),
                             _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* Batch 1: 8 rows x 1 image over the full K (the GEMV). */
static void an_fc_tile_8x1(const float *const *w, const float *x, size_t k_all, float *sums)
{
    __m512 acc[8];
    for (int r = 0; r < 8; r++)
        acc[r] = _mm512_setzero_ps();
    size_t k = 0;
    for (; k + 16 <= k_all; k += 16) {
        const __m512 xv = _mm512_loadu_ps(x + k);
        for (int r = 0; r < 8; r++) {
            _mm_prefetch((const char *)(w[r] + k + AN_FC_PREFETCH_FLOATS), _MM_HINT_T0);
            acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps(w[r] + k), xv, acc[r]);
        }
    }
    if (k < k_all) {
        const __mmask16 mask = (__mmask16)((1u << (k_all - k)) - 1u);
        const __m512 xv = _mm512_maskz_loadu_ps(mask, x + k);
        for (int r = 0; r < 8; r++)
            acc[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, w[r] + k), xv, acc[r]);
    }
    for (int r = 0; r < 8; r++)
        sums[r] = an_hsum512(acc[r]);
}

/* Batch > 1: 8 rows x C images over k in [k0, k0 + kn), kn a multiple of 16 except in the last block
 * (which ends at K, its K % 16 tail through a zero-masked load). The 16-lane accumulators start at zero
 * in the first block and otherwise from part (the previous block's, 8 * C * 16 floats); the last block
 * reduces them into sums, the others store them back to part. */
static AN_ALWAYS_INLINE void an_fc_block(const float *const *w, const float *const *x, size_t k0, size_t k1,
                                         int first, int last, int prefetch, float *part, float *sums,
                                         const int C)
{
    __m512 acc[8][3];
    for (int r = 0; r < 8; r++)
        for (int c = 0; c < C; c++)
            acc[r][c] = first ? _mm512_setzero_ps() : _mm512_load_ps(part + (r * C + c) * 16);
    size_t k = k0;
    for (; k + 16 <= k1; k += 16) {
        __m512 xv[3];
        for (int c = 0; c < C; c++)
            xv[c] = _mm512_loadu_ps(x[c] + k);
        for (int r = 0; r < 8; r++) {
            if (prefetch)
                _mm_prefetch((const char *)(w[r] + k + AN_FC_BATCH_PREFETCH_FLOATS), _MM_HINT_T0);
            __m512 wv = _mm512_loadu_ps(w[r] + k);
            AN_FC_IN_REGISTER(wv);
            for (int c = 0; c < C; c++)
                acc[r][c] = _mm512_fmadd_ps(wv, xv[c], acc[r][c]);
        }
    }
    if (k < k1) {
        const __mmask16 mask = (__mmask16)((1u << (k1 - k)) - 1u);
        __m512 xv[3];
        for (int c = 0; c < C; c++)
            xv[c] = _mm512_maskz_loadu_ps(mask, x[c] + k);
        for (int r = 0; r < 8; r++) {
            const __m512 wv = _mm512_maskz_loadu_ps(mask, w[r] + k);
            for (int c = 0; c < C; c++)
                acc[r][c] = _mm512_fmadd_ps(wv, xv[c], acc[r][c]);
        }
    }
    if (last) {
        for (int r = 0; r < 8; r++)
            for (int c = 0; c < C; c++)
                sums[r * C + c] = an_hsum512(acc[r][c]);
    } else {
        for (int r = 0; r < 8; r++)
            for (int c = 0; c < C; c++)
                _mm512_store_ps(part + (r * C + c) * 16, acc[r][c]);
    }
}

static void an_fc_block_8x3(const float *const *w, const float *const *x, size_t k0, size_t k1, int first,
                            int last, int prefetch, float *part, float *sums)
{
    if (prefetch)
        an_fc_block(w, x, k0, k1, first, last, 1, part, sums, 3);
    else
        an_fc_block(w, x, k0, k1, first, last, 0, part, sums, 3);
}
static void an_fc_block_8x2(const float *const *w, const float *const *x, size_t k0, size_t k1, int first,
                            int last, int prefetch, float *part, float *sums)
{
    if (prefetch)
        an_fc_block(w, x, k0, k1, first, last, 1, part, sums, 2);
    else
        an_fc_block(w, x, k0, k1, first, last, 0, part, sums, 2);
}
static void an_fc_block_8x1(const float *const *w, const float *const *x, size_t k0, size_t k1, int first,
                            int last, int prefetch, float *part, float *sums)
{
    if (prefetch)
        an_fc_block(w, x, k0, k1, first, last, 1, part, sums, 1);
    else
        an_fc_block(w, x, k0, k1, first, last, 0, part, sums, 1);
}

static inline void an_fc_store(const an_fc_desc *d, const float *bias, float *out, size_t o0, size_t rows,
                               size_t i0, size_t images, const float *sums)
{
    for (size_t r = 0; r < rows; r++) {
        for (size_t c = 0; c < images; c++) {
            float v = sums[r * images + c] + bias[o0 + r];
            out[(i0 + c) * d->out_features + o0 + r] = d->relu && v < 0.0f ? 0.0f : v;
        }
    }
}

void an_f32_fc_8x3_avx512(const an_fc_desc *d, const float *in, const float *weight, const float *bias,
                          float *out, size_t row_begin, size_t row_end)
{
    const size_t k_all = d->in_features;
    for (size_t o0 = row_begin; o0 < row_end; o0 += 8) {
        size_t rows = row_end - o0 < 8 ? row_end - o0 : 8;
        const float *w[8];
        for (size_t r = 0; r < 8; r++) /* rows past the end repeat the last one; their sums are dropped */
            w[r] = weight + (o0 + (r < rows ? r : rows - 1)) * k_all;
        if (d->batch == 1) {
            float sums[8];
            an_fc_tile_8x1(w, in, k_all, sums);
            an_fc_store(d, bias, out, o0, rows, 0, 1, sums);
            continue;
        }
        const size_t groups = (d->batch + AN_FC_GROUP - 1) / AN_FC_GROUP;
        for (size_t gi = 0; gi < groups; gi++) {
#if AN_FC_SNAKE
            const size_t g0 = (((o0 - row_begin) / 8) & 1 ? groups - 1 - gi : gi) * AN_FC_GROUP;
#else
            const size_t g0 = gi * AN_FC_GROUP;
#endif
            const size_t g1 = d->batch - g0 < AN_FC_GROUP ? d->batch : g0 + AN_FC_GROUP;
            _Alignas(64) float part[AN_FC_GROUP / 3 * 8 * 3 * 16];
            for (size_t k0 = 0; k0 < k_all; k0 += AN_FC_KC) {
                const size_t k1 = k_all - k0 <= AN_FC_KC ? k_all : k0 + AN_FC_KC;
                const int first = k0 == 0, last = k1 == k_all;
                for (size_t i0 = g0; i0 < g1; i0 += 3) {
                    size_t images = g1 - i0 < 3 ? g1 - i0 : 3;
                    const float *x[3] = {in + i0 * k_all, in + (i0 + (images > 1)) * k_all,
                                         in + (i0 + images - 1) * k_all};
                    float *tile_part = part + (i0 - g0) / 3 * 8 * 3 * 16;
                    float sums[24];
                    const int prefetch = AN_FC_PF_ALL || i0 == g0;
                    if (images == 3)
                        an_fc_block_8x3(w, x, k0, k1, first, last, prefetch, tile_part, sums);
                    else if (images == 2)
                        an_fc_block_8x2(w, x, k0, k1, first, last, prefetch, tile_part, sums);
                    else
                        an_fc_block_8x1(w, x, k0, k1, first, last, prefetch, tile_part, sums);
                    if (last)
                        an_fc_store(d, bias, out, o0, rows, i0, images, sums);
                }
            }
        }
    }
}
