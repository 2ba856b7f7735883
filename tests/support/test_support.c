#include "test_support.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Each block carries a header with its size so that free() can verify the size the library passes. */
typedef struct test_block_header {
    size_t size;
    size_t offset; /* from the raw allocation to the user pointer */
} test_block_header;

static void *test_counting_alloc(void *user, size_t size, size_t alignment)
{
    test_counting_allocator *counter = user;
    counter->total_allocations++;
    if (counter->fail_at != 0 && counter->total_allocations == counter->fail_at)
        return NULL;
    if (alignment < sizeof(test_block_header))
        alignment = sizeof(test_block_header);
    size_t offset = alignment >= 2 * sizeof(test_block_header) ? alignment : 2 * alignment;
    unsigned char *raw = NULL;
    if (posix_memalign((void **)&raw, alignment, size + offset) != 0)
        return NULL;
    unsigned char *ptr = raw + offset;
    test_block_header *header = (test_block_header *)(void *)(ptr - sizeof(test_block_header));
    header->size = size;
    header->offset = offset;
    counter->live_blocks++;
    counter->live_bytes += size;
    if (counter->live_bytes > counter->peak_bytes)
        counter->peak_bytes = counter->live_bytes;
    return ptr;
}

static void test_counting_free(void *user, void *ptr, size_t size)
{
    test_counting_allocator *counter = user;
    unsigned char *p = ptr;
    test_block_header *header = (test_block_header *)(void *)(p - sizeof(test_block_header));
    if (header->size != size)
        counter->size_mismatches++;
    counter->live_blocks--;
    counter->live_bytes -= header->size;
    free(p - header->offset);
}

alexnet_allocator test_counting_allocator_make(test_counting_allocator *counter)
{
    *counter = (test_counting_allocator){0};
    alexnet_allocator allocator = {test_counting_alloc, test_counting_free, counter};
    return allocator;
}

uint64_t test_splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

void test_fill_input(float *x, size_t n, uint64_t seed)
{
    uint64_t base = seed * 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = test_splitmix64(base + i);
        double unit = (double)(h >> 40) * (1.0 / 16777216.0);
        x[i] = (float)(unit * 4.0 - 2.0);
    }
}

uint32_t test_rand_range(uint64_t *state, uint32_t low, uint32_t high)
{
    *state = test_splitmix64(*state);
    return low + (uint32_t)(*state % (uint64_t)(high - low + 1));
}

float *test_random_floats(size_t n, uint64_t seed)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    if (x == NULL)
        abort();
    test_fill_input(x, n, seed);
    return x;
}

const char *test_data_dir(void)
{
    const char *dir = getenv("ALEXNET_TEST_DATA_DIR");
    return dir != NULL && dir[0] != '\0' ? dir : "tests/data";
}

const char *test_data_path(char *buffer, size_t size, const char *name)
{
    snprintf(buffer, size, "%s/%s", test_data_dir(), name);
    return buffer;
}

double test_max_relative_error(const float *a, const float *b, size_t n)
{
    double max_diff = 0.0, max_ref = 0.0;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)a[i] - (double)b[i]);
        if (diff > max_diff || isnan(diff))
            max_diff = isnan(diff) ? INFINITY : diff;
        if (fabs((double)b[i]) > max_ref)
            max_ref = fabs((double)b[i]);
    }
    if (max_ref == 0.0)
        return max_diff == 0.0 ? 0.0 : INFINITY;
    return max_diff / max_ref;
}
