//! The C ABI (`include/da3.h`, generated from this module by cbindgen: see `tests/header.rs`).
//!
//! This layer only converts types, checks pointers, catches panics and maps `crate::Error`
//! kinds to status codes; everything else lives in the safe core.
//!
//! Conventions (repeated in the header's preamble, `cbindgen.toml`):
//! * every export runs inside `catch_unwind`; a panic becomes `DA3_ERR_PANIC` (or NULL / 0 for
//!   functions that do not return a status) with a message;
//! * a failing call stores a readable message in a thread-local slot read by
//!   `da3_last_error_message`; successful calls leave it alone;
//! * enum-like values that C passes *in* (precision, resize method, reference view, pixel
//!   format) are plain `uint32_t` typedefs with `#define` constants, so any integer is
//!   well-defined at the boundary and out-of-range values are reported, never UB; the status
//!   type only ever flows out of the library, so it is a real C enum;
//! * out-pointers are set to NULL first, so they are NULL on every failure.
//!
//! One module per family of C types, declared below in the order the header presents them
//! (cbindgen follows these `mod` declarations): the boundary every export goes through
//! (`boundary`: statuses, errors, panics, version), argument conversion and the handle helper
//! (`args`), the enum-like values (`enums`), `da3_options` (`options`), the model handle
//! (`model`), the host's control (`cancel`: the cancel token `da3_options` carries; `load`: load
//! options and progress; `log`: the log callback), inference (`infer`), the result handle
//! (`result`, `result_cameras`, `result_features`), the result's geometry (`geometry`) and its
//! writers (`export`).
#![allow(non_camel_case_types)]
#![deny(unsafe_op_in_unsafe_fn)]

mod boundary;
mod args;
mod enums;
mod cancel;
mod options;
mod model;
mod load;
mod log;
mod infer;
mod result;
mod result_cameras;
mod result_features;
mod result_device;
mod geometry;
mod export;
#[doc(hidden)]
pub mod fuzzing;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_export;

pub use boundary::{
    da3_last_error_message, da3_status, da3_status_name, da3_version, DA3_VERSION_MAJOR, DA3_VERSION_MINOR,
    DA3_VERSION_PATCH,
};
pub use enums::{
    da3_capabilities, da3_pixel_format, da3_placement, da3_precision, da3_precision_name, da3_ref_view_strategy,
    da3_resize_method, da3_warning, DA3_CAP_CANONICAL_METRIC_DEPTH, DA3_CAP_CONFIDENCE, DA3_CAP_KNOWN_CAMERAS,
    DA3_CAP_METRIC_DEPTH, DA3_CAP_POSE, DA3_CAP_RAY_POSE, DA3_CAP_SKY, DA3_PIXEL_BGR8, DA3_PIXEL_BGRA8,
    DA3_PIXEL_RGB8, DA3_PIXEL_RGBA8, DA3_PLACEMENT_AUTO, DA3_PLACEMENT_REPLICATE, DA3_PLACEMENT_SHARD,
    DA3_PRECISION_AUTO, DA3_PRECISION_BF16, DA3_PRECISION_FP16, DA3_PRECISION_FP32, DA3_REF_VIEW_FIRST,
    DA3_REF_VIEW_MIDDLE, DA3_REF_VIEW_SADDLE_BALANCED, DA3_REF_VIEW_SADDLE_SIM_RANGE, DA3_RESIZE_LOWER_BOUND_CROP,
    DA3_RESIZE_LOWER_BOUND_RESIZE, DA3_RESIZE_UPPER_BOUND_CROP, DA3_RESIZE_UPPER_BOUND_RESIZE,
    DA3_WARNING_EMPTY_ALIGNMENT_MASK, DA3_WARNING_METRIC_ALIGNMENT_SKIPPED, DA3_WARNING_NONE,
};
pub use infer::{
    da3_cuda_image, da3_device_outputs, da3_image, da3_infer, da3_infer_cuda, da3_infer_files, da3_infer_preprocessed, da3_infer_scenes,
    da3_scene, DA3_DEVICE_OUTPUT_CONFIDENCE, DA3_DEVICE_OUTPUT_DEPTH, DA3_IMAGE_MAX_FILE_BYTES,
    DA3_IMAGE_MAX_PIXELS, DA3_IMAGE_MAX_SIDE,
};
pub use model::{
    da3_create, da3_create_on_devices, da3_free, da3_memory_stats, da3_model, da3_model_backbone_depth,
    da3_model_capabilities, da3_model_device, da3_model_memory_stats, da3_model_placement, da3_model_precision,
    da3_model_preset, da3_model_replica_count, da3_model_replica_device, da3_model_replica_memory_stats,
    da3_model_reset_peak_memory,
    da3_model_set_placement,
};
pub use options::{
    da3_options, da3_options_default, da3_options_validate, DA3_MAX_CAMERA_MAGNITUDE, DA3_MAX_PROCESSED_PIXELS,
    DA3_MAX_PROCESSED_SIDE, DA3_MAX_PROCESS_RES, DA3_MIN_FOCAL_LENGTH,
};
pub use load::{da3_create_with_options, da3_load_options, da3_load_options_default, da3_load_progress};
pub use log::{
    da3_log_callback, da3_log_get_level, da3_log_level, da3_log_set, da3_log_set_level, DA3_LOG_DEBUG, DA3_LOG_ERROR,
    DA3_LOG_INFO, DA3_LOG_OFF, DA3_LOG_WARN,
};
pub use cancel::{
    da3_cancel_token, da3_cancel_token_cancel, da3_cancel_token_free, da3_cancel_token_is_cancelled, da3_cancel_token_new,
    da3_cancel_token_reset,
};
pub use result::{
    da3_result, da3_result_confidence, da3_result_confidence_all, da3_result_depth, da3_result_depth_all,
    da3_result_free, da3_result_has_confidence, da3_result_has_sky, da3_result_height, da3_result_sky,
    da3_result_sky_all, da3_result_view_count, da3_result_warning, da3_result_warning_code,
    da3_result_warning_count, da3_result_width, da3_result_write_depth_png,
};
pub use result_cameras::{
    da3_result_alignment_scale, da3_result_extrinsics, da3_result_has_cameras, da3_result_intrinsics,
    da3_result_is_metric, da3_result_scale_factor,
};
pub use result_device::{da3_result_confidence_device, da3_result_depth_device, da3_result_device};
pub use result_features::{da3_result_feature_count, da3_result_feature_data, da3_result_feature_info};
pub use geometry::{
    da3_interpolation, da3_map, da3_pixel_mapping, da3_result_colors, da3_result_input_size, da3_result_intrinsics_at_input,
    da3_result_map_at_input, da3_result_pixel_to_input, da3_result_points, DA3_INTERPOLATION_BILINEAR,
    DA3_INTERPOLATION_NEAREST, DA3_MAP_CONFIDENCE, DA3_MAP_DEPTH, DA3_MAP_SKY, DA3_PIXEL_MAPPING_CAMERA, DA3_PIXEL_MAPPING_SAMPLE,
};
pub use export::{
    da3_export_flags, da3_result_write_colmap, da3_result_write_depth_npy, da3_result_write_depth_pfm,
    da3_result_write_depth_png16, da3_result_write_glb, da3_result_write_ply, DA3_EXPORT_DROP_SKY,
    DA3_EXPORT_INPUT_PIXELS, DA3_EXPORT_NO_CAMERAS,
};
