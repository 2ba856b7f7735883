/* Public entry points for contexts and inference. */
#include <math.h>
#include <string.h>

#include "net/config.h"
#include "net/runtime.h"
#include "util/alloc.h"
#include "util/error.h"

void alexnet_context_options_init(alexnet_context_options *options)
{
    if (options == NULL)
        return;
    memset(options, 0, sizeof *options);
    options->struct_size = sizeof *options;
    options->backend = "auto";
    options->num_threads = 1;
}

static alexnet_status an_context_copy_captures(alexnet_context *context, const char *const *names)
{
    for (size_t i = 0; names != NULL && names[i] != NULL; i++) {
        if (an_layer_find(&context->model->layers, names[i]) < 0)
            return an_error(ALEXNET_E_NOT_FOUND, "capture_layers: the model has no layer \"%s\"", names[i]);
        if (context->capture_count == AN_MAX_LAYERS)
            return an_error(ALEXNET_E_INVALID_ARGUMENT, "capture_layers: more than %d names", AN_MAX_LAYERS);
        memcpy(context->capture[context->capture_count++], names[i], strlen(names[i]) + 1);
    }
    return ALEXNET_OK;
}

/* Conv and FC weights become backend buffers once per context (the backend may repack them). */
static alexnet_status an_context_create_weights(alexnet_context *context)
{
    const alexnet_model *model = context->model;
    for (size_t t = 0; t < model->params.count; t += 2) {
        const an_param_tensor *weight = &model->params.tensors[t]; /* each weight is followed by its bias */
        const an_layer *layer = &model->layers.layers[weight->layer];
        an_op_desc desc;
        an_layer_op_desc(&model->config, layer, 1, &desc);
        alexnet_status status = context->backend->weights_create(
            context->backend_context, &desc, an_model_tensor_data(model, weight),
            an_model_tensor_data(model, weight + 1), &context->layer_weights[weight->layer]);
        if (status != ALEXNET_OK)
            return status;
    }
    return ALEXNET_OK;
}

static alexnet_status an_context_resolve_shape(const alexnet_model *model, const alexnet_context_options *options,
                                               size_t *batch, uint32_t *height, uint32_t *width)
{
    *batch = options->batch == 0 ? 1 : options->batch;
    if ((options->height == 0) != (options->width == 0))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "context options: height and width must both be 0 or set");
    *height = options->height == 0 ? model->config.input_height : options->height;
    *width = options->width == 0 ? model->config.input_width : options->width;
    return ALEXNET_OK;
}

alexnet_status alexnet_context_create(const alexnet_model *model, const alexnet_context_options *options,
                                      alexnet_context **out_context)
{
    an_error_clear();
    if (model == NULL || out_context == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_context_create: model and out_context must not be NULL");
    alexnet_context_options defaults;
    if (options == NULL) {
        alexnet_context_options_init(&defaults);
        options = &defaults;
    }
    alexnet_status status =
        an_struct_size_check(options, sizeof *options, sizeof *options, "alexnet_context_options");
    alexnet_allocator allocator;
    if (status == ALEXNET_OK)
        status = an_allocator_resolve(&options->allocator, &allocator);
    if (status == ALEXNET_OK && options->allocator.alloc == NULL)
        allocator = model->allocator;
    const an_backend *backend = NULL;
    uint32_t device_index = 0;
    if (status == ALEXNET_OK)
        status = an_backend_select_device(options->backend, &backend, &device_index);
    size_t batch = 0;
    uint32_t height = 0, width = 0;
    if (status == ALEXNET_OK)
        status = an_context_resolve_shape(model, options, &batch, &height, &width);
    if (status != ALEXNET_OK)
        return status;

    alexnet_context *context = an_calloc(&allocator, 1, sizeof *context, "context");
    if (context == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    context->allocator = allocator;
    context->model = model;
    context->backend = backend;
    status = an_context_copy_captures(context, options->capture_layers);
    context->profile = options->profile_layers != 0;
    an_backend_params params = {allocator, options->num_threads, options->parallel_for, options->parallel_for_host,
                                device_index};
    if (status == ALEXNET_OK)
        status = backend->context_create(&params, &context->backend_context);
    if (status == ALEXNET_OK)
        status = an_context_create_weights(context);
    if (status == ALEXNET_OK)
        status = an_plan_build(context, batch, height, width, &context->plan);
    if (status != ALEXNET_OK) {
        alexnet_context_destroy(context);
        return status;
    }
    *out_context = context;
    return ALEXNET_OK;
}

void alexnet_context_destroy(alexnet_context *context)
{
    if (context == NULL)
        return;
    an_plan_release(context, &context->plan);
    if (context->backend_context != NULL) {
        for (size_t i = 0; i < AN_MAX_LAYERS; i++) {
            if (context->layer_weights[i] != NULL)
                context->backend->buffer_destroy(context->backend_context, context->layer_weights[i]);
        }
        context->backend->context_destroy(context->backend_context);
    }
    alexnet_allocator allocator = context->allocator;
    an_free(&allocator, context, sizeof *context);
}

/* Upper bound on a batch: keeps size arithmetic far from overflow and catches garbage values early. */
#define AN_MAX_BATCH 65536

alexnet_status alexnet_context_reshape(alexnet_context *context, size_t batch, uint32_t height, uint32_t width)
{
    an_error_clear();
    if (context == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_context_reshape: context is NULL");
    if (batch == 0 || batch > AN_MAX_BATCH)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_context_reshape: batch %zu is outside [1, %d]", batch,
                        AN_MAX_BATCH);
    if ((height == 0) != (width == 0))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_context_reshape: height and width must both be 0 or set");
    if (height == 0) { /* 0 x 0 means the model's configured size, as in the context options */
        height = context->model->config.input_height;
        width = context->model->config.input_width;
    }
    an_plan plan;
    alexnet_status status = an_plan_build(context, batch, height, width, &plan);
    if (status != ALEXNET_OK)
        return status; /* the previous plan stays in force */
    an_plan_release(context, &context->plan);
    context->plan = plan;
    context->last_batch = 0;
    return ALEXNET_OK;
}

alexnet_status alexnet_context_get_shape(const alexnet_context *context, size_t *out_batch, uint32_t *out_height,
                                         uint32_t *out_width)
{
    an_error_clear();
    if (context == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_context_get_shape: context is NULL");
    if (out_batch != NULL)
        *out_batch = context->plan.batch;
    if (out_height != NULL)
        *out_height = context->plan.height;
    if (out_width != NULL)
        *out_width = context->plan.width;
    return ALEXNET_OK;
}

size_t alexnet_context_workspace_bytes(const alexnet_context *context)
{
    return context != NULL ? context->plan.workspace_bytes : 0;
}

const char *alexnet_context_backend_name(const alexnet_context *context)
{
    return context != NULL ? context->backend->name : NULL;
}

static alexnet_status an_check_batch(const alexnet_context *context, size_t batch, const char *function)
{
    if (batch == 0 || batch > context->plan.batch)
        return an_error(ALEXNET_E_SHAPE, "%s: batch %zu is outside [1, %zu] (the reshaped batch)", function, batch,
                        context->plan.batch);
    return ALEXNET_OK;
}

alexnet_status alexnet_infer(alexnet_context *context, const float *input, size_t batch, float *out_logits,
                             float *out_probabilities)
{
    an_error_clear();
    if (context == NULL || input == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_infer: context and input must not be NULL");
    if (out_logits == NULL && out_probabilities == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_infer: out_logits and out_probabilities are both NULL");
    alexnet_status status = an_check_batch(context, batch, "alexnet_infer");
    if (status != ALEXNET_OK)
        return status;
    return an_forward(context, input, batch, out_logits, out_probabilities);
}

static alexnet_status an_find_captured(const alexnet_context *context, const char *layer_name, int *out_layer)
{
    if (context == NULL || layer_name == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "layer output: context and layer_name must not be NULL");
    int layer = an_plan_find_layer(&context->plan, layer_name);
    if (layer < 0)
        return an_error(ALEXNET_E_NOT_FOUND, "the model has no layer \"%s\"", layer_name);
    if (context->plan.layer_slot[layer] < 0)
        return an_error(ALEXNET_E_INVALID_ARGUMENT,
                        "layer \"%s\" was not named in the context's capture_layers, so its buffer is reused",
                        layer_name);
    *out_layer = layer;
    return ALEXNET_OK;
}

alexnet_status alexnet_context_layer_size(const alexnet_context *context, const char *layer_name,
                                          size_t *out_elements_per_image)
{
    an_error_clear();
    if (context == NULL || layer_name == NULL || out_elements_per_image == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_context_layer_size: NULL argument");
    int layer = an_plan_find_layer(&context->plan, layer_name);
    if (layer < 0)
        return an_error(ALEXNET_E_NOT_FOUND, "the model has no layer \"%s\"", layer_name);
    const alexnet_layer_info *info = &context->plan.layers.layers[layer].info;
    *out_elements_per_image = (size_t)info->channels * info->height * info->width;
    return ALEXNET_OK;
}

alexnet_status alexnet_layer_output(const alexnet_context *context, const char *layer_name, float *out, size_t count)
{
    an_error_clear();
    int layer = -1;
    alexnet_status status = an_find_captured(context, layer_name, &layer);
    if (status != ALEXNET_OK)
        return status;
    if (out == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_layer_output: out is NULL");
    if (context->last_batch == 0)
        return an_error(ALEXNET_E_STATE, "alexnet_layer_output: no inference has run since the context was shaped");
    const alexnet_layer_info *info = &context->plan.layers.layers[layer].info;
    size_t needed = (size_t)info->channels * info->height * info->width * context->last_batch;
    if (count < needed)
        return an_error(ALEXNET_E_SHAPE, "alexnet_layer_output: %s needs %zu floats for %zu images, out has %zu",
                        layer_name, needed, context->last_batch, count);
    const an_buffer *buffer = context->plan.slots[context->plan.layer_slot[layer]];
    return context->backend->download(context->backend_context, buffer, out, needed);
}

alexnet_status alexnet_top_k(const float *scores, size_t n, size_t k, alexnet_class_score *out)
{
    an_error_clear();
    if (scores == NULL || out == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_top_k: scores and out must not be NULL");
    if (k == 0 || k > n || n > 0xFFFFFFFFu)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_top_k: k = %zu must be in [1, n = %zu]", k, n);
    /* Insertion into a sorted prefix: O(n k), no allocation; k is small (5) in practice. NaN sorts last. */
    size_t filled = 0;
    for (size_t i = 0; i < n; i++) {
        float s = scores[i];
        if (isnan(s))
            s = -INFINITY;
        if (filled == k && !(s > out[k - 1].score))
            continue;
        size_t pos = filled < k ? filled++ : k - 1;
        while (pos > 0 && s > out[pos - 1].score) {
            out[pos] = out[pos - 1];
            pos--;
        }
        out[pos].class_index = (uint32_t)i;
        out[pos].score = s;
    }
    return ALEXNET_OK;
}

alexnet_status alexnet_context_profile(const alexnet_context *context, alexnet_layer_profile *rows, size_t capacity,
                                       size_t *out_count)
{
    an_error_clear();
    if (context == NULL || out_count == NULL || (rows == NULL && capacity != 0))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_context_profile: NULL argument");
    if (!context->profile)
        return an_error(ALEXNET_E_STATE, "alexnet_context_profile: the context was created without profile_layers");
    if (context->last_batch == 0)
        return an_error(ALEXNET_E_STATE, "alexnet_context_profile: no inference has run since the context was shaped");
    const an_plan *plan = &context->plan;
    for (size_t i = 0; i < plan->step_count && i < capacity; i++) {
        const an_step *step = &plan->steps[i];
        const alexnet_layer_info *info = &plan->layers.layers[step->layer].info;
        alexnet_layer_profile row;
        memset(&row, 0, sizeof row);
        row.struct_size = sizeof row;
        memcpy(row.name, info->name, sizeof row.name);
        row.type = info->type;
        row.seconds = plan->step_seconds[i];
        row.flops = step->flops_per_image * (double)context->last_batch;
        rows[i] = row;
    }
    *out_count = plan->step_count;
    return ALEXNET_OK;
}
