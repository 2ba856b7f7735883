/* im2col panel packing, portable C: for every tap (c, ky, kx), each run of pixels is copied from the
 * bordered image at the convolution's stride (a plain copy at stride 1, and from a phase-split image, where
 * the tap's phase row holds the run's inputs consecutively), and the columns past the last pixel are zeroed. */
#include "cpu/kernels/kernels-scalar.h"

void an_f32_im2col_scalar(const an_im2col_panel *p, size_t nr, float *dst)
{
    const size_t ks = p->kernel_size, stride = p->stride, phased = p->phase_floats != 0;
    const size_t step = phased ? 1 : stride; /* between the inputs of consecutive pixels of a run */
    const float *channel = p->image;
    float *row = dst;
    for (size_t c = 0; c < p->channels; c++, channel += p->plane_floats) {
        for (size_t ky = 0; ky < ks; ky++) {
            for (size_t kx = 0; kx < ks; kx++, row += nr) {
                const size_t column = phased ? kx % stride * p->phase_floats + kx / stride : kx;
                const float *tap = channel + ky * p->row_floats + column;
                for (size_t r = 0; r < p->runs; r++) {
                    const float *src = tap + p->run_offset[r];
                    float *out = row + p->run_column[r];
                    const size_t length = p->run_length[r];
                    if (step == 1) {
                        for (size_t t = 0; t < length; t++)
                            out[t] = src[t];
                    } else {
                        for (size_t t = 0; t < length; t++)
                            out[t] = src[t * step];
                    }
                }
                for (size_t j = p->columns; j < nr; j++)
                    row[j] = 0.0f;
            }
        }
    }
}
