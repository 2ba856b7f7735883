/* The plugin loader: finds libalexnet-<name>.so modules, dlopens them once and hands their backend tables to
 * the registry (see plugin.h for the contract).
 *
 * Search order (the first directory holding a given file name wins, so a path set by the user overrides
 * the installed modules):
 *   1. every directory of ALEXNET_BACKEND_PATH (colon separated), in order;
 *   2. <dir>/alexnet and <dir>, where <dir> is the directory of the binary holding the core (dladdr on a
 *      core function: the shared library once installed, or a program that linked the static library).
 *
 * Nothing here allocates from the heap: the loader runs before any allocator is known, so its state is a
 * fixed number of static slots, filled once under pthread_once and read-only afterwards. */
#include "backend/plugin.h"

#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/error.h"

#define AN_PLUGIN_MAX 8
#define AN_PLUGIN_DIRS_MAX 16
#define AN_PLUGIN_DIR_BYTES 1024
#define AN_PLUGIN_NAME_BYTES 32

/* Modules the core always lists, found or not, so that "cuda" says why it is unavailable rather than
 * being an unknown name. Others found on the search path are listed after these. */
static const char *const an_known_plugins[] = {"opencl", "cuda"};
#define AN_KNOWN_PLUGIN_COUNT (sizeof an_known_plugins / sizeof an_known_plugins[0])

typedef struct an_plugin_slot {
    char module[AN_PLUGIN_NAME_BYTES]; /* <name> of libalexnet-<name>.so */
    const an_backend *backend;         /* the module's table, or &stub */
    an_backend stub;                   /* stand-in for a module that could not be used */
    char why[384];                     /* the stand-in's reason */
    void *handle;
} an_plugin_slot;

static an_plugin_slot an_plugins[AN_PLUGIN_MAX];
static size_t an_plugin_slots;
static pthread_once_t an_plugins_once = PTHREAD_ONCE_INIT;

/* A stand-in's probe must find its own reason, and probe() takes no argument: one function per slot. */
#define AN_STUB_FUNCTIONS(i)                                                                                  \
    static int an_stub_probe_##i(const char **why)                                                           \
    {                                                                                                         \
        *why = an_plugins[i].why;                                                                             \
        return 0;                                                                                             \
    }                                                                                                         \
    static const char *an_stub_describe_##i(void) { return an_plugins[i].why; }
AN_STUB_FUNCTIONS(0)
AN_STUB_FUNCTIONS(1)
AN_STUB_FUNCTIONS(2)
AN_STUB_FUNCTIONS(3)
AN_STUB_FUNCTIONS(4)
AN_STUB_FUNCTIONS(5)
AN_STUB_FUNCTIONS(6)
AN_STUB_FUNCTIONS(7)
static int (*const an_stub_probes[AN_PLUGIN_MAX])(const char **) = {
    an_stub_probe_0, an_stub_probe_1, an_stub_probe_2, an_stub_probe_3,
    an_stub_probe_4, an_stub_probe_5, an_stub_probe_6, an_stub_probe_7,
};
static const char *(*const an_stub_describes[AN_PLUGIN_MAX])(void) = {
    an_stub_describe_0, an_stub_describe_1, an_stub_describe_2, an_stub_describe_3,
    an_stub_describe_4, an_stub_describe_5, an_stub_describe_6, an_stub_describe_7,
};

/* ---- host services ---- */

static alexnet_status an_host_set_error(alexnet_status status, const char *message)
{
    if (message == NULL || message[0] == '\0') {
        an_error_clear();
        return status;
    }
    return an_error(status, "%s", message);
}

static const char *an_host_get_error(void) { return alexnet_last_error(); }

static const an_plugin_host an_host = {
    .host_version = AN_PLUGIN_HOST_VERSION,
    .backend_api_version = AN_BACKEND_API_VERSION,
    .core_version = ALEXNET_VERSION_STRING,
    .set_error = an_host_set_error,
    .get_error = an_host_get_error,
};

/* ---- search path ---- */

typedef struct an_search_path {
    char dirs[AN_PLUGIN_DIRS_MAX][AN_PLUGIN_DIR_BYTES];
    size_t count;
} an_search_path;

static void an_search_add(an_search_path *path, const char *dir, size_t length)
{
    if (length == 0 || length >= AN_PLUGIN_DIR_BYTES || path->count == AN_PLUGIN_DIRS_MAX)
        return;
    memcpy(path->dirs[path->count], dir, length);
    path->dirs[path->count][length] = '\0';
    for (size_t i = 0; i < path->count; i++) {
        if (strcmp(path->dirs[i], path->dirs[path->count]) == 0)
            return; /* already searched */
    }
    path->count++;
}

static void an_search_path_build(an_search_path *path)
{
    path->count = 0;
    const char *env = getenv("ALEXNET_BACKEND_PATH");
    while (env != NULL && *env != '\0') {
        const char *colon = strchr(env, ':');
        size_t length = colon != NULL ? (size_t)(colon - env) : strlen(env);
        an_search_add(path, env, length);
        env = colon != NULL ? colon + 1 : NULL;
    }
    /* The directory of whatever binary holds this function: the installed core puts modules beside it. */
    Dl_info info;
    if (dladdr((void *)(uintptr_t)an_plugin_backend_count, &info) != 0 && info.dli_fname != NULL) {
        const char *slash = strrchr(info.dli_fname, '/');
        if (slash != NULL) {
            size_t length = slash == info.dli_fname ? 1 : (size_t)(slash - info.dli_fname);
            char dir[AN_PLUGIN_DIR_BYTES];
            if (length + sizeof "/alexnet" < sizeof dir) {
                memcpy(dir, info.dli_fname, length);
                memcpy(dir + length, "/alexnet", sizeof "/alexnet");
                an_search_add(path, dir, length + sizeof "/alexnet" - 1);
                an_search_add(path, dir, length);
            }
        }
    }
}

/* "<name>" from "libalexnet-<name>.so", or 0 when the file is not a module's. */
static int an_module_name(const char *file, char *name, size_t size)
{
    size_t prefix = strlen(AN_PLUGIN_FILE_PREFIX), suffix = strlen(AN_PLUGIN_FILE_SUFFIX);
    size_t length = strlen(file);
    if (length <= prefix + suffix || strncmp(file, AN_PLUGIN_FILE_PREFIX, prefix) != 0 ||
        strcmp(file + length - suffix, AN_PLUGIN_FILE_SUFFIX) != 0)
        return 0;
    size_t name_length = length - prefix - suffix;
    if (name_length >= size)
        return 0;
    for (size_t i = 0; i < name_length; i++) {
        char c = file[prefix + i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return 0;
    }
    memcpy(name, file + prefix, name_length);
    name[name_length] = '\0';
    return 1;
}

static an_plugin_slot *an_slot_find(const char *module)
{
    for (size_t i = 0; i < an_plugin_slots; i++) {
        if (strcmp(an_plugins[i].module, module) == 0)
            return &an_plugins[i];
    }
    return NULL;
}

static an_plugin_slot *an_slot_new(const char *module)
{
    if (an_plugin_slots == AN_PLUGIN_MAX)
        return NULL;
    size_t index = an_plugin_slots++;
    an_plugin_slot *slot = &an_plugins[index];
    memset(slot, 0, sizeof *slot);
    snprintf(slot->module, sizeof slot->module, "%.31s", module);
    slot->stub.api_version = AN_BACKEND_API_VERSION;
    slot->stub.name = slot->module;
    slot->stub.kind = "gpu";
    slot->stub.score = 0;
    slot->stub.probe = an_stub_probes[index];
    slot->stub.describe = an_stub_describes[index];
    slot->backend = &slot->stub;
    return slot;
}

/* The module's table replaces the stand-in only when it is usable; otherwise the slot says why. */
static void an_slot_load(an_plugin_slot *slot, const char *path)
{
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        const char *error = dlerror();
        snprintf(slot->why, sizeof slot->why, "cannot load %.160s: %.200s", path, error != NULL ? error : "unknown error");
        return;
    }
    an_plugin_entry_fn entry;
    void *symbol = dlsym(handle, AN_PLUGIN_ENTRY_SYMBOL);
    /* POSIX guarantees data and function pointers convert; memcpy keeps -Wpedantic quiet about it. */
    memcpy(&entry, &symbol, sizeof entry);
    if (entry == NULL) {
        snprintf(slot->why, sizeof slot->why, "%.200s exports no %s", path, AN_PLUGIN_ENTRY_SYMBOL);
        dlclose(handle);
        return;
    }
    const char *refusal = "no reason given";
    const an_backend *backend = entry(&an_host, &refusal);
    if (backend == NULL) {
        snprintf(slot->why, sizeof slot->why, "%.200s refused to load: %.160s", path, refusal);
        dlclose(handle);
        return;
    }
    /* Only the first field is read before the version is known to match: the rest may have another shape. */
    if (backend->api_version != AN_BACKEND_API_VERSION) {
        snprintf(slot->why, sizeof slot->why, "%.200s was built for backend API %u, this library has %u", path,
                 backend->api_version, AN_BACKEND_API_VERSION);
        dlclose(handle);
        return;
    }
    for (size_t i = 0; i < an_plugin_slots; i++) {
        if (&an_plugins[i] != slot && strcmp(an_plugins[i].backend->name, backend->name) == 0) {
            snprintf(slot->why, sizeof slot->why, "%.200s names its backend \"%.31s\", which is already taken", path,
                     backend->name);
            dlclose(handle);
            return;
        }
    }
    slot->handle = handle; /* kept for the life of the process: tables and strings point into it */
    slot->backend = backend;
}

static int an_compare_names(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* Every module file in one directory, in name order so the registry order does not depend on readdir. */
static void an_scan_directory(const char *dir)
{
    char names[AN_PLUGIN_MAX * 2][AN_PLUGIN_NAME_BYTES];
    size_t count = 0;
    DIR *handle = opendir(dir);
    if (handle == NULL)
        return;
    struct dirent *entry;
    while ((entry = readdir(handle)) != NULL && count < sizeof names / sizeof names[0]) {
        if (an_module_name(entry->d_name, names[count], sizeof names[count]))
            count++;
    }
    closedir(handle);
    qsort(names, count, sizeof names[0], an_compare_names);
    for (size_t i = 0; i < count; i++) {
        an_plugin_slot *slot = an_slot_find(names[i]);
        if (slot != NULL && (slot->handle != NULL || slot->why[0] != '\0'))
            continue; /* an earlier directory had it */
        if (slot == NULL && (slot = an_slot_new(names[i])) == NULL)
            return;
        char path[AN_PLUGIN_DIR_BYTES + AN_PLUGIN_NAME_BYTES + 32];
        snprintf(path, sizeof path, "%s/" AN_PLUGIN_FILE_PREFIX "%s" AN_PLUGIN_FILE_SUFFIX, dir, names[i]);
        an_slot_load(slot, path);
    }
}

static an_search_path an_path; /* static: 16 KiB is too much for the stack of a caller's thread */

static void an_plugins_load_once(void)
{
    an_search_path_build(&an_path);
    for (size_t i = 0; i < AN_KNOWN_PLUGIN_COUNT; i++)
        an_slot_new(an_known_plugins[i]);
    for (size_t d = 0; d < an_path.count; d++)
        an_scan_directory(an_path.dirs[d]);
    /* Known modules that no directory held. */
    for (size_t i = 0; i < an_plugin_slots; i++) {
        an_plugin_slot *slot = &an_plugins[i];
        if (slot->handle != NULL || slot->why[0] != '\0')
            continue;
        char module[AN_PLUGIN_NAME_BYTES]; /* a copy: snprintf must not read the object it writes */
        memcpy(module, slot->module, sizeof module);
        int used = snprintf(slot->why, sizeof slot->why,
                            "module " AN_PLUGIN_FILE_PREFIX "%s" AN_PLUGIN_FILE_SUFFIX " not found (searched:",
                            module);
        for (size_t d = 0; d < an_path.count && used > 0 && (size_t)used < sizeof slot->why; d++)
            used += snprintf(slot->why + used, sizeof slot->why - (size_t)used, " %s", an_path.dirs[d]);
        if (used > 0 && (size_t)used < sizeof slot->why)
            snprintf(slot->why + used, sizeof slot->why - (size_t)used, "%s; set ALEXNET_BACKEND_PATH)",
                     an_path.count == 0 ? " nothing" : "");
    }
}

size_t an_plugin_backend_count(void)
{
    pthread_once(&an_plugins_once, an_plugins_load_once);
    return an_plugin_slots;
}

const an_backend *an_plugin_backend_get(size_t index)
{
    return index < an_plugin_backend_count() ? an_plugins[index].backend : NULL;
}

int an_plugin_backend_loaded(size_t index)
{
    return index < an_plugin_backend_count() && an_plugins[index].handle != NULL;
}
