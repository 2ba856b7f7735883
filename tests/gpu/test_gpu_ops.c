/* A GPU backend's ops against the reference backend, on random shapes.
 *
 * The backend under test is ALEXNET_GPU_TEST_BACKEND ("opencl" by default; "cuda" for the CUDA module),
 * found through the plugin loader (ALEXNET_BACKEND_PATH points at the build directory of the modules).
 * When it is unavailable the program prints "SKIP: no <backend> device: <reason>" and exits with 77, which
 * meson counts as skipped, never as passed; ALEXNET_GPU_TEST_REQUIRE=1 turns that into a failure.
 *
 * Each op runs through the backend's table exactly as lib/net does (weights_create, prepare at a larger
 * batch, the op at a smaller one, sync, download) and is compared with the reference kernels:
 * max |gpu - ref| / max |ref| must stay below a per-op tolerance, and every error is printed. Elementwise
 * ops, pooling and dropout must match exactly. The last cases go through the public API: a whole small
 * network with captured layers, batch consistency, and allocation failures injected into context creation.
 *
 * The runner does not fork: a GPU runtime initialised in a parent does not survive fork(). */
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alexnet/alexnet.h"
#include "backend/backend.h"
#include "cpu/reference/reference_backward.h"
#include "cpu/reference/reference_ops.h"
#include "test_support.h"

static const an_backend *gpu;
static const char *gpu_name;
static test_counting_allocator counter;

/* ---- helpers ---- */

static uint64_t rng_state;
static uint32_t rng_next(void)
{
    rng_state = test_splitmix64(rng_state);
    return (uint32_t)(rng_state >> 32);
}
static uint32_t rng_range(uint32_t lo, uint32_t hi) { return lo + rng_next() % (hi - lo + 1); } /* inclusive */
static float rng_float(void) { return (float)(rng_next() >> 8) * (2.0f / 16777216.0f) - 1.0f; }

static float *random_floats(size_t n, float scale)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (size_t i = 0; i < n; i++)
        x[i] = rng_float() * scale;
    return x;
}

static an_backend_context *open_context(void)
{
    an_backend_params params;
    memset(&params, 0, sizeof params);
    params.allocator = test_counting_allocator_make(&counter);
    params.num_threads = 1;
    an_backend_context *context = NULL;
    alexnet_status status = gpu->context_create(&params, &context);
    ck_assert_msg(status == ALEXNET_OK, "%s: context_create: %s", gpu_name, alexnet_last_error());
    return context;
}

static void close_context(an_backend_context *context)
{
    gpu->context_destroy(context);
    ck_assert_msg(counter.live_blocks == 0, "%zu host blocks (%zu bytes) leaked", counter.live_blocks,
                  counter.live_bytes);
    ck_assert_uint_eq(counter.size_mismatches, 0);
}

static an_buffer *device_copy(an_backend_context *context, const float *host, size_t n)
{
    an_buffer *buffer = NULL;
    ck_assert_msg(gpu->buffer_create(context, (n ? n : 1) * sizeof(float), &buffer) == ALEXNET_OK, "buffer_create: %s",
                  alexnet_last_error());
    if (host != NULL && n > 0)
        ck_assert_msg(gpu->upload(context, buffer, host, n) == ALEXNET_OK, "upload: %s", alexnet_last_error());
    return buffer;
}

static float *host_copy(an_backend_context *context, const an_buffer *buffer, size_t n)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    ck_assert_ptr_nonnull(x);
    ck_assert_msg(gpu->sync(context) == ALEXNET_OK, "sync: %s", alexnet_last_error());
    ck_assert_msg(gpu->download(context, buffer, x, n) == ALEXNET_OK, "download: %s", alexnet_last_error());
    return x;
}

static double worst_error[16];
static const char *const op_names[16] = {"conv2d", "fc", "max_pool", "avg_pool", "lrn", "softmax", "relu", "dropout",
                                         "conv_bwd", "fc_bwd", "pool_bwd", "lrn_bwd", "xent", "sgd", "act_bwd"};
enum { OP_CONV, OP_FC, OP_MAXPOOL, OP_AVGPOOL, OP_LRN, OP_SOFTMAX, OP_RELU, OP_DROPOUT, OP_CONV_BWD, OP_FC_BWD,
       OP_POOL_BWD, OP_LRN_BWD, OP_XENT, OP_SGD, OP_ACT_BWD, OP_LAST = OP_ACT_BWD };

/* max |a - b| / max |b| (NaN counts as infinitely wrong unless both are NaN at the same place). */
static double compare(int op, const char *shape, const float *got, const float *want, size_t n, double tolerance)
{
    double diff = 0.0, scale = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(want[i]) && isnan(got[i]))
            continue;
        double d = fabs((double)got[i] - (double)want[i]);
        diff = isnan(d) ? INFINITY : (d > diff ? d : diff);
        scale = fabs(want[i]) > scale ? fabs(want[i]) : scale;
    }
    double error = diff == 0.0 ? 0.0 : diff / (scale > 0.0 ? scale : 1.0);
    if (error > worst_error[op])
        worst_error[op] = error;
    printf("%-8s %-8s %-52s max|gpu-ref|/max|ref| = %.2e\n", gpu_name, op_names[op], shape, error);
    fflush(stdout);
    ck_assert_msg(error <= tolerance, "%s %s: error %.3e > %.0e", op_names[op], shape, error, tolerance);
    return error;
}

/* ---- convolution ---- */

static void run_conv(uint32_t batch, uint32_t cin, uint32_t h, uint32_t w, uint32_t cout, uint32_t k, uint32_t stride,
                     uint32_t pad, uint32_t groups, int relu)
{
    an_conv_desc d = {batch, cin, h, w, cout, (h + 2 * pad - k) / stride + 1, (w + 2 * pad - k) / stride + 1,
                      k, stride, pad, groups, relu};
    size_t in_n = (size_t)batch * cin * h * w, out_n = (size_t)batch * cout * d.out_height * d.out_width;
    size_t w_n = (size_t)cout * (cin / groups) * k * k;
    float *in = random_floats(in_n, 1.0f), *weight = random_floats(w_n, 0.5f), *bias = random_floats(cout, 0.5f);
    float *want = malloc(out_n * sizeof *want);
    an_ref_conv2d(&d, in, weight, bias, want);

    an_backend_context *c = open_context();
    an_op_desc op = {.kind = AN_OP_CONV2D, .u.conv = d};
    an_buffer *wb = NULL;
    ck_assert_msg(gpu->weights_create(c, &op, weight, bias, &wb) == ALEXNET_OK, "weights_create: %s",
                  alexnet_last_error());
    an_op_desc planned = op;
    planned.u.conv.batch = batch + 1; /* prepared for more than it runs */
    ck_assert_msg(gpu->prepare(c, &planned, 1) == ALEXNET_OK, "prepare: %s", alexnet_last_error());
    an_buffer *ib = device_copy(c, in, in_n), *ob = device_copy(c, NULL, out_n);
    ck_assert_msg(gpu->conv2d(c, &d, ib, wb, ob) == ALEXNET_OK, "conv2d: %s", alexnet_last_error());
    float *got = host_copy(c, ob, out_n);
    char shape[96];
    snprintf(shape, sizeof shape, "n%u %ux%ux%u -> %u k%u s%u p%u g%u%s", batch, cin, h, w, cout, k, stride, pad, groups,
             relu ? " relu" : "");
    /* Sums of up to a few thousand products: float rounding differs with the summation order. */
    compare(OP_CONV, shape, got, want, out_n, 2e-6 * (1.0 + sqrt((double)w_n / cout)));
    gpu->buffer_destroy(c, ib);
    gpu->buffer_destroy(c, ob);
    gpu->buffer_destroy(c, wb);
    close_context(c);
    free(in), free(weight), free(bias), free(want), free(got);
}

START_TEST(conv2d_fixed_shapes)
{
    rng_state = 1;
    run_conv(2, 3, 35, 35, 16, 11, 4, 2, 1, 1);  /* conv1-like: large kernel, stride 4 */
    run_conv(1, 8, 13, 13, 12, 5, 1, 2, 2, 1);   /* two towers */
    run_conv(3, 6, 9, 7, 70, 3, 1, 1, 1, 0);     /* M > 64, non-square, no ReLU */
    run_conv(1, 96, 6, 6, 64, 3, 1, 1, 2, 1);    /* K > 16 * many */
    run_conv(2, 4, 5, 5, 4, 1, 1, 0, 1, 0);      /* 1 x 1 kernel */
    run_conv(1, 2, 3, 3, 3, 3, 2, 1, 1, 1);      /* tiny output */
    run_conv(2, 4, 17, 17, 6, 3, 3, 0, 2, 0);    /* stride 3, no padding, groups */
    run_conv(1, 3, 70, 70, 64, 11, 4, 2, 1, 1);  /* P spans several 64-wide tiles */
}
END_TEST

START_TEST(conv2d_random_shapes)
{
    rng_state = 1000 + (uint64_t)_i;
    uint32_t groups = rng_range(1, 3);
    uint32_t cin = groups * rng_range(1, 12), cout = groups * rng_range(1, 40);
    uint32_t k = rng_range(1, 7), stride = rng_range(1, 4), pad = rng_range(0, k / 2 + 1);
    uint32_t h = rng_range(k > 2 * pad ? k - 2 * pad : 1, 24), w = rng_range(k > 2 * pad ? k - 2 * pad : 1, 24);
    run_conv(rng_range(1, 3), cin, h, w, cout, k, stride, pad, groups, (int)(rng_next() & 1));
}
END_TEST

/* ---- fully connected ---- */

static void run_fc(uint32_t batch, uint32_t in_f, uint32_t out_f, int relu)
{
    an_fc_desc d = {batch, in_f, out_f, relu};
    float *in = random_floats((size_t)batch * in_f, 1.0f), *weight = random_floats((size_t)out_f * in_f, 0.5f);
    float *bias = random_floats(out_f, 0.5f), *want = malloc((size_t)batch * out_f * sizeof *want);
    an_ref_fully_connected(&d, in, weight, bias, want);
    an_backend_context *c = open_context();
    an_op_desc op = {.kind = AN_OP_FULLY_CONNECTED, .u.fc = d};
    an_buffer *wb = NULL;
    ck_assert_msg(gpu->weights_create(c, &op, weight, bias, &wb) == ALEXNET_OK, "weights_create: %s",
                  alexnet_last_error());
    ck_assert_msg(gpu->prepare(c, &op, 1) == ALEXNET_OK, "prepare: %s", alexnet_last_error());
    an_buffer *ib = device_copy(c, in, (size_t)batch * in_f), *ob = device_copy(c, NULL, (size_t)batch * out_f);
    ck_assert_msg(gpu->fully_connected(c, &d, ib, wb, ob) == ALEXNET_OK, "fully_connected: %s", alexnet_last_error());
    float *got = host_copy(c, ob, (size_t)batch * out_f);
    char shape[96];
    snprintf(shape, sizeof shape, "n%u %u -> %u%s", batch, in_f, out_f, relu ? " relu" : "");
    compare(OP_FC, shape, got, want, (size_t)batch * out_f, 2e-6 * (1.0 + sqrt((double)in_f)));
    gpu->buffer_destroy(c, ib);
    gpu->buffer_destroy(c, ob);
    gpu->buffer_destroy(c, wb);
    close_context(c);
    free(in), free(weight), free(bias), free(want), free(got);
}

START_TEST(fc_shapes)
{
    rng_state = 2;
    static const uint32_t batches[] = {1, 2, 7, 8, 9, 20, 64, 65};
    for (size_t b = 0; b < sizeof batches / sizeof batches[0]; b++)
        run_fc(batches[b], 1 + rng_next() % 700, 1 + rng_next() % 300, (int)(b & 1));
    run_fc(1, 9216, 64, 1);  /* fc6's input width, batch 1 (the small-batch kernel) */
    run_fc(33, 4096, 10, 0); /* the GEMM kernel, ragged tiles */
    run_fc(3, 1, 1, 0);
    /* Widths that are multiples of 8: the CPU-device kernel, batches around its groups of 4 images. */
    run_fc(5, 256, 33, 1);
    run_fc(64, 512, 100, 0);
    run_fc(13, 88, 7, 1);
    run_fc(4, 8, 1, 0);
}
END_TEST

/* ---- pooling, LRN, softmax, elementwise ---- */

static void run_pool(int op_kind, uint32_t batch, uint32_t ch, uint32_t h, uint32_t w, uint32_t oh, uint32_t ow,
                     uint32_t k, uint32_t stride, int with_nan)
{
    an_pool_desc d = {batch, ch, h, w, oh, ow, k, stride};
    size_t in_n = (size_t)batch * ch * h * w, out_n = (size_t)batch * ch * oh * ow;
    float *in = random_floats(in_n, 3.0f), *want = malloc(out_n * sizeof *want);
    if (with_nan)
        in[in_n / 2] = NAN;
    if (op_kind == OP_MAXPOOL)
        an_ref_max_pool2d(&d, in, want);
    else
        an_ref_adaptive_avg_pool2d(&d, in, want);
    an_backend_context *c = open_context();
    an_buffer *ib = device_copy(c, in, in_n), *ob = device_copy(c, NULL, out_n);
    alexnet_status status = op_kind == OP_MAXPOOL ? gpu->max_pool2d(c, &d, ib, ob) : gpu->adaptive_avg_pool2d(c, &d, ib, ob);
    ck_assert_msg(status == ALEXNET_OK, "pool: %s", alexnet_last_error());
    float *got = host_copy(c, ob, out_n);
    char shape[96];
    snprintf(shape, sizeof shape, "n%u c%u %ux%u -> %ux%u k%u s%u%s", batch, ch, h, w, oh, ow, k, stride,
             with_nan ? " NaN" : "");
    /* Max pooling picks an input exactly; averaging sums in the reference's order. */
    compare(op_kind, shape, got, want, out_n, op_kind == OP_MAXPOOL ? 0.0 : 1e-6);
    gpu->buffer_destroy(c, ib);
    gpu->buffer_destroy(c, ob);
    close_context(c);
    free(in), free(want), free(got);
}

START_TEST(pooling)
{
    rng_state = 3;
    run_pool(OP_MAXPOOL, 2, 5, 13, 13, 6, 6, 3, 2, 0);
    run_pool(OP_MAXPOOL, 1, 3, 27, 31, 13, 15, 3, 2, 1);
    run_pool(OP_MAXPOOL, 3, 2, 8, 8, 4, 4, 2, 2, 0);
    run_pool(OP_MAXPOOL, 1, 4, 5, 6, 3, 4, 3, 1, 0);
    run_pool(OP_AVGPOOL, 2, 5, 13, 13, 6, 6, 0, 0, 0);
    run_pool(OP_AVGPOOL, 1, 3, 5, 4, 6, 6, 0, 0, 0); /* upsampling: cells overlap */
    run_pool(OP_AVGPOOL, 2, 2, 7, 9, 3, 2, 0, 0, 0);
    run_pool(OP_AVGPOOL, 1, 4, 6, 6, 6, 6, 0, 0, 0);
    run_pool(OP_AVGPOOL, 1, 2, 1, 1, 6, 6, 0, 0, 0);
}
END_TEST

static void run_lrn(uint32_t batch, uint32_t ch, uint32_t h, uint32_t w, uint32_t size, float alpha, float beta, float k)
{
    an_lrn_desc d = {batch, ch, h, w, size, alpha, beta, k};
    size_t n = (size_t)batch * ch * h * w;
    float *in = random_floats(n, 4.0f), *want = malloc(n * sizeof *want);
    an_ref_lrn(&d, in, want);
    an_backend_context *c = open_context();
    an_buffer *ib = device_copy(c, in, n), *ob = device_copy(c, NULL, n);
    ck_assert_msg(gpu->lrn(c, &d, ib, ob) == ALEXNET_OK, "lrn: %s", alexnet_last_error());
    float *got = host_copy(c, ob, n);
    char shape[96];
    snprintf(shape, sizeof shape, "n%u c%u %ux%u size %u alpha %g beta %g k %g", batch, ch, h, w, size, alpha, beta, k);
    compare(OP_LRN, shape, got, want, n, 2e-6);
    gpu->buffer_destroy(c, ib);
    gpu->buffer_destroy(c, ob);
    close_context(c);
    free(in), free(want), free(got);
}

START_TEST(lrn)
{
    rng_state = 4;
    run_lrn(2, 16, 7, 7, 5, 1e-4f / 5, 0.75f, 1.0f); /* PyTorch's convention */
    run_lrn(1, 12, 5, 9, 5, 1e-4f, 0.75f, 2.0f);     /* the paper's */
    run_lrn(1, 10, 4, 4, 4, 0.2f, 0.6f, 2.0f);       /* even size: asymmetric window, large alpha */
    run_lrn(3, 3, 3, 3, 7, 0.5f, 1.5f, 1.0f);        /* window wider than the channels */
    run_lrn(1, 5, 2, 2, 1, 0.1f, 0.75f, 1.0f);
}
END_TEST

static void run_softmax(uint32_t batch, uint32_t classes, float scale)
{
    an_softmax_desc d = {batch, classes};
    size_t n = (size_t)batch * classes;
    float *in = random_floats(n, scale), *want = malloc(n * sizeof *want);
    an_ref_softmax(batch, classes, in, want);
    an_backend_context *c = open_context();
    an_buffer *ib = device_copy(c, in, n), *ob = device_copy(c, NULL, n);
    ck_assert_msg(gpu->softmax(c, &d, ib, ob) == ALEXNET_OK, "softmax: %s", alexnet_last_error());
    float *got = host_copy(c, ob, n);
    char shape[96];
    snprintf(shape, sizeof shape, "n%u classes %u logits in +-%g", batch, classes, scale);
    compare(OP_SOFTMAX, shape, got, want, n, 1e-5);
    gpu->buffer_destroy(c, ib);
    gpu->buffer_destroy(c, ob);
    close_context(c);
    free(in), free(want), free(got);
}

START_TEST(softmax)
{
    rng_state = 5;
    run_softmax(3, 1000, 10.0f);
    run_softmax(2, 10, 1.0f);
    run_softmax(1, 1, 1.0f);
    run_softmax(5, 1001, 100.0f); /* large logits: the maximum must be subtracted */
    run_softmax(1, 4097, 3.0f);
}
END_TEST

START_TEST(relu_and_dropout)
{
    rng_state = 6;
    const size_t n = 100003;
    float *in = random_floats(n, 2.0f), *want = malloc(n * sizeof *want);
    an_backend_context *c = open_context();
    an_buffer *ib = device_copy(c, in, n), *ob = device_copy(c, NULL, n);

    an_ref_relu(n, in, want);
    ck_assert_msg(gpu->relu(c, n, ib, ob) == ALEXNET_OK, "relu: %s", alexnet_last_error());
    float *got = host_copy(c, ob, n);
    compare(OP_RELU, "100003 values", got, want, n, 0.0);
    free(got);

    static const float rates[] = {0.5f, 0.1f, 0.9f, 0.0f};
    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
        uint64_t seed = 0x123456789ABCDEFull * (r + 1);
        an_ref_dropout(n, rates[r], seed, in, want);
        ck_assert_msg(gpu->dropout(c, n, rates[r], seed, ib, ob) == ALEXNET_OK, "dropout: %s", alexnet_last_error());
        got = host_copy(c, ob, n);
        char shape[64];
        snprintf(shape, sizeof shape, "100003 values rate %.1f (the same mask)", rates[r]);
        compare(OP_DROPOUT, shape, got, want, n, 0.0);
        free(got);
    }
    gpu->buffer_destroy(c, ib);
    gpu->buffer_destroy(c, ob);
    close_context(c);
    free(in), free(want);
}
END_TEST

START_TEST(errors_are_reported)
{
    an_backend_context *c = open_context();
    float values[8] = {0};
    an_buffer *small = device_copy(c, NULL, 4);
    ck_assert_int_eq(gpu->upload(c, small, values, 8), ALEXNET_E_BACKEND);
    ck_assert(strstr(alexnet_last_error(), "upload") != NULL);
    ck_assert_int_eq(gpu->download(c, small, values, 8), ALEXNET_E_BACKEND);
    ck_assert(strstr(alexnet_last_error(), "download") != NULL);
    /* A conv handle given to the FC op is refused, not misread. */
    an_conv_desc cd = {1, 2, 4, 4, 2, 4, 4, 1, 1, 0, 1, 0};
    an_op_desc op = {.kind = AN_OP_CONV2D, .u.conv = cd};
    an_buffer *wb = NULL;
    ck_assert_int_eq(gpu->weights_create(c, &op, values, values, &wb), ALEXNET_OK);
    an_fc_desc fd = {1, 4, 2, 0};
    ck_assert_int_eq(gpu->fully_connected(c, &fd, small, wb, small), ALEXNET_E_BACKEND);
    gpu->buffer_destroy(c, wb);
    gpu->buffer_destroy(c, small);
    if (strcmp(gpu_name, "opencl") == 0) {
        /* Tensors beyond the kernels' 32-bit indexing are refused when the plan is prepared, not run wrong. */
        an_op_desc huge = {.kind = AN_OP_CONV2D, .u.conv = {4096, 64, 256, 256, 64, 256, 256, 3, 1, 1, 1, 1}};
        ck_assert_int_eq(gpu->prepare(c, &huge, 1), ALEXNET_E_UNSUPPORTED);
        ck_assert(strstr(alexnet_last_error(), "2^31") != NULL);
    }
    ck_assert_int_eq(gpu->sync(c), ALEXNET_OK);
    close_context(c);
}
END_TEST

/* ---- training ops ---- */

static int has_training(void) { return gpu->conv2d_backward_data != NULL && gpu->sgd_update != NULL; }

static void run_conv_backward(uint32_t batch, uint32_t cin, uint32_t h, uint32_t w, uint32_t cout, uint32_t k,
                              uint32_t stride, uint32_t pad, uint32_t groups)
{
    an_conv_desc d = {batch, cin, h, w, cout, (h + 2 * pad - k) / stride + 1, (w + 2 * pad - k) / stride + 1,
                      k, stride, pad, groups, 1};
    size_t in_n = (size_t)batch * cin * h * w, out_n = (size_t)batch * cout * d.out_height * d.out_width;
    size_t w_n = (size_t)cout * (cin / groups) * k * k;
    float *in = random_floats(in_n, 1.0f), *weight = random_floats(w_n, 0.5f), *grad_out = random_floats(out_n, 1.0f);
    float *want_in = malloc(in_n * sizeof *want_in), *want_w = malloc(w_n * sizeof *want_w);
    float *want_b = malloc(cout * sizeof *want_b);
    an_ref_conv2d_backward_data(&d, grad_out, weight, want_in);
    an_ref_conv2d_backward_weights(&d, in, grad_out, want_w, want_b);

    an_backend_context *c = open_context();
    an_buffer *ib = device_copy(c, in, in_n), *wb = device_copy(c, weight, w_n), *gb = device_copy(c, grad_out, out_n);
    /* Outputs start as garbage: the ops must overwrite, never accumulate. */
    float *garbage = random_floats(in_n > w_n ? in_n : w_n, 100.0f);
    an_buffer *gin = device_copy(c, garbage, in_n), *gw = device_copy(c, garbage, w_n), *gbias = device_copy(c, garbage, cout);
    ck_assert_msg(gpu->conv2d_backward_data(c, &d, gb, wb, gin) == ALEXNET_OK, "%s", alexnet_last_error());
    ck_assert_msg(gpu->conv2d_backward_weights(c, &d, ib, gb, gw, gbias) == ALEXNET_OK, "%s", alexnet_last_error());
    float *got_in = host_copy(c, gin, in_n), *got_w = host_copy(c, gw, w_n), *got_b = host_copy(c, gbias, cout);
    char shape[96];
    snprintf(shape, sizeof shape, "n%u %ux%ux%u -> %u k%u s%u p%u g%u data", batch, cin, h, w, cout, k, stride, pad,
             groups);
    compare(OP_CONV_BWD, shape, got_in, want_in, in_n, 2e-6 * (1.0 + sqrt((double)cout / groups * k * k)));
    size_t terms = (size_t)batch * d.out_height * d.out_width;
    shape[strlen(shape) - 4] = '\0';
    strcat(shape, "weights");
    compare(OP_CONV_BWD, shape, got_w, want_w, w_n, 2e-6 * (1.0 + sqrt((double)terms)));
    shape[strlen(shape) - 7] = '\0';
    strcat(shape, "bias");
    compare(OP_CONV_BWD, shape, got_b, want_b, cout, 2e-6 * (1.0 + sqrt((double)terms)));
    an_buffer *all[] = {ib, wb, gb, gin, gw, gbias};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        gpu->buffer_destroy(c, all[i]);
    close_context(c);
    free(in), free(weight), free(grad_out), free(want_in), free(want_w), free(want_b), free(garbage);
    free(got_in), free(got_w), free(got_b);
}

START_TEST(conv2d_backward)
{
    if (!has_training())
        return;
    rng_state = 20;
    run_conv_backward(2, 3, 35, 35, 16, 11, 4, 2, 1);
    run_conv_backward(1, 8, 13, 13, 12, 5, 1, 2, 2);
    run_conv_backward(3, 6, 9, 7, 70, 3, 1, 1, 1);
    run_conv_backward(2, 4, 17, 17, 6, 3, 3, 0, 2);
    run_conv_backward(1, 96, 6, 6, 64, 3, 1, 1, 2);
    for (int i = 0; i < 8; i++) {
        uint32_t groups = rng_range(1, 3);
        uint32_t cin = groups * rng_range(1, 10), cout = groups * rng_range(1, 30);
        uint32_t k = rng_range(1, 6), stride = rng_range(1, 4), pad = rng_range(0, k / 2 + 1);
        uint32_t h = rng_range(k > 2 * pad ? k - 2 * pad : 1, 20), w = rng_range(k > 2 * pad ? k - 2 * pad : 1, 20);
        run_conv_backward(rng_range(1, 3), cin, h, w, cout, k, stride, pad, groups);
    }
}
END_TEST

static void run_fc_backward(uint32_t batch, uint32_t in_f, uint32_t out_f)
{
    an_fc_desc d = {batch, in_f, out_f, 1};
    float *in = random_floats((size_t)batch * in_f, 1.0f), *weight = random_floats((size_t)out_f * in_f, 0.5f);
    float *grad_out = random_floats((size_t)batch * out_f, 1.0f);
    float *want_in = malloc((size_t)batch * in_f * sizeof *want_in), *want_w = malloc((size_t)out_f * in_f * sizeof *want_w);
    float *want_b = malloc(out_f * sizeof *want_b);
    an_ref_fully_connected_backward_data(&d, grad_out, weight, want_in);
    an_ref_fully_connected_backward_weights(&d, in, grad_out, want_w, want_b);
    an_backend_context *c = open_context();
    an_buffer *ib = device_copy(c, in, (size_t)batch * in_f), *wb = device_copy(c, weight, (size_t)out_f * in_f);
    an_buffer *gb = device_copy(c, grad_out, (size_t)batch * out_f);
    an_buffer *gin = device_copy(c, NULL, (size_t)batch * in_f), *gw = device_copy(c, NULL, (size_t)out_f * in_f);
    an_buffer *gbias = device_copy(c, NULL, out_f);
    ck_assert_msg(gpu->fully_connected_backward_data(c, &d, gb, wb, gin) == ALEXNET_OK, "%s", alexnet_last_error());
    ck_assert_msg(gpu->fully_connected_backward_weights(c, &d, ib, gb, gw, gbias) == ALEXNET_OK, "%s",
                  alexnet_last_error());
    float *got_in = host_copy(c, gin, (size_t)batch * in_f), *got_w = host_copy(c, gw, (size_t)out_f * in_f);
    float *got_b = host_copy(c, gbias, out_f);
    char shape[96];
    snprintf(shape, sizeof shape, "n%u %u -> %u data", batch, in_f, out_f);
    compare(OP_FC_BWD, shape, got_in, want_in, (size_t)batch * in_f, 2e-6 * (1.0 + sqrt((double)out_f)));
    snprintf(shape, sizeof shape, "n%u %u -> %u weights", batch, in_f, out_f);
    compare(OP_FC_BWD, shape, got_w, want_w, (size_t)out_f * in_f, 2e-6 * (1.0 + sqrt((double)batch)));
    snprintf(shape, sizeof shape, "n%u %u -> %u bias", batch, in_f, out_f);
    compare(OP_FC_BWD, shape, got_b, want_b, out_f, 0.0); /* summed in batch order, like the reference */
    an_buffer *all[] = {ib, wb, gb, gin, gw, gbias};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        gpu->buffer_destroy(c, all[i]);
    close_context(c);
    free(in), free(weight), free(grad_out), free(want_in), free(want_w), free(want_b), free(got_in), free(got_w),
        free(got_b);
}

START_TEST(fc_backward)
{
    if (!has_training())
        return;
    rng_state = 21;
    run_fc_backward(1, 300, 70);
    run_fc_backward(5, 1000, 10);
    run_fc_backward(64, 129, 65);
    run_fc_backward(17, 9216, 33);
    run_fc_backward(3, 1, 1);
}
END_TEST

static void run_pool_backward(int max_pool, uint32_t batch, uint32_t ch, uint32_t h, uint32_t w, uint32_t oh,
                              uint32_t ow, uint32_t k, uint32_t stride, int ties)
{
    an_pool_desc d = {batch, ch, h, w, oh, ow, k, stride};
    size_t in_n = (size_t)batch * ch * h * w, out_n = (size_t)batch * ch * oh * ow;
    float *in = random_floats(in_n, 3.0f), *grad_out = random_floats(out_n, 1.0f), *want = malloc(in_n * sizeof *want);
    if (ties)
        for (size_t i = 0; i < in_n; i++)
            in[i] = (float)(i % 3 == 0); /* many equal maxima: the first in window order wins */
    if (max_pool)
        an_ref_max_pool2d_backward(&d, in, grad_out, want);
    else
        an_ref_adaptive_avg_pool2d_backward(&d, grad_out, want);
    an_backend_context *c = open_context();
    an_buffer *ib = device_copy(c, in, in_n), *gb = device_copy(c, grad_out, out_n), *gin = device_copy(c, in, in_n);
    alexnet_status status = max_pool ? gpu->max_pool2d_backward(c, &d, ib, gb, gin)
                                     : gpu->adaptive_avg_pool2d_backward(c, &d, gb, gin);
    ck_assert_msg(status == ALEXNET_OK, "%s", alexnet_last_error());
    float *got = host_copy(c, gin, in_n);
    char shape[96];
    snprintf(shape, sizeof shape, "%s n%u c%u %ux%u -> %ux%u k%u s%u%s", max_pool ? "max" : "avg", batch, ch, h, w,
             oh, ow, k, stride, ties ? " ties" : "");
    compare(OP_POOL_BWD, shape, got, want, in_n, 0.0); /* the same sums in the same order */
    gpu->buffer_destroy(c, ib);
    gpu->buffer_destroy(c, gb);
    gpu->buffer_destroy(c, gin);
    close_context(c);
    free(in), free(grad_out), free(want), free(got);
}

START_TEST(pooling_backward)
{
    if (!has_training())
        return;
    rng_state = 22;
    run_pool_backward(1, 2, 5, 13, 13, 6, 6, 3, 2, 0);
    run_pool_backward(1, 1, 3, 27, 31, 13, 15, 3, 2, 1);
    run_pool_backward(1, 1, 2, 9, 9, 3, 3, 3, 3, 0);
    run_pool_backward(1, 1, 4, 5, 6, 3, 4, 3, 1, 1);
    run_pool_backward(1, 1, 2, 8, 8, 3, 3, 2, 3, 0); /* gaps between windows: zeros */
    run_pool_backward(0, 2, 5, 13, 13, 6, 6, 0, 0, 0);
    run_pool_backward(0, 1, 3, 5, 4, 6, 6, 0, 0, 0);
    run_pool_backward(0, 2, 2, 7, 9, 3, 2, 0, 0, 0);
}
END_TEST

static void run_lrn_backward(uint32_t batch, uint32_t ch, uint32_t h, uint32_t w, uint32_t size, float alpha,
                             float beta, float k)
{
    an_lrn_desc d = {batch, ch, h, w, size, alpha, beta, k};
    size_t n = (size_t)batch * ch * h * w;
    float *in = random_floats(n, 4.0f), *out = malloc(n * sizeof *out), *grad_out = random_floats(n, 1.0f);
    float *want = malloc(n * sizeof *want);
    an_ref_lrn(&d, in, out);
    an_ref_lrn_backward(&d, in, out, grad_out, want);
    an_backend_context *c = open_context();
    an_buffer *ib = device_copy(c, in, n), *ob = device_copy(c, out, n), *gb = device_copy(c, grad_out, n);
    an_buffer *gin = device_copy(c, NULL, n);
    ck_assert_msg(gpu->lrn_backward(c, &d, ib, ob, gb, gin) == ALEXNET_OK, "%s", alexnet_last_error());
    float *got = host_copy(c, gin, n);
    char shape[96];
    snprintf(shape, sizeof shape, "n%u c%u %ux%u size %u alpha %g beta %g k %g", batch, ch, h, w, size, alpha, beta, k);
    compare(OP_LRN_BWD, shape, got, want, n, 1e-5);
    an_buffer *all[] = {ib, ob, gb, gin};
    for (size_t i = 0; i < 4; i++)
        gpu->buffer_destroy(c, all[i]);
    close_context(c);
    free(in), free(out), free(grad_out), free(want), free(got);
}

START_TEST(lrn_backward)
{
    if (!has_training())
        return;
    rng_state = 23;
    run_lrn_backward(2, 16, 7, 7, 5, 1e-4f / 5, 0.75f, 1.0f);
    run_lrn_backward(1, 12, 5, 9, 5, 1e-4f, 0.75f, 2.0f);
    run_lrn_backward(1, 10, 4, 4, 4, 0.2f, 0.6f, 2.0f);
    run_lrn_backward(3, 3, 3, 3, 7, 0.5f, 1.5f, 1.0f);
}
END_TEST

START_TEST(activations_backward_and_sgd)
{
    if (!has_training())
        return;
    rng_state = 24;
    const size_t n = 50021;
    float *a = random_floats(n, 1.0f), *g = random_floats(n, 1.0f), *v = random_floats(n, 0.1f);
    float *want = malloc(n * sizeof *want);
    for (size_t i = 0; i < n; i += 7)
        a[i] = 0.0f; /* ReLU outputs are often exactly 0: the gradient must stop there */
    an_backend_context *c = open_context();
    an_buffer *ab = device_copy(c, a, n), *gb = device_copy(c, g, n), *ob = device_copy(c, NULL, n);
    an_ref_relu_backward(n, a, g, want);
    ck_assert_int_eq(gpu->relu_backward(c, n, ab, gb, ob), ALEXNET_OK);
    float *got = host_copy(c, ob, n);
    compare(OP_ACT_BWD, "relu_backward", got, want, n, 0.0);
    free(got);
    ck_assert_int_eq(gpu->relu_backward(c, n, ab, gb, gb), ALEXNET_OK); /* in place */
    got = host_copy(c, gb, n);
    compare(OP_ACT_BWD, "relu_backward in place", got, want, n, 0.0);
    free(got);
    ck_assert_int_eq(gpu->upload(c, gb, g, n), ALEXNET_OK);
    an_ref_dropout_backward(n, 0.5f, 99, g, want);
    ck_assert_int_eq(gpu->dropout_backward(c, n, 0.5f, 99, gb, gb), ALEXNET_OK); /* in place */
    got = host_copy(c, gb, n);
    compare(OP_ACT_BWD, "dropout_backward in place", got, want, n, 0.0);
    free(got);

    /* SGD: the parameters and the momentum after two updates. */
    float *p = random_floats(n, 1.0f);
    an_buffer *pb = device_copy(c, p, n), *vb = device_copy(c, v, n);
    ck_assert_int_eq(gpu->upload(c, gb, g, n), ALEXNET_OK);
    an_sgd_desc sd = {n, 0.01f, 0.9f, 5e-4f};
    for (int step = 0; step < 2; step++) {
        an_ref_sgd_update(&sd, p, g, v);
        ck_assert_int_eq(gpu->sgd_update(c, &sd, pb, gb, vb), ALEXNET_OK);
    }
    got = host_copy(c, pb, n);
    compare(OP_SGD, "parameters after 2 steps", got, p, n, 0.0);
    free(got);
    got = host_copy(c, vb, n);
    compare(OP_SGD, "momentum after 2 steps", got, v, n, 0.0);
    free(got);
    an_buffer *all[] = {ab, gb, ob, pb, vb};
    for (size_t i = 0; i < 5; i++)
        gpu->buffer_destroy(c, all[i]);
    close_context(c);
    free(a), free(g), free(v), free(want), free(p);
}
END_TEST

START_TEST(softmax_cross_entropy)
{
    if (!has_training())
        return;
    rng_state = 25;
    static const uint32_t shapes[][2] = {{4, 1000}, {3, 10}, {1, 1}, {7, 37}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        an_softmax_desc d = {shapes[s][0], shapes[s][1]};
        size_t n = (size_t)d.batch * d.classes;
        float *logits = random_floats(n, 8.0f), labels[8], want_g[4000], want_l[8];
        for (uint32_t b = 0; b < d.batch; b++)
            labels[b] = (float)(rng_next() % d.classes);
        ck_assert(an_ref_softmax_cross_entropy(&d, logits, labels, want_g, want_l));
        an_backend_context *c = open_context();
        an_buffer *lb = device_copy(c, logits, n), *yb = device_copy(c, labels, d.batch);
        an_buffer *gb = device_copy(c, NULL, n), *ob = device_copy(c, NULL, d.batch);
        ck_assert_int_eq(gpu->softmax_cross_entropy(c, &d, lb, yb, gb, ob), ALEXNET_OK);
        float *got_g = host_copy(c, gb, n), *got_l = host_copy(c, ob, d.batch);
        char shape[64];
        snprintf(shape, sizeof shape, "n%u classes %u gradient", d.batch, d.classes);
        compare(OP_XENT, shape, got_g, want_g, n, 1e-5);
        snprintf(shape, sizeof shape, "n%u classes %u loss", d.batch, d.classes);
        compare(OP_XENT, shape, got_l, want_l, d.batch, 1e-5);
        /* A label that is no class index is reported by the next sync. */
        labels[d.batch - 1] = (float)d.classes;
        ck_assert_int_eq(gpu->upload(c, yb, labels, d.batch), ALEXNET_OK);
        ck_assert_int_eq(gpu->softmax_cross_entropy(c, &d, lb, yb, gb, ob), ALEXNET_OK);
        ck_assert_int_eq(gpu->sync(c), ALEXNET_E_INVALID_ARGUMENT);
        ck_assert(strstr(alexnet_last_error(), "label") != NULL);
        ck_assert_int_eq(gpu->sync(c), ALEXNET_OK); /* reported once */
        gpu->buffer_destroy(c, lb);
        gpu->buffer_destroy(c, yb);
        gpu->buffer_destroy(c, gb);
        gpu->buffer_destroy(c, ob);
        close_context(c);
        free(logits), free(got_g), free(got_l);
    }
}
END_TEST


/* ---- the public API on the backend ---- */

static alexnet_config small_config(void)
{
    alexnet_config c;
    ck_assert_int_eq(alexnet_config_preset(ALEXNET_VARIANT_PAPER_2012, &c), ALEXNET_OK);
    static const alexnet_conv_layer_config layers[] = {
        {24, 5, 2, 2, 1, 1, 1}, {32, 3, 1, 1, 2, 1, 1}, {40, 3, 1, 1, 1, 0, 0}, {40, 3, 1, 1, 2, 0, 0},
        {32, 3, 1, 1, 2, 0, 1},
    };
    c.variant = ALEXNET_VARIANT_CUSTOM;
    c.input_height = c.input_width = 48;
    c.conv_count = 5;
    memset(c.conv, 0, sizeof c.conv);
    memcpy(c.conv, layers, sizeof layers);
    c.adaptive_pool_size = 3;
    c.hidden_fc_count = 2;
    c.hidden_fc[0] = 96;
    c.hidden_fc[1] = 80;
    c.num_classes = 37;
    ck_assert_msg(alexnet_config_validate(&c) == ALEXNET_OK, "%s", alexnet_last_error());
    return c;
}

static alexnet_context *api_context(const alexnet_model *model, const char *backend, size_t batch,
                                    const char *const *capture)
{
    alexnet_context_options options;
    alexnet_context_options_init(&options);
    options.backend = backend;
    options.batch = (uint32_t)batch;
    options.capture_layers = capture;
    alexnet_context *context = NULL;
    ck_assert_msg(alexnet_context_create(model, &options, &context) == ALEXNET_OK, "context on %s: %s", backend,
                  alexnet_last_error());
    return context;
}

START_TEST(network_matches_reference)
{
    test_counting_allocator model_counter;
    alexnet_config config = small_config();
    alexnet_model_options mo;
    alexnet_model_options_init(&mo);
    mo.config = &config;
    mo.allocator = test_counting_allocator_make(&model_counter);
    alexnet_model *model = NULL;
    ck_assert_int_eq(alexnet_model_create(&mo, 7, &model), ALEXNET_OK);
    const char *capture[] = {"conv2", "norm2", "pool5", "fc6", NULL};
    enum { BATCH = 3, PIXELS = 3 * 48 * 48, CLASSES = 37 };
    float *input = malloc(BATCH * PIXELS * sizeof *input);
    test_fill_input(input, BATCH * PIXELS, 11);
    float ref_logits[BATCH * CLASSES], ref_probs[BATCH * CLASSES], logits[BATCH * CLASSES], probs[BATCH * CLASSES];

    alexnet_context *ref = api_context(model, "reference", BATCH, capture);
    alexnet_context *dev = api_context(model, gpu_name, BATCH, capture);
    ck_assert_str_eq(alexnet_context_backend_name(dev), gpu_name);
    ck_assert_int_eq(alexnet_infer(ref, input, BATCH, ref_logits, ref_probs), ALEXNET_OK);
    ck_assert_msg(alexnet_infer(dev, input, BATCH, logits, probs) == ALEXNET_OK, "infer: %s", alexnet_last_error());
    double logit_error = test_max_relative_error(logits, ref_logits, BATCH * CLASSES);
    double prob_error = test_max_relative_error(probs, ref_probs, BATCH * CLASSES);
    printf("%-8s network small-custom n%d: logits %.2e, probabilities %.2e\n", gpu_name, BATCH, logit_error, prob_error);
    ck_assert_msg(logit_error < 1e-4 && prob_error < 1e-4, "logits %.3e, probabilities %.3e", logit_error, prob_error);
    for (int i = 0; capture[i] != NULL; i++) {
        size_t per_image = 0;
        ck_assert_int_eq(alexnet_context_layer_size(dev, capture[i], &per_image), ALEXNET_OK);
        float *a = malloc(BATCH * per_image * sizeof *a), *b = malloc(BATCH * per_image * sizeof *b);
        ck_assert_int_eq(alexnet_layer_output(dev, capture[i], a, BATCH * per_image), ALEXNET_OK);
        ck_assert_int_eq(alexnet_layer_output(ref, capture[i], b, BATCH * per_image), ALEXNET_OK);
        double e = test_max_relative_error(a, b, BATCH * per_image);
        printf("%-8s network layer %-6s %.2e\n", gpu_name, capture[i], e);
        ck_assert_msg(e < 1e-4, "%s: %.3e", capture[i], e);
        free(a), free(b);
    }
    /* One image at a time gives what the batch gave (to rounding: the kernels fold the batch into tiles). */
    float single[CLASSES];
    for (int n = 0; n < BATCH; n++) {
        ck_assert_int_eq(alexnet_infer(dev, input + n * PIXELS, 1, single, NULL), ALEXNET_OK);
        ck_assert(test_max_relative_error(single, logits + n * CLASSES, CLASSES) < 1e-5);
    }
    /* Reshape to another input size on the device. */
    ck_assert_int_eq(alexnet_context_reshape(dev, 2, 64, 56), ALEXNET_OK);
    ck_assert_int_eq(alexnet_context_reshape(ref, 2, 64, 56), ALEXNET_OK);
    float *big = malloc(2 * 3 * 64 * 56 * sizeof *big);
    test_fill_input(big, 2 * 3 * 64 * 56, 12);
    ck_assert_int_eq(alexnet_infer(dev, big, 2, logits, NULL), ALEXNET_OK);
    ck_assert_int_eq(alexnet_infer(ref, big, 2, ref_logits, NULL), ALEXNET_OK);
    ck_assert(test_max_relative_error(logits, ref_logits, 2 * CLASSES) < 1e-4);
    free(big);
    alexnet_context_destroy(dev);
    alexnet_context_destroy(ref);
    alexnet_model_destroy(model);
    free(input);
    ck_assert_uint_eq(model_counter.live_blocks, 0);
}
END_TEST

/* Training through the public API: the same steps on the reference backend and on the GPU backend. */
START_TEST(trainer_matches_reference)
{
    if (!has_training())
        return;
    alexnet_config config = small_config();
    alexnet_model_options mo;
    alexnet_model_options_init(&mo);
    mo.config = &config;
    alexnet_model *model = NULL;
    ck_assert_int_eq(alexnet_model_create(&mo, 5, &model), ALEXNET_OK);
    enum { BATCH = 4, PIXELS = 3 * 48 * 48, CLASSES = 37, STEPS = 3 };
    alexnet_trainer *trainers[2] = {NULL, NULL};
    const char *backends[2] = {"reference", gpu_name};
    for (int t = 0; t < 2; t++) {
        alexnet_trainer_options options;
        alexnet_trainer_options_init(&options);
        options.backend = backends[t];
        options.batch = BATCH;
        options.seed = 77;
        options.learning_rate = 0.02f;
        ck_assert_msg(alexnet_trainer_create(model, &options, &trainers[t]) == ALEXNET_OK, "trainer on %s: %s",
                      backends[t], alexnet_last_error());
    }
    float *input = malloc(BATCH * PIXELS * sizeof *input);
    uint32_t labels[BATCH] = {3, 0, 36, 17};
    for (int step = 0; step < STEPS; step++) {
        test_fill_input(input, BATCH * PIXELS, 100 + (uint64_t)step);
        float loss[2], accuracy[2];
        for (int t = 0; t < 2; t++)
            ck_assert_msg(alexnet_trainer_step(trainers[t], input, labels, BATCH, &loss[t], &accuracy[t]) == ALEXNET_OK,
                          "step on %s: %s", backends[t], alexnet_last_error());
        printf("%-8s trainer step %d: loss %.6f (reference %.6f)\n", gpu_name, step, loss[1], loss[0]);
        ck_assert_msg(fabsf(loss[1] - loss[0]) <= 1e-4f * fabsf(loss[0]), "step %d: loss %.7f vs %.7f", step, loss[1],
                      loss[0]);
    }
    alexnet_model *trained[2];
    for (int t = 0; t < 2; t++)
        ck_assert_int_eq(alexnet_trainer_export_model(trainers[t], &trained[t]), ALEXNET_OK);
    double worst = 0.0;
    for (size_t i = 0; i < alexnet_model_tensor_count(trained[0]); i++) {
        alexnet_tensor_info a, b;
        a.struct_size = b.struct_size = sizeof a;
        ck_assert_int_eq(alexnet_model_tensor(trained[0], i, &a), ALEXNET_OK);
        ck_assert_int_eq(alexnet_model_tensor(trained[1], i, &b), ALEXNET_OK);
        double e = test_max_relative_error(b.data, a.data, (size_t)a.element_count);
        double scale = 0.0;
        for (size_t j = 0; j < a.element_count; j++)
            scale = fabs(a.data[j]) > scale ? fabs(a.data[j]) : scale;
        /* A tensor the steps barely moved from 0 (conv1's bias: its gradient is a sum that nearly cancels) has
         * no meaningful relative error: below 1e-2, the weights' scale, errors are taken relative to 1e-2. */
        double floor_scale = scale < 1e-2 ? 1e-2 : scale, error = e * scale / floor_scale;
        printf("%-8s trainer %-14s max|gpu-ref| / max(max|ref|, 1e-2) = %.2e\n", gpu_name, a.name, error);
        worst = error > worst ? error : worst;
        ck_assert_msg(error < 1e-4, "%s after %d steps: %.3e", a.name, STEPS, error);
    }
    printf("%-8s trainer: weights after %d SGD steps within %.2e of the reference\n", gpu_name, STEPS, worst);
    for (int t = 0; t < 2; t++) {
        alexnet_model_destroy(trained[t]);
        alexnet_trainer_destroy(trainers[t]);
    }
    alexnet_model_destroy(model);
    free(input);
}
END_TEST

/* Every host allocation of context creation fails in turn: each failure is reported, none leaks. */
START_TEST(context_allocation_failures)
{
    test_counting_allocator model_counter;
    alexnet_config config = small_config();
    alexnet_model_options mo;
    alexnet_model_options_init(&mo);
    mo.config = &config;
    alexnet_model *model = NULL;
    ck_assert_int_eq(alexnet_model_create(&mo, 7, &model), ALEXNET_OK);
    size_t failures = 0;
    for (size_t fail_at = 1;; fail_at++) {
        alexnet_context_options options;
        alexnet_context_options_init(&options);
        options.backend = gpu_name;
        options.allocator = test_counting_allocator_make(&model_counter);
        model_counter.fail_at = fail_at;
        alexnet_context *context = NULL;
        alexnet_status status = alexnet_context_create(model, &options, &context);
        if (status == ALEXNET_OK) {
            alexnet_context_destroy(context);
            ck_assert_uint_eq(model_counter.live_blocks, 0);
            break;
        }
        failures++;
        ck_assert_msg(status == ALEXNET_E_OUT_OF_MEMORY, "fail_at %zu: %s (%s)", fail_at, alexnet_status_string(status),
                      alexnet_last_error());
        ck_assert_msg(model_counter.live_blocks == 0, "fail_at %zu: %zu blocks leaked", fail_at,
                      model_counter.live_blocks);
        ck_assert(context == NULL);
    }
    printf("%-8s context creation: %zu allocation failures reported, none leaked\n", gpu_name, failures);
    ck_assert(failures > 5);
    alexnet_model_destroy(model);
}
END_TEST

/* The OpenCL program binary lands in $XDG_CACHE_HOME/alexnet (the test environment points it into the
 * build directory). */
START_TEST(opencl_program_cache)
{
    if (strcmp(gpu_name, "opencl") != 0)
        return;
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg == NULL || getenv("ALEXNET_OPENCL_CACHE") != NULL)
        return;
    an_backend_context *c = open_context(); /* the program exists once a context does */
    close_context(c);
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/alexnet", xdg);
    DIR *d = opendir(dir);
    ck_assert_msg(d != NULL, "no cache directory %s", dir);
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        found |= strncmp(e->d_name, "opencl-", 7) == 0 && strstr(e->d_name, ".bin") != NULL &&
                 strstr(e->d_name, ".tmp") == NULL;
    closedir(d);
    ck_assert_msg(found, "no opencl-*.bin in %s", dir);
}
END_TEST

static void print_summary(void)
{
    printf("%-8s worst errors:", gpu_name);
    for (int op = 0; op <= OP_LAST; op++)
        printf(" %s %.1e", op_names[op], worst_error[op]);
    printf("\n");
}

int main(void)
{
    gpu_name = getenv("ALEXNET_GPU_TEST_BACKEND");
    if (gpu_name == NULL || gpu_name[0] == '\0')
        gpu_name = "opencl";
    int require = getenv("ALEXNET_GPU_TEST_REQUIRE") != NULL && strcmp(getenv("ALEXNET_GPU_TEST_REQUIRE"), "1") == 0;
    alexnet_status status = an_backend_select(gpu_name, &gpu);
    if (status != ALEXNET_OK) {
        printf("SKIP: no %s device: %s\n", gpu_name, alexnet_last_error());
        return require ? EXIT_FAILURE : 77;
    }
    const char *kernels = getenv("ALEXNET_OPENCL_KERNELS");
    printf("%s: %s%s\n", gpu_name, gpu->describe(),
           kernels != NULL && strcmp(kernels, "gpu") == 0 ? " (ALEXNET_OPENCL_KERNELS=gpu)" : "");
    Suite *suite = suite_create("gpu_ops");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, opencl_program_cache);
    tcase_add_test(tc, conv2d_fixed_shapes);
    tcase_add_loop_test(tc, conv2d_random_shapes, 0, 24);
    tcase_add_test(tc, fc_shapes);
    tcase_add_test(tc, pooling);
    tcase_add_test(tc, lrn);
    tcase_add_test(tc, softmax);
    tcase_add_test(tc, relu_and_dropout);
    tcase_add_test(tc, errors_are_reported);
    tcase_add_test(tc, conv2d_backward);
    tcase_add_test(tc, fc_backward);
    tcase_add_test(tc, pooling_backward);
    tcase_add_test(tc, lrn_backward);
    tcase_add_test(tc, activations_backward_and_sgd);
    tcase_add_test(tc, softmax_cross_entropy);
    tcase_add_test(tc, network_matches_reference);
    tcase_add_test(tc, trainer_matches_reference);
    tcase_add_test(tc, context_allocation_failures);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_set_fork_status(runner, CK_NOFORK);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    print_summary();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
