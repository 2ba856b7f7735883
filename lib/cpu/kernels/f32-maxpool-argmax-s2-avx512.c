/* Max pooling backward's winner search, AVX-512, stride-2 windows (AlexNet's 3x3 / 2 pools): for the outputs
 * of `rows` rows from oy0, the plane offset of the input each window's maximum came from.
 *
 * The portable scan in cpu_train.c reads every second input per tap, a strided access the compiler does not
 * vectorise; it was a tenth of a Fashion-MNIST training step. Here 16 outputs go at once: per tap, two
 * masked loads and one two-source permute that picks their even elements. Rows of up to 8 outputs (the
 * 6- and 2-wide pooled maps) go two to a vector, the second row's inputs in the permute's second source;
 * longer rows take 16 consecutive outputs, the second source being the next 16 inputs. The comparisons are
 * the scan's, in its (ky, kx) order (strictly greater replaces, so the first of equal maxima wins; a NaN
 * always replaces), so the winners, and the bits of the gradient, are the same. Masked-off elements are
 * neither read nor able to fault, and lanes past a row's end are not stored. */
#include <immintrin.h>

#include "cpu/kernels/kernels-avx512.h"

static inline __mmask16 an_low_bits(size_t n) { return (__mmask16)(n >= 16 ? 0xffffu : (1u << n) - 1u); }

/* One vector: lanes 0..7 read inputs 2l of `lo` (from each tap's first input), lanes 8..15 inputs 2(l - 8)
 * of `hi` = lo + hi_offset; `lanes` holds each lane's offset from the tap, `corner` is the first tap. */
static inline __m512i an_argmax16(const float *plane, size_t w, size_t ks, size_t corner, size_t hi_offset,
                                  __mmask16 lo_mask, __mmask16 hi_mask, __m512i lanes)
{
    const __m512i twice = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    __m512 best = _mm512_set1_ps(-__builtin_inff());
    __m512i where = _mm512_add_epi32(_mm512_set1_epi32((int)corner), lanes);
    for (size_t ky = 0; ky < ks; ky++) {
        for (size_t kx = 0; kx < ks; kx++) {
            const size_t tap = corner + ky * w + kx;
            const float *v = plane + tap;
            const __m512 lo = _mm512_maskz_loadu_ps(lo_mask, v), hi = _mm512_maskz_loadu_ps(hi_mask, v + hi_offset);
            const __m512 x = _mm512_permutex2var_ps(lo, twice, hi);
            const __mmask16 take = _mm512_cmp_ps_mask(x, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
            best = _mm512_mask_mov_ps(best, take, x);
            where = _mm512_mask_mov_epi32(where, take, _mm512_add_epi32(_mm512_set1_epi32((int)tap), lanes));
        }
    }
    return where;
}

void an_f32_maxpool_argmax_s2_avx512(const an_pool_desc *d, const float *plane, size_t oy0, size_t rows,
                                     uint32_t *at)
{
    const size_t w = d->in_width, ks = d->kernel_size, ow = d->out_width;
    if (ow == 0)
        return;
    if (ow <= 8) {
        /* inputs 0 .. 2ow - 2 of each tap's run in each row; the pair's second row starts 2 rows down */
        const __mmask16 row_mask = an_low_bits(2 * ow - 1), out_mask = an_low_bits(ow);
        const __m512i lanes = _mm512_add_epi32(
            _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14),
            _mm512_mask_set1_epi32(_mm512_setzero_si512(), 0xff00, (int)(2 * w)));
        for (size_t r = 0; r < rows; r += 2) {
            const int pair = r + 1 < rows;
            const __m512i where = an_argmax16(plane, w, ks, (oy0 + r) * 2 * w, 2 * w, row_mask,
                                              pair ? row_mask : 0, lanes);
            _mm512_mask_storeu_epi32(at + r * ow, out_mask, where);
            if (pair)
                _mm256_mask_storeu_epi32(at + (r + 1) * ow, out_mask, _mm512_extracti64x4_epi64(where, 1));
        }
        return;
    }
    const __m512i lanes = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (size_t r = 0; r < rows; r++) {
        for (size_t b = 0; b < ow; b += 16) {
            const size_t n = ow - b < 16 ? ow - b : 16;
            /* outputs b .. b + n - 1 read inputs 0 .. 2n - 2 of each tap's run */
            const size_t span = 2 * n - 1;
            const __m512i where = an_argmax16(plane, w, ks, (oy0 + r) * 2 * w + 2 * b, 16, an_low_bits(span),
                                              span > 16 ? an_low_bits(span - 16) : 0, lanes);
            _mm512_mask_storeu_epi32(at + r * ow + b, an_low_bits(n), where);
        }
    }
}
