//! What one inference returns, on the host, in the official layout.
use tch::Tensor;

use crate::error::{Error, Result};
use crate::model::utils::alignment::apply_metric_scaling;
use crate::preprocess::GridChange;
pub use crate::model::warning::Warning;

/// Which maps a call also leaves in GPU memory for the caller (`da3_infer_cuda`'s
/// `device_outputs`), as `Prediction::device_maps`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeviceOutputs {
    pub depth: bool,
    pub confidence: bool,
}

impl DeviceOutputs {
    pub fn any(self) -> bool {
        self.depth || self.confidence
    }
}

/// Maps in GPU memory that the prediction owns: `views * height * width` contiguous float32
/// each, the same values as the host maps, on CUDA device `device`; freed with the prediction.
pub struct DeviceMaps {
    /// Owns the buffers: never read again, dropped with the prediction (the mutex only makes
    /// the handles `Sync`).
    _buffers: std::sync::Mutex<Vec<tch::Tensor>>,
    pub device: usize,
    /// Device addresses of the first float of each map.
    pub depth: Option<u64>,
    pub confidence: Option<u64>,
}

impl DeviceMaps {
    /// Owns `depth` and `confidence` (contiguous float32 on CUDA device `device`).
    pub fn new(device: usize, depth: Option<tch::Tensor>, confidence: Option<tch::Tensor>) -> DeviceMaps {
        let address = |t: &Option<tch::Tensor>| t.as_ref().map(|t| t.data_ptr() as u64);
        let (depth_address, confidence_address) = (address(&depth), address(&confidence));
        DeviceMaps {
            _buffers: std::sync::Mutex::new(depth.into_iter().chain(confidence).collect()),
            device,
            depth: depth_address,
            confidence: confidence_address,
        }
    }
}

impl std::fmt::Debug for DeviceMaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceMaps")
            .field("device", &self.device)
            .field("depth", &self.depth.map(|a| format!("{a:#x}")))
            .field("confidence", &self.confidence.map(|a| format!("{a:#x}")))
            .finish_non_exhaustive()
    }
}

/// Depth, confidence, cameras and sky for N views of one scene, all in host memory.
///
/// What `depth` means depends on the model (`Engine::preset_name`):
/// - any-view models (`da3-*`) and `da3mono-large`: relative depth, `is_metric` false;
/// - `da3metric-large`: the network's raw output, depth for a canonical focal length of
///   300 pixels, `is_metric` false, exactly as the official `Prediction.depth`. Metres, as
///   the official computes them (`utils/alignment.py::apply_metric_scaling`): depth * f / 300
///   with f = (fx + fy) / 2 of the processed image; see [`Prediction::metric_depth`];
/// - `da3nested-giant-large`: metres, `is_metric` true (the any-view depth times
///   `scale_factor`), unless the alignment was skipped (see `warnings`).
#[derive(Clone, Debug, Default)]
pub struct Prediction {
    /// Number of views.
    pub views: usize,
    /// Processed (network input) height and width; every per-pixel map has this size.
    pub height: usize,
    pub width: usize,
    /// Depth, `views * height * width` row-major float32. With a sky map, sky pixels hold a
    /// far depth: the 99th percentile of the non-sky depth (capped at 200 m for the nested
    /// model), as the official.
    pub depth: Vec<f32>,
    /// Depth confidence, same layout as `depth`; empty for models that predict none
    /// (`da3metric-large`, `da3mono-large`). The nested model sets sky pixels to 1.
    pub confidence: Vec<f32>,
    /// World-to-camera extrinsics, `views * 3 * 4` row-major (OpenCV convention), if predicted.
    /// Nested model: translations in metres (scaled with the depth).
    pub extrinsics: Option<Vec<f32>>,
    /// Pinhole intrinsics in processed-image pixels, `views * 3 * 3` row-major, if predicted.
    /// With known cameras: the caller's intrinsics carried through the preprocessing.
    pub intrinsics: Option<Vec<f32>>,
    /// Backbone features asked for with `InferOptions::export_feat_layers`, in that order.
    pub features: Vec<FeatureMap>,
    /// With known cameras: the scale s of the similarity taking the given camera centres onto
    /// the predicted ones (predicted ~ s * given). Depth was divided by it when
    /// `align_to_input_ext_scale` is set.
    pub alignment_scale: Option<f32>,
    /// Sky map, same layout as `depth`, for models with a sky head (`da3metric-large`,
    /// `da3mono-large`, and the nested model's metric branch): the head's sky output after its
    /// ReLU, >= 0. The official calls a pixel non-sky below 0.3 (depth filling and metric
    /// alignment) and its `Prediction.sky` mask is `sky >= 0.5`. (The official nested
    /// `Prediction` carries no sky; this is the map its alignment used.)
    pub sky: Option<Vec<f32>>,
    /// Whether `depth` and the extrinsic translations are in metres: true for the nested
    /// model once aligned, as the official `is_metric`.
    pub is_metric: bool,
    /// Nested model: the least-squares factor that took the any-view depth and translations
    /// to metres (the official `scale_factor`); `None` when not aligned.
    pub scale_factor: Option<f32>,
    /// Conditions met on the way that the caller should know about; empty normally.
    pub warnings: Vec<Warning>,
    /// Depth and confidence also kept in GPU memory, when asked for (`DeviceOutputs`).
    pub device_maps: Option<std::sync::Arc<DeviceMaps>>,
    /// Per view, how its pixel grid went from the caller's image to the processed one (the
    /// resizes and crops, see `geometry` for the pixel mapping); empty (or empty per view)
    /// when processed pixels are input pixels (`Views::Preprocessed`).
    pub grid_changes: Vec<Vec<GridChange>>,
    /// The processed images as RGB8, `views * height * width * 3` (the network input with the
    /// ImageNet normalisation undone, exact for images the library preprocessed): the colours
    /// of exported points. Empty when not kept.
    pub colors: Vec<u8>,
}

/// One backbone block's output for every view (official `aux["feat_layer_{layer}"]`): patch
/// tokens after the backbone's final LayerNorm, camera token dropped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FeatureMap {
    /// Block index in the backbone.
    pub layer: usize,
    /// (views, H / 14, W / 14, channels), channels = the backbone width.
    pub shape: [usize; 4],
    /// Row-major float32 in `shape`, views in input order.
    pub data: Vec<f32>,
}

impl Prediction {
    pub fn pixels_per_view(&self) -> usize {
        self.height * self.width
    }

    /// Whether `confidence` holds a map (models with a confidence output).
    pub fn has_confidence(&self) -> bool {
        !self.confidence.is_empty()
    }

    /// Checks what every reader of a prediction relies on: at least one view, sizes that fit
    /// `u32` (as the images they come from), and every buffer the length its shape says.
    /// A failure is a bug in libda3: `Error::Internal`.
    pub fn check_invariants(&self) -> Result<()> {
        let internal = |what: String| Err(Error::Internal(what));
        let fits_u32 = |n: usize| u32::try_from(n).is_ok_and(|n| n > 0);
        if !(fits_u32(self.width) && fits_u32(self.height) && self.views > 0) {
            return internal(format!("prediction has shape {}x{}x{}", self.views, self.height, self.width));
        }
        let maps = self.views.checked_mul(self.pixels_per_view());
        let check = |name: &str, len: usize, expected: Option<usize>| {
            if Some(len) == expected {
                Ok(())
            } else {
                internal(format!("prediction {name} holds {len} values, expected {expected:?}"))
            }
        };
        check("depth", self.depth.len(), maps)?;
        // Models without a confidence output (da3metric-large, da3mono-large) leave it empty.
        if self.has_confidence() {
            check("confidence", self.confidence.len(), maps)?;
        }
        if let Some(e) = &self.extrinsics {
            check("extrinsics", e.len(), self.views.checked_mul(12))?;
        }
        if let Some(k) = &self.intrinsics {
            check("intrinsics", k.len(), self.views.checked_mul(9))?;
        }
        if let Some(sky) = &self.sky {
            check("sky", sky.len(), maps)?;
        }
        if !self.grid_changes.is_empty() && self.grid_changes.len() != self.views {
            return internal(format!("prediction has grid changes for {} of {} views", self.grid_changes.len(), self.views));
        }
        if !self.colors.is_empty() {
            check("colors", self.colors.len(), maps.and_then(|m| m.checked_mul(3)))?;
        }
        for f in &self.features {
            if f.shape[0] != self.views || u32::try_from(f.layer).is_err() {
                return internal(format!("feature of block {} has shape {:?}", f.layer, f.shape));
            }
            check("features", f.data.len(), f.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)))?;
        }
        Ok(())
    }

    /// `da3metric-large`'s depth in metres, as the official `apply_metric_scaling`:
    /// `depth * ((fx + fy) / 2) / 300` per view, float32. `intrinsics`: `views * 9` floats,
    /// one row-major 3x3 matrix per view, in the pixels of the processed image (a camera's
    /// focal lengths in pixels times the processing resize factor). Only meaningful for the
    /// output of `da3metric-large`.
    pub fn metric_depth(&self, intrinsics: &[f32]) -> Result<Vec<f32>> {
        if intrinsics.len() != self.views * 9 {
            return Err(Error::InvalidArgument(format!(
                "intrinsics must hold 9 floats per view ({} views), got {}",
                self.views,
                intrinsics.len()
            )));
        }
        if self.depth.len() != self.views * self.pixels_per_view() {
            return Err(Error::InvalidArgument("prediction holds no depth map".into()));
        }
        let shape = [self.views as i64, self.height as i64, self.width as i64];
        let depth = Tensor::f_from_slice(&self.depth)?.f_reshape(shape)?;
        let k = Tensor::f_from_slice(intrinsics)?.f_reshape([self.views as i64, 3, 3])?;
        Ok(Vec::<f32>::try_from(&apply_metric_scaling(&depth, &k)?.f_reshape([-1])?)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_depth_scales_each_view_by_its_focal() {
        let p = Prediction { views: 2, height: 1, width: 2, depth: vec![1.0, 2.0, 3.0, 4.0], ..Default::default() };
        let mut k = vec![0.0f32; 18];
        (k[0], k[4], k[8]) = (300.0, 900.0, 1.0);
        (k[9], k[13], k[17]) = (150.0, 150.0, 1.0);
        assert_eq!(p.metric_depth(&k).unwrap(), vec![2.0, 4.0, 1.5, 2.0]);
        assert!(matches!(p.metric_depth(&k[..9]), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn invariants_catch_inconsistent_buffers() {
        let good = Prediction { views: 2, height: 1, width: 2, depth: vec![0.0; 4], ..Default::default() };
        assert!(good.check_invariants().is_ok());
        let short = Prediction { depth: vec![0.0; 3], ..good.clone() };
        let e = short.check_invariants().unwrap_err();
        assert!(matches!(e, Error::Internal(_)));
        assert_eq!(e.to_string(), "internal error: prediction depth holds 3 values, expected Some(4); please report this bug");
        assert!(Prediction::default().check_invariants().is_err());
        let feature = FeatureMap { layer: 0, shape: [2, 1, 1, 2], data: vec![0.0; 3] };
        assert!(Prediction { features: vec![feature], ..good }.check_invariants().is_err());
    }

}
