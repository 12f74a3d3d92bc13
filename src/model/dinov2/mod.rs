//! `model/dinov2/dinov2.py`: the backbone wrapper; the network itself is in
//! `vision_transformer` (the official class nests it as `pretrained`).
pub mod layers;
pub mod vision_transformer;

use tch::{Kind, Tensor};

use crate::config::BackboneConfig;
use crate::options::RefViewStrategy;
use crate::weights::WeightLoader;
pub use vision_transformer::{BackboneOutput, BlockPlacement, DinoVisionTransformer, LayerOutput};

pub struct DinoV2 {
    pub pretrained: DinoVisionTransformer,
}

impl DinoV2 {
    pub fn new(w: &mut WeightLoader, prefix: &str, cfg: &BackboneConfig, kind: Kind) -> Self {
        DinoV2 { pretrained: DinoVisionTransformer::new(w, &format!("{prefix}.pretrained"), cfg, kind) }
    }

    pub fn forward(&self, images: &Tensor, camera_tokens: Option<&Tensor>, strategy: RefViewStrategy) -> BackboneOutput {
        self.pretrained.forward(images, camera_tokens, strategy)
    }

    /// `forward` with the official `export_feat_layers`.
    pub fn forward_with_exports(
        &self,
        images: &Tensor,
        camera_tokens: Option<&Tensor>,
        strategy: RefViewStrategy,
        export_layers: &[usize],
    ) -> BackboneOutput {
        self.pretrained.forward_with_exports(images, camera_tokens, strategy, export_layers)
    }
}
