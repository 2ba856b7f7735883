/* Threads sharing one model: THREADS threads, each with its own context, each running INFERENCES inferences on
 * its own inputs; every output must be bitwise equal to the result of the same input run single-threaded.
 *
 * This is what the header promises ("a model is immutable once created and may be shared by any number of
 * threads; a context is used by one thread at a time"; "results are bitwise identical for any thread count").
 * It runs for the "reference" backend and for whatever "auto" picks, with num_threads = 2 in the contexts (so a
 * backend with a thread pool runs its pool inside each of the threads). Contexts are created concurrently too,
 * and every thread checks that alexnet_last_error() holds its own failure, not another thread's.
 *
 * CI runs it under ThreadSanitizer (.ci/run). Plain C and pthreads, no Check: the TSan build compiles only this
 * file, tests/support and the library. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/alexnet.h"
#include "test_support.h"

enum {
    THREADS = 4,
    INFERENCES = 8, /* per thread */
    BATCH = 2,      /* the contexts' batch; inferences alternate between 1 and 2 images */
    SIZE = 32,
    CHANNELS = 3,
    CLASSES = 10,
    PIXELS = CHANNELS * SIZE * SIZE,
};

static int failures;
static pthread_mutex_t report_lock = PTHREAD_MUTEX_INITIALIZER;

/* A thread-safe counting allocator: the model's, which every context here uses too (their options leave the
 * allocator all-NULL), so allocations happen on all threads at once. */
typedef struct shared_counter {
    pthread_mutex_t lock;
    size_t live_blocks;
    size_t allocations;
} shared_counter;

static void *counted_alloc(void *user, size_t size, size_t alignment)
{
    shared_counter *counter = user;
    void *ptr = NULL;
    if (posix_memalign(&ptr, alignment < sizeof(void *) ? sizeof(void *) : alignment, size) != 0)
        return NULL;
    pthread_mutex_lock(&counter->lock);
    counter->live_blocks++;
    counter->allocations++;
    pthread_mutex_unlock(&counter->lock);
    return ptr;
}

static void counted_free(void *user, void *ptr, size_t size)
{
    shared_counter *counter = user;
    (void)size;
    pthread_mutex_lock(&counter->lock);
    counter->live_blocks--;
    pthread_mutex_unlock(&counter->lock);
    free(ptr);
}

#define FAIL(...)                                                                                                \
    do {                                                                                                         \
        pthread_mutex_lock(&report_lock);                                                                        \
        failures++;                                                                                              \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                                     \
        fprintf(stderr, __VA_ARGS__);                                                                            \
        fputc('\n', stderr);                                                                                     \
        pthread_mutex_unlock(&report_lock);                                                                      \
    } while (0)

/* The five-convolution AlexNet-family net of tests/api at 32 x 32: groups, LRN, overlapping pooling, three FC
 * layers; big enough that a backend parallelises its layers, small enough for ThreadSanitizer. */
static alexnet_config small_config(void)
{
    alexnet_config c;
    if (alexnet_config_preset(ALEXNET_VARIANT_PAPER_2012, &c) != ALEXNET_OK)
        abort();
    c.variant = ALEXNET_VARIANT_CUSTOM;
    c.input_height = c.input_width = SIZE;
    const uint32_t widths[5] = {8, 12, 16, 16, 8};
    for (int i = 0; i < 5; i++) {
        c.conv[i].out_channels = widths[i];
        c.conv[i].kernel_size = 3;
        c.conv[i].stride = 1;
        c.conv[i].padding = 1;
    }
    c.conv[0].kernel_size = 5;
    c.conv[0].stride = 2;
    c.conv[0].padding = 2;
    c.hidden_fc[0] = 24;
    c.hidden_fc[1] = 20;
    c.num_classes = CLASSES;
    return c;
}

/* One inference of the plan: which inputs (seeds) and how many images. */
static size_t images_in(size_t inference) { return inference % 2 == 0 ? 1 : BATCH; }
static uint64_t seed_of(size_t thread, size_t inference, size_t image)
{
    return 1000 + thread * 100 + inference * 10 + image;
}

typedef struct expected_output {
    float logits[THREADS][INFERENCES][BATCH * CLASSES];
    float probabilities[THREADS][INFERENCES][BATCH * CLASSES];
    float fc7[THREADS][INFERENCES][BATCH * 20];
} expected_output;

typedef struct shared {
    const alexnet_model *model;
    const char *backend;
    uint32_t num_threads;
    const expected_output *expected;
    pthread_barrier_t start;
} shared;

typedef struct worker {
    shared *common;
    size_t index;
} worker;

static const char *const captures[] = {"fc7", NULL};

static alexnet_context *make_context(const alexnet_model *model, const char *backend, uint32_t num_threads)
{
    alexnet_context_options options;
    alexnet_context_options_init(&options);
    options.backend = backend;
    options.batch = BATCH;
    options.num_threads = num_threads;
    options.capture_layers = captures;
    alexnet_context *context = NULL;
    if (alexnet_context_create(model, &options, &context) != ALEXNET_OK) {
        FAIL("alexnet_context_create(%s, %u threads): %s", backend, num_threads, alexnet_last_error());
        return NULL;
    }
    return context;
}

/* Run inference `i` of thread `t` on context; outputs into the three arrays. */
static int run_one(alexnet_context *context, size_t t, size_t i, float *logits, float *probabilities, float *fc7)
{
    float input[BATCH * PIXELS];
    size_t n = images_in(i);
    for (size_t k = 0; k < n; k++)
        test_fill_input(input + k * PIXELS, PIXELS, seed_of(t, i, k));
    if (alexnet_infer(context, input, n, logits, probabilities) != ALEXNET_OK) {
        FAIL("alexnet_infer (thread %zu, inference %zu): %s", t, i, alexnet_last_error());
        return 0;
    }
    if (alexnet_layer_output(context, "fc7", fc7, n * 20) != ALEXNET_OK) {
        FAIL("alexnet_layer_output (thread %zu, inference %zu): %s", t, i, alexnet_last_error());
        return 0;
    }
    return 1;
}

static void *worker_main(void *argument)
{
    worker *w = argument;
    shared *common = w->common;
    size_t t = w->index;
    pthread_barrier_wait(&common->start); /* all threads create their contexts at once */
    alexnet_context *context = make_context(common->model, common->backend, common->num_threads);
    if (context == NULL)
        return NULL;
    for (size_t i = 0; i < INFERENCES; i++) {
        float logits[BATCH * CLASSES], probabilities[BATCH * CLASSES], fc7[BATCH * 20];
        if (!run_one(context, t, i, logits, probabilities, fc7))
            break;
        size_t n = images_in(i);
        if (memcmp(logits, common->expected->logits[t][i], n * CLASSES * sizeof(float)) != 0 ||
            memcmp(probabilities, common->expected->probabilities[t][i], n * CLASSES * sizeof(float)) != 0 ||
            memcmp(fc7, common->expected->fc7[t][i], n * 20 * sizeof(float)) != 0)
            FAIL("%s: thread %zu inference %zu differs from the single-threaded result", common->backend, t, i);
        /* This thread's own failure, with its own name in the message, whatever the others are doing. */
        char name[32];
        snprintf(name, sizeof name, "no-layer-%zu-%zu", t, i);
        size_t elements = 0;
        if (alexnet_context_layer_size(context, name, &elements) != ALEXNET_E_NOT_FOUND ||
            strstr(alexnet_last_error(), name) == NULL)
            FAIL("thread %zu: alexnet_last_error() is \"%s\", expected it to name %s", t, alexnet_last_error(), name);
    }
    alexnet_context_destroy(context);
    return NULL;
}

static void run_backend(const alexnet_model *model, const char *backend, expected_output *expected)
{
    /* Single-threaded: one context with one thread, every inference in turn. */
    alexnet_context *serial = make_context(model, backend, 1);
    if (serial == NULL)
        return;
    const char *picked = alexnet_context_backend_name(serial);
    for (size_t t = 0; t < THREADS; t++)
        for (size_t i = 0; i < INFERENCES; i++)
            run_one(serial, t, i, expected->logits[t][i], expected->probabilities[t][i], expected->fc7[t][i]);
    alexnet_context_destroy(serial);

    shared common = {model, backend, 2, expected, {{0}}};
    pthread_barrier_init(&common.start, NULL, THREADS);
    pthread_t threads[THREADS];
    worker workers[THREADS];
    for (size_t t = 0; t < THREADS; t++) {
        workers[t].common = &common;
        workers[t].index = t;
        if (pthread_create(&threads[t], NULL, worker_main, &workers[t]) != 0) {
            FAIL("pthread_create");
            exit(1);
        }
    }
    for (size_t t = 0; t < THREADS; t++)
        pthread_join(threads[t], NULL);
    pthread_barrier_destroy(&common.start);
    printf("concurrency: backend \"%s\" (picked %s): %d threads x %d inferences (num_threads = 2 each), "
           "bitwise equal to the single-threaded run: %s\n",
           backend, picked, THREADS, INFERENCES, failures == 0 ? "yes" : "NO");
}

int main(void)
{
    static shared_counter counter = {PTHREAD_MUTEX_INITIALIZER, 0, 0};
    alexnet_config config = small_config();
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.config = &config;
    options.allocator = (alexnet_allocator){counted_alloc, counted_free, &counter};
    alexnet_model *model = NULL;
    if (alexnet_model_create(&options, 2012, &model) != ALEXNET_OK) {
        fprintf(stderr, "alexnet_model_create: %s\n", alexnet_last_error());
        return 1;
    }
    static expected_output expected; /* 10 KB: off the stack */
    run_backend(model, "reference", &expected);
    run_backend(model, "auto", &expected);
    alexnet_model_destroy(model);
    if (counter.live_blocks != 0)
        FAIL("%zu blocks leaked", counter.live_blocks);
    printf("concurrency: %zu allocations through the shared allocator, %s\n", counter.allocations,
           failures == 0 ? "no failure" : "FAILED");
    return failures == 0 ? 0 : 1;
}
