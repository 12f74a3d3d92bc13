//! Parity with the official implementation (the oracle), in fp32 on the CPU.
//!
//! `tests/oracle/run_oracle.sh MODEL DIR` writes, with the official package, a random-weight
//! checkpoint in the official layout and the official outputs for every case of the model
//! family's case file (`tests/oracle/cases*.json`); this test loads the same checkpoint
//! through the library and compares. Models: `DA3_PARITY_MODELS` (default
//! `da3-small,da3-base,da3metric-large,da3mono-large,da3nested-reduced`); oracle directory: `DA3_ORACLE_DIR`
//! (default `target/oracle`). A missing oracle directory fails the test.
//!
//! Every tensor the oracle recorded is compared, and every tensor the library produced must
//! have been recorded: a missing or extra output fails. Where the official output is random
//! (its quantiles sampled from more than 100 000 pixels; the library takes exact quantiles),
//! the reference is the official code with the sampling lifted, compared as everything else,
//! and the official as-is output is explained: the library's own functions, given the
//! official's sampled statistics, reproduce it, and those statistics lie within a few
//! standard deviations of the exact ones.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

mod common;

use common::{correlation, load_oracle_checkpoint, options_of, oracle_dir, repo_root};
use da3::config::ModelConfig;
use da3::model::utils::alignment::{
    compute_alignment_mask, compute_sky_mask, least_squares_scale_scalar, set_sky_regions_to_max_depth, SKY_THRESHOLD,
};
use da3::model::NetOutput;
use da3::prediction::Warning;
use da3::{Engine, InferOptions, Scene, Views};
use serde_json::Value;
use tch::{Kind, Tensor};

/// Model level (identical input tensors): every output within this relative error.
const MODEL_TOL: f64 = 1e-4;
/// Pipeline level (from image files): depth within this relative error...
const PIPELINE_DEPTH_TOL: f64 = 1e-3;
/// ...and at least this correlation with the official depth.
const PIPELINE_MIN_CORR: f64 = 0.9999;
/// The official samples 100 000 pixels for its quantiles. The rank (fraction of the
/// population below) of a sample quantile has a standard deviation of sqrt(q (1 - q) / n):
/// 3.1e-4 at q = 0.99, 1.6e-3 at the median. Bands of 6 standard deviations.
const SAMPLES: f64 = 100_000.0;
const BAND_SIGMAS: f64 = 6.0;

const DEFAULT_MODELS: &str = "da3-small,da3-base,da3metric-large,da3mono-large,da3nested-reduced";

struct Reference {
    tensors: HashMap<String, Tensor>,
    case: Value,
    meta: HashMap<String, String>,
}

fn read_reference(path: &Path) -> Reference {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).expect("safetensors header");
    let meta: HashMap<String, String> = meta.metadata().clone().unwrap_or_default().into_iter().collect();
    let case = meta
        .get("case")
        .map(|s| serde_json::from_str(s).expect("case metadata is JSON"))
        .unwrap_or_else(|| panic!("{} has no 'case' metadata", path.display()));
    let tensors = Tensor::read_safetensors(path).expect("readable reference").into_iter().collect();
    Reference { tensors, case, meta }
}

/// max |a - b| over the range of the reference b; for a single value, over |b|.
fn rel_err(ours: &Tensor, reference: &Tensor) -> f64 {
    assert_eq!(ours.size(), reference.size(), "shape mismatch");
    let ours = ours.to_kind(Kind::Double).to_device(tch::Device::Cpu);
    let reference = reference.to_kind(Kind::Double);
    let diff = (&ours - &reference).abs().max().double_value(&[]);
    let scale = if reference.numel() == 1 {
        reference.abs().double_value(&[])
    } else {
        (reference.max() - reference.min()).double_value(&[])
    };
    diff / scale.max(1e-12)
}

/// Fraction of `population` at or below `value`: the rank of a quantile estimate.
fn rank_of(value: &Tensor, population: &Tensor) -> f64 {
    let n = population.numel() as f64;
    population.le_tensor(&value.reshape([])).sum(Kind::Int64).double_value(&[]) / n
}

struct Checker {
    rows: Vec<String>,
    failures: Vec<String>,
}

impl Checker {
    fn check(&mut self, what: &str, value: f64, ok: bool, bound: &str) {
        let row = format!("{what:<66} {value:>12.3e}  {bound:<12} {}", if ok { "ok" } else { "FAIL" });
        println!("{row}");
        if !ok {
            self.failures.push(row.clone());
        }
        self.rows.push(row);
    }

    fn rel(&mut self, what: &str, ours: &Tensor, reference: &Tensor, tol: f64) {
        if ours.size() != reference.size() {
            let msg = format!("shape {:?} vs {:?}", ours.size(), reference.size());
            return self.check(&format!("{what} ({msg})"), f64::NAN, false, "same shape");
        }
        let e = rel_err(ours, reference);
        self.check(what, e, e <= tol, &format!("<= {tol:.0e}"));
    }

    fn equal(&mut self, what: &str, ok: bool) {
        self.check(what, 0.0, ok, "holds");
    }

    fn info(&self, what: &str, value: f64) {
        println!("{:<66} {value:>12.3e}  (information)", what);
    }

    /// Pixels whose non-sky classification (sky < 0.3) differs.
    fn sky_masks(&mut self, what: &str, ours: &Tensor, reference: &Tensor) {
        let differ = compute_sky_mask(ours, SKY_THRESHOLD)
            .expect("sky mask")
            .ne_tensor(&compute_sky_mask(reference, SKY_THRESHOLD).expect("sky mask"))
            .sum(Kind::Int64)
            .int64_value(&[]);
        self.check(what, differ as f64, differ == 0, "== 0 pixels");
    }

    /// The quantile estimate `value` has rank `q` in `population`, within the sampling band.
    fn rank(&mut self, what: &str, value: &Tensor, population: &Tensor, q: f64) {
        let sigma = (q * (1.0 - q) / SAMPLES).sqrt();
        let bound = BAND_SIGMAS * sigma;
        let deviation = (rank_of(value, population) - q).abs();
        self.check(what, deviation, deviation <= bound, &format!("<= {bound:.1e}"));
    }
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

// ---------------------------------------------------------------------------------------------
// The architecture from the official config (official_config.json, written by the oracle)
// ---------------------------------------------------------------------------------------------

/// Equal architectures (preset names aside).
fn same_architecture(a: &ModelConfig, b: &ModelConfig) -> bool {
    a.backbone == b.backbone
        && a.head == b.head
        && a.camera == b.camera
        && a.unused_prefixes == b.unused_prefixes
        && match (&a.metric_branch, &b.metric_branch) {
            (None, None) => true,
            (Some(x), Some(y)) => same_architecture(x, y),
            _ => false,
        }
}

/// Loads a checkpoint written by the oracle (a preset, or the reduced test model through its
/// official config), after checking a preset's configuration against the official YAML.
fn load_engine(dir: &Path, c: &mut Checker) -> Engine {
    let read_json = |name: &str| -> Value {
        let path = dir.join(name);
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
            .unwrap()
    };
    let name = read_json("config.json")["model_name"].as_str().unwrap().to_owned();
    if let Ok(preset) = ModelConfig::from_preset_name(&name) {
        let from_official = ModelConfig::from_official_config(&name, &read_json("official_config.json")).unwrap();
        c.equal(&format!("{name}: preset configuration == official YAML"), same_architecture(&preset, &from_official));
    }
    load_oracle_checkpoint(dir)
}

/// Every official preset's YAML (resolved by the official loader, written by the oracle)
/// against the library's preset of that name.
fn check_official_configs(dir: &Path, c: &mut Checker) {
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e} (run the oracle)", dir.display())) {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        let official: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let preset = ModelConfig::from_preset_name(&name);
        let same = preset.as_ref().is_ok_and(|p| ModelConfig::from_official_config(p.preset, &official).is_ok_and(|o| same_architecture(p, &o)));
        c.equal(&format!("official YAML {name} == ModelConfig::from_preset_name"), same);
        seen.push(name);
    }
    seen.sort();
    let mut presets: Vec<String> = ModelConfig::PRESETS.iter().map(|p| p.to_string()).collect();
    presets.sort();
    c.equal(&format!("official presets {seen:?} == ModelConfig::PRESETS"), seen == presets);
}

// ---------------------------------------------------------------------------------------------
// Model level
// ---------------------------------------------------------------------------------------------

fn scalar_f32(t: &Tensor) -> Tensor {
    t.to_kind(Kind::Float).reshape([1])
}

/// One network's traced tensors under the oracle's names (`tag`: "" or "metric_").
fn put_network(m: &mut BTreeMap<String, Tensor>, tag: &str, out: &NetOutput) {
    let t = out.trace.as_ref().expect("trace kept");
    for i in 0..4 {
        m.insert(format!("{tag}feat_{i}"), t.features[i].shallow_clone());
        m.insert(format!("{tag}cam_token_{i}"), t.camera_tokens[i].shallow_clone());
    }
    m.insert(format!("{tag}head_logits"), t.head_logits.shallow_clone());
    if let Some(s) = &t.sky_logits {
        m.insert(format!("{tag}sky_logits"), s.shallow_clone());
    }
    if let Some(f) = &t.sky_fill_depth {
        m.insert(format!("{tag}sky_fill_depth"), scalar_f32(f));
    }
}

/// Everything the library computed, under the oracle's names.
fn our_tensors(out: &NetOutput) -> BTreeMap<String, Tensor> {
    let mut m = BTreeMap::new();
    put_network(&mut m, "", out);
    m.insert("depth".into(), out.depth.shallow_clone());
    for (k, v) in [("depth_conf", &out.depth_conf), ("extrinsics", &out.extrinsics), ("intrinsics", &out.intrinsics), ("sky", &out.sky)] {
        if let Some(v) = v {
            m.insert(k.into(), v.shallow_clone());
        }
    }
    if let Some(s) = out.scale_factor {
        m.insert("scale_factor".into(), Tensor::from_slice(&[s]));
    }
    if let Some(n) = out.trace.as_ref().and_then(|t| t.nested.as_ref()) {
        put_network(&mut m, "metric_", &n.metric);
        m.insert("metric_depth_raw".into(), n.metric.depth.shallow_clone());
        m.insert("metric_depth".into(), n.metric_depth.shallow_clone());
        m.insert("unaligned_depth".into(), n.unaligned_depth.shallow_clone());
        m.insert("unaligned_depth_conf".into(), n.unaligned_depth_conf.shallow_clone());
        m.insert("unaligned_extrinsics".into(), n.unaligned_extrinsics.shallow_clone());
        if let Some(v) = &n.median_conf {
            m.insert("median_conf".into(), scalar_f32(v));
        }
        if let Some(v) = n.alignment_pixels {
            m.insert("alignment_pixels".into(), Tensor::from_slice(&[v]));
        }
        if let Some(v) = &n.sky_fill_depth {
            m.insert("sky_fill_depth".into(), scalar_f32(v));
        }
    }
    m
}

/// What the library must warn about, given what the official did (its assertion aside):
/// an empty alignment mask (the official's scale factor 0).
fn expected_warnings(r: &Reference) -> Vec<Warning> {
    match r.tensors.get("alignment_pixels") {
        Some(p) if p.int64_value(&[0]) == 0 => vec![Warning::EmptyAlignmentMask],
        _ => vec![],
    }
}

/// Reference entries that are not outputs to compare one to one.
fn is_bookkeeping(key: &str) -> bool {
    matches!(key, "input" | "ref_view" | "is_metric" | "processed_hw") || key.starts_with("sampled_")
}

fn compare_model_level(c: &mut Checker, tag: &dyn Fn(&str) -> String, r: &Reference, out: &NetOutput) {
    let t = |k: &str| r.tensors.get(k).unwrap_or_else(|| panic!("reference lacks {k}"));
    let trace = out.trace.as_ref().unwrap();
    let want_ref = t("ref_view").int64_value(&[0]);
    let got_ref = trace.reference_view.unwrap_or(-1);
    c.check(&tag(&format!("reference view {got_ref} == {want_ref}")), got_ref as f64, got_ref == want_ref, "equal");

    let mut ours = our_tensors(out);
    let official_error = r.meta.get("official_error");
    if let Some(error) = official_error {
        // The official asserted (nested model, all sky); the library returns the any-view
        // branch's outputs unscaled, with a warning.
        c.equal(&tag(&format!("official raised '{error}'")), error.contains("Insufficient non-sky pixels"));
        let skipped = matches!(out.warnings.as_slice(), [Warning::MetricAlignmentSkipped { .. }]);
        c.equal(&tag(&format!("warning {:?}", out.warnings)), skipped);
        c.equal(&tag("not metric, no scale factor"), !out.is_metric && out.scale_factor.is_none());
        for k in ["depth", "depth_conf", "extrinsics"] {
            let mine = ours.remove(k).unwrap_or_else(|| panic!("no {k}"));
            c.rel(&tag(&format!("{k} == unaligned_{k}")), &mine, t(&format!("unaligned_{k}")), MODEL_TOL);
        }
    } else {
        let want_metric = t("is_metric").int64_value(&[0]) == 1;
        c.equal(&tag(&format!("is_metric {} == official", out.is_metric)), out.is_metric == want_metric);
        let want = expected_warnings(r);
        c.equal(&tag(&format!("warnings {:?} == {want:?}", out.warnings)), out.warnings == want);
    }

    let ref_keys: BTreeSet<&str> = r.tensors.keys().map(String::as_str).filter(|k| !is_bookkeeping(k)).collect();
    let our_keys: BTreeSet<&str> = ours.keys().map(String::as_str).collect();
    let only_ours: Vec<_> = our_keys.difference(&ref_keys).collect();
    let only_ref: Vec<_> = ref_keys.difference(&our_keys).collect();
    c.equal(&tag(&format!("same outputs (only ours: {only_ours:?}, only official: {only_ref:?})")), only_ours.is_empty() && only_ref.is_empty());
    for key in our_keys.intersection(&ref_keys) {
        let (mine, theirs) = (&ours[*key], t(key));
        if theirs.kind() == Kind::Int64 {
            let (a, b) = (mine.int64_value(&[0]), theirs.int64_value(&[0]));
            c.check(&tag(&format!("{key} {a} == {b}")), (a - b) as f64, a == b, "equal");
        } else {
            c.rel(&tag(key), mine, theirs, MODEL_TOL);
        }
    }
    if let (Some(mine), Some(theirs)) = (&out.sky, r.tensors.get("sky")) {
        c.sky_masks(&tag("sky mask (< 0.3) differs"), mine, theirs);
        let sky = theirs.ge(SKY_THRESHOLD).to_kind(Kind::Double).mean(Kind::Double).double_value(&[]);
        let want_all_sky = r.case.get("fill_rgb").is_some();
        let mixed = if want_all_sky { sky == 1.0 } else { sky > 0.02 && sky < 0.98 };
        c.check(&tag(if want_all_sky { "oracle: sky everywhere" } else { "oracle: sky map is mixed" }), sky, mixed, "fraction");
    }
    if r.meta.get("sampled").is_some_and(|s| s == "1") {
        explain_sampled(c, tag, r, out);
    }
}

/// The official output of a sampled case, rebuilt from the library's tensors and the
/// official's sampled statistics; and those statistics checked against the exact ones.
fn explain_sampled(c: &mut Checker, tag: &dyn Fn(&str) -> String, r: &Reference, out: &NetOutput) {
    let t = |k: &str| r.tensors.get(k).unwrap_or_else(|| panic!("reference lacks {k}"));
    let trace = out.trace.as_ref().unwrap();
    let sky = out.sky.as_ref().expect("sampling happens only with a sky map");
    let non_sky = compute_sky_mask(sky, SKY_THRESHOLD).expect("sky mask");
    match &trace.nested {
        None => {
            // _process_mono_sky_estimation: only the fill value was sampled.
            let fill = t("sampled_sky_fill_depth");
            let (depth, _) = set_sky_regions_to_max_depth(&out.depth, None, &non_sky, &fill.reshape([])).expect("sky filling");
            c.rel(&tag("as-is official depth, from its sampled fill"), &depth, t("sampled_depth"), MODEL_TOL);
            c.rank(&tag("as-is official fill: rank - 0.99"), fill, &out.depth.masked_select(&non_sky), 0.99);
            c.info(&tag("as-is official fill / exact - 1"), fill.double_value(&[0]) / t("sky_fill_depth").double_value(&[0]) - 1.0);
        }
        Some(n) => {
            let (depth, conf, ext) = (&n.unaligned_depth, &n.unaligned_depth_conf, &n.unaligned_extrinsics);
            let median = t("sampled_median_conf").reshape([]);
            let mask = compute_alignment_mask(conf, &non_sky, depth, &n.metric_depth, &median).expect("alignment mask");
            let pixels = mask.sum(Kind::Int64).int64_value(&[]);
            let want_pixels = t("sampled_alignment_pixels").int64_value(&[0]);
            c.check(&tag(&format!("as-is official alignment pixels {pixels} == {want_pixels}")), (pixels - want_pixels) as f64, pixels == want_pixels, "equal");
            let scale = least_squares_scale_scalar(&n.metric_depth.masked_select(&mask), &depth.masked_select(&mask)).expect("least squares");
            c.rel(&tag("as-is official scale_factor, from its sampled median"), &scale.reshape([1]), t("sampled_scale_factor"), MODEL_TOL);
            let fill = t("sampled_sky_fill_depth");
            let (d, cf) = set_sky_regions_to_max_depth(&(depth * &scale), Some(conf), &non_sky, &fill.reshape([])).expect("sky filling");
            c.rel(&tag("as-is official depth, from its sampled statistics"), &d, t("sampled_depth"), MODEL_TOL);
            c.rel(&tag("as-is official depth_conf, from its sampled statistics"), &cf.unwrap(), t("sampled_depth_conf"), MODEL_TOL);
            let e = ext.copy();
            let _ = e.narrow(-1, 3, 1).g_mul_(&scale);
            c.rel(&tag("as-is official extrinsics, from its sampled statistics"), &e, t("sampled_extrinsics"), MODEL_TOL);
            c.rank(&tag("as-is official median conf: rank - 0.5"), &median, &conf.masked_select(&non_sky), 0.5);
            c.rank(&tag("as-is official sky fill: rank - 0.99"), fill, &d.masked_select(&non_sky), 0.99);
            if let Some(metric_fill) = r.tensors.get("sampled_metric_sky_fill_depth") {
                let metric_sky = n.metric.sky.as_ref().unwrap();
                let metric_non_sky = compute_sky_mask(metric_sky, SKY_THRESHOLD).expect("sky mask");
                c.rank(&tag("as-is official metric-branch fill: rank - 0.99"), metric_fill, &n.metric.depth.masked_select(&metric_non_sky), 0.99);
            }
            let exact = t("scale_factor").double_value(&[0]);
            c.info(&tag("as-is official scale_factor / exact - 1"), t("sampled_scale_factor").double_value(&[0]) / exact - 1.0);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Pipeline level
// ---------------------------------------------------------------------------------------------

fn compare_prediction(c: &mut Checker, tag: &dyn Fn(&str) -> String, r: &Reference, pred: &da3::Prediction, shape: &[i64]) {
    let t = |k: &str| r.tensors.get(k).unwrap_or_else(|| panic!("reference lacks {k}"));
    let official_error = r.meta.contains_key("official_error");
    let prefix = if official_error { "unaligned_" } else { "" };
    let map = |v: &[f32], k: &str| Tensor::from_slice(v).reshape(t(k).size());
    let depth_key = format!("{prefix}depth");
    let depth = map(&pred.depth, &depth_key);
    let e = rel_err(&depth, t(&depth_key));
    c.check(&tag(&format!("{depth_key} rel err")), e, e <= PIPELINE_DEPTH_TOL, &format!("<= {PIPELINE_DEPTH_TOL:.0e}"));
    let corr = correlation(&depth, t(&depth_key));
    c.check(&tag("depth correlation"), corr, corr >= PIPELINE_MIN_CORR, &format!(">= {PIPELINE_MIN_CORR}"));
    let conf_key = format!("{prefix}depth_conf");
    c.equal(&tag("confidence present == official"), pred.has_confidence() == r.tensors.contains_key(&conf_key));
    if pred.has_confidence() {
        c.rel(&tag("conf rel err"), &map(&pred.confidence, &conf_key), t(&conf_key), PIPELINE_DEPTH_TOL);
    }
    let ext_key = format!("{prefix}extrinsics");
    c.equal(&tag("cameras present == official"), pred.extrinsics.is_some() == r.tensors.contains_key(&ext_key));
    if let (Some(e), Some(k)) = (&pred.extrinsics, &pred.intrinsics) {
        c.rel(&tag("extrinsics rel err"), &map(e, &ext_key), t(&ext_key), PIPELINE_DEPTH_TOL);
        c.rel(&tag("intrinsics rel err"), &map(k, "intrinsics"), t("intrinsics"), PIPELINE_DEPTH_TOL);
    }
    c.equal(&tag("sky present == official"), pred.sky.is_some() == r.tensors.contains_key("sky"));
    if let Some(sky) = &pred.sky {
        let sky = map(sky, "sky");
        c.rel(&tag("sky rel err"), &sky, t("sky"), PIPELINE_DEPTH_TOL);
        c.sky_masks(&tag("sky mask (< 0.3) differs"), &sky, t("sky"));
    }
    if official_error {
        let skipped = matches!(pred.warnings.as_slice(), [Warning::MetricAlignmentSkipped { .. }]);
        c.equal(&tag(&format!("warning: {}", pred.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>().join("; "))), skipped);
        c.equal(&tag("not metric, no scale factor"), !pred.is_metric && pred.scale_factor.is_none());
    } else {
        c.equal(&tag(&format!("is_metric {} == official", pred.is_metric)), pred.is_metric == (t("is_metric").int64_value(&[0]) == 1));
        let want = expected_warnings(r);
        c.equal(&tag(&format!("warnings {:?} == {want:?}", pred.warnings)), pred.warnings == want);
        c.equal(&tag("scale factor present == official"), pred.scale_factor.is_some() == r.tensors.contains_key("scale_factor"));
        if let Some(s) = pred.scale_factor {
            c.rel(&tag("scale_factor rel err"), &Tensor::from_slice(&[s]), t("scale_factor"), PIPELINE_DEPTH_TOL);
        }
    }
    if let Some(sampled) = r.tensors.get("sampled_depth") {
        c.info(&tag("as-is official (sampled) depth: rel err"), rel_err(&depth, sampled));
    }
    assert_eq!(depth.size(), shape);
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
    let mut c = Checker { rows: vec![], failures: vec![] };
    check_official_configs(&dir.join("official_configs"), &mut c);
    let mut engines: HashMap<String, Engine> = HashMap::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&refs).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "safetensors"));
    files.sort();
    assert!(!files.is_empty(), "no reference files in {}", refs.display());
    println!("\nparity {model}: {} cases from {}", files.len(), refs.display());
    for file in &files {
        let r = read_reference(file);
        let name = r.case["name"].as_str().unwrap().to_owned();
        let kind = r.case["kind"].as_str().unwrap().to_owned();
        let variant = r.case.get("checkpoint").and_then(|v| v.as_str()).map(|v| format!("checkpoint_{v}"));
        let checkpoint = variant.unwrap_or_else(|| "checkpoint".into());
        if !engines.contains_key(&checkpoint) {
            let engine = load_engine(&dir.join(&checkpoint), &mut c);
            engines.insert(checkpoint.clone(), engine);
        }
        let engine = &engines[&checkpoint];
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
            let checked = opts.check().expect("valid options");
            let processed = da3::preprocess::process_views(&images, checked.preprocess(), 2).expect("preprocessing");
            let hw = Vec::<i64>::try_from(t("processed_hw")).unwrap();
            let same_size = hw == [processed.height as i64, processed.width as i64];
            c.check(&tag("processed size equal"), 0.0, same_size, &format!("{hw:?}"));
            if !same_size {
                continue;
            }
            let input_err = (&processed.images - t("input")).abs().max().double_value(&[]);
            c.check(&tag("input max abs diff"), input_err, input_err <= 1e-6, "<= 1e-6");
            let pred = engine.infer(&Scene::new(Views::Files(&paths)), &checked).expect("inference");
            let shape = [pred.views as i64, pred.height as i64, pred.width as i64];
            compare_prediction(&mut c, &tag, &r, &pred, &shape);
            if r.meta.get("sampled").is_some_and(|s| s == "1") {
                // The official output is random here: explain it from the traced network.
                let out = engine.forward(&processed.images, None, checked.forward(), true).expect("forward");
                explain_sampled(&mut c, &tag, &r, &out);
            }
        } else {
            let out = engine.forward(t("input"), None, opts.check().expect("valid options").forward(), true).expect("forward");
            compare_model_level(&mut c, &tag, &r, &out);
            if let Some(rgb) = r.case.get("fill_rgb") {
                // The same uniform image through the whole library: decoding aside, what a
                // caller gets for a frame of blue sky (no resize: process_res = longest side).
                let rgb: Vec<u8> = rgb.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u8).collect();
                let (h, w) = (r.case["height"].as_u64().unwrap() as u32, r.case["width"].as_u64().unwrap() as u32);
                let views = r.case["views"].as_u64().unwrap() as usize;
                let image = da3::RgbImage { width: w, height: h, data: rgb.repeat((w * h) as usize) };
                let opts = InferOptions { process_res: w.max(h), ..opts.clone() };
                let images = vec![image; views];
                let pred = engine
                    .infer(&Scene::new(Views::Rgb(&images)), &opts.check().expect("valid options"))
                    .expect("an all-sky scene is no error");
                let tag = |q: &str| format!("{model} {name} infer(blue image) {q}");
                compare_prediction(&mut c, &tag, &r, &pred, &[views as i64, h as i64, w as i64]);
            }
        }
    }
    assert!(c.failures.is_empty(), "{} parity checks failed:\n{}", c.failures.len(), c.failures.join("\n"));
}

#[test]
fn parity_with_official_implementation() {
    let models = std::env::var("DA3_PARITY_MODELS").unwrap_or_else(|_| DEFAULT_MODELS.into());
    for model in models.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        run_model(model);
    }
}
