/* Parallel-for for the CPU backend: the host's job system when it gave one, else a small pool of
 * pthreads that sleep on a condition variable when idle (never spin: on a loaded 2-core machine a
 * spinning worker steals the time the thread it waits for needs). The calling thread always takes part,
 * so a pool of n threads starts n - 1 workers, and num_threads = 1 starts none. */
#ifndef AN_CPU_THREADPOOL_H
#define AN_CPU_THREADPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "alexnet/alexnet.h"

typedef struct an_threadpool an_threadpool;

/* num_threads: 1 = calling thread only, 0 = one per online CPU; parallel_for (may be NULL) replaces the
 * pool entirely: then no thread is created. All memory through `allocator`. */
alexnet_status an_threadpool_create(const alexnet_allocator *allocator, uint32_t num_threads,
                                    alexnet_parallel_for_fn parallel_for, void *parallel_for_host,
                                    an_threadpool **out);
void an_threadpool_destroy(an_threadpool *pool); /* joins the workers; NULL is a no-op */

/* Run task(context, i) for i in [0, count) and return when all are done. Allocates nothing. Tasks must not
 * call an_threadpool_run on the same pool. */
void an_threadpool_run(an_threadpool *pool, alexnet_task_fn task, void *context, size_t count);

/* How many threads may run tasks at once (for choosing a task count); >= 1. */
uint32_t an_threadpool_concurrency(const an_threadpool *pool);

#endif
