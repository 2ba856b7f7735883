/* im2col panel packing, NEON, for panels whose NR is a multiple of 4 up to 32 (the NEON tile's 12, and the
 * 8, 16, 24 and 32 the kernel tests also ask for).
 *
 * Stride 1 (every AlexNet layer after the first): a run of pixels reads consecutive floats, so each 4-column
 * chunk of a packed row is assembled from one full-width load per run piece that falls in the chunk, merged
 * under a lane mask (BSL) into zeros. The pieces (offset, mask, chunk) are worked out once per panel, which
 * turns every packed row into a few loads, selects and one store per chunk, with no per-element bounds logic.
 * Lanes outside a piece read up to 3 floats before or after their run, which the bordered image's lead and
 * tail slack (kernels.h) allows; the select discards them.
 *
 * Stride 4 (conv1, 11x11): for one (c, ky) the taps kx and kx + 4 of a pixel are the same input sequence
 * shifted by one pixel, so the row segment a run reads is split once into its 4 phases P_q[t] = S[4t + q]
 * with LD4 (a de-interleaving load: 16 floats into 4 phase vectors), and the packed row of tap kx is
 * P_{kx mod 4} from index kx / 4 on, merged in per piece as above. That reads up to 15 floats past the
 * last input a run needs, within the tail slack.
 *
 * Other strides and panel widths go to the portable kernel. */
#include <arm_neon.h>

#include "cpu/kernels/kernels-neon.h"
#include "cpu/kernels/kernels-scalar.h"

#define AN_MAX_NR 32
#define AN_MAX_PIECES (AN_IM2COL_MAX_RUNS + AN_MAX_NR / 4)
/* The stride-4 path splits kernels up to 4 * 16 + 1 wide into phases (conv1 is 11). */
#define AN_MAX_PHASE_SHIFT 16

/* The part of one run inside one 4-column chunk: lane l of the chunk reads base + offset + l. */
typedef struct an_piece {
    ptrdiff_t offset;
    uint32x4_t mask;
    size_t chunk, run;
} an_piece;

static uint32x4_t an_lane_range_mask(size_t low, size_t high) /* lanes [low, high) */
{
    static const uint32_t lanes[4] = {0, 1, 2, 3};
    const uint32x4_t lane = vld1q_u32(lanes);
    return vandq_u32(vcgeq_u32(lane, vdupq_n_u32((uint32_t)low)), vcltq_u32(lane, vdupq_n_u32((uint32_t)high)));
}

/* Pieces in chunk order (runs come in column order); `offset` is relative to the run's first input element
 * minus its first column, as a stride-1 run needs. */
static size_t an_make_pieces(const an_im2col_panel *p, an_piece *pieces)
{
    size_t count = 0;
    for (size_t r = 0; r < p->runs; r++) {
        const size_t j0 = p->run_column[r], j1 = j0 + p->run_length[r];
        for (size_t q = j0 / 4; q * 4 < j1; q++) {
            const size_t low = j0 > q * 4 ? j0 - q * 4 : 0, high = j1 < q * 4 + 4 ? j1 - q * 4 : 4;
            pieces[count].offset = (ptrdiff_t)p->run_offset[r] - (ptrdiff_t)j0 + (ptrdiff_t)(q * 4);
            pieces[count].mask = an_lane_range_mask(low, high);
            pieces[count].chunk = q;
            pieces[count].run = r;
            count++;
        }
    }
    return count;
}

static void an_im2col_stride1(const an_im2col_panel *p, size_t nr, float *dst)
{
    an_piece pieces[AN_MAX_PIECES];
    const size_t count = an_make_pieces(p, pieces), chunks = nr / 4, ks = p->kernel_size;
    size_t first[AN_MAX_NR / 4 + 1], piece = 0;
    for (size_t q = 0; q <= chunks; q++) {
        while (piece < count && pieces[piece].chunk < q)
            piece++;
        first[q] = piece;
    }
    const float32x4_t zero = vdupq_n_f32(0.0f);
    const float *channel = p->image;
    float *row = dst;
    for (size_t c = 0; c < p->channels; c++, channel += p->plane_floats) {
        for (size_t ky = 0; ky < ks; ky++) {
            for (size_t kx = 0; kx < ks; kx++, row += nr) {
                const float *tap = channel + ky * p->row_floats + kx;
                for (size_t q = 0; q < chunks; q++) {
                    float32x4_t v = zero;
                    for (size_t i = first[q]; i < first[q + 1]; i++)
                        v = vbslq_f32(pieces[i].mask, vld1q_f32(tap + pieces[i].offset), v);
                    vst1q_f32(row + 4 * q, v);
                }
            }
        }
    }
}

/* Phase arrays hold their data from index AN_PHASE_LEAD on: a piece's load for a run starting at column j0
 * reads indices kx / 4 - j0 + 4q + l >= -3 and < kx / 4 + run length + 3. */
#define AN_PHASE_LEAD 4
#define AN_PHASE_FLOATS (AN_PHASE_LEAD + AN_MAX_NR + AN_MAX_PHASE_SHIFT + 8)

/* P_q[t] = s[4t + q] for t in [0, 4 * groups): groups of 16 input floats. */
static void an_split_phases(const float *s, size_t groups, float *const phase[4])
{
    for (size_t g = 0; g < groups; g++) {
        const float32x4x4_t v = vld4q_f32(s + 16 * g);
        vst1q_f32(phase[0] + 4 * g, v.val[0]);
        vst1q_f32(phase[1] + 4 * g, v.val[1]);
        vst1q_f32(phase[2] + 4 * g, v.val[2]);
        vst1q_f32(phase[3] + 4 * g, v.val[3]);
    }
}

static void an_im2col_stride4(const an_im2col_panel *p, size_t nr, float *dst)
{
    an_piece pieces[AN_MAX_PIECES];
    const size_t count = an_make_pieces(p, pieces), ks = p->kernel_size;
    /* zeroed so that lanes a select discards never read indeterminate values */
    float phase_data[4][AN_PHASE_FLOATS] = {{0}};
    float *const phase[4] = {phase_data[0] + AN_PHASE_LEAD, phase_data[1] + AN_PHASE_LEAD,
                             phase_data[2] + AN_PHASE_LEAD, phase_data[3] + AN_PHASE_LEAD};
    const float32x4_t zero = vdupq_n_f32(0.0f);
    const float *channel = p->image;
    float *rows = dst;
    for (size_t c = 0; c < p->channels; c++, channel += p->plane_floats) {
        for (size_t ky = 0; ky < ks; ky++, rows += ks * nr) {
            const float *line = channel + ky * p->row_floats;
            for (size_t i = 0; i < ks * nr; i += 4)
                vst1q_f32(rows + i, zero);
            for (size_t r = 0, i = 0; r < p->runs; r++) {
                /* phases t < run length + (ks - 1) / 4 */
                const size_t groups = (p->run_length[r] + (ks - 1) / 4 + 3) / 4;
                an_split_phases(line + p->run_offset[r], groups, phase);
                size_t end = i;
                while (end < count && pieces[end].run == r)
                    end++;
                for (size_t kx = 0; kx < ks; kx++) {
                    const float *src = phase[kx & 3] + kx / 4 - p->run_column[r];
                    float *row = rows + kx * nr;
                    for (size_t k = i; k < end; k++) {
                        float *out = row + 4 * pieces[k].chunk;
                        vst1q_f32(out, vbslq_f32(pieces[k].mask, vld1q_f32(src + 4 * pieces[k].chunk), vld1q_f32(out)));
                    }
                }
                i = end;
            }
        }
    }
}

void an_f32_im2col_neon(const an_im2col_panel *p, size_t nr, float *dst)
{
    if (nr % 4 != 0 || nr > AN_MAX_NR || (p->stride != 1 && p->stride != 4) ||
        (p->stride == 4 && (p->kernel_size - 1) / 4 > AN_MAX_PHASE_SHIFT)) {
        an_f32_im2col_scalar(p, nr, dst);
        return;
    }
    if (p->stride == 1)
        an_im2col_stride1(p, nr, dst);
    else
        an_im2col_stride4(p, nr, dst);
}
