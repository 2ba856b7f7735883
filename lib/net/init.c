/* Seeded initialisation. Each tensor draws from its own stream (seed, tensor index), so the values of
 * one tensor do not depend on how many values the others drew; the RNG is integer-only and the normal
 * transform uses no libm transcendental (util/rng.h), so a seed gives the same bits everywhere. */
#include <math.h>

#include "net/model.h"
#include "util/error.h"
#include "util/rng.h"

/* The article's nets give conv2, conv4, conv5 (0-based stages 1, 3, 4) and the hidden FC layers a
 * positive bias "to accelerate the early stages of learning by providing the ReLUs with positive inputs". */
static int an_gets_positive_bias(const alexnet_model *model, const an_layer *layer)
{
    if (layer->info.type == ALEXNET_LAYER_FC)
        return layer->stage < model->config.hidden_fc_count;
    return layer->stage == 1 || layer->stage == 3 || layer->stage == 4;
}

static uint64_t an_fan_in(const an_param_tensor *weight)
{
    uint64_t fan_in = 1;
    for (uint32_t i = 1; i < weight->rank; i++)
        fan_in *= weight->shape[i];
    return fan_in;
}

static void an_fill_constant(float *dst, size_t count, float value)
{
    for (size_t i = 0; i < count; i++)
        dst[i] = value;
}

static void an_init_tensor(const alexnet_model *model, alexnet_init_scheme scheme, size_t index, uint64_t seed)
{
    const an_param_tensor *t = &model->params.tensors[index];
    const an_layer *layer = &model->layers.layers[t->layer];
    float *data = an_model_tensor_data(model, t);
    int is_fc = layer->info.type == ALEXNET_LAYER_FC;
    int hidden_fc = is_fc && layer->stage < model->config.hidden_fc_count;
    an_rng rng;
    an_rng_seed(&rng, seed, index);

    if (scheme == ALEXNET_INIT_KAIMING) {
        /* PyTorch's nn.Conv2d / nn.Linear default: kaiming_uniform(a = sqrt(5)) for weights, which is
         * U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for biases (fan_in of the weight). */
        const an_param_tensor *weight = t->is_bias ? t - 1 : t;
        double bound = 1.0 / sqrt((double)an_fan_in(weight));
        an_rng_fill_uniform(&rng, data, t->element_count, -bound, bound);
        return;
    }
    if (t->is_bias) {
        float positive = scheme == ALEXNET_INIT_PAPER ? 1.0f : 0.1f;
        an_fill_constant(data, t->element_count, an_gets_positive_bias(model, layer) ? positive : 0.0f);
        return;
    }
    double std = (scheme == ALEXNET_INIT_CAFFE && hidden_fc) ? 0.005 : 0.01;
    an_rng_fill_normal(&rng, data, t->element_count, 0.0, std);
}

alexnet_status an_model_initialize(alexnet_model *model, alexnet_init_scheme scheme, uint64_t seed)
{
    if (scheme == ALEXNET_INIT_DEFAULT)
        scheme = model->config.variant == ALEXNET_VARIANT_TORCHVISION ? ALEXNET_INIT_KAIMING : ALEXNET_INIT_PAPER;
    /* Zero the alignment padding too, so saved and compared blocks never contain stale bytes. */
    for (size_t i = 0; i < model->params.total_floats; i++)
        model->block[i] = 0.0f;
    for (size_t i = 0; i < model->params.count; i++)
        an_init_tensor(model, scheme, i, seed);
    return ALEXNET_OK;
}
