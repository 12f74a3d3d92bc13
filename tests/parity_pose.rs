//! Parity with the official implementation for pose-conditioned inference (known cameras),
//! ray-based pose and exported backbone features, in fp32 on the CPU.
//!
//! `tests/oracle/run_oracle_pose.sh MODEL DIR` runs the official package on every case of
//! `tests/oracle/cases_pose.json` (synthetic camera rigs: a circle of cameras looking inward,
//! a camera moving forward on a curved path; 10 views and more for the alignment RANSAC) and
//! writes DIR/pose_ref; this test runs the same inputs through the library and compares.
//! Models: `DA3_POSE_PARITY_MODELS` (default `da3-small,da3-base,da3nested-reduced`; the nested
//! model has pipeline cases only); oracle directory:
//! `DA3_ORACLE_DIR` (default `target/oracle`). A missing oracle directory fails the test.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

mod common;

use common::{correlation, load_oracle_checkpoint, options_of, oracle_dir};
use da3::camera_input::normalize_extrinsics;
use da3::model::reference_view_selector::original_order;
use da3::preprocess::{adjust_intrinsics, load_image, process_views};
use da3::utils::rng::NumpyGenerator;
use da3::{CameraInput, Engine, Error, InferOptions, Scene, Views};
use tch::{Kind, Tensor};

/// Model level (identical input tensors): every output within this relative error.
const MODEL_TOL: f64 = 1e-4;
const DEFAULT_MODELS: &str = "da3-small,da3-base,da3nested-reduced";
/// Pipeline level (image files and cameras in, aligned prediction out): depth within this
/// relative error and at least this correlation; cameras, scale and features within it too.
const PIPELINE_TOL: f64 = 1e-3;
const PIPELINE_MIN_CORR: f64 = 0.9999;
/// Inputs computed without the network (preprocessed images and intrinsics, normalised extrinsics).
const INPUT_TOL: f64 = 1e-6;

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
        .unwrap_or(serde_json::Value::Null);
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

#[derive(Default)]
struct Checker {
    failures: Vec<String>,
}

impl Checker {
    fn check(&mut self, what: &str, value: f64, ok: bool, bound: &str) {
        let row = format!("{what:<62} {value:>12.3e}  {bound:<10} {}", if ok { "ok" } else { "FAIL" });
        println!("{row}");
        if !ok {
            self.failures.push(row);
        }
    }

    fn rel(&mut self, what: &str, ours: &Tensor, reference: &Tensor, tol: f64) {
        let e = rel_err(ours, reference);
        self.check(what, e, e <= tol, &format!("<= {tol:.0e}"));
    }
}

/// The shared options plus the pose cases' own keywords.
fn pose_options_of(case: &serde_json::Value) -> InferOptions {
    let mut o = options_of(case);
    if let Some(b) = case.get("use_ray_pose").and_then(|v| v.as_bool()) {
        o.use_ray_pose = b;
    }
    if let Some(b) = case.get("align_to_input_ext_scale").and_then(|v| v.as_bool()) {
        o.align_to_input_ext_scale = b;
    }
    if let Some(layers) = case.get("export_feat_layers").and_then(|v| v.as_array()) {
        o.export_feat_layers = layers.iter().map(|l| l.as_u64().unwrap() as usize).collect();
    }
    o
}

fn host_f32(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(&t.to_kind(Kind::Float).contiguous().reshape([-1])).unwrap()
}

fn load_engine(dir: &Path, model: &str) -> Engine {
    // fp32 on the CPU: GPU convolutions default to TF32, which is not the oracle's arithmetic.
    if std::env::var_os("DA3_DEVICE").is_none() {
        std::env::set_var("DA3_DEVICE", "cpu");
    }
    let engine = load_oracle_checkpoint(&dir.join("checkpoint"));
    assert_eq!(engine.preset_name(), model);
    engine
}

/// The official returns exported features in the order the backbone processed the views
/// (reference view first when one was chosen); the library returns input order.
fn official_feature_in_input_order(feature: &Tensor, reference_view: i64) -> Tensor {
    if reference_view < 0 {
        return feature.shallow_clone();
    }
    let views = feature.size()[0];
    feature.index_select(0, &Tensor::from_slice(&original_order(views, reference_view)))
}

fn model_case(engine: &Engine, r: &Reference, tag: &dyn Fn(&str) -> String, c: &mut Checker) {
    let t = |k: &str| r.tensors.get(k).unwrap_or_else(|| panic!("{}: reference lacks {k}", tag("")));
    let opts = pose_options_of(&r.case);
    let cameras = r.tensors.get("extrinsics_in").map(|e| (e, t("intrinsics_in")));
    if let Some(raw) = r.tensors.get("raw_extrinsics") {
        c.rel(&tag("normalised extrinsics"), &normalize_extrinsics(raw).expect("normalised extrinsics"), t("extrinsics_in"), INPUT_TOL);
    }
    let out = engine.forward(t("input"), cameras, opts.check().expect("valid options").forward(), true).expect("forward");
    let trace = out.trace.as_ref().unwrap();
    let want_ref = t("ref_view").int64_value(&[0]);
    let got_ref = trace.reference_view.unwrap_or(-1);
    c.check(&tag(&format!("reference view {got_ref} == {want_ref}")), got_ref as f64, got_ref == want_ref, "equal");
    if cameras.is_some() {
        c.rel(&tag("camera encoder tokens"), trace.camera_encoding.as_ref().unwrap(), t("camera_encoding"), MODEL_TOL);
    }
    for i in 0..4 {
        c.rel(&tag(&format!("feat_{i}")), &trace.features[i], t(&format!("feat_{i}")), MODEL_TOL);
        c.rel(&tag(&format!("cam_token_{i}")), &trace.camera_tokens[i], t(&format!("cam_token_{i}")), MODEL_TOL);
    }
    c.rel(&tag("head_logits"), &trace.head_logits, t("head_logits"), MODEL_TOL);
    c.rel(&tag("depth"), &out.depth, t("depth"), MODEL_TOL);
    c.rel(&tag("depth_conf"), out.depth_conf.as_ref().expect("confidence"), t("depth_conf"), MODEL_TOL);
    if opts.use_ray_pose {
        c.rel(&tag("ray"), trace.ray.as_ref().unwrap(), t("ray"), MODEL_TOL);
        c.rel(&tag("ray_conf"), trace.ray_conf.as_ref().unwrap(), t("ray_conf"), MODEL_TOL);
    } else {
        c.check(&tag("ray branch not run"), 0.0, trace.ray.is_none(), "none");
    }
    c.rel(&tag("extrinsics"), out.extrinsics.as_ref().expect("extrinsics"), t("extrinsics"), MODEL_TOL);
    c.rel(&tag("intrinsics"), out.intrinsics.as_ref().expect("intrinsics"), t("intrinsics"), MODEL_TOL);
    let layers: Vec<usize> = out.exported_features.iter().map(|(l, _)| *l).collect();
    c.check(&tag("exported layers as requested"), 0.0, layers == opts.export_feat_layers, &format!("{layers:?}"));
    for (layer, feature) in &out.exported_features {
        let official = official_feature_in_input_order(t(&official_feature_key(*layer, &opts.export_feat_layers)), want_ref);
        c.rel(&tag(&format!("feat_layer_{layer}")), feature, &official, MODEL_TOL);
    }
}

/// Where the official puts block `layer`'s features: it collects the blocks in increasing
/// order and names them after the request in the order given, so for an unsorted request
/// `feat_layer_{requested[k]}` holds the k-th smallest requested block.
fn official_feature_key(layer: usize, requested: &[usize]) -> String {
    let mut sorted = requested.to_vec();
    sorted.sort_unstable();
    let k = sorted.iter().position(|&l| l == layer).expect("a requested layer");
    format!("feat_layer_{}", requested[k])
}

fn pipeline_case(engine: &Engine, dir: &Path, r: &Reference, tag: &dyn Fn(&str) -> String, c: &mut Checker) {
    let t = |k: &str| r.tensors.get(k).unwrap_or_else(|| panic!("{}: reference lacks {k}", tag("")));
    let name = r.case["name"].as_str().unwrap();
    let views = r.case["sizes"].as_array().unwrap().len();
    let paths: Vec<PathBuf> = (0..views).map(|i| dir.join("images").join(format!("{name}_{i}.png"))).collect();
    let opts = pose_options_of(&r.case);
    let images: Vec<da3::RgbImage> = paths.iter().map(|p| load_image(p).unwrap()).collect();
    let processed = process_views(&images, opts.check().expect("valid options").preprocess(), 2).expect("preprocessing");
    let hw = Vec::<i64>::try_from(t("processed_hw")).unwrap();
    let same_size = hw == [processed.height as i64, processed.width as i64];
    c.check(&tag("processed size equal"), 0.0, same_size, &format!("{hw:?}"));
    if !same_size {
        return;
    }
    let input_err = (&processed.images - t("input")).abs().max().double_value(&[]);
    c.check(&tag("input max abs diff"), input_err, input_err <= INPUT_TOL, &format!("<= {INPUT_TOL:.0e}"));

    let given = r.tensors.get("given_extrinsics").map(|e| (host_f32(e), host_f32(t("given_intrinsics"))));
    let cameras = given.as_ref().map(|(e, k)| CameraInput { extrinsics: e, intrinsics: k });
    if let Some(cam) = &cameras {
        let known = cam.validate(views).expect("valid cameras");
        let ours: Vec<f32> = known
            .intrinsics
            .iter()
            .zip(&processed.grid_changes)
            .flat_map(|(k, changes)| adjust_intrinsics(k, changes))
            .collect();
        let ours = Tensor::from_slice(&ours).reshape([views as i64, 3, 3]);
        c.rel(&tag("processed intrinsics"), &ours, t("processed_intrinsics"), INPUT_TOL);
        c.rel(&tag("normalised extrinsics"), &normalize_extrinsics(&known.extrinsics_tensor().expect("extrinsics tensor")).expect("normalised extrinsics"), t("normalized_extrinsics"), INPUT_TOL);
        // The alignment RANSAC's subsets: the replica of numpy's generator draws the same.
        let draws: Vec<&Tensor> = (0..).map_while(|i| r.tensors.get(&format!("ransac_draw_{i}"))).collect();
        let mut g = NumpyGenerator::new(da3::camera_input::ALIGNMENT_RANDOM_STATE);
        let sub_n = views.div_ceil(2).max(3);
        let same = draws.iter().all(|d| {
            let ours: Vec<i64> = g.choice_without_replacement(views, sub_n).iter().map(|&v| v as i64).collect();
            ours == Vec::<i64>::try_from(*d).unwrap()
        });
        let expected_draws = if views >= da3::camera_input::RANSAC_VIEW_THRESH { 10 } else { 0 };
        c.check(&tag(&format!("RANSAC subsets equal ({} draws)", draws.len())), draws.len() as f64, same && draws.len() == expected_draws, "equal");
    }

    let scene = Scene::new(Views::Files(&paths)).with_cameras(cameras);
    let pred = engine.infer(&scene, &opts.check().expect("valid options")).expect("inference");
    let depth = Tensor::from_slice(&pred.depth).reshape(t("depth").size());
    let e = rel_err(&depth, t("depth"));
    c.check(&tag("depth rel err"), e, e <= PIPELINE_TOL, &format!("<= {PIPELINE_TOL:.0e}"));
    let corr = correlation(&depth, t("depth"));
    c.check(&tag("depth correlation"), corr, corr >= PIPELINE_MIN_CORR, &format!(">= {PIPELINE_MIN_CORR}"));
    let conf = Tensor::from_slice(&pred.confidence).reshape(t("depth_conf").size());
    c.rel(&tag("conf rel err"), &conf, t("depth_conf"), PIPELINE_TOL);
    let ext = Tensor::from_slice(pred.extrinsics.as_ref().unwrap()).reshape(t("extrinsics").size());
    c.rel(&tag("extrinsics rel err"), &ext, t("extrinsics"), PIPELINE_TOL);
    let int = Tensor::from_slice(pred.intrinsics.as_ref().unwrap()).reshape(t("intrinsics").size());
    c.rel(&tag("intrinsics rel err"), &int, t("intrinsics"), PIPELINE_TOL);
    match (pred.alignment_scale, r.tensors.get("alignment_scale")) {
        (Some(ours), Some(theirs)) => {
            let theirs = theirs.double_value(&[0]);
            let e = (ours as f64 - theirs).abs() / theirs.abs();
            c.check(&tag(&format!("alignment scale {ours:.6} rel err")), e, e <= PIPELINE_TOL, &format!("<= {PIPELINE_TOL:.0e}"));
        }
        (None, None) => c.check(&tag("no alignment without cameras"), 0.0, true, "none"),
        (ours, theirs) => c.check(&tag(&format!("alignment scale present: {ours:?} vs {}", theirs.is_some())), 1.0, false, "both"),
    }
    let layers: Vec<usize> = pred.features.iter().map(|f| f.layer).collect();
    c.check(&tag("exported layers as requested"), 0.0, layers == opts.export_feat_layers, &format!("{layers:?}"));
    for f in &pred.features {
        let official = t(&official_feature_key(f.layer, &opts.export_feat_layers));
        let shape: Vec<i64> = f.shape.iter().map(|&d| d as i64).collect();
        let ours = Tensor::from_slice(&f.data).reshape(shape);
        let official = official_feature_in_input_order(official, t("ref_view").int64_value(&[0]));
        c.rel(&tag(&format!("feat_layer_{} rel err", f.layer)), &ours, &official, PIPELINE_TOL);
    }
}

fn run_model(model: &str) {
    let dir = oracle_dir().join(model);
    let refs = dir.join("pose_ref");
    assert!(
        refs.is_dir(),
        "no pose oracle outputs in {}: run `tests/oracle/run_oracle.sh {model} {d}` then \
         `tests/oracle/run_oracle_pose.sh {model} {d}` first",
        refs.display(),
        d = dir.display()
    );
    let engine = load_engine(&dir, model);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&refs).unwrap().map(|e| e.unwrap().path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "safetensors") && !p.ends_with("rng_numpy.safetensors"));
    files.sort();
    assert!(!files.is_empty(), "no reference files in {}", refs.display());
    let mut c = Checker::default();
    println!("\npose parity {model}: {} cases from {}", files.len(), refs.display());
    for file in &files {
        let r = read_reference(file);
        let name = r.case["name"].as_str().unwrap().to_owned();
        let tag = |q: &str| format!("{model} {name} {q}");
        match r.case["kind"].as_str().unwrap() {
            "model" => model_case(&engine, &r, &tag, &mut c),
            "pipeline" => pipeline_case(&engine, &refs, &r, &tag, &mut c),
            other => panic!("{name}: unknown kind {other}"),
        }
    }
    assert!(c.failures.is_empty(), "{} pose parity checks failed:\n{}", c.failures.len(), c.failures.join("\n"));
}

#[test]
fn pose_cases_match_the_official_implementation() {
    let models = std::env::var("DA3_POSE_PARITY_MODELS").unwrap_or_else(|_| DEFAULT_MODELS.into());
    for model in models.split(',').map(str::trim).filter(|m| !m.is_empty()) {
        run_model(model);
    }
}

/// The replica of `np.random.default_rng(42).choice(n, k, replace=False)` against numpy's own
/// draws (both of numpy's branches: Floyd's algorithm and, for large populations, the tail shuffle).
#[test]
fn numpy_choice_replica_matches_numpy() {
    let models = std::env::var("DA3_POSE_PARITY_MODELS").unwrap_or_else(|_| DEFAULT_MODELS.into());
    let model = models.split(',').map(str::trim).find(|m| !m.is_empty()).unwrap().to_owned();
    let path = oracle_dir().join(&model).join("pose_ref").join("rng_numpy.safetensors");
    assert!(path.is_file(), "{} missing: run tests/oracle/run_oracle_pose.sh first", path.display());
    let bytes = std::fs::read(&path).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let plan: Vec<(usize, usize)> = serde_json::from_str(meta.metadata().as_ref().unwrap().get("plan").unwrap()).unwrap();
    let r = read_reference(&path);
    let mut compared = 0;
    for (n, k) in plan {
        let mut g = NumpyGenerator::new(42);
        for it in 0.. {
            let Some(want) = r.tensors.get(&format!("n{n}_k{k}_{it}")) else { break };
            let ours: Vec<i64> = g.choice_without_replacement(n, k).iter().map(|&v| v as i64).collect();
            assert_eq!(ours, Vec::<i64>::try_from(want).unwrap(), "n={n} k={k} draw {it}");
            compared += 1;
        }
    }
    assert!(compared >= 60, "only {compared} draws compared");
}

/// Requests the model cannot serve, or malformed cameras, fail with a clear error before any
/// work is done.
#[test]
fn invalid_pose_requests_are_rejected() {
    let models = std::env::var("DA3_POSE_PARITY_MODELS").unwrap_or_else(|_| DEFAULT_MODELS.into());
    let model = models.split(',').map(str::trim).find(|m| !m.is_empty()).unwrap().to_owned();
    let dir = oracle_dir().join(&model);
    let engine = load_engine(&dir, &model);
    let image = da3::RgbImage { width: 28, height: 28, data: vec![100; 28 * 28 * 3] };
    let images = vec![image.clone(), image.clone(), image];
    let invalid = |r: da3::Result<da3::Prediction>| match r {
        Err(Error::InvalidArgument(m)) => m,
        Err(other) => panic!("expected InvalidArgument, got {other}"),
        Ok(_) => panic!("expected an error"),
    };
    let options = InferOptions { process_res: 28, ..InferOptions::default() };
    let depth = 12; // da3-small and da3-base have 12 blocks
    let infer = |options: &InferOptions, cameras: Option<CameraInput<'_>>| {
        engine.infer(&Scene::new(Views::Rgb(&images)).with_cameras(cameras), &options.check()?)
    };
    let too_deep = InferOptions { export_feat_layers: vec![3, depth], ..options.clone() };
    assert!(invalid(infer(&too_deep, None)).contains(&format!("block {depth} does not exist")));
    let repeated = InferOptions { export_feat_layers: vec![3, 3], ..options.clone() };
    assert!(invalid(infer(&repeated, None)).contains("twice"));
    let eye: Vec<f32> = [1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1.].repeat(2);
    let k: Vec<f32> = [20., 0., 14., 0., 20., 14., 0., 0., 1.].repeat(3);
    let two_cameras = CameraInput { extrinsics: &eye, intrinsics: &k };
    assert!(invalid(infer(&options, Some(two_cameras))).contains("extrinsics holds 32 floats"));
    // Three cameras at the same place: no similarity to align the prediction with.
    let same: Vec<f32> = [1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1.].repeat(3);
    let coincident = CameraInput { extrinsics: &same, intrinsics: &k };
    assert!(invalid(infer(&options, Some(coincident))).contains("collinear or coincide"));
}
