/* The module side of the plugin contract (lib/backend/plugin.h): keeps the core's host table and checks
 * that the core is one this module can serve. Every module links plugin_host.c, which also provides the
 * an_error() family of lib/util/error.h on top of the host table, so code shared with the core (such as
 * lib/util/alloc.c) reports its messages into the core's per-thread buffer. */
#ifndef AN_GPU_PLUGIN_HOST_H
#define AN_GPU_PLUGIN_HOST_H

#include "backend/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Record the host table. Returns 0 and sets *why (static text) when the core is too old for this module
 * or was built for another backend API. Call first thing in the entry point. */
int an_plugin_host_accept(const an_plugin_host *host, const char **why);

/* The module's one exported symbol (see AN_PLUGIN_ENTRY_SYMBOL); every module defines it. */
#if defined(__GNUC__)
#define AN_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define AN_PLUGIN_EXPORT
#endif
AN_PLUGIN_EXPORT const an_backend *alexnet_plugin_entry(const an_plugin_host *host, const char **why);

/* The same functions as lib/util/error.h, declared here for C++ translation units (the CUDA module). */
alexnet_status an_error(alexnet_status status, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* 64-bit FNV-1a, for cache keys and op-sequence signatures. */
static inline uint64_t an_fnv1a(uint64_t hash, const void *data, size_t size)
{
    const unsigned char *bytes = (const unsigned char *)data;
    for (size_t i = 0; i < size; i++)
        hash = (hash ^ bytes[i]) * 0x100000001B3ull;
    return hash;
}
#define AN_FNV1A_SEED 0xCBF29CE484222325ull

#ifdef __cplusplus
}
#endif

#endif
