/* Model weights <-> safetensors. */
#ifndef AN_NET_WEIGHTS_IO_H
#define AN_NET_WEIGHTS_IO_H

#include "io/safetensors.h"
#include "net/model.h"

alexnet_status an_model_load_source(const an_byte_source *source, const alexnet_model_options *options,
                                    alexnet_model **out_model);
alexnet_status an_model_save_file(const alexnet_model *model, const char *path);
alexnet_status an_model_save_buffer(const alexnet_model *model, void *buffer, size_t capacity, size_t *out_size);

#endif
