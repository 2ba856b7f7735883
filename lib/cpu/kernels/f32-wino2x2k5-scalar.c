/* Winograd F(2x2, 5x5) transforms, portable C: one tile at a time, in the order of additions kernels.h fixes
 * (every ISA's version follows it, so a tile's bits do not depend on which lanes computed it). */
#include "cpu/kernels/kernels-scalar.h"

/* B^T on six values (kernels.h): t = B^T d, products only by powers of two. */
static inline void an_wino5_bt(const float d[6], float t[6])
{
    const float a = d[4] - d[2], b = d[3] - d[1], c = d[3] + d[4];
    const float e = d[1] + d[2], f = d[1] - d[2], h = d[4] - d[3];
    t[0] = 4.0f * (d[0] - d[2]) + a;
    t[1] = c - 4.0f * e;
    t[2] = h + 4.0f * f;
    t[3] = a + 2.0f * b;
    t[4] = a - 2.0f * b;
    t[5] = 4.0f * (d[1] - d[3]) + (d[5] - d[3]);
}

void an_f32_wino2x2k5_input_scalar(const an_wino_input_args *a)
{
    const size_t bw = a->row_floats, tiles = a->tiles_h * a->tiles_w, total = a->images * tiles;
    for (size_t n = 0; n < total; n++) {
        const size_t image = n / tiles, ty = n % tiles / a->tiles_w, tx = n % a->tiles_w;
        const float *p = a->planes + image * a->image_floats + 2 * ty * bw + 2 * tx;
        float t[6][6]; /* t[i][j] = (B^T d)[i][j] */
        for (int j = 0; j < 6; j++) {
            float d[6], r[6];
            for (int i = 0; i < 6; i++)
                d[i] = p[(size_t)i * bw + (size_t)j];
            an_wino5_bt(d, r);
            for (int i = 0; i < 6; i++)
                t[i][j] = r[i];
        }
        float *dst = a->v + (n / a->nr) * a->panel_floats + n % a->nr;
        for (int i = 0; i < 6; i++) {
            float r[6];
            an_wino5_bt(t[i], r);
            for (int j = 0; j < 6; j++)
                dst[(size_t)(i * 6 + j) * a->position_stride] = r[j];
        }
    }
    const size_t padded = a->panels * a->nr;
    for (size_t n = total; n < padded; n++)
        for (size_t xi = 0; xi < 36; xi++)
            a->v[xi * a->position_stride + (n / a->nr) * a->panel_floats + n % a->nr] = 0.0f;
}

/* A^T on six values (kernels.h). */
static inline void an_wino5_at(const float m[6], float s[2])
{
    s[0] = ((m[1] + m[2]) + (m[3] + m[4])) + m[0];
    s[1] = ((m[1] - m[2]) + 2.0f * (m[3] - m[4])) + m[5];
}

void an_f32_wino2x2k5_output_scalar(const an_wino_output_args *a)
{
    const size_t ps = a->position_stride, oh = a->out_height, ow = a->out_width;
    for (size_t ty = 0; ty < a->tiles_h; ty++) {
        for (size_t tx = 0; tx < a->tiles_w; tx++) {
            const float *m = a->m + a->first_tile + ty * a->tiles_w + tx;
            float s[2][6];
            for (int j = 0; j < 6; j++) {
                float col[6], r[2];
                for (int i = 0; i < 6; i++)
                    col[i] = m[(size_t)(6 * i + j) * ps];
                an_wino5_at(col, r);
                s[0][j] = r[0];
                s[1][j] = r[1];
            }
            for (size_t r = 0; r < 2 && 2 * ty + r < oh; r++) {
                float y[2];
                an_wino5_at(s[r], y);
                y[0] += a->bias;
                y[1] += a->bias;
                for (size_t c = 0; c < 2 && 2 * tx + c < ow; c++)
                    a->out[(2 * ty + r) * ow + 2 * tx + c] = a->relu && y[c] < 0.0f ? 0.0f : y[c];
            }
        }
    }
}
