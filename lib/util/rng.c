#include "util/rng.h"

#include <math.h>

static uint64_t an_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void an_rng_seed(an_rng *rng, uint64_t seed, uint64_t stream)
{
    uint64_t x = seed ^ (stream * 0xD1B54A32D192ED03ull);
    for (int i = 0; i < 4; i++)
        rng->state[i] = an_splitmix64(&x);
}

static inline uint64_t an_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t an_rng_next(an_rng *rng)
{
    uint64_t *s = rng->state;
    uint64_t result = an_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = an_rotl(s[3], 45);
    return result;
}

double an_rng_uniform(an_rng *rng) { return (double)(an_rng_next(rng) >> 11) * 0x1.0p-53; }

double an_deterministic_log(double x)
{
    /* x = m * 2^e with m in [sqrt(1/2), sqrt(2)); ln m = 2 atanh(t), t = (m-1)/(m+1), |t| <= 0.172, so
     * the odd terms of the atanh series converge fast. frexp is exact. */
    int e;
    double m = frexp(x, &e);
    if (m < 0.70710678118654752440) {
        m *= 2.0;
        e -= 1;
    }
    double t = (m - 1.0) / (m + 1.0);
    double t2 = t * t;
    /* Horner form of t + t^3/3 + ... + t^15/15 with the reciprocals as constants. The truncation error,
     * below t^17/17 < 1e-14, is far under what a float weight can show; what matters is that the same
     * operations run in the same order everywhere. */
    static const double inverse_odd[8] = {1.0, 1.0 / 3, 1.0 / 5, 1.0 / 7, 1.0 / 9, 1.0 / 11, 1.0 / 13, 1.0 / 15};
    double poly = inverse_odd[7];
    for (int k = 6; k >= 0; k--)
        poly = poly * t2 + inverse_odd[k];
    double sum = t * poly;
    return 2.0 * sum + (double)e * 0.69314718055994530942;
}

/* Marsaglia's polar method: two independent normals per accepted pair. */
static void an_rng_normal_pair(an_rng *rng, double *a, double *b)
{
    double u, v, s;
    do {
        u = 2.0 * an_rng_uniform(rng) - 1.0;
        v = 2.0 * an_rng_uniform(rng) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    double factor = sqrt(-2.0 * an_deterministic_log(s) / s); /* sqrt is correctly rounded by IEEE 754 */
    *a = u * factor;
    *b = v * factor;
}

void an_rng_fill_normal(an_rng *rng, float *dst, size_t count, double mean, double std)
{
    size_t i = 0;
    for (; i + 1 < count; i += 2) {
        double a, b;
        an_rng_normal_pair(rng, &a, &b);
        dst[i] = (float)(mean + std * a);
        dst[i + 1] = (float)(mean + std * b);
    }
    if (i < count) {
        double a, b;
        an_rng_normal_pair(rng, &a, &b);
        dst[i] = (float)(mean + std * a);
    }
}

void an_rng_fill_uniform(an_rng *rng, float *dst, size_t count, double low, double high)
{
    double width = high - low;
    for (size_t i = 0; i < count; i++)
        dst[i] = (float)(low + width * an_rng_uniform(rng));
}
