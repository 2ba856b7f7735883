/* Class names for the `alexnet` example program. */
#include "cli_labels.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imagenet_labels.h"

/* Read the whole file into a NUL-terminated buffer; label files are small, so simplicity wins. */
static char *read_text_file(const char *path, size_t *out_length, char *error, size_t error_size)
{
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        snprintf(error, error_size, "cannot open the file: %s", strerror(errno));
        return NULL;
    }
    size_t capacity = 4096, length = 0;
    char *text = malloc(capacity);
    while (text != NULL) {
        length += fread(text + length, 1, capacity - length - 1, file);
        if (length < capacity - 1) {
            break;
        }
        capacity *= 2;
        char *grown = realloc(text, capacity);
        if (grown == NULL) {
            free(text);
        }
        text = grown;
    }
    int read_failed = ferror(file);
    fclose(file);
    if (text == NULL || read_failed) {
        snprintf(error, error_size, text == NULL ? "out of memory" : "cannot read the file");
        free(text);
        return NULL;
    }
    text[length] = '\0';
    *out_length = length;
    return text;
}

/* Split text into lines in place; the last line needs no final newline. Returns the number of lines. */
static size_t split_lines(char *text, size_t length, const char **lines)
{
    size_t count = 0;
    char *line = text;
    for (size_t i = 0; i <= length; i++) {
        int at_end = i == length;
        if (text[i] != '\n' && !at_end) {
            continue;
        }
        if (at_end && line == text + i) {
            break; /* nothing after the last newline */
        }
        text[i] = '\0';
        if (text + i > line && text[i - 1] == '\r') {
            text[i - 1] = '\0';
        }
        if (lines != NULL) {
            lines[count] = line;
        }
        count++;
        line = text + i + 1;
    }
    return count;
}

int cli_labels_load(const char *path, cli_labels *out, char *error, size_t error_size)
{
    memset(out, 0, sizeof *out);
    if (path == NULL) {
        out->names = imagenet_labels;
        out->count = IMAGENET_LABEL_COUNT;
        return 0;
    }
    size_t length = 0;
    out->text = read_text_file(path, &length, error, error_size);
    if (out->text == NULL) {
        return -1;
    }
    /* Upper bound on the line count, so the pointer array is sized before splitting. */
    size_t most_lines = 1;
    for (size_t i = 0; i < length; i++) {
        most_lines += out->text[i] == '\n';
    }
    out->lines = malloc(most_lines * sizeof *out->lines);
    if (out->lines == NULL) {
        snprintf(error, error_size, "out of memory");
        cli_labels_free(out);
        return -1;
    }
    out->count = split_lines(out->text, length, out->lines);
    out->names = out->lines;
    if (out->count == 0) {
        snprintf(error, error_size, "the labels file is empty");
        cli_labels_free(out);
        return -1;
    }
    return 0;
}

void cli_labels_free(cli_labels *labels)
{
    free(labels->lines);
    free(labels->text);
    memset(labels, 0, sizeof *labels);
}

const char *cli_labels_name(const cli_labels *labels, uint32_t index)
{
    return index < labels->count ? labels->names[index] : "?";
}
