/* The SIMD CPU backend ("cpu-simd"), internal interface between its files:
 *   cpu_backend.c  the an_backend table: contexts, buffers, weights, prepare(), op dispatch;
 *   cpu_conv.c     convolution: weight packing, im2col packing, cache blocking and the thread split;
 *   cpu_winograd.c 3x3 stride-1 convolutions by Winograd F(2x2, 3x3) over the same GEMM microkernel;
 *   cpu_ops.c      fully connected, pooling, LRN, softmax, ReLU and dropout drivers;
 *   cpu_train.c    the training ops: a packed GEMM driver for the conv / FC gradients, the other backward
 *                  ops and the SGD update.
 * The ISA-specific work is all in the kernel table (cpu/kernels/kernels.h) these drivers call. */
#ifndef AN_CPU_CPU_BACKEND_H
#define AN_CPU_CPU_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "backend/backend.h"
#include "cpu/kernels/kernels.h"
#include "cpu/threadpool.h"

/* Size arithmetic of the blocking schemes (cpu_conv.c, cpu_winograd.c, cpu_train.c). */
static inline size_t an_div_up(size_t a, size_t b) { return (a + b - 1) / b; }
static inline size_t an_min(size_t a, size_t b) { return a < b ? a : b; }
static inline size_t an_round_up(size_t a, size_t b) { return an_div_up(a, b) * b; }

/* Copy / zero one short row of a feature map (13, 6, 2 floats on Fashion-MNIST's maps). A memcpy or memset
 * of a run-time length is a library call whose fixed cost dwarfs a few dozen bytes: the bordering and
 * widening of such rows spent 4-7% of a training step in them. Up to 64 floats these are fixed-size moves
 * the compiler inlines, the last one overlapping the one before (the same values written twice). dst and
 * src must not overlap. */
static inline void an_copy_row(float *dst, const float *src, size_t n)
{
    if (n > 64) {
        memcpy(dst, src, n * sizeof *dst);
    } else if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8)
            memcpy(dst + i, src + i, 8 * sizeof *dst);
        memcpy(dst + n - 8, src + n - 8, 8 * sizeof *dst);
    } else if (n >= 4) {
        memcpy(dst, src, 4 * sizeof *dst);
        memcpy(dst + n - 4, src + n - 4, 4 * sizeof *dst);
    } else if (n > 0) {
        dst[0] = src[0];
        dst[n / 2] = src[n / 2];
        dst[n - 1] = src[n - 1];
    }
}

static inline void an_zero_row(float *dst, size_t n)
{
    if (n > 64) {
        memset(dst, 0, n * sizeof *dst);
    } else if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8)
            memset(dst + i, 0, 8 * sizeof *dst);
        memset(dst + n - 8, 0, 8 * sizeof *dst);
    } else if (n >= 4) {
        memset(dst, 0, 4 * sizeof *dst);
        memset(dst + n - 4, 0, 4 * sizeof *dst);
    } else if (n > 0) {
        dst[0] = dst[n / 2] = dst[n - 1] = 0.0f;
    }
}

struct an_buffer {
    float *data;
    size_t bytes;      /* of data; what was allocated when owned */
    int owned;         /* 0 when aliasing the model's FC weights */
    const float *bias; /* FC weights: the model's bias (aliased) */
    an_op_kind kind;   /* weights: which op they belong to */
    an_conv_desc conv; /* conv weights: the shape they were packed for */
};

struct an_backend_context {
    alexnet_allocator allocator;
    const an_cpu_kernels *kernels;
    an_threadpool *pool;
    /* Concurrency of the pool: how many tasks may run at once, so how many scratch slots a run that gives
     * each task its own slot needs. */
    size_t slot_count;
    /* Scratch, sized by prepare() and only ever grown: prepared_slots slots of slot_floats floats each
     * (a conv that gives each task its own slot needs slot_count of them; one on a single image needs 1). */
    float *scratch;
    size_t prepared_slots;
    size_t scratch_floats; /* allocated */
    size_t slot_floats;    /* per slot, a multiple of 16 so every slot stays 64-byte aligned */
    /* The training ops use the same block (they never run during a forward op): a col buffer of
     * train_col_floats (the largest prepared conv's chunk of images: its dCol or weight-gradient operands,
     * at most 4 MiB unless one image alone needs more), then train_gemm_floats of GEMM packing slots, one
     * per thread. Both multiples of 16. */
    size_t train_col_floats, train_gemm_floats;
};

/* ---- convolution (cpu_conv.c) ---- */

/* A convolution as grouped GEMMs, per image and group: C[M][N] = A[M][K] B[K][N] + bias, with
 * M = output channels per group, K = input channels per group x k x k, N = output pixels. */
typedef struct an_conv_geometry {
    size_t groups, m, k, n;
    size_t mr, nr;          /* the kernel table's tile */
    size_t kc;              /* K block actually used: K split into equal blocks of at most gemm_kc */
    size_t m_panels, n_panels;
    size_t a_panel_floats;  /* one packed weight panel: mr biases + k x mr weights */
    size_t b_panel_floats;  /* one packed im2col panel: k x nr */
    size_t padded_height, padded_width;
    /* Strided convolutions keep the bordered image phase-split (kernels.h): each bordered row is stride
     * phase rows of phase_floats floats (0 at stride 1: plain rows). row_floats is a stored row's length. */
    size_t phase_floats, row_floats;
    /* Phase-split panels crossing from output row oy into oy + 1 are read in place when the table has
     * gemm_indirect_split: lane j of the second part reads split_offset floats past the first's address. */
    int crossing_panels;
    ptrdiff_t split_offset;
    /* Stride-1 convolutions keep kernel_size shifted copies instead (kx_shifted): copy kx holds rows of
     * out_width floats, row (c, y) = bordered row (c, y) from column kx on, so every tap's pixels are
     * consecutive floats across output rows and no panel is packed (row_floats = out_width). */
    int kx_shifted;
    size_t layout_rows;     /* stored rows of row_floats: channels x padded_height (x kernel_size if shifted) */
    size_t padded_floats;   /* the image with its zero border, all channels */
    size_t chunk_panels;    /* im2col is packed this many N panels at a time (bounds the scratch) */
    size_t slot_floats;     /* scratch one image needs: padded image + one chunk of packed im2col */
} an_conv_geometry;

void an_conv_geometry_init(an_conv_geometry *g, const an_conv_desc *desc, const an_cpu_kernels *kernels);
/* Floats of the packed weights (all groups). */
size_t an_conv_packed_floats(const an_conv_geometry *g);
/* PyTorch's [out][in/groups][k][k] weights and the bias into the kernels' panel layout. */
void an_conv_pack_weights(const an_conv_geometry *g, const float *weight, const float *bias, float *packed);
alexnet_status an_cpu_conv2d(an_backend_context *context, const an_conv_desc *desc, const float *in,
                             const float *packed, float *out);

/* ---- Winograd F(2x2, 3x3) and F(2x2, 5x5) (cpu_winograd.c) ---- */

typedef struct an_wino_geometry {
    size_t alpha;             /* transform size: 4 for 3x3 filters, 6 for 5x5 ones */
    size_t positions;         /* alpha x alpha GEMMs */
    size_t groups, m, k;      /* per group: output channels, input channels */
    size_t mr, nr, kc;
    size_t m_panels, a_panel_floats;
    size_t tiles_h, tiles_w, tiles; /* 2x2 output tiles per image */
    size_t bordered_height, bordered_width, bordered_floats;
    size_t group_images;      /* images per group (cpu_winograd.c: AN_WINO_IMAGES, more on small maps) */
    size_t slot_floats;       /* scratch for a group of group_images images */
    /* The block scheme (F(2x2, 5x5), and F(2x2, 3x3) where the table has wino_block_input/output):
     * tasks (the pool's concurrency), each with task_floats of scratch (its V block of `positions`
     * positions of v_position_floats, then its M block) */
    int blocked;
    size_t threads, task_floats, v_position_floats;
} an_wino_geometry;

/* Whether a convolution runs by Winograd: 3x3 stride 1 always, 5x5 stride 1 where the kernel table has the
 * F(2x2, 5x5) transforms. Decided by the shape and the table alone, for every batch: weights packing,
 * prepare and dispatch all ask it with the context's table. */
int an_conv_uses_winograd(const an_conv_desc *desc, const an_cpu_kernels *kernels);
/* threads: the pool's concurrency (the F(2x2, 5x5) scratch holds one block per task) */
void an_wino_geometry_init(an_wino_geometry *w, const an_conv_desc *desc, const an_cpu_kernels *kernels,
                           size_t threads);
/* Floats of the transformed, packed weights (16 / 9 or 36 / 25 of the filters, padded to panels) plus the
 * biases. */
size_t an_wino_packed_floats(const an_wino_geometry *w);
void an_wino_pack_weights(const an_wino_geometry *w, const float *weight, const float *bias, float *packed);
alexnet_status an_cpu_conv2d_winograd(an_backend_context *context, const an_conv_desc *desc, const float *in,
                                      const float *packed, float *out);

/* ---- other ops (cpu_ops.c) ---- */
/* Scratch floats the fully connected op would use for desc (0: none; without it, it still runs). */
size_t an_cpu_fc_scratch_floats(const an_backend_context *context, const an_fc_desc *desc);
void an_cpu_fully_connected(an_backend_context *context, const an_fc_desc *desc, const float *in,
                            const float *weight, const float *bias, float *out);
void an_cpu_max_pool2d(an_backend_context *context, const an_pool_desc *desc, const float *in, float *out);
void an_cpu_adaptive_avg_pool2d(an_backend_context *context, const an_pool_desc *desc, const float *in, float *out);
void an_cpu_lrn(an_backend_context *context, const an_lrn_desc *desc, const float *in, float *out);
void an_cpu_softmax(an_backend_context *context, const an_softmax_desc *desc, const float *in, float *out);
void an_cpu_relu(an_backend_context *context, size_t count, const float *in, float *out);
void an_cpu_dropout(an_backend_context *context, size_t count, float rate, uint64_t seed, const float *in,
                    float *out);

/* ---- training (cpu_train.c) ---- */

/* What the training ops need for the given plan ops: the col buffer (the largest conv's chunk scratch,
 * cpu_train.c's an_conv_col_floats) and the GEMM packing slots (when any conv or FC is among them), in
 * floats. */
void an_cpu_train_scratch_floats(const an_backend_context *context, const an_op_desc *ops, size_t count,
                                 size_t *col_floats, size_t *gemm_floats);
alexnet_status an_cpu_conv2d_backward_data(an_backend_context *context, const an_conv_desc *desc,
                                           const float *grad_out, const float *weight, float *grad_in);
alexnet_status an_cpu_conv2d_backward_weights(an_backend_context *context, const an_conv_desc *desc, const float *in,
                                              const float *grad_out, float *grad_weight, float *grad_bias);
alexnet_status an_cpu_fc_backward_data(an_backend_context *context, const an_fc_desc *desc, const float *grad_out,
                                       const float *weight, float *grad_in);
alexnet_status an_cpu_fc_backward_weights(an_backend_context *context, const an_fc_desc *desc, const float *in,
                                          const float *grad_out, float *grad_weight, float *grad_bias);
void an_cpu_max_pool2d_backward(an_backend_context *context, const an_pool_desc *desc, const float *in,
                                const float *grad_out, float *grad_in);
void an_cpu_adaptive_avg_pool2d_backward(an_backend_context *context, const an_pool_desc *desc,
                                         const float *grad_out, float *grad_in);
void an_cpu_lrn_backward(an_backend_context *context, const an_lrn_desc *desc, const float *in, const float *out,
                         const float *grad_out, float *grad_in);
void an_cpu_relu_backward(an_backend_context *context, size_t count, const float *out, const float *grad_out,
                          float *grad_in);
void an_cpu_dropout_backward(an_backend_context *context, size_t count, float rate, uint64_t seed,
                             const float *grad_out, float *grad_in);
alexnet_status an_cpu_softmax_cross_entropy(an_backend_context *context, const an_softmax_desc *desc,
                                            const float *logits, const float *labels, float *grad_logits,
                                            float *losses);
void an_cpu_sgd_update(an_backend_context *context, const an_sgd_desc *desc, float *param, const float *grad,
                       float *velocity);

/* Split [0, count) into about `target` chunks whose size is a multiple of `align` (except the last).
 * Returns the chunk size (>= align, or count when smaller). */
size_t an_cpu_chunk_size(size_t count, size_t target, size_t align);

#endif
