//! Every knob the environment can set, in one struct, read once (`Settings::from_env`, when the
//! C API loads a model) and passed down explicitly: to the engine, the runners, preprocessing
//! and the GPU plumbing. Nothing else in the library reads an environment variable. Rust
//! callers may build `Settings` themselves (`Settings::default()` ignores the environment).
//!
//! Precedence: an explicit argument of the caller wins (the device list of
//! `da3_create_on_devices`, an explicit precision); the variables fill in what the caller left
//! open (which devices `da3_create` uses). Where a variable changes what an argument asked
//! for, `VARIABLES` says so (the `DA3_ACCEL_*` measurement switches under `use_accelerate`).
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::log::Level;

/// How a single scene uses several replicas (`Engine::set_placement`; `DA3_PLACEMENT` sets the
/// default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Placement {
    /// Replicated, unless the scene's estimated memory (`SceneMemory::bytes`) exceeds the free
    /// memory of the first CUDA device: then sharded.
    Auto = 0,
    /// Every scene on one replica (throughput: concurrent calls use the others).
    Replicate = 1,
    /// Every scene split over all replicas: the backbone's blocks in shares over the devices.
    /// With one replica, the same as `Replicate`.
    Shard = 2,
}

impl Placement {
    pub fn from_u8(v: u8) -> Placement {
        match v {
            1 => Placement::Replicate,
            2 => Placement::Shard,
            _ => Placement::Auto,
        }
    }
}

/// Which attention kernel the accelerated runner uses on a GPU in reduced precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttentionChoice {
    /// cuDNN's fused attention through the support library (the default).
    Cudnn,
    /// libtorch's SDPA, which picks its own kernel (as without `use_accelerate`).
    Sdpa,
}

/// How the accelerated runner computes a transformer block's glue (normalisations, RoPE,
/// LayerScale and residual updates) in reduced precision (`DA3_ACCEL_GLUE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GlueChoice {
    /// Fewer passes (fp32 arithmetic, one rounding), on a GPU in the run-time compiled glue
    /// kernels (the default).
    Kernels,
    /// The same arithmetic in libtorch operations only.
    Libtorch,
    /// The official passes.
    Official,
}

/// Where a model preprocesses frames given in host memory (`DA3_PREPROCESS`). Both give the
/// same bytes and network input (OpenCV's arithmetic); they differ in speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreprocessOn {
    /// `Device` for a model on one GPU, `Host` on the CPU and with several replicas (the
    /// default).
    Auto,
    /// On the host's threads.
    Host,
    /// On the model's (first) device from the uploaded bytes (`preprocess::tensor_path`): a
    /// quarter of the float input's bytes cross the bus.
    Device,
}

/// The settings. `Default` is what an empty environment gives.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// `DA3_DEVICE`: the one device of a model loaded by `da3_create` (`cpu`, `cuda`, `cuda:N`).
    pub device: Option<String>,
    /// `DA3_DEVICES`: the replicas' devices of a model loaded by `da3_create`, comma-separated.
    pub devices: Option<String>,
    /// `DA3_PLACEMENT`: the initial placement of a model's scenes over its replicas.
    pub placement: Placement,
    /// `DA3_PREPROCESS_THREADS`: threads for decoding-free preprocessing (None: every core).
    pub preprocess_threads: Option<usize>,
    /// `DA3_ATTENTION`: the accelerated runner's attention kernel.
    pub attention: AttentionChoice,
    /// `DA3_ACCEL_HEAD=fp32`: keep the official fp32 depth head under `use_accelerate`.
    pub accelerated_head_fp32: bool,
    /// `DA3_ACCEL_NHWC=0`: NCHW head convolutions under `use_accelerate`.
    pub accelerated_head_nhwc: bool,
    /// `DA3_ACCEL_FEATURES=fp32`: fp32 features into the accelerated head.
    pub accelerated_features_fp32: bool,
    /// `DA3_ACCEL_GLUE`: how the glue of the blocks runs under `use_accelerate`.
    pub accelerated_glue: GlueChoice,
    /// `DA3_ACCEL_GELU=exact`: the MLPs' exact (erf) GELU in a pass of its own under
    /// `use_accelerate`, instead of the tanh form in fc1's epilogue.
    pub accelerated_gelu_exact: bool,
    /// `DA3_PREPROCESS`: where frames from host memory are preprocessed.
    pub preprocess_on: PreprocessOn,
    /// `DA3_LOG` (`DA3_LOG_GRAPHS` set: at least `Info`).
    pub log_level: Level,
    /// `DA3_CUDA_SUPPORT_LIB`: the path of `libda3_cuda_support.so`, tried first.
    pub cuda_support_lib: Option<PathBuf>,
    /// `HF_HUB_CACHE`, `HF_HOME/hub`, `HOME/.cache/huggingface/hub`: where repo ids are looked
    /// up, in that order (the `huggingface_hub` convention).
    pub model_cache_roots: Vec<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            device: None,
            devices: None,
            placement: Placement::Auto,
            preprocess_threads: None,
            attention: AttentionChoice::Cudnn,
            accelerated_head_fp32: false,
            accelerated_head_nhwc: true,
            accelerated_features_fp32: false,
            accelerated_glue: GlueChoice::Kernels,
            accelerated_gelu_exact: false,
            preprocess_on: PreprocessOn::Auto,
            log_level: Level::Warn,
            cuda_support_lib: None,
            model_cache_roots: Vec::new(),
        }
    }
}

/// One environment variable: its name, values, default and effect (the README's and the
/// header's table are checked against this list).
pub struct Variable {
    pub name: &'static str,
    pub values: &'static str,
    pub default: &'static str,
    pub effect: &'static str,
}

/// Every variable libda3 reads.
pub const VARIABLES: &[Variable] = &[
    Variable {
        name: "DA3_DEVICE",
        values: "cpu, cuda, cuda:N",
        default: "first GPU, else CPU",
        effect: "the device of da3_create; overrides use_accelerate's every-GPU choice",
    },
    Variable {
        name: "DA3_DEVICES",
        values: "comma-separated devices",
        default: "unset",
        effect: "one replica per listed device for da3_create (not da3_create_on_devices)",
    },
    Variable {
        name: "DA3_PLACEMENT",
        values: "auto, replicate, shard",
        default: "auto",
        effect: "initial placement of scenes over replicas (da3_model_set_placement wins)",
    },
    Variable {
        name: "DA3_PREPROCESS_THREADS",
        values: "N >= 1",
        default: "every core",
        effect: "threads that resize and normalise the views (1: the calling thread)",
    },
    Variable {
        name: "DA3_ATTENTION",
        values: "sdpa",
        default: "cuDNN",
        effect: "use_accelerate on a GPU: libtorch's SDPA instead of cuDNN attention",
    },
    Variable {
        name: "DA3_ACCEL_HEAD",
        values: "fp32",
        default: "compute precision",
        effect: "use_accelerate: the official fp32 depth head (overrides precision there)",
    },
    Variable {
        name: "DA3_ACCEL_NHWC",
        values: "0",
        default: "1",
        effect: "use_accelerate: NCHW instead of channels-last head convolutions",
    },
    Variable {
        name: "DA3_ACCEL_FEATURES",
        values: "fp32",
        default: "compute precision",
        effect: "use_accelerate: fp32 backbone features into the head",
    },
    Variable {
        name: "DA3_ACCEL_GLUE",
        values: "kernels, libtorch, official",
        default: "kernels",
        effect: "use_accelerate: the block glue and the head's upsampling in run-time compiled GPU kernels, in libtorch operations (same arithmetic), or the official passes",
    },
    Variable {
        name: "DA3_ACCEL_GELU",
        values: "epilogue, exact",
        default: "epilogue",
        effect: "use_accelerate with the glue kernels: the MLPs' GELU (tanh form) in fc1's matrix product epilogue, or the official exact GELU in a pass of its own",
    },
    Variable {
        name: "DA3_PREPROCESS",
        values: "auto, host, device",
        default: "auto",
        effect: "where frames from host memory are resized and normalised (the same bytes either way): auto = on the GPU from the uploaded bytes for a model on one GPU, on the host's threads on the CPU and with several GPUs",
    },
    Variable {
        name: "DA3_LOG",
        values: "off, error, warn, info, debug",
        default: "warn",
        effect: "what libda3 reports to stderr or the da3_log_set callback (debug: libtorch backtraces and, on one GPU, the memory in use at each stage of a forward)",
    },
    Variable {
        name: "DA3_LOG_GRAPHS",
        values: "any",
        default: "unset",
        effect: "same as DA3_LOG=info (CUDA graph captures and fallbacks)",
    },
    Variable {
        name: "DA3_CUDA_SUPPORT_LIB",
        values: "a path",
        default: "beside libda3",
        effect: "where libda3_cuda_support.so is looked for first",
    },
    Variable {
        name: "HF_HUB_CACHE, HF_HOME, HOME",
        values: "directories",
        default: "~/.cache/huggingface/hub",
        effect: "where a repo id such as depth-anything/DA3-LARGE is looked up",
    },
];

impl Settings {
    /// The settings of this process's environment.
    pub fn from_env() -> Result<Settings> {
        Self::from_lookup(|name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()))
    }

    /// The settings `lookup` (a variable's value, if set) gives; invalid values are errors
    /// that name the variable.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Settings> {
        let defaults = Settings::default();
        let invalid = |name: &str, value: &str, expected: &str| {
            Error::InvalidArgument(format!("{name}='{value}': expected {expected}"))
        };
        let placement = match lookup("DA3_PLACEMENT").as_deref() {
            None | Some("auto") => Placement::Auto,
            Some("replicate") => Placement::Replicate,
            Some("shard") => Placement::Shard,
            Some(other) => return Err(invalid("DA3_PLACEMENT", other, "auto, replicate or shard")),
        };
        // Lenient where it always was: an unusable thread count means every core.
        let preprocess_threads =
            lookup("DA3_PREPROCESS_THREADS").and_then(|v| v.trim().parse::<usize>().ok()).filter(|&n| n >= 1);
        let mut log_level = match lookup("DA3_LOG").as_deref() {
            None => defaults.log_level,
            Some(name) => Level::from_name(name)
                .ok_or_else(|| invalid("DA3_LOG", name, "off, error, warn, info or debug"))?,
        };
        if lookup("DA3_LOG_GRAPHS").is_some() {
            log_level = log_level.max(Level::Info);
        }
        let mut model_cache_roots = Vec::new();
        if let Some(dir) = lookup("HF_HUB_CACHE") {
            model_cache_roots.push(PathBuf::from(dir));
        }
        if let Some(home) = lookup("HF_HOME") {
            model_cache_roots.push(PathBuf::from(home).join("hub"));
        }
        if let Some(home) = lookup("HOME") {
            model_cache_roots.push(PathBuf::from(home).join(".cache").join("huggingface").join("hub"));
        }
        model_cache_roots.dedup();
        Ok(Settings {
            device: lookup("DA3_DEVICE"),
            devices: lookup("DA3_DEVICES"),
            placement,
            preprocess_threads,
            attention: if lookup("DA3_ATTENTION").as_deref() == Some("sdpa") { AttentionChoice::Sdpa } else { AttentionChoice::Cudnn },
            accelerated_head_fp32: lookup("DA3_ACCEL_HEAD").as_deref() == Some("fp32"),
            accelerated_head_nhwc: lookup("DA3_ACCEL_NHWC").as_deref() != Some("0"),
            accelerated_features_fp32: lookup("DA3_ACCEL_FEATURES").as_deref() == Some("fp32"),
            accelerated_glue: match lookup("DA3_ACCEL_GLUE").as_deref() {
                None | Some("kernels") => GlueChoice::Kernels,
                Some("libtorch") => GlueChoice::Libtorch,
                Some("official") => GlueChoice::Official,
                Some(other) => return Err(invalid("DA3_ACCEL_GLUE", other, "kernels, libtorch or official")),
            },
            accelerated_gelu_exact: match lookup("DA3_ACCEL_GELU").as_deref() {
                None | Some("epilogue") => false,
                Some("exact") => true,
                Some(other) => return Err(invalid("DA3_ACCEL_GELU", other, "epilogue or exact")),
            },
            preprocess_on: match lookup("DA3_PREPROCESS").as_deref() {
                None | Some("auto") => PreprocessOn::Auto,
                Some("host") => PreprocessOn::Host,
                Some("device") => PreprocessOn::Device,
                Some(other) => return Err(invalid("DA3_PREPROCESS", other, "auto, host or device")),
            },
            log_level,
            cuda_support_lib: lookup("DA3_CUDA_SUPPORT_LIB").map(PathBuf::from),
            model_cache_roots,
        })
    }

    /// Threads for preprocessing: the setting, else every core.
    pub fn preprocess_thread_count(&self) -> usize {
        self.preprocess_threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// `VARIABLES` as the lines of the header's comment (`cbindgen.toml`'s preamble).
    pub fn header_lines() -> Vec<String> {
        VARIABLES.iter().map(|v| format!(" *   {} = {} (default: {}): {}", v.name, v.values, v.default, v.effect)).collect()
    }

    /// `VARIABLES` as a Markdown table (the README's).
    pub fn markdown_table() -> String {
        let mut table = String::from("| variable | values | default | effect |\n|---|---|---|---|\n");
        for v in VARIABLES {
            table.push_str(&format!("| `{}` | {} | {} | {} |\n", v.name, v.values, v.default, v.effect));
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<Settings> {
        let owned: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|name| owned.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn an_empty_environment_gives_the_defaults() {
        assert_eq!(from(&[]).unwrap(), Settings::default());
    }

    #[test]
    fn every_variable_is_read() {
        let s = from(&[
            ("DA3_DEVICE", "cuda:1"),
            ("DA3_DEVICES", "cpu,cpu"),
            ("DA3_PLACEMENT", "shard"),
            ("DA3_PREPROCESS_THREADS", "3"),
            ("DA3_ATTENTION", "sdpa"),
            ("DA3_ACCEL_HEAD", "fp32"),
            ("DA3_ACCEL_NHWC", "0"),
            ("DA3_ACCEL_FEATURES", "fp32"),
            ("DA3_ACCEL_GLUE", "official"),
            ("DA3_ACCEL_GELU", "exact"),
            ("DA3_LOG", "debug"),
            ("DA3_CUDA_SUPPORT_LIB", "/x/libda3_cuda_support.so"),
            ("HF_HUB_CACHE", "/cache"),
            ("HF_HOME", "/hf"),
        ])
        .unwrap();
        assert_eq!(s.device.as_deref(), Some("cuda:1"));
        assert_eq!(s.devices.as_deref(), Some("cpu,cpu"));
        assert_eq!(s.placement, Placement::Shard);
        assert_eq!(s.preprocess_threads, Some(3));
        assert_eq!(s.attention, AttentionChoice::Sdpa);
        assert!(s.accelerated_head_fp32 && !s.accelerated_head_nhwc && s.accelerated_features_fp32);
        assert_eq!(s.accelerated_glue, GlueChoice::Official);
        assert!(s.accelerated_gelu_exact);
        let defaults = from(&[]).unwrap();
        assert_eq!(defaults.accelerated_glue, GlueChoice::Kernels);
        assert!(!defaults.accelerated_gelu_exact);
        assert_eq!(s.log_level, Level::Debug);
        assert_eq!(s.cuda_support_lib, Some(PathBuf::from("/x/libda3_cuda_support.so")));
        assert_eq!(s.model_cache_roots, vec![PathBuf::from("/cache"), PathBuf::from("/hf/hub")]);
        assert_eq!(from(&[("DA3_LOG_GRAPHS", "1")]).unwrap().log_level, Level::Info);
        assert_eq!(from(&[("DA3_PREPROCESS_THREADS", "0")]).unwrap().preprocess_threads, None);
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let message = |r: Result<Settings>| r.unwrap_err().to_string();
        assert!(message(from(&[("DA3_PLACEMENT", "everywhere")])).contains("DA3_PLACEMENT='everywhere'"));
        assert!(message(from(&[("DA3_LOG", "loud")])).contains("DA3_LOG='loud'"));
        assert!(message(from(&[("DA3_ACCEL_GLUE", "fused")])).contains("DA3_ACCEL_GLUE='fused'"));
        assert!(message(from(&[("DA3_ACCEL_GELU", "tanh")])).contains("DA3_ACCEL_GELU='tanh'"));
        assert_eq!(from(&[("DA3_ACCEL_GLUE", "libtorch")]).unwrap().accelerated_glue, GlueChoice::Libtorch);
    }

    #[test]
    fn the_readme_prints_the_table() {
        let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
        assert!(
            readme.contains(&Settings::markdown_table()),
            "README.md lacks the settings table; paste this:\n{}",
            Settings::markdown_table()
        );
    }

    #[test]
    fn the_header_prints_the_table() {
        let header = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/da3.h")).unwrap();
        for line in Settings::header_lines() {
            assert!(header.lines().any(|l| l == line), "include/da3.h (cbindgen.toml) lacks:\n{line}");
        }
    }

    #[test]
    fn the_library_reads_no_variable_elsewhere() {
        // Settings is the one place: no other source file may read the environment.
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut offenders = Vec::new();
        let mut dirs = vec![src];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("settings.rs") {
                    let text = std::fs::read_to_string(&path).unwrap();
                    if text.contains("env::var") {
                        offenders.push(path.display().to_string());
                    }
                }
            }
        }
        assert!(offenders.is_empty(), "environment read outside settings.rs: {offenders:?}");
    }
}
