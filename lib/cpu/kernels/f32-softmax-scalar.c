/* Softmax of one row, portable C: the maximum is subtracted first so large logits cannot overflow, and the
 * exponentials are summed in double so a thousand classes lose nothing to the order of summation. */
#include <math.h>

#include "cpu/kernels/kernels-scalar.h"

void an_f32_softmax_scalar(const float *in, float *out, size_t classes)
{
    float max = in[0];
    for (size_t i = 1; i < classes; i++)
        max = in[i] > max ? in[i] : max;
    double sum = 0.0;
    for (size_t i = 0; i < classes; i++) {
        out[i] = expf(in[i] - max);
        sum += out[i];
    }
    const float inverse = (float)(1.0 / sum);
    for (size_t i = 0; i < classes; i++)
        out[i] *= inverse;
}
