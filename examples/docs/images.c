/* images.c: docs/API.md's image examples.
 *
 * A 640 x 480 BGRA frame with padded rows (as a camera or video decoder hands it over), preprocessed as a
 * whole and through a region of interest that is only a pointer and the same row stride; a greyscale
 * image fed to a three-channel and to a one-channel input; then both colour views classified in one batch. */
#include <alexnet/alexnet.h>
#include <stdio.h>
#include <stdlib.h>

enum { FRAME_WIDTH = 640, FRAME_HEIGHT = 480, FRAME_STRIDE = FRAME_WIDTH * 4 + 64 };

static int fail(alexnet_status status)
{
    fprintf(stderr, "alexnet error %d: %s\n", (int)status, alexnet_last_error());
    return 1;
}

/* Left half orange (R 255, G 128, B 0), right half blue; the 64 padding bytes of each row stay 0xEE. */
static void draw_frame(uint8_t *frame)
{
    for (size_t i = 0; i < (size_t)FRAME_STRIDE * FRAME_HEIGHT; i++)
        frame[i] = 0xEE;
    for (uint32_t y = 0; y < FRAME_HEIGHT; y++) {
        for (uint32_t x = 0; x < FRAME_WIDTH; x++) {
            uint8_t *p = frame + (size_t)y * FRAME_STRIDE + (size_t)x * 4; /* B, G, R, A */
            int left = x < FRAME_WIDTH / 2;
            p[0] = left ? 0 : 200;
            p[1] = left ? 128 : 60;
            p[2] = left ? 255 : 20;
            p[3] = 255;
        }
    }
}

static int preprocess_examples(const uint8_t *frame, float *out)
{
    /* The whole frame, torchvision's default transform: shorter side to 256, centre 224 x 224 crop,
     * scale to [0, 1], subtract mean[c] and divide by std[c]. */
    alexnet_image whole = {frame, FRAME_WIDTH, FRAME_HEIGHT, FRAME_STRIDE, ALEXNET_PIXEL_BGRA8};
    alexnet_status status = alexnet_preprocess_image(&whole, NULL, 3, 224, 224, out, 3 * 224 * 224);
    if (status != ALEXNET_OK)
        return fail(status);
    printf("whole frame, row 112: left edge R %.5f, right edge R %.5f\n", out[112 * 224], out[112 * 224 + 223]);

    /* A 200 x 150 region at (40, 100): no copy, just where it starts and the frame's stride. */
    alexnet_image region = {frame + 100 * FRAME_STRIDE + 40 * 4, 200, 150, FRAME_STRIDE, ALEXNET_PIXEL_BGRA8};
    status = alexnet_preprocess_image(&region, NULL, 3, 224, 224, out, 3 * 224 * 224);
    if (status != ALEXNET_OK)
        return fail(status);
    printf("region (all orange): R %.5f  G %.5f  B %.5f\n", out[0], out[224 * 224], out[2 * 224 * 224]);

    /* Own normalisation and no resize: only the centre crop, so the image must be at least the crop size. */
    alexnet_image_options options;
    alexnet_image_options_init(&options);
    options.resize_size = 0;
    for (int c = 0; c < 3; c++) {
        options.mean[c] = 0.5f;
        options.std[c] = 0.5f;
    }
    status = alexnet_preprocess_image(&region, &options, 3, 128, 128, out, 3 * 128 * 128);
    if (status != ALEXNET_OK)
        return fail(status);
    printf("region, crop only, mean = std = 0.5: R %.5f  G %.5f  B %.5f\n", out[0], out[128 * 128],
           out[2 * 128 * 128]);

    /* Greyscale in: three channels repeat the grey; asking for one channel from colour gives luminance. */
    static uint8_t grey[64 * 64];
    for (size_t i = 0; i < sizeof grey; i++)
        grey[i] = 100;
    alexnet_image grey_image = {grey, 64, 64, 64, ALEXNET_PIXEL_GRAY8};
    status = alexnet_preprocess_image(&grey_image, NULL, 3, 32, 32, out, 3 * 32 * 32);
    if (status != ALEXNET_OK)
        return fail(status);
    printf("grey 100 as RGB: %.5f %.5f %.5f\n", out[0], out[32 * 32], out[2 * 32 * 32]);
    status = alexnet_preprocess_image(&region, NULL, 1, 32, 32, out, 32 * 32);
    if (status != ALEXNET_OK)
        return fail(status);
    printf("orange as one channel (luminance 151): %.5f\n", out[0]);
    return 0;
}

static int classify_example(const uint8_t *frame)
{
    alexnet_model_options model_options;
    alexnet_model_options_init(&model_options);
    model_options.variant = ALEXNET_VARIANT_TORCHVISION;
    alexnet_model *model = NULL;
    alexnet_context *context = NULL;
    alexnet_context_options context_options;
    alexnet_context_options_init(&context_options);
    context_options.batch = 2;
    alexnet_status status = alexnet_model_create(&model_options, 3, &model);
    if (status == ALEXNET_OK)
        status = alexnet_context_create(model, &context_options, &context);

    alexnet_image views[2] = {
        {frame, FRAME_WIDTH, FRAME_HEIGHT, FRAME_STRIDE, ALEXNET_PIXEL_BGRA8},
        {frame + 100 * FRAME_STRIDE + 40 * 4, 200, 150, FRAME_STRIDE, ALEXNET_PIXEL_BGRA8},
    };
    alexnet_class_score top[2 * 3]; /* image i's k best are top[i * k .. i * k + k) */
    if (status == ALEXNET_OK)
        status = alexnet_classify_images(context, views, 2, NULL, 3, top);
    for (int i = 0; status == ALEXNET_OK && i < 2; i++)
        printf("view %d: classes %u %u %u\n", i, (unsigned)top[i * 3].class_index,
               (unsigned)top[i * 3 + 1].class_index, (unsigned)top[i * 3 + 2].class_index);
    int result = status == ALEXNET_OK ? 0 : fail(status);
    alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    return result;
}

int main(void)
{
    uint8_t *frame = malloc((size_t)FRAME_STRIDE * FRAME_HEIGHT);
    float *out = malloc(3 * 224 * 224 * sizeof *out);
    int result = frame != NULL && out != NULL ? 0 : 1;
    if (result == 0) {
        draw_frame(frame);
        result = preprocess_examples(frame, out);
    }
    if (result == 0)
        result = classify_example(frame);
    free(out);
    free(frame);
    return result;
}
