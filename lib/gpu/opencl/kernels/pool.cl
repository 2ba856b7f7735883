/* Pooling. Tiling: none needed; one work-item per output element (n, c, oy, ox) in NCHW order, so
 * neighbouring work-items read neighbouring windows and write consecutive addresses. */

/* Max pooling without padding. NaN propagates (a NaN always replaces the running maximum), as in PyTorch
 * and the reference backend. */
__kernel void an_max_pool2d_forward(__global const float *in, __global float *out, uint planes, uint in_h,
                                    uint in_w, uint out_h, uint out_w, uint kernel_size, uint stride)
{
    const uint id = get_global_id(0);
    const uint ohw = out_h * out_w;
    if (id >= planes * ohw)
        return;
    const uint plane = id / ohw, r = id - plane * ohw, oy = r / out_w, ox = r - oy * out_w;
    __global const float *src = in + (size_t)plane * in_h * in_w + (oy * stride) * in_w + ox * stride;
    float best = -INFINITY;
    for (uint ky = 0; ky < kernel_size; ky++)
        for (uint kx = 0; kx < kernel_size; kx++) {
            const float v = src[ky * in_w + kx];
            if (v > best || isnan(v))
                best = v;
        }
    out[id] = best;
}

/* PyTorch's adaptive average pooling: cell i covers [floor(i * in / out), ceil((i + 1) * in / out)). Sums
 * row by row in the reference's order, then divides by the cell's size. */
__kernel void an_adaptive_avg_pool2d_forward(__global const float *in, __global float *out, uint planes,
                                             uint in_h, uint in_w, uint out_h, uint out_w)
{
    const uint id = get_global_id(0);
    const uint ohw = out_h * out_w;
    if (id >= planes * ohw)
        return;
    const uint plane = id / ohw, r = id - plane * ohw, oy = r / out_w, ox = r - oy * out_w;
    const uint y0 = (uint)(((ulong)oy * in_h) / out_h), y1 = (uint)(((ulong)(oy + 1) * in_h + out_h - 1) / out_h);
    const uint x0 = (uint)(((ulong)ox * in_w) / out_w), x1 = (uint)(((ulong)(ox + 1) * in_w + out_w - 1) / out_w);
    __global const float *src = in + (size_t)plane * in_h * in_w;
    float sum = 0.0f;
    for (uint y = y0; y < y1; y++)
        for (uint x = x0; x < x1; x++)
            sum += src[y * in_w + x];
    out[id] = sum / (float)((y1 - y0) * (x1 - x0));
}
