//! `da3_options`, its published versions, and reading one from C: every field checked, the
//! known cameras kept as borrowed pointers until the call knows its view count.
use std::mem::{align_of, offset_of, size_of};
use std::ptr;

use crate::camera_input::CameraInput;
use crate::error::Error;
use crate::options::{CheckedOptions, InferOptions};

use super::args::flag_from_c;
use super::cancel::da3_cancel_token;
use super::boundary::{da3_status, status_call, FfiError, FfiResult, DA3_ERR_NULL_POINTER, DA3_ERR_UNSUPPORTED};
use super::enums::{
    da3_ref_view_strategy, da3_resize_method, ref_view_from_c, ref_view_to_c, resize_method_from_c, resize_method_to_c,
};

/// Largest `process_res` accepted.
pub const DA3_MAX_PROCESS_RES: u32 = 4096;
/// Most pixels a view may have at any step of preprocessing (4200 x 4200). A request that
/// would exceed it (e.g. a very elongated image at a lower-bound resize: a 1x60000 image at
/// `process_res` 140 asks for 140 x 8,400,000 pixels) fails with `DA3_ERR_INVALID_ARGUMENT`,
/// checked from the sizes before anything is allocated.
pub const DA3_MAX_PROCESSED_PIXELS: u64 = 17640000;
/// Longest side a view may have at any step of preprocessing; beyond it, as for
/// `DA3_MAX_PROCESSED_PIXELS`.
pub const DA3_MAX_PROCESSED_SIDE: u32 = 16384;

/// Largest magnitude accepted in known cameras for a translation component, a focal length,
/// the principal point or the skew; beyond it float32 geometry is meaningless (squared
/// distances overflow), so such cameras are refused with `DA3_ERR_INVALID_ARGUMENT`.
pub const DA3_MAX_CAMERA_MAGNITUDE: f32 = 1.0e8;
/// Smallest focal length accepted in known intrinsics, in pixels.
pub const DA3_MIN_FOCAL_LENGTH: f32 = 1.0e-3;

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
/// `align_to_input_ext_scale`), 32 bytes plus three pointers (up to `export_feat_layers`: 56
/// on 64-bit platforms, 44 on 32-bit ones), and this one (32 bytes plus four pointers, up to
/// `cancel`: 64 on 64-bit platforms, 48 on 32-bit ones). Only these sizes are accepted. Fields beyond the caller's
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
    /// Processing resolution in pixels, 14..=`DA3_MAX_PROCESS_RES` (official `process_res`,
    /// default 504); the processed views are bounded by `DA3_MAX_PROCESSED_PIXELS` and
    /// `DA3_MAX_PROCESSED_SIDE`.
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
    /// determinant +1) with finite values and translation components of magnitude at most
    /// `DA3_MAX_CAMERA_MAGNITUDE`. With known cameras the network is conditioned on
    /// them (any-view and nested models: `DA3_CAP_KNOWN_CAMERAS`) and the prediction is aligned
    /// back to them (Umeyama similarity of the camera centres; RANSAC from 10 views), see
    /// `align_to_input_ext_scale`. The alignment needs at least 3 camera centres that are not
    /// collinear. NULL (default): no known cameras. `extrinsics` and `intrinsics` are given
    /// together or not at all.
    pub extrinsics: *const f32,
    /// Known intrinsics, one 3x3 row-major pinhole matrix per view (fx s cx / 0 fy cy / 0 0 1,
    /// fx and fy between `DA3_MIN_FOCAL_LENGTH` and `DA3_MAX_CAMERA_MAGNITUDE`, cx, cy and the
    /// skew at most `DA3_MAX_CAMERA_MAGNITUDE` in magnitude) in pixels of the caller's original
    /// image (the library carries them
    /// through its resize and crop): `n * 9` floats, 4-byte aligned. NULL (default): none.
    pub intrinsics: *const f32,
    /// Backbone blocks whose features the result should carry (official `export_feat_layers`):
    /// `export_feat_layer_count` distinct block indices, each below `da3_model_backbone_depth`,
    /// in the order the result lists them (`da3_result_feature_*`). NULL with a count of 0
    /// (default): none.
    pub export_feat_layers: *const u32,
    /// A cancel token (`da3_cancel_token_new`) that stops the call when cancelled from another
    /// thread, with `DA3_ERR_CANCELLED` (see `da3_cancel_token` for where the call checks it);
    /// NULL (default): the call cannot be cancelled. Borrowed: it must stay alive until the
    /// call returns. Added in the 64-byte version (48 on 32-bit platforms).
    pub cancel: *const da3_cancel_token,
}

/// Size of the first published `da3_options`; the smallest accepted `struct_size`.
pub(super) const OPTIONS_V1_SIZE: usize = offset_of!(da3_options, use_ray_pose);
/// Size of the second version (ray pose and the alignment flag).
pub(super) const OPTIONS_V2_SIZE: usize = offset_of!(da3_options, extrinsics_rows);
/// Size of the third version (known cameras and exported features).
pub(super) const OPTIONS_V3_SIZE: usize = offset_of!(da3_options, cancel);
/// Every `struct_size` ever published, oldest first; the last is this library's.
const OPTIONS_SIZES: [usize; 4] = [OPTIONS_V1_SIZE, OPTIONS_V2_SIZE, OPTIONS_V3_SIZE, size_of::<da3_options>()];
// The versioning rule: published sizes never change, and no version has padding (inside, so
// that a struct_size never ends in the middle of a field; at the end, so that sizeof is the
// end of the last field and a later field can never hide in an older version's padding).
const _: () = {
    assert!(OPTIONS_V1_SIZE == 16 && OPTIONS_V2_SIZE == 24);
    assert!(offset_of!(da3_options, extrinsics) == 32);
    assert!(OPTIONS_V3_SIZE == 32 + 3 * size_of::<*const f32>());
    assert!(offset_of!(da3_options, export_feat_layers) + size_of::<*const u32>() == OPTIONS_V3_SIZE);
    assert!(offset_of!(da3_options, cancel) + size_of::<*const da3_cancel_token>() == size_of::<da3_options>());
    assert!(align_of::<f32>() == 4 && align_of::<u32>() == 4);
};

impl da3_options {
    pub(super) fn from_core(options: &InferOptions) -> Self {
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
            cancel: ptr::null(),
        }
    }
}

/// Known cameras as the options carry them, before the view count of the call is known.
#[derive(Clone, Copy, Debug)]
pub(super) struct RawCameras {
    extrinsics: *const f32,
    intrinsics: *const f32,
    rows: usize,
}

/// What a call's `da3_options` asks for: the core's options plus the borrowed cameras.
#[derive(Debug)]
pub(super) struct CallOptions {
    pub(super) options: CheckedOptions,
    pub(super) cameras: Option<RawCameras>,
}

impl RawCameras {
    /// The cameras of `views` views as slices of the caller's memory.
    ///
    /// # Safety
    /// The pointers satisfy `da3_options`' contract for `views` views.
    pub(super) unsafe fn slices<'a>(&self, views: usize) -> FfiResult<CameraInput<'a>> {
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

/// Reads options honouring `struct_size`; NULL means defaults. Validates every field.
///
/// # Safety
/// `ptr` is NULL or points to at least `(*ptr).struct_size` readable bytes.
pub(super) unsafe fn options_arg(ptr: *const da3_options) -> FfiResult<CallOptions> {
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
/// `raw.export_feat_layers` is NULL or points to `raw.export_feat_layer_count` readable `u32`s;
/// `raw.cancel` is NULL or a live cancel token.
pub(super) unsafe fn options_from_raw(raw: &da3_options) -> FfiResult<CallOptions> {
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
    // Checked once here; the engine takes only the checked form.
    let options = options.check().map_err(|e| match e {
        // The core's wording ("process_res must be ...") already names the field.
        Error::InvalidArgument(m) => FfiError::invalid(format!("options.{m}")),
        other => other.into(),
    })?;
    // SAFETY: NULL or a live token per the caller; the call shares its flag from here on.
    let cancel = unsafe { raw.cancel.as_ref() }.map(|t| t.token.clone());
    Ok(CallOptions { options: options.with_cancel_token(cancel), cameras })
}

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
