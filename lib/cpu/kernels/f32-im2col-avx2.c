/* im2col panel packing, AVX2, for panels of NR = 8, 16, 24 or 32 pixels (the AVX2 and AVX-512 tiles).
 *
 * Contiguous runs: at stride 1 (every AlexNet layer after the first) a run of pixels reads consecutive
 * floats, and so it does at any stride from the phase-split image the driver makes for strided
 * convolutions (conv1: 11x11 stride 4; kernels.h), where tap kx of a run reads phase row kx mod stride from
 * index kx / stride on. So each 8-column chunk of a packed row is the OR of one load per run piece that
 * falls in the chunk, ANDed with the piece's lane mask (other lanes become +0.0, all-zero bits; they read
 * at most 7 floats before or after the run, within the bordered image's lead and tail slack, kernels.h);
 * precomputed per panel, the pieces turn each row into a handful of loads and aligned stores, with no
 * per-element bounds logic and no shuffles. (Not vmaskmovps: on Zen 3 its loads cost several times a plain
 * load, which doubled the packing time of the panels that span two output rows.) The per-row copy is written out, not looped over the chunks: a plain copy loop is what gcc -O3
 * replaces by a memcpy call, which cost more than the copy itself (a call and vzeroupper per 64 bytes).
 *
 * Plain rows at another stride go to the portable kernel (the driver never asks for them). */
#include <immintrin.h>

#include "cpu/kernels/kernels-avx2.h"
#include "cpu/kernels/kernels-scalar.h"

#define AN_MAX_NR 32
#define AN_MAX_PIECES (AN_IM2COL_MAX_RUNS + AN_MAX_NR / 8)

/* The part of one run inside one 8-column chunk: lane l of the chunk reads base + offset + l. */
typedef struct an_piece {
    ptrdiff_t offset;
    __m256 mask; /* all ones in lanes [low, high) */
    size_t chunk, run;
} an_piece;

static __m256i an_lane_range_mask(size_t low, size_t high) /* lanes [low, high) */
{
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_and_si256(_mm256_cmpgt_epi32(lane, _mm256_set1_epi32((int)low - 1)),
                            _mm256_cmpgt_epi32(_mm256_set1_epi32((int)high), lane));
}

/* Pieces in chunk order (runs come in column order); `offset` is relative to the run's first input
 * element minus its first column, as a stride-1 run needs. */
static size_t an_make_pieces(const an_im2col_panel *p, an_piece *pieces)
{
    size_t count = 0;
    for (size_t r = 0; r < p->runs; r++) {
        const size_t j0 = p->run_column[r], j1 = j0 + p->run_length[r];
        for (size_t q = j0 / 8; q * 8 < j1; q++) {
            size_t low = j0 > q * 8 ? j0 - q * 8 : 0, high = j1 < q * 8 + 8 ? j1 - q * 8 : 8;
            pieces[count].offset = (ptrdiff_t)p->run_offset[r] - (ptrdiff_t)j0 + (ptrdiff_t)(q * 8);
            pieces[count].mask = _mm256_castsi256_ps(an_lane_range_mask(low, high));
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
    const size_t count = an_make_pieces(p, pieces), chunks = nr / 8, ks = p->kernel_size, stride = p->stride;
    const int phased = p->phase_floats != 0;
    size_t first[AN_MAX_NR / 8 + 1], piece = 0;
    for (size_t q = 0; q <= chunks; q++) {
        while (piece < count && pieces[piece].chunk < q)
            piece++;
        first[q] = piece;
    }
    const int full = p->runs == 1 && p->columns == nr;
    const float *channel = p->image;
    float *row = dst;
    for (size_t c = 0; c < p->channels; c++, channel += p->plane_floats) {
        for (size_t ky = 0; ky < ks; ky++) {
            /* tap kx's column: kx, or index kx / stride of phase row kx % stride (counted, not divided) */
            size_t phase = 0, column = 0;
            for (size_t kx = 0; kx < ks; kx++, row += nr) {
                const float *tap = channel + ky * p->row_floats + column;
                if (!phased)
                    column++;
                else if (++phase < stride)
                    column += p->phase_floats;
                else
                    phase = 0, column += 1 - (stride - 1) * p->phase_floats;
                if (full) { /* one run over the whole panel: plain loads, written out (see the top) */
                    const float *src = tap + pieces[0].offset;
                    _mm256_store_ps(row, _mm256_loadu_ps(src));
                    if (chunks > 1)
                        _mm256_store_ps(row + 8, _mm256_loadu_ps(src + 8));
                    if (chunks > 2)
                        _mm256_store_ps(row + 16, _mm256_loadu_ps(src + 16));
                    if (chunks > 3)
                        _mm256_store_ps(row + 24, _mm256_loadu_ps(src + 24));
                    continue;
                }
                for (size_t q = 0; q < chunks; q++) {
                    __m256 v = _mm256_setzero_ps();
                    for (size_t i = first[q]; i < first[q + 1]; i++)
                        v = _mm256_or_ps(v, _mm256_and_ps(_mm256_loadu_ps(tap + pieces[i].offset), pieces[i].mask));
                    _mm256_store_ps(row + 8 * q, v);
                }
            }
        }
    }
}

void an_f32_im2col_avx2(const an_im2col_panel *p, size_t nr, float *dst)
{
    if (nr % 8 != 0 || nr > AN_MAX_NR || (p->stride != 1 && p->phase_floats == 0)) {
        an_f32_im2col_scalar(p, nr, dst);
        return;
    }
    an_im2col_contiguous(p, nr, dst);
}
