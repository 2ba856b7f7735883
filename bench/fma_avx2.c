/* The AVX2 + FMA peak kernel. Compiled with -mavx2 -mfma; called only after
 * __builtin_cpu_supports("avx2") and ("fma") said yes.
 *
 * Twelve independent accumulator chains: an FMA has a latency of 4 or 5 cycles and a core issues up to
 * two per cycle, so at least 8 to 10 chains are needed to keep both pipes full; 12 leave room and still
 * fit in the 16 ymm registers with the two constants. Each chain computes c = c * a + b with a just below
 * 1, which converges to b / (1 - a): no overflow and no denormals, whatever the iteration count. */
#include <immintrin.h>

#include "fma_peak.h"

float bench_fma_kernel_avx2(uint64_t iterations, float seed)
{
    const __m256 a = _mm256_set1_ps(0.99999f);
    const __m256 b = _mm256_set1_ps(seed * 1e-5f);
    /* Distinct starting values, so that no two chains are the same computation. */
    __m256 c0 = _mm256_set1_ps(seed + 0.01f), c1 = _mm256_set1_ps(seed + 0.02f);
    __m256 c2 = _mm256_set1_ps(seed + 0.03f), c3 = _mm256_set1_ps(seed + 0.04f);
    __m256 c4 = _mm256_set1_ps(seed + 0.05f), c5 = _mm256_set1_ps(seed + 0.06f);
    __m256 c6 = _mm256_set1_ps(seed + 0.07f), c7 = _mm256_set1_ps(seed + 0.08f);
    __m256 c8 = _mm256_set1_ps(seed + 0.09f), c9 = _mm256_set1_ps(seed + 0.10f);
    __m256 c10 = _mm256_set1_ps(seed + 0.11f), c11 = _mm256_set1_ps(seed + 0.12f);
    for (uint64_t i = 0; i < iterations; i++) {
        c0 = _mm256_fmadd_ps(c0, a, b);
        c1 = _mm256_fmadd_ps(c1, a, b);
        c2 = _mm256_fmadd_ps(c2, a, b);
        c3 = _mm256_fmadd_ps(c3, a, b);
        c4 = _mm256_fmadd_ps(c4, a, b);
        c5 = _mm256_fmadd_ps(c5, a, b);
        c6 = _mm256_fmadd_ps(c6, a, b);
        c7 = _mm256_fmadd_ps(c7, a, b);
        c8 = _mm256_fmadd_ps(c8, a, b);
        c9 = _mm256_fmadd_ps(c9, a, b);
        c10 = _mm256_fmadd_ps(c10, a, b);
        c11 = _mm256_fmadd_ps(c11, a, b);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7];
}
