//! Parity with the official implementation (the oracle), in fp32 on the CPU.
//!
//! `tests/oracle/run_oracle.sh MODEL DIR` writes, with the official package, a random-weight
//! checkpoint in the official layout and the official outputs for every case of
//! `tests/oracle/cases.json`; this test loads the same checkpoint through the library and
//! compares. Models: `DA3_PARITY_MODELS` (default `da3-small,da3-base`); oracle directory:
//! `DA3_ORACLE_DIR` (default `target/oracle`). A missing oracle directory fails the test.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use da3::{Engine, InferOptions, Precision, RefViewStrategy, ResizeMethod};
use tch::{Kind, Tensor};

/// Model level (identical input tensors): every output within this relative error.
const MODEL_TOL: f64 = 1e-4;
/// Pipeline level (from image files): depth within this relative error...
const PIPELINE_DEPTH_TOL: f64 = 1e-3;
/// ...and at least this correlation with the official depth.
const PIPELINE_MIN_CORR: f64 = 0.9999;

struct Reference {
    tensors: HashMap<String, Tensor>,
    case: serde_json::Value,
}

fn read_reference(path: &Path) -> Reference {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).expect("safetensors header");
    let case = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("case"))
        .map(|s| serde_json::from_str(s).expect("case metadata is JSON"))
        .unwrap_or_else(|| panic!("{} has no 'case' metadata", path.display()));
    let tensors = Tensor::read_safetensors(path).expect("readable reference").into_iter().collect();
    Reference { tensors, case }
}

/// max |a - b| over the range of the reference b.
fn rel_err(ours: &Tensor, reference: &Tensor) -> f64 {
    assert_eq!(ours.size(), reference.size(), "shape mismatch");
    let ours = ours.to_kind(Kind::Double).to_device(tch::Device::Cpu);
    let reference = reference.to_kind(Kind::Double);
    let diff = (&ours - &reference).abs().max().double_value(&[]);
    let range = (reference.max() - reference.min()).double_value(&[]);
    diff / range.max(1e-12)
}

fn correlation(a: &Tensor, b: &Tensor) -> f64 {
    let a = a.to_kind(Kind::Double).reshape([-1]);
    let b = b.to_kind(Kind::Double).reshape([-1]);
    let a = &a - a.mean(Kind::Double);
    let b = &b - b.mean(Kind::Double);
    ((&a * &b).sum(Kind::Double) / ((&a * &a).sum(Kind::Double).sqrt() * (&b * &b).sum(Kind::Double).sqrt()))
        .double_value(&[])
}

struct Checker {
    rows: Vec<String>,
    failures: Vec<String>,
}

impl Checker {
    fn check(&mut self, what: &str, value: f64, ok: bool, bound: &str) {
        let row = format!("{what:<58} {value:>12.3e}  {bound:<10} {}", if ok { "ok" } else { "FAIL" });
        println!("{row}");
        if !ok {
            self.failures.push(row.clone());
        }
        self.rows.push(row);
    }

    fn rel(&mut self, what: &str, ours: &Tensor, reference: &Tensor, tol: f64) {
        let e = rel_err(ours, reference);
        self.check(what, e, e <= tol, &format!("<= {tol:.0e}"));
    }
}

/// The repository (for `assets/`); `DA3_REPO_ROOT` overrides it when the test binary is
/// carried to another machine.
fn repo_root() -> PathBuf {
    std::env::var_os("DA3_REPO_ROOT").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

fn oracle_dir() -> PathBuf {
    std::env::var_os("DA3_ORACLE_DIR").map(PathBuf::from).unwrap_or_else(|| repo_root().join("target").join("oracle"))
}

fn resolve_image(spec: &str, images_dir: &Path) -> PathBuf {
    if let Some(name) = spec.strip_prefix("@gen/") {
        images_dir.join(name)
    } else if let Some(name) = spec.strip_prefix("@assets/") {
        repo_root().join("assets").join("images").join(name)
    } else {
        repo_root().join("tests").join("oracle").join(spec)
    }
}

fn options_of(case: &serde_json::Value) -> InferOptions {
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

fn run_model(model: &str) {
    let dir = oracle_dir().join(model);
    let refs = dir.join("ref");
    assert!(
        refs.is_dir(),
        "no oracle outputs in {}: run `tests/oracle/run_oracle.sh {model} {}` first",
        refs.display(),
        dir.display()
    );
    // fp32 on the CPU: GPU convolutions default to TF32, which is not the oracle's arithmetic.
    if std::env::var_os("DA3_DEVICE").is_none() {
        std::env::set_var("DA3_DEVICE", "cpu");
    }
    let engine = Engine::load(dir.join("checkpoint").to_str().unwrap(), false, Precision::Fp32).expect("checkpoint loads");
    assert_eq!(engine.preset_name(), model);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&refs).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "safetensors"));
    files.sort();
    assert!(!files.is_empty(), "no reference files in {}", refs.display());
    let mut c = Checker { rows: vec![], failures: vec![] };
    println!("\nparity {model}: {} cases from {}", files.len(), refs.display());
    for file in &files {
        let r = read_reference(file);
        let name = r.case["name"].as_str().unwrap().to_owned();
        let kind = r.case["kind"].as_str().unwrap().to_owned();
        let opts = options_of(&r.case);
        let t = |k: &str| r.tensors.get(k).unwrap_or_else(|| panic!("{name}: reference lacks {k}"));
        let tag = |q: &str| format!("{model} {name} {q}");
        if kind == "pipeline" {
            let paths: Vec<PathBuf> = r.case["images"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| resolve_image(p.as_str().unwrap(), &dir.join("images")))
                .collect();
            let images: Vec<da3::RgbImage> = paths.iter().map(|p| da3::preprocess::load_image(p).unwrap()).collect();
            let processed = da3::preprocess::process_views(&images, &opts).expect("preprocessing");
            let hw = Vec::<i64>::try_from(t("processed_hw")).unwrap();
            let same_size = hw == [processed.height as i64, processed.width as i64];
            c.check(&tag("processed size equal"), 0.0, same_size, &format!("{hw:?}"));
            if !same_size {
                continue;
            }
            let input_err = (&processed.images - t("input")).abs().max().double_value(&[]);
            c.check(&tag("input max abs diff"), input_err, input_err <= 1e-6, "<= 1e-6");
            let pred = engine.infer_files(&paths, &opts).expect("inference");
            let depth = Tensor::from_slice(&pred.depth).reshape(t("depth").size());
            let e = rel_err(&depth, t("depth"));
            c.check(&tag("depth rel err"), e, e <= PIPELINE_DEPTH_TOL, &format!("<= {PIPELINE_DEPTH_TOL:.0e}"));
            let corr = correlation(&depth, t("depth"));
            c.check(&tag("depth correlation"), corr, corr >= PIPELINE_MIN_CORR, &format!(">= {PIPELINE_MIN_CORR}"));
            let conf = Tensor::from_slice(&pred.confidence).reshape(t("depth_conf").size());
            c.rel(&tag("conf rel err"), &conf, t("depth_conf"), PIPELINE_DEPTH_TOL);
            let ext = Tensor::from_slice(pred.extrinsics.as_ref().unwrap()).reshape(t("extrinsics").size());
            c.rel(&tag("extrinsics rel err"), &ext, t("extrinsics"), PIPELINE_DEPTH_TOL);
            let int = Tensor::from_slice(pred.intrinsics.as_ref().unwrap()).reshape(t("intrinsics").size());
            c.rel(&tag("intrinsics rel err"), &int, t("intrinsics"), PIPELINE_DEPTH_TOL);
        } else {
            let out = engine.forward(t("input"), &opts, true).expect("forward");
            let trace = out.trace.as_ref().unwrap();
            let want_ref = t("ref_view").int64_value(&[0]);
            let got_ref = trace.reference_view.unwrap_or(-1);
            c.check(&tag(&format!("reference view {got_ref} == {want_ref}")), got_ref as f64, got_ref == want_ref, "equal");
            for i in 0..4 {
                c.rel(&tag(&format!("feat_{i}")), &trace.features[i], t(&format!("feat_{i}")), MODEL_TOL);
                c.rel(&tag(&format!("cam_token_{i}")), &trace.camera_tokens[i], t(&format!("cam_token_{i}")), MODEL_TOL);
            }
            c.rel(&tag("head_logits"), &trace.head_logits, t("head_logits"), MODEL_TOL);
            c.rel(&tag("depth"), &out.depth, t("depth"), MODEL_TOL);
            c.rel(&tag("depth_conf"), &out.depth_conf, t("depth_conf"), MODEL_TOL);
            c.rel(&tag("extrinsics"), &out.extrinsics, t("extrinsics"), MODEL_TOL);
            c.rel(&tag("intrinsics"), &out.intrinsics, t("intrinsics"), MODEL_TOL);
        }
    }
    assert!(c.failures.is_empty(), "{} parity checks failed:\n{}", c.failures.len(), c.failures.join("\n"));
}

#[test]
fn parity_with_official_implementation() {
    let models = std::env::var("DA3_PARITY_MODELS").unwrap_or_else(|_| "da3-small,da3-base".into());
    for model in models.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        run_model(model);
    }
}
