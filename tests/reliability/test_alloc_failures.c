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
 * Context and trainer scenarios run on the "reference" backend and on whatever "auto" picks (a SIMD backend
 * with a thread pool when one is built), with num_threads = 2. The number of allocation points of each scenario
 * is printed (docs/RELIABILITY.md quotes them).
 *
 * The training scenarios (datasets, IDX loading, trainer creation, a step, a short training run with
 * augmentation and a validation set, evaluation, checkpoints, export) use the same tiny network at batch 4 on
 * 10 x 10 RGB images. Beyond the rules above: a failed append keeps the images already in the dataset; a
 * failed training run, evaluation, checkpoint save or load leaves the trainer usable, and a rerun without
 * failures reaches the bits of the run that never failed; a failed checkpoint load changes nothing (state and
 * weights); a failed checkpoint save leaves the old file and no temporary file. */
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
static alexnet_dataset *const untouched_dataset = (alexnet_dataset *)(uintptr_t)0x5a5a5a70;
static alexnet_trainer *const untouched_trainer = (alexnet_trainer *)(uintptr_t)0x5a5a5a80;

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
    int have_reference; /* the run without failures recorded reference_loss */
    double reference_loss; /* what a scenario's run without failures ends with (training scenarios) */
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

/* ---- training: datasets, trainer, checkpoints ---- */

enum {
    TRAIN_BATCH = 4,
    SIDE = 10, /* dataset images: larger than the 8 x 8 input, so crops move */
    TRAIN_IMAGES = 6,
    EVAL_IMAGES = 3,
    INPUT = 3 * 8 * 8,
};

/* count RGB images of SIDE x SIDE, pixels and labels from seed. */
static void dataset_pixels(uint8_t *pixels, uint32_t *labels, size_t count, uint64_t seed)
{
    for (size_t i = 0; i < count * SIDE * SIDE * 3; i++)
        pixels[i] = (uint8_t)(test_splitmix64(seed * 1000003u + i) >> 56);
    for (size_t i = 0; i < count; i++)
        labels[i] = (uint32_t)((i + seed) % 3);
}

static alexnet_dataset_options dataset_options(const run_state *s)
{
    alexnet_dataset_options options;
    alexnet_dataset_options_init(&options);
    options.channels = 3;
    options.height = options.width = SIDE;
    options.num_classes = 3;
    options.allocator = s->allocator;
    return options;
}

static alexnet_dataset *setup_dataset(run_state *s, size_t count, uint64_t seed)
{
    alexnet_dataset_options options = dataset_options(s);
    options.capacity = count;
    alexnet_dataset *dataset = NULL;
    ck_assert_msg(alexnet_dataset_create(&options, &dataset) == ALEXNET_OK, "%s", alexnet_last_error());
    uint8_t pixels[TRAIN_IMAGES * SIDE * SIDE * 3];
    uint32_t labels[TRAIN_IMAGES];
    ck_assert_uint_le(count, TRAIN_IMAGES);
    dataset_pixels(pixels, labels, count, seed);
    ck_assert_msg(alexnet_dataset_add(dataset, pixels, labels, count) == ALEXNET_OK, "%s", alexnet_last_error());
    return dataset;
}

/* Augmentation on: padding, random crops, mirroring, PCA lighting noise (the defaults' 0.1). */
static alexnet_augment_options augment_options(void)
{
    alexnet_augment_options options;
    alexnet_augment_options_init(&options);
    options.padding = 1;
    return options;
}

static alexnet_trainer_options trainer_options(const run_state *s, const alexnet_augment_options *augment)
{
    alexnet_trainer_options options;
    alexnet_trainer_options_init(&options);
    options.backend = s->backend;
    options.num_threads = strcmp(s->backend, "reference") == 0 ? 1 : 2;
    options.batch = TRAIN_BATCH;
    options.seed = 7;
    options.augment = augment; /* copied at creation */
    return options; /* allocator all-NULL: the model's, which is the scenario's */
}

static alexnet_trainer *setup_trainer(run_state *s, const alexnet_model *model)
{
    alexnet_augment_options augment = augment_options();
    alexnet_trainer_options options = trainer_options(s, &augment);
    alexnet_trainer *trainer = NULL;
    ck_assert_msg(alexnet_trainer_create(model, &options, &trainer) == ALEXNET_OK, "%s", alexnet_last_error());
    return trainer;
}

static alexnet_status one_step(alexnet_trainer *trainer, uint64_t seed, float *loss)
{
    float input[TRAIN_BATCH * INPUT];
    uint32_t labels[TRAIN_BATCH] = {0, 1, 2, 1};
    fill_input(input, TRAIN_BATCH * INPUT, seed);
    return alexnet_trainer_step(trainer, input, labels, TRAIN_BATCH, loss, NULL);
}

static alexnet_trainer_state trainer_state(const alexnet_trainer *trainer)
{
    alexnet_trainer_state state;
    ck_assert_int_eq(alexnet_trainer_get_state(trainer, &state), ALEXNET_OK);
    return state;
}

/* The trainer's centre-crop loss on dataset: a fingerprint of its weights (run unarmed). */
static double probe_loss(alexnet_trainer *trainer, const alexnet_dataset *dataset)
{
    alexnet_evaluation evaluation;
    ck_assert_msg(alexnet_trainer_evaluate(trainer, dataset, 0, &evaluation) == ALEXNET_OK, "%s",
                  alexnet_last_error());
    return evaluation.loss;
}

/* The run without failures records value; every later run must end with the same bits. */
static void same_as_reference(run_state *s, double value, const char *what)
{
    if (s->fail_nth == 0) {
        s->reference_loss = value;
        s->have_reference = 1;
        return;
    }
    ck_assert_msg(s->have_reference && memcmp(&value, &s->reference_loss, sizeof value) == 0,
                  "%s [%s], allocation %zu failing: %s ends with loss %.17g, the run without failures with %.17g",
                  what, s->backend, s->fail_nth, what, value, s->reference_loss);
}

/* Create a dataset, append images one at a time in two pixel formats and then packed, growing it beyond its
 * first reservation (16 images). */
static alexnet_status dataset_create_append(run_state *s)
{
    alexnet_dataset_options options = dataset_options(s);
    enum { PACKED = 20 };
    static uint8_t rgba[SIDE * SIDE * 4], packed[PACKED * SIDE * SIDE * 3];
    uint32_t labels[PACKED];
    for (size_t i = 0; i < sizeof rgba; i++)
        rgba[i] = (uint8_t)(test_splitmix64(77 + i) >> 56);
    for (size_t i = 0; i < sizeof packed; i++)
        packed[i] = (uint8_t)(test_splitmix64(99 + i) >> 56);
    for (size_t i = 0; i < PACKED; i++)
        labels[i] = (uint32_t)(i % 3);
    alexnet_image images[2] = {{rgba, SIDE, SIDE, SIDE * 4, ALEXNET_PIXEL_RGBA8},
                               {rgba, SIDE, SIDE, SIDE * 4, ALEXNET_PIXEL_BGRA8}};
    alexnet_dataset *dataset = untouched_dataset;
    size_t added = 0;
    arm(s);
    alexnet_status status = alexnet_dataset_create(&options, &dataset);
    for (size_t i = 0; status == ALEXNET_OK && i < 3; i++) {
        status = alexnet_dataset_add_image(dataset, &images[i % 2], (uint32_t)i);
        added += status == ALEXNET_OK;
    }
    if (status == ALEXNET_OK) {
        status = alexnet_dataset_add(dataset, packed, labels, PACKED);
        added += status == ALEXNET_OK ? PACKED : 0;
    }
    disarm(s);
    if (dataset == untouched_dataset) {
        ck_assert_int_ne(status, ALEXNET_OK);
        return status;
    }
    /* What was appended before the failure is all there, unchanged. */
    ck_assert_uint_eq(alexnet_dataset_count(dataset), added);
    for (size_t i = 0; i < added; i++) {
        alexnet_image image;
        uint32_t label = 99;
        ck_assert_int_eq(alexnet_dataset_get(dataset, i, &image, &label), ALEXNET_OK);
        for (size_t p = 0; p < SIDE * SIDE; p++) {
            uint8_t want[3];
            if (i < 3) {
                int bgr = i % 2 == 1;
                want[0] = rgba[4 * p + (bgr ? 2 : 0)];
                want[1] = rgba[4 * p + 1];
                want[2] = rgba[4 * p + (bgr ? 0 : 2)];
            } else {
                memcpy(want, packed + ((i - 3) * SIDE * SIDE + p) * 3, 3);
            }
            ck_assert(memcmp(image.pixels + 3 * p, want, 3) == 0);
        }
        ck_assert_uint_eq(label, i < 3 ? i : labels[i - 3]);
    }
    alexnet_dataset_destroy(dataset);
    return status;
}

/* A tiny IDX pair: 5 grey images of 10 x 7, labels 0..3. */
static void idx_pair(tw_bytes *images, tw_bytes *labels)
{
    static const uint8_t image_header[] = {0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 10, 0, 0, 0, 7};
    static const uint8_t label_header[] = {0, 0, 8, 1, 0, 0, 0, 5};
    memset(images, 0, sizeof *images);
    memset(labels, 0, sizeof *labels);
    tw_put(images, image_header, sizeof image_header);
    for (size_t i = 0; i < 5 * 10 * 7; i++) {
        uint8_t v = (uint8_t)(test_splitmix64(300 + i) >> 56);
        tw_put(images, &v, 1);
    }
    tw_put(labels, label_header, sizeof label_header);
    for (uint8_t i = 0; i < 5; i++) {
        uint8_t label = (uint8_t)(i % 4);
        tw_put(labels, &label, 1);
    }
}

static void check_idx_dataset(alexnet_dataset *dataset, const tw_bytes *images)
{
    ck_assert_uint_eq(alexnet_dataset_count(dataset), 5);
    for (size_t i = 0; i < 5; i++) {
        alexnet_image image;
        uint32_t label = 99;
        ck_assert_int_eq(alexnet_dataset_get(dataset, i, &image, &label), ALEXNET_OK);
        ck_assert(image.format == ALEXNET_PIXEL_GRAY8 && image.width == 7 && image.height == 10);
        ck_assert(memcmp(image.pixels, images->data + 16 + i * 70, 70) == 0);
        ck_assert_uint_eq(label, i % 4);
    }
}

static alexnet_status idx_load_memory(run_state *s)
{
    tw_bytes images, labels;
    idx_pair(&images, &labels);
    alexnet_dataset_options options;
    alexnet_dataset_options_init(&options);
    options.allocator = s->allocator;
    alexnet_dataset *dataset = untouched_dataset;
    arm(s);
    alexnet_status status =
        alexnet_dataset_load_idx_memory(images.data, images.size, labels.data, labels.size, &options, &dataset);
    disarm(s);
    if (status != ALEXNET_OK) {
        ck_assert_ptr_eq(dataset, untouched_dataset);
    } else {
        check_idx_dataset(dataset, &images);
        alexnet_dataset_destroy(dataset);
    }
    free(images.data);
    free(labels.data);
    return status;
}

static void write_file(const char *path, const tw_bytes *b)
{
    FILE *file = fopen(path, "wb");
    ck_assert_ptr_nonnull(file);
    ck_assert_uint_eq(fwrite(b->data, 1, b->size, file), b->size);
    ck_assert_int_eq(fclose(file), 0);
}

static alexnet_status idx_load_file(run_state *s)
{
    tw_bytes images, labels;
    idx_pair(&images, &labels);
    char images_path[128], labels_path[128];
    snprintf(images_path, sizeof images_path, "%s/images-idx3-ubyte", s->scratch);
    snprintf(labels_path, sizeof labels_path, "%s/labels-idx1-ubyte", s->scratch);
    write_file(images_path, &images);
    write_file(labels_path, &labels);
    alexnet_dataset_options options;
    alexnet_dataset_options_init(&options);
    options.allocator = s->allocator;
    alexnet_dataset *dataset = untouched_dataset;
    arm(s);
    alexnet_status status = alexnet_dataset_load_idx(images_path, labels_path, &options, &dataset);
    disarm(s);
    if (status != ALEXNET_OK) {
        ck_assert_ptr_eq(dataset, untouched_dataset);
    } else {
        check_idx_dataset(dataset, &images);
        alexnet_dataset_destroy(dataset);
    }
    unlink(images_path);
    unlink(labels_path);
    free(images.data);
    free(labels.data);
    return status;
}

static alexnet_status trainer_create(run_state *s)
{
    alexnet_config config = scenario_config();
    alexnet_model *model = setup_model(s, &config);
    alexnet_augment_options augment = augment_options();
    alexnet_trainer_options options = trainer_options(s, &augment);
    alexnet_trainer *trainer = untouched_trainer;
    arm(s);
    alexnet_status status = alexnet_trainer_create(model, &options, &trainer);
    disarm(s);
    if (status != ALEXNET_OK) {
        ck_assert_ptr_eq(trainer, untouched_trainer);
    } else {
        /* The model is only read at creation. */
        alexnet_model_destroy(model);
        model = NULL;
        float loss = 0.0f;
        ck_assert_int_eq(one_step(trainer, 8, &loss), ALEXNET_OK);
        same_as_reference(s, loss, "trainer create");
        alexnet_trainer_destroy(trainer);
    }
    alexnet_model_destroy(model);
    return status;
}

/* A step promises no allocation (everything it needs is allocated at creation). */
static alexnet_status trainer_step(run_state *s)
{
    alexnet_config config = scenario_config();
    alexnet_model *model = setup_model(s, &config);
    alexnet_trainer *trainer = setup_trainer(s, model);
    float input[TRAIN_BATCH * INPUT], loss = 0.0f, accuracy = 0.0f;
    uint32_t labels[TRAIN_BATCH] = {2, 0, 1, 2};
    fill_input(input, TRAIN_BATCH * INPUT, 9);
    arm(s);
    alexnet_status status = alexnet_trainer_step(trainer, input, labels, TRAIN_BATCH, &loss, &accuracy);
    disarm(s);
    if (status == ALEXNET_OK)
        ck_assert_uint_eq(trainer_state(trainer).step, 1);
    alexnet_trainer_destroy(trainer);
    alexnet_model_destroy(model);
    return status;
}

/* One epoch over 6 augmented images (two steps at batch 4) with a validation set evaluated at its end. */
static alexnet_status train_epoch(run_state *s)
{
    alexnet_config config = scenario_config();
    alexnet_model *model = setup_model(s, &config);
    alexnet_trainer *trainer = setup_trainer(s, model);
    alexnet_dataset *train = setup_dataset(s, TRAIN_IMAGES, 1);
    alexnet_dataset *validation = setup_dataset(s, EVAL_IMAGES, 2);
    arm(s);
    alexnet_status status = alexnet_trainer_train(trainer, train, validation, 1);
    disarm(s);
    if (status != ALEXNET_OK) {
        /* Consistent and usable: the rest of the epoch runs and ends where an unbroken run ends. */
        ck_assert_uint_eq(trainer_state(trainer).epoch, 0);
        ck_assert_msg(alexnet_trainer_train(trainer, train, validation, 1) == ALEXNET_OK, "%s", alexnet_last_error());
    }
    alexnet_trainer_state state = trainer_state(trainer);
    ck_assert(state.epoch == 1 && state.step == 2 && state.epoch_position == 0);
    same_as_reference(s, probe_loss(trainer, validation), "train");
    alexnet_dataset_destroy(validation);
    alexnet_dataset_destroy(train);
    alexnet_trainer_destroy(trainer);
    alexnet_model_destroy(model);
    return status;
}

/* Ten-crop and centre-crop evaluation (a ten-crop chunk spans several batches). */
static alexnet_status evaluate(run_state *s)
{
    alexnet_config config = scenario_config();
    alexnet_model *model = setup_model(s, &config);
    alexnet_trainer *trainer = setup_trainer(s, model);
    alexnet_dataset *dataset = setup_dataset(s, EVAL_IMAGES, 3);
    alexnet_evaluation ten, centre;
    memset(&ten, 0xA5, sizeof ten);
    memset(&centre, 0xA5, sizeof centre);
    alexnet_evaluation untouched = ten;
    arm(s);
    alexnet_status status = alexnet_trainer_evaluate(trainer, dataset, 1, &ten);
    if (status == ALEXNET_OK)
        status = alexnet_trainer_evaluate(trainer, dataset, 0, &centre);
    disarm(s);
    if (status != ALEXNET_OK) {
        ck_assert(memcmp(&centre, &untouched, sizeof centre) == 0);
    } else {
        ck_assert(ten.count == EVAL_IMAGES && centre.count == EVAL_IMAGES);
        same_as_reference(s, ten.loss + centre.loss, "evaluate");
    }
    ck_assert_uint_eq(trainer_state(trainer).step, 0);
    alexnet_dataset_destroy(dataset);
    alexnet_trainer_destroy(trainer);
    alexnet_model_destroy(model);
    return status;
}

static alexnet_status checkpoint_save(run_state *s)
{
    alexnet_config config = scenario_config();
    alexnet_model *model = setup_model(s, &config);
    alexnet_trainer *trainer = setup_trainer(s, model);
    ck_assert_int_eq(one_step(trainer, 10, NULL), ALEXNET_OK);
    char path[128];
    snprintf(path, sizeof path, "%s/trainer.ckpt", s->scratch);
    FILE *file = fopen(path, "wb");
    ck_assert_ptr_nonnull(file);
    fputs("previous content", file);
    ck_assert_int_eq(fclose(file), 0);
    arm(s);
    alexnet_status status = alexnet_trainer_save_checkpoint(trainer, path);
    disarm(s);
    /* Whatever happened, the directory holds exactly the target: no temporary file is left behind. */
    ck_assert_int_eq(count_entries(s->scratch), 1);
    if (status != ALEXNET_OK) {
        file = fopen(path, "rb");
        ck_assert_ptr_nonnull(file);
        char head[17] = {0};
        size_t got = fread(head, 1, 16, file);
        fclose(file);
        ck_assert_msg(got == 16 && memcmp(head, "previous content", 16) == 0, "a failed save changed the file");
        ck_assert_int_eq(alexnet_trainer_save_checkpoint(trainer, path), ALEXNET_OK);
    }
    /* The file resumes: a fresh trainer loading it is where this one is. */
    alexnet_trainer *resumed = setup_trainer(s, model);
    ck_assert_msg(alexnet_trainer_load_checkpoint(resumed, path) == ALEXNET_OK, "%s", alexnet_last_error());
    ck_assert_uint_eq(trainer_state(resumed).step, 1);
    float a = 0.0f, b = 0.0f;
    ck_assert_int_eq(one_step(trainer, 11, &a), ALEXNET_OK);
    ck_assert_int_eq(one_step(resumed, 11, &b), ALEXNET_OK);
    ck_assert(memcmp(&a, &b, sizeof a) == 0);
    alexnet_trainer_destroy(resumed);
    unlink(path);
    alexnet_trainer_destroy(trainer);
    alexnet_model_destroy(model);
    return status;
}

static int stop_after_first_step(void *user, const alexnet_train_progress *progress)
{
    (void)user;
    return !progress->end_of_epoch;
}

/* Resume: load a checkpoint taken after the first step of an epoch into a new trainer, then finish the epoch. */
static alexnet_status checkpoint_resume(run_state *s)
{
    alexnet_config config = scenario_config();
    alexnet_model *model = setup_model(s, &config);
    alexnet_dataset *train = setup_dataset(s, TRAIN_IMAGES, 4);
    alexnet_dataset *probe = setup_dataset(s, EVAL_IMAGES, 5);
    char path[128];
    snprintf(path, sizeof path, "%s/trainer.ckpt", s->scratch);
    {
        /* A run stopped after its first step (4 of the epoch's 6 images): the progress callback asks to stop. */
        alexnet_augment_options augment = augment_options();
        alexnet_trainer_options options = trainer_options(s, &augment);
        options.progress = stop_after_first_step;
        alexnet_trainer *writer = NULL;
        ck_assert_int_eq(alexnet_trainer_create(model, &options, &writer), ALEXNET_OK);
        ck_assert_int_eq(alexnet_trainer_train(writer, train, NULL, 1), ALEXNET_OK);
        alexnet_trainer_state state = trainer_state(writer);
        ck_assert(state.step == 1 && state.epoch == 0 && state.epoch_position == TRAIN_BATCH);
        ck_assert_int_eq(alexnet_trainer_save_checkpoint(writer, path), ALEXNET_OK);
        alexnet_trainer_destroy(writer);
    }
    alexnet_trainer *trainer = setup_trainer(s, model);
    double before = probe_loss(trainer, probe);
    arm(s);
    alexnet_status status = alexnet_trainer_load_checkpoint(trainer, path);
    int loaded = status == ALEXNET_OK;
    if (status == ALEXNET_OK)
        status = alexnet_trainer_train(trainer, train, NULL, 1);
    disarm(s);
    if (!loaded) {
        /* A failed load changes nothing: neither the state nor the weights. */
        ck_assert_uint_eq(trainer_state(trainer).step, 0);
        double after = probe_loss(trainer, probe);
        ck_assert_msg(memcmp(&before, &after, sizeof before) == 0, "a failed checkpoint load changed the weights");
        ck_assert_msg(alexnet_trainer_load_checkpoint(trainer, path) == ALEXNET_OK, "%s", alexnet_last_error());
    }
    if (status != ALEXNET_OK)
        ck_assert_msg(alexnet_trainer_train(trainer, train, NULL, 1) == ALEXNET_OK, "%s", alexnet_last_error());
    alexnet_trainer_state state = trainer_state(trainer);
    ck_assert(state.epoch == 1 && state.step == 2 && state.epoch_position == 0);
    same_as_reference(s, probe_loss(trainer, probe), "checkpoint resume");
    unlink(path);
    alexnet_trainer_destroy(trainer);
    alexnet_dataset_destroy(probe);
    alexnet_dataset_destroy(train);
    alexnet_model_destroy(model);
    return status;
}

/* Publish the trained weights as a new model, and use it. */
static alexnet_status export_model(run_state *s)
{
    alexnet_config config = scenario_config();
    alexnet_model *model = setup_model(s, &config);
    alexnet_trainer *trainer = setup_trainer(s, model);
    ck_assert_int_eq(one_step(trainer, 13, NULL), ALEXNET_OK);
    alexnet_model *exported = untouched_model;
    arm(s);
    alexnet_status status = alexnet_trainer_export_model(trainer, &exported);
    disarm(s);
    if (status != ALEXNET_OK) {
        ck_assert_ptr_eq(exported, untouched_model);
    } else {
        alexnet_trainer_destroy(trainer);
        trainer = NULL;
        alexnet_model_destroy(model);
        model = NULL;
        alexnet_context *context = setup_context(s, exported, NULL);
        float input[3 * 8 * 8], logits[3];
        fill_input(input, 3 * 8 * 8, 14);
        ck_assert_int_eq(alexnet_infer(context, input, 1, logits, NULL), ALEXNET_OK);
        same_as_reference(s, (double)logits[0] + logits[1] + logits[2], "export");
        alexnet_context_destroy(context);
        alexnet_model_destroy(exported);
    }
    alexnet_trainer_destroy(trainer);
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
    {"dataset create + append", dataset_create_append, 0, MUST_ALLOCATE},
    {"IDX load from memory", idx_load_memory, 0, MUST_ALLOCATE},
    {"IDX load from file", idx_load_file, 0, MUST_ALLOCATE},
    {"trainer create", trainer_create, 1, MUST_ALLOCATE},
    {"trainer step", trainer_step, 1, NONE},
    {"train 1 epoch (augmented)", train_epoch, 1, MUST_ALLOCATE},
    {"evaluate (10-crop, centre)", evaluate, 1, MUST_ALLOCATE},
    {"checkpoint save to file", checkpoint_save, 1, MUST_ALLOCATE},
    {"checkpoint load + resume", checkpoint_resume, 1, MUST_ALLOCATE},
    {"export model", export_model, 1, MUST_ALLOCATE},
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
