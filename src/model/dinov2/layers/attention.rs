//! `layers/attention.py`: multi-head self-attention with optional QK-norm and 2-D RoPE.
use tch::{Kind, Tensor};

use super::rope::RotaryPositionEmbedding2D;
use crate::nn::{LayerNorm, Linear};
use crate::weights::WeightLoader;

/// Token positions for RoPE: (B, N, 2) int64 and the largest coordinate in it.
pub struct RopePositions<'a> {
    pub positions: &'a Tensor,
    pub max_position: i64,
}

pub struct Attention {
    pub qkv: Linear,
    pub q_norm: Option<LayerNorm>,
    pub k_norm: Option<LayerNorm>,
    pub proj: Linear,
    num_heads: i64,
    /// The kind q, k and v are brought to for the attention kernel (autocast's choice).
    compute_kind: Kind,
    /// Use cuDNN's fused attention (the accelerated runner on a GPU, reduced precision);
    /// turned off for good by the first failure, after which libtorch's SDPA picks a kernel.
    pub cudnn: std::sync::atomic::AtomicBool,
}

impl Attention {
    pub fn new(w: &mut WeightLoader, prefix: &str, dim: i64, num_heads: i64, qk_norm: bool, kind: Kind) -> Self {
        let head_dim = dim / num_heads;
        let norm = |w: &mut WeightLoader, n: &str| LayerNorm::new(w, &format!("{prefix}.{n}"), head_dim, LayerNorm::DEFAULT_EPS);
        Attention {
            qkv: Linear::new(w, &format!("{prefix}.qkv"), dim, 3 * dim, true, kind),
            q_norm: qk_norm.then(|| norm(w, "q_norm")),
            k_norm: qk_norm.then(|| norm(w, "k_norm")),
            proj: Linear::new(w, &format!("{prefix}.proj"), dim, dim, true, kind),
            num_heads,
            compute_kind: kind,
            cudnn: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn forward(&self, x: &Tensor, rope: Option<(&RotaryPositionEmbedding2D, RopePositions<'_>)>) -> Tensor {
        let (b, n, c) = x.size3().expect("attention input is (B, N, C)");
        let qkv = self.qkv.forward(x).reshape([b, n, 3, self.num_heads, c / self.num_heads]).permute([2, 0, 3, 1, 4]);
        let (mut q, mut k, v) = (qkv.get(0), qkv.get(1), qkv.get(2));
        if let (Some(qn), Some(kn)) = (&self.q_norm, &self.k_norm) {
            q = qn.forward(&q);
            k = kn.forward(&k);
        }
        if let Some((rope, pos)) = rope {
            q = rope.forward(&q, pos.positions, pos.max_position);
            k = rope.forward(&k, pos.positions, pos.max_position);
        }
        let kind = self.compute_kind;
        let (q, k, v) = (q.to_kind(kind), k.to_kind(kind), v.to_kind(kind));
        let fused = if self.cudnn.load(std::sync::atomic::Ordering::Relaxed) {
            crate::gpu::support::cudnn_attention(&q, &k, &v)
                .map_err(|error| {
                    if std::env::var_os("DA3_LOG_GRAPHS").is_some() {
                        eprintln!("libda3: cuDNN attention unavailable, using SDPA: {error}");
                    }
                    self.cudnn.store(false, std::sync::atomic::Ordering::Relaxed);
                })
                .ok()
        } else {
            None
        };
        let out = fused.unwrap_or_else(|| Tensor::scaled_dot_product_attention(&q, &k, &v, None::<Tensor>, 0.0, false, None, false));
        self.proj.forward(&out.transpose(1, 2).reshape([b, n, c]))
    }
}
