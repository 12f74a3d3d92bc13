//! Strict checkpoint loading: every tensor the architecture needs must be in the file with
//! the expected shape, and every tensor in the file must be used. Problems are collected
//! while the model is built, so one error names all of them.
//!
//! A model is built twice (`build_from_safetensors`): first against the file's tensor table
//! alone (names, shapes, dtypes from its header), every tensor a zero-cost placeholder, so a
//! checkpoint that does not fit the architecture fails before any of the model's memory is
//! allocated; then for real, each tensor read from the file as its module takes it.
//!
//! The file is read, never memory-mapped: a mapping of a file that another process truncates
//! raises SIGBUS, which kills the host. Its header is read with safetensors' own size bound,
//! every tensor's byte range is checked against the file's size, and each tensor's bytes are
//! read (`pread`) straight into that tensor's memory: a file that shrinks while it is read is
//! an error, and host memory holds at most one copy of a tensor.
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

/// Which part of a load a tensor count belongs to (`TensorProgress`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadPhase {
    /// The file's tensor table read and checked against the architecture.
    Read,
    /// Tensors read from the file, converted and placed on the device as the modules are built.
    Place,
}

/// Hears `(phase, done, total)` as the table is checked and tensors are placed; an error it
/// returns (e.g. `Error::Cancelled`) stops the load with that error. Called from the loading
/// thread.
pub type TensorProgress = Arc<dyn Fn(LoadPhase, usize, usize) -> Result<()> + Send + Sync>;

/// safetensors' own bound on the JSON header (`MAX_HEADER_SIZE` in the crate): a larger one is
/// refused before anything is allocated for it.
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// Opens `path` for reading if it is a regular file (after following links); `what` names it in
/// errors. A FIFO, a device (`/dev/zero`), a directory or a socket is a `Error::Checkpoint`: a
/// read from it could block forever or never end. Opened non-blocking, so that opening a FIFO
/// does not wait for a writer; the flag changes nothing for a regular file.
pub fn open_regular_file(path: &Path, what: &str) -> Result<File> {
    let io_err = |source| Error::Io { path: path.to_owned(), source };
    let file = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).map_err(io_err)?;
    // The type of what was opened, not of what the path named a moment before.
    let file_type = file.metadata().map_err(io_err)?.file_type();
    if !file_type.is_file() {
        return Err(not_a_regular_file(path, file_type, what));
    }
    Ok(file)
}

/// The error for `path`, of type `file_type`, where `what` must be a regular file.
pub fn not_a_regular_file(path: &Path, file_type: std::fs::FileType, what: &str) -> Error {
    use std::os::unix::fs::FileTypeExt;
    let kind = if file_type.is_dir() {
        "a directory"
    } else if file_type.is_fifo() {
        "a FIFO"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_socket() {
        "a socket"
    } else {
        "no regular file"
    };
    Error::Checkpoint(format!("{} is not a regular file but {kind}; {what} must be one", path.display()))
}

/// A tensor as the file's header describes it.
struct StoredTensor {
    kind: Kind,
    shape: Vec<i64>,
    /// Byte offset of its data in the file.
    start: u64,
    /// Bytes of data (its elements times the dtype's size).
    len: usize,
}

/// An open `model.safetensors`: its tensor table (checked against the file's size), and the
/// file to read each tensor's bytes from.
pub struct SafetensorsFile {
    path: PathBuf,
    file: File,
    tensors: BTreeMap<String, StoredTensor>,
}

impl SafetensorsFile {
    /// Opens a safetensors file and reads its header: a corrupt or inconsistent header (too
    /// large, not JSON, overlapping or gapped tensors, a size that is not the file's, an
    /// unsupported dtype) is `Error::Checkpoint`; nothing beyond the header is read.
    pub fn open(path: &Path) -> Result<Self> {
        let file = open_regular_file(path, "the weights file")?;
        let io_err = |source| Error::Io { path: path.to_owned(), source };
        let invalid = |what: String| Error::Checkpoint(format!("{} is not a valid safetensors file: {what}", path.display()));
        let size = file.metadata().map_err(io_err)?.len();
        let mut length = [0u8; 8];
        if size < length.len() as u64 {
            return Err(invalid(format!("{size} bytes, shorter than the 8-byte header length")));
        }
        file.read_exact_at(&mut length, 0).map_err(io_err)?;
        let header_len = u64::from_le_bytes(length);
        if header_len > MAX_HEADER_BYTES || header_len > size - 8 {
            return Err(invalid(format!(
                "a header of {header_len} bytes (at most {MAX_HEADER_BYTES}, and the file has {size} bytes)"
            )));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact_at(&mut header, 8).map_err(io_err)?;
        // The crate's own parser and checks: tensors back to back from offset 0, each range the
        // size its shape and dtype say, no overflow.
        let metadata: safetensors::tensor::Metadata =
            serde_json::from_slice(&header).map_err(|e| invalid(format!("header: {e}")))?;
        let data_start = 8 + header_len;
        let data_len = metadata.data_len() as u64;
        if data_start.checked_add(data_len) != Some(size) {
            return Err(invalid(format!(
                "the header describes {data_len} bytes of tensor data after its {data_start} bytes, the file has {size} bytes"
            )));
        }
        let mut tensors = BTreeMap::new();
        for (name, info) in metadata.tensors() {
            let kind = match info.dtype {
                safetensors::Dtype::F32 => Kind::Float,
                safetensors::Dtype::F16 => Kind::Half,
                safetensors::Dtype::BF16 => Kind::BFloat16,
                safetensors::Dtype::F64 => Kind::Double,
                safetensors::Dtype::I64 => Kind::Int64,
                other => return Err(Error::Checkpoint(format!("tensor '{name}' has unsupported dtype {other:?}"))),
            };
            // A dimension may exceed i64 when another is 0 (no bytes): libtorch cannot hold it.
            let shape = info
                .shape
                .iter()
                .map(|&d| i64::try_from(d))
                .collect::<std::result::Result<Vec<i64>, _>>()
                .map_err(|_| invalid(format!("tensor '{name}' has a dimension beyond 2^63: {:?}", info.shape)))?;
            let (begin, end) = info.data_offsets;
            tensors.insert(name, StoredTensor { kind, shape, start: data_start + begin as u64, len: end - begin });
        }
        Ok(SafetensorsFile { path: path.to_owned(), file, tensors })
    }

    /// Number of tensors in the file.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The tensor `name` (which must be in the table) read into new host memory in the file's
    /// dtype. A file that no longer holds the bytes its header promised (truncated while it is
    /// read) is `Error::Io`.
    fn read(&self, name: &str) -> Result<Tensor> {
        let stored = &self.tensors[name];
        let tensor = Tensor::f_empty(stored.shape.as_slice(), (stored.kind, Device::Cpu))?;
        let bytes = tensor.numel() * stored.kind.elt_size_in_bytes();
        if bytes != stored.len {
            return Err(Error::Internal(format!("tensor '{name}': {bytes} bytes in libtorch, {} in the file", stored.len)));
        }
        if bytes > 0 {
            // SAFETY: `tensor` is a new contiguous CPU tensor of exactly `bytes` bytes, owned
            // here and not yet shared; any byte pattern is a valid value of its dtype.
            let data = unsafe { std::slice::from_raw_parts_mut(tensor.data_ptr() as *mut u8, bytes) };
            self.file.read_exact_at(data, stored.start).map_err(|source| {
                let source = if source.kind() == std::io::ErrorKind::UnexpectedEof {
                    std::io::Error::new(
                        source.kind(),
                        format!(
                            "the file ended before tensor '{name}' (bytes {}..{}): it was truncated or rewritten while it was read",
                            stored.start,
                            stored.start + bytes as u64
                        ),
                    )
                } else {
                    source
                };
                Error::Io { path: self.path.clone(), source }
            })?;
        }
        Ok(tensor)
    }
}

/// Where a loader's tensors come from.
enum Source {
    /// Read as modules take them.
    File(SafetensorsFile),
    /// Already in memory (tests, tools).
    Memory(BTreeMap<String, Tensor>),
}

impl Source {
    fn shape(&self, name: &str) -> Option<Vec<i64>> {
        match self {
            Source::File(file) => file.tensors.get(name).map(|t| t.shape.clone()),
            Source::Memory(tensors) => tensors.get(name).map(|t| t.size()),
        }
    }

    fn names(&self) -> Box<dyn Iterator<Item = &String> + '_> {
        match self {
            Source::File(file) => Box::new(file.tensors.keys()),
            Source::Memory(tensors) => Box::new(tensors.keys()),
        }
    }

    fn tensor(&self, name: &str) -> Result<Tensor> {
        match self {
            Source::File(file) => file.read(name),
            Source::Memory(tensors) => Ok(tensors[name].shallow_clone()),
        }
    }
}

/// Hands out a checkpoint's tensors by name while modules are built.
pub struct WeightLoader {
    source: Source,
    /// Checking the table only: every tensor handed out is a placeholder, nothing is read.
    table_only: bool,
    taken: HashSet<String>,
    /// Names whose tensors are accepted but not loaded (branches this library does not run).
    skipped_prefixes: Vec<String>,
    missing: Vec<String>,
    /// The first name and the shape of each missing tensor (`random_tensors_for`).
    #[cfg(test)]
    missing_shapes: Vec<(String, Vec<i64>)>,
    misshaped: Vec<String>,
    device: Device,
    progress: Option<TensorProgress>,
    /// Tensors handed out so far, and how many will be (known once the skips are set).
    placed: usize,
    place_total: Option<usize>,
    /// Inside `build_on_host`: the tensors handed out, by name.
    recording: Option<BTreeMap<String, Tensor>>,
}

/// Builds what `build` makes (a network, or any set of modules) from the safetensors file at
/// `path`, strictly: `build` runs first against the file's tensor table (each tensor a
/// placeholder that holds no memory; its result is dropped), and a missing, mis-shaped or
/// unexpected tensor fails there, naming all of them; then it runs again with every tensor
/// read from the file, converted and placed on `device`. `build` must take the same tensors
/// both times. `progress` hears of the check (`LoadPhase::Read`) and of every tensor placed.
pub fn build_from_safetensors<T>(
    path: &Path,
    device: Device,
    progress: Option<TensorProgress>,
    build: impl Fn(&mut WeightLoader) -> Result<T>,
) -> Result<T> {
    let file = SafetensorsFile::open(path)?;
    let total = file.len();
    if let Some(progress) = &progress {
        progress(LoadPhase::Read, 0, total)?;
    }
    let mut check = WeightLoader::new(Source::File(file), Device::Cpu, true);
    drop(build(&mut check)?);
    if let Some(problems) = check.problems() {
        return Err(problems);
    }
    if let Some(progress) = &progress {
        progress(LoadPhase::Read, total, total)?;
    }
    let mut loader = WeightLoader::new(check.source, device, false);
    loader.progress = progress;
    let built = build(&mut loader)?;
    loader.finish()?;
    Ok(built)
}

impl WeightLoader {
    fn new(source: Source, device: Device, table_only: bool) -> Self {
        WeightLoader {
            source,
            table_only,
            taken: HashSet::new(),
            skipped_prefixes: Vec::new(),
            missing: Vec::new(),
            #[cfg(test)]
            missing_shapes: Vec::new(),
            misshaped: Vec::new(),
            device,
            progress: None,
            placed: 0,
            place_total: None,
            recording: None,
        }
    }

    /// What `build` makes with the tensors it takes placed in host memory instead of on the
    /// model's device, and those tensors by name (checked as every other: names, shapes). A
    /// module built this way can be built again on a device later, from
    /// `WeightLoader::from_tensors(tensors, device)`, without reading the file again.
    pub fn build_on_host<T>(&mut self, build: impl FnOnce(&mut Self) -> Result<T>) -> Result<(T, BTreeMap<String, Tensor>)> {
        let device = std::mem::replace(&mut self.device, Device::Cpu);
        let outer = self.recording.replace(BTreeMap::new());
        let built = build(self);
        self.device = device;
        let recorded = std::mem::replace(&mut self.recording, outer).unwrap_or_default();
        Ok((built?, recorded))
    }

    /// Random fp32 tensors (host memory) under every name, of every shape, that `build` takes:
    /// a checkpoint for a module in tests.
    #[cfg(test)]
    pub fn random_tensors_for<T>(build: impl FnOnce(&mut Self) -> Result<T>) -> BTreeMap<String, Tensor> {
        let mut w = Self::from_tensors(BTreeMap::new(), Device::Cpu);
        let _ = build(&mut w);
        w.missing_shapes.iter().map(|(name, shape)| (name.clone(), Tensor::randn(shape.as_slice(), (Kind::Float, Device::Cpu)))).collect()
    }

    /// The device tensors are placed on (host memory inside `build_on_host`).
    pub fn device(&self) -> Device {
        self.device
    }

    /// A loader over tensors already in memory.
    pub fn from_tensors(tensors: BTreeMap<String, Tensor>, device: Device) -> Self {
        Self::new(Source::Memory(tensors), device, false)
    }

    /// Accepts (without loading) every tensor whose name starts with `prefix`.
    pub fn skip_prefix(&mut self, prefix: &str) {
        self.skipped_prefixes.push(prefix.to_owned());
    }

    fn skipped(&self, name: &str) -> bool {
        self.skipped_prefixes.iter().any(|p| name.starts_with(p.as_str()))
    }

    /// The tensor `name` of shape `shape`, converted to `kind` on the model's device.
    /// A missing or mis-shaped tensor is recorded and a zero placeholder returned, so that
    /// building continues and `finish` can report every problem at once. Fails on a libtorch
    /// error (e.g. the device is out of memory) or when the file can no longer be read.
    pub fn take(&mut self, name: &str, shape: &[i64], kind: Kind) -> Result<Tensor> {
        self.take_any(&[name.to_owned()], shape, kind)
    }

    /// Like `take`, for a tensor stored under any one of several names (a module shared by
    /// several parents is written once by safetensors' `save_model`).
    pub fn take_any(&mut self, names: &[String], shape: &[i64], kind: Kind) -> Result<Tensor> {
        if let (Some(progress), false) = (&self.progress, self.table_only) {
            let total = match self.place_total {
                Some(total) => total,
                None => {
                    let total = self.source.names().filter(|k| !self.skipped(k)).count();
                    *self.place_total.insert(total)
                }
            };
            self.placed += 1;
            progress(LoadPhase::Place, self.placed.min(total), total)?;
        }
        let found: Vec<&String> = names.iter().filter(|n| self.source.shape(n).is_some()).collect();
        let Some(&name) = found.first() else {
            self.missing.push(names.join(" | "));
            #[cfg(test)]
            self.missing_shapes.push((names[0].clone(), shape.to_vec()));
            return self.placeholder(shape, kind);
        };
        for n in &found {
            self.taken.insert((*n).clone());
        }
        let stored = self.source.shape(name).unwrap_or_default();
        if stored != shape {
            self.misshaped.push(format!("{name}: checkpoint {stored:?}, model expects {shape:?}"));
            return self.placeholder(shape, kind);
        }
        if self.table_only {
            return self.placeholder(shape, kind);
        }
        let tensor = self.source.tensor(name)?.f_to_device(self.device)?.f_to_kind(kind)?;
        if let Some(recording) = &mut self.recording {
            recording.insert(name.clone(), tensor.shallow_clone());
        }
        Ok(tensor)
    }

    /// Zeros of `shape` that hold one element's memory (a broadcast view): a model built of
    /// these costs nothing, whatever its size.
    fn placeholder(&self, shape: &[i64], kind: Kind) -> Result<Tensor> {
        let device = if self.table_only { Device::Cpu } else { self.device };
        Ok(Tensor::f_zeros([] as [i64; 0], (kind, device))?.f_expand(shape, false)?)
    }

    /// One error naming every missing, mis-shaped and unexpected tensor, if any.
    fn problems(&self) -> Option<Error> {
        let unexpected: Vec<&String> = self.source.names().filter(|k| !self.taken.contains(*k) && !self.skipped(k)).collect();
        if self.missing.is_empty() && self.misshaped.is_empty() && unexpected.is_empty() {
            return None;
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
        Some(Error::Checkpoint(parts.join("; ")))
    }

    /// Fails with one message naming every missing, mis-shaped and unexpected tensor.
    pub fn finish(self) -> Result<()> {
        match self.problems() {
            Some(problems) => Err(problems),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use safetensors::tensor::TensorView;
    use safetensors::Dtype;

    use super::*;

    /// A safetensors file of three f32 tensors `a` [2], `b` [3], `c` [4] holding 0, 1, 2, ...
    fn three_tensor_file(dir: &Path) -> PathBuf {
        let data: Vec<Vec<u8>> = [2usize, 3, 4]
            .iter()
            .map(|&n| (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect())
            .collect();
        let views = ["a", "b", "c"]
            .iter()
            .zip(&data)
            .map(|(name, bytes)| (name.to_string(), TensorView::new(Dtype::F32, vec![bytes.len() / 4], bytes).unwrap()));
        let path = dir.join("model.safetensors");
        safetensors::serialize_to_file(views, None, &path).unwrap();
        path
    }

    fn build_three(w: &mut WeightLoader) -> Result<Vec<Tensor>> {
        [("a", 2), ("b", 3), ("c", 4)].iter().map(|&(n, len)| w.take(n, &[len], Kind::Float)).collect()
    }

    #[test]
    fn tensors_are_read_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let tensors = build_from_safetensors(&three_tensor_file(dir.path()), Device::Cpu, None, build_three).unwrap();
        assert_eq!(Vec::<f32>::try_from(&tensors[2]).unwrap(), [0.0, 1.0, 2.0, 3.0]);
    }

    /// Truncating the file after some tensors were read (here: from the progress callback, as
    /// another process could at any time) fails the load with an I/O error. With a memory
    /// mapping this was SIGBUS, which kills the process.
    #[test]
    fn a_file_truncated_while_it_is_read_is_an_io_error_not_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let path = three_tensor_file(dir.path());
        let victim = path.clone();
        let progress: TensorProgress = Arc::new(move |phase, done, _| {
            if phase == LoadPhase::Place && done == 2 {
                std::fs::OpenOptions::new().write(true).open(&victim).unwrap().set_len(0).unwrap();
            }
            Ok(())
        });
        let err = build_from_safetensors(&path, Device::Cpu, Some(progress), build_three).err().expect("truncated");
        assert!(matches!(&err, Error::Io { .. }), "{err}");
        assert!(err.to_string().contains("truncated or rewritten while it was read"), "{err}");
    }

    /// A file removed while it is read stays readable through its open descriptor.
    #[test]
    fn a_file_removed_while_it_is_read_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = three_tensor_file(dir.path());
        let removed = Arc::new(AtomicBool::new(false));
        let (victim, flag) = (path.clone(), removed.clone());
        let progress: TensorProgress = Arc::new(move |phase, done, _| {
            if phase == LoadPhase::Place && done == 2 {
                std::fs::remove_file(&victim).unwrap();
                flag.store(true, Ordering::SeqCst);
            }
            Ok(())
        });
        let tensors = build_from_safetensors(&path, Device::Cpu, Some(progress), build_three).unwrap();
        assert!(removed.load(Ordering::SeqCst) && !path.exists());
        assert_eq!(Vec::<f32>::try_from(&tensors[2]).unwrap(), [0.0, 1.0, 2.0, 3.0]);
    }

    /// The table is checked before anything is allocated: an architecture of 4 TB against a
    /// file that lacks it fails at once, naming what is missing.
    #[test]
    fn a_mismatched_table_fails_before_the_model_is_allocated() {
        let dir = tempfile::tempdir().unwrap();
        let path = three_tensor_file(dir.path());
        let placed = Arc::new(AtomicBool::new(false));
        let flag = placed.clone();
        let progress: TensorProgress = Arc::new(move |phase, _, _| {
            flag.fetch_or(phase == LoadPhase::Place, Ordering::SeqCst);
            Ok(())
        });
        let err = build_from_safetensors(&path, Device::Cpu, Some(progress), |w| {
            let huge = w.take("huge", &[1 << 20, 1 << 20], Kind::Float)?;
            let a = w.take("a", &[2], Kind::Float)?;
            let b = w.take("b", &[1 << 40], Kind::Float)?;
            Ok((huge, a, b))
        })
        .err()
        .expect("mismatch");
        let msg = err.to_string();
        assert!(msg.contains("1 missing tensors: huge"), "{msg}");
        assert!(msg.contains("b: checkpoint [3], model expects [1099511627776]"), "{msg}");
        assert!(msg.contains("1 unexpected tensors: c"), "{msg}");
        assert!(!placed.load(Ordering::SeqCst), "no tensor was read or placed");
    }

    fn write(dir: &Path, bytes: &[u8]) -> PathBuf {
        let path = dir.join("model.safetensors");
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn open_error(path: &Path) -> String {
        match SafetensorsFile::open(path) {
            Err(e @ Error::Checkpoint(_)) => e.to_string(),
            Err(other) => panic!("expected a checkpoint error, got {other}"),
            Ok(_) => panic!("{} opened", path.display()),
        }
    }

    #[test]
    fn headers_are_checked_against_the_file_before_they_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let msg = open_error(&write(dir.path(), b"1234"));
        assert!(msg.contains("shorter than the 8-byte header length"), "{msg}");
        // A header length of 2^64-1: refused without allocating it.
        let msg = open_error(&write(dir.path(), &[0xff; 16]));
        assert!(msg.contains("a header of 18446744073709551615 bytes"), "{msg}");
        let msg = open_error(&write(dir.path(), &[[100, 0, 0, 0, 0, 0, 0, 0].as_slice(), b"{}"].concat()));
        assert!(msg.contains("a header of 100 bytes") && msg.contains("10 bytes"), "{msg}");
        // A table promising more data than the file holds.
        let header = br#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#;
        let file = [(header.len() as u64).to_le_bytes().as_slice(), header, &[0; 8]].concat();
        let msg = open_error(&write(dir.path(), &file));
        assert!(msg.contains("describes 16 bytes of tensor data"), "{msg}");
        // A zero-sized tensor with a dimension libtorch cannot hold.
        let header = br#"{"a":{"dtype":"F32","shape":[0,18446744073709551615],"data_offsets":[0,0]}}"#;
        let file = [(header.len() as u64).to_le_bytes().as_slice(), header].concat();
        let msg = open_error(&write(dir.path(), &file));
        assert!(msg.contains("dimension beyond 2^63"), "{msg}");
    }

    #[test]
    fn only_regular_files_are_opened() {
        let msg = open_error(Path::new("/dev/zero"));
        assert!(msg.contains("/dev/zero is not a regular file but a character device"), "{msg}");
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("model.safetensors");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        // Opening a FIFO for reading would wait for a writer: this returns at once.
        let msg = open_error(&fifo);
        assert!(msg.contains("is not a regular file but a FIFO"), "{msg}");
        let msg = open_error(dir.path());
        assert!(msg.contains("is not a regular file but a directory"), "{msg}");
    }
}
