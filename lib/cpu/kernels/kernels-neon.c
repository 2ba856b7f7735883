/* The NEON (AArch64 Advanced SIMD) kernel table. */
#include "cpu/kernels/kernels-neon.h"
#include "cpu/kernels/kernels-scalar.h" /* the dot-product tile */

const an_cpu_kernels an_cpu_kernels_neon = {
    .isa = AN_ISA_NEON,
    .description = "NEON kernels (8x12 GEMM)",
    .gemm_mr = 8,
    .gemm_nr = 12,
    /* 256 x 12 floats of B (12 KiB) + 8 x 256 of A (8 KiB) fit the 32-64 KiB L1D of current cores */
    .gemm_kc = 256,
    .gemm = an_f32_gemm_8x12_neon,
    .gemm_indirect = an_f32_gemm_8x12_neon_indirect,
    .im2col = an_f32_im2col_neon,
    .wino_input = an_f32_wino2x2_input_neon,
    .wino_output = an_f32_wino2x2_output_neon,
    .fc = an_f32_fc_4x3_neon,
    .max_pool = an_f32_maxpool_3x3s2_neon,
    .lrn = an_f32_lrn_neon,
    .softmax = an_f32_softmax_neon,
    .relu = an_f32_relu_neon,
    .dot_tile = an_f32_dot_4x4_scalar,
};
