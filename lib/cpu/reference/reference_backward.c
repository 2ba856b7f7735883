#include "cpu/reference/reference_backward.h"

#include <math.h>
#include <string.h>

static void an_zero(float *x, size_t count) { memset(x, 0, count * sizeof *x); }

/* The forward op computes out[oc][oy][ox] = sum over (ic, ky, kx) of in[iy][ix] * w[oc][ic][ky][kx] with
 * iy = oy * stride + ky - padding. Both gradients walk exactly those (output, tap) pairs. */
void an_ref_conv2d_backward_data(const an_conv_desc *d, const float *grad_out, const float *weight, float *grad_in)
{
    const uint32_t in_per_group = d->in_channels / d->groups;
    const uint32_t out_per_group = d->out_channels / d->groups;
    const uint32_t k = d->kernel_size;
    const size_t in_plane = (size_t)d->in_height * d->in_width;
    const size_t out_plane = (size_t)d->out_height * d->out_width;
    an_zero(grad_in, (size_t)d->batch * d->in_channels * in_plane);
    for (uint32_t n = 0; n < d->batch; n++) {
        float *image = grad_in + (size_t)n * d->in_channels * in_plane;
        for (uint32_t oc = 0; oc < d->out_channels; oc++) {
            const uint32_t group = oc / out_per_group;
            const float *filter = weight + (size_t)oc * in_per_group * k * k;
            const float *plane = grad_out + ((size_t)n * d->out_channels + oc) * out_plane;
            for (uint32_t oy = 0; oy < d->out_height; oy++) {
                for (uint32_t ox = 0; ox < d->out_width; ox++) {
                    const float g = plane[(size_t)oy * d->out_width + ox];
                    for (uint32_t ic = 0; ic < in_per_group; ic++) {
                        float *channel = image + (size_t)(group * in_per_group + ic) * in_plane;
                        const float *taps = filter + (size_t)ic * k * k;
                        for (uint32_t ky = 0; ky < k; ky++) {
                            int64_t iy = (int64_t)oy * d->stride + ky - d->padding;
                            if (iy < 0 || iy >= d->in_height)
                                continue;
                            for (uint32_t kx = 0; kx < k; kx++) {
                                int64_t ix = (int64_t)ox * d->stride + kx - d->padding;
                                if (ix < 0 || ix >= d->in_width)
                                    continue;
                                channel[iy * d->in_width + ix] += taps[ky * k + kx] * g;
                            }
                        }
                    }
                }
            }
        }
    }
}

void an_ref_conv2d_backward_weights(const an_conv_desc *d, const float *in, const float *grad_out,
                                    float *grad_weight, float *grad_bias)
{
    const uint32_t in_per_group = d->in_channels / d->groups;
    const uint32_t out_per_group = d->out_channels / d->groups;
    const uint32_t k = d->kernel_size;
    const size_t in_plane = (size_t)d->in_height * d->in_width;
    const size_t out_plane = (size_t)d->out_height * d->out_width;
    an_zero(grad_weight, (size_t)d->out_channels * in_per_group * k * k);
    an_zero(grad_bias, d->out_channels);
    for (uint32_t n = 0; n < d->batch; n++) {
        const float *image = in + (size_t)n * d->in_channels * in_plane;
        for (uint32_t oc = 0; oc < d->out_channels; oc++) {
            const uint32_t group = oc / out_per_group;
            float *filter = grad_weight + (size_t)oc * in_per_group * k * k;
            const float *plane = grad_out + ((size_t)n * d->out_channels + oc) * out_plane;
            for (uint32_t oy = 0; oy < d->out_height; oy++) {
                for (uint32_t ox = 0; ox < d->out_width; ox++) {
                    const float g = plane[(size_t)oy * d->out_width + ox];
                    grad_bias[oc] += g;
                    for (uint32_t ic = 0; ic < in_per_group; ic++) {
                        const float *channel = image + (size_t)(group * in_per_group + ic) * in_plane;
                        float *taps = filter + (size_t)ic * k * k;
                        for (uint32_t ky = 0; ky < k; ky++) {
                            int64_t iy = (int64_t)oy * d->stride + ky - d->padding;
                            if (iy < 0 || iy >= d->in_height)
                                continue;
                            for (uint32_t kx = 0; kx < k; kx++) {
                                int64_t ix = (int64_t)ox * d->stride + kx - d->padding;
                                if (ix < 0 || ix >= d->in_width)
                                    continue;
                                taps[ky * k + kx] += channel[iy * d->in_width + ix] * g;
                            }
                        }
                    }
                }
            }
        }
    }
}

/* The same scan as the forward kernel: strictly greater replaces (so the first of equal maxima wins) and a
 * NaN always replaces (it propagates); PyTorch's CPU kernel picks the same element. */
static size_t an_pool_argmax(const an_pool_desc *d, const float *src, uint32_t oy, uint32_t ox)
{
    size_t best_index = (size_t)oy * d->stride * d->in_width + (size_t)ox * d->stride;
    float best = -INFINITY;
    for (uint32_t ky = 0; ky < d->kernel_size; ky++) {
        for (uint32_t kx = 0; kx < d->kernel_size; kx++) {
            size_t index = (size_t)(oy * d->stride + ky) * d->in_width + ox * d->stride + kx;
            if (src[index] > best || isnan(src[index])) {
                best = src[index];
                best_index = index;
            }
        }
    }
    return best_index;
}

void an_ref_max_pool2d_backward(const an_pool_desc *d, const float *in, const float *grad_out, float *grad_in)
{
    const size_t planes = (size_t)d->batch * d->channels;
    const size_t in_plane = (size_t)d->in_height * d->in_width;
    const size_t out_plane = (size_t)d->out_height * d->out_width;
    an_zero(grad_in, planes * in_plane);
    for (size_t p = 0; p < planes; p++) {
        const float *src = in + p * in_plane;
        const float *g = grad_out + p * out_plane;
        float *dst = grad_in + p * in_plane;
        for (uint32_t oy = 0; oy < d->out_height; oy++)
            for (uint32_t ox = 0; ox < d->out_width; ox++)
                dst[an_pool_argmax(d, src, oy, ox)] += g[(size_t)oy * d->out_width + ox];
    }
}

void an_ref_adaptive_avg_pool2d_backward(const an_pool_desc *d, const float *grad_out, float *grad_in)
{
    const size_t planes = (size_t)d->batch * d->channels;
    const size_t in_plane = (size_t)d->in_height * d->in_width;
    const size_t out_plane = (size_t)d->out_height * d->out_width;
    an_zero(grad_in, planes * in_plane);
    for (size_t p = 0; p < planes; p++) {
        const float *g = grad_out + p * out_plane;
        float *dst = grad_in + p * in_plane;
        for (uint32_t oy = 0; oy < d->out_height; oy++) {
            uint32_t y0 = (uint32_t)((uint64_t)oy * d->in_height / d->out_height);
            uint32_t y1 = (uint32_t)(((uint64_t)(oy + 1) * d->in_height + d->out_height - 1) / d->out_height);
            for (uint32_t ox = 0; ox < d->out_width; ox++) {
                uint32_t x0 = (uint32_t)((uint64_t)ox * d->in_width / d->out_width);
                uint32_t x1 = (uint32_t)(((uint64_t)(ox + 1) * d->in_width + d->out_width - 1) / d->out_width);
                /* The forward divides the sum by the count: each input gets the share g / count. */
                float share = g[(size_t)oy * d->out_width + ox] / (float)((y1 - y0) * (x1 - x0));
                for (uint32_t y = y0; y < y1; y++)
                    for (uint32_t x = x0; x < x1; x++)
                        dst[(size_t)y * d->in_width + x] += share;
            }
        }
    }
}

/* s_c = k + alpha * sum of a_j^2 over the window of channel c, exactly as the forward kernel sums it. */
static float an_lrn_scale(const an_lrn_desc *d, const float *image, size_t plane, size_t i, int64_t c)
{
    const int64_t before = d->size / 2, after = (d->size - 1) / 2;
    int64_t c0 = c - before < 0 ? 0 : c - before;
    int64_t c1 = c + after >= d->channels ? d->channels - 1 : c + after;
    float sum = 0.0f;
    for (int64_t j = c0; j <= c1; j++) {
        float v = image[(size_t)j * plane + i];
        sum += v * v;
    }
    return d->k + d->alpha * sum;
}

/* b_c = a_c * s_c^-beta, so d b_c / d a_i = [i == c] s_c^-beta - 2 alpha beta a_i a_c s_c^(-beta-1) for every
 * c whose window holds i, and grad a_i = g_i s_i^-beta - 2 alpha beta a_i sum_c g_c b_c / s_c. Channel c's
 * window [c - before, c + after] holds i exactly when c is in [i - after, i + before]. */
void an_ref_lrn_backward(const an_lrn_desc *d, const float *in, const float *out, const float *grad_out,
                         float *grad_in)
{
    const size_t plane = (size_t)d->height * d->width;
    const int64_t before = d->size / 2, after = (d->size - 1) / 2;
    for (uint32_t n = 0; n < d->batch; n++) {
        const size_t base = (size_t)n * d->channels * plane;
        const float *a = in + base, *b = out + base, *g = grad_out + base;
        float *result = grad_in + base;
        for (int64_t i = 0; i < d->channels; i++) {
            int64_t c0 = i - after < 0 ? 0 : i - after;
            int64_t c1 = i + before >= d->channels ? d->channels - 1 : i + before;
            for (size_t p = 0; p < plane; p++) {
                size_t at = (size_t)i * plane + p;
                float cross = 0.0f;
                for (int64_t c = c0; c <= c1; c++) {
                    size_t cp = (size_t)c * plane + p;
                    cross += g[cp] * b[cp] / an_lrn_scale(d, a, plane, p, c);
                }
                float own = powf(an_lrn_scale(d, a, plane, p, i), -d->beta);
                result[at] = g[at] * own - 2.0f * d->alpha * d->beta * a[at] * cross;
            }
        }
    }
}

void an_ref_fully_connected_backward_data(const an_fc_desc *d, const float *grad_out, const float *weight,
                                          float *grad_in)
{
    an_zero(grad_in, (size_t)d->batch * d->in_features);
    for (uint32_t n = 0; n < d->batch; n++) {
        float *x = grad_in + (size_t)n * d->in_features;
        for (uint32_t o = 0; o < d->out_features; o++) {
            const float g = grad_out[(size_t)n * d->out_features + o];
            const float *w = weight + (size_t)o * d->in_features;
            for (uint32_t i = 0; i < d->in_features; i++)
                x[i] += w[i] * g;
        }
    }
}

void an_ref_fully_connected_backward_weights(const an_fc_desc *d, const float *in, const float *grad_out,
                                             float *grad_weight, float *grad_bias)
{
    for (uint32_t o = 0; o < d->out_features; o++) {
        float *w = grad_weight + (size_t)o * d->in_features;
        float bias = 0.0f;
        for (uint32_t n = 0; n < d->batch; n++)
            bias += grad_out[(size_t)n * d->out_features + o];
        grad_bias[o] = bias;
        for (uint32_t i = 0; i < d->in_features; i++) {
            float sum = 0.0f;
            for (uint32_t n = 0; n < d->batch; n++)
                sum += grad_out[(size_t)n * d->out_features + o] * in[(size_t)n * d->in_features + i];
            w[i] = sum;
        }
    }
}

void an_ref_relu_backward(size_t count, const float *out, const float *grad_out, float *grad_in)
{
    for (size_t i = 0; i < count; i++)
        grad_in[i] = out[i] > 0.0f ? grad_out[i] : 0.0f;
}

void an_ref_dropout_backward(size_t count, float rate, uint64_t seed, const float *grad_out, float *grad_in)
{
    const float scale = 1.0f / (1.0f - rate);
    for (size_t i = 0; i < count; i++)
        grad_in[i] = an_dropout_keep(seed, i, rate) ? grad_out[i] * scale : 0.0f;
}

int an_ref_softmax_cross_entropy(const an_softmax_desc *d, const float *logits, const float *labels,
                                 float *grad_logits, float *losses)
{
    for (uint32_t n = 0; n < d->batch; n++) {
        float label_value = labels[n];
        if (!(label_value >= 0.0f && label_value < (float)d->classes) || label_value != floorf(label_value))
            return 0;
    }
    for (uint32_t n = 0; n < d->batch; n++) {
        const float *x = logits + (size_t)n * d->classes;
        float *g = grad_logits + (size_t)n * d->classes;
        const uint32_t label = (uint32_t)labels[n];
        float max = x[0];
        for (uint32_t i = 1; i < d->classes; i++)
            max = x[i] > max ? x[i] : max;
        /* log-sum-exp with the maximum taken out: no overflow, and the loss is exact for large margins. */
        double sum = 0.0;
        for (uint32_t i = 0; i < d->classes; i++)
            sum += exp((double)x[i] - max);
        const double log_sum = (double)max + log(sum);
        losses[n] = (float)(log_sum - x[label]);
        for (uint32_t i = 0; i < d->classes; i++) {
            double p = exp((double)x[i] - log_sum);
            g[i] = (float)((p - (i == label ? 1.0 : 0.0)) / d->batch);
        }
    }
    return 1;
}

void an_ref_sgd_update(const an_sgd_desc *d, float *param, const float *grad, float *velocity)
{
    for (size_t i = 0; i < d->count; i++) {
        velocity[i] = d->momentum * velocity[i] + (grad[i] + d->weight_decay * param[i]);
        param[i] -= d->learning_rate * velocity[i];
    }
}
