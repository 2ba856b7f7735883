/* Convolution on the CPU backend (all but 3x3 stride 1, which cpu_winograd.c does): grouped GEMMs over
 * packed weights and packed im2col.
 *
 * Per image and group, C[M][N] = A[M][K] B[K][N] + bias (M output channels, K = input channels x k x k,
 * N output pixels; C is the NCHW output itself, row stride N). A is packed once, at weights_create, into
 * panels of MR output channels with the biases in front (kernels.h). B, the im2col of one image, is
 * packed straight into panels of NR pixels (by the ISA's im2col kernel) from a zero-bordered copy of the
 * image, so the packer needs no bounds checks: for a fixed tap (c, ky, kx) each run of pixels in one
 * output row reads consecutive floats of the bordered plane. At stride s > 1 (conv1: 11x11, stride 4)
 * that is because the copy is phase-split: each bordered row is stored as s phase rows, phase q holding
 * columns q, q + s, q + 2s, ..., so tap kx of a run reads phase row kx mod s from index kx / s on (an
 * im2col at stride s would otherwise gather, or shuffle every input row of every panel into phases again).
 * Then a panel whose NR pixels lie in one output row ("direct": 24 of every 55 of conv1's at NR = 32) is
 * not packed at all: its slot in the packed chunk holds K row addresses into the bordered image instead,
 * and the gemm_indirect microkernel reads the rows in place (the same chain of operations, so the same
 * bits). Where the table has gemm_indirect_split, a panel crossing into the next output row is read in
 * place too: for every tap the second row's pixels sit at one fixed distance from the first's
 * (stride x row_floats - out_width), so the same K addresses serve, with the lane where the row changes.
 * Packing is what conv1 cannot amortise: each packed float serves only 64 or 96 output channels (K = 363),
 * where conv2's serve 192 or 256, and it cost conv1 a fifth of its time.
 * At stride 1 (the layers Winograd does not take: conv2 on tables without the F(2x2, 5x5) transforms, as
 * NEON's, and 5x5 layers with few input channels) the image is not bordered once but copied kernel_size
 * times, copy kx shifted left by kx columns and cut to out_width columns a row: then tap (c, ky, kx) of
 * pixel p = oy * out_width + ox is float c * plane + ky * out_width + p of copy kx, so every panel (the
 * last, partial one too) is K row addresses read in place. The copies are 5 x the bordered image (1 MB for
 * conv2), written once per image, where conv2's im2col is 25 x (4.7 MB) and was written and read again for
 * every image.
 *
 * Cache blocking (an_conv_gemm_block): for each block of N panels whose kc x NC slice of B fits L2, for each
 * K block (kc, so that one kc x NR micro-panel of B stays in L1), for each block of M panels whose
 * MC x kc slice of A fits L2: for each B micro-panel, for each A panel, one microkernel call. C is finished
 * in place across K blocks (the microkernel reloads it), and ReLU is applied with the last K block.
 *
 * Threads, two schemes, chosen by the batch:
 *   image mode: whole images per task; each of W tasks (W = the pool's concurrency) owns one scratch slot
 *     and takes images from a shared counter until none is left: no barrier inside a layer. It packs one
 *     cache block of N panels at a time and runs every M panel over it while it is still in L2;
 *   tile mode (the last batch % W images, so batch 1): one parallel pass borders the image (blocks of
 *     rows), one packs B panels, and one computes tiles of (group, M panels, N panels) sized so there are
 *     several tiles per thread. When the tiles span all of M (every AlexNet layer at 2 threads), each tile
 *     packs its own N panels instead, in the same pass: one pool run fewer, and the panels are computed
 *     while still in the packing core's L2.
 * Every output element is the same microkernel chain over the same K blocks whichever scheme, tile or
 * thread computes it, so the bits do not depend on the thread count, the host's task order or the batch. */
#include <stdatomic.h>
#include <string.h>

#include "cpu/cpu_backend.h"
#include "util/error.h"

/* Packed im2col per scratch slot is capped (large inputs are packed in chunks of N panels). */
#define AN_CONV_B_CHUNK_FLOATS ((size_t)4 << 20)
/* L2 budgets of the blocking: the kc x NC slice of B and the MC x kc slice of A (512 KiB L2 here). */
#define AN_CONV_B_BLOCK_BYTES ((size_t)192 << 10)
#define AN_CONV_A_BLOCK_BYTES ((size_t)128 << 10)
/* Tile mode aims at this many tiles per thread, so a thread slowed by other load is balanced by the rest. */
#define AN_CONV_TILES_PER_THREAD 4

void an_conv_geometry_init(an_conv_geometry *g, const an_conv_desc *d, const an_cpu_kernels *kernels)
{
    memset(g, 0, sizeof *g);
    const size_t ks = d->kernel_size;
    g->groups = d->groups;
    g->m = d->out_channels / d->groups;
    g->k = (size_t)(d->in_channels / d->groups) * ks * ks;
    g->n = (size_t)d->out_height * d->out_width;
    g->mr = kernels->gemm_mr;
    g->nr = kernels->gemm_nr;
    size_t k_blocks = an_div_up(g->k, kernels->gemm_kc);
    g->kc = an_div_up(g->k, k_blocks);
    g->m_panels = an_div_up(g->m, g->mr);
    g->n_panels = an_div_up(g->n, g->nr);
    g->a_panel_floats = g->mr + g->k * g->mr;
    g->kx_shifted = d->stride == 1;
    /* a panel's slot: K x NR packed floats, or only its K row addresses when no panel is packed (every
     * slot 64-byte aligned) */
    g->b_panel_floats = an_round_up(g->kx_shifted ? an_div_up(g->k * sizeof(const float *), sizeof(float))
                                                    : g->k * g->nr,
                                    16);
    g->padded_height = (size_t)d->in_height + 2 * (size_t)d->padding;
    g->padded_width = (size_t)d->in_width + 2 * (size_t)d->padding;
    g->phase_floats = d->stride > 1 ? an_div_up(g->padded_width, d->stride) : 0;
    g->row_floats = d->stride > 1 ? d->stride * g->phase_floats : d->out_width;
    g->layout_rows = (size_t)d->in_channels * g->padded_height * (g->kx_shifted ? ks : 1);
    /* a crossing panel must not reach a third row: NR <= out_width */
    g->crossing_panels = kernels->gemm_indirect_split != NULL && g->phase_floats != 0 && d->out_width >= g->nr;
    g->split_offset = (ptrdiff_t)(d->stride * g->row_floats) - (ptrdiff_t)d->out_width;
    /* lead slack, the bordered image, tail slack (what the im2col kernels may read around it) */
    g->padded_floats = an_round_up(AN_IM2COL_LEAD_FLOATS +
                                       g->layout_rows * g->row_floats +
                                       AN_IM2COL_TAIL_FLOATS,
                                   16);
    size_t chunk = AN_CONV_B_CHUNK_FLOATS / (g->groups * g->b_panel_floats);
    g->chunk_panels = chunk < 1 ? 1 : chunk > g->n_panels ? g->n_panels : chunk;
    g->slot_floats = g->padded_floats + g->groups * g->chunk_panels * g->b_panel_floats;
}

size_t an_conv_packed_floats(const an_conv_geometry *g) { return g->groups * g->m_panels * g->a_panel_floats; }

void an_conv_pack_weights(const an_conv_geometry *g, const float *weight, const float *bias, float *packed)
{
    for (size_t group = 0; group < g->groups; group++) {
        for (size_t ip = 0; ip < g->m_panels; ip++) {
            float *panel = packed + (group * g->m_panels + ip) * g->a_panel_floats;
            for (size_t r = 0; r < g->mr; r++) {
                size_t oc = ip * g->mr + r;
                const float *filter = weight + (group * g->m + oc) * g->k;
                panel[r] = oc < g->m ? bias[group * g->m + oc] : 0.0f;
                for (size_t k = 0; k < g->k; k++)
                    panel[g->mr + k * g->mr + r] = oc < g->m ? filter[k] : 0.0f;
            }
        }
    }
}

/* Input row `in` (w floats) into the phase rows of one bordered row (phase q at row + q * pf), whose other
 * floats are already zero: bordered column X = x + pad is index X / s of phase X % s. The middle loop moves
 * whole groups of s columns (one index of every phase), which gcc vectorises as de-interleaving loads when
 * s is a constant (conv1's 4, below): the element-wise version was ~9% of conv1. */
static inline __attribute__((always_inline)) void an_conv_phase_scatter(float *row, const float *in, size_t w,
                                                                        size_t pad, size_t s, size_t pf)
{
    size_t x = 0;
    for (; x < w && (x + pad) % s != 0; x++)
        row[(x + pad) % s * pf + (x + pad) / s] = in[x];
    size_t t = (x + pad) / s;
    for (; x + s <= w; x += s, t++)
        for (size_t q = 0; q < s; q++)
            row[q * pf + t] = in[x + q];
    for (; x < w; x++)
        row[(x + pad) % s * pf + (x + pad) / s] = in[x];
}

/* Row (c, y) of copy kx of the shifted layout: out_width floats, bordered columns kx, kx + 1, ...; the
 * input row's columns x land at x + pad - kx, zeros around them. */
static void an_conv_shifted_row(float *row, const float *in, size_t w, size_t pad, size_t kx, size_t ow)
{
    const size_t lead = pad > kx ? pad - kx : 0, skip = kx > pad ? kx - pad : 0; /* zeros / input columns cut */
    const size_t copy = w > skip ? an_min(w - skip, ow - an_min(lead, ow)) : 0;
    memset(row, 0, an_min(lead, ow) * sizeof *row);
    memcpy(row + lead, in + skip, copy * sizeof *row);
    if (lead + copy < ow)
        memset(row + lead + copy, 0, (ow - lead - copy) * sizeof *row);
}

/* Rows [row_begin, row_end) of the image's layout (row i: copy kx = i / (channels x padded_height) when
 * shifted, then channel and bordered row y), each of row_floats: zeros above and below the image, the input
 * row between its zero columns, phase-split at stride > 1 (every stored float written: the phase rows' ends
 * past the bordered width are zero), shifted at stride 1. */
static void an_conv_border_rows(const an_conv_desc *d, const an_conv_geometry *g, const float *image,
                                float *bordered, size_t row_begin, size_t row_end)
{
    const size_t rf = g->row_floats, pad = d->padding, w = d->in_width, h = d->in_height, s = d->stride;
    const size_t pf = g->phase_floats, copy_rows = (size_t)d->in_channels * g->padded_height;
    for (size_t i = row_begin; i < row_end; i++) {
        const size_t c = i % copy_rows / g->padded_height, y = i % g->padded_height;
        float *row = bordered + i * rf;
        if (y < pad || y >= pad + h) {
            memset(row, 0, rf * sizeof *row);
            continue;
        }
        const float *in = image + (c * h + (y - pad)) * w;
        if (pf == 0) {
            an_conv_shifted_row(row, in, w, pad, i / copy_rows, rf);
            continue;
        }
        /* phase q, index t: bordered column X = t * s + q, input column X - pad; zeros elsewhere */
        memset(row, 0, rf * sizeof *row);
        if (s == 4)
            an_conv_phase_scatter(row, in, w, pad, 4, pf);
        else
            an_conv_phase_scatter(row, in, w, pad, s, pf);
    }
}

/* The slack around the bordered image in `slot`: AN_IM2COL_LEAD_FLOATS before it, the tail after it (zeroed
 * too, so that nothing reads memory another thread is writing). Returns the bordered image's first float. */
static float *an_conv_border_slack(const an_conv_geometry *g, float *slot)
{
    float *bordered = slot + AN_IM2COL_LEAD_FLOATS;
    memset(slot, 0, AN_IM2COL_LEAD_FLOATS * sizeof *slot);
    float *tail = bordered + g->layout_rows * g->row_floats;
    memset(tail, 0, (size_t)(slot + g->padded_floats - tail) * sizeof *tail);
    return bordered;
}

/* The whole bordered image (all channels) with its slack in `slot`; returns its first float. */
static const float *an_conv_border_image(const an_conv_desc *d, const an_conv_geometry *g, const float *image,
                                         float *slot)
{
    float *bordered = an_conv_border_slack(g, slot);
    an_conv_border_rows(d, g, image, bordered, 0, g->layout_rows);
    return bordered;
}

/* How panel jp is read (see the top): packed; in place, all NR pixels in one output row; in place, crossing
 * into the next row after `split` pixels. */
typedef enum an_panel_kind { AN_PANEL_PACKED, AN_PANEL_DIRECT, AN_PANEL_CROSSING } an_panel_kind;

static an_panel_kind an_conv_panel_kind(const an_conv_desc *d, const an_conv_geometry *g, size_t jp, size_t *split)
{
    const size_t p0 = jp * g->nr, ox = p0 % d->out_width;
    *split = g->nr;
    if (g->kx_shifted)
        return AN_PANEL_DIRECT;
    if (g->phase_floats == 0 || p0 + g->nr > g->n)
        return AN_PANEL_PACKED;
    if (ox + g->nr <= d->out_width)
        return AN_PANEL_DIRECT;
    *split = d->out_width - ox;
    return g->crossing_panels ? AN_PANEL_CROSSING : AN_PANEL_PACKED;
}

/* One K x NR panel of im2col: pixels [jp * NR, jp * NR + NR) of group `group`, from the bordered image,
 * through the ISA's packer; here only the panel's runs of pixels within one output row are worked out. A
 * direct panel gets its K row addresses instead (K pointers fit in the K x NR floats of its slot). */
static void an_conv_pack_panel(const an_cpu_kernels *kernels, const an_conv_desc *d, const an_conv_geometry *g,
                               const float *bordered, size_t group, size_t jp, float *dst)
{
    size_t split;
    if (g->kx_shifted) { /* tap (c, ky, kx): copy kx, channel c, from row ky on, at the panel's first pixel */
        const size_t ks = d->kernel_size, channels = d->in_channels / d->groups;
        const size_t plane = g->padded_height * g->row_floats, copy = (size_t)d->in_channels * plane;
        const float *start = bordered + group * channels * plane + jp * g->nr;
        const float **rows = (const float **)(void *)dst;
        for (size_t c = 0; c < channels; c++)
            for (size_t ky = 0; ky < ks; ky++)
                for (size_t kx = 0; kx < ks; kx++)
                    *rows++ = start + kx * copy + c * plane + ky * g->row_floats;
        return;
    }
    if (an_conv_panel_kind(d, g, jp, &split) != AN_PANEL_PACKED) {
        const size_t s = d->stride, ks = d->kernel_size, channels = d->in_channels / d->groups;
        const size_t plane = g->padded_height * g->row_floats, p0 = jp * g->nr;
        const size_t oy = p0 / d->out_width, ox = p0 % d->out_width;
        /* tap (c, ky, kx) of pixel ox: phase row kx % s of bordered row oy * s + ky, index ox + kx / s */
        const float *start = bordered + group * channels * plane + oy * s * g->row_floats + ox;
        const float **rows = (const float **)(void *)dst;
        for (size_t c = 0; c < channels; c++)
            for (size_t ky = 0; ky < ks; ky++) {
                const float *line = start + c * plane + ky * g->row_floats;
                for (size_t kx0 = 0; kx0 < s && kx0 < ks; kx0++) /* the taps of one phase row: kx0 + s i */
                    for (size_t kx = kx0, i = 0; kx < ks; kx += s, i++)
                        rows[kx] = line + kx0 * g->phase_floats + i;
                rows += ks;
            }
        return;
    }
    const size_t nr = g->nr, stride = d->stride, ow = d->out_width, rf = g->row_floats;
    /* pixel ox of a run starts at bordered column ox * stride: index ox of phase 0 when phase-split */
    const size_t column_step = g->phase_floats ? 1 : stride;
    const size_t p0 = jp * nr, count = an_min(nr, g->n - p0);
    an_im2col_panel panel;
    panel.channels = d->in_channels / d->groups;
    panel.plane_floats = g->padded_height * rf;
    panel.image = bordered + group * panel.channels * panel.plane_floats;
    panel.kernel_size = d->kernel_size;
    panel.stride = stride;
    panel.row_floats = rf;
    panel.phase_floats = g->phase_floats;
    panel.columns = count;
    panel.runs = 0;
    for (size_t j = 0; j < count;) {
        size_t p = p0 + j, oy = p / ow, ox = p % ow, length = an_min(count - j, ow - ox);
        panel.run_column[panel.runs] = j;
        panel.run_length[panel.runs] = length;
        panel.run_offset[panel.runs] = oy * stride * rf + ox * column_step;
        panel.runs++;
        j += length;
    }
    kernels->im2col(&panel, nr, dst);
}

/* Everything one conv call shares between its tasks. */
typedef struct an_conv_job {
    const an_cpu_kernels *kernels;
    const an_conv_desc *desc;
    an_conv_geometry g;
    const float *in, *packed;
    float *out;
    float *scratch; /* slot 0 */
    size_t slot_floats;
    size_t nc_panels, mc_panels; /* cache blocks (panels) */
    /* image mode */
    _Atomic size_t next_image;
    size_t image_end;
    /* tile mode: the image, the chunk [chunk_begin, chunk_end) of N panels, the tiling; the bordering is
     * split into tasks of border_rows rows */
    size_t image;
    const float *padded;
    float *bordering;
    size_t border_rows;
    size_t chunk_begin, chunk_end;
    size_t tile_m_panels, tile_n_panels, tiles_m, tiles_n;
} an_conv_job;

static const float *an_conv_image_input(const an_conv_job *job, size_t image)
{
    return job->in + image * (size_t)job->desc->in_channels * job->desc->in_height * job->desc->in_width;
}

/* C panels [ip0, ip1) x [jp0, jp1) of one group of one image; b_group holds that group's packed im2col
 * panels from N panel `chunk_begin` on. */
static void an_conv_gemm_block(const an_conv_job *job, size_t image, size_t group, const float *b_group,
                               size_t chunk_begin, size_t ip0, size_t ip1, size_t jp0, size_t jp1)
{
    const an_conv_geometry *g = &job->g;
    const an_gemm_ukernel_fn gemm = job->kernels->gemm;
    const an_gemm_indirect_fn indirect = job->kernels->gemm_indirect;
    const an_gemm_indirect_split_fn crossing = job->kernels->gemm_indirect_split;
    const float *a_group = job->packed + group * g->m_panels * g->a_panel_floats;
    float *c_group = job->out + (image * job->desc->out_channels + group * g->m) * g->n;
    for (size_t jb = jp0; jb < jp1; jb += job->nc_panels) {
        const size_t jb_end = an_min(jb + job->nc_panels, jp1);
        for (size_t pc = 0; pc < g->k; pc += g->kc) {
            const size_t kc = an_min(g->kc, g->k - pc);
            const uint32_t flags = (pc > 0 ? AN_GEMM_ACCUMULATE : 0u) |
                                   (pc + kc == g->k && job->desc->relu ? AN_GEMM_RELU : 0u);
            for (size_t ib = ip0; ib < ip1; ib += job->mc_panels) {
                const size_t ib_end = an_min(ib + job->mc_panels, ip1);
                for (size_t jp = jb; jp < jb_end; jp++) {
                    const float *panel = b_group + (jp - chunk_begin) * g->b_panel_floats;
                    const size_t n = an_min(g->nr, g->n - jp * g->nr);
                    size_t split;
                    const an_panel_kind kind = an_conv_panel_kind(job->desc, g, jp, &split);
                    if (kind != AN_PANEL_PACKED) {
                        const float *const *rows = (const float *const *)(const void *)panel + pc;
                        for (size_t ip = ib; ip < ib_end; ip++) {
                            const float *a = a_group + ip * g->a_panel_floats;
                            float *c = c_group + ip * g->mr * g->n + jp * g->nr;
                            const size_t m = an_min(g->mr, g->m - ip * g->mr);
                            if (kind == AN_PANEL_DIRECT)
                                indirect(kc, a + g->mr + pc * g->mr, rows, a, c, g->n, m, n, flags);
                            else
                                crossing(kc, a + g->mr + pc * g->mr, rows, split, g->split_offset, a, c, g->n, m, n,
                                         flags);
                        }
                        continue;
                    }
                    const float *b = panel + pc * g->nr;
                    for (size_t ip = ib; ip < ib_end; ip++) {
                        const float *a = a_group + ip * g->a_panel_floats;
                        gemm(kc, a + g->mr + pc * g->mr, b, a, c_group + ip * g->mr * g->n + jp * g->nr, g->n,
                             an_min(g->mr, g->m - ip * g->mr), n, flags);
                    }
                }
            }
        }
    }
}

/* The bordered image of `image` in `slot`. */
static const float *an_conv_bordered(const an_conv_job *job, size_t image, float *slot)
{
    return an_conv_border_image(job->desc, &job->g, an_conv_image_input(job, image), slot);
}

/* ---- image mode ---- */

static void an_conv_image_task(void *context, size_t slot_index)
{
    an_conv_job *job = context;
    const an_conv_geometry *g = &job->g;
    float *slot = job->scratch + slot_index * job->slot_floats;
    float *b_chunk = slot + g->padded_floats;
    for (;;) {
        size_t image = atomic_fetch_add_explicit(&job->next_image, 1, memory_order_relaxed);
        if (image >= job->image_end)
            break;
        const float *bordered = an_conv_bordered(job, image, slot);
        /* pack one cache block of N panels, then run every M panel over it while it is still in L2 */
        for (size_t begin = 0; begin < g->n_panels; begin += job->nc_panels) {
            const size_t end = an_min(begin + job->nc_panels, g->n_panels), length = end - begin;
            for (size_t group = 0; group < g->groups; group++) {
                float *b_group = b_chunk + group * length * g->b_panel_floats;
                for (size_t jp = begin; jp < end; jp++)
                    an_conv_pack_panel(job->kernels, job->desc, g, bordered, group, jp,
                                       b_group + (jp - begin) * g->b_panel_floats);
                an_conv_gemm_block(job, image, group, b_group, begin, 0, g->m_panels, begin, end);
            }
        }
    }
}

/* ---- tile mode ---- */

static void an_conv_border_task(void *context, size_t index)
{
    an_conv_job *job = context;
    const size_t rows = job->g.layout_rows, begin = index * job->border_rows;
    an_conv_border_rows(job->desc, &job->g, an_conv_image_input(job, job->image), job->bordering, begin,
                        an_min(begin + job->border_rows, rows));
}

static void an_conv_pack_task(void *context, size_t index)
{
    an_conv_job *job = context;
    const an_conv_geometry *g = &job->g;
    const size_t length = job->chunk_end - job->chunk_begin;
    const size_t group = index / length, jp = job->chunk_begin + index % length;
    float *b_chunk = job->scratch + g->padded_floats;
    an_conv_pack_panel(job->kernels, job->desc, g, job->padded, group, jp, b_chunk + index * g->b_panel_floats);
}

static void an_conv_tile_task(void *context, size_t index)
{
    an_conv_job *job = context;
    const an_conv_geometry *g = &job->g;
    const size_t length = job->chunk_end - job->chunk_begin;
    const size_t tn = index % job->tiles_n, tm = index / job->tiles_n % job->tiles_m;
    const size_t group = index / job->tiles_n / job->tiles_m;
    const size_t ip0 = tm * job->tile_m_panels, ip1 = an_min(ip0 + job->tile_m_panels, g->m_panels);
    const size_t jp0 = job->chunk_begin + tn * job->tile_n_panels;
    const size_t jp1 = an_min(jp0 + job->tile_n_panels, job->chunk_end);
    const float *b_group = job->scratch + g->padded_floats + group * length * g->b_panel_floats;
    an_conv_gemm_block(job, job->image, group, b_group, job->chunk_begin, ip0, ip1, jp0, jp1);
}

/* A tile that spans all M panels (tiles_m == 1) owns its N panels: it packs them itself and computes them
 * while they are in its core's L2, with no pass (and no wake-up of the pool) in between. The packed
 * layout is the pack pass's, so are the bits. */
static void an_conv_pack_tile_task(void *context, size_t index)
{
    an_conv_job *job = context;
    const an_conv_geometry *g = &job->g;
    const size_t length = job->chunk_end - job->chunk_begin;
    const size_t tn = index % job->tiles_n, group = index / job->tiles_n;
    const size_t jp0 = job->chunk_begin + tn * job->tile_n_panels;
    const size_t jp1 = an_min(jp0 + job->tile_n_panels, job->chunk_end);
    float *b_group = job->scratch + g->padded_floats + group * length * g->b_panel_floats;
    for (size_t jp = jp0; jp < jp1; jp++)
        an_conv_pack_panel(job->kernels, job->desc, g, job->padded, group, jp,
                           b_group + (jp - job->chunk_begin) * g->b_panel_floats);
    an_conv_tile_task(context, index);
}

/* Halve the larger side of the tile (in elements) until there are enough tiles or both are one panel. */
static void an_conv_choose_tiles(an_conv_job *job, size_t length, size_t target)
{
    const an_conv_geometry *g = &job->g;
    size_t tm = g->m_panels, tn = length;
    while (g->groups * an_div_up(g->m_panels, tm) * an_div_up(length, tn) < target && (tm > 1 || tn > 1)) {
        if (tn > 1 && (tn * g->nr >= tm * g->mr || tm == 1))
            tn = an_div_up(tn, 2);
        else
            tm = an_div_up(tm, 2);
    }
    job->tile_m_panels = tm;
    job->tile_n_panels = tn;
    job->tiles_m = an_div_up(g->m_panels, tm);
    job->tiles_n = an_div_up(length, tn);
}

static void an_conv_tile_mode(an_backend_context *context, an_conv_job *job, size_t image)
{
    const an_conv_geometry *g = &job->g;
    job->image = image;
    /* bordered by the pool too: at batch 1 a serial copy (conv1's is phase-split) would idle the others */
    job->bordering = an_conv_border_slack(g, job->scratch);
    job->padded = job->bordering;
    const size_t rows = g->layout_rows;
    job->border_rows = an_div_up(rows, AN_CONV_TILES_PER_THREAD * context->slot_count);
    an_threadpool_run(context->pool, an_conv_border_task, job, an_div_up(rows, job->border_rows));
    for (size_t begin = 0; begin < g->n_panels; begin += g->chunk_panels) {
        job->chunk_begin = begin;
        job->chunk_end = an_min(begin + g->chunk_panels, g->n_panels);
        const size_t length = job->chunk_end - begin;
        an_conv_choose_tiles(job, length, AN_CONV_TILES_PER_THREAD * context->slot_count);
        if (job->tiles_m == 1) { /* each tile packs its own panels (an_conv_pack_tile_task) */
            an_threadpool_run(context->pool, an_conv_pack_tile_task, job, g->groups * job->tiles_n);
            continue;
        }
        an_threadpool_run(context->pool, an_conv_pack_task, job, g->groups * length);
        an_threadpool_run(context->pool, an_conv_tile_task, job, g->groups * job->tiles_m * job->tiles_n);
    }
}

/* Blocks of at most `limit` panels, as equal as possible (no lone panel left over at the end). */
static size_t an_conv_balanced_block(size_t panels, size_t limit)
{
    limit = limit < 1 ? 1 : limit;
    return an_div_up(panels, an_div_up(panels, limit));
}

alexnet_status an_cpu_conv2d(an_backend_context *context, const an_conv_desc *desc, const float *in,
                             const float *packed, float *out)
{
    an_conv_job job;
    memset(&job, 0, sizeof job);
    job.kernels = context->kernels;
    job.desc = desc;
    an_conv_geometry_init(&job.g, desc, context->kernels);
    const an_conv_geometry *g = &job.g;
    const size_t threads = context->slot_count;
    /* image mode needs a slot per task, tile mode only slot 0 */
    const size_t image_mode_images = threads == 1 ? desc->batch : desc->batch - desc->batch % threads;
    const size_t slots_needed = image_mode_images > 0 ? threads : 1;
    if (g->slot_floats > context->slot_floats || slots_needed > context->prepared_slots)
        return an_error(ALEXNET_E_STATE, "conv2d: scratch for this shape was not prepared (%zu floats x %zu slots "
                                         "needed, %zu x %zu prepared)",
                        g->slot_floats, slots_needed, context->slot_floats, context->prepared_slots);
    job.in = in;
    job.packed = packed;
    job.out = out;
    job.scratch = context->scratch;
    job.slot_floats = context->slot_floats;
    job.nc_panels = an_conv_balanced_block(g->n_panels, AN_CONV_B_BLOCK_BYTES / (g->kc * g->nr * sizeof(float)));
    job.mc_panels = an_conv_balanced_block(g->m_panels, AN_CONV_A_BLOCK_BYTES / (g->kc * g->mr * sizeof(float)));
    /* image mode packs one N block at a time: it must fit the slot (bounded by chunk_panels) */
    job.nc_panels = an_min(job.nc_panels, g->chunk_panels);

    if (image_mode_images > 0) {
        atomic_init(&job.next_image, 0);
        job.image_end = image_mode_images;
        an_threadpool_run(context->pool, an_conv_image_task, &job, threads);
    }
    for (size_t image = image_mode_images; image < desc->batch; image++)
        an_conv_tile_mode(context, &job, image);
    return ALEXNET_OK;
}
