/* Finite-difference gradient checks of the reference backend's backward kernels, in float64.
 *
 * For each op the test has its own float64 forward (written independently of the library's kernels) and a
 * fixed random "upstream gradient" R, so that L = sum(op(x) * R) has dL/d(op output) = R. The float32
 * backward kernels are fed R and their gradients compared with central differences of L in float64:
 *     max |analytic - numeric| / max |numeric| <= 1e-4 per tensor
 * (float32 rounding of the kernels is about 1e-7 relative; float64 differences with h = 1e-5 are exact to
 * about 1e-9). Shapes are small and odd so that groups, strides, padding, clipped windows and overlapping
 * pooling all occur. The measured errors are printed. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "cpu/reference/reference_backward.h"
#include "cpu/reference/reference_ops.h"
#include "test_support.h"

#define GRAD_TOLERANCE 1e-4
#define STEP 1e-5

/* ---- deterministic data ---- */

static void fill(float *x, size_t n, uint64_t seed, float scale)
{
    test_fill_input(x, n, seed);
    for (size_t i = 0; i < n; i++)
        x[i] *= scale * 0.5f; /* test_fill_input is in [-2, 2) */
}

static double *to_double(const float *x, size_t n)
{
    double *d = malloc((n ? n : 1) * sizeof *d);
    ck_assert_ptr_nonnull(d);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

static float *alloc_floats(size_t n)
{
    float *x = calloc(n ? n : 1, sizeof *x);
    ck_assert_ptr_nonnull(x);
    return x;
}

/* ---- numeric gradients ---- */

/* A float64 loss of the op's tensors: params[k] points at tensor k (the one being differenced among them). */
typedef double (*loss_fn)(const void *desc, double *const *tensors, const double *upstream);

/* Central differences of loss with respect to every element of tensors[which]. */
static void numeric_gradient(loss_fn loss, const void *desc, double *const *tensors, int which, size_t count,
                             const double *upstream, double *out)
{
    double *x = tensors[which];
    for (size_t i = 0; i < count; i++) {
        double saved = x[i];
        double h = STEP * (fabs(saved) > 1.0 ? fabs(saved) : 1.0);
        x[i] = saved + h;
        double plus = loss(desc, tensors, upstream);
        x[i] = saved - h;
        double minus = loss(desc, tensors, upstream);
        x[i] = saved;
        out[i] = (plus - minus) / (2.0 * h);
    }
}

static double compare(const char *what, const float *analytic, const double *numeric, size_t n)
{
    double max_diff = 0.0, max_ref = 0.0;
    for (size_t i = 0; i < n; i++) {
        double diff = fabs((double)analytic[i] - numeric[i]);
        max_diff = diff > max_diff || isnan(diff) ? (isnan(diff) ? INFINITY : diff) : max_diff;
        max_ref = fabs(numeric[i]) > max_ref ? fabs(numeric[i]) : max_ref;
    }
    double error = max_ref > 0.0 ? max_diff / max_ref : max_diff;
    printf("gradcheck %-44s max|analytic - numeric| / max|numeric| = %.2e (%zu values)\n", what, error, n);
    fflush(stdout);
    ck_assert_msg(max_ref > 0.0, "%s: the numeric gradient is all zero: the check says nothing", what);
    ck_assert_msg(error <= GRAD_TOLERANCE, "%s: gradient error %.3e > %.0e", what, error, GRAD_TOLERANCE);
    return error;
}

/* ---- convolution ---- */

static double conv_loss(const void *desc, double *const *t, const double *r)
{
    const an_conv_desc *d = desc;
    const double *in = t[0], *w = t[1], *b = t[2];
    const uint32_t ipg = d->in_channels / d->groups, opg = d->out_channels / d->groups, k = d->kernel_size;
    double loss = 0.0;
    size_t o = 0;
    for (uint32_t n = 0; n < d->batch; n++)
        for (uint32_t oc = 0; oc < d->out_channels; oc++)
            for (uint32_t oy = 0; oy < d->out_height; oy++)
                for (uint32_t ox = 0; ox < d->out_width; ox++, o++) {
                    double sum = b[oc];
                    for (uint32_t ic = 0; ic < ipg; ic++)
                        for (uint32_t ky = 0; ky < k; ky++)
                            for (uint32_t kx = 0; kx < k; kx++) {
                                long iy = (long)(oy * d->stride + ky) - (long)d->padding;
                                long ix = (long)(ox * d->stride + kx) - (long)d->padding;
                                if (iy < 0 || ix < 0 || iy >= (long)d->in_height || ix >= (long)d->in_width)
                                    continue;
                                uint32_t c = oc / opg * ipg + ic;
                                sum += in[((size_t)(n * d->in_channels + c) * d->in_height + (size_t)iy) * d->in_width +
                                          (size_t)ix] * w[((size_t)(oc * ipg + ic) * k + ky) * k + kx];
                            }
                    loss += sum * r[o];
                }
    return loss;
}

static void check_conv(uint32_t batch, uint32_t in_c, uint32_t h, uint32_t w, uint32_t out_c, uint32_t k,
                       uint32_t stride, uint32_t pad, uint32_t groups, uint64_t seed)
{
    an_conv_desc d = {batch, in_c, h, w, out_c, (h + 2 * pad - k) / stride + 1, (w + 2 * pad - k) / stride + 1, k,
                      stride, pad, groups, 0};
    size_t n_in = (size_t)batch * in_c * h * w, n_w = (size_t)out_c * (in_c / groups) * k * k;
    size_t n_out = (size_t)batch * out_c * d.out_height * d.out_width;
    float *in = alloc_floats(n_in), *wt = alloc_floats(n_w), *bias = alloc_floats(out_c), *r = alloc_floats(n_out);
    fill(in, n_in, seed, 1.0f);
    fill(wt, n_w, seed + 1, 0.5f);
    fill(bias, out_c, seed + 2, 0.5f);
    fill(r, n_out, seed + 3, 1.0f);
    float *g_in = alloc_floats(n_in), *g_w = alloc_floats(n_w), *g_b = alloc_floats(out_c);
    /* Garbage in the outputs proves the kernels overwrite rather than accumulate. */
    for (size_t i = 0; i < n_in; i++)
        g_in[i] = 1e6f;
    for (size_t i = 0; i < n_w; i++)
        g_w[i] = -1e6f;
    an_ref_conv2d_backward_data(&d, r, wt, g_in);
    an_ref_conv2d_backward_weights(&d, in, r, g_w, g_b);

    double *t[3] = {to_double(in, n_in), to_double(wt, n_w), to_double(bias, out_c)};
    double *rd = to_double(r, n_out);
    double *num_in = malloc(n_in * sizeof(double)), *num_w = malloc(n_w * sizeof(double)),
           *num_b = malloc(out_c * sizeof(double));
    numeric_gradient(conv_loss, &d, t, 0, n_in, rd, num_in);
    numeric_gradient(conv_loss, &d, t, 1, n_w, rd, num_w);
    numeric_gradient(conv_loss, &d, t, 2, out_c, rd, num_b);
    char what[96];
    snprintf(what, sizeof what, "conv %ux%ux%u k%u s%u p%u g%u: input", in_c, h, w, k, stride, pad, groups);
    compare(what, g_in, num_in, n_in);
    snprintf(what, sizeof what, "conv %ux%ux%u k%u s%u p%u g%u: weight", in_c, h, w, k, stride, pad, groups);
    compare(what, g_w, num_w, n_w);
    snprintf(what, sizeof what, "conv %ux%ux%u k%u s%u p%u g%u: bias", in_c, h, w, k, stride, pad, groups);
    compare(what, g_b, num_b, out_c);

    /* The forward kernel and this test's forward agree (so the gradient is of the library's op). */
    float *out = alloc_floats(n_out);
    an_ref_conv2d(&d, in, wt, bias, out);
    double *zero_r = calloc(n_out, sizeof(double));
    for (size_t i = 0; i < n_out; i++) {
        zero_r[i] = 1.0;
        double ref = conv_loss(&d, t, zero_r);
        zero_r[i] = 0.0;
        ck_assert_msg(fabs(ref - out[i]) <= 1e-5 * (1.0 + fabs(ref)), "conv forward %zu: %g vs %g", i, out[i], ref);
    }
    free(zero_r);
    free(out);
    for (int i = 0; i < 3; i++)
        free(t[i]);
    free(rd), free(num_in), free(num_w), free(num_b);
    free(in), free(wt), free(bias), free(r), free(g_in), free(g_w), free(g_b);
}

START_TEST(conv_gradients)
{
    check_conv(2, 3, 7, 6, 4, 3, 1, 1, 1, 100);  /* padding, odd sizes */
    check_conv(2, 4, 9, 8, 6, 3, 2, 1, 2, 200);  /* groups = 2, stride 2 */
    check_conv(1, 2, 11, 11, 4, 5, 3, 2, 2, 300); /* AlexNet-like: big kernel, stride, padding */
    check_conv(3, 6, 5, 5, 6, 1, 1, 0, 3, 400);   /* 1x1, three groups */
}
END_TEST

/* ---- max pooling ---- */

static double pool_loss(const void *desc, double *const *t, const double *r)
{
    const an_pool_desc *d = desc;
    double loss = 0.0;
    size_t o = 0;
    for (size_t p = 0; p < (size_t)d->batch * d->channels; p++) {
        const double *src = t[0] + p * d->in_height * d->in_width;
        for (uint32_t oy = 0; oy < d->out_height; oy++)
            for (uint32_t ox = 0; ox < d->out_width; ox++, o++) {
                double best = -INFINITY;
                for (uint32_t ky = 0; ky < d->kernel_size; ky++)
                    for (uint32_t kx = 0; kx < d->kernel_size; kx++) {
                        double v = src[(oy * d->stride + ky) * d->in_width + ox * d->stride + kx];
                        best = v > best ? v : best;
                    }
                loss += best * r[o];
            }
    }
    return loss;
}

/* Distinct values at least 0.01 apart in a shuffled order: no two candidates of a window are within the
 * finite difference step of each other, so the numeric gradient is well defined. */
static void fill_distinct(float *x, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 0.01f * (float)i - 0.005f * (float)n;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(test_splitmix64(seed + i) % (i + 1));
        float t = x[i];
        x[i] = x[j];
        x[j] = t;
    }
}

START_TEST(max_pool_gradients)
{
    an_pool_desc d = {2, 3, 9, 7, 4, 3, 3, 2}; /* overlapping 3 x 3 windows, stride 2 */
    size_t n_in = 2 * 3 * 9 * 7, n_out = 2 * 3 * 4 * 3;
    float *in = alloc_floats(n_in), *r = alloc_floats(n_out), *g = alloc_floats(n_in);
    fill_distinct(in, n_in, 7);
    fill(r, n_out, 8, 1.0f);
    an_ref_max_pool2d_backward(&d, in, r, g);
    double *t[1] = {to_double(in, n_in)};
    double *rd = to_double(r, n_out), *num = malloc(n_in * sizeof(double));
    numeric_gradient(pool_loss, &d, t, 0, n_in, rd, num);
    compare("max pool 3/2 overlapping: input", g, num, n_in);
    free(t[0]), free(rd), free(num), free(in), free(r), free(g);
}
END_TEST

/* Ties: PyTorch sends a window's gradient to its first maximum in row-major window order. */
START_TEST(max_pool_ties_go_to_the_first)
{
    an_pool_desc d = {1, 1, 3, 5, 1, 2, 3, 2}; /* two windows sharing column 2 */
    float in[15] = {0, 1, 5, 5, 0,
                    5, 2, 5, 1, 5,
                    0, 0, 0, 0, 0};
    float r[2] = {1.0f, 10.0f}, g[15];
    an_ref_max_pool2d_backward(&d, in, r, g);
    /* Window 0 covers columns 0..2: first 5 in row order is (0, 2). Window 1 covers columns 2..4: (0, 2)
     * again comes first, so both windows' gradients land there and add up. */
    for (int i = 0; i < 15; i++)
        ck_assert_msg(g[i] == (i == 2 ? 11.0f : 0.0f), "g[%d] = %g", i, g[i]);
    /* All equal: the first element of each window. */
    float flat[15];
    for (int i = 0; i < 15; i++)
        flat[i] = 3.0f;
    an_ref_max_pool2d_backward(&d, flat, r, g);
    for (int i = 0; i < 15; i++)
        ck_assert_msg(g[i] == (i == 0 ? 1.0f : (i == 2 ? 10.0f : 0.0f)), "flat g[%d] = %g", i, g[i]);
}
END_TEST

/* ---- adaptive average pooling ---- */

static double avg_loss(const void *desc, double *const *t, const double *r)
{
    const an_pool_desc *d = desc;
    double loss = 0.0;
    size_t o = 0;
    for (size_t p = 0; p < (size_t)d->batch * d->channels; p++) {
        const double *src = t[0] + p * d->in_height * d->in_width;
        for (uint32_t oy = 0; oy < d->out_height; oy++)
            for (uint32_t ox = 0; ox < d->out_width; ox++, o++) {
                uint32_t y0 = oy * d->in_height / d->out_height, y1 = ((oy + 1) * d->in_height + d->out_height - 1) / d->out_height;
                uint32_t x0 = ox * d->in_width / d->out_width, x1 = ((ox + 1) * d->in_width + d->out_width - 1) / d->out_width;
                double sum = 0.0;
                for (uint32_t y = y0; y < y1; y++)
                    for (uint32_t x = x0; x < x1; x++)
                        sum += src[y * d->in_width + x];
                loss += sum / ((y1 - y0) * (x1 - x0)) * r[o];
            }
    }
    return loss;
}

START_TEST(adaptive_avg_pool_gradients)
{
    const an_pool_desc cases[] = {{2, 2, 7, 5, 3, 2, 0, 0}, {1, 3, 4, 4, 6, 6, 0, 0}, {1, 1, 13, 13, 6, 6, 0, 0}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const an_pool_desc *d = &cases[c];
        size_t n_in = (size_t)d->batch * d->channels * d->in_height * d->in_width;
        size_t n_out = (size_t)d->batch * d->channels * d->out_height * d->out_width;
        float *in = alloc_floats(n_in), *r = alloc_floats(n_out), *g = alloc_floats(n_in);
        fill(in, n_in, 20 + c, 1.0f);
        fill(r, n_out, 30 + c, 1.0f);
        an_ref_adaptive_avg_pool2d_backward(d, r, g);
        double *t[1] = {to_double(in, n_in)};
        double *rd = to_double(r, n_out), *num = malloc(n_in * sizeof(double));
        numeric_gradient(avg_loss, d, t, 0, n_in, rd, num);
        char what[64];
        snprintf(what, sizeof what, "adaptive avg pool %ux%u -> %ux%u: input", d->in_height, d->in_width,
                 d->out_height, d->out_width);
        compare(what, g, num, n_in);
        free(t[0]), free(rd), free(num), free(in), free(r), free(g);
    }
}
END_TEST

/* ---- LRN ---- */

static double lrn_loss(const void *desc, double *const *t, const double *r)
{
    const an_lrn_desc *d = desc;
    const size_t plane = (size_t)d->height * d->width;
    const long before = d->size / 2, after = (d->size - 1) / 2;
    double loss = 0.0;
    for (uint32_t n = 0; n < d->batch; n++)
        for (long c = 0; c < (long)d->channels; c++)
            for (size_t p = 0; p < plane; p++) {
                double sum = 0.0;
                for (long j = c - before; j <= c + after; j++) {
                    if (j < 0 || j >= (long)d->channels)
                        continue;
                    double v = t[0][(n * d->channels + (size_t)j) * plane + p];
                    sum += v * v;
                }
                size_t at = (n * d->channels + (size_t)c) * plane + p;
                loss += t[0][at] / pow(d->k + d->alpha * sum, d->beta) * r[at];
            }
    return loss;
}

static void check_lrn(const char *label, an_lrn_desc d, float scale, uint64_t seed)
{
    size_t n = (size_t)d.batch * d.channels * d.height * d.width;
    float *in = alloc_floats(n), *out = alloc_floats(n), *r = alloc_floats(n), *g = alloc_floats(n);
    fill(in, n, seed, scale);
    fill(r, n, seed + 1, 1.0f);
    an_ref_lrn(&d, in, out);
    an_ref_lrn_backward(&d, in, out, r, g);
    double *t[1] = {to_double(in, n)};
    double *rd = to_double(r, n), *num = malloc(n * sizeof(double));
    numeric_gradient(lrn_loss, &d, t, 0, n, rd, num);
    compare(label, g, num, n);
    free(t[0]), free(rd), free(num), free(in), free(out), free(r), free(g);
}

START_TEST(lrn_gradients)
{
    /* Caffe/PyTorch convention: alpha' = alpha / size, k = 1 (alpha large enough to be nonlinear). */
    check_lrn("lrn size 5, alpha/size, k 1: input", (an_lrn_desc){2, 7, 3, 2, 5, 0.5f / 5, 0.75f, 1.0f}, 2.0f, 50);
    /* The paper's convention: alpha' = alpha, k = 2; an even size has the asymmetric window. */
    check_lrn("lrn size 4, absolute alpha, k 2: input", (an_lrn_desc){1, 6, 2, 3, 4, 0.2f, 0.75f, 2.0f}, 2.0f, 60);
    /* A window wider than the channels (every window clipped). */
    check_lrn("lrn size 7 > channels 3: input", (an_lrn_desc){1, 3, 2, 2, 7, 0.3f, 0.6f, 1.5f}, 1.5f, 70);
}
END_TEST

/* ---- fully connected ---- */

static double fc_loss(const void *desc, double *const *t, const double *r)
{
    const an_fc_desc *d = desc;
    double loss = 0.0;
    for (uint32_t n = 0; n < d->batch; n++)
        for (uint32_t o = 0; o < d->out_features; o++) {
            double sum = t[2][o];
            for (uint32_t i = 0; i < d->in_features; i++)
                sum += t[1][(size_t)o * d->in_features + i] * t[0][(size_t)n * d->in_features + i];
            loss += sum * r[(size_t)n * d->out_features + o];
        }
    return loss;
}

START_TEST(fully_connected_gradients)
{
    an_fc_desc d = {3, 17, 5, 0};
    size_t n_in = 3 * 17, n_w = 5 * 17, n_out = 3 * 5;
    float *in = alloc_floats(n_in), *w = alloc_floats(n_w), *b = alloc_floats(5), *r = alloc_floats(n_out);
    fill(in, n_in, 80, 1.0f);
    fill(w, n_w, 81, 0.5f);
    fill(b, 5, 82, 0.5f);
    fill(r, n_out, 83, 1.0f);
    float *g_in = alloc_floats(n_in), *g_w = alloc_floats(n_w), *g_b = alloc_floats(5);
    an_ref_fully_connected_backward_data(&d, r, w, g_in);
    an_ref_fully_connected_backward_weights(&d, in, r, g_w, g_b);
    double *t[3] = {to_double(in, n_in), to_double(w, n_w), to_double(b, 5)};
    double *rd = to_double(r, n_out);
    double *num_in = malloc(n_in * sizeof(double)), *num_w = malloc(n_w * sizeof(double)), num_b[5];
    numeric_gradient(fc_loss, &d, t, 0, n_in, rd, num_in);
    numeric_gradient(fc_loss, &d, t, 1, n_w, rd, num_w);
    numeric_gradient(fc_loss, &d, t, 2, 5, rd, num_b);
    compare("fully connected 17 -> 5, batch 3: input", g_in, num_in, n_in);
    compare("fully connected 17 -> 5, batch 3: weight", g_w, num_w, n_w);
    compare("fully connected 17 -> 5, batch 3: bias", g_b, num_b, 5);
    for (int i = 0; i < 3; i++)
        free(t[i]);
    free(rd), free(num_in), free(num_w), free(in), free(w), free(b), free(r), free(g_in), free(g_w), free(g_b);
}
END_TEST

/* ---- ReLU (from its output) ---- */

static double relu_loss(const void *desc, double *const *t, const double *r)
{
    size_t n = *(const size_t *)desc;
    double loss = 0.0;
    for (size_t i = 0; i < n; i++)
        loss += (t[0][i] > 0.0 ? t[0][i] : 0.0) * r[i];
    return loss;
}

START_TEST(relu_gradients)
{
    size_t n = 200;
    float *in = alloc_floats(n), *out = alloc_floats(n), *r = alloc_floats(n), *g = alloc_floats(n);
    fill(in, n, 90, 1.0f);
    for (size_t i = 0; i < n; i++)
        in[i] += in[i] >= 0.0f ? 0.01f : -0.01f; /* away from the kink */
    fill(r, n, 91, 1.0f);
    an_ref_relu(n, in, out);
    an_ref_relu_backward(n, out, r, g);
    double *t[1] = {to_double(in, n)};
    double *rd = to_double(r, n), *num = malloc(n * sizeof(double));
    numeric_gradient(relu_loss, &n, t, 0, n, rd, num);
    compare("relu (from the output): input", g, num, n);
    /* In place, as the trainer runs it. */
    memcpy(g, r, n * sizeof *g);
    an_ref_relu_backward(n, out, g, g);
    compare("relu in place: input", g, num, n);
    free(t[0]), free(rd), free(num), free(in), free(out), free(r), free(g);
}
END_TEST

/* ---- softmax cross-entropy ---- */

typedef struct ce_desc {
    uint32_t batch, classes;
    const uint32_t *labels;
} ce_desc;

static double ce_loss(const void *desc, double *const *t, const double *r)
{
    (void)r;
    const ce_desc *d = desc;
    double total = 0.0;
    for (uint32_t n = 0; n < d->batch; n++) {
        const double *x = t[0] + (size_t)n * d->classes;
        double max = x[0], sum = 0.0;
        for (uint32_t c = 1; c < d->classes; c++)
            max = x[c] > max ? x[c] : max;
        for (uint32_t c = 0; c < d->classes; c++)
            sum += exp(x[c] - max);
        total += max + log(sum) - x[d->labels[n]];
    }
    return total / d->batch;
}

START_TEST(softmax_cross_entropy_gradients)
{
    const uint32_t batch = 4, classes = 7, labels[4] = {0, 6, 3, 3};
    size_t n = (size_t)batch * classes;
    float *logits = alloc_floats(n), *g = alloc_floats(n), losses[4], label_f[4];
    fill(logits, n, 95, 6.0f);
    logits[5] = 60.0f; /* a large margin: the log-sum-exp must not overflow or lose the loss */
    for (uint32_t i = 0; i < batch; i++)
        label_f[i] = (float)labels[i];
    an_softmax_desc d = {batch, classes};
    ck_assert(an_ref_softmax_cross_entropy(&d, logits, label_f, g, losses));
    ce_desc cd = {batch, classes, labels};
    double *t[1] = {to_double(logits, n)};
    double *num = malloc(n * sizeof(double));
    numeric_gradient(ce_loss, &cd, t, 0, n, NULL, num);
    compare("softmax cross-entropy (mean over batch): logits", g, num, n);
    double mean = 0.0;
    for (uint32_t i = 0; i < batch; i++)
        mean += losses[i] / batch;
    double ref = ce_loss(&cd, t, NULL);
    ck_assert_msg(fabs(mean - ref) <= 1e-5 * (1.0 + fabs(ref)), "loss %.9g vs %.9g", mean, ref);
    /* A label outside the classes is refused. */
    label_f[2] = 7.0f;
    ck_assert(!an_ref_softmax_cross_entropy(&d, logits, label_f, g, losses));
    label_f[2] = 2.5f;
    ck_assert(!an_ref_softmax_cross_entropy(&d, logits, label_f, g, losses));
    free(t[0]), free(num), free(logits), free(g);
}
END_TEST

/* ---- dropout ---- */

START_TEST(dropout_mask_statistics_and_backward)
{
    const size_t n = 1u << 20;
    float *in = alloc_floats(n), *out = alloc_floats(n), *out2 = alloc_floats(n), *g = alloc_floats(n);
    for (size_t i = 0; i < n; i++)
        in[i] = 1.0f + (float)(i % 7);
    const float rates[] = {0.5f, 0.2f, 0.9f};
    for (size_t k = 0; k < 3; k++) {
        float rate = rates[k];
        an_ref_dropout(n, rate, 1234, in, out);
        an_ref_dropout(n, rate, 1234, in, out2);
        ck_assert_msg(memcmp(out, out2, n * sizeof *out) == 0, "the same seed gave another mask");
        size_t kept = 0;
        double sum_in = 0.0, sum_out = 0.0;
        for (size_t i = 0; i < n; i++) {
            sum_in += in[i];
            sum_out += out[i];
            if (out[i] != 0.0f) {
                kept++;
                ck_assert_msg(out[i] == in[i] * (1.0f / (1.0f - rate)), "kept value not scaled by 1/(1-rate)");
            }
        }
        double p = 1.0 - rate, sigma = sqrt(n * p * (1.0 - p));
        printf("dropout rate %.1f: kept %.5f (expected %.5f, %.2f sigma), mean out / mean in = %.5f\n", rate,
               (double)kept / n, p, fabs(kept - n * p) / sigma, sum_out / sum_in);
        ck_assert_msg(fabs(kept - n * p) < 5.0 * sigma, "rate %g: kept %zu of %zu", rate, kept, n);
        ck_assert_msg(fabs(sum_out / sum_in - 1.0) < 0.01, "rate %g: inverted dropout changed the mean by %g", rate,
                      sum_out / sum_in - 1.0);
        /* Backward uses exactly the forward's mask and scale: with grad_out = in it reproduces out. */
        memcpy(g, in, n * sizeof *g);
        an_ref_dropout_backward(n, rate, 1234, g, g);
        ck_assert_msg(memcmp(g, out, n * sizeof *g) == 0, "rate %g: backward mask differs from forward", rate);
    }
    /* Another seed, another mask; rate 0 keeps everything (the trainer's evaluation mode). */
    an_ref_dropout(n, 0.5f, 1234, in, out);
    an_ref_dropout(n, 0.5f, 1235, in, out2);
    size_t differ = 0;
    for (size_t i = 0; i < n; i++)
        differ += (out[i] == 0.0f) != (out2[i] == 0.0f);
    ck_assert_msg(differ > n / 3, "seeds 1234 and 1235 share %zu of %zu mask bits", n - differ, n);
    an_ref_dropout(n, 0.0f, 99, in, out);
    ck_assert(memcmp(in, out, n * sizeof *in) == 0);
    free(in), free(out), free(out2), free(g);
}
END_TEST

/* ---- SGD ---- */

START_TEST(sgd_matches_pytorch_formulation)
{
    const size_t n = 33;
    float w[33], v[33], g[33];
    double wd[33], vd[33];
    fill(w, n, 300, 1.0f);
    memset(v, 0, sizeof v);
    for (size_t i = 0; i < n; i++)
        wd[i] = w[i], vd[i] = 0.0;
    an_sgd_desc d = {n, 0.05f, 0.9f, 5e-4f};
    for (int step = 0; step < 3; step++) {
        fill(g, n, 400 + step, 1.0f);
        an_ref_sgd_update(&d, w, g, v);
        for (size_t i = 0; i < n; i++) {
            /* torch.optim.SGD: d_p = g + wd * w; buf = momentum * buf + d_p; w -= lr * buf */
            vd[i] = 0.9 * vd[i] + (g[i] + 5e-4 * wd[i]);
            wd[i] -= 0.05 * vd[i];
        }
    }
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(fabs(w[i] - wd[i]) <= 1e-6 * (1.0 + fabs(wd[i])), "w[%zu] %g vs %g", i, w[i], wd[i]);
        ck_assert_msg(fabs(v[i] - vd[i]) <= 1e-6 * (1.0 + fabs(vd[i])), "v[%zu] %g vs %g", i, v[i], vd[i]);
    }
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("backward");
    TCase *tcase = tcase_create("gradcheck");
    tcase_set_timeout(tcase, 300);
    tcase_add_test(tcase, conv_gradients);
    tcase_add_test(tcase, max_pool_gradients);
    tcase_add_test(tcase, max_pool_ties_go_to_the_first);
    tcase_add_test(tcase, adaptive_avg_pool_gradients);
    tcase_add_test(tcase, lrn_gradients);
    tcase_add_test(tcase, fully_connected_gradients);
    tcase_add_test(tcase, relu_gradients);
    tcase_add_test(tcase, softmax_cross_entropy_gradients);
    tcase_add_test(tcase, dropout_mask_statistics_and_backward);
    tcase_add_test(tcase, sgd_matches_pytorch_formulation);
    suite_add_tcase(suite, tcase);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
