/* Trainer creation: resolve the options, copy the model's weights into the trainer's own parameter buffers
 * (re-initialising the classifier for a new class count), and allocate everything a step needs, so that
 * steps themselves allocate nothing. */
#include "net/train.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "data/augment.h"
#include "net/runtime.h"
#include "util/alloc.h"
#include "util/checked.h"
#include "util/error.h"

#define AN_CHECK(expr)                                                                                         \
    do {                                                                                                       \
        alexnet_status an_check_status_ = (expr);                                                              \
        if (an_check_status_ != ALEXNET_OK)                                                                    \
            return an_check_status_;                                                                           \
    } while (0)

/* Upper bound on a training batch, as for contexts: keeps size arithmetic far from overflow. */
#define AN_MAX_TRAIN_BATCH 65536

/* ---- options ---- */

static int an_finite_in(float value, float low, float high) { return isfinite(value) && value >= low && value <= high; }

static alexnet_status an_train_settings_resolve(const alexnet_trainer_options *o, const alexnet_config *config,
                                                an_train_settings *s)
{
    memset(s, 0, sizeof *s);
    if (o->batch == 0 || o->batch > AN_MAX_TRAIN_BATCH)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "trainer options: batch = %u is outside [1, %d]", o->batch,
                        AN_MAX_TRAIN_BATCH);
    if (!an_finite_in(o->learning_rate, 0.0f, 1e6f) || o->learning_rate == 0.0f)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "trainer options: learning_rate = %g must be finite and > 0",
                        (double)o->learning_rate);
    if (!an_finite_in(o->momentum, 0.0f, 0.999999f))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "trainer options: momentum = %g is outside [0, 1)",
                        (double)o->momentum);
    if (!an_finite_in(o->weight_decay, 0.0f, 1e3f))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "trainer options: weight_decay = %g must be finite and >= 0",
                        (double)o->weight_decay);
    float dropout = o->dropout_rate < 0.0f ? config->dropout_rate : o->dropout_rate;
    if (!an_finite_in(dropout, 0.0f, 0.999f))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "trainer options: dropout_rate = %g is outside [0, 1)",
                        (double)o->dropout_rate);
    if ((unsigned)o->lr_schedule > ALEXNET_LR_PLATEAU)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "trainer options: lr_schedule = %d is unknown",
                        (int)o->lr_schedule);
    if (!an_finite_in(o->lr_gamma, 0.0f, 1.0f) || o->lr_gamma == 0.0f)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "trainer options: lr_gamma = %g is outside (0, 1]",
                        (double)o->lr_gamma);
    if ((o->lr_schedule == ALEXNET_LR_STEP && o->lr_step_epochs == 0) ||
        (o->lr_schedule == ALEXNET_LR_PLATEAU && o->lr_patience == 0))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "trainer options: lr_step_epochs / lr_patience must be >= 1");
    if (!an_finite_in(o->bias_lr_multiplier, 0.0f, 1e6f) || !an_finite_in(o->bias_weight_decay_multiplier, 0.0f, 1e6f))
        return an_error(ALEXNET_E_INVALID_ARGUMENT,
                        "trainer options: bias_lr_multiplier = %g and bias_weight_decay_multiplier = %g must be "
                        "finite and >= 0", (double)o->bias_lr_multiplier, (double)o->bias_weight_decay_multiplier);
    if (o->layer_multiplier_count != 0 && o->layer_multipliers == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "trainer options: layer_multipliers is NULL with a count of %zu",
                        o->layer_multiplier_count);
    if (o->augment != NULL) {
        AN_CHECK(an_augment_options_check(o->augment));
        s->augment = *o->augment;
        s->augment.struct_size = sizeof s->augment; /* the copy holds exactly what this library knows */
    } else {
        alexnet_augment_options_init(&s->augment);
    }
    s->batch = o->batch;
    s->learning_rate = o->learning_rate;
    s->momentum = o->momentum;
    s->weight_decay = o->weight_decay;
    s->dropout_rate = dropout;
    s->schedule = o->lr_schedule;
    s->lr_gamma = o->lr_gamma;
    s->lr_step_epochs = o->lr_step_epochs;
    s->lr_patience = o->lr_patience;
    s->progress = o->progress;
    s->progress_user = o->progress_user;
    return ALEXNET_OK;
}

/* The layer a frozen/multiplier entry names: it must exist and carry parameters. */
static alexnet_status an_parameter_layer(const alexnet_trainer *t, const char *name, const char *what, int *out)
{
    if (name == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "trainer options: a %s entry has a NULL layer name", what);
    int index = an_layer_find(&t->layers, name);
    if (index < 0)
        return an_error(ALEXNET_E_NOT_FOUND, "trainer options: %s: the model has no layer \"%s\"", what, name);
    alexnet_layer_type type = t->layers.layers[index].info.type;
    if (type != ALEXNET_LAYER_CONV && type != ALEXNET_LAYER_FC)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "trainer options: %s: layer \"%s\" has no parameters", what,
                        name);
    *out = index;
    return ALEXNET_OK;
}

static alexnet_status an_resolve_layers(alexnet_trainer *t, const alexnet_trainer_options *o)
{
    float layer_lr[AN_MAX_LAYERS];
    for (size_t i = 0; i < AN_MAX_LAYERS; i++)
        layer_lr[i] = 1.0f;
    for (size_t i = 0; o->frozen_layers != NULL && o->frozen_layers[i] != NULL; i++) {
        int layer = 0;
        AN_CHECK(an_parameter_layer(t, o->frozen_layers[i], "frozen_layers", &layer));
        t->frozen[layer] = 1;
    }
    for (size_t i = 0; i < o->layer_multiplier_count; i++) {
        int layer = 0;
        AN_CHECK(an_parameter_layer(t, o->layer_multipliers[i].layer, "layer_multipliers", &layer));
        if (!an_finite_in(o->layer_multipliers[i].lr_multiplier, 0.0f, 1e6f))
            return an_error(ALEXNET_E_INVALID_ARGUMENT, "trainer options: layer_multipliers: %s has %g",
                            o->layer_multipliers[i].layer, (double)o->layer_multipliers[i].lr_multiplier);
        layer_lr[layer] = o->layer_multipliers[i].lr_multiplier;
    }
    t->lowest_trainable = UINT32_MAX;
    for (size_t i = 0; i < t->params.count; i++) {
        const an_param_tensor *p = &t->params.tensors[i];
        t->tensors[i].lr_multiplier = layer_lr[p->layer] * (p->is_bias ? o->bias_lr_multiplier : 1.0f);
        t->tensors[i].decay_multiplier = p->is_bias ? o->bias_weight_decay_multiplier : 1.0f;
        if (!t->frozen[p->layer] && p->layer < t->lowest_trainable)
            t->lowest_trainable = p->layer;
        t->last_fc = p->layer; /* tensors come in layer order: the last one is the classifier's */
    }
    if (t->lowest_trainable == UINT32_MAX)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "trainer options: every layer is frozen; nothing would train");
    return ALEXNET_OK;
}

/* The backend must implement every training op; say which one is missing. */
alexnet_status an_trainer_check_backend(const an_backend *b)
{
    static const struct { size_t offset; const char *name; } ops[] = {
#define AN_OP(field) {offsetof(an_backend, field), #field}
        AN_OP(weights_bind), AN_OP(weights_refresh), AN_OP(conv2d_backward_data), AN_OP(conv2d_backward_weights),
        AN_OP(max_pool2d_backward), AN_OP(adaptive_avg_pool2d_backward), AN_OP(lrn_backward),
        AN_OP(fully_connected_backward_data), AN_OP(fully_connected_backward_weights), AN_OP(relu_backward),
        AN_OP(dropout_backward), AN_OP(softmax_cross_entropy), AN_OP(sgd_update),
#undef AN_OP
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        void *fn;
        memcpy(&fn, (const char *)b + ops[i].offset, sizeof fn);
        if (fn == NULL)
            return an_error(ALEXNET_E_UNSUPPORTED,
                            "backend \"%s\" cannot train: it does not implement %s "
                            "(use backend \"cpu\" or \"reference\")",
                            b->name, ops[i].name);
    }
    return ALEXNET_OK;
}

/* "auto" (with no ALEXNET_BACKEND) and "cpu" mean the highest-scoring available backend that can train,
 * so a fast inference-only backend never makes training fail; a named backend (or the environment's) is
 * used as asked and refused by name when it cannot train. */
static alexnet_status an_trainer_select_backend(const char *requested, const an_backend **out, uint32_t *device)
{
    int is_auto = requested == NULL || strcmp(requested, "auto") == 0;
    const char *env = getenv("ALEXNET_BACKEND");
    int from_env = is_auto && env != NULL && env[0] != '\0';
    if (!from_env && (is_auto || strcmp(requested, "cpu") == 0)) {
        const an_backend *best = NULL;
        for (size_t i = 0; i < an_backend_registry_count(); i++) {
            const an_backend *candidate = an_backend_registry_get(i);
            const char *why = NULL;
            if (candidate->api_version != AN_BACKEND_API_VERSION || !candidate->probe(&why) ||
                (!is_auto && strcmp(candidate->kind, "cpu") != 0) || an_trainer_check_backend(candidate) != ALEXNET_OK)
                continue;
            if (best == NULL || candidate->score > best->score)
                best = candidate;
        }
        an_error_clear();
        if (best == NULL)
            return an_error(ALEXNET_E_UNSUPPORTED, "no available backend implements training");
        *out = best;
        *device = 0;
        return ALEXNET_OK;
    }
    AN_CHECK(an_backend_select_device(requested, out, device));
    return an_trainer_check_backend(*out);
}

/* ---- buffers ---- */

void an_trainer_layer_desc(const alexnet_trainer *t, uint32_t layer, size_t batch, an_op_desc *out)
{
    an_layer_op_desc(&t->config, &t->layers.layers[layer], batch, out);
}

static alexnet_status an_new_buffer(alexnet_trainer *t, size_t floats, an_buffer **out)
{
    size_t bytes;
    if (an_mul_overflow_size(floats == 0 ? 1 : floats, sizeof(float), &bytes))
        return an_error(ALEXNET_E_OUT_OF_MEMORY, "trainer: a buffer of %zu floats overflows", floats);
    return t->backend->buffer_create(t->backend_context, bytes, out);
}

static size_t an_layer_elements(const an_layer *layer)
{
    return (size_t)layer->info.channels * layer->info.height * layer->info.width;
}

/* Activations of every layer but the softmax (its input, the logits, is what the loss reads), the gradient
 * ping-pong pair sized for the largest of them, labels and per-image losses. */
static alexnet_status an_allocate_activations(alexnet_trainer *t)
{
    const size_t batch = t->settings.batch;
    size_t largest = 0;
    for (uint32_t i = 0; i <= t->last_fc; i++) {
        size_t elements = an_layer_elements(&t->layers.layers[i]), total;
        if (an_mul_overflow_size(elements, batch, &total))
            return an_error(ALEXNET_E_OUT_OF_MEMORY, "trainer: %s x batch %zu overflows",
                            t->layers.layers[i].info.name, batch);
        t->activation_elements[i] = elements;
        largest = total > largest ? total : largest;
        AN_CHECK(an_new_buffer(t, total, &t->activations[i]));
    }
    AN_CHECK(an_new_buffer(t, largest, &t->gradient[0]));
    AN_CHECK(an_new_buffer(t, largest, &t->gradient[1]));
    AN_CHECK(an_new_buffer(t, batch, &t->labels));
    AN_CHECK(an_new_buffer(t, batch, &t->losses));
    size_t classes = t->config.num_classes;
    t->host_input = an_alloc(&t->allocator, t->activation_elements[0] * batch * sizeof(float), "trainer input");
    t->host_logits = an_alloc(&t->allocator, classes * batch * sizeof(float), "trainer logits");
    t->host_labels = an_alloc(&t->allocator, batch * sizeof(float), "trainer labels");
    t->host_losses = an_alloc(&t->allocator, batch * sizeof(float), "trainer losses");
    if (t->host_input == NULL || t->host_logits == NULL || t->host_labels == NULL || t->host_losses == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    return ALEXNET_OK;
}

/* The forward ops at the trainer's batch, so the backend sizes its scratch memory once. */
static alexnet_status an_prepare_backend(alexnet_trainer *t)
{
    an_op_desc ops[AN_MAX_LAYERS];
    size_t count = 0;
    for (uint32_t i = 1; i < t->layers.count; i++) {
        if (an_layer_op_desc(&t->config, &t->layers.layers[i], t->settings.batch, &ops[count]))
            count++;
    }
    return t->backend->prepare(t->backend_context, ops, count);
}

/* ---- weights ---- */

/* A new classifier for a new class count: the variant's own initialisation (PyTorch's uniform for
 * torchvision, else the paper's N(0, 0.01) weights and zero biases), from the trainer's seed. */
static void an_reinit_classifier(const alexnet_trainer *t, size_t tensor, float *data, uint64_t seed)
{
    const an_param_tensor *p = &t->params.tensors[tensor];
    const an_param_tensor *weight = p->is_bias ? p - 1 : p;
    an_rng rng;
    an_rng_seed(&rng, seed, 0xC1A55000u + tensor);
    if (t->config.variant == ALEXNET_VARIANT_TORCHVISION) {
        double bound = 1.0 / sqrt((double)weight->shape[1]);
        an_rng_fill_uniform(&rng, data, p->element_count, -bound, bound);
    } else if (p->is_bias) {
        memset(data, 0, p->element_count * sizeof *data);
    } else {
        an_rng_fill_normal(&rng, data, p->element_count, 0.0, 0.01);
    }
}

/* Parameters from the model (or re-initialised), zero momentum; scratch holds the largest tensor. */
static alexnet_status an_upload_parameters(alexnet_trainer *t, const alexnet_model *model, uint64_t seed,
                                           float *scratch)
{
    int new_classes = t->config.num_classes != model->config.num_classes;
    for (size_t i = 0; i < t->params.count; i++) {
        const an_param_tensor *p = &t->params.tensors[i];
        an_train_tensor *tensor = &t->tensors[i];
        AN_CHECK(an_new_buffer(t, p->element_count, &tensor->param));
        const float *source = an_model_tensor_data(model, &model->params.tensors[i]);
        if (new_classes && p->layer == t->last_fc) {
            an_reinit_classifier(t, i, scratch, seed);
            source = scratch;
        }
        AN_CHECK(t->backend->upload(t->backend_context, tensor->param, source, p->element_count));
        if (t->frozen[p->layer])
            continue;
        AN_CHECK(an_new_buffer(t, p->element_count, &tensor->grad));
        AN_CHECK(an_new_buffer(t, p->element_count, &tensor->velocity));
        memset(scratch, 0, p->element_count * sizeof *scratch);
        AN_CHECK(t->backend->upload(t->backend_context, tensor->velocity, scratch, p->element_count));
    }
    return ALEXNET_OK;
}

static alexnet_status an_bind_weights(alexnet_trainer *t)
{
    for (size_t i = 0; i < t->params.count; i += 2) { /* each weight is followed by its bias */
        uint32_t layer = t->params.tensors[i].layer;
        an_op_desc desc;
        an_trainer_layer_desc(t, layer, 1, &desc);
        AN_CHECK(t->backend->weights_bind(t->backend_context, &desc, t->tensors[i].param, t->tensors[i + 1].param,
                                          &t->weights[layer]));
    }
    return ALEXNET_OK;
}

static alexnet_status an_load_weights(alexnet_trainer *t, const alexnet_model *model, uint64_t seed)
{
    size_t largest = 0;
    for (size_t i = 0; i < t->params.count; i++)
        largest = t->params.tensors[i].element_count > largest ? t->params.tensors[i].element_count : largest;
    float *scratch = an_alloc(&t->allocator, largest * sizeof(float), "trainer staging");
    if (scratch == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    alexnet_status status = an_upload_parameters(t, model, seed, scratch);
    an_free(&t->allocator, scratch, largest * sizeof(float));
    if (status == ALEXNET_OK)
        status = an_bind_weights(t);
    if (status == ALEXNET_OK)
        status = t->backend->sync(t->backend_context);
    return status;
}

/* ---- create / destroy ---- */

static alexnet_status an_trainer_config(const alexnet_model *model, const alexnet_trainer_options *o,
                                        alexnet_config *config)
{
    *config = model->config;
    if (o->num_classes != 0 && o->num_classes != config->num_classes) {
        config->num_classes = o->num_classes;
        /* The classifier changes shape: the architecture is no longer the preset's tensor set. */
        an_layer_table check;
        alexnet_status status = an_config_validate_full(config, &check);
        if (status != ALEXNET_OK)
            return an_error_prefix(status, "trainer options: num_classes");
    }
    return ALEXNET_OK;
}

static alexnet_status an_trainer_build(alexnet_trainer *t, const alexnet_model *model,
                                       const alexnet_trainer_options *o, uint32_t device_index)
{
    AN_CHECK(an_config_layers(&t->config, 0, 0, &t->layers));
    AN_CHECK(an_param_table_build(&t->config, &t->layers, &t->params));
    AN_CHECK(an_resolve_layers(t, o));
    an_backend_params params = {t->allocator, o->num_threads, o->parallel_for, o->parallel_for_host, device_index};
    AN_CHECK(t->backend->context_create(&params, &t->backend_context));
    AN_CHECK(an_prepare_backend(t));
    AN_CHECK(an_load_weights(t, model, o->seed));
    AN_CHECK(an_allocate_activations(t));
    t->state.seed = o->seed;
    t->state.learning_rate = t->settings.learning_rate;
    t->state.plateau_best = INFINITY;
    an_rng_seed(&t->state.augment_rng, o->seed, 0xA06u);
    return ALEXNET_OK;
}

alexnet_status an_trainer_create(const alexnet_model *model, const alexnet_trainer_options *o, alexnet_trainer **out)
{
    alexnet_allocator allocator;
    AN_CHECK(an_allocator_resolve(&o->allocator, &allocator));
    if (o->allocator.alloc == NULL)
        allocator = model->allocator;
    alexnet_config config;
    AN_CHECK(an_trainer_config(model, o, &config));
    an_train_settings settings;
    AN_CHECK(an_train_settings_resolve(o, &config, &settings));
    const an_backend *backend = NULL;
    uint32_t device_index = 0;
    AN_CHECK(an_trainer_select_backend(o->backend, &backend, &device_index));

    alexnet_trainer *t = an_calloc(&allocator, 1, sizeof *t, "trainer");
    if (t == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    t->allocator = allocator;
    t->config = config;
    t->settings = settings;
    t->backend = backend;
    alexnet_status status = an_trainer_build(t, model, o, device_index);
    if (status != ALEXNET_OK) {
        an_trainer_free(t);
        return status;
    }
    *out = t;
    return ALEXNET_OK;
}

static void an_destroy_buffer(alexnet_trainer *t, an_buffer *buffer)
{
    if (buffer != NULL)
        t->backend->buffer_destroy(t->backend_context, buffer);
}

void an_trainer_free(alexnet_trainer *t)
{
    if (t == NULL)
        return;
    if (t->backend_context != NULL) {
        for (size_t i = 0; i < AN_MAX_LAYERS; i++) {
            an_destroy_buffer(t, t->weights[i]);
            an_destroy_buffer(t, t->activations[i]);
        }
        for (size_t i = 0; i < AN_MAX_TENSORS; i++) {
            an_destroy_buffer(t, t->tensors[i].param);
            an_destroy_buffer(t, t->tensors[i].grad);
            an_destroy_buffer(t, t->tensors[i].velocity);
        }
        an_destroy_buffer(t, t->gradient[0]);
        an_destroy_buffer(t, t->gradient[1]);
        an_destroy_buffer(t, t->labels);
        an_destroy_buffer(t, t->losses);
        t->backend->context_destroy(t->backend_context);
    }
    const size_t batch = t->settings.batch;
    an_free(&t->allocator, t->host_input, t->activation_elements[0] * batch * sizeof(float));
    an_free(&t->allocator, t->host_logits, (size_t)t->config.num_classes * batch * sizeof(float));
    an_free(&t->allocator, t->host_labels, batch * sizeof(float));
    an_free(&t->allocator, t->host_losses, batch * sizeof(float));
    alexnet_allocator allocator = t->allocator;
    an_free(&allocator, t, sizeof *t);
}
