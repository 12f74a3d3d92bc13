//! The network, one file per official module (`depth_anything_3/model/...`), with the
//! official parameter names so `model.safetensors` loads by name.
pub mod cam_dec;
pub mod cam_enc;
pub mod da3;
pub mod dinov2;
pub mod dpt;
pub mod dualdpt;
pub mod execution;
pub mod reference_view_selector;
pub mod utils;
pub mod warning;

use std::path::Path;

use tch::{Device, Kind, Tensor};

use crate::config::{HeadKind, ModelConfig};
use crate::error::{Error, Result};
use crate::weights::{build_from_safetensors, TensorProgress, WeightLoader};
pub use da3::{DepthAnything3Net, ForwardRequest, NestedDepthAnything3Net, NestedTrace, NetOutput, Trace};
pub use execution::{AttentionKernel, BlockRunner, Execution, GlueKernels, HeadKernels, StopPoll};
pub use reference_view_selector::RefViewStrategy;
pub use warning::Warning;

/// The Hugging Face mixin stores the network under the wrapper's `model` attribute.
pub const CHECKPOINT_PREFIX: &str = "model";

/// A loaded model: one `DepthAnything3Net`, or the nested pair.
#[allow(clippy::large_enum_variant)] // one per engine: size is irrelevant
pub enum Network {
    Single(DepthAnything3Net),
    Nested(NestedDepthAnything3Net),
}

impl Network {
    /// The official forward with its options (see `ForwardRequest`), run as `exec` says.
    /// `images`: (S, 3, H, W) normalised, H and W multiples of 14, on this network's device.
    /// The caller checks the request against `any_view` first (a request beyond the
    /// network is refused here too). A libtorch failure (e.g. out of memory) is an error.
    pub fn forward(&self, images: &Tensor, request: &ForwardRequest<'_>, exec: Execution<'_>, keep_trace: bool) -> Result<NetOutput> {
        match self {
            Network::Single(net) => net.forward(images, request, exec, keep_trace),
            Network::Nested(net) => net.forward(images, request, exec, keep_trace),
        }
    }

    /// Runs the DualDPT depth branch in `kind` (see `DualDPT::convert_main_branch`); DPT heads
    /// (metric, mono, the nested metric branch) are left in fp32. Returns whether it applied.
    /// Load-time weight preparation, before any forward.
    pub fn convert_dualdpt_head(&mut self, kind: Kind, chunk_views: i64, nhwc: bool) -> Result<bool> {
        let net = match self {
            Network::Single(net) => net,
            Network::Nested(net) => &mut net.da3,
        };
        match &mut net.head {
            da3::Head::DualDpt(head) => {
                head.convert_main_branch(kind, chunk_views, nhwc)?;
                Ok(true)
            }
            da3::Head::Dpt(_) => Ok(false),
        }
    }

    /// Whether one forward of this network never reads a value back to the host (given no
    /// ray pose and reference selection on the device): DPT heads (sky filling) and the
    /// nested model (metric alignment) do.
    pub fn forward_stays_on_device(&self) -> bool {
        match self {
            Network::Single(net) => matches!(net.head, da3::Head::DualDpt(_)),
            Network::Nested(_) => false,
        }
    }

    /// The network that predicts cameras and takes known ones: the model itself, or the
    /// nested model's any-view branch (which receives the official forward's arguments).
    pub fn any_view(&self) -> &DepthAnything3Net {
        match self {
            Network::Single(net) => net,
            Network::Nested(net) => &net.da3,
        }
    }
}

/// Builds the network of `cfg` from a `model.safetensors` file, strictly: the file's tensor
/// table is checked against the architecture before any of the network's memory is allocated
/// (see `weights::build_from_safetensors`); `progress` hears of the check and of every tensor
/// placed, and may stop the load.
/// `camera_encoder_on_first_use`: see `cam_enc::CameraEncoder`.
pub fn load_network(
    cfg: &ModelConfig,
    weights: &Path,
    device: Device,
    kind: Kind,
    camera_encoder_on_first_use: bool,
    progress: Option<TensorProgress>,
) -> Result<Network> {
    check_supported(cfg)?;
    build_from_safetensors(weights, device, progress, |loader| {
        Ok(match cfg.metric_branch.as_deref() {
            None => {
                skip_unused(loader, CHECKPOINT_PREFIX, cfg);
                Network::Single(DepthAnything3Net::new(loader, CHECKPOINT_PREFIX, cfg, kind, camera_encoder_on_first_use)?)
            }
            Some(metric) => {
                skip_unused(loader, &format!("{CHECKPOINT_PREFIX}.{}", NestedDepthAnything3Net::ANYVIEW_PREFIX), cfg);
                skip_unused(loader, &format!("{CHECKPOINT_PREFIX}.{}", NestedDepthAnything3Net::METRIC_PREFIX), metric);
                Network::Nested(NestedDepthAnything3Net::new(loader, CHECKPOINT_PREFIX, cfg, kind, camera_encoder_on_first_use)?)
            }
        })
    })
}

fn skip_unused(loader: &mut WeightLoader, prefix: &str, cfg: &ModelConfig) {
    for unused in cfg.unused_prefixes {
        loader.skip_prefix(&format!("{prefix}.{unused}"));
    }
}

/// Configurations outside what the official presets use are refused before loading.
fn check_supported(cfg: &ModelConfig) -> Result<()> {
    if cfg.head.kind == HeadKind::Dpt && cfg.head.output_dim != 1 {
        return Err(Error::Unsupported(format!(
            "'{}': a DPT head with output_dim {} (only 1, as in every preset)",
            cfg.preset, cfg.head.output_dim
        )));
    }
    if let Some(metric) = cfg.metric_branch.as_deref() {
        if metric.metric_branch.is_some() {
            return Err(Error::Unsupported(format!("'{}': nested models nest one level only", cfg.preset)));
        }
        check_supported(metric)?;
    }
    Ok(())
}
