/* The reference backend's training kernels: the backward pass of every forward op, softmax
 * cross-entropy and the SGD update. Plain loops in the most obvious order, float arithmetic in a fixed
 * order (so results are deterministic run to run), and every output overwritten, never accumulated
 * into: the oracle that faster backward kernels are tested against. */
#ifndef AN_CPU_REFERENCE_BACKWARD_H
#define AN_CPU_REFERENCE_BACKWARD_H

#include "backend/backend.h"

void an_ref_conv2d_backward_data(const an_conv_desc *d, const float *grad_out, const float *weight,
                                 float *grad_in);
void an_ref_conv2d_backward_weights(const an_conv_desc *d, const float *in, const float *grad_out,
                                    float *grad_weight, float *grad_bias);
void an_ref_max_pool2d_backward(const an_pool_desc *d, const float *in, const float *grad_out, float *grad_in);
void an_ref_adaptive_avg_pool2d_backward(const an_pool_desc *d, const float *grad_out, float *grad_in);
void an_ref_lrn_backward(const an_lrn_desc *d, const float *in, const float *out, const float *grad_out,
                         float *grad_in);
void an_ref_fully_connected_backward_data(const an_fc_desc *d, const float *grad_out, const float *weight,
                                          float *grad_in);
void an_ref_fully_connected_backward_weights(const an_fc_desc *d, const float *in, const float *grad_out,
                                             float *grad_weight, float *grad_bias);
void an_ref_relu_backward(size_t count, const float *out, const float *grad_out, float *grad_in);
void an_ref_dropout_backward(size_t count, float rate, uint64_t seed, const float *grad_out, float *grad_in);
/* Returns 0 when a label is not an integer class index in [0, classes), else 1. */
int an_ref_softmax_cross_entropy(const an_softmax_desc *d, const float *logits, const float *labels,
                                 float *grad_logits, float *losses);
void an_ref_sgd_update(const an_sgd_desc *d, float *param, const float *grad, float *velocity);

#endif
