/* Writes the seed corpus of the fuzz targets: tests/fuzz/corpus/<target>/seed-*.
 *
 *   build-dir/tests/reliability/fuzz_make_seeds tests/fuzz/corpus
 *
 * Valid weights files come from the library itself (alexnet_model_create + alexnet_model_save_memory of
 * tw_tiny_config()) or from the writer in tiny_weights.h (F16, BF16, other class counts); malformed ones are
 * those files broken in one way each. The preprocessing and configuration targets get inputs in their own byte
 * layouts (documented at the top of fuzz_preprocess.c and fuzz_config.c). Everything written is deterministic,
 * so re-running the program over a checkout changes nothing unless the library's output changed.
 *
 * Crash reproducers found by fuzzing are committed beside these as regression-*; this program never touches
 * them. */
#include <errno.h>
#include <math.h>
#include <sys/stat.h>

#include "fuzz_common.h"

static const char *corpus_root;
static int files_written;

static void make_dir(const char *path)
{
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "cannot create %s: %s\n", path, strerror(errno));
        exit(1);
    }
}

static void write_seed(const char *target, const char *name, const void *data, size_t size)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", corpus_root, target);
    make_dir(path);
    snprintf(path, sizeof path, "%s/%s/seed-%s", corpus_root, target, name);
    FILE *file = fopen(path, "wb");
    if (file == NULL || fwrite(data, 1, size, file) != size || fclose(file) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    files_written++;
}

/* Weights files go to both loader targets. */
static void write_weights_seed(const char *name, const void *data, size_t size)
{
    write_seed("model_load", name, data, size);
    write_seed("safetensors", name, data, size);
}

static void emit(const char *name, const tw_file *f)
{
    tw_bytes b = tw_serialise(f);
    write_weights_seed(name, b.data, b.size);
    free(b.data);
}

static void emit_text_file(const char *name, const char *header, size_t data_size)
{
    tw_bytes b = {0};
    uint64_t length = strlen(header);
    for (int i = 0; i < 8; i++)
        tw_put_u8(&b, (uint8_t)(length >> (8 * i)));
    tw_put_text(&b, header);
    for (size_t i = 0; i < data_size; i++)
        tw_put_u8(&b, (uint8_t)(i * 13));
    write_weights_seed(name, b.data, b.size);
    free(b.data);
}

static void weights_seeds(void)
{
    /* The library's own output, as a user would have it on disk. */
    alexnet_config config = tw_tiny_config();
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.config = &config;
    alexnet_model *model = NULL;
    size_t size = 0;
    if (alexnet_model_create(&options, 2012, &model) != ALEXNET_OK ||
        alexnet_model_save_memory(model, NULL, 0, &size) != ALEXNET_OK) {
        fprintf(stderr, "library: %s\n", alexnet_last_error());
        exit(1);
    }
    unsigned char *saved = malloc(size);
    if (saved == NULL || alexnet_model_save_memory(model, saved, size, &size) != ALEXNET_OK)
        exit(1);
    alexnet_model_destroy(model);
    write_weights_seed("valid-library-saved", saved, size);

    /* Truncated at each structural boundary of the library's file. */
    uint64_t header_length = 0;
    for (int i = 7; i >= 0; i--)
        header_length = header_length << 8 | saved[i];
    const size_t cuts[] = {0, 7, 8, 9, 8 + (size_t)header_length / 2, 8 + (size_t)header_length - 1,
                           8 + (size_t)header_length, 8 + (size_t)header_length + 6, size - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "truncated-at-%zu", cuts[i]);
        write_weights_seed(name, saved, cuts[i]);
    }
    /* The header length field: zero, one past the file, huge. */
    unsigned char *copy = malloc(size);
    const uint64_t lengths[] = {0, size - 8 + 1, 0x7FFFFFFFFFFFFFFFull, 100000001ull};
    const char *length_names[] = {"length-zero", "length-past-end", "length-huge", "length-over-limit"};
    for (size_t i = 0; i < 4; i++) {
        memcpy(copy, saved, size);
        for (int k = 0; k < 8; k++)
            copy[k] = (unsigned char)(lengths[i] >> (8 * k));
        write_weights_seed(length_names[i], copy, size);
    }
    /* NaN in the last weight of the file. */
    memcpy(copy, saved, size);
    const float nan_value = NAN;
    memcpy(copy + size - 4, &nan_value, 4);
    write_weights_seed("nan-last-weight", copy, size);
    free(copy);
    free(saved);

    /* Hand-written files: each valid variant, then one defect each. */
    tw_file f = tw_tiny_file("F32");
    emit("valid-f32", &f);
    f.metadata = "\"format\":\"libalexnet\",\"variant\":\"custom\",\"num_classes\":\"3\"";
    emit("valid-f32-metadata", &f);
    f.metadata = "\"num_classes\":\"4\"";
    emit("metadata-class-count-disagrees", &f);
    f.metadata = "\"num_classes\":\"3x\"";
    emit("metadata-class-count-not-a-number", &f);
    f = tw_tiny_file("F16");
    emit("valid-f16", &f);
    f = tw_tiny_file("BF16");
    emit("valid-bf16", &f);
    f = tw_tiny_file("F32");
    for (size_t i = 0; i < f.count; i++)
        f.tensors[i].dtype = i % 3 == 0 ? "F16" : i % 3 == 1 ? "BF16" : "F32";
    emit("valid-mixed-dtypes", &f);

    /* Five classes: valid too, the class count comes from the file when the options leave it open. */
    f = tw_tiny_file("F32");
    tw_tensor *weight = &f.tensors[f.count - 2], *bias = &f.tensors[f.count - 1];
    weight->shape[0] = 5;
    weight->count = 5 * (size_t)weight->shape[1];
    bias->shape[0] = 5;
    bias->count = 5;
    emit("valid-five-classes", &f);

    f = tw_tiny_file("F32");
    f.tensors[3].values[2] = NAN;
    emit("nan-in-conv2-bias", &f);
    f = tw_tiny_file("F16");
    f.tensors[4].values[0] = INFINITY;
    emit("f16-infinity", &f);
    f = tw_tiny_file("BF16");
    f.tensors[0].values[5] = -INFINITY;
    emit("bf16-minus-infinity", &f);
    f = tw_tiny_file("F32");
    f.tensors[2].dtype = "I32";
    emit("dtype-i32", &f);
    f = tw_tiny_file("F32");
    f.tensors[1].dtype = "F64";
    f.tensors[1].count /= 2; /* F64 of the same byte size: the element count no longer matches */
    emit("dtype-f64", &f);
    f = tw_tiny_file("F32");
    f.tensors[0].rank = 2;
    f.tensors[0].shape[0] = 4;
    f.tensors[0].shape[1] = 27;
    emit("wrong-rank", &f);
    f = tw_tiny_file("F32");
    f.tensors[2].shape[1] = 4;
    f.tensors[2].count = (size_t)(f.tensors[2].shape[0] * 4 * 9);
    emit("wrong-shape-no-groups", &f);
    f = tw_tiny_file("F32");
    f.count--;
    emit("missing-last-tensor", &f);
    f = tw_tiny_file("F32");
    f.tensors[f.count] = f.tensors[0];
    snprintf(f.tensors[f.count].name, sizeof f.tensors[f.count].name, "extra.weight");
    f.count++;
    emit("extra-tensor", &f);
    f = tw_tiny_file("F32");
    snprintf(f.tensors[3].name, sizeof f.tensors[3].name, "%s", f.tensors[1].name);
    emit("duplicate-name", &f);
    f = tw_tiny_file("F32");
    snprintf(f.tensors[5].name, sizeof f.tensors[5].name, "fc\xff\xfe.bias");
    emit("name-not-utf8", &f);
    f = tw_tiny_file("F32");
    memset(f.tensors[5].name, 'n', 256);
    f.tensors[5].name[256] = '\0';
    emit("name-256-bytes", &f);
    f = tw_tiny_file("F32");
    snprintf(f.tensors[5].name, sizeof f.tensors[5].name, "conv\\u00e9\\ud83d\\ude00");
    emit("name-escapes", &f);

    /* Raw headers: layout and JSON defects. */
    emit_text_file("overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
    emit_text_file("hole", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                           "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}", 20);
    emit_text_file("offsets-reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8);
    emit_text_file("shape-overflow",
                   "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,2],\"data_offsets\":[0,8]}}", 8);
    emit_text_file("rank-nine", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}",
                   8);
    emit_text_file("zero-size-tensors", "{\"z\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[0,0]},"
                                        "\"y\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}", 3);
    emit_text_file("not-an-object", "[1,2,3]", 0);
    emit_text_file("trailing-garbage", "{} x", 0);
    emit_text_file("metadata-not-strings", "{\"__metadata__\":{\"k\":[1,{\"a\":null}]}}", 0);
    emit_text_file("escapes", "{\"__metadata__\":{\"k\\n\\t\\\"\\\\\\/\":\"\\u0041\\u00e9\\u20ac\\ud83d\\ude00\"}}",
                   0);
    char nested[600];
    size_t n = (size_t)snprintf(nested, sizeof nested, "{\"__metadata__\":");
    for (int i = 0; i < 300; i++)
        nested[n++] = '[';
    nested[n] = '\0';
    emit_text_file("deep-nesting", nested, 0);
}

/* ---- preprocessing inputs (layout: fuzz_preprocess.c) ---- */
static void preprocess_seed(const char *name, uint8_t format, uint8_t channels, uint8_t flags, uint16_t width,
                            uint16_t height, uint16_t out_height, uint16_t out_width, uint32_t resize,
                            uint8_t stride_extra, const float normalisation[6], size_t pixel_bytes)
{
    tw_bytes b = {0};
    tw_put_u8(&b, format);
    tw_put_u8(&b, channels);
    tw_put_u8(&b, flags);
    tw_put_u16(&b, width);
    tw_put_u16(&b, height);
    tw_put_u16(&b, out_height);
    tw_put_u16(&b, out_width);
    tw_put_u32(&b, resize);
    tw_put_u8(&b, stride_extra);
    static const float defaults[6] = {0.485f, 0.456f, 0.406f, 0.229f, 0.224f, 0.225f};
    for (int i = 0; i < 6; i++)
        tw_put_f32(&b, (normalisation ? normalisation : defaults)[i]);
    for (size_t i = 0; i < pixel_bytes; i++)
        tw_put_u8(&b, (uint8_t)((i * 97u + (i >> 4) * 31u) & 0xFF));
    write_seed("preprocess", name, b.data, b.size);
    free(b.data);
}

static void preprocess_seeds(void)
{
    const float unit[6] = {0.5f, 0.5f, 0.5f, 0.25f, 0.25f, 0.25f};
    const float odd[6] = {-3.0f, 100.0f, 0.0f, -0.5f, 1e-3f, 7.0f};
    const float bad[6] = {NAN, 0.0f, 0.0f, 0.0f, 1.0f, 1.0f};
    preprocess_seed("rgb-resize-crop", ALEXNET_PIXEL_RGB8, 3, 0, 48, 40, 32, 32, 36, 0, NULL, 48 * 40 * 3);
    preprocess_seed("rgba-stride", ALEXNET_PIXEL_RGBA8, 3, 0, 17, 23, 16, 16, 20, 5, NULL, 512);
    preprocess_seed("bgr-upscale", ALEXNET_PIXEL_BGR8, 3, 0, 5, 3, 24, 24, 30, 0, NULL, 45);
    preprocess_seed("bgra-crop-only", ALEXNET_PIXEL_BGRA8, 3, FUZZ_PREPROCESS_RAW_NORMALISATION, 40, 30, 20, 24, 0, 3,
                    unit,
                    1000);
    preprocess_seed("gray-to-one-channel", ALEXNET_PIXEL_GRAY8, 1, 0, 31, 29, 16, 16, 16, 0, NULL, 900);
    preprocess_seed("gray-to-three-channels", ALEXNET_PIXEL_GRAY8, 3, 0, 64, 8, 16, 16, 16, 0, NULL, 512);
    preprocess_seed("rgb-to-luma", ALEXNET_PIXEL_RGB8, 1, FUZZ_PREPROCESS_RAW_NORMALISATION, 20, 20, 10, 10, 12, 0, odd,
                    1200);
    preprocess_seed("one-pixel-wide-resize", ALEXNET_PIXEL_RGB8, 3, FUZZ_PREPROCESS_WIDE_RESIZE, 1, 1, 8, 8, 100000, 0,
                    NULL, 3);
    preprocess_seed("tall-thin-downscale", ALEXNET_PIXEL_RGB8, 3, 0, 3, 500, 8, 8, 9, 0, NULL, 4500);
    preprocess_seed("crop-larger-than-resized", ALEXNET_PIXEL_RGB8, 3, 0, 30, 20, 40, 40, 10, 0, NULL, 1800);
    preprocess_seed("null-options", ALEXNET_PIXEL_RGB8, 3, FUZZ_PREPROCESS_NULL_OPTIONS, 300, 260, 180, 180, 190, 0,
                    NULL, 4096);
    preprocess_seed("short-struct", ALEXNET_PIXEL_RGB8, 3, FUZZ_PREPROCESS_SHORT_STRUCT, 16, 16, 8, 8, 8, 0, NULL,
                    768);
    preprocess_seed("long-struct-nonzero-tail", ALEXNET_PIXEL_RGB8, 3, FUZZ_PREPROCESS_LONG_STRUCT, 16, 16, 8, 8, 8,
                    0, NULL, 768);
    /* Format byte with its top bit set: the bytes beyond the known layout are zero. */
    preprocess_seed("long-struct-zero-tail", 0x80 | ALEXNET_PIXEL_RGB8, 3, FUZZ_PREPROCESS_LONG_STRUCT, 16, 16, 8,
                    8, 8, 0, NULL, 768);
    preprocess_seed("short-output", ALEXNET_PIXEL_RGB8, 3, FUZZ_PREPROCESS_SHORT_OUTPUT, 16, 16, 8, 8, 8, 0, NULL, 768);
    preprocess_seed("nan-mean", ALEXNET_PIXEL_RGB8, 3, FUZZ_PREPROCESS_RAW_NORMALISATION, 16, 16, 8, 8, 8, 0, bad, 768);
    preprocess_seed("bad-format", 7, 3, 0, 16, 16, 8, 8, 8, 0, NULL, 768);
    preprocess_seed("bad-channels", ALEXNET_PIXEL_RGB8, 2, 0, 16, 16, 8, 8, 8, 0, NULL, 768);
    preprocess_seed("zero-width", ALEXNET_PIXEL_RGB8, 3, 0, 0, 16, 8, 8, 8, 0, NULL, 16);
    preprocess_seed("null-pixels", ALEXNET_PIXEL_RGB8, 3, FUZZ_PREPROCESS_NULL_PIXELS, 16, 16, 8, 8, 8, 0, NULL, 768);
    preprocess_seed("null-image", ALEXNET_PIXEL_RGB8, 3, FUZZ_PREPROCESS_NULL_IMAGE, 16, 16, 8, 8, 8, 0, NULL, 768);
    preprocess_seed("image-too-small-no-resize", ALEXNET_PIXEL_RGB8, 3, 0, 10, 10, 16, 16, 0, 0, NULL, 300);
}

/* ---- configuration inputs (layout: fuzz_config.c) ---- */
typedef struct config_edit {
    uint8_t selector;
    uint32_t value;
} config_edit;

static void config_seed(const char *name, uint8_t base, const config_edit *edits, size_t edit_count,
                        const uint8_t *probe, size_t probe_size)
{
    tw_bytes b = {0};
    tw_put_u8(&b, base);
    tw_put_u8(&b, (uint8_t)edit_count);
    for (size_t i = 0; i < edit_count; i++) {
        tw_put_u8(&b, edits[i].selector);
        tw_put_u32(&b, edits[i].value);
    }
    tw_put(&b, probe, probe_size);
    write_seed("config", name, b.data, b.size);
    free(b.data);
}

static void config_seeds(void)
{
    /* probe: struct mode, summary h (2), w (2), capacity, model mode, variant, [classes (2)], init, seed (4),
     * context: backend, batch, size mode, size, capture mask, threads, extras, reshape batch, h, w */
    const uint8_t plain[] = {0, 0, 0, 0, 0, 40, 1, 0, 1, 7, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0};
    const uint8_t captures[] = {0, 0, 0, 0, 0, 40, 1, 0, 3, 7, 0, 0, 0, 2, 2, 1, 0, 0x3F, 2, 3, 2, 4, 4};
    const uint8_t threads[] = {0, 0, 0, 0, 0, 10, 1, 0, 1, 9, 0, 0, 0, 1, 3, 0, 0, 0x55, 0, 1, 3, 8, 8};
    const uint8_t adaptive[] = {0, 20, 0, 30, 0, 40, 1, 0, 2, 1, 0, 0, 0, 0, 3, 2, 23, 0x81, 2, 6, 1, 21, 17};
    const uint8_t reference[] = {3, 0, 0, 0, 0, 5, 1, 0, 1, 3, 0, 0, 0, 2, 1, 1, 0, 0x0C, 0, 2, 2, 0, 0};
    const uint8_t presets[] = {0, 227, 0, 227, 0, 30, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t bad_options[] = {2, 0, 0, 0, 0, 10, 13, 1, 9, 0, 0, 0, 0};
    config_seed("tiny-plain", 0, NULL, 0, plain, sizeof plain);
    config_seed("tiny-captures-profile", 0, NULL, 0, captures, sizeof captures);
    config_seed("tiny-threads-parallel-for", 0, NULL, 0, threads, sizeof threads);
    config_seed("tiny-adaptive-reshape", 4, NULL, 0, adaptive, sizeof adaptive);
    config_seed("tiny-reference-backend", 0, NULL, 0, reference, sizeof reference);
    config_seed("one-tower", 1, NULL, 0, presets, sizeof presets);
    config_seed("paper-2012", 2, NULL, 0, presets, sizeof presets);
    config_seed("torchvision", 3, NULL, 0, presets, sizeof presets);
    config_seed("bad-struct-sizes", 0, NULL, 0, bad_options, sizeof bad_options);
    const config_edit wider[] = {{0x80 | 5, 8}, {0x80 | 26, 4}, {0x80 | 20, 2}, {0x80 | 21, 5}, {0x80 | 22, 7}};
    config_seed("tiny-edited-valid", 0, wider, 5, plain, sizeof plain);
    const config_edit three_convs[] = {{0x80 | 4, 3},  {(2 << 2) | 5, 6},  {(2 << 2) | 6, 1},
                                       {(2 << 2) | 7, 1}, {(2 << 2) | 9, 1}, {0x80 | 19, 2}};
    config_seed("tiny-three-convs-adaptive", 0, three_convs, 6, adaptive, sizeof adaptive);
    const config_edit invalid[] = {{0x80 | 9, 3}, {15, 0x7FC00000u}, {23, 0x3F800000u}, {0x80 | 24, 9}};
    config_seed("invalid-groups-lrn-dropout", 0, invalid, 4, plain, sizeof plain);
    const config_edit huge[] = {{5, 65536}, {6, 64}, {2, 8192}, {3, 8192}, {22, 1u << 20}, {0x80 | 20, 4},
                                {21, 1u << 20}};
    config_seed("huge-fields", 2, huge, 7, plain, sizeof plain);
    const config_edit zeros[] = {{0x80 | 1, 0}, {0x80 | 4, 0}, {0x80 | 12, 0}, {0x80 | 14, 0}};
    config_seed("zero-fields", 0, zeros, 4, plain, sizeof plain);
}

/* ---- IDX dataset inputs (layout: fuzz_dataset_idx.c) ---- */
static void put_be32(tw_bytes *b, uint32_t v)
{
    for (int i = 3; i >= 0; i--)
        tw_put_u8(b, (uint8_t)(v >> (8 * i)));
}

/* An IDX pair of n images of rows x cols (type byte `type`), the images file cut to images_keep bytes when
 * that is smaller, labels as given. */
static void idx_seed(const char *name, uint8_t mode, uint8_t classes, uint8_t type, uint32_t n, uint32_t rows,
                     uint32_t cols, uint32_t label_count, size_t images_keep)
{
    tw_bytes images = {0}, labels = {0}, out = {0};
    const uint8_t magic[4] = {0, 0, type, 3}, label_magic[4] = {0, 0, 0x08, 1};
    tw_put(&images, magic, 4);
    put_be32(&images, n);
    put_be32(&images, rows);
    put_be32(&images, cols);
    for (size_t i = 0; i < (size_t)n * rows * cols && i < 4096; i++)
        tw_put_u8(&images, (uint8_t)(i * 29u));
    tw_put(&labels, label_magic, 4);
    put_be32(&labels, label_count);
    for (uint32_t i = 0; i < label_count && i < 4096; i++)
        tw_put_u8(&labels, (uint8_t)(i % 7));
    size_t images_size = images.size < images_keep ? images.size : images_keep;
    tw_put_u16(&out, (uint16_t)images_size);
    tw_put_u8(&out, mode);
    tw_put_u8(&out, classes);
    tw_put(&out, images.data, images_size);
    tw_put(&out, labels.data, labels.size);
    write_seed("dataset_idx", name, out.data, out.size);
    free(images.data);
    free(labels.data);
    free(out.data);
}

static void dataset_idx_seeds(void)
{
    idx_seed("valid-3-images", 0, 0, 0x08, 3, 4, 5, 3, SIZE_MAX);
    idx_seed("valid-null-options", 1, 0, 0x08, 2, 3, 3, 2, SIZE_MAX);
    idx_seed("valid-ten-classes", 2, 10, 0x08, 4, 2, 6, 4, SIZE_MAX);
    idx_seed("valid-longer-struct", 8, 0, 0x08, 1, 7, 7, 1, SIZE_MAX);
    idx_seed("too-few-classes", 2, 3, 0x08, 8, 2, 2, 8, SIZE_MAX);
    idx_seed("three-channels-asked", 4, 0, 0x08, 2, 2, 2, 2, SIZE_MAX);
    idx_seed("label-count-differs", 0, 0, 0x08, 3, 2, 2, 4, SIZE_MAX);
    idx_seed("type-float", 0, 0, 0x0D, 2, 2, 2, 2, SIZE_MAX);
    idx_seed("images-truncated", 0, 0, 0x08, 3, 4, 4, 3, 30);
    idx_seed("header-only", 0, 0, 0x08, 0, 4, 4, 0, SIZE_MAX);
    idx_seed("zero-side", 0, 0, 0x08, 1, 0, 4, 1, SIZE_MAX);
    idx_seed("huge-sizes", 0, 0, 0x08, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 1, 40);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIRECTORY (tests/fuzz/corpus)\n", argv[0]);
        return 2;
    }
    corpus_root = argv[1];
    make_dir(corpus_root);
    weights_seeds();
    preprocess_seeds();
    config_seeds();
    dataset_idx_seeds();
    printf("%d seed files written under %s\n", files_written, corpus_root);
    return 0;
}
