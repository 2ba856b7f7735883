/* The model: an immutable configuration plus its parameter tensors in one aligned block. */
#ifndef AN_NET_MODEL_H
#define AN_NET_MODEL_H

#include "alexnet/alexnet.h"
#include "net/config.h"

#define AN_MAX_TENSORS (2 * (ALEXNET_MAX_CONV_LAYERS + ALEXNET_MAX_HIDDEN_FC_LAYERS + 1))

typedef struct an_param_tensor {
    char name[32];
    uint32_t rank;
    uint64_t shape[4];
    size_t element_count;
    size_t offset;      /* in floats from the start of the parameter block; 64-byte aligned */
    uint32_t layer;     /* index into the layer table */
    int is_bias;
} an_param_tensor;

typedef struct an_param_table {
    an_param_tensor tensors[AN_MAX_TENSORS];
    size_t count;
    size_t total_floats; /* size of the block, alignment padding included */
} an_param_table;

struct alexnet_model {
    alexnet_allocator allocator;
    alexnet_config config;
    an_layer_table layers;   /* at the configured input size */
    an_param_table params;
    float *block;            /* params.total_floats floats */
};

/* Names, shapes and offsets of every parameter tensor, in file order. Torchvision's variant uses its
 * state_dict names (features.0.weight, ..., classifier.6.bias); every other variant uses conv1.weight,
 * conv1.bias, ..., fc8.bias (numbered like the layer table). */
alexnet_status an_param_table_build(const alexnet_config *config, const an_layer_table *layers,
                                    an_param_table *params);
const an_param_tensor *an_param_find(const an_param_table *params, const char *name);

/* Resolve options (NULL = defaults) into an allocator and a validated configuration. */
alexnet_status an_model_options_resolve(const alexnet_model_options *options, alexnet_allocator *allocator,
                                        alexnet_config *config);
/* Allocate a model for `config` with uninitialised weights. */
alexnet_status an_model_allocate(const alexnet_config *config, const alexnet_allocator *allocator,
                                 alexnet_model **out_model);
void an_model_free(alexnet_model *model);

static inline float *an_model_tensor_data(const alexnet_model *model, const an_param_tensor *tensor)
{
    return model->block + tensor->offset;
}

/* Seeded initialisation (lib/net/init.c). */
alexnet_status an_model_initialize(alexnet_model *model, alexnet_init_scheme scheme, uint64_t seed);

#endif
