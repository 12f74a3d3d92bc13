//! Resolves the `model` argument: a checkpoint directory, or a Hugging Face repo id found
//! in the local cache. Never touches the network.
use std::path::{Path, PathBuf};

use crate::config::{check_model_name, ModelConfig, OFFICIAL_CONFIG_FILE};
use crate::error::{Error, Result};
use crate::weights::{not_a_regular_file, open_regular_file};

pub const CONFIG_FILE: &str = "config.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";

/// The largest `config.json` (or `official_config.json`) read, in bytes: they are a few KB, and
/// a larger one is refused rather than read whole.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The text of a regular file of at most `limit` bytes (`what` names it in errors). A FIFO or
/// a device (`/dev/zero`) is refused before it is read, a larger file likewise, and a file
/// that grows while it is read stops at the limit: nothing here grows memory without bound.
fn read_small_file(path: &Path, what: &str, limit: u64) -> Result<String> {
    use std::io::Read;
    let file = open_regular_file(path, what)?;
    let too_large = |size: u64| {
        Error::Checkpoint(format!("{} has {size} bytes or more; {what} has at most {limit}", path.display()))
    };
    let io_err = |source| Error::Io { path: path.to_owned(), source };
    let size = file.metadata().map_err(io_err)?.len();
    if size > limit {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io_err)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| Error::Checkpoint(format!("{} is not UTF-8 text: {e}", path.display())))
}

/// A checkpoint in the official Hugging Face layout.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    pub dir: PathBuf,
    pub config: ModelConfig,
}

impl Checkpoint {
    pub fn weights_path(&self) -> PathBuf {
        self.dir.join(WEIGHTS_FILE)
    }
}

/// `org/name` -> the snapshot directory of that repo in `root`, if it holds both files.
fn find_in_cache(root: &Path, repo_id: &str) -> Option<PathBuf> {
    let repo = root.join(format!("models--{}", repo_id.replace('/', "--")));
    let complete = |dir: &Path| dir.join(CONFIG_FILE).is_file() && dir.join(WEIGHTS_FILE).is_file();
    // A commit hash; anything unreadable or larger than a few hashes is no usable ref.
    if let Ok(commit) = read_small_file(&repo.join("refs").join("main"), "refs/main", 1024) {
        let dir = repo.join("snapshots").join(commit.trim());
        if complete(&dir) {
            return Some(dir);
        }
    }
    // No usable refs/main: take the most recently modified complete snapshot.
    let mut snapshots: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(repo.join("snapshots"))
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| complete(p))
        .filter_map(|p| Some((p.metadata().ok()?.modified().ok()?, p)))
        .collect();
    snapshots.sort();
    snapshots.pop().map(|(_, p)| p)
}

fn looks_like_repo_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('/').collect();
    parts.len() == 2
        && parts.iter().all(|p| {
            !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
}

/// Finds the checkpoint named by `model` (a directory, or a repo id looked up in
/// `cache_roots`, e.g. `Settings::model_cache_roots`) and reads its configuration.
pub fn resolve(model: &str, cache_roots: &[PathBuf]) -> Result<Checkpoint> {
    if model.is_empty() {
        return Err(Error::InvalidArgument("model must be a checkpoint directory or a repo id, got an empty string".into()));
    }
    let as_path = Path::new(model);
    let mut tried = vec![as_path.display().to_string()];
    let dir = if as_path.is_dir() {
        Some(as_path.to_path_buf())
    } else if looks_like_repo_id(model) {
        let roots = cache_roots;
        tried.extend(roots.iter().map(|r| r.join(format!("models--{}", model.replace('/', "--"))).display().to_string()));
        roots.iter().find_map(|r| find_in_cache(r, model))
    } else {
        None
    };
    let Some(dir) = dir else {
        return Err(Error::ModelNotFound(format!(
            "'{model}' is neither a checkpoint directory nor a repo id in the local Hugging Face cache; \
             tried: {}. Download the weights with `hf download {}` (or `huggingface-cli download`), \
             or pass a directory holding {CONFIG_FILE} and {WEIGHTS_FILE}",
            tried.join(", "),
            if looks_like_repo_id(model) { model } else { "depth-anything/DA3-LARGE" },
        )));
    };
    load_dir(&dir)
}

fn load_dir(dir: &Path) -> Result<Checkpoint> {
    let config_path = dir.join(CONFIG_FILE);
    let text = read_small_file(&config_path, CONFIG_FILE, MAX_CONFIG_BYTES).map_err(|e| match e {
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            Error::ModelNotFound(format!("{} has no {CONFIG_FILE}", dir.display()))
        }
        other => other,
    })?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Checkpoint(format!("{} is not valid JSON: {e}", config_path.display())))?;
    let name = json
        .get("model_name")
        .and_then(|v| v.as_str())
        .ok_or_else(|| Error::Checkpoint(format!("{} has no string field 'model_name'", config_path.display())))?;
    check_model_name(name).map_err(|e| match e {
        Error::Checkpoint(why) => Error::Checkpoint(format!("{}: {why}", config_path.display())),
        other => other,
    })?;
    let config = match ModelConfig::from_preset_name(name) {
        // As the official `DepthAnything3(model_name)` does, a preset name builds that preset
        // and any architecture tree beside it is not read. The 1.1 releases (DA3-LARGE-1.1,
        // DA3-GIANT-1.1, DA3NESTED-GIANT-LARGE-1.1) load this way: the official code builds its
        // network from `MODEL_REGISTRY[model_name]` alone, whose names are the seven presets.
        Ok(config) => config,
        // An architecture that is no preset loads from the resolved official config it was
        // built from: the `config` tree of an official `config.json`, else `official_config.json`
        // beside it (as the tests' reduced nested model carries).
        Err(unknown) => match json.get("config").filter(|tree| tree.is_object()) {
            Some(tree) => ModelConfig::from_official_config(name, tree)?,
            None => match read_small_file(&dir.join(OFFICIAL_CONFIG_FILE), OFFICIAL_CONFIG_FILE, MAX_CONFIG_BYTES) {
                Ok(text) => {
                    let official: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                        Error::Checkpoint(format!("{} is not valid JSON: {e}", dir.join(OFFICIAL_CONFIG_FILE).display()))
                    })?;
                    ModelConfig::from_official_config(name, &official)?
                }
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => return Err(unknown),
                Err(other) => return Err(other),
            },
        },
    };
    let weights = dir.join(WEIGHTS_FILE);
    match weights.metadata() {
        Ok(meta) if meta.is_file() => {}
        // Opening it would block (a FIFO) or never end (a device); the loader checks again.
        Ok(meta) => return Err(not_a_regular_file(&weights, meta.file_type(), "the weights file")),
        Err(_) => return Err(Error::ModelNotFound(format!("{} has no {WEIGHTS_FILE}", dir.display()))),
    }
    Ok(Checkpoint { dir: dir.to_path_buf(), config })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_checkpoint(dir: &Path, model_name: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(CONFIG_FILE), format!("{{\"model_name\": \"{model_name}\"}}")).unwrap();
        std::fs::write(dir.join(WEIGHTS_FILE), b"").unwrap();
    }

    #[test]
    fn finds_a_snapshot_through_refs_main() {
        let root = tempfile::tempdir().unwrap();
        let repo = root.path().join("models--depth-anything--DA3-SMALL");
        write_checkpoint(&repo.join("snapshots").join("abc123"), "da3-small");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs").join("main"), "abc123\n").unwrap();
        assert_eq!(find_in_cache(root.path(), "depth-anything/DA3-SMALL"), Some(repo.join("snapshots").join("abc123")));
        assert_eq!(find_in_cache(root.path(), "depth-anything/DA3-BASE"), None);
    }

    #[test]
    fn a_directory_resolves_to_its_preset() {
        let dir = tempfile::tempdir().unwrap();
        write_checkpoint(dir.path(), "da3-base");
        let ckpt = resolve(dir.path().to_str().unwrap(), &[]).unwrap();
        assert_eq!(ckpt.config.preset, "da3-base");
    }

    #[test]
    fn not_found_names_every_place_tried_and_how_to_download() {
        let err = resolve("nobody/NO-SUCH-MODEL", &[PathBuf::from("/nonexistent/hub")]).unwrap_err().to_string();
        assert!(err.contains("models--nobody--NO-SUCH-MODEL"), "{err}");
        assert!(err.contains("hf download nobody/NO-SUCH-MODEL"), "{err}");
        let err = resolve("/no/such/dir", &[]).unwrap_err().to_string();
        assert!(err.contains("/no/such/dir"), "{err}");
    }

    #[test]
    fn unknown_preset_is_a_checkpoint_error() {
        let dir = tempfile::tempdir().unwrap();
        write_checkpoint(dir.path(), "da3-huge");
        let err = resolve(dir.path().to_str().unwrap(), &[]).unwrap_err();
        assert!(matches!(err, Error::Checkpoint(_)), "{err}");
        assert!(err.to_string().contains("da3-huge"));
    }

    /// An official `config.json` (save_pretrained's layout: the preset name and the resolved
    /// architecture tree) with `tree` as that tree.
    fn official_config_json(model_name: &str, tree: &str) -> String {
        format!("{{\"model_name\": \"{model_name}\", \"config\": {tree}}}")
    }

    const VITB_TREE: &str = r#"{"__object__": {"path": "depth_anything_3.model.da3", "name": "DepthAnything3Net", "args": "as_params"},
        "net": {"name": "vitb", "out_layers": [5, 7, 9, 11], "alt_start": 4, "qknorm_start": 4, "rope_start": 4, "cat_token": true},
        "head": {"__object__": {"name": "DualDPT"}, "dim_in": 1536, "output_dim": 2, "features": 128, "out_channels": [96, 192, 384, 768]},
        "cam_enc": {"dim_out": 768}, "cam_dec": {"dim_in": 1536}}"#;

    #[test]
    fn the_1_1_releases_resolve_by_repo_id_to_their_presets() {
        let root = tempfile::tempdir().unwrap();
        for (repo_id, model_name, expected) in [
            ("depth-anything/DA3-LARGE-1.1", "da3-large", ModelConfig::da3_large()),
            ("depth-anything/DA3-GIANT-1.1", "da3-giant", ModelConfig::da3_giant()),
            ("depth-anything/DA3NESTED-GIANT-LARGE-1.1", "da3nested-giant-large", ModelConfig::da3nested_giant_large()),
        ] {
            let repo = root.path().join(format!("models--{}", repo_id.replace('/', "--")));
            let snapshot = repo.join("snapshots").join("0e109ae");
            std::fs::create_dir_all(&snapshot).unwrap();
            // The tree is not read for a preset name (as in the official code): a wrong one changes nothing.
            std::fs::write(snapshot.join(CONFIG_FILE), official_config_json(model_name, VITB_TREE)).unwrap();
            std::fs::write(snapshot.join(WEIGHTS_FILE), b"").unwrap();
            std::fs::create_dir_all(repo.join("refs")).unwrap();
            std::fs::write(repo.join("refs").join("main"), "0e109ae").unwrap();
            let by_id = resolve(repo_id, &[PathBuf::from("/nonexistent"), root.path().to_path_buf()]).unwrap();
            assert_eq!(by_id.dir, snapshot);
            assert_eq!(by_id.config, expected, "{repo_id}");
            let by_dir = resolve(snapshot.to_str().unwrap(), &[]).unwrap();
            assert_eq!(by_dir.config, expected, "{repo_id}");
        }
        // The deprecated 1.0 repo ids are different cache entries, not found here.
        assert!(matches!(resolve("depth-anything/DA3-LARGE", &[root.path().to_path_buf()]), Err(Error::ModelNotFound(_))));
    }

    #[test]
    fn an_architecture_beyond_the_presets_loads_from_the_tree_in_its_config_json() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), official_config_json("da3-base-2.0", VITB_TREE)).unwrap();
        std::fs::write(dir.path().join(WEIGHTS_FILE), b"").unwrap();
        let ckpt = resolve(dir.path().to_str().unwrap(), &[]).unwrap();
        assert_eq!(ckpt.config, ModelConfig { preset: "da3-base-2.0", ..ModelConfig::da3_base() });
        std::fs::write(dir.path().join(CONFIG_FILE), official_config_json("da3-base-2.0", r#"{"__object__": {"name": "Other"}}"#)).unwrap();
        assert!(matches!(resolve(dir.path().to_str().unwrap(), &[]), Err(Error::Checkpoint(m)) if m.contains("Other")));
    }

    #[test]
    fn an_architecture_beyond_the_presets_loads_from_its_official_config() {
        let dir = tempfile::tempdir().unwrap();
        write_checkpoint(dir.path(), "da3-custom");
        let official = r#"{"__object__": {"name": "DepthAnything3Net"},
            "net": {"name": "vitb", "out_layers": [5, 7, 9, 11], "alt_start": 4, "qknorm_start": 4, "rope_start": 4},
            "head": {"__object__": {"name": "DualDPT"}, "dim_in": 1536, "output_dim": 2, "features": 128, "out_channels": [96, 192, 384, 768]},
            "cam_enc": {"dim_out": 768}, "cam_dec": {"dim_in": 1536}}"#;
        std::fs::write(dir.path().join(OFFICIAL_CONFIG_FILE), official).unwrap();
        let ckpt = resolve(dir.path().to_str().unwrap(), &[]).unwrap();
        assert_eq!(ckpt.config.preset, "da3-custom");
        assert_eq!(ckpt.config, ModelConfig { preset: "da3-custom", ..ModelConfig::da3_base() });
        std::fs::write(dir.path().join(OFFICIAL_CONFIG_FILE), "{").unwrap();
        assert!(matches!(resolve(dir.path().to_str().unwrap(), &[]), Err(Error::Checkpoint(m)) if m.contains("not valid JSON")));
    }

    fn checkpoint_error(dir: &Path) -> String {
        match resolve(dir.to_str().unwrap(), &[]) {
            Err(e @ Error::Checkpoint(_)) => e.to_string(),
            Err(other) => panic!("expected a checkpoint error, got {other}"),
            Ok(c) => panic!("resolved to {}", c.config.preset),
        }
    }

    /// A `model_name` becomes a C string for the host and is kept for the life of the process:
    /// one with a NUL (which failed the C API after the whole model had loaded), another
    /// control character, none at all or an unbounded one is refused when the config is read.
    #[test]
    fn a_model_name_must_be_short_printable_text() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(WEIGHTS_FILE), b"").unwrap();
        let official = serde_json::json!({"__object__": {"name": "DepthAnything3Net"}});
        std::fs::write(dir.path().join(OFFICIAL_CONFIG_FILE), official.to_string()).unwrap();
        let long = "x".repeat(129);
        for name in ["da3-small\0evil", "da3\nsmall", "", long.as_str()] {
            std::fs::write(dir.path().join(CONFIG_FILE), serde_json::json!({ "model_name": name }).to_string()).unwrap();
            let msg = checkpoint_error(dir.path());
            assert!(msg.contains("must be 1 to 128 bytes without control characters"), "{msg}");
        }
        let msg = checkpoint_error(dir.path());
        assert!(msg.contains("xxx...\" (129 bytes)") && msg.contains(CONFIG_FILE), "{msg}");
        // 128 bytes of text is a name (and the tree beside it is read).
        std::fs::write(dir.path().join(CONFIG_FILE), serde_json::json!({ "model_name": &long[1..] }).to_string()).unwrap();
        let msg = checkpoint_error(dir.path());
        assert!(msg.contains("official config: net.out_layers is missing"), "{msg}");
    }

    /// Config files are read with a bound: a link to /dev/zero, a FIFO or a file over 1 MiB is a
    /// checkpoint error, not memory growing without end or a read that never returns.
    #[test]
    fn config_files_must_be_small_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(WEIGHTS_FILE), b"").unwrap();
        let config = dir.path().join(CONFIG_FILE);
        std::os::unix::fs::symlink("/dev/zero", &config).unwrap();
        let msg = checkpoint_error(dir.path());
        assert!(msg.contains("config.json is not a regular file"), "{msg}");
        std::fs::remove_file(&config).unwrap();
        let c_path = std::ffi::CString::new(config.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        assert!(checkpoint_error(dir.path()).contains("config.json is not a regular file"));
        std::fs::remove_file(&config).unwrap();
        let padded = format!("{{\"model_name\": \"da3-small\"}}{}", " ".repeat(MAX_CONFIG_BYTES as usize));
        std::fs::write(&config, padded).unwrap();
        let msg = checkpoint_error(dir.path());
        assert!(msg.contains("has 1048603 bytes or more; config.json has at most 1048576"), "{msg}");
        // The official tree beside a name that is no preset: read with the same bound.
        std::fs::write(&config, "{\"model_name\": \"da3-custom\"}").unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join(OFFICIAL_CONFIG_FILE)).unwrap();
        assert!(checkpoint_error(dir.path()).contains("official_config.json is not a regular file"));
    }

    #[test]
    fn weights_that_are_no_regular_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(CONFIG_FILE), "{\"model_name\": \"da3-small\"}").unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join(WEIGHTS_FILE)).unwrap();
        let msg = checkpoint_error(dir.path());
        assert!(msg.contains("model.safetensors is not a regular file"), "{msg}");
    }

    /// A cache whose refs/main is /dev/zero falls back to its newest snapshot.
    #[test]
    fn an_unreadable_ref_falls_back_to_the_newest_snapshot() {
        let root = tempfile::tempdir().unwrap();
        let repo = root.path().join("models--depth-anything--DA3-SMALL");
        write_checkpoint(&repo.join("snapshots").join("abc123"), "da3-small");
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::os::unix::fs::symlink("/dev/zero", repo.join("refs").join("main")).unwrap();
        assert_eq!(find_in_cache(root.path(), "depth-anything/DA3-SMALL"), Some(repo.join("snapshots").join("abc123")));
    }
}
