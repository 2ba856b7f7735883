/* Inference: the plan's steps as calls on the backend. Allocates nothing. */
#include "net/runtime.h"
#include "util/error.h"

static alexnet_status an_run_step(alexnet_context *context, const an_step *planned, size_t batch)
{
    const an_backend *b = context->backend;
    an_backend_context *bc = context->backend_context;
    const an_buffer *in = context->plan.slots[planned->in_slot];
    an_buffer *out = context->plan.slots[planned->out_slot];
    const an_buffer *weight = planned->weight_tensor >= 0 ? context->weights[planned->weight_tensor] : NULL;
    const an_buffer *bias = planned->weight_tensor >= 0 ? context->weights[planned->weight_tensor + 1] : NULL;
    /* Descriptors were planned for the maximum batch; this run may use fewer images. */
    an_step step = *planned;
    uint32_t n = (uint32_t)batch;
    step.conv.batch = step.pool.batch = step.lrn.batch = step.fc.batch = n;
    switch (step.type) {
    case ALEXNET_LAYER_CONV: return b->conv2d(bc, &step.conv, in, weight, bias, out);
    case ALEXNET_LAYER_MAX_POOL: return b->max_pool2d(bc, &step.pool, in, out);
    case ALEXNET_LAYER_ADAPTIVE_AVG_POOL: return b->adaptive_avg_pool2d(bc, &step.pool, in, out);
    case ALEXNET_LAYER_LRN: return b->lrn(bc, &step.lrn, in, out);
    case ALEXNET_LAYER_FC: return b->fully_connected(bc, &step.fc, in, weight, bias, out);
    case ALEXNET_LAYER_SOFTMAX: return b->softmax(bc, n, (uint32_t)step.out_elements, in, out);
    default: return an_error(ALEXNET_E_STATE, "internal: layer type %d has no inference step", (int)step.type);
    }
}

alexnet_status an_forward(alexnet_context *context, const float *input, size_t batch, float *out_logits,
                          float *out_probabilities)
{
    const an_backend *b = context->backend;
    an_plan *plan = &context->plan;
    size_t input_count = (size_t)plan->layers.layers[0].info.channels * plan->height * plan->width * batch;
    context->last_batch = 0;
    alexnet_status status = b->upload(context->backend_context, plan->slots[AN_SLOT_INPUT], input, input_count);
    for (size_t i = 0; status == ALEXNET_OK && i < plan->step_count; i++)
        status = an_run_step(context, &plan->steps[i], batch);
    if (status == ALEXNET_OK)
        status = b->sync(context->backend_context);
    size_t classes = context->model->config.num_classes;
    if (status == ALEXNET_OK && out_logits != NULL)
        status = b->download(context->backend_context, plan->slots[plan->logits_slot], out_logits, classes * batch);
    if (status == ALEXNET_OK && out_probabilities != NULL)
        status = b->download(context->backend_context, plan->slots[plan->prob_slot], out_probabilities,
                             classes * batch);
    if (status != ALEXNET_OK)
        return an_error_prefix(status, context->backend->name);
    context->last_batch = batch;
    return ALEXNET_OK;
}
