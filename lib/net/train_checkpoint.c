/* Checkpoints (safetensors: weights under the model's names, "momentum." + name for trainable tensors, the
 * trainer state as metadata, floats and generator words as exact hexadecimal bit patterns) and export of
 * the weights as a new model. A checkpoint is read and checked completely before the trainer changes. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "net/config.h"
#include "net/train.h"
#include "util/alloc.h"
#include "util/checked.h"
#include "util/error.h"

#define AN_CHECK(expr)                                                                                         \
    do {                                                                                                       \
        alexnet_status an_check_status_ = (expr);                                                              \
        if (an_check_status_ != ALEXNET_OK)                                                                    \
            return an_check_status_;                                                                           \
    } while (0)

#define AN_CHECKPOINT_FORMAT "libalexnet-checkpoint"
#define AN_CHECKPOINT_VERSION "1"
#define AN_MOMENTUM_PREFIX "momentum."
#define AN_MAX_CHECKPOINT_TENSORS (2 * AN_MAX_TENSORS)
#define AN_METADATA_COUNT 16

/* Where each checkpoint tensor's floats live in one host block: the parameters, then the velocities of the
 * trainable tensors, in tensor order. */
typedef struct an_checkpoint_layout {
    char names[AN_MAX_CHECKPOINT_TENSORS][48];
    size_t tensor_of[AN_MAX_CHECKPOINT_TENSORS]; /* parameter index */
    int is_velocity[AN_MAX_CHECKPOINT_TENSORS];
    size_t offset[AN_MAX_CHECKPOINT_TENSORS];
    size_t count;
    size_t total_floats;
} an_checkpoint_layout;

static int an_tensor_trainable(const alexnet_trainer *t, size_t i) { return !t->frozen[t->params.tensors[i].layer]; }

static alexnet_status an_checkpoint_layout_build(const alexnet_trainer *t, an_checkpoint_layout *l)
{
    l->count = 0;
    l->total_floats = 0;
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < t->params.count; i++) {
            if (pass == 1 && !an_tensor_trainable(t, i))
                continue;
            size_t k = l->count++;
            snprintf(l->names[k], sizeof l->names[k], "%s%s", pass ? AN_MOMENTUM_PREFIX : "", t->params.tensors[i].name);
            l->tensor_of[k] = i;
            l->is_velocity[k] = pass;
            l->offset[k] = l->total_floats;
            if (an_add_overflow_size(l->total_floats, t->params.tensors[i].element_count, &l->total_floats))
                return an_error(ALEXNET_E_OUT_OF_MEMORY, "checkpoint: size overflows");
        }
    }
    return ALEXNET_OK;
}

static an_buffer *an_checkpoint_buffer(const alexnet_trainer *t, const an_checkpoint_layout *l, size_t k)
{
    const an_train_tensor *tensor = &t->tensors[l->tensor_of[k]];
    return l->is_velocity[k] ? tensor->velocity : tensor->param;
}

/* ---- state as metadata ---- */

typedef struct an_checkpoint_text {
    char values[AN_METADATA_COUNT][72];
    an_safetensors_metadata_entry entries[AN_METADATA_COUNT];
    size_t count;
} an_checkpoint_text;

static void an_text_add(an_checkpoint_text *text, const char *key, const char *format, ...) AN_PRINTF(3, 4);

static void an_text_add(an_checkpoint_text *text, const char *key, const char *format, ...)
{
    size_t k = text->count++;
    va_list args;
    va_start(args, format);
    vsnprintf(text->values[k], sizeof text->values[k], format, args);
    va_end(args);
    /* The writer only reads metadata strings; the casts drop const for its struct's sake. */
    text->entries[k].key = (char *)key;
    text->entries[k].value = text->values[k];
}

static uint64_t an_double_bits(double x)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits;
}

static uint32_t an_float_bits(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits;
}

static void an_state_to_text(const alexnet_trainer *t, an_checkpoint_text *text)
{
    const an_train_state *s = &t->state;
    text->count = 0;
    an_text_add(text, "format", "%s", AN_CHECKPOINT_FORMAT);
    an_text_add(text, "checkpoint_version", "%s", AN_CHECKPOINT_VERSION);
    an_text_add(text, "variant", "%s", an_variant_name(t->config.variant));
    an_text_add(text, "num_classes", "%u", t->config.num_classes);
    an_text_add(text, "seed", "%" PRIu64, s->seed);
    an_text_add(text, "step", "%" PRIu64, s->step);
    an_text_add(text, "epoch", "%u", s->epoch);
    an_text_add(text, "epoch_position", "%zu", s->epoch_position);
    an_text_add(text, "epoch_dataset_count", "%zu", s->epoch_dataset_count);
    an_text_add(text, "epoch_loss_sum", "%016" PRIx64, an_double_bits(s->epoch_loss_sum));
    an_text_add(text, "epoch_correct", "%" PRIu64, s->epoch_correct);
    an_text_add(text, "learning_rate", "%08" PRIx32, an_float_bits(s->learning_rate));
    an_text_add(text, "plateau_best", "%016" PRIx64, an_double_bits(s->plateau_best));
    an_text_add(text, "plateau_bad_epochs", "%u", s->plateau_bad_epochs);
    an_text_add(text, "augment_rng", "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64,
                s->augment_rng.state[0], s->augment_rng.state[1], s->augment_rng.state[2], s->augment_rng.state[3]);
}

static alexnet_status an_meta_u64(const an_safetensors *file, const char *key, int base, size_t digits,
                                  uint64_t max, uint64_t *out)
{
    const char *text = an_safetensors_metadata(file, key);
    if (text == NULL)
        return an_error(ALEXNET_E_FORMAT, "checkpoint: metadata \"%s\" is missing", key);
    char *end = NULL;
    errno = 0;
    unsigned long long value = strtoull(text, &end, base);
    int bad = errno != 0 || end == text || *end != '\0' || text[0] == '-' || text[0] == '+' || value > max ||
              (digits != 0 && strlen(text) != digits);
    if (bad)
        return an_error(ALEXNET_E_FORMAT, "checkpoint: metadata %s = \"%.40s\" is malformed", key, text);
    *out = value;
    return ALEXNET_OK;
}

static alexnet_status an_meta_rng(const an_safetensors *file, an_rng *rng)
{
    const char *text = an_safetensors_metadata(file, "augment_rng");
    if (text == NULL || strlen(text) != 64)
        return an_error(ALEXNET_E_FORMAT, "checkpoint: metadata augment_rng is missing or not 64 hex digits");
    for (int w = 0; w < 4; w++) {
        uint64_t word = 0;
        for (int i = 0; i < 16; i++) {
            char c = text[16 * w + i];
            int digit = c >= '0' && c <= '9' ? c - '0' : (c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1);
            if (digit < 0)
                return an_error(ALEXNET_E_FORMAT, "checkpoint: metadata augment_rng has a non-hex digit");
            word = word << 4 | (uint64_t)digit;
        }
        rng->state[w] = word;
    }
    if ((rng->state[0] | rng->state[1] | rng->state[2] | rng->state[3]) == 0)
        return an_error(ALEXNET_E_FORMAT, "checkpoint: augment_rng is all zero (not a generator state)");
    return ALEXNET_OK;
}

static alexnet_status an_state_from_file(const an_safetensors *file, an_train_state *s)
{
    uint64_t v;
    memset(s, 0, sizeof *s);
    AN_CHECK(an_meta_u64(file, "seed", 10, 0, UINT64_MAX, &s->seed));
    AN_CHECK(an_meta_u64(file, "step", 10, 0, UINT64_MAX, &s->step));
    AN_CHECK(an_meta_u64(file, "epoch", 10, 0, UINT32_MAX, &v));
    s->epoch = (uint32_t)v;
    AN_CHECK(an_meta_u64(file, "epoch_position", 10, 0, SIZE_MAX, &v));
    s->epoch_position = (size_t)v;
    AN_CHECK(an_meta_u64(file, "epoch_dataset_count", 10, 0, SIZE_MAX, &v));
    s->epoch_dataset_count = (size_t)v;
    if (s->epoch_position > s->epoch_dataset_count)
        return an_error(ALEXNET_E_FORMAT, "checkpoint: epoch_position %zu is beyond the epoch's %zu images",
                        s->epoch_position, s->epoch_dataset_count);
    AN_CHECK(an_meta_u64(file, "epoch_loss_sum", 16, 16, UINT64_MAX, &v));
    memcpy(&s->epoch_loss_sum, &v, sizeof v);
    AN_CHECK(an_meta_u64(file, "epoch_correct", 10, 0, UINT64_MAX, &s->epoch_correct));
    AN_CHECK(an_meta_u64(file, "learning_rate", 16, 8, UINT32_MAX, &v));
    uint32_t rate_bits = (uint32_t)v;
    memcpy(&s->learning_rate, &rate_bits, sizeof rate_bits);
    AN_CHECK(an_meta_u64(file, "plateau_best", 16, 16, UINT64_MAX, &v));
    memcpy(&s->plateau_best, &v, sizeof v);
    AN_CHECK(an_meta_u64(file, "plateau_bad_epochs", 10, 0, UINT32_MAX, &v));
    s->plateau_bad_epochs = (uint32_t)v;
    if (!isfinite(s->learning_rate) || !(s->learning_rate > 0.0f) || !isfinite(s->epoch_loss_sum) ||
        isnan(s->plateau_best))
        return an_error(ALEXNET_E_FORMAT, "checkpoint: learning_rate, epoch_loss_sum or plateau_best is not a "
                        "valid number");
    return an_meta_rng(file, &s->augment_rng);
}

/* ---- save ---- */

static alexnet_status an_download_all(const alexnet_trainer *t, const an_checkpoint_layout *l, float *block)
{
    for (size_t k = 0; k < l->count; k++) {
        size_t count = t->params.tensors[l->tensor_of[k]].element_count;
        AN_CHECK(t->backend->download(t->backend_context, an_checkpoint_buffer(t, l, k), block + l->offset[k],
                                      count));
    }
    return ALEXNET_OK;
}

static alexnet_status an_write_checkpoint(const alexnet_trainer *t, const an_checkpoint_layout *l,
                                          const float *block, const char *path)
{
    an_safetensors_write_tensor tensors[AN_MAX_CHECKPOINT_TENSORS];
    for (size_t k = 0; k < l->count; k++) {
        const an_param_tensor *p = &t->params.tensors[l->tensor_of[k]];
        memset(&tensors[k], 0, sizeof tensors[k]);
        tensors[k].name = l->names[k];
        tensors[k].rank = p->rank;
        for (uint32_t d = 0; d < p->rank; d++)
            tensors[k].shape[d] = p->shape[d];
        tensors[k].data = block + l->offset[k];
    }
    an_checkpoint_text text;
    an_state_to_text(t, &text);
    return an_safetensors_write_file(path, tensors, l->count, text.entries, text.count, &t->allocator);
}

alexnet_status an_trainer_save_checkpoint(const alexnet_trainer *t, const char *path)
{
    an_checkpoint_layout layout;
    AN_CHECK(an_checkpoint_layout_build(t, &layout));
    float *block = an_alloc(&t->allocator, layout.total_floats * sizeof(float), "checkpoint staging");
    if (block == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    alexnet_status status = t->backend->sync(t->backend_context);
    if (status == ALEXNET_OK)
        status = an_download_all(t, &layout, block);
    if (status == ALEXNET_OK)
        status = an_write_checkpoint(t, &layout, block, path);
    an_free(&t->allocator, block, layout.total_floats * sizeof(float));
    return status;
}

/* ---- load ---- */

static alexnet_status an_check_header(const alexnet_trainer *t, const an_safetensors *file,
                                      const an_checkpoint_layout *l)
{
    const char *format = an_safetensors_metadata(file, "format");
    const char *version = an_safetensors_metadata(file, "checkpoint_version");
    if (format == NULL || strcmp(format, AN_CHECKPOINT_FORMAT) != 0)
        return an_error(ALEXNET_E_FORMAT, "not a libalexnet checkpoint (metadata format is \"%.40s\")",
                        format != NULL ? format : "");
    if (version == NULL || strcmp(version, AN_CHECKPOINT_VERSION) != 0)
        return an_error(ALEXNET_E_UNSUPPORTED, "checkpoint version \"%.20s\"; this library reads version %s",
                        version != NULL ? version : "", AN_CHECKPOINT_VERSION);
    uint64_t classes;
    AN_CHECK(an_meta_u64(file, "num_classes", 10, 0, UINT32_MAX, &classes));
    if (classes != t->config.num_classes)
        return an_error(ALEXNET_E_SHAPE, "checkpoint has %llu classes, the trainer %u", (unsigned long long)classes,
                        t->config.num_classes);
    for (size_t k = 0; k < l->count; k++) {
        const an_param_tensor *p = &t->params.tensors[l->tensor_of[k]];
        const an_safetensors_tensor *found = an_safetensors_find(file, l->names[k]);
        if (found == NULL)
            return an_error(ALEXNET_E_SHAPE, "checkpoint lacks %s%s", l->names[k],
                            l->is_velocity[k] ? " (was it written with other frozen layers?)" : "");
        int same = found->rank == p->rank;
        for (uint32_t d = 0; same && d < p->rank; d++)
            same = found->shape[d] == p->shape[d];
        if (!same)
            return an_error(ALEXNET_E_SHAPE, "checkpoint tensor %s has another shape than the trainer's", l->names[k]);
    }
    if (file->tensor_count != l->count)
        return an_error(ALEXNET_E_SHAPE, "checkpoint has %zu tensors, the trainer expects %zu (other frozen layers "
                        "or another architecture)", file->tensor_count, l->count);
    return ALEXNET_OK;
}

static alexnet_status an_read_all(const an_safetensors *file, const an_checkpoint_layout *l,
                                  const alexnet_trainer *t, float *block)
{
    for (size_t k = 0; k < l->count; k++) {
        size_t count = t->params.tensors[l->tensor_of[k]].element_count;
        float *dst = block + l->offset[k];
        AN_CHECK(an_safetensors_read_f32(file, an_safetensors_find(file, l->names[k]), dst, count));
        for (size_t i = 0; i < count; i++) {
            if (!isfinite(dst[i]))
                return an_error(ALEXNET_E_FORMAT, "checkpoint tensor %s: element %zu is not finite", l->names[k], i);
        }
    }
    return ALEXNET_OK;
}

/* Everything is checked; make it the trainer's. */
static alexnet_status an_commit(alexnet_trainer *t, const an_checkpoint_layout *l, const float *block,
                                const an_train_state *state)
{
    for (size_t k = 0; k < l->count; k++) {
        size_t count = t->params.tensors[l->tensor_of[k]].element_count;
        AN_CHECK(t->backend->upload(t->backend_context, an_checkpoint_buffer(t, l, k), block + l->offset[k], count));
    }
    for (size_t i = 0; i < t->params.count; i += 2) {
        uint32_t layer = t->params.tensors[i].layer;
        an_op_desc d;
        an_trainer_layer_desc(t, layer, 1, &d);
        AN_CHECK(t->backend->weights_refresh(t->backend_context, &d, t->tensors[i].param, t->tensors[i + 1].param,
                                             t->weights[layer]));
    }
    AN_CHECK(t->backend->sync(t->backend_context));
    t->state = *state;
    return ALEXNET_OK;
}

static alexnet_status an_load_opened(alexnet_trainer *t, const an_safetensors *file)
{
    an_checkpoint_layout layout;
    AN_CHECK(an_checkpoint_layout_build(t, &layout));
    AN_CHECK(an_check_header(t, file, &layout));
    an_train_state state;
    AN_CHECK(an_state_from_file(file, &state));
    float *block = an_alloc(&t->allocator, layout.total_floats * sizeof(float), "checkpoint staging");
    if (block == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    alexnet_status status = an_read_all(file, &layout, t, block);
    if (status == ALEXNET_OK)
        status = an_commit(t, &layout, block, &state);
    an_free(&t->allocator, block, layout.total_floats * sizeof(float));
    return status;
}

alexnet_status an_trainer_load_checkpoint(alexnet_trainer *t, const char *path)
{
    an_byte_source source;
    AN_CHECK(an_byte_source_open_file(&source, path));
    an_safetensors file;
    memset(&file, 0, sizeof file);
    alexnet_status status = an_safetensors_open(&file, &source, &t->allocator);
    if (status == ALEXNET_OK)
        status = an_load_opened(t, &file);
    an_safetensors_close(&file);
    an_byte_source_close(&source);
    return status;
}

/* ---- export ---- */

alexnet_status an_trainer_export(const alexnet_trainer *t, alexnet_model **out_model)
{
    alexnet_model *model = NULL;
    AN_CHECK(an_model_allocate(&t->config, &t->allocator, &model));
    /* Padding between tensors stays zero, as in every other model. */
    memset(model->block, 0, model->params.total_floats * sizeof(float));
    alexnet_status status = t->backend->sync(t->backend_context);
    for (size_t i = 0; status == ALEXNET_OK && i < t->params.count; i++)
        status = t->backend->download(t->backend_context, t->tensors[i].param,
                                      an_model_tensor_data(model, &model->params.tensors[i]),
                                      t->params.tensors[i].element_count);
    if (status != ALEXNET_OK) {
        an_model_free(model);
        return status;
    }
    *out_model = model;
    return ALEXNET_OK;
}
