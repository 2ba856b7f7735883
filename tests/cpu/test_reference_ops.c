/* The reference kernels against float64 implementations written a second, independent way (explicitly
 * padded inputs, gathered windows), on random shapes: odd sizes, padding, strides, groups, tails. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/reference/reference_ops.h"
#include "test_support.h"

static uint64_t rng_state = 12345;

/* This file's stream of the shared helpers (tests/support): rand_range is inclusive. */
static uint32_t rand_range(uint32_t low, uint32_t high) { return test_rand_range(&rng_state, low, high); }
static float *random_floats(size_t n, uint64_t seed) { return test_random_floats(n, seed); }

/* |a - b| <= tol * (scale + |b|): scale is the magnitude of the terms summed, so long sums get room. */
static void assert_close(const float *got, const double *want, const double *scale, size_t n, double tol,
                         const char *what)
{
    for (size_t i = 0; i < n; i++) {
        double bound = tol * ((scale ? scale[i] : 0.0) + fabs(want[i]) + 1e-30);
        ck_assert_msg(fabs((double)got[i] - want[i]) <= bound, "%s[%zu]: got %.9g want %.9g", what, i,
                      (double)got[i], want[i]);
    }
}

/* ---- convolution ---- */
static void conv_f64(const an_conv_desc *d, const float *in, const float *w, const float *b, double *out,
                     double *scale)
{
    uint32_t ph = d->in_height + 2 * d->padding, pw = d->in_width + 2 * d->padding;
    double *padded = calloc((size_t)d->in_channels * ph * pw, sizeof *padded);
    uint32_t icg = d->in_channels / d->groups, ocg = d->out_channels / d->groups, k = d->kernel_size;
    for (uint32_t n = 0; n < d->batch; n++) {
        memset(padded, 0, (size_t)d->in_channels * ph * pw * sizeof *padded);
        for (uint32_t c = 0; c < d->in_channels; c++)
            for (uint32_t y = 0; y < d->in_height; y++)
                for (uint32_t x = 0; x < d->in_width; x++)
                    padded[((size_t)c * ph + y + d->padding) * pw + x + d->padding] =
                        in[(((size_t)n * d->in_channels + c) * d->in_height + y) * d->in_width + x];
        for (uint32_t g = 0; g < d->groups; g++)
            for (uint32_t o = g * ocg; o < (g + 1) * ocg; o++)
                for (uint32_t oy = 0; oy < d->out_height; oy++)
                    for (uint32_t ox = 0; ox < d->out_width; ox++) {
                        double acc = b[o], mag = fabs((double)b[o]);
                        for (uint32_t c = 0; c < icg; c++)
                            for (uint32_t ky = 0; ky < k; ky++)
                                for (uint32_t kx = 0; kx < k; kx++) {
                                    double v = padded[((size_t)(g * icg + c) * ph + oy * d->stride + ky) * pw +
                                                      ox * d->stride + kx];
                                    double t = v * w[(((size_t)o * icg + c) * k + ky) * k + kx];
                                    acc += t;
                                    mag += fabs(t);
                                }
                        size_t idx = (((size_t)n * d->out_channels + o) * d->out_height + oy) * d->out_width + ox;
                        out[idx] = d->relu && acc < 0 ? 0.0 : acc;
                        scale[idx] = mag;
                    }
    }
    free(padded);
}

static void check_conv(an_conv_desc d)
{
    d.out_height = (d.in_height + 2 * d.padding - d.kernel_size) / d.stride + 1;
    d.out_width = (d.in_width + 2 * d.padding - d.kernel_size) / d.stride + 1;
    size_t in_n = (size_t)d.batch * d.in_channels * d.in_height * d.in_width;
    size_t w_n = (size_t)d.out_channels * (d.in_channels / d.groups) * d.kernel_size * d.kernel_size;
    size_t out_n = (size_t)d.batch * d.out_channels * d.out_height * d.out_width;
    float *in = random_floats(in_n, 1), *w = random_floats(w_n, 2), *b = random_floats(d.out_channels, 3);
    float *out = malloc(out_n * sizeof *out);
    double *want = malloc(out_n * sizeof *want), *scale = malloc(out_n * sizeof *scale);
    an_ref_conv2d(&d, in, w, b, out);
    conv_f64(&d, in, w, b, want, scale);
    assert_close(out, want, scale, out_n, 1e-5, "conv");
    free(in), free(w), free(b), free(out), free(want), free(scale);
}

START_TEST(conv_random_shapes)
{
    for (int trial = 0; trial < 60; trial++) {
        an_conv_desc d = {0};
        d.groups = rand_range(1, 3);
        d.batch = rand_range(1, 3);
        d.in_channels = d.groups * rand_range(1, 4);
        d.out_channels = d.groups * rand_range(1, 5);
        d.kernel_size = rand_range(1, 5);
        d.stride = rand_range(1, 4);
        d.padding = rand_range(0, d.kernel_size - 1);
        d.in_height = rand_range(d.kernel_size, 13);
        d.in_width = rand_range(d.kernel_size, 13);
        d.relu = (int)rand_range(0, 1);
        check_conv(d);
    }
}
END_TEST

START_TEST(conv_alexnet_like_shapes)
{
    /* conv1-like: 11x11 stride 4 on 3 channels (with and without torchvision's padding 2) */
    check_conv((an_conv_desc){1, 3, 31, 35, 4, 0, 0, 11, 4, 0, 1, 1});
    check_conv((an_conv_desc){2, 3, 27, 27, 5, 0, 0, 11, 4, 2, 1, 0});
    /* conv2-like: 5x5 pad 2, two towers */
    check_conv((an_conv_desc){1, 8, 9, 9, 6, 0, 0, 5, 1, 2, 2, 1});
    /* 3x3 pad 1 */
    check_conv((an_conv_desc){1, 7, 6, 5, 9, 0, 0, 3, 1, 1, 1, 1});
}
END_TEST

/* ---- pooling ---- */
START_TEST(max_pool_random_shapes)
{
    for (int trial = 0; trial < 40; trial++) {
        an_pool_desc d = {0};
        d.batch = rand_range(1, 2);
        d.channels = rand_range(1, 5);
        d.kernel_size = rand_range(1, 4);
        d.stride = rand_range(1, 3);
        d.in_height = rand_range(d.kernel_size, 15);
        d.in_width = rand_range(d.kernel_size, 15);
        d.out_height = (d.in_height - d.kernel_size) / d.stride + 1;
        d.out_width = (d.in_width - d.kernel_size) / d.stride + 1;
        size_t in_n = (size_t)d.batch * d.channels * d.in_height * d.in_width;
        size_t out_n = (size_t)d.batch * d.channels * d.out_height * d.out_width;
        float *in = random_floats(in_n, (uint64_t)trial), *out = malloc(out_n * sizeof *out);
        double *want = malloc(out_n * sizeof *want);
        an_ref_max_pool2d(&d, in, out);
        for (size_t p = 0; p < (size_t)d.batch * d.channels; p++)
            for (uint32_t oy = 0; oy < d.out_height; oy++)
                for (uint32_t ox = 0; ox < d.out_width; ox++) {
                    double best = -INFINITY;
                    for (uint32_t y = oy * d.stride; y < oy * d.stride + d.kernel_size; y++)
                        for (uint32_t x = ox * d.stride; x < ox * d.stride + d.kernel_size; x++)
                            best = fmax(best, in[(p * d.in_height + y) * d.in_width + x]);
                    want[(p * d.out_height + oy) * d.out_width + ox] = best;
                }
        assert_close(out, want, NULL, out_n, 0.0, "max_pool");
        free(in), free(out), free(want);
    }
}
END_TEST

START_TEST(adaptive_avg_pool_random_shapes)
{
    for (int trial = 0; trial < 40; trial++) {
        an_pool_desc d = {0};
        d.batch = rand_range(1, 2);
        d.channels = rand_range(1, 4);
        d.in_height = rand_range(1, 14);
        d.in_width = rand_range(1, 14);
        d.out_height = rand_range(1, 7); /* smaller, equal and larger than the input */
        d.out_width = rand_range(1, 7);
        size_t in_n = (size_t)d.batch * d.channels * d.in_height * d.in_width;
        size_t out_n = (size_t)d.batch * d.channels * d.out_height * d.out_width;
        float *in = random_floats(in_n, 100 + (uint64_t)trial), *out = malloc(out_n * sizeof *out);
        double *want = malloc(out_n * sizeof *want);
        an_ref_adaptive_avg_pool2d(&d, in, out);
        for (size_t p = 0; p < (size_t)d.batch * d.channels; p++)
            for (uint32_t oy = 0; oy < d.out_height; oy++)
                for (uint32_t ox = 0; ox < d.out_width; ox++) {
                    /* PyTorch: start = floor(i * in / out), end = ceil((i + 1) * in / out) */
                    uint32_t y0 = (uint32_t)floor((double)oy * d.in_height / d.out_height);
                    uint32_t y1 = (uint32_t)ceil((double)(oy + 1) * d.in_height / d.out_height);
                    uint32_t x0 = (uint32_t)floor((double)ox * d.in_width / d.out_width);
                    uint32_t x1 = (uint32_t)ceil((double)(ox + 1) * d.in_width / d.out_width);
                    double sum = 0;
                    for (uint32_t y = y0; y < y1; y++)
                        for (uint32_t x = x0; x < x1; x++)
                            sum += in[(p * d.in_height + y) * d.in_width + x];
                    want[(p * d.out_height + oy) * d.out_width + ox] = sum / ((y1 - y0) * (x1 - x0));
                }
        assert_close(out, want, NULL, out_n, 1e-5, "adaptive_avg_pool");
        free(in), free(out), free(want);
    }
}
END_TEST

/* ---- LRN, both conventions ---- */
static void check_lrn(an_lrn_desc d, double alpha_per_term)
{
    size_t plane = (size_t)d.height * d.width, n_all = (size_t)d.batch * d.channels * plane;
    float *in = random_floats(n_all, 7), *out = malloc(n_all * sizeof *out);
    double *want = malloc(n_all * sizeof *want);
    an_ref_lrn(&d, in, out);
    int half_lo = (int)d.size / 2, half_hi = ((int)d.size - 1) / 2;
    for (uint32_t n = 0; n < d.batch; n++)
        for (int c = 0; c < (int)d.channels; c++)
            for (size_t i = 0; i < plane; i++) {
                double sum = 0;
                for (int j = c - half_lo; j <= c + half_hi; j++)
                    if (j >= 0 && j < (int)d.channels) {
                        double v = in[((size_t)n * d.channels + (size_t)j) * plane + i];
                        sum += v * v;
                    }
                size_t idx = ((size_t)n * d.channels + (size_t)c) * plane + i;
                want[idx] = in[idx] / pow(d.k + alpha_per_term * sum, d.beta);
            }
    assert_close(out, want, NULL, n_all, 2e-6, "lrn");
    free(in), free(out), free(want);
}

START_TEST(lrn_caffe_and_paper_conventions)
{
    /* Caffe/PyTorch: alpha / n on the sum (the planner passes alpha already divided) */
    an_lrn_desc caffe = {2, 11, 3, 4, 5, 1e-4f / 5, 0.75f, 1.0f};
    check_lrn(caffe, 1e-4 / 5);
    /* The paper: k = 2, alpha on the plain sum; large alpha so the normalisation really bites */
    an_lrn_desc paper = {1, 7, 5, 3, 5, 0.5f, 0.75f, 2.0f};
    check_lrn(paper, 0.5);
    /* even window and a window wider than the channel count */
    an_lrn_desc even = {1, 3, 2, 2, 4, 0.3f, 0.5f, 1.5f};
    check_lrn(even, 0.3);
    an_lrn_desc wide = {1, 2, 2, 3, 7, 0.2f, 1.0f, 1.0f};
    check_lrn(wide, 0.2);
}
END_TEST

/* ---- fully connected, relu, softmax, dropout ---- */
START_TEST(fully_connected_random_shapes)
{
    for (int trial = 0; trial < 30; trial++) {
        an_fc_desc d = {rand_range(1, 4), rand_range(1, 300), rand_range(1, 40), (int)rand_range(0, 1)};
        float *in = random_floats((size_t)d.batch * d.in_features, 11);
        float *w = random_floats((size_t)d.in_features * d.out_features, 12);
        float *b = random_floats(d.out_features, 13);
        size_t out_n = (size_t)d.batch * d.out_features;
        float *out = malloc(out_n * sizeof *out);
        double *want = malloc(out_n * sizeof *want), *scale = malloc(out_n * sizeof *scale);
        an_ref_fully_connected(&d, in, w, b, out);
        for (uint32_t n = 0; n < d.batch; n++)
            for (uint32_t o = 0; o < d.out_features; o++) {
                double acc = b[o], mag = fabs((double)b[o]);
                for (uint32_t i = 0; i < d.in_features; i++) {
                    double t = (double)w[(size_t)o * d.in_features + i] * in[(size_t)n * d.in_features + i];
                    acc += t;
                    mag += fabs(t);
                }
                want[(size_t)n * d.out_features + o] = d.relu && acc < 0 ? 0 : acc;
                scale[(size_t)n * d.out_features + o] = mag;
            }
        assert_close(out, want, scale, out_n, 1e-5, "fc");
        free(in), free(w), free(b), free(out), free(want), free(scale);
    }
}
END_TEST

START_TEST(relu_and_softmax)
{
    float x[7] = {-3.0f, -0.0f, 0.0f, 1e-30f, 2.5f, -1e30f, 88.0f}, y[7];
    an_ref_relu(7, x, y);
    for (int i = 0; i < 7; i++)
        ck_assert(y[i] == (x[i] > 0 ? x[i] : 0.0f));
    /* softmax must survive large logits (max subtracted) and sum to 1 */
    float logits[2 * 5] = {1000, 1001, 999, -1000, 0, 1, 2, 3, 4, 5}, p[10];
    an_ref_softmax(2, 5, logits, p);
    for (int n = 0; n < 2; n++) {
        double max = -INFINITY, sum = 0;
        for (int i = 0; i < 5; i++)
            max = fmax(max, logits[n * 5 + i]);
        for (int i = 0; i < 5; i++)
            sum += exp(logits[n * 5 + i] - max);
        for (int i = 0; i < 5; i++) {
            double want = exp(logits[n * 5 + i] - max) / sum;
            ck_assert_msg(fabs(p[n * 5 + i] - want) <= 1e-6, "softmax[%d][%d] %g vs %g", n, i, p[n * 5 + i], want);
        }
    }
}
END_TEST

START_TEST(dropout_mask_statistics_and_reproducibility)
{
    enum { N = 200000 };
    float *in = malloc(N * sizeof *in), *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    for (size_t i = 0; i < N; i++)
        in[i] = 1.0f;
    an_ref_dropout(N, 0.5f, 42, in, a);
    an_ref_dropout(N, 0.5f, 42, in, b);
    ck_assert(memcmp(a, b, N * sizeof *a) == 0); /* same seed, same mask */
    size_t kept = 0;
    for (size_t i = 0; i < N; i++) {
        ck_assert(a[i] == 0.0f || a[i] == 2.0f); /* inverted dropout scales by 1 / (1 - 0.5) */
        kept += a[i] != 0.0f;
    }
    /* 5 standard deviations of a binomial(N, 0.5) */
    ck_assert_msg(fabs((double)kept - N * 0.5) < 5 * sqrt(N * 0.25), "kept %zu of %d", kept, N);
    an_ref_dropout(N, 0.5f, 43, in, b);
    ck_assert(memcmp(a, b, N * sizeof *a) != 0); /* another seed, another mask */
    free(in), free(a), free(b);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("reference_ops");
    TCase *tc = tcase_create("ops");
    tcase_add_test(tc, conv_random_shapes);
    tcase_add_test(tc, conv_alexnet_like_shapes);
    tcase_add_test(tc, max_pool_random_shapes);
    tcase_add_test(tc, adaptive_avg_pool_random_shapes);
    tcase_add_test(tc, lrn_caffe_and_paper_conventions);
    tcase_add_test(tc, fully_connected_random_shapes);
    tcase_add_test(tc, relu_and_softmax);
    tcase_add_test(tc, dropout_mask_statistics_and_reproducibility);
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? 0 : 1;
}
