/* weights.c: docs/WEIGHTS.md's examples, on a small custom network so that files stay small.
 *
 *   weights DIRECTORY   (default: the current directory)
 *
 * Saves a seeded model to DIRECTORY/weights-example.safetensors, prints the file's JSON header and its
 * tensors, loads it back (the class count comes from the file), shows a rejected load, writes the same
 * weights as BF16 safetensors by hand and loads those, and shows that a NaN weight is refused. */
#include <alexnet/alexnet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, alexnet_status status)
{
    fprintf(stderr, "%s: alexnet error %d: %s\n", what, (int)status, alexnet_last_error());
    return 1;
}

/* Print a status and its detail; the detail is copied first, as the next library call replaces it. */
static void print_status(const char *what, alexnet_status status)
{
    char detail[512];
    snprintf(detail, sizeof detail, "%s", alexnet_last_error());
    printf("%s: %s: %s\n", what, alexnet_status_string(status), detail);
}

/* A 3 x 64 x 64 member of the family with 10 classes (conv1..conv5, fc6..fc8, as in the article). */
static alexnet_config small_config(void)
{
    alexnet_config config;
    alexnet_config_preset(ALEXNET_VARIANT_ONE_TOWER, &config);
    config.variant = ALEXNET_VARIANT_CUSTOM;
    config.input_height = config.input_width = 64;
    const uint32_t filters[5] = {16, 32, 48, 48, 32};
    for (int i = 0; i < 5; i++)
        config.conv[i].out_channels = filters[i];
    config.conv[0].kernel_size = 5;
    config.conv[0].stride = 2;
    config.conv[0].padding = 2;
    config.hidden_fc[0] = config.hidden_fc[1] = 64;
    config.num_classes = 10;
    return config;
}

/* Print the safetensors header: 8 bytes of little-endian length N, then N bytes of JSON. */
static int print_header(const char *path)
{
    FILE *file = fopen(path, "rb");
    unsigned char length_bytes[8];
    if (file == NULL || fread(length_bytes, 1, 8, file) != 8) {
        fprintf(stderr, "%s: cannot read\n", path);
        if (file != NULL)
            fclose(file);
        return 1;
    }
    uint64_t length = 0;
    for (int i = 7; i >= 0; i--)
        length = length << 8 | length_bytes[i];
    char *json = length < 65536 ? calloc(1, (size_t)length + 1) : NULL;
    int ok = json != NULL && fread(json, 1, (size_t)length, file) == length;
    fclose(file);
    if (ok)
        printf("header (%llu bytes): %.240s...\n", (unsigned long long)length, json);
    free(json);
    return ok ? 0 : 1;
}

/* float -> bfloat16, rounding to nearest even (the weights are finite). */
static uint16_t to_bf16(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return (uint16_t)((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

/* Serialise every tensor of `model` as BF16 safetensors into a malloc'd buffer. */
static unsigned char *bf16_safetensors(const alexnet_model *model, size_t *out_size)
{
    char header[8192];
    size_t used = (size_t)snprintf(header, sizeof header, "{\"__metadata__\":{\"num_classes\":\"%u\"}",
                                   (unsigned)alexnet_model_num_classes(model));
    uint64_t offset = 0;
    for (size_t t = 0; t < alexnet_model_tensor_count(model); t++) {
        alexnet_tensor_info info;
        info.struct_size = sizeof info;
        alexnet_model_tensor(model, t, &info);
        used += (size_t)snprintf(header + used, sizeof header - used, ",\"%s\":{\"dtype\":\"BF16\",\"shape\":[",
                                 info.name);
        for (uint32_t d = 0; d < info.rank; d++)
            used += (size_t)snprintf(header + used, sizeof header - used, "%s%llu", d ? "," : "",
                                     (unsigned long long)info.shape[d]);
        used += (size_t)snprintf(header + used, sizeof header - used, "],\"data_offsets\":[%llu,%llu]}",
                                 (unsigned long long)offset, (unsigned long long)(offset + 2 * info.element_count));
        offset += 2 * info.element_count;
    }
    used += (size_t)snprintf(header + used, sizeof header - used, "}");
    if (used >= sizeof header)
        return NULL;
    *out_size = 8 + used + (size_t)offset;
    unsigned char *buffer = malloc(*out_size);
    if (buffer == NULL)
        return NULL;
    for (int i = 0; i < 8; i++)
        buffer[i] = (unsigned char)((uint64_t)used >> (8 * i));
    memcpy(buffer + 8, header, used);
    unsigned char *data = buffer + 8 + used;
    for (size_t t = 0; t < alexnet_model_tensor_count(model); t++) {
        alexnet_tensor_info info;
        info.struct_size = sizeof info;
        alexnet_model_tensor(model, t, &info);
        for (uint64_t i = 0; i < info.element_count; i++, data += 2) {
            uint16_t half = to_bf16(info.data[i]);
            data[0] = (unsigned char)(half & 0xFF); /* little-endian */
            data[1] = (unsigned char)(half >> 8);
        }
    }
    return buffer;
}

static int bf16_round_trip(const alexnet_model *model, const alexnet_config *config)
{
    size_t size = 0;
    unsigned char *file = bf16_safetensors(model, &size);
    if (file == NULL)
        return 1;
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.config = config;
    alexnet_model *loaded = NULL;
    alexnet_status status = alexnet_model_load_memory(file, size, &options, &loaded);
    if (status != ALEXNET_OK) {
        free(file);
        return fail("load BF16", status);
    }
    double worst = 0.0; /* BF16 keeps 8 significant bits, so rounding changes a value by at most 2^-8 */
    for (size_t t = 0; t < alexnet_model_tensor_count(model); t++) {
        alexnet_tensor_info a, b;
        a.struct_size = b.struct_size = sizeof a;
        alexnet_model_tensor(model, t, &a);
        alexnet_model_tensor(loaded, t, &b);
        for (uint64_t i = 0; i < a.element_count; i++)
            if (a.data[i] != 0.0f && fabs((double)b.data[i] / a.data[i] - 1.0) > worst)
                worst = fabs((double)b.data[i] / a.data[i] - 1.0);
    }
    printf("BF16 file: %zu bytes, loaded; largest relative change %.5f (bound %.5f)\n", size, worst,
           1.0 / 256);
    alexnet_model_destroy(loaded);

    /* One NaN anywhere and the file is refused. 0x7FC0 is a BF16 quiet NaN; the last two bytes are the
     * last element of the last tensor (fc8.bias). */
    file[size - 2] = 0xC0;
    file[size - 1] = 0x7F;
    status = alexnet_model_load_memory(file, size, &options, &loaded);
    print_status("with a NaN", status);
    free(file);
    return status == ALEXNET_E_FORMAT && worst <= 1.0 / 256 ? 0 : 1;
}

int main(int argc, char **argv)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/weights-example.safetensors", argc > 1 ? argv[1] : ".");
    alexnet_config config = small_config();
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.config = &config;
    alexnet_model *model = NULL;
    alexnet_status status = alexnet_model_create(&options, 5, &model);
    if (status != ALEXNET_OK)
        return fail("create", status);

    /* Save (atomically: a temporary file beside path, then a rename), and look inside. */
    status = alexnet_model_save(model, path);
    if (status != ALEXNET_OK || print_header(path) != 0) {
        alexnet_model_destroy(model);
        return status != ALEXNET_OK ? fail("save", status) : 1;
    }
    for (size_t t = 0; t < alexnet_model_tensor_count(model); t++) {
        alexnet_tensor_info info;
        info.struct_size = sizeof info;
        alexnet_model_tensor(model, t, &info);
        printf("  %-12s [", info.name);
        for (uint32_t d = 0; d < info.rank; d++)
            printf("%s%llu", d ? ", " : "", (unsigned long long)info.shape[d]);
        printf("]\n");
    }

    /* Load with a configuration that says 1000 classes and num_classes left 0: the file's 10 win. */
    alexnet_config thousand = config;
    thousand.num_classes = 1000;
    alexnet_model_options load_options;
    alexnet_model_options_init(&load_options);
    load_options.config = &thousand;
    alexnet_model *loaded = NULL;
    status = alexnet_model_load(path, &load_options, &loaded);
    if (status != ALEXNET_OK) {
        alexnet_model_destroy(model);
        return fail("load", status);
    }
    printf("loaded: %u classes, %llu parameters\n", (unsigned)alexnet_model_num_classes(loaded),
           (unsigned long long)alexnet_model_parameter_count(loaded));
    alexnet_model_destroy(loaded);
    loaded = NULL;

    /* An explicit class count must match the file's tensors. */
    load_options.num_classes = 1000;
    status = alexnet_model_load(path, &load_options, &loaded);
    print_status("num_classes = 1000", status);

    /* The same bytes in memory: ask for the size, then serialise. */
    size_t size = 0;
    alexnet_model_save_memory(model, NULL, 0, &size);
    printf("in memory: %zu bytes\n", size);

    int result = status == ALEXNET_E_SHAPE && loaded == NULL ? bf16_round_trip(model, &config) : 1;
    alexnet_model_destroy(model);
    remove(path);
    return result;
}
