/* Vector exp and log for the AVX2 kernels (LRN's power, softmax), written for float accuracy of about an
 * ulp on the ranges those ops see, and the lane helpers the Winograd kernels share. Header-only: static
 * inline, included by AVX2 kernel files only (they are compiled with -mavx2 -mfma). */
#ifndef AN_CPU_KERNELS_F32_MATH_AVX2_H
#define AN_CPU_KERNELS_F32_MATH_AVX2_H

#include <immintrin.h>

/* exp(x): x = n ln2 + r with |r| <= ln2/2 (Cody-Waite: ln2 split in a short high part, exact in the product
 * with n, and a low correction), exp(r) by its Taylor series to degree 7 (truncation below 1e-8 relative at
 * |r| = ln2/2), scaled by 2^n through the exponent bits. Inputs below ln(FLT_MIN) give 0 (no denormals);
 * above ln(FLT_MAX) they saturate near FLT_MAX; NaN stays NaN. */
static inline __m256 an_exp_avx2(__m256 x)
{
    const __m256 min_x = _mm256_set1_ps(-87.3365478515625f), max_x = _mm256_set1_ps(88.3762626647949f);
    /* max/min return their second operand for NaN, so NaN survives the clamp */
    __m256 clamped = _mm256_min_ps(max_x, _mm256_max_ps(min_x, x));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(clamped, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), clamped);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    __m256 result = _mm256_mul_ps(p, _mm256_castsi256_ps(exponent));
    return _mm256_blendv_ps(result, _mm256_setzero_ps(), _mm256_cmp_ps(x, min_x, _CMP_LT_OQ));
}

/* log(x) for positive normal x: x = m 2^e with m in [sqrt(1/2), sqrt(2)), log(m) = 2 atanh(s) with
 * s = (m - 1) / (m + 1), |s| <= 0.172, by its odd series to s^9 (truncation below 1e-9), and e ln2 added in
 * two parts so the large term is exact. */
static inline __m256 an_log_avx2(__m256 x)
{
    __m256i bits = _mm256_castps_si256(x);
    __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127));
    __m256 m = _mm256_castsi256_ps(
        _mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x007FFFFF)), _mm256_set1_epi32(0x3F800000)));
    __m256 big = _mm256_cmp_ps(m, _mm256_set1_ps(1.41421356237f), _CMP_GT_OQ);
    m = _mm256_blendv_ps(m, _mm256_mul_ps(m, _mm256_set1_ps(0.5f)), big);
    e = _mm256_sub_epi32(e, _mm256_castps_si256(big)); /* the mask is -1 where m was halved */
    __m256 ef = _mm256_cvtepi32_ps(e);
    __m256 s = _mm256_div_ps(_mm256_sub_ps(m, _mm256_set1_ps(1.0f)), _mm256_add_ps(m, _mm256_set1_ps(1.0f)));
    __m256 s2 = _mm256_mul_ps(s, s);
    __m256 t = _mm256_set1_ps(1.0f / 9.0f);
    t = _mm256_fmadd_ps(t, s2, _mm256_set1_ps(1.0f / 7.0f));
    t = _mm256_fmadd_ps(t, s2, _mm256_set1_ps(1.0f / 5.0f));
    t = _mm256_fmadd_ps(t, s2, _mm256_set1_ps(1.0f / 3.0f));
    t = _mm256_mul_ps(t, s2);
    __m256 two_s = _mm256_add_ps(s, s);
    __m256 log_m = _mm256_fmadd_ps(two_s, t, two_s);
    __m256 low = _mm256_fmadd_ps(ef, _mm256_set1_ps(-2.12194440e-4f), log_m);
    return _mm256_fmadd_ps(ef, _mm256_set1_ps(0.693359375f), low);
}

/* Lane masks for the first `count` (0..8) lanes: load 8 ints at an_avx2_tail_mask_table + 8 - count. */
static const int an_avx2_tail_mask_table[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
static inline __m256i an_avx2_tail_mask(size_t count)
{
    return _mm256_loadu_si256((const __m256i *)(const void *)(an_avx2_tail_mask_table + 8 - count));
}

/* Columns j and j + 1 of the patches of 8 consecutive Winograd tiles (2 floats apart) from the 16 floats at
 * p: the even and the odd elements. */
static inline void an_avx2_deinterleave_pairs(const float *p, __m256 *even, __m256 *odd)
{
    const __m256 lo = _mm256_loadu_ps(p), hi = _mm256_loadu_ps(p + 8);
    /* within each 128-bit half: (lo0 lo2 hi0 hi2), then the 64-bit pieces back in order */
    *even = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0x88)), 0xd8));
    *odd = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(lo, hi, 0xdd)), 0xd8));
}

/* Eight Winograd tiles' output row, their left (y0) and right (y1) columns interleaved: 16 floats at dst. */
static inline void an_avx2_store_tile_pairs(float *dst, __m256 y0, __m256 y1)
{
    const __m256 lo = _mm256_unpacklo_ps(y0, y1), hi = _mm256_unpackhi_ps(y0, y1);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(lo, hi, 0x20));
    _mm256_storeu_ps(dst + 8, _mm256_permute2f128_ps(lo, hi, 0x31));
}

/* n floats from src to dst: 8-float stores while they fit, then single floats (vmaskmovps stores are
 * microcoded on AMD cores). */
static inline void an_avx2_copy_floats(float *dst, const float *src, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_loadu_ps(src + i));
    for (; i < n; i++)
        dst[i] = src[i];
}

#endif
