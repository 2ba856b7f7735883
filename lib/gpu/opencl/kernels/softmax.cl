/* Row-wise softmax. Tiling: one work-group per row; its work-items stride through the row for the maximum
 * and then for the sum of exponentials, each reduced by a local-memory tree (the work-group size is a
 * power of two, at most AN_SOFTMAX_WG). The reductions are shared with backward.cl (bias gradients, softmax
 * cross-entropy), which is why they are functions rather than part of the kernel. */
#define AN_SOFTMAX_WG 256

/* Tree reductions of one value per work-item over the work-group, through scratch[0 .. local size). Every
 * work-item must call them (they hold barriers) and every one gets the result. The closing barrier lets
 * the caller reuse scratch at once. The pairing order is fixed, so results do not vary run to run. */
float an_work_group_max(__local float *scratch, float value)
{
    const uint lid = get_local_id(0);
    scratch[lid] = value;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint step = get_local_size(0) / 2; step > 0; step >>= 1) {
        if (lid < step)
            scratch[lid] = fmax(scratch[lid], scratch[lid + step]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float result = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return result;
}

float an_work_group_sum(__local float *scratch, float value)
{
    const uint lid = get_local_id(0);
    scratch[lid] = value;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint step = get_local_size(0) / 2; step > 0; step >>= 1) {
        if (lid < step)
            scratch[lid] += scratch[lid + step];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float result = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return result;
}

/* The two statistics of a numerically stable softmax of row x: its maximum, and the sum of exp(x - max). */
void an_row_softmax_stats(__local float *scratch, __global const float *x, uint classes, float *row_max,
                          float *exp_sum)
{
    const uint lid = get_local_id(0), size = get_local_size(0);
    float m = -INFINITY;
    for (uint i = lid; i < classes; i += size)
        m = fmax(m, x[i]);
    const float max_value = an_work_group_max(scratch, m);
    float sum = 0.0f;
    for (uint i = lid; i < classes; i += size)
        sum += exp(x[i] - max_value);
    *row_max = max_value;
    *exp_sum = an_work_group_sum(scratch, sum);
}

__kernel void an_softmax_forward(__global const float *in, __global float *out, uint classes)
{
    __local float scratch[AN_SOFTMAX_WG];
    const uint lid = get_local_id(0), size = get_local_size(0), row = get_group_id(0);
    __global const float *x = in + (size_t)row * classes;
    __global float *y = out + (size_t)row * classes;
    float row_max, exp_sum;
    an_row_softmax_stats(scratch, x, classes, &row_max, &exp_sum);
    const float inverse = 1.0f / exp_sum;
    for (uint i = lid; i < classes; i += size)
        y[i] = exp(x[i] - row_max) * inverse;
}
