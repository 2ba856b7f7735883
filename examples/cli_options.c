/* Command-line option parsing for the `alexnet` example program.
 *
 * Hand-written rather than getopt_long so it stays portable C11, accepts options anywhere among the image
 * paths, and can tell the user exactly which option a command does not take. */
#include "cli_options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct option_spec {
    const char *name; /* without the leading "--" */
    unsigned flag;
    uint64_t min, max; /* range for numeric options; both 0 for text options */
} option_spec;

/* Upper bounds keep obviously wrong numbers from turning into huge allocations or runs. */
static const option_spec option_specs[] = {
    {"variant", CLI_OPT_VARIANT, 0, 0},
    {"size", CLI_OPT_SIZE, 1, 8192},
    {"weights", CLI_OPT_WEIGHTS, 0, 0},
    {"top", CLI_OPT_TOP, 1, 1000000},
    {"labels", CLI_OPT_LABELS, 0, 0},
    {"backend", CLI_OPT_BACKEND, 0, 0},
    {"seed", CLI_OPT_SEED, 0, UINT64_MAX},
    {"batch", CLI_OPT_BATCH, 1, 4096},
    {"iterations", CLI_OPT_ITERATIONS, 1, 1000000},
    {"image", CLI_OPT_IMAGE, 0, 0},
};

static const struct {
    const char *name;
    alexnet_variant variant;
} variant_names[] = {
    {"one-tower", ALEXNET_VARIANT_ONE_TOWER},
    {"paper", ALEXNET_VARIANT_PAPER_2012},
    {"torchvision", ALEXNET_VARIANT_TORCHVISION},
};

const char *cli_variant_name(alexnet_variant variant)
{
    for (size_t i = 0; i < sizeof variant_names / sizeof variant_names[0]; i++) {
        if (variant_names[i].variant == variant) {
            return variant_names[i].name;
        }
    }
    return "custom";
}

static int parse_variant(const char *text, alexnet_variant *out)
{
    for (size_t i = 0; i < sizeof variant_names / sizeof variant_names[0]; i++) {
        if (strcmp(text, variant_names[i].name) == 0) {
            *out = variant_names[i].variant;
            return 0;
        }
    }
    fprintf(stderr, "alexnet: unknown variant '%s' (expected one-tower, paper or torchvision)\n", text);
    return -1;
}

/* Strict unsigned decimal: strtoull alone would accept "-1", " 7", "12abc" and silently wrap. */
static int parse_unsigned(const char *option, const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    if (text[0] < '0' || text[0] > '9') {
        fprintf(stderr, "alexnet: --%s expects a non-negative integer, got '%s'\n", option, text);
        return -1;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0') {
        fprintf(stderr, "alexnet: --%s expects a non-negative integer, got '%s'\n", option, text);
        return -1;
    }
    if (value < min || value > max) {
        fprintf(stderr, "alexnet: --%s must be between %llu and %llu, got %s\n", option, (unsigned long long)min,
                (unsigned long long)max, text);
        return -1;
    }
    *out = (uint64_t)value;
    return 0;
}

static const option_spec *find_option(const char *name, size_t name_length)
{
    for (size_t i = 0; i < sizeof option_specs / sizeof option_specs[0]; i++) {
        const char *candidate = option_specs[i].name;
        if (strlen(candidate) == name_length && strncmp(candidate, name, name_length) == 0) {
            return &option_specs[i];
        }
    }
    return NULL;
}

static int store_option(const option_spec *spec, const char *value, cli_options *out)
{
    uint64_t number = 0;
    if (spec->max != 0 && parse_unsigned(spec->name, value, spec->min, spec->max, &number) != 0) {
        return -1;
    }
    switch (spec->flag) {
    case CLI_OPT_VARIANT: return parse_variant(value, &out->variant);
    case CLI_OPT_SIZE: out->size = (uint32_t)number; break;
    case CLI_OPT_WEIGHTS: out->weights = value; break;
    case CLI_OPT_TOP: out->top_k = (uint32_t)number; break;
    case CLI_OPT_LABELS: out->labels = value; break;
    case CLI_OPT_BACKEND: out->backend = value; break;
    case CLI_OPT_SEED: out->seed = number; break;
    case CLI_OPT_BATCH: out->batch = (uint32_t)number; break;
    case CLI_OPT_ITERATIONS: out->iterations = (uint32_t)number; break;
    case CLI_OPT_IMAGE: out->image = value; break;
    default: return -1;
    }
    return 0;
}

static void set_defaults(cli_options *out)
{
    memset(out, 0, sizeof *out);
    out->variant = ALEXNET_VARIANT_ONE_TOWER;
    out->top_k = 5;
    out->seed = 1;
    out->batch = 1;
    out->iterations = 10;
}

/* Handle argv[*index], an argument starting with "--"; may consume the next argument as its value. */
static int parse_long_option(int argc, char **argv, int *index, const char *command, unsigned allowed,
                             cli_options *out)
{
    const char *argument = argv[*index];
    const char *name = argument + 2;
    const char *equals = strchr(name, '=');
    size_t name_length = equals ? (size_t)(equals - name) : strlen(name);

    if (equals == NULL && strcmp(name, "help") == 0) {
        out->help = 1;
        return 0;
    }
    const option_spec *spec = find_option(name, name_length);
    if (spec == NULL) {
        fprintf(stderr, "alexnet: unknown option '%.*s'\n", (int)(name_length + 2), argument);
        return -1;
    }
    if ((spec->flag & allowed) == 0) {
        fprintf(stderr, "alexnet: '%s' does not take the option '--%s'\n", command, spec->name);
        return -1;
    }
    const char *value = NULL;
    if (equals != NULL) {
        value = equals + 1;
    } else if (*index + 1 < argc) {
        *index += 1;
        value = argv[*index];
    } else {
        fprintf(stderr, "alexnet: the option '--%s' needs a value\n", spec->name);
        return -1;
    }
    return store_option(spec, value, out);
}

int cli_parse_options(int argc, char **argv, int first, const char *command, unsigned allowed,
                      int allow_positional, cli_options *out)
{
    set_defaults(out);
    out->positional = calloc((size_t)argc + 1, sizeof *out->positional);
    if (out->positional == NULL) {
        fprintf(stderr, "alexnet: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    int options_ended = 0;
    for (int i = first; i < argc; i++) {
        const char *argument = argv[i];
        int is_option = !options_ended && argument[0] == '-' && argument[1] != '\0';
        if (!is_option) {
            if (!allow_positional) {
                fprintf(stderr, "alexnet: '%s' takes no argument '%s'\n", command, argument);
                return CLI_EXIT_USAGE;
            }
            out->positional[out->positional_count++] = argument;
        } else if (strcmp(argument, "--") == 0) {
            options_ended = 1;
        } else if (strcmp(argument, "-h") == 0) {
            out->help = 1;
        } else if (argument[1] != '-') {
            fprintf(stderr, "alexnet: unknown option '%s'\n", argument);
            return CLI_EXIT_USAGE;
        } else if (parse_long_option(argc, argv, &i, command, allowed, out) != 0) {
            return CLI_EXIT_USAGE;
        }
    }
    return CLI_EXIT_OK;
}

void cli_options_free(cli_options *options)
{
    free(options->positional);
    options->positional = NULL;
    options->positional_count = 0;
}

/* One line per option; defaults here must match set_defaults(). */
static const struct {
    unsigned flag;
    const char *text;
} option_help[] = {
    {CLI_OPT_VARIANT, "  --variant V       one-tower (default), paper or torchvision"},
    {CLI_OPT_SIZE, "  --size N          square input side to lay out (default: the variant's own)"},
    {CLI_OPT_IMAGE, "  --image FILE      the image to classify (default: the bundled sample.ppm)"},
    {CLI_OPT_WEIGHTS, "  --weights FILE    safetensors weights for the variant (default: seeded random\n"
                      "                    initialisation, which is untrained, so its classes mean nothing)"},
    {CLI_OPT_SEED, "  --seed N          seed of the random weights (default 1)"},
    {CLI_OPT_TOP, "  --top K           classes to print per image (default 5)"},
    {CLI_OPT_LABELS, "  --labels FILE     class names, one per line (default: ImageNet's 1000 classes)"},
    {CLI_OPT_BACKEND, "  --backend NAME    auto (default), cpu, or a name listed by 'alexnet backends'"},
    {CLI_OPT_BATCH, "  --batch N         images per inference (default 1)"},
    {CLI_OPT_ITERATIONS, "  --iterations N    timed inferences after one untimed warm-up (default 10)"},
};

void cli_print_option_help(FILE *stream, unsigned allowed)
{
    fprintf(stream, "Options:\n");
    for (size_t i = 0; i < sizeof option_help / sizeof option_help[0]; i++) {
        if (option_help[i].flag & allowed) {
            fprintf(stream, "%s\n", option_help[i].text);
        }
    }
    fprintf(stream, "  -h, --help        show this help\n");
}
