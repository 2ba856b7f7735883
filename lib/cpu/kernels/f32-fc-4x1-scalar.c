/* Fully connected layer, portable C.
 *
 * Blocking: 4 weight rows at a time, dotted with one image's input, each dot product kept in 8 partial
 * sums (lane l takes the terms k = l mod 8) so the compiler can vectorise it; the 4 rows stay in L1/L2 while
 * every image of the batch passes over them, so the weights (the bulk of the model) are streamed from memory
 * once per call. The sum for one (image, row) is always the same sequence: lanes in k order, then the fixed
 * lane reduction ((0+4)+(2+6)) + ((1+5)+(3+7)), then the bias, whatever rows or batch the call covers. */
#include "cpu/kernels/kernels-scalar.h"

#define LANES 8
#define ROWS 4

static float an_lane_sum(const float lane[LANES])
{
    float s0 = lane[0] + lane[4], s1 = lane[1] + lane[5], s2 = lane[2] + lane[6], s3 = lane[3] + lane[7];
    return (s0 + s2) + (s1 + s3);
}

void an_f32_fc_4x1_scalar(const an_fc_desc *d, const float *in, const float *weight, const float *bias, float *out,
                          size_t row_begin, size_t row_end)
{
    const size_t k_all = d->in_features, k_main = k_all / LANES * LANES;
    for (size_t o0 = row_begin; o0 < row_end; o0 += ROWS) {
        size_t rows = row_end - o0 < ROWS ? row_end - o0 : ROWS;
        const float *w[ROWS];
        for (size_t r = 0; r < ROWS; r++) /* rows past the end repeat the last one; their sums are dropped */
            w[r] = weight + (o0 + (r < rows ? r : rows - 1)) * k_all;
        for (size_t i = 0; i < d->batch; i++) {
            const float *x = in + i * k_all;
            float lane[ROWS][LANES] = {{0}};
            for (size_t k = 0; k < k_main; k += LANES)
                for (size_t r = 0; r < ROWS; r++)
                    for (size_t l = 0; l < LANES; l++)
                        lane[r][l] += w[r][k + l] * x[k + l];
            for (size_t r = 0; r < ROWS; r++)
                for (size_t l = 0; k_main + l < k_all; l++)
                    lane[r][l] += w[r][k_main + l] * x[k_main + l];
            for (size_t r = 0; r < rows; r++) {
                float v = an_lane_sum(lane[r]) + bias[o0 + r];
                out[i * d->out_features + o0 + r] = d->relu && v < 0.0f ? 0.0f : v;
            }
        }
    }
}
