/* ReLU, NEON (AArch64): x < 0 ? +0 : x as a compare and a bit-clear, 16 floats per iteration (four
 * independent vectors), then 4, then one by one. Unlike FMAX with zero this keeps -0 and NaN as they are, as
 * the reference does. */
#include <arm_neon.h>

#include "cpu/kernels/f32-math-neon.h"
#include "cpu/kernels/kernels-neon.h"

void an_f32_relu_neon(const float *in, float *out, size_t count)
{
    size_t i = 0;
    for (; i + 16 <= count; i += 16) {
        const float32x4_t x0 = vld1q_f32(in + i), x1 = vld1q_f32(in + i + 4);
        const float32x4_t x2 = vld1q_f32(in + i + 8), x3 = vld1q_f32(in + i + 12);
        vst1q_f32(out + i, an_neon_relu(x0));
        vst1q_f32(out + i + 4, an_neon_relu(x1));
        vst1q_f32(out + i + 8, an_neon_relu(x2));
        vst1q_f32(out + i + 12, an_neon_relu(x3));
    }
    for (; i + 4 <= count; i += 4)
        vst1q_f32(out + i, an_neon_relu(vld1q_f32(in + i)));
    for (; i < count; i++)
        out[i] = in[i] < 0.0f ? 0.0f : in[i];
}
