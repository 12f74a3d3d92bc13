// da3_example: runs images as one scene through da3::Model::infer_files and prints, per view,
// the depth range and the cameras; writes depth_<i>.png. The C++ layer (include/da3.hpp) over
// libda3's C API: errors come as da3::Error, handles free themselves.
//
//     da3_example [--model DIR] [--out DIR] [image ...]
//
// Defaults: the model in $DA3_MODEL, else target/oracle/da3-small/checkpoint; the sample
// photos assets/images/soh_000.png and soh_010.png; PNGs into the current directory.
#include "da3.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#ifndef DA3_SOURCE_DIR
#define DA3_SOURCE_DIR "."
#endif

namespace {

std::string capability_names(da3::Capabilities caps) {
    static const struct {
        da3::Capabilities flag;
        const char *name;
    } names[] = {
        {da3::Capabilities::Pose, "pose"},
        {da3::Capabilities::Confidence, "confidence"},
        {da3::Capabilities::Sky, "sky"},
        {da3::Capabilities::MetricDepth, "metric-depth"},
        {da3::Capabilities::CanonicalMetricDepth, "canonical-metric-depth"},
        {da3::Capabilities::KnownCameras, "known-cameras"},
        {da3::Capabilities::RayPose, "ray-pose"},
    };
    std::string out;
    for (const auto &entry : names) {
        if (da3::has(caps, entry.flag)) {
            out += out.empty() ? "" : " ";
            out += entry.name;
        }
    }
    return out.empty() ? "none" : out;
}

void print_matrix(const char *name, const float *m, int rows, int cols) {
    std::printf("  %s:\n", name);
    for (int r = 0; r < rows; ++r) {
        std::printf("   ");
        for (int c = 0; c < cols; ++c) {
            std::printf(" %10.4f", static_cast<double>(m[r * cols + c]));
        }
        std::printf("\n");
    }
}

}  // namespace

int main(int argc, char **argv) {
    const char *env_model = std::getenv("DA3_MODEL");
    std::string model_path = env_model != nullptr && *env_model != '\0'
                                 ? env_model
                                 : std::string(DA3_SOURCE_DIR) + "/target/oracle/da3-small/checkpoint";
    std::string out_dir = ".";
    std::vector<std::string> images;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if ((arg == "--model" || arg == "--out") && i + 1 < argc) {
            (arg == "--model" ? model_path : out_dir) = argv[++i];
        } else if (arg == "--help" || arg == "-h") {
            std::printf("usage: %s [--model DIR] [--out DIR] [image ...]\n", argv[0]);
            return 0;
        } else {
            images.push_back(arg);
        }
    }
    if (images.empty()) {
        images = {std::string(DA3_SOURCE_DIR) + "/assets/images/soh_000.png",
                  std::string(DA3_SOURCE_DIR) + "/assets/images/soh_010.png"};
    }

    try {
        std::filesystem::create_directories(out_dir);
        std::printf("libda3 %s\n", da3::version().c_str());
        const da3::Model model = da3::Model::create(model_path);
        std::printf("model %s on %s (%s), capabilities: %s\n", model.preset().c_str(), model.device().c_str(),
                    da3::to_string(model.precision()), capability_names(model.capabilities()).c_str());

        const da3::Result result = model.infer_files(images, da3::Options().process_res(504));
        std::printf("%zu views, processed size %ux%u\n", result.view_count(), result.width(), result.height());

        for (std::size_t v = 0; v < result.view_count(); ++v) {
            const da3::View2D<const float> depth = result.depth(v);
            float lo = std::numeric_limits<float>::infinity(), hi = -lo;
            for (float d : depth) {
                if (std::isfinite(d)) {
                    lo = std::min(lo, d);
                    hi = std::max(hi, d);
                }
            }
            std::printf("view %zu (%s): depth min %.4f max %.4f, centre %.4f\n", v, images[v].c_str(),
                        static_cast<double>(lo), static_cast<double>(hi),
                        static_cast<double>(depth(depth.height() / 2, depth.width() / 2)));
            if (result.has_cameras()) {
                print_matrix("extrinsics (world-to-camera)", result.extrinsics(v).data(), 3, 4);
                print_matrix("intrinsics", result.intrinsics(v).data(), 3, 3);
            }
            const std::string png = out_dir + "/depth_" + std::to_string(v) + ".png";
            result.write_depth_png(v, png);
            std::printf("  wrote %s\n", png.c_str());
        }
        if (result.has_cameras()) {
            // Every view's points in the world frame, coloured, the sky left out where the model
            // predicts it: opens in MeshLab, CloudCompare or Blender (File > Import > PLY).
            const std::string ply = out_dir + "/points.ply";
            const std::size_t points = result.write_ply(ply, 0.0f, 0.0f, result.has_sky() ? DA3_EXPORT_DROP_SKY : 0);
            std::printf("wrote %s (%zu points)\n", ply.c_str(), points);
        }
        for (const da3::Warning &warning : result.warnings()) {
            std::printf("warning: %s\n", warning.text.c_str());
        }
        if (const std::optional<float> scale = result.scale_factor()) {
            std::printf("metric scale factor %.6f\n", static_cast<double>(*scale));
        }
    } catch (const da3::Error &error) {
        std::fprintf(stderr, "da3 error %s: %s\n", da3::to_string(error.status()), error.what());
        return 1;
    } catch (const std::exception &error) {  // e.g. the output directory cannot be made
        std::fprintf(stderr, "error: %s\n", error.what());
        return 1;
    }
    return 0;
}
