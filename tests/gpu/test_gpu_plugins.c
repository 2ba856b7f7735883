/* The plugin loader and the GPU modules as a user sees them, through the public API only.
 *
 * Modules are loaded once per process, so each scenario is its own process: meson runs this program once per
 * scenario (argv[1]) with the environment that scenario needs (tests/gpu/meson.build):
 *   missing      ALEXNET_BACKEND_PATH holds no module: "opencl" and "cuda" are listed as unavailable with
 *                "not found", "auto" picks a CPU backend, asking for "cuda" fails with UNSUPPORTED;
 *   fakes        test modules (tests/gpu/fake): one built for another backend API, one without the entry
 *                point, one whose entry refuses, and a working one whose context_create fails, which shows
 *                that a module's error message reaches alexnet_last_error() through the host services;
 *   opencl-nolib ALEXNET_OPENCL_LIBRARY names a missing library: the module loads, the backend is
 *                unavailable ("no OpenCL runtime") and "auto" still works;
 *   opencl-noicd OCL_ICD_VENDORS points at an empty directory: no platform;
 *   opencl       the real module: devices listed, "opencl:0" works, "opencl:99" does not, an OpenCL CPU
 *                device (PoCL) never outranks the CPU backends under "auto";
 *   cuda         the CUDA module: without a device it loads and is unavailable with a reason that names
 *                CUDA, and a context on "cuda" fails with UNSUPPORTED; with one, a context works.
 * The runner does not fork (a GPU runtime initialised before fork() is unusable in the child). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alexnet/alexnet.h"
#include "test_support.h"

static const char *scenario;

static int find_backend(const char *name, alexnet_backend_info *out)
{
    for (size_t i = 0; i < alexnet_backend_count(); i++) {
        alexnet_backend_info info;
        memset(&info, 0, sizeof info);
        info.struct_size = sizeof info;
        ck_assert_int_eq(alexnet_backend_get_info(i, &info), ALEXNET_OK);
        if (strcmp(info.name, name) == 0) {
            *out = info;
            return 1;
        }
    }
    return 0;
}

static void print_backends(void)
{
    for (size_t i = 0; i < alexnet_backend_count(); i++) {
        alexnet_backend_info info;
        info.struct_size = sizeof info;
        ck_assert_int_eq(alexnet_backend_get_info(i, &info), ALEXNET_OK);
        printf("[%s] backend %-10s %-3s score %3d %-11s %s\n", scenario, info.name, info.kind, info.score,
               info.available ? "available" : "unavailable", info.description);
    }
    for (size_t i = 0; i < alexnet_device_count(); i++) {
        alexnet_device_info info;
        info.struct_size = sizeof info;
        ck_assert_int_eq(alexnet_device_get_info(i, &info), ALEXNET_OK);
        printf("[%s] device  %-12s %6.1f GiB %s\n", scenario, info.name, (double)info.memory_bytes / (1 << 30),
               info.description);
    }
    fflush(stdout);
}

static alexnet_model *tiny_model(void)
{
    alexnet_config c;
    ck_assert_int_eq(alexnet_config_preset(ALEXNET_VARIANT_TORCHVISION, &c), ALEXNET_OK);
    static const alexnet_conv_layer_config layers[] = {{8, 3, 2, 1, 1, 0, 1}, {8, 3, 1, 1, 1, 0, 1}};
    c.variant = ALEXNET_VARIANT_CUSTOM;
    c.input_height = c.input_width = 24;
    c.conv_count = 2;
    memset(c.conv, 0, sizeof c.conv);
    memcpy(c.conv, layers, sizeof layers);
    c.adaptive_pool_size = 2;
    c.hidden_fc_count = 1;
    c.hidden_fc[0] = 16;
    c.num_classes = 5;
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.config = &c;
    alexnet_model *model = NULL;
    ck_assert_msg(alexnet_model_create(&options, 3, &model) == ALEXNET_OK, "%s", alexnet_last_error());
    return model;
}

/* alexnet_context_create on `backend`: the status, and (on success) the backend it landed on. */
static alexnet_status try_context(const alexnet_model *model, const char *backend, char *landed, size_t size)
{
    alexnet_context_options options;
    alexnet_context_options_init(&options);
    options.backend = backend;
    alexnet_context *context = NULL;
    alexnet_status status = alexnet_context_create(model, &options, &context);
    if (status == ALEXNET_OK) {
        snprintf(landed, size, "%s", alexnet_context_backend_name(context));
        float input[3 * 24 * 24], logits[5];
        test_fill_input(input, sizeof input / sizeof input[0], 1);
        ck_assert_msg(alexnet_infer(context, input, 1, logits, NULL) == ALEXNET_OK, "%s", alexnet_last_error());
        alexnet_context_destroy(context);
    } else {
        ck_assert(context == NULL);
    }
    return status;
}

static void assert_unavailable(const char *name, const char *reason_part)
{
    alexnet_backend_info info;
    ck_assert_msg(find_backend(name, &info), "backend %s is not listed", name);
    ck_assert_msg(!info.available, "backend %s is available", name);
    ck_assert_str_eq(info.kind, "gpu");
    ck_assert_msg(strstr(info.description, reason_part) != NULL, "%s: \"%s\" does not say \"%s\"", name,
                  info.description, reason_part);
}

/* "auto" lands on a CPU backend, and an explicit request for `name` fails with UNSUPPORTED naming it. */
static void assert_fallback(const alexnet_model *model, const char *name, const char *message_part)
{
    char landed[64] = "";
    ck_assert_msg(try_context(model, "auto", landed, sizeof landed) == ALEXNET_OK, "auto: %s", alexnet_last_error());
    alexnet_backend_info info;
    ck_assert(find_backend(landed, &info));
    ck_assert_msg(strcmp(info.kind, "cpu") == 0, "auto picked %s", landed);
    ck_assert_int_eq(try_context(model, name, landed, sizeof landed), ALEXNET_E_UNSUPPORTED);
    printf("[%s] context on \"%s\": %s\n", scenario, name, alexnet_last_error());
    ck_assert_msg(strstr(alexnet_last_error(), name) != NULL && strstr(alexnet_last_error(), message_part) != NULL,
                  "message \"%s\" does not name %s and say \"%s\"", alexnet_last_error(), name, message_part);
}

/* Whether `name` is an item of the ", "-separated list text[0 .. length). */
static int list_has(const char *text, size_t length, const char *name)
{
    size_t n = strlen(name);
    for (const char *item = text; item < text + length;) {
        const char *end = strstr(item, ", ");
        size_t item_length = end != NULL && end < text + length ? (size_t)(end - item) : (size_t)(text + length - item);
        if (item_length == n && strncmp(item, name, n) == 0)
            return 1;
        item += item_length + 2;
    }
    return 0;
}

/* An unknown name fails with NOT_FOUND, and the message lists the registry as this process has it (not a
 * fixed list): every name of `known` (NULL-terminated) among the names a request may use, every name of
 * `not_loaded` (and none of `known`) among the plugin modules that were looked for or found but could not be
 * loaded. */
static void assert_unknown_name_message(const alexnet_model *model, const char *const *known,
                                        const char *const *not_loaded)
{
    char landed[64];
    ck_assert_int_eq(try_context(model, "no-such-backend", landed, sizeof landed), ALEXNET_E_NOT_FOUND);
    const char *message = alexnet_last_error();
    printf("[%s] unknown name: %s\n", scenario, message);
    const char *known_list = strstr(message, "(known: ");
    ck_assert_msg(known_list != NULL, "\"%s\" has no list of known names", message);
    known_list += strlen("(known: ");
    const char *not_loaded_list = strstr(known_list, "; plugin modules not loaded: ");
    const char *close = strrchr(known_list, ')');
    ck_assert_msg(close != NULL, "\"%s\" is cut short", message);
    const char *known_end = not_loaded_list != NULL ? not_loaded_list : close;
    ck_assert(list_has(known_list, (size_t)(known_end - known_list), "auto"));
    ck_assert(list_has(known_list, (size_t)(known_end - known_list), "cpu"));
    for (size_t i = 0; known[i] != NULL; i++)
        ck_assert_msg(list_has(known_list, (size_t)(known_end - known_list), known[i]),
                      "\"%s\" does not list %s as known", message, known[i]);
    if (not_loaded_list == NULL) {
        ck_assert_msg(not_loaded[0] == NULL, "\"%s\" lists no module that did not load", message);
        return;
    }
    not_loaded_list += strlen("; plugin modules not loaded: ");
    for (size_t i = 0; known[i] != NULL; i++)
        ck_assert_msg(!list_has(not_loaded_list, (size_t)(close - not_loaded_list), known[i]),
                      "\"%s\" lists %s as not loaded", message, known[i]);
    for (size_t i = 0; not_loaded[i] != NULL; i++)
        ck_assert_msg(list_has(not_loaded_list, (size_t)(close - not_loaded_list), not_loaded[i]),
                      "\"%s\" does not list %s as not loaded", message, not_loaded[i]);
}

START_TEST(scenario_missing)
{
    print_backends();
    assert_unavailable("opencl", "not found");
    assert_unavailable("cuda", "not found");
    alexnet_model *model = tiny_model();
    assert_fallback(model, "cuda", "not found");
    assert_fallback(model, "opencl", "ALEXNET_BACKEND_PATH");
    assert_unknown_name_message(model, (const char *const[]){"reference", "cpu-simd", NULL},
                                (const char *const[]){"opencl", "cuda", NULL});
    /* Unavailable backends contribute no devices. */
    for (size_t i = 0; i < alexnet_device_count(); i++) {
        alexnet_device_info info;
        info.struct_size = sizeof info;
        ck_assert_int_eq(alexnet_device_get_info(i, &info), ALEXNET_OK);
        ck_assert(strncmp(info.name, "opencl", 6) != 0 && strncmp(info.name, "cuda", 4) != 0);
    }
    alexnet_model_destroy(model);
}
END_TEST

START_TEST(scenario_fakes)
{
    print_backends();
    assert_unavailable("fakeold", "built for backend API");
    assert_unavailable("fakenoentry", "exports no alexnet_plugin_entry");
    assert_unavailable("fakerefuse", "refused to load: the fake module refuses");
    alexnet_backend_info info;
    ck_assert(find_backend("fake", &info));
    ck_assert(info.available);
    ck_assert_str_eq(info.description, "a test module whose contexts always fail");
    alexnet_model *model = tiny_model();
    char landed[64];
    ck_assert_int_eq(try_context(model, "fake", landed, sizeof landed), ALEXNET_E_BACKEND);
    /* The module set this text through the host services: it is the core's per-thread message. */
    ck_assert_str_eq(alexnet_last_error(), "fake: refusing to create a context on device 0");
    ck_assert_int_eq(try_context(model, "fake:1", landed, sizeof landed), ALEXNET_E_BACKEND);
    ck_assert_str_eq(alexnet_last_error(), "fake: refusing to create a context on device 1");
    ck_assert_int_eq(try_context(model, "fake:2", landed, sizeof landed), ALEXNET_E_NOT_FOUND);
    /* Modules found on the search path are listed by their file's name, loaded or not. */
    assert_unknown_name_message(model, (const char *const[]){"reference", "cpu-simd", "fake", NULL},
                                (const char *const[]){"opencl", "cuda", "fakeold", "fakenoentry", "fakerefuse", NULL});
    /* Its low score keeps "auto" on the CPU. */
    ck_assert_int_eq(try_context(model, "auto", landed, sizeof landed), ALEXNET_OK);
    ck_assert(find_backend(landed, &info) && strcmp(info.kind, "cpu") == 0);
    int fake_devices = 0;
    for (size_t i = 0; i < alexnet_device_count(); i++) {
        alexnet_device_info device;
        device.struct_size = sizeof device;
        ck_assert_int_eq(alexnet_device_get_info(i, &device), ALEXNET_OK);
        if (strcmp(device.backend, "fake") == 0) {
            ck_assert_str_eq(device.description, "fake device");
            ck_assert(device.memory_bytes == 12345);
            fake_devices++;
        }
    }
    ck_assert_int_eq(fake_devices, 2);
    alexnet_model_destroy(model);
}
END_TEST

START_TEST(scenario_opencl_nolib)
{
    print_backends();
    assert_unavailable("opencl", "no OpenCL runtime");
    alexnet_model *model = tiny_model();
    assert_fallback(model, "opencl", "no OpenCL runtime");
    alexnet_model_destroy(model);
}
END_TEST

START_TEST(scenario_opencl_noicd)
{
    print_backends();
    assert_unavailable("opencl", "no OpenCL platform");
    alexnet_model *model = tiny_model();
    assert_fallback(model, "opencl", "no OpenCL platform");
    alexnet_model_destroy(model);
}
END_TEST

START_TEST(scenario_opencl)
{
    print_backends();
    alexnet_backend_info info;
    ck_assert(find_backend("opencl", &info));
    ck_assert_msg(info.available, "opencl: %s", info.description);
    ck_assert_str_eq(info.kind, "gpu");
    int found = 0, gpu_devices = 0;
    for (size_t i = 0; i < alexnet_device_count(); i++) {
        alexnet_device_info device;
        device.struct_size = sizeof device;
        ck_assert_int_eq(alexnet_device_get_info(i, &device), ALEXNET_OK);
        if (strcmp(device.backend, "opencl") == 0) {
            found++;
            ck_assert(device.memory_bytes > 0 && device.description[0] != '\0');
            gpu_devices += strstr(device.description, ", GPU, ") != NULL;
        }
    }
    ck_assert(found >= 1);
    alexnet_model *model = tiny_model();
    char landed[64];
    ck_assert_msg(try_context(model, "opencl:0", landed, sizeof landed) == ALEXNET_OK, "%s", alexnet_last_error());
    ck_assert_str_eq(landed, "opencl");
    ck_assert_int_eq(try_context(model, "opencl:99", landed, sizeof landed), ALEXNET_E_NOT_FOUND);
    assert_unknown_name_message(model, (const char *const[]){"reference", "opencl", NULL}, (const char *const[]){NULL});
    ck_assert_int_eq(try_context(model, "auto", landed, sizeof landed), ALEXNET_OK);
    if (gpu_devices == 0) {
        ck_assert_msg(info.score < 10, "an OpenCL CPU device scores %d", info.score);
        ck_assert_str_ne(landed, "opencl");
    } else {
        /* A GPU outranks the CPU backends (CUDA, when present, outranks OpenCL). */
        alexnet_backend_info chosen;
        ck_assert(find_backend(landed, &chosen));
        ck_assert_msg(strcmp(chosen.kind, "gpu") == 0 && chosen.score >= info.score, "auto picked %s", landed);
    }
    /* ALEXNET_BACKEND selects it where the options say "auto". */
    setenv("ALEXNET_BACKEND", "opencl", 1);
    ck_assert_int_eq(try_context(model, "auto", landed, sizeof landed), ALEXNET_OK);
    ck_assert_str_eq(landed, "opencl");
    unsetenv("ALEXNET_BACKEND");
    alexnet_model_destroy(model);
}
END_TEST

START_TEST(scenario_cuda)
{
    print_backends();
    alexnet_backend_info info;
    ck_assert_msg(find_backend("cuda", &info), "cuda is not listed");
    ck_assert_str_eq(info.kind, "gpu");
    ck_assert_msg(strstr(info.description, "not found") == NULL && strstr(info.description, "cannot load") == NULL,
                  "the CUDA module did not load: %s", info.description);
    alexnet_model *model = tiny_model();
    char landed[64];
    const char *require = getenv("ALEXNET_GPU_TEST_REQUIRE");
    ck_assert_msg(info.available || require == NULL || strcmp(require, "1") != 0,
                  "ALEXNET_GPU_TEST_REQUIRE=1 but cuda is unavailable: %s", info.description);
    if (!info.available) {
        printf("[cuda] no device, as expected here: %s\n", info.description);
        ck_assert(strstr(info.description, "CUDA") != NULL);
        assert_fallback(model, "cuda", "CUDA");
    } else {
        ck_assert_msg(try_context(model, "cuda", landed, sizeof landed) == ALEXNET_OK, "%s", alexnet_last_error());
        ck_assert_str_eq(landed, "cuda");
    }
    alexnet_model_destroy(model);
}
END_TEST

int main(int argc, char **argv)
{
    const struct { const char *name; const TTest *test; } scenarios[] = {
        {"missing", scenario_missing},       {"fakes", scenario_fakes},
        {"opencl-nolib", scenario_opencl_nolib}, {"opencl-noicd", scenario_opencl_noicd},
        {"opencl", scenario_opencl},         {"cuda", scenario_cuda},
    };
    scenario = argc > 1 ? argv[1] : "missing";
    Suite *suite = suite_create("gpu_plugins");
    TCase *tc = tcase_create(scenario);
    tcase_set_timeout(tc, 300);
    int known = 0;
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
        if (strcmp(scenarios[i].name, scenario) == 0) {
            tcase_add_test(tc, scenarios[i].test);
            known = 1;
        }
    }
    if (!known) {
        fprintf(stderr, "unknown scenario %s\n", scenario);
        return EXIT_FAILURE;
    }
    suite_add_tcase(suite, tc);
    SRunner *runner = srunner_create(suite);
    srunner_set_fork_status(runner, CK_NOFORK);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
