/* Max pooling, NEON (AArch64): AlexNet's 3x3 stride-2 windows, 8 outputs at a time, then 4, then one by one
 * at the right edge of each row; other windows and strides go to the portable kernel.
 *
 * Scheme: outputs ox .. ox+7 read input columns x = 2ox .. 2ox+16. The three input rows are first reduced
 * vertically on four vectors (columns x .. x+15) and one broadcast (column x+16). UZP1/UZP2 then separate
 * the even columns (x, x+2, ..) and the odd ones (x+1, x+3, ..), EXT shifts the even ones by one
 * (x+2, x+4, ..), and the maximum of the three is the 8 outputs. FMAX returns NaN when either input is NaN,
 * so a NaN anywhere in a window propagates as in PyTorch, with no extra compare. (FMAX also orders -0 below
 * +0, where the reference keeps the first of two equal values: the only bits that can differ are the sign of
 * a zero maximum.) */
#include <arm_neon.h>

#include "cpu/kernels/kernels-neon.h"
#include "cpu/kernels/kernels-scalar.h"

static inline float32x4_t an_column_max(const float *r0, const float *r1, const float *r2, size_t x)
{
    return vmaxq_f32(vmaxq_f32(vld1q_f32(r0 + x), vld1q_f32(r1 + x)), vld1q_f32(r2 + x));
}

static inline float32x4_t an_column_max_dup(const float *r0, const float *r1, const float *r2, size_t x)
{
    return vmaxq_f32(vmaxq_f32(vld1q_dup_f32(r0 + x), vld1q_dup_f32(r1 + x)), vld1q_dup_f32(r2 + x));
}

/* The 4 outputs whose windows start at columns x, x+2, x+4, x+6, from the column maxima of x .. x+8. */
static inline float32x4_t an_pool4(float32x4_t m0, float32x4_t m1, float32x4_t m8)
{
    const float32x4_t even = vuzp1q_f32(m0, m1), odd = vuzp2q_f32(m0, m1);
    return vmaxq_f32(vmaxq_f32(even, odd), vextq_f32(even, m8, 1));
}

static inline float an_max_nan(float best, float v) { return v > best || v != v ? v : best; }

void an_f32_maxpool_3x3s2_neon(const an_pool_desc *d, const float *in, float *out, size_t plane_begin,
                               size_t plane_end)
{
    if (d->kernel_size != 3 || d->stride != 2) {
        an_f32_maxpool_scalar(d, in, out, plane_begin, plane_end);
        return;
    }
    const size_t w = d->in_width, in_plane = (size_t)d->in_height * w;
    const size_t ow = d->out_width, out_plane = (size_t)d->out_height * ow;
    for (size_t p = plane_begin; p < plane_end; p++) {
        for (size_t oy = 0; oy < d->out_height; oy++) {
            const float *r0 = in + p * in_plane + 2 * oy * w, *r1 = r0 + w, *r2 = r1 + w;
            float *dst = out + p * out_plane + oy * ow;
            size_t ox = 0;
            /* 8 outputs read columns 2ox .. 2ox+16 (the last one alone) */
            for (; ox + 8 <= ow && 2 * ox + 17 <= w; ox += 8) {
                const size_t x = 2 * ox;
                const float32x4_t m0 = an_column_max(r0, r1, r2, x), m4 = an_column_max(r0, r1, r2, x + 4);
                const float32x4_t m8 = an_column_max(r0, r1, r2, x + 8), m12 = an_column_max(r0, r1, r2, x + 12);
                const float32x4_t m16 = an_column_max_dup(r0, r1, r2, x + 16);
                vst1q_f32(dst + ox, an_pool4(m0, m4, m8));
                vst1q_f32(dst + ox + 4, an_pool4(m8, m12, m16));
            }
            /* 4 outputs read columns 2ox .. 2ox+8 */
            for (; ox + 4 <= ow && 2 * ox + 9 <= w; ox += 4) {
                const size_t x = 2 * ox;
                vst1q_f32(dst + ox, an_pool4(an_column_max(r0, r1, r2, x), an_column_max(r0, r1, r2, x + 4),
                                             an_column_max_dup(r0, r1, r2, x + 8)));
            }
            for (; ox < ow; ox++) {
                const float *window = r0 + 2 * ox;
                float best = window[0];
                for (size_t ky = 0; ky < 3; ky++)
                    for (size_t kx = 0; kx < 3; kx++)
                        best = an_max_nan(best, window[ky * w + kx]);
                dst[ox] = best;
            }
        }
    }
}
