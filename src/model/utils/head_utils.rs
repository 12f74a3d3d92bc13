//! `model/utils/head_utils.py`: the UV positional embedding added to head feature maps.
use tch::{Device, Kind, Tensor};

use super::shape_cache::ShapeCache;
use crate::error::Result;
use crate::model::dpt::{conv_then, upsample_bilinear};
use crate::nn::Conv2d;
use crate::model::HeadKernels;

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
/// W x H, in `kind` on `device`. Stored channels-last (a view of the (h, w, C) embedding).
fn pos_embed(c: i64, h: i64, w: i64, image_width: i64, image_height: i64, kind: Kind, device: Device) -> Result<Tensor> {
    const RATIO: f64 = 0.1;
    const OMEGA_0: f64 = 100.0;
    let grid = create_uv_grid(w, h, image_width as f64 / image_height as f64, device)?;
    let pe = if kind == Kind::Float || c % 2 != 0 {
        position_grid_to_embed(&grid, c, OMEGA_0)?.f_mul_scalar(RATIO)?.f_to_kind(kind)?
    } else {
        separable_embed(&grid, c, RATIO, OMEGA_0, kind)?
    };
    Ok(pe.f_permute([2, 0, 1])?.f_unsqueeze(0)?)
}

/// `position_grid_to_embed(grid, c) * ratio` converted to a reduced `kind`, made without its
/// fp32 temporaries: x varies along the width only and y along the height only, so each
/// distinct coordinate is embedded once (the same element-wise operations on the same values)
/// and broadcast into the (h, w, C) result. At full resolution (128 channels, 336x504) the
/// official sequence holds two 83 MiB fp32 maps at once, the largest allocation of a 1-view
/// accelerated forward; this holds the 41 MiB result only. fp32 keeps the official sequence
/// (its CPU results are compared bit for bit, and vectorised sin may round a tail element
/// differently).
fn separable_embed(grid: &Tensor, c: i64, ratio: f64, omega_0: f64, kind: Kind) -> Result<Tensor> {
    let (h, w, _) = grid.size3()?;
    let half = c / 2;
    let xs = grid.f_select(0, 0)?.f_select(1, 0)?;
    let ys = grid.f_select(1, 0)?.f_select(1, 1)?;
    let emb_x = make_sincos_pos_embed(half, &xs, omega_0)?.f_mul_scalar(ratio)?;
    let emb_y = make_sincos_pos_embed(half, &ys, omega_0)?.f_mul_scalar(ratio)?;
    let pe = Tensor::f_empty([h, w, c], (kind, grid.device()))?;
    pe.f_narrow(2, 0, half)?.f_copy_(&emb_x.f_unsqueeze(0)?.f_expand([h, w, half], false)?)?;
    pe.f_narrow(2, half, half)?.f_copy_(&emb_y.f_unsqueeze(1)?.f_expand([h, w, half], false)?)?;
    Ok(pe)
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
        let pe = self.embedding(&x, c, (h, w), image_width, image_height)?;
        let _same_tensor = x.f_add_(&pe)?;
        Ok(x)
    }

    /// `add_to(interpolate(x, size, mode="bilinear", align_corners=True))`, in one pass through
    /// `kernels` when it takes the call (the same values).
    pub fn upsample_and_add(
        &self,
        x: &Tensor,
        size: (i64, i64),
        image_width: i64,
        image_height: i64,
        kernels: Option<&dyn HeadKernels>,
    ) -> Result<Tensor> {
        if let Some(kernels) = kernels {
            let (_, c, _, _) = x.size4()?;
            let pe = self.embedding(x, c, size, image_width, image_height)?;
            if let Some(summed) = kernels.upsample_bilinear(x, size, Some(&pe)) {
                return summed;
            }
        }
        self.add_to(upsample_bilinear(x, size, None)?, image_width, image_height)
    }

    /// `add_to(conv(x))`, with the convolution's bias and the embedding added in one pass
    /// through `kernels` when they take the call (the same values).
    pub fn conv_and_add(
        &self,
        conv: &Conv2d,
        x: &Tensor,
        image_width: i64,
        image_height: i64,
        kernels: Option<&dyn HeadKernels>,
    ) -> Result<Tensor> {
        let Some(kernels) = kernels else {
            return self.add_to(conv.forward(x)?, image_width, image_height);
        };
        let (_, _, h, w) = x.size4()?;
        let (c, out_h, out_w) = conv.output_shape(h, w);
        let pe = self.embedding_of(c, (out_h, out_w), image_width, image_height, conv.weight.kind(), x.device())?;
        conv_then(conv, x, Some(&pe), false, Some(kernels))
    }

    /// The embedding of a `c`-channel map of `size` for an image of W x H, in `like`'s kind on
    /// its device.
    fn embedding(&self, like: &Tensor, c: i64, size: (i64, i64), image_width: i64, image_height: i64) -> Result<Tensor> {
        self.embedding_of(c, size, image_width, image_height, like.kind(), like.device())
    }

    fn embedding_of(&self, c: i64, size: (i64, i64), image_width: i64, image_height: i64, kind: Kind, device: Device) -> Result<Tensor> {
        let (h, w) = size;
        let key = (c, h, w, image_width, image_height, kind, device);
        self.kept.get_or_make(key, || pos_embed(c, h, w, image_width, image_height, kind, device))
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

    /// The reduced-precision embedding, made per distinct coordinate, holds the values of the
    /// official sequence (embed every pixel, scale, convert).
    #[test]
    fn separable_embedding_gives_the_official_values() {
        for (c, h, w, iw, ih) in [(128, 24, 36, 504, 336), (64, 7, 5, 70, 98), (256, 12, 18, 252, 168)] {
            let grid = create_uv_grid(w, h, iw as f64 / ih as f64, Device::Cpu).unwrap();
            let official = position_grid_to_embed(&grid, c, 100.0).unwrap().f_mul_scalar(0.1).unwrap();
            for kind in [Kind::BFloat16, Kind::Half] {
                let got = pos_embed(c, h, w, iw, ih, kind, Device::Cpu).unwrap();
                let expected = official.to_kind(kind).permute([2, 0, 1]).unsqueeze(0);
                assert_eq!(got.size(), expected.size());
                assert!(got.equal(&expected), "{kind:?}, {c} channels, {h}x{w}: values differ");
            }
        }
    }

    /// Resampling kernels that count their calls and compute libtorch's values (`takes`), or
    /// decline every call.
    struct CountingKernels {
        takes: bool,
        calls: std::sync::atomic::AtomicUsize,
    }

    impl HeadKernels for CountingKernels {
        fn upsample_bilinear(&self, x: &Tensor, size: (i64, i64), add: Option<&Tensor>) -> Option<Result<Tensor>> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let up = x.upsample_bilinear2d([size.0, size.1], true, None, None);
            self.takes.then(|| Ok(add.map_or_else(|| up.shallow_clone(), |a| &up + a)))
        }

        fn bias_epilogue(&self, out: &mut Tensor, bias: &Tensor, add: Option<&Tensor>, relu: bool) -> Option<Result<()>> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if !self.takes {
                return None;
            }
            *out += bias.reshape([1, -1, 1, 1]);
            if let Some(add) = add {
                *out += add;
            }
            if relu {
                let _ = out.relu_();
            }
            Some(Ok(()))
        }
    }

    /// A convolution's bias and what follows it go to the kernels in one call, with the
    /// cached embedding, and give the official's values whether the kernels take the call or
    /// decline it.
    #[test]
    fn conv_epilogues_go_through_the_kernels() {
        let cache = PosEmbedCache::default();
        let tensors = std::collections::BTreeMap::from([
            ("c.weight".to_owned(), Tensor::randn([16, 8, 3, 3], (Kind::Float, Device::Cpu))),
            ("c.bias".to_owned(), Tensor::randn([16], (Kind::Float, Device::Cpu))),
        ]);
        let mut w = crate::weights::WeightLoader::from_tensors(tensors, Device::Cpu);
        let conv = Conv2d::new(&mut w, "c", 8, 16, 3, 1, 1, true, Kind::Float).unwrap();
        let x = Tensor::randn([2, 8, 5, 7], (Kind::Float, Device::Cpu));
        let residual = Tensor::randn([2, 16, 5, 7], (Kind::Float, Device::Cpu));
        let official = conv.forward(&x).unwrap();
        let with_embedding = cache.add_to(crate::nn::copy(&official).unwrap(), 140, 98).unwrap();
        let relu_of_sum = (&official + &residual).relu();
        for takes in [true, false] {
            let kernels = CountingKernels { takes, calls: Default::default() };
            let got = cache.conv_and_add(&conv, &x, 140, 98, Some(&kernels)).unwrap();
            assert!(got.allclose(&with_embedding, 1e-5, 1e-5, false), "takes {takes}: conv + embedding");
            let got = conv_then(&conv, &x, Some(&residual), true, Some(&kernels)).unwrap();
            assert!(got.allclose(&relu_of_sum, 1e-5, 1e-5, false), "takes {takes}: relu(conv + residual)");
            assert_eq!(kernels.calls.into_inner(), 2, "takes {takes}: asked once per convolution");
        }
        assert!(conv_then(&conv, &x, Some(&residual), true, None).unwrap().equal(&relu_of_sum));
    }

    /// The upsampling and the embedding go to the kernels with the cached embedding, and give
    /// what libtorch's upsample and add give whether the kernels take the call or decline it.
    #[test]
    fn upsample_and_add_goes_through_the_kernels() {
        let cache = PosEmbedCache::default();
        let x = crate::nn::channels_last(&Tensor::randn([2, 8, 5, 7], (Kind::Float, Device::Cpu))).unwrap();
        let size = (14, 21);
        let expected = cache
            .add_to(x.upsample_bilinear2d([size.0, size.1], true, None, None), 294, 196)
            .unwrap();
        for takes in [true, false] {
            let kernels = CountingKernels { takes, calls: Default::default() };
            let got = cache.upsample_and_add(&x, size, 294, 196, Some(&kernels)).unwrap();
            assert!(got.equal(&expected), "takes {takes}: a different sum");
            assert_eq!(kernels.calls.into_inner(), 1, "takes {takes}: asked once");
        }
        assert!(cache.upsample_and_add(&x, size, 294, 196, None).unwrap().equal(&expected));
    }
}
