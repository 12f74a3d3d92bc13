//! `model/cam_enc.py`: encodes known cameras into tokens that replace the learned camera
//! token (pose-conditioned inference). It always runs in fp32 (the official disables autocast)
//! and with libtorch's SDPA.
use tch::{Kind, Tensor};

use super::dinov2::layers::{Block, Mlp};
use super::utils::block::new_block;
use super::utils::transform::extri_intri_to_pose_encoding;
use crate::error::Result;
use crate::nn::LayerNorm;
use crate::utils::geometry::affine_inverse;
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

    pub fn new(w: &mut WeightLoader, prefix: &str, dim_out: i64) -> Result<Self> {
        let kind = Kind::Float;
        Ok(CameraEnc {
            trunk: (0..Self::TRUNK_DEPTH)
                .map(|i| new_block(w, &format!("{prefix}.trunk.{i}"), dim_out, Self::NUM_HEADS, kind))
                .collect::<Result<_>>()?,
            token_norm: LayerNorm::new(w, &format!("{prefix}.token_norm"), dim_out, LayerNorm::DEFAULT_EPS)?,
            trunk_norm: LayerNorm::new(w, &format!("{prefix}.trunk_norm"), dim_out, LayerNorm::DEFAULT_EPS)?,
            pose_branch: Mlp::new(w, &format!("{prefix}.pose_branch"), Self::DIM_IN, dim_out / 2, dim_out, kind)?,
        })
    }

    /// World-to-camera extrinsics (S, 4, 4) and intrinsics (S, 3, 3) of an H x W network input
    /// -> camera tokens (S, C); the trunk attends across the views.
    pub fn forward(&self, extrinsics: &Tensor, intrinsics: &Tensor, height: i64, width: i64) -> Result<Tensor> {
        let c2w = affine_inverse(&extrinsics.f_to_kind(Kind::Float)?)?;
        let encoding = extri_intri_to_pose_encoding(&c2w, &intrinsics.f_to_kind(Kind::Float)?, height, width)?;
        let mut tokens = self.token_norm.forward(&self.pose_branch.forward(encoding, None)?)?.f_unsqueeze(0)?;
        for block in &self.trunk {
            tokens = block.forward(&tokens, None, None, false, None)?;
        }
        Ok(self.trunk_norm.forward(&tokens)?.f_squeeze_dim(0)?)
    }
}
