/* alexnet: a command-line front end to libalexnet, written against the public header only.
 *
 *   alexnet summary    the layer table and parameter count of a variant
 *   alexnet classify   classify image files in one batch
 *   alexnet bench      time inference on a backend
 *   alexnet backends   list the compute backends
 *   alexnet demo       summary + classification of the bundled sample image
 *
 * The library never prints; everything the user sees is written here. Exit codes: 0 success, 1 a failure
 * (library, file or system), 2 a wrong command line. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime under -std=c11 */
#endif

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alexnet/alexnet.h"
#include "cli_image.h"
#include "cli_labels.h"
#include "cli_options.h"

/* meson points this at examples/data in the source tree; the fallback works from the source root. */
#ifndef ALEXNET_EXAMPLES_DATA_DIR
#define ALEXNET_EXAMPLES_DATA_DIR "examples/data"
#endif

/* ---- small helpers ------------------------------------------------------------------------------------ */

/* Print "alexnet: <status>: <detail>" and return the failure exit code. The detail is copied first because
 * alexnet_last_error()'s text is only valid until the next call into the library. */
static int report_failure(alexnet_status status)
{
    char detail[512];
    snprintf(detail, sizeof detail, "%s", alexnet_last_error());
    const char *what = alexnet_status_string(status);
    if (detail[0] != '\0') {
        fprintf(stderr, "alexnet: %s: %s\n", what, detail);
    } else {
        fprintf(stderr, "alexnet: %s\n", what);
    }
    return CLI_EXIT_FAILURE;
}

/* 62378344 -> "62,378,344". */
static const char *format_count(uint64_t value, char *buffer, size_t size)
{
    char digits[24];
    int digit_count = snprintf(digits, sizeof digits, "%llu", (unsigned long long)value);
    size_t out = 0;
    for (int i = 0; i < digit_count && out + 2 < size; i++) {
        if (i > 0 && (digit_count - i) % 3 == 0) {
            buffer[out++] = ',';
        }
        buffer[out++] = digits[i];
    }
    buffer[out] = '\0';
    return buffer;
}

/* Milliseconds on a clock that never jumps (wall-clock time can be adjusted while a benchmark runs). */
static double monotonic_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec * 1e3 + (double)now.tv_nsec / 1e6;
}

static const char *variant_description(alexnet_variant variant)
{
    switch (variant) {
    case ALEXNET_VARIANT_ONE_TOWER: return "the classic article's single-tower network";
    case ALEXNET_VARIANT_PAPER_2012: return "the 2012 paper's two towers as groups=2, with LRN (Caffe's bvlc_alexnet)";
    case ALEXNET_VARIANT_TORCHVISION: return "torchvision.models.alexnet";
    case ALEXNET_VARIANT_CUSTOM: break;
    }
    return "a custom configuration";
}

static alexnet_status create_seeded_model(alexnet_variant variant, uint64_t seed, alexnet_model **out_model)
{
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.variant = variant;
    return alexnet_model_create(&options, seed, out_model);
}

static alexnet_status create_context(const alexnet_model *model, const char *backend, size_t batch,
                                     alexnet_context **out_context)
{
    alexnet_context_options options;
    alexnet_context_options_init(&options);
    options.backend = backend;
    options.batch = (uint32_t)batch;
    return alexnet_context_create(model, &options, out_context);
}

/* ---- summary ------------------------------------------------------------------------------------------ */

static const char *layer_type_name(const alexnet_layer_info *row)
{
    switch (row->type) {
    case ALEXNET_LAYER_INPUT: return "input";
    case ALEXNET_LAYER_CONV: return row->relu ? "conv + relu" : "conv";
    case ALEXNET_LAYER_LRN: return "lrn";
    case ALEXNET_LAYER_MAX_POOL: return "max pool";
    case ALEXNET_LAYER_ADAPTIVE_AVG_POOL: return "adaptive avg pool";
    case ALEXNET_LAYER_DROPOUT: return "dropout";
    case ALEXNET_LAYER_FC: return row->relu ? "fc + relu" : "fc";
    case ALEXNET_LAYER_SOFTMAX: return "softmax";
    }
    return "?";
}

/* Only convolution and pooling have a meaningful stride and padding (0 is a real value for them), so those
 * columns stay blank for the other layers instead of showing misleading zeros. */
static void print_layer_row(const alexnet_layer_info *row)
{
    int windowed = row->type == ALEXNET_LAYER_CONV || row->type == ALEXNET_LAYER_MAX_POOL;
    /* Sized for the widest uint32 values so snprintf can never truncate. */
    char kernel[24] = "", stride[12] = "", padding[12] = "", groups[12] = "", shape[36], parameters[32];
    if (row->type == ALEXNET_LAYER_LRN && row->kernel_size != 0) {
        /* LRN's window runs across neighbouring channels, not over a spatial square. */
        snprintf(kernel, sizeof kernel, "%u ch", (unsigned)row->kernel_size);
    } else if (row->kernel_size != 0) {
        snprintf(kernel, sizeof kernel, "%ux%u", (unsigned)row->kernel_size, (unsigned)row->kernel_size);
    }
    if (windowed) {
        snprintf(stride, sizeof stride, "%u", (unsigned)row->stride);
        snprintf(padding, sizeof padding, "%u", (unsigned)row->padding);
    }
    if (row->type == ALEXNET_LAYER_CONV) {
        snprintf(groups, sizeof groups, "%u", (unsigned)row->groups);
    }
    snprintf(shape, sizeof shape, "%ux%ux%u", (unsigned)row->channels, (unsigned)row->height,
             (unsigned)row->width);
    format_count(row->parameter_count, parameters, sizeof parameters);
    printf("%-8s %-18s %-6s %6s %4s %6s  %-12s %12s\n", row->name, layer_type_name(row), kernel, stride, padding,
           groups, shape, parameters);
}

/* Print the layer table of `variant` at size x size (0 = the configured size) and its parameter total. */
static int print_summary(alexnet_variant variant, uint32_t size)
{
    alexnet_config config;
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    alexnet_status status = alexnet_config_preset(variant, &config);
    size_t row_count = 0;
    uint64_t total = 0;
    if (status == ALEXNET_OK) {
        status = alexnet_config_summary(&config, size, size, NULL, 0, &row_count);
    }
    if (status == ALEXNET_OK) {
        status = alexnet_config_parameter_count(&config, &total);
    }
    if (status != ALEXNET_OK) {
        return report_failure(status);
    }
    alexnet_layer_info *rows = calloc(row_count, sizeof *rows);
    if (rows == NULL) {
        fprintf(stderr, "alexnet: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    for (size_t i = 0; i < row_count; i++) {
        rows[i].struct_size = sizeof rows[i];
    }
    status = alexnet_config_summary(&config, size, size, rows, row_count, &row_count);
    if (status != ALEXNET_OK) {
        free(rows);
        return report_failure(status);
    }

    uint32_t height = size != 0 ? size : config.input_height;
    uint32_t width = size != 0 ? size : config.input_width;
    printf("AlexNet %s: %s\n", cli_variant_name(variant), variant_description(variant));
    printf("Input %ux%ux%u\n\n", (unsigned)config.input_channels, (unsigned)height, (unsigned)width);
    printf("%-8s %-18s %-6s %6s %4s %6s  %-12s %12s\n", "layer", "type", "kernel", "stride", "pad", "groups",
           "output", "parameters");
    for (size_t i = 0; i < row_count; i++) {
        print_layer_row(&rows[i]);
    }
    free(rows);

    char total_text[32];
    printf("\nTotal parameters: %s\n", format_count(total, total_text, sizeof total_text));
    return CLI_EXIT_OK;
}

static int command_summary(const cli_options *options)
{
    return print_summary(options->variant, options->size);
}

/* ---- classify ----------------------------------------------------------------------------------------- */

/* Everything one classification run owns, so a single cleanup path releases it whatever failed. */
typedef struct classify_run {
    cli_labels labels;
    cli_image *images;
    alexnet_image *views;
    size_t image_count;
    alexnet_model *model;
    alexnet_context *context;
    alexnet_class_score *scores;
} classify_run;

static void classify_run_release(classify_run *run)
{
    free(run->scores);
    alexnet_context_destroy(run->context);
    alexnet_model_destroy(run->model);
    for (size_t i = 0; i < run->image_count; i++) {
        cli_image_free(&run->images[i]);
    }
    free(run->views);
    free(run->images);
    cli_labels_free(&run->labels);
}

static int load_images(classify_run *run, const char *const *paths, size_t count)
{
    run->images = calloc(count, sizeof *run->images);
    run->views = calloc(count, sizeof *run->views);
    if (run->images == NULL || run->views == NULL) {
        fprintf(stderr, "alexnet: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    for (size_t i = 0; i < count; i++) {
        char error[256];
        if (cli_image_load(paths[i], &run->images[i], error, sizeof error) != 0) {
            fprintf(stderr, "alexnet: %s: %s\n", paths[i], error);
            return CLI_EXIT_FAILURE;
        }
        run->image_count = i + 1;
        run->views[i] = cli_image_view(&run->images[i]);
    }
    return CLI_EXIT_OK;
}

/* Load --weights, or seed random weights and say plainly that they are untrained. */
static int create_classify_model(const cli_options *options, alexnet_model **out_model)
{
    alexnet_status status;
    if (options->weights != NULL) {
        alexnet_model_options model_options;
        alexnet_model_options_init(&model_options);
        model_options.variant = options->variant;
        status = alexnet_model_load(options->weights, &model_options, out_model);
    } else {
        status = create_seeded_model(options->variant, options->seed, out_model);
    }
    if (status != ALEXNET_OK) {
        return report_failure(status);
    }
    if (options->weights == NULL) {
        printf("NOTE: no --weights given, so the weights are seeded random initialisation (seed %llu),\n"
               "      untrained: the classes below are meaningless. Pass --weights FILE.safetensors for\n"
               "      real predictions.\n",
               (unsigned long long)options->seed);
    }
    return CLI_EXIT_OK;
}

static void print_results(const classify_run *run, const char *const *paths, size_t k)
{
    for (size_t i = 0; i < run->image_count; i++) {
        printf("%s (%ux%u):\n", paths[i], (unsigned)run->images[i].width, (unsigned)run->images[i].height);
        for (size_t j = 0; j < k; j++) {
            const alexnet_class_score *score = &run->scores[i * k + j];
            printf("  %.6f  %5u  %s\n", (double)score->score, (unsigned)score->class_index,
                   cli_labels_name(&run->labels, score->class_index));
        }
    }
}

/* Steps after the images and labels are loaded: model, context, one batched classification, printout. */
static int classify_loaded(classify_run *run, const cli_options *options, const char *const *paths)
{
    int result = create_classify_model(options, &run->model);
    if (result != CLI_EXIT_OK) {
        return result;
    }
    uint32_t class_count = alexnet_model_num_classes(run->model);
    if (options->top_k > class_count) {
        fprintf(stderr, "alexnet: --top %u is more than the model's %u classes\n", (unsigned)options->top_k,
                (unsigned)class_count);
        return CLI_EXIT_USAGE;
    }
    if (run->labels.count != class_count) {
        fprintf(stderr, "alexnet: warning: %zu labels for a model with %u classes; unnamed classes show as '?'\n",
                run->labels.count, (unsigned)class_count);
    }
    size_t k = options->top_k;
    run->scores = calloc(run->image_count * k, sizeof *run->scores);
    if (run->scores == NULL) {
        fprintf(stderr, "alexnet: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    alexnet_status status = create_context(run->model, options->backend, run->image_count, &run->context);
    if (status != ALEXNET_OK) {
        return report_failure(status);
    }
    double start = monotonic_ms();
    status = alexnet_classify_images(run->context, run->views, run->image_count, NULL, k, run->scores);
    double elapsed = monotonic_ms() - start;
    if (status != ALEXNET_OK) {
        return report_failure(status);
    }
    print_results(run, paths, k);
    printf("Classified %zu image%s on backend '%s' in %.1f ms (preprocessing + inference).\n", run->image_count,
           run->image_count == 1 ? "" : "s", alexnet_context_backend_name(run->context), elapsed);
    return CLI_EXIT_OK;
}

static int classify_paths(const cli_options *options, const char *const *paths, size_t count)
{
    classify_run run;
    memset(&run, 0, sizeof run);
    char error[256];
    int result = CLI_EXIT_OK;
    if (cli_labels_load(options->labels, &run.labels, error, sizeof error) != 0) {
        fprintf(stderr, "alexnet: %s: %s\n", options->labels, error);
        result = CLI_EXIT_FAILURE;
    }
    if (result == CLI_EXIT_OK) {
        result = load_images(&run, paths, count);
    }
    if (result == CLI_EXIT_OK) {
        result = classify_loaded(&run, options, paths);
    }
    classify_run_release(&run);
    return result;
}

static int command_classify(const cli_options *options)
{
    if (options->positional_count == 0) {
        fprintf(stderr, "alexnet: classify needs at least one image\n");
        return CLI_EXIT_USAGE;
    }
    return classify_paths(options, options->positional, options->positional_count);
}

/* ---- bench -------------------------------------------------------------------------------------------- */

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of_sorted(const double *values, size_t count)
{
    return count % 2 ? values[count / 2] : (values[count / 2 - 1] + values[count / 2]) / 2;
}

/* Deterministic inputs in [-2, 2), roughly the range of normalised pixels; the values do not matter for
 * timing, only that they are not all zero (which some kernels could shortcut). */
static void fill_bench_input(float *input, size_t count)
{
    uint32_t state = 12345u;
    for (size_t i = 0; i < count; i++) {
        state = state * 1664525u + 1013904223u;
        input[i] = (float)(state >> 8) / (float)(1u << 24) * 4.0f - 2.0f;
    }
}

static void print_bench_results(const alexnet_context *context, const cli_options *options, uint32_t channels,
                                uint32_t height, uint32_t width, double *times_ms)
{
    size_t n = options->iterations;
    qsort(times_ms, n, sizeof *times_ms, compare_doubles);
    double median = median_of_sorted(times_ms, n), low = times_ms[0], high = times_ms[n - 1];
    double batch = options->batch;
    printf("backend:    %s\n", alexnet_context_backend_name(context));
    printf("variant:    %s, input %ux%ux%u\n", cli_variant_name(options->variant), (unsigned)channels,
           (unsigned)height, (unsigned)width);
    printf("batch:      %u\n", (unsigned)options->batch);
    printf("iterations: %u timed, after 1 warm-up (inference only, no image preprocessing)\n",
           (unsigned)options->iterations);
    printf("per batch:  median %10.3f ms   min %10.3f ms   max %10.3f ms\n", median, low, high);
    printf("per image:  median %10.3f ms   min %10.3f ms   max %10.3f ms\n", median / batch, low / batch,
           high / batch);
}

static int time_inference(alexnet_context *context, const cli_options *options, const alexnet_config *config)
{
    size_t batch = 0;
    uint32_t height = 0, width = 0;
    alexnet_status status = alexnet_context_get_shape(context, &batch, &height, &width);
    if (status != ALEXNET_OK) {
        return report_failure(status);
    }
    size_t input_count = (size_t)options->batch * config->input_channels * height * width;
    float *input = malloc(input_count * sizeof *input);
    float *probabilities = malloc((size_t)options->batch * config->num_classes * sizeof *probabilities);
    double *times_ms = malloc(options->iterations * sizeof *times_ms);
    int result = CLI_EXIT_OK;
    if (input == NULL || probabilities == NULL || times_ms == NULL) {
        fprintf(stderr, "alexnet: out of memory\n");
        result = CLI_EXIT_FAILURE;
    } else {
        fill_bench_input(input, input_count);
        /* The warm-up pays for first-touch page faults and cache misses that a steady server would not. */
        status = alexnet_infer(context, input, options->batch, NULL, probabilities);
        for (uint32_t i = 0; i < options->iterations && status == ALEXNET_OK; i++) {
            double start = monotonic_ms();
            status = alexnet_infer(context, input, options->batch, NULL, probabilities);
            times_ms[i] = monotonic_ms() - start;
        }
        if (status != ALEXNET_OK) {
            result = report_failure(status);
        } else {
            print_bench_results(context, options, config->input_channels, height, width, times_ms);
        }
    }
    free(times_ms);
    free(probabilities);
    free(input);
    return result;
}

static int command_bench(const cli_options *options)
{
    alexnet_model *model = NULL;
    alexnet_context *context = NULL;
    alexnet_config config;
    memset(&config, 0, sizeof config);
    config.struct_size = sizeof config;
    alexnet_status status = create_seeded_model(options->variant, options->seed, &model);
    if (status == ALEXNET_OK) {
        status = alexnet_model_get_config(model, &config);
    }
    if (status == ALEXNET_OK) {
        status = create_context(model, options->backend, options->batch, &context);
    }
    int result = status == ALEXNET_OK ? time_inference(context, options, &config) : report_failure(status);
    alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    return result;
}

/* ---- backends ----------------------------------------------------------------------------------------- */

static int command_backends(const cli_options *options)
{
    (void)options;
    size_t count = alexnet_backend_count();
    printf("%-12s %-5s %-10s %6s  %s\n", "name", "kind", "available", "score", "description");
    for (size_t i = 0; i < count; i++) {
        alexnet_backend_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        alexnet_status status = alexnet_backend_get_info(i, &info);
        if (status != ALEXNET_OK) {
            return report_failure(status);
        }
        printf("%-12s %-5s %-10s %6d  %s\n", info.name, info.kind, info.available ? "yes" : "no",
               (int)info.score, info.description);
    }
    return CLI_EXIT_OK;
}

/* ---- demo --------------------------------------------------------------------------------------------- */

static int command_demo(const cli_options *options)
{
    printf("libalexnet %s demo\n\n", alexnet_version_string());
    int result = print_summary(options->variant, 0);
    if (result != CLI_EXIT_OK) {
        return result;
    }
    const char *path = options->image != NULL ? options->image : ALEXNET_EXAMPLES_DATA_DIR "/sample.ppm";
    printf("\nClassifying %s:\n", path);
    double start = monotonic_ms();
    result = classify_paths(options, &path, 1);
    if (result == CLI_EXIT_OK) {
        printf("Demo finished in %.1f ms (model creation, image decoding, classification).\n",
               monotonic_ms() - start);
    }
    return result;
}

/* ---- commands and usage ------------------------------------------------------------------------------- */

typedef struct cli_command {
    const char *name;
    const char *arguments; /* shown after the name in the usage line */
    const char *purpose;
    unsigned options;      /* cli_option_flag bits it accepts */
    int takes_paths;       /* nonzero: plain arguments are image paths */
    int (*run)(const cli_options *options);
} cli_command;

static const cli_command commands[] = {
    {"summary", "[OPTIONS]", "print the layer table and parameter count of a variant",
     CLI_OPT_VARIANT | CLI_OPT_SIZE, 0, command_summary},
    {"classify", "IMAGE... [OPTIONS]", "classify images in one batch and print each one's top classes",
     CLI_OPT_VARIANT | CLI_OPT_WEIGHTS | CLI_OPT_TOP | CLI_OPT_LABELS | CLI_OPT_BACKEND | CLI_OPT_SEED, 1,
     command_classify},
    {"bench", "[OPTIONS]", "time inference (median of several runs) on a backend",
     CLI_OPT_VARIANT | CLI_OPT_BACKEND | CLI_OPT_BATCH | CLI_OPT_ITERATIONS | CLI_OPT_SEED, 0, command_bench},
    {"backends", "", "list the compute backends and whether they are available", 0, 0, command_backends},
    {"demo", "[OPTIONS]", "print the summary, then classify the bundled sample image with untrained weights",
     CLI_OPT_VARIANT | CLI_OPT_IMAGE | CLI_OPT_BACKEND | CLI_OPT_SEED, 0, command_demo},
};

#define COMMAND_COUNT (sizeof commands / sizeof commands[0])

static const cli_command *find_command(const char *name)
{
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

static void print_usage(FILE *stream)
{
    fprintf(stream, "Usage: alexnet COMMAND [OPTIONS]\n\n"
                    "Runs the AlexNet convolutional network with libalexnet %s.\n\n"
                    "Commands:\n",
            alexnet_version_string());
    for (size_t i = 0; i < COMMAND_COUNT; i++) {
        fprintf(stream, "  %-10s %s\n", commands[i].name, commands[i].purpose);
    }
    fprintf(stream, "\nRun 'alexnet COMMAND --help' for a command's options; 'alexnet --version' for versions.\n");
}

static void print_command_usage(FILE *stream, const cli_command *command)
{
    fprintf(stream, "Usage: alexnet %s%s%s\n\n%c%s.\n", command->name, command->arguments[0] ? " " : "",
            command->arguments, toupper((unsigned char)command->purpose[0]), command->purpose + 1);
    if (command->takes_paths) {
        fprintf(stream, "Image formats: %s (PPM/PGM binary with maxval 255).\n", cli_image_supported_formats());
    }
    fprintf(stream, "\n");
    cli_print_option_help(stream, command->options);
}

static int is_help_flag(const char *argument)
{
    return strcmp(argument, "--help") == 0 || strcmp(argument, "-h") == 0;
}

/* `alexnet help [COMMAND]` and `alexnet --help`. */
static int run_help(int argc, char **argv)
{
    if (argc < 3) {
        print_usage(stdout);
        return CLI_EXIT_OK;
    }
    const cli_command *command = find_command(argv[2]);
    if (command == NULL) {
        fprintf(stderr, "alexnet: unknown command '%s'\n\n", argv[2]);
        print_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    print_command_usage(stdout, command);
    return CLI_EXIT_OK;
}

static int run_command(const cli_command *command, int argc, char **argv)
{
    cli_options options;
    int result = cli_parse_options(argc, argv, 2, command->name, command->options, command->takes_paths, &options);
    if (result == CLI_EXIT_OK && options.help) {
        print_command_usage(stdout, command);
    } else if (result == CLI_EXIT_OK) {
        result = command->run(&options);
    }
    if (result == CLI_EXIT_USAGE) {
        fprintf(stderr, "\n");
        print_command_usage(stderr, command);
    }
    cli_options_free(&options);
    return result;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (is_help_flag(argv[1]) || strcmp(argv[1], "help") == 0) {
        return run_help(argc, argv);
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("alexnet %s (libalexnet %s)\n", ALEXNET_VERSION_STRING, alexnet_version_string());
        return CLI_EXIT_OK;
    }
    const cli_command *command = find_command(argv[1]);
    if (command == NULL) {
        fprintf(stderr, "alexnet: unknown command '%s'\n\n", argv[1]);
        print_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    return run_command(command, argc, argv);
}
