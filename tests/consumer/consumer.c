/* A downstream C program built only from `pkg-config --cflags --libs alexnet` against an installed copy. */
#include <alexnet/alexnet.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define FAIL_IF(cond, ...)                                                                                    \
    do {                                                                                                      \
        if (cond) {                                                                                           \
            printf("FAIL (line %d): ", __LINE__);                                                             \
            printf(__VA_ARGS__);                                                                              \
            printf(" [%s]\n", alexnet_last_error());                                                          \
            return 1;                                                                                         \
        }                                                                                                     \
    } while (0)

enum { CLASSES = 10, SIDE = 28 };

/* A 1-channel 28x28 AlexNet-family net with small widths. */
static alexnet_status small_config(alexnet_config *cfg) {
    static const alexnet_conv_layer_config layers[3] = {
        {8, 5, 1, 2, 1, 1, 1},
        {16, 3, 1, 1, 1, 1, 1},
        {16, 3, 1, 1, 1, 0, 1},
    };
    alexnet_status status = alexnet_config_preset(ALEXNET_VARIANT_ONE_TOWER, cfg);
    if (status != ALEXNET_OK) return status;
    cfg->variant = ALEXNET_VARIANT_CUSTOM;
    cfg->input_channels = 1;
    cfg->input_height = cfg->input_width = SIDE;
    cfg->conv_count = 3;
    for (unsigned i = 0; i < ALEXNET_MAX_CONV_LAYERS; i++) {
        alexnet_conv_layer_config zero = {0, 0, 0, 0, 0, 0, 0};
        cfg->conv[i] = i < 3 ? layers[i] : zero;
    }
    cfg->adaptive_pool_size = 0;
    cfg->hidden_fc_count = 2;
    cfg->hidden_fc[0] = cfg->hidden_fc[1] = 32;
    cfg->hidden_fc[2] = cfg->hidden_fc[3] = 0;
    cfg->num_classes = CLASSES;
    return alexnet_config_validate(cfg);
}

int main(void) {
    printf("libalexnet %s (%u), compiled against %s\n", alexnet_version_string(), alexnet_version_number(),
           ALEXNET_VERSION_STRING);
    FAIL_IF(alexnet_version_number() != ALEXNET_VERSION_NUMBER, "version number %u, header %u",
            alexnet_version_number(), (unsigned)ALEXNET_VERSION_NUMBER);

    alexnet_config cfg;
    FAIL_IF(small_config(&cfg) != ALEXNET_OK, "small configuration rejected");

    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.variant = ALEXNET_VARIANT_CUSTOM;
    options.config = &cfg;
    alexnet_model *model = NULL;
    FAIL_IF(alexnet_model_create(&options, 42, &model) != ALEXNET_OK, "alexnet_model_create");

    alexnet_context_options context_options;
    alexnet_context_options_init(&context_options);
    alexnet_context *context = NULL;
    if (alexnet_context_create(model, &context_options, &context) != ALEXNET_OK) {
        printf("FAIL: alexnet_context_create [%s]\n", alexnet_last_error());
        alexnet_model_destroy(model);
        return 1;
    }

    float input[SIDE * SIDE];
    for (unsigned i = 0; i < SIDE * SIDE; i++) input[i] = (float)((i * 37u) % 101u) / 50.0f - 1.0f;
    float logits[CLASSES], probabilities[CLASSES];
    alexnet_status status = alexnet_infer(context, input, 1, logits, probabilities);
    int failed = status != ALEXNET_OK;
    if (failed) printf("FAIL: alexnet_infer: %s [%s]\n", alexnet_status_string(status), alexnet_last_error());
    double sum = 0.0;
    for (unsigned i = 0; !failed && i < CLASSES; i++) {
        if (!isfinite(probabilities[i]) || probabilities[i] < 0.0f || probabilities[i] > 1.0f) failed = 1;
        sum += probabilities[i];
    }
    if (!failed && fabs(sum - 1.0) > 1e-5) {
        printf("FAIL: probabilities sum to %.9g\n", sum);
        failed = 1;
    }
    if (!failed) {
        alexnet_class_score best;
        failed = alexnet_top_k(probabilities, CLASSES, 1, &best) != ALEXNET_OK;
        if (!failed)
            printf("ok: C consumer, backend %s, class %u (p = %.4f), probabilities sum to %.6f\n",
                   alexnet_context_backend_name(context), best.class_index, best.score, sum);
    }
    alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    return failed ? 1 : 0;
}
