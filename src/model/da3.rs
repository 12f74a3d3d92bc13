//! `model/da3.py`: `DepthAnything3Net`, backbone + DualDPT head + camera decoder.
use tch::{Kind, Tensor};

use super::cam_dec::CameraDec;
use super::cam_enc::CameraEnc;
use super::dinov2::DinoV2;
use super::dualdpt::DualDPT;
use super::utils::transform::pose_encoding_to_extrinsics_intrinsics;
use crate::config::ModelConfig;
use crate::options::RefViewStrategy;
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
    pub trace: Option<Trace>,
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

    /// `images`: (S, 3, H, W) normalised, H and W multiples of 14.
    pub fn forward(&self, images: &Tensor, strategy: RefViewStrategy, keep_trace: bool) -> NetOutput {
        let (_, _, h, w) = images.size4().expect("images are (S, 3, H, W)");
        let backbone = self.backbone.forward(images, None, strategy);
        let reference_view = backbone.reference_view;
        let (features, camera_tokens): (Vec<Tensor>, Vec<Tensor>) =
            backbone.layers.into_iter().map(|l| (l.features, l.camera_token)).unzip();
        let head = self.head.forward(&features, h, w);
        let pose = self.cam_dec.forward(&camera_tokens[3].to_kind(Kind::Float));
        let (extrinsics, intrinsics) = pose_encoding_to_extrinsics_intrinsics(&pose, h, w);
        let trace = keep_trace.then(|| Trace { features, camera_tokens, head_logits: head.logits, reference_view });
        NetOutput { depth: head.depth, depth_conf: head.depth_conf, extrinsics, intrinsics, trace }
    }
}
