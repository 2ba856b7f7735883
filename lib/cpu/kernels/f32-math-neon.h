/* Vector exp and log for the NEON kernels (softmax, LRN's general power), float accuracy of about an ulp on
 * the ranges those ops see. The same polynomials, constants and operation order as f32-math-avx2.h, each
 * step a correctly rounded NEON instruction (fused where that file fuses), so both sets compute the same
 * bits. Header-only: static inline, included by NEON kernel files only. */
#ifndef AN_CPU_KERNELS_F32_MATH_NEON_H
#define AN_CPU_KERNELS_F32_MATH_NEON_H

#include <arm_neon.h>
#include <stddef.h>
#include <string.h>

/* exp(x): x = n ln2 + r with |r| <= ln2/2 (Cody-Waite: ln2 in a short high part, exact in the product with n,
 * plus a low correction), exp(r) by its Taylor series to degree 7, scaled by 2^n through the exponent bits.
 * Inputs below ln(FLT_MIN) give 0 (no denormals); NaN stays NaN (FMAX/FMIN propagate it). */
static inline float32x4_t an_exp_neon(float32x4_t x)
{
    const float32x4_t min_x = vdupq_n_f32(-87.3365478515625f), max_x = vdupq_n_f32(88.3762626647949f);
    const float32x4_t clamped = vminq_f32(vmaxq_f32(x, min_x), max_x);
    const float32x4_t n = vrndnq_f32(vmulq_f32(clamped, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(clamped, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.0f / 5040.0f);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 720.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 120.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 24.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f / 6.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(0.5f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.0f), p, r);
    /* n is integral already; for NaN the conversion gives 0 and the NaN comes through p */
    const int32x4_t exponent = vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127)), 23);
    const float32x4_t result = vmulq_f32(p, vreinterpretq_f32_s32(exponent));
    return vbslq_f32(vcltq_f32(x, min_x), vdupq_n_f32(0.0f), result);
}

/* log(x) for positive normal x: x = m 2^e with m in [sqrt(1/2), sqrt(2)), log(m) = 2 atanh(s) with
 * s = (m - 1) / (m + 1), |s| <= 0.172, by its odd series to s^9, and e ln2 added in two parts so the large
 * term is exact. */
static inline float32x4_t an_log_neon(float32x4_t x)
{
    const uint32x4_t bits = vreinterpretq_u32_f32(x);
    int32x4_t e = vsubq_s32(vreinterpretq_s32_u32(vshrq_n_u32(bits, 23)), vdupq_n_s32(127));
    float32x4_t m = vreinterpretq_f32_u32(
        vorrq_u32(vandq_u32(bits, vdupq_n_u32(0x007FFFFFu)), vdupq_n_u32(0x3F800000u)));
    const uint32x4_t big = vcgtq_f32(m, vdupq_n_f32(1.41421356237f));
    m = vbslq_f32(big, vmulq_f32(m, vdupq_n_f32(0.5f)), m);
    e = vsubq_s32(e, vreinterpretq_s32_u32(big)); /* the mask is -1 where m was halved */
    const float32x4_t ef = vcvtq_f32_s32(e);
    const float32x4_t one = vdupq_n_f32(1.0f);
    const float32x4_t s = vdivq_f32(vsubq_f32(m, one), vaddq_f32(m, one));
    const float32x4_t s2 = vmulq_f32(s, s);
    float32x4_t t = vdupq_n_f32(1.0f / 9.0f);
    t = vfmaq_f32(vdupq_n_f32(1.0f / 7.0f), t, s2);
    t = vfmaq_f32(vdupq_n_f32(1.0f / 5.0f), t, s2);
    t = vfmaq_f32(vdupq_n_f32(1.0f / 3.0f), t, s2);
    t = vmulq_f32(t, s2);
    const float32x4_t two_s = vaddq_f32(s, s);
    const float32x4_t log_m = vfmaq_f32(two_s, two_s, t);
    const float32x4_t low = vfmaq_f32(log_m, ef, vdupq_n_f32(-2.12194440e-4f));
    return vfmaq_f32(low, ef, vdupq_n_f32(0.693359375f));
}

/* The first `count` (0..4) floats at p, the other lanes `fill`: NEON has no masked loads, so the partial
 * vector at the end of a row goes through a small buffer (never reading past p + count). */
static inline float32x4_t an_neon_load_partial(const float *p, size_t count, float fill)
{
    float lanes[4] = {fill, fill, fill, fill};
    memcpy(lanes, p, count * sizeof *p);
    return vld1q_f32(lanes);
}

/* Store the first `count` (0..4) lanes of v at p. */
static inline void an_neon_store_partial(float *p, float32x4_t v, size_t count)
{
    float lanes[4];
    vst1q_f32(lanes, v);
    memcpy(p, lanes, count * sizeof *p);
}

/* x < 0 ? +0 : x lane by lane: false for NaN and -0, which pass through as in the reference (FMAX would turn
 * -0 into +0). */
static inline float32x4_t an_neon_relu(float32x4_t x)
{
    return vreinterpretq_f32_u32(vbicq_u32(vreinterpretq_u32_f32(x), vcltzq_f32(x)));
}

#endif
