// A C++17 program as a host application would write it against an installed libda3
// (tests/install.rs builds it with CMake's find_package(da3) and with pkg-config, then runs
// it from a moved prefix): version, one model load, one inference on a synthetic image.
//
//     consumer CHECKPOINT_DIR    prints "da3 <version>", the device, the depth range; exit 0
#include <da3.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <vector>

namespace {

int fail(const char *what, da3_status status) {
    std::fprintf(stderr, "%s failed: %s: %s\n", what, da3_status_name(status), da3_last_error_message());
    return 1;
}

}  // namespace

int main(int argc, char **argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s CHECKPOINT_DIR\n", argv[0]);
        return 2;
    }
    std::printf("da3 %s\n", da3_version());

    da3_model *model = nullptr;
    da3_status status = da3_create(argv[1], false, DA3_PRECISION_FP32, &model);
    if (status != DA3_OK) {
        return fail("da3_create", status);
    }
    std::printf("device %s\n", da3_model_device(model));

    // A 64x48 RGB gradient.
    const uint32_t width = 64;
    const uint32_t height = 48;
    std::vector<uint8_t> pixels(static_cast<size_t>(width) * height * 3);
    for (uint32_t y = 0; y < height; ++y) {
        for (uint32_t x = 0; x < width; ++x) {
            uint8_t *p = &pixels[(static_cast<size_t>(y) * width + x) * 3];
            p[0] = static_cast<uint8_t>(x * 4);
            p[1] = static_cast<uint8_t>(y * 5);
            p[2] = static_cast<uint8_t>((x + y) * 2);
        }
    }
    const da3_image view = {pixels.data(), width, height, static_cast<size_t>(width) * 3, DA3_PIXEL_RGB8};

    da3_options options;
    status = da3_options_default(&options, sizeof options);
    if (status != DA3_OK) {
        da3_free(model);
        return fail("da3_options_default", status);
    }
    options.process_res = 56;

    da3_result *result = nullptr;
    status = da3_infer(model, &view, 1, &options, &result);
    if (status != DA3_OK) {
        da3_free(model);
        return fail("da3_infer", status);
    }
    const size_t count = static_cast<size_t>(da3_result_width(result)) * da3_result_height(result);
    const float *depth = da3_result_depth(result, 0);
    if (depth == nullptr || count == 0) {
        std::fprintf(stderr, "empty depth map\n");
        da3_result_free(result);
        da3_free(model);
        return 1;
    }
    const auto range = std::minmax_element(depth, depth + count);
    std::printf("depth %ux%u range %g .. %g\n", da3_result_width(result), da3_result_height(result),
                static_cast<double>(*range.first), static_cast<double>(*range.second));
    da3_result_free(result);
    da3_free(model);
    return 0;
}
