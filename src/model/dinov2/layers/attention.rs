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
        let mut projected = self.qkv.forward(&x)?;
        drop(x);
        let tables = match &rope {
            Some((_, pos)) => pos.tables.map(Some),
            None => Some(None),
        };
        let fused = match (glue, tables) {
            (Some(glue), Some(tables)) => {
                let norms = self.q_norm.as_ref().zip(self.k_norm.as_ref());
                glue.attention_inputs(&mut projected, self.num_heads, norms, tables).transpose()?
            }
            _ => None,
        };
        if let Some(qkv) = fused {
            // q, k and v are views of the projection (or tensors of their own): this handle goes.
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

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tch::Device;

    use super::*;

    /// A `GlueKernels` stand-in on the CPU in libtorch operations: `attention_inputs` rewrites
    /// q and k in place in the projection and returns views of it, as the CUDA kernel does;
    /// `linear_gelu` computes fc1 + the tanh-form GELU, as cuBLASLt's epilogue. Counts calls.
    #[derive(Default)]
    pub(crate) struct StandInGlue {
        pub attention_inputs: AtomicUsize,
        pub linear_gelu: AtomicUsize,
    }

    impl GlueKernels for StandInGlue {
        fn attention_inputs(
            &self,
            qkv: &mut Tensor,
            heads: i64,
            qk_norm: Option<(&LayerNorm, &LayerNorm)>,
            rope: Option<&RopeTables>,
        ) -> Option<Result<(Tensor, Tensor, Tensor)>> {
            assert!(rope.is_none(), "the stand-in has no RoPE");
            self.attention_inputs.fetch_add(1, Ordering::Relaxed);
            let (b, n, c) = qkv.size3().ok()?;
            let parts = qkv.view([b, n, 3, heads, c / (3 * heads)]);
            if let Some((q_norm, k_norm)) = qk_norm {
                for (i, norm) in [(0, q_norm), (1, k_norm)] {
                    let mut part = parts.select(2, i);
                    let normed = norm.forward(&part).ok()?;
                    part.copy_(&normed);
                }
            }
            Some(Ok((parts.select(2, 0).transpose(1, 2), parts.select(2, 1).transpose(1, 2), parts.select(2, 2).transpose(1, 2))))
        }

        fn residual_update(&self, _x: &mut Tensor, _branch: &Tensor, _gamma: &Tensor) -> Option<Result<()>> {
            None
        }

        fn layer_norm(&self, _x: &Tensor, _norm: &LayerNorm, _kind: Kind) -> Option<Result<Tensor>> {
            None
        }

        fn linear_gelu(&self, x: &Tensor, linear: &Linear) -> Option<Result<Tensor>> {
            self.linear_gelu.fetch_add(1, Ordering::Relaxed);
            Some(linear.forward(x).and_then(|h| Ok(h.f_gelu("tanh")?)))
        }

        fn residual_layer_norm(
            &self,
            _x: &Tensor,
            _branch: &Tensor,
            _gamma: &Tensor,
            _norm: &LayerNorm,
            _kind: Kind,
        ) -> Option<Result<(Tensor, Tensor)>> {
            None
        }
    }

    /// q, k and v read as strided views of the projection (q and k normalised in place) give
    /// the attention of the separate tensors.
    #[test]
    fn attention_over_views_of_the_projection_matches() {
        tch::manual_seed(3);
        let options = (Kind::Float, Device::Cpu);
        let (dim, heads) = (16, 2);
        let mut tensors = BTreeMap::from([
            ("a.qkv.weight".to_owned(), Tensor::randn([3 * dim, dim], options)),
            ("a.qkv.bias".to_owned(), Tensor::randn([3 * dim], options)),
            ("a.proj.weight".to_owned(), Tensor::randn([dim, dim], options)),
            ("a.proj.bias".to_owned(), Tensor::randn([dim], options)),
        ]);
        for norm in ["q_norm", "k_norm"] {
            tensors.insert(format!("a.{norm}.weight"), Tensor::randn([dim / heads], options) * 0.5 + 1.0);
            tensors.insert(format!("a.{norm}.bias"), Tensor::randn([dim / heads], options) * 0.1);
        }
        let mut w = WeightLoader::from_tensors(tensors, Device::Cpu);
        let attention = Attention::new(&mut w, "a", dim, heads, true, Kind::Float).unwrap();
        w.finish().unwrap();
        let x = Tensor::randn([3, 11, dim], options);
        let glue = StandInGlue::default();
        let want = attention.forward(x.copy(), None, None, None).unwrap();
        let got = attention.forward(x, None, None, Some(&glue)).unwrap();
        assert_eq!(glue.attention_inputs.load(Ordering::Relaxed), 1);
        let diff = (&got - &want).abs().max().double_value(&[]);
        assert!(diff <= 1e-5, "views of the projection differ by {diff}");
    }
}
