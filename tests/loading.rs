//! Strict checkpoint loading: missing, unexpected and mis-shaped tensors, corrupt files and
//! a config that names another preset are errors that say what is wrong.
//! Uses the oracle's da3-small checkpoint (see tests/parity.rs).
use std::path::{Path, PathBuf};

use da3::{Engine, Error, LoadOptions, Precision};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

mod common;

fn source_checkpoint() -> PathBuf {
    common::oracle_checkpoint("da3-small")
}

/// Writes a copy of the da3-small checkpoint whose tensors went through `edit`.
fn edited_checkpoint(model_name: &str, edit: impl FnOnce(&mut Vec<(String, TensorView<'_>)>)) -> tempfile::TempDir {
    let src = source_checkpoint();
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<(String, TensorView<'_>)> = file.tensors();
    edit(&mut tensors);
    let out = tempfile::tempdir().unwrap();
    safetensors::serialize_to_file(tensors, None, &out.path().join("model.safetensors")).unwrap();
    std::fs::write(out.path().join("config.json"), format!("{{\"model_name\": \"{model_name}\"}}")).unwrap();
    out
}

fn load_error(dir: &Path) -> Error {
    std::env::set_var("DA3_DEVICE", "cpu");
    match Engine::load(dir.to_str().unwrap(), LoadOptions::new(false, Precision::Fp32)) {
        Ok(_) => panic!("{} loaded but should not", dir.display()),
        Err(e) => e,
    }
}

const SMALL_PAD: [u8; 40] = [0; 40];

#[test]
fn the_unmodified_checkpoint_loads() {
    let dir = edited_checkpoint("da3-small", |_| {});
    std::env::set_var("DA3_DEVICE", "cpu");
    Engine::load(dir.path().to_str().unwrap(), LoadOptions::new(false, Precision::Fp32)).expect("loads");
}

#[test]
fn a_missing_tensor_is_named() {
    let dir = edited_checkpoint("da3-small", |t| t.retain(|(n, _)| n != "model.head.projects.2.weight"));
    let msg = load_error(dir.path()).to_string();
    assert!(msg.contains("1 missing tensors: model.head.projects.2.weight"), "{msg}");
}

#[test]
fn an_unexpected_tensor_is_named() {
    let dir = edited_checkpoint("da3-small", |t| {
        t.push(("model.head.extra.weight".into(), TensorView::new(Dtype::F32, vec![10], &SMALL_PAD).unwrap()))
    });
    let msg = load_error(dir.path()).to_string();
    assert!(msg.contains("1 unexpected tensors: model.head.extra.weight"), "{msg}");
}

#[test]
fn a_mis_shaped_tensor_is_named_with_both_shapes() {
    let dir = edited_checkpoint("da3-small", |t| {
        for (name, view) in t.iter_mut() {
            if name == "model.backbone.pretrained.cls_token" {
                *view = TensorView::new(Dtype::F32, vec![1, 1, 10], &SMALL_PAD).unwrap();
            }
        }
    });
    let msg = load_error(dir.path()).to_string();
    assert!(
        msg.contains("model.backbone.pretrained.cls_token: checkpoint [1, 1, 10], model expects [1, 1, 384]"),
        "{msg}"
    );
}

#[test]
fn a_config_naming_another_preset_is_a_mismatch() {
    let dir = edited_checkpoint("da3-base", |_| {});
    let err = load_error(dir.path());
    assert!(matches!(err, Error::Checkpoint(_)), "{err}");
    assert!(err.to_string().contains("mis-shaped tensors"), "{err}");
}

#[test]
fn a_corrupt_weights_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), "{\"model_name\": \"da3-small\"}").unwrap();
    std::fs::write(dir.path().join("model.safetensors"), b"this is not a safetensors file").unwrap();
    let err = load_error(dir.path());
    assert!(matches!(err, Error::Checkpoint(_)), "{err}");
    assert!(err.to_string().contains("not a valid safetensors file"), "{err}");
}

#[test]
fn the_shared_layer_norm_may_be_stored_under_any_of_its_names() {
    // safetensors' save_model keeps one name of the four; renaming it to another alias loads.
    let dir = edited_checkpoint("da3-small", |t| {
        for (name, _) in t.iter_mut() {
            if name.starts_with("model.head.scratch.output_conv2_aux.0.2.") {
                *name = name.replace("output_conv2_aux.0.2.", "output_conv2_aux.3.2.");
            }
        }
    });
    std::env::set_var("DA3_DEVICE", "cpu");
    Engine::load(dir.path().to_str().unwrap(), LoadOptions::new(false, Precision::Fp32)).expect("alias loads");
}

/// A Hugging Face cache holding `repo_id` whose snapshot links to the da3-small checkpoint's
/// weights, with an official-layout `config.json` naming `model_name`.
fn cache_with(repo_id: &str, model_name: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let repo = root.path().join(format!("models--{}", repo_id.replace('/', "--")));
    let snapshot = repo.join("snapshots").join("4f1c2d9");
    std::fs::create_dir_all(&snapshot).unwrap();
    std::os::unix::fs::symlink(source_checkpoint().join("model.safetensors"), snapshot.join("model.safetensors")).unwrap();
    std::fs::write(snapshot.join("config.json"), format!("{{\"model_name\": \"{model_name}\", \"config\": {{}}}}")).unwrap();
    std::fs::create_dir_all(repo.join("refs")).unwrap();
    std::fs::write(repo.join("refs").join("main"), "4f1c2d9\n").unwrap();
    root
}

fn load_by_repo_id(repo_id: &str, cache: &Path) -> da3::Result<Engine> {
    let settings = da3::Settings { device: Some("cpu".into()), model_cache_roots: vec![cache.to_path_buf()], ..Default::default() };
    Engine::load(repo_id, LoadOptions::new(false, Precision::Fp32).with_settings(settings))
}

#[test]
fn a_repo_id_in_the_cache_loads_its_snapshot() {
    let cache = cache_with("depth-anything/DA3-SMALL", "da3-small");
    let engine = load_by_repo_id("depth-anything/DA3-SMALL", cache.path()).expect("repo id loads");
    assert_eq!(engine.preset_name(), "da3-small");
}

#[test]
fn a_1_1_repo_id_builds_its_preset() {
    // DA3-LARGE-1.1's config.json names da3-large: the da3-small weights in its place are refused
    // against the da3-large architecture (ViT-L, 1024 wide), which shows which network was built.
    let cache = cache_with("depth-anything/DA3-LARGE-1.1", "da3-large");
    let err = load_by_repo_id("depth-anything/DA3-LARGE-1.1", cache.path()).err().expect("da3-small weights are not da3-large's");
    assert!(err.to_string().contains("checkpoint [384], model expects [1024]"), "{err}");
}

/// A checkpoint directory whose `config.json` is `config` beside a link to the da3-small weights
/// (and, for a name that is no preset, da3-small's `official_config.json`).
fn small_weights_with_config(config: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(source_checkpoint().join("model.safetensors"), dir.path().join("model.safetensors")).unwrap();
    std::fs::copy(source_checkpoint().join("official_config.json"), dir.path().join("official_config.json")).unwrap();
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    dir
}

/// Runs `load` on another thread: a load that blocks (e.g. opening a FIFO) fails the test after
/// a minute instead of hanging it.
fn within_a_minute<T: Send + 'static>(load: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(load()).unwrap());
    result.recv_timeout(std::time::Duration::from_secs(60)).expect("the load returned within a minute")
}

/// A `model_name` with a NUL (an architecture described by `official_config.json`) is refused
/// when the config is read. It used to load the whole model and then fail the C API with
/// DA3_ERR_PANIC when the name became a C string.
#[test]
fn a_model_name_with_a_nul_is_a_checkpoint_error_before_loading() {
    let dir = small_weights_with_config(r#"{"model_name": "da3-small\u0000custom"}"#);
    let err = load_error(dir.path());
    assert!(matches!(err, Error::Checkpoint(_)), "{err}");
    assert!(err.to_string().contains("without control characters"), "{err}");
    let path = std::ffi::CString::new(dir.path().to_str().unwrap()).unwrap();
    let mut model = std::ptr::null_mut();
    // SAFETY: a valid C string and out pointer.
    let status = unsafe { da3::ffi::da3_create(path.as_ptr(), false, da3::ffi::DA3_PRECISION_FP32, &mut model) };
    assert_eq!(status, da3::ffi::da3_status::DA3_ERR_CHECKPOINT);
    assert!(model.is_null());
}

/// Config files are read with a bound: a config.json linked to /dev/zero used to grow memory
/// until the process died.
#[test]
fn a_config_linked_to_dev_zero_is_a_checkpoint_error() {
    let dir = small_weights_with_config("");
    std::fs::remove_file(dir.path().join("config.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("config.json")).unwrap();
    let path = dir.path().to_owned();
    let err = within_a_minute(move || load_error(&path));
    assert!(matches!(err, Error::Checkpoint(_)), "{err}");
    assert!(err.to_string().contains("config.json is not a regular file but a character device"), "{err}");
}

/// A FIFO as model.safetensors is an error, not a load that waits forever for a writer.
#[test]
fn a_fifo_as_weights_is_a_checkpoint_error_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), "{\"model_name\": \"da3-small\"}").unwrap();
    let fifo = std::ffi::CString::new(dir.path().join("model.safetensors").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let path = dir.path().to_owned();
    let err = within_a_minute(move || load_error(&path));
    assert!(matches!(err, Error::Checkpoint(_)), "{err}");
    assert!(err.to_string().contains("model.safetensors is not a regular file but a FIFO"), "{err}");
}

/// A copy of the da3-small checkpoint loaded with `at_half_build` run once, when the load has
/// placed half of the model (the file then partly read).
fn load_copy_changing_it(at_half_build: impl Fn(&Path) + Send + Sync + 'static) -> (tempfile::TempDir, da3::Result<Engine>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(source_checkpoint().join("model.safetensors"), dir.path().join("model.safetensors")).unwrap();
    std::fs::write(dir.path().join("config.json"), "{\"model_name\": \"da3-small\"}").unwrap();
    let weights = dir.path().join("model.safetensors");
    let done = std::sync::atomic::AtomicBool::new(false);
    let settings = da3::Settings { device: Some("cpu".into()), ..Default::default() };
    let options = LoadOptions::new(false, Precision::Fp32).with_settings(settings).with_progress(move |fraction, stage| {
        if stage == "build" && fraction > 0.5 && !done.swap(true, std::sync::atomic::Ordering::SeqCst) {
            at_half_build(&weights);
        }
        true
    });
    let loaded = Engine::load(dir.path().to_str().unwrap(), options);
    (dir, loaded)
}

/// Another process truncating the weights while they load: an error, not SIGBUS (the file was
/// memory-mapped, and a mapping of a truncated file kills the process that reads it).
#[test]
fn weights_truncated_during_the_load_are_an_io_error_not_a_crash() {
    let (_dir, loaded) = load_copy_changing_it(|weights| {
        std::fs::OpenOptions::new().write(true).open(weights).unwrap().set_len(0).unwrap();
    });
    let err = loaded.err().expect("a truncated file does not load");
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("truncated or rewritten while it was read"), "{err}");
}

/// Weights removed (unlinked) during the load: the open file stays readable, the load succeeds.
#[test]
fn weights_removed_during_the_load_still_load() {
    let (dir, loaded) = load_copy_changing_it(|weights| std::fs::remove_file(weights).unwrap());
    assert!(!dir.path().join("model.safetensors").exists(), "removed during the load");
    assert_eq!(loaded.expect("loads from the open file").preset_name(), "da3-small");
}

/// A field of /proc/self/status in MB.
fn status_mb(field: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() / 1024.0
}

/// The nested model's config beside da3-small's weights: the tensor table is checked against
/// the architecture before the model is allocated. This used to build the whole nested model
/// (da3-giant + da3metric-large, 7 GB, 8 s) before the first tensor was checked. Measured in a
/// child process (`mismatch_probe`), whose peak memory is its own.
#[test]
fn a_nested_config_beside_small_weights_fails_fast_without_allocating_the_model() {
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "mismatch_probe", "--ignored", "--nocapture", "--test-threads=1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(child.status.success(), "{stdout}{}", String::from_utf8_lossy(&child.stderr));
    let line = stdout.lines().find_map(|l| l.split("mismatch_probe: ").nth(1)).expect("the probe's line");
    let numbers: Vec<f64> = line.split_whitespace().map(|n| n.parse().unwrap()).collect();
    let (seconds, extra_mb) = (numbers[0], numbers[1]);
    assert!(seconds < 1.0, "refused after {seconds:.2} s");
    assert!(extra_mb < 200.0, "{extra_mb:.0} MB more at the peak");
    println!("refused in {seconds:.3} s with {extra_mb:.1} MB more at the peak");
}

/// Run by the test above in a child process; prints "mismatch_probe: SECONDS EXTRA_PEAK_MB".
#[test]
#[ignore = "a child process of a_nested_config_beside_small_weights_fails_fast_without_allocating_the_model"]
fn mismatch_probe() {
    let dir = small_weights_with_config("{\"model_name\": \"da3nested-giant-large\"}");
    // libtorch loaded and running before the baseline.
    let _ = tch::Tensor::zeros([1], (tch::Kind::Float, tch::Device::Cpu)).sum(tch::Kind::Float);
    let before = status_mb("VmRSS:");
    let start = std::time::Instant::now();
    let settings = da3::Settings { device: Some("cpu".into()), ..Default::default() };
    let loaded = Engine::load(dir.path().to_str().unwrap(), LoadOptions::new(false, Precision::Fp32).with_settings(settings));
    let seconds = start.elapsed().as_secs_f64();
    let err = loaded.err().expect("da3-small's weights are not the nested model's");
    let msg = err.to_string();
    assert!(msg.contains("1311 missing tensors: model.da3.backbone.pretrained.blocks.0.norm1.weight"), "{msg}");
    assert!(msg.contains("unexpected tensors: model.backbone."), "{msg}");
    println!("mismatch_probe: {seconds:.3} {:.1}", status_mb("VmHWM:") - before);
}
