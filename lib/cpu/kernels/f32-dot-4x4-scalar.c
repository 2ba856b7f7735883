/* Dot-product tile, portable C: each of the 4 x 4 sums runs in order over the segments and along each
 * segment (one chain per element, as plain C would write it). */
#include "cpu/kernels/kernels-scalar.h"

void an_f32_dot_4x4_scalar(const an_dot_tile_args *args)
{
    float acc[AN_DOT_ROWS][AN_DOT_ROWS] = {{0.0f}};
    for (size_t s = 0; s < args->segments; s++) {
        for (size_t r = 0; r < AN_DOT_ROWS; r++) {
            const float *a = args->a[r] + s * args->a_step;
            for (size_t j = 0; j < AN_DOT_ROWS; j++) {
                const float *b = args->b[j] + s * args->b_step;
                float sum = acc[r][j];
                for (size_t l = 0; l < args->length; l++)
                    sum += a[l] * b[l];
                acc[r][j] = sum;
            }
        }
    }
    for (size_t r = 0; r < args->m; r++)
        for (size_t j = 0; j < args->n; j++)
            args->c[r * args->ldc + j] = args->accumulate ? args->c[r * args->ldc + j] + acc[r][j] : acc[r][j];
}
