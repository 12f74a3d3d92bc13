// da3.h must be usable from C++ (cbindgen's cpp_compat): extern "C" linkage, the status enum,
// the uint32_t enum-like typedefs and the structs, under strict warnings. check.h too.
#include "check.h"
#include "da3.h"

#include <cstdio>
#include <cstring>

int main() {
    da3_options options;
    if (!CHECK(da3_options_default(&options, sizeof options) == DA3_OK &&
                   options.process_res == 504,
               "da3_options_default from C++")) {
        return check_summary();
    }
    options.resize_method = DA3_RESIZE_LOWER_BOUND_CROP;
    const float extrinsics[12] = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0};
    const float intrinsics[9] = {100, 0, 50, 0, 100, 50, 0, 0, 1};
    const uint32_t layers[2] = {3, 7};
    options.extrinsics = extrinsics;
    options.extrinsics_rows = 3;
    options.intrinsics = intrinsics;
    options.export_feat_layers = layers;
    options.export_feat_layer_count = 2;
    if (!CHECK(da3_options_validate(&options) == DA3_OK, "cameras and feature layers validate")) {
        return check_summary();
    }
    da3_capabilities caps = DA3_CAP_POSE | DA3_CAP_RAY_POSE;
    if (!CHECK(da3_model_capabilities(nullptr, &caps) == DA3_ERR_NULL_POINTER &&
                   caps == (DA3_CAP_POSE | DA3_CAP_RAY_POSE),
               "da3_model_capabilities(nullptr) fails and leaves the flags alone")) {
        return check_summary();
    }
    da3_model *model = nullptr;
    da3_status status = da3_create(nullptr, false, DA3_PRECISION_AUTO, &model);
    std::printf("%s %s: %s\n", da3_version(), da3_status_name(status), da3_last_error_message());
    da3_free(model);
    CHECK(status == DA3_ERR_NULL_POINTER && std::strstr(da3_last_error_message(), "model"),
          "da3_create(nullptr) names the model argument");
    return check_summary();
}
