// minimal.cpp: the smallest useful C++ program on libalexnet's C API.
//
// Creates a torchvision-variant AlexNet with seeded (untrained) weights, classifies one synthetic RGB image
// and prints the five most probable classes. The handles live in unique_ptrs with custom deleters, so every
// path out of main, including an exception from a failed call, releases them.
#include <alexnet/alexnet.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct ModelDeleter {
    void operator()(alexnet_model *model) const noexcept { alexnet_model_destroy(model); }
};
struct ContextDeleter {
    void operator()(alexnet_context *context) const noexcept { alexnet_context_destroy(context); }
};
using ModelPtr = std::unique_ptr<alexnet_model, ModelDeleter>;
using ContextPtr = std::unique_ptr<alexnet_context, ContextDeleter>;

// Turn a failed status into an exception carrying the library's explanation.
void check(alexnet_status status, const char *what)
{
    if (status != ALEXNET_OK) {
        // Read the detail before any other library call: it is only valid until the next one.
        std::string detail = alexnet_last_error();
        throw std::runtime_error(std::string(what) + ": " + alexnet_status_string(status) + ": " + detail);
    }
}

ModelPtr create_model(uint64_t seed)
{
    alexnet_model_options options;
    alexnet_model_options_init(&options);
    options.variant = ALEXNET_VARIANT_TORCHVISION;
    alexnet_model *model = nullptr;
    check(alexnet_model_create(&options, seed, &model), "alexnet_model_create");
    return ModelPtr(model);
}

ContextPtr create_context(const alexnet_model *model)
{
    alexnet_context_options options;
    alexnet_context_options_init(&options);
    options.batch = 1;
    alexnet_context *context = nullptr;
    check(alexnet_context_create(model, &options, &context), "alexnet_context_create");
    return ContextPtr(context);
}

// A smooth colour gradient with a bright square: any picture will do for untrained weights.
std::vector<uint8_t> make_rgb_image(uint32_t width, uint32_t height)
{
    std::vector<uint8_t> pixels(static_cast<size_t>(width) * height * 3);
    for (uint32_t y = 0; y < height; ++y) {
        for (uint32_t x = 0; x < width; ++x) {
            uint8_t *p = &pixels[(static_cast<size_t>(y) * width + x) * 3];
            bool in_square = x > width / 3 && x < 2 * width / 3 && y > height / 3 && y < 2 * height / 3;
            p[0] = in_square ? 250 : static_cast<uint8_t>(255 * x / width);
            p[1] = in_square ? 240 : static_cast<uint8_t>(255 * y / height);
            p[2] = 128;
        }
    }
    return pixels;
}

void run()
{
    const size_t top = 5;
    ModelPtr model = create_model(42);
    ContextPtr context = create_context(model.get());

    const uint32_t width = 256, height = 256;
    std::vector<uint8_t> pixels = make_rgb_image(width, height);
    alexnet_image image{};
    image.pixels = pixels.data();
    image.width = width;
    image.height = height;
    image.row_stride_bytes = width * 3;
    image.format = ALEXNET_PIXEL_RGB8;

    std::vector<alexnet_class_score> best(top);
    check(alexnet_classify_images(context.get(), &image, 1, nullptr, top, best.data()), "alexnet_classify_images");

    std::printf("libalexnet %s, backend %s\n", alexnet_version_string(), alexnet_context_backend_name(context.get()));
    std::printf("Seeded random weights (untrained): these classes are meaningless.\n");
    for (const alexnet_class_score &score : best) {
        std::printf("  %.6f  class %u\n", static_cast<double>(score.score), static_cast<unsigned>(score.class_index));
    }
}

} // namespace

int main()
{
    try {
        run();
    } catch (const std::exception &error) {
        std::fprintf(stderr, "minimal: %s\n", error.what());
        return 1;
    }
    return 0;
}
