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

    /// `residual + gamma * branch` in `residual`'s kind (fp32), one pass (the two official
    /// passes round the product first).
    pub fn add_to(&self, residual: &Tensor, branch: &Tensor) -> Result<Tensor> {
        Ok(residual.f_addcmul_out(&residual.f_empty_like()?, branch, &self.gamma)?)
    }

    /// `add_to` into `residual` itself (a tensor no one else holds).
    pub fn add_to_(&self, residual: &mut Tensor, branch: &Tensor) -> Result<()> {
        let _same_tensor = residual.f_addcmul_(branch, &self.gamma)?;
        Ok(())
    }
}
