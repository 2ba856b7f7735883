/* Winograd F(2x2, 5x5) transforms, portable C: one tile at a time, in the order of additions kernels.h fixes
 * (every ISA's version follows it, so a tile's bits do not depend on which lanes computed it). */
#include "cpu/kernels/kernels-scalar.h"

/* t = B^T d on six values (kernels.h); the products are by powers of two. */
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

void an_f32_wino2x2k5_input_scalar(const an_wino_block_input_args *a)
{
    const size_t bw = a->row_floats, ps = a->position_stride;
    for (size_t run = 0; run < a->runs; run++) {
        for (size_t u = 0; u < a->run_count[run]; u++) {
            const float *p = a->plane + a->run_offset[run] + 2 * u;
            const size_t n = a->run_lane[run] + u;
            float t[6][6]; /* t[i][j] = (B^T d)[i][j] */
            for (int j = 0; j < 6; j++) {
                float d[6], r[6];
                for (int i = 0; i < 6; i++)
                    d[i] = p[(size_t)i * bw + (size_t)j];
                an_wino5_bt(d, r);
                for (int i = 0; i < 6; i++)
                    t[i][j] = r[i];
            }
            for (int i = 0; i < 6; i++) {
                float r[6];
                an_wino5_bt(t[i], r);
                for (int j = 0; j < 6; j++)
                    a->v[(size_t)(i * 6 + j) * ps + n] = r[j];
            }
        }
    }
    for (size_t n = a->count; n < a->nr; n++)
        for (size_t xi = 0; xi < 36; xi++)
            a->v[xi * ps + n] = 0.0f;
}

/* (s0, s1) = A^T m on six values (kernels.h). */
static inline void an_wino5_at(const float m[6], float s[2])
{
    s[0] = ((m[1] + m[2]) + (m[3] + m[4])) + m[0];
    s[1] = ((m[1] - m[2]) + 2.0f * (m[3] - m[4])) + m[5];
}

void an_f32_wino2x2k5_output_scalar(const an_wino_block_output_args *a)
{
    const size_t ps = a->position_stride;
    for (size_t run = 0; run < a->runs; run++) {
        for (size_t u = 0; u < a->run_count[run]; u++) {
            const float *m = a->m + a->run_lane[run] + u;
            float *out = a->out + a->run_offset[run] + 2 * u;
            float s[2][6];
            for (int j = 0; j < 6; j++) {
                float col[6], r[2];
                for (int i = 0; i < 6; i++)
                    col[i] = m[(size_t)(6 * i + j) * ps];
                an_wino5_at(col, r);
                s[0][j] = r[0];
                s[1][j] = r[1];
            }
            for (size_t r = 0; r < a->run_rows[run]; r++) {
                float y[2];
                an_wino5_at(s[r], y);
                for (size_t c = 0; c < 2 && 2 * u + c < a->run_width[run]; c++) {
                    const float v = y[c] + a->bias;
                    out[r * a->out_stride + c] = a->relu && v < 0.0f ? 0.0f : v;
                }
            }
        }
    }
}
