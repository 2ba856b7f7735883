/* The AVX-512 kernel set (lib/cpu/kernels/f32-*-avx512.c), compiled with -mavx512f -mavx512bw -mavx512dq
 * -mavx512vl (plus AVX2/FMA) only in these files. Ops without a wider version use the AVX2 kernels: every
 * CPU the set runs on has AVX2 too (the probe requires it). */
#ifndef AN_CPU_KERNELS_KERNELS_AVX512_H
#define AN_CPU_KERNELS_KERNELS_AVX512_H

#include "cpu/kernels/kernels.h"

void an_f32_gemm_12x32_avx512(size_t kc, const float *a, const float *b, const float *bias, float *c, size_t ldc,
                              size_t m, size_t n, uint32_t flags);
void an_f32_gemm_12x32_avx512_indirect(size_t kc, const float *a, const float *const *b_rows, const float *bias,
                                       float *c, size_t ldc, size_t m, size_t n, uint32_t flags);
void an_f32_gemm_12x32_avx512_indirect_split(size_t kc, const float *a, const float *const *b_rows, size_t split,
                                             ptrdiff_t split_offset, const float *bias, float *c, size_t ldc,
                                             size_t m, size_t n, uint32_t flags);
void an_f32_im2col_avx512(const an_im2col_panel *panel, size_t nr, float *dst);
void an_f32_fc_8x3_avx512(const an_fc_desc *desc, const float *in, const float *weight, const float *bias,
                          float *out, size_t row_begin, size_t row_end);
void an_f32_fc_8x3_avx512_blocked(const an_fc_desc *desc, const float *in, const float *weight, const float *bias,
                                  float *out, size_t row_begin, size_t row_end, float *part);
void an_f32_dot_4x4_avx512(const an_dot_tile_args *args);
void an_f32_maxpool_3x3s2_avx512(const an_pool_desc *desc, const float *in, float *out, size_t plane_begin,
                                 size_t plane_end);
void an_f32_maxpool_argmax_s2_avx512(const an_pool_desc *d, const float *plane, size_t oy0, size_t rows,
                                     uint32_t *at);

#endif
