/* The small network that the loader fuzz targets and the reliability tests use, and a safetensors writer
 * that puts every field of a file under the caller's control (dtype, shape, names, metadata), so that a test
 * or a seed can break a valid file in exactly one way.
 *
 * Header-only (static inline): the fuzz targets, make_seeds.c and the tests in tests/reliability use it. */
#ifndef AN_TEST_TINY_WEIGHTS_H
#define AN_TEST_TINY_WEIGHTS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/alexnet.h"

/* ---- the small network ----
 *
 * Two convolutions (the second with two groups and LRN), one hidden FC layer: every tensor kind of the real
 * network, 239 parameters, so a valid weights file is about 1.6 KB and each load costs microseconds. */
static inline alexnet_config tw_tiny_config(void)
{
    alexnet_config c;
    if (alexnet_config_preset(ALEXNET_VARIANT_PAPER_2012, &c) != ALEXNET_OK)
        abort();
    c.variant = ALEXNET_VARIANT_CUSTOM;
    c.input_channels = 3;
    c.input_height = c.input_width = 8;
    c.conv_count = 2;
    alexnet_conv_layer_config conv1 = {4, 3, 1, 1, 1, 1, 1}; /* out, kernel, stride, pad, groups, lrn, pool */
    alexnet_conv_layer_config conv2 = {4, 3, 1, 1, 2, 1, 1};
    c.conv[0] = conv1;
    c.conv[1] = conv2;
    for (int i = 2; i < ALEXNET_MAX_CONV_LAYERS; i++)
        memset(&c.conv[i], 0, sizeof c.conv[i]);
    c.hidden_fc_count = 1;
    c.hidden_fc[0] = 6;
    for (int i = 1; i < ALEXNET_MAX_HIDDEN_FC_LAYERS; i++)
        c.hidden_fc[i] = 0;
    c.num_classes = 3;
    c.adaptive_pool_size = 0;
    return c;
}

/* ---- a growable byte buffer ---- */
typedef struct tw_bytes {
    unsigned char *data;
    size_t size, capacity;
} tw_bytes;

static inline void tw_put(tw_bytes *b, const void *data, size_t size)
{
    if (b->size + size > b->capacity) {
        size_t capacity = b->capacity ? b->capacity : 256;
        while (capacity < b->size + size)
            capacity *= 2;
        b->data = realloc(b->data, capacity);
        if (b->data == NULL)
            exit(1);
        b->capacity = capacity;
    }
    memcpy(b->data + b->size, data, size);
    b->size += size;
}

static inline void tw_put_text(tw_bytes *b, const char *text) { tw_put(b, text, strlen(text)); }

static inline void tw_put_u8(tw_bytes *b, uint8_t v) { tw_put(b, &v, 1); }
static inline void tw_put_u16(tw_bytes *b, uint16_t v)
{
    tw_put_u8(b, (uint8_t)v);
    tw_put_u8(b, (uint8_t)(v >> 8));
}
static inline void tw_put_u32(tw_bytes *b, uint32_t v)
{
    tw_put_u16(b, (uint16_t)v);
    tw_put_u16(b, (uint16_t)(v >> 16));
}
static inline void tw_put_f32(tw_bytes *b, float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    tw_put_u32(b, bits);
}

/* ---- safetensors by hand: every field under the caller's control ---- */
typedef struct tw_tensor {
    char name[300];
    const char *dtype; /* "F32", "F16", "BF16", "I32", ... */
    uint32_t rank;
    uint64_t shape[4];
    float values[1024]; /* the tiny model's largest tensor has 72 elements */
    size_t count;
} tw_tensor;

typedef struct tw_file {
    tw_tensor tensors[24];
    size_t count;
    const char *metadata; /* a JSON object's members, e.g. "\"format\":\"x\"", or NULL */
} tw_file;

static inline uint32_t tw_f32_bits(float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits;
}

/* Exact for the values used here (small multiples of 1/64, zero, infinities and NaN); exits otherwise. */
static inline uint16_t tw_f16_from(float v)
{
    uint32_t bits = tw_f32_bits(v);
    uint32_t sign = (bits >> 16) & 0x8000u;
    int32_t exponent = (int32_t)((bits >> 23) & 0xFF);
    uint32_t mantissa = bits & 0x7FFFFFu;
    if (exponent == 0xFF)
        return (uint16_t)(sign | 0x7C00u | (mantissa ? 0x200u : 0));
    if (exponent == 0 && mantissa == 0)
        return (uint16_t)sign;
    int32_t half_exponent = exponent - 127 + 15;
    if (half_exponent <= 0 || half_exponent >= 31) {
        fprintf(stderr, "%g is not exactly representable as F16\n", (double)v);
        exit(1);
    }
    return (uint16_t)(sign | (uint32_t)half_exponent << 10 | mantissa >> 13);
}

static inline uint16_t tw_bf16_from(float v) { return (uint16_t)(tw_f32_bits(v) >> 16); }

static inline size_t tw_dtype_size(const char *dtype)
{
    if (strcmp(dtype, "F16") == 0 || strcmp(dtype, "BF16") == 0 || strcmp(dtype, "I16") == 0)
        return 2;
    if (strcmp(dtype, "U8") == 0 || strcmp(dtype, "BOOL") == 0)
        return 1;
    if (strcmp(dtype, "F64") == 0)
        return 8;
    return 4;
}

static inline void tw_put_tensor_data(tw_bytes *b, const tw_tensor *t)
{
    size_t size = tw_dtype_size(t->dtype);
    for (size_t i = 0; i < t->count; i++) {
        if (strcmp(t->dtype, "F16") == 0)
            tw_put_u16(b, tw_f16_from(t->values[i]));
        else if (strcmp(t->dtype, "BF16") == 0)
            tw_put_u16(b, tw_bf16_from(t->values[i]));
        else if (size == 4)
            tw_put_f32(b, t->values[i]);
        else
            for (size_t k = 0; k < size; k++)
                tw_put_u8(b, (uint8_t)(i + k));
    }
}

/* Serialise: the header padded with spaces to a multiple of 8, as the reference writer does. */
static inline tw_bytes tw_serialise(const tw_file *f)
{
    tw_bytes header = {0}, data = {0};
    tw_put_text(&header, "{");
    int first = 1;
    if (f->metadata != NULL) {
        tw_put_text(&header, "\"__metadata__\":{");
        tw_put_text(&header, f->metadata);
        tw_put_text(&header, "}");
        first = 0;
    }
    for (size_t i = 0; i < f->count; i++) {
        const tw_tensor *t = &f->tensors[i];
        size_t begin = data.size;
        tw_put_tensor_data(&data, t);
        char entry[700];
        int n = snprintf(entry, sizeof entry, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", first ? "" : ",", t->name,
                         t->dtype);
        for (uint32_t d = 0; d < t->rank; d++)
            n += snprintf(entry + n, sizeof entry - (size_t)n, "%s%llu", d ? "," : "",
                          (unsigned long long)t->shape[d]);
        snprintf(entry + n, sizeof entry - (size_t)n, "],\"data_offsets\":[%zu,%zu]}", begin, data.size);
        tw_put_text(&header, entry);
        first = 0;
    }
    tw_put_text(&header, "}");
    while (header.size % 8 != 0)
        tw_put_text(&header, " ");
    tw_bytes out = {0};
    uint64_t length = header.size;
    for (int i = 0; i < 8; i++)
        tw_put_u8(&out, (uint8_t)(length >> (8 * i)));
    tw_put(&out, header.data, header.size);
    if (data.size > 0)
        tw_put(&out, data.data, data.size);
    free(header.data);
    free(data.data);
    return out;
}

/* The value tw_tiny_file puts at element k of tensor i: a multiple of 1/64 in [-1/8, 1/8], exact in F32, F16
 * and BF16, so a file of any of the three dtypes loads to the same floats. */
static inline float tw_value(size_t tensor, size_t k)
{
    return (float)((int)((k * 7 + tensor * 3) % 17) - 8) / 64.0f;
}

/* The tiny model's tensors (names and shapes from the library, in file order) holding tw_value(). */
static inline tw_file tw_tiny_file(const char *dtype)
{
    tw_file f;
    memset(&f, 0, sizeof f);
    alexnet_config config = tw_tiny_config();
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.config = &config;
    alexnet_model *model = NULL;
    if (alexnet_model_create(&options, 1, &model) != ALEXNET_OK) {
        fprintf(stderr, "alexnet_model_create: %s\n", alexnet_last_error());
        exit(1);
    }
    f.count = alexnet_model_tensor_count(model);
    for (size_t i = 0; i < f.count; i++) {
        alexnet_tensor_info info;
        alexnet_model_tensor(model, i, &info);
        tw_tensor *t = &f.tensors[i];
        snprintf(t->name, sizeof t->name, "%s", info.name);
        t->dtype = dtype;
        t->rank = info.rank;
        memcpy(t->shape, info.shape, sizeof t->shape);
        t->count = (size_t)info.element_count;
        for (size_t k = 0; k < t->count; k++)
            t->values[k] = tw_value(i, k);
    }
    alexnet_model_destroy(model);
    return f;
}

#endif
