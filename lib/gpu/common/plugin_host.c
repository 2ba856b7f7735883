/* lib/util/error.h implemented through the core's host services (see plugin_host.h). */
#include "gpu/common/plugin_host.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util/error.h"

/* Written once by the entry point, before the core can call anything else in the module; the core's
 * pthread_once orders that write before every later call. */
static const an_plugin_host *an_host;

int an_plugin_host_accept(const an_plugin_host *host, const char **why)
{
    if (host == NULL || host->host_version < 1 || host->set_error == NULL || host->get_error == NULL) {
        *why = "the core offers no usable host services";
        return 0;
    }
    if (host->backend_api_version != AN_BACKEND_API_VERSION) {
        *why = "the core was built for another backend API version";
        return 0;
    }
    an_host = host;
    return 1;
}

alexnet_status an_error(alexnet_status status, const char *format, ...)
{
    char message[512];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    if (an_host != NULL)
        an_host->set_error(status, message);
    return status;
}

alexnet_status an_error_prefix(alexnet_status status, const char *context)
{
    if (an_host == NULL)
        return status;
    char message[512];
    /* Bounded precisions keep the result within the buffer whatever the inputs, as in lib/util/error.c. */
    snprintf(message, sizeof message, "%.200s: %.300s", context, an_host->get_error());
    an_host->set_error(status, message);
    return status;
}

void an_error_clear(void)
{
    if (an_host != NULL)
        an_host->set_error(ALEXNET_OK, "");
}
