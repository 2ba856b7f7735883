#include "util/alloc.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "util/checked.h"
#include "util/error.h"

/* Blocks this large (the weights, big activations) are aligned to 2 MiB and offered to transparent huge
 * pages where the system allows it (THP "madvise" mode): first-touching 250 MB in 4 KiB pages costs most of
 * a second here, in 2 MiB pages a small fraction of that. */
#define AN_HUGE_PAGE_SIZE ((size_t)2 << 20)

static void *an_default_alloc(void *user, size_t size, size_t alignment)
{
    (void)user;
    void *ptr = NULL;
    if (alignment < sizeof(void *))
        alignment = sizeof(void *);
    int huge = size >= 2 * AN_HUGE_PAGE_SIZE;
    if (huge && alignment < AN_HUGE_PAGE_SIZE)
        alignment = AN_HUGE_PAGE_SIZE;
    if (posix_memalign(&ptr, alignment, size) != 0)
        return NULL;
#ifdef MADV_HUGEPAGE
    if (huge)
        (void)madvise(ptr, size & ~(AN_HUGE_PAGE_SIZE - 1), MADV_HUGEPAGE); /* advice only: failure is harmless */
#endif
    return ptr;
}

static void an_default_free(void *user, void *ptr, size_t size)
{
    (void)user;
    (void)size;
    free(ptr);
}

alexnet_status an_allocator_resolve(const alexnet_allocator *user, alexnet_allocator *out)
{
    if (user == NULL || (user->alloc == NULL && user->free == NULL)) {
        out->alloc = an_default_alloc;
        out->free = an_default_free;
        out->user = NULL;
        return ALEXNET_OK;
    }
    if (user->alloc == NULL || user->free == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "allocator: alloc and free must both be set or both be NULL");
    *out = *user;
    return ALEXNET_OK;
}

void *an_alloc(const alexnet_allocator *allocator, size_t size, const char *what)
{
    if (size == 0)
        size = 1;
    void *ptr = allocator->alloc(allocator->user, size, AN_ALIGNMENT);
    if (ptr == NULL)
        an_error(ALEXNET_E_OUT_OF_MEMORY, "%s: allocation of %zu bytes failed", what, size);
    return ptr;
}

void *an_calloc(const alexnet_allocator *allocator, size_t count, size_t element_size, const char *what)
{
    size_t size;
    if (an_mul_overflow_size(count, element_size, &size)) {
        an_error(ALEXNET_E_OUT_OF_MEMORY, "%s: %zu x %zu bytes overflows", what, count, element_size);
        return NULL;
    }
    void *ptr = an_alloc(allocator, size, what);
    if (ptr != NULL)
        memset(ptr, 0, size);
    return ptr;
}

void an_free(const alexnet_allocator *allocator, void *ptr, size_t size)
{
    if (ptr != NULL)
        allocator->free(allocator->user, ptr, size == 0 ? 1 : size);
}

char *an_strdup(const alexnet_allocator *allocator, const char *text)
{
    size_t size = strlen(text) + 1;
    char *copy = an_alloc(allocator, size, "string");
    if (copy != NULL)
        memcpy(copy, text, size);
    return copy;
}

void an_strfree(const alexnet_allocator *allocator, char *text)
{
    if (text != NULL)
        an_free(allocator, text, strlen(text) + 1);
}
