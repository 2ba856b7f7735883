/* inference.c: docs/API.md's context and inference examples.
 *
 * One torchvision-variant model (seeded weights), one context on the best CPU backend with room for two
 * images, captured layers and per-layer profiling; a batch of two normalised NCHW inputs; top-5 from the
 * probabilities; a captured layer read back; the profile; then a reshape to a smaller input. */
#include <alexnet/alexnet.h>
#include <stdio.h>
#include <stdlib.h>

/* A host job system in miniature: runs every index on the calling thread. A real engine would spread
 * the indices over its workers and return once all of them have finished. */
static void serial_parallel_for(void *host, alexnet_task_fn task, void *task_context, size_t count)
{
    (void)host;
    for (size_t i = 0; i < count; i++)
        task(task_context, i);
}

/* Deterministic stand-ins for normalised pixels, roughly in [-2, 2]. */
static void fill_input(float *input, size_t count, uint32_t seed)
{
    for (size_t i = 0; i < count; i++) {
        seed = seed * 1664525u + 1013904223u;
        input[i] = (float)(seed >> 8) / (float)(1u << 24) * 4.0f - 2.0f;
    }
}

/* Every backend compiled in, then every device of the available ones ("reference:0", ...). */
static void list_backends(void)
{
    for (size_t i = 0; i < alexnet_backend_count(); i++) {
        alexnet_backend_info info;
        info.struct_size = sizeof info;
        if (alexnet_backend_get_info(i, &info) == ALEXNET_OK)
            printf("backend %-10s %s, %s, score %d: %s\n", info.name, info.kind,
                   info.available ? "available" : "unavailable", (int)info.score, info.description);
    }
    for (size_t i = 0; i < alexnet_device_count(); i++) {
        alexnet_device_info info;
        info.struct_size = sizeof info;
        if (alexnet_device_get_info(i, &info) == ALEXNET_OK)
            printf("device  %-10s %s, %llu MiB\n", info.name, info.description,
                   (unsigned long long)(info.memory_bytes >> 20));
    }
}

static int fail(alexnet_status status)
{
    fprintf(stderr, "alexnet error %d: %s\n", (int)status, alexnet_last_error());
    return 1;
}

static int run(alexnet_model *model, alexnet_context *context, float *input, float *logits, float *probabilities)
{
    const uint32_t classes = alexnet_model_num_classes(model);
    size_t batch = 0;
    uint32_t height = 0, width = 0;
    alexnet_context_get_shape(context, &batch, &height, &width);
    printf("backend %s, batch %zu, input %ux%u, workspace %zu bytes\n", alexnet_context_backend_name(context),
           batch, (unsigned)height, (unsigned)width, alexnet_context_workspace_bytes(context));

    /* Two images, NCHW: image n, channel c, row y, column x is input[((n * 3 + c) * height + y) * width + x]. */
    fill_input(input, 2 * 3 * (size_t)height * width, 1);
    alexnet_status status = alexnet_infer(context, input, 2, logits, probabilities);
    if (status != ALEXNET_OK)
        return fail(status);
    for (size_t n = 0; n < 2; n++) {
        alexnet_class_score top[5];
        alexnet_top_k(probabilities + n * classes, classes, 5, top);
        printf("image %zu: class %u (p = %.6f, logit %.4f)\n", n, (unsigned)top[0].class_index, top[0].score,
               logits[n * classes + top[0].class_index]);
    }

    /* A captured layer, from the last inference: batch x elements-per-image floats. */
    size_t per_image = 0;
    alexnet_context_layer_size(context, "fc7", &per_image);
    float *fc7 = malloc(2 * per_image * sizeof *fc7);
    if (fc7 == NULL)
        return 1;
    status = alexnet_layer_output(context, "fc7", fc7, 2 * per_image);
    size_t active = 0;
    for (size_t i = 0; status == ALEXNET_OK && i < per_image; i++)
        active += fc7[i] > 0.0f; /* after ReLU: zero or positive */
    free(fc7);
    if (status != ALEXNET_OK)
        return fail(status);
    printf("fc7: %zu values per image, %zu of image 0's are positive\n", per_image, active);

    /* Per-layer timings of that inference. */
    alexnet_layer_profile rows[32];
    for (size_t i = 0; i < 32; i++)
        rows[i].struct_size = sizeof rows[i];
    size_t row_count = 0;
    status = alexnet_context_profile(context, rows, 32, &row_count);
    if (status != ALEXNET_OK)
        return fail(status);
    double total = 0.0, flops = 0.0;
    for (size_t i = 0; i < row_count && i < 32; i++) {
        total += rows[i].seconds;
        flops += rows[i].flops;
    }
    printf("profile: %zu steps, %.1f ms, %.2f GFLOP (first step %s: %.1f ms)\n", row_count, total * 1e3,
           flops * 1e-9, rows[0].name, rows[0].seconds * 1e3);
    return 0;
}

int main(void)
{
    list_backends();
    alexnet_model_options model_options;
    alexnet_model_options_init(&model_options);
    model_options.variant = ALEXNET_VARIANT_TORCHVISION;
    alexnet_model *model = NULL;
    alexnet_status status = alexnet_model_create(&model_options, 7, &model);
    if (status != ALEXNET_OK)
        return fail(status);

    static const char *const captured[] = {"conv1", "fc7", NULL};
    alexnet_context_options options;
    alexnet_context_options_init(&options); /* backend "auto", batch 1, the model's input size, 1 thread */
    options.backend = "cpu";                /* the best CPU backend; ALEXNET_BACKEND is then ignored */
    options.batch = 2;
    options.capture_layers = captured;
    options.num_threads = 0;                /* one per CPU ... */
    options.parallel_for = serial_parallel_for; /* ... but run through the host's job system, no own thread */
    options.profile_layers = 1;
    alexnet_context *context = NULL;
    status = alexnet_context_create(model, &options, &context);
    if (status != ALEXNET_OK) {
        alexnet_model_destroy(model);
        return fail(status);
    }

    /* Buffers for the largest shape this program uses; inference itself allocates nothing. */
    const uint32_t classes = alexnet_model_num_classes(model);
    float *input = malloc(2 * 3 * 224 * 224 * sizeof *input);
    float *logits = malloc(2 * classes * sizeof *logits);
    float *probabilities = malloc(2 * classes * sizeof *probabilities);
    int result = input != NULL && logits != NULL && probabilities != NULL ? 0 : 1;
    if (result == 0)
        result = run(model, context, input, logits, probabilities);

    /* The torchvision variant pools adaptively, so any input of at least 63 x 63 works. Reshaping is the
     * only call after creation that allocates; if it fails, the previous shape stays in force. */
    if (result == 0) {
        status = alexnet_context_reshape(context, 2, 160, 160);
        result = status == ALEXNET_OK ? run(model, context, input, logits, probabilities) : fail(status);
    }
    free(probabilities);
    free(logits);
    free(input);
    alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    return result;
}
