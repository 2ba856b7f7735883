/* bench_infer: model/context creation cost, batch-1 latency and batch-N throughput of libalexnet.
 *
 *   bench_infer [--variant one-tower|paper|torchvision|all] [--backend NAME] [--batch N] [--iterations N]
 *               [--warmup N] [--seed S] [--json FILE|-]
 *
 * Every option may be repeated to add variants; --variant defaults to all three. Times use CLOCK_MONOTONIC;
 * peak RSS comes from getrusage() and is the process's high-water mark so far (it only grows across rows).
 * The defaults (3 iterations, batch 2) stay short on the reference backend.
 */
#ifndef _GNU_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <alexnet/alexnet.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct variant_name {
    const char *name;
    alexnet_variant variant;
} variant_name;

static const variant_name k_variants[] = {
    {"one-tower", ALEXNET_VARIANT_ONE_TOWER},
    {"paper", ALEXNET_VARIANT_PAPER_2012},
    {"torchvision", ALEXNET_VARIANT_TORCHVISION},
};
#define VARIANT_COUNT (sizeof k_variants / sizeof k_variants[0])

typedef struct result {
    const char *variant;
    char backend[64];
    uint64_t parameters;
    uint32_t height, width;
    double model_create_ms;
    double context_create_ms;
    size_t workspace_bytes_batch1;
    size_t workspace_bytes_batchn;
    double latency_median_ms, latency_min_ms, latency_max_ms;
    double batch_median_ms;
    double throughput_images_per_s;
    long peak_rss_kib;
    int ok;
    char error[256];
} result;

typedef struct settings {
    int variants[VARIANT_COUNT];
    int any_variant;
    const char *backend;
    unsigned batch;
    unsigned iterations;
    unsigned warmup;
    uint64_t seed;
    const char *json_path;
} settings;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static long peak_rss_kib(void) {
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0) return -1;
    return usage.ru_maxrss; /* KiB on Linux */
}

static int compare_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double *v, unsigned n) {
    qsort(v, n, sizeof *v, compare_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void usage(FILE *out) {
    fprintf(out,
            "usage: bench_infer [--variant one-tower|paper|torchvision|all]... [--backend NAME]\n"
            "                   [--batch N] [--iterations N] [--warmup N] [--seed S] [--json FILE|-]\n"
            "defaults: all variants, backend auto, batch 2, 3 iterations, 1 warm-up run, seed 1\n");
}

static int parse_unsigned(const char *text, unsigned min, unsigned *out) {
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || end == text || *end || v < min || v > 1000000ul) return 0;
    *out = (unsigned)v;
    return 1;
}

static int parse_args(int argc, char **argv, settings *s) {
    memset(s, 0, sizeof *s);
    s->backend = "auto";
    s->batch = 2;
    s->iterations = 3;
    s->warmup = 1;
    s->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!value) {
            fprintf(stderr, "bench_infer: %s needs a value (or is unknown)\n", arg);
            return 0;
        }
        i++;
        if (!strcmp(arg, "--variant")) {
            int found = 0;
            for (size_t v = 0; v < VARIANT_COUNT; v++) {
                if (!strcmp(value, "all") || !strcmp(value, k_variants[v].name)) {
                    s->variants[v] = 1;
                    found = 1;
                }
            }
            if (!found) {
                fprintf(stderr, "bench_infer: unknown variant '%s'\n", value);
                return 0;
            }
            s->any_variant = 1;
        } else if (!strcmp(arg, "--backend")) {
            s->backend = value;
        } else if (!strcmp(arg, "--batch")) {
            if (!parse_unsigned(value, 1, &s->batch)) goto bad;
        } else if (!strcmp(arg, "--iterations")) {
            if (!parse_unsigned(value, 1, &s->iterations)) goto bad;
        } else if (!strcmp(arg, "--warmup")) {
            if (!parse_unsigned(value, 0, &s->warmup)) goto bad;
        } else if (!strcmp(arg, "--seed")) {
            char *end = NULL;
            errno = 0;
            s->seed = strtoull(value, &end, 10);
            if (errno || end == value || *end) goto bad;
        } else if (!strcmp(arg, "--json")) {
            s->json_path = value;
        } else {
            fprintf(stderr, "bench_infer: unknown option %s\n", arg);
            return 0;
        }
        continue;
    bad:
        fprintf(stderr, "bench_infer: bad value '%s' for %s\n", value, arg);
        return 0;
    }
    if (!s->any_variant)
        for (size_t v = 0; v < VARIANT_COUNT; v++) s->variants[v] = 1;
    return 1;
}

static int failed_with(result *r, const char *what, alexnet_status status) {
    snprintf(r->error, sizeof r->error, "%s: %s: %s", what, alexnet_status_string(status), alexnet_last_error());
    return 0;
}

/* Deterministic input in [-2, 2). */
static void fill_input(float *x, size_t n, uint64_t seed) {
    uint64_t state = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    for (size_t i = 0; i < n; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        x[i] = (float)((double)(state >> 40) * (1.0 / 16777216.0) * 4.0 - 2.0);
    }
}

static int bench_variant(const settings *s, const variant_name *v, result *r) {
    memset(r, 0, sizeof *r);
    r->variant = v->name;
    alexnet_model *model = NULL;
    alexnet_context *context = NULL;
    float *input = NULL, *probabilities = NULL;
    double *times = NULL;
    int ok = 0;
    alexnet_status status;

    alexnet_model_options model_options;
    alexnet_model_options_init(&model_options);
    model_options.variant = v->variant;
    double t0 = now_ms();
    status = alexnet_model_create(&model_options, s->seed, &model);
    r->model_create_ms = now_ms() - t0;
    if (status != ALEXNET_OK) return failed_with(r, "alexnet_model_create", status);
    r->parameters = alexnet_model_parameter_count(model);
    const uint32_t classes = alexnet_model_num_classes(model);

    alexnet_config config;
    if ((status = alexnet_model_get_config(model, &config)) != ALEXNET_OK) {
        failed_with(r, "alexnet_model_get_config", status);
        goto done;
    }

    alexnet_context_options context_options;
    alexnet_context_options_init(&context_options);
    context_options.backend = s->backend;
    context_options.batch = 1;
    t0 = now_ms();
    status = alexnet_context_create(model, &context_options, &context);
    r->context_create_ms = now_ms() - t0;
    if (status != ALEXNET_OK) {
        failed_with(r, "alexnet_context_create", status);
        goto done;
    }
    snprintf(r->backend, sizeof r->backend, "%s", alexnet_context_backend_name(context));
    r->workspace_bytes_batch1 = alexnet_context_workspace_bytes(context);
    size_t batch_now = 0;
    if ((status = alexnet_context_get_shape(context, &batch_now, &r->height, &r->width)) != ALEXNET_OK) {
        failed_with(r, "alexnet_context_get_shape", status);
        goto done;
    }

    const size_t per_image = (size_t)config.input_channels * r->height * r->width;
    const unsigned runs = s->iterations;
    input = malloc(sizeof(float) * per_image * s->batch);
    probabilities = malloc(sizeof(float) * classes * s->batch);
    times = malloc(sizeof(double) * runs);
    if (!input || !probabilities || !times) {
        snprintf(r->error, sizeof r->error, "out of memory");
        goto done;
    }
    fill_input(input, per_image * s->batch, s->seed);

    /* batch 1 latency */
    for (unsigned i = 0; i < s->warmup; i++) {
        if ((status = alexnet_infer(context, input, 1, NULL, probabilities)) != ALEXNET_OK) {
            failed_with(r, "alexnet_infer (warm-up)", status);
            goto done;
        }
    }
    for (unsigned i = 0; i < runs; i++) {
        t0 = now_ms();
        status = alexnet_infer(context, input, 1, NULL, probabilities);
        times[i] = now_ms() - t0;
        if (status != ALEXNET_OK) {
            failed_with(r, "alexnet_infer", status);
            goto done;
        }
    }
    r->latency_min_ms = r->latency_max_ms = times[0];
    for (unsigned i = 1; i < runs; i++) {
        if (times[i] < r->latency_min_ms) r->latency_min_ms = times[i];
        if (times[i] > r->latency_max_ms) r->latency_max_ms = times[i];
    }
    r->latency_median_ms = median_of(times, runs);

    /* batch N throughput */
    if ((status = alexnet_context_reshape(context, s->batch, r->height, r->width)) != ALEXNET_OK) {
        failed_with(r, "alexnet_context_reshape", status);
        goto done;
    }
    r->workspace_bytes_batchn = alexnet_context_workspace_bytes(context);
    for (unsigned i = 0; i < (s->warmup ? 1u : 0u); i++) {
        if ((status = alexnet_infer(context, input, s->batch, NULL, probabilities)) != ALEXNET_OK) {
            failed_with(r, "alexnet_infer (batch warm-up)", status);
            goto done;
        }
    }
    for (unsigned i = 0; i < runs; i++) {
        t0 = now_ms();
        status = alexnet_infer(context, input, s->batch, NULL, probabilities);
        times[i] = now_ms() - t0;
        if (status != ALEXNET_OK) {
            failed_with(r, "alexnet_infer (batch)", status);
            goto done;
        }
    }
    r->batch_median_ms = median_of(times, runs);
    r->throughput_images_per_s = r->batch_median_ms > 0 ? s->batch * 1e3 / r->batch_median_ms : 0.0;
    ok = 1;

done:
    r->peak_rss_kib = peak_rss_kib();
    r->ok = ok;
    free(times);
    free(probabilities);
    free(input);
    alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    return ok;
}

static void print_table(const settings *s, const result *rows, size_t n) {
    printf("libalexnet %s  backend request \"%s\"  batch-1 runs %u (+%u warm-up)  batch %u\n\n",
           alexnet_version_string(), s->backend, s->iterations, s->warmup, s->batch);
    printf("%-12s %-10s %11s %9s %9s %9s %9s %9s %9s %9s %9s %10s %9s\n", "variant", "backend", "parameters",
           "model ms", "ctx ms", "ws1 MiB", "wsN MiB", "b1 med", "b1 min", "b1 max", "bN med", "img/s", "RSS MiB");
    for (size_t i = 0; i < n; i++) {
        const result *r = &rows[i];
        if (!r->ok) {
            printf("%-12s FAILED: %s\n", r->variant, r->error);
            continue;
        }
        printf("%-12s %-10s %11" PRIu64 " %9.1f %9.2f %9.1f %9.1f %9.2f %9.2f %9.2f %9.2f %10.2f %9.1f\n", r->variant,
               r->backend, r->parameters, r->model_create_ms, r->context_create_ms,
               (double)r->workspace_bytes_batch1 / 1048576.0, (double)r->workspace_bytes_batchn / 1048576.0,
               r->latency_median_ms, r->latency_min_ms, r->latency_max_ms, r->batch_median_ms,
               r->throughput_images_per_s, (double)r->peak_rss_kib / 1024.0);
    }
    printf("\n(times in ms; ws = context workspace at batch 1 / batch %u; RSS = peak so far)\n", s->batch);
}

static void json_string(FILE *f, const char *text) {
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static int write_json(const settings *s, const result *rows, size_t n) {
    FILE *f = strcmp(s->json_path, "-") ? fopen(s->json_path, "w") : stdout;
    if (!f) {
        fprintf(stderr, "bench_infer: cannot write %s: %s\n", s->json_path, strerror(errno));
        return 0;
    }
    fprintf(f, "{\"benchmark\":\"bench_infer\",\"library_version\":");
    json_string(f, alexnet_version_string());
    fprintf(f, ",\"backend_request\":");
    json_string(f, s->backend);
    fprintf(f, ",\"batch\":%u,\"iterations\":%u,\"warmup\":%u,\"seed\":%" PRIu64 ",\"results\":[", s->batch,
            s->iterations, s->warmup, s->seed);
    for (size_t i = 0; i < n; i++) {
        const result *r = &rows[i];
        fprintf(f, "%s{\"variant\":", i ? "," : "");
        json_string(f, r->variant);
        fprintf(f, ",\"ok\":%s", r->ok ? "true" : "false");
        if (!r->ok) {
            fprintf(f, ",\"error\":");
            json_string(f, r->error);
        } else {
            fprintf(f, ",\"backend\":");
            json_string(f, r->backend);
            fprintf(f,
                    ",\"parameters\":%" PRIu64 ",\"input\":[%u,%u],\"model_create_ms\":%.3f,"
                    "\"context_create_ms\":%.3f,\"workspace_bytes_batch1\":%zu,\"workspace_bytes_batch\":%zu,"
                    "\"latency_ms\":{\"median\":%.3f,\"min\":%.3f,\"max\":%.3f},\"batch_median_ms\":%.3f,"
                    "\"throughput_images_per_s\":%.3f",
                    r->parameters, r->height, r->width, r->model_create_ms, r->context_create_ms,
                    r->workspace_bytes_batch1, r->workspace_bytes_batchn, r->latency_median_ms, r->latency_min_ms,
                    r->latency_max_ms, r->batch_median_ms, r->throughput_images_per_s);
        }
        fprintf(f, ",\"peak_rss_kib\":%ld}", r->peak_rss_kib);
    }
    fprintf(f, "]}\n");
    if (f != stdout && fclose(f) != 0) {
        fprintf(stderr, "bench_infer: cannot write %s\n", s->json_path);
        return 0;
    }
    return 1;
}

int main(int argc, char **argv) {
    settings s;
    if (!parse_args(argc, argv, &s)) {
        usage(stderr);
        return 2;
    }
    result rows[VARIANT_COUNT];
    size_t n = 0;
    int all_ok = 1;
    for (size_t v = 0; v < VARIANT_COUNT; v++) {
        if (!s.variants[v]) continue;
        fprintf(stderr, "bench_infer: %s...\n", k_variants[v].name);
        all_ok &= bench_variant(&s, &k_variants[v], &rows[n]);
        n++;
    }
    print_table(&s, rows, n);
    if (s.json_path && !write_json(&s, rows, n)) return 1;
    return all_ok ? 0 : 1;
}
