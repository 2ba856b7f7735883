/* Malformed weights files at the public API: every case goes through alexnet_model_load_memory and through
 * alexnet_model_load (the same bytes written to a file), and each must
 *  - fail with the specific status (FORMAT for a broken file, SHAPE for a well-formed file of another
 *    architecture, UNSUPPORTED for a dtype the library cannot convert),
 *  - say what is wrong: alexnet_last_error() contains a fragment naming the problem (and, for alexnet_model_load,
 *    the path),
 *  - leave *out_model untouched and leak nothing (the counting allocator checks every block and its size).
 * tests/io/test_safetensors.c covers the parser alone; this suite covers what a user of the library sees,
 * including the checks after parsing (names, shapes, class count, finiteness).
 *
 * The files are tw_tiny_config()'s weights (tests/fuzz/tiny_weights.h), 239 parameters, broken in one way each;
 * positive controls (F32, F16, BF16, mixed dtypes, another class count, metadata) must load to the exact values
 * written. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alexnet/alexnet.h"
#include "test_support.h"
#include "tiny_weights.h"

static alexnet_model *const untouched = (alexnet_model *)(uintptr_t)0x5a5a5a50;
static char scratch_dir[64];

/* ---- building the files ---- */

static tw_bytes raw_file(uint64_t length_field, const char *header, size_t data_size)
{
    tw_bytes b = {0};
    for (int i = 0; i < 8; i++)
        tw_put_u8(&b, (uint8_t)(length_field >> (8 * i)));
    tw_put_text(&b, header);
    for (size_t i = 0; i < data_size; i++)
        tw_put_u8(&b, 0);
    return b;
}

static tw_bytes text_file(const char *header, size_t data_size) { return raw_file(strlen(header), header, data_size); }

/* The tiny model saved by the library itself (seeded, so every build writes the same bytes). */
static tw_bytes library_file(void)
{
    alexnet_config config = tw_tiny_config();
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.config = &config;
    alexnet_model *model = NULL;
    ck_assert_int_eq(alexnet_model_create(&options, 7, &model), ALEXNET_OK);
    size_t size = 0;
    ck_assert_int_eq(alexnet_model_save_memory(model, NULL, 0, &size), ALEXNET_OK);
    tw_bytes b = {malloc(size), size, size};
    ck_assert_ptr_nonnull(b.data);
    ck_assert_int_eq(alexnet_model_save_memory(model, b.data, size, &size), ALEXNET_OK);
    alexnet_model_destroy(model);
    return b;
}

static uint64_t header_length_of(const tw_bytes *b)
{
    uint64_t length = 0;
    for (int i = 7; i >= 0; i--)
        length = length << 8 | b->data[i];
    return length;
}

static void set_length_field(tw_bytes *b, uint64_t value)
{
    for (int i = 0; i < 8; i++)
        b->data[i] = (unsigned char)(value >> (8 * i));
}

static tw_file *tiny(const char *dtype)
{
    static tw_file file; /* large: kept off the stack */
    file = tw_tiny_file(dtype);
    return &file;
}

static tw_bytes serialise(const tw_file *f) { return tw_serialise(f); }

static char *repeat(const char *prefix, char c, size_t count, const char *suffix)
{
    size_t p = strlen(prefix), s = strlen(suffix);
    char *text = malloc(p + count + s + 1);
    ck_assert_ptr_nonnull(text);
    memcpy(text, prefix, p);
    memset(text + p, c, count);
    memcpy(text + p + count, suffix, s + 1);
    return text;
}

/* ---- the check every case goes through ---- */

static alexnet_model_options tiny_options(alexnet_config *config, alexnet_allocator allocator)
{
    *config = tw_tiny_config();
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.config = config;
    options.allocator = allocator;
    return options;
}

static void assert_no_leaks(const test_counting_allocator *counter, const char *label)
{
    ck_assert_msg(counter->live_blocks == 0, "%s: %zu blocks (%zu bytes) leaked", label, counter->live_blocks,
                  counter->live_bytes);
    ck_assert_msg(counter->size_mismatches == 0, "%s: free() with a wrong size", label);
}

static void write_file(const char *path, const tw_bytes *b)
{
    FILE *file = fopen(path, "wb");
    ck_assert_ptr_nonnull(file);
    ck_assert_uint_eq(fwrite(b->data, 1, b->size, file), b->size);
    ck_assert_int_eq(fclose(file), 0);
}

/* Load `b` from memory and from a file; both must fail with `want` and a message containing `fragment`. */
static void expect_failure(const char *label, const tw_bytes *b, alexnet_status want, const char *fragment)
{
    static const unsigned char empty[1] = {0};
    test_counting_allocator counter;
    alexnet_config config;
    alexnet_model_options options = tiny_options(&config, test_counting_allocator_make(&counter));

    alexnet_model *model = untouched;
    alexnet_status status =
        alexnet_model_load_memory(b->size > 0 ? (const void *)b->data : empty, b->size, &options, &model);
    ck_assert_msg(status == want, "%s (memory): status %d (%s), wanted %d; message: %s", label, (int)status,
                  alexnet_status_string(status), (int)want, alexnet_last_error());
    ck_assert_msg(strstr(alexnet_last_error(), fragment) != NULL, "%s (memory): message \"%s\" lacks \"%s\"", label,
                  alexnet_last_error(), fragment);
    ck_assert_msg(model == untouched, "%s (memory): *out_model was written", label);
    assert_no_leaks(&counter, label);

    char path[128];
    snprintf(path, sizeof path, "%s/case.safetensors", scratch_dir);
    write_file(path, b);
    options.allocator = test_counting_allocator_make(&counter);
    status = alexnet_model_load(path, &options, &model);
    ck_assert_msg(status == want, "%s (file): status %d (%s), wanted %d; message: %s", label, (int)status,
                  alexnet_status_string(status), (int)want, alexnet_last_error());
    ck_assert_msg(strstr(alexnet_last_error(), fragment) != NULL, "%s (file): message \"%s\" lacks \"%s\"", label,
                  alexnet_last_error(), fragment);
    ck_assert_msg(strstr(alexnet_last_error(), path) != NULL, "%s (file): message \"%s\" does not name the file",
                  label, alexnet_last_error());
    ck_assert_msg(model == untouched, "%s (file): *out_model was written", label);
    assert_no_leaks(&counter, label);
    unlink(path);
}

/* Positive control: loads (from memory and from a file) to exactly tw_value() with `classes` classes. */
static void expect_loads(const char *label, const tw_bytes *b, uint32_t classes)
{
    for (int from_file = 0; from_file < 2; from_file++) {
        test_counting_allocator counter;
        alexnet_config config;
        alexnet_model_options options = tiny_options(&config, test_counting_allocator_make(&counter));
        alexnet_model *model = NULL;
        char path[128];
        snprintf(path, sizeof path, "%s/valid.safetensors", scratch_dir);
        alexnet_status status;
        if (from_file) {
            write_file(path, b);
            status = alexnet_model_load(path, &options, &model);
            unlink(path);
        } else {
            status = alexnet_model_load_memory(b->data, b->size, &options, &model);
        }
        ck_assert_msg(status == ALEXNET_OK, "%s: %s", label, alexnet_last_error());
        ck_assert_uint_eq(alexnet_model_num_classes(model), classes);
        for (size_t t = 0; t < alexnet_model_tensor_count(model); t++) {
            alexnet_tensor_info info;
            ck_assert_int_eq(alexnet_model_tensor(model, t, &info), ALEXNET_OK);
            for (size_t k = 0; k < info.element_count; k++)
                ck_assert_msg(info.data[k] == tw_value(t, k), "%s: %s[%zu] = %g, wrote %g", label, info.name, k,
                              (double)info.data[k], (double)tw_value(t, k));
        }
        alexnet_model_destroy(model);
        assert_no_leaks(&counter, label);
    }
}

/* ---- the cases: one function builds each file ---- */

typedef struct malformed_case {
    const char *label;
    tw_bytes (*make)(void);
    alexnet_status status;
    const char *fragment; /* what alexnet_last_error() must contain */
} malformed_case;

static tw_bytes cut(tw_bytes b, size_t size)
{
    ck_assert_uint_le(size, b.size);
    b.size = size;
    return b;
}

static size_t data_start(const tw_bytes *b) { return 8 + (size_t)header_length_of(b); }

/* truncation at the structural boundaries of the library's own file */
static tw_bytes empty_file(void) { return cut(library_file(), 0); }
static tw_bytes seven_bytes(void) { return cut(library_file(), 7); }
static tw_bytes length_field_only(void) { return cut(library_file(), 8); }
static tw_bytes half_header(void)
{
    tw_bytes b = library_file();
    return cut(b, 8 + (size_t)header_length_of(&b) / 2);
}
static tw_bytes header_less_one_byte(void)
{
    tw_bytes b = library_file();
    return cut(b, data_start(&b) - 1);
}
static tw_bytes header_without_data(void)
{
    tw_bytes b = library_file();
    return cut(b, data_start(&b));
}
static tw_bytes inside_first_tensor(void)
{
    tw_bytes b = library_file();
    return cut(b, data_start(&b) + 10);
}
static tw_bytes last_byte_missing(void)
{
    tw_bytes b = library_file();
    return cut(b, b.size - 1);
}
static tw_bytes one_byte_too_many(void)
{
    tw_bytes b = library_file();
    tw_put_u8(&b, 0);
    return b;
}

/* the header length field */
static tw_bytes length_zero(void)
{
    tw_bytes b = library_file();
    set_length_field(&b, 0);
    return b;
}
static tw_bytes length_beyond_file(void)
{
    tw_bytes b = library_file();
    set_length_field(&b, b.size - 8 + 1);
    return b;
}
static tw_bytes length_huge(void)
{
    tw_bytes b = library_file();
    set_length_field(&b, UINT64_MAX);
    return b;
}
static tw_bytes length_cuts_json(void)
{
    tw_bytes b = library_file();
    set_length_field(&b, header_length_of(&b) / 3);
    return b;
}

/* offsets: out of range, overlapping, holes, reversed */
static tw_bytes offsets_beyond_data(void)
{
    tw_bytes b = serialise(tiny("F32"));
    return cut(b, b.size - 4); /* the last tensor's end is now past the data */
}
static tw_bytes offsets_overlap(void)
{
    return text_file("{\"conv1.weight\":{\"dtype\":\"F32\",\"shape\":[4,3,3,3],\"data_offsets\":[0,432]},"
                     "\"conv1.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[420,436]}}",
                     436);
}
static tw_bytes offsets_hole(void)
{
    return text_file("{\"conv1.weight\":{\"dtype\":\"F32\",\"shape\":[4,3,3,3],\"data_offsets\":[0,432]},"
                     "\"conv1.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[440,456]}}",
                     456);
}
static tw_bytes offsets_reversed(void)
{
    return text_file("{\"conv1.bias\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[16,0]}}", 16);
}
static tw_bytes offsets_one_entry(void)
{
    return text_file("{\"conv1.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16]}}", 16);
}
static tw_bytes offset_beyond_64_bits(void)
{
    return text_file("{\"conv1.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,18446744073709551616]}}",
                     16);
}

/* shapes, dtypes and ranks */
static tw_bytes shape_product_overflows(void)
{
    return text_file("{\"conv1.weight\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],"
                     "\"data_offsets\":[0,16]}}",
                     16);
}
static tw_bytes byte_size_overflows(void)
{
    return text_file("{\"conv1.weight\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,16]}}",
                     16);
}
static tw_bytes byte_size_mismatch(void)
{
    tw_file *f = tiny("F32");
    f->tensors[1].shape[0] = 5; /* conv1.bias claims 5 floats over 4 floats of data */
    return serialise(f);
}
static tw_bytes dtype_i32(void)
{
    tw_file *f = tiny("F32");
    f->tensors[2].dtype = "I32";
    return serialise(f);
}
static tw_bytes dtype_unknown(void)
{
    tw_file *f = tiny("F32");
    f->tensors[0].dtype = "F4";
    return serialise(f);
}
static tw_bytes dtype_lowercase(void)
{
    tw_file *f = tiny("F32");
    f->tensors[3].dtype = "f32";
    return serialise(f);
}
static tw_bytes dtype_not_string(void)
{
    return text_file("{\"conv1.bias\":{\"dtype\":32,\"shape\":[4],\"data_offsets\":[0,16]}}", 16);
}
static tw_bytes rank_flattened(void)
{
    tw_file *f = tiny("F32");
    f->tensors[0].rank = 2;
    f->tensors[0].shape[1] = 27; /* [4, 27] instead of [4, 3, 3, 3] */
    return serialise(f);
}
static tw_bytes rank_too_high(void)
{
    tw_file *f = tiny("F32");
    f->tensors[5].rank = 3;
    f->tensors[5].shape[2] = 1; /* fc3.bias [6, 0, 1]... */
    f->tensors[5].shape[1] = 1; /* ... as [6, 1, 1]: the same bytes, a different rank */
    return serialise(f);
}
static tw_bytes rank_nine(void)
{
    return text_file("{\"conv1.bias\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,4],\"data_offsets\":[0,16]}}", 16);
}
static tw_bytes shape_of_other_architecture(void)
{
    tw_file *f = tiny("F32");
    f->tensors[2].shape[1] = 4; /* conv2 without groups */
    f->tensors[2].count = 4 * 4 * 9;
    return serialise(f);
}
static tw_bytes shape_negative(void)
{
    return text_file("{\"conv1.bias\":{\"dtype\":\"F32\",\"shape\":[-4],\"data_offsets\":[0,16]}}", 16);
}
static tw_bytes shape_fraction(void)
{
    return text_file("{\"conv1.bias\":{\"dtype\":\"F32\",\"shape\":[4.0],\"data_offsets\":[0,16]}}", 16);
}
static tw_bytes zero_classes(void)
{
    tw_file *f = tiny("F32");
    f->tensors[6].shape[0] = 0;
    f->tensors[6].count = 0;
    f->tensors[7].shape[0] = 0;
    f->tensors[7].count = 0;
    return serialise(f);
}

/* names */
static tw_bytes duplicate_names(void)
{
    tw_file *f = tiny("F32");
    snprintf(f->tensors[3].name, sizeof f->tensors[3].name, "conv1.bias");
    return serialise(f);
}
static tw_bytes name_not_utf8(void)
{
    tw_file *f = tiny("F32");
    snprintf(f->tensors[4].name, sizeof f->tensors[4].name, "fc3.\xc3\x28weight");
    return serialise(f);
}
static tw_bytes name_overlong_utf8(void)
{
    tw_file *f = tiny("F32");
    snprintf(f->tensors[4].name, sizeof f->tensors[4].name, "fc3.\xc0\xafweight"); /* overlong '/' */
    return serialise(f);
}
static tw_bytes name_too_long(void)
{
    tw_file *f = tiny("F32");
    memset(f->tensors[4].name, 'w', 256);
    f->tensors[4].name[256] = '\0';
    return serialise(f);
}
static tw_bytes name_longest_allowed(void)
{
    tw_file *f = tiny("F32");
    f->tensors[f->count] = f->tensors[1];
    memset(f->tensors[f->count].name, 'w', 255);
    f->tensors[f->count].name[255] = '\0';
    f->count++;
    return serialise(f);
}
static tw_bytes name_with_nul(void)
{
    tw_file *f = tiny("F32");
    snprintf(f->tensors[1].name, sizeof f->tensors[1].name, "conv1\\u0000.bias");
    return serialise(f);
}
static tw_bytes name_empty(void)
{
    tw_file *f = tiny("F32");
    f->tensors[1].name[0] = '\0';
    return serialise(f);
}
static tw_bytes name_lone_surrogate(void)
{
    tw_file *f = tiny("F32");
    snprintf(f->tensors[1].name, sizeof f->tensors[1].name, "conv1\\ud800.bias");
    return serialise(f);
}
static tw_bytes name_escaped_same_as_expected(void)
{
    tw_file *f = tiny("F32");
    /* "\u0063onv1.bias" decodes to conv1.bias: a valid file, but a duplicate of nothing... it must load. */
    snprintf(f->tensors[1].name, sizeof f->tensors[1].name, "\\u0063onv1.bias");
    return serialise(f);
}

/* JSON structure */
static tw_bytes nesting_in_metadata(void)
{
    char *text = repeat("{\"__metadata__\":{\"k\":", '[', 100000, "");
    tw_bytes b = text_file(text, 0);
    free(text);
    return b;
}
static tw_bytes nesting_as_entry(void)
{
    char *text = repeat("{\"conv1.weight\":", '{', 100000, "");
    tw_bytes b = text_file(text, 0);
    free(text);
    return b;
}
static tw_bytes nesting_in_shape(void)
{
    char *text = repeat("{\"conv1.weight\":{\"shape\":", '[', 100000, "");
    tw_bytes b = text_file(text, 0);
    free(text);
    return b;
}
static tw_bytes header_not_object(void) { return text_file("[\"conv1.weight\"]", 0); }
static tw_bytes header_trailing_garbage(void)
{
    return text_file("{\"conv1.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}} x", 16);
}
static tw_bytes entry_unexpected_field(void)
{
    return text_file("{\"conv1.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16],\"crc\":1}}", 16);
}
static tw_bytes entry_missing_offsets(void)
{
    return text_file("{\"conv1.bias\":{\"dtype\":\"F32\",\"shape\":[4]}}", 16);
}
static tw_bytes entry_not_object(void) { return text_file("{\"conv1.bias\":[0,16]}", 16); }
static tw_bytes header_control_character(void)
{
    return text_file("{\"conv1.bias\":{\"dtype\":\"F\t32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16);
}
static tw_bytes header_unterminated_string(void) { return text_file("{\"conv1.bias", 0); }

/* metadata */
static tw_bytes metadata_classes_disagree(void)
{
    tw_file *f = tiny("F32");
    f->metadata = "\"num_classes\":\"5\"";
    return serialise(f);
}
static tw_bytes metadata_not_string(void)
{
    tw_file *f = tiny("F32");
    f->metadata = "\"num_classes\":3";
    return serialise(f);
}
static tw_bytes metadata_duplicate_key(void)
{
    tw_file *f = tiny("F32");
    f->metadata = "\"format\":\"a\",\"format\":\"b\"";
    return serialise(f);
}
static tw_bytes metadata_twice(void)
{
    return text_file("{\"__metadata__\":{},\"__metadata__\":{},"
                     "\"conv1.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
                     16);
}

/* weights that are not finite */
static tw_bytes nan_f32(void)
{
    tw_file *f = tiny("F32");
    f->tensors[3].values[2] = NAN;
    return serialise(f);
}
static tw_bytes infinity_f32(void)
{
    tw_file *f = tiny("F32");
    f->tensors[4].values[17] = INFINITY;
    return serialise(f);
}
static tw_bytes minus_infinity_f32(void)
{
    tw_file *f = tiny("F32");
    f->tensors[0].values[0] = -INFINITY;
    return serialise(f);
}
static tw_bytes nan_f16(void)
{
    tw_file *f = tiny("F16");
    f->tensors[6].values[5] = NAN;
    return serialise(f);
}
static tw_bytes infinity_bf16(void)
{
    tw_file *f = tiny("BF16");
    f->tensors[7].values[1] = INFINITY;
    return serialise(f);
}

/* tensors missing or extra */
static tw_bytes missing_last(void)
{
    tw_file *f = tiny("F32");
    f->count--;
    return serialise(f);
}
static tw_bytes missing_first(void)
{
    tw_file *f = tiny("F32");
    memmove(&f->tensors[0], &f->tensors[1], (f->count - 1) * sizeof f->tensors[0]);
    f->count--;
    return serialise(f);
}
static tw_bytes no_tensors(void) { return text_file("{}", 0); }
static tw_bytes extra_tensor(void)
{
    tw_file *f = tiny("F32");
    f->tensors[f->count] = f->tensors[1];
    snprintf(f->tensors[f->count].name, sizeof f->tensors[f->count].name, "conv9.bias");
    f->count++;
    return serialise(f);
}
static tw_bytes torchvision_names(void)
{
    tw_file *f = tiny("F32");
    snprintf(f->tensors[0].name, sizeof f->tensors[0].name, "features.0.weight");
    return serialise(f);
}

static const malformed_case cases[] = {
    {"empty file", empty_file, ALEXNET_E_FORMAT, "file is 0 bytes, shorter than the 8-byte header length field"},
    {"seven bytes", seven_bytes, ALEXNET_E_FORMAT, "file is 7 bytes"},
    {"length field only", length_field_only, ALEXNET_E_FORMAT, "exceeds the 0 bytes after the length field"},
    {"half the header", half_header, ALEXNET_E_FORMAT, "file truncated"},
    {"header less one byte", header_less_one_byte, ALEXNET_E_FORMAT, "file truncated"},
    {"header without data", header_without_data, ALEXNET_E_FORMAT, "extend beyond the 0-byte data buffer"},
    {"cut inside the first tensor", inside_first_tensor, ALEXNET_E_FORMAT, "extend beyond the 10-byte data buffer"},
    {"last byte missing", last_byte_missing, ALEXNET_E_FORMAT, "'fc4.bias': data_offsets"},
    {"one byte too many", one_byte_too_many, ALEXNET_E_FORMAT, "at its end belong to no tensor"},
    {"header length 0", length_zero, ALEXNET_E_FORMAT, "header length is 0"},
    {"header length beyond the file", length_beyond_file, ALEXNET_E_FORMAT, "exceeds the"},
    {"header length 2^64-1", length_huge, ALEXNET_E_FORMAT, "header length 18446744073709551615 exceeds the limit"},
    {"header length cutting the JSON", length_cuts_json, ALEXNET_E_FORMAT, "unterminated array"},
    {"offsets beyond the data", offsets_beyond_data, ALEXNET_E_FORMAT, "extend beyond"},
    {"overlapping offsets", offsets_overlap, ALEXNET_E_FORMAT, "tensor 'conv1.bias' (bytes 420..436) overlaps"},
    {"hole between tensors", offsets_hole, ALEXNET_E_FORMAT, "hole in the data buffer: bytes 432..440"},
    {"offsets reversed", offsets_reversed, ALEXNET_E_FORMAT, "data_offsets begin 16 is after end 0"},
    {"one offset", offsets_one_entry, ALEXNET_E_FORMAT, "data_offsets has 1 entries"},
    {"offset beyond 64 bits", offset_beyond_64_bits, ALEXNET_E_FORMAT, "does not fit in 64 bits"},
    {"shape product overflows", shape_product_overflows, ALEXNET_E_FORMAT, "'conv1.weight': shape product overflows"},
    {"byte size overflows", byte_size_overflows, ALEXNET_E_FORMAT, "byte size of 4611686018427387904 F32"},
    {"byte size mismatch", byte_size_mismatch, ALEXNET_E_FORMAT, "'conv1.bias': byte size mismatch"},
    {"dtype I32", dtype_i32, ALEXNET_E_UNSUPPORTED, "'conv2.weight': dtype I32 cannot be read as float32"},
    {"dtype unknown", dtype_unknown, ALEXNET_E_FORMAT, "'conv1.weight': unknown dtype 'F4'"},
    {"dtype lowercase", dtype_lowercase, ALEXNET_E_FORMAT, "unknown dtype 'f32'"},
    {"dtype a number", dtype_not_string, ALEXNET_E_FORMAT, "dtype: expected a string, found a number"},
    {"rank 2 for a conv weight", rank_flattened, ALEXNET_E_SHAPE,
     "conv1.weight: file has [4,27], model expects [4,3,3,3]"},
    {"rank 3 for a bias", rank_too_high, ALEXNET_E_SHAPE, "fc3.bias: file has [6,1,1], model expects [6]"},
    {"rank 9", rank_nine, ALEXNET_E_FORMAT, "shape has more than 8 dimensions"},
    {"shape of another architecture", shape_of_other_architecture, ALEXNET_E_SHAPE,
     "conv2.weight: file has [4,4,3,3], model expects [4,2,3,3]"},
    {"negative dimension", shape_negative, ALEXNET_E_FORMAT, "shape[0]: expected a non-negative integer"},
    {"fractional dimension", shape_fraction, ALEXNET_E_FORMAT, "found '4.0'"},
    {"zero classes", zero_classes, ALEXNET_E_SHAPE, "fc4.weight: file has [0,6], model expects [3,6]"},
    {"duplicate names", duplicate_names, ALEXNET_E_FORMAT, "duplicate tensor name 'conv1.bias'"},
    {"name not UTF-8", name_not_utf8, ALEXNET_E_FORMAT, "invalid UTF-8"},
    {"name with an overlong UTF-8 sequence", name_overlong_utf8, ALEXNET_E_FORMAT, "invalid UTF-8"},
    {"name of 256 bytes", name_too_long, ALEXNET_E_FORMAT, "tensor name of 256 bytes is longer than 255 bytes"},
    {"name of 255 bytes, not a model tensor", name_longest_allowed, ALEXNET_E_SHAPE, "unexpected tensor wwww"},
    {"name with an escaped NUL", name_with_nul, ALEXNET_E_FORMAT, "NUL character"},
    {"empty name", name_empty, ALEXNET_E_FORMAT, "empty tensor name"},
    {"name with a lone surrogate", name_lone_surrogate, ALEXNET_E_FORMAT, "unpaired high surrogate"},
    {"100000 nested arrays in metadata", nesting_in_metadata, ALEXNET_E_FORMAT,
     "value of 'k' must be a string, found an array"},
    {"100000 nested objects as an entry", nesting_as_entry, ALEXNET_E_FORMAT, "tensor 'conv1.weight'"},
    {"100000 nested arrays as a shape", nesting_in_shape, ALEXNET_E_FORMAT,
     "shape[0]: expected a non-negative integer"},
    {"header not an object", header_not_object, ALEXNET_E_FORMAT, "header is not a JSON object (it is an array)"},
    {"garbage after the header", header_trailing_garbage, ALEXNET_E_FORMAT, "trailing data after the JSON value"},
    {"unexpected field", entry_unexpected_field, ALEXNET_E_FORMAT, "'conv1.bias': unexpected field 'crc'"},
    {"missing data_offsets", entry_missing_offsets, ALEXNET_E_FORMAT, "missing field 'data_offsets'"},
    {"entry not an object", entry_not_object, ALEXNET_E_FORMAT, "entry must be an object, found an array"},
    {"control character in a string", header_control_character, ALEXNET_E_FORMAT, "control character 0x09"},
    {"unterminated string", header_unterminated_string, ALEXNET_E_FORMAT, "unterminated string"},
    {"metadata class count disagrees", metadata_classes_disagree, ALEXNET_E_FORMAT, "metadata num_classes \"5\""},
    {"metadata value a number", metadata_not_string, ALEXNET_E_FORMAT, "value of 'num_classes' must be a string"},
    {"metadata duplicate key", metadata_duplicate_key, ALEXNET_E_FORMAT, "duplicate key 'format'"},
    {"metadata twice", metadata_twice, ALEXNET_E_FORMAT, "__metadata__ appears twice"},
    {"NaN in F32", nan_f32, ALEXNET_E_FORMAT, "conv2.bias: element 2 is NaN"},
    {"+infinity in F32", infinity_f32, ALEXNET_E_FORMAT, "fc3.weight: element 17 is infinite"},
    {"-infinity in F32", minus_infinity_f32, ALEXNET_E_FORMAT, "conv1.weight: element 0 is infinite"},
    {"NaN in F16", nan_f16, ALEXNET_E_FORMAT, "fc4.weight: element 5 is NaN"},
    {"infinity in BF16", infinity_bf16, ALEXNET_E_FORMAT, "fc4.bias: element 1 is infinite"},
    {"last tensor missing", missing_last, ALEXNET_E_SHAPE, "missing tensor fc4.bias"},
    {"first tensor missing", missing_first, ALEXNET_E_SHAPE, "missing tensor conv1.weight"},
    {"no tensors at all", no_tensors, ALEXNET_E_SHAPE, "missing tensor conv1.weight"},
    {"extra tensor", extra_tensor, ALEXNET_E_SHAPE, "unexpected tensor conv9.bias"},
    {"torchvision name in a conv-named model", torchvision_names, ALEXNET_E_SHAPE, "missing tensor conv1.weight"},
};

enum { CASE_COUNT = (int)(sizeof cases / sizeof cases[0]) };

START_TEST(malformed_file_fails_cleanly)
{
    const malformed_case *c = &cases[_i];
    tw_bytes b = c->make();
    expect_failure(c->label, &b, c->status, c->fragment);
    free(b.data);
}
END_TEST

/* Truncation at every tensor boundary of the library's file, and one byte into each tensor. */
START_TEST(truncated_at_every_tensor_boundary)
{
    tw_bytes b = library_file();
    size_t start = data_start(&b);
    test_counting_allocator counter;
    alexnet_config config;
    alexnet_model_options options = tiny_options(&config, test_counting_allocator_make(&counter));
    size_t offset = 0;
    int cuts = 0;
    for (size_t t = 0; t < 8; t++) {
        for (int extra = 0; extra < 2; extra++) {
            char label[64];
            snprintf(label, sizeof label, "cut at data byte %zu", offset + (size_t)extra);
            tw_bytes copy = {malloc(b.size), start + offset + (size_t)extra, b.size};
            ck_assert_ptr_nonnull(copy.data);
            memcpy(copy.data, b.data, copy.size);
            expect_failure(label, &copy, ALEXNET_E_FORMAT, "extend beyond the");
            free(copy.data);
            cuts++;
        }
        alexnet_model *model = NULL;
        ck_assert_int_eq(alexnet_model_load_memory(b.data, b.size, &options, &model), ALEXNET_OK);
        alexnet_tensor_info info;
        ck_assert_int_eq(alexnet_model_tensor(model, t, &info), ALEXNET_OK);
        offset += (size_t)info.element_count * 4;
        alexnet_model_destroy(model);
    }
    ck_assert_uint_eq(start + offset, b.size); /* the walk covered the whole data buffer */
    ck_assert_int_eq(cuts, 16);
    assert_no_leaks(&counter, "boundaries");
    free(b.data);
}
END_TEST

/* Files that are not files, or not there. */
START_TEST(paths_that_are_not_weights_files)
{
    test_counting_allocator counter;
    alexnet_config config;
    alexnet_model_options options = tiny_options(&config, test_counting_allocator_make(&counter));
    alexnet_model *model = untouched;
    ck_assert_int_eq(alexnet_model_load(scratch_dir, &options, &model), ALEXNET_E_IO);
    ck_assert_msg(strstr(alexnet_last_error(), "not a regular file") != NULL, "%s", alexnet_last_error());
    char path[128];
    snprintf(path, sizeof path, "%s/no-such-file.safetensors", scratch_dir);
    ck_assert_int_eq(alexnet_model_load(path, &options, &model), ALEXNET_E_IO);
    ck_assert_msg(strstr(alexnet_last_error(), path) != NULL, "%s", alexnet_last_error());
    ck_assert_int_eq(alexnet_model_load("", &options, &model), ALEXNET_E_IO);
    ck_assert_int_eq(alexnet_model_load_memory(NULL, 16, &options, &model), ALEXNET_E_INVALID_ARGUMENT);
    ck_assert_ptr_eq(model, untouched);
    assert_no_leaks(&counter, "paths");
}
END_TEST

START_TEST(valid_variants_load_exactly)
{
    tw_bytes b = serialise(tiny("F32"));
    expect_loads("F32", &b, 3);
    free(b.data);
    b = serialise(tiny("F16"));
    expect_loads("F16", &b, 3);
    free(b.data);
    b = serialise(tiny("BF16"));
    expect_loads("BF16", &b, 3);
    free(b.data);
    tw_file *f = tiny("F32");
    for (size_t i = 0; i < f->count; i++)
        f->tensors[i].dtype = i % 3 == 0 ? "F16" : i % 3 == 1 ? "BF16" : "F32";
    f->metadata = "\"format\":\"libalexnet\",\"num_classes\":\"3\",\"note\":\"\\u00e9t\\u00e9 \\ud83d\\ude00\"";
    b = serialise(f);
    expect_loads("mixed dtypes and metadata", &b, 3);
    free(b.data);
    b = name_escaped_same_as_expected();
    expect_loads("escaped name", &b, 3);
    free(b.data);
}
END_TEST

/* The class count comes from the file when the options leave it open: 5 classes load as a 5-class model. */
START_TEST(class_count_from_the_file)
{
    tw_file *f = tiny("F32");
    tw_tensor *weight = &f->tensors[6], *bias = &f->tensors[7];
    weight->shape[0] = bias->shape[0] = 5;
    weight->count = 5 * 6;
    bias->count = 5;
    for (size_t k = 0; k < weight->count; k++)
        weight->values[k] = tw_value(6, k);
    for (size_t k = 0; k < bias->count; k++)
        bias->values[k] = tw_value(7, k);
    tw_bytes b = serialise(f);
    expect_loads("five classes", &b, 5);
    /* ...and an explicit class count that contradicts the file is a shape error naming the tensor */
    test_counting_allocator counter;
    alexnet_config config;
    alexnet_model_options options = tiny_options(&config, test_counting_allocator_make(&counter));
    options.num_classes = 3;
    alexnet_model *model = untouched;
    ck_assert_int_eq(alexnet_model_load_memory(b.data, b.size, &options, &model), ALEXNET_E_SHAPE);
    ck_assert_msg(strstr(alexnet_last_error(), "fc4.weight: file has [5,6], model expects [3,6]") != NULL, "%s",
                  alexnet_last_error());
    ck_assert_ptr_eq(model, untouched);
    assert_no_leaks(&counter, "explicit classes");
    free(b.data);
}
END_TEST

static void make_scratch(void)
{
    snprintf(scratch_dir, sizeof scratch_dir, "/tmp/alexnet-malformed-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(scratch_dir));
}

static void remove_scratch(void) { rmdir(scratch_dir); }

int main(void)
{
    Suite *suite = suite_create("malformed_files");
    TCase *tc = tcase_create("malformed_files");
    tcase_add_checked_fixture(tc, make_scratch, remove_scratch);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, malformed_file_fails_cleanly, 0, CASE_COUNT);
    tcase_add_test(tc, truncated_at_every_tensor_boundary);
    tcase_add_test(tc, paths_that_are_not_weights_files);
    tcase_add_test(tc, valid_variants_load_exactly);
    tcase_add_test(tc, class_count_from_the_file);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    printf("%d malformed-file cases, each through alexnet_model_load_memory and alexnet_model_load\n", CASE_COUNT);
    return failed == 0 ? 0 : 1;
}
