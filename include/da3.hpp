/*
 * da3.hpp -- a header-only C++17 layer over the C API of libda3 (da3.h).
 *
 * Typical use:
 *
 *     #include "da3.hpp"
 *
 *     try {
 *         da3::Model model = da3::Model::create("path/to/checkpoint");
 *         da3::Result result = model.infer_files({"a.png", "b.png"},
 *                                                da3::Options().process_res(504).ray_pose(false));
 *         for (std::size_t v = 0; v < result.view_count(); ++v) {
 *             da3::View2D<const float> depth = result.depth(v);   // depth(y, x), H x W
 *             std::array<float, 12> extrinsics = result.extrinsics(v);
 *         }
 *     } catch (const da3::Error &e) {
 *         std::fprintf(stderr, "%s: %s\n", da3::to_string(e.status()), e.what());
 *     }
 *
 * Link with libda3 exactly as a C program does (-lda3); this header adds no symbol of its own
 * (everything is inline) and uses nothing but the C functions of da3.h.
 *
 * Conventions
 *
 * - Errors: every wrapper whose C call fails throws da3::Error, carrying the call's
 *   da3::Status and a copy of da3_last_error_message() taken right after the call (what()
 *   is that message). da3_infer_scenes's partial failure throws da3::BatchError, which adds
 *   each scene's status and the results of the scenes that succeeded. Exceptions are the
 *   only error channel, with three documented exceptions where "absent" is an ordinary
 *   answer, not a failure: Model::memory_stats (std::nullopt on the CPU),
 *   Model::reset_peak_memory (false on the CPU), Result::scale_factor and
 *   Result::alignment_scale (std::nullopt when the result has none). Using an empty
 *   (moved-from or released) handle throws da3::Error with Status::NullPointer.
 * - Ownership: da3::Model and da3::Result own their C handle (da3_free / da3_result_free in
 *   the destructor); they are move-only, and a moved-from handle is empty: safe to destroy,
 *   assign to, and test with `if (handle)`. get() lends the C handle, release() gives it up,
 *   and the adopting constructors take one over, for mixing with C code.
 *   Views (View2D, Span) and Feature::data borrow from their da3::Result: they stay valid
 *   while the result lives, also after the da3::Result object is moved (the buffers belong to
 *   the C handle, not to the C++ object), and dangle once it is destroyed or reset.
 *   da3::Options owns the camera and layer arrays the C struct points at (copying an Options
 *   copies them). da3::Image borrows the caller's pixels: they must stay alive during the call.
 * - Threads (as da3.h states them): a da3::Model may be used from several threads at once
 *   (infer*, the queries and set_placement are const and thread-safe; each call runs on a
 *   free replica, calls on one replica are serialised); a da3::Result is immutable and may be
 *   read from any number of threads; destroying or moving a handle must not race with other
 *   uses of it. A da3::Options is an ordinary value: do not modify one while another thread
 *   passes it to a call. Error messages are per thread, so the message in a da3::Error is
 *   always its own call's.
 */
#ifndef DA3_HPP
#define DA3_HPP

#if !defined(__cplusplus) || __cplusplus < 201703L
#if !defined(_MSVC_LANG) || _MSVC_LANG < 201703L
#error "da3.hpp needs C++17 or later; use da3.h from C"
#endif
#endif

#include "da3.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace da3 {

// ---------------------------------------------------------------------------------------
// Enumerations: the C constants as scoped enums, with the same values.

/// Status of a C call (da3_status). New codes may appear: keep a default branch.
enum class Status : int {
    Ok = DA3_OK,
    InvalidArgument = DA3_ERR_INVALID_ARGUMENT,
    NullPointer = DA3_ERR_NULL_POINTER,
    ModelNotFound = DA3_ERR_MODEL_NOT_FOUND,
    Checkpoint = DA3_ERR_CHECKPOINT,
    Image = DA3_ERR_IMAGE,
    Io = DA3_ERR_IO,
    Unsupported = DA3_ERR_UNSUPPORTED,
    Torch = DA3_ERR_TORCH,
    NotAvailable = DA3_ERR_NOT_AVAILABLE,
    Panic = DA3_ERR_PANIC,
    OutOfMemory = DA3_ERR_OUT_OF_MEMORY,
    Cancelled = DA3_ERR_CANCELLED,
    NonFinite = DA3_ERR_NON_FINITE,
};

/// Arithmetic precision (DA3_PRECISION_*).
enum class Precision : std::uint32_t {
    Auto = DA3_PRECISION_AUTO,
    Fp32 = DA3_PRECISION_FP32,
    Fp16 = DA3_PRECISION_FP16,
    Bf16 = DA3_PRECISION_BF16,
};

/// How images are brought to the processing resolution (DA3_RESIZE_*).
enum class ResizeMethod : std::uint32_t {
    UpperBoundResize = DA3_RESIZE_UPPER_BOUND_RESIZE,
    LowerBoundResize = DA3_RESIZE_LOWER_BOUND_RESIZE,
    UpperBoundCrop = DA3_RESIZE_UPPER_BOUND_CROP,
    LowerBoundCrop = DA3_RESIZE_LOWER_BOUND_CROP,
};

/// Which view anchors a scene of three views or more (DA3_REF_VIEW_*).
enum class RefView : std::uint32_t {
    SaddleBalanced = DA3_REF_VIEW_SADDLE_BALANCED,
    First = DA3_REF_VIEW_FIRST,
    Middle = DA3_REF_VIEW_MIDDLE,
    SaddleSimRange = DA3_REF_VIEW_SADDLE_SIM_RANGE,
};

/// Byte order of an interleaved 8-bit pixel (DA3_PIXEL_*).
enum class PixelFormat : std::uint32_t {
    Rgb8 = DA3_PIXEL_RGB8,
    Rgba8 = DA3_PIXEL_RGBA8,
    Bgr8 = DA3_PIXEL_BGR8,
    Bgra8 = DA3_PIXEL_BGRA8,
};

/// How a scene uses a model with several replicas (DA3_PLACEMENT_*).
enum class Placement : std::uint32_t {
    Auto = DA3_PLACEMENT_AUTO,
    Replicate = DA3_PLACEMENT_REPLICATE,
    Shard = DA3_PLACEMENT_SHARD,
};

/// Kind of a result warning (DA3_WARNING_*). New kinds may appear.
enum class WarningCode : std::uint32_t {
    None = DA3_WARNING_NONE,
    MetricAlignmentSkipped = DA3_WARNING_METRIC_ALIGNMENT_SKIPPED,
    EmptyAlignmentMask = DA3_WARNING_EMPTY_ALIGNMENT_MASK,
};

/// Capability flags of a model (DA3_CAP_*), combined with |, &, ^ and ~; test with has().
enum class Capabilities : std::uint32_t {
    None = 0,
    Pose = DA3_CAP_POSE,
    Confidence = DA3_CAP_CONFIDENCE,
    Sky = DA3_CAP_SKY,
    MetricDepth = DA3_CAP_METRIC_DEPTH,
    CanonicalMetricDepth = DA3_CAP_CANONICAL_METRIC_DEPTH,
    KnownCameras = DA3_CAP_KNOWN_CAMERAS,
    RayPose = DA3_CAP_RAY_POSE,
};

constexpr Capabilities operator|(Capabilities a, Capabilities b) noexcept {
    return static_cast<Capabilities>(static_cast<std::uint32_t>(a) | static_cast<std::uint32_t>(b));
}
constexpr Capabilities operator&(Capabilities a, Capabilities b) noexcept {
    return static_cast<Capabilities>(static_cast<std::uint32_t>(a) & static_cast<std::uint32_t>(b));
}
constexpr Capabilities operator^(Capabilities a, Capabilities b) noexcept {
    return static_cast<Capabilities>(static_cast<std::uint32_t>(a) ^ static_cast<std::uint32_t>(b));
}
/// The complement within the defined flags (undefined bits stay clear).
constexpr Capabilities operator~(Capabilities a) noexcept {
    return static_cast<Capabilities>(~static_cast<std::uint32_t>(a) &
                                     std::uint32_t(DA3_CAP_POSE | DA3_CAP_CONFIDENCE | DA3_CAP_SKY |
                                                   DA3_CAP_METRIC_DEPTH | DA3_CAP_CANONICAL_METRIC_DEPTH |
                                                   DA3_CAP_KNOWN_CAMERAS | DA3_CAP_RAY_POSE));
}
constexpr Capabilities &operator|=(Capabilities &a, Capabilities b) noexcept { return a = a | b; }
constexpr Capabilities &operator&=(Capabilities &a, Capabilities b) noexcept { return a = a & b; }
constexpr Capabilities &operator^=(Capabilities &a, Capabilities b) noexcept { return a = a ^ b; }
/// Whether every flag of `flags` is set in `set`.
constexpr bool has(Capabilities set, Capabilities flags) noexcept { return (set & flags) == flags; }
/// Whether any flag is set.
constexpr bool any(Capabilities set) noexcept { return set != Capabilities::None; }

static_assert(static_cast<int>(Status::Ok) == 0 && static_cast<int>(Status::OutOfMemory) == DA3_ERR_OUT_OF_MEMORY &&
                  static_cast<int>(Status::Cancelled) == DA3_ERR_CANCELLED &&
                  static_cast<int>(Status::NonFinite) == DA3_ERR_NON_FINITE &&
                  static_cast<int>(Status::NotAvailable) == DA3_ERR_NOT_AVAILABLE &&
                  static_cast<int>(Status::InvalidArgument) == DA3_ERR_INVALID_ARGUMENT,
              "da3::Status follows da3_status");
static_assert(static_cast<da3_precision>(Precision::Bf16) == DA3_PRECISION_BF16 &&
                  static_cast<da3_precision>(Precision::Fp16) == DA3_PRECISION_FP16 &&
                  static_cast<da3_precision>(Precision::Fp32) == DA3_PRECISION_FP32 &&
                  static_cast<da3_precision>(Precision::Auto) == DA3_PRECISION_AUTO,
              "da3::Precision follows DA3_PRECISION_*");
static_assert(static_cast<da3_resize_method>(ResizeMethod::LowerBoundCrop) == DA3_RESIZE_LOWER_BOUND_CROP &&
                  static_cast<da3_resize_method>(ResizeMethod::UpperBoundCrop) == DA3_RESIZE_UPPER_BOUND_CROP &&
                  static_cast<da3_resize_method>(ResizeMethod::LowerBoundResize) == DA3_RESIZE_LOWER_BOUND_RESIZE &&
                  static_cast<da3_resize_method>(ResizeMethod::UpperBoundResize) == DA3_RESIZE_UPPER_BOUND_RESIZE,
              "da3::ResizeMethod follows DA3_RESIZE_*");
static_assert(static_cast<da3_ref_view_strategy>(RefView::SaddleSimRange) == DA3_REF_VIEW_SADDLE_SIM_RANGE &&
                  static_cast<da3_ref_view_strategy>(RefView::Middle) == DA3_REF_VIEW_MIDDLE &&
                  static_cast<da3_ref_view_strategy>(RefView::First) == DA3_REF_VIEW_FIRST &&
                  static_cast<da3_ref_view_strategy>(RefView::SaddleBalanced) == DA3_REF_VIEW_SADDLE_BALANCED,
              "da3::RefView follows DA3_REF_VIEW_*");
static_assert(static_cast<da3_pixel_format>(PixelFormat::Bgra8) == DA3_PIXEL_BGRA8 &&
                  static_cast<da3_pixel_format>(PixelFormat::Bgr8) == DA3_PIXEL_BGR8 &&
                  static_cast<da3_pixel_format>(PixelFormat::Rgba8) == DA3_PIXEL_RGBA8 &&
                  static_cast<da3_pixel_format>(PixelFormat::Rgb8) == DA3_PIXEL_RGB8,
              "da3::PixelFormat follows DA3_PIXEL_*");
static_assert(static_cast<da3_placement>(Placement::Shard) == DA3_PLACEMENT_SHARD &&
                  static_cast<da3_placement>(Placement::Replicate) == DA3_PLACEMENT_REPLICATE &&
                  static_cast<da3_placement>(Placement::Auto) == DA3_PLACEMENT_AUTO,
              "da3::Placement follows DA3_PLACEMENT_*");
static_assert(static_cast<da3_warning>(WarningCode::EmptyAlignmentMask) == DA3_WARNING_EMPTY_ALIGNMENT_MASK &&
                  static_cast<da3_warning>(WarningCode::MetricAlignmentSkipped) ==
                      DA3_WARNING_METRIC_ALIGNMENT_SKIPPED &&
                  static_cast<da3_warning>(WarningCode::None) == DA3_WARNING_NONE,
              "da3::WarningCode follows DA3_WARNING_*");
static_assert(static_cast<da3_capabilities>(Capabilities::Pose | Capabilities::Confidence | Capabilities::Sky |
                                            Capabilities::MetricDepth | Capabilities::CanonicalMetricDepth |
                                            Capabilities::KnownCameras | Capabilities::RayPose) ==
                      (DA3_CAP_POSE | DA3_CAP_CONFIDENCE | DA3_CAP_SKY | DA3_CAP_METRIC_DEPTH |
                       DA3_CAP_CANONICAL_METRIC_DEPTH | DA3_CAP_KNOWN_CAMERAS | DA3_CAP_RAY_POSE) &&
                  static_cast<da3_capabilities>(~Capabilities::None) ==
                      static_cast<da3_capabilities>(Capabilities::Pose | Capabilities::Confidence |
                                                    Capabilities::Sky | Capabilities::MetricDepth |
                                                    Capabilities::CanonicalMetricDepth |
                                                    Capabilities::KnownCameras | Capabilities::RayPose),
              "da3::Capabilities follows DA3_CAP_* and ~ keeps to the defined bits");

/// "DA3_ERR_IO" etc. (da3_status_name); static string.
inline const char *to_string(Status status) noexcept { return da3_status_name(static_cast<int>(status)); }
/// "auto", "fp32", "fp16", "bf16" or "unknown" (da3_precision_name); static string.
inline const char *to_string(Precision precision) noexcept {
    return da3_precision_name(static_cast<da3_precision>(precision));
}
/// Version of the loaded library, "MAJOR.MINOR.PATCH" (compare with DA3_VERSION_*).
inline std::string version() { return da3_version(); }

// ---------------------------------------------------------------------------------------
// Errors.

/// A failed C call: its status and the library's message (what()).
class Error : public std::runtime_error {
public:
    Error(Status status, const std::string &message) : std::runtime_error(message), status_(status) {}
    /// The status the C call returned (never Status::Ok).
    Status status() const noexcept { return status_; }
    /// The library's message, as da3_last_error_message() gave it right after the call, or
    /// for the few errors this layer finds itself (an empty handle, a wrong float count in
    /// infer_preprocessed) its own text. The same as what().
    const char *message() const noexcept { return what(); }

private:
    Status status_;
};

/// A da3_infer_scenes call where some scenes failed: the status of every scene (Status::Ok
/// for the ones that succeeded) and their results. status() and what() are the call's: the
/// first failed scene's status and the library's message, which names that scene and counts
/// the failures (the C API keeps only that one message). Defined after Result.
class BatchError;

namespace detail {

/// Throws da3::Error for a failed status, with the calling thread's last message. Read the
/// message before any other da3 call (da3_status_name does not touch it).
inline void check(da3_status status) {
    if (status != DA3_OK) {
        throw Error(static_cast<Status>(status), da3_last_error_message());
    }
}

[[noreturn]] inline void fail(Status status, const std::string &message) { throw Error(status, message); }

struct ModelDeleter {
    void operator()(da3_model *model) const noexcept { da3_free(model); }
};
struct ResultDeleter {
    void operator()(da3_result *result) const noexcept { da3_result_free(result); }
};

}  // namespace detail

/// Owning smart pointers over the C handles (llama-cpp.h style), for code that stays with the
/// C API but wants RAII.
using ModelPtr = std::unique_ptr<da3_model, detail::ModelDeleter>;
using ResultPtr = std::unique_ptr<da3_result, detail::ResultDeleter>;

// ---------------------------------------------------------------------------------------
// Borrowed views.

/// A contiguous, non-owning range (a small std::span for C++17): a pointer and a count.
/// Converts from std::vector, std::array and C arrays (Model::infer also takes a braced list).
template <typename T>
class Span {
public:
    using element_type = T;
    using value_type = std::remove_cv_t<T>;
    using iterator = T *;

    constexpr Span() noexcept = default;
    constexpr Span(T *data, std::size_t size) noexcept : data_(data), size_(size) {}
    template <std::size_t N>
    constexpr Span(T (&array)[N]) noexcept : data_(array), size_(N) {}
    template <typename U, std::size_t N,
              typename = std::enable_if_t<std::is_convertible<U (*)[], T (*)[]>::value>>
    constexpr Span(std::array<U, N> &array) noexcept : data_(array.data()), size_(N) {}
    template <typename U, std::size_t N,
              typename = std::enable_if_t<std::is_convertible<const U (*)[], T (*)[]>::value>>
    constexpr Span(const std::array<U, N> &array) noexcept : data_(array.data()), size_(N) {}
    template <typename U, typename A,
              typename = std::enable_if_t<std::is_convertible<U (*)[], T (*)[]>::value>>
    Span(std::vector<U, A> &vector) noexcept : data_(vector.data()), size_(vector.size()) {}
    template <typename U, typename A,
              typename = std::enable_if_t<std::is_convertible<const U (*)[], T (*)[]>::value>>
    Span(const std::vector<U, A> &vector) noexcept : data_(vector.data()), size_(vector.size()) {}

    constexpr T *data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr T &operator[](std::size_t i) const noexcept { return data_[i]; }
    constexpr T *begin() const noexcept { return data_; }
    constexpr T *end() const noexcept { return data_ + size_; }

private:
    T *data_ = nullptr;
    std::size_t size_ = 0;
};

/// One row-major height x width map borrowed from a da3::Result: view(y, x) is the pixel of
/// row y, column x; begin()/end() walk all height * width values in memory order.
template <typename T>
class View2D {
public:
    using value_type = std::remove_cv_t<T>;
    using iterator = T *;

    constexpr View2D() noexcept = default;
    constexpr View2D(T *data, std::size_t height, std::size_t width) noexcept
        : data_(data), height_(height), width_(width) {}

    constexpr T *data() const noexcept { return data_; }
    constexpr std::size_t height() const noexcept { return height_; }
    constexpr std::size_t width() const noexcept { return width_; }
    constexpr std::size_t size() const noexcept { return height_ * width_; }
    constexpr bool empty() const noexcept { return size() == 0; }
    /// Pixel (y, x); no bounds check.
    constexpr T &operator()(std::size_t y, std::size_t x) const noexcept { return data_[y * width_ + x]; }
    /// Element i in memory order; no bounds check.
    constexpr T &operator[](std::size_t i) const noexcept { return data_[i]; }
    /// Row y as a Span of width values.
    constexpr Span<T> row(std::size_t y) const noexcept { return Span<T>(data_ + y * width_, width_); }
    constexpr T *begin() const noexcept { return data_; }
    constexpr T *end() const noexcept { return data_ + size(); }

private:
    T *data_ = nullptr;
    std::size_t height_ = 0;
    std::size_t width_ = 0;
};

// ---------------------------------------------------------------------------------------
// Inputs.

/// A caller-owned interleaved 8-bit image (da3_image): borrowed, read only during the call.
/// `stride` is the number of bytes from one row to the next (>= width * bytes per pixel).
struct Image {
    const std::uint8_t *data = nullptr;
    std::uint32_t width = 0;
    std::uint32_t height = 0;
    std::size_t stride = 0;
    PixelFormat format = PixelFormat::Rgb8;

    Image() = default;
    Image(const std::uint8_t *data_, std::uint32_t width_, std::uint32_t height_, std::size_t stride_,
          PixelFormat format_) noexcept
        : data(data_), width(width_), height(height_), stride(stride_), format(format_) {}

    /// Bytes per pixel of a format (3 or 4).
    static constexpr std::size_t bytes_per_pixel(PixelFormat format) noexcept {
        return (format == PixelFormat::Rgba8 || format == PixelFormat::Bgra8) ? 4 : 3;
    }
    /// Rows without padding: stride = width * bytes per pixel.
    static Image packed(const std::uint8_t *data, std::uint32_t width, std::uint32_t height,
                        PixelFormat format) noexcept {
        return Image(data, width, height, std::size_t(width) * bytes_per_pixel(format), format);
    }
    /// The C struct (the same fields).
    da3_image c() const noexcept {
        da3_image image;
        image.data = data;
        image.width = width;
        image.height = height;
        image.stride = stride;
        image.format = static_cast<da3_pixel_format>(format);
        return image;
    }
};

/// Per-call options as a builder over da3_options (starting from da3_options_default):
///
///     da3::Options opts = da3::Options().process_res(504).resize_method(da3::ResizeMethod::UpperBoundCrop)
///                                       .ref_view(da3::RefView::First).ray_pose(true)
///                                       .known_cameras(extrinsics, intrinsics, 4).export_layers({3, 7});
///
/// Setters record values without checking them; validate() checks them as da3_options_validate
/// does (the inference calls check them anyway and throw the same error). The Options owns the
/// known-camera and feature-layer arrays; c() points a da3_options at them, valid while this
/// Options lives unchanged. Copyable and movable; the constructor throws da3::Error only if
/// the library rejects its own header's struct (a header/library mismatch).
class Options {
public:
    Options() { detail::check(da3_options_default(&options_, sizeof options_)); }

    /// Processing resolution in pixels, 14..=4096 (default 504).
    Options &process_res(std::uint32_t pixels) & noexcept {
        options_.process_res = pixels;
        return *this;
    }
    Options &&process_res(std::uint32_t pixels) && noexcept { return std::move(process_res(pixels)); }
    std::uint32_t process_res() const noexcept { return options_.process_res; }

    /// Resize method (default UpperBoundResize).
    Options &resize_method(ResizeMethod method) & noexcept {
        options_.resize_method = static_cast<da3_resize_method>(method);
        return *this;
    }
    Options &&resize_method(ResizeMethod method) && noexcept { return std::move(resize_method(method)); }
    ResizeMethod resize_method() const noexcept { return static_cast<ResizeMethod>(options_.resize_method); }

    /// Reference-view strategy (default SaddleBalanced).
    Options &ref_view(RefView strategy) & noexcept {
        options_.ref_view_strategy = static_cast<da3_ref_view_strategy>(strategy);
        return *this;
    }
    Options &&ref_view(RefView strategy) && noexcept { return std::move(ref_view(strategy)); }
    RefView ref_view() const noexcept { return static_cast<RefView>(options_.ref_view_strategy); }

    /// Pose from the ray branch instead of the camera decoder (default false).
    Options &ray_pose(bool on) & noexcept {
        options_.use_ray_pose = on ? 1u : 0u;
        return *this;
    }
    Options &&ray_pose(bool on) && noexcept { return std::move(ray_pose(on)); }
    bool ray_pose() const noexcept { return options_.use_ray_pose != 0; }

    /// Known cameras, one per view: `extrinsics` world-to-camera, `rows` (4 or 3) x 4 floats
    /// per view, row-major; `intrinsics` 3 x 3 floats per view in the input images' pixels.
    /// Copied into the Options. The view count is checked by the inference call.
    Options &known_cameras(std::vector<float> extrinsics, std::vector<float> intrinsics,
                           std::uint32_t rows = 4) & {
        extrinsics_ = std::move(extrinsics);
        intrinsics_ = std::move(intrinsics);
        options_.extrinsics_rows = rows;
        has_cameras_ = true;
        return *this;
    }
    Options &&known_cameras(std::vector<float> extrinsics, std::vector<float> intrinsics,
                            std::uint32_t rows = 4) && {
        return std::move(known_cameras(std::move(extrinsics), std::move(intrinsics), rows));
    }
    /// Drops the known cameras.
    Options &clear_known_cameras() & noexcept {
        extrinsics_.clear();
        intrinsics_.clear();
        options_.extrinsics_rows = 0;
        has_cameras_ = false;
        return *this;
    }
    Options &&clear_known_cameras() && noexcept { return std::move(clear_known_cameras()); }
    bool has_known_cameras() const noexcept { return has_cameras_; }
    const std::vector<float> &extrinsics() const noexcept { return extrinsics_; }
    const std::vector<float> &intrinsics() const noexcept { return intrinsics_; }
    std::uint32_t extrinsics_rows() const noexcept { return options_.extrinsics_rows; }

    /// With known cameras: true (default) returns the given extrinsics and divides depth by
    /// the alignment scale; false keeps the predicted scale.
    Options &align_to_input_ext_scale(bool on) & noexcept {
        options_.align_to_input_ext_scale = on ? 1u : 0u;
        return *this;
    }
    Options &&align_to_input_ext_scale(bool on) && noexcept { return std::move(align_to_input_ext_scale(on)); }
    bool align_to_input_ext_scale() const noexcept { return options_.align_to_input_ext_scale != 0; }

    /// Backbone blocks whose features the result carries, in this order (default none).
    Options &export_layers(std::vector<std::uint32_t> layers) & {
        layers_ = std::move(layers);
        return *this;
    }
    Options &&export_layers(std::vector<std::uint32_t> layers) && {
        return std::move(export_layers(std::move(layers)));
    }
    const std::vector<std::uint32_t> &export_layers() const noexcept { return layers_; }

    /// The C struct, its pointers into this Options (valid while it lives unchanged).
    da3_options c() const noexcept {
        da3_options options = options_;
        options.extrinsics = has_cameras_ ? extrinsics_.data() : nullptr;
        options.intrinsics = has_cameras_ ? intrinsics_.data() : nullptr;
        options.export_feat_layers = layers_.empty() ? nullptr : layers_.data();
        options.export_feat_layer_count = static_cast<std::uint32_t>(layers_.size());
        return options;
    }

    /// Checks the options as da3_options_validate does (no model needed); throws da3::Error.
    const Options &validate() const {
        const da3_options options = c();
        detail::check(da3_options_validate(&options));
        return *this;
    }

private:
    da3_options options_{};
    std::vector<float> extrinsics_;
    std::vector<float> intrinsics_;
    std::vector<std::uint32_t> layers_;
    bool has_cameras_ = false;
};

// ---------------------------------------------------------------------------------------
// Results.

/// A warning a result carries: its kind and the library's text ("code: explanation").
struct Warning {
    WarningCode code;
    std::string text;
};

/// An exported backbone feature: block `layer`, shape (N, H/14, W/14, C), row-major data
/// borrowed from the result.
struct Feature {
    std::uint32_t layer;
    std::array<std::size_t, 4> shape;
    Span<const float> data;
};

/// The output of one inference (owns a da3_result). Move-only; immutable, so any number of
/// threads may read one at once. Accessors on an empty (moved-from) Result throw
/// da3::Error(Status::NullPointer).
class Result {
public:
    Result() noexcept = default;
    /// Takes ownership of a C result (NULL gives an empty Result).
    explicit Result(da3_result *adopt) noexcept : handle_(adopt) {}

    Result(Result &&) noexcept = default;
    Result &operator=(Result &&) noexcept = default;
    Result(const Result &) = delete;
    Result &operator=(const Result &) = delete;

    explicit operator bool() const noexcept { return handle_ != nullptr; }
    /// The C handle, still owned by this Result (NULL when empty).
    da3_result *get() const noexcept { return handle_.get(); }
    /// Gives up ownership: the caller releases the handle with da3_result_free.
    da3_result *release() noexcept { return handle_.release(); }
    /// Frees the result now (the Result becomes empty; views into it dangle).
    void reset() noexcept { handle_.reset(); }

    /// Number of views N.
    std::size_t view_count() const { return da3_result_view_count(checked()); }
    /// Processed (network input) width W and height H of every map.
    std::uint32_t width() const { return da3_result_width(checked()); }
    std::uint32_t height() const { return da3_result_height(checked()); }

    /// Depth of view `view` (H x W). Throws Status::InvalidArgument for a view out of range.
    View2D<const float> depth(std::size_t view) const { return map(da3_result_depth(checked(), view), view); }
    /// Depth confidence of view `view`; throws Status::NotAvailable when the model predicts
    /// none (has_confidence()).
    View2D<const float> confidence(std::size_t view) const {
        return map(da3_result_confidence(checked(), view), view);
    }
    /// Sky map of view `view`; throws Status::NotAvailable without a sky head (has_sky()).
    View2D<const float> sky(std::size_t view) const { return map(da3_result_sky(checked(), view), view); }
    /// All views at once, N * H * W floats in (N, H, W) order.
    Span<const float> depth_all() const { return all(da3_result_depth_all(checked())); }
    Span<const float> confidence_all() const { return all(da3_result_confidence_all(checked())); }
    Span<const float> sky_all() const { return all(da3_result_sky_all(checked())); }
    /// Device address of view `view`'s depth in GPU memory (H * W floats on CUDA device
    /// device()), owned by this result; throws Status::NotAvailable unless infer_cuda was asked
    /// for it (DA3_DEVICE_OUTPUT_DEPTH).
    const float *depth_device(std::size_t view) const {
        return device_map(da3_result_depth_device(checked(), view), view);
    }
    /// As depth_device, for the confidence (DA3_DEVICE_OUTPUT_CONFIDENCE).
    const float *confidence_device(std::size_t view) const {
        return device_map(da3_result_confidence_device(checked(), view), view);
    }
    /// The CUDA device ordinal of the maps in GPU memory; throws Status::NotAvailable without any.
    int device() const {
        const int ordinal = da3_result_device(checked());
        if (ordinal < 0) {
            detail::fail(Status::NotAvailable, da3_last_error_message());
        }
        return ordinal;
    }
    bool has_confidence() const { return da3_result_has_confidence(checked()); }
    bool has_sky() const { return da3_result_has_sky(checked()); }

    /// Whether the result holds cameras.
    bool has_cameras() const { return da3_result_has_cameras(checked()); }
    /// World-to-camera 3x4 [R | t], row-major, OpenCV convention. Throws Status::NotAvailable
    /// without cameras, Status::InvalidArgument for a view out of range.
    std::array<float, 12> extrinsics(std::size_t view) const {
        std::array<float, 12> out{};
        detail::check(da3_result_extrinsics(checked(), view, out.data()));
        return out;
    }
    /// Pinhole 3x3 row-major, in processed-image pixels. Errors as extrinsics().
    std::array<float, 9> intrinsics(std::size_t view) const {
        std::array<float, 9> out{};
        detail::check(da3_result_intrinsics(checked(), view, out.data()));
        return out;
    }

    /// Whether depth and translations are in metres (the nested model after its alignment).
    bool is_metric() const { return da3_result_is_metric(checked()); }
    /// The nested model's metric scale factor; std::nullopt when the result has none.
    std::optional<float> scale_factor() const {
        float value = 0.0f;
        const da3_status status = da3_result_scale_factor(checked(), &value);
        return optional_float(status, value);
    }
    /// The scale of the alignment to known cameras; std::nullopt without known cameras.
    std::optional<float> alignment_scale() const {
        float value = 0.0f;
        const da3_status status = da3_result_alignment_scale(checked(), &value);
        return optional_float(status, value);
    }

    /// The warnings, in order (usually none).
    std::vector<Warning> warnings() const {
        const da3_result *result = checked();
        const std::size_t count = da3_result_warning_count(result);
        std::vector<Warning> out;
        out.reserve(count);
        for (std::size_t i = 0; i < count; ++i) {
            const char *text = da3_result_warning(result, i);
            if (text == nullptr) {
                detail::fail(Status::InvalidArgument, da3_last_error_message());
            }
            out.push_back(Warning{static_cast<WarningCode>(da3_result_warning_code(result, i)), text});
        }
        return out;
    }

    /// Number of exported features (Options::export_layers of the call).
    std::size_t feature_count() const { return da3_result_feature_count(checked()); }
    /// Exported feature `index`; throws Status::InvalidArgument past feature_count().
    Feature feature(std::size_t index) const {
        const da3_result *result = checked();
        Feature feature{};
        detail::check(da3_result_feature_info(result, index, &feature.layer, feature.shape.data()));
        const float *data = da3_result_feature_data(result, index);
        if (data == nullptr) {
            detail::fail(Status::InvalidArgument, da3_last_error_message());
        }
        feature.data = Span<const float>(data, feature.shape[0] * feature.shape[1] * feature.shape[2] *
                                                   feature.shape[3]);
        return feature;
    }
    /// Every exported feature, in the order of the call's export_layers.
    std::vector<Feature> features() const {
        std::vector<Feature> out;
        const std::size_t count = feature_count();
        out.reserve(count);
        for (std::size_t i = 0; i < count; ++i) {
            out.push_back(feature(i));
        }
        return out;
    }

    /// Writes view `view`'s depth as a colour-mapped PNG (da3_result_write_depth_png).
    void write_depth_png(std::size_t view, const std::string &path) const {
        detail::check(da3_result_write_depth_png(checked(), view, path.c_str()));
    }

    /// View `view`'s world-space points (da3_result_points): width() * height() * 3 floats,
    /// pixel (u, v) at (v * width() + u) * 3, NaN where the depth is not finite. Throws
    /// Status::NotAvailable for a result without cameras.
    std::vector<float> points(std::size_t view) const {
        std::vector<float> xyz(static_cast<std::size_t>(width()) * height() * 3);
        detail::check(da3_result_points(checked(), view, xyz.data()));
        return xyz;
    }

    /// Every view's points with their colours and confidence as a binary PLY at `path`
    /// (da3_result_write_ply); `flags` is an OR of DA3_EXPORT_*. Returns the points written.
    std::size_t write_ply(const std::string &path, float min_confidence = 0.0f, float confidence_percentile = 0.0f,
                          da3_export_flags flags = 0) const {
        std::size_t written = 0;
        detail::check(
            da3_result_write_ply(checked(), path.c_str(), min_confidence, confidence_percentile, flags, &written));
        return written;
    }

    /// The points and the camera frusta as a glTF 2.0 binary at `path` (da3_result_write_glb);
    /// arguments as write_ply. Returns the points written.
    std::size_t write_glb(const std::string &path, float min_confidence = 0.0f, float confidence_percentile = 0.0f,
                          da3_export_flags flags = 0) const {
        std::size_t written = 0;
        detail::check(
            da3_result_write_glb(checked(), path.c_str(), min_confidence, confidence_percentile, flags, &written));
        return written;
    }

private:
    const da3_result *checked() const {
        if (!handle_) {
            detail::fail(Status::NullPointer, "da3::Result is empty (moved from, released or reset)");
        }
        return handle_.get();
    }
    // A pointer-returning accessor's NULL: out of range is the caller's argument, anything
    // else an output the result does not hold.
    View2D<const float> map(const float *data, std::size_t view) const {
        if (data == nullptr) {
            const std::string message = da3_last_error_message();  // before any other call
            detail::fail(view < da3_result_view_count(handle_.get()) ? Status::NotAvailable
                                                                     : Status::InvalidArgument,
                         message);
        }
        return View2D<const float>(data, height(), width());
    }
    const float *device_map(const float *data, std::size_t view) const {
        if (data == nullptr) {
            const std::string message = da3_last_error_message();  // before any other call
            detail::fail(view < da3_result_view_count(handle_.get()) ? Status::NotAvailable
                                                                     : Status::InvalidArgument,
                         message);
        }
        return data;
    }
    Span<const float> all(const float *data) const {
        if (data == nullptr) {
            detail::fail(Status::NotAvailable, da3_last_error_message());
        }
        return Span<const float>(data, view_count() * height() * width());
    }
    static std::optional<float> optional_float(da3_status status, float value) {
        if (status == DA3_ERR_NOT_AVAILABLE) {
            return std::nullopt;
        }
        detail::check(status);
        return value;
    }
    ResultPtr handle_;
};

class BatchError : public Error {
public:
    BatchError(Status status, const std::string &message, std::vector<Status> statuses,
               std::vector<Result> results)
        : Error(status, message),
          statuses_(std::make_shared<std::vector<Status>>(std::move(statuses))),
          results_(std::make_shared<std::vector<Result>>(std::move(results))) {}

    /// One status per scene, in input order (Status::Ok for the scenes that succeeded).
    const std::vector<Status> &statuses() const noexcept { return *statuses_; }
    /// One result per scene, in input order: the scenes that succeeded hold theirs, the
    /// others are empty. Shared by the copies of the exception (exceptions must be
    /// copyable); move results out of it to keep them.
    std::vector<Result> &results() const noexcept { return *results_; }

private:
    std::shared_ptr<std::vector<Status>> statuses_;
    std::shared_ptr<std::vector<Result>> results_;
};

// ---------------------------------------------------------------------------------------
// The model.

/// GPU memory of a model's device, in bytes (da3_memory_stats).
struct MemoryStats {
    std::uint64_t allocated_bytes;
    std::uint64_t peak_allocated_bytes;
    std::uint64_t reserved_bytes;
    std::uint64_t peak_reserved_bytes;
};

/// A loaded model (owns a da3_model). Move-only. Thread-safe: any number of threads may call
/// the const members (inferences and queries, set_placement included) on one Model at once;
/// each call runs on a free replica. Destroying or moving it must not race with those calls.
/// Results outlive their model (they own their buffers). Members of an empty (moved-from)
/// Model throw da3::Error(Status::NullPointer).
class Model {
public:
    Model() noexcept = default;
    /// Takes ownership of a C handle (NULL gives an empty Model).
    explicit Model(da3_model *adopt) noexcept : handle_(adopt) {}

    Model(Model &&) noexcept = default;
    Model &operator=(Model &&) noexcept = default;
    Model(const Model &) = delete;
    Model &operator=(const Model &) = delete;

    /// Loads a checkpoint directory or a Hugging Face repo id from the local cache
    /// (da3_create). Throws da3::Error: Status::ModelNotFound (the message lists the places
    /// tried), Status::Checkpoint, Status::InvalidArgument, Status::Unsupported, ...
    static Model create(const std::string &model, bool use_accelerate = false,
                        Precision precision = Precision::Auto) {
        da3_model *out = nullptr;
        detail::check(da3_create(model.c_str(), use_accelerate, static_cast<da3_precision>(precision), &out));
        return Model(out);
    }
    /// One replica per device, e.g. {"cuda:0", "cuda:1"} or {"cpu", "cpu"}
    /// (da3_create_on_devices with the names joined by commas).
    static Model create_on_devices(const std::string &model, const std::vector<std::string> &devices,
                                   bool use_accelerate = false, Precision precision = Precision::Auto) {
        std::string list;
        for (const std::string &device : devices) {
            if (!list.empty()) {
                list += ',';
            }
            list += device;
        }
        da3_model *out = nullptr;
        detail::check(da3_create_on_devices(model.c_str(), use_accelerate, static_cast<da3_precision>(precision),
                                            list.c_str(), &out));
        return Model(out);
    }

    explicit operator bool() const noexcept { return handle_ != nullptr; }
    /// The C handle, still owned by this Model (NULL when empty).
    da3_model *get() const noexcept { return handle_.get(); }
    /// Gives up ownership: the caller releases the handle with da3_free.
    da3_model *release() noexcept { return handle_.release(); }
    /// Frees the model now (the Model becomes empty).
    void reset() noexcept { handle_.reset(); }

    /// Official preset name, e.g. "da3-large".
    std::string preset() const { return da3_model_preset(checked()); }
    /// Device of the first replica, e.g. "cpu" or "cuda:0".
    std::string device() const { return da3_model_device(checked()); }
    /// Precision in use (never Precision::Auto).
    Precision precision() const { return static_cast<Precision>(da3_model_precision(checked())); }
    /// What the model predicts and accepts.
    Capabilities capabilities() const {
        da3_capabilities flags = 0;
        detail::check(da3_model_capabilities(checked(), &flags));
        return static_cast<Capabilities>(flags);
    }
    /// Number of backbone blocks (feature layers are below it).
    std::uint32_t backbone_depth() const { return da3_model_backbone_depth(checked()); }
    /// Number of replicas (one per device).
    std::size_t replica_count() const { return da3_model_replica_count(checked()); }
    /// Device of replica `index`; throws Status::InvalidArgument out of range.
    std::string replica_device(std::size_t index) const {
        const char *device = da3_model_replica_device(checked(), index);
        if (device == nullptr) {
            detail::fail(Status::InvalidArgument, da3_last_error_message());
        }
        return device;
    }
    /// Every replica's device, in order.
    std::vector<std::string> replica_devices() const {
        std::vector<std::string> out;
        const std::size_t count = replica_count();
        for (std::size_t i = 0; i < count; ++i) {
            out.push_back(replica_device(i));
        }
        return out;
    }
    /// Placement of the following calls' scenes over the replicas.
    Placement placement() const { return static_cast<Placement>(da3_model_placement(checked())); }
    void set_placement(Placement placement) const {
        detail::check(da3_model_set_placement(checked(), static_cast<da3_placement>(placement)));
    }

    /// Memory statistics of the GPU of replica `replica` (0: the first, see replica_count());
    /// std::nullopt when the model runs on the CPU. Throws da3::Error otherwise
    /// (Status::Unsupported: the CUDA support library is missing; Status::InvalidArgument:
    /// no such replica).
    std::optional<MemoryStats> memory_stats(std::size_t replica = 0) const {
        da3_memory_stats stats{};
        stats.struct_size = sizeof stats;
        const da3_status status = da3_model_replica_memory_stats(checked(), replica, &stats);
        if (status == DA3_ERR_NOT_AVAILABLE) {
            return std::nullopt;
        }
        detail::check(status);
        return MemoryStats{stats.allocated_bytes, stats.peak_allocated_bytes, stats.reserved_bytes,
                           stats.peak_reserved_bytes};
    }
    /// Restarts the peaks; false (nothing to reset) when the model runs on the CPU.
    bool reset_peak_memory() const {
        const da3_status status = da3_model_reset_peak_memory(checked());
        if (status == DA3_ERR_NOT_AVAILABLE) {
            return false;
        }
        detail::check(status);
        return true;
    }

    /// One scene of pixel buffers (da3_infer); all views form one scene.
    Result infer(Span<const Image> views, const Options &options = Options()) const {
        std::vector<da3_image> images;
        images.reserve(views.size());
        for (const Image &view : views) {
            images.push_back(view.c());
        }
        const da3_options c_options = options.c();
        da3_result *out = nullptr;
        detail::check(da3_infer(checked(), images.empty() ? nullptr : images.data(), images.size(), &c_options, &out));
        return Result(out);
    }
    /// A braced list of views: model.infer({left, right}).
    Result infer(std::initializer_list<Image> views, const Options &options = Options()) const {
        return infer(Span<const Image>(views.begin(), views.size()), options);
    }
    /// One view.
    Result infer(const Image &view, const Options &options = Options()) const {
        return infer(Span<const Image>(&view, 1), options);
    }

    /// One scene of PNG/JPEG files (da3_infer_files).
    Result infer_files(const std::vector<std::string> &paths, const Options &options = Options()) const {
        std::vector<const char *> c_paths;
        c_paths.reserve(paths.size());
        for (const std::string &path : paths) {
            c_paths.push_back(path.c_str());
        }
        const da3_options c_options = options.c();
        da3_result *out = nullptr;
        detail::check(da3_infer_files(checked(), c_paths.empty() ? nullptr : c_paths.data(), c_paths.size(),
                                      &c_options, &out));
        return Result(out);
    }

    /// Views already normalised by the caller (da3_infer_preprocessed): n_views * 3 * height *
    /// width floats. Throws Status::InvalidArgument when `images` holds another count.
    Result infer_preprocessed(Span<const float> images, std::size_t n_views, std::uint32_t height,
                              std::uint32_t width, const Options &options = Options()) const {
        const da3_model *model = checked();
        const std::size_t want = n_views * 3 * std::size_t(height) * std::size_t(width);
        if (images.size() != want) {
            detail::fail(Status::InvalidArgument,
                         "images holds " + std::to_string(images.size()) + " floats; n_views * 3 * height * width = " +
                             std::to_string(want));
        }
        const da3_options c_options = options.c();
        da3_result *out = nullptr;
        detail::check(da3_infer_preprocessed(model, images.data(), n_views, height, width, &c_options, &out));
        return Result(out);
    }

    /// Views already in CUDA memory (da3_infer_cuda): converted, resized and normalised on
    /// their GPU with da3_infer's arithmetic. `cuda_stream` is the cudaStream_t they were
    /// produced on (nullptr: the legacy default stream); the views are read after the work
    /// queued on it. `device_outputs` (DA3_DEVICE_OUTPUT_DEPTH | DA3_DEVICE_OUTPUT_CONFIDENCE,
    /// or 0) keeps those maps in GPU memory too (Result::depth_device). Throws
    /// Status::Unsupported for a model on the CPU.
    Result infer_cuda(Span<const da3_cuda_image> views, void *cuda_stream = nullptr,
                      da3_device_outputs device_outputs = 0, const Options &options = Options()) const {
        const da3_model *model = checked();
        const da3_options c_options = options.c();
        da3_result *out = nullptr;
        detail::check(
            da3_infer_cuda(model, views.data(), views.size(), &c_options, cuda_stream, device_outputs, &out));
        return Result(out);
    }

    /// Independent scenes, one result each in input order (da3_infer_scenes). When every scene
    /// succeeds, the results; when some fail, throws da3::BatchError with every scene's status
    /// and the results of those that succeeded; an invalid call as a whole (bad options, known
    /// cameras, no scenes) throws BatchError with that status for every scene.
    std::vector<Result> infer_scenes(const std::vector<std::vector<Image>> &scenes,
                                     const Options &options = Options()) const {
        const da3_model *model = checked();
        std::vector<std::vector<da3_image>> images(scenes.size());
        std::vector<da3_scene> c_scenes(scenes.size());
        for (std::size_t i = 0; i < scenes.size(); ++i) {
            images[i].reserve(scenes[i].size());
            for (const Image &view : scenes[i]) {
                images[i].push_back(view.c());
            }
            c_scenes[i].views = images[i].empty() ? nullptr : images[i].data();
            c_scenes[i].view_count = images[i].size();
        }
        const da3_options c_options = options.c();
        std::vector<da3_result *> raw(scenes.size(), nullptr);
        std::vector<da3_status> statuses(scenes.size(), DA3_OK);
        std::vector<Result> results;
        results.reserve(raw.size());  // so that adopting the handles below cannot throw
        const da3_status status = da3_infer_scenes(model, c_scenes.empty() ? nullptr : c_scenes.data(),
                                                   c_scenes.size(), &c_options,
                                                   raw.empty() ? nullptr : raw.data(),
                                                   statuses.empty() ? nullptr : statuses.data());
        for (da3_result *result : raw) {
            results.emplace_back(result);  // owned from here on, also when throwing below
        }
        const std::string message = status == DA3_OK ? std::string() : da3_last_error_message();
        if (status != DA3_OK) {
            std::vector<Status> each;
            each.reserve(statuses.size());
            for (da3_status s : statuses) {
                each.push_back(static_cast<Status>(s));
            }
            throw BatchError(static_cast<Status>(status), message, std::move(each), std::move(results));
        }
        return results;
    }

private:
    const da3_model *checked() const {
        if (!handle_) {
            detail::fail(Status::NullPointer, "da3::Model is empty (moved from, released or reset)");
        }
        return handle_.get();
    }

    ModelPtr handle_;
};

}  // namespace da3

#endif /* DA3_HPP */
