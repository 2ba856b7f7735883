/* Fully connected layer, AVX-512F, on the model's row-major [out][in] weights (never copied).
 *
 * The AVX2 kernel's scheme (f32-fc-4x3-avx2.c) with 16 lanes: each dot product (image, output) is one ZMM
 * accumulator taking the terms k = l mod 16 in lane l in increasing k, the last K % 16 terms through a
 * zero-masked load, then a fixed lane reduction (upper 8 onto lower 8, then ((0+4)+(2+6)) + ((1+5)+(3+7)))
 * and the bias last, so every row split and batch gives the same bits.
 *
 * Batch 1: 8 rows x 1 image over the full K (a memory-bound GEMV streaming 8 rows, software-prefetched:
 * the hardware prefetcher alone left ~15% of the DRAM bandwidth unused with 8 concurrent streams).
 *
 * Batch > 1: 8 rows x 3 images register tiles (24 accumulators; 11 loads per 24 FMAs, the 4x3 tiles had 7
 * per 12), K in blocks of AN_FC_KC with the 16-lane accumulators carried through a stack buffer between
 * blocks (exact, so the bits are those of one pass over K). For each 8-row tile, the images go in groups of
 * AN_FC_GROUP: a group's K block of the 8 weight rows (32 KiB) stays in L1 while the group's 8 image tiles
 * use it, and only the first tile of a group loads (and prefetches) it from memory. The groups alternate
 * direction from one row tile to the next, so the last group's inputs are still in L2 for the next tile.
 * Measured on Zen 5 (fc6/fc7 at batch 64, 1 thread, microbenchmark of this file, thread CPU time):
 * - the 4x3 full-K tiles: 35%/45% of the FMA peak; 8x3 with K blocks of 512: 44%/48%;
 * - GCC folded each weight load into the 3 FMAs using it (27 loads per 24 FMAs, load-port bound):
 *   AN_FC_IN_REGISTER keeps it in a register: 48%/55%; K blocks of 1024: 55%/58% (256: 45%/47%, 512:
 *   51%/54%, 768: ~55%/57%, 2048: 47%/47%, the weight block no longer fitting L1);
 * - groups of 21/24/33 images within noise of each other; 66 (a 34 KiB buffer, too much stack) 62%/63%;
 * - rejected: images outer and rows inner (weights re-read per group from DRAM: 40-47%), software
 *   prefetch of the next tile's inputs (-6 points) or of the next K block's weights in every tile (the extra
 *   loads cost more than the misses: -20 points).
 * In alexnet_bench (torchvision, batch 64, 1 thread, minimum of 6 interleaved rounds) fc6 51.4 -> 29.5 ms,
 * fc7 17.3 -> 12.9 ms, fc8 4.33 -> 3.14 ms (35-44% -> 61-62% of the peak); docs/PERFORMANCE.md has the rest.
 * Still short of a packed GEMM: each 8-row tile re-reads all the inputs from L3, and keeping them in L2
 * across row tiles needs the carried sums of more rows than the stack can hold.
 *
 * an_f32_fc_8x3_avx512_blocked (the table's fc_blocked) is that: the driver gives each task a block of
 * AN_FC_BLOCK_ROWS rows and a scratch buffer for their carried sums (8 x 3 x 16 floats per row tile and
 * image triple, 270 KiB for 64 rows at batch 64), and the loops run K block outermost: a K block of every
 * image (64 x 4 KiB) stays in L2 for all the block's row tiles, each tile's weights come from memory once
 * and stay in L1 for all image triples, the carried sums stay in L2. Same chains, so the same bits. */
#include <immintrin.h>

#include "cpu/kernels/kernels-avx512.h"

#define AN_ALWAYS_INLINE inline __attribute__((always_inline))
#define AN_PASTE_(a, b) a##b
#define AN_PASTE(a, b) AN_PASTE_(a, b)
/* Batch 1 (the GEMV): each of the 8 weight rows is prefetched 512 bytes ahead of its loads. Measured on
 * Zen 5 (1 thread, median of 6 interleaved runs): fc6 4.25 -> 3.73 ms, fc7 1.88 -> 1.65 ms; 2 KiB ahead
 * gained less, 4 KiB nothing. Past a row's end it touches the next row, which another stream reads. */
#define AN_FC_PREFETCH_FLOATS 128
/* Keeps a loaded weight vector in a register: without it GCC folds the load into each of the C FMAs that
 * use it (8 x C + C loads per 8 x C FMAs), and the batched tiles were load-port bound. (The test build's
 * emulated vectors are structs, which the constraint does not take.) */
#ifdef AN_TEST_AVX512_EMULATION_H
#define AN_FC_IN_REGISTER(v) ((void)0)
#else
#define AN_FC_IN_REGISTER(v) __asm__("" : "+v"(v))
#endif
/* Batch > 1 (see above): images per group (a multiple of 3; the carried sums take 8 x GROUP x 64 bytes =
 * 12 KiB of stack), K block (a multiple of 16), and how far ahead the first tile of a group prefetches its
 * weight rows (2 KiB: 512 B gained less at batch 64). */
#define AN_FC_GROUP 24
#define AN_FC_KC 1024
#define AN_FC_BATCH_PREFETCH_FLOATS 512
/* fc_blocked: one image triple's carried sums (8 rows x 3 images x 16 lanes) */
#define AN_FC_TRIPLE_PART_FLOATS (8 * 3 * 16)

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

/* Batch > 1: 8 rows x C images over k in [k0, k1), k1 - k0 a multiple of 16 except in the last block
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

/* One 8-row tile of `images` (1..3) images over [k0, k1): a copy of the loop per image count and prefetch
 * setting, each with its constants folded in. */
static void an_fc_block_images(const float *const *w, const float *const *x, size_t k0, size_t k1, int first,
                               int last, int prefetch, float *part, float *sums, size_t images)
{
    switch (images * 2 + (prefetch != 0)) {
    case 7: an_fc_block(w, x, k0, k1, first, last, 1, part, sums, 3); break;
    case 6: an_fc_block(w, x, k0, k1, first, last, 0, part, sums, 3); break;
    case 5: an_fc_block(w, x, k0, k1, first, last, 1, part, sums, 2); break;
    case 4: an_fc_block(w, x, k0, k1, first, last, 0, part, sums, 2); break;
    case 3: an_fc_block(w, x, k0, k1, first, last, 1, part, sums, 1); break;
    default: an_fc_block(w, x, k0, k1, first, last, 0, part, sums, 1); break;
    }
}

/* The 8 rows of the tile at o0 (rows <= 8 of them real: the rest repeat the last, their sums dropped). */
static inline void an_fc_tile_rows(const float *weight, size_t k_all, size_t o0, size_t rows, const float **w)
{
    for (size_t r = 0; r < 8; r++)
        w[r] = weight + (o0 + (r < rows ? r : rows - 1)) * k_all;
}

/* The inputs of the image triple at i0 (images <= 3 of them real: the rest repeat one of those). */
static inline void an_fc_triple_inputs(const float *in, size_t k_all, size_t i0, size_t images, const float **x)
{
    x[0] = in + i0 * k_all;
    x[1] = in + (i0 + (images > 1)) * k_all;
    x[2] = in + (i0 + images - 1) * k_all;
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

/* The 8-row tile at o0 (rows real rows) over [k0, k1) for images [i_begin, i_end), triple by triple, the
 * carried sums of triple t at part + t * AN_FC_TRIPLE_PART_FLOATS; the last K block stores the outputs. */
static void an_fc_tile_triples(const an_fc_desc *d, const float *in, const float *const *w, const float *bias,
                               float *out, size_t o0, size_t rows, size_t k0, size_t k1, size_t i_begin,
                               size_t i_end, float *part)
{
    const size_t k_all = d->in_features;
    const int first = k0 == 0, last = k1 == k_all;
    for (size_t i0 = i_begin; i0 < i_end; i0 += 3) {
        const size_t images = i_end - i0 < 3 ? i_end - i0 : 3;
        const float *x[3];
        an_fc_triple_inputs(in, k_all, i0, images, x);
        float sums[24];
        /* the first triple brings the tile's K block of weights into L1, prefetching ahead */
        an_fc_block_images(w, x, k0, k1, first, last, i0 == i_begin,
                           part + (i0 - i_begin) / 3 * AN_FC_TRIPLE_PART_FLOATS, sums, images);
        if (last)
            an_fc_store(d, bias, out, o0, rows, i0, images, sums);
    }
}

/* Rows [o0, o0 + rows) (rows <= 8) for images [g0, g1), K block by K block. */
static void an_fc_rows_images(const an_fc_desc *d, const float *in, const float *weight, const float *bias,
                              float *out, size_t o0, size_t rows, size_t g0, size_t g1)
{
    const size_t k_all = d->in_features;
    const float *w[8];
    an_fc_tile_rows(weight, k_all, o0, rows, w);
    _Alignas(64) float part[AN_FC_GROUP / 3 * AN_FC_TRIPLE_PART_FLOATS];
    for (size_t k0 = 0; k0 < k_all; k0 += AN_FC_KC)
        an_fc_tile_triples(d, in, w, bias, out, o0, rows, k0, k_all - k0 <= AN_FC_KC ? k_all : k0 + AN_FC_KC, g0,
                           g1, part);
}

/* (named by pasting, so that the emulated test build's -D rename of the fc kernel renames this one too) */
void AN_PASTE(an_f32_fc_8x3_avx512, _blocked)(const an_fc_desc *d, const float *in, const float *weight,
                                              const float *bias, float *out, size_t row_begin, size_t row_end,
                                              float *part)
{
    const size_t k_all = d->in_features, triples = (d->batch + 2) / 3;
    for (size_t k0 = 0; k0 < k_all; k0 += AN_FC_KC) {
        const size_t k1 = k_all - k0 <= AN_FC_KC ? k_all : k0 + AN_FC_KC;
        for (size_t o0 = row_begin; o0 < row_end; o0 += 8) {
            const size_t rows = row_end - o0 < 8 ? row_end - o0 : 8;
            const float *w[8];
            an_fc_tile_rows(weight, k_all, o0, rows, w);
            an_fc_tile_triples(d, in, w, bias, out, o0, rows, k0, k1, 0, d->batch,
                               part + (o0 - row_begin) / 8 * triples * AN_FC_TRIPLE_PART_FLOATS);
        }
    }
}

void an_f32_fc_8x3_avx512(const an_fc_desc *d, const float *in, const float *weight, const float *bias,
                          float *out, size_t row_begin, size_t row_end)
{
    const size_t k_all = d->in_features;
    if (d->batch == 1) {
        for (size_t o0 = row_begin; o0 < row_end; o0 += 8) {
            size_t rows = row_end - o0 < 8 ? row_end - o0 : 8;
            const float *w[8];
            an_fc_tile_rows(weight, k_all, o0, rows, w);
            float sums[8];
            an_fc_tile_8x1(w, in, k_all, sums);
            an_fc_store(d, bias, out, o0, rows, 0, 1, sums);
        }
        return;
    }
    const size_t groups = (d->batch + AN_FC_GROUP - 1) / AN_FC_GROUP;
    for (size_t o0 = row_begin; o0 < row_end; o0 += 8) {
        for (size_t gi = 0; gi < groups; gi++) {
            const size_t g0 = (((o0 - row_begin) / 8) & 1 ? groups - 1 - gi : gi) * AN_FC_GROUP;
            const size_t g1 = d->batch - g0 < AN_FC_GROUP ? d->batch : g0 + AN_FC_GROUP;
            an_fc_rows_images(d, in, weight, bias, out, o0, row_end - o0 < 8 ? row_end - o0 : 8, g0, g1);
        }
    }
}
