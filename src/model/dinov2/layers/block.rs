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
    /// Takes `x` so that it is freed as soon as the first product has read it. `glue`: see
    /// `Mlp::forward`.
    fn forward(&self, x: Tensor, glue: Option<&dyn GlueKernels>) -> Result<Tensor> {
        match self {
            Ffn::Mlp(m) => m.forward(x, glue),
            Ffn::SwiGlu(m) => m.forward(x),
        }
    }

    /// Bytes of hidden activations one token (row) holds at once inside `forward`.
    fn hidden_bytes_per_row(&self) -> i64 {
        let (weight, values_per_output) = match self {
            Ffn::Mlp(m) => (&m.fc1.weight, 2),
            // w12's output (both halves) and the gated half: 3/2 per output.
            Ffn::SwiGlu(m) => (&m.w12.weight, 3),
        };
        let outputs = weight.size().first().copied().unwrap_or(0);
        outputs * values_per_output / 2 * weight.kind().elt_size_in_bytes() as i64
    }
}

/// On the fused path the feed-forward runs on at most this many bytes of hidden activations
/// at a time (rows of tokens in turn): with many views those activations (4x the width, in
/// the compute kind) were the largest part of a block's working set. The feed-forward is per
/// token and the residual update per element, so each row gets the same arithmetic; only the
/// matrix products' kernels may differ with the row count.
pub const FFN_CHUNK_BYTES: i64 = 128 << 20;

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
            // Temporaries are dropped as soon as they are read (the attention drops `normed`
            // once projected): with many views, the block's working set is most of a scene's
            // memory.
            let attended = self.attn.forward(normed, rope, attention, glue)?;
            // `x` is the caller's; the sum is a new tensor, which the second sum then updates.
            let (mut x, normed) = match glue.and_then(|g| g.residual_layer_norm(x, &attended, &self.ls1.gamma, &self.norm2, kind)) {
                Some(both) => both?,
                None => {
                    let x = self.ls1.add_to(x, &attended)?;
                    let normed = self.norm2.forward(&x)?;
                    (x, normed)
                }
            };
            drop(attended);
            self.feed_forward_into(&mut x, normed, FFN_CHUNK_BYTES, glue)?;
            return Ok(x);
        }
        let x = x.f_add(&self.ls1.forward(&self.attn.forward(self.norm1.forward(x)?, rope, attention, None)?)?)?;
        Ok(x.f_add(&self.ls2.forward(&self.mlp.forward(self.norm2.forward(&x)?, None)?)?)?)
    }

    /// `x += gamma * mlp(normed)` in place (the fused path's second residual update, in
    /// `glue`'s kernel when it takes the call), in chunks of rows of at most `chunk_bytes` of
    /// hidden activations (`FFN_CHUNK_BYTES`).
    fn feed_forward_into(&self, x: &mut Tensor, normed: Tensor, chunk_bytes: i64, glue: Option<&dyn GlueKernels>) -> Result<()> {
        let update = |x: &mut Tensor, fed: &Tensor| match glue.and_then(|g| g.residual_update(x, fed, &self.ls2.gamma)) {
            Some(done) => done,
            None => self.ls2.add_to_(x, fed),
        };
        let rows_per_chunk = (chunk_bytes / self.mlp.hidden_bytes_per_row().max(1)).max(1);
        let size = x.size();
        let (width, rows) = match size.split_last() {
            Some((&width, lead)) => (width, lead.iter().product::<i64>()),
            None => (0, 0),
        };
        if rows <= rows_per_chunk || !x.is_contiguous() || normed.size() != size {
            let fed = self.mlp.forward(normed, glue)?;
            return update(x, &fed);
        }
        // Row views of x's own storage: each chunk's update lands in x.
        let x_rows = x.f_view([rows, width])?;
        let normed_rows = normed.f_reshape([rows, width])?;
        let mut start = 0;
        while start < rows {
            let len = rows_per_chunk.min(rows - start);
            let fed = self.mlp.forward(normed_rows.f_narrow(0, start, len)?, glue)?;
            update(&mut x_rows.f_narrow(0, start, len)?, &fed)?;
            start += len;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use tch::Device;

    use super::*;

    /// A block of width 8 with random weights (GELU MLP or SwiGLU).
    fn random_block(swiglu: bool) -> Block {
        tch::manual_seed(7);
        let options = (Kind::Float, Device::Cpu);
        let (dim, hidden) = (8, 32);
        let ffn_hidden = (hidden * 2 / 3 + 7) / 8 * 8;
        let mut shapes: Vec<(String, Vec<i64>)> = vec![
            ("b.attn.qkv.weight".into(), vec![3 * dim, dim]),
            ("b.attn.qkv.bias".into(), vec![3 * dim]),
            ("b.attn.proj.weight".into(), vec![dim, dim]),
            ("b.attn.proj.bias".into(), vec![dim]),
        ];
        for norm in ["norm1", "norm2"] {
            shapes.push((format!("b.{norm}.weight"), vec![dim]));
            shapes.push((format!("b.{norm}.bias"), vec![dim]));
        }
        for ls in ["ls1", "ls2"] {
            shapes.push((format!("b.{ls}.gamma"), vec![dim]));
        }
        let ffn: [(&str, Vec<i64>); 4] = if swiglu {
            [
                ("w12.weight", vec![2 * ffn_hidden, dim]),
                ("w12.bias", vec![2 * ffn_hidden]),
                ("w3.weight", vec![dim, ffn_hidden]),
                ("w3.bias", vec![dim]),
            ]
        } else {
            [("fc1.weight", vec![hidden, dim]), ("fc1.bias", vec![hidden]), ("fc2.weight", vec![dim, hidden]), ("fc2.bias", vec![dim])]
        };
        shapes.extend(ffn.into_iter().map(|(name, shape)| (format!("b.mlp.{name}"), shape)));
        let tensors = shapes.into_iter().map(|(name, shape)| (name, Tensor::randn(shape, options))).collect::<BTreeMap<_, _>>();
        let mut w = WeightLoader::from_tensors(tensors, Device::Cpu);
        let cfg = BlockConfig { dim, num_heads: 2, mlp_ratio: hidden / dim, swiglu, qk_norm: false, rope: false, ln_eps: 1e-6 };
        let block = Block::new(&mut w, "b", &cfg, Kind::Float).unwrap();
        w.finish().unwrap();
        block
    }

    /// The feed-forward in chunks of rows gives each row what the whole pass gives it, and
    /// writes into the residual stream itself.
    #[test]
    fn feed_forward_in_chunks_of_rows_matches_one_pass() {
        for swiglu in [false, true] {
            let block = random_block(swiglu);
            let x = Tensor::randn([2, 37, 8], (Kind::Float, Device::Cpu));
            let normed = block.norm2.forward(&x).unwrap();
            let mut whole = crate::nn::copy(&x).unwrap();
            block.feed_forward_into(&mut whole, normed.shallow_clone(), FFN_CHUNK_BYTES, None).unwrap();
            // 5 rows per chunk: 74 rows in 15 chunks, the last one short.
            let chunk_bytes = 5 * block.mlp.hidden_bytes_per_row();
            let mut chunked = crate::nn::copy(&x).unwrap();
            let storage = chunked.data_ptr();
            block.feed_forward_into(&mut chunked, normed, chunk_bytes, None).unwrap();
            assert_eq!(chunked.data_ptr(), storage, "updated in place");
            let diff = (&chunked - &whole).abs().max().double_value(&[]);
            assert!(diff <= 1e-5, "swiglu {swiglu}: chunks differ from one pass by {diff}");
            assert!((&whole - &x).abs().max().double_value(&[]) > 1e-3, "the update did something");
        }
    }

    /// With glue kernels that take `linear_gelu`, every chunk's fc1 + GELU is one call to it
    /// (the tanh form); SwiGLU does not use it; without glue the exact GELU runs.
    #[test]
    fn the_glue_takes_fc1_and_its_gelu() {
        use std::sync::atomic::Ordering;

        use super::super::attention::tests::StandInGlue;
        let block = random_block(false);
        let x = Tensor::randn([2, 37, 8], (Kind::Float, Device::Cpu));
        let normed = block.norm2.forward(&x).unwrap();
        let glue = StandInGlue::default();
        let chunk_bytes = 5 * block.mlp.hidden_bytes_per_row();
        let mut got = crate::nn::copy(&x).unwrap();
        block.feed_forward_into(&mut got, normed.shallow_clone(), chunk_bytes, Some(&glue)).unwrap();
        assert_eq!(glue.linear_gelu.load(Ordering::Relaxed), 15, "one call per chunk of 5 rows");
        let Ffn::Mlp(mlp) = &block.mlp else { unreachable!() };
        let hidden = mlp.fc1.forward(&normed).unwrap();
        let tanh = &x + block.ls2.forward(&mlp.fc2.forward(&hidden.gelu("tanh")).unwrap()).unwrap();
        let exact = &x + block.ls2.forward(&mlp.fc2.forward(&hidden.gelu("none")).unwrap()).unwrap();
        assert!((&got - &tanh).abs().max().double_value(&[]) <= 1e-5);
        let mut without = crate::nn::copy(&x).unwrap();
        block.feed_forward_into(&mut without, normed, chunk_bytes, None).unwrap();
        assert!((&without - &exact).abs().max().double_value(&[]) <= 1e-5);
        assert!((&tanh - &exact).abs().max().double_value(&[]) > 0.0, "the two GELUs differ here");
        let swiglu = random_block(true);
        let mut y = crate::nn::copy(&x).unwrap();
        swiglu.feed_forward_into(&mut y, swiglu.norm2.forward(&x).unwrap(), FFN_CHUNK_BYTES, Some(&glue)).unwrap();
        assert_eq!(glue.linear_gelu.load(Ordering::Relaxed), 15, "SwiGLU has no GELU");
    }
}
