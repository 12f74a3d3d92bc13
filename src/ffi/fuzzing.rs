//! Entry points for the cargo-fuzz targets in `fuzz/` (hidden, not part of the API): the C
//! boundary's own conversions, reachable from outside the crate without running a model.
//! Each is a thin call of the function the C entry points use.
use crate::camera_input::KnownCameras;
use crate::image_input::ImageView;
use crate::options::CheckedOptions;

use super::boundary::{da3_status, FfiError};
use super::infer::{da3_image, image_arg};
use super::options::{da3_options, options_arg};

pub use crate::preprocess::{decode_image_within, process_image_views, ImageLimits};

fn split(e: FfiError) -> (da3_status, String) {
    (e.status, e.message)
}

/// `da3_infer`'s conversion of `views[0]`: the core's view of it, or the status and message
/// the call would return.
///
/// # Safety
/// As `da3_image`'s contract: `image.data` is NULL or points to the bytes it describes.
pub unsafe fn image_view<'a>(image: &da3_image) -> Result<ImageView<'a>, (da3_status, String)> {
    // SAFETY: forwarded to the caller.
    unsafe { image_arg(image, 0) }.map_err(split)
}

/// `da3_infer`'s reading of `options` for a call of `views` views: the struct read by its
/// `struct_size`, every field checked, and the known cameras (if any) checked for `views`.
///
/// # Safety
/// As `da3_infer`'s contract for `options` with `views` views.
pub unsafe fn call_options(
    options: *const da3_options,
    views: usize,
) -> Result<(CheckedOptions, Option<KnownCameras>), (da3_status, String)> {
    // SAFETY: forwarded to the caller.
    let call = unsafe { options_arg(options) }.map_err(split)?;
    // SAFETY: forwarded to the caller.
    let cameras = call.cameras.map(|c| unsafe { c.slices(views) }).transpose().map_err(split)?;
    let known = cameras.map(|c| c.validate(views)).transpose().map_err(|e| split(e.into()))?;
    Ok((call.options, known))
}
