//! Helpers shared by the parity tests (`tests/parity.rs`, `tests/parity_pose.rs`).
#![allow(dead_code)] // each test binary uses a subset

use std::path::PathBuf;

use da3::config::{BackboneConfig, CameraConfig, HeadConfig, HeadKind, ModelConfig};
use da3::hub::Checkpoint;
use da3::{Engine, InferOptions, Precision, RefViewStrategy, ResizeMethod};
use serde_json::Value;
use tch::{Kind, Tensor};

/// Pearson correlation of two tensors, in f64.
pub fn correlation(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.to_kind(Kind::Double).reshape([-1]);
    let b = b.to_kind(Kind::Double).reshape([-1]);
    let a = &a - a.mean(Kind::Double);
    let b = &b - b.mean(Kind::Double);
    ((&a * &b).sum(Kind::Double) / ((&a * &a).sum(Kind::Double).sqrt() * (&b * &b).sum(Kind::Double).sqrt()))
        .double_value(&[])
}

/// The repository (for `assets/`); `DA3_REPO_ROOT` overrides it when the test binary is
/// carried to another machine.
pub fn repo_root() -> PathBuf {
    std::env::var_os("DA3_REPO_ROOT").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// Where `tests/oracle/run_oracle*.sh` wrote the official outputs: `DA3_ORACLE_DIR`, else
/// `target/oracle`.
pub fn oracle_dir() -> PathBuf {
    std::env::var_os("DA3_ORACLE_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target").join("oracle"))
}

/// The preprocessing options a case names (official keyword names), defaults elsewhere.
pub fn options_of(case: &serde_json::Value) -> InferOptions {
    let mut o = InferOptions::default();
    if let Some(s) = case.get("ref_view_strategy").and_then(|v| v.as_str()) {
        o.ref_view_strategy = RefViewStrategy::from_official_name(s).expect("known strategy");
    }
    if let Some(r) = case.get("process_res").and_then(|v| v.as_u64()) {
        o.process_res = r as u32;
    }
    if let Some(m) = case.get("process_res_method").and_then(|v| v.as_str()) {
        o.resize_method = ResizeMethod::from_official_name(m).expect("known method");
    }
    o
}

// ---------------------------------------------------------------------------------------------
// The architecture from the official config (official_config.json, written by the oracle)
// ---------------------------------------------------------------------------------------------

/// The reduced test model is no preset: its name is made static here.
pub const REDUCED_MODELS: &[&str] = &["da3nested-reduced"];

pub fn static_name(name: &str, known: &[&'static str]) -> &'static str {
    known.iter().copied().find(|k| *k == name).unwrap_or_else(|| panic!("unexpected name '{name}'"))
}

/// One `DepthAnything3Net` of an official config (`net`, `head`, `cam_dec`, `cam_enc`, `gs_head`).
pub fn net_from_official(preset: &'static str, v: &Value) -> ModelConfig {
    let net = &v["net"];
    let int = |v: &Value| v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"));
    let start = |key: &str| net.get(key).map(int).filter(|&s| s >= 0).map(|s| s as usize);
    let layers: Vec<usize> = net["out_layers"].as_array().unwrap().iter().map(|l| int(l) as usize).collect();
    let name = static_name(net["name"].as_str().unwrap(), &["vits", "vitb", "vitl", "vitg"]);
    let cat_token = net.get("cat_token").map(|c| c.as_bool().unwrap()).unwrap_or(true);
    let mut backbone = BackboneConfig::vit(name, layers.try_into().unwrap(), start("alt_start"), cat_token).unwrap();
    backbone.qknorm_start = start("qknorm_start");
    backbone.rope_start = start("rope_start");
    let head = &v["head"];
    let channels: Vec<i64> = head["out_channels"].as_array().unwrap().iter().map(int).collect();
    let kind = match head["__object__"]["name"].as_str().unwrap() {
        "DualDPT" => HeadKind::DualDpt,
        "DPT" => HeadKind::Dpt,
        other => panic!("unexpected head {other}"),
    };
    let camera = v.get("cam_dec").filter(|c| !c.is_null()).map(|dec| CameraConfig {
        enc_dim_out: int(&v["cam_enc"]["dim_out"]),
        dec_dim_in: int(&dec["dim_in"]),
    });
    ModelConfig {
        preset,
        backbone,
        head: HeadConfig {
            kind,
            dim_in: int(&head["dim_in"]),
            output_dim: int(&head["output_dim"]),
            features: int(&head["features"]),
            out_channels: channels.try_into().unwrap(),
        },
        camera,
        // The 3D-Gaussian head and adapter are not run by the library.
        unused_prefixes: if v.get("gs_head").is_some() { &["gs_head.", "gs_adapter."] } else { &[] },
        metric_branch: None,
    }
}

pub fn config_from_official(preset: &'static str, v: &Value) -> ModelConfig {
    match v["__object__"]["name"].as_str().unwrap() {
        "DepthAnything3Net" => net_from_official(preset, v),
        "NestedDepthAnything3Net" => ModelConfig::nested(
            preset,
            net_from_official(preset, &v["anyview"]),
            net_from_official("da3metric-large", &v["metric"]),
        ),
        other => panic!("unexpected model class {other}"),
    }
}

/// Loads the oracle's checkpoint in `dir` in fp32: a preset through `Engine::load`, the reduced
/// test model through `Engine::load_checkpoint` with the architecture of its official config.
pub fn load_oracle_checkpoint(dir: &std::path::Path) -> Engine {
    let read_json = |name: &str| -> Value {
        let path = dir.join(name);
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
            .unwrap()
    };
    let name = read_json("config.json")["model_name"].as_str().unwrap().to_owned();
    match ModelConfig::from_preset_name(&name) {
        Ok(_) => Engine::load(dir.to_str().unwrap(), false, Precision::Fp32).expect("checkpoint loads"),
        Err(_) => {
            let config = config_from_official(static_name(&name, REDUCED_MODELS), &read_json("official_config.json"));
            Engine::load_checkpoint(&Checkpoint { dir: dir.to_owned(), config }, false, Precision::Fp32).expect("checkpoint loads")
        }
    }
}
