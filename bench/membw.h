/* The machine's measured memory read bandwidth: threads summing disjoint slices of a buffer much larger
 * than the last-level cache. At batch 1 every weight is read once per inference, so weight bytes divided by
 * this bandwidth is a floor under batch-1 latency that no kernel can beat (unless the weights fit in cache). */
#ifndef BENCH_MEMBW_H
#define BENCH_MEMBW_H

#include <stddef.h>
#include <stdint.h>

typedef struct bench_bandwidth {
    unsigned threads;
    unsigned trials;
    size_t bytes;       /* read per trial */
    double best_gbps;   /* GB/s = 1e9 bytes per second */
    double median_gbps;
} bench_bandwidth;

/* Allocates `bytes` (touched once before timing), runs `trials` trials with `threads` threads, frees it.
 * Returns 0 on failure (out of memory, thread start). */
int bench_bandwidth_measure(size_t bytes, unsigned threads, unsigned trials, bench_bandwidth *out);
/* Where the sums go, so that the reads cannot be optimised away. */
extern volatile uint64_t bench_membw_sink;

#endif
