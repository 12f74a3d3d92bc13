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
