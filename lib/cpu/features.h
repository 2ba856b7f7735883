/* Which SIMD instruction sets this CPU (and OS) can run, probed once per process: cpuid and xgetbv on x86
 * (AVX state enabled by the OS, not just the CPU flag), hwcaps on Arm. ALEXNET_CPU_ISA=scalar|avx2|avx512|neon
 * forces one set for testing. */
#ifndef AN_CPU_FEATURES_H
#define AN_CPU_FEATURES_H

#include <stdint.h>

#include "alexnet/alexnet.h"

typedef enum an_cpu_isa {
    AN_ISA_SCALAR = 0,
    AN_ISA_AVX2 = 1,   /* AVX2 + FMA3 (+ F16C) */
    AN_ISA_AVX512 = 2, /* AVX-512 F + BW + DQ + VL */
    AN_ISA_NEON = 3,   /* AArch64 Advanced SIMD */
    AN_ISA_COUNT = 4
} an_cpu_isa;

/* Bit (1u << isa) set for every set this machine can run; scalar always. Thread-safe, probed once. */
uint32_t an_cpu_supported_isas(void);
const char *an_cpu_isa_name(an_cpu_isa isa); /* "scalar", "avx2", "avx512", "neon" */
/* The set to use: ALEXNET_CPU_ISA if set (ALEXNET_E_UNSUPPORTED with a message if this machine or this
 * build cannot run it, ALEXNET_E_INVALID_ARGUMENT if the name is unknown), else the best supported one
 * that this build compiled kernels for. */
alexnet_status an_cpu_select_isa(an_cpu_isa *out);

#endif
