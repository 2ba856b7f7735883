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

static inline void emu_mm512_store_ps(void *p, emu_m512 v)
{
    if (((uintptr_t)p & 63) != 0) /* as emu_mm512_load_ps */
        __builtin_trap();
    emu_mm512_storeu_ps(p, v);
}

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

typedef struct emu_m512i {
    int32_t i[16];
} emu_m512i;

static inline emu_m512i emu_mm512_setr_epi32(int e0, int e1, int e2, int e3, int e4, int e5, int e6, int e7,
                                             int e8, int e9, int e10, int e11, int e12, int e13, int e14, int e15)
{
    emu_m512i v = {{e0, e1, e2, e3, e4, e5, e6, e7, e8, e9, e10, e11, e12, e13, e14, e15}};
    return v;
}

static inline emu_m512i emu_mm512_set1_epi32(int x)
{
    emu_m512i v;
    for (int l = 0; l < 16; l++)
        v.i[l] = x;
    return v;
}

/* wrapping, as the instruction */
static inline emu_m512i emu_mm512_mask_add_epi32(emu_m512i src, __mmask16 mask, emu_m512i a, emu_m512i b)
{
    for (int l = 0; l < 16; l++)
        if ((mask >> l) & 1)
            src.i[l] = (int32_t)((uint32_t)a.i[l] + (uint32_t)b.i[l]);
    return src;
}

static inline emu_m512i emu_mm512_mask_sub_epi32(emu_m512i src, __mmask16 mask, emu_m512i a, emu_m512i b)
{
    for (int l = 0; l < 16; l++)
        if ((mask >> l) & 1)
            src.i[l] = (int32_t)((uint32_t)a.i[l] - (uint32_t)b.i[l]);
    return src;
}

static inline emu_m512i emu_mm512_add_epi32(emu_m512i a, emu_m512i b)
{
    return emu_mm512_mask_add_epi32(a, 0xffff, a, b);
}

static inline emu_m512 emu_mm512_castsi512_ps(emu_m512i v)
{
    emu_m512 f;
    memcpy(f.f, v.i, sizeof f.f);
    return f;
}

/* vpermt2ps: lane l takes element idx[l] mod 32 of the 32 in (a, b) */
static inline emu_m512 emu_mm512_permutex2var_ps(emu_m512 a, emu_m512i idx, emu_m512 b)
{
    emu_m512 v;
    for (int l = 0; l < 16; l++) {
        const unsigned k = (unsigned)idx.i[l] & 31u;
        v.f[l] = k < 16 ? a.f[k] : b.f[k - 16];
    }
    return v;
}

/* only the predicates the kernels use */
static inline __mmask16 emu_mm512_cmp_ps_mask(emu_m512 a, emu_m512 b, int predicate)
{
    __mmask16 mask = 0;
    for (int l = 0; l < 16; l++) {
        int bit;
        switch (predicate) {
        case _CMP_UNORD_Q:
            bit = isnan(a.f[l]) || isnan(b.f[l]);
            break;
        case _CMP_GT_OQ:
            bit = a.f[l] > b.f[l];
            break;
        default:
            __builtin_trap();
        }
        mask |= (__mmask16)(bit << l);
    }
    return mask;
}

static inline emu_m512 emu_mm512_mask_mov_ps(emu_m512 src, __mmask16 mask, emu_m512 a)
{
    for (int l = 0; l < 16; l++)
        if ((mask >> l) & 1)
            src.f[l] = a.f[l];
    return src;
}

/* (GCC defines some of these as macros when not optimising: #undef replaces those too) */
#undef __m512i
#define __m512i emu_m512i
#undef _mm512_setr_epi32
#define _mm512_setr_epi32 emu_mm512_setr_epi32
#undef _mm512_set1_epi32
#define _mm512_set1_epi32 emu_mm512_set1_epi32
#undef _mm512_mask_add_epi32
#define _mm512_mask_add_epi32 emu_mm512_mask_add_epi32
#undef _mm512_mask_sub_epi32
#define _mm512_mask_sub_epi32 emu_mm512_mask_sub_epi32
#undef _mm512_add_epi32
#define _mm512_add_epi32 emu_mm512_add_epi32
#undef _mm512_castsi512_ps
#define _mm512_castsi512_ps emu_mm512_castsi512_ps
#undef _mm512_permutex2var_ps
#define _mm512_permutex2var_ps emu_mm512_permutex2var_ps
#undef _mm512_cmp_ps_mask
#define _mm512_cmp_ps_mask emu_mm512_cmp_ps_mask
#undef _mm512_mask_mov_ps
#define _mm512_mask_mov_ps emu_mm512_mask_mov_ps
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
#undef _mm512_store_ps
#define _mm512_store_ps emu_mm512_store_ps
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
