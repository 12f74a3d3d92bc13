//! Fuzzer-chosen `config.json` and `model.safetensors` through the library's checkpoint
//! loading: an error or a model, never a crash, a hang or memory beyond the file's size.
//!
//! Input: a little-endian u16 `n`, then `n` bytes of `config.json`, then the weights file.
//! Both are written to a tmpfs directory and loaded by the library's own code twice:
//! - `hub::resolve` (config reading, `model_name` checks, official architecture trees) and, for
//!   whatever architecture the config names, `model::load_network`: the tensor table checked
//!   against it before anything is allocated;
//! - `weights::build_from_safetensors` (the same function `load_network` uses) with a tiny
//!   architecture of the library's own layers that the seeds match, so that tensors are also
//!   read, converted and skipped: 32 floats, microseconds per execution.
#![no_main]
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use da3::nn::{Conv2d, LayerNorm, Linear};
use da3::weights::{build_from_safetensors, WeightLoader};
use da3::{hub, model};
use libfuzzer_sys::fuzz_target;
use tch::{Device, Kind};

/// A directory of this process on tmpfs (else the temp directory), removed by nobody: the
/// fuzzer's process ends with the campaign.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        let dir = base.join(format!("da3-fuzz-checkpoint-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// The tiny architecture: `proj` Linear(4 -> 8), `norm` LayerNorm(8), `conv` Conv2d(2 -> 1,
/// 3x3, no bias); tensors under `skip.` are accepted and not read.
fn tiny(w: &mut WeightLoader) -> da3::Result<(Linear, LayerNorm, Conv2d)> {
    w.skip_prefix("skip.");
    Ok((
        Linear::new(w, "proj", 4, 8, true, Kind::Float)?,
        LayerNorm::new(w, "norm", 8, LayerNorm::DEFAULT_EPS)?,
        Conv2d::new(w, "conv", 2, 1, 3, 1, 1, false, Kind::Float)?,
    ))
}

fuzz_target!(|data: &[u8]| {
    let Some((length, rest)) = data.split_first_chunk::<2>() else { return };
    let (config, weights) = rest.split_at((u16::from_le_bytes(*length) as usize).min(rest.len()));
    let dir = scratch();
    let weights_path = dir.join(hub::WEIGHTS_FILE);
    std::fs::write(dir.join(hub::CONFIG_FILE), config).unwrap();
    std::fs::write(&weights_path, weights).unwrap();

    if let Ok(checkpoint) = hub::resolve(dir.to_str().unwrap(), &[]) {
        let name = checkpoint.config.preset;
        assert!(!name.is_empty() && name.len() <= da3::config::MAX_MODEL_NAME_BYTES && !name.contains('\0'));
        let _ = model::load_network(&checkpoint.config, &checkpoint.weights_path(), Device::Cpu, Kind::Float, false, None);
    }

    if let Ok((proj, norm, conv)) = build_from_safetensors(&weights_path, Device::Cpu, None, tiny) {
        assert_eq!(proj.weight.size(), [8, 4]);
        assert_eq!(proj.bias.as_ref().map(|b| b.size()), Some(vec![8]));
        assert_eq!((norm.weight.size(), norm.bias.size()), (vec![8], vec![8]));
        assert_eq!(conv.weight.size(), [1, 2, 3, 3]);
        assert!([&proj.weight, &norm.weight, &conv.weight].iter().all(|t| t.kind() == Kind::Float));
    }
});
