/* Memory read bandwidth (see membw.h). Plain C: four independent 64-bit sums per step, which the compiler
 * vectorises with whatever the baseline ISA has; a read stream is limited by the memory system, not by
 * the width of the adds. */
#include "membw.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double membw_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct membw_worker {
    const uint64_t *data;
    size_t count;
    pthread_mutex_t *mutex;
    pthread_cond_t *cond;
    const int *go;
    double start, end;
    uint64_t sum;
} membw_worker;

static void membw_run(membw_worker *w)
{
    if (w->mutex != NULL) {
        pthread_mutex_lock(w->mutex);
        while (*w->go == 0)
            pthread_cond_wait(w->cond, w->mutex);
        int go = *w->go;
        pthread_mutex_unlock(w->mutex);
        if (go < 0)
            return;
    }
    w->start = membw_now();
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    const uint64_t *p = w->data;
    size_t n = w->count & ~(size_t)3;
    for (size_t i = 0; i < n; i += 4) {
        s0 += p[i];
        s1 += p[i + 1];
        s2 += p[i + 2];
        s3 += p[i + 3];
    }
    w->sum = s0 + s1 + s2 + s3;
    w->end = membw_now();
}

static void *membw_main(void *arg)
{
    membw_run(arg);
    return NULL;
}

static int membw_compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define MEMBW_MAX_THREADS 256
#define MEMBW_MAX_TRIALS 32

volatile uint64_t bench_membw_sink;

int bench_bandwidth_measure(size_t bytes, unsigned threads, unsigned trials, bench_bandwidth *out)
{
    if (threads == 0)
        threads = 1;
    if (threads > MEMBW_MAX_THREADS)
        threads = MEMBW_MAX_THREADS;
    if (trials == 0)
        trials = 1;
    if (trials > MEMBW_MAX_TRIALS)
        trials = MEMBW_MAX_TRIALS;
    size_t count = bytes / sizeof(uint64_t);
    uint64_t *data = NULL;
    if (count < (size_t)threads * 4 || posix_memalign((void **)&data, 4096, count * sizeof(uint64_t)) != 0)
        return 0;
    for (size_t i = 0; i < count; i++) /* touch every page; values that do not sum to a constant */
        data[i] = (uint64_t)i * 0x9E3779B97F4A7C15ull;
    double gbps[MEMBW_MAX_TRIALS];
    static membw_worker workers[MEMBW_MAX_THREADS];
    static pthread_t ids[MEMBW_MAX_THREADS];
    int ok = 1;
    for (unsigned trial = 0; trial < trials && ok; trial++) {
        pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;
        pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
        int go = 0;
        size_t per = count / threads;
        for (unsigned t = 0; t < threads; t++) {
            memset(&workers[t], 0, sizeof workers[t]);
            workers[t].data = data + (size_t)t * per;
            workers[t].count = t + 1 == threads ? count - (size_t)t * per : per;
            workers[t].mutex = &mutex;
            workers[t].cond = &cond;
            workers[t].go = &go;
        }
        unsigned started = 1;
        while (started < threads && pthread_create(&ids[started], NULL, membw_main, &workers[started]) == 0)
            started++;
        pthread_mutex_lock(&mutex);
        go = started == threads ? 1 : -1;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&mutex);
        if (started == threads)
            membw_run(&workers[0]);
        for (unsigned t = 1; t < started; t++)
            pthread_join(ids[t], NULL);
        pthread_cond_destroy(&cond);
        pthread_mutex_destroy(&mutex);
        if (started != threads) {
            ok = 0;
            break;
        }
        double first = workers[0].start, last = workers[0].end;
        uint64_t sum = 0;
        for (unsigned t = 0; t < threads; t++) {
            if (workers[t].start < first)
                first = workers[t].start;
            if (workers[t].end > last)
                last = workers[t].end;
            sum += workers[t].sum;
        }
        bench_membw_sink = sum;
        gbps[trial] = last > first ? (double)(count * sizeof(uint64_t)) / (last - first) * 1e-9 : 0.0;
    }
    free(data);
    if (!ok)
        return 0;
    qsort(gbps, trials, sizeof gbps[0], membw_compare);
    memset(out, 0, sizeof *out);
    out->threads = threads;
    out->trials = trials;
    out->bytes = count * sizeof(uint64_t);
    out->best_gbps = gbps[trials - 1];
    out->median_gbps = trials % 2 ? gbps[trials / 2] : 0.5 * (gbps[trials / 2 - 1] + gbps[trials / 2]);
    return 1;
}
