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

    /// Takes `x` so that it is freed once `w12` has read it (see `Mlp::forward`).
    pub fn forward(&self, x: Tensor) -> Result<Tensor> {
        let x12 = self.w12.forward(&x)?;
        drop(x);
        let halves = x12.f_chunk(2, -1)?;
        // silu(x1) * x2 with the product written over silu's output (same kernels as out of
        // place), and w12's output freed before w3 runs.
        let mut gated = halves[0].f_silu()?;
        let _same_tensor = gated.f_mul_(&halves[1])?;
        drop(halves);
        drop(x12);
        self.w3.forward(&gated)
    }
}
