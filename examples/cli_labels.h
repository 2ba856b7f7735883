/* Class names for the `alexnet` example program: ImageNet's by default, or one per line from a file. */
#ifndef ALEXNET_EXAMPLES_CLI_LABELS_H
#define ALEXNET_EXAMPLES_CLI_LABELS_H

#include <stddef.h>
#include <stdint.h>

typedef struct cli_labels {
    const char *const *names; /* names[i] is class i's name */
    size_t count;
    char *text;               /* owned: the file's contents, split into names in place */
    const char **lines;       /* owned: pointers into text */
} cli_labels;

/* Load one name per line from path (a trailing "\r" is dropped, so CRLF files work), or use ImageNet's 1000
 * class names when path is NULL. Returns 0, or nonzero with a one-line reason in `error`. */
int cli_labels_load(const char *path, cli_labels *out, char *error, size_t error_size);
void cli_labels_free(cli_labels *labels);

/* Class index's name, or "?" when the list is shorter than the model's class count. */
const char *cli_labels_name(const cli_labels *labels, uint32_t index);

#endif
