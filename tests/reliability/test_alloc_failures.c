/* Allocation-failure injection over the public scenarios. For each scenario the operation under test runs once
 * to count its allocations (N), then N more times with the allocator failing the 1st, 2nd, ..., N-th of them.
 * Every run must
 *  - return ALEXNET_E_OUT_OF_MEMORY with a message (or ALEXNET_OK, for a library that recovers, and then give
 *    the right result),
 *  - leave the output handle untouched on failure and every existing handle usable and destroyable (a failed
 *    reshape keeps the previous shape and its results; a failed save leaves no temporary file and the old file),
 *  - leak nothing, and give free() the size of each block (the counting allocator of tests/support).
 * Setup (creating the model a context scenario needs, ...) runs with the same allocator not yet armed, so the
 * failures land in the operation under test. Inference and classification promise to allocate nothing: for
 * them N must be 0.
 *
 * Context scenarios run on the "reference" backend and on whatever "auto" picks (a SIMD backend with a thread
 * pool when one is built), with num_threads = 2. The number of allocation points of each scenario is printed
 * (docs/RELIABILITY.md quotes them). */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alexnet/alexnet.h"
#include "test_support.h"
#include "tiny_weights.h"

static alexnet_model *const untouched_model = (alexnet_model *)(uintptr_t)0x5a5a5a50;
static alexnet_context *const untouched_context = (alexnet_context *)(uintptr_t)0x5a5a5a60;

/* What a scenario run reports back to the driver. */
typedef struct run_state {
    test_counting_allocator *counter;
    alexnet_allocator allocator;
    size_t fail_nth;         /* 0: never fail */
    size_t armed_allocations; /* allocations made while armed (the operation under test) */
    size_t armed_at;
    const char *backend;
    char scratch[64];
    char message[512]; /* alexnet_last_error() right after the operation (later checks call the library) */
} run_state;

/* From here on the n-th allocation fails. */
static void arm(run_state *s)
{
    s->armed_at = s->counter->total_allocations;
    s->counter->fail_at = s->fail_nth != 0 ? s->armed_at + s->fail_nth : 0;
}

static void disarm(run_state *s)
{
    s->armed_allocations = s->counter->total_allocations - s->armed_at;
    s->counter->fail_at = 0;
    snprintf(s->message, sizeof s->message, "%s", alexnet_last_error());
}

/* The network: the tiny one with adaptive pooling, so that reshape can change the input size too. */
static alexnet_config scenario_config(void)
{
    alexnet_config c = tw_tiny_config();
    c.adaptive_pool_size = 1;
    return c;
}

static alexnet_model_options model_options(const alexnet_config *config, alexnet_allocator allocator)
{
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.config = config;
    options.allocator = allocator;
    return options;
}

static alexnet_model *setup_model(run_state *s, const alexnet_config *config)
{
    alexnet_model_options options = model_options(config, s->allocator);
    alexnet_model *model = NULL;
    ck_assert_msg(alexnet_model_create(&options, 11, &model) == ALEXNET_OK, "%s", alexnet_last_error());
    return model;
}

static alexnet_context_options context_options(const run_state *s, const char *const *captures)
{
    alexnet_context_options options;
    alexnet_context_options_init(&options);
    options.backend = s->backend;
    options.num_threads = strcmp(s->backend, "reference") == 0 ? 1 : 2;
    options.batch = 2;
    options.capture_layers = captures;
    return options;
}

static alexnet_context *setup_context(run_state *s, const alexnet_model *model, const char *const *captures)
{
    alexnet_context_options options = context_options(s, captures);
    alexnet_context *context = NULL;
    ck_assert_msg(alexnet_context_create(model, &options, &context) == ALEXNET_OK, "%s", alexnet_last_error());
    return context;
}

static void fill_input(float *x, size_t n, uint64_t seed) { test_fill_input(x, n, seed); }

/* ---- the scenarios: setup, arm, operation, disarm, checks, teardown; the operation's status comes back ---- */

static alexnet_status create_model(run_state *s)
{
    alexnet_config config = scenario_config();
    alexnet_model_options options = model_options(&config, s->allocator);
    alexnet_model *model = untouched_model;
    arm(s);
    alexnet_status status = alexnet_model_create(&options, 3, &model);
    disarm(s);
    if (status != ALEXNET_OK)
        ck_assert_ptr_eq(model, untouched_model);
    else
        alexnet_model_destroy(model);
    return status;
}

/* The tiny model's weights as the library saves them. */
static tw_bytes saved_weights(void)
{
    alexnet_config config = scenario_config();
    alexnet_model_options options = model_options(&config, (alexnet_allocator){0});
    alexnet_model *model = NULL;
    ck_assert_int_eq(alexnet_model_create(&options, 5, &model), ALEXNET_OK);
    size_t size = 0;
    ck_assert_int_eq(alexnet_model_save_memory(model, NULL, 0, &size), ALEXNET_OK);
    tw_bytes b = {malloc(size), size, size};
    ck_assert_ptr_nonnull(b.data);
    ck_assert_int_eq(alexnet_model_save_memory(model, b.data, size, &size), ALEXNET_OK);
    alexnet_model_destroy(model);
    return b;
}

static alexnet_status load_memory(run_state *s)
{
    tw_bytes b = saved_weights();
    alexnet_config config = scenario_config();
    alexnet_model_options options = model_options(&config, s->allocator);
    alexnet_model *model = untouched_model;
    arm(s);
    alexnet_status status = alexnet_model_load_memory(b.data, b.size, &options, &model);
    disarm(s);
    if (status != ALEXNET_OK)
        ck_assert_ptr_eq(model, untouched_model);
    else
        alexnet_model_destroy(model);
    free(b.data);
    return status;
}

static alexnet_status load_file(run_state *s)
{
    tw_bytes b = saved_weights();
    char path[128];
    snprintf(path, sizeof path, "%s/weights.safetensors", s->scratch);
    FILE *file = fopen(path, "wb");
    ck_assert_ptr_nonnull(file);
    ck_assert_uint_eq(fwrite(b.data, 1, b.size, file), b.size);
    ck_assert_int_eq(fclose(file), 0);
    free(b.data);
    alexnet_config config = scenario_config();
    alexnet_model_options options = model_options(&config, s->allocator);
    alexnet_model *model = untouched_model;
    arm(s);
    alexnet_status status = alexnet_model_load(path, &options, &model);
    disarm(s);
    if (status != ALEXNET_OK)
        ck_assert_ptr_eq(model, untouched_model);
    else
        alexnet_model_destroy(model);
    unlink(path);
    return status;
}

static alexnet_status create_context(run_state *s)
{
    alexnet_config config = scenario_config();
    alexnet_model *model = setup_model(s, &config);
    alexnet_context_options options = context_options(s, NULL);
    alexnet_context *context = untouched_context;
    arm(s);
    alexnet_status status = alexnet_context_create(model, &options, &context);
    disarm(s);
    if (status != ALEXNET_OK) {
        ck_assert_ptr_eq(context, untouched_context);
    } else {
        float input[3 * 8 * 8], logits[3];
        fill_input(input, 3 * 8 * 8, 1);
        ck_assert_int_eq(alexnet_infer(context, input, 1, logits, NULL), ALEXNET_OK);
        alexnet_context_destroy(context);
    }
    alexnet_model_destroy(model);
    return status;
}

/* The whole chain a user runs first, under one armed allocator: create, context, infer. */
static alexnet_status create_context_infer(run_state *s)
{
    alexnet_config config = scenario_config();
    alexnet_model_options options = model_options(&config, s->allocator);
    alexnet_context_options copts = context_options(s, NULL);
    alexnet_model *model = NULL;
    alexnet_context *context = NULL;
    float input[3 * 8 * 8], probabilities[3];
    fill_input(input, 3 * 8 * 8, 2);
    arm(s);
    alexnet_status status = alexnet_model_create(&options, 3, &model);
    if (status == ALEXNET_OK)
        status = alexnet_context_create(model, &copts, &context);
    if (status == ALEXNET_OK)
        status = alexnet_infer(context, input, 1, NULL, probabilities);
    disarm(s);
    alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    return status;
}

static alexnet_status infer(run_state *s)
{
    alexnet_config config = scenario_config();
    alexnet_model *model = setup_model(s, &config);
    alexnet_context *context = setup_context(s, model, NULL);
    float input[2 * 3 * 8 * 8], logits[6], probabilities[6];
    fill_input(input, 2 * 3 * 8 * 8, 3);
    arm(s);
    alexnet_status status = alexnet_infer(context, input, 2, logits, probabilities);
    disarm(s);
    alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    return status;
}

static alexnet_status classify_image(run_state *s)
{
    alexnet_config config = scenario_config();
    alexnet_model *model = setup_model(s, &config);
    alexnet_context *context = setup_context(s, model, NULL);
    enum { W = 20, H = 14 };
    static uint8_t pixels[H * W * 4];
    for (size_t i = 0; i < sizeof pixels; i++)
        pixels[i] = (uint8_t)(test_splitmix64(i) >> 56);
    alexnet_image images[2] = {{pixels, W, H, W * 4, ALEXNET_PIXEL_RGBA8},
                               {pixels, W, H - 2, W * 4, ALEXNET_PIXEL_BGRA8}};
    alexnet_image_options image_options;
    alexnet_image_options_init(&image_options);
    image_options.resize_size = 10;
    alexnet_class_score top[2 * 2];
    arm(s);
    alexnet_status status = alexnet_classify_images(context, images, 2, &image_options, 2, top);
    disarm(s);
    alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    return status;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL)
        count += entry->d_name[0] != '.';
    closedir(d);
    return count;
}

static alexnet_status save_file(run_state *s)
{
    alexnet_config config = scenario_config();
    alexnet_model *model = setup_model(s, &config);
    char path[128];
    snprintf(path, sizeof path, "%s/saved.safetensors", s->scratch);
    FILE *file = fopen(path, "wb");
    ck_assert_ptr_nonnull(file);
    fputs("previous content", file);
    ck_assert_int_eq(fclose(file), 0);
    arm(s);
    alexnet_status status = alexnet_model_save(model, path);
    disarm(s);
    /* Whatever happened, the directory holds exactly the target: no temporary file is left behind. */
    ck_assert_int_eq(count_entries(s->scratch), 1);
    file = fopen(path, "rb");
    ck_assert_ptr_nonnull(file);
    char head[17] = {0};
    size_t got = fread(head, 1, 16, file);
    fclose(file);
    if (status != ALEXNET_OK) {
        ck_assert_msg(got == 16 && memcmp(head, "previous content", 16) == 0, "a failed save changed the file");
    } else {
        alexnet_model_options options = model_options(&config, (alexnet_allocator){0});
        alexnet_model *loaded = NULL;
        ck_assert_int_eq(alexnet_model_load(path, &options, &loaded), ALEXNET_OK);
        alexnet_model_destroy(loaded);
    }
    unlink(path);
    alexnet_model_destroy(model);
    return status;
}

static alexnet_status save_memory(run_state *s)
{
    alexnet_config config = scenario_config();
    alexnet_model *model = setup_model(s, &config);
    size_t size = 0;
    arm(s);
    alexnet_status status = alexnet_model_save_memory(model, NULL, 0, &size);
    unsigned char *buffer = NULL;
    size_t written = 0;
    if (status == ALEXNET_OK) {
        buffer = malloc(size);
        ck_assert_ptr_nonnull(buffer);
        status = alexnet_model_save_memory(model, buffer, size, &written);
    }
    disarm(s);
    if (status == ALEXNET_OK)
        ck_assert_uint_eq(written, size);
    free(buffer);
    alexnet_model_destroy(model);
    return status;
}

static alexnet_status reshape(run_state *s)
{
    alexnet_config config = scenario_config();
    alexnet_model *model = setup_model(s, &config);
    alexnet_context *context = setup_context(s, model, NULL);
    float input[2 * 3 * 8 * 8], before[6], after[6];
    fill_input(input, 2 * 3 * 8 * 8, 4);
    ck_assert_int_eq(alexnet_infer(context, input, 2, before, NULL), ALEXNET_OK);
    arm(s);
    alexnet_status status = alexnet_context_reshape(context, 3, 11, 9);
    disarm(s);
    size_t batch = 0;
    uint32_t height = 0, width = 0;
    ck_assert_int_eq(alexnet_context_get_shape(context, &batch, &height, &width), ALEXNET_OK);
    if (status != ALEXNET_OK) {
        /* The previous plan is in force and gives the same bits. */
        ck_assert(batch == 2 && height == 8 && width == 8);
        ck_assert_int_eq(alexnet_infer(context, input, 2, after, NULL), ALEXNET_OK);
        ck_assert(memcmp(before, after, sizeof before) == 0);
    } else {
        ck_assert(batch == 3 && height == 11 && width == 9);
        float bigger[3 * 3 * 11 * 9], logits[9];
        fill_input(bigger, 3 * 3 * 11 * 9, 5);
        ck_assert_int_eq(alexnet_infer(context, bigger, 3, logits, NULL), ALEXNET_OK);
    }
    alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    return status;
}

static alexnet_status capture_layers(run_state *s)
{
    alexnet_config config = scenario_config();
    alexnet_model *model = setup_model(s, &config);
    const char *const captures[] = {"conv1", "norm2", "pool2", "fc3", "prob", NULL};
    alexnet_context_options options = context_options(s, captures);
    alexnet_context *context = untouched_context;
    float input[2 * 3 * 8 * 8], logits[6];
    fill_input(input, 2 * 3 * 8 * 8, 6);
    arm(s);
    alexnet_status status = alexnet_context_create(model, &options, &context);
    if (status == ALEXNET_OK)
        status = alexnet_infer(context, input, 2, logits, NULL);
    float layer[2 * 4 * 8 * 8];
    for (size_t i = 0; status == ALEXNET_OK && captures[i] != NULL; i++) {
        size_t elements = 0;
        status = alexnet_context_layer_size(context, captures[i], &elements);
        ck_assert_uint_le(2 * elements, sizeof layer / sizeof layer[0]);
        if (status == ALEXNET_OK)
            status = alexnet_layer_output(context, captures[i], layer, 2 * elements);
    }
    disarm(s);
    if (context == untouched_context)
        ck_assert_int_ne(status, ALEXNET_OK);
    else
        alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    return status;
}

enum { MUST_ALLOCATE, NONE, MAY_ALLOCATE };

typedef struct scenario {
    const char *name;
    alexnet_status (*run)(run_state *s);
    int on_context;         /* runs once per backend */
    int allocations;        /* MUST_ALLOCATE, NONE (the API promises no allocation), or MAY_ALLOCATE */
} scenario;

static const scenario scenarios[] = {
    {"create model from seed", create_model, 0, MUST_ALLOCATE},
    {"load from file", load_file, 0, MUST_ALLOCATE},
    {"load from memory", load_memory, 0, MUST_ALLOCATE},
    {"save to file", save_file, 0, MAY_ALLOCATE},
    {"save to memory", save_memory, 0, MAY_ALLOCATE},
    {"create context", create_context, 1, MUST_ALLOCATE},
    {"create + context + infer", create_context_infer, 1, MUST_ALLOCATE},
    {"infer", infer, 1, NONE},
    {"classify images", classify_image, 1, NONE},
    {"reshape", reshape, 1, MUST_ALLOCATE},
    {"capture layers", capture_layers, 1, MUST_ALLOCATE},
};
enum { SCENARIO_COUNT = (int)(sizeof scenarios / sizeof scenarios[0]) };
static const char *const backends[] = {"reference", "auto"};

static void sweep(const scenario *sc, const char *backend)
{
    test_counting_allocator counter;
    run_state s;
    memset(&s, 0, sizeof s);
    s.counter = &counter;
    s.backend = backend;
    snprintf(s.scratch, sizeof s.scratch, "/tmp/alexnet-oom-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(s.scratch));

    s.allocator = test_counting_allocator_make(&counter);
    alexnet_status status = sc->run(&s);
    ck_assert_msg(status == ALEXNET_OK, "%s [%s] without failures: %s", sc->name, backend, s.message);
    ck_assert_msg(counter.live_blocks == 0, "%s [%s]: %zu blocks leaked", sc->name, backend, counter.live_blocks);
    size_t total = s.armed_allocations;
    if (sc->allocations == NONE)
        ck_assert_msg(total == 0, "%s [%s] made %zu allocations; the API promises none", sc->name, backend, total);
    else if (sc->allocations == MUST_ALLOCATE)
        ck_assert_msg(total > 0, "%s [%s] made no allocation", sc->name, backend);

    size_t recovered = 0;
    for (size_t n = 1; n <= total; n++) {
        s.allocator = test_counting_allocator_make(&counter);
        s.fail_nth = n;
        status = sc->run(&s);
        ck_assert_msg(status == ALEXNET_E_OUT_OF_MEMORY || status == ALEXNET_OK,
                      "%s [%s], allocation %zu of %zu failing: status %d (%s), message: %s", sc->name, backend, n,
                      total, (int)status, alexnet_status_string(status), s.message);
        if (status == ALEXNET_E_OUT_OF_MEMORY)
            ck_assert_msg(s.message[0] != '\0', "%s [%s], allocation %zu: no message", sc->name, backend, n);
        else
            recovered++;
        ck_assert_msg(counter.live_blocks == 0, "%s [%s], allocation %zu of %zu failing: %zu blocks (%zu bytes) leaked",
                      sc->name, backend, n, total, counter.live_blocks, counter.live_bytes);
        ck_assert_msg(counter.size_mismatches == 0, "%s [%s], allocation %zu: free() with a wrong size", sc->name,
                      backend, n);
    }
    rmdir(s.scratch);
    printf("allocation failures: %-26s [%s]: %zu allocation points, every failure reported%s\n", sc->name,
           sc->on_context ? backend : "-", total, recovered ? " (some recovered)" : "");
}

START_TEST(every_allocation_failure)
{
    const scenario *sc = &scenarios[_i];
    if (!sc->on_context) {
        sweep(sc, "reference");
        return;
    }
    for (size_t b = 0; b < sizeof backends / sizeof backends[0]; b++)
        sweep(sc, backends[b]);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("alloc_failures");
    TCase *tc = tcase_create("alloc_failures");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, every_allocation_failure, 0, SCENARIO_COUNT);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    /* No fork: the per-scenario counts print in order, and a leak is not hidden by a child's exit. */
    srunner_set_fork_status(runner, CK_NOFORK);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? 0 : 1;
}
