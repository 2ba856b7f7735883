/* The backend registry: the built-in backends, then the plugins lib/backend/plugin.c loaded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/plugin.h"
#include "util/error.h"

extern const an_backend an_reference_backend;
extern const an_backend an_cpu_simd_backend;

/* The reference stays first (index 0): the oracle is always there, whatever else this build has. */
static const an_backend *const an_builtin_backends[] = {
    &an_reference_backend,
    &an_cpu_simd_backend,
};

#define AN_BUILTIN_BACKEND_COUNT (sizeof an_builtin_backends / sizeof an_builtin_backends[0])

/* Built-in backends first, then the plugins (lib/backend/plugin.c loads them at the first call). */
size_t an_backend_registry_count(void) { return AN_BUILTIN_BACKEND_COUNT + an_plugin_backend_count(); }

const an_backend *an_backend_registry_get(size_t index)
{
    return index < AN_BUILTIN_BACKEND_COUNT ? an_builtin_backends[index]
                                            : an_plugin_backend_get(index - AN_BUILTIN_BACKEND_COUNT);
}

static int an_backend_usable(const an_backend *backend)
{
    const char *why = NULL;
    return backend->api_version == AN_BACKEND_API_VERSION && backend->probe(&why);
}

/* The usable backend with the highest score, optionally restricted to one kind. */
static const an_backend *an_backend_best(const char *kind)
{
    const an_backend *best = NULL;
    for (size_t i = 0; i < an_backend_registry_count(); i++) {
        const an_backend *candidate = an_backend_registry_get(i);
        if (kind != NULL && strcmp(candidate->kind, kind) != 0)
            continue;
        if (an_backend_usable(candidate) && (best == NULL || candidate->score > best->score))
            best = candidate;
    }
    return best;
}

/* The names a request may use, from the registry itself (so the list cannot go stale): the built-in
 * backends and loaded modules, then the modules that were looked for or found but could not be loaded
 * (their reason is in alexnet_backend_get_info). */
static void an_backend_names(char *text, size_t size)
{
    size_t used = (size_t)snprintf(text, size, "known: auto, cpu");
    for (int loaded = 1; loaded >= 0; loaded--) {
        int first = 1;
        for (size_t i = 0; i < an_backend_registry_count() && used < size; i++) {
            int is_plugin = i >= AN_BUILTIN_BACKEND_COUNT;
            if ((!is_plugin || an_plugin_backend_loaded(i - AN_BUILTIN_BACKEND_COUNT)) != loaded)
                continue;
            const char *separator = !first ? ", " : loaded ? ", " : "; plugin modules not loaded: ";
            used += (size_t)snprintf(text + used, size - used, "%s%s", separator, an_backend_registry_get(i)->name);
            first = 0;
        }
    }
}

static alexnet_status an_backend_by_name(const char *name, const char *source, const an_backend **out)
{
    if (strcmp(name, "auto") == 0) {
        *out = an_backend_best(NULL);
    } else if (strcmp(name, "cpu") == 0) {
        *out = an_backend_best("cpu");
    } else {
        for (size_t i = 0; i < an_backend_registry_count(); i++) {
            const an_backend *candidate = an_backend_registry_get(i);
            if (strcmp(candidate->name, name) != 0)
                continue;
            const char *why = "unknown reason";
            if (candidate->api_version != AN_BACKEND_API_VERSION)
                return an_error(ALEXNET_E_UNSUPPORTED, "%s\"%s\": built for backend API %u, the library has %u",
                                source, name, candidate->api_version, AN_BACKEND_API_VERSION);
            if (!candidate->probe(&why))
                return an_error(ALEXNET_E_UNSUPPORTED, "%sbackend \"%s\" is unavailable: %s", source, name, why);
            *out = candidate;
            return ALEXNET_OK;
        }
        char names[320];
        an_backend_names(names, sizeof names);
        return an_error(ALEXNET_E_NOT_FOUND, "%sno backend named \"%.64s\" (%s)", source, name, names);
    }
    if (*out == NULL)
        return an_error(ALEXNET_E_UNSUPPORTED, "%sno usable backend for \"%s\"", source, name);
    return ALEXNET_OK;
}

alexnet_status an_backend_select(const char *requested, const an_backend **out)
{
    if (requested == NULL || strcmp(requested, "auto") == 0) {
        /* The environment applies only where the caller left the choice to us. */
        const char *env = getenv("ALEXNET_BACKEND");
        if (env != NULL && env[0] != '\0')
            return an_backend_by_name(env, "ALEXNET_BACKEND: ", out);
        return an_backend_by_name("auto", "", out);
    }
    return an_backend_by_name(requested, "", out);
}
