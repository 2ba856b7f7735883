/* Winograd F(2x2, 3x3) transforms, NEON (AArch64): four tiles per vector, in the lane order of the packed
 * panels.
 *
 * Input: the 4 lanes are 4 consecutive tiles n of the group (one 4-column chunk of a V panel row), so each of
 * the 16 results is one store. When the 4 tiles lie in one tile row (the common case), their 4x4 patches start
 * 2 columns apart, so for each patch row two de-interleaving loads (LD2 at columns 2tx and 2tx + 2) give the
 * 4 patch columns j = 0..3 of all 4 tiles at once: no gather, and nothing read outside the 4 patches. A chunk
 * that wraps to the next tile row or image, or runs past the last tile, is gathered lane by lane into a
 * small buffer (zeros past the last tile, which the panel's padding columns need).
 * Output: the lanes are 4 consecutive tiles of one tile row of one image, so the 16 M values are plain loads
 * (a padded copy for the last 1-3 tiles of a row), and each output row pair is stored interleaved (ST2).
 * Both follow the portable kernels' order of additions exactly (kernels.h), lane by lane. */
#include <arm_neon.h>
#include <string.h>

#include "cpu/kernels/f32-math-neon.h"
#include "cpu/kernels/kernels-neon.h"
#include "cpu/kernels/kernels-scalar.h"

/* B^T d B for the 4 tiles whose patches are d[i][j] (patch row i, column j), stored at dst + xi * ps. */
static inline void an_wino_input_tiles(const float32x4_t d[4][4], float *dst, size_t ps)
{
    float32x4_t t[4][4];
    for (int j = 0; j < 4; j++) {
        t[0][j] = vsubq_f32(d[0][j], d[2][j]);
        t[1][j] = vaddq_f32(d[1][j], d[2][j]);
        t[2][j] = vsubq_f32(d[2][j], d[1][j]);
        t[3][j] = vsubq_f32(d[1][j], d[3][j]);
    }
    for (int i = 0; i < 4; i++) {
        vst1q_f32(dst + (size_t)(i * 4 + 0) * ps, vsubq_f32(t[i][0], t[i][2]));
        vst1q_f32(dst + (size_t)(i * 4 + 1) * ps, vaddq_f32(t[i][1], t[i][2]));
        vst1q_f32(dst + (size_t)(i * 4 + 2) * ps, vsubq_f32(t[i][2], t[i][1]));
        vst1q_f32(dst + (size_t)(i * 4 + 3) * ps, vsubq_f32(t[i][1], t[i][3]));
    }
}

void an_f32_wino2x2_input_neon(const an_wino_input_args *a)
{
    if (a->nr % 4 != 0) {
        an_f32_wino2x2_input_scalar(a);
        return;
    }
    const size_t bw = a->row_floats, tiles = a->tiles_h * a->tiles_w, total = a->images * tiles;
    const size_t ps = a->position_stride;
    for (size_t p = 0; p < a->panels; p++) {
        for (size_t q = 0; q < a->nr; q += 4) {
            const size_t n0 = p * a->nr + q;
            float32x4_t d[4][4];
            const size_t image = n0 / tiles, ty = n0 % tiles / a->tiles_w, tx = n0 % a->tiles_w;
            if (n0 + 4 <= total && tx + 4 <= a->tiles_w) {
                const float *patch = a->planes + image * a->image_floats + 2 * ty * bw + 2 * tx;
                for (int i = 0; i < 4; i++) {
                    const float32x4x2_t left = vld2q_f32(patch + (size_t)i * bw);
                    const float32x4x2_t right = vld2q_f32(patch + (size_t)i * bw + 2);
                    d[i][0] = left.val[0];
                    d[i][1] = left.val[1];
                    d[i][2] = right.val[0];
                    d[i][3] = right.val[1];
                }
            } else {
                float lanes[4][4][4] = {{{0}}};
                for (size_t l = 0; l < 4 && n0 + l < total; l++) {
                    const size_t n = n0 + l, im = n / tiles, y = n % tiles / a->tiles_w, x = n % a->tiles_w;
                    const float *patch = a->planes + im * a->image_floats + 2 * y * bw + 2 * x;
                    for (size_t i = 0; i < 4; i++)
                        for (size_t j = 0; j < 4; j++)
                            lanes[i][j][l] = patch[i * bw + j];
                }
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++)
                        d[i][j] = vld1q_f32(lanes[i][j]);
            }
            an_wino_input_tiles((const float32x4_t(*)[4])d, a->v + p * a->panel_floats + q, ps);
        }
    }
}

void an_f32_wino2x2_output_neon(const an_wino_output_args *a)
{
    const size_t ps = a->position_stride, oh = a->out_height, ow = a->out_width;
    const float32x4_t bias = vdupq_n_f32(a->bias);
    for (size_t ty = 0; ty < a->tiles_h; ty++) {
        for (size_t tx = 0; tx < a->tiles_w; tx += 4) {
            const size_t count = a->tiles_w - tx < 4 ? a->tiles_w - tx : 4;
            const float *m = a->m + a->first_tile + ty * a->tiles_w + tx;
            float32x4_t s[2][4];
            for (int j = 0; j < 4; j++) {
                float32x4_t mv[4];
                for (int i = 0; i < 4; i++) {
                    const float *src = m + (size_t)(4 * i + j) * ps;
                    mv[i] = count == 4 ? vld1q_f32(src) : an_neon_load_partial(src, count, 0.0f);
                }
                s[0][j] = vaddq_f32(vaddq_f32(mv[0], mv[1]), mv[2]);
                s[1][j] = vsubq_f32(vsubq_f32(mv[1], mv[2]), mv[3]);
            }
            const size_t width = ow - 2 * tx < 2 * count ? ow - 2 * tx : 2 * count;
            for (size_t r = 0; r < 2 && 2 * ty + r < oh; r++) {
                float32x4x2_t y;
                y.val[0] = vaddq_f32(vaddq_f32(vaddq_f32(s[r][0], s[r][1]), s[r][2]), bias);
                y.val[1] = vaddq_f32(vsubq_f32(vsubq_f32(s[r][1], s[r][2]), s[r][3]), bias);
                if (a->relu) {
                    y.val[0] = an_neon_relu(y.val[0]);
                    y.val[1] = an_neon_relu(y.val[1]);
                }
                float *dst = a->out + (2 * ty + r) * ow + 2 * tx;
                if (width == 8) {
                    vst2q_f32(dst, y);
                } else {
                    float row[8];
                    vst2q_f32(row, y);
                    memcpy(dst, row, width * sizeof *row);
                }
            }
        }
    }
}
