/* allocator.c: docs/API.md's examples of errors, option structs and a custom allocator.
 *
 * A counting allocator checks the library's side of the allocator contract (a power-of-two alignment, the
 * exact size handed back to free) while a model and a context live, and shows that everything is returned
 * when they are destroyed. Then three calls fail on purpose to show statuses and alexnet_last_error(). */
#include <alexnet/alexnet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a counting allocator ---- */
#define MAX_BLOCKS 256

typedef struct counting_allocator {
    void *pointers[MAX_BLOCKS];
    size_t sizes[MAX_BLOCKS];
    size_t live_blocks, live_bytes, peak_bytes, total_allocations;
    int contract_broken;
} counting_allocator;

static void *counting_alloc(void *user, size_t size, size_t alignment)
{
    counting_allocator *counter = user;
    /* The contract: alignment is a power of two no larger than 4096; size is never 0. */
    if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment > 4096 || size == 0)
        counter->contract_broken = 1;
    if (alignment < sizeof(void *))
        alignment = sizeof(void *);
    size_t slot = 0;
    while (slot < MAX_BLOCKS && counter->pointers[slot] != NULL)
        slot++;
    void *block = NULL;
    if (slot == MAX_BLOCKS || posix_memalign(&block, alignment, size) != 0)
        return NULL; /* the library reports ALEXNET_E_OUT_OF_MEMORY */
    counter->pointers[slot] = block;
    counter->sizes[slot] = size;
    counter->live_blocks++;
    counter->live_bytes += size;
    counter->total_allocations++;
    if (counter->live_bytes > counter->peak_bytes)
        counter->peak_bytes = counter->live_bytes;
    return block;
}

static void counting_free(void *user, void *ptr, size_t size)
{
    counting_allocator *counter = user;
    for (size_t slot = 0; slot < MAX_BLOCKS; slot++) {
        if (counter->pointers[slot] == ptr) {
            if (counter->sizes[slot] != size) /* free receives the size the block was allocated with */
                counter->contract_broken = 1;
            counter->pointers[slot] = NULL;
            counter->live_blocks--;
            counter->live_bytes -= counter->sizes[slot];
            free(ptr);
            return;
        }
    }
    counter->contract_broken = 1; /* not a block of ours */
}

/* ---- errors ---- */
static void report(const char *what, alexnet_status status)
{
    /* Copy the detail before any other library call: the next call replaces it. */
    char detail[512];
    snprintf(detail, sizeof detail, "%s", alexnet_last_error());
    printf("%s -> %s: %s\n", what, alexnet_status_string(status), detail);
}

static int show_errors(void)
{
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    alexnet_model *model = NULL;
    alexnet_status status = alexnet_model_load("/nonexistent/alexnet.safetensors", &options, &model);
    report("load a missing file", status);

    alexnet_config config;
    alexnet_config_preset(ALEXNET_VARIANT_PAPER_2012, &config);
    config.conv[1].groups = 3; /* 96 input channels divide by 3, 256 output channels do not */
    report("validate a bad configuration", alexnet_config_validate(&config));

    alexnet_model_options zeroed; /* not initialised with alexnet_model_options_init */
    memset(&zeroed, 0, sizeof zeroed);
    report("options without struct_size", alexnet_model_create(&zeroed, 1, &model));

    /* What a program built against a newer header looks like to this library: a bigger struct whose
     * unknown tail is zero is accepted; a nonzero field this version does not know is refused. */
    struct newer_options {
        alexnet_model_options known;
        uint64_t field_from_the_future;
    } newer;
    memset(&newer, 0, sizeof newer);
    alexnet_model_options_init(&newer.known);
    newer.known.struct_size = sizeof newer;
    newer.field_from_the_future = 1;
    report("a newer, bigger options struct", alexnet_model_create(&newer.known, 1, &model));
    return model == NULL ? 0 : 1; /* a failed call leaves its outputs untouched */
}

int main(void)
{
    /* The library actually loaded, against the header compiled with. While the major version is 0, a
     * new minor version may change the ABI, so compare major and minor. */
    if (alexnet_version_number() / 100 != ALEXNET_VERSION_NUMBER / 100) {
        fprintf(stderr, "built for libalexnet %s, running with %s\n", ALEXNET_VERSION_STRING,
                alexnet_version_string());
        return 1;
    }
    counting_allocator counter;
    memset(&counter, 0, sizeof counter);

    alexnet_model_options options;
    alexnet_model_options_init(&options); /* sets struct_size and every default */
    options.variant = ALEXNET_VARIANT_TORCHVISION;
    options.allocator.alloc = counting_alloc;
    options.allocator.free = counting_free;
    options.allocator.user = &counter;
    alexnet_model *model = NULL;
    alexnet_context *context = NULL;
    alexnet_status status = alexnet_model_create(&options, 1, &model);
    if (status == ALEXNET_OK) {
        printf("model:           %zu blocks, %zu bytes\n", counter.live_blocks, counter.live_bytes);
        /* The context's allocator is left all-NULL, so it uses the model's (the counting one). */
        status = alexnet_context_create(model, NULL, &context);
    }
    if (status == ALEXNET_OK)
        printf("model + context: %zu blocks, %zu bytes (workspace %zu bytes)\n", counter.live_blocks,
               counter.live_bytes, alexnet_context_workspace_bytes(context));
    if (status != ALEXNET_OK)
        report("create", status);
    alexnet_context_destroy(context);
    alexnet_model_destroy(model);
    printf("after destroy:   %zu blocks, %zu bytes; %zu allocations in all, peak %zu bytes; contract %s\n",
           counter.live_blocks, counter.live_bytes, counter.total_allocations, counter.peak_bytes,
           counter.contract_broken ? "BROKEN" : "kept");

    int failures = show_errors();
    return status == ALEXNET_OK && counter.live_blocks == 0 && !counter.contract_broken && failures == 0 ? 0 : 1;
}
