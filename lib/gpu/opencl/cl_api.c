#include "gpu/opencl/cl_api.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Resolve one symbol into a function pointer field. POSIX guarantees that a void * from dlsym converts to
 * a function pointer; memcpy says so without tripping -Wpedantic's object/function pointer warning. */
static int an_resolve(void *library, const char *name, void *field, size_t field_size, char *why, size_t size)
{
    void *symbol = dlsym(library, name);
    if (symbol == NULL) {
        snprintf(why, size, "the OpenCL library has no %s (an OpenCL 1.2 runtime is required)", name);
        return 0;
    }
    memcpy(field, &symbol, field_size);
    return 1;
}

#define AN_RESOLVE(field) an_resolve(library, "cl" #field, &api->field, sizeof api->field, why, size)

int an_cl_api_load(an_cl_api *api, char *why, size_t size)
{
    const char *override = getenv("ALEXNET_OPENCL_LIBRARY");
    const char *name = override != NULL && override[0] != '\0' ? override : "libOpenCL.so.1";
    void *library = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL && override == NULL)
        library = dlopen("libOpenCL.so", RTLD_NOW | RTLD_LOCAL); /* a development-only install */
    if (library == NULL) {
        const char *error = dlerror();
        snprintf(why, size, "no OpenCL runtime: cannot load %s (%s)", name, error != NULL ? error : "unknown error");
        return 0;
    }
    int ok = AN_RESOLVE(GetPlatformIDs) && AN_RESOLVE(GetPlatformInfo) && AN_RESOLVE(GetDeviceIDs) &&
             AN_RESOLVE(GetDeviceInfo) && AN_RESOLVE(CreateContext) && AN_RESOLVE(ReleaseContext) &&
             AN_RESOLVE(CreateCommandQueue) && AN_RESOLVE(ReleaseCommandQueue) && AN_RESOLVE(CreateBuffer) &&
             AN_RESOLVE(ReleaseMemObject) && AN_RESOLVE(CreateProgramWithSource) &&
             AN_RESOLVE(CreateProgramWithBinary) && AN_RESOLVE(BuildProgram) && AN_RESOLVE(GetProgramBuildInfo) &&
             AN_RESOLVE(GetProgramInfo) && AN_RESOLVE(ReleaseProgram) && AN_RESOLVE(CreateKernel) &&
             AN_RESOLVE(ReleaseKernel) && AN_RESOLVE(SetKernelArg) && AN_RESOLVE(GetKernelWorkGroupInfo) &&
             AN_RESOLVE(EnqueueNDRangeKernel) && AN_RESOLVE(EnqueueWriteBuffer) && AN_RESOLVE(EnqueueReadBuffer) &&
             AN_RESOLVE(EnqueueCopyBuffer) && AN_RESOLVE(Finish) && AN_RESOLVE(Flush);
    if (!ok) {
        dlclose(library);
        return 0;
    }
    return 1;
}

const char *an_cl_error_name(cl_int code)
{
    switch (code) {
    case CL_SUCCESS: return "CL_SUCCESS";
    case CL_DEVICE_NOT_FOUND: return "CL_DEVICE_NOT_FOUND";
    case CL_DEVICE_NOT_AVAILABLE: return "CL_DEVICE_NOT_AVAILABLE";
    case CL_COMPILER_NOT_AVAILABLE: return "CL_COMPILER_NOT_AVAILABLE";
    case CL_MEM_OBJECT_ALLOCATION_FAILURE: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case CL_OUT_OF_RESOURCES: return "CL_OUT_OF_RESOURCES";
    case CL_OUT_OF_HOST_MEMORY: return "CL_OUT_OF_HOST_MEMORY";
    case CL_BUILD_PROGRAM_FAILURE: return "CL_BUILD_PROGRAM_FAILURE";
    case CL_INVALID_VALUE: return "CL_INVALID_VALUE";
    case CL_INVALID_DEVICE: return "CL_INVALID_DEVICE";
    case CL_INVALID_BINARY: return "CL_INVALID_BINARY";
    case CL_INVALID_BUILD_OPTIONS: return "CL_INVALID_BUILD_OPTIONS";
    case CL_INVALID_PROGRAM: return "CL_INVALID_PROGRAM";
    case CL_INVALID_PROGRAM_EXECUTABLE: return "CL_INVALID_PROGRAM_EXECUTABLE";
    case CL_INVALID_KERNEL_NAME: return "CL_INVALID_KERNEL_NAME";
    case CL_INVALID_KERNEL: return "CL_INVALID_KERNEL";
    case CL_INVALID_ARG_INDEX: return "CL_INVALID_ARG_INDEX";
    case CL_INVALID_ARG_VALUE: return "CL_INVALID_ARG_VALUE";
    case CL_INVALID_ARG_SIZE: return "CL_INVALID_ARG_SIZE";
    case CL_INVALID_KERNEL_ARGS: return "CL_INVALID_KERNEL_ARGS";
    case CL_INVALID_WORK_DIMENSION: return "CL_INVALID_WORK_DIMENSION";
    case CL_INVALID_WORK_GROUP_SIZE: return "CL_INVALID_WORK_GROUP_SIZE";
    case CL_INVALID_WORK_ITEM_SIZE: return "CL_INVALID_WORK_ITEM_SIZE";
    case CL_INVALID_GLOBAL_OFFSET: return "CL_INVALID_GLOBAL_OFFSET";
    case CL_INVALID_MEM_OBJECT: return "CL_INVALID_MEM_OBJECT";
    case CL_INVALID_BUFFER_SIZE: return "CL_INVALID_BUFFER_SIZE";
    case CL_INVALID_COMMAND_QUEUE: return "CL_INVALID_COMMAND_QUEUE";
    case CL_INVALID_CONTEXT: return "CL_INVALID_CONTEXT";
    case CL_INVALID_OPERATION: return "CL_INVALID_OPERATION";
    case CL_INVALID_PLATFORM: return "CL_INVALID_PLATFORM";
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR"; /* cl_khr_icd: the loader found no platform */
    default: return "an OpenCL error";
    }
}
