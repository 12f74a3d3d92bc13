//! The network, one file per official module (`depth_anything_3/model/...`), with the
//! official parameter names so `model.safetensors` loads by name.
pub mod cam_dec;
pub mod cam_enc;
pub mod da3;
pub mod dinov2;
pub mod dpt;
pub mod dualdpt;
pub mod reference_view_selector;
pub mod utils;

use std::path::Path;

use tch::{Device, Kind};

use crate::config::ModelConfig;
use crate::error::Result;
use crate::weights::WeightLoader;
pub use da3::{DepthAnything3Net, ForwardRequest, NetOutput, Trace};

/// The Hugging Face mixin stores the network under the wrapper's `model` attribute.
pub const CHECKPOINT_PREFIX: &str = "model";

/// Builds the network of `cfg` from a `model.safetensors` file, strictly.
pub fn load_network(cfg: &ModelConfig, weights: &Path, device: Device, kind: Kind) -> Result<DepthAnything3Net> {
    let mut loader = WeightLoader::from_safetensors(weights, device)?;
    for prefix in cfg.unused_prefixes {
        loader.skip_prefix(prefix);
    }
    let net = DepthAnything3Net::new(&mut loader, CHECKPOINT_PREFIX, cfg, kind);
    loader.finish()?;
    Ok(net)
}
