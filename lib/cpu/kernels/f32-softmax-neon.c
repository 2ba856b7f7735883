/* Softmax of one row, NEON (AArch64): vector maximum, vector exp (f32-math-neon.h) of in - max, the
 * exponentials summed in double (two float64x2 accumulators, one per half of each vector), then one multiply
 * by the inverse sum. The last partial vector goes through a padded copy; its dead lanes are excluded from
 * the max (-inf) and the sum (0). */
#include <arm_neon.h>
#include <math.h>

#include "cpu/kernels/f32-math-neon.h"
#include "cpu/kernels/kernels-neon.h"

void an_f32_softmax_neon(const float *in, float *out, size_t classes)
{
    const size_t body = classes / 4 * 4, tail = classes - body;
    float32x4_t maxv = vdupq_n_f32(-INFINITY);
    for (size_t i = 0; i < body; i += 4)
        maxv = vmaxq_f32(maxv, vld1q_f32(in + i));
    if (tail)
        maxv = vmaxq_f32(maxv, an_neon_load_partial(in + body, tail, -INFINITY));
    const float32x4_t max = vdupq_n_f32(vmaxvq_f32(maxv));

    float64x2_t sum_lo = vdupq_n_f64(0.0), sum_hi = vdupq_n_f64(0.0);
    for (size_t i = 0; i < body; i += 4) {
        const float32x4_t e = an_exp_neon(vsubq_f32(vld1q_f32(in + i), max));
        vst1q_f32(out + i, e);
        sum_lo = vaddq_f64(sum_lo, vcvt_f64_f32(vget_low_f32(e)));
        sum_hi = vaddq_f64(sum_hi, vcvt_high_f64_f32(e));
    }
    if (tail) {
        static const uint32_t lanes[4] = {0, 1, 2, 3};
        const uint32x4_t live = vcltq_u32(vld1q_u32(lanes), vdupq_n_u32((uint32_t)tail));
        float32x4_t e = an_exp_neon(vsubq_f32(an_neon_load_partial(in + body, tail, -INFINITY), max));
        e = vreinterpretq_f32_u32(vandq_u32(vreinterpretq_u32_f32(e), live));
        an_neon_store_partial(out + body, e, tail);
        sum_lo = vaddq_f64(sum_lo, vcvt_f64_f32(vget_low_f32(e)));
        sum_hi = vaddq_f64(sum_hi, vcvt_high_f64_f32(e));
    }
    const double sum = vaddvq_f64(vaddq_f64(sum_lo, sum_hi));

    const float32x4_t inverse = vdupq_n_f32((float)(1.0 / sum));
    for (size_t i = 0; i < body; i += 4)
        vst1q_f32(out + i, vmulq_f32(vld1q_f32(out + i), inverse));
    for (size_t i = body; i < classes; i++)
        out[i] *= vgetq_lane_f32(inverse, 0);
}
