/* alexnet_bench: one benchmark configuration of libalexnet per process (bench/compare.py loops).
 *
 *   alexnet_bench [--variant one-tower|paper|torchvision] [--backend NAME] [--isa auto|scalar|avx2|avx512]
 *                 [--threads N] [--batch N] [--warmup N] [--iterations N] [--min-iterations N]
 *                 [--max-seconds S] [--profile-iterations N] [--load-repeats N] [--cold-load]
 *                 [--weights FILE] [--save-weights FILE] [--no-peak] [--peak-only] [--no-bandwidth]
 *                 [--peak-trials N] [--peak-gflops G] [--bandwidth-gbps B] [--seed S] [--json FILE|-] [--quiet]
 *                 [--train]
 *
 * What one run measures, in this order:
 *  1. the machine's FMA peak (AVX2+FMA, and AVX-512 where the CPU has it) on 1 thread and on --threads
 *     (fma_peak.c; many short trials, the best counts);
 *  2. model load: a child process creates the seeded model and saves it to a temporary safetensors file
 *     (timed: that is the seeded creation), then this process times alexnet_model_load of that file
 *     (--load-repeats times; the file is in the page cache, so this is a warm load; --cold-load adds one
 *     load after dropping the file's pages);
 *  3. --warmup untimed inferences, then timed inferences of --batch images: at least --min-iterations, at
 *     most --iterations, stopping early once --max-seconds have passed; CPU time and context switches
 *     during them;
 *  4. peak RSS (getrusage ru_maxrss and /proc/self/status VmHWM) at that point: model + context +
 *     inference at this batch. That is why one process runs one configuration: a batch-64 run must not
 *     pollute the batch-1 figure, and the seeded model lives in the child, not here;
 *  5. per-layer times from a second context created with profile_layers (--profile-iterations runs, median
 *     per layer), with GFLOP/s (FLOPs of direct convolution, 2 per multiply-add) and the fraction of the
 *     measured peak at this thread count;
 *  6. the memory read bandwidth (membw.c), last, so that its buffer is not in the RSS figures.
 * --train replaces 3 and 5 by training steps: a trainer on --backend with batch --batch, then timed
 * alexnet_trainer_step calls (forward, backward and the SGD update of every layer) on one fixed batch of
 * inputs and labels; time_ms is then per step and throughput_images_per_s counts the step's images.
 * --isa sets ALEXNET_CPU_ISA before the first library call ("auto" unsets it). --threads 0 means one thread
 * per online CPU (the library's meaning). The table goes to stdout, the JSON object to --json.
 */
#include <alexnet/alexnet.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fma_peak.h"
#include "membw.h"

#define MAX_RUNS 10000
#define MAX_LAYERS 64
#define MAX_PROFILE_RUNS 1000

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

typedef struct settings {
    const variant_name *variant;
    const char *backend;
    const char *isa; /* NULL: leave the environment as it is */
    unsigned threads;
    unsigned batch;
    unsigned warmup;
    unsigned iterations;
    unsigned min_iterations;
    double max_seconds;
    double peak_floor_gflops;    /* --peak-gflops: the peak is at least this */
    double bandwidth_floor_gbps; /* --bandwidth-gbps: the bandwidth is at least this */
    unsigned profile_iterations;
    unsigned load_repeats;
    unsigned peak_trials;
    int no_peak;
    int no_bandwidth;
    int peak_only;
    int quiet;
    int cold_load;
    int train; /* --train: time trainer steps instead of inferences */
    uint64_t seed;
    const char *weights_path;
    const char *save_weights_path;
    const char *json_path;
} settings;

typedef struct stats {
    unsigned n;
    double median, min, max, mean;
} stats;

typedef struct layer_row {
    char name[16];
    alexnet_layer_type type;
    double seconds; /* median over the profiled runs */
    double flops;   /* for the whole batch */
    uint64_t parameters; /* weights + biases read by this layer (once per batch) */
} layer_row;

typedef struct report {
    /* machine */
    char cpu_model[128];
    long online_cpus;
    unsigned threads_resolved;
    char isa_env[32];
    int isa_env_set;
    bench_peak peak_1t[BENCH_ISA_COUNT], peak_nt[BENCH_ISA_COUNT];
    int peak_valid[BENCH_ISA_COUNT];
    int best_isa; /* -1: none measured */
    double peak_floor_gflops, bandwidth_floor_gbps; /* copies of the settings */
    bench_bandwidth bw_1t, bw_nt;
    int bw_valid;
    /* model */
    uint64_t parameters;
    uint64_t weight_bytes;
    uint32_t channels, height, width;
    double seeded_create_ms, save_ms;
    uint64_t file_bytes;
    int load_measured;
    stats load_ms;
    double cold_load_ms; /* < 0: not measured */
    int cold_load_evicted; /* posix_fadvise(DONTNEED) succeeded */
    /* context and inference */
    char backend[64];
    char backend_description[256];
    char warning[512]; /* e.g. a forced ISA made the SIMD backend unavailable, so "auto" fell back */
    double context_create_ms;
    size_t workspace_bytes;
    unsigned warmup_done;
    double runs_ms[MAX_RUNS];
    stats infer_ms;
    double flops_per_image;
    /* during the timed runs: CPU seconds (all threads) per wall second, and context switches; a shared
     * machine shows itself here (involuntary switches = preempted) */
    double cpu_per_wall;
    long voluntary_switches, involuntary_switches;
    char loadavg_start[64], loadavg_end[64];
    /* memory, KiB */
    long rss_baseline_kib, rss_after_load_kib, rss_after_context_kib, rss_after_runs_kib;
    long hwm_after_load_kib, hwm_kib, maxrss_kib;
    /* profile */
    size_t layer_count;
    unsigned profile_runs;
    layer_row layers[MAX_LAYERS];
    /* --train: the mean loss of the first and the last step (repeated steps on one batch should lower it) */
    float first_loss, last_loss;
    /* failure */
    int ok;
    char error[512];
} report;

static report g_report; /* large (the run times): not on the stack */

/* ---- small utilities ------------------------------------------------------------------------------------ */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int compare_doubles(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static stats stats_of(const double *values, unsigned n)
{
    stats s;
    memset(&s, 0, sizeof s);
    if (n == 0)
        return s;
    double *v = malloc(sizeof *v * n);
    if (v == NULL)
        return s;
    memcpy(v, values, sizeof *v * n);
    qsort(v, n, sizeof *v, compare_doubles);
    s.n = n;
    s.min = v[0];
    s.max = v[n - 1];
    s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    double sum = 0.0;
    for (unsigned i = 0; i < n; i++)
        sum += v[i];
    s.mean = sum / n;
    free(v);
    return s;
}

/* A "Key:   1234 kB" line of /proc/self/status, in KiB; -1 where there is none (not Linux). */
static long proc_status_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long value = -1;
    size_t key_length = strlen(key);
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, key, key_length) == 0 && line[key_length] == ':') {
            value = strtol(line + key_length + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return value;
}

static long maxrss_kib(void)
{
    struct rusage usage;
    if (getrusage(RUSAGE_SELF, &usage) != 0)
        return -1;
    return usage.ru_maxrss; /* KiB on Linux */
}

static void read_loadavg(char *out, size_t size)
{
    out[0] = '\0';
    FILE *f = fopen("/proc/loadavg", "r");
    if (f == NULL)
        return;
    double a = 0, b = 0, c = 0;
    if (fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
        snprintf(out, size, "%.2f %.2f %.2f", a, b, c);
    fclose(f);
}

static double rusage_cpu_seconds(const struct rusage *u)
{
    return (double)u->ru_utime.tv_sec + 1e-6 * (double)u->ru_utime.tv_usec + (double)u->ru_stime.tv_sec +
           1e-6 * (double)u->ru_stime.tv_usec;
}

static void read_cpu_model(char *out, size_t size)
{
    snprintf(out, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f == NULL)
        return;
    char line[512];
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "model name", 10) == 0) {
            const char *colon = strchr(line, ':');
            if (colon != NULL) {
                colon++;
                while (*colon == ' ' || *colon == '\t')
                    colon++;
                snprintf(out, size, "%s", colon);
                size_t n = strlen(out);
                while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
                    out[--n] = '\0';
            }
            break;
        }
    }
    fclose(f);
}

/* Deterministic input in [-2, 2). */
static void fill_input(float *x, size_t n, uint64_t seed)
{
    uint64_t state = seed * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull;
    for (size_t i = 0; i < n; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        x[i] = (float)((double)(state >> 40) * (1.0 / 16777216.0) * 4.0 - 2.0);
    }
}

static int fail(report *r, const char *what, alexnet_status status)
{
    snprintf(r->error, sizeof r->error, "%s: %s: %s", what, alexnet_status_string(status), alexnet_last_error());
    return 0;
}

/* ---- options -------------------------------------------------------------------------------------------- */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: alexnet_bench [OPTIONS]   (one configuration per process)\n"
            "  --variant one-tower|paper|torchvision   network (default torchvision)\n"
            "  --backend NAME          auto, cpu, reference, cpu-simd, ... (default auto)\n"
            "  --isa auto|scalar|avx2|avx512   sets ALEXNET_CPU_ISA before the library starts\n"
            "  --threads N             context num_threads; 0 = one per online CPU (default 0)\n"
            "  --batch N               images per inference (default 1)\n"
            "  --warmup N              untimed inferences first (default 2)\n"
            "  --iterations N          timed inferences at most (default 20)\n"
            "  --min-iterations N      timed inferences at least (default 3)\n"
            "  --max-seconds S         stop timing after S seconds once min-iterations ran (default 20)\n"
            "  --profile-iterations N  profiled inferences for per-layer times; 0 = none (default 3)\n"
            "  --load-repeats N        timed model loads; 0 = skip the load (seeded model) (default 3)\n"
            "  --weights FILE          load this safetensors file instead of a seeded model's\n"
            "  --cold-load             also time one load after evicting the file from the page cache\n"
            "  --save-weights FILE     only create the seeded model, save it to FILE and exit\n"
            "  --peak-trials N         trials per FMA peak measurement (default 15)\n"
            "  --peak-gflops G         fractions use at least G GFLOP/s as the peak (e.g. from a quiet --peak-only\n"
            "                          run: a busy machine makes this run's own probe read low)\n"
            "  --bandwidth-gbps B      likewise, the memory bandwidth is at least B GB/s\n"
            "  --no-peak | --peak-only skip the machine probes (FMA peak, memory bandwidth) | run only them\n"
            "  --no-bandwidth          skip the memory bandwidth probe (it runs last, after the RSS reading)\n"
            "  --seed S                weight seed (default 1)\n"
            "  --json FILE|-           also write the JSON object there\n"
            "  --quiet                 no table on stdout\n"
            "  --train                 time training steps (alexnet_trainer_step: forward, backward, SGD update)\n"
            "                          at --batch instead of inferences; per-layer profile and peak fractions off\n");
}

static int parse_unsigned(const char *text, unsigned min, unsigned max, unsigned *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || v < min || v > max)
        return 0;
    *out = (unsigned)v;
    return 1;
}

static int parse_args(int argc, char **argv, settings *s)
{
    memset(s, 0, sizeof *s);
    s->variant = &k_variants[2];
    s->backend = "auto";
    s->threads = 0;
    s->batch = 1;
    s->warmup = 2;
    s->iterations = 20;
    s->min_iterations = 3;
    s->max_seconds = 20.0;
    s->profile_iterations = 3;
    s->load_repeats = 3;
    s->peak_trials = 15;
    s->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!strcmp(arg, "--no-peak")) {
            s->no_peak = 1;
            continue;
        }
        if (!strcmp(arg, "--no-bandwidth")) {
            s->no_bandwidth = 1;
            continue;
        }
        if (!strcmp(arg, "--peak-only")) {
            s->peak_only = 1;
            continue;
        }
        if (!strcmp(arg, "--quiet")) {
            s->quiet = 1;
            continue;
        }
        if (!strcmp(arg, "--cold-load")) {
            s->cold_load = 1;
            continue;
        }
        if (!strcmp(arg, "--train")) {
            s->train = 1;
            continue;
        }
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (value == NULL) {
            fprintf(stderr, "alexnet_bench: %s needs a value (or is unknown)\n", arg);
            return 0;
        }
        i++;
        if (!strcmp(arg, "--variant")) {
            s->variant = NULL;
            for (size_t v = 0; v < VARIANT_COUNT; v++)
                if (!strcmp(value, k_variants[v].name))
                    s->variant = &k_variants[v];
            if (s->variant == NULL) {
                fprintf(stderr, "alexnet_bench: unknown variant '%s'\n", value);
                return 0;
            }
        } else if (!strcmp(arg, "--backend")) {
            s->backend = value;
        } else if (!strcmp(arg, "--isa")) {
            if (strcmp(value, "auto") && strcmp(value, "scalar") && strcmp(value, "avx2") &&
                strcmp(value, "avx512") && strcmp(value, "neon")) {
                fprintf(stderr, "alexnet_bench: unknown ISA '%s'\n", value);
                return 0;
            }
            s->isa = value;
        } else if (!strcmp(arg, "--threads")) {
            if (!parse_unsigned(value, 0, 1024, &s->threads))
                goto bad;
        } else if (!strcmp(arg, "--batch")) {
            if (!parse_unsigned(value, 1, 4096, &s->batch))
                goto bad;
        } else if (!strcmp(arg, "--warmup")) {
            if (!parse_unsigned(value, 0, 1000, &s->warmup))
                goto bad;
        } else if (!strcmp(arg, "--iterations")) {
            if (!parse_unsigned(value, 1, MAX_RUNS, &s->iterations))
                goto bad;
        } else if (!strcmp(arg, "--min-iterations")) {
            if (!parse_unsigned(value, 1, MAX_RUNS, &s->min_iterations))
                goto bad;
        } else if (!strcmp(arg, "--max-seconds")) {
            char *end = NULL;
            errno = 0;
            s->max_seconds = strtod(value, &end);
            if (errno || end == value || *end || !(s->max_seconds >= 0.0))
                goto bad;
        } else if (!strcmp(arg, "--peak-gflops") || !strcmp(arg, "--bandwidth-gbps")) {
            char *end = NULL;
            errno = 0;
            double v = strtod(value, &end);
            if (errno || end == value || *end || !(v >= 0.0))
                goto bad;
            if (!strcmp(arg, "--peak-gflops"))
                s->peak_floor_gflops = v;
            else
                s->bandwidth_floor_gbps = v;
        } else if (!strcmp(arg, "--profile-iterations")) {
            if (!parse_unsigned(value, 0, MAX_PROFILE_RUNS, &s->profile_iterations))
                goto bad;
        } else if (!strcmp(arg, "--load-repeats")) {
            if (!parse_unsigned(value, 0, 100, &s->load_repeats))
                goto bad;
        } else if (!strcmp(arg, "--peak-trials")) {
            if (!parse_unsigned(value, 1, 64, &s->peak_trials))
                goto bad;
        } else if (!strcmp(arg, "--weights")) {
            s->weights_path = value;
        } else if (!strcmp(arg, "--save-weights")) {
            s->save_weights_path = value;
        } else if (!strcmp(arg, "--seed")) {
            char *end = NULL;
            errno = 0;
            s->seed = strtoull(value, &end, 10);
            if (errno || end == value || *end)
                goto bad;
        } else if (!strcmp(arg, "--json")) {
            s->json_path = value;
        } else {
            fprintf(stderr, "alexnet_bench: unknown option %s\n", arg);
            return 0;
        }
        continue;
    bad:
        fprintf(stderr, "alexnet_bench: bad value '%s' for %s\n", value, arg);
        return 0;
    }
    if (s->min_iterations > s->iterations)
        s->min_iterations = s->iterations;
    return 1;
}

/* ---- FLOPs from the network summary (direct convolution, 2 per multiply-add) ---------------------------- */

static double flops_per_image(const alexnet_config *config, uint32_t height, uint32_t width)
{
    alexnet_layer_info rows[MAX_LAYERS];
    size_t count = 0;
    for (size_t i = 0; i < MAX_LAYERS; i++)
        rows[i].struct_size = sizeof rows[i];
    if (alexnet_config_summary(config, height, width, rows, MAX_LAYERS, &count) != ALEXNET_OK || count > MAX_LAYERS)
        return 0.0;
    double total = 0.0;
    for (size_t i = 1; i < count; i++) {
        const alexnet_layer_info *in = &rows[i - 1], *out = &rows[i];
        double outputs = (double)out->channels * out->height * out->width;
        if (out->type == ALEXNET_LAYER_CONV) {
            double groups = out->groups ? out->groups : 1;
            total += 2.0 * outputs * ((double)in->channels / groups) * out->kernel_size * out->kernel_size;
        } else if (out->type == ALEXNET_LAYER_FC) {
            total += 2.0 * outputs * ((double)in->channels * in->height * in->width);
        }
    }
    return total;
}

/* ---- the FMA peak --------------------------------------------------------------------------------------- */

static void measure_peak(const settings *s, report *r)
{
    r->best_isa = -1;
    for (int isa = 0; isa < BENCH_ISA_COUNT; isa++) {
        if (!bench_isa_usable((bench_isa)isa))
            continue;
        /* Short trials, many of them: on a time-sliced machine the best one is the one nobody interrupted. */
        if (!bench_peak_measure((bench_isa)isa, 1, s->peak_trials, 0.01, &r->peak_1t[isa]))
            continue;
        if (r->threads_resolved > 1) {
            if (!bench_peak_measure((bench_isa)isa, r->threads_resolved, s->peak_trials, 0.01, &r->peak_nt[isa]))
                continue;
        } else {
            r->peak_nt[isa] = r->peak_1t[isa];
        }
        r->peak_valid[isa] = 1;
        if (r->best_isa < 0 || r->peak_1t[isa].best_gflops > r->peak_1t[r->best_isa].best_gflops)
            r->best_isa = isa;
    }
}

/* The peak the fractions are measured against (GFLOP/s, 0 if none): for the best ISA, the larger of the
 * best N-thread trial and N x the best 1-thread trial (N capped at the online CPUs). On a shared machine
 * the vCPUs are sometimes time-sliced onto one core, and then an N-thread trial reads low; a peak that
 * reads low would flatter every fraction. */
static double peak_gflops(const report *r)
{
    if (r->best_isa < 0)
        return r->peak_floor_gflops;
    unsigned n = r->threads_resolved;
    if (r->online_cpus > 0 && n > (unsigned)r->online_cpus)
        n = (unsigned)r->online_cpus;
    double scaled = n * r->peak_1t[r->best_isa].best_gflops;
    double measured = r->peak_nt[r->best_isa].best_gflops;
    double peak = measured > scaled ? measured : scaled;
    return peak > r->peak_floor_gflops ? peak : r->peak_floor_gflops;
}

static void measure_bandwidth(report *r)
{
    const size_t bytes = (size_t)256 << 20; /* 8x a 32 MiB L3 */
    if (!bench_bandwidth_measure(bytes, 1, 5, &r->bw_1t))
        return;
    if (r->threads_resolved > 1) {
        if (!bench_bandwidth_measure(bytes, r->threads_resolved, 5, &r->bw_nt))
            return;
    } else {
        r->bw_nt = r->bw_1t;
    }
    r->bw_valid = 1;
}

static double bandwidth_gbps(const report *r)
{
    double bw = 0.0;
    if (r->bw_valid)
        bw = r->bw_nt.best_gbps > r->bw_1t.best_gbps ? r->bw_nt.best_gbps : r->bw_1t.best_gbps;
    return bw > r->bandwidth_floor_gbps ? bw : r->bandwidth_floor_gbps;
}

/* ---- the seeded model, created and saved in a child process --------------------------------------------- */

typedef struct child_result {
    int ok;
    double create_ms, save_ms;
    uint64_t parameters;
    char error[400];
} child_result;

static void create_and_save(const settings *s, const char *path, child_result *out)
{
    memset(out, 0, sizeof *out);
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.variant = s->variant->variant;
    alexnet_model *model = NULL;
    double t0 = now_ms();
    alexnet_status status = alexnet_model_create(&options, s->seed, &model);
    out->create_ms = now_ms() - t0;
    if (status != ALEXNET_OK) {
        snprintf(out->error, sizeof out->error, "alexnet_model_create: %s: %s", alexnet_status_string(status),
                 alexnet_last_error());
        return;
    }
    out->parameters = alexnet_model_parameter_count(model);
    t0 = now_ms();
    status = alexnet_model_save(model, path);
    out->save_ms = now_ms() - t0;
    if (status != ALEXNET_OK)
        snprintf(out->error, sizeof out->error, "alexnet_model_save: %s: %s", alexnet_status_string(status),
                 alexnet_last_error());
    else
        out->ok = 1;
    alexnet_model_destroy(model);
}

static int create_in_child(const settings *s, const char *path, child_result *out)
{
    int fds[2];
    memset(out, 0, sizeof *out);
    if (pipe(fds) != 0) {
        snprintf(out->error, sizeof out->error, "pipe: %s", strerror(errno));
        return 0;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(out->error, sizeof out->error, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return 0;
    }
    if (pid == 0) {
        close(fds[0]);
        child_result result;
        create_and_save(s, path, &result);
        const char *p = (const char *)&result;
        size_t left = sizeof result;
        while (left > 0) {
            ssize_t n = write(fds[1], p, left);
            if (n <= 0)
                break;
            p += n;
            left -= (size_t)n;
        }
        close(fds[1]);
        _exit(0);
    }
    close(fds[1]);
    char *p = (char *)out;
    size_t got = 0;
    while (got < sizeof *out) {
        ssize_t n = read(fds[0], p + got, sizeof *out - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fds[0]);
    int wstatus = 0;
    while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    if (got != sizeof *out) {
        memset(out, 0, sizeof *out);
        snprintf(out->error, sizeof out->error, "the model-creating child died (wait status %d)", wstatus);
        return 0;
    }
    return out->ok;
}

/* ---- the benchmark -------------------------------------------------------------------------------------- */

static int run_inference(alexnet_context *context, const float *input, unsigned batch, float *probabilities,
                         report *r, const char *what)
{
    alexnet_status status = alexnet_infer(context, input, batch, NULL, probabilities);
    return status == ALEXNET_OK ? 1 : fail(r, what, status);
}

/* The backend's description as alexnet_backend_get_info gives it (empty when there is no such backend). */
static void describe_backend(const char *name, char *out, size_t size)
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

/* --train: steps of a trainer on one fixed batch. The same inputs every step keep the timing free of data
 * loading and augmentation (alexnet_trainer_train's work), so this is the backend's forward + backward +
 * update and nothing else. */
static int bench_train(const settings *s, report *r, const alexnet_model *model, const alexnet_config *config,
                       uint32_t classes)
{
    alexnet_trainer_options options;
    alexnet_trainer_options_init(&options);
    options.backend = s->backend;
    options.batch = s->batch;
    options.num_threads = s->threads;
    options.seed = s->seed;
    /* Small enough that repeating one batch never drives the loss to a non-finite value (the step would
     * then fail), whatever the variant's initialisation. The rate does not change the work done. */
    options.learning_rate = 0.001f;
    alexnet_trainer *trainer = NULL;
    float *input = NULL;
    uint32_t *labels = NULL;
    int ok = 0;
    double t0 = now_ms();
    alexnet_status status = alexnet_trainer_create(model, &options, &trainer);
    r->context_create_ms = now_ms() - t0;
    if (status != ALEXNET_OK)
        return fail(r, "alexnet_trainer_create", status);
    r->rss_after_context_kib = proc_status_kib("VmRSS");
    /* The public API does not say which backend "auto" gave a trainer: report what was asked for. */
    snprintf(r->backend, sizeof r->backend, "%s", s->backend);
    describe_backend(s->backend, r->backend_description, sizeof r->backend_description);
    r->height = config->input_height;
    r->width = config->input_width;
    r->channels = config->input_channels;
    const size_t per_image = (size_t)config->input_channels * r->height * r->width;
    input = malloc(sizeof(float) * per_image * s->batch);
    labels = malloc(sizeof(uint32_t) * s->batch);
    if (input == NULL || labels == NULL) {
        snprintf(r->error, sizeof r->error, "out of memory");
        goto done;
    }
    fill_input(input, per_image * s->batch, s->seed);
    for (unsigned i = 0; i < s->batch; i++)
        labels[i] = (uint32_t)((i * 7919u + (unsigned)s->seed) % classes);
    float loss = 0.0f;
    for (unsigned i = 0; i < s->warmup; i++) {
        if ((status = alexnet_trainer_step(trainer, input, labels, s->batch, &loss, NULL)) != ALEXNET_OK) {
            fail(r, "alexnet_trainer_step (warm-up)", status);
            goto done;
        }
        if (i == 0)
            r->first_loss = loss;
        r->warmup_done++;
    }
    unsigned runs = 0;
    struct rusage usage_before, usage_after;
    getrusage(RUSAGE_SELF, &usage_before);
    double start = now_ms();
    while (runs < s->iterations) {
        if (runs >= s->min_iterations && now_ms() - start > s->max_seconds * 1e3)
            break;
        t0 = now_ms();
        if ((status = alexnet_trainer_step(trainer, input, labels, s->batch, &loss, NULL)) != ALEXNET_OK) {
            fail(r, "alexnet_trainer_step", status);
            goto done;
        }
        r->runs_ms[runs++] = now_ms() - t0;
        if (s->warmup == 0 && runs == 1)
            r->first_loss = loss;
    }
    double wall_ms = now_ms() - start;
    getrusage(RUSAGE_SELF, &usage_after);
    r->last_loss = loss;
    r->cpu_per_wall = wall_ms > 0 ? (rusage_cpu_seconds(&usage_after) - rusage_cpu_seconds(&usage_before)) /
                                        (wall_ms * 1e-3)
                                  : 0.0;
    r->voluntary_switches = usage_after.ru_nvcsw - usage_before.ru_nvcsw;
    r->involuntary_switches = usage_after.ru_nivcsw - usage_before.ru_nivcsw;
    r->infer_ms = stats_of(r->runs_ms, runs);
    r->rss_after_runs_kib = proc_status_kib("VmRSS");
    r->hwm_kib = proc_status_kib("VmHWM");
    r->maxrss_kib = maxrss_kib();
    ok = 1;
done:
    free(labels);
    free(input);
    alexnet_trainer_destroy(trainer);
    return ok;
}

static int bench(const settings *s, report *r)
{
    alexnet_model *model = NULL;
    alexnet_context *context = NULL;
    float *input = NULL, *probabilities = NULL;
    char temp_dir[512] = "", temp_path[600] = "";
    int ok = 0;
    alexnet_status status;

    alexnet_model_options model_options;
    alexnet_model_options_init(&model_options);
    model_options.variant = s->variant->variant;

    r->rss_baseline_kib = proc_status_kib("VmRSS");
    if (s->load_repeats == 0) {
        /* No load: the seeded model lives in this process (its creation is timed here). */
        double t0 = now_ms();
        status = alexnet_model_create(&model_options, s->seed, &model);
        r->seeded_create_ms = now_ms() - t0;
        if (status != ALEXNET_OK)
            return fail(r, "alexnet_model_create", status);
    } else {
        const char *path = s->weights_path;
        if (path == NULL) {
            const char *tmp = getenv("TMPDIR");
            snprintf(temp_dir, sizeof temp_dir, "%s/alexnet-bench-XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
            if (mkdtemp(temp_dir) == NULL) {
                snprintf(r->error, sizeof r->error, "mkdtemp %s: %s", temp_dir, strerror(errno));
                temp_dir[0] = '\0';
                goto done;
            }
            snprintf(temp_path, sizeof temp_path, "%s/model.safetensors", temp_dir);
            child_result child;
            if (!create_in_child(s, temp_path, &child)) {
                snprintf(r->error, sizeof r->error, "%s", child.error);
                goto done;
            }
            r->seeded_create_ms = child.create_ms;
            r->save_ms = child.save_ms;
            path = temp_path;
        }
        struct stat st;
        if (stat(path, &st) == 0)
            r->file_bytes = (uint64_t)st.st_size;
        if (s->cold_load) {
            /* Ask the kernel to drop the file's cached pages (the save fsynced it, so they are clean). */
#if defined(POSIX_FADV_DONTNEED)
            int fd = open(path, O_RDONLY);
            if (fd >= 0) {
                r->cold_load_evicted = fdatasync(fd) == 0 && posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0;
                close(fd);
            }
#endif
            double t0 = now_ms();
            status = alexnet_model_load(path, &model_options, &model);
            r->cold_load_ms = now_ms() - t0;
            if (status != ALEXNET_OK) {
                fail(r, "alexnet_model_load (cold)", status);
                goto done;
            }
        }
        double load_ms[100];
        for (unsigned i = 0; i < s->load_repeats; i++) {
            alexnet_model_destroy(model); /* keep one model at a time: the RSS peak is one model's */
            model = NULL;
            double t0 = now_ms();
            status = alexnet_model_load(path, &model_options, &model);
            load_ms[i] = now_ms() - t0;
            if (status != ALEXNET_OK) {
                fail(r, "alexnet_model_load", status);
                goto done;
            }
        }
        r->load_measured = 1;
        r->load_ms = stats_of(load_ms, s->load_repeats);
    }
    r->rss_after_load_kib = proc_status_kib("VmRSS");
    r->hwm_after_load_kib = proc_status_kib("VmHWM");
    r->parameters = alexnet_model_parameter_count(model);
    r->weight_bytes = r->parameters * sizeof(float);

    alexnet_config config;
    config.struct_size = sizeof config;
    if ((status = alexnet_model_get_config(model, &config)) != ALEXNET_OK) {
        fail(r, "alexnet_model_get_config", status);
        goto done;
    }
    const uint32_t classes = alexnet_model_num_classes(model);
    if (s->train) {
        ok = bench_train(s, r, model, &config, classes);
        goto done;
    }

    alexnet_context_options context_options;
    alexnet_context_options_init(&context_options);
    context_options.backend = s->backend;
    context_options.batch = s->batch;
    context_options.num_threads = s->threads;
    double t0 = now_ms();
    status = alexnet_context_create(model, &context_options, &context);
    r->context_create_ms = now_ms() - t0;
    if (status != ALEXNET_OK) {
        fail(r, "alexnet_context_create", status);
        goto done;
    }
    r->rss_after_context_kib = proc_status_kib("VmRSS");
    snprintf(r->backend, sizeof r->backend, "%s", alexnet_context_backend_name(context));
    describe_backend(r->backend, r->backend_description, sizeof r->backend_description);
    if (r->isa_env_set) {
        /* A forced ISA this CPU cannot run makes a SIMD backend unavailable, and "auto" then quietly picks
         * another one: say so, or a scalar-vs-SIMD comparison compares something else. */
        for (size_t i = 0; i < alexnet_backend_count(); i++) {
            alexnet_backend_info info;
            memset(&info, 0, sizeof info);
            info.struct_size = sizeof info;
            if (alexnet_backend_get_info(i, &info) == ALEXNET_OK && info.kind && !strcmp(info.kind, "cpu") &&
                !info.available) {
                size_t used = strlen(r->warning);
                snprintf(r->warning + used, sizeof r->warning - used, "%sbackend %s unavailable: %s",
                         used ? "; " : "", info.name ? info.name : "?", info.description ? info.description : "");
            }
        }
    }
    r->workspace_bytes = alexnet_context_workspace_bytes(context);
    size_t shape_batch = 0;
    if ((status = alexnet_context_get_shape(context, &shape_batch, &r->height, &r->width)) != ALEXNET_OK) {
        fail(r, "alexnet_context_get_shape", status);
        goto done;
    }
    r->channels = config.input_channels;
    r->flops_per_image = flops_per_image(&config, r->height, r->width);

    const size_t per_image = (size_t)config.input_channels * r->height * r->width;
    input = malloc(sizeof(float) * per_image * s->batch);
    probabilities = malloc(sizeof(float) * classes * s->batch);
    if (input == NULL || probabilities == NULL) {
        snprintf(r->error, sizeof r->error, "out of memory");
        goto done;
    }
    fill_input(input, per_image * s->batch, s->seed);

    for (unsigned i = 0; i < s->warmup; i++) {
        if (!run_inference(context, input, s->batch, probabilities, r, "alexnet_infer (warm-up)"))
            goto done;
        r->warmup_done++;
    }
    unsigned runs = 0;
    struct rusage usage_before, usage_after;
    getrusage(RUSAGE_SELF, &usage_before);
    double start = now_ms();
    while (runs < s->iterations) {
        if (runs >= s->min_iterations && now_ms() - start > s->max_seconds * 1e3)
            break;
        t0 = now_ms();
        if (!run_inference(context, input, s->batch, probabilities, r, "alexnet_infer"))
            goto done;
        r->runs_ms[runs++] = now_ms() - t0;
    }
    double wall_ms = now_ms() - start;
    getrusage(RUSAGE_SELF, &usage_after);
    r->cpu_per_wall = wall_ms > 0 ? (rusage_cpu_seconds(&usage_after) - rusage_cpu_seconds(&usage_before)) /
                                        (wall_ms * 1e-3)
                                  : 0.0;
    r->voluntary_switches = usage_after.ru_nvcsw - usage_before.ru_nvcsw;
    r->involuntary_switches = usage_after.ru_nivcsw - usage_before.ru_nivcsw;
    r->infer_ms = stats_of(r->runs_ms, runs);
    r->rss_after_runs_kib = proc_status_kib("VmRSS");
    r->hwm_kib = proc_status_kib("VmHWM");
    r->maxrss_kib = maxrss_kib();

    if (s->profile_iterations > 0) {
        /* A separate context, so the timed runs above carry no profiling at all. */
        alexnet_context_destroy(context);
        context = NULL;
        context_options.profile_layers = 1;
        if ((status = alexnet_context_create(model, &context_options, &context)) != ALEXNET_OK) {
            fail(r, "alexnet_context_create (profiled)", status);
            goto done;
        }
        if (!run_inference(context, input, s->batch, probabilities, r, "alexnet_infer (profiled warm-up)"))
            goto done;
        static double seconds[MAX_LAYERS][MAX_PROFILE_RUNS];
        unsigned profiled = 0;
        start = now_ms();
        while (profiled < s->profile_iterations) {
            if (profiled >= 1 && now_ms() - start > s->max_seconds * 1e3)
                break;
            if (!run_inference(context, input, s->batch, probabilities, r, "alexnet_infer (profiled)"))
                goto done;
            alexnet_layer_profile rows[MAX_LAYERS];
            size_t count = 0;
            for (size_t i = 0; i < MAX_LAYERS; i++)
                rows[i].struct_size = sizeof rows[i];
            if ((status = alexnet_context_profile(context, rows, MAX_LAYERS, &count)) != ALEXNET_OK) {
                fail(r, "alexnet_context_profile", status);
                goto done;
            }
            if (count > MAX_LAYERS)
                count = MAX_LAYERS;
            r->layer_count = count;
            for (size_t i = 0; i < count; i++) {
                memcpy(r->layers[i].name, rows[i].name, sizeof r->layers[i].name);
                r->layers[i].name[sizeof r->layers[i].name - 1] = '\0';
                r->layers[i].type = rows[i].type;
                r->layers[i].flops = rows[i].flops;
                seconds[i][profiled] = rows[i].seconds;
            }
            profiled++;
        }
        r->profile_runs = profiled;
        for (size_t i = 0; i < r->layer_count; i++)
            r->layers[i].seconds = stats_of(seconds[i], profiled).median;
        alexnet_layer_info info[MAX_LAYERS];
        size_t info_count = 0;
        for (size_t i = 0; i < MAX_LAYERS; i++)
            info[i].struct_size = sizeof info[i];
        if (alexnet_config_summary(&config, r->height, r->width, info, MAX_LAYERS, &info_count) == ALEXNET_OK) {
            for (size_t i = 0; i < r->layer_count; i++)
                for (size_t j = 0; j < info_count && j < MAX_LAYERS; j++)
                    if (!strcmp(info[j].name, r->layers[i].name))
                        r->layers[i].parameters = info[j].parameter_count;
        }
    }
    ok = 1;

done:
    if (r->maxrss_kib == 0) {
        r->hwm_kib = proc_status_kib("VmHWM");
        r->maxrss_kib = maxrss_kib();
    }
    free(probabilities);
    free(input);
    alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    if (temp_path[0])
        unlink(temp_path);
    if (temp_dir[0])
        rmdir(temp_dir);
    return ok;
}

/* ---- output --------------------------------------------------------------------------------------------- */

static const char *layer_type_name(alexnet_layer_type type)
{
    switch (type) {
    case ALEXNET_LAYER_INPUT: return "input";
    case ALEXNET_LAYER_CONV: return "conv";
    case ALEXNET_LAYER_LRN: return "lrn";
    case ALEXNET_LAYER_MAX_POOL: return "maxpool";
    case ALEXNET_LAYER_ADAPTIVE_AVG_POOL: return "avgpool";
    case ALEXNET_LAYER_DROPOUT: return "dropout";
    case ALEXNET_LAYER_FC: return "fc";
    case ALEXNET_LAYER_SOFTMAX: return "softmax";
    }
    return "?";
}

static double mib(double bytes) { return bytes / 1048576.0; }

static void print_table(const settings *s, const report *r)
{
    printf("libalexnet %s  alexnet_bench  variant %s  backend %s (requested %s)  ISA env %s  threads %u%s  batch %u\n",
           alexnet_version_string(), s->variant->name, r->backend[0] ? r->backend : "-", s->backend,
           r->isa_env_set ? r->isa_env : "(unset)", r->threads_resolved, s->threads == 0 ? " (0 = all)" : "",
           s->batch);
    if (r->backend_description[0])
        printf("backend: %s\n", r->backend_description);
    if (r->warning[0])
        printf("WARNING: %s\n", r->warning);
    printf("CPU: %s, %ld online\n\n", r->cpu_model, r->online_cpus);

    if (!s->no_peak) {
        printf("FMA peak (GFLOP/s)       best   median    worst  trials\n");
        int any = 0;
        for (int isa = 0; isa < BENCH_ISA_COUNT; isa++) {
            if (!r->peak_valid[isa])
                continue;
            any = 1;
            const bench_peak *p[2] = {&r->peak_1t[isa], &r->peak_nt[isa]};
            for (int k = 0; k < (r->threads_resolved > 1 ? 2 : 1); k++)
                printf("  %-7s %3u thread%s %9.1f %8.1f %8.1f %7u\n", bench_isa_name((bench_isa)isa), p[k]->threads,
                       p[k]->threads == 1 ? " " : "s", p[k]->best_gflops, p[k]->median_gflops, p[k]->worst_gflops,
                       p[k]->trials);
        }
        if (!any)
            printf("  (no probe for this CPU)\n");
        else
            printf("  fractions below use %.1f GFLOP/s (%s: the larger of the %u-thread best, %u x the "
                   "1-thread best and --peak-gflops)\n",
                   peak_gflops(r), bench_isa_name((bench_isa)r->best_isa), r->threads_resolved,
                   r->online_cpus > 0 && r->threads_resolved > (unsigned)r->online_cpus ? (unsigned)r->online_cpus
                                                                                       : r->threads_resolved);
        if (r->bw_valid)
            printf("memory read bandwidth: %.1f GB/s on 1 thread, %.1f GB/s on %u (best of %u trials over %.0f MiB; "
                   "medians %.1f, %.1f)\n",
                   r->bw_1t.best_gbps, r->bw_nt.best_gbps, r->bw_nt.threads, r->bw_nt.trials,
                   mib((double)r->bw_nt.bytes), r->bw_1t.median_gbps, r->bw_nt.median_gbps);
        printf("\n");
    }
    if (s->peak_only)
        return;
    if (!r->ok)
        printf("FAILED: %s\n\n", r->error);
    if (r->parameters == 0)
        return;

    printf("model: %" PRIu64 " parameters = %.1f MiB fp32 weights; input %ux%ux%u\n", r->parameters,
           mib((double)r->weight_bytes), r->channels, r->height, r->width);
    if (r->load_measured)
        printf("  seeded create %.1f ms (child process), save %.1f ms, file %.1f MiB; load median %.1f ms "
               "(min %.1f, max %.1f, n %u; file in page cache)\n",
               r->seeded_create_ms, r->save_ms, mib((double)r->file_bytes), r->load_ms.median, r->load_ms.min,
               r->load_ms.max, r->load_ms.n);
    else
        printf("  seeded create %.1f ms (no load measured)\n", r->seeded_create_ms);
    if (r->cold_load_ms >= 0)
        printf("  cold load %.1f ms (page cache %s)\n", r->cold_load_ms,
               r->cold_load_evicted ? "dropped with posix_fadvise" : "could NOT be dropped");
    if (s->train && r->infer_ms.n > 0) {
        printf("trainer: create %.2f ms\n", r->context_create_ms);
        printf("\ntraining step (forward, backward, SGD update), batch %u: %u timed steps after %u warm-up\n",
               s->batch, r->infer_ms.n, r->warmup_done);
        printf("  time per step    median %9.3f ms   min %9.3f   max %9.3f   mean %9.3f\n", r->infer_ms.median,
               r->infer_ms.min, r->infer_ms.max, r->infer_ms.mean);
        printf("  while timing     %.2f CPU s per wall s, %ld involuntary / %ld voluntary context switches; "
               "load average %s -> %s\n",
               r->cpu_per_wall, r->involuntary_switches, r->voluntary_switches, r->loadavg_start, r->loadavg_end);
        printf("  throughput       median %9.2f img/s  min %8.2f   max %9.2f\n", s->batch * 1e3 / r->infer_ms.median,
               s->batch * 1e3 / r->infer_ms.max, s->batch * 1e3 / r->infer_ms.min);
        printf("  loss             %.4f at the first step, %.4f at the last (one batch, repeated)\n",
               (double)r->first_loss, (double)r->last_loss);
        return;
    }
    if (r->backend[0])
        printf("context: create %.2f ms, workspace %.2f MiB\n", r->context_create_ms, mib((double)r->workspace_bytes));
    if (r->infer_ms.n > 0) {
        printf("\ninference, batch %u: %u timed runs after %u warm-up\n", s->batch, r->infer_ms.n, r->warmup_done);
        printf("  time per batch   median %9.3f ms   min %9.3f   max %9.3f   mean %9.3f\n", r->infer_ms.median,
               r->infer_ms.min, r->infer_ms.max, r->infer_ms.mean);
        printf("  while timing     %.2f CPU s per wall s, %ld involuntary / %ld voluntary context switches; "
               "load average %s -> %s\n",
               r->cpu_per_wall, r->involuntary_switches, r->voluntary_switches, r->loadavg_start, r->loadavg_end);
        printf("  throughput       median %9.2f img/s  min %8.2f   max %9.2f\n", s->batch * 1e3 / r->infer_ms.median,
               s->batch * 1e3 / r->infer_ms.max, s->batch * 1e3 / r->infer_ms.min);
        double gflops = r->flops_per_image * s->batch / (r->infer_ms.median * 1e-3) * 1e-9;
        printf("  compute          %.3f GFLOP/image (direct convolution), %.1f GFLOP/s end to end",
               r->flops_per_image * 1e-9, gflops);
        if (peak_gflops(r) > 0) {
            double floor_ips = peak_gflops(r) * 1e9 / r->flops_per_image;
            printf(" = %.1f%% of peak\n  compute floor    %.2f img/s at the %s %u-thread peak; achieved %.1f%%\n",
                   100.0 * gflops / peak_gflops(r), floor_ips, bench_isa_name((bench_isa)r->best_isa),
                   r->threads_resolved, 100.0 * (s->batch * 1e3 / r->infer_ms.median) / floor_ips);
        } else {
            printf("\n");
        }
        if (bandwidth_gbps(r) > 0) {
            double floor_ms = (double)r->weight_bytes / (bandwidth_gbps(r) * 1e9) * 1e3;
            printf("  weight streaming %.1f MiB of weights per batch at %.1f GB/s = %.2f ms floor per batch; "
                   "the median is %.2fx that\n",
                   mib((double)r->weight_bytes), bandwidth_gbps(r), floor_ms, r->infer_ms.median / floor_ms);
        }
    }
    if (r->maxrss_kib > 0) {
        printf("\nmemory (batch %u): peak RSS %.1f MiB (ru_maxrss), VmHWM %.1f MiB = %.3fx the fp32 weights; "
               "baseline %.1f MiB, after load %.1f, after context %.1f, after runs %.1f\n",
               s->batch, r->maxrss_kib / 1024.0, r->hwm_kib / 1024.0,
               r->weight_bytes ? r->maxrss_kib * 1024.0 / (double)r->weight_bytes : 0.0, r->rss_baseline_kib / 1024.0,
               r->rss_after_load_kib / 1024.0, r->rss_after_context_kib / 1024.0, r->rss_after_runs_kib / 1024.0);
    }
    if (r->layer_count > 0) {
        double total = 0.0, conv_s = 0.0, conv_f = 0.0;
        for (size_t i = 0; i < r->layer_count; i++) {
            total += r->layers[i].seconds;
            if (r->layers[i].type == ALEXNET_LAYER_CONV) {
                conv_s += r->layers[i].seconds;
                conv_f += r->layers[i].flops;
            }
        }
        const double peak = peak_gflops(r);
        printf("\nper layer, batch %u (median of %u profiled runs; ", s->batch, r->profile_runs);
        if (peak > 0)
            printf("%%peak = of the %s %u-thread FMA peak, %.1f GFLOP/s; ",
                   r->best_isa >= 0 ? bench_isa_name((bench_isa)r->best_isa) : "given", r->threads_resolved, peak);
        else
            printf("no peak measured; ");
        printf("wGB/s = FC weight bytes read per second)\n");
        printf("  %-8s %-8s %10s %6s %9s %9s %6s %8s\n", "layer", "type", "ms", "%time", "GFLOP", "GFLOP/s", "%peak",
               "wGB/s");
        for (size_t i = 0; i < r->layer_count; i++) {
            const layer_row *l = &r->layers[i];
            double gf = l->seconds > 0 ? l->flops / l->seconds * 1e-9 : 0.0;
            printf("  %-8s %-8s %10.3f %6.1f", l->name, layer_type_name(l->type), l->seconds * 1e3,
                   total > 0 ? 100.0 * l->seconds / total : 0.0);
            if (l->flops > 0) {
                printf(" %9.3f %9.1f", l->flops * 1e-9, gf);
                if (peak > 0)
                    printf(" %6.1f", 100.0 * gf / peak);
                else
                    printf(" %6s", "-");
                if (l->type == ALEXNET_LAYER_FC && l->parameters > 0 && l->seconds > 0)
                    printf(" %8.1f", (double)l->parameters * sizeof(float) / l->seconds * 1e-9);
            }
            printf("\n");
        }
        double conv_gf = conv_s > 0 ? conv_f / conv_s * 1e-9 : 0.0;
        printf("  %-8s %-8s %10.3f %6.1f %9.3f %9.1f", "conv", "(all)", conv_s * 1e3,
               total > 0 ? 100.0 * conv_s / total : 0.0, conv_f * 1e-9, conv_gf);
        if (peak > 0)
            printf(" %6.1f", 100.0 * conv_gf / peak);
        printf("\n  %-8s %-8s %10.3f\n", "total", "", total * 1e3);
    }
}

static void json_string(FILE *f, const char *text)
{
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

static void json_number(FILE *f, double v)
{
    if (isfinite(v))
        fprintf(f, "%.6g", v);
    else
        fputs("null", f);
}

static void json_stats(FILE *f, const stats *s)
{
    fprintf(f, "{\"n\":%u,\"median\":", s->n);
    json_number(f, s->median);
    fputs(",\"min\":", f);
    json_number(f, s->min);
    fputs(",\"max\":", f);
    json_number(f, s->max);
    fputs(",\"mean\":", f);
    json_number(f, s->mean);
    fputc('}', f);
}

static void json_peak(FILE *f, const bench_peak *p)
{
    fprintf(f, "{\"threads\":%u,\"trials\":%u,\"best_gflops\":", p->threads, p->trials);
    json_number(f, p->best_gflops);
    fputs(",\"median_gflops\":", f);
    json_number(f, p->median_gflops);
    fputs(",\"worst_gflops\":", f);
    json_number(f, p->worst_gflops);
    fputc('}', f);
}

static int write_json(const settings *s, const report *r)
{
    FILE *f = strcmp(s->json_path, "-") ? fopen(s->json_path, "w") : stdout;
    if (f == NULL) {
        fprintf(stderr, "alexnet_bench: cannot write %s: %s\n", s->json_path, strerror(errno));
        return 0;
    }
    const double peak = peak_gflops(r);
    fputs("{\"benchmark\":\"alexnet_bench\",\"schema\":1,\"library_version\":", f);
    json_string(f, alexnet_version_string());
    fprintf(f, ",\"mode\":\"%s\",\"ok\":%s,\"error\":", s->train ? "train" : "inference", r->ok ? "true" : "false");
    json_string(f, r->error);
    fputs(",\"variant\":", f);
    json_string(f, s->variant->name);
    fputs(",\"backend_request\":", f);
    json_string(f, s->backend);
    fputs(",\"backend\":", f);
    json_string(f, r->backend);
    fputs(",\"backend_description\":", f);
    json_string(f, r->backend_description);
    fputs(",\"warning\":", f);
    json_string(f, r->warning);
    fputs(",\"isa_env\":", f);
    if (r->isa_env_set)
        json_string(f, r->isa_env);
    else
        fputs("null", f);
    fprintf(f, ",\"threads_request\":%u,\"threads\":%u,\"batch\":%u,\"seed\":%" PRIu64 ",\"cpu\":{\"model\":",
            s->threads, r->threads_resolved, s->batch, s->seed);
    json_string(f, r->cpu_model);
    fprintf(f, ",\"online\":%ld},\"peak\":", r->online_cpus);
    if (s->no_peak) {
        fputs("null", f);
    } else {
        fputs("{\"isa\":", f);
        if (r->best_isa >= 0)
            json_string(f, bench_isa_name((bench_isa)r->best_isa));
        else
            fputs("null", f);
        fputs(",\"gflops\":", f);
        json_number(f, peak);
        fputs(",\"rule\":\"max(best N-thread trial, N x best 1-thread trial, --peak-gflops), N = threads capped at "
              "online CPUs\",\"floor_gflops\":",
              f);
        json_number(f, r->peak_floor_gflops);
        for (int isa = 0; isa < BENCH_ISA_COUNT; isa++) {
            fprintf(f, ",\"%s\":", bench_isa_name((bench_isa)isa));
            if (!r->peak_valid[isa]) {
                fputs("null", f);
                continue;
            }
            fputs("{\"single_thread\":", f);
            json_peak(f, &r->peak_1t[isa]);
            fputs(",\"threads\":", f);
            json_peak(f, &r->peak_nt[isa]);
            fputc('}', f);
        }
        fputc('}', f);
    }
    fputs(",\"bandwidth\":", f);
    if (r->bw_valid) {
        fprintf(f, "{\"bytes\":%zu,\"single_thread\":{\"best_gbps\":", r->bw_1t.bytes);
        json_number(f, r->bw_1t.best_gbps);
        fputs(",\"median_gbps\":", f);
        json_number(f, r->bw_1t.median_gbps);
        fprintf(f, "},\"threads\":{\"threads\":%u,\"best_gbps\":", r->bw_nt.threads);
        json_number(f, r->bw_nt.best_gbps);
        fputs(",\"median_gbps\":", f);
        json_number(f, r->bw_nt.median_gbps);
        fputs("},\"gbps\":", f);
        json_number(f, bandwidth_gbps(r));
        fputc('}', f);
    } else {
        fputs("null", f);
    }
    if (s->peak_only) {
        fputs("}\n", f);
        goto close;
    }
    fprintf(f, ",\"model\":{\"parameters\":%" PRIu64 ",\"weight_bytes\":%" PRIu64 ",\"input\":[%u,%u,%u]",
            r->parameters, r->weight_bytes, r->channels, r->height, r->width);
    fputs(",\"seeded_create_ms\":", f);
    json_number(f, r->seeded_create_ms);
    fputs(",\"save_ms\":", f);
    json_number(f, r->save_ms);
    fprintf(f, ",\"file_bytes\":%" PRIu64 ",\"load_ms\":", r->file_bytes);
    if (r->load_measured)
        json_stats(f, &r->load_ms);
    else
        fputs("null", f);
    fputs(",\"cold_load_ms\":", f);
    if (r->cold_load_ms >= 0)
        json_number(f, r->cold_load_ms);
    else
        fputs("null", f);
    fprintf(f, ",\"cold_load_evicted\":%s", r->cold_load_evicted ? "true" : "false");
    fputs("},\"context_create_ms\":", f);
    json_number(f, r->context_create_ms);
    fprintf(f, ",\"workspace_bytes\":%zu,\"warmup\":%u,\"time_ms\":", r->workspace_bytes, r->warmup_done);
    json_stats(f, &r->infer_ms);
    fputs(",\"runs_ms\":[", f);
    for (unsigned i = 0; i < r->infer_ms.n; i++) {
        if (i)
            fputc(',', f);
        json_number(f, r->runs_ms[i]);
    }
    fputs("],\"cpu_per_wall\":", f);
    json_number(f, r->cpu_per_wall);
    fprintf(f, ",\"voluntary_switches\":%ld,\"involuntary_switches\":%ld,\"loadavg_start\":", r->voluntary_switches,
            r->involuntary_switches);
    json_string(f, r->loadavg_start);
    fputs(",\"loadavg_end\":", f);
    json_string(f, r->loadavg_end);
    fputs(",\"throughput_images_per_s\":", f);
    if (r->infer_ms.n > 0) {
        stats t = {r->infer_ms.n, s->batch * 1e3 / r->infer_ms.median, s->batch * 1e3 / r->infer_ms.max,
                   s->batch * 1e3 / r->infer_ms.min, s->batch * 1e3 / r->infer_ms.mean};
        json_stats(f, &t);
    } else {
        fputs("null", f);
    }
    fputs(",\"train\":", f);
    if (s->train) {
        fputs("{\"step\":\"alexnet_trainer_step on one fixed batch\",\"first_loss\":", f);
        json_number(f, r->first_loss);
        fputs(",\"last_loss\":", f);
        json_number(f, r->last_loss);
        fputc('}', f);
    } else {
        fputs("null", f);
    }
    fputs(",\"flops_per_image\":", f);
    json_number(f, r->flops_per_image);
    fputs(",\"compute_floor_images_per_s\":", f);
    json_number(f, peak > 0 && r->flops_per_image > 0 ? peak * 1e9 / r->flops_per_image : NAN);
    fputs(",\"weight_stream_floor_ms\":", f);
    json_number(f, bandwidth_gbps(r) > 0 ? (double)r->weight_bytes / (bandwidth_gbps(r) * 1e9) * 1e3 : NAN);
    fputs(",\"fraction_of_compute_floor\":", f);
    json_number(f, peak > 0 && r->infer_ms.n > 0 && r->flops_per_image > 0
                       ? (s->batch * 1e3 / r->infer_ms.median) / (peak * 1e9 / r->flops_per_image)
                       : NAN);
    fprintf(f,
            ",\"memory\":{\"baseline_rss_kib\":%ld,\"rss_after_load_kib\":%ld,\"hwm_after_load_kib\":%ld,"
            "\"rss_after_context_kib\":%ld,\"rss_after_runs_kib\":%ld,\"vm_hwm_kib\":%ld,\"ru_maxrss_kib\":%ld,"
            "\"ratio_to_weights\":",
            r->rss_baseline_kib, r->rss_after_load_kib, r->hwm_after_load_kib, r->rss_after_context_kib,
            r->rss_after_runs_kib, r->hwm_kib, r->maxrss_kib);
    json_number(f, r->weight_bytes ? r->maxrss_kib * 1024.0 / (double)r->weight_bytes : NAN);
    fprintf(f, "},\"profile_runs\":%u,\"layers\":[", r->profile_runs);
    double conv_s = 0.0, conv_f = 0.0, total = 0.0;
    for (size_t i = 0; i < r->layer_count; i++) {
        const layer_row *l = &r->layers[i];
        double gf = l->seconds > 0 ? l->flops / l->seconds * 1e-9 : 0.0;
        total += l->seconds;
        if (l->type == ALEXNET_LAYER_CONV) {
            conv_s += l->seconds;
            conv_f += l->flops;
        }
        fputs(i ? ",{\"name\":" : "{\"name\":", f);
        json_string(f, l->name);
        fputs(",\"type\":", f);
        json_string(f, layer_type_name(l->type));
        fputs(",\"ms\":", f);
        json_number(f, l->seconds * 1e3);
        fputs(",\"flops\":", f);
        json_number(f, l->flops);
        fputs(",\"gflops\":", f);
        json_number(f, gf);
        fputs(",\"fraction_of_peak\":", f);
        json_number(f, peak > 0 && l->flops > 0 ? gf / peak : NAN);
        fprintf(f, ",\"parameters\":%" PRIu64 ",\"weight_gbps\":", l->parameters);
        json_number(f, l->parameters > 0 && l->seconds > 0 ? (double)l->parameters * sizeof(float) / l->seconds * 1e-9
                                                          : NAN);
        fputc('}', f);
    }
    fputs("],\"conv\":", f);
    if (r->layer_count > 0) {
        double gf = conv_s > 0 ? conv_f / conv_s * 1e-9 : 0.0;
        fputs("{\"ms\":", f);
        json_number(f, conv_s * 1e3);
        fputs(",\"flops\":", f);
        json_number(f, conv_f);
        fputs(",\"gflops\":", f);
        json_number(f, gf);
        fputs(",\"fraction_of_peak\":", f);
        json_number(f, peak > 0 ? gf / peak : NAN);
        fputs(",\"profiled_total_ms\":", f);
        json_number(f, total * 1e3);
        fputc('}', f);
    } else {
        fputs("null", f);
    }
    fputs("}\n", f);
close:
    if (f != stdout ? fclose(f) != 0 : fflush(f) != 0) {
        fprintf(stderr, "alexnet_bench: cannot write %s\n", s->json_path);
        return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    settings s;
    if (!parse_args(argc, argv, &s)) {
        usage(stderr);
        return 2;
    }
    /* Before the first library call: the CPU backend reads it when it first picks its kernels. */
    if (s.isa != NULL) {
        if (!strcmp(s.isa, "auto"))
            unsetenv("ALEXNET_CPU_ISA");
        else
            setenv("ALEXNET_CPU_ISA", s.isa, 1);
    }
    report *r = &g_report;
    const char *env = getenv("ALEXNET_CPU_ISA");
    if (env != NULL && env[0] != '\0') {
        r->isa_env_set = 1;
        snprintf(r->isa_env, sizeof r->isa_env, "%s", env);
    }
    read_cpu_model(r->cpu_model, sizeof r->cpu_model);
    r->online_cpus = sysconf(_SC_NPROCESSORS_ONLN);
    r->threads_resolved = s.threads ? s.threads : (r->online_cpus > 0 ? (unsigned)r->online_cpus : 1u);
    r->best_isa = -1;
    r->cold_load_ms = -1.0;
    r->peak_floor_gflops = s.peak_floor_gflops;
    r->bandwidth_floor_gbps = s.bandwidth_floor_gbps;

    if (s.save_weights_path != NULL) {
        child_result result;
        create_and_save(&s, s.save_weights_path, &result);
        if (!result.ok) {
            fprintf(stderr, "alexnet_bench: %s\n", result.error);
            return 1;
        }
        if (!s.quiet)
            printf("saved %s (%s, seed %" PRIu64 "): create %.1f ms, save %.1f ms\n", s.save_weights_path,
                   s.variant->name, s.seed, result.create_ms, result.save_ms);
        return 0;
    }
    read_loadavg(r->loadavg_start, sizeof r->loadavg_start);
    if (!s.no_peak)
        measure_peak(&s, r);
    r->ok = s.peak_only ? 1 : bench(&s, r);
    /* Last: its 256 MiB buffer must not count in the RSS figures, which were read above. */
    if (!s.no_peak && !s.no_bandwidth)
        measure_bandwidth(r);
    read_loadavg(r->loadavg_end, sizeof r->loadavg_end);
    if (!s.quiet)
        print_table(&s, r);
    if (!r->ok)
        fprintf(stderr, "alexnet_bench: %s\n", r->error);
    if (s.json_path != NULL && !write_json(&s, r))
        return 1;
    return r->ok ? 0 : 1;
}
