/* Loading checks every tensor against the architecture before a single weight is trusted: names, shapes,
 * dtypes, and finiteness (a NaN or infinity in a weight would silently poison every output, so such a
 * file is rejected as malformed). */
#include "net/weights_io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

#define AN_CHECK(expr)                                                                                         \
    do {                                                                                                       \
        alexnet_status an_check_status_ = (expr);                                                              \
        if (an_check_status_ != ALEXNET_OK)                                                                    \
            return an_check_status_;                                                                           \
    } while (0)

static void an_format_shape(char *out, size_t size, uint32_t rank, const uint64_t *shape)
{
    size_t used = (size_t)snprintf(out, size, "[");
    for (uint32_t i = 0; i < rank && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%llu", i ? "," : "", (unsigned long long)shape[i]);
    if (used < size)
        snprintf(out + used, size - used, "]");
}

/* The class count comes from the options, else from the file's classifier bias (so a fine-tuned
 * 10-class file loads without ceremony); metadata, when present, must agree with the tensors. */
static alexnet_status an_resolve_class_count(const an_safetensors *file, const alexnet_model_options *options,
                                             alexnet_config *config)
{
    const char *meta = an_safetensors_metadata(file, "num_classes");
    if (options != NULL && options->num_classes != 0)
        return ALEXNET_OK;
    an_layer_table layers;
    an_param_table params;
    AN_CHECK(an_config_layers(config, 0, 0, &layers));
    AN_CHECK(an_param_table_build(config, &layers, &params));
    const an_param_tensor *last_bias = &params.tensors[params.count - 1];
    const an_safetensors_tensor *found = an_safetensors_find(file, last_bias->name);
    if (found != NULL && found->rank == 1 && found->shape[0] >= 1 && found->shape[0] <= AN_MAX_FEATURES)
        config->num_classes = (uint32_t)found->shape[0];
    if (meta != NULL) {
        char *end = NULL;
        unsigned long long value = strtoull(meta, &end, 10);
        if (end == meta || *end != '\0' || value != config->num_classes)
            return an_error(ALEXNET_E_FORMAT, "metadata num_classes \"%s\" disagrees with %s (%u classes)", meta,
                            last_bias->name, config->num_classes);
    }
    an_layer_table check;
    return an_config_validate_full(config, &check);
}

static alexnet_status an_check_finite(const float *data, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++) {
        if (!isfinite(data[i]))
            return an_error(ALEXNET_E_FORMAT, "%s: element %zu is %s; weights must be finite", name, i,
                            isnan(data[i]) ? "NaN" : "infinite");
    }
    return ALEXNET_OK;
}

static alexnet_status an_load_tensor(alexnet_model *model, const an_safetensors *file, const an_param_tensor *t,
                                     const char *file_variant)
{
    const an_safetensors_tensor *found = an_safetensors_find(file, t->name);
    if (found == NULL) {
        if (file_variant != NULL)
            return an_error(ALEXNET_E_SHAPE, "missing tensor %s (the file was saved from variant \"%s\", the model "
                            "is \"%s\")", t->name, file_variant, an_variant_name(model->config.variant));
        return an_error(ALEXNET_E_SHAPE, "missing tensor %s", t->name);
    }
    int same_shape = found->rank == t->rank;
    for (uint32_t i = 0; same_shape && i < t->rank; i++)
        same_shape = found->shape[i] == t->shape[i];
    if (!same_shape) {
        char have[96], want[96];
        an_format_shape(have, sizeof have, found->rank, found->shape);
        an_format_shape(want, sizeof want, t->rank, t->shape);
        return an_error(ALEXNET_E_SHAPE, "%s: file has %s, model expects %s", t->name, have, want);
    }
    float *data = an_model_tensor_data(model, t);
    AN_CHECK(an_safetensors_read_f32(file, found, data, t->element_count));
    return an_check_finite(data, t->element_count, t->name);
}

static alexnet_status an_load_all(alexnet_model *model, const an_safetensors *file)
{
    const char *file_variant = an_safetensors_metadata(file, "variant");
    for (size_t i = 0; i < model->params.count; i++)
        AN_CHECK(an_load_tensor(model, file, &model->params.tensors[i], file_variant));
    /* Every model tensor was found and names are unique, so any surplus is a tensor the model lacks. */
    if (file->tensor_count != model->params.count) {
        for (size_t i = 0; i < file->tensor_count; i++) {
            if (an_param_find(&model->params, file->tensors[i].name) == NULL)
                return an_error(ALEXNET_E_SHAPE, "unexpected tensor %s: the model has no such parameter",
                                file->tensors[i].name);
        }
    }
    return ALEXNET_OK;
}

alexnet_status an_model_load_source(const an_byte_source *source, const alexnet_model_options *options,
                                    alexnet_model **out_model)
{
    alexnet_allocator allocator;
    alexnet_config config;
    AN_CHECK(an_model_options_resolve(options, &allocator, &config));
    an_safetensors file;
    memset(&file, 0, sizeof file);
    AN_CHECK(an_safetensors_open(&file, source, &allocator));
    alexnet_model *model = NULL;
    alexnet_status status = an_resolve_class_count(&file, options, &config);
    if (status == ALEXNET_OK)
        status = an_model_allocate(&config, &allocator, &model);
    if (status == ALEXNET_OK) {
        /* Padding between tensors stays zero, as after seeded creation. */
        memset(model->block, 0, model->params.total_floats * sizeof(float));
        status = an_load_all(model, &file);
    }
    an_safetensors_close(&file);
    if (status != ALEXNET_OK) {
        an_model_free(model);
        return status;
    }
    *out_model = model;
    return ALEXNET_OK;
}

/* Tensors and metadata in the writer's terms; the metadata strings live in `text`. */
typedef struct an_save_view {
    an_safetensors_write_tensor tensors[AN_MAX_TENSORS];
    an_safetensors_metadata_entry metadata[3];
    char classes[16];
} an_save_view;

static void an_save_view_build(const alexnet_model *model, an_save_view *view)
{
    for (size_t i = 0; i < model->params.count; i++) {
        const an_param_tensor *t = &model->params.tensors[i];
        an_safetensors_write_tensor *w = &view->tensors[i];
        memset(w, 0, sizeof *w);
        w->name = t->name;
        w->rank = t->rank;
        for (uint32_t d = 0; d < t->rank; d++)
            w->shape[d] = t->shape[d];
        w->data = an_model_tensor_data(model, t);
    }
    snprintf(view->classes, sizeof view->classes, "%u", model->config.num_classes);
    /* The writer only reads metadata strings; the casts drop const for its struct's sake. */
    view->metadata[0] = (an_safetensors_metadata_entry){(char *)"format", (char *)"libalexnet"};
    view->metadata[1] = (an_safetensors_metadata_entry){(char *)"variant",
                                                        (char *)an_variant_name(model->config.variant)};
    view->metadata[2] = (an_safetensors_metadata_entry){(char *)"num_classes", view->classes};
}

alexnet_status an_model_save_file(const alexnet_model *model, const char *path)
{
    an_save_view view;
    an_save_view_build(model, &view);
    return an_safetensors_write_file(path, view.tensors, model->params.count, view.metadata, 3, &model->allocator);
}

alexnet_status an_model_save_buffer(const alexnet_model *model, void *buffer, size_t capacity, size_t *out_size)
{
    an_save_view view;
    an_save_view_build(model, &view);
    if (buffer == NULL)
        return an_safetensors_serialized_size(view.tensors, model->params.count, view.metadata, 3,
                                              &model->allocator, out_size);
    return an_safetensors_write_memory(view.tensors, model->params.count, view.metadata, 3, &model->allocator,
                                       buffer, capacity, out_size);
}
