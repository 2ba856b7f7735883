/* The SIMD CPU backend ("cpu-simd"): the an_backend table over the per-ISA kernels.
 *
 * The instruction set is chosen once per process (an_cpu_select_isa: the best one this CPU runs and this
 * build compiled, or ALEXNET_CPU_ISA). Host memory, synchronous ops. Conv weights are repacked once per
 * context into the GEMM microkernel's panels (biases folded in); FC weights are aliased, never copied (they
 * are most of the model's bytes). prepare() sizes the one scratch block the convolutions and the training
 * ops need, and only ever grows it, so the ops allocate nothing. Training (cpu_train.c): weights_bind packs
 * the trainer's parameter buffers into the same handles weights_create makes, weights_refresh re-packs them
 * after an update. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cpu/cpu_backend.h"
#include "cpu/features.h"
#include "util/alloc.h"
#include "util/checked.h"
#include "util/error.h"

/* ---- the instruction set, once per process ---- */

typedef struct an_cpu_selection {
    alexnet_status status;
    const an_cpu_kernels *kernels;
    char why[256];         /* when status is not OK */
    char description[160]; /* describe() */
} an_cpu_selection;

static an_cpu_selection an_selection;
static pthread_once_t an_selection_once = PTHREAD_ONCE_INIT;

static void an_cpu_select_once(void)
{
    /* an_cpu_select_isa reports through the thread's error message; keep the caller's message intact. */
    char saved[512];
    snprintf(saved, sizeof saved, "%s", alexnet_last_error());
    an_cpu_isa isa = AN_ISA_SCALAR;
    an_selection.status = an_cpu_select_isa(&isa);
    if (an_selection.status == ALEXNET_OK) {
        an_selection.kernels = an_cpu_kernels_for(isa);
        if (an_selection.kernels == NULL) {
            an_selection.status = ALEXNET_E_UNSUPPORTED;
            snprintf(an_selection.why, sizeof an_selection.why, "this build has no %s kernels", an_cpu_isa_name(isa));
        } else {
            snprintf(an_selection.description, sizeof an_selection.description, "SIMD CPU backend: %s",
                     an_selection.kernels->description);
        }
    } else {
        snprintf(an_selection.why, sizeof an_selection.why, "%s", alexnet_last_error());
    }
    an_error(ALEXNET_OK, "%s", saved);
}

static const an_cpu_selection *an_cpu_selection_get(void)
{
    pthread_once(&an_selection_once, an_cpu_select_once);
    return &an_selection;
}

static int an_cpu_probe(const char **why)
{
    const an_cpu_selection *selection = an_cpu_selection_get();
    if (selection->status != ALEXNET_OK) {
        *why = selection->why;
        return 0;
    }
    *why = "available";
    return 1;
}

static const char *an_cpu_describe(void)
{
    const an_cpu_selection *selection = an_cpu_selection_get();
    return selection->status == ALEXNET_OK ? selection->description : selection->why;
}

/* ---- contexts ---- */

static void an_cpu_context_destroy(an_backend_context *context)
{
    if (context == NULL)
        return;
    an_threadpool_destroy(context->pool);
    an_free(&context->allocator, context->scratch, context->scratch_floats * sizeof(float));
    alexnet_allocator allocator = context->allocator;
    an_free(&allocator, context, sizeof *context);
}

static alexnet_status an_cpu_context_create(const an_backend_params *params, an_backend_context **out)
{
    const an_cpu_selection *selection = an_cpu_selection_get();
    if (selection->status != ALEXNET_OK)
        return an_error(selection->status, "cpu-simd: %s", selection->why);
    an_backend_context *context = an_alloc(&params->allocator, sizeof *context, "cpu-simd context");
    if (context == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    memset(context, 0, sizeof *context);
    context->allocator = params->allocator;
    context->kernels = selection->kernels;
    alexnet_status status = an_threadpool_create(&params->allocator, params->num_threads, params->parallel_for,
                                                 params->parallel_for_host, &context->pool);
    if (status != ALEXNET_OK) {
        an_free(&params->allocator, context, sizeof *context);
        return status;
    }
    context->slot_count = an_threadpool_concurrency(context->pool);
    *out = context;
    return ALEXNET_OK;
}

/* ---- buffers ---- */

static alexnet_status an_cpu_buffer_new(an_backend_context *context, size_t bytes, an_buffer **out)
{
    an_buffer *buffer = an_alloc(&context->allocator, sizeof *buffer, "buffer");
    if (buffer == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    memset(buffer, 0, sizeof *buffer);
    buffer->data = an_alloc(&context->allocator, bytes, "buffer data");
    if (buffer->data == NULL) {
        an_free(&context->allocator, buffer, sizeof *buffer);
        return ALEXNET_E_OUT_OF_MEMORY;
    }
    buffer->bytes = bytes;
    buffer->owned = 1;
    *out = buffer;
    return ALEXNET_OK;
}

static alexnet_status an_cpu_buffer_create(an_backend_context *context, size_t bytes, an_buffer **out)
{
    return an_cpu_buffer_new(context, bytes, out);
}

static void an_cpu_buffer_destroy(an_backend_context *context, an_buffer *buffer)
{
    if (buffer == NULL)
        return;
    if (buffer->owned)
        an_free(&context->allocator, buffer->data, buffer->bytes);
    an_free(&context->allocator, buffer, sizeof *buffer);
}

static alexnet_status an_cpu_upload(an_backend_context *context, an_buffer *dst, const float *src, size_t count)
{
    (void)context;
    if (count > dst->bytes / sizeof(float))
        return an_error(ALEXNET_E_BACKEND, "cpu-simd: upload of %zu floats into a %zu-byte buffer", count,
                        dst->bytes);
    memcpy(dst->data, src, count * sizeof(float));
    return ALEXNET_OK;
}

static alexnet_status an_cpu_download(an_backend_context *context, const an_buffer *src, float *dst, size_t count)
{
    (void)context;
    if (count > src->bytes / sizeof(float))
        return an_error(ALEXNET_E_BACKEND, "cpu-simd: download of %zu floats from a %zu-byte buffer", count,
                        src->bytes);
    memcpy(dst, src->data, count * sizeof(float));
    return ALEXNET_OK;
}

/* ---- weights ---- */

/* A weights handle that reads the row-major FC weights in place (the model's, or a trainer's parameter
 * buffer): the forward FC kernels take PyTorch's layout as it is. */
static alexnet_status an_cpu_fc_alias(an_backend_context *context, const an_fc_desc *fc, const float *weight,
                                      const float *bias, an_buffer **out)
{
    an_buffer *buffer = an_alloc(&context->allocator, sizeof *buffer, "weights buffer");
    if (buffer == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    memset(buffer, 0, sizeof *buffer);
    buffer->data = (float *)(uintptr_t)weight;
    buffer->bytes = (size_t)fc->out_features * fc->in_features * sizeof(float);
    buffer->bias = bias;
    buffer->kind = AN_OP_FULLY_CONNECTED;
    *out = buffer;
    return ALEXNET_OK;
}

/* Conv weights in the layout the forward path reads: Winograd-transformed panels for 3x3 stride 1 (and 5x5
 * stride 1 where the table has those transforms: an_conv_uses_winograd), GEMM panels otherwise (biases
 * folded in). Writes into `packed` when non-NULL (a refresh), else sizes only. */
static size_t an_cpu_conv_pack(const an_backend_context *context, const an_conv_desc *conv, const float *weight,
                               const float *bias, float *packed)
{
    if (an_conv_uses_winograd(conv, context->kernels)) {
        an_wino_geometry w;
        an_wino_geometry_init(&w, conv, context->kernels, context->slot_count);
        if (packed != NULL)
            an_wino_pack_weights(&w, weight, bias, packed);
        return an_wino_packed_floats(&w);
    }
    an_conv_geometry g;
    an_conv_geometry_init(&g, conv, context->kernels);
    if (packed != NULL)
        an_conv_pack_weights(&g, weight, bias, packed);
    return an_conv_packed_floats(&g);
}

static alexnet_status an_cpu_weights_create(an_backend_context *context, const an_op_desc *desc,
                                            const float *weight, const float *bias, an_buffer **out)
{
    /* The model is immutable and outlives the context: the FC kernels read its [out][in] array in place. */
    if (desc->kind == AN_OP_FULLY_CONNECTED)
        return an_cpu_fc_alias(context, &desc->u.fc, weight, bias, out);
    if (desc->kind != AN_OP_CONV2D)
        return an_error(ALEXNET_E_BACKEND, "cpu-simd: weights for op kind %d", (int)desc->kind);
    const size_t floats = an_cpu_conv_pack(context, &desc->u.conv, NULL, NULL, NULL);
    size_t bytes;
    if (an_mul_overflow_size(floats, sizeof(float), &bytes))
        return an_error(ALEXNET_E_OUT_OF_MEMORY, "cpu-simd: packed conv weights overflow");
    an_buffer *buffer = NULL;
    alexnet_status status = an_cpu_buffer_new(context, bytes, &buffer);
    if (status != ALEXNET_OK)
        return status;
    an_cpu_conv_pack(context, &desc->u.conv, weight, bias, buffer->data);
    buffer->kind = AN_OP_CONV2D;
    buffer->conv = desc->u.conv;
    *out = buffer;
    return ALEXNET_OK;
}

/* Training: the same handles as weights_create over the trainer's parameter buffers. Conv weights are packed
 * into an owned copy (re-packed by weights_refresh after each update); FC handles alias the buffers. */
static alexnet_status an_cpu_weights_bind(an_backend_context *context, const an_op_desc *desc,
                                          const an_buffer *weight, const an_buffer *bias, an_buffer **out)
{
    return an_cpu_weights_create(context, desc, weight->data, bias->data, out);
}

static alexnet_status an_cpu_weights_refresh(an_backend_context *context, const an_op_desc *desc,
                                             const an_buffer *weight, const an_buffer *bias, an_buffer *weights)
{
    if (desc->kind == AN_OP_FULLY_CONNECTED && weights->kind == AN_OP_FULLY_CONNECTED) {
        weights->data = weight->data; /* aliased: it already sees the update */
        weights->bias = bias->data;
        return ALEXNET_OK;
    }
    if (desc->kind != AN_OP_CONV2D || weights->kind != AN_OP_CONV2D ||
        an_cpu_conv_pack(context, &desc->u.conv, NULL, NULL, NULL) * sizeof(float) != weights->bytes)
        return an_error(ALEXNET_E_BACKEND, "cpu-simd: weights_refresh on a handle bound for another op");
    an_cpu_conv_pack(context, &desc->u.conv, weight->data, bias->data, weights->data);
    weights->conv = desc->u.conv;
    return ALEXNET_OK;
}

/* ---- scratch ---- */

static alexnet_status an_cpu_prepare(an_backend_context *context, const an_op_desc *ops, size_t count)
{
    size_t slot_floats = context->slot_floats, slots = context->prepared_slots, fc_floats = 0;
    for (size_t i = 0; i < count; i++) {
        if (ops[i].kind == AN_OP_FULLY_CONNECTED) {
            size_t floats = an_cpu_fc_scratch_floats(context, &ops[i].u.fc);
            fc_floats = floats > fc_floats ? floats : fc_floats;
        }
        if (ops[i].kind != AN_OP_CONV2D)
            continue;
        if (an_conv_uses_winograd(&ops[i].u.conv, context->kernels)) {
            /* one slot: the Winograd passes share it */
            an_wino_geometry w;
            an_wino_geometry_init(&w, &ops[i].u.conv, context->kernels, context->slot_count);
            slot_floats = w.slot_floats > slot_floats ? w.slot_floats : slot_floats;
            slots = slots < 1 ? 1 : slots;
            continue;
        }
        an_conv_geometry g;
        an_conv_geometry_init(&g, &ops[i].u.conv, context->kernels);
        if (g.slot_floats > slot_floats)
            slot_floats = g.slot_floats;
        /* a conv gives each of its tasks a slot only when the batch fills every thread (cpu_conv.c) */
        size_t needed = ops[i].u.conv.batch >= context->slot_count ? context->slot_count : 1;
        if (needed > slots)
            slots = needed;
    }
    size_t col_floats, gemm_floats;
    an_cpu_train_scratch_floats(context, ops, count, &col_floats, &gemm_floats);
    /* only ever grown, like the convolution slots: a plan prepared earlier stays runnable */
    col_floats = col_floats > context->train_col_floats ? col_floats : context->train_col_floats;
    gemm_floats = gemm_floats > context->train_gemm_floats ? gemm_floats : context->train_gemm_floats;
    size_t floats;
    if (an_mul_overflow_size(slot_floats, slots, &floats) || floats > SIZE_MAX / sizeof(float) ||
        col_floats > SIZE_MAX / sizeof(float) - gemm_floats ||
        col_floats + gemm_floats > SIZE_MAX / sizeof(float))
        return an_error(ALEXNET_E_OUT_OF_MEMORY, "cpu-simd: convolution scratch size overflows");
    /* the forward slots, the FC's carried sums and the training buffers share the block: no op of one kind
     * runs inside another */
    if (col_floats + gemm_floats > floats)
        floats = col_floats + gemm_floats;
    if (fc_floats > floats)
        floats = fc_floats;
    if (floats > context->scratch_floats) {
        float *scratch = an_alloc(&context->allocator, floats * sizeof(float), "cpu-simd convolution scratch");
        if (scratch == NULL)
            return ALEXNET_E_OUT_OF_MEMORY; /* the previous scratch, and the plan it serves, stay */
        an_free(&context->allocator, context->scratch, context->scratch_floats * sizeof(float));
        context->scratch = scratch;
        context->scratch_floats = floats;
    }
    context->slot_floats = slot_floats;
    context->prepared_slots = slots;
    context->train_col_floats = col_floats;
    context->train_gemm_floats = gemm_floats;
    return ALEXNET_OK;
}

/* ---- ops ---- */

static alexnet_status an_cpu_conv2d_op(an_backend_context *context, const an_conv_desc *desc, const an_buffer *in,
                                       const an_buffer *weights, an_buffer *out)
{
    const an_conv_desc *w = &weights->conv;
    if (weights->kind != AN_OP_CONV2D || w->in_channels != desc->in_channels ||
        w->out_channels != desc->out_channels || w->kernel_size != desc->kernel_size || w->groups != desc->groups)
        return an_error(ALEXNET_E_BACKEND, "cpu-simd: conv2d weights were packed for another shape");
    if (an_conv_uses_winograd(desc, context->kernels) != an_conv_uses_winograd(w, context->kernels))
        return an_error(ALEXNET_E_BACKEND, "cpu-simd: conv2d weights were packed for another algorithm");
    if (an_conv_uses_winograd(desc, context->kernels))
        return an_cpu_conv2d_winograd(context, desc, in->data, weights->data, out->data);
    return an_cpu_conv2d(context, desc, in->data, weights->data, out->data);
}

static alexnet_status an_cpu_max_pool_op(an_backend_context *context, const an_pool_desc *desc,
                                         const an_buffer *in, an_buffer *out)
{
    an_cpu_max_pool2d(context, desc, in->data, out->data);
    return ALEXNET_OK;
}

static alexnet_status an_cpu_avg_pool_op(an_backend_context *context, const an_pool_desc *desc,
                                         const an_buffer *in, an_buffer *out)
{
    an_cpu_adaptive_avg_pool2d(context, desc, in->data, out->data);
    return ALEXNET_OK;
}

static alexnet_status an_cpu_lrn_op(an_backend_context *context, const an_lrn_desc *desc, const an_buffer *in,
                                    an_buffer *out)
{
    an_cpu_lrn(context, desc, in->data, out->data);
    return ALEXNET_OK;
}

static alexnet_status an_cpu_fc_op(an_backend_context *context, const an_fc_desc *desc, const an_buffer *in,
                                   const an_buffer *weights, an_buffer *out)
{
    if (weights->kind != AN_OP_FULLY_CONNECTED ||
        weights->bytes != (size_t)desc->out_features * desc->in_features * sizeof(float))
        return an_error(ALEXNET_E_BACKEND, "cpu-simd: fully_connected weights belong to another shape");
    an_cpu_fully_connected(context, desc, in->data, weights->data, weights->bias, out->data);
    return ALEXNET_OK;
}

static alexnet_status an_cpu_relu_op(an_backend_context *context, size_t count, const an_buffer *in, an_buffer *out)
{
    an_cpu_relu(context, count, in->data, out->data);
    return ALEXNET_OK;
}

static alexnet_status an_cpu_dropout_op(an_backend_context *context, size_t count, float rate, uint64_t seed,
                                        const an_buffer *in, an_buffer *out)
{
    an_cpu_dropout(context, count, rate, seed, in->data, out->data);
    return ALEXNET_OK;
}

static alexnet_status an_cpu_softmax_op(an_backend_context *context, const an_softmax_desc *desc,
                                        const an_buffer *in, an_buffer *out)
{
    an_cpu_softmax(context, desc, in->data, out->data);
    return ALEXNET_OK;
}

static alexnet_status an_cpu_sync(an_backend_context *context)
{
    (void)context; /* every op has finished when it returns */
    return ALEXNET_OK;
}

/* ---- training ops (cpu_train.c) ---- */

static alexnet_status an_cpu_conv2d_backward_data_op(an_backend_context *context, const an_conv_desc *desc,
                                                     const an_buffer *grad_out, const an_buffer *weight,
                                                     an_buffer *grad_in)
{
    return an_cpu_conv2d_backward_data(context, desc, grad_out->data, weight->data, grad_in->data);
}

static alexnet_status an_cpu_conv2d_backward_weights_op(an_backend_context *context, const an_conv_desc *desc,
                                                        const an_buffer *in, const an_buffer *grad_out,
                                                        an_buffer *grad_weight, an_buffer *grad_bias)
{
    return an_cpu_conv2d_backward_weights(context, desc, in->data, grad_out->data, grad_weight->data,
                                          grad_bias->data);
}

static alexnet_status an_cpu_max_pool_backward_op(an_backend_context *context, const an_pool_desc *desc,
                                                  const an_buffer *in, const an_buffer *grad_out,
                                                  an_buffer *grad_in)
{
    an_cpu_max_pool2d_backward(context, desc, in->data, grad_out->data, grad_in->data);
    return ALEXNET_OK;
}

static alexnet_status an_cpu_avg_pool_backward_op(an_backend_context *context, const an_pool_desc *desc,
                                                  const an_buffer *grad_out, an_buffer *grad_in)
{
    an_cpu_adaptive_avg_pool2d_backward(context, desc, grad_out->data, grad_in->data);
    return ALEXNET_OK;
}

static alexnet_status an_cpu_lrn_backward_op(an_backend_context *context, const an_lrn_desc *desc,
                                             const an_buffer *in, const an_buffer *out, const an_buffer *grad_out,
                                             an_buffer *grad_in)
{
    an_cpu_lrn_backward(context, desc, in->data, out->data, grad_out->data, grad_in->data);
    return ALEXNET_OK;
}

static alexnet_status an_cpu_fc_backward_data_op(an_backend_context *context, const an_fc_desc *desc,
                                                 const an_buffer *grad_out, const an_buffer *weight,
                                                 an_buffer *grad_in)
{
    return an_cpu_fc_backward_data(context, desc, grad_out->data, weight->data, grad_in->data);
}

static alexnet_status an_cpu_fc_backward_weights_op(an_backend_context *context, const an_fc_desc *desc,
                                                    const an_buffer *in, const an_buffer *grad_out,
                                                    an_buffer *grad_weight, an_buffer *grad_bias)
{
    return an_cpu_fc_backward_weights(context, desc, in->data, grad_out->data, grad_weight->data, grad_bias->data);
}

static alexnet_status an_cpu_relu_backward_op(an_backend_context *context, size_t count, const an_buffer *out,
                                              const an_buffer *grad_out, an_buffer *grad_in)
{
    an_cpu_relu_backward(context, count, out->data, grad_out->data, grad_in->data);
    return ALEXNET_OK;
}

static alexnet_status an_cpu_dropout_backward_op(an_backend_context *context, size_t count, float rate,
                                                 uint64_t seed, const an_buffer *grad_out, an_buffer *grad_in)
{
    an_cpu_dropout_backward(context, count, rate, seed, grad_out->data, grad_in->data);
    return ALEXNET_OK;
}

static alexnet_status an_cpu_softmax_cross_entropy_op(an_backend_context *context, const an_softmax_desc *desc,
                                                      const an_buffer *logits, const an_buffer *labels,
                                                      an_buffer *grad_logits, an_buffer *losses)
{
    return an_cpu_softmax_cross_entropy(context, desc, logits->data, labels->data, grad_logits->data, losses->data);
}

static alexnet_status an_cpu_sgd_update_op(an_backend_context *context, const an_sgd_desc *desc, an_buffer *param,
                                           const an_buffer *grad, an_buffer *velocity)
{
    an_cpu_sgd_update(context, desc, param->data, grad->data, velocity->data);
    return ALEXNET_OK;
}

const an_backend an_cpu_simd_backend = {
    .api_version = AN_BACKEND_API_VERSION,
    .name = "cpu-simd",
    .kind = "cpu",
    .score = 100,
    .probe = an_cpu_probe,
    .describe = an_cpu_describe,
    .context_create = an_cpu_context_create,
    .context_destroy = an_cpu_context_destroy,
    .buffer_create = an_cpu_buffer_create,
    .buffer_destroy = an_cpu_buffer_destroy,
    .upload = an_cpu_upload,
    .download = an_cpu_download,
    .weights_create = an_cpu_weights_create,
    .prepare = an_cpu_prepare,
    .conv2d = an_cpu_conv2d_op,
    .max_pool2d = an_cpu_max_pool_op,
    .adaptive_avg_pool2d = an_cpu_avg_pool_op,
    .lrn = an_cpu_lrn_op,
    .fully_connected = an_cpu_fc_op,
    .relu = an_cpu_relu_op,
    .dropout = an_cpu_dropout_op,
    .softmax = an_cpu_softmax_op,
    .sync = an_cpu_sync,
    .weights_bind = an_cpu_weights_bind,
    .weights_refresh = an_cpu_weights_refresh,
    .conv2d_backward_data = an_cpu_conv2d_backward_data_op,
    .conv2d_backward_weights = an_cpu_conv2d_backward_weights_op,
    .max_pool2d_backward = an_cpu_max_pool_backward_op,
    .adaptive_avg_pool2d_backward = an_cpu_avg_pool_backward_op,
    .lrn_backward = an_cpu_lrn_backward_op,
    .fully_connected_backward_data = an_cpu_fc_backward_data_op,
    .fully_connected_backward_weights = an_cpu_fc_backward_weights_op,
    .relu_backward = an_cpu_relu_backward_op,
    .dropout_backward = an_cpu_dropout_backward_op,
    .softmax_cross_entropy = an_cpu_softmax_cross_entropy_op,
    .sgd_update = an_cpu_sgd_update_op,
};
