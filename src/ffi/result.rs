//! The result handle: its size, the per-pixel maps (depth, confidence, sky), the depth PNG,
//! the warnings, and freeing it. Cameras and exported features: `result_cameras`,
//! `result_features`.
use std::ffi::{c_char, CString};

use crate::error::Error;
use crate::prediction::Prediction;

use super::args::{cstr_arg, path_arg, Handle};
use super::boundary::{catch, da3_status, status_call, value_call, FfiError, FfiResult, DA3_ERR_NOT_AVAILABLE};
use super::enums::{da3_warning, warning_to_c};

/// The output of one inference (opaque): depth, confidence and cameras for every view, in
/// host memory owned by the handle. Immutable, so it may be read from any number of threads
/// at once. Destroy with `da3_result_free`.
pub struct da3_result {
    pub(super) prediction: Prediction,
    width: u32,
    height: u32,
    /// The prediction's warnings as C strings, owned here for `da3_result_warning`.
    warnings: Vec<CString>,
}

impl Handle for da3_result {}

/// The result's large maps go back to the process's pool of output buffers for the next
/// results (`host_copy::BufferPool`: their pages stay mapped).
impl Drop for da3_result {
    fn drop(&mut self) {
        let p = &mut self.prediction;
        let features = p.features.iter_mut().map(|f| std::mem::take(&mut f.data));
        let maps = [std::mem::take(&mut p.depth), std::mem::take(&mut p.confidence)].into_iter().chain(p.sky.take());
        for buffer in maps.chain(features) {
            crate::host_copy::OUTPUT_BUFFERS.give(buffer);
        }
    }
}

// The thread-safety promises in the header rest on this.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Prediction>();
};

impl da3_result {
    /// Checks the core's invariants once, so the accessors can index without surprises.
    pub(super) fn new(prediction: Prediction) -> FfiResult<Self> {
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

    pub(super) fn check_view(&self, view: usize) -> FfiResult<()> {
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

/// Number of views in the result (N), or 0 if `result` is NULL. Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_view_count(result: *const da3_result) -> usize {
    value_call("da3_result_view_count", || {
        // SAFETY: per the caller.
        Ok(unsafe { da3_result::borrow(result, "result") }?.prediction.views)
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
        Ok(unsafe { da3_result::borrow(result, "result") }?.width)
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
        Ok(unsafe { da3_result::borrow(result, "result") }?.height)
    })
}

/// Depth of view `view`: H*W floats, row-major. NULL (with a message) if `result` is NULL or
/// `view >= da3_result_view_count(result)`. Z-depth along the optical axis (not the distance
/// along the ray), pixel (u, v) at the integer coordinates (u, v) of `da3_result_intrinsics`;
/// units: see `da3_result_is_metric` (relative for the any-view and mono models, a 300-pixel
/// focal length for da3metric-large, metres for the nested model). World points:
/// `da3_result_points`; at the input size: `da3_result_map_at_input`.
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
        let r = unsafe { da3_result::borrow(result, "result") }?;
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
        let r = unsafe { da3_result::borrow(result, "result") }?;
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
        Ok(unsafe { da3_result::borrow(result, "result") }?.prediction.depth.as_ptr())
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
        let r = unsafe { da3_result::borrow(result, "result") }?;
        if r.prediction.confidence.is_empty() {
            return Err(FfiError::new(DA3_ERR_NOT_AVAILABLE, "not available: this model predicts no confidence"));
        }
        Ok(r.prediction.confidence.as_ptr())
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
        Ok(unsafe { da3_result::borrow(result, "result") }?.prediction.has_confidence())
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
        let r = unsafe { da3_result::borrow(result, "result") }?;
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
        let r = unsafe { da3_result::borrow(result, "result") }?;
        let sky = r.prediction.sky.as_deref().ok_or_else(|| {
            FfiError::new(DA3_ERR_NOT_AVAILABLE, "not available: this model has no sky head")
        })?;
        Ok(sky.as_ptr())
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
        Ok(unsafe { da3_result::borrow(result, "result") }?.prediction.sky.is_some())
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
        let r = unsafe { da3_result::borrow(result, "result") }?;
        // SAFETY: per the caller.
        let path = path_arg(unsafe { cstr_arg(path, "path") }?, "path")?;
        r.check_view(view)?;
        crate::visualize::write_depth_png(&r.prediction, view, &path)?;
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
        Ok(unsafe { da3_result::borrow(result, "result") }?.warnings.len())
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
        let r = unsafe { da3_result::borrow(result, "result") }?;
        let w = r.warnings.get(index).ok_or_else(|| {
            FfiError::invalid(format!("warning index {index} is out of range (the result has {})", r.warnings.len()))
        })?;
        Ok(w.as_ptr())
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
        let r = unsafe { da3_result::borrow(result, "result") }?;
        let w = r.prediction.warnings.get(index).ok_or_else(|| {
            FfiError::invalid(format!("warning index {index} is out of range (the result has {})", r.warnings.len()))
        })?;
        Ok(warning_to_c(w))
    })
}

/// Destroys a result and its buffers; every pointer obtained from it becomes invalid.
/// NULL is a no-op. Thread safety: no other thread may be using the result.
///
/// Its maps of 1 MiB or more (depth, confidence, sky, features) are kept for the next results'
/// maps, up to 256 MiB in all for the process: writing a result into fresh memory costs a page
/// fault per 4 KiB (about 21,000 per call at 64 views of 336x504), memory already written does
/// not.
///
/// # Safety
/// `result` is NULL or a result from `da3_infer`/`da3_infer_files` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn da3_result_free(result: *mut da3_result) {
    // SAFETY: from `da3_infer*`, freed once, per the caller.
    let _ = catch("da3_result_free", || unsafe { da3_result::free(result) });
}
