/* The CPU backend's drivers for everything but convolution: they split each op into tasks for the thread
 * pool and call the ISA's kernels (or, for the ops too small to deserve one, portable loops). Every split is
 * over independent outputs, so the result does not depend on the number of threads. */
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

void an_cpu_fully_connected(an_backend_context *context, const an_fc_desc *desc, const float *in,
                            const float *weight, const float *bias, float *out)
{
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
 * touches one small map per image (and is the identity for AlexNet at its own input size). */
static void an_avg_pool_task(void *context, size_t index)
{
    const an_pool_job *job = context;
    const an_pool_desc *d = job->desc;
    size_t begin = index * job->planes_per_task, end = begin + job->planes_per_task;
    end = end > job->planes ? job->planes : end;
    for (size_t p = begin; p < end; p++) {
        const float *src = job->in + p * d->in_height * d->in_width;
        float *dst = job->out + p * d->out_height * d->out_width;
        for (uint32_t oy = 0; oy < d->out_height; oy++) {
            uint32_t y0 = (uint32_t)((uint64_t)oy * d->in_height / d->out_height);
            uint32_t y1 = (uint32_t)(((uint64_t)(oy + 1) * d->in_height + d->out_height - 1) / d->out_height);
            for (uint32_t ox = 0; ox < d->out_width; ox++) {
                uint32_t x0 = (uint32_t)((uint64_t)ox * d->in_width / d->out_width);
                uint32_t x1 = (uint32_t)(((uint64_t)(ox + 1) * d->in_width + d->out_width - 1) / d->out_width);
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
