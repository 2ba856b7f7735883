/* The AVX-512 peak kernel. Compiled with -mavx512f; called only after __builtin_cpu_supports("avx512f")
 * said yes.
 *
 * Twenty-four independent 512-bit chains (of the 32 zmm registers): enough for two FMA units with a
 * latency of up to 6 cycles, or for a core that splits each 512-bit FMA into two 256-bit halves. The
 * chains converge as in fma_avx2.c: no overflow, no denormals. */
#include <immintrin.h>

#include "fma_peak.h"

float bench_fma_kernel_avx512(uint64_t iterations, float seed)
{
    const __m512 a = _mm512_set1_ps(0.99999f);
    const __m512 b = _mm512_set1_ps(seed * 1e-5f);
    /* Written out, not as an array: every chain must live in a register. */
    __m512 c0 = _mm512_set1_ps(seed + 0.01f);
    __m512 c1 = _mm512_set1_ps(seed + 0.02f);
    __m512 c2 = _mm512_set1_ps(seed + 0.03f);
    __m512 c3 = _mm512_set1_ps(seed + 0.04f);
    __m512 c4 = _mm512_set1_ps(seed + 0.05f);
    __m512 c5 = _mm512_set1_ps(seed + 0.06f);
    __m512 c6 = _mm512_set1_ps(seed + 0.07f);
    __m512 c7 = _mm512_set1_ps(seed + 0.08f);
    __m512 c8 = _mm512_set1_ps(seed + 0.09f);
    __m512 c9 = _mm512_set1_ps(seed + 0.10f);
    __m512 c10 = _mm512_set1_ps(seed + 0.11f);
    __m512 c11 = _mm512_set1_ps(seed + 0.12f);
    __m512 c12 = _mm512_set1_ps(seed + 0.13f);
    __m512 c13 = _mm512_set1_ps(seed + 0.14f);
    __m512 c14 = _mm512_set1_ps(seed + 0.15f);
    __m512 c15 = _mm512_set1_ps(seed + 0.16f);
    __m512 c16 = _mm512_set1_ps(seed + 0.17f);
    __m512 c17 = _mm512_set1_ps(seed + 0.18f);
    __m512 c18 = _mm512_set1_ps(seed + 0.19f);
    __m512 c19 = _mm512_set1_ps(seed + 0.20f);
    __m512 c20 = _mm512_set1_ps(seed + 0.21f);
    __m512 c21 = _mm512_set1_ps(seed + 0.22f);
    __m512 c22 = _mm512_set1_ps(seed + 0.23f);
    __m512 c23 = _mm512_set1_ps(seed + 0.24f);
    for (uint64_t i = 0; i < iterations; i++) {
        c0 = _mm512_fmadd_ps(c0, a, b);
        c1 = _mm512_fmadd_ps(c1, a, b);
        c2 = _mm512_fmadd_ps(c2, a, b);
        c3 = _mm512_fmadd_ps(c3, a, b);
        c4 = _mm512_fmadd_ps(c4, a, b);
        c5 = _mm512_fmadd_ps(c5, a, b);
        c6 = _mm512_fmadd_ps(c6, a, b);
        c7 = _mm512_fmadd_ps(c7, a, b);
        c8 = _mm512_fmadd_ps(c8, a, b);
        c9 = _mm512_fmadd_ps(c9, a, b);
        c10 = _mm512_fmadd_ps(c10, a, b);
        c11 = _mm512_fmadd_ps(c11, a, b);
        c12 = _mm512_fmadd_ps(c12, a, b);
        c13 = _mm512_fmadd_ps(c13, a, b);
        c14 = _mm512_fmadd_ps(c14, a, b);
        c15 = _mm512_fmadd_ps(c15, a, b);
        c16 = _mm512_fmadd_ps(c16, a, b);
        c17 = _mm512_fmadd_ps(c17, a, b);
        c18 = _mm512_fmadd_ps(c18, a, b);
        c19 = _mm512_fmadd_ps(c19, a, b);
        c20 = _mm512_fmadd_ps(c20, a, b);
        c21 = _mm512_fmadd_ps(c21, a, b);
        c22 = _mm512_fmadd_ps(c22, a, b);
        c23 = _mm512_fmadd_ps(c23, a, b);
    }
    __m512 s0 = _mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3));
    __m512 s1 = _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7));
    __m512 s2 = _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11));
    __m512 s3 = _mm512_add_ps(_mm512_add_ps(c12, c13), _mm512_add_ps(c14, c15));
    __m512 s4 = _mm512_add_ps(_mm512_add_ps(c16, c17), _mm512_add_ps(c18, c19));
    __m512 s5 = _mm512_add_ps(_mm512_add_ps(c20, c21), _mm512_add_ps(c22, c23));
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)), _mm512_add_ps(s4, s5));
    return _mm512_reduce_add_ps(s);
}
