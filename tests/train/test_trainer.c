/* The trainer and dataset API end to end on a small AlexNet-family net (fast on the reference backend):
 * options and bad input, unsupported backends, learning, frozen layers and fine-tuning, checkpoints (a run
 * stopped after step k and resumed ends bit for bit where the uninterrupted run does), corrupt checkpoints,
 * evaluation, schedules, datasets, IDX and augmentation. Every test checks the counting allocator. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alexnet/alexnet.h"
#include "backend/backend.h"
#include "data/augment.h"
#include "data/dataset.h"
#include "net/train.h"
#include "test_check.h"
#include "test_support.h"

extern const an_backend an_reference_backend;

#define CLASSES 10
#define SIDE 32
#define IMAGE_FLOATS (3 * SIDE * SIDE)

/* Every feature of the paper's net (groups, LRN, overlapping pooling, Caffe's dropout placement, three FC
 * layers) at a size where a step takes milliseconds. */
static alexnet_config small_config(void)
{
    alexnet_config c;
    ck_assert_int_eq(alexnet_config_preset(ALEXNET_VARIANT_PAPER_2012, &c), ALEXNET_OK);
    c.variant = ALEXNET_VARIANT_CUSTOM;
    c.input_height = c.input_width = SIDE;
    uint32_t widths[5] = {8, 12, 16, 16, 8};
    for (int i = 0; i < 5; i++) {
        c.conv[i].out_channels = widths[i];
        c.conv[i].kernel_size = 3;
        c.conv[i].stride = 1;
        c.conv[i].padding = 1;
    }
    c.conv[0].kernel_size = 5;
    c.conv[0].stride = 2;
    c.conv[0].padding = 2;
    c.lrn_alpha = 0.05f; /* far from the identity, so LRN's gradient matters */
    c.hidden_fc[0] = 24;
    c.hidden_fc[1] = 20;
    c.num_classes = CLASSES;
    return c;
}

/* Two convolutions (the first with LRN, the second grouped) and three FC layers: deep, narrow nets with
 * PyTorch's default initialisation barely move in a few epochs (PyTorch's own training of small_config()
 * stalls the same way), so the tests that assert learning use this shallower member of the family. */
static alexnet_config shallow_config(void)
{
    alexnet_config c = small_config();
    c.conv_count = 2;
    c.conv[0] = (alexnet_conv_layer_config){16, 5, 2, 2, 1, 1, 1};
    c.conv[1] = (alexnet_conv_layer_config){32, 3, 1, 1, 2, 0, 1};
    memset(&c.conv[2], 0, sizeof c.conv[2] * 3);
    c.hidden_fc[0] = c.hidden_fc[1] = 64;
    return c;
}

static alexnet_model *make_model_of(const alexnet_config *config, alexnet_allocator allocator, uint64_t seed)
{
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.config = config;
    options.allocator = allocator;
    options.init = ALEXNET_INIT_KAIMING;
    alexnet_model *model = NULL;
    ck_assert_msg(alexnet_model_create(&options, seed, &model) == ALEXNET_OK, "%s", alexnet_last_error());
    return model;
}

static alexnet_model *make_shallow_model(alexnet_allocator allocator, uint64_t seed)
{
    alexnet_config config = shallow_config();
    return make_model_of(&config, allocator, seed);
}

static alexnet_model *make_model(alexnet_allocator allocator, uint64_t seed)
{
    alexnet_config config = small_config();
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.config = &config;
    options.allocator = allocator;
    options.init = ALEXNET_INIT_KAIMING;
    alexnet_model *model = NULL;
    ck_assert_msg(alexnet_model_create(&options, seed, &model) == ALEXNET_OK, "%s", alexnet_last_error());
    return model;
}

static alexnet_trainer_options base_options(alexnet_allocator allocator)
{
    alexnet_trainer_options o;
    alexnet_trainer_options_init(&o);
    o.batch = 8;
    o.learning_rate = 0.02f;
    o.seed = 77;
    o.allocator = allocator;
    o.backend = "reference";
    return o;
}

static alexnet_trainer *make_trainer(const alexnet_model *model, const alexnet_trainer_options *o)
{
    alexnet_trainer *trainer = NULL;
    ck_assert_msg(alexnet_trainer_create(model, o, &trainer) == ALEXNET_OK, "%s", alexnet_last_error());
    return trainer;
}

/* A dataset of `count` 3-channel images of side x side whose class shows in their colour (one channel lit
 * at one of four levels, plus noise), a property that survives the net's pooling, so there is something to
 * learn in a few epochs. */
static alexnet_dataset *make_dataset(alexnet_allocator allocator, size_t count, uint32_t side, uint64_t seed)
{
    alexnet_dataset_options o;
    alexnet_dataset_options_init(&o);
    o.channels = 3;
    o.height = o.width = side;
    o.num_classes = CLASSES;
    o.allocator = allocator;
    alexnet_dataset *dataset = NULL;
    ck_assert_msg(alexnet_dataset_create(&o, &dataset) == ALEXNET_OK, "%s", alexnet_last_error());
    size_t bytes = (size_t)side * side * 3;
    uint8_t *pixels = malloc(bytes);
    for (size_t i = 0; i < count; i++) {
        uint32_t label = (uint32_t)(test_splitmix64(seed + i) % CLASSES);
        for (size_t p = 0; p < bytes; p++) {
            uint32_t noise = (uint32_t)(test_splitmix64(seed * 1000003 + i * bytes + p) % 48);
            uint32_t lit = p % 3 == label % 3 ? 60 + 50 * (label / 3) : 10;
            pixels[p] = (uint8_t)(lit + noise);
        }
        ck_assert_int_eq(alexnet_dataset_add(dataset, pixels, &label, 1), ALEXNET_OK);
    }
    free(pixels);
    return dataset;
}

/* Bitwise equality of two models' weights; returns the first differing tensor or -1. */
static int first_different_tensor(const alexnet_model *a, const alexnet_model *b)
{
    ck_assert_uint_eq(alexnet_model_tensor_count(a), alexnet_model_tensor_count(b));
    for (size_t i = 0; i < alexnet_model_tensor_count(a); i++) {
        alexnet_tensor_info ia, ib;
        memset(&ia, 0, sizeof ia);
        memset(&ib, 0, sizeof ib);
        ia.struct_size = ib.struct_size = sizeof ia;
        ck_assert_int_eq(alexnet_model_tensor(a, i, &ia), ALEXNET_OK);
        ck_assert_int_eq(alexnet_model_tensor(b, i, &ib), ALEXNET_OK);
        if (ia.element_count != ib.element_count || memcmp(ia.data, ib.data, ia.element_count * sizeof(float)) != 0)
            return (int)i;
    }
    return -1;
}

static const float *tensor_data(const alexnet_model *model, size_t index, size_t *count)
{
    alexnet_tensor_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    ck_assert_int_eq(alexnet_model_tensor(model, index, &info), ALEXNET_OK);
    if (count != NULL)
        *count = info.element_count;
    return info.data;
}

static alexnet_model *export_model(const alexnet_trainer *trainer)
{
    alexnet_model *model = NULL;
    ck_assert_msg(alexnet_trainer_export_model(trainer, &model) == ALEXNET_OK, "%s", alexnet_last_error());
    return model;
}

static void fill_batch(float *input, uint32_t *labels, size_t batch, uint64_t seed)
{
    test_fill_input(input, batch * IMAGE_FLOATS, seed);
    for (size_t i = 0; i < batch; i++)
        labels[i] = (uint32_t)(test_splitmix64(seed + i) % CLASSES);
}

static char temp_path[256];
static const char *temp_file(const char *name)
{
    snprintf(temp_path, sizeof temp_path, "/tmp/alexnet-train-test-%ld-%s", (long)getpid(), name);
    return temp_path;
}

/* ---- options and argument checks ---- */

START_TEST(options_have_the_documented_defaults)
{
    alexnet_trainer_options o;
    alexnet_trainer_options_init(&o);
    ck_assert_uint_eq(o.struct_size, sizeof o);
    ck_assert(o.learning_rate == 0.01f && o.momentum == 0.9f && o.weight_decay == 5e-4f);
    ck_assert(o.dropout_rate < 0.0f && o.batch == 128 && o.lr_schedule == ALEXNET_LR_CONSTANT);
    ck_assert(o.lr_gamma == 0.1f && o.bias_lr_multiplier == 1.0f && o.bias_weight_decay_multiplier == 1.0f);
    ck_assert_str_eq(o.backend, "auto");
    alexnet_augment_options a;
    alexnet_augment_options_init(&a);
    ck_assert(a.struct_size == sizeof a && a.random_crop && a.mirror && a.pca_std == 0.1f && a.padding == 0);
    ck_assert(a.pca_eigenvalues[0] > a.pca_eigenvalues[1] && a.pca_eigenvalues[1] > a.pca_eigenvalues[2]);
    for (int i = 0; i < 3; i++) { /* orthonormal eigenvectors */
        for (int j = 0; j < 3; j++) {
            double dot = 0.0;
            for (int k = 0; k < 3; k++)
                dot += a.pca_eigenvectors[3 * i + k] * a.pca_eigenvectors[3 * j + k];
            ck_assert_msg(fabs(dot - (i == j)) < 2e-3, "eigenvectors %d . %d = %g", i, j, dot);
        }
    }
    alexnet_trainer_options_init(NULL);
    alexnet_augment_options_init(NULL);
    alexnet_dataset_options_init(NULL);
}
END_TEST

START_TEST(create_rejects_bad_options)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    alexnet_model *model = make_model(allocator, 1);
    alexnet_trainer *trainer = NULL;
    alexnet_trainer_options o = base_options(allocator);
    test_assert_fails_with(alexnet_trainer_create(NULL, &o, &trainer), ALEXNET_E_INVALID_ARGUMENT, "NULL");
    test_assert_fails_with(alexnet_trainer_create(model, &o, NULL), ALEXNET_E_INVALID_ARGUMENT, "NULL");
    o.struct_size = 8;
    test_assert_fails_with(alexnet_trainer_create(model, &o, &trainer), ALEXNET_E_INVALID_ARGUMENT, "struct_size");
    o = base_options(allocator);
    o.learning_rate = 0.0f;
    test_assert_fails_with(alexnet_trainer_create(model, &o, &trainer), ALEXNET_E_INVALID_ARGUMENT, "learning_rate");
    o = base_options(allocator);
    o.momentum = 1.0f;
    test_assert_fails_with(alexnet_trainer_create(model, &o, &trainer), ALEXNET_E_INVALID_ARGUMENT, "momentum");
    o = base_options(allocator);
    o.batch = 0;
    test_assert_fails_with(alexnet_trainer_create(model, &o, &trainer), ALEXNET_E_INVALID_ARGUMENT, "batch");
    o = base_options(allocator);
    o.dropout_rate = 1.0f;
    test_assert_fails_with(alexnet_trainer_create(model, &o, &trainer), ALEXNET_E_INVALID_ARGUMENT, "dropout_rate");
    o = base_options(allocator);
    o.lr_schedule = (alexnet_lr_schedule)7;
    test_assert_fails_with(alexnet_trainer_create(model, &o, &trainer), ALEXNET_E_INVALID_ARGUMENT, "lr_schedule");
    o = base_options(allocator);
    const char *unknown[] = {"conv1", "conv9", NULL};
    o.frozen_layers = unknown;
    test_assert_fails_with(alexnet_trainer_create(model, &o, &trainer), ALEXNET_E_NOT_FOUND, "conv9");
    const char *no_params[] = {"pool1", NULL};
    o.frozen_layers = no_params;
    test_assert_fails_with(alexnet_trainer_create(model, &o, &trainer), ALEXNET_E_INVALID_ARGUMENT, "no parameters");
    const char *everything[] = {"conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8", NULL};
    o.frozen_layers = everything;
    test_assert_fails_with(alexnet_trainer_create(model, &o, &trainer), ALEXNET_E_INVALID_ARGUMENT, "every layer");
    o = base_options(allocator);
    alexnet_layer_multiplier multiplier = {"norm1", 2.0f};
    o.layer_multipliers = &multiplier;
    o.layer_multiplier_count = 1;
    test_assert_fails_with(alexnet_trainer_create(model, &o, &trainer), ALEXNET_E_INVALID_ARGUMENT, "norm1");
    o = base_options(allocator);
    o.backend = "no-such-backend";
    test_assert_fails_with(alexnet_trainer_create(model, &o, &trainer), ALEXNET_E_NOT_FOUND, "no-such-backend");
    alexnet_augment_options augment;
    alexnet_augment_options_init(&augment);
    augment.std[1] = 0.0f;
    o = base_options(allocator);
    o.augment = &augment;
    test_assert_fails_with(alexnet_trainer_create(model, &o, &trainer), ALEXNET_E_INVALID_ARGUMENT, "std");
    ck_assert_ptr_null(trainer);
    alexnet_model_destroy(model);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(step_rejects_bad_input_and_changes_nothing)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    alexnet_model *model = make_model(allocator, 2);
    alexnet_trainer_options o = base_options(allocator);
    alexnet_trainer *trainer = make_trainer(model, &o);
    float *input = malloc(9 * IMAGE_FLOATS * sizeof *input);
    uint32_t labels[9];
    fill_batch(input, labels, 9, 5);
    float loss = -1.0f;
    test_assert_fails_with(alexnet_trainer_step(NULL, input, labels, 2, &loss, NULL),
                           ALEXNET_E_INVALID_ARGUMENT, "NULL");
    test_assert_fails_with(alexnet_trainer_step(trainer, NULL, labels, 2, &loss, NULL), ALEXNET_E_INVALID_ARGUMENT,
                       "NULL");
    test_assert_fails_with(alexnet_trainer_step(trainer, input, NULL, 2, &loss, NULL), ALEXNET_E_INVALID_ARGUMENT,
                       "NULL");
    test_assert_fails_with(alexnet_trainer_step(trainer, input, labels, 0, &loss, NULL), ALEXNET_E_SHAPE, "batch");
    test_assert_fails_with(alexnet_trainer_step(trainer, input, labels, 9, &loss, NULL), ALEXNET_E_SHAPE, "batch 9");
    labels[1] = CLASSES;
    test_assert_fails_with(alexnet_trainer_step(trainer, input, labels, 2, &loss, NULL), ALEXNET_E_INVALID_ARGUMENT,
                       "labels[1] = 10");
    ck_assert(loss == -1.0f); /* outputs untouched on failure */
    alexnet_trainer_state state;
    memset(&state, 0, sizeof state);
    ck_assert_int_eq(alexnet_trainer_get_state(trainer, &state), ALEXNET_OK);
    ck_assert_uint_eq(state.step, 0);
    alexnet_model *exported = export_model(trainer);
    ck_assert_int_eq(first_different_tensor(model, exported), -1); /* still the model's weights */
    alexnet_model_destroy(exported);
    labels[1] = 3;
    ck_assert_int_eq(alexnet_trainer_step(trainer, input, labels, 2, &loss, NULL), ALEXNET_OK);
    ck_assert(isfinite(loss) && loss > 0.0f);
    ck_assert_int_eq(alexnet_trainer_get_state(trainer, &state), ALEXNET_OK);
    ck_assert_uint_eq(state.step, 1);
    /* A learning rate that blows up: the non-finite loss is refused before any update. */
    alexnet_trainer_destroy(trainer);
    o.learning_rate = 1e6f;
    trainer = make_trainer(model, &o);
    alexnet_status status = ALEXNET_OK;
    for (int i = 0; i < 20 && status == ALEXNET_OK; i++)
        status = alexnet_trainer_step(trainer, input, labels, 8, &loss, NULL);
    test_assert_fails_with(status, ALEXNET_E_STATE, "no weight was changed");
    alexnet_trainer_destroy(trainer);
    free(input);
    alexnet_model_destroy(model);
    test_assert_no_leaks(&counter);
}
END_TEST

/* A backend whose training pointers are NULL is refused by name, never called. */
START_TEST(backend_without_training_ops_is_unsupported)
{
    an_backend partial = an_reference_backend;
    ck_assert_int_eq(an_trainer_check_backend(&partial), ALEXNET_OK);
    partial.name = "cpu-simd";
    partial.sgd_update = NULL;
    test_assert_fails_with(an_trainer_check_backend(&partial), ALEXNET_E_UNSUPPORTED, "\"cpu-simd\" cannot train");
    ck_assert(strstr(alexnet_last_error(), "sgd_update") != NULL);
    partial = an_reference_backend;
    partial.conv2d_backward_data = NULL;
    test_assert_fails_with(an_trainer_check_backend(&partial), ALEXNET_E_UNSUPPORTED, "conv2d_backward_data");
    /* Every registered backend either trains or says it cannot. */
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    alexnet_model *model = make_model(allocator, 3);
    for (size_t i = 0; i < alexnet_backend_count(); i++) {
        alexnet_backend_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        ck_assert_int_eq(alexnet_backend_get_info(i, &info), ALEXNET_OK);
        if (!info.available)
            continue;
        alexnet_trainer_options o = base_options(allocator);
        o.backend = info.name;
        alexnet_trainer *trainer = NULL;
        alexnet_status status = alexnet_trainer_create(model, &o, &trainer);
        ck_assert_msg(status == ALEXNET_OK || (status == ALEXNET_E_UNSUPPORTED &&
                                               strstr(alexnet_last_error(), info.name) != NULL),
                      "backend %s: %d %s", info.name, status, alexnet_last_error());
        printf("backend %-12s training: %s\n", info.name, status == ALEXNET_OK ? "yes" : alexnet_last_error());
        alexnet_trainer_destroy(trainer);
    }
    alexnet_model_destroy(model);
    test_assert_no_leaks(&counter);
}
END_TEST

/* ---- learning ---- */

START_TEST(loss_falls_on_a_fixed_batch)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    alexnet_model *model = make_shallow_model(allocator, 4);
    alexnet_trainer_options o = base_options(allocator);
    o.dropout_rate = 0.0f;
    alexnet_trainer *trainer = make_trainer(model, &o);
    float *input = malloc(8 * IMAGE_FLOATS * sizeof *input);
    uint32_t labels[8];
    fill_batch(input, labels, 8, 9);
    float first = 0.0f, loss = 0.0f, accuracy = 0.0f;
    for (int i = 0; i < 40; i++) {
        ck_assert_msg(alexnet_trainer_step(trainer, input, labels, 8, &loss, &accuracy) == ALEXNET_OK, "%s",
                      alexnet_last_error());
        if (i == 0)
            first = loss;
    }
    printf("fixed batch: loss %.4f -> %.4f, accuracy %.2f\n", first, loss, accuracy);
    ck_assert_msg(loss < 0.5f * first, "loss %g -> %g: the net does not learn", first, loss);
    alexnet_trainer_destroy(trainer);
    free(input);
    alexnet_model_destroy(model);
    test_assert_no_leaks(&counter);
}
END_TEST

/* Frozen convolutions keep their weights; the FC layers' update is exactly what it is without freezing
 * (the first step's FC gradients do not depend on the convolutions' gradients), so skipping the backward
 * pass below fc6 changes nothing above it. */
START_TEST(frozen_layers_do_not_move)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    alexnet_model *model = make_model(allocator, 5);
    alexnet_trainer_options o = base_options(allocator);
    alexnet_trainer *all = make_trainer(model, &o);
    const char *frozen[] = {"conv1", "conv2", "conv3", "conv4", "conv5", NULL};
    o.frozen_layers = frozen;
    alexnet_trainer *head = make_trainer(model, &o);
    float *input = malloc(8 * IMAGE_FLOATS * sizeof *input);
    uint32_t labels[8];
    fill_batch(input, labels, 8, 11);
    ck_assert_int_eq(alexnet_trainer_step(all, input, labels, 8, NULL, NULL), ALEXNET_OK);
    ck_assert_int_eq(alexnet_trainer_step(head, input, labels, 8, NULL, NULL), ALEXNET_OK);
    alexnet_model *a = export_model(all), *h = export_model(head);
    for (size_t i = 0; i < alexnet_model_tensor_count(model); i++) {
        size_t n;
        const float *w0 = tensor_data(model, i, &n), *wa = tensor_data(a, i, NULL), *wh = tensor_data(h, i, NULL);
        if (i < 10) {
            ck_assert_msg(memcmp(w0, wh, n * sizeof *w0) == 0, "frozen tensor %zu moved", i);
            ck_assert_msg(memcmp(w0, wa, n * sizeof *w0) != 0, "trainable tensor %zu did not move", i);
        } else {
            ck_assert_msg(memcmp(wa, wh, n * sizeof *wa) == 0, "FC tensor %zu differs with frozen convolutions", i);
            ck_assert_msg(memcmp(w0, wh, n * sizeof *w0) != 0, "FC tensor %zu did not move", i);
        }
    }
    alexnet_model_destroy(a);
    alexnet_model_destroy(h);
    alexnet_trainer_destroy(all);
    alexnet_trainer_destroy(head);
    free(input);
    alexnet_model_destroy(model);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(fine_tuning_to_new_classes)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    alexnet_model *model = make_model(allocator, 6);
    alexnet_trainer_options o = base_options(allocator);
    o.num_classes = 4;
    const char *frozen[] = {"conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", NULL};
    o.frozen_layers = frozen;
    alexnet_trainer *t1 = make_trainer(model, &o), *t2 = make_trainer(model, &o);
    o.seed = 78;
    alexnet_trainer *t3 = make_trainer(model, &o);
    alexnet_model *m1 = export_model(t1), *m2 = export_model(t2), *m3 = export_model(t3);
    ck_assert_uint_eq(alexnet_model_num_classes(m1), 4);
    ck_assert_int_eq(first_different_tensor(m1, m2), -1); /* the new layer is a function of the seed */
    ck_assert_int_eq(first_different_tensor(m1, m3), 14); /* another seed: another fc8.weight */
    for (size_t i = 0; i < 14; i++) {
        size_t count;
        const float *original = tensor_data(model, i, &count);
        ck_assert(memcmp(original, tensor_data(m1, i, NULL), count * sizeof(float)) == 0);
    }
    size_t n;
    const float *w = tensor_data(m1, 14, &n), *b = tensor_data(m1, 15, NULL);
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += (double)w[i] * w[i];
    ck_assert_msg(fabs(sqrt(sum / n) - 0.01) < 0.002, "new fc8 std %g, expected N(0, 0.01)", sqrt(sum / n));
    for (size_t i = 0; i < 4; i++)
        ck_assert(b[i] == 0.0f);
    /* Training moves only fc8, and labels are checked against the new class count. */
    float *input = malloc(8 * IMAGE_FLOATS * sizeof *input);
    uint32_t labels[8] = {0, 1, 2, 3, 0, 1, 2, 3};
    test_fill_input(input, 8 * IMAGE_FLOATS, 3);
    ck_assert_int_eq(alexnet_trainer_step(t1, input, labels, 8, NULL, NULL), ALEXNET_OK);
    labels[0] = 4;
    test_assert_fails_with(alexnet_trainer_step(t1, input, labels, 8, NULL, NULL),
                           ALEXNET_E_INVALID_ARGUMENT, "4 classes");
    alexnet_model *after = export_model(t1);
    ck_assert_int_eq(first_different_tensor(m1, after), 14);
    ck_assert(memcmp(tensor_data(m1, 15, NULL), tensor_data(after, 15, NULL), 4 * sizeof(float)) != 0);
    /* The exported model runs as any model does. */
    alexnet_context *context = NULL;
    ck_assert_int_eq(alexnet_context_create(after, NULL, &context), ALEXNET_OK);
    float probabilities[4];
    ck_assert_int_eq(alexnet_infer(context, input, 1, NULL, probabilities), ALEXNET_OK);
    ck_assert(fabsf(probabilities[0] + probabilities[1] + probabilities[2] + probabilities[3] - 1.0f) < 1e-5f);
    alexnet_context_destroy(context);
    free(input);
    alexnet_model_destroy(after);
    alexnet_model_destroy(m1);
    alexnet_model_destroy(m2);
    alexnet_model_destroy(m3);
    alexnet_trainer_destroy(t1);
    alexnet_trainer_destroy(t2);
    alexnet_trainer_destroy(t3);
    alexnet_model_destroy(model);
    test_assert_no_leaks(&counter);
}
END_TEST

/* ---- the epoch loop, progress and checkpoints ---- */

typedef struct progress_log {
    size_t steps, epochs;
    uint64_t stop_after_step; /* 0: never stop */
    float last_epoch_loss, last_validation_loss;
    float step_lr;
} progress_log;

static int record_progress(void *user, const alexnet_train_progress *p)
{
    progress_log *log = user;
    ck_assert_uint_eq(p->struct_size, sizeof *p);
    if (p->end_of_epoch) {
        log->epochs++;
        log->last_epoch_loss = p->loss;
        log->last_validation_loss = p->validation_loss;
        ck_assert(p->images_done == p->images_per_epoch);
        return 0;
    }
    log->steps++;
    log->step_lr = p->learning_rate;
    ck_assert(isfinite(p->loss) && p->accuracy >= 0.0f && p->accuracy <= 1.0f && p->images_done > 0);
    return log->stop_after_step != 0 && p->step == log->stop_after_step;
}

/* Everything random on: crops from larger images, mirrors, PCA lighting, dropout. */
static alexnet_trainer_options resume_options(alexnet_allocator allocator, alexnet_augment_options *augment,
                                              progress_log *log)
{
    alexnet_augment_options_init(augment);
    augment->padding = 2;
    alexnet_trainer_options o = base_options(allocator);
    o.augment = augment;
    o.progress = record_progress;
    o.progress_user = log;
    o.lr_schedule = ALEXNET_LR_STEP;
    o.lr_step_epochs = 1;
    o.lr_gamma = 0.5f;
    return o;
}

START_TEST(resumed_run_matches_uninterrupted_bitwise)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    alexnet_model *model = make_model(allocator, 7);
    alexnet_dataset *train = make_dataset(allocator, 37, 34, 100); /* 5 steps per epoch, the last one short */
    alexnet_augment_options augment;
    progress_log log = {0};
    alexnet_trainer_options o = resume_options(allocator, &augment, &log);

    alexnet_trainer *whole = make_trainer(model, &o);
    ck_assert_msg(alexnet_trainer_train(whole, train, NULL, 3) == ALEXNET_OK, "%s", alexnet_last_error());
    ck_assert_uint_eq(log.steps, 15);
    ck_assert_uint_eq(log.epochs, 3);
    alexnet_trainer_state state;
    memset(&state, 0, sizeof state);
    ck_assert_int_eq(alexnet_trainer_get_state(whole, &state), ALEXNET_OK);
    ck_assert(state.step == 15 && state.epoch == 3 && state.epoch_position == 0);
    ck_assert_msg(state.learning_rate == 0.02f * 0.125f, "STEP schedule: lr %g", state.learning_rate);
    alexnet_model *expected = export_model(whole);

    /* Stopped after step 7 (mid-epoch 2), checkpointed, destroyed; a new trainer with another seed in its
     * options (the checkpoint restores it) resumes. */
    const char *path = temp_file("resume.safetensors");
    const uint64_t stops[] = {7, 10};
    for (size_t s = 0; s < 2; s++) {
        progress_log first_log = {0};
        first_log.stop_after_step = stops[s];
        alexnet_trainer_options first_options = resume_options(allocator, &augment, &first_log);
        alexnet_trainer *first = make_trainer(model, &first_options);
        ck_assert_int_eq(alexnet_trainer_train(first, train, NULL, 3), ALEXNET_OK);
        ck_assert_uint_eq(first_log.steps, stops[s]);
        ck_assert_msg(alexnet_trainer_save_checkpoint(first, path) == ALEXNET_OK, "%s", alexnet_last_error());
        alexnet_trainer_destroy(first);

        progress_log second_log = {0};
        alexnet_trainer_options second_options = resume_options(allocator, &augment, &second_log);
        second_options.seed = 12345;
        alexnet_trainer *second = make_trainer(model, &second_options);
        ck_assert_msg(alexnet_trainer_load_checkpoint(second, path) == ALEXNET_OK, "%s", alexnet_last_error());
        ck_assert_int_eq(alexnet_trainer_get_state(second, &state), ALEXNET_OK);
        ck_assert_uint_eq(state.step, stops[s]);
        ck_assert_msg(alexnet_trainer_train(second, train, NULL, 3) == ALEXNET_OK, "%s", alexnet_last_error());
        ck_assert_uint_eq(second_log.steps, 15 - stops[s]);
        alexnet_model *resumed = export_model(second);
        int differs = first_different_tensor(expected, resumed);
        printf("resume after step %llu of 15: %s\n", (unsigned long long)stops[s],
               differs < 0 ? "bitwise identical weights" : "DIFFERENT weights");
        ck_assert_msg(differs < 0, "resumed after step %llu: tensor %d differs from the uninterrupted run",
                      (unsigned long long)stops[s], differs);
        ck_assert_int_eq(alexnet_trainer_get_state(second, &state), ALEXNET_OK);
        ck_assert(state.step == 15 && state.epoch == 3 && state.learning_rate == 0.02f * 0.125f);
        alexnet_model_destroy(resumed);
        alexnet_trainer_destroy(second);
    }
    /* A checkpoint's momentum matters: resuming the weights alone (export + new trainer) does not match. */
    unlink(path);
    alexnet_model_destroy(expected);
    alexnet_trainer_destroy(whole);
    alexnet_dataset_destroy(train);
    alexnet_model_destroy(model);
    test_assert_no_leaks(&counter);
}
END_TEST

static void write_bytes(const char *path, const void *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, size, f), size);
    fclose(f);
}

static void *read_bytes(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    void *data = malloc(*size);
    ck_assert_uint_eq(fread(data, 1, *size, f), *size);
    fclose(f);
    return data;
}

/* Replace the first occurrence of `from` by `to` (same length) in a file. */
static void patch_file(const char *path, const char *from, const char *to)
{
    size_t size;
    char *data = read_bytes(path, &size);
    size_t n = strlen(from);
    ck_assert_uint_eq(n, strlen(to));
    char *at = NULL;
    for (size_t i = 0; i + n <= size && at == NULL; i++)
        if (memcmp(data + i, from, n) == 0)
            at = data + i;
    ck_assert_msg(at != NULL, "\"%s\" not in the checkpoint", from);
    memcpy(at, to, n);
    write_bytes(path, data, size);
    free(data);
}

START_TEST(bad_checkpoints_are_refused_and_change_nothing)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    alexnet_model *model = make_model(allocator, 8);
    alexnet_trainer_options o = base_options(allocator);
    alexnet_trainer *trainer = make_trainer(model, &o);
    float *input = malloc(8 * IMAGE_FLOATS * sizeof *input);
    uint32_t labels[8];
    fill_batch(input, labels, 8, 21);
    ck_assert_int_eq(alexnet_trainer_step(trainer, input, labels, 8, NULL, NULL), ALEXNET_OK);
    char good[256], bad[256];
    snprintf(good, sizeof good, "%s", temp_file("good.safetensors"));
    snprintf(bad, sizeof bad, "%s", temp_file("bad.safetensors"));
    ck_assert_int_eq(alexnet_trainer_save_checkpoint(trainer, good), ALEXNET_OK);
    size_t size;
    unsigned char *bytes = read_bytes(good, &size);

    /* A fresh trainer to load into: whatever fails, it must stay as it is. */
    alexnet_trainer *target = make_trainer(model, &o);
    alexnet_model *before = export_model(target);

    test_assert_fails_with(alexnet_trainer_load_checkpoint(target, NULL), ALEXNET_E_INVALID_ARGUMENT, "NULL");
    test_assert_fails_with(alexnet_trainer_load_checkpoint(target, temp_file("missing")), ALEXNET_E_IO, "missing");
    write_bytes(bad, "garbage, not safetensors", 24);
    ck_assert_int_eq(alexnet_trainer_load_checkpoint(target, bad), ALEXNET_E_FORMAT);
    write_bytes(bad, bytes, size / 2); /* truncated */
    ck_assert_int_ne(alexnet_trainer_load_checkpoint(target, bad), ALEXNET_OK);
    ck_assert_int_eq(alexnet_model_save(model, bad), ALEXNET_OK); /* a model, not a checkpoint */
    test_assert_fails_with(alexnet_trainer_load_checkpoint(target, bad),
                           ALEXNET_E_FORMAT, "not a libalexnet checkpoint");
    write_bytes(bad, bytes, size);
    patch_file(bad, "\"step\":\"1\"", "\"step\":\"x\"");
    test_assert_fails_with(alexnet_trainer_load_checkpoint(target, bad), ALEXNET_E_FORMAT, "step");
    write_bytes(bad, bytes, size);
    patch_file(bad, "\"checkpoint_version\":\"1\"", "\"checkpoint_version\":\"9\"");
    test_assert_fails_with(alexnet_trainer_load_checkpoint(target, bad), ALEXNET_E_UNSUPPORTED, "version");
    /* A NaN weight. */
    write_bytes(bad, bytes, size);
    {
        unsigned char *copy = read_bytes(bad, &size);
        uint64_t header;
        memcpy(&header, copy, 8);
        memset(copy + 8 + header, 0xFF, 4); /* the first float of the data: NaN */
        write_bytes(bad, copy, size);
        free(copy);
    }
    test_assert_fails_with(alexnet_trainer_load_checkpoint(target, bad), ALEXNET_E_FORMAT, "not finite");
    /* Another architecture: a checkpoint of a 4-class trainer, or with other frozen layers. */
    alexnet_trainer_options other = o;
    other.num_classes = 4;
    alexnet_trainer *four = make_trainer(model, &other);
    ck_assert_int_eq(alexnet_trainer_save_checkpoint(four, bad), ALEXNET_OK);
    test_assert_fails_with(alexnet_trainer_load_checkpoint(target, bad), ALEXNET_E_SHAPE, "4 classes");
    alexnet_trainer_destroy(four);
    const char *frozen[] = {"conv1", NULL};
    other = o;
    other.frozen_layers = frozen;
    alexnet_trainer *partial = make_trainer(model, &other);
    test_assert_fails_with(alexnet_trainer_load_checkpoint(partial, good), ALEXNET_E_SHAPE, "tensors");
    ck_assert_int_eq(alexnet_trainer_save_checkpoint(partial, bad), ALEXNET_OK);
    test_assert_fails_with(alexnet_trainer_load_checkpoint(target, bad), ALEXNET_E_SHAPE, "momentum.conv1.weight");
    alexnet_trainer_destroy(partial);

    alexnet_model *after = export_model(target);
    ck_assert_int_eq(first_different_tensor(before, after), -1);
    alexnet_trainer_state state;
    memset(&state, 0, sizeof state);
    ck_assert_int_eq(alexnet_trainer_get_state(target, &state), ALEXNET_OK);
    ck_assert_uint_eq(state.step, 0);
    /* And the good one loads. */
    ck_assert_int_eq(alexnet_trainer_load_checkpoint(target, good), ALEXNET_OK);
    alexnet_model *loaded = export_model(target), *source = export_model(trainer);
    ck_assert_int_eq(first_different_tensor(loaded, source), -1);
    alexnet_model_destroy(loaded);
    alexnet_model_destroy(source);
    alexnet_model_destroy(before);
    alexnet_model_destroy(after);
    unlink(good);
    unlink(bad);
    free(bytes);
    free(input);
    alexnet_trainer_destroy(target);
    alexnet_trainer_destroy(trainer);
    alexnet_model_destroy(model);
    test_assert_no_leaks(&counter);
}
END_TEST

/* Every allocation of create + train + checkpoint + export fails in turn: each failure is reported and
 * nothing leaks. */
static alexnet_status full_cycle(const alexnet_model *model, alexnet_allocator allocator,
                                 const alexnet_dataset *data)
{
    alexnet_trainer_options o = base_options(allocator);
    alexnet_trainer *trainer = NULL;
    alexnet_status status = alexnet_trainer_create(model, &o, &trainer);
    if (status != ALEXNET_OK)
        return status;
    status = alexnet_trainer_train(trainer, data, data, 1);
    alexnet_evaluation evaluation;
    if (status == ALEXNET_OK)
        status = alexnet_trainer_evaluate(trainer, data, 1, &evaluation);
    const char *path = temp_file("cycle.safetensors");
    if (status == ALEXNET_OK)
        status = alexnet_trainer_save_checkpoint(trainer, path);
    if (status == ALEXNET_OK)
        status = alexnet_trainer_load_checkpoint(trainer, path);
    alexnet_model *exported = NULL;
    if (status == ALEXNET_OK)
        status = alexnet_trainer_export_model(trainer, &exported);
    alexnet_model_destroy(exported);
    alexnet_trainer_destroy(trainer);
    unlink(path);
    return status;
}

START_TEST(allocation_failures_are_reported_without_leaks)
{
    test_counting_allocator model_counter;
    alexnet_allocator model_allocator = test_counting_allocator_make(&model_counter);
    alexnet_model *model = make_model(model_allocator, 9);
    alexnet_dataset *data = make_dataset(model_allocator, 12, 32, 5);
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    ck_assert_msg(full_cycle(model, allocator, data) == ALEXNET_OK, "%s", alexnet_last_error());
    size_t total = counter.total_allocations, tolerated = 0;
    test_assert_no_leaks(&counter);
    for (size_t k = 1; k <= total; k++) {
        allocator = test_counting_allocator_make(&counter);
        counter.fail_at = k;
        alexnet_status status = full_cycle(model, allocator, data);
        /* A few allocations are best-effort (the checkpoint writer's directory fsync after the rename): those
         * may fail without failing the call. */
        ck_assert_msg(status == ALEXNET_E_OUT_OF_MEMORY || status == ALEXNET_OK,
                      "allocation %zu of %zu failed, status %d (%s)", k, total, status, alexnet_last_error());
        ck_assert_msg(status == ALEXNET_OK || alexnet_last_error()[0] != '\0', "allocation %zu: no message", k);
        tolerated += status == ALEXNET_OK;
        test_assert_no_leaks(&counter);
    }
    printf("allocation failures: all %zu allocations of create/train/evaluate/checkpoint/export checked (%zu "
           "best-effort)\n", total, tolerated);
    ck_assert_uint_le(tolerated, 2);
    alexnet_dataset_destroy(data);
    alexnet_model_destroy(model);
    test_assert_no_leaks(&model_counter);
}
END_TEST

/* ---- evaluation, schedules, progress ---- */

START_TEST(evaluation_is_consistent)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    alexnet_model *model = make_model(allocator, 10);
    alexnet_augment_options augment;
    alexnet_augment_options_init(&augment);
    augment.padding = 1;
    alexnet_trainer_options o = base_options(allocator);
    o.augment = &augment;
    o.batch = 6; /* fewer than ten crops: an image's crops span two batches */
    alexnet_trainer *trainer = make_trainer(model, &o);
    alexnet_dataset *data = make_dataset(allocator, 13, 32, 31);
    alexnet_evaluation single, again, ten;
    ck_assert_int_eq(alexnet_trainer_evaluate(trainer, data, 0, &single), ALEXNET_OK);
    ck_assert_int_eq(alexnet_trainer_evaluate(trainer, data, 0, &again), ALEXNET_OK);
    ck_assert_int_eq(alexnet_trainer_evaluate(trainer, data, 1, &ten), ALEXNET_OK);
    ck_assert(single.count == 13 && single.loss == again.loss && single.top1_error == again.top1_error);
    ck_assert(single.top5_error <= single.top1_error && ten.top5_error <= ten.top1_error);
    ck_assert(isfinite(ten.loss) && ten.loss != single.loss);

    /* The centre crop through an exported model and a context gives the same loss. */
    alexnet_model *exported = export_model(trainer);
    alexnet_context_options co;
    alexnet_context_options_init(&co);
    co.batch = 13;
    alexnet_context *context = NULL;
    ck_assert_int_eq(alexnet_context_create(exported, &co, &context), ALEXNET_OK);
    float *input = malloc(13 * IMAGE_FLOATS * sizeof *input), probabilities[13 * CLASSES];
    for (size_t i = 0; i < 13; i++) {
        an_crop crop;
        an_augment_eval_crop(&augment, data, SIDE, SIDE, 0, &crop);
        an_augment_render(data, i, &augment, SIDE, SIDE, &crop, input + i * IMAGE_FLOATS);
    }
    ck_assert_int_eq(alexnet_infer(context, input, 13, NULL, probabilities), ALEXNET_OK);
    double loss = 0.0;
    for (size_t i = 0; i < 13; i++) {
        uint32_t label;
        ck_assert_int_eq(alexnet_dataset_get(data, i, NULL, &label), ALEXNET_OK);
        loss -= log(probabilities[i * CLASSES + label]) / 13.0;
    }
    ck_assert_msg(fabs(loss - single.loss) < 1e-5, "context loss %.8f, trainer %.8f", loss, single.loss);
    alexnet_context_destroy(context);
    alexnet_model_destroy(exported);
    free(input);

    /* Wrong datasets. */
    alexnet_dataset *small = make_dataset(allocator, 2, 20, 1);
    test_assert_fails_with(alexnet_trainer_evaluate(trainer, small, 0, &single), ALEXNET_E_SHAPE, "smaller");
    test_assert_fails_with(alexnet_trainer_train(trainer, small, NULL, 1), ALEXNET_E_SHAPE, "padding");
    alexnet_dataset_options grey;
    alexnet_dataset_options_init(&grey);
    grey.channels = 1;
    grey.height = grey.width = 32;
    grey.num_classes = 2;
    grey.allocator = allocator;
    alexnet_dataset *empty = NULL;
    ck_assert_int_eq(alexnet_dataset_create(&grey, &empty), ALEXNET_OK);
    test_assert_fails_with(alexnet_trainer_train(trainer, empty, NULL, 1), ALEXNET_E_INVALID_ARGUMENT, "empty");
    uint8_t pixels[32 * 32] = {0};
    uint32_t label = 1;
    ck_assert_int_eq(alexnet_dataset_add(empty, pixels, &label, 1), ALEXNET_OK);
    test_assert_fails_with(alexnet_trainer_evaluate(trainer, empty, 0, &single), ALEXNET_E_SHAPE, "channels");
    alexnet_dataset_destroy(empty);
    alexnet_dataset_destroy(small);
    alexnet_dataset_destroy(data);
    alexnet_trainer_destroy(trainer);
    alexnet_model_destroy(model);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(plateau_schedule_divides_after_patience)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    alexnet_model *model = make_model(allocator, 11);
    alexnet_trainer_options o = base_options(allocator);
    o.lr_schedule = ALEXNET_LR_PLATEAU;
    o.lr_patience = 2;
    alexnet_trainer *t = make_trainer(model, &o);
    const double losses[] = {2.0, 1.5, 1.6, 1.5, 1.4, 1.45, 1.41, 1.42};
    const float once = 0.02f * 0.1f, twice = once * 0.1f; /* the schedule multiplies in float, step by step */
    const float expected[] = {0.02f, 0.02f, 0.02f, once, once, once, twice, twice};
    for (size_t i = 0; i < sizeof losses / sizeof losses[0]; i++) {
        t->state.epoch++;
        an_trainer_schedule(t, losses[i]);
        ck_assert_msg(t->state.learning_rate == expected[i], "epoch %zu: lr %g, expected %g", i,
                      t->state.learning_rate, expected[i]);
    }
    alexnet_trainer_destroy(t);
    alexnet_model_destroy(model);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(training_reports_progress_and_learns)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    alexnet_model *model = make_shallow_model(allocator, 12);
    alexnet_dataset *train = make_dataset(allocator, 96, 34, 500), *validation = make_dataset(allocator, 32, 34, 900);
    alexnet_augment_options augment;
    alexnet_augment_options_init(&augment);
    augment.pca_std = 0.0f;
    progress_log log = {0};
    alexnet_trainer_options o = base_options(allocator);
    o.augment = &augment;
    o.learning_rate = 0.02f;
    o.dropout_rate = 0.0f;
    o.progress = record_progress;
    o.progress_user = &log;
    alexnet_trainer *trainer = make_trainer(model, &o);
    alexnet_evaluation start, end;
    ck_assert_int_eq(alexnet_trainer_evaluate(trainer, validation, 0, &start), ALEXNET_OK);
    ck_assert_msg(alexnet_trainer_train(trainer, train, validation, 6) == ALEXNET_OK, "%s", alexnet_last_error());
    ck_assert_int_eq(alexnet_trainer_evaluate(trainer, validation, 0, &end), ALEXNET_OK);
    ck_assert_uint_eq(log.steps, 6 * 12);
    ck_assert_uint_eq(log.epochs, 6);
    ck_assert(log.step_lr == 0.02f && isfinite(log.last_validation_loss));
    ck_assert_msg(fabs(log.last_validation_loss - end.loss) < 1e-6, "epoch event %g vs evaluate %g",
                  log.last_validation_loss, end.loss);
    printf("shallow net, 6 epochs of 96 images: validation loss %.3f -> %.3f, top-1 error %.2f -> %.2f\n", start.loss,
           end.loss, start.top1_error, end.top1_error);
    ck_assert_msg(end.loss < 0.8 * start.loss && end.top1_error < 0.6, "validation loss %g -> %g, error %g",
                  start.loss, end.loss, end.top1_error);
    /* Asking for epochs already done does nothing. */
    ck_assert_int_eq(alexnet_trainer_train(trainer, train, validation, 6), ALEXNET_OK);
    ck_assert_uint_eq(log.steps, 6 * 12);
    alexnet_trainer_destroy(trainer);
    alexnet_dataset_destroy(train);
    alexnet_dataset_destroy(validation);
    alexnet_model_destroy(model);
    test_assert_no_leaks(&counter);
}
END_TEST

/* ---- datasets, IDX, augmentation ---- */

START_TEST(datasets_convert_and_describe_images)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    alexnet_dataset_options o;
    alexnet_dataset_options_init(&o);
    o.channels = 3;
    o.height = 2;
    o.width = 3;
    o.num_classes = 4;
    o.allocator = allocator;
    alexnet_dataset *d = NULL;
    ck_assert_int_eq(alexnet_dataset_create(&o, &d), ALEXNET_OK);
    /* BGRA with a padded stride becomes RGB. */
    uint8_t bgra[2 * 16];
    for (int i = 0; i < 32; i++)
        bgra[i] = (uint8_t)i;
    alexnet_image image = {bgra, 3, 2, 16, ALEXNET_PIXEL_BGRA8};
    ck_assert_int_eq(alexnet_dataset_add_image(d, &image, 2), ALEXNET_OK);
    alexnet_image view;
    uint32_t label = 0;
    ck_assert_int_eq(alexnet_dataset_get(d, 0, &view, &label), ALEXNET_OK);
    ck_assert(label == 2 && view.format == ALEXNET_PIXEL_RGB8 && view.row_stride_bytes == 9);
    ck_assert(view.pixels[0] == 2 && view.pixels[1] == 1 && view.pixels[2] == 0); /* first pixel B,G,R = 0,1,2 */
    ck_assert(view.pixels[9] == 18 && view.pixels[11] == 16);                     /* second row */
    test_assert_fails_with(alexnet_dataset_add_image(d, &image, 4), ALEXNET_E_INVALID_ARGUMENT, "label 4");
    image.width = 4;
    test_assert_fails_with(alexnet_dataset_add_image(d, &image, 1), ALEXNET_E_SHAPE, "4 x 2");
    test_assert_fails_with(alexnet_dataset_get(d, 1, &view, NULL), ALEXNET_E_NOT_FOUND, "index 1");
    /* Many appends (growth), a subset, statistics. */
    uint8_t pixels[18];
    for (uint32_t i = 0; i < 100; i++) {
        for (int p = 0; p < 18; p++)
            pixels[p] = (uint8_t)(p % 3 == 0 ? 255 : (p % 3 == 1 ? i : 0));
        uint32_t l = i % 4;
        ck_assert_int_eq(alexnet_dataset_add(d, pixels, &l, 1), ALEXNET_OK);
    }
    ck_assert_uint_eq(alexnet_dataset_count(d), 101);
    alexnet_dataset *sub = NULL;
    ck_assert_int_eq(alexnet_dataset_subset(d, 1, 100, &sub), ALEXNET_OK);
    test_assert_fails_with(alexnet_dataset_subset(d, 50, 52, &sub), ALEXNET_E_INVALID_ARGUMENT, "outside");
    float mean[3], std[3], values[3], vectors[9];
    ck_assert_int_eq(alexnet_dataset_channel_stats(sub, mean, std), ALEXNET_OK);
    ck_assert(fabsf(mean[0] - 1.0f) < 1e-6f && fabsf(mean[1] - 49.5f / 255.0f) < 1e-5f && mean[2] == 0.0f);
    ck_assert(fabsf(std[1] - 28.866f / 255.0f) < 1e-3f); /* the standard deviation of 0..99 */
    /* Only green varies: the first component is green with its variance. */
    ck_assert_int_eq(alexnet_dataset_pca(sub, values, vectors), ALEXNET_OK);
    ck_assert(fabsf(values[0] - std[1] * std[1]) < 1e-6f && values[1] < 1e-9f && fabsf(fabsf(vectors[1]) - 1.0f) < 1e-6f);
    alexnet_dataset_destroy(sub);
    alexnet_dataset_destroy(d);
    /* Options are checked. */
    o.channels = 2;
    test_assert_fails_with(alexnet_dataset_create(&o, &d), ALEXNET_E_INVALID_ARGUMENT, "channels");
    o.channels = 1;
    o.num_classes = 0;
    test_assert_fails_with(alexnet_dataset_create(&o, &d), ALEXNET_E_INVALID_ARGUMENT, "num_classes");
    test_assert_no_leaks(&counter);
}
END_TEST

/* An IDX pair in memory: n images of rows x cols and their labels. */
static size_t make_idx(uint8_t *images, uint8_t *labels, uint32_t n, uint32_t rows, uint32_t cols)
{
    const uint8_t image_header[16] = {0, 0, 8, 3, 0, 0, 0, (uint8_t)n, 0, 0, 0, (uint8_t)rows, 0, 0, 0, (uint8_t)cols};
    const uint8_t label_header[8] = {0, 0, 8, 1, 0, 0, 0, (uint8_t)n};
    memcpy(images, image_header, 16);
    memcpy(labels, label_header, 8);
    for (uint32_t i = 0; i < n * rows * cols; i++)
        images[16 + i] = (uint8_t)(i * 7);
    for (uint32_t i = 0; i < n; i++)
        labels[8 + i] = (uint8_t)(i % 3);
    return 16 + (size_t)n * rows * cols;
}

START_TEST(idx_loader_validates_everything)
{
    test_counting_allocator counter;
    alexnet_dataset_options o;
    alexnet_dataset_options_init(&o);
    o.allocator = test_counting_allocator_make(&counter);
    uint8_t images[16 + 5 * 4 * 3], labels[8 + 5];
    size_t images_size = make_idx(images, labels, 5, 4, 3), labels_size = 13;
    alexnet_dataset *d = NULL;
    ck_assert_int_eq(alexnet_dataset_load_idx_memory(images, images_size, labels, labels_size, &o, &d), ALEXNET_OK);
    ck_assert_uint_eq(alexnet_dataset_count(d), 5);
    alexnet_image view;
    uint32_t label;
    ck_assert_int_eq(alexnet_dataset_get(d, 4, &view, &label), ALEXNET_OK);
    ck_assert(label == 1 && view.width == 3 && view.height == 4 && view.format == ALEXNET_PIXEL_GRAY8);
    ck_assert(view.pixels[0] == (uint8_t)(48 * 7));
    ck_assert_uint_eq(d->num_classes, 3);
    alexnet_dataset_destroy(d);
    d = NULL;
    test_assert_fails_with(alexnet_dataset_load_idx_memory(images, images_size - 1, labels, labels_size, &o, &d),
                       ALEXNET_E_FORMAT, "promises");
    test_assert_fails_with(alexnet_dataset_load_idx_memory(images, 10, labels, labels_size, &o, &d), ALEXNET_E_FORMAT,
                       "shorter");
    test_assert_fails_with(alexnet_dataset_load_idx_memory(images, images_size, labels, labels_size - 1, &o, &d),
                       ALEXNET_E_FORMAT, "labels");
    uint8_t saved = images[7];
    images[7] = 0xFF; /* 255 images claimed: the size no longer matches */
    test_assert_fails_with(alexnet_dataset_load_idx_memory(images, images_size, labels, labels_size, &o, &d),
                       ALEXNET_E_FORMAT, "promises");
    images[4] = 0xFF; /* 4 billion images: the product overflows on 32-bit, or mismatches */
    ck_assert_int_eq(alexnet_dataset_load_idx_memory(images, images_size, labels, labels_size, &o, &d), ALEXNET_E_FORMAT);
    images[4] = 0;
    images[7] = saved;
    images[2] = 0x0D; /* floats */
    test_assert_fails_with(alexnet_dataset_load_idx_memory(images, images_size, labels, labels_size, &o, &d),
                       ALEXNET_E_UNSUPPORTED, "0x0d");
    images[2] = 8;
    images[0] = 0x1f;
    images[1] = 0x8b;
    test_assert_fails_with(alexnet_dataset_load_idx_memory(images, images_size, labels, labels_size, &o, &d),
                       ALEXNET_E_UNSUPPORTED, "gunzip");
    images[0] = images[1] = 0;
    labels[7] = 4;
    test_assert_fails_with(alexnet_dataset_load_idx_memory(images, images_size, labels, 12, &o, &d), ALEXNET_E_FORMAT,
                       "5 images but 4 labels");
    labels[7] = 5;
    o.num_classes = 2;
    test_assert_fails_with(alexnet_dataset_load_idx_memory(images, images_size, labels, labels_size, &o, &d),
                       ALEXNET_E_INVALID_ARGUMENT, "num_classes");
    o.num_classes = 0;
    o.height = 5;
    test_assert_fails_with(alexnet_dataset_load_idx_memory(images, images_size, labels, labels_size, &o, &d),
                       ALEXNET_E_SHAPE, "4 x 3");
    o.height = 0;
    /* From files. */
    char image_path[256], label_path[256];
    snprintf(image_path, sizeof image_path, "%s", temp_file("images.idx"));
    snprintf(label_path, sizeof label_path, "%s", temp_file("labels.idx"));
    write_bytes(image_path, images, images_size);
    write_bytes(label_path, labels, labels_size);
    ck_assert_int_eq(alexnet_dataset_load_idx(image_path, label_path, &o, &d), ALEXNET_OK);
    ck_assert_uint_eq(alexnet_dataset_count(d), 5);
    alexnet_dataset_destroy(d);
    test_assert_fails_with(alexnet_dataset_load_idx(image_path, temp_file("none.idx"), &o, &d),
                           ALEXNET_E_IO, "none.idx");
    unlink(image_path);
    unlink(label_path);
    ck_assert_ptr_null(NULL);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(augmentation_crops_flips_and_lights)
{
    test_counting_allocator counter;
    alexnet_dataset_options o;
    alexnet_dataset_options_init(&o);
    o.channels = 3;
    o.height = 4;
    o.width = 5;
    o.num_classes = 1;
    o.allocator = test_counting_allocator_make(&counter);
    alexnet_dataset *d = NULL;
    ck_assert_int_eq(alexnet_dataset_create(&o, &d), ALEXNET_OK);
    uint8_t pixels[60];
    for (int i = 0; i < 60; i++)
        pixels[i] = (uint8_t)(4 * i);
    uint32_t label = 0;
    ck_assert_int_eq(alexnet_dataset_add(d, pixels, &label, 1), ALEXNET_OK);
    alexnet_augment_options a;
    alexnet_augment_options_init(&a);
    a.padding = 1; /* padded image 6 x 7 */
    for (int c = 0; c < 3; c++)
        a.mean[c] = 0.0f, a.std[c] = 1.0f / 255.0f; /* outputs are the pixel values themselves */
    float out[3 * 3 * 3];
    an_crop crop;
    /* The centre of the padded 6 x 7 image for a 3 x 3 input: top (6-3)/2 = 1, left (7-3)/2 = 2. */
    an_augment_eval_crop(&a, d, 3, 3, 0, &crop);
    ck_assert(crop.top == 1 && crop.left == 2 && !crop.mirror);
    an_augment_render(d, 0, &a, 3, 3, &crop, out);
    /* output (c, y, x) = image (y + top - 1, x + left - 1) channel c */
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 3; x++)
                ck_assert_msg(fabsf(out[(c * 3 + y) * 3 + x] - pixels[(y * 5 + x + 1) * 3 + c]) < 1e-3f, "centre %d %d %d",
                              c, y, x);
    /* Corner 1 (top-left) reaches into the zero padding; corner 4 (bottom-right) too; crop 6 mirrors crop 1. */
    an_augment_eval_crop(&a, d, 3, 3, 1, &crop);
    an_augment_render(d, 0, &a, 3, 3, &crop, out);
    ck_assert(out[0] == 0.0f && fabsf(out[4] - pixels[0]) < 1e-3f);
    float mirrored[27];
    an_augment_eval_crop(&a, d, 3, 3, 6, &crop);
    ck_assert(crop.mirror && crop.top == 0 && crop.left == 0);
    an_augment_render(d, 0, &a, 3, 3, &crop, mirrored);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 3; x++)
                ck_assert(out[(c * 3 + y) * 3 + x] == mirrored[(c * 3 + y) * 3 + 2 - x]);
    an_augment_eval_crop(&a, d, 3, 3, 4, &crop);
    ck_assert(crop.top == 3 && crop.left == 4);
    /* Random draws: reproducible from the generator state; every position and both mirrors occur. */
    an_rng r1, r2;
    an_rng_seed(&r1, 5, 1);
    an_rng_seed(&r2, 5, 1);
    int seen[4][5][2] = {{{0}}};
    double noise_sum[3] = {0, 0, 0}, noise_squares[3] = {0, 0, 0};
    for (int i = 0; i < 4000; i++) {
        an_crop c1, c2;
        an_augment_draw(&r1, &a, d, 3, 3, &c1);
        an_augment_draw(&r2, &a, d, 3, 3, &c2);
        ck_assert(memcmp(&c1, &c2, sizeof c1) == 0);
        ck_assert(c1.top <= 3 && c1.left <= 4);
        seen[c1.top][c1.left][c1.mirror] = 1;
        for (int c = 0; c < 3; c++) {
            noise_sum[c] += c1.noise[c];
            noise_squares[c] += (double)c1.noise[c] * c1.noise[c];
        }
    }
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 5; x++)
            ck_assert_msg(seen[y][x][0] && seen[y][x][1], "crop (%d, %d) never drawn", y, x);
    /* Lighting: per channel c the noise is sum_i alpha_i lambda_i v_ic with alpha ~ N(0, 0.1), so its
     * variance is 0.01 sum_i lambda_i^2 v_ic^2. */
    for (int c = 0; c < 3; c++) {
        double expected = 0.0;
        for (int i = 0; i < 3; i++)
            expected += 0.01 * a.pca_eigenvalues[i] * a.pca_eigenvalues[i] * a.pca_eigenvectors[3 * i + c] *
                        a.pca_eigenvectors[3 * i + c];
        double variance = noise_squares[c] / 4000 - (noise_sum[c] / 4000) * (noise_sum[c] / 4000);
        ck_assert_msg(fabs(variance / expected - 1.0) < 0.1, "channel %d noise variance %g, expected %g", c, variance,
                      expected);
    }
    alexnet_dataset_destroy(d);
    test_assert_no_leaks(&counter);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("trainer");
    TCase *api = tcase_create("api");
    tcase_set_timeout(api, 600);
    tcase_add_test(api, options_have_the_documented_defaults);
    tcase_add_test(api, create_rejects_bad_options);
    tcase_add_test(api, step_rejects_bad_input_and_changes_nothing);
    tcase_add_test(api, backend_without_training_ops_is_unsupported);
    tcase_add_test(api, loss_falls_on_a_fixed_batch);
    tcase_add_test(api, frozen_layers_do_not_move);
    tcase_add_test(api, fine_tuning_to_new_classes);
    tcase_add_test(api, resumed_run_matches_uninterrupted_bitwise);
    tcase_add_test(api, bad_checkpoints_are_refused_and_change_nothing);
    tcase_add_test(api, allocation_failures_are_reported_without_leaks);
    tcase_add_test(api, evaluation_is_consistent);
    tcase_add_test(api, plateau_schedule_divides_after_patience);
    tcase_add_test(api, training_reports_progress_and_learns);
    tcase_add_test(api, datasets_convert_and_describe_images);
    tcase_add_test(api, idx_loader_validates_everything);
    tcase_add_test(api, augmentation_crops_flips_and_lights);
    suite_add_tcase(suite, api);
    return test_run_suite(suite);
}
