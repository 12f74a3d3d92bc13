//! The model handle: loading (on one device or several), freeing, the queries on it (preset,
//! device, precision, capabilities, replicas, placement) and its GPU memory statistics.
use std::ffi::{c_char, CString};
use std::mem::size_of;
use std::ptr;

use crate::engine::{Engine, LoadOptions};
use crate::error::Error;
use crate::runner::Capabilities;

use super::args::{cstr_arg, out_arg, utf8_arg, Handle};
use super::boundary::{
    catch, da3_status, heavy_call, status_call, value_call, FfiError, FfiResult, DA3_ERR_NOT_AVAILABLE,
};
use super::enums::{
    capability_flags, da3_capabilities, da3_placement, da3_precision, placement_from_c, placement_to_c,
    precision_from_c, precision_to_c,
};

/// A loaded model on one or several devices, one replica each (opaque). Create with
/// `da3_create` or `da3_create_on_devices`, destroy with `da3_free`.
/// Thread-safe: any number of threads may call `da3_infer`/`da3_infer_files`/
/// `da3_infer_scenes` and the query functions on one handle at the same time; each call runs
/// on whichever replica is free (first come, first served), so calls on one replica are
/// serialised and a handle with several GPUs serves that many calls at once.
pub struct da3_model {
    pub(super) engine: Engine,
    preset: CString,
    device: CString,
    /// Fixed at load; kept here so queries never wait for a running inference.
    capabilities: Capabilities,
    /// Every replica's device, for `da3_model_replica_device`.
    devices: Vec<CString>,
}

impl Handle for da3_model {}

// The thread-safety promises in the header rest on this.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Engine>();
};

/// Loads a model and returns a new handle in `*out`.
///
/// `model` is a checkpoint directory (holding `config.json` and `model.safetensors`) or a
/// Hugging Face repo id (e.g. "depth-anything/DA3-LARGE-1.1") found in the local cache; nothing is
/// downloaded. `config.json`'s `model_name` picks the preset, as in the official package (the
/// 1.1 releases name the 1.0 presets: DA3-LARGE-1.1 is da3-large, DA3-GIANT-1.1 da3-giant,
/// DA3NESTED-GIANT-LARGE-1.1 da3nested-giant-large). A `model_name` that is no preset loads
/// from the resolved official architecture in `config.json`'s `config` tree, else in an
/// `official_config.json` beside it (how the tests' reduced nested model is described).
///
/// `use_accelerate` turns on the accelerated path. Devices: one model replica on every
/// visible CUDA device (`CUDA_VISIBLE_DEVICES` decides which are visible), so concurrent calls
/// and the scenes of `da3_infer_scenes` use all GPUs, and a scene too large for one GPU is
/// split over them (see `da3_model_set_placement`); without it, one device. The environment
/// variable `DA3_DEVICES` (e.g. "cuda:0,cuda:1") lists the devices either way, as
/// `da3_create_on_devices` does. Runner: the reference view chosen on the device; in
/// bf16/fp16 the depth head's convolutions in that precision, channels-last, the backbone
/// features handed to it in that precision (the official keeps them in fp32), and fewer
/// element-wise passes in the backbone (RoPE from tables gathered once per forward, each
/// LayerScale + residual add in one pass; fp32 arithmetic); on a GPU also
/// that glue in kernels compiled at run time by NVRTC (QK-norm + RoPE in place in the qkv
/// projection, LayerNorms written in the compute precision, the residual update with the next
/// LayerNorm, and the depth head's upsampling and convolution bias epilogues; the same
/// arithmetic; where they cannot be compiled the library logs it once and runs libtorch's
/// operations) with each MLP's fc1 and GELU as one matrix product (the GELU's tanh form in
/// cuBLASLt's epilogue; `DA3_ACCEL_GELU=exact`: the official exact GELU), cuDNN's fused attention and, for any-view models without ray pose, known cameras or
/// exported features, the forward captured once per input shape in a CUDA graph and replayed
/// (the first call of a shape runs eagerly and captures; up to 4 shapes are kept, each holding
/// its activation memory). On a GPU, with it on or off, large inputs go to the device and
/// outputs come back through one page-locked host buffer, kept for the process (as large as
/// the largest input or output so far). A model loaded with it on a GPU sets libtorch's intra-op CPU thread
/// count to 1, for the whole process (libtorch has one such setting): the GPU path's CPU work is
/// small copies, and an idle OpenMP pool spinning on every core slows the preprocessing
/// threads. With it off the official numerics are reproduced; with it on
/// (bf16), depth stays within a median relative difference of 1 %, p99 3 % and max 10 %,
/// camera rotations within 2 degrees, translations within 1 % of the median depth of the fp32
/// reference (measured on da3-large: 0.3 %, 1.1 %, 2.2 %, 0.8 degrees, 0.2 %; README, "Accuracy
/// of the accelerated runner"). The metric, mono and nested models keep the median and p99 (and
/// the nested model its cameras) within that bound, but single pixels were measured up to 290 %
/// off (random weights): run them with it off where every pixel matters. In fp32 it changes no
/// number.
///
/// `precision` is a `DA3_PRECISION_*` value: `DA3_PRECISION_AUTO` is bf16 on a GPU that
/// supports it (compute capability 8.0 and later), fp16 on older GPUs, fp32 on the CPU;
/// fp16/bf16 run the transformer's matrix products in that precision with normalisations and
/// the heads in fp32, like the official `torch.autocast`. The device (of a one-device model) is
/// a CUDA GPU if one is visible, else the CPU; the environment variable `DA3_DEVICE` (`cpu`,
/// `cuda`, `cuda:N`) overrides the choice: see `da3_model_device`.
///
/// Errors: `DA3_ERR_NULL_POINTER` (model or out is NULL), `DA3_ERR_INVALID_ARGUMENT`
/// (unknown precision, model not UTF-8), `DA3_ERR_MODEL_NOT_FOUND` (the message lists the
/// places tried), `DA3_ERR_CHECKPOINT` (corrupt or mismatched checkpoint; also a
/// `config.json`, `official_config.json` or `model.safetensors` that is no regular file, e.g.
/// a FIFO or a link to a device, a config over 1 MiB, a `model_name` that is empty, over 128
/// bytes or holds a control character), `DA3_ERR_IO` (a file of the checkpoint could not be
/// opened or read, or `model.safetensors` was truncated or rewritten while it loaded: the
/// weights are read, not memory-mapped, so such a change is this error, never a crash),
/// `DA3_ERR_UNSUPPORTED` (precision not available on the device), `DA3_ERR_TORCH`.
///
/// The tensor table of `model.safetensors` (names, shapes, dtypes) is checked against the
/// architecture before any of the model's memory is allocated: a mismatched checkpoint fails
/// in milliseconds. The file is read once, each tensor straight into its own memory; removing
/// (unlinking) it during the load is harmless. On a GPU the camera encoder (any-view models;
/// 194 MiB of fp32 weights in da3-large) is kept in host memory until the first call with known
/// cameras, which copies it to the GPU once and keeps it there (that call takes the copy's
/// time); calls without cameras never hold it in GPU memory.
///
/// Ownership: on success the caller owns `*out` and must release it with `da3_free`; on
/// failure `*out` is set to NULL. `model` is only read during the call.
/// Thread safety: any thread; handles are independent.
///
/// # Safety
/// `model` is NULL or a NUL-terminated string; `out` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn da3_create(
    model: *const c_char,
    use_accelerate: bool,
    precision: da3_precision,
    out: *mut *mut da3_model,
) -> da3_status {
    heavy_call("da3_create", || {
        // SAFETY: per the caller (both checked for NULL inside).
        let out = unsafe { out_arg(out, "out") }?;
        // SAFETY: per the caller.
        let model = utf8_arg(unsafe { cstr_arg(model, "model") }?, "model")?;
        let precision = precision_from_c(precision, "precision")?;
        let engine = Engine::load(model, LoadOptions::from_env(use_accelerate, precision)?)?;
        *out = model_handle(engine).into_raw();
        Ok(())
    })
}

/// The handle of a loaded engine. Infallible: the names are validated where they are read
/// (a `model_name` with a control character is refused with the config), and a NUL that got
/// past that would show as `\0` rather than fail a load that already succeeded.
pub(super) fn model_handle(engine: Engine) -> da3_model {
    let to_c = |s: String| CString::new(s.replace('\0', "\\0")).unwrap_or_default();
    let preset = to_c(engine.preset_name().to_owned());
    let device = to_c(engine.device_name());
    let devices = engine.device_names().into_iter().map(to_c).collect();
    let capabilities = engine.capabilities();
    da3_model { engine, preset, device, capabilities, devices }
}

/// Like `da3_create`, with one model replica on each device of `devices`, a comma-separated
/// list such as "cuda:0,cuda:1" (devices as numbered by CUDA, i.e. after
/// `CUDA_VISIBLE_DEVICES`), "cuda" (= "cuda:0") or "cpu,cpu" (two CPU replicas: tests, or
/// concurrency on a many-core CPU). The same device may repeat; CPU and CUDA may not be mixed
/// (the replicas share one precision, resolved on the first device).
///
/// `da3_create` picks the devices itself: with `use_accelerate`, every visible CUDA device
/// (one replica each); without, one device (see `da3_create`); in both cases the environment
/// variable `DA3_DEVICES` (same syntax) overrides. Replicas load the same weights; each holds
/// a full copy in its device's memory.
///
/// Errors: as `da3_create`, plus `DA3_ERR_INVALID_ARGUMENT` (an empty or malformed list, a
/// device index past the visible ones) and `DA3_ERR_UNSUPPORTED` (CUDA asked for but not
/// available).
///
/// Ownership: on success the caller owns `*out` (release with `da3_free`); on failure `*out`
/// is NULL. `model` and `devices` are only read during the call.
/// Thread safety: any thread; handles are independent.
///
/// # Safety
/// `model` and `devices` are NULL or NUL-terminated strings; `out` is NULL or valid for
/// writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn da3_create_on_devices(
    model: *const c_char,
    use_accelerate: bool,
    precision: da3_precision,
    devices: *const c_char,
    out: *mut *mut da3_model,
) -> da3_status {
    heavy_call("da3_create_on_devices", || {
        // SAFETY (all blocks below): per the caller (each checked for NULL inside).
        let out = unsafe { out_arg(out, "out") }?;
        let model = utf8_arg(unsafe { cstr_arg(model, "model") }?, "model")?;
        let precision = precision_from_c(precision, "precision")?;
        let list = utf8_arg(unsafe { cstr_arg(devices, "devices") }?, "devices")?;
        let devices = crate::gpu::parse_device_list(list).map_err(|e| match e {
            Error::InvalidArgument(m) => FfiError::invalid(format!("devices: {m}")),
            other => other.into(),
        })?;
        // The caller's list wins over DA3_DEVICE / DA3_DEVICES; the other settings apply.
        let engine = Engine::load(model, LoadOptions::from_env(use_accelerate, precision)?.on_devices(&devices))?;
        *out = model_handle(engine).into_raw();
        Ok(())
    })
}

/// Destroys a model handle and frees everything it owns (including the strings returned by
/// `da3_model_preset` and `da3_model_device`). NULL is a no-op.
///
/// Results created from the model stay valid: they own their buffers.
/// Thread safety: no other thread may be using the handle.
///
/// # Safety
/// `model` is NULL or a handle from `da3_create` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn da3_free(model: *mut da3_model) {
    // SAFETY: from `da3_create*`, freed once, per the caller.
    let _ = catch("da3_free", || unsafe { da3_model::free(model) });
}

/// Official preset name of the loaded model, e.g. "da3-large"; NULL if `model` is NULL.
///
/// Ownership: owned by the handle, valid until `da3_free(model)`; never free it.
/// Thread safety: any thread.
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn da3_model_preset(model: *const da3_model) -> *const c_char {
    value_call("da3_model_preset", || {
        // SAFETY: per the caller.
        Ok(unsafe { da3_model::borrow(model, "model") }?.preset.as_ptr())
    })
}

/// Device the model runs on, e.g. "cpu" or "cuda:0" (the first replica's when it has
/// several: see `da3_model_replica_count`); NULL if `model` is NULL.
///
/// Ownership: owned by the handle, valid until `da3_free(model)`; never free it.
/// Thread safety: any thread.
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn da3_model_device(model: *const da3_model) -> *const c_char {
    value_call("da3_model_device", || {
        // SAFETY: per the caller.
        Ok(unsafe { da3_model::borrow(model, "model") }?.device.as_ptr())
    })
}

/// Precision actually in use (never `DA3_PRECISION_AUTO` for a live model), or
/// `DA3_PRECISION_AUTO` if `model` is NULL. Thread safety: any thread.
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn da3_model_precision(model: *const da3_model) -> da3_precision {
    value_call("da3_model_precision", || {
        // SAFETY: per the caller.
        Ok(precision_to_c(unsafe { da3_model::borrow(model, "model") }?.engine.precision()))
    })
}

/// Writes what the model predicts and accepts to `*flags`: an OR of `DA3_CAP_*` bits. Use it
/// before asking for an output or an input the model may not have (asking anyway is an
/// error, not a crash: `DA3_ERR_UNSUPPORTED` from `da3_infer`, `DA3_ERR_NOT_AVAILABLE` from
/// the result accessors). For the official presets:
/// - `da3-small` / `-base` / `-large` / `-giant`: `POSE | CONFIDENCE | KNOWN_CAMERAS | RAY_POSE`;
/// - `da3metric-large`: `SKY | CANONICAL_METRIC_DEPTH`; `da3mono-large`: `SKY`;
/// - `da3nested-giant-large`: `POSE | CONFIDENCE | SKY | METRIC_DEPTH | KNOWN_CAMERAS | RAY_POSE`.
///
/// Errors: `DA3_ERR_NULL_POINTER` (model or flags); `*flags` is untouched then.
/// Thread safety: any thread, also while inferences run (the answer is fixed at load).
///
/// # Safety
/// `model` is NULL or a live handle; `flags` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn da3_model_capabilities(model: *const da3_model, flags: *mut da3_capabilities) -> da3_status {
    status_call("da3_model_capabilities", || {
        // SAFETY: per the caller.
        let model = unsafe { da3_model::borrow(model, "model") }?;
        if flags.is_null() {
            return Err(FfiError::null("flags"));
        }
        // SAFETY: non-NULL and writable per the caller.
        unsafe { flags.write(capability_flags(&model.capabilities)) };
        Ok(())
    })
}

/// Number of blocks of the model's backbone (12 for ViT-S/B, 24 for ViT-L, 40 for ViT-g; the
/// nested model: its any-view branch's): `da3_options.export_feat_layers` takes indices
/// below it. 0 if `model` is NULL. Thread safety: any thread.
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn da3_model_backbone_depth(model: *const da3_model) -> u32 {
    value_call("da3_model_backbone_depth", || {
        // SAFETY: per the caller.
        let depth = unsafe { da3_model::borrow(model, "model") }?.capabilities.backbone_depth;
        Ok(u32::try_from(depth).unwrap_or(u32::MAX))
    })
}

/// Number of replicas (one per device) the model runs on; 0 if `model` is NULL.
/// Thread safety: any thread.
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn da3_model_replica_count(model: *const da3_model) -> usize {
    value_call("da3_model_replica_count", || {
        // SAFETY: per the caller.
        Ok(unsafe { da3_model::borrow(model, "model") }?.devices.len())
    })
}

/// Device of replica `index` (0 <= index < `da3_model_replica_count`), e.g. "cuda:1"; NULL
/// (with a message) if `model` is NULL or `index` is out of range.
///
/// Ownership: owned by the handle, valid until `da3_free(model)`; never free it.
/// Thread safety: any thread.
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn da3_model_replica_device(model: *const da3_model, index: usize) -> *const c_char {
    value_call("da3_model_replica_device", || {
        // SAFETY: per the caller.
        let model = unsafe { da3_model::borrow(model, "model") }?;
        let device = model.devices.get(index).ok_or_else(|| {
            FfiError::invalid(format!("replica index {index} is out of range: the model has {} replica(s)", model.devices.len()))
        })?;
        Ok(device.as_ptr())
    })
}

/// Sets how the following calls on `model` use several replicas (`DA3_PLACEMENT_*`); calls
/// already running keep their choice. With one replica every placement runs the same way.
///
/// Errors: `DA3_ERR_NULL_POINTER`, `DA3_ERR_INVALID_ARGUMENT` (unknown placement).
/// Thread safety: any thread, also while other threads run inferences on the model.
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn da3_model_set_placement(model: *const da3_model, placement: da3_placement) -> da3_status {
    status_call("da3_model_set_placement", || {
        // SAFETY: per the caller.
        let model = unsafe { da3_model::borrow(model, "model") }?;
        model.engine.set_placement(placement_from_c(placement, "placement")?);
        Ok(())
    })
}

/// The model's current placement (`DA3_PLACEMENT_*`); `DA3_PLACEMENT_AUTO` if `model` is
/// NULL. Thread safety: any thread.
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn da3_model_placement(model: *const da3_model) -> da3_placement {
    value_call("da3_model_placement", || {
        // SAFETY: per the caller.
        Ok(placement_to_c(unsafe { da3_model::borrow(model, "model") }?.engine.placement()))
    })
}

/// GPU memory held by libtorch's caching allocator on a model's device, in bytes (all
/// models and results on that device together: the allocator is per device).
/// `struct_size` first, so the struct can grow: set it to `sizeof(da3_memory_stats)`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct da3_memory_stats {
    /// `sizeof(da3_memory_stats)` as the caller compiled it; the library sets it to the
    /// number of bytes it wrote.
    pub struct_size: u32,
    /// Zero.
    pub reserved_0: u32,
    /// Bytes in live tensors now.
    pub allocated_bytes: u64,
    /// Highest `allocated_bytes` since the model was loaded or `da3_model_reset_peak_memory`
    /// (what `torch.cuda.max_memory_allocated` reports).
    pub peak_allocated_bytes: u64,
    /// Bytes the allocator holds from the driver now (live tensors, cached blocks and the
    /// memory pools of captured CUDA graphs).
    pub reserved_bytes: u64,
    /// Highest `reserved_bytes` over the same period.
    pub peak_reserved_bytes: u64,
}

const MEMORY_STATS_V1_SIZE: usize = 40;
const _: () = assert!(size_of::<da3_memory_stats>() == MEMORY_STATS_V1_SIZE);

fn memory_device_check(model: &da3_model) -> FfiResult<()> {
    if model.engine.runs_on_cpu() {
        return Err(FfiError::new(DA3_ERR_NOT_AVAILABLE, "not available: the model runs on the CPU (no GPU memory statistics)"));
    }
    Ok(())
}

/// Fills `*out` with the memory statistics of the model's GPU (the first replica's when it
/// has several: `da3_model_replica_memory_stats` reads the others).
///
/// The caller sets `out->struct_size = sizeof(da3_memory_stats)` first; the library writes
/// at most that many bytes (at most its own struct's size) and sets `struct_size` to what it
/// wrote.
///
/// Errors: `DA3_ERR_NULL_POINTER`; `DA3_ERR_INVALID_ARGUMENT` (`struct_size` smaller than
/// the first version, 40); `DA3_ERR_NOT_AVAILABLE` when the model runs on the CPU (nothing
/// is written then); `DA3_ERR_UNSUPPORTED` when the GPU statistics cannot be read (the CUDA
/// support library `libda3_cuda_support.so` is missing; the message says where it looked).
///
/// Ownership: `*out` is the caller's. Thread safety: any thread; the numbers cover every
/// model on that device.
///
/// # Safety
/// `model` is NULL or a live handle; `out` is NULL or points to a writable struct of
/// `out->struct_size` bytes.
#[no_mangle]
pub unsafe extern "C" fn da3_model_memory_stats(model: *const da3_model, out: *mut da3_memory_stats) -> da3_status {
    status_call("da3_model_memory_stats", || {
        // SAFETY: per the caller.
        unsafe { write_memory_stats(model, 0, out) }
    })
}

/// Fills `*out` with the memory statistics of the GPU of replica `index` (0 <= index <
/// `da3_model_replica_count`), as `da3_model_memory_stats` does for the first: a model with a
/// replica per GPU is watched by reading each.
///
/// Errors: as `da3_model_memory_stats`, and `DA3_ERR_INVALID_ARGUMENT` when `index` is out of
/// range. Ownership: `*out` is the caller's. Thread safety: any thread; the numbers cover
/// every model on that device.
///
/// # Safety
/// As `da3_model_memory_stats`.
#[no_mangle]
pub unsafe extern "C" fn da3_model_replica_memory_stats(
    model: *const da3_model,
    index: usize,
    out: *mut da3_memory_stats,
) -> da3_status {
    status_call("da3_model_replica_memory_stats", || {
        // SAFETY: per the caller.
        unsafe { write_memory_stats(model, index, out) }
    })
}

/// The body of `da3_model_memory_stats` and `da3_model_replica_memory_stats`.
///
/// # Safety
/// As `da3_model_memory_stats`.
unsafe fn write_memory_stats(model: *const da3_model, index: usize, out: *mut da3_memory_stats) -> FfiResult<()> {
    // SAFETY: per the caller.
    let model = unsafe { da3_model::borrow(model, "model") }?;
    if out.is_null() {
        return Err(FfiError::null("out"));
    }
    // SAFETY: `out` is non-NULL and its first 4 bytes are readable per the caller.
    let size = unsafe { ptr::read_unaligned(out.cast::<u32>()) } as usize;
    if size < MEMORY_STATS_V1_SIZE {
        return Err(FfiError::invalid(format!(
            "out->struct_size is {size}: set it to sizeof(da3_memory_stats) ({MEMORY_STATS_V1_SIZE} or more)"
        )));
    }
    if index >= model.devices.len() {
        return Err(FfiError::invalid(format!(
            "replica index {index} is out of range: the model has {} replica(s)",
            model.devices.len()
        )));
    }
    memory_device_check(model)?;
    let stats = model.engine.replica_memory_stats(index)?;
    let written = size.min(size_of::<da3_memory_stats>());
    let value = da3_memory_stats {
        struct_size: written as u32,
        reserved_0: 0,
        allocated_bytes: stats.allocated.max(0) as u64,
        peak_allocated_bytes: stats.peak_allocated.max(0) as u64,
        reserved_bytes: stats.reserved.max(0) as u64,
        peak_reserved_bytes: stats.peak_reserved.max(0) as u64,
    };
    // SAFETY: `written` bytes are writable per the caller and `value` holds that many.
    unsafe { ptr::copy_nonoverlapping(ptr::addr_of!(value).cast::<u8>(), out.cast::<u8>(), written) };
    Ok(())
}

/// Restarts the peaks of `da3_model_memory_stats` from the current usage of the model's GPU
/// (for every model on that device).
///
/// Errors: `DA3_ERR_NULL_POINTER`, `DA3_ERR_NOT_AVAILABLE` (the model runs on the CPU),
/// `DA3_ERR_UNSUPPORTED` (as for `da3_model_memory_stats`). Thread safety: any thread.
///
/// # Safety
/// `model` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn da3_model_reset_peak_memory(model: *const da3_model) -> da3_status {
    status_call("da3_model_reset_peak_memory", || {
        // SAFETY: per the caller.
        let model = unsafe { da3_model::borrow(model, "model") }?;
        memory_device_check(model)?;
        Ok(model.engine.reset_peak_memory()?)
    })
}
