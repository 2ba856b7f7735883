#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "io/safetensors.h"
#include "util/alloc.h"
#include "util/checked.h"
#include "util/error.h"
#include "util/json.h"

/* safetensors stores little-endian data, and F32 tensors are read straight into the caller's floats with no
 * byte swapping: the library targets little-endian hosts only. (Header fields are decoded bytewise and do
 * not depend on this.) */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libalexnet's safetensors reader assumes a little-endian host"
#endif
_Static_assert(sizeof(float) == 4, "float must be IEEE-754 binary32");

/* The reference implementation's limit: larger headers are refused before anything is allocated. */
#define MAX_HEADER_BYTES 100000000u
#define MAX_NAME_BYTES 255
/* Converted tensors are read through a stack buffer of this size, so that no second copy of a large tensor
 * is ever allocated. */
#define CONVERT_CHUNK_BYTES 65536u

/* ---- dtypes ---- */

typedef struct dtype_info {
    const char *name;
    an_dtype dtype;
    uint32_t size; /* bytes per element */
} dtype_info;

/* Every dtype of the safetensors specification this reader knows; only the first three are converted. */
static const dtype_info known_dtypes[] = {
    {"F32", AN_DTYPE_F32, 4},       {"F16", AN_DTYPE_F16, 2},      {"BF16", AN_DTYPE_BF16, 2},
    {"F64", AN_DTYPE_OTHER, 8},     {"I64", AN_DTYPE_OTHER, 8},    {"I32", AN_DTYPE_OTHER, 4},
    {"I16", AN_DTYPE_OTHER, 2},     {"I8", AN_DTYPE_OTHER, 1},     {"U8", AN_DTYPE_OTHER, 1},
    {"BOOL", AN_DTYPE_OTHER, 1},    {"U16", AN_DTYPE_OTHER, 2},    {"U32", AN_DTYPE_OTHER, 4},
    {"U64", AN_DTYPE_OTHER, 8},     {"F8_E4M3", AN_DTYPE_OTHER, 1}, {"F8_E5M2", AN_DTYPE_OTHER, 1},
};

static const dtype_info *find_dtype(const an_json_string *text)
{
    for (size_t i = 0; i < sizeof known_dtypes / sizeof known_dtypes[0]; i++)
        if (strlen(known_dtypes[i].name) == text->length && memcmp(known_dtypes[i].name, text->data, text->length) == 0)
            return &known_dtypes[i];
    return NULL;
}

/* Bytes per element of a dtype that find_dtype accepted (by the name stored in the tensor). */
static uint32_t dtype_size(const char *name)
{
    for (size_t i = 0; i < sizeof known_dtypes / sizeof known_dtypes[0]; i++)
        if (strcmp(known_dtypes[i].name, name) == 0)
            return known_dtypes[i].size;
    return 0;
}

/* ---- small utilities ---- */

static int key_is(const an_json_string *key, const char *literal)
{
    return key->length == strlen(literal) && memcmp(key->data, literal, key->length) == 0;
}

/* Prefix the current message with "tensor '<name>'" (or another formatted context). */
static alexnet_status AN_PRINTF(2, 3) with_context(alexnet_status status, const char *format, ...)
{
    char context[160];
    va_list args;
    va_start(args, format);
    vsnprintf(context, sizeof context, format, args);
    va_end(args);
    return an_error_prefix(status, context);
}

/* Read through the source, refusing anything outside it: a memory source cannot check bounds itself. */
static alexnet_status source_read(const an_byte_source *source, uint64_t offset, void *dst, size_t size)
{
    uint64_t end;
    if (an_add_overflow_u64(offset, size, &end) || end > source->size)
        return an_error(ALEXNET_E_IO, "read of %zu bytes at byte %llu is beyond the %llu-byte source", size,
                        (unsigned long long)offset, (unsigned long long)source->size);
    return source->read(source->user, offset, dst, size);
}

typedef int (*compare_fn)(const void *, const void *);

static void swap_items(unsigned char *a, unsigned char *b, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        unsigned char t = a[i];
        a[i] = b[i];
        b[i] = t;
    }
}

static void sift_down(unsigned char *base, size_t size, size_t root, size_t count, compare_fn compare)
{
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= count)
            return;
        if (child + 1 < count && compare(base + child * size, base + (child + 1) * size) < 0)
            child++;
        if (compare(base + root * size, base + child * size) >= 0)
            return;
        swap_items(base + root * size, base + child * size, size);
        root = child;
    }
}

/* Heap sort: O(n log n) even on hostile input, and no memory at all (qsort may call malloc, which would
 * bypass the caller's allocator). */
static void sort_items(void *items, size_t count, size_t size, compare_fn compare)
{
    unsigned char *base = items;
    if (count < 2)
        return;
    for (size_t i = count / 2; i-- > 0;)
        sift_down(base, size, i, count, compare);
    for (size_t end = count - 1; end > 0; end--) {
        swap_items(base, base + end * size, size);
        sift_down(base, size, 0, end, compare);
    }
}

/* ---- the header being parsed ---- */

/* Arrays grow while the header is parsed; open() trims them to their exact counts at the end, because
 * an_safetensors has no room for capacities and close() frees count x item size. */
typedef struct header_builder {
    const alexnet_allocator *allocator;
    an_safetensors_tensor *tensors;
    size_t tensor_count, tensor_capacity;
    an_safetensors_metadata_entry *metadata;
    size_t metadata_count, metadata_capacity;
    int seen_metadata;
} header_builder;

static void free_tensors(const alexnet_allocator *allocator, an_safetensors_tensor *tensors, size_t count,
                         size_t capacity)
{
    for (size_t i = 0; i < count; i++)
        an_strfree(allocator, tensors[i].name);
    an_free(allocator, tensors, capacity * sizeof *tensors);
}

static void free_metadata(const alexnet_allocator *allocator, an_safetensors_metadata_entry *entries, size_t count,
                          size_t capacity)
{
    for (size_t i = 0; i < count; i++) {
        an_strfree(allocator, entries[i].key);
        an_strfree(allocator, entries[i].value);
    }
    an_free(allocator, entries, capacity * sizeof *entries);
}

static void builder_release(header_builder *builder)
{
    free_tensors(builder->allocator, builder->tensors, builder->tensor_count, builder->tensor_capacity);
    free_metadata(builder->allocator, builder->metadata, builder->metadata_count, builder->metadata_capacity);
    memset(builder, 0, sizeof *builder);
}

/* Make *items hold exactly `new_capacity` zeroed-beyond-count items of item_size bytes. */
static alexnet_status resize_items(const alexnet_allocator *allocator, void **items, size_t count,
                                   size_t *capacity, size_t new_capacity, size_t item_size, const char *what)
{
    void *resized = NULL;
    if (new_capacity > 0) {
        resized = an_calloc(allocator, new_capacity, item_size, what);
        if (resized == NULL)
            return ALEXNET_E_OUT_OF_MEMORY;
        if (count > 0)
            memcpy(resized, *items, count * item_size);
    }
    an_free(allocator, *items, *capacity * item_size);
    *items = resized;
    *capacity = new_capacity;
    return ALEXNET_OK;
}

/* Room for one more item, doubling the capacity when full. */
static alexnet_status reserve_one(const alexnet_allocator *allocator, void **items, size_t count, size_t *capacity,
                                  size_t item_size, const char *what)
{
    if (count < *capacity)
        return ALEXNET_OK;
    size_t new_capacity;
    if (an_mul_overflow_size(*capacity == 0 ? 8 : *capacity, 2, &new_capacity))
        return an_error(ALEXNET_E_OUT_OF_MEMORY, "%s: too many entries", what);
    return resize_items(allocator, items, count, capacity, new_capacity, item_size, what);
}

/* ---- one tensor entry ---- */

static alexnet_status check_tensor_name(const an_json_string *name)
{
    if (name->length == 0)
        return an_error(ALEXNET_E_FORMAT, "empty tensor name");
    if (name->length > MAX_NAME_BYTES)
        return an_error(ALEXNET_E_FORMAT, "tensor name of %zu bytes is longer than %d bytes: '%.40s...'",
                        name->length, MAX_NAME_BYTES, name->data);
    if (memchr(name->data, '\0', name->length) != NULL)
        return an_error(ALEXNET_E_FORMAT, "tensor name '%s' contains a NUL character", name->data);
    return ALEXNET_OK;
}

static alexnet_status parse_dtype(an_json_reader *json, an_safetensors_tensor *tensor)
{
    an_json_string text = {0};
    alexnet_status status = an_json_read_string(json, &text);
    if (status != ALEXNET_OK)
        return with_context(status, "dtype");
    const dtype_info *info = find_dtype(&text);
    if (info == NULL) {
        status = an_error(ALEXNET_E_FORMAT, "unknown dtype '%.24s'", text.data);
    } else {
        tensor->dtype = info->dtype;
        snprintf(tensor->dtype_name, sizeof tensor->dtype_name, "%s", info->name);
    }
    an_json_string_free(json->allocator, &text);
    return status;
}

static alexnet_status parse_shape(an_json_reader *json, an_safetensors_tensor *tensor)
{
    alexnet_status status = an_json_begin_array(json);
    if (status != ALEXNET_OK)
        return with_context(status, "shape");
    tensor->rank = 0;
    for (;;) {
        int has_element = 0;
        status = an_json_next_element(json, &has_element);
        if (status != ALEXNET_OK)
            return with_context(status, "shape");
        if (!has_element)
            return ALEXNET_OK;
        if (tensor->rank == AN_SAFETENSORS_MAX_RANK)
            return an_error(ALEXNET_E_FORMAT, "shape has more than %d dimensions", AN_SAFETENSORS_MAX_RANK);
        status = an_json_read_u64(json, &tensor->shape[tensor->rank]);
        if (status != ALEXNET_OK)
            return with_context(status, "shape[%u]", (unsigned)tensor->rank);
        tensor->rank++;
    }
}

static alexnet_status parse_data_offsets(an_json_reader *json, an_safetensors_tensor *tensor)
{
    uint64_t offsets[2] = {0, 0};
    size_t count = 0;
    alexnet_status status = an_json_begin_array(json);
    if (status != ALEXNET_OK)
        return with_context(status, "data_offsets");
    for (;;) {
        int has_element = 0;
        status = an_json_next_element(json, &has_element);
        if (status != ALEXNET_OK)
            return with_context(status, "data_offsets");
        if (!has_element)
            break;
        if (count == 2)
            return an_error(ALEXNET_E_FORMAT, "data_offsets has more than 2 entries (expected [begin, end])");
        status = an_json_read_u64(json, &offsets[count]);
        if (status != ALEXNET_OK)
            return with_context(status, "data_offsets[%zu]", count);
        count++;
    }
    if (count != 2)
        return an_error(ALEXNET_E_FORMAT, "data_offsets has %zu entries (expected [begin, end])", count);
    if (offsets[0] > offsets[1])
        return an_error(ALEXNET_E_FORMAT, "data_offsets begin %llu is after end %llu",
                        (unsigned long long)offsets[0], (unsigned long long)offsets[1]);
    tensor->data_begin = offsets[0];
    tensor->data_end = offsets[1];
    return ALEXNET_OK;
}

/* Shape product and byte size, both overflow-checked; the byte size must match data_offsets. */
static alexnet_status check_tensor_size(an_safetensors_tensor *tensor)
{
    uint64_t elements = 1;
    for (uint32_t i = 0; i < tensor->rank; i++)
        if (an_mul_overflow_u64(elements, tensor->shape[i], &elements))
            return an_error(ALEXNET_E_FORMAT, "shape product overflows 64 bits");
    uint64_t bytes;
    uint32_t element_size = dtype_size(tensor->dtype_name);
    if (an_mul_overflow_u64(elements, element_size, &bytes))
        return an_error(ALEXNET_E_FORMAT, "byte size of %llu %s elements overflows 64 bits",
                        (unsigned long long)elements, tensor->dtype_name);
    uint64_t span = tensor->data_end - tensor->data_begin;
    if (bytes != span)
        return an_error(ALEXNET_E_FORMAT,
                        "byte size mismatch: %llu %s elements need %llu bytes, data_offsets span %llu",
                        (unsigned long long)elements, tensor->dtype_name, (unsigned long long)bytes,
                        (unsigned long long)span);
    tensor->element_count = elements;
    return ALEXNET_OK;
}

enum tensor_field { FIELD_DTYPE = 1, FIELD_SHAPE = 2, FIELD_DATA_OFFSETS = 4 };

/* One member of a tensor entry: a known field, seen for the first time. */
static alexnet_status parse_tensor_field(an_json_reader *json, const an_json_string *key,
                                         an_safetensors_tensor *tensor, unsigned *seen_fields)
{
    unsigned field = key_is(key, "dtype")          ? FIELD_DTYPE
                     : key_is(key, "shape")        ? FIELD_SHAPE
                     : key_is(key, "data_offsets") ? FIELD_DATA_OFFSETS
                                                   : 0;
    if (field == 0)
        return an_error(ALEXNET_E_FORMAT, "unexpected field '%.40s'", key->data);
    if (*seen_fields & field)
        return an_error(ALEXNET_E_FORMAT, "duplicate field '%s'", key->data);
    *seen_fields |= field;
    switch (field) {
    case FIELD_DTYPE: return parse_dtype(json, tensor);
    case FIELD_SHAPE: return parse_shape(json, tensor);
    default: return parse_data_offsets(json, tensor);
    }
}

/* The object {"dtype": .., "shape": .., "data_offsets": ..}: those three fields, each once, nothing else. */
static alexnet_status parse_tensor_fields(an_json_reader *json, an_safetensors_tensor *tensor)
{
    an_json_type type = AN_JSON_NULL;
    alexnet_status status = an_json_peek(json, &type);
    if (status != ALEXNET_OK)
        return status;
    if (type != AN_JSON_OBJECT)
        return an_error(ALEXNET_E_FORMAT, "entry must be an object, found %s", an_json_type_name(type));
    status = an_json_begin_object(json);
    unsigned seen_fields = 0;
    while (status == ALEXNET_OK) {
        an_json_string key = {0};
        int has_member = 0;
        status = an_json_next_member(json, &key, &has_member);
        if (status != ALEXNET_OK || !has_member)
            break;
        status = parse_tensor_field(json, &key, tensor, &seen_fields);
        an_json_string_free(json->allocator, &key);
    }
    if (status != ALEXNET_OK)
        return status;
    const char *missing = !(seen_fields & FIELD_DTYPE)          ? "dtype"
                          : !(seen_fields & FIELD_SHAPE)        ? "shape"
                          : !(seen_fields & FIELD_DATA_OFFSETS) ? "data_offsets"
                                                                : NULL;
    if (missing != NULL)
        return an_error(ALEXNET_E_FORMAT, "missing field '%s'", missing);
    return check_tensor_size(tensor);
}

/* Takes ownership of name (even on failure). */
static alexnet_status parse_tensor(header_builder *builder, an_json_reader *json, an_json_string *name)
{
    alexnet_status status = check_tensor_name(name);
    if (status == ALEXNET_OK)
        status = reserve_one(builder->allocator, (void **)&builder->tensors, builder->tensor_count,
                             &builder->tensor_capacity, sizeof *builder->tensors, "safetensors tensor list");
    if (status != ALEXNET_OK) {
        an_json_string_free(builder->allocator, name);
        return status;
    }
    /* The builder owns the name from here: check_tensor_name ruled out NULs, so an_strfree frees it whole. */
    an_safetensors_tensor *tensor = &builder->tensors[builder->tensor_count++];
    tensor->name = name->data;
    name->data = NULL;
    status = parse_tensor_fields(json, tensor);
    if (status != ALEXNET_OK)
        return with_context(status, "tensor '%.64s'", tensor->name);
    return ALEXNET_OK;
}

/* ---- __metadata__ ---- */

/* Takes ownership of key and value (even on failure). */
static alexnet_status add_metadata_entry(header_builder *builder, an_json_string *key, an_json_string *value)
{
    alexnet_status status = ALEXNET_OK;
    if (memchr(key->data, '\0', key->length) != NULL)
        status = an_error(ALEXNET_E_FORMAT, "__metadata__: key '%s' contains a NUL character", key->data);
    else if (memchr(value->data, '\0', value->length) != NULL)
        status = an_error(ALEXNET_E_FORMAT, "__metadata__: value of '%.64s' contains a NUL character", key->data);
    else
        status = reserve_one(builder->allocator, (void **)&builder->metadata, builder->metadata_count,
                             &builder->metadata_capacity, sizeof *builder->metadata, "safetensors metadata");
    if (status != ALEXNET_OK) {
        an_json_string_free(builder->allocator, key);
        an_json_string_free(builder->allocator, value);
        return status;
    }
    an_safetensors_metadata_entry *entry = &builder->metadata[builder->metadata_count++];
    entry->key = key->data;
    entry->value = value->data;
    key->data = NULL;
    value->data = NULL;
    return ALEXNET_OK;
}

static alexnet_status parse_metadata(header_builder *builder, an_json_reader *json)
{
    if (builder->seen_metadata)
        return an_error(ALEXNET_E_FORMAT, "__metadata__ appears twice");
    builder->seen_metadata = 1;
    an_json_type type = AN_JSON_NULL;
    alexnet_status status = an_json_peek(json, &type);
    if (status != ALEXNET_OK)
        return with_context(status, "__metadata__");
    if (type != AN_JSON_OBJECT)
        return an_error(ALEXNET_E_FORMAT, "__metadata__ must be an object of strings, found %s",
                        an_json_type_name(type));
    status = an_json_begin_object(json);
    while (status == ALEXNET_OK) {
        an_json_string key = {0}, value = {0};
        int has_member = 0;
        status = an_json_next_member(json, &key, &has_member);
        if (status != ALEXNET_OK)
            return with_context(status, "__metadata__");
        if (!has_member)
            break;
        status = an_json_peek(json, &type);
        if (status == ALEXNET_OK && type != AN_JSON_STRING)
            status = an_error(ALEXNET_E_FORMAT, "__metadata__: value of '%.64s' must be a string, found %s",
                              key.data, an_json_type_name(type));
        if (status == ALEXNET_OK)
            status = an_json_read_string(json, &value);
        if (status != ALEXNET_OK) {
            an_json_string_free(builder->allocator, &key);
            return status;
        }
        status = add_metadata_entry(builder, &key, &value);
    }
    return status;
}

/* ---- the whole header ---- */

static alexnet_status parse_header(header_builder *builder, const char *text, size_t length)
{
    an_json_reader json;
    an_json_reader_init(&json, text, length, builder->allocator);
    an_json_type type = AN_JSON_NULL;
    alexnet_status status = an_json_peek(&json, &type);
    if (status != ALEXNET_OK)
        return with_context(status, "header");
    if (type != AN_JSON_OBJECT)
        return an_error(ALEXNET_E_FORMAT, "header is not a JSON object (it is %s)", an_json_type_name(type));
    status = an_json_begin_object(&json);
    while (status == ALEXNET_OK) {
        an_json_string key = {0};
        int has_member = 0;
        status = an_json_next_member(&json, &key, &has_member);
        if (status != ALEXNET_OK)
            return with_context(status, "header");
        if (!has_member)
            break;
        if (key_is(&key, "__metadata__")) {
            an_json_string_free(builder->allocator, &key);
            status = parse_metadata(builder, &json);
        } else {
            status = parse_tensor(builder, &json, &key);
        }
    }
    if (status != ALEXNET_OK)
        return status;
    /* Trailing spaces are the padding writers add; anything else after the object is garbage. */
    status = an_json_finish(&json);
    if (status != ALEXNET_OK)
        return with_context(status, "header");
    return ALEXNET_OK;
}

/* ---- whole-file checks ---- */

static int compare_tensor_names(const void *a, const void *b)
{
    return strcmp(((const an_safetensors_tensor *)a)->name, ((const an_safetensors_tensor *)b)->name);
}

static int compare_metadata_keys(const void *a, const void *b)
{
    return strcmp(((const an_safetensors_metadata_entry *)a)->key, ((const an_safetensors_metadata_entry *)b)->key);
}

static int compare_u64(uint64_t a, uint64_t b) { return a < b ? -1 : a > b; }

/* Data order; zero-length tensors sharing an offset are ordered by name so the result is deterministic. */
static int compare_tensor_offsets(const void *a, const void *b)
{
    const an_safetensors_tensor *x = a, *y = b;
    int order = compare_u64(x->data_begin, y->data_begin);
    if (order == 0)
        order = compare_u64(x->data_end, y->data_end);
    return order != 0 ? order : strcmp(x->name, y->name);
}

static alexnet_status check_unique_names(header_builder *builder)
{
    sort_items(builder->tensors, builder->tensor_count, sizeof *builder->tensors, compare_tensor_names);
    for (size_t i = 1; i < builder->tensor_count; i++)
        if (strcmp(builder->tensors[i - 1].name, builder->tensors[i].name) == 0)
            return an_error(ALEXNET_E_FORMAT, "duplicate tensor name '%.64s'", builder->tensors[i].name);
    sort_items(builder->metadata, builder->metadata_count, sizeof *builder->metadata, compare_metadata_keys);
    for (size_t i = 1; i < builder->metadata_count; i++)
        if (strcmp(builder->metadata[i - 1].key, builder->metadata[i].key) == 0)
            return an_error(ALEXNET_E_FORMAT, "__metadata__: duplicate key '%.64s'", builder->metadata[i].key);
    return ALEXNET_OK;
}

/* Sort tensors into data order and require that they tile [0, data_size) exactly: no byte outside the
 * buffer, none claimed twice, none unclaimed. */
static alexnet_status check_data_layout(header_builder *builder, uint64_t data_size)
{
    an_safetensors_tensor *tensors = builder->tensors;
    for (size_t i = 0; i < builder->tensor_count; i++)
        if (tensors[i].data_end > data_size)
            return an_error(ALEXNET_E_FORMAT,
                            "tensor '%.64s': data_offsets [%llu, %llu] extend beyond the %llu-byte data buffer",
                            tensors[i].name, (unsigned long long)tensors[i].data_begin,
                            (unsigned long long)tensors[i].data_end, (unsigned long long)data_size);
    sort_items(tensors, builder->tensor_count, sizeof *tensors, compare_tensor_offsets);
    uint64_t covered = 0; /* every byte before this is claimed by exactly one tensor */
    for (size_t i = 0; i < builder->tensor_count; i++) {
        const an_safetensors_tensor *tensor = &tensors[i];
        if (tensor->data_begin < covered)
            return an_error(ALEXNET_E_FORMAT, "tensor '%.64s' (bytes %llu..%llu) overlaps tensor '%.64s'",
                            tensor->name, (unsigned long long)tensor->data_begin,
                            (unsigned long long)tensor->data_end, tensors[i - 1].name);
        if (tensor->data_begin > covered)
            return an_error(ALEXNET_E_FORMAT, "hole in the data buffer: bytes %llu..%llu before tensor '%.64s' "
                            "belong to no tensor", (unsigned long long)covered,
                            (unsigned long long)tensor->data_begin, tensor->name);
        covered = tensor->data_end;
    }
    if (covered != data_size)
        return an_error(ALEXNET_E_FORMAT, "hole in the data buffer: bytes %llu..%llu at its end belong to no tensor",
                        (unsigned long long)covered, (unsigned long long)data_size);
    return ALEXNET_OK;
}

/* ---- open / close ---- */

static uint64_t load_u64_le(const unsigned char *bytes)
{
    uint64_t value = 0;
    for (int i = 7; i >= 0; i--)
        value = (value << 8) | bytes[i];
    return value;
}

/* The header length N from the first 8 bytes, checked against the limit and the file. */
static alexnet_status read_header_length(const an_byte_source *source, uint64_t *out_length)
{
    if (source->size < 8)
        return an_error(ALEXNET_E_FORMAT, "file is %llu bytes, shorter than the 8-byte header length field",
                        (unsigned long long)source->size);
    unsigned char prefix[8];
    alexnet_status status = source_read(source, 0, prefix, sizeof prefix);
    if (status != ALEXNET_OK)
        return with_context(status, "header length");
    uint64_t length = load_u64_le(prefix);
    if (length == 0)
        return an_error(ALEXNET_E_FORMAT, "header length is 0");
    if (length > MAX_HEADER_BYTES)
        return an_error(ALEXNET_E_FORMAT, "header length %llu exceeds the limit of %u bytes",
                        (unsigned long long)length, MAX_HEADER_BYTES);
    if (length > source->size - 8)
        return an_error(ALEXNET_E_FORMAT, "header length %llu exceeds the %llu bytes after the length field "
                        "(file truncated?)", (unsigned long long)length, (unsigned long long)(source->size - 8));
    *out_length = length;
    return ALEXNET_OK;
}

/* Read and parse the header into builder, then check the file as a whole. */
static alexnet_status load_header(header_builder *builder, const an_byte_source *source, uint64_t *out_data_offset)
{
    uint64_t header_length = 0;
    alexnet_status status = read_header_length(source, &header_length);
    if (status != ALEXNET_OK)
        return status;
    /* header_length <= MAX_HEADER_BYTES, so it fits size_t. */
    char *header = an_alloc(builder->allocator, (size_t)header_length, "safetensors header");
    if (header == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    status = source_read(source, 8, header, (size_t)header_length);
    if (status != ALEXNET_OK)
        status = with_context(status, "header");
    else
        status = parse_header(builder, header, (size_t)header_length);
    an_free(builder->allocator, header, (size_t)header_length);
    if (status == ALEXNET_OK)
        status = check_unique_names(builder);
    if (status == ALEXNET_OK)
        status = check_data_layout(builder, source->size - 8 - header_length);
    *out_data_offset = 8 + header_length;
    return status;
}

alexnet_status an_safetensors_open(an_safetensors *file, const an_byte_source *source,
                                   const alexnet_allocator *allocator)
{
    if (file == NULL || source == NULL || source->read == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "safetensors: file and source must not be NULL");
    an_safetensors result;
    memset(&result, 0, sizeof result);
    alexnet_status status = an_allocator_resolve(allocator, &result.allocator);
    if (status != ALEXNET_OK)
        return status;
    header_builder builder;
    memset(&builder, 0, sizeof builder);
    builder.allocator = &result.allocator;
    status = load_header(&builder, source, &result.data_offset);
    /* Trim the arrays to their counts: close() frees exactly count x item size. */
    if (status == ALEXNET_OK)
        status = resize_items(builder.allocator, (void **)&builder.tensors, builder.tensor_count,
                              &builder.tensor_capacity, builder.tensor_count, sizeof *builder.tensors,
                              "safetensors tensor list");
    if (status == ALEXNET_OK)
        status = resize_items(builder.allocator, (void **)&builder.metadata, builder.metadata_count,
                              &builder.metadata_capacity, builder.metadata_count, sizeof *builder.metadata,
                              "safetensors metadata");
    if (status != ALEXNET_OK) {
        builder_release(&builder);
        return status;
    }
    result.source = source;
    result.tensors = builder.tensors;
    result.tensor_count = builder.tensor_count;
    result.metadata = builder.metadata;
    result.metadata_count = builder.metadata_count;
    *file = result;
    return ALEXNET_OK;
}

void an_safetensors_close(an_safetensors *file)
{
    if (file == NULL || file->allocator.free == NULL) /* zeroed: nothing was opened */
        return;
    free_tensors(&file->allocator, file->tensors, file->tensor_count, file->tensor_count);
    free_metadata(&file->allocator, file->metadata, file->metadata_count, file->metadata_count);
    memset(file, 0, sizeof *file);
}

const an_safetensors_tensor *an_safetensors_find(const an_safetensors *file, const char *name)
{
    if (file == NULL || name == NULL)
        return NULL;
    for (size_t i = 0; i < file->tensor_count; i++)
        if (strcmp(file->tensors[i].name, name) == 0)
            return &file->tensors[i];
    return NULL;
}

const char *an_safetensors_metadata(const an_safetensors *file, const char *key)
{
    if (file == NULL || key == NULL)
        return NULL;
    for (size_t i = 0; i < file->metadata_count; i++)
        if (strcmp(file->metadata[i].key, key) == 0)
            return file->metadata[i].value;
    return NULL;
}

/* ---- reading tensor data ---- */

static float float_from_bits(uint32_t bits)
{
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* IEEE binary16 -> binary32, exactly: every half value is representable as a float. */
static float f16_to_f32(uint16_t half)
{
    uint32_t sign = (uint32_t)(half & 0x8000u) << 16;
    uint32_t exponent = (half >> 10) & 0x1Fu;
    uint32_t mantissa = half & 0x3FFu;
    if (exponent == 0x1F) /* infinity, or NaN with its payload (and quiet bit) kept in the top bits */
        return float_from_bits(sign | 0x7F800000u | (mantissa << 13));
    if (exponent != 0) /* normal: rebias 15 -> 127 */
        return float_from_bits(sign | ((exponent + 112) << 23) | (mantissa << 13));
    if (mantissa == 0)
        return float_from_bits(sign);
    /* Subnormal half (mantissa x 2^-24) is a normal float: shift the leading 1 up to the implicit bit. */
    uint32_t float_exponent = 113; /* the exponent of 2^-14, the half subnormal scale, plus one shift */
    while ((mantissa & 0x400u) == 0) {
        mantissa <<= 1;
        float_exponent--;
    }
    return float_from_bits(sign | (float_exponent << 23) | ((mantissa & 0x3FFu) << 13));
}

/* bfloat16 is the top half of a binary32. */
static float bf16_to_f32(uint16_t value) { return float_from_bits((uint32_t)value << 16); }

/* Read 16-bit elements in bounded chunks and convert each into dst. */
static alexnet_status read_converted(const an_safetensors *file, const an_safetensors_tensor *tensor, float *dst,
                                     size_t count)
{
    unsigned char chunk[CONVERT_CHUNK_BYTES];
    const size_t per_chunk = sizeof chunk / 2;
    uint64_t offset = file->data_offset + tensor->data_begin; /* within the source: checked at open */
    for (size_t done = 0; done < count;) {
        size_t n = count - done < per_chunk ? count - done : per_chunk;
        alexnet_status status = source_read(file->source, offset, chunk, n * 2);
        if (status != ALEXNET_OK)
            return with_context(status, "tensor '%.64s'", tensor->name);
        for (size_t i = 0; i < n; i++) {
            uint16_t raw = (uint16_t)(chunk[2 * i] | (chunk[2 * i + 1] << 8)); /* little-endian */
            dst[done + i] = tensor->dtype == AN_DTYPE_F16 ? f16_to_f32(raw) : bf16_to_f32(raw);
        }
        done += n;
        offset += n * 2;
    }
    return ALEXNET_OK;
}

alexnet_status an_safetensors_read_f32(const an_safetensors *file, const an_safetensors_tensor *tensor, float *dst,
                                       size_t count)
{
    if (file == NULL || tensor == NULL || (dst == NULL && count != 0))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "safetensors read: file, tensor and dst must not be NULL");
    if (tensor->dtype == AN_DTYPE_OTHER)
        return an_error(ALEXNET_E_UNSUPPORTED, "tensor '%.64s': dtype %s cannot be read as float32", tensor->name,
                        tensor->dtype_name);
    if ((uint64_t)count != tensor->element_count)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "tensor '%.64s' has %llu elements, not %zu", tensor->name,
                        (unsigned long long)tensor->element_count, count);
    if (count == 0)
        return ALEXNET_OK;
    if (tensor->dtype != AN_DTYPE_F32)
        return read_converted(file, tensor, dst, count);
    size_t bytes;
    if (an_mul_overflow_size(count, sizeof *dst, &bytes))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "tensor '%.64s' is too large for this platform", tensor->name);
    /* Straight into the caller's buffer: F32 data is little-endian like the host. */
    alexnet_status status = source_read(file->source, file->data_offset + tensor->data_begin, dst, bytes);
    if (status != ALEXNET_OK)
        return with_context(status, "tensor '%.64s'", tensor->name);
    return ALEXNET_OK;
}
