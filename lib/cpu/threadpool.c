/* The CPU backend's parallel-for: the host's job system when it gave one, else n - 1 pthread workers plus
 * the calling thread.
 *
 * Design, driven by one requirement: on a loaded machine (another process keeping a core busy) two threads
 * must not be slower than one. So:
 *  - idle workers sleep on a condition variable. Before sleeping, a worker (and the caller, before waiting
 *    for a claimed task) polls for up to spin_ns (ALEXNET_POOL_SPIN_US, default AN_THREADPOOL_SPIN_US),
 *    calling sched_yield() between polls: a thread it waits for that is runnable on the same core gets the
 *    core at once, so the poll never holds up the thread it waits for. Why poll at all: an inference is
 *    a few dozen runs with short serial gaps, and a worker that went to sleep in a gap costs the next run
 *    the wake-up of a halted vCPU (tens to hundreds of microseconds in a VM); measured on the 2-vCPU KVM
 *    guest, batch-1 convolutions at 2 threads took ~10% longer without it (docs/PERFORMANCE.md). After the
 *    bound every thread sleeps: a library that is idle between inferences burns nothing;
 *  - tasks are claimed one index at a time from a shared counter, and the caller claims too, so a worker
 *    that the scheduler has not run yet simply gets nothing and the caller does its share;
 *  - the caller waits (on a condition variable) only for tasks that were actually claimed and are still
 *    running, never for a worker that has not woken up.
 *
 * The claim counter carries the run's number (epoch) in its high 32 bits and the next index in its low 32
 * bits, and indices are taken with compare-and-swap rather than a bare fetch-add. A worker can wake up late,
 * after the run it was woken for has finished and the next run has started; with a bare counter it would
 * take an index of the new run and execute it with the old run's task. With the epoch in the word its
 * compare-and-swap fails instead, and it goes back to sleep. A run with more than 2^32 - 1 tasks is split
 * into several runs.
 *
 * Running allocates nothing: the run's description lives in the pool, and all synchronisation objects are
 * created with it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pthread_setname_np */
#endif

#include "cpu/threadpool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/error.h"

/* More threads than this only adds wake-up cost: no layer of AlexNet splits into that many useful tasks. */
#define AN_THREADPOOL_MAX_THREADS 256u
/* Indices of one run must fit the low half of the claim word. */
#define AN_THREADPOOL_MAX_RUN_TASKS UINT32_MAX
/* How long a thread polls before it sleeps (see the top), in microseconds, unless ALEXNET_POOL_SPIN_US
 * (0 .. AN_THREADPOOL_MAX_SPIN_US) says otherwise. */
#define AN_THREADPOOL_SPIN_US 100u
#define AN_THREADPOOL_MAX_SPIN_US 10000u

/* What one run executes: task(context, base + i) for i in [0, count). */
typedef struct an_run_desc {
    alexnet_task_fn task;
    void *context;
    size_t base;
    uint32_t count;
} an_run_desc;

typedef struct an_worker {
    an_threadpool *pool;
    pthread_t thread;
    uint32_t number; /* 1..n-1; the calling thread is 0 */
} an_worker;

struct an_threadpool {
    /* Every participating thread hits these two on every task: each gets its own cache line so that they
     * do not also invalidate the mostly-read fields below. */
    _Alignas(64) _Atomic uint64_t claim; /* (epoch << 32) | next unclaimed index */
    _Alignas(64) _Atomic uint32_t completed; /* tasks of the current run that have returned */

    _Alignas(64) pthread_mutex_t mutex;
    pthread_cond_t run_posted;   /* workers sleep here between runs */
    pthread_cond_t run_finished; /* the caller sleeps here for tasks still running elsewhere */
    uint32_t epoch;              /* number of the latest run; guarded by mutex */
    an_run_desc run;             /* the latest run; guarded by mutex */
    int stopping;                /* guarded by mutex */
    int sync_ready;              /* mutex and condition variables are initialised */

    alexnet_allocator allocator;
    size_t bytes; /* size of this allocation, for an_free */
    alexnet_parallel_for_fn host_parallel_for;
    void *host;
    uint32_t concurrency;
    uint32_t worker_count; /* workers running (all of them once creation succeeded) */
    uint64_t spin_ns;      /* how long a thread polls before it sleeps; 0: never */
    an_worker workers[];
};

static uint32_t an_online_cpus(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1)
        return 1;
    if ((unsigned long)cpus > AN_THREADPOOL_MAX_THREADS)
        return AN_THREADPOOL_MAX_THREADS;
    return (uint32_t)cpus;
}

/* Threads of the built-in pool, caller included. */
static uint32_t an_pool_thread_count(uint32_t requested)
{
    if (requested == 0)
        return an_online_cpus();
    return requested > AN_THREADPOOL_MAX_THREADS ? AN_THREADPOOL_MAX_THREADS : requested;
}

/* How many tasks a host job system can run at once is unknown to us. num_threads > 1 is the host telling
 * us; otherwise (0, or 1, which is the options' default and means "start no thread" — moot here, since the
 * host owns the threads) assume its workers cover the online CPUs, so that the backend still splits work. */
static uint32_t an_host_concurrency(uint32_t requested)
{
    if (requested > 1)
        return requested > AN_THREADPOOL_MAX_THREADS ? AN_THREADPOOL_MAX_THREADS : requested;
    return an_online_cpus();
}

/* ---- polling before sleeping ----------------------------------------------------------------------- */

/* ALEXNET_POOL_SPIN_US, when it is a whole number within bounds; else the default. */
static uint64_t an_spin_ns_setting(void)
{
    const char *text = getenv("ALEXNET_POOL_SPIN_US");
    if (text != NULL && *text != '\0') {
        char *end = NULL;
        unsigned long us = strtoul(text, &end, 10);
        if (*end == '\0' && text[0] != '-' && us <= AN_THREADPOOL_MAX_SPIN_US)
            return (uint64_t)us * 1000u;
    }
    return (uint64_t)AN_THREADPOOL_SPIN_US * 1000u;
}

static uint64_t an_monotonic_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* A run after `epoch` was posted (the claim word carries the latest run's number). */
static int an_run_posted_after(an_threadpool *pool, uint32_t epoch)
{
    return (uint32_t)(atomic_load_explicit(&pool->claim, memory_order_relaxed) >> 32) != epoch;
}

/* All `count` tasks of the current run have returned (acquire: their writes are visible). */
static int an_run_completed(an_threadpool *pool, uint32_t count)
{
    return atomic_load_explicit(&pool->completed, memory_order_acquire) == count;
}

/* Polls done(pool, value) for up to spin_ns, yielding the core between polls; returns its last answer. */
static int an_poll(an_threadpool *pool, int (*done)(an_threadpool *, uint32_t), uint32_t value)
{
    if (done(pool, value))
        return 1;
    if (pool->spin_ns == 0)
        return 0;
    const uint64_t start = an_monotonic_ns();
    do {
        sched_yield();
        if (done(pool, value))
            return 1;
    } while (an_monotonic_ns() - start < pool->spin_ns);
    return 0;
}

/* ---- workers ---------------------------------------------------------------------------------------- */

static void an_name_this_thread(uint32_t number)
{
    char name[16]; /* Linux's limit, terminator included */
    snprintf(name, sizeof name, "alexnet-%u", (unsigned)number);
#if defined(__APPLE__)
    pthread_setname_np(name);
#elif defined(__linux__) || defined(__GLIBC__)
    pthread_setname_np(pthread_self(), name);
#else
    (void)name;
#endif
}

/* Take the next unclaimed index of run `epoch`. Returns 0 when that run has none left or is over. */
static int an_claim_index(an_threadpool *pool, uint32_t epoch, uint32_t count, uint32_t *index)
{
    uint64_t word = atomic_load_explicit(&pool->claim, memory_order_relaxed);
    for (;;) {
        uint32_t next = (uint32_t)word;
        if ((uint32_t)(word >> 32) != epoch || next >= count)
            return 0;
        /* next < count <= UINT32_MAX, so word + 1 never carries into the epoch. */
        if (atomic_compare_exchange_weak_explicit(&pool->claim, &word, word + 1, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            *index = next;
            return 1;
        }
    }
}

/* The last task of a run finished on a worker: wake the caller if it is waiting. Taking the mutex orders
 * this after the caller's check-then-wait, so the wake-up cannot be lost. */
static void an_signal_run_finished(an_threadpool *pool)
{
    pthread_mutex_lock(&pool->mutex);
    pthread_cond_signal(&pool->run_finished);
    pthread_mutex_unlock(&pool->mutex);
}

/* Claim and execute tasks of run `epoch` until none is left. */
static void an_work_on_run(an_threadpool *pool, const an_run_desc *run, uint32_t epoch, int is_caller)
{
    uint32_t index;
    while (an_claim_index(pool, epoch, run->count, &index)) {
        run->task(run->context, run->base + index);
        /* Release: the task's writes are visible to the caller once it sees the count. */
        uint32_t done = atomic_fetch_add_explicit(&pool->completed, 1, memory_order_acq_rel) + 1;
        if (done == run->count && !is_caller)
            an_signal_run_finished(pool);
    }
}

static void *an_worker_main(void *arg)
{
    an_worker *worker = arg;
    an_threadpool *pool = worker->pool;
    an_name_this_thread(worker->number);

    uint32_t seen_epoch = 0; /* the pool starts at epoch 0, before any run */
    pthread_mutex_lock(&pool->mutex);
    for (;;) {
        if (!pool->stopping && pool->epoch == seen_epoch) { /* poll a while before sleeping (see the top) */
            pthread_mutex_unlock(&pool->mutex);
            an_poll(pool, an_run_posted_after, seen_epoch);
            pthread_mutex_lock(&pool->mutex);
        }
        while (!pool->stopping && pool->epoch == seen_epoch)
            pthread_cond_wait(&pool->run_posted, &pool->mutex);
        if (pool->stopping)
            break;
        /* Join the latest run; runs missed while asleep are already finished. */
        seen_epoch = pool->epoch;
        an_run_desc run = pool->run;
        pthread_mutex_unlock(&pool->mutex);
        an_work_on_run(pool, &run, seen_epoch, 0);
        pthread_mutex_lock(&pool->mutex);
    }
    pthread_mutex_unlock(&pool->mutex);
    return NULL;
}

/* ---- creation and destruction --------------------------------------------------------------------- */

static alexnet_status an_init_sync(an_threadpool *pool)
{
    int err = pthread_mutex_init(&pool->mutex, NULL);
    if (err != 0)
        return an_error(ALEXNET_E_BACKEND, "thread pool: creating a mutex failed (error %d)", err);
    err = pthread_cond_init(&pool->run_posted, NULL);
    if (err != 0) {
        pthread_mutex_destroy(&pool->mutex);
        return an_error(ALEXNET_E_BACKEND, "thread pool: creating a condition variable failed (error %d)", err);
    }
    err = pthread_cond_init(&pool->run_finished, NULL);
    if (err != 0) {
        pthread_cond_destroy(&pool->run_posted);
        pthread_mutex_destroy(&pool->mutex);
        return an_error(ALEXNET_E_BACKEND, "thread pool: creating a condition variable failed (error %d)", err);
    }
    pool->sync_ready = 1;
    return ALEXNET_OK;
}

static void an_destroy_sync(an_threadpool *pool)
{
    if (!pool->sync_ready)
        return;
    pthread_cond_destroy(&pool->run_finished);
    pthread_cond_destroy(&pool->run_posted);
    pthread_mutex_destroy(&pool->mutex);
    pool->sync_ready = 0;
}

/* Workers block every asynchronous signal so that the host's handlers and sigwait() loops keep receiving
 * them on the host's own threads. Faults stay unblocked: a fault raised while its signal is blocked kills
 * the process outright, bypassing a crash handler the host installed. */
static void an_worker_signal_mask(sigset_t *mask)
{
    sigfillset(mask);
    sigdelset(mask, SIGSEGV);
    sigdelset(mask, SIGBUS);
    sigdelset(mask, SIGFPE);
    sigdelset(mask, SIGILL);
#ifdef SIGTRAP
    sigdelset(mask, SIGTRAP);
#endif
#ifdef SIGSYS
    sigdelset(mask, SIGSYS);
#endif
}

static const char *an_thread_error_text(int err)
{
    switch (err) {
    case EAGAIN: return "insufficient resources or the thread limit was reached";
    case EPERM: return "not permitted";
    case EINVAL: return "invalid thread attributes";
    default: return "unexpected error";
    }
}

/* Wake every worker, tell it to exit, and join it. */
static void an_stop_workers(an_threadpool *pool)
{
    if (pool->worker_count == 0)
        return;
    pthread_mutex_lock(&pool->mutex);
    pool->stopping = 1;
    pthread_cond_broadcast(&pool->run_posted);
    pthread_mutex_unlock(&pool->mutex);
    for (uint32_t i = 0; i < pool->worker_count; i++)
        pthread_join(pool->workers[i].thread, NULL);
    pool->worker_count = 0;
}

/* Start `count` workers; on failure the ones already started are stopped again. */
static alexnet_status an_start_workers(an_threadpool *pool, uint32_t count)
{
    /* New threads inherit the creator's mask: block first, so no signal can reach a worker in the window
     * before it could block signals itself, then restore the caller's mask. */
    sigset_t worker_mask, caller_mask;
    an_worker_signal_mask(&worker_mask);
    pthread_sigmask(SIG_SETMASK, &worker_mask, &caller_mask);

    int err = 0;
    for (uint32_t i = 0; i < count; i++) {
        an_worker *worker = &pool->workers[i];
        worker->pool = pool;
        worker->number = i + 1;
        err = pthread_create(&worker->thread, NULL, an_worker_main, worker);
        if (err != 0)
            break;
        pool->worker_count = i + 1;
    }
    pthread_sigmask(SIG_SETMASK, &caller_mask, NULL);

    if (err == 0)
        return ALEXNET_OK;
    uint32_t started = pool->worker_count;
    an_stop_workers(pool);
    return an_error(ALEXNET_E_BACKEND, "thread pool: starting worker thread %u of %u failed: %s (error %d)",
                    (unsigned)started + 1, (unsigned)count, an_thread_error_text(err), err);
}

alexnet_status an_threadpool_create(const alexnet_allocator *allocator, uint32_t num_threads,
                                    alexnet_parallel_for_fn parallel_for, void *parallel_for_host,
                                    an_threadpool **out)
{
    if (out == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "thread pool: output pointer is NULL");
    alexnet_allocator resolved;
    alexnet_status status = an_allocator_resolve(allocator, &resolved);
    if (status != ALEXNET_OK)
        return status;

    /* With a host job system we own no thread at all. */
    uint32_t threads = parallel_for != NULL ? 1 : an_pool_thread_count(num_threads);
    uint32_t worker_count = threads - 1;
    size_t bytes = sizeof(an_threadpool) + (size_t)worker_count * sizeof(an_worker);
    an_threadpool *pool = an_alloc(&resolved, bytes, "thread pool");
    if (pool == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    memset(pool, 0, bytes);
    atomic_init(&pool->claim, 0);
    atomic_init(&pool->completed, 0);
    pool->allocator = resolved;
    pool->bytes = bytes;
    pool->host_parallel_for = parallel_for;
    pool->host = parallel_for_host;
    pool->concurrency = parallel_for != NULL ? an_host_concurrency(num_threads) : threads;
    pool->spin_ns = an_spin_ns_setting();

    if (worker_count > 0) {
        status = an_init_sync(pool);
        if (status == ALEXNET_OK)
            status = an_start_workers(pool, worker_count);
        if (status != ALEXNET_OK) {
            an_destroy_sync(pool);
            an_free(&resolved, pool, bytes);
            return status;
        }
    }
    *out = pool;
    return ALEXNET_OK;
}

void an_threadpool_destroy(an_threadpool *pool)
{
    if (pool == NULL)
        return;
    an_stop_workers(pool);
    an_destroy_sync(pool);
    alexnet_allocator allocator = pool->allocator;
    an_free(&allocator, pool, pool->bytes);
}

uint32_t an_threadpool_concurrency(const an_threadpool *pool)
{
    return pool != NULL ? pool->concurrency : 1;
}

/* ---- running ---------------------------------------------------------------------------------------- */

static void an_run_on_caller(alexnet_task_fn task, void *context, size_t count)
{
    for (size_t i = 0; i < count; i++)
        task(context, i);
}

/* Wake as many workers as there are tasks beyond the caller's first: waking more would only cost them a
 * context switch to find nothing. A worker that is between runs rather than asleep joins on its own. */
static void an_wake_workers(an_threadpool *pool, uint32_t count)
{
    if (count - 1 >= pool->worker_count) {
        pthread_cond_broadcast(&pool->run_posted);
        return;
    }
    for (uint32_t i = 0; i + 1 < count; i++)
        pthread_cond_signal(&pool->run_posted);
}

static void an_run_on_pool(an_threadpool *pool, alexnet_task_fn task, void *context, size_t base, uint32_t count)
{
    an_run_desc run = {task, context, base, count};

    pthread_mutex_lock(&pool->mutex);
    uint32_t epoch = ++pool->epoch;
    pool->run = run;
    atomic_store_explicit(&pool->completed, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->claim, (uint64_t)epoch << 32, memory_order_relaxed);
    an_wake_workers(pool, count);
    pthread_mutex_unlock(&pool->mutex);

    an_work_on_run(pool, &run, epoch, 1);

    /* Every index is claimed; wait only for tasks still running on workers. Acquire pairs with the
     * workers' release increments, so their results are visible when this returns. */
    if (an_poll(pool, an_run_completed, count))
        return;
    pthread_mutex_lock(&pool->mutex);
    while (atomic_load_explicit(&pool->completed, memory_order_acquire) != count)
        pthread_cond_wait(&pool->run_finished, &pool->mutex);
    pthread_mutex_unlock(&pool->mutex);
}

void an_threadpool_run(an_threadpool *pool, alexnet_task_fn task, void *context, size_t count)
{
    if (count == 0)
        return;
    if (pool != NULL && pool->host_parallel_for != NULL) {
        pool->host_parallel_for(pool->host, task, context, count);
        return;
    }
    /* One task, or no worker: the round trip through the pool would be pure overhead. */
    if (pool == NULL || pool->worker_count == 0 || count == 1) {
        an_run_on_caller(task, context, count);
        return;
    }
    for (size_t base = 0; base < count;) {
        size_t left = count - base;
        uint32_t chunk = left > AN_THREADPOOL_MAX_RUN_TASKS ? AN_THREADPOOL_MAX_RUN_TASKS : (uint32_t)left;
        an_run_on_pool(pool, task, context, base, chunk);
        base += chunk;
    }
}
