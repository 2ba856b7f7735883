#include "net/config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "util/checked.h"
#include "util/error.h"

static const char *const an_variant_names[] = {"custom", "one-tower", "paper-2012", "torchvision"};

const char *an_variant_name(alexnet_variant variant)
{
    if ((unsigned)variant >= sizeof an_variant_names / sizeof an_variant_names[0])
        return NULL;
    return an_variant_names[variant];
}

int an_variant_from_name(const char *name, alexnet_variant *out)
{
    static const struct { const char *name; alexnet_variant variant; } aliases[] = {
        {"custom", ALEXNET_VARIANT_CUSTOM},           {"one-tower", ALEXNET_VARIANT_ONE_TOWER},
        {"one_tower", ALEXNET_VARIANT_ONE_TOWER},     {"paper-2012", ALEXNET_VARIANT_PAPER_2012},
        {"paper", ALEXNET_VARIANT_PAPER_2012},        {"paper_2012", ALEXNET_VARIANT_PAPER_2012},
        {"torchvision", ALEXNET_VARIANT_TORCHVISION},
    };
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        if (strcmp(name, aliases[i].name) == 0) {
            *out = aliases[i].variant;
            return 1;
        }
    }
    return 0;
}

alexnet_status an_struct_size_check(const void *object, size_t known_size, size_t min_size, const char *what)
{
    size_t struct_size = *(const size_t *)object;
    if (struct_size < min_size)
        return an_error(ALEXNET_E_INVALID_ARGUMENT,
                        "%s: struct_size %zu is smaller than %zu (initialise it with its _init function)", what,
                        struct_size, min_size);
    const unsigned char *bytes = object;
    for (size_t i = known_size; i < struct_size; i++) {
        if (bytes[i] != 0)
            return an_error(ALEXNET_E_UNSUPPORTED,
                            "%s: struct_size %zu sets fields this library version (%s) does not know", what,
                            struct_size, ALEXNET_VERSION_STRING);
    }
    return ALEXNET_OK;
}

static alexnet_conv_layer_config an_conv(uint32_t out, uint32_t kernel, uint32_t stride, uint32_t pad,
                                         uint32_t groups, uint32_t lrn, uint32_t pool)
{
    alexnet_conv_layer_config conv = {out, kernel, stride, pad, groups, lrn, pool};
    return conv;
}

alexnet_status alexnet_config_preset(alexnet_variant variant, alexnet_config *out_config)
{
    an_error_clear();
    if (out_config == NULL)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_config_preset: out_config is NULL");
    if (variant < ALEXNET_VARIANT_ONE_TOWER || variant > ALEXNET_VARIANT_TORCHVISION)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "alexnet_config_preset: unknown variant %d", (int)variant);

    alexnet_config c;
    memset(&c, 0, sizeof c);
    c.struct_size = sizeof c;
    c.variant = variant;
    c.input_channels = 3;
    c.input_height = c.input_width = 227;
    c.conv_count = 5;
    c.pool_kernel = 3;
    c.pool_stride = 2;
    /* Caffe/ONNX/PyTorch form by default, so bvlc_alexnet weights reproduce; the paper's form is
     * lrn_k = 2 with ALEXNET_LRN_ALPHA_ABSOLUTE. */
    c.lrn_size = 5;
    c.lrn_alpha = 1e-4f;
    c.lrn_beta = 0.75f;
    c.lrn_k = 1.0f;
    c.lrn_alpha_scaling = ALEXNET_LRN_ALPHA_OVER_SIZE;
    c.hidden_fc_count = 2;
    c.hidden_fc[0] = c.hidden_fc[1] = 4096;
    c.num_classes = 1000;
    c.dropout_rate = 0.5f;
    c.dropout_placement = ALEXNET_DROPOUT_BEFORE_HIDDEN_FC;

    switch (variant) {
    case ALEXNET_VARIANT_ONE_TOWER:
        c.conv[0] = an_conv(96, 11, 4, 0, 1, 0, 1);
        c.conv[1] = an_conv(256, 5, 1, 2, 1, 0, 1);
        c.conv[2] = an_conv(384, 3, 1, 1, 1, 0, 0);
        c.conv[3] = an_conv(384, 3, 1, 1, 1, 0, 0);
        c.conv[4] = an_conv(256, 3, 1, 1, 1, 0, 1);
        break;
    case ALEXNET_VARIANT_PAPER_2012:
        c.conv[0] = an_conv(96, 11, 4, 0, 1, 1, 1);
        c.conv[1] = an_conv(256, 5, 1, 2, 2, 1, 1);
        c.conv[2] = an_conv(384, 3, 1, 1, 1, 0, 0);
        c.conv[3] = an_conv(384, 3, 1, 1, 2, 0, 0);
        c.conv[4] = an_conv(256, 3, 1, 1, 2, 0, 1);
        c.dropout_placement = ALEXNET_DROPOUT_AFTER_HIDDEN_FC; /* Caffe's drop6/drop7 */
        break;
    default: /* ALEXNET_VARIANT_TORCHVISION */
        c.input_height = c.input_width = 224;
        c.conv[0] = an_conv(64, 11, 4, 2, 1, 0, 1);
        c.conv[1] = an_conv(192, 5, 1, 2, 1, 0, 1);
        c.conv[2] = an_conv(384, 3, 1, 1, 1, 0, 0);
        c.conv[3] = an_conv(256, 3, 1, 1, 1, 0, 0);
        c.conv[4] = an_conv(256, 3, 1, 1, 1, 0, 1);
        c.adaptive_pool_size = 6;
        break;
    }
    *out_config = c;
    return ALEXNET_OK;
}

static alexnet_status an_check_range(const char *field, uint32_t value, uint32_t low, uint32_t high)
{
    if (value < low || value > high)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "config.%s = %u is outside [%u, %u]", field, value, low, high);
    return ALEXNET_OK;
}

#define AN_CHECK(expr)                                                                                         \
    do {                                                                                                       \
        alexnet_status an_check_status_ = (expr);                                                              \
        if (an_check_status_ != ALEXNET_OK)                                                                    \
            return an_check_status_;                                                                           \
    } while (0)

static alexnet_status an_check_conv(const alexnet_config *c, uint32_t index, uint32_t in_channels)
{
    const alexnet_conv_layer_config *conv = &c->conv[index];
    char field[48];
    snprintf(field, sizeof field, "conv[%u].out_channels", index);
    AN_CHECK(an_check_range(field, conv->out_channels, 1, AN_MAX_CHANNELS));
    snprintf(field, sizeof field, "conv[%u].kernel_size", index);
    AN_CHECK(an_check_range(field, conv->kernel_size, 1, 64));
    snprintf(field, sizeof field, "conv[%u].stride", index);
    AN_CHECK(an_check_range(field, conv->stride, 1, 64));
    snprintf(field, sizeof field, "conv[%u].padding", index);
    AN_CHECK(an_check_range(field, conv->padding, 0, conv->kernel_size - 1));
    snprintf(field, sizeof field, "conv[%u].groups", index);
    AN_CHECK(an_check_range(field, conv->groups, 1, AN_MAX_CHANNELS));
    if (in_channels % conv->groups != 0 || conv->out_channels % conv->groups != 0)
        return an_error(ALEXNET_E_INVALID_ARGUMENT,
                        "config.conv[%u].groups = %u must divide both the input (%u) and output (%u) channels",
                        index, conv->groups, in_channels, conv->out_channels);
    return ALEXNET_OK;
}

static int an_finite_in(float value, float low, float high) { return isfinite(value) && value >= low && value <= high; }

alexnet_status an_config_check(const alexnet_config *c)
{
    AN_CHECK(an_struct_size_check(c, sizeof *c, sizeof *c, "alexnet_config"));
    if ((unsigned)c->variant > ALEXNET_VARIANT_TORCHVISION)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "config.variant = %d is not a known variant", (int)c->variant);
    AN_CHECK(an_check_range("input_channels", c->input_channels, 1, AN_MAX_CHANNELS));
    AN_CHECK(an_check_range("input_height", c->input_height, 1, AN_MAX_INPUT_SIZE));
    AN_CHECK(an_check_range("input_width", c->input_width, 1, AN_MAX_INPUT_SIZE));
    AN_CHECK(an_check_range("conv_count", c->conv_count, 1, ALEXNET_MAX_CONV_LAYERS));
    uint32_t channels = c->input_channels;
    int any_lrn = 0, any_pool = 0;
    for (uint32_t i = 0; i < c->conv_count; i++) {
        AN_CHECK(an_check_conv(c, i, channels));
        channels = c->conv[i].out_channels;
        any_lrn |= c->conv[i].lrn != 0;
        any_pool |= c->conv[i].max_pool != 0;
    }
    if (any_pool) {
        AN_CHECK(an_check_range("pool_kernel", c->pool_kernel, 1, 16));
        AN_CHECK(an_check_range("pool_stride", c->pool_stride, 1, 16));
    }
    if (any_lrn) {
        AN_CHECK(an_check_range("lrn_size", c->lrn_size, 1, 63));
        if (!an_finite_in(c->lrn_alpha, 0.0f, 1e6f) || !an_finite_in(c->lrn_beta, 0.0f, 16.0f) ||
            !an_finite_in(c->lrn_k, 1e-6f, 1e6f))
            return an_error(ALEXNET_E_INVALID_ARGUMENT,
                            "config.lrn_alpha/lrn_beta/lrn_k = %g/%g/%g: need finite alpha >= 0, 0 <= beta <= 16, "
                            "k > 0", (double)c->lrn_alpha, (double)c->lrn_beta, (double)c->lrn_k);
        if ((unsigned)c->lrn_alpha_scaling > ALEXNET_LRN_ALPHA_ABSOLUTE)
            return an_error(ALEXNET_E_INVALID_ARGUMENT, "config.lrn_alpha_scaling = %d is unknown",
                            (int)c->lrn_alpha_scaling);
    }
    AN_CHECK(an_check_range("adaptive_pool_size", c->adaptive_pool_size, 0, 64));
    AN_CHECK(an_check_range("hidden_fc_count", c->hidden_fc_count, 0, ALEXNET_MAX_HIDDEN_FC_LAYERS));
    for (uint32_t i = 0; i < c->hidden_fc_count; i++) {
        char field[32];
        snprintf(field, sizeof field, "hidden_fc[%u]", i);
        AN_CHECK(an_check_range(field, c->hidden_fc[i], 1, AN_MAX_FEATURES));
    }
    AN_CHECK(an_check_range("num_classes", c->num_classes, 1, AN_MAX_FEATURES));
    if (!an_finite_in(c->dropout_rate, 0.0f, 0.999f))
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "config.dropout_rate = %g is outside [0, 1)",
                        (double)c->dropout_rate);
    if ((unsigned)c->dropout_placement > ALEXNET_DROPOUT_AFTER_HIDDEN_FC)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "config.dropout_placement = %d is unknown",
                        (int)c->dropout_placement);
    return ALEXNET_OK;
}

/* ---- the layer table ---- */

typedef struct an_layer_builder {
    an_layer_table *table;
    uint32_t channels, height, width; /* the current activation shape */
} an_layer_builder;

static an_layer *an_layer_add(an_layer_builder *b, alexnet_layer_type type, const char *prefix, uint32_t number)
{
    an_layer *layer = &b->table->layers[b->table->count++];
    memset(layer, 0, sizeof *layer);
    layer->info.struct_size = sizeof layer->info;
    layer->info.type = type;
    if (number == 0)
        snprintf(layer->info.name, sizeof layer->info.name, "%s", prefix);
    else
        snprintf(layer->info.name, sizeof layer->info.name, "%s%u", prefix, number);
    layer->in_channels = b->channels;
    layer->in_height = b->height;
    layer->in_width = b->width;
    return layer;
}

static void an_layer_set_output(an_layer_builder *b, an_layer *layer, uint32_t c, uint32_t h, uint32_t w)
{
    layer->info.channels = b->channels = c;
    layer->info.height = b->height = h;
    layer->info.width = b->width = w;
}

/* Output size of a sliding window, or 0 when the window does not fit even once. */
static uint32_t an_window_output(uint32_t size, uint32_t kernel, uint32_t stride, uint32_t padding)
{
    uint64_t padded = (uint64_t)size + 2u * (uint64_t)padding;
    if (padded < kernel)
        return 0;
    return (uint32_t)((padded - kernel) / stride + 1);
}

static alexnet_status an_add_conv_stage(an_layer_builder *b, const alexnet_config *c, uint32_t i)
{
    const alexnet_conv_layer_config *conv = &c->conv[i];
    an_layer *layer = an_layer_add(b, ALEXNET_LAYER_CONV, "conv", i + 1);
    layer->stage = i;
    layer->info.kernel_size = conv->kernel_size;
    layer->info.stride = conv->stride;
    layer->info.padding = conv->padding;
    layer->info.groups = conv->groups;
    layer->info.relu = 1;
    uint64_t weights = (uint64_t)conv->out_channels * (b->channels / conv->groups) * conv->kernel_size *
                       conv->kernel_size;
    layer->info.parameter_count = weights + conv->out_channels;
    uint32_t h = an_window_output(b->height, conv->kernel_size, conv->stride, conv->padding);
    uint32_t w = an_window_output(b->width, conv->kernel_size, conv->stride, conv->padding);
    if (h == 0 || w == 0)
        return an_error(ALEXNET_E_SHAPE, "conv%u: a %ux%u input is smaller than its %u x %u kernel", i + 1,
                        b->height, b->width, conv->kernel_size, conv->kernel_size);
    an_layer_set_output(b, layer, conv->out_channels, h, w);
    if (conv->lrn) {
        an_layer *norm = an_layer_add(b, ALEXNET_LAYER_LRN, "norm", i + 1);
        norm->stage = i;
        norm->info.kernel_size = c->lrn_size;
        norm->info.relu = 1;
        an_layer_set_output(b, norm, b->channels, b->height, b->width);
    }
    if (conv->max_pool) {
        an_layer *pool = an_layer_add(b, ALEXNET_LAYER_MAX_POOL, "pool", i + 1);
        pool->stage = i;
        pool->info.kernel_size = c->pool_kernel;
        pool->info.stride = c->pool_stride;
        pool->info.relu = 1;
        uint32_t ph = an_window_output(b->height, c->pool_kernel, c->pool_stride, 0);
        uint32_t pw = an_window_output(b->width, c->pool_kernel, c->pool_stride, 0);
        if (ph == 0 || pw == 0)
            return an_error(ALEXNET_E_SHAPE, "pool%u: a %ux%u input is smaller than the %u x %u window", i + 1,
                            b->height, b->width, c->pool_kernel, c->pool_kernel);
        an_layer_set_output(b, pool, b->channels, ph, pw);
    }
    return ALEXNET_OK;
}

static void an_add_dropout(an_layer_builder *b, const alexnet_config *c, uint32_t dropped_number)
{
    an_layer *drop = an_layer_add(b, ALEXNET_LAYER_DROPOUT, "drop", dropped_number);
    drop->info.relu = b->table->count >= 2 ? b->table->layers[b->table->count - 2].info.relu : 0;
    (void)c;
    an_layer_set_output(b, drop, b->channels, b->height, b->width);
}

static alexnet_status an_add_fc(an_layer_builder *b, uint32_t number, uint32_t stage, uint32_t out_features,
                                int relu)
{
    an_layer *fc = an_layer_add(b, ALEXNET_LAYER_FC, "fc", number);
    fc->stage = stage;
    fc->info.relu = (uint32_t)relu;
    uint64_t in_features = (uint64_t)b->channels * b->height * b->width;
    uint64_t weights;
    if (an_mul_overflow_u64(in_features, out_features, &weights) || in_features > 0xFFFFFFFFull)
        return an_error(ALEXNET_E_SHAPE, "fc%u: %llu x %u weights is too large", number,
                        (unsigned long long)in_features, out_features);
    fc->info.parameter_count = weights + out_features;
    an_layer_set_output(b, fc, out_features, 1, 1);
    return ALEXNET_OK;
}

static alexnet_status an_add_classifier(an_layer_builder *b, const alexnet_config *c)
{
    uint32_t first_fc = c->conv_count + 1; /* fc6 after five convolutions, as in the article */
    int before = c->dropout_placement == ALEXNET_DROPOUT_BEFORE_HIDDEN_FC;
    for (uint32_t j = 0; j < c->hidden_fc_count; j++) {
        uint32_t number = first_fc + j;
        if (before)
            an_add_dropout(b, c, number - 1);
        AN_CHECK(an_add_fc(b, number, j, c->hidden_fc[j], 1));
        if (!before)
            an_add_dropout(b, c, number);
    }
    AN_CHECK(an_add_fc(b, first_fc + c->hidden_fc_count, c->hidden_fc_count, c->num_classes, 0));
    an_layer *prob = an_layer_add(b, ALEXNET_LAYER_SOFTMAX, "prob", 0);
    an_layer_set_output(b, prob, c->num_classes, 1, 1);
    return ALEXNET_OK;
}

alexnet_status an_config_layers(const alexnet_config *c, uint32_t height, uint32_t width, an_layer_table *table)
{
    if (height == 0 && width == 0) {
        height = c->input_height;
        width = c->input_width;
    }
    if (height == 0 || width == 0 || height > AN_MAX_INPUT_SIZE || width > AN_MAX_INPUT_SIZE)
        return an_error(ALEXNET_E_SHAPE, "input size %ux%u is outside [1, %u]", height, width, AN_MAX_INPUT_SIZE);
    if (c->adaptive_pool_size == 0 && (height != c->input_height || width != c->input_width))
        return an_error(ALEXNET_E_SHAPE,
                        "input size %ux%u: this configuration has no adaptive pooling and accepts only %ux%u",
                        height, width, c->input_height, c->input_width);
    table->count = 0;
    table->parameter_count = 0;
    an_layer_builder b = {table, c->input_channels, height, width};
    an_layer *input = an_layer_add(&b, ALEXNET_LAYER_INPUT, "input", 0);
    an_layer_set_output(&b, input, c->input_channels, height, width);
    for (uint32_t i = 0; i < c->conv_count; i++)
        AN_CHECK(an_add_conv_stage(&b, c, i));
    if (c->adaptive_pool_size != 0) {
        an_layer *avg = an_layer_add(&b, ALEXNET_LAYER_ADAPTIVE_AVG_POOL, "avgpool", 0);
        avg->info.relu = 1;
        an_layer_set_output(&b, avg, b.channels, c->adaptive_pool_size, c->adaptive_pool_size);
    }
    AN_CHECK(an_add_classifier(&b, c));
    for (size_t i = 0; i < table->count; i++)
        table->parameter_count += table->layers[i].info.parameter_count;
    return ALEXNET_OK;
}

alexnet_status an_config_validate_full(const alexnet_config *config, an_layer_table *table)
{
    AN_CHECK(an_config_check(config));
    alexnet_status status = an_config_layers(config, 0, 0, table);
    if (status != ALEXNET_OK)
        return an_error_prefix(ALEXNET_E_INVALID_ARGUMENT, "config at its input size");
    return ALEXNET_OK;
}

alexnet_status an_config_min_input(const alexnet_config *config, uint32_t *out_size)
{
    if (config->adaptive_pool_size == 0) {
        *out_size = config->input_height < config->input_width ? config->input_height : config->input_width;
        return ALEXNET_OK;
    }
    /* Layer outputs grow monotonically with the input, so the first size that works is the minimum. */
    an_layer_table table;
    for (uint32_t size = 1; size <= AN_MAX_INPUT_SIZE; size++) {
        if (an_config_layers(config, size, size, &table) == ALEXNET_OK) {
            an_error_clear();
            *out_size = size;
            return ALEXNET_OK;
        }
    }
    return an_error(ALEXNET_E_INVALID_ARGUMENT, "config: no input size up to %u is accepted", AN_MAX_INPUT_SIZE);
}

int an_layer_find(const an_layer_table *table, const char *name)
{
    for (size_t i = 0; i < table->count; i++) {
        if (strcmp(table->layers[i].info.name, name) == 0)
            return (int)i;
    }
    return -1;
}
