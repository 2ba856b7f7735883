/* Parameter tensors: naming, shapes and layout in the model's single aligned block. */
#include <stdio.h>
#include <string.h>

#include "net/model.h"
#include "util/alloc.h"
#include "util/checked.h"
#include "util/error.h"

/* 16 floats = 64 bytes: every tensor starts on a cache line (and an AVX-512 vector). */
#define AN_TENSOR_ALIGN_FLOATS 16

typedef struct an_param_builder {
    an_param_table *params;
    size_t offset;
} an_param_builder;

static alexnet_status an_param_add(an_param_builder *b, const char *name, uint32_t layer, int is_bias,
                                   uint32_t rank, const uint64_t *shape)
{
    an_param_tensor *t = &b->params->tensors[b->params->count++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%.31s", name);
    t->rank = rank;
    t->layer = layer;
    t->is_bias = is_bias;
    uint64_t count = 1;
    for (uint32_t i = 0; i < rank; i++) {
        t->shape[i] = shape[i];
        if (an_mul_overflow_u64(count, shape[i], &count))
            return an_error(ALEXNET_E_INVALID_ARGUMENT, "%s: element count overflows", name);
    }
    if (count > SIZE_MAX / sizeof(float) / 2)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "%s: %llu elements do not fit in memory", name,
                        (unsigned long long)count);
    t->element_count = (size_t)count;
    t->offset = b->offset;
    size_t padded = (t->element_count + AN_TENSOR_ALIGN_FLOATS - 1) / AN_TENSOR_ALIGN_FLOATS * AN_TENSOR_ALIGN_FLOATS;
    if (an_add_overflow_size(b->offset, padded, &b->offset))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "parameters: total size overflows");
    return ALEXNET_OK;
}

static alexnet_status an_param_add_pair(an_param_builder *b, const char *prefix, uint32_t layer, uint32_t rank,
                                        const uint64_t *weight_shape)
{
    char name[40];
    snprintf(name, sizeof name, "%s.weight", prefix);
    alexnet_status status = an_param_add(b, name, layer, 0, rank, weight_shape);
    if (status != ALEXNET_OK)
        return status;
    snprintf(name, sizeof name, "%s.bias", prefix);
    uint64_t bias_shape[1] = {weight_shape[0]};
    return an_param_add(b, name, layer, 1, 1, bias_shape);
}

/* torchvision's nn.Sequential indices: features = conv, ReLU, [LRN], [MaxPool] per stage; classifier =
 * Dropout, Linear, ReLU per hidden layer (or Linear, ReLU, Dropout for Caffe's placement), then Linear. */
static void an_torchvision_prefix(const alexnet_config *config, const an_layer *layer, char *out, size_t size)
{
    uint32_t index = 0;
    if (layer->info.type == ALEXNET_LAYER_CONV) {
        for (uint32_t i = 0; i < layer->stage; i++)
            index += 2 + (config->conv[i].lrn != 0) + (config->conv[i].max_pool != 0);
        snprintf(out, size, "features.%u", index);
        return;
    }
    int before = config->dropout_placement == ALEXNET_DROPOUT_BEFORE_HIDDEN_FC;
    int has_dropout_before = before && layer->stage < config->hidden_fc_count; /* the classifier has none */
    index = 3 * layer->stage + (has_dropout_before ? 1 : 0);
    snprintf(out, size, "classifier.%u", index);
}

alexnet_status an_param_table_build(const alexnet_config *config, const an_layer_table *layers,
                                    an_param_table *params)
{
    params->count = 0;
    an_param_builder b = {params, 0};
    for (size_t i = 0; i < layers->count; i++) {
        const an_layer *layer = &layers->layers[i];
        char prefix[24];
        if (config->variant == ALEXNET_VARIANT_TORCHVISION)
            an_torchvision_prefix(config, layer, prefix, sizeof prefix);
        else
            snprintf(prefix, sizeof prefix, "%s", layer->info.name);
        alexnet_status status = ALEXNET_OK;
        if (layer->info.type == ALEXNET_LAYER_CONV) {
            uint64_t k = layer->info.kernel_size;
            uint64_t shape[4] = {layer->info.channels, layer->in_channels / layer->info.groups, k, k};
            status = an_param_add_pair(&b, prefix, (uint32_t)i, 4, shape);
        } else if (layer->info.type == ALEXNET_LAYER_FC) {
            uint64_t in_features = (uint64_t)layer->in_channels * layer->in_height * layer->in_width;
            uint64_t shape[2] = {layer->info.channels, in_features};
            status = an_param_add_pair(&b, prefix, (uint32_t)i, 2, shape);
        }
        if (status != ALEXNET_OK)
            return status;
    }
    params->total_floats = b.offset;
    return ALEXNET_OK;
}

const an_param_tensor *an_param_find(const an_param_table *params, const char *name)
{
    for (size_t i = 0; i < params->count; i++) {
        if (strcmp(params->tensors[i].name, name) == 0)
            return &params->tensors[i];
    }
    return NULL;
}

alexnet_status an_model_options_resolve(const alexnet_model_options *options, alexnet_allocator *allocator,
                                        alexnet_config *config)
{
    alexnet_model_options defaults;
    if (options == NULL) {
        alexnet_model_options_init(&defaults);
        options = &defaults;
    }
    alexnet_status status =
        an_struct_size_check(options, sizeof *options, sizeof *options, "alexnet_model_options");
    if (status != ALEXNET_OK)
        return status;
    status = an_allocator_resolve(&options->allocator, allocator);
    if (status != ALEXNET_OK)
        return status;
    if ((unsigned)options->init > ALEXNET_INIT_KAIMING)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "model options: init scheme %d is unknown", (int)options->init);
    if (options->config != NULL) {
        status = an_struct_size_check(options->config, sizeof *config, sizeof *config, "alexnet_config");
        if (status != ALEXNET_OK)
            return status;
        *config = *options->config;
        config->struct_size = sizeof *config; /* the copy holds exactly what this library knows */
    } else {
        if (options->variant == ALEXNET_VARIANT_CUSTOM)
            return an_error(ALEXNET_E_INVALID_ARGUMENT,
                            "model options: variant CUSTOM needs options.config to point at a configuration");
        status = alexnet_config_preset(options->variant, config);
        if (status != ALEXNET_OK)
            return an_error_prefix(status, "model options");
    }
    if (options->num_classes != 0)
        config->num_classes = options->num_classes;
    an_layer_table table;
    return an_config_validate_full(config, &table);
}

alexnet_status an_model_allocate(const alexnet_config *config, const alexnet_allocator *allocator,
                                 alexnet_model **out_model)
{
    alexnet_model *model = an_calloc(allocator, 1, sizeof *model, "model");
    if (model == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    model->allocator = *allocator;
    model->config = *config;
    alexnet_status status = an_config_layers(config, 0, 0, &model->layers);
    if (status == ALEXNET_OK)
        status = an_param_table_build(config, &model->layers, &model->params);
    if (status == ALEXNET_OK) {
        size_t bytes;
        if (an_mul_overflow_size(model->params.total_floats, sizeof(float), &bytes)) {
            status = an_error(ALEXNET_E_OUT_OF_MEMORY, "model: parameter block size overflows");
        } else {
            model->block = an_alloc(allocator, bytes, "model parameters");
            if (model->block == NULL)
                status = ALEXNET_E_OUT_OF_MEMORY;
        }
    }
    if (status != ALEXNET_OK) {
        an_model_free(model);
        return status;
    }
    *out_model = model;
    return ALEXNET_OK;
}

void an_model_free(alexnet_model *model)
{
    if (model == NULL)
        return;
    alexnet_allocator allocator = model->allocator;
    an_free(&allocator, model->block, model->params.total_floats * sizeof(float));
    an_free(&allocator, model, sizeof *model);
}
