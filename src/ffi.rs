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
use std::mem::size_of;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::ptr;

use crate::engine::Engine;
use crate::error::Error;
use crate::image_input::{ImageView, PixelFormat};
use crate::options::{InferOptions, Precision, RefViewStrategy, ResizeMethod};
use crate::prediction::Prediction;

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
    /// or `da3_options` comes from a newer `da3.h` than the loaded library.
    DA3_ERR_UNSUPPORTED = 7,
    /// libtorch reported an error (out of memory, kernel failure, ...).
    DA3_ERR_TORCH = 8,
    /// The requested output was not produced by this model (e.g. cameras from a model
    /// without a camera head); see `da3_result_has_cameras`.
    DA3_ERR_NOT_AVAILABLE = 9,
    /// A bug inside libda3 (a Rust panic or a broken internal invariant) was caught at the
    /// API boundary. The handles involved stay valid but their state is unspecified; please
    /// report the message.
    DA3_ERR_PANIC = 10,
}

use da3_status::*;

/// Maps every core error kind to its status code (exhaustive: a new `Error` variant will not
/// compile until it is mapped here).
fn status_of(error: &Error) -> da3_status {
    match error {
        Error::InvalidArgument(_) => DA3_ERR_INVALID_ARGUMENT,
        Error::ModelNotFound(_) => DA3_ERR_MODEL_NOT_FOUND,
        Error::Checkpoint(_) => DA3_ERR_CHECKPOINT,
        Error::Image { .. } => DA3_ERR_IMAGE,
        Error::Io { .. } => DA3_ERR_IO,
        Error::Unsupported(_) => DA3_ERR_UNSUPPORTED,
        Error::Torch(_) => DA3_ERR_TORCH,
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
/// ABI evolution: fields are only ever appended, and each version's struct ends without
/// trailing padding (today every field is 32 bits wide), so `struct_size` identifies it. `struct_size` tells the library which version of the
/// struct the caller was compiled with: fields beyond it take their defaults, so a program
/// built against an older `da3.h` keeps working with a newer library; a `struct_size` larger
/// than the loaded library knows (a program built against a newer `da3.h`) is rejected with
/// `DA3_ERR_UNSUPPORTED` instead of being silently half-applied.
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
    /// `use_ray_pose`; any-view models only, slower: the ray branch and a RANSAC fit per view
    /// run); 0: the camera decoder (default). Added in 0.1 after `ref_view_strategy`.
    pub use_ray_pose: u32,
    /// Reserved for known-camera input (official `align_to_input_ext_scale`, default 1);
    /// known cameras are not yet accepted through the C API. Must be 0 or 1.
    pub align_to_input_ext_scale: u32,
}

/// Size of the first published `da3_options` (version 0.1); the smallest accepted `struct_size`.
const OPTIONS_V1_SIZE: usize = 16;
const _: () = assert!(size_of::<da3_options>() >= OPTIONS_V1_SIZE && size_of::<da3_options>() % 4 == 0);

impl da3_options {
    fn from_core(options: &InferOptions) -> Self {
        da3_options {
            struct_size: size_of::<da3_options>() as u32,
            process_res: options.process_res,
            resize_method: resize_method_to_c(options.resize_method),
            ref_view_strategy: ref_view_to_c(options.ref_view_strategy),
            use_ray_pose: options.use_ray_pose as u32,
            align_to_input_ext_scale: options.align_to_input_ext_scale as u32,
        }
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

/// A loaded model on one device (opaque). Create with `da3_create`, destroy with `da3_free`.
/// Thread-safe: any number of threads may call `da3_infer`/`da3_infer_files` and the query
/// functions on one handle at the same time; inferences are serialised on the device.
pub struct da3_model {
    engine: Engine,
    preset: CString,
    device: CString,
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
        let p = &prediction;
        let internal =
            |what: String| FfiError::new(DA3_ERR_PANIC, format!("internal error: {what}; please report this bug"));
        let (width, height) = match (u32::try_from(p.width), u32::try_from(p.height)) {
            (Ok(w), Ok(h)) if w > 0 && h > 0 && p.views > 0 => (w, h),
            _ => return Err(internal(format!("prediction has shape {}x{}x{}", p.views, p.height, p.width))),
        };
        let maps = p.views.checked_mul(p.pixels_per_view());
        let check = |name: &str, len: usize, expected: Option<usize>| {
            if Some(len) == expected {
                Ok(())
            } else {
                Err(internal(format!("prediction {name} holds {len} values, expected {expected:?}")))
            }
        };
        check("depth", p.depth.len(), maps)?;
        // Models without a confidence output (da3metric-large, da3mono-large) leave it empty.
        if !p.confidence.is_empty() {
            check("confidence", p.confidence.len(), maps)?;
        }
        if let Some(e) = &p.extrinsics {
            check("extrinsics", e.len(), p.views.checked_mul(12))?;
        }
        if let Some(k) = &p.intrinsics {
            check("intrinsics", k.len(), p.views.checked_mul(9))?;
        }
        if let Some(sky) = &p.sky {
            check("sky", sky.len(), maps)?;
        }
        let warnings = p
            .warnings
            .iter()
            .map(|w| CString::new(format!("{}: {w}", w.code())).map_err(|_| internal("warning text holds a NUL byte".to_owned())))
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

fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
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
            panic_message(payload.as_ref())
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
unsafe fn options_arg(ptr: *const da3_options) -> FfiResult<InferOptions> {
    let mut raw = da3_options::from_core(&InferOptions::default());
    if !ptr.is_null() {
        // SAFETY: reading the first field, which every version has.
        let size = unsafe { ptr::addr_of!((*ptr).struct_size).read_unaligned() } as usize;
        check_struct_size(size)?;
        // SAFETY: the caller's struct holds `size` bytes and `raw` holds at least as many.
        unsafe { ptr::copy_nonoverlapping(ptr.cast::<u8>(), ptr::addr_of_mut!(raw).cast::<u8>(), size) };
    }
    options_from_raw(&raw)
}

fn check_struct_size(size: usize) -> FfiResult<()> {
    let ours = size_of::<da3_options>();
    if size == 0 {
        return Err(FfiError::invalid(
            "options.struct_size is 0: initialise options with da3_options_default(&opts, sizeof opts)",
        ));
    }
    if size < OPTIONS_V1_SIZE || size % 4 != 0 {
        return Err(FfiError::invalid(format!(
            "options.struct_size is {size}, not the size of any da3_options version (this library's is {ours})"
        )));
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
    Ok(())
}

fn options_from_raw(raw: &da3_options) -> FfiResult<InferOptions> {
    let options = InferOptions {
        process_res: raw.process_res,
        resize_method: resize_method_from_c(raw.resize_method, "options.resize_method")?,
        ref_view_strategy: ref_view_from_c(raw.ref_view_strategy, "options.ref_view_strategy")?,
        use_ray_pose: flag_from_c(raw.use_ray_pose, "options.use_ray_pose")?,
        align_to_input_ext_scale: flag_from_c(raw.align_to_input_ext_scale, "options.align_to_input_ext_scale")?,
        ..InferOptions::default()
    };
    options.validate().map_err(|e| match e {
        // The core's wording ("process_res must be ...") already names the field.
        Error::InvalidArgument(m) => FfiError::invalid(format!("options.{m}")),
        other => other.into(),
    })?;
    Ok(options)
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
/// saddle-balanced reference view) and sets `options->struct_size = struct_size`.
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

/// Checks `*options` the way `da3_infer` will (struct size, every enum value, process_res
/// range) without needing a model, e.g. to validate user settings at start-up.
/// NULL means defaults and is valid.
///
/// Errors: `DA3_ERR_INVALID_ARGUMENT` naming the field and its value;
/// `DA3_ERR_UNSUPPORTED` for a struct from a newer header. Thread safety: any thread.
///
/// # Safety
/// `options` is NULL or points to a `da3_options` initialised by `da3_options_default`.
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
/// downloaded. `use_accelerate` turns on the accelerated runner: the reference view chosen on
/// the device; in bf16/fp16 the depth head's convolutions in that precision, channels-last, and
/// the backbone features handed to it in that precision (the official keeps them in fp32); on
/// a GPU also cuDNN's fused attention and, for any-view models without
/// ray pose, the forward captured once per input shape in a CUDA graph and replayed (the first
/// call of a shape runs eagerly and captures; up to 4 shapes are kept, each holding its
/// activation memory). With it off the official numerics are reproduced; with it on (bf16),
/// depth stays within a median relative difference of 1 %, p99 3 % and max 10 %, camera
/// rotations within 2 degrees, translations within 1 % of the median depth of the fp32
/// reference (measured: 0.3 %, 1.1 %, 2.2 %, 0.8 degrees, 0.2 %; README, "Accuracy of the
/// accelerated runner"). In fp32 it changes no number. `precision` is a `DA3_PRECISION_*` value: `DA3_PRECISION_AUTO` is bf16 on a GPU
/// that supports it (compute capability 8.0 and later), fp16 on older GPUs, fp32 on the CPU; fp16/bf16 run the transformer's matrix products in that precision with
/// normalisations and the heads in fp32, like the official `torch.autocast`. The device is a
/// CUDA GPU if one is visible, else the CPU; the environment variable `DA3_DEVICE` (`cpu`,
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
        let to_c = |s: String, what: &str| {
            CString::new(s).map_err(|_| FfiError::new(DA3_ERR_PANIC, format!("internal error: {what} contains NUL")))
        };
        let preset = to_c(engine.preset_name().to_owned(), "preset name")?;
        let device = to_c(engine.device_name(), "device name")?;
        *out = Box::into_raw(Box::new(da3_model { engine, preset, device }));
        Ok(())
    })
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

/// Device the model runs on, e.g. "cpu" or "cuda:0"; NULL if `model` is NULL.
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

// ---------------------------------------------------------------------------------------------
// Inference
// ---------------------------------------------------------------------------------------------

/// Runs one scene made of `n_views` images (one per view, any sizes) and returns a new result
/// in `*out`.
///
/// `options` may be NULL for the defaults. Arguments are checked in order: `out`, `model`,
/// `n_views` (0 is an error), `views` (NULL is an error), then each view (NULL data,
/// zero width or height, unknown format, stride smaller than width * bytes per pixel), then
/// the options; the first problem is reported, naming the argument (e.g. "views[1].stride").
///
/// Errors: `DA3_ERR_NULL_POINTER`, `DA3_ERR_INVALID_ARGUMENT`, `DA3_ERR_UNSUPPORTED`,
/// `DA3_ERR_TORCH`.
///
/// Ownership: pixel buffers are only read during the call (see `da3_image` for how many
/// bytes); on success the caller owns `*out` and must release it with `da3_result_free`; on
/// failure `*out` is NULL.
/// Thread safety: concurrent calls on one model are allowed and are serialised on the device.
///
/// # Safety
/// `model` is NULL or a live handle; `views` is NULL or points to `n_views` `da3_image`s
/// whose `data` satisfy `da3_image`'s contract; `options` is NULL or initialised by
/// `da3_options_default`; `out` is NULL or valid for writing a pointer.
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
        let options = unsafe { options_arg(options) }?;
        into_result(model.engine.infer(&images, &options)?, out)
    })
}

/// Like `da3_infer`, for image files (PNG or JPEG) read from `paths[0..n_paths]`.
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
/// NULL or a NUL-terminated string; `options` as for `da3_infer`; `out` is NULL or valid for
/// writing a pointer.
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
        let options = unsafe { options_arg(options) }?;
        into_result(model.engine.infer_files(&paths, &options)?, out)
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
/// not a multiple of 14), `DA3_ERR_UNSUPPORTED`, `DA3_ERR_TORCH`.
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
        into_result(model.engine.infer_preprocessed(images, n_views, height, width, &options)?, out)
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
    if model.engine.device_name() == "cpu" {
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
    // in bounds (lengths checked in `da3_result::new`).
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
        assert!(options_from_raw(&o).unwrap().use_ray_pose);
        o.use_ray_pose = 2;
        let err = options_from_raw(&o).unwrap_err();
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
        let mut o = da3_options {
            struct_size: 0,
            process_res: 0,
            resize_method: 0,
            ref_view_strategy: 0,
            use_ray_pose: 0,
            align_to_input_ext_scale: 0,
        };
        assert_eq!(unsafe { da3_options_default(&mut o, size_of::<da3_options>()) }, DA3_OK);
        assert_eq!(o.struct_size as usize, size_of::<da3_options>());
        assert_eq!(o.process_res, 504);
        assert_eq!(o.resize_method, DA3_RESIZE_UPPER_BOUND_RESIZE);
        assert_eq!(o.ref_view_strategy, DA3_REF_VIEW_SADDLE_BALANCED);
        assert_eq!(unsafe { options_arg(&o) }.unwrap(), InferOptions::default());
        assert_eq!(unsafe { options_arg(ptr::null()) }.unwrap(), InferOptions::default());
        assert_eq!(unsafe { da3_options_validate(ptr::null()) }, DA3_OK);

        let mut all = o;
        all.resize_method = DA3_RESIZE_LOWER_BOUND_CROP;
        all.ref_view_strategy = DA3_REF_VIEW_SADDLE_SIM_RANGE;
        all.process_res = 280;
        let core = unsafe { options_arg(&all) }.unwrap();
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
        // A hypothetical later library reads a v1-sized struct: simulate by checking that only
        // `struct_size` bytes are read (the bytes after a 16-byte struct are never touched).
        #[repr(C)]
        struct Padded {
            opts: da3_options,
            poison: [u32; 4],
        }
        let mut p = Padded { opts: da3_options::from_core(&InferOptions::default()), poison: [0xdead_beef; 4] };
        assert_eq!(unsafe { da3_options_default(&mut p.opts, OPTIONS_V1_SIZE) }, DA3_OK);
        assert_eq!(p.poison, [0xdead_beef; 4]);
        assert_eq!(unsafe { options_arg(&p.opts) }.unwrap(), InferOptions::default());
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
