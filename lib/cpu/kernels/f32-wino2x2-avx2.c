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
            __m256 t[4][4];
            for (int j = 0; j < 4; j++) {
                t[0][j] = _mm256_sub_ps(d[0][j], d[2][j]);
                t[1][j] = _mm256_add_ps(d[1][j], d[2][j]);
                t[2][j] = _mm256_sub_ps(d[2][j], d[1][j]);
                t[3][j] = _mm256_sub_ps(d[1][j], d[3][j]);
            }
            float *dst = a->v + p * a->panel_floats + q;
            for (int i = 0; i < 4; i++) {
                _mm256_store_ps(dst + (size_t)(i * 4 + 0) * ps, _mm256_sub_ps(t[i][0], t[i][2]));
                _mm256_store_ps(dst + (size_t)(i * 4 + 1) * ps, _mm256_add_ps(t[i][1], t[i][2]));
                _mm256_store_ps(dst + (size_t)(i * 4 + 2) * ps, _mm256_sub_ps(t[i][2], t[i][1]));
                _mm256_store_ps(dst + (size_t)(i * 4 + 3) * ps, _mm256_sub_ps(t[i][1], t[i][3]));
            }
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
    const __m256 bias = _mm256_set1_ps(a->bias), zero = _mm256_setzero_ps();
    for (size_t ty = 0; ty < a->tiles_h; ty++) {
        for (size_t tx = 0; tx < a->tiles_w; tx += 8) {
            const size_t count = a->tiles_w - tx < 8 ? a->tiles_w - tx : 8;
            const __m256i mask = an_avx2_tail_mask(count);
            const float *m = a->m + a->first_tile + ty * a->tiles_w + tx;
            __m256 s[2][4];
            for (int j = 0; j < 4; j++) {
                __m256 m0 = _mm256_maskload_ps(m + (size_t)(0 + j) * ps, mask);
                __m256 m1 = _mm256_maskload_ps(m + (size_t)(4 + j) * ps, mask);
                __m256 m2 = _mm256_maskload_ps(m + (size_t)(8 + j) * ps, mask);
                __m256 m3 = _mm256_maskload_ps(m + (size_t)(12 + j) * ps, mask);
                s[0][j] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
                s[1][j] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
            }
            const size_t width = ow - 2 * tx < 2 * count ? ow - 2 * tx : 2 * count;
            for (size_t r = 0; r < 2 && 2 * ty + r < oh; r++) {
                __m256 y0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s[r][0], s[r][1]), s[r][2]), bias);
                __m256 y1 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s[r][1], s[r][2]), s[r][3]), bias);
                if (a->relu) {
                    /* max(0, x) keeps NaN and -0 as the portable `x < 0 ? 0 : x` does */
                    y0 = _mm256_max_ps(zero, y0);
                    y1 = _mm256_max_ps(zero, y1);
                }
                an_store_pairs(a->out + (2 * ty + r) * ow + 2 * tx, y0, y1, width);
            }
        }
    }
}
