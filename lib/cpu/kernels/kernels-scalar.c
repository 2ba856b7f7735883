/* The portable kernel table. */
#include "cpu/kernels/kernels-scalar.h"

const an_cpu_kernels an_cpu_kernels_scalar = {
    .isa = AN_ISA_SCALAR,
    .description = "portable C kernels (4x8 GEMM)",
    .gemm_mr = 4,
    .gemm_nr = 8,
    .gemm_kc = 256,
    .gemm = an_f32_gemm_4x8_scalar,
    .gemm_indirect = an_f32_gemm_4x8_scalar_indirect,
    .im2col = an_f32_im2col_scalar,
    .wino_input = an_f32_wino2x2_input_scalar,
    .wino_output = an_f32_wino2x2_output_scalar,
    .fc = an_f32_fc_4x1_scalar,
    .max_pool = an_f32_maxpool_scalar,
    .lrn = an_f32_lrn_scalar,
    .softmax = an_f32_softmax_scalar,
    .relu = an_f32_relu_scalar,
    .dot_tile = an_f32_dot_4x4_scalar,
    .wino5_input = an_f32_wino2x2k5_input_scalar,
    .wino5_output = an_f32_wino2x2k5_output_scalar,
    .wino_block_input = an_f32_wino2x2_block_input_scalar,
    .wino_block_output = an_f32_wino2x2_block_output_scalar,
};
