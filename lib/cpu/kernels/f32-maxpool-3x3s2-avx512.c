/* Max pooling, AVX-512: AlexNet's 3x3 stride-2 windows, two output rows per pass; other windows go to the
 * portable kernel.
 *
 * Scheme: a pass over output rows oy, oy + 1 reads input rows 2oy .. 2oy + 4 once and reduces them
 * vertically to V0 = max(rows 0..2) and V1 = max(rows 2..4), sharing row 2oy + 2 (the AVX2 kernel reads it
 * twice). For 16 outputs from column ox the windows read input columns 2ox .. 2ox + 32: the vertical maxima
 * of columns 2ox .. 2ox + 31 give the even and odd columns with one two-source permute each, and column
 * 2ox + 32 is lane 0 of the next block's vertical maximum, which is carried over, so every input is loaded
 * once per pass. Stores are masked at the output row's end, and loads only where a vector would pass the
 * last plane (masked-off lanes are neither read nor able to fault; see an_load), so no row tail needs a
 * scalar loop: the 27-wide rows of pool1/pool2 are a full and a masked block. Rows of up to 16 inputs (pool5's 13x13 planes, at most 7 outputs) put both
 * output rows of a pass in one vector: the permutes pick row oy's windows into lanes 0 .. ow - 1 and row
 * oy + 1's into the next ow lanes, which is how the two rows lie in memory, so one masked store writes both.
 *
 * NaN: max_ps returns its second operand when either is NaN, so max(max(a, b), c) keeps a NaN of b or c but
 * drops one of a; lanes where a or b is unordered are set to a NaN (all ones, as the AVX2 kernel) by a
 * masked move. Outputs are otherwise exact maxima of their windows (equal zeros aside, as the AVX2 kernel:
 * which of -0 and +0 wins is the instruction's, not the reference's first-of-equals). */
#include <immintrin.h>

#include "cpu/kernels/kernels-avx512.h"
#include "cpu/kernels/kernels-scalar.h"

/* Lanes for columns begin .. end - 1 of a 16-column block starting at begin. */
static inline __mmask16 an_columns(size_t begin, size_t end)
{
    if (begin >= end)
        return 0;
    return (__mmask16)(end - begin >= 16 ? 0xffffu : (1u << (end - begin)) - 1u);
}

static inline __m512 an_max3(__m512 a, __m512 b, __m512 c, __m512 nan)
{
    const __m512 m = _mm512_max_ps(_mm512_max_ps(a, b), c);
    return _mm512_mask_mov_ps(m, _mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q), nan);
}

/* Columns x .. x + 15 of a row; lanes past the row's end only feed outputs that are not stored, so they may
 * hold whatever follows the row, and the mask is needed only where 16 floats would pass `limit`, the end of
 * the planes being pooled. Measured on Zen 5: masked loads of full vectors made pool1's 55-wide rows 3x
 * slower (6.5 vs 2.1 ms for 4096 planes, 1 thread) than plain loads. */
static inline __m512 an_load(const float *row, size_t x, __mmask16 mask, const float *limit)
{
    return row + x + 16 <= limit ? _mm512_loadu_ps(row + x) : _mm512_maskz_loadu_ps(mask, row + x);
}

/* Rows of more than 16 inputs: 16 outputs of each of the two rows per step. */
static void an_pool_wide(const float *src, float *dst, size_t w, size_t oh, size_t ow, const float *limit,
                         __m512 nan)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512i next = _mm512_setr_epi32(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16);
    const __mmask16 first = an_columns(0, w);
    for (size_t oy = 0; oy < oh; oy += 2) {
        /* an odd last row runs the pass with rows 3 and 4 aliased to row 2 and its second row not stored */
        const int two = oy + 1 < oh;
        const float *r0 = src + 2 * oy * w, *r1 = r0 + w, *r2 = r1 + w;
        const float *r3 = two ? r2 + w : r2, *r4 = two ? r3 + w : r2;
        float *d0 = dst + oy * ow, *d1 = d0 + ow;
        const __m512 l2 = an_load(r2, 0, first, limit);
        __m512 v0 = an_max3(an_load(r0, 0, first, limit), an_load(r1, 0, first, limit), l2, nan);
        __m512 v1 = an_max3(l2, an_load(r3, 0, first, limit), an_load(r4, 0, first, limit), nan);
        for (size_t ox = 0; ox < ow; ox += 16) {
            const size_t x = 2 * ox;
            const __mmask16 mh = an_columns(x + 16, w), mn = an_columns(x + 32, w), mo = an_columns(ox, ow);
            const __m512 h2 = an_load(r2, x + 16, mh, limit), n2 = an_load(r2, x + 32, mn, limit);
            const __m512 v0h = an_max3(an_load(r0, x + 16, mh, limit), an_load(r1, x + 16, mh, limit), h2, nan);
            const __m512 v0n = an_max3(an_load(r0, x + 32, mn, limit), an_load(r1, x + 32, mn, limit), n2, nan);
            const __m512 e0 = _mm512_permutex2var_ps(v0, even, v0h);
            _mm512_mask_storeu_ps(d0 + ox, mo,
                                  an_max3(e0, _mm512_permutex2var_ps(v0, odd, v0h),
                                          _mm512_permutex2var_ps(e0, next, v0n), nan));
            const __m512 v1h = an_max3(h2, an_load(r3, x + 16, mh, limit), an_load(r4, x + 16, mh, limit), nan);
            const __m512 v1n = an_max3(n2, an_load(r3, x + 32, mn, limit), an_load(r4, x + 32, mn, limit), nan);
            if (two) {
                const __m512 e1 = _mm512_permutex2var_ps(v1, even, v1h);
                _mm512_mask_storeu_ps(d1 + ox, mo,
                                      an_max3(e1, _mm512_permutex2var_ps(v1, odd, v1h),
                                              _mm512_permutex2var_ps(e1, next, v1n), nan));
            }
            v0 = v0n;
            v1 = v1n;
        }
    }
}

/* Rows of at most 16 inputs (ow <= 7): both output rows of a pass in one vector. */
static void an_pool_narrow(const float *src, float *dst, size_t w, size_t oh, size_t ow, const float *limit,
                           __m512 nan)
{
    /* lane l < ow: window l of V0 (source 1), lane ow + l: window l of V1 (source 2, indices + 16) */
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __mmask16 second = (__mmask16)~an_columns(0, ow);
    const __m512i window = _mm512_mask_sub_epi32(lane, second, lane, _mm512_set1_epi32((int)ow));
    const __m512i twice = _mm512_add_epi32(window, window);
    const __m512i even = _mm512_mask_add_epi32(twice, second, twice, _mm512_set1_epi32(16));
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const __m512i after = _mm512_add_epi32(even, _mm512_set1_epi32(2));
    const __mmask16 in_mask = an_columns(0, w), out_two = an_columns(0, 2 * ow), out_one = an_columns(0, ow);
    for (size_t oy = 0; oy < oh; oy += 2) {
        const int two = oy + 1 < oh;
        const float *r0 = src + 2 * oy * w, *r1 = r0 + w, *r2 = r1 + w;
        const float *r3 = two ? r2 + w : r2, *r4 = two ? r3 + w : r2;
        const __m512 m2 = an_load(r2, 0, in_mask, limit);
        const __m512 v0 = an_max3(an_load(r0, 0, in_mask, limit), an_load(r1, 0, in_mask, limit), m2, nan);
        const __m512 v1 = an_max3(m2, an_load(r3, 0, in_mask, limit), an_load(r4, 0, in_mask, limit), nan);
        const __m512 out = an_max3(_mm512_permutex2var_ps(v0, even, v1), _mm512_permutex2var_ps(v0, odd, v1),
                                   _mm512_permutex2var_ps(v0, after, v1), nan);
        _mm512_mask_storeu_ps(dst + oy * ow, two ? out_two : out_one, out);
    }
}

void an_f32_maxpool_3x3s2_avx512(const an_pool_desc *d, const float *in, float *out, size_t plane_begin,
                                 size_t plane_end)
{
    if (d->kernel_size != 3 || d->stride != 2) {
        an_f32_maxpool_scalar(d, in, out, plane_begin, plane_end);
        return;
    }
    const size_t w = d->in_width, in_plane = (size_t)d->in_height * w;
    const size_t oh = d->out_height, ow = d->out_width, out_plane = oh * ow;
    const __m512 nan = _mm512_castsi512_ps(_mm512_set1_epi32(-1));
    const float *limit = in + plane_end * in_plane;
    for (size_t p = plane_begin; p < plane_end; p++) {
        if (w <= 16)
            an_pool_narrow(in + p * in_plane, out + p * out_plane, w, oh, ow, limit, nan);
        else
            an_pool_wide(in + p * in_plane, out + p * out_plane, w, oh, ow, limit, nan);
    }
}
