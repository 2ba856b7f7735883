/* Winograd F(2x2, 3x3) transforms, portable C: one tile at a time (see kernels.h for the formulas and
 * their fixed order of additions, which every ISA's version follows so that a tile's bits do not depend
 * on which lanes computed it). */
#include "cpu/kernels/kernels-scalar.h"

void an_f32_wino2x2_input_scalar(const an_wino_input_args *a)
{
    const size_t bw = a->row_floats, tiles = a->tiles_h * a->tiles_w, total = a->images * tiles;
    for (size_t n = 0; n < total; n++) {
        const size_t image = n / tiles, ty = n % tiles / a->tiles_w, tx = n % a->tiles_w;
        const float *p = a->planes + image * a->image_floats + 2 * ty * bw + 2 * tx;
        float t[4][4];
        for (int j = 0; j < 4; j++) {
            float d0 = p[j], d1 = p[bw + j], d2 = p[2 * bw + j], d3 = p[3 * bw + j];
            t[0][j] = d0 - d2;
            t[1][j] = d1 + d2;
            t[2][j] = d2 - d1;
            t[3][j] = d1 - d3;
        }
        float *dst = a->v + (n / a->nr) * a->panel_floats + n % a->nr;
        for (int i = 0; i < 4; i++) {
            dst[(size_t)(i * 4 + 0) * a->position_stride] = t[i][0] - t[i][2];
            dst[(size_t)(i * 4 + 1) * a->position_stride] = t[i][1] + t[i][2];
            dst[(size_t)(i * 4 + 2) * a->position_stride] = t[i][2] - t[i][1];
            dst[(size_t)(i * 4 + 3) * a->position_stride] = t[i][1] - t[i][3];
        }
    }
    const size_t padded = a->panels * a->nr;
    for (size_t n = total; n < padded; n++)
        for (size_t xi = 0; xi < 16; xi++)
            a->v[xi * a->position_stride + (n / a->nr) * a->panel_floats + n % a->nr] = 0.0f;
}

void an_f32_wino2x2_output_scalar(const an_wino_output_args *a)
{
    const size_t ps = a->position_stride, oh = a->out_height, ow = a->out_width;
    for (size_t ty = 0; ty < a->tiles_h; ty++) {
        for (size_t tx = 0; tx < a->tiles_w; tx++) {
            const float *m = a->m + a->first_tile + ty * a->tiles_w + tx;
            float s[2][4];
            for (int j = 0; j < 4; j++) {
                float m0 = m[(size_t)(0 + j) * ps], m1 = m[(size_t)(4 + j) * ps];
                float m2 = m[(size_t)(8 + j) * ps], m3 = m[(size_t)(12 + j) * ps];
                s[0][j] = m0 + m1 + m2;
                s[1][j] = m1 - m2 - m3;
            }
            for (size_t r = 0; r < 2 && 2 * ty + r < oh; r++) {
                float y[2] = {s[r][0] + s[r][1] + s[r][2] + a->bias, s[r][1] - s[r][2] - s[r][3] + a->bias};
                for (size_t c = 0; c < 2 && 2 * tx + c < ow; c++)
                    a->out[(2 * ty + r) * ow + 2 * tx + c] = a->relu && y[c] < 0.0f ? 0.0f : y[c];
            }
        }
    }
}
