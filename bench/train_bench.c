/* train_bench: training throughput of one libalexnet configuration per process (bench/compare.py train).
 *
 *   train_bench [--variant fashion|torchvision|one-tower|paper] [--backend NAME] [--threads N] [--batch N]
 *               [--warmup N] [--min-steps N] [--max-steps N] [--max-seconds S] [--lr R] [--seed S]
 *               [--which-backend] [--json FILE|-] [--quiet]
 *
 * It creates the model (a preset with its own initialisation, or "fashion": the network of
 * examples/train_fashion_mnist.c on 1 x 28 x 28, Kaiming initialisation, dropout 0.5), a trainer with that
 * batch and thread count (SGD, momentum 0.9, weight decay 5e-4, the model's dropout rate), then times
 * alexnet_trainer_step (forward, backward, SGD update) after --warmup untimed steps: at least --min-steps,
 * at most --max-steps, stopping once --max-seconds have passed. The inputs are random uint8 images scaled
 * to about zero mean and unit deviation with random labels: four batches used in turn (a fixed batch would
 * be overfitted; random ones keep the loss finite at --lr 0.01, as PyTorch's side of the comparison uses).
 *
 * The public API does not say which backend "auto" gives a trainer, so with "auto" (and ALEXNET_BACKEND
 * unset) or "cpu" this program makes the library's choice itself: the available backends (of kind cpu for
 * "cpu") by descending score, the first on which alexnet_trainer_create succeeds, which is the highest-scoring
 * backend that implements every training op, as the library's rule is. --which-backend prints that name and
 * stops (bench/compare.py passes it to alexnet_bench --train, whose report only repeats the request).
 */
#include <alexnet/alexnet.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define MAX_STEPS 100000
#define BATCHES 4

typedef struct settings {
    const char *variant, *backend, *json_path;
    unsigned threads, batch, warmup, min_steps, max_steps, which_backend, quiet;
    double max_seconds;
    float lr;
    uint64_t seed;
} settings;

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static double cpu_seconds(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_utime.tv_sec + (double)u.ru_stime.tv_sec + 1e-6 * (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s != NULL && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

static int usage(void)
{
    fputs("usage: train_bench [--variant fashion|torchvision|one-tower|paper] [--backend NAME] [--threads N]\n"
          "                   [--batch N] [--warmup N] [--min-steps N] [--max-steps N] [--max-seconds S]\n"
          "                   [--lr R] [--seed S] [--which-backend] [--json FILE|-] [--quiet]\n"
          "  defaults: fashion, auto, 2 threads, batch 64, 2 warm-up steps, 5..1000 timed steps, 3 s, lr 0.01\n",
          stderr);
    return 2;
}

/* The network of examples/train_fashion_mnist.c (make_model), or a preset. */
static alexnet_status make_model(const settings *s, alexnet_model **out)
{
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    alexnet_config c;
    if (!strcmp(s->variant, "fashion")) {
        alexnet_status status = alexnet_config_preset(ALEXNET_VARIANT_ONE_TOWER, &c);
        if (status != ALEXNET_OK)
            return status;
        c.variant = ALEXNET_VARIANT_CUSTOM;
        c.input_channels = 1;
        c.input_height = c.input_width = 28;
        /* out_channels, kernel, stride, padding, groups, lrn, max_pool */
        const alexnet_conv_layer_config conv[5] = {
            {32, 5, 1, 2, 1, 0, 1}, {64, 3, 1, 1, 1, 0, 1}, {96, 3, 1, 1, 1, 0, 0}, {96, 3, 1, 1, 1, 0, 0},
            {64, 3, 1, 1, 1, 0, 1},
        };
        memcpy(c.conv, conv, sizeof conv);
        c.hidden_fc_count = 2;
        c.hidden_fc[0] = c.hidden_fc[1] = 256;
        c.num_classes = 10;
        c.dropout_rate = 0.5f;
        options.config = &c;
        options.init = ALEXNET_INIT_KAIMING;
    } else if (!strcmp(s->variant, "torchvision")) {
        options.variant = ALEXNET_VARIANT_TORCHVISION;
    } else if (!strcmp(s->variant, "one-tower")) {
        options.variant = ALEXNET_VARIANT_ONE_TOWER;
    } else if (!strcmp(s->variant, "paper")) {
        options.variant = ALEXNET_VARIANT_PAPER_2012;
    } else {
        return ALEXNET_E_INVALID_ARGUMENT;
    }
    return alexnet_model_create(&options, s->seed, out);
}

/* A trainer on the requested backend; *resolved gets the backend's name (see the comment at the top). */
static alexnet_status make_trainer(const settings *s, const alexnet_model *model, alexnet_trainer **out,
                                   char *resolved, size_t resolved_size)
{
    alexnet_trainer_options options;
    alexnet_trainer_options_init(&options);
    options.batch = s->batch;
    options.num_threads = s->threads;
    options.learning_rate = s->lr;
    options.momentum = 0.9f;
    options.weight_decay = 5e-4f;
    options.seed = s->seed;
    const char *env = getenv("ALEXNET_BACKEND");
    int is_auto = !strcmp(s->backend, "auto");
    if (!(is_auto && (env == NULL || env[0] == '\0')) && strcmp(s->backend, "cpu") != 0) {
        options.backend = s->backend;
        snprintf(resolved, resolved_size, "%s", is_auto ? env : s->backend);
        return alexnet_trainer_create(model, &options, out);
    }
    /* The library's rule, through the public API: by descending score, the first that can train. */
    size_t count = alexnet_backend_count();
    int tried[64] = {0};
    alexnet_status last = ALEXNET_E_UNSUPPORTED;
    for (;;) {
        size_t best = count;
        int32_t best_score = 0;
        alexnet_backend_info info, best_info;
        memset(&best_info, 0, sizeof best_info);
        for (size_t i = 0; i < count && i < 64; i++) {
            memset(&info, 0, sizeof info);
            info.struct_size = sizeof info;
            if (tried[i] || alexnet_backend_get_info(i, &info) != ALEXNET_OK || !info.available)
                continue;
            if (!is_auto && (info.kind == NULL || strcmp(info.kind, "cpu") != 0))
                continue;
            if (best == count || info.score > best_score) {
                best = i;
                best_score = info.score;
                best_info = info;
            }
        }
        if (best == count)
            return last;
        tried[best] = 1;
        options.backend = best_info.name;
        last = alexnet_trainer_create(model, &options, out);
        if (last == ALEXNET_OK) {
            snprintf(resolved, resolved_size, "%s", best_info.name);
            return ALEXNET_OK;
        }
        if (last != ALEXNET_E_UNSUPPORTED)
            return last;
    }
}

static void describe(const char *name, char *out, size_t size)
{
    out[0] = '\0';
    for (size_t i = 0; i < alexnet_backend_count(); i++) {
        alexnet_backend_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        if (alexnet_backend_get_info(i, &info) == ALEXNET_OK && info.name && !strcmp(info.name, name))
            snprintf(out, size, "%s", info.description ? info.description : "");
    }
}

int main(int argc, char **argv)
{
    settings s = {"fashion", "auto", NULL, 2, 64, 2, 5, 1000, 0, 0, 3.0, 0.01f, 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--which-backend")) {
            s.which_backend = 1;
            continue;
        }
        if (!strcmp(a, "--quiet")) {
            s.quiet = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h") || v == NULL)
            return usage();
        i++;
        if (!strcmp(a, "--variant"))
            s.variant = v;
        else if (!strcmp(a, "--backend"))
            s.backend = v;
        else if (!strcmp(a, "--json"))
            s.json_path = v;
        else if (!strcmp(a, "--threads"))
            s.threads = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--batch"))
            s.batch = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--warmup"))
            s.warmup = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--min-steps"))
            s.min_steps = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--max-steps"))
            s.max_steps = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(a, "--max-seconds"))
            s.max_seconds = strtod(v, NULL);
        else if (!strcmp(a, "--lr"))
            s.lr = strtof(v, NULL);
        else if (!strcmp(a, "--seed"))
            s.seed = strtoull(v, NULL, 10);
        else
            return usage();
    }
    if (s.batch == 0 || s.max_steps == 0 || s.max_steps > MAX_STEPS || s.min_steps > s.max_steps)
        return usage();
    if (s.which_backend) {
        s.variant = "fashion"; /* small: the choice does not depend on the network */
        s.batch = 1;
    }

    alexnet_model *model = NULL;
    alexnet_trainer *trainer = NULL;
    float *input = NULL;
    uint32_t *labels = NULL;
    double *runs = NULL;
    unsigned done = 0;
    float first_loss = NAN, loss = NAN;
    char backend[64] = "", description[256] = "", error[512] = "";
    double create_ms = 0, trainer_ms = 0, wall_ms = 0, cpu_s = 0;
    alexnet_config config;
    config.struct_size = sizeof config;

    double t0 = now_ms();
    alexnet_status status = make_model(&s, &model);
    create_ms = now_ms() - t0;
    if (status != ALEXNET_OK) {
        snprintf(error, sizeof error, "model (%s): %s: %s", s.variant, alexnet_status_string(status),
                 alexnet_last_error());
        goto report;
    }
    t0 = now_ms();
    status = make_trainer(&s, model, &trainer, backend, sizeof backend);
    trainer_ms = now_ms() - t0;
    if (status != ALEXNET_OK) {
        snprintf(error, sizeof error, "alexnet_trainer_create (%s): %s: %s", s.backend, alexnet_status_string(status),
                 alexnet_last_error());
        goto report;
    }
    describe(backend, description, sizeof description);
    if (s.which_backend) {
        printf("%s\n", backend);
        alexnet_trainer_destroy(trainer);
        alexnet_model_destroy(model);
        return 0;
    }
    if ((status = alexnet_model_get_config(model, &config)) != ALEXNET_OK) {
        snprintf(error, sizeof error, "alexnet_model_get_config: %s", alexnet_last_error());
        goto report;
    }
    const uint32_t classes = alexnet_model_num_classes(model);
    const size_t per_image = (size_t)config.input_channels * config.input_height * config.input_width;
    input = malloc(sizeof(float) * per_image * s.batch * BATCHES);
    labels = malloc(sizeof(uint32_t) * s.batch * BATCHES);
    runs = malloc(sizeof(double) * s.max_steps);
    if (input == NULL || labels == NULL || runs == NULL) {
        snprintf(error, sizeof error, "out of memory");
        goto report;
    }
    uint64_t x = s.seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < per_image * s.batch * BATCHES; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        input[i] = ((float)(x >> 56) / 255.0f - 0.5f) / 0.29f; /* a uniform uint8 pixel, about N(0, 1) */
    }
    for (size_t i = 0; i < (size_t)s.batch * BATCHES; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        labels[i] = (uint32_t)(x % classes);
    }
    unsigned step = 0;
#define STEP()                                                                                                 \
    alexnet_trainer_step(trainer, input + per_image * s.batch * (step % BATCHES), labels + (size_t)s.batch *    \
                         (step % BATCHES), s.batch, &loss, NULL)
    for (unsigned i = 0; i < s.warmup; i++, step++) {
        if ((status = STEP()) != ALEXNET_OK) {
            snprintf(error, sizeof error, "alexnet_trainer_step (warm-up): %s: %s", alexnet_status_string(status),
                     alexnet_last_error());
            goto report;
        }
        if (i == 0)
            first_loss = loss;
    }
    double cpu0 = cpu_seconds(), start = now_ms();
    while (done < s.max_steps) {
        if (done >= s.min_steps && now_ms() - start > s.max_seconds * 1e3)
            break;
        t0 = now_ms();
        if ((status = STEP()) != ALEXNET_OK) {
            snprintf(error, sizeof error, "alexnet_trainer_step: %s: %s", alexnet_status_string(status),
                     alexnet_last_error());
            goto report;
        }
        runs[done++] = now_ms() - t0;
        step++;
        if (s.warmup == 0 && done == 1)
            first_loss = loss;
    }
    wall_ms = now_ms() - start;
    cpu_s = cpu_seconds() - cpu0;

report:;
    double *sorted = done ? malloc(sizeof(double) * done) : NULL;
    double median = 0, lo = 0, hi = 0;
    if (sorted != NULL) {
        memcpy(sorted, runs, sizeof(double) * done);
        qsort(sorted, done, sizeof(double), compare_doubles);
        median = done % 2 ? sorted[done / 2] : 0.5 * (sorted[done / 2 - 1] + sorted[done / 2]);
        lo = sorted[0];
        hi = sorted[done - 1];
        free(sorted);
    }
    int ok = error[0] == '\0';
    if (!s.quiet) {
        if (ok)
            printf("train_bench: %s, backend %s (requested %s), %u threads, batch %u: %.2f ms/step median "
                   "[%.2f-%.2f] over %u steps, %.2f images/s; loss %.4f -> %.4f\n",
                   s.variant, backend, s.backend, s.threads, s.batch, median, lo, hi, done,
                   median > 0 ? s.batch * 1e3 / median : 0.0, first_loss, loss);
        else
            fprintf(stderr, "train_bench: %s\n", error);
    }
    if (s.json_path != NULL) {
        FILE *f = strcmp(s.json_path, "-") ? fopen(s.json_path, "w") : stdout;
        if (f == NULL) {
            perror(s.json_path);
            return 1;
        }
        fprintf(f, "{\"benchmark\":\"train_bench\",\"mode\":\"train\",\"library_version\":");
        json_string(f, alexnet_version_string());
        fprintf(f, ",\"ok\":%s,\"error\":", ok ? "true" : "false");
        json_string(f, error);
        fputs(",\"variant\":", f);
        json_string(f, s.variant);
        fputs(",\"backend_request\":", f);
        json_string(f, s.backend);
        fputs(",\"backend\":", f);
        json_string(f, backend);
        fputs(",\"backend_description\":", f);
        json_string(f, description);
        fprintf(f, ",\"threads\":%u,\"batch\":%u,\"input\":[%u,%u,%u],\"parameters\":%llu", s.threads, s.batch,
                model ? config.input_channels : 0, model ? config.input_height : 0, model ? config.input_width : 0,
                model ? (unsigned long long)alexnet_model_parameter_count(model) : 0ull);
        fprintf(f, ",\"learning_rate\":%g,\"momentum\":0.9,\"weight_decay\":0.0005,\"dropout\":%g", s.lr,
                model ? config.dropout_rate : 0.0);
        fprintf(f, ",\"model_create_ms\":%.3f,\"trainer_create_ms\":%.3f,\"warmup\":%u", create_ms, trainer_ms,
                s.warmup);
        fprintf(f, ",\"time_ms\":{\"n\":%u,\"median\":%.4f,\"min\":%.4f,\"max\":%.4f},\"runs_ms\":[", done, median, lo,
                hi);
        for (unsigned i = 0; i < done; i++)
            fprintf(f, "%s%.4f", i ? "," : "", runs[i]);
        fprintf(f, "],\"throughput_images_per_s\":{\"median\":%.4f},\"cpu_per_wall\":%.4f",
                median > 0 ? s.batch * 1e3 / median : 0.0, wall_ms > 0 ? cpu_s / (wall_ms * 1e-3) : 0.0);
        fprintf(f, ",\"train\":{\"first_loss\":%.6g,\"last_loss\":%.6g}}\n", isfinite(first_loss) ? first_loss : -1.0,
                isfinite(loss) ? loss : -1.0);
        if (f != stdout)
            fclose(f);
    }
    free(runs);
    free(labels);
    free(input);
    alexnet_trainer_destroy(trainer);
    alexnet_model_destroy(model);
    return ok ? 0 : 1;
}
