//! Helpers shared by the integration tests (parity, loading, several replicas, out of memory).
#![allow(dead_code)] // each test binary uses a subset

use std::path::PathBuf;

use da3::{Engine, InferOptions, LoadOptions, Precision, RefViewStrategy, ResizeMethod};
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

/// The random-weight checkpoint of `model` that the oracle made (asserted to exist).
pub fn oracle_checkpoint(model: &str) -> PathBuf {
    let dir = oracle_dir().join(model).join("checkpoint");
    assert!(dir.is_dir(), "{} missing: run tests/oracle/run_oracle.sh {model} target/oracle/{model} first", dir.display());
    dir
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

/// Loads the oracle's checkpoint in `dir` in fp32 (a preset, or the reduced test model through
/// its `official_config.json`).
pub fn load_oracle_checkpoint(dir: &std::path::Path) -> Engine {
    Engine::load(dir.to_str().unwrap(), LoadOptions::new(false, Precision::Fp32).with_settings(da3::Settings::from_env().expect("settings"))).expect("checkpoint loads")
}

/// A deterministic RGB8 test pattern of `width` x `height`, different per `seed`.
pub fn pattern(width: u32, height: u32, seed: u32) -> Vec<u8> {
    let mut data = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            let v = x * (3 + seed) + y * (5 + 2 * seed) + seed * 40;
            data.extend_from_slice(&[(v % 251) as u8, ((v * 7 / 3) % 253) as u8, ((x * y + seed) % 241) as u8]);
        }
    }
    data
}
