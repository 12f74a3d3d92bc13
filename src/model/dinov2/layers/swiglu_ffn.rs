//! `layers/swiglu_ffn.py`: the SwiGLU feed-forward of ViT-g.
use tch::{Kind, Tensor};

use crate::error::Result;
use crate::nn::Linear;
use crate::weights::WeightLoader;

pub struct SwiGLUFFNFused {
    pub w12: Linear,
    pub w3: Linear,
}

impl SwiGLUFFNFused {
    /// `hidden` is the nominal width (dim * mlp_ratio); the official class shrinks it to
    /// 2/3, rounded up to a multiple of 8, to keep the parameter count of a plain MLP.
    pub fn new(w: &mut WeightLoader, prefix: &str, dim: i64, hidden: i64, kind: Kind) -> Result<Self> {
        let hidden = (hidden * 2 / 3 + 7) / 8 * 8;
        Ok(SwiGLUFFNFused {
            w12: Linear::new(w, &format!("{prefix}.w12"), dim, 2 * hidden, true, kind)?,
            w3: Linear::new(w, &format!("{prefix}.w3"), hidden, dim, true, kind)?,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x12 = self.w12.forward(x)?.f_chunk(2, -1)?;
        self.w3.forward(&x12[0].f_silu()?.f_mul(&x12[1])?)
    }
}
