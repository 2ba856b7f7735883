/* quickstart.c: the README's quick start. Classifies one 256 x 256 RGB image with seeded (untrained)
 * weights; replace alexnet_model_create with alexnet_model_load("alexnet.safetensors", &options, &model) for
 * real predictions. */
#include <alexnet/alexnet.h>
#include <stdio.h>

int main(void)
{
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.variant = ALEXNET_VARIANT_TORCHVISION;
    alexnet_model *model = NULL;
    alexnet_context *context = NULL;
    static uint8_t pixels[256 * 256 * 3]; /* your RGB image: rows top to bottom, 3 bytes a pixel */
    alexnet_image image = {pixels, 256, 256, 256 * 3, ALEXNET_PIXEL_RGB8};
    alexnet_class_score top[5];

    alexnet_status status = alexnet_model_create(&options, 42, &model); /* seed 42 */
    if (status == ALEXNET_OK)
        status = alexnet_context_create(model, NULL, &context); /* NULL: default options */
    if (status == ALEXNET_OK)
        status = alexnet_classify_images(context, &image, 1, NULL, 5, top);
    for (int i = 0; status == ALEXNET_OK && i < 5; i++)
        printf("class %3u  probability %.6f\n", (unsigned)top[i].class_index, top[i].score);
    if (status != ALEXNET_OK)
        fprintf(stderr, "alexnet error %d: %s\n", (int)status, alexnet_last_error());
    alexnet_context_destroy(context); /* both accept NULL */
    alexnet_model_destroy(model);
    return status == ALEXNET_OK ? 0 : 1;
}
