/* im2col panel packing, AVX-512F, for panels of NR = 16 or 32 pixels (the AVX-512 tile is 32 wide).
 *
 * The AVX2 kernel's scheme (f32-im2col-avx2.c) in 16-lane chunks: a run of pixels reads consecutive floats
 * (at stride 1, and at any stride from the phase-split image of strided convolutions, kernels.h), so each
 * 16-column chunk of a packed row is one load per run piece that falls in the chunk. Here each piece is a
 * zero-masked load (vmovups zmm{k}{z}: masked-off lanes are +0.0 and are not read) ORed into the chunk,
 * where AVX2 needs a load, an AND with the lane mask and an OR per piece and twice the chunks: a 32-pixel
 * panel over two output rows is 2 to 3 masked loads and 2 stores a row of K instead of 4 to 6 loads, as
 * many ANDs and ORs, and 4 stores. (Merge-masked loads into one register would chain each piece's load
 * behind the previous one; the ORs keep the loads independent.) The pieces are precomputed per panel, so
 * rows carry no bounds logic. On Zen 5 the packing was 14% of conv1's time and 9% of conv2's with the AVX2
 * kernel; this one takes ~2-3% off both layers (batch 1, 1 thread: conv2 2.09 -> 2.04 ms), the rest being
 * the stores of the packed panel. A single run over the whole panel (the usual case at stride 1 with wide rows) is two plain
 * copies a row, written out (a copy loop is what gcc -O3 turns into a memcpy call, dearer than the copy).
 *
 * Other panel widths and plain rows at stride > 1 (the driver asks for neither) go to the AVX2 kernel. */
#include <immintrin.h>

#include "cpu/kernels/kernels-avx2.h"
#include "cpu/kernels/kernels-avx512.h"

#define AN_MAX_NR 32
#define AN_MAX_PIECES (AN_IM2COL_MAX_RUNS + AN_MAX_NR / 16)

/* The part of one run inside one 16-column chunk: lane l of the chunk reads base + offset + l. */
typedef struct an_piece16 {
    ptrdiff_t offset;
    __mmask16 mask; /* lanes [low, high) */
    size_t chunk;
} an_piece16;

/* Pieces in chunk order (runs come in column order). */
static size_t an_make_pieces16(const an_im2col_panel *p, an_piece16 *pieces)
{
    size_t count = 0;
    for (size_t r = 0; r < p->runs; r++) {
        const size_t j0 = p->run_column[r], j1 = j0 + p->run_length[r];
        for (size_t q = j0 / 16; q * 16 < j1; q++) {
            const size_t low = j0 > q * 16 ? j0 - q * 16 : 0, high = j1 < q * 16 + 16 ? j1 - q * 16 : 16;
            pieces[count].offset = (ptrdiff_t)p->run_offset[r] - (ptrdiff_t)j0 + (ptrdiff_t)(q * 16);
            pieces[count].mask = (__mmask16)(((1u << high) - 1u) & ~((1u << low) - 1u));
            pieces[count].chunk = q;
            count++;
        }
    }
    return count;
}

static void an_im2col_contiguous16(const an_im2col_panel *p, size_t nr, float *dst)
{
    an_piece16 pieces[AN_MAX_PIECES];
    const size_t count = an_make_pieces16(p, pieces), chunks = nr / 16, ks = p->kernel_size, stride = p->stride;
    const int phased = p->phase_floats != 0;
    size_t first[AN_MAX_NR / 16 + 1], piece = 0;
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
                    _mm512_storeu_ps(row, _mm512_loadu_ps(src));
                    if (chunks > 1)
                        _mm512_storeu_ps(row + 16, _mm512_loadu_ps(src + 16));
                    continue;
                }
                for (size_t q = 0; q < chunks; q++) {
                    __m512 v = _mm512_setzero_ps();
                    for (size_t i = first[q]; i < first[q + 1]; i++) /* independent loads, then ORs */
                        v = _mm512_or_ps(v, _mm512_maskz_loadu_ps(pieces[i].mask, tap + pieces[i].offset));
                    _mm512_storeu_ps(row + 16 * q, v);
                }
            }
        }
    }
}

void an_f32_im2col_avx512(const an_im2col_panel *p, size_t nr, float *dst)
{
    if (nr % 16 != 0 || nr > AN_MAX_NR || (p->stride != 1 && p->phase_floats == 0)) {
        an_f32_im2col_avx2(p, nr, dst);
        return;
    }
    an_im2col_contiguous16(p, nr, dst);
}
