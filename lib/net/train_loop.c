/* The epoch loop (seeded order, augmentation, steps, schedule, progress events) and evaluation (centre
 * crop or the paper's ten crops, softmax averaged). */
#include <math.h>
#include <string.h>

#include "data/augment.h"
#include "data/dataset.h"
#include "net/train.h"
#include "util/alloc.h"
#include "util/error.h"

#define AN_CHECK(expr)                                                                                         \
    do {                                                                                                       \
        alexnet_status an_check_status_ = (expr);                                                              \
        if (an_check_status_ != ALEXNET_OK)                                                                    \
            return an_check_status_;                                                                           \
    } while (0)

static alexnet_status an_check_dataset(const alexnet_trainer *t, const alexnet_dataset *dataset, const char *what)
{
    if (dataset->count == 0)
        return an_error(ALEXNET_E_INVALID_ARGUMENT, "%s dataset is empty", what);
    if (dataset->num_classes > t->config.num_classes)
        return an_error(ALEXNET_E_SHAPE, "%s dataset has %u classes, the network %u", what, dataset->num_classes,
                        t->config.num_classes);
    alexnet_status status = an_augment_fits(dataset, &t->settings.augment, t->config.input_channels,
                                            t->config.input_height, t->config.input_width);
    return status == ALEXNET_OK ? ALEXNET_OK : an_error_prefix(status, what);
}

/* ---- evaluation ---- */

/* Adds softmax(logits row) to acc[classes], in double. */
static void an_add_softmax(const float *logits, uint32_t classes, double *acc)
{
    float max = logits[0];
    for (uint32_t c = 1; c < classes; c++)
        max = logits[c] > max ? logits[c] : max;
    double sum = 0.0;
    for (uint32_t c = 0; c < classes; c++)
        sum += exp((double)logits[c] - max);
    for (uint32_t c = 0; c < classes; c++)
        acc[c] += exp((double)logits[c] - max) / sum;
}

/* Loss and ranks of one image from its summed probabilities. Rank = classes ahead of the label, ties going to
 * the lower index as in alexnet_top_k. */
static void an_score_image(const double *acc, uint32_t classes, uint32_t crops, uint32_t label, double *loss,
                           size_t *top1, size_t *top5)
{
    double p = acc[label] / crops;
    *loss += -log(p > 1e-300 ? p : 1e-300);
    uint32_t rank = 0;
    for (uint32_t c = 0; c < classes; c++)
        rank += acc[c] > acc[label] || (acc[c] == acc[label] && c < label);
    *top1 += rank == 0;
    *top5 += rank < (classes < 5 ? classes : 5);
}

typedef struct an_eval_totals {
    double loss;
    size_t top1, top5;
} an_eval_totals;

/* Images [first, first + images): every (image, crop) pair through the network, batch by batch. */
static alexnet_status an_evaluate_chunk(alexnet_trainer *t, const alexnet_dataset *dataset, size_t first,
                                        size_t images, uint32_t crops, double *acc, an_eval_totals *totals)
{
    const uint32_t classes = t->config.num_classes, h = t->config.input_height, w = t->config.input_width;
    const size_t per_input = an_trainer_input_elements(t), pairs = images * crops;
    memset(acc, 0, images * classes * sizeof *acc);
    for (size_t begin = 0; begin < pairs; begin += t->settings.batch) {
        size_t n = pairs - begin < t->settings.batch ? pairs - begin : t->settings.batch;
        for (size_t j = 0; j < n; j++) {
            an_crop crop;
            an_augment_eval_crop(&t->settings.augment, dataset, h, w, (uint32_t)((begin + j) % crops), &crop);
            an_augment_render(dataset, first + (begin + j) / crops, &t->settings.augment, h, w, &crop,
                              t->host_input + j * per_input);
        }
        AN_CHECK(an_trainer_infer_host(t, n));
        for (size_t j = 0; j < n; j++)
            an_add_softmax(t->host_logits + j * classes, classes, acc + (begin + j) / crops * classes);
    }
    for (size_t i = 0; i < images; i++)
        an_score_image(acc + i * classes, classes, crops, dataset->labels[first + i], &totals->loss, &totals->top1,
                       &totals->top5);
    return ALEXNET_OK;
}

alexnet_status an_trainer_evaluate(alexnet_trainer *t, const alexnet_dataset *dataset, int ten_crop,
                                   alexnet_evaluation *out)
{
    AN_CHECK(an_check_dataset(t, dataset, "evaluation"));
    const uint32_t crops = ten_crop ? 10 : 1;
    /* As many whole images per chunk as a batch holds (at least one: its crops then span several batches). */
    size_t chunk = t->settings.batch / crops > 0 ? t->settings.batch / crops : 1;
    size_t acc_bytes = chunk * t->config.num_classes * sizeof(double);
    double *acc = an_alloc(&t->allocator, acc_bytes, "evaluation scores");
    if (acc == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    an_eval_totals totals = {0.0, 0, 0};
    alexnet_status status = ALEXNET_OK;
    for (size_t first = 0; status == ALEXNET_OK && first < dataset->count; first += chunk) {
        size_t images = dataset->count - first < chunk ? dataset->count - first : chunk;
        status = an_evaluate_chunk(t, dataset, first, images, crops, acc, &totals);
    }
    an_free(&t->allocator, acc, acc_bytes);
    if (status != ALEXNET_OK)
        return status;
    alexnet_evaluation result;
    memset(&result, 0, sizeof result);
    result.struct_size = sizeof result;
    result.count = dataset->count;
    result.loss = totals.loss / (double)dataset->count;
    result.top1_error = 1.0 - (double)totals.top1 / (double)dataset->count;
    result.top5_error = 1.0 - (double)totals.top5 / (double)dataset->count;
    *out = result;
    return ALEXNET_OK;
}

/* ---- training ---- */

/* The visiting order of an epoch: a Fisher-Yates shuffle from a stream that depends on (seed, epoch) only, so
 * a resumed run recomputes it instead of storing it. */
static void an_epoch_order(uint64_t seed, uint32_t epoch, size_t *order, size_t count)
{
    an_rng rng;
    an_rng_seed(&rng, seed, 0x0D0E000000000000ull + epoch);
    for (size_t i = 0; i < count; i++)
        order[i] = i;
    for (size_t i = count - 1; i > 0 && count > 1; i--) {
        size_t j = (size_t)(an_rng_next(&rng) % ((uint64_t)i + 1));
        size_t swap = order[i];
        order[i] = order[j];
        order[j] = swap;
    }
}

static int an_report(const alexnet_trainer *t, alexnet_train_progress *event)
{
    if (t->settings.progress == NULL)
        return 0;
    return t->settings.progress(t->settings.progress_user, event);
}

static alexnet_train_progress an_event(const alexnet_trainer *t, int end_of_epoch, size_t images_per_epoch)
{
    alexnet_train_progress event;
    memset(&event, 0, sizeof event);
    event.struct_size = sizeof event;
    event.end_of_epoch = end_of_epoch;
    event.epoch = t->state.epoch;
    event.step = t->state.step;
    event.images_done = t->state.epoch_position;
    event.images_per_epoch = images_per_epoch;
    event.validation_loss = event.validation_top1_error = event.validation_top5_error = NAN;
    return event;
}

/* Augment the next images of the epoch into the host staging. */
static size_t an_fill_batch(alexnet_trainer *t, const alexnet_dataset *train, const size_t *order)
{
    const uint32_t h = t->config.input_height, w = t->config.input_width;
    const size_t per_input = an_trainer_input_elements(t);
    size_t left = train->count - t->state.epoch_position;
    size_t n = left < t->settings.batch ? left : t->settings.batch;
    for (size_t j = 0; j < n; j++) {
        size_t index = order[t->state.epoch_position + j];
        an_crop crop;
        an_augment_draw(&t->state.augment_rng, &t->settings.augment, train, h, w, &crop);
        an_augment_render(train, index, &t->settings.augment, h, w, &crop, t->host_input + j * per_input);
        t->host_labels[j] = (float)train->labels[index];
    }
    return n;
}

/* One step of the epoch; *stop when the callback asks. On failure the generator is rewound, so the state is
 * exactly what it was before the call. */
static alexnet_status an_train_step(alexnet_trainer *t, const alexnet_dataset *train, const size_t *order, int *stop)
{
    an_rng saved = t->state.augment_rng;
    size_t n = an_fill_batch(t, train, order);
    float rate = t->state.learning_rate;
    double loss;
    size_t correct;
    alexnet_status status = an_trainer_step_host(t, n, &loss, &correct);
    if (status != ALEXNET_OK) {
        t->state.augment_rng = saved;
        return status;
    }
    t->state.epoch_position += n;
    t->state.epoch_loss_sum += loss * (double)n;
    t->state.epoch_correct += correct;
    alexnet_train_progress event = an_event(t, 0, train->count);
    event.loss = (float)loss;
    event.accuracy = (float)correct / (float)n;
    event.learning_rate = rate;
    *stop = an_report(t, &event);
    return ALEXNET_OK;
}

void an_trainer_schedule(alexnet_trainer *t, double monitored)
{
    an_train_state *s = &t->state;
    if (t->settings.schedule == ALEXNET_LR_STEP && s->epoch % t->settings.lr_step_epochs == 0) {
        s->learning_rate *= t->settings.lr_gamma;
    } else if (t->settings.schedule == ALEXNET_LR_PLATEAU) {
        if (monitored < s->plateau_best) {
            s->plateau_best = monitored;
            s->plateau_bad_epochs = 0;
        } else if (++s->plateau_bad_epochs >= t->settings.lr_patience) {
            s->learning_rate *= t->settings.lr_gamma;
            s->plateau_bad_epochs = 0;
        }
    }
}

static alexnet_status an_end_epoch(alexnet_trainer *t, const alexnet_dataset *train,
                                   const alexnet_dataset *validation, int *stop)
{
    alexnet_evaluation evaluation;
    if (validation != NULL)
        AN_CHECK(an_trainer_evaluate(t, validation, 0, &evaluation));
    alexnet_train_progress event = an_event(t, 1, train->count);
    double train_loss = t->state.epoch_loss_sum / (double)train->count;
    event.loss = (float)train_loss;
    event.accuracy = (float)((double)t->state.epoch_correct / (double)train->count);
    if (validation != NULL) {
        event.validation_loss = (float)evaluation.loss;
        event.validation_top1_error = (float)evaluation.top1_error;
        event.validation_top5_error = (float)evaluation.top5_error;
    }
    t->state.epoch++;
    t->state.epoch_position = 0;
    t->state.epoch_dataset_count = 0;
    t->state.epoch_loss_sum = 0.0;
    t->state.epoch_correct = 0;
    an_trainer_schedule(t, validation != NULL ? evaluation.loss : train_loss);
    event.learning_rate = t->state.learning_rate;
    *stop = an_report(t, &event);
    return ALEXNET_OK;
}

static alexnet_status an_train_epochs(alexnet_trainer *t, const alexnet_dataset *train,
                                      const alexnet_dataset *validation, uint32_t epochs, size_t *order)
{
    int stop = 0;
    while (t->state.epoch < epochs && !stop) {
        an_epoch_order(t->state.seed, t->state.epoch, order, train->count);
        t->state.epoch_dataset_count = train->count;
        while (t->state.epoch_position < train->count && !stop)
            AN_CHECK(an_train_step(t, train, order, &stop));
        if (!stop)
            AN_CHECK(an_end_epoch(t, train, validation, &stop));
    }
    return ALEXNET_OK;
}

alexnet_status an_trainer_train(alexnet_trainer *t, const alexnet_dataset *train, const alexnet_dataset *validation,
                                uint32_t epochs)
{
    AN_CHECK(an_check_dataset(t, train, "training"));
    if (validation != NULL)
        AN_CHECK(an_check_dataset(t, validation, "validation"));
    if (t->state.epoch_position > 0 && t->state.epoch_dataset_count != train->count)
        return an_error(ALEXNET_E_STATE,
                        "the trainer is %zu images into an epoch over %zu images; this dataset has %zu (resume "
                        "with the dataset the checkpoint was trained on)", t->state.epoch_position,
                        t->state.epoch_dataset_count, train->count);
    if (t->state.epoch >= epochs)
        return ALEXNET_OK;
    size_t *order = an_calloc(&t->allocator, train->count, sizeof *order, "epoch order");
    if (order == NULL)
        return ALEXNET_E_OUT_OF_MEMORY;
    alexnet_status status = an_train_epochs(t, train, validation, epochs, order);
    an_free(&t->allocator, order, train->count * sizeof *order);
    return status;
}
