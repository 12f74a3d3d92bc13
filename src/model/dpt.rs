//! `model/dpt.py`: the `DPT` head of the metric and mono models (depth + sky), and the
//! DPT building blocks shared with `DualDPT` (scratch adapters and feature-fusion blocks).
use tch::{Kind, Tensor};

use super::HeadKernels;
use crate::config::{BackboneConfig, HeadConfig};
use crate::error::Result;
use crate::nn::{Conv2d, ConvTranspose2d, Convolution};
use crate::weights::WeightLoader;

/// `_make_scratch`: 3x3 adapters from each stage's width to `features` (no bias).
pub struct Scratch {
    pub layer_rn: [Conv2d; 4],
}

impl Scratch {
    pub fn new(w: &mut WeightLoader, prefix: &str, in_channels: &[i64; 4], features: i64, kind: Kind) -> Result<Self> {
        let conv = |w: &mut WeightLoader, i: usize| {
            Conv2d::new(w, &format!("{prefix}.layer{}_rn", i + 1), in_channels[i], features, 3, 1, 1, false, kind)
        };
        Ok(Scratch { layer_rn: [conv(w, 0)?, conv(w, 1)?, conv(w, 2)?, conv(w, 3)?] })
    }
}

/// `ResidualConvUnit`: x + conv2(relu(conv1(relu(x)))).
pub struct ResidualConvUnit {
    pub conv1: Conv2d,
    pub conv2: Conv2d,
}

impl ResidualConvUnit {
    pub fn convert(&mut self, kind: Kind, nhwc: bool) -> Result<()> {
        self.conv1.convert(kind, nhwc)?;
        self.conv2.convert(kind, nhwc)
    }

    pub fn new(w: &mut WeightLoader, prefix: &str, features: i64, kind: Kind) -> Result<Self> {
        Ok(ResidualConvUnit {
            conv1: Conv2d::new(w, &format!("{prefix}.conv1"), features, features, 3, 1, 1, true, kind)?,
            conv2: Conv2d::new(w, &format!("{prefix}.conv2"), features, features, 3, 1, 1, true, kind)?,
        })
    }

    pub fn forward(&self, x: &Tensor, kernels: Option<&dyn HeadKernels>) -> Result<Tensor> {
        let hidden = conv_then(&self.conv1, &x.f_relu()?, None, true, kernels)?;
        conv_then(&self.conv2, &hidden, Some(x), false, kernels)
    }
}

/// `conv(x)` (its bias included), `+ add` when given (x's shape, or (1, C, H, W) for every
/// view), then ReLU when `relu`: as the official's separate operations, or with the bias and
/// what follows in one pass through `kernels` when they take the call (the same values).
pub fn conv_then(
    conv: &dyn Convolution,
    x: &Tensor,
    add: Option<&Tensor>,
    relu: bool,
    kernels: Option<&dyn HeadKernels>,
) -> Result<Tensor> {
    let mut out = match (kernels, conv.bias()) {
        (Some(kernels), Some(bias)) => {
            let mut out = conv.output_unbiased(x)?;
            if let Some(done) = kernels.bias_epilogue(&mut out, bias, add, relu) {
                done?;
                return Ok(out);
            }
            // What libtorch does after a cuDNN convolution.
            let _same_tensor = out.f_add_(&bias.f_reshape([1, -1, 1, 1])?)?;
            out
        }
        _ => conv.output(x)?,
    };
    if let Some(add) = add {
        out = out.f_add(add)?;
    }
    if relu {
        out = out.f_relu()?;
    }
    Ok(out)
}

/// `F.interpolate(x, size, mode="bilinear", align_corners=True)`, through `kernels` when it
/// takes the call (the same values).
pub fn upsample_bilinear(x: &Tensor, size: (i64, i64), kernels: Option<&dyn HeadKernels>) -> Result<Tensor> {
    if let Some(upsampled) = kernels.and_then(|kernels| kernels.upsample_bilinear(x, size, None)) {
        return upsampled;
    }
    Ok(x.f_upsample_bilinear2d([size.0, size.1], true, None, None)?)
}

/// `FeatureFusionBlock`: optional residual merge of a lateral input, a residual unit,
/// bilinear upsampling (align_corners=True) and a 1x1 projection.
pub struct FeatureFusionBlock {
    pub res_conf_unit1: Option<ResidualConvUnit>,
    pub res_conf_unit2: ResidualConvUnit,
    pub out_conv: Conv2d,
}

impl FeatureFusionBlock {
    pub fn convert(&mut self, kind: Kind, nhwc: bool) -> Result<()> {
        if let Some(unit) = &mut self.res_conf_unit1 {
            unit.convert(kind, nhwc)?;
        }
        self.res_conf_unit2.convert(kind, nhwc)?;
        self.out_conv.convert(kind, nhwc)
    }

    pub fn new(w: &mut WeightLoader, prefix: &str, features: i64, has_residual: bool, kind: Kind) -> Result<Self> {
        Ok(FeatureFusionBlock {
            res_conf_unit1: if has_residual {
                Some(ResidualConvUnit::new(w, &format!("{prefix}.resConfUnit1"), features, kind)?)
            } else {
                None
            },
            res_conf_unit2: ResidualConvUnit::new(w, &format!("{prefix}.resConfUnit2"), features, kind)?,
            out_conv: Conv2d::new(w, &format!("{prefix}.out_conv"), features, features, 1, 1, 0, true, kind)?,
        })
    }

    /// The four fusion blocks `refinenet{1..4}{suffix}` under `prefix` (the last has no
    /// lateral input).
    pub fn new_chain(w: &mut WeightLoader, prefix: &str, suffix: &str, features: i64, kind: Kind) -> Result<[Self; 4]> {
        let mut block = |i: usize| Self::new(w, &format!("{prefix}.refinenet{i}{suffix}"), features, i != 4, kind);
        Ok([block(1)?, block(2)?, block(3)?, block(4)?])
    }

    /// `size`: output size; `None` doubles the input (official `scale_factor=2`).
    pub fn forward(
        &self,
        x: &Tensor,
        lateral: Option<&Tensor>,
        size: Option<(i64, i64)>,
        kernels: Option<&dyn HeadKernels>,
    ) -> Result<Tensor> {
        let mut y = x.shallow_clone();
        if let (Some(unit), Some(lateral)) = (&self.res_conf_unit1, lateral) {
            y = y.f_add(&unit.forward(lateral, kernels)?)?;
        }
        let y = self.res_conf_unit2.forward(&y, kernels)?;
        let (h, w) = match size {
            Some(size) => size,
            None => {
                let (_, _, h, w) = y.size4()?;
                (h * 2, w * 2)
            }
        };
        let y = upsample_bilinear(&y, (h, w), kernels)?;
        conv_then(&self.out_conv, &y, None, false, kernels)
    }
}

/// The (h, w) of a (B, C, h, w) map, as the `size` of `FeatureFusionBlock::forward`.
pub fn spatial_size(t: &Tensor) -> Result<Option<(i64, i64)>> {
    let (_, _, h, w) = t.size4()?;
    Ok(Some((h, w)))
}

/// Top-down fusion of the four adapted stages `rn` through a `refinenet` chain (4 -> 1).
pub fn fuse_chain(refinenet: &[FeatureFusionBlock; 4], rn: &[Tensor], kernels: Option<&dyn HeadKernels>) -> Result<Tensor> {
    let out = refinenet[3].forward(&rn[3], None, spatial_size(&rn[2])?, kernels)?;
    let out = refinenet[2].forward(&out, Some(&rn[2]), spatial_size(&rn[1])?, kernels)?;
    let out = refinenet[1].forward(&out, Some(&rn[1]), spatial_size(&rn[0])?, kernels)?;
    refinenet[0].forward(&out, Some(&rn[0]), None, kernels)
}

/// Runs `forward_chunk` on the views of `features` (the four (S, P, C) taken layers) in
/// chunks of at most `chunk_views`, moving each chunk to `device` (features made on other
/// devices come here chunk by chunk), and concatenates the outputs with `concat`.
pub fn forward_in_chunks<T>(
    features: &[Tensor],
    chunk_views: i64,
    device: tch::Device,
    mut forward_chunk: impl FnMut(&[Tensor]) -> Result<T>,
    concat: impl FnOnce(Vec<T>) -> Result<T>,
) -> Result<T> {
    let views = features.first().map_or(0, |f| f.size()[0]);
    let mut outs = Vec::new();
    let mut start = 0;
    while start < views {
        let len = chunk_views.min(views - start);
        let chunk = features.iter().map(|f| f.f_narrow(0, start, len)?.f_to_device(device)).collect::<std::result::Result<Vec<_>, _>>()?;
        outs.push(forward_chunk(&chunk)?);
        start += len;
    }
    if outs.len() == 1 {
        if let Some(only) = outs.pop() {
            return Ok(only);
        }
    }
    concat(outs)
}

/// `Tensor::cat` along the views of one field of every chunk's output.
pub fn cat_views<T>(outs: &[T], field: impl Fn(&T) -> &Tensor) -> Result<Tensor> {
    Ok(Tensor::f_cat(&outs.iter().map(field).collect::<Vec<_>>(), 0)?)
}

/// The per-stage spatial re-sizer of `DPT.resize_layers` and `DualDPT.resize_layers`: x4, x2,
/// identity, /2 relative to the patch grid.
pub enum ResizeLayer {
    Up(ConvTranspose2d),
    Identity,
    Down(Conv2d),
}

impl ResizeLayer {
    /// The four stages' re-sizers `{prefix}.resize_layers.{0..3}` for stage widths `oc`.
    pub fn new_stages(w: &mut WeightLoader, prefix: &str, oc: &[i64; 4], kind: Kind) -> Result<Vec<Self>> {
        let p = |i: usize| format!("{prefix}.resize_layers.{i}");
        Ok(vec![
            ResizeLayer::Up(ConvTranspose2d::new(w, &p(0), oc[0], oc[0], 4, 4, kind)?),
            ResizeLayer::Up(ConvTranspose2d::new(w, &p(1), oc[1], oc[1], 2, 2, kind)?),
            ResizeLayer::Identity,
            ResizeLayer::Down(Conv2d::new(w, &p(3), oc[3], oc[3], 3, 2, 1, true, kind)?),
        ])
    }

    pub fn convert(&mut self, kind: Kind, nhwc: bool) -> Result<()> {
        match self {
            ResizeLayer::Up(c) => c.convert(kind, nhwc),
            ResizeLayer::Down(c) => c.convert(kind, nhwc),
            ResizeLayer::Identity => Ok(()),
        }
    }

    pub fn forward(&self, x: &Tensor, kernels: Option<&dyn HeadKernels>) -> Result<Tensor> {
        match self {
            ResizeLayer::Up(c) => conv_then(c, x, None, false, kernels),
            ResizeLayer::Identity => Ok(x.shallow_clone()),
            ResizeLayer::Down(c) => conv_then(c, x, None, false, kernels),
        }
    }
}

/// `Sequential(conv3x3, ReLU, conv1x1)`: the `output_conv2` and `sky_output_conv2` stacks
/// (parameter indices 0 and 2; no LayerNorm since `use_ln_for_heads` is off in every preset).
pub struct OutputConvStack {
    pub conv0: Conv2d,
    pub conv2: Conv2d,
}

impl OutputConvStack {
    fn new(w: &mut WeightLoader, prefix: &str, in_ch: i64, hidden: i64, out_ch: i64, kind: Kind) -> Result<Self> {
        Ok(OutputConvStack {
            conv0: Conv2d::new(w, &format!("{prefix}.0"), in_ch, hidden, 3, 1, 1, true, kind)?,
            conv2: Conv2d::new(w, &format!("{prefix}.2"), hidden, out_ch, 1, 1, 0, true, kind)?,
        })
    }

    fn forward(&self, x: &Tensor, kernels: Option<&dyn HeadKernels>) -> Result<Tensor> {
        let hidden = conv_then(&self.conv0, x, None, true, kernels)?;
        conv_then(&self.conv2, &hidden, None, false, kernels)
    }
}

/// What `DPT` returns for a chunk of V views.
pub struct DptOutput {
    /// (V, H, W) depth after `exp`.
    pub depth: Tensor,
    /// (V, H, W) sky map after its ReLU: the official compares it with 0.3 (non-sky below,
    /// for depth filling and metric alignment) and 0.5 (the `Prediction.sky` mask).
    pub sky: Tensor,
    /// (V, 1, H, W) depth logits before activation (inspection and tests).
    pub logits: Tensor,
    /// (V, 1, H, W) sky logits before the ReLU.
    pub sky_logits: Tensor,
}

/// `DPT(dim_in, output_dim=1, features, out_channels)` with the official defaults of every
/// preset: identity token norm, no UV position embedding, `down_ratio` 1, `exp` depth
/// activation, sky head with ReLU. (The official class also has a value + confidence mode
/// for `output_dim > 1`, which no preset uses; `load_network` refuses it.)
pub struct DPT {
    pub projects: Vec<Conv2d>,
    pub resize_layers: Vec<ResizeLayer>,
    pub scratch: Scratch,
    pub refinenet: [FeatureFusionBlock; 4],
    pub output_conv1: Conv2d,
    pub output_conv2: OutputConvStack,
    pub sky_output_conv2: OutputConvStack,
}

impl DPT {
    /// Views per head pass, as the official `chunk_size`.
    pub const CHUNK_SIZE: i64 = 8;
    /// Width of the last hidden layer of both output stacks (`head_features_2`).
    const HEAD_FEATURES_2: i64 = 32;

    pub fn new(w: &mut WeightLoader, prefix: &str, cfg: &HeadConfig) -> Result<Self> {
        // The head runs in fp32 (the official disables autocast around it).
        let kind = Kind::Float;
        let oc = cfg.out_channels;
        let f = cfg.features;
        let p = |s: &str| format!("{prefix}.{s}");
        let projects = (0..4)
            .map(|i| Conv2d::new(w, &p(&format!("projects.{i}")), cfg.dim_in, oc[i], 1, 1, 0, true, kind))
            .collect::<Result<_>>()?;
        let resize_layers = ResizeLayer::new_stages(w, prefix, &oc, kind)?;
        let scratch = Scratch::new(w, &p("scratch"), &oc, f, kind)?;
        let refinenet = FeatureFusionBlock::new_chain(w, &p("scratch"), "", f, kind)?;
        let h2 = Self::HEAD_FEATURES_2;
        Ok(DPT {
            projects,
            resize_layers,
            scratch,
            refinenet,
            output_conv1: Conv2d::new(w, &p("scratch.output_conv1"), f, f / 2, 3, 1, 1, true, kind)?,
            output_conv2: OutputConvStack::new(w, &p("scratch.output_conv2"), f / 2, h2, cfg.output_dim, kind)?,
            sky_output_conv2: OutputConvStack::new(w, &p("scratch.sky_output_conv2"), f / 2, h2, 1, kind)?,
        })
    }

    /// `features`: the four (S, P, C) backbone outputs; image size H x W; `kernels`: see
    /// `Execution::head_kernels`.
    pub fn forward(&self, features: &[Tensor], height: i64, width: i64, kernels: Option<&dyn HeadKernels>) -> Result<DptOutput> {
        let device = self.projects[0].weight.device();
        forward_in_chunks(
            features,
            Self::CHUNK_SIZE,
            device,
            |chunk| self.forward_chunk(chunk, height, width, kernels),
            |outs| {
                Ok(DptOutput {
                    depth: cat_views(&outs, |o| &o.depth)?,
                    sky: cat_views(&outs, |o| &o.sky)?,
                    logits: cat_views(&outs, |o| &o.logits)?,
                    sky_logits: cat_views(&outs, |o| &o.sky_logits)?,
                })
            },
        )
    }

    fn forward_chunk(&self, features: &[Tensor], height: i64, width: i64, kernels: Option<&dyn HeadKernels>) -> Result<DptOutput> {
        let patch = BackboneConfig::PATCH_SIZE;
        let (ph, pw) = (height / patch, width / patch);
        let resized = features
            .iter()
            .enumerate()
            .map(|(stage, feat)| {
                let (b, _, c) = feat.size3()?;
                let x = feat.f_permute([0, 2, 1])?.f_contiguous()?.f_reshape([b, c, ph, pw])?;
                let projected = conv_then(&self.projects[stage], &x, None, false, kernels)?;
                self.resize_layers[stage].forward(&projected, kernels)
            })
            .collect::<Result<Vec<Tensor>>>()?;
        let fused = conv_then(&self.output_conv1, &self.fuse(&resized, kernels)?, None, false, kernels)?;
        let fused = upsample_bilinear(&fused, (ph * patch, pw * patch), kernels)?;
        let logits = self.output_conv2.forward(&fused, kernels)?;
        let depth = logits.f_exp()?.f_squeeze_dim(1)?;
        let sky_logits = self.sky_output_conv2.forward(&fused, kernels)?;
        let sky = sky_logits.f_relu()?.f_squeeze_dim(1)?;
        Ok(DptOutput { depth, sky, logits, sky_logits })
    }

    /// 4-level top-down fusion (refinenet4 -> 1), before `output_conv1`.
    fn fuse(&self, feats: &[Tensor], kernels: Option<&dyn HeadKernels>) -> Result<Tensor> {
        let rn = feats.iter().zip(&self.scratch.layer_rn).map(|(f, conv)| conv.forward(f)).collect::<Result<Vec<Tensor>>>()?;
        fuse_chain(&self.refinenet, &rn, kernels)
    }
}
