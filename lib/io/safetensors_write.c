#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "util/alloc.h"
#include "util/checked.h"
#include "util/error.h"
#include "util/json.h"

/* Tensor data is copied from the caller's floats as is, and safetensors is little-endian. */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "libalexnet's safetensors writer assumes a little-endian host"
#endif

/* The same limits the reader enforces: never write a file that our own reader would refuse. */
#define MAX_HEADER_BYTES 100000000u
#define MAX_NAME_BYTES 255
#define F32_BYTES 4u
/* Then padding to a multiple of 8 never pushes an acceptable header over the limit. */
_Static_assert(MAX_HEADER_BYTES % 8 == 0, "the header limit must be a multiple of 8");

/* ---- input validation ---- */

/* Bytes of one tensor's data; it is in the caller's memory, so it must fit size_t. */
static alexnet_status tensor_data_bytes(const an_safetensors_write_tensor *tensor, size_t *out_bytes)
{
    uint64_t elements = 1;
    for (uint32_t i = 0; i < tensor->rank; i++)
        if (an_mul_overflow_u64(elements, tensor->shape[i], &elements))
            return an_error(ALEXNET_E_INVALID_ARGUMENT, "tensor '%.64s': shape product overflows 64 bits",
                            tensor->name);
    uint64_t bytes;
    if (an_mul_overflow_u64(elements, F32_BYTES, &bytes) || bytes > SIZE_MAX)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "tensor '%.64s': %llu elements do not fit in memory",
                        tensor->name, (unsigned long long)elements);
    *out_bytes = (size_t)bytes;
    return ALEXNET_OK;
}

static alexnet_status validate_tensor(const an_safetensors_write_tensor *tensor, size_t index)
{
    if (tensor->name == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "tensor %zu: name is NULL", index);
    size_t length = strlen(tensor->name);
    if (length == 0 || length > MAX_NAME_BYTES)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "tensor %zu: name of %zu bytes is not 1..%d bytes long", index,
                        length, MAX_NAME_BYTES);
    if (!an_utf8_valid(tensor->name, length))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "tensor %zu: name is not valid UTF-8", index);
    if (strcmp(tensor->name, "__metadata__") == 0)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "tensor %zu: the name __metadata__ is reserved", index);
    if (tensor->rank > AN_SAFETENSORS_MAX_RANK)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "tensor '%.64s': rank %u exceeds %d", tensor->name,
                        (unsigned)tensor->rank, AN_SAFETENSORS_MAX_RANK);
    size_t bytes = 0;
    alexnet_status status = tensor_data_bytes(tensor, &bytes);
    if (status != ALEXNET_OK)
        return status;
    if (tensor->data == NULL && bytes != 0)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "tensor '%.64s': data is NULL", tensor->name);
    return ALEXNET_OK;
}

static alexnet_status validate_metadata_entry(const an_safetensors_metadata_entry *entry, size_t index)
{
    if (entry->key == NULL || entry->value == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "metadata entry %zu: key and value must not be NULL", index);
    if (!an_utf8_valid(entry->key, strlen(entry->key)))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "metadata entry %zu: key is not valid UTF-8", index);
    if (!an_utf8_valid(entry->value, strlen(entry->value)))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "metadata '%.64s': value is not valid UTF-8", entry->key);
    return ALEXNET_OK;
}

/* Duplicates are found by comparing every pair: the writer serialises a model's parameter list (tens of
 * tensors) and a handful of metadata entries, where this is cheaper than sorting a copy. */
static alexnet_status check_no_duplicates(const an_safetensors_write_tensor *tensors, size_t tensor_count,
                                          const an_safetensors_metadata_entry *metadata, size_t metadata_count)
{
    for (size_t i = 0; i < tensor_count; i++)
        for (size_t j = i + 1; j < tensor_count; j++)
            if (strcmp(tensors[i].name, tensors[j].name) == 0)
                return an_error(ALEXNET_E_INVALID_ARGUMENT, "duplicate tensor name '%.64s'", tensors[i].name);
    for (size_t i = 0; i < metadata_count; i++)
        for (size_t j = i + 1; j < metadata_count; j++)
            if (strcmp(metadata[i].key, metadata[j].key) == 0)
                return an_error(ALEXNET_E_INVALID_ARGUMENT, "duplicate metadata key '%.64s'", metadata[i].key);
    return ALEXNET_OK;
}

static alexnet_status validate_inputs(const an_safetensors_write_tensor *tensors, size_t tensor_count,
                                      const an_safetensors_metadata_entry *metadata, size_t metadata_count)
{
    if ((tensors == NULL && tensor_count != 0) || (metadata == NULL && metadata_count != 0))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "safetensors write: NULL tensor or metadata array");
    for (size_t i = 0; i < tensor_count; i++) {
        alexnet_status status = validate_tensor(&tensors[i], i);
        if (status != ALEXNET_OK)
            return status;
    }
    for (size_t i = 0; i < metadata_count; i++) {
        alexnet_status status = validate_metadata_entry(&metadata[i], i);
        if (status != ALEXNET_OK)
            return status;
    }
    return check_no_duplicates(tensors, tensor_count, metadata, metadata_count);
}

/* ---- the header text ---- */

/* Where header text goes: counted only (out == NULL) or also written to out. Counting and writing share
 * one emitter so that the size computed beforehand is always the size written. */
typedef struct header_sink {
    char *out;
    size_t length;
    int overflow;
} header_sink;

static void sink_bytes(header_sink *sink, const char *bytes, size_t count)
{
    if (sink->out != NULL)
        memcpy(sink->out + sink->length, bytes, count);
    if (an_add_overflow_size(sink->length, count, &sink->length))
        sink->overflow = 1;
}

static void sink_text(header_sink *sink, const char *text) { sink_bytes(sink, text, strlen(text)); }

static void sink_quoted(header_sink *sink, const char *text)
{
    size_t quoted_length = 0;
    if (an_json_quoted_length(text, &quoted_length) || sink->overflow) {
        sink->overflow = 1;
        return;
    }
    if (sink->out != NULL)
        an_json_write_quoted(sink->out + sink->length, text);
    if (an_add_overflow_size(sink->length, quoted_length, &sink->length))
        sink->overflow = 1;
}

static void sink_u64(header_sink *sink, uint64_t value)
{
    char digits[24];
    int length = snprintf(digits, sizeof digits, "%llu", (unsigned long long)value);
    sink_bytes(sink, digits, (size_t)length);
}

static void emit_tensor_entry(header_sink *sink, const an_safetensors_write_tensor *tensor, uint64_t begin,
                              uint64_t end)
{
    sink_quoted(sink, tensor->name);
    sink_text(sink, ":{\"dtype\":\"F32\",\"shape\":[");
    for (uint32_t i = 0; i < tensor->rank; i++) {
        if (i > 0)
            sink_text(sink, ",");
        sink_u64(sink, tensor->shape[i]);
    }
    sink_text(sink, "],\"data_offsets\":[");
    sink_u64(sink, begin);
    sink_text(sink, ",");
    sink_u64(sink, end);
    sink_text(sink, "]}");
}

/* {"__metadata__":{...},"name":{...},...} with the tensors' data laid out back to back in the given order.
 * Inputs must have been validated (sizes cannot overflow). */
static void emit_header(header_sink *sink, const an_safetensors_write_tensor *tensors, size_t tensor_count,
                        const an_safetensors_metadata_entry *metadata, size_t metadata_count)
{
    sink_text(sink, "{");
    if (metadata_count > 0) {
        sink_text(sink, "\"__metadata__\":{");
        for (size_t i = 0; i < metadata_count; i++) {
            if (i > 0)
                sink_text(sink, ",");
            sink_quoted(sink, metadata[i].key);
            sink_text(sink, ":");
            sink_quoted(sink, metadata[i].value);
        }
        sink_text(sink, "}");
    }
    uint64_t offset = 0;
    for (size_t i = 0; i < tensor_count; i++) {
        size_t bytes = 0;
        (void)tensor_data_bytes(&tensors[i], &bytes);
        if (i > 0 || metadata_count > 0)
            sink_text(sink, ",");
        emit_tensor_entry(sink, &tensors[i], offset, offset + bytes);
        offset += bytes;
    }
    sink_text(sink, "}");
}

/* ---- layout ---- */

typedef struct file_layout {
    size_t json_length;   /* the header's JSON text */
    size_t header_length; /* N: the JSON padded with spaces to a multiple of 8 */
    size_t total;         /* 8 + N + data */
} file_layout;

static alexnet_status plan_file(const an_safetensors_write_tensor *tensors, size_t tensor_count,
                                const an_safetensors_metadata_entry *metadata, size_t metadata_count,
                                file_layout *layout)
{
    alexnet_status status = validate_inputs(tensors, tensor_count, metadata, metadata_count);
    if (status != ALEXNET_OK)
        return status;
    header_sink counter = {NULL, 0, 0};
    emit_header(&counter, tensors, tensor_count, metadata, metadata_count);
    if (counter.overflow || counter.length > MAX_HEADER_BYTES)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "safetensors header would exceed the %u-byte limit readers "
                        "accept (too much metadata?)", MAX_HEADER_BYTES);
    layout->json_length = counter.length;
    /* Padding keeps the data buffer 8-byte aligned in the file, as the reference implementation does; the
     * padded length stays within the limit because the limit is a multiple of 8. */
    layout->header_length = (counter.length + 7) & ~(size_t)7;
    size_t total = 8 + layout->header_length;
    for (size_t i = 0; i < tensor_count; i++) {
        size_t bytes = 0;
        status = tensor_data_bytes(&tensors[i], &bytes);
        if (status != ALEXNET_OK)
            return status;
        if (an_add_overflow_size(total, bytes, &total))
            return an_error(ALEXNET_E_INVALID_ARGUMENT, "safetensors file would exceed the address space");
    }
    layout->total = total;
    return ALEXNET_OK;
}

static void store_u64_le(unsigned char *bytes, uint64_t value)
{
    for (int i = 0; i < 8; i++)
        bytes[i] = (unsigned char)(value >> (8 * i));
}

/* The length prefix and the padded header: layout->header_length + 8 bytes at out. */
static void write_prefix_and_header(unsigned char *out, const file_layout *layout,
                                    const an_safetensors_write_tensor *tensors, size_t tensor_count,
                                    const an_safetensors_metadata_entry *metadata, size_t metadata_count)
{
    store_u64_le(out, layout->header_length);
    header_sink sink = {(char *)out + 8, 0, 0};
    emit_header(&sink, tensors, tensor_count, metadata, metadata_count);
    memset(out + 8 + layout->json_length, ' ', layout->header_length - layout->json_length);
}

/* ---- public: size and memory ---- */

alexnet_status an_safetensors_serialized_size(const an_safetensors_write_tensor *tensors, size_t tensor_count,
                                              const an_safetensors_metadata_entry *metadata, size_t metadata_count,
                                              const alexnet_allocator *allocator, size_t *out_size)
{
    alexnet_allocator resolved; /* nothing is allocated; resolving still rejects a half-set allocator */
    alexnet_status status = an_allocator_resolve(allocator, &resolved);
    if (status != ALEXNET_OK)
        return status;
    if (out_size == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "safetensors size: out_size must not be NULL");
    file_layout layout = {0, 0, 0};
    status = plan_file(tensors, tensor_count, metadata, metadata_count, &layout);
    if (status != ALEXNET_OK)
        return status;
    *out_size = layout.total;
    return ALEXNET_OK;
}

alexnet_status an_safetensors_write_memory(const an_safetensors_write_tensor *tensors, size_t tensor_count,
                                           const an_safetensors_metadata_entry *metadata, size_t metadata_count,
                                           const alexnet_allocator *allocator, void *buffer, size_t capacity,
                                           size_t *out_size)
{
    alexnet_allocator resolved;
    alexnet_status status = an_allocator_resolve(allocator, &resolved);
    if (status != ALEXNET_OK)
        return status;
    file_layout layout = {0, 0, 0};
    status = plan_file(tensors, tensor_count, metadata, metadata_count, &layout);
    if (status != ALEXNET_OK)
        return status;
    if (buffer == NULL || capacity < layout.total)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "safetensors buffer of %zu bytes is too small: %zu needed",
                        buffer == NULL ? (size_t)0 : capacity, layout.total);
    unsigned char *out = buffer;
    write_prefix_and_header(out, &layout, tensors, tensor_count, metadata, metadata_count);
    size_t offset = 8 + layout.header_length;
    for (size_t i = 0; i < tensor_count; i++) {
        size_t bytes = 0;
        (void)tensor_data_bytes(&tensors[i], &bytes);
        if (bytes != 0)
            memcpy(out + offset, tensors[i].data, bytes);
        offset += bytes;
    }
    if (out_size != NULL)
        *out_size = layout.total;
    return ALEXNET_OK;
}

/* ---- public: file ---- */

/* New files get rw-r--r--; a replaced file keeps its permission bits. mkstemp's 0600 would otherwise leak
 * into the result. Best effort: permissions are not worth failing a save for. */
static void set_permissions(int fd, const char *path)
{
    struct stat existing;
    mode_t mode = 0644;
    if (stat(path, &existing) == 0 && S_ISREG(existing.st_mode))
        mode = existing.st_mode & 07777;
    (void)fchmod(fd, mode);
}

/* Create "<path>.tmp-XXXXXX" beside path; *out_temp_path is allocated (temp_size bytes) on success. */
static alexnet_status create_temp_file(const alexnet_allocator *allocator, const char *path, char **out_temp_path,
                                       size_t *out_temp_size, FILE **out_file)
{
    static const char suffix[] = ".tmp-XXXXXX";
    size_t path_length = strlen(path);
    size_t temp_size = path_length + sizeof suffix;
    char *temp_path = an_alloc(allocator, temp_size, "temporary file name");
    if (temp_path == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    memcpy(temp_path, path, path_length);
    memcpy(temp_path + path_length, suffix, sizeof suffix);
    int fd = mkstemp(temp_path);
    if (fd < 0) {
        int error = errno;
        an_free(allocator, temp_path, temp_size);
        return an_error(ALEXNET_E_IO, "%s: cannot create a temporary file beside it: %s", path, strerror(error));
    }
    set_permissions(fd, path);
    FILE *file = fdopen(fd, "wb");
    if (file == NULL) {
        int error = errno;
        close(fd);
        unlink(temp_path);
        an_free(allocator, temp_path, temp_size);
        return an_error(ALEXNET_E_IO, "%s: cannot open a stream: %s", path, strerror(error));
    }
    *out_temp_path = temp_path;
    *out_temp_size = temp_size;
    *out_file = file;
    return ALEXNET_OK;
}

/* Stream the header and every tensor to file; returns 0 or an errno value. */
static int write_stream(FILE *file, const unsigned char *header, size_t header_size,
                        const an_safetensors_write_tensor *tensors, size_t tensor_count)
{
    errno = 0; /* stdio need not set errno on every failure: start clean so a stale value is not reported */
    if (fwrite(header, 1, header_size, file) != header_size)
        return errno != 0 ? errno : EIO;
    for (size_t i = 0; i < tensor_count; i++) {
        size_t bytes = 0;
        (void)tensor_data_bytes(&tensors[i], &bytes);
        if (bytes != 0 && fwrite(tensors[i].data, 1, bytes, file) != bytes)
            return errno != 0 ? errno : EIO;
    }
    if (fflush(file) != 0)
        return errno != 0 ? errno : EIO;
    /* The data must be on disk before the rename makes it the file: otherwise a crash could leave path
     * naming an empty or partial file. */
    if (fsync(fileno(file)) != 0)
        return errno;
    return 0;
}

/* Make the rename itself durable. Best effort: the rename has happened, so path already holds the new
 * file and reporting a failure now would wrongly suggest it is untouched. */
static void sync_directory(const char *temp_path, size_t temp_size, const alexnet_allocator *allocator)
{
    char *directory = an_alloc(allocator, temp_size, "directory name");
    if (directory == NULL)
        return;
    memcpy(directory, temp_path, temp_size);
    char *slash = strrchr(directory, '/');
    const char *name = ".";
    if (slash == directory)
        name = "/";
    else if (slash != NULL) {
        *slash = '\0';
        name = directory;
    }
    int fd = open(name, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    an_free(allocator, directory, temp_size);
}

alexnet_status an_safetensors_write_file(const char *path, const an_safetensors_write_tensor *tensors,
                                         size_t tensor_count, const an_safetensors_metadata_entry *metadata,
                                         size_t metadata_count, const alexnet_allocator *allocator)
{
    if (path == NULL || path[0] == '\0')
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "safetensors write: path must be a non-empty string");
    alexnet_allocator resolved;
    alexnet_status status = an_allocator_resolve(allocator, &resolved);
    if (status != ALEXNET_OK)
        return status;
    file_layout layout = {0, 0, 0};
    status = plan_file(tensors, tensor_count, metadata, metadata_count, &layout);
    if (status != ALEXNET_OK)
        return status;
    size_t header_size = 8 + layout.header_length;
    unsigned char *header = an_alloc(&resolved, header_size, "safetensors header");
    if (header == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    write_prefix_and_header(header, &layout, tensors, tensor_count, metadata, metadata_count);

    char *temp_path = NULL;
    size_t temp_size = 0;
    FILE *file = NULL;
    status = create_temp_file(&resolved, path, &temp_path, &temp_size, &file);
    if (status != ALEXNET_OK) {
        an_free(&resolved, header, header_size);
        return status;
    }
    int error = write_stream(file, header, header_size, tensors, tensor_count);
    an_free(&resolved, header, header_size);
    /* fclose can report a deferred write error too, so its result counts even after a clean flush. */
    errno = 0;
    if (fclose(file) != 0 && error == 0)
        error = errno != 0 ? errno : EIO;
    if (error != 0) {
        unlink(temp_path);
        status = an_error(ALEXNET_E_IO, "%s: writing %s failed: %s", path, temp_path, strerror(error));
    } else if (rename(temp_path, path) != 0) {
        error = errno;
        unlink(temp_path);
        status = an_error(ALEXNET_E_IO, "%s: cannot rename %s over it: %s", path, temp_path, strerror(error));
    } else {
        sync_directory(temp_path, temp_size, &resolved);
    }
    an_free(&resolved, temp_path, temp_size);
    return status;
}
