/* Plain-C stand-ins for the AVX-512 intrinsics the cpu-simd AVX-512 kernels use, so their logic (tiles,
 * opmasks, tails, lane reductions) can be tested on a CPU without AVX-512. Force-included (-include) before
 * the kernel source when it is compiled for test_cpu_avx512_emulated; the real <immintrin.h> comes first and
 * the macros below then redirect the kernel's AVX-512 names to these functions. Each lane does what the
 * instruction does: FMA is fused (fmaf), max returns its second operand for NaN and for equal zeros. The
 * AVX2 intrinsics the kernels also use stay real (the test needs an AVX2 CPU). */
#ifndef AN_TEST_AVX512_EMULATION_H
#define AN_TEST_AVX512_EMULATION_H

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

typedef struct emu_m512 {
    float f[16];
} emu_m512;
typedef emu_m512 emu_m512d; /* only ever a reinterpretation of 16 floats here */

static inline emu_m512 emu_mm512_loadu_ps(const void *p)
{
    emu_m512 v;
    memcpy(v.f, p, sizeof v.f);
    return v;
}

static inline emu_m512 emu_mm512_load_ps(const void *p)
{
    /* the real instruction faults on a misaligned address: so does this (the kernels promise alignment) */
    if (((uintptr_t)p & 63) != 0)
        __builtin_trap();
    return emu_mm512_loadu_ps(p);
}

static inline emu_m512 emu_mm512_maskz_loadu_ps(__mmask16 mask, const void *p)
{
    emu_m512 v;
    const float *f = p;
    for (int i = 0; i < 16; i++)
        v.f[i] = (mask >> i) & 1 ? f[i] : 0.0f; /* masked-off lanes are not read */
    return v;
}

static inline emu_m512 emu_mm512_mask_loadu_ps(emu_m512 src, __mmask16 mask, const void *p)
{
    emu_m512 v = src;
    const float *f = p;
    for (int i = 0; i < 16; i++)
        if ((mask >> i) & 1)
            v.f[i] = f[i]; /* masked-off lanes keep src and are not read */
    return v;
}

static inline emu_m512 emu_mm512_or_ps(emu_m512 a, emu_m512 b)
{
    emu_m512 v;
    for (int i = 0; i < 16; i++) {
        uint32_t x, y;
        memcpy(&x, &a.f[i], sizeof x);
        memcpy(&y, &b.f[i], sizeof y);
        x |= y;
        memcpy(&v.f[i], &x, sizeof x);
    }
    return v;
}

static inline void emu_mm512_storeu_ps(void *p, emu_m512 v) { memcpy(p, v.f, sizeof v.f); }

static inline void emu_mm512_mask_storeu_ps(void *p, __mmask16 mask, emu_m512 v)
{
    float *f = p;
    for (int i = 0; i < 16; i++)
        if ((mask >> i) & 1)
            f[i] = v.f[i];
}

static inline emu_m512 emu_mm512_set1_ps(float x)
{
    emu_m512 v;
    for (int i = 0; i < 16; i++)
        v.f[i] = x;
    return v;
}

static inline emu_m512 emu_mm512_setzero_ps(void) { return emu_mm512_set1_ps(0.0f); }

static inline emu_m512 emu_mm512_fmadd_ps(emu_m512 a, emu_m512 b, emu_m512 c)
{
    emu_m512 v;
    for (int i = 0; i < 16; i++)
        v.f[i] = fmaf(a.f[i], b.f[i], c.f[i]);
    return v;
}

static inline emu_m512 emu_mm512_max_ps(emu_m512 a, emu_m512 b)
{
    emu_m512 v;
    for (int i = 0; i < 16; i++)
        v.f[i] = a.f[i] > b.f[i] ? a.f[i] : b.f[i];
    return v;
}

static inline __m256 emu_mm512_castps512_ps256(emu_m512 v) { return _mm256_loadu_ps(v.f); }
static inline emu_m512d emu_mm512_castps_pd(emu_m512 v) { return v; }
static inline __m256d emu_mm512_extractf64x4_pd(emu_m512d v, int upper)
{
    return _mm256_castps_pd(_mm256_loadu_ps(v.f + (upper ? 8 : 0)));
}

/* (GCC defines some of these as macros when not optimising: #undef replaces those too) */
#undef __m512
#define __m512 emu_m512
#undef __m512d
#define __m512d emu_m512d
#undef _mm512_load_ps
#define _mm512_load_ps emu_mm512_load_ps
#undef _mm512_loadu_ps
#define _mm512_loadu_ps emu_mm512_loadu_ps
#undef _mm512_maskz_loadu_ps
#define _mm512_maskz_loadu_ps emu_mm512_maskz_loadu_ps
#undef _mm512_mask_loadu_ps
#define _mm512_mask_loadu_ps emu_mm512_mask_loadu_ps
#undef _mm512_or_ps
#define _mm512_or_ps emu_mm512_or_ps
#undef _mm512_storeu_ps
#define _mm512_storeu_ps emu_mm512_storeu_ps
#undef _mm512_mask_storeu_ps
#define _mm512_mask_storeu_ps emu_mm512_mask_storeu_ps
#undef _mm512_set1_ps
#define _mm512_set1_ps emu_mm512_set1_ps
#undef _mm512_setzero_ps
#define _mm512_setzero_ps emu_mm512_setzero_ps
#undef _mm512_fmadd_ps
#define _mm512_fmadd_ps emu_mm512_fmadd_ps
#undef _mm512_max_ps
#define _mm512_max_ps emu_mm512_max_ps
#undef _mm512_castps512_ps256
#define _mm512_castps512_ps256 emu_mm512_castps512_ps256
#undef _mm512_castps_pd
#define _mm512_castps_pd emu_mm512_castps_pd
#undef _mm512_extractf64x4_pd
#define _mm512_extractf64x4_pd emu_mm512_extractf64x4_pd

#endif
