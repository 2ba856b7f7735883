/* In-memory datasets of labelled 8-bit images (one size and channel count per dataset, HWC bytes), their
 * statistics (channel mean/std, colour PCA), and the IDX loader. */
#ifndef AN_DATA_DATASET_H
#define AN_DATA_DATASET_H

#include "alexnet/alexnet.h"

/* Guards against absurd headers and sizes: a dataset image is at most 8192 x 8192. */
#define AN_DATASET_MAX_SIDE 8192

struct alexnet_dataset {
    alexnet_allocator allocator;
    uint32_t channels, height, width, num_classes;
    size_t image_bytes; /* channels x height x width */
    size_t count, capacity;
    uint8_t *pixels;    /* capacity x image_bytes */
    uint32_t *labels;   /* capacity */
};

/* Validate options (non-NULL, struct_size) into a resolved allocator; loaders allow zeros ("from the file"). */
alexnet_status an_dataset_options_check(const alexnet_dataset_options *options, int allow_unset);
/* An empty dataset; options already checked and complete. */
alexnet_status an_dataset_new(const alexnet_dataset_options *options, alexnet_dataset **out);
void an_dataset_free(alexnet_dataset *dataset);
/* Room for `more` images beyond count (doubling growth). */
alexnet_status an_dataset_reserve(alexnet_dataset *dataset, size_t more);
static inline const uint8_t *an_dataset_image(const alexnet_dataset *dataset, size_t index)
{
    return dataset->pixels + index * dataset->image_bytes;
}

alexnet_status an_dataset_append(alexnet_dataset *dataset, const uint8_t *pixels, const uint32_t *labels,
                                 size_t count);
alexnet_status an_dataset_append_image(alexnet_dataset *dataset, const alexnet_image *image, uint32_t label);

void an_dataset_channel_stats(const alexnet_dataset *dataset, float mean[3], float std[3]);
void an_dataset_pca(const alexnet_dataset *dataset, float eigenvalues[3], float eigenvectors[9]);

/* IDX (MNIST) parsing from memory: every size checked before use. */
alexnet_status an_dataset_from_idx(const uint8_t *images, size_t images_size, const uint8_t *labels,
                                   size_t labels_size, const alexnet_dataset_options *options,
                                   alexnet_dataset **out);

#endif
