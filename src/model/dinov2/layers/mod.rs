//! `depth_anything_3/model/dinov2/layers`.
pub mod attention;
pub mod block;
pub mod layer_scale;
pub mod mlp;
pub mod patch_embed;
pub mod rope;
pub mod swiglu_ffn;

pub use attention::Attention;
pub use block::{Block, Ffn};
pub use layer_scale::LayerScale;
pub use mlp::Mlp;
pub use patch_embed::PatchEmbed;
pub use rope::{PositionGetter, RotaryPositionEmbedding2D};
pub use swiglu_ffn::SwiGLUFFNFused;
