#include "util/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* One message per thread: a public call clears it on entry and sets it on failure, so the text a caller
 * reads always belongs to its own last call. 512 bytes holds a tensor name and two shapes with room. */
static _Thread_local char an_error_message[512];

alexnet_status an_error(alexnet_status status, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(an_error_message, sizeof an_error_message, format, args);
    va_end(args);
    return status;
}

alexnet_status an_error_prefix(alexnet_status status, const char *context)
{
    char previous[sizeof an_error_message];
    memcpy(previous, an_error_message, sizeof previous);
    /* Bounded precisions keep the result within the buffer whatever the inputs. */
    snprintf(an_error_message, sizeof an_error_message, "%.200s: %.300s", context, previous);
    return status;
}

void an_error_clear(void) { an_error_message[0] = '\0'; }

const char *alexnet_last_error(void) { return an_error_message; }

const char *alexnet_status_string(alexnet_status status)
{
    switch (status) {
    case ALEXNET_OK: return "ok";
    case ALEXNET_E_INVALID_ARGUMENT: return "invalid argument";
    case ALEXNET_E_OUT_OF_MEMORY: return "out of memory";
    case ALEXNET_E_IO: return "input/output error";
    case ALEXNET_E_FORMAT: return "malformed file or buffer";
    case ALEXNET_E_SHAPE: return "shape mismatch";
    case ALEXNET_E_UNSUPPORTED: return "unsupported";
    case ALEXNET_E_BACKEND: return "backend failure";
    case ALEXNET_E_STATE: return "call out of order";
    case ALEXNET_E_NOT_FOUND: return "not found";
    }
    return "unknown status";
}
