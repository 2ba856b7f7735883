#include <string.h>

#include "backend/backend.h"
#include "util/error.h"

size_t alexnet_backend_count(void) { return an_backend_registry_count(); }

alexnet_status alexnet_backend_get_info(size_t index, alexnet_backend_info *out_info)
{
    an_error_clear();
    if (out_info == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_backend_get_info: out_info is NULL");
    const an_backend *backend = an_backend_registry_get(index);
    if (backend == NULL)
        return an_error(ALEXNET_E_NOT_FOUND, "alexnet_backend_get_info: index %zu is beyond the %zu backends", index,
                        an_backend_registry_count());
    const char *why = NULL;
    int available = backend->probe(&why);
    alexnet_backend_info info;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    info.name = backend->name;
    info.kind = backend->kind;
    info.description = available ? backend->describe() : why;
    info.available = available;
    info.score = backend->score;
    *out_info = info;
    return ALEXNET_OK;
}
