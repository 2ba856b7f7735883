/* Public entry points for images: preprocessing alone, and classify (preprocess + infer + top-k). */
#include <string.h>
#include <stdio.h>

#include "image/preprocess.h"
#include "net/runtime.h"
#include "util/error.h"

void alexnet_image_options_init(alexnet_image_options *options)
{
    if (options == NULL)
        return;
    memset(options, 0, sizeof *options);
    options->struct_size = sizeof *options;
    options->resize_size = 256;
    options->mean[0] = 0.485f;
    options->mean[1] = 0.456f;
    options->mean[2] = 0.406f;
    options->std[0] = 0.229f;
    options->std[1] = 0.224f;
    options->std[2] = 0.225f;
}

static alexnet_status an_image_options_check(const alexnet_image_options *options)
{
    if (options == NULL)
        return ALEXNET_OK;
    return an_struct_size_check(options, sizeof *options, sizeof *options, "alexnet_image_options");
}

alexnet_status alexnet_preprocess_image(const alexnet_image *image, const alexnet_image_options *options,
                                        uint32_t channels, uint32_t height, uint32_t width, float *out,
                                        size_t out_count)
{
    an_error_clear();
    alexnet_status status = an_image_options_check(options);
    if (status != ALEXNET_OK)
        return status;
    return an_image_preprocess(image, options, channels, height, width, out, out_count);
}

alexnet_status alexnet_classify_images(alexnet_context *context, const alexnet_image *images, size_t count,
                                       const alexnet_image_options *options, size_t k, alexnet_class_score *out_top_k)
{
    an_error_clear();
    if (context == NULL || images == NULL || out_top_k == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_classify_images: NULL argument");
    an_plan *plan = &context->plan;
    if (count == 0 || count > plan->batch)
        return an_error(ALEXNET_E_SHAPE, "alexnet_classify_images: %zu images for a context shaped for 1..%zu", count,
                        plan->batch);
    uint32_t classes = context->model->config.num_classes;
    if (k == 0 || k > classes)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_classify_images: k = %zu must be in [1, %u]", k, classes);
    alexnet_status status = an_image_options_check(options);
    if (status != ALEXNET_OK)
        return status;
    uint32_t channels = context->model->config.input_channels;
    if (channels != 1 && channels != 3)
        return an_error(ALEXNET_E_UNSUPPORTED, "alexnet_classify_images: the model takes %u channels; images give 1 or 3",
                        channels);
    size_t per_image = (size_t)channels * plan->height * plan->width;
    for (size_t i = 0; i < count; i++) {
        status = an_image_preprocess(&images[i], options, channels, plan->height, plan->width,
                                     plan->host_input + i * per_image, per_image);
        if (status != ALEXNET_OK) {
            char where[32];
            snprintf(where, sizeof where, "image %zu", i);
            return an_error_prefix(status, where);
        }
    }
    status = an_forward(context, plan->host_input, count, NULL, plan->host_scores);
    if (status != ALEXNET_OK)
        return status;
    for (size_t i = 0; i < count; i++)
        alexnet_top_k(plan->host_scores + i * classes, classes, k, out_top_k + i * k);
    return ALEXNET_OK;
}
