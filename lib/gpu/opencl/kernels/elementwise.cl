/* Elementwise ops. Tiling: one work-item per element. */

__kernel void an_relu_forward(__global const float *in, __global float *out, uint count)
{
    const uint i = get_global_id(0);
    if (i < count)
        out[i] = in[i] < 0.0f ? 0.0f : in[i];
}

/* The keep decision of backend.h's an_dropout_keep, bit for bit: splitmix64 of (seed, index), and its top
 * 24 bits as a float in [0, 1) compared with the rate (exact in float on every device). */
inline int an_dropout_keep(ulong seed, ulong index, float rate)
{
    ulong z = seed + (index + 1) * 0x9E3779B97F4A7C15ul;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ul;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBul;
    z ^= z >> 31;
    return (float)(z >> 40) * (1.0f / 16777216.0f) >= rate;
}

/* Inverted dropout; also its backward pass (the same mask and scale applied to the gradient). seed arrives
 * as two 32-bit halves: a ulong kernel argument is fine in OpenCL, but halves keep the host side simple. */
__kernel void an_dropout_forward(__global const float *in, __global float *out, uint count, float rate,
                                 float scale, uint seed_lo, uint seed_hi)
{
    const uint i = get_global_id(0);
    if (i < count) {
        const ulong seed = ((ulong)seed_hi << 32) | seed_lo;
        out[i] = an_dropout_keep(seed, i, rate) ? in[i] * scale : 0.0f;
    }
}
