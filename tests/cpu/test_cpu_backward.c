/* The cpu-simd backend's training ops (lib/cpu/cpu_train.c) against the reference backend's, for the kernel
 * set ALEXNET_CPU_ISA names (meson registers this program once per set; a set this build lacks or this CPU
 * cannot run is reported as "SKIP: ..." with exit status 77).
 *
 * Every op runs through both backends' tables on the same inputs: convolutions with odd sizes, groups 2,
 * 11x11 stride 4 on 3 channels, 5x5 pad 2, 3x3 pad 1 (Winograd forward), stride 2, reductions longer than a
 * K block, batch 1 and 3; FC with odd widths and tails of every tile; pooling with ties; LRN with odd and
 * even windows; ReLU, dropout, softmax cross-entropy and SGD. Tolerances:
 *   - GEMM-based ops (conv and FC gradients): norm-wise relative error ||got - ref|| / ||ref|| <= 1e-4 (the
 *     GEMM sums in another order and fuses multiply-adds);
 *   - max pooling, ReLU, dropout, average pooling, SGD and softmax cross-entropy: bit-exact (the same
 *     arithmetic as the reference in the same order); LRN: 1e-6 norm-wise;
 *   - every op gives the same bits on 1, 2 and 3 threads.
 * Also: weights_bind handles drive the forward conv2d / fully_connected exactly as weights_create's do, and
 * weights_refresh brings them up to date; an op whose scratch was not prepared is refused. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "cpu/features.h"
#include "test_support.h"
#include "util/alloc.h"

extern const an_backend an_cpu_simd_backend;
extern const an_backend an_reference_backend;

#define GEMM_TOLERANCE 1e-4
#define LRN_TOLERANCE 1e-6
#define THREAD_COUNTS 3 /* 1, 2, 3 */

static uint64_t rng_state = 0xBAC4;

static uint32_t rand_range(uint32_t low, uint32_t high) { return test_rand_range(&rng_state, low, high); }

/* ---- contexts and buffers ---- */

typedef struct device {
    const an_backend *b;
    an_backend_context *c;
} device;

static device make_device(const an_backend *backend, uint32_t threads)
{
    an_backend_params params;
    memset(&params, 0, sizeof params);
    ck_assert_int_eq(an_allocator_resolve(NULL, &params.allocator), ALEXNET_OK);
    params.num_threads = threads;
    device d = {backend, NULL};
    ck_assert_msg(backend->context_create(&params, &d.c) == ALEXNET_OK, "%s", alexnet_last_error());
    return d;
}

static void free_device(device d) { d.b->context_destroy(d.c); }

static void prepare(device d, const an_op_desc *ops, size_t count)
{
    ck_assert_msg(d.b->prepare(d.c, ops, count) == ALEXNET_OK, "%s", alexnet_last_error());
}

static an_buffer *upload(device d, const float *data, size_t count)
{
    an_buffer *buffer = NULL;
    ck_assert_int_eq(d.b->buffer_create(d.c, (count ? count : 1) * sizeof(float), &buffer), ALEXNET_OK);
    if (data != NULL && count > 0)
        ck_assert_int_eq(d.b->upload(d.c, buffer, data, count), ALEXNET_OK);
    return buffer;
}

/* A buffer of `count` floats filled with a NaN pattern, so that an op that fails to overwrite shows. */
static an_buffer *garbage(device d, size_t count)
{
    float *x = malloc((count ? count : 1) * sizeof *x);
    for (size_t i = 0; i < count; i++)
        x[i] = NAN;
    an_buffer *buffer = upload(d, x, count);
    free(x);
    return buffer;
}

/* Downloads and destroys the buffer; returns malloc'ed floats. */
static float *take(device d, an_buffer *buffer, size_t count)
{
    float *x = malloc((count ? count : 1) * sizeof *x);
    if (count > 0)
        ck_assert_int_eq(d.b->download(d.c, buffer, x, count), ALEXNET_OK);
    d.b->buffer_destroy(d.c, buffer);
    return x;
}

static float *random_floats(size_t n, uint64_t seed, float scale)
{
    float *x = test_random_floats(n, seed);
    for (size_t i = 0; i < n; i++)
        x[i] *= scale;
    return x;
}

/* ---- comparisons ---- */

static double norm_error(const float *got, const float *want, size_t n)
{
    double diff = 0.0, ref = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        diff += d * d;
        ref += (double)want[i] * want[i];
    }
    return ref > 0.0 ? sqrt(diff / ref) : sqrt(diff);
}

/* One check assertion per array, not per element: each assertion costs Check a write to its log file. */
static void assert_norm_close(const float *got, const float *want, size_t n, double tolerance, const char *what)
{
    size_t i = 0;
    while (i < n && isfinite(got[i]))
        i++;
    ck_assert_msg(i == n, "%s[%zu] = %g (not written?)", what, i, i < n ? (double)got[i] : 0.0);
    double error = norm_error(got, want, n);
    ck_assert_msg(error <= tolerance, "%s: norm-wise relative error %.3e > %.0e", what, error, tolerance);
}

static void assert_bits_equal(const float *got, const float *want, size_t n, const char *what)
{
    size_t i = 0;
    while (i < n && memcmp(&got[i], &want[i], sizeof got[i]) == 0)
        i++;
    ck_assert_msg(i == n, "%s[%zu]: %.9g, expected %.9g", what, i, i < n ? (double)got[i] : 0.0,
                  i < n ? (double)want[i] : 0.0);
}

/* ---- convolution ---- */

typedef struct conv_case {
    uint32_t batch, in_channels, height, width, out_channels, kernel, stride, padding, groups;
} conv_case;

static an_conv_desc conv_desc(conv_case k)
{
    an_conv_desc d;
    memset(&d, 0, sizeof d);
    d.batch = k.batch;
    d.in_channels = k.in_channels;
    d.in_height = k.height;
    d.in_width = k.width;
    d.out_channels = k.out_channels;
    d.kernel_size = k.kernel;
    d.stride = k.stride;
    d.padding = k.padding;
    d.groups = k.groups;
    d.out_height = (k.height + 2 * k.padding - k.kernel) / k.stride + 1;
    d.out_width = (k.width + 2 * k.padding - k.kernel) / k.stride + 1;
    return d;
}

typedef struct conv_grads {
    float *grad_in, *grad_weight, *grad_bias;
} conv_grads;

static conv_grads conv_backward(device d, const an_conv_desc *desc, const float *in, const float *grad_out,
                                const float *weight)
{
    const size_t in_count = (size_t)desc->batch * desc->in_channels * desc->in_height * desc->in_width;
    const size_t out_count = (size_t)desc->batch * desc->out_channels * desc->out_height * desc->out_width;
    const size_t w_count = (size_t)desc->out_channels * (desc->in_channels / desc->groups) * desc->kernel_size *
                           desc->kernel_size;
    an_op_desc op = {.kind = AN_OP_CONV2D, .u.conv = *desc};
    prepare(d, &op, 1);
    an_buffer *bin = upload(d, in, in_count), *bg = upload(d, grad_out, out_count), *bw = upload(d, weight, w_count);
    an_buffer *gi = garbage(d, in_count), *gw = garbage(d, w_count), *gb = garbage(d, desc->out_channels);
    ck_assert_msg(d.b->conv2d_backward_data(d.c, desc, bg, bw, gi) == ALEXNET_OK, "%s", alexnet_last_error());
    ck_assert_msg(d.b->conv2d_backward_weights(d.c, desc, bin, bg, gw, gb) == ALEXNET_OK, "%s",
                  alexnet_last_error());
    ck_assert_int_eq(d.b->sync(d.c), ALEXNET_OK);
    conv_grads g = {take(d, gi, in_count), take(d, gw, w_count), take(d, gb, desc->out_channels)};
    d.b->buffer_destroy(d.c, bin);
    d.b->buffer_destroy(d.c, bg);
    d.b->buffer_destroy(d.c, bw);
    return g;
}

static void free_grads(conv_grads g)
{
    free(g.grad_in);
    free(g.grad_weight);
    free(g.grad_bias);
}

static void check_conv_case(conv_case k, uint64_t seed)
{
    an_conv_desc desc = conv_desc(k);
    const size_t in_count = (size_t)desc.batch * desc.in_channels * desc.in_height * desc.in_width;
    const size_t out_count = (size_t)desc.batch * desc.out_channels * desc.out_height * desc.out_width;
    const size_t w_count =
        (size_t)desc.out_channels * (desc.in_channels / desc.groups) * desc.kernel_size * desc.kernel_size;
    float *in = random_floats(in_count, seed, 1.0f), *grad_out = random_floats(out_count, seed + 1, 0.5f);
    float *weight = random_floats(w_count, seed + 2, 0.1f);
    device ref = make_device(&an_reference_backend, 1);
    conv_grads want = conv_backward(ref, &desc, in, grad_out, weight);
    free_device(ref);
    char what[160];
    snprintf(what, sizeof what, "conv b%u c%u %ux%u -> %u k%u s%u p%u g%u", k.batch, k.in_channels, k.height,
             k.width, k.out_channels, k.kernel, k.stride, k.padding, k.groups);
    conv_grads first = {NULL, NULL, NULL};
    for (uint32_t threads = 1; threads <= THREAD_COUNTS; threads++) {
        device cpu = make_device(&an_cpu_simd_backend, threads);
        conv_grads got = conv_backward(cpu, &desc, in, grad_out, weight);
        free_device(cpu);
        char name[200];
        snprintf(name, sizeof name, "%s: grad_in (%u threads)", what, threads);
        assert_norm_close(got.grad_in, want.grad_in, in_count, GEMM_TOLERANCE, name);
        snprintf(name, sizeof name, "%s: grad_weight (%u threads)", what, threads);
        assert_norm_close(got.grad_weight, want.grad_weight, w_count, GEMM_TOLERANCE, name);
        snprintf(name, sizeof name, "%s: grad_bias (%u threads)", what, threads);
        assert_norm_close(got.grad_bias, want.grad_bias, desc.out_channels, GEMM_TOLERANCE, name);
        if (threads == 1) {
            first = got;
            continue;
        }
        snprintf(name, sizeof name, "%s: grad_in, %u threads vs 1", what, threads);
        assert_bits_equal(got.grad_in, first.grad_in, in_count, name);
        snprintf(name, sizeof name, "%s: grad_weight, %u threads vs 1", what, threads);
        assert_bits_equal(got.grad_weight, first.grad_weight, w_count, name);
        snprintf(name, sizeof name, "%s: grad_bias, %u threads vs 1", what, threads);
        assert_bits_equal(got.grad_bias, first.grad_bias, desc.out_channels, name);
        free_grads(got);
    }
    free_grads(first);
    free_grads(want);
    free(in);
    free(grad_out);
    free(weight);
}

START_TEST(conv_backward_fixed_shapes)
{
    static const conv_case cases[] = {
        /* batch, in, h, w, out, kernel, stride, pad, groups */
        {1, 3, 35, 35, 16, 11, 4, 2, 1},   /* AlexNet's conv1 shape: 11x11 stride 4 on 3 channels */
        {3, 3, 39, 37, 7, 11, 4, 2, 1},    /* batch 3, odd sizes */
        {3, 6, 13, 11, 10, 5, 1, 2, 2},    /* 5x5 pad 2, groups 2 */
        {1, 7, 9, 10, 13, 3, 1, 1, 1},     /* 3x3 pad 1 (Winograd forward) */
        {3, 8, 7, 9, 14, 3, 1, 1, 2},      /* 3x3 pad 1, groups 2 */
        {2, 5, 12, 13, 9, 3, 2, 0, 1},     /* stride 2, no padding */
        {2, 4, 20, 19, 300, 3, 1, 1, 1},   /* data: M = 300 > kc; weights: N = 380 > kc */
        {1, 40, 6, 6, 5, 3, 1, 1, 1},      /* K = 360 > kc for the weight gradient's columns */
        {3, 1, 1, 1, 3, 1, 1, 0, 1},       /* 1x1 everything */
        {3, 32, 48, 48, 4, 5, 1, 2, 1},    /* dCol 1.8 Mi floats an image: one image a chunk */
        {3, 64, 120, 120, 2, 3, 1, 1, 1},  /* weight gradient (dot path) ~1 Mi floats an image: 1 a chunk */
        {3, 64, 120, 120, 2, 3, 2, 1, 1},  /* stride 2: packed operands ~2 Mi floats an image: 1 a chunk */
        {3, 16, 40, 40, 6, 5, 1, 2, 2},    /* groups 2 */
        {40, 8, 6, 6, 12, 3, 1, 1, 1},     /* 40 images of 6 x 6 in one chunk: blocks across GEMM panels */
        {2, 2, 66, 66, 3, 3, 2, 1, 1},     /* a bordered plane over the weight gradient's stack copy */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_conv_case(cases[i], 100 + 10 * i);
}
END_TEST

START_TEST(conv_backward_random_shapes)
{
    for (int trial = 0; trial < 40; trial++) {
        conv_case k;
        k.groups = rand_range(1, 2);
        k.in_channels = k.groups * rand_range(1, 6);
        k.out_channels = k.groups * rand_range(1, 20);
        static const uint32_t kernels[] = {1, 2, 3, 5};
        k.kernel = kernels[rand_range(0, 3)];
        k.stride = rand_range(1, 3);
        k.padding = rand_range(0, k.kernel / 2);
        k.height = rand_range(k.kernel, 17);
        k.width = rand_range(k.kernel, 17);
        k.batch = rand_range(1, 3);
        check_conv_case(k, 1000 + 10 * (uint64_t)trial);
    }
}
END_TEST

/* ---- fully connected ---- */

typedef struct fc_grads {
    float *grad_in, *grad_weight, *grad_bias;
} fc_grads;

static fc_grads fc_backward(device d, const an_fc_desc *desc, const float *in, const float *grad_out,
                            const float *weight)
{
    const size_t in_count = (size_t)desc->batch * desc->in_features;
    const size_t out_count = (size_t)desc->batch * desc->out_features;
    const size_t w_count = (size_t)desc->out_features * desc->in_features;
    an_op_desc op = {.kind = AN_OP_FULLY_CONNECTED, .u.fc = *desc};
    prepare(d, &op, 1);
    an_buffer *bin = upload(d, in, in_count), *bg = upload(d, grad_out, out_count), *bw = upload(d, weight, w_count);
    an_buffer *gi = garbage(d, in_count), *gw = garbage(d, w_count), *gb = garbage(d, desc->out_features);
    ck_assert_msg(d.b->fully_connected_backward_data(d.c, desc, bg, bw, gi) == ALEXNET_OK, "%s",
                  alexnet_last_error());
    ck_assert_msg(d.b->fully_connected_backward_weights(d.c, desc, bin, bg, gw, gb) == ALEXNET_OK, "%s",
                  alexnet_last_error());
    ck_assert_int_eq(d.b->sync(d.c), ALEXNET_OK);
    fc_grads g = {take(d, gi, in_count), take(d, gw, w_count), take(d, gb, desc->out_features)};
    d.b->buffer_destroy(d.c, bin);
    d.b->buffer_destroy(d.c, bg);
    d.b->buffer_destroy(d.c, bw);
    return g;
}

static void check_fc_case(uint32_t batch, uint32_t in_features, uint32_t out_features, uint64_t seed)
{
    an_fc_desc desc = {batch, in_features, out_features, 0};
    const size_t in_count = (size_t)batch * in_features, out_count = (size_t)batch * out_features;
    const size_t w_count = (size_t)out_features * in_features;
    float *in = random_floats(in_count, seed, 1.0f), *grad_out = random_floats(out_count, seed + 1, 0.5f);
    float *weight = random_floats(w_count, seed + 2, 0.1f);
    device ref = make_device(&an_reference_backend, 1);
    fc_grads want = fc_backward(ref, &desc, in, grad_out, weight);
    free_device(ref);
    fc_grads first = {NULL, NULL, NULL};
    for (uint32_t threads = 1; threads <= THREAD_COUNTS; threads++) {
        device cpu = make_device(&an_cpu_simd_backend, threads);
        fc_grads got = fc_backward(cpu, &desc, in, grad_out, weight);
        free_device(cpu);
        char name[160];
        snprintf(name, sizeof name, "fc b%u %u -> %u (%u threads): grad_in", batch, in_features, out_features,
                 threads);
        assert_norm_close(got.grad_in, want.grad_in, in_count, GEMM_TOLERANCE, name);
        snprintf(name, sizeof name, "fc b%u %u -> %u (%u threads): grad_weight", batch, in_features, out_features,
                 threads);
        assert_norm_close(got.grad_weight, want.grad_weight, w_count, GEMM_TOLERANCE, name);
        snprintf(name, sizeof name, "fc b%u %u -> %u (%u threads): grad_bias", batch, in_features, out_features,
                 threads);
        /* a sum over the batch in the reference's order: exact */
        assert_bits_equal(got.grad_bias, want.grad_bias, out_features, name);
        if (threads == 1) {
            first = got;
            continue;
        }
        assert_bits_equal(got.grad_in, first.grad_in, in_count, "fc grad_in across thread counts");
        assert_bits_equal(got.grad_weight, first.grad_weight, w_count, "fc grad_weight across thread counts");
        free(got.grad_in);
        free(got.grad_weight);
        free(got.grad_bias);
    }
    free(first.grad_in);
    free(first.grad_weight);
    free(first.grad_bias);
    free(want.grad_in);
    free(want.grad_weight);
    free(want.grad_bias);
    free(in);
    free(grad_out);
    free(weight);
}

START_TEST(fc_backward_shapes)
{
    check_fc_case(1, 37, 13, 1);
    check_fc_case(3, 129, 77, 2);
    check_fc_case(5, 300, 301, 3);  /* reduction over O = 301 > kc */
    check_fc_case(7, 1, 45, 4);
    check_fc_case(260, 19, 10, 5);  /* reduction over the batch > kc */
    for (int trial = 0; trial < 20; trial++)
        check_fc_case(rand_range(1, 9), rand_range(1, 200), rand_range(1, 200), 10 + (uint64_t)trial);
}
END_TEST

/* ---- the other ops: each through a function that runs it on a device and returns its outputs ---- */

typedef struct op_result {
    float *out[2];
    size_t count[2];
} op_result;

static void free_result(op_result r)
{
    free(r.out[0]);
    free(r.out[1]);
}

typedef op_result (*op_runner)(device d, const void *arg);

/* Runs `run` on the reference and on cpu-simd with 1..3 threads: outputs within `tolerance` (norm-wise; 0 means
 * bit-exact) of the reference, and the same bits for every thread count. */
static void check_op(op_runner run, const void *arg, double tolerance, const char *what)
{
    device ref = make_device(&an_reference_backend, 1);
    op_result want = run(ref, arg);
    free_device(ref);
    op_result first = {{NULL, NULL}, {0, 0}};
    for (uint32_t threads = 1; threads <= THREAD_COUNTS; threads++) {
        device cpu = make_device(&an_cpu_simd_backend, threads);
        op_result got = run(cpu, arg);
        free_device(cpu);
        for (int i = 0; i < 2 && got.out[i] != NULL; i++) {
            char name[160];
            snprintf(name, sizeof name, "%s output %d (%u threads)", what, i, threads);
            if (tolerance == 0.0)
                assert_bits_equal(got.out[i], want.out[i], want.count[i], name);
            else
                assert_norm_close(got.out[i], want.out[i], want.count[i], tolerance, name);
            if (threads > 1)
                assert_bits_equal(got.out[i], first.out[i], want.count[i], name);
        }
        if (threads == 1)
            first = got;
        else
            free_result(got);
    }
    free_result(first);
    free_result(want);
}

typedef struct pool_arg {
    an_pool_desc desc;
    const float *in, *grad_out;
    int max;
} pool_arg;

static op_result run_pool(device d, const void *p)
{
    const pool_arg *a = p;
    const size_t planes = (size_t)a->desc.batch * a->desc.channels;
    const size_t in_count = planes * a->desc.in_height * a->desc.in_width;
    const size_t out_count = planes * a->desc.out_height * a->desc.out_width;
    an_buffer *in = upload(d, a->in, in_count), *g = upload(d, a->grad_out, out_count), *gi = garbage(d, in_count);
    if (a->max)
        ck_assert_int_eq(d.b->max_pool2d_backward(d.c, &a->desc, in, g, gi), ALEXNET_OK);
    else
        ck_assert_int_eq(d.b->adaptive_avg_pool2d_backward(d.c, &a->desc, g, gi), ALEXNET_OK);
    op_result r = {{take(d, gi, in_count), NULL}, {in_count, 0}};
    d.b->buffer_destroy(d.c, in);
    d.b->buffer_destroy(d.c, g);
    return r;
}

static void check_pool(uint32_t batch, uint32_t channels, uint32_t h, uint32_t w, uint32_t oh, uint32_t ow,
                       uint32_t kernel, uint32_t stride, int max, uint64_t seed)
{
    an_pool_desc desc = {batch, channels, h, w, oh, ow, kernel, stride};
    const size_t planes = (size_t)batch * channels;
    float *in = random_floats(planes * h * w, seed, 1.0f), *grad_out = random_floats(planes * oh * ow, seed + 1, 1.0f);
    for (size_t i = 0; i < planes * h * w; i++)
        in[i] = roundf(in[i] * 2.0f) * 0.5f; /* few distinct values: ties within windows */
    if (planes * h * w > 7)
        in[7] = NAN; /* propagates: the NaN is the window's maximum */
    if (planes * h * w > 2 * w + 9) {
        in[8] = NAN;            /* two NaNs in one window: the last one in scan order wins */
        in[2 * w + 8] = -0.0f;  /* ties of -0 and +0 compare equal: the first wins */
        in[2 * w + 9] = 0.0f;
    }
    pool_arg arg = {desc, in, grad_out, max};
    char what[96];
    snprintf(what, sizeof what, "%s pool b%u c%u %ux%u -> %ux%u", max ? "max" : "avg", batch, channels, h, w, oh, ow);
    check_op(run_pool, &arg, 0.0, what);
    free(in);
    free(grad_out);
}

START_TEST(pooling_backward)
{
    check_pool(3, 5, 13, 13, 6, 6, 3, 2, 1, 1);  /* AlexNet's 3x3 stride 2, overlapping windows */
    /* stride 2 on wide rows: the vector winner search's 16-output blocks with partial tails, and rows longer
     * than the driver's 64-output runs */
    check_pool(2, 3, 28, 28, 13, 13, 3, 2, 1, 7);
    check_pool(1, 2, 7, 139, 3, 69, 3, 2, 1, 8);
    check_pool(2, 2, 6, 36, 3, 17, 2, 2, 1, 9);  /* 2x2 stride 2: 17 outputs, one past a block */
    check_pool(1, 3, 5, 5, 2, 2, 3, 2, 1, 10);   /* conv5's 2 x 2 pooled map */
    check_pool(1, 3, 11, 9, 5, 4, 2, 2, 1, 2);   /* 2x2 stride 2, odd sizes */
    check_pool(2, 4, 7, 8, 2, 2, 3, 3, 1, 3);
    check_pool(3, 5, 13, 11, 6, 6, 0, 0, 0, 4);  /* adaptive: overlapping cells */
    check_pool(2, 3, 5, 4, 6, 6, 0, 0, 0, 5);    /* adaptive: more cells than inputs */
    check_pool(1, 2, 6, 6, 6, 6, 0, 0, 0, 6);    /* identity */
}
END_TEST

typedef struct lrn_arg {
    an_lrn_desc desc;
    const float *in, *out, *grad_out;
} lrn_arg;

static op_result run_lrn(device d, const void *p)
{
    const lrn_arg *a = p;
    const size_t count = (size_t)a->desc.batch * a->desc.channels * a->desc.height * a->desc.width;
    an_buffer *in = upload(d, a->in, count), *out = upload(d, a->out, count), *g = upload(d, a->grad_out, count);
    an_buffer *gi = garbage(d, count);
    ck_assert_int_eq(d.b->lrn_backward(d.c, &a->desc, in, out, g, gi), ALEXNET_OK);
    op_result r = {{take(d, gi, count), NULL}, {count, 0}};
    d.b->buffer_destroy(d.c, in);
    d.b->buffer_destroy(d.c, out);
    d.b->buffer_destroy(d.c, g);
    return r;
}

START_TEST(lrn_backward)
{
    static const an_lrn_desc descs[] = {
        {2, 7, 9, 9, 5, 1e-4f, 0.75f, 2.0f},    /* AlexNet's window, odd plane (81 = 64 + 17 pixels) */
        {3, 5, 4, 3, 4, 0.02f, 0.75f, 2.0f},    /* even window */
        {1, 16, 13, 13, 5, 0.5f, 0.75f, 1.0f},  /* large alpha: the cross term matters */
        {2, 3, 5, 5, 7, 0.1f, 0.6f, 1.5f},      /* window wider than the channels */
    };
    for (size_t i = 0; i < sizeof descs / sizeof descs[0]; i++) {
        const an_lrn_desc *d = &descs[i];
        const size_t count = (size_t)d->batch * d->channels * d->height * d->width;
        float *in = random_floats(count, 50 + i, 1.0f), *grad_out = random_floats(count, 60 + i, 1.0f);
        float *out = malloc(count * sizeof *out);
        /* the forward output, as the reference computes it */
        device ref = make_device(&an_reference_backend, 1);
        an_buffer *bin = upload(ref, in, count), *bout = garbage(ref, count);
        ck_assert_int_eq(ref.b->lrn(ref.c, d, bin, bout), ALEXNET_OK);
        ck_assert_int_eq(ref.b->download(ref.c, bout, out, count), ALEXNET_OK);
        ref.b->buffer_destroy(ref.c, bin);
        ref.b->buffer_destroy(ref.c, bout);
        free_device(ref);
        lrn_arg arg = {*d, in, out, grad_out};
        char what[64];
        snprintf(what, sizeof what, "lrn case %zu", i);
        check_op(run_lrn, &arg, LRN_TOLERANCE, what);
        free(in);
        free(out);
        free(grad_out);
    }
}
END_TEST

typedef struct elementwise_arg {
    size_t count;
    const float *a, *b, *c;
    float rate;
    uint64_t seed;
    int op; /* 0 relu, 1 relu in place, 2 dropout, 3 dropout in place, 4 sgd */
    an_sgd_desc sgd;
} elementwise_arg;

static op_result run_elementwise(device d, const void *p)
{
    const elementwise_arg *a = p;
    const size_t n = a->count;
    op_result r = {{NULL, NULL}, {n, n}};
    an_buffer *x = upload(d, a->a, n), *y = upload(d, a->b, n), *z = NULL;
    switch (a->op) {
    case 0:
        z = garbage(d, n);
        ck_assert_int_eq(d.b->relu_backward(d.c, n, x, y, z), ALEXNET_OK);
        r.out[0] = take(d, z, n);
        break;
    case 1:
        ck_assert_int_eq(d.b->relu_backward(d.c, n, x, y, y), ALEXNET_OK);
        r.out[0] = take(d, y, n);
        y = NULL;
        break;
    case 2:
        z = garbage(d, n);
        ck_assert_int_eq(d.b->dropout_backward(d.c, n, a->rate, a->seed, y, z), ALEXNET_OK);
        r.out[0] = take(d, z, n);
        break;
    case 3:
        ck_assert_int_eq(d.b->dropout_backward(d.c, n, a->rate, a->seed, y, y), ALEXNET_OK);
        r.out[0] = take(d, y, n);
        y = NULL;
        break;
    default:
        z = upload(d, a->c, n); /* param = a, grad = b, velocity = c */
        ck_assert_int_eq(d.b->sgd_update(d.c, &a->sgd, x, y, z), ALEXNET_OK);
        r.out[0] = take(d, x, n);
        r.out[1] = take(d, z, n);
        x = NULL;
        break;
    }
    if (x != NULL)
        d.b->buffer_destroy(d.c, x);
    if (y != NULL)
        d.b->buffer_destroy(d.c, y);
    return r;
}

START_TEST(relu_dropout_and_sgd)
{
    static const size_t counts[] = {1, 17, 10007, 300001};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        const size_t n = counts[i];
        float *a = random_floats(n, 70 + i, 1.0f), *b = random_floats(n, 80 + i, 1.0f);
        float *c = random_floats(n, 90 + i, 0.1f);
        for (size_t j = 0; j < n; j += 5)
            a[j] = 0.0f; /* the ReLU's output is exactly zero where it clamped */
        for (int op = 0; op <= 4; op++) {
            elementwise_arg arg = {n, a, b, c, op == 2 ? 0.5f : 0.3f, 0x1234 + i, op, {n, 0.01f, 0.9f, 5e-4f}};
            char what[64];
            snprintf(what, sizeof what, "elementwise op %d, %zu elements", op, n);
            check_op(run_elementwise, &arg, 0.0, what);
        }
        free(a);
        free(b);
        free(c);
    }
}
END_TEST

typedef struct loss_arg {
    an_softmax_desc desc;
    const float *logits, *labels;
} loss_arg;

static op_result run_loss(device d, const void *p)
{
    const loss_arg *a = p;
    const size_t n = (size_t)a->desc.batch * a->desc.classes;
    an_buffer *x = upload(d, a->logits, n), *l = upload(d, a->labels, a->desc.batch);
    an_buffer *g = garbage(d, n), *losses = garbage(d, a->desc.batch);
    ck_assert_int_eq(d.b->softmax_cross_entropy(d.c, &a->desc, x, l, g, losses), ALEXNET_OK);
    op_result r = {{take(d, g, n), take(d, losses, a->desc.batch)}, {n, a->desc.batch}};
    d.b->buffer_destroy(d.c, x);
    d.b->buffer_destroy(d.c, l);
    return r;
}

START_TEST(softmax_cross_entropy)
{
    static const an_softmax_desc descs[] = {{1, 1}, {3, 13}, {5, 1000}, {2, 10}};
    for (size_t i = 0; i < sizeof descs / sizeof descs[0]; i++) {
        const an_softmax_desc d = descs[i];
        float *logits = random_floats((size_t)d.batch * d.classes, 40 + i, i == 3 ? 40.0f : 3.0f);
        float labels[8];
        for (uint32_t n = 0; n < d.batch; n++)
            labels[n] = (float)rand_range(0, d.classes - 1);
        loss_arg arg = {d, logits, labels};
        char what[64];
        snprintf(what, sizeof what, "softmax cross-entropy %u x %u", d.batch, d.classes);
        check_op(run_loss, &arg, 0.0, what);
        free(logits);
    }
    /* a label that is not a class index is refused */
    device cpu = make_device(&an_cpu_simd_backend, 2);
    const float logits[6] = {0}, bad[2] = {1.0f, 3.0f};
    an_softmax_desc d = {2, 3};
    an_buffer *x = upload(cpu, logits, 6), *l = upload(cpu, bad, 2), *g = garbage(cpu, 6), *losses = garbage(cpu, 2);
    ck_assert_int_eq(cpu.b->softmax_cross_entropy(cpu.c, &d, x, l, g, losses), ALEXNET_E_INVALID_ARGUMENT);
    cpu.b->buffer_destroy(cpu.c, x);
    cpu.b->buffer_destroy(cpu.c, l);
    cpu.b->buffer_destroy(cpu.c, g);
    cpu.b->buffer_destroy(cpu.c, losses);
    free_device(cpu);
}
END_TEST

/* ---- weights handles ---- */

/* The forward op through a weights_create handle and through a weights_bind handle: the same bits, before
 * and after the parameters change and weights_refresh runs. */
static void check_bound_forward(const an_op_desc *op, uint64_t seed)
{
    device cpu = make_device(&an_cpu_simd_backend, 2);
    prepare(cpu, op, 1);
    size_t in_count, out_count, w_count, b_count;
    if (op->kind == AN_OP_CONV2D) {
        const an_conv_desc *c = &op->u.conv;
        in_count = (size_t)c->batch * c->in_channels * c->in_height * c->in_width;
        out_count = (size_t)c->batch * c->out_channels * c->out_height * c->out_width;
        w_count = (size_t)c->out_channels * (c->in_channels / c->groups) * c->kernel_size * c->kernel_size;
        b_count = c->out_channels;
    } else {
        const an_fc_desc *f = &op->u.fc;
        in_count = (size_t)f->batch * f->in_features;
        out_count = (size_t)f->batch * f->out_features;
        w_count = (size_t)f->out_features * f->in_features;
        b_count = f->out_features;
    }
    float *in = random_floats(in_count, seed, 1.0f), *w = random_floats(w_count, seed + 1, 0.1f);
    float *b = random_floats(b_count, seed + 2, 0.1f);
    an_buffer *bin = upload(cpu, in, in_count), *pw = upload(cpu, w, w_count), *pb = upload(cpu, b, b_count);
    an_buffer *bound = NULL;
    ck_assert_msg(cpu.b->weights_bind(cpu.c, op, pw, pb, &bound) == ALEXNET_OK, "%s", alexnet_last_error());
    for (int round = 0; round < 2; round++) {
        if (round == 1) { /* an update of the parameters, then the refresh */
            for (size_t i = 0; i < w_count; i++)
                w[i] = w[i] * 0.5f + 0.01f;
            for (size_t i = 0; i < b_count; i++)
                b[i] -= 0.25f;
            ck_assert_int_eq(cpu.b->upload(cpu.c, pw, w, w_count), ALEXNET_OK);
            ck_assert_int_eq(cpu.b->upload(cpu.c, pb, b, b_count), ALEXNET_OK);
            ck_assert_msg(cpu.b->weights_refresh(cpu.c, op, pw, pb, bound) == ALEXNET_OK, "%s", alexnet_last_error());
        }
        an_buffer *created = NULL;
        ck_assert_int_eq(cpu.b->weights_create(cpu.c, op, w, b, &created), ALEXNET_OK);
        an_buffer *o1 = garbage(cpu, out_count), *o2 = garbage(cpu, out_count);
        if (op->kind == AN_OP_CONV2D) {
            ck_assert_msg(cpu.b->conv2d(cpu.c, &op->u.conv, bin, created, o1) == ALEXNET_OK, "%s",
                          alexnet_last_error());
            ck_assert_msg(cpu.b->conv2d(cpu.c, &op->u.conv, bin, bound, o2) == ALEXNET_OK, "%s",
                          alexnet_last_error());
        } else {
            ck_assert_int_eq(cpu.b->fully_connected(cpu.c, &op->u.fc, bin, created, o1), ALEXNET_OK);
            ck_assert_int_eq(cpu.b->fully_connected(cpu.c, &op->u.fc, bin, bound, o2), ALEXNET_OK);
        }
        float *want = take(cpu, o1, out_count), *got = take(cpu, o2, out_count);
        assert_bits_equal(got, want, out_count, round == 0 ? "bound weights" : "refreshed weights");
        free(want);
        free(got);
        cpu.b->buffer_destroy(cpu.c, created);
    }
    cpu.b->buffer_destroy(cpu.c, bound);
    cpu.b->buffer_destroy(cpu.c, bin);
    cpu.b->buffer_destroy(cpu.c, pw);
    cpu.b->buffer_destroy(cpu.c, pb);
    free_device(cpu);
    free(in);
    free(w);
    free(b);
}

START_TEST(bound_weights_drive_the_forward_ops)
{
    const conv_case convs[] = {
        {2, 3, 35, 35, 16, 11, 4, 2, 1}, /* GEMM panels */
        {3, 8, 7, 9, 14, 3, 1, 1, 2},    /* Winograd */
        {1, 6, 13, 11, 10, 5, 1, 2, 2},
    };
    for (size_t i = 0; i < sizeof convs / sizeof convs[0]; i++) {
        an_op_desc op = {.kind = AN_OP_CONV2D, .u.conv = conv_desc(convs[i])};
        op.u.conv.relu = (int)(i & 1);
        check_bound_forward(&op, 300 + 10 * i);
    }
    an_op_desc fc = {.kind = AN_OP_FULLY_CONNECTED, .u.fc = {3, 129, 77, 1}};
    check_bound_forward(&fc, 400);
}
END_TEST

START_TEST(unprepared_scratch_is_refused)
{
    device cpu = make_device(&an_cpu_simd_backend, 2);
    an_op_desc small = {.kind = AN_OP_CONV2D, .u.conv = conv_desc((conv_case){1, 2, 5, 5, 3, 3, 1, 1, 1})};
    prepare(cpu, &small, 1);
    an_conv_desc big = conv_desc((conv_case){1, 16, 30, 30, 3, 5, 1, 2, 1});
    const size_t in_count = 16 * 30 * 30, out_count = 3 * 30 * 30, w_count = 3 * 16 * 25;
    an_buffer *in = garbage(cpu, in_count), *g = garbage(cpu, out_count), *w = garbage(cpu, w_count);
    an_buffer *gw = garbage(cpu, w_count), *gb = garbage(cpu, 3);
    ck_assert_int_eq(cpu.b->conv2d_backward_data(cpu.c, &big, g, w, in), ALEXNET_E_STATE);
    ck_assert_int_eq(cpu.b->conv2d_backward_weights(cpu.c, &big, in, g, gw, gb), ALEXNET_E_STATE);
    ck_assert(strstr(alexnet_last_error(), "not prepared") != NULL);
    an_buffer *bufs[] = {in, g, w, gw, gb};
    for (size_t i = 0; i < 5; i++)
        cpu.b->buffer_destroy(cpu.c, bufs[i]);
    free_device(cpu);
}
END_TEST

int main(void)
{
    const char *name = getenv("ALEXNET_CPU_ISA");
    an_cpu_isa isa;
    if (name != NULL && name[0] != '\0' && an_cpu_select_isa(&isa) != ALEXNET_OK) {
        printf("SKIP: %s kernels not runnable on this CPU (%s)\n", name, alexnet_last_error());
        return 77;
    }
    const char *why = NULL;
    if (!an_cpu_simd_backend.probe(&why)) {
        printf("SKIP: cpu-simd not available (%s)\n", why);
        return 77;
    }
    printf("testing the training ops of %s\n", an_cpu_simd_backend.describe());
    Suite *suite = suite_create("cpu_backward");
    TCase *tc = tcase_create("backward");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, conv_backward_fixed_shapes);
    tcase_add_test(tc, conv_backward_random_shapes);
    tcase_add_test(tc, fc_backward_shapes);
    tcase_add_test(tc, pooling_backward);
    tcase_add_test(tc, lrn_backward);
    tcase_add_test(tc, relu_dropout_and_sgd);
    tcase_add_test(tc, softmax_cross_entropy);
    tcase_add_test(tc, bound_weights_drive_the_forward_ops);
    tcase_add_test(tc, unprepared_scratch_is_refused);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
