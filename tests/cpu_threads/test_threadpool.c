/* The CPU backend's thread pool: every index runs exactly once, the caller returns only when every task has
 * finished, host mode starts no thread, idle workers sleep, running allocates nothing, creation failures are
 * reported and cleaned up, and nothing leaks (memory or threads).
 *
 * Two libc functions are interposed by this program: pthread_create (to make the N-th thread creation
 * fail) and, on glibc without sanitizers, malloc/calloc/realloc (to count every heap allocation made by any
 * thread while a pool runs). */
#include <check.h>
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cpu/threadpool.h"
#include "test_support.h"

/* ---- interposed pthread_create ---------------------------------------------------------------------- */

typedef int (*pthread_create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

static atomic_int thread_create_calls;
static atomic_int thread_create_fail_at; /* 1-based call number to fail with EAGAIN; 0 = never */

int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg)
{
    static pthread_create_fn real_create;
    if (real_create == NULL) {
        void *symbol = dlsym(RTLD_NEXT, "pthread_create");
        memcpy(&real_create, &symbol, sizeof real_create);
    }
    int call = atomic_fetch_add(&thread_create_calls, 1) + 1;
    if (call == atomic_load(&thread_create_fail_at))
        return EAGAIN;
    return real_create(thread, attr, start, arg);
}

static void fail_thread_creation_at(int call)
{
    atomic_store(&thread_create_calls, 0);
    atomic_store(&thread_create_fail_at, call);
}

/* ---- interposed malloc (glibc, no sanitizer: they bring their own allocator) ------------------------ */

#if defined(__GLIBC__) && !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
#define COUNTS_MALLOC 1
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);

static atomic_size_t heap_allocations;

void *malloc(size_t size)
{
    atomic_fetch_add_explicit(&heap_allocations, 1, memory_order_relaxed);
    return __libc_malloc(size);
}

void *calloc(size_t count, size_t size)
{
    atomic_fetch_add_explicit(&heap_allocations, 1, memory_order_relaxed);
    return __libc_calloc(count, size);
}

void *realloc(void *ptr, size_t size)
{
    atomic_fetch_add_explicit(&heap_allocations, 1, memory_order_relaxed);
    return __libc_realloc(ptr, size);
}
#endif

/* ---- helpers ------------------------------------------------------------------------------------------ */

/* The "Threads:" line of /proc/self/status. */
static int process_thread_count(void)
{
    FILE *status = fopen("/proc/self/status", "r");
    ck_assert_ptr_nonnull(status);
    char line[256];
    int threads = -1;
    while (fgets(line, sizeof line, status) != NULL)
        if (sscanf(line, "Threads: %d", &threads) == 1)
            break;
    fclose(status);
    ck_assert_int_gt(threads, 0);
    return threads;
}

static void *do_nothing(void *arg) { return arg; }

/* The thread count before a test creates a pool. One thread is started and joined first: a sanitizer
 * runtime starts a helper thread of its own at the process's first pthread_create, which must not be
 * mistaken for a pool thread. */
static int baseline_thread_count(void)
{
    pthread_t thread;
    ck_assert_int_eq(pthread_create(&thread, NULL, do_nothing, NULL), 0);
    pthread_join(thread, NULL);
    /* The joined thread may still be listed for a moment: wait for two equal readings. */
    int threads = process_thread_count();
    for (int i = 0; i < 100; i++) {
        usleep(2000);
        int now = process_thread_count();
        if (now == threads)
            break;
        threads = now;
    }
    return threads;
}

/* Threads are joined by destroy, but the kernel may list an exiting thread for a moment after
 * pthread_join returns: poll briefly before comparing. */
static int process_thread_count_settled(int expected)
{
    int threads = process_thread_count();
    for (int i = 0; i < 200 && threads != expected; i++) {
        usleep(1000);
        threads = process_thread_count();
    }
    return threads;
}

static double now_seconds(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static an_threadpool *make_pool(const alexnet_allocator *allocator, uint32_t threads)
{
    an_threadpool *pool = NULL;
    alexnet_status status = an_threadpool_create(allocator, threads, NULL, NULL, &pool);
    ck_assert_msg(status == ALEXNET_OK, "create(%u threads): %s", threads, alexnet_last_error());
    ck_assert_ptr_nonnull(pool);
    return pool;
}

/* ---- every index exactly once ------------------------------------------------------------------------- */

/* Plain (non-atomic) counters: an index run twice at once is a data race the thread sanitizer reports,
 * and a missing happens-before between a worker's task and the caller's read is reported too. */
typedef struct index_counts {
    int *hits;
} index_counts;

static void count_index(void *context, size_t index)
{
    index_counts *counts = context;
    counts->hits[index]++;
}

static void check_every_index_once(an_threadpool *pool, size_t count, int repetitions)
{
    index_counts counts = {calloc(count + 1, sizeof(int))};
    for (int r = 0; r < repetitions; r++) {
        memset(counts.hits, 0, (count + 1) * sizeof(int));
        an_threadpool_run(pool, count_index, &counts, count);
        for (size_t i = 0; i < count; i++)
            ck_assert_msg(counts.hits[i] == 1, "count %zu, repetition %d: index %zu ran %d times", count, r, i,
                          counts.hits[i]);
        ck_assert_int_eq(counts.hits[count], 0);
    }
    free(counts.hits);
}

START_TEST(test_every_index_runs_once)
{
    static const uint32_t thread_counts[] = {1, 2, 3, 8};
    static const size_t task_counts[] = {0, 1, 2, 7, 1000};
    for (size_t t = 0; t < sizeof thread_counts / sizeof thread_counts[0]; t++) {
        test_counting_allocator counter;
        alexnet_allocator allocator = test_counting_allocator_make(&counter);
        an_threadpool *pool = make_pool(&allocator, thread_counts[t]);
        ck_assert_uint_eq(an_threadpool_concurrency(pool), thread_counts[t]);
        for (size_t c = 0; c < sizeof task_counts / sizeof task_counts[0]; c++)
            check_every_index_once(pool, task_counts[c], 20);
        an_threadpool_destroy(pool);
        ck_assert_uint_eq(counter.live_blocks, 0);
        ck_assert_uint_eq(counter.size_mismatches, 0);
    }
}
END_TEST

/* Many short runs back to back: workers often wake for a run that is already over while the next one is
 * starting, which is exactly when a stale worker could steal an index of the wrong run. */
START_TEST(test_back_to_back_runs)
{
    an_threadpool *pool = make_pool(NULL, 8);
    index_counts counts = {calloc(16, sizeof(int))};
    for (int r = 0; r < 20000; r++) {
        size_t count = 2 + (size_t)(r % 7);
        memset(counts.hits, 0, 16 * sizeof(int));
        an_threadpool_run(pool, count_index, &counts, count);
        for (size_t i = 0; i < 16; i++)
            ck_assert_msg(counts.hits[i] == (i < count ? 1 : 0), "run %d: index %zu ran %d times", r, i,
                          counts.hits[i]);
    }
    free(counts.hits);
    an_threadpool_destroy(pool);
}
END_TEST

START_TEST(test_null_pool_runs_on_caller)
{
    index_counts counts = {calloc(5, sizeof(int))};
    an_threadpool_run(NULL, count_index, &counts, 5);
    for (size_t i = 0; i < 5; i++)
        ck_assert_int_eq(counts.hits[i], 1);
    free(counts.hits);
    ck_assert_uint_eq(an_threadpool_concurrency(NULL), 1);
    an_threadpool_destroy(NULL);
}
END_TEST

/* ---- threads: how many, their names, their signal mask ----------------------------------------------- */

START_TEST(test_pool_starts_n_minus_one_threads)
{
    int baseline = baseline_thread_count();
    an_threadpool *pool = make_pool(NULL, 8);
    ck_assert_int_eq(process_thread_count(), baseline + 7);
    an_threadpool_destroy(pool);
    ck_assert_int_eq(process_thread_count_settled(baseline), baseline);

    pool = make_pool(NULL, 1);
    ck_assert_int_eq(process_thread_count(), baseline);
    an_threadpool_destroy(pool);
}
END_TEST

START_TEST(test_zero_threads_means_online_cpus)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    uint32_t expected = cpus < 1 ? 1 : cpus > 256 ? 256 : (uint32_t)cpus;
    int baseline = baseline_thread_count();
    an_threadpool *pool = make_pool(NULL, 0);
    ck_assert_uint_eq(an_threadpool_concurrency(pool), expected);
    ck_assert_int_eq(process_thread_count(), baseline + (int)expected - 1);
    check_every_index_once(pool, 100, 5);
    an_threadpool_destroy(pool);
}
END_TEST

START_TEST(test_thread_count_is_capped)
{
    an_threadpool *pool = make_pool(NULL, 100000);
    ck_assert_uint_eq(an_threadpool_concurrency(pool), 256);
    check_every_index_once(pool, 1000, 2);
    an_threadpool_destroy(pool);
}
END_TEST

/* Counts the pool's threads by the names they gave themselves. */
static int threads_named_alexnet(void)
{
    DIR *tasks = opendir("/proc/self/task");
    ck_assert_ptr_nonnull(tasks);
    int named = 0;
    struct dirent *entry;
    while ((entry = readdir(tasks)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        char path[300], name[64] = {0};
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", entry->d_name);
        FILE *comm = fopen(path, "r");
        if (comm == NULL)
            continue;
        if (fgets(name, sizeof name, comm) != NULL && strncmp(name, "alexnet-", 8) == 0)
            named++;
        fclose(comm);
    }
    closedir(tasks);
    return named;
}

START_TEST(test_workers_are_named)
{
    an_threadpool *pool = make_pool(NULL, 4);
    /* Each worker names itself when it starts: give them a moment to have started. */
    int named = 0;
    for (int i = 0; i < 1000 && named != 3; i++) {
        usleep(1000);
        named = threads_named_alexnet();
    }
    ck_assert_int_eq(named, 3);
    an_threadpool_destroy(pool);
}
END_TEST

typedef struct mask_probe {
    pthread_t caller;
    atomic_int worker_tasks;
    atomic_int wrong_masks;
} mask_probe;

static void record_signal_mask(void *context, size_t index)
{
    (void)index;
    mask_probe *probe = context;
    sleep_ms(2); /* keep tasks long enough that the caller cannot take them all */
    if (pthread_equal(pthread_self(), probe->caller))
        return;
    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, NULL, &mask);
    int blocked_async = sigismember(&mask, SIGINT) && sigismember(&mask, SIGTERM) && sigismember(&mask, SIGUSR1) &&
                        sigismember(&mask, SIGCHLD);
    int fault_open = !sigismember(&mask, SIGSEGV) && !sigismember(&mask, SIGBUS);
    if (!blocked_async || !fault_open)
        atomic_fetch_add(&probe->wrong_masks, 1);
    atomic_fetch_add(&probe->worker_tasks, 1);
}

START_TEST(test_workers_block_host_signals)
{
    sigset_t before, after;
    pthread_sigmask(SIG_BLOCK, NULL, &before);
    an_threadpool *pool = make_pool(NULL, 3);
    pthread_sigmask(SIG_BLOCK, NULL, &after);
    ck_assert_int_eq(sigismember(&after, SIGINT), sigismember(&before, SIGINT)); /* caller's mask restored */
    ck_assert_int_eq(sigismember(&after, SIGUSR1), sigismember(&before, SIGUSR1));

    mask_probe probe = {.caller = pthread_self()};
    for (int attempt = 0; attempt < 20 && atomic_load(&probe.worker_tasks) == 0; attempt++)
        an_threadpool_run(pool, record_signal_mask, &probe, 20);
    int worker_tasks = atomic_load(&probe.worker_tasks), wrong_masks = atomic_load(&probe.wrong_masks);
    ck_assert_int_gt(worker_tasks, 0);
    ck_assert_int_eq(wrong_masks, 0);
    an_threadpool_destroy(pool);
}
END_TEST

/* ---- host mode ---------------------------------------------------------------------------------------- */

typedef struct host_job_system {
    int calls;
    size_t tasks;
} host_job_system;

static void host_parallel_for(void *host, alexnet_task_fn task, void *task_context, size_t count)
{
    host_job_system *jobs = host;
    jobs->calls++;
    jobs->tasks += count;
    for (size_t i = count; i > 0; i--) /* any order is allowed: go backwards */
        task(task_context, i - 1);
}

START_TEST(test_host_mode_uses_host_and_starts_no_thread)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    host_job_system jobs = {0};
    int baseline = baseline_thread_count();
    fail_thread_creation_at(0);

    an_threadpool *pool = NULL;
    ck_assert_int_eq(an_threadpool_create(&allocator, 8, host_parallel_for, &jobs, &pool), ALEXNET_OK);
    ck_assert_int_eq(process_thread_count(), baseline);
    int threads_created = atomic_load(&thread_create_calls);
    ck_assert_int_eq(threads_created, 0);
    ck_assert_uint_eq(an_threadpool_concurrency(pool), 8);

    index_counts counts = {calloc(100, sizeof(int))};
    an_threadpool_run(pool, count_index, &counts, 100);
    an_threadpool_run(pool, count_index, &counts, 1);
    an_threadpool_run(pool, count_index, &counts, 0); /* nothing to do: the host is not bothered */
    ck_assert_int_eq(jobs.calls, 2);
    ck_assert_uint_eq(jobs.tasks, 101);
    ck_assert_int_eq(counts.hits[0], 2);
    for (size_t i = 1; i < 100; i++)
        ck_assert_int_eq(counts.hits[i], 1);
    free(counts.hits);

    ck_assert_int_eq(process_thread_count(), baseline);
    an_threadpool_destroy(pool);
    ck_assert_uint_eq(counter.live_blocks, 0);

    /* The options' default num_threads (1) with a host job system: still split for the host's workers. */
    ck_assert_int_eq(an_threadpool_create(&allocator, 1, host_parallel_for, &jobs, &pool), ALEXNET_OK);
    ck_assert_uint_ge(an_threadpool_concurrency(pool), 1);
    ck_assert_int_eq(process_thread_count(), baseline);
    an_threadpool_destroy(pool);
    ck_assert_uint_eq(counter.live_blocks, 0);
}
END_TEST

/* ---- memory and thread leaks ---------------------------------------------------------------------------- */

START_TEST(test_create_destroy_loop_leaks_nothing)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    int baseline = baseline_thread_count();
    index_counts counts = {calloc(4, sizeof(int))};
    for (int i = 0; i < 200; i++) {
        an_threadpool *pool = make_pool(&allocator, 3);
        if (i % 2 == 0) /* half of them destroyed without ever running */
            an_threadpool_run(pool, count_index, &counts, 4);
        an_threadpool_destroy(pool);
        ck_assert_uint_eq(counter.live_blocks, 0);
    }
    free(counts.hits);
    ck_assert_uint_eq(counter.size_mismatches, 0);
    ck_assert_int_eq(process_thread_count_settled(baseline), baseline);
}
END_TEST

START_TEST(test_allocation_failure_is_reported)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    int baseline = baseline_thread_count();
    counter.fail_at = 1;
    an_threadpool *pool = (an_threadpool *)&counter; /* must stay untouched on failure */
    ck_assert_int_eq(an_threadpool_create(&allocator, 4, NULL, NULL, &pool), ALEXNET_E_OUT_OF_MEMORY);
    ck_assert_ptr_eq(pool, (an_threadpool *)&counter);
    ck_assert_str_ne(alexnet_last_error(), "");
    ck_assert_uint_eq(counter.live_blocks, 0);
    ck_assert_int_eq(process_thread_count(), baseline);
}
END_TEST

START_TEST(test_thread_creation_failure_cleans_up)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
    int baseline = baseline_thread_count();
    for (int fail_at = 1; fail_at <= 7; fail_at++) {
        fail_thread_creation_at(fail_at);
        an_threadpool *pool = NULL;
        alexnet_status status = an_threadpool_create(&allocator, 8, NULL, NULL, &pool);
        fail_thread_creation_at(0);
        ck_assert_int_eq(status, ALEXNET_E_BACKEND);
        ck_assert_ptr_null(pool);
        ck_assert_msg(strstr(alexnet_last_error(), "thread") != NULL, "message: %s", alexnet_last_error());
        ck_assert_uint_eq(counter.live_blocks, 0);
        ck_assert_int_eq(process_thread_count_settled(baseline), baseline);
    }
    /* And a pool created afterwards works. */
    an_threadpool *pool = make_pool(&allocator, 8);
    check_every_index_once(pool, 50, 3);
    an_threadpool_destroy(pool);
    ck_assert_uint_eq(counter.live_blocks, 0);
}
END_TEST

START_TEST(test_invalid_arguments)
{
    ck_assert_int_eq(an_threadpool_create(NULL, 2, NULL, NULL, NULL), ALEXNET_E_INVALID_ARGUMENT);
    test_counting_allocator counter;
    alexnet_allocator half = test_counting_allocator_make(&counter);
    half.free = NULL;
    an_threadpool *pool = NULL;
    ck_assert_int_eq(an_threadpool_create(&half, 2, NULL, NULL, &pool), ALEXNET_E_INVALID_ARGUMENT);
    ck_assert_ptr_null(pool);
    /* A NULL allocator means the default one. */
    pool = make_pool(NULL, 2);
    an_threadpool_destroy(pool);
}
END_TEST

/* ---- running allocates nothing ------------------------------------------------------------------------ */

START_TEST(test_run_allocates_nothing)
{
    test_counting_allocator counter;
    alexnet_allocator allocator = test_counting_allocator_make(&counter);
#ifdef COUNTS_MALLOC
    size_t heap_at_start = atomic_load(&heap_allocations);
#endif
    index_counts counts = {calloc(1000, sizeof(int))};
#ifdef COUNTS_MALLOC
    size_t heap_after_calloc = atomic_load(&heap_allocations);
    ck_assert_uint_gt(heap_after_calloc, heap_at_start); /* the interposition is in effect */
#endif
    static const uint32_t thread_counts[] = {1, 2, 8};
    for (size_t t = 0; t < 3; t++) {
        an_threadpool *pool = make_pool(&allocator, thread_counts[t]);
        an_threadpool_run(pool, count_index, &counts, 1000); /* let every worker start up first */
        size_t allocations_before = counter.total_allocations;
#ifdef COUNTS_MALLOC
        size_t heap_before = atomic_load(&heap_allocations);
#endif
        for (int r = 0; r < 200; r++)
            an_threadpool_run(pool, count_index, &counts, (size_t)(r % 1000) + 1);
#ifdef COUNTS_MALLOC
        size_t heap_after = atomic_load(&heap_allocations);
        ck_assert_uint_eq(heap_after, heap_before);
#endif
        ck_assert_uint_eq(counter.total_allocations, allocations_before);
        an_threadpool_destroy(pool);
    }
    free(counts.hits);
    ck_assert_uint_eq(counter.live_blocks, 0);
}
END_TEST

/* ---- the caller waits for every task to finish -------------------------------------------------------- */

typedef struct slow_tasks {
    pthread_t caller;
    atomic_int finished[32];
    atomic_int worker_slept; /* 1 once a worker has taken the 50 ms nap */
} slow_tasks;

/* Index 1 always sleeps 50 ms, wherever it runs. */
static void sleep_in_task_one(void *context, size_t index)
{
    slow_tasks *tasks = context;
    if (index == 1)
        sleep_ms(50);
    atomic_store(&tasks->finished[index], 1);
}

/* Each task takes 2 ms, and the first task a worker (not the caller) gets sleeps another 50 ms: the caller
 * runs out of indices long before that worker is done. */
static void sleep_on_first_worker_task(void *context, size_t index)
{
    slow_tasks *tasks = context;
    sleep_ms(2);
    if (!pthread_equal(pthread_self(), tasks->caller) && atomic_exchange(&tasks->worker_slept, 1) == 0)
        sleep_ms(50);
    atomic_store(&tasks->finished[index], 1);
}

START_TEST(test_run_returns_after_slow_task_finished)
{
    an_threadpool *pool = make_pool(NULL, 2);
    slow_tasks tasks = {.caller = pthread_self()};

    for (int r = 0; r < 5; r++) {
        for (int i = 0; i < 32; i++)
            atomic_store(&tasks.finished[i], 0);
        double start = now_seconds(CLOCK_MONOTONIC);
        an_threadpool_run(pool, sleep_in_task_one, &tasks, 2);
        double elapsed = now_seconds(CLOCK_MONOTONIC) - start;
        for (int i = 0; i < 2; i++)
            ck_assert_msg(atomic_load(&tasks.finished[i]) == 1, "task %d not finished at return", i);
        ck_assert_msg(elapsed >= 0.049, "returned after %.1f ms", elapsed * 1e3);
    }

    int worker_slept = 0;
    for (int r = 0; r < 10 && !worker_slept; r++) {
        for (int i = 0; i < 32; i++)
            atomic_store(&tasks.finished[i], 0);
        atomic_store(&tasks.worker_slept, 0);
        double start = now_seconds(CLOCK_MONOTONIC);
        an_threadpool_run(pool, sleep_on_first_worker_task, &tasks, 20);
        double elapsed = now_seconds(CLOCK_MONOTONIC) - start;
        for (int i = 0; i < 20; i++)
            ck_assert_msg(atomic_load(&tasks.finished[i]) == 1, "task %d not finished at return", i);
        worker_slept = atomic_load(&tasks.worker_slept);
        if (worker_slept)
            ck_assert_msg(elapsed >= 0.049, "returned after %.1f ms", elapsed * 1e3);
    }
    ck_assert_msg(worker_slept, "the worker never took a task in 10 runs of 20 x 2 ms");
    an_threadpool_destroy(pool);
}
END_TEST

/* ---- idle workers sleep ---------------------------------------------------------------------------------- */

START_TEST(test_idle_workers_use_no_cpu)
{
    an_threadpool *pool = make_pool(NULL, 8);
    index_counts counts = {calloc(1000, sizeof(int))};
    an_threadpool_run(pool, count_index, &counts, 1000);
    sleep_ms(20); /* let the workers get back to sleep */

    double cpu_start = now_seconds(CLOCK_PROCESS_CPUTIME_ID);
    sleep_ms(300);
    double cpu_used = now_seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
    ck_assert_msg(cpu_used < 0.030, "an idle pool of 8 threads used %.1f ms of CPU in 300 ms", cpu_used * 1e3);

    free(counts.hits);
    an_threadpool_destroy(pool);
}
END_TEST

/* Workers poll for a next run before they sleep (threadpool.c), for at most ALEXNET_POOL_SPIN_US: even at
 * the largest accepted setting (10 ms) an idle pool is asleep soon after, and a setting out of range or not
 * a number falls back to the default instead of spinning for longer. */
START_TEST(test_polling_before_sleep_is_bounded)
{
    const char *settings[] = {"10000", "99999999", "-5", "12ms", "0"};
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        ck_assert_int_eq(setenv("ALEXNET_POOL_SPIN_US", settings[i], 1), 0);
        an_threadpool *pool = make_pool(NULL, 8);
        index_counts counts = {calloc(1000, sizeof(int))};
        an_threadpool_run(pool, count_index, &counts, 1000);
        sleep_ms(40); /* past the longest poll */

        double cpu_start = now_seconds(CLOCK_PROCESS_CPUTIME_ID);
        sleep_ms(200);
        double cpu_used = now_seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;
        ck_assert_msg(cpu_used < 0.020, "ALEXNET_POOL_SPIN_US=%s: an idle pool of 8 threads used %.1f ms of CPU in "
                      "200 ms", settings[i], cpu_used * 1e3);
        for (int k = 0; k < 1000; k++)
            ck_assert_int_eq(counts.hits[k], 1);
        free(counts.hits);
        an_threadpool_destroy(pool);
    }
    ck_assert_int_eq(unsetenv("ALEXNET_POOL_SPIN_US"), 0);
}
END_TEST

static Suite *threadpool_suite(void)
{
    Suite *suite = suite_create("threadpool");
    TCase *runs = tcase_create("runs");
    tcase_set_timeout(runs, 300);
    tcase_add_test(runs, test_every_index_runs_once);
    tcase_add_test(runs, test_back_to_back_runs);
    tcase_add_test(runs, test_null_pool_runs_on_caller);
    tcase_add_test(runs, test_run_returns_after_slow_task_finished);
    tcase_add_test(runs, test_run_allocates_nothing);
    suite_add_tcase(suite, runs);

    TCase *threads = tcase_create("threads");
    tcase_set_timeout(threads, 300);
    tcase_add_test(threads, test_pool_starts_n_minus_one_threads);
    tcase_add_test(threads, test_zero_threads_means_online_cpus);
    tcase_add_test(threads, test_thread_count_is_capped);
    tcase_add_test(threads, test_workers_are_named);
    tcase_add_test(threads, test_workers_block_host_signals);
    tcase_add_test(threads, test_host_mode_uses_host_and_starts_no_thread);
    tcase_add_test(threads, test_idle_workers_use_no_cpu);
    tcase_add_test(threads, test_polling_before_sleep_is_bounded);
    suite_add_tcase(suite, threads);

    TCase *lifetime = tcase_create("lifetime");
    tcase_set_timeout(lifetime, 300);
    tcase_add_test(lifetime, test_create_destroy_loop_leaks_nothing);
    tcase_add_test(lifetime, test_allocation_failure_is_reported);
    tcase_add_test(lifetime, test_thread_creation_failure_cleans_up);
    tcase_add_test(lifetime, test_invalid_arguments);
    suite_add_tcase(suite, lifetime);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(threadpool_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
