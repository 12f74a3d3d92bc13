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
    /// First block of alternating local/global attention (and of the camera token).
    pub alt_start: usize,
    pub qknorm_start: usize,
    pub rope_start: usize,
    /// Concatenate the last local-attention output to each taken layer.
    pub cat_token: bool,
}

impl BackboneConfig {
    pub const PATCH_SIZE: i64 = 14;
    /// DINOv2's positional embedding is learned for 518x518 inputs (37x37 patches).
    pub const PRETRAIN_IMG_SIZE: i64 = 518;
    pub const MLP_RATIO: i64 = 4;
    pub const ROPE_FREQUENCY: f64 = 100.0;

    fn vit(name: &'static str, out_layers: [usize; 4], alt_start: usize) -> Self {
        let (embed_dim, depth, num_heads) = match name {
            "vits" => (384, 12, 6),
            "vitb" => (768, 12, 12),
            "vitl" => (1024, 24, 16),
            "vitg" => (1536, 40, 24),
            _ => unreachable!("backbone names are fixed by the presets"),
        };
        BackboneConfig {
            name,
            embed_dim,
            depth,
            num_heads,
            out_layers,
            alt_start,
            qknorm_start: alt_start,
            rope_start: alt_start,
            cat_token: true,
        }
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

/// `DualDPT(dim_in, output_dim, features, out_channels)`.
#[derive(Clone, Debug, PartialEq)]
pub struct HeadConfig {
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

/// One official preset: backbone, head and camera modules.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// The official preset name, as in `config.json`'s `model_name`.
    pub preset: &'static str,
    pub backbone: BackboneConfig,
    pub head: HeadConfig,
    pub camera: CameraConfig,
    /// Checkpoint prefixes of branches this library does not run (accepted, not loaded).
    pub unused_prefixes: &'static [&'static str],
}

impl ModelConfig {
    pub fn da3_small() -> Self {
        Self::any_view("da3-small", BackboneConfig::vit("vits", [5, 7, 9, 11], 4), 64, [48, 96, 192, 384], &[])
    }

    pub fn da3_base() -> Self {
        Self::any_view("da3-base", BackboneConfig::vit("vitb", [5, 7, 9, 11], 4), 128, [96, 192, 384, 768], &[])
    }

    pub fn da3_large() -> Self {
        Self::any_view("da3-large", BackboneConfig::vit("vitl", [11, 15, 19, 23], 8), 256, [256, 512, 1024, 1024], &[])
    }

    /// The giant checkpoint also carries the 3D-Gaussian head, which is not run here.
    pub fn da3_giant() -> Self {
        Self::any_view(
            "da3-giant",
            BackboneConfig::vit("vitg", [19, 27, 33, 39], 13),
            256,
            [256, 512, 1024, 1024],
            &["model.gs_head.", "model.gs_adapter."],
        )
    }

    fn any_view(
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
            head: HeadConfig { dim_in, output_dim: 2, features, out_channels },
            camera,
            unused_prefixes,
        }
    }

    /// Names accepted by `from_preset_name`.
    pub const PRESETS: &'static [&'static str] = &["da3-small", "da3-base", "da3-large", "da3-giant"];

    /// The configuration of an official preset name.
    pub fn from_preset_name(name: &str) -> Result<Self> {
        match name {
            "da3-small" => Ok(Self::da3_small()),
            "da3-base" => Ok(Self::da3_base()),
            "da3-large" => Ok(Self::da3_large()),
            "da3-giant" => Ok(Self::da3_giant()),
            "da3metric-large" | "da3mono-large" | "da3nested-giant-large" => Err(Error::Unsupported(format!(
                "preset '{name}' (metric/mono/nested models) is not supported yet; supported: {}",
                Self::PRESETS.join(", ")
            ))),
            other => Err(Error::Checkpoint(format!(
                "unknown model_name '{other}' in config.json; known presets: {}",
                Self::PRESETS.join(", ")
            ))),
        }
    }
}
