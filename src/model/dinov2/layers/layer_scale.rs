//! `layers/layer_scale.py`: a learned per-channel gain.
use tch::{Kind, Tensor};

use crate::error::Result;
use crate::weights::WeightLoader;

pub struct LayerScale {
    pub gamma: Tensor,
}

impl LayerScale {
    pub fn new(w: &mut WeightLoader, prefix: &str, dim: i64) -> Result<Self> {
        Ok(LayerScale { gamma: w.take(&format!("{prefix}.gamma"), &[dim], Kind::Float)? })
    }

    /// The fp32 gain promotes a reduced-precision branch back to fp32, as under autocast.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.f_mul(&self.gamma)?)
    }
}
