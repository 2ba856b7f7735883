/* The AVX2 + FMA kernel table. */
#include "cpu/kernels/kernels-avx2.h"

const an_cpu_kernels an_cpu_kernels_avx2 = {
    .isa = AN_ISA_AVX2,
    .description = "AVX2+FMA kernels (6x16 GEMM)",
    .gemm_mr = 6,
    .gemm_nr = 16,
    .gemm_kc = 256,
    .gemm = an_f32_gemm_6x16_avx2,
    .gemm_indirect = an_f32_gemm_6x16_avx2_indirect,
    .im2col = an_f32_im2col_avx2,
    .wino_input = an_f32_wino2x2_input_avx2,
    .wino_output = an_f32_wino2x2_output_avx2,
    .fc = an_f32_fc_4x3_avx2,
    .max_pool = an_f32_maxpool_3x3s2_avx2,
    .lrn = an_f32_lrn_avx2,
    .softmax = an_f32_softmax_avx2,
    .relu = an_f32_relu_avx2,
    .dot_tile = an_f32_dot_4x4_avx2,
    .wino5_input = an_f32_wino2x2k5_input_avx2,
    .wino5_output = an_f32_wino2x2k5_output_avx2,
    .wino_block_input = an_f32_wino2x2_block_input_avx2,
    .wino_block_output = an_f32_wino2x2_block_output_avx2,
};
