//! Strict checkpoint loading: every tensor the architecture needs must be in the file with
//! the expected shape, and every tensor in the file must be used. Problems are collected
//! while the model is built, so one error names all of them.
use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

/// Which part of a load a tensor count belongs to (`TensorProgress`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadPhase {
    /// Tensors read from the file into host memory.
    Read,
    /// Tensors converted and placed on the device as the modules are built.
    Place,
}

/// Hears `(phase, done, total)` as tensors are read and placed; an error it returns (e.g.
/// `Error::Cancelled`) stops the load with that error. Called from the loading thread.
pub type TensorProgress = Arc<dyn Fn(LoadPhase, usize, usize) -> Result<()> + Send + Sync>;

/// Tensors read from `model.safetensors`, handed out by name while modules are built.
pub struct WeightLoader {
    tensors: BTreeMap<String, Tensor>,
    taken: HashSet<String>,
    /// Names whose tensors are accepted but not loaded (branches this library does not run).
    skipped_prefixes: Vec<String>,
    missing: Vec<String>,
    misshaped: Vec<String>,
    device: Device,
    progress: Option<TensorProgress>,
    /// Tensors handed out so far, and how many will be (known once the skips are set).
    placed: usize,
    place_total: Option<usize>,
}

impl WeightLoader {
    /// Reads every tensor of a safetensors file into host memory.
    pub fn from_safetensors(path: &Path, device: Device) -> Result<Self> {
        Self::from_safetensors_with_progress(path, device, None)
    }

    /// `from_safetensors`, telling `progress` of every tensor read, then (as the modules take
    /// them) of every tensor placed on the device.
    pub fn from_safetensors_with_progress(path: &Path, device: Device, progress: Option<TensorProgress>) -> Result<Self> {
        let io_err = |source| Error::Io { path: path.to_owned(), source };
        let file = std::fs::File::open(path).map_err(io_err)?;
        // SAFETY: the mapping is read-only and dropped before this function returns; the
        // tensors below copy their bytes out of it.
        let bytes = unsafe { memmap2::Mmap::map(&file) }.map_err(io_err)?;
        let file = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::Checkpoint(format!("{} is not a valid safetensors file: {e}", path.display())))?;
        let mut tensors = BTreeMap::new();
        let views = file.tensors();
        let total = views.len();
        for (i, (name, view)) in views.into_iter().enumerate() {
            if let Some(progress) = &progress {
                progress(LoadPhase::Read, i, total)?;
            }
            let kind = match view.dtype() {
                safetensors::Dtype::F32 => Kind::Float,
                safetensors::Dtype::F16 => Kind::Half,
                safetensors::Dtype::BF16 => Kind::BFloat16,
                safetensors::Dtype::F64 => Kind::Double,
                safetensors::Dtype::I64 => Kind::Int64,
                other => {
                    return Err(Error::Checkpoint(format!("tensor '{name}' has unsupported dtype {other:?}")))
                }
            };
            let shape: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
            let t = Tensor::f_from_data_size(view.data(), &shape, kind)?;
            tensors.insert(name, t);
        }
        if let Some(progress) = &progress {
            progress(LoadPhase::Read, total, total)?;
        }
        let mut loader = Self::from_tensors(tensors, device);
        loader.progress = progress;
        Ok(loader)
    }

    pub fn from_tensors(tensors: BTreeMap<String, Tensor>, device: Device) -> Self {
        WeightLoader {
            tensors,
            taken: HashSet::new(),
            skipped_prefixes: Vec::new(),
            missing: Vec::new(),
            misshaped: Vec::new(),
            device,
            progress: None,
            placed: 0,
            place_total: None,
        }
    }

    /// Accepts (without loading) every tensor whose name starts with `prefix`.
    pub fn skip_prefix(&mut self, prefix: &str) {
        self.skipped_prefixes.push(prefix.to_owned());
    }

    /// The tensor `name` of shape `shape`, converted to `kind` on the model's device.
    /// A missing or mis-shaped tensor is recorded and a zero placeholder returned, so that
    /// building continues and `finish` can report every problem at once. Fails only on a
    /// libtorch error (e.g. the device is out of memory).
    pub fn take(&mut self, name: &str, shape: &[i64], kind: Kind) -> Result<Tensor> {
        self.take_any(&[name.to_owned()], shape, kind)
    }

    /// Like `take`, for a tensor stored under any one of several names (a module shared by
    /// several parents is written once by safetensors' `save_model`).
    pub fn take_any(&mut self, names: &[String], shape: &[i64], kind: Kind) -> Result<Tensor> {
        if let Some(progress) = &self.progress {
            let total = *self.place_total.get_or_insert_with(|| {
                self.tensors.keys().filter(|k| !self.skipped_prefixes.iter().any(|p| k.starts_with(p))).count()
            });
            self.placed += 1;
            progress(LoadPhase::Place, self.placed.min(total), total)?;
        }
        let found: Vec<&String> = names.iter().filter(|n| self.tensors.contains_key(*n)).collect();
        let Some(&name) = found.first() else {
            self.missing.push(names.join(" | "));
            return Ok(Tensor::f_zeros(shape, (kind, self.device))?);
        };
        for n in &found {
            self.taken.insert((*n).clone());
        }
        let t = &self.tensors[name];
        if t.size() != shape {
            self.misshaped.push(format!("{name}: checkpoint {:?}, model expects {:?}", t.size(), shape));
            return Ok(Tensor::f_zeros(shape, (kind, self.device))?);
        }
        Ok(t.f_to_device(self.device)?.f_to_kind(kind)?)
    }

    /// Fails with one message naming every missing, mis-shaped and unexpected tensor.
    pub fn finish(self) -> Result<()> {
        let unexpected: Vec<&String> = self
            .tensors
            .keys()
            .filter(|k| !self.taken.contains(*k) && !self.skipped_prefixes.iter().any(|p| k.starts_with(p)))
            .collect();
        if self.missing.is_empty() && self.misshaped.is_empty() && unexpected.is_empty() {
            return Ok(());
        }
        fn list<T: std::fmt::Display>(what: &str, items: &[T]) -> String {
            const SHOWN: usize = 8;
            if items.is_empty() {
                return String::new();
            }
            let mut s = format!("{} {what}: ", items.len());
            s += &items.iter().take(SHOWN).map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
            if items.len() > SHOWN {
                s += &format!(", ... ({} more)", items.len() - SHOWN);
            }
            s
        }
        let parts: Vec<String> = [
            list("missing tensors", &self.missing),
            list("mis-shaped tensors", &self.misshaped),
            list("unexpected tensors", &unexpected),
        ]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
        Err(Error::Checkpoint(parts.join("; ")))
    }
}
