/* Helpers shared by the test programs. */
#ifndef AN_TEST_SUPPORT_H
#define AN_TEST_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include "alexnet/alexnet.h"

/* An allocator that counts live blocks and bytes (every test asserts zero at the end), checks that
 * free() gets the size alloc() returned, and can fail the N-th allocation (fail_at = N, 1-based; 0 never). */
typedef struct test_counting_allocator {
    size_t live_blocks;
    size_t live_bytes;
    size_t peak_bytes;
    size_t total_allocations;
    size_t fail_at;
    size_t size_mismatches; /* free() called with a size different from the allocation's */
} test_counting_allocator;

/* An alexnet_allocator routed to `counter` (zeroed by this call). */
alexnet_allocator test_counting_allocator_make(test_counting_allocator *counter);

/* splitmix64: the integer hash the golden script reproduces in Python. */
uint64_t test_splitmix64(uint64_t x);
/* x[i] = uniform in [-2, 2) from splitmix64(seed * 0x9E3779B97F4A7C15 + i): exactly reproducible in Python
 * (tools/make_goldens.py) as ((h >> 40) * 2^-24) * 4 - 2 in float64, then rounded to float32. */
void test_fill_input(float *x, size_t n, uint64_t seed);
/* A uniform integer in [low, high] (inclusive) from the splitmix64 stream *state, which it advances. */
uint32_t test_rand_range(uint64_t *state, uint32_t low, uint32_t high);
/* malloc'ed room for n floats (at least one) filled by test_fill_input(seed); release it with free().
 * Aborts when memory runs out. */
float *test_random_floats(size_t n, uint64_t seed);

/* Directory of committed test data (ALEXNET_TEST_DATA_DIR, else "tests/data"). */
const char *test_data_dir(void);
/* path = dir + "/" + name into buffer; returns buffer. */
const char *test_data_path(char *buffer, size_t size, const char *name);

/* max |a - b| / max |b| over n values (0 when b is all zero and a == b). */
double test_max_relative_error(const float *a, const float *b, size_t n);

#endif
