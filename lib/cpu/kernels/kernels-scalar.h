/* The portable kernel set (lib/cpu/kernels/f32-*-scalar.c): the fallback on CPUs without a dedicated set,
 * and the edges that the SIMD sets share (e.g. pooling windows other than 3x3 stride 2). */
#ifndef AN_CPU_KERNELS_KERNELS_SCALAR_H
#define AN_CPU_KERNELS_KERNELS_SCALAR_H

#include "cpu/kernels/kernels.h"

void an_f32_gemm_4x8_scalar(size_t kc, const float *a, const float *b, const float *bias, float *c, size_t ldc,
                            size_t m, size_t n, uint32_t flags);
void an_f32_gemm_4x8_scalar_indirect(size_t kc, const float *a, const float *const *b_rows, const float *bias,
                                     float *c, size_t ldc, size_t m, size_t n, uint32_t flags);
void an_f32_im2col_scalar(const an_im2col_panel *panel, size_t nr, float *dst);
void an_f32_wino2x2_input_scalar(const an_wino_input_args *args);
void an_f32_wino2x2_output_scalar(const an_wino_output_args *args);
void an_f32_wino2x2_block_input_scalar(const an_wino_block_input_args *args);
void an_f32_wino2x2_block_output_scalar(const an_wino_block_output_args *args);
void an_f32_wino2x2k5_input_scalar(const an_wino_block_input_args *args);
void an_f32_wino2x2k5_output_scalar(const an_wino_block_output_args *args);
void an_f32_fc_4x1_scalar(const an_fc_desc *desc, const float *in, const float *weight, const float *bias,
                          float *out, size_t row_begin, size_t row_end);
void an_f32_maxpool_scalar(const an_pool_desc *desc, const float *in, float *out, size_t plane_begin,
                           size_t plane_end);
void an_f32_lrn_scalar(const an_lrn_desc *desc, const float *in, float *out, size_t image, size_t channel_begin,
                       size_t channel_end);
void an_f32_softmax_scalar(const float *in, float *out, size_t classes);
void an_f32_relu_scalar(const float *in, float *out, size_t count);
void an_f32_dot_4x4_scalar(const an_dot_tile_args *args);

#endif
