/* The AVX-512 kernel table: its own GEMM, FC and dot-product tile, the AVX2 kernels for the rest. */
#include "cpu/kernels/kernels-avx2.h"
#include "cpu/kernels/kernels-avx512.h"

const an_cpu_kernels an_cpu_kernels_avx512 = {
    .isa = AN_ISA_AVX512,
    .description = "AVX-512 kernels (12x32 GEMM)",
    .gemm_mr = 12,
    .gemm_nr = 32,
    /* 192 x 32 floats of B (24 KiB) + 12 x 192 of A (9 KiB) fit a 48 KiB L1; untuned (no such CPU here) */
    .gemm_kc = 192,
    .gemm = an_f32_gemm_12x32_avx512,
    .gemm_indirect = an_f32_gemm_12x32_avx512_indirect,
    .im2col = an_f32_im2col_avx2,
    .wino_input = an_f32_wino2x2_input_avx2,
    .wino_output = an_f32_wino2x2_output_avx2,
    .fc = an_f32_fc_4x3_avx512,
    .max_pool = an_f32_maxpool_3x3s2_avx2,
    .lrn = an_f32_lrn_avx2,
    .softmax = an_f32_softmax_avx2,
    .relu = an_f32_relu_avx2,
    .dot_tile = an_f32_dot_4x4_avx512,
};
