/* Training-time augmentation: a dataset image to one normalised network input (C x H x W floats), with the
 * paper's random crops, mirroring and PCA lighting noise drawn from a seeded generator, and the
 * evaluation crops (centre, or the ten crops). */
#ifndef AN_DATA_AUGMENT_H
#define AN_DATA_AUGMENT_H

#include "alexnet/alexnet.h"
#include "util/rng.h"

/* Where and how one input is cut from a (padded) dataset image. */
typedef struct an_crop {
    uint32_t top, left; /* in the padded image's coordinates */
    int mirror;
    float noise[3];     /* lighting noise added to every pixel of each channel (values in [0, 1] units) */
} an_crop;

alexnet_status an_augment_options_check(const alexnet_augment_options *options);
/* ALEXNET_E_SHAPE unless a dataset of these images can feed an input of out_h x out_w with this padding. */
alexnet_status an_augment_fits(const alexnet_dataset *dataset, const alexnet_augment_options *options,
                               uint32_t channels, uint32_t out_h, uint32_t out_w);
/* A training crop: random position / mirror / noise as the options ask. */
void an_augment_draw(an_rng *rng, const alexnet_augment_options *options, const alexnet_dataset *dataset,
                     uint32_t out_h, uint32_t out_w, an_crop *crop);
/* Crop `which` of the ten evaluation crops (0 = centre, 1..4 = corners, 5..9 = their mirrors); which 0 alone
 * is the single centre crop. */
void an_augment_eval_crop(const alexnet_augment_options *options, const alexnet_dataset *dataset, uint32_t out_h,
                          uint32_t out_w, uint32_t which, an_crop *crop);
/* Write image `index` of dataset, cut as crop says, normalised, to out (channels x out_h x out_w). */
void an_augment_render(const alexnet_dataset *dataset, size_t index, const alexnet_augment_options *options,
                       uint32_t out_h, uint32_t out_w, const an_crop *crop, float *out);

#endif
