/* Convolution on the CPU backend (all but 3x3 stride 1, which cpu_winograd.c does): grouped GEMMs over
 * packed weights and packed im2col.
 *
 * Per image and group, C[M][N] = A[M][K] B[K][N] + bias (M output channels, K = input channels x k x k,
 * N output pixels; C is the NCHW output itself, row stride N). A is packed once, at weights_create, into
 * panels of MR output channels with the biases in front (kernels.h). B, the im2col of one image, is
 * packed straight into panels of NR pixels (by the ISA's im2col kernel) from a zero-bordered copy of the
 * image, so the packer needs no bounds checks: for a fixed tap (c, ky, kx) each run of pixels in one
 * output row reads the bordered plane at a constant stride.
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
 *   tile mode (the last batch % W images, so batch 1): the image is bordered on the calling thread, then
 *     one parallel pass packs B panels, and one computes tiles of (group, M panels, N panels) sized so
 *     there are several tiles per thread.
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

static size_t an_div_up(size_t a, size_t b) { return (a + b - 1) / b; }
static size_t an_min(size_t a, size_t b) { return a < b ? a : b; }
static size_t an_round_up(size_t a, size_t b) { return an_div_up(a, b) * b; }

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
    g->b_panel_floats = an_round_up(g->k * g->nr, 16); /* keeps every panel 64-byte aligned */
    g->padded_height = (size_t)d->in_height + 2 * (size_t)d->padding;
    g->padded_width = (size_t)d->in_width + 2 * (size_t)d->padding;
    /* lead slack, the bordered image, tail slack (what the im2col kernels may read around it) */
    g->padded_floats = an_round_up(AN_IM2COL_LEAD_FLOATS +
                                       (size_t)d->in_channels * g->padded_height * g->padded_width +
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

/* The image (all channels) with its zero border, after AN_IM2COL_LEAD_FLOATS of slack in `slot` and followed
 * by the tail slack (zeroed too, so that nothing reads memory another thread is writing). Returns the
 * bordered image's first float. */
static const float *an_conv_border_image(const an_conv_desc *d, const an_conv_geometry *g, const float *image,
                                         float *slot)
{
    const size_t pw = g->padded_width, pad = d->padding, w = d->in_width;
    float *bordered = slot + AN_IM2COL_LEAD_FLOATS;
    memset(slot, 0, AN_IM2COL_LEAD_FLOATS * sizeof *slot);
    for (size_t c = 0; c < d->in_channels; c++) {
        float *plane = bordered + c * g->padded_height * pw;
        const float *src = image + c * (size_t)d->in_height * w;
        memset(plane, 0, pad * pw * sizeof *plane);
        for (size_t y = 0; y < d->in_height; y++) {
            float *row = plane + (pad + y) * pw;
            memset(row, 0, pad * sizeof *row);
            memcpy(row + pad, src + y * w, w * sizeof *row);
            memset(row + pad + w, 0, pad * sizeof *row);
        }
        memset(plane + (pad + d->in_height) * pw, 0, pad * pw * sizeof *plane);
    }
    float *tail = bordered + (size_t)d->in_channels * g->padded_height * pw;
    memset(tail, 0, (size_t)(slot + g->padded_floats - tail) * sizeof *tail);
    return bordered;
}

/* One K x NR panel of im2col: pixels [jp * NR, jp * NR + NR) of group `group`, from the bordered image,
 * through the ISA's packer; here only the panel's runs of pixels within one output row are worked out. */
static void an_conv_pack_panel(const an_cpu_kernels *kernels, const an_conv_desc *d, const an_conv_geometry *g,
                               const float *bordered, size_t group, size_t jp, float *dst)
{
    const size_t nr = g->nr, stride = d->stride, ow = d->out_width, pw = g->padded_width;
    const size_t p0 = jp * nr, count = an_min(nr, g->n - p0);
    an_im2col_panel panel;
    panel.channels = d->in_channels / d->groups;
    panel.plane_floats = g->padded_height * pw;
    panel.image = bordered + group * panel.channels * panel.plane_floats;
    panel.kernel_size = d->kernel_size;
    panel.stride = stride;
    panel.row_floats = pw;
    panel.columns = count;
    panel.runs = 0;
    for (size_t j = 0; j < count;) {
        size_t p = p0 + j, oy = p / ow, ox = p % ow, length = an_min(count - j, ow - ox);
        panel.run_column[panel.runs] = j;
        panel.run_length[panel.runs] = length;
        panel.run_offset[panel.runs] = oy * stride * pw + ox * stride;
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
    /* tile mode: the image, the chunk [chunk_begin, chunk_end) of N panels, the tiling */
    size_t image;
    const float *padded;
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
                    const float *b = b_group + (jp - chunk_begin) * g->b_panel_floats + pc * g->nr;
                    const size_t n = an_min(g->nr, g->n - jp * g->nr);
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
    job->padded = an_conv_bordered(job, image, job->scratch);
    for (size_t begin = 0; begin < g->n_panels; begin += g->chunk_panels) {
        job->chunk_begin = begin;
        job->chunk_end = an_min(begin + g->chunk_panels, g->n_panels);
        const size_t length = job->chunk_end - begin;
        an_threadpool_run(context->pool, an_conv_pack_task, job, g->groups * length);
        an_conv_choose_tiles(job, length, AN_CONV_TILES_PER_THREAD * context->slot_count);
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
