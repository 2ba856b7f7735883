/* Helpers shared by the fuzz targets (and by make_seeds.c, which writes their seed corpus).
 *
 * Everything is static inline so that each target is one translation unit plus this header: a target links
 * either libFuzzer (clang, -Dfuzzing=true) or replay_main.c (any compiler, every build), and nothing else.
 *
 * A target reports a bug by calling fuzz_fail(), which prints the reason and aborts: libFuzzer turns the abort
 * into a crash artifact, the replay driver into a failed test. */
#ifndef AN_FUZZ_COMMON_H
#define AN_FUZZ_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/alexnet.h"
#include "tiny_weights.h" /* tw_tiny_config(): the network the loader targets load */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#if defined(__GNUC__) || defined(__clang__)
#define FUZZ_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define FUZZ_NORETURN __attribute__((noreturn))
#else
#define FUZZ_PRINTF(a, b)
#define FUZZ_NORETURN
#endif

static inline FUZZ_NORETURN FUZZ_PRINTF(1, 2) void fuzz_fail(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    fputs("fuzz target invariant violated: ", stderr);
    vfprintf(stderr, format, args);
    va_end(args);
    fprintf(stderr, "\n(last library message: \"%s\")\n", alexnet_last_error());
    fflush(stderr);
    abort();
}

#define FUZZ_CHECK(condition, ...)                                                                               \
    do {                                                                                                         \
        if (!(condition))                                                                                        \
            fuzz_fail(__VA_ARGS__);                                                                              \
    } while (0)

/* A failed public call must say why: a status other than OK comes with a non-empty message. */
static inline void fuzz_check_failure_message(alexnet_status status, const char *call)
{
    if (status != ALEXNET_OK && alexnet_last_error()[0] == '\0')
        fuzz_fail("%s returned %d (%s) with an empty alexnet_last_error()", call, (int)status,
                  alexnet_status_string(status));
}

/* ---- an allocator that finds leaks and wrong sizes, and refuses blocks larger than a cap ----
 *
 * The cap keeps every input cheap (a hostile header may describe a model of gigabytes) and makes the
 * library's out-of-memory paths part of what is fuzzed: a refused allocation must come back as
 * ALEXNET_E_OUT_OF_MEMORY, never as a crash. */
typedef struct fuzz_allocator_state {
    size_t live_blocks;
    size_t live_bytes;
    size_t cap_bytes;
    size_t allocations;
} fuzz_allocator_state;

typedef struct fuzz_block_header {
    size_t size;
    size_t offset; /* from the raw block to the user pointer */
} fuzz_block_header;

static inline void *fuzz_alloc(void *user, size_t size, size_t alignment)
{
    fuzz_allocator_state *state = user;
    state->allocations++;
    if (size > state->cap_bytes)
        return NULL;
    if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > 4096)
        fuzz_fail("allocator called with alignment %zu (must be a power of two <= 4096)", alignment);
    if (alignment < sizeof(fuzz_block_header))
        alignment = sizeof(fuzz_block_header);
    size_t offset = alignment >= 2 * sizeof(fuzz_block_header) ? alignment : 2 * alignment;
    unsigned char *raw = NULL;
    if (posix_memalign((void **)&raw, alignment, size + offset) != 0)
        return NULL;
    unsigned char *ptr = raw + offset;
    fuzz_block_header *header = (fuzz_block_header *)(void *)(ptr - sizeof *header);
    header->size = size;
    header->offset = offset;
    state->live_blocks++;
    state->live_bytes += size;
    return ptr;
}

static inline void fuzz_free(void *user, void *ptr, size_t size)
{
    fuzz_allocator_state *state = user;
    if (ptr == NULL)
        fuzz_fail("allocator free() called with NULL");
    unsigned char *p = ptr;
    fuzz_block_header *header = (fuzz_block_header *)(void *)(p - sizeof *header);
    if (header->size != size)
        fuzz_fail("free() of a %zu-byte block was given size %zu", header->size, size);
    if (state->live_blocks == 0)
        fuzz_fail("free() with no live block");
    state->live_blocks--;
    state->live_bytes -= size;
    free(p - header->offset);
}

static inline alexnet_allocator fuzz_allocator_make(fuzz_allocator_state *state, size_t cap_bytes)
{
    memset(state, 0, sizeof *state);
    state->cap_bytes = cap_bytes;
    alexnet_allocator allocator = {fuzz_alloc, fuzz_free, state};
    return allocator;
}

static inline void fuzz_allocator_check_empty(const fuzz_allocator_state *state, const char *when)
{
    if (state->live_blocks != 0)
        fuzz_fail("%s: %zu blocks (%zu bytes) leaked", when, state->live_blocks, state->live_bytes);
}

/* ---- reading structured values out of the input ----
 *
 * Bytes are consumed from the front; past the end every read gives zero, so any input is a valid one. */
typedef struct fuzz_reader {
    const uint8_t *data;
    size_t size;
    size_t position;
} fuzz_reader;

static inline fuzz_reader fuzz_reader_make(const uint8_t *data, size_t size)
{
    fuzz_reader reader = {data, size, 0};
    return reader;
}

static inline uint8_t fuzz_u8(fuzz_reader *r) { return r->position < r->size ? r->data[r->position++] : 0; }

static inline uint16_t fuzz_u16(fuzz_reader *r)
{
    uint16_t low = fuzz_u8(r);
    return (uint16_t)(low | (uint16_t)fuzz_u8(r) << 8);
}

static inline uint32_t fuzz_u32(fuzz_reader *r)
{
    uint32_t low = fuzz_u16(r);
    return low | (uint32_t)fuzz_u16(r) << 16;
}

static inline float fuzz_f32(fuzz_reader *r)
{
    uint32_t bits = fuzz_u32(r);
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static inline size_t fuzz_remaining(const fuzz_reader *r) { return r->size - r->position; }

/* ---- the flags byte of fuzz_preprocess.c's input (make_seeds.c writes it too) ---- */
enum {
    FUZZ_PREPROCESS_NULL_OPTIONS = 1 << 0,
    FUZZ_PREPROCESS_SHORT_STRUCT = 1 << 1,      /* options.struct_size one byte smaller than the 0.1 layout */
    FUZZ_PREPROCESS_LONG_STRUCT = 1 << 2,       /* 8 bytes larger, non-zero unless byte 0 has its top bit */
    FUZZ_PREPROCESS_SHORT_OUTPUT = 1 << 3,      /* out_count one less than needed */
    FUZZ_PREPROCESS_RAW_NORMALISATION = 1 << 4, /* mean and std from the input, else the defaults */
    FUZZ_PREPROCESS_WIDE_RESIZE = 1 << 5,       /* resize_size as a full 32-bit value */
    FUZZ_PREPROCESS_NULL_PIXELS = 1 << 6,
    FUZZ_PREPROCESS_NULL_IMAGE = 1 << 7
};

#endif
