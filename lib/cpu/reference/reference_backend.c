/* The reference backend: host memory and the scalar kernels, run synchronously on the calling thread. */
#include <string.h>

#include "backend/backend.h"
#include "cpu/reference/reference_backward.h"
#include "cpu/reference/reference_ops.h"
#include "util/alloc.h"
#include "util/error.h"

struct an_buffer {
    float *data;
    size_t bytes;
    int owned;         /* 0 when aliasing model weights */
    const float *bias; /* weights buffers only */
};

struct an_backend_context {
    alexnet_allocator allocator;
};

static int an_ref_probe(const char **why)
{
    *why = "always available";
    return 1;
}

static const char *an_ref_describe(void) { return "portable scalar C kernels (the correctness oracle)"; }

/* Threads are ignored on purpose: the oracle stays single-threaded and obviously ordered. */
static alexnet_status an_ref_context_create(const an_backend_params *params, an_backend_context **out)
{
    an_backend_context *context = an_alloc(&params->allocator, sizeof *context, "reference backend context");
    if (context == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    context->allocator = params->allocator;
    *out = context;
    return ALEXNET_OK;
}

static void an_ref_context_destroy(an_backend_context *context)
{
    if (context != NULL) {
        alexnet_allocator allocator = context->allocator;
        an_free(&allocator, context, sizeof *context);
    }
}

static alexnet_status an_ref_buffer_create(an_backend_context *context, size_t bytes, an_buffer **out)
{
    an_buffer *buffer = an_alloc(&context->allocator, sizeof *buffer, "buffer");
    if (buffer == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    buffer->data = an_alloc(&context->allocator, bytes, "buffer data");
    if (buffer->data == NULL) {
        an_free(&context->allocator, buffer, sizeof *buffer);
        return ALEXNET_E_OUT_OF_MEMORY;
    }
    buffer->bytes = bytes;
    buffer->owned = 1;
    buffer->bias = NULL;
    *out = buffer;
    return ALEXNET_OK;
}

static alexnet_status an_ref_weights_create(an_backend_context *context, const an_op_desc *desc,
                                            const float *weight, const float *bias, an_buffer **out)
{
    size_t count = desc->kind == AN_OP_CONV2D
                       ? (size_t)desc->u.conv.out_channels * (desc->u.conv.in_channels / desc->u.conv.groups) *
                             desc->u.conv.kernel_size * desc->u.conv.kernel_size
                       : (size_t)desc->u.fc.out_features * desc->u.fc.in_features;
    an_buffer *buffer = an_alloc(&context->allocator, sizeof *buffer, "weights buffer");
    if (buffer == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    /* The model is immutable and outlives the context, so aliasing its memory is safe; ops only read it. */
    buffer->data = (float *)(uintptr_t)weight;
    buffer->bytes = count * sizeof(float);
    buffer->owned = 0;
    buffer->bias = bias;
    *out = buffer;
    return ALEXNET_OK;
}

static alexnet_status an_ref_prepare(an_backend_context *context, const an_op_desc *ops, size_t count)
{
    (void)context, (void)ops, (void)count; /* the scalar kernels need no scratch memory */
    return ALEXNET_OK;
}

static void an_ref_buffer_destroy(an_backend_context *context, an_buffer *buffer)
{
    if (buffer == NULL)
        return;
    if (buffer->owned)
        an_free(&context->allocator, buffer->data, buffer->bytes);
    an_free(&context->allocator, buffer, sizeof *buffer);
}

static alexnet_status an_ref_upload(an_backend_context *context, an_buffer *dst, const float *src, size_t count)
{
    (void)context;
    if (count * sizeof(float) > dst->bytes)
        return an_error(ALEXNET_E_BACKEND, "reference: upload of %zu floats into a %zu-byte buffer", count,
                        dst->bytes);
    memcpy(dst->data, src, count * sizeof(float));
    return ALEXNET_OK;
}

static alexnet_status an_ref_download(an_backend_context *context, const an_buffer *src, float *dst, size_t count)
{
    (void)context;
    if (count * sizeof(float) > src->bytes)
        return an_error(ALEXNET_E_BACKEND, "reference: download of %zu floats from a %zu-byte buffer", count,
                        src->bytes);
    memcpy(dst, src->data, count * sizeof(float));
    return ALEXNET_OK;
}

static alexnet_status an_ref_conv2d_op(an_backend_context *context, const an_conv_desc *desc, const an_buffer *in,
                                       const an_buffer *weights, an_buffer *out)
{
    (void)context;
    an_ref_conv2d(desc, in->data, weights->data, weights->bias, out->data);
    return ALEXNET_OK;
}

static alexnet_status an_ref_max_pool(an_backend_context *context, const an_pool_desc *desc, const an_buffer *in,
                                      an_buffer *out)
{
    (void)context;
    an_ref_max_pool2d(desc, in->data, out->data);
    return ALEXNET_OK;
}

static alexnet_status an_ref_avg_pool(an_backend_context *context, const an_pool_desc *desc, const an_buffer *in,
                                      an_buffer *out)
{
    (void)context;
    an_ref_adaptive_avg_pool2d(desc, in->data, out->data);
    return ALEXNET_OK;
}

static alexnet_status an_ref_lrn_op(an_backend_context *context, const an_lrn_desc *desc, const an_buffer *in,
                                    an_buffer *out)
{
    (void)context;
    an_ref_lrn(desc, in->data, out->data);
    return ALEXNET_OK;
}

static alexnet_status an_ref_fc(an_backend_context *context, const an_fc_desc *desc, const an_buffer *in,
                                const an_buffer *weights, an_buffer *out)
{
    (void)context;
    an_ref_fully_connected(desc, in->data, weights->data, weights->bias, out->data);
    return ALEXNET_OK;
}

static alexnet_status an_ref_relu_op(an_backend_context *context, size_t count, const an_buffer *in, an_buffer *out)
{
    (void)context;
    an_ref_relu(count, in->data, out->data);
    return ALEXNET_OK;
}

static alexnet_status an_ref_dropout_op(an_backend_context *context, size_t count, float rate, uint64_t seed,
                                        const an_buffer *in, an_buffer *out)
{
    (void)context;
    an_ref_dropout(count, rate, seed, in->data, out->data);
    return ALEXNET_OK;
}

static alexnet_status an_ref_softmax_op(an_backend_context *context, const an_softmax_desc *desc,
                                        const an_buffer *in, an_buffer *out)
{
    (void)context;
    an_ref_softmax(desc->batch, desc->classes, in->data, out->data);
    return ALEXNET_OK;
}

static alexnet_status an_ref_sync(an_backend_context *context)
{
    (void)context;
    return ALEXNET_OK;
}

/* ---- training: parameters are plain buffers that the kernels read in place ---- */

static alexnet_status an_ref_weights_bind(an_backend_context *context, const an_op_desc *desc,
                                          const an_buffer *weight, const an_buffer *bias, an_buffer **out)
{
    return an_ref_weights_create(context, desc, weight->data, bias->data, out);
}

static alexnet_status an_ref_weights_refresh(an_backend_context *context, const an_op_desc *desc,
                                             const an_buffer *weight, const an_buffer *bias, an_buffer *weights)
{
    (void)context, (void)desc;
    /* The handle aliases the parameter buffers, so it already sees the update. */
    weights->data = weight->data;
    weights->bias = bias->data;
    return ALEXNET_OK;
}

static alexnet_status an_ref_conv2d_backward_data_op(an_backend_context *context, const an_conv_desc *desc,
                                                     const an_buffer *grad_out, const an_buffer *weight,
                                                     an_buffer *grad_in)
{
    (void)context;
    an_ref_conv2d_backward_data(desc, grad_out->data, weight->data, grad_in->data);
    return ALEXNET_OK;
}

static alexnet_status an_ref_conv2d_backward_weights_op(an_backend_context *context, const an_conv_desc *desc,
                                                        const an_buffer *in, const an_buffer *grad_out,
                                                        an_buffer *grad_weight, an_buffer *grad_bias)
{
    (void)context;
    an_ref_conv2d_backward_weights(desc, in->data, grad_out->data, grad_weight->data, grad_bias->data);
    return ALEXNET_OK;
}

static alexnet_status an_ref_max_pool_backward(an_backend_context *context, const an_pool_desc *desc,
                                               const an_buffer *in, const an_buffer *grad_out, an_buffer *grad_in)
{
    (void)context;
    an_ref_max_pool2d_backward(desc, in->data, grad_out->data, grad_in->data);
    return ALEXNET_OK;
}

static alexnet_status an_ref_avg_pool_backward(an_backend_context *context, const an_pool_desc *desc,
                                               const an_buffer *grad_out, an_buffer *grad_in)
{
    (void)context;
    an_ref_adaptive_avg_pool2d_backward(desc, grad_out->data, grad_in->data);
    return ALEXNET_OK;
}

static alexnet_status an_ref_lrn_backward_op(an_backend_context *context, const an_lrn_desc *desc,
                                             const an_buffer *in, const an_buffer *out, const an_buffer *grad_out,
                                             an_buffer *grad_in)
{
    (void)context;
    an_ref_lrn_backward(desc, in->data, out->data, grad_out->data, grad_in->data);
    return ALEXNET_OK;
}

static alexnet_status an_ref_fc_backward_data(an_backend_context *context, const an_fc_desc *desc,
                                              const an_buffer *grad_out, const an_buffer *weight, an_buffer *grad_in)
{
    (void)context;
    an_ref_fully_connected_backward_data(desc, grad_out->data, weight->data, grad_in->data);
    return ALEXNET_OK;
}

static alexnet_status an_ref_fc_backward_weights(an_backend_context *context, const an_fc_desc *desc,
                                                 const an_buffer *in, const an_buffer *grad_out,
                                                 an_buffer *grad_weight, an_buffer *grad_bias)
{
    (void)context;
    an_ref_fully_connected_backward_weights(desc, in->data, grad_out->data, grad_weight->data, grad_bias->data);
    return ALEXNET_OK;
}

static alexnet_status an_ref_relu_backward_op(an_backend_context *context, size_t count, const an_buffer *out,
                                              const an_buffer *grad_out, an_buffer *grad_in)
{
    (void)context;
    an_ref_relu_backward(count, out->data, grad_out->data, grad_in->data);
    return ALEXNET_OK;
}

static alexnet_status an_ref_dropout_backward_op(an_backend_context *context, size_t count, float rate,
                                                 uint64_t seed, const an_buffer *grad_out, an_buffer *grad_in)
{
    (void)context;
    an_ref_dropout_backward(count, rate, seed, grad_out->data, grad_in->data);
    return ALEXNET_OK;
}

static alexnet_status an_ref_softmax_cross_entropy_op(an_backend_context *context, const an_softmax_desc *desc,
                                                      const an_buffer *logits, const an_buffer *labels,
                                                      an_buffer *grad_logits, an_buffer *losses)
{
    (void)context;
    if (!an_ref_softmax_cross_entropy(desc, logits->data, labels->data, grad_logits->data, losses->data))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "reference: a label is not a class index in [0, %u)",
                        desc->classes);
    return ALEXNET_OK;
}

static alexnet_status an_ref_sgd_update_op(an_backend_context *context, const an_sgd_desc *desc, an_buffer *param,
                                           const an_buffer *grad, an_buffer *velocity)
{
    (void)context;
    an_ref_sgd_update(desc, param->data, grad->data, velocity->data);
    return ALEXNET_OK;
}

const an_backend an_reference_backend = {
    .api_version = AN_BACKEND_API_VERSION,
    .name = "reference",
    .kind = "cpu",
    .score = 10,
    .probe = an_ref_probe,
    .describe = an_ref_describe,
    .context_create = an_ref_context_create,
    .context_destroy = an_ref_context_destroy,
    .buffer_create = an_ref_buffer_create,
    .buffer_destroy = an_ref_buffer_destroy,
    .upload = an_ref_upload,
    .download = an_ref_download,
    .weights_create = an_ref_weights_create,
    .prepare = an_ref_prepare,
    .conv2d = an_ref_conv2d_op,
    .max_pool2d = an_ref_max_pool,
    .adaptive_avg_pool2d = an_ref_avg_pool,
    .lrn = an_ref_lrn_op,
    .fully_connected = an_ref_fc,
    .relu = an_ref_relu_op,
    .dropout = an_ref_dropout_op,
    .softmax = an_ref_softmax_op,
    .sync = an_ref_sync,
    .weights_bind = an_ref_weights_bind,
    .weights_refresh = an_ref_weights_refresh,
    .conv2d_backward_data = an_ref_conv2d_backward_data_op,
    .conv2d_backward_weights = an_ref_conv2d_backward_weights_op,
    .max_pool2d_backward = an_ref_max_pool_backward,
    .adaptive_avg_pool2d_backward = an_ref_avg_pool_backward,
    .lrn_backward = an_ref_lrn_backward_op,
    .fully_connected_backward_data = an_ref_fc_backward_data,
    .fully_connected_backward_weights = an_ref_fc_backward_weights,
    .relu_backward = an_ref_relu_backward_op,
    .dropout_backward = an_ref_dropout_backward_op,
    .softmax_cross_entropy = an_ref_softmax_cross_entropy_op,
    .sgd_update = an_ref_sgd_update_op,
};
