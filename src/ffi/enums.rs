//! The enum-like values of the C API: `uint32_t` typedefs with `#define` constants (so any
//! integer C passes is defined behaviour, and unknown ones are reported), and their
//! conversions from and to the core's types.
use std::ffi::c_char;

use crate::engine::Placement;
use crate::image_input::PixelFormat;
use crate::options::{Precision, RefViewStrategy, ResizeMethod};
use crate::prediction::Warning;
use crate::runner::Capabilities;

use super::boundary::{FfiError, FfiResult};

/// Arithmetic precision of the network: one of the `DA3_PRECISION_*` constants.
pub type da3_precision = u32;
/// bf16 on GPUs that support it, else fp16; fp32 on the CPU.
pub const DA3_PRECISION_AUTO: da3_precision = 0;
/// 32-bit floats everywhere.
pub const DA3_PRECISION_FP32: da3_precision = 1;
/// 16-bit floats (IEEE half).
pub const DA3_PRECISION_FP16: da3_precision = 2;
/// bfloat16.
pub const DA3_PRECISION_BF16: da3_precision = 3;

/// How an image is brought to the processing resolution (the official `process_res_method`):
/// one of the `DA3_RESIZE_*` constants.
pub type da3_resize_method = u32;
/// Longest side to `process_res`, then each side to the nearest multiple of 14 (default).
pub const DA3_RESIZE_UPPER_BOUND_RESIZE: da3_resize_method = 0;
/// Shortest side to `process_res`, then each side to the nearest multiple of 14.
pub const DA3_RESIZE_LOWER_BOUND_RESIZE: da3_resize_method = 1;
/// Longest side to `process_res`, then centre-crop each side down to a multiple of 14.
pub const DA3_RESIZE_UPPER_BOUND_CROP: da3_resize_method = 2;
/// Shortest side to `process_res`, then centre-crop each side down to a multiple of 14.
pub const DA3_RESIZE_LOWER_BOUND_CROP: da3_resize_method = 3;

/// Which view anchors a scene of three views or more (the official `ref_view_strategy`):
/// one of the `DA3_REF_VIEW_*` constants.
pub type da3_ref_view_strategy = u32;
/// The official default.
pub const DA3_REF_VIEW_SADDLE_BALANCED: da3_ref_view_strategy = 0;
/// Always the first view.
pub const DA3_REF_VIEW_FIRST: da3_ref_view_strategy = 1;
/// The middle view.
pub const DA3_REF_VIEW_MIDDLE: da3_ref_view_strategy = 2;
/// The official `saddle_sim_range` strategy.
pub const DA3_REF_VIEW_SADDLE_SIM_RANGE: da3_ref_view_strategy = 3;

/// Byte order of an interleaved 8-bit pixel: one of the `DA3_PIXEL_*` constants.
pub type da3_pixel_format = u32;
/// 3 bytes per pixel: red, green, blue.
pub const DA3_PIXEL_RGB8: da3_pixel_format = 0;
/// 4 bytes per pixel: red, green, blue, alpha (alpha is ignored).
pub const DA3_PIXEL_RGBA8: da3_pixel_format = 1;
/// 3 bytes per pixel: blue, green, red (OpenCV's default).
pub const DA3_PIXEL_BGR8: da3_pixel_format = 2;
/// 4 bytes per pixel: blue, green, red, alpha (alpha is ignored).
pub const DA3_PIXEL_BGRA8: da3_pixel_format = 3;

/// Bit set of what a model predicts and accepts, from `da3_model_capabilities`: an OR of
/// `DA3_CAP_*` flags. Bits not defined here are never set.
pub type da3_capabilities = u32;
/// Predicts cameras: results hold extrinsics and intrinsics (`da3_result_has_cameras`). The
/// any-view models and the nested model.
pub const DA3_CAP_POSE: da3_capabilities = 1 << 0;
/// Predicts depth confidence (`da3_result_confidence`). The any-view models and the nested
/// model; not `da3metric-large` / `da3mono-large`.
pub const DA3_CAP_CONFIDENCE: da3_capabilities = 1 << 1;
/// Predicts a sky map (`da3_result_sky`). `da3metric-large`, `da3mono-large`, the nested model.
pub const DA3_CAP_SKY: da3_capabilities = 1 << 2;
/// Depth and camera translations come out in metres, with the factor that put them there
/// (`da3_result_is_metric`, `da3_result_scale_factor`): the nested model.
pub const DA3_CAP_METRIC_DEPTH: da3_capabilities = 1 << 3;
/// Depth is metric for a canonical focal length of 300 pixels (`da3metric-large`): metres =
/// depth * (fx + fy) / 2 / 300 with the processed-image intrinsics.
pub const DA3_CAP_CANONICAL_METRIC_DEPTH: da3_capabilities = 1 << 4;
/// Accepts known cameras (`da3_options.extrinsics` / `intrinsics`): a camera encoder. The
/// any-view models and the nested model.
pub const DA3_CAP_KNOWN_CAMERAS: da3_capabilities = 1 << 5;
/// Can take the pose from the ray branch (`da3_options.use_ray_pose`): a DualDPT head. The
/// any-view models and the nested model.
pub const DA3_CAP_RAY_POSE: da3_capabilities = 1 << 6;

/// Kind of a result warning, from `da3_result_warning_code`: one of the `DA3_WARNING_*`
/// constants. New kinds may be added; treat unknown values as "some warning".
pub type da3_warning = u32;
/// Not a warning: returned when the query itself fails (NULL result, index out of range).
pub const DA3_WARNING_NONE: da3_warning = 0;
/// Nested model: the scene holds (almost) only sky, too little for the metric alignment; the
/// result is the any-view branch's relative depth (not metres, no scale factor).
pub const DA3_WARNING_METRIC_ALIGNMENT_SKIPPED: da3_warning = 1;
/// Nested model: no pixel qualified for the metric alignment, so the scale factor is 0 and the
/// depth is zero outside the sky, as the official computes it.
pub const DA3_WARNING_EMPTY_ALIGNMENT_MASK: da3_warning = 2;

/// How one scene uses a model with several replicas: one of the `DA3_PLACEMENT_*` constants.
pub type da3_placement = u32;
/// The scene runs on one replica, unless its estimated memory exceeds the free memory of the
/// first GPU: then it is split over all of them, like `DA3_PLACEMENT_SHARD` (default; the
/// environment variable `DA3_PLACEMENT` = `auto`, `replicate` or `shard` sets the default).
pub const DA3_PLACEMENT_AUTO: da3_placement = 0;
/// Every scene on one replica: concurrent calls and the scenes of `da3_infer_scenes` run on
/// the other replicas at the same time (throughput).
pub const DA3_PLACEMENT_REPLICATE: da3_placement = 1;
/// Every scene split over all replicas (size): the backbone's blocks in consecutive shares
/// over the devices, the activations moving between them, the heads on the first device.
/// The call holds every replica, so concurrent calls wait.
pub const DA3_PLACEMENT_SHARD: da3_placement = 2;

/// Lower-case name of a precision value ("auto", "fp32", "fp16", "bf16"), or "unknown".
///
/// Ownership: static string, never free it. Thread safety: any thread.
#[no_mangle]
pub extern "C" fn da3_precision_name(precision: da3_precision) -> *const c_char {
    match precision {
        DA3_PRECISION_AUTO => c"auto",
        DA3_PRECISION_FP32 => c"fp32",
        DA3_PRECISION_FP16 => c"fp16",
        DA3_PRECISION_BF16 => c"bf16",
        _ => c"unknown",
    }
    .as_ptr()
}

pub(super) fn capability_flags(c: &Capabilities) -> da3_capabilities {
    [
        (c.pose, DA3_CAP_POSE),
        (c.confidence, DA3_CAP_CONFIDENCE),
        (c.sky, DA3_CAP_SKY),
        (c.metric_depth, DA3_CAP_METRIC_DEPTH),
        (c.canonical_metric_depth, DA3_CAP_CANONICAL_METRIC_DEPTH),
        (c.camera_encoder, DA3_CAP_KNOWN_CAMERAS),
        (c.ray_head, DA3_CAP_RAY_POSE),
    ]
    .iter()
    .filter(|(has, _)| *has)
    .fold(0, |flags, (_, bit)| flags | bit)
}

pub(super) fn warning_to_c(warning: &Warning) -> da3_warning {
    match warning {
        Warning::MetricAlignmentSkipped { .. } => DA3_WARNING_METRIC_ALIGNMENT_SKIPPED,
        Warning::EmptyAlignmentMask => DA3_WARNING_EMPTY_ALIGNMENT_MASK,
    }
}

pub(super) fn unknown_value(field: &str, value: u32, valid: &str) -> FfiError {
    FfiError::invalid(format!("{field}: unknown value {value} (valid: {valid})"))
}

pub(super) fn precision_from_c(value: da3_precision, field: &str) -> FfiResult<Precision> {
    Ok(match value {
        DA3_PRECISION_AUTO => Precision::Auto,
        DA3_PRECISION_FP32 => Precision::Fp32,
        DA3_PRECISION_FP16 => Precision::Fp16,
        DA3_PRECISION_BF16 => Precision::Bf16,
        other => {
            return Err(unknown_value(
                field,
                other,
                "0 = DA3_PRECISION_AUTO, 1 = DA3_PRECISION_FP32, 2 = DA3_PRECISION_FP16, 3 = DA3_PRECISION_BF16",
            ))
        }
    })
}

pub(super) fn precision_to_c(precision: Precision) -> da3_precision {
    match precision {
        Precision::Auto => DA3_PRECISION_AUTO,
        Precision::Fp32 => DA3_PRECISION_FP32,
        Precision::Fp16 => DA3_PRECISION_FP16,
        Precision::Bf16 => DA3_PRECISION_BF16,
    }
}

pub(super) fn resize_method_from_c(value: da3_resize_method, field: &str) -> FfiResult<ResizeMethod> {
    Ok(match value {
        DA3_RESIZE_UPPER_BOUND_RESIZE => ResizeMethod::UpperBoundResize,
        DA3_RESIZE_LOWER_BOUND_RESIZE => ResizeMethod::LowerBoundResize,
        DA3_RESIZE_UPPER_BOUND_CROP => ResizeMethod::UpperBoundCrop,
        DA3_RESIZE_LOWER_BOUND_CROP => ResizeMethod::LowerBoundCrop,
        other => {
            return Err(unknown_value(
                field,
                other,
                "0 = DA3_RESIZE_UPPER_BOUND_RESIZE, 1 = DA3_RESIZE_LOWER_BOUND_RESIZE, \
                 2 = DA3_RESIZE_UPPER_BOUND_CROP, 3 = DA3_RESIZE_LOWER_BOUND_CROP",
            ))
        }
    })
}

pub(super) fn resize_method_to_c(method: ResizeMethod) -> da3_resize_method {
    match method {
        ResizeMethod::UpperBoundResize => DA3_RESIZE_UPPER_BOUND_RESIZE,
        ResizeMethod::LowerBoundResize => DA3_RESIZE_LOWER_BOUND_RESIZE,
        ResizeMethod::UpperBoundCrop => DA3_RESIZE_UPPER_BOUND_CROP,
        ResizeMethod::LowerBoundCrop => DA3_RESIZE_LOWER_BOUND_CROP,
    }
}

pub(super) fn ref_view_from_c(value: da3_ref_view_strategy, field: &str) -> FfiResult<RefViewStrategy> {
    Ok(match value {
        DA3_REF_VIEW_SADDLE_BALANCED => RefViewStrategy::SaddleBalanced,
        DA3_REF_VIEW_FIRST => RefViewStrategy::First,
        DA3_REF_VIEW_MIDDLE => RefViewStrategy::Middle,
        DA3_REF_VIEW_SADDLE_SIM_RANGE => RefViewStrategy::SaddleSimRange,
        other => {
            return Err(unknown_value(
                field,
                other,
                "0 = DA3_REF_VIEW_SADDLE_BALANCED, 1 = DA3_REF_VIEW_FIRST, 2 = DA3_REF_VIEW_MIDDLE, \
                 3 = DA3_REF_VIEW_SADDLE_SIM_RANGE",
            ))
        }
    })
}

pub(super) fn ref_view_to_c(strategy: RefViewStrategy) -> da3_ref_view_strategy {
    match strategy {
        RefViewStrategy::SaddleBalanced => DA3_REF_VIEW_SADDLE_BALANCED,
        RefViewStrategy::First => DA3_REF_VIEW_FIRST,
        RefViewStrategy::Middle => DA3_REF_VIEW_MIDDLE,
        RefViewStrategy::SaddleSimRange => DA3_REF_VIEW_SADDLE_SIM_RANGE,
    }
}

pub(super) fn pixel_format_from_c(value: da3_pixel_format, field: &str) -> FfiResult<PixelFormat> {
    Ok(match value {
        DA3_PIXEL_RGB8 => PixelFormat::Rgb8,
        DA3_PIXEL_RGBA8 => PixelFormat::Rgba8,
        DA3_PIXEL_BGR8 => PixelFormat::Bgr8,
        DA3_PIXEL_BGRA8 => PixelFormat::Bgra8,
        other => {
            return Err(unknown_value(
                field,
                other,
                "0 = DA3_PIXEL_RGB8, 1 = DA3_PIXEL_RGBA8, 2 = DA3_PIXEL_BGR8, 3 = DA3_PIXEL_BGRA8",
            ))
        }
    })
}


pub(super) fn placement_from_c(value: da3_placement, field: &str) -> FfiResult<Placement> {
    Ok(match value {
        DA3_PLACEMENT_AUTO => Placement::Auto,
        DA3_PLACEMENT_REPLICATE => Placement::Replicate,
        DA3_PLACEMENT_SHARD => Placement::Shard,
        other => return Err(unknown_value(field, other, "DA3_PLACEMENT_AUTO, _REPLICATE, _SHARD")),
    })
}

pub(super) fn placement_to_c(placement: Placement) -> da3_placement {
    match placement {
        Placement::Auto => DA3_PLACEMENT_AUTO,
        Placement::Replicate => DA3_PLACEMENT_REPLICATE,
        Placement::Shard => DA3_PLACEMENT_SHARD,
    }
}
