//! Geometry of a result a host can use directly: world-space points, the input size of each
//! view, maps and intrinsics at that size, the pixel mapping, and the processed colours.
//! Conventions (`crate::geometry`): depth is z-depth; pixel (u, v) of a map sits at the
//! integer coordinates (u, v) of the intrinsics; extrinsics are world-to-camera [R | t].
use std::ptr;

use crate::error::Error;
use crate::geometry::{Interpolation, MapKind};

use super::args::Handle;
use super::boundary::{da3_status, status_call, value_call, FfiError, FfiResult, DA3_ERR_NOT_AVAILABLE};
use super::result::da3_result;

/// Which per-pixel map of a result: one of the `DA3_MAP_*` constants.
pub type da3_map = u32;
/// Depth (`da3_result_depth`).
pub const DA3_MAP_DEPTH: da3_map = 0;
/// Depth confidence (`da3_result_confidence`).
pub const DA3_MAP_CONFIDENCE: da3_map = 1;
/// Sky (`da3_result_sky`).
pub const DA3_MAP_SKY: da3_map = 2;

/// How a map is resampled to the input size: one of the `DA3_INTERPOLATION_*` constants.
pub type da3_interpolation = u32;
/// The nearest processed pixel: only values the network gave (masks; no depth mixed across
/// an edge).
pub const DA3_INTERPOLATION_NEAREST: da3_interpolation = 0;
/// Bilinear between the four nearest processed pixels (smooth; mixes depths across edges).
pub const DA3_INTERPOLATION_BILINEAR: da3_interpolation = 1;

/// Which mapping from processed to input pixels: one of the `DA3_PIXEL_MAPPING_*` constants.
pub type da3_pixel_mapping = u32;
/// Where the pixel's content came from: OpenCV's resize geometry (pixel centres at
/// half-integers of the continuous grid: through each resize x -> (x + 0.5) * from / to - 0.5,
/// through each crop x -> x + left). The mapping `da3_result_map_at_input` samples with.
pub const DA3_PIXEL_MAPPING_SAMPLE: da3_pixel_mapping = 0;
/// Consistent with the intrinsics (`da3_result_intrinsics_at_input`): through each resize
/// x -> x * from / to, through each crop x -> x + left, so a point projecting to (x, y) with
/// `da3_result_intrinsics` projects to the result with the input intrinsics (as the official
/// COLMAP export scales its 2D points). It differs from SAMPLE by 0.5 * (from / to - 1) input
/// pixels per resize: the official's intrinsics and its resize disagree by that half pixel.
pub const DA3_PIXEL_MAPPING_CAMERA: da3_pixel_mapping = 1;

/// A core error as C sees it from a result: what the result does not hold is
/// `DA3_ERR_NOT_AVAILABLE` (as for `da3_result_extrinsics`), not `DA3_ERR_UNSUPPORTED`.
pub(super) fn from_core(error: Error) -> FfiError {
    match error {
        Error::Unsupported(m) => FfiError::new(DA3_ERR_NOT_AVAILABLE, format!("not available: {m}")),
        other => other.into(),
    }
}

fn map_kind(map: da3_map) -> FfiResult<MapKind> {
    match map {
        DA3_MAP_DEPTH => Ok(MapKind::Depth),
        DA3_MAP_CONFIDENCE => Ok(MapKind::Confidence),
        DA3_MAP_SKY => Ok(MapKind::Sky),
        other => Err(FfiError::invalid(format!("map {other} is not a DA3_MAP_* value"))),
    }
}

fn interpolation(value: da3_interpolation) -> FfiResult<Interpolation> {
    match value {
        DA3_INTERPOLATION_NEAREST => Ok(Interpolation::Nearest),
        DA3_INTERPOLATION_BILINEAR => Ok(Interpolation::Bilinear),
        other => Err(FfiError::invalid(format!("interpolation {other} is not a DA3_INTERPOLATION_* value"))),
    }
}

/// Writes the world-space point of every pixel of view `view` to `out_xyz`: W*H*3 floats
/// (W, H = `da3_result_width`, `_height`), row-major, pixel (u, v) at `(v * W + u) * 3`, as x,
/// y, z: `X = R^T (depth(u, v) * K^-1 [u v 1]^T - t)` with the view's predicted (or aligned
/// known) camera. Pixels whose depth is not finite give NaN. Units are the depth's (see
/// `da3_result_is_metric`). The caller owns the buffer (the result holds no copy).
///
/// Errors: `DA3_ERR_NULL_POINTER` (result or out_xyz), `DA3_ERR_INVALID_ARGUMENT` (view out of
/// range, singular intrinsics), `DA3_ERR_NOT_AVAILABLE` (no cameras: `da3_result_has_cameras`).
/// `out_xyz` is untouched on failure. Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result; `out_xyz` is NULL or writable for W*H*3 floats.
#[no_mangle]
pub unsafe extern "C" fn da3_result_points(result: *const da3_result, view: usize, out_xyz: *mut f32) -> da3_status {
    status_call("da3_result_points", || {
        // SAFETY: per the caller.
        let r = unsafe { da3_result::borrow(result, "result") }?;
        if out_xyz.is_null() {
            return Err(FfiError::null("out_xyz"));
        }
        r.check_view(view)?;
        let points = r.prediction.points(view).map_err(from_core)?;
        // SAFETY: non-NULL and writable for W*H*3 floats per the caller; `points` has that length.
        unsafe { ptr::copy_nonoverlapping(points.as_ptr(), out_xyz, points.len()) };
        Ok(())
    })
}

/// Writes the size of the image the caller gave as view `view` (before the resize and crops
/// of the preprocessing) to `*width` and `*height`; the processed size for
/// `da3_infer_preprocessed` (no resize there).
///
/// Errors: `DA3_ERR_NULL_POINTER`, `DA3_ERR_INVALID_ARGUMENT` (view out of range); outputs
/// untouched on failure. Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result; `width` and `height` are NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn da3_result_input_size(
    result: *const da3_result,
    view: usize,
    width: *mut u32,
    height: *mut u32,
) -> da3_status {
    status_call("da3_result_input_size", || {
        // SAFETY: per the caller.
        let r = unsafe { da3_result::borrow(result, "result") }?;
        if width.is_null() || height.is_null() {
            return Err(FfiError::null(if width.is_null() { "width" } else { "height" }));
        }
        r.check_view(view)?;
        let (w, h) = r.prediction.input_size(view).map_err(from_core)?;
        // SAFETY: non-NULL and writable per the caller.
        unsafe {
            width.write(w);
            height.write(h);
        }
        Ok(())
    })
}

/// Resamples map `map` (`DA3_MAP_*`) of view `view` to the view's input size and writes it to
/// `out` (width*height floats, row-major), where `width` x `height` must be
/// `da3_result_input_size`. Each input pixel's centre is taken through the preprocessing's
/// resizes (OpenCV's half-pixel centres: x -> (x + 0.5) * to / from - 0.5) and crops (x ->
/// x - left) into the processed map, and sampled with `interpolation`
/// (`DA3_INTERPOLATION_*`). Input pixels a crop removed (more than half a pixel outside the
/// processed image) get NaN; within that half pixel, the edge value.
///
/// Errors: `DA3_ERR_NULL_POINTER`, `DA3_ERR_INVALID_ARGUMENT` (view out of range, unknown map or
/// interpolation, a size other than the input size), `DA3_ERR_NOT_AVAILABLE` (the result holds
/// no such map). `out` is untouched on failure. Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result; `out` is NULL or writable for width*height floats.
#[no_mangle]
pub unsafe extern "C" fn da3_result_map_at_input(
    result: *const da3_result,
    view: usize,
    map: da3_map,
    interpolation_: da3_interpolation,
    out: *mut f32,
    width: u32,
    height: u32,
) -> da3_status {
    status_call("da3_result_map_at_input", || {
        // SAFETY: per the caller.
        let r = unsafe { da3_result::borrow(result, "result") }?;
        if out.is_null() {
            return Err(FfiError::null("out"));
        }
        r.check_view(view)?;
        let (kind, method) = (map_kind(map)?, interpolation(interpolation_)?);
        let (w, h) = r.prediction.input_size(view).map_err(from_core)?;
        if (w, h) != (width, height) {
            return Err(FfiError::invalid(format!("the output is {width}x{height}, but view {view}'s input size is {w}x{h}")));
        }
        let resampled = r.prediction.map_at_input(kind, view, method).map_err(from_core)?;
        // SAFETY: non-NULL and writable for width*height floats per the caller; checked sizes.
        unsafe { ptr::copy_nonoverlapping(resampled.as_ptr(), out, resampled.len()) };
        Ok(())
    })
}

/// Copies the intrinsics of view `view` in the pixels of its input image into `out` (9 floats,
/// row-major): the processed intrinsics (`da3_result_intrinsics`) with the preprocessing's
/// crops and resizes undone, the inverse of how the official carries a camera into the
/// processed image (rows of K scaled by each resize ratio, principal point shifted by each crop).
///
/// Errors: as `da3_result_intrinsics`. Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result; `out` is NULL or writable for 9 floats.
#[no_mangle]
pub unsafe extern "C" fn da3_result_intrinsics_at_input(result: *const da3_result, view: usize, out: *mut f32) -> da3_status {
    status_call("da3_result_intrinsics_at_input", || {
        // SAFETY: per the caller.
        let r = unsafe { da3_result::borrow(result, "result") }?;
        if out.is_null() {
            return Err(FfiError::null("out"));
        }
        r.check_view(view)?;
        let k = r.prediction.intrinsics_at_input(view).map_err(from_core)?;
        // SAFETY: non-NULL and writable for 9 floats per the caller.
        unsafe { ptr::copy_nonoverlapping(k.as_ptr(), out, 9) };
        Ok(())
    })
}

/// Maps processed pixel (x, y) of view `view` to its input image's pixel coordinates with
/// `mapping` (`DA3_PIXEL_MAPPING_SAMPLE` or `_CAMERA`, see them) and writes them to
/// `out_xy[0]`, `out_xy[1]`. Any real (x, y) is accepted (points outside the image map
/// linearly). For `da3_infer_preprocessed` results both are the identity.
///
/// Errors: `DA3_ERR_NULL_POINTER`, `DA3_ERR_INVALID_ARGUMENT` (view out of range, unknown
/// mapping); `out_xy` untouched on failure. Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result; `out_xy` is NULL or writable for 2 doubles.
#[no_mangle]
pub unsafe extern "C" fn da3_result_pixel_to_input(
    result: *const da3_result,
    view: usize,
    x: f64,
    y: f64,
    mapping: da3_pixel_mapping,
    out_xy: *mut f64,
) -> da3_status {
    status_call("da3_result_pixel_to_input", || {
        // SAFETY: per the caller.
        let r = unsafe { da3_result::borrow(result, "result") }?;
        if out_xy.is_null() {
            return Err(FfiError::null("out_xy"));
        }
        r.check_view(view)?;
        let changes = r.prediction.view_grid_changes(view);
        let (ix, iy) = match mapping {
            DA3_PIXEL_MAPPING_SAMPLE => crate::geometry::processed_to_input(x, y, changes),
            DA3_PIXEL_MAPPING_CAMERA => crate::geometry::processed_to_input_camera(x, y, changes),
            other => return Err(FfiError::invalid(format!("mapping {other} is not a DA3_PIXEL_MAPPING_* value"))),
        };
        // SAFETY: non-NULL and writable for 2 doubles per the caller.
        unsafe {
            out_xy.write(ix);
            out_xy.add(1).write(iy);
        }
        Ok(())
    })
}

/// The processed image of view `view` as RGB8: W*H*3 bytes, row-major (the network input with
/// the ImageNet normalisation undone: exactly the resized and cropped pixels for images the
/// library preprocessed). These are the colours of the exported points. Results of
/// `da3_infer_preprocessed` keep none (recovering them from the caller's floats cost about 3 ms
/// a view on every call, measured on the H200 machine): NULL with `DA3_ERR_NOT_AVAILABLE`, and
/// their exports are white. NULL (with a message) if `result` is NULL, `view` is out of range
/// or the result keeps no colours.
///
/// Ownership: owned by the result, valid until `da3_result_free(result)`; never free it.
/// Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_colors(result: *const da3_result, view: usize) -> *const u8 {
    value_call("da3_result_colors", || {
        // SAFETY: per the caller.
        let r = unsafe { da3_result::borrow(result, "result") }?;
        r.check_view(view)?;
        let colors = r
            .prediction
            .view_colors(view)
            .ok_or_else(|| FfiError::new(DA3_ERR_NOT_AVAILABLE, "not available: this result keeps no colours"))?;
        Ok(colors.as_ptr())
    })
}
