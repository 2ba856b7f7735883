/* Fuzz target: alexnet_model_load_memory, the public way untrusted weights enter the library.
 *
 * The whole input is the file. The options name tw_tiny_config(), so a valid input is about 1.6 KB and the
 * fuzzer can reach the checks after parsing (names, shapes, class count, finiteness) as well as the parser.
 *
 * Invariants checked on every input:
 *  - a failure is one of the statuses a bad file may give (FORMAT, SHAPE, UNSUPPORTED, or OUT_OF_MEMORY when
 *    the capped allocator refused a block), with a message, and leaves *out_model untouched;
 *  - a success gives a model whose every weight is finite, which saves and reloads to the same bits, and which
 *    runs one inference;
 *  - nothing leaks and every free() gets the size of its allocation. */
#include "fuzz_common.h"

/* Larger blocks are refused: a header may claim any class count, and its model would be that large. */
#define FUZZ_LOAD_CAP_BYTES (16u << 20)

static alexnet_model *const untouched = (alexnet_model *)(uintptr_t)0x5a5a5a50;

static int is_expected_load_failure(alexnet_status status)
{
    return status == ALEXNET_E_FORMAT || status == ALEXNET_E_SHAPE || status == ALEXNET_E_UNSUPPORTED ||
           status == ALEXNET_E_OUT_OF_MEMORY;
}

static void check_weights_finite(const alexnet_model *model)
{
    for (size_t t = 0; t < alexnet_model_tensor_count(model); t++) {
        alexnet_tensor_info info;
        if (alexnet_model_tensor(model, t, &info) != ALEXNET_OK)
            fuzz_fail("alexnet_model_tensor(%zu) failed on a loaded model", t);
        for (uint64_t i = 0; i < info.element_count; i++) {
            uint32_t bits;
            memcpy(&bits, &info.data[i], sizeof bits);
            if ((bits & 0x7F800000u) == 0x7F800000u)
                fuzz_fail("loaded tensor %s has a non-finite element %llu (bits %08x)", info.name,
                          (unsigned long long)i, (unsigned)bits);
        }
    }
}

static void check_same_weights(const alexnet_model *a, const alexnet_model *b)
{
    FUZZ_CHECK(alexnet_model_tensor_count(a) == alexnet_model_tensor_count(b), "tensor counts differ after reload");
    FUZZ_CHECK(alexnet_model_num_classes(a) == alexnet_model_num_classes(b), "class counts differ after reload");
    for (size_t t = 0; t < alexnet_model_tensor_count(a); t++) {
        alexnet_tensor_info x, y;
        FUZZ_CHECK(alexnet_model_tensor(a, t, &x) == ALEXNET_OK && alexnet_model_tensor(b, t, &y) == ALEXNET_OK,
                   "alexnet_model_tensor(%zu) failed", t);
        FUZZ_CHECK(strcmp(x.name, y.name) == 0 && x.element_count == y.element_count, "tensor %zu differs", t);
        FUZZ_CHECK(memcmp(x.data, y.data, (size_t)x.element_count * sizeof(float)) == 0,
                   "tensor %s changed bits through save_memory + load_memory", x.name);
    }
}

/* Save to memory and load that: the writer's output must be something the reader accepts, bit for bit. */
static void check_round_trip(const alexnet_model *model, const alexnet_model_options *options)
{
    size_t size = 0;
    alexnet_status status = alexnet_model_save_memory(model, NULL, 0, &size);
    fuzz_check_failure_message(status, "alexnet_model_save_memory(size)");
    if (status == ALEXNET_E_OUT_OF_MEMORY)
        return;
    FUZZ_CHECK(status == ALEXNET_OK && size > 8, "alexnet_model_save_memory(size) gave %d, size %zu", (int)status,
               size);
    unsigned char *buffer = malloc(size);
    FUZZ_CHECK(buffer != NULL, "malloc(%zu)", size);
    size_t written = 0;
    status = alexnet_model_save_memory(model, buffer, size, &written);
    fuzz_check_failure_message(status, "alexnet_model_save_memory");
    if (status == ALEXNET_OK) {
        FUZZ_CHECK(written == size, "save_memory wrote %zu bytes, announced %zu", written, size);
        alexnet_model *again = NULL;
        status = alexnet_model_load_memory(buffer, size, options, &again);
        fuzz_check_failure_message(status, "alexnet_model_load_memory(saved)");
        FUZZ_CHECK(status == ALEXNET_OK || status == ALEXNET_E_OUT_OF_MEMORY,
                   "a file written by alexnet_model_save_memory does not load: %d", (int)status);
        if (status == ALEXNET_OK) {
            check_same_weights(model, again);
            alexnet_model_destroy(again);
        }
    } else {
        FUZZ_CHECK(status == ALEXNET_E_OUT_OF_MEMORY, "alexnet_model_save_memory gave %d", (int)status);
    }
    free(buffer);
}

static void check_inference(const alexnet_model *model)
{
    alexnet_context_options options;
    alexnet_context_options_init(&options);
    options.backend = "auto";
    alexnet_context *context = NULL;
    alexnet_status status = alexnet_context_create(model, &options, &context);
    fuzz_check_failure_message(status, "alexnet_context_create");
    if (status == ALEXNET_E_OUT_OF_MEMORY)
        return;
    FUZZ_CHECK(status == ALEXNET_OK, "alexnet_context_create on a loaded model gave %d", (int)status);
    alexnet_config config;
    FUZZ_CHECK(alexnet_model_get_config(model, &config) == ALEXNET_OK, "alexnet_model_get_config");
    size_t pixels = (size_t)config.input_channels * config.input_height * config.input_width;
    float *input = calloc(pixels, sizeof *input);
    float *probabilities = malloc((size_t)config.num_classes * sizeof *probabilities);
    FUZZ_CHECK(input != NULL && probabilities != NULL, "malloc");
    for (size_t i = 0; i < pixels; i++)
        input[i] = (float)(i % 7) * 0.25f - 0.75f;
    status = alexnet_infer(context, input, 1, NULL, probabilities);
    FUZZ_CHECK(status == ALEXNET_OK, "alexnet_infer on a loaded model gave %d", (int)status);
    free(input);
    free(probabilities);
    alexnet_context_destroy(context);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uint8_t empty[1] = {0};
    fuzz_allocator_state state;
    alexnet_config config = tw_tiny_config();
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.config = &config;
    options.allocator = fuzz_allocator_make(&state, FUZZ_LOAD_CAP_BYTES);

    alexnet_model *model = untouched;
    alexnet_status status = alexnet_model_load_memory(data != NULL ? (const void *)data : empty, size, &options,
                                                      &model);
    fuzz_check_failure_message(status, "alexnet_model_load_memory");
    if (status != ALEXNET_OK) {
        FUZZ_CHECK(is_expected_load_failure(status), "alexnet_model_load_memory gave status %d (%s)", (int)status,
                   alexnet_status_string(status));
        FUZZ_CHECK(model == untouched, "a failed load wrote *out_model");
    } else {
        FUZZ_CHECK(model != NULL && model != untouched, "a successful load gave no model");
        check_weights_finite(model);
        check_round_trip(model, &options);
        check_inference(model);
        alexnet_model_destroy(model);
    }
    fuzz_allocator_check_empty(&state, "after alexnet_model_load_memory");
    return 0;
}
