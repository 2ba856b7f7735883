// The public header alone, compiled as strict ISO C++11: usable from C++ without warnings, with C linkage.
#include <alexnet/alexnet.h>
#include <alexnet/alexnet.h>  // the include guard works

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <type_traits>

#define STRUCT_SIZE_FIRST(T)                                                                             \
    static_assert(offsetof(T, struct_size) == 0, #T ".struct_size is not the first member");             \
    static_assert(std::is_same<decltype(T::struct_size), size_t>::value, #T ".struct_size is not a size_t"); \
    static_assert(std::is_standard_layout<T>::value, #T " is not standard layout")

STRUCT_SIZE_FIRST(alexnet_config);
STRUCT_SIZE_FIRST(alexnet_layer_info);
STRUCT_SIZE_FIRST(alexnet_model_options);
STRUCT_SIZE_FIRST(alexnet_tensor_info);
STRUCT_SIZE_FIRST(alexnet_backend_info);
STRUCT_SIZE_FIRST(alexnet_context_options);
STRUCT_SIZE_FIRST(alexnet_image_options);

static_assert(ALEXNET_OK == 0 && ALEXNET_E_INVALID_ARGUMENT == 1 && ALEXNET_E_OUT_OF_MEMORY == 2 &&
                  ALEXNET_E_IO == 3 && ALEXNET_E_FORMAT == 4 && ALEXNET_E_SHAPE == 5 &&
                  ALEXNET_E_UNSUPPORTED == 6 && ALEXNET_E_BACKEND == 7 && ALEXNET_E_STATE == 8 &&
                  ALEXNET_E_NOT_FOUND == 9,
              "status values are pinned");
static_assert(std::is_trivially_copyable<alexnet_config>::value, "config is plain data");

int main() {
    // Exercise the header in C++: enums, structs and function pointers must be usable without casts.
    alexnet_model_options options;
    std::memset(&options, 0, sizeof options);
    alexnet_model_options_init(&options);
    if (options.struct_size != sizeof(alexnet_model_options)) {
        std::printf("FAIL: alexnet_model_options_init set struct_size %zu, expected %zu\n", options.struct_size,
                    sizeof(alexnet_model_options));
        return 1;
    }
    alexnet_status status = ALEXNET_E_NOT_FOUND;
    const char *text = alexnet_status_string(status);
    if (text == nullptr || *text == '\0') {
        std::printf("FAIL: empty status string\n");
        return 1;
    }
    if (alexnet_version_number() != ALEXNET_VERSION_NUMBER) {
        std::printf("FAIL: library version %u, header %u\n", alexnet_version_number(),
                    static_cast<unsigned>(ALEXNET_VERSION_NUMBER));
        return 1;
    }
    std::printf("ok: C++11 header check, libalexnet %s\n", alexnet_version_string());
    return 0;
}
