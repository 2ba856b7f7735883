/* One training step as calls on the backend: forward keeping every layer's output, softmax cross-entropy,
 * backward from the logits down to the lowest trainable layer, and the SGD update. Allocates nothing. */
#include <math.h>

#include "net/train.h"
#include "util/error.h"

#define AN_CHECK(expr)                                                                                         \
    do {                                                                                                       \
        alexnet_status an_check_status_ = (expr);                                                              \
        if (an_check_status_ != ALEXNET_OK)                                                                    \
            return an_check_status_;                                                                           \
    } while (0)

/* Dropout masks are a pure function of (seed, step, layer), so a resumed run draws the same masks and no
 * generator state has to be saved for them. */
static uint64_t an_dropout_seed(uint64_t seed, uint64_t step, uint32_t layer)
{
    uint64_t z = seed ^ ((step << 8 | layer) * 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Index of layer's weight tensor (its bias follows), or -1. */
static int an_layer_tensor(const alexnet_trainer *t, uint32_t layer)
{
    for (size_t i = 0; i < t->params.count; i += 2) {
        if (t->params.tensors[i].layer == layer)
            return (int)i;
    }
    return -1;
}

static alexnet_status an_forward_layer(alexnet_trainer *t, uint32_t i, size_t batch, int training)
{
    const an_backend *b = t->backend;
    an_backend_context *bc = t->backend_context;
    const an_buffer *in = t->activations[i - 1];
    an_buffer *out = t->activations[i];
    an_op_desc d;
    an_trainer_layer_desc(t, i, batch, &d);
    switch (t->layers.layers[i].info.type) {
    case ALEXNET_LAYER_CONV: return b->conv2d(bc, &d.u.conv, in, t->weights[i], out);
    case ALEXNET_LAYER_LRN: return b->lrn(bc, &d.u.lrn, in, out);
    case ALEXNET_LAYER_MAX_POOL: return b->max_pool2d(bc, &d.u.pool, in, out);
    case ALEXNET_LAYER_ADAPTIVE_AVG_POOL: return b->adaptive_avg_pool2d(bc, &d.u.pool, in, out);
    case ALEXNET_LAYER_FC: return b->fully_connected(bc, &d.u.fc, in, t->weights[i], out);
    case ALEXNET_LAYER_DROPOUT: {
        /* Evaluation runs it with rate 0, which is an exact copy: one code path for both modes. */
        float rate = training ? t->settings.dropout_rate : 0.0f;
        return b->dropout(bc, batch * t->activation_elements[i], rate, an_dropout_seed(t->state.seed, t->state.step, i),
                          in, out);
    }
    default: break;
    }
    return an_error(ALEXNET_E_STATE, "internal: layer %s has no training forward", t->layers.layers[i].info.name);
}

static alexnet_status an_forward_all(alexnet_trainer *t, size_t batch, int training)
{
    AN_CHECK(t->backend->upload(t->backend_context, t->activations[0], t->host_input,
                                batch * t->activation_elements[0]));
    for (uint32_t i = 1; i <= t->last_fc; i++)
        AN_CHECK(an_forward_layer(t, i, batch, training));
    return ALEXNET_OK;
}

alexnet_status an_trainer_infer_host(alexnet_trainer *t, size_t batch)
{
    alexnet_status status = an_forward_all(t, batch, 0);
    if (status == ALEXNET_OK)
        status = t->backend->sync(t->backend_context);
    if (status == ALEXNET_OK)
        status = t->backend->download(t->backend_context, t->activations[t->last_fc], t->host_logits,
                                      batch * t->config.num_classes);
    return status == ALEXNET_OK ? ALEXNET_OK : an_error_prefix(status, t->backend->name);
}

/* Conv and FC: ReLU's gradient (from the output), the weight gradients unless frozen, and the input's
 * gradient unless nothing trainable lies below. Returns with *g holding the gradient for the layer below. */
static alexnet_status an_backward_parametric(alexnet_trainer *t, uint32_t i, size_t batch, const an_op_desc *d,
                                             an_buffer **g, an_buffer **spare)
{
    const an_backend *b = t->backend;
    an_backend_context *bc = t->backend_context;
    const an_buffer *in = t->activations[i - 1], *out = t->activations[i];
    const an_train_tensor *w = &t->tensors[an_layer_tensor(t, i)];
    if (t->layers.layers[i].info.relu)
        AN_CHECK(b->relu_backward(bc, batch * t->activation_elements[i], out, *g, *g));
    int conv = d->kind == AN_OP_CONV2D;
    if (!t->frozen[i]) {
        if (conv)
            AN_CHECK(b->conv2d_backward_weights(bc, &d->u.conv, in, *g, w->grad, (w + 1)->grad));
        else
            AN_CHECK(b->fully_connected_backward_weights(bc, &d->u.fc, in, *g, w->grad, (w + 1)->grad));
    }
    if (i == t->lowest_trainable)
        return ALEXNET_OK; /* nothing below needs a gradient */
    if (conv)
        AN_CHECK(b->conv2d_backward_data(bc, &d->u.conv, *g, w->param, *spare));
    else
        AN_CHECK(b->fully_connected_backward_data(bc, &d->u.fc, *g, w->param, *spare));
    an_buffer *swap = *g;
    *g = *spare;
    *spare = swap;
    return ALEXNET_OK;
}

static alexnet_status an_backward_layer(alexnet_trainer *t, uint32_t i, size_t batch, an_buffer **g,
                                        an_buffer **spare)
{
    const an_backend *b = t->backend;
    an_backend_context *bc = t->backend_context;
    const an_buffer *in = t->activations[i - 1], *out = t->activations[i];
    an_op_desc d;
    an_trainer_layer_desc(t, i, batch, &d);
    alexnet_status status = ALEXNET_OK;
    switch (t->layers.layers[i].info.type) {
    case ALEXNET_LAYER_CONV:
    case ALEXNET_LAYER_FC: return an_backward_parametric(t, i, batch, &d, g, spare);
    case ALEXNET_LAYER_DROPOUT:
        return b->dropout_backward(bc, batch * t->activation_elements[i], t->settings.dropout_rate,
                                   an_dropout_seed(t->state.seed, t->state.step, i), *g, *g);
    case ALEXNET_LAYER_LRN: status = b->lrn_backward(bc, &d.u.lrn, in, out, *g, *spare); break;
    case ALEXNET_LAYER_MAX_POOL: status = b->max_pool2d_backward(bc, &d.u.pool, in, *g, *spare); break;
    case ALEXNET_LAYER_ADAPTIVE_AVG_POOL: status = b->adaptive_avg_pool2d_backward(bc, &d.u.pool, *g, *spare); break;
    default: return an_error(ALEXNET_E_STATE, "internal: layer %s has no backward", t->layers.layers[i].info.name);
    }
    an_buffer *swap = *g;
    *g = *spare;
    *spare = swap;
    return status;
}

static alexnet_status an_update(alexnet_trainer *t)
{
    for (size_t i = 0; i < t->params.count; i++) {
        const an_param_tensor *p = &t->params.tensors[i];
        an_train_tensor *tensor = &t->tensors[i];
        if (t->frozen[p->layer])
            continue;
        an_sgd_desc d = {p->element_count, t->state.learning_rate * tensor->lr_multiplier, t->settings.momentum,
                         t->settings.weight_decay * tensor->decay_multiplier};
        AN_CHECK(t->backend->sgd_update(t->backend_context, &d, tensor->param, tensor->grad, tensor->velocity));
    }
    for (size_t i = 0; i < t->params.count; i += 2) {
        uint32_t layer = t->params.tensors[i].layer;
        if (t->frozen[layer])
            continue;
        an_op_desc d;
        an_trainer_layer_desc(t, layer, 1, &d);
        AN_CHECK(t->backend->weights_refresh(t->backend_context, &d, t->tensors[i].param, t->tensors[i + 1].param,
                                             t->weights[layer]));
    }
    return ALEXNET_OK;
}

/* The loss and top-1 hits of the batch from the downloaded losses and logits (ties to the lower class). */
static void an_batch_metrics(const alexnet_trainer *t, size_t batch, double *loss, size_t *correct)
{
    const uint32_t classes = t->config.num_classes;
    double sum = 0.0;
    size_t hits = 0;
    for (size_t n = 0; n < batch; n++) {
        sum += t->host_losses[n];
        const float *row = t->host_logits + n * classes;
        uint32_t best = 0;
        for (uint32_t c = 1; c < classes; c++)
            best = row[c] > row[best] ? c : best;
        hits += best == (uint32_t)t->host_labels[n];
    }
    *loss = sum / (double)batch;
    *correct = hits;
}

static alexnet_status an_loss(alexnet_trainer *t, size_t batch, double *out_loss, size_t *out_correct)
{
    const an_backend *b = t->backend;
    an_backend_context *bc = t->backend_context;
    an_softmax_desc d = {(uint32_t)batch, t->config.num_classes};
    AN_CHECK(b->softmax_cross_entropy(bc, &d, t->activations[t->last_fc], t->labels, t->gradient[0], t->losses));
    AN_CHECK(b->sync(bc));
    AN_CHECK(b->download(bc, t->losses, t->host_losses, batch));
    AN_CHECK(b->download(bc, t->activations[t->last_fc], t->host_logits, batch * t->config.num_classes));
    an_batch_metrics(t, batch, out_loss, out_correct);
    return ALEXNET_OK;
}

static alexnet_status an_step(alexnet_trainer *t, size_t batch, double *out_loss, size_t *out_correct)
{
    AN_CHECK(t->backend->upload(t->backend_context, t->labels, t->host_labels, batch));
    AN_CHECK(an_forward_all(t, batch, 1));
    double loss;
    size_t correct;
    AN_CHECK(an_loss(t, batch, &loss, &correct));
    /* Refuse before anything changes: a non-finite loss would poison every weight through the update. */
    if (!isfinite(loss))
        return an_error(ALEXNET_E_STATE,
                        "step %llu: the loss is %s (the learning rate %g may be too high); no weight was changed",
                        (unsigned long long)t->state.step, isnan(loss) ? "NaN" : "infinite",
                        (double)t->state.learning_rate);
    an_buffer *g = t->gradient[0], *spare = t->gradient[1];
    for (uint32_t i = t->last_fc; i >= t->lowest_trainable; i--)
        AN_CHECK(an_backward_layer(t, i, batch, &g, &spare));
    AN_CHECK(an_update(t));
    AN_CHECK(t->backend->sync(t->backend_context));
    t->state.step++;
    *out_loss = loss;
    *out_correct = correct;
    return ALEXNET_OK;
}

alexnet_status an_trainer_step_host(alexnet_trainer *t, size_t batch, double *out_loss, size_t *out_correct)
{
    alexnet_status status = an_step(t, batch, out_loss, out_correct);
    if (status != ALEXNET_OK && status != ALEXNET_E_STATE)
        return an_error_prefix(status, t->backend->name);
    return status;
}
