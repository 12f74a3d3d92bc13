//! The C ABI (`include/da3.h`, generated from this file by cbindgen: see `tests/header.rs`).
//!
//! This layer only converts types, checks pointers, catches panics and maps `crate::Error`
//! kinds to status codes; everything else lives in the safe core.
//!
//! Conventions (repeated in the header's preamble, `cbindgen.toml`):
//! * every export runs inside `catch_unwind`; a panic becomes `DA3_ERR_PANIC` (or NULL / 0 for
//!   functions that do not return a status) with a message;
//! * a failing call stores a readable message in a thread-local slot read by
//!   `da3_last_error_message`; successful calls leave it alone;
//! * enum-like values that C passes *in* (precision, resize method, reference view, pixel
//!   format) are plain `uint32_t` typedefs with `#define` constants, so any integer is
//!   well-defined at the boundary and out-of-range values are reported, never UB; the status
//!   type only ever flows out of the library, so it is a real C enum;
//! * out-pointers are set to NULL first, so they are NULL on every failure.
#![allow(non_camel_case_types)]
#![deny(unsafe_op_in_unsafe_fn)]

use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::mem::{align_of, offset_of, size_of};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::ptr;

use crate::engine::{Engine, Placement, SceneInput};
use crate::error::Error;
use crate::image_input::{ImageView, PixelFormat};
use crate::options::{InferOptions, Precision, RefViewStrategy, ResizeMethod};
use crate::camera_input::CameraInput;
use crate::prediction::{Prediction, Warning};
use crate::runner::Capabilities;

// ---------------------------------------------------------------------------------------------
// Version
// ---------------------------------------------------------------------------------------------

/// Major version of the header (and of the library it was generated with).
/// `da3_version()` gives the version of the library actually loaded.
pub const DA3_VERSION_MAJOR: u32 = 0;
/// Minor version of the header.
pub const DA3_VERSION_MINOR: u32 = 1;
/// Patch version of the header.
pub const DA3_VERSION_PATCH: u32 = 0;

/// Parses a decimal version component at compile time.
const fn parse_version_part(s: &str) -> u32 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut v = 0u32;
    while i < b.len() {
        assert!(b[i].is_ascii_digit(), "version component is not a number");
        v = v * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    v
}

// The header's macros are generated from the constants above; these make a drift between them
// and Cargo.toml's `version` a compile error.
const _: () = assert!(
    DA3_VERSION_MAJOR == parse_version_part(env!("CARGO_PKG_VERSION_MAJOR")),
    "DA3_VERSION_MAJOR differs from Cargo.toml's version: update src/ffi.rs and regenerate include/da3.h"
);
const _: () = assert!(
    DA3_VERSION_MINOR == parse_version_part(env!("CARGO_PKG_VERSION_MINOR")),
    "DA3_VERSION_MINOR differs from Cargo.toml's version: update src/ffi.rs and regenerate include/da3.h"
);
const _: () = assert!(
    DA3_VERSION_PATCH == parse_version_part(env!("CARGO_PKG_VERSION_PATCH")),
    "DA3_VERSION_PATCH differs from Cargo.toml's version: update src/ffi.rs and regenerate include/da3.h"
);

const VERSION_CSTR: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

// ---------------------------------------------------------------------------------------------
// Status codes
// ---------------------------------------------------------------------------------------------

/// Result of a fallible call. `DA3_OK` is 0; every other value is an error whose readable
/// description is in `da3_last_error_message()`. Values are stable across versions; new
/// codes may be added, so keep a `default:` branch when switching on them.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum da3_status {
    /// Success.
    DA3_OK = 0,
    /// An argument is out of range or inconsistent (unknown enum value, zero size, bad stride,
    /// view index past the end, ...). The message names the argument and its value.
    DA3_ERR_INVALID_ARGUMENT = 1,
    /// A required pointer argument is NULL. The message names it.
    DA3_ERR_NULL_POINTER = 2,
    /// No checkpoint was found for the `model` argument of `da3_create`; the message lists the
    /// places that were tried.
    DA3_ERR_MODEL_NOT_FOUND = 3,
    /// A checkpoint was found but cannot be used (unreadable or corrupt file, unknown preset,
    /// missing, unexpected or mis-shaped tensors).
    DA3_ERR_CHECKPOINT = 4,
    /// An input image file could not be read or decoded, or a PNG could not be encoded.
    DA3_ERR_IMAGE = 5,
    /// A file-system operation failed (e.g. writing a PNG into a missing directory).
    DA3_ERR_IO = 6,
    /// The requested feature or device is not available in this build or on this machine,
    /// the model cannot serve the request (known cameras without a camera encoder, ray pose
    /// without a ray head: see `da3_model_capabilities`), or `da3_options` comes from a newer
    /// `da3.h` than the loaded library.
    DA3_ERR_UNSUPPORTED = 7,
    /// libtorch reported an error (out of memory, kernel failure, ...).
    DA3_ERR_TORCH = 8,
    /// The requested output is not in this result (e.g. cameras from a model without a camera
    /// head, an alignment scale without known cameras); see `da3_result_has_cameras`.
    DA3_ERR_NOT_AVAILABLE = 9,
    /// A bug inside libda3 (a Rust panic or a broken internal invariant) was caught at the
    /// API boundary. The handles involved stay valid but their state is unspecified; please
    /// report the message.
    DA3_ERR_PANIC = 10,
}

use da3_status::*;

/// Maps every core error kind to its status code (exhaustive: a new `Error` variant will not
/// compile until it is mapped here). A broken internal invariant is a bug, like a panic.
fn status_of(error: &Error) -> da3_status {
    match error {
        Error::InvalidArgument(_) => DA3_ERR_INVALID_ARGUMENT,
        Error::ModelNotFound(_) => DA3_ERR_MODEL_NOT_FOUND,
        Error::Checkpoint(_) => DA3_ERR_CHECKPOINT,
        Error::Image { .. } => DA3_ERR_IMAGE,
        Error::Io { .. } => DA3_ERR_IO,
        Error::Unsupported(_) => DA3_ERR_UNSUPPORTED,
        Error::Torch(_) => DA3_ERR_TORCH,
        Error::Internal(_) => DA3_ERR_PANIC,
    }
}

fn status_name(status: c_int) -> &'static CStr {
    match status {
        0 => c"DA3_OK",
        1 => c"DA3_ERR_INVALID_ARGUMENT",
        2 => c"DA3_ERR_NULL_POINTER",
        3 => c"DA3_ERR_MODEL_NOT_FOUND",
        4 => c"DA3_ERR_CHECKPOINT",
        5 => c"DA3_ERR_IMAGE",
        6 => c"DA3_ERR_IO",
        7 => c"DA3_ERR_UNSUPPORTED",
        8 => c"DA3_ERR_TORCH",
        9 => c"DA3_ERR_NOT_AVAILABLE",
        10 => c"DA3_ERR_PANIC",
        _ => c"DA3_UNKNOWN_STATUS",
    }
}

// ---------------------------------------------------------------------------------------------
// Enum-like input values
// ---------------------------------------------------------------------------------------------

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

fn capability_flags(c: &Capabilities) -> da3_capabilities {
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

fn warning_to_c(warning: &Warning) -> da3_warning {
    match warning {
        Warning::MetricAlignmentSkipped { .. } => DA3_WARNING_METRIC_ALIGNMENT_SKIPPED,
        Warning::EmptyAlignmentMask => DA3_WARNING_EMPTY_ALIGNMENT_MASK,
    }
}

fn unknown_value(field: &str, value: u32, valid: &str) -> FfiError {
    FfiError::invalid(format!("{field}: unknown value {value} (valid: {valid})"))
}

fn precision_from_c(value: da3_precision, field: &str) -> FfiResult<Precision> {
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

fn precision_to_c(precision: Precision) -> da3_precision {
    match precision {
        Precision::Auto => DA3_PRECISION_AUTO,
        Precision::Fp32 => DA3_PRECISION_FP32,
        Precision::Fp16 => DA3_PRECISION_FP16,
        Precision::Bf16 => DA3_PRECISION_BF16,
    }
}

fn resize_method_from_c(value: da3_resize_method, field: &str) -> FfiResult<ResizeMethod> {
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

fn resize_method_to_c(method: ResizeMethod) -> da3_resize_method {
    match method {
        ResizeMethod::UpperBoundResize => DA3_RESIZE_UPPER_BOUND_RESIZE,
        ResizeMethod::LowerBoundResize => DA3_RESIZE_LOWER_BOUND_RESIZE,
        ResizeMethod::UpperBoundCrop => DA3_RESIZE_UPPER_BOUND_CROP,
        ResizeMethod::LowerBoundCrop => DA3_RESIZE_LOWER_BOUND_CROP,
    }
}

fn ref_view_from_c(value: da3_ref_view_strategy, field: &str) -> FfiResult<RefViewStrategy> {
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

fn ref_view_to_c(strategy: RefViewStrategy) -> da3_ref_view_strategy {
    match strategy {
        RefViewStrategy::SaddleBalanced => DA3_REF_VIEW_SADDLE_BALANCED,
        RefViewStrategy::First => DA3_REF_VIEW_FIRST,
        RefViewStrategy::Middle => DA3_REF_VIEW_MIDDLE,
        RefViewStrategy::SaddleSimRange => DA3_REF_VIEW_SADDLE_SIM_RANGE,
    }
}

fn pixel_format_from_c(value: da3_pixel_format, field: &str) -> FfiResult<PixelFormat> {
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

// ---------------------------------------------------------------------------------------------
// Plain-data structs
// ---------------------------------------------------------------------------------------------

/// Per-call inference options.
///
/// Always initialise one with `da3_options_default(&opts, sizeof opts)`, then change the
/// fields you need. A NULL `const da3_options *` anywhere means "all defaults".
///
/// ABI evolution: `struct_size` tells the library which version of the struct the caller was
/// compiled with. Fields are only ever appended, in groups laid out so that no version has
/// padding inside or at its end (32-bit fields in pairs before pointers); so each version's
/// `sizeof` is the end of its last field and differs from every other version's, on every
/// platform. The versions: 16 bytes (up to `ref_view_strategy`), 24 bytes (up to
/// `align_to_input_ext_scale`), and this one (32 bytes plus three pointers: 56 on 64-bit
/// platforms, 44 on 32-bit ones). Only these sizes are accepted. Fields beyond the caller's
/// `struct_size` take their defaults and are never read, so a program built against an older
/// `da3.h` keeps working with a newer library; a `struct_size` larger than the loaded library
/// knows (a program built against a newer `da3.h`) is rejected with `DA3_ERR_UNSUPPORTED`
/// instead of being silently half-applied.
///
/// Pointers in the struct are borrowed: the library reads what they point to during the
/// `da3_infer` / `da3_infer_files` call only and keeps nothing.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct da3_options {
    /// `sizeof(da3_options)` as the caller compiled it; set by `da3_options_default`.
    pub struct_size: u32,
    /// Processing resolution in pixels, 14..=4096 (official `process_res`, default 504).
    pub process_res: u32,
    /// A `DA3_RESIZE_*` value (default `DA3_RESIZE_UPPER_BOUND_RESIZE`).
    pub resize_method: da3_resize_method,
    /// A `DA3_REF_VIEW_*` value (default `DA3_REF_VIEW_SADDLE_BALANCED`).
    pub ref_view_strategy: da3_ref_view_strategy,
    /// 1: camera pose from the DualDPT ray branch instead of the camera decoder (official
    /// `use_ray_pose`; models with `DA3_CAP_RAY_POSE`: any-view and nested; slower: the ray
    /// branch and a RANSAC fit per view run); 0: the camera decoder (default). Added in 0.1
    /// after `ref_view_strategy`.
    pub use_ray_pose: u32,
    /// With known cameras (`extrinsics`, `intrinsics`), how the prediction is aligned to them
    /// (official `align_to_input_ext_scale`): 1 (default): the result's extrinsics are the given
    /// ones and depth is divided by the alignment scale, so it is in the given cameras' units;
    /// 0: depth keeps the predicted scale and the given extrinsics are returned moved into the
    /// prediction's frame. Either way `da3_result_alignment_scale` reports the scale. Ignored
    /// without known cameras. Must be 0 or 1.
    pub align_to_input_ext_scale: u32,
    /// Rows per view in `extrinsics`: 4 (4x4 matrices, last row 0 0 0 1) or 3 (3x4 [R | t]).
    /// Must be set when `extrinsics` is; 0 (default) otherwise. Added in the 56-byte version.
    pub extrinsics_rows: u32,
    /// Number of entries in `export_feat_layers` (default 0).
    pub export_feat_layer_count: u32,
    /// Known cameras, world-to-camera (OpenCV convention: x right, y down, z forward), one per
    /// view of the call (`n_views` / `n_paths`), row-major float32: `n * extrinsics_rows * 4`
    /// floats, 4-byte aligned. Each must be a rigid transform (rotation block orthonormal with
    /// determinant +1) with finite values. With known cameras the network is conditioned on
    /// them (any-view and nested models: `DA3_CAP_KNOWN_CAMERAS`) and the prediction is aligned
    /// back to them (Umeyama similarity of the camera centres; RANSAC from 10 views), see
    /// `align_to_input_ext_scale`. The alignment needs at least 3 camera centres that are not
    /// collinear. NULL (default): no known cameras. `extrinsics` and `intrinsics` are given
    /// together or not at all.
    pub extrinsics: *const f32,
    /// Known intrinsics, one 3x3 row-major pinhole matrix per view (fx s cx / 0 fy cy / 0 0 1,
    /// fx and fy > 0) in pixels of the caller's original image (the library carries them
    /// through its resize and crop): `n * 9` floats, 4-byte aligned. NULL (default): none.
    pub intrinsics: *const f32,
    /// Backbone blocks whose features the result should carry (official `export_feat_layers`):
    /// `export_feat_layer_count` distinct block indices, each below `da3_model_backbone_depth`,
    /// in the order the result lists them (`da3_result_feature_*`). NULL with a count of 0
    /// (default): none.
    pub export_feat_layers: *const u32,
}

/// Size of the first published `da3_options`; the smallest accepted `struct_size`.
const OPTIONS_V1_SIZE: usize = offset_of!(da3_options, use_ray_pose);
/// Size of the second version (ray pose and the alignment flag).
const OPTIONS_V2_SIZE: usize = offset_of!(da3_options, extrinsics_rows);
/// Every `struct_size` ever published, oldest first; the last is this library's.
const OPTIONS_SIZES: [usize; 3] = [OPTIONS_V1_SIZE, OPTIONS_V2_SIZE, size_of::<da3_options>()];
// The versioning rule: published sizes never change, and no version has padding (inside, so
// that a struct_size never ends in the middle of a field; at the end, so that sizeof is the
// end of the last field and a later field can never hide in an older version's padding).
const _: () = {
    assert!(OPTIONS_V1_SIZE == 16 && OPTIONS_V2_SIZE == 24);
    assert!(offset_of!(da3_options, extrinsics) == 32);
    assert!(size_of::<da3_options>() == 32 + 3 * size_of::<*const f32>());
    assert!(offset_of!(da3_options, export_feat_layers) + size_of::<*const u32>() == size_of::<da3_options>());
    assert!(align_of::<f32>() == 4 && align_of::<u32>() == 4);
};

impl da3_options {
    fn from_core(options: &InferOptions) -> Self {
        da3_options {
            struct_size: size_of::<da3_options>() as u32,
            process_res: options.process_res,
            resize_method: resize_method_to_c(options.resize_method),
            ref_view_strategy: ref_view_to_c(options.ref_view_strategy),
            use_ray_pose: options.use_ray_pose as u32,
            align_to_input_ext_scale: options.align_to_input_ext_scale as u32,
            extrinsics_rows: 0,
            export_feat_layer_count: 0,
            extrinsics: ptr::null(),
            intrinsics: ptr::null(),
            // The layers are C memory: defaults have none (the core's defaults have none either).
            export_feat_layers: ptr::null(),
        }
    }
}

/// Known cameras as the options carry them, before the view count of the call is known.
#[derive(Clone, Copy, Debug)]
struct RawCameras {
    extrinsics: *const f32,
    intrinsics: *const f32,
    rows: usize,
}

/// What a call's `da3_options` asks for: the core's options plus the borrowed cameras.
#[derive(Debug)]
struct CallOptions {
    options: InferOptions,
    cameras: Option<RawCameras>,
}

impl RawCameras {
    /// The cameras of `views` views as slices of the caller's memory.
    ///
    /// # Safety
    /// The pointers satisfy `da3_options`' contract for `views` views.
    unsafe fn slices<'a>(&self, views: usize) -> FfiResult<CameraInput<'a>> {
        let len = |per_view: usize, what: &str| {
            views
                .checked_mul(per_view)
                .filter(|n| n.checked_mul(4).is_some_and(|b| b <= isize::MAX as usize))
                .ok_or_else(|| FfiError::invalid(format!("{what}: {views} views is absurdly many")))
        };
        let (e, k) = (len(self.rows * 4, "options.extrinsics")?, len(9, "options.intrinsics")?);
        // SAFETY: non-NULL and aligned (checked in `options_from_raw`), readable for that many
        // floats per the caller.
        Ok(unsafe {
            CameraInput {
                extrinsics: std::slice::from_raw_parts(self.extrinsics, e),
                intrinsics: std::slice::from_raw_parts(self.intrinsics, k),
            }
        })
    }
}

/// A caller-owned 8-bit interleaved image, read (never written or kept) during one call.
///
/// The library reads `stride * (height - 1) + width * bytes_per_pixel` bytes from `data`;
/// the caller guarantees that many bytes are readable until the call returns. Row `y` starts
/// at `data + y * stride`. This struct is passed in arrays, so it has no size field and its
/// layout is frozen: a different layout would come as a new type with new functions.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct da3_image {
    /// First byte of the top row. Must not be NULL.
    pub data: *const u8,
    /// Width in pixels (> 0).
    pub width: u32,
    /// Height in pixels (> 0).
    pub height: u32,
    /// Bytes from the start of one row to the start of the next, at least
    /// `width * bytes_per_pixel` (no "0 means packed" shortcut).
    pub stride: usize,
    /// A `DA3_PIXEL_*` value.
    pub format: da3_pixel_format,
}

// ---------------------------------------------------------------------------------------------
// Opaque handles
// ---------------------------------------------------------------------------------------------

/// A loaded model on one or several devices, one replica each (opaque). Create with
/// `da3_create` or `da3_create_on_devices`, destroy with `da3_free`.
/// Thread-safe: any number of threads may call `da3_infer`/`da3_infer_files`/
/// `da3_infer_scenes` and the query functions on one handle at the same time; each call runs
/// on whichever replica is free (first come, first served), so calls on one replica are
/// serialised and a handle with several GPUs serves that many calls at once.
pub struct da3_model {
    engine: Engine,
    preset: CString,
    device: CString,
    /// Fixed at load; kept here so queries never wait for a running inference.
    capabilities: Capabilities,
    /// Every replica's device, for `da3_model_replica_device`.
    devices: Vec<CString>,
}

/// The output of one inference (opaque): depth, confidence and cameras for every view, in
/// host memory owned by the handle. Immutable, so it may be read from any number of threads
/// at once. Destroy with `da3_result_free`.
pub struct da3_result {
    prediction: Prediction,
    width: u32,
    height: u32,
    /// The prediction's warnings as C strings, owned here for `da3_result_warning`.
    warnings: Vec<CString>,
}

// The thread-safety promises in the header rest on these.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine>();
    assert_send_sync::<Prediction>();
};

impl da3_result {
    /// Checks the core's invariants once, so the accessors can index without surprises.
    fn new(prediction: Prediction) -> FfiResult<Self> {
        prediction.check_invariants()?;
        // Both fit a u32: checked with the invariants.
        let (width, height) = (prediction.width as u32, prediction.height as u32);
        let warnings = prediction
            .warnings
            .iter()
            .map(|w| {
                CString::new(format!("{}: {w}", w.code()))
                    .map_err(|_| FfiError::from(Error::Internal("warning text holds a NUL byte".to_owned())))
            })
            .collect::<FfiResult<_>>()?;
        Ok(da3_result { prediction, width, height, warnings })
    }

    fn check_view(&self, view: usize) -> FfiResult<()> {
        if view < self.prediction.views {
            Ok(())
        } else {
            Err(FfiError::invalid(format!(
                "view index {view} is out of range: the result has {} view(s)",
                self.prediction.views
            )))
        }
    }

    fn feature(&self, index: usize) -> FfiResult<&crate::prediction::FeatureMap> {
        self.prediction.features.get(index).ok_or_else(|| {
            FfiError::invalid(format!(
                "feature index {index} is out of range: the result has {} exported feature(s)",
                self.prediction.features.len()
            ))
        })
    }

    fn map_of<'a>(&self, data: &'a [f32], view: usize) -> FfiResult<&'a [f32]> {
        self.check_view(view)?;
        let hw = self.prediction.pixels_per_view();
        Ok(&data[view * hw..(view + 1) * hw])
    }
}

// ---------------------------------------------------------------------------------------------
// Errors, thread-local message, panic boundary
// ---------------------------------------------------------------------------------------------

/// An error on its way to C: a status plus the message for `da3_last_error_message`.
#[derive(Debug)]
struct FfiError {
    status: da3_status,
    message: String,
}

type FfiResult<T> = Result<T, FfiError>;

impl FfiError {
    fn new(status: da3_status, message: impl Into<String>) -> Self {
        FfiError { status, message: message.into() }
    }

    fn null(what: &str) -> Self {
        FfiError::new(DA3_ERR_NULL_POINTER, format!("null pointer: {what} is NULL"))
    }

    fn invalid(message: impl Into<String>) -> Self {
        FfiError::new(DA3_ERR_INVALID_ARGUMENT, format!("invalid argument: {}", message.into()))
    }
}

impl From<Error> for FfiError {
    fn from(error: Error) -> Self {
        FfiError { status: status_of(&error), message: error.to_string() }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    // Interior NULs would truncate the C string; show them instead.
    let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    // `try_with`: during thread teardown the slot may be gone; the status still tells.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = message);
}

/// What an export returns when its body panicked (or, for value-returning functions, failed).
trait ErrorValue {
    fn error_value() -> Self;
}

impl<T> ErrorValue for *const T {
    fn error_value() -> Self {
        ptr::null()
    }
}

impl ErrorValue for usize {
    fn error_value() -> Self {
        0
    }
}

impl ErrorValue for u32 {
    fn error_value() -> Self {
        0
    }
}

impl ErrorValue for bool {
    fn error_value() -> Self {
        false
    }
}

impl ErrorValue for () {
    fn error_value() -> Self {}
}

/// Runs `body` behind the panic boundary. `Err(())` means it panicked (message already set).
fn catch<R>(name: &'static str, body: impl FnOnce() -> R) -> Result<R, ()> {
    catch_unwind(AssertUnwindSafe(|| {
        #[cfg(test)]
        test_hooks::maybe_panic(name);
        body()
    }))
    .map_err(|payload| {
        set_last_error(&format!(
            "internal error: {name} panicked: {}; please report this bug",
            crate::error::panic_message(payload.as_ref())
        ));
        // Dropping a payload can itself panic; never let that cross the boundary.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
    })
}

/// Boundary for functions returning `da3_status`.
fn status_call(name: &'static str, body: impl FnOnce() -> FfiResult<()>) -> da3_status {
    match catch(name, body) {
        Ok(Ok(())) => DA3_OK,
        Ok(Err(error)) => {
            set_last_error(&error.message);
            error.status
        }
        Err(()) => DA3_ERR_PANIC,
    }
}

/// Boundary for functions returning a value, with NULL / 0 / false meaning failure.
fn value_call<R: ErrorValue>(name: &'static str, body: impl FnOnce() -> FfiResult<R>) -> R {
    match catch(name, body) {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => {
            set_last_error(&error.message);
            R::error_value()
        }
        Err(()) => R::error_value(),
    }
}

#[cfg(test)]
mod test_hooks {
    use std::cell::Cell;

    thread_local! {
        /// Name of an export that must panic on its next call on this thread.
        pub static PANIC_IN: Cell<Option<&'static str>> = const { Cell::new(None) };
    }

    pub fn maybe_panic(name: &str) {
        if PANIC_IN.with(|p| p.get()) == Some(name) {
            PANIC_IN.with(|p| p.set(None));
            panic!("test-induced panic");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pointer and argument helpers
// ---------------------------------------------------------------------------------------------

/// # Safety
/// `ptr` is NULL or points to a valid `T` that outlives `'a`.
unsafe fn ref_arg<'a, T>(ptr: *const T, what: &str) -> FfiResult<&'a T> {
    // SAFETY: forwarded to the caller.
    unsafe { ptr.as_ref() }.ok_or_else(|| FfiError::null(what))
}

/// Checks an out-pointer and sets `*out = NULL`, so it is NULL on every later failure.
///
/// # Safety
/// `out` is NULL or valid for writing a pointer.
unsafe fn out_arg<'a, T>(out: *mut *mut T, what: &str) -> FfiResult<&'a mut *mut T> {
    // SAFETY: forwarded to the caller.
    let out = unsafe { out.as_mut() }.ok_or_else(|| FfiError::null(what))?;
    *out = ptr::null_mut();
    Ok(out)
}

/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives `'a`.
unsafe fn cstr_arg<'a>(ptr: *const c_char, what: &str) -> FfiResult<&'a CStr> {
    if ptr.is_null() {
        return Err(FfiError::null(what));
    }
    // SAFETY: non-NULL, and NUL-terminated per the caller.
    Ok(unsafe { CStr::from_ptr(ptr) })
}

fn utf8_arg<'a>(s: &'a CStr, what: &str) -> FfiResult<&'a str> {
    s.to_str().map_err(|_| FfiError::invalid(format!("{what} is not valid UTF-8: {}", s.to_string_lossy())))
}

/// A C path: raw bytes on Unix (any file name works), UTF-8 elsewhere.
fn path_arg(s: &CStr, what: &str) -> FfiResult<PathBuf> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let _ = what;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(s.to_bytes())))
    }
    #[cfg(not(unix))]
    {
        Ok(PathBuf::from(utf8_arg(s, what)?))
    }
}

/// # Safety
/// `ptr` is NULL or points to `n` readable `T`s that outlive `'a`.
unsafe fn slice_arg<'a, T>(ptr: *const T, n: usize, what: &str, count_name: &str) -> FfiResult<&'a [T]> {
    if n == 0 {
        return Err(FfiError::invalid(format!("{count_name} is 0: at least one is needed")));
    }
    if ptr.is_null() {
        return Err(FfiError::new(
            DA3_ERR_NULL_POINTER,
            format!("null pointer: {what} is NULL but {count_name} is {n}"),
        ));
    }
    if n.checked_mul(size_of::<T>()).map_or(true, |bytes| bytes > isize::MAX as usize) {
        return Err(FfiError::invalid(format!("{count_name} = {n} is absurdly large")));
    }
    // SAFETY: non-NULL, size checked, readable per the caller.
    Ok(unsafe { std::slice::from_raw_parts(ptr, n) })
}

/// Reads options honouring `struct_size`; NULL means defaults. Validates every field.
///
/// # Safety
/// `ptr` is NULL or points to at least `(*ptr).struct_size` readable bytes.
unsafe fn options_arg(ptr: *const da3_options) -> FfiResult<CallOptions> {
    let mut raw = da3_options::from_core(&InferOptions::default());
    if !ptr.is_null() {
        // SAFETY: reading the first field, which every version has.
        let size = unsafe { ptr::addr_of!((*ptr).struct_size).read_unaligned() } as usize;
        check_struct_size(size)?;
        // SAFETY: the caller's struct holds `size` bytes and `raw` holds at least as many.
        unsafe { ptr::copy_nonoverlapping(ptr.cast::<u8>(), ptr::addr_of_mut!(raw).cast::<u8>(), size) };
    }
    // SAFETY: `raw` holds the caller's fields (the pointers per its contract) or defaults.
    unsafe { options_from_raw(&raw) }
}

fn check_struct_size(size: usize) -> FfiResult<()> {
    let ours = size_of::<da3_options>();
    if size == 0 {
        return Err(FfiError::invalid(
            "options.struct_size is 0: initialise options with da3_options_default(&opts, sizeof opts)",
        ));
    }
    if size > ours {
        return Err(FfiError::new(
            DA3_ERR_UNSUPPORTED,
            format!(
                "unsupported: options.struct_size is {size} but this libda3 ({}) knows a {ours}-byte da3_options: \
                 the program was built against a newer da3.h than the library it loaded",
                env!("CARGO_PKG_VERSION")
            ),
        ));
    }
    if !OPTIONS_SIZES.contains(&size) {
        return Err(FfiError::invalid(format!(
            "options.struct_size is {size}, not the size of any da3_options version ({OPTIONS_SIZES:?}; this \
             library's is {ours})"
        )));
    }
    Ok(())
}

/// Checks every field; the camera values themselves are checked by the core once the view
/// count is known.
///
/// # Safety
/// `raw.export_feat_layers` is NULL or points to `raw.export_feat_layer_count` readable `u32`s.
unsafe fn options_from_raw(raw: &da3_options) -> FfiResult<CallOptions> {
    let aligned = |p: *const u8, what: &str| {
        if (p as usize) % 4 == 0 {
            Ok(())
        } else {
            Err(FfiError::invalid(format!("{what} = {p:?} is not aligned to 4 bytes")))
        }
    };
    let export_feat_layers = match (raw.export_feat_layers.is_null(), raw.export_feat_layer_count) {
        (_, 0) => Vec::new(),
        (true, n) => {
            return Err(FfiError::new(
                DA3_ERR_NULL_POINTER,
                format!("null pointer: options.export_feat_layers is NULL but options.export_feat_layer_count is {n}"),
            ))
        }
        (false, n) => {
            aligned(raw.export_feat_layers.cast(), "options.export_feat_layers")?;
            // SAFETY: non-NULL, aligned, `n` readable per the caller (n is a u32: no overflow).
            unsafe { std::slice::from_raw_parts(raw.export_feat_layers, n as usize) }.iter().map(|&l| l as usize).collect()
        }
    };
    let rows = match raw.extrinsics_rows {
        0 | 3 | 4 => raw.extrinsics_rows as usize,
        other => {
            return Err(FfiError::invalid(format!(
                "options.extrinsics_rows is {other}: must be 3 (3x4 matrices) or 4 (4x4), or 0 without extrinsics"
            )))
        }
    };
    let cameras = match (raw.extrinsics.is_null(), raw.intrinsics.is_null()) {
        (true, true) => None,
        (false, true) | (true, false) => {
            let (given, missing) =
                if raw.intrinsics.is_null() { ("extrinsics", "intrinsics") } else { ("intrinsics", "extrinsics") };
            return Err(FfiError::new(
                DA3_ERR_NULL_POINTER,
                format!("null pointer: options.{missing} is NULL but options.{given} is set: known cameras need both"),
            ));
        }
        (false, false) => {
            if rows == 0 {
                return Err(FfiError::invalid(
                    "options.extrinsics_rows is 0 but options.extrinsics is set: set it to 3 (3x4 matrices) or 4 (4x4)",
                ));
            }
            aligned(raw.extrinsics.cast(), "options.extrinsics")?;
            aligned(raw.intrinsics.cast(), "options.intrinsics")?;
            Some(RawCameras { extrinsics: raw.extrinsics, intrinsics: raw.intrinsics, rows })
        }
    };
    let options = InferOptions {
        process_res: raw.process_res,
        resize_method: resize_method_from_c(raw.resize_method, "options.resize_method")?,
        ref_view_strategy: ref_view_from_c(raw.ref_view_strategy, "options.ref_view_strategy")?,
        use_ray_pose: flag_from_c(raw.use_ray_pose, "options.use_ray_pose")?,
        align_to_input_ext_scale: flag_from_c(raw.align_to_input_ext_scale, "options.align_to_input_ext_scale")?,
        export_feat_layers,
    };
    options.validate().map_err(|e| match e {
        // The core's wording ("process_res must be ...") already names the field.
        Error::InvalidArgument(m) => FfiError::invalid(format!("options.{m}")),
        other => other.into(),
    })?;
    Ok(CallOptions { options, cameras })
}

/// A C boolean carried as `uint32_t`: 0 or 1, anything else is an error (not silently true).
fn flag_from_c(value: u32, field: &str) -> FfiResult<bool> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(FfiError::invalid(format!("{field} is {other}: must be 0 or 1"))),
    }
}

/// Builds the core's view of `views[index]`.
///
/// # Safety
/// `image.data` is NULL or points to `stride * (height - 1) + width * bpp` readable bytes
/// that outlive `'a`.
unsafe fn image_arg<'a>(image: &da3_image, index: usize) -> FfiResult<ImageView<'a>> {
    let name = |field: &str| format!("views[{index}].{field}");
    if image.data.is_null() {
        return Err(FfiError::null(&name("data")));
    }
    if image.width == 0 || image.height == 0 {
        return Err(FfiError::invalid(format!(
            "views[{index}] has size {}x{}: width and height must be non-zero",
            image.width, image.height
        )));
    }
    let format = pixel_format_from_c(image.format, &name("format"))?;
    let row = (image.width as usize)
        .checked_mul(format.bytes_per_pixel())
        .ok_or_else(|| FfiError::invalid(format!("views[{index}] is too wide ({} pixels)", image.width)))?;
    if image.stride < row {
        return Err(FfiError::invalid(format!(
            "views[{index}].stride is {} bytes, less than width * bytes per pixel = {} * {} = {row}",
            image.stride,
            image.width,
            format.bytes_per_pixel()
        )));
    }
    let len = image
        .stride
        .checked_mul(image.height as usize - 1)
        .and_then(|v| v.checked_add(row))
        .filter(|&v| v <= isize::MAX as usize)
        .ok_or_else(|| FfiError::invalid(format!("views[{index}] is too large (stride * height overflows)")))?;
    // SAFETY: non-NULL, length computed from the caller's own size description, readable per
    // the caller's guarantee documented on `da3_image`.
    let data = unsafe { std::slice::from_raw_parts(image.data, len) };
    ImageView::new(data, image.width, image.height, image.stride, format).map_err(|e| match e {
        Error::InvalidArgument(m) => FfiError::invalid(format!("views[{index}]: {m}")),
        other => other.into(),
    })
}

fn into_result(prediction: Prediction, out: &mut *mut da3_result) -> FfiResult<()> {
    *out = Box::into_raw(Box::new(da3_result::new(prediction)?));
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Library-wide functions
// ---------------------------------------------------------------------------------------------

/// Version of the loaded library as "MAJOR.MINOR.PATCH". Compare it with the
/// `DA3_VERSION_*` macros to detect a header/library mismatch.
///
/// Ownership: static string, never free it. Thread safety: any thread.
#[no_mangle]
pub extern "C" fn da3_version() -> *const c_char {
    VERSION_CSTR.as_ptr().cast()
}

/// Symbolic name of a status code, e.g. "DA3_ERR_IO"; "DA3_UNKNOWN_STATUS" for values this
/// version does not know. Takes an `int` so any value is safe to pass.
///
/// Ownership: static string, never free it. Thread safety: any thread. Does not touch the
/// thread's error message.
#[no_mangle]
pub extern "C" fn da3_status_name(status: c_int) -> *const c_char {
    status_name(status).as_ptr()
}

/// Readable message describing the most recent failing da3 call on the calling thread, or
/// "" if no call on this thread has failed yet. Successful calls do not clear it, so read it
/// right after a call reported failure (a non-`DA3_OK` status, NULL or 0).
///
/// Ownership: the string belongs to the library; it stays valid until the next da3 call on
/// the same thread. Copy it if you need it longer; never free it.
/// Thread safety: messages are per thread, so failures on other threads never show here.
#[no_mangle]
pub extern "C" fn da3_last_error_message() -> *const c_char {
    LAST_ERROR.try_with(|slot| slot.borrow().as_ptr()).unwrap_or(c"".as_ptr())
}

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

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

/// Fills `*options` with the official defaults (process_res 504, upper-bound resize,
/// saddle-balanced reference view, camera-decoder pose, `align_to_input_ext_scale` 1, no known
/// cameras, no exported features) and sets `options->struct_size = struct_size`.
/// Pass `sizeof *options` (or `sizeof(da3_options)`) as `struct_size`: this is what lets
/// the struct grow in later versions without breaking compiled programs (see `da3_options`).
///
/// Errors: `DA3_ERR_NULL_POINTER` if `options` is NULL; `DA3_ERR_INVALID_ARGUMENT` if
/// `struct_size` is not a valid size; `DA3_ERR_UNSUPPORTED` if it is larger than this
/// library's `da3_options` (built against a newer header). Only `struct_size` bytes are
/// written. Thread safety: any thread.
///
/// # Safety
/// `options` is NULL or points to `struct_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn da3_options_default(options: *mut da3_options, struct_size: usize) -> da3_status {
    status_call("da3_options_default", || {
        if options.is_null() {
            return Err(FfiError::null("options"));
        }
        check_struct_size(struct_size)?;
        let mut defaults = da3_options::from_core(&InferOptions::default());
        defaults.struct_size = struct_size as u32;
        // SAFETY: `struct_size` bytes are writable per the caller and `defaults` holds at
        // least that many (checked above).
        unsafe { ptr::copy_nonoverlapping(ptr::addr_of!(defaults).cast::<u8>(), options.cast::<u8>(), struct_size) };
        Ok(())
    })
}

/// Checks `*options` the way `da3_infer` will (struct size, every enum value and flag,
/// process_res range, `extrinsics` and `intrinsics` both set or both NULL, `extrinsics_rows`,
/// pointer alignment, repeated feature layers) without needing a model, e.g. to validate user
/// settings at start-up. What needs the model or the view count is checked by `da3_infer`:
/// the camera values (finite, rigid, positive focal lengths), feature layers below the
/// backbone depth, and whether the model takes cameras or ray pose at all.
/// NULL means defaults and is valid.
///
/// Errors: `DA3_ERR_INVALID_ARGUMENT` naming the field and its value; `DA3_ERR_NULL_POINTER`
/// for one camera pointer without the other, or a NULL feature list with a non-zero count;
/// `DA3_ERR_UNSUPPORTED` for a struct from a newer header. Thread safety: any thread.
///
/// # Safety
/// `options` is NULL or points to a `da3_options` initialised by `da3_options_default`, whose
/// `export_feat_layers` is NULL or points to `export_feat_layer_count` readable values.
#[no_mangle]
pub unsafe extern "C" fn da3_options_validate(options: *const da3_options) -> da3_status {
    status_call("da3_options_validate", || {
        // SAFETY: forwarded to the caller.
        unsafe { options_arg(options) }.map(drop)
    })
}

// ---------------------------------------------------------------------------------------------
// Model
// ---------------------------------------------------------------------------------------------

/// Loads a model and returns a new handle in `*out`.
///
/// `model` is a checkpoint directory (holding `config.json` and `model.safetensors`) or a
/// Hugging Face repo id (e.g. "depth-anything/DA3-LARGE") found in the local cache; nothing is
/// downloaded. A directory whose `config.json` names no official preset loads when it also
/// holds `official_config.json`, the official package's resolved config of its architecture
/// (how the tests' reduced nested model is described).
///
/// `use_accelerate` turns on the accelerated path. Devices: one model replica on every
/// visible CUDA device (`CUDA_VISIBLE_DEVICES` decides which are visible), so concurrent calls
/// and the scenes of `da3_infer_scenes` use all GPUs, and a scene too large for one GPU is
/// split over them (see `da3_model_set_placement`); without it, one device. The environment
/// variable `DA3_DEVICES` (e.g. "cuda:0,cuda:1") lists the devices either way, as
/// `da3_create_on_devices` does. Runner: the reference view chosen on the device; in
/// bf16/fp16 the depth head's convolutions in that precision, channels-last, and the backbone
/// features handed to it in that precision (the official keeps them in fp32); on a GPU also
/// cuDNN's fused attention and, for any-view models without ray pose, known cameras or
/// exported features, the forward captured once per input shape in a CUDA graph and replayed
/// (the first call of a shape runs eagerly and captures; up to 4 shapes are kept, each holding
/// its activation memory). A model loaded with it on a GPU sets libtorch's intra-op CPU thread
/// count to 1, for the whole process (libtorch has one such setting): the GPU path's CPU work is
/// small copies, and an idle OpenMP pool spinning on every core slows the preprocessing
/// threads. With it off the official numerics are reproduced; with it on
/// (bf16), depth stays within a median relative difference of 1 %, p99 3 % and max 10 %,
/// camera rotations within 2 degrees, translations within 1 % of the median depth of the fp32
/// reference (measured: 0.3 %, 1.1 %, 2.2 %, 0.8 degrees, 0.2 %; README, "Accuracy of the
/// accelerated runner"). In fp32 it changes no number.
///
/// `precision` is a `DA3_PRECISION_*` value: `DA3_PRECISION_AUTO` is bf16 on a GPU that
/// supports it (compute capability 8.0 and later), fp16 on older GPUs, fp32 on the CPU;
/// fp16/bf16 run the transformer's matrix products in that precision with normalisations and
/// the heads in fp32, like the official `torch.autocast`. The device (of a one-device model) is
/// a CUDA GPU if one is visible, else the CPU; the environment variable `DA3_DEVICE` (`cpu`,
/// `cuda`, `cuda:N`) overrides the choice: see `da3_model_device`.
///
/// Errors: `DA3_ERR_NULL_POINTER` (model or out is NULL), `DA3_ERR_INVALID_ARGUMENT`
/// (unknown precision, model not UTF-8), `DA3_ERR_MODEL_NOT_FOUND` (the message lists the
/// places tried), `DA3_ERR_CHECKPOINT` (corrupt or mismatched checkpoint),
/// `DA3_ERR_UNSUPPORTED` (precision not available on the device), `DA3_ERR_TORCH`.
///
/// Ownership: on success the caller owns `*out` and must release it with `da3_free`; on
/// failure `*out` is set to NULL. `model` is only read during the call.
/// Thread safety: any thread; handles are independent.
///
/// # Safety
/// `model` is NULL or a NUL-terminated string; `out` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn da3_create(
    model: *const c_char,
    use_accelerate: bool,
    precision: da3_precision,
    out: *mut *mut da3_model,
) -> da3_status {
    status_call("da3_create", || {
        // SAFETY: per the caller (both checked for NULL inside).
        let out = unsafe { out_arg(out, "out") }?;
        // SAFETY: per the caller.
        let model = utf8_arg(unsafe { cstr_arg(model, "model") }?, "model")?;
        let precision = precision_from_c(precision, "precision")?;
        let engine = Engine::load(model, use_accelerate, precision)?;
        *out = Box::into_raw(Box::new(model_handle(engine)?));
        Ok(())
    })
}

fn model_handle(engine: Engine) -> FfiResult<da3_model> {
    let to_c = |s: String, what: &str| {
        CString::new(s).map_err(|_| FfiError::new(DA3_ERR_PANIC, format!("internal error: {what} contains NUL")))
    };
    let preset = to_c(engine.preset_name().to_owned(), "preset name")?;
    let device = to_c(engine.device_name(), "device name")?;
    let devices = engine.device_names().into_iter().map(|d| to_c(d, "device name")).collect::<FfiResult<_>>()?;
    let capabilities = engine.capabilities();
    Ok(da3_model { engine, preset, device, capabilities, devices })
}

/// Destroys a model handle and frees everything it owns (including the strings returned by
/// `da3_model_preset` and `da3_model_device`). NULL is a no-op.
///
/// Results created from the model stay valid: they own their buffers.
/// Thread safety: no other thread may be using the handle.
///
/// # Safety
/// `model` is NULL or a handle from `da3_create` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn da3_free(model: *mut da3_model) {
    let _ = catch("da3_free", || {
        if !model.is_null() {
            // SAFETY: created by `Box::into_raw` in `da3_create`, freed once per the caller.
            drop(unsafe { Box::from_raw(model) });
        }
    });
}

/// Official preset name of the loaded model, e.g. "da3-large"; NULL if `model` is NULL.
///
/// Ownership: owned by the handle, valid until `da3_free(model)`; never free it.
/// Thread safety: any thread.
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn da3_model_preset(model: *const da3_model) -> *const c_char {
    value_call("da3_model_preset", || {
        // SAFETY: per the caller.
        Ok(unsafe { ref_arg(model, "model") }?.preset.as_ptr())
    })
}

/// Device the model runs on, e.g. "cpu" or "cuda:0" (the first replica's when it has
/// several: see `da3_model_replica_count`); NULL if `model` is NULL.
///
/// Ownership: owned by the handle, valid until `da3_free(model)`; never free it.
/// Thread safety: any thread.
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn da3_model_device(model: *const da3_model) -> *const c_char {
    value_call("da3_model_device", || {
        // SAFETY: per the caller.
        Ok(unsafe { ref_arg(model, "model") }?.device.as_ptr())
    })
}

/// Precision actually in use (never `DA3_PRECISION_AUTO` for a live model), or
/// `DA3_PRECISION_AUTO` if `model` is NULL. Thread safety: any thread.
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn da3_model_precision(model: *const da3_model) -> da3_precision {
    value_call("da3_model_precision", || {
        // SAFETY: per the caller.
        Ok(precision_to_c(unsafe { ref_arg(model, "model") }?.engine.precision()))
    })
}

/// Writes what the model predicts and accepts to `*flags`: an OR of `DA3_CAP_*` bits. Use it
/// before asking for an output or an input the model may not have (asking anyway is an
/// error, not a crash: `DA3_ERR_UNSUPPORTED` from `da3_infer`, `DA3_ERR_NOT_AVAILABLE` from
/// the result accessors). For the official presets:
/// - `da3-small` / `-base` / `-large` / `-giant`: `POSE | CONFIDENCE | KNOWN_CAMERAS | RAY_POSE`;
/// - `da3metric-large`: `SKY | CANONICAL_METRIC_DEPTH`; `da3mono-large`: `SKY`;
/// - `da3nested-giant-large`: `POSE | CONFIDENCE | SKY | METRIC_DEPTH | KNOWN_CAMERAS | RAY_POSE`.
///
/// Errors: `DA3_ERR_NULL_POINTER` (model or flags); `*flags` is untouched then.
/// Thread safety: any thread, also while inferences run (the answer is fixed at load).
///
/// # Safety
/// `model` is NULL or a live handle; `flags` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn da3_model_capabilities(model: *const da3_model, flags: *mut da3_capabilities) -> da3_status {
    status_call("da3_model_capabilities", || {
        // SAFETY: per the caller.
        let model = unsafe { ref_arg(model, "model") }?;
        if flags.is_null() {
            return Err(FfiError::null("flags"));
        }
        // SAFETY: non-NULL and writable per the caller.
        unsafe { flags.write(capability_flags(&model.capabilities)) };
        Ok(())
    })
}

/// Number of blocks of the model's backbone (12 for ViT-S/B, 24 for ViT-L, 40 for ViT-g; the
/// nested model: its any-view branch's): `da3_options.export_feat_layers` takes indices
/// below it. 0 if `model` is NULL. Thread safety: any thread.
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn da3_model_backbone_depth(model: *const da3_model) -> u32 {
    value_call("da3_model_backbone_depth", || {
        // SAFETY: per the caller.
        let depth = unsafe { ref_arg(model, "model") }?.capabilities.backbone_depth;
        Ok(u32::try_from(depth).unwrap_or(u32::MAX))
    })
}

// ---------------------------------------------------------------------------------------------
// Inference
// ---------------------------------------------------------------------------------------------

/// Runs one scene made of `n_views` images (one per view, any sizes) and returns a new result
/// in `*out`.
///
/// `options` may be NULL for the defaults. Arguments are checked in order: `out`, `model`,
/// `n_views` (0 is an error), `views` (NULL is an error), then each view (NULL data,
/// zero width or height, unknown format, stride smaller than width * bytes per pixel), then
/// the options (as `da3_options_validate`), then the known cameras' values for `n_views`
/// views; the first problem is reported, naming the argument (e.g. "views[1].stride",
/// "extrinsics of view 2").
///
/// With known cameras in `options` the network is conditioned on them and the result is
/// aligned back to them (see `da3_options.extrinsics`, `da3_result_alignment_scale`);
/// `options.export_feat_layers` adds backbone features to the result (`da3_result_feature_*`).
///
/// Errors: `DA3_ERR_NULL_POINTER`, `DA3_ERR_INVALID_ARGUMENT` (also: non-finite or non-rigid
/// extrinsics, non-pinhole intrinsics, camera centres too degenerate to align to, a feature
/// layer beyond the backbone), `DA3_ERR_UNSUPPORTED` (the model cannot take known cameras or
/// ray pose: check `da3_model_capabilities` first), `DA3_ERR_TORCH`.
///
/// Ownership: pixel buffers are only read during the call (see `da3_image` for how many
/// bytes); on success the caller owns `*out` and must release it with `da3_result_free`; on
/// failure `*out` is NULL.
/// Thread safety: concurrent calls on one model are allowed and are serialised on the device.
///
/// # Safety
/// `model` is NULL or a live handle; `views` is NULL or points to `n_views` `da3_image`s
/// whose `data` satisfy `da3_image`'s contract; `options` is NULL or initialised by
/// `da3_options_default`, its pointers satisfying `da3_options`' contract for `n_views`
/// views; `out` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn da3_infer(
    model: *const da3_model,
    views: *const da3_image,
    n_views: usize,
    options: *const da3_options,
    out: *mut *mut da3_result,
) -> da3_status {
    status_call("da3_infer", || {
        // SAFETY (all blocks below): pointer validity is the caller's contract above.
        let out = unsafe { out_arg(out, "out") }?;
        let model = unsafe { ref_arg(model, "model") }?;
        let views = unsafe { slice_arg(views, n_views, "views", "n_views") }?;
        let images =
            views.iter().enumerate().map(|(i, view)| unsafe { image_arg(view, i) }).collect::<FfiResult<Vec<_>>>()?;
        let call = unsafe { options_arg(options) }?;
        let cameras = call.cameras.map(|c| unsafe { c.slices(images.len()) }).transpose()?;
        into_result(model.engine.infer_with_cameras(&images, cameras.as_ref(), &call.options)?, out)
    })
}

/// Like `da3_infer`, for image files (PNG or JPEG) read from `paths[0..n_paths]`; known cameras
/// in `options` hold one camera per path, with intrinsics in the pixels of the files.
///
/// Errors: as `da3_infer`, plus `DA3_ERR_IMAGE` / `DA3_ERR_IO` naming a file that cannot be
/// read or decoded. On Unix, paths are raw bytes (any file name works); elsewhere UTF-8.
///
/// Ownership: the path strings are only read during the call; on success the caller owns
/// `*out` (release with `da3_result_free`); on failure `*out` is NULL.
/// Thread safety: as `da3_infer`.
///
/// # Safety
/// `model` is NULL or a live handle; `paths` is NULL or points to `n_paths` pointers, each
/// NULL or a NUL-terminated string; `options` as for `da3_infer` (with `n_paths` views);
/// `out` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn da3_infer_files(
    model: *const da3_model,
    paths: *const *const c_char,
    n_paths: usize,
    options: *const da3_options,
    out: *mut *mut da3_result,
) -> da3_status {
    status_call("da3_infer_files", || {
        // SAFETY (all blocks below): pointer validity is the caller's contract above.
        let out = unsafe { out_arg(out, "out") }?;
        let model = unsafe { ref_arg(model, "model") }?;
        let raw = unsafe { slice_arg(paths, n_paths, "paths", "n_paths") }?;
        let paths = raw
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let what = format!("paths[{i}]");
                path_arg(unsafe { cstr_arg(p, &what) }?, &what)
            })
            .collect::<FfiResult<Vec<_>>>()?;
        let call = unsafe { options_arg(options) }?;
        let cameras = call.cameras.map(|c| unsafe { c.slices(paths.len()) }).transpose()?;
        into_result(model.engine.infer_files_with_cameras(&paths, cameras.as_ref(), &call.options)?, out)
    })
}

// ---------------------------------------------------------------------------------------------
// Several devices: replicas, sharding, batches of scenes
// ---------------------------------------------------------------------------------------------

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

/// One scene of a `da3_infer_scenes` batch: `view_count` images (one per view), read only
/// during the call. Passed in arrays; its layout is frozen.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct da3_scene {
    /// `view_count` images, each satisfying `da3_image`'s contract. Must not be NULL.
    pub views: *const da3_image,
    /// Number of views (> 0).
    pub view_count: usize,
}

/// Like `da3_create`, with one model replica on each device of `devices`, a comma-separated
/// list such as "cuda:0,cuda:1" (devices as numbered by CUDA, i.e. after
/// `CUDA_VISIBLE_DEVICES`), "cuda" (= "cuda:0") or "cpu,cpu" (two CPU replicas: tests, or
/// concurrency on a many-core CPU). The same device may repeat; CPU and CUDA may not be mixed
/// (the replicas share one precision, resolved on the first device).
///
/// `da3_create` picks the devices itself: with `use_accelerate`, every visible CUDA device
/// (one replica each); without, one device (see `da3_create`); in both cases the environment
/// variable `DA3_DEVICES` (same syntax) overrides. Replicas load the same weights; each holds
/// a full copy in its device's memory.
///
/// Errors: as `da3_create`, plus `DA3_ERR_INVALID_ARGUMENT` (an empty or malformed list, a
/// device index past the visible ones) and `DA3_ERR_UNSUPPORTED` (CUDA asked for but not
/// available).
///
/// Ownership: on success the caller owns `*out` (release with `da3_free`); on failure `*out`
/// is NULL. `model` and `devices` are only read during the call.
/// Thread safety: any thread; handles are independent.
///
/// # Safety
/// `model` and `devices` are NULL or NUL-terminated strings; `out` is NULL or valid for
/// writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn da3_create_on_devices(
    model: *const c_char,
    use_accelerate: bool,
    precision: da3_precision,
    devices: *const c_char,
    out: *mut *mut da3_model,
) -> da3_status {
    status_call("da3_create_on_devices", || {
        // SAFETY (all blocks below): per the caller (each checked for NULL inside).
        let out = unsafe { out_arg(out, "out") }?;
        let model = utf8_arg(unsafe { cstr_arg(model, "model") }?, "model")?;
        let precision = precision_from_c(precision, "precision")?;
        let list = utf8_arg(unsafe { cstr_arg(devices, "devices") }?, "devices")?;
        let devices = crate::runtime::parse_device_list(list).map_err(|e| match e {
            Error::InvalidArgument(m) => FfiError::invalid(format!("devices: {m}")),
            other => other.into(),
        })?;
        let engine = Engine::load_on_devices(model, &devices, use_accelerate, precision)?;
        *out = Box::into_raw(Box::new(model_handle(engine)?));
        Ok(())
    })
}

/// Number of replicas (one per device) the model runs on; 0 if `model` is NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn da3_model_replica_count(model: *const da3_model) -> usize {
    value_call("da3_model_replica_count", || {
        // SAFETY: per the caller.
        Ok(unsafe { ref_arg(model, "model") }?.devices.len())
    })
}

/// Device of replica `index` (0 <= index < `da3_model_replica_count`), e.g. "cuda:1"; NULL
/// (with a message) if `model` is NULL or `index` is out of range.
///
/// Ownership: owned by the handle, valid until `da3_free(model)`; never free it.
/// Thread safety: any thread.
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn da3_model_replica_device(model: *const da3_model, index: usize) -> *const c_char {
    value_call("da3_model_replica_device", || {
        // SAFETY: per the caller.
        let model = unsafe { ref_arg(model, "model") }?;
        let device = model.devices.get(index).ok_or_else(|| {
            FfiError::invalid(format!("replica index {index} is out of range: the model has {} replica(s)", model.devices.len()))
        })?;
        Ok(device.as_ptr())
    })
}

/// Sets how the following calls on `model` use several replicas (`DA3_PLACEMENT_*`); calls
/// already running keep their choice. With one replica every placement runs the same way.
///
/// Errors: `DA3_ERR_NULL_POINTER`, `DA3_ERR_INVALID_ARGUMENT` (unknown placement).
/// Thread safety: any thread, also while other threads run inferences on the model.
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn da3_model_set_placement(model: *const da3_model, placement: da3_placement) -> da3_status {
    status_call("da3_model_set_placement", || {
        // SAFETY: per the caller.
        let model = unsafe { ref_arg(model, "model") }?;
        let placement = match placement {
            DA3_PLACEMENT_AUTO => Placement::Auto,
            DA3_PLACEMENT_REPLICATE => Placement::Replicate,
            DA3_PLACEMENT_SHARD => Placement::Shard,
            other => return Err(unknown_value("placement", other, "DA3_PLACEMENT_AUTO, _REPLICATE, _SHARD")),
        };
        model.engine.set_placement(placement);
        Ok(())
    })
}

/// The model's current placement (`DA3_PLACEMENT_*`); `DA3_PLACEMENT_AUTO` if `model` is
/// NULL. Thread safety: any thread.
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn da3_model_placement(model: *const da3_model) -> da3_placement {
    value_call("da3_model_placement", || {
        // SAFETY: per the caller.
        Ok(match unsafe { ref_arg(model, "model") }?.engine.placement() {
            Placement::Auto => DA3_PLACEMENT_AUTO,
            Placement::Replicate => DA3_PLACEMENT_REPLICATE,
            Placement::Shard => DA3_PLACEMENT_SHARD,
        })
    })
}

/// Runs `scene_count` independent scenes (each its own forward: no attention across scenes)
/// and returns one result per scene, in input order. The scenes are spread over the model's
/// replicas (decoding and resizing overlap the forwards), so on a model with several GPUs a
/// batch runs about as many times faster; with one replica they run one after the other.
/// Under `DA3_PLACEMENT_SHARD` they run one after the other, each split over all replicas.
///
/// Partial failure: every scene succeeds or fails on its own (bad views, out of device
/// memory, ...). On return, for every scene `i`, `results[i]` is a new result or NULL, and
/// `statuses[i]` (if `statuses` is not NULL) is `DA3_OK` or that scene's error. The call
/// returns `DA3_OK` when every scene succeeded; otherwise the status of the first failed
/// scene, with `da3_last_error_message()` naming it ("scenes[2]: ...") and counting the
/// failures. An invalid call (NULL `model` or `results`, `scene_count` 0, NULL `scenes`,
/// bad options, options carrying known cameras: those belong to one scene, use `da3_infer`)
/// fails as a whole: every `results[i]` is NULL and every `statuses[i]` is that error. Each
/// scene is checked like the views of `da3_infer` ("scenes[i]: views[j].stride ...").
///
/// Ownership: pixel buffers are only read during the call; the caller owns every non-NULL
/// `results[i]` (also when the call returns an error) and releases each with
/// `da3_result_free`. `results` and `statuses` are caller-provided arrays of `scene_count`
/// elements.
/// Thread safety: as `da3_infer`: any number of threads may call it (and `da3_infer`) on one
/// model at once; the scenes of all calls share the replicas first come, first served.
///
/// # Safety
/// `model` is NULL or a live handle; `scenes` is NULL or points to `scene_count` scenes whose
/// `views` satisfy `da3_infer`'s contract; `options` as for `da3_infer`; `results` is NULL or
/// valid for writing `scene_count` pointers; `statuses` is NULL or valid for writing
/// `scene_count` `da3_status` values.
#[no_mangle]
pub unsafe extern "C" fn da3_infer_scenes(
    model: *const da3_model,
    scenes: *const da3_scene,
    scene_count: usize,
    options: *const da3_options,
    results: *mut *mut da3_result,
    statuses: *mut da3_status,
) -> da3_status {
    status_call("da3_infer_scenes", || {
        if results.is_null() {
            return Err(FfiError::null("results"));
        }
        if scene_count > isize::MAX as usize / size_of::<*mut da3_result>() {
            return Err(FfiError::invalid(format!("scene_count = {scene_count} is absurdly large")));
        }
        // SAFETY: non-NULL, and valid for scene_count writes per the caller.
        let results = unsafe { std::slice::from_raw_parts_mut(results, scene_count) };
        results.iter_mut().for_each(|r| *r = ptr::null_mut());
        // SAFETY: NULL or valid for scene_count writes per the caller.
        let mut statuses = (!statuses.is_null()).then(|| unsafe { std::slice::from_raw_parts_mut(statuses, scene_count) });
        let outcome = (|| -> FfiResult<Vec<FfiResult<*mut da3_result>>> {
            // SAFETY (all blocks below): pointer validity is the caller's contract above.
            let model = unsafe { ref_arg(model, "model") }?;
            let scenes = unsafe { slice_arg(scenes, scene_count, "scenes", "scene_count") }?;
            let options = unsafe { options_arg(options) }?;
            if options.cameras.is_some() {
                return Err(FfiError::invalid(
                    "options: known cameras belong to one scene; da3_infer_scenes takes none (use da3_infer per scene)",
                ));
            }
            let options = options.options;
            // Each scene's own arguments: a bad scene fails alone.
            let checked: Vec<FfiResult<Vec<ImageView<'_>>>> = scenes
                .iter()
                .map(|scene| {
                    let views = unsafe { slice_arg(scene.views, scene.view_count, "views", "view_count") }?;
                    views.iter().enumerate().map(|(j, view)| unsafe { image_arg(view, j) }).collect()
                })
                .collect();
            let valid: Vec<usize> = (0..scene_count).filter(|&i| checked[i].is_ok()).collect();
            let mut outcomes: Vec<FfiResult<*mut da3_result>> = Vec::with_capacity(scene_count);
            let mut inputs = Vec::with_capacity(valid.len());
            for c in checked {
                match c {
                    Ok(images) => {
                        inputs.push(SceneInput { images, cameras: None });
                        outcomes.push(Ok(ptr::null_mut()));
                    }
                    Err(e) => outcomes.push(Err(e)),
                }
            }
            let predictions = model.engine.infer_scenes(&inputs, &options);
            for (&i, prediction) in valid.iter().zip(predictions) {
                outcomes[i] = prediction
                    .map_err(FfiError::from)
                    .and_then(|p| Ok(Box::into_raw(Box::new(da3_result::new(p)?))));
            }
            Ok(outcomes)
        })();
        let outcomes = match outcome {
            Ok(outcomes) => outcomes,
            Err(error) => {
                if let Some(statuses) = statuses.as_deref_mut() {
                    statuses.iter_mut().for_each(|s| *s = error.status);
                }
                return Err(error);
            }
        };
        let mut first_failure: Option<(usize, FfiError)> = None;
        let mut failures = 0;
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let status = match outcome {
                Ok(result) => {
                    results[i] = result;
                    DA3_OK
                }
                Err(error) => {
                    failures += 1;
                    let status = error.status;
                    first_failure.get_or_insert((i, error));
                    status
                }
            };
            if let Some(statuses) = statuses.as_deref_mut() {
                statuses[i] = status;
            }
        }
        match first_failure {
            None => Ok(()),
            Some((i, error)) => Err(FfiError::new(
                error.status,
                format!("scenes[{i}]: {} ({failures} of {scene_count} scene(s) failed)", error.message),
            )),
        }
    })
}

/// Runs the network on views the caller has already preprocessed (no decoding, no resize),
/// e.g. to time the forward alone, and returns a new result in `*out`.
///
/// `images` holds `n_views * 3 * height * width` floats: per view, the R, G and B planes
/// (row-major, `height` rows of `width`), each pixel scaled to [0, 1] and normalised with the
/// ImageNet mean (0.485, 0.456, 0.406) and standard deviation (0.229, 0.224, 0.225), as the
/// official `InputProcessor` does. `height` and `width` must be multiples of 14. The result's
/// size is `width` x `height` and its intrinsics are in these pixels. `options` may be NULL;
/// only `ref_view_strategy` and `use_ray_pose` apply (`process_res` and `resize_method` are
/// checked but unused).
///
/// Errors: `DA3_ERR_NULL_POINTER`, `DA3_ERR_INVALID_ARGUMENT` (zero views, a size that is
/// not a multiple of 14, options carrying known cameras: those go through `da3_infer`),
/// `DA3_ERR_UNSUPPORTED`, `DA3_ERR_TORCH`.
///
/// Ownership: `images` is only read during the call; on success the caller owns `*out`
/// (release with `da3_result_free`); on failure `*out` is NULL.
/// Thread safety: as `da3_infer`.
///
/// # Safety
/// `model` is NULL or a live handle; `images` is NULL or points to
/// `n_views * 3 * height * width` readable floats; `options` as for `da3_infer`; `out` is NULL
/// or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn da3_infer_preprocessed(
    model: *const da3_model,
    images: *const f32,
    n_views: usize,
    height: u32,
    width: u32,
    options: *const da3_options,
    out: *mut *mut da3_result,
) -> da3_status {
    status_call("da3_infer_preprocessed", || {
        // SAFETY (all blocks below): pointer validity is the caller's contract above.
        let out = unsafe { out_arg(out, "out") }?;
        let model = unsafe { ref_arg(model, "model") }?;
        if n_views == 0 {
            return Err(FfiError::invalid("n_views is 0"));
        }
        if height == 0 || width == 0 || height % 14 != 0 || width % 14 != 0 {
            return Err(FfiError::invalid(format!("height and width must be positive multiples of 14, got {height} x {width}")));
        }
        let count = n_views
            .checked_mul(3 * height as usize * width as usize)
            .ok_or_else(|| FfiError::invalid("n_views * 3 * height * width overflows"))?;
        let images = unsafe { slice_arg(images, count, "images", "n_views") }?;
        let options = unsafe { options_arg(options) }?;
        if options.cameras.is_some() {
            return Err(FfiError::invalid("options: known cameras are taken by da3_infer and da3_infer_files only"));
        }
        into_result(model.engine.infer_preprocessed(images, n_views, height, width, &options.options)?, out)
    })
}

// ---------------------------------------------------------------------------------------------
// Device memory
// ---------------------------------------------------------------------------------------------

/// GPU memory held by libtorch's caching allocator on a model's device, in bytes (all
/// models and results on that device together: the allocator is per device).
/// `struct_size` first, so the struct can grow: set it to `sizeof(da3_memory_stats)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct da3_memory_stats {
    /// `sizeof(da3_memory_stats)` as the caller compiled it; the library sets it to the
    /// number of bytes it wrote.
    pub struct_size: u32,
    /// Zero.
    pub reserved_0: u32,
    /// Bytes in live tensors now.
    pub allocated_bytes: u64,
    /// Highest `allocated_bytes` since the model was loaded or `da3_model_reset_peak_memory`
    /// (what `torch.cuda.max_memory_allocated` reports).
    pub peak_allocated_bytes: u64,
    /// Bytes the allocator holds from the driver now (live tensors, cached blocks and the
    /// memory pools of captured CUDA graphs).
    pub reserved_bytes: u64,
    /// Highest `reserved_bytes` over the same period.
    pub peak_reserved_bytes: u64,
}

const MEMORY_STATS_V1_SIZE: usize = 40;
const _: () = assert!(size_of::<da3_memory_stats>() == MEMORY_STATS_V1_SIZE);

fn memory_device_check(model: &da3_model) -> FfiResult<()> {
    if model.engine.runs_on_cpu() {
        return Err(FfiError::new(DA3_ERR_NOT_AVAILABLE, "not available: the model runs on the CPU (no GPU memory statistics)"));
    }
    Ok(())
}

/// Fills `*out` with the memory statistics of the model's GPU.
///
/// The caller sets `out->struct_size = sizeof(da3_memory_stats)` first; the library writes
/// at most that many bytes (at most its own struct's size) and sets `struct_size` to what it
/// wrote.
///
/// Errors: `DA3_ERR_NULL_POINTER`; `DA3_ERR_INVALID_ARGUMENT` (`struct_size` smaller than
/// the first version, 40); `DA3_ERR_NOT_AVAILABLE` when the model runs on the CPU (nothing
/// is written then); `DA3_ERR_UNSUPPORTED` when the GPU statistics cannot be read (the CUDA
/// support library `libda3_cuda_support.so` is missing; the message says where it looked).
///
/// Ownership: `*out` is the caller's. Thread safety: any thread; the numbers cover every
/// model on that device.
///
/// # Safety
/// `model` is NULL or a live handle; `out` is NULL or points to a writable struct of
/// `out->struct_size` bytes.
#[no_mangle]
pub unsafe extern "C" fn da3_model_memory_stats(model: *const da3_model, out: *mut da3_memory_stats) -> da3_status {
    status_call("da3_model_memory_stats", || {
        // SAFETY: per the caller.
        let model = unsafe { ref_arg(model, "model") }?;
        if out.is_null() {
            return Err(FfiError::null("out"));
        }
        // SAFETY: `out` is non-NULL and its first 4 bytes are readable per the caller.
        let size = unsafe { ptr::read_unaligned(out.cast::<u32>()) } as usize;
        if size < MEMORY_STATS_V1_SIZE {
            return Err(FfiError::invalid(format!(
                "out->struct_size is {size}: set it to sizeof(da3_memory_stats) ({MEMORY_STATS_V1_SIZE} or more)"
            )));
        }
        memory_device_check(model)?;
        let stats = model.engine.memory_stats()?;
        let written = size.min(size_of::<da3_memory_stats>());
        let value = da3_memory_stats {
            struct_size: written as u32,
            reserved_0: 0,
            allocated_bytes: stats.allocated.max(0) as u64,
            peak_allocated_bytes: stats.peak_allocated.max(0) as u64,
            reserved_bytes: stats.reserved.max(0) as u64,
            peak_reserved_bytes: stats.peak_reserved.max(0) as u64,
        };
        // SAFETY: `written` bytes are writable per the caller and `value` holds that many.
        unsafe { ptr::copy_nonoverlapping(ptr::addr_of!(value).cast::<u8>(), out.cast::<u8>(), written) };
        Ok(())
    })
}

/// Restarts the peaks of `da3_model_memory_stats` from the current usage of the model's GPU
/// (for every model on that device).
///
/// Errors: `DA3_ERR_NULL_POINTER`, `DA3_ERR_NOT_AVAILABLE` (the model runs on the CPU),
/// `DA3_ERR_UNSUPPORTED` (as for `da3_model_memory_stats`). Thread safety: any thread.
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn da3_model_reset_peak_memory(model: *const da3_model) -> da3_status {
    status_call("da3_model_reset_peak_memory", || {
        // SAFETY: per the caller.
        let model = unsafe { ref_arg(model, "model") }?;
        memory_device_check(model)?;
        Ok(model.engine.reset_peak_memory()?)
    })
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

/// Number of views in the result (N), or 0 if `result` is NULL. Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_view_count(result: *const da3_result) -> usize {
    value_call("da3_result_view_count", || {
        // SAFETY: per the caller.
        Ok(unsafe { ref_arg(result, "result") }?.prediction.views)
    })
}

/// Width W of every per-pixel map: the processed (network input) width, not the input
/// image's. 0 if `result` is NULL. Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_width(result: *const da3_result) -> u32 {
    value_call("da3_result_width", || {
        // SAFETY: per the caller.
        Ok(unsafe { ref_arg(result, "result") }?.width)
    })
}

/// Height H of every per-pixel map (the processed height). 0 if `result` is NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_height(result: *const da3_result) -> u32 {
    value_call("da3_result_height", || {
        // SAFETY: per the caller.
        Ok(unsafe { ref_arg(result, "result") }?.height)
    })
}

/// Depth of view `view`: H*W floats, row-major. NULL (with a message) if `result` is NULL or
/// `view >= da3_result_view_count(result)`.
///
/// Ownership: owned by the result, valid until `da3_result_free(result)`; never free it.
/// Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_depth(result: *const da3_result, view: usize) -> *const f32 {
    value_call("da3_result_depth", || {
        // SAFETY: per the caller.
        let r = unsafe { ref_arg(result, "result") }?;
        Ok(r.map_of(&r.prediction.depth, view)?.as_ptr())
    })
}

/// Depth confidence of view `view`: H*W floats, row-major. NULL (with a message) if `result`
/// is NULL, `view` is out of range, or the model predicts no confidence (`da3metric-large`,
/// `da3mono-large`).
///
/// Ownership: owned by the result, valid until `da3_result_free(result)`; never free it.
/// Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_confidence(result: *const da3_result, view: usize) -> *const f32 {
    value_call("da3_result_confidence", || {
        // SAFETY: per the caller.
        let r = unsafe { ref_arg(result, "result") }?;
        if r.prediction.confidence.is_empty() {
            return Err(FfiError::new(DA3_ERR_NOT_AVAILABLE, "not available: this model predicts no confidence"));
        }
        Ok(r.map_of(&r.prediction.confidence, view)?.as_ptr())
    })
}

/// Depth of all views at once: N*H*W floats, view-major then row-major (the layout of an
/// (N, H, W) array). NULL if `result` is NULL.
///
/// Ownership: owned by the result, valid until `da3_result_free(result)`.
/// Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_depth_all(result: *const da3_result) -> *const f32 {
    value_call("da3_result_depth_all", || {
        // SAFETY: per the caller.
        Ok(unsafe { ref_arg(result, "result") }?.prediction.depth.as_ptr())
    })
}

/// Confidence of all views at once: N*H*W floats, same layout as `da3_result_depth_all`.
/// NULL if `result` is NULL or the model predicts no confidence.
///
/// Ownership: owned by the result, valid until `da3_result_free(result)`.
/// Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_confidence_all(result: *const da3_result) -> *const f32 {
    value_call("da3_result_confidence_all", || {
        // SAFETY: per the caller.
        let r = unsafe { ref_arg(result, "result") }?;
        if r.prediction.confidence.is_empty() {
            return Err(FfiError::new(DA3_ERR_NOT_AVAILABLE, "not available: this model predicts no confidence"));
        }
        Ok(r.prediction.confidence.as_ptr())
    })
}

/// Whether the result holds cameras (extrinsics and intrinsics); false for models without a
/// camera head, and if `result` is NULL. Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_has_cameras(result: *const da3_result) -> bool {
    value_call("da3_result_has_cameras", || {
        // SAFETY: per the caller.
        let p = &unsafe { ref_arg(result, "result") }?.prediction;
        Ok(p.extrinsics.is_some() && p.intrinsics.is_some())
    })
}

/// Shared body of the two camera accessors.
///
/// # Safety
/// `result` is NULL or a live result; `out` is NULL or valid for writing `N` floats.
unsafe fn copy_camera<const N: usize>(
    result: *const da3_result,
    view: usize,
    out: *mut f32,
    pick: fn(&Prediction) -> Option<&Vec<f32>>,
    what: &str,
) -> FfiResult<()> {
    // SAFETY: per the caller.
    let r = unsafe { ref_arg(result, "result") }?;
    if out.is_null() {
        return Err(FfiError::null("out"));
    }
    r.check_view(view)?;
    let all = pick(&r.prediction).ok_or_else(|| {
        FfiError::new(
            DA3_ERR_NOT_AVAILABLE,
            format!("not available: this model does not predict cameras, so the result has no {what}"),
        )
    })?;
    // SAFETY: `out` is non-NULL and writable for N floats per the caller; the source slice is
    // in bounds (lengths checked by `Prediction::check_invariants` in `da3_result::new`).
    unsafe { ptr::copy_nonoverlapping(all[view * N..(view + 1) * N].as_ptr(), out, N) };
    Ok(())
}

/// Copies the world-to-camera extrinsics of view `view` into `out`: 12 floats, a 3x4
/// row-major matrix [R | t] in the OpenCV convention (x right, y down, z forward).
///
/// Errors: `DA3_ERR_NULL_POINTER` (result or out), `DA3_ERR_INVALID_ARGUMENT` (view out of
/// range), `DA3_ERR_NOT_AVAILABLE` (no cameras, see `da3_result_has_cameras`). `out` is left
/// untouched on failure. Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result; `out` is NULL or points to 12 writable floats.
#[no_mangle]
pub unsafe extern "C" fn da3_result_extrinsics(result: *const da3_result, view: usize, out: *mut f32) -> da3_status {
    status_call("da3_result_extrinsics", || {
        // SAFETY: per the caller.
        unsafe { copy_camera::<12>(result, view, out, |p| p.extrinsics.as_ref(), "extrinsics") }
    })
}

/// Copies the pinhole intrinsics of view `view` into `out`: 9 floats, a 3x3 row-major matrix
/// [fx 0 cx; 0 fy cy; 0 0 1] in pixels of the processed image (W x H).
///
/// Errors: as `da3_result_extrinsics`. Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result; `out` is NULL or points to 9 writable floats.
#[no_mangle]
pub unsafe extern "C" fn da3_result_intrinsics(result: *const da3_result, view: usize, out: *mut f32) -> da3_status {
    status_call("da3_result_intrinsics", || {
        // SAFETY: per the caller.
        unsafe { copy_camera::<9>(result, view, out, |p| p.intrinsics.as_ref(), "intrinsics") }
    })
}

/// Writes the depth of view `view` as an 8-bit RGB PNG at `path`, for people to look at:
/// inverse depth normalised between its 2nd and 98th percentiles, turbo colours (near = red,
/// far = blue), invalid pixels black. Overwrites an existing file.
///
/// Errors: `DA3_ERR_NULL_POINTER`, `DA3_ERR_INVALID_ARGUMENT` (view out of range),
/// `DA3_ERR_IO` (cannot create or write the file), `DA3_ERR_IMAGE` (encoding failed).
/// Thread safety: any thread (distinct paths).
///
/// # Safety
/// `result` is NULL or a live result; `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn da3_result_write_depth_png(
    result: *const da3_result,
    view: usize,
    path: *const c_char,
) -> da3_status {
    status_call("da3_result_write_depth_png", || {
        // SAFETY: per the caller.
        let r = unsafe { ref_arg(result, "result") }?;
        // SAFETY: per the caller.
        let path = path_arg(unsafe { cstr_arg(path, "path") }?, "path")?;
        r.check_view(view)?;
        crate::visualize::write_depth_png(&r.prediction, view, &path)?;
        Ok(())
    })
}

/// Sky map of view `view`: H*W floats, row-major, the sky head's output after its ReLU (>= 0;
/// the official treats < 0.3 as non-sky when filling and aligning, >= 0.5 as its sky mask).
/// Models with a sky head: `da3metric-large`, `da3mono-large`, and `da3nested-giant-large`
/// (its metric branch's map). NULL with `DA3_ERR_NOT_AVAILABLE`'s message for other models,
/// and NULL if `result` is NULL or `view` is out of range.
///
/// Ownership: owned by the result, valid until `da3_result_free(result)`.
/// Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_sky(result: *const da3_result, view: usize) -> *const f32 {
    value_call("da3_result_sky", || {
        // SAFETY: per the caller.
        let r = unsafe { ref_arg(result, "result") }?;
        let sky = r.prediction.sky.as_deref().ok_or_else(|| {
            FfiError::new(DA3_ERR_NOT_AVAILABLE, "not available: this model has no sky head")
        })?;
        Ok(r.map_of(sky, view)?.as_ptr())
    })
}

/// Sky maps of all views at once: N*H*W floats, same layout as `da3_result_depth_all`. NULL
/// if `result` is NULL or the model has no sky head (see `da3_result_sky`).
///
/// Ownership: owned by the result, valid until `da3_result_free(result)`.
/// Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_sky_all(result: *const da3_result) -> *const f32 {
    value_call("da3_result_sky_all", || {
        // SAFETY: per the caller.
        let r = unsafe { ref_arg(result, "result") }?;
        let sky = r.prediction.sky.as_deref().ok_or_else(|| {
            FfiError::new(DA3_ERR_NOT_AVAILABLE, "not available: this model has no sky head")
        })?;
        Ok(sky.as_ptr())
    })
}

/// Whether depth and extrinsic translations are in metres: true for `da3nested-giant-large`
/// once its metric alignment ran (the official `is_metric`); false otherwise, and if `result`
/// is NULL. (`da3metric-large` depth is the official raw output, for a 300-pixel focal
/// length: metres = depth * (fx + fy) / 2 / 300 with the processed-image intrinsics.)
/// Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_is_metric(result: *const da3_result) -> bool {
    value_call("da3_result_is_metric", || {
        // SAFETY: per the caller.
        Ok(unsafe { ref_arg(result, "result") }?.prediction.is_metric)
    })
}

/// Writes the nested model's metric scale factor (the least-squares factor that took the
/// any-view depth and translations to metres, the official `scale_factor`) to `*out`.
/// `DA3_ERR_NOT_AVAILABLE` when the model is not nested or the alignment was skipped (see
/// `da3_result_warning`); `*out` is left alone then.
/// Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn da3_result_scale_factor(result: *const da3_result, out: *mut f32) -> da3_status {
    status_call("da3_result_scale_factor", || {
        // SAFETY: per the caller.
        let r = unsafe { ref_arg(result, "result") }?;
        if out.is_null() {
            return Err(FfiError::null("out"));
        }
        let scale = r.prediction.scale_factor.ok_or_else(|| {
            FfiError::new(DA3_ERR_NOT_AVAILABLE, "not available: no metric scale factor (not a nested model, or its alignment was skipped)")
        })?;
        // SAFETY: non-NULL and writable per the caller.
        unsafe { out.write(scale) };
        Ok(())
    })
}

/// Number of warnings the result carries: conditions that change how it should be read,
/// e.g. `metric_alignment_skipped` when a nested model saw (almost) only sky and returned
/// relative depth instead of metres (the official fails an assertion there). 0 normally and
/// if `result` is NULL. Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_warning_count(result: *const da3_result) -> usize {
    value_call("da3_result_warning_count", || {
        // SAFETY: per the caller.
        Ok(unsafe { ref_arg(result, "result") }?.warnings.len())
    })
}

/// Warning `index` as "code: explanation", e.g. "metric_alignment_skipped: ...". The codes
/// are stable identifiers: `metric_alignment_skipped`, `empty_alignment_mask`. NULL if
/// `result` is NULL or `index` is out of range.
///
/// Ownership: owned by the result, valid until `da3_result_free(result)`.
/// Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_warning(result: *const da3_result, index: usize) -> *const c_char {
    value_call("da3_result_warning", || {
        // SAFETY: per the caller.
        let r = unsafe { ref_arg(result, "result") }?;
        let w = r.warnings.get(index).ok_or_else(|| {
            FfiError::invalid(format!("warning index {index} is out of range (the result has {})", r.warnings.len()))
        })?;
        Ok(w.as_ptr())
    })
}

/// Whether the result holds a confidence map (`da3_result_confidence`): the models with
/// `DA3_CAP_CONFIDENCE`. False if `result` is NULL. Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_has_confidence(result: *const da3_result) -> bool {
    value_call("da3_result_has_confidence", || {
        // SAFETY: per the caller.
        Ok(unsafe { ref_arg(result, "result") }?.prediction.has_confidence())
    })
}

/// Whether the result holds a sky map (`da3_result_sky`): the models with `DA3_CAP_SKY`.
/// False if `result` is NULL. Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_has_sky(result: *const da3_result) -> bool {
    value_call("da3_result_has_sky", || {
        // SAFETY: per the caller.
        Ok(unsafe { ref_arg(result, "result") }?.prediction.sky.is_some())
    })
}

/// Writes the scale of the alignment to the known cameras to `*out`: s of the similarity
/// taking the given camera centres onto the predicted ones (predicted ~ s * given; the scale
/// of the official `_align_to_input_extrinsics_intrinsics`). With
/// `align_to_input_ext_scale` 1 the depth was divided by it; with 0 it was not.
///
/// Errors: `DA3_ERR_NULL_POINTER` (result or out), `DA3_ERR_NOT_AVAILABLE` when the call had
/// no known cameras; `*out` is untouched on failure. Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result; `out` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn da3_result_alignment_scale(result: *const da3_result, out: *mut f32) -> da3_status {
    status_call("da3_result_alignment_scale", || {
        // SAFETY: per the caller.
        let r = unsafe { ref_arg(result, "result") }?;
        if out.is_null() {
            return Err(FfiError::null("out"));
        }
        let scale = r.prediction.alignment_scale.ok_or_else(|| {
            FfiError::new(
                DA3_ERR_NOT_AVAILABLE,
                "not available: no alignment scale, the inference had no known cameras (da3_options.extrinsics)",
            )
        })?;
        // SAFETY: non-NULL and writable per the caller.
        unsafe { out.write(scale) };
        Ok(())
    })
}

/// Number of exported backbone features in the result: `da3_options.export_feat_layer_count`
/// of the call (0 by default, and if `result` is NULL). Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_feature_count(result: *const da3_result) -> usize {
    value_call("da3_result_feature_count", || {
        // SAFETY: per the caller.
        Ok(unsafe { ref_arg(result, "result") }?.prediction.features.len())
    })
}

/// Describes exported feature `index` (0 <= index < `da3_result_feature_count`; features come
/// in the order of `da3_options.export_feat_layers`): `*layer` = its backbone block,
/// `shape[0..4]` = (N, H / 14, W / 14, C): views in input order, the patch grid of the
/// processed image, C the backbone width (384 ViT-S, 768 ViT-B, 1024 ViT-L, 1536 ViT-g).
/// The official `aux["feat_layer_<layer>"]`: patch tokens after the backbone's final
/// LayerNorm, camera token dropped.
///
/// Errors: `DA3_ERR_NULL_POINTER` (result, layer or shape), `DA3_ERR_INVALID_ARGUMENT`
/// (index out of range); the outputs are untouched on failure. Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result; `layer` is NULL or writable; `shape` is NULL or points
/// to 4 writable `size_t`s.
#[no_mangle]
pub unsafe extern "C" fn da3_result_feature_info(
    result: *const da3_result,
    index: usize,
    layer: *mut u32,
    shape: *mut usize,
) -> da3_status {
    status_call("da3_result_feature_info", || {
        // SAFETY: per the caller.
        let r = unsafe { ref_arg(result, "result") }?;
        if layer.is_null() {
            return Err(FfiError::null("layer"));
        }
        if shape.is_null() {
            return Err(FfiError::null("shape"));
        }
        let f = r.feature(index)?;
        // SAFETY: non-NULL and writable per the caller (4 values for `shape`); the layer fits
        // a u32 (checked by `Prediction::check_invariants` in `da3_result::new`).
        unsafe {
            layer.write(f.layer as u32);
            ptr::copy_nonoverlapping(f.shape.as_ptr(), shape, 4);
        }
        Ok(())
    })
}

/// Data of exported feature `index`: N*(H/14)*(W/14)*C floats, row-major in the shape given by
/// `da3_result_feature_info`. NULL (with a message) if `result` is NULL or `index` is out of
/// range.
///
/// Ownership: owned by the result, valid until `da3_result_free(result)`; never free it.
/// Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_feature_data(result: *const da3_result, index: usize) -> *const f32 {
    value_call("da3_result_feature_data", || {
        // SAFETY: per the caller.
        Ok(unsafe { ref_arg(result, "result") }?.feature(index)?.data.as_ptr())
    })
}

/// Kind of warning `index` (a `DA3_WARNING_*` value), for branching without parsing
/// `da3_result_warning`'s text. `DA3_WARNING_NONE` (with a message) if `result` is NULL or
/// `index` is out of range. Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_warning_code(result: *const da3_result, index: usize) -> da3_warning {
    value_call("da3_result_warning_code", || {
        // SAFETY: per the caller.
        let r = unsafe { ref_arg(result, "result") }?;
        let w = r.prediction.warnings.get(index).ok_or_else(|| {
            FfiError::invalid(format!("warning index {index} is out of range (the result has {})", r.warnings.len()))
        })?;
        Ok(warning_to_c(w))
    })
}

/// Destroys a result and its buffers; every pointer obtained from it becomes invalid.
/// NULL is a no-op. Thread safety: no other thread may be using the result.
///
/// # Safety
/// `result` is NULL or a result from `da3_infer`/`da3_infer_files` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn da3_result_free(result: *mut da3_result) {
    let _ = catch("da3_result_free", || {
        if !result.is_null() {
            // SAFETY: created by `Box::into_raw` in `into_result`, freed once per the caller.
            drop(unsafe { Box::from_raw(result) });
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_error() -> String {
        // SAFETY: the library returns a valid NUL-terminated string.
        unsafe { CStr::from_ptr(da3_last_error_message()) }.to_string_lossy().into_owned()
    }

    fn panic_next(name: &'static str) {
        test_hooks::PANIC_IN.with(|p| p.set(Some(name)));
    }

    fn result_of(views: usize, h: usize, w: usize, cameras: bool) -> *mut da3_result {
        let n = views * h * w;
        let prediction = Prediction {
            views,
            height: h,
            width: w,
            depth: (0..n).map(|i| i as f32).collect(),
            confidence: vec![1.0; n],
            extrinsics: cameras.then(|| (0..views * 12).map(|i| i as f32).collect()),
            intrinsics: cameras.then(|| (0..views * 9).map(|i| i as f32).collect()),
            ..Default::default()
        };
        Box::into_raw(Box::new(da3_result::new(prediction).unwrap()))
    }

    #[test]
    fn sky_metric_scale_and_warnings_are_reported() {
        use crate::prediction::Warning;
        unsafe {
            // An any-view result: none of them.
            let r = result_of(1, 2, 2, true);
            assert!(da3_result_sky(r, 0).is_null());
            assert!(last_error().contains("no sky head"), "{}", last_error());
            assert!(!da3_result_is_metric(r));
            let mut scale = -1f32;
            assert_eq!(da3_result_scale_factor(r, &mut scale), DA3_ERR_NOT_AVAILABLE);
            assert_eq!(scale, -1.0);
            assert_eq!(da3_result_warning_count(r), 0);
            assert!(da3_result_warning(r, 0).is_null());
            da3_result_free(r);

            // A nested-like result without confidence, with sky, scale and a warning.
            let prediction = Prediction {
                views: 2,
                height: 1,
                width: 2,
                depth: vec![1.0; 4],
                sky: Some(vec![0.0, 0.1, 0.9, 1.0]),
                is_metric: true,
                scale_factor: Some(2.5),
                warnings: vec![Warning::EmptyAlignmentMask],
                ..Default::default()
            };
            let r = Box::into_raw(Box::new(da3_result::new(prediction).unwrap()));
            assert_eq!(*da3_result_sky(r, 1), 0.9);
            assert!(da3_result_sky(r, 2).is_null());
            assert!(da3_result_confidence(r, 0).is_null());
            assert!(last_error().contains("no confidence"), "{}", last_error());
            assert!(da3_result_is_metric(r));
            assert_eq!(da3_result_scale_factor(r, &mut scale), DA3_OK);
            assert_eq!(scale, 2.5);
            assert_eq!(da3_result_scale_factor(r, ptr::null_mut()), DA3_ERR_NULL_POINTER);
            assert_eq!(da3_result_warning_count(r), 1);
            let w = CStr::from_ptr(da3_result_warning(r, 0)).to_str().unwrap();
            assert!(w.starts_with("empty_alignment_mask: "), "{w}");
            da3_result_free(r);
        }
    }

    #[test]
    fn option_flags_must_be_zero_or_one() {
        let mut o = da3_options::from_core(&InferOptions::default());
        assert_eq!(o.align_to_input_ext_scale, 1);
        o.use_ray_pose = 1;
        assert!(unsafe { options_from_raw(&o) }.unwrap().options.use_ray_pose);
        o.use_ray_pose = 2;
        let err = unsafe { options_from_raw(&o) }.unwrap_err();
        assert_eq!(err.status, DA3_ERR_INVALID_ARGUMENT);
        assert!(err.message.contains("options.use_ray_pose is 2"), "{}", err.message);
    }

    #[test]
    fn version_matches_cargo() {
        let v = unsafe { CStr::from_ptr(da3_version()) }.to_str().unwrap();
        assert_eq!(v, env!("CARGO_PKG_VERSION"));
        assert_eq!(v, format!("{DA3_VERSION_MAJOR}.{DA3_VERSION_MINOR}.{DA3_VERSION_PATCH}"));
    }

    #[test]
    fn status_names_cover_every_code() {
        for code in 0..=10 {
            let name = unsafe { CStr::from_ptr(da3_status_name(code)) }.to_str().unwrap();
            assert!(name.starts_with("DA3_OK") || name.starts_with("DA3_ERR_"), "{code}: {name}");
        }
        assert_eq!(unsafe { CStr::from_ptr(da3_status_name(DA3_ERR_PANIC as c_int)) }, c"DA3_ERR_PANIC");
        assert_eq!(unsafe { CStr::from_ptr(da3_status_name(11)) }, c"DA3_UNKNOWN_STATUS");
        assert_eq!(unsafe { CStr::from_ptr(da3_status_name(-1)) }, c"DA3_UNKNOWN_STATUS");
    }

    #[test]
    fn every_core_error_maps_to_its_status() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let cases = [
            (Error::InvalidArgument("a".into()), DA3_ERR_INVALID_ARGUMENT),
            (Error::ModelNotFound("b".into()), DA3_ERR_MODEL_NOT_FOUND),
            (Error::Checkpoint("c".into()), DA3_ERR_CHECKPOINT),
            (Error::Image { path: "x.png".into(), reason: "bad".into() }, DA3_ERR_IMAGE),
            (Error::Io { path: "y".into(), source: io() }, DA3_ERR_IO),
            (Error::Unsupported("d".into()), DA3_ERR_UNSUPPORTED),
            (Error::Torch("e".into()), DA3_ERR_TORCH),
            (Error::Internal("f".into()), DA3_ERR_PANIC),
        ];
        for (error, status) in cases {
            let text = error.to_string();
            let e = FfiError::from(error);
            assert_eq!(e.status, status);
            assert_eq!(e.message, text);
        }
    }

    #[test]
    fn panics_become_da3_err_panic_with_a_message() {
        let mut model: *mut da3_model = ptr::null_mut();
        panic_next("da3_create");
        let st = unsafe { da3_create(c"whatever".as_ptr(), false, DA3_PRECISION_AUTO, &mut model) };
        assert_eq!(st, DA3_ERR_PANIC);
        assert!(model.is_null());
        let msg = last_error();
        assert!(msg.contains("da3_create panicked") && msg.contains("test-induced panic"), "{msg}");

        // Value-returning exports fall back to NULL / 0 / false.
        let r = result_of(1, 2, 2, true);
        panic_next("da3_result_depth");
        assert!(unsafe { da3_result_depth(r, 0) }.is_null());
        assert!(last_error().contains("da3_result_depth panicked"));
        panic_next("da3_result_view_count");
        assert_eq!(unsafe { da3_result_view_count(r) }, 0);
        panic_next("da3_result_has_cameras");
        assert!(!unsafe { da3_result_has_cameras(r) });
        // The handle is still usable afterwards.
        assert_eq!(unsafe { da3_result_view_count(r) }, 1);
        panic_next("da3_result_free");
        unsafe { da3_result_free(r) }; // panics before freeing: leaks, never unwinds into C
        assert!(last_error().contains("da3_result_free panicked"));
        let r = result_of(1, 1, 1, false);
        unsafe { da3_result_free(r) };

        panic_next("da3_options_default");
        let mut o = da3_options::from_core(&InferOptions::default());
        assert_eq!(unsafe { da3_options_default(&mut o, size_of::<da3_options>()) }, DA3_ERR_PANIC);
    }

    #[test]
    fn last_error_is_per_thread_and_sticky() {
        std::thread::spawn(|| {
            assert_eq!(last_error(), "");
            assert_eq!(unsafe { da3_result_view_count(ptr::null()) }, 0);
            assert!(last_error().contains("result is NULL"));
            // A success does not clear it.
            let r = result_of(1, 1, 1, false);
            assert_eq!(unsafe { da3_result_view_count(r) }, 1);
            assert!(last_error().contains("result is NULL"));
            unsafe { da3_result_free(r) };
        })
        .join()
        .unwrap();
        std::thread::spawn(|| assert_eq!(last_error(), "")).join().unwrap();
    }

    #[test]
    fn create_checks_pointers_and_precision() {
        let mut model: *mut da3_model = 1 as *mut da3_model; // must be reset to NULL
        let st = unsafe { da3_create(ptr::null(), false, DA3_PRECISION_AUTO, &mut model) };
        assert_eq!(st, DA3_ERR_NULL_POINTER);
        assert!(model.is_null());
        assert!(last_error().contains("model is NULL"), "{}", last_error());

        let st = unsafe { da3_create(c"/x".as_ptr(), false, DA3_PRECISION_AUTO, ptr::null_mut()) };
        assert_eq!(st, DA3_ERR_NULL_POINTER);
        assert!(last_error().contains("out is NULL"));

        let st = unsafe { da3_create(c"/x".as_ptr(), false, 7, &mut model) };
        assert_eq!(st, DA3_ERR_INVALID_ARGUMENT);
        let msg = last_error();
        assert!(msg.contains("precision") && msg.contains('7'), "{msg}");

        let st = unsafe { da3_create(c"\xff\xfe".as_ptr(), false, DA3_PRECISION_AUTO, &mut model) };
        assert_eq!(st, DA3_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains("UTF-8"));
    }

    #[test]
    fn infer_checks_out_and_model_first() {
        let img = [0u8; 12];
        let view = da3_image { data: img.as_ptr(), width: 2, height: 2, stride: 6, format: DA3_PIXEL_RGB8 };
        let mut out: *mut da3_result = ptr::null_mut();
        let st = unsafe { da3_infer(ptr::null(), &view, 1, ptr::null(), &mut out) };
        assert_eq!(st, DA3_ERR_NULL_POINTER);
        assert!(last_error().contains("model is NULL"));
        // Even with garbage views, a NULL model is what is reported (views are not read).
        let st = unsafe { da3_infer(ptr::null(), 8 as *const da3_image, 1, ptr::null(), &mut out) };
        assert_eq!(st, DA3_ERR_NULL_POINTER);
        let st = unsafe { da3_infer(ptr::null(), &view, 1, ptr::null(), ptr::null_mut()) };
        assert_eq!(st, DA3_ERR_NULL_POINTER);
        assert!(last_error().contains("out is NULL"));
        let paths = [c"a.png".as_ptr()];
        let st = unsafe { da3_infer_files(ptr::null(), paths.as_ptr(), 1, ptr::null(), &mut out) };
        assert_eq!(st, DA3_ERR_NULL_POINTER);
        assert!(last_error().contains("model is NULL"));
    }

    #[test]
    fn view_and_path_arrays_are_checked() {
        let e = unsafe { slice_arg::<da3_image>(ptr::null(), 0, "views", "n_views") }.unwrap_err();
        assert_eq!(e.status, DA3_ERR_INVALID_ARGUMENT);
        assert!(e.message.contains("n_views is 0"), "{}", e.message);
        let e = unsafe { slice_arg::<da3_image>(ptr::null(), 2, "views", "n_views") }.unwrap_err();
        assert_eq!(e.status, DA3_ERR_NULL_POINTER);
        assert!(e.message.contains("views is NULL") && e.message.contains("n_views is 2"), "{}", e.message);
        let e =
            unsafe { slice_arg::<da3_image>(8 as *const da3_image, usize::MAX / 2, "views", "n_views") }.unwrap_err();
        assert_eq!(e.status, DA3_ERR_INVALID_ARGUMENT);
    }

    #[test]
    fn images_are_validated_field_by_field() {
        let buf = [7u8; 4 * 3 * 4];
        let good = da3_image { data: buf.as_ptr(), width: 4, height: 3, stride: 12, format: DA3_PIXEL_RGB8 };
        let view = unsafe { image_arg(&good, 0) }.unwrap();
        assert_eq!((view.width, view.height, view.stride, view.data.len()), (4, 3, 12, 36));
        // Padded rows: only stride*(h-1) + w*bpp bytes are borrowed.
        let padded = da3_image { stride: 14, format: DA3_PIXEL_RGB8, ..good };
        assert_eq!(unsafe { image_arg(&padded, 0) }.unwrap().data.len(), 14 * 2 + 12);
        let bgra = da3_image { stride: 16, format: DA3_PIXEL_BGRA8, ..good };
        assert_eq!(unsafe { image_arg(&bgra, 0) }.unwrap().format, PixelFormat::Bgra8);

        let check = |img: da3_image, status: da3_status, words: &[&str]| {
            let e = unsafe { image_arg(&img, 3) }.unwrap_err();
            assert_eq!(e.status, status, "{}", e.message);
            for w in words {
                assert!(e.message.contains(w), "'{}' lacks '{w}'", e.message);
            }
        };
        check(da3_image { data: ptr::null(), ..good }, DA3_ERR_NULL_POINTER, &["views[3].data is NULL"]);
        check(da3_image { width: 0, ..good }, DA3_ERR_INVALID_ARGUMENT, &["views[3]", "0x3", "non-zero"]);
        check(da3_image { height: 0, ..good }, DA3_ERR_INVALID_ARGUMENT, &["views[3]", "4x0"]);
        check(da3_image { stride: 11, ..good }, DA3_ERR_INVALID_ARGUMENT, &["views[3].stride", "11", "12"]);
        check(da3_image { stride: 0, ..good }, DA3_ERR_INVALID_ARGUMENT, &["views[3].stride", "0"]);
        check(da3_image { format: 4, ..good }, DA3_ERR_INVALID_ARGUMENT, &["views[3].format", "unknown value 4"]);
        check(da3_image { stride: usize::MAX / 2, ..good }, DA3_ERR_INVALID_ARGUMENT, &["views[3]", "too large"]);
    }

    #[test]
    fn options_default_validate_and_enum_checks() {
        let mut o = da3_options { struct_size: 0, process_res: 0, align_to_input_ext_scale: 0, ..da3_options::from_core(&InferOptions::default()) };
        assert_eq!(unsafe { da3_options_default(&mut o, size_of::<da3_options>()) }, DA3_OK);
        assert_eq!(o.struct_size as usize, size_of::<da3_options>());
        assert_eq!(o.process_res, 504);
        assert_eq!(o.resize_method, DA3_RESIZE_UPPER_BOUND_RESIZE);
        assert_eq!(o.ref_view_strategy, DA3_REF_VIEW_SADDLE_BALANCED);
        assert_eq!(o.align_to_input_ext_scale, 1);
        assert!(o.extrinsics.is_null() && o.intrinsics.is_null() && o.export_feat_layers.is_null());
        assert_eq!(unsafe { options_arg(&o) }.unwrap().options, InferOptions::default());
        assert_eq!(unsafe { options_arg(ptr::null()) }.unwrap().options, InferOptions::default());
        assert_eq!(unsafe { da3_options_validate(ptr::null()) }, DA3_OK);

        let mut all = o;
        all.resize_method = DA3_RESIZE_LOWER_BOUND_CROP;
        all.ref_view_strategy = DA3_REF_VIEW_SADDLE_SIM_RANGE;
        all.process_res = 280;
        let core = unsafe { options_arg(&all) }.unwrap().options;
        assert_eq!(core.resize_method, ResizeMethod::LowerBoundCrop);
        assert_eq!(core.ref_view_strategy, RefViewStrategy::SaddleSimRange);
        assert_eq!(core.process_res, 280);

        let expect = |opts: da3_options, status: da3_status, words: &[&str]| {
            assert_eq!(unsafe { da3_options_validate(&opts) }, status);
            let msg = last_error();
            for w in words {
                assert!(msg.contains(w), "'{msg}' lacks '{w}'");
            }
        };
        expect(da3_options { resize_method: 99, ..o }, DA3_ERR_INVALID_ARGUMENT, &["options.resize_method", "99"]);
        expect(
            da3_options { ref_view_strategy: 99, ..o },
            DA3_ERR_INVALID_ARGUMENT,
            &["options.ref_view_strategy", "99"],
        );
        expect(da3_options { process_res: 0, ..o }, DA3_ERR_INVALID_ARGUMENT, &["options.process_res", "got 0"]);
        expect(da3_options { process_res: 5000, ..o }, DA3_ERR_INVALID_ARGUMENT, &["process_res", "5000"]);
        expect(
            da3_options { struct_size: 0, ..o },
            DA3_ERR_INVALID_ARGUMENT,
            &["struct_size is 0", "da3_options_default"],
        );
        expect(da3_options { struct_size: 6, ..o }, DA3_ERR_INVALID_ARGUMENT, &["struct_size is 6"]);
        // Between published versions: would end inside a field.
        expect(da3_options { struct_size: 28, ..o }, DA3_ERR_INVALID_ARGUMENT, &["struct_size is 28", "16, 24"]);
        expect(da3_options { struct_size: 40, ..o }, DA3_ERR_INVALID_ARGUMENT, &["struct_size is 40"]);
        expect(da3_options { struct_size: 64, ..o }, DA3_ERR_UNSUPPORTED, &["struct_size is 64", "newer da3.h"]);

        assert_eq!(unsafe { da3_options_default(ptr::null_mut(), 16) }, DA3_ERR_NULL_POINTER);
        assert_eq!(unsafe { da3_options_default(&mut o, 0) }, DA3_ERR_INVALID_ARGUMENT);
        assert_eq!(unsafe { da3_options_default(&mut o, 4096) }, DA3_ERR_UNSUPPORTED);

        for v in 0..4 {
            assert!(precision_from_c(v, "p").is_ok());
            assert!(resize_method_from_c(v, "r").is_ok());
            assert!(ref_view_from_c(v, "s").is_ok());
            assert!(pixel_format_from_c(v, "f").is_ok());
            assert_eq!(precision_to_c(precision_from_c(v, "p").unwrap()), v);
            assert_eq!(resize_method_to_c(resize_method_from_c(v, "r").unwrap()), v);
            assert_eq!(ref_view_to_c(ref_view_from_c(v, "s").unwrap()), v);
        }
        for v in [4, 99, u32::MAX] {
            let e = precision_from_c(v, "precision").unwrap_err();
            assert_eq!(e.status, DA3_ERR_INVALID_ARGUMENT);
            assert!(e.message.contains(&format!("precision: unknown value {v}")), "{}", e.message);
            assert!(pixel_format_from_c(v, "f").is_err());
        }
    }

    #[test]
    fn older_options_struct_gets_defaults_for_missing_fields() {
        // Programs built against the 16- and 24-byte versions: only `struct_size` bytes are
        // written and read; what lies beyond (here 0xff poison, which as pointers and counts
        // would be garbage) never matters.
        for size in [OPTIONS_V1_SIZE, OPTIONS_V2_SIZE] {
            let mut bytes = [0xffu8; size_of::<da3_options>()];
            let opts = bytes.as_mut_ptr().cast::<da3_options>();
            assert_eq!(unsafe { da3_options_default(opts, size) }, DA3_OK);
            assert!(bytes[size..].iter().all(|&b| b == 0xff), "wrote past {size} bytes");
            let mut old = [0u32; 6];
            old[..size / 4].copy_from_slice(&bytemuck_u32(&bytes[..size]));
            assert_eq!(old[0] as usize, size);
            assert_eq!(old[1], 504);
            // `bytes` may be misaligned for da3_options; options_arg reads bytes only.
            let call = unsafe { options_arg(opts) }.unwrap();
            assert_eq!(call.options, InferOptions::default());
            assert!(call.cameras.is_none());
            if size == OPTIONS_V2_SIZE {
                // The 24-byte version already carries the flags.
                bytes[16..20].copy_from_slice(&1u32.to_ne_bytes()); // use_ray_pose
                assert!(unsafe { options_arg(opts) }.unwrap().options.use_ray_pose);
            }
        }
    }

    fn bytemuck_u32(bytes: &[u8]) -> Vec<u32> {
        bytes.chunks_exact(4).map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect()
    }

    #[test]
    fn option_pointers_are_checked() {
        let base = da3_options::from_core(&InferOptions::default());
        let e = [0f32; 32];
        let k = [0f32; 18];
        let layers = [3u32, 7];
        let expect = |o: da3_options, status: da3_status, words: &[&str]| {
            let err = unsafe { options_arg(&o) }.unwrap_err();
            assert_eq!(err.status, status, "{}", err.message);
            for w in words {
                assert!(err.message.contains(w), "'{}' lacks '{w}'", err.message);
            }
        };
        expect(da3_options { extrinsics: e.as_ptr(), extrinsics_rows: 4, ..base }, DA3_ERR_NULL_POINTER, &["options.intrinsics is NULL"]);
        expect(da3_options { intrinsics: k.as_ptr(), ..base }, DA3_ERR_NULL_POINTER, &["options.extrinsics is NULL", "both"]);
        let both = da3_options { extrinsics: e.as_ptr(), intrinsics: k.as_ptr(), ..base };
        expect(both, DA3_ERR_INVALID_ARGUMENT, &["extrinsics_rows is 0"]);
        expect(da3_options { extrinsics_rows: 5, ..both }, DA3_ERR_INVALID_ARGUMENT, &["extrinsics_rows is 5"]);
        expect(da3_options { extrinsics_rows: 2, ..base }, DA3_ERR_INVALID_ARGUMENT, &["extrinsics_rows is 2"]);
        let misaligned = unsafe { e.as_ptr().cast::<u8>().add(1).cast::<f32>() };
        expect(da3_options { extrinsics: misaligned, extrinsics_rows: 3, ..both }, DA3_ERR_INVALID_ARGUMENT, &["aligned"]);
        expect(da3_options { export_feat_layer_count: 2, ..base }, DA3_ERR_NULL_POINTER, &["export_feat_layers is NULL", "2"]);
        let twice = [3u32, 3];
        expect(
            da3_options { export_feat_layers: twice.as_ptr(), export_feat_layer_count: 2, ..base },
            DA3_ERR_INVALID_ARGUMENT,
            &["options.export_feat_layers lists block 3 twice"],
        );

        let call = unsafe { options_arg(&da3_options { extrinsics_rows: 3, export_feat_layers: layers.as_ptr(), export_feat_layer_count: 2, ..both }) }.unwrap();
        assert_eq!(call.options.export_feat_layers, vec![3, 7]);
        let cameras = unsafe { call.cameras.unwrap().slices(2) }.unwrap();
        assert_eq!((cameras.extrinsics.len(), cameras.intrinsics.len()), (24, 18));
        let call = unsafe { options_arg(&da3_options { extrinsics_rows: 4, ..both }) }.unwrap();
        assert_eq!(unsafe { call.cameras.unwrap().slices(2) }.unwrap().extrinsics.len(), 32);
        // A count with a NULL list is an error, but an unused list with count 0 is fine.
        assert!(unsafe { options_arg(&da3_options { export_feat_layers: layers.as_ptr(), ..base }) }.unwrap().options.export_feat_layers.is_empty());
    }

    #[test]
    fn features_alignment_scale_and_warning_codes_are_reported() {
        use crate::prediction::FeatureMap;
        let prediction = Prediction {
            views: 2,
            height: 1,
            width: 2,
            depth: vec![1.0; 4],
            confidence: vec![1.0; 4],
            features: vec![
                FeatureMap { layer: 7, shape: [2, 1, 1, 3], data: (0..6).map(|v| v as f32).collect() },
                FeatureMap { layer: 3, shape: [2, 1, 2, 1], data: vec![9.0; 4] },
            ],
            alignment_scale: Some(0.5),
            warnings: vec![Warning::MetricAlignmentSkipped { non_sky_pixels: 2 }, Warning::EmptyAlignmentMask],
            ..Default::default()
        };
        let r = Box::into_raw(Box::new(da3_result::new(prediction).unwrap()));
        unsafe {
            assert_eq!(da3_result_feature_count(r), 2);
            let (mut layer, mut shape) = (0u32, [0usize; 4]);
            assert_eq!(da3_result_feature_info(r, 0, &mut layer, shape.as_mut_ptr()), DA3_OK);
            assert_eq!((layer, shape), (7, [2, 1, 1, 3]));
            assert_eq!(*da3_result_feature_data(r, 0).add(5), 5.0);
            assert_eq!(da3_result_feature_info(r, 1, &mut layer, shape.as_mut_ptr()), DA3_OK);
            assert_eq!((layer, shape), (3, [2, 1, 2, 1]));
            assert_eq!(da3_result_feature_info(r, 2, &mut layer, shape.as_mut_ptr()), DA3_ERR_INVALID_ARGUMENT);
            assert!(last_error().contains("feature index 2 is out of range"), "{}", last_error());
            assert_eq!(da3_result_feature_info(r, 0, ptr::null_mut(), shape.as_mut_ptr()), DA3_ERR_NULL_POINTER);
            assert_eq!(da3_result_feature_info(r, 0, &mut layer, ptr::null_mut()), DA3_ERR_NULL_POINTER);
            assert!(da3_result_feature_data(r, 2).is_null());
            let mut scale = 0f32;
            assert_eq!(da3_result_alignment_scale(r, &mut scale), DA3_OK);
            assert_eq!(scale, 0.5);
            assert_eq!(da3_result_warning_code(r, 0), DA3_WARNING_METRIC_ALIGNMENT_SKIPPED);
            assert_eq!(da3_result_warning_code(r, 1), DA3_WARNING_EMPTY_ALIGNMENT_MASK);
            assert_eq!(da3_result_warning_code(r, 2), DA3_WARNING_NONE);
            assert!(da3_result_has_confidence(r) && !da3_result_has_sky(r));
            da3_result_free(r);

            let r = result_of(1, 1, 1, true);
            assert_eq!(da3_result_feature_count(r), 0);
            assert_eq!(da3_result_alignment_scale(r, &mut scale), DA3_ERR_NOT_AVAILABLE);
            assert!(last_error().contains("no known cameras"), "{}", last_error());
            da3_result_free(r);
        }
        let bad = Prediction {
            views: 1,
            height: 1,
            width: 1,
            depth: vec![0.0],
            features: vec![FeatureMap { layer: 0, shape: [1, 1, 1, 2], data: vec![0.0; 3] }],
            ..Default::default()
        };
        assert_eq!(da3_result::new(bad).err().unwrap().status, DA3_ERR_PANIC);
    }

    #[test]
    fn capability_flags_follow_the_model() {
        let any_view = Capabilities {
            preset: "da3-small",
            camera_encoder: true,
            ray_head: true,
            backbone_depth: 12,
            pose: true,
            confidence: true,
            sky: false,
            metric_depth: false,
            canonical_metric_depth: false,
        };
        assert_eq!(capability_flags(&any_view), DA3_CAP_POSE | DA3_CAP_CONFIDENCE | DA3_CAP_KNOWN_CAMERAS | DA3_CAP_RAY_POSE);
        let metric = Capabilities {
            camera_encoder: false,
            ray_head: false,
            pose: false,
            confidence: false,
            sky: true,
            canonical_metric_depth: true,
            ..any_view.clone()
        };
        assert_eq!(capability_flags(&metric), DA3_CAP_SKY | DA3_CAP_CANONICAL_METRIC_DEPTH);
        unsafe {
            let mut flags = 0;
            assert_eq!(da3_model_capabilities(ptr::null(), &mut flags), DA3_ERR_NULL_POINTER);
            assert_eq!(da3_model_backbone_depth(ptr::null()), 0);
        }
    }

    #[test]
    fn result_accessors_check_views_and_pointers() {
        let r = result_of(2, 3, 4, true);
        unsafe {
            assert_eq!(da3_result_view_count(r), 2);
            assert_eq!((da3_result_width(r), da3_result_height(r)), (4, 3));
            let d1 = da3_result_depth(r, 1);
            assert_eq!(*d1, 12.0);
            assert_eq!(da3_result_depth_all(r), da3_result_depth(r, 0));
            assert!(!da3_result_confidence(r, 1).is_null());
            assert!(da3_result_depth(r, 2).is_null());
            assert!(last_error().contains("view index 2 is out of range"), "{}", last_error());
            assert!(da3_result_confidence(r, usize::MAX).is_null());
            assert!(da3_result_has_cameras(r));
            let mut e = [0f32; 12];
            assert_eq!(da3_result_extrinsics(r, 1, e.as_mut_ptr()), DA3_OK);
            assert_eq!(e[0], 12.0);
            let mut k = [0f32; 9];
            assert_eq!(da3_result_intrinsics(r, 1, k.as_mut_ptr()), DA3_OK);
            assert_eq!(k[8], 17.0);
            assert_eq!(da3_result_extrinsics(r, 2, e.as_mut_ptr()), DA3_ERR_INVALID_ARGUMENT);
            assert_eq!(da3_result_intrinsics(r, 0, ptr::null_mut()), DA3_ERR_NULL_POINTER);
            assert_eq!(da3_result_extrinsics(ptr::null(), 0, e.as_mut_ptr()), DA3_ERR_NULL_POINTER);
            assert_eq!(da3_result_write_depth_png(r, 5, c"/tmp/x.png".as_ptr()), DA3_ERR_INVALID_ARGUMENT);
            assert_eq!(da3_result_write_depth_png(r, 0, ptr::null()), DA3_ERR_NULL_POINTER);
            assert_eq!(da3_result_write_depth_png(r, 0, c"/nonexistent-da3-dir/x.png".as_ptr()), DA3_ERR_IO);
            assert!(last_error().contains("/nonexistent-da3-dir/x.png"));
            da3_result_free(r);

            let r = result_of(1, 2, 2, false);
            assert!(!da3_result_has_cameras(r));
            assert_eq!(da3_result_extrinsics(r, 0, e.as_mut_ptr()), DA3_ERR_NOT_AVAILABLE);
            assert!(last_error().contains("extrinsics"));
            assert_eq!(da3_result_intrinsics(r, 0, k.as_mut_ptr()), DA3_ERR_NOT_AVAILABLE);
            da3_result_free(r);

            assert!(da3_result_depth_all(ptr::null()).is_null());
            assert_eq!(da3_result_width(ptr::null()), 0);
            assert!(da3_model_preset(ptr::null()).is_null());
            assert!(da3_model_device(ptr::null()).is_null());
            assert_eq!(da3_model_precision(ptr::null()), DA3_PRECISION_AUTO);
            da3_free(ptr::null_mut());
            da3_result_free(ptr::null_mut());
        }
    }

    #[test]
    fn inconsistent_predictions_are_internal_errors() {
        let bad = Prediction {
            views: 2,
            height: 2,
            width: 2,
            depth: vec![0.0; 7],
            confidence: vec![0.0; 8],
            ..Default::default()
        };
        let e = da3_result::new(bad).err().unwrap();
        assert_eq!(e.status, DA3_ERR_PANIC);
        assert!(e.message.contains("depth holds 7"), "{}", e.message);
        assert!(da3_result::new(Prediction::default()).is_err());
    }
}
