/* The portable scalar kernels: plain loops in the most obvious order, the oracle every faster kernel is
 * tested against. Accumulation is in float, in a fixed order, so results are deterministic. */
#ifndef AN_CPU_REFERENCE_OPS_H
#define AN_CPU_REFERENCE_OPS_H

#include "backend/backend.h"

void an_ref_conv2d(const an_conv_desc *d, const float *in, const float *weight, const float *bias, float *out);
void an_ref_max_pool2d(const an_pool_desc *d, const float *in, float *out);
void an_ref_adaptive_avg_pool2d(const an_pool_desc *d, const float *in, float *out);
void an_ref_lrn(const an_lrn_desc *d, const float *in, float *out);
void an_ref_fully_connected(const an_fc_desc *d, const float *in, const float *weight, const float *bias, float *out);
void an_ref_relu(size_t count, const float *in, float *out);
void an_ref_dropout(size_t count, float rate, uint64_t seed, const float *in, float *out);
void an_ref_softmax(uint32_t batch, uint32_t classes, const float *in, float *out);

#endif
