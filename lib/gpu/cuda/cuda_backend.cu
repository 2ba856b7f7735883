/* The CUDA backend module (libalexnet-cuda.so).
 *
 * Runtime libraries. The module links the CUDA runtime statically (libcudart_static), which loads the
 * driver (libcuda.so.1) itself on first use: without a driver or a device the module still loads and the
 * backend is listed as unavailable with the runtime's reason. cuBLAS is dlopened by the probe (only once a
 * device was found), so merely loading the module costs nothing and a missing cuBLAS is a reason, not a
 * failure to load. Matrix products go to cuBLAS (FP32, no TF32: results are compared with the reference to
 * 1e-4); im2col/col2im, bias and activation, pooling, LRN, softmax, dropout, the backward passes, softmax
 * cross-entropy and SGD are this file's kernels.
 *
 * Launch overhead. Ops do not launch anything when called: they are recorded (a fixed-size POD record per
 * op) and executed at the next sync, upload or download. A recorded sequence of two or more ops runs eagerly
 * the first time it is seen (loading kernels and initialising cuBLAS outside any capture), is captured into a
 * CUDA graph the second time, and that graph is replayed whenever the same sequence (same ops, shapes and
 * buffers) comes again; so from the second batch of a context on, a batch costs one graph launch, not ~20
 * kernel and cuBLAS launches. ALEXNET_CUDA_GRAPHS=0 runs the records eagerly instead (e.g. under compute-sanitizer).
 *
 * Memory. Activations, weights, the im2col scratch and the cuBLAS workspace are device memory, outside
 * the alexnet_allocator (as is what the CUDA runtime, driver and cuBLAS allocate for themselves). Host
 * structs (context, buffer handles, op records, the graph cache) use the context's allocator.
 *
 * Convolution: per chunk of images, im2col into scratch, then one strided-batched SGEMM per group whose
 * output strides land directly in NCHW, then one bias(+ReLU) pass. The chunk is as many images as fit a
 * 256 MiB scratch (sized by prepare()). */
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "backend/backend.h"
#include "gpu/common/plugin_host.h"
#include "util/alloc.h"
}

#define AN_CUDA_MAX_DEVICES 16
#define AN_CUDA_MIN_MAJOR 8 /* SASS for sm_80 and sm_90, PTX for compute_90 (see lib/gpu/meson.build) */
#define AN_CUDA_SCRATCH_BUDGET ((size_t)256 << 20)
#define AN_CUDA_CUBLAS_WORKSPACE ((size_t)32 << 20)
#define AN_CUDA_MAX_PENDING 128
#define AN_CUDA_GRAPH_CACHE 8
#define AN_CUDA_THREADS 256

/* ================================================================================================ */
/* Kernels. Unless noted otherwise: one thread per output element, grid-stride loops (so any size works
 * with a bounded grid), 64-bit offsets. */

#define AN_GRID_STRIDE(i, count)                                                                             \
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(count);             \
         i += (long long)gridDim.x * blockDim.x)

/* col[i][c * k*k + ky * k + kx][oy * ow + ox] = in[n0 + i][c][oy * s - p + ky][ox * s - p + kx] (0 outside). */
__global__ void an_k_im2col(const float *in, float *col, int images, int first, int channels, int h, int w, int k,
                            int stride, int pad, int oh, int ow)
{
    const long long P = (long long)oh * ow, rows = (long long)channels * k * k;
    AN_GRID_STRIDE(t, (long long)images * rows * P)
    {
        const long long p = t % P, r = (t / P) % rows, i = t / (P * rows);
        const int c = (int)(r / (k * k)), tap = (int)(r % (k * k)), ky = tap / k, kx = tap % k;
        const int oy = (int)(p / ow), ox = (int)(p % ow);
        const int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
        float v = 0.0f;
        if (iy >= 0 && iy < h && ix >= 0 && ix < w)
            v = in[(((long long)(first + i) * channels + c) * h + iy) * w + ix];
        col[t] = v;
    }
}

/* The inverse gather of im2col for backward data: each input pixel sums the col entries that came from it,
 * taps in (ky, kx) order. No atomics, so the result is deterministic. */
__global__ void an_k_col2im(const float *col, float *grad_in, int images, int first, int channels, int h, int w,
                            int k, int stride, int pad, int oh, int ow)
{
    const long long P = (long long)oh * ow, rows = (long long)channels * k * k;
    AN_GRID_STRIDE(t, (long long)images * channels * h * w)
    {
        const int x = (int)(t % w), y = (int)((t / w) % h), c = (int)((t / ((long long)w * h)) % channels);
        const long long i = t / ((long long)w * h * channels);
        float sum = 0.0f;
        for (int ky = 0; ky < k; ky++) {
            const int ty = y + pad - ky;
            if (ty < 0 || ty % stride != 0 || ty / stride >= oh)
                continue;
            for (int kx = 0; kx < k; kx++) {
                const int tx = x + pad - kx;
                if (tx < 0 || tx % stride != 0 || tx / stride >= ow)
                    continue;
                sum += col[(i * rows + (long long)c * k * k + ky * k + kx) * P + (ty / stride) * ow + tx / stride];
            }
        }
        grad_in[(((long long)(first + i) * channels + c) * h + y) * w + x] = sum;
    }
}

/* out[n][c][p] += bias[c], then ReLU if asked; rows = n * channels planes of `plane` elements. */
__global__ void an_k_bias_act(float *out, const float *bias, long long count, int channels, long long plane,
                              int relu)
{
    AN_GRID_STRIDE(t, count)
    {
        float v = out[t] + bias[(t / plane) % channels];
        out[t] = relu && v < 0.0f ? 0.0f : v;
    }
}

__global__ void an_k_max_pool(const float *in, float *out, long long planes, int h, int w, int oh, int ow, int k,
                              int stride)
{
    AN_GRID_STRIDE(t, planes * oh * ow)
    {
        const int ox = (int)(t % ow), oy = (int)((t / ow) % oh);
        const float *src = in + (t / ((long long)oh * ow)) * h * w + (long long)oy * stride * w + ox * stride;
        float best = -INFINITY;
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                const float v = src[ky * w + kx];
                if (v > best || isnan(v)) /* NaN propagates, as in PyTorch */
                    best = v;
            }
        out[t] = best;
    }
}

__device__ inline int an_cell_begin(int i, int in, int out) { return (int)(((long long)i * in) / out); }
__device__ inline int an_cell_end(int i, int in, int out) { return (int)(((long long)(i + 1) * in + out - 1) / out); }

__global__ void an_k_avg_pool(const float *in, float *out, long long planes, int h, int w, int oh, int ow)
{
    AN_GRID_STRIDE(t, planes * oh * ow)
    {
        const int ox = (int)(t % ow), oy = (int)((t / ow) % oh);
        const float *src = in + (t / ((long long)oh * ow)) * h * w;
        const int y0 = an_cell_begin(oy, h, oh), y1 = an_cell_end(oy, h, oh);
        const int x0 = an_cell_begin(ox, w, ow), x1 = an_cell_end(ox, w, ow);
        float sum = 0.0f;
        for (int y = y0; y < y1; y++)
            for (int x = x0; x < x1; x++)
                sum += src[y * w + x];
        out[t] = sum / (float)((y1 - y0) * (x1 - x0));
    }
}

__device__ inline float an_lrn_scale(const float *image, long long plane, int channels, int size, float alpha,
                                     float k, int c)
{
    const int c0 = max(c - size / 2, 0), c1 = min(c + (size - 1) / 2, channels - 1);
    float sum = 0.0f;
    for (int j = c0; j <= c1; j++) {
        const float v = image[j * plane];
        sum += v * v;
    }
    return k + alpha * sum;
}

__global__ void an_k_lrn(const float *in, float *out, long long count, int channels, long long plane, int size,
                         float alpha, float beta, float k)
{
    AN_GRID_STRIDE(t, count)
    {
        const long long p = t % plane, n = t / (plane * channels);
        const int c = (int)((t / plane) % channels);
        out[t] = in[t] / powf(an_lrn_scale(in + n * channels * plane + p, plane, channels, size, alpha, k, c), beta);
    }
}

__global__ void an_k_lrn_backward(const float *in, const float *out, const float *grad_out, float *grad_in,
                                  long long count, int channels, long long plane, int size, float alpha, float beta,
                                  float k)
{
    AN_GRID_STRIDE(t, count)
    {
        const long long p = t % plane, n = t / (plane * channels);
        const int i = (int)((t / plane) % channels);
        const long long base = n * channels * plane + p;
        const int c0 = max(i - (size - 1) / 2, 0), c1 = min(i + size / 2, channels - 1);
        float cross = 0.0f;
        for (int c = c0; c <= c1; c++)
            cross += grad_out[base + c * plane] * out[base + c * plane] /
                     an_lrn_scale(in + base, plane, channels, size, alpha, k, c);
        const float own = powf(an_lrn_scale(in + base, plane, channels, size, alpha, k, i), -beta);
        grad_in[t] = grad_out[t] * own - 2.0f * alpha * beta * in[t] * cross;
    }
}

/* Block-wide reductions over AN_CUDA_THREADS threads through shared memory. */
__device__ float an_block_max(float v, float *scratch)
{
    scratch[threadIdx.x] = v;
    __syncthreads();
    for (int step = blockDim.x / 2; step > 0; step >>= 1) {
        if ((int)threadIdx.x < step)
            scratch[threadIdx.x] = fmaxf(scratch[threadIdx.x], scratch[threadIdx.x + step]);
        __syncthreads();
    }
    const float result = scratch[0];
    __syncthreads();
    return result;
}

__device__ float an_block_sum(float v, float *scratch)
{
    scratch[threadIdx.x] = v;
    __syncthreads();
    for (int step = blockDim.x / 2; step > 0; step >>= 1) {
        if ((int)threadIdx.x < step)
            scratch[threadIdx.x] += scratch[threadIdx.x + step];
        __syncthreads();
    }
    const float result = scratch[0];
    __syncthreads();
    return result;
}

/* One block per row: the maximum, then the sum of exponentials, each a block reduction. */
__global__ void an_k_softmax(const float *in, float *out, int classes)
{
    __shared__ float scratch[AN_CUDA_THREADS];
    const float *x = in + (long long)blockIdx.x * classes;
    float *y = out + (long long)blockIdx.x * classes;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < classes; i += blockDim.x)
        m = fmaxf(m, x[i]);
    m = an_block_max(m, scratch);
    float s = 0.0f;
    for (int i = threadIdx.x; i < classes; i += blockDim.x)
        s += expf(x[i] - m);
    const float inverse = 1.0f / an_block_sum(s, scratch);
    for (int i = threadIdx.x; i < classes; i += blockDim.x)
        y[i] = expf(x[i] - m) * inverse;
}

/* Softmax cross-entropy, one block per image; a label that is not a class index sets *status. */
__global__ void an_k_softmax_xent(const float *logits, const float *labels, float *grad, float *losses, int *status,
                                  int batch, int classes)
{
    __shared__ float scratch[AN_CUDA_THREADS];
    const float label_value = labels[blockIdx.x];
    if (!(label_value >= 0.0f && label_value < (float)classes) || label_value != floorf(label_value)) {
        if (threadIdx.x == 0)
            *status = 1;
        return; /* uniform across the block: no __syncthreads is left waiting */
    }
    const int label = (int)label_value;
    const float *x = logits + (long long)blockIdx.x * classes;
    float *g = grad + (long long)blockIdx.x * classes;
    float m = -INFINITY;
    for (int i = threadIdx.x; i < classes; i += blockDim.x)
        m = fmaxf(m, x[i]);
    m = an_block_max(m, scratch);
    float s = 0.0f;
    for (int i = threadIdx.x; i < classes; i += blockDim.x)
        s += expf(x[i] - m);
    const float log_sum = m + logf(an_block_sum(s, scratch));
    if (threadIdx.x == 0)
        losses[blockIdx.x] = log_sum - x[label];
    const float inv_batch = 1.0f / (float)batch;
    for (int i = threadIdx.x; i < classes; i += blockDim.x)
        g[i] = (expf(x[i] - log_sum) - (i == label ? 1.0f : 0.0f)) * inv_batch;
}

__global__ void an_k_relu(const float *in, float *out, long long count)
{
    AN_GRID_STRIDE(t, count) out[t] = in[t] < 0.0f ? 0.0f : in[t];
}

__global__ void an_k_relu_backward(const float *out, const float *grad_out, float *grad_in, long long count)
{
    AN_GRID_STRIDE(t, count) grad_in[t] = out[t] > 0.0f ? grad_out[t] : 0.0f;
}

/* backend.h's an_dropout_keep, bit for bit. */
__device__ inline bool an_dropout_keep_device(unsigned long long seed, unsigned long long index, float rate)
{
    unsigned long long z = seed + (index + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return __fmul_rn((float)(z >> 40), 1.0f / 16777216.0f) >= rate;
}

__global__ void an_k_dropout(const float *in, float *out, long long count, float rate, float scale,
                             unsigned long long seed)
{
    AN_GRID_STRIDE(t, count) out[t] = an_dropout_keep_device(seed, (unsigned long long)t, rate) ? __fmul_rn(in[t], scale) : 0.0f;
}

/* One block per channel: the sum of its gradient over the batch and the plane. */
__global__ void an_k_bias_grad_nchw(const float *grad_out, float *grad_bias, int batch, int channels, long long plane)
{
    __shared__ float scratch[AN_CUDA_THREADS];
    float s = 0.0f;
    for (int n = 0; n < batch; n++) {
        const float *src = grad_out + ((long long)n * channels + blockIdx.x) * plane;
        for (long long i = threadIdx.x; i < plane; i += blockDim.x)
            s += src[i];
    }
    s = an_block_sum(s, scratch);
    if (threadIdx.x == 0)
        grad_bias[blockIdx.x] = s;
}

/* grad_bias[o] = sum over the batch, in batch order. */
__global__ void an_k_bias_grad_rows(const float *grad_out, float *grad_bias, int batch, int features)
{
    AN_GRID_STRIDE(o, features)
    {
        float s = 0.0f;
        for (int b = 0; b < batch; b++)
            s += grad_out[(long long)b * features + o];
        grad_bias[o] = s;
    }
}

/* Max pooling backward as a gather: each input element takes the gradients of the windows whose (first)
 * maximum it is, windows in (oy, ox) order. */
__global__ void an_k_max_pool_backward(const float *in, const float *grad_out, float *grad_in, long long planes,
                                       int h, int w, int oh, int ow, int k, int stride)
{
    AN_GRID_STRIDE(t, planes * h * w)
    {
        const int x = (int)(t % w), y = (int)((t / w) % h);
        const long long plane = t / ((long long)h * w);
        const float *src = in + plane * h * w;
        const float *g = grad_out + plane * oh * ow;
        const int oy0 = y + 1 > k ? (y + 1 - k + stride - 1) / stride : 0, oy1 = min(y / stride, oh - 1);
        const int ox0 = x + 1 > k ? (x + 1 - k + stride - 1) / stride : 0, ox1 = min(x / stride, ow - 1);
        float s = 0.0f;
        for (int oy = oy0; oy <= oy1; oy++)
            for (int ox = ox0; ox <= ox1; ox++) {
                int best_index = oy * stride * w + ox * stride;
                float best = -INFINITY;
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++) {
                        const int index = (oy * stride + ky) * w + ox * stride + kx;
                        if (src[index] > best || isnan(src[index])) {
                            best = src[index];
                            best_index = index;
                        }
                    }
                if (best_index == y * w + x)
                    s += g[oy * ow + ox];
            }
        grad_in[t] = s;
    }
}

__global__ void an_k_avg_pool_backward(const float *grad_out, float *grad_in, long long planes, int h, int w, int oh,
                                       int ow)
{
    AN_GRID_STRIDE(t, planes * h * w)
    {
        const int x = (int)(t % w), y = (int)((t / w) % h);
        const float *g = grad_out + (t / ((long long)h * w)) * oh * ow;
        float s = 0.0f;
        for (int oy = 0; oy < oh; oy++) {
            const int y0 = an_cell_begin(oy, h, oh), y1 = an_cell_end(oy, h, oh);
            if (y < y0 || y >= y1)
                continue;
            for (int ox = 0; ox < ow; ox++) {
                const int x0 = an_cell_begin(ox, w, ow), x1 = an_cell_end(ox, w, ow);
                if (x >= x0 && x < x1)
                    s += g[oy * ow + ox] / (float)((y1 - y0) * (x1 - x0));
            }
        }
        grad_in[t] = s;
    }
}

/* torch.optim.SGD; the _rn intrinsics keep nvcc from contracting into FMAs, so the update rounds exactly as
 * the reference's. */
__global__ void an_k_sgd(float *param, const float *grad, float *velocity, long long count, float lr, float momentum,
                         float decay)
{
    AN_GRID_STRIDE(t, count)
    {
        const float v = __fadd_rn(__fmul_rn(momentum, velocity[t]), __fadd_rn(grad[t], __fmul_rn(decay, param[t])));
        velocity[t] = v;
        param[t] = __fsub_rn(param[t], __fmul_rn(lr, v));
    }
}

/* ================================================================================================ */
/* cuBLAS, loaded at probe time. */

typedef cublasStatus_t (*an_cublas_create_fn)(cublasHandle_t *);
typedef cublasStatus_t (*an_cublas_destroy_fn)(cublasHandle_t);
typedef cublasStatus_t (*an_cublas_set_stream_fn)(cublasHandle_t, cudaStream_t);
typedef cublasStatus_t (*an_cublas_set_workspace_fn)(cublasHandle_t, void *, size_t);
typedef cublasStatus_t (*an_cublas_sgemm_fn)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                                             const float *, const float *, int, const float *, int, const float *,
                                             float *, int);
typedef cublasStatus_t (*an_cublas_sgemm_batched_fn)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int,
                                                     int, const float *, const float *, int, long long int,
                                                     const float *, int, long long int, const float *, float *, int,
                                                     long long int, int);

struct an_cublas_api {
    an_cublas_create_fn create;
    an_cublas_destroy_fn destroy;
    an_cublas_set_stream_fn set_stream;
    an_cublas_set_workspace_fn set_workspace;
    an_cublas_sgemm_fn sgemm;
    an_cublas_sgemm_batched_fn sgemm_batched;
};

/* ================================================================================================ */
/* Devices: probed once per process. */

struct an_cuda_device {
    char description[128];
    uint64_t memory_bytes;
    int usable;
};

static struct {
    int available;
    char why[320];
    char describe[192];
    int count;
    an_cuda_device devices[AN_CUDA_MAX_DEVICES];
    an_cublas_api blas;
} an_cuda;

static pthread_once_t an_cuda_once = PTHREAD_ONCE_INIT;

static int an_cuda_resolve(void *library, const char *name, void *field, size_t size)
{
    void *symbol = dlsym(library, name);
    if (symbol == NULL) {
        snprintf(an_cuda.why, sizeof an_cuda.why, "the cuBLAS library has no %s", name);
        return 0;
    }
    memcpy(field, &symbol, size);
    return 1;
}

static int an_cuda_load_cublas(void)
{
    char name[64];
    const char *override = getenv("ALEXNET_CUBLAS_LIBRARY");
    if (override != NULL && override[0] != '\0')
        snprintf(name, sizeof name, "%.63s", override);
    else
        snprintf(name, sizeof name, "libcublas.so.%d", CUBLAS_VER_MAJOR);
    void *library = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL) {
        const char *error = dlerror();
        snprintf(an_cuda.why, sizeof an_cuda.why, "CUDA device found, but cuBLAS is missing: cannot load %.63s (%.180s)",
                 name, error != NULL ? error : "unknown error");
        return 0;
    }
    an_cublas_api *b = &an_cuda.blas;
    if (!an_cuda_resolve(library, "cublasCreate_v2", &b->create, sizeof b->create) ||
        !an_cuda_resolve(library, "cublasDestroy_v2", &b->destroy, sizeof b->destroy) ||
        !an_cuda_resolve(library, "cublasSetStream_v2", &b->set_stream, sizeof b->set_stream) ||
        !an_cuda_resolve(library, "cublasSetWorkspace_v2", &b->set_workspace, sizeof b->set_workspace) ||
        !an_cuda_resolve(library, "cublasSgemm_v2", &b->sgemm, sizeof b->sgemm) ||
        !an_cuda_resolve(library, "cublasSgemmStridedBatched", &b->sgemm_batched, sizeof b->sgemm_batched)) {
        dlclose(library);
        return 0;
    }
    return 1; /* kept loaded for the life of the process */
}

static void an_cuda_probe_once(void)
{
    int count = 0;
    cudaError_t error = cudaGetDeviceCount(&count);
    if (error != cudaSuccess || count == 0) {
        const char *detail = error == cudaErrorNoDevice || (error == cudaSuccess && count == 0)
                                 ? "the driver reports none"
                             : error == cudaErrorInsufficientDriver
                                 ? "no NVIDIA driver (libcuda.so.1), or one older than this CUDA runtime"
                                 : cudaGetErrorString(error);
        snprintf(an_cuda.why, sizeof an_cuda.why, "no CUDA device: %s (%s)", detail,
                 error != cudaSuccess ? cudaGetErrorName(error) : "0 devices");
        return;
    }
    an_cuda.count = count < AN_CUDA_MAX_DEVICES ? count : AN_CUDA_MAX_DEVICES;
    int usable = 0, first = -1;
    for (int i = 0; i < an_cuda.count; i++) {
        cudaDeviceProp prop;
        an_cuda_device *d = &an_cuda.devices[i];
        if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
            snprintf(d->description, sizeof d->description, "CUDA device %d (properties unavailable)", i);
            continue;
        }
        d->memory_bytes = prop.totalGlobalMem;
        d->usable = prop.major >= AN_CUDA_MIN_MAJOR;
        snprintf(d->description, sizeof d->description, "%.80s (sm_%d%d, %d SMs)%s", prop.name, prop.major, prop.minor,
                 prop.multiProcessorCount, d->usable ? "" : " too old: sm_80 or newer needed");
        usable += d->usable;
        if (d->usable && first < 0)
            first = i;
    }
    if (usable == 0) {
        snprintf(an_cuda.why, sizeof an_cuda.why, "no usable CUDA device: %.100s (the module is built for sm_80+)",
                 an_cuda.devices[0].description);
        return;
    }
    if (!an_cuda_load_cublas())
        return;
    snprintf(an_cuda.describe, sizeof an_cuda.describe, "CUDA on %.120s, cuBLAS SGEMM, CUDA graphs%s",
             an_cuda.devices[first].description, an_cuda.count > 1 ? " (and more devices)" : "");
    an_cuda.available = 1;
}

static int an_cuda_probe(const char **why)
{
    pthread_once(&an_cuda_once, an_cuda_probe_once);
    *why = an_cuda.available ? "available" : an_cuda.why;
    return an_cuda.available;
}

static const char *an_cuda_describe(void)
{
    const char *why;
    return an_cuda_probe(&why) ? an_cuda.describe : why;
}

static size_t an_cuda_device_count(void)
{
    const char *why;
    an_cuda_probe(&why);
    return (size_t)an_cuda.count;
}

static alexnet_status an_cuda_device_info(size_t index, alexnet_device_info *out)
{
    if (index >= (size_t)an_cuda_device_count())
        return an_error(ALEXNET_E_NOT_FOUND, "cuda: there is no device %zu", index);
    snprintf(out->description, sizeof out->description, "%s", an_cuda.devices[index].description);
    out->memory_bytes = an_cuda.devices[index].memory_bytes;
    out->available = an_cuda.devices[index].usable;
    return ALEXNET_OK;
}

/* ================================================================================================ */
/* Contexts, buffers and the op records. */

enum an_cuda_op_kind {
    AN_CU_CONV = 1,
    AN_CU_FC,
    AN_CU_MAX_POOL,
    AN_CU_AVG_POOL,
    AN_CU_LRN,
    AN_CU_SOFTMAX,
    AN_CU_RELU,
    AN_CU_DROPOUT,
    AN_CU_CONV_BWD_DATA,
    AN_CU_CONV_BWD_WEIGHTS,
    AN_CU_MAX_POOL_BWD,
    AN_CU_AVG_POOL_BWD,
    AN_CU_LRN_BWD,
    AN_CU_FC_BWD_DATA,
    AN_CU_FC_BWD_WEIGHTS,
    AN_CU_RELU_BWD,
    AN_CU_XENT,
    AN_CU_SGD
};

/* A recorded op: plain data only (compared byte for byte against the graph cache), zeroed before filling so
 * padding never differs. */
struct an_cuda_op {
    int kind;
    union {
        an_conv_desc conv;
        an_pool_desc pool;
        an_lrn_desc lrn;
        an_fc_desc fc;
        an_softmax_desc softmax;
        an_sgd_desc sgd;
        struct {
            size_t count;
            float rate;
            uint64_t seed;
        } elem;
    } d;
    float *p[6];
};

struct an_cuda_graph_entry {
    uint64_t hash;
    size_t count;
    an_cuda_op *ops; /* AN_CUDA_MAX_PENDING records */
    cudaGraphExec_t exec;
};

struct an_backend_context {
    alexnet_allocator allocator;
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    void *blas_workspace;
    float *scratch; /* im2col / col2im */
    size_t scratch_bytes;
    int *status_flag; /* device int set by the cross-entropy kernel */
    int status_pending;
    int graphs;       /* 0: eager execution */
    an_cuda_op *pending;
    size_t pending_count;
    an_cuda_graph_entry cache[AN_CUDA_GRAPH_CACHE];
    size_t cache_next;
};

struct an_buffer {
    float *data;
    size_t bytes;
    int owns_data;
    an_op_kind kind; /* weights handles: the op they serve */
    float *bias;
    int owns_bias;
};

static alexnet_status an_cuda_fail(cudaError_t error, const char *what)
{
    alexnet_status status = error == cudaErrorMemoryAllocation ? ALEXNET_E_OUT_OF_MEMORY : ALEXNET_E_BACKEND;
    return an_error(status, "cuda: %s failed: %s (%s)", what, cudaGetErrorString(error), cudaGetErrorName(error));
}

static alexnet_status an_cublas_fail(cublasStatus_t status, const char *what)
{
    return an_error(status == CUBLAS_STATUS_ALLOC_FAILED ? ALEXNET_E_OUT_OF_MEMORY : ALEXNET_E_BACKEND,
                    "cuda: cuBLAS %s failed (status %d)", what, (int)status);
}

static unsigned an_blocks(long long count)
{
    long long blocks = (count + AN_CUDA_THREADS - 1) / AN_CUDA_THREADS;
    return (unsigned)(blocks < 1 ? 1 : blocks > 65535 * 16 ? 65535 * 16 : blocks);
}

/* Images per im2col chunk so that the chunk's columns fit the scratch. */
static uint32_t an_conv_chunk(const an_conv_desc *d, size_t scratch_bytes)
{
    size_t per_image = (size_t)d->in_channels * d->kernel_size * d->kernel_size * d->out_height * d->out_width *
                       sizeof(float);
    size_t chunk = per_image == 0 ? d->batch : scratch_bytes / per_image;
    return chunk == 0 ? 0 : (uint32_t)(chunk < d->batch ? chunk : d->batch);
}

/* ---- executing one record (eagerly or under stream capture) ---- */

static alexnet_status an_cuda_launch_check(const char *what)
{
    cudaError_t error = cudaGetLastError();
    return error == cudaSuccess ? ALEXNET_OK : an_cuda_fail(error, what);
}

/* What all three conv runners derive from a desc: per group, M output channels, K = taps (cin_g * k * k) and
 * P output pixels per image; rows = the im2col rows of all groups; chunk = images per im2col pass. */
typedef struct an_conv_shape {
    int groups, k, M, K, P;
    long long rows;
    uint32_t chunk;
} an_conv_shape;

static alexnet_status an_conv_shape_of(const an_backend_context *c, const an_conv_desc *d, an_conv_shape *s)
{
    s->groups = (int)d->groups;
    s->k = (int)d->kernel_size;
    s->M = (int)(d->out_channels / d->groups);
    s->K = (int)(d->in_channels / d->groups) * s->k * s->k;
    s->P = (int)(d->out_height * d->out_width);
    s->rows = (long long)d->in_channels * s->k * s->k;
    s->chunk = an_conv_chunk(d, c->scratch_bytes);
    if (s->chunk == 0)
        return an_error(ALEXNET_E_STATE, "cuda: internal: the im2col scratch holds no image");
    return ALEXNET_OK;
}

/* Images in the chunk that starts at image `first` (the last chunk may be short). */
static uint32_t an_chunk_images(const an_conv_desc *d, const an_conv_shape *s, uint32_t first)
{
    return d->batch - first < s->chunk ? d->batch - first : s->chunk;
}

/* im2col of images [first, first + images) of `in` into the scratch. */
static alexnet_status an_im2col(an_backend_context *c, const an_conv_desc *d, const an_conv_shape *s, const float *in,
                                uint32_t first, uint32_t images)
{
    an_k_im2col<<<an_blocks((long long)images * s->rows * s->P), AN_CUDA_THREADS, 0, c->stream>>>(
        in, c->scratch, (int)images, (int)first, (int)d->in_channels, (int)d->in_height, (int)d->in_width, s->k,
        (int)d->stride, (int)d->padding, (int)d->out_height, (int)d->out_width);
    return an_cuda_launch_check("im2col");
}

static alexnet_status an_run_conv(an_backend_context *c, const an_conv_desc *d, const float *in, const float *w,
                                  const float *bias, float *out)
{
    an_conv_shape s;
    alexnet_status status = an_conv_shape_of(c, d, &s);
    if (status != ALEXNET_OK)
        return status;
    const int M = s.M, K = s.K, P = s.P;
    const float one = 1.0f, zero = 0.0f;
    for (uint32_t first = 0; first < d->batch; first += s.chunk) {
        const uint32_t images = an_chunk_images(d, &s, first);
        status = an_im2col(c, d, &s, in, first, images);
        if (status != ALEXNET_OK)
            return status;
        for (int g = 0; g < s.groups; g++) {
            /* Row-major C_i (M x P) = W_g (M x K) B_i (K x P), as column-major C^T = B^T W_g^T. */
            cublasStatus_t st = an_cuda.blas.sgemm_batched(
                c->blas, CUBLAS_OP_N, CUBLAS_OP_N, P, M, K, &one, c->scratch + (long long)g * K * P, P, s.rows * P,
                w + (long long)g * M * K, K, 0, &zero, out + ((long long)first * d->out_channels + g * M) * P, P,
                (long long)d->out_channels * P, (int)images);
            if (st != CUBLAS_STATUS_SUCCESS)
                return an_cublas_fail(st, "conv SGEMM");
        }
    }
    const long long count = (long long)d->batch * d->out_channels * P;
    an_k_bias_act<<<an_blocks(count), AN_CUDA_THREADS, 0, c->stream>>>(out, bias, count, (int)d->out_channels, P,
                                                                        d->relu != 0);
    return an_cuda_launch_check("conv bias");
}

static alexnet_status an_run_conv_backward_data(an_backend_context *c, const an_conv_desc *d, const float *grad_out,
                                                const float *w, float *grad_in)
{
    an_conv_shape s;
    alexnet_status status = an_conv_shape_of(c, d, &s);
    if (status != ALEXNET_OK)
        return status;
    const int M = s.M, K = s.K, P = s.P;
    const float one = 1.0f, zero = 0.0f;
    for (uint32_t first = 0; first < d->batch; first += s.chunk) {
        const uint32_t images = an_chunk_images(d, &s, first);
        for (int g = 0; g < s.groups; g++) {
            /* col_i (K x P) = W_g^T grad_out_i, as column-major col^T (P x K) = grad_out_i^T W_g. */
            cublasStatus_t st = an_cuda.blas.sgemm_batched(
                c->blas, CUBLAS_OP_N, CUBLAS_OP_T, P, K, M, &one,
                grad_out + ((long long)first * d->out_channels + g * M) * P, P, (long long)d->out_channels * P,
                w + (long long)g * M * K, K, 0, &zero, c->scratch + (long long)g * K * P, P, s.rows * P, (int)images);
            if (st != CUBLAS_STATUS_SUCCESS)
                return an_cublas_fail(st, "conv backward-data SGEMM");
        }
        an_k_col2im<<<an_blocks((long long)images * d->in_channels * d->in_height * d->in_width), AN_CUDA_THREADS, 0,
                      c->stream>>>(c->scratch, grad_in, (int)images, (int)first, (int)d->in_channels,
                                   (int)d->in_height, (int)d->in_width, s.k, (int)d->stride, (int)d->padding,
                                   (int)d->out_height, (int)d->out_width);
        status = an_cuda_launch_check("col2im");
        if (status != ALEXNET_OK)
            return status;
    }
    return ALEXNET_OK;
}

static alexnet_status an_run_conv_backward_weights(an_backend_context *c, const an_conv_desc *d, const float *in,
                                                   const float *grad_out, float *grad_w, float *grad_b)
{
    an_conv_shape s;
    alexnet_status status = an_conv_shape_of(c, d, &s);
    if (status != ALEXNET_OK)
        return status;
    const int M = s.M, K = s.K, P = s.P;
    const float one = 1.0f, zero = 0.0f;
    for (uint32_t first = 0; first < d->batch; first += s.chunk) {
        const uint32_t images = an_chunk_images(d, &s, first);
        status = an_im2col(c, d, &s, in, first, images);
        if (status != ALEXNET_OK)
            return status;
        /* grad_W_g (M x K) += grad_out_i (M x P) col_i^T, image after image (a fixed summation order):
         * column-major grad_W_g^T (K x M) = col_i^T... written as op(col_i)=T, op(grad_out_i)=N. */
        for (uint32_t i = 0; i < images; i++) {
            for (int g = 0; g < s.groups; g++) {
                const float *beta = first + i == 0 ? &zero : &one;
                cublasStatus_t st = an_cuda.blas.sgemm(
                    c->blas, CUBLAS_OP_T, CUBLAS_OP_N, K, M, P, &one, c->scratch + ((long long)i * s.rows + g * K) * P,
                    P, grad_out + (((long long)first + i) * d->out_channels + g * M) * P, P, beta,
                    grad_w + (long long)g * M * K, K);
                if (st != CUBLAS_STATUS_SUCCESS)
                    return an_cublas_fail(st, "conv backward-weights SGEMM");
            }
        }
    }
    an_k_bias_grad_nchw<<<d->out_channels, AN_CUDA_THREADS, 0, c->stream>>>(grad_out, grad_b, (int)d->batch,
                                                                            (int)d->out_channels, P);
    return an_cuda_launch_check("conv bias gradient");
}

static alexnet_status an_run_op(an_backend_context *c, const an_cuda_op *op)
{
    const float one = 1.0f, zero = 0.0f;
    float *const *p = op->p;
    cublasStatus_t s = CUBLAS_STATUS_SUCCESS;
    switch (op->kind) {
    case AN_CU_CONV:
        return an_run_conv(c, &op->d.conv, p[0], p[1], p[2], p[3]);
    case AN_CU_CONV_BWD_DATA:
        return an_run_conv_backward_data(c, &op->d.conv, p[0], p[1], p[2]);
    case AN_CU_CONV_BWD_WEIGHTS:
        return an_run_conv_backward_weights(c, &op->d.conv, p[0], p[1], p[2], p[3]);
    case AN_CU_FC: {
        const an_fc_desc *d = &op->d.fc;
        /* out (B x O, row-major) = x W^T: column-major out^T (O x B) = W (op T of its I x O view) x^T. */
        s = an_cuda.blas.sgemm(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)d->out_features, (int)d->batch,
                               (int)d->in_features, &one, p[1], (int)d->in_features, p[0], (int)d->in_features, &zero,
                               p[3], (int)d->out_features);
        if (s != CUBLAS_STATUS_SUCCESS)
            return an_cublas_fail(s, "fully connected SGEMM");
        const long long count = (long long)d->batch * d->out_features;
        an_k_bias_act<<<an_blocks(count), AN_CUDA_THREADS, 0, c->stream>>>(p[3], p[2], count, (int)d->out_features, 1,
                                                                            d->relu != 0);
        return an_cuda_launch_check("fully connected bias");
    }
    case AN_CU_FC_BWD_DATA: {
        const an_fc_desc *d = &op->d.fc;
        /* grad_in (B x I) = grad_out (B x O) W (O x I): column-major grad_in^T = W^T grad_out^T. */
        s = an_cuda.blas.sgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_N, (int)d->in_features, (int)d->batch,
                               (int)d->out_features, &one, p[1], (int)d->in_features, p[0], (int)d->out_features, &zero,
                               p[2], (int)d->in_features);
        return s == CUBLAS_STATUS_SUCCESS ? ALEXNET_OK : an_cublas_fail(s, "FC backward-data SGEMM");
    }
    case AN_CU_FC_BWD_WEIGHTS: {
        const an_fc_desc *d = &op->d.fc;
        /* grad_W (O x I) = grad_out^T (O x B) in (B x I): column-major grad_W^T = in^T grad_out. */
        s = an_cuda.blas.sgemm(c->blas, CUBLAS_OP_N, CUBLAS_OP_T, (int)d->in_features, (int)d->out_features,
                               (int)d->batch, &one, p[0], (int)d->in_features, p[1], (int)d->out_features, &zero, p[2],
                               (int)d->in_features);
        if (s != CUBLAS_STATUS_SUCCESS)
            return an_cublas_fail(s, "FC backward-weights SGEMM");
        an_k_bias_grad_rows<<<an_blocks(d->out_features), AN_CUDA_THREADS, 0, c->stream>>>(p[1], p[3], (int)d->batch,
                                                                                          (int)d->out_features);
        return an_cuda_launch_check("FC bias gradient");
    }
    case AN_CU_MAX_POOL:
    case AN_CU_AVG_POOL: {
        const an_pool_desc *d = &op->d.pool;
        const long long planes = (long long)d->batch * d->channels;
        const unsigned blocks = an_blocks(planes * d->out_height * d->out_width);
        if (op->kind == AN_CU_MAX_POOL)
            an_k_max_pool<<<blocks, AN_CUDA_THREADS, 0, c->stream>>>(p[0], p[1], planes, (int)d->in_height,
                                                                     (int)d->in_width, (int)d->out_height,
                                                                     (int)d->out_width, (int)d->kernel_size,
                                                                     (int)d->stride);
        else
            an_k_avg_pool<<<blocks, AN_CUDA_THREADS, 0, c->stream>>>(p[0], p[1], planes, (int)d->in_height,
                                                                     (int)d->in_width, (int)d->out_height,
                                                                     (int)d->out_width);
        return an_cuda_launch_check("pooling");
    }
    case AN_CU_MAX_POOL_BWD:
    case AN_CU_AVG_POOL_BWD: {
        const an_pool_desc *d = &op->d.pool;
        const long long planes = (long long)d->batch * d->channels;
        const unsigned blocks = an_blocks(planes * d->in_height * d->in_width);
        if (op->kind == AN_CU_MAX_POOL_BWD)
            an_k_max_pool_backward<<<blocks, AN_CUDA_THREADS, 0, c->stream>>>(
                p[0], p[1], p[2], planes, (int)d->in_height, (int)d->in_width, (int)d->out_height, (int)d->out_width,
                (int)d->kernel_size, (int)d->stride);
        else
            an_k_avg_pool_backward<<<blocks, AN_CUDA_THREADS, 0, c->stream>>>(p[0], p[1], planes, (int)d->in_height,
                                                                              (int)d->in_width, (int)d->out_height,
                                                                              (int)d->out_width);
        return an_cuda_launch_check("pooling backward");
    }
    case AN_CU_LRN:
    case AN_CU_LRN_BWD: {
        const an_lrn_desc *d = &op->d.lrn;
        const long long plane = (long long)d->height * d->width, count = (long long)d->batch * d->channels * plane;
        if (op->kind == AN_CU_LRN)
            an_k_lrn<<<an_blocks(count), AN_CUDA_THREADS, 0, c->stream>>>(p[0], p[1], count, (int)d->channels, plane,
                                                                          (int)d->size, d->alpha, d->beta, d->k);
        else
            an_k_lrn_backward<<<an_blocks(count), AN_CUDA_THREADS, 0, c->stream>>>(
                p[0], p[1], p[2], p[3], count, (int)d->channels, plane, (int)d->size, d->alpha, d->beta, d->k);
        return an_cuda_launch_check("LRN");
    }
    case AN_CU_SOFTMAX:
        an_k_softmax<<<op->d.softmax.batch, AN_CUDA_THREADS, 0, c->stream>>>(p[0], p[1], (int)op->d.softmax.classes);
        return an_cuda_launch_check("softmax");
    case AN_CU_XENT:
        an_k_softmax_xent<<<op->d.softmax.batch, AN_CUDA_THREADS, 0, c->stream>>>(
            p[0], p[1], p[2], p[3], c->status_flag, (int)op->d.softmax.batch, (int)op->d.softmax.classes);
        return an_cuda_launch_check("softmax cross-entropy");
    case AN_CU_RELU:
        an_k_relu<<<an_blocks((long long)op->d.elem.count), AN_CUDA_THREADS, 0, c->stream>>>(
            p[0], p[1], (long long)op->d.elem.count);
        return an_cuda_launch_check("relu");
    case AN_CU_RELU_BWD:
        an_k_relu_backward<<<an_blocks((long long)op->d.elem.count), AN_CUDA_THREADS, 0, c->stream>>>(
            p[0], p[1], p[2], (long long)op->d.elem.count);
        return an_cuda_launch_check("relu backward");
    case AN_CU_DROPOUT: {
        const float rate = op->d.elem.rate;
        an_k_dropout<<<an_blocks((long long)op->d.elem.count), AN_CUDA_THREADS, 0, c->stream>>>(
            p[0], p[1], (long long)op->d.elem.count, rate, 1.0f / (1.0f - rate), op->d.elem.seed);
        return an_cuda_launch_check("dropout");
    }
    case AN_CU_SGD: {
        const an_sgd_desc *d = &op->d.sgd;
        an_k_sgd<<<an_blocks((long long)d->count), AN_CUDA_THREADS, 0, c->stream>>>(
            p[0], p[1], p[2], (long long)d->count, d->learning_rate, d->momentum, d->weight_decay);
        return an_cuda_launch_check("SGD update");
    }
    }
    return an_error(ALEXNET_E_BACKEND, "cuda: internal: unknown op record %d", op->kind);
}

/* ---- flushing the records: one cached graph, or eagerly ---- */

static alexnet_status an_cuda_run_eagerly(an_backend_context *c)
{
    for (size_t i = 0; i < c->pending_count; i++) {
        alexnet_status status = an_run_op(c, &c->pending[i]);
        if (status != ALEXNET_OK)
            return status;
    }
    return ALEXNET_OK;
}

static void an_cuda_graph_cache_clear(an_backend_context *c)
{
    for (size_t i = 0; i < AN_CUDA_GRAPH_CACHE; i++) {
        if (c->cache[i].exec != NULL)
            cudaGraphExecDestroy(c->cache[i].exec);
        c->cache[i].exec = NULL;
        c->cache[i].count = 0;
    }
}

/* Run the recorded ops. A sequence seen for the first time runs eagerly (which also loads every kernel and
 * lets cuBLAS initialise outside any capture) and is remembered; the second time it is captured into a graph,
 * which that and every later occurrence launches. */
static alexnet_status an_cuda_flush(an_backend_context *c)
{
    if (c->pending_count == 0)
        return ALEXNET_OK;
    alexnet_status status = ALEXNET_OK;
    if (!c->graphs || c->pending_count < 2) {
        status = an_cuda_run_eagerly(c);
        c->pending_count = 0;
        return status;
    }
    const size_t bytes = c->pending_count * sizeof(an_cuda_op);
    const uint64_t hash = an_fnv1a(AN_FNV1A_SEED, c->pending, bytes);
    an_cuda_graph_entry *e = NULL;
    for (size_t i = 0; i < AN_CUDA_GRAPH_CACHE && e == NULL; i++) {
        an_cuda_graph_entry *candidate = &c->cache[i];
        if (candidate->count == c->pending_count && candidate->hash == hash &&
            memcmp(candidate->ops, c->pending, bytes) == 0)
            e = candidate;
    }
    if (e == NULL) {
        /* First sight: remember the sequence (evicting round-robin) and run it eagerly. */
        e = &c->cache[c->cache_next];
        c->cache_next = (c->cache_next + 1) % AN_CUDA_GRAPH_CACHE;
        if (e->exec != NULL)
            cudaGraphExecDestroy(e->exec);
        e->exec = NULL;
        e->hash = hash;
        e->count = c->pending_count;
        memcpy(e->ops, c->pending, bytes);
        status = an_cuda_run_eagerly(c);
        c->pending_count = 0;
        return status;
    }
    if (e->exec == NULL) {
        /* Second sight: capture. A platform that cannot capture falls back to eager execution for good. */
        cudaError_t error = cudaStreamBeginCapture(c->stream, cudaStreamCaptureModeThreadLocal);
        if (error != cudaSuccess) {
            (void)cudaGetLastError();
            c->graphs = 0;
            status = an_cuda_run_eagerly(c);
            c->pending_count = 0;
            return status;
        }
        status = an_cuda_run_eagerly(c);
        cudaGraph_t graph = NULL;
        error = cudaStreamEndCapture(c->stream, &graph);
        if (status != ALEXNET_OK || error != cudaSuccess || graph == NULL) {
            if (graph != NULL)
                cudaGraphDestroy(graph);
            (void)cudaGetLastError(); /* capture errors are not sticky */
            if (status != ALEXNET_OK) {
                c->pending_count = 0;
                return status;
            }
            c->graphs = 0;
            status = an_cuda_run_eagerly(c);
            c->pending_count = 0;
            return status;
        }
        cudaGraphExec_t exec = NULL;
        error = cudaGraphInstantiate(&exec, graph, 0);
        cudaGraphDestroy(graph);
        if (error != cudaSuccess) {
            (void)cudaGetLastError();
            c->graphs = 0;
            status = an_cuda_run_eagerly(c);
            c->pending_count = 0;
            return status;
        }
        e->exec = exec;
    }
    c->pending_count = 0;
    cudaError_t error = cudaGraphLaunch(e->exec, c->stream);
    return error == cudaSuccess ? ALEXNET_OK : an_cuda_fail(error, "cudaGraphLaunch");
}

/* A zeroed record slot, flushing first when the list is full. */
static alexnet_status an_cuda_record(an_backend_context *c, int kind, an_cuda_op **out)
{
    if (c->pending_count == AN_CUDA_MAX_PENDING) {
        alexnet_status status = an_cuda_flush(c);
        if (status != ALEXNET_OK)
            return status;
    }
    an_cuda_op *op = &c->pending[c->pending_count++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    *out = op;
    return ALEXNET_OK;
}

/* Grow the im2col scratch when an op needs more than prepare() sized (e.g. it was never prepared): the
 * records made so far point at the old scratch, so they run first. */
static alexnet_status an_cuda_scratch_need(an_backend_context *c, const an_conv_desc *d)
{
    size_t per_image = (size_t)d->in_channels * d->kernel_size * d->kernel_size * d->out_height * d->out_width *
                       sizeof(float);
    if (per_image <= c->scratch_bytes)
        return ALEXNET_OK;
    alexnet_status status = an_cuda_flush(c);
    if (status != ALEXNET_OK)
        return status;
    cudaError_t error = cudaStreamSynchronize(c->stream);
    if (error != cudaSuccess)
        return an_cuda_fail(error, "cudaStreamSynchronize");
    an_cuda_graph_cache_clear(c);
    cudaFree(c->scratch);
    c->scratch = NULL;
    c->scratch_bytes = 0;
    error = cudaMalloc((void **)&c->scratch, per_image);
    if (error != cudaSuccess)
        return an_cuda_fail(error, "allocating the im2col scratch");
    c->scratch_bytes = per_image;
    return ALEXNET_OK;
}

/* ---- the table's functions ---- */

static alexnet_status an_cuda_set_device(int device)
{
    cudaError_t error = cudaSetDevice(device);
    return error == cudaSuccess ? ALEXNET_OK : an_cuda_fail(error, "cudaSetDevice");
}

static void an_cuda_context_destroy(an_backend_context *c)
{
    if (c == NULL)
        return;
    cudaSetDevice(c->device);
    if (c->stream != NULL)
        cudaStreamSynchronize(c->stream);
    an_cuda_graph_cache_clear(c);
    for (size_t i = 0; i < AN_CUDA_GRAPH_CACHE; i++)
        an_free(&c->allocator, c->cache[i].ops, AN_CUDA_MAX_PENDING * sizeof(an_cuda_op));
    an_free(&c->allocator, c->pending, AN_CUDA_MAX_PENDING * sizeof(an_cuda_op));
    if (c->blas != NULL)
        an_cuda.blas.destroy(c->blas);
    cudaFree(c->blas_workspace);
    cudaFree(c->scratch);
    cudaFree(c->status_flag);
    if (c->stream != NULL)
        cudaStreamDestroy(c->stream);
    alexnet_allocator allocator = c->allocator;
    an_free(&allocator, c, sizeof *c);
}

static alexnet_status an_cuda_context_create(const an_backend_params *params, an_backend_context **out)
{
    const char *why = NULL;
    if (!an_cuda_probe(&why))
        return an_error(ALEXNET_E_UNSUPPORTED, "cuda: unavailable: %s", why);
    if (params->device_index >= (uint32_t)an_cuda.count || !an_cuda.devices[params->device_index].usable)
        return an_error(ALEXNET_E_UNSUPPORTED, "cuda:%u is not usable: %s", params->device_index,
                        params->device_index < (uint32_t)an_cuda.count ? an_cuda.devices[params->device_index].description
                                                                       : "no such device");
    an_backend_context *c = (an_backend_context *)an_calloc(&params->allocator, 1, sizeof *c, "cuda context");
    if (c == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    c->allocator = params->allocator;
    c->device = (int)params->device_index;
    const char *graphs = getenv("ALEXNET_CUDA_GRAPHS");
    c->graphs = !(graphs != NULL && strcmp(graphs, "0") == 0);
    alexnet_status status = ALEXNET_OK;
    c->pending = (an_cuda_op *)an_alloc(&c->allocator, AN_CUDA_MAX_PENDING * sizeof(an_cuda_op), "cuda op records");
    if (c->pending == NULL)
        status = ALEXNET_E_OUT_OF_MEMORY;
    for (size_t i = 0; status == ALEXNET_OK && i < AN_CUDA_GRAPH_CACHE; i++) {
        c->cache[i].ops = (an_cuda_op *)an_alloc(&c->allocator, AN_CUDA_MAX_PENDING * sizeof(an_cuda_op),
                                                 "cuda graph cache");
        if (c->cache[i].ops == NULL)
            status = ALEXNET_E_OUT_OF_MEMORY;
    }
    if (status == ALEXNET_OK)
        status = an_cuda_set_device(c->device);
    cudaError_t error = cudaSuccess;
    if (status == ALEXNET_OK && (error = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking)) != cudaSuccess)
        status = an_cuda_fail(error, "cudaStreamCreate");
    if (status == ALEXNET_OK && (error = cudaMalloc((void **)&c->status_flag, sizeof(int))) != cudaSuccess)
        status = an_cuda_fail(error, "cudaMalloc(status flag)");
    if (status == ALEXNET_OK && (error = cudaMemset(c->status_flag, 0, sizeof(int))) != cudaSuccess)
        status = an_cuda_fail(error, "cudaMemset(status flag)");
    if (status == ALEXNET_OK && (error = cudaMalloc(&c->blas_workspace, AN_CUDA_CUBLAS_WORKSPACE)) != cudaSuccess)
        status = an_cuda_fail(error, "cudaMalloc(cuBLAS workspace)");
    cublasStatus_t s = CUBLAS_STATUS_SUCCESS;
    if (status == ALEXNET_OK && (s = an_cuda.blas.create(&c->blas)) != CUBLAS_STATUS_SUCCESS) {
        c->blas = NULL;
        status = an_cublas_fail(s, "cublasCreate");
    }
    /* A fixed stream and workspace: cuBLAS then allocates nothing during stream capture. */
    if (status == ALEXNET_OK && (s = an_cuda.blas.set_stream(c->blas, c->stream)) != CUBLAS_STATUS_SUCCESS)
        status = an_cublas_fail(s, "cublasSetStream");
    if (status == ALEXNET_OK &&
        (s = an_cuda.blas.set_workspace(c->blas, c->blas_workspace, AN_CUDA_CUBLAS_WORKSPACE)) != CUBLAS_STATUS_SUCCESS)
        status = an_cublas_fail(s, "cublasSetWorkspace");
    if (status != ALEXNET_OK) {
        an_cuda_context_destroy(c);
        return status;
    }
    *out = c;
    return ALEXNET_OK;
}

static alexnet_status an_cuda_buffer_create(an_backend_context *c, size_t bytes, an_buffer **out)
{
    an_buffer *b = (an_buffer *)an_calloc(&c->allocator, 1, sizeof *b, "cuda buffer");
    if (b == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    alexnet_status status = an_cuda_set_device(c->device);
    cudaError_t error = cudaSuccess;
    if (status == ALEXNET_OK && (error = cudaMalloc((void **)&b->data, bytes == 0 ? sizeof(float) : bytes)) != cudaSuccess)
        status = an_cuda_fail(error, "cudaMalloc");
    if (status != ALEXNET_OK) {
        an_free(&c->allocator, b, sizeof *b);
        return status;
    }
    b->bytes = bytes;
    b->owns_data = 1;
    *out = b;
    return ALEXNET_OK;
}

static void an_cuda_buffer_destroy(an_backend_context *c, an_buffer *b)
{
    if (b == NULL)
        return;
    /* Records still pending may use the buffer: run them before its memory goes. */
    cudaSetDevice(c->device);
    if (c->pending_count > 0)
        (void)an_cuda_flush(c);
    cudaStreamSynchronize(c->stream);
    an_cuda_graph_cache_clear(c); /* graphs hold raw pointers; a new buffer may reuse this address */
    if (b->owns_data)
        cudaFree(b->data);
    if (b->owns_bias)
        cudaFree(b->bias);
    an_free(&c->allocator, b, sizeof *b);
}

static alexnet_status an_cuda_upload(an_backend_context *c, an_buffer *dst, const float *src, size_t count)
{
    if (count > dst->bytes / sizeof(float))
        return an_error(ALEXNET_E_BACKEND, "cuda: upload of %zu floats into a %zu-byte buffer", count, dst->bytes);
    alexnet_status status = an_cuda_set_device(c->device);
    if (status == ALEXNET_OK)
        status = an_cuda_flush(c); /* ops recorded before the upload read the old contents */
    if (status != ALEXNET_OK || count == 0)
        return status;
    /* From pageable memory the call returns once src has been staged, so src is free again on return. */
    cudaError_t error = cudaMemcpyAsync(dst->data, src, count * sizeof(float), cudaMemcpyHostToDevice, c->stream);
    return error == cudaSuccess ? ALEXNET_OK : an_cuda_fail(error, "upload (cudaMemcpyAsync)");
}

static alexnet_status an_cuda_download(an_backend_context *c, const an_buffer *src, float *dst, size_t count)
{
    if (count > src->bytes / sizeof(float))
        return an_error(ALEXNET_E_BACKEND, "cuda: download of %zu floats from a %zu-byte buffer", count, src->bytes);
    alexnet_status status = an_cuda_set_device(c->device);
    if (status == ALEXNET_OK)
        status = an_cuda_flush(c);
    if (status != ALEXNET_OK || count == 0)
        return status;
    cudaError_t error = cudaMemcpyAsync(dst, src->data, count * sizeof(float), cudaMemcpyDeviceToHost, c->stream);
    if (error == cudaSuccess)
        error = cudaStreamSynchronize(c->stream);
    return error == cudaSuccess ? ALEXNET_OK : an_cuda_fail(error, "download (cudaMemcpyAsync)");
}

static alexnet_status an_cuda_weights_check(const an_op_desc *desc)
{
    if (desc->kind == AN_OP_CONV2D) {
        const an_conv_desc *d = &desc->u.conv;
        if (d->groups == 0 || d->in_channels % d->groups != 0 || d->out_channels % d->groups != 0)
            return an_error(ALEXNET_E_INVALID_ARGUMENT, "cuda: conv groups %u do not divide %u -> %u channels",
                            d->groups, d->in_channels, d->out_channels);
        return ALEXNET_OK;
    }
    if (desc->kind == AN_OP_FULLY_CONNECTED)
        return ALEXNET_OK;
    return an_error(ALEXNET_E_INVALID_ARGUMENT, "cuda: weights for op kind %d", (int)desc->kind);
}

static alexnet_status an_cuda_weights_create(an_backend_context *c, const an_op_desc *desc, const float *weight,
                                             const float *bias, an_buffer **out)
{
    alexnet_status status = an_cuda_weights_check(desc);
    if (status != ALEXNET_OK)
        return status;
    size_t weight_count, bias_count;
    if (desc->kind == AN_OP_CONV2D) {
        const an_conv_desc *d = &desc->u.conv;
        weight_count = (size_t)d->out_channels * (d->in_channels / d->groups) * d->kernel_size * d->kernel_size;
        bias_count = d->out_channels;
    } else {
        weight_count = (size_t)desc->u.fc.out_features * desc->u.fc.in_features;
        bias_count = desc->u.fc.out_features;
    }
    an_buffer *b = NULL;
    status = an_cuda_buffer_create(c, weight_count * sizeof(float), &b);
    if (status != ALEXNET_OK)
        return status;
    b->kind = desc->kind;
    cudaError_t error = cudaMalloc((void **)&b->bias, bias_count * sizeof(float));
    if (error == cudaSuccess)
        b->owns_bias = 1;
    /* Synchronous copies: weights are uploaded once per context, from the model's memory. */
    if (error == cudaSuccess)
        error = cudaMemcpy(b->data, weight, weight_count * sizeof(float), cudaMemcpyHostToDevice);
    if (error == cudaSuccess)
        error = cudaMemcpy(b->bias, bias, bias_count * sizeof(float), cudaMemcpyHostToDevice);
    if (error != cudaSuccess) {
        an_cuda_buffer_destroy(c, b);
        return an_cuda_fail(error, "uploading weights");
    }
    *out = b;
    return ALEXNET_OK;
}

static alexnet_status an_cuda_weights_bind(an_backend_context *c, const an_op_desc *desc, const an_buffer *weight,
                                           const an_buffer *bias, an_buffer **out)
{
    alexnet_status status = an_cuda_weights_check(desc);
    if (status != ALEXNET_OK)
        return status;
    an_buffer *b = (an_buffer *)an_calloc(&c->allocator, 1, sizeof *b, "cuda weights handle");
    if (b == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    b->data = weight->data; /* read in place: an SGD step is visible without a refresh */
    b->bytes = weight->bytes;
    b->bias = bias->data;
    b->kind = desc->kind;
    *out = b;
    return ALEXNET_OK;
}

static alexnet_status an_cuda_weights_refresh(an_backend_context *c, const an_op_desc *desc, const an_buffer *weight,
                                              const an_buffer *bias, an_buffer *weights)
{
    (void)c, (void)desc;
    weights->data = weight->data;
    weights->bias = bias->data;
    return ALEXNET_OK;
}

/* The scratch for the largest im2col chunk any conv of the plan needs (at most the budget, at least one
 * image), and 32-bit limits on every dimension cuBLAS sees. */
static alexnet_status an_cuda_prepare(an_backend_context *c, const an_op_desc *ops, size_t count)
{
    size_t need = 0;
    for (size_t i = 0; i < count; i++) {
        if (ops[i].kind != AN_OP_CONV2D)
            continue;
        const an_conv_desc *d = &ops[i].u.conv;
        size_t per_image = (size_t)d->in_channels * d->kernel_size * d->kernel_size * d->out_height * d->out_width *
                           sizeof(float);
        if (per_image / sizeof(float) > INT32_MAX)
            return an_error(ALEXNET_E_UNSUPPORTED, "cuda: a convolution's columns exceed 2^31 elements per image");
        size_t images = per_image == 0 ? 1 : AN_CUDA_SCRATCH_BUDGET / per_image;
        images = images == 0 ? 1 : images < d->batch ? images : d->batch;
        need = images * per_image > need ? images * per_image : need;
    }
    if (need <= c->scratch_bytes)
        return ALEXNET_OK;
    alexnet_status status = an_cuda_set_device(c->device);
    if (status == ALEXNET_OK)
        status = an_cuda_flush(c);
    if (status != ALEXNET_OK)
        return status;
    cudaStreamSynchronize(c->stream);
    an_cuda_graph_cache_clear(c);
    cudaFree(c->scratch);
    c->scratch = NULL;
    c->scratch_bytes = 0;
    cudaError_t error = cudaMalloc((void **)&c->scratch, need);
    if (error != cudaSuccess)
        return an_cuda_fail(error, "allocating the im2col scratch");
    c->scratch_bytes = need;
    return ALEXNET_OK;
}

static alexnet_status an_cuda_conv2d(an_backend_context *c, const an_conv_desc *d, const an_buffer *in,
                                     const an_buffer *weights, an_buffer *out)
{
    if (weights->kind != AN_OP_CONV2D)
        return an_error(ALEXNET_E_BACKEND, "cuda: conv2d given a weights handle of another op");
    alexnet_status status = an_cuda_scratch_need(c, d);
    an_cuda_op *op = NULL;
    if (status == ALEXNET_OK)
        status = an_cuda_record(c, AN_CU_CONV, &op);
    if (status != ALEXNET_OK)
        return status;
    op->d.conv = *d;
    op->p[0] = in->data, op->p[1] = weights->data, op->p[2] = weights->bias, op->p[3] = out->data;
    return ALEXNET_OK;
}

static alexnet_status an_cuda_fully_connected(an_backend_context *c, const an_fc_desc *d, const an_buffer *in,
                                              const an_buffer *weights, an_buffer *out)
{
    if (weights->kind != AN_OP_FULLY_CONNECTED)
        return an_error(ALEXNET_E_BACKEND, "cuda: fully_connected given a weights handle of another op");
    an_cuda_op *op = NULL;
    alexnet_status status = an_cuda_record(c, AN_CU_FC, &op);
    if (status != ALEXNET_OK)
        return status;
    op->d.fc = *d;
    op->p[0] = in->data, op->p[1] = weights->data, op->p[2] = weights->bias, op->p[3] = out->data;
    return ALEXNET_OK;
}

static alexnet_status an_cuda_pool_op(an_backend_context *c, int kind, const an_pool_desc *d, const an_buffer *a,
                                      const an_buffer *b, an_buffer *out)
{
    an_cuda_op *op = NULL;
    alexnet_status status = an_cuda_record(c, kind, &op);
    if (status != ALEXNET_OK)
        return status;
    op->d.pool = *d;
    op->p[0] = a->data, op->p[1] = b != NULL ? b->data : out->data, op->p[2] = out->data;
    return ALEXNET_OK;
}

static alexnet_status an_cuda_max_pool2d(an_backend_context *c, const an_pool_desc *d, const an_buffer *in,
                                         an_buffer *out)
{
    return an_cuda_pool_op(c, AN_CU_MAX_POOL, d, in, NULL, out);
}

static alexnet_status an_cuda_adaptive_avg_pool2d(an_backend_context *c, const an_pool_desc *d, const an_buffer *in,
                                                  an_buffer *out)
{
    return an_cuda_pool_op(c, AN_CU_AVG_POOL, d, in, NULL, out);
}

static alexnet_status an_cuda_lrn(an_backend_context *c, const an_lrn_desc *d, const an_buffer *in, an_buffer *out)
{
    an_cuda_op *op = NULL;
    alexnet_status status = an_cuda_record(c, AN_CU_LRN, &op);
    if (status != ALEXNET_OK)
        return status;
    op->d.lrn = *d;
    op->p[0] = in->data, op->p[1] = out->data;
    return ALEXNET_OK;
}

static alexnet_status an_cuda_elementwise(an_backend_context *c, int kind, size_t count, float rate, uint64_t seed,
                                          const an_buffer *a, const an_buffer *b, an_buffer *out)
{
    an_cuda_op *op = NULL;
    alexnet_status status = an_cuda_record(c, kind, &op);
    if (status != ALEXNET_OK)
        return status;
    op->d.elem.count = count;
    op->d.elem.rate = rate;
    op->d.elem.seed = seed;
    op->p[0] = a->data, op->p[1] = b != NULL ? b->data : out->data, op->p[2] = out->data;
    return ALEXNET_OK;
}

static alexnet_status an_cuda_relu(an_backend_context *c, size_t count, const an_buffer *in, an_buffer *out)
{
    return an_cuda_elementwise(c, AN_CU_RELU, count, 0.0f, 0, in, NULL, out);
}

static alexnet_status an_cuda_dropout(an_backend_context *c, size_t count, float rate, uint64_t seed,
                                      const an_buffer *in, an_buffer *out)
{
    return an_cuda_elementwise(c, AN_CU_DROPOUT, count, rate, seed, in, NULL, out);
}

static alexnet_status an_cuda_softmax(an_backend_context *c, const an_softmax_desc *d, const an_buffer *in,
                                      an_buffer *out)
{
    an_cuda_op *op = NULL;
    alexnet_status status = an_cuda_record(c, AN_CU_SOFTMAX, &op);
    if (status != ALEXNET_OK)
        return status;
    op->d.softmax = *d;
    op->p[0] = in->data, op->p[1] = out->data;
    return ALEXNET_OK;
}

static alexnet_status an_cuda_sync(an_backend_context *c)
{
    alexnet_status status = an_cuda_set_device(c->device);
    if (status == ALEXNET_OK)
        status = an_cuda_flush(c);
    cudaError_t error = cudaStreamSynchronize(c->stream);
    if (status != ALEXNET_OK)
        return status;
    if (error != cudaSuccess)
        return an_cuda_fail(error, "sync (cudaStreamSynchronize)");
    if (c->status_pending) {
        int flag = 0;
        c->status_pending = 0;
        error = cudaMemcpy(&flag, c->status_flag, sizeof flag, cudaMemcpyDeviceToHost);
        if (error == cudaSuccess && flag != 0)
            error = cudaMemset(c->status_flag, 0, sizeof(int));
        if (error != cudaSuccess)
            return an_cuda_fail(error, "sync (status flag)");
        if (flag != 0)
            return an_error(ALEXNET_E_INVALID_ARGUMENT,
                            "cuda: softmax_cross_entropy: a label is not a class index in [0, classes)");
    }
    return ALEXNET_OK;
}

/* ---- training ---- */

static alexnet_status an_cuda_conv2d_backward_data(an_backend_context *c, const an_conv_desc *d,
                                                   const an_buffer *grad_out, const an_buffer *weight,
                                                   an_buffer *grad_in)
{
    alexnet_status status = an_cuda_scratch_need(c, d);
    an_cuda_op *op = NULL;
    if (status == ALEXNET_OK)
        status = an_cuda_record(c, AN_CU_CONV_BWD_DATA, &op);
    if (status != ALEXNET_OK)
        return status;
    op->d.conv = *d;
    op->p[0] = grad_out->data, op->p[1] = weight->data, op->p[2] = grad_in->data;
    return ALEXNET_OK;
}

static alexnet_status an_cuda_conv2d_backward_weights(an_backend_context *c, const an_conv_desc *d,
                                                      const an_buffer *in, const an_buffer *grad_out,
                                                      an_buffer *grad_weight, an_buffer *grad_bias)
{
    alexnet_status status = an_cuda_scratch_need(c, d);
    an_cuda_op *op = NULL;
    if (status == ALEXNET_OK)
        status = an_cuda_record(c, AN_CU_CONV_BWD_WEIGHTS, &op);
    if (status != ALEXNET_OK)
        return status;
    op->d.conv = *d;
    op->p[0] = in->data, op->p[1] = grad_out->data, op->p[2] = grad_weight->data, op->p[3] = grad_bias->data;
    return ALEXNET_OK;
}

static alexnet_status an_cuda_max_pool2d_backward(an_backend_context *c, const an_pool_desc *d, const an_buffer *in,
                                                  const an_buffer *grad_out, an_buffer *grad_in)
{
    return an_cuda_pool_op(c, AN_CU_MAX_POOL_BWD, d, in, grad_out, grad_in);
}

static alexnet_status an_cuda_adaptive_avg_pool2d_backward(an_backend_context *c, const an_pool_desc *d,
                                                           const an_buffer *grad_out, an_buffer *grad_in)
{
    return an_cuda_pool_op(c, AN_CU_AVG_POOL_BWD, d, grad_out, NULL, grad_in);
}

static alexnet_status an_cuda_lrn_backward(an_backend_context *c, const an_lrn_desc *d, const an_buffer *in,
                                           const an_buffer *out, const an_buffer *grad_out, an_buffer *grad_in)
{
    an_cuda_op *op = NULL;
    alexnet_status status = an_cuda_record(c, AN_CU_LRN_BWD, &op);
    if (status != ALEXNET_OK)
        return status;
    op->d.lrn = *d;
    op->p[0] = in->data, op->p[1] = out->data, op->p[2] = grad_out->data, op->p[3] = grad_in->data;
    return ALEXNET_OK;
}

static alexnet_status an_cuda_fc_backward_data(an_backend_context *c, const an_fc_desc *d, const an_buffer *grad_out,
                                               const an_buffer *weight, an_buffer *grad_in)
{
    an_cuda_op *op = NULL;
    alexnet_status status = an_cuda_record(c, AN_CU_FC_BWD_DATA, &op);
    if (status != ALEXNET_OK)
        return status;
    op->d.fc = *d;
    op->p[0] = grad_out->data, op->p[1] = weight->data, op->p[2] = grad_in->data;
    return ALEXNET_OK;
}

static alexnet_status an_cuda_fc_backward_weights(an_backend_context *c, const an_fc_desc *d, const an_buffer *in,
                                                  const an_buffer *grad_out, an_buffer *grad_weight,
                                                  an_buffer *grad_bias)
{
    an_cuda_op *op = NULL;
    alexnet_status status = an_cuda_record(c, AN_CU_FC_BWD_WEIGHTS, &op);
    if (status != ALEXNET_OK)
        return status;
    op->d.fc = *d;
    op->p[0] = in->data, op->p[1] = grad_out->data, op->p[2] = grad_weight->data, op->p[3] = grad_bias->data;
    return ALEXNET_OK;
}

static alexnet_status an_cuda_relu_backward(an_backend_context *c, size_t count, const an_buffer *out,
                                            const an_buffer *grad_out, an_buffer *grad_in)
{
    return an_cuda_elementwise(c, AN_CU_RELU_BWD, count, 0.0f, 0, out, grad_out, grad_in);
}

static alexnet_status an_cuda_dropout_backward(an_backend_context *c, size_t count, float rate, uint64_t seed,
                                               const an_buffer *grad_out, an_buffer *grad_in)
{
    return an_cuda_elementwise(c, AN_CU_DROPOUT, count, rate, seed, grad_out, NULL, grad_in);
}

static alexnet_status an_cuda_softmax_cross_entropy(an_backend_context *c, const an_softmax_desc *d,
                                                    const an_buffer *logits, const an_buffer *labels,
                                                    an_buffer *grad_logits, an_buffer *losses)
{
    an_cuda_op *op = NULL;
    alexnet_status status = an_cuda_record(c, AN_CU_XENT, &op);
    if (status != ALEXNET_OK)
        return status;
    op->d.softmax = *d;
    op->p[0] = logits->data, op->p[1] = labels->data, op->p[2] = grad_logits->data, op->p[3] = losses->data;
    c->status_pending = 1;
    return ALEXNET_OK;
}

static alexnet_status an_cuda_sgd_update(an_backend_context *c, const an_sgd_desc *d, an_buffer *param,
                                         const an_buffer *grad, an_buffer *velocity)
{
    an_cuda_op *op = NULL;
    alexnet_status status = an_cuda_record(c, AN_CU_SGD, &op);
    if (status != ALEXNET_OK)
        return status;
    /* Field by field: a struct copy may carry the source's padding bytes, and records are compared bytewise. */
    op->d.sgd.count = d->count;
    op->d.sgd.learning_rate = d->learning_rate;
    op->d.sgd.momentum = d->momentum;
    op->d.sgd.weight_decay = d->weight_decay;
    op->p[0] = param->data, op->p[1] = grad->data, op->p[2] = velocity->data;
    return ALEXNET_OK;
}

/* ================================================================================================ */

static an_backend an_cuda_backend;

extern "C" const an_backend *alexnet_plugin_entry(const an_plugin_host *host, const char **why)
{
    if (!an_plugin_host_accept(host, why))
        return NULL;
    an_backend *b = &an_cuda_backend;
    memset(b, 0, sizeof *b);
    b->api_version = AN_BACKEND_API_VERSION;
    b->name = "cuda";
    b->kind = "gpu";
    b->score = 300; /* above every CPU backend and OpenCL */
    b->probe = an_cuda_probe;
    b->describe = an_cuda_describe;
    b->device_count = an_cuda_device_count;
    b->device_info = an_cuda_device_info;
    b->context_create = an_cuda_context_create;
    b->context_destroy = an_cuda_context_destroy;
    b->buffer_create = an_cuda_buffer_create;
    b->buffer_destroy = an_cuda_buffer_destroy;
    b->upload = an_cuda_upload;
    b->download = an_cuda_download;
    b->weights_create = an_cuda_weights_create;
    b->prepare = an_cuda_prepare;
    b->conv2d = an_cuda_conv2d;
    b->max_pool2d = an_cuda_max_pool2d;
    b->adaptive_avg_pool2d = an_cuda_adaptive_avg_pool2d;
    b->lrn = an_cuda_lrn;
    b->fully_connected = an_cuda_fully_connected;
    b->relu = an_cuda_relu;
    b->dropout = an_cuda_dropout;
    b->softmax = an_cuda_softmax;
    b->sync = an_cuda_sync;
    b->weights_bind = an_cuda_weights_bind;
    b->weights_refresh = an_cuda_weights_refresh;
    b->conv2d_backward_data = an_cuda_conv2d_backward_data;
    b->conv2d_backward_weights = an_cuda_conv2d_backward_weights;
    b->max_pool2d_backward = an_cuda_max_pool2d_backward;
    b->adaptive_avg_pool2d_backward = an_cuda_adaptive_avg_pool2d_backward;
    b->lrn_backward = an_cuda_lrn_backward;
    b->fully_connected_backward_data = an_cuda_fc_backward_data;
    b->fully_connected_backward_weights = an_cuda_fc_backward_weights;
    b->relu_backward = an_cuda_relu_backward;
    b->dropout_backward = an_cuda_dropout_backward;
    b->softmax_cross_entropy = an_cuda_softmax_cross_entropy;
    b->sgd_update = an_cuda_sgd_update;
    return b;
}
