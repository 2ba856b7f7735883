/* Training: the backward pass of every forward op, softmax cross-entropy and the SGD update.
 *
 * Every gradient OVERWRITES its output (backend.h). No kernel here uses atomics: each output element is
 * produced by exactly one work-item (or one work-group reduction) that sums its contributions in a fixed
 * order, so results are deterministic run to run, and where the reference sums in a simple order (pooling,
 * bias gradients) the order is the reference's and the results are bit-identical.
 *
 * The three matrix products reuse gemm.cl's tiling (64 x 64 tiles per 16 x 16 work-group, 4 x 4 register
 * blocks, K staged through __local memory 16 at a time) with different loaders:
 *   conv backward data     per group: grad_in[ic][(n,iy,ix)] = sum over (oc,ky,kx) of W[oc][ic][ky][kx] *
 *                          grad_out[n][oc][oy][ox] where oy * stride = iy + pad - ky (and the same for x);
 *                          taps that land between output pixels (stride > 1) are staged as zeros;
 *   conv backward weights  per group: grad_W[oc][(ic,ky,kx)] = sum over p = (n,oy,ox) of grad_out[n][oc][p] *
 *                          im2col(in)[(ic,ky,kx)][p];
 *   FC backward            grad_in = grad_out * W and grad_W = grad_out^T * in, straight from the row-major
 *                          buffers with the column-major and transposed loaders. */

/* Conv backward data. M = cin_g, N = batch * in_h * in_w, K = cout_g * ksize^2. A (k-fast): W of this group
 * read as [ic][(oc,ky,kx)]. B (n-fast): the column is input pixel q = (n, iy, ix), decoded once. */
__kernel __attribute__((reqd_work_group_size(16, 16, 1))) void
an_conv2d_backward_data(__global const float *grad_out, __global const float *weight, __global float *grad_in,
                        uint cin_g, uint in_channels, uint in_h, uint in_w, uint cout_g, uint out_channels,
                        uint out_h, uint out_w, uint ksize, uint stride, uint pad, uint N)
{
    AN_GEMM_PROLOGUE
    const uint g = get_group_id(2), kk_size = ksize * ksize, M = cin_g, K = cout_g * kk_size;
    __global const float *wg = weight + (size_t)g * cout_g * cin_g * kk_size;
    const uint bn = tid & 63, q = n0 + bn, ihw = in_h * in_w;
    const uint img = q < N ? q / ihw : 0, rem = q - img * ihw;
    const int iy_pad = (int)(rem / in_w) + (int)pad, ix_pad = (int)(rem % in_w) + (int)pad;
    __global const float *gsrc = grad_out + ((size_t)img * out_channels + (size_t)g * cout_g) * out_h * out_w;
    for (uint k0 = 0; k0 < K; k0 += AN_TK) {
        {
            const uint kk = tid & 15, k = k0 + kk;
            const uint oc = k / kk_size, r = k - oc * kk_size;
            for (int i = 0; i < 4; i++) {
                const uint mm = (tid >> 4) + 16 * i, m = m0 + mm;
                As[kk * AN_LDS + mm] = (m < M && k < K) ? wg[((size_t)oc * cin_g + m) * kk_size + r] : 0.0f;
            }
        }
        for (int i = 0; i < 4; i++) {
            const uint kk = (tid >> 6) + 4 * i, k = k0 + kk;
            float v = 0.0f;
            if (q < N && k < K) {
                const uint oc = k / kk_size, r = k - oc * kk_size, ky = r / ksize, kx = r - ky * ksize;
                const int ty = iy_pad - (int)ky, tx = ix_pad - (int)kx;
                if (ty >= 0 && tx >= 0 && ty % (int)stride == 0 && tx % (int)stride == 0) {
                    const uint oy = (uint)ty / stride, ox = (uint)tx / stride;
                    if (oy < out_h && ox < out_w)
                        v = gsrc[((size_t)oc * out_h + oy) * out_w + ox];
                }
            }
            Bs[kk * AN_LDS + bn] = v;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        AN_TILE_MAC;
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int j = 0; j < 4; j++) {
        const uint qc = n0 + lx + 16 * j;
        if (qc >= N)
            continue;
        const uint n = qc / ihw, r = qc - n * ihw;
        for (int i = 0; i < 4; i++) {
            const uint m = m0 + ly + 16 * i;
            if (m < M)
                grad_in[((size_t)n * in_channels + g * cin_g + m) * ihw + r] = acc[i][j];
        }
    }
}

/* Conv backward weights. M = cout_g, N = cin_g * ksize^2, K = batch * out_h * out_w. A (k-fast): grad_out of
 * this group as [oc][p]. B (n-fast): the column is tap (ic, ky, kx), decoded once; each row p one output
 * pixel. */
__kernel __attribute__((reqd_work_group_size(16, 16, 1))) void
an_conv2d_backward_weights(__global const float *in, __global const float *grad_out, __global float *grad_weight,
                           uint cin_g, uint in_channels, uint in_h, uint in_w, uint cout_g, uint out_channels,
                           uint out_h, uint out_w, uint ksize, uint stride, uint pad, uint K)
{
    AN_GEMM_PROLOGUE
    const uint g = get_group_id(2), kk_size = ksize * ksize, M = cout_g, N = cin_g * kk_size, ohw = out_h * out_w;
    const uint bn = tid & 63, col = n0 + bn;
    const uint ic = col / kk_size, r = col - ic * kk_size, ky = r / ksize, kx = r - ky * ksize;
    for (uint k0 = 0; k0 < K; k0 += AN_TK) {
        {
            const uint kk = tid & 15, p = k0 + kk;
            const uint n = p < K ? p / ohw : 0, pr = p - n * ohw;
            __global const float *gsrc = grad_out + ((size_t)n * out_channels + (size_t)g * cout_g) * ohw + pr;
            for (int i = 0; i < 4; i++) {
                const uint mm = (tid >> 4) + 16 * i, m = m0 + mm;
                As[kk * AN_LDS + mm] = (m < M && p < K) ? gsrc[(size_t)m * ohw] : 0.0f;
            }
        }
        for (int i = 0; i < 4; i++) {
            const uint kk = (tid >> 6) + 4 * i, p = k0 + kk;
            float v = 0.0f;
            if (col < N && p < K) {
                const uint n = p / ohw, pr = p - n * ohw, oy = pr / out_w, ox = pr - oy * out_w;
                const int iy = (int)(oy * stride + ky) - (int)pad, ix = (int)(ox * stride + kx) - (int)pad;
                if (iy >= 0 && iy < (int)in_h && ix >= 0 && ix < (int)in_w)
                    v = in[(((size_t)n * in_channels + g * cin_g + ic) * in_h + (uint)iy) * in_w + (uint)ix];
            }
            Bs[kk * AN_LDS + bn] = v;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        AN_TILE_MAC;
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    AN_GEMM_STORE(M, N, m, c, grad_weight[((size_t)g * cout_g + m) * N + c] = value)
}

/* grad_bias[c] = sum over n and pixels of grad_out[n][c][...]. Tiling: one work-group per channel; its
 * work-items stride through the channel's planes and a local tree reduces their partial sums. */
__kernel void an_bias_grad_nchw(__global const float *grad_out, __global float *grad_bias, uint batch, uint channels,
                                uint plane)
{
    __local float scratch[AN_SOFTMAX_WG];
    const uint lid = get_local_id(0), size = get_local_size(0), c = get_group_id(0);
    float sum = 0.0f;
    for (uint n = 0; n < batch; n++) {
        __global const float *src = grad_out + ((size_t)n * channels + c) * plane;
        for (uint i = lid; i < plane; i += size)
            sum += src[i];
    }
    const float total = an_work_group_sum(scratch, sum);
    if (lid == 0)
        grad_bias[c] = total;
}

/* FC backward data: C[i][b] = sum_o W[o][i] * grad_out[b][o], written to grad_in[b][i]. */
__kernel __attribute__((reqd_work_group_size(16, 16, 1))) void
an_fc_backward_data(__global const float *grad_out, __global const float *weight, __global float *grad_in, uint batch,
                    uint in_features, uint out_features)
{
    AN_GEMM_PROLOGUE
    AN_GEMM_LOOP(out_features, AN_LOAD_A_COLUMN_MAJOR(weight, in_features, in_features, out_features),
                 AN_LOAD_B_TRANSPOSED(grad_out, out_features, batch, out_features))
    AN_GEMM_STORE(in_features, batch, f, b, grad_in[(size_t)b * in_features + f] = value)
}

/* FC backward weights: C[o][i] = sum_b grad_out[b][o] * in[b][i], written to grad_weight[o][i]. */
__kernel __attribute__((reqd_work_group_size(16, 16, 1))) void
an_fc_backward_weights(__global const float *in, __global const float *grad_out, __global float *grad_weight,
                       uint batch, uint in_features, uint out_features)
{
    AN_GEMM_PROLOGUE
    AN_GEMM_LOOP(batch, AN_LOAD_A_COLUMN_MAJOR(grad_out, out_features, out_features, batch),
                 AN_LOAD_B_ROW_MAJOR(in, in_features, in_features, batch))
    AN_GEMM_STORE(out_features, in_features, o, f, grad_weight[(size_t)o * in_features + f] = value)
}

/* grad_bias[o] = sum_b grad_out[b][o], in batch order (the reference's). One work-item per feature. */
__kernel void an_bias_grad_rows(__global const float *grad_out, __global float *grad_bias, uint batch, uint features)
{
    const uint o = get_global_id(0);
    if (o >= features)
        return;
    float sum = 0.0f;
    for (uint b = 0; b < batch; b++)
        sum += grad_out[(size_t)b * features + o];
    grad_bias[o] = sum;
}

/* Max pooling backward without atomics: one work-item per INPUT element gathers the gradients of the
 * windows whose maximum it is (first maximum in window order, NaN wins, as in the forward kernel), visiting
 * windows in (oy, ox) order, the order in which the reference scatters them. */
__kernel void an_max_pool2d_backward(__global const float *in, __global const float *grad_out,
                                     __global float *grad_in, uint planes, uint in_h, uint in_w, uint out_h,
                                     uint out_w, uint ksize, uint stride)
{
    const uint id = get_global_id(0), ihw = in_h * in_w;
    if (id >= planes * ihw)
        return;
    const uint plane = id / ihw, r = id - plane * ihw, y = r / in_w, x = r - y * in_w;
    __global const float *src = in + (size_t)plane * ihw;
    __global const float *g = grad_out + (size_t)plane * out_h * out_w;
    /* Windows oy with oy * stride <= y < oy * stride + ksize. */
    const uint oy0 = y + 1 > ksize ? (y + 1 - ksize + stride - 1) / stride : 0;
    const uint ox0 = x + 1 > ksize ? (x + 1 - ksize + stride - 1) / stride : 0;
    const uint oy1 = min(y / stride, out_h - 1), ox1 = min(x / stride, out_w - 1);
    float sum = 0.0f;
    for (uint oy = oy0; oy <= oy1 && oy < out_h; oy++) {
        for (uint ox = ox0; ox <= ox1 && ox < out_w; ox++) {
            uint best_index = oy * stride * in_w + ox * stride;
            float best = -INFINITY;
            for (uint ky = 0; ky < ksize; ky++)
                for (uint kx = 0; kx < ksize; kx++) {
                    const uint index = (oy * stride + ky) * in_w + ox * stride + kx;
                    const float v = src[index];
                    if (v > best || isnan(v)) {
                        best = v;
                        best_index = index;
                    }
                }
            if (best_index == r)
                sum += g[oy * out_w + ox];
        }
    }
    grad_in[id] = sum;
}

/* Adaptive average pooling backward: one work-item per input element sums the shares of the cells that
 * cover it (cells may overlap), in (oy, ox) order like the reference. */
__kernel void an_adaptive_avg_pool2d_backward(__global const float *grad_out, __global float *grad_in, uint planes,
                                              uint in_h, uint in_w, uint out_h, uint out_w)
{
    const uint id = get_global_id(0), ihw = in_h * in_w;
    if (id >= planes * ihw)
        return;
    const uint plane = id / ihw, r = id - plane * ihw, y = r / in_w, x = r - y * in_w;
    __global const float *g = grad_out + (size_t)plane * out_h * out_w;
    float sum = 0.0f;
    for (uint oy = 0; oy < out_h; oy++) {
        const uint y0 = (uint)(((ulong)oy * in_h) / out_h), y1 = (uint)(((ulong)(oy + 1) * in_h + out_h - 1) / out_h);
        if (y < y0 || y >= y1)
            continue;
        for (uint ox = 0; ox < out_w; ox++) {
            const uint x0 = (uint)(((ulong)ox * in_w) / out_w), x1 = (uint)(((ulong)(ox + 1) * in_w + out_w - 1) / out_w);
            if (x >= x0 && x < x1)
                sum += g[oy * out_w + ox] / (float)((y1 - y0) * (x1 - x0));
        }
    }
    grad_in[id] = sum;
}

/* s_c = k + alpha * (sum of squares over channel c's window), summed as the forward kernel does. */
inline float an_lrn_scale(__global const float *image, uint plane, uint channels, uint size, float alpha, float k,
                          int c)
{
    const int before = (int)(size / 2), after = (int)((size - 1) / 2);
    const int c0 = max(c - before, 0), c1 = min(c + after, (int)channels - 1);
    float sum = 0.0f;
    for (int j = c0; j <= c1; j++) {
        const float v = image[(size_t)j * plane];
        sum += v * v;
    }
    return k + alpha * sum;
}

/* LRN backward: with b_c = a_c s_c^-beta, grad a_i = g_i s_i^-beta - 2 alpha beta a_i sum_c g_c b_c / s_c over
 * the channels c whose window holds i, i.e. c in [i - after, i + before]. One work-item per element. */
__kernel void an_lrn_backward(__global const float *in, __global const float *out, __global const float *grad_out,
                              __global float *grad_in, uint batch, uint channels, uint plane, uint size, float alpha,
                              float beta, float k)
{
    const uint id = get_global_id(0);
    if (id >= batch * channels * plane)
        return;
    const uint n = id / (channels * plane), r = id - n * channels * plane, i = r / plane, p = r - i * plane;
    const size_t base = (size_t)n * channels * plane + p;
    const int before = (int)(size / 2), after = (int)((size - 1) / 2);
    const int c0 = max((int)i - after, 0), c1 = min((int)i + before, (int)channels - 1);
    float cross = 0.0f;
    for (int c = c0; c <= c1; c++) {
        const size_t cp = base + (size_t)c * plane;
        cross += grad_out[cp] * out[cp] / an_lrn_scale(in + base, plane, channels, size, alpha, k, c);
    }
    const float own = pow(an_lrn_scale(in + base, plane, channels, size, alpha, k, (int)i), -beta);
    grad_in[id] = grad_out[id] * own - 2.0f * alpha * beta * in[id] * cross;
}

/* From the ReLU's output: grad_in = out > 0 ? grad_out : 0. In place allowed (each element read, then
 * written, by one work-item). */
__kernel void an_relu_backward(__global const float *out, __global const float *grad_out, __global float *grad_in,
                               uint count)
{
    const uint i = get_global_id(0);
    if (i < count)
        grad_in[i] = out[i] > 0.0f ? grad_out[i] : 0.0f;
}

/* Softmax cross-entropy, one work-group per image (the softmax kernel's reduction scheme). A label that is
 * not an integer class index sets *status (read by sync); that image's outputs are then left unwritten. */
__kernel void an_softmax_cross_entropy(__global const float *logits, __global const float *labels,
                                       __global float *grad_logits, __global float *losses,
                                       __global volatile int *status, uint batch, uint classes)
{
    __local float scratch[AN_SOFTMAX_WG];
    const uint lid = get_local_id(0), size = get_local_size(0), row = get_group_id(0);
    const float label_value = labels[row];
    if (!(label_value >= 0.0f && label_value < (float)classes) || label_value != floor(label_value)) {
        if (lid == 0)
            *status = 1;
        return; /* the whole work-group returns: no barrier is left waiting */
    }
    const uint label = (uint)label_value;
    __global const float *x = logits + (size_t)row * classes;
    __global float *g = grad_logits + (size_t)row * classes;
    float row_max, exp_sum;
    an_row_softmax_stats(scratch, x, classes, &row_max, &exp_sum);
    const float log_sum = row_max + log(exp_sum);
    if (lid == 0)
        losses[row] = log_sum - x[label];
    const float inv_batch = 1.0f / (float)batch;
    for (uint i = lid; i < classes; i += size)
        g[i] = (exp(x[i] - log_sum) - (i == label ? 1.0f : 0.0f)) * inv_batch;
}

/* SGD with momentum and weight decay (torch.optim.SGD): v = momentum * v + (grad + decay * param);
 * param -= lr * v. Contraction off so the update rounds exactly as the reference's. */
__kernel void an_sgd_update(__global float *param, __global const float *grad, __global float *velocity, uint count,
                            float learning_rate, float momentum, float weight_decay)
{
#pragma OPENCL FP_CONTRACT OFF
    const uint i = get_global_id(0);
    if (i < count) {
        const float v = momentum * velocity[i] + (grad[i] + weight_decay * param[i]);
        velocity[i] = v;
        param[i] -= learning_rate * v;
    }
}
