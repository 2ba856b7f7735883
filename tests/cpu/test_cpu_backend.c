/* The cpu-simd backend through the public API, for the kernel set ALEXNET_CPU_ISA names (meson registers
 * this program once per set; the set is chosen once per process). A set this CPU cannot run is reported as
 * "SKIP: <isa> kernels not runnable on this CPU" with exit status 77 (skipped, not passed).
 *
 *   - registration: "cpu-simd" is listed, available, scored above the reference, and "cpu"/"auto" pick it;
 *   - whole networks against the "reference" backend: a small custom configuration (groups, LRN with the
 *     paper's alpha, odd sizes), the one-tower and torchvision nets at batch 1 and 3, and torchvision at an
 *     odd input size: max |diff| / max |ref| <= 1e-4 and identical top-5 lists (the paper-2012 net runs on
 *     cpu-simd against PyTorch in golden_cpu_simd_*; the reference is too slow to run it here as well);
 *   - bits that do not depend on the thread count (1, 2, 3), on a host parallel_for that runs tasks in
 *     reverse order or on several threads of its own, or on whether an image runs alone or in a batch;
 *   - no allocation once the context exists (counting allocator around alexnet_infer and
 *     alexnet_classify_images), and every allocation failure while creating one reported without leaks. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/alexnet.h"
#include "test_support.h"

#define TOP_K 5

static const char *isa_name;

/* ---- helpers ---- */

static alexnet_config preset(alexnet_variant variant)
{
    alexnet_config c;
    ck_assert_int_eq(alexnet_config_preset(variant, &c), ALEXNET_OK);
    return c;
}

/* Mirrors the goldens' custom-small net: 1 channel, 28 x 28, grouped convolutions, an even LRN window with
 * the paper's absolute alpha, two pools, no adaptive pooling; FC widths not multiples of any tile. */
static alexnet_config custom_config(void)
{
    static const alexnet_conv_layer_config layers[] = {
        {16, 3, 1, 1, 1, 1, 1}, {32, 3, 1, 1, 2, 1, 1}, {48, 3, 1, 1, 1, 0, 0},
        {48, 3, 1, 1, 2, 0, 0}, {32, 3, 1, 1, 1, 0, 0},
    };
    alexnet_config c = preset(ALEXNET_VARIANT_ONE_TOWER);
    c.variant = ALEXNET_VARIANT_CUSTOM;
    c.input_channels = 1;
    c.input_height = c.input_width = 28;
    for (int i = 0; i < 5; i++)
        c.conv[i] = layers[i];
    c.lrn_size = 4;
    c.lrn_alpha = 0.02f;
    c.lrn_k = 2.0f;
    c.lrn_alpha_scaling = ALEXNET_LRN_ALPHA_ABSOLUTE;
    c.hidden_fc[0] = 77;
    c.hidden_fc[1] = 45;
    c.num_classes = 13;
    return c;
}

static alexnet_model *make_model(const alexnet_config *config, alexnet_allocator allocator, uint64_t seed)
{
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.config = config;
    options.allocator = allocator;
    /* Kaiming weights keep the activations alive through every layer, so the logits are well spread */
    options.init = ALEXNET_INIT_KAIMING;
    alexnet_model *model = NULL;
    ck_assert_msg(alexnet_model_create(&options, seed, &model) == ALEXNET_OK, "%s", alexnet_last_error());
    return model;
}

typedef struct context_setup {
    const char *backend;
    uint32_t batch, height, width, threads;
    alexnet_parallel_for_fn parallel_for;
    void *host;
    const char *const *capture;
} context_setup;

static alexnet_context *make_context(const alexnet_model *model, context_setup setup)
{
    alexnet_context_options options;
    alexnet_context_options_init(&options);
    options.backend = setup.backend;
    options.batch = setup.batch;
    options.height = setup.height;
    options.width = setup.width;
    options.num_threads = setup.threads;
    options.parallel_for = setup.parallel_for;
    options.parallel_for_host = setup.host;
    options.capture_layers = setup.capture;
    alexnet_context *context = NULL;
    ck_assert_msg(alexnet_context_create(model, &options, &context) == ALEXNET_OK, "%s", alexnet_last_error());
    ck_assert_str_eq(alexnet_context_backend_name(context), setup.backend);
    return context;
}

static float *input_for(const alexnet_config *c, uint32_t height, uint32_t width, size_t batch, uint64_t seed)
{
    size_t n = (size_t)c->input_channels * height * width * batch;
    float *x = malloc(n * sizeof *x);
    test_fill_input(x, n, seed);
    return x;
}

static void infer(alexnet_context *context, const float *input, size_t batch, float *logits, float *probs)
{
    ck_assert_msg(alexnet_infer(context, input, batch, logits, probs) == ALEXNET_OK, "%s", alexnet_last_error());
}

static void assert_top5_equal(const float *got, const float *want, size_t classes, const char *what, size_t image)
{
    alexnet_class_score a[TOP_K], b[TOP_K];
    size_t k = classes < TOP_K ? classes : TOP_K;
    ck_assert_int_eq(alexnet_top_k(got, classes, k, a), ALEXNET_OK);
    ck_assert_int_eq(alexnet_top_k(want, classes, k, b), ALEXNET_OK);
    for (size_t i = 0; i < k; i++)
        ck_assert_msg(a[i].class_index == b[i].class_index, "%s image %zu: top-%zu class %u, reference %u", what,
                      image, i + 1, a[i].class_index, b[i].class_index);
}

/* cpu-simd at batch 1 and `batch` against the reference at `batch` (which is batch-invariant). */
static void check_network(const alexnet_config *config, const char *what, size_t batch, uint32_t height,
                          uint32_t width, uint32_t threads)
{
    alexnet_model *model = make_model(config, (alexnet_allocator){0}, 7);
    uint32_t classes = alexnet_model_num_classes(model);
    uint32_t h = height ? height : config->input_height, w = width ? width : config->input_width;
    float *input = input_for(config, h, w, batch, 11);
    float *want = malloc(batch * classes * sizeof *want), *got = malloc(batch * classes * sizeof *got);
    float *one = malloc(classes * sizeof *one);

    alexnet_context *reference =
        make_context(model, (context_setup){"reference", (uint32_t)batch, height, width, 1, NULL, NULL, NULL});
    infer(reference, input, batch, want, NULL);
    alexnet_context_destroy(reference);

    alexnet_context *simd =
        make_context(model, (context_setup){"cpu-simd", (uint32_t)batch, height, width, threads, NULL, NULL, NULL});
    infer(simd, input, batch, got, NULL);
    double error = test_max_relative_error(got, want, batch * classes);
    printf("%-12s %s batch %zu %ux%u threads %u: max |diff| / max |ref| = %.3g\n", what, isa_name, batch, h, w,
           threads, error);
    ck_assert_msg(error <= 1e-4, "%s batch %zu: relative error %g", what, batch, error);
    for (size_t n = 0; n < batch; n++)
        assert_top5_equal(got + n * classes, want + n * classes, classes, what, n);
    infer(simd, input, 1, one, NULL);
    error = test_max_relative_error(one, want, classes);
    ck_assert_msg(error <= 1e-4, "%s batch 1: relative error %g", what, error);
    assert_top5_equal(one, want, classes, what, 0);
    alexnet_context_destroy(simd);

    alexnet_model_destroy(model);
    free(input), free(want), free(got), free(one);
}

/* ---- registration ---- */

START_TEST(backend_is_listed_and_preferred)
{
    int found = 0;
    for (size_t i = 0; i < alexnet_backend_count(); i++) {
        alexnet_backend_info info;
        info.struct_size = sizeof info;
        ck_assert_int_eq(alexnet_backend_get_info(i, &info), ALEXNET_OK);
        if (strcmp(info.name, "cpu-simd") != 0)
            continue;
        found = 1;
        ck_assert_str_eq(info.kind, "cpu");
        ck_assert(info.available);
        ck_assert_int_eq(info.score, 100);
        printf("cpu-simd: %s\n", info.description);
    }
    ck_assert(found);
    alexnet_config c = custom_config();
    alexnet_model *model = make_model(&c, (alexnet_allocator){0}, 1);
    unsetenv("ALEXNET_BACKEND");
    const char *choices[] = {"cpu", "auto", NULL};
    for (int i = 0; i < 3; i++) {
        alexnet_context_options options;
        alexnet_context_options_init(&options);
        options.backend = choices[i];
        alexnet_context *context = NULL;
        ck_assert_int_eq(alexnet_context_create(model, &options, &context), ALEXNET_OK);
        ck_assert_str_eq(alexnet_context_backend_name(context), "cpu-simd");
        alexnet_context_destroy(context);
    }
    alexnet_model_destroy(model);
}
END_TEST

/* ---- networks against the reference ---- */

START_TEST(custom_network_matches_reference)
{
    alexnet_config c = custom_config();
    check_network(&c, "custom", 3, 0, 0, 2);
    check_network(&c, "custom", 5, 0, 0, 3);
}
END_TEST

START_TEST(one_tower_matches_reference)
{
    alexnet_config c = preset(ALEXNET_VARIANT_ONE_TOWER);
    check_network(&c, "one-tower", 3, 0, 0, 2);
}
END_TEST

START_TEST(torchvision_matches_reference)
{
    alexnet_config c = preset(ALEXNET_VARIANT_TORCHVISION);
    check_network(&c, "torchvision", 3, 0, 0, 2);
    /* odd input sizes: every edge of the packing, the Winograd tiles and the pooling moves */
    check_network(&c, "torchvision", 1, 131, 99, 3);
}
END_TEST

/* ---- determinism ---- */

/* A host job system that runs the tasks on the calling thread, last first. */
static void reverse_parallel_for(void *host, alexnet_task_fn task, void *task_context, size_t count)
{
    (void)host;
    for (size_t i = count; i-- > 0;)
        task(task_context, i);
}

/* One that runs them on three threads of its own, each taking every third index from the end. */
typedef struct striped_run {
    alexnet_task_fn task;
    void *task_context;
    size_t count, stripe;
} striped_run;

static void *striped_worker(void *arg)
{
    striped_run *run = arg;
    for (size_t i = run->count; i-- > 0;)
        if (i % 3 == run->stripe)
            run->task(run->task_context, i);
    return NULL;
}

static void threaded_parallel_for(void *host, alexnet_task_fn task, void *task_context, size_t count)
{
    (void)host;
    pthread_t threads[3];
    striped_run runs[3];
    for (size_t t = 0; t < 3; t++) {
        runs[t] = (striped_run){task, task_context, count, t};
        ck_assert_int_eq(pthread_create(&threads[t], NULL, striped_worker, &runs[t]), 0);
    }
    for (size_t t = 0; t < 3; t++)
        pthread_join(threads[t], NULL);
}

static void check_thread_invariance(const alexnet_config *c, const char *what, size_t batch)
{
    alexnet_model *model = make_model(c, (alexnet_allocator){0}, 3);
    size_t classes = alexnet_model_num_classes(model);
    float *input = input_for(c, c->input_height, c->input_width, batch, 5);
    static const char *const capture[] = {"conv1", "conv2", "conv5", "fc6", NULL};
    const context_setup setups[] = {
        {"cpu-simd", (uint32_t)batch, 0, 0, 1, NULL, NULL, capture},
        {"cpu-simd", (uint32_t)batch, 0, 0, 2, NULL, NULL, capture},
        {"cpu-simd", (uint32_t)batch, 0, 0, 3, NULL, NULL, capture},
        {"cpu-simd", (uint32_t)batch, 0, 0, 1, reverse_parallel_for, NULL, capture},
        {"cpu-simd", (uint32_t)batch, 0, 0, 3, reverse_parallel_for, NULL, capture},
        {"cpu-simd", (uint32_t)batch, 0, 0, 3, threaded_parallel_for, NULL, capture},
    };
    float *first_logits = malloc(batch * classes * sizeof(float)), *first_probs = malloc(batch * classes * sizeof(float));
    float *logits = malloc(batch * classes * sizeof(float)), *probs = malloc(batch * classes * sizeof(float));
    float *first_layers[4] = {NULL}, *layer = NULL;
    size_t layer_counts[4] = {0};
    for (size_t s = 0; s < sizeof setups / sizeof setups[0]; s++) {
        alexnet_context *context = make_context(model, setups[s]);
        infer(context, input, batch, s == 0 ? first_logits : logits, s == 0 ? first_probs : probs);
        if (s > 0) {
            ck_assert_msg(memcmp(logits, first_logits, batch * classes * sizeof(float)) == 0,
                          "%s: logits differ between setup 0 and %zu", what, s);
            ck_assert_msg(memcmp(probs, first_probs, batch * classes * sizeof(float)) == 0,
                          "%s: probabilities differ between setup 0 and %zu", what, s);
        }
        for (int l = 0; capture[l] != NULL; l++) {
            size_t per_image = 0;
            ck_assert_int_eq(alexnet_context_layer_size(context, capture[l], &per_image), ALEXNET_OK);
            size_t count = per_image * batch;
            if (s == 0) {
                layer_counts[l] = count;
                first_layers[l] = malloc(count * sizeof(float));
                ck_assert_int_eq(alexnet_layer_output(context, capture[l], first_layers[l], count), ALEXNET_OK);
            } else {
                layer = realloc(layer, count * sizeof(float));
                ck_assert_int_eq(alexnet_layer_output(context, capture[l], layer, count), ALEXNET_OK);
                ck_assert_msg(count == layer_counts[l] && memcmp(layer, first_layers[l], count * sizeof(float)) == 0,
                              "%s: %s differs between setup 0 and %zu", what, capture[l], s);
            }
        }
        /* image by image gives the bits of the batch */
        if (s == 1 || s == 5) {
            for (size_t n = 0; n < batch; n++) {
                size_t pixels = (size_t)c->input_channels * c->input_height * c->input_width;
                infer(context, input + n * pixels, 1, logits, NULL);
                ck_assert_msg(memcmp(logits, first_logits + n * classes, classes * sizeof(float)) == 0,
                              "%s: image %zu alone differs from the batch", what, n);
            }
        }
        alexnet_context_destroy(context);
    }
    for (int l = 0; l < 4; l++)
        free(first_layers[l]);
    free(layer), free(first_logits), free(first_probs), free(logits), free(probs), free(input);
    alexnet_model_destroy(model);
}

START_TEST(bits_do_not_depend_on_threads_or_batch)
{
    alexnet_config c = preset(ALEXNET_VARIANT_TORCHVISION);
    check_thread_invariance(&c, "torchvision", 3);
    c = custom_config();
    check_thread_invariance(&c, "custom", 5);
}
END_TEST

/* ---- memory ---- */

static alexnet_image synthetic_image(uint8_t *pixels, uint32_t width, uint32_t height, unsigned seed)
{
    for (size_t i = 0; i < (size_t)width * height * 3; i++)
        pixels[i] = (uint8_t)((i * 2654435761u + seed * 40503u) >> 13);
    alexnet_image image = {pixels, width, height, (size_t)width * 3, ALEXNET_PIXEL_RGB8};
    return image;
}

START_TEST(no_allocation_after_context_creation)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    alexnet_config c = preset(ALEXNET_VARIANT_TORCHVISION);
    alexnet_model *model = make_model(&c, allocator, 9);
    alexnet_context_options options;
    alexnet_context_options_init(&options);
    options.backend = "cpu-simd";
    options.batch = 4;
    options.num_threads = 2;
    alexnet_context *context = NULL;
    ck_assert_int_eq(alexnet_context_create(model, &options, &context), ALEXNET_OK);

    float *input = input_for(&c, 224, 224, 4, 1), logits[4 * 1000], probs[4 * 1000];
    enum { W = 300, H = 260 };
    uint8_t *pixels = malloc(3 * (size_t)W * H * 3);
    alexnet_image images[3];
    for (unsigned i = 0; i < 3; i++)
        images[i] = synthetic_image(pixels + i * (size_t)W * H * 3, W, H, i);
    alexnet_class_score top[3 * TOP_K];

    size_t before = counter.total_allocations;
    infer(context, input, 4, logits, probs);
    infer(context, input, 1, logits, NULL);
    infer(context, input, 3, NULL, probs);
    ck_assert_int_eq(alexnet_classify_images(context, images, 3, NULL, TOP_K, top), ALEXNET_OK);
    ck_assert_msg(counter.total_allocations == before, "%zu allocations during inference",
                  counter.total_allocations - before);

    /* a reshape may allocate (it grows the scratch); inference after it may not */
    ck_assert_int_eq(alexnet_context_reshape(context, 2, 256, 288), ALEXNET_OK);
    before = counter.total_allocations;
    float *bigger = input_for(&c, 256, 288, 2, 2);
    infer(context, bigger, 2, logits, probs);
    ck_assert_int_eq(alexnet_classify_images(context, images, 2, NULL, TOP_K, top), ALEXNET_OK);
    ck_assert_msg(counter.total_allocations == before, "%zu allocations during inference after reshape",
                  counter.total_allocations - before);

    alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    ck_assert_uint_eq(counter.live_blocks, 0);
    ck_assert_uint_eq(counter.size_mismatches, 0);
    free(input), free(bigger), free(pixels);
}
END_TEST

START_TEST(allocation_failures_are_reported_without_leaks)
{
    alexnet_config c = custom_config();
    alexnet_model *model = make_model(&c, (alexnet_allocator){0}, 4);
    test_counting_allocator counter;
    for (size_t n = 1;; n++) {
        alexnet_allocator allocator = test_counting_allocator_make(&counter);
        counter.fail_at = n;
        alexnet_context_options options;
        alexnet_context_options_init(&options);
        options.backend = "cpu-simd";
        options.batch = 3;
        options.num_threads = 2;
        options.allocator = allocator;
        alexnet_context *context = NULL;
        alexnet_status status = alexnet_context_create(model, &options, &context);
        if (status == ALEXNET_OK) {
            /* and a reshape that fails keeps the context usable */
            float input[3 * 28 * 28], logits[3 * 13];
            test_fill_input(input, 3 * 28 * 28, 3);
            size_t created = counter.total_allocations;
            counter.fail_at = created + 1;
            ck_assert_int_eq(alexnet_context_reshape(context, 64, 28, 28), ALEXNET_E_OUT_OF_MEMORY);
            infer(context, input, 3, logits, NULL);
            alexnet_context_destroy(context);
            ck_assert_uint_eq(counter.live_blocks, 0);
            ck_assert_msg(n > 3, "context creation made only %zu allocations", n - 1);
            break;
        }
        ck_assert_int_eq(status, ALEXNET_E_OUT_OF_MEMORY);
        ck_assert(context == NULL);
        ck_assert_msg(counter.live_blocks == 0, "failing allocation %zu leaked %zu blocks", n, counter.live_blocks);
        ck_assert(strlen(alexnet_last_error()) > 0);
    }
    alexnet_model_destroy(model);
}
END_TEST

int main(void)
{
    isa_name = getenv("ALEXNET_CPU_ISA");
    if (isa_name == NULL || isa_name[0] == '\0') {
        fprintf(stderr, "test_cpu_backend: set ALEXNET_CPU_ISA to the kernel set to test\n");
        return 1;
    }
    for (size_t i = 0; i < alexnet_backend_count(); i++) {
        alexnet_backend_info info;
        info.struct_size = sizeof info;
        if (alexnet_backend_get_info(i, &info) == ALEXNET_OK && strcmp(info.name, "cpu-simd") == 0 &&
            !info.available) {
            printf("SKIP: %s kernels not runnable on this CPU (%s)\n", isa_name, info.description);
            return 77;
        }
    }
    Suite *suite = suite_create("cpu_backend");
    TCase *tc = tcase_create("backend");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, backend_is_listed_and_preferred);
    tcase_add_test(tc, custom_network_matches_reference);
    tcase_add_test(tc, one_tower_matches_reference);
    tcase_add_test(tc, torchvision_matches_reference);
    tcase_add_test(tc, bits_do_not_depend_on_threads_or_batch);
    tcase_add_test(tc, no_allocation_after_context_creation);
    tcase_add_test(tc, allocation_failures_are_reported_without_leaks);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? 0 : 1;
}
