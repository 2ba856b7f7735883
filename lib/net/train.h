/* The trainer: a private copy of the weights (plus gradients and momentum) on its own backend context,
 * the training schedule (forward keeping every activation, backward, SGD update), the epoch loop with
 * augmentation, evaluation, and checkpoints. See docs/TRAINING.md. */
#ifndef AN_NET_TRAIN_H
#define AN_NET_TRAIN_H

#include "backend/backend.h"
#include "net/model.h"
#include "util/rng.h"

/* Per parameter tensor: the value, its gradient and its momentum, each a plain backend buffer. Frozen
 * tensors have no gradient or momentum buffer. */
typedef struct an_train_tensor {
    an_buffer *param, *grad, *velocity;
    float lr_multiplier;    /* layer multiplier x (bias multiplier for biases) */
    float decay_multiplier; /* 1, or the bias decay multiplier for biases */
} an_train_tensor;

/* The resolved options: everything the schedule and the loop need, with defaults applied. */
typedef struct an_train_settings {
    size_t batch;
    float learning_rate, momentum, weight_decay, dropout_rate;
    alexnet_lr_schedule schedule;
    float lr_gamma;
    uint32_t lr_step_epochs, lr_patience;
    alexnet_augment_options augment;
    alexnet_progress_fn progress;
    void *progress_user;
} an_train_settings;

/* Everything a checkpoint restores besides the tensors. */
typedef struct an_train_state {
    uint64_t seed;
    uint64_t step;              /* steps completed */
    uint32_t epoch;             /* epochs completed */
    size_t epoch_position;      /* images of the current epoch done */
    size_t epoch_dataset_count; /* size of the dataset the current epoch's order was drawn for (0: none) */
    double epoch_loss_sum;      /* over the images of the current epoch so far */
    uint64_t epoch_correct;
    float learning_rate;        /* the rate the next step uses */
    double plateau_best;        /* best monitored loss so far (INFINITY before the first epoch) */
    uint32_t plateau_bad_epochs;
    an_rng augment_rng;         /* crops, mirrors, lighting */
} an_train_state;

struct alexnet_trainer {
    alexnet_allocator allocator;
    alexnet_config config;      /* the model's, with the fine-tuning class count */
    an_layer_table layers;      /* at the configured input size */
    an_param_table params;
    const an_backend *backend;
    an_backend_context *backend_context;
    an_train_settings settings;
    an_train_tensor tensors[AN_MAX_TENSORS];
    int frozen[AN_MAX_LAYERS];     /* per layer: nonzero = no update */
    uint32_t lowest_trainable;     /* layer index; backward stops there */
    uint32_t last_fc;              /* layer index of the classifier (its output is the logits) */
    an_buffer *weights[AN_MAX_LAYERS];     /* bound forward handles of conv/FC layers */
    an_buffer *activations[AN_MAX_LAYERS]; /* output of each layer at the trainer's batch; [0] = input */
    size_t activation_elements[AN_MAX_LAYERS]; /* per image */
    an_buffer *gradient[2];        /* ping-pong buffers for the gradient flowing down */
    an_buffer *labels, *losses;    /* batch floats */
    float *host_input;             /* batch x C x H x W */
    float *host_logits;            /* batch x classes */
    float *host_labels, *host_losses;
    an_train_state state;
};

/* Create/destroy (train.c). options already checked for struct_size; the model is only read. */
alexnet_status an_trainer_create(const alexnet_model *model, const alexnet_trainer_options *options,
                                 alexnet_trainer **out);
void an_trainer_free(alexnet_trainer *trainer);
/* ALEXNET_E_UNSUPPORTED, naming the backend and the first missing op, unless it implements every training op. */
alexnet_status an_trainer_check_backend(const an_backend *backend);
/* The op descriptor of layer i at batch n. */
void an_trainer_layer_desc(const alexnet_trainer *trainer, uint32_t layer, size_t batch, an_op_desc *out);
static inline size_t an_trainer_input_elements(const alexnet_trainer *trainer)
{
    return trainer->activation_elements[0];
}

/* One step on the batch in host_input / host_labels (train_step.c): forward, loss, backward, update.
 * Returns the mean loss and the number of correct top-1 predictions. */
alexnet_status an_trainer_step_host(alexnet_trainer *trainer, size_t batch, double *out_loss,
                                    size_t *out_correct);
/* Forward in evaluation mode (dropout off) on host_input; logits into host_logits. */
alexnet_status an_trainer_infer_host(alexnet_trainer *trainer, size_t batch);

/* The epoch loop and evaluation (train_loop.c). */
alexnet_status an_trainer_evaluate(alexnet_trainer *trainer, const alexnet_dataset *dataset, int ten_crop,
                                   alexnet_evaluation *out);
alexnet_status an_trainer_train(alexnet_trainer *trainer, const alexnet_dataset *train,
                                const alexnet_dataset *validation, uint32_t epochs);
/* The learning-rate schedule's update after an epoch completed (state.epoch already counts it); monitored
 * is the loss PLATEAU watches. */
void an_trainer_schedule(alexnet_trainer *trainer, double monitored);

/* Checkpoints and export (train_checkpoint.c). */
alexnet_status an_trainer_save_checkpoint(const alexnet_trainer *trainer, const char *path);
alexnet_status an_trainer_load_checkpoint(alexnet_trainer *trainer, const char *path);
alexnet_status an_trainer_export(const alexnet_trainer *trainer, alexnet_model **out_model);

#endif
