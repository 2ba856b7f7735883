/* The NEON kernel set (lib/cpu/kernels/f32-*-neon.c) for AArch64 Advanced SIMD, which every AArch64 CPU
 * has: no extra compiler flags, but the files are only built when the host is aarch64 (lib/cpu/meson.build).
 * Ops without a NEON specialisation for a case (pooling windows other than 3x3 stride 2, im2col at strides
 * other than 1 and 4, panel widths that are not a multiple of 4) fall back to the portable kernels. */
#ifndef AN_CPU_KERNELS_KERNELS_NEON_H
#define AN_CPU_KERNELS_KERNELS_NEON_H

#include "cpu/kernels/kernels.h"

void an_f32_gemm_8x12_neon(size_t kc, const float *a, const float *b, const float *bias, float *c, size_t ldc,
                           size_t m, size_t n, uint32_t flags);
void an_f32_gemm_8x12_neon_indirect(size_t kc, const float *a, const float *const *b_rows, const float *bias,
                                    float *c, size_t ldc, size_t m, size_t n, uint32_t flags);
void an_f32_im2col_neon(const an_im2col_panel *panel, size_t nr, float *dst);
void an_f32_wino2x2_input_neon(const an_wino_input_args *args);
void an_f32_wino2x2_output_neon(const an_wino_output_args *args);
void an_f32_fc_4x3_neon(const an_fc_desc *desc, const float *in, const float *weight, const float *bias,
                        float *out, size_t row_begin, size_t row_end);
void an_f32_maxpool_3x3s2_neon(const an_pool_desc *desc, const float *in, float *out, size_t plane_begin,
                               size_t plane_end);
void an_f32_lrn_neon(const an_lrn_desc *desc, const float *in, float *out, size_t image, size_t channel_begin,
                     size_t channel_end);
void an_f32_softmax_neon(const float *in, float *out, size_t classes);
void an_f32_relu_neon(const float *in, float *out, size_t count);

#endif
