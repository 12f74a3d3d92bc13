//! `layers/attention.py`: multi-head self-attention with optional QK-norm and 2-D RoPE.
use tch::{Kind, Tensor};

use super::rope::{RopeTables, RotaryPositionEmbedding2D};
use crate::error::Result;
use crate::model::execution::{AttentionKernel, GlueKernels};
use crate::nn::{LayerNorm, Linear};
use crate::weights::WeightLoader;

/// Token positions for RoPE: (B, N, 2) int64 and the largest coordinate in it.
pub struct RopePositions<'a> {
    pub positions: &'a Tensor,
    pub max_position: i64,
    /// The same rotation gathered once for every block (`Execution::fused_glue`); `None`: the
    /// official per-call computation.
    pub tables: Option<&'a RopeTables>,
}

pub struct Attention {
    pub qkv: Linear,
    pub q_norm: Option<LayerNorm>,
    pub k_norm: Option<LayerNorm>,
    pub proj: Linear,
    num_heads: i64,
    /// The kind q, k and v are brought to for the attention kernel (autocast's choice).
    compute_kind: Kind,
}

impl Attention {
    pub fn new(w: &mut WeightLoader, prefix: &str, dim: i64, num_heads: i64, qk_norm: bool, kind: Kind) -> Result<Self> {
        let head_dim = dim / num_heads;
        let norm = |w: &mut WeightLoader, n: &str| LayerNorm::new(w, &format!("{prefix}.{n}"), head_dim, LayerNorm::DEFAULT_EPS);
        Ok(Attention {
            qkv: Linear::new(w, &format!("{prefix}.qkv"), dim, 3 * dim, true, kind)?,
            q_norm: if qk_norm { Some(norm(w, "q_norm")?) } else { None },
            k_norm: if qk_norm { Some(norm(w, "k_norm")?) } else { None },
            proj: Linear::new(w, &format!("{prefix}.proj"), dim, dim, true, kind)?,
            num_heads,
            compute_kind: kind,
        })
    }

    /// The kind q, k and v are brought to for the attention kernel.
    pub fn compute_kind(&self) -> Kind {
        self.compute_kind
    }

    /// `kernel`: a fused attention to try first (see `Execution::attention`); libtorch's SDPA
    /// runs when there is none or it declines. `glue`: kernels that make q, k and v from the
    /// projection in one pass (see `Execution::glue`), tried first where the RoPE is the
    /// gathered tables' (or none). Takes `x` so that it is freed once projected.
    pub fn forward(
        &self,
        x: Tensor,
        rope: Option<(&RotaryPositionEmbedding2D, RopePositions<'_>)>,
        kernel: Option<&dyn AttentionKernel>,
        glue: Option<&dyn GlueKernels>,
    ) -> Result<Tensor> {
        let (b, n, c) = x.size3()?;
        let projected = self.qkv.forward(&x)?;
        drop(x);
        let tables = match &rope {
            Some((_, pos)) => pos.tables.map(Some),
            None => Some(None),
        };
        let fused = match (glue, tables) {
            (Some(glue), Some(tables)) => {
                let norms = self.q_norm.as_ref().zip(self.k_norm.as_ref());
                glue.attention_inputs(&projected, self.num_heads, norms, tables).transpose()?
            }
            _ => None,
        };
        if let Some(qkv) = fused {
            // The projection is read: freed before attention's own outputs are allocated.
            drop(projected);
            return self.attend(qkv, kernel, (b, n, c));
        }
        let qkv = projected.f_reshape([b, n, 3, self.num_heads, c / self.num_heads])?.f_permute([2, 0, 3, 1, 4])?;
        let (mut q, mut k, v) = (qkv.f_get(0)?, qkv.f_get(1)?, qkv.f_get(2)?);
        if let (Some(qn), Some(kn)) = (&self.q_norm, &self.k_norm) {
            q = qn.forward(&q)?;
            k = kn.forward(&k)?;
        }
        let kind = self.compute_kind;
        if let Some((rope, pos)) = rope {
            match pos.tables {
                Some(tables) => {
                    q = tables.apply(&q, kind)?;
                    k = tables.apply(&k, kind)?;
                }
                None => {
                    q = rope.forward(&q, pos.positions, pos.max_position)?;
                    k = rope.forward(&k, pos.positions, pos.max_position)?;
                }
            }
        }
        let qkv = (q.f_to_kind(kind)?, k.f_to_kind(kind)?, v.f_to_kind(kind)?);
        drop(projected);
        self.attend(qkv, kernel, (b, n, c))
    }

    /// softmax(q kᵀ / sqrt(D)) v of (B, heads, N, D) q, k, v, then the output projection.
    /// Takes q, k and v so that they are freed before the projection runs.
    fn attend(
        &self,
        (q, k, v): (Tensor, Tensor, Tensor),
        kernel: Option<&dyn AttentionKernel>,
        (b, n, c): (i64, i64, i64),
    ) -> Result<Tensor> {
        let out = match kernel.and_then(|kernel| kernel.attend(&q, &k, &v)) {
            Some(fused) => fused,
            None => Tensor::f_scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, 0.0, false, None, false)?,
        };
        drop((q, k, v));
        let out = out.f_transpose(1, 2)?.f_reshape([b, n, c])?;
        self.proj.forward(&out)
    }
}
