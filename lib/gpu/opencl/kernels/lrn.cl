/* Local response normalisation across channels. Tiling: one work-item per output element, in NCHW order
 * so a work-group covers consecutive pixels of one channel and every channel read of the window is
 * coalesced. The window [c - size/2, c + (size-1)/2] is clipped at the edges and summed in the reference's
 * order. */
__kernel void an_lrn_forward(__global const float *in, __global float *out, uint batch, uint channels, uint plane,
                             uint size, float alpha, float beta, float k)
{
    const uint id = get_global_id(0);
    if (id >= batch * channels * plane)
        return;
    const uint n = id / (channels * plane), r = id - n * channels * plane, c = r / plane, i = r - c * plane;
    const int before = (int)(size / 2), after = (int)((size - 1) / 2);
    const int c0 = max((int)c - before, 0), c1 = min((int)c + after, (int)channels - 1);
    __global const float *image = in + (size_t)n * channels * plane + i;
    float sum = 0.0f;
    for (int j = c0; j <= c1; j++) {
        const float v = image[(size_t)j * plane];
        sum += v * v;
    }
    out[id] = in[id] / pow(k + alpha * sum, beta);
}
