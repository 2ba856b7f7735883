/* Row-wise softmax. Tiling: one work-group per row; its work-items stride through the row for the maximum
 * and then for the sum of exponentials, each reduced by a local-memory tree (the work-group size is a
 * power of two, at most AN_SOFTMAX_WG). */
#define AN_SOFTMAX_WG 256
__kernel void an_softmax_forward(__global const float *in, __global float *out, uint classes)
{
    __local float scratch[AN_SOFTMAX_WG];
    const uint lid = get_local_id(0), size = get_local_size(0), row = get_group_id(0);
    __global const float *x = in + (size_t)row * classes;
    __global float *y = out + (size_t)row * classes;
    float m = -INFINITY;
    for (uint i = lid; i < classes; i += size)
        m = fmax(m, x[i]);
    scratch[lid] = m;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint step = size / 2; step > 0; step >>= 1) {
        if (lid < step)
            scratch[lid] = fmax(scratch[lid], scratch[lid + step]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float row_max = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    float sum = 0.0f;
    for (uint i = lid; i < classes; i += size)
        sum += exp(x[i] - row_max);
    scratch[lid] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint step = size / 2; step > 0; step >>= 1) {
        if (lid < step)
            scratch[lid] += scratch[lid + step];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float inverse = 1.0f / scratch[0];
    for (uint i = lid; i < classes; i += size)
        y[i] = exp(x[i] - row_max) * inverse;
}
