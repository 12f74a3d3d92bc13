//! `model/cam_enc.py`: encodes known cameras into tokens that replace the learned camera
//! token (pose-conditioned inference). It always runs in fp32 (the official disables autocast)
//! and with libtorch's SDPA.
use std::collections::BTreeMap;
use std::sync::OnceLock;

use tch::{Device, Kind, Tensor};

use super::dinov2::layers::{Block, Mlp};
use super::utils::block::new_block;
use super::utils::transform::extri_intri_to_pose_encoding;
use crate::error::{Error, Result};
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

/// Where a network's camera encoder is: built on its device at load, or kept in host memory
/// and built on the device by the first forward that takes known cameras (then kept). Most
/// calls give no cameras, and the encoder is a large share of the weights in device memory
/// (da3-large: 194 MiB of 937 MiB, fp32); the runner chooses.
pub enum CameraEncoder {
    Loaded(CameraEnc),
    OnFirstUse {
        /// The encoder's tensors in host memory, by checkpoint name (read and checked at load).
        host: BTreeMap<String, Tensor>,
        prefix: String,
        dim_out: i64,
        device: Device,
        built: OnceLock<CameraEnc>,
    },
}

impl CameraEncoder {
    /// Builds the encoder under `prefix`, on the loader's device, or with `on_first_use` in
    /// host memory until `get` needs it there.
    pub fn new(w: &mut WeightLoader, prefix: &str, dim_out: i64, on_first_use: bool) -> Result<Self> {
        if !on_first_use || w.device() == Device::Cpu {
            return Ok(CameraEncoder::Loaded(CameraEnc::new(w, prefix, dim_out)?));
        }
        let device = w.device();
        let (_, host) = w.build_on_host(|w| CameraEnc::new(w, prefix, dim_out))?;
        Ok(CameraEncoder::OnFirstUse { host, prefix: prefix.to_owned(), dim_out, device, built: OnceLock::new() })
    }

    /// The encoder on the network's device (the first call of a deferred one copies it there).
    pub fn get(&self) -> Result<&CameraEnc> {
        match self {
            CameraEncoder::Loaded(encoder) => Ok(encoder),
            CameraEncoder::OnFirstUse { host, prefix, dim_out, device, built } => {
                if let Some(encoder) = built.get() {
                    return Ok(encoder);
                }
                let tensors = host.iter().map(|(name, t)| (name.clone(), t.shallow_clone())).collect();
                let mut w = WeightLoader::from_tensors(tensors, *device);
                let encoder = CameraEnc::new(&mut w, prefix, *dim_out)?;
                w.finish()?;
                // One replica thread runs a network's forwards: the cell is empty here.
                let _ = built.set(encoder);
                built.get().ok_or_else(|| Error::Internal("the camera encoder was not kept".into()))
            }
        }
    }

    /// Whether the encoder is on the network's device now.
    pub fn is_on_device(&self) -> bool {
        match self {
            CameraEncoder::Loaded(_) => true,
            CameraEncoder::OnFirstUse { built, .. } => built.get().is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shallow(tensors: &BTreeMap<String, Tensor>) -> BTreeMap<String, Tensor> {
        tensors.iter().map(|(name, t)| (name.clone(), t.shallow_clone())).collect()
    }

    /// An encoder kept in host memory and built by its first use is the encoder built at load:
    /// same tensors, same output; it is built once and kept. On the CPU `new` builds it at once.
    #[test]
    fn an_encoder_built_on_first_use_is_the_one_built_at_load() {
        let dim = 32;
        let tensors = WeightLoader::random_tensors_for(|w| CameraEnc::new(w, "e", dim));
        assert!(tensors.len() > 40, "{} tensors", tensors.len());
        let loaded = CameraEnc::new(&mut WeightLoader::from_tensors(shallow(&tensors), Device::Cpu), "e", dim).unwrap();
        let mut w = WeightLoader::from_tensors(shallow(&tensors), Device::Cpu);
        let (_, host) = w.build_on_host(|w| CameraEnc::new(w, "e", dim)).unwrap();
        w.finish().unwrap();
        assert_eq!(host.keys().collect::<Vec<_>>(), tensors.keys().collect::<Vec<_>>());
        let deferred = CameraEncoder::OnFirstUse { host, prefix: "e".into(), dim_out: dim, device: Device::Cpu, built: OnceLock::new() };
        assert!(!deferred.is_on_device());

        let views = 3;
        let extrinsics = Tensor::eye(4, (Kind::Float, Device::Cpu)).unsqueeze(0).repeat([views, 1, 1]);
        extrinsics.narrow(2, 3, 1).narrow(1, 0, 3).copy_(&Tensor::randn([views, 3, 1], (Kind::Float, Device::Cpu)));
        let intrinsics = Tensor::from_slice(&[300.0f32, 0.0, 160.0, 0.0, 300.0, 120.0, 0.0, 0.0, 1.0])
            .reshape([1, 3, 3])
            .repeat([views, 1, 1]);
        let expected = loaded.forward(&extrinsics, &intrinsics, 240, 320).unwrap();
        let first = deferred.get().unwrap();
        assert!(deferred.is_on_device());
        assert!(first.forward(&extrinsics, &intrinsics, 240, 320).unwrap().equal(&expected));
        assert!(std::ptr::eq(first, deferred.get().unwrap()), "built once, then kept");

        let mut w = WeightLoader::from_tensors(shallow(&tensors), Device::Cpu);
        assert!(matches!(CameraEncoder::new(&mut w, "e", dim, true).unwrap(), CameraEncoder::Loaded(_)));
    }
}
