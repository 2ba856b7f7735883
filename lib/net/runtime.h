/* A context's execution state: the chosen backend, the model's weights as backend buffers, and the plan
 * for the current shape (steps with their descriptors and the activation buffers they use). */
#ifndef AN_NET_RUNTIME_H
#define AN_NET_RUNTIME_H

#include "backend/backend.h"
#include "net/model.h"

/* Buffer slots: the input, two ping-pong buffers for the linear chain of layers, then one dedicated
 * buffer per captured layer, the logits and the probabilities. */
#define AN_SLOT_INPUT 0
#define AN_SLOT_PING 1
#define AN_SLOT_PONG 2
#define AN_MAX_SLOTS (3 + AN_MAX_LAYERS + 2)

typedef struct an_step {
    an_op_desc op;          /* descriptor at the planned (maximum) batch */
    uint32_t layer;         /* index in the layer table (the same at every input size) */
    int in_slot, out_slot;
    size_t out_elements;    /* per image */
    double flops_per_image; /* 2 x multiply-adds, for profiling */
} an_step;

typedef struct an_plan {
    an_layer_table layers;  /* at the planned input size */
    an_step steps[AN_MAX_LAYERS];
    size_t step_count;
    an_buffer *slots[AN_MAX_SLOTS];
    size_t slot_bytes[AN_MAX_SLOTS];
    size_t slot_count;
    int layer_slot[AN_MAX_LAYERS]; /* where each layer's output lives after a run, or -1 if overwritten */
    int logits_slot, prob_slot;
    size_t batch;
    uint32_t height, width;
    float *host_input;        /* staging for preprocessed images: batch x C x H x W */
    size_t host_input_count;
    float *host_scores;       /* batch x classes, for top-k */
    size_t host_scores_count;
    size_t workspace_bytes;   /* device buffers + host staging */
    double step_seconds[AN_MAX_LAYERS]; /* the last inference's timings, when profiling */
} an_plan;

struct alexnet_context {
    alexnet_allocator allocator;
    const alexnet_model *model;
    const an_backend *backend;
    an_backend_context *backend_context;
    an_buffer *layer_weights[AN_MAX_LAYERS]; /* per conv/FC layer, from the backend's weights_create */
    char capture[AN_MAX_LAYERS][16];
    size_t capture_count;
    an_plan plan;
    size_t last_batch; /* images in the last successful inference; 0 before the first */
    int profile;       /* time each step */
};

/* Build a plan for batch x height x width into `plan` (allocating its buffers on the context's backend).
 * On failure nothing stays allocated and `plan` is unusable; the caller keeps its previous plan. */
alexnet_status an_plan_build(alexnet_context *context, size_t batch, uint32_t height, uint32_t width,
                             an_plan *plan);
void an_plan_release(alexnet_context *context, an_plan *plan);

/* Run the network on `batch` images already uploaded or given as host input. */
alexnet_status an_forward(alexnet_context *context, const float *input, size_t batch, float *out_logits,
                          float *out_probabilities);
/* The op descriptor of a conv/FC/pool/LRN/softmax layer at `batch`; 0 for layers without one. */
int an_layer_op_desc(const alexnet_config *config, const an_layer *layer, size_t batch, an_op_desc *out);
/* Index of a layer in the plan, or -1. */
int an_plan_find_layer(const an_plan *plan, const char *name);

#endif
