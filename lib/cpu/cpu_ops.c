/* The CPU backend's drivers for everything but convolution: they split each op into tasks for the thread
 * pool and call the ISA's kernels (or, for the ops too small to deserve one, portable loops). Every split is
 * over independent outputs, so the result does not depend on the number of threads. */
#include <stdatomic.h>
#include <string.h>

#include "cpu/cpu_backend.h"

/* Tasks per thread for the element-wise and row-wise ops: enough to balance a thread slowed by other
 * load, few enough that claiming a task stays negligible. */
#define AN_OPS_TASKS_PER_THREAD 8

size_t an_cpu_chunk_size(size_t count, size_t target, size_t align)
{
    if (target < 1)
        target = 1;
    size_t chunk = (count + target - 1) / target;
    chunk = (chunk + align - 1) / align * align;
    if (chunk < align)
        chunk = align;
    return chunk > count ? (count > 0 ? count : 1) : chunk;
}

static size_t an_task_target(const an_backend_context *context)
{
    return AN_OPS_TASKS_PER_THREAD * context->slot_count;
}

static size_t an_task_count(size_t count, size_t chunk) { return (count + chunk - 1) / chunk; }

/* ---- fully connected: tasks are ranges of output rows, every image in each ---- */

typedef struct an_fc_job {
    const an_cpu_kernels *kernels;
    const an_fc_desc *desc;
    const float *in, *weight, *bias;
    float *out;
    size_t rows_per_task;
} an_fc_job;

static void an_fc_task(void *context, size_t index)
{
    const an_fc_job *job = context;
    size_t begin = index * job->rows_per_task, end = begin + job->rows_per_task;
    if (end > job->desc->out_features)
        end = job->desc->out_features;
    job->kernels->fc(job->desc, job->in, job->weight, job->bias, job->out, begin, end);
}

/* Batch > 1 with the table's fc_blocked: blocks of AN_FC_BLOCK_ROWS rows, claimed from a counter by one
 * task per scratch slot (each slot holds one block's carried sums). */
typedef struct an_fc_block_job {
    const an_cpu_kernels *kernels;
    const an_fc_desc *desc;
    const float *in, *weight, *bias;
    float *out, *scratch;
    size_t part_floats, blocks;
    _Atomic size_t next_block;
} an_fc_block_job;

static void an_fc_block_task(void *context, size_t slot)
{
    an_fc_block_job *job = context;
    float *part = job->scratch + slot * job->part_floats;
    for (;;) {
        size_t block = atomic_fetch_add_explicit(&job->next_block, 1, memory_order_relaxed);
        if (block >= job->blocks)
            break;
        size_t begin = block * AN_FC_BLOCK_ROWS, end = begin + AN_FC_BLOCK_ROWS;
        job->kernels->fc_blocked(job->desc, job->in, job->weight, job->bias, job->out, begin,
                                 end > job->desc->out_features ? job->desc->out_features : end, part);
    }
}

size_t an_cpu_fc_scratch_floats(const an_backend_context *context, const an_fc_desc *desc)
{
    if (context->kernels->fc_blocked == NULL || desc->batch < 2)
        return 0;
    return context->slot_count * an_fc_part_floats(AN_FC_BLOCK_ROWS, desc->batch);
}

void an_cpu_fully_connected(an_backend_context *context, const an_fc_desc *desc, const float *in,
                            const float *weight, const float *bias, float *out)
{
    const size_t scratch_floats = an_cpu_fc_scratch_floats(context, desc);
    if (scratch_floats > 0 && scratch_floats <= context->scratch_floats) {
        an_fc_block_job job = {context->kernels, desc, in, weight, bias, out, context->scratch,
                               scratch_floats / context->slot_count,
                               an_task_count(desc->out_features, AN_FC_BLOCK_ROWS), 0};
        atomic_init(&job.next_block, 0);
        an_threadpool_run(context->pool, an_fc_block_task, &job, context->slot_count);
        return;
    }
    /* multiples of 8 rows: the kernels' row tiles (8 for batch 1, 4 otherwise) are never split */
    an_fc_job job = {context->kernels, desc, in, weight, bias, out,
                     an_cpu_chunk_size(desc->out_features, an_task_target(context), 8)};
    an_threadpool_run(context->pool, an_fc_task, &job, an_task_count(desc->out_features, job.rows_per_task));
}

/* ---- pooling: tasks are ranges of planes (image x channel) ---- */

typedef struct an_pool_job {
    const an_cpu_kernels *kernels;
    const an_pool_desc *desc;
    const float *in;
    float *out;
    size_t planes_per_task, planes;
} an_pool_job;

static void an_max_pool_task(void *context, size_t index)
{
    const an_pool_job *job = context;
    size_t begin = index * job->planes_per_task, end = begin + job->planes_per_task;
    job->kernels->max_pool(job->desc, job->in, job->out, begin, end > job->planes ? job->planes : end);
}

void an_cpu_max_pool2d(an_backend_context *context, const an_pool_desc *desc, const float *in, float *out)
{
    size_t planes = (size_t)desc->batch * desc->channels;
    an_pool_job job = {context->kernels, desc, in, out, an_cpu_chunk_size(planes, an_task_target(context), 1),
                       planes};
    an_threadpool_run(context->pool, an_max_pool_task, &job, an_task_count(planes, job.planes_per_task));
}

/* PyTorch's adaptive average pooling: cell i covers [floor(i*in/out), ceil((i+1)*in/out)). Portable: it
 * touches one small map per image (and is the identity for AlexNet at its own input size). Each cell is the
 * reference's chain, (0 + x0 + x1 + ...) / count in its order, so the bits are the reference's. */
#define AN_AVG_POOL_CACHED_COLUMNS 64 /* column cells whose bounds a task computes once, not per plane */

static inline uint32_t an_cell_begin(uint32_t i, uint32_t in, uint32_t out)
{
    return (uint32_t)((uint64_t)i * in / out);
}

static inline uint32_t an_cell_end(uint32_t i, uint32_t in, uint32_t out)
{
    return (uint32_t)(((uint64_t)(i + 1) * in + out - 1) / out);
}

static void an_avg_pool_task(void *context, size_t index)
{
    const an_pool_job *job = context;
    const an_pool_desc *d = job->desc;
    size_t begin = index * job->planes_per_task, end = begin + job->planes_per_task;
    end = end > job->planes ? job->planes : end;
    const size_t in_plane = (size_t)d->in_height * d->in_width, out_plane = (size_t)d->out_height * d->out_width;
    if (d->in_height == d->out_height && d->in_width == d->out_width) {
        /* Every cell is one input and the reference's (0.0f + x) / 1.0f is 0.0f + x: the add stays, it is what
         * turns -0.0 into +0.0. One flat loop the compiler vectorises; the per-cell loop with its 64-bit
         * divisions took 2.6 ms for AlexNet's 64 x 256 6x6 maps (1 thread, Zen 5). */
        const float *src = job->in + begin * in_plane;
        float *dst = job->out + begin * out_plane;
        for (size_t i = 0, n = (end - begin) * in_plane; i < n; i++)
            dst[i] = 0.0f + src[i];
        return;
    }
    uint32_t cached[2 * AN_AVG_POOL_CACHED_COLUMNS];
    const uint32_t cached_columns = d->out_width < AN_AVG_POOL_CACHED_COLUMNS ? d->out_width
                                                                              : AN_AVG_POOL_CACHED_COLUMNS;
    for (uint32_t ox = 0; ox < cached_columns; ox++) {
        cached[2 * ox] = an_cell_begin(ox, d->in_width, d->out_width);
        cached[2 * ox + 1] = an_cell_end(ox, d->in_width, d->out_width);
    }
    for (size_t p = begin; p < end; p++) {
        const float *src = job->in + p * in_plane;
        float *dst = job->out + p * out_plane;
        for (uint32_t oy = 0; oy < d->out_height; oy++) {
            const uint32_t y0 = an_cell_begin(oy, d->in_height, d->out_height);
            const uint32_t y1 = an_cell_end(oy, d->in_height, d->out_height);
            for (uint32_t ox = 0; ox < d->out_width; ox++) {
                const int hit = ox < cached_columns;
                const uint32_t x0 = hit ? cached[2 * ox] : an_cell_begin(ox, d->in_width, d->out_width);
                const uint32_t x1 = hit ? cached[2 * ox + 1] : an_cell_end(ox, d->in_width, d->out_width);
                float sum = 0.0f;
                for (uint32_t y = y0; y < y1; y++)
                    for (uint32_t x = x0; x < x1; x++)
                        sum += src[(size_t)y * d->in_width + x];
                dst[(size_t)oy * d->out_width + ox] = sum / (float)((y1 - y0) * (x1 - x0));
            }
        }
    }
}

void an_cpu_adaptive_avg_pool2d(an_backend_context *context, const an_pool_desc *desc, const float *in, float *out)
{
    size_t planes = (size_t)desc->batch * desc->channels;
    an_pool_job job = {context->kernels, desc, in, out, an_cpu_chunk_size(planes, an_task_target(context), 1),
                       planes};
    an_threadpool_run(context->pool, an_avg_pool_task, &job, an_task_count(planes, job.planes_per_task));
}

/* ---- LRN: tasks are (image, range of channels) ---- */

typedef struct an_lrn_job {
    const an_cpu_kernels *kernels;
    const an_lrn_desc *desc;
    const float *in;
    float *out;
    size_t channels_per_task, tasks_per_image;
} an_lrn_job;

static void an_lrn_task(void *context, size_t index)
{
    const an_lrn_job *job = context;
    size_t image = index / job->tasks_per_image;
    size_t begin = index % job->tasks_per_image * job->channels_per_task, end = begin + job->channels_per_task;
    job->kernels->lrn(job->desc, job->in, job->out, image, begin,
                      end > job->desc->channels ? job->desc->channels : end);
}

void an_cpu_lrn(an_backend_context *context, const an_lrn_desc *desc, const float *in, float *out)
{
    size_t per_image_target = an_task_target(context) / desc->batch + 1;
    an_lrn_job job = {context->kernels, desc, in, out, an_cpu_chunk_size(desc->channels, per_image_target, 1), 0};
    job.tasks_per_image = an_task_count(desc->channels, job.channels_per_task);
    an_threadpool_run(context->pool, an_lrn_task, &job, job.tasks_per_image * desc->batch);
}

/* ---- softmax: one task per image ---- */

typedef struct an_softmax_job {
    const an_cpu_kernels *kernels;
    const an_softmax_desc *desc;
    const float *in;
    float *out;
} an_softmax_job;

static void an_softmax_task(void *context, size_t index)
{
    const an_softmax_job *job = context;
    size_t offset = index * job->desc->classes;
    job->kernels->softmax(job->in + offset, job->out + offset, job->desc->classes);
}

void an_cpu_softmax(an_backend_context *context, const an_softmax_desc *desc, const float *in, float *out)
{
    an_softmax_job job = {context->kernels, desc, in, out};
    an_threadpool_run(context->pool, an_softmax_task, &job, desc->batch);
}

/* ---- element-wise ---- */

typedef struct an_elementwise_job {
    const an_cpu_kernels *kernels;
    size_t count, per_task;
    float rate;
    uint64_t seed;
    const float *in;
    float *out;
} an_elementwise_job;

static void an_relu_task(void *context, size_t index)
{
    const an_elementwise_job *job = context;
    size_t begin = index * job->per_task, end = begin + job->per_task;
    job->kernels->relu(job->in + begin, job->out + begin, (end > job->count ? job->count : end) - begin);
}

void an_cpu_relu(an_backend_context *context, size_t count, const float *in, float *out)
{
    an_elementwise_job job = {context->kernels, count, an_cpu_chunk_size(count, an_task_target(context), 1024),
                              0.0f, 0, in, out};
    an_threadpool_run(context->pool, an_relu_task, &job, an_task_count(count, job.per_task));
}

/* Dropout (training only): the mask is a function of the element's index, so any split gives it exactly. */
static void an_dropout_task(void *context, size_t index)
{
    const an_elementwise_job *job = context;
    size_t begin = index * job->per_task, end = begin + job->per_task;
    end = end > job->count ? job->count : end;
    const float scale = 1.0f / (1.0f - job->rate);
    for (size_t i = begin; i < end; i++)
        job->out[i] = an_dropout_keep(job->seed, i, job->rate) ? job->in[i] * scale : 0.0f;
}

void an_cpu_dropout(an_backend_context *context, size_t count, float rate, uint64_t seed, const float *in,
                    float *out)
{
    an_elementwise_job job = {context->kernels, count, an_cpu_chunk_size(count, an_task_target(context), 1024),
                              rate, seed, in, out};
    an_threadpool_run(context->pool, an_dropout_task, &job, an_task_count(count, job.per_task));
}
