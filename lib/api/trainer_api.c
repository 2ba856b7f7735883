/* Public entry points for training and datasets: argument checks, then lib/net/train*.c and lib/data. */
#include <stdio.h>
#include <string.h>

#include "data/augment.h"
#include "data/dataset.h"
#include "io/safetensors.h"
#include "net/config.h"
#include "net/train.h"
#include "util/alloc.h"
#include "util/checked.h"
#include "util/error.h"

/* ---- options ---- */

void alexnet_dataset_options_init(alexnet_dataset_options *options)
{
    if (options == NULL)
        return;
    memset(options, 0, sizeof *options);
    options->struct_size = sizeof *options;
}

/* The RGB principal components of ImageNet's pixels (values in [0, 1]) that fb.resnet.torch and most
 * reimplementations of the paper use; eigenvector i is row i. */
static const float an_imagenet_eigenvalues[3] = {0.2175f, 0.0188f, 0.0045f};
static const float an_imagenet_eigenvectors[9] = {
    -0.5675f, -0.5808f, -0.5836f,
    0.7192f,  -0.0045f, -0.6948f,
    0.4009f,  -0.8140f, 0.4203f,
};

void alexnet_augment_options_init(alexnet_augment_options *options)
{
    if (options == NULL)
        return;
    memset(options, 0, sizeof *options);
    options->struct_size = sizeof *options;
    options->padding = 0;
    options->random_crop = 1;
    options->mirror = 1;
    options->pca_std = 0.1f;
    memcpy(options->pca_eigenvalues, an_imagenet_eigenvalues, sizeof an_imagenet_eigenvalues);
    memcpy(options->pca_eigenvectors, an_imagenet_eigenvectors, sizeof an_imagenet_eigenvectors);
    const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    memcpy(options->mean, mean, sizeof mean);
    memcpy(options->std, std, sizeof std);
}

void alexnet_trainer_options_init(alexnet_trainer_options *options)
{
    if (options == NULL)
        return;
    memset(options, 0, sizeof *options);
    options->struct_size = sizeof *options;
    options->backend = "auto";
    options->num_threads = 1;
    options->batch = 128;
    options->learning_rate = 0.01f;
    options->momentum = 0.9f;
    options->weight_decay = 5e-4f;
    options->dropout_rate = -1.0f;
    options->lr_schedule = ALEXNET_LR_CONSTANT;
    options->lr_gamma = 0.1f;
    options->lr_step_epochs = 30;
    options->lr_patience = 2;
    options->bias_lr_multiplier = 1.0f;
    options->bias_weight_decay_multiplier = 1.0f;
}

/* ---- datasets ---- */

alexnet_status alexnet_dataset_create(const alexnet_dataset_options *options, alexnet_dataset **out_dataset)
{
    an_error_clear();
    if (options == NULL || out_dataset == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_dataset_create: options and out_dataset must not be NULL");
    alexnet_status status = an_dataset_options_check(options, 0);
    if (status != ALEXNET_OK)
        return status;
    return an_dataset_new(options, out_dataset);
}

alexnet_status alexnet_dataset_add_image(alexnet_dataset *dataset, const alexnet_image *image, uint32_t label)
{
    an_error_clear();
    if (dataset == NULL || image == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_dataset_add_image: dataset and image must not be NULL");
    return an_dataset_append_image(dataset, image, label);
}

alexnet_status alexnet_dataset_add(alexnet_dataset *dataset, const uint8_t *pixels, const uint32_t *labels,
                                   size_t count)
{
    an_error_clear();
    if (dataset == NULL || (count > 0 && (pixels == NULL || labels == NULL)))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_dataset_add: dataset, pixels and labels must not be NULL");
    return an_dataset_append(dataset, pixels, labels, count);
}

static alexnet_status an_idx_options(const alexnet_dataset_options *options, alexnet_dataset_options *resolved)
{
    if (options == NULL) {
        alexnet_dataset_options_init(resolved);
        return ALEXNET_OK;
    }
    alexnet_status status = an_dataset_options_check(options, 1);
    if (status == ALEXNET_OK) {
        *resolved = *options;
        resolved->struct_size = sizeof *resolved; /* the copy holds exactly what this library knows */
    }
    return status;
}

alexnet_status alexnet_dataset_load_idx_memory(const void *images, size_t images_size, const void *labels,
                                               size_t labels_size, const alexnet_dataset_options *options,
                                               alexnet_dataset **out_dataset)
{
    an_error_clear();
    if (images == NULL || labels == NULL || out_dataset == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_dataset_load_idx_memory: NULL argument");
    alexnet_dataset_options resolved;
    alexnet_status status = an_idx_options(options, &resolved);
    if (status != ALEXNET_OK)
        return status;
    return an_dataset_from_idx(images, images_size, labels, labels_size, &resolved, out_dataset);
}

/* A whole file into memory through the allocator, its size checked against what memory can hold. */
static alexnet_status an_read_file(const char *path, const alexnet_allocator *allocator, uint8_t **out,
                                   size_t *out_size)
{
    an_byte_source source;
    alexnet_status status = an_byte_source_open_file(&source, path);
    if (status != ALEXNET_OK)
        return status;
    if (source.size > SIZE_MAX / 2) {
        an_byte_source_close(&source);
        return an_error(ALEXNET_E_FORMAT, "%s: %llu bytes is too large", path, (unsigned long long)source.size);
    }
    size_t size = (size_t)source.size;
    uint8_t *data = an_alloc(allocator, size, "IDX file");
    if (data == NULL) {
        an_byte_source_close(&source);
        return ALEXNET_E_OUT_OF_MEMORY;
    }
    status = size > 0 ? source.read(source.user, 0, data, size) : ALEXNET_OK;
    an_byte_source_close(&source);
    if (status != ALEXNET_OK) {
        an_free(allocator, data, size);
        return status;
    }
    *out = data;
    *out_size = size;
    return ALEXNET_OK;
}

alexnet_status alexnet_dataset_load_idx(const char *images_path, const char *labels_path,
                                        const alexnet_dataset_options *options, alexnet_dataset **out_dataset)
{
    an_error_clear();
    if (images_path == NULL || labels_path == NULL || out_dataset == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_dataset_load_idx: NULL argument");
    alexnet_dataset_options resolved;
    alexnet_status status = an_idx_options(options, &resolved);
    alexnet_allocator allocator;
    if (status == ALEXNET_OK)
        status = an_allocator_resolve(&resolved.allocator, &allocator);
    if (status != ALEXNET_OK)
        return status;
    uint8_t *images = NULL, *labels = NULL;
    size_t images_size = 0, labels_size = 0;
    status = an_read_file(images_path, &allocator, &images, &images_size);
    if (status == ALEXNET_OK)
        status = an_read_file(labels_path, &allocator, &labels, &labels_size);
    if (status == ALEXNET_OK)
        status = an_dataset_from_idx(images, images_size, labels, labels_size, &resolved, out_dataset);
    an_free(&allocator, images, images_size);
    an_free(&allocator, labels, labels_size);
    if (status != ALEXNET_OK)
        return an_error_prefix(status, images_path);
    return ALEXNET_OK;
}

alexnet_status alexnet_dataset_subset(const alexnet_dataset *dataset, size_t first, size_t count,
                                      alexnet_dataset **out_dataset)
{
    an_error_clear();
    if (dataset == NULL || out_dataset == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_dataset_subset: NULL argument");
    if (first > dataset->count || count > dataset->count - first)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_dataset_subset: [%zu, %zu + %zu) is outside the %zu images",
                        first, first, count, dataset->count);
    alexnet_dataset_options options;
    alexnet_dataset_options_init(&options);
    options.channels = dataset->channels;
    options.height = dataset->height;
    options.width = dataset->width;
    options.num_classes = dataset->num_classes;
    options.capacity = count;
    options.allocator = dataset->allocator;
    alexnet_dataset *subset = NULL;
    alexnet_status status = an_dataset_new(&options, &subset);
    if (status == ALEXNET_OK)
        status = an_dataset_append(subset, an_dataset_image(dataset, first), dataset->labels + first, count);
    if (status != ALEXNET_OK) {
        an_dataset_free(subset);
        return status;
    }
    *out_dataset = subset;
    return ALEXNET_OK;
}

void alexnet_dataset_destroy(alexnet_dataset *dataset) { an_dataset_free(dataset); }

size_t alexnet_dataset_count(const alexnet_dataset *dataset) { return dataset != NULL ? dataset->count : 0; }

alexnet_status alexnet_dataset_get(const alexnet_dataset *dataset, size_t index, alexnet_image *out_image,
                                   uint32_t *out_label)
{
    an_error_clear();
    if (dataset == NULL || (out_image == NULL && out_label == NULL))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_dataset_get: NULL argument");
    if (index >= dataset->count)
        return an_error(ALEXNET_E_NOT_FOUND, "alexnet_dataset_get: index %zu is beyond the %zu images", index,
                        dataset->count);
    if (out_image != NULL) {
        alexnet_image image;
        image.pixels = an_dataset_image(dataset, index);
        image.width = dataset->width;
        image.height = dataset->height;
        image.row_stride_bytes = (size_t)dataset->width * dataset->channels;
        image.format = dataset->channels == 1 ? ALEXNET_PIXEL_GRAY8 : ALEXNET_PIXEL_RGB8;
        *out_image = image;
    }
    if (out_label != NULL)
        *out_label = dataset->labels[index];
    return ALEXNET_OK;
}

alexnet_status alexnet_dataset_channel_stats(const alexnet_dataset *dataset, float out_mean[3], float out_std[3])
{
    an_error_clear();
    if (dataset == NULL || out_mean == NULL || out_std == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_dataset_channel_stats: NULL argument");
    if (dataset->count == 0)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_dataset_channel_stats: the dataset is empty");
    an_dataset_channel_stats(dataset, out_mean, out_std);
    return ALEXNET_OK;
}

alexnet_status alexnet_dataset_pca(const alexnet_dataset *dataset, float out_eigenvalues[3],
                                   float out_eigenvectors[9])
{
    an_error_clear();
    if (dataset == NULL || out_eigenvalues == NULL || out_eigenvectors == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_dataset_pca: NULL argument");
    if (dataset->count == 0)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_dataset_pca: the dataset is empty");
    an_dataset_pca(dataset, out_eigenvalues, out_eigenvectors);
    return ALEXNET_OK;
}

/* ---- trainer ---- */

alexnet_status alexnet_trainer_create(const alexnet_model *model, const alexnet_trainer_options *options,
                                      alexnet_trainer **out_trainer)
{
    an_error_clear();
    if (model == NULL || out_trainer == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_trainer_create: model and out_trainer must not be NULL");
    alexnet_trainer_options defaults;
    if (options == NULL) {
        alexnet_trainer_options_init(&defaults);
        options = &defaults;
    }
    alexnet_status status =
        an_struct_size_check(options, sizeof *options, sizeof *options, "alexnet_trainer_options");
    if (status != ALEXNET_OK)
        return status;
    return an_trainer_create(model, options, out_trainer);
}

void alexnet_trainer_destroy(alexnet_trainer *trainer) { an_trainer_free(trainer); }

alexnet_status alexnet_trainer_step(alexnet_trainer *trainer, const float *input, const uint32_t *labels,
                                    size_t batch, float *out_loss, float *out_accuracy)
{
    an_error_clear();
    if (trainer == NULL || input == NULL || labels == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_trainer_step: trainer, input and labels must not be NULL");
    if (batch == 0 || batch > trainer->settings.batch)
        return an_error(ALEXNET_E_SHAPE, "alexnet_trainer_step: batch %zu is outside [1, %zu] (the trainer's batch)",
                        batch, trainer->settings.batch);
    for (size_t i = 0; i < batch; i++) {
        if (labels[i] >= trainer->config.num_classes)
            return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_trainer_step: labels[%zu] = %u is not below the %u "
                            "classes", i, labels[i], trainer->config.num_classes);
    }
    memcpy(trainer->host_input, input, batch * an_trainer_input_elements(trainer) * sizeof(float));
    for (size_t i = 0; i < batch; i++)
        trainer->host_labels[i] = (float)labels[i];
    double loss;
    size_t correct;
    alexnet_status status = an_trainer_step_host(trainer, batch, &loss, &correct);
    if (status != ALEXNET_OK)
        return status;
    if (out_loss != NULL)
        *out_loss = (float)loss;
    if (out_accuracy != NULL)
        *out_accuracy = (float)correct / (float)batch;
    return ALEXNET_OK;
}

alexnet_status alexnet_trainer_evaluate(alexnet_trainer *trainer, const alexnet_dataset *dataset, uint32_t ten_crop,
                                        alexnet_evaluation *out_evaluation)
{
    an_error_clear();
    if (trainer == NULL || dataset == NULL || out_evaluation == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_trainer_evaluate: NULL argument");
    return an_trainer_evaluate(trainer, dataset, ten_crop != 0, out_evaluation);
}

alexnet_status alexnet_trainer_train(alexnet_trainer *trainer, const alexnet_dataset *train,
                                     const alexnet_dataset *validation, uint32_t epochs)
{
    an_error_clear();
    if (trainer == NULL || train == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_trainer_train: trainer and train must not be NULL");
    return an_trainer_train(trainer, train, validation, epochs);
}

alexnet_status alexnet_trainer_get_state(const alexnet_trainer *trainer, alexnet_trainer_state *out_state)
{
    an_error_clear();
    if (trainer == NULL || out_state == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_trainer_get_state: NULL argument");
    alexnet_trainer_state state;
    memset(&state, 0, sizeof state);
    state.struct_size = sizeof state;
    state.step = trainer->state.step;
    state.epoch = trainer->state.epoch;
    state.epoch_position = trainer->state.epoch_position;
    state.learning_rate = trainer->state.learning_rate;
    *out_state = state;
    return ALEXNET_OK;
}

alexnet_status alexnet_trainer_save_checkpoint(const alexnet_trainer *trainer, const char *path)
{
    an_error_clear();
    if (trainer == NULL || path == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_trainer_save_checkpoint: trainer and path must not be NULL");
    alexnet_status status = an_trainer_save_checkpoint(trainer, path);
    return status == ALEXNET_OK ? ALEXNET_OK : an_error_prefix(status, path);
}

alexnet_status alexnet_trainer_load_checkpoint(alexnet_trainer *trainer, const char *path)
{
    an_error_clear();
    if (trainer == NULL || path == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_trainer_load_checkpoint: trainer and path must not be NULL");
    alexnet_status status = an_trainer_load_checkpoint(trainer, path);
    return status == ALEXNET_OK ? ALEXNET_OK : an_error_prefix(status, path);
}

alexnet_status alexnet_trainer_export_model(const alexnet_trainer *trainer, alexnet_model **out_model)
{
    an_error_clear();
    if (trainer == NULL || out_model == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_trainer_export_model: NULL argument");
    return an_trainer_export(trainer, out_model);
}
