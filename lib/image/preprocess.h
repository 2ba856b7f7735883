/* User pixels -> normalised NCHW floats, as torchvision's evaluation transform does it. */
#ifndef AN_IMAGE_PREPROCESS_H
#define AN_IMAGE_PREPROCESS_H

#include "alexnet/alexnet.h"

/* Validate image and options (NULL options = defaults) and write channels x height x width floats to out
 * (out_count must be at least that). No allocation. Errors: ALEXNET_E_INVALID_ARGUMENT with a message. */
alexnet_status an_image_preprocess(const alexnet_image *image, const alexnet_image_options *options,
                                   uint32_t channels, uint32_t height, uint32_t width, float *out, size_t out_count);

#endif
