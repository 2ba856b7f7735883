/* Winograd F(2x2, 5x5) transforms, AVX2: eight tiles per vector, in the lane order of the packed panels,
 * laid out like the F(2x2, 3x3) ones (f32-wino2x2-avx2.c): the input gathers each 6x6 patch element of 8
 * consecutive tiles n (they wrap tile rows and images) and stores each of the 36 results as one aligned
 * 8-column chunk of a V panel row; the output reads 8 consecutive tiles of one tile row with masked loads and
 * writes each output row as the interleave of the tiles' two columns. Both follow kernels.h's order of
 * additions lane by lane, so the bits are the portable kernels'. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "cpu/kernels/f32-math-avx2.h"
#include "cpu/kernels/kernels-avx2.h"
#include "cpu/kernels/kernels-scalar.h"

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

void an_f32_wino2x2k5_input_avx2(const an_wino_input_args *a)
{
    const size_t bw = a->row_floats, tiles = a->tiles_h * a->tiles_w, total = a->images * tiles;
    /* gather offsets are 32-bit: larger images take the portable path */
    if (a->nr % 8 != 0 || a->images * a->image_floats > (size_t)INT32_MAX / 2) {
        an_f32_wino2x2k5_input_scalar(a);
        return;
    }
    const size_t ps = a->position_stride;
    for (size_t p = 0; p < a->panels; p++) {
        for (size_t q = 0; q < a->nr; q += 8) {
            const size_t n0 = p * a->nr + q;
            float *dst = a->v + p * a->panel_floats + q;
            if (n0 >= total) {
                for (size_t xi = 0; xi < 36; xi++)
                    _mm256_store_ps(dst + xi * ps, _mm256_setzero_ps());
                continue;
            }
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
            __m256 t[6][6]; /* t[i][j] = (B^T d)[i][j] */
            for (int j = 0; j < 6; j++) {
                __m256 d[6], r[6];
                for (int i = 0; i < 6; i++)
                    d[i] = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), a->planes + (size_t)i * bw + (size_t)j,
                                                    index, mask, 4);
                an_wino5_bt_avx2(d, r);
                for (int i = 0; i < 6; i++)
                    t[i][j] = r[i];
            }
            for (int i = 0; i < 6; i++) {
                __m256 r[6];
                an_wino5_bt_avx2(t[i], r);
                for (int j = 0; j < 6; j++)
                    _mm256_store_ps(dst + (size_t)(i * 6 + j) * ps, r[j]);
            }
        }
    }
}

/* (s0, s1) = A^T m (kernels.h), eight lanes at a time. */
static inline void an_wino5_at_avx2(const __m256 m[6], __m256 *s0, __m256 *s1)
{
    const __m256 two = _mm256_set1_ps(2.0f);
    *s0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(m[1], m[2]), _mm256_add_ps(m[3], m[4])), m[0]);
    *s1 = _mm256_add_ps(_mm256_add_ps(_mm256_sub_ps(m[1], m[2]), _mm256_mul_ps(two, _mm256_sub_ps(m[3], m[4]))),
                        m[5]);
}

/* Lanes [0, count) of (left, right) interleaved, as up to 16 floats clipped to `width`, at dst. */
static inline void an_store_pairs5(float *dst, __m256 left, __m256 right, size_t width)
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

void an_f32_wino2x2k5_output_avx2(const an_wino_output_args *a)
{
    const size_t ps = a->position_stride, oh = a->out_height, ow = a->out_width;
    const __m256 bias = _mm256_set1_ps(a->bias), zero = _mm256_setzero_ps();
    for (size_t ty = 0; ty < a->tiles_h; ty++) {
        for (size_t tx = 0; tx < a->tiles_w; tx += 8) {
            const size_t count = a->tiles_w - tx < 8 ? a->tiles_w - tx : 8;
            const __m256i mask = an_avx2_tail_mask(count);
            const float *m = a->m + a->first_tile + ty * a->tiles_w + tx;
            __m256 s[2][6];
            for (int j = 0; j < 6; j++) {
                __m256 col[6];
                for (int i = 0; i < 6; i++)
                    col[i] = _mm256_maskload_ps(m + (size_t)(6 * i + j) * ps, mask);
                an_wino5_at_avx2(col, &s[0][j], &s[1][j]);
            }
            const size_t width = ow - 2 * tx < 2 * count ? ow - 2 * tx : 2 * count;
            for (size_t r = 0; r < 2 && 2 * ty + r < oh; r++) {
                __m256 y0, y1;
                an_wino5_at_avx2(s[r], &y0, &y1);
                y0 = _mm256_add_ps(y0, bias);
                y1 = _mm256_add_ps(y1, bias);
                if (a->relu) {
                    /* max(0, x) keeps NaN and -0 as the portable `x < 0 ? 0 : x` does */
                    y0 = _mm256_max_ps(zero, y0);
                    y1 = _mm256_max_ps(zero, y1);
                }
                an_store_pairs5(a->out + (2 * ty + r) * ow + 2 * tx, y0, y1, width);
            }
        }
    }
}
