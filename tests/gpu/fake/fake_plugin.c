/* Test modules for the plugin loader (tests/gpu/test_gpu_plugins.c, scenario "fakes"). One source, built
 * four times with FAKE_MODE:
 *   1  libalexnet-fake.so        a valid module whose contexts always fail, with a message set through the
 *                                core's host services (so the test sees it in alexnet_last_error());
 *   2  libalexnet-fakeold.so     its table claims another backend API version;
 *   3  libalexnet-fakerefuse.so  its entry point refuses, with a reason;
 *   4  libalexnet-fakenoentry.so exports no entry point at all. */
#include <stdio.h>
#include <string.h>

#include "backend/plugin.h"

#ifndef FAKE_MODE
#error FAKE_MODE must be set
#endif

#define FAKE_EXPORT __attribute__((visibility("default")))

static const an_plugin_host *fake_host;

static int fake_probe(const char **why)
{
    *why = "available";
    return 1;
}

static const char *fake_describe(void) { return "a test module whose contexts always fail"; }

static size_t fake_device_count(void) { return 2; }

static alexnet_status fake_device_info(size_t index, alexnet_device_info *out)
{
    (void)index;
    snprintf(out->description, sizeof out->description, "fake device");
    out->memory_bytes = 12345;
    out->available = 1;
    return ALEXNET_OK;
}

static alexnet_status fake_context_create(const an_backend_params *params, an_backend_context **out)
{
    (void)out;
    char message[96];
    snprintf(message, sizeof message, "fake: refusing to create a context on device %u", params->device_index);
    return fake_host->set_error(ALEXNET_E_BACKEND, message);
}

static an_backend fake_backend = {
    .api_version = AN_BACKEND_API_VERSION,
    .name = "fake",
    .kind = "gpu",
    .score = 1,
    .probe = fake_probe,
    .describe = fake_describe,
    .device_count = fake_device_count,
    .device_info = fake_device_info,
    .context_create = fake_context_create,
};

#if FAKE_MODE != 4
FAKE_EXPORT const an_backend *alexnet_plugin_entry(const an_plugin_host *host, const char **why);
FAKE_EXPORT const an_backend *alexnet_plugin_entry(const an_plugin_host *host, const char **why)
{
    fake_host = host;
#if FAKE_MODE == 2
    fake_backend.api_version = AN_BACKEND_API_VERSION + 1;
    fake_backend.name = "fakeold";
#elif FAKE_MODE == 3
    *why = "the fake module refuses";
    return NULL;
#endif
    (void)why;
    return &fake_backend;
}
#else
/* Something exported, so the module is a normal shared object without the entry point. */
FAKE_EXPORT const void *fake_not_an_entry_point;
const void *fake_not_an_entry_point = &fake_backend;
#endif
