//! `da3_load_options` and `da3_create_with_options`: a load the host controls (devices,
//! threads, a progress callback that may abort it).
use std::ffi::{c_char, c_void};
use std::mem::{offset_of, size_of};
use std::ptr;

use crate::engine::{Engine, LoadOptions};
use crate::error::Error;

use super::args::{cstr_arg, out_arg, utf8_arg, Handle};
use super::boundary::{da3_status, heavy_call, status_call, FfiError, FfiResult, DA3_ERR_UNSUPPORTED};
use super::enums::{da3_precision, precision_from_c};
use super::model::{da3_model, model_handle};

/// Hears how a load advances: `fraction` from 0 to 1 (never decreasing), `stage` one of
/// "resolve" (finding the checkpoint, reading its configuration), "read" (reading the
/// weights file's tensor table and checking it against the architecture, per replica),
/// "build" (reading each tensor, converting it and placing it on the replicas' devices) and
/// "done" (fraction 1, the last call); a static string. Return true to
/// go on, false to abort the load: `da3_create_with_options` then returns
/// `DA3_ERR_CANCELLED` soon after (at the next tensor).
///
/// Called on the thread that called `da3_create_with_options` or on the threads that load
/// the replicas (two at a time), one call at a time, before `da3_create_with_options`
/// returns; never afterwards. Throttled to steps of about 1 % and every change of stage. It
/// must return (not throw, not longjmp) and must not free the model being loaded.
pub type da3_load_progress = Option<unsafe extern "C" fn(fraction: f32, stage: *const c_char, user_data: *mut c_void) -> bool>;

/// How `da3_create_with_options` loads a model, beyond the arguments of `da3_create`.
///
/// Initialise with `da3_load_options_default(&opts, sizeof opts)`, then set what you need.
/// Versioned by `struct_size` like `da3_options`: fields are only appended, a library reads
/// only the `struct_size` bytes the caller compiled, and a larger `struct_size` than it knows
/// is `DA3_ERR_UNSUPPORTED`. This version: 16 bytes plus three pointers (40 on 64-bit
/// platforms, 28 on 32-bit ones).
///
/// Pointers are borrowed: read (and the callback called) only during the load.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct da3_load_options {
    /// `sizeof(da3_load_options)` as the caller compiled it; set by `da3_load_options_default`.
    pub struct_size: u32,
    /// libtorch's intra-op CPU threads (the threads of one matrix product or convolution on
    /// the CPU); 0 (default): left as it is. Process-wide: libtorch has one such setting
    /// (`at::set_num_threads`) for every model in the process and the host's own libtorch use;
    /// the last load that sets it wins. A load with `use_accelerate` on a GPU sets it to 1
    /// (the GPU path's CPU work is small copies); a value here wins over that.
    pub torch_threads: u32,
    /// Threads that decode, resize and normalise the views of one call (1: the calling
    /// thread only); 0 (default): the environment variable `DA3_PREPROCESS_THREADS`, else
    /// every core. A value here wins over the variable. Per model.
    pub preprocess_threads: u32,
    /// Zero.
    pub reserved_0: u32,
    /// The replicas' devices as for `da3_create_on_devices` ("cuda:0,cuda:1", "cpu"); NULL
    /// (default): chosen as `da3_create` chooses them.
    pub devices: *const c_char,
    /// Progress callback; NULL (default): none.
    pub progress: da3_load_progress,
    /// Passed back to `progress`, never touched by the library.
    pub progress_user_data: *mut c_void,
}

/// Every `struct_size` ever published; the last is this library's.
const LOAD_OPTIONS_SIZES: [usize; 1] = [size_of::<da3_load_options>()];
const _: () = {
    assert!(offset_of!(da3_load_options, devices) == 16);
    assert!(offset_of!(da3_load_options, progress_user_data) + size_of::<*mut c_void>() == size_of::<da3_load_options>());
};

impl Default for da3_load_options {
    fn default() -> Self {
        da3_load_options {
            struct_size: size_of::<da3_load_options>() as u32,
            torch_threads: 0,
            preprocess_threads: 0,
            reserved_0: 0,
            devices: ptr::null(),
            progress: None,
            progress_user_data: ptr::null_mut(),
        }
    }
}

fn check_struct_size(size: usize) -> FfiResult<()> {
    let ours = size_of::<da3_load_options>();
    if size > ours {
        return Err(FfiError::new(
            DA3_ERR_UNSUPPORTED,
            format!(
                "unsupported: load_options.struct_size is {size} but this libda3 ({}) knows a {ours}-byte \
                 da3_load_options: the program was built against a newer da3.h than the library it loaded",
                env!("CARGO_PKG_VERSION")
            ),
        ));
    }
    if !LOAD_OPTIONS_SIZES.contains(&size) {
        return Err(FfiError::invalid(format!(
            "load_options.struct_size is {size}, not the size of any da3_load_options version ({LOAD_OPTIONS_SIZES:?}): \
             initialise it with da3_load_options_default(&opts, sizeof opts)"
        )));
    }
    Ok(())
}

/// The C callback and its context, callable from the loading threads.
struct ProgressCallback {
    callback: unsafe extern "C" fn(f32, *const c_char, *mut c_void) -> bool,
    user_data: *mut c_void,
}

// SAFETY: the host promises (see `da3_load_progress`) that the callback may be called with
// `user_data` from the loading threads; the core calls it one call at a time.
unsafe impl Send for ProgressCallback {}
// SAFETY: as above.
unsafe impl Sync for ProgressCallback {}

impl ProgressCallback {
    fn call(&self, fraction: f32, stage: &str) -> bool {
        // SAFETY: the host's callback with its context; the stage is a static string.
        unsafe { (self.callback)(fraction, stage_cstr(stage).as_ptr(), self.user_data) }
    }
}

fn stage_cstr(stage: &str) -> &'static std::ffi::CStr {
    match stage {
        "resolve" => c"resolve",
        "read" => c"read",
        "build" => c"build",
        "done" => c"done",
        _ => c"load",
    }
}

/// Fills `*load_options` with the defaults (no thread settings, devices as `da3_create`, no
/// progress callback) and sets `struct_size`. Pass `sizeof *load_options`.
///
/// Errors: `DA3_ERR_NULL_POINTER`; `DA3_ERR_INVALID_ARGUMENT` (a size that is no version's);
/// `DA3_ERR_UNSUPPORTED` (larger than this library's struct). Only `struct_size` bytes are
/// written. Thread safety: any thread.
///
/// # Safety
/// `load_options` is NULL or points to `struct_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn da3_load_options_default(load_options: *mut da3_load_options, struct_size: usize) -> da3_status {
    status_call("da3_load_options_default", || {
        if load_options.is_null() {
            return Err(FfiError::null("load_options"));
        }
        check_struct_size(struct_size)?;
        let defaults = da3_load_options { struct_size: struct_size as u32, ..da3_load_options::default() };
        // SAFETY: `struct_size` bytes are writable per the caller; `defaults` holds that many.
        unsafe { ptr::copy_nonoverlapping(ptr::addr_of!(defaults).cast::<u8>(), load_options.cast::<u8>(), struct_size) };
        Ok(())
    })
}

/// Like `da3_create` (same `model`, `use_accelerate` and `precision`, same errors), with the
/// host in charge of the load through `load_options` (NULL: defaults, i.e. `da3_create`):
/// the devices (as `da3_create_on_devices`), libtorch's and preprocessing's thread counts,
/// and a progress callback that may abort the load. The environment's settings apply as for
/// `da3_create`; an explicit value in `load_options` wins over them.
///
/// Errors: as `da3_create` and `da3_create_on_devices`, plus `DA3_ERR_CANCELLED` when the
/// progress callback returned false (nothing is kept: `*out` is NULL, the memory of the
/// partly loaded replicas is released), `DA3_ERR_INVALID_ARGUMENT` (a bad `struct_size`, a
/// non-zero `reserved_0`), `DA3_ERR_UNSUPPORTED` (a `struct_size` from a newer header).
///
/// Ownership: on success the caller owns `*out` (release with `da3_free`); on failure `*out`
/// is NULL. `model`, `load_options` and its strings are only read during the call.
/// Thread safety: any thread; the thread count of libtorch is process-wide (see
/// `da3_load_options.torch_threads`).
///
/// # Safety
/// `model` is NULL or a NUL-terminated string; `load_options` is NULL or initialised by
/// `da3_load_options_default`, its `devices` NULL or a NUL-terminated string and its
/// `progress` NULL or a function satisfying `da3_load_progress`' contract; `out` is NULL or
/// valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn da3_create_with_options(
    model: *const c_char,
    use_accelerate: bool,
    precision: da3_precision,
    load_options: *const da3_load_options,
    out: *mut *mut da3_model,
) -> da3_status {
    heavy_call("da3_create_with_options", || {
        // SAFETY (all blocks below): per the caller (each pointer checked for NULL inside).
        let out = unsafe { out_arg(out, "out") }?;
        let model = utf8_arg(unsafe { cstr_arg(model, "model") }?, "model")?;
        let precision = precision_from_c(precision, "precision")?;
        let mut raw = da3_load_options::default();
        if !load_options.is_null() {
            let size = unsafe { ptr::addr_of!((*load_options).struct_size).read_unaligned() } as usize;
            check_struct_size(size)?;
            unsafe { ptr::copy_nonoverlapping(load_options.cast::<u8>(), ptr::addr_of_mut!(raw).cast::<u8>(), size) };
        }
        if raw.reserved_0 != 0 {
            return Err(FfiError::invalid(format!("load_options.reserved_0 is {}: must be 0", raw.reserved_0)));
        }
        let mut options = LoadOptions::from_env(use_accelerate, precision)?
            .with_torch_threads((raw.torch_threads > 0).then_some(raw.torch_threads as usize))
            .with_preprocess_threads((raw.preprocess_threads > 0).then_some(raw.preprocess_threads as usize));
        if !raw.devices.is_null() {
            let list = utf8_arg(unsafe { cstr_arg(raw.devices, "load_options.devices") }?, "load_options.devices")?;
            let devices = crate::gpu::parse_device_list(list).map_err(|e| match e {
                Error::InvalidArgument(m) => FfiError::invalid(format!("load_options.devices: {m}")),
                other => other.into(),
            })?;
            options = options.on_devices(&devices);
        }
        if let Some(callback) = raw.progress {
            let callback = ProgressCallback { callback, user_data: raw.progress_user_data };
            options = options.with_progress(move |fraction, stage| callback.call(fraction, stage));
        }
        let engine = Engine::load(model, options)?;
        *out = model_handle(engine).into_raw();
        Ok(())
    })
}
