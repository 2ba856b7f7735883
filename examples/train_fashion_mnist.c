/* Train an AlexNet-family network on Fashion-MNIST (or on a folder of PPM/PGM images, one sub-folder per
 * class) through libalexnet's public trainer API, evaluate it on the test images and write the learning
 * curve as CSV (and as a PNG when gnuplot is installed).
 *
 *   train_fashion_mnist [--data DIR] [--epochs 30] [--train-images N] [--validation 5000] [--test-images N]
 *                       [--batch 128] [--lr 0.01] [--schedule plateau|step|constant] [--backend NAME]
 *                       [--threads N] [--out DIR] [--resume CHECKPOINT] [--ten-crop] [--folder DIR --size S]
 *
 * The network: AlexNet's structure adapted to 28 x 28 greyscale images. Five convolutions with ReLU,
 * overlapping 3 x 3 / stride 2 max pooling after conv1, conv2 and conv5, three FC layers with dropout 0.5.
 *   - Input scaling: the images stay 28 x 28 (upscaling to 227 would multiply the work ~65 times and add no
 *     information); so conv1 is 5 x 5 with stride 1 (AlexNet's 11 x 11 / 4 is sized for 227-pixel photos),
 *     the rest 3 x 3, padded to keep sizes: 28 -> pool 13 -> pool 6 -> pool 2.
 *   - Channel widths 32-64-96-96-64 (AlexNet's 96-256-384-384-256 divided by about 3-4): ten classes of
 *     small grey images need far fewer features than ImageNet's thousand classes of colour photos.
 *   - FC width 256: the last pooled map holds 64 x 2 x 2 = 256 values, so 4096-wide hidden layers would
 *     only add parameters to overfit 60,000 images.
 *   - No LRN (it matters little, and later AlexNet variants dropped it); normalisation uses the training
 *     set's mean and standard deviation; augmentation: 2-pixel padding + random 28 x 28 crops and mirrors
 *     (the paper's crops and flips); the PCA lighting noise is off for grey images.
 * Training: SGD, momentum 0.9, weight decay 5e-4, batch 128, learning rate 0.01 divided by 10 when the
 * validation loss stops improving (the paper's rule), 5,000 training images held out for validation.
 * Image decoding of the folder format and gzip are the application's business: zlib reads the .gz files
 * when the build found it; the library itself reads only uncompressed IDX.
 */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alexnet/alexnet.h"

#ifdef HAVE_ZLIB
#include <zlib.h>
#endif

typedef struct settings {
    const char *data_dir, *folder, *out_dir, *resume, *backend, *schedule;
    uint32_t epochs, batch, threads, size, ten_crop;
    size_t train_images, validation, test_images;
    float lr;
} settings;

typedef struct run_log {
    FILE *csv;
    double start;
    alexnet_trainer *trainer;
    char checkpoint[1024];
} run_log;

static double now_seconds(void)
{
    struct timespec t;
    timespec_get(&t, TIME_UTC);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int fail(const char *what)
{
    fprintf(stderr, "train_fashion_mnist: %s: %s\n", what, alexnet_last_error());
    return 1;
}

#define CHECK(call, what)                                                                                      \
    do {                                                                                                       \
        alexnet_status check_status_ = (call);                                                                 \
        if (check_status_ != ALEXNET_OK) {                                                                     \
            fprintf(stderr, "train_fashion_mnist: %s: %s: %s\n", what, alexnet_status_string(check_status_),      \
                    alexnet_last_error());                                                                     \
            return NULL;                                                                                       \
        }                                                                                                      \
    } while (0)

/* ---- IDX files, gzip or not ---- */

static unsigned char *read_whole(const char *path, size_t *size)
{
#ifdef HAVE_ZLIB
    gzFile file = gzopen(path, "rb"); /* reads uncompressed files unchanged */
    if (file == NULL)
        return NULL;
    size_t capacity = 1 << 20, used = 0;
    unsigned char *data = malloc(capacity);
    int got;
    while (data != NULL && (got = gzread(file, data + used, (unsigned)(capacity - used))) > 0) {
        used += (size_t)got;
        if (used == capacity) {
            unsigned char *bigger = realloc(data, capacity *= 2);
            if (bigger == NULL)
                free(data);
            data = bigger;
        }
    }
    gzclose(file);
#else
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return NULL;
    fseek(file, 0, SEEK_END);
    size_t used = (size_t)ftell(file);
    fseek(file, 0, SEEK_SET);
    unsigned char *data = malloc(used ? used : 1);
    if (data != NULL && fread(data, 1, used, file) != used) {
        free(data);
        data = NULL;
    }
    fclose(file);
#endif
    *size = used;
    return data;
}

static alexnet_dataset *load_idx(const char *dir, const char *prefix)
{
    const char *suffixes[] = {".gz", ""};
    for (int s = 0; s < 2; s++) {
        char images_path[1024], labels_path[1024];
        snprintf(images_path, sizeof images_path, "%s/%s-images-idx3-ubyte%s", dir, prefix, suffixes[s]);
        snprintf(labels_path, sizeof labels_path, "%s/%s-labels-idx1-ubyte%s", dir, prefix, suffixes[s]);
        size_t images_size = 0, labels_size = 0;
        unsigned char *images = read_whole(images_path, &images_size);
        unsigned char *labels = images ? read_whole(labels_path, &labels_size) : NULL;
        alexnet_dataset *dataset = NULL;
        alexnet_status status = labels ? alexnet_dataset_load_idx_memory(images, images_size, labels, labels_size,
                                                                         NULL, &dataset)
                                       : ALEXNET_E_IO;
        free(images);
        free(labels);
        if (status == ALEXNET_OK)
            return dataset;
        if (labels != NULL) {
            fprintf(stderr, "train_fashion_mnist: %s: %s\n", images_path, alexnet_last_error());
            return NULL;
        }
    }
    fprintf(stderr, "train_fashion_mnist: no %s-images-idx3-ubyte[.gz] in %s (apt-get install "
            "dataset-fashion-mnist%s)\n", prefix, dir,
#ifdef HAVE_ZLIB
            ""
#else
            ", then gunzip the files: this build has no zlib"
#endif
    );
    return NULL;
}

/* ---- a folder of PPM/PGM images, one sub-folder per class (sorted by name) ---- */

static int next_number(FILE *f, unsigned *out)
{
    int c;
    while ((c = fgetc(f)) != EOF) {
        if (c == '#')
            while ((c = fgetc(f)) != EOF && c != '\n')
                continue;
        else if (c >= '0' && c <= '9')
            break;
    }
    if (c == EOF)
        return 0;
    unsigned value = 0;
    while (c >= '0' && c <= '9' && value < 100000) {
        value = value * 10 + (unsigned)(c - '0');
        c = fgetc(f);
    }
    *out = value;
    return 1;
}

/* Binary PGM (P5) or PPM (P6), 8-bit, resized (bilinear) to size x size with `channels` channels. */
static int read_pnm(const char *path, uint32_t size, uint32_t channels, uint8_t *out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return 0;
    char magic[3] = {0};
    unsigned w = 0, h = 0, max = 0;
    int ok = fread(magic, 1, 2, f) == 2 && magic[0] == 'P' && (magic[1] == '5' || magic[1] == '6') &&
             next_number(f, &w) && next_number(f, &h) && next_number(f, &max) && max == 255 && w > 0 && h > 0 &&
             w <= 16384 && h <= 16384;
    unsigned depth = magic[1] == '6' ? 3 : 1;
    uint8_t *pixels = ok ? malloc((size_t)w * h * depth) : NULL;
    ok = ok && pixels != NULL && fread(pixels, 1, (size_t)w * h * depth, f) == (size_t)w * h * depth;
    fclose(f);
    for (uint32_t y = 0; ok && y < size; y++) {
        for (uint32_t x = 0; x < size; x++) {
            double sy = ((double)y + 0.5) * h / size - 0.5, sx = ((double)x + 0.5) * w / size - 0.5;
            sy = sy < 0 ? 0 : (sy > h - 1 ? h - 1 : sy);
            sx = sx < 0 ? 0 : (sx > w - 1 ? w - 1 : sx);
            unsigned y0 = (unsigned)sy, x0 = (unsigned)sx, y1 = y0 + 1 < h ? y0 + 1 : y0, x1 = x0 + 1 < w ? x0 + 1 : x0;
            double fy = sy - y0, fx = sx - x0, rgb[3];
            for (unsigned c = 0; c < depth; c++) {
                double top = pixels[((size_t)y0 * w + x0) * depth + c] * (1 - fx) + pixels[((size_t)y0 * w + x1) * depth + c] * fx;
                double bottom = pixels[((size_t)y1 * w + x0) * depth + c] * (1 - fx) + pixels[((size_t)y1 * w + x1) * depth + c] * fx;
                rgb[c] = top * (1 - fy) + bottom * fy;
            }
            if (depth == 1)
                rgb[1] = rgb[2] = rgb[0];
            uint8_t *dst = out + ((size_t)y * size + x) * channels;
            if (channels == 1)
                dst[0] = (uint8_t)lround(depth == 1 ? rgb[0] : 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]);
            else
                for (int c = 0; c < 3; c++)
                    dst[c] = (uint8_t)lround(rgb[c]);
        }
    }
    free(pixels);
    return ok;
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static size_t list_dir(const char *path, int want_dirs, char **names, size_t capacity)
{
    DIR *dir = opendir(path);
    size_t count = 0;
    struct dirent *entry;
    while (dir != NULL && (entry = readdir(dir)) != NULL && count < capacity) {
        if (entry->d_name[0] == '.')
            continue;
        int is_dir = entry->d_type == DT_DIR;
        if (is_dir == want_dirs)
            names[count++] = strdup(entry->d_name);
    }
    if (dir != NULL)
        closedir(dir);
    qsort(names, count, sizeof *names, compare_names);
    return count;
}

static alexnet_dataset *load_folder(const char *root, uint32_t size, uint32_t channels)
{
    char *classes[1024];
    size_t class_count = list_dir(root, 1, classes, 1024);
    if (class_count == 0) {
        fprintf(stderr, "train_fashion_mnist: %s has no class folders\n", root);
        return NULL;
    }
    alexnet_dataset_options o;
    alexnet_dataset_options_init(&o);
    o.channels = channels;
    o.height = o.width = size;
    o.num_classes = (uint32_t)class_count;
    alexnet_dataset *dataset = NULL;
    CHECK(alexnet_dataset_create(&o, &dataset), "dataset");
    uint8_t *pixels = malloc((size_t)size * size * channels);
    for (size_t c = 0; c < class_count; c++) {
        char dir[2048], *files[65536];
        snprintf(dir, sizeof dir, "%s/%s", root, classes[c]);
        size_t file_count = list_dir(dir, 0, files, 65536);
        for (size_t i = 0; i < file_count; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", dir, files[i]);
            uint32_t label = (uint32_t)c;
            if (read_pnm(path, size, channels, pixels))
                alexnet_dataset_add(dataset, pixels, &label, 1);
            else
                fprintf(stderr, "train_fashion_mnist: skipping %s (not an 8-bit binary PGM/PPM)\n", path);
            free(files[i]);
        }
        printf("class %zu = %s\n", c, classes[c]);
        free(classes[c]);
    }
    free(pixels);
    return dataset;
}

/* ---- the network ---- */

static alexnet_model *make_model(uint32_t channels, uint32_t size, uint32_t classes)
{
    alexnet_config c;
    CHECK(alexnet_config_preset(ALEXNET_VARIANT_ONE_TOWER, &c), "preset");
    c.variant = ALEXNET_VARIANT_CUSTOM;
    c.input_channels = channels;
    c.input_height = c.input_width = size;
    /* out_channels, kernel, stride, padding, groups, lrn, max_pool */
    const alexnet_conv_layer_config conv[5] = {
        {32, 5, 1, 2, 1, 0, 1}, {64, 3, 1, 1, 1, 0, 1}, {96, 3, 1, 1, 1, 0, 0}, {96, 3, 1, 1, 1, 0, 0},
        {64, 3, 1, 1, 1, 0, 1},
    };
    memcpy(c.conv, conv, sizeof conv);
    c.hidden_fc_count = 2;
    c.hidden_fc[0] = c.hidden_fc[1] = 256;
    c.num_classes = classes;
    c.dropout_rate = 0.5f;
    CHECK(alexnet_config_validate(&c), "configuration");
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.config = &c;
    options.init = ALEXNET_INIT_KAIMING;
    alexnet_model *model = NULL;
    CHECK(alexnet_model_create(&options, 2012, &model), "model");
    return model;
}

/* ---- progress: console, CSV, a checkpoint per epoch ---- */

static int on_progress(void *user, const alexnet_train_progress *p)
{
    run_log *log = user;
    double elapsed = now_seconds() - log->start;
    if (!p->end_of_epoch) {
        if (p->step % 50 == 0)
            printf("  epoch %u step %llu (%zu/%zu): loss %.4f accuracy %.3f lr %g  [%.0f s]\n", p->epoch + 1,
                   (unsigned long long)p->step, p->images_done, p->images_per_epoch, p->loss, p->accuracy,
                   p->learning_rate, elapsed);
        fflush(stdout);
        return 0;
    }
    printf("epoch %u: train loss %.4f accuracy %.4f | validation loss %.4f top-1 error %.4f | next lr %g [%.0f s]\n",
           p->epoch + 1, p->loss, p->accuracy, p->validation_loss, p->validation_top1_error, p->learning_rate,
           elapsed);
    fflush(stdout);
    if (log->csv != NULL) {
        fprintf(log->csv, "%u,%llu,%.6f,%.6f,%.6f,%.6f,%.6f,%g,%.1f\n", p->epoch + 1, (unsigned long long)p->step,
                p->loss, p->accuracy, p->validation_loss, p->validation_top1_error, p->validation_top5_error,
                p->learning_rate, elapsed);
        fflush(log->csv);
    }
    if (alexnet_trainer_save_checkpoint(log->trainer, log->checkpoint) != ALEXNET_OK)
        fprintf(stderr, "train_fashion_mnist: checkpoint: %s\n", alexnet_last_error());
    return 0;
}

static void plot(const char *out_dir)
{
    /* Without gnuplot the shell exits at once and writing the script would raise SIGPIPE, killing the
     * program (and the buffered report with it): a failed write is just a missing plot. */
    fflush(stdout);
    signal(SIGPIPE, SIG_IGN);
    FILE *gp = popen("gnuplot 2>/dev/null", "w");
    if (gp == NULL)
        return;
    fprintf(gp, "set terminal png size 900,500\nset output '%s/learning_curve.png'\nset datafile separator ','\n"
            "set xlabel 'epoch'\nset ylabel 'loss'\nset y2label 'validation top-1 error'\nset y2tics\n"
            "plot '%s/learning_curve.csv' every ::1 using 1:3 with lines title 'train loss', "
            "'' every ::1 using 1:5 with lines title 'validation loss', "
            "'' every ::1 using 1:6 axes x1y2 with lines title 'validation error'\n", out_dir, out_dir);
    if (pclose(gp) == 0)
        printf("wrote %s/learning_curve.png\n", out_dir);
}

/* ---- main ---- */

static int parse(int argc, char **argv, settings *s)
{
    *s = (settings){"/usr/share/datasets/fashion-mnist", NULL, ".", NULL, "auto", "plateau", 30, 128, 1, 28, 0,
                    0, 5000, 0, 0.01f};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes = 1;
        if (strcmp(a, "--data") == 0 && v) s->data_dir = v;
        else if (strcmp(a, "--folder") == 0 && v) s->folder = v;
        else if (strcmp(a, "--out") == 0 && v) s->out_dir = v;
        else if (strcmp(a, "--resume") == 0 && v) s->resume = v;
        else if (strcmp(a, "--backend") == 0 && v) s->backend = v;
        else if (strcmp(a, "--schedule") == 0 && v) s->schedule = v;
        else if (strcmp(a, "--epochs") == 0 && v) s->epochs = (uint32_t)atoi(v);
        else if (strcmp(a, "--batch") == 0 && v) s->batch = (uint32_t)atoi(v);
        else if (strcmp(a, "--threads") == 0 && v) s->threads = (uint32_t)atoi(v);
        else if (strcmp(a, "--size") == 0 && v) s->size = (uint32_t)atoi(v);
        else if (strcmp(a, "--train-images") == 0 && v) s->train_images = (size_t)atol(v);
        else if (strcmp(a, "--validation") == 0 && v) s->validation = (size_t)atol(v);
        else if (strcmp(a, "--test-images") == 0 && v) s->test_images = (size_t)atol(v);
        else if (strcmp(a, "--lr") == 0 && v) s->lr = (float)atof(v);
        else if (strcmp(a, "--ten-crop") == 0) s->ten_crop = 1, takes = 0;
        else {
            fprintf(stderr, "usage: %s [--data DIR | --folder DIR --size S] [--epochs N] [--train-images N] "
                    "[--validation N] [--test-images N] [--batch N] [--lr X] [--schedule plateau|step|constant] "
                    "[--backend NAME] [--threads N] [--out DIR] [--resume CHECKPOINT] [--ten-crop]\n", argv[0]);
            return 0;
        }
        i += takes;
    }
    return 1;
}

/* Training images (minus the validation hold-out at the end), validation and test sets. */
static int load_data(const settings *s, alexnet_dataset **train, alexnet_dataset **validation,
                     alexnet_dataset **test)
{
    alexnet_dataset *all = s->folder ? load_folder(s->folder, s->size, 1) : load_idx(s->data_dir, "train");
    if (all == NULL)
        return 0;
    size_t count = alexnet_dataset_count(all);
    size_t hold = s->validation < count / 2 ? s->validation : count / 10;
    size_t train_count = count - hold;
    if (s->train_images != 0 && s->train_images < train_count)
        train_count = s->train_images;
    int ok = alexnet_dataset_subset(all, 0, train_count, train) == ALEXNET_OK &&
             (hold == 0 || alexnet_dataset_subset(all, count - hold, hold, validation) == ALEXNET_OK);
    if (s->folder) { /* a folder has no separate test split: test on the validation images */
        ok = ok && (hold == 0 || alexnet_dataset_subset(all, count - hold, hold, test) == ALEXNET_OK);
    } else {
        alexnet_dataset *test_all = load_idx(s->data_dir, "t10k");
        size_t n = test_all ? alexnet_dataset_count(test_all) : 0;
        if (s->test_images != 0 && s->test_images < n)
            n = s->test_images;
        ok = ok && test_all != NULL && alexnet_dataset_subset(test_all, 0, n, test) == ALEXNET_OK;
        alexnet_dataset_destroy(test_all);
    }
    alexnet_dataset_destroy(all);
    printf("data: %zu training, %zu validation, %zu test images\n", alexnet_dataset_count(*train),
           alexnet_dataset_count(*validation), alexnet_dataset_count(*test));
    return ok;
}

int main(int argc, char **argv)
{
    settings s;
    if (!parse(argc, argv, &s))
        return 2;
    alexnet_dataset *train = NULL, *validation = NULL, *test = NULL;
    if (!load_data(&s, &train, &validation, &test) || alexnet_dataset_count(test) == 0)
        return 1;
    alexnet_image first;
    alexnet_dataset_get(train, 0, &first, NULL);
    uint32_t classes = 0;
    for (size_t i = 0; i < alexnet_dataset_count(train); i++) {
        uint32_t label;
        alexnet_dataset_get(train, i, NULL, &label);
        classes = label + 1 > classes ? label + 1 : classes;
    }
    alexnet_model *model = make_model(1, first.height, classes < 2 ? 2 : classes);
    if (model == NULL)
        return 1;

    alexnet_augment_options augment;
    alexnet_augment_options_init(&augment);
    augment.padding = 2;
    augment.pca_std = 0.0f; /* grey images: the colour PCA does not apply */
    if (alexnet_dataset_channel_stats(train, augment.mean, augment.std) != ALEXNET_OK)
        return fail("statistics");
    run_log log = {NULL, now_seconds(), NULL, ""};
    alexnet_trainer_options options;
    alexnet_trainer_options_init(&options);
    options.backend = s.backend;
    options.num_threads = s.threads;
    options.batch = s.batch;
    options.learning_rate = s.lr;
    options.lr_schedule = strcmp(s.schedule, "step") == 0 ? ALEXNET_LR_STEP
                          : strcmp(s.schedule, "constant") == 0 ? ALEXNET_LR_CONSTANT : ALEXNET_LR_PLATEAU;
    options.lr_step_epochs = 10;
    options.seed = 2012;
    options.augment = &augment;
    options.progress = on_progress;
    options.progress_user = &log;
    if (alexnet_trainer_create(model, &options, &log.trainer) != ALEXNET_OK)
        return fail("trainer");
    if (s.resume != NULL && alexnet_trainer_load_checkpoint(log.trainer, s.resume) != ALEXNET_OK)
        return fail("resume");
    char path[1024];
    snprintf(log.checkpoint, sizeof log.checkpoint, "%s/checkpoint.safetensors", s.out_dir);
    snprintf(path, sizeof path, "%s/learning_curve.csv", s.out_dir);
    log.csv = fopen(path, s.resume ? "a" : "w");
    if (log.csv != NULL && !s.resume)
        fprintf(log.csv, "epoch,step,train_loss,train_accuracy,validation_loss,validation_top1_error,"
                "validation_top5_error,next_learning_rate,seconds\n");

    clock_t cpu_start = clock();
    double start = now_seconds();
    if (alexnet_trainer_train(log.trainer, train, validation, s.epochs) != ALEXNET_OK)
        return fail("train");
    double train_seconds = now_seconds() - start, cpu_seconds = (double)(clock() - cpu_start) / CLOCKS_PER_SEC;
    alexnet_trainer_state state = {sizeof state, 0, 0, 0, 0.0f};
    alexnet_trainer_get_state(log.trainer, &state);
    printf("trained to epoch %u (%llu steps) in %.1f s wall, %.1f s CPU on backend %s\n", state.epoch,
           (unsigned long long)state.step, train_seconds, cpu_seconds, s.backend);

    alexnet_evaluation result;
    if (alexnet_trainer_evaluate(log.trainer, test, 0, &result) != ALEXNET_OK)
        return fail("evaluate");
    printf("test: %zu images, accuracy %.4f (top-1 error %.4f, top-5 error %.4f), loss %.4f\n", result.count,
           1.0 - result.top1_error, result.top1_error, result.top5_error, result.loss);
    if (s.ten_crop && alexnet_trainer_evaluate(log.trainer, test, 1, &result) == ALEXNET_OK)
        printf("test, ten crops averaged: accuracy %.4f\n", 1.0 - result.top1_error);
    alexnet_model *trained = NULL;
    snprintf(path, sizeof path, "%s/fashion_mnist.safetensors", s.out_dir);
    if (alexnet_trainer_export_model(log.trainer, &trained) == ALEXNET_OK && alexnet_model_save(trained, path) == ALEXNET_OK)
        printf("wrote %s (load it with alexnet_model_load for inference)\n", path);
    if (log.csv != NULL) {
        fclose(log.csv);
        plot(s.out_dir);
    }
    alexnet_model_destroy(trained);
    alexnet_trainer_destroy(log.trainer);
    alexnet_model_destroy(model);
    alexnet_dataset_destroy(train);
    alexnet_dataset_destroy(validation);
    alexnet_dataset_destroy(test);
    return 0;
}
