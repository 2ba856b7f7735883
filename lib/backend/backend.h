/* The backend interface: what the network needs from a device, as a table of function pointers.
 *
 * Memory is backend-owned (an_buffer handles, so device memory fits). Weights become backend buffers once
 * per context through weights_create, which may repack them into the backend's own layout (or alias the
 * model's memory, which is immutable and outlives the context). Before a plan runs, prepare() sees every
 * op of it, so the backend sizes its scratch memory then and the ops themselves allocate nothing. Ops are
 * enqueued on the backend context and sync() waits for them. The network code (lib/net) calls only these
 * functions, so a new backend — the SIMD CPU one, CUDA, OpenCL — needs no change there. Activations are
 * NCHW float32 at this boundary.
 *
 * Versioning: api_version must equal AN_BACKEND_API_VERSION; a table built for another version (a plugin
 * compiled against an older library) is refused rather than called through a struct of another shape. */
#ifndef AN_BACKEND_BACKEND_H
#define AN_BACKEND_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "alexnet/alexnet.h"

/* 2: the training ops were appended to struct an_backend. */
#define AN_BACKEND_API_VERSION 2

typedef struct an_buffer an_buffer;                   /* defined by each backend */
typedef struct an_backend_context an_backend_context; /* defined by each backend */

typedef struct an_conv_desc {
    uint32_t batch;
    uint32_t in_channels, in_height, in_width;
    uint32_t out_channels, out_height, out_width;
    uint32_t kernel_size, stride, padding, groups;
    int relu; /* fuse ReLU into the output */
} an_conv_desc;

typedef struct an_pool_desc {
    uint32_t batch, channels;
    uint32_t in_height, in_width, out_height, out_width;
    uint32_t kernel_size, stride; /* max pooling only; no padding */
} an_pool_desc;

typedef struct an_lrn_desc {
    uint32_t batch, channels, height, width;
    uint32_t size;  /* window across channels, centred: [c - size/2, c + (size-1)/2] clipped */
    float alpha;    /* already scaled: the coefficient of the sum of squares */
    float beta, k;
} an_lrn_desc;

typedef struct an_fc_desc {
    uint32_t batch, in_features, out_features;
    int relu;
} an_fc_desc;

typedef struct an_softmax_desc {
    uint32_t batch, classes;
} an_softmax_desc;

typedef enum an_op_kind {
    AN_OP_CONV2D = 1,
    AN_OP_MAX_POOL2D = 2,
    AN_OP_ADAPTIVE_AVG_POOL2D = 3,
    AN_OP_LRN = 4,
    AN_OP_FULLY_CONNECTED = 5,
    AN_OP_SOFTMAX = 6
} an_op_kind;

/* One SGD update of one parameter tensor (count elements); learning_rate already carries the tensor's
 * multiplier and weight_decay its decay multiplier. */
typedef struct an_sgd_desc {
    size_t count;
    float learning_rate, momentum, weight_decay;
} an_sgd_desc;

/* One op of a plan, as prepare() and weights_create() see it. */
typedef struct an_op_desc {
    an_op_kind kind;
    union {
        an_conv_desc conv;
        an_pool_desc pool;
        an_lrn_desc lrn;
        an_fc_desc fc;
        an_softmax_desc softmax;
    } u;
} an_op_desc;

/* What a context asks of its backend. */
typedef struct an_backend_params {
    alexnet_allocator allocator;
    uint32_t num_threads;                 /* 1 = calling thread only; 0 = one per online CPU */
    alexnet_parallel_for_fn parallel_for; /* the host's job system, or NULL */
    void *parallel_for_host;
    uint32_t device_index;                /* < device_count() */
} an_backend_params;

typedef struct an_backend {
    uint32_t api_version;
    const char *name;        /* "reference", "cpu-simd", ... */
    const char *kind;        /* "cpu" or "gpu" */
    int32_t score;           /* "auto" prefers higher */
    /* Nonzero when usable here; otherwise *why explains (static text). */
    int (*probe)(const char **why);
    /* What it runs on here (e.g. the ISA chosen); static text. */
    const char *(*describe)(void);
    /* Devices: NULL device_count means exactly one device (index 0) described by describe(). */
    size_t (*device_count)(void);
    alexnet_status (*device_info)(size_t index, alexnet_device_info *out); /* fills all but name/backend */

    alexnet_status (*context_create)(const an_backend_params *params, an_backend_context **out);
    void (*context_destroy)(an_backend_context *context);

    /* Activation buffers, created uninitialised. */
    alexnet_status (*buffer_create)(an_backend_context *context, size_t bytes, an_buffer **out);
    void (*buffer_destroy)(an_backend_context *context, an_buffer *buffer);
    alexnet_status (*upload)(an_backend_context *context, an_buffer *dst, const float *src, size_t count);
    alexnet_status (*download)(an_backend_context *context, const an_buffer *src, float *dst, size_t count);

    /* The weights and bias of one conv or FC op (desc->kind), in PyTorch's layouts: conv
     * [out][in/groups][k][k], FC [out][in]; batch in desc is meaningless here. The result is destroyed with
     * buffer_destroy and passed to the op as `weights`. */
    alexnet_status (*weights_create)(an_backend_context *context, const an_op_desc *desc, const float *weight,
                                     const float *bias, an_buffer **out);
    /* Called with every op of a plan (at their maximum batch) before any runs; may allocate scratch. Ops
     * then run with a batch <= the prepared one and allocate nothing. */
    alexnet_status (*prepare)(an_backend_context *context, const an_op_desc *ops, size_t count);

    /* Ops (out = f(in)); in and out never alias. */
    alexnet_status (*conv2d)(an_backend_context *context, const an_conv_desc *desc, const an_buffer *in,
                             const an_buffer *weights, an_buffer *out);
    alexnet_status (*max_pool2d)(an_backend_context *context, const an_pool_desc *desc, const an_buffer *in,
                                 an_buffer *out);
    /* PyTorch's adaptive average pooling: cell i covers [floor(i*in/out), ceil((i+1)*in/out)). */
    alexnet_status (*adaptive_avg_pool2d)(an_backend_context *context, const an_pool_desc *desc,
                                          const an_buffer *in, an_buffer *out);
    alexnet_status (*lrn)(an_backend_context *context, const an_lrn_desc *desc, const an_buffer *in,
                          an_buffer *out);
    /* out[b][o] = bias[o] + sum_i weight[o][i] * in[b][i] */
    alexnet_status (*fully_connected)(an_backend_context *context, const an_fc_desc *desc, const an_buffer *in,
                                      const an_buffer *weights, an_buffer *out);
    alexnet_status (*relu)(an_backend_context *context, size_t count, const an_buffer *in, an_buffer *out);
    /* Inverted dropout for training: keep with probability 1 - rate and scale kept values by 1/(1-rate);
     * the mask is a pure function of (seed, element index), so it is reproducible on every backend. */
    alexnet_status (*dropout)(an_backend_context *context, size_t count, float rate, uint64_t seed,
                              const an_buffer *in, an_buffer *out);
    /* Row-wise softmax, numerically stable (max subtracted). */
    alexnet_status (*softmax)(an_backend_context *context, const an_softmax_desc *desc, const an_buffer *in,
                              an_buffer *out);
    /* Wait for everything enqueued; report the first asynchronous failure. */
    alexnet_status (*sync)(an_backend_context *context);

    /* ---- training (appended; lib/net/train.c). A backend that leaves any of these NULL cannot train:
     * trainer creation fails with ALEXNET_E_UNSUPPORTED naming it, and inference is unaffected.
     *
     * Conventions. Trainable parameters live in plain buffers in PyTorch's layouts (conv weight
     * [out][in/groups][k][k], FC weight [out][in], bias [out]), one buffer per tensor. Every gradient op
     * OVERWRITES its outputs (it never accumulates into them): weight gradients are the sum over the batch
     * of the op's desc, and a data gradient covers the whole input tensor (zero where nothing flows).
     * Gradients with respect to a conv or FC output are taken BEFORE its fused ReLU: the caller applies
     * relu_backward first, so desc->relu is ignored by the backward ops. Only relu_backward and
     * dropout_backward may run in place (grad_in == grad_out); every other op's buffers are distinct. */

    /* A weights handle for the forward ops (conv2d, fully_connected) that reads the given parameter
     * buffers, which outlive it. It is destroyed with buffer_destroy. */
    alexnet_status (*weights_bind)(an_backend_context *context, const an_op_desc *desc, const an_buffer *weight,
                                   const an_buffer *bias, an_buffer **out);
    /* The parameter buffers behind a bound handle changed (an update ran): a backend that repacked them
     * refreshes its copy here; one that reads them in place does nothing. */
    alexnet_status (*weights_refresh)(an_backend_context *context, const an_op_desc *desc, const an_buffer *weight,
                                      const an_buffer *bias, an_buffer *weights);
    /* grad_in[b][ic][y][x] = sum over the outputs the tap reaches of weight * grad_out. */
    alexnet_status (*conv2d_backward_data)(an_backend_context *context, const an_conv_desc *desc,
                                           const an_buffer *grad_out, const an_buffer *weight, an_buffer *grad_in);
    /* grad_weight = sum over batch and positions of grad_out * in; grad_bias = sum of grad_out. */
    alexnet_status (*conv2d_backward_weights)(an_backend_context *context, const an_conv_desc *desc,
                                              const an_buffer *in, const an_buffer *grad_out,
                                              an_buffer *grad_weight, an_buffer *grad_bias);
    /* Each window's gradient goes to its first maximum in window order (row by row), PyTorch's rule for
     * ties; overlapping windows add up. The maxima are recomputed from `in`. */
    alexnet_status (*max_pool2d_backward)(an_backend_context *context, const an_pool_desc *desc,
                                          const an_buffer *in, const an_buffer *grad_out, an_buffer *grad_in);
    /* Each cell's gradient is spread evenly over the input region it averaged. */
    alexnet_status (*adaptive_avg_pool2d_backward)(an_backend_context *context, const an_pool_desc *desc,
                                                   const an_buffer *grad_out, an_buffer *grad_in);
    /* in and out are the forward op's input and output (desc->alpha already scaled, as in lrn). */
    alexnet_status (*lrn_backward)(an_backend_context *context, const an_lrn_desc *desc, const an_buffer *in,
                                   const an_buffer *out, const an_buffer *grad_out, an_buffer *grad_in);
    /* grad_in[b][i] = sum_o weight[o][i] * grad_out[b][o] */
    alexnet_status (*fully_connected_backward_data)(an_backend_context *context, const an_fc_desc *desc,
                                                    const an_buffer *grad_out, const an_buffer *weight,
                                                    an_buffer *grad_in);
    /* grad_weight[o][i] = sum_b grad_out[b][o] * in[b][i]; grad_bias[o] = sum_b grad_out[b][o] */
    alexnet_status (*fully_connected_backward_weights)(an_backend_context *context, const an_fc_desc *desc,
                                                       const an_buffer *in, const an_buffer *grad_out,
                                                       an_buffer *grad_weight, an_buffer *grad_bias);
    /* From the ReLU's output: grad_in = out > 0 ? grad_out : 0. In place allowed. */
    alexnet_status (*relu_backward)(an_backend_context *context, size_t count, const an_buffer *out,
                                    const an_buffer *grad_out, an_buffer *grad_in);
    /* The dropout op's mask for the same (count, rate, seed): grad_in = keep ? grad_out / (1 - rate) : 0.
     * In place allowed. */
    alexnet_status (*dropout_backward)(an_backend_context *context, size_t count, float rate, uint64_t seed,
                                       const an_buffer *grad_out, an_buffer *grad_in);
    /* Softmax cross-entropy averaged over the batch. labels holds batch class indices as floats (exact up
     * to 2^24; classes are at most 2^20). Writes each image's loss (-log softmax at its label, computed
     * stably) to losses[batch] and d(mean loss)/d logits = (softmax - one_hot) / batch to grad_logits. */
    alexnet_status (*softmax_cross_entropy)(an_backend_context *context, const an_softmax_desc *desc,
                                            const an_buffer *logits, const an_buffer *labels,
                                            an_buffer *grad_logits, an_buffer *losses);
    /* SGD with momentum and weight decay, PyTorch's formulation (torch.optim.SGD, dampening 0, no
     * Nesterov): v = momentum * v + (grad + weight_decay * param); param -= learning_rate * v. */
    alexnet_status (*sgd_update)(an_backend_context *context, const an_sgd_desc *desc, an_buffer *param,
                                 const an_buffer *grad, an_buffer *velocity);
} an_backend;

/* ---- registry (lib/backend/registry.c) ---- */
size_t an_backend_registry_count(void);
const an_backend *an_backend_registry_get(size_t index);
/* Resolve a context option ("auto"/NULL, "cpu", a name) and ALEXNET_BACKEND into an available backend. */
alexnet_status an_backend_select(const char *requested, const an_backend **out);
/* Split "name:index" (index defaults to 0) and select; checks the index against the backend's devices. */
alexnet_status an_backend_select_device(const char *requested, const an_backend **out, uint32_t *out_index);
size_t an_backend_device_count(const an_backend *backend);

/* Dropout's keep decision for element i: shared by every backend so masks agree bit for bit. */
static inline int an_dropout_keep(uint64_t seed, uint64_t index, float rate)
{
    uint64_t z = seed + (index + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    /* 24-bit uniform compared with the rate: exact in float, so no rounding differs between devices. */
    return (float)(z >> 40) * (1.0f / 16777216.0f) >= rate;
}

#endif
