/* Tiled matrix products: convolution as an implicit GEMM, and fully connected layers.
 *
 * Tiling scheme (every kernel in this file). C = A (M x K) * B (K x N). A work-group of 16 x 16 work-items
 * computes a 64 x 64 tile of C; work-item (lx, ly) owns a 4 x 4 register block, rows ly + 16 i and columns
 * lx + 16 j. Strided (not contiguous) ownership makes the inner loop read 16 consecutive B values and one
 * broadcast A value per half-warp: no local-memory bank conflicts. K is walked 16 at a time: each step the
 * work-group stages a 16 x 64 slice of A and of B in __local memory (4 values per work-item each, padded to
 * 65 columns so the transposing stores of a k-fast loader do not collide on one bank), waits, and every
 * work-item does 16 x 4 x 4 multiply-adds from registers. Out-of-range rows, columns and k are staged as
 * zeros, so edges need no special inner loop.
 *
 * Two thread-to-element mappings serve the loaders, chosen so global reads coalesce:
 *   k-fast: kk = tid % 16, row = tid / 16 + 16 i  (the source is contiguous along k, e.g. W[m][k]);
 *   n-fast: col = tid % 64, kk = tid / 64 + 4 i   (contiguous along m or n, or a per-column decode such as
 *           the im2col address of one output pixel, computed once per kernel instead of once per load).
 *
 * Convolution never materialises im2col: its B loader computes each element's input address from a tap
 * table (k -> input channel, ky, kx packed in an int, built once per layer) and the column's output pixel.
 * The batch is folded into N, so one launch covers every image; groups are the third NDRange dimension. */

#define AN_TM 64
#define AN_TK 16
#define AN_LDS 65

/* The 4 x 4 register block of one work-item: acc[i][j] is row ly + 16 i, column lx + 16 j. */
#define AN_ACC_DECLARE                                                                                        \
    float acc[4][4];                                                                                         \
    for (int i_ = 0; i_ < 4; i_++)                                                                           \
        for (int j_ = 0; j_ < 4; j_++)                                                                       \
            acc[i_][j_] = 0.0f;

/* 16 rank-1 updates from the staged tiles. */
#define AN_TILE_MAC                                                                                          \
    for (int kk_ = 0; kk_ < AN_TK; kk_++) {                                                                  \
        float a_[4], b_[4];                                                                                  \
        for (int i_ = 0; i_ < 4; i_++)                                                                       \
            a_[i_] = As[kk_ * AN_LDS + ly + 16 * i_];                                                         \
        for (int j_ = 0; j_ < 4; j_++)                                                                       \
            b_[j_] = Bs[kk_ * AN_LDS + lx + 16 * j_];                                                         \
        for (int i_ = 0; i_ < 4; i_++)                                                                       \
            for (int j_ = 0; j_ < 4; j_++)                                                                   \
                acc[i_][j_] += a_[i_] * b_[j_];                                                              \
    }

/* The K loop: LOAD_A and LOAD_B fill As/Bs for the slice starting at k0. */
#define AN_GEMM_LOOP(K, LOAD_A, LOAD_B)                                                                      \
    for (uint k0 = 0; k0 < (K); k0 += AN_TK) {                                                               \
        LOAD_A;                                                                                              \
        LOAD_B;                                                                                              \
        barrier(CLK_LOCAL_MEM_FENCE);                                                                        \
        AN_TILE_MAC;                                                                                         \
        barrier(CLK_LOCAL_MEM_FENCE);                                                                        \
    }

#define AN_GEMM_PROLOGUE                                                                                     \
    const uint lx = get_local_id(0), ly = get_local_id(1);                                                   \
    const uint tid = ly * 16 + lx;                                                                           \
    const uint n0 = get_group_id(0) * AN_TM, m0 = get_group_id(1) * AN_TM;                                   \
    __local float As[AN_TK * AN_LDS];                                                                        \
    __local float Bs[AN_TK * AN_LDS];                                                                        \
    AN_ACC_DECLARE

/* The epilogue: STORE runs once for each element of this work-item's register block that lies inside the
 * M x N result, with ROW and COL (names the caller picks) its coordinates and `value` its sum. */
#define AN_GEMM_STORE(M, N, ROW, COL, STORE)                                                                 \
    for (int j_ = 0; j_ < 4; j_++) {                                                                         \
        const uint COL = n0 + lx + 16 * j_;                                                                  \
        if (COL >= (N))                                                                                      \
            continue;                                                                                        \
        for (int i_ = 0; i_ < 4; i_++) {                                                                     \
            const uint ROW = m0 + ly + 16 * i_;                                                              \
            if (ROW < (M)) {                                                                                 \
                const float value = acc[i_][j_];                                                             \
                STORE;                                                                                       \
            }                                                                                                \
        }                                                                                                    \
    }

/* A is row-major [M][lda] (k contiguous): k-fast. */
#define AN_LOAD_A_ROW_MAJOR(A, lda, M, K)                                                                    \
    {                                                                                                        \
        const uint kk = tid & 15, k = k0 + kk;                                                               \
        for (int i = 0; i < 4; i++) {                                                                        \
            const uint mm = (tid >> 4) + 16 * i, m = m0 + mm;                                                \
            As[kk * AN_LDS + mm] = (m < (M) && k < (K)) ? (A)[m * (lda) + k] : 0.0f;                          \
        }                                                                                                    \
    }

/* A[m][k] stored as X[k][lda] (m contiguous): n-fast. */
#define AN_LOAD_A_COLUMN_MAJOR(A, lda, M, K)                                                                 \
    {                                                                                                        \
        const uint mm = tid & 63, m = m0 + mm;                                                               \
        for (int i = 0; i < 4; i++) {                                                                        \
            const uint kk = (tid >> 6) + 4 * i, k = k0 + kk;                                                 \
            As[kk * AN_LDS + mm] = (m < (M) && k < (K)) ? (A)[k * (lda) + m] : 0.0f;                          \
        }                                                                                                    \
    }

/* B[k][n] stored as X[n][ldb] (k contiguous, e.g. FC input rows): k-fast. */
#define AN_LOAD_B_TRANSPOSED(B, ldb, N, K)                                                                   \
    {                                                                                                        \
        const uint kk = tid & 15, k = k0 + kk;                                                               \
        for (int i = 0; i < 4; i++) {                                                                        \
            const uint nn = (tid >> 4) + 16 * i, n = n0 + nn;                                                \
            Bs[kk * AN_LDS + nn] = (n < (N) && k < (K)) ? (B)[n * (ldb) + k] : 0.0f;                          \
        }                                                                                                    \
    }

/* B[k][n] stored as X[k][ldb] (n contiguous): n-fast. */
#define AN_LOAD_B_ROW_MAJOR(B, ldb, N, K)                                                                    \
    {                                                                                                        \
        const uint nn = tid & 63, n = n0 + nn;                                                               \
        for (int i = 0; i < 4; i++) {                                                                        \
            const uint kk = (tid >> 6) + 4 * i, k = k0 + kk;                                                 \
            Bs[kk * AN_LDS + nn] = (n < (N) && k < (K)) ? (B)[k * (ldb) + n] : 0.0f;                          \
        }                                                                                                    \
    }

/* Tap table entries: input channel (within the group) << 16 | ky << 8 | kx. */
#define AN_TAP_IC(t) ((uint)(t) >> 16)
#define AN_TAP_KY(t) (((uint)(t) >> 8) & 255u)
#define AN_TAP_KX(t) ((uint)(t)&255u)

/* The conv B loader (n-fast): this work-item's column is output pixel p, decoded once before the K loop
 * into src (its image and group), iy0 and ix0; each k is one tap from the table. */
#define AN_LOAD_B_CONV                                                                                       \
    for (int i = 0; i < 4; i++) {                                                                            \
        const uint kk = (tid >> 6) + 4 * i, k = k0 + kk;                                                     \
        float v = 0.0f;                                                                                      \
        if (p < P && k < K) {                                                                                \
            const int t = taps[k];                                                                           \
            const int iy = iy0 + (int)AN_TAP_KY(t);                                                          \
            const int ix = ix0 + (int)AN_TAP_KX(t);                                                          \
            if (iy >= 0 && iy < (int)in_h && ix >= 0 && ix < (int)in_w)                                      \
                v = src[(AN_TAP_IC(t) * in_h + (uint)iy) * in_w + (uint)ix];                                 \
        }                                                                                                    \
        Bs[kk * AN_LDS + bn] = v;                                                                            \
    }

/* Convolution forward: per group g, C[oc][p] = sum_k W[g*M + oc][k] * im2col(in)[k][p] with p = (n, oy, ox)
 * over the whole batch, then bias and (optionally) ReLU into NCHW out. M = out channels per group,
 * K = cin_g * kernel^2, P = batch * out_h * out_w. */
__kernel __attribute__((reqd_work_group_size(16, 16, 1))) void
an_conv2d_forward(__global const float *in, __global const float *weight, __global const float *bias,
                  __global const int *taps, __global float *out, uint cin_g, uint in_channels, uint in_h,
                  uint in_w, uint out_channels, uint out_h, uint out_w, uint stride, uint pad, uint M, uint K,
                  uint P, uint relu)
{
    AN_GEMM_PROLOGUE
    const uint g = get_group_id(2);
    __global const float *wg = weight + (size_t)g * M * K;
    const uint bn = tid & 63, p = n0 + bn, ohw = out_h * out_w;
    const uint img = p < P ? p / ohw : 0, rem = p - img * ohw;
    const int iy0 = (int)((rem / out_w) * stride) - (int)pad;
    const int ix0 = (int)((rem % out_w) * stride) - (int)pad;
    __global const float *src = in + ((size_t)img * in_channels + (size_t)g * cin_g) * in_h * in_w;
    AN_GEMM_LOOP(K, AN_LOAD_A_ROW_MAJOR(wg, K, M, K), AN_LOAD_B_CONV)
    for (int j = 0; j < 4; j++) {
        const uint pc = n0 + lx + 16 * j;
        if (pc >= P)
            continue;
        const uint n = pc / ohw, r = pc - n * ohw;
        for (int i = 0; i < 4; i++) {
            const uint m = m0 + ly + 16 * i;
            if (m >= M)
                continue;
            const uint oc = g * M + m;
            float v = acc[i][j] + bias[oc];
            out[((size_t)n * out_channels + oc) * ohw + r] = relu && v < 0.0f ? 0.0f : v;
        }
    }
}

/* Convolution forward for CPU devices (PoCL and the like), where __local tiles and barriers are emulated in
 * memory and cost more than they save. Tiling: one work-item computes an 8 (output channels) x 8 (output
 * pixels of the flattened batch) block held in eight float8 accumulators, with no local memory: each
 * k = (ic, ky, kx) of the tap table gathers 8 input values once and feeds 8 vector multiply-adds, and the
 * 8 weight values of the block are read from consecutive rows. */
__kernel void an_conv2d_forward_cpu(__global const float *in, __global const float *weight,
                                    __global const float *bias, __global const int *taps, __global float *out,
                                    uint cin_g, uint in_channels, uint in_h, uint in_w, uint out_channels,
                                    uint out_h, uint out_w, uint stride, uint pad, uint M, uint K, uint P,
                                    uint relu, uint ksize)
{
    /* Channel blocks are the fastest dimension: consecutive work-items share their 8 pixels' inputs while
     * they are in cache and walk the (smaller) weights instead. */
    const uint m0 = get_global_id(0) * 8, p0 = get_global_id(1) * 8, g = get_global_id(2);
    if (p0 >= P || m0 >= M)
        return;
    const uint ohw = out_h * out_w, plane = in_h * in_w;
    /* Each of the 8 pixels: the offset of its window's origin (which may lie in the padding), its origin's
     * coordinates, and whether every tap of its window is inside the image. */
    int origin[8], iy0[8], ix0[8];
    int interior = 1;
    for (int j = 0; j < 8; j++) {
        const uint p = min(p0 + (uint)j, P - 1), n = p / ohw, r = p - n * ohw;
        iy0[j] = (int)((r / out_w) * stride) - (int)pad;
        ix0[j] = (int)((r % out_w) * stride) - (int)pad;
        origin[j] = (int)((n * in_channels + g * cin_g) * plane) + iy0[j] * (int)in_w + ix0[j];
        interior &= iy0[j] >= 0 && ix0[j] >= 0 && iy0[j] + (int)ksize <= (int)in_h && ix0[j] + (int)ksize <= (int)in_w;
    }
    float8 acc[8];
    for (int i = 0; i < 8; i++)
        acc[i] = 0.0f;
    __global const float *wg = weight + ((size_t)g * M + m0) * K;
    const uint last_row = min(M - m0, 8u) - 1;
    for (uint k = 0; k < K; k++) {
        const int t = taps[k];
        const int ky = (int)AN_TAP_KY(t), kx = (int)AN_TAP_KX(t);
        const int offset = (int)(AN_TAP_IC(t) * plane) + ky * (int)in_w + kx;
        float v[8];
        if (interior) {
            for (int j = 0; j < 8; j++)
                v[j] = in[origin[j] + offset];
        } else {
            for (int j = 0; j < 8; j++) {
                const int iy = iy0[j] + ky, ix = ix0[j] + kx;
                v[j] = (iy >= 0 && iy < (int)in_h && ix >= 0 && ix < (int)in_w) ? in[origin[j] + offset] : 0.0f;
            }
        }
        const float8 b = vload8(0, v);
        /* Rows past M (the last block) repeat the last row: branch-free, and never stored. */
        for (uint i = 0; i < 8; i++)
            acc[i] += wg[(size_t)min(i, last_row) * K + k] * b;
    }
    for (uint i = 0; i <= last_row; i++) {
        const uint oc = g * M + m0 + i;
        float r[8];
        vstore8(acc[i] + bias[oc], 0, r);
        for (uint j = 0; j < 8 && p0 + j < P; j++) {
            const uint p = p0 + j, n = p / ohw, q = p - n * ohw;
            out[((size_t)n * out_channels + oc) * ohw + q] = relu && r[j] < 0.0f ? 0.0f : r[j];
        }
    }
}

/* Fully connected forward for larger batches: C[o][b] = sum_i W[o][i] * x[b][i] + bias[o], written as
 * out[b][o]. M = out_features, N = batch, K = in_features. */
__kernel __attribute__((reqd_work_group_size(16, 16, 1))) void
an_fc_forward_gemm(__global const float *x, __global const float *weight, __global const float *bias,
                   __global float *out, uint batch, uint in_features, uint out_features, uint relu)
{
    AN_GEMM_PROLOGUE
    AN_GEMM_LOOP(in_features, AN_LOAD_A_ROW_MAJOR(weight, in_features, out_features, in_features),
                 AN_LOAD_B_TRANSPOSED(x, in_features, batch, in_features))
    AN_GEMM_STORE(out_features, batch, o, b, {
        const float v = value + bias[o];
        out[(size_t)b * out_features + o] = relu && v < 0.0f ? 0.0f : v;
    })
}

/* Fully connected forward for small batches (<= AN_FC_SMALL_BATCH), where a 64-column tile would be mostly
 * padding and the layer is bound by reading the weights once. Tiling: one work-group of 64 per output
 * feature; its work-items stride through the weight row (coalesced) keeping one partial sum per image in
 * registers, then a local-memory tree reduces the 64 partial sums of each image. */
#define AN_FC_SMALL_BATCH 8
#define AN_FC_SMALL_WG 64
__kernel __attribute__((reqd_work_group_size(AN_FC_SMALL_WG, 1, 1))) void
an_fc_forward_small(__global const float *x, __global const float *weight, __global const float *bias,
                    __global float *out, uint batch, uint in_features, uint out_features, uint relu)
{
    __local float partial[AN_FC_SMALL_BATCH * AN_FC_SMALL_WG];
    const uint lid = get_local_id(0), o = get_group_id(0);
    __global const float *w = weight + (size_t)o * in_features;
    float sum[AN_FC_SMALL_BATCH];
    for (int b = 0; b < AN_FC_SMALL_BATCH; b++)
        sum[b] = 0.0f;
    for (uint i = lid; i < in_features; i += AN_FC_SMALL_WG) {
        const float wv = w[i];
        for (uint b = 0; b < AN_FC_SMALL_BATCH; b++)
            if (b < batch)
                sum[b] += wv * x[(size_t)b * in_features + i];
    }
    for (int b = 0; b < AN_FC_SMALL_BATCH; b++)
        partial[b * AN_FC_SMALL_WG + lid] = sum[b];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint step = AN_FC_SMALL_WG / 2; step > 0; step >>= 1) {
        if (lid < step)
            for (int b = 0; b < AN_FC_SMALL_BATCH; b++)
                partial[b * AN_FC_SMALL_WG + lid] += partial[b * AN_FC_SMALL_WG + lid + step];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid < batch) {
        float v = partial[lid * AN_FC_SMALL_WG] + bias[o];
        out[(size_t)lid * out_features + o] = relu && v < 0.0f ? 0.0f : v;
    }
}

/* Fully connected forward on CPU devices (PoCL and the like), where work-group reductions and __local tiles
 * are emulated in memory: one work-item per output feature streams its weight row with 8-wide vector loads
 * (the explicit SIMD a CPU compiler keeps), 4 images at a time, one partial-sum vector per image. Tiling:
 * none; the weight row and 4 input rows are the working set, from cache. Requires in_features % 8 == 0
 * (the host uses the other kernels otherwise). */
__kernel void an_fc_forward_rows(__global const float *x, __global const float *weight, __global const float *bias,
                                 __global float *out, uint batch, uint in_features, uint out_features, uint relu)
{
    const uint o = get_global_id(0);
    if (o >= out_features)
        return;
    __global const float *w = weight + (size_t)o * in_features;
    for (uint b0 = 0; b0 < batch; b0 += 4) {
        float8 s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        const uint nb = min(batch - b0, 4u);
        __global const float *x0 = x + (size_t)b0 * in_features;
        for (uint i = 0; i < in_features; i += 8) {
            const float8 wv = vload8(0, w + i);
            s0 += wv * vload8(0, x0 + i);
            if (nb > 1)
                s1 += wv * vload8(0, x0 + in_features + i);
            if (nb > 2)
                s2 += wv * vload8(0, x0 + 2 * (size_t)in_features + i);
            if (nb > 3)
                s3 += wv * vload8(0, x0 + 3 * (size_t)in_features + i);
        }
        float8 s[4] = {s0, s1, s2, s3};
        for (uint b = 0; b < nb; b++) {
            const float8 v = s[b];
            float r = ((v.s0 + v.s1) + (v.s2 + v.s3)) + ((v.s4 + v.s5) + (v.s6 + v.s7)) + bias[o];
            out[(size_t)(b0 + b) * out_features + o] = relu && r < 0.0f ? 0.0f : r;
        }
    }
}
