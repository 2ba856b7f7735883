#include "cpu/reference/reference_ops.h"

#include <math.h>

static inline float an_relu_if(float x, int relu) { return relu && x < 0.0f ? 0.0f : x; }

void an_ref_conv2d(const an_conv_desc *d, const float *in, const float *weight, const float *bias, float *out)
{
    const uint32_t in_per_group = d->in_channels / d->groups;
    const uint32_t out_per_group = d->out_channels / d->groups;
    const uint32_t k = d->kernel_size;
    const size_t in_plane = (size_t)d->in_height * d->in_width;
    const size_t out_plane = (size_t)d->out_height * d->out_width;
    for (uint32_t n = 0; n < d->batch; n++) {
        const float *image = in + (size_t)n * d->in_channels * in_plane;
        for (uint32_t oc = 0; oc < d->out_channels; oc++) {
            const uint32_t group = oc / out_per_group;
            const float *filter = weight + (size_t)oc * in_per_group * k * k;
            float *plane = out + ((size_t)n * d->out_channels + oc) * out_plane;
            for (uint32_t oy = 0; oy < d->out_height; oy++) {
                for (uint32_t ox = 0; ox < d->out_width; ox++) {
                    float sum = bias[oc];
                    for (uint32_t ic = 0; ic < in_per_group; ic++) {
                        const float *channel = image + (size_t)(group * in_per_group + ic) * in_plane;
                        const float *taps = filter + (size_t)ic * k * k;
                        for (uint32_t ky = 0; ky < k; ky++) {
                            int64_t iy = (int64_t)oy * d->stride + ky - d->padding;
                            if (iy < 0 || iy >= d->in_height)
                                continue;
                            for (uint32_t kx = 0; kx < k; kx++) {
                                int64_t ix = (int64_t)ox * d->stride + kx - d->padding;
                                if (ix < 0 || ix >= d->in_width)
                                    continue;
                                sum += channel[iy * d->in_width + ix] * taps[ky * k + kx];
                            }
                        }
                    }
                    plane[(size_t)oy * d->out_width + ox] = an_relu_if(sum, d->relu);
                }
            }
        }
    }
}

void an_ref_max_pool2d(const an_pool_desc *d, const float *in, float *out)
{
    const size_t planes = (size_t)d->batch * d->channels;
    for (size_t p = 0; p < planes; p++) {
        const float *src = in + p * d->in_height * d->in_width;
        float *dst = out + p * d->out_height * d->out_width;
        for (uint32_t oy = 0; oy < d->out_height; oy++) {
            for (uint32_t ox = 0; ox < d->out_width; ox++) {
                float best = -INFINITY;
                for (uint32_t ky = 0; ky < d->kernel_size; ky++) {
                    for (uint32_t kx = 0; kx < d->kernel_size; kx++) {
                        float v = src[(size_t)(oy * d->stride + ky) * d->in_width + ox * d->stride + kx];
                        /* NaN propagates, as in PyTorch */
                        if (v > best || isnan(v))
                            best = v;
                    }
                }
                dst[(size_t)oy * d->out_width + ox] = best;
            }
        }
    }
}

void an_ref_adaptive_avg_pool2d(const an_pool_desc *d, const float *in, float *out)
{
    const size_t planes = (size_t)d->batch * d->channels;
    for (size_t p = 0; p < planes; p++) {
        const float *src = in + p * d->in_height * d->in_width;
        float *dst = out + p * d->out_height * d->out_width;
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

void an_ref_lrn(const an_lrn_desc *d, const float *in, float *out)
{
    const size_t plane = (size_t)d->height * d->width;
    const int64_t before = d->size / 2, after = (d->size - 1) / 2;
    for (uint32_t n = 0; n < d->batch; n++) {
        const float *image = in + (size_t)n * d->channels * plane;
        float *result = out + (size_t)n * d->channels * plane;
        for (int64_t c = 0; c < d->channels; c++) {
            int64_t c0 = c - before < 0 ? 0 : c - before;
            int64_t c1 = c + after >= d->channels ? d->channels - 1 : c + after;
            for (size_t i = 0; i < plane; i++) {
                float sum = 0.0f;
                for (int64_t j = c0; j <= c1; j++) {
                    float v = image[(size_t)j * plane + i];
                    sum += v * v;
                }
                result[(size_t)c * plane + i] = image[(size_t)c * plane + i] / powf(d->k + d->alpha * sum, d->beta);
            }
        }
    }
}

void an_ref_fully_connected(const an_fc_desc *d, const float *in, const float *weight, const float *bias, float *out)
{
    for (uint32_t n = 0; n < d->batch; n++) {
        const float *x = in + (size_t)n * d->in_features;
        for (uint32_t o = 0; o < d->out_features; o++) {
            const float *w = weight + (size_t)o * d->in_features;
            float sum = 0.0f;
            for (uint32_t i = 0; i < d->in_features; i++)
                sum += w[i] * x[i];
            out[(size_t)n * d->out_features + o] = an_relu_if(sum + bias[o], d->relu);
        }
    }
}

void an_ref_relu(size_t count, const float *in, float *out)
{
    for (size_t i = 0; i < count; i++)
        out[i] = in[i] < 0.0f ? 0.0f : in[i];
}

void an_ref_dropout(size_t count, float rate, uint64_t seed, const float *in, float *out)
{
    const float scale = 1.0f / (1.0f - rate);
    for (size_t i = 0; i < count; i++)
        out[i] = an_dropout_keep(seed, i, rate) ? in[i] * scale : 0.0f;
}

void an_ref_softmax(uint32_t batch, uint32_t classes, const float *in, float *out)
{
    for (uint32_t n = 0; n < batch; n++) {
        const float *x = in + (size_t)n * classes;
        float *y = out + (size_t)n * classes;
        float max = x[0];
        for (uint32_t i = 1; i < classes; i++)
            max = x[i] > max ? x[i] : max;
        double sum = 0.0;
        for (uint32_t i = 0; i < classes; i++) {
            y[i] = expf(x[i] - max);
            sum += y[i];
        }
        const float inverse = (float)(1.0 / sum);
        for (uint32_t i = 0; i < classes; i++)
            y[i] *= inverse;
    }
}
