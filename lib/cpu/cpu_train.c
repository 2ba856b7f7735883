/* Training on the CPU backend: the backward ops and the SGD update of the an_backend table's training
 * section (lib/backend/backend.h defines their semantics), as portable drivers over the per-ISA GEMM
 * microkernel and dot-product tile.
 *
 * The packed GEMM driver (an_train_gemm) computes C = op(A) op(B) (or C += ...) for matrices given by a
 * pointer, a row and a column stride and optionally column blocks (an_matrix: a chunk of images' dY is one
 * matrix whose column (image, pixel) lies in the image's block), so transposes cost nothing but the packing;
 * or for operands already packed whole (an_packed_at):
 *   blocking: for each NC block of C's columns, for each K block (kc, the same partition for every tile,
 *   so that each C element is one fixed chain of microkernel calls), the kc x NC slice of B is packed into
 *   NR-column panels (it stays in L2; one kc x NR micro-panel in L1), then for each MC block of the tile's
 *   rows the MC x kc slice of A is packed into MR-row panels and every (A panel, B panel) pair is one
 *   microkernel call. The first K block starts from a zero bias (or from C when accumulating), later ones
 *   accumulate;
 *   threads: C is cut into tiles of whole panels (several per thread); each task owns one scratch slot for
 *   its packed A and B and claims tiles from a shared counter. A tile runs the whole reduction itself, so
 *   the bits do not depend on the thread count or on which task takes which tile.
 * The convolution's backward ops work on chunks of images (an_conv_chunk: as many as keep the chunk's
 * scratch within AN_TRAIN_COL_FLOATS (4 MiB), at least one; a function of the shape alone), so that a small late
 * layer (6 x 6 maps, N = 36 an image) is one GEMM with N = images x 36 instead of one per image:
 *   backward data, per chunk: dCol[Cin k k][images x N] = W_g^T dY_g per group (one GEMM, dY's columns in
 *     image blocks), then col2im (tasks = image x range of input channels: channel c's rows of dCol scatter
 *     only into channel c, each pixel's taps in (ky, kx) order);
 *   backward weights, stride 1 (an_conv_weight_dot): with pixels indexed over the bordered width, tap
 *     (c, ky, kx) of an image is a contiguous run of the zero-bordered input plane, so
 *     dW[oc][c ky kx] = sum over images and pixels of dY'[oc][q] X_b[c][q + ky bw + kx] is a dot product of
 *     rows read in place, no im2col (dY' is dY widened to the bordered width with zeros). Per chunk: border
 *     the inputs and widen dY (tasks = images), then tasks = (group, 4 output channels) each run every
 *     4 x 4 tile of its row through the ISA's dot_tile, the images in blocks whose 4 dY rows stay in L1
 *     (AN_TRAIN_DOT_A_FLOATS); chunks, blocks and the kernel's lanes add in a fixed order;
 *   backward weights, stride > 1 (an_conv_weight_packed): per chunk, im2col written straight into the
 *     GEMM's NR-column panels (from a bordered stack copy of each plane, a block of pixels at a time) and dY
 *     into MR-row panels, then dW_g[M][K] (+)= dY_g[M][P] col_g^T[P][K] on the packed operands, P = images x
 *     N; the chunks accumulate in order;
 *   bias: 8 lanes over (image, pixel), added pairwise (AN_TRAIN_BIAS_LANES);
 *   FC: dX[B][I] = dY[B][O] W[O][I] and dW[O][I] = dY^T[O][B] X[B][I].
 * The other ops are loops the compiler vectorises (selects, not branches, for ReLU and max-pool backward),
 * split over planes, channels or element ranges. Every split is over independent outputs, never a
 * reduction, so the results are bitwise identical for any thread count. Scratch comes from prepare()
 * (an_cpu_train_scratch_floats); the ops allocate nothing. */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "cpu/cpu_backend.h"
#include "util/error.h"

/* L2 budgets of the GEMM blocking, as the forward convolution's (cpu_conv.c). */
#define AN_TRAIN_A_BLOCK_BYTES ((size_t)128 << 10)
#define AN_TRAIN_B_BLOCK_BYTES ((size_t)192 << 10)
/* Tiles (GEMM) and chunks (the other ops) per thread: enough to balance a thread slowed by other load. */
#define AN_TRAIN_TILES_PER_THREAD 4
#define AN_TRAIN_TASKS_PER_THREAD 8
/* The microkernels' MR never exceeds this (12 for AVX-512): the zero bias of a non-accumulating block. */
#define AN_TRAIN_MAX_MR 64
/* Cap of the conv backward ops' scratch per chunk of images (4 MiB): a chunk whose dCol (or the weight
 * gradient's operands) fits it is one pass (N = images x pixels), so the small late layers (6 x 6 maps) get
 * long rows instead of 36 columns each, and torchvision's layers still need no more than this. */
#define AN_TRAIN_COL_FLOATS ((size_t)1 << 20)
/* The conv bias gradient sums in this many lanes (a power of two). */
#define AN_TRAIN_BIAS_LANES 8
/* The weight gradient's operands are packed this many pixels at a time (see an_prepack_im2col_task). */
#define AN_TRAIN_PACK_PIXELS 128
/* The weight gradient's im2col copies a channel plane with its border to the stack up to this size. */
#define AN_TRAIN_BORDER_FLOATS 4096
/* The dot path's kernel calls cover as many images as keep their 4 dY rows within this many floats (L1). */
#define AN_TRAIN_DOT_A_FLOATS 4096
/* Max pooling backward scans this many outputs of a row at a time, in stack arrays. */
#define AN_TRAIN_POOL_RUN 64
/* LRN backward works on this many pixels at a time, in stack arrays. */
#define AN_TRAIN_LRN_PIXELS 64

static const float an_zero_bias[AN_TRAIN_MAX_MR];

static size_t an_task_target(const an_backend_context *context)
{
    return AN_TRAIN_TASKS_PER_THREAD * context->slot_count;
}

/* ---- the GEMM driver ---- */

/* Element (i, j) is data[i * rs + (j / cb) * cbs + (j % cb) * cs]: the columns come in blocks of cb, cbs
 * floats apart. That is how a chunk of images' output gradients is one matrix: column (image, pixel) of
 * dY[image][channel][pixel] (cb = pixels, cbs = one image's gradient). A plain matrix has cb = SIZE_MAX. */
typedef struct an_matrix {
    const float *data;
    size_t rs, cs, cb, cbs;
    /* Or, when packed: data already holds the whole operand in the driver's panel layout (an_packed_at), so
     * the tiles read it in place instead of packing their slices. */
    int packed;
} an_matrix;

static an_matrix an_plain_matrix(const float *data, size_t rs, size_t cs)
{
    const an_matrix m = {data, rs, cs, SIZE_MAX, 0, 0};
    return m;
}

static an_matrix an_packed_matrix(const float *data)
{
    const an_matrix m = {data, 0, 0, SIZE_MAX, 0, 1};
    return m;
}

/* The K partition of a GEMM: equal blocks of at most kc_max, a function of k alone (so is every C element's
 * chain of microkernel calls). */
static size_t an_gemm_kc(size_t k, size_t kc_max) { return k > 0 ? an_div_up(k, an_div_up(k, kc_max)) : 0; }

/* A whole operand packed ahead: for each K block (kc rows of K, the last one `rows` <= kc), its panels of
 * `width` (MR rows of A, or NR columns of B) one after the other, each rows x width with element (k, r) at
 * k * width + r; `padded` (a multiple of width) is the panelled extent. The float of K index p and row
 * (A) or column (B) t, and in *left how many K indices from p on share its block (consecutive K indices of
 * one block are `width` floats apart). */
static float *an_packed_at(float *base, size_t p, size_t t, size_t k, size_t kc, size_t width, size_t padded,
                           size_t *left)
{
    const size_t block = p / kc, first = block * kc, rows = an_min(kc, k - first);
    *left = rows - (p - first);
    return base + first * padded + t / width * rows * width + (p - first) * width + t % width;
}

static size_t an_column_offset(const an_matrix *m, size_t j)
{
    return m->cb == SIZE_MAX ? j * m->cs : j / m->cb * m->cbs + j % m->cb * m->cs; /* no division when plain */
}

/* The block sizes, from the kernel table alone. */
typedef struct an_gemm_blocking {
    size_t mr, nr, kc_max;
    size_t mc, nc;            /* rows / columns of one cache block (multiples of mr / nr) */
    size_t a_floats, b_floats; /* packed A block, packed B block (multiples of 16: keeps B 64-byte aligned) */
} an_gemm_blocking;

static void an_gemm_blocking_init(an_gemm_blocking *b, const an_cpu_kernels *kernels)
{
    b->mr = kernels->gemm_mr;
    b->nr = kernels->gemm_nr;
    b->kc_max = kernels->gemm_kc;
    size_t mc = AN_TRAIN_A_BLOCK_BYTES / (b->kc_max * sizeof(float)) / b->mr * b->mr;
    size_t nc = AN_TRAIN_B_BLOCK_BYTES / (b->kc_max * sizeof(float)) / b->nr * b->nr;
    b->mc = mc < b->mr ? b->mr : mc;
    b->nc = nc < b->nr ? b->nr : nc;
    b->a_floats = an_round_up(b->mc * b->kc_max, 16);
    b->b_floats = an_round_up(b->nc * b->kc_max, 16);
}

/* One GEMM, or `count` of the same shape whose operands lie a_step / b_step / c_step floats apart (the
 * groups of a convolution), run as one parallel pass. */
typedef struct an_gemm_job {
    const an_cpu_kernels *kernels;
    an_gemm_blocking blk;
    size_t m, n, k, kc;
    an_matrix a, b;
    float *c;
    size_t ldc;
    size_t count, a_step, b_step, c_step;
    int accumulate;
    size_t tile_m, tile_n, tiles_m, tiles_n; /* tile sizes in elements (whole panels) and counts */
    float *scratch;                          /* slot s at scratch + s * slot_floats */
    size_t slot_floats;
    _Atomic size_t next_tile;
} an_gemm_job;

/* One piece of a panel row. The usual lengths (a whole NR or MR row) are fixed-size copies the compiler
 * inlines: a library call per row of 12-32 floats cost a tenth of a Fashion-MNIST training step. */
static inline void an_copy_floats(float *dst, const float *src, size_t n)
{
    switch (n) {
    case 32: memcpy(dst, src, 32 * sizeof *dst); break;
    case 16: memcpy(dst, src, 16 * sizeof *dst); break;
    case 12: memcpy(dst, src, 12 * sizeof *dst); break;
    case 8: memcpy(dst, src, 8 * sizeof *dst); break;
    case 6: memcpy(dst, src, 6 * sizeof *dst); break;
    case 4: memcpy(dst, src, 4 * sizeof *dst); break;
    default: an_copy_row(dst, src, n); break;
    }
}

/* rows [i0, i0 + rows) x columns [p0, p0 + kc) of A into ceil(rows / mr) panels a[k * mr + r] */
static void an_pack_a(const an_matrix *a, size_t i0, size_t rows, size_t p0, size_t kc, size_t mr, float *dst)
{
    for (size_t ip = 0; ip < rows; ip += mr, dst += kc * mr) {
        const size_t m = an_min(mr, rows - ip);
        const float *src = a->data + (i0 + ip) * a->rs;
        if (a->cs == 1) { /* rows contiguous within a column block: read along each row, a run at a time */
            for (size_t k = 0; k < kc;) {
                const size_t column = p0 + k, run = an_min(kc - k, a->cb - column % a->cb);
                const float *at = src + an_column_offset(a, column);
                for (size_t r = 0; r < m; r++)
                    for (size_t t = 0; t < run; t++)
                        dst[(k + t) * mr + r] = at[r * a->rs + t];
                k += run;
            }
        } else {
            for (size_t k = 0; k < kc; k++) {
                const float *at = src + an_column_offset(a, p0 + k);
                if (a->rs == 1) /* columns contiguous: a copy per k */
                    an_copy_floats(dst + k * mr, at, m);
                else
                    for (size_t r = 0; r < m; r++)
                        dst[k * mr + r] = at[r * a->rs];
            }
        }
        for (size_t k = 0; k < kc && m < mr; k++)
            for (size_t r = m; r < mr; r++)
                dst[k * mr + r] = 0.0f;
    }
}

/* rows [p0, p0 + kc) x columns [j0, j0 + cols) of B into ceil(cols / nr) panels b[k * nr + j] */
static void an_pack_b(const an_matrix *b, size_t p0, size_t kc, size_t j0, size_t cols, size_t nr, float *dst)
{
    const float *src = b->data + p0 * b->rs;
    for (size_t jp = 0; jp < cols; jp += nr, dst += kc * nr) {
        const size_t n = an_min(nr, cols - jp);
        if (b->cs == 1) { /* rows contiguous within a column block: copy row pieces, a run at a time */
            for (size_t j = 0; j < n;) {
                const size_t column = j0 + jp + j, run = an_min(n - j, b->cb - column % b->cb);
                const float *at = src + an_column_offset(b, column);
                for (size_t k = 0; k < kc; k++)
                    an_copy_floats(dst + k * nr + j, at + k * b->rs, run);
                j += run;
            }
        } else {
            for (size_t j = 0; j < n; j++) {
                const float *at = src + an_column_offset(b, j0 + jp + j);
                for (size_t k = 0; k < kc; k++)
                    dst[k * nr + j] = at[k * b->rs];
            }
        }
        for (size_t k = 0; k < kc && n < nr; k++)
            for (size_t j = n; j < nr; j++)
                dst[k * nr + j] = 0.0f;
    }
}

/* C rows [i0, i1) x columns [j0, j1) of problem `problem`, with the packing buffers of `slot`. */
static void an_gemm_tile(const an_gemm_job *job, float *slot, size_t problem, size_t i0, size_t i1, size_t j0,
                         size_t j1)
{
    const an_gemm_blocking *blk = &job->blk;
    an_matrix a = job->a, b = job->b;
    a.data += problem * job->a_step;
    b.data += problem * job->b_step;
    float *c = job->c + problem * job->c_step;
    float *a_pack = slot, *b_pack = slot + blk->a_floats;
    if (job->k == 0) { /* an empty sum: zero, or C unchanged */
        for (size_t i = i0; i < i1 && !job->accumulate; i++)
            memset(c + i * job->ldc + j0, 0, (j1 - j0) * sizeof *c);
        return;
    }
    for (size_t jc = j0; jc < j1; jc += blk->nc) {
        const size_t nc = an_min(blk->nc, j1 - jc);
        for (size_t pc = 0; pc < job->k; pc += job->kc) {
            const size_t kc = an_min(job->kc, job->k - pc);
            const uint32_t flags = pc > 0 || job->accumulate ? AN_GEMM_ACCUMULATE : 0u;
            /* tiles start on panel boundaries, and the cache blocks are whole panels */
            const float *b_panels = b.packed ? b.data + pc * an_round_up(job->n, blk->nr) + jc / blk->nr * kc * blk->nr
                                             : b_pack;
            if (!b.packed)
                an_pack_b(&b, pc, kc, jc, nc, blk->nr, b_pack);
            for (size_t ic = i0; ic < i1; ic += blk->mc) {
                const size_t mc = an_min(blk->mc, i1 - ic);
                const float *a_panels =
                    a.packed ? a.data + pc * an_round_up(job->m, blk->mr) + ic / blk->mr * kc * blk->mr : a_pack;
                if (!a.packed)
                    an_pack_a(&a, ic, mc, pc, kc, blk->mr, a_pack);
                for (size_t jp = 0; jp < nc; jp += blk->nr) {
                    const float *bp = b_panels + jp / blk->nr * kc * blk->nr;
                    const size_t n = an_min(blk->nr, nc - jp);
                    for (size_t ip = 0; ip < mc; ip += blk->mr) {
                        job->kernels->gemm(kc, a_panels + ip / blk->mr * kc * blk->mr, bp, an_zero_bias,
                                           c + (ic + ip) * job->ldc + jc + jp, job->ldc, an_min(blk->mr, mc - ip),
                                           n, flags);
                    }
                }
            }
        }
    }
}

static void an_gemm_task(void *context, size_t slot_index)
{
    an_gemm_job *job = context;
    float *slot = job->scratch + slot_index * job->slot_floats;
    const size_t per_problem = job->tiles_m * job->tiles_n, total = job->count * per_problem;
    for (;;) {
        size_t tile = atomic_fetch_add_explicit(&job->next_tile, 1, memory_order_relaxed);
        if (tile >= total)
            break;
        const size_t problem = tile / per_problem, tm = tile % per_problem / job->tiles_n,
                     tn = tile % job->tiles_n;
        const size_t i0 = tm * job->tile_m, j0 = tn * job->tile_n;
        an_gemm_tile(job, slot, problem, i0, an_min(i0 + job->tile_m, job->m), j0, an_min(j0 + job->tile_n, job->n));
    }
}

/* C (m x n, row stride ldc) = A (m x k) B (k x n), or += when accumulate; `count` problems as described at
 * an_gemm_job. The scratch slots (one per thread) start at `slots`. */
static void an_train_gemm(an_backend_context *context, float *slots, size_t m, size_t n, size_t k, an_matrix a,
                          an_matrix b, float *c, size_t ldc, int accumulate, size_t count, size_t a_step,
                          size_t b_step, size_t c_step)
{
    if (m == 0 || n == 0 || count == 0)
        return;
    an_gemm_job job;
    memset(&job, 0, sizeof job);
    job.kernels = context->kernels;
    an_gemm_blocking_init(&job.blk, context->kernels);
    job.m = m, job.n = n, job.k = k;
    job.kc = an_gemm_kc(k, job.blk.kc_max);
    job.a = a, job.b = b, job.c = c, job.ldc = ldc;
    job.count = count, job.a_step = a_step, job.b_step = b_step, job.c_step = c_step;
    job.accumulate = accumulate;
    job.scratch = slots;
    job.slot_floats = job.blk.a_floats + job.blk.b_floats;
    /* Halve the larger side of the tile (in elements) until there are enough tiles or both are one panel. */
    const size_t threads = context->slot_count;
    const size_t target = threads == 1 ? 1 : AN_TRAIN_TILES_PER_THREAD * threads;
    size_t tm = an_div_up(m, job.blk.mr), tn = an_div_up(n, job.blk.nr); /* in panels */
    const size_t m_panels = tm, n_panels = tn;
    while (count * an_div_up(m_panels, tm) * an_div_up(n_panels, tn) < target && (tm > 1 || tn > 1)) {
        if (tn > 1 && (tn * job.blk.nr >= tm * job.blk.mr || tm == 1))
            tn = an_div_up(tn, 2);
        else
            tm = an_div_up(tm, 2);
    }
    job.tile_m = tm * job.blk.mr;
    job.tile_n = tn * job.blk.nr;
    job.tiles_m = an_div_up(m_panels, tm);
    job.tiles_n = an_div_up(n_panels, tn);
    atomic_init(&job.next_tile, 0);
    const size_t tiles = count * job.tiles_m * job.tiles_n;
    an_threadpool_run(context->pool, an_gemm_task, &job, an_min(threads, tiles));
}

/* ---- scratch ---- */

static size_t an_gemm_slot_floats(const an_cpu_kernels *kernels)
{
    an_gemm_blocking blk;
    an_gemm_blocking_init(&blk, kernels);
    return blk.a_floats + blk.b_floats;
}

/* The conv backward ops work on chunks of images: as many as keep the chunk's scratch within
 * AN_TRAIN_COL_FLOATS, at least one, at most the batch. A function of the shape (and the kernel table's tile)
 * alone, never of the prepared scratch, so the bits are too. */
static size_t an_conv_chunk(const an_conv_desc *d, size_t per_image)
{
    const size_t images = per_image > 0 ? AN_TRAIN_COL_FLOATS / per_image : d->batch;
    return an_min(images < 1 ? 1 : images, d->batch);
}

/* Data gradient: one image's dCol, [in_channels x k x k][out pixels]. */
static size_t an_conv_data_image_floats(const an_conv_desc *d)
{
    return (size_t)d->in_channels * d->kernel_size * d->kernel_size * d->out_height * d->out_width;
}

/* The weight gradient of a stride-1 convolution as dot products (an_conv_weight_dot): pixels are indexed over
 * the bordered width, q = oy * bw + ox with ox < bw (dY is zero at the columns past out_width), so that tap
 * (c, ky, kx) of all of an image's pixels is one contiguous run of the bordered plane from ky * bw + kx, and
 * the reduction over pixels needs no im2col at all: both operands are the bordered input and the widened dY,
 * rows the kernel reads in place. The price is bw / out_width more products (8 / 6 on 6 x 6 maps). */
typedef struct an_dot_geometry {
    size_t bw;       /* bordered width */
    size_t length;   /* one image's run: out_height x bw rounded up to AN_DOT_LENGTH_MULTIPLE */
    size_t plane;    /* floats between bordered planes: the plane, or the last tap's run if it reaches further */
    size_t image_x, image_dy; /* one image's bordered input (in_channels planes) and widened dY */
} an_dot_geometry;

static int an_conv_weight_uses_dot(const an_conv_desc *d) { return d->stride == 1; }

static void an_dot_geometry_init(an_dot_geometry *g, const an_conv_desc *d)
{
    const size_t ks = d->kernel_size, bh = (size_t)d->in_height + 2 * (size_t)d->padding;
    g->bw = (size_t)d->in_width + 2 * (size_t)d->padding;
    g->length = an_round_up((size_t)d->out_height * g->bw, AN_DOT_LENGTH_MULTIPLE);
    const size_t reach = (ks - 1) * g->bw + (ks - 1) + g->length;
    g->plane = an_round_up(reach > bh * g->bw ? reach : bh * g->bw, 16);
    g->image_x = (size_t)d->in_channels * g->plane;
    g->image_dy = (size_t)d->out_channels * g->length;
}

/* Weight gradient: one image's share of the dot path's operands, or (stride > 1) of both packed operands, per
 * group the im2col (B: K taps in panels of NR) and the output gradient (A: M channels in panels of MR), over
 * the image's out pixels. */
static size_t an_conv_weight_image_floats(const an_conv_desc *d, const an_cpu_kernels *kernels)
{
    if (an_conv_weight_uses_dot(d)) {
        an_dot_geometry g;
        an_dot_geometry_init(&g, d);
        return g.image_x + g.image_dy;
    }
    const size_t k = (size_t)(d->in_channels / d->groups) * d->kernel_size * d->kernel_size;
    const size_t m = d->out_channels / d->groups;
    return (size_t)d->groups * (an_round_up(k, kernels->gemm_nr) + an_round_up(m, kernels->gemm_mr)) *
           d->out_height * d->out_width;
}

static size_t an_conv_col_floats(const an_conv_desc *d, const an_cpu_kernels *kernels)
{
    const size_t data = an_conv_data_image_floats(d), weight = an_conv_weight_image_floats(d, kernels);
    const size_t a = an_conv_chunk(d, data) * data, b = an_conv_chunk(d, weight) * weight;
    return an_round_up(a > b ? a : b, 16);
}

void an_cpu_train_scratch_floats(const an_backend_context *context, const an_op_desc *ops, size_t count,
                                 size_t *col_floats, size_t *gemm_floats)
{
    size_t col = 0;
    int gemm = 0;
    for (size_t i = 0; i < count; i++) {
        if (ops[i].kind == AN_OP_CONV2D) {
            size_t floats = an_conv_col_floats(&ops[i].u.conv, context->kernels);
            col = floats > col ? floats : col;
            gemm = 1;
        } else if (ops[i].kind == AN_OP_FULLY_CONNECTED) {
            gemm = 1;
        }
    }
    *col_floats = col;
    *gemm_floats = gemm ? context->slot_count * an_gemm_slot_floats(context->kernels) : 0;
}

/* The training scratch: the col buffer, then the GEMM slots. Errors (never allocates) when prepare() did not
 * size it for this shape. */
static alexnet_status an_train_scratch(an_backend_context *context, size_t col_floats, float **col, float **slots,
                                       const char *op)
{
    const size_t gemm_floats = context->slot_count * an_gemm_slot_floats(context->kernels);
    if (col_floats > context->train_col_floats || gemm_floats > context->train_gemm_floats)
        return an_error(ALEXNET_E_STATE,
                        "cpu-simd: %s: scratch for this shape was not prepared (%zu + %zu floats needed, %zu + %zu "
                        "prepared)",
                        op, col_floats, gemm_floats, context->train_col_floats, context->train_gemm_floats);
    *col = context->scratch;
    *slots = context->scratch + context->train_col_floats;
    return ALEXNET_OK;
}

/* ---- im2col / col2im, split over input channels ---- */

/* The output columns ox whose tap kx lands inside the input row: [*begin, *end). */
static void an_tap_range(size_t out_size, size_t in_size, size_t stride, size_t padding, size_t tap, size_t *begin,
                         size_t *end)
{
    /* ox * stride + tap - padding in [0, in_size) */
    size_t lo = tap >= padding ? 0 : an_div_up(padding - tap, stride);
    size_t hi = in_size + padding > tap ? an_div_up(in_size + padding - tap, stride) : 0;
    hi = an_min(hi, out_size);
    *begin = an_min(lo, hi);
    *end = hi;
}

typedef struct an_col_job {
    const an_conv_desc *desc;
    const float *input; /* im2col: the chunk's first input image; col2im: unused */
    float *grad_input;  /* col2im: the chunk's first input gradient */
    float *col;         /* [in_channels x k x k][images x out pixels] */
    size_t images, channels_per_task, tasks_per_image;
} an_col_job;

/* The weight gradient's operands, packed ahead (an_packed_at) straight from the input and the output gradient:
 * its reduction runs over (image, pixel), the contiguous index of both, so both need transposing, and doing
 * it once into the panel layout costs one pass where packing each tile's slices re-read and re-copied them. */
typedef struct an_prepack_job {
    const an_conv_desc *desc;
    const float *input;    /* B: the chunk's first input image; A: its first output gradient */
    float *packed;         /* group by group, group_floats apart */
    size_t group_floats;
    size_t k, kc;          /* the GEMM's K (images x out pixels) and its K block */
    size_t width, padded;  /* NR and the taps rounded up to it (B), or MR and the channels rounded up (A) */
    size_t channels_per_task, tasks_per_image;
} an_prepack_job;

/* Writes `count` values along row or column t, from K index p on, with *at / *left as an_packed_at left them:
 * src[(i - i0) * step] for i in [i0, i1), zero elsewhere. Runs that stay in one K block (the usual case) are
 * plain strided loops; only a run that crosses a block boundary goes value by value. */
static void an_prepack_run(const an_prepack_job *job, float *base, size_t t, size_t p, const float *src,
                           size_t step, size_t count, size_t i0, size_t i1, float **at, size_t *left)
{
    const size_t width = job->width;
    float *dst = *at;
    if (*left > count) {
        size_t i = 0;
        for (; i < i0; i++)
            dst[i * width] = 0.0f;
        for (; i < i1; i++)
            dst[i * width] = src[(i - i0) * step];
        for (; i < count; i++)
            dst[i * width] = 0.0f;
        *at = dst + count * width;
        *left -= count;
        return;
    }
    for (size_t i = 0; i < count; i++) {
        *dst = i >= i0 && i < i1 ? src[(i - i0) * step] : 0.0f;
        if (--*left == 0)
            dst = an_packed_at(base, p + i + 1, t, job->k, job->kc, job->width, job->padded, left);
        else
            dst += width;
    }
    *at = dst;
}

/* Writes `count` values along row or column t from K index `first` on: src[offset[i]] (or zeros when src is
 * NULL), crossing K blocks where they end. */
static void an_prepack_gather(const an_prepack_job *job, float *base, size_t t, size_t first, const float *src,
                              const uint32_t *offset, size_t count)
{
    const size_t width = job->width;
    size_t left;
    float *at = an_packed_at(base, first, t, job->k, job->kc, width, job->padded, &left);
    for (size_t i = 0; i < count;) {
        const size_t run = an_min(count - i, left);
        if (src != NULL)
            for (size_t j = 0; j < run; j++)
                at[j * width] = src[offset[i + j]];
        else
            for (size_t j = 0; j < run; j++)
                at[j * width] = 0.0f;
        i += run;
        if (i < count)
            at = an_packed_at(base, first + i, t, job->k, job->kc, width, job->padded, &left);
    }
}

/* B, for (image, range of input channels): tap t = (c, ky, kx) of the group's taps is column t. Each channel
 * plane is first copied with its zero border to the stack, so a tap is a gather at fixed offsets from
 * the tap's corner (one loop over the pixels, no bounds tests: most maps here are 6 to 28 pixels wide,
 * where per-row loops cost more than the copies). Pixels go in blocks of AN_TRAIN_PACK_PIXELS, all the
 * channel's taps for each block, so the block's panel rows (NR floats a pixel) stay in L1 from one tap to the
 * next. The task holding a group's last channel zeroes the pad columns. Planes too large for the stack
 * take an_prepack_im2col_rows. */
static void an_prepack_im2col_rows(const an_prepack_job *job, size_t index);

static void an_prepack_im2col_task(void *context, size_t index)
{
    const an_prepack_job *job = context;
    const an_conv_desc *d = job->desc;
    const size_t ks = d->kernel_size, s = d->stride, pad = d->padding, ow = d->out_width;
    const size_t n = (size_t)d->out_height * ow, w = d->in_width, h = d->in_height;
    const size_t bw = w + 2 * pad, bh = h + 2 * pad, per_group = d->in_channels / d->groups;
    if (bh * bw > AN_TRAIN_BORDER_FLOATS) {
        an_prepack_im2col_rows(job, index);
        return;
    }
    const size_t image = index / job->tasks_per_image;
    const size_t c0 = index % job->tasks_per_image * job->channels_per_task;
    const size_t c1 = an_min(c0 + job->channels_per_task, d->in_channels);
    const float *input = job->input + image * d->in_channels * h * w;
    float bordered[AN_TRAIN_BORDER_FLOATS];
    uint32_t offset[AN_TRAIN_PACK_PIXELS];
    memset(bordered, 0, bh * bw * sizeof *bordered);
    for (size_t c = c0; c < c1; c++) {
        for (size_t y = 0; y < h; y++) /* the border stays zero */
            an_copy_row(bordered + (y + pad) * bw + pad, input + (c * h + y) * w, w);
        float *base = job->packed + c / per_group * job->group_floats;
        for (size_t q0 = 0; q0 < n; q0 += AN_TRAIN_PACK_PIXELS) {
            const size_t count = an_min(AN_TRAIN_PACK_PIXELS, n - q0), first = image * n + q0;
            for (size_t i = 0, oy = q0 / ow, ox = q0 % ow; i < count; i++) {
                offset[i] = (uint32_t)(oy * s * bw + ox * s);
                if (++ox == ow)
                    ox = 0, oy++;
            }
            for (size_t ky = 0; ky < ks; ky++)
                for (size_t kx = 0; kx < ks; kx++)
                    an_prepack_gather(job, base, (c % per_group * ks + ky) * ks + kx, first,
                                      bordered + ky * bw + kx, offset, count);
            if (c % per_group == per_group - 1)
                for (size_t t = per_group * ks * ks; t < job->padded; t++)
                    an_prepack_gather(job, base, t, first, NULL, offset, count);
        }
    }
}

/* The same from the input rows, tap by tap (with the bounds worked out per row), for planes the stack
 * cannot hold (AlexNet's 224-pixel input): pixels in blocks of about AN_TRAIN_PACK_PIXELS whole rows. */
static void an_prepack_im2col_rows(const an_prepack_job *job, size_t index)
{
    const an_conv_desc *d = job->desc;
    const size_t ks = d->kernel_size, s = d->stride, pad = d->padding, ow = d->out_width, oh = d->out_height;
    const size_t n = oh * ow, w = d->in_width, h = d->in_height, per_group = d->in_channels / d->groups;
    const size_t image = index / job->tasks_per_image;
    const size_t c0 = index % job->tasks_per_image * job->channels_per_task;
    const size_t c1 = an_min(c0 + job->channels_per_task, d->in_channels);
    const size_t block_rows = ow >= AN_TRAIN_PACK_PIXELS ? 1 : AN_TRAIN_PACK_PIXELS / ow;
    const float *input = job->input + image * d->in_channels * h * w;
    for (size_t y0 = 0; y0 < oh; y0 += block_rows) {
        const size_t y1 = an_min(y0 + block_rows, oh), first = image * n + y0 * ow;
        for (size_t c = c0; c < c1; c++) {
            const float *plane = input + c * h * w;
            float *base = job->packed + c / per_group * job->group_floats;
            for (size_t ky = 0; ky < ks; ky++) {
                for (size_t kx = 0; kx < ks; kx++) {
                    const size_t t = (c % per_group * ks + ky) * ks + kx;
                    size_t x0, x1, left;
                    an_tap_range(ow, w, s, pad, kx, &x0, &x1);
                    float *at = an_packed_at(base, first, t, job->k, job->kc, job->width, job->padded, &left);
                    for (size_t oy = y0; oy < y1; oy++) {
                        const size_t iy = oy * s + ky;
                        const size_t p = image * n + oy * ow;
                        if (iy < pad || iy - pad >= h) {
                            an_prepack_run(job, base, t, p, plane, 0, ow, 0, 0, &at, &left);
                            continue;
                        }
                        /* ox >= x0 keeps ox * s + kx >= pad: the run starts at column x0 */
                        const float *row = plane + (iy - pad) * w + (x0 * s + kx - pad);
                        an_prepack_run(job, base, t, p, row, s, ow, x0, x1, &at, &left);
                    }
                }
            }
            if (c % per_group == per_group - 1)
                for (size_t t = per_group * ks * ks; t < job->padded; t++) {
                    size_t left;
                    float *at = an_packed_at(base, first, t, job->k, job->kc, job->width, job->padded, &left);
                    an_prepack_run(job, base, t, first, plane, 0, (y1 - y0) * ow, 0, 0, &at, &left);
                }
        }
    }
}

/* A, one image per task: row oc of group g is channel g M + oc of the output gradient, the pad rows zero;
 * in blocks of AN_TRAIN_PACK_PIXELS pixels, as B. */
static void an_prepack_grad_task(void *context, size_t image)
{
    const an_prepack_job *job = context;
    const an_conv_desc *d = job->desc;
    const size_t n = (size_t)d->out_height * d->out_width, m = d->out_channels / d->groups;
    for (size_t q0 = 0; q0 < n; q0 += AN_TRAIN_PACK_PIXELS) {
        const size_t count = an_min(AN_TRAIN_PACK_PIXELS, n - q0), first = image * n + q0;
        for (size_t g = 0; g < d->groups; g++) {
            float *base = job->packed + g * job->group_floats;
            for (size_t oc = 0; oc < job->padded; oc++) {
                const float *src = job->input + (image * d->out_channels + g * m + an_min(oc, m - 1)) * n + q0;
                size_t left;
                float *at = an_packed_at(base, first, oc, job->k, job->kc, job->width, job->padded, &left);
                an_prepack_run(job, base, oc, first, src, 1, count, 0, oc < m ? count : 0, &at, &left);
            }
        }
    }
}

/* Each input pixel sums its taps in (ky, kx) order: one fixed order whatever the split.
 *
 * Same-size stride-1 convolutions (3 x 3 pad 1: conv2-5) take one flat loop per tap instead of one per
 * output row: with out_width == in_width, the tap maps dCol element q to input element q + shift of the
 * plane. The columns a tap does not reach (ox outside [x0, x1): one at the left or right edge) would land
 * on a neighbouring row's edge pixel, so those dCol elements are first set to +0 (the col scratch is this
 * task's alone and read once). Adding +0 changes no sum's bits: a sum that starts at +0 is never -0 in
 * round-to-nearest, and x + 0 = x otherwise. So every pixel gets the same adds in the same order, and the
 * 13-, 6- and 2-float row loops (overhead-bound) become runs of a whole plane. */
static void an_col2im_flat(float *plane, float *row, size_t w, size_t h, size_t pad, size_t ky, size_t kx,
                           size_t x0, size_t x1)
{
    /* output rows whose input row oy + ky - pad lies in [0, h) */
    const size_t oy0 = ky >= pad ? 0 : pad - ky, oy1 = an_min(h, h + pad - ky);
    if (oy0 >= oy1 || x0 >= x1)
        return;
    for (size_t oy = oy0; oy < oy1; oy++) {
        for (size_t ox = 0; ox < x0; ox++)
            row[oy * w + ox] = 0.0f;
        for (size_t ox = x1; ox < w; ox++)
            row[oy * w + ox] = 0.0f;
    }
    /* from the first reached element to the last: the destinations stay inside the plane */
    const size_t q0 = oy0 * w + x0, count = (oy1 - 1 - oy0) * w + x1 - x0;
    float *dst = plane + (oy0 + ky - pad) * w + (x0 + kx - pad);
    const float *src = row + q0;
    for (size_t i = 0; i < count; i++)
        dst[i] += src[i];
}

static void an_col2im_task(void *context, size_t index)
{
    const an_col_job *job = context;
    const an_conv_desc *d = job->desc;
    const size_t ks = d->kernel_size, s = d->stride, pad = d->padding, ow = d->out_width, oh = d->out_height;
    const size_t n = oh * ow, w = d->in_width, h = d->in_height, ld = job->images * n;
    const size_t image = index / job->tasks_per_image;
    const size_t c0 = index % job->tasks_per_image * job->channels_per_task;
    const size_t c1 = an_min(c0 + job->channels_per_task, d->in_channels);
    float *grad = job->grad_input + image * d->in_channels * h * w;
    const int flat = s == 1 && ow == w && oh == h;
    for (size_t c = c0; c < c1; c++) {
        float *plane = grad + c * h * w;
        memset(plane, 0, h * w * sizeof *plane);
        for (size_t ky = 0; ky < ks; ky++) {
            for (size_t kx = 0; kx < ks; kx++) {
                float *row = job->col + ((c * ks + ky) * ks + kx) * ld + image * n;
                size_t x0, x1;
                an_tap_range(ow, w, s, pad, kx, &x0, &x1);
                if (flat) {
                    an_col2im_flat(plane, row, w, h, pad, ky, kx, x0, x1);
                    continue;
                }
                for (size_t oy = 0; oy < oh; oy++) {
                    const size_t iy = oy * s + ky;
                    if (iy < pad || iy - pad >= h)
                        continue;
                    float *dst = plane + (iy - pad) * w;
                    const float *src = row + oy * ow;
                    for (size_t ox = x0; ox < x1; ox++)
                        dst[ox * s + kx - pad] += src[ox];
                }
            }
        }
    }
}

/* Tasks are (image of the chunk, range of input channels). */
static void an_run_col(an_backend_context *context, an_col_job *job, alexnet_task_fn task)
{
    const size_t channels = job->desc->in_channels;
    job->channels_per_task = an_cpu_chunk_size(channels, an_task_target(context) / job->images + 1, 1);
    job->tasks_per_image = an_div_up(channels, job->channels_per_task);
    an_threadpool_run(context->pool, task, job, job->images * job->tasks_per_image);
}

/* ---- convolution: a chunk of images at a time (an_conv_chunk) ---- */

alexnet_status an_cpu_conv2d_backward_data(an_backend_context *context, const an_conv_desc *d,
                                           const float *grad_out, const float *weight, float *grad_in)
{
    float *col = NULL, *slots = NULL;
    alexnet_status status = an_train_scratch(context, an_conv_col_floats(d, context->kernels), &col, &slots, "conv2d_backward_data");
    if (status != ALEXNET_OK)
        return status;
    const size_t groups = d->groups, m = d->out_channels / groups;
    const size_t k = (size_t)(d->in_channels / groups) * d->kernel_size * d->kernel_size;
    const size_t n = (size_t)d->out_height * d->out_width, out_image = d->out_channels * n;
    const size_t in_image = (size_t)d->in_channels * d->in_height * d->in_width;
    const size_t chunk = an_conv_chunk(d, an_conv_data_image_floats(d));
    for (size_t first = 0; first < d->batch; first += chunk) {
        const size_t images = an_min(chunk, d->batch - first), ld = images * n;
        /* dCol_g[K][images x N] = W_g^T[K][M] dY_g[M][images x N]: A(kk, oc) = W[oc][kk]; dY's column
         * (image, pixel) lies in image's block */
        const an_matrix a = an_plain_matrix(weight, 1, k);
        const an_matrix b = {grad_out + first * out_image, n, 1, n, out_image, 0};
        an_train_gemm(context, slots, k, ld, m, a, b, col, ld, 0, groups, m * k, m * n, k * ld);
        an_col_job job = {d, NULL, grad_in + first * in_image, col, images, 0, 0};
        an_run_col(context, &job, an_col2im_task);
    }
    return ALEXNET_OK;
}

typedef struct an_bias_job {
    const float *grad_out;
    float *grad_bias;
    size_t batch, channels, plane, per_task;
} an_bias_job;

/* grad_bias[oc]: AN_TRAIN_BIAS_LANES partial sums, lane j taking the pixels p = j (mod lanes) of every image
 * in order, then the lanes added pairwise. A fixed order (so fixed bits) that the compiler vectorises, where
 * one running sum is a chain of dependent adds (conv1: 100,000 per channel at batch 128). */
static void an_conv_bias_task(void *context, size_t index)
{
    const an_bias_job *job = context;
    const size_t c0 = index * job->per_task, c1 = an_min(c0 + job->per_task, job->channels);
    const size_t whole = job->plane / AN_TRAIN_BIAS_LANES * AN_TRAIN_BIAS_LANES;
    for (size_t oc = c0; oc < c1; oc++) {
        float lane[AN_TRAIN_BIAS_LANES] = {0.0f};
        for (size_t image = 0; image < job->batch; image++) {
            const float *plane = job->grad_out + (image * job->channels + oc) * job->plane;
            for (size_t p = 0; p < whole; p += AN_TRAIN_BIAS_LANES)
                for (size_t j = 0; j < AN_TRAIN_BIAS_LANES; j++)
                    lane[j] += plane[p + j];
            for (size_t j = 0; j < job->plane - whole; j++)
                lane[j] += plane[whole + j];
        }
        for (size_t width = AN_TRAIN_BIAS_LANES / 2; width > 0; width /= 2)
            for (size_t j = 0; j < width; j++)
                lane[j] += lane[j + width];
        job->grad_bias[oc] = lane[0];
    }
}

/* ---- the weight gradient of stride-1 convolutions as dot products (an_dot_geometry) ---- */

typedef struct an_dot_job {
    const an_conv_desc *desc;
    an_dot_geometry geo;
    const an_cpu_kernels *kernels;
    const float *input, *grad_out; /* the chunk's first image */
    float *x, *dy;                 /* the chunk's bordered input and widened dY */
    float *grad_weight;
    size_t images, block_images;   /* images in the chunk; per kernel call (its A rows stay in L1) */
    size_t channels_per_task, tasks_per_image, m_tiles;
    int accumulate;                /* a chunk after the first */
} an_dot_job;

/* (image, range of input channels): the bordered planes, zero around the image and up to the next plane. */
static void an_dot_border_task(void *context, size_t index)
{
    const an_dot_job *job = context;
    const an_conv_desc *d = job->desc;
    const size_t w = d->in_width, h = d->in_height, pad = d->padding, bw = job->geo.bw;
    const size_t image = index / job->tasks_per_image;
    const size_t c0 = index % job->tasks_per_image * job->channels_per_task;
    const size_t c1 = an_min(c0 + job->channels_per_task, d->in_channels);
    for (size_t c = c0; c < c1; c++) {
        float *plane = job->x + image * job->geo.image_x + c * job->geo.plane;
        const float *src = job->input + (image * d->in_channels + c) * h * w;
        memset(plane, 0, (pad * bw + pad) * sizeof *plane);
        for (size_t y = 0; y < h; y++) {
            float *row = plane + (y + pad) * bw + pad;
            an_copy_row(row, src + y * w, w);
            an_zero_row(row + w, 2 * pad); /* this row's right border, the next one's left */
        }
        float *tail = plane + (h + pad) * bw + pad;
        memset(tail, 0, (size_t)(plane + job->geo.plane - tail) * sizeof *tail);
    }
}

/* One image's dY widened to rows of bw (zero past out_width), zero past out_height x bw. */
static void an_dot_widen_task(void *context, size_t image)
{
    const an_dot_job *job = context;
    const an_conv_desc *d = job->desc;
    const size_t ow = d->out_width, oh = d->out_height, bw = job->geo.bw, length = job->geo.length;
    for (size_t oc = 0; oc < d->out_channels; oc++) {
        const float *src = job->grad_out + (image * d->out_channels + oc) * oh * ow;
        float *dst = job->dy + image * job->geo.image_dy + oc * length;
        for (size_t oy = 0; oy < oh; oy++) {
            an_copy_row(dst + oy * bw, src + oy * ow, ow);
            an_zero_row(dst + oy * bw + ow, bw - ow);
        }
        memset(dst + oh * bw, 0, (length - oh * bw) * sizeof *dst);
    }
}

/* Both preparations as one pass (one pool run fewer per chunk): the border tasks, then one widen task per
 * image. */
static void an_dot_prepare_task(void *context, size_t index)
{
    const an_dot_job *job = context;
    const size_t border_tasks = job->images * job->tasks_per_image;
    if (index < border_tasks)
        an_dot_border_task(context, index);
    else
        an_dot_widen_task(context, index - border_tasks);
}

/* Task (group, tile of AN_DOT_ROWS output channels): every tap tile of the row for each block of images, so
 * the block's 4 dY rows stay in L1 while the taps stream by. Each C element is the chain over the blocks in
 * order, whichever task runs it. */
static void an_dot_tile_task(void *context, size_t index)
{
    const an_dot_job *job = context;
    const an_conv_desc *d = job->desc;
    const size_t ks = d->kernel_size, taps_per_channel = ks * ks;
    const size_t m = d->out_channels / d->groups, per_group = d->in_channels / d->groups;
    const size_t k = per_group * taps_per_channel;
    const size_t g = index / job->m_tiles, oc0 = index % job->m_tiles * AN_DOT_ROWS;
    an_dot_tile_args args;
    args.m = an_min(AN_DOT_ROWS, m - oc0);
    args.length = job->geo.length;
    args.a_step = job->geo.image_dy;
    args.b_step = job->geo.image_x;
    args.ldc = k;
    for (size_t i0 = 0; i0 < job->images; i0 += job->block_images) {
        args.segments = an_min(job->block_images, job->images - i0);
        args.accumulate = job->accumulate || i0 > 0;
        for (size_t r = 0; r < AN_DOT_ROWS; r++)
            args.a[r] = job->dy + i0 * job->geo.image_dy + (g * m + oc0 + (r < args.m ? r : 0)) * job->geo.length;
        for (size_t t0 = 0; t0 < k; t0 += AN_DOT_ROWS) {
            args.n = an_min(AN_DOT_ROWS, k - t0);
            for (size_t j = 0; j < AN_DOT_ROWS; j++) {
                const size_t t = t0 + (j < args.n ? j : 0), c = t / taps_per_channel, tap = t % taps_per_channel;
                args.b[j] = job->x + i0 * job->geo.image_x + (g * per_group + c) * job->geo.plane +
                            tap / ks * job->geo.bw + tap % ks;
            }
            args.c = job->grad_weight + (g * m + oc0) * k + t0;
            job->kernels->dot_tile(&args);
        }
    }
}

static void an_conv_weight_dot(an_backend_context *context, const an_conv_desc *d, const float *in,
                               const float *grad_out, float *grad_weight, float *scratch)
{
    an_dot_job job;
    memset(&job, 0, sizeof job);
    job.desc = d;
    an_dot_geometry_init(&job.geo, d);
    job.kernels = context->kernels;
    job.grad_weight = grad_weight;
    const size_t chunk = an_conv_chunk(d, job.geo.image_x + job.geo.image_dy);
    const size_t block = AN_TRAIN_DOT_A_FLOATS / (AN_DOT_ROWS * job.geo.length);
    job.block_images = block < 1 ? 1 : block;
    job.m_tiles = an_div_up(d->out_channels / d->groups, AN_DOT_ROWS);
    job.channels_per_task = an_cpu_chunk_size(d->in_channels, an_task_target(context) / chunk + 1, 1);
    job.tasks_per_image = an_div_up(d->in_channels, job.channels_per_task);
    const size_t in_image = (size_t)d->in_channels * d->in_height * d->in_width;
    const size_t out_image = (size_t)d->out_channels * d->out_height * d->out_width;
    for (size_t first = 0; first < d->batch; first += chunk) {
        job.images = an_min(chunk, d->batch - first);
        job.input = in + first * in_image;
        job.grad_out = grad_out + first * out_image;
        job.x = scratch;
        job.dy = scratch + job.images * job.geo.image_x;
        job.accumulate = first > 0;
        an_threadpool_run(context->pool, an_dot_prepare_task, &job, job.images * (job.tasks_per_image + 1));
        an_threadpool_run(context->pool, an_dot_tile_task, &job, d->groups * job.m_tiles);
    }
}

/* Stride > 1: the weight gradient as a GEMM over both operands packed ahead, a chunk of images at a time. */
static void an_conv_weight_packed(an_backend_context *context, const an_conv_desc *d, const float *in,
                                  const float *grad_out, float *grad_weight, float *col, float *slots)
{
    const size_t groups = d->groups, m = d->out_channels / groups;
    const size_t k = (size_t)(d->in_channels / groups) * d->kernel_size * d->kernel_size;
    const size_t n = (size_t)d->out_height * d->out_width, out_image = d->out_channels * n;
    const size_t in_image = (size_t)d->in_channels * d->in_height * d->in_width;
    const size_t chunk = an_conv_chunk(d, an_conv_weight_image_floats(d, context->kernels));
    const size_t nr = context->kernels->gemm_nr, mr = context->kernels->gemm_mr;
    const size_t k_padded = an_round_up(k, nr), m_padded = an_round_up(m, mr);
    for (size_t first = 0; first < d->batch; first += chunk) {
        const size_t images = an_min(chunk, d->batch - first), p = images * n;
        const size_t kc = an_gemm_kc(p, context->kernels->gemm_kc);
        /* B (the im2col, p x K per group), then A (dY, M x p per group), packed ahead */
        float *packed_b = col, *packed_a = col + groups * p * k_padded;
        an_prepack_job pb = {d, in + first * in_image, packed_b, p * k_padded, p, kc, nr, k_padded, 0, 0};
        pb.channels_per_task = an_cpu_chunk_size(d->in_channels, an_task_target(context) / images + 1, 1);
        pb.tasks_per_image = an_div_up(d->in_channels, pb.channels_per_task);
        an_threadpool_run(context->pool, an_prepack_im2col_task, &pb, images * pb.tasks_per_image);
        an_prepack_job pa = {d, grad_out + first * out_image, packed_a, p * m_padded, p, kc, mr, m_padded, 0, 0};
        an_threadpool_run(context->pool, an_prepack_grad_task, &pa, images);
        /* dW_g[M][K] (+)= dY_g[M][images x N] col_g^T[images x N][K]; the chunks accumulate in order */
        an_train_gemm(context, slots, m, k, p, an_packed_matrix(packed_a), an_packed_matrix(packed_b), grad_weight,
                      k, first > 0, groups, p * m_padded, p * k_padded, m * k);
    }
}

alexnet_status an_cpu_conv2d_backward_weights(an_backend_context *context, const an_conv_desc *d, const float *in,
                                              const float *grad_out, float *grad_weight, float *grad_bias)
{
    float *col = NULL, *slots = NULL;
    alexnet_status status =
        an_train_scratch(context, an_conv_col_floats(d, context->kernels), &col, &slots, "conv2d_backward_weights");
    if (status != ALEXNET_OK)
        return status;
    const size_t k = (size_t)(d->in_channels / d->groups) * d->kernel_size * d->kernel_size;
    if (d->batch == 0)
        memset(grad_weight, 0, d->out_channels * k * sizeof *grad_weight);
    else if (an_conv_weight_uses_dot(d))
        an_conv_weight_dot(context, d, in, grad_out, grad_weight, col);
    else
        an_conv_weight_packed(context, d, in, grad_out, grad_weight, col, slots);
    an_bias_job job = {grad_out, grad_bias, d->batch, d->out_channels, (size_t)d->out_height * d->out_width,
                       an_cpu_chunk_size(d->out_channels, an_task_target(context), 1)};
    an_threadpool_run(context->pool, an_conv_bias_task, &job, an_div_up(d->out_channels, job.per_task));
    return ALEXNET_OK;
}

/* ---- fully connected ---- */

alexnet_status an_cpu_fc_backward_data(an_backend_context *context, const an_fc_desc *d, const float *grad_out,
                                       const float *weight, float *grad_in)
{
    float *col = NULL, *slots = NULL;
    alexnet_status status = an_train_scratch(context, 0, &col, &slots, "fully_connected_backward_data");
    if (status != ALEXNET_OK)
        return status;
    /* dX[B][I] = dY[B][O] W[O][I] */
    const an_matrix a = an_plain_matrix(grad_out, d->out_features, 1);
    const an_matrix b = an_plain_matrix(weight, d->in_features, 1);
    an_train_gemm(context, slots, d->batch, d->in_features, d->out_features, a, b, grad_in, d->in_features, 0, 1, 0,
                  0, 0);
    return ALEXNET_OK;
}

/* grad_bias[o] = sum over images in order; vectorised across o */
static void an_fc_bias_task(void *context, size_t index)
{
    const an_bias_job *job = context;
    const size_t o0 = index * job->per_task, o1 = an_min(o0 + job->per_task, job->channels);
    for (size_t o = o0; o < o1; o++)
        job->grad_bias[o] = 0.0f;
    for (size_t image = 0; image < job->batch; image++) {
        const float *row = job->grad_out + image * job->channels;
        for (size_t o = o0; o < o1; o++)
            job->grad_bias[o] += row[o];
    }
}

alexnet_status an_cpu_fc_backward_weights(an_backend_context *context, const an_fc_desc *d, const float *in,
                                          const float *grad_out, float *grad_weight, float *grad_bias)
{
    float *col = NULL, *slots = NULL;
    alexnet_status status = an_train_scratch(context, 0, &col, &slots, "fully_connected_backward_weights");
    if (status != ALEXNET_OK)
        return status;
    /* dW[O][I] = dY^T[O][B] X[B][I]: A(o, b) = dY[b][o] */
    const an_matrix a = an_plain_matrix(grad_out, 1, d->out_features);
    const an_matrix b = an_plain_matrix(in, d->in_features, 1);
    an_train_gemm(context, slots, d->out_features, d->in_features, d->batch, a, b, grad_weight, d->in_features, 0, 1,
                  0, 0, 0);
    an_bias_job job = {grad_out, grad_bias, d->batch, d->out_features, 1,
                       an_cpu_chunk_size(d->out_features, an_task_target(context), 64)};
    an_threadpool_run(context->pool, an_fc_bias_task, &job, an_div_up(d->out_features, job.per_task));
    return ALEXNET_OK;
}

/* ---- pooling: tasks are ranges of planes ---- */

typedef struct an_pool_back_job {
    const an_pool_desc *desc;
    const float *in, *grad_out;
    float *grad_in;
    size_t planes, per_task;
    an_max_pool_argmax_fn argmax_s2; /* the table's winner search for stride 2, or NULL */
} an_pool_back_job;

/* The portable winner search of `count` outputs of a row, the first window's top left at `corner`. */
static void an_max_pool_scan(const float *src, size_t w, size_t s, size_t ks, size_t corner, size_t count,
                             float *best, uint32_t *at)
{
    for (size_t o = 0; o < count; o++) {
        best[o] = -INFINITY;
        at[o] = (uint32_t)(corner + o * s);
    }
    for (size_t ky = 0; ky < ks; ky++) {
        for (size_t kx = 0; kx < ks; kx++) {
            const size_t tap = corner + ky * w + kx;
            const float *v = src + tap;
            for (size_t o = 0; o < count; o++) {
                const float x = v[o * s];
                const int take = (x > best[o]) | (x != x);
                best[o] = take ? x : best[o];
                at[o] = take ? (uint32_t)(tap + o * s) : at[o];
            }
        }
    }
}

/* The forward scan (cpu and reference alike): strictly greater replaces, so the first of equal maxima wins,
 * and a NaN always replaces. Done for AN_TRAIN_POOL_RUN outputs of a row at a time, tap by tap, with selects
 * (a loop over outputs the compiler vectorises, where a branch per tap mispredicts on random data); then the
 * gradients are added at the winners in output order, as the reference does, so the bits are its bits.
 * Stride-2 windows go to the table's vector winner search when it has one (the same scan, 16 outputs at a
 * time: the strided reads here do not vectorise, and this was a tenth of a Fashion-MNIST training step),
 * as many whole rows per call as fill AN_TRAIN_POOL_RUN outputs (the pooled maps are 13, 6 and 2 wide). */
static void an_max_pool_back_task(void *context, size_t index)
{
    const an_pool_back_job *job = context;
    const an_pool_desc *d = job->desc;
    const size_t w = d->in_width, s = d->stride, ks = d->kernel_size;
    const size_t in_plane = (size_t)d->in_height * w, out_plane = (size_t)d->out_height * d->out_width;
    const size_t p0 = index * job->per_task, p1 = an_min(p0 + job->per_task, job->planes);
    float best[AN_TRAIN_POOL_RUN];
    uint32_t at[AN_TRAIN_POOL_RUN];
    for (size_t p = p0; p < p1; p++) {
        const float *src = job->in + p * in_plane, *g = job->grad_out + p * out_plane;
        float *dst = job->grad_in + p * in_plane;
        memset(dst, 0, in_plane * sizeof *dst);
        if (s == 2 && job->argmax_s2 != NULL && d->out_width <= AN_TRAIN_POOL_RUN) {
            const size_t rows_per_call = AN_TRAIN_POOL_RUN / d->out_width;
            for (size_t oy = 0; oy < d->out_height; oy += rows_per_call) {
                const size_t rows = an_min(rows_per_call, d->out_height - oy), count = rows * d->out_width;
                job->argmax_s2(d, src, oy, rows, at);
                const float *grad = g + oy * d->out_width; /* rows are consecutive: output order */
                for (size_t o = 0; o < count; o++)
                    dst[at[o]] += grad[o];
            }
            continue;
        }
        for (size_t oy = 0; oy < d->out_height; oy++) {
            for (size_t ox0 = 0; ox0 < d->out_width; ox0 += AN_TRAIN_POOL_RUN) {
                const size_t count = an_min(AN_TRAIN_POOL_RUN, d->out_width - ox0);
                const size_t corner = oy * s * w + ox0 * s; /* the first window's top left, in the plane */
                an_max_pool_scan(src, w, s, ks, corner, count, best, at);
                const float *grad = g + oy * d->out_width + ox0;
                for (size_t o = 0; o < count; o++)
                    dst[at[o]] += grad[o];
            }
        }
    }
}

static void an_avg_pool_back_task(void *context, size_t index)
{
    const an_pool_back_job *job = context;
    const an_pool_desc *d = job->desc;
    const size_t in_plane = (size_t)d->in_height * d->in_width, out_plane = (size_t)d->out_height * d->out_width;
    const size_t p0 = index * job->per_task, p1 = an_min(p0 + job->per_task, job->planes);
    for (size_t p = p0; p < p1; p++) {
        const float *g = job->grad_out + p * out_plane;
        float *dst = job->grad_in + p * in_plane;
        memset(dst, 0, in_plane * sizeof *dst);
        for (uint32_t oy = 0; oy < d->out_height; oy++) {
            uint32_t y0 = (uint32_t)((uint64_t)oy * d->in_height / d->out_height);
            uint32_t y1 = (uint32_t)(((uint64_t)(oy + 1) * d->in_height + d->out_height - 1) / d->out_height);
            for (uint32_t ox = 0; ox < d->out_width; ox++) {
                uint32_t x0 = (uint32_t)((uint64_t)ox * d->in_width / d->out_width);
                uint32_t x1 = (uint32_t)(((uint64_t)(ox + 1) * d->in_width + d->out_width - 1) / d->out_width);
                /* the forward divides the sum by the count: each input gets the share g / count */
                const float share = g[(size_t)oy * d->out_width + ox] / (float)((y1 - y0) * (x1 - x0));
                for (uint32_t y = y0; y < y1; y++)
                    for (uint32_t x = x0; x < x1; x++)
                        dst[(size_t)y * d->in_width + x] += share;
            }
        }
    }
}

static void an_run_pool_back(an_backend_context *context, an_pool_back_job *job, alexnet_task_fn task)
{
    job->planes = (size_t)job->desc->batch * job->desc->channels;
    job->per_task = an_cpu_chunk_size(job->planes, an_task_target(context), 1);
    if (job->planes > 0)
        an_threadpool_run(context->pool, task, job, an_div_up(job->planes, job->per_task));
}

void an_cpu_max_pool2d_backward(an_backend_context *context, const an_pool_desc *desc, const float *in,
                                const float *grad_out, float *grad_in)
{
    an_pool_back_job job = {desc, in, grad_out, grad_in, 0, 0, context->kernels->max_pool_argmax_s2};
    an_run_pool_back(context, &job, an_max_pool_back_task);
}

void an_cpu_adaptive_avg_pool2d_backward(an_backend_context *context, const an_pool_desc *desc,
                                         const float *grad_out, float *grad_in)
{
    an_pool_back_job job = {desc, NULL, grad_out, grad_in, 0, 0, NULL};
    an_run_pool_back(context, &job, an_avg_pool_back_task);
}

/* ---- LRN: tasks are (image, range of channels); pixels in chunks of AN_TRAIN_LRN_PIXELS ---- */

typedef struct an_lrn_back_job {
    const an_lrn_desc *desc;
    const float *in, *out, *grad_out;
    float *grad_in;
    size_t channels_per_task, tasks_per_image;
} an_lrn_back_job;

/* s_c = k + alpha * (sum of squares over channel c's window) for `count` pixels, summed in the reference's
 * order (so the same bits). */
static void an_lrn_scale(const an_lrn_desc *d, const float *image, size_t plane, size_t p0, size_t count, int64_t c,
                         float *s)
{
    const int64_t before = d->size / 2, after = (d->size - 1) / 2;
    const int64_t j0 = c - before < 0 ? 0 : c - before;
    const int64_t j1 = c + after >= d->channels ? d->channels - 1 : c + after;
    float sum[AN_TRAIN_LRN_PIXELS];
    for (size_t p = 0; p < count; p++)
        sum[p] = 0.0f;
    for (int64_t j = j0; j <= j1; j++) {
        const float *v = image + (size_t)j * plane + p0;
        for (size_t p = 0; p < count; p++)
            sum[p] += v[p] * v[p];
    }
    for (size_t p = 0; p < count; p++)
        s[p] = d->k + d->alpha * sum[p];
}

/* grad a_i = g_i s_i^-beta - 2 alpha beta a_i sum_c g_c b_c / s_c over the channels c whose window holds i
 * (derivation at an_ref_lrn_backward). */
static void an_lrn_back_task(void *context, size_t index)
{
    const an_lrn_back_job *job = context;
    const an_lrn_desc *d = job->desc;
    const size_t image = index / job->tasks_per_image;
    const size_t i0 = index % job->tasks_per_image * job->channels_per_task;
    const size_t i1 = an_min(i0 + job->channels_per_task, d->channels);
    const size_t plane = (size_t)d->height * d->width, base = image * d->channels * plane;
    const float *a = job->in + base, *b = job->out + base, *g = job->grad_out + base;
    float *result = job->grad_in + base;
    const int64_t before = d->size / 2, after = (d->size - 1) / 2;
    for (size_t p0 = 0; p0 < plane; p0 += AN_TRAIN_LRN_PIXELS) {
        const size_t count = an_min(AN_TRAIN_LRN_PIXELS, plane - p0);
        float s[AN_TRAIN_LRN_PIXELS], cross[AN_TRAIN_LRN_PIXELS];
        for (int64_t i = (int64_t)i0; i < (int64_t)i1; i++) {
            const int64_t c0 = i - after < 0 ? 0 : i - after;
            const int64_t c1 = i + before >= d->channels ? d->channels - 1 : i + before;
            for (size_t p = 0; p < count; p++)
                cross[p] = 0.0f;
            for (int64_t c = c0; c <= c1; c++) {
                an_lrn_scale(d, a, plane, p0, count, c, s);
                const size_t at = (size_t)c * plane + p0;
                for (size_t p = 0; p < count; p++)
                    cross[p] += g[at + p] * b[at + p] / s[p];
            }
            an_lrn_scale(d, a, plane, p0, count, i, s);
            const size_t at = (size_t)i * plane + p0;
            for (size_t p = 0; p < count; p++)
                result[at + p] = g[at + p] * powf(s[p], -d->beta) - 2.0f * d->alpha * d->beta * a[at + p] * cross[p];
        }
    }
}

void an_cpu_lrn_backward(an_backend_context *context, const an_lrn_desc *desc, const float *in, const float *out,
                         const float *grad_out, float *grad_in)
{
    if (desc->batch == 0 || desc->channels == 0)
        return;
    const size_t per_image_target = an_task_target(context) / desc->batch + 1;
    an_lrn_back_job job = {desc, in, out, grad_out, grad_in,
                           an_cpu_chunk_size(desc->channels, per_image_target, 1), 0};
    job.tasks_per_image = an_div_up(desc->channels, job.channels_per_task);
    an_threadpool_run(context->pool, an_lrn_back_task, &job, job.tasks_per_image * desc->batch);
}

/* ---- element-wise: tasks are ranges of elements ---- */

typedef struct an_elementwise_back_job {
    size_t count, per_task;
    const float *x, *y;
    float *out, *extra;
    float rate;
    uint64_t seed;
    const an_sgd_desc *sgd;
} an_elementwise_back_job;

static void an_range(const an_elementwise_back_job *job, size_t index, size_t *begin, size_t *end)
{
    *begin = index * job->per_task;
    *end = an_min(*begin + job->per_task, job->count);
}

static void an_run_elementwise(an_backend_context *context, an_elementwise_back_job *job, alexnet_task_fn task)
{
    job->per_task = an_cpu_chunk_size(job->count, an_task_target(context), 1024);
    if (job->count > 0)
        an_threadpool_run(context->pool, task, job, an_div_up(job->count, job->per_task));
}

/* x = the ReLU's output, y = grad_out (may be out: in place) */
static void an_relu_back_task(void *context, size_t index)
{
    const an_elementwise_back_job *job = context;
    size_t begin, end;
    an_range(job, index, &begin, &end);
    /* locals (the job's fields could alias the output) and an unconditional load: a select the compiler
     * vectorises, instead of a branch per element on random signs */
    const float *x = job->x, *y = job->y;
    float *out = job->out;
    for (size_t i = begin; i < end; i++) {
        const float g = y[i];
        out[i] = x[i] > 0.0f ? g : 0.0f;
    }
}

void an_cpu_relu_backward(an_backend_context *context, size_t count, const float *out, const float *grad_out,
                          float *grad_in)
{
    an_elementwise_back_job job = {count, 0, out, grad_out, grad_in, NULL, 0.0f, 0, NULL};
    an_run_elementwise(context, &job, an_relu_back_task);
}

/* The forward's mask (an_dropout_keep: the same on every backend); x = grad_out (may be out: in place). */
static void an_dropout_back_task(void *context, size_t index)
{
    const an_elementwise_back_job *job = context;
    size_t begin, end;
    an_range(job, index, &begin, &end);
    const float scale = 1.0f / (1.0f - job->rate);
    for (size_t i = begin; i < end; i++)
        job->out[i] = an_dropout_keep(job->seed, i, job->rate) ? job->x[i] * scale : 0.0f;
}

void an_cpu_dropout_backward(an_backend_context *context, size_t count, float rate, uint64_t seed,
                             const float *grad_out, float *grad_in)
{
    an_elementwise_back_job job = {count, 0, grad_out, NULL, grad_in, NULL, rate, seed, NULL};
    an_run_elementwise(context, &job, an_dropout_back_task);
}

/* out = param, x = grad, extra = velocity: PyTorch's SGD, in the reference's operation order */
static void an_sgd_task(void *context, size_t index)
{
    const an_elementwise_back_job *job = context;
    size_t begin, end;
    an_range(job, index, &begin, &end);
    const float lr = job->sgd->learning_rate, momentum = job->sgd->momentum, decay = job->sgd->weight_decay;
    float *param = job->out, *velocity = job->extra;
    const float *grad = job->x;
    for (size_t i = begin; i < end; i++) {
        velocity[i] = momentum * velocity[i] + (grad[i] + decay * param[i]);
        param[i] -= lr * velocity[i];
    }
}

void an_cpu_sgd_update(an_backend_context *context, const an_sgd_desc *desc, float *param, const float *grad,
                       float *velocity)
{
    an_elementwise_back_job job = {desc->count, 0, grad, NULL, param, velocity, 0.0f, 0, desc};
    an_run_elementwise(context, &job, an_sgd_task);
}

/* ---- softmax cross-entropy: one task per image ---- */

typedef struct an_loss_job {
    const an_softmax_desc *desc;
    const float *logits, *labels;
    float *grad, *losses;
} an_loss_job;

/* The reference's arithmetic (log-sum-exp in double): the loss drives the reported figures and the
 * non-finite check, and a row is tiny next to the layers. */
static void an_loss_task(void *context, size_t n)
{
    const an_loss_job *job = context;
    const uint32_t classes = job->desc->classes;
    const float *x = job->logits + n * classes;
    float *g = job->grad + n * classes;
    const uint32_t label = (uint32_t)job->labels[n];
    float max = x[0];
    for (uint32_t i = 1; i < classes; i++)
        max = x[i] > max ? x[i] : max;
    double sum = 0.0;
    for (uint32_t i = 0; i < classes; i++)
        sum += exp((double)x[i] - max);
    const double log_sum = (double)max + log(sum);
    job->losses[n] = (float)(log_sum - x[label]);
    for (uint32_t i = 0; i < classes; i++) {
        double p = exp((double)x[i] - log_sum);
        g[i] = (float)((p - (i == label ? 1.0 : 0.0)) / job->desc->batch);
    }
}

alexnet_status an_cpu_softmax_cross_entropy(an_backend_context *context, const an_softmax_desc *desc,
                                            const float *logits, const float *labels, float *grad_logits,
                                            float *losses)
{
    for (uint32_t n = 0; n < desc->batch; n++) {
        const float label = labels[n];
        if (!(label >= 0.0f && label < (float)desc->classes) || label != floorf(label))
            return an_error(ALEXNET_E_INVALID_ARGUMENT, "cpu-simd: a label is not a class index in [0, %u)",
                            desc->classes);
    }
    if (desc->classes == 0)
        return ALEXNET_OK;
    an_loss_job job = {desc, logits, labels, grad_logits, losses};
    an_threadpool_run(context->pool, an_loss_task, &job, desc->batch);
    return ALEXNET_OK;
}
