//! What one inference returns, on the host, in the official layout.

/// Depth, confidence and cameras for N views of one scene, all in host memory.
#[derive(Clone, Debug, Default)]
pub struct Prediction {
    /// Number of views.
    pub views: usize,
    /// Processed (network input) height and width; every per-pixel map has this size.
    pub height: usize,
    pub width: usize,
    /// Depth, `views * height * width` row-major float32.
    pub depth: Vec<f32>,
    /// Depth confidence, same layout as `depth`.
    pub confidence: Vec<f32>,
    /// World-to-camera extrinsics, `views * 3 * 4` row-major (OpenCV convention), if predicted.
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
}
