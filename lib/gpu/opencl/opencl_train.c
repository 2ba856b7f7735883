/* The OpenCL backend's training ops (backend.h, "training"): argument checks and launches of the kernels in
 * kernels/backward.cl. Parameters, gradients and momentum are plain device buffers; weights handles made by
 * weights_bind read the parameter buffers in place (opencl_backend.c), so an SGD step needs no refresh. */
#include "gpu/opencl/opencl_internal.h"
#include "util/error.h"

#define AN_GEMM_TILE 64

static size_t an_tiles(uint64_t count) { return (size_t)((count + AN_GEMM_TILE - 1) / AN_GEMM_TILE) * 16; }

/* The extents every conv kernel takes after its buffers, in kernels/backward.cl's order. */
static void an_conv_args(an_cl_launch *l, const an_conv_desc *d)
{
    an_cl_arg_u32(l, d->in_channels / d->groups);
    an_cl_arg_u32(l, d->in_channels);
    an_cl_arg_u32(l, d->in_height);
    an_cl_arg_u32(l, d->in_width);
    an_cl_arg_u32(l, d->out_channels / d->groups);
    an_cl_arg_u32(l, d->out_channels);
    an_cl_arg_u32(l, d->out_height);
    an_cl_arg_u32(l, d->out_width);
    an_cl_arg_u32(l, d->kernel_size);
    an_cl_arg_u32(l, d->stride);
    an_cl_arg_u32(l, d->padding);
}

static alexnet_status an_conv_check(const an_conv_desc *d)
{
    if (d->groups == 0 || d->in_channels % d->groups != 0 || d->out_channels % d->groups != 0)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "opencl: conv groups %u do not divide %u -> %u channels",
                        d->groups, d->in_channels, d->out_channels);
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
    const uint64_t N = (uint64_t)d->batch * d->in_height * d->in_width;
    an_cl_launch l;
    an_cl_launch_begin(&l, context, AN_K_CONV2D_BACKWARD_DATA);
    an_cl_arg_mem(&l, grad_out->mem);
    an_cl_arg_mem(&l, weight->mem);
    an_cl_arg_mem(&l, grad_in->mem);
    an_conv_args(&l, d);
    an_cl_arg_u32(&l, (uint32_t)N);
    size_t global[3] = {an_tiles(N), an_tiles(d->in_channels / d->groups), d->groups};
    size_t local[3] = {16, 16, 1};
    return an_cl_launch_run(&l, 3, global, local);
}

static alexnet_status an_cl_conv2d_backward_weights(an_backend_context *context, const an_conv_desc *d,
                                                    const an_buffer *in, const an_buffer *grad_out,
                                                    an_buffer *grad_weight, an_buffer *grad_bias)
{
    alexnet_status status = an_conv_check(d);
    if (status != ALEXNET_OK)
        return status;
    const uint32_t cin_g = d->in_channels / d->groups, cout_g = d->out_channels / d->groups;
    const uint32_t plane = d->out_height * d->out_width;
    an_cl_launch l;
    an_cl_launch_begin(&l, context, AN_K_CONV2D_BACKWARD_WEIGHTS);
    an_cl_arg_mem(&l, in->mem);
    an_cl_arg_mem(&l, grad_out->mem);
    an_cl_arg_mem(&l, grad_weight->mem);
    an_conv_args(&l, d);
    an_cl_arg_u32(&l, d->batch * plane);
    size_t global[3] = {an_tiles((uint64_t)cin_g * d->kernel_size * d->kernel_size), an_tiles(cout_g), d->groups};
    size_t local[3] = {16, 16, 1};
    status = an_cl_launch_run(&l, 3, global, local);
    if (status != ALEXNET_OK)
        return status;
    an_cl_launch_begin(&l, context, AN_K_BIAS_GRAD_NCHW);
    an_cl_arg_mem(&l, grad_out->mem);
    an_cl_arg_mem(&l, grad_bias->mem);
    an_cl_arg_u32(&l, d->batch);
    an_cl_arg_u32(&l, d->out_channels);
    an_cl_arg_u32(&l, plane);
    size_t bias_global = (size_t)d->out_channels * context->reduce_wg, bias_local = context->reduce_wg;
    return an_cl_launch_run(&l, 1, &bias_global, &bias_local);
}

static alexnet_status an_cl_max_pool2d_backward(an_backend_context *context, const an_pool_desc *d,
                                                const an_buffer *in, const an_buffer *grad_out, an_buffer *grad_in)
{
    if (!an_cl_check_elements((uint64_t)d->batch * d->channels * d->in_height * d->in_width, "a pooling input"))
        return ALEXNET_E_UNSUPPORTED;
    an_cl_launch l;
    an_cl_launch_begin(&l, context, AN_K_MAX_POOL2D_BACKWARD);
    an_cl_arg_mem(&l, in->mem);
    an_cl_arg_mem(&l, grad_out->mem);
    an_cl_arg_mem(&l, grad_in->mem);
    an_cl_arg_u32(&l, d->batch * d->channels);
    an_cl_arg_u32(&l, d->in_height);
    an_cl_arg_u32(&l, d->in_width);
    an_cl_arg_u32(&l, d->out_height);
    an_cl_arg_u32(&l, d->out_width);
    an_cl_arg_u32(&l, d->kernel_size);
    an_cl_arg_u32(&l, d->stride);
    return an_cl_launch_1d(&l, (size_t)d->batch * d->channels * d->in_height * d->in_width);
}

static alexnet_status an_cl_adaptive_avg_pool2d_backward(an_backend_context *context, const an_pool_desc *d,
                                                         const an_buffer *grad_out, an_buffer *grad_in)
{
    if (!an_cl_check_elements((uint64_t)d->batch * d->channels * d->in_height * d->in_width, "a pooling input"))
        return ALEXNET_E_UNSUPPORTED;
    an_cl_launch l;
    an_cl_launch_begin(&l, context, AN_K_ADAPTIVE_AVG_POOL2D_BACKWARD);
    an_cl_arg_mem(&l, grad_out->mem);
    an_cl_arg_mem(&l, grad_in->mem);
    an_cl_arg_u32(&l, d->batch * d->channels);
    an_cl_arg_u32(&l, d->in_height);
    an_cl_arg_u32(&l, d->in_width);
    an_cl_arg_u32(&l, d->out_height);
    an_cl_arg_u32(&l, d->out_width);
    return an_cl_launch_1d(&l, (size_t)d->batch * d->channels * d->in_height * d->in_width);
}

static alexnet_status an_cl_lrn_backward(an_backend_context *context, const an_lrn_desc *d, const an_buffer *in,
                                         const an_buffer *out, const an_buffer *grad_out, an_buffer *grad_in)
{
    if (!an_cl_check_elements((uint64_t)d->batch * d->channels * d->height * d->width, "an LRN tensor"))
        return ALEXNET_E_UNSUPPORTED;
    an_cl_launch l;
    an_cl_launch_begin(&l, context, AN_K_LRN_BACKWARD);
    an_cl_arg_mem(&l, in->mem);
    an_cl_arg_mem(&l, out->mem);
    an_cl_arg_mem(&l, grad_out->mem);
    an_cl_arg_mem(&l, grad_in->mem);
    an_cl_arg_u32(&l, d->batch);
    an_cl_arg_u32(&l, d->channels);
    an_cl_arg_u32(&l, d->height * d->width);
    an_cl_arg_u32(&l, d->size);
    an_cl_arg_f32(&l, d->alpha);
    an_cl_arg_f32(&l, d->beta);
    an_cl_arg_f32(&l, d->k);
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
    an_cl_arg_mem(&l, grad_out->mem);
    an_cl_arg_mem(&l, weight->mem);
    an_cl_arg_mem(&l, grad_in->mem);
    an_cl_arg_u32(&l, d->batch);
    an_cl_arg_u32(&l, d->in_features);
    an_cl_arg_u32(&l, d->out_features);
    size_t global[2] = {an_tiles(d->batch), an_tiles(d->in_features)};
    size_t local[2] = {16, 16};
    return an_cl_launch_run(&l, 2, global, local);
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
    an_cl_arg_mem(&l, in->mem);
    an_cl_arg_mem(&l, grad_out->mem);
    an_cl_arg_mem(&l, grad_weight->mem);
    an_cl_arg_u32(&l, d->batch);
    an_cl_arg_u32(&l, d->in_features);
    an_cl_arg_u32(&l, d->out_features);
    size_t global[2] = {an_tiles(d->in_features), an_tiles(d->out_features)};
    size_t local[2] = {16, 16};
    status = an_cl_launch_run(&l, 2, global, local);
    if (status != ALEXNET_OK)
        return status;
    an_cl_launch_begin(&l, context, AN_K_BIAS_GRAD_ROWS);
    an_cl_arg_mem(&l, grad_out->mem);
    an_cl_arg_mem(&l, grad_bias->mem);
    an_cl_arg_u32(&l, d->batch);
    an_cl_arg_u32(&l, d->out_features);
    return an_cl_launch_1d(&l, d->out_features);
}

static alexnet_status an_cl_relu_backward(an_backend_context *context, size_t count, const an_buffer *out,
                                          const an_buffer *grad_out, an_buffer *grad_in)
{
    if (!an_cl_check_elements(count, "relu_backward"))
        return ALEXNET_E_UNSUPPORTED;
    an_cl_launch l;
    an_cl_launch_begin(&l, context, AN_K_RELU_BACKWARD);
    an_cl_arg_mem(&l, out->mem);
    an_cl_arg_mem(&l, grad_out->mem);
    an_cl_arg_mem(&l, grad_in->mem);
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
    an_cl_arg_mem(&l, logits->mem);
    an_cl_arg_mem(&l, labels->mem);
    an_cl_arg_mem(&l, grad_logits->mem);
    an_cl_arg_mem(&l, losses->mem);
    an_cl_arg_mem(&l, context->status_flag);
    an_cl_arg_u32(&l, d->batch);
    an_cl_arg_u32(&l, d->classes);
    size_t global = (size_t)d->batch * context->reduce_wg, local = context->reduce_wg;
    alexnet_status status = an_cl_launch_run(&l, 1, &global, &local);
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
    an_cl_arg_mem(&l, param->mem);
    an_cl_arg_mem(&l, grad->mem);
    an_cl_arg_mem(&l, velocity->mem);
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
