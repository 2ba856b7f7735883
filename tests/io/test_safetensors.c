/* Tests for the safetensors reader and writer (lib/io/) and the byte sources they read from. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "test_check.h"
#include "util/error.h"

/* ---- the shared counting allocator (tests/support/test_support.h), reset by each test ---- */

static test_counting_allocator counter;
static alexnet_allocator test_allocator;

static void reset_counter(void)
{
    test_allocator = test_counting_allocator_make(&counter);
    an_error_clear();
}

static uint32_t float_bits(float value)
{
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

static float bits_float(uint32_t bits)
{
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* ---- hand-built files ---- */

typedef struct blob {
    unsigned char *bytes;
    size_t size;
} blob;

/* length_field as 8 little-endian bytes, header_length bytes of header, then data_size bytes of data
 * (from data, or a byte pattern when data is NULL). */
static blob build_raw(uint64_t length_field, const char *header, size_t header_length, const void *data,
                      size_t data_size)
{
    blob b;
    b.size = 8 + header_length + data_size;
    b.bytes = malloc(b.size + 1);
    ck_assert_ptr_nonnull(b.bytes);
    for (int i = 0; i < 8; i++)
        b.bytes[i] = (unsigned char)(length_field >> (8 * i));
    memcpy(b.bytes + 8, header, header_length);
    for (size_t i = 0; i < data_size; i++)
        b.bytes[8 + header_length + i] = data != NULL ? ((const unsigned char *)data)[i] : (unsigned char)(i * 7);
    return b;
}

static blob build(const char *header, const void *data, size_t data_size)
{
    return build_raw(strlen(header), header, strlen(header), data, data_size);
}

static void free_blob(blob *b)
{
    free(b->bytes);
    b->bytes = NULL;
}

static an_byte_source source;
static an_safetensors file;

static alexnet_status open_blob(const blob *b)
{
    an_byte_source_from_memory(&source, b->bytes, b->size);
    memset(&file, 0, sizeof file);
    return an_safetensors_open(&file, &source, &test_allocator);
}

#define ENTRY(dtype, shape, offsets) "{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offsets "}"

/* A scratch directory per test, removed (with whatever is in it) at the end. */
static char scratch[64];

static void make_scratch(void)
{
    snprintf(scratch, sizeof scratch, "/tmp/an_safetensors_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(scratch));
}

static void scratch_path(char *out, size_t size, const char *name) { snprintf(out, size, "%s/%s", scratch, name); }

static void remove_tree(const char *path)
{
    struct stat info;
    if (lstat(path, &info) != 0)
        return;
    if (S_ISDIR(info.st_mode)) {
        DIR *dir = opendir(path);
        ck_assert_ptr_nonnull(dir);
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
                continue;
            char child[512];
            snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
            remove_tree(child);
        }
        closedir(dir);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* Files in dir whose name contains ".tmp-": what a failed or interrupted atomic write would leave. */
static int count_temp_files(const char *dir_path)
{
    DIR *dir = opendir(dir_path);
    ck_assert_ptr_nonnull(dir);
    int count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL)
        if (strstr(entry->d_name, ".tmp-") != NULL)
            count++;
    closedir(dir);
    return count;
}

static void write_bytes_to(const char *path, const void *bytes, size_t size)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, size, f), size);
    ck_assert_int_eq(fclose(f), 0);
}

/* The whole file, malloc'ed; *out_size set. */
static unsigned char *read_whole(const char *path, size_t *out_size)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    ck_assert_int_ge(size, 0);
    rewind(f);
    unsigned char *bytes = malloc((size_t)size + 1);
    ck_assert_ptr_nonnull(bytes);
    ck_assert_uint_eq(fread(bytes, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *out_size = (size_t)size;
    return bytes;
}

/* ---- the round-trip fixture: awkward names, special float values, every rank from 0 up ---- */

#define NAME_QUOTES "quote\"back\\slash/"
#define NAME_UNICODE "unicod\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"
#define NAME_CONTROL "ctl\n\t\x01"

static float weights[24], bias[5], control_values[3], scalar_value[1];
static an_safetensors_write_tensor sample_tensors[6];
static an_safetensors_metadata_entry sample_metadata[2];

static void make_sample(void)
{
    for (int i = 0; i < 24; i++)
        weights[i] = (float)i * 0.37f - 4.0f;
    weights[0] = bits_float(0x7FA00001u); /* NaN with a payload */
    weights[1] = -0.0f;
    weights[2] = INFINITY;
    weights[3] = -INFINITY;
    weights[4] = bits_float(0x00000001u); /* smallest subnormal */
    weights[5] = FLT_MAX;
    for (int i = 0; i < 5; i++)
        bias[i] = 1.0f / (float)(i + 3);
    control_values[0] = 1.5f;
    control_values[1] = -2.25f;
    control_values[2] = 1e-30f;
    scalar_value[0] = 3.14159265f;
    memset(sample_tensors, 0, sizeof sample_tensors);
    sample_tensors[0] = (an_safetensors_write_tensor){"conv1.weight", 4, {2, 3, 2, 2}, weights};
    sample_tensors[1] = (an_safetensors_write_tensor){NAME_QUOTES, 1, {5}, bias};
    sample_tensors[2] = (an_safetensors_write_tensor){"empty", 2, {2, 0}, NULL};
    sample_tensors[3] = (an_safetensors_write_tensor){NAME_UNICODE, 1, {3}, control_values};
    sample_tensors[4] = (an_safetensors_write_tensor){"scalar", 0, {0}, scalar_value};
    sample_tensors[5] = (an_safetensors_write_tensor){NAME_CONTROL, 2, {1, 3}, control_values};
    sample_metadata[0] = (an_safetensors_metadata_entry){"format", "pt"};
    sample_metadata[1] = (an_safetensors_metadata_entry){"k\"ey\\", "v\xc3\xa9\nline\x1f"};
}

static uint64_t element_count_of(const an_safetensors_write_tensor *tensor)
{
    uint64_t count = 1;
    for (uint32_t i = 0; i < tensor->rank; i++)
        count *= tensor->shape[i];
    return count;
}

/* Every sample tensor is present with the same shape and bit-identical values, and the metadata too. */
static void check_sample_contents(const an_safetensors *opened)
{
    ck_assert_uint_eq(opened->tensor_count, 6);
    uint64_t expected_begin = 0;
    for (size_t i = 0; i < 6; i++) {
        const an_safetensors_write_tensor *want = &sample_tensors[i];
        const an_safetensors_tensor *got = an_safetensors_find(opened, want->name);
        ck_assert_msg(got != NULL, "tensor %zu missing", i);
        ck_assert_str_eq(got->name, want->name);
        ck_assert_int_eq(got->dtype, AN_DTYPE_F32);
        ck_assert_str_eq(got->dtype_name, "F32");
        ck_assert_uint_eq(got->rank, want->rank);
        for (uint32_t d = 0; d < want->rank; d++)
            ck_assert_uint_eq(got->shape[d], want->shape[d]);
        uint64_t count = element_count_of(want);
        ck_assert_uint_eq(got->element_count, count);
        /* Laid out back to back in the given order. */
        ck_assert_uint_eq(got->data_begin, expected_begin);
        ck_assert_uint_eq(got->data_end, expected_begin + 4 * count);
        expected_begin += 4 * count;
        float values[32];
        memset(values, 0xEE, sizeof values);
        test_assert_ok(an_safetensors_read_f32(opened, got, count ? values : NULL, (size_t)count));
        for (uint64_t e = 0; e < count; e++)
            ck_assert_uint_eq(float_bits(values[e]), float_bits(want->data[e]));
        ck_assert_uint_eq(float_bits(values[count]), 0xEEEEEEEEu); /* nothing written past count */
    }
    ck_assert_uint_eq(opened->metadata_count, 2);
    ck_assert_str_eq(an_safetensors_metadata(opened, "format"), "pt");
    ck_assert_str_eq(an_safetensors_metadata(opened, "k\"ey\\"), "v\xc3\xa9\nline\x1f");
    ck_assert_ptr_null(an_safetensors_metadata(opened, "absent"));
    ck_assert_ptr_null(an_safetensors_find(opened, "absent"));
    ck_assert_ptr_null(an_safetensors_find(opened, "conv1.weigh"));
}

/* ---- round trips in memory ---- */

START_TEST(test_memory_round_trip)
{
    reset_counter();
    make_sample();
    size_t size = 0;
    test_assert_ok(an_safetensors_serialized_size(sample_tensors, 6, sample_metadata, 2, &test_allocator, &size));
    unsigned char *buffer = malloc(size);
    ck_assert_ptr_nonnull(buffer);
    size_t written = 0;
    test_assert_ok(an_safetensors_write_memory(sample_tensors, 6, sample_metadata, 2, &test_allocator, buffer, size,
                                          &written));
    ck_assert_uint_eq(written, size);

    /* Layout: length prefix, header padded with spaces to a multiple of 8, metadata first. */
    uint64_t header_length = 0;
    for (int i = 7; i >= 0; i--)
        header_length = (header_length << 8) | buffer[i];
    ck_assert_uint_eq(header_length % 8, 0);
    ck_assert_uint_eq(size, 8 + header_length + 4 * (24 + 5 + 0 + 3 + 1 + 3));
    ck_assert_int_eq(memcmp(buffer + 8, "{\"__metadata__\":{", 17), 0);
    const char *json_end = (const char *)buffer + 8 + header_length;
    size_t spaces = 0;
    while (json_end[-1 - (long)spaces] == ' ')
        spaces++;
    ck_assert_uint_lt(spaces, 8);
    ck_assert_int_eq(json_end[-1 - (long)spaces], '}');

    blob b = {buffer, size};
    test_assert_ok(open_blob(&b));
    ck_assert_uint_eq(file.data_offset, 8 + header_length);
    check_sample_contents(&file);
    an_safetensors_close(&file);
    an_safetensors_close(&file); /* safe twice */
    free(buffer);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_write_is_deterministic_and_checks_capacity)
{
    reset_counter();
    make_sample();
    size_t size = 0;
    test_assert_ok(an_safetensors_serialized_size(sample_tensors, 6, NULL, 0, &test_allocator, &size));
    unsigned char *first = calloc(1, size), *second = calloc(1, size);
    size_t written = 0;
    test_assert_ok(an_safetensors_write_memory(sample_tensors, 6, NULL, 0, &test_allocator, first, size, &written));
    test_assert_ok(an_safetensors_write_memory(sample_tensors, 6, NULL, 0, &test_allocator, second, size, NULL));
    ck_assert_int_eq(memcmp(first, second, size), 0);
    ck_assert_int_eq(memcmp(first + 8, "{\"conv1.weight\":{\"dtype\":\"F32\",\"shape\":[2,3,2,2],"
                                       "\"data_offsets\":[0,96]}", 71), 0);
    /* Too small by one byte, or no buffer: refused, and the size output is left alone. */
    written = 12345;
    test_assert_fails_with(an_safetensors_write_memory(sample_tensors, 6, NULL, 0, &test_allocator, second, size - 1,
                                                  &written),
                      ALEXNET_E_INVALID_ARGUMENT, "too small");
    ck_assert_uint_eq(written, 12345);
    test_assert_fails_with(an_safetensors_write_memory(sample_tensors, 6, NULL, 0, &test_allocator, NULL, 0, &written),
                      ALEXNET_E_INVALID_ARGUMENT, "too small");
    free(first);
    free(second);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_empty_file_round_trip)
{
    reset_counter();
    size_t size = 0;
    test_assert_ok(an_safetensors_serialized_size(NULL, 0, NULL, 0, NULL, &size));
    ck_assert_uint_eq(size, 16); /* "{}" padded to 8 */
    unsigned char buffer[16];
    test_assert_ok(an_safetensors_write_memory(NULL, 0, NULL, 0, &test_allocator, buffer, sizeof buffer, &size));
    ck_assert_int_eq(memcmp(buffer + 8, "{}      ", 8), 0);
    blob b = {buffer, sizeof buffer};
    test_assert_ok(open_blob(&b));
    ck_assert_uint_eq(file.tensor_count, 0);
    ck_assert_uint_eq(file.metadata_count, 0);
    ck_assert_ptr_null(an_safetensors_find(&file, "x"));
    an_safetensors_close(&file);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_close_zeroed_is_safe)
{
    an_safetensors zeroed;
    memset(&zeroed, 0, sizeof zeroed);
    an_safetensors_close(&zeroed);
    an_safetensors_close(NULL);
    an_byte_source none;
    memset(&none, 0, sizeof none);
    an_byte_source_close(&none);
    an_byte_source_close(NULL);
}
END_TEST

/* ---- writer input validation ---- */

typedef struct writer_case {
    const char *fragment;
    an_safetensors_write_tensor tensors[2];
    size_t tensor_count;
    an_safetensors_metadata_entry metadata[2];
    size_t metadata_count;
} writer_case;

static float some_floats[4] = {1, 2, 3, 4};
static char long_name[257];

static writer_case writer_cases[] = {
    {"name is NULL", {{NULL, 1, {1}, some_floats}}, 1, {{0}}, 0},
    {"rank 9 exceeds 8", {{"t", 9, {1, 1, 1, 1, 1, 1, 1, 1}, some_floats}}, 1, {{0}}, 0},
    {"duplicate tensor name 't'", {{"t", 1, {1}, some_floats}, {"t", 1, {2}, some_floats}}, 2, {{0}}, 0},
    {"duplicate metadata key 'k'", {{0}}, 0, {{"k", "a"}, {"k", "b"}}, 2},
    {"not 1..255 bytes", {{"", 1, {1}, some_floats}}, 1, {{0}}, 0},
    {"not 1..255 bytes", {{long_name, 1, {1}, some_floats}}, 1, {{0}}, 0},
    {"not valid UTF-8", {{"bad\xff", 1, {1}, some_floats}}, 1, {{0}}, 0},
    {"reserved", {{"__metadata__", 1, {1}, some_floats}}, 1, {{0}}, 0},
    {"data is NULL", {{"t", 1, {4}, NULL}}, 1, {{0}}, 0},
    {"overflows", {{"t", 3, {1ull << 32, 1ull << 32, 2}, some_floats}}, 1, {{0}}, 0},
    {"must not be NULL", {{0}}, 0, {{"k", NULL}}, 1},
    {"must not be NULL", {{0}}, 0, {{NULL, "v"}}, 1},
    {"not valid UTF-8", {{0}}, 0, {{"k", "\xc0\x80"}}, 1},
};

START_TEST(test_writer_rejects_bad_input)
{
    reset_counter();
    memset(long_name, 'n', 256);
    long_name[256] = '\0';
    writer_case *c = &writer_cases[_i];
    size_t size = 777;
    unsigned char buffer[256];
    test_assert_fails_with(an_safetensors_serialized_size(c->tensors, c->tensor_count, c->metadata, c->metadata_count,
                                                     &test_allocator, &size),
                      ALEXNET_E_INVALID_ARGUMENT, c->fragment);
    ck_assert_uint_eq(size, 777);
    test_assert_fails_with(an_safetensors_write_memory(c->tensors, c->tensor_count, c->metadata, c->metadata_count,
                                                  &test_allocator, buffer, sizeof buffer, &size),
                      ALEXNET_E_INVALID_ARGUMENT, c->fragment);
    make_scratch();
    char path[128];
    scratch_path(path, sizeof path, "out.safetensors");
    test_assert_fails_with(an_safetensors_write_file(path, c->tensors, c->tensor_count, c->metadata, c->metadata_count,
                                                &test_allocator),
                      ALEXNET_E_INVALID_ARGUMENT, c->fragment);
    ck_assert_int_ne(access(path, F_OK), 0);
    ck_assert_int_eq(count_temp_files(scratch), 0);
    remove_tree(scratch);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_writer_rejects_bad_arrays_and_allocator)
{
    reset_counter();
    size_t size;
    test_assert_fails_with(an_safetensors_serialized_size(NULL, 1, NULL, 0, &test_allocator, &size),
                      ALEXNET_E_INVALID_ARGUMENT, "NULL tensor or metadata array");
    test_assert_fails_with(an_safetensors_serialized_size(NULL, 0, NULL, 1, &test_allocator, &size),
                      ALEXNET_E_INVALID_ARGUMENT, "NULL tensor or metadata array");
    test_assert_fails_with(an_safetensors_serialized_size(NULL, 0, NULL, 0, &test_allocator, NULL),
                      ALEXNET_E_INVALID_ARGUMENT, "out_size");
    alexnet_allocator half = test_allocator;
    half.free = NULL;
    test_assert_fails_with(an_safetensors_serialized_size(NULL, 0, NULL, 0, &half, &size), ALEXNET_E_INVALID_ARGUMENT,
                      "allocator");
    test_assert_fails_with(an_safetensors_write_file(NULL, NULL, 0, NULL, 0, &test_allocator),
                      ALEXNET_E_INVALID_ARGUMENT, "path");
    test_assert_fails_with(an_safetensors_write_file("", NULL, 0, NULL, 0, &test_allocator), ALEXNET_E_INVALID_ARGUMENT,
                      "path");
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_writer_refuses_header_over_limit)
{
    reset_counter();
    /* Metadata that would push the header past the 100 MB readers accept: refused before anything is
     * written, so the writer never produces a file its own reader rejects. */
    size_t length = 100000000;
    char *value = malloc(length + 1);
    ck_assert_ptr_nonnull(value);
    memset(value, 'v', length);
    value[length] = '\0';
    an_safetensors_metadata_entry entry = {"big", value};
    size_t size = 0;
    test_assert_fails_with(an_safetensors_serialized_size(NULL, 0, &entry, 1, &test_allocator, &size),
                      ALEXNET_E_INVALID_ARGUMENT, "100000000-byte limit");
    /* Just under the limit is fine: 99999960 bytes of value plus the JSON around it. */
    value[99999960] = '\0';
    test_assert_ok(an_safetensors_serialized_size(NULL, 0, &entry, 1, &test_allocator, &size));
    ck_assert_uint_le(size, 8 + 100000000);
    free(value);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_writer_accepts_max_length_name)
{
    reset_counter();
    char name[256];
    memset(name, 'x', 255);
    name[255] = '\0';
    an_safetensors_write_tensor tensor = {name, 1, {2}, some_floats};
    unsigned char buffer[512];
    size_t size = 0;
    test_assert_ok(an_safetensors_write_memory(&tensor, 1, NULL, 0, &test_allocator, buffer, sizeof buffer, &size));
    blob b = {buffer, size};
    test_assert_ok(open_blob(&b));
    ck_assert_ptr_nonnull(an_safetensors_find(&file, name));
    an_safetensors_close(&file);
    test_assert_no_leaks(&counter);
}
END_TEST

/* ---- files ---- */

START_TEST(test_file_round_trip_and_overwrite)
{
    reset_counter();
    make_sample();
    make_scratch();
    char path[128];
    scratch_path(path, sizeof path, "model.safetensors");
    test_assert_ok(an_safetensors_write_file(path, sample_tensors, 6, sample_metadata, 2, &test_allocator));
    ck_assert_int_eq(count_temp_files(scratch), 0);
    struct stat info;
    ck_assert_int_eq(stat(path, &info), 0);
    ck_assert_uint_eq(info.st_mode & 0777, 0644); /* not mkstemp's 0600 */

    /* The file holds exactly what write_memory produces. */
    size_t size = 0, file_size = 0;
    test_assert_ok(an_safetensors_serialized_size(sample_tensors, 6, sample_metadata, 2, &test_allocator, &size));
    unsigned char *expected = malloc(size);
    test_assert_ok(an_safetensors_write_memory(sample_tensors, 6, sample_metadata, 2, &test_allocator, expected, size,
                                          NULL));
    unsigned char *actual = read_whole(path, &file_size);
    ck_assert_uint_eq(file_size, size);
    ck_assert_int_eq(memcmp(actual, expected, size), 0);
    free(actual);
    free(expected);

    an_byte_source file_source;
    test_assert_ok(an_byte_source_open_file(&file_source, path));
    ck_assert_uint_eq(file_source.size, size);
    ck_assert_ptr_nonnull(file_source.file);
    test_assert_ok(an_safetensors_open(&file, &file_source, &test_allocator));
    check_sample_contents(&file);
    an_safetensors_close(&file);
    an_byte_source_close(&file_source);
    an_byte_source_close(&file_source); /* safe twice */

    /* Overwriting replaces the content and keeps the old file's permissions. */
    ck_assert_int_eq(chmod(path, 0600), 0);
    an_safetensors_write_tensor one = {"only", 1, {4}, some_floats};
    test_assert_ok(an_safetensors_write_file(path, &one, 1, NULL, 0, &test_allocator));
    ck_assert_int_eq(stat(path, &info), 0);
    ck_assert_uint_eq(info.st_mode & 0777, 0600);
    test_assert_ok(an_byte_source_open_file(&file_source, path));
    test_assert_ok(an_safetensors_open(&file, &file_source, &test_allocator));
    ck_assert_uint_eq(file.tensor_count, 1);
    float values[4];
    test_assert_ok(an_safetensors_read_f32(&file, an_safetensors_find(&file, "only"), values, 4));
    ck_assert_int_eq(memcmp(values, some_floats, sizeof values), 0);
    an_safetensors_close(&file);
    an_byte_source_close(&file_source);
    ck_assert_int_eq(count_temp_files(scratch), 0);
    remove_tree(scratch);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_write_into_missing_directory_fails_cleanly)
{
    reset_counter();
    make_scratch();
    char path[160];
    scratch_path(path, sizeof path, "missing/model.safetensors");
    an_safetensors_write_tensor one = {"only", 1, {4}, some_floats};
    test_assert_fails_with(an_safetensors_write_file(path, &one, 1, NULL, 0, &test_allocator), ALEXNET_E_IO, path);
    ck_assert_ptr_nonnull(strstr(alexnet_last_error(), strerror(ENOENT)));
    ck_assert_int_eq(count_temp_files(scratch), 0);
    char missing[160];
    scratch_path(missing, sizeof missing, "missing");
    ck_assert_int_ne(access(missing, F_OK), 0);
    remove_tree(scratch);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_write_over_directory_fails_cleanly)
{
    reset_counter();
    make_scratch();
    char path[160];
    scratch_path(path, sizeof path, "occupied");
    ck_assert_int_eq(mkdir(path, 0755), 0);
    an_safetensors_write_tensor one = {"only", 1, {4}, some_floats};
    /* The temporary file is written fine; the rename onto a directory fails, and the temp must go. */
    test_assert_fails_with(an_safetensors_write_file(path, &one, 1, NULL, 0, &test_allocator), ALEXNET_E_IO, "rename");
    ck_assert_ptr_nonnull(strstr(alexnet_last_error(), path));
    struct stat info;
    ck_assert_int_eq(stat(path, &info), 0);
    ck_assert(S_ISDIR(info.st_mode));
    ck_assert_int_eq(count_temp_files(scratch), 0);
    remove_tree(scratch);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_failed_write_keeps_old_content)
{
    reset_counter();
    make_scratch();
    char path[160];
    scratch_path(path, sizeof path, "model.safetensors");
    static const char old_content[] = "old content that must survive";
    write_bytes_to(path, old_content, sizeof old_content);

    /* Provoke a write error even as root: a file size limit makes write(2) fail with EFBIG. */
    size_t count = 64 * 1024;
    float *big = calloc(count, sizeof *big);
    ck_assert_ptr_nonnull(big);
    an_safetensors_write_tensor tensor = {"big", 1, {count}, big};
    struct rlimit saved;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
    void (*previous)(int) = signal(SIGXFSZ, SIG_IGN);
    struct rlimit limited = saved;
    limited.rlim_cur = 16 * 1024;
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &limited), 0);
    alexnet_status status = an_safetensors_write_file(path, &tensor, 1, NULL, 0, &test_allocator);
    char message[512];
    snprintf(message, sizeof message, "%s", alexnet_last_error());
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, previous);
    free(big);

    ck_assert_int_eq(status, ALEXNET_E_IO);
    ck_assert_msg(strstr(message, path) != NULL && strstr(message, strerror(EFBIG)) != NULL, "%s", message);
    size_t size = 0;
    unsigned char *content = read_whole(path, &size);
    ck_assert_uint_eq(size, sizeof old_content);
    ck_assert_int_eq(memcmp(content, old_content, size), 0);
    free(content);
    ck_assert_int_eq(count_temp_files(scratch), 0);
    remove_tree(scratch);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_write_file_out_of_memory)
{
    make_sample();
    make_scratch();
    char path[160];
    scratch_path(path, sizeof path, "model.safetensors");
    int failures = 0;
    for (size_t fail_at = 1;; fail_at++) { /* 1-based: the allocation that returns NULL */
        reset_counter();
        counter.fail_at = fail_at;
        alexnet_status status = an_safetensors_write_file(path, sample_tensors, 6, sample_metadata, 2,
                                                          &test_allocator);
        test_assert_no_leaks(&counter);
        if (status == ALEXNET_OK)
            break;
        ck_assert_int_eq(status, ALEXNET_E_OUT_OF_MEMORY);
        ck_assert_str_ne(alexnet_last_error(), "");
        ck_assert_int_ne(access(path, F_OK), 0);
        ck_assert_int_eq(count_temp_files(scratch), 0);
        failures++;
        ck_assert_uint_le(fail_at, 100);
    }
    ck_assert_int_ge(failures, 2); /* the header and the temporary name at least */
    remove_tree(scratch);
}
END_TEST

/* ---- byte sources ---- */

START_TEST(test_file_source_errors)
{
    reset_counter();
    make_scratch();
    char path[160];
    scratch_path(path, sizeof path, "absent.safetensors");
    an_byte_source s;
    memset(&s, 0x5A, sizeof s);
    test_assert_fails_with(an_byte_source_open_file(&s, path), ALEXNET_E_IO, path);
    ck_assert_ptr_nonnull(strstr(alexnet_last_error(), strerror(ENOENT)));
    test_assert_fails_with(an_byte_source_open_file(&s, scratch), ALEXNET_E_IO, "not a regular file");
    test_assert_fails_with(an_byte_source_open_file(&s, NULL), ALEXNET_E_INVALID_ARGUMENT, "NULL");

    /* A read past the end of the file (say, it shrank after it was opened) is an I/O error, not a crash. */
    scratch_path(path, sizeof path, "short");
    write_bytes_to(path, "0123456789", 10);
    test_assert_ok(an_byte_source_open_file(&s, path));
    ck_assert_uint_eq(s.size, 10);
    char bytes[16] = {0};
    test_assert_ok(s.read(s.user, 3, bytes, 4));
    ck_assert_int_eq(memcmp(bytes, "3456", 4), 0);
    test_assert_fails_with(s.read(s.user, 8, bytes, 4), ALEXNET_E_IO, "end of file");
    an_byte_source_close(&s);
    ck_assert_ptr_null(s.file);
    remove_tree(scratch);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_memory_source)
{
    static const char text[] = "abcdef";
    an_byte_source s;
    an_byte_source_from_memory(&s, text, 6);
    ck_assert_uint_eq(s.size, 6);
    ck_assert_ptr_null(s.file);
    char out[4] = {0};
    test_assert_ok(s.read(s.user, 2, out, 3));
    ck_assert_str_eq(out, "cde");
    an_byte_source_close(&s);
}
END_TEST

START_TEST(test_open_rejects_null_arguments)
{
    reset_counter();
    an_byte_source s;
    an_byte_source_from_memory(&s, "", 0);
    test_assert_fails_with(an_safetensors_open(NULL, &s, &test_allocator), ALEXNET_E_INVALID_ARGUMENT, "NULL");
    test_assert_fails_with(an_safetensors_open(&file, NULL, &test_allocator), ALEXNET_E_INVALID_ARGUMENT, "NULL");
    test_assert_no_leaks(&counter);
}
END_TEST

/* ---- dtype conversion ---- */

typedef struct bits_case {
    uint16_t input;
    uint32_t expected;
} bits_case;

/* Hand-computed binary16 -> binary32 results. */
static const bits_case f16_cases[] = {
    {0x0000, 0x00000000}, /* +0 */
    {0x8000, 0x80000000}, /* -0 */
    {0x3C00, 0x3F800000}, /* 1 */
    {0xC000, 0xC0000000}, /* -2 */
    {0x3800, 0x3F000000}, /* 0.5 */
    {0x3555, 0x3EAAA000}, /* 0.333251953125 */
    {0x7BFF, 0x477FE000}, /* 65504, the largest half */
    {0x0400, 0x38800000}, /* 2^-14, the smallest normal */
    {0x03FF, 0x387FC000}, /* 1023 x 2^-24, the largest subnormal */
    {0x0200, 0x38000000}, /* 2^-15 */
    {0x0001, 0x33800000}, /* 2^-24, the smallest subnormal */
    {0x8001, 0xB3800000}, /* -2^-24 */
    {0x7C00, 0x7F800000}, /* +inf */
    {0xFC00, 0xFF800000}, /* -inf */
    {0x7E00, 0x7FC00000}, /* quiet NaN */
    {0xFE00, 0xFFC00000}, /* negative quiet NaN */
    {0x7C01, 0x7F802000}, /* signalling NaN: the payload is kept, so it stays a NaN */
    {0x7FFF, 0x7FFFE000},
};

static const bits_case bf16_cases[] = {
    {0x3F80, 0x3F800000}, /* 1 */
    {0xC040, 0xC0400000}, /* -3 */
    {0x4049, 0x40490000}, /* 3.140625 */
    {0x8000, 0x80000000}, /* -0 */
    {0x0001, 0x00010000}, /* a subnormal */
    {0x7F80, 0x7F800000}, /* +inf */
    {0xFF80, 0xFF800000}, /* -inf */
    {0x7FC0, 0x7FC00000}, /* NaN */
    {0x7F7F, 0x7F7F0000}, /* the largest finite bfloat16 */
};

/* A file holding one 16-bit tensor "h" with the given raw values. */
static blob build_16bit(const char *dtype, const uint16_t *values, size_t count)
{
    char header[160];
    snprintf(header, sizeof header, "{\"h\":{\"dtype\":\"%s\",\"shape\":[%zu],\"data_offsets\":[0,%zu]}}", dtype,
             count, 2 * count);
    unsigned char *data = malloc(2 * count + 1);
    ck_assert_ptr_nonnull(data);
    for (size_t i = 0; i < count; i++) {
        data[2 * i] = (unsigned char)(values[i] & 0xFF); /* little-endian */
        data[2 * i + 1] = (unsigned char)(values[i] >> 8);
    }
    blob b = build(header, data, 2 * count);
    free(data);
    return b;
}

static void check_16bit_cases(const char *dtype, an_dtype expected_dtype, const bits_case *cases, size_t count)
{
    reset_counter();
    uint16_t inputs[32];
    for (size_t i = 0; i < count; i++)
        inputs[i] = cases[i].input;
    blob b = build_16bit(dtype, inputs, count);
    test_assert_ok(open_blob(&b));
    const an_safetensors_tensor *tensor = an_safetensors_find(&file, "h");
    ck_assert_ptr_nonnull(tensor);
    ck_assert_int_eq(tensor->dtype, expected_dtype);
    ck_assert_str_eq(tensor->dtype_name, dtype);
    float values[32];
    test_assert_ok(an_safetensors_read_f32(&file, tensor, values, count));
    for (size_t i = 0; i < count; i++)
        ck_assert_msg(float_bits(values[i]) == cases[i].expected, "%s 0x%04x -> 0x%08x, expected 0x%08x", dtype,
                      (unsigned)cases[i].input, (unsigned)float_bits(values[i]), (unsigned)cases[i].expected);
    an_safetensors_close(&file);
    free_blob(&b);
    test_assert_no_leaks(&counter);
}

START_TEST(test_f16_hand_computed)
{
    check_16bit_cases("F16", AN_DTYPE_F16, f16_cases, sizeof f16_cases / sizeof f16_cases[0]);
}
END_TEST

START_TEST(test_bf16_hand_computed)
{
    check_16bit_cases("BF16", AN_DTYPE_BF16, bf16_cases, sizeof bf16_cases / sizeof bf16_cases[0]);
}
END_TEST

/* An independent oracle for binary16: the value's definition, evaluated in double precision. */
static uint32_t f16_reference_bits(uint16_t half)
{
    int negative = half >> 15;
    int exponent = (half >> 10) & 0x1F;
    int mantissa = half & 0x3FF;
    if (exponent == 0x1F)
        return (negative ? 0x80000000u : 0) | 0x7F800000u | ((uint32_t)mantissa << 13);
    double magnitude = exponent == 0 ? ldexp(mantissa, -24) : ldexp(1024 + mantissa, exponent - 25);
    return float_bits((float)(negative ? -magnitude : magnitude));
}

/* Every one of the 65536 half values, 128 KiB of data: more than one conversion chunk, read from memory and
 * from a file. */
static void check_all_16bit(const char *dtype, int from_file)
{
    reset_counter();
    size_t count = 65536;
    uint16_t *inputs = malloc(count * sizeof *inputs);
    float *values = malloc((count + 1) * sizeof *values);
    ck_assert_ptr_nonnull(inputs);
    ck_assert_ptr_nonnull(values);
    for (size_t i = 0; i < count; i++)
        inputs[i] = (uint16_t)(i * 40503u); /* a permutation of all values, so chunk edges see variety */
    blob b = build_16bit(dtype, inputs, count);
    an_byte_source file_source;
    if (from_file) {
        make_scratch();
        char path[160];
        scratch_path(path, sizeof path, "halves.safetensors");
        write_bytes_to(path, b.bytes, b.size);
        test_assert_ok(an_byte_source_open_file(&file_source, path));
        test_assert_ok(an_safetensors_open(&file, &file_source, &test_allocator));
    } else {
        test_assert_ok(open_blob(&b));
    }
    values[count] = bits_float(0xDEADBEEFu);
    test_assert_ok(an_safetensors_read_f32(&file, an_safetensors_find(&file, "h"), values, count));
    int is_f16 = strcmp(dtype, "F16") == 0;
    for (size_t i = 0; i < count; i++) {
        uint32_t expected = is_f16 ? f16_reference_bits(inputs[i]) : (uint32_t)inputs[i] << 16;
        ck_assert_msg(float_bits(values[i]) == expected, "%s 0x%04x -> 0x%08x, expected 0x%08x", dtype,
                      (unsigned)inputs[i], (unsigned)float_bits(values[i]), (unsigned)expected);
    }
    ck_assert_uint_eq(float_bits(values[count]), 0xDEADBEEFu);
    an_safetensors_close(&file);
    if (from_file) {
        an_byte_source_close(&file_source);
        remove_tree(scratch);
    }
    free_blob(&b);
    free(inputs);
    free(values);
    test_assert_no_leaks(&counter);
}

START_TEST(test_f16_all_values) { check_all_16bit("F16", _i); }
END_TEST

START_TEST(test_bf16_all_values) { check_all_16bit("BF16", _i); }
END_TEST

START_TEST(test_unaligned_offsets_and_other_dtypes)
{
    reset_counter();
    /* A 1-byte U8 tensor first puts the F16 and F32 data at odd offsets. */
    const char *header = "{\"u8\":" ENTRY("U8", "[1]", "[0,1]") ",\"h\":" ENTRY("F16", "[2]", "[1,5]")
                         ",\"f\":" ENTRY("F32", "[2]", "[5,13]") ",\"i64\":" ENTRY("I64", "[1]", "[13,21]") "}";
    unsigned char data[21] = {0x07, 0x00, 0x3C, 0x00, 0xC0};
    float f[2] = {-1.25f, 1e10f};
    memcpy(data + 5, f, sizeof f);
    blob b = build(header, data, sizeof data);
    test_assert_ok(open_blob(&b));
    ck_assert_uint_eq(file.tensor_count, 4);
    float values[2];
    test_assert_ok(an_safetensors_read_f32(&file, an_safetensors_find(&file, "h"), values, 2));
    ck_assert_uint_eq(float_bits(values[0]), 0x3F800000u);
    ck_assert_uint_eq(float_bits(values[1]), 0xC0000000u);
    test_assert_ok(an_safetensors_read_f32(&file, an_safetensors_find(&file, "f"), values, 2));
    ck_assert_int_eq(memcmp(values, f, sizeof f), 0);
    const an_safetensors_tensor *u8 = an_safetensors_find(&file, "u8");
    ck_assert_int_eq(u8->dtype, AN_DTYPE_OTHER);
    ck_assert_str_eq(u8->dtype_name, "U8");
    test_assert_fails_with(an_safetensors_read_f32(&file, u8, values, 1), ALEXNET_E_UNSUPPORTED, "U8");
    test_assert_fails_with(an_safetensors_read_f32(&file, an_safetensors_find(&file, "i64"), values, 1),
                      ALEXNET_E_UNSUPPORTED, "'i64'");
    /* Tensors are kept in data order. */
    ck_assert_str_eq(file.tensors[0].name, "u8");
    ck_assert_str_eq(file.tensors[3].name, "i64");
    an_safetensors_close(&file);
    free_blob(&b);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_every_known_dtype_parses)
{
    reset_counter();
    static const struct {
        const char *name;
        unsigned size;
    } dtypes[] = {{"F64", 8}, {"I64", 8}, {"I32", 4}, {"I16", 2},     {"I8", 1},      {"U8", 1},  {"BOOL", 1},
                  {"U16", 2}, {"U32", 4}, {"U64", 8}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"F32", 4}, {"F16", 2},
                  {"BF16", 2}};
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++) {
        char header[128];
        snprintf(header, sizeof header, "{\"t\":{\"dtype\":\"%s\",\"shape\":[3],\"data_offsets\":[0,%u]}}",
                 dtypes[i].name, 3 * dtypes[i].size);
        blob b = build(header, NULL, 3 * dtypes[i].size);
        test_assert_ok(open_blob(&b));
        ck_assert_str_eq(file.tensors[0].dtype_name, dtypes[i].name);
        ck_assert_uint_eq(file.tensors[0].element_count, 3);
        an_safetensors_close(&file);
        free_blob(&b);
    }
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_read_f32_argument_checks)
{
    reset_counter();
    blob b = build("{\"w\":" ENTRY("F32", "[2]", "[0,8]") "}", NULL, 8);
    test_assert_ok(open_blob(&b));
    const an_safetensors_tensor *w = an_safetensors_find(&file, "w");
    float values[3];
    test_assert_fails_with(an_safetensors_read_f32(&file, w, values, 3), ALEXNET_E_INVALID_ARGUMENT,
                      "'w' has 2 elements, not 3");
    test_assert_fails_with(an_safetensors_read_f32(&file, w, values, 1), ALEXNET_E_INVALID_ARGUMENT, "not 1");
    test_assert_fails_with(an_safetensors_read_f32(&file, w, NULL, 2), ALEXNET_E_INVALID_ARGUMENT, "NULL");
    test_assert_fails_with(an_safetensors_read_f32(&file, NULL, values, 2), ALEXNET_E_INVALID_ARGUMENT, "NULL");
    an_safetensors_close(&file);
    free_blob(&b);
    test_assert_no_leaks(&counter);
}
END_TEST

/* ---- accepted variations ---- */

START_TEST(test_padding_and_order_variations)
{
    reset_counter();
    static const char *const headers[] = {
        /* padded with spaces, as writers do */
        "{\"w\":" ENTRY("F32", "[2]", "[0,8]") "}     ",
        /* unpadded, odd length, metadata last, whitespace inside, fields in another order */
        " { \"w\" : {\"data_offsets\":[0,8], \"shape\":[2], \"dtype\":\"F32\"}, \"__metadata__\":{\"a\":\"b\"} }",
        /* an escaped key that decodes to __metadata__ is the metadata */
        "{\"\\u005f_metadata__\":{},\"w\":" ENTRY("F32", "[2]", "[0,8]") "}",
    };
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        blob b = build(headers[i], NULL, 8);
        ck_assert_msg(open_blob(&b) == ALEXNET_OK, "header %zu: %s", i, alexnet_last_error());
        ck_assert_uint_eq(file.tensor_count, 1);
        ck_assert_uint_eq(file.data_offset, 8 + strlen(headers[i]));
        an_safetensors_close(&file);
        free_blob(&b);
    }
    /* Zero-size tensors may sit anywhere between others, even several at one offset. */
    blob b = build("{\"b\":" ENTRY("F32", "[1]", "[4,8]") ",\"z2\":" ENTRY("F32", "[0]", "[4,4]") ",\"z1\":"
                   ENTRY("F32", "[3,0]", "[4,4]") ",\"a\":" ENTRY("F32", "[1]", "[0,4]") ",\"end\":"
                   ENTRY("BF16", "[0]", "[8,8]") "}", NULL, 8);
    test_assert_ok(open_blob(&b));
    static const char *const data_order[] = {"a", "z1", "z2", "b", "end"};
    for (size_t i = 0; i < 5; i++)
        ck_assert_str_eq(file.tensors[i].name, data_order[i]);
    float nothing;
    test_assert_ok(an_safetensors_read_f32(&file, an_safetensors_find(&file, "z1"), &nothing, 0));
    test_assert_ok(an_safetensors_read_f32(&file, an_safetensors_find(&file, "end"), NULL, 0));
    an_safetensors_close(&file);
    free_blob(&b);
    test_assert_no_leaks(&counter);
}
END_TEST

/* ---- malformed files ---- */

typedef struct malformed_case {
    const char *header;
    size_t header_length;  /* 0: strlen(header) */
    size_t data_size;      /* bytes of data after the header */
    int64_t length_field;  /* -1: the header's length */
    int64_t truncate_to;   /* -1: keep the whole file */
    const char *fragment;  /* the message must contain it */
} malformed_case;

#define W_ENTRY "\"w\":" ENTRY("F32", "[2]", "[0,8]") "}" /* the rest of VALID_HEADER after its '{' */
#define VALID_HEADER "{" W_ENTRY
#define ONE(entry) "{\"w\":" entry "}"

static const malformed_case malformed_cases[] = {
    /* truncated at every structural boundary */
    {VALID_HEADER, 0, 8, -1, 0, "shorter than the 8-byte header length"},
    {VALID_HEADER, 0, 8, -1, 5, "shorter than the 8-byte header length"},
    {VALID_HEADER, 0, 8, -1, 8, "exceeds the 0 bytes after the length field"},
    {VALID_HEADER, 0, 8, -1, 8 + 20, "file truncated"},
    {VALID_HEADER, 0, 8, -1, 8 + 54, "tensor 'w': data_offsets [0, 8] extend beyond the 0-byte data buffer"},
    {VALID_HEADER, 0, 8, -1, 8 + 54 + 5, "extend beyond the 5-byte data buffer"},
    /* the header length field */
    {VALID_HEADER, 0, 8, 0, -1, "header length is 0"},
    {VALID_HEADER, 0, 8, 100000001, -1, "header length 100000001 exceeds the limit of 100000000"},
    {VALID_HEADER, 0, 8, INT64_MAX, -1, "exceeds the limit"},
    {VALID_HEADER, 0, 8, 1000, -1, "header length 1000 exceeds the 62 bytes"},
    {VALID_HEADER, 0, 8, 53, -1, "unterminated object"},                /* one byte short: '}' missing */
    /* offsets and layout */
    {ONE(ENTRY("F32", "[3]", "[0,12]")), 0, 8, -1, -1, "tensor 'w': data_offsets [0, 12] extend beyond"},
    {"{\"a\":" ENTRY("F32", "[2]", "[0,8]") ",\"b\":" ENTRY("F32", "[2]", "[4,12]") "}", 0, 12, -1, -1,
     "tensor 'b' (bytes 4..12) overlaps tensor 'a'"},
    {"{\"a\":" ENTRY("F32", "[2]", "[0,8]") ",\"b\":" ENTRY("F32", "[2]", "[12,20]") "}", 0, 20, -1, -1,
     "hole in the data buffer: bytes 8..12 before tensor 'b'"},
    {ONE(ENTRY("F32", "[2]", "[4,12]")), 0, 12, -1, -1, "bytes 0..4 before tensor 'w'"},
    {VALID_HEADER, 0, 12, -1, -1, "bytes 8..12 at its end belong to no tensor"},
    {"{}", 0, 8, -1, -1, "bytes 0..8 at its end belong to no tensor"},
    {ONE(ENTRY("F32", "[0]", "[8,0]")), 0, 8, -1, -1, "tensor 'w': data_offsets begin 8 is after end 0"},
    {ONE(ENTRY("F32", "[2]", "[0]")), 0, 8, -1, -1, "tensor 'w': data_offsets has 1 entries"},
    {ONE(ENTRY("F32", "[2]", "[0,8,8]")), 0, 8, -1, -1, "data_offsets has more than 2 entries"},
    {ONE(ENTRY("F32", "[2]", "[\"0\",8]")), 0, 8, -1, -1, "data_offsets[0]: expected a non-negative integer"},
    {ONE(ENTRY("F32", "[2]", "[0,18446744073709551616]")), 0, 8, -1, -1, "data_offsets[1]: integer"},
    {ONE(ENTRY("F32", "[2]", "{}")), 0, 8, -1, -1, "data_offsets: expected an array, found an object"},
    /* shapes and sizes */
    {ONE(ENTRY("F32", "[4294967296,4294967296,2]", "[0,8]")), 0, 8, -1, -1, "tensor 'w': shape product overflows"},
    {ONE(ENTRY("F32", "[4611686018427387904]", "[0,8]")), 0, 8, -1, -1, "byte size of 4611686018427387904 F32"},
    {ONE(ENTRY("F32", "[3]", "[0,8]")), 0, 8, -1, -1, "tensor 'w': byte size mismatch: 3 F32 elements need 12"},
    {ONE(ENTRY("F16", "[2]", "[0,8]")), 0, 8, -1, -1, "2 F16 elements need 4 bytes, data_offsets span 8"},
    {ONE(ENTRY("F32", "2", "[0,8]")), 0, 8, -1, -1, "tensor 'w': shape: expected an array, found a number"},
    {ONE(ENTRY("F32", "\"[2]\"", "[0,8]")), 0, 8, -1, -1, "shape: expected an array, found a string"},
    {ONE(ENTRY("F32", "[-2]", "[0,8]")), 0, 8, -1, -1, "shape[0]: expected a non-negative integer, found '-2'"},
    {ONE(ENTRY("F32", "[1,2.0]", "[0,8]")), 0, 8, -1, -1, "shape[1]: expected a non-negative integer, found '2.0'"},
    {ONE(ENTRY("F32", "[2e0]", "[0,8]")), 0, 8, -1, -1, "found '2e0'"},
    {ONE(ENTRY("F32", "[1,1,1,1,1,1,1,1,2]", "[0,8]")), 0, 8, -1, -1, "shape has more than 8 dimensions"},
    {ONE(ENTRY("F32", "[null]", "[0,8]")), 0, 8, -1, -1, "found null"},
    /* dtypes */
    {ONE(ENTRY("F4X", "[2]", "[0,8]")), 0, 8, -1, -1, "tensor 'w': unknown dtype 'F4X'"},
    {ONE(ENTRY("f32", "[2]", "[0,8]")), 0, 8, -1, -1, "unknown dtype 'f32'"},
    {ONE(ENTRY("", "[2]", "[0,8]")), 0, 8, -1, -1, "unknown dtype ''"},
    {"{\"w\":{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8, -1, -1,
     "tensor 'w': dtype: expected a string, found a number"},
    /* entry structure */
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 0, 8, -1, -1, "tensor 'w': missing field 'data_offsets'"},
    {"{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8, -1, -1, "missing field 'dtype'"},
    {"{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 0, 8, -1, -1, "missing field 'shape'"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}}", 0, 8, -1, -1,
     "tensor 'w': unexpected field 'extra'"},
    {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8, -1, -1,
     "tensor 'w': duplicate field 'shape'"},
    {"{\"w\":[0,8]}", 0, 8, -1, -1, "tensor 'w': entry must be an object, found an array"},
    {"{\"w\":null}", 0, 8, -1, -1, "entry must be an object, found null"},
    /* names */
    {"{\"w\":" ENTRY("F32", "[1]", "[0,4]") ",\"w\":" ENTRY("F32", "[1]", "[4,8]") "}", 0, 8, -1, -1,
     "duplicate tensor name 'w'"},
    {"{\"\xff\":" ENTRY("F32", "[2]", "[0,8]") "}", 0, 8, -1, -1, "invalid UTF-8"},
    {"{\"ab\xc3\":" ENTRY("F32", "[2]", "[0,8]") "}", 0, 8, -1, -1, "invalid UTF-8"},
    {"{\"\\ud800\":" ENTRY("F32", "[2]", "[0,8]") "}", 0, 8, -1, -1, "unpaired high surrogate"},
    {"{\"\":" ENTRY("F32", "[2]", "[0,8]") "}", 0, 8, -1, -1, "empty tensor name"},
    {"{\"a\\u0000b\":" ENTRY("F32", "[2]", "[0,8]") "}", 0, 8, -1, -1, "NUL character"},
    /* metadata */
    {"{\"__metadata__\":{\"k\":1}," W_ENTRY, 0, 8, -1, -1, "__metadata__: value of 'k' must be a string, found a number"},
    {"{\"__metadata__\":{\"k\":{}}," W_ENTRY, 0, 8, -1, -1, "value of 'k' must be a string, found an object"},
    {"{\"__metadata__\":\"x\"," W_ENTRY, 0, 8, -1, -1, "__metadata__ must be an object of strings, found a string"},
    {"{\"__metadata__\":{},\"__metadata__\":{}," W_ENTRY, 0, 8, -1, -1, "__metadata__ appears twice"},
    {"{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}," W_ENTRY, 0, 8, -1, -1, "__metadata__: duplicate key 'k'"},
    {"{\"__metadata__\":{\"\xc0\x80\":\"a\"}," W_ENTRY, 0, 8, -1, -1, "invalid UTF-8"},
    {"{\"__metadata__\":{\"k\":\"a\\u0000\"}," W_ENTRY, 0, 8, -1, -1, "value of 'k' contains a NUL"},
    /* not JSON, or not only JSON */
    {"[]", 0, 0, -1, -1, "header is not a JSON object (it is an array)"},
    {"\"w\"", 0, 0, -1, -1, "header is not a JSON object (it is a string)"},
    {"        ", 0, 0, -1, -1, "header: unexpected end of input"},
    {"{} x", 0, 0, -1, -1, "header: trailing data after the JSON value: 'x'"},
    {VALID_HEADER "{}", 0, 8, -1, -1, "trailing data"},
    {VALID_HEADER "\0\0\0", 57, 8, -1, -1, "trailing data after the JSON value: byte 0x00"},
    {"{\"w\" " ENTRY("F32", "[2]", "[0,8]") "}", 0, 8, -1, -1, "expected ':'"},
    {"{\"w\":" ENTRY("F32", "[2]", "[0,8]") ",}", 0, 8, -1, -1, "expected a string key"},
    {"{\"w\":{\"dtype\":\"F32\" \"shape\":[2],\"data_offsets\":[0,8]}}", 0, 8, -1, -1, "expected ',' or '}'"},
};

START_TEST(test_malformed)
{
    reset_counter();
    const malformed_case *c = &malformed_cases[_i];
    size_t header_length = c->header_length != 0 ? c->header_length : strlen(c->header);
    uint64_t length_field = c->length_field >= 0 ? (uint64_t)c->length_field : header_length;
    blob b = build_raw(length_field, c->header, header_length, NULL, c->data_size);
    if (c->truncate_to >= 0)
        b.size = (size_t)c->truncate_to;
    an_byte_source_from_memory(&source, b.bytes, b.size);
    /* A failed open leaves the output untouched. */
    an_safetensors sentinel;
    memset(&sentinel, 0xA5, sizeof sentinel);
    memcpy(&file, &sentinel, sizeof file);
    alexnet_status status = an_safetensors_open(&file, &source, &test_allocator);
    ck_assert_msg(status == ALEXNET_E_FORMAT, "case %d: status %d (%s)", _i, (int)status, alexnet_last_error());
    ck_assert_msg(strstr(alexnet_last_error(), c->fragment) != NULL, "case %d: message '%s' lacks '%s'", _i,
                  alexnet_last_error(), c->fragment);
    ck_assert_int_eq(memcmp(&file, &sentinel, sizeof file), 0);
    free_blob(&b);
    test_assert_no_leaks(&counter);
}
END_TEST

/* Cases too big to write out as literals. */

static void expect_malformed(const char *header, size_t data_size, const char *fragment)
{
    blob b = build(header, NULL, data_size);
    test_assert_fails_with(open_blob(&b), ALEXNET_E_FORMAT, fragment);
    free_blob(&b);
}

static char *repeat(const char *prefix, char c, size_t count, const char *suffix)
{
    size_t prefix_length = strlen(prefix), suffix_length = strlen(suffix);
    char *text = malloc(prefix_length + count + suffix_length + 1);
    ck_assert_ptr_nonnull(text);
    memcpy(text, prefix, prefix_length);
    memset(text + prefix_length, c, count);
    memcpy(text + prefix_length + count, suffix, suffix_length + 1);
    return text;
}

START_TEST(test_malformed_deep_nesting)
{
    reset_counter();
    char *text = repeat("", '[', 100000, "");
    expect_malformed(text, 0, "not a JSON object");
    free(text);
    text = repeat("{\"w\":", '[', 100000, "");
    expect_malformed(text, 0, "tensor 'w': entry must be an object, found an array");
    free(text);
    text = repeat("{\"w\":", '{', 100000, "");
    expect_malformed(text, 0, "tensor 'w'");
    free(text);
    text = repeat("{\"w\":{\"shape\":", '[', 100000, "");
    expect_malformed(text, 0, "shape[0]: expected a non-negative integer, found an array");
    free(text);
    text = repeat("{\"__metadata__\":{\"k\":", '[', 100000, "");
    expect_malformed(text, 0, "value of 'k' must be a string, found an array");
    free(text);
    text = repeat("{\"__metadata__\":", '{', 100000, "");
    expect_malformed(text, 0, "__metadata__");
    free(text);
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_malformed_long_name)
{
    reset_counter();
    char *name = repeat("", 'n', 256, "");
    char header[400];
    snprintf(header, sizeof header, "{\"%s\":" ENTRY("F32", "[2]", "[0,8]") "}", name);
    expect_malformed(header, 8, "tensor name of 256 bytes is longer than 255 bytes");
    /* 255 bytes is fine. */
    name[255] = '\0';
    snprintf(header, sizeof header, "{\"%s\":" ENTRY("F32", "[2]", "[0,8]") "}", name);
    blob b = build(header, NULL, 8);
    test_assert_ok(open_blob(&b));
    ck_assert_ptr_nonnull(an_safetensors_find(&file, name));
    an_safetensors_close(&file);
    free_blob(&b);
    free(name);
    /* The limit applies to the decoded name: 86 escaped euro signs decode to 258 bytes. */
    char escaped[1024] = "{\"";
    for (int i = 0; i < 86; i++)
        strcat(escaped, "\\u20ac"); /* 86 x 3 = 258 bytes */
    strcat(escaped, "\":" ENTRY("F32", "[2]", "[0,8]") "}");
    expect_malformed(escaped, 8, "tensor name of 258 bytes");
    test_assert_no_leaks(&counter);
}
END_TEST

START_TEST(test_malformed_many_tensors_one_bad)
{
    reset_counter();
    /* 1000 good tensors (so the arrays grow several times) and then a bad one: everything is released. */
    size_t capacity = 1001 * 90 + 16;
    char *header = malloc(capacity);
    ck_assert_ptr_nonnull(header);
    size_t length = (size_t)snprintf(header, capacity, "{");
    for (int i = 0; i < 1000; i++)
        length += (size_t)snprintf(header + length, capacity - length,
                                   "\"t%d\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%d,%d]},", i, 4 * i,
                                   4 * i + 4);
    snprintf(header + length, capacity - length, "\"bad\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}");
    expect_malformed(header, 4000, "tensor 'bad': data_offsets has 1 entries");
    /* ...and without the bad one, all 1000 load, sorted into data order. */
    snprintf(header + length - 1, capacity - length + 1, "}");
    blob b = build(header, NULL, 4000);
    test_assert_ok(open_blob(&b));
    ck_assert_uint_eq(file.tensor_count, 1000);
    ck_assert_str_eq(file.tensors[999].name, "t999");
    ck_assert_ptr_nonnull(an_safetensors_find(&file, "t500"));
    an_safetensors_close(&file);
    free_blob(&b);
    free(header);
    test_assert_no_leaks(&counter);
}
END_TEST

/* ---- out of memory on every allocation of open() ---- */

START_TEST(test_open_out_of_memory)
{
    make_sample();
    size_t size = 0;
    reset_counter();
    test_assert_ok(an_safetensors_serialized_size(sample_tensors, 6, sample_metadata, 2, &test_allocator, &size));
    unsigned char *buffer = malloc(size);
    test_assert_ok(an_safetensors_write_memory(sample_tensors, 6, sample_metadata, 2, &test_allocator, buffer, size,
                                          NULL));
    blob b = {buffer, size};
    int failures = 0;
    for (size_t fail_at = 1;; fail_at++) { /* 1-based: the allocation that returns NULL */
        reset_counter();
        counter.fail_at = fail_at;
        alexnet_status status = open_blob(&b);
        if (status == ALEXNET_OK) {
            check_sample_contents(&file);
            an_safetensors_close(&file);
            test_assert_no_leaks(&counter);
            break;
        }
        ck_assert_int_eq(status, ALEXNET_E_OUT_OF_MEMORY);
        ck_assert_str_ne(alexnet_last_error(), "");
        ck_assert_ptr_null(file.tensors);
        test_assert_no_leaks(&counter);
        failures++;
        ck_assert_uint_le(fail_at, 200);
    }
    /* header, 6 names and their keys, metadata strings, arrays and their trimming */
    ck_assert_int_ge(failures, 15);
    free(buffer);
}
END_TEST

static Suite *safetensors_suite(void)
{
    Suite *suite = suite_create("safetensors");
    TCase *round_trip = tcase_create("round_trip");
    tcase_add_test(round_trip, test_memory_round_trip);
    tcase_add_test(round_trip, test_write_is_deterministic_and_checks_capacity);
    tcase_add_test(round_trip, test_empty_file_round_trip);
    tcase_add_test(round_trip, test_close_zeroed_is_safe);
    tcase_add_test(round_trip, test_padding_and_order_variations);
    suite_add_tcase(suite, round_trip);

    TCase *writer = tcase_create("writer");
    tcase_add_loop_test(writer, test_writer_rejects_bad_input, 0,
                        (int)(sizeof writer_cases / sizeof writer_cases[0]));
    tcase_add_test(writer, test_writer_rejects_bad_arrays_and_allocator);
    tcase_add_test(writer, test_writer_refuses_header_over_limit);
    tcase_add_test(writer, test_writer_accepts_max_length_name);
    suite_add_tcase(suite, writer);

    TCase *files = tcase_create("files");
    tcase_add_test(files, test_file_round_trip_and_overwrite);
    tcase_add_test(files, test_write_into_missing_directory_fails_cleanly);
    tcase_add_test(files, test_write_over_directory_fails_cleanly);
    tcase_add_test(files, test_failed_write_keeps_old_content);
    tcase_add_test(files, test_write_file_out_of_memory);
    tcase_add_test(files, test_file_source_errors);
    tcase_add_test(files, test_memory_source);
    tcase_add_test(files, test_open_rejects_null_arguments);
    suite_add_tcase(suite, files);

    TCase *dtypes = tcase_create("dtypes");
    tcase_add_test(dtypes, test_f16_hand_computed);
    tcase_add_test(dtypes, test_bf16_hand_computed);
    tcase_add_loop_test(dtypes, test_f16_all_values, 0, 2);
    tcase_add_loop_test(dtypes, test_bf16_all_values, 0, 2);
    tcase_add_test(dtypes, test_unaligned_offsets_and_other_dtypes);
    tcase_add_test(dtypes, test_every_known_dtype_parses);
    tcase_add_test(dtypes, test_read_f32_argument_checks);
    suite_add_tcase(suite, dtypes);

    TCase *malformed = tcase_create("malformed");
    tcase_add_loop_test(malformed, test_malformed, 0, (int)(sizeof malformed_cases / sizeof malformed_cases[0]));
    tcase_add_test(malformed, test_malformed_deep_nesting);
    tcase_add_test(malformed, test_malformed_long_name);
    tcase_add_test(malformed, test_malformed_many_tensors_one_bad);
    tcase_add_test(malformed, test_open_out_of_memory);
    suite_add_tcase(suite, malformed);
    return suite;
}

int main(void)
{
    return test_run_suite(safetensors_suite());
}
