/* Public entry points for configurations: validate arguments, then call lib/net/config. */
#include <string.h>

#include "net/config.h"
#include "util/error.h"

alexnet_status alexnet_config_validate(const alexnet_config *config)
{
    an_error_clear();
    if (config == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_config_validate: config is NULL");
    an_layer_table table;
    return an_config_validate_full(config, &table);
}

alexnet_status alexnet_config_parameter_count(const alexnet_config *config, uint64_t *out_count)
{
    an_error_clear();
    if (config == NULL || out_count == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_config_parameter_count: NULL argument");
    an_layer_table table;
    alexnet_status status = an_config_validate_full(config, &table);
    if (status == ALEXNET_OK)
        *out_count = table.parameter_count;
    return status;
}

alexnet_status alexnet_config_min_input_size(const alexnet_config *config, uint32_t *out_size)
{
    an_error_clear();
    if (config == NULL || out_size == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_config_min_input_size: NULL argument");
    an_layer_table table;
    alexnet_status status = an_config_validate_full(config, &table);
    if (status != ALEXNET_OK)
        return status;
    return an_config_min_input(config, out_size);
}

alexnet_status alexnet_config_summary(const alexnet_config *config, uint32_t height, uint32_t width,
                                      alexnet_layer_info *rows, size_t capacity, size_t *out_count)
{
    an_error_clear();
    if (config == NULL || out_count == NULL || (rows == NULL && capacity != 0))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_config_summary: NULL argument");
    an_layer_table table;
    alexnet_status status = an_config_validate_full(config, &table);
    if (status != ALEXNET_OK)
        return status;
    if ((height == 0) != (width == 0))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_config_summary: height and width must both be 0 or set");
    status = an_config_layers(config, height, width, &table);
    if (status != ALEXNET_OK)
        return status;
    for (size_t i = 0; i < table.count && i < capacity; i++)
        rows[i] = table.layers[i].info;
    *out_count = table.count;
    return ALEXNET_OK;
}
