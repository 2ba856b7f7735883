/* Winograd F(2x2, 5x5) transforms, AVX2: eight tiles per vector, in the lane order of the GEMM panels.
 * Input: the lanes are up to 8 consecutive tiles of one run (one tile row), whose patches start 2 floats
 * apart, so each patch row is three pairs of unaligned 8-float loads split into even and odd elements
 * (columns j and j + 1 of the 8 patches) instead of 36 gathers; each of the 36 results is one 8-column
 * store into its position's panel row (unmasked where the row has room: vmaskmovps stores are microcoded
 * on AMD cores).
 * Output: the lanes are 8 consecutive tiles of the block, so the 36 M values are masked loads; each output
 * row is the interleave of the tiles' two columns, staged for the block and copied run by run.
 * Both follow kernels.h's order of additions lane by lane, so the bits are the portable kernels'. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "cpu/kernels/f32-math-avx2.h"
#include "cpu/kernels/kernels-avx2.h"

/* t = B^T d (kernels.h), eight lanes at a time. */
static inline void an_wino5_bt_avx2(const __m256 d[6], __m256 t[6])
{
    const __m256 two = _mm256_set1_ps(2.0f), four = _mm256_set1_ps(4.0f);
    const __m256 a = _mm256_sub_ps(d[4], d[2]), b = _mm256_sub_ps(d[3], d[1]), c = _mm256_add_ps(d[3], d[4]);
    const __m256 e = _mm256_add_ps(d[1], d[2]), f = _mm256_sub_ps(d[1], d[2]), h = _mm256_sub_ps(d[4], d[3]);
    t[0] = _mm256_add_ps(_mm256_mul_ps(four, _mm256_sub_ps(d[0], d[2])), a);
    t[1] = _mm256_sub_ps(c, _mm256_mul_ps(four, e));
    t[2] = _mm256_add_ps(h, _mm256_mul_ps(four, f));
    t[3] = _mm256_add_ps(a, _mm256_mul_ps(two, b));
    t[4] = _mm256_sub_ps(a, _mm256_mul_ps(two, b));
    t[5] = _mm256_add_ps(_mm256_mul_ps(four, _mm256_sub_ps(d[1], d[3])), _mm256_sub_ps(d[5], d[3]));
}

void an_f32_wino2x2k5_input_avx2(const an_wino_block_input_args *a)
{
    const size_t bw = a->row_floats, ps = a->position_stride;
    for (size_t run = 0; run < a->runs; run++) {
        for (size_t u = 0; u < a->run_count[run]; u += 8) {
            /* 8 tiles of the run (lanes past its end read up to 19 floats past the last patch's start,
             * inside the row's successors or the plane's slack, and are not stored) */
            const size_t lanes = a->run_count[run] - u < 8 ? a->run_count[run] - u : 8;
            const __m256i mask = an_avx2_tail_mask(lanes);
            const float *p = a->plane + a->run_offset[run] + 2 * u;
            __m256 t[6][6]; /* t[i][j] = (B^T d)[i][j], computed column by column */
            __m256 d[6][6];
            for (int i = 0; i < 6; i++) {
                const float *row = p + (size_t)i * bw;
                an_avx2_deinterleave_pairs(row, &d[i][0], &d[i][1]);
                an_avx2_deinterleave_pairs(row + 2, &d[i][2], &d[i][3]);
                an_avx2_deinterleave_pairs(row + 4, &d[i][4], &d[i][5]);
            }
            for (int j = 0; j < 6; j++) {
                __m256 col[6], r[6];
                for (int i = 0; i < 6; i++)
                    col[i] = d[i][j];
                an_wino5_bt_avx2(col, r);
                for (int i = 0; i < 6; i++)
                    t[i][j] = r[i];
            }
            /* Full 8-lane stores where the panel row has room: lanes past the run hold garbage until the next
             * run (in lane order) or the zeroing of the padding lanes below overwrites them. Masked stores
             * (vmaskmovps) are microcoded on AMD cores: only the panel row's last chunk takes them. */
            const size_t lane = a->run_lane[run] + u;
            float *dst = a->v + lane;
            const int full = lane + 8 <= a->nr;
            for (int i = 0; i < 6; i++) {
                __m256 r[6];
                an_wino5_bt_avx2(t[i], r);
                for (int j = 0; j < 6; j++) {
                    if (full)
                        _mm256_storeu_ps(dst + (size_t)(i * 6 + j) * ps, r[j]);
                    else
                        _mm256_maskstore_ps(dst + (size_t)(i * 6 + j) * ps, mask, r[j]);
                }
            }
        }
    }
    for (size_t n = a->count; n < a->nr; n++)
        for (size_t xi = 0; xi < 36; xi++)
            a->v[xi * ps + n] = 0.0f;
}

/* (s0, s1) = A^T m (kernels.h), eight lanes at a time. */
static inline void an_wino5_at_avx2(const __m256 m[6], __m256 *s0, __m256 *s1)
{
    const __m256 two = _mm256_set1_ps(2.0f);
    *s0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(m[1], m[2]), _mm256_add_ps(m[3], m[4])), m[0]);
    *s1 = _mm256_add_ps(_mm256_add_ps(_mm256_sub_ps(m[1], m[2]), _mm256_mul_ps(two, _mm256_sub_ps(m[3], m[4]))),
                        m[5]);
}

void an_f32_wino2x2k5_output_avx2(const an_wino_block_output_args *a)
{
    const size_t ps = a->position_stride;
    const __m256 bias = _mm256_set1_ps(a->bias), zero = _mm256_setzero_ps();
    /* The block's two output rows of every tile, computed 8 lanes at a time over the whole block (runs
     * split chunks otherwise: 14-tile rows make 5-6 chunks of a 32-tile block instead of 4), then copied
     * run by run. */
    float rows[2][2 * 64 + 16];
    for (size_t t = 0; t < a->count; t += 8) {
        const __m256i mask = an_avx2_tail_mask(a->count - t < 8 ? a->count - t : 8);
        const float *m = a->m + t;
        __m256 s[2][6];
        for (int j = 0; j < 6; j++) {
            __m256 col[6];
            for (int i = 0; i < 6; i++)
                col[i] = _mm256_maskload_ps(m + (size_t)(6 * i + j) * ps, mask);
            an_wino5_at_avx2(col, &s[0][j], &s[1][j]);
        }
        for (int r = 0; r < 2; r++) {
            __m256 y0, y1;
            an_wino5_at_avx2(s[r], &y0, &y1);
            y0 = _mm256_add_ps(y0, bias);
            y1 = _mm256_add_ps(y1, bias);
            if (a->relu) {
                /* max(0, x) keeps NaN and -0 as the portable `x < 0 ? 0 : x` does */
                y0 = _mm256_max_ps(zero, y0);
                y1 = _mm256_max_ps(zero, y1);
            }
            /* tile t + l's two columns at 2 (t + l) and 2 (t + l) + 1 */
            an_avx2_store_tile_pairs(rows[r] + 2 * t, y0, y1);
        }
    }
    for (size_t run = 0; run < a->runs; run++)
        for (size_t r = 0; r < a->run_rows[run]; r++)
            an_avx2_copy_floats(a->out + a->run_offset[run] + r * a->out_stride, rows[r] + 2 * a->run_lane[run],
                          a->run_width[run]);
}
