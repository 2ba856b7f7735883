/* Parity with PyTorch. Every case of tests/data/goldens.txt (made by tools/make_goldens.py) names a seeded
 * model and a batch of deterministic inputs, and holds PyTorch's float64 logits for them. This test builds
 * the same model through the public API, checks that its weights are the ones the goldens were made from,
 * runs inference on the backend "auto" picks (ALEXNET_BACKEND may override it) and compares:
 *   - logits: max |out - ref| / max |ref| <= 1e-4;
 *   - the top-5 classes of every image, exactly;
 *   - probabilities against softmax(reference logits), within 1e-5 absolute;
 * and, so that the comparison says something about the input path, that the images' top-5 lists differ.
 * The measured error of each case is printed to stdout. */
#include <check.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alexnet/alexnet.h"
#include "test_check.h"
#include "test_support.h"

#define GOLDEN_FILE "goldens.txt"
#define GOLDEN_FORMAT_VERSION 1
#define MAX_CASES 16
#define MAX_BATCH 4
#define MAX_CLASSES 1000
#define TOP_K 5
#define LOGIT_TOLERANCE 1e-4
#define PROBABILITY_TOLERANCE 1e-5
#define REGENERATE "/usr/bin/python3 tools/make_goldens.py --lib <build dir>/lib/libalexnet.so"

typedef struct golden_image {
    uint64_t input_seed;
    uint32_t top[TOP_K];
    double logits[MAX_CLASSES];
} golden_image;

typedef struct golden_case {
    char name[64];
    char config[32]; /* a preset's name, or "custom-small" (custom_small_config below) */
    char init[16];
    uint64_t seed;
    uint32_t channels, height, width, batch, input_scale, classes;
    uint64_t parameters, checksum;
    golden_image images[MAX_BATCH];
} golden_case;

/* Parsed once in main(), before the runner forks: the loop test needs the case count up front. */
static golden_case goldens[MAX_CASES];
static size_t golden_count;
static char golden_error[2048];

/* ---- the golden file: whitespace separated tokens, '#' comments to the end of the line ---- */

typedef struct token_reader {
    FILE *file;
    unsigned line;
} token_reader;

static int skip_space_and_comments(token_reader *r)
{
    int c;
    while ((c = fgetc(r->file)) != EOF) {
        if (c == '#') {
            while ((c = fgetc(r->file)) != EOF && c != '\n')
                continue;
        }
        if (c == '\n')
            r->line++;
        else if (c != EOF && !isspace(c))
            return c;
    }
    return EOF;
}

/* The next token into buffer; 0 at the end of the file or for a token that does not fit. */
static int next_token(token_reader *r, char *buffer, size_t size)
{
    int c = skip_space_and_comments(r);
    size_t length = 0;
    while (c != EOF && !isspace(c)) {
        if (length + 1 >= size)
            return 0;
        buffer[length++] = (char)c;
        c = fgetc(r->file);
    }
    if (c == '\n')
        r->line++;
    buffer[length] = '\0';
    return length > 0;
}

static int parse_fail(const token_reader *r, const char *what, const char *token)
{
    snprintf(golden_error, sizeof golden_error, "%s/%s line %u: expected %s, found \"%s\"", test_data_dir(),
             GOLDEN_FILE, r->line + 1, what, token);
    return 0;
}

static int read_word(token_reader *r, const char *what, char *out, size_t size)
{
    if (!next_token(r, out, size))
        return parse_fail(r, what, "<end of file or overlong token>");
    return 1;
}

static int expect_word(token_reader *r, const char *word)
{
    char token[64];
    if (!read_word(r, word, token, sizeof token))
        return 0;
    return strcmp(token, word) == 0 ? 1 : parse_fail(r, word, token);
}

static int read_u64(token_reader *r, const char *what, int base, uint64_t *out)
{
    char token[64], *end = NULL;
    if (!read_word(r, what, token, sizeof token))
        return 0;
    errno = 0;
    unsigned long long value = strtoull(token, &end, base);
    if (errno != 0 || end == token || *end != '\0' || token[0] == '-')
        return parse_fail(r, what, token);
    *out = value;
    return 1;
}

static int read_u32(token_reader *r, const char *what, uint32_t max, uint32_t *out)
{
    uint64_t value;
    if (!read_u64(r, what, 10, &value))
        return 0;
    if (value > max) {
        char token[64];
        snprintf(token, sizeof token, "%llu (more than %u)", (unsigned long long)value, max);
        return parse_fail(r, what, token);
    }
    *out = (uint32_t)value;
    return 1;
}

static int read_double(token_reader *r, const char *what, double *out)
{
    char token[64], *end = NULL;
    if (!read_word(r, what, token, sizeof token))
        return 0;
    *out = strtod(token, &end);
    if (end == token || *end != '\0' || !isfinite(*out))
        return parse_fail(r, what, token);
    return 1;
}

static int parse_image(token_reader *r, const golden_case *g, uint32_t index, golden_image *image)
{
    uint32_t read_index;
    if (!expect_word(r, "image") || !read_u32(r, "image index", MAX_BATCH, &read_index) ||
        !read_u64(r, "input seed", 10, &image->input_seed))
        return 0;
    if (read_index != index)
        return parse_fail(r, "images in order", "a different index");
    for (int k = 0; k < TOP_K; k++) {
        if (!read_u32(r, "top-5 class", g->classes - 1, &image->top[k]))
            return 0;
    }
    for (uint32_t i = 0; i < g->classes; i++) {
        if (!read_double(r, "logit", &image->logits[i]))
            return 0;
    }
    return 1;
}

static int parse_case(token_reader *r, golden_case *g)
{
    if (!expect_word(r, "case") || !read_word(r, "case name", g->name, sizeof g->name) ||
        !read_word(r, "configuration", g->config, sizeof g->config) || !read_u64(r, "seed", 10, &g->seed) ||
        !read_word(r, "init scheme", g->init, sizeof g->init) ||
        !read_u32(r, "channels", 3, &g->channels) || !read_u32(r, "height", 4096, &g->height) ||
        !read_u32(r, "width", 4096, &g->width) || !read_u32(r, "batch", MAX_BATCH, &g->batch) ||
        !read_u32(r, "input scale", 1u << 20, &g->input_scale) ||
        !read_u32(r, "classes", MAX_CLASSES, &g->classes) || !read_u64(r, "parameters", 10, &g->parameters) ||
        !read_u64(r, "checksum", 16, &g->checksum))
        return 0;
    if (g->batch == 0 || g->classes < TOP_K || g->input_scale == 0 || (g->input_scale & (g->input_scale - 1)))
        return parse_fail(r, "batch >= 1, classes >= 5, a power-of-two input scale", g->name);
    for (uint32_t b = 0; b < g->batch; b++) {
        if (!parse_image(r, g, b, &g->images[b]))
            return 0;
    }
    return expect_word(r, "end");
}

/* Fills goldens[] and golden_count, or leaves golden_count 0 with the reason in golden_error. */
static void load_goldens(void)
{
    char path[1024];
    test_data_path(path, sizeof path, GOLDEN_FILE);
    token_reader reader = {fopen(path, "r"), 0};
    if (reader.file == NULL) {
        snprintf(golden_error, sizeof golden_error, "cannot open %s: %s (regenerate with " REGENERATE ")", path,
                 strerror(errno));
        return;
    }
    uint64_t version = 0, count = 0;
    char extra[64];
    int ok = expect_word(&reader, "goldens") && read_u64(&reader, "format version", 10, &version) &&
             read_u64(&reader, "case count", 10, &count);
    if (ok && (version != GOLDEN_FORMAT_VERSION || count == 0 || count > MAX_CASES))
        ok = parse_fail(&reader, "format version 1 and 1..16 cases", "something else");
    for (uint64_t i = 0; ok && i < count; i++)
        ok = parse_case(&reader, &goldens[i]);
    if (ok && next_token(&reader, extra, sizeof extra))
        ok = parse_fail(&reader, "the end of the file", extra);
    fclose(reader.file);
    golden_count = ok ? (size_t)count : 0;
}

/* ---- building a case's model ---- */

/* Mirrors custom_small_config() in tools/make_goldens.py number for number: a 1-channel 28 x 28 net with
 * grouped convolutions, an even LRN size with the paper's absolute alpha, two pools, no adaptive pooling. */
static void custom_small_config(alexnet_config *c)
{
    static const alexnet_conv_layer_config layers[] = {
        /* out_channels, kernel, stride, padding, groups, lrn, max_pool */
        {16, 3, 1, 1, 1, 1, 1}, {32, 3, 1, 1, 2, 1, 1}, {48, 3, 1, 1, 1, 0, 0},
        {48, 3, 1, 1, 2, 0, 0}, {32, 3, 1, 1, 1, 0, 0},
    };
    ck_assert_int_eq(alexnet_config_preset(ALEXNET_VARIANT_ONE_TOWER, c), ALEXNET_OK);
    c->variant = ALEXNET_VARIANT_CUSTOM;
    c->input_channels = 1;
    c->input_height = c->input_width = 28;
    c->conv_count = sizeof layers / sizeof layers[0];
    memset(c->conv, 0, sizeof c->conv);
    memcpy(c->conv, layers, sizeof layers);
    c->lrn_size = 4;
    c->lrn_alpha = 5e-6f;
    c->lrn_beta = 0.75f;
    c->lrn_k = 2.0f;
    c->lrn_alpha_scaling = ALEXNET_LRN_ALPHA_ABSOLUTE;
    c->adaptive_pool_size = 0;
    c->hidden_fc_count = 2;
    c->hidden_fc[0] = c->hidden_fc[1] = 64;
    c->hidden_fc[2] = c->hidden_fc[3] = 0;
    c->num_classes = 10;
    c->dropout_placement = ALEXNET_DROPOUT_AFTER_HIDDEN_FC;
    ck_assert_msg(alexnet_config_validate(c) == ALEXNET_OK, "custom-small: %s", alexnet_last_error());
}

static alexnet_init_scheme init_from_name(const golden_case *g)
{
    static const struct { const char *name; alexnet_init_scheme scheme; } schemes[] = {
        {"default", ALEXNET_INIT_DEFAULT}, {"paper", ALEXNET_INIT_PAPER},
        {"caffe", ALEXNET_INIT_CAFFE},     {"kaiming", ALEXNET_INIT_KAIMING},
    };
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        if (strcmp(g->init, schemes[i].name) == 0)
            return schemes[i].scheme;
    }
    ck_abort_msg("%s: unknown init scheme \"%s\"", g->name, g->init);
    return ALEXNET_INIT_DEFAULT;
}

/* Presets go through options.variant as most callers would; the custom net through options.config. */
static void case_model_options(const golden_case *g, alexnet_config *config, alexnet_model_options *options)
{
    static const struct { const char *name; alexnet_variant variant; } presets[] = {
        {"one-tower", ALEXNET_VARIANT_ONE_TOWER},
        {"paper-2012", ALEXNET_VARIANT_PAPER_2012},
        {"torchvision", ALEXNET_VARIANT_TORCHVISION},
    };
    options->init = init_from_name(g);
    if (strcmp(g->config, "custom-small") == 0) {
        custom_small_config(config);
        options->variant = ALEXNET_VARIANT_CUSTOM;
        options->config = config;
        return;
    }
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++) {
        if (strcmp(g->config, presets[i].name) == 0) {
            options->variant = presets[i].variant;
            return;
        }
    }
    ck_abort_msg("%s: unknown configuration \"%s\"", g->name, g->config);
}

/* FNV-1a 64 over the bytes of every tensor in file order, as tools/make_goldens.py computes it from the
 * saved file. The library runs on little-endian hosts only, so the in-memory floats are the file's bytes. */
static uint64_t model_checksum(const alexnet_model *model)
{
    uint64_t hash = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < alexnet_model_tensor_count(model); i++) {
        alexnet_tensor_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        ck_assert_int_eq(alexnet_model_tensor(model, i, &info), ALEXNET_OK);
        const unsigned char *bytes = (const unsigned char *)info.data;
        for (size_t j = 0; j < info.element_count * sizeof(float); j++)
            hash = (hash ^ bytes[j]) * 0x100000001B3ull;
    }
    return hash;
}

/* ---- comparisons ---- */

static double logits_relative_error(const golden_case *g, const float *logits)
{
    double max_diff = 0.0, max_ref = 0.0;
    for (uint32_t b = 0; b < g->batch; b++) {
        for (uint32_t i = 0; i < g->classes; i++) {
            double ref = g->images[b].logits[i];
            double diff = fabs((double)logits[(size_t)b * g->classes + i] - ref);
            max_diff = isnan(diff) || diff > max_diff ? (isnan(diff) ? INFINITY : diff) : max_diff;
            max_ref = fabs(ref) > max_ref ? fabs(ref) : max_ref;
        }
    }
    return max_diff / max_ref;
}

/* max |p - softmax(ref)| over the batch, the softmax in double. */
static double probability_error(const golden_case *g, const float *probabilities)
{
    double worst = 0.0;
    for (uint32_t b = 0; b < g->batch; b++) {
        const double *ref = g->images[b].logits;
        double max = ref[0], sum = 0.0;
        for (uint32_t i = 1; i < g->classes; i++)
            max = ref[i] > max ? ref[i] : max;
        for (uint32_t i = 0; i < g->classes; i++)
            sum += exp(ref[i] - max);
        for (uint32_t i = 0; i < g->classes; i++) {
            double diff = fabs((double)probabilities[(size_t)b * g->classes + i] - exp(ref[i] - max) / sum);
            worst = isnan(diff) || diff > worst ? (isnan(diff) ? INFINITY : diff) : worst;
        }
    }
    return worst;
}

/* 1 when image b's top-5 (ties to the lower index) is the golden one. */
static int top5_matches(const golden_case *g, uint32_t b, const float *logits, char *found, size_t size)
{
    alexnet_class_score best[TOP_K];
    ck_assert_int_eq(alexnet_top_k(logits + (size_t)b * g->classes, g->classes, TOP_K, best), ALEXNET_OK);
    int same = 1;
    size_t used = 0;
    for (int k = 0; k < TOP_K; k++) {
        same &= best[k].class_index == g->images[b].top[k];
        used += (size_t)snprintf(found + used, size - used, "%s%u", k ? " " : "", best[k].class_index);
    }
    return same;
}

static int same_top5(const golden_image *a, const golden_image *b)
{
    return memcmp(a->top, b->top, sizeof a->top) == 0;
}

static double seconds_now(void)
{
    struct timespec now;
    timespec_get(&now, TIME_UTC);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

/* ---- tests ---- */

START_TEST(test_golden_file)
{
    ck_assert_msg(golden_count > 0, "%s", golden_error);
    /* The comparison is only meaningful when the inputs steer the result (see tools/make_goldens.py). */
    for (size_t i = 0; i < golden_count; i++) {
        const golden_case *g = &goldens[i];
        for (uint32_t a = 0; a < g->batch; a++)
            for (uint32_t b = a + 1; b < g->batch; b++)
                ck_assert_msg(!same_top5(&g->images[a], &g->images[b]),
                              "%s: images %u and %u have the same top-5: the goldens do not depend on the input",
                              g->name, a, b);
    }
}
END_TEST

/* The inputs of a case: test_fill_input(seed) per image, times the case's (power-of-two, so exact) scale. */
static float *case_inputs(const golden_case *g)
{
    size_t image = (size_t)g->channels * g->height * g->width;
    float *input = malloc(image * g->batch * sizeof *input);
    ck_assert_ptr_nonnull(input);
    for (uint32_t b = 0; b < g->batch; b++) {
        test_fill_input(input + b * image, image, g->images[b].input_seed);
        for (size_t i = 0; i < image; i++)
            input[b * image + i] *= (float)g->input_scale;
    }
    return input;
}

/* A context for the case's batch and input size (reshaped when it is not the configured one). */
static alexnet_context *case_context(const golden_case *g, const alexnet_model *model)
{
    alexnet_context_options options;
    alexnet_context_options_init(&options);
    options.batch = g->batch;
    alexnet_context *context = NULL;
    ck_assert_msg(alexnet_context_create(model, &options, &context) == ALEXNET_OK, "%s: alexnet_context_create: %s",
                  g->name, alexnet_last_error());
    alexnet_config config;
    ck_assert_int_eq(alexnet_model_get_config(model, &config), ALEXNET_OK);
    if (config.input_height != g->height || config.input_width != g->width)
        ck_assert_msg(alexnet_context_reshape(context, g->batch, g->height, g->width) == ALEXNET_OK,
                      "%s: alexnet_context_reshape(%u, %u, %u): %s", g->name, g->batch, g->height, g->width,
                      alexnet_last_error());
    size_t batch = 0;
    uint32_t height = 0, width = 0;
    ck_assert_int_eq(alexnet_context_get_shape(context, &batch, &height, &width), ALEXNET_OK);
    ck_assert_msg(batch == g->batch && height == g->height && width == g->width, "%s: context shape %zu x %ux%u",
                  g->name, batch, height, width);
    return context;
}

static void check_outputs(const golden_case *g, const char *backend, const float *logits,
                          const float *probabilities, double seconds)
{
    double logit_error = logits_relative_error(g, logits);
    double prob_error = probability_error(g, probabilities);
    char found[MAX_BATCH][64];
    int matches[MAX_BATCH], top5_ok = 1;
    for (uint32_t b = 0; b < g->batch; b++) {
        matches[b] = top5_matches(g, b, logits, found[b], sizeof found[b]);
        top5_ok &= matches[b];
    }
    printf("golden %-20s backend %-10s max|out-ref|/max|ref| = %.3e (limit %.0e)  top-5 %s  "
           "max|p-softmax(ref)| = %.2e  %.1f ms/image\n",
           g->name, backend, logit_error, LOGIT_TOLERANCE, top5_ok ? "match" : "DIFFER", prob_error,
           1e3 * seconds / g->batch);
    fflush(stdout);
    ck_assert_msg(logit_error <= LOGIT_TOLERANCE, "%s: max|out - ref| / max|ref| = %.3e > %.0e", g->name,
                  logit_error, LOGIT_TOLERANCE);
    for (uint32_t b = 0; b < g->batch; b++) {
        const uint32_t *t = g->images[b].top;
        ck_assert_msg(matches[b],
                      "%s image %u: top-5 %s, PyTorch %u %u %u %u %u", g->name, b, found[b], t[0], t[1], t[2],
                      t[3], t[4]);
    }
    ck_assert_msg(prob_error <= PROBABILITY_TOLERANCE, "%s: max|p - softmax(ref)| = %.3e > %.0e", g->name,
                  prob_error, PROBABILITY_TOLERANCE);
}

START_TEST(test_golden_case)
{
    const golden_case *g = &goldens[_i];
    test_counting_allocator counter;
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.allocator = test_counting_allocator_make(&counter);
    alexnet_config config;
    case_model_options(g, &config, &options);

    alexnet_model *model = NULL;
    ck_assert_msg(alexnet_model_create(&options, g->seed, &model) == ALEXNET_OK, "%s: alexnet_model_create: %s",
                  g->name, alexnet_last_error());
    ck_assert_msg(alexnet_model_parameter_count(model) == g->parameters && alexnet_model_num_classes(model) ==
                  g->classes, "%s: the model has %llu parameters and %u classes, the goldens %llu and %u",
                  g->name, (unsigned long long)alexnet_model_parameter_count(model),
                  alexnet_model_num_classes(model), (unsigned long long)g->parameters, g->classes);
    uint64_t checksum = model_checksum(model);
    ck_assert_msg(checksum == g->checksum,
                  "%s: the weights of seed %llu hash to %016llx, the goldens were made from %016llx. The seeded "
                  "initialisation changed; if that was intended, regenerate the goldens: " REGENERATE,
                  g->name, (unsigned long long)g->seed, (unsigned long long)checksum,
                  (unsigned long long)g->checksum);

    alexnet_context *context = case_context(g, model);
    float *input = case_inputs(g);
    float *logits = calloc((size_t)g->batch * g->classes, sizeof *logits);
    float *probabilities = calloc((size_t)g->batch * g->classes, sizeof *probabilities);
    ck_assert(logits != NULL && probabilities != NULL);
    double start = seconds_now();
    ck_assert_msg(alexnet_infer(context, input, g->batch, logits, probabilities) == ALEXNET_OK,
                  "%s: alexnet_infer: %s", g->name, alexnet_last_error());
    double seconds = seconds_now() - start;
    check_outputs(g, alexnet_context_backend_name(context), logits, probabilities, seconds);

    free(input);
    free(logits);
    free(probabilities);
    alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    test_assert_no_leaks_in(&counter, g->name);
}
END_TEST

int main(void)
{
    load_goldens();
    Suite *suite = suite_create("golden");
    TCase *tcase = tcase_create("pytorch");
    tcase_set_timeout(tcase, 600);
    tcase_add_test(tcase, test_golden_file);
    tcase_add_loop_test(tcase, test_golden_case, 0, (int)golden_count);
    suite_add_tcase(suite, tcase);
    return test_run_suite(suite);
}
