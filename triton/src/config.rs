//! The model's settings, read once from the model configuration Triton hands over (the JSON
//! form of `config.pbtxt`): the `parameters` that choose the checkpoint and how libda3 runs,
//! and the outputs the configuration declares.
use std::path::Path;

use serde_json::Value;

use crate::da3_api;

/// Every output the backend can fill, with the model capability it needs.
pub const OUTPUTS: &[(&str, u32)] = &[
    ("DEPTH", 0),
    ("CONFIDENCE", da3_api::DA3_CAP_CONFIDENCE),
    ("SKY", da3_api::DA3_CAP_SKY),
    ("EXTRINSICS", da3_api::DA3_CAP_POSE),
    ("INTRINSICS", da3_api::DA3_CAP_POSE),
    ("SCALE_FACTOR", 0),
];

/// Input names: one scene per batch entry.
pub const IMAGES: &str = "IMAGES";
pub const KNOWN_EXTRINSICS: &str = "KNOWN_EXTRINSICS";
pub const KNOWN_INTRINSICS: &str = "KNOWN_INTRINSICS";

#[derive(Debug, Clone)]
pub struct ModelSettings {
    /// Triton's name for the model (for messages).
    pub name: String,
    /// What `da3_create_with_options` loads: a checkpoint directory, a preset or a hub id.
    pub model: String,
    pub precision: u32,
    pub use_accelerate: bool,
    pub process_res: Option<u32>,
    pub resize_method: Option<u32>,
    pub ref_view_strategy: Option<u32>,
    pub align_to_input_ext_scale: Option<bool>,
    /// Outputs the configuration declares (a subset of `OUTPUTS`).
    pub outputs: Vec<String>,
}

impl ModelSettings {
    /// Reads the configuration of a model whose version directory is `version_dir`. The
    /// checkpoint is parameter `model` (a path relative to the version directory, an
    /// absolute path, a preset or a hub id), by default the version directory itself.
    pub fn from_config(config: &Value, version_dir: &Path) -> Result<ModelSettings, String> {
        let name = config["name"].as_str().unwrap_or("?").to_string();
        let batch = config["max_batch_size"].as_i64().unwrap_or(0);
        if batch < 1 {
            return Err(format!(
                "model '{name}': max_batch_size must be at least 1 (the batch dimension counts scenes; found {batch})"
            ));
        }
        let parameter = |key: &str| -> Option<String> {
            config["parameters"][key]["string_value"]
                .as_str()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        };
        let known = [
            "model",
            "precision",
            "use_accelerate",
            "process_res",
            "resize_method",
            "ref_view_strategy",
            "align_to_input_ext_scale",
        ];
        if let Some(params) = config["parameters"].as_object() {
            if let Some(unknown) = params.keys().find(|k| !known.contains(&k.as_str())) {
                return Err(format!(
                    "model '{name}': unknown parameter '{unknown}' (known: {})",
                    known.join(", ")
                ));
            }
        }
        let model = match parameter("model") {
            None => version_dir.display().to_string(),
            Some(m) if m.starts_with('/') => m,
            Some(m) if m.starts_with('.') || version_dir.join(&m).exists() => {
                version_dir.join(m).display().to_string()
            }
            Some(m) => m,
        };
        let bad = |key: &str, value: &str, allowed: &str| {
            format!("model '{name}': parameter {key} '{value}': expected {allowed}")
        };
        let choose = |key: &str, choices: &[(&str, u32)]| -> Result<Option<u32>, String> {
            let Some(value) = parameter(key) else {
                return Ok(None);
            };
            let found = choices
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&value))
                .map(|&(_, v)| v);
            let names: Vec<&str> = choices.iter().map(|&(n, _)| n).collect();
            found
                .map(Some)
                .ok_or_else(|| bad(key, &value, &names.join(" | ")))
        };
        let flag = |key: &str| -> Result<Option<bool>, String> {
            match parameter(key).as_deref() {
                None => Ok(None),
                Some("true" | "1" | "on") => Ok(Some(true)),
                Some("false" | "0" | "off") => Ok(Some(false)),
                Some(other) => Err(bad(key, other, "true | false")),
            }
        };
        let precision = choose(
            "precision",
            &[("auto", 0), ("fp32", 1), ("fp16", 2), ("bf16", 3)],
        )?
        .unwrap_or(0);
        let resize_method = choose(
            "resize_method",
            &[
                ("upper_bound_resize", 0),
                ("lower_bound_resize", 1),
                ("upper_bound_crop", 2),
                ("lower_bound_crop", 3),
            ],
        )?;
        let ref_view_strategy = choose(
            "ref_view_strategy",
            &[
                ("saddle_balanced", 0),
                ("first", 1),
                ("middle", 2),
                ("saddle_sim_range", 3),
            ],
        )?;
        let process_res = match parameter("process_res") {
            None => None,
            Some(v) => Some(
                v.parse::<u32>()
                    .map_err(|_| bad("process_res", &v, "a whole number of pixels"))?,
            ),
        };
        let outputs: Vec<String> = config["output"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|o| o["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(unknown) = outputs
            .iter()
            .find(|o| !OUTPUTS.iter().any(|(n, _)| n == o))
        {
            let names: Vec<&str> = OUTPUTS.iter().map(|&(n, _)| n).collect();
            return Err(format!(
                "model '{name}': unknown output '{unknown}' (known: {})",
                names.join(", ")
            ));
        }
        let inputs: Vec<&str> = config["input"]
            .as_array()
            .map(|a| a.iter().filter_map(|i| i["name"].as_str()).collect())
            .unwrap_or_default();
        if !inputs.contains(&IMAGES) {
            return Err(format!("model '{name}': the configuration needs an input named {IMAGES} (TYPE_UINT8, dims [-1, -1, -1, 3])"));
        }
        if let Some(unknown) = inputs
            .iter()
            .find(|i| ![IMAGES, KNOWN_EXTRINSICS, KNOWN_INTRINSICS].contains(i))
        {
            return Err(format!(
                "model '{name}': unknown input '{unknown}' (known: {IMAGES}, {KNOWN_EXTRINSICS}, {KNOWN_INTRINSICS})"
            ));
        }
        let (use_accelerate, align_to_input_ext_scale) = (
            flag("use_accelerate")?.unwrap_or(false),
            flag("align_to_input_ext_scale")?,
        );
        Ok(ModelSettings {
            name,
            model,
            precision,
            use_accelerate,
            process_res,
            resize_method,
            ref_view_strategy,
            align_to_input_ext_scale,
            outputs,
        })
    }

    /// libda3 options for these settings (no cameras), checked by libda3 itself.
    pub fn options(&self) -> Result<da3_api::da3_options, da3_api::Da3Error> {
        // SAFETY: a writable struct of the size passed; the library initialises it.
        unsafe {
            let mut options = std::mem::zeroed::<da3_api::da3_options>();
            let status = da3_api::da3_options_default(
                &mut options,
                std::mem::size_of::<da3_api::da3_options>(),
            );
            if status != da3_api::DA3_OK {
                return Err(da3_api::last_error(status));
            }
            if let Some(v) = self.process_res {
                options.process_res = v;
            }
            if let Some(v) = self.resize_method {
                options.resize_method = v;
            }
            if let Some(v) = self.ref_view_strategy {
                options.ref_view_strategy = v;
            }
            if let Some(v) = self.align_to_input_ext_scale {
                options.align_to_input_ext_scale = v as u32;
            }
            let status = da3_api::da3_options_validate(&options);
            if status != da3_api::DA3_OK {
                return Err(da3_api::last_error(status));
            }
            Ok(options)
        }
    }
}
