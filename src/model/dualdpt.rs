//! `model/dualdpt.py`: the any-view head. A main branch predicts depth and its confidence;
//! an auxiliary branch predicts per-pixel rays. The ray branch is only needed for ray-based
//! pose, so it is loaded (strict loading) but computed only on request (`with_rays`).
use tch::{Kind, Tensor};

use super::dpt::{cat_views, conv_then, forward_in_chunks, fuse_chain, FeatureFusionBlock, ResizeLayer, Scratch};
use super::utils::head_utils::PosEmbedCache;
use super::HeadKernels;
use crate::config::{BackboneConfig, HeadConfig};
use crate::error::Result;
use crate::nn::{Conv2d, LayerNorm};
use crate::weights::WeightLoader;

/// `output_conv2`: 3x3 conv -> ReLU -> 1x1 conv.
pub struct OutputConv2 {
    pub conv0: Conv2d,
    pub conv2: Conv2d,
}

/// The auxiliary (ray) branch: its own fusion chain and output stacks.
pub struct AuxBranch {
    pub refinenet: [FeatureFusionBlock; 4],
    /// Per level: five 3x3 convs (only the last level's is run).
    pub output_conv1_aux: Vec<Vec<Conv2d>>,
    /// Per level: 3x3 conv, LayerNorm over channels (one module shared by all levels), 1x1 conv.
    pub output_conv2_aux: Vec<(Conv2d, Conv2d)>,
    pub output_conv2_aux_norm: LayerNorm,
}

/// Head outputs for one chunk of views.
pub struct DualDptOutput {
    /// (V, H, W) depth after `exp`.
    pub depth: Tensor,
    /// (V, H, W) confidence after `exp + 1`.
    pub depth_conf: Tensor,
    /// (V, 2, H, W) main-branch logits before activation (for inspection and tests).
    pub logits: Tensor,
    /// (V, h, w, 6) per-pixel ray direction and origin from the auxiliary branch, at 8x the
    /// patch grid; only when asked for (ray-based pose).
    pub ray: Option<Tensor>,
    /// (V, h, w) ray confidence after `exp + 1`.
    pub ray_conf: Option<Tensor>,
}

pub struct DualDPT {
    pub norm: LayerNorm,
    pub projects: Vec<Conv2d>,
    pub resize_layers: Vec<ResizeLayer>,
    pub scratch: Scratch,
    pub refinenet: [FeatureFusionBlock; 4],
    pub output_conv1: Conv2d,
    pub output_conv2: OutputConv2,
    pub aux: AuxBranch,
    /// Views per head pass (`HEAD_CHUNK_SIZE`; the accelerated runner uses fewer to lower the
    /// peak memory: the head's full-resolution activations dominate it at many views).
    pub chunk_views: i64,
    /// The UV embeddings added to the feature maps, made once per shape.
    pos_embeds: PosEmbedCache,
}

/// Views per head pass: the official processes 8 at a time to bound memory.
pub const HEAD_CHUNK_SIZE: i64 = 8;

impl DualDPT {
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
        let aux_refinenet = FeatureFusionBlock::new_chain(w, &p("scratch"), "_aux", f, kind)?;
        let (h1, h2) = (f, 32);
        let output_conv1 = Conv2d::new(w, &p("scratch.output_conv1"), h1, h1 / 2, 3, 1, 1, true, kind)?;
        let output_conv2 = OutputConv2 {
            conv0: Conv2d::new(w, &p("scratch.output_conv2.0"), h1 / 2, h2, 3, 1, 1, true, kind)?,
            conv2: Conv2d::new(w, &p("scratch.output_conv2.2"), h2, cfg.output_dim, 1, 1, 0, true, kind)?,
        };
        const AUX_LEVELS: usize = 4;
        let output_conv1_aux = (0..AUX_LEVELS)
            .map(|l| {
                let chans = [(h1, h1 / 2), (h1 / 2, h1), (h1, h1 / 2), (h1 / 2, h1), (h1, h1 / 2)];
                chans
                    .iter()
                    .enumerate()
                    .map(|(j, &(i, o))| Conv2d::new(w, &p(&format!("scratch.output_conv1_aux.{l}.{j}")), i, o, 3, 1, 1, true, kind))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<_>>()?;
        // Sequential(conv, Permute, LayerNorm, Permute, ReLU, conv): indices 0, 2, 5.
        let output_conv2_aux = (0..AUX_LEVELS)
            .map(|l| {
                Ok((
                    Conv2d::new(w, &p(&format!("scratch.output_conv2_aux.{l}.0")), h1 / 2, h2, 3, 1, 1, true, kind)?,
                    Conv2d::new(w, &p(&format!("scratch.output_conv2_aux.{l}.5")), h2, 7, 1, 1, 0, true, kind)?,
                ))
            })
            .collect::<Result<_>>()?;
        let shared_norm_names: Vec<String> = (0..AUX_LEVELS).map(|l| p(&format!("scratch.output_conv2_aux.{l}.2"))).collect();
        let output_conv2_aux_norm = LayerNorm::new_shared(w, &shared_norm_names, h2, LayerNorm::DEFAULT_EPS)?;
        Ok(DualDPT {
            norm: LayerNorm::new(w, &p("norm"), cfg.dim_in, LayerNorm::DEFAULT_EPS)?,
            projects,
            resize_layers,
            scratch,
            refinenet,
            output_conv1,
            output_conv2,
            aux: AuxBranch { refinenet: aux_refinenet, output_conv1_aux, output_conv2_aux, output_conv2_aux_norm },
            chunk_views: HEAD_CHUNK_SIZE,
            pos_embeds: PosEmbedCache::default(),
        })
    }

    /// Runs the main (depth) branch's convolutions in `kind` instead of fp32: the accelerated
    /// runner's reduced-precision head. The last 1x1 convolution (the logits) stays fp32, and
    /// so do the LayerNorm and the ray branch (ray pose fits cameras to its output). `nhwc`:
    /// weights in channels-last order, so the branch runs channels-last from the first conv.
    /// Load-time weight preparation, before any forward.
    pub fn convert_main_branch(&mut self, kind: Kind, chunk_views: i64, nhwc: bool) -> Result<()> {
        self.chunk_views = chunk_views;
        for conv in &mut self.projects {
            conv.convert(kind, nhwc)?;
        }
        for layer in &mut self.resize_layers {
            layer.convert(kind, nhwc)?;
        }
        for conv in &mut self.scratch.layer_rn {
            conv.convert(kind, nhwc)?;
        }
        for block in &mut self.refinenet {
            block.convert(kind, nhwc)?;
        }
        self.output_conv1.convert(kind, nhwc)?;
        self.output_conv2.conv0.convert(kind, nhwc)
    }

    /// `features`: the four (S, P, C) backbone outputs; image size H x W. `with_rays` also
    /// runs the auxiliary branch for the rays (`ray`, `ray_conf`).
    /// `kernels`: see `Execution::head_kernels`.
    pub fn forward(
        &self,
        features: &[Tensor],
        height: i64,
        width: i64,
        with_rays: bool,
        kernels: Option<&dyn HeadKernels>,
    ) -> Result<DualDptOutput> {
        let device = self.projects[0].weight.device();
        forward_in_chunks(
            features,
            self.chunk_views.clamp(1, HEAD_CHUNK_SIZE),
            device,
            |chunk| self.forward_chunk(chunk, height, width, with_rays, kernels),
            |outs| {
                let cat_optional = |field: fn(&DualDptOutput) -> Option<&Tensor>| -> Result<Option<Tensor>> {
                    let parts: Option<Vec<&Tensor>> = outs.iter().map(field).collect();
                    Ok(parts.map(|p| Tensor::f_cat(&p, 0)).transpose()?)
                };
                Ok(DualDptOutput {
                    depth: cat_views(&outs, |o| &o.depth)?,
                    depth_conf: cat_views(&outs, |o| &o.depth_conf)?,
                    logits: cat_views(&outs, |o| &o.logits)?,
                    ray: cat_optional(|o| o.ray.as_ref())?,
                    ray_conf: cat_optional(|o| o.ray_conf.as_ref())?,
                })
            },
        )
    }

    fn forward_chunk(
        &self,
        features: &[Tensor],
        height: i64,
        width: i64,
        with_rays: bool,
        kernels: Option<&dyn HeadKernels>,
    ) -> Result<DualDptOutput> {
        let patch = BackboneConfig::PATCH_SIZE;
        let (ph, pw) = (height / patch, width / patch);
        let resized = features
            .iter()
            .enumerate()
            .map(|(stage, feat)| {
                let (b, _, c) = feat.size3()?;
                let x = self.norm.forward(feat)?.f_permute([0, 2, 1])?.f_reshape([b, c, ph, pw])?;
                let x = self.pos_embeds.conv_and_add(&self.projects[stage], &x, width, height, kernels)?;
                self.resize_layers[stage].forward(&x, kernels)
            })
            .collect::<Result<Vec<Tensor>>>()?;
        let rn = resized.iter().zip(&self.scratch.layer_rn).map(|(f, conv)| conv.forward(f)).collect::<Result<Vec<Tensor>>>()?;
        let fused = conv_then(&self.output_conv1, &fuse_chain(&self.refinenet, &rn, kernels)?, None, false, kernels)?;
        let fused = self.pos_embeds.upsample_and_add(&fused, (ph * patch, pw * patch), width, height, kernels)?;
        let hidden = conv_then(&self.output_conv2.conv0, &fused, None, true, kernels)?;
        let logits = conv_then(&self.output_conv2.conv2, &hidden, None, false, kernels)?;
        let depth = logits.f_select(1, 0)?.f_exp()?;
        let depth_conf = logits.f_select(1, 1)?.f_exp()?.f_add_scalar(1.0)?;
        let (ray, ray_conf) = if with_rays {
            let aux_logits = self.aux_last_level_logits(&rn, width, height, kernels)?;
            // Channels last: 6 linear ray channels, then the confidence.
            let fmap = aux_logits.f_permute([0, 2, 3, 1])?;
            (Some(fmap.f_narrow(3, 0, 6)?), Some(fmap.f_select(3, 6)?.f_exp()?.f_add_scalar(1.0)?))
        } else {
            (None, None)
        };
        Ok(DualDptOutput { depth, depth_conf, logits, ray, ray_conf })
    }

    /// The auxiliary fusion chain and the last level's output stack (the official computes
    /// `output_conv1_aux` for every level and returns only the last one).
    fn aux_last_level_logits(&self, rn: &[Tensor], width: i64, height: i64, kernels: Option<&dyn HeadKernels>) -> Result<Tensor> {
        let aux = &self.aux;
        let mut out = fuse_chain(&aux.refinenet, rn, kernels)?;
        let last = aux.output_conv1_aux.len() - 1;
        // Five 3x3 convolutions with no activation between them, as in the official; the UV
        // embedding is added to the last one's output.
        let convs = &aux.output_conv1_aux[last];
        if let Some((final_conv, first)) = convs.split_last() {
            for conv in first {
                out = conv_then(conv, &out, None, false, kernels)?;
            }
            out = self.pos_embeds.conv_and_add(final_conv, &out, width, height, kernels)?;
        } else {
            out = self.pos_embeds.add_to(out, width, height)?;
        }
        let (conv0, conv5) = &aux.output_conv2_aux[last];
        let x = conv_then(conv0, &out, None, false, kernels)?;
        // LayerNorm over the channels: (B, C, h, w) -> (B, h, w, C) and back.
        let x = aux.output_conv2_aux_norm.forward(&x.f_permute([0, 2, 3, 1])?)?.f_permute([0, 3, 1, 2])?.f_relu()?;
        conv5.forward(&x)
    }
}
