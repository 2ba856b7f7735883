/* Run-time choice and timing of the FMA peak kernels (see fma_peak.h). Compiled without ISA flags. */
#include "fma_peak.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#define BENCH_X86 1
#else
#define BENCH_X86 0
#endif

typedef float (*bench_kernel_fn)(uint64_t iterations, float seed);

const char *bench_isa_name(bench_isa isa)
{
    switch (isa) {
    case BENCH_ISA_AVX2: return "avx2";
    case BENCH_ISA_AVX512: return "avx512";
    case BENCH_ISA_COUNT: break;
    }
    return "?";
}

static bench_kernel_fn bench_kernel(bench_isa isa, double *flops_per_iteration)
{
#if BENCH_X86 && defined(__GNUC__)
    __builtin_cpu_init();
    switch (isa) {
    case BENCH_ISA_AVX2:
#if defined(BENCH_HAVE_AVX2)
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
            *flops_per_iteration = BENCH_AVX2_FLOPS_PER_ITERATION;
            return bench_fma_kernel_avx2;
        }
#endif
        break;
    case BENCH_ISA_AVX512:
#if defined(BENCH_HAVE_AVX512)
        if (__builtin_cpu_supports("avx512f")) {
            *flops_per_iteration = BENCH_AVX512_FLOPS_PER_ITERATION;
            return bench_fma_kernel_avx512;
        }
#endif
        break;
    case BENCH_ISA_COUNT: break;
    }
#else
    (void)isa;
#endif
    (void)flops_per_iteration;
    return NULL;
}

int bench_isa_usable(bench_isa isa)
{
    double flops;
    return bench_kernel(isa, &flops) != NULL;
}

static double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* A start gate: workers wait until the caller opens it (go = 1) or calls the trial off (go = -1). */
typedef struct bench_gate {
    pthread_mutex_t mutex;
    pthread_cond_t cond;
    int go;
} bench_gate;

typedef struct bench_worker {
    bench_kernel_fn kernel;
    uint64_t iterations;
    float seed;
    bench_gate *gate;
    double start, end;
    float result;
} bench_worker;

static void bench_worker_run(bench_worker *w)
{
    if (w->gate) {
        pthread_mutex_lock(&w->gate->mutex);
        while (w->gate->go == 0)
            pthread_cond_wait(&w->gate->cond, &w->gate->mutex);
        int go = w->gate->go;
        pthread_mutex_unlock(&w->gate->mutex);
        if (go < 0)
            return;
    }
    w->start = bench_now();
    w->result = w->kernel(w->iterations, w->seed);
    w->end = bench_now();
}

static void *bench_worker_main(void *arg)
{
    bench_worker_run(arg);
    return NULL;
}

static void bench_gate_open(bench_gate *gate, int go)
{
    pthread_mutex_lock(&gate->mutex);
    gate->go = go;
    pthread_cond_broadcast(&gate->cond);
    pthread_mutex_unlock(&gate->mutex);
}

#define BENCH_MAX_THREADS 256

/* One trial: returns GFLOP/s, or a negative value if a thread could not be started. */
static double bench_trial(bench_kernel_fn kernel, double flops_per_iteration, unsigned threads, uint64_t iterations,
                          volatile float *sink)
{
    static bench_worker workers[BENCH_MAX_THREADS];
    static pthread_t ids[BENCH_MAX_THREADS];
    bench_gate gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    if (threads > BENCH_MAX_THREADS)
        threads = BENCH_MAX_THREADS;
    for (unsigned t = 0; t < threads; t++) {
        memset(&workers[t], 0, sizeof workers[t]);
        workers[t].kernel = kernel;
        workers[t].iterations = iterations;
        workers[t].seed = 1.0f + 0.5f * (float)t;
        workers[t].gate = &gate;
    }
    unsigned started = 1;
    while (started < threads && pthread_create(&ids[started], NULL, bench_worker_main, &workers[started]) == 0)
        started++;
    bench_gate_open(&gate, started == threads ? 1 : -1);
    if (started == threads)
        bench_worker_run(&workers[0]);
    for (unsigned t = 1; t < started; t++)
        pthread_join(ids[t], NULL);
    pthread_cond_destroy(&gate.cond);
    pthread_mutex_destroy(&gate.mutex);
    if (started != threads)
        return -1.0;
    double first = workers[0].start, last = workers[0].end;
    float sum = 0.0f;
    for (unsigned t = 0; t < threads; t++) {
        if (workers[t].start < first)
            first = workers[t].start;
        if (workers[t].end > last)
            last = workers[t].end;
        sum += workers[t].result;
    }
    *sink = sum;
    double seconds = last - first;
    return seconds > 0 ? (double)threads * (double)iterations * flops_per_iteration / seconds * 1e-9 : 0.0;
}

static int bench_compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int bench_peak_measure(bench_isa isa, unsigned threads, unsigned trials, double trial_seconds, bench_peak *out)
{
    static volatile float sink;
    double flops_per_iteration = 0.0;
    bench_kernel_fn kernel = bench_kernel(isa, &flops_per_iteration);
    if (kernel == NULL)
        return 0;
    if (threads == 0)
        threads = 1;
    if (trials == 0)
        trials = 1;
    if (trials > 64)
        trials = 64;
    /* Calibrate on one thread: grow the count until a run takes a few milliseconds, then scale. */
    uint64_t iterations = 1u << 12;
    double seconds = 0.0;
    for (;;) {
        double start = bench_now();
        sink = kernel(iterations, 1.0f);
        seconds = bench_now() - start;
        if (seconds > 2e-3 || iterations > (UINT64_C(1) << 40))
            break;
        iterations *= 4;
    }
    double scaled = (double)iterations * trial_seconds / (seconds > 0 ? seconds : 1e-3);
    iterations = scaled < 1024.0 ? 1024u : (uint64_t)scaled;
    double gflops[64];
    for (unsigned i = 0; i < trials; i++) {
        gflops[i] = bench_trial(kernel, flops_per_iteration, threads, iterations, &sink);
        if (gflops[i] < 0)
            return 0;
    }
    qsort(gflops, trials, sizeof gflops[0], bench_compare_doubles);
    memset(out, 0, sizeof *out);
    out->isa = isa;
    out->threads = threads;
    out->trials = trials;
    out->worst_gflops = gflops[0];
    out->best_gflops = gflops[trials - 1];
    out->median_gflops =
        trials % 2 ? gflops[trials / 2] : 0.5 * (gflops[trials / 2 - 1] + gflops[trials / 2]);
    return 1;
}
