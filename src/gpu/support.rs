//! Safe access to `libda3_cuda_support.so` (`cpp/cuda_support.cpp`): CUDA graphs, the
//! caching allocator's statistics and device capabilities, which tch does not expose.
//!
//! The shim links libtorch's CUDA libraries, so it is opened at run time, after the CUDA
//! backend (`backend::cuda_available`), never at load time: libda3 keeps loading on machines
//! without CUDA, and everything here then reports why it is unavailable.
//! Looked up in order: `Settings::cuda_support_lib` (`DA3_CUDA_SUPPORT_LIB`, handed over by the
//! first model load through `configure`), the directory of the loaded libda3, the path where
//! the build left it.
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::sync::atomic::{AtomicBool, Ordering};

use std::path::PathBuf;

use once_cell::sync::{Lazy, OnceCell};

use super::backend;
use crate::error::{torch_error, Error, Result};
use crate::model::AttentionKernel;

const LIBRARY_NAME: &str = "libda3_cuda_support.so";
const ABI_VERSION: c_int = 2;
const ERROR_CAPACITY: usize = 1024;

type ErrArgs = (*mut c_char, usize);

/// The shim's entry points (see `cpp/cuda_support.cpp` for their contracts).
struct Shim {
    graph_create: unsafe extern "C" fn(*mut *mut c_void, *mut c_char, usize) -> c_int,
    graph_destroy: unsafe extern "C" fn(*mut c_void),
    graph_capture_begin: unsafe extern "C" fn(*mut c_void, c_int, *mut c_char, usize) -> c_int,
    graph_capture_end: unsafe extern "C" fn(*mut c_void, *mut c_char, usize) -> c_int,
    graph_replay: unsafe extern "C" fn(*mut c_void, *mut c_char, usize) -> c_int,
    memory_stats: unsafe extern "C" fn(c_int, *mut i64, *mut c_char, usize) -> c_int,
    reset_peak_memory: unsafe extern "C" fn(c_int, *mut c_char, usize) -> c_int,
    compute_capability: unsafe extern "C" fn(c_int, *mut c_int, *mut c_char, usize) -> c_int,
    synchronize: unsafe extern "C" fn(c_int, *mut c_char, usize) -> c_int,
    cudnn_attention: unsafe extern "C" fn(*const c_void, *const c_void, *const c_void, *mut *mut c_void, *mut c_char, usize) -> c_int,
}

static SHIM: Lazy<std::result::Result<Shim, String>> = Lazy::new(load_shim);

/// The caller's path of the library (`Settings::cuda_support_lib`), fixed by the first
/// `configure` (the library is loaded once per process).
static CONFIGURED_PATH: OnceCell<Option<PathBuf>> = OnceCell::new();

/// Hands over where the library is looked for first; only the first call before the library
/// is loaded counts (later models share the loaded library).
pub fn configure(path: Option<PathBuf>) {
    let _ = CONFIGURED_PATH.set(path);
}

/// Directory of the object this code was linked into (libda3.so, or a test binary).
fn own_directory() -> Option<String> {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the address; `info` is a valid out-pointer.
    let ok = unsafe { libc::dladdr(own_directory as *const c_void, &mut info) };
    if ok == 0 || info.dli_fname.is_null() {
        return None;
    }
    // SAFETY: dli_fname is a NUL-terminated path owned by the loader.
    let path = unsafe { CStr::from_ptr(info.dli_fname) }.to_string_lossy().into_owned();
    std::path::Path::new(&path).parent().map(|d| d.to_string_lossy().into_owned())
}

fn candidates() -> Vec<String> {
    let mut paths = Vec::new();
    if let Some(Some(path)) = CONFIGURED_PATH.get() {
        paths.push(path.display().to_string());
    }
    if let Some(dir) = own_directory() {
        paths.push(format!("{dir}/{LIBRARY_NAME}"));
    }
    if let Some(built) = option_env!("DA3_BUILD_CUDA_SUPPORT") {
        paths.push(built.to_owned());
    }
    paths
}

fn load_shim() -> std::result::Result<Shim, String> {
    if !backend::cuda_available() {
        return Err(backend::cuda_unavailable_reason());
    }
    let mut tried = Vec::new();
    for path in candidates() {
        if !std::path::Path::new(&path).is_file() {
            tried.push(format!("{path} (absent)"));
            continue;
        }
        let c_path = CString::new(path.clone()).map_err(|e| e.to_string())?;
        // SAFETY: loading a shared library by path; the handle is intentionally never closed.
        let handle = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            tried.push(format!("{path} ({})", backend::dl_error()));
            continue;
        }
        return resolve(handle).map_err(|e| format!("{path}: {e}"));
    }
    Err(format!("{LIBRARY_NAME} not found or not loadable; tried: {}", tried.join(", ")))
}

/// A symbol's address as the function pointer type `F` (checked to be pointer-sized).
///
/// # Safety
/// `address` is the address of a function whose signature `F` describes.
unsafe fn as_function<F: Copy>(address: *mut c_void) -> F {
    assert_eq!(std::mem::size_of::<F>(), std::mem::size_of::<*mut c_void>());
    // SAFETY: per the caller; sizes checked above.
    unsafe { std::mem::transmute_copy::<*mut c_void, F>(&address) }
}

fn resolve(handle: *mut c_void) -> std::result::Result<Shim, String> {
    let symbol = |name: &str| -> std::result::Result<*mut c_void, String> {
        let c_name = CString::new(name).expect("no NUL");
        // SAFETY: looking up a symbol in a library we opened.
        let ptr = unsafe { libc::dlsym(handle, c_name.as_ptr()) };
        if ptr.is_null() {
            Err(format!("missing symbol {name}"))
        } else {
            Ok(ptr)
        }
    };
    // SAFETY: each symbol is the extern "C" function of that name in cuda_support.cpp, whose
    // signature the field types repeat; the ABI version below guards against a stale library.
    unsafe {
        let version: unsafe extern "C" fn() -> c_int = as_function(symbol("da3cs_abi_version")?);
        if version() != ABI_VERSION {
            return Err(format!("ABI version {} (expected {ABI_VERSION}): rebuild it", version()));
        }
        Ok(Shim {
            graph_create: as_function(symbol("da3cs_graph_create")?),
            graph_destroy: as_function(symbol("da3cs_graph_destroy")?),
            graph_capture_begin: as_function(symbol("da3cs_graph_capture_begin")?),
            graph_capture_end: as_function(symbol("da3cs_graph_capture_end")?),
            graph_replay: as_function(symbol("da3cs_graph_replay")?),
            memory_stats: as_function(symbol("da3cs_memory_stats")?),
            reset_peak_memory: as_function(symbol("da3cs_reset_peak_memory")?),
            compute_capability: as_function(symbol("da3cs_compute_capability")?),
            synchronize: as_function(symbol("da3cs_synchronize")?),
            cudnn_attention: as_function(symbol("da3cs_cudnn_attention")?),
        })
    }
}

fn shim() -> Result<&'static Shim> {
    SHIM.as_ref().map_err(|why| Error::Unsupported(format!("CUDA support library unavailable: {why}")))
}

/// Whether the shim is loaded (CUDA present and the library found), or why not.
pub fn availability() -> std::result::Result<(), String> {
    SHIM.as_ref().map(|_| ()).map_err(Clone::clone)
}

/// Calls a shim function with an error buffer, turning its failure into `Error::Torch`.
fn call(what: &str, f: impl FnOnce(ErrArgs) -> c_int) -> Result<()> {
    let mut buffer = vec![0 as c_char; ERROR_CAPACITY];
    if f((buffer.as_mut_ptr(), buffer.len())) == 0 {
        return Ok(());
    }
    // SAFETY: the shim always NUL-terminates within the buffer.
    let message = unsafe { CStr::from_ptr(buffer.as_ptr()) }.to_string_lossy().into_owned();
    Err(torch_error(&message).during(what))
}

/// Caching-allocator bytes of one device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryStats {
    pub allocated: i64,
    pub peak_allocated: i64,
    pub reserved: i64,
    pub peak_reserved: i64,
}

pub fn memory_stats(device: usize) -> Result<MemoryStats> {
    let shim = shim()?;
    let mut out = [0i64; 4];
    // SAFETY: `out` holds the 4 values the function writes.
    call("memory statistics", |(e, n)| unsafe { (shim.memory_stats)(device as c_int, out.as_mut_ptr(), e, n) })?;
    Ok(MemoryStats { allocated: out[0], peak_allocated: out[1], reserved: out[2], peak_reserved: out[3] })
}

pub fn reset_peak_memory(device: usize) -> Result<()> {
    let shim = shim()?;
    // SAFETY: plain call with a valid error buffer.
    call("reset peak memory", |(e, n)| unsafe { (shim.reset_peak_memory)(device as c_int, e, n) })
}

/// Compute capability as major * 10 + minor (90 for an H100).
pub fn compute_capability(device: usize) -> Result<i32> {
    let shim = shim()?;
    let mut cc: c_int = 0;
    // SAFETY: `cc` is a valid out-pointer.
    call("compute capability", |(e, n)| unsafe { (shim.compute_capability)(device as c_int, &mut cc, e, n) })?;
    Ok(cc)
}

/// Whether the device computes in bf16 natively (Ampere, compute capability 8.0, and later).
pub fn supports_bf16(device: usize) -> Result<bool> {
    Ok(compute_capability(device)? >= 80)
}

pub fn synchronize(device: usize) -> Result<()> {
    let shim = shim()?;
    // SAFETY: plain call with a valid error buffer.
    call("synchronize", |(e, n)| unsafe { (shim.synchronize)(device as c_int, e, n) })
}

/// cuDNN's fused attention, softmax(q kᵀ / sqrt(D)) v, on (B, heads, N, D) bf16 or fp16
/// CUDA tensors (made contiguous here).
pub fn cudnn_attention(q: &tch::Tensor, k: &tch::Tensor, v: &tch::Tensor) -> Result<tch::Tensor> {
    let shim = shim()?;
    let (q, k, v) = (q.f_contiguous()?, k.f_contiguous()?, v.f_contiguous()?);
    let mut out: *mut c_void = std::ptr::null_mut();
    // SAFETY: tch's tensor handles are `at::Tensor *`, alive for the call; on success `out` is
    // a new heap `at::Tensor` whose ownership passes to the returned `Tensor` (freed by its Drop).
    call("cuDNN attention", |(e, n)| unsafe {
        (shim.cudnn_attention)(q.as_ptr().cast(), k.as_ptr().cast(), v.as_ptr().cast(), &mut out, e, n)
    })?;
    Ok(unsafe { tch::Tensor::from_ptr(out.cast()) })
}

/// `cudnn_attention` as the model's attention kernel (the accelerated runner's, on a GPU in
/// reduced precision). The first failure turns it off for good: every later call declines
/// and libtorch's SDPA picks a kernel instead.
pub struct CudnnAttention {
    enabled: AtomicBool,
}

impl CudnnAttention {
    pub fn new() -> Self {
        CudnnAttention { enabled: AtomicBool::new(true) }
    }

    /// Whether it has not failed yet.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }
}

impl Default for CudnnAttention {
    fn default() -> Self {
        Self::new()
    }
}

impl AttentionKernel for CudnnAttention {
    fn attend(&self, q: &tch::Tensor, k: &tch::Tensor, v: &tch::Tensor) -> Option<tch::Tensor> {
        if !self.enabled() {
            return None;
        }
        match cudnn_attention(q, k, v) {
            Ok(out) => Some(out),
            Err(error) => {
                crate::log::info(&format!("cuDNN attention unavailable, using SDPA: {error}"));
                self.enabled.store(false, Ordering::Relaxed);
                None
            }
        }
    }
}

/// One CUDA graph (`at::cuda::CUDAGraph`) with its private memory pool. Tensors created
/// during the capture live in that pool and are rewritten by every replay.
pub struct CudaGraph {
    handle: *mut c_void,
    capturing: bool,
}

// SAFETY: the graph is used by one thread at a time (it sits behind the runner's mutex);
// CUDAGraph has no thread affinity beyond the capture, which begins and ends in one call.
unsafe impl Send for CudaGraph {}

impl CudaGraph {
    pub fn new() -> Result<CudaGraph> {
        let shim = shim()?;
        let mut handle = std::ptr::null_mut();
        // SAFETY: `handle` is a valid out-pointer.
        call("create a CUDA graph", |(e, n)| unsafe { (shim.graph_create)(&mut handle, e, n) })?;
        Ok(CudaGraph { handle, capturing: false })
    }

    /// Runs `work` on a side stream under capture: what it launches on `device` is recorded
    /// instead of run. The capture is ended (and the caller's stream restored) even when
    /// `work` fails or panics; a failed capture is an error and the graph is unusable.
    pub fn capture<T>(&mut self, device: usize, work: impl FnOnce() -> Result<T>) -> Result<T> {
        let shim = shim()?;
        // SAFETY: the handle is live; valid error buffer.
        call("begin CUDA graph capture", |(e, n)| unsafe { (shim.graph_capture_begin)(self.handle, device as c_int, e, n) })?;
        self.capturing = true;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
        self.capturing = false;
        // SAFETY: as above.
        let ended = call("end CUDA graph capture", |(e, n)| unsafe { (shim.graph_capture_end)(self.handle, e, n) });
        let value = result.map_err(|p| Error::Torch(crate::error::panic_message(&*p)))??;
        ended?;
        Ok(value)
    }

    /// Relaunches the captured work on the calling thread's current stream.
    pub fn replay(&self) -> Result<()> {
        let shim = shim()?;
        // SAFETY: the handle is live; valid error buffer.
        call("replay CUDA graph", |(e, n)| unsafe { (shim.graph_replay)(self.handle, e, n) })
    }
}

impl Drop for CudaGraph {
    fn drop(&mut self) {
        if let Ok(shim) = shim() {
            // SAFETY: the handle came from graph_create and is destroyed once.
            unsafe { (shim.graph_destroy)(self.handle) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a GPU everything here reports why instead of failing to load or crashing.
    #[test]
    fn without_cuda_every_call_says_why() {
        if backend::cuda_available() {
            return; // covered by the GPU runs (bench/)
        }
        assert!(availability().is_err());
        for result in [memory_stats(0).map(drop), reset_peak_memory(0), compute_capability(0).map(drop), CudaGraph::new().map(drop)] {
            match result {
                Err(Error::Unsupported(m)) => assert!(m.contains("CUDA support library unavailable"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
    }
}
