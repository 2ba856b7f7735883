/* Fuzz target: the safetensors reader itself (lib/io), below the model loader: an_safetensors_open on a memory
 * source, then an_safetensors_read_f32 of every tensor, metadata look-ups, and a write/re-read round trip.
 *
 * The loader target stops at the first tensor the tiny model does not expect; this one reads every tensor of
 * any file, of any dtype, shape and count, so the F16/BF16 conversion and the read bounds are reached too.
 *
 * Invariants:
 *  - open fails only with FORMAT (or OUT_OF_MEMORY from the capped allocator), with a message, leaving the
 *    output struct untouched and nothing allocated;
 *  - after a successful open the tensors are in data order and tile the data buffer exactly; every name is
 *    found by an_safetensors_find and every metadata key by an_safetensors_metadata;
 *  - read_f32 succeeds for F32/F16/BF16 and gives UNSUPPORTED for the other dtypes, refuses a wrong count,
 *    and writes exactly element_count floats;
 *  - when every tensor is a float type, writing the tensors (as F32) and the metadata and reading that back
 *    gives the same names, shapes, metadata and bits;
 *  - nothing leaks. */
#include "fuzz_common.h"

#include "io/safetensors.h"

#define FUZZ_ST_CAP_BYTES (16u << 20)
/* Tensors with more elements than this are read but not round-tripped, to keep each input cheap. */
#define FUZZ_ST_ROUND_TRIP_ELEMENTS (1u << 18)

static void check_layout(const an_safetensors *file, uint64_t source_size)
{
    FUZZ_CHECK(file->data_offset >= 8 && file->data_offset <= source_size, "data_offset %llu outside the source",
               (unsigned long long)file->data_offset);
    uint64_t covered = 0;
    for (size_t i = 0; i < file->tensor_count; i++) {
        const an_safetensors_tensor *t = &file->tensors[i];
        FUZZ_CHECK(t->data_begin == covered, "tensor %zu begins at %llu, expected %llu", i,
                   (unsigned long long)t->data_begin, (unsigned long long)covered);
        FUZZ_CHECK(t->data_end >= t->data_begin, "tensor %zu ends before it begins", i);
        FUZZ_CHECK(t->rank <= AN_SAFETENSORS_MAX_RANK, "rank %u", (unsigned)t->rank);
        uint64_t product = 1;
        for (uint32_t d = 0; d < t->rank; d++)
            product *= t->shape[d]; /* the reader checked this product for overflow */
        FUZZ_CHECK(product == t->element_count, "tensor %zu: element_count %llu, shape product %llu", i,
                   (unsigned long long)t->element_count, (unsigned long long)product);
        covered = t->data_end;
        FUZZ_CHECK(an_safetensors_find(file, t->name) == t, "an_safetensors_find('%s') misses it", t->name);
    }
    FUZZ_CHECK(covered == source_size - file->data_offset, "tensors cover %llu of %llu data bytes",
               (unsigned long long)covered, (unsigned long long)(source_size - file->data_offset));
    for (size_t i = 0; i < file->metadata_count; i++) {
        const char *value = an_safetensors_metadata(file, file->metadata[i].key);
        FUZZ_CHECK(value == file->metadata[i].value, "an_safetensors_metadata('%s') misses it", file->metadata[i].key);
    }
}

/* Read every tensor; returns the floats of all of them in file->tensors order (NULL if any is not a float
 * type or the total is large), for the round trip. */
static float **read_all(const an_safetensors *file, int *all_float)
{
    float **values = calloc(file->tensor_count + 1, sizeof *values);
    FUZZ_CHECK(values != NULL, "calloc");
    uint64_t total = 0;
    *all_float = 1;
    for (size_t i = 0; i < file->tensor_count; i++) {
        const an_safetensors_tensor *t = &file->tensors[i];
        /* The layout check bounds element_count by the input size, so this allocation is small. */
        size_t count = (size_t)t->element_count;
        float *dst = malloc((count + 1) * sizeof *dst);
        FUZZ_CHECK(dst != NULL, "malloc(%zu floats)", count + 1);
        uint32_t canary = 0xDEADBEEFu;
        memcpy(&dst[count], &canary, sizeof canary);
        alexnet_status status = an_safetensors_read_f32(file, t, dst, count);
        if (t->dtype == AN_DTYPE_OTHER) {
            FUZZ_CHECK(status == ALEXNET_E_UNSUPPORTED, "read_f32 of a %s tensor gave %d", t->dtype_name, (int)status);
            fuzz_check_failure_message(status, "an_safetensors_read_f32");
            *all_float = 0;
            free(dst);
            continue;
        }
        FUZZ_CHECK(status == ALEXNET_OK, "read_f32 of %s tensor '%s' gave %d", t->dtype_name, t->name, (int)status);
        FUZZ_CHECK(memcmp(&dst[count], &canary, sizeof canary) == 0, "read_f32 wrote past element_count");
        if (count > 0) {
            status = an_safetensors_read_f32(file, t, dst, count - 1);
            FUZZ_CHECK(status == ALEXNET_E_INVALID_ARGUMENT, "read_f32 with a short count gave %d", (int)status);
        }
        total += count;
        values[i] = dst;
    }
    if (total > FUZZ_ST_ROUND_TRIP_ELEMENTS)
        *all_float = 0;
    return values;
}

static void free_all(const an_safetensors *file, float **values)
{
    for (size_t i = 0; i < file->tensor_count; i++)
        free(values[i]);
    free(values);
}

/* Write what was read (as F32) and read it back: same names, shapes, metadata and bits. */
static void check_round_trip(const an_safetensors *file, float **values, const alexnet_allocator *allocator)
{
    an_safetensors_write_tensor *tensors = calloc(file->tensor_count + 1, sizeof *tensors);
    FUZZ_CHECK(tensors != NULL, "calloc");
    for (size_t i = 0; i < file->tensor_count; i++) {
        tensors[i].name = file->tensors[i].name;
        tensors[i].rank = file->tensors[i].rank;
        memcpy(tensors[i].shape, file->tensors[i].shape, sizeof tensors[i].shape);
        tensors[i].data = values[i];
    }
    size_t size = 0;
    alexnet_status status = an_safetensors_serialized_size(tensors, file->tensor_count, file->metadata,
                                                           file->metadata_count, allocator, &size);
    if (status == ALEXNET_E_OUT_OF_MEMORY) {
        free(tensors);
        return;
    }
    /* The writer may refuse a header over its limit that F32 widening made longer: that is not a reader bug. */
    if (status == ALEXNET_E_INVALID_ARGUMENT && strstr(alexnet_last_error(), "limit") != NULL) {
        free(tensors);
        return;
    }
    FUZZ_CHECK(status == ALEXNET_OK, "the writer refuses what the reader accepted: %d", (int)status);
    unsigned char *buffer = malloc(size);
    FUZZ_CHECK(buffer != NULL, "malloc(%zu)", size);
    size_t written = 0;
    status = an_safetensors_write_memory(tensors, file->tensor_count, file->metadata, file->metadata_count,
                                         allocator, buffer, size, &written);
    if (status == ALEXNET_OK) {
        FUZZ_CHECK(written == size, "wrote %zu bytes, announced %zu", written, size);
        an_byte_source source;
        an_byte_source_from_memory(&source, buffer, size);
        an_safetensors again;
        memset(&again, 0, sizeof again);
        status = an_safetensors_open(&again, &source, allocator);
        FUZZ_CHECK(status == ALEXNET_OK || status == ALEXNET_E_OUT_OF_MEMORY,
                   "the reader refuses what the writer wrote: %d", (int)status);
        if (status == ALEXNET_OK) {
            FUZZ_CHECK(again.tensor_count == file->tensor_count && again.metadata_count == file->metadata_count,
                       "counts changed through the round trip");
            for (size_t i = 0; i < file->tensor_count; i++) {
                const an_safetensors_tensor *t = an_safetensors_find(&again, file->tensors[i].name);
                FUZZ_CHECK(t != NULL, "tensor '%s' lost in the round trip", file->tensors[i].name);
                FUZZ_CHECK(t->dtype == AN_DTYPE_F32 && t->rank == file->tensors[i].rank &&
                               memcmp(t->shape, file->tensors[i].shape, sizeof t->shape) == 0,
                           "tensor '%s' changed dtype or shape", t->name);
                size_t count = (size_t)t->element_count;
                float *back = malloc((count + 1) * sizeof *back);
                FUZZ_CHECK(back != NULL, "malloc");
                FUZZ_CHECK(an_safetensors_read_f32(&again, t, back, count) == ALEXNET_OK, "re-read failed");
                FUZZ_CHECK(count == 0 || memcmp(back, values[i], count * sizeof *back) == 0,
                           "tensor '%s' changed bits in the round trip", t->name);
                free(back);
            }
            for (size_t i = 0; i < file->metadata_count; i++) {
                const char *value = an_safetensors_metadata(&again, file->metadata[i].key);
                FUZZ_CHECK(value != NULL && strcmp(value, file->metadata[i].value) == 0,
                           "metadata '%s' changed in the round trip", file->metadata[i].key);
            }
            an_safetensors_close(&again);
        }
    } else {
        FUZZ_CHECK(status == ALEXNET_E_OUT_OF_MEMORY, "write_memory gave %d after serialized_size succeeded",
                   (int)status);
    }
    free(buffer);
    free(tensors);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t empty[1] = {0};
    fuzz_allocator_state state;
    alexnet_allocator allocator = fuzz_allocator_make(&state, FUZZ_ST_CAP_BYTES);
    an_byte_source source;
    an_byte_source_from_memory(&source, data != NULL ? (const void *)data : empty, size);

    an_safetensors file, sentinel;
    memset(&sentinel, 0xA5, sizeof sentinel);
    file = sentinel;
    alexnet_status status = an_safetensors_open(&file, &source, &allocator);
    if (status != ALEXNET_OK) {
        FUZZ_CHECK(status == ALEXNET_E_FORMAT || status == ALEXNET_E_OUT_OF_MEMORY,
                   "an_safetensors_open gave status %d (%s)", (int)status, alexnet_status_string(status));
        FUZZ_CHECK(alexnet_last_error()[0] != '\0', "an_safetensors_open failed with an empty message");
        FUZZ_CHECK(memcmp(&file, &sentinel, sizeof file) == 0, "a failed open wrote its output");
        fuzz_allocator_check_empty(&state, "after a failed an_safetensors_open");
        return 0;
    }
    check_layout(&file, size);
    int all_float = 0;
    float **values = read_all(&file, &all_float);
    if (all_float)
        check_round_trip(&file, values, &allocator);
    free_all(&file, values);
    an_safetensors_close(&file);
    fuzz_allocator_check_empty(&state, "after an_safetensors_close");
    return 0;
}
