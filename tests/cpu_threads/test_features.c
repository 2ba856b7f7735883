/* The ISA probe and ALEXNET_CPU_ISA. Asserts only what holds on any machine of the architecture it runs on:
 * on x86 the probe is cross-checked against the compiler's own __builtin_cpu_supports, which reads cpuid
 * and the OS-enabled register state independently of our code. */
#include <check.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cpu/features.h"
#include "test_support.h"

#define ISA_BIT(isa) (1u << (unsigned)(isa))

static void use_isa_env(const char *value)
{
    if (value == NULL)
        unsetenv("ALEXNET_CPU_ISA");
    else
        setenv("ALEXNET_CPU_ISA", value, 1);
}

static void assert_message_contains(const char *needle)
{
    ck_assert_msg(strstr(alexnet_last_error(), needle) != NULL, "message \"%s\" lacks \"%s\"", alexnet_last_error(),
                  needle);
}

/* ---- the probe ---------------------------------------------------------------------------------------- */

static void *probe_from_thread(void *arg)
{
    *(uint32_t *)arg = an_cpu_supported_isas();
    return NULL;
}

/* First thing in a fresh process: several threads race to trigger the one-time probe. */
START_TEST(test_probe_is_thread_safe)
{
    enum { THREADS = 8 };
    pthread_t threads[THREADS];
    uint32_t results[THREADS];
    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&threads[i], NULL, probe_from_thread, &results[i]), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    for (int i = 0; i < THREADS; i++)
        ck_assert_uint_eq(results[i], an_cpu_supported_isas());
}
END_TEST

START_TEST(test_scalar_always_supported)
{
    ck_assert_uint_ne(an_cpu_supported_isas() & ISA_BIT(AN_ISA_SCALAR), 0);
    ck_assert_uint_eq(an_cpu_supported_isas() >> AN_ISA_COUNT, 0);
}
END_TEST

START_TEST(test_isa_names)
{
    ck_assert_str_eq(an_cpu_isa_name(AN_ISA_SCALAR), "scalar");
    ck_assert_str_eq(an_cpu_isa_name(AN_ISA_AVX2), "avx2");
    ck_assert_str_eq(an_cpu_isa_name(AN_ISA_AVX512), "avx512");
    ck_assert_str_eq(an_cpu_isa_name(AN_ISA_NEON), "neon");
    ck_assert_str_eq(an_cpu_isa_name(AN_ISA_COUNT), "unknown");
}
END_TEST

#if defined(__x86_64__) || defined(__i386__)
START_TEST(test_x86_probe_matches_compiler)
{
    __builtin_cpu_init();
    uint32_t supported = an_cpu_supported_isas();
    int avx2 = (supported & ISA_BIT(AN_ISA_AVX2)) != 0;
    int avx512 = (supported & ISA_BIT(AN_ISA_AVX512)) != 0;
    /* Every CPU with AVX2 and FMA also has F16C (Haswell, Zen and later), the set's third requirement. */
    int compiler_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    int compiler_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
    ck_assert_int_eq(avx2, compiler_avx2);
    ck_assert_int_eq(avx512, compiler_avx512 && compiler_avx2);
    ck_assert_uint_eq(supported & ISA_BIT(AN_ISA_NEON), 0);
}
END_TEST

START_TEST(test_x86_forcing_neon_is_unsupported)
{
    use_isa_env("neon");
    an_cpu_isa isa = AN_ISA_COUNT;
    ck_assert_int_eq(an_cpu_select_isa(&isa), ALEXNET_E_UNSUPPORTED);
    ck_assert_int_eq(isa, AN_ISA_COUNT); /* untouched on failure */
    assert_message_contains("ALEXNET_CPU_ISA=neon");
    use_isa_env(NULL);
}
END_TEST

START_TEST(test_x86_forcing_avx512_without_it_is_unsupported)
{
    __builtin_cpu_init();
    use_isa_env("avx512");
    an_cpu_isa isa = AN_ISA_COUNT;
    alexnet_status status = an_cpu_select_isa(&isa);
    if (!__builtin_cpu_supports("avx512f")) {
        ck_assert_int_eq(status, ALEXNET_E_UNSUPPORTED);
        assert_message_contains("ALEXNET_CPU_ISA=avx512");
        assert_message_contains("AVX-512F");
        ck_assert_int_eq(isa, AN_ISA_COUNT);
    } else if (status == ALEXNET_OK) {
        ck_assert_int_eq(isa, AN_ISA_AVX512);
    } else {
        ck_assert_int_eq(status, ALEXNET_E_UNSUPPORTED); /* a CPU without BW/DQ/VL, or no kernels built */
        assert_message_contains("ALEXNET_CPU_ISA=avx512");
    }
    use_isa_env(NULL);
}
END_TEST
#endif

#if defined(__aarch64__)
START_TEST(test_arm64_probe)
{
    uint32_t supported = an_cpu_supported_isas();
    ck_assert_uint_ne(supported & ISA_BIT(AN_ISA_NEON), 0);
    ck_assert_uint_eq(supported & (ISA_BIT(AN_ISA_AVX2) | ISA_BIT(AN_ISA_AVX512)), 0);
    use_isa_env("avx2");
    an_cpu_isa isa;
    ck_assert_int_eq(an_cpu_select_isa(&isa), ALEXNET_E_UNSUPPORTED);
    assert_message_contains("ALEXNET_CPU_ISA=avx2");
    use_isa_env(NULL);
}
END_TEST
#endif

/* ---- selection ---------------------------------------------------------------------------------------- */

START_TEST(test_default_selection_is_supported)
{
    use_isa_env(NULL);
    an_cpu_isa isa = AN_ISA_COUNT;
    ck_assert_int_eq(an_cpu_select_isa(&isa), ALEXNET_OK);
    ck_assert_int_lt(isa, AN_ISA_COUNT);
    ck_assert_uint_ne(an_cpu_supported_isas() & ISA_BIT(isa), 0);

    /* An empty variable is the same as none. */
    use_isa_env("");
    an_cpu_isa again = AN_ISA_COUNT;
    ck_assert_int_eq(an_cpu_select_isa(&again), ALEXNET_OK);
    ck_assert_int_eq(again, isa);
    use_isa_env(NULL);
}
END_TEST

START_TEST(test_forcing_scalar)
{
    static const char *const spellings[] = {"scalar", "SCALAR", "Scalar"};
    for (size_t i = 0; i < 3; i++) {
        use_isa_env(spellings[i]);
        an_cpu_isa isa = AN_ISA_COUNT;
        ck_assert_int_eq(an_cpu_select_isa(&isa), ALEXNET_OK);
        ck_assert_int_eq(isa, AN_ISA_SCALAR);
    }
    use_isa_env(NULL);
}
END_TEST

START_TEST(test_forcing_unknown_name_is_invalid)
{
    static const char *const names[] = {"bogus", "avx", "scalar2", "sse", " avx2"};
    for (size_t i = 0; i < 5; i++) {
        use_isa_env(names[i]);
        an_cpu_isa isa = AN_ISA_COUNT;
        ck_assert_int_eq(an_cpu_select_isa(&isa), ALEXNET_E_INVALID_ARGUMENT);
        ck_assert_int_eq(isa, AN_ISA_COUNT);
        assert_message_contains(names[i]);
    }
    use_isa_env(NULL);
}
END_TEST

/* Forcing avx2 succeeds exactly when the CPU runs it and the build has its kernels; then the default pick
 * (the best supported and compiled set) cannot be scalar. */
START_TEST(test_forcing_avx2_agrees_with_default)
{
    use_isa_env("avx2");
    an_cpu_isa isa = AN_ISA_COUNT;
    alexnet_status status = an_cpu_select_isa(&isa);
    int cpu_has_avx2 = (an_cpu_supported_isas() & ISA_BIT(AN_ISA_AVX2)) != 0;
    if (!cpu_has_avx2) {
        ck_assert_int_eq(status, ALEXNET_E_UNSUPPORTED);
        assert_message_contains("ALEXNET_CPU_ISA=avx2");
    } else if (status != ALEXNET_OK) {
        ck_assert_int_eq(status, ALEXNET_E_UNSUPPORTED);
        assert_message_contains("no avx2 kernels");
    } else {
        ck_assert_int_eq(isa, AN_ISA_AVX2);
    }
    int avx2_usable = status == ALEXNET_OK;

    use_isa_env(NULL);
    ck_assert_int_eq(an_cpu_select_isa(&isa), ALEXNET_OK);
    if (avx2_usable)
        ck_assert_msg(isa == AN_ISA_AVX2 || isa == AN_ISA_AVX512, "default picked %s", an_cpu_isa_name(isa));
}
END_TEST

START_TEST(test_select_null_output)
{
    ck_assert_int_eq(an_cpu_select_isa(NULL), ALEXNET_E_INVALID_ARGUMENT);
}
END_TEST

static Suite *features_suite(void)
{
    Suite *suite = suite_create("features");
    TCase *probe = tcase_create("probe");
    tcase_add_test(probe, test_probe_is_thread_safe);
    tcase_add_test(probe, test_scalar_always_supported);
    tcase_add_test(probe, test_isa_names);
#if defined(__x86_64__) || defined(__i386__)
    tcase_add_test(probe, test_x86_probe_matches_compiler);
    tcase_add_test(probe, test_x86_forcing_neon_is_unsupported);
    tcase_add_test(probe, test_x86_forcing_avx512_without_it_is_unsupported);
#endif
#if defined(__aarch64__)
    tcase_add_test(probe, test_arm64_probe);
#endif
    suite_add_tcase(suite, probe);

    TCase *select = tcase_create("select");
    tcase_add_test(select, test_default_selection_is_supported);
    tcase_add_test(select, test_forcing_scalar);
    tcase_add_test(select, test_forcing_unknown_name_is_invalid);
    tcase_add_test(select, test_forcing_avx2_agrees_with_default);
    tcase_add_test(select, test_select_null_output);
    suite_add_tcase(suite, select);
    return suite;
}

int main(void)
{
    SRunner *runner = srunner_create(features_suite());
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
