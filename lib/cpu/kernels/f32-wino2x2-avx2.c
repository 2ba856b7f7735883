/* Winograd F(2x2, 3x3) transforms, AVX2: eight tiles per vector, in the lane order of the packed panels.
 *
 * Input: the 8 lanes are 8 consecutive tiles n of the group (one 8-column chunk of a V panel row), so each
 * of the 16 results is one aligned store. Their 4x4 patches sit at per-tile offsets (tiles wrap rows and
 * images), so each patch element is a masked gather at those offsets plus (i, j); lanes past the last tile
 * gather nothing and come out as zeros, which is what the panel's padding columns need.
 * Output: the lanes are 8 consecutive tiles of one tile row of one image, so the 16 M values are plain
 * masked loads; each output row pair is written as the interleave of the tiles' two columns.
 * Both follow the portable kernels' order of additions exactly (kernels.h), lane by lane. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "cpu/kernels/f32-math-avx2.h"
#include "cpu/kernels/kernels-avx2.h"
#include "cpu/kernels/kernels-scalar.h"

/* (t0, t1, t2, t3) = B^T (d0, d1, d2, d3) in kernels.h's order, eight lanes at a time. */
static inline void an_wino3_bt_avx2(__m256 d0, __m256 d1, __m256 d2, __m256 d3, __m256 t[4])
{
    t[0] = _mm256_sub_ps(d0, d2);
    t[1] = _mm256_add_ps(d1, d2);
    t[2] = _mm256_sub_ps(d2, d1);
    t[3] = _mm256_sub_ps(d1, d3);
}

/* (s0, s1) = A^T (m0, m1, m2, m3) in kernels.h's order: ((m0 + m1) + m2, (m1 - m2) - m3). */
static inline void an_wino3_at_avx2(__m256 m0, __m256 m1, __m256 m2, __m256 m3, __m256 *s0, __m256 *s1)
{
    *s0 = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
    *s1 = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
}

/* V = B^T d B of eight tiles from their patch columns d[i][j], stored to dst + xi * ps (masked unless full). */
static inline void an_wino3_input_avx2(__m256 d[4][4], float *dst, size_t ps, int full, __m256i mask)
{
    __m256 t[4][4];
    for (int j = 0; j < 4; j++) {
        __m256 r[4];
        an_wino3_bt_avx2(d[0][j], d[1][j], d[2][j], d[3][j], r);
        for (int i = 0; i < 4; i++)
            t[i][j] = r[i];
    }
    for (int i = 0; i < 4; i++) {
        __m256 r[4];
        an_wino3_bt_avx2(t[i][0], t[i][1], t[i][2], t[i][3], r);
        for (int j = 0; j < 4; j++) {
            if (full)
                _mm256_storeu_ps(dst + (size_t)(i * 4 + j) * ps, r[j]);
            else
                _mm256_maskstore_ps(dst + (size_t)(i * 4 + j) * ps, mask, r[j]);
        }
    }
}

/* The two output rows (y0: even columns, y1: odd ones) of eight tiles whose m_xi is m[xi * ps] (masked
 * loads), plus the bias, ReLU if asked. */
static inline void an_wino3_output_avx2(const float *m, size_t ps, __m256i mask, __m256 bias, int relu,
                                        __m256 y[2][2])
{
    __m256 s[2][4];
    for (int j = 0; j < 4; j++)
        an_wino3_at_avx2(_mm256_maskload_ps(m + (size_t)(0 + j) * ps, mask),
                         _mm256_maskload_ps(m + (size_t)(4 + j) * ps, mask),
                         _mm256_maskload_ps(m + (size_t)(8 + j) * ps, mask),
                         _mm256_maskload_ps(m + (size_t)(12 + j) * ps, mask), &s[0][j], &s[1][j]);
    for (int r = 0; r < 2; r++) {
        an_wino3_at_avx2(s[r][0], s[r][1], s[r][2], s[r][3], &y[r][0], &y[r][1]);
        y[r][0] = _mm256_add_ps(y[r][0], bias);
        y[r][1] = _mm256_add_ps(y[r][1], bias);
        if (relu) {
            /* max(0, x) keeps NaN and -0 as the portable `x < 0 ? 0 : x` does */
            y[r][0] = _mm256_max_ps(_mm256_setzero_ps(), y[r][0]);
            y[r][1] = _mm256_max_ps(_mm256_setzero_ps(), y[r][1]);
        }
    }
}

void an_f32_wino2x2_input_avx2(const an_wino_input_args *a)
{
    const size_t bw = a->row_floats, tiles = a->tiles_h * a->tiles_w, total = a->images * tiles;
    /* gather offsets are 32-bit: larger images take the portable path */
    if (a->nr % 8 != 0 || a->images * a->image_floats > (size_t)INT32_MAX / 2) {
        an_f32_wino2x2_input_scalar(a);
        return;
    }
    const size_t ps = a->position_stride;
    for (size_t p = 0; p < a->panels; p++) {
        for (size_t q = 0; q < a->nr; q += 8) {
            const size_t n0 = p * a->nr + q;
            int32_t offsets[8];
            int32_t valid[8];
            for (size_t l = 0; l < 8; l++) {
                size_t n = n0 + l < total ? n0 + l : 0;
                size_t image = n / tiles, ty = n % tiles / a->tiles_w, tx = n % a->tiles_w;
                offsets[l] = (int32_t)(image * a->image_floats + 2 * ty * bw + 2 * tx);
                valid[l] = n0 + l < total ? -1 : 0;
            }
            const __m256i index = _mm256_loadu_si256((const __m256i *)(const void *)offsets);
            const __m256 mask = _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)(const void *)valid));
            __m256 d[4][4];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    d[i][j] = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), a->planes + (size_t)i * bw + (size_t)j,
                                                       index, mask, 4);
            an_wino3_input_avx2(d, a->v + p * a->panel_floats + q, ps, 1, _mm256_setzero_si256());
        }
    }
}

/* Lanes [0, count) of (lo, hi) interleaved, as 2 * count floats clipped to `width`, at dst. */
static inline void an_store_pairs(float *dst, __m256 left, __m256 right, size_t width)
{
    __m256 lo = _mm256_unpacklo_ps(left, right), hi = _mm256_unpackhi_ps(left, right);
    __m256 first = _mm256_permute2f128_ps(lo, hi, 0x20), second = _mm256_permute2f128_ps(lo, hi, 0x31);
    if (width >= 16) {
        _mm256_storeu_ps(dst, first);
        _mm256_storeu_ps(dst + 8, second);
        return;
    }
    float row[16];
    _mm256_storeu_ps(row, first);
    _mm256_storeu_ps(row + 8, second);
    memcpy(dst, row, width * sizeof *row);
}

void an_f32_wino2x2_output_avx2(const an_wino_output_args *a)
{
    const size_t ps = a->position_stride, oh = a->out_height, ow = a->out_width;
    const __m256 bias = _mm256_set1_ps(a->bias);
    for (size_t ty = 0; ty < a->tiles_h; ty++) {
        for (size_t tx = 0; tx < a->tiles_w; tx += 8) {
            const size_t count = a->tiles_w - tx < 8 ? a->tiles_w - tx : 8;
            const __m256i mask = an_avx2_tail_mask(count);
            const float *m = a->m + a->first_tile + ty * a->tiles_w + tx;
            __m256 y[2][2];
            an_wino3_output_avx2(m, ps, mask, bias, a->relu, y);
            const size_t width = ow - 2 * tx < 2 * count ? ow - 2 * tx : 2 * count;
            for (size_t r = 0; r < 2 && 2 * ty + r < oh; r++)
                an_store_pairs(a->out + (2 * ty + r) * ow + 2 * tx, y[r][0], y[r][1], width);
        }
    }
}

/* Block input (kernels.h): the lanes are up to 8 consecutive tiles of one run, whose patches start 2 floats
 * apart, so each patch row is two unaligned 16-float loads split into even and odd elements instead of 16
 * gathers (lanes past the run read up to 17 floats past the last patch's start, inside the row's successors
 * or the plane's slack, and are overwritten by the next run or the zeroed padding lanes). */
void an_f32_wino2x2_block_input_avx2(const an_wino_block_input_args *a)
{
    const size_t bw = a->row_floats, ps = a->position_stride;
    for (size_t run = 0; run < a->runs; run++) {
        for (size_t u = 0; u < a->run_count[run]; u += 8) {
            const size_t lanes = a->run_count[run] - u < 8 ? a->run_count[run] - u : 8;
            const float *p = a->plane + a->run_offset[run] + 2 * u;
            __m256 d[4][4];
            for (int i = 0; i < 4; i++) {
                an_avx2_deinterleave_pairs(p + (size_t)i * bw, &d[i][0], &d[i][1]);
                an_avx2_deinterleave_pairs(p + (size_t)i * bw + 2, &d[i][2], &d[i][3]);
            }
            /* full 8-lane stores where the panel row has room (vmaskmovps stores are microcoded on AMD) */
            const size_t lane = a->run_lane[run] + u;
            an_wino3_input_avx2(d, a->v + lane, ps, lane + 8 <= a->nr, an_avx2_tail_mask(lanes));
        }
    }
    for (size_t n = a->count; n < a->nr; n++)
        for (size_t xi = 0; xi < 16; xi++)
            a->v[xi * ps + n] = 0.0f;
}

/* Block output (kernels.h): 8 consecutive lanes of the block at a time, the two output rows of every tile
 * staged for the block, then copied run by run (chunks split by runs would be 7-tile rows on 13 x 13 maps). */
void an_f32_wino2x2_block_output_avx2(const an_wino_block_output_args *a)
{
    const __m256 bias = _mm256_set1_ps(a->bias);
    float rows[2][2 * 64 + 16];
    for (size_t t = 0; t < a->count; t += 8) {
        __m256 y[2][2];
        an_wino3_output_avx2(a->m + t, a->position_stride, an_avx2_tail_mask(a->count - t < 8 ? a->count - t : 8),
                             bias, a->relu, y);
        /* tile t + l's two columns at 2 (t + l) and 2 (t + l) + 1 */
        for (int r = 0; r < 2; r++)
            an_avx2_store_tile_pairs(rows[r] + 2 * t, y[r][0], y[r][1]);
    }
    for (size_t run = 0; run < a->runs; run++)
        for (size_t r = 0; r < a->run_rows[run]; r++)
            an_avx2_copy_floats(a->out + a->run_offset[run] + r * a->out_stride, rows[r] + 2 * a->run_lane[run],
                                a->run_width[run]);
}
