/* Backend plugins: GPU backends live in shared modules (libalexnet-<name>.so) that the core dlopens at run
 * time, so the core itself never links a GPU runtime.
 *
 * The contract between the core and a module is this header plus backend.h:
 *  - the module exports exactly one symbol, AN_PLUGIN_ENTRY_SYMBOL, of type an_plugin_entry_fn;
 *  - the core calls it once, with a host-services table that stays valid for the life of the process, and
 *    gets back the module's an_backend table (or NULL and a static reason);
 *  - the module routes every error message through host->set_error. Its own copy of lib/util/error.c would
 *    write a thread-local buffer of its own that alexnet_last_error() never reads, so a module links
 *    lib/gpu/common/plugin_host.c instead, which implements an_error() on top of the host table;
 *  - the table's api_version must equal the core's AN_BACKEND_API_VERSION, else the module is listed as
 *    unavailable and never called.
 *
 * Loading (lib/backend/plugin.c) happens once per process, lazily at the first registry use, and is
 * thread-safe. Modules are never unloaded. The entry point runs inside that one-time initialisation, so it
 * must not call back into the core. Known limitation: a process holding two copies of the core (a program
 * that links libalexnet.a and also loads libalexnet.so) dlopens each module once, and the later core's host
 * table replaces the earlier one inside the module. */
#ifndef AN_BACKEND_PLUGIN_H
#define AN_BACKEND_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"

#define AN_PLUGIN_ENTRY_SYMBOL "alexnet_plugin_entry"
/* Raised when the host table changes shape; fields are only ever appended. */
#define AN_PLUGIN_HOST_VERSION 1
/* Module file names: AN_PLUGIN_FILE_PREFIX <name> AN_PLUGIN_FILE_SUFFIX, e.g. libalexnet-opencl.so. */
#define AN_PLUGIN_FILE_PREFIX "libalexnet-"
#define AN_PLUGIN_FILE_SUFFIX ".so"

/* What the core offers a module. */
typedef struct an_plugin_host {
    uint32_t host_version;        /* AN_PLUGIN_HOST_VERSION of the core */
    uint32_t backend_api_version; /* AN_BACKEND_API_VERSION of the core */
    const char *core_version;     /* ALEXNET_VERSION_STRING of the core */
    /* Set the calling thread's message (what alexnet_last_error() returns) to `message`; returns status. */
    alexnet_status (*set_error)(alexnet_status status, const char *message);
    /* The calling thread's current message; never NULL. */
    const char *(*get_error)(void);
} an_plugin_host;

/* The module's entry point. On refusal returns NULL and sets *why to static text. */
typedef const an_backend *(*an_plugin_entry_fn)(const an_plugin_host *host, const char **why);

/* ---- core side (lib/backend/plugin.c) ---- */
/* Backends that come from modules, after the built-in ones in the registry. Every module the core knows of
 * ("opencl", "cuda") has an entry even when it could not be loaded: a stand-in whose probe fails with the
 * reason (not found, dlopen error, API mismatch). The first call loads everything. */
size_t an_plugin_backend_count(void);
const an_backend *an_plugin_backend_get(size_t index);
/* Nonzero when entry `index` is a module's own table; 0 for a stand-in (a module looked for or found that
 * could not be loaded). Says nothing about devices: that is the backend's probe. */
int an_plugin_backend_loaded(size_t index);

#endif
