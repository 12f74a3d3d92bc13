//! `model/dinov2/dinov2.py`: the backbone wrapper; the network itself is in
//! `vision_transformer` (the official class nests it as `pretrained`).
pub mod layers;
pub mod vision_transformer;

use tch::{Kind, Tensor};

use crate::config::BackboneConfig;
use crate::error::Result;
use crate::model::execution::Execution;
use crate::model::reference_view_selector::RefViewStrategy;
use crate::weights::WeightLoader;
pub use vision_transformer::{BackboneOutput, BlockState, DinoVisionTransformer, LayerOutput, TakenBlock};

pub struct DinoV2 {
    pub pretrained: DinoVisionTransformer,
}

impl DinoV2 {
    pub fn new(w: &mut WeightLoader, prefix: &str, cfg: &BackboneConfig, kind: Kind) -> Result<Self> {
        Ok(DinoV2 { pretrained: DinoVisionTransformer::new(w, &format!("{prefix}.pretrained"), cfg, kind)? })
    }

    /// See `DinoVisionTransformer::forward`.
    pub fn forward(
        &self,
        images: &Tensor,
        camera_tokens: Option<&Tensor>,
        strategy: RefViewStrategy,
        export_layers: &[usize],
        exec: Execution<'_>,
    ) -> Result<BackboneOutput> {
        self.pretrained.forward(images, camera_tokens, strategy, export_layers, exec)
    }
}
