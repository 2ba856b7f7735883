// quickstart.cpp: the C++ first program of docs/GETTING_STARTED.md. The C API used from C++, with the two
// handles owned by std::unique_ptr so that every way out of main releases them.
#include <alexnet/alexnet.h>

#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using Model = std::unique_ptr<alexnet_model, decltype(&alexnet_model_destroy)>;
using Context = std::unique_ptr<alexnet_context, decltype(&alexnet_context_destroy)>;

static void check(alexnet_status status)
{
    if (status == ALEXNET_OK)
        return;
    std::string detail = alexnet_last_error(); // copy it first: the next library call replaces it
    throw std::runtime_error(detail + " (" + alexnet_status_string(status) + ")");
}

int main()
try {
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.variant = ALEXNET_VARIANT_TORCHVISION;
    alexnet_model *raw_model = nullptr;
    check(alexnet_model_create(&options, 42, &raw_model));
    Model model(raw_model, alexnet_model_destroy);

    alexnet_context *raw_context = nullptr;
    check(alexnet_context_create(model.get(), nullptr, &raw_context));
    Context context(raw_context, alexnet_context_destroy);

    const uint32_t width = 320, height = 240;
    std::vector<uint8_t> pixels(width * height * 3, 128); // a grey RGB image
    alexnet_image image{pixels.data(), width, height, width * 3, ALEXNET_PIXEL_RGB8};
    alexnet_class_score top[5];
    check(alexnet_classify_images(context.get(), &image, 1, nullptr, 5, top));
    for (const alexnet_class_score &entry : top)
        std::printf("class %3u  probability %.6f\n", static_cast<unsigned>(entry.class_index),
                    static_cast<double>(entry.score));
    return 0;
} catch (const std::exception &error) {
    std::fprintf(stderr, "quickstart: %s\n", error.what());
    return 1;
}
