/* Planning: turn the layer table at a given input size into backend steps and buffers. All the
 * allocation of a context's life after creation happens here (reshape), never during inference. */
#include <string.h>

#include "net/runtime.h"
#include "util/alloc.h"
#include "util/checked.h"
#include "util/error.h"

static int an_is_captured(const alexnet_context *context, const char *name)
{
    for (size_t i = 0; i < context->capture_count; i++) {
        if (strcmp(context->capture[i], name) == 0)
            return 1;
    }
    return 0;
}

/* A layer needs a buffer of its own when it is captured, or when the dropout after it is (dropout is the
 * identity at inference, so capturing it means keeping its producer's output). */
static int an_keeps_output(const alexnet_context *context, const an_layer_table *layers, size_t i)
{
    if (an_is_captured(context, layers->layers[i].info.name))
        return 1;
    return i + 1 < layers->count && layers->layers[i + 1].info.type == ALEXNET_LAYER_DROPOUT &&
           an_is_captured(context, layers->layers[i + 1].info.name);
}

static size_t an_layer_elements(const an_layer *layer)
{
    return (size_t)layer->info.channels * layer->info.height * layer->info.width;
}

int an_layer_op_desc(const alexnet_config *c, const an_layer *layer, size_t batch, an_op_desc *out)
{
    uint32_t n = (uint32_t)batch;
    memset(out, 0, sizeof *out);
    switch (layer->info.type) {
    case ALEXNET_LAYER_CONV:
        out->kind = AN_OP_CONV2D;
        out->u.conv = (an_conv_desc){n, layer->in_channels, layer->in_height, layer->in_width, layer->info.channels,
                                     layer->info.height, layer->info.width, layer->info.kernel_size,
                                     layer->info.stride, layer->info.padding, layer->info.groups, 1};
        return 1;
    case ALEXNET_LAYER_MAX_POOL:
    case ALEXNET_LAYER_ADAPTIVE_AVG_POOL:
        out->kind = layer->info.type == ALEXNET_LAYER_MAX_POOL ? AN_OP_MAX_POOL2D : AN_OP_ADAPTIVE_AVG_POOL2D;
        out->u.pool = (an_pool_desc){n, layer->in_channels, layer->in_height, layer->in_width, layer->info.height,
                                     layer->info.width, layer->info.kernel_size, layer->info.stride};
        return 1;
    case ALEXNET_LAYER_LRN: {
        float alpha = c->lrn_alpha_scaling == ALEXNET_LRN_ALPHA_OVER_SIZE ? c->lrn_alpha / (float)c->lrn_size
                                                                          : c->lrn_alpha;
        out->kind = AN_OP_LRN;
        out->u.lrn = (an_lrn_desc){n, layer->in_channels, layer->in_height, layer->in_width, c->lrn_size, alpha,
                                   c->lrn_beta, c->lrn_k};
        return 1;
    }
    case ALEXNET_LAYER_FC:
        out->kind = AN_OP_FULLY_CONNECTED;
        out->u.fc = (an_fc_desc){n, layer->in_channels * layer->in_height * layer->in_width, layer->info.channels,
                                 (int)layer->info.relu};
        return 1;
    case ALEXNET_LAYER_SOFTMAX:
        out->kind = AN_OP_SOFTMAX;
        out->u.softmax = (an_softmax_desc){n, layer->info.channels};
        return 1;
    default:
        return 0;
    }
}

/* 2 x multiply-adds of one image, counted as direct convolution whatever algorithm runs. */
static double an_layer_flops(const an_layer *layer)
{
    double outputs = (double)layer->info.channels * layer->info.height * layer->info.width;
    if (layer->info.type == ALEXNET_LAYER_CONV)
        return 2.0 * outputs * (layer->in_channels / layer->info.groups) * layer->info.kernel_size *
               layer->info.kernel_size;
    if (layer->info.type == ALEXNET_LAYER_FC)
        return 2.0 * outputs * layer->in_channels * layer->in_height * layer->in_width;
    return 0.0;
}

static int an_new_slot(an_plan *plan) { return (int)plan->slot_count++; }

static void an_slot_need(an_plan *plan, int slot, size_t bytes)
{
    if (bytes > plan->slot_bytes[slot])
        plan->slot_bytes[slot] = bytes;
}

/* Assign each layer's output to a slot: dedicated when kept, else the ping-pong buffer its input is not
 * in. The chain is linear, so a ping-pong buffer is free again two layers later. */
static alexnet_status an_plan_layout(alexnet_context *context, an_plan *plan, size_t batch)
{
    const an_layer_table *layers = &plan->layers;
    plan->slot_count = 3;
    an_slot_need(plan, AN_SLOT_INPUT, an_layer_elements(&layers->layers[0]) * batch * sizeof(float));
    plan->layer_slot[0] = AN_SLOT_INPUT;
    int current = AN_SLOT_INPUT;
    for (size_t i = 1; i < layers->count; i++) {
        const an_layer *layer = &layers->layers[i];
        if (layer->info.type == ALEXNET_LAYER_DROPOUT) {
            plan->layer_slot[i] = current;
            continue;
        }
        int out;
        int is_last_fc = layer->info.type == ALEXNET_LAYER_FC && i + 1 < layers->count &&
                         layers->layers[i + 1].info.type == ALEXNET_LAYER_SOFTMAX;
        if (is_last_fc || layer->info.type == ALEXNET_LAYER_SOFTMAX || an_keeps_output(context, layers, i))
            out = an_new_slot(plan);
        else
            out = current == AN_SLOT_PING ? AN_SLOT_PONG : AN_SLOT_PING;
        if (is_last_fc)
            plan->logits_slot = out;
        if (layer->info.type == ALEXNET_LAYER_SOFTMAX)
            plan->prob_slot = out;
        size_t bytes;
        if (an_mul_overflow_size(an_layer_elements(layer), batch, &bytes) ||
            an_mul_overflow_size(bytes, sizeof(float), &bytes))
            return an_error(ALEXNET_E_OUT_OF_MEMORY, "%s: activation size overflows for batch %zu",
                            layer->info.name, batch);
        an_slot_need(plan, out, bytes);

        an_step *step = &plan->steps[plan->step_count++];
        memset(step, 0, sizeof *step);
        step->layer = (uint32_t)i;
        step->in_slot = current;
        step->out_slot = out;
        step->out_elements = an_layer_elements(layer);
        step->flops_per_image = an_layer_flops(layer);
        an_layer_op_desc(&context->model->config, layer, batch, &step->op);
        plan->layer_slot[i] = out;
        current = out;
    }
    /* A ping-pong buffer's content is overwritten two layers on: only kept layers stay readable. */
    for (size_t i = 0; i < layers->count; i++) {
        int slot = plan->layer_slot[i];
        if ((slot == AN_SLOT_PING || slot == AN_SLOT_PONG) && !an_keeps_output(context, layers, i))
            plan->layer_slot[i] = -1;
    }
    return ALEXNET_OK;
}

static alexnet_status an_plan_prepare_backend(alexnet_context *context, const an_plan *plan)
{
    an_op_desc ops[AN_MAX_LAYERS];
    for (size_t i = 0; i < plan->step_count; i++)
        ops[i] = plan->steps[i].op;
    return context->backend->prepare(context->backend_context, ops, plan->step_count);
}

static alexnet_status an_plan_allocate(alexnet_context *context, an_plan *plan)
{
    const an_backend *backend = context->backend;
    alexnet_status prepared = an_plan_prepare_backend(context, plan);
    if (prepared != ALEXNET_OK)
        return prepared;
    for (size_t s = 0; s < plan->slot_count; s++) {
        size_t bytes = plan->slot_bytes[s] == 0 ? sizeof(float) : plan->slot_bytes[s];
        alexnet_status status = backend->buffer_create(context->backend_context, bytes, &plan->slots[s]);
        if (status != ALEXNET_OK)
            return status;
        plan->workspace_bytes += bytes;
    }
    const an_layer *input = &plan->layers.layers[0];
    plan->host_input_count = an_layer_elements(input) * plan->batch;
    plan->host_input = an_alloc(&context->allocator, plan->host_input_count * sizeof(float), "image staging");
    if (plan->host_input == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    plan->host_scores_count = (size_t)context->model->config.num_classes * plan->batch;
    plan->host_scores = an_alloc(&context->allocator, plan->host_scores_count * sizeof(float), "score staging");
    if (plan->host_scores == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    plan->workspace_bytes += (plan->host_input_count + plan->host_scores_count) * sizeof(float);
    return ALEXNET_OK;
}

alexnet_status an_plan_build(alexnet_context *context, size_t batch, uint32_t height, uint32_t width,
                             an_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    plan->logits_slot = plan->prob_slot = -1;
    plan->batch = batch;
    plan->height = height;
    plan->width = width;
    alexnet_status status = an_config_layers(&context->model->config, height, width, &plan->layers);
    if (status == ALEXNET_OK) {
        size_t input_elements;
        if (an_mul_overflow_size(an_layer_elements(&plan->layers.layers[0]), batch, &input_elements) ||
            input_elements > SIZE_MAX / sizeof(float))
            status = an_error(ALEXNET_E_OUT_OF_MEMORY, "batch %zu of %ux%u inputs overflows", batch, height, width);
    }
    if (status == ALEXNET_OK)
        status = an_plan_layout(context, plan, batch);
    if (status == ALEXNET_OK)
        status = an_plan_allocate(context, plan);
    if (status != ALEXNET_OK)
        an_plan_release(context, plan);
    return status;
}

void an_plan_release(alexnet_context *context, an_plan *plan)
{
    for (size_t s = 0; s < plan->slot_count; s++) {
        if (plan->slots[s] != NULL)
            context->backend->buffer_destroy(context->backend_context, plan->slots[s]);
        plan->slots[s] = NULL;
    }
    an_free(&context->allocator, plan->host_input, plan->host_input_count * sizeof(float));
    an_free(&context->allocator, plan->host_scores, plan->host_scores_count * sizeof(float));
    plan->host_input = plan->host_scores = NULL;
    plan->slot_count = 0;
}

int an_plan_find_layer(const an_plan *plan, const char *name) { return an_layer_find(&plan->layers, name); }
