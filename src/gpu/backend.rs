//! Loading libtorch's CUDA backend at run time, and what the library takes straight from the
//! CUDA runtime (free memory, page-locked staging memory).
//!
//! The PyPI torch wheel splits CUDA support into `libtorch_cuda.so`, which the linker
//! drops because nothing references it directly. Opening it once, next to the
//! `libtorch_cpu.so` already loaded, lets one build run on CPU-only machines and use the
//! GPU where there is one.
use std::ffi::{CStr, CString};

use once_cell::sync::Lazy;

/// Outcome of loading the CUDA backend: Ok, or why not (for messages).
static CUDA_BACKEND: Lazy<std::result::Result<(), String>> = Lazy::new(load_cuda_backend);

/// The last `dlopen`/`dlsym` error, for messages.
pub(crate) fn dl_error() -> String {
    // SAFETY: dlerror returns NULL or a valid C string owned by libc.
    unsafe {
        let e = libc::dlerror();
        if e.is_null() {
            "unknown dlopen error".into()
        } else {
            CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    }
}

/// Directory of the loaded `libtorch_cpu.so`.
fn libtorch_dir() -> std::result::Result<String, String> {
    let name = CString::new("libtorch_cpu.so").expect("no NUL");
    // SAFETY: plain dlopen/dlinfo calls; RTLD_NOLOAD only returns an already-loaded object.
    unsafe {
        let handle = libc::dlopen(name.as_ptr(), libc::RTLD_LAZY | libc::RTLD_NOLOAD);
        if handle.is_null() {
            return Err(format!("libtorch_cpu.so is not loaded: {}", dl_error()));
        }
        let mut origin = [0 as libc::c_char; libc::PATH_MAX as usize];
        let rc = libc::dlinfo(handle, libc::RTLD_DI_ORIGIN, origin.as_mut_ptr().cast());
        libc::dlclose(handle);
        if rc != 0 {
            return Err(format!("dlinfo failed: {}", dl_error()));
        }
        Ok(CStr::from_ptr(origin.as_ptr()).to_string_lossy().into_owned())
    }
}

fn load_cuda_backend() -> std::result::Result<(), String> {
    let dir = libtorch_dir()?;
    let path = CString::new(format!("{dir}/libtorch_cuda.so")).map_err(|e| e.to_string())?;
    // SAFETY: loading a shared library by path; the handle is intentionally never closed.
    let handle = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        return Err(dl_error());
    }
    Ok(())
}

/// Whether a CUDA GPU can be used (loads the backend on first call).
pub fn cuda_available() -> bool {
    CUDA_BACKEND.is_ok() && tch::Cuda::is_available()
}

/// Why CUDA is unavailable, for error messages.
pub fn cuda_unavailable_reason() -> String {
    match &*CUDA_BACKEND {
        Err(e) => format!("libtorch's CUDA backend could not be loaded ({e})"),
        Ok(()) if !tch::Cuda::is_available() => "no CUDA device is visible".into(),
        Ok(()) => "CUDA is available".into(),
    }
}

/// A function of the CUDA runtime, found among the loaded objects (libtorch_cuda was opened
/// with RTLD_GLOBAL, and with it the CUDA runtime it links).
pub(crate) fn cuda_runtime_symbol(name: &str) -> Option<*mut libc::c_void> {
    let name = CString::new(name).ok()?;
    // SAFETY: dlsym only looks the name up.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

/// Free and total memory of CUDA device `index` in bytes (`cudaMemGetInfo`), or `None` when
/// unknown (no CUDA, or the CUDA runtime's symbols are not found). Memory that libtorch's
/// caching allocator holds counts as used.
pub fn cuda_memory_info(index: usize) -> Option<(u64, u64)> {
    if !cuda_available() {
        return None;
    }
    type GetDevice = unsafe extern "C" fn(*mut libc::c_int) -> libc::c_int;
    type SetDevice = unsafe extern "C" fn(libc::c_int) -> libc::c_int;
    type MemGetInfo = unsafe extern "C" fn(*mut libc::size_t, *mut libc::size_t) -> libc::c_int;
    // SAFETY: the symbols are the CUDA runtime's functions with these C signatures.
    let (get, set, info) = unsafe {
        (
            std::mem::transmute::<*mut libc::c_void, GetDevice>(cuda_runtime_symbol("cudaGetDevice")?),
            std::mem::transmute::<*mut libc::c_void, SetDevice>(cuda_runtime_symbol("cudaSetDevice")?),
            std::mem::transmute::<*mut libc::c_void, MemGetInfo>(cuda_runtime_symbol("cudaMemGetInfo")?),
        )
    };
    let (mut previous, mut free, mut total) = (0, 0, 0);
    // SAFETY: plain CUDA runtime calls with valid out-pointers; the calling thread's current
    // device is restored.
    unsafe {
        if get(&mut previous) != 0 || set(index as libc::c_int) != 0 {
            return None;
        }
        let rc = info(&mut free, &mut total);
        set(previous);
        (rc == 0).then_some((free as u64, total as u64))
    }
}

/// Page-locked host memory for device-to-host copies: grown as needed and kept for the
/// process (`cudaHostAlloc`, from the loaded CUDA runtime). A device-to-pageable copy
/// runs at about 1.5 GB/s on the H100 machine (60 ms of a 64-view da3-large forward); into
/// page-locked memory it is a DMA at full speed, followed by one host copy.
struct PinnedStaging {
    ptr: *mut libc::c_void,
    bytes: usize,
}

// SAFETY: the buffer is plain host memory owned by the Mutex below; only its holder touches it.
unsafe impl Send for PinnedStaging {}

static PINNED_STAGING: std::sync::Mutex<PinnedStaging> =
    std::sync::Mutex::new(PinnedStaging { ptr: std::ptr::null_mut(), bytes: 0 });

/// Runs `f` on a page-locked buffer of at least `bytes` bytes (one at a time: callers are
/// serialised); `None` when no CUDA runtime is loaded or the allocation fails (the caller
/// copies without staging then).
pub fn with_pinned_staging<R>(bytes: usize, f: impl FnOnce(*mut u8) -> R) -> Option<R> {
    if !cuda_available() {
        return None;
    }
    type HostAlloc = unsafe extern "C" fn(*mut *mut libc::c_void, libc::size_t, libc::c_uint) -> libc::c_int;
    type FreeHost = unsafe extern "C" fn(*mut libc::c_void) -> libc::c_int;
    // SAFETY: the CUDA runtime's functions with these C signatures.
    let (alloc, free) = unsafe {
        (
            std::mem::transmute::<*mut libc::c_void, HostAlloc>(cuda_runtime_symbol("cudaHostAlloc")?),
            std::mem::transmute::<*mut libc::c_void, FreeHost>(cuda_runtime_symbol("cudaFreeHost")?),
        )
    };
    let mut staging = PINNED_STAGING.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if staging.bytes < bytes {
        // Grow by at least half again, so a slowly growing size does not reallocate each call.
        let wanted = bytes.max(staging.bytes + staging.bytes / 2);
        let mut ptr = std::ptr::null_mut();
        // SAFETY: plain CUDA runtime calls; the old buffer is no longer referenced (the lock is
        // held) and the new pointer is checked. cudaHostAllocPortable (1): usable from every
        // device's context.
        unsafe {
            if !staging.ptr.is_null() {
                free(staging.ptr);
                staging.ptr = std::ptr::null_mut();
                staging.bytes = 0;
            }
            if alloc(&mut ptr, wanted, 1) != 0 || ptr.is_null() {
                return None;
            }
        }
        staging.ptr = ptr;
        staging.bytes = wanted;
    }
    Some(f(staging.ptr.cast()))
}

/// Makes libtorch usable in a child process that a host `fork()`s after inference (D10):
/// - GNU OpenMP's thread pool does not survive a fork, so the child's first parallel region
///   waits forever for workers that do not exist. A `pthread_atfork` child handler sets
///   libtorch's intra-op threads to one in the child: its parallel loops then run inline on the
///   calling thread (correct, single-threaded).
/// - MKL's fast memory manager (per-thread GEMM buffers behind a lock that is not fork-safe)
///   is turned off before libda3's first matrix product, so MKL allocates with the C library's
///   malloc, which is. With it on, a fork while some thread frees its MKL buffers (an OpenMP
///   worker exiting after its thread ended) left the child spinning in `mm_account_ptr_by_tid`
///   at its first GEMM: 19 of ~190 runs of tests/c/test_process.c under ASan and load, 0 of
///   180 with it off; da3-small on 2 CPU cores took as long either way (within noise).
/// CUDA does not survive a fork at all: a child may only use CPU models (see the header's
/// "Processes" notes). Installed once, at the first load.
pub fn keep_forked_children_usable() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    extern "C" fn in_child() {
        tch::set_num_threads(1);
    }
    INSTALL.call_once(|| {
        disable_mkl_fast_memory_manager();
        // SAFETY: registers a plain extern "C" function with no arguments; the child runs
        // it single-threaded, right after fork, before returning to the host.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
        if rc != 0 {
            crate::log::warn(&format!("pthread_atfork failed ({rc}): a forked child's libtorch may hang"));
        }
    });
}

/// `mkl_disable_fast_mm` of the MKL inside libtorch, looked up at run time: a libtorch built
/// without MKL has none (then there is nothing to turn off). MKL honours it only before its
/// memory manager first allocates; a host that ran MKL products before loading libda3 keeps it
/// on (logged).
fn disable_mkl_fast_memory_manager() {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only reads the loaded
    // objects' symbol tables.
    let symbol = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"mkl_serv_disable_fast_mm".as_ptr()) };
    if symbol.is_null() {
        crate::log::debug("no MKL in this libtorch: nothing to make fork-safe there");
        return;
    }
    // SAFETY: MKL's `int mkl_disable_fast_mm(void)` (exported as mkl_serv_disable_fast_mm):
    // no arguments, returns 1 when the memory manager is off from now on, 0 when too late.
    let disable: extern "C" fn() -> libc::c_int = unsafe { std::mem::transmute(symbol) };
    if disable() == 1 {
        crate::log::debug("MKL's fast memory manager turned off: GEMM buffers come from malloc, which survives fork");
    } else {
        crate::log::warn("MKL's fast memory manager was already in use: a child forked while a thread exits may hang in MKL");
    }
}

/// Sets libtorch's intra-op CPU threads to one, for a process whose model runs on a GPU with
/// the accelerated runner: its CPU work is then small copies, and the idle OpenMP pool spins
/// on every core, competing with the preprocessing threads (measured on the H100 machine:
/// one 640x480 view end to end 16.2 ms with 16 intra-op threads, 10.5 ms with one).
pub fn use_one_intra_op_thread_for_gpu_work() {
    tch::set_num_threads(1);
}
