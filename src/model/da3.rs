//! `model/da3.py`: `DepthAnything3Net` (backbone + DualDPT or DPT head + optional camera
//! decoder) and `NestedDepthAnything3Net` (an any-view and a metric `DepthAnything3Net`, the
//! metric one putting the other's depth and poses in metres). Known cameras (the camera
//! encoder), ray-based pose and exported features follow the official forward's arguments.
use tch::{Kind, Tensor};

use super::cam_dec::CameraDec;
use super::cam_enc::{CameraEnc, CameraEncoder};
use super::dinov2::DinoV2;
use super::dpt::DPT;
use super::dualdpt::DualDPT;
use super::execution::Execution;
use super::reference_view_selector::RefViewStrategy;
use super::utils::alignment::{
    apply_metric_scaling, compute_alignment_mask, compute_sky_mask, least_squares_scale_scalar, quantile,
    set_sky_regions_to_max_depth, MIN_REGION_PIXELS, SKY_DEPTH_CAP, SKY_THRESHOLD,
};
use super::utils::transform::pose_encoding_to_extrinsics_intrinsics;
use crate::config::{BackboneConfig, HeadKind, ModelConfig};
use super::warning::Warning;
use crate::error::{Error, Result};
use crate::nn::copy;
use crate::utils::geometry::affine_inverse;
use crate::utils::ray_utils::get_extrinsic_from_camray;
use crate::weights::WeightLoader;

/// Intermediate tensors, kept when asked for (parity tests, debugging).
pub struct Trace {
    /// The four (S, P, C) features handed to the head.
    pub features: Vec<Tensor>,
    /// The four (S, C) camera tokens (token 0 of each taken layer: the class token when the
    /// backbone has no camera token).
    pub camera_tokens: Vec<Tensor>,
    /// (S, C, H, W) head logits before activation: depth and confidence (DualDPT, C = 2) or
    /// depth (DPT, C = 1).
    pub head_logits: Tensor,
    /// DPT: (S, 1, H, W) sky logits before the ReLU.
    pub sky_logits: Option<Tensor>,
    pub reference_view: Option<i64>,
    /// DPT: the depth `_process_mono_sky_estimation` gave the sky pixels (0-dim), if it did.
    pub sky_fill_depth: Option<Tensor>,
    /// Nested models: the metric branch and the alignment's statistics.
    pub nested: Option<Box<NestedTrace>>,
    /// (S, C) camera-encoder tokens of the known cameras, when given.
    pub camera_encoding: Option<Tensor>,
    /// (S, h, w, 6) rays and (S, h, w) their confidence, when ray-based pose ran.
    pub ray: Option<Tensor>,
    pub ray_conf: Option<Tensor>,
}

/// What `NestedDepthAnything3Net` computed on the way (its `Trace` is the any-view branch's).
pub struct NestedTrace {
    /// The metric branch's own output (with its trace), before metric scaling.
    pub metric: NetOutput,
    /// (S, H, W) the metric branch's depth after `apply_metric_scaling`, metres.
    pub metric_depth: Tensor,
    /// The any-view branch's depth, confidence and extrinsics before alignment.
    pub unaligned_depth: Tensor,
    pub unaligned_depth_conf: Tensor,
    pub unaligned_extrinsics: Tensor,
    /// Median confidence of the non-sky pixels (0-dim), if the alignment ran.
    pub median_conf: Option<Tensor>,
    /// Pixels used by the least-squares fit, if the alignment ran.
    pub alignment_pixels: Option<i64>,
    /// Depth given to sky pixels after the alignment (0-dim, capped at 200), if it ran.
    pub sky_fill_depth: Option<Tensor>,
}

/// Network outputs for one scene of S views, fp32 on the model's device.
pub struct NetOutput {
    /// (S, H, W). Any-view and mono models: relative depth. da3metric-large: depth for a
    /// canonical focal length of 300 pixels (metres = depth * focal / 300, see
    /// `utils::alignment::apply_metric_scaling`). Nested: metres (`is_metric`). Models with
    /// a sky head give sky pixels a far depth (the 99th percentile of the rest, capped at
    /// 200 for the nested model).
    pub depth: Tensor,
    /// (S, H, W) confidence; `None` for the DPT models (metric, mono).
    pub depth_conf: Option<Tensor>,
    /// (S, 3, 4) world-to-camera; `None` for models without a camera decoder.
    pub extrinsics: Option<Tensor>,
    /// (S, 3, 3); `None` for models without a camera decoder.
    pub intrinsics: Option<Tensor>,
    /// (S, H, W) sky map after its ReLU (DPT head; the nested model's metric branch).
    pub sky: Option<Tensor>,
    /// Depth and extrinsic translations are in metres (the nested model, once aligned).
    pub is_metric: bool,
    /// Nested: the factor that took the any-view depth and translations to metres.
    pub scale_factor: Option<f32>,
    /// Conditions the caller should know about (e.g. the metric alignment was skipped).
    pub warnings: Vec<Warning>,
    /// Requested backbone features (official `aux`): (block index, (S, H/14, W/14, C)).
    pub exported_features: Vec<(usize, Tensor)>,
    pub trace: Option<Trace>,
}

/// What one forward pass computes besides depth (the official forward's keyword arguments).
pub struct ForwardRequest<'a> {
    pub ref_view_strategy: RefViewStrategy,
    /// Known cameras: normalised world-to-camera extrinsics (S, 4, 4) and intrinsics (S, 3, 3)
    /// in network-input pixels. Their encodings replace the learned camera token.
    pub cameras: Option<(&'a Tensor, &'a Tensor)>,
    /// Pose from the ray branch instead of the camera decoder.
    pub use_ray_pose: bool,
    /// Backbone blocks whose features to return.
    pub export_feat_layers: &'a [usize],
}

impl<'a> ForwardRequest<'a> {
    /// Depth and the camera decoder's pose, nothing else.
    pub fn new(ref_view_strategy: RefViewStrategy) -> Self {
        ForwardRequest { ref_view_strategy, cameras: None, use_ray_pose: false, export_feat_layers: &[] }
    }
}

/// The dense head: `DualDPT` for any-view models, `DPT` for metric and mono models.
#[allow(clippy::large_enum_variant)] // one per loaded network: size is irrelevant
pub enum Head {
    DualDpt(DualDPT),
    Dpt(DPT),
}

pub struct DepthAnything3Net {
    pub backbone: DinoV2,
    pub head: Head,
    pub cam_dec: Option<CameraDec>,
    pub cam_enc: Option<CameraEncoder>,
}

impl DepthAnything3Net {
    /// `kind`: compute kind of the backbone's matrix products (the heads are fp32).
    /// `camera_encoder_on_first_use`: see `CameraEncoder`.
    pub fn new(w: &mut WeightLoader, prefix: &str, cfg: &ModelConfig, kind: Kind, camera_encoder_on_first_use: bool) -> Result<Self> {
        let head_prefix = format!("{prefix}.head");
        Ok(DepthAnything3Net {
            backbone: DinoV2::new(w, &format!("{prefix}.backbone"), &cfg.backbone, kind)?,
            head: match cfg.head.kind {
                HeadKind::DualDpt => Head::DualDpt(DualDPT::new(w, &head_prefix, &cfg.head)?),
                HeadKind::Dpt => Head::Dpt(DPT::new(w, &head_prefix, &cfg.head)?),
            },
            // As the official: both camera modules exist exactly when a decoder is configured.
            cam_dec: cfg.camera.as_ref().map(|c| CameraDec::new(w, &format!("{prefix}.cam_dec"), c.dec_dim_in)).transpose()?,
            cam_enc: cfg
                .camera
                .as_ref()
                .map(|c| CameraEncoder::new(w, &format!("{prefix}.cam_enc"), c.enc_dim_out, camera_encoder_on_first_use))
                .transpose()?,
        })
    }

    /// Whether this network has a camera encoder (pose-conditioned input needs it).
    pub fn has_camera_encoder(&self) -> bool {
        self.cam_enc.is_some()
    }

    /// The camera encoder on the network's device, if this network has one.
    pub fn camera_encoder(&self) -> Result<Option<&CameraEnc>> {
        self.cam_enc.as_ref().map(CameraEncoder::get).transpose()
    }

    /// The DualDPT head, if this network has one (ray-based pose needs its ray branch).
    pub fn ray_head(&self) -> Option<&DualDPT> {
        match &self.head {
            Head::DualDpt(head) => Some(head),
            Head::Dpt(_) => None,
        }
    }

    /// Number of backbone blocks (valid `export_feat_layers` are below it).
    pub fn backbone_depth(&self) -> usize {
        self.backbone.pretrained.cfg.depth
    }

    /// The official forward with its options (see `ForwardRequest`), run as `exec` says.
    /// `images`: (S, 3, H, W) normalised, H and W multiples of 14, on this network's device
    /// (everything but the backbone's blocks runs there). A request needing modules this
    /// network lacks (`camera_encoder`, `ray_head`) is refused.
    pub fn forward(&self, images: &Tensor, request: &ForwardRequest<'_>, exec: Execution<'_>, keep_trace: bool) -> Result<NetOutput> {
        let (_, _, h, w) = images.size4()?;
        let camera_encoding = match request.cameras {
            Some((extrinsics, intrinsics)) => {
                let encoder = self
                    .camera_encoder()?
                    .ok_or_else(|| Error::Unsupported("this network has no camera encoder: it cannot take known cameras".into()))?;
                Some(encoder.forward(extrinsics, intrinsics, h, w)?)
            }
            None => None,
        };
        let backbone = self.backbone.forward(
            images,
            camera_encoding.as_ref(),
            request.ref_view_strategy,
            request.export_feat_layers,
            exec,
        )?;
        exec.check_stop(|| "between the backbone and the head".into())?;
        let reference_view = backbone.reference_view;
        let patch = BackboneConfig::PATCH_SIZE;
        let exported_features = backbone
            .exported
            .into_iter()
            .map(|(layer, f)| {
                let (s, _, c) = f.size3()?;
                Ok((layer, f.f_reshape([s, h / patch, w / patch, c])?))
            })
            .collect::<Result<Vec<_>>>()?;
        let (features, camera_tokens): (Vec<Tensor>, Vec<Tensor>) =
            backbone.layers.into_iter().map(|l| (l.features, l.camera_token)).unzip();
        let (mut ray, mut ray_conf) = (None, None);
        let (depth, depth_conf, sky, head_logits, sky_logits) = match &self.head {
            Head::DualDpt(head) => {
                let o = head.forward(&features, h, w, request.use_ray_pose, exec.head_kernels)?;
                ray = o.ray;
                ray_conf = o.ray_conf;
                (o.depth, Some(o.depth_conf), None, o.logits, None)
            }
            Head::Dpt(head) => {
                let o = head.forward(&features, h, w, exec.head_kernels)?;
                (o.depth, None, Some(o.sky), o.logits, Some(o.sky_logits))
            }
        };
        let (extrinsics, intrinsics) = if request.use_ray_pose {
            let (Some(rays), Some(confs)) = (&ray, &ray_conf) else {
                return Err(Error::Unsupported("this network has no ray head: use_ray_pose needs the DualDPT head".into()));
            };
            let (e, i) = Self::process_ray_pose_estimation(rays, confs, h, w)?;
            (Some(e), Some(i))
        } else {
            match &self.cam_dec {
                Some(cam_dec) => {
                    let token = camera_tokens.get(3).ok_or_else(|| Error::Unsupported("the camera decoder needs 4 taken layers".into()))?;
                    // The token comes from the last block's device when the blocks ran elsewhere.
                    let pose = cam_dec.forward(&token.f_to_device(images.device())?.f_to_kind(Kind::Float)?)?;
                    let (e, i) = pose_encoding_to_extrinsics_intrinsics(&pose, h, w)?;
                    (Some(e), Some(i))
                }
                None => (None, None),
            }
        };
        let (depth, sky_fill_depth) = match &sky {
            Some(sky) => Self::process_mono_sky_estimation(depth, sky)?,
            None => (depth, None),
        };
        let trace = keep_trace.then(|| Trace {
            features,
            camera_tokens,
            head_logits,
            sky_logits,
            reference_view,
            sky_fill_depth,
            nested: None,
            camera_encoding,
            ray: ray.as_ref().map(Tensor::shallow_clone),
            ray_conf: ray_conf.as_ref().map(Tensor::shallow_clone),
        });
        Ok(NetOutput {
            depth,
            depth_conf,
            extrinsics,
            intrinsics,
            sky,
            is_metric: false,
            scale_factor: None,
            warnings: Vec::new(),
            exported_features,
            trace,
        })
    }

    /// `_process_mono_sky_estimation`: when the scene (all views together) has more than 10
    /// sky and more than 10 non-sky pixels, sky pixels get the 99th percentile of the non-sky
    /// depth. The official estimates that percentile from 100 000 random pixels when there
    /// are more; here it is exact (see `utils::alignment::quantile`). Returns the depth and
    /// the fill value, if any.
    fn process_mono_sky_estimation(depth: Tensor, sky: &Tensor) -> Result<(Tensor, Option<Tensor>)> {
        let non_sky = compute_sky_mask(sky, SKY_THRESHOLD)?;
        let non_sky_pixels = non_sky.f_sum(Kind::Int64)?.f_int64_value(&[])?;
        let sky_pixels = non_sky.numel() as i64 - non_sky_pixels;
        if non_sky_pixels <= MIN_REGION_PIXELS || sky_pixels <= MIN_REGION_PIXELS {
            return Ok((depth, None));
        }
        let fill = quantile(&depth.f_masked_select(&non_sky)?, 0.99)?;
        let (depth, _) = set_sky_regions_to_max_depth(&depth, None, &non_sky, &fill)?;
        Ok((depth, Some(fill)))
    }

    /// `_process_ray_pose_estimation`: world-to-camera extrinsics (S, 3, 4) and intrinsics
    /// (S, 3, 3) in pixels of the H x W input, from rays (S, h, w, 6) and confidence (S, h, w).
    /// Rays that determine no camera are an `Error::InvalidArgument` (see `RayPoseError`).
    pub fn process_ray_pose_estimation(ray: &Tensor, ray_conf: &Tensor, height: i64, width: i64) -> Result<(Tensor, Tensor)> {
        let cam = get_extrinsic_from_camray(ray, ray_conf)?;
        let extrinsics = affine_inverse(&cam.c2w)?.f_narrow(1, 0, 3)?;
        let views = extrinsics.size()[0];
        let zero = Tensor::f_zeros([views], (Kind::Float, ray.device()))?;
        let one = zero.f_ones_like()?;
        let fx = cam.focal_lengths.f_select(1, 0)?.f_div_scalar(2.0)?.f_mul_scalar(width as f64)?;
        let fy = cam.focal_lengths.f_select(1, 1)?.f_div_scalar(2.0)?.f_mul_scalar(height as f64)?;
        let cx = cam.principal_points.f_select(1, 0)?.f_mul_scalar(width as f64)?.f_mul_scalar(0.5)?;
        let cy = cam.principal_points.f_select(1, 1)?.f_mul_scalar(height as f64)?.f_mul_scalar(0.5)?;
        let intrinsics =
            Tensor::f_stack(&[&fx, &zero, &cx, &zero, &fy, &cy, &zero, &zero, &one], -1)?.f_reshape([views, 3, 3])?;
        Ok((extrinsics, intrinsics))
    }
}

/// `NestedDepthAnything3Net`: the any-view branch `da3` predicts depth, confidence and
/// cameras; the metric branch `da3_metric` predicts metric depth and sky, which put the
/// any-view depth and camera translations in metres.
pub struct NestedDepthAnything3Net {
    pub da3: DepthAnything3Net,
    pub da3_metric: DepthAnything3Net,
}

impl NestedDepthAnything3Net {
    /// Checkpoint sub-prefixes of the two branches.
    pub const ANYVIEW_PREFIX: &'static str = "da3";
    pub const METRIC_PREFIX: &'static str = "da3_metric";

    /// `cfg` describes the any-view branch and `cfg.metric_branch` the metric one; the
    /// alignment needs cameras and confidence from the first and sky from the second.
    pub fn new(w: &mut WeightLoader, prefix: &str, cfg: &ModelConfig, kind: Kind, camera_encoder_on_first_use: bool) -> Result<Self> {
        let metric = cfg
            .metric_branch
            .as_deref()
            .ok_or_else(|| Error::Unsupported(format!("'{}' has no metric branch", cfg.preset)))?;
        if cfg.camera.is_none() || cfg.head.kind != HeadKind::DualDpt || metric.head.kind != HeadKind::Dpt {
            return Err(Error::Unsupported(format!(
                "'{}': a nested model needs an any-view branch with DualDPT head and cameras and a metric \
                 branch with DPT head",
                cfg.preset
            )));
        }
        Ok(NestedDepthAnything3Net {
            da3: DepthAnything3Net::new(w, &format!("{prefix}.{}", Self::ANYVIEW_PREFIX), cfg, kind, camera_encoder_on_first_use)?,
            da3_metric: DepthAnything3Net::new(w, &format!("{prefix}.{}", Self::METRIC_PREFIX), metric, kind, camera_encoder_on_first_use)?,
        })
    }

    /// Both branches on the same (S, 3, H, W) images, then `_apply_metric_scaling`,
    /// `_apply_depth_alignment` and `_handle_sky_regions`.
    ///
    /// Where the official asserts (10 or fewer non-sky pixels in the scene, e.g. an all-sky
    /// frame), this returns the any-view branch's outputs unscaled (not metric, no scale
    /// factor, sky not filled) with `Warning::MetricAlignmentSkipped`.
    ///
    /// `exec`: its attention kernel and reference-view setting apply to both branches; its
    /// features kind and block runner to the any-view branch only (the metric branch hands
    /// fp32 features to its fp32 DPT head and runs its blocks here).
    pub fn forward(&self, images: &Tensor, request: &ForwardRequest<'_>, exec: Execution<'_>, keep_trace: bool) -> Result<NetOutput> {
        let mut output = self.da3.forward(images, request, exec, keep_trace)?;
        // The official calls the metric branch with its default strategy; it has no global
        // attention, so no reference view is chosen anyway.
        let metric_request = ForwardRequest::new(RefViewStrategy::SaddleBalanced);
        exec.check_stop(|| "between the nested model's branches".into())?;
        let metric_exec = Execution { features_kind: None, blocks: None, ..exec };
        let metric = self.da3_metric.forward(images, &metric_request, metric_exec, keep_trace)?;
        let missing = |what: &str| Error::Unsupported(format!("nested model: a branch predicts no {what}"));
        let intrinsics = output.intrinsics.as_ref().ok_or_else(|| missing("intrinsics"))?;
        let extrinsics = output.extrinsics.as_ref().ok_or_else(|| missing("extrinsics"))?;
        let depth_conf = output.depth_conf.as_ref().ok_or_else(|| missing("confidence"))?;
        let sky = metric.sky.as_ref().ok_or_else(|| missing("sky"))?.shallow_clone();

        // _apply_metric_scaling
        let metric_depth = apply_metric_scaling(&metric.depth, intrinsics)?;

        // _apply_depth_alignment
        let non_sky = compute_sky_mask(&sky, SKY_THRESHOLD)?;
        let non_sky_pixels = non_sky.f_sum(Kind::Int64)?.f_int64_value(&[])?;
        let mut nested_trace = NestedTrace {
            metric_depth: metric_depth.shallow_clone(),
            unaligned_depth: output.depth.shallow_clone(),
            unaligned_depth_conf: depth_conf.shallow_clone(),
            unaligned_extrinsics: extrinsics.shallow_clone(),
            median_conf: None,
            alignment_pixels: None,
            sky_fill_depth: None,
            metric,
        };
        output.sky = Some(sky);
        if non_sky_pixels <= MIN_REGION_PIXELS {
            output.warnings.push(Warning::MetricAlignmentSkipped { non_sky_pixels });
            return Ok(Self::with_trace(output, nested_trace));
        }
        let median_conf = quantile(&depth_conf.f_masked_select(&non_sky)?, 0.5)?;
        let align_mask = compute_alignment_mask(depth_conf, &non_sky, &output.depth, &metric_depth, &median_conf)?;
        let alignment_pixels = align_mask.f_sum(Kind::Int64)?.f_int64_value(&[])?;
        if alignment_pixels == 0 {
            output.warnings.push(Warning::EmptyAlignmentMask);
        }
        let scale = least_squares_scale_scalar(
            &metric_depth.f_masked_select(&align_mask)?,
            &output.depth.f_masked_select(&align_mask)?,
        )?;
        let depth = output.depth.f_mul(&scale)?;
        let extrinsics = copy(extrinsics)?;
        let _ = extrinsics.f_narrow(-1, 3, 1)?.f_mul_(&scale)?;
        output.scale_factor = Some(scale.f_double_value(&[])? as f32);
        output.is_metric = true;

        // _handle_sky_regions
        let sky_fill = quantile(&depth.f_masked_select(&non_sky)?, 0.99)?.f_clamp_max(SKY_DEPTH_CAP)?;
        let (depth, conf) = set_sky_regions_to_max_depth(&depth, Some(depth_conf), &non_sky, &sky_fill)?;
        output.depth = depth;
        output.depth_conf = conf;
        output.extrinsics = Some(extrinsics);
        nested_trace.median_conf = Some(median_conf);
        nested_trace.alignment_pixels = Some(alignment_pixels);
        nested_trace.sky_fill_depth = Some(sky_fill);
        Ok(Self::with_trace(output, nested_trace))
    }

    fn with_trace(mut output: NetOutput, nested: NestedTrace) -> NetOutput {
        if let Some(trace) = output.trace.as_mut() {
            trace.nested = Some(Box::new(nested));
        }
        output
    }
}
