/* Which SIMD sets this CPU and OS can run, and which one the CPU backend uses.
 *
 * A CPU flag alone is not enough on x86: the OS must also save the wider registers on context switches
 * (XCR0, read with xgetbv), or the first AVX instruction faults. The probe runs once per process
 * (pthread_once) and also records, for each set it rejects, a sentence saying why, so that a forced
 * ALEXNET_CPU_ISA can be refused with a useful message. */
#include "cpu/features.h"

#include <pthread.h>
#include <stdlib.h>

#include "util/error.h"

#if defined(__x86_64__) || defined(__i386__)
#define AN_CPU_X86 1
#include <cpuid.h>
#elif defined(__aarch64__)
#define AN_CPU_ARM64 1
#if defined(__linux__)
#include <sys/auxv.h>
#endif
#endif

/* Set to 1 by the build for each kernel family it compiled; absent means not compiled. */
#ifndef AN_HAVE_AVX2_KERNELS
#define AN_HAVE_AVX2_KERNELS 0
#endif
#ifndef AN_HAVE_AVX512_KERNELS
#define AN_HAVE_AVX512_KERNELS 0
#endif
#ifndef AN_HAVE_NEON_KERNELS
#define AN_HAVE_NEON_KERNELS 0
#endif

#define AN_ISA_BIT(isa) (1u << (unsigned)(isa))

typedef struct an_cpu_probe {
    uint32_t supported;                /* AN_ISA_BIT of every set this machine can run */
    const char *missing[AN_ISA_COUNT]; /* for each set it cannot: why (static text) */
} an_cpu_probe;

static an_cpu_probe an_probe_result;
static pthread_once_t an_probe_once = PTHREAD_ONCE_INIT;

static const char *const an_isa_names[AN_ISA_COUNT] = {"scalar", "avx2", "avx512", "neon"};

#if defined(AN_CPU_X86)
/* XCR0 bits: the register state the OS saves and restores. */
#define AN_XCR0_SSE 0x2u        /* XMM */
#define AN_XCR0_AVX 0x4u        /* upper halves of YMM */
#define AN_XCR0_OPMASK 0x20u    /* k0-k7 */
#define AN_XCR0_ZMM_HI256 0x40u /* upper halves of ZMM0-15 */
#define AN_XCR0_HI16_ZMM 0x80u  /* ZMM16-31 */

/* xgetbv as an instruction rather than the intrinsic, which would need the whole file built with -mxsave. */
static uint64_t an_xgetbv0(void)
{
    uint32_t low, high;
    __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
    return ((uint64_t)high << 32) | low;
}

static int an_bit(unsigned value, unsigned bit) { return (int)((value >> bit) & 1u); }

/* NULL when the AVX2 set (AVX2, FMA3, F16C, with YMM state enabled) can run, else why not. */
static const char *an_avx2_missing(unsigned leaf1_ecx, unsigned leaf7_ebx, uint64_t xcr0)
{
    if (!an_bit(leaf1_ecx, 28))
        return "this CPU lacks AVX";
    if (!an_bit(leaf7_ebx, 5))
        return "this CPU lacks AVX2";
    if (!an_bit(leaf1_ecx, 12))
        return "this CPU lacks FMA3";
    if (!an_bit(leaf1_ecx, 29))
        return "this CPU lacks F16C";
    uint64_t needed = AN_XCR0_SSE | AN_XCR0_AVX;
    if (!an_bit(leaf1_ecx, 27) || (xcr0 & needed) != needed)
        return "the operating system does not enable AVX (YMM) register state";
    return NULL;
}

/* NULL when the AVX-512 set (F, BW, DQ, VL, with ZMM and opmask state enabled) can run, else why not. */
static const char *an_avx512_missing(unsigned leaf1_ecx, unsigned leaf7_ebx, uint64_t xcr0)
{
    if (!an_bit(leaf7_ebx, 16))
        return "this CPU lacks AVX-512F";
    if (!an_bit(leaf7_ebx, 30))
        return "this CPU lacks AVX-512BW";
    if (!an_bit(leaf7_ebx, 17))
        return "this CPU lacks AVX-512DQ";
    if (!an_bit(leaf7_ebx, 31))
        return "this CPU lacks AVX-512VL";
    uint64_t needed = AN_XCR0_SSE | AN_XCR0_AVX | AN_XCR0_OPMASK | AN_XCR0_ZMM_HI256 | AN_XCR0_HI16_ZMM;
    if (!an_bit(leaf1_ecx, 27) || (xcr0 & needed) != needed)
        return "the operating system does not enable AVX-512 (ZMM and opmask) register state";
    /* The AVX-512 kernels use AVX2 and FMA for their edges. */
    return an_avx2_missing(leaf1_ecx, leaf7_ebx, xcr0);
}

static void an_probe_cpu(an_cpu_probe *probe)
{
    probe->missing[AN_ISA_NEON] = "NEON is an Arm instruction set and this is an x86 CPU";
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) {
        probe->missing[AN_ISA_AVX2] = "this CPU does not report its features (cpuid leaf 1)";
        probe->missing[AN_ISA_AVX512] = probe->missing[AN_ISA_AVX2];
        return;
    }
    unsigned leaf1_ecx = ecx;
    /* xgetbv faults unless the OS set CR4.OSXSAVE, which cpuid reports as OSXSAVE. */
    uint64_t xcr0 = an_bit(leaf1_ecx, 27) ? an_xgetbv0() : 0;
    unsigned leaf7_ebx = 0;
    if (__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx))
        leaf7_ebx = ebx;

    probe->missing[AN_ISA_AVX2] = an_avx2_missing(leaf1_ecx, leaf7_ebx, xcr0);
    probe->missing[AN_ISA_AVX512] = an_avx512_missing(leaf1_ecx, leaf7_ebx, xcr0);
}

#elif defined(AN_CPU_ARM64)
static void an_probe_cpu(an_cpu_probe *probe)
{
    probe->missing[AN_ISA_AVX2] = "AVX2 is an x86 instruction set and this is an Arm CPU";
    probe->missing[AN_ISA_AVX512] = "AVX-512 is an x86 instruction set and this is an Arm CPU";
    /* Advanced SIMD is architectural on AArch64; the hwcap is read only to be explicit about it. */
#if defined(__linux__) && defined(AT_HWCAP) && defined(HWCAP_ASIMD)
    if ((getauxval(AT_HWCAP) & HWCAP_ASIMD) == 0)
        probe->missing[AN_ISA_NEON] = "the kernel reports no Advanced SIMD (HWCAP_ASIMD)";
#endif
}

#else
static void an_probe_cpu(an_cpu_probe *probe)
{
    probe->missing[AN_ISA_AVX2] = "this CPU is not x86";
    probe->missing[AN_ISA_AVX512] = "this CPU is not x86";
    probe->missing[AN_ISA_NEON] = "this CPU is not AArch64";
}
#endif

static void an_probe_once_body(void)
{
    an_cpu_probe probe = {0};
    an_probe_cpu(&probe);
    probe.missing[AN_ISA_SCALAR] = NULL;
    for (unsigned isa = 0; isa < AN_ISA_COUNT; isa++)
        if (probe.missing[isa] == NULL)
            probe.supported |= AN_ISA_BIT(isa);
    an_probe_result = probe;
}

static const an_cpu_probe *an_cpu_probe_get(void)
{
    pthread_once(&an_probe_once, an_probe_once_body);
    return &an_probe_result;
}

uint32_t an_cpu_supported_isas(void) { return an_cpu_probe_get()->supported; }

const char *an_cpu_isa_name(an_cpu_isa isa)
{
    if ((unsigned)isa >= AN_ISA_COUNT)
        return "unknown";
    return an_isa_names[isa];
}

/* Whether this build contains kernels for the set. */
static int an_cpu_isa_compiled(an_cpu_isa isa)
{
    switch (isa) {
    case AN_ISA_SCALAR: return 1;
    case AN_ISA_AVX2: return AN_HAVE_AVX2_KERNELS;
    case AN_ISA_AVX512: return AN_HAVE_AVX512_KERNELS;
    case AN_ISA_NEON: return AN_HAVE_NEON_KERNELS;
    case AN_ISA_COUNT: break;
    }
    return 0;
}

static int an_ascii_lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

static int an_name_equals(const char *text, const char *name)
{
    for (; *text != '\0' && *name != '\0'; text++, name++)
        if (an_ascii_lower((unsigned char)*text) != *name)
            return 0;
    return *text == '\0' && *name == '\0';
}

/* A set forced with ALEXNET_CPU_ISA (name is the variable's value, not empty). */
static alexnet_status an_cpu_isa_forced(const char *name, an_cpu_isa *out)
{
    for (unsigned isa = 0; isa < AN_ISA_COUNT; isa++) {
        if (!an_name_equals(name, an_isa_names[isa]))
            continue;
        const an_cpu_probe *probe = an_cpu_probe_get();
        if ((probe->supported & AN_ISA_BIT(isa)) == 0)
            return an_error(ALEXNET_E_UNSUPPORTED, "ALEXNET_CPU_ISA=%s: %s", an_isa_names[isa], probe->missing[isa]);
        if (!an_cpu_isa_compiled((an_cpu_isa)isa))
            return an_error(ALEXNET_E_UNSUPPORTED, "ALEXNET_CPU_ISA=%s: this build of libalexnet has no %s kernels",
                            an_isa_names[isa], an_isa_names[isa]);
        *out = (an_cpu_isa)isa;
        return ALEXNET_OK;
    }
    return an_error(ALEXNET_E_INVALID_ARGUMENT,
                    "ALEXNET_CPU_ISA=%.64s: unknown instruction set (expected scalar, avx2, avx512 or neon)", name);
}

alexnet_status an_cpu_select_isa(an_cpu_isa *out)
{
    if (out == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "an_cpu_select_isa: output pointer is NULL");
    const char *forced = getenv("ALEXNET_CPU_ISA");
    if (forced != NULL && forced[0] != '\0')
        return an_cpu_isa_forced(forced, out);

    static const an_cpu_isa preference[] = {AN_ISA_AVX512, AN_ISA_AVX2, AN_ISA_NEON};
    uint32_t supported = an_cpu_supported_isas();
    for (size_t i = 0; i < sizeof preference / sizeof preference[0]; i++) {
        if ((supported & AN_ISA_BIT(preference[i])) != 0 && an_cpu_isa_compiled(preference[i])) {
            *out = preference[i];
            return ALEXNET_OK;
        }
    }
    *out = AN_ISA_SCALAR;
    return ALEXNET_OK;
}
