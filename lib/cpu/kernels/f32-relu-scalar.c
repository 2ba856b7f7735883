/* ReLU, portable C (the network fuses ReLU into conv and FC; this serves the standalone op). `x < 0` is
 * false for NaN and -0, which pass through as in the reference. */
#include "cpu/kernels/kernels-scalar.h"

void an_f32_relu_scalar(const float *in, float *out, size_t count)
{
    for (size_t i = 0; i < count; i++)
        out[i] = in[i] < 0.0f ? 0.0f : in[i];
}
