// A downstream C++ program built only from `pkg-config --cflags --libs alexnet` against an installed copy.
#include <alexnet/alexnet.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

struct ModelDeleter {
    void operator()(alexnet_model *m) const { alexnet_model_destroy(m); }
};
struct ContextDeleter {
    void operator()(alexnet_context *c) const { alexnet_context_destroy(c); }
};
using Model = std::unique_ptr<alexnet_model, ModelDeleter>;
using Context = std::unique_ptr<alexnet_context, ContextDeleter>;

void ok(alexnet_status status, const char *what) {
    if (status != ALEXNET_OK)
        throw std::runtime_error(std::string(what) + ": " + alexnet_status_string(status) + " [" +
                                 alexnet_last_error() + "]");
}

const uint32_t kClasses = 10;
const uint32_t kSide = 28;

alexnet_config small_config() {
    alexnet_config cfg;
    ok(alexnet_config_preset(ALEXNET_VARIANT_ONE_TOWER, &cfg), "alexnet_config_preset");
    cfg.variant = ALEXNET_VARIANT_CUSTOM;
    cfg.input_channels = 1;
    cfg.input_height = cfg.input_width = kSide;
    cfg.conv_count = 3;
    const alexnet_conv_layer_config layers[3] = {
        {8, 5, 1, 2, 1, 1, 1},
        {16, 3, 1, 1, 1, 1, 1},
        {16, 3, 1, 1, 1, 0, 1},
    };
    for (uint32_t i = 0; i < ALEXNET_MAX_CONV_LAYERS; i++) cfg.conv[i] = i < 3 ? layers[i] : alexnet_conv_layer_config();
    cfg.adaptive_pool_size = 0;
    cfg.hidden_fc_count = 2;
    cfg.hidden_fc[0] = cfg.hidden_fc[1] = 32;
    cfg.hidden_fc[2] = cfg.hidden_fc[3] = 0;
    cfg.num_classes = kClasses;
    ok(alexnet_config_validate(&cfg), "alexnet_config_validate");
    return cfg;
}

}  // namespace

int main() {
    try {
        std::printf("libalexnet %s (%u), compiled against %s\n", alexnet_version_string(), alexnet_version_number(),
                    ALEXNET_VERSION_STRING);
        if (alexnet_version_number() != ALEXNET_VERSION_NUMBER) throw std::runtime_error("version mismatch");

        const alexnet_config cfg = small_config();
        alexnet_model_options options;
        alexnet_model_options_init(&options);
        options.variant = ALEXNET_VARIANT_CUSTOM;
        options.config = &cfg;
        alexnet_model *raw_model = nullptr;
        ok(alexnet_model_create(&options, 42, &raw_model), "alexnet_model_create");
        Model model(raw_model);

        alexnet_context_options context_options;
        alexnet_context_options_init(&context_options);
        alexnet_context *raw_context = nullptr;
        ok(alexnet_context_create(model.get(), &context_options, &raw_context), "alexnet_context_create");
        Context context(raw_context);

        std::vector<float> input(kSide * kSide);
        for (std::size_t i = 0; i < input.size(); i++) input[i] = static_cast<float>((i * 37u) % 101u) / 50.0f - 1.0f;
        std::vector<float> probabilities(kClasses);
        ok(alexnet_infer(context.get(), input.data(), 1, nullptr, probabilities.data()), "alexnet_infer");
        for (float p : probabilities)
            if (!std::isfinite(p) || p < 0.0f || p > 1.0f) throw std::runtime_error("probability out of range");
        const double sum = std::accumulate(probabilities.begin(), probabilities.end(), 0.0);
        if (std::fabs(sum - 1.0) > 1e-5) throw std::runtime_error("probabilities sum to " + std::to_string(sum));
        std::printf("ok: C++ consumer, backend %s, probabilities sum to %.6f\n",
                    alexnet_context_backend_name(context.get()), sum);
        return 0;
    } catch (const std::exception &e) {
        std::printf("FAIL: %s\n", e.what());
        return 1;
    }
}
