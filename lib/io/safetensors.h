/* safetensors reading and writing (https://github.com/huggingface/safetensors format):
 *   8 bytes  little-endian u64 N = header length
 *   N bytes  UTF-8 JSON object: {"__metadata__": {"k": "v", ...}?, "name": {"dtype": "F32",
 *            "shape": [..], "data_offsets": [begin, end]}, ...}
 *   rest     the data buffer; offsets are relative to its start.
 * The reader trusts nothing: header length <= 100 MB and within the file, every offset and shape product
 * checked for overflow, byte sizes equal to shape x dtype size, tensors not overlapping and covering the
 * whole data buffer with no holes, names unique. Tensor data is read on demand straight into the
 * caller's buffer, so loading a 250 MB model never holds a second copy of it. */
#ifndef AN_IO_SAFETENSORS_H
#define AN_IO_SAFETENSORS_H

#include <stdint.h>
#include <stdio.h>

#include "alexnet/alexnet.h"

/* Where the bytes come from: a file or a memory buffer. read() must fill exactly `size` bytes at
 * `offset` or fail with a status and message. */
typedef struct an_byte_source {
    alexnet_status (*read)(void *user, uint64_t offset, void *dst, size_t size);
    uint64_t size;
    void *user;
    FILE *file; /* owned when opened by an_byte_source_open_file */
} an_byte_source;

void an_byte_source_from_memory(an_byte_source *source, const void *data, size_t size);
alexnet_status an_byte_source_open_file(an_byte_source *source, const char *path);
void an_byte_source_close(an_byte_source *source); /* closes the file, if any; safe to call twice */

typedef enum an_dtype {
    AN_DTYPE_F32 = 0,
    AN_DTYPE_F16 = 1,
    AN_DTYPE_BF16 = 2,
    AN_DTYPE_OTHER = 3 /* a valid safetensors dtype we do not convert (F64, I64, U8, BOOL, ...) */
} an_dtype;

#define AN_SAFETENSORS_MAX_RANK 8

typedef struct an_safetensors_tensor {
    char *name;
    an_dtype dtype;
    char dtype_name[8]; /* as written in the file, for messages */
    uint32_t rank;
    uint64_t shape[AN_SAFETENSORS_MAX_RANK];
    uint64_t element_count;
    uint64_t data_begin, data_end; /* relative to the data buffer */
} an_safetensors_tensor;

typedef struct an_safetensors_metadata_entry {
    char *key;
    char *value;
} an_safetensors_metadata_entry;

typedef struct an_safetensors {
    alexnet_allocator allocator;
    const an_byte_source *source; /* not owned */
    uint64_t data_offset;         /* 8 + N */
    an_safetensors_tensor *tensors;
    size_t tensor_count;
    an_safetensors_metadata_entry *metadata;
    size_t metadata_count;
} an_safetensors;

/* Parse and validate the header. On failure returns ALEXNET_E_FORMAT (or IO / OUT_OF_MEMORY) with a
 * message naming the problem, and leaves nothing allocated. */
alexnet_status an_safetensors_open(an_safetensors *file, const an_byte_source *source,
                                   const alexnet_allocator *allocator);
void an_safetensors_close(an_safetensors *file); /* frees what open allocated; safe on a zeroed struct */

const an_safetensors_tensor *an_safetensors_find(const an_safetensors *file, const char *name);
const char *an_safetensors_metadata(const an_safetensors *file, const char *key); /* NULL if absent */

/* Read a tensor as float32 into dst[0..count), count == element_count; F16 and BF16 are converted
 * (F16 subnormals, infinities and NaN included). Other dtypes: ALEXNET_E_UNSUPPORTED. */
alexnet_status an_safetensors_read_f32(const an_safetensors *file, const an_safetensors_tensor *tensor, float *dst,
                                       size_t count);

/* ---- writing (F32 only) ---- */
typedef struct an_safetensors_write_tensor {
    const char *name;
    uint32_t rank;
    uint64_t shape[AN_SAFETENSORS_MAX_RANK];
    const float *data; /* element_count = product of shape */
} an_safetensors_write_tensor;

/* Bytes needed for the serialised file (header padded to a multiple of 8 with spaces, as the reference
 * implementation does). */
alexnet_status an_safetensors_serialized_size(const an_safetensors_write_tensor *tensors, size_t tensor_count,
                                              const an_safetensors_metadata_entry *metadata, size_t metadata_count,
                                              const alexnet_allocator *allocator, size_t *out_size);
/* Serialise into buffer (capacity >= the serialised size, else ALEXNET_E_INVALID_ARGUMENT). */
alexnet_status an_safetensors_write_memory(const an_safetensors_write_tensor *tensors, size_t tensor_count,
                                           const an_safetensors_metadata_entry *metadata, size_t metadata_count,
                                           const alexnet_allocator *allocator, void *buffer, size_t capacity,
                                           size_t *out_size);
/* Write atomically: "<path>.tmp-XXXXXX" in the same directory, fsync, rename over path; on any failure the
 * temporary file is removed and path is untouched. Data is streamed, never copied whole. */
alexnet_status an_safetensors_write_file(const char *path, const an_safetensors_write_tensor *tensors,
                                         size_t tensor_count, const an_safetensors_metadata_entry *metadata,
                                         size_t metadata_count, const alexnet_allocator *allocator);

#endif
