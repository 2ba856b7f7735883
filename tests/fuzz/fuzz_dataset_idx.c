/* Fuzz target: alexnet_dataset_load_idx_memory, the other untrusted file format the library parses (MNIST's
 * IDX pair: images u8 [n][rows][cols], labels u8 [n]).
 *
 * Input layout: [0..1] the images file's length (u16, little-endian, at most what remains), [2] options mode,
 * [3] a class count for the options, then the images file, then the labels file (the rest).
 * Options mode: bit 0 NULL options; bit 1 sets options.num_classes; bit 2 asks for 3 channels (must be refused:
 * IDX images are grey); bit 3 a struct_size 16 bytes longer with zero bytes beyond the known layout.
 *
 * Invariants: a failure is FORMAT, UNSUPPORTED, SHAPE, INVALID_ARGUMENT or OUT_OF_MEMORY (capped allocator),
 * with a message, leaving *out_dataset untouched; a success has one image per label, each of the size the
 * header gives, every label below the dataset's class count; nothing leaks. */
#include "fuzz_common.h"

#define FUZZ_IDX_CAP_BYTES (16u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_reader in = fuzz_reader_make(data, size);
    size_t images_size = fuzz_u16(&in);
    uint8_t mode = fuzz_u8(&in);
    uint8_t classes = fuzz_u8(&in);
    size_t rest = fuzz_remaining(&in);
    if (images_size > rest)
        images_size = rest;
    size_t labels_size = rest - images_size;
    /* Each file in a block of exactly its size, so that a read beyond either is caught. */
    uint8_t *images = malloc(images_size > 0 ? images_size : 1);
    uint8_t *labels = malloc(labels_size > 0 ? labels_size : 1);
    FUZZ_CHECK(images != NULL && labels != NULL, "malloc");
    if (images_size > 0)
        memcpy(images, data + in.position, images_size);
    if (labels_size > 0)
        memcpy(labels, data + in.position + images_size, labels_size);

    fuzz_allocator_state state;
    union {
        alexnet_dataset_options options;
        unsigned char bytes[sizeof(alexnet_dataset_options) + 16];
    } storage;
    memset(&storage, 0, sizeof storage);
    alexnet_dataset_options_init(&storage.options);
    storage.options.allocator = fuzz_allocator_make(&state, FUZZ_IDX_CAP_BYTES);
    if (mode & 2)
        storage.options.num_classes = classes;
    if (mode & 4)
        storage.options.channels = 3;
    if (mode & 8)
        storage.options.struct_size = sizeof storage.options + 16;

    alexnet_dataset *const untouched = (alexnet_dataset *)(uintptr_t)0x5a5a5a50;
    alexnet_dataset *dataset = untouched;
    alexnet_status status = alexnet_dataset_load_idx_memory(images, images_size, labels, labels_size,
                                                            mode & 1 ? NULL : &storage.options, &dataset);
    fuzz_check_failure_message(status, "alexnet_dataset_load_idx_memory");
    if (status != ALEXNET_OK) {
        FUZZ_CHECK(status == ALEXNET_E_FORMAT || status == ALEXNET_E_UNSUPPORTED || status == ALEXNET_E_SHAPE ||
                       status == ALEXNET_E_INVALID_ARGUMENT || status == ALEXNET_E_OUT_OF_MEMORY,
                   "alexnet_dataset_load_idx_memory gave %d (%s)", (int)status, alexnet_status_string(status));
        FUZZ_CHECK(dataset == untouched, "a failed load wrote *out_dataset");
    } else {
        FUZZ_CHECK(!(mode & 4) || (mode & 1), "3 channels were accepted for grey IDX images");
        /* The header's sizes: images [n][rows][cols] after a 16-byte header. */
        FUZZ_CHECK(images_size >= 16 && labels_size >= 8, "accepted files shorter than their headers");
        uint32_t n = (uint32_t)images[4] << 24 | (uint32_t)images[5] << 16 | (uint32_t)images[6] << 8 | images[7];
        uint32_t rows = (uint32_t)images[8] << 24 | (uint32_t)images[9] << 16 | (uint32_t)images[10] << 8 | images[11];
        uint32_t cols =
            (uint32_t)images[12] << 24 | (uint32_t)images[13] << 16 | (uint32_t)images[14] << 8 | images[15];
        FUZZ_CHECK(alexnet_dataset_count(dataset) == n, "count %zu, header %u", alexnet_dataset_count(dataset), n);
        for (size_t i = 0; i < n; i++) {
            alexnet_image image;
            uint32_t label = 0;
            FUZZ_CHECK(alexnet_dataset_get(dataset, i, &image, &label) == ALEXNET_OK, "alexnet_dataset_get(%zu)", i);
            FUZZ_CHECK(image.width == cols && image.height == rows && image.format == ALEXNET_PIXEL_GRAY8,
                       "image %zu is %ux%u format %d, header %ux%u grey", i, image.width, image.height,
                       (int)image.format, cols, rows);
            FUZZ_CHECK(label == labels[8 + i], "label %zu is %u, file %u", i, label, labels[8 + i]);
            FUZZ_CHECK(memcmp(image.pixels, images + 16 + i * (size_t)rows * cols, (size_t)rows * cols) == 0,
                       "image %zu differs from the file", i);
        }
        alexnet_image image;
        FUZZ_CHECK(alexnet_dataset_get(dataset, n, &image, NULL) == ALEXNET_E_NOT_FOUND, "get beyond the count");
        alexnet_dataset_destroy(dataset);
    }
    fuzz_allocator_check_empty(&state, "after alexnet_dataset_destroy");
    free(images);
    free(labels);
    return 0;
}
