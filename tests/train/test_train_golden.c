/* Training parity with PyTorch. For every case of tests/data/train_goldens.txt (made by
 * tools/make_train_goldens.py) this test builds the same seeded full-size model, checks that its weights are
 * the ones the goldens started from (per-tensor norms), takes the same two SGD steps with the trainer
 * (momentum 0.9, weight decay 5e-4, dropout off, batch 2, on the backend "auto" picks) and compares:
 *   - each step's loss: relative error <= 1e-4;
 *   - per tensor, the weight DELTA after the two steps (updated - initial):
 *       |norm(delta) - ref| / ref <= 1e-3, and max |delta_i - ref_i| / max |ref_i| <= 1e-3 over the sampled
 *       entries (the largest |delta| and pseudo-random ones).
 * The learning rates make every delta about 1e-3 of its tensor's norm, so a wrong gradient, a missing weight
 * decay term or a wrong momentum shows far above the tolerance. Errors are printed per case. */
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

#define GOLDEN_FILE "train_goldens.txt"
#define MAX_CASES 8
#define MAX_TENSORS 32
#define MAX_SAMPLES 8
#define BATCH 2
#define LOSS_TOLERANCE 1e-4
#define DELTA_TOLERANCE 1e-3
#define INIT_TOLERANCE 1e-6
#define REGENERATE "/usr/bin/python3 tools/make_train_goldens.py --lib <build dir>/lib/libalexnet.so"

typedef struct golden_tensor {
    char name[32];
    uint64_t elements;
    double init_norm, delta_norm;
    uint32_t samples;
    uint64_t index[MAX_SAMPLES];
    double delta[MAX_SAMPLES];
} golden_tensor;

typedef struct golden_case {
    char name[32], config[32];
    uint64_t seed;
    uint32_t batch, classes, tensor_count;
    double lr, momentum, weight_decay;
    uint64_t inputs[2 * BATCH];
    uint32_t labels[2 * BATCH];
    double losses[2];
    golden_tensor tensors[MAX_TENSORS];
} golden_case;

static golden_case goldens[MAX_CASES];
static size_t golden_count;
static char golden_error[2048];

/* ---- parsing: whitespace separated tokens, '#' comments ---- */

static FILE *golden_file;

static int next_token(char *buffer, size_t size)
{
    int c;
    for (;;) {
        c = fgetc(golden_file);
        if (c == '#')
            while ((c = fgetc(golden_file)) != EOF && c != '\n')
                continue;
        if (c == EOF)
            return 0;
        if (!isspace(c))
            break;
    }
    size_t length = 0;
    while (c != EOF && !isspace(c)) {
        if (length + 1 >= size)
            return 0;
        buffer[length++] = (char)c;
        c = fgetc(golden_file);
    }
    buffer[length] = '\0';
    return 1;
}

static int parse_fail(const char *what, const char *token)
{
    /* Bounded %s: the message always fits, whatever the data directory's path. */
    snprintf(golden_error, sizeof golden_error,
             "%.1024s/%s: expected %.64s, found \"%.64s\" (regenerate with " REGENERATE ")", test_data_dir(),
             GOLDEN_FILE, what, token);
    return 0;
}

static int word(const char *expected)
{
    char token[64];
    if (!next_token(token, sizeof token))
        return parse_fail(expected, "<end>");
    return strcmp(token, expected) == 0 ? 1 : parse_fail(expected, token);
}

static int text(char *out, size_t size) { return next_token(out, size) ? 1 : parse_fail("a name", "<end or overlong>"); }

static int u64(uint64_t *out)
{
    char token[64], *end = NULL;
    if (!next_token(token, sizeof token))
        return parse_fail("an integer", "<end>");
    errno = 0;
    *out = strtoull(token, &end, 10);
    return errno == 0 && end != token && *end == '\0' && token[0] != '-' ? 1 : parse_fail("an integer", token);
}

static int u32(uint32_t *out, uint32_t max)
{
    uint64_t v;
    if (!u64(&v))
        return 0;
    if (v > max)
        return parse_fail("a smaller integer", "too large");
    *out = (uint32_t)v;
    return 1;
}

static int real(double *out)
{
    char token[64], *end = NULL;
    if (!next_token(token, sizeof token))
        return parse_fail("a number", "<end>");
    *out = strtod(token, &end);
    return end != token && *end == '\0' && isfinite(*out) ? 1 : parse_fail("a number", token);
}

static int parse_tensor(golden_tensor *t)
{
    if (!word("tensor") || !text(t->name, sizeof t->name) || !u64(&t->elements) || !real(&t->init_norm) ||
        !real(&t->delta_norm) || !u32(&t->samples, MAX_SAMPLES))
        return 0;
    for (uint32_t i = 0; i < t->samples; i++)
        if (!u64(&t->index[i]) || !real(&t->delta[i]))
            return 0;
    return 1;
}

static int parse_case(golden_case *g)
{
    if (!word("case") || !text(g->name, sizeof g->name) || !text(g->config, sizeof g->config) || !u64(&g->seed) ||
        !u32(&g->batch, BATCH) || !u32(&g->classes, 1u << 20) || !real(&g->lr) || !real(&g->momentum) ||
        !real(&g->weight_decay) || !u32(&g->tensor_count, MAX_TENSORS))
        return 0;
    if (g->batch != BATCH)
        return parse_fail("batch 2", g->name);
    if (!word("inputs"))
        return 0;
    for (int i = 0; i < 2 * BATCH; i++)
        if (!u64(&g->inputs[i]))
            return 0;
    if (!word("labels"))
        return 0;
    for (int i = 0; i < 2 * BATCH; i++)
        if (!u32(&g->labels[i], g->classes - 1))
            return 0;
    if (!word("losses") || !real(&g->losses[0]) || !real(&g->losses[1]))
        return 0;
    for (uint32_t i = 0; i < g->tensor_count; i++)
        if (!parse_tensor(&g->tensors[i]))
            return 0;
    return word("end");
}

static void load_goldens(void)
{
    char path[1024];
    test_data_path(path, sizeof path, GOLDEN_FILE);
    golden_file = fopen(path, "r");
    if (golden_file == NULL) {
        snprintf(golden_error, sizeof golden_error, "cannot open %s: %s", path, strerror(errno));
        return;
    }
    uint64_t version = 0, count = 0;
    int ok = word("train_goldens") && u64(&version) && u64(&count);
    if (ok && (version != 1 || count == 0 || count > MAX_CASES))
        ok = parse_fail("format 1 with 1..8 cases", "something else");
    for (uint64_t i = 0; ok && i < count; i++)
        ok = parse_case(&goldens[i]);
    fclose(golden_file);
    golden_count = ok ? (size_t)count : 0;
}

/* ---- the case ---- */

static alexnet_variant variant_of(const golden_case *g)
{
    if (strcmp(g->config, "one-tower") == 0)
        return ALEXNET_VARIANT_ONE_TOWER;
    if (strcmp(g->config, "paper-2012") == 0)
        return ALEXNET_VARIANT_PAPER_2012;
    ck_assert_msg(strcmp(g->config, "torchvision") == 0, "%s: unknown configuration %s", g->name, g->config);
    return ALEXNET_VARIANT_TORCHVISION;
}

static double norm_of(const float *x, size_t n)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++)
        sum += (double)x[i] * x[i];
    return sqrt(sum);
}

static void tensor_of(const alexnet_model *model, size_t index, alexnet_tensor_info *info)
{
    memset(info, 0, sizeof *info);
    info->struct_size = sizeof *info;
    ck_assert_int_eq(alexnet_model_tensor(model, index, info), ALEXNET_OK);
}

static void check_initial_weights(const golden_case *g, const alexnet_model *model)
{
    ck_assert_msg(alexnet_model_tensor_count(model) == g->tensor_count, "%s: %zu tensors, goldens %u", g->name,
                  alexnet_model_tensor_count(model), g->tensor_count);
    for (uint32_t i = 0; i < g->tensor_count; i++) {
        alexnet_tensor_info info;
        tensor_of(model, i, &info);
        const golden_tensor *t = &g->tensors[i];
        ck_assert_msg(strcmp(info.name, t->name) == 0 && info.element_count == t->elements,
                      "%s: tensor %u is %s, goldens %s", g->name, i, info.name, t->name);
        double norm = norm_of(info.data, info.element_count);
        ck_assert_msg(fabs(norm - t->init_norm) <= INIT_TOLERANCE * t->init_norm,
                      "%s: %s has norm %.9g, the goldens started from %.9g: the seeded initialisation changed; "
                      "regenerate with " REGENERATE, g->name, t->name, norm, t->init_norm);
    }
}

static alexnet_trainer *case_trainer(const golden_case *g, const alexnet_model *model)
{
    alexnet_trainer_options options;
    alexnet_trainer_options_init(&options);
    options.batch = BATCH;
    options.learning_rate = (float)g->lr;
    options.momentum = (float)g->momentum;
    options.weight_decay = (float)g->weight_decay;
    options.dropout_rate = 0.0f;
    options.seed = 1;
    alexnet_trainer *trainer = NULL;
    ck_assert_msg(alexnet_trainer_create(model, &options, &trainer) == ALEXNET_OK, "%s: trainer_create: %s",
                  g->name, alexnet_last_error());
    return trainer;
}

static void take_steps(const golden_case *g, alexnet_trainer *trainer, const alexnet_config *config)
{
    size_t image = (size_t)config->input_channels * config->input_height * config->input_width;
    float *input = malloc(image * BATCH * sizeof *input);
    ck_assert_ptr_nonnull(input);
    for (int step = 0; step < 2; step++) {
        for (int b = 0; b < BATCH; b++)
            test_fill_input(input + b * image, image, g->inputs[step * BATCH + b]);
        float loss = 0.0f, accuracy = 0.0f;
        ck_assert_msg(alexnet_trainer_step(trainer, input, g->labels + step * BATCH, BATCH, &loss, &accuracy) ==
                      ALEXNET_OK, "%s: step %d: %s", g->name, step + 1, alexnet_last_error());
        double error = fabs(loss - g->losses[step]) / g->losses[step];
        printf("train-golden %-12s step %d loss %.7f (PyTorch %.7f, rel error %.1e)\n", g->name, step + 1, loss,
               g->losses[step], error);
        ck_assert_msg(error <= LOSS_TOLERANCE, "%s: step %d loss %.7g, PyTorch %.7g", g->name, step + 1, loss,
                      g->losses[step]);
    }
    free(input);
}

/* Returns the worst relative error of the tensor (norm or samples). */
static double compare_tensor(const golden_case *g, const golden_tensor *t, const float *before, const float *after)
{
    double sum = 0.0;
    for (uint64_t i = 0; i < t->elements; i++) {
        double d = (double)after[i] - before[i];
        sum += d * d;
    }
    double norm_error = fabs(sqrt(sum) - t->delta_norm) / t->delta_norm;
    double max_diff = 0.0, max_ref = 0.0;
    for (uint32_t s = 0; s < t->samples; s++) {
        ck_assert(t->index[s] < t->elements);
        double d = (double)after[t->index[s]] - before[t->index[s]];
        max_diff = fmax(max_diff, fabs(d - t->delta[s]));
        max_ref = fmax(max_ref, fabs(t->delta[s]));
    }
    double sample_error = max_diff / max_ref;
    if (norm_error > DELTA_TOLERANCE || sample_error > DELTA_TOLERANCE) {
        for (uint32_t s = 0; s < t->samples; s++)
            printf("    %s[%llu]: delta %.9g, PyTorch %.9g\n", t->name, (unsigned long long)t->index[s],
                   (double)after[t->index[s]] - before[t->index[s]], t->delta[s]);
    }
    ck_assert_msg(norm_error <= DELTA_TOLERANCE && sample_error <= DELTA_TOLERANCE,
                  "%s: %s: |delta| %.9g vs PyTorch %.9g (rel %.2e); sampled deltas rel error %.2e (limit %.0e)",
                  g->name, t->name, sqrt(sum), t->delta_norm, norm_error, sample_error, DELTA_TOLERANCE);
    return fmax(norm_error, sample_error);
}

static double seconds_now(void)
{
    struct timespec now;
    timespec_get(&now, TIME_UTC);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

START_TEST(golden_file_parses)
{
    ck_assert_msg(golden_count > 0, "%s", golden_error);
}
END_TEST

START_TEST(two_sgd_steps_match_pytorch)
{
    const golden_case *g = &goldens[_i];
    test_counting_allocator counter;
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.variant = variant_of(g);
    options.init = ALEXNET_INIT_KAIMING;
    options.allocator = test_counting_allocator_make(&counter);
    alexnet_model *model = NULL;
    ck_assert_msg(alexnet_model_create(&options, g->seed, &model) == ALEXNET_OK, "%s", alexnet_last_error());
    check_initial_weights(g, model);
    alexnet_config config;
    ck_assert_int_eq(alexnet_model_get_config(model, &config), ALEXNET_OK);

    double start = seconds_now();
    alexnet_trainer *trainer = case_trainer(g, model);
    take_steps(g, trainer, &config);
    alexnet_model *trained = NULL;
    ck_assert_msg(alexnet_trainer_export_model(trainer, &trained) == ALEXNET_OK, "%s", alexnet_last_error());
    double seconds = seconds_now() - start;
    alexnet_trainer_destroy(trainer);

    double worst = 0.0;
    const char *worst_name = "";
    for (uint32_t i = 0; i < g->tensor_count; i++) {
        alexnet_tensor_info before, after;
        tensor_of(model, i, &before);
        tensor_of(trained, i, &after);
        double error = compare_tensor(g, &g->tensors[i], before.data, after.data);
        if (error >= worst) {
            worst = error;
            worst_name = g->tensors[i].name;
        }
    }
    printf("train-golden %-12s weight deltas after 2 steps: worst rel error %.2e (%s), limit %.0e; "
           "%.1f s for the two steps\n", g->name, worst, worst_name, DELTA_TOLERANCE, seconds);
    fflush(stdout);
    alexnet_model_destroy(trained);
    alexnet_model_destroy(model);
    test_assert_no_leaks_in(&counter, g->name);
}
END_TEST

int main(void)
{
    load_goldens();
    Suite *suite = suite_create("train-golden");
    TCase *tcase = tcase_create("pytorch");
    tcase_set_timeout(tcase, 900);
    tcase_add_test(tcase, golden_file_parses);
    tcase_add_loop_test(tcase, two_sgd_steps_match_pytorch, 0, (int)golden_count);
    suite_add_tcase(suite, tcase);
    return test_run_suite(suite);
}
