/* Error reporting: a status plus a per-thread message (alexnet_last_error). */
#ifndef AN_UTIL_ERROR_H
#define AN_UTIL_ERROR_H

#include "alexnet/alexnet.h"

#if defined(__GNUC__)
#define AN_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define AN_PRINTF(f, a)
#endif

/* Record `status` with a formatted message for this thread and return status, so that callers can write
 * `return an_error(ALEXNET_E_SHAPE, "conv1: ...")`. */
alexnet_status an_error(alexnet_status status, const char *format, ...) AN_PRINTF(2, 3);
/* Prefix the thread's current message with "context: " (for nested failures); returns status. */
alexnet_status an_error_prefix(alexnet_status status, const char *context);
/* Clear the message at the start of a public call. */
void an_error_clear(void);

#endif
