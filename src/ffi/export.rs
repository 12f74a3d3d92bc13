//! Writing a result to files: point clouds (PLY, GLB), a COLMAP text model, and depth maps
//! (16-bit PNG, PFM, NumPy). The writers live in the core (`crate::export`); the points are
//! `crate::geometry`'s (world frame, z-depth, the processed colours the result keeps).
use std::ffi::c_char;

use crate::geometry::PointFilter;

use super::args::{cstr_arg, path_arg, utf8_arg, Handle};
use super::boundary::{da3_status, status_call, FfiError, FfiResult};
use super::geometry::from_core;
use super::result::da3_result;

/// Bit set of export choices: an OR of the `DA3_EXPORT_*` constants (0: none).
pub type da3_export_flags = u32;
/// Leave out sky pixels (sky >= 0.5, the official sky mask) when the result has a sky map.
pub const DA3_EXPORT_DROP_SKY: da3_export_flags = 1;
/// COLMAP: cameras and 2D points in each view's input pixels instead of processed pixels.
pub const DA3_EXPORT_INPUT_PIXELS: da3_export_flags = 2;
/// GLB: no camera frusta.
pub const DA3_EXPORT_NO_CAMERAS: da3_export_flags = 4;
const KNOWN_FLAGS: da3_export_flags = DA3_EXPORT_DROP_SKY | DA3_EXPORT_INPUT_PIXELS | DA3_EXPORT_NO_CAMERAS;

fn point_filter(min_confidence: f32, confidence_percentile: f32, flags: da3_export_flags) -> FfiResult<PointFilter> {
    if flags & !KNOWN_FLAGS != 0 {
        return Err(FfiError::invalid(format!("flags 0x{flags:x} hold bits that are not DA3_EXPORT_* values")));
    }
    if !min_confidence.is_finite() || !(0.0..=100.0).contains(&confidence_percentile) {
        return Err(FfiError::invalid(format!(
            "min_confidence must be finite ({min_confidence}) and confidence_percentile in 0..100 ({confidence_percentile})"
        )));
    }
    Ok(PointFilter { min_confidence, confidence_percentile, drop_sky: flags & DA3_EXPORT_DROP_SKY != 0 })
}

/// Writes `count` to `*out` when `out` is not NULL.
///
/// # Safety
/// `out` is NULL or writable.
unsafe fn report(out: *mut usize, count: usize) {
    if !out.is_null() {
        // SAFETY: per the caller.
        unsafe { out.write(count) };
    }
}

/// The point cloud of every view (one file) as binary little-endian PLY at `path`: one vertex
/// per kept pixel with `x y z` (float, world frame, the unit of the depth), `red green blue`
/// (uchar, the processed image's colour: `da3_result_colors`) and `confidence` (float; NaN
/// for models without confidence). Kept: pixels of finite positive depth whose confidence is
/// at least `min_confidence` and at least the `confidence_percentile`-th percentile (0..100,
/// numpy's linear percentile) of all views' non-sky confidence, and not sky with
/// `DA3_EXPORT_DROP_SKY`. 0 and 0 keep every valid pixel. Writes the number of points to
/// `*points_written` when it is not NULL.
///
/// Errors: `DA3_ERR_NULL_POINTER` (result, path), `DA3_ERR_INVALID_ARGUMENT` (unknown flags,
/// percentile outside 0..100), `DA3_ERR_NOT_AVAILABLE` (no cameras, or a confidence filter on a
/// result without confidence), `DA3_ERR_IO` (the file). Thread safety: any thread (distinct
/// paths).
///
/// # Safety
/// `result` is NULL or a live result; `path` is NULL or a NUL-terminated string;
/// `points_written` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn da3_result_write_ply(
    result: *const da3_result,
    path: *const c_char,
    min_confidence: f32,
    confidence_percentile: f32,
    flags: da3_export_flags,
    points_written: *mut usize,
) -> da3_status {
    status_call("da3_result_write_ply", || {
        // SAFETY: per the caller.
        let r = unsafe { da3_result::borrow(result, "result") }?;
        // SAFETY: per the caller.
        let path = path_arg(unsafe { cstr_arg(path, "path") }?, "path")?;
        let filter = point_filter(min_confidence, confidence_percentile, flags)?;
        let n = crate::export::write_ply(&r.prediction, &filter, &path).map_err(from_core)?;
        // SAFETY: per the caller.
        unsafe { report(points_written, n) };
        Ok(())
    })
}

/// The point cloud of every view and each camera's frustum as a glTF 2.0 binary (`.glb`) at
/// `path`, laid out as the official `export_to_glb`: the first camera's frame turned to glTF
/// axes (x right, y up, z backward) and centred on the points' median; the points one POINTS
/// primitive with RGBA8 colours, each frustum a LINES primitive sized 3 % of the scene's
/// 5th-95th percentile diagonal (`DA3_EXPORT_NO_CAMERAS`: none). No random down-sampling.
/// The points kept and the arguments: as `da3_result_write_ply`.
///
/// Errors: as `da3_result_write_ply`. Thread safety: any thread (distinct paths).
///
/// # Safety
/// As `da3_result_write_ply`.
#[no_mangle]
pub unsafe extern "C" fn da3_result_write_glb(
    result: *const da3_result,
    path: *const c_char,
    min_confidence: f32,
    confidence_percentile: f32,
    flags: da3_export_flags,
    points_written: *mut usize,
) -> da3_status {
    status_call("da3_result_write_glb", || {
        // SAFETY: per the caller.
        let r = unsafe { da3_result::borrow(result, "result") }?;
        // SAFETY: per the caller.
        let path = path_arg(unsafe { cstr_arg(path, "path") }?, "path")?;
        let filter = point_filter(min_confidence, confidence_percentile, flags)?;
        let cameras = flags & DA3_EXPORT_NO_CAMERAS == 0;
        let n = crate::export::write_glb(&r.prediction, &filter, cameras, &path).map_err(from_core)?;
        // SAFETY: per the caller.
        unsafe { report(points_written, n) };
        Ok(())
    })
}

/// A COLMAP text model in directory `dir` (created if missing): `cameras.txt` (camera i+1 of
/// view i, PINHOLE fx fy cx cy), `images.txt` (image i+1: the world-to-camera rotation as a
/// unit quaternion QW QX QY QZ with QW >= 0, the translation, camera i+1, its name, and its
/// 2D observations), `points3D.txt` (the kept points, as `da3_result_write_ply`, with colour,
/// error 0 and their one observation). Cameras and 2D points are in processed pixels
/// (W x H), or with `DA3_EXPORT_INPUT_PIXELS` in each view's input pixels
/// (`da3_result_intrinsics_at_input`, the 2D points mapped consistently with them: through each
/// crop x + left, each resize x * from / to, as the official COLMAP export scales them); pixel
/// centres at integer coordinates as the network's intrinsics (COLMAP's own convention has
/// them at + 0.5).
/// `names`: NULL (view_0000.png, ...) or one UTF-8 name per view without white space.
///
/// Errors: as `da3_result_write_ply`, and `DA3_ERR_INVALID_ARGUMENT` for a NULL, non-UTF-8,
/// empty or spaced name. Thread safety: any thread (distinct directories).
///
/// # Safety
/// As `da3_result_write_ply`; `dir` is NULL or a NUL-terminated string; `names` is NULL or
/// points to `da3_result_view_count(result)` pointers, each NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn da3_result_write_colmap(
    result: *const da3_result,
    dir: *const c_char,
    names: *const *const c_char,
    min_confidence: f32,
    confidence_percentile: f32,
    flags: da3_export_flags,
    points_written: *mut usize,
) -> da3_status {
    status_call("da3_result_write_colmap", || {
        // SAFETY: per the caller.
        let r = unsafe { da3_result::borrow(result, "result") }?;
        // SAFETY: per the caller.
        let dir = path_arg(unsafe { cstr_arg(dir, "dir") }?, "dir")?;
        let filter = point_filter(min_confidence, confidence_percentile, flags)?;
        let names: Option<Vec<String>> = if names.is_null() {
            None
        } else {
            let list = (0..r.prediction.views)
                .map(|i| {
                    let what = format!("names[{i}]");
                    // SAFETY: `names` holds view_count pointers per the caller.
                    let s = unsafe { cstr_arg(*names.add(i), &what) }?;
                    Ok(utf8_arg(s, &what)?.to_owned())
                })
                .collect::<FfiResult<Vec<String>>>()?;
            Some(list)
        };
        let input_pixels = flags & DA3_EXPORT_INPUT_PIXELS != 0;
        let n = crate::export::write_colmap(&r.prediction, &filter, input_pixels, names.as_deref(), &dir).map_err(from_core)?;
        // SAFETY: per the caller.
        unsafe { report(points_written, n) };
        Ok(())
    })
}

/// Depth of view `view` as a 16-bit greyscale PNG at `path` (processed size): each pixel
/// round(depth * scale) clamped to 1..65535, and 0 where the depth is not finite or not
/// positive (no depth). `scale` <= 0 picks 65535 / the view's largest depth (full range,
/// relative); for metric depth pass e.g. 1000 (millimetres). Writes the scale used to
/// `*scale_used` when it is not NULL: depth = value / scale.
///
/// Errors: `DA3_ERR_NULL_POINTER` (result, path), `DA3_ERR_INVALID_ARGUMENT` (view out of range),
/// `DA3_ERR_IO` (the file). Thread safety: any thread (distinct paths).
///
/// # Safety
/// `result` is NULL or a live result; `path` is NULL or a NUL-terminated string; `scale_used`
/// is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn da3_result_write_depth_png16(
    result: *const da3_result,
    view: usize,
    path: *const c_char,
    scale: f32,
    scale_used: *mut f32,
) -> da3_status {
    status_call("da3_result_write_depth_png16", || {
        // SAFETY: per the caller.
        let r = unsafe { da3_result::borrow(result, "result") }?;
        // SAFETY: per the caller.
        let path = path_arg(unsafe { cstr_arg(path, "path") }?, "path")?;
        r.check_view(view)?;
        let used = crate::export::write_depth_png16(&r.prediction, view, scale, &path).map_err(from_core)?;
        if !scale_used.is_null() {
            // SAFETY: non-NULL and writable per the caller.
            unsafe { scale_used.write(used) };
        }
        Ok(())
    })
}

/// Depth of view `view` as PFM at `path` (processed size; `Pf`, float32 little-endian, rows
/// bottom to top as the format stores them; values as `da3_result_depth`).
///
/// Errors: as `da3_result_write_depth_png16`. Thread safety: any thread (distinct paths).
///
/// # Safety
/// `result` is NULL or a live result; `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn da3_result_write_depth_pfm(result: *const da3_result, view: usize, path: *const c_char) -> da3_status {
    // SAFETY: per the caller.
    unsafe { write_depth_file("da3_result_write_depth_pfm", result, view, path, crate::export::write_depth_pfm) }
}

/// Depth of view `view` as a NumPy `.npy` file at `path` (float32 `<f4`, shape (H, W), C
/// order; values as `da3_result_depth`).
///
/// Errors: as `da3_result_write_depth_png16`. Thread safety: any thread (distinct paths).
///
/// # Safety
/// `result` is NULL or a live result; `path` is NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn da3_result_write_depth_npy(result: *const da3_result, view: usize, path: *const c_char) -> da3_status {
    // SAFETY: per the caller.
    unsafe { write_depth_file("da3_result_write_depth_npy", result, view, path, crate::export::write_depth_npy) }
}

/// The body of the single-view depth-file writers: the arguments checked, then `write`.
///
/// # Safety
/// As the writers': `result` is NULL or a live result; `path` is NULL or a NUL-terminated string.
unsafe fn write_depth_file(
    name: &'static str,
    result: *const da3_result,
    view: usize,
    path: *const c_char,
    write: fn(&crate::prediction::Prediction, usize, &std::path::Path) -> crate::Result<()>,
) -> da3_status {
    status_call(name, || {
        // SAFETY: per the caller.
        let r = unsafe { da3_result::borrow(result, "result") }?;
        // SAFETY: per the caller.
        let path = path_arg(unsafe { cstr_arg(path, "path") }?, "path")?;
        r.check_view(view)?;
        write(&r.prediction, view, &path).map_err(from_core)?;
        Ok(())
    })
}
