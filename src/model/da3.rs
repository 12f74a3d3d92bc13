//! `model/da3.py`: `DepthAnything3Net`, backbone + DualDPT head + camera decoder (and the
//! camera encoder for pose-conditioned input).
use tch::{Kind, Tensor};

use super::cam_dec::CameraDec;
use super::cam_enc::CameraEnc;
use super::dinov2::DinoV2;
use super::dualdpt::DualDPT;
use super::utils::transform::pose_encoding_to_extrinsics_intrinsics;
use crate::config::{BackboneConfig, ModelConfig};
use crate::options::RefViewStrategy;
use crate::utils::geometry::affine_inverse;
use crate::utils::ray_utils::{get_extrinsic_from_camray, RayPoseError};
use crate::weights::WeightLoader;

/// Intermediate tensors, kept when asked for (parity tests, debugging).
pub struct Trace {
    /// The four (S, P, C) features handed to the head.
    pub features: Vec<Tensor>,
    /// The four (S, C) camera tokens.
    pub camera_tokens: Vec<Tensor>,
    /// (S, 2, H, W) head logits before activation.
    pub head_logits: Tensor,
    pub reference_view: Option<i64>,
    /// (S, C) camera-encoder tokens of the known cameras, when given.
    pub camera_encoding: Option<Tensor>,
    /// (S, h, w, 6) rays and (S, h, w) their confidence, when ray-based pose ran.
    pub ray: Option<Tensor>,
    pub ray_conf: Option<Tensor>,
}

/// Network outputs for one scene of S views, fp32 on the model's device.
pub struct NetOutput {
    /// (S, H, W)
    pub depth: Tensor,
    /// (S, H, W)
    pub depth_conf: Tensor,
    /// (S, 3, 4) world-to-camera.
    pub extrinsics: Tensor,
    /// (S, 3, 3)
    pub intrinsics: Tensor,
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

pub struct DepthAnything3Net {
    pub backbone: DinoV2,
    pub head: DualDPT,
    pub cam_dec: CameraDec,
    pub cam_enc: CameraEnc,
}

impl DepthAnything3Net {
    /// `kind`: compute kind of the backbone's matrix products (the heads are fp32).
    pub fn new(w: &mut WeightLoader, prefix: &str, cfg: &ModelConfig, kind: Kind) -> Self {
        DepthAnything3Net {
            backbone: DinoV2::new(w, &format!("{prefix}.backbone"), &cfg.backbone, kind),
            head: DualDPT::new(w, &format!("{prefix}.head"), &cfg.head),
            cam_dec: CameraDec::new(w, &format!("{prefix}.cam_dec"), cfg.camera.dec_dim_in),
            cam_enc: CameraEnc::new(w, &format!("{prefix}.cam_enc"), cfg.camera.enc_dim_out),
        }
    }

    /// The camera encoder, if this network has one (pose-conditioned input needs it).
    pub fn camera_encoder(&self) -> Option<&CameraEnc> {
        Some(&self.cam_enc)
    }

    /// The DualDPT head, if this network has one (ray-based pose needs its ray branch).
    pub fn ray_head(&self) -> Option<&DualDPT> {
        Some(&self.head)
    }

    /// Number of backbone blocks (valid `export_feat_layers` are below it).
    pub fn backbone_depth(&self) -> usize {
        self.backbone.pretrained.cfg.depth
    }

    /// `images`: (S, 3, H, W) normalised, H and W multiples of 14.
    pub fn forward(&self, images: &Tensor, strategy: RefViewStrategy, keep_trace: bool) -> NetOutput {
        self.forward_with(images, &ForwardRequest::new(strategy), keep_trace)
            .expect("without ray-based pose the forward has no failure besides libtorch's")
    }

    /// The official forward with its options. The caller checks that the network has the
    /// modules the request needs (`camera_encoder`, `ray_head`); missing ones panic here.
    pub fn forward_with(&self, images: &Tensor, request: &ForwardRequest<'_>, keep_trace: bool) -> Result<NetOutput, RayPoseError> {
        let (_, _, h, w) = images.size4().expect("images are (S, 3, H, W)");
        let camera_encoding = request.cameras.map(|(extrinsics, intrinsics)| {
            let encoder = self.camera_encoder().expect("checked by the caller: the network has a camera encoder");
            encoder.forward(extrinsics, intrinsics, h, w)
        });
        let backbone = self.backbone.forward_with_exports(
            images,
            camera_encoding.as_ref(),
            request.ref_view_strategy,
            request.export_feat_layers,
        );
        let reference_view = backbone.reference_view;
        let exported_features = backbone
            .exported
            .into_iter()
            .map(|(layer, f)| {
                let (s, _, c) = f.size3().expect("features are (S, P, C)");
                let patch = BackboneConfig::PATCH_SIZE;
                (layer, f.reshape([s, h / patch, w / patch, c]))
            })
            .collect();
        let (features, camera_tokens): (Vec<Tensor>, Vec<Tensor>) =
            backbone.layers.into_iter().map(|l| (l.features, l.camera_token)).unzip();
        let (head, extrinsics, intrinsics) = if request.use_ray_pose {
            let head = self.ray_head().expect("checked by the caller: the network has a DualDPT head");
            let out = head.forward_with_rays(&features, h, w);
            let (extrinsics, intrinsics) = Self::process_ray_pose_estimation(
                out.ray.as_ref().expect("rays were asked for"),
                out.ray_conf.as_ref().expect("rays were asked for"),
                h,
                w,
            )?;
            (out, extrinsics, intrinsics)
        } else {
            let out = self.head.forward(&features, h, w);
            let pose = self.cam_dec.forward(&camera_tokens[3].to_kind(Kind::Float));
            let (extrinsics, intrinsics) = pose_encoding_to_extrinsics_intrinsics(&pose, h, w);
            (out, extrinsics, intrinsics)
        };
        let trace = keep_trace.then(|| Trace {
            features,
            camera_tokens,
            head_logits: head.logits.shallow_clone(),
            reference_view,
            camera_encoding,
            ray: head.ray.as_ref().map(Tensor::shallow_clone),
            ray_conf: head.ray_conf.as_ref().map(Tensor::shallow_clone),
        });
        Ok(NetOutput { depth: head.depth, depth_conf: head.depth_conf, extrinsics, intrinsics, exported_features, trace })
    }

    /// `_process_ray_pose_estimation`: world-to-camera extrinsics (S, 3, 4) and intrinsics
    /// (S, 3, 3) in pixels of the H x W input, from rays (S, h, w, 6) and confidence (S, h, w).
    pub fn process_ray_pose_estimation(ray: &Tensor, ray_conf: &Tensor, height: i64, width: i64) -> Result<(Tensor, Tensor), RayPoseError> {
        let cam = get_extrinsic_from_camray(ray, ray_conf)?;
        let extrinsics = affine_inverse(&cam.c2w).narrow(1, 0, 3);
        let views = extrinsics.size()[0];
        let zero = Tensor::zeros([views], (Kind::Float, ray.device()));
        let one = zero.ones_like();
        let fx = cam.focal_lengths.select(1, 0) / 2.0 * width as f64;
        let fy = cam.focal_lengths.select(1, 1) / 2.0 * height as f64;
        let cx = cam.principal_points.select(1, 0) * width as f64 * 0.5;
        let cy = cam.principal_points.select(1, 1) * height as f64 * 0.5;
        let intrinsics = Tensor::stack(&[&fx, &zero, &cx, &zero, &fy, &cy, &zero, &zero, &one], -1).reshape([views, 3, 3]);
        Ok((extrinsics, intrinsics))
    }
}
