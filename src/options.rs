//! Inference options and their defaults (the official `inference()` defaults).
use crate::cancel::CancelToken;
use crate::error::{Error, Result};

/// Arithmetic used by the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// bf16 on GPUs that support it, else fp16; fp32 on the CPU.
    Auto,
    Fp32,
    Fp16,
    Bf16,
}

/// How an image is brought to the processing resolution (official `process_res_method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResizeMethod {
    /// Longest side to the resolution, then each side to the nearest multiple of 14.
    UpperBoundResize,
    /// Shortest side to the resolution, then each side to the nearest multiple of 14.
    LowerBoundResize,
    /// Longest side to the resolution, then centre-crop each side down to a multiple of 14.
    UpperBoundCrop,
    /// Shortest side to the resolution, then centre-crop each side down to a multiple of 14.
    LowerBoundCrop,
}

impl ResizeMethod {
    pub fn official_name(self) -> &'static str {
        match self {
            ResizeMethod::UpperBoundResize => "upper_bound_resize",
            ResizeMethod::LowerBoundResize => "lower_bound_resize",
            ResizeMethod::UpperBoundCrop => "upper_bound_crop",
            ResizeMethod::LowerBoundCrop => "lower_bound_crop",
        }
    }

    pub fn from_official_name(name: &str) -> Result<Self> {
        Ok(match name {
            "upper_bound_resize" => ResizeMethod::UpperBoundResize,
            "lower_bound_resize" => ResizeMethod::LowerBoundResize,
            "upper_bound_crop" => ResizeMethod::UpperBoundCrop,
            "lower_bound_crop" => ResizeMethod::LowerBoundCrop,
            other => return Err(Error::InvalidArgument(format!("unknown resize method '{other}'"))),
        })
    }

    /// Whether the longest side (upper bound) or the shortest side is fitted.
    pub fn fits_longest_side(self) -> bool {
        matches!(self, ResizeMethod::UpperBoundResize | ResizeMethod::UpperBoundCrop)
    }

    pub fn crops(self) -> bool {
        matches!(self, ResizeMethod::UpperBoundCrop | ResizeMethod::LowerBoundCrop)
    }
}

pub use crate::model::reference_view_selector::RefViewStrategy;

/// Per-call options. `Default` gives the official defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct InferOptions {
    /// Processing resolution in pixels (official `process_res`, default 504).
    pub process_res: u32,
    pub resize_method: ResizeMethod,
    pub ref_view_strategy: RefViewStrategy,
    /// Camera pose from the DualDPT ray branch instead of the camera decoder (official
    /// `use_ray_pose`, default false).
    pub use_ray_pose: bool,
    /// With known cameras: return them as given and scale depth to their scale (true, the
    /// default); or keep the predicted depth scale and return the given cameras moved into the
    /// prediction's frame (official `align_to_input_ext_scale`).
    pub align_to_input_ext_scale: bool,
    /// Backbone blocks whose features are returned (official `export_feat_layers`), each
    /// index below the backbone depth, no repeats; empty by default.
    pub export_feat_layers: Vec<usize>,
}

impl Default for InferOptions {
    fn default() -> Self {
        InferOptions {
            process_res: 504,
            resize_method: ResizeMethod::UpperBoundResize,
            ref_view_strategy: RefViewStrategy::SaddleBalanced,
            use_ray_pose: false,
            align_to_input_ext_scale: true,
            export_feat_layers: Vec::new(),
        }
    }
}

impl InferOptions {
    /// Largest processing resolution accepted; beyond it the position-embedding
    /// interpolation and memory use stop making sense for this model family.
    pub const MAX_PROCESS_RES: u32 = 4096;

    /// Checks the options once, at the boundary, and splits them into what each stage needs.
    /// The engine takes only the checked form, so nothing below re-validates.
    pub fn check(&self) -> Result<CheckedOptions> {
        if self.process_res < 14 || self.process_res > Self::MAX_PROCESS_RES {
            return Err(Error::InvalidArgument(format!(
                "process_res must be between 14 and {}, got {}",
                Self::MAX_PROCESS_RES,
                self.process_res
            )));
        }
        for (i, layer) in self.export_feat_layers.iter().enumerate() {
            if self.export_feat_layers[..i].contains(layer) {
                return Err(Error::InvalidArgument(format!("export_feat_layers lists block {layer} twice")));
            }
        }
        Ok(CheckedOptions {
            preprocess: PreprocessOptions { process_res: self.process_res, resize_method: self.resize_method },
            forward: ForwardOptions {
                ref_view_strategy: self.ref_view_strategy,
                use_ray_pose: self.use_ray_pose,
                export_feat_layers: self.export_feat_layers.clone(),
            },
            alignment: AlignmentOptions { to_input_scale: self.align_to_input_ext_scale },
            cancel: None,
        })
    }
}

/// What preprocessing needs: the official `process_res` and `process_res_method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreprocessOptions {
    pub process_res: u32,
    pub resize_method: ResizeMethod,
}

/// What the forward needs (the official forward's keyword arguments).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardOptions {
    pub ref_view_strategy: RefViewStrategy,
    pub use_ray_pose: bool,
    /// Distinct backbone blocks (checked against the model's depth by `Capabilities::check`).
    pub export_feat_layers: Vec<usize>,
}

impl Default for ForwardOptions {
    fn default() -> Self {
        InferOptions::default().check().expect("the defaults are valid").forward
    }
}

/// What the alignment to known cameras needs (`align_to_input_ext_scale`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlignmentOptions {
    pub to_input_scale: bool,
}

/// `InferOptions` after `InferOptions::check`: the only form the engine takes. Built only by
/// `check`, so holding one means the options were validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedOptions {
    preprocess: PreprocessOptions,
    forward: ForwardOptions,
    alignment: AlignmentOptions,
    /// The host's cancel token for the calls made with these options.
    cancel: Option<CancelToken>,
}

impl CheckedOptions {
    /// The same options, with calls made with them stoppable by `token` (see `CancelToken`).
    pub fn with_cancel_token(mut self, token: Option<CancelToken>) -> Self {
        self.cancel = token;
        self
    }

    pub fn cancel_token(&self) -> Option<&CancelToken> {
        self.cancel.as_ref()
    }

    pub fn preprocess(&self) -> &PreprocessOptions {
        &self.preprocess
    }

    pub fn forward(&self) -> &ForwardOptions {
        &self.forward
    }

    pub fn alignment(&self) -> AlignmentOptions {
        self.alignment
    }
}

impl Default for CheckedOptions {
    fn default() -> Self {
        InferOptions::default().check().expect("the defaults are valid")
    }
}
