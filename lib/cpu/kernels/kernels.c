/* Which kernel tables this build has. Portable code: compiled with the library's ordinary flags. */
#include "cpu/kernels/kernels.h"

#ifndef AN_HAVE_AVX2_KERNELS
#define AN_HAVE_AVX2_KERNELS 0
#endif
#ifndef AN_HAVE_AVX512_KERNELS
#define AN_HAVE_AVX512_KERNELS 0
#endif
#ifndef AN_HAVE_NEON_KERNELS
#define AN_HAVE_NEON_KERNELS 0
#endif

const an_cpu_kernels *an_cpu_kernels_for(an_cpu_isa isa)
{
    switch (isa) {
    case AN_ISA_SCALAR: return &an_cpu_kernels_scalar;
#if AN_HAVE_AVX2_KERNELS
    case AN_ISA_AVX2: return &an_cpu_kernels_avx2;
#endif
#if AN_HAVE_AVX512_KERNELS
    case AN_ISA_AVX512: return &an_cpu_kernels_avx512;
#endif
#if AN_HAVE_NEON_KERNELS
    case AN_ISA_NEON: return &an_cpu_kernels_neon;
#endif
    default: return NULL;
    }
}
