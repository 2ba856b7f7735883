#include "data/augment.h"

#include <math.h>
#include <string.h>

#include "data/dataset.h"
#include "net/config.h"
#include "util/error.h"

alexnet_status an_augment_options_check(const alexnet_augment_options *o)
{
    alexnet_status status = an_struct_size_check(o, sizeof *o, sizeof *o, "alexnet_augment_options");
    if (status != ALEXNET_OK)
        return status;
    if (o->padding > 1024)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "augment options: padding = %u is above 1024", o->padding);
    if (!isfinite(o->pca_std) || o->pca_std < 0.0f)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "augment options: pca_std = %g must be finite and >= 0",
                        (double)o->pca_std);
    for (int i = 0; i < 9; i++) {
        if (!isfinite(o->pca_eigenvectors[i]) || (i < 3 && !isfinite(o->pca_eigenvalues[i])))
            return an_error(ALEXNET_E_INVALID_ARGUMENT, "augment options: PCA eigenvalues/vectors must be finite");
    }
    for (int c = 0; c < 3; c++) {
        if (!isfinite(o->mean[c]) || !isfinite(o->std[c]) || !(o->std[c] > 0.0f))
            return an_error(ALEXNET_E_INVALID_ARGUMENT,
                            "augment options: mean[%d] = %g and std[%d] = %g must be finite, std > 0", c,
                            (double)o->mean[c], c, (double)o->std[c]);
    }
    return ALEXNET_OK;
}

alexnet_status an_augment_fits(const alexnet_dataset *dataset, const alexnet_augment_options *options,
                               uint32_t channels, uint32_t out_h, uint32_t out_w)
{
    if (dataset->channels != channels)
        return an_error(ALEXNET_E_SHAPE, "dataset has %u channels, the network takes %u", dataset->channels,
                        channels);
    uint64_t padded_h = (uint64_t)dataset->height + 2u * options->padding;
    uint64_t padded_w = (uint64_t)dataset->width + 2u * options->padding;
    if (padded_h < out_h || padded_w < out_w)
        return an_error(ALEXNET_E_SHAPE,
                        "dataset images of %u x %u with padding %u are smaller than the network's %u x %u input "
                        "(raise alexnet_augment_options.padding)", dataset->height, dataset->width,
                        options->padding, out_h, out_w);
    return ALEXNET_OK;
}

/* Uniform in [0, n]: the modulo's bias is below n / 2^64, far beyond anything measurable. */
static uint32_t an_uniform_upto(an_rng *rng, uint32_t n) { return (uint32_t)(an_rng_next(rng) % ((uint64_t)n + 1)); }

/* The paper's lighting: each pixel gets sum_i alpha_i lambda_i p_i, the same for the whole image. */
static void an_lighting(const alexnet_augment_options *o, uint32_t channels, const double alpha[3], float noise[3])
{
    for (uint32_t c = 0; c < 3; c++) {
        double sum = 0.0;
        if (channels == 1) {
            sum = c == 0 ? alpha[0] * o->pca_eigenvalues[0] : 0.0;
        } else {
            for (int i = 0; i < 3; i++)
                sum += alpha[i] * o->pca_eigenvalues[i] * o->pca_eigenvectors[3 * i + c];
        }
        noise[c] = (float)sum;
    }
}

void an_augment_draw(an_rng *rng, const alexnet_augment_options *o, const alexnet_dataset *dataset, uint32_t out_h,
                     uint32_t out_w, an_crop *crop)
{
    uint32_t spare_h = dataset->height + 2 * o->padding - out_h;
    uint32_t spare_w = dataset->width + 2 * o->padding - out_w;
    memset(crop, 0, sizeof *crop);
    if (o->random_crop) {
        crop->top = an_uniform_upto(rng, spare_h);
        crop->left = an_uniform_upto(rng, spare_w);
    } else {
        crop->top = spare_h / 2;
        crop->left = spare_w / 2;
    }
    if (o->mirror)
        crop->mirror = (int)(an_rng_next(rng) >> 63);
    if (o->pca_std > 0.0f) {
        float draws[3];
        an_rng_fill_normal(rng, draws, 3, 0.0, o->pca_std);
        double alpha[3] = {draws[0], draws[1], draws[2]};
        an_lighting(o, dataset->channels, alpha, crop->noise);
    }
}

void an_augment_eval_crop(const alexnet_augment_options *o, const alexnet_dataset *dataset, uint32_t out_h,
                          uint32_t out_w, uint32_t which, an_crop *crop)
{
    uint32_t spare_h = dataset->height + 2 * o->padding - out_h;
    uint32_t spare_w = dataset->width + 2 * o->padding - out_w;
    memset(crop, 0, sizeof *crop);
    uint32_t position = which % 5;
    crop->mirror = which >= 5;
    /* 0: centre; 1..4: top-left, top-right, bottom-left, bottom-right. */
    crop->top = position == 0 ? spare_h / 2 : (position <= 2 ? 0 : spare_h);
    crop->left = position == 0 ? spare_w / 2 : (position % 2 == 1 ? 0 : spare_w);
}

void an_augment_render(const alexnet_dataset *dataset, size_t index, const alexnet_augment_options *o,
                       uint32_t out_h, uint32_t out_w, const an_crop *crop, float *out)
{
    const uint32_t channels = dataset->channels;
    const uint8_t *image = an_dataset_image(dataset, index);
    for (uint32_t c = 0; c < channels; c++) {
        /* Every output value is one of 256 levels (plus the padding's, which is level 0). */
        float level[256];
        for (int v = 0; v < 256; v++)
            level[v] = ((float)v / 255.0f + crop->noise[c] - o->mean[c]) / o->std[c];
        float *plane = out + (size_t)c * out_h * out_w;
        for (uint32_t y = 0; y < out_h; y++) {
            int64_t sy = (int64_t)crop->top + y - o->padding;
            for (uint32_t x = 0; x < out_w; x++) {
                uint32_t cx = crop->mirror ? out_w - 1 - x : x;
                int64_t sx = (int64_t)crop->left + cx - o->padding;
                int inside = sy >= 0 && sy < dataset->height && sx >= 0 && sx < dataset->width;
                uint8_t v = inside ? image[((size_t)sy * dataset->width + (size_t)sx) * channels + c] : 0;
                plane[(size_t)y * out_w + x] = level[v];
            }
        }
    }
}
