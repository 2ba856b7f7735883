/* custom_config.c: docs/VARIANTS.md's custom configuration, an AlexNet-family network for 28 x 28
 * greyscale images (MNIST-sized) with 10 classes.
 *
 * Five convolutions with the paper's LRN formula (k = 2, alpha applied as is) after the first two, the
 * article's overlapping 3 x 3 / 2 pooling, two hidden FC layers of 256 with Caffe's dropout placement. The
 * program validates it, prints its layer table and parameter count, shows a rejected edit, creates a
 * model with Caffe's initialisation and classifies one synthetic digit. */
#include <alexnet/alexnet.h>
#include <stdio.h>
#include <string.h>

static int fail(alexnet_status status)
{
    fprintf(stderr, "alexnet error %d: %s\n", (int)status, alexnet_last_error());
    return 1;
}

/* Print a status and its detail; the detail is copied first, as the next library call replaces it. */
static void print_status(const char *what, alexnet_status status)
{
    char detail[512];
    snprintf(detail, sizeof detail, "%s", alexnet_last_error());
    printf("%s: %s: %s\n", what, alexnet_status_string(status), detail);
}

static alexnet_config digits_config(void)
{
    alexnet_config config;
    alexnet_config_preset(ALEXNET_VARIANT_PAPER_2012, &config); /* start from a preset, then edit */
    config.variant = ALEXNET_VARIANT_CUSTOM; /* conv1..conv5 / fc6..fc8 tensor names, paper init by default */
    config.input_channels = 1;
    config.input_height = config.input_width = 28;
    config.conv_count = 5;
    /*                            filters kernel stride pad groups lrn pool */
    const alexnet_conv_layer_config conv[5] = {{32, 5, 1, 2, 1, 1, 1},  /* 28 -> 28, pool -> 13 */
                                               {64, 5, 1, 2, 2, 1, 1},  /* two towers; pool -> 6 */
                                               {96, 3, 1, 1, 1, 0, 0},
                                               {96, 3, 1, 1, 2, 0, 0},
                                               {64, 3, 1, 1, 2, 0, 1}}; /* pool -> 2 */
    memcpy(config.conv, conv, sizeof conv);
    /* The paper's LRN: b = a / (2 + 1e-4 * sum(a^2))^0.75 over 5 channels, alpha not divided by 5. */
    config.lrn_size = 5;
    config.lrn_k = 2.0f;
    config.lrn_alpha = 1e-4f;
    config.lrn_beta = 0.75f;
    config.lrn_alpha_scaling = ALEXNET_LRN_ALPHA_ABSOLUTE;
    config.adaptive_pool_size = 0; /* fixed 28 x 28 input */
    config.hidden_fc_count = 2;
    config.hidden_fc[0] = config.hidden_fc[1] = 256;
    config.num_classes = 10;
    config.dropout_placement = ALEXNET_DROPOUT_AFTER_HIDDEN_FC;
    return config;
}

static int print_summary(const alexnet_config *config)
{
    alexnet_layer_info rows[32];
    for (size_t i = 0; i < 32; i++)
        rows[i].struct_size = sizeof rows[i];
    size_t count = 0;
    uint64_t parameters = 0;
    alexnet_status status = alexnet_config_summary(config, 0, 0, rows, 32, &count);
    if (status == ALEXNET_OK)
        status = alexnet_config_parameter_count(config, &parameters);
    if (status != ALEXNET_OK)
        return fail(status);
    for (size_t i = 0; i < count && i < 32; i++)
        printf("  %-8s %4u x %2u x %-2u %8llu parameters\n", rows[i].name, (unsigned)rows[i].channels,
               (unsigned)rows[i].height, (unsigned)rows[i].width, (unsigned long long)rows[i].parameter_count);
    printf("  total %llu parameters\n", (unsigned long long)parameters);
    return 0;
}

int main(void)
{
    alexnet_config config = digits_config();
    alexnet_status status = alexnet_config_validate(&config);
    if (status != ALEXNET_OK)
        return fail(status);
    if (print_summary(&config) != 0)
        return 1;

    alexnet_config smaller = config;
    smaller.input_height = smaller.input_width = 14; /* three poolings need more than 14 pixels */
    status = alexnet_config_validate(&smaller);
    print_status("14 x 14 input", status);

    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.config = &config; /* copied: config may go away after the call */
    options.init = ALEXNET_INIT_CAFFE;
    alexnet_model *model = NULL;
    alexnet_context *context = NULL;
    status = alexnet_model_create(&options, 2012, &model);
    if (status == ALEXNET_OK)
        status = alexnet_context_create(model, NULL, &context);

    /* A synthetic "1": a vertical bar. resize_size 0 takes the 28 x 28 image as it is (no resize, the crop is
     * the whole image); mean and std are the usual MNIST statistics. */
    static uint8_t digit[28 * 28];
    for (int y = 4; y < 24; y++)
        for (int x = 12; x < 16; x++)
            digit[y * 28 + x] = 255;
    alexnet_image image = {digit, 28, 28, 28, ALEXNET_PIXEL_GRAY8};
    alexnet_image_options image_options;
    alexnet_image_options_init(&image_options);
    image_options.resize_size = 0;
    image_options.mean[0] = 0.1307f;
    image_options.std[0] = 0.3081f;
    alexnet_class_score top[3];
    if (status == ALEXNET_OK)
        status = alexnet_classify_images(context, &image, 1, &image_options, 3, top);
    if (status == ALEXNET_OK)
        printf("untrained guess: %u (%.4f), %u (%.4f), %u (%.4f)\n", (unsigned)top[0].class_index, top[0].score,
               (unsigned)top[1].class_index, top[1].score, (unsigned)top[2].class_index, top[2].score);
    int result = status == ALEXNET_OK ? 0 : fail(status);
    alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    return result;
}
