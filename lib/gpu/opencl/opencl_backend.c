/* The OpenCL backend: contexts, buffers, the inference ops and the module's entry point.
 *
 * Memory: activations, weights and scratch are OpenCL buffers on the device; they are not host memory and
 * do not go through the alexnet_allocator (nor does what the OpenCL driver allocates for itself). Host
 * structs (the context, buffer handles) and temporary host arrays (tap tables, cached program binaries)
 * do. Weights are uploaded once per context by weights_create; a batch is one upload of its input, the
 * ops, and one download of each output the caller asked for, because activations never leave the device.
 *
 * Ordering: every context has one in-order queue. Uploads and downloads are blocking (so the caller's
 * memory is free again when they return); ops only enqueue, and sync() waits for them with clFinish. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/common/plugin_host.h"
#include "gpu/opencl/opencl_internal.h"
#include "util/alloc.h"
#include "util/error.h"

const char *const an_cl_kernel_names[AN_K_COUNT] = {
    [AN_K_CONV2D_FORWARD] = "an_conv2d_forward",
    [AN_K_CONV2D_FORWARD_CPU] = "an_conv2d_forward_cpu",
    [AN_K_FC_FORWARD_GEMM] = "an_fc_forward_gemm",
    [AN_K_FC_FORWARD_SMALL] = "an_fc_forward_small",
    [AN_K_FC_FORWARD_ROWS] = "an_fc_forward_rows",
    [AN_K_MAX_POOL2D_FORWARD] = "an_max_pool2d_forward",
    [AN_K_ADAPTIVE_AVG_POOL2D_FORWARD] = "an_adaptive_avg_pool2d_forward",
    [AN_K_LRN_FORWARD] = "an_lrn_forward",
    [AN_K_SOFTMAX_FORWARD] = "an_softmax_forward",
    [AN_K_RELU_FORWARD] = "an_relu_forward",
    [AN_K_DROPOUT_FORWARD] = "an_dropout_forward",
    [AN_K_CONV2D_BACKWARD_DATA] = "an_conv2d_backward_data",
    [AN_K_CONV2D_BACKWARD_WEIGHTS] = "an_conv2d_backward_weights",
    [AN_K_BIAS_GRAD_NCHW] = "an_bias_grad_nchw",
    [AN_K_MAX_POOL2D_BACKWARD] = "an_max_pool2d_backward",
    [AN_K_ADAPTIVE_AVG_POOL2D_BACKWARD] = "an_adaptive_avg_pool2d_backward",
    [AN_K_LRN_BACKWARD] = "an_lrn_backward",
    [AN_K_FC_BACKWARD_DATA] = "an_fc_backward_data",
    [AN_K_FC_BACKWARD_WEIGHTS] = "an_fc_backward_weights",
    [AN_K_BIAS_GRAD_ROWS] = "an_bias_grad_rows",
    [AN_K_RELU_BACKWARD] = "an_relu_backward",
    [AN_K_SOFTMAX_CROSS_ENTROPY] = "an_softmax_cross_entropy",
    [AN_K_SGD_UPDATE] = "an_sgd_update",
};

/* Must match gemm.cl and softmax.cl. */
#define AN_GEMM_TILE 64
#define AN_FC_SMALL_BATCH 8
#define AN_FC_SMALL_WG 64
#define AN_REDUCE_WG_MAX 256

/* ---- probe and devices ---- */

static int an_cl_probe(const char **why)
{
    const an_cl_state *s = an_cl_probe_state();
    *why = s->available ? "available" : s->why;
    return s->available;
}

static const char *an_cl_describe(void)
{
    const an_cl_state *s = an_cl_probe_state();
    return s->available ? s->description : s->why;
}

static size_t an_cl_device_count(void) { return an_cl_probe_state()->device_count; }

static alexnet_status an_cl_device_info(size_t index, alexnet_device_info *out)
{
    const an_cl_state *s = an_cl_probe_state();
    if (index >= s->device_count)
        return an_error(ALEXNET_E_NOT_FOUND, "opencl: there is no device %zu", index);
    const an_cl_device *d = &s->devices[index];
    snprintf(out->description, sizeof out->description, "%s", d->description);
    out->memory_bytes = d->memory_bytes;
    out->available = d->usable;
    return ALEXNET_OK;
}

/* ---- launches ---- */

void an_cl_launch_begin(an_cl_launch *launch, an_backend_context *context, an_cl_kernel_id kernel)
{
    launch->context = context;
    launch->kernel = kernel;
    launch->index = 0;
    launch->error = CL_SUCCESS;
    launch->failed_index = 0;
}

static void an_cl_arg(an_cl_launch *launch, size_t size, const void *value)
{
    if (launch->error == CL_SUCCESS) {
        launch->error = an_cl.api.SetKernelArg(launch->context->kernels[launch->kernel], launch->index, size, value);
        launch->failed_index = launch->index;
    }
    launch->index++;
}

void an_cl_arg_mem(an_cl_launch *launch, cl_mem mem) { an_cl_arg(launch, sizeof mem, &mem); }

void an_cl_arg_u32(an_cl_launch *launch, uint32_t value)
{
    cl_uint v = value;
    an_cl_arg(launch, sizeof v, &v);
}

void an_cl_arg_f32(an_cl_launch *launch, float value)
{
    cl_float v = value;
    an_cl_arg(launch, sizeof v, &v);
}

alexnet_status an_cl_launch_run(an_cl_launch *launch, cl_uint dims, const size_t *global, const size_t *local)
{
    const char *name = an_cl_kernel_names[launch->kernel];
    if (launch->error != CL_SUCCESS)
        return an_error(ALEXNET_E_BACKEND, "opencl: %s: argument %u: %s", name, launch->failed_index,
                        an_cl_error_name(launch->error));
    size_t rounded[3];
    for (cl_uint d = 0; d < dims; d++) {
        if (global[d] == 0)
            return ALEXNET_OK; /* nothing to do (e.g. an empty tensor) */
        rounded[d] = (global[d] + local[d] - 1) / local[d] * local[d];
    }
    cl_int error = an_cl.api.EnqueueNDRangeKernel(launch->context->queue, launch->context->kernels[launch->kernel],
                                                  dims, NULL, rounded, local, 0, NULL, NULL);
    if (error != CL_SUCCESS) {
        char what[96];
        snprintf(what, sizeof what, "enqueueing %s", name);
        return an_cl_fail(error, what);
    }
    return ALEXNET_OK;
}

alexnet_status an_cl_launch_1d(an_cl_launch *launch, size_t count)
{
    size_t global = count, local = 64;
    return an_cl_launch_run(launch, 1, &global, &local);
}

static size_t an_cl_tiles(uint64_t count) { return (size_t)((count + AN_GEMM_TILE - 1) / AN_GEMM_TILE) * 16; }

alexnet_status an_cl_launch_tiles(an_cl_launch *launch, uint64_t n, uint64_t m, uint32_t groups)
{
    /* reqd_work_group_size(16, 16, 1) on every tiled kernel; a one-group launch is the same 2-D grid. */
    size_t global[3] = {an_cl_tiles(n), an_cl_tiles(m), groups}, local[3] = {16, 16, 1};
    return an_cl_launch_run(launch, 3, global, local);
}

alexnet_status an_cl_launch_rows(an_cl_launch *launch, size_t rows)
{
    size_t local = launch->context->reduce_wg, global = rows * local;
    return an_cl_launch_run(launch, 1, &global, &local);
}

void an_cl_arg_mems(an_cl_launch *launch, const cl_mem *mems, size_t count)
{
    for (size_t i = 0; i < count; i++)
        an_cl_arg_mem(launch, mems[i]);
}

void an_cl_arg_u32s(an_cl_launch *launch, const uint32_t *values, size_t count)
{
    for (size_t i = 0; i < count; i++)
        an_cl_arg_u32(launch, values[i]);
}

void an_cl_args_pool(an_cl_launch *launch, const an_pool_desc *d)
{
    AN_CL_ARGS_U32(launch, d->batch * d->channels, d->in_height, d->in_width, d->out_height, d->out_width);
}

void an_cl_args_lrn(an_cl_launch *launch, const an_lrn_desc *d)
{
    AN_CL_ARGS_U32(launch, d->batch, d->channels, d->height * d->width, d->size);
    an_cl_arg_f32(launch, d->alpha);
    an_cl_arg_f32(launch, d->beta);
    an_cl_arg_f32(launch, d->k);
}

void an_cl_args_fc(an_cl_launch *launch, const an_fc_desc *d)
{
    AN_CL_ARGS_U32(launch, d->batch, d->in_features, d->out_features);
}

alexnet_status an_cl_conv_groups_check(const an_conv_desc *d)
{
    if (d->groups == 0 || d->in_channels % d->groups != 0 || d->out_channels % d->groups != 0)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "opencl: conv groups %u do not divide %u -> %u channels",
                        d->groups, d->in_channels, d->out_channels);
    return ALEXNET_OK;
}

int an_cl_check_elements(uint64_t count, const char *what)
{
    /* Kernels index with 32-bit integers, signed where padding makes offsets negative. */
    if (count <= INT32_MAX)
        return 1;
    an_error(ALEXNET_E_UNSUPPORTED, "opencl: %s has %llu elements; the kernels index at most 2^31 - 1", what,
             (unsigned long long)count);
    return 0;
}

/* ---- contexts ---- */

static void an_cl_context_destroy(an_backend_context *context)
{
    if (context == NULL)
        return;
    if (context->queue != NULL)
        an_cl.api.Finish(context->queue);
    for (int k = 0; k < AN_K_COUNT; k++) {
        if (context->kernels[k] != NULL)
            an_cl.api.ReleaseKernel(context->kernels[k]);
    }
    if (context->status_flag != NULL)
        an_cl.api.ReleaseMemObject(context->status_flag);
    if (context->queue != NULL)
        an_cl.api.ReleaseCommandQueue(context->queue);
    alexnet_allocator allocator = context->allocator;
    an_free(&allocator, context, sizeof *context);
}

static alexnet_status an_cl_context_create(const an_backend_params *params, an_backend_context **out)
{
    const char *why = NULL;
    if (!an_cl_probe(&why))
        return an_error(ALEXNET_E_UNSUPPORTED, "opencl: unavailable: %s", why);
    if (params->device_index >= an_cl.device_count)
        return an_error(ALEXNET_E_NOT_FOUND, "opencl: there is no device %u", params->device_index);
    an_cl_device *device = &an_cl.devices[params->device_index];
    if (!device->usable)
        return an_error(ALEXNET_E_UNSUPPORTED, "opencl:%u (%s): %s", params->device_index, device->name,
                        device->unusable_why);
    an_backend_context *context = an_calloc(&params->allocator, 1, sizeof *context, "opencl context");
    if (context == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    context->allocator = params->allocator;
    context->device = device;
    const char *kernels = getenv("ALEXNET_OPENCL_KERNELS");
    context->force_gpu_kernels = kernels != NULL && strcmp(kernels, "gpu") == 0;
    alexnet_status status = an_cl_device_program(device, &params->allocator);
    cl_int error = CL_SUCCESS;
    if (status == ALEXNET_OK) {
        context->queue = an_cl.api.CreateCommandQueue(device->context, device->id, 0, &error);
        if (context->queue == NULL || error != CL_SUCCESS)
            status = an_cl_fail(error, "clCreateCommandQueue");
    }
    for (int k = 0; status == ALEXNET_OK && k < AN_K_COUNT; k++) {
        context->kernels[k] = an_cl.api.CreateKernel(device->program, an_cl_kernel_names[k], &error);
        if (context->kernels[k] == NULL || error != CL_SUCCESS) {
            char what[96];
            snprintf(what, sizeof what, "clCreateKernel(%s)", an_cl_kernel_names[k]);
            status = an_cl_fail(error, what);
        }
    }
    if (status == ALEXNET_OK) {
        /* The largest power of two the device and the softmax kernel accept, up to its local array. */
        size_t limit = device->max_work_group, kernel_limit = 0;
        if (an_cl.api.GetKernelWorkGroupInfo(context->kernels[AN_K_SOFTMAX_FORWARD], device->id,
                                             CL_KERNEL_WORK_GROUP_SIZE, sizeof kernel_limit, &kernel_limit,
                                             NULL) == CL_SUCCESS &&
            kernel_limit < limit)
            limit = kernel_limit;
        context->reduce_wg = 1;
        while (context->reduce_wg * 2 <= limit && context->reduce_wg * 2 <= AN_REDUCE_WG_MAX)
            context->reduce_wg *= 2;
        cl_int zero = 0;
        context->status_flag = an_cl.api.CreateBuffer(device->context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                                                      sizeof zero, &zero, &error);
        if (context->status_flag == NULL || error != CL_SUCCESS)
            status = an_cl_fail(error, "clCreateBuffer(status flag)");
    }
    if (status != ALEXNET_OK) {
        an_cl_context_destroy(context);
        return status;
    }
    *out = context;
    return ALEXNET_OK;
}

/* ---- buffers ---- */

static alexnet_status an_cl_buffer_new(an_backend_context *context, size_t bytes, const void *init, cl_mem *out)
{
    cl_int error = CL_SUCCESS;
    if (bytes == 0)
        init = NULL; /* an empty buffer still gets one float of storage, which must not be read from init */
    cl_mem_flags flags = CL_MEM_READ_WRITE | (init != NULL ? CL_MEM_COPY_HOST_PTR : 0);
    /* CL_MEM_COPY_HOST_PTR only reads the host memory, whatever the parameter's type says. */
    *out = an_cl.api.CreateBuffer(context->device->context, flags, bytes == 0 ? sizeof(float) : bytes,
                                  (void *)(uintptr_t)init, &error);
    if (*out == NULL || error != CL_SUCCESS) {
        *out = NULL;
        char what[96];
        snprintf(what, sizeof what, "allocating %zu bytes of device memory", bytes);
        return an_cl_fail(error == CL_SUCCESS ? CL_MEM_OBJECT_ALLOCATION_FAILURE : error, what);
    }
    return ALEXNET_OK;
}

static alexnet_status an_cl_buffer_create(an_backend_context *context, size_t bytes, an_buffer **out)
{
    an_buffer *buffer = an_calloc(&context->allocator, 1, sizeof *buffer, "opencl buffer");
    if (buffer == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    alexnet_status status = an_cl_buffer_new(context, bytes, NULL, &buffer->mem);
    if (status != ALEXNET_OK) {
        an_free(&context->allocator, buffer, sizeof *buffer);
        return status;
    }
    buffer->bytes = bytes;
    buffer->owns_mem = 1;
    *out = buffer;
    return ALEXNET_OK;
}

static void an_cl_buffer_destroy(an_backend_context *context, an_buffer *buffer)
{
    if (buffer == NULL)
        return;
    /* Releasing defers the actual free until enqueued kernels that use the buffer have finished. */
    if (buffer->owns_mem && buffer->mem != NULL)
        an_cl.api.ReleaseMemObject(buffer->mem);
    if (buffer->owns_bias && buffer->bias != NULL)
        an_cl.api.ReleaseMemObject(buffer->bias);
    if (buffer->taps != NULL)
        an_cl.api.ReleaseMemObject(buffer->taps);
    an_free(&context->allocator, buffer, sizeof *buffer);
}

static alexnet_status an_cl_upload(an_backend_context *context, an_buffer *dst, const float *src, size_t count)
{
    if (count > dst->bytes / sizeof(float))
        return an_error(ALEXNET_E_BACKEND, "opencl: upload of %zu floats into a %zu-byte buffer", count, dst->bytes);
    if (count == 0)
        return ALEXNET_OK;
    cl_int error = an_cl.api.EnqueueWriteBuffer(context->queue, dst->mem, CL_TRUE, 0, count * sizeof(float), src, 0,
                                                NULL, NULL);
    return error == CL_SUCCESS ? ALEXNET_OK : an_cl_fail(error, "upload (clEnqueueWriteBuffer)");
}

static alexnet_status an_cl_download(an_backend_context *context, const an_buffer *src, float *dst, size_t count)
{
    if (count > src->bytes / sizeof(float))
        return an_error(ALEXNET_E_BACKEND, "opencl: download of %zu floats from a %zu-byte buffer", count,
                        src->bytes);
    if (count == 0)
        return ALEXNET_OK;
    cl_int error = an_cl.api.EnqueueReadBuffer(context->queue, src->mem, CL_TRUE, 0, count * sizeof(float), dst, 0,
                                               NULL, NULL);
    return error == CL_SUCCESS ? ALEXNET_OK : an_cl_fail(error, "download (clEnqueueReadBuffer)");
}

/* ---- weights ---- */

static uint64_t an_conv_weight_count(const an_conv_desc *d)
{
    return (uint64_t)d->out_channels * (d->in_channels / d->groups) * d->kernel_size * d->kernel_size;
}

/* The conv kernels' tap table: k = (ic, ky, kx) in PyTorch's weight order -> ic << 16 | ky << 8 | kx. */
static alexnet_status an_cl_taps_create(an_backend_context *context, const an_conv_desc *d, cl_mem *out)
{
    const uint32_t cin_g = d->in_channels / d->groups, k = d->kernel_size;
    if (k == 0 || k > 255 || cin_g == 0 || cin_g > 65535)
        return an_error(ALEXNET_E_UNSUPPORTED,
                        "opencl: convolution with kernel %u and %u input channels per group is beyond the kernels' "
                        "limits (kernel <= 255, channels per group <= 65535)", k, cin_g);
    size_t count = (size_t)cin_g * k * k;
    cl_int *taps = an_alloc(&context->allocator, count * sizeof *taps, "opencl tap table");
    if (taps == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    size_t i = 0;
    for (uint32_t ic = 0; ic < cin_g; ic++)
        for (uint32_t ky = 0; ky < k; ky++)
            for (uint32_t kx = 0; kx < k; kx++)
                taps[i++] = (cl_int)(ic << 16 | ky << 8 | kx);
    alexnet_status status = an_cl_buffer_new(context, count * sizeof *taps, taps, out);
    an_free(&context->allocator, taps, count * sizeof *taps);
    return status;
}

/* A weights handle over given weight/bias memory (copies when owned, else the caller's buffers). */
static alexnet_status an_cl_weights_handle(an_backend_context *context, const an_op_desc *desc, cl_mem weight,
                                           int owns_weight, cl_mem bias, int owns_bias, an_buffer **out)
{
    an_buffer *buffer = an_calloc(&context->allocator, 1, sizeof *buffer, "opencl weights");
    if (buffer == NULL) {
        if (owns_weight)
            an_cl.api.ReleaseMemObject(weight);
        if (owns_bias)
            an_cl.api.ReleaseMemObject(bias);
        return ALEXNET_E_OUT_OF_MEMORY;
    }
    buffer->mem = weight;
    buffer->owns_mem = owns_weight;
    buffer->bias = bias;
    buffer->owns_bias = owns_bias;
    buffer->kind = desc->kind;
    alexnet_status status = ALEXNET_OK;
    if (desc->kind == AN_OP_CONV2D) {
        buffer->bytes = (size_t)an_conv_weight_count(&desc->u.conv) * sizeof(float);
        status = an_cl_taps_create(context, &desc->u.conv, &buffer->taps);
    } else {
        buffer->bytes = (size_t)desc->u.fc.out_features * desc->u.fc.in_features * sizeof(float);
    }
    if (status != ALEXNET_OK) {
        an_cl_buffer_destroy(context, buffer);
        return status;
    }
    *out = buffer;
    return ALEXNET_OK;
}

static alexnet_status an_cl_weights_check(const an_op_desc *desc)
{
    if (desc->kind == AN_OP_CONV2D) {
        const an_conv_desc *d = &desc->u.conv;
        alexnet_status status = an_cl_conv_groups_check(d);
        if (status != ALEXNET_OK)
            return status;
        return an_cl_check_elements(an_conv_weight_count(d), "a conv weight") ? ALEXNET_OK : ALEXNET_E_UNSUPPORTED;
    }
    if (desc->kind == AN_OP_FULLY_CONNECTED)
        return an_cl_check_elements((uint64_t)desc->u.fc.out_features * desc->u.fc.in_features, "an FC weight")
                   ? ALEXNET_OK
                   : ALEXNET_E_UNSUPPORTED;
    return an_error(ALEXNET_E_INVALID_ARGUMENT, "opencl: weights for op kind %d", (int)desc->kind);
}

static alexnet_status an_cl_weights_create(an_backend_context *context, const an_op_desc *desc, const float *weight,
                                           const float *bias, an_buffer **out)
{
    alexnet_status status = an_cl_weights_check(desc);
    if (status != ALEXNET_OK)
        return status;
    size_t weight_count = desc->kind == AN_OP_CONV2D ? (size_t)an_conv_weight_count(&desc->u.conv)
                                                     : (size_t)desc->u.fc.out_features * desc->u.fc.in_features;
    size_t bias_count = desc->kind == AN_OP_CONV2D ? desc->u.conv.out_channels : desc->u.fc.out_features;
    cl_mem weight_mem = NULL, bias_mem = NULL;
    status = an_cl_buffer_new(context, weight_count * sizeof(float), weight, &weight_mem);
    if (status == ALEXNET_OK)
        status = an_cl_buffer_new(context, bias_count * sizeof(float), bias, &bias_mem);
    if (status != ALEXNET_OK) {
        if (weight_mem != NULL)
            an_cl.api.ReleaseMemObject(weight_mem);
        return status;
    }
    return an_cl_weights_handle(context, desc, weight_mem, 1, bias_mem, 1, out);
}

static alexnet_status an_cl_weights_bind(an_backend_context *context, const an_op_desc *desc, const an_buffer *weight,
                                         const an_buffer *bias, an_buffer **out)
{
    alexnet_status status = an_cl_weights_check(desc);
    if (status != ALEXNET_OK)
        return status;
    return an_cl_weights_handle(context, desc, weight->mem, 0, bias->mem, 0, out);
}

static alexnet_status an_cl_weights_refresh(an_backend_context *context, const an_op_desc *desc,
                                            const an_buffer *weight, const an_buffer *bias, an_buffer *weights)
{
    (void)context, (void)desc;
    /* The kernels read the parameter buffers in place: nothing was repacked, so nothing is stale. */
    weights->mem = weight->mem;
    weights->bias = bias->mem;
    return ALEXNET_OK;
}

/* ---- prepare: every op's sizes must fit the kernels' 32-bit indexing ---- */

static alexnet_status an_cl_prepare(an_backend_context *context, const an_op_desc *ops, size_t count)
{
    (void)context; /* the kernels need no scratch memory: convolution is an implicit GEMM */
    for (size_t i = 0; i < count; i++) {
        const an_op_desc *op = &ops[i];
        uint64_t in = 0, out = 0;
        switch (op->kind) {
        case AN_OP_CONV2D: {
            const an_conv_desc *d = &op->u.conv;
            in = (uint64_t)d->batch * d->in_channels * d->in_height * d->in_width;
            out = (uint64_t)d->batch * d->out_channels * d->out_height * d->out_width;
            break;
        }
        case AN_OP_MAX_POOL2D:
        case AN_OP_ADAPTIVE_AVG_POOL2D: {
            const an_pool_desc *d = &op->u.pool;
            in = (uint64_t)d->batch * d->channels * d->in_height * d->in_width;
            out = (uint64_t)d->batch * d->channels * d->out_height * d->out_width;
            break;
        }
        case AN_OP_LRN:
            in = out = (uint64_t)op->u.lrn.batch * op->u.lrn.channels * op->u.lrn.height * op->u.lrn.width;
            break;
        case AN_OP_FULLY_CONNECTED:
            in = (uint64_t)op->u.fc.batch * op->u.fc.in_features;
            out = (uint64_t)op->u.fc.batch * op->u.fc.out_features;
            break;
        case AN_OP_SOFTMAX:
            in = out = (uint64_t)op->u.softmax.batch * op->u.softmax.classes;
            break;
        }
        if (!an_cl_check_elements(in, "an op's input") || !an_cl_check_elements(out, "an op's output"))
            return ALEXNET_E_UNSUPPORTED;
    }
    return ALEXNET_OK;
}

/* ---- ops ---- */

static alexnet_status an_cl_conv2d(an_backend_context *context, const an_conv_desc *d, const an_buffer *in,
                                   const an_buffer *weights, an_buffer *out)
{
    if (weights->kind != AN_OP_CONV2D)
        return an_error(ALEXNET_E_BACKEND, "opencl: conv2d given a weights handle of another op");
    const uint32_t M = d->out_channels / d->groups, cin_g = d->in_channels / d->groups;
    const uint32_t K = cin_g * d->kernel_size * d->kernel_size;
    const uint32_t P = d->batch * d->out_height * d->out_width;
    /* CPU devices get the variant without local memory (see gemm.cl). */
    const int cpu = (context->device->type & CL_DEVICE_TYPE_CPU) != 0 && !context->force_gpu_kernels;
    an_cl_launch l;
    an_cl_launch_begin(&l, context, cpu ? AN_K_CONV2D_FORWARD_CPU : AN_K_CONV2D_FORWARD);
    AN_CL_ARGS_MEM(&l, in->mem, weights->mem, weights->bias, weights->taps, out->mem);
    AN_CL_ARGS_U32(&l, cin_g, d->in_channels, d->in_height, d->in_width, d->out_channels, d->out_height,
                   d->out_width, d->stride, d->padding, M, K, P, d->relu != 0);
    if (!cpu)
        return an_cl_launch_tiles(&l, P, M, d->groups);
    an_cl_arg_u32(&l, d->kernel_size);
    size_t global[3] = {(size_t)(M + 7) / 8, (size_t)(P + 7) / 8, d->groups}, local[3] = {1, 1, 1};
    return an_cl_launch_run(&l, 3, global, local);
}

static alexnet_status an_cl_fully_connected(an_backend_context *context, const an_fc_desc *d, const an_buffer *in,
                                            const an_buffer *weights, an_buffer *out)
{
    if (weights->kind != AN_OP_FULLY_CONNECTED)
        return an_error(ALEXNET_E_BACKEND, "opencl: fully_connected given a weights handle of another op");
    int small = d->batch <= AN_FC_SMALL_BATCH;
    /* On a CPU device a work-item per output row with explicit vectors beats both the work-group reduction
     * and the local-memory tiles, whatever the batch (see gemm.cl). */
    int rows = (context->device->type & CL_DEVICE_TYPE_CPU) && !context->force_gpu_kernels &&
               d->in_features % 8 == 0;
    an_cl_launch l;
    an_cl_launch_begin(&l, context, rows ? AN_K_FC_FORWARD_ROWS : small ? AN_K_FC_FORWARD_SMALL : AN_K_FC_FORWARD_GEMM);
    AN_CL_ARGS_MEM(&l, in->mem, weights->mem, weights->bias, out->mem);
    an_cl_args_fc(&l, d);
    an_cl_arg_u32(&l, d->relu != 0);
    if (rows) {
        size_t global = d->out_features, local = 16;
        return an_cl_launch_run(&l, 1, &global, &local);
    }
    if (small) {
        size_t global = (size_t)d->out_features * AN_FC_SMALL_WG, local = AN_FC_SMALL_WG;
        return an_cl_launch_run(&l, 1, &global, &local);
    }
    return an_cl_launch_tiles(&l, d->batch, d->out_features, 1);
}

static alexnet_status an_cl_max_pool2d(an_backend_context *context, const an_pool_desc *d, const an_buffer *in,
                                       an_buffer *out)
{
    an_cl_launch l;
    an_cl_launch_begin(&l, context, AN_K_MAX_POOL2D_FORWARD);
    AN_CL_ARGS_MEM(&l, in->mem, out->mem);
    an_cl_args_pool(&l, d);
    AN_CL_ARGS_U32(&l, d->kernel_size, d->stride);
    return an_cl_launch_1d(&l, (size_t)d->batch * d->channels * d->out_height * d->out_width);
}

static alexnet_status an_cl_adaptive_avg_pool2d(an_backend_context *context, const an_pool_desc *d,
                                                const an_buffer *in, an_buffer *out)
{
    an_cl_launch l;
    an_cl_launch_begin(&l, context, AN_K_ADAPTIVE_AVG_POOL2D_FORWARD);
    AN_CL_ARGS_MEM(&l, in->mem, out->mem);
    an_cl_args_pool(&l, d);
    return an_cl_launch_1d(&l, (size_t)d->batch * d->channels * d->out_height * d->out_width);
}

static alexnet_status an_cl_lrn(an_backend_context *context, const an_lrn_desc *d, const an_buffer *in,
                                an_buffer *out)
{
    an_cl_launch l;
    an_cl_launch_begin(&l, context, AN_K_LRN_FORWARD);
    AN_CL_ARGS_MEM(&l, in->mem, out->mem);
    an_cl_args_lrn(&l, d);
    return an_cl_launch_1d(&l, (size_t)d->batch * d->channels * d->height * d->width);
}

static alexnet_status an_cl_relu(an_backend_context *context, size_t count, const an_buffer *in, an_buffer *out)
{
    if (!an_cl_check_elements(count, "relu"))
        return ALEXNET_E_UNSUPPORTED;
    an_cl_launch l;
    an_cl_launch_begin(&l, context, AN_K_RELU_FORWARD);
    AN_CL_ARGS_MEM(&l, in->mem, out->mem);
    an_cl_arg_u32(&l, (uint32_t)count);
    return an_cl_launch_1d(&l, count);
}

alexnet_status an_cl_dropout_launch(an_backend_context *context, size_t count, float rate, uint64_t seed,
                                    const an_buffer *in, an_buffer *out)
{
    if (!an_cl_check_elements(count, "dropout"))
        return ALEXNET_E_UNSUPPORTED;
    an_cl_launch l;
    an_cl_launch_begin(&l, context, AN_K_DROPOUT_FORWARD);
    AN_CL_ARGS_MEM(&l, in->mem, out->mem);
    an_cl_arg_u32(&l, (uint32_t)count);
    an_cl_arg_f32(&l, rate);
    an_cl_arg_f32(&l, 1.0f / (1.0f - rate)); /* the reference's scale, computed the same way */
    AN_CL_ARGS_U32(&l, (uint32_t)seed, (uint32_t)(seed >> 32));
    return an_cl_launch_1d(&l, count);
}

static alexnet_status an_cl_dropout(an_backend_context *context, size_t count, float rate, uint64_t seed,
                                    const an_buffer *in, an_buffer *out)
{
    return an_cl_dropout_launch(context, count, rate, seed, in, out);
}

static alexnet_status an_cl_softmax(an_backend_context *context, const an_softmax_desc *d, const an_buffer *in,
                                    an_buffer *out)
{
    an_cl_launch l;
    an_cl_launch_begin(&l, context, AN_K_SOFTMAX_FORWARD);
    AN_CL_ARGS_MEM(&l, in->mem, out->mem);
    an_cl_arg_u32(&l, d->classes);
    return an_cl_launch_rows(&l, d->batch);
}

static alexnet_status an_cl_sync(an_backend_context *context)
{
    cl_int error = an_cl.api.Finish(context->queue);
    if (error != CL_SUCCESS)
        return an_cl_fail(error, "sync (clFinish)");
    if (context->status_pending) {
        /* A kernel that validates its input (softmax cross-entropy's labels) ran: read and clear its flag. */
        cl_int flag = 0, zero = 0;
        context->status_pending = 0;
        error = an_cl.api.EnqueueReadBuffer(context->queue, context->status_flag, CL_TRUE, 0, sizeof flag, &flag, 0,
                                            NULL, NULL);
        if (error == CL_SUCCESS && flag != 0)
            error = an_cl.api.EnqueueWriteBuffer(context->queue, context->status_flag, CL_TRUE, 0, sizeof zero, &zero,
                                                 0, NULL, NULL);
        if (error != CL_SUCCESS)
            return an_cl_fail(error, "sync (status flag)");
        if (flag != 0)
            return an_error(ALEXNET_E_INVALID_ARGUMENT,
                            "opencl: softmax_cross_entropy: a label is not a class index in [0, classes)");
    }
    return ALEXNET_OK;
}

/* ---- the table and the entry point ---- */

/* Not const: the probe refines the score (a GPU device outranks the CPU backends; an OpenCL CPU device
 * such as PoCL must not, or "auto" would prefer it over the native CPU code). */
static an_backend an_opencl_backend = {
    .api_version = AN_BACKEND_API_VERSION,
    .name = "opencl",
    .kind = "gpu",
    .score = 5,
    .probe = an_cl_probe,
    .describe = an_cl_describe,
    .device_count = an_cl_device_count,
    .device_info = an_cl_device_info,
    .context_create = an_cl_context_create,
    .context_destroy = an_cl_context_destroy,
    .buffer_create = an_cl_buffer_create,
    .buffer_destroy = an_cl_buffer_destroy,
    .upload = an_cl_upload,
    .download = an_cl_download,
    .weights_create = an_cl_weights_create,
    .prepare = an_cl_prepare,
    .conv2d = an_cl_conv2d,
    .max_pool2d = an_cl_max_pool2d,
    .adaptive_avg_pool2d = an_cl_adaptive_avg_pool2d,
    .lrn = an_cl_lrn,
    .fully_connected = an_cl_fully_connected,
    .relu = an_cl_relu,
    .dropout = an_cl_dropout,
    .softmax = an_cl_softmax,
    .sync = an_cl_sync,
    .weights_bind = an_cl_weights_bind,
    .weights_refresh = an_cl_weights_refresh,
};

/* The probe's score: set once the devices are known, before any caller compares scores. */
static void an_cl_score(void)
{
    const an_cl_state *s = an_cl_probe_state();
    an_opencl_backend.score = s->has_gpu ? 200 : 5;
}

static int an_cl_probe_scored(const char **why)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, an_cl_score);
    return an_cl_probe(why);
}

const an_backend *alexnet_plugin_entry(const an_plugin_host *host, const char **why)
{
    if (!an_plugin_host_accept(host, why))
        return NULL;
    an_opencl_backend.probe = an_cl_probe_scored;
    an_cl_train_install(&an_opencl_backend);
    return &an_opencl_backend;
}
