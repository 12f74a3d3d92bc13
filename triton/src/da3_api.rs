//! The part of libda3's C API (`include/da3.h`) this backend uses, declared as a C host sees
//! it, and a few safe wrappers. The structs are those of the header; `da3_options_default` and
//! `da3_load_options_default` check the sizes at run time, so a header/library mismatch is an
//! error at model load, not undefined behaviour.
#![allow(non_camel_case_types, dead_code)]

use std::ffi::{c_char, c_void, CStr, CString};

pub type da3_status = i32;
pub const DA3_OK: da3_status = 0;
pub const DA3_ERR_INVALID_ARGUMENT: da3_status = 1;
pub const DA3_ERR_MODEL_NOT_FOUND: da3_status = 3;
pub const DA3_ERR_IMAGE: da3_status = 5;
pub const DA3_ERR_UNSUPPORTED: da3_status = 7;
pub const DA3_ERR_OUT_OF_MEMORY: da3_status = 11;
pub const DA3_ERR_CANCELLED: da3_status = 12;
pub const DA3_ERR_NON_FINITE: da3_status = 13;

pub const DA3_PIXEL_RGB8: u32 = 0;

pub const DA3_CAP_POSE: u32 = 1 << 0;
pub const DA3_CAP_CONFIDENCE: u32 = 1 << 1;
pub const DA3_CAP_SKY: u32 = 1 << 2;
pub const DA3_CAP_KNOWN_CAMERAS: u32 = 1 << 5;

pub const DA3_LOG_ERROR: u32 = 1;
pub const DA3_LOG_WARN: u32 = 2;
pub const DA3_LOG_INFO: u32 = 3;

#[repr(C)]
pub struct da3_model {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct da3_result {
    _opaque: [u8; 0],
}

#[repr(C)]
pub struct da3_image {
    pub data: *const u8,
    pub width: u32,
    pub height: u32,
    pub stride: usize,
    pub format: u32,
}

#[repr(C)]
pub struct da3_scene {
    pub views: *const da3_image,
    pub view_count: usize,
}

#[repr(C)]
#[derive(Clone, Copy)]
pub struct da3_options {
    pub struct_size: u32,
    pub process_res: u32,
    pub resize_method: u32,
    pub ref_view_strategy: u32,
    pub use_ray_pose: u32,
    pub align_to_input_ext_scale: u32,
    pub extrinsics_rows: u32,
    pub export_feat_layer_count: u32,
    pub extrinsics: *const f32,
    pub intrinsics: *const f32,
    pub export_feat_layers: *const u32,
    pub cancel: *const c_void,
}

#[repr(C)]
pub struct da3_load_options {
    pub struct_size: u32,
    pub torch_threads: u32,
    pub preprocess_threads: u32,
    pub reserved_0: u32,
    pub devices: *const c_char,
    pub progress: *const c_void,
    pub progress_user_data: *mut c_void,
}

pub type da3_log_callback =
    Option<unsafe extern "C" fn(level: u32, message: *const c_char, user_data: *mut c_void)>;

extern "C" {
    pub fn da3_version() -> *const c_char;
    pub fn da3_status_name(status: da3_status) -> *const c_char;
    pub fn da3_last_error_message() -> *const c_char;
    pub fn da3_log_set(callback: da3_log_callback, user_data: *mut c_void) -> da3_status;
    pub fn da3_options_default(options: *mut da3_options, struct_size: usize) -> da3_status;
    pub fn da3_options_validate(options: *const da3_options) -> da3_status;
    pub fn da3_load_options_default(
        load_options: *mut da3_load_options,
        struct_size: usize,
    ) -> da3_status;
    pub fn da3_create_with_options(
        model: *const c_char,
        use_accelerate: bool,
        precision: u32,
        load_options: *const da3_load_options,
        out: *mut *mut da3_model,
    ) -> da3_status;
    pub fn da3_free(model: *mut da3_model);
    pub fn da3_model_preset(model: *const da3_model) -> *const c_char;
    pub fn da3_model_device(model: *const da3_model) -> *const c_char;
    pub fn da3_model_precision(model: *const da3_model) -> u32;
    pub fn da3_precision_name(precision: u32) -> *const c_char;
    pub fn da3_model_capabilities(model: *const da3_model, flags: *mut u32) -> da3_status;
    pub fn da3_infer(
        model: *const da3_model,
        views: *const da3_image,
        n_views: usize,
        options: *const da3_options,
        out: *mut *mut da3_result,
    ) -> da3_status;
    pub fn da3_infer_scenes(
        model: *const da3_model,
        scenes: *const da3_scene,
        scene_count: usize,
        options: *const da3_options,
        results: *mut *mut da3_result,
        statuses: *mut da3_status,
    ) -> da3_status;
    pub fn da3_result_view_count(result: *const da3_result) -> usize;
    pub fn da3_result_width(result: *const da3_result) -> u32;
    pub fn da3_result_height(result: *const da3_result) -> u32;
    pub fn da3_result_depth_all(result: *const da3_result) -> *const f32;
    pub fn da3_result_confidence_all(result: *const da3_result) -> *const f32;
    pub fn da3_result_sky_all(result: *const da3_result) -> *const f32;
    pub fn da3_result_has_cameras(result: *const da3_result) -> bool;
    pub fn da3_result_extrinsics(
        result: *const da3_result,
        view: usize,
        out: *mut f32,
    ) -> da3_status;
    pub fn da3_result_intrinsics(
        result: *const da3_result,
        view: usize,
        out: *mut f32,
    ) -> da3_status;
    pub fn da3_result_scale_factor(result: *const da3_result, out: *mut f32) -> da3_status;
    pub fn da3_result_free(result: *mut da3_result);
}

/// A libda3 error: its status and message (as `da3_last_error_message` gave it).
#[derive(Debug, Clone)]
pub struct Da3Error {
    pub status: da3_status,
    pub message: String,
}

impl std::fmt::Display for Da3Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", status_name(self.status), self.message)
    }
}

pub fn status_name(status: da3_status) -> String {
    // SAFETY: da3_status_name returns a static string for any value (or NULL).
    unsafe { text(da3_status_name(status)) }.unwrap_or_else(|| format!("status {status}"))
}

/// The calling thread's last libda3 error message, for a call that just returned `status`.
pub fn last_error(status: da3_status) -> Da3Error {
    // SAFETY: the message is thread-local and valid until this thread's next libda3 call.
    let message = unsafe { text(da3_last_error_message()) }.unwrap_or_default();
    Da3Error { status, message }
}

/// Copies a C string the library returned, if any.
///
/// # Safety
/// `s` is NULL or a NUL-terminated string alive during the call.
pub unsafe fn text(s: *const c_char) -> Option<String> {
    (!s.is_null()).then(|| CStr::from_ptr(s).to_string_lossy().into_owned())
}

/// An owned model handle, freed on drop. libda3 allows concurrent calls on one handle.
pub struct Model(*mut da3_model);

// SAFETY: libda3 documents every function on a model handle as callable from any thread,
// concurrently; the handle is freed once, on drop.
unsafe impl Send for Model {}
unsafe impl Sync for Model {}

impl Model {
    pub fn create(
        model: &str,
        use_accelerate: bool,
        precision: u32,
        devices: &str,
    ) -> Result<Model, Da3Error> {
        let invalid = |what: &str| Da3Error {
            status: DA3_ERR_INVALID_ARGUMENT,
            message: format!("{what} holds a NUL byte"),
        };
        let model_c = CString::new(model).map_err(|_| invalid("model"))?;
        let devices_c = CString::new(devices).map_err(|_| invalid("devices"))?;
        // SAFETY: every pointer is valid for the call; the struct is initialised by the library.
        unsafe {
            let mut load = std::mem::zeroed::<da3_load_options>();
            let status =
                da3_load_options_default(&mut load, std::mem::size_of::<da3_load_options>());
            if status != DA3_OK {
                return Err(last_error(status));
            }
            load.devices = devices_c.as_ptr();
            let mut handle = std::ptr::null_mut();
            let status = da3_create_with_options(
                model_c.as_ptr(),
                use_accelerate,
                precision,
                &load,
                &mut handle,
            );
            if status != DA3_OK {
                return Err(last_error(status));
            }
            Ok(Model(handle))
        }
    }

    pub fn as_ptr(&self) -> *const da3_model {
        self.0
    }

    pub fn capabilities(&self) -> u32 {
        let mut flags = 0;
        // SAFETY: a live handle and a writable flag word.
        unsafe { da3_model_capabilities(self.0, &mut flags) };
        flags
    }

    pub fn describe(&self) -> String {
        // SAFETY: a live handle; the strings live as long as it.
        unsafe {
            format!(
                "{} on {} ({})",
                text(da3_model_preset(self.0)).unwrap_or_default(),
                text(da3_model_device(self.0)).unwrap_or_default(),
                text(da3_precision_name(da3_model_precision(self.0))).unwrap_or_default()
            )
        }
    }
}

impl Drop for Model {
    fn drop(&mut self) {
        // SAFETY: created by da3_create_with_options, freed once.
        unsafe { da3_free(self.0) }
    }
}

/// An owned result, freed on drop.
pub struct Result3(*mut da3_result);

impl Result3 {
    /// # Safety
    /// `ptr` is a result the caller owns (or NULL).
    pub unsafe fn from_raw(ptr: *mut da3_result) -> Option<Result3> {
        (!ptr.is_null()).then_some(Result3(ptr))
    }
    pub fn as_ptr(&self) -> *const da3_result {
        self.0
    }
}

impl Drop for Result3 {
    fn drop(&mut self) {
        // SAFETY: owned, freed once.
        unsafe { da3_result_free(self.0) }
    }
}

// SAFETY: a result is immutable after creation; libda3 allows reading it from any thread.
unsafe impl Send for Result3 {}
