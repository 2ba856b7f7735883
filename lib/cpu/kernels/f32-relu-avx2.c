/* ReLU, AVX2: max(0, x), which returns x (the second operand) for NaN and keeps -0, as the reference does. */
#include <immintrin.h>

#include "cpu/kernels/f32-math-avx2.h"
#include "cpu/kernels/kernels-avx2.h"

void an_f32_relu_avx2(const float *in, float *out, size_t count)
{
    const __m256 zero = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= count; i += 8)
        _mm256_storeu_ps(out + i, _mm256_max_ps(zero, _mm256_loadu_ps(in + i)));
    if (i < count) {
        const __m256i mask = an_avx2_tail_mask(count - i);
        _mm256_maskstore_ps(out + i, mask, _mm256_max_ps(zero, _mm256_maskload_ps(in + i, mask)));
    }
}
