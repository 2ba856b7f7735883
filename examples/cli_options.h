/* Command-line option parsing for the `alexnet` example program. */
#ifndef ALEXNET_EXAMPLES_CLI_OPTIONS_H
#define ALEXNET_EXAMPLES_CLI_OPTIONS_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "alexnet/alexnet.h"

/* Exit codes shared by every command. */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILURE = 1, /* the library, a file or the system failed */
    CLI_EXIT_USAGE = 2    /* the command line itself is wrong */
};

/* One bit per option; each command states which of them it accepts. */
enum cli_option_flag {
    CLI_OPT_VARIANT = 1u << 0,
    CLI_OPT_SIZE = 1u << 1,
    CLI_OPT_WEIGHTS = 1u << 2,
    CLI_OPT_TOP = 1u << 3,
    CLI_OPT_LABELS = 1u << 4,
    CLI_OPT_BACKEND = 1u << 5,
    CLI_OPT_SEED = 1u << 6,
    CLI_OPT_BATCH = 1u << 7,
    CLI_OPT_ITERATIONS = 1u << 8,
    CLI_OPT_IMAGE = 1u << 9
};

/* Everything a command line can say. Fields keep their defaults when the option is absent. */
typedef struct cli_options {
    alexnet_variant variant; /* default ONE_TOWER, the library's own default */
    uint32_t size;           /* summary: input side; 0 = the variant's configured size */
    const char *weights;     /* NULL: seeded random weights */
    uint32_t top_k;          /* default 5 */
    const char *labels;      /* NULL: ImageNet's class names */
    const char *backend;     /* NULL: "auto" */
    uint64_t seed;           /* default 1 */
    uint32_t batch;          /* default 1 */
    uint32_t iterations;     /* default 10 */
    const char *image;       /* demo: the image to classify; NULL = the bundled sample */
    int help;                /* --help or -h was given */
    const char **positional; /* arguments that are not options, in order (owned; see cli_options_free) */
    size_t positional_count;
} cli_options;

/* Parse argv[first..argc) for a command that accepts the options in `allowed` (cli_option_flag bits) and,
 * when allow_positional is nonzero, plain arguments. Options take their value as the next argument or after
 * '='; "--" ends the options. Returns CLI_EXIT_OK; CLI_EXIT_USAGE after printing why to stderr (the
 * caller then prints the usage text); or CLI_EXIT_FAILURE if out of memory. `out` must be released with
 * cli_options_free in every case. */
int cli_parse_options(int argc, char **argv, int first, const char *command, unsigned allowed,
                      int allow_positional, cli_options *out);
void cli_options_free(cli_options *options);

/* Print the help lines of the options in `allowed` (cli_option_flag bits). */
void cli_print_option_help(FILE *stream, unsigned allowed);

/* "one-tower", "paper" or "torchvision" for the three presets; "custom" otherwise. */
const char *cli_variant_name(alexnet_variant variant);

#endif
