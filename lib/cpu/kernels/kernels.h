/* The CPU backend's per-ISA kernels: one table of function pointers per instruction set. The entries are
 * the only ISA-specific code of the backend; everything else (im2col packing, blocking, threading, the
 * backend interface) is portable C in lib/cpu/cpu_*.c and calls through this table. A new instruction set
 * (NEON, say) is "write these functions in new files and fill in a table":
 *
 *   gemm        the convolution microkernel: an MR x NR tile of C from an MR-row panel of packed weights
 *               and an NR-column panel of packed im2col, over kc steps of K;
 *   gemm_indirect  the same tile with the im2col rows read in place, from one address per row of K;
 *   im2col      packs one NR-column panel of im2col from the zero-bordered input image;
 *   wino_input  Winograd F(2x2, 3x3) input transform of one bordered channel plane (cpu_winograd.c);
 *   wino_output its output transform of one output channel, with bias and ReLU;
 *   wino5_input, wino5_output  optional: the same for Winograd F(2x2, 5x5) (5x5 stride-1 layers: conv2);
 *   wino_block_input, wino_block_output  optional: F(2x2, 3x3)'s transforms on one block of tiles;
 *   fc          fully connected rows [row_begin, row_end) for every image of the batch;
 *   max_pool    max pooling of whole planes;
 *   lrn         local response normalisation of a channel range of one image;
 *   softmax     one row;
 *   relu        elementwise;
 *   dot_tile    a 4 x 4 tile of dot products along rows (the conv weight gradient of the training ops);
 *   max_pool_argmax_s2  optional: where each stride-2 max-pool window's maximum came from (max pool backward);
 *   gemm_indirect_split  optional: gemm_indirect for a panel whose pixels cross into the next output row;
 *   fc_blocked  optional: fc at batch > 1 on a block of rows, with a scratch buffer for carried sums.
 *
 * Layouts the portable driver produces for gemm (MR = gemm_mr, NR = gemm_nr):
 *   packed weights, per group and per panel of MR output channels: MR biases, then K x MR weights with
 *     a[k * MR + r] = weight[oc0 + r][k] (k runs over (input channel, ky, kx) as in PyTorch's layout);
 *     rows past the group's last output channel are zero;
 *   packed im2col, per group and per panel of NR output pixels: K x NR values b[k * NR + j] = the input tap k
 *     of pixel p0 + j (zero for padding and for pixels past the end).
 * Every output element is the same chain of operations whatever tile, task or thread computes it, which is
 * what makes results bitwise identical for any thread count and batch split. */
#ifndef AN_CPU_KERNELS_KERNELS_H
#define AN_CPU_KERNELS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "cpu/features.h"

/* gemm flags */
#define AN_GEMM_ACCUMULATE 1u /* start from C (a later K block) instead of the panel's biases */
#define AN_GEMM_RELU 2u       /* clamp at zero before storing (the last K block of a fused conv + ReLU) */

/* C[r][j] (row stride ldc) for r < m <= MR, j < n <= NR:
 *   acc = (flags & AN_GEMM_ACCUMULATE) ? C[r][j] : bias[r];
 *   acc += a[k * MR + r] * b[k * NR + j] for k = 0 .. kc-1, in that order, one fused multiply-add each;
 *   C[r][j] = (flags & AN_GEMM_RELU) ? max(acc, 0) : acc   (NaN stays NaN).
 * Rows and columns past m and n are computed from the zero padding of the panels and never stored.
 * kc may be 0 (then C is just initialised). */
typedef void (*an_gemm_ukernel_fn)(size_t kc, const float *a, const float *b, const float *bias, float *c,
                                   size_t ldc, size_t m, size_t n, uint32_t flags);

/* The same, with B given by row addresses: row k of the kc x NR panel is the NR floats at b_rows[k] (any
 * alignment, all NR readable; columns past n are computed from them and never stored). The chain of
 * operations is gemm's, so the bits are those of gemm on a packed copy of the rows. The driver uses it for
 * the im2col panels whose NR pixels read consecutive floats of the (phase-split) bordered image for every
 * tap: those need no packing, only K row addresses. */
typedef void (*an_gemm_indirect_fn)(size_t kc, const float *a, const float *const *b_rows, const float *bias,
                                    float *c, size_t ldc, size_t m, size_t n, uint32_t flags);

/* gemm_indirect for a panel whose NR pixels run from one output row into the next: column j of B row k is
 * b_rows[k][j] for j < split and b_rows[k][j + split_offset] for j >= split (0 <= split <= NR). Only the
 * columns each part names are read. Same chain of operations as gemm, so the same bits as on a packed copy.
 * Optional: NULL in a table means the driver packs such panels. */
typedef void (*an_gemm_indirect_split_fn)(size_t kc, const float *a, const float *const *b_rows, size_t split,
                                          ptrdiff_t split_offset, const float *bias, float *c, size_t ldc,
                                          size_t m, size_t n, uint32_t flags);

/* One panel of im2col as the portable driver describes it: NR output pixels, split into runs of consecutive
 * pixels of one output row. With phase_floats == 0, tap (c, ky, kx) of the pixel at column run_column[r] + t
 * of the panel is
 *   image[c * plane_floats + ky * row_floats + kx + run_offset[r] + t * stride]
 * where image is the group's first channel in the zero-bordered input (so no bounds checks are needed).
 * With phase_floats > 0 the bordered image is stored phase-split (what the driver does for stride > 1):
 * each bordered row is `stride` phase rows of phase_floats floats, phase q holding the row's columns
 * q, q + stride, q + 2 stride, ... (row_floats = stride x phase_floats), and the tap is
 *   image[c * plane_floats + ky * row_floats + (kx % stride) * phase_floats + kx / stride + run_offset[r] + t]
 * so every run reads consecutive floats, as at stride 1.
 * The bordered image has AN_IM2COL_LEAD_FLOATS readable floats before it and AN_IM2COL_TAIL_FLOATS after it,
 * so a kernel may read that far outside a run (masked-off lanes, or lanes it then discards). */
#define AN_IM2COL_MAX_RUNS 64
#define AN_IM2COL_LEAD_FLOATS 64
#define AN_IM2COL_TAIL_FLOATS 256
typedef struct an_im2col_panel {
    const float *image;
    size_t channels, kernel_size, stride;
    size_t row_floats, plane_floats;
    size_t phase_floats; /* 0: plain rows; else the phase-split layout above */
    size_t columns; /* valid pixels (<= NR); the other columns of every row are zero */
    size_t runs;
    size_t run_column[AN_IM2COL_MAX_RUNS], run_length[AN_IM2COL_MAX_RUNS], run_offset[AN_IM2COL_MAX_RUNS];
} an_im2col_panel;

/* dst[k * NR + j] for k = (c, ky, kx) in PyTorch's order, j < NR (dst is 32-byte aligned). */
typedef void (*an_im2col_fn)(const an_im2col_panel *panel, size_t nr, float *dst);

/* Winograd F(2x2, 3x3), tile (ty, tx) of an image = output rows 2ty, 2ty+1 and columns 2tx, 2tx+1; the
 * tiles of a group of images are numbered n = image * tiles_h * tiles_w + ty * tiles_w + tx.
 * Input, for one input channel of every image of the group: d = the 4x4 patch of the channel's bordered
 * plane at row 2ty, column 2tx; V = B^T d B with B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], computed as
 * rows (d0 - d2, d1 + d2, d2 - d1, d1 - d3) then the same on columns, in that order; V[xi] of tile n goes to
 *   v[xi * position_stride + (n / nr) * panel_floats + n % nr],
 * and the columns past the last tile of the last of `panels` panels are zeroed. Image i's plane starts at
 * planes + i * image_floats, and has AN_WINO_PLANE_SLACK readable floats after its last row. */
#define AN_WINO_PLANE_SLACK 32
typedef struct an_wino_input_args {
    const float *planes;
    size_t image_floats, row_floats;
    size_t images, tiles_h, tiles_w;
    float *v;
    size_t position_stride, panel_floats, nr, panels;
} an_wino_input_args;
typedef void (*an_wino_input_fn)(const an_wino_input_args *args);

/* Output: with m[xi] = m[xi * position_stride + n] for tile n = first_tile + ty * tiles_w + tx,
 * s = A^T m as rows (m0 + m1 + m2, m1 - m2 - m3), then y = s A likewise, plus bias (last), ReLU if asked;
 * the 2x2 outputs inside out_height x out_width are stored to the output plane. */
typedef struct an_wino_output_args {
    const float *m;
    size_t position_stride, first_tile, tiles_h, tiles_w;
    float bias;
    int relu;
    float *out;
    size_t out_height, out_width;
} an_wino_output_args;
typedef void (*an_wino_output_fn)(const an_wino_output_args *args);

/* Winograd F(2x2, 5x5) (cpu_winograd.c has the derivation and the driver), 6x6 patches and 36 positions
 * xi = 6 i + j. Unlike F(2x2, 3x3)'s, these transforms work on one block of at most NR tiles (one GEMM panel
 * column block) at a time, so that V and M stay in the core's cache (cpu_winograd.c). Optional: NULL in a
 * table means 5x5 convolutions keep the GEMM path (both are set or neither).
 * Input, one input channel of a block of `count` tiles: the block's lanes form `runs` runs of consecutive
 * tiles of one tile row; run r covers lanes run_lane[r] .. run_lane[r] + run_count[r] - 1 (the runs are in
 * lane order and cover [0, count)), and the 6x6 patch d of its tile u starts at plane + run_offset[r] + 2 u
 * (rows row_floats apart). V = B^T d B with
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1],
 * computed, for each column j, on the patch rows d0 .. d5 (d_i = patch[i][j]) in float as
 *   a = d4 - d2, b = d3 - d1, c = d3 + d4, e = d1 + d2, f = d1 - d2, h = d4 - d3,
 *   t0 = 4 (d0 - d2) + a, t1 = c - 4 e, t2 = h + 4 f, t3 = a + 2 b, t4 = a - 2 b, t5 = 4 (d1 - d3) + (d5 - d3)
 * (every product is by a power of two, hence exact: fused or not, the bits are the same), then the same
 * formulas on each row i of t (d_j = t[i][j]) give V[6 i + j] = t_j, stored to v[xi * position_stride + t]
 * for lane t; lanes count <= t < nr get zeros. v and position_stride are multiples of 8 floats (32-byte
 * aligned). A kernel may read up to AN_WINO_PLANE_SLACK floats past a patch row's end (the driver's planes
 * have that slack after their last row). */
typedef struct an_wino_block_input_args {
    const float *plane;
    size_t row_floats, count, nr, runs;
    const size_t *run_lane, *run_count, *run_offset;
    float *v;
    size_t position_stride;
} an_wino_block_input_args;
typedef void (*an_wino_block_input_fn)(const an_wino_block_input_args *args);

/* Output, one output channel of a block of `count` tiles (the input's runs): tile t's m_xi is
 * m[xi * position_stride + t]; A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 1] is applied first for each column j on
 * m0 .. m5 = m[6 i + j], i = 0 .. 5:
 *   s0 = ((m1 + m2) + (m3 + m4)) + m0,  s1 = ((m1 - m2) + 2 (m3 - m4)) + m5,
 * then the same on each row r of s (m_j = s[r][j]), plus the bias (last), ReLU if asked (max(0, y), NaN and
 * -0 kept as `y < 0 ? 0 : y` keeps them). Run k (tiles run_lane[k] .. + run_count[k] - 1, consecutive in one
 * tile row) stores its tiles' outputs to out + run_offset[k]: tile u of the run at [r * out_stride + 2 u + c],
 * only where r < run_rows[k] (1 or 2) and 2 u + c < run_width[k] (<= 2 run_count[k]). m is readable for
 * the `nr` lanes of every position (nr >= count). */
typedef struct an_wino_block_output_args {
    const float *m;
    size_t position_stride, count, nr;
    float bias;
    int relu;
    float *out;
    size_t out_stride, runs;
    const size_t *run_lane, *run_count, *run_offset, *run_rows, *run_width;
} an_wino_block_output_args;
typedef void (*an_wino_block_output_fn)(const an_wino_block_output_args *args);

/* Winograd F(2x2, 3x3) on one block of at most NR tiles, with F(2x2, 5x5)'s arguments and block layout
 * (above: runs, lanes, position_stride, zeroed lanes count .. nr - 1, plane slack), so that 3x3 layers run
 * the same cache-resident block scheme (cpu_winograd.c). The arithmetic is wino_input's and wino_output's
 * (4x4 patches, 16 positions xi = 4 i + j, the same formulas in the same order), so each tile's bits are
 * those of the three-pass path. Optional: NULL in a table (both or neither) keeps 3x3 layers on the
 * three-pass path with wino_input and wino_output. The entries take an_wino_block_input_fn and
 * an_wino_block_output_fn, as wino5_input and wino5_output do. */

/* out[i][o] = relu?(bias[o] + sum_k weight[o][k] * in[i][k]) for o in [row_begin, row_end), i < batch.
 * weight is the model's row-major [out_features][in_features] array. The sum for one (i, o) must not depend
 * on row_begin/row_end or on the batch, so that every split gives the same bits. */
typedef void (*an_fc_fn)(const an_fc_desc *desc, const float *in, const float *weight, const float *bias,
                         float *out, size_t row_begin, size_t row_end);

/* fc's result, bit for bit, for rows [row_begin, row_end) (at most AN_FC_BLOCK_ROWS) of a batch > 1, with
 * `part` (64-byte aligned, an_fc_part_floats(rows, batch) floats) for whatever the kernel carries between
 * its passes over K. Optional: NULL in a table means the driver calls fc. */
#define AN_FC_BLOCK_ROWS 64
typedef void (*an_fc_blocked_fn)(const an_fc_desc *desc, const float *in, const float *weight, const float *bias,
                                 float *out, size_t row_begin, size_t row_end, float *part);
/* Scratch floats of one fc_blocked call: per 8-row tile and image triple, 8 x 3 x 16 lanes. */
static inline size_t an_fc_part_floats(size_t rows, size_t batch)
{
    return (rows + 7) / 8 * ((batch + 2) / 3) * (8 * 3 * 16);
}

/* Max pooling (any kernel and stride, no padding) of planes [plane_begin, plane_end) of the
 * batch x channels planes; NaN propagates as in PyTorch. */
typedef void (*an_max_pool_fn)(const an_pool_desc *desc, const float *in, float *out, size_t plane_begin,
                               size_t plane_end);

/* LRN of channels [channel_begin, channel_end) of image `image`:
 * out = in / (k + alpha * sum of squares over the clipped window)^beta. */
typedef void (*an_lrn_fn)(const an_lrn_desc *desc, const float *in, float *out, size_t image, size_t channel_begin,
                          size_t channel_end);

/* One row: out = exp(in - max) / sum. */
typedef void (*an_softmax_fn)(const float *in, float *out, size_t classes);

typedef void (*an_relu_fn)(const float *in, float *out, size_t count);

/* A tile of a conv weight gradient (cpu_train.c) as dot products along contiguous rows: for r < m <= 4,
 * j < n <= 4,
 *   acc = sum over s < segments, l < length of a[r][s * a_step + l] * b[j][s * b_step + l]
 *   C[r][j] (row stride ldc) = acc, or C[r][j] + acc when accumulate,
 * length a multiple of AN_DOT_LENGTH_MULTIPLE. Rows a[r >= m] and b[j >= n] must be readable (the driver
 * repeats row 0) and are never stored. The order of the sum is the kernel's own (for the SIMD sets: lane
 * partial sums, then a fixed reduction of the lanes) and the same on every call, so a C element's bits do
 * not depend on the tile or the thread that computes it. */
#define AN_DOT_ROWS 4
#define AN_DOT_LENGTH_MULTIPLE 16
typedef struct an_dot_tile_args {
    const float *a[AN_DOT_ROWS], *b[AN_DOT_ROWS];
    size_t m, n, segments, length, a_step, b_step;
    float *c;
    size_t ldc;
    int accumulate;
} an_dot_tile_args;
typedef void (*an_dot_tile_fn)(const an_dot_tile_args *args);

/* Max pooling backward's winner search for stride-2 windows (any kernel size, no padding): for output rows
 * oy0 .. oy0 + rows - 1 of one plane, at[(oy - oy0) * out_width + ox] = the plane offset of the input the
 * window's maximum came from, found by the reference's scan: taps in (ky, kx) order, strictly greater
 * replaces (the first of equal maxima wins), a NaN always replaces. Optional: NULL in a table means the
 * driver's portable scan (cpu_train.c). */
typedef void (*an_max_pool_argmax_fn)(const an_pool_desc *desc, const float *plane, size_t oy0, size_t rows,
                                      uint32_t *at);

typedef struct an_cpu_kernels {
    an_cpu_isa isa;
    const char *description; /* e.g. "AVX2+FMA kernels (6x16 GEMM)" */
    uint32_t gemm_mr, gemm_nr;
    /* K block: the B micro-panel (kc x NR floats) stays in L1 while the A block streams from L2. */
    uint32_t gemm_kc;
    an_gemm_ukernel_fn gemm;
    an_gemm_indirect_fn gemm_indirect;
    an_im2col_fn im2col;
    an_wino_input_fn wino_input;
    an_wino_output_fn wino_output;
    an_fc_fn fc;
    an_max_pool_fn max_pool;
    an_lrn_fn lrn;
    an_softmax_fn softmax;
    an_relu_fn relu;
    an_dot_tile_fn dot_tile;
    an_max_pool_argmax_fn max_pool_argmax_s2; /* may be NULL */
    an_gemm_indirect_split_fn gemm_indirect_split; /* may be NULL */
    an_fc_blocked_fn fc_blocked;                   /* may be NULL */
    an_wino_block_input_fn wino5_input;   /* may be NULL (with wino5_output) */
    an_wino_block_output_fn wino5_output; /* may be NULL (with wino5_input) */
    an_wino_block_input_fn wino_block_input;   /* may be NULL (with wino_block_output) */
    an_wino_block_output_fn wino_block_output; /* may be NULL (with wino_block_input) */
} an_cpu_kernels;

/* Each is defined only where the build compiled the set (AN_HAVE_*_KERNELS = 1); the scalar set always is.
 * Only an_cpu_kernels_for() (which checks those macros) refers to them outside their own files. */
extern const an_cpu_kernels an_cpu_kernels_scalar;
extern const an_cpu_kernels an_cpu_kernels_avx2;
extern const an_cpu_kernels an_cpu_kernels_avx512;
extern const an_cpu_kernels an_cpu_kernels_neon;

/* The table for `isa`, or NULL when this build has no kernels for it. */
const an_cpu_kernels *an_cpu_kernels_for(an_cpu_isa isa);

#endif
