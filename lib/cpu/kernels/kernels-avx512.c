/* The AVX-512 kernel table: its own GEMM (packed, indirect and row-crossing indirect), im2col, FC,
 * dot-product tile, max pool and max-pool winner search, the AVX2 kernels for the rest. */
#include "cpu/kernels/kernels-avx2.h"
#include "cpu/kernels/kernels-avx512.h"

const an_cpu_kernels an_cpu_kernels_avx512 = {
    .isa = AN_ISA_AVX512,
    .description = "AVX-512 kernels (12x32 GEMM)",
    .gemm_mr = 12,
    .gemm_nr = 32,
    /* Measured on Zen 5 (48 KiB L1d, 1 MiB L2): 384 rather than the L1-sized 192 (a 24 KiB B micro-panel).
     * One K block for conv4/conv5 (K = 384, 256: no reload of C between blocks) and half the blocks of
     * conv2 (K = 1600); the 48 KiB kc x 32 B panel then streams from L2, which keeps up (64 B/cycle for
     * 128 B per 12 cycles). Batch 1, 1 thread, cold caches: conv4 1.40 -> 1.27 ms, conv5 0.97 -> 0.84 ms;
     * conv1..3 unchanged within noise. The bits do not depend on it (C round-trips exactly). */
    .gemm_kc = 384,
    .gemm = an_f32_gemm_12x32_avx512,
    .gemm_indirect = an_f32_gemm_12x32_avx512_indirect,
    .im2col = an_f32_im2col_avx512,
    .wino_input = an_f32_wino2x2_input_avx2,
    .wino_output = an_f32_wino2x2_output_avx2,
    .fc = an_f32_fc_8x3_avx512,
    .max_pool = an_f32_maxpool_3x3s2_avx512,
    .lrn = an_f32_lrn_avx2,
    .softmax = an_f32_softmax_avx2,
    .relu = an_f32_relu_avx2,
    .dot_tile = an_f32_dot_4x4_avx512,
    .max_pool_argmax_s2 = an_f32_maxpool_argmax_s2_avx512,
    .gemm_indirect_split = an_f32_gemm_12x32_avx512_indirect_split,
    .fc_blocked = an_f32_fc_8x3_avx512_blocked,
    .wino5_input = an_f32_wino2x2k5_input_avx2,
    .wino5_output = an_f32_wino2x2k5_output_avx2,
    .wino_block_input = an_f32_wino2x2_block_input_avx2,
    .wino_block_output = an_f32_wino2x2_block_output_avx2,
};
