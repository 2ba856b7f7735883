/* tensor_names.c: the parameter tensors of the three presets, as docs/WEIGHTS.md lists them. */
#include <alexnet/alexnet.h>
#include <stdio.h>

int main(void)
{
    const alexnet_variant variants[] = {ALEXNET_VARIANT_ONE_TOWER, ALEXNET_VARIANT_PAPER_2012,
                                        ALEXNET_VARIANT_TORCHVISION};
    const char *const names[] = {"one-tower", "paper-2012", "torchvision"};
    for (int v = 0; v < 3; v++) {
        alexnet_model_options options;
        alexnet_model_options_init(&options);
        options.variant = variants[v];
        alexnet_model *model = NULL;
        alexnet_status status = alexnet_model_create(&options, 1, &model);
        if (status != ALEXNET_OK) {
            fprintf(stderr, "alexnet error %d: %s\n", (int)status, alexnet_last_error());
            return 1;
        }
        printf("%s: %zu tensors, %llu parameters\n", names[v], alexnet_model_tensor_count(model),
               (unsigned long long)alexnet_model_parameter_count(model));
        for (size_t t = 0; t < alexnet_model_tensor_count(model); t++) {
            alexnet_tensor_info info;
            info.struct_size = sizeof info;
            alexnet_model_tensor(model, t, &info);
            printf("  %-20s [", info.name);
            for (uint32_t d = 0; d < info.rank; d++)
                printf("%s%llu", d ? ", " : "", (unsigned long long)info.shape[d]);
            printf("]\n");
        }
        alexnet_model_destroy(model);
    }
    return 0;
}
