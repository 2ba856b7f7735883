/* Stride-1 convolutions by Winograd's minimal filtering: 3x3 ones (conv3..conv5 of every AlexNet) by
 * F(2x2, 3x3), 5x5 ones (conv2) by F(2x2, 5x5) where the kernel table has its transforms (below).
 *
 * Each 2x2 block of outputs ("tile") comes from a 4x4 input patch d: with the filter g transformed once
 * into U = G g G^T (4x4), the tile is A^T [U (.) (B^T d B)] A, where (.) is the elementwise product. Summed
 * over input channels, the 16 elementwise products become 16 independent GEMMs, one per position xi of the
 * 4x4 transform domain:  M_xi[oc][tile] = sum_ic U_xi[oc][ic] V_xi[ic][tile],  V = B^T d B.
 * That is 16 multiply-adds per tile and channel pair instead of 36 for the direct 2x2 outputs: 2.25x fewer
 * (1.94x on 13x13 maps, whose 7x7 tiles overhang by a row and a column). The transforms use only additions
 * (and halvings, in the weights), so the result stays within a few ulps of the direct sum.
 *
 * The 16 GEMMs use the ISA's convolution microkernel unchanged: U_xi is packed at weights_create in the same
 * MR-row panels (with zero biases; the bias is added after the output transform), V_xi is written by the
 * input transform straight into NR-column panels. Where the kernel table has wino_block_input /
 * wino_block_output and the call has at least a block of NR tiles per thread, 3x3 layers run F(2x2, 5x5)'s
 * block scheme (below): V and M of the three passes go through L3 (0.6-1.2 MB of V and 0.8-1.2 MB of M an
 * image on AlexNet's 13x13 layers), which put the transforms at about 60% of the GEMMs' time; blocks made
 * conv3-5 about 1.4x faster at batch 64, 3-10% at batch 1 (docs/PERFORMANCE.md). The three passes stay for
 * tables without those entries (NEON) and for fewer blocks than threads (one 13x13 image is 2 blocks of 32
 * tiles), where their 16 positions x M blocks of GEMM tasks keep every thread busy; both give the same bits
 * (the same per-tile formulas, K blocking and bias last). The three passes: per call, images go in groups
 * of AN_WINO_IMAGES (more on small maps, up to AN_WINO_TILES tiles) so that one GEMM's N (tiles of the
 * group) fills the panels; for each group three parallel passes run: input transform (tasks = input
 * channels, every image of the group in each), the GEMMs (tasks = group x xi x block of M panels), output
 * transform with bias and ReLU (tasks = image x output channel chunk). The transforms are the ISA's
 * wino_input / wino_output kernels. Each output element is computed by the same sequence whatever the task
 * split or scheme, so results do not depend on the thread count or the batch.
 *
 * Scratch (one slot): the group's bordered images, V (16 x K x N), and M (16 x M x N); for a 3x3 layer with
 * block transforms, the larger of that and the block scheme's, so that a smaller batch than prepared can
 * switch schemes without preparing again.
 *
 * 5x5 stride-1 convolutions (conv2 of every AlexNet: 27x27 maps) use F(2x2, 5x5) where the kernel table has
 * its transforms (wino5_input / wino5_output; NULL keeps them on cpu_conv.c's GEMM, as on NEON): 6x6
 * patches, 36 positions, so 36 multiply-adds per tile and channel pair instead of 100 (2.78x fewer; 2.58x on
 * 27x27 maps, whose 14x14 tiles overhang by a row and a column). They share this file's geometry, weight
 * transform and packing, bordering and GEMM calls, but not the three passes: with 36 positions, V and M of
 * a group are 2 MB and 6 MB an image (torchvision's conv2), and writing them to L3 and reading them back
 * made the two transforms as slow as the GEMMs (batch 16, 1 thread: input 8.0 and output 6.7 ms against
 * 15.1 ms). Instead one pass runs blocks of NR tiles (across
 * tile rows and images), each in its task's own scratch (an_wino_block): V of the block (36 B panels,
 * 300-450 KB), then per M panel its 36 GEMMs and at once their output transform, from a 36 x MR x NR block
 * of M (55 KB) that never leaves L1/L2. Only the transformed weights stream from L3, hidden behind the
 * NR multiply-adds the microkernel does per weight. The same driver runs F(2x2, 3x3) by blocks (above).
 * Derivation (Toom-Cook, as Lavin & Gray): the 1-D F(2, 5) y_i = sum_k g_k d_{i+k} (i < 2, k < 5) is the
 * product of polynomials of degree 1 and 4 evaluated at alpha = 6 points, here 0, 1, -1, 2, -2 and
 * infinity: A^T holds the powers a^i of the points (the point at infinity contributes only to the top
 * coefficient), G the filter's values g(a) divided by prod_{b != a} (a - b) (the Lagrange denominators,
 * folded into the weights, which are transformed once in double), and B^T, solved from
 * sum_j A^T[i][j] G[j][k] B^T[j][l] = [l == i + k] (exact, rank 36), comes out with small integers:
 *   B^T = [4  0 -5  0  1  0]   G = [ 1/4     0     0     0     0 ]   A^T = [1 1  1 1  1 0]
 *         [0 -4 -4  1  1  0]       [-1/6  -1/6  -1/6  -1/6  -1/6 ]         [0 1 -1 2 -2 1]
 *         [0  4 -4 -1  1  0]       [-1/6   1/6  -1/6   1/6  -1/6 ]
 *         [0 -2 -1  2  1  0]       [ 1/24  1/12  1/6   1/3   2/3 ]
 *         [0  2 -1 -2  1  0]       [ 1/24 -1/12  1/6  -1/3   2/3 ]
 *         [0  4  0 -5  0  1]       [ 0     0     0     0     1   ]
 * and the 2-D transform nests it: Y = A^T [(G g G^T) (.) (B^T d B)] A. The input and output transforms
 * multiply only by 2 and 4 (exact; kernels.h fixes their order of additions, so every ISA gives the same
 * bits). Points 0, +-1, +-1/2, infinity (B^T scaled to integers by powers of two) were the alternative:
 * simulated in float32 against the float64 direct sum on conv2's shapes (K = 48, 64, 96 input channels x
 * 25 taps, non-negative activations, N(0, 1/fan_in) weights), both stay within 1.5-2.5x of a sequential
 * direct float32 sum's error (max |error| / max |output| 1.4e-6 .. 2.8e-6 against 1.2e-6 .. 1.5e-6), with
 * 0, +-1, +-2 the lower RMS error on every shape (0.89e-6 / 1.27e-6 / 1.04e-6 against 0.93e-6 / 1.30e-6 /
 * 1.09e-6), so those points are used. Measured in the library on conv2 of the seeded training models
 * (against float64 sums of the same float32 inputs): max |error| / max |output| 1.9e-6 .. 2.6e-6, max
 * |error| / sum of |terms| 2.4e-7 .. 3.1e-7; tests/cpu/test_cpu_kernels.c states its tolerance from its own
 * worst case (3.9e-6 of the sum of |terms|, with few input channels). The whole network stays within
 * 1e-6 of PyTorch's float64 logits (tests/net goldens, limit 1e-4). */
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "cpu/cpu_backend.h"
#include "util/error.h"

#define AN_WINO_IMAGES 4 /* images per group: 13x13 maps give 49 tiles each, 4 x 49 = 196 = 12.25 panels of 16 */
/* Small maps take more images per group, up to this many tiles (6 x 6 maps: 9 tiles an image, 32 images =
 * 288 = 9 panels of 32; 13 x 13 ones: 6 images), while the slot stays within AN_WINO_GROW_FLOATS: four
 * images of 6 x 6 gave one GEMM 36 columns (two panels of 32, half empty) and three pool passes per four
 * images, too little work per pass for a second thread to pay off. Larger groups (640 tiles) measured no
 * faster: V and M then leave L2. AlexNet's 13 x 13 layers are over the cap at four images already. */
#define AN_WINO_TILES 288
#define AN_WINO_GROW_FLOATS ((size_t)2 << 20)
/* F(2x2, 5x5): images bordered per group (the tile blocks of a group run in one pool pass). Eight of
 * AlexNet's 27 x 27 maps are 1568 tiles, 49 panels of 32 with none padded, and their bordered copies (2 to
 * 3 MB) stay in L3. */
#define AN_WINO5_IMAGES 8
/* Fewest input channels per group for which F(2x2, 5x5) beats the GEMM. Measured on the Fashion-MNIST
 * network's first layer (1 input channel, 28 x 28, 32 outputs), training at batch 64 on 1 thread: the
 * Winograd path made the whole step 6% slower. */
#define AN_WINO5_MIN_CHANNELS 8
/* F(2x2, 3x3) by blocks: images bordered per group. */
#define AN_WINO3_BLOCK_IMAGES 8
/* Largest GEMM NR the block driver supports (stack arrays of per-block tile data). */
#define AN_WINO_BLOCK_MAX_NR 64
/* Output channels per output-transform task. */
#define AN_WINO_OUT_CHUNK 16

int an_conv_uses_winograd(const an_conv_desc *d, const an_cpu_kernels *kernels)
{
    if (d->stride != 1)
        return 0;
    if (d->kernel_size == 3)
        return 1;
    if (d->kernel_size != 5 || kernels->wino5_input == NULL || kernels->wino5_output == NULL ||
        kernels->gemm_nr > AN_WINO_BLOCK_MAX_NR)
        return 0;
    /* the transforms cost per input and per output channel, the saving is per channel pair: with few input
     * channels (a first layer on grey or RGB images) the GEMM is faster */
    return d->in_channels / d->groups >= AN_WINO5_MIN_CHANNELS;
}

/* Scratch for a group of `images` in the block scheme: bordered images, then each task's V block and M
 * block. */
static size_t an_wino_block_slot_floats(const an_wino_geometry *w, size_t images)
{
    return images * w->bordered_floats + w->threads * w->task_floats;
}

/* ... and in the three passes: bordered images, V, M. */
static size_t an_wino_pass_slot_floats(const an_wino_geometry *w, size_t images)
{
    size_t n_panels = an_div_up(images * w->tiles, w->nr), n_padded = n_panels * w->nr;
    size_t v = w->groups * w->positions * n_panels * an_round_up(w->k * w->nr, 16);
    size_t m = w->groups * w->positions * w->m * n_padded;
    return images * w->bordered_floats + an_round_up(v, 16) + an_round_up(m, 16);
}

void an_wino_geometry_init(an_wino_geometry *w, const an_conv_desc *d, const an_cpu_kernels *kernels,
                           size_t threads)
{
    memset(w, 0, sizeof *w);
    w->alpha = d->kernel_size == 5 ? 6 : 4;
    w->positions = w->alpha * w->alpha;
    w->groups = d->groups;
    w->m = d->out_channels / d->groups;
    w->k = d->in_channels / d->groups;
    w->mr = kernels->gemm_mr;
    w->nr = kernels->gemm_nr;
    size_t k_blocks = an_div_up(w->k, kernels->gemm_kc);
    w->kc = an_div_up(w->k, k_blocks);
    w->m_panels = an_div_up(w->m, w->mr);
    w->a_panel_floats = w->mr + w->k * w->mr;
    w->tiles_h = an_div_up(d->out_height, 2);
    w->tiles_w = an_div_up(d->out_width, 2);
    w->tiles = w->tiles_h * w->tiles_w;
    /* the patch of the last tile reaches row/column 2 * tiles + alpha - 3 of the bordered image */
    w->bordered_height = 2 * w->tiles_h + w->alpha - 2;
    w->bordered_width = 2 * w->tiles_w + w->alpha - 2;
    w->bordered_floats =
        an_round_up((size_t)d->in_channels * w->bordered_height * w->bordered_width + AN_WINO_PLANE_SLACK, 16);
    /* the block scheme where the table has the transforms (always for F(2x2, 5x5)) */
    const int blocks = w->alpha == 6 || (kernels->wino_block_input != NULL && kernels->wino_block_output != NULL &&
                                         kernels->gemm_nr <= AN_WINO_BLOCK_MAX_NR);
    w->threads = threads < 1 ? 1 : threads;
    size_t block_images = 0, block_slot = 0;
    if (blocks) {
        /* per task: V of one tile block (positions x K x NR) and its GEMM results for one M panel
         * (positions x MR x NR) */
        /* one cache line more than the panel: positions K x NR floats apart (8 KB for K = 64, NR = 32) put
         * the input transform's 36 stores of a tile chunk in one L1 set (torchvision's conv2, batch 16,
         * 1 thread: 24.4-24.9 ms with, 19.3-20.3 ms without) */
        w->v_position_floats = an_round_up(w->k * w->nr, 16) + 16;
        w->task_floats = an_round_up(w->positions * w->v_position_floats, 16) +
                         an_round_up(w->positions * w->mr * w->nr, 16);
        const size_t group = w->alpha == 6 ? AN_WINO5_IMAGES : AN_WINO3_BLOCK_IMAGES;
        block_images = d->batch < group ? d->batch : group;
        block_images = block_images < 1 ? 1 : block_images;
        block_slot = an_wino_block_slot_floats(w, block_images);
        if (w->alpha == 6) {
            w->blocked = 1;
            w->group_images = block_images;
            w->slot_floats = block_slot;
            return;
        }
    }
    size_t images = d->batch < AN_WINO_IMAGES ? d->batch : AN_WINO_IMAGES;
    images = images < 1 ? 1 : images;
    while (images < d->batch && images * w->tiles < AN_WINO_TILES &&
           an_wino_pass_slot_floats(w, images + 1) <= AN_WINO_GROW_FLOATS)
        images++;
    const size_t pass_slot = an_wino_pass_slot_floats(w, images);
    /* F(2x2, 3x3) takes blocks when they give every thread one: 13 x 13 maps are 49 tiles an image, so a
     * single image is 2 blocks of 32 tiles, and more threads than blocks would idle where the three passes
     * (16 positions x M blocks of GEMM tasks) keep them busy. Both give the same bits. The scratch covers
     * either scheme, so that a smaller batch than prepared (which may switch) runs unprepared. */
    w->blocked = blocks && an_div_up(block_images * w->tiles, w->nr) >= w->threads;
    w->group_images = w->blocked ? block_images : images;
    w->slot_floats = pass_slot > block_slot ? pass_slot : block_slot;
}

size_t an_wino_packed_floats(const an_wino_geometry *w)
{
    return w->groups * w->positions * w->m_panels * w->a_panel_floats + w->groups * w->m;
}

/* G of F(2x2, 5x5) (the derivation above), in double: the weights are transformed once. */
static const double an_wino5_g[6][5] = {
    {1.0 / 4, 0.0, 0.0, 0.0, 0.0},
    {-1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6, -1.0 / 6},
    {-1.0 / 6, 1.0 / 6, -1.0 / 6, 1.0 / 6, -1.0 / 6},
    {1.0 / 24, 1.0 / 12, 1.0 / 6, 1.0 / 3, 2.0 / 3},
    {1.0 / 24, -1.0 / 12, 1.0 / 6, -1.0 / 3, 2.0 / 3},
    {0.0, 0.0, 0.0, 0.0, 1.0},
};

/* u = G g G^T of one 3x3 filter, G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1], in double. */
static void an_wino3_transform(const float *g, double u[6][6])
{
    double t[4][3];
    for (int j = 0; j < 3; j++) {
        double g0 = g[0 * 3 + j], g1 = g[1 * 3 + j], g2 = g[2 * 3 + j];
        t[0][j] = g0;
        t[1][j] = 0.5 * (g0 + g1 + g2);
        t[2][j] = 0.5 * (g0 - g1 + g2);
        t[3][j] = g2;
    }
    for (int i = 0; i < 4; i++) {
        u[i][0] = t[i][0];
        u[i][1] = 0.5 * (t[i][0] + t[i][1] + t[i][2]);
        u[i][2] = 0.5 * (t[i][0] - t[i][1] + t[i][2]);
        u[i][3] = t[i][2];
    }
}

/* u = G g G^T of one 5x5 filter, in double. */
static void an_wino5_transform(const float *g, double u[6][6])
{
    double t[6][5];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 5; j++) {
            double sum = 0.0;
            for (int k = 0; k < 5; k++)
                sum += an_wino5_g[i][k] * g[k * 5 + j];
            t[i][j] = sum;
        }
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) {
            double sum = 0.0;
            for (int k = 0; k < 5; k++)
                sum += t[i][k] * an_wino5_g[j][k];
            u[i][j] = sum;
        }
}

/* U_xi = (G g G^T)[xi] for every filter, computed in double and rounded once; packed per group and xi into
 * MR-row panels with zero biases. The real biases follow all the panels. */
void an_wino_pack_weights(const an_wino_geometry *w, const float *weight, const float *bias, float *packed)
{
    const size_t panel_floats = w->a_panel_floats, position_floats = w->m_panels * panel_floats;
    memset(packed, 0, an_wino_packed_floats(w) * sizeof *packed);
    for (size_t group = 0; group < w->groups; group++) {
        for (size_t oc = 0; oc < w->m; oc++) {
            for (size_t ic = 0; ic < w->k; ic++) {
                double u[6][6];
                if (w->alpha == 6)
                    an_wino5_transform(weight + ((group * w->m + oc) * w->k + ic) * 25, u);
                else
                    an_wino3_transform(weight + ((group * w->m + oc) * w->k + ic) * 9, u);
                for (size_t xi = 0; xi < w->positions; xi++) {
                    float *panel = packed + (group * w->positions + xi) * position_floats +
                                   (oc / w->mr) * panel_floats;
                    panel[w->mr + ic * w->mr + oc % w->mr] = (float)u[xi / w->alpha][xi % w->alpha];
                }
            }
        }
    }
    float *biases = packed + w->groups * w->positions * position_floats;
    memcpy(biases, bias, w->groups * w->m * sizeof *biases);
}

typedef struct an_wino_job {
    const an_cpu_kernels *kernels;
    const an_conv_desc *desc;
    an_wino_geometry w;
    const float *in, *packed, *biases;
    float *out;
    float *bordered, *v, *m; /* scratch */
    const float *zero_bias;  /* MR zeros: the GEMMs start from nothing */
    size_t first_image, images;
    size_t n, n_panels, n_padded, v_panel_floats;
    size_t mc_panels, gemm_m_blocks, out_chunks;
    float *tasks;            /* block scheme: the tasks' V and M blocks */
    size_t blocks;           /* block scheme: tile blocks (of NR) of the group */
    an_wino_block_input_fn block_input;   /* block scheme: the transforms of the filter size */
    an_wino_block_output_fn block_output;
    atomic_size_t next_block;
} an_wino_job;

/* One input channel of every image of the group: its zero-bordered planes. */
static void an_wino_border_task(void *context, size_t c)
{
    an_wino_job *job = context;
    const an_conv_desc *d = job->desc;
    const an_wino_geometry *w = &job->w;
    const size_t bh = w->bordered_height, bw = w->bordered_width, pad = d->padding;
    for (size_t local = 0; local < job->images; local++) {
        float *plane = job->bordered + local * w->bordered_floats + c * bh * bw;
        const float *src =
            job->in + ((job->first_image + local) * d->in_channels + c) * (size_t)d->in_height * d->in_width;
        memset(plane, 0, bh * bw * sizeof *plane);
        /* rows and columns past bh/bw (a bordered size cut short by the tiles) are never read */
        for (size_t y = 0; y < d->in_height && y + pad < bh; y++)
            an_copy_row(plane + (y + pad) * bw + pad, src + y * d->in_width, an_min(d->in_width, bw - pad));
    }
}

/* F(2x2, 3x3), one input channel of every image of the group: border its planes, then transform all their
 * tiles into the channel's row of every V panel (the ISA's wino_input kernel, which also zeroes the padding
 * columns). */
static void an_wino_input_task(void *context, size_t c)
{
    an_wino_job *job = context;
    const an_wino_geometry *w = &job->w;
    const size_t group = c / w->k, ic = c % w->k;
    const size_t bh = w->bordered_height, bw = w->bordered_width;
    an_wino_border_task(context, c);
    const size_t position_stride = job->n_panels * job->v_panel_floats;
    an_wino_input_args args = {
        .planes = job->bordered + c * bh * bw,
        .image_floats = w->bordered_floats,
        .row_floats = bw,
        .images = job->images,
        .tiles_h = w->tiles_h,
        .tiles_w = w->tiles_w,
        .v = job->v + group * w->positions * position_stride + ic * w->nr,
        .position_stride = position_stride,
        .panel_floats = job->v_panel_floats,
        .nr = w->nr,
        .panels = job->n_panels,
    };
    job->kernels->wino_input(&args);
}

/* GEMMs of one (group, xi) over a block of M panels, all tiles of the group. */
static void an_wino_gemm_task(void *context, size_t index)
{
    an_wino_job *job = context;
    const an_wino_geometry *w = &job->w;
    const size_t mb = index % job->gemm_m_blocks, gx = index / job->gemm_m_blocks;
    const size_t ip0 = mb * job->mc_panels, ip1 = an_min(ip0 + job->mc_panels, w->m_panels);
    const float *a_position = job->packed + gx * w->m_panels * w->a_panel_floats;
    const float *b_position = job->v + gx * job->n_panels * job->v_panel_floats;
    float *c_position = job->m + gx * w->m * job->n_padded;
    const an_gemm_ukernel_fn gemm = job->kernels->gemm;
    for (size_t pc = 0; pc < w->k; pc += w->kc) {
        const size_t kc = an_min(w->kc, w->k - pc);
        const uint32_t flags = pc > 0 ? AN_GEMM_ACCUMULATE : 0u;
        for (size_t jp = 0; jp < job->n_panels; jp++) {
            const float *b = b_position + jp * job->v_panel_floats + pc * w->nr;
            for (size_t ip = ip0; ip < ip1; ip++) {
                const float *a = a_position + ip * w->a_panel_floats;
                gemm(kc, a + w->mr + pc * w->mr, b, job->zero_bias, c_position + ip * w->mr * job->n_padded + jp * w->nr,
                     job->n_padded, an_min(w->mr, w->m - ip * w->mr), w->nr, flags);
            }
        }
    }
}

/* Output channels [chunk] of one image: A^T M A + bias, ReLU, clipped to the map (the ISA's wino_output). */
static void an_wino_output_task(void *context, size_t index)
{
    an_wino_job *job = context;
    const an_conv_desc *d = job->desc;
    const an_wino_geometry *w = &job->w;
    const size_t local = index / job->out_chunks, chunk = index % job->out_chunks;
    const size_t oc0 = chunk * AN_WINO_OUT_CHUNK, oc1 = an_min(oc0 + AN_WINO_OUT_CHUNK, d->out_channels);
    const size_t position_stride = w->m * job->n_padded, plane = (size_t)d->out_height * d->out_width;
    for (size_t oc = oc0; oc < oc1; oc++) {
        const size_t group = oc / w->m, mo = oc % w->m;
        an_wino_output_args args = {
            .m = job->m + group * w->positions * position_stride + mo * job->n_padded,
            .position_stride = position_stride,
            .first_tile = local * w->tiles,
            .tiles_h = w->tiles_h,
            .tiles_w = w->tiles_w,
            .bias = job->biases[oc],
            .relu = d->relu,
            .out = job->out + ((job->first_image + local) * d->out_channels + oc) * plane,
            .out_height = d->out_height,
            .out_width = d->out_width,
        };
        job->kernels->wino_output(&args);
    }
}

/* The block scheme (F(2x2, 5x5); F(2x2, 3x3) with block transforms), one block of NR tiles (tiles [b NR, b NR
 * + count) of the group, across tile rows and images): for each group, the input transform of every input
 * channel into the block's V (`positions` B panels, in this task's cache), then for each M panel its GEMMs
 * into a positions x MR x NR block of M and at once the output transform of those MR channels. Neither V nor
 * M ever leaves the core's L2 (one-tower's conv2: V 442 KB, M 55 KB); only the transformed weights stream
 * (from L3), which the GEMM microkernel's compute per A float (NR multiply-adds) hides. (The three-pass
 * scheme of F(2x2, 3x3) writes V and M for all the group's tiles: 2 MB and 6 MB an image for conv2, which
 * made its transforms as slow as its GEMMs.) */
static void an_wino_block(an_wino_job *job, size_t block, float *v, float *mblock)
{
    const an_conv_desc *d = job->desc;
    const an_wino_geometry *w = &job->w;
    const size_t nr = w->nr, n0 = block * nr, count = an_min(nr, job->n - n0);
    const size_t bh = w->bordered_height, bw = w->bordered_width, plane = (size_t)d->out_height * d->out_width;
    /* runs of the block's tiles along one tile row: first lane, length, and the offset of the first patch
     * in the group's bordered images */
    size_t run_lane[AN_WINO_BLOCK_MAX_NR], run_count[AN_WINO_BLOCK_MAX_NR];
    size_t run_offset[AN_WINO_BLOCK_MAX_NR], runs = 0;
    /* and where its outputs go: offset from the output channel's plane in the group's first image, rows
     * and columns inside the map */
    size_t run_out[AN_WINO_BLOCK_MAX_NR], run_rows[AN_WINO_BLOCK_MAX_NR], run_width[AN_WINO_BLOCK_MAX_NR];
    for (size_t t = 0; t < count; t++) {
        const size_t n = n0 + t, image = n / w->tiles, ty = n % w->tiles / w->tiles_w, tx = n % w->tiles_w;
        if (t == 0 || tx == 0) {
            run_lane[runs] = t, run_count[runs] = 0;
            run_offset[runs] = image * w->bordered_floats + 2 * ty * bw + 2 * tx;
            run_out[runs] = image * d->out_channels * plane + 2 * ty * d->out_width + 2 * tx;
            run_rows[runs] = an_min(2, d->out_height - 2 * ty);
            run_width[runs] = 2 * tx; /* the end column, made a width below */
            runs++;
        }
        run_count[runs - 1]++;
    }
    for (size_t run = 0; run < runs; run++)
        run_width[run] = an_min(2 * run_count[run], d->out_width - run_width[run]);
    const size_t m_position = w->mr * nr;
    for (size_t group = 0; group < w->groups; group++) {
        for (size_t ic = 0; ic < w->k; ic++) {
            an_wino_block_input_args in = {
                .plane = job->bordered + (group * w->k + ic) * bh * bw,
                .row_floats = bw,
                .count = count,
                .nr = nr,
                .runs = runs,
                .run_lane = run_lane,
                .run_count = run_count,
                .run_offset = run_offset,
                .v = v + ic * nr,
                .position_stride = w->v_position_floats,
            };
            job->block_input(&in);
        }
        const float *a_group = job->packed + group * w->positions * w->m_panels * w->a_panel_floats;
        for (size_t ip = 0; ip < w->m_panels; ip++) {
            const size_t rows = an_min(w->mr, w->m - ip * w->mr);
            for (size_t xi = 0; xi < w->positions; xi++) {
                const float *a = a_group + (xi * w->m_panels + ip) * w->a_panel_floats + w->mr;
                for (size_t pc = 0; pc < w->k; pc += w->kc) {
                    const size_t kc = an_min(w->kc, w->k - pc);
                    job->kernels->gemm(kc, a + pc * w->mr, v + xi * w->v_position_floats + pc * nr, job->zero_bias,
                                       mblock + xi * m_position, nr, rows, count,
                                       pc > 0 ? AN_GEMM_ACCUMULATE : 0u);
                }
            }
            for (size_t r = 0; r < rows; r++) {
                const size_t oc = group * w->m + ip * w->mr + r;
                an_wino_block_output_args o = {
                    .m = mblock + r * nr,
                    .position_stride = m_position,
                    .count = count,
                    .nr = nr,
                    .bias = job->biases[oc],
                    .relu = d->relu,
                    .out = job->out + (job->first_image * d->out_channels + oc) * plane,
                    .out_stride = d->out_width,
                    .runs = runs,
                    .run_lane = run_lane,
                    .run_count = run_count,
                    .run_offset = run_out,
                    .run_rows = run_rows,
                    .run_width = run_width,
                };
                job->block_output(&o);
            }
        }
    }
}

/* One of `threads` tasks: tile blocks from the shared counter until none is left, in the task's own V and
 * M blocks. Each block's outputs are the same chains whichever task computes them. */
static void an_wino_block_task(void *context, size_t index)
{
    an_wino_job *job = context;
    const an_wino_geometry *w = &job->w;
    float *v = job->tasks + index * w->task_floats;
    float *mblock = v + an_round_up(w->positions * w->v_position_floats, 16);
    for (;;) {
        const size_t block = atomic_fetch_add_explicit(&job->next_block, 1, memory_order_relaxed);
        if (block >= job->blocks)
            return;
        an_wino_block(job, block, v, mblock);
    }
}

alexnet_status an_cpu_conv2d_winograd(an_backend_context *context, const an_conv_desc *desc, const float *in,
                                      const float *packed, float *out)
{
    an_wino_job job;
    memset(&job, 0, sizeof job);
    job.kernels = context->kernels;
    job.desc = desc;
    an_wino_geometry_init(&job.w, desc, context->kernels, context->slot_count);
    const an_wino_geometry *w = &job.w;
    if (w->alpha == 6 && (context->kernels->wino5_input == NULL || context->kernels->wino5_output == NULL))
        return an_error(ALEXNET_E_STATE, "conv2d: no Winograd transforms for %ux%u filters in this kernel table",
                        (unsigned)desc->kernel_size, (unsigned)desc->kernel_size);
    if (w->slot_floats > context->slot_floats || context->prepared_slots < 1)
        return an_error(ALEXNET_E_STATE, "conv2d: Winograd scratch for this shape was not prepared (%zu floats "
                                         "needed, %zu prepared)",
                        w->slot_floats, context->slot_floats);
    static const float zeros[64];
    job.zero_bias = zeros;
    job.in = in;
    job.out = out;
    job.packed = packed;
    job.biases = packed + w->groups * w->positions * w->m_panels * w->a_panel_floats;
    job.v_panel_floats = an_round_up(w->k * w->nr, 16);
    job.out_chunks = an_div_up(desc->out_channels, AN_WINO_OUT_CHUNK);
    /* GEMM tasks: split M so that every thread gets several (group, xi, M block) tasks */
    const size_t tasks_wanted = 4 * context->slot_count, position_tasks = w->groups * w->positions;
    size_t m_blocks = an_div_up(tasks_wanted, position_tasks);
    m_blocks = m_blocks > w->m_panels ? w->m_panels : m_blocks;
    job.mc_panels = an_div_up(w->m_panels, m_blocks);
    job.gemm_m_blocks = an_div_up(w->m_panels, job.mc_panels);

    if (w->blocked) {
        job.block_input = w->alpha == 6 ? context->kernels->wino5_input : context->kernels->wino_block_input;
        job.block_output = w->alpha == 6 ? context->kernels->wino5_output : context->kernels->wino_block_output;
        for (size_t first = 0; first < desc->batch; first += w->group_images) {
            job.first_image = first;
            job.images = an_min(w->group_images, desc->batch - first);
            job.n = job.images * w->tiles;
            job.blocks = an_div_up(job.n, w->nr);
            job.bordered = context->scratch;
            job.tasks = job.bordered + job.images * w->bordered_floats;
            atomic_store_explicit(&job.next_block, 0, memory_order_relaxed);
            an_threadpool_run(context->pool, an_wino_border_task, &job, desc->in_channels);
            an_threadpool_run(context->pool, an_wino_block_task, &job, an_min(w->threads, job.blocks));
        }
        return ALEXNET_OK;
    }
    for (size_t first = 0; first < desc->batch; first += w->group_images) {
        job.first_image = first;
        job.images = an_min(w->group_images, desc->batch - first);
        job.n = job.images * w->tiles;
        job.n_panels = an_div_up(job.n, w->nr);
        job.n_padded = job.n_panels * w->nr;
        job.bordered = context->scratch;
        job.v = job.bordered + job.images * w->bordered_floats;
        job.m = job.v + an_round_up(w->groups * w->positions * job.n_panels * job.v_panel_floats, 16);
        an_threadpool_run(context->pool, an_wino_input_task, &job, desc->in_channels);
        an_threadpool_run(context->pool, an_wino_gemm_task, &job, position_tasks * job.gemm_m_blocks);
        an_threadpool_run(context->pool, an_wino_output_task, &job, job.images * job.out_chunks);
    }
    return ALEXNET_OK;
}
