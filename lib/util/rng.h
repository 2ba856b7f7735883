/* Seeded random numbers that are bit-identical on every platform: integer xoshiro256** for the stream,
 * and normals from the polar method with our own logarithm (a fixed series in double arithmetic), so no
 * libm transcendental — whose last bit differs between C libraries — enters the result. The library is
 * built with -ffp-contract=off, so no FMA contraction changes rounding between compilers or ISAs. */
#ifndef AN_UTIL_RNG_H
#define AN_UTIL_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct an_rng {
    uint64_t state[4];
} an_rng;

/* Seed from a 64-bit value and a stream number (e.g. the tensor index), so streams are independent. */
void an_rng_seed(an_rng *rng, uint64_t seed, uint64_t stream);
uint64_t an_rng_next(an_rng *rng);
/* Uniform double in [0, 1) with 53 random bits. */
double an_rng_uniform(an_rng *rng);
/* Natural logarithm of x > 0, deterministic (used by the normal generator; exposed for tests). */
double an_deterministic_log(double x);

/* dst[i] = mean + std * N(0, 1), rounded to float. */
void an_rng_fill_normal(an_rng *rng, float *dst, size_t count, double mean, double std);
/* dst[i] uniform in [low, high). */
void an_rng_fill_uniform(an_rng *rng, float *dst, size_t count, double low, double high);

#endif
