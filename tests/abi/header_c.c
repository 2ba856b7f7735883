/* The public header alone, compiled as strict ISO C11: it must be self-contained, warning-free under
 * -pedantic-errors, and keep its pinned values and struct prefixes. */
#include <alexnet/alexnet.h>
#include <alexnet/alexnet.h> /* the include guard works */

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define IS_SIZE_T(x) _Generic((x), size_t: 1, default: 0)
#define STRUCT_SIZE_FIRST(T)                                                                              \
    _Static_assert(offsetof(T, struct_size) == 0, #T ".struct_size is not the first member");             \
    _Static_assert(IS_SIZE_T(((T *)0)->struct_size), #T ".struct_size is not a size_t")

STRUCT_SIZE_FIRST(alexnet_config);
STRUCT_SIZE_FIRST(alexnet_layer_info);
STRUCT_SIZE_FIRST(alexnet_model_options);
STRUCT_SIZE_FIRST(alexnet_tensor_info);
STRUCT_SIZE_FIRST(alexnet_backend_info);
STRUCT_SIZE_FIRST(alexnet_context_options);
STRUCT_SIZE_FIRST(alexnet_image_options);

/* status values are pinned forever */
_Static_assert(ALEXNET_OK == 0, "status");
_Static_assert(ALEXNET_E_INVALID_ARGUMENT == 1, "status");
_Static_assert(ALEXNET_E_OUT_OF_MEMORY == 2, "status");
_Static_assert(ALEXNET_E_IO == 3, "status");
_Static_assert(ALEXNET_E_FORMAT == 4, "status");
_Static_assert(ALEXNET_E_SHAPE == 5, "status");
_Static_assert(ALEXNET_E_UNSUPPORTED == 6, "status");
_Static_assert(ALEXNET_E_BACKEND == 7, "status");
_Static_assert(ALEXNET_E_STATE == 8, "status");
_Static_assert(ALEXNET_E_NOT_FOUND == 9, "status");

/* so are the other enums' values */
_Static_assert(ALEXNET_VARIANT_CUSTOM == 0 && ALEXNET_VARIANT_ONE_TOWER == 1 && ALEXNET_VARIANT_PAPER_2012 == 2 &&
                   ALEXNET_VARIANT_TORCHVISION == 3,
               "variant");
_Static_assert(ALEXNET_LRN_ALPHA_OVER_SIZE == 0 && ALEXNET_LRN_ALPHA_ABSOLUTE == 1, "lrn scaling");
_Static_assert(ALEXNET_DROPOUT_BEFORE_HIDDEN_FC == 0 && ALEXNET_DROPOUT_AFTER_HIDDEN_FC == 1, "dropout");
_Static_assert(ALEXNET_LAYER_INPUT == 0 && ALEXNET_LAYER_CONV == 1 && ALEXNET_LAYER_LRN == 2 &&
                   ALEXNET_LAYER_MAX_POOL == 3 && ALEXNET_LAYER_ADAPTIVE_AVG_POOL == 4 &&
                   ALEXNET_LAYER_DROPOUT == 5 && ALEXNET_LAYER_FC == 6 && ALEXNET_LAYER_SOFTMAX == 7,
               "layer type");
_Static_assert(ALEXNET_INIT_DEFAULT == 0 && ALEXNET_INIT_PAPER == 1 && ALEXNET_INIT_CAFFE == 2 &&
                   ALEXNET_INIT_KAIMING == 3,
               "init scheme");
_Static_assert(ALEXNET_PIXEL_RGB8 == 1 && ALEXNET_PIXEL_RGBA8 == 2 && ALEXNET_PIXEL_BGR8 == 3 &&
                   ALEXNET_PIXEL_BGRA8 == 4 && ALEXNET_PIXEL_GRAY8 == 5,
               "pixel format");

/* fixed-size arrays are part of the layout */
_Static_assert(ALEXNET_MAX_CONV_LAYERS == 8, "conv layers");
_Static_assert(ALEXNET_MAX_HIDDEN_FC_LAYERS == 4, "hidden fc layers");
_Static_assert(sizeof(((alexnet_layer_info *)0)->name) == 16, "layer name");
_Static_assert(sizeof(((alexnet_tensor_info *)0)->name) == 32, "tensor name");

_Static_assert(ALEXNET_VERSION_NUMBER ==
                   ALEXNET_VERSION_MAJOR * 10000 + ALEXNET_VERSION_MINOR * 100 + ALEXNET_VERSION_PATCH,
               "version number");

int main(void) {
    /* The loaded library is the one this file was compiled against. */
    if (alexnet_version_number() != ALEXNET_VERSION_NUMBER) {
        printf("FAIL: library version %u, header %u\n", alexnet_version_number(), (unsigned)ALEXNET_VERSION_NUMBER);
        return 1;
    }
    if (strcmp(alexnet_version_string(), ALEXNET_VERSION_STRING) != 0) {
        printf("FAIL: library version \"%s\", header \"%s\"\n", alexnet_version_string(), ALEXNET_VERSION_STRING);
        return 1;
    }
    printf("ok: C11 header check, libalexnet %s\n", alexnet_version_string());
    return 0;
}
