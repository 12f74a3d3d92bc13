//! `layers/patch_embed.py`: a stride-14 convolution turning pixels into tokens.
use tch::{Kind, Tensor};

use crate::error::Result;
use crate::nn::Conv2d;
use crate::weights::WeightLoader;

pub struct PatchEmbed {
    pub proj: Conv2d,
}

impl PatchEmbed {
    pub fn new(w: &mut WeightLoader, prefix: &str, patch: i64, in_chans: i64, dim: i64, kind: Kind) -> Result<Self> {
        Ok(PatchEmbed { proj: Conv2d::new(w, &format!("{prefix}.proj"), in_chans, dim, patch, patch, 0, true, kind)? })
    }

    /// (B, 3, H, W) -> (B, H/14 * W/14, C)
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.proj.forward(x)?.f_flatten(2, 3)?.f_transpose(1, 2)?)
    }
}
