/* Every host allocation goes through the user's alexnet_allocator (or the default aligned one). */
#ifndef AN_UTIL_ALLOC_H
#define AN_UTIL_ALLOC_H

#include "alexnet/alexnet.h"

/* Cache-line (and AVX-512) alignment for every block: kernels may rely on it. */
#define AN_ALIGNMENT 64

/* Copy `user` into `out`, substituting the default allocator when both functions are NULL. Returns
 * ALEXNET_E_INVALID_ARGUMENT (with a message) when only one of alloc/free is set. */
alexnet_status an_allocator_resolve(const alexnet_allocator *user, alexnet_allocator *out);

/* size 0 is treated as 1 so that a successful call never returns NULL. On failure sets the error message
 * (naming `what`) and returns NULL. */
void *an_alloc(const alexnet_allocator *allocator, size_t size, const char *what);
/* Zero-filled variant of an_alloc. */
void *an_calloc(const alexnet_allocator *allocator, size_t count, size_t element_size, const char *what);
/* ptr may be NULL; size must be what was passed to an_alloc (count * element_size for an_calloc). */
void an_free(const alexnet_allocator *allocator, void *ptr, size_t size);
/* Duplicate a NUL-terminated string. */
char *an_strdup(const alexnet_allocator *allocator, const char *text);
void an_strfree(const alexnet_allocator *allocator, char *text);

#endif
