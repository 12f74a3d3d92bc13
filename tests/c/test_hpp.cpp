// Tests of the C++17 layer include/da3.hpp, built by tests/c_api.rs with g++ and clang++
// (-std=c++17 -Wall -Wextra -Werror -pedantic, once more under ASan/UBSan): enum values equal
// to the C constants, da3::Error's status and message on failures, move semantics of the
// handles, the Options builder, and inferences on the checkpoint in DA3_TEST_CHECKPOINT whose
// views and arrays must equal the C accessors element for element.
// Prints one line per check and "N passed, M failed, K skipped" (check.h).
#include "da3.hpp"

#include "check.h"

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace {

// Runs `body`, which must throw da3::Error with status `want` and a message holding every
// word of `words`. Returns the error's message ("" when it did not throw as it should).
template <typename Body>
std::string check_throws(const char *name, da3::Status want, std::initializer_list<const char *> words,
                         Body &&body) {
    try {
        body();
    } catch (const da3::BatchError &error) {
        check_that(0, "%s: threw da3::BatchError, want a plain da3::Error: %s", name, error.what());
        return "";
    } catch (const da3::Error &error) {
        const char *missing = nullptr;
        for (const char *word : words) {
            if (std::strstr(error.what(), word) == nullptr) {
                missing = word;
                break;
            }
        }
        check_that(error.status() == want && missing == nullptr && std::strcmp(error.what(), error.message()) == 0,
                   "%s: da3::Error %s (want %s)%s%s: \"%s\"", name, da3::to_string(error.status()),
                   da3::to_string(want), missing != nullptr ? ", message lacks " : "",
                   missing != nullptr ? missing : "", error.what());
        return error.what();
    } catch (const std::exception &other) {
        check_that(0, "%s: threw another exception: %s", name, other.what());
        return "";
    }
    check_that(0, "%s: did not throw", name);
    return "";
}

void enum_values() {
    static_assert(static_cast<int>(da3::Status::Torch) == DA3_ERR_TORCH, "Status");
    static_assert(std::is_same<std::underlying_type_t<da3::Capabilities>, da3_capabilities>::value, "flags type");
    const std::pair<int, int> statuses[] = {
        {static_cast<int>(da3::Status::Ok), DA3_OK},
        {static_cast<int>(da3::Status::InvalidArgument), DA3_ERR_INVALID_ARGUMENT},
        {static_cast<int>(da3::Status::NullPointer), DA3_ERR_NULL_POINTER},
        {static_cast<int>(da3::Status::ModelNotFound), DA3_ERR_MODEL_NOT_FOUND},
        {static_cast<int>(da3::Status::Checkpoint), DA3_ERR_CHECKPOINT},
        {static_cast<int>(da3::Status::Image), DA3_ERR_IMAGE},
        {static_cast<int>(da3::Status::Io), DA3_ERR_IO},
        {static_cast<int>(da3::Status::Unsupported), DA3_ERR_UNSUPPORTED},
        {static_cast<int>(da3::Status::Torch), DA3_ERR_TORCH},
        {static_cast<int>(da3::Status::NotAvailable), DA3_ERR_NOT_AVAILABLE},
        {static_cast<int>(da3::Status::Panic), DA3_ERR_PANIC},
        {static_cast<int>(da3::Status::OutOfMemory), DA3_ERR_OUT_OF_MEMORY},
    };
    bool same = true;
    for (const auto &pair : statuses) {
        same = same && pair.first == pair.second &&
               std::strcmp(da3::to_string(static_cast<da3::Status>(pair.first)), da3_status_name(pair.second)) == 0;
    }
    CHECK(same, "da3::Status values and names equal da3_status's");
    const std::pair<std::uint32_t, std::uint32_t> values[] = {
        {static_cast<std::uint32_t>(da3::Precision::Auto), DA3_PRECISION_AUTO},
        {static_cast<std::uint32_t>(da3::Precision::Fp32), DA3_PRECISION_FP32},
        {static_cast<std::uint32_t>(da3::Precision::Fp16), DA3_PRECISION_FP16},
        {static_cast<std::uint32_t>(da3::Precision::Bf16), DA3_PRECISION_BF16},
        {static_cast<std::uint32_t>(da3::ResizeMethod::UpperBoundResize), DA3_RESIZE_UPPER_BOUND_RESIZE},
        {static_cast<std::uint32_t>(da3::ResizeMethod::LowerBoundResize), DA3_RESIZE_LOWER_BOUND_RESIZE},
        {static_cast<std::uint32_t>(da3::ResizeMethod::UpperBoundCrop), DA3_RESIZE_UPPER_BOUND_CROP},
        {static_cast<std::uint32_t>(da3::ResizeMethod::LowerBoundCrop), DA3_RESIZE_LOWER_BOUND_CROP},
        {static_cast<std::uint32_t>(da3::RefView::SaddleBalanced), DA3_REF_VIEW_SADDLE_BALANCED},
        {static_cast<std::uint32_t>(da3::RefView::First), DA3_REF_VIEW_FIRST},
        {static_cast<std::uint32_t>(da3::RefView::Middle), DA3_REF_VIEW_MIDDLE},
        {static_cast<std::uint32_t>(da3::RefView::SaddleSimRange), DA3_REF_VIEW_SADDLE_SIM_RANGE},
        {static_cast<std::uint32_t>(da3::PixelFormat::Rgb8), DA3_PIXEL_RGB8},
        {static_cast<std::uint32_t>(da3::PixelFormat::Rgba8), DA3_PIXEL_RGBA8},
        {static_cast<std::uint32_t>(da3::PixelFormat::Bgr8), DA3_PIXEL_BGR8},
        {static_cast<std::uint32_t>(da3::PixelFormat::Bgra8), DA3_PIXEL_BGRA8},
        {static_cast<std::uint32_t>(da3::Placement::Auto), DA3_PLACEMENT_AUTO},
        {static_cast<std::uint32_t>(da3::Placement::Replicate), DA3_PLACEMENT_REPLICATE},
        {static_cast<std::uint32_t>(da3::Placement::Shard), DA3_PLACEMENT_SHARD},
        {static_cast<std::uint32_t>(da3::WarningCode::None), DA3_WARNING_NONE},
        {static_cast<std::uint32_t>(da3::WarningCode::MetricAlignmentSkipped), DA3_WARNING_METRIC_ALIGNMENT_SKIPPED},
        {static_cast<std::uint32_t>(da3::WarningCode::EmptyAlignmentMask), DA3_WARNING_EMPTY_ALIGNMENT_MASK},
        {static_cast<std::uint32_t>(da3::Capabilities::Pose), DA3_CAP_POSE},
        {static_cast<std::uint32_t>(da3::Capabilities::Confidence), DA3_CAP_CONFIDENCE},
        {static_cast<std::uint32_t>(da3::Capabilities::Sky), DA3_CAP_SKY},
        {static_cast<std::uint32_t>(da3::Capabilities::MetricDepth), DA3_CAP_METRIC_DEPTH},
        {static_cast<std::uint32_t>(da3::Capabilities::CanonicalMetricDepth), DA3_CAP_CANONICAL_METRIC_DEPTH},
        {static_cast<std::uint32_t>(da3::Capabilities::KnownCameras), DA3_CAP_KNOWN_CAMERAS},
        {static_cast<std::uint32_t>(da3::Capabilities::RayPose), DA3_CAP_RAY_POSE},
    };
    std::size_t equal = 0;
    for (const auto &pair : values) {
        equal += pair.first == pair.second ? 1 : 0;
    }
    CHECK(equal == sizeof values / sizeof values[0], "%zu of %zu enum values equal their C constants", equal,
          sizeof values / sizeof values[0]);
    CHECK(std::strcmp(da3::to_string(da3::Precision::Bf16), "bf16") == 0, "to_string(Precision::Bf16)");

    da3::Capabilities caps = da3::Capabilities::Pose | da3::Capabilities::RayPose;
    caps |= da3::Capabilities::Sky;
    CHECK(static_cast<std::uint32_t>(caps) == (DA3_CAP_POSE | DA3_CAP_RAY_POSE | DA3_CAP_SKY) &&
              da3::has(caps, da3::Capabilities::Pose | da3::Capabilities::Sky) &&
              !da3::has(caps, da3::Capabilities::Pose | da3::Capabilities::Confidence) &&
              (caps & da3::Capabilities::Confidence) == da3::Capabilities::None &&
              !da3::any(caps & ~caps) && da3::any(caps ^ da3::Capabilities::Pose) &&
              static_cast<std::uint32_t>(~da3::Capabilities::None) == 0x7Fu,
          "Capabilities bit operators");
    CHECK(da3::version() == da3_version() && !da3::version().empty(), "da3::version() is da3_version()");
}

void options_builder() {
    da3_options defaults;
    da3_options_default(&defaults, sizeof defaults);
    const da3::Options plain;
    const da3_options c = plain.c();
    CHECK(std::memcmp(&c, &defaults, sizeof c) == 0, "da3::Options() is da3_options_default, byte for byte");
    CHECK(plain.process_res() == 504 && plain.resize_method() == da3::ResizeMethod::UpperBoundResize &&
              plain.ref_view() == da3::RefView::SaddleBalanced && !plain.ray_pose() &&
              plain.align_to_input_ext_scale() && !plain.has_known_cameras() && plain.export_layers().empty(),
          "default getters");

    const std::vector<float> extrinsics = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0};
    const std::vector<float> intrinsics = {100, 0, 50, 0, 100, 40, 0, 0, 1, 90, 0, 50, 0, 90, 40, 0, 0, 1};
    da3::Options built = da3::Options()
                             .process_res(280)
                             .resize_method(da3::ResizeMethod::LowerBoundCrop)
                             .ref_view(da3::RefView::Middle)
                             .ray_pose(true)
                             .known_cameras(extrinsics, intrinsics, 3)
                             .align_to_input_ext_scale(false)
                             .export_layers({3, 7});
    CHECK(built.process_res() == 280 && built.resize_method() == da3::ResizeMethod::LowerBoundCrop &&
              built.ref_view() == da3::RefView::Middle && built.ray_pose() && !built.align_to_input_ext_scale() &&
              built.has_known_cameras() && built.extrinsics() == extrinsics && built.intrinsics() == intrinsics &&
              built.extrinsics_rows() == 3 && built.export_layers() == std::vector<std::uint32_t>({3, 7}),
          "builder getters round trip");
    const da3_options bc = built.c();
    CHECK(bc.struct_size == sizeof(da3_options) && bc.process_res == 280 &&
              bc.resize_method == DA3_RESIZE_LOWER_BOUND_CROP && bc.ref_view_strategy == DA3_REF_VIEW_MIDDLE &&
              bc.use_ray_pose == 1 && bc.align_to_input_ext_scale == 0 && bc.extrinsics_rows == 3 &&
              bc.extrinsics == built.extrinsics().data() && bc.intrinsics == built.intrinsics().data() &&
              bc.export_feat_layer_count == 2 && bc.export_feat_layers == built.export_layers().data() &&
              bc.export_feat_layers[0] == 3 && bc.export_feat_layers[1] == 7,
          "c(): the C struct carries every field and points into the Options");
    CHECK(da3_options_validate(&bc) == DA3_OK, "the built options pass da3_options_validate");
    bool validated = true;
    try {
        built.validate();
    } catch (const da3::Error &) {
        validated = false;
    }
    CHECK(validated, "Options::validate() accepts them");

    const da3::Options copy = built;  // NOLINT: a copy on purpose
    const da3_options cc = copy.c();
    CHECK(cc.extrinsics == copy.extrinsics().data() && cc.extrinsics != bc.extrinsics &&
              cc.export_feat_layers == copy.export_layers().data() && copy.extrinsics() == extrinsics,
          "a copied Options owns its own arrays");
    da3::Options cleared = copy;
    cleared.clear_known_cameras().export_layers({});
    const da3_options clc = cleared.c();
    CHECK(clc.extrinsics == nullptr && clc.intrinsics == nullptr && clc.extrinsics_rows == 0 &&
              clc.export_feat_layers == nullptr && clc.export_feat_layer_count == 0 && !cleared.has_known_cameras(),
          "clear_known_cameras and an empty layer list give NULL pointers");

    check_throws("Options().process_res(0).validate()", da3::Status::InvalidArgument, {"process_res"},
                 [] { da3::Options().process_res(0).validate(); });
    check_throws("an unknown resize method", da3::Status::InvalidArgument, {"resize_method"},
                 [] { da3::Options().resize_method(static_cast<da3::ResizeMethod>(99)).validate(); });
    check_throws("repeated feature layers", da3::Status::InvalidArgument, {"export_feat_layers"},
                 [] { da3::Options().export_layers({4, 4}).validate(); });
    check_throws("extrinsics_rows 5", da3::Status::InvalidArgument, {"extrinsics_rows"},
                 [&] { da3::Options().known_cameras(extrinsics, intrinsics, 5).validate(); });
}

void errors_without_model() {
    const char *missing = "/nonexistent/da3-hpp-no-such-checkpoint";
    const std::string message = check_throws("Model::create on a missing path", da3::Status::ModelNotFound,
                                             {missing}, [&] { da3::Model::create(missing); });
    CHECK(!message.empty() && message == da3_last_error_message(),
          "da3::Error's message is da3_last_error_message() of the failed call");
    check_throws("Model::create with an unknown precision", da3::Status::InvalidArgument, {"precision"},
                 [&] { da3::Model::create(missing, false, static_cast<da3::Precision>(42)); });
    check_throws("create_on_devices with an empty device", da3::Status::InvalidArgument, {},
                 [&] { da3::Model::create_on_devices(missing, {"cpu", ""}); });

    da3::Model empty;
    CHECK(!empty && empty.get() == nullptr, "a default Model is empty");
    check_throws("a query on an empty Model", da3::Status::NullPointer, {"empty"}, [&] { (void)empty.preset(); });
    check_throws("infer on an empty Model", da3::Status::NullPointer, {"empty"},
                 [&] { (void)empty.infer_files({"a.png"}); });
    da3::Result none;
    CHECK(!none && none.get() == nullptr, "a default Result is empty");
    check_throws("depth() of an empty Result", da3::Status::NullPointer, {"empty"}, [&] { (void)none.depth(0); });
    check_throws("view_count() of an empty Result", da3::Status::NullPointer, {"empty"},
                 [&] { (void)none.view_count(); });
    static_assert(!std::is_copy_constructible<da3::Model>::value && !std::is_copy_assignable<da3::Model>::value,
                  "Model is move-only");
    static_assert(!std::is_copy_constructible<da3::Result>::value && !std::is_copy_assignable<da3::Result>::value,
                  "Result is move-only");
    static_assert(std::is_nothrow_move_constructible<da3::Model>::value &&
                      std::is_nothrow_move_assignable<da3::Result>::value,
                  "moves do not throw");
    static_assert(std::is_copy_constructible<da3::Error>::value && std::is_copy_constructible<da3::BatchError>::value,
                  "exceptions are copyable");
}

// A deterministic RGB8 test pattern.
std::vector<std::uint8_t> pattern(std::uint32_t width, std::uint32_t height, int seed) {
    std::vector<std::uint8_t> rgb(std::size_t(width) * height * 3);
    for (std::uint32_t y = 0; y < height; ++y) {
        for (std::uint32_t x = 0; x < width; ++x) {
            for (std::uint32_t c = 0; c < 3; ++c) {
                rgb[(std::size_t(y) * width + x) * 3 + c] =
                    static_cast<std::uint8_t>((x * (3 + c) + y * (5 - c) + std::uint32_t(seed) * 70 + (x * y) % 17) & 0xff);
            }
        }
    }
    return rgb;
}

// The View2D `view` against the C pointer `c` (height x width), element for element, through
// operator(), operator[] and the iterators.
bool same_map(const da3::View2D<const float> &view, const float *c, std::uint32_t height, std::uint32_t width) {
    if (c == nullptr || view.data() != c || view.height() != height || view.width() != width ||
        view.size() != std::size_t(height) * width) {
        return false;
    }
    for (std::uint32_t y = 0; y < height; ++y) {
        for (std::uint32_t x = 0; x < width; ++x) {
            const float want = c[std::size_t(y) * width + x];
            if (view(y, x) != want || view[std::size_t(y) * width + x] != want || view.row(y)[x] != want) {
                return false;
            }
        }
    }
    std::size_t i = 0;
    for (float value : view) {
        if (value != c[i++]) {
            return false;
        }
    }
    return i == view.size() && view.end() - view.begin() == static_cast<std::ptrdiff_t>(view.size());
}

void with_model(const char *checkpoint, const char *tmpdir) {
    da3::Model model;
    try {
        model = da3::Model::create(checkpoint, false, da3::Precision::Fp32);
    } catch (const da3::Error &error) {
        check_that(0, "Model::create(DA3_TEST_CHECKPOINT): %s", error.what());
        return;
    }
    CHECK(static_cast<bool>(model), "Model::create(DA3_TEST_CHECKPOINT, fp32)");
    CHECK(model.preset() == da3_model_preset(model.get()) && model.device() == da3_model_device(model.get()) &&
              model.precision() == da3::Precision::Fp32 &&
              static_cast<std::uint32_t>(model.capabilities()) ==
                  [&] {
                      da3_capabilities flags = 0;
                      da3_model_capabilities(model.get(), &flags);
                      return flags;
                  }() &&
              model.backbone_depth() == da3_model_backbone_depth(model.get()) && model.backbone_depth() > 0,
          "model queries equal the C ones (%s on %s)", model.preset().c_str(), model.device().c_str());
    const std::vector<std::string> devices = model.replica_devices();
    CHECK(model.replica_count() == 1 && devices.size() == 1 && devices[0] == model.device(),
          "replica_devices of a one-device model");
    check_throws("replica_device past the end", da3::Status::InvalidArgument, {"index"},
                 [&] { (void)model.replica_device(5); });
    model.set_placement(da3::Placement::Replicate);
    CHECK(model.placement() == da3::Placement::Replicate, "set_placement / placement round trip");
    model.set_placement(da3::Placement::Auto);
    check_throws("set_placement(9)", da3::Status::InvalidArgument, {"placement"},
                 [&] { model.set_placement(static_cast<da3::Placement>(9)); });
    const bool on_cpu = model.device() == "cpu";
    const std::optional<da3::MemoryStats> stats = model.memory_stats();
    CHECK(on_cpu ? !stats.has_value() && !model.reset_peak_memory() : stats.has_value(),
          "memory_stats: std::nullopt exactly on the CPU");
    check_throws("memory_stats(replica out of range)", da3::Status::InvalidArgument, {"out of range"},
                 [&] { (void)model.memory_stats(model.replica_count()); });

    // One scene of two in-memory views, with exported features.
    const std::uint32_t width = 56, height = 42;
    const std::vector<std::uint8_t> rgb0 = pattern(width, height, 0), rgb1 = pattern(width, height, 1);
    const std::vector<da3::Image> views = {da3::Image::packed(rgb0.data(), width, height, da3::PixelFormat::Rgb8),
                                           da3::Image(rgb1.data(), width, height, width * 3, da3::PixelFormat::Rgb8)};
    const da3::Options options = da3::Options().process_res(56).export_layers({2, 0});
    da3::Result result;
    try {
        result = model.infer(views, options);
    } catch (const da3::Error &error) {
        check_that(0, "Model::infer: %s", error.what());
        return;
    }
    const da3_result *c = result.get();
    const std::uint32_t w = da3_result_width(c), h = da3_result_height(c);
    CHECK(result.view_count() == 2 && result.width() == w && result.height() == h && w == 56 && h == 42,
          "Model::infer: 2 views of %ux%u", w, h);
    bool maps = true;
    for (std::size_t v = 0; v < 2; ++v) {
        maps = maps && same_map(result.depth(v), da3_result_depth(c, v), h, w) &&
               same_map(result.confidence(v), da3_result_confidence(c, v), h, w);
    }
    CHECK(maps, "depth(v) and confidence(v) views equal da3_result_depth / _confidence element for element");
    const da3::Span<const float> all = result.depth_all();
    CHECK(all.data() == da3_result_depth_all(c) && all.size() == 2u * w * h &&
              result.confidence_all().data() == da3_result_confidence_all(c),
          "depth_all / confidence_all");
    bool cameras = result.has_cameras() == da3_result_has_cameras(c) && result.has_cameras();
    for (std::size_t v = 0; v < 2 && cameras; ++v) {
        float e[12], k[9];
        da3_result_extrinsics(c, v, e);
        da3_result_intrinsics(c, v, k);
        const std::array<float, 12> ext = result.extrinsics(v);
        const std::array<float, 9> intr = result.intrinsics(v);
        cameras = std::memcmp(ext.data(), e, sizeof e) == 0 && std::memcmp(intr.data(), k, sizeof k) == 0;
    }
    CHECK(cameras, "extrinsics / intrinsics arrays equal the C copies");
    check_throws("depth(2) of a 2-view result", da3::Status::InvalidArgument, {"view"},
                 [&] { (void)result.depth(2); });
    check_throws("extrinsics(7)", da3::Status::InvalidArgument, {"view"}, [&] { (void)result.extrinsics(7); });
    check_throws("sky(0) of an any-view model", da3::Status::NotAvailable, {}, [&] { (void)result.sky(0); });
    check_throws("sky_all() of an any-view model", da3::Status::NotAvailable, {}, [&] { (void)result.sky_all(); });
    CHECK(!result.has_sky() && result.has_confidence() && !result.is_metric() && !result.scale_factor() &&
              !result.alignment_scale() && result.warnings().empty(),
          "has_sky, has_confidence, is_metric, no scale factor or alignment scale, no warnings");

    bool features = result.feature_count() == 2;
    const std::vector<da3::Feature> list = result.features();
    for (std::size_t i = 0; features && i < list.size(); ++i) {
        std::uint32_t layer = 0;
        std::size_t shape[4] = {0, 0, 0, 0};
        da3_result_feature_info(c, i, &layer, shape);
        features = list[i].layer == layer && std::memcmp(list[i].shape.data(), shape, sizeof shape) == 0 &&
                   list[i].data.data() == da3_result_feature_data(c, i) &&
                   list[i].data.size() == shape[0] * shape[1] * shape[2] * shape[3] && shape[0] == 2;
    }
    CHECK(features && list.size() == 2 && list[0].layer == 2 && list[1].layer == 0,
          "features(): layers in the requested order, shapes and data equal the C accessors");
    check_throws("feature(2)", da3::Status::InvalidArgument, {"index"}, [&] { (void)result.feature(2); });

    // PNG output and its errors.
    const std::string png = std::string(tmpdir) + "/da3_hpp_depth.png";
    bool wrote = true;
    try {
        result.write_depth_png(1, png);
    } catch (const da3::Error &) {
        wrote = false;
    }
    std::FILE *file = std::fopen(png.c_str(), "rb");
    unsigned char magic[8] = {0};
    const bool is_png = file != nullptr && std::fread(magic, 1, 8, file) == 8 && magic[1] == 'P' && magic[2] == 'N';
    if (file != nullptr) {
        std::fclose(file);
    }
    CHECK(wrote && is_png, "write_depth_png writes a PNG");
    check_throws("write_depth_png into a missing directory", da3::Status::Io, {"da3-hpp-missing-dir"},
                 [&] { result.write_depth_png(0, "/nonexistent/da3-hpp-missing-dir/d.png"); });

    // Points and the PLY writer: the same values as the C functions.
    if (result.has_cameras()) {
        const std::vector<float> xyz = result.points(0);
        std::vector<float> c_xyz(static_cast<std::size_t>(result.width()) * result.height() * 3);
        const bool c_ok = da3_result_points(result.get(), 0, c_xyz.data()) == DA3_OK;
        CHECK(c_ok && xyz.size() == c_xyz.size() && std::memcmp(xyz.data(), c_xyz.data(), xyz.size() * sizeof(float)) == 0,
              "points(0) equals da3_result_points (%zu floats)", xyz.size());
        const std::string ply = std::string(tmpdir) + "/da3_hpp_points.ply";
        std::size_t c_written = 0;
        const std::string c_ply = std::string(tmpdir) + "/da3_hpp_points_c.ply";
        const bool c_ply_ok = da3_result_write_ply(result.get(), c_ply.c_str(), 0.0f, 0.0f, 0, &c_written) == DA3_OK;
        const std::size_t written = result.write_ply(ply);
        CHECK(c_ply_ok && written > 0 && written == c_written, "write_ply writes as many points as the C call (%zu)",
              written);
        check_throws("write_ply into a missing directory", da3::Status::Io, {"da3-hpp-missing-dir"},
                     [&] { (void)result.write_ply("/nonexistent/da3-hpp-missing-dir/p.ply"); });
    }

    // Moves: the handle moves, the buffers stay; moved-from handles are empty and safe.
    const float *depth0 = result.depth(0).data();
    da3::Result moved = std::move(result);
    CHECK(!result && result.get() == nullptr && moved && moved.depth(0).data() == depth0,  // NOLINT: use after move
          "a moved Result: the source is empty, the views stay valid");
    check_throws("depth() of a moved-from Result", da3::Status::NullPointer, {"empty"},
                 [&] { (void)result.depth(0); });  // NOLINT: use after move on purpose
    result = std::move(moved);
    CHECK(result && !moved && result.depth(0).data() == depth0, "move-assigning it back");  // NOLINT
    da3::Model other = std::move(model);
    CHECK(!model && other && other.preset() == da3_model_preset(other.get()),  // NOLINT: use after move
          "a moved Model: the source is empty, the target works");
    check_throws("infer on a moved-from Model", da3::Status::NullPointer, {"empty"},
                 [&] { (void)model.infer(views); });  // NOLINT: use after move on purpose
    model = std::move(other);

    // Bad options and inputs at inference.
    check_throws("infer with process_res 0", da3::Status::InvalidArgument, {"process_res"},
                 [&] { (void)model.infer(views, da3::Options().process_res(0)); });
    check_throws("infer with a feature layer past the backbone", da3::Status::InvalidArgument, {"99"},
                 [&] { (void)model.infer(views[0], da3::Options().process_res(56).export_layers({99})); });
    check_throws("infer with a short stride", da3::Status::InvalidArgument, {"views[1].stride"}, [&] {
        (void)model.infer({views[0], da3::Image(rgb1.data(), width, height, 10, da3::PixelFormat::Rgb8)});
    });
    check_throws("infer_files on a missing file", da3::Status::Image, {"da3-hpp-missing.png"},
                 [&] { (void)model.infer_files({"/nonexistent/da3-hpp-missing.png"}); });
    check_throws("infer_cuda on a model on the CPU", da3::Status::Unsupported, {"need a model on a GPU"}, [&] {
        const std::vector<da3_cuda_image> frames = {{rgb1.data(), width, height, std::size_t(width) * 3, DA3_PIXEL_RGB8}};
        (void)model.infer_cuda(frames);
    });
    try {
        const da3::Result host_result = model.infer(views);
        check_throws("a host result keeps no depth in GPU memory", da3::Status::NotAvailable, {"DA3_DEVICE_OUTPUT_DEPTH"},
                     [&] { (void)host_result.depth_device(0); });
        check_throws("nor a device", da3::Status::NotAvailable, {"device_outputs"}, [&] { (void)host_result.device(); });
    } catch (const da3::Error &error) {
        check_that(0, "infer for the device-map checks: %s", error.what());
    }
    check_throws("infer_preprocessed with too few floats", da3::Status::InvalidArgument, {"n_views * 3"}, [&] {
        const std::vector<float> few(10);
        (void)model.infer_preprocessed(few, 1, 42, 56);
    });

    // The same scene through infer_preprocessed needs the normalised planes; here just the
    // forward on zeros of the right size, compared with nothing but its shape.
    try {
        const std::vector<float> planes(std::size_t(1) * 3 * 42 * 56, 0.0f);
        const da3::Result pre = model.infer_preprocessed(planes, 1, 42, 56);
        CHECK(pre.view_count() == 1 && pre.width() == 56 && pre.height() == 42 &&
                  same_map(pre.depth(0), da3_result_depth(pre.get(), 0), 42, 56),
              "infer_preprocessed: one 56x42 view");
    } catch (const da3::Error &error) {
        check_that(0, "infer_preprocessed: %s", error.what());
    }

    // Known cameras: three views, identity rotations, centres not collinear.
    try {
        const std::vector<float> ext = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0,   //
                                        1, 0, 0, -1, 0, 1, 0, 0, 0, 0, 1, 0,  //
                                        1, 0, 0, 0, 0, 1, 0, -1, 0, 0, 1, 0};
        std::vector<float> intr;
        for (int v = 0; v < 3; ++v) {
            intr.insert(intr.end(), {50, 0, 28, 0, 50, 21, 0, 0, 1});
        }
        const da3::Result aligned = model.infer({views[0], views[1], views[0]},
                                                da3::Options().process_res(56).known_cameras(ext, intr, 3));
        float scale = 0.0f;
        const bool c_scale = da3_result_alignment_scale(aligned.get(), &scale) == DA3_OK;
        CHECK(c_scale && aligned.alignment_scale().has_value() && *aligned.alignment_scale() == scale,
              "known cameras: alignment_scale() equals the C value (%g)", static_cast<double>(scale));
    } catch (const da3::Error &error) {
        check_that(0, "infer with known cameras: %s", error.what());
    }

    // The sample photos through infer_files.
    const char *root = std::getenv("DA3_SOURCE_DIR");
    if (root != nullptr && *root != '\0') {
        try {
            const da3::Result files = model.infer_files(
                {std::string(root) + "/assets/images/soh_000.png", std::string(root) + "/assets/images/soh_010.png"},
                da3::Options().process_res(56));
            CHECK(files.view_count() == 2 &&
                      same_map(files.depth(1), da3_result_depth(files.get(), 1), files.height(), files.width()),
                  "infer_files on the two sample photos (%ux%u)", files.width(), files.height());
        } catch (const da3::Error &error) {
            check_that(0, "infer_files: %s", error.what());
        }
    } else {
        check_skip("group 'infer_files on the sample photos': DA3_SOURCE_DIR is not set");
    }

    // infer_scenes: all good, then one bad scene (BatchError with every scene's status).
    try {
        const std::vector<da3::Result> both =
            model.infer_scenes({{views[0]}, {views[1], views[0]}}, da3::Options().process_res(56));
        CHECK(both.size() == 2 && both[0].view_count() == 1 && both[1].view_count() == 2,
              "infer_scenes: one result per scene");
    } catch (const da3::Error &error) {
        check_that(0, "infer_scenes: %s", error.what());
    }
    bool batch_error = false;
    try {
        const da3::Image bad(nullptr, width, height, width * 3, da3::PixelFormat::Rgb8);
        (void)model.infer_scenes({{views[0]}, {bad}, {views[1]}}, da3::Options().process_res(56));
    } catch (const da3::BatchError &error) {
        const std::vector<da3::Status> &each = error.statuses();
        std::vector<da3::Result> &results = error.results();
        batch_error = error.status() == each[1] && std::strstr(error.what(), "scenes[1]") != nullptr &&
                      each.size() == 3 && each[0] == da3::Status::Ok && each[1] != da3::Status::Ok &&
                      each[2] == da3::Status::Ok && results.size() == 3 && results[0] && !results[1] &&
                      results[2] && results[2].view_count() == 1;
        const da3::Result kept = std::move(results[0]);
        batch_error = batch_error && kept && !results[0];
        check_that(batch_error, "infer_scenes with a bad scene: BatchError %s, statuses %s %s %s: %s",
                   da3::to_string(error.status()), da3::to_string(each[0]), da3::to_string(each[1]),
                   da3::to_string(each[2]), error.what());
    } catch (const da3::Error &error) {
        check_that(0, "infer_scenes threw a plain da3::Error: %s", error.what());
    }
    if (!batch_error) {
        check_that(0, "infer_scenes with a bad scene threw no BatchError");
    }
    bool whole = false;
    try {
        (void)model.infer_scenes({{views[0]}},
                                 da3::Options().known_cameras(std::vector<float>(12), std::vector<float>(9), 3));
    } catch (const da3::BatchError &error) {
        whole = error.status() == da3::Status::InvalidArgument && error.statuses().size() == 1 &&
                error.statuses()[0] == error.status() && error.results().size() == 1 && !error.results()[0];
    } catch (const da3::Error &) {
        whole = false;
    }
    CHECK(whole, "infer_scenes with known cameras fails as a whole: BatchError, every scene the call's status");

    // Results outlive their model.
    const float first = result.depth(0)(0, 0);
    model.reset();
    CHECK(!model && result.depth(0)(0, 0) == first, "a Result outlives its Model");

    // Two CPU replicas.
    try {
        const da3::Model two = da3::Model::create_on_devices(checkpoint, {"cpu", "cpu"}, false, da3::Precision::Fp32);
        CHECK(two.replica_count() == 2 && two.replica_devices() == std::vector<std::string>({"cpu", "cpu"}),
              "create_on_devices({\"cpu\", \"cpu\"}): two replicas");
    } catch (const da3::Error &error) {
        check_that(0, "create_on_devices: %s", error.what());
    }
}

}  // namespace

int main() {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    enum_values();
    options_builder();
    errors_without_model();
    const char *checkpoint = std::getenv("DA3_TEST_CHECKPOINT");
    const char *tmpdir = std::getenv("TMPDIR");
    if (checkpoint != nullptr && *checkpoint != '\0') {
        with_model(checkpoint, tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp");
    } else {
        check_skip("group 'model': set DA3_TEST_CHECKPOINT to a checkpoint directory");
    }
    return check_summary();
}
