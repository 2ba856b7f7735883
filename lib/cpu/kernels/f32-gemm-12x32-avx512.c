/* Convolution GEMM microkernel, AVX-512F: a 12 x 32 tile of C in 24 ZMM accumulators.
 *
 * Blocking: per step of K, two aligned 64-byte loads bring the 32 im2col values of the packed B row and
 * each of the 12 packed weights is broadcast into both halves: 24 FMAs for 2 loads + 12 broadcasts, with 24
 * independent chains; 27 of the 32 ZMM registers are live. Partial tiles store through opmasks; a tile of
 * m <= 4 or m <= 8 rows runs a 4- or 8-row copy of the loop (the last panel of M = 64 or 256 would
 * otherwise spend 12 rows of FMAs on 4: conv1's M = 64 is 6 panels, 5 1/3 of work). gemm_kc in
 * the table keeps the kc x 32 B panel (128 kc bytes) in L1 beside the 12 x kc A panel.
 *
 * A is prefetched 2 KiB ahead, one prefetcht0 per step of K (a step reads 48 bytes of A): at batch 1 the
 * packed weights come from DRAM on every inference (the FC weights stream through L3 in between), and the
 * hardware prefetcher alone left the Winograd GEMMs of conv4/conv5 at ~55% of peak on Zen 5 (~80% with
 * it). Prefetching past the end of A is harmless (prefetches do not fault).
 *
 * The indirect variant reads B row k with two unaligned loads from b_rows[k] instead; the split variant
 * (a panel whose 32 pixels cross from one output row into the next) merges two masked loads per half,
 * lanes below `split` from b_rows[k] and the rest from b_rows[k] + split_offset: 4 loads per step instead
 * of 2, still fewer than the 12 FMA cycles of a step need, and no packing (conv1 spent ~15% of its time
 * packing those panels). All three come from one body, so the chain of operations, and the bits, are the
 * packed kernel's. Their names are pasted onto the packed kernel's, so that the emulated build of this
 * file (tests/cpu, which renames the packed kernel with -D) renames them too. */
#include <immintrin.h>

#include "cpu/kernels/kernels-avx512.h"

#define MR 12
#define NR 32
/* how far ahead in A to prefetch: ~40 steps of K, about the DRAM latency at 2 FMAs a cycle */
#define AN_PREFETCH_A_FLOATS 512
#define AN_ALWAYS_INLINE inline __attribute__((always_inline))
#define AN_PASTE_(a, b) a##b
#define AN_PASTE(a, b) AN_PASTE_(a, b)

/* b_rows == NULL: the packed panel b; else row k at b_rows[k], columns from `split` on at
 * b_rows[k] + split_offset when `crossing` (the branches fold away in each caller).
 * Only the first `rows` (a constant: 4, 8 or 12) rows of the tile are computed; m <= rows. */
static AN_ALWAYS_INLINE void an_gemm_rows_x32(const size_t rows, size_t kc, const float *a, const float *b,
                                             const float *const *b_rows, const int crossing, size_t split,
                                             ptrdiff_t split_offset, const float *bias, float *c, size_t ldc,
                                             size_t m, size_t n, uint32_t flags)
{
    /* lanes of each half read from the first row (the rest from the second): split 0 .. 32 */
    const __mmask16 first_lo = split >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << split) - 1u);
    const __mmask16 first_hi = split >= 32 ? (__mmask16)0xFFFF
                               : split > 16 ? (__mmask16)((1u << (split - 16)) - 1u)
                                            : (__mmask16)0;
    const __mmask16 mask_lo = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1u);
    const __mmask16 mask_hi = n >= 32 ? (__mmask16)0xFFFF : n > 16 ? (__mmask16)((1u << (n - 16)) - 1u) : 0;
    __m512 acc[MR][2];
    /* the tile's C lines are fetched for writing now, while the K loop runs: at batch 64 conv1's output
     * (50 MB) lives in DRAM, and each first store to a line otherwise waits for it at the end */
#pragma GCC unroll 12
    for (size_t r = 0; r < rows; r++) {
        if (r < m) {
            __builtin_prefetch(c + r * ldc, 1, 3);
            __builtin_prefetch(c + r * ldc + n / 2, 1, 3); /* 32 unaligned floats span up to 3 lines */
            __builtin_prefetch(c + r * ldc + n - 1, 1, 3);
        }
    }
#pragma GCC unroll 12
    for (size_t r = 0; r < rows; r++) {
        if (flags & AN_GEMM_ACCUMULATE) {
            /* rows past m are never stored: start them at zero without touching memory */
            acc[r][0] = r < m ? _mm512_maskz_loadu_ps(mask_lo, c + r * ldc) : _mm512_setzero_ps();
            acc[r][1] = r < m ? _mm512_maskz_loadu_ps(mask_hi, c + r * ldc + 16) : _mm512_setzero_ps();
        } else {
            acc[r][0] = acc[r][1] = _mm512_set1_ps(bias[r]);
        }
    }

    for (size_t k = 0; k < kc; k++) {
        __m512 b0, b1;
        if (b_rows != NULL && crossing) {
            const float *row = b_rows[k], *next = row + split_offset;
            b0 = _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(first_lo, row), (__mmask16)~first_lo, next);
            b1 = _mm512_mask_loadu_ps(_mm512_maskz_loadu_ps(first_hi, row + 16), (__mmask16)~first_hi, next + 16);
        } else if (b_rows != NULL) {
            b0 = _mm512_loadu_ps(b_rows[k]);
            b1 = _mm512_loadu_ps(b_rows[k] + 16);
        } else {
            b0 = _mm512_load_ps(b);
            b1 = _mm512_load_ps(b + 16);
            b += NR;
        }
        /* the weights stream from DRAM at batch 1 (the FC layers flush the caches between inferences):
         * one prefetch per step, 2 KiB ahead, keeps them coming (they are contiguous across panels) */
        _mm_prefetch((const char *)(a + AN_PREFETCH_A_FLOATS), _MM_HINT_T0);
#pragma GCC unroll 12
        for (size_t r = 0; r < rows; r++) {
            const __m512 av = _mm512_set1_ps(a[r]);
            acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
        }
        a += MR;
    }

    const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 12
    for (size_t r = 0; r < rows; r++) {
        if (r >= m)
            break;
        __m512 lo = acc[r][0], hi = acc[r][1];
        if (flags & AN_GEMM_RELU) {
            /* max(0, x) returns x (its second operand) for NaN and keeps -0, as the reference does */
            lo = _mm512_max_ps(zero, lo);
            hi = _mm512_max_ps(zero, hi);
        }
        _mm512_mask_storeu_ps(c + r * ldc, mask_lo, lo);
        _mm512_mask_storeu_ps(c + r * ldc + 16, mask_hi, hi);
    }
}

/* A short panel (the last of M = 64, 256, 128, ...) computes only 4 or 8 rows: the stored rows' chains are
 * the same, and 4 x 32 still has 8 independent FMA chains, enough for 2 pipes of 4-cycle latency. */
static AN_ALWAYS_INLINE void an_gemm_12x32(size_t kc, const float *a, const float *b, const float *const *b_rows,
                                          const int crossing, size_t split, ptrdiff_t split_offset,
                                          const float *bias, float *c, size_t ldc, size_t m, size_t n,
                                          uint32_t flags)
{
    if (m <= 4)
        an_gemm_rows_x32(4, kc, a, b, b_rows, crossing, split, split_offset, bias, c, ldc, m, n, flags);
    else if (m <= 8)
        an_gemm_rows_x32(8, kc, a, b, b_rows, crossing, split, split_offset, bias, c, ldc, m, n, flags);
    else
        an_gemm_rows_x32(MR, kc, a, b, b_rows, crossing, split, split_offset, bias, c, ldc, m, n, flags);
}

void an_f32_gemm_12x32_avx512(size_t kc, const float *a, const float *b, const float *bias, float *c, size_t ldc,
                              size_t m, size_t n, uint32_t flags)
{
    an_gemm_12x32(kc, a, b, NULL, 0, NR, 0, bias, c, ldc, m, n, flags);
}

void AN_PASTE(an_f32_gemm_12x32_avx512, _indirect)(size_t kc, const float *a, const float *const *b_rows,
                                                   const float *bias, float *c, size_t ldc, size_t m, size_t n,
                                                   uint32_t flags)
{
    an_gemm_12x32(kc, a, NULL, b_rows, 0, NR, 0, bias, c, ldc, m, n, flags);
}

void AN_PASTE(an_f32_gemm_12x32_avx512, _indirect_split)(size_t kc, const float *a, const float *const *b_rows,
                                                         size_t split, ptrdiff_t split_offset, const float *bias,
                                                         float *c, size_t ldc, size_t m, size_t n, uint32_t flags)
{
    an_gemm_12x32(kc, a, NULL, b_rows, 1, split, split_offset, bias, c, ldc, m, n, flags);
}
