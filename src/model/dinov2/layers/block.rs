//! `layers/block.py`: pre-norm transformer block with LayerScale.
use tch::{Kind, Tensor};

use super::attention::{Attention, RopePositions};
use super::layer_scale::LayerScale;
use super::mlp::Mlp;
use super::rope::RotaryPositionEmbedding2D;
use super::swiglu_ffn::SwiGLUFFNFused;
use crate::error::Result;
use crate::model::execution::{AttentionKernel, GlueKernels};
use crate::nn::LayerNorm;
use crate::weights::WeightLoader;

/// The feed-forward flavour: a GELU MLP (ViT-S/B/L) or SwiGLU (ViT-g).
pub enum Ffn {
    Mlp(Mlp),
    SwiGlu(SwiGLUFFNFused),
}

impl Ffn {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match self {
            Ffn::Mlp(m) => m.forward(x),
            Ffn::SwiGlu(m) => m.forward(x),
        }
    }
}

pub struct Block {
    pub norm1: LayerNorm,
    pub attn: Attention,
    pub ls1: LayerScale,
    pub norm2: LayerNorm,
    pub mlp: Ffn,
    pub ls2: LayerScale,
    /// Whether this block applies RoPE (blocks from `rope_start` on).
    pub uses_rope: bool,
}

pub struct BlockConfig {
    pub dim: i64,
    pub num_heads: i64,
    pub mlp_ratio: i64,
    pub swiglu: bool,
    pub qk_norm: bool,
    pub rope: bool,
    pub ln_eps: f64,
}

impl Block {
    pub fn new(w: &mut WeightLoader, prefix: &str, cfg: &BlockConfig, kind: Kind) -> Result<Self> {
        let dim = cfg.dim;
        let hidden = dim * cfg.mlp_ratio;
        let mlp_prefix = format!("{prefix}.mlp");
        Ok(Block {
            norm1: LayerNorm::new(w, &format!("{prefix}.norm1"), dim, cfg.ln_eps)?,
            attn: Attention::new(w, &format!("{prefix}.attn"), dim, cfg.num_heads, cfg.qk_norm, kind)?,
            ls1: LayerScale::new(w, &format!("{prefix}.ls1"), dim)?,
            norm2: LayerNorm::new(w, &format!("{prefix}.norm2"), dim, cfg.ln_eps)?,
            mlp: if cfg.swiglu {
                Ffn::SwiGlu(SwiGLUFFNFused::new(w, &mlp_prefix, dim, hidden, kind)?)
            } else {
                Ffn::Mlp(Mlp::new(w, &mlp_prefix, dim, hidden, dim, kind)?)
            },
            ls2: LayerScale::new(w, &format!("{prefix}.ls2"), dim)?,
            uses_rope: cfg.rope,
        })
    }

    /// `attention`: the fused attention kernel to try (see `Execution::attention`).
    /// `fused_glue`: each LayerScale + residual add in one pass (`Execution::fused_glue`),
    /// with `glue`'s kernels where they take the call (`Execution::glue`).
    pub fn forward(
        &self,
        x: &Tensor,
        rope: Option<(&RotaryPositionEmbedding2D, RopePositions<'_>)>,
        attention: Option<&dyn AttentionKernel>,
        fused_glue: bool,
        glue: Option<&dyn GlueKernels>,
    ) -> Result<Tensor> {
        let rope = if self.uses_rope { rope } else { None };
        if fused_glue {
            let kind = self.attn.compute_kind();
            let normed = match glue.and_then(|g| g.layer_norm(x, &self.norm1, kind)) {
                Some(normed) => normed?,
                None => self.norm1.forward(x)?,
            };
            let attended = self.attn.forward(&normed, rope, attention, glue)?;
            // `x` is the caller's; the sum is a new tensor, which the second sum then updates.
            let (mut x, normed) = match glue.and_then(|g| g.residual_layer_norm(x, &attended, &self.ls1.gamma, &self.norm2, kind)) {
                Some(both) => both?,
                None => {
                    let x = self.ls1.add_to(x, &attended)?;
                    let normed = self.norm2.forward(&x)?;
                    (x, normed)
                }
            };
            let fed = self.mlp.forward(&normed)?;
            self.ls2.add_to_(&mut x, &fed)?;
            return Ok(x);
        }
        let x = x.f_add(&self.ls1.forward(&self.attn.forward(&self.norm1.forward(x)?, rope, attention, None)?)?)?;
        Ok(x.f_add(&self.ls2.forward(&self.mlp.forward(&self.norm2.forward(&x)?)?)?)?)
    }
}
