/* Max pooling backward's winner search, AVX-512, stride-2 windows (AlexNet's 3x3 / 2 pools): for `count`
 * outputs of row oy from column ox0, the plane offset of the input each window's maximum came from.
 *
 * The portable scan in cpu_train.c reads every second input per tap, a strided access the compiler does not
 * vectorise; it was a tenth of a Fashion-MNIST training step. Here 16 outputs go at once: per tap, two
 * masked loads cover the 31 consecutive inputs and one two-source permute picks the even ones. The
 * comparisons are the scan's, in its (ky, kx) order (strictly greater replaces, so the first of equal maxima
 * wins; a NaN always replaces), so the winners, and the bits of the gradient, are the same. Masked-off
 * elements are neither read nor able to fault, and lanes past `count` are not stored. */
#include <immintrin.h>

#include "cpu/kernels/kernels-avx512.h"

void an_f32_maxpool_argmax_s2_avx512(const an_pool_desc *d, const float *plane, size_t oy, size_t ox0, size_t count,
                                     uint32_t *at)
{
    const size_t w = d->in_width, ks = d->kernel_size;
    /* lane o: the permute's index of input 2o (of lo:hi), and output o's offset from its tap's first */
    const __m512i twice = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (size_t b = 0; b < count; b += 16) {
        const size_t n = count - b < 16 ? count - b : 16;
        /* outputs b .. b + n - 1 read inputs 0 .. 2n - 2 of each tap's run */
        const size_t span = 2 * n - 1;
        const __mmask16 lo_mask = (__mmask16)(span >= 16 ? 0xffffu : (1u << span) - 1u);
        const __mmask16 hi_mask = (__mmask16)(span > 16 ? (1u << (span - 16)) - 1u : 0u);
        const __mmask16 out_mask = (__mmask16)(n == 16 ? 0xffffu : (1u << n) - 1u);
        const size_t corner = oy * 2 * w + (ox0 + b) * 2; /* the first window's top left, in the plane */
        __m512 best = _mm512_set1_ps(-__builtin_inff());
        __m512i where = _mm512_add_epi32(_mm512_set1_epi32((int)corner), twice);
        for (size_t ky = 0; ky < ks; ky++) {
            for (size_t kx = 0; kx < ks; kx++) {
                const size_t tap = corner + ky * w + kx;
                const float *v = plane + tap;
                const __m512 lo = _mm512_maskz_loadu_ps(lo_mask, v), hi = _mm512_maskz_loadu_ps(hi_mask, v + 16);
                const __m512 x = _mm512_permutex2var_ps(lo, twice, hi);
                const __mmask16 take = _mm512_cmp_ps_mask(x, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
                best = _mm512_mask_mov_ps(best, take, x);
                where = _mm512_mask_mov_epi32(where, take, _mm512_add_epi32(_mm512_set1_epi32((int)tap), twice));
            }
        }
        _mm512_mask_storeu_epi32(at + b, out_mask, where);
    }
}
