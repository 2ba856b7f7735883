/* load_weights.c: load a safetensors file for the torchvision variant (for example the output of
 * tools/convert_torchvision.py) and classify one image with it.
 *
 *   load_weights FILE.safetensors    load FILE
 *   load_weights --self-test DIR     save seeded weights to DIR/load-weights.safetensors first, then load
 *                                    that file (what the docs test does; the library downloads nothing)
 */
#include <alexnet/alexnet.h>
#include <stdio.h>
#include <string.h>

static int fail(alexnet_status status)
{
    fprintf(stderr, "alexnet error %d: %s\n", (int)status, alexnet_last_error());
    return 1;
}

/* Write seeded torchvision weights to path, as a stand-in for converted ones. */
static alexnet_status write_seeded_file(const char *path)
{
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.variant = ALEXNET_VARIANT_TORCHVISION;
    alexnet_model *model = NULL;
    alexnet_status status = alexnet_model_create(&options, 11, &model);
    if (status == ALEXNET_OK)
        status = alexnet_model_save(model, path);
    alexnet_model_destroy(model);
    return status;
}

int main(int argc, char **argv)
{
    char path[4096];
    int self_test = argc == 3 && strcmp(argv[1], "--self-test") == 0;
    if (argc != 2 && !self_test) {
        fprintf(stderr, "usage: load_weights FILE.safetensors | load_weights --self-test DIR\n");
        return 2;
    }
    snprintf(path, sizeof path, self_test ? "%s/load-weights.safetensors" : "%s", argv[argc - 1]);
    alexnet_status written = self_test ? write_seeded_file(path) : ALEXNET_OK;
    if (written != ALEXNET_OK)
        return fail(written);

    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.variant = ALEXNET_VARIANT_TORCHVISION; /* the architecture the file's tensors must fit */
    alexnet_model *model = NULL;
    alexnet_status status = alexnet_model_load(path, &options, &model);
    if (self_test)
        remove(path);
    if (status != ALEXNET_OK)
        return fail(status);
    printf("%s: %u classes, %llu parameters\n", path, (unsigned)alexnet_model_num_classes(model),
           (unsigned long long)alexnet_model_parameter_count(model));

    alexnet_context *context = NULL;
    status = alexnet_context_create(model, NULL, &context);
    static uint8_t pixels[300 * 400 * 3]; /* a mid-grey 400 x 300 RGB image */
    memset(pixels, 128, sizeof pixels);
    alexnet_image image = {pixels, 400, 300, 400 * 3, ALEXNET_PIXEL_RGB8};
    alexnet_class_score top[3];
    if (status == ALEXNET_OK)
        status = alexnet_classify_images(context, &image, 1, NULL, 3, top);
    if (status == ALEXNET_OK)
        printf("grey image: class %u (%.6f), %u (%.6f), %u (%.6f)\n", (unsigned)top[0].class_index, top[0].score,
               (unsigned)top[1].class_index, top[1].score, (unsigned)top[2].class_index, top[2].score);
    int result = status == ALEXNET_OK ? 0 : fail(status);
    alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    return result;
}
