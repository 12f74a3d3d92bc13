//! `model/utils/head_utils.py`: the UV positional embedding added to head feature maps.
use tch::{Device, Kind, Tensor};

use super::shape_cache::ShapeCache;
use crate::error::Result;

/// (H, W, 2) grid spanning the image plane, normalised by its diagonal (aspect ratio W/H).
pub fn create_uv_grid(width: i64, height: i64, aspect_ratio: f64, device: Device) -> Result<Tensor> {
    let diag = (aspect_ratio * aspect_ratio + 1.0).sqrt();
    let span_x = aspect_ratio / diag;
    let span_y = 1.0 / diag;
    let x_extent = span_x * (width - 1) as f64 / width as f64;
    let y_extent = span_y * (height - 1) as f64 / height as f64;
    let xs = Tensor::f_linspace(-x_extent, x_extent, width, (Kind::Float, device))?;
    let ys = Tensor::f_linspace(-y_extent, y_extent, height, (Kind::Float, device))?;
    let uu = xs.f_unsqueeze(0)?.f_expand([height, width], false)?;
    let vv = ys.f_unsqueeze(1)?.f_expand([height, width], false)?;
    Ok(Tensor::f_stack(&[uu, vv], -1)?)
}

/// 1-D sin/cos embedding of `pos` (M,) into (M, dim).
pub fn make_sincos_pos_embed(dim: i64, pos: &Tensor, omega_0: f64) -> Result<Tensor> {
    let omega = Tensor::f_arange(dim / 2, (Kind::Float, pos.device()))?.f_div_scalar(dim as f64 / 2.0)?;
    // Made on the device (no host copy, so the forward can be captured in a CUDA graph).
    let omega = Tensor::f_full([], omega_0 as f32 as f64, (Kind::Float, pos.device()))?.f_pow(&omega)?.f_reciprocal()?;
    let out = pos.f_reshape([-1, 1])?.f_mul(&omega.f_unsqueeze(0)?)?;
    Ok(Tensor::f_cat(&[out.f_sin()?, out.f_cos()?], 1)?)
}

/// (H, W, 2) grid -> (H, W, dim): x coordinates fill the first half, y the second.
pub fn position_grid_to_embed(grid: &Tensor, dim: i64, omega_0: f64) -> Result<Tensor> {
    let (h, w, _) = grid.size3()?;
    let flat = grid.f_reshape([-1, 2])?;
    let emb_x = make_sincos_pos_embed(dim / 2, &flat.f_select(1, 0)?, omega_0)?;
    let emb_y = make_sincos_pos_embed(dim / 2, &flat.f_select(1, 1)?, omega_0)?;
    Ok(Tensor::f_cat(&[emb_x, emb_y], -1)?.f_reshape([h, w, dim])?)
}

/// The (1, C, h, w) UV embedding (scaled by 0.1) of a C-channel h x w map of an image of size
/// W x H, in `kind` on `device`.
fn pos_embed(c: i64, h: i64, w: i64, image_width: i64, image_height: i64, kind: Kind, device: Device) -> Result<Tensor> {
    const RATIO: f64 = 0.1;
    const OMEGA_0: f64 = 100.0;
    let grid = create_uv_grid(w, h, image_width as f64 / image_height as f64, device)?;
    let pe = position_grid_to_embed(&grid, c, OMEGA_0)?.f_mul_scalar(RATIO)?;
    Ok(pe.f_permute([2, 0, 1])?.f_unsqueeze(0)?.f_to_kind(kind)?)
}

/// What a UV embedding depends on: channels, map size, image size, kind, device.
type PosEmbedKey = (i64, i64, i64, i64, i64, Kind, Device);

/// The UV embeddings a head adds, kept by what they depend on (`ShapeCache`): the official
/// recomputes them in every forward (sin and cos of every channel of every pixel of the
/// full-resolution map, in fp32, per chunk of views), though they depend on the shapes only.
/// Same operations, same values; at most `POS_EMBED_CACHE_BYTES` kept.
pub struct PosEmbedCache {
    kept: ShapeCache<PosEmbedKey>,
}

/// The most bytes of embeddings a head keeps (a 336x504 input's largest, 128 channels at full
/// resolution, is 41 MiB in bf16).
pub const POS_EMBED_CACHE_BYTES: i64 = 256 << 20;

impl Default for PosEmbedCache {
    fn default() -> Self {
        PosEmbedCache { kept: ShapeCache::new(usize::MAX, POS_EMBED_CACHE_BYTES) }
    }
}

impl PosEmbedCache {
    /// `x + embedding` of a (B, C, h, w) map of an image of size W x H, written into `x` (which
    /// the caller hands over).
    pub fn add_to(&self, mut x: Tensor, image_width: i64, image_height: i64) -> Result<Tensor> {
        let (_, c, h, w) = x.size4()?;
        let (kind, device) = (x.kind(), x.device());
        let key = (c, h, w, image_width, image_height, kind, device);
        let pe = self.kept.get_or_make(key, || pos_embed(c, h, w, image_width, image_height, kind, device))?;
        let _same_tensor = x.f_add_(&pe)?;
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cached embedding is added as the official adds it, also to the channels-last maps
    /// of the accelerated head, and entries are kept by shape and kind.
    #[test]
    fn cached_embeddings_give_the_official_sum() {
        let cache = PosEmbedCache::default();
        for (kind, nhwc) in [(Kind::Float, false), (Kind::BFloat16, true), (Kind::Float, false)] {
            let x = Tensor::randn([2, 8, 6, 10], (Kind::Float, Device::Cpu)).to_kind(kind);
            let x = if nhwc { crate::nn::channels_last(&x).unwrap() } else { x };
            let expected = x.f_add(&pos_embed(8, 6, 10, 140, 84, kind, Device::Cpu).unwrap()).unwrap();
            let got = cache.add_to(crate::nn::copy(&x).unwrap(), 140, 84).unwrap();
            assert_eq!(got.kind(), kind);
            assert!(got.equal(&expected), "{kind:?}: the cached sum differs");
            assert!(!got.equal(&x), "the embedding was added");
        }
        assert_eq!(cache.kept.len(), 2, "one entry per kind, reused");
    }
}
