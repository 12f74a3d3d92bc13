//! `model/cam_enc.py`: encodes known cameras into tokens that replace the learned camera
//! token. Its weights are part of every any-view checkpoint and are loaded (strictly);
//! pose-conditioned inference that runs it is not exposed yet.
use tch::{Kind, Tensor};

use super::dinov2::layers::{Block, Mlp};
use super::utils::block::new_block;
use crate::nn::LayerNorm;
use crate::weights::WeightLoader;

pub struct CameraEnc {
    pub trunk: Vec<Block>,
    pub token_norm: LayerNorm,
    pub trunk_norm: LayerNorm,
    pub pose_branch: Mlp,
}

impl CameraEnc {
    const TRUNK_DEPTH: usize = 4;
    const NUM_HEADS: i64 = 16;
    /// Pose-encoding width: translation 3, quaternion 4, fov 2.
    const DIM_IN: i64 = 9;

    pub fn new(w: &mut WeightLoader, prefix: &str, dim_out: i64) -> Self {
        let kind = Kind::Float;
        CameraEnc {
            trunk: (0..Self::TRUNK_DEPTH)
                .map(|i| new_block(w, &format!("{prefix}.trunk.{i}"), dim_out, Self::NUM_HEADS, kind))
                .collect(),
            token_norm: LayerNorm::new(w, &format!("{prefix}.token_norm"), dim_out, LayerNorm::DEFAULT_EPS),
            trunk_norm: LayerNorm::new(w, &format!("{prefix}.trunk_norm"), dim_out, LayerNorm::DEFAULT_EPS),
            pose_branch: Mlp::new(w, &format!("{prefix}.pose_branch"), Self::DIM_IN, dim_out / 2, dim_out, kind),
        }
    }

    /// Pose encodings (S, 9) -> camera tokens (S, C).
    pub fn forward_encoding(&self, encoding: &Tensor) -> Tensor {
        let mut tokens = self.token_norm.forward(&self.pose_branch.forward(encoding)).unsqueeze(0);
        for block in &self.trunk {
            tokens = block.forward(&tokens, None);
        }
        self.trunk_norm.forward(&tokens).squeeze_dim(0)
    }
}
