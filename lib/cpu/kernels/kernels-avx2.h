/* The AVX2 + FMA kernel set (lib/cpu/kernels/f32-*-avx2.c), compiled with -mavx2 -mfma -mf16c only in
 * these files. The AVX-512 set reuses the ones it has no wider version of. */
#ifndef AN_CPU_KERNELS_KERNELS_AVX2_H
#define AN_CPU_KERNELS_KERNELS_AVX2_H

#include "cpu/kernels/kernels.h"

void an_f32_gemm_6x16_avx2(size_t kc, const float *a, const float *b, const float *bias, float *c, size_t ldc,
                           size_t m, size_t n, uint32_t flags);
void an_f32_gemm_6x16_avx2_indirect(size_t kc, const float *a, const float *const *b_rows, const float *bias,
                                    float *c, size_t ldc, size_t m, size_t n, uint32_t flags);
void an_f32_im2col_avx2(const an_im2col_panel *panel, size_t nr, float *dst);
void an_f32_wino2x2_input_avx2(const an_wino_input_args *args);
void an_f32_wino2x2_output_avx2(const an_wino_output_args *args);
void an_f32_wino2x2_block_input_avx2(const an_wino_block_input_args *args);
void an_f32_wino2x2_block_output_avx2(const an_wino_block_output_args *args);
void an_f32_wino2x2k5_input_avx2(const an_wino_block_input_args *args);
void an_f32_wino2x2k5_output_avx2(const an_wino_block_output_args *args);
void an_f32_fc_4x3_avx2(const an_fc_desc *desc, const float *in, const float *weight, const float *bias,
                        float *out, size_t row_begin, size_t row_end);
void an_f32_maxpool_3x3s2_avx2(const an_pool_desc *desc, const float *in, float *out, size_t plane_begin,
                               size_t plane_end);
void an_f32_lrn_avx2(const an_lrn_desc *desc, const float *in, float *out, size_t image, size_t channel_begin,
                     size_t channel_end);
void an_f32_softmax_avx2(const float *in, float *out, size_t classes);
void an_f32_relu_avx2(const float *in, float *out, size_t count);
void an_f32_dot_4x4_avx2(const an_dot_tile_args *args);

#endif
