/* Suite 'train-slow': a short real training run on Fashion-MNIST through the public API only, asserting at
 * least 80% top-1 accuracy on 1,000 held-out test images.
 *
 * The data comes from Debian's dataset-fashion-mnist package (/usr/share/datasets/fashion-mnist, .gz files,
 * read with zlib when the build found it) or from ALEXNET_FASHION_MNIST_DIR (.gz or uncompressed IDX). Without
 * it the test is skipped (exit 77).
 *
 * It trains on the backend "auto" picks (cpu-simd: about 8 s of CPU). Sized so that it also fits the
 * reference backend (ALEXNET_BACKEND=reference: about a minute of CPU on an idle 2-core machine): the network is the
 * smallest member of the AlexNet family that still has its defining parts (overlapping 3/2 max pooling
 * after each convolution, a hidden FC layer with dropout 0.5, SGD with momentum 0.9 and weight decay 5e-4):
 * two convolutions (16 5x5 and 32 3x3 filters, ReLU), FC 1152 -> 128 -> 10. It sees the first 6,000
 * training images three times (mirror augmentation) and is evaluated on the first 1,000 test images. The
 * five-convolution network of examples/train_fashion_mnist.c needs many full epochs (see
 * docs/TRAINING.md); a deep, narrow net with PyTorch's default initialisation does not leave its plateau in
 * this budget, in the library or in PyTorch alike. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alexnet/alexnet.h"
#include "test_support.h"

#ifdef HAVE_ZLIB
#include <zlib.h>
#endif

#define SKIP 77
#define TRAIN_IMAGES 6000
#define TEST_IMAGES 1000
#define EPOCHS 3
#define TARGET_ACCURACY 0.80

static char data_dir[512];

/* The whole file, decompressed when it is gzip (zlib reads plain files unchanged too). */
static unsigned char *read_file(const char *name, size_t *size)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", data_dir, name);
#ifdef HAVE_ZLIB
    gzFile file = gzopen(path, "rb");
    if (file == NULL)
        return NULL;
    size_t capacity = 1 << 20, used = 0;
    unsigned char *data = malloc(capacity);
    int got;
    while (data != NULL && (got = gzread(file, data + used, (unsigned)(capacity - used))) > 0) {
        used += (size_t)got;
        if (used == capacity) {
            capacity *= 2;
            unsigned char *bigger = realloc(data, capacity);
            if (bigger == NULL)
                free(data);
            data = bigger;
        }
    }
    gzclose(file);
#else
    if (strstr(name, ".gz") != NULL)
        return NULL;
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return NULL;
    fseek(file, 0, SEEK_END);
    size_t used = (size_t)ftell(file);
    fseek(file, 0, SEEK_SET);
    unsigned char *data = malloc(used);
    if (data != NULL && fread(data, 1, used, file) != used) {
        free(data);
        data = NULL;
    }
    fclose(file);
#endif
    *size = used;
    return data;
}

/* The images/labels pair named prefix-{images-idx3,labels-idx1}-ubyte[.gz], or NULL when absent. */
static alexnet_dataset *load_pair(const char *prefix, int inside_test)
{
    static const char *const suffixes[] = {".gz", ""};
    for (size_t s = 0; s < 2; s++) {
        char images_name[128], labels_name[128];
        snprintf(images_name, sizeof images_name, "%s-images-idx3-ubyte%s", prefix, suffixes[s]);
        snprintf(labels_name, sizeof labels_name, "%s-labels-idx1-ubyte%s", prefix, suffixes[s]);
        size_t images_size = 0, labels_size = 0;
        unsigned char *images = read_file(images_name, &images_size);
        unsigned char *labels = images != NULL ? read_file(labels_name, &labels_size) : NULL;
        alexnet_dataset *dataset = NULL;
        alexnet_status status = ALEXNET_OK;
        if (labels != NULL)
            status = alexnet_dataset_load_idx_memory(images, images_size, labels, labels_size, NULL, &dataset);
        if (inside_test)
            ck_assert_msg(status == ALEXNET_OK, "%s: %s", images_name, alexnet_last_error());
        free(images);
        free(labels);
        if (dataset != NULL)
            return dataset;
    }
    return NULL;
}

static double seconds_now(void)
{
    struct timespec now;
    timespec_get(&now, TIME_UTC);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

static alexnet_model *small_fashion_model(void)
{
    alexnet_config c;
    ck_assert_int_eq(alexnet_config_preset(ALEXNET_VARIANT_ONE_TOWER, &c), ALEXNET_OK);
    c.variant = ALEXNET_VARIANT_CUSTOM;
    c.input_channels = 1;
    c.input_height = c.input_width = 28;
    c.conv_count = 2;
    memset(c.conv, 0, sizeof c.conv);
    c.conv[0] = (alexnet_conv_layer_config){16, 5, 1, 2, 1, 0, 1}; /* 28 -> 28, pool 3/2 -> 13 */
    c.conv[1] = (alexnet_conv_layer_config){32, 3, 1, 1, 1, 0, 1}; /* 13 -> 13, pool 3/2 -> 6 */
    c.hidden_fc_count = 1;
    c.hidden_fc[0] = 128;
    c.hidden_fc[1] = 0;
    c.num_classes = 10;
    c.dropout_rate = 0.5f;
    ck_assert_msg(alexnet_config_validate(&c) == ALEXNET_OK, "%s", alexnet_last_error());
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.config = &c;
    options.init = ALEXNET_INIT_KAIMING;
    alexnet_model *model = NULL;
    ck_assert_msg(alexnet_model_create(&options, 2012, &model) == ALEXNET_OK, "%s", alexnet_last_error());
    return model;
}

static int report_epoch(void *user, const alexnet_train_progress *p)
{
    double *start = user;
    if (p->end_of_epoch)
        printf("fashion-mnist epoch %u: train loss %.4f accuracy %.4f (%.1f s)\n", p->epoch + 1, p->loss, p->accuracy,
               seconds_now() - *start);
    fflush(stdout);
    return 0;
}

START_TEST(short_run_reaches_80_percent)
{
    alexnet_dataset *train_all = load_pair("train", 1), *test_all = load_pair("t10k", 1);
    ck_assert_msg(train_all != NULL && test_all != NULL, "the Fashion-MNIST files vanished from %s", data_dir);
    alexnet_dataset *train = NULL, *test = NULL;
    ck_assert_int_eq(alexnet_dataset_subset(train_all, 0, TRAIN_IMAGES, &train), ALEXNET_OK);
    ck_assert_int_eq(alexnet_dataset_subset(test_all, 0, TEST_IMAGES, &test), ALEXNET_OK);
    alexnet_dataset_destroy(train_all);
    alexnet_dataset_destroy(test_all);

    alexnet_augment_options augment;
    alexnet_augment_options_init(&augment);
    augment.random_crop = 0; /* same-size images: the crop is the image; crops cost accuracy in so few steps */
    augment.mirror = 1;
    augment.pca_std = 0.0f;
    ck_assert_int_eq(alexnet_dataset_channel_stats(train, augment.mean, augment.std), ALEXNET_OK);

    double start = seconds_now();
    clock_t cpu_start = clock();
    alexnet_trainer_options options;
    alexnet_trainer_options_init(&options);
    options.batch = 32;
    options.learning_rate = 0.02f;
    options.seed = 7;
    options.augment = &augment;
    options.progress = report_epoch;
    options.progress_user = &start;
    alexnet_model *model = small_fashion_model();
    alexnet_trainer *trainer = NULL;
    ck_assert_msg(alexnet_trainer_create(model, &options, &trainer) == ALEXNET_OK, "%s", alexnet_last_error());
    ck_assert_msg(alexnet_trainer_train(trainer, train, NULL, EPOCHS) == ALEXNET_OK, "%s", alexnet_last_error());
    double trained = seconds_now(), cpu = (double)(clock() - cpu_start) / CLOCKS_PER_SEC;
    alexnet_evaluation evaluation;
    ck_assert_int_eq(alexnet_trainer_evaluate(trainer, test, 0, &evaluation), ALEXNET_OK);
    double accuracy = 1.0 - evaluation.top1_error;
    printf("fashion-mnist: %d epochs of %d images in %.1f s wall, %.1f s CPU (%.2f ms CPU per image-step), test "
           "accuracy %.4f on %d images (loss %.4f, evaluation %.1f s)\n", EPOCHS, TRAIN_IMAGES, trained - start, cpu,
           1e3 * cpu / (EPOCHS * TRAIN_IMAGES), accuracy, TEST_IMAGES, evaluation.loss, seconds_now() - trained);
    ck_assert_msg(accuracy >= TARGET_ACCURACY, "test accuracy %.4f < %.2f", accuracy, TARGET_ACCURACY);
    alexnet_trainer_destroy(trainer);
    alexnet_model_destroy(model);
    alexnet_dataset_destroy(train);
    alexnet_dataset_destroy(test);
}
END_TEST

int main(void)
{
    const char *dir = getenv("ALEXNET_FASHION_MNIST_DIR");
    snprintf(data_dir, sizeof data_dir, "%s", dir != NULL && dir[0] != '\0' ? dir : "/usr/share/datasets/fashion-mnist");
    alexnet_dataset *probe = load_pair("t10k", 0);
    if (probe == NULL) {
        printf("skipped: no Fashion-MNIST IDX files in %s (apt-get install dataset-fashion-mnist, or set "
               "ALEXNET_FASHION_MNIST_DIR)%s\n", data_dir,
#ifdef HAVE_ZLIB
               ""
#else
               "; this build has no zlib, so the files must be uncompressed"
#endif
        );
        return SKIP;
    }
    alexnet_dataset_destroy(probe);
    Suite *suite = suite_create("fashion-mnist");
    TCase *tcase = tcase_create("train");
    tcase_set_timeout(tcase, 1800); /* about 100 s of CPU; generous for loaded machines */
    tcase_add_test(tcase, short_run_reaches_80_percent);
    suite_add_tcase(suite, tcase);
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
