//! What a result says about cameras and scale: predicted extrinsics and intrinsics, whether
//! depth is metric and by which factor, and the alignment to known cameras.
use std::ptr;

use crate::prediction::Prediction;

use super::args::Handle;
use super::boundary::{da3_status, status_call, value_call, FfiError, FfiResult, DA3_ERR_NOT_AVAILABLE};
use super::result::da3_result;

/// Whether the result holds cameras (extrinsics and intrinsics); false for models without a
/// camera head, and if `result` is NULL. Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_has_cameras(result: *const da3_result) -> bool {
    value_call("da3_result_has_cameras", || {
        // SAFETY: per the caller.
        let p = &unsafe { da3_result::borrow(result, "result") }?.prediction;
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
    let r = unsafe { da3_result::borrow(result, "result") }?;
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
/// [fx 0 cx; 0 fy cy; 0 0 1] in pixels of the processed image (W x H), pixel (u, v) of the maps
/// at the integer coordinates (u, v) (as the official unprojects). In the input image's pixels:
/// `da3_result_intrinsics_at_input`.
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
        Ok(unsafe { da3_result::borrow(result, "result") }?.prediction.is_metric)
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
        let r = unsafe { da3_result::borrow(result, "result") }?;
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
        let r = unsafe { da3_result::borrow(result, "result") }?;
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

