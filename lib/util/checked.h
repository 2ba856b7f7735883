/* Overflow-checked size arithmetic: every size, offset and shape read from a file or a caller goes
 * through these before it is used. Each returns nonzero when the result does not fit. */
#ifndef AN_UTIL_CHECKED_H
#define AN_UTIL_CHECKED_H

#include <stddef.h>
#include <stdint.h>

static inline int an_mul_overflow_size(size_t a, size_t b, size_t *out) { return __builtin_mul_overflow(a, b, out); }
static inline int an_add_overflow_size(size_t a, size_t b, size_t *out) { return __builtin_add_overflow(a, b, out); }
static inline int an_mul_overflow_u64(uint64_t a, uint64_t b, uint64_t *out) { return __builtin_mul_overflow(a, b, out); }
static inline int an_add_overflow_u64(uint64_t a, uint64_t b, uint64_t *out) { return __builtin_add_overflow(a, b, out); }

#endif
