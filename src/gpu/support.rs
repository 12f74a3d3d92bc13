//! Safe access to `libda3_cuda_support.so` (`cpp/cuda_support.cpp`): CUDA graphs, the
//! caching allocator's statistics, device capabilities and cuDNN attention, which tch does not
//! expose, and the glue kernels (transformer blocks, head resampling) it compiles at run time
//! with NVRTC.
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
use crate::model::dinov2::layers::rope::RopeTables;
use crate::model::{AttentionKernel, GlueKernels, HeadKernels};
use crate::nn::{LayerNorm, Linear};

const LIBRARY_NAME: &str = "libda3_cuda_support.so";
const ABI_VERSION: c_int = 6;
/// A shim call's status when a run-time compiled kernel cannot be had here.
const KERNEL_UNAVAILABLE: c_int = 1;
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
    linear_gelu: unsafe extern "C" fn(*const c_void, *const c_void, *const c_void, *mut *mut c_void, *mut c_char, usize) -> c_int,
    #[allow(clippy::type_complexity)]
    attention_inputs: unsafe extern "C" fn(
        *const c_void,
        i64,
        *const c_void,
        *const c_void,
        *const c_void,
        *const c_void,
        f64,
        *const c_void,
        *const c_void,
        *mut *mut c_void,
        *mut c_char,
        usize,
    ) -> c_int,
    #[allow(clippy::type_complexity)]
    layer_norm: unsafe extern "C" fn(
        *const c_void,
        *const c_void,
        *const c_void,
        *const c_void,
        *const c_void,
        f64,
        *const c_void,
        *mut *mut c_void,
        *mut *mut c_void,
        *mut c_char,
        usize,
    ) -> c_int,
    upsample_bilinear: unsafe extern "C" fn(*const c_void, i64, i64, *const c_void, *mut *mut c_void, *mut c_char, usize) -> c_int,
    bias_epilogue: unsafe extern "C" fn(*const c_void, *const c_void, *const c_void, c_int, *mut c_char, usize) -> c_int,
    residual_update: unsafe extern "C" fn(*const c_void, *const c_void, *const c_void, *mut c_char, usize) -> c_int,
    compile_glue_kernels: unsafe extern "C" fn(c_int, *mut c_char, usize) -> c_int,
    device_memory_range: unsafe extern "C" fn(u64, *mut i64, *mut c_char, usize) -> c_int,
    wait_for_stream: unsafe extern "C" fn(*mut c_void, c_int, *mut c_char, usize) -> c_int,
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
    open_shim()
}

/// Opens the shim (its CUDA functions then need a GPU; `compile_glue_kernels` does not).
fn open_shim() -> std::result::Result<Shim, String> {
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
            linear_gelu: as_function(symbol("da3cs_linear_gelu")?),
            attention_inputs: as_function(symbol("da3cs_attention_inputs")?),
            layer_norm: as_function(symbol("da3cs_layer_norm")?),
            upsample_bilinear: as_function(symbol("da3cs_upsample_bilinear")?),
            bias_epilogue: as_function(symbol("da3cs_bias_epilogue")?),
            residual_update: as_function(symbol("da3cs_residual_update")?),
            compile_glue_kernels: as_function(symbol("da3cs_compile_glue_kernels")?),
            device_memory_range: as_function(symbol("da3cs_device_memory_range")?),
            wait_for_stream: as_function(symbol("da3cs_wait_for_stream")?),
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
    match call_kernel(what, f)? {
        Ok(()) => Ok(()),
        Err(unavailable) => Err(torch_error(&unavailable).during(what)),
    }
}

/// `call` for a function that may answer `KERNEL_UNAVAILABLE`: `Ok(Err(why))` then.
fn call_kernel(what: &str, f: impl FnOnce(ErrArgs) -> c_int) -> Result<std::result::Result<(), String>> {
    let mut buffer = vec![0 as c_char; ERROR_CAPACITY];
    let status = f((buffer.as_mut_ptr(), buffer.len()));
    if status == 0 {
        return Ok(Ok(()));
    }
    // SAFETY: the shim always NUL-terminates within the buffer.
    let message = unsafe { CStr::from_ptr(buffer.as_ptr()) }.to_string_lossy().into_owned();
    if status == KERNEL_UNAVAILABLE {
        return Ok(Err(message));
    }
    Err(torch_error(&message).during(what))
}

/// A tensor handle the shim returned, owned from here on.
///
/// # Safety
/// `handle` is a new heap `at::Tensor *` no one else owns.
unsafe fn owned_tensor(handle: *mut c_void) -> tch::Tensor {
    // SAFETY: per the caller; freed by the Tensor's Drop.
    unsafe { tch::Tensor::from_ptr(handle.cast()) }
}

fn tensor_ptr(t: &tch::Tensor) -> *const c_void {
    t.as_ptr() as *const c_void
}

/// See `da3cs_attention_inputs` (cpp/cuda_support.cpp). `Ok(Err(why))`: the kernel cannot be
/// had here.
fn attention_inputs(
    qkv: &mut tch::Tensor,
    heads: i64,
    qk_norm: Option<(&LayerNorm, &LayerNorm)>,
    rope: Option<&RopeTables>,
) -> Result<std::result::Result<(tch::Tensor, tch::Tensor, tch::Tensor), String>> {
    let shim = shim()?;
    let null = std::ptr::null::<c_void>();
    let (qw, qb, kw, kb, eps) = match qk_norm {
        Some((q, k)) => (tensor_ptr(&q.weight), tensor_ptr(&q.bias), tensor_ptr(&k.weight), tensor_ptr(&k.bias), q.eps()),
        None => (null, null, null, null, 0.0),
    };
    let (cos, sin) = rope.map_or((null, null), |t| (tensor_ptr(t.cos()), tensor_ptr(t.sin())));
    let mut out = [std::ptr::null_mut::<c_void>(); 3];
    // SAFETY: tch's tensor handles are `at::Tensor *`, alive for the call (`qkv` borrowed
    // mutably: the kernel rewrites it); `out` has the three slots the function fills on success.
    let status = call_kernel("the attention-input kernel", |(e, n)| unsafe {
        (shim.attention_inputs)(tensor_ptr(qkv), heads, qw, qb, kw, kb, eps, cos, sin, out.as_mut_ptr(), e, n)
    })?;
    // SAFETY: on success each slot holds a new tensor handle the caller owns.
    Ok(status.map(|()| unsafe { (owned_tensor(out[0]), owned_tensor(out[1]), owned_tensor(out[2])) }))
}

/// See `da3cs_layer_norm` (cpp/cuda_support.cpp): `norm(x)` (after `x + gamma * branch`
/// when `residual` is given, returned too) in `half_like`'s kind.
fn layer_norm(
    x: &tch::Tensor,
    residual: Option<(&tch::Tensor, &tch::Tensor)>,
    norm: &LayerNorm,
    half_like: &tch::Tensor,
) -> Result<std::result::Result<(Option<tch::Tensor>, tch::Tensor), String>> {
    let shim = shim()?;
    let null = std::ptr::null::<c_void>();
    let (branch, gamma) = residual.map_or((null, null), |(b, g)| (tensor_ptr(b), tensor_ptr(g)));
    let (mut updated, mut normed) = (std::ptr::null_mut::<c_void>(), std::ptr::null_mut::<c_void>());
    // SAFETY: tch's tensor handles are `at::Tensor *`, alive for the call; valid out-pointers.
    let status = call_kernel("the LayerNorm kernel", |(e, n)| unsafe {
        (shim.layer_norm)(
            tensor_ptr(x),
            branch,
            gamma,
            tensor_ptr(&norm.weight),
            tensor_ptr(&norm.bias),
            norm.eps(),
            tensor_ptr(half_like),
            &mut updated,
            &mut normed,
            e,
            n,
        )
    })?;
    // SAFETY: on success `normed` (and `updated` with a residual) are new handles we own.
    Ok(status.map(|()| unsafe { (residual.map(|_| owned_tensor(updated)), owned_tensor(normed)) }))
}

/// See `da3cs_upsample_bilinear` (cpp/cuda_support.cpp): the channels-last map `x` resampled
/// to `size` (align_corners=True), plus `add` when given.
fn upsample_bilinear(x: &tch::Tensor, size: (i64, i64), add: Option<&tch::Tensor>) -> Result<std::result::Result<tch::Tensor, String>> {
    let shim = shim()?;
    let add = add.map_or(std::ptr::null(), tensor_ptr);
    let mut out = std::ptr::null_mut::<c_void>();
    // SAFETY: tch's tensor handles are `at::Tensor *`, alive for the call; valid out-pointer.
    let status = call_kernel("the upsampling kernel", |(e, n)| unsafe {
        (shim.upsample_bilinear)(tensor_ptr(x), size.0, size.1, add, &mut out, e, n)
    })?;
    // SAFETY: on success `out` is a new handle we own.
    Ok(status.map(|()| unsafe { owned_tensor(out) }))
}

/// See `da3cs_bias_epilogue` (cpp/cuda_support.cpp): in place on `out`, the unbiased output of
/// a convolution: `out + bias`, `+ add`, ReLU.
fn bias_epilogue(out: &tch::Tensor, bias: &tch::Tensor, add: Option<&tch::Tensor>, relu: bool) -> Result<std::result::Result<(), String>> {
    let shim = shim()?;
    let add = add.map_or(std::ptr::null(), tensor_ptr);
    // SAFETY: tch's tensor handles are `at::Tensor *`, alive for the call; `out` is written in
    // place (the caller holds it mutably).
    call_kernel("the bias epilogue kernel", |(e, n)| unsafe {
        (shim.bias_epilogue)(tensor_ptr(out), tensor_ptr(bias), add, c_int::from(relu), e, n)
    })
}

/// See `da3cs_residual_update` (cpp/cuda_support.cpp): `x += gamma * branch` in place.
fn residual_update(x: &tch::Tensor, branch: &tch::Tensor, gamma: &tch::Tensor) -> Result<std::result::Result<(), String>> {
    let shim = shim()?;
    // SAFETY: tch's tensor handles are `at::Tensor *`, alive for the call; `x` is written in
    // place (the caller holds it mutably).
    call_kernel("the residual-update kernel", |(e, n)| unsafe {
        (shim.residual_update)(tensor_ptr(x), tensor_ptr(branch), tensor_ptr(gamma), e, n)
    })
}

/// Compiles every glue-kernel variant for compute capability `arch` (e.g. 90) with NVRTC,
/// without a GPU: the kernels' source is checked where no GPU runs them.
pub fn compile_glue_kernels(arch: i32) -> std::result::Result<(), String> {
    static OPENED: Lazy<std::result::Result<Shim, String>> = Lazy::new(open_shim);
    let shim = OPENED.as_ref().map_err(Clone::clone)?;
    // SAFETY: plain call with a valid error buffer.
    call_kernel("compile the glue kernels", |(e, n)| unsafe { (shim.compile_glue_kernels)(arch as c_int, e, n) })
        .map_err(|e| e.to_string())?
}

/// The allocation holding device address `address`: its CUDA device ordinal and its byte
/// range. An address CUDA does not know as device or managed memory is
/// `Error::InvalidArgument` (nothing is read from it).
pub fn device_memory_range(address: u64) -> Result<DeviceAllocation> {
    let shim = shim()?;
    let mut out = [0i64; 3];
    // SAFETY: `out` holds the 3 values the function writes; the address is only looked up.
    call_kernel("looking up a device address", |(e, n)| unsafe { (shim.device_memory_range)(address, out.as_mut_ptr(), e, n) })
        .and_then(|status| status.map_err(Error::InvalidArgument))
        .map_err(|e| match e {
            Error::Torch(m) => Error::InvalidArgument(m),
            other => other,
        })?;
    Ok(DeviceAllocation { device: out[0] as usize, start: out[1] as u64, len: out[2] as u64 })
}

/// Where a device address lives (`device_memory_range`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceAllocation {
    pub device: usize,
    pub start: u64,
    pub len: u64,
}

/// Makes the work libtorch queues next on `device` (its current stream) wait for everything
/// queued so far on the caller's `stream` (a `cudaStream_t`; null: the legacy default
/// stream), without a host wait.
///
/// # Safety
/// `stream` is null or a live CUDA stream of `device`.
pub unsafe fn wait_for_stream(stream: *mut c_void, device: usize) -> Result<()> {
    let shim = shim()?;
    // SAFETY: per the caller's contract on `stream`.
    call("waiting for the caller's CUDA stream", |(e, n)| unsafe { (shim.wait_for_stream)(stream, device as c_int, e, n) })
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
/// CUDA tensors with unit-stride channels (others are made contiguous here).
pub fn cudnn_attention(q: &tch::Tensor, k: &tch::Tensor, v: &tch::Tensor) -> Result<tch::Tensor> {
    let shim = shim()?;
    // Strided views (e.g. of a qkv projection) as they are: cuDNN takes any strides with
    // unit-stride channels, and writes its output in q's order.
    let dense = |t: &tch::Tensor| if t.stride().last() == Some(&1) { Ok(t.shallow_clone()) } else { t.f_contiguous() };
    let (q, k, v) = (dense(q)?, dense(k)?, dense(v)?);
    let mut out: *mut c_void = std::ptr::null_mut();
    // SAFETY: tch's tensor handles are `at::Tensor *`, alive for the call; on success `out` is
    // a new heap `at::Tensor` whose ownership passes to the returned `Tensor` (freed by its Drop).
    call("cuDNN attention", |(e, n)| unsafe {
        (shim.cudnn_attention)(q.as_ptr().cast(), k.as_ptr().cast(), v.as_ptr().cast(), &mut out, e, n)
    })?;
    Ok(unsafe { tch::Tensor::from_ptr(out.cast()) })
}

/// `gelu_tanh(rows @ weight^T + bias)` as one matrix product (cuBLASLt's GELU_BIAS epilogue) of
/// (rows, in) `rows`, (out, in) `weight` and (out) `bias`, all of one kind on one GPU.
pub fn linear_gelu(rows: &tch::Tensor, weight: &tch::Tensor, bias: &tch::Tensor) -> Result<tch::Tensor> {
    let shim = shim()?;
    let mut out: *mut c_void = std::ptr::null_mut();
    // SAFETY: as `cudnn_attention`.
    call("linear + GELU", |(e, n)| unsafe {
        (shim.linear_gelu)(rows.as_ptr().cast(), weight.as_ptr().cast(), bias.as_ptr().cast(), &mut out, e, n)
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

/// The glue kernels of `cpp/glue_kernels_source.h` as the model's `GlueKernels` and
/// `HeadKernels` (the accelerated runner's, on a GPU in reduced precision). The block kernels
/// take bf16/fp16 CUDA tensors with heads of 64 channels and LayerNorm rows of a multiple of 128
/// channels (every DA3 backbone), the head kernels channels-last maps of a multiple of 8
/// channels (see `head_map_fits`); they decline anything else. A kernel that cannot be compiled
/// here (no NVRTC, an unknown architecture) turns them all off for good, with one log line:
/// libtorch's operations run instead.
pub struct CudaGlueKernels {
    enabled: AtomicBool,
    /// Whether `linear_gelu` takes the call (`DA3_ACCEL_GELU`).
    gelu_epilogue: bool,
}

impl CudaGlueKernels {
    /// `gelu_epilogue`: fc1 and the tanh-form GELU as one matrix product (`linear_gelu`).
    pub fn new(gelu_epilogue: bool) -> Self {
        CudaGlueKernels { enabled: AtomicBool::new(true), gelu_epilogue }
    }

    /// Whether no kernel has turned out unavailable yet.
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// `result` as the trait answers it: an unavailable kernel disables them all.
    fn answer<T>(&self, result: Result<std::result::Result<T, String>>) -> Option<Result<T>> {
        match result {
            Ok(Ok(value)) => Some(Ok(value)),
            Ok(Err(why)) => {
                crate::log::info(&format!("glue kernels unavailable, using libtorch's operations: {why}"));
                self.enabled.store(false, Ordering::Relaxed);
                None
            }
            Err(error) => Some(Err(error)),
        }
    }

    fn takes_half(&self, t: &tch::Tensor) -> bool {
        self.enabled() && t.device().is_cuda() && matches!(t.kind(), tch::Kind::BFloat16 | tch::Kind::Half) && t.is_contiguous()
    }

    fn takes_rows(&self, x: &tch::Tensor, norm: &LayerNorm) -> bool {
        let channels = x.size().last().copied().unwrap_or(0);
        self.enabled()
            && x.device().is_cuda()
            && x.kind() == tch::Kind::Float
            && x.is_contiguous()
            && channels > 0
            && channels % 128 == 0
            && channels <= 4096
            && norm.weight.size() == [channels]
    }
}

impl Default for CudaGlueKernels {
    fn default() -> Self {
        Self::new(true)
    }
}

impl GlueKernels for CudaGlueKernels {
    fn attention_inputs(
        &self,
        qkv: &mut tch::Tensor,
        heads: i64,
        qk_norm: Option<(&LayerNorm, &LayerNorm)>,
        rope: Option<&RopeTables>,
    ) -> Option<Result<(tch::Tensor, tch::Tensor, tch::Tensor)>> {
        let size = qkv.size();
        let fits = self.takes_half(qkv) && size.len() == 3 && heads > 0 && size[2] == 3 * heads * 64;
        let tables_fit = rope.map_or(true, |t| t.cos().size() == [size[0], 1, size[1], 64]);
        let norms_fit = qk_norm.map_or(true, |(q, k)| q.weight.size() == [64] && k.weight.size() == [64] && q.eps() == k.eps());
        if !(fits && tables_fit && norms_fit) {
            return None;
        }
        self.answer(attention_inputs(qkv, heads, qk_norm, rope))
    }

    fn residual_update(&self, x: &mut tch::Tensor, branch: &tch::Tensor, gamma: &tch::Tensor) -> Option<Result<()>> {
        let channels = x.size().last().copied().unwrap_or(0);
        let fits = self.enabled()
            && x.device().is_cuda()
            && x.kind() == tch::Kind::Float
            && x.is_contiguous()
            && channels > 0
            && channels % 4 == 0
            && x.data_ptr() as usize % 16 == 0
            && indexable(x, 4)
            && self.takes_half(branch)
            && branch.size() == x.size()
            && branch.device() == x.device()
            && gamma.kind() == tch::Kind::Float
            && gamma.device() == x.device()
            && gamma.size() == [channels]
            && gamma.is_contiguous()
            && gamma.data_ptr() as usize % 16 == 0;
        if !fits {
            return None;
        }
        self.answer(residual_update(x, branch, gamma))
    }

    fn layer_norm(&self, x: &tch::Tensor, norm: &LayerNorm, kind: tch::Kind) -> Option<Result<tch::Tensor>> {
        if !self.takes_rows(x, norm) || !matches!(kind, tch::Kind::BFloat16 | tch::Kind::Half) {
            return None;
        }
        let half_like = match tch::Tensor::f_empty([0], (kind, x.device())) {
            Ok(t) => t,
            Err(e) => return Some(Err(e.into())),
        };
        self.answer(layer_norm(x, None, norm, &half_like)).map(|r| r.map(|(_, normed)| normed))
    }

    /// libtorch's `_addmm_activation(use_gelu)`: cuBLASLt's GELU_BIAS epilogue (`linear_gelu`).
    fn linear_gelu(&self, x: &tch::Tensor, linear: &Linear) -> Option<Result<tch::Tensor>> {
        let bias = linear.bias.as_ref()?;
        let width = linear.weight.size();
        let fits = self.gelu_epilogue
            && self.takes_half(x)
            && x.kind() == linear.weight.kind()
            && bias.kind() == x.kind()
            && x.device() == linear.weight.device()
            && width.len() == 2
            && x.size().last() == Some(&width[1]);
        if !fits {
            return None;
        }
        let product = || -> Result<tch::Tensor> {
            let mut size = x.size();
            let hidden = linear_gelu(&x.f_reshape([-1, width[1]])?, &linear.weight, bias)?;
            if let Some(last) = size.last_mut() {
                *last = width[0];
            }
            Ok(hidden.f_view(size.as_slice())?)
        };
        Some(product())
    }

    fn residual_layer_norm(
        &self,
        x: &tch::Tensor,
        branch: &tch::Tensor,
        gamma: &tch::Tensor,
        norm: &LayerNorm,
        kind: tch::Kind,
    ) -> Option<Result<(tch::Tensor, tch::Tensor)>> {
        if !self.takes_rows(x, norm) || !self.takes_half(branch) || branch.kind() != kind || branch.size() != x.size() {
            return None;
        }
        let answer = self.answer(layer_norm(x, Some((branch, gamma)), norm, branch))?;
        Some(answer.and_then(|(updated, normed)| {
            let updated = updated.ok_or_else(|| Error::Torch("the LayerNorm kernel returned no residual".into()))?;
            Ok((updated, normed))
        }))
    }
}

/// Whether `t` is a map the head kernels take: a (B, C, H, W) bf16/fp16 CUDA tensor stored
/// channels-last, C a multiple of 8, 16-byte aligned, in `like`'s kind on its device.
fn head_map_fits(t: &tch::Tensor, like: &tch::Tensor) -> bool {
    let dims = t.size();
    dims.len() == 4
        && t.device().is_cuda()
        && t.device() == like.device()
        && matches!(t.kind(), tch::Kind::BFloat16 | tch::Kind::Half)
        && t.kind() == like.kind()
        && dims[1] > 0
        && dims[1] % 8 == 0
        && t.data_ptr() as usize % 16 == 0
        && t.f_permute([0, 2, 3, 1]).is_ok_and(|p| p.is_contiguous())
}

/// Whether the kernels' 32-bit indices cover `t` (`lanes` elements per thread).
fn indexable(t: &tch::Tensor, lanes: i64) -> bool {
    t.numel() as i64 / lanes <= i64::from(i32::MAX)
}

/// The head kernels take the accelerated head's maps (see `head_map_fits`) and decline the
/// rest: fp32 maps (the official head), NCHW maps, channel counts not a multiple of 8 (the
/// 2-channel depth logits).
impl HeadKernels for CudaGlueKernels {
    fn upsample_bilinear(&self, x: &tch::Tensor, size: (i64, i64), add: Option<&tch::Tensor>) -> Option<Result<tch::Tensor>> {
        let add_fits = add.map_or(true, |a| head_map_fits(a, x) && a.size() == [1, x.size()[1], size.0, size.1]);
        if !(self.enabled() && head_map_fits(x, x) && add_fits) {
            return None;
        }
        self.answer(upsample_bilinear(x, size, add))
    }

    fn bias_epilogue(&self, out: &mut tch::Tensor, bias: &tch::Tensor, add: Option<&tch::Tensor>, relu: bool) -> Option<Result<()>> {
        let dims = out.size();
        let add_fits = add.map_or(true, |a| {
            let a_dims = a.size();
            head_map_fits(a, out) && a_dims[1..] == dims[1..] && (a_dims[0] == dims[0] || a_dims[0] == 1)
        });
        let bias_fits = bias.kind() == out.kind()
            && bias.device() == out.device()
            && bias.is_contiguous()
            && bias.size() == [dims.get(1).copied().unwrap_or(0)]
            && bias.data_ptr() as usize % 16 == 0;
        if !(self.enabled() && head_map_fits(out, out) && indexable(out, 8) && bias_fits && add_fits) {
            return None;
        }
        self.answer(bias_epilogue(out, bias, add, relu))
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

    /// The glue kernels' CUDA source compiles (NVRTC runs without a GPU) for Ampere and Hopper
    /// in every variant libda3 uses; their arithmetic is checked on a GPU by
    /// `examples/glue_kernels_check.rs` (bench/).
    #[test]
    fn the_glue_kernels_compile_with_nvrtc() {
        for arch in [80, 90] {
            if let Err(why) = compile_glue_kernels(arch) {
                panic!("sm_{arch}: {why}");
            }
        }
    }

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
