//! The maps a `da3_infer_cuda` result keeps in GPU memory (`device_outputs`).
use super::args::Handle;
use super::boundary::{value_call, FfiError, FfiResult, DA3_ERR_NOT_AVAILABLE};
use super::result::da3_result;

impl da3_result {
    /// View `view` of the map at device address `map` (NULL when the result keeps none).
    fn device_map(&self, map: Option<u64>, what: &str, view: usize) -> FfiResult<*const f32> {
        self.check_view(view)?;
        let address = map.ok_or_else(|| {
            FfiError::new(DA3_ERR_NOT_AVAILABLE, format!(
                "this result keeps no {what} in GPU memory: ask for it with DA3_DEVICE_OUTPUT_{} in da3_infer_cuda",
                what.to_uppercase()
            ))
        })?;
        let offset = view * self.prediction.pixels_per_view() * std::mem::size_of::<f32>();
        Ok((address as usize + offset) as *const f32)
    }

    fn device_maps(&self) -> Option<&crate::prediction::DeviceMaps> {
        self.prediction.device_maps.as_deref()
    }
}

/// Depth of view `view` in GPU memory: H*W floats, row-major, the same values as
/// `da3_result_depth(result, view)`, on CUDA device `da3_result_device(result)`. NULL (with a
/// message) if `result` is NULL, `view` is out of range, or the result keeps no depth on the GPU
/// (it was not asked for with `DA3_DEVICE_OUTPUT_DEPTH` in `da3_infer_cuda`). Views follow one
/// another: view `v` starts H*W floats after view `v - 1`.
///
/// Ownership: device memory owned by the result (from libda3's allocator on that GPU), valid
/// until `da3_result_free(result)`; never free it, and do not write it. It is complete when the
/// `da3_infer_cuda` call returns: any stream may read it.
/// Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_depth_device(result: *const da3_result, view: usize) -> *const f32 {
    value_call("da3_result_depth_device", || {
        // SAFETY: per the caller.
        let r = unsafe { da3_result::borrow(result, "result") }?;
        r.device_map(r.device_maps().and_then(|m| m.depth), "depth", view)
    })
}

/// Depth confidence of view `view` in GPU memory, as `da3_result_depth_device` (asked for with
/// `DA3_DEVICE_OUTPUT_CONFIDENCE`; NULL also for models that predict no confidence).
///
/// Ownership: as `da3_result_depth_device`.
/// Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_confidence_device(result: *const da3_result, view: usize) -> *const f32 {
    value_call("da3_result_confidence_device", || {
        // SAFETY: per the caller.
        let r = unsafe { da3_result::borrow(result, "result") }?;
        r.device_map(r.device_maps().and_then(|m| m.confidence), "confidence", view)
    })
}

/// The CUDA device ordinal of the result's maps in GPU memory, or -1 (with a message) if
/// `result` is NULL or keeps none.
///
/// Thread safety: any thread.
///
/// # Safety
/// `result` is NULL or a live result.
#[no_mangle]
pub unsafe extern "C" fn da3_result_device(result: *const da3_result) -> i32 {
    value_call("da3_result_device", || {
        // SAFETY: per the caller.
        let r = unsafe { da3_result::borrow(result, "result") }?;
        let maps = r
            .device_maps()
            .ok_or_else(|| FfiError::new(DA3_ERR_NOT_AVAILABLE, "this result keeps no maps in GPU memory (see da3_infer_cuda's device_outputs)"))?;
        Ok(maps.device as i32)
    })
}
