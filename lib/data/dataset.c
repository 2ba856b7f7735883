#include "data/dataset.h"

#include <math.h>
#include <string.h>

#include "net/config.h"
#include "util/alloc.h"
#include "util/checked.h"
#include "util/error.h"

alexnet_status an_dataset_options_check(const alexnet_dataset_options *o, int allow_unset)
{
    alexnet_status status = an_struct_size_check(o, sizeof *o, sizeof *o, "alexnet_dataset_options");
    if (status != ALEXNET_OK)
        return status;
    if (!(o->channels == 1 || o->channels == 3 || (allow_unset && o->channels == 0)))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "dataset options: channels = %u must be 1 or 3", o->channels);
    if ((!allow_unset && (o->height == 0 || o->width == 0)) || o->height > AN_DATASET_MAX_SIDE ||
        o->width > AN_DATASET_MAX_SIDE)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "dataset options: %u x %u images: each side must be in [1, %d]",
                        o->height, o->width, AN_DATASET_MAX_SIDE);
    if ((!allow_unset && o->num_classes == 0) || o->num_classes > AN_MAX_FEATURES)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "dataset options: num_classes = %u must be in [1, %u]",
                        o->num_classes, AN_MAX_FEATURES);
    alexnet_allocator resolved;
    return an_allocator_resolve(&o->allocator, &resolved);
}

alexnet_status an_dataset_new(const alexnet_dataset_options *options, alexnet_dataset **out)
{
    alexnet_allocator allocator;
    alexnet_status status = an_allocator_resolve(&options->allocator, &allocator);
    if (status != ALEXNET_OK)
        return status;
    alexnet_dataset *dataset = an_calloc(&allocator, 1, sizeof *dataset, "dataset");
    if (dataset == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    dataset->allocator = allocator;
    dataset->channels = options->channels;
    dataset->height = options->height;
    dataset->width = options->width;
    dataset->num_classes = options->num_classes;
    /* Sides are at most 8192 and channels at most 3, so this product fits easily. */
    dataset->image_bytes = (size_t)options->channels * options->height * options->width;
    status = an_dataset_reserve(dataset, options->capacity);
    if (status != ALEXNET_OK) {
        an_dataset_free(dataset);
        return status;
    }
    *out = dataset;
    return ALEXNET_OK;
}

void an_dataset_free(alexnet_dataset *dataset)
{
    if (dataset == NULL)
        return;
    alexnet_allocator allocator = dataset->allocator;
    an_free(&allocator, dataset->pixels, dataset->capacity * dataset->image_bytes);
    an_free(&allocator, dataset->labels, dataset->capacity * sizeof *dataset->labels);
    an_free(&allocator, dataset, sizeof *dataset);
}

alexnet_status an_dataset_reserve(alexnet_dataset *dataset, size_t more)
{
    size_t needed;
    if (an_add_overflow_size(dataset->count, more, &needed))
        return an_error(ALEXNET_E_OUT_OF_MEMORY, "dataset: %zu + %zu images overflows", dataset->count, more);
    if (needed <= dataset->capacity)
        return ALEXNET_OK;
    /* Doubling keeps appending one image at a time linear overall. */
    size_t capacity = dataset->capacity < 16 ? 16 : dataset->capacity;
    while (capacity < needed)
        capacity = capacity > SIZE_MAX / 2 ? needed : capacity * 2;
    size_t pixel_bytes, label_bytes;
    if (an_mul_overflow_size(capacity, dataset->image_bytes, &pixel_bytes) ||
        an_mul_overflow_size(capacity, sizeof *dataset->labels, &label_bytes))
        return an_error(ALEXNET_E_OUT_OF_MEMORY, "dataset: %zu images of %zu bytes overflows", capacity,
                        dataset->image_bytes);
    uint8_t *pixels = an_alloc(&dataset->allocator, pixel_bytes, "dataset pixels");
    uint32_t *labels = pixels != NULL ? an_alloc(&dataset->allocator, label_bytes, "dataset labels") : NULL;
    if (labels == NULL) {
        an_free(&dataset->allocator, pixels, pixel_bytes);
        return ALEXNET_E_OUT_OF_MEMORY;
    }
    if (dataset->count > 0) {
        memcpy(pixels, dataset->pixels, dataset->count * dataset->image_bytes);
        memcpy(labels, dataset->labels, dataset->count * sizeof *labels);
    }
    an_free(&dataset->allocator, dataset->pixels, dataset->capacity * dataset->image_bytes);
    an_free(&dataset->allocator, dataset->labels, dataset->capacity * sizeof *dataset->labels);
    dataset->pixels = pixels;
    dataset->labels = labels;
    dataset->capacity = capacity;
    return ALEXNET_OK;
}

alexnet_status an_dataset_append(alexnet_dataset *dataset, const uint8_t *pixels, const uint32_t *labels,
                                 size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (labels[i] >= dataset->num_classes)
            return an_error(ALEXNET_E_INVALID_ARGUMENT, "dataset: label %u of image %zu is not below num_classes %u",
                            labels[i], i, dataset->num_classes);
    }
    alexnet_status status = an_dataset_reserve(dataset, count);
    if (status != ALEXNET_OK)
        return status;
    if (count > 0) {
        memcpy(dataset->pixels + dataset->count * dataset->image_bytes, pixels, count * dataset->image_bytes);
        memcpy(dataset->labels + dataset->count, labels, count * sizeof *labels);
    }
    dataset->count += count;
    return ALEXNET_OK;
}

/* ---- one image in any pixel format ---- */

static uint32_t an_bytes_per_pixel(alexnet_pixel_format format)
{
    switch (format) {
    case ALEXNET_PIXEL_RGB8:
    case ALEXNET_PIXEL_BGR8: return 3;
    case ALEXNET_PIXEL_RGBA8:
    case ALEXNET_PIXEL_BGRA8: return 4;
    case ALEXNET_PIXEL_GRAY8: return 1;
    }
    return 0;
}

/* Pillow's RGB -> L (ITU-R 601 in 16-bit fixed point, rounded), as alexnet_preprocess_image uses. */
static uint8_t an_luma601(uint32_t r, uint32_t g, uint32_t b)
{
    return (uint8_t)((r * 19595u + g * 38470u + b * 7471u + 0x8000u) >> 16);
}

static alexnet_status an_check_image(const alexnet_dataset *dataset, const alexnet_image *image, uint32_t *bpp)
{
    if (image->pixels == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "dataset: image.pixels is NULL");
    *bpp = an_bytes_per_pixel(image->format);
    if (*bpp == 0)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "dataset: image.format %d is not a known pixel format",
                        (int)image->format);
    if (image->width != dataset->width || image->height != dataset->height)
        return an_error(ALEXNET_E_SHAPE, "dataset: a %u x %u image for a dataset of %u x %u images", image->width,
                        image->height, dataset->width, dataset->height);
    if (image->row_stride_bytes < (size_t)image->width * *bpp)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "dataset: image.row_stride_bytes %zu is below width x %u",
                        image->row_stride_bytes, *bpp);
    return ALEXNET_OK;
}

alexnet_status an_dataset_append_image(alexnet_dataset *dataset, const alexnet_image *image, uint32_t label)
{
    uint32_t bpp = 0;
    alexnet_status status = an_check_image(dataset, image, &bpp);
    if (status != ALEXNET_OK)
        return status;
    if (label >= dataset->num_classes)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "dataset: label %u is not below num_classes %u", label,
                        dataset->num_classes);
    status = an_dataset_reserve(dataset, 1);
    if (status != ALEXNET_OK)
        return status;
    int bgr = image->format == ALEXNET_PIXEL_BGR8 || image->format == ALEXNET_PIXEL_BGRA8;
    int grey = image->format == ALEXNET_PIXEL_GRAY8;
    uint8_t *dst = dataset->pixels + dataset->count * dataset->image_bytes;
    for (uint32_t y = 0; y < image->height; y++) {
        const uint8_t *row = image->pixels + (size_t)y * image->row_stride_bytes;
        for (uint32_t x = 0; x < image->width; x++) {
            const uint8_t *p = row + (size_t)x * bpp;
            uint8_t r = grey ? p[0] : p[bgr ? 2 : 0], g = grey ? p[0] : p[1], b = grey ? p[0] : p[bgr ? 0 : 2];
            if (dataset->channels == 1) {
                *dst++ = grey ? p[0] : an_luma601(r, g, b);
            } else {
                *dst++ = r;
                *dst++ = g;
                *dst++ = b;
            }
        }
    }
    dataset->labels[dataset->count++] = label;
    return ALEXNET_OK;
}

/* ---- statistics ---- */

void an_dataset_channel_stats(const alexnet_dataset *dataset, float mean[3], float std[3])
{
    double sum[3] = {0, 0, 0}, squares[3] = {0, 0, 0};
    const size_t pixels = dataset->count * dataset->height * dataset->width;
    const uint32_t c = dataset->channels;
    for (size_t i = 0; i < pixels; i++) {
        for (uint32_t k = 0; k < c; k++) {
            double v = dataset->pixels[i * c + k] / 255.0;
            sum[k] += v;
            squares[k] += v * v;
        }
    }
    for (uint32_t k = 0; k < 3; k++) {
        if (k >= c || pixels == 0) {
            mean[k] = 0.0f;
            std[k] = 1.0f;
            continue;
        }
        double m = sum[k] / (double)pixels;
        double variance = squares[k] / (double)pixels - m * m;
        mean[k] = (float)m;
        std[k] = (float)sqrt(variance > 1e-12 ? variance : 1e-12);
    }
}

/* Eigen-decomposition of a symmetric 3 x 3 matrix by cyclic Jacobi rotations: a[][] is destroyed (its diagonal
 * ends as the eigenvalues) and v[][] receives the eigenvectors as columns. */
static void an_jacobi3(double a[3][3], double v[3][3])
{
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            v[i][j] = i == j ? 1.0 : 0.0;
    for (int sweep = 0; sweep < 50; sweep++) {
        double off = fabs(a[0][1]) + fabs(a[0][2]) + fabs(a[1][2]);
        if (off < 1e-300)
            break;
        for (int p = 0; p < 2; p++) {
            for (int q = p + 1; q < 3; q++) {
                if (a[p][q] == 0.0)
                    continue;
                /* The rotation angle that zeroes a[p][q] (Numerical Recipes' stable form of tan theta). */
                double theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                double t = (theta >= 0 ? 1.0 : -1.0) / (fabs(theta) + sqrt(theta * theta + 1.0));
                double c = 1.0 / sqrt(t * t + 1.0), s = t * c;
                for (int k = 0; k < 3; k++) { /* a = a J */
                    double akp = a[k][p], akq = a[k][q];
                    a[k][p] = c * akp - s * akq;
                    a[k][q] = s * akp + c * akq;
                }
                for (int k = 0; k < 3; k++) { /* a = J^T a */
                    double apk = a[p][k], aqk = a[q][k];
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
                for (int k = 0; k < 3; k++) {
                    double vkp = v[k][p], vkq = v[k][q];
                    v[k][p] = c * vkp - s * vkq;
                    v[k][q] = s * vkp + c * vkq;
                }
            }
        }
    }
}

void an_dataset_pca(const alexnet_dataset *dataset, float eigenvalues[3], float eigenvectors[9])
{
    memset(eigenvectors, 0, 9 * sizeof *eigenvectors);
    float mean[3], std[3];
    an_dataset_channel_stats(dataset, mean, std);
    if (dataset->channels == 1) {
        eigenvalues[0] = std[0] * std[0];
        eigenvalues[1] = eigenvalues[2] = 0.0f;
        eigenvectors[0] = 1.0f;
        return;
    }
    double cov[3][3] = {{0}};
    const size_t pixels = dataset->count * dataset->height * dataset->width;
    for (size_t i = 0; i < pixels; i++) {
        double x[3];
        for (int k = 0; k < 3; k++)
            x[k] = dataset->pixels[i * 3 + k] / 255.0 - mean[k];
        for (int r = 0; r < 3; r++)
            for (int c = 0; c < 3; c++)
                cov[r][c] += x[r] * x[c];
    }
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++)
            cov[r][c] /= pixels > 0 ? (double)pixels : 1.0;
    double vectors[3][3];
    an_jacobi3(cov, vectors);
    /* Sort the components by eigenvalue, largest first. */
    int order[3] = {0, 1, 2};
    for (int i = 0; i < 3; i++)
        for (int j = i + 1; j < 3; j++)
            if (cov[order[j]][order[j]] > cov[order[i]][order[i]]) {
                int t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
    for (int i = 0; i < 3; i++) {
        eigenvalues[i] = (float)cov[order[i]][order[i]];
        for (int k = 0; k < 3; k++)
            eigenvectors[3 * i + k] = (float)vectors[k][order[i]];
    }
}

/* ---- IDX: big-endian magic (0, 0, type 0x08 = u8, rank) then rank u32 sizes, then the data ---- */

static uint32_t an_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Parse an IDX header of unsigned bytes and the given rank; *data points at the payload of *count bytes. */
static alexnet_status an_idx_header(const uint8_t *bytes, size_t size, uint32_t rank, const char *what,
                                    uint32_t dims[3], const uint8_t **data)
{
    if (size >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b)
        return an_error(ALEXNET_E_UNSUPPORTED, "%s: gzip-compressed; decompress it first (gunzip)", what);
    size_t header = 4 + 4 * (size_t)rank;
    if (size < header)
        return an_error(ALEXNET_E_FORMAT, "%s: %zu bytes is shorter than an IDX header", what, size);
    if (bytes[0] != 0 || bytes[1] != 0)
        return an_error(ALEXNET_E_FORMAT, "%s: not an IDX file (magic %02x %02x)", what, bytes[0], bytes[1]);
    if (bytes[2] != 0x08)
        return an_error(ALEXNET_E_UNSUPPORTED, "%s: IDX element type 0x%02x; only unsigned bytes (0x08) are read",
                        what, bytes[2]);
    if (bytes[3] != rank)
        return an_error(ALEXNET_E_FORMAT, "%s: IDX rank %u, expected %u", what, bytes[3], rank);
    size_t payload = 1;
    for (uint32_t i = 0; i < rank; i++) {
        dims[i] = an_be32(bytes + 4 + 4 * i);
        if (an_mul_overflow_size(payload, dims[i], &payload))
            return an_error(ALEXNET_E_FORMAT, "%s: the IDX sizes overflow", what);
    }
    if (size - header != payload)
        return an_error(ALEXNET_E_FORMAT, "%s: the header promises %zu data bytes, the file has %zu", what, payload,
                        size - header);
    *data = bytes + header;
    return ALEXNET_OK;
}

static alexnet_status an_idx_check_options(const alexnet_dataset_options *o, uint32_t rows, uint32_t cols,
                                           uint32_t classes)
{
    if (o->channels > 1)
        return an_error(ALEXNET_E_SHAPE, "IDX: the images are grey; options ask for %u channels", o->channels);
    if ((o->height != 0 && o->height != rows) || (o->width != 0 && o->width != cols))
        return an_error(ALEXNET_E_SHAPE, "IDX: the images are %u x %u; options ask for %u x %u", rows, cols,
                        o->height, o->width);
    if (o->num_classes != 0 && classes > o->num_classes)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "IDX: a label is %u, not below options.num_classes %u",
                        classes - 1, o->num_classes);
    return ALEXNET_OK;
}

alexnet_status an_dataset_from_idx(const uint8_t *images, size_t images_size, const uint8_t *labels,
                                   size_t labels_size, const alexnet_dataset_options *options,
                                   alexnet_dataset **out)
{
    uint32_t image_dims[3] = {0, 0, 0}, label_dims[3] = {0, 0, 0};
    const uint8_t *pixels = NULL, *label_bytes = NULL;
    alexnet_status status = an_idx_header(images, images_size, 3, "IDX images", image_dims, &pixels);
    if (status == ALEXNET_OK)
        status = an_idx_header(labels, labels_size, 1, "IDX labels", label_dims, &label_bytes);
    if (status != ALEXNET_OK)
        return status;
    if (image_dims[0] != label_dims[0])
        return an_error(ALEXNET_E_FORMAT, "IDX: %u images but %u labels", image_dims[0], label_dims[0]);
    if (image_dims[1] == 0 || image_dims[2] == 0 || image_dims[1] > AN_DATASET_MAX_SIDE ||
        image_dims[2] > AN_DATASET_MAX_SIDE)
        return an_error(ALEXNET_E_FORMAT, "IDX: %u x %u images: each side must be in [1, %d]", image_dims[1],
                        image_dims[2], AN_DATASET_MAX_SIDE);
    uint32_t classes = 0;
    for (uint32_t i = 0; i < label_dims[0]; i++)
        classes = label_bytes[i] + 1u > classes ? label_bytes[i] + 1u : classes;
    status = an_idx_check_options(options, image_dims[1], image_dims[2], classes);
    if (status != ALEXNET_OK)
        return status;
    alexnet_dataset_options resolved = *options;
    resolved.channels = 1;
    resolved.height = image_dims[1];
    resolved.width = image_dims[2];
    resolved.num_classes = options->num_classes != 0 ? options->num_classes : (classes > 0 ? classes : 1);
    if (resolved.capacity < image_dims[0])
        resolved.capacity = image_dims[0];
    alexnet_dataset *dataset = NULL;
    status = an_dataset_new(&resolved, &dataset);
    if (status != ALEXNET_OK)
        return status;
    if (image_dims[0] > 0) /* an empty file leaves pixels NULL, which memcpy must not see even for 0 bytes */
        memcpy(dataset->pixels, pixels, (size_t)image_dims[0] * dataset->image_bytes);
    for (uint32_t i = 0; i < label_dims[0]; i++)
        dataset->labels[i] = label_bytes[i];
    dataset->count = image_dims[0];
    *out = dataset;
    return ALEXNET_OK;
}
