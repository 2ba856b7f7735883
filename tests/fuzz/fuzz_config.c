/* Fuzz target: configuration and option validation: alexnet_config_validate, _parameter_count,
 * _min_input_size and _summary on a configuration edited field by field from the input; then, for the valid
 * ones small enough to be cheap, alexnet_model_create with fuzzed model options and alexnet_context_create with
 * fuzzed context options (backend, batch, size, captured layers, threads, profiling), one inference and a
 * reshape. Large models are never built: the allocator refuses blocks over 4 MiB, which must come back as
 * ALEXNET_E_OUT_OF_MEMORY.
 *
 * Input layout (see make_seeds.c, which writes seeds in it):
 *   [0]  base: byte % 5 = tiny, one-tower, paper-2012, torchvision, tiny with adaptive pooling
 *   [1]  edit count (% 33), then that many edits of 5 bytes: [field selector][u32 value]; a selector with its
 *        top bit set takes value % 17, so that small values (the valid ones) are common
 *   then the probe: struct_size mode, summary height/width, row capacity, model options, context options,
 *   reshape (read in that order below; short inputs read zeros).
 *
 * Invariants: the four configuration calls agree on validity; a valid configuration's parameter count is the
 * sum of its summary rows, its summary starts with the input and ends with "prob", its minimum size is
 * accepted and one less is not; the summary writes at most `capacity` rows; failures carry a message and
 * leave outputs untouched; models and contexts of valid options work, and nothing leaks. */
#include "fuzz_common.h"

#define FUZZ_CONFIG_CAP_BYTES (4u << 20)
#define MAX_INFER_MACS 4000000.0 /* inference only when it costs a few milliseconds on the reference backend */

static void set_field(alexnet_config *c, uint8_t selector, uint32_t value)
{
    if (selector & 0x80)
        value %= 17;
    float as_float;
    memcpy(&as_float, &value, sizeof as_float);
    unsigned field = (selector & 0x7F) % 28;
    unsigned conv = (selector >> 2) % ALEXNET_MAX_CONV_LAYERS;
    switch (field) {
    case 0: c->variant = (alexnet_variant)value; break;
    case 1: c->input_channels = value; break;
    case 2: c->input_height = value; break;
    case 3: c->input_width = value; break;
    case 4: c->conv_count = value; break;
    case 5: c->conv[conv].out_channels = value; break;
    case 6: c->conv[conv].kernel_size = value; break;
    case 7: c->conv[conv].stride = value; break;
    case 8: c->conv[conv].padding = value; break;
    case 9: c->conv[conv].groups = value; break;
    case 10: c->conv[conv].lrn = value; break;
    case 11: c->conv[conv].max_pool = value; break;
    case 12: c->pool_kernel = value; break;
    case 13: c->pool_stride = value; break;
    case 14: c->lrn_size = value; break;
    case 15: c->lrn_alpha = as_float; break;
    case 16: c->lrn_beta = as_float; break;
    case 17: c->lrn_k = as_float; break;
    case 18: c->lrn_alpha_scaling = (alexnet_lrn_alpha_scaling)value; break;
    case 19: c->adaptive_pool_size = value; break;
    case 20: c->hidden_fc_count = value; break;
    case 21: c->hidden_fc[conv % ALEXNET_MAX_HIDDEN_FC_LAYERS] = value; break;
    case 22: c->num_classes = value; break;
    case 23: c->dropout_rate = as_float; break;
    case 24: c->dropout_placement = (alexnet_dropout_placement)value; break;
    case 25: c->input_height = c->input_width = value; break;
    case 26: c->conv[conv].out_channels = value * 2; break; /* even widths keep groups = 2 valid */
    default: c->dropout_rate = (float)(value % 100) / 100.0f; break;
    }
}

static alexnet_config base_config(unsigned which)
{
    alexnet_config c = tw_tiny_config();
    if (which >= 1 && which <= 3)
        alexnet_config_preset((alexnet_variant)which, &c);
    if (which == 4)
        c.adaptive_pool_size = 1;
    return c;
}

/* The configuration as the caller hands it over: in a buffer with room beyond the 0.1 layout, with a
 * struct_size that may be short, exact, or longer with zero or non-zero unknown bytes. Returns the status the
 * library must give for the struct_size alone (OK when it is acceptable). */
typedef struct sized_config {
    union {
        alexnet_config config;
        unsigned char tw_bytes[sizeof(alexnet_config) + 16];
    } u;
} sized_config;

static alexnet_status place_config(sized_config *out, const alexnet_config *c, uint8_t mode)
{
    memset(out, 0, sizeof *out);
    out->u.config = *c;
    switch (mode % 6) {
    case 1: out->u.config.struct_size = sizeof *c - 4; return ALEXNET_E_INVALID_ARGUMENT;
    case 2: out->u.config.struct_size = 0; return ALEXNET_E_INVALID_ARGUMENT;
    case 3: out->u.config.struct_size = sizeof *c + 16; return ALEXNET_OK; /* zero tail: accepted */
    case 4:
        out->u.config.struct_size = sizeof *c + 16;
        out->u.tw_bytes[sizeof *c + 15] = 1;
        return ALEXNET_E_UNSUPPORTED;
    default: return ALEXNET_OK;
    }
}

static size_t sum_parameters(const alexnet_layer_info *rows, size_t count, uint64_t *total)
{
    *total = 0;
    for (size_t i = 0; i < count; i++)
        *total += rows[i].parameter_count;
    return count;
}

/* Multiply-adds of one image: conv and FC parameters times the output positions they are applied at. */
static double estimate_macs(const alexnet_layer_info *rows, size_t count)
{
    double macs = 0.0;
    for (size_t i = 0; i < count; i++) {
        double positions = (double)rows[i].height * rows[i].width;
        if (rows[i].type == ALEXNET_LAYER_CONV || rows[i].type == ALEXNET_LAYER_FC)
            macs += (double)rows[i].parameter_count * positions;
        else
            macs += (double)rows[i].channels * positions * (rows[i].kernel_size + 1) * (rows[i].kernel_size + 1);
    }
    return macs;
}

static void serial_parallel_for(void *host, alexnet_task_fn task, void *task_context, size_t count)
{
    size_t *calls = host;
    (*calls)++;
    for (size_t i = 0; i < count; i++)
        task(task_context, i);
}

static void check_config_calls(const alexnet_config *config, alexnet_status expected_size_status, fuzz_reader *in,
                               int *out_valid, uint64_t *out_parameters)
{
    alexnet_status valid = alexnet_config_validate(config);
    fuzz_check_failure_message(valid, "alexnet_config_validate");
    FUZZ_CHECK(valid == ALEXNET_OK || valid == ALEXNET_E_INVALID_ARGUMENT || valid == ALEXNET_E_UNSUPPORTED,
               "alexnet_config_validate gave %d", (int)valid);
    if (expected_size_status != ALEXNET_OK)
        FUZZ_CHECK(valid == expected_size_status, "struct_size case: validate gave %d, expected %d", (int)valid,
                   (int)expected_size_status);

    uint64_t parameters = 0xFEEDull;
    alexnet_status status = alexnet_config_parameter_count(config, &parameters);
    FUZZ_CHECK(status == valid, "parameter_count gave %d, validate %d", (int)status, (int)valid);
    FUZZ_CHECK(status == ALEXNET_OK || parameters == 0xFEEDull, "a failed parameter_count wrote its output");

    uint32_t min_size = 0xFEEDu;
    status = alexnet_config_min_input_size(config, &min_size);
    FUZZ_CHECK(status == valid, "min_input_size gave %d, validate %d", (int)status, (int)valid);
    FUZZ_CHECK(status == ALEXNET_OK || min_size == 0xFEEDu, "a failed min_input_size wrote its output");

    uint32_t height = fuzz_u16(in) % 300, width = fuzz_u16(in) % 300;
    size_t capacity = fuzz_u8(in) % 40;
    alexnet_layer_info *rows = malloc((capacity + 1) * sizeof *rows);
    FUZZ_CHECK(rows != NULL, "malloc");
    memset(rows, 0xA5, (capacity + 1) * sizeof *rows);
    alexnet_layer_info pristine;
    memset(&pristine, 0xA5, sizeof pristine);
    size_t count = 0xFEED;
    status = alexnet_config_summary(config, height, width, capacity > 0 ? rows : NULL, capacity, &count);
    fuzz_check_failure_message(status, "alexnet_config_summary");
    if (valid != ALEXNET_OK)
        FUZZ_CHECK(status == valid, "summary gave %d for an invalid configuration (%d)", (int)status, (int)valid);
    if (status == ALEXNET_OK) {
        FUZZ_CHECK(count >= 4, "summary has %zu rows", count);
        for (size_t i = count; i <= capacity; i++)
            FUZZ_CHECK(memcmp(&rows[i], &pristine, sizeof pristine) == 0, "summary wrote row %zu of %zu", i, count);
    } else {
        FUZZ_CHECK(count == 0xFEED, "a failed summary wrote *out_count");
        FUZZ_CHECK(status == ALEXNET_E_SHAPE || status == ALEXNET_E_INVALID_ARGUMENT || status == valid,
                   "summary gave %d", (int)status);
        FUZZ_CHECK(valid != ALEXNET_OK || height != 0 || width != 0, "summary at the configured size failed");
    }
    free(rows);

    *out_valid = valid == ALEXNET_OK;
    if (valid != ALEXNET_OK)
        return;
    /* The configured size: rows start with the input and end with prob; parameters add up. */
    alexnet_layer_info table[64];
    count = 0;
    FUZZ_CHECK(alexnet_config_summary(config, 0, 0, table, 64, &count) == ALEXNET_OK && count <= 64,
               "summary at the configured size");
    FUZZ_CHECK(table[0].type == ALEXNET_LAYER_INPUT && table[0].channels == config->input_channels &&
                   table[0].height == config->input_height && table[0].width == config->input_width,
               "first summary row is not the input");
    FUZZ_CHECK(table[count - 1].type == ALEXNET_LAYER_SOFTMAX && strcmp(table[count - 1].name, "prob") == 0 &&
                   table[count - 1].channels == config->num_classes,
               "last summary row is not prob");
    uint64_t total = 0;
    sum_parameters(table, count, &total);
    FUZZ_CHECK(total == parameters, "parameter_count %llu, rows add up to %llu", (unsigned long long)parameters,
               (unsigned long long)total);
    /* The minimum size is accepted; with adaptive pooling one less is not. */
    FUZZ_CHECK(alexnet_config_summary(config, min_size, min_size, NULL, 0, &count) == ALEXNET_OK ||
                   (config->adaptive_pool_size == 0 && config->input_height != config->input_width),
               "the minimum input size %u is refused", min_size);
    if (config->adaptive_pool_size != 0 && min_size > 1)
        FUZZ_CHECK(alexnet_config_summary(config, min_size - 1, min_size - 1, NULL, 0, &count) == ALEXNET_E_SHAPE,
                   "%u is the minimum, but %u is accepted", min_size, min_size - 1);
    if (config->adaptive_pool_size == 0)
        FUZZ_CHECK(min_size == (config->input_height < config->input_width ? config->input_height
                                                                            : config->input_width),
                   "min_input_size %u without adaptive pooling", min_size);
    FUZZ_CHECK(alexnet_config_summary(config, 5, 0, NULL, 0, &count) == ALEXNET_E_INVALID_ARGUMENT,
               "summary accepted a height without a width");
    *out_parameters = parameters;
}

static void exercise_context(const alexnet_model *model, fuzz_reader *in, alexnet_allocator allocator)
{
    alexnet_config config;
    FUZZ_CHECK(alexnet_model_get_config(model, &config) == ALEXNET_OK, "get_config");
    alexnet_layer_info rows[64];
    size_t row_count = 0;
    FUZZ_CHECK(alexnet_config_summary(&config, 0, 0, rows, 64, &row_count) == ALEXNET_OK, "summary of a model");

    alexnet_context_options options;
    alexnet_context_options_init(&options);
    static const char *const backends[] = {"auto", "cpu", "reference", NULL, "", "no-such-backend", "AUTO"};
    uint8_t backend = fuzz_u8(in);
    options.backend = backends[backend % (sizeof backends / sizeof backends[0])];
    options.batch = fuzz_u8(in) % 4;
    uint8_t size_mode = fuzz_u8(in);
    uint32_t size = fuzz_u8(in);
    if (size_mode % 4 == 1) { /* the configured size, explicitly */
        options.height = config.input_height;
        options.width = config.input_width;
    } else if (size_mode % 4 == 2) {
        options.height = options.width = size;
    } else if (size_mode % 4 == 3) {
        options.height = size; /* width 0: must be refused */
    }
    const char *captures[6] = {NULL};
    uint8_t capture_mask = fuzz_u8(in);
    size_t capture_count = 0;
    for (size_t i = 0; i < row_count && capture_count < 4; i++)
        if (capture_mask & (1u << (i % 8)) && (i * 7 + capture_mask) % 3 == 0)
            captures[capture_count++] = rows[i].name;
    if (capture_mask & 0x80)
        captures[capture_count++] = "no-such-layer";
    options.capture_layers = capture_mask != 0 ? captures : NULL;
    /* Mostly one thread: a pool per input costs more than the rest of the input, and threading has its own
     * test (tests/reliability/test_concurrency.c). 0 means one per online CPU. */
    uint8_t threads = fuzz_u8(in) % 8;
    options.num_threads = threads == 0 ? 0 : threads == 1 ? 2 : 1;
    size_t parallel_calls = 0;
    uint8_t extras = fuzz_u8(in);
    if (extras & 1) {
        options.parallel_for = serial_parallel_for;
        options.parallel_for_host = &parallel_calls;
    }
    options.profile_layers = (extras >> 1) & 1;
    if (extras & 4)
        options.allocator = allocator; /* else the model's (the same capped allocator) */
    if (extras & 8)
        options.struct_size = sizeof options - 8;

    alexnet_context *const untouched = (alexnet_context *)(uintptr_t)0x5a5a5a50;
    alexnet_context *context = untouched;
    alexnet_status status = alexnet_context_create(model, &options, &context);
    fuzz_check_failure_message(status, "alexnet_context_create");
    /* What the options deserve, in the order the library checks them. */
    int known_backend = backend % (sizeof backends / sizeof backends[0]) <= 3;
    alexnet_status deserved = (extras & 8)                                 ? ALEXNET_E_INVALID_ARGUMENT
                              : !known_backend                             ? ALEXNET_E_NOT_FOUND
                              : options.height != 0 && options.width == 0 ? ALEXNET_E_INVALID_ARGUMENT
                              : (capture_mask & 0x80)                      ? ALEXNET_E_NOT_FOUND
                                                                           : ALEXNET_OK;
    if (status != ALEXNET_OK) {
        FUZZ_CHECK(context == untouched, "a failed alexnet_context_create wrote *out_context");
        /* Valid options may still meet an input size the model does not take, or the allocator's cap. */
        FUZZ_CHECK(status == deserved || (deserved == ALEXNET_OK && (status == ALEXNET_E_SHAPE ||
                                                                     status == ALEXNET_E_OUT_OF_MEMORY)),
                   "alexnet_context_create gave %d (%s), the options deserve %d", (int)status,
                   alexnet_status_string(status), (int)deserved);
        return;
    }
    FUZZ_CHECK(deserved == ALEXNET_OK, "alexnet_context_create accepted options that deserve %d", (int)deserved);
    FUZZ_CHECK(!(extras & 8), "a short alexnet_context_options.struct_size was accepted");
    FUZZ_CHECK(options.height == 0 || options.width != 0, "height without width was accepted");
    FUZZ_CHECK(!(capture_mask & 0x80), "an unknown capture layer was accepted");
    size_t batch = 0;
    uint32_t height = 0, width = 0;
    FUZZ_CHECK(alexnet_context_get_shape(context, &batch, &height, &width) == ALEXNET_OK, "get_shape");
    FUZZ_CHECK(batch == (options.batch == 0 ? 1u : options.batch), "batch %zu, asked %u", batch, options.batch);
    if (options.height != 0)
        FUZZ_CHECK(height == options.height && width == options.width, "shape %ux%u, asked %ux%u", height, width,
                   options.height, options.width);

    alexnet_layer_info shaped[64];
    size_t shaped_count = 0;
    FUZZ_CHECK(alexnet_config_summary(&config, height, width, shaped, 64, &shaped_count) == ALEXNET_OK,
               "the context's own shape is not a valid input size");
    if (estimate_macs(shaped, shaped_count) * (double)batch <= MAX_INFER_MACS) {
        size_t per_image = (size_t)config.input_channels * height * width;
        float *input = malloc(per_image * batch * sizeof *input);
        float *logits = malloc((size_t)config.num_classes * batch * sizeof *logits);
        FUZZ_CHECK(input != NULL && logits != NULL, "malloc");
        for (size_t i = 0; i < per_image * batch; i++)
            input[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
        status = alexnet_infer(context, input, batch, logits, NULL);
        FUZZ_CHECK(status == ALEXNET_OK, "alexnet_infer gave %d", (int)status);
        for (size_t i = 0; i < capture_count; i++) {
            size_t elements = 0;
            FUZZ_CHECK(alexnet_context_layer_size(context, captures[i], &elements) == ALEXNET_OK, "layer_size %s",
                       captures[i]);
            float *layer = malloc((elements * batch + 1) * sizeof *layer);
            FUZZ_CHECK(layer != NULL, "malloc");
            status = alexnet_layer_output(context, captures[i], layer, elements * batch);
            FUZZ_CHECK(status == ALEXNET_OK, "alexnet_layer_output(%s) gave %d", captures[i], (int)status);
            if (elements * batch > 0) {
                status = alexnet_layer_output(context, captures[i], layer, elements * batch - 1);
                FUZZ_CHECK(status == ALEXNET_E_SHAPE, "a short layer_output gave %d", (int)status);
            }
            free(layer);
        }
        if (options.profile_layers) {
            alexnet_layer_profile profile[64];
            size_t steps = 0;
            FUZZ_CHECK(alexnet_context_profile(context, profile, 64, &steps) == ALEXNET_OK && steps > 0,
                       "alexnet_context_profile");
        }
        free(input);
        free(logits);
    }

    /* A reshape either takes effect or leaves the previous shape in force. */
    size_t new_batch = fuzz_u8(in) % 5;
    uint32_t new_height = fuzz_u8(in), new_width = fuzz_u8(in);
    if (new_height % 4 == 0) {
        new_height = height;
        new_width = width;
    }
    status = alexnet_context_reshape(context, new_batch, new_height, new_width);
    fuzz_check_failure_message(status, "alexnet_context_reshape");
    size_t after_batch = 0;
    uint32_t after_height = 0, after_width = 0;
    FUZZ_CHECK(alexnet_context_get_shape(context, &after_batch, &after_height, &after_width) == ALEXNET_OK,
               "get_shape");
    if (status == ALEXNET_OK)
        FUZZ_CHECK(after_batch == new_batch && after_height == new_height && after_width == new_width,
                   "reshape succeeded but the shape is %zux%ux%u", after_batch, after_height, after_width);
    else
        FUZZ_CHECK(after_batch == batch && after_height == height && after_width == width,
                   "a failed reshape changed the shape");
    alexnet_context_destroy(context);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int environment_cleared;
    if (!environment_cleared) { /* "auto" must mean the same on every run: no override from the environment */
        unsetenv("ALEXNET_BACKEND");
        environment_cleared = 1;
    }
    fuzz_reader in = fuzz_reader_make(data, size);
    alexnet_config edited = base_config(fuzz_u8(&in) % 5);
    unsigned edits = fuzz_u8(&in) % 33;
    for (unsigned i = 0; i < edits; i++) {
        uint8_t selector = fuzz_u8(&in);
        set_field(&edited, selector, fuzz_u32(&in));
    }
    sized_config placed;
    alexnet_status size_status = place_config(&placed, &edited, fuzz_u8(&in));
    int valid = 0;
    uint64_t parameters = 0;
    check_config_calls(&placed.u.config, size_status, &in, &valid, &parameters);

    /* Model options: variant, config or not, class override, init scheme, allocator, struct_size. */
    fuzz_allocator_state state;
    alexnet_allocator allocator = fuzz_allocator_make(&state, FUZZ_CONFIG_CAP_BYTES);
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    uint8_t mode = fuzz_u8(&in);
    options.variant = (alexnet_variant)(fuzz_u8(&in) % 6);
    options.config = mode & 1 ? &placed.u.config : NULL;
    options.num_classes = mode & 2 ? fuzz_u16(&in) % 50 : 0;
    options.init = (alexnet_init_scheme)(fuzz_u8(&in) % 6);
    options.allocator = allocator;
    if (mode & 4)
        options.allocator.free = NULL; /* alloc without free: refused */
    if (mode & 8)
        options.struct_size = sizeof options - 8;
    uint64_t seed = fuzz_u32(&in);

    /* A model of a preset would be far over the cap: only small ones are created (the others must fail with
     * OUT_OF_MEMORY, which the capped allocator checks cheaply). */
    alexnet_model *const untouched = (alexnet_model *)(uintptr_t)0x5a5a5a50;
    alexnet_model *model = untouched;
    alexnet_status status = alexnet_model_create(&options, seed, &model);
    fuzz_check_failure_message(status, "alexnet_model_create");
    int options_sound = !(mode & 12) && (unsigned)options.init <= ALEXNET_INIT_KAIMING;
    int architecture_valid = options.config != NULL ? valid
                                                    : options.variant != ALEXNET_VARIANT_CUSTOM &&
                                                          (unsigned)options.variant <= ALEXNET_VARIANT_TORCHVISION;
    int options_valid = options_sound && architecture_valid;
    /* A class-count override may repair a configuration whose only fault was its class count. */
    int repairable =
        options_sound && options.num_classes != 0 && (options.config == NULL || size_status == ALEXNET_OK);
    if (status == ALEXNET_OK) {
        FUZZ_CHECK(options_valid || repairable,
                   "alexnet_model_create accepted invalid options (mode %u, init %d, variant %d)", mode,
                   (int)options.init, (int)options.variant);
        if (options.config != NULL && options.num_classes == 0)
            FUZZ_CHECK(alexnet_model_parameter_count(model) == parameters, "model has %llu parameters, config %llu",
                       (unsigned long long)alexnet_model_parameter_count(model), (unsigned long long)parameters);
        exercise_context(model, &in, allocator);
        alexnet_model_destroy(model);
    } else {
        FUZZ_CHECK(model == untouched, "a failed alexnet_model_create wrote *out_model");
        FUZZ_CHECK(status == ALEXNET_E_INVALID_ARGUMENT || status == ALEXNET_E_UNSUPPORTED ||
                       status == ALEXNET_E_OUT_OF_MEMORY,
                   "alexnet_model_create gave %d", (int)status);
        if (status == ALEXNET_E_OUT_OF_MEMORY)
            FUZZ_CHECK(options_valid || repairable, "invalid options reached the allocator");
        /* Valid options are refused only when the model is over the allocator's cap. */
        if (options_valid && options.num_classes == 0)
            FUZZ_CHECK(status == ALEXNET_E_OUT_OF_MEMORY, "alexnet_model_create refused valid options: %d (%s)",
                       (int)status, alexnet_last_error());
    }
    fuzz_allocator_check_empty(&state, "after the model and context were destroyed");
    return 0;
}
