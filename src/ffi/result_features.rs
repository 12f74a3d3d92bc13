//! Backbone features exported with `da3_options.export_feat_layers`.
use std::ptr;

use crate::prediction::FeatureMap;

use super::args::Handle;
use super::boundary::{da3_status, status_call, value_call, FfiError, FfiResult};
use super::result::da3_result;

impl da3_result {
    fn feature(&self, index: usize) -> FfiResult<&FeatureMap> {
        self.prediction.features.get(index).ok_or_else(|| {
            FfiError::invalid(format!(
                "feature index {index} is out of range: the result has {} exported feature(s)",
                self.prediction.features.len()
            ))
        })
    }
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
        Ok(unsafe { da3_result::borrow(result, "result") }?.prediction.features.len())
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
        let r = unsafe { da3_result::borrow(result, "result") }?;
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
        Ok(unsafe { da3_result::borrow(result, "result") }?.feature(index)?.data.as_ptr())
    })
}

