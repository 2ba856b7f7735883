/* Prints the C compiler's layout of every public struct that test_ctypes.py mirrors, one line per field:
 *   <struct> <field> <offset> <size>      and      <struct> sizeof <size> <alignment>
 * test_ctypes.py compares its ctypes declarations with these numbers. */
#include <alexnet/alexnet.h>

#include <stddef.h>
#include <stdio.h>

#define FIELD(T, f) printf("%s %s %zu %zu\n", #T, #f, offsetof(T, f), sizeof(((T *)0)->f))
#define SIZE(T) printf("%s sizeof %zu %zu\n", #T, sizeof(T), _Alignof(T))

int main(void) {
    SIZE(alexnet_allocator);
    FIELD(alexnet_allocator, alloc);
    FIELD(alexnet_allocator, free);
    FIELD(alexnet_allocator, user);

    SIZE(alexnet_conv_layer_config);
    FIELD(alexnet_conv_layer_config, out_channels);
    FIELD(alexnet_conv_layer_config, kernel_size);
    FIELD(alexnet_conv_layer_config, stride);
    FIELD(alexnet_conv_layer_config, padding);
    FIELD(alexnet_conv_layer_config, groups);
    FIELD(alexnet_conv_layer_config, lrn);
    FIELD(alexnet_conv_layer_config, max_pool);

    SIZE(alexnet_config);
    FIELD(alexnet_config, struct_size);
    FIELD(alexnet_config, variant);
    FIELD(alexnet_config, input_channels);
    FIELD(alexnet_config, input_height);
    FIELD(alexnet_config, input_width);
    FIELD(alexnet_config, conv_count);
    FIELD(alexnet_config, conv);
    FIELD(alexnet_config, pool_kernel);
    FIELD(alexnet_config, pool_stride);
    FIELD(alexnet_config, lrn_size);
    FIELD(alexnet_config, lrn_alpha);
    FIELD(alexnet_config, lrn_beta);
    FIELD(alexnet_config, lrn_k);
    FIELD(alexnet_config, lrn_alpha_scaling);
    FIELD(alexnet_config, adaptive_pool_size);
    FIELD(alexnet_config, hidden_fc_count);
    FIELD(alexnet_config, hidden_fc);
    FIELD(alexnet_config, num_classes);
    FIELD(alexnet_config, dropout_rate);
    FIELD(alexnet_config, dropout_placement);

    SIZE(alexnet_layer_info);
    FIELD(alexnet_layer_info, struct_size);
    FIELD(alexnet_layer_info, name);
    FIELD(alexnet_layer_info, type);
    FIELD(alexnet_layer_info, kernel_size);
    FIELD(alexnet_layer_info, stride);
    FIELD(alexnet_layer_info, padding);
    FIELD(alexnet_layer_info, groups);
    FIELD(alexnet_layer_info, channels);
    FIELD(alexnet_layer_info, height);
    FIELD(alexnet_layer_info, width);
    FIELD(alexnet_layer_info, parameter_count);
    FIELD(alexnet_layer_info, relu);

    SIZE(alexnet_model_options);
    FIELD(alexnet_model_options, struct_size);
    FIELD(alexnet_model_options, variant);
    FIELD(alexnet_model_options, config);
    FIELD(alexnet_model_options, num_classes);
    FIELD(alexnet_model_options, init);
    FIELD(alexnet_model_options, allocator);

    SIZE(alexnet_tensor_info);
    FIELD(alexnet_tensor_info, struct_size);
    FIELD(alexnet_tensor_info, name);
    FIELD(alexnet_tensor_info, rank);
    FIELD(alexnet_tensor_info, shape);
    FIELD(alexnet_tensor_info, element_count);
    FIELD(alexnet_tensor_info, data);

    SIZE(alexnet_backend_info);
    FIELD(alexnet_backend_info, struct_size);
    FIELD(alexnet_backend_info, name);
    FIELD(alexnet_backend_info, kind);
    FIELD(alexnet_backend_info, description);
    FIELD(alexnet_backend_info, available);
    FIELD(alexnet_backend_info, score);

    SIZE(alexnet_context_options);
    FIELD(alexnet_context_options, struct_size);
    FIELD(alexnet_context_options, backend);
    FIELD(alexnet_context_options, batch);
    FIELD(alexnet_context_options, height);
    FIELD(alexnet_context_options, width);
    FIELD(alexnet_context_options, capture_layers);
    FIELD(alexnet_context_options, allocator);
    FIELD(alexnet_context_options, num_threads);
    FIELD(alexnet_context_options, parallel_for);
    FIELD(alexnet_context_options, parallel_for_host);
    FIELD(alexnet_context_options, profile_layers);

    SIZE(alexnet_class_score);
    FIELD(alexnet_class_score, class_index);
    FIELD(alexnet_class_score, score);

    SIZE(alexnet_image_options);
    FIELD(alexnet_image_options, struct_size);
    FIELD(alexnet_image_options, resize_size);
    FIELD(alexnet_image_options, mean);
    FIELD(alexnet_image_options, std);

    printf("enum sizeof %zu %zu\n", sizeof(alexnet_status), _Alignof(alexnet_status));
    return 0;
}
