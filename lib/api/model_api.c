/* Public entry points for models: argument checks, then lib/net. */
#include <string.h>

#include "io/safetensors.h"
#include "net/model.h"
#include "net/weights_io.h"
#include "util/error.h"

void alexnet_model_options_init(alexnet_model_options *options)
{
    if (options == NULL)
        return;
    memset(options, 0, sizeof *options);
    options->struct_size = sizeof *options;
    options->variant = ALEXNET_VARIANT_ONE_TOWER;
    options->init = ALEXNET_INIT_DEFAULT;
}

alexnet_status alexnet_model_create(const alexnet_model_options *options, uint64_t seed, alexnet_model **out_model)
{
    an_error_clear();
    if (out_model == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_model_create: out_model is NULL");
    alexnet_allocator allocator;
    alexnet_config config;
    alexnet_status status = an_model_options_resolve(options, &allocator, &config);
    if (status != ALEXNET_OK)
        return status;
    alexnet_model *model = NULL;
    status = an_model_allocate(&config, &allocator, &model);
    if (status != ALEXNET_OK)
        return status;
    an_model_initialize(model, options != NULL ? options->init : ALEXNET_INIT_DEFAULT, seed);
    *out_model = model;
    return ALEXNET_OK;
}

alexnet_status alexnet_model_load(const char *path, const alexnet_model_options *options, alexnet_model **out_model)
{
    an_error_clear();
    if (path == NULL || out_model == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_model_load: path and out_model must not be NULL");
    an_byte_source source;
    alexnet_status status = an_byte_source_open_file(&source, path);
    if (status != ALEXNET_OK)
        return status;
    status = an_model_load_source(&source, options, out_model);
    an_byte_source_close(&source);
    if (status != ALEXNET_OK)
        return an_error_prefix(status, path);
    return ALEXNET_OK;
}

alexnet_status alexnet_model_load_memory(const void *data, size_t size, const alexnet_model_options *options,
                                         alexnet_model **out_model)
{
    an_error_clear();
    if (data == NULL || out_model == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_model_load_memory: data and out_model must not be NULL");
    an_byte_source source;
    an_byte_source_from_memory(&source, data, size);
    alexnet_status status = an_model_load_source(&source, options, out_model);
    an_byte_source_close(&source);
    return status;
}

alexnet_status alexnet_model_save(const alexnet_model *model, const char *path)
{
    an_error_clear();
    if (model == NULL || path == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_model_save: model and path must not be NULL");
    return an_model_save_file(model, path);
}

alexnet_status alexnet_model_save_memory(const alexnet_model *model, void *buffer, size_t capacity, size_t *out_size)
{
    an_error_clear();
    if (model == NULL || out_size == NULL || (buffer == NULL && capacity != 0))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_model_save_memory: NULL argument");
    return an_model_save_buffer(model, buffer, capacity, out_size);
}

void alexnet_model_destroy(alexnet_model *model) { an_model_free(model); }

alexnet_status alexnet_model_get_config(const alexnet_model *model, alexnet_config *out_config)
{
    an_error_clear();
    if (model == NULL || out_config == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_model_get_config: NULL argument");
    *out_config = model->config;
    return ALEXNET_OK;
}

uint64_t alexnet_model_parameter_count(const alexnet_model *model)
{
    return model != NULL ? model->layers.parameter_count : 0;
}

uint32_t alexnet_model_num_classes(const alexnet_model *model) { return model != NULL ? model->config.num_classes : 0; }

size_t alexnet_model_tensor_count(const alexnet_model *model) { return model != NULL ? model->params.count : 0; }

alexnet_status alexnet_model_tensor(const alexnet_model *model, size_t index, alexnet_tensor_info *out_info)
{
    an_error_clear();
    if (model == NULL || out_info == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_model_tensor: NULL argument");
    if (index >= model->params.count)
        return an_error(ALEXNET_E_NOT_FOUND, "alexnet_model_tensor: index %zu is beyond the %zu tensors", index,
                        model->params.count);
    const an_param_tensor *t = &model->params.tensors[index];
    alexnet_tensor_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    memcpy(info.name, t->name, sizeof info.name);
    info.rank = t->rank;
    for (uint32_t i = 0; i < t->rank; i++)
        info.shape[i] = t->shape[i];
    info.element_count = t->element_count;
    info.data = an_model_tensor_data(model, t);
    *out_info = info;
    return ALEXNET_OK;
}
