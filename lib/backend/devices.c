/* Devices across backends, and "backend:index" names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "util/error.h"

size_t an_backend_device_count(const an_backend *backend)
{
    const char *why = NULL;
    if (!backend->probe(&why))
        return 0;
    return backend->device_count != NULL ? backend->device_count() : 1;
}

static alexnet_status an_device_index_parse(const char *text, uint32_t *out)
{
    char *end = NULL;
    unsigned long value = strtoul(text, &end, 10);
    if (end == text || *end != '\0' || value > 65535)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "device index \"%s\" is not a number in [0, 65535]", text);
    *out = (uint32_t)value;
    return ALEXNET_OK;
}

alexnet_status an_backend_select_device(const char *requested, const an_backend **out, uint32_t *out_index)
{
    char name[64];
    uint32_t index = 0;
    /* ALEXNET_BACKEND may name a device too; it applies only where the caller left the choice open. */
    const char *env = getenv("ALEXNET_BACKEND");
    if ((requested == NULL || strcmp(requested, "auto") == 0) && env != NULL && strchr(env, ':') != NULL)
        requested = env;
    const char *colon = requested != NULL ? strchr(requested, ':') : NULL;
    if (colon != NULL) {
        size_t length = (size_t)(colon - requested);
        if (length == 0 || length >= sizeof name)
            return an_error(ALEXNET_E_INVALID_ARGUMENT, "backend \"%s\": expected <name>:<index>", requested);
        memcpy(name, requested, length);
        name[length] = '\0';
        alexnet_status status = an_device_index_parse(colon + 1, &index);
        if (status != ALEXNET_OK)
            return status;
        requested = name;
    }
    const an_backend *backend = NULL;
    alexnet_status status = an_backend_select(requested, &backend);
    if (status != ALEXNET_OK)
        return status;
    size_t devices = an_backend_device_count(backend);
    if (index >= devices)
        return an_error(ALEXNET_E_NOT_FOUND, "backend \"%s\" has %zu device(s); there is no device %u", backend->name,
                        devices, index);
    *out = backend;
    *out_index = index;
    return ALEXNET_OK;
}

static uint64_t an_physical_memory_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
    return pages > 0 && page_size > 0 ? (uint64_t)pages * (uint64_t)page_size : 0;
}

size_t alexnet_device_count(void)
{
    size_t total = 0;
    for (size_t b = 0; b < an_backend_registry_count(); b++)
        total += an_backend_device_count(an_backend_registry_get(b));
    return total;
}

alexnet_status alexnet_device_get_info(size_t index, alexnet_device_info *out_info)
{
    an_error_clear();
    if (out_info == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_device_get_info: out_info is NULL");
    for (size_t b = 0; b < an_backend_registry_count(); b++) {
        const an_backend *backend = an_backend_registry_get(b);
        size_t devices = an_backend_device_count(backend);
        if (index >= devices) {
            index -= devices;
            continue;
        }
        alexnet_device_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        info.available = 1;
        if (backend->device_info != NULL) {
            alexnet_status status = backend->device_info(index, &info);
            if (status != ALEXNET_OK)
                return status;
        } else {
            snprintf(info.description, sizeof info.description, "%s", backend->describe());
            info.memory_bytes = an_physical_memory_bytes();
        }
        snprintf(info.name, sizeof info.name, "%s:%zu", backend->name, index);
        info.backend = backend->name;
        *out_info = info;
        return ALEXNET_OK;
    }
    return an_error(ALEXNET_E_NOT_FOUND, "alexnet_device_get_info: index beyond the %zu devices",
                    alexnet_device_count());
}
