/* Inference: the plan's steps as calls on the backend. Allocates nothing. */
#include <time.h>

#include "net/runtime.h"
#include "util/error.h"

static alexnet_status an_run_step(alexnet_context *context, const an_step *step, size_t batch)
{
    const an_backend *b = context->backend;
    an_backend_context *bc = context->backend_context;
    const an_buffer *in = context->plan.slots[step->in_slot];
    an_buffer *out = context->plan.slots[step->out_slot];
    const an_buffer *weights = context->layer_weights[step->layer];
    /* Descriptors were planned for the maximum batch; this run may use fewer images. */
    an_op_desc op = step->op;
    uint32_t n = (uint32_t)batch;
    switch (op.kind) {
    case AN_OP_CONV2D: op.u.conv.batch = n; return b->conv2d(bc, &op.u.conv, in, weights, out);
    case AN_OP_MAX_POOL2D: op.u.pool.batch = n; return b->max_pool2d(bc, &op.u.pool, in, out);
    case AN_OP_ADAPTIVE_AVG_POOL2D: op.u.pool.batch = n; return b->adaptive_avg_pool2d(bc, &op.u.pool, in, out);
    case AN_OP_LRN: op.u.lrn.batch = n; return b->lrn(bc, &op.u.lrn, in, out);
    case AN_OP_FULLY_CONNECTED: op.u.fc.batch = n; return b->fully_connected(bc, &op.u.fc, in, weights, out);
    case AN_OP_SOFTMAX: op.u.softmax.batch = n; return b->softmax(bc, &op.u.softmax, in, out);
    }
    return an_error(ALEXNET_E_STATE, "internal: op kind %d has no inference step", (int)op.kind);
}

static double an_now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* With profiling on, each step is synchronised so its time is its own (a device backend runs ahead). */
static alexnet_status an_run_step_profiled(alexnet_context *context, size_t index, size_t batch)
{
    double start = an_now_seconds();
    alexnet_status status = an_run_step(context, &context->plan.steps[index], batch);
    if (status == ALEXNET_OK)
        status = context->backend->sync(context->backend_context);
    context->plan.step_seconds[index] = an_now_seconds() - start;
    return status;
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
        status = context->profile ? an_run_step_profiled(context, i, batch)
                                  : an_run_step(context, &plan->steps[i], batch);
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
