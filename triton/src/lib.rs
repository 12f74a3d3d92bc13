//! `libtriton_da3.so`: a Triton Inference Server backend that serves Depth Anything 3 through
//! libda3's C API.
//!
//! - A model (one directory of a Triton model repository) names a libda3 checkpoint and how to
//!   run it (`config.rs`); each model instance is one libda3 model on the instance's device
//!   (`KIND_GPU`: `cuda:<id>`, `KIND_CPU`: the CPU), loaded once at instance start.
//! - The batch dimension counts scenes: a request carries `IMAGES` of shape
//!   `[scenes, views, height, width, 3]` (uint8 RGB); Triton's dynamic batcher may gather several
//!   requests (of any sizes: the inputs allow ragged batches) into one execution, which runs all
//!   their scenes through one `da3_infer_scenes` call (scenes never attend to each other). A
//!   request with known cameras (`KNOWN_EXTRINSICS`, `KNOWN_INTRINSICS`) runs its scenes through
//!   `da3_infer`, as libda3 takes cameras per scene.
//! - Every request succeeds or fails on its own, with libda3's message; the instance stays up.
//!
//! The functions Triton calls are at the bottom; each catches panics, so none unwinds into the
//! server.
mod config;
mod da3_api;
mod triton_api;

use std::ffi::{c_char, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::ptr::{null, null_mut};

use config::{ModelSettings, IMAGES, KNOWN_EXTRINSICS, KNOWN_INTRINSICS};
use da3_api::{Da3Error, Model, Result3};
use triton_api::*;

/// A Triton error: code and message, turned into a `TRITONSERVER_Error` at the boundary.
#[derive(Debug)]
struct Error {
    code: TRITONSERVER_Error_Code,
    message: String,
}

type Result<T> = std::result::Result<T, Error>;

fn invalid(message: impl Into<String>) -> Error {
    Error {
        code: TRITONSERVER_ERROR_INVALID_ARG,
        message: message.into(),
    }
}

fn internal(message: impl Into<String>) -> Error {
    Error {
        code: TRITONSERVER_ERROR_INTERNAL,
        message: message.into(),
    }
}

impl From<Da3Error> for Error {
    fn from(e: Da3Error) -> Error {
        let code = match e.status {
            da3_api::DA3_ERR_INVALID_ARGUMENT
            | da3_api::DA3_ERR_IMAGE
            | da3_api::DA3_ERR_NON_FINITE => TRITONSERVER_ERROR_INVALID_ARG,
            da3_api::DA3_ERR_UNSUPPORTED => TRITONSERVER_ERROR_UNSUPPORTED,
            da3_api::DA3_ERR_OUT_OF_MEMORY => TRITONSERVER_ERROR_UNAVAILABLE,
            da3_api::DA3_ERR_CANCELLED => TRITONSERVER_ERROR_CANCELLED,
            da3_api::DA3_ERR_MODEL_NOT_FOUND => TRITONSERVER_ERROR_NOT_FOUND,
            _ => TRITONSERVER_ERROR_INTERNAL,
        };
        Error {
            code,
            message: format!("libda3 {e}"),
        }
    }
}

impl Error {
    /// A new `TRITONSERVER_Error` the caller owns.
    fn into_triton(self) -> *mut TRITONSERVER_Error {
        let message = CString::new(self.message.replace('\0', " ")).unwrap_or_default();
        // SAFETY: a valid code and NUL-terminated message (copied by Triton).
        unsafe { TRITONSERVER_ErrorNew(self.code, message.as_ptr()) }
    }
}

/// Turns a Triton error into ours (and deletes it).
fn check(error: *mut TRITONSERVER_Error, what: &str) -> Result<()> {
    if error.is_null() {
        return Ok(());
    }
    // SAFETY: a live error from Triton, owned by us: read, then deleted once.
    let message = unsafe {
        let m = da3_api::text(TRITONSERVER_ErrorMessage(error)).unwrap_or_default();
        TRITONSERVER_ErrorDelete(error);
        m
    };
    Err(internal(format!("{what}: {message}")))
}

fn log(level: TRITONSERVER_LogLevel, message: &str) {
    let Ok(text) = CString::new(message.replace('\0', " ")) else {
        return;
    };
    // SAFETY: NUL-terminated strings valid for the call; Triton copies them.
    unsafe {
        if TRITONSERVER_LogIsEnabled(level) {
            let error = TRITONSERVER_LogMessage(level, c"libtriton_da3".as_ptr(), 0, text.as_ptr());
            if !error.is_null() {
                TRITONSERVER_ErrorDelete(error);
            }
        }
    }
}

/// libda3's log lines, into Triton's log.
unsafe extern "C" fn da3_log_to_triton(
    level: u32,
    message: *const c_char,
    _user_data: *mut c_void,
) {
    let Some(text) = da3_api::text(message) else {
        return;
    };
    let level = match level {
        da3_api::DA3_LOG_ERROR => TRITONSERVER_LOG_ERROR,
        da3_api::DA3_LOG_WARN => TRITONSERVER_LOG_WARN,
        da3_api::DA3_LOG_INFO => TRITONSERVER_LOG_INFO,
        _ => TRITONSERVER_LOG_VERBOSE,
    };
    log(level, &format!("libda3: {text}"));
}

/// Runs `f`, turning an error or a panic into a `TRITONSERVER_Error` for Triton.
fn boundary(what: &str, f: impl FnOnce() -> Result<()>) -> *mut TRITONSERVER_Error {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => null_mut(),
        Ok(Err(e)) => e.into_triton(),
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            internal(format!("libtriton_da3: {what} panicked: {text}")).into_triton()
        }
    }
}

fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a writable timespec; CLOCK_MONOTONIC is Triton's steady clock on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Per model: its settings (shared by its instances).
struct ModelState {
    settings: ModelSettings,
}

/// Per instance: its libda3 model.
struct InstanceState {
    settings: ModelSettings,
    model: Model,
    /// Options of every call (cameras added per scene).
    options: da3_api::da3_options,
    name: String,
}

/// One input tensor of a request, its bytes contiguous on the host.
struct InputTensor {
    shape: Vec<i64>,
    /// Borrowed from Triton (valid until the request is released) or copied.
    bytes: Bytes,
}

enum Bytes {
    Borrowed(*const u8, usize),
    Owned(Vec<u8>),
}

impl Bytes {
    fn as_slice(&self) -> &[u8] {
        match self {
            // SAFETY: Triton keeps an input buffer alive until the request is released, which
            // happens after the request's work is done.
            Bytes::Borrowed(ptr, len) => unsafe { std::slice::from_raw_parts(*ptr, *len) },
            Bytes::Owned(v) => v,
        }
    }
}

/// Reads input `name` of `request` (None when the request does not carry it), checking its type.
fn read_input(
    request: *mut TRITONBACKEND_Request,
    name: &str,
    datatype: TRITONSERVER_DataType,
) -> Result<Option<InputTensor>> {
    let name_c = CString::new(name).unwrap_or_default();
    let mut input = null_mut();
    // SAFETY: a live request; a NUL-terminated name; Triton writes the input handle.
    let error = unsafe { TRITONBACKEND_RequestInput(request, name_c.as_ptr(), &mut input) };
    if !error.is_null() {
        // SAFETY: our error to delete.
        unsafe { TRITONSERVER_ErrorDelete(error) };
        return Ok(None);
    }
    let (mut dtype, mut shape_ptr, mut dims, mut byte_size, mut buffers) =
        (0, null(), 0u32, 0u64, 0u32);
    // SAFETY: a live input; Triton writes the properties (the shape lives as long as the request).
    check(
        unsafe {
            TRITONBACKEND_InputProperties(
                input,
                null_mut(),
                &mut dtype,
                &mut shape_ptr,
                &mut dims,
                &mut byte_size,
                &mut buffers,
            )
        },
        "reading an input's properties",
    )?;
    if dtype != datatype {
        return Err(invalid(format!(
            "input {name}: data type {dtype} where the configuration says {datatype}"
        )));
    }
    // SAFETY: `dims` values at `shape_ptr`, alive with the request.
    let shape = if dims == 0 {
        Vec::new()
    } else {
        unsafe { std::slice::from_raw_parts(shape_ptr, dims as usize) }.to_vec()
    };
    let byte_size =
        usize::try_from(byte_size).map_err(|_| invalid(format!("input {name}: too large")))?;
    let mut parts = Vec::with_capacity(buffers as usize);
    for index in 0..buffers {
        let (mut ptr, mut len, mut memory, mut memory_id) =
            (null(), 0u64, TRITONSERVER_MEMORY_CPU, 0i64);
        // SAFETY: index < buffer_count; Triton writes the buffer's location.
        check(
            unsafe {
                TRITONBACKEND_InputBuffer(
                    input,
                    index,
                    &mut ptr,
                    &mut len,
                    &mut memory,
                    &mut memory_id,
                )
            },
            "reading an input buffer",
        )?;
        if memory == TRITONSERVER_MEMORY_GPU {
            return Err(Error {
                code: TRITONSERVER_ERROR_UNSUPPORTED,
                message: format!("input {name}: in GPU memory (CUDA shared memory); send it in system or CPU shared memory"),
            });
        }
        parts.push((ptr as *const u8, len as usize));
    }
    let total: usize = parts.iter().map(|p| p.1).sum();
    if total != byte_size {
        return Err(invalid(format!(
            "input {name}: {total} bytes in its buffers, {byte_size} announced"
        )));
    }
    let bytes = match parts.as_slice() {
        [] => Bytes::Owned(Vec::new()),
        [(ptr, len)] => Bytes::Borrowed(*ptr, *len),
        _ => {
            let mut all = Vec::with_capacity(total);
            for (ptr, len) in parts {
                // SAFETY: Triton's buffer of `len` readable bytes.
                all.extend_from_slice(unsafe { std::slice::from_raw_parts(ptr, len) });
            }
            Bytes::Owned(all)
        }
    };
    Ok(Some(InputTensor { shape, bytes }))
}

/// Floats of an FP32 input (copied: Triton's buffers need not be 4-byte aligned).
fn floats(tensor: &InputTensor) -> Vec<f32> {
    tensor
        .bytes
        .as_slice()
        .chunks_exact(4)
        .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// What one request asks: its scenes' pixels, optional cameras and requested outputs.
struct Work {
    scenes: usize,
    views: usize,
    height: u32,
    width: u32,
    images: InputTensor,
    extrinsics: Option<Vec<f32>>,
    intrinsics: Option<Vec<f32>>,
    outputs: Vec<String>,
}

impl Work {
    fn parse(request: *mut TRITONBACKEND_Request, settings: &ModelSettings) -> Result<Work> {
        let images = read_input(request, IMAGES, TRITONSERVER_TYPE_UINT8)?
            .ok_or_else(|| invalid(format!("input {IMAGES} is missing")))?;
        let [scenes, views, height, width, channels] = images.shape[..] else {
            return Err(invalid(format!(
                "input {IMAGES}: shape {:?}, expected [scenes, views, height, width, 3]",
                images.shape
            )));
        };
        if channels != 3 {
            return Err(invalid(format!(
                "input {IMAGES}: {channels} channels, expected 3 (RGB)"
            )));
        }
        // Zero views, rows or columns go to libda3, whose message names them; negative sizes
        // never come from Triton.
        if [scenes, views, height, width].iter().any(|&d| d < 0) || scenes == 0 {
            return Err(invalid(format!(
                "input {IMAGES}: shape {:?}: no scene",
                images.shape
            )));
        }
        let side = |d: i64, what: &str| {
            u32::try_from(d)
                .map_err(|_| invalid(format!("input {IMAGES}: {what} {d} is too large")))
        };
        let (height, width) = (side(height, "height")?, side(width, "width")?);
        let (scenes, views) = (scenes as usize, views as usize);
        let cameras = |name: &str, per_view: usize, tail: &[i64]| -> Result<Option<Vec<f32>>> {
            let Some(t) = read_input(request, name, TRITONSERVER_TYPE_FP32)? else {
                return Ok(None);
            };
            let expected: Vec<i64> = [scenes as i64, views as i64]
                .iter()
                .chain(tail)
                .copied()
                .collect();
            if t.shape != expected {
                return Err(invalid(format!(
                    "input {name}: shape {:?}, expected {expected:?} (one per view of {IMAGES})",
                    t.shape
                )));
            }
            let v = floats(&t);
            if v.len() != scenes * views * per_view {
                return Err(invalid(format!(
                    "input {name}: {} values for shape {expected:?}",
                    v.len()
                )));
            }
            Ok(Some(v))
        };
        let extrinsics = cameras(KNOWN_EXTRINSICS, 16, &[4, 4])?;
        let intrinsics = cameras(KNOWN_INTRINSICS, 9, &[3, 3])?;
        let mut count = 0u32;
        // SAFETY: a live request.
        check(
            unsafe { TRITONBACKEND_RequestOutputCount(request, &mut count) },
            "counting requested outputs",
        )?;
        let mut outputs = Vec::new();
        for index in 0..count {
            let mut name = null();
            // SAFETY: index < count; the name lives as long as the request.
            check(
                unsafe { TRITONBACKEND_RequestOutputName(request, index, &mut name) },
                "reading a requested output",
            )?;
            // SAFETY: NUL-terminated, alive with the request.
            outputs.push(unsafe { da3_api::text(name) }.unwrap_or_default());
        }
        if outputs.is_empty() {
            outputs = settings.outputs.clone();
        }
        Ok(Work {
            scenes,
            views,
            height,
            width,
            images,
            extrinsics,
            intrinsics,
            outputs,
        })
    }

    fn has_cameras(&self) -> bool {
        self.extrinsics.is_some() || self.intrinsics.is_some()
    }

    /// The views of scene `s`, pointing into the request's pixels.
    fn views(&self, s: usize) -> Vec<da3_api::da3_image> {
        let stride = self.width as usize * 3;
        let view_bytes = stride * self.height as usize;
        let base = self.images.bytes.as_slice().as_ptr();
        (0..self.views)
            .map(|v| da3_api::da3_image {
                // SAFETY: within the input: (s * views + v) < scenes * views views of view_bytes.
                data: unsafe { base.add((s * self.views + v) * view_bytes) },
                width: self.width,
                height: self.height,
                stride,
                format: da3_api::DA3_PIXEL_RGB8,
            })
            .collect()
    }
}

/// Runs every scene of `works` (requests already parsed): the camera-less ones in one
/// `da3_infer_scenes` call, those with cameras one `da3_infer` each. Returns per request the
/// results of its scenes, or the first error among them.
fn run(state: &InstanceState, works: &[&Work]) -> Vec<Result<Vec<Result3>>> {
    let mut outcomes: Vec<Vec<std::result::Result<Result3, Error>>> =
        works.iter().map(|_| Vec::new()).collect();
    // Camera-less scenes of every request, batched.
    let batched: Vec<(usize, usize)> = works
        .iter()
        .enumerate()
        .filter(|(_, w)| !w.has_cameras())
        .flat_map(|(r, w)| (0..w.scenes).map(move |s| (r, s)))
        .collect();
    if !batched.is_empty() {
        let views: Vec<Vec<da3_api::da3_image>> =
            batched.iter().map(|&(r, s)| works[r].views(s)).collect();
        let scenes: Vec<da3_api::da3_scene> = views
            .iter()
            .map(|v| da3_api::da3_scene {
                views: v.as_ptr(),
                view_count: v.len(),
            })
            .collect();
        let mut results = vec![null_mut(); scenes.len()];
        let mut statuses = vec![da3_api::DA3_OK; scenes.len()];
        // SAFETY: `scenes` point into `views`, whose images point into the requests' inputs
        // (alive until the requests are released, after this); the result arrays have one
        // slot per scene.
        let status = unsafe {
            da3_api::da3_infer_scenes(
                state.model.as_ptr(),
                scenes.as_ptr(),
                scenes.len(),
                &state.options,
                results.as_mut_ptr(),
                statuses.as_mut_ptr(),
            )
        };
        let first = (status != da3_api::DA3_OK).then(|| da3_api::last_error(status));
        let first_failed = statuses.iter().position(|&s| s != da3_api::DA3_OK);
        for (i, &(r, s)) in batched.iter().enumerate() {
            // SAFETY: the library's new result for this scene (or NULL), owned from here.
            let outcome = match unsafe { Result3::from_raw(results[i]) } {
                Some(result) => Ok(result),
                // The call's message names this scene by its place in the batch ("scenes[i]:").
                None if Some(i) == first_failed && first.is_some() => Err(scene_error(
                    first
                        .clone()
                        .unwrap_or_else(|| da3_api::last_error(statuses[i])),
                    s,
                )),
                // A later failure: libda3 reports only the first message; this scene alone gives its own.
                None => run_one(state, works[r], s),
            };
            outcomes[r].push(outcome);
        }
    }
    for (r, work) in works.iter().enumerate().filter(|(_, w)| w.has_cameras()) {
        for s in 0..work.scenes {
            outcomes[r].push(run_one(state, work, s));
        }
    }
    outcomes
        .into_iter()
        .map(|scenes| scenes.into_iter().collect())
        .collect()
}

/// libda3's error for scene `s` of a request, saying which scene.
fn scene_error(e: Da3Error, s: usize) -> Error {
    let e = Error::from(e);
    Error {
        message: format!("{} (scene {s} of the request)", e.message),
        ..e
    }
}

/// Scene `s` of `work` through `da3_infer`, with its known cameras if any.
fn run_one(state: &InstanceState, work: &Work, s: usize) -> std::result::Result<Result3, Error> {
    let views = work.views(s);
    let mut options = state.options;
    let n = work.views;
    if let Some(e) = &work.extrinsics {
        options.extrinsics = e[s * n * 16..(s + 1) * n * 16].as_ptr();
        options.extrinsics_rows = 4;
    }
    if let Some(k) = &work.intrinsics {
        options.intrinsics = k[s * n * 9..(s + 1) * n * 9].as_ptr();
    }
    let mut out = null_mut();
    // SAFETY: views point into the request's input; camera arrays hold n views each and
    // outlive the call; `out` is writable.
    let status = unsafe {
        da3_api::da3_infer(
            state.model.as_ptr(),
            views.as_ptr(),
            views.len(),
            &options,
            &mut out,
        )
    };
    if status != da3_api::DA3_OK {
        return Err(scene_error(da3_api::last_error(status), s));
    }
    // SAFETY: a new result, owned from here.
    unsafe { Result3::from_raw(out) }
        .ok_or_else(|| internal("libda3 returned DA3_OK without a result"))
}

/// Output `name` of every scene's result, scene after scene, into `out` (`per_scene` floats
/// each; `n` views per scene).
fn fill_output(
    name: &str,
    results: &[Result3],
    per_scene: usize,
    n: usize,
    model: &str,
    out: &mut [f32],
) -> Result<()> {
    for (s, result) in results.iter().enumerate() {
        let out = &mut out[s * per_scene..(s + 1) * per_scene];
        let r = result.as_ptr();
        // SAFETY: live results; maps hold n*h*w floats; camera calls write 12 or 9 floats into
        // slices of that length.
        unsafe {
            match name {
                "DEPTH" | "CONFIDENCE" | "SKY" => {
                    let map = match name {
                        "DEPTH" => da3_api::da3_result_depth_all(r),
                        "CONFIDENCE" => da3_api::da3_result_confidence_all(r),
                        _ => da3_api::da3_result_sky_all(r),
                    };
                    if map.is_null() {
                        return Err(invalid(format!(
                            "output {name}: model {model} does not give it"
                        )));
                    }
                    out.copy_from_slice(std::slice::from_raw_parts(map, per_scene));
                }
                "EXTRINSICS" | "INTRINSICS" => {
                    let each = if name == "EXTRINSICS" { 12 } else { 9 };
                    for v in 0..n {
                        let dst = out[v * each..(v + 1) * each].as_mut_ptr();
                        let status = if each == 12 {
                            da3_api::da3_result_extrinsics(r, v, dst)
                        } else {
                            da3_api::da3_result_intrinsics(r, v, dst)
                        };
                        if status != da3_api::DA3_OK {
                            return Err(invalid(format!(
                                "output {name}: model {model} gives no cameras"
                            )));
                        }
                    }
                }
                _ => {
                    // Not nested, or its metric alignment was skipped: NaN.
                    if da3_api::da3_result_scale_factor(r, out.as_mut_ptr()) != da3_api::DA3_OK {
                        out[0] = f32::NAN;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Fills the requested outputs of one response from the results of the request's scenes:
/// each output's values are written straight into the buffer Triton allocates for it.
fn fill_response(
    response: *mut TRITONBACKEND_Response,
    work: &Work,
    results: &[Result3],
    model: &str,
) -> Result<()> {
    let first = results
        .first()
        .ok_or_else(|| internal("no scene results"))?
        .as_ptr();
    // SAFETY: live results.
    let (h, w) = unsafe {
        (
            da3_api::da3_result_height(first) as usize,
            da3_api::da3_result_width(first) as usize,
        )
    };
    for r in results {
        // SAFETY: live results.
        let same = unsafe {
            da3_api::da3_result_height(r.as_ptr()) as usize == h
                && da3_api::da3_result_width(r.as_ptr()) as usize == w
        };
        if !same {
            return Err(internal(
                "the scenes of one request gave maps of different sizes",
            ));
        }
    }
    let (b, n) = (work.scenes, work.views);
    for name in &work.outputs {
        let (shape, per_scene): (Vec<i64>, usize) = match name.as_str() {
            "DEPTH" | "CONFIDENCE" | "SKY" => {
                (vec![b as i64, n as i64, h as i64, w as i64], n * h * w)
            }
            "EXTRINSICS" => (vec![b as i64, n as i64, 3, 4], n * 12),
            "INTRINSICS" => (vec![b as i64, n as i64, 3, 3], n * 9),
            "SCALE_FACTOR" => (vec![b as i64, 1], 1),
            other => {
                return Err(invalid(format!(
                    "output {other}: not an output of this backend"
                )))
            }
        };
        let name_c = CString::new(name.as_str()).unwrap_or_default();
        let mut output = null_mut();
        // SAFETY: a live response; shape of shape.len() dims.
        check(
            unsafe {
                TRITONBACKEND_ResponseOutput(
                    response,
                    &mut output,
                    name_c.as_ptr(),
                    TRITONSERVER_TYPE_FP32,
                    shape.as_ptr(),
                    shape.len() as u32,
                )
            },
            "creating an output",
        )?;
        let values = b * per_scene;
        let bytes = values * 4;
        let (mut buffer, mut memory, mut memory_id) = (null_mut(), TRITONSERVER_MEMORY_CPU, 0i64);
        // SAFETY: a live output; Triton allocates `bytes` and writes where.
        check(
            unsafe {
                TRITONBACKEND_OutputBuffer(
                    output,
                    &mut buffer,
                    bytes as u64,
                    &mut memory,
                    &mut memory_id,
                )
            },
            "allocating an output",
        )?;
        if memory == TRITONSERVER_MEMORY_GPU {
            return Err(Error {
                code: TRITONSERVER_ERROR_UNSUPPORTED,
                message: format!("output {name}: GPU output memory is not supported"),
            });
        }
        if buffer.is_null() && bytes > 0 {
            return Err(internal(format!("output {name}: Triton gave no buffer")));
        }
        let buffer = buffer.cast::<u8>();
        if buffer.align_offset(std::mem::align_of::<f32>()) == 0 {
            // The results are copied once, straight into Triton's buffer.
            // SAFETY: `buffer` holds `bytes` = `values` floats of writable host memory, aligned
            // for f32, ours until the response is sent.
            let out = unsafe { std::slice::from_raw_parts_mut(buffer.cast::<f32>(), values) };
            fill_output(name, results, per_scene, n, model, out)?;
        } else {
            let mut data = vec![0f32; values];
            fill_output(name, results, per_scene, n, model, &mut data)?;
            // SAFETY: `buffer` holds `bytes` writable host bytes.
            unsafe { std::ptr::copy_nonoverlapping(data.as_ptr().cast::<u8>(), buffer, bytes) };
        }
    }
    Ok(())
}

/// Sends the final response of `request`: its outputs, or `error`.
fn respond(
    request: *mut TRITONBACKEND_Request,
    outcome: Result<(&Work, &[Result3])>,
    model: &str,
) -> bool {
    let mut response = null_mut();
    // SAFETY: a live request; Triton writes the new response.
    if let Err(e) = check(
        unsafe { TRITONBACKEND_ResponseNew(&mut response, request) },
        "creating a response",
    ) {
        log(TRITONSERVER_LOG_ERROR, &e.message);
        return false;
    }
    let filled = outcome.and_then(|(work, results)| fill_response(response, work, results, model));
    let success = filled.is_ok();
    let error = match filled {
        Ok(()) => null_mut(),
        Err(e) => e.into_triton(),
    };
    // SAFETY: the response is handed to Triton (which owns it from here); the error stays ours.
    let sent = unsafe {
        TRITONBACKEND_ResponseSend(response, TRITONSERVER_RESPONSE_COMPLETE_FINAL, error)
    };
    if !error.is_null() {
        // SAFETY: ours, deleted once.
        unsafe { TRITONSERVER_ErrorDelete(error) };
    }
    if let Err(e) = check(sent, "sending a response") {
        log(TRITONSERVER_LOG_ERROR, &e.message);
    }
    success
}

fn execute(
    instance: *mut TRITONBACKEND_ModelInstance,
    state: &InstanceState,
    requests: &[*mut TRITONBACKEND_Request],
) {
    let exec_start = now_ns();
    // A panic while reading a request or computing fails those requests, not the batch: every
    // request below still gets its response and is released exactly once.
    let parsed: Vec<Result<Work>> = requests
        .iter()
        .map(|&r| {
            catch_unwind(AssertUnwindSafe(|| Work::parse(r, &state.settings)))
                .unwrap_or_else(|_| Err(internal("libtriton_da3: reading the request panicked")))
        })
        .collect();
    let compute_start = now_ns();
    let ok: Vec<&Work> = parsed.iter().filter_map(|p| p.as_ref().ok()).collect();
    let computed = catch_unwind(AssertUnwindSafe(|| run(state, &ok))).unwrap_or_else(|_| {
        ok.iter()
            .map(|_| Err(internal("libtriton_da3: running the batch panicked")))
            .collect()
    });
    let mut outcomes = computed.into_iter();
    let compute_end = now_ns();
    let mut scenes = 0u64;
    let mut results_of_request = Vec::with_capacity(requests.len());
    for p in &parsed {
        results_of_request.push(match p {
            Ok(work) => {
                scenes += work.scenes as u64;
                outcomes
                    .next()
                    .unwrap_or_else(|| Err(internal("a request lost its results")))
            }
            Err(e) => Err(Error {
                code: e.code,
                message: e.message.clone(),
            }),
        });
    }
    let mut successes = Vec::with_capacity(requests.len());
    for ((&request, p), results) in requests.iter().zip(&parsed).zip(&results_of_request) {
        let outcome = match (p, results) {
            (Ok(work), Ok(results)) => Ok((work, results.as_slice())),
            (_, Err(e)) => Err(Error {
                code: e.code,
                message: e.message.clone(),
            }),
            (Err(e), _) => Err(Error {
                code: e.code,
                message: e.message.clone(),
            }),
        };
        successes.push(respond(request, outcome, &state.settings.name));
    }
    drop(results_of_request);
    let exec_end = now_ns();
    for (&request, success) in requests.iter().zip(successes) {
        // SAFETY: a live request of this instance; released once, after everything that
        // borrowed its inputs is gone.
        unsafe {
            let e = TRITONBACKEND_ModelInstanceReportStatistics(
                instance,
                request,
                success,
                exec_start,
                compute_start,
                compute_end,
                exec_end,
            );
            let _ = check(e, "reporting statistics");
        }
    }
    if scenes > 0 {
        // SAFETY: a live instance.
        let e = unsafe {
            TRITONBACKEND_ModelInstanceReportBatchStatistics(
                instance,
                scenes,
                exec_start,
                compute_start,
                compute_end,
                exec_end,
            )
        };
        let _ = check(e, "reporting batch statistics");
    }
    drop(parsed);
    for &request in requests {
        // SAFETY: released once; nothing refers to its inputs any more.
        let e = unsafe { TRITONBACKEND_RequestRelease(request, TRITONSERVER_REQUEST_RELEASE_ALL) };
        if let Err(e) = check(e, "releasing a request") {
            log(TRITONSERVER_LOG_ERROR, &e.message);
        }
    }
}

fn model_settings(model: *mut TRITONBACKEND_Model) -> Result<ModelSettings> {
    let (mut name, mut version, mut artifact, mut location) = (null(), 0u64, 0, null());
    // SAFETY: a live model; Triton writes the values (strings live as long as the model).
    unsafe {
        check(
            TRITONBACKEND_ModelName(model, &mut name),
            "reading the model name",
        )?;
        check(
            TRITONBACKEND_ModelVersion(model, &mut version),
            "reading the model version",
        )?;
        check(
            TRITONBACKEND_ModelRepository(model, &mut artifact, &mut location),
            "reading the model repository",
        )?;
    }
    let mut message = null_mut();
    // SAFETY: a live model; config version 1 (the JSON of the model configuration).
    check(
        unsafe { TRITONBACKEND_ModelConfig(model, 1, &mut message) },
        "reading the model configuration",
    )?;
    let (mut base, mut size) = (null(), 0usize);
    // SAFETY: a live message: its JSON is `size` bytes at `base`, read before the delete.
    let json = unsafe {
        let serialized = check(
            TRITONSERVER_MessageSerializeToJson(message, &mut base, &mut size),
            "serialising the configuration",
        );
        let json = serialized.map(|()| {
            String::from_utf8_lossy(std::slice::from_raw_parts(base.cast::<u8>(), size))
                .into_owned()
        });
        let _ = check(
            TRITONSERVER_MessageDelete(message),
            "deleting the configuration",
        );
        json?
    };
    let config: serde_json::Value = serde_json::from_str(&json)
        .map_err(|e| internal(format!("the model configuration is not JSON: {e}")))?;
    // SAFETY: NUL-terminated, alive with the model.
    let location = PathBuf::from(unsafe { da3_api::text(location) }.unwrap_or_default());
    let settings = ModelSettings::from_config(&config, &location.join(version.to_string()))
        .map_err(invalid)?;
    // SAFETY: as above.
    let name = unsafe { da3_api::text(name) }.unwrap_or_default();
    log(
        TRITONSERVER_LOG_INFO,
        &format!(
            "model '{name}' version {version}: libda3 model {}",
            settings.model
        ),
    );
    Ok(settings)
}

// ---- The functions Triton calls -------------------------------------------------------------

/// Checks the server's backend API version and sends libda3's log to Triton's.
#[no_mangle]
pub extern "C" fn TRITONBACKEND_Initialize(
    _backend: *mut TRITONBACKEND_Backend,
) -> *mut TRITONSERVER_Error {
    boundary("TRITONBACKEND_Initialize", || {
        let (mut major, mut minor) = (0, 0);
        // SAFETY: writable integers.
        check(
            unsafe { TRITONBACKEND_ApiVersion(&mut major, &mut minor) },
            "reading the backend API version",
        )?;
        if major != API_VERSION_MAJOR || minor < API_VERSION_MINOR {
            return Err(Error {
                code: TRITONSERVER_ERROR_UNSUPPORTED,
                message: format!(
                    "libtriton_da3 needs Triton backend API {API_VERSION_MAJOR}.{API_VERSION_MINOR} or a later 1.x; this server has {major}.{minor}"
                ),
            });
        }
        // SAFETY: a function valid for the process's life; no user data.
        unsafe { da3_api::da3_log_set(Some(da3_log_to_triton), null_mut()) };
        // SAFETY: a static string.
        let version = unsafe { da3_api::text(da3_api::da3_version()) }.unwrap_or_default();
        log(
            TRITONSERVER_LOG_INFO,
            &format!(
                "libtriton_da3 {} over libda3 {version} (backend API {major}.{minor})",
                env!("CARGO_PKG_VERSION")
            ),
        );
        Ok(())
    })
}

/// Gives libda3's log back to stderr.
#[no_mangle]
pub extern "C" fn TRITONBACKEND_Finalize(
    _backend: *mut TRITONBACKEND_Backend,
) -> *mut TRITONSERVER_Error {
    boundary("TRITONBACKEND_Finalize", || {
        // SAFETY: NULL restores stderr.
        unsafe { da3_api::da3_log_set(None, null_mut()) };
        Ok(())
    })
}

/// Reads and checks the model's configuration.
#[no_mangle]
pub extern "C" fn TRITONBACKEND_ModelInitialize(
    model: *mut TRITONBACKEND_Model,
) -> *mut TRITONSERVER_Error {
    boundary("TRITONBACKEND_ModelInitialize", || {
        let settings = model_settings(model)?;
        settings.options()?;
        let state = Box::into_raw(Box::new(ModelState { settings }));
        // SAFETY: the state is ours until ModelFinalize.
        if let Err(e) = check(
            unsafe { TRITONBACKEND_ModelSetState(model, state.cast()) },
            "storing the model state",
        ) {
            // SAFETY: not handed over: freed here.
            drop(unsafe { Box::from_raw(state) });
            return Err(e);
        }
        Ok(())
    })
}

#[no_mangle]
pub extern "C" fn TRITONBACKEND_ModelFinalize(
    model: *mut TRITONBACKEND_Model,
) -> *mut TRITONSERVER_Error {
    boundary("TRITONBACKEND_ModelFinalize", || {
        let mut state = null_mut();
        // SAFETY: a live model; its state is the box ModelInitialize stored (or NULL).
        check(
            unsafe { TRITONBACKEND_ModelState(model, &mut state) },
            "reading the model state",
        )?;
        if !state.is_null() {
            // SAFETY: stored by ModelInitialize, freed once.
            drop(unsafe { Box::from_raw(state.cast::<ModelState>()) });
        }
        Ok(())
    })
}

/// Loads the instance's libda3 model on its device and checks the configuration's outputs
/// against what the model gives.
#[no_mangle]
pub extern "C" fn TRITONBACKEND_ModelInstanceInitialize(
    instance: *mut TRITONBACKEND_ModelInstance,
) -> *mut TRITONSERVER_Error {
    boundary("TRITONBACKEND_ModelInstanceInitialize", || {
        let (mut name, mut kind, mut device_id, mut model) = (null(), 0, 0i32, null_mut());
        let mut model_state = null_mut();
        // SAFETY: a live instance; Triton writes the values.
        unsafe {
            check(
                TRITONBACKEND_ModelInstanceName(instance, &mut name),
                "reading the instance name",
            )?;
            check(
                TRITONBACKEND_ModelInstanceKind(instance, &mut kind),
                "reading the instance kind",
            )?;
            check(
                TRITONBACKEND_ModelInstanceDeviceId(instance, &mut device_id),
                "reading the instance device",
            )?;
            check(
                TRITONBACKEND_ModelInstanceModel(instance, &mut model),
                "reading the instance's model",
            )?;
            check(
                TRITONBACKEND_ModelState(model, &mut model_state),
                "reading the model state",
            )?;
        }
        if model_state.is_null() {
            return Err(internal("the model has no state"));
        }
        // SAFETY: the ModelState box, alive until ModelFinalize (after every instance's).
        let settings = unsafe { &*model_state.cast::<ModelState>() }
            .settings
            .clone();
        // SAFETY: alive with the instance.
        let name = unsafe { da3_api::text(name) }.unwrap_or_default();
        let devices = match kind {
            TRITONSERVER_INSTANCEGROUPKIND_GPU => format!("cuda:{device_id}"),
            TRITONSERVER_INSTANCEGROUPKIND_CPU => "cpu".to_string(),
            _ => {
                return Err(invalid(format!(
                    "instance {name}: instance_group kind {kind}: use KIND_GPU (one libda3 model per GPU instance) or KIND_CPU"
                )))
            }
        };
        let started = std::time::Instant::now();
        let da3_model = Model::create(
            &settings.model,
            settings.use_accelerate,
            settings.precision,
            &devices,
        )?;
        let capabilities = da3_model.capabilities();
        for output in &settings.outputs {
            let needs = config::OUTPUTS
                .iter()
                .find(|(n, _)| n == output)
                .map_or(0, |o| o.1);
            if capabilities & needs != needs {
                return Err(invalid(format!(
                    "model '{}': output {output} is declared but {} does not give it; remove it from config.pbtxt",
                    settings.name,
                    da3_model.describe()
                )));
            }
        }
        let options = settings.options()?;
        log(
            TRITONSERVER_LOG_INFO,
            &format!(
                "instance {name}: {} loaded in {:.1} s",
                da3_model.describe(),
                started.elapsed().as_secs_f64()
            ),
        );
        let state = Box::into_raw(Box::new(InstanceState {
            settings,
            model: da3_model,
            options,
            name,
        }));
        // SAFETY: the state is ours until ModelInstanceFinalize.
        if let Err(e) = check(
            unsafe { TRITONBACKEND_ModelInstanceSetState(instance, state.cast()) },
            "storing the instance state",
        ) {
            // SAFETY: not handed over: freed here.
            drop(unsafe { Box::from_raw(state) });
            return Err(e);
        }
        Ok(())
    })
}

#[no_mangle]
pub extern "C" fn TRITONBACKEND_ModelInstanceFinalize(
    instance: *mut TRITONBACKEND_ModelInstance,
) -> *mut TRITONSERVER_Error {
    boundary("TRITONBACKEND_ModelInstanceFinalize", || {
        let mut state = null_mut();
        // SAFETY: a live instance; its state is the box ModelInstanceInitialize stored.
        check(
            unsafe { TRITONBACKEND_ModelInstanceState(instance, &mut state) },
            "reading the instance state",
        )?;
        if !state.is_null() {
            // SAFETY: stored by ModelInstanceInitialize, freed once (this frees the libda3 model).
            let state = unsafe { Box::from_raw(state.cast::<InstanceState>()) };
            log(
                TRITONSERVER_LOG_INFO,
                &format!("instance {}: libda3 model freed", state.name),
            );
        }
        Ok(())
    })
}

/// Runs a batch of requests. Every request gets its response (outputs or its own error) and
/// is released here, so this returns an error only if the batch could not be looked at at all.
#[no_mangle]
pub extern "C" fn TRITONBACKEND_ModelInstanceExecute(
    instance: *mut TRITONBACKEND_ModelInstance,
    requests: *mut *mut TRITONBACKEND_Request,
    request_count: u32,
) -> *mut TRITONSERVER_Error {
    boundary("TRITONBACKEND_ModelInstanceExecute", || {
        let mut state = null_mut();
        // SAFETY: a live instance.
        check(
            unsafe { TRITONBACKEND_ModelInstanceState(instance, &mut state) },
            "reading the instance state",
        )?;
        if state.is_null() || requests.is_null() {
            return Err(internal("no instance state or no requests"));
        }
        // SAFETY: the InstanceState box, alive until ModelInstanceFinalize (never concurrent
        // with Execute on this instance); `request_count` live requests at `requests`.
        let (state, requests) = unsafe {
            (
                &*state.cast::<InstanceState>(),
                std::slice::from_raw_parts(requests, request_count as usize),
            )
        };
        execute(instance, state, requests);
        Ok(())
    })
}
