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
