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
    pub intrinsics: Option<Vec<f32>>,
}

impl Prediction {
    pub fn pixels_per_view(&self) -> usize {
        self.height * self.width
    }
}
