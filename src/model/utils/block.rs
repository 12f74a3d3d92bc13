//! `model/utils/block.py`: the transformer block of the camera encoder. It has the same
//! parameters and forward as the DINOv2 block, with PyTorch's default LayerNorm epsilon,
//! no QK-norm and no RoPE.
use tch::Kind;

use crate::error::Result;
use crate::model::dinov2::layers::block::{Block, BlockConfig};
use crate::weights::WeightLoader;

pub fn new_block(w: &mut WeightLoader, prefix: &str, dim: i64, num_heads: i64, kind: Kind) -> Result<Block> {
    let cfg = BlockConfig { dim, num_heads, mlp_ratio: 4, swiglu: false, qk_norm: false, rope: false, ln_eps: 1e-5 };
    Block::new(w, prefix, &cfg, kind)
}
