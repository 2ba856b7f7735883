/* im2col panel packing, AVX2, for panels of NR = 8, 16, 24 or 32 pixels (the AVX2 and AVX-512 tiles).
 *
 * Stride 1 (every AlexNet layer after the first): a run of pixels reads consecutive floats, so each
 * 8-column chunk of a packed row is the OR of one masked load per run piece that falls in the chunk
 * (masked-off lanes read as +0.0, all-zero bits); precomputed per panel, the pieces turn each row into a
 * handful of loads and two aligned stores, with no per-element bounds logic.
 *
 * Stride 4 (conv1, 11x11): for one (c, ky) the taps kx and kx + 4 of a pixel are the same input sequence
 * shifted by one pixel, so the row segment a run reads is split once into its 4 phases
 * P_q[t] = S[4t + q] (a 4 x 4 transpose per 128-bit lane and a lane-order permute per 32 floats), and the
 * packed row of tap kx is P_{kx mod 4} from index kx / 4 on: an unaligned load per 8 columns.
 *
 * Other strides go to the portable kernel. Reads stay within the bordered image's lead and tail slack
 * (kernels.h): the phase split reads up to 4 x (NR + 16) floats from a run's first element. */
#include <immintrin.h>

#include "cpu/kernels/kernels-avx2.h"
#include "cpu/kernels/kernels-scalar.h"

#define AN_MAX_NR 32
#define AN_MAX_PIECES (AN_IM2COL_MAX_RUNS + AN_MAX_NR / 8)

/* The part of one run inside one 8-column chunk: lane l of the chunk reads base + offset + l. */
typedef struct an_piece {
    ptrdiff_t offset;
    __m256i mask;
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
    const size_t count = an_make_pieces(p, pieces), chunks = nr / 8, ks = p->kernel_size;
    size_t first[AN_MAX_NR / 8 + 1], piece = 0;
    for (size_t q = 0; q <= chunks; q++) {
        while (piece < count && pieces[piece].chunk < q)
            piece++;
        first[q] = piece;
    }
    const float *channel = p->image;
    float *row = dst;
    for (size_t c = 0; c < p->channels; c++, channel += p->plane_floats) {
        for (size_t ky = 0; ky < ks; ky++) {
            for (size_t kx = 0; kx < ks; kx++, row += nr) {
                const float *tap = channel + ky * p->row_floats + kx;
                for (size_t q = 0; q < chunks; q++) {
                    __m256 v = _mm256_setzero_ps();
                    for (size_t i = first[q]; i < first[q + 1]; i++)
                        v = _mm256_or_ps(v, _mm256_maskload_ps(tap + pieces[i].offset, pieces[i].mask));
                    _mm256_store_ps(row + 8 * q, v);
                }
            }
        }
    }
}

/* P_q[t] = s[4t + q] for t in [0, 8 * groups): groups of 32 input floats. */
static void an_split_phases(const float *s, size_t groups, float *p0, float *p1, float *p2, float *p3)
{
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (size_t g = 0; g < groups; g++, s += 32) {
        __m256 a = _mm256_loadu_ps(s), b = _mm256_loadu_ps(s + 8), c = _mm256_loadu_ps(s + 16),
               d = _mm256_loadu_ps(s + 24);
        __m256 t0 = _mm256_unpacklo_ps(a, b), t1 = _mm256_unpackhi_ps(a, b);
        __m256 t2 = _mm256_unpacklo_ps(c, d), t3 = _mm256_unpackhi_ps(c, d);
        /* per 128-bit lane: q0 = a0 b0 c0 d0 | a4 b4 c4 d4 = s[0 + {0, 8, 16, 24 | 4, 12, 20, 28}] */
        __m256 q0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0));
        __m256 q1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
        __m256 q2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0));
        __m256 q3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
        _mm256_store_ps(p0 + 8 * g, _mm256_permutevar8x32_ps(q0, order));
        _mm256_store_ps(p1 + 8 * g, _mm256_permutevar8x32_ps(q1, order));
        _mm256_store_ps(p2 + 8 * g, _mm256_permutevar8x32_ps(q2, order));
        _mm256_store_ps(p3 + 8 * g, _mm256_permutevar8x32_ps(q3, order));
    }
}

/* Phase arrays hold their data from index AN_PHASE_LEAD on, so a run's load at column chunk 8q for a
 * run starting at column j0 (index kx / 4 + 8q - j0 >= -(NR - 1)) stays inside the array. */
#define AN_PHASE_LEAD 32
#define AN_PHASE_FLOATS (AN_PHASE_LEAD + AN_MAX_NR + 16 + 8)

static void an_im2col_stride4(const an_im2col_panel *p, size_t nr, float *dst)
{
    an_piece pieces[AN_MAX_PIECES];
    const size_t count = an_make_pieces(p, pieces), chunks = nr / 8, ks = p->kernel_size;
    const int full = p->runs == 1 && p->columns == nr; /* one run over the whole panel: plain loads */
    _Alignas(32) float phase[4][AN_PHASE_FLOATS];
    const float *channel = p->image;
    float *rows = dst;
    for (size_t c = 0; c < p->channels; c++, channel += p->plane_floats) {
        for (size_t ky = 0; ky < ks; ky++, rows += ks * nr) {
            const float *line = channel + ky * p->row_floats;
            if (!full)
                for (size_t i = 0; i < ks * nr; i += 8)
                    _mm256_store_ps(rows + i, _mm256_setzero_ps());
            for (size_t r = 0, i = 0; r < p->runs; r++) {
                /* phases t < run length + (ks - 1) / 4 */
                size_t groups = (p->run_length[r] + (ks - 1) / 4 + 7) / 8;
                an_split_phases(line + p->run_offset[r], groups, phase[0] + AN_PHASE_LEAD, phase[1] + AN_PHASE_LEAD,
                                phase[2] + AN_PHASE_LEAD, phase[3] + AN_PHASE_LEAD);
                size_t end = i;
                while (end < count && pieces[end].run == r)
                    end++;
                for (size_t kx = 0; kx < ks; kx++) {
                    const float *src = phase[kx & 3] + AN_PHASE_LEAD + kx / 4 - p->run_column[r];
                    float *row = rows + kx * nr;
                    if (full) {
                        for (size_t q = 0; q < chunks; q++)
                            _mm256_store_ps(row + 8 * q, _mm256_loadu_ps(src + 8 * q));
                        continue;
                    }
                    for (size_t k = i; k < end; k++) {
                        float *out = row + 8 * pieces[k].chunk;
                        __m256 v = _mm256_maskload_ps(src + 8 * pieces[k].chunk, pieces[k].mask);
                        _mm256_store_ps(out, _mm256_or_ps(_mm256_load_ps(out), v));
                    }
                }
                i = end;
            }
        }
    }
}

void an_f32_im2col_avx2(const an_im2col_panel *p, size_t nr, float *dst)
{
    if (nr % 8 != 0 || nr > AN_MAX_NR || (p->stride != 1 && p->stride != 4) ||
        (p->stride == 4 && (p->kernel_size - 1) / 4 > 16)) {
        an_f32_im2col_scalar(p, nr, dst);
        return;
    }
    if (p->stride == 1)
        an_im2col_stride1(p, nr, dst);
    else
        an_im2col_stride4(p, nr, dst);
}
