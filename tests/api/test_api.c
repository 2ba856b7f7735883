/* The public API end to end on small custom configurations (fast on the reference backend), plus the
 * presets' published numbers. Every test checks the counting allocator for leaks. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alexnet/alexnet.h"
#include "test_check.h"
#include "test_support.h"

/* FNV-1a of the weights of small_config() seeded with 2012, computed once on x86-64. */
#define INIT_HASH_PAPER 0xd1eef1120b0185edull
#define INIT_HASH_KAIMING 0x2b5f44258b10f376ull

/* A five-convolution AlexNet-family net for 3 x 32 x 32 images: every feature of the real one (groups,
 * LRN, overlapping pooling, dropout placement, three FC layers) at a size that runs in milliseconds. */
static alexnet_config small_config(int adaptive)
{
    alexnet_config c;
    ck_assert_int_eq(alexnet_config_preset(ALEXNET_VARIANT_PAPER_2012, &c), ALEXNET_OK);
    c.variant = ALEXNET_VARIANT_CUSTOM;
    c.input_height = c.input_width = 32;
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
    c.hidden_fc[0] = 24;
    c.hidden_fc[1] = 20;
    c.num_classes = 10;
    c.adaptive_pool_size = adaptive ? 2 : 0;
    return c;
}

static alexnet_model *make_model(const alexnet_config *config, alexnet_allocator allocator, uint64_t seed,
                                 alexnet_init_scheme init)
{
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.config = config;
    options.allocator = allocator;
    options.init = init;
    alexnet_model *model = NULL;
    ck_assert_msg(alexnet_model_create(&options, seed, &model) == ALEXNET_OK, "%s", alexnet_last_error());
    return model;
}

static alexnet_context *make_context(const alexnet_model *model, uint32_t batch, const char *const *capture)
{
    alexnet_context_options options;
    alexnet_context_options_init(&options);
    options.batch = batch;
    options.capture_layers = capture;
    alexnet_context *context = NULL;
    ck_assert_msg(alexnet_context_create(model, &options, &context) == ALEXNET_OK, "%s", alexnet_last_error());
    return context;
}

/* ---- version, status ---- */
START_TEST(version_and_status_strings)
{
    ck_assert_uint_eq(alexnet_version_number(), ALEXNET_VERSION_NUMBER);
    ck_assert_str_eq(alexnet_version_string(), ALEXNET_VERSION_STRING);
    for (int s = 0; s <= ALEXNET_E_NOT_FOUND; s++) {
        const char *text = alexnet_status_string((alexnet_status)s);
        ck_assert(text != NULL && text[0] != '\0' && strcmp(text, "unknown status") != 0);
        for (int t = 0; t < s; t++)
            ck_assert_str_ne(text, alexnet_status_string((alexnet_status)t));
    }
    ck_assert_str_eq(alexnet_status_string((alexnet_status)99), "unknown status");
}
END_TEST

/* ---- configurations ---- */
START_TEST(preset_parameter_counts)
{
    const struct { alexnet_variant variant; uint64_t params; uint32_t size; } presets[] = {
        {ALEXNET_VARIANT_ONE_TOWER, 62378344ull, 227},
        {ALEXNET_VARIANT_PAPER_2012, 60965224ull, 227},
        {ALEXNET_VARIANT_TORCHVISION, 61100840ull, 63},
    };
    for (size_t i = 0; i < 3; i++) {
        alexnet_config c;
        ck_assert_int_eq(alexnet_config_preset(presets[i].variant, &c), ALEXNET_OK);
        uint64_t count = 0;
        ck_assert_int_eq(alexnet_config_parameter_count(&c, &count), ALEXNET_OK);
        ck_assert_uint_eq(count, presets[i].params);
        uint32_t min_size = 0;
        ck_assert_int_eq(alexnet_config_min_input_size(&c, &min_size), ALEXNET_OK);
        ck_assert_uint_eq(min_size, presets[i].size);
    }
}
END_TEST

static const alexnet_layer_info *find_row(const alexnet_layer_info *rows, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(rows[i].name, name) == 0)
            return &rows[i];
    ck_abort_msg("no layer %s", name);
    return NULL;
}

START_TEST(summary_shapes_follow_the_article)
{
    alexnet_config c;
    alexnet_layer_info rows[64];
    size_t n = 0;
    ck_assert_int_eq(alexnet_config_preset(ALEXNET_VARIANT_PAPER_2012, &c), ALEXNET_OK);
    ck_assert_int_eq(alexnet_config_summary(&c, 0, 0, NULL, 0, &n), ALEXNET_OK);
    ck_assert_uint_eq(n, 17); /* input, conv1 norm1 pool1, conv2 norm2 pool2, conv3-5, pool5, fc6 drop6 fc7 drop7 fc8 prob */
    ck_assert_int_eq(alexnet_config_summary(&c, 0, 0, rows, 64, &n), ALEXNET_OK);
    const alexnet_layer_info *conv1 = find_row(rows, n, "conv1");
    ck_assert_uint_eq(conv1->channels, 96);
    ck_assert_uint_eq(conv1->height, 55);
    ck_assert_uint_eq(conv1->parameter_count, 34944);
    ck_assert_uint_eq(find_row(rows, n, "norm2")->type, ALEXNET_LAYER_LRN);
    ck_assert_uint_eq(find_row(rows, n, "conv2")->groups, 2);
    ck_assert_uint_eq(find_row(rows, n, "conv2")->parameter_count, 307456);
    ck_assert_uint_eq(find_row(rows, n, "pool5")->height, 6);
    ck_assert_uint_eq(find_row(rows, n, "fc6")->parameter_count, 37752832);
    ck_assert_uint_eq(find_row(rows, n, "drop7")->type, ALEXNET_LAYER_DROPOUT);
    ck_assert_uint_eq(find_row(rows, n, "prob")->channels, 1000);

    /* torchvision at another size: adaptive pooling keeps fc6 at 256 x 6 x 6 */
    ck_assert_int_eq(alexnet_config_preset(ALEXNET_VARIANT_TORCHVISION, &c), ALEXNET_OK);
    ck_assert_int_eq(alexnet_config_summary(&c, 100, 300, rows, 64, &n), ALEXNET_OK);
    ck_assert_uint_eq(find_row(rows, n, "avgpool")->height, 6);
    ck_assert_uint_eq(find_row(rows, n, "conv1")->width, 74);
    ck_assert_uint_eq(find_row(rows, n, "drop5")->type, ALEXNET_LAYER_DROPOUT);
    ck_assert_int_eq(alexnet_config_summary(&c, 62, 62, rows, 64, &n), ALEXNET_E_SHAPE);
    ck_assert_int_eq(alexnet_config_summary(&c, 63, 63, rows, 64, &n), ALEXNET_OK);
}
END_TEST

START_TEST(invalid_configurations_name_the_field)
{
    alexnet_config c = small_config(0);
    ck_assert_int_eq(alexnet_config_validate(&c), ALEXNET_OK);
    c.conv[1].groups = 5; /* 8 input channels */
    test_assert_fails_with(alexnet_config_validate(&c), ALEXNET_E_INVALID_ARGUMENT, "conv[1].groups");
    c = small_config(0);
    c.conv[2].kernel_size = 0;
    test_assert_fails_with(alexnet_config_validate(&c), ALEXNET_E_INVALID_ARGUMENT, "conv[2].kernel_size");
    c = small_config(0);
    c.conv[0].padding = 5;
    test_assert_fails_with(alexnet_config_validate(&c), ALEXNET_E_INVALID_ARGUMENT, "conv[0].padding");
    c = small_config(0);
    c.num_classes = 0;
    test_assert_fails_with(alexnet_config_validate(&c), ALEXNET_E_INVALID_ARGUMENT, "num_classes");
    c = small_config(0);
    c.dropout_rate = 1.0f;
    test_assert_fails_with(alexnet_config_validate(&c), ALEXNET_E_INVALID_ARGUMENT, "dropout_rate");
    c = small_config(0);
    c.lrn_beta = NAN;
    test_assert_fails_with(alexnet_config_validate(&c), ALEXNET_E_INVALID_ARGUMENT, "lrn");
    c = small_config(0);
    c.conv_count = 9;
    test_assert_fails_with(alexnet_config_validate(&c), ALEXNET_E_INVALID_ARGUMENT, "conv_count");
    c = small_config(0);
    c.input_height = c.input_width = 6; /* vanishes before pool5 */
    test_assert_fails_with(alexnet_config_validate(&c), ALEXNET_E_INVALID_ARGUMENT, "pool");
    c = small_config(0);
    c.struct_size = 8;
    test_assert_fails_with(alexnet_config_validate(&c), ALEXNET_E_INVALID_ARGUMENT, "struct_size");
    test_assert_fails_with(alexnet_config_validate(NULL), ALEXNET_E_INVALID_ARGUMENT, "NULL");
    test_assert_fails_with(alexnet_config_preset((alexnet_variant)7, &c), ALEXNET_E_INVALID_ARGUMENT, "variant");
}
END_TEST

/* ---- models ---- */
START_TEST(tensor_names_follow_each_scheme)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.variant = ALEXNET_VARIANT_TORCHVISION;
    options.allocator = allocator;
    alexnet_model *model = NULL;
    ck_assert_int_eq(alexnet_model_create(&options, 1, &model), ALEXNET_OK);
    const char *expected[] = {"features.0.weight", "features.0.bias", "features.3.weight", "features.3.bias",
                              "features.6.weight", "features.6.bias", "features.8.weight", "features.8.bias",
                              "features.10.weight", "features.10.bias", "classifier.1.weight", "classifier.1.bias",
                              "classifier.4.weight", "classifier.4.bias", "classifier.6.weight", "classifier.6.bias"};
    ck_assert_uint_eq(alexnet_model_tensor_count(model), 16);
    uint64_t total = 0;
    for (size_t i = 0; i < 16; i++) {
        alexnet_tensor_info info;
        ck_assert_int_eq(alexnet_model_tensor(model, i, &info), ALEXNET_OK);
        ck_assert_str_eq(info.name, expected[i]);
        total += info.element_count;
        ck_assert((uintptr_t)info.data % 64 == 0);
    }
    ck_assert_uint_eq(total, 61100840ull);
    ck_assert_uint_eq(alexnet_model_parameter_count(model), 61100840ull);
    alexnet_tensor_info info;
    ck_assert_int_eq(alexnet_model_tensor(model, 16, &info), ALEXNET_E_NOT_FOUND);
    alexnet_model_destroy(model);
    test_assert_no_leaks(&counter);

    alexnet_config c = small_config(0);
    model = make_model(&c, allocator, 1, ALEXNET_INIT_DEFAULT);
    ck_assert_int_eq(alexnet_model_tensor(model, 0, &info), ALEXNET_OK);
    ck_assert_str_eq(info.name, "conv1.weight");
    ck_assert_int_eq(alexnet_model_tensor(model, 15, &info), ALEXNET_OK);
    ck_assert_str_eq(info.name, "fc8.bias");
    ck_assert_uint_eq(info.shape[0], 10);
    alexnet_model_destroy(model);
    test_assert_no_leaks(&counter);
}
END_TEST

static uint64_t weights_hash(const alexnet_model *model)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a over the little-endian bytes of every tensor */
    for (size_t t = 0; t < alexnet_model_tensor_count(model); t++) {
        alexnet_tensor_info info;
        ck_assert_int_eq(alexnet_model_tensor(model, t, &info), ALEXNET_OK);
        const unsigned char *bytes = (const unsigned char *)info.data;
        for (size_t i = 0; i < info.element_count * sizeof(float); i++)
            h = (h ^ bytes[i]) * 0x100000001b3ull;
    }
    return h;
}

static void tensor_stats(const alexnet_model *model, size_t index, double *mean, double *std, float *min, float *max)
{
    alexnet_tensor_info info;
    ck_assert_int_eq(alexnet_model_tensor(model, index, &info), ALEXNET_OK);
    double sum = 0, sq = 0;
    *min = INFINITY;
    *max = -INFINITY;
    for (size_t i = 0; i < info.element_count; i++) {
        sum += info.data[i];
        sq += (double)info.data[i] * info.data[i];
        *min = fminf(*min, info.data[i]);
        *max = fmaxf(*max, info.data[i]);
    }
    *mean = sum / (double)info.element_count;
    *std = sqrt(sq / (double)info.element_count - *mean * *mean);
}

START_TEST(seeded_initialisation_schemes)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    alexnet_config c = small_config(0);
    c.conv[1].out_channels = 64; /* enough conv2 weights for a std estimate */
    c.hidden_fc[0] = 400;
    alexnet_model *a = make_model(&c, allocator, 7, ALEXNET_INIT_PAPER);
    alexnet_model *b = make_model(&c, allocator, 7, ALEXNET_INIT_PAPER);
    alexnet_model *other = make_model(&c, allocator, 8, ALEXNET_INIT_PAPER);
    ck_assert_uint_eq(weights_hash(a), weights_hash(b));
    ck_assert_uint_ne(weights_hash(a), weights_hash(other));

    double mean, std;
    float min, max;
    tensor_stats(a, 2, &mean, &std, &min, &max); /* conv2.weight ~ N(0, 0.01) */
    ck_assert_msg(fabs(std - 0.01) < 0.0005 && fabs(mean) < 0.0005, "conv2 std %g mean %g", std, mean);
    tensor_stats(a, 3, &mean, &std, &min, &max); /* conv2.bias = 1 */
    ck_assert(min == 1.0f && max == 1.0f);
    tensor_stats(a, 1, &mean, &std, &min, &max); /* conv1.bias = 0 */
    ck_assert(min == 0.0f && max == 0.0f);
    tensor_stats(a, 5, &mean, &std, &min, &max); /* conv3.bias = 0 */
    ck_assert(min == 0.0f && max == 0.0f);
    tensor_stats(a, 11, &mean, &std, &min, &max); /* fc6.bias = 1 */
    ck_assert(min == 1.0f && max == 1.0f);
    tensor_stats(a, 15, &mean, &std, &min, &max); /* fc8.bias = 0 */
    ck_assert(min == 0.0f && max == 0.0f);

    alexnet_model *caffe = make_model(&c, allocator, 7, ALEXNET_INIT_CAFFE);
    tensor_stats(caffe, 10, &mean, &std, &min, &max); /* fc6.weight ~ N(0, 0.005) */
    ck_assert_msg(fabs(std - 0.005) < 0.0002, "fc6 std %g", std);
    tensor_stats(caffe, 11, &mean, &std, &min, &max); /* fc6.bias = 0.1 */
    ck_assert(min == 0.1f && max == 0.1f);

    alexnet_model *kaiming = make_model(&c, allocator, 7, ALEXNET_INIT_KAIMING);
    tensor_stats(kaiming, 10, &mean, &std, &min, &max); /* U(+-1/sqrt(fan_in)), fan_in = 8 * 1 * 1 */
    alexnet_tensor_info fc6;
    ck_assert_int_eq(alexnet_model_tensor(kaiming, 10, &fc6), ALEXNET_OK);
    double bound = 1.0 / sqrt((double)fc6.shape[1]);
    ck_assert(max <= bound && min >= -bound && max > 0.9 * bound && min < -0.9 * bound);
    ck_assert_msg(fabs(std - bound / sqrt(3.0)) < 0.05 * bound, "kaiming std %g", std);

    /* Bit-reproducible across platforms and compilers: these values were produced on x86-64 and must be
     * the same everywhere (the NEON/qemu run checks the same constants). */
    alexnet_config fixed = small_config(0);
    alexnet_model *p = make_model(&fixed, allocator, 2012, ALEXNET_INIT_PAPER);
    alexnet_model *k = make_model(&fixed, allocator, 2012, ALEXNET_INIT_KAIMING);
    printf("init hashes: paper %016llx kaiming %016llx\n", (unsigned long long)weights_hash(p),
           (unsigned long long)weights_hash(k));
    ck_assert_uint_eq(weights_hash(p), INIT_HASH_PAPER);
    ck_assert_uint_eq(weights_hash(k), INIT_HASH_KAIMING);

    alexnet_model_destroy(a);
    alexnet_model_destroy(b);
    alexnet_model_destroy(other);
    alexnet_model_destroy(caffe);
    alexnet_model_destroy(kaiming);
    alexnet_model_destroy(p);
    alexnet_model_destroy(k);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(model_creation_rejects_bad_options)
{
    alexnet_model *model = (alexnet_model *)(uintptr_t)0x1; /* must stay untouched */
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    test_assert_fails_with(alexnet_model_create(&options, 1, NULL), ALEXNET_E_INVALID_ARGUMENT, "out_model");
    options.variant = ALEXNET_VARIANT_CUSTOM;
    test_assert_fails_with(alexnet_model_create(&options, 1, &model), ALEXNET_E_INVALID_ARGUMENT, "config");
    alexnet_model_options_init(&options);
    options.init = (alexnet_init_scheme)9;
    test_assert_fails_with(alexnet_model_create(&options, 1, &model), ALEXNET_E_INVALID_ARGUMENT, "init");
    alexnet_model_options_init(&options);
    options.allocator.user = NULL;
    options.allocator.free = NULL;
    options.allocator.alloc = (void *(*)(void *, size_t, size_t))(uintptr_t)malloc;
    test_assert_fails_with(alexnet_model_create(&options, 1, &model), ALEXNET_E_INVALID_ARGUMENT, "allocator");
    alexnet_model_options_init(&options);
    options.struct_size = 4;
    test_assert_fails_with(alexnet_model_create(&options, 1, &model), ALEXNET_E_INVALID_ARGUMENT, "struct_size");
    ck_assert(model == (alexnet_model *)(uintptr_t)0x1);
    alexnet_model_destroy(NULL);
    alexnet_context_destroy(NULL);
}
END_TEST

/* ---- inference ---- */
START_TEST(inference_batches_agree_and_captures_are_consistent)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    alexnet_config c = small_config(0);
    alexnet_model *model = make_model(&c, allocator, 3, ALEXNET_INIT_KAIMING);
    const char *capture[] = {"fc7", "drop6", "conv1", NULL};
    alexnet_context *context = make_context(model, 3, capture);
    ck_assert(alexnet_context_backend_name(context) != NULL); /* "auto": whatever backend is best here */
    ck_assert(alexnet_context_workspace_bytes(context) > 0);

    enum { PIXELS = 3 * 32 * 32, CLASSES = 10 };
    float input[3 * PIXELS], logits[3 * CLASSES], probs[3 * CLASSES], single[CLASSES];
    test_fill_input(input, 3 * PIXELS, 5);
    ck_assert_int_eq(alexnet_infer(context, input, 3, logits, probs), ALEXNET_OK);
    for (int n = 0; n < 3; n++) {
        double sum = 0;
        for (int i = 0; i < CLASSES; i++)
            sum += probs[n * CLASSES + i];
        ck_assert_msg(fabs(sum - 1.0) < 1e-5, "probabilities sum to %g", sum);
    }
    /* fc8 = W8 fc7 + b8, recomputed from the captured fc7 (after ReLU) */
    size_t fc7_size = 0;
    ck_assert_int_eq(alexnet_context_layer_size(context, "fc7", &fc7_size), ALEXNET_OK);
    ck_assert_uint_eq(fc7_size, 20);
    float fc7[3 * 20], drop6[3 * 24];
    ck_assert_int_eq(alexnet_layer_output(context, "fc7", fc7, 3 * 20), ALEXNET_OK);
    ck_assert_int_eq(alexnet_layer_output(context, "drop6", drop6, 3 * 24), ALEXNET_OK);
    alexnet_tensor_info w8, b8;
    ck_assert_int_eq(alexnet_model_tensor(model, 14, &w8), ALEXNET_OK);
    ck_assert_int_eq(alexnet_model_tensor(model, 15, &b8), ALEXNET_OK);
    int any_positive = 0;
    for (int n = 0; n < 3; n++) {
        for (int j = 0; j < 20; j++) {
            ck_assert(fc7[n * 20 + j] >= 0.0f);
            any_positive |= fc7[n * 20 + j] > 0.0f;
        }
        for (int o = 0; o < CLASSES; o++) {
            double acc = b8.data[o];
            for (int j = 0; j < 20; j++)
                acc += (double)w8.data[o * 20 + j] * fc7[n * 20 + j];
            ck_assert_msg(fabs(acc - logits[n * CLASSES + o]) < 1e-5, "fc8 %g vs %g", acc, logits[n * CLASSES + o]);
        }
    }
    ck_assert(any_positive);
    float small[4];
    test_assert_fails_with(alexnet_layer_output(context, "fc7", small, 4), ALEXNET_E_SHAPE, "fc7");
    test_assert_fails_with(alexnet_layer_output(context, "conv3", small, 4), ALEXNET_E_INVALID_ARGUMENT, "capture");
    test_assert_fails_with(alexnet_layer_output(context, "conv9", small, 4), ALEXNET_E_NOT_FOUND, "conv9");

    /* image by image gives the same bits as the batch */
    for (int n = 0; n < 3; n++) {
        ck_assert_int_eq(alexnet_infer(context, input + n * PIXELS, 1, single, NULL), ALEXNET_OK);
        ck_assert(memcmp(single, logits + n * CLASSES, sizeof single) == 0);
    }
    alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(inference_rejects_bad_arguments_and_leaves_outputs_untouched)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    alexnet_config c = small_config(0);
    alexnet_model *model = make_model(&c, allocator, 3, ALEXNET_INIT_KAIMING);
    alexnet_context *context = make_context(model, 2, NULL);
    float input[3 * 3 * 32 * 32] = {0}, logits[30];
    for (int i = 0; i < 30; i++)
        logits[i] = 123.0f;
    test_assert_fails_with(alexnet_infer(NULL, input, 1, logits, NULL), ALEXNET_E_INVALID_ARGUMENT, "NULL");
    test_assert_fails_with(alexnet_infer(context, NULL, 1, logits, NULL), ALEXNET_E_INVALID_ARGUMENT, "NULL");
    test_assert_fails_with(alexnet_infer(context, input, 1, NULL, NULL), ALEXNET_E_INVALID_ARGUMENT, "both NULL");
    test_assert_fails_with(alexnet_infer(context, input, 0, logits, NULL), ALEXNET_E_SHAPE, "batch 0");
    test_assert_fails_with(alexnet_infer(context, input, 3, logits, NULL), ALEXNET_E_SHAPE, "batch 3");
    test_assert_fails_with(alexnet_infer(context, input, (size_t)-1, logits, NULL), ALEXNET_E_SHAPE, "batch");
    float fc7[40];
    test_assert_fails_with(alexnet_layer_output(context, "fc8", fc7, 40), ALEXNET_E_STATE, "no inference");
    for (int i = 0; i < 30; i++)
        ck_assert(logits[i] == 123.0f);
    /* reshape: huge or zero batch, a size this fixed-size configuration does not take */
    test_assert_fails_with(alexnet_context_reshape(context, 0, 32, 32), ALEXNET_E_INVALID_ARGUMENT, "batch");
    test_assert_fails_with(alexnet_context_reshape(context, (size_t)1 << 40, 32, 32), ALEXNET_E_INVALID_ARGUMENT,
                       "batch");
    test_assert_fails_with(alexnet_context_reshape(context, 1, 40, 40), ALEXNET_E_SHAPE, "only 32x32");
    size_t batch = 0;
    uint32_t h = 0, w = 0;
    ck_assert_int_eq(alexnet_context_get_shape(context, &batch, &h, &w), ALEXNET_OK);
    ck_assert(batch == 2 && h == 32 && w == 32); /* the failed reshapes left the plan in force */
    ck_assert_int_eq(alexnet_infer(context, input, 2, logits, NULL), ALEXNET_OK);
    alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(reshape_with_adaptive_pooling)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    alexnet_config c = small_config(1);
    alexnet_model *model = make_model(&c, allocator, 4, ALEXNET_INIT_KAIMING);
    alexnet_context *context = make_context(model, 1, NULL);
    uint32_t min_size = 0;
    ck_assert_int_eq(alexnet_config_min_input_size(&c, &min_size), ALEXNET_OK);
    ck_assert_int_eq(alexnet_context_reshape(context, 2, 47, 61), ALEXNET_OK);
    float input[2 * 3 * 47 * 61], logits[20];
    test_fill_input(input, sizeof input / sizeof input[0], 9);
    ck_assert_int_eq(alexnet_infer(context, input, 2, logits, NULL), ALEXNET_OK);
    ck_assert(memcmp(logits, logits + 10, 10 * sizeof(float)) != 0);
    ck_assert_int_eq(alexnet_context_reshape(context, 1, min_size, min_size), ALEXNET_OK);
    ck_assert_int_eq(alexnet_context_reshape(context, 1, min_size - 1, min_size), ALEXNET_E_SHAPE);
    alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(backend_selection)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    alexnet_config c = small_config(0);
    alexnet_model *model = make_model(&c, allocator, 3, ALEXNET_INIT_KAIMING);
    ck_assert(alexnet_backend_count() >= 1);
    alexnet_backend_info info;
    info.struct_size = sizeof info;
    ck_assert_int_eq(alexnet_backend_get_info(0, &info), ALEXNET_OK);
    ck_assert_str_eq(info.name, "reference");
    ck_assert(info.available);
    ck_assert_int_eq(alexnet_backend_get_info(alexnet_backend_count(), &info), ALEXNET_E_NOT_FOUND);

    alexnet_context_options options;
    alexnet_context_options_init(&options);
    alexnet_context *context = NULL;
    options.backend = "no-such-backend";
    test_assert_fails_with(alexnet_context_create(model, &options, &context), ALEXNET_E_NOT_FOUND, "no-such-backend");
    ck_assert(context == NULL);
    /* the environment applies where the options say "auto"; an explicit choice wins */
    char *saved = getenv("ALEXNET_BACKEND") ? strdup(getenv("ALEXNET_BACKEND")) : NULL;
    setenv("ALEXNET_BACKEND", "bogus", 1);
    options.backend = "auto";
    test_assert_fails_with(alexnet_context_create(model, &options, &context), ALEXNET_E_NOT_FOUND, "ALEXNET_BACKEND");
    options.backend = "cpu";
    ck_assert_int_eq(alexnet_context_create(model, &options, &context), ALEXNET_OK);
    alexnet_context_destroy(context);
    if (saved) {
        setenv("ALEXNET_BACKEND", saved, 1);
        free(saved);
    } else {
        unsetenv("ALEXNET_BACKEND");
    }
    const char *capture[] = {"fc7", "nope", NULL};
    alexnet_context_options_init(&options);
    options.capture_layers = capture;
    test_assert_fails_with(alexnet_context_create(model, &options, &context), ALEXNET_E_NOT_FOUND, "nope");
    alexnet_model_destroy(model);
    test_assert_no_leaks(&counter);
}
END_TEST


START_TEST(devices_and_profiling)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    alexnet_config c = small_config(0);
    alexnet_model *model = make_model(&c, allocator, 3, ALEXNET_INIT_KAIMING);
    ck_assert(alexnet_device_count() >= 1);
    int found_reference = 0;
    for (size_t i = 0; i < alexnet_device_count(); i++) {
        alexnet_device_info info;
        ck_assert_int_eq(alexnet_device_get_info(i, &info), ALEXNET_OK);
        ck_assert(strchr(info.name, ':') != NULL && info.backend != NULL && info.description[0] != '\0');
        found_reference |= strcmp(info.name, "reference:0") == 0;
    }
    ck_assert(found_reference);
    alexnet_device_info info;
    ck_assert_int_eq(alexnet_device_get_info(alexnet_device_count(), &info), ALEXNET_E_NOT_FOUND);

    alexnet_context_options options;
    alexnet_context_options_init(&options);
    alexnet_context *context = NULL;
    options.backend = "reference:1";
    test_assert_fails_with(alexnet_context_create(model, &options, &context), ALEXNET_E_NOT_FOUND, "no device 1");
    options.backend = "reference:x";
    test_assert_fails_with(alexnet_context_create(model, &options, &context), ALEXNET_E_INVALID_ARGUMENT, "index");
    options.backend = "reference:0";
    options.profile_layers = 1;
    options.batch = 2;
    ck_assert_int_eq(alexnet_context_create(model, &options, &context), ALEXNET_OK);
    alexnet_layer_profile rows[32];
    size_t count = 0;
    test_assert_fails_with(alexnet_context_profile(context, rows, 32, &count), ALEXNET_E_STATE, "no inference");
    float input[2 * 3 * 32 * 32], logits[20];
    test_fill_input(input, sizeof input / sizeof input[0], 2);
    ck_assert_int_eq(alexnet_infer(context, input, 2, logits, NULL), ALEXNET_OK);
    ck_assert_int_eq(alexnet_context_profile(context, rows, 32, &count), ALEXNET_OK);
    ck_assert_uint_eq(count, 14); /* 17 layers less the input and the two dropouts (identity at inference) */
    ck_assert_str_eq(rows[0].name, "conv1");
    /* conv1: 8 x 16 x 16 outputs, each 3 x 5 x 5 multiply-adds, two images */
    ck_assert(rows[0].flops == 2.0 * 8 * 16 * 16 * 75 * 2);
    ck_assert(rows[0].seconds > 0.0);
    ck_assert_str_eq(rows[count - 1].name, "prob");
    ck_assert(rows[count - 1].flops == 0.0);
    alexnet_context_destroy(context);
    options.profile_layers = 0;
    ck_assert_int_eq(alexnet_context_create(model, &options, &context), ALEXNET_OK);
    test_assert_fails_with(alexnet_context_profile(context, rows, 32, &count), ALEXNET_E_STATE, "profile_layers");
    alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    test_assert_no_leaks(&counter);
}
END_TEST

/* ---- weights files ---- */
START_TEST(save_and_load_round_trip)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    alexnet_config c = small_config(0);
    alexnet_model *model = make_model(&c, allocator, 5, ALEXNET_INIT_CAFFE);
    size_t size = 0;
    ck_assert_int_eq(alexnet_model_save_memory(model, NULL, 0, &size), ALEXNET_OK);
    unsigned char *buffer = malloc(size);
    size_t written = 0;
    ck_assert_int_eq(alexnet_model_save_memory(model, buffer, size - 1, &written), ALEXNET_E_INVALID_ARGUMENT);
    ck_assert_int_eq(alexnet_model_save_memory(model, buffer, size, &written), ALEXNET_OK);
    ck_assert_uint_eq(written, size);

    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.config = &c;
    options.allocator = allocator;
    alexnet_model *loaded = NULL;
    ck_assert_msg(alexnet_model_load_memory(buffer, size, &options, &loaded) == ALEXNET_OK, "%s",
                  alexnet_last_error());
    ck_assert_uint_eq(weights_hash(loaded), weights_hash(model));
    alexnet_model_destroy(loaded);

    char path[] = "/tmp/alexnet-test-XXXXXX";
    int fd = mkstemp(path);
    ck_assert(fd >= 0);
    close(fd);
    ck_assert_int_eq(alexnet_model_save(model, path), ALEXNET_OK);
    ck_assert_int_eq(alexnet_model_load(path, &options, &loaded), ALEXNET_OK);
    ck_assert_uint_eq(weights_hash(loaded), weights_hash(model));
    alexnet_model_destroy(loaded);

    /* the class count comes back from the file when the options leave it open */
    alexnet_config wide = c;
    wide.num_classes = 1000;
    options.config = &wide;
    ck_assert_int_eq(alexnet_model_load(path, &options, &loaded), ALEXNET_OK);
    ck_assert_uint_eq(alexnet_model_num_classes(loaded), 10);
    alexnet_model_destroy(loaded);
    loaded = NULL;
    options.num_classes = 1000; /* ...and an explicit request that contradicts it fails, naming shapes */
    test_assert_fails_with(alexnet_model_load(path, &options, &loaded), ALEXNET_E_SHAPE,
                       "fc8.weight: file has [10,20], model expects [1000,20]");
    options.num_classes = 0;

    /* a file of another architecture: the message names the tensor and both shapes */
    alexnet_config towers = c;
    towers.conv[1].groups = 1;
    options.config = &towers;
    test_assert_fails_with(alexnet_model_load(path, &options, &loaded), ALEXNET_E_SHAPE,
                       "conv2.weight: file has [12,4,3,3], model expects [12,8,3,3]");
    alexnet_config torchvision_named = c;
    torchvision_named.variant = ALEXNET_VARIANT_TORCHVISION;
    options.config = &torchvision_named;
    test_assert_fails_with(alexnet_model_load(path, &options, &loaded),
                           ALEXNET_E_SHAPE, "missing tensor features.0.weight");
    options.config = &c;

    /* truncated and corrupt copies */
    test_assert_fails_with(alexnet_model_load_memory(buffer, size - 1, &options, &loaded), ALEXNET_E_FORMAT, "");
    test_assert_fails_with(alexnet_model_load_memory(buffer, 7, &options, &loaded), ALEXNET_E_FORMAT, "");
    unsigned char *corrupt = malloc(size);
    memcpy(corrupt, buffer, size);
    float nan_value = NAN;
    memcpy(corrupt + size - sizeof(float), &nan_value, sizeof nan_value); /* last element of fc8.bias */
    test_assert_fails_with(alexnet_model_load_memory(corrupt, size, &options, &loaded), ALEXNET_E_FORMAT, "NaN");
    free(corrupt);
    test_assert_fails_with(alexnet_model_load("/nonexistent/dir/model.safetensors", &options, &loaded), ALEXNET_E_IO,
                       "/nonexistent/dir/model.safetensors");
    test_assert_fails_with(alexnet_model_save(model, "/nonexistent/dir/model.safetensors"),
                           ALEXNET_E_IO, "nonexistent");
    ck_assert(loaded == NULL);

    unlink(path);
    free(buffer);
    alexnet_model_destroy(model);
    test_assert_no_leaks(&counter);
}
END_TEST

/* ---- images ---- */
START_TEST(classify_images_end_to_end)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    alexnet_config c = small_config(0);
    alexnet_model *model = make_model(&c, allocator, 6, ALEXNET_INIT_KAIMING);
    alexnet_context *context = make_context(model, 2, NULL);
    enum { W = 48, H = 40 };
    static uint8_t pixels[2][H * W * 3];
    for (int n = 0; n < 2; n++)
        for (int i = 0; i < H * W * 3; i++)
            pixels[n][i] = (uint8_t)(test_splitmix64((uint64_t)(n * 100000 + i)) >> 56);
    alexnet_image images[2] = {{pixels[0], W, H, W * 3, ALEXNET_PIXEL_RGB8}, {pixels[1], W, H, W * 3, ALEXNET_PIXEL_RGB8}};
    alexnet_image_options options;
    alexnet_image_options_init(&options);
    options.resize_size = 36;
    alexnet_class_score top[2 * 3];
    ck_assert_msg(alexnet_classify_images(context, images, 2, &options, 3, top) == ALEXNET_OK, "%s",
                  alexnet_last_error());
    /* the same result through the two public steps: preprocess, infer, top-k */
    float input[2 * 3 * 32 * 32], probs[20];
    for (int n = 0; n < 2; n++)
        ck_assert_int_eq(alexnet_preprocess_image(&images[n], &options, 3, 32, 32, input + n * 3072, 3072), ALEXNET_OK);
    ck_assert_int_eq(alexnet_infer(context, input, 2, NULL, probs), ALEXNET_OK);
    for (int n = 0; n < 2; n++) {
        alexnet_class_score want[3];
        ck_assert_int_eq(alexnet_top_k(probs + n * 10, 10, 3, want), ALEXNET_OK);
        for (int j = 0; j < 3; j++) {
            ck_assert_uint_eq(top[n * 3 + j].class_index, want[j].class_index);
            ck_assert(top[n * 3 + j].score == want[j].score);
            if (j > 0)
                ck_assert(top[n * 3 + j].score <= top[n * 3 + j - 1].score);
        }
    }
    test_assert_fails_with(alexnet_classify_images(context, images, 3, &options, 3, top), ALEXNET_E_SHAPE, "3 images");
    test_assert_fails_with(alexnet_classify_images(context, images, 2, &options, 11, top),
                           ALEXNET_E_INVALID_ARGUMENT, "k");
    alexnet_image bad = images[0];
    bad.row_stride_bytes = 3;
    ck_assert_int_eq(alexnet_classify_images(context, &bad, 1, &options, 3, top), ALEXNET_E_INVALID_ARGUMENT);
    ck_assert(strstr(alexnet_last_error(), "image 0") != NULL);
    alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(top_k_orders_ties_and_nan)
{
    float scores[6] = {0.1f, 0.5f, NAN, 0.5f, 0.9f, -1.0f};
    alexnet_class_score top[6];
    ck_assert_int_eq(alexnet_top_k(scores, 6, 6, top), ALEXNET_OK);
    uint32_t want[6] = {4, 1, 3, 0, 5, 2}; /* ties: lower index first; NaN last */
    for (int i = 0; i < 6; i++)
        ck_assert_uint_eq(top[i].class_index, want[i]);
    ck_assert_int_eq(alexnet_top_k(scores, 6, 7, top), ALEXNET_E_INVALID_ARGUMENT);
    ck_assert_int_eq(alexnet_top_k(scores, 6, 0, top), ALEXNET_E_INVALID_ARGUMENT);
}
END_TEST

/* ---- allocation failure at every point ---- */
static alexnet_status scenario(alexnet_allocator allocator)
{
    alexnet_config c = small_config(0);
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.config = &c;
    options.allocator = allocator;
    alexnet_model *model = NULL;
    alexnet_context *context = NULL;
    alexnet_status status = alexnet_model_create(&options, 1, &model);
    const char *capture[] = {"fc7", NULL};
    alexnet_context_options context_options;
    alexnet_context_options_init(&context_options);
    context_options.capture_layers = capture;
    if (status == ALEXNET_OK)
        status = alexnet_context_create(model, &context_options, &context);
    float input[3 * 32 * 32] = {0}, logits[10];
    if (status == ALEXNET_OK)
        status = alexnet_infer(context, input, 1, logits, NULL);
    if (status == ALEXNET_OK)
        status = alexnet_context_reshape(context, 2, 32, 32);
    size_t size = 0;
    if (status == ALEXNET_OK)
        status = alexnet_model_save_memory(model, NULL, 0, &size);
    alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    return status;
}

START_TEST(every_allocation_failure_is_reported_and_leaks_nothing)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    ck_assert_int_eq(scenario(allocator), ALEXNET_OK);
    size_t total = counter.total_allocations;
    ck_assert(total > 5);
    for (size_t n = 1; n <= total; n++) {
        allocator = test_counting_allocator_make(&counter);
        counter.fail_at = n;
        alexnet_status status = scenario(allocator);
        ck_assert_msg(status == ALEXNET_E_OUT_OF_MEMORY, "failing allocation %zu gave %s", n,
                      alexnet_status_string(status));
        test_assert_no_leaks(&counter);
    }
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("api");
    TCase *tc = tcase_create("api");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, version_and_status_strings);
    tcase_add_test(tc, preset_parameter_counts);
    tcase_add_test(tc, summary_shapes_follow_the_article);
    tcase_add_test(tc, invalid_configurations_name_the_field);
    tcase_add_test(tc, tensor_names_follow_each_scheme);
    tcase_add_test(tc, seeded_initialisation_schemes);
    tcase_add_test(tc, model_creation_rejects_bad_options);
    tcase_add_test(tc, inference_batches_agree_and_captures_are_consistent);
    tcase_add_test(tc, inference_rejects_bad_arguments_and_leaves_outputs_untouched);
    tcase_add_test(tc, reshape_with_adaptive_pooling);
    tcase_add_test(tc, backend_selection);
    tcase_add_test(tc, devices_and_profiling);
    tcase_add_test(tc, save_and_load_round_trip);
    tcase_add_test(tc, classify_images_end_to_end);
    tcase_add_test(tc, top_k_orders_ties_and_nan);
    tcase_add_test(tc, every_allocation_failure_is_reported_and_leaks_nothing);
    suite_add_tcase(suite, tc);
    return test_run_suite(suite);
}
