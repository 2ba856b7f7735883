/* The machine's measured FMA peak: tight loops of independent fused multiply-adds on full vector
 * registers, on one thread and on several (pthreads). The kernels live in their own files, compiled with
 * their own ISA flags (-mavx2 -mfma, -mavx512f); the choice is made at run time with
 * __builtin_cpu_supports, so the program runs on any x86-64 (and builds, without the probe, elsewhere).
 *
 * FLOPs count a fused multiply-add as 2, like the library's profile. */
#ifndef BENCH_FMA_PEAK_H
#define BENCH_FMA_PEAK_H

#include <stdint.h>

typedef enum bench_isa {
    BENCH_ISA_AVX2 = 0,   /* 256-bit AVX2 + FMA3 */
    BENCH_ISA_AVX512 = 1, /* 512-bit AVX-512F */
    BENCH_ISA_COUNT = 2
} bench_isa;

typedef struct bench_peak {
    bench_isa isa;
    unsigned threads;
    unsigned trials;
    double best_gflops;   /* the fastest trial: the peak is what the machine can do */
    double median_gflops; /* how often it can do it (a shared machine time-slices its vCPUs) */
    double worst_gflops;
} bench_peak;

const char *bench_isa_name(bench_isa isa);
/* Nonzero when the probe for isa was compiled in and this CPU (and OS) runs it. */
int bench_isa_usable(bench_isa isa);
/* Run `trials` trials of about trial_seconds each with `threads` threads (the caller's plus threads - 1
 * pthreads, started together at a barrier; a trial lasts from the first start to the last finish).
 * Returns 0 if the ISA is unusable or a thread could not be started. */
int bench_peak_measure(bench_isa isa, unsigned threads, unsigned trials, double trial_seconds, bench_peak *out);

/* The kernels (fma_avx2.c, fma_avx512.c): `iterations` rounds of independent FMA chains; they return a
 * value that depends on every chain so that nothing can be optimised away. */
float bench_fma_kernel_avx2(uint64_t iterations, float seed);
float bench_fma_kernel_avx512(uint64_t iterations, float seed);
#define BENCH_AVX2_FLOPS_PER_ITERATION (12.0 * 8.0 * 2.0)    /* 12 chains x 8 lanes x (mul + add) */
#define BENCH_AVX512_FLOPS_PER_ITERATION (24.0 * 16.0 * 2.0) /* 24 chains x 16 lanes x (mul + add) */

#endif
