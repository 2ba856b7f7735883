/* Winograd F(2x2, 3x3) transforms, portable C: one tile at a time (see kernels.h for the formulas and
 * their fixed order of additions, which every ISA's version follows so that a tile's bits do not depend
 * on which lanes computed it). The three-pass entries (wino_input / wino_output) and the block ones
 * (wino_block_input / wino_block_output) differ only in where tiles come from and go to: both run the
 * per-tile helpers below, hence the same bits. */
#include "cpu/kernels/kernels-scalar.h"

/* V = B^T d B of the 4x4 patch at p (rows bw apart) to dst[xi * ps]. */
static inline void an_wino3_tile_input(const float *p, size_t bw, float *dst, size_t ps)
{
    float t[4][4];
    for (int j = 0; j < 4; j++) {
        float d0 = p[j], d1 = p[bw + j], d2 = p[2 * bw + j], d3 = p[3 * bw + j];
        t[0][j] = d0 - d2;
        t[1][j] = d1 + d2;
        t[2][j] = d2 - d1;
        t[3][j] = d1 - d3;
    }
    for (int i = 0; i < 4; i++) {
        dst[(size_t)(i * 4 + 0) * ps] = t[i][0] - t[i][2];
        dst[(size_t)(i * 4 + 1) * ps] = t[i][1] + t[i][2];
        dst[(size_t)(i * 4 + 2) * ps] = t[i][2] - t[i][1];
        dst[(size_t)(i * 4 + 3) * ps] = t[i][1] - t[i][3];
    }
}

/* y = A^T m A + bias of the tile whose m_xi is m[xi * ps], ReLU if asked. */
static inline void an_wino3_tile_output(const float *m, size_t ps, float bias, int relu, float y[2][2])
{
    float s[2][4];
    for (int j = 0; j < 4; j++) {
        float m0 = m[(size_t)(0 + j) * ps], m1 = m[(size_t)(4 + j) * ps];
        float m2 = m[(size_t)(8 + j) * ps], m3 = m[(size_t)(12 + j) * ps];
        s[0][j] = m0 + m1 + m2;
        s[1][j] = m1 - m2 - m3;
    }
    for (int r = 0; r < 2; r++) {
        const float y0 = s[r][0] + s[r][1] + s[r][2] + bias, y1 = s[r][1] - s[r][2] - s[r][3] + bias;
        y[r][0] = relu && y0 < 0.0f ? 0.0f : y0;
        y[r][1] = relu && y1 < 0.0f ? 0.0f : y1;
    }
}

void an_f32_wino2x2_input_scalar(const an_wino_input_args *a)
{
    const size_t bw = a->row_floats, tiles = a->tiles_h * a->tiles_w, total = a->images * tiles;
    for (size_t n = 0; n < total; n++) {
        const size_t image = n / tiles, ty = n % tiles / a->tiles_w, tx = n % a->tiles_w;
        an_wino3_tile_input(a->planes + image * a->image_floats + 2 * ty * bw + 2 * tx, bw,
                            a->v + (n / a->nr) * a->panel_floats + n % a->nr, a->position_stride);
    }
    const size_t padded = a->panels * a->nr;
    for (size_t n = total; n < padded; n++)
        for (size_t xi = 0; xi < 16; xi++)
            a->v[xi * a->position_stride + (n / a->nr) * a->panel_floats + n % a->nr] = 0.0f;
}

void an_f32_wino2x2_output_scalar(const an_wino_output_args *a)
{
    const size_t oh = a->out_height, ow = a->out_width;
    for (size_t ty = 0; ty < a->tiles_h; ty++) {
        for (size_t tx = 0; tx < a->tiles_w; tx++) {
            float y[2][2];
            an_wino3_tile_output(a->m + a->first_tile + ty * a->tiles_w + tx, a->position_stride, a->bias, a->relu,
                                 y);
            for (size_t r = 0; r < 2 && 2 * ty + r < oh; r++)
                for (size_t c = 0; c < 2 && 2 * tx + c < ow; c++)
                    a->out[(2 * ty + r) * ow + 2 * tx + c] = y[r][c];
        }
    }
}

void an_f32_wino2x2_block_input_scalar(const an_wino_block_input_args *a)
{
    for (size_t run = 0; run < a->runs; run++)
        for (size_t u = 0; u < a->run_count[run]; u++)
            an_wino3_tile_input(a->plane + a->run_offset[run] + 2 * u, a->row_floats, a->v + a->run_lane[run] + u,
                                a->position_stride);
    for (size_t n = a->count; n < a->nr; n++)
        for (size_t xi = 0; xi < 16; xi++)
            a->v[xi * a->position_stride + n] = 0.0f;
}

void an_f32_wino2x2_block_output_scalar(const an_wino_block_output_args *a)
{
    for (size_t run = 0; run < a->runs; run++) {
        for (size_t u = 0; u < a->run_count[run]; u++) {
            float y[2][2];
            an_wino3_tile_output(a->m + a->run_lane[run] + u, a->position_stride, a->bias, a->relu, y);
            float *out = a->out + a->run_offset[run] + 2 * u;
            for (size_t r = 0; r < a->run_rows[run]; r++)
                for (size_t c = 0; c < 2 && 2 * u + c < a->run_width[run]; c++)
                    out[r * a->out_stride + c] = y[r][c];
        }
    }
}
