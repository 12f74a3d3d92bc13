//! Model configurations as data. Each official preset (`depth_anything_3/configs/*.yaml`)
//! is a named constructor.
use crate::error::{Error, Result};

/// `DinoV2(name, out_layers, alt_start, qknorm_start, rope_start, cat_token)`.
#[derive(Clone, Debug, PartialEq)]
pub struct BackboneConfig {
    /// Official encoder name: vits, vitb, vitl or vitg.
    pub name: &'static str,
    pub embed_dim: i64,
    pub depth: usize,
    pub num_heads: i64,
    /// The four blocks whose outputs feed the head.
    pub out_layers: [usize; 4],
    /// First block of alternating local/global attention (and of the camera token);
    /// `None` is the official `-1`: every block attends within its view, no camera token.
    pub alt_start: Option<usize>,
    /// First block with QK-norm (`None`: none).
    pub qknorm_start: Option<usize>,
    /// First block with 2-D RoPE (`None`: none).
    pub rope_start: Option<usize>,
    /// Concatenate the last local-attention output to each taken layer.
    pub cat_token: bool,
}

impl BackboneConfig {
    pub const PATCH_SIZE: i64 = 14;
    /// DINOv2's positional embedding is learned for 518x518 inputs (37x37 patches).
    pub const PRETRAIN_IMG_SIZE: i64 = 518;
    pub const MLP_RATIO: i64 = 4;
    pub const ROPE_FREQUENCY: f64 = 100.0;

    /// An official DINOv2 size (`vits`, `vitb`, `vitl`, `vitg`) with QK-norm and RoPE starting
    /// where alternating attention starts, as in every official preset.
    pub fn vit(name: &'static str, out_layers: [usize; 4], alt_start: Option<usize>, cat_token: bool) -> Result<Self> {
        let (embed_dim, depth, num_heads) = match name {
            "vits" => (384, 12, 6),
            "vitb" => (768, 12, 12),
            "vitl" => (1024, 24, 16),
            "vitg" => (1536, 40, 24),
            other => return Err(Error::InvalidArgument(format!("unknown DINOv2 size '{other}' (vits, vitb, vitl, vitg)"))),
        };
        if let Some(&bad) = out_layers.iter().chain(alt_start.as_ref()).find(|&&l| l >= depth) {
            return Err(Error::InvalidArgument(format!("layer {bad} out of range for {name} ({depth} blocks)")));
        }
        Ok(BackboneConfig {
            name,
            embed_dim,
            depth,
            num_heads,
            out_layers,
            alt_start,
            qknorm_start: alt_start,
            rope_start: alt_start,
            cat_token,
        })
    }

    /// ViT-g uses the SwiGLU feed-forward.
    pub fn swiglu(&self) -> bool {
        self.name == "vitg"
    }

    /// Channels of each feature handed to the head.
    pub fn out_dim(&self) -> i64 {
        if self.cat_token {
            2 * self.embed_dim
        } else {
            self.embed_dim
        }
    }
}

/// Which head class predicts the dense maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeadKind {
    /// `dualdpt.DualDPT`: depth + confidence, and an auxiliary ray branch (any-view models).
    DualDpt,
    /// `dpt.DPT`: depth (no confidence when `output_dim` is 1) and a sky map (metric/mono models).
    Dpt,
}

/// `DualDPT(dim_in, output_dim, features, out_channels)` or `DPT(...)` with the same four
/// arguments (the other arguments keep their official defaults in every preset).
#[derive(Clone, Debug, PartialEq)]
pub struct HeadConfig {
    pub kind: HeadKind,
    pub dim_in: i64,
    pub output_dim: i64,
    pub features: i64,
    pub out_channels: [i64; 4],
}

/// `CameraEnc(dim_out)` and `CameraDec(dim_in)`.
#[derive(Clone, Debug, PartialEq)]
pub struct CameraConfig {
    pub enc_dim_out: i64,
    pub dec_dim_in: i64,
}

/// One official preset: backbone, head and camera modules of a `DepthAnything3Net`, or, for a
/// nested model, of its any-view branch plus the metric branch in `metric_branch`.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// The official preset name, as in `config.json`'s `model_name`.
    pub preset: &'static str,
    pub backbone: BackboneConfig,
    pub head: HeadConfig,
    /// Camera decoder and encoder; `None` for models that predict no cameras (metric, mono).
    pub camera: Option<CameraConfig>,
    /// Checkpoint sub-trees of this network that this library does not run (accepted, not
    /// loaded), relative to the network's prefix, e.g. `gs_head.`.
    pub unused_prefixes: &'static [&'static str],
    /// `NestedDepthAnything3Net`: the metric branch (`da3_metric`). The fields above then
    /// describe the any-view branch (`da3`), whose outputs the metric branch rescales.
    pub metric_branch: Option<Box<ModelConfig>>,
}

impl ModelConfig {
    pub fn da3_small() -> Self {
        Self::any_view("da3-small", Self::preset_vit("vits", [5, 7, 9, 11], Some(4), true), 64, [48, 96, 192, 384], &[])
    }

    pub fn da3_base() -> Self {
        Self::any_view("da3-base", Self::preset_vit("vitb", [5, 7, 9, 11], Some(4), true), 128, [96, 192, 384, 768], &[])
    }

    pub fn da3_large() -> Self {
        Self::any_view("da3-large", Self::preset_vit("vitl", [11, 15, 19, 23], Some(8), true), 256, [256, 512, 1024, 1024], &[])
    }

    /// The giant checkpoint also carries the 3D-Gaussian head, which is not run here.
    pub fn da3_giant() -> Self {
        Self::any_view(
            "da3-giant",
            Self::preset_vit("vitg", [19, 27, 33, 39], Some(13), true),
            256,
            [256, 512, 1024, 1024],
            &["gs_head.", "gs_adapter."],
        )
    }

    /// Monocular metric depth (depth in canonical units, see `Prediction::is_metric`) + sky.
    pub fn da3metric_large() -> Self {
        Self::mono("da3metric-large", Self::preset_vit("vitl", [4, 11, 17, 23], None, false), 256, [256, 512, 1024, 1024])
    }

    /// Monocular relative depth + sky; the same network as `da3metric-large`.
    pub fn da3mono_large() -> Self {
        Self::mono("da3mono-large", Self::preset_vit("vitl", [4, 11, 17, 23], None, false), 256, [256, 512, 1024, 1024])
    }

    /// `da3-giant` (any-view) and `da3metric-large` (metric) in one model: the metric branch
    /// puts the any-view depth and poses in metres.
    pub fn da3nested_giant_large() -> Self {
        Self::nested("da3nested-giant-large", Self::da3_giant(), Self::da3metric_large())
    }

    /// An any-view `DepthAnything3Net`: DualDPT head (depth + confidence) and camera modules.
    pub fn any_view(
        preset: &'static str,
        backbone: BackboneConfig,
        features: i64,
        out_channels: [i64; 4],
        unused_prefixes: &'static [&'static str],
    ) -> Self {
        let dim_in = backbone.out_dim();
        let camera = CameraConfig { enc_dim_out: backbone.embed_dim, dec_dim_in: dim_in };
        ModelConfig {
            preset,
            backbone,
            head: HeadConfig { kind: HeadKind::DualDpt, dim_in, output_dim: 2, features, out_channels },
            camera: Some(camera),
            unused_prefixes,
            metric_branch: None,
        }
    }

    /// A monocular `DepthAnything3Net`: DPT head with one depth channel and the sky branch,
    /// no camera modules.
    pub fn mono(preset: &'static str, backbone: BackboneConfig, features: i64, out_channels: [i64; 4]) -> Self {
        let dim_in = backbone.out_dim();
        ModelConfig {
            preset,
            backbone,
            head: HeadConfig { kind: HeadKind::Dpt, dim_in, output_dim: 1, features, out_channels },
            camera: None,
            unused_prefixes: &[],
            metric_branch: None,
        }
    }

    /// `NestedDepthAnything3Net(anyview, metric)`, under the checkpoint prefixes `da3.` and
    /// `da3_metric.`. The metric branch must predict sky and the any-view branch cameras and
    /// confidence: the alignment needs all three.
    pub fn nested(preset: &'static str, anyview: ModelConfig, metric: ModelConfig) -> Self {
        ModelConfig { preset, metric_branch: Some(Box::new(metric)), ..anyview }
    }

    /// Whether this is a `NestedDepthAnything3Net`.
    pub fn is_nested(&self) -> bool {
        self.metric_branch.is_some()
    }

    /// Presets are fixed, valid data: a failure here is a bug in this file.
    fn preset_vit(name: &'static str, out_layers: [usize; 4], alt_start: Option<usize>, cat_token: bool) -> BackboneConfig {
        BackboneConfig::vit(name, out_layers, alt_start, cat_token).expect("preset backbones are valid")
    }

    /// Names accepted by `from_preset_name`: every official preset.
    pub const PRESETS: &'static [&'static str] = &[
        "da3-small",
        "da3-base",
        "da3-large",
        "da3-giant",
        "da3metric-large",
        "da3mono-large",
        "da3nested-giant-large",
    ];

    /// The configuration of an official preset name.
    pub fn from_preset_name(name: &str) -> Result<Self> {
        match name {
            "da3-small" => Ok(Self::da3_small()),
            "da3-base" => Ok(Self::da3_base()),
            "da3-large" => Ok(Self::da3_large()),
            "da3-giant" => Ok(Self::da3_giant()),
            "da3metric-large" => Ok(Self::da3metric_large()),
            "da3mono-large" => Ok(Self::da3mono_large()),
            "da3nested-giant-large" => Ok(Self::da3nested_giant_large()),
            other => Err(Error::Checkpoint(format!(
                "unknown model_name '{other}' in config.json; known presets: {}",
                Self::PRESETS.join(", ")
            ))),
        }
    }
}

/// File beside `config.json` that describes an architecture which is no official preset: the
/// official package's resolved config (`OmegaConf.to_container(load_config(...))`, the tree its
/// `create_object` builds the network from). The test oracle writes one next to every checkpoint.
pub const OFFICIAL_CONFIG_FILE: &str = "official_config.json";

/// The longest `model_name` accepted, in bytes (the official names have under 30).
pub const MAX_MODEL_NAME_BYTES: usize = 128;

/// A `model_name` from a config file must be 1 to `MAX_MODEL_NAME_BYTES` bytes without
/// control characters: it becomes the model's name for the host (a C string) and is kept for
/// the life of the process (`intern`).
pub fn check_model_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_MODEL_NAME_BYTES || name.chars().any(char::is_control) {
        let shown: String = name.chars().take(40).collect::<String>().escape_debug().to_string();
        let more = if name.chars().count() > 40 { "..." } else { "" };
        return Err(Error::Checkpoint(format!(
            "model_name \"{shown}{more}\" ({} bytes) must be 1 to {MAX_MODEL_NAME_BYTES} bytes without control characters",
            name.len()
        )));
    }
    Ok(())
}

/// Names of architectures read from official configs, interned: `ModelConfig::preset` is
/// `&'static str`, and a name stays in this list (reachable, one copy per distinct name) for the
/// life of the process.
fn intern(name: &str) -> &'static str {
    static NAMES: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut names = NAMES.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(known) = names.iter().copied().find(|n| *n == name) {
        return known;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.push(leaked);
    leaked
}

impl ModelConfig {
    /// The architecture an official resolved config describes (`DepthAnything3Net` or
    /// `NestedDepthAnything3Net` with their `net`, `head`, `cam_enc`, `cam_dec` and `gs_head`
    /// entries), named `name`. Loads checkpoints of architectures that are no preset, e.g. the
    /// reduced nested model the tests use.
    pub fn from_official_config(name: &str, config: &serde_json::Value) -> Result<Self> {
        check_model_name(name)?;
        let name = intern(name);
        match config.pointer("/__object__/name").and_then(|v| v.as_str()) {
            Some("DepthAnything3Net") => net_from_official(name, config),
            Some("NestedDepthAnything3Net") => {
                let anyview = net_from_official(name, &config["anyview"])?;
                let metric = net_from_official(intern(&format!("{name} (metric branch)")), &config["metric"])?;
                if anyview.camera.is_none() || anyview.head.kind != HeadKind::DualDpt || metric.head.kind != HeadKind::Dpt {
                    return Err(Error::Checkpoint(format!(
                        "'{name}': a nested model needs an any-view branch with a DualDPT head and cameras and a metric branch with a DPT head"
                    )));
                }
                Ok(ModelConfig::nested(name, anyview, metric))
            }
            other => Err(Error::Checkpoint(format!(
                "'{name}': the official config builds {other:?}, not DepthAnything3Net or NestedDepthAnything3Net"
            ))),
        }
    }
}

/// The largest channel count an official config may give (the presets' largest is 3072).
pub const MAX_CONFIG_WIDTH: i64 = 1 << 16;

/// One `DepthAnything3Net` of an official config.
fn net_from_official(preset: &'static str, v: &serde_json::Value) -> Result<ModelConfig> {
    let bad = |what: &str| Error::Checkpoint(format!("'{preset}': official config: {what}"));
    let int = |v: &serde_json::Value, what: &str| v.as_i64().ok_or_else(|| bad(&format!("{what} is not an integer")));
    // Channel counts become tensor shapes (products of them too): bounded, so that no product
    // overflows and no shape is negative.
    let width = |v: &serde_json::Value, what: &str| {
        int(v, what).and_then(|w| match w {
            1..=MAX_CONFIG_WIDTH => Ok(w),
            _ => Err(bad(&format!("{what} is {w}, not a width in 1..={MAX_CONFIG_WIDTH}"))),
        })
    };
    let net = &v["net"];
    let start = |key: &str| -> Result<Option<usize>> {
        Ok(match net.get(key) {
            None => None,
            Some(s) => Some(int(s, key)?).filter(|&s| s >= 0).map(|s| s as usize),
        })
    };
    let layers: Vec<usize> = net["out_layers"]
        .as_array()
        .ok_or_else(|| bad("net.out_layers is missing"))?
        .iter()
        .map(|l| int(l, "net.out_layers").map(|l| l as usize))
        .collect::<Result<_>>()?;
    let layers: [usize; 4] = layers.try_into().map_err(|_| bad("net.out_layers must list 4 blocks"))?;
    let name = match net["name"].as_str() {
        Some("vits") => "vits",
        Some("vitb") => "vitb",
        Some("vitl") => "vitl",
        Some("vitg") => "vitg",
        other => return Err(bad(&format!("net.name {other:?} is no DINOv2 size (vits, vitb, vitl, vitg)"))),
    };
    let cat_token = net.get("cat_token").map(|c| c.as_bool().ok_or_else(|| bad("net.cat_token is not a boolean"))).transpose()?.unwrap_or(true);
    let mut backbone = BackboneConfig::vit(name, layers, start("alt_start")?, cat_token).map_err(|e| bad(&e.to_string()))?;
    backbone.qknorm_start = start("qknorm_start")?;
    backbone.rope_start = start("rope_start")?;
    let head = &v["head"];
    let channels: Vec<i64> = head["out_channels"]
        .as_array()
        .ok_or_else(|| bad("head.out_channels is missing"))?
        .iter()
        .map(|c| width(c, "head.out_channels"))
        .collect::<Result<_>>()?;
    let kind = match head.pointer("/__object__/name").and_then(|n| n.as_str()) {
        Some("DualDPT") => HeadKind::DualDpt,
        Some("DPT") => HeadKind::Dpt,
        other => return Err(bad(&format!("head {other:?} is neither DualDPT nor DPT"))),
    };
    let camera = match v.get("cam_dec").filter(|c| !c.is_null()) {
        None => None,
        Some(dec) => Some(CameraConfig { enc_dim_out: width(&v["cam_enc"]["dim_out"], "cam_enc.dim_out")?, dec_dim_in: width(&dec["dim_in"], "cam_dec.dim_in")? }),
    };
    Ok(ModelConfig {
        preset,
        backbone,
        head: HeadConfig {
            kind,
            dim_in: width(&head["dim_in"], "head.dim_in")?,
            output_dim: width(&head["output_dim"], "head.output_dim")?,
            features: width(&head["features"], "head.features")?,
            out_channels: channels.try_into().map_err(|_| bad("head.out_channels must list 4 widths"))?,
        },
        camera,
        // The 3D-Gaussian head and adapter are not run by the library.
        unused_prefixes: if v.get("gs_head").is_some_and(|g| !g.is_null()) { &["gs_head.", "gs_adapter."] } else { &[] },
        metric_branch: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_official_preset_has_a_configuration() {
        for &name in ModelConfig::PRESETS {
            let cfg = ModelConfig::from_preset_name(name).unwrap();
            assert_eq!(cfg.preset, name);
        }
        let err = ModelConfig::from_preset_name("da3-huge").unwrap_err().to_string();
        assert!(err.contains("da3-huge") && err.contains("da3nested-giant-large"), "{err}");
    }

    #[test]
    fn metric_and_mono_follow_their_yaml() {
        for cfg in [ModelConfig::da3metric_large(), ModelConfig::da3mono_large()] {
            let b = &cfg.backbone;
            assert_eq!((b.name, b.out_layers, b.cat_token), ("vitl", [4, 11, 17, 23], false));
            assert_eq!((b.alt_start, b.qknorm_start, b.rope_start), (None, None, None));
            assert_eq!(cfg.head, HeadConfig {
                kind: HeadKind::Dpt,
                dim_in: 1024,
                output_dim: 1,
                features: 256,
                out_channels: [256, 512, 1024, 1024]
            });
            assert!(cfg.camera.is_none() && cfg.metric_branch.is_none());
        }
    }

    #[test]
    fn nested_is_giant_plus_metric() {
        let cfg = ModelConfig::da3nested_giant_large();
        let giant = ModelConfig::da3_giant();
        assert_eq!((&cfg.backbone, &cfg.head, &cfg.camera), (&giant.backbone, &giant.head, &giant.camera));
        assert_eq!(cfg.unused_prefixes, giant.unused_prefixes);
        assert_eq!(**cfg.metric_branch.as_ref().unwrap(), ModelConfig::da3metric_large());
        assert!(cfg.is_nested() && !giant.is_nested());
    }

    #[test]
    fn official_configs_describe_architectures() {
        let net = serde_json::json!({
            "__object__": {"name": "DepthAnything3Net"},
            "net": {"name": "vits", "out_layers": [5, 7, 9, 11], "alt_start": 4, "qknorm_start": 4, "rope_start": 4, "cat_token": true},
            "head": {"__object__": {"name": "DualDPT"}, "dim_in": 768, "output_dim": 2, "features": 64, "out_channels": [48, 96, 192, 384]},
            "cam_enc": {"dim_out": 384},
            "cam_dec": {"dim_in": 768}
        });
        let cfg = ModelConfig::from_official_config("small-again", &net).unwrap();
        assert_eq!(cfg, ModelConfig { preset: cfg.preset, ..ModelConfig::da3_small() });
        assert_eq!(cfg.preset, "small-again");
        // Interned: the same name gives the same string.
        let again = ModelConfig::from_official_config("small-again", &net).unwrap();
        assert!(std::ptr::eq(cfg.preset, again.preset));
        let mut broken = net.clone();
        broken["net"]["name"] = "vith".into();
        let err = ModelConfig::from_official_config("x", &broken).unwrap_err().to_string();
        assert!(err.contains("vith"), "{err}");
        let err = ModelConfig::from_official_config("x", &serde_json::json!({})).unwrap_err().to_string();
        assert!(err.contains("not DepthAnything3Net"), "{err}");
        // Widths become shapes: 2^62 overflowed `3 * dim` while the camera encoder was built (a
        // panic with overflow checks, negative shapes without), zero or less is no shape.
        for (pointer, value) in [("/cam_enc/dim_out", 1i64 << 62), ("/head/features", 0), ("/head/out_channels/2", -4)] {
            let mut broken = net.clone();
            *broken.pointer_mut(pointer).unwrap() = value.into();
            let err = ModelConfig::from_official_config("x", &broken).unwrap_err().to_string();
            assert!(err.contains(&format!("is {value}, not a width in 1..=65536")), "{err}");
        }
    }

    #[test]
    fn backbone_sizes_are_checked() {
        assert!(BackboneConfig::vit("vith", [0, 1, 2, 3], None, false).is_err());
        assert!(BackboneConfig::vit("vits", [0, 1, 2, 12], None, false).is_err());
        assert!(BackboneConfig::vit("vits", [0, 1, 2, 11], Some(12), true).is_err());
    }
}
