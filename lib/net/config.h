/* The network as data: presets, validation, and the layer table (shapes and parameter counts) that the
 * summary, the parameter table and the execution plan are all derived from. */
#ifndef AN_NET_CONFIG_H
#define AN_NET_CONFIG_H

#include "alexnet/alexnet.h"

/* input + per conv (conv, norm, pool) + avgpool + per hidden FC (drop, fc) + last fc + prob */
#define AN_MAX_LAYERS (1 + 3 * ALEXNET_MAX_CONV_LAYERS + 1 + 2 * ALEXNET_MAX_HIDDEN_FC_LAYERS + 2)
#define AN_MAX_INPUT_SIZE 8192
#define AN_MAX_CHANNELS 65536
#define AN_MAX_FEATURES (1u << 20)

typedef struct an_layer {
    alexnet_layer_info info; /* the public row: name, type, hyper-parameters, output shape, parameters */
    uint32_t in_channels, in_height, in_width;
    /* CONV: index into config->conv; FC: 0-based FC index (hidden ones first, the classifier last) */
    uint32_t stage;
} an_layer;

typedef struct an_layer_table {
    an_layer layers[AN_MAX_LAYERS];
    size_t count;
    uint64_t parameter_count;
} an_layer_table;

const char *an_variant_name(alexnet_variant variant); /* "one-tower", ...; NULL if out of range */
/* Parse a variant name (also accepts "paper" and "one_tower"); returns 0 if unknown. */
int an_variant_from_name(const char *name, alexnet_variant *out);

/* Field checks only (no input-size dependent shapes); message names the first bad field. */
alexnet_status an_config_check(const alexnet_config *config);
/* Build the layer table for an input of height x width (0, 0 = configured). ALEXNET_E_SHAPE if a layer's
 * output would be empty or the size is not accepted. Assumes an_config_check passed. */
alexnet_status an_config_layers(const alexnet_config *config, uint32_t height, uint32_t width,
                                an_layer_table *table);
/* Check + layers at the configured size: what "valid" means for a configuration. */
alexnet_status an_config_validate_full(const alexnet_config *config, an_layer_table *table);
/* The smallest square input accepted. */
alexnet_status an_config_min_input(const alexnet_config *config, uint32_t *out_size);
/* Index of the layer named `name` in table, or -1. */
int an_layer_find(const an_layer_table *table, const char *name);

/* Options/info structs start with struct_size. Accept a caller's struct when struct_size is at least
 * min_size and any bytes beyond what this library knows (known_size) are zero, so an older library
 * still serves a program built against a newer header as long as it uses no new field. */
alexnet_status an_struct_size_check(const void *object, size_t known_size, size_t min_size, const char *what);

#endif
