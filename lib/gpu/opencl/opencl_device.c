/* OpenCL devices: loading the runtime, enumerating devices once per process, and building the kernels'
 * program per device with an on-disk cache of program binaries.
 *
 * Program cache. Compiling the kernels takes from a fraction of a second (GPU drivers) to several seconds
 * (PoCL, which runs LLVM). The first build on a device stores the driver's binary under
 * $XDG_CACHE_HOME/alexnet (else $HOME/.cache/alexnet) as opencl-<key>.bin, where the key hashes the kernel
 * source, the build options, the platform and device names and versions and the driver version, so a new
 * driver or a changed kernel never loads a stale binary. The file starts with a magic, the full key and the
 * binary's size, all checked on load. Every cache failure (no home, read-only disk, a driver that gives no
 * binaries or rejects one) is silent: the program is then built from source. ALEXNET_OPENCL_CACHE=0
 * disables the cache. Files are written to a temporary name and renamed, so concurrent processes never see a
 * partial file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gpu/common/plugin_host.h"
#include "gpu/opencl/opencl_internal.h"
#include "util/alloc.h"
#include "util/error.h"

extern const char an_opencl_kernels[];
extern const size_t an_opencl_kernels_length;

/* OpenCL C 1.2 everywhere; no fast-math flags: NaN must propagate through max pooling and the results are
 * compared with the reference to 1e-4. */
#define AN_CL_BUILD_OPTIONS "-cl-std=CL1.2"
#define AN_CL_CACHE_MAGIC "ANCLBIN1"

an_cl_state an_cl;
static pthread_once_t an_cl_once = PTHREAD_ONCE_INIT;

/* ---- enumeration ---- */

static void an_cl_device_string(cl_device_id id, cl_device_info what, char *out, size_t size)
{
    out[0] = '\0';
    if (an_cl.api.GetDeviceInfo(id, what, size, out, NULL) != CL_SUCCESS)
        out[0] = '\0';
    out[size - 1] = '\0';
}

static int an_cl_type_rank(cl_device_type type)
{
    if (type & CL_DEVICE_TYPE_GPU)
        return 0;
    if (type & CL_DEVICE_TYPE_ACCELERATOR)
        return 1;
    if (type & CL_DEVICE_TYPE_CPU)
        return 2;
    return 3;
}

static const char *an_cl_type_name(cl_device_type type)
{
    static const char *const names[] = {"GPU", "accelerator", "CPU", "other"};
    return names[an_cl_type_rank(type)];
}

static void an_cl_device_fill(an_cl_device *d, cl_platform_id platform, cl_device_id id)
{
    const an_cl_api *api = &an_cl.api;
    memset(d, 0, sizeof *d);
    d->platform = platform;
    d->id = id;
    pthread_mutex_init(&d->lock, NULL);
    api->GetDeviceInfo(id, CL_DEVICE_TYPE, sizeof d->type, &d->type, NULL);
    an_cl_device_string(id, CL_DEVICE_NAME, d->name, sizeof d->name);
    an_cl_device_string(id, CL_DEVICE_VERSION, d->version, sizeof d->version);
    an_cl_device_string(id, CL_DRIVER_VERSION, d->driver, sizeof d->driver);
    if (api->GetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof d->platform_name, d->platform_name, NULL) !=
        CL_SUCCESS)
        d->platform_name[0] = '\0';
    d->platform_name[sizeof d->platform_name - 1] = '\0';
    cl_ulong memory = 0, max_alloc = 0, local = 0;
    size_t work_group = 0;
    cl_bool available = CL_FALSE, compiler = CL_FALSE;
    api->GetDeviceInfo(id, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof memory, &memory, NULL);
    api->GetDeviceInfo(id, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof max_alloc, &max_alloc, NULL);
    api->GetDeviceInfo(id, CL_DEVICE_LOCAL_MEM_SIZE, sizeof local, &local, NULL);
    api->GetDeviceInfo(id, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof work_group, &work_group, NULL);
    api->GetDeviceInfo(id, CL_DEVICE_AVAILABLE, sizeof available, &available, NULL);
    api->GetDeviceInfo(id, CL_DEVICE_COMPILER_AVAILABLE, sizeof compiler, &compiler, NULL);
    d->memory_bytes = memory;
    d->max_alloc_bytes = max_alloc;
    d->local_memory_bytes = local;
    d->max_work_group = work_group;
    /* The GEMM kernels need 16 x 16 work-groups and two padded 16 x 65 float tiles (8.3 KB) of local memory. */
    d->usable = 0;
    if (!available)
        d->unusable_why = "the device reports itself unavailable";
    else if (!compiler)
        d->unusable_why = "the device has no OpenCL C compiler";
    else if (work_group < 256)
        d->unusable_why = "the device's work-groups are smaller than 256";
    else if (local < 16384)
        d->unusable_why = "the device has less than 16 KB of local memory";
    else
        d->usable = 1;
    char description[sizeof d->description];
    snprintf(description, sizeof description, "%.56s (%.28s, %s, %.20s)", d->name, d->platform_name,
             an_cl_type_name(d->type), d->version);
    memcpy(d->description, description, sizeof description);
}

static void an_cl_probe_once(void)
{
    an_cl_state *s = &an_cl;
    if (!an_cl_api_load(&s->api, s->why, sizeof s->why))
        return;
    cl_platform_id platforms[8];
    cl_uint platform_count = 0;
    cl_int error = s->api.GetPlatformIDs(8, platforms, &platform_count);
    if (error != CL_SUCCESS || platform_count == 0) {
        snprintf(s->why, sizeof s->why,
                 "no OpenCL platform: the ICD loader found no driver (%s); install one, e.g. pocl-opencl-icd",
                 error != CL_SUCCESS ? an_cl_error_name(error) : "0 platforms");
        return;
    }
    if (platform_count > 8)
        platform_count = 8;
    /* GPUs first, then accelerators, then CPUs, each in platform order: "opencl" (device 0) is a GPU
     * whenever there is one. */
    for (int rank = 0; rank < 4; rank++) {
        for (cl_uint p = 0; p < platform_count; p++) {
            cl_device_id ids[AN_CL_MAX_DEVICES];
            cl_uint count = 0;
            if (s->api.GetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, AN_CL_MAX_DEVICES, ids, &count) != CL_SUCCESS)
                continue;
            if (count > AN_CL_MAX_DEVICES)
                count = AN_CL_MAX_DEVICES;
            for (cl_uint i = 0; i < count && s->device_count < AN_CL_MAX_DEVICES; i++) {
                cl_device_type type = 0;
                s->api.GetDeviceInfo(ids[i], CL_DEVICE_TYPE, sizeof type, &type, NULL);
                if (an_cl_type_rank(type) == rank)
                    an_cl_device_fill(&s->devices[s->device_count++], platforms[p], ids[i]);
            }
        }
    }
    const an_cl_device *first = NULL;
    for (size_t i = 0; i < s->device_count; i++) {
        if (s->devices[i].usable) {
            first = first != NULL ? first : &s->devices[i];
            s->has_gpu |= (s->devices[i].type & CL_DEVICE_TYPE_GPU) != 0;
        }
    }
    if (first == NULL) {
        if (s->device_count == 0)
            snprintf(s->why, sizeof s->why, "no OpenCL device on %u platform(s)", platform_count);
        else
            snprintf(s->why, sizeof s->why, "no usable OpenCL device: %.80s: %s", s->devices[0].name,
                     s->devices[0].unusable_why);
        return;
    }
    snprintf(s->description, sizeof s->description, "OpenCL 1.2 kernels on %s%s", first->description,
             s->device_count > 1 ? " and more (see alexnet_device_get_info)" : "");
    s->available = 1;
}

const an_cl_state *an_cl_probe_state(void)
{
    pthread_once(&an_cl_once, an_cl_probe_once);
    return &an_cl;
}

/* ---- the program binary cache ---- */

static uint64_t an_cl_cache_key(const an_cl_device *d)
{
    uint64_t h = an_fnv1a(AN_FNV1A_SEED, an_opencl_kernels, an_opencl_kernels_length);
    const char *parts[] = {AN_CL_BUILD_OPTIONS, d->platform_name, d->name, d->version, d->driver};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        h = an_fnv1a(h, parts[i], strlen(parts[i]) + 1);
    return h;
}

/* The cache directory (created if missing) into dir; 0 when there is none to use. */
static int an_cl_cache_dir(char *dir, size_t size)
{
    const char *off = getenv("ALEXNET_OPENCL_CACHE");
    if (off != NULL && strcmp(off, "0") == 0)
        return 0;
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (xdg != NULL && xdg[0] == '/')
        n = snprintf(dir, size, "%s", xdg);
    else if (home != NULL && home[0] == '/')
        n = snprintf(dir, size, "%s/.cache", home);
    else
        return 0;
    if (n <= 0 || (size_t)n + sizeof "/alexnet" >= size)
        return 0;
    (void)mkdir(dir, 0700); /* may exist; a real failure shows when the file is opened */
    memcpy(dir + n, "/alexnet", sizeof "/alexnet");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return 0;
    return 1;
}

static int an_cl_cache_path(const an_cl_device *d, uint64_t key, char *path, size_t size)
{
    char dir[1024];
    if (!an_cl_cache_dir(dir, sizeof dir))
        return 0;
    (void)d;
    int n = snprintf(path, size, "%s/opencl-%016llx.bin", dir, (unsigned long long)key);
    return n > 0 && (size_t)n < size;
}

static int an_read_all(int fd, void *buffer, size_t size)
{
    unsigned char *p = buffer;
    while (size > 0) {
        ssize_t got = read(fd, p, size);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return 0;
        p += got;
        size -= (size_t)got;
    }
    return 1;
}

static int an_write_all(int fd, const void *buffer, size_t size)
{
    const unsigned char *p = buffer;
    while (size > 0) {
        ssize_t put = write(fd, p, size);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0)
            return 0;
        p += put;
        size -= (size_t)put;
    }
    return 1;
}

/* A program built from the cached binary, or NULL (silently) when there is none or it does not build. */
static cl_program an_cl_cache_load(an_cl_device *d, uint64_t key, const alexnet_allocator *allocator)
{
    char path[1100];
    if (!an_cl_cache_path(d, key, path, sizeof path))
        return NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    unsigned char header[24];
    uint64_t stored_key = 0, size = 0;
    cl_program program = NULL;
    struct stat st;
    if (fstat(fd, &st) == 0 && an_read_all(fd, header, sizeof header) &&
        memcmp(header, AN_CL_CACHE_MAGIC, 8) == 0) {
        memcpy(&stored_key, header + 8, 8);
        memcpy(&size, header + 16, 8);
        if (stored_key == key && size > 0 && (uint64_t)st.st_size == size + sizeof header && size < (1u << 30)) {
            unsigned char *binary = allocator->alloc(allocator->user, (size_t)size, 64);
            if (binary != NULL) {
                if (an_read_all(fd, binary, (size_t)size)) {
                    const unsigned char *binaries[1] = {binary};
                    size_t lengths[1] = {(size_t)size};
                    cl_int status = CL_SUCCESS, error = CL_SUCCESS;
                    program = an_cl.api.CreateProgramWithBinary(d->context, 1, &d->id, lengths, binaries, &status,
                                                                &error);
                    if (program != NULL && (error != CL_SUCCESS || status != CL_SUCCESS ||
                                            an_cl.api.BuildProgram(program, 1, &d->id, AN_CL_BUILD_OPTIONS, NULL,
                                                                   NULL) != CL_SUCCESS)) {
                        an_cl.api.ReleaseProgram(program);
                        program = NULL;
                    }
                }
                allocator->free(allocator->user, binary, (size_t)size);
            }
        }
    }
    close(fd);
    return program;
}

static void an_cl_cache_store(an_cl_device *d, cl_program program, uint64_t key, const alexnet_allocator *allocator)
{
    char path[1100], temporary[1200];
    if (!an_cl_cache_path(d, key, path, sizeof path))
        return;
    size_t size = 0;
    if (an_cl.api.GetProgramInfo(program, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, NULL) != CL_SUCCESS ||
        size == 0)
        return; /* the driver keeps no binaries */
    unsigned char *binary = allocator->alloc(allocator->user, size, 64);
    if (binary == NULL)
        return;
    unsigned char *binaries[1] = {binary};
    if (an_cl.api.GetProgramInfo(program, CL_PROGRAM_BINARIES, sizeof binaries, binaries, NULL) == CL_SUCCESS) {
        snprintf(temporary, sizeof temporary, "%s.%ld.tmp", path, (long)getpid());
        int fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            unsigned char header[24];
            uint64_t size64 = size;
            memcpy(header, AN_CL_CACHE_MAGIC, 8);
            memcpy(header + 8, &key, 8);
            memcpy(header + 16, &size64, 8);
            int ok = an_write_all(fd, header, sizeof header) && an_write_all(fd, binary, size);
            ok = close(fd) == 0 && ok;
            if (!ok || rename(temporary, path) != 0)
                (void)unlink(temporary);
        }
    }
    allocator->free(allocator->user, binary, size);
}

/* ---- building ---- */

static alexnet_status an_cl_build_from_source(an_cl_device *d, const alexnet_allocator *allocator, cl_program *out)
{
    const char *sources[1] = {an_opencl_kernels};
    size_t lengths[1] = {an_opencl_kernels_length};
    cl_int error = CL_SUCCESS;
    cl_program program = an_cl.api.CreateProgramWithSource(d->context, 1, sources, lengths, &error);
    if (program == NULL || error != CL_SUCCESS)
        return an_cl_fail(error, "clCreateProgramWithSource");
    error = an_cl.api.BuildProgram(program, 1, &d->id, AN_CL_BUILD_OPTIONS, NULL, NULL);
    if (error != CL_SUCCESS) {
        /* The head of the build log names the first problem; it goes into the message, nothing is printed.
         * The query fails unless the buffer holds the whole log, hence the size first. */
        char log[300] = "(no build log)";
        size_t size = 0;
        if (an_cl.api.GetProgramBuildInfo(program, d->id, CL_PROGRAM_BUILD_LOG, 0, NULL, &size) == CL_SUCCESS &&
            size > 1) {
            char *full = allocator->alloc(allocator->user, size, 64);
            if (full != NULL) {
                if (an_cl.api.GetProgramBuildInfo(program, d->id, CL_PROGRAM_BUILD_LOG, size, full, NULL) ==
                    CL_SUCCESS) {
                    full[size - 1] = '\0';
                    snprintf(log, sizeof log, "%s", full);
                }
                allocator->free(allocator->user, full, size);
            }
        }
        an_cl.api.ReleaseProgram(program);
        return an_error(ALEXNET_E_BACKEND, "opencl: building the kernels for %s failed (%s): %s", d->name,
                        an_cl_error_name(error), log);
    }
    *out = program;
    return ALEXNET_OK;
}

alexnet_status an_cl_device_program(an_cl_device *d, const alexnet_allocator *allocator)
{
    alexnet_status status = ALEXNET_OK;
    pthread_mutex_lock(&d->lock);
    if (d->context == NULL) {
        cl_context_properties properties[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)d->platform, 0};
        cl_int error = CL_SUCCESS;
        d->context = an_cl.api.CreateContext(properties, 1, &d->id, NULL, NULL, &error);
        if (d->context == NULL || error != CL_SUCCESS) {
            d->context = NULL;
            status = an_cl_fail(error, "clCreateContext");
        }
    }
    if (status == ALEXNET_OK && d->program == NULL) {
        uint64_t key = an_cl_cache_key(d);
        d->program = an_cl_cache_load(d, key, allocator);
        if (d->program == NULL) {
            status = an_cl_build_from_source(d, allocator, &d->program);
            if (status == ALEXNET_OK)
                an_cl_cache_store(d, d->program, key, allocator);
        }
    }
    pthread_mutex_unlock(&d->lock);
    return status;
}

alexnet_status an_cl_fail(cl_int code, const char *what)
{
    alexnet_status status = code == CL_MEM_OBJECT_ALLOCATION_FAILURE || code == CL_OUT_OF_RESOURCES ||
                                    code == CL_OUT_OF_HOST_MEMORY || code == CL_INVALID_BUFFER_SIZE
                                ? ALEXNET_E_OUT_OF_MEMORY
                                : ALEXNET_E_BACKEND;
    return an_error(status, "opencl: %s failed: %s (%d)", what, an_cl_error_name(code), (int)code);
}
