/* State shared by the OpenCL backend's files: the process-wide device table (opencl_device.c) and the
 * per-context state with its kernels (opencl_backend.c, opencl_train.c). */
#ifndef AN_GPU_OPENCL_INTERNAL_H
#define AN_GPU_OPENCL_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "gpu/opencl/cl_api.h"

#define AN_CL_MAX_DEVICES 16

/* One OpenCL device. Everything but `context` and `program` is written once by the probe. The program is
 * built the first time a context is created on the device and then shared by every context on it (a
 * cl_program and cl_context are thread-safe; each alexnet context has its own queue and kernels, since
 * clSetKernelArg on a shared kernel would race). */
typedef struct an_cl_device {
    cl_platform_id platform;
    cl_device_id id;
    cl_device_type type;
    char name[96];
    char platform_name[64];
    char version[64];      /* CL_DEVICE_VERSION */
    char driver[64];       /* CL_DRIVER_VERSION */
    char description[128]; /* what alexnet_device_info shows */
    uint64_t memory_bytes, max_alloc_bytes, local_memory_bytes;
    size_t max_work_group;
    int usable;
    const char *unusable_why; /* static text when !usable */

    pthread_mutex_t lock; /* guards context and program */
    cl_context context;
    cl_program program;
} an_cl_device;

typedef struct an_cl_state {
    an_cl_api api;
    an_cl_device devices[AN_CL_MAX_DEVICES];
    size_t device_count;
    int available;
    char why[384];         /* the probe's verdict when unavailable */
    char description[192]; /* describe(): the first usable device */
    int has_gpu;
} an_cl_state;

/* The device table, probed once (thread-safe). */
const an_cl_state *an_cl_probe_state(void);
extern an_cl_state an_cl;

/* Build (or fetch from the binary cache) the shared program of a device; on failure sets the error message.
 * The allocator is used for temporary host buffers only. */
alexnet_status an_cl_device_program(an_cl_device *device, const alexnet_allocator *allocator);

/* The kernels each context creates from the program, in this order. */
typedef enum an_cl_kernel_id {
    AN_K_CONV2D_FORWARD,
    AN_K_CONV2D_FORWARD_CPU,
    AN_K_FC_FORWARD_GEMM,
    AN_K_FC_FORWARD_SMALL,
    AN_K_FC_FORWARD_ROWS,
    AN_K_MAX_POOL2D_FORWARD,
    AN_K_ADAPTIVE_AVG_POOL2D_FORWARD,
    AN_K_LRN_FORWARD,
    AN_K_SOFTMAX_FORWARD,
    AN_K_RELU_FORWARD,
    AN_K_DROPOUT_FORWARD,
    AN_K_CONV2D_BACKWARD_DATA,
    AN_K_CONV2D_BACKWARD_WEIGHTS,
    AN_K_BIAS_GRAD_NCHW,
    AN_K_MAX_POOL2D_BACKWARD,
    AN_K_ADAPTIVE_AVG_POOL2D_BACKWARD,
    AN_K_LRN_BACKWARD,
    AN_K_FC_BACKWARD_DATA,
    AN_K_FC_BACKWARD_WEIGHTS,
    AN_K_BIAS_GRAD_ROWS,
    AN_K_RELU_BACKWARD,
    AN_K_SOFTMAX_CROSS_ENTROPY,
    AN_K_SGD_UPDATE,
    AN_K_COUNT
} an_cl_kernel_id;
extern const char *const an_cl_kernel_names[AN_K_COUNT];

struct an_backend_context {
    alexnet_allocator allocator;
    an_cl_device *device;
    cl_command_queue queue;
    cl_kernel kernels[AN_K_COUNT];
    size_t reduce_wg;   /* work-group size of the row-reduction kernels (softmax): a power of two */
    cl_mem status_flag; /* one int: set by kernels that find bad input (labels), read and cleared at sync */
    int status_pending; /* a kernel that may set status_flag ran since the last sync */
    /* ALEXNET_OPENCL_KERNELS=gpu: the GPU kernels even on a CPU device (how the tests cover them on PoCL). */
    int force_gpu_kernels;
};

/* Activation buffers, weights handles (conv/FC: the weight, the bias and, for conv, the tap table) and
 * plain parameter buffers are all this one struct. */
struct an_buffer {
    cl_mem mem;
    size_t bytes;
    int owns_mem;
    an_op_kind kind; /* weights handles: AN_OP_CONV2D or AN_OP_FULLY_CONNECTED; else 0 */
    cl_mem bias;
    int owns_bias;
    cl_mem taps;     /* conv handles: k -> ic << 16 | ky << 8 | kx */
};

/* Kernel launches: arguments collected, then one enqueue; failures become statuses with the kernel's name.
 * Each op is then three statements: begin, its arguments, one of the launch shapes below. */
typedef struct an_cl_launch {
    an_backend_context *context;
    an_cl_kernel_id kernel;
    cl_uint index;
    cl_int error;
    cl_uint failed_index;
} an_cl_launch;

void an_cl_launch_begin(an_cl_launch *launch, an_backend_context *context, an_cl_kernel_id kernel);
void an_cl_arg_mem(an_cl_launch *launch, cl_mem mem);
void an_cl_arg_u32(an_cl_launch *launch, uint32_t value);
void an_cl_arg_f32(an_cl_launch *launch, float value);
void an_cl_arg_mems(an_cl_launch *launch, const cl_mem *mems, size_t count);
void an_cl_arg_u32s(an_cl_launch *launch, const uint32_t *values, size_t count);
/* Consecutive arguments of one type: AN_CL_ARGS_MEM(&l, in->mem, out->mem). The compiler counts the list,
 * so a list and its length cannot disagree; sizeof does not evaluate the second copy of the arguments. */
#define AN_CL_ARGS_MEM(launch, ...)                                                                           \
    an_cl_arg_mems((launch), (const cl_mem[]){__VA_ARGS__}, sizeof((const cl_mem[]){__VA_ARGS__}) / sizeof(cl_mem))
#define AN_CL_ARGS_U32(launch, ...)                                                                           \
    an_cl_arg_u32s((launch), (const uint32_t[]){__VA_ARGS__},                                                 \
                   sizeof((const uint32_t[]){__VA_ARGS__}) / sizeof(uint32_t))
/* The extents shared by a forward kernel and its backward twin, in the kernels' argument order:
 * pooling (planes, in_h, in_w, out_h, out_w), LRN (batch, channels, plane, size, alpha, beta, k) and fully
 * connected (batch, in_features, out_features). */
void an_cl_args_pool(an_cl_launch *launch, const an_pool_desc *d);
void an_cl_args_lrn(an_cl_launch *launch, const an_lrn_desc *d);
void an_cl_args_fc(an_cl_launch *launch, const an_fc_desc *d);

/* Enqueue over `dims` dimensions; global sizes are rounded up to multiples of local. */
alexnet_status an_cl_launch_run(an_cl_launch *launch, cl_uint dims, const size_t *global, const size_t *local);
/* 1-D launch over count work-items in groups of 64. */
alexnet_status an_cl_launch_1d(an_cl_launch *launch, size_t count);
/* The GEMM kernels (gemm.cl's tiling): a 16 x 16 work-group per 64 x 64 tile of an N (columns, dimension 0)
 * x M (rows, dimension 1) result, per group (dimension 2). */
alexnet_status an_cl_launch_tiles(an_cl_launch *launch, uint64_t n, uint64_t m, uint32_t groups);
/* The row-reduction kernels (softmax.cl's scheme): one work-group of context->reduce_wg per row. */
alexnet_status an_cl_launch_rows(an_cl_launch *launch, size_t rows);

/* A status for a failed OpenCL call ("opencl: what: CL_..."): memory errors map to OUT_OF_MEMORY. */
alexnet_status an_cl_fail(cl_int code, const char *what);
/* 0 unless count elements fit the kernels' 32-bit indexing (< 2^31); sets the error naming `what`. */
int an_cl_check_elements(uint64_t count, const char *what);
/* ALEXNET_OK when the groups divide both channel counts (the kernels assume it); else the error. */
alexnet_status an_cl_conv_groups_check(const an_conv_desc *d);

/* Inverted dropout (forward, and backward on the gradient): the shared launch of opencl_backend.c. */
alexnet_status an_cl_dropout_launch(an_backend_context *context, size_t count, float rate, uint64_t seed,
                                    const an_buffer *in, an_buffer *out);

/* Training ops (opencl_train.c). */
void an_cl_train_install(an_backend *backend);

#endif
