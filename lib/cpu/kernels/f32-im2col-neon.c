/* im2col panel packing, NEON, for panels whose NR is a multiple of 4 up to 32 (the NEON tile's 12, and the
 * 8, 16, 24 and 32 the kernel tests also ask for).
 *
 * Contiguous runs: at stride 1 (every AlexNet layer after the first) a run of pixels reads consecutive floats,
 * and so it does at any stride from the phase-split image the driver makes for strided convolutions (conv1:
 * 11x11 stride 4; kernels.h), where tap kx of a run reads phase row kx mod stride from index kx / stride on.
 * So each 4-column chunk of a packed row is assembled from one full-width load per run piece that falls in
 * the chunk, merged under a lane mask (BSL) into zeros. The pieces (offset, mask, chunk) are worked out once
 * per panel, which turns every packed row into a few loads, selects and one store per chunk, with no
 * per-element bounds logic. Lanes outside a piece read up to 3 floats before or after their run, which the
 * bordered image's lead and tail slack (kernels.h) allows; the select discards them.
 *
 * Plain rows at another stride, and other panel widths, go to the portable kernel (the driver never asks
 * for plain strided rows). */
#include <arm_neon.h>

#include "cpu/kernels/kernels-neon.h"
#include "cpu/kernels/kernels-scalar.h"

#define AN_MAX_NR 32
#define AN_MAX_PIECES (AN_IM2COL_MAX_RUNS + AN_MAX_NR / 4)

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

/* Stride 1, or any stride from the phase-split image. */
static void an_im2col_contiguous(const an_im2col_panel *p, size_t nr, float *dst)
{
    an_piece pieces[AN_MAX_PIECES];
    const size_t count = an_make_pieces(p, pieces), chunks = nr / 4, ks = p->kernel_size, stride = p->stride;
    const int phased = p->phase_floats != 0;
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
                const size_t column = phased ? kx % stride * p->phase_floats + kx / stride : kx;
                const float *tap = channel + ky * p->row_floats + column;
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

void an_f32_im2col_neon(const an_im2col_panel *p, size_t nr, float *dst)
{
    if (nr % 4 != 0 || nr > AN_MAX_NR || (p->stride != 1 && p->phase_floats == 0)) {
        an_f32_im2col_scalar(p, nr, dst);
        return;
    }
    an_im2col_contiguous(p, nr, dst);
}
