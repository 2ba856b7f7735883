/* The OpenCL backend's training ops (backend.h, "training"): argument checks and launches of the kernels in
 * kernels/backward.cl. Parameters, gradients and momentum are plain device buffers; weights handles made by
 * weights_bind read the parameter buffers in place (opencl_backend.c), so an SGD step needs no refresh. */
#include "gpu/opencl/opencl_internal.h"
#include "util/error.h"

/* The extents every conv kernel takes after its buffers, in kernels/backward.cl's order. */
static void an_conv_args(an_cl_launch *l, const an_conv_desc *d)
{
    AN_CL_ARGS_U32(l, d->in_channels / d->groups, d->in_channels, d->in_height, d->in_width,
                   d->out_channels / d->groups, d->out_channels, d->out_height, d->out_width, d->kernel_size,
                   d->stride, d->padding);
}

static alexnet_status an_conv_check(const an_conv_desc *d)
{
    alexnet_status status = an_cl_conv_groups_check(d);
    if (status != ALEXNET_OK)
        return status;
    if (!an_cl_check_elements((uint64_t)d->batch * d->in_channels * d->in_height * d->in_width, "a conv input") ||
        !an_cl_check_elements((uint64_t)d->batch * d->out_channels * d->out_height * d->out_width, "a conv output"))
        return ALEXNET_E_UNSUPPORTED;
    return ALEXNET_OK;
}

static alexnet_status an_cl_conv2d_backward_data(an_backend_context *context, const an_conv_desc *d,
                                                 const an_buffer *grad_out, const an_buffer *weight,
                                                 an_buffer *grad_in)
{
    alexnet_status status = an_conv_check(d);
    if (status != ALEXNET_OK)
        return status;
    /* Per group: grad_in (cin_g rows) x (batch * input pixels columns). */
    const uint32_t N = d->batch * d->in_height * d->in_width;
    an_cl_launch l;
    an_cl_launch_begin(&l, context, AN_K_CONV2D_BACKWARD_DATA);
    AN_CL_ARGS_MEM(&l, grad_out->mem, weight->mem, grad_in->mem);
    an_conv_args(&l, d);
    an_cl_arg_u32(&l, N);
    return an_cl_launch_tiles(&l, N, d->in_channels / d->groups, d->groups);
}

static alexnet_status an_cl_conv2d_backward_weights(an_backend_context *context, const an_conv_desc *d,
                                                    const an_buffer *in, const an_buffer *grad_out,
                                                    an_buffer *grad_weight, an_buffer *grad_bias)
{
    alexnet_status status = an_conv_check(d);
    if (status != ALEXNET_OK)
        return status;
    /* Per group: grad_weight (cout_g rows) x (cin_g * k^2 taps columns), summed over batch * output pixels. */
    const uint32_t taps = d->in_channels / d->groups * d->kernel_size * d->kernel_size;
    const uint32_t plane = d->out_height * d->out_width;
    an_cl_launch l;
    an_cl_launch_begin(&l, context, AN_K_CONV2D_BACKWARD_WEIGHTS);
    AN_CL_ARGS_MEM(&l, in->mem, grad_out->mem, grad_weight->mem);
    an_conv_args(&l, d);
    an_cl_arg_u32(&l, d->batch * plane);
    status = an_cl_launch_tiles(&l, taps, d->out_channels / d->groups, d->groups);
    if (status != ALEXNET_OK)
        return status;
    an_cl_launch_begin(&l, context, AN_K_BIAS_GRAD_NCHW);
    AN_CL_ARGS_MEM(&l, grad_out->mem, grad_bias->mem);
    AN_CL_ARGS_U32(&l, d->batch, d->out_channels, plane);
    return an_cl_launch_rows(&l, d->out_channels);
}

static int an_pool_check(const an_pool_desc *d)
{
    return an_cl_check_elements((uint64_t)d->batch * d->channels * d->in_height * d->in_width, "a pooling input");
}

/* The pooling gradients gather: one work-item per INPUT element. */
static alexnet_status an_cl_max_pool2d_backward(an_backend_context *context, const an_pool_desc *d,
                                                const an_buffer *in, const an_buffer *grad_out, an_buffer *grad_in)
{
    if (!an_pool_check(d))
        return ALEXNET_E_UNSUPPORTED;
    an_cl_launch l;
    an_cl_launch_begin(&l, context, AN_K_MAX_POOL2D_BACKWARD);
    AN_CL_ARGS_MEM(&l, in->mem, grad_out->mem, grad_in->mem);
    an_cl_args_pool(&l, d);
    AN_CL_ARGS_U32(&l, d->kernel_size, d->stride);
    return an_cl_launch_1d(&l, (size_t)d->batch * d->channels * d->in_height * d->in_width);
}

static alexnet_status an_cl_adaptive_avg_pool2d_backward(an_backend_context *context, const an_pool_desc *d,
                                                         const an_buffer *grad_out, an_buffer *grad_in)
{
    if (!an_pool_check(d))
        return ALEXNET_E_UNSUPPORTED;
    an_cl_launch l;
    an_cl_launch_begin(&l, context, AN_K_ADAPTIVE_AVG_POOL2D_BACKWARD);
    AN_CL_ARGS_MEM(&l, grad_out->mem, grad_in->mem);
    an_cl_args_pool(&l, d);
    return an_cl_launch_1d(&l, (size_t)d->batch * d->channels * d->in_height * d->in_width);
}

static alexnet_status an_cl_lrn_backward(an_backend_context *context, const an_lrn_desc *d, const an_buffer *in,
                                         const an_buffer *out, const an_buffer *grad_out, an_buffer *grad_in)
{
    if (!an_cl_check_elements((uint64_t)d->batch * d->channels * d->height * d->width, "an LRN tensor"))
        return ALEXNET_E_UNSUPPORTED;
    an_cl_launch l;
    an_cl_launch_begin(&l, context, AN_K_LRN_BACKWARD);
    AN_CL_ARGS_MEM(&l, in->mem, out->mem, grad_out->mem, grad_in->mem);
    an_cl_args_lrn(&l, d);
    return an_cl_launch_1d(&l, (size_t)d->batch * d->channels * d->height * d->width);
}

static alexnet_status an_fc_check(const an_fc_desc *d)
{
    if (!an_cl_check_elements((uint64_t)d->out_features * d->in_features, "an FC weight") ||
        !an_cl_check_elements((uint64_t)d->batch * d->in_features, "an FC input") ||
        !an_cl_check_elements((uint64_t)d->batch * d->out_features, "an FC output"))
        return ALEXNET_E_UNSUPPORTED;
    return ALEXNET_OK;
}

static alexnet_status an_cl_fc_backward_data(an_backend_context *context, const an_fc_desc *d,
                                             const an_buffer *grad_out, const an_buffer *weight, an_buffer *grad_in)
{
    alexnet_status status = an_fc_check(d);
    if (status != ALEXNET_OK)
        return status;
    an_cl_launch l;
    an_cl_launch_begin(&l, context, AN_K_FC_BACKWARD_DATA);
    AN_CL_ARGS_MEM(&l, grad_out->mem, weight->mem, grad_in->mem);
    an_cl_args_fc(&l, d);
    return an_cl_launch_tiles(&l, d->batch, d->in_features, 1);
}

static alexnet_status an_cl_fc_backward_weights(an_backend_context *context, const an_fc_desc *d,
                                                const an_buffer *in, const an_buffer *grad_out,
                                                an_buffer *grad_weight, an_buffer *grad_bias)
{
    alexnet_status status = an_fc_check(d);
    if (status != ALEXNET_OK)
        return status;
    an_cl_launch l;
    an_cl_launch_begin(&l, context, AN_K_FC_BACKWARD_WEIGHTS);
    AN_CL_ARGS_MEM(&l, in->mem, grad_out->mem, grad_weight->mem);
    an_cl_args_fc(&l, d);
    status = an_cl_launch_tiles(&l, d->in_features, d->out_features, 1);
    if (status != ALEXNET_OK)
        return status;
    an_cl_launch_begin(&l, context, AN_K_BIAS_GRAD_ROWS);
    AN_CL_ARGS_MEM(&l, grad_out->mem, grad_bias->mem);
    AN_CL_ARGS_U32(&l, d->batch, d->out_features);
    return an_cl_launch_1d(&l, d->out_features);
}

static alexnet_status an_cl_relu_backward(an_backend_context *context, size_t count, const an_buffer *out,
                                          const an_buffer *grad_out, an_buffer *grad_in)
{
    if (!an_cl_check_elements(count, "relu_backward"))
        return ALEXNET_E_UNSUPPORTED;
    an_cl_launch l;
    an_cl_launch_begin(&l, context, AN_K_RELU_BACKWARD);
    AN_CL_ARGS_MEM(&l, out->mem, grad_out->mem, grad_in->mem);
    an_cl_arg_u32(&l, (uint32_t)count);
    return an_cl_launch_1d(&l, count);
}

/* The forward kernel applied to the gradient: the same mask and the same 1 / (1 - rate) scale. */
static alexnet_status an_cl_dropout_backward(an_backend_context *context, size_t count, float rate, uint64_t seed,
                                             const an_buffer *grad_out, an_buffer *grad_in)
{
    return an_cl_dropout_launch(context, count, rate, seed, grad_out, grad_in);
}

static alexnet_status an_cl_softmax_cross_entropy(an_backend_context *context, const an_softmax_desc *d,
                                                  const an_buffer *logits, const an_buffer *labels,
                                                  an_buffer *grad_logits, an_buffer *losses)
{
    if (!an_cl_check_elements((uint64_t)d->batch * d->classes, "the logits"))
        return ALEXNET_E_UNSUPPORTED;
    an_cl_launch l;
    an_cl_launch_begin(&l, context, AN_K_SOFTMAX_CROSS_ENTROPY);
    AN_CL_ARGS_MEM(&l, logits->mem, labels->mem, grad_logits->mem, losses->mem, context->status_flag);
    AN_CL_ARGS_U32(&l, d->batch, d->classes);
    alexnet_status status = an_cl_launch_rows(&l, d->batch);
    if (status == ALEXNET_OK)
        context->status_pending = 1; /* a bad label is reported by the next sync */
    return status;
}

static alexnet_status an_cl_sgd_update(an_backend_context *context, const an_sgd_desc *d, an_buffer *param,
                                       const an_buffer *grad, an_buffer *velocity)
{
    if (!an_cl_check_elements(d->count, "an SGD update"))
        return ALEXNET_E_UNSUPPORTED;
    an_cl_launch l;
    an_cl_launch_begin(&l, context, AN_K_SGD_UPDATE);
    AN_CL_ARGS_MEM(&l, param->mem, grad->mem, velocity->mem);
    an_cl_arg_u32(&l, (uint32_t)d->count);
    an_cl_arg_f32(&l, d->learning_rate);
    an_cl_arg_f32(&l, d->momentum);
    an_cl_arg_f32(&l, d->weight_decay);
    return an_cl_launch_1d(&l, d->count);
}

void an_cl_train_install(an_backend *backend)
{
    backend->conv2d_backward_data = an_cl_conv2d_backward_data;
    backend->conv2d_backward_weights = an_cl_conv2d_backward_weights;
    backend->max_pool2d_backward = an_cl_max_pool2d_backward;
    backend->adaptive_avg_pool2d_backward = an_cl_adaptive_avg_pool2d_backward;
    backend->lrn_backward = an_cl_lrn_backward;
    backend->fully_connected_backward_data = an_cl_fc_backward_data;
    backend->fully_connected_backward_weights = an_cl_fc_backward_weights;
    backend->relu_backward = an_cl_relu_backward;
    backend->dropout_backward = an_cl_dropout_backward;
    backend->softmax_cross_entropy = an_cl_softmax_cross_entropy;
    backend->sgd_update = an_cl_sgd_update;
}
