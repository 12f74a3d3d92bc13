//! Inference: the caller's images (`da3_image`, `da3_scene`) and the four ways to run the
//! model on them, each returning new `da3_result` handles.
use std::ffi::c_char;
use std::mem::size_of;
use std::ptr;

use crate::engine::{Scene, Views};
use crate::error::Error;
use crate::image_input::{CudaImage, ImageView};
use crate::prediction::{DeviceOutputs, Prediction};

use super::args::{cstr_arg, out_arg, path_arg, slice_arg, Handle};
use super::boundary::{da3_status, heavy_call, FfiError, FfiResult, DA3_OK};
use super::enums::{da3_pixel_format, pixel_format_from_c};
use super::model::da3_model;
use super::options::{da3_options, options_arg};
use super::result::da3_result;

/// A caller-owned 8-bit interleaved image, read (never written or kept) during one call.
///
/// The library reads `stride * (height - 1) + width * bytes_per_pixel` bytes from `data`;
/// the caller guarantees that many bytes are readable until the call returns. The image
/// file limits (`DA3_IMAGE_MAX_*`, see `da3_infer_files`) do not apply: these pixels are
/// already in the caller's memory and are read in place; a description whose byte count
/// overflows is refused with `DA3_ERR_INVALID_ARGUMENT` before any byte is read. Row `y` starts
/// at `data + y * stride`. This struct is passed in arrays, so it has no size field and its
/// layout is frozen: a different layout would come as a new type with new functions.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct da3_image {
    /// First byte of the top row. Must not be NULL.
    pub data: *const u8,
    /// Width in pixels (> 0).
    pub width: u32,
    /// Height in pixels (> 0).
    pub height: u32,
    /// Bytes from the start of one row to the start of the next, at least
    /// `width * bytes_per_pixel` (no "0 means packed" shortcut).
    pub stride: usize,
    /// A `DA3_PIXEL_*` value.
    pub format: da3_pixel_format,
}

/// One scene of a `da3_infer_scenes` batch: `view_count` images (one per view), read only
/// during the call. Passed in arrays; its layout is frozen.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct da3_scene {
    /// `view_count` images, each satisfying `da3_image`'s contract. Must not be NULL.
    pub views: *const da3_image,
    /// Number of views (> 0).
    pub view_count: usize,
}

/// Builds the core's view of `views[index]`.
///
/// # Safety
/// `image.data` is NULL or points to `stride * (height - 1) + width * bpp` readable bytes
/// that outlive `'a`.
pub(super) unsafe fn image_arg<'a>(image: &da3_image, index: usize) -> FfiResult<ImageView<'a>> {
    let name = |field: &str| format!("views[{index}].{field}");
    if image.data.is_null() {
        return Err(FfiError::null(&name("data")));
    }
    if image.width == 0 || image.height == 0 {
        return Err(FfiError::invalid(format!(
            "views[{index}] has size {}x{}: width and height must be non-zero",
            image.width, image.height
        )));
    }
    let format = pixel_format_from_c(image.format, &name("format"))?;
    let row = (image.width as usize)
        .checked_mul(format.bytes_per_pixel())
        .ok_or_else(|| FfiError::invalid(format!("views[{index}] is too wide ({} pixels)", image.width)))?;
    if image.stride < row {
        return Err(FfiError::invalid(format!(
            "views[{index}].stride is {} bytes, less than width * bytes per pixel = {} * {} = {row}",
            image.stride,
            image.width,
            format.bytes_per_pixel()
        )));
    }
    let len = image
        .stride
        .checked_mul(image.height as usize - 1)
        .and_then(|v| v.checked_add(row))
        .filter(|&v| v <= isize::MAX as usize)
        .ok_or_else(|| FfiError::invalid(format!("views[{index}] is too large (stride * height overflows)")))?;
    // SAFETY: non-NULL, length computed from the caller's own size description, readable per
    // the caller's guarantee documented on `da3_image`.
    let data = unsafe { std::slice::from_raw_parts(image.data, len) };
    ImageView::new(data, image.width, image.height, image.stride, format).map_err(|e| match e {
        Error::InvalidArgument(m) => FfiError::invalid(format!("views[{index}]: {m}")),
        other => other.into(),
    })
}

/// Most pixels (width x height) an image file may claim in `da3_infer_files`: PIL's own limit
/// (`Image.open` raises `DecompressionBombError` above twice `Image.MAX_IMAGE_PIXELS`), so the
/// library refuses what the official pipeline refuses; room for the largest camera sensors
/// (about 151 megapixels); 512 MiB as RGB8.
pub const DA3_IMAGE_MAX_PIXELS: u64 = 178_956_970;
/// Most pixels a side of an image file may have in `da3_infer_files`: the largest a JPEG can
/// declare (libjpeg's `JPEG_MAX_DIMENSION`), for PNG too.
pub const DA3_IMAGE_MAX_SIDE: u32 = 65_500;
/// Largest image file `da3_infer_files` reads, in bytes (512 MiB): an image at
/// `DA3_IMAGE_MAX_PIXELS` stored as uncompressed 8-bit RGB fits.
pub const DA3_IMAGE_MAX_FILE_BYTES: u64 = 536_870_912;
// The core applies these (`preprocess::decode`); the header's macros come from the values here.
const _: () = assert!(
    DA3_IMAGE_MAX_PIXELS == crate::preprocess::MAX_IMAGE_PIXELS
        && DA3_IMAGE_MAX_SIDE == crate::preprocess::MAX_IMAGE_SIDE
        && DA3_IMAGE_MAX_FILE_BYTES == crate::preprocess::MAX_IMAGE_FILE_BYTES
);

fn into_result(prediction: Prediction, out: &mut *mut da3_result) -> FfiResult<()> {
    *out = da3_result::new(prediction)?.into_raw();
    Ok(())
}

/// Runs one scene made of `n_views` images (one per view, any sizes) and returns a new result
/// in `*out`.
///
/// `options` may be NULL for the defaults. Arguments are checked in order: `out`, `model`,
/// `n_views` (0 is an error), `views` (NULL is an error), then each view (NULL data,
/// zero width or height, unknown format, stride smaller than width * bytes per pixel), then
/// the options (as `da3_options_validate`), then the known cameras' values for `n_views`
/// views; the first problem is reported, naming the argument (e.g. "views[1].stride",
/// "extrinsics of view 2").
///
/// With known cameras in `options` the network is conditioned on them and the result is
/// aligned back to them (see `da3_options.extrinsics`, `da3_result_alignment_scale`);
/// `options.export_feat_layers` adds backbone features to the result (`da3_result_feature_*`).
///
/// Errors: `DA3_ERR_NULL_POINTER`, `DA3_ERR_INVALID_ARGUMENT` (also: non-finite or non-rigid
/// extrinsics, non-pinhole intrinsics, camera centres too degenerate to align to, a feature
/// layer beyond the backbone), `DA3_ERR_UNSUPPORTED` (the model cannot take known cameras or
/// ray pose: check `da3_model_capabilities` first), `DA3_ERR_TORCH`, `DA3_ERR_CANCELLED` (the
/// token in `options.cancel` was cancelled before or during the call; see `da3_cancel_token`).
///
/// Ownership: pixel buffers are only read during the call (see `da3_image` for how many
/// bytes); on success the caller owns `*out` and must release it with `da3_result_free`; on
/// failure `*out` is NULL.
/// Thread safety: concurrent calls on one model are allowed and are serialised on the device.
///
/// # Safety
/// `model` is NULL or a live handle; `views` is NULL or points to `n_views` `da3_image`s
/// whose `data` satisfy `da3_image`'s contract; `options` is NULL or initialised by
/// `da3_options_default`, its pointers satisfying `da3_options`' contract for `n_views`
/// views; `out` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn da3_infer(
    model: *const da3_model,
    views: *const da3_image,
    n_views: usize,
    options: *const da3_options,
    out: *mut *mut da3_result,
) -> da3_status {
    heavy_call("da3_infer", || {
        // SAFETY (all blocks below): pointer validity is the caller's contract above.
        let out = unsafe { out_arg(out, "out") }?;
        let model = unsafe { da3_model::borrow(model, "model") }?;
        let views = unsafe { slice_arg(views, n_views, "views", "n_views") }?;
        let images =
            views.iter().enumerate().map(|(i, view)| unsafe { image_arg(view, i) }).collect::<FfiResult<Vec<_>>>()?;
        let call = unsafe { options_arg(options) }?;
        let cameras = call.cameras.map(|c| unsafe { c.slices(images.len()) }).transpose()?;
        let scene = Scene::new(Views::Images(&images)).with_cameras(cameras);
        into_result(model.engine.infer(&scene, &call.options)?, out)
    })
}

/// Like `da3_infer`, for image files (PNG or JPEG) read from `paths[0..n_paths]`; known cameras
/// in `options` hold one camera per path, with intrinsics in the pixels of the files.
///
/// Files are decoded as the official `PIL.Image.open(path).convert("RGB")` does, within
/// limits checked before anything of the image's size is allocated: a path must name a regular
/// file (symbolic links are followed; a device such as /dev/zero, a FIFO or a directory is
/// refused without being read) of at most `DA3_IMAGE_MAX_FILE_BYTES` bytes (never more is
/// read, even from a file that grows meanwhile), and its header may claim at most
/// `DA3_IMAGE_MAX_SIDE` pixels a side and `DA3_IMAGE_MAX_PIXELS` pixels in all. A JPEG whose
/// data ends before its last row (a truncated file) is an error, as in PIL; libjpeg's warnings
/// about corrupt data that still decodes are ignored, as in PIL. Memory: a file at the limits
/// takes at most about 2.5 GB while decoded (its bytes, the decoder's buffers: up to 8 bytes a
/// pixel for a 16-bit RGBA PNG, 6 for a progressive JPEG, and the RGB8 image); the call decodes
/// its files one after the other but keeps the RGB8 images (3 bytes a pixel, 512 MiB at the
/// pixel limit) of all of them until they are resized.
///
/// Errors: as `da3_infer`, plus `DA3_ERR_IMAGE` naming a file that cannot be read or decoded:
/// missing or unreadable, not a regular file, over a limit (the message names the limit's macro
/// and the size the file has or claims), not PNG or JPEG, corrupt or truncated. On Unix, paths
/// are raw bytes (any file name works); elsewhere UTF-8.
///
/// Ownership: the path strings are only read during the call; on success the caller owns
/// `*out` (release with `da3_result_free`); on failure `*out` is NULL.
/// Thread safety: as `da3_infer`.
///
/// # Safety
/// `model` is NULL or a live handle; `paths` is NULL or points to `n_paths` pointers, each
/// NULL or a NUL-terminated string; `options` as for `da3_infer` (with `n_paths` views);
/// `out` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn da3_infer_files(
    model: *const da3_model,
    paths: *const *const c_char,
    n_paths: usize,
    options: *const da3_options,
    out: *mut *mut da3_result,
) -> da3_status {
    heavy_call("da3_infer_files", || {
        // SAFETY (all blocks below): pointer validity is the caller's contract above.
        let out = unsafe { out_arg(out, "out") }?;
        let model = unsafe { da3_model::borrow(model, "model") }?;
        let raw = unsafe { slice_arg(paths, n_paths, "paths", "n_paths") }?;
        let paths = raw
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let what = format!("paths[{i}]");
                path_arg(unsafe { cstr_arg(p, &what) }?, &what)
            })
            .collect::<FfiResult<Vec<_>>>()?;
        let call = unsafe { options_arg(options) }?;
        let cameras = call.cameras.map(|c| unsafe { c.slices(paths.len()) }).transpose()?;
        let scene = Scene::new(Views::Files(&paths)).with_cameras(cameras);
        into_result(model.engine.infer(&scene, &call.options)?, out)
    })
}

/// Runs `scene_count` independent scenes (each its own forward: no attention across scenes)
/// and returns one result per scene, in input order. The scenes are spread over the model's
/// replicas (decoding and resizing overlap the forwards), so on a model with several GPUs a
/// batch runs about as many times faster; with one replica they run one after the other.
/// Under `DA3_PLACEMENT_SHARD` they run one after the other, each split over all replicas.
///
/// Partial failure: every scene succeeds or fails on its own (bad views, out of device
/// memory, ...). On return, for every scene `i`, `results[i]` is a new result or NULL, and
/// `statuses[i]` (if `statuses` is not NULL) is `DA3_OK` or that scene's error. The call
/// returns `DA3_OK` when every scene succeeded; otherwise the status of the first failed
/// scene, with `da3_last_error_message()` naming it ("scenes[2]: ...") and counting the
/// failures. An invalid call (NULL `model` or `results`, `scene_count` 0, NULL `scenes`,
/// bad options, options carrying known cameras: those belong to one scene, use `da3_infer`)
/// fails as a whole: every `results[i]` is NULL and every `statuses[i]` is that error. Each
/// scene is checked like the views of `da3_infer` ("scenes[i]: views[j].stride ...").
///
/// Ownership: pixel buffers are only read during the call; the caller owns every non-NULL
/// `results[i]` (also when the call returns an error) and releases each with
/// `da3_result_free`. `results` and `statuses` are caller-provided arrays of `scene_count`
/// elements.
/// Thread safety: as `da3_infer`: any number of threads may call it (and `da3_infer`) on one
/// model at once; the scenes of all calls share the replicas first come, first served.
///
/// # Safety
/// `model` is NULL or a live handle; `scenes` is NULL or points to `scene_count` scenes whose
/// `views` satisfy `da3_infer`'s contract; `options` as for `da3_infer`; `results` is NULL or
/// valid for writing `scene_count` pointers; `statuses` is NULL or valid for writing
/// `scene_count` `da3_status` values.
#[no_mangle]
pub unsafe extern "C" fn da3_infer_scenes(
    model: *const da3_model,
    scenes: *const da3_scene,
    scene_count: usize,
    options: *const da3_options,
    results: *mut *mut da3_result,
    statuses: *mut da3_status,
) -> da3_status {
    heavy_call("da3_infer_scenes", || {
        if results.is_null() {
            return Err(FfiError::null("results"));
        }
        if scene_count > isize::MAX as usize / size_of::<*mut da3_result>() {
            return Err(FfiError::invalid(format!("scene_count = {scene_count} is absurdly large")));
        }
        // SAFETY: non-NULL, and valid for scene_count writes per the caller.
        let results = unsafe { std::slice::from_raw_parts_mut(results, scene_count) };
        results.iter_mut().for_each(|r| *r = ptr::null_mut());
        // SAFETY: NULL or valid for scene_count writes per the caller.
        let mut statuses = (!statuses.is_null()).then(|| unsafe { std::slice::from_raw_parts_mut(statuses, scene_count) });
        let outcome = (|| -> FfiResult<Vec<FfiResult<*mut da3_result>>> {
            // SAFETY (all blocks below): pointer validity is the caller's contract above.
            let model = unsafe { da3_model::borrow(model, "model") }?;
            let scenes = unsafe { slice_arg(scenes, scene_count, "scenes", "scene_count") }?;
            let options = unsafe { options_arg(options) }?;
            if options.cameras.is_some() {
                return Err(FfiError::invalid(
                    "options: known cameras belong to one scene; da3_infer_scenes takes none (use da3_infer per scene)",
                ));
            }
            let options = options.options;
            // Each scene's own arguments: a bad scene fails alone.
            let checked: Vec<FfiResult<Vec<ImageView<'_>>>> = scenes
                .iter()
                .map(|scene| {
                    let views = unsafe { slice_arg(scene.views, scene.view_count, "views", "view_count") }?;
                    views.iter().enumerate().map(|(j, view)| unsafe { image_arg(view, j) }).collect()
                })
                .collect();
            let valid: Vec<usize> = (0..scene_count).filter(|&i| checked[i].is_ok()).collect();
            let mut outcomes: Vec<FfiResult<*mut da3_result>> = Vec::with_capacity(scene_count);
            let mut images_of = Vec::with_capacity(valid.len());
            for c in checked {
                match c {
                    Ok(images) => {
                        images_of.push(images);
                        outcomes.push(Ok(ptr::null_mut()));
                    }
                    Err(e) => outcomes.push(Err(e)),
                }
            }
            let inputs: Vec<Scene<'_>> = images_of.iter().map(|images| Scene::new(Views::Images(images))).collect();
            let predictions = model.engine.infer_scenes(&inputs, &options);
            for (&i, prediction) in valid.iter().zip(predictions) {
                outcomes[i] = prediction
                    .map_err(FfiError::from)
                    .and_then(|p| Ok(da3_result::new(p)?.into_raw()));
            }
            Ok(outcomes)
        })();
        let outcomes = match outcome {
            Ok(outcomes) => outcomes,
            Err(error) => {
                if let Some(statuses) = statuses.as_deref_mut() {
                    statuses.iter_mut().for_each(|s| *s = error.status);
                }
                return Err(error);
            }
        };
        let mut first_failure: Option<(usize, FfiError)> = None;
        let mut failures = 0;
        for (i, outcome) in outcomes.into_iter().enumerate() {
            let status = match outcome {
                Ok(result) => {
                    results[i] = result;
                    DA3_OK
                }
                Err(error) => {
                    failures += 1;
                    let status = error.status;
                    first_failure.get_or_insert((i, error));
                    status
                }
            };
            if let Some(statuses) = statuses.as_deref_mut() {
                statuses[i] = status;
            }
        }
        match first_failure {
            None => Ok(()),
            Some((i, error)) => Err(FfiError::new(
                error.status,
                format!("scenes[{i}]: {} ({failures} of {scene_count} scene(s) failed)", error.message),
            )),
        }
    })
}

/// Runs the network on views the caller has already preprocessed (no decoding, no resize),
/// e.g. to time the forward alone, and returns a new result in `*out`.
///
/// `images` holds `n_views * 3 * height * width` floats: per view, the R, G and B planes
/// (row-major, `height` rows of `width`), each pixel scaled to [0, 1] and normalised with the
/// ImageNet mean (0.485, 0.456, 0.406) and standard deviation (0.229, 0.224, 0.225), as the
/// official `InputProcessor` does. `height` and `width` must be multiples of 14. The result's
/// size is `width` x `height` and its intrinsics are in these pixels. `options` may be NULL;
/// only `ref_view_strategy` and `use_ray_pose` apply (`process_res` and `resize_method` are
/// checked but unused).
///
/// Errors: `DA3_ERR_NULL_POINTER`, `DA3_ERR_INVALID_ARGUMENT` (zero views, a size that is
/// not a multiple of 14, options carrying known cameras: those go through `da3_infer`),
/// `DA3_ERR_UNSUPPORTED`, `DA3_ERR_TORCH`.
///
/// Ownership: `images` is only read during the call; on success the caller owns `*out`
/// (release with `da3_result_free`); on failure `*out` is NULL.
/// Thread safety: as `da3_infer`.
///
/// # Safety
/// `model` is NULL or a live handle; `images` is NULL or points to
/// `n_views * 3 * height * width` readable floats; `options` as for `da3_infer`; `out` is NULL
/// or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn da3_infer_preprocessed(
    model: *const da3_model,
    images: *const f32,
    n_views: usize,
    height: u32,
    width: u32,
    options: *const da3_options,
    out: *mut *mut da3_result,
) -> da3_status {
    heavy_call("da3_infer_preprocessed", || {
        // SAFETY (all blocks below): pointer validity is the caller's contract above.
        let out = unsafe { out_arg(out, "out") }?;
        let model = unsafe { da3_model::borrow(model, "model") }?;
        if n_views == 0 {
            return Err(FfiError::invalid("n_views is 0"));
        }
        if height == 0 || width == 0 || height % 14 != 0 || width % 14 != 0 {
            return Err(FfiError::invalid(format!("height and width must be positive multiples of 14, got {height} x {width}")));
        }
        let count = n_views
            .checked_mul(3 * height as usize * width as usize)
            .ok_or_else(|| FfiError::invalid("n_views * 3 * height * width overflows"))?;
        let images = unsafe { slice_arg(images, count, "images", "n_views * 3 * height * width") }?;
        let options = unsafe { options_arg(options) }?;
        if options.cameras.is_some() {
            return Err(FfiError::invalid("options: known cameras are taken by da3_infer and da3_infer_files only"));
        }
        let scene = Scene::new(Views::Preprocessed { data: images, views: n_views, height, width });
        into_result(model.engine.infer(&scene, &options.options)?, out)
    })
}

/// A caller's 8-bit interleaved image in CUDA device memory (zero-copy input for renderers,
/// GPU video decoders and cameras that deliver frames on the GPU), read only during the call.
///
/// `data` is a device address (from `cudaMalloc`, `cudaMallocPitch`, `cudaMallocManaged`,
/// a CUDA graphics-interop mapping, ...); row `y` starts at `data + y * pitch`. Before any byte
/// is read, the library asks CUDA which allocation holds `data` and refuses with
/// `DA3_ERR_INVALID_ARGUMENT` an address CUDA does not know as device or managed memory (a host
/// pointer, a freed or made-up address), an image of `pitch * (height - 1) + width *
/// bytes_per_pixel` bytes that runs past the end of that allocation, and views on different
/// GPUs. The check is against CUDA's allocation: a pool or caching allocator (libtorch's, say)
/// carves many buffers out of one, so an image overrunning its buffer but not the pool's
/// allocation is read as described. Passed in arrays; its layout is frozen.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct da3_cuda_image {
    /// Device address of the first byte of the top row. Must not be NULL.
    pub data: *const std::ffi::c_void,
    /// Width in pixels (> 0).
    pub width: u32,
    /// Height in pixels (> 0).
    pub height: u32,
    /// Bytes from the start of one row to the start of the next, at least
    /// `width * bytes_per_pixel` (the pitch `cudaMallocPitch` returns, for example).
    pub pitch: usize,
    /// A `DA3_PIXEL_*` value (alpha is ignored).
    pub format: da3_pixel_format,
}

/// Which maps a `da3_infer_cuda` result also keeps in GPU memory: a bitwise OR of the
/// `DA3_DEVICE_OUTPUT_*` constants, or 0 for none.
pub type da3_device_outputs = u32;
/// The depth, as `da3_result_depth_device`.
pub const DA3_DEVICE_OUTPUT_DEPTH: da3_device_outputs = 1;
/// The depth confidence, as `da3_result_confidence_device` (models that predict one).
pub const DA3_DEVICE_OUTPUT_CONFIDENCE: da3_device_outputs = 2;

/// Like `da3_infer`, for views already in CUDA memory (`da3_cuda_image`): they are converted,
/// resized and normalised on their GPU with the same arithmetic as `da3_infer` on the host
/// (the same bytes: OpenCV's weights, order of operations and rounding), so no frame crosses
/// the bus. The result holds every map in host memory as from `da3_infer`, and, as
/// `device_outputs` asks (`DA3_DEVICE_OUTPUT_DEPTH`, `DA3_DEVICE_OUTPUT_CONFIDENCE`, or 0),
/// the depth and confidence also in GPU memory (`da3_result_depth_device`), for a renderer or
/// a robot's GPU code that would otherwise upload them again.
///
/// `cuda_stream` is the `cudaStream_t` the views were produced on (NULL: the legacy default
/// stream): the library's reads of the views are ordered after the work queued on it when the
/// call is made (an event recorded there and waited for on the GPU, no host wait), so a
/// decoder or renderer need not synchronise first. When the call returns, the views have been
/// read (the caller may overwrite or free them) and the maps in GPU memory are complete (any
/// stream may read them).
///
/// Requires a model on a GPU (else `DA3_ERR_UNSUPPORTED`); the views may be on any GPU, all on
/// one (the scene then moves to the replica's GPU if that is another one). Arguments are
/// checked as in `da3_infer` (`out`, `model`, `n_views`, `views`, each view, `device_outputs`,
/// the options, the cameras), then each view against CUDA's allocation (see
/// `da3_cuda_image`).
///
/// Errors: as `da3_infer`, plus `DA3_ERR_UNSUPPORTED` (a model on the CPU, or no CUDA support
/// library) and `DA3_ERR_INVALID_ARGUMENT` for a view CUDA does not vouch for or an unknown bit
/// in `device_outputs`.
///
/// Ownership: the views are only read during the call; on success the caller owns `*out`
/// (release with `da3_result_free`, which also frees its maps in GPU memory); on failure
/// `*out` is NULL.
/// Thread safety: as `da3_infer`.
///
/// # Safety
/// `model` is NULL or a live handle; `views` is NULL or points to `n_views` `da3_cuda_image`s
/// whose memory stays allocated until the call returns; `cuda_stream` is NULL or a live
/// stream of the views' GPU; `options` and `out` as for `da3_infer`.
#[no_mangle]
pub unsafe extern "C" fn da3_infer_cuda(
    model: *const da3_model,
    views: *const da3_cuda_image,
    n_views: usize,
    options: *const da3_options,
    cuda_stream: *mut std::ffi::c_void,
    device_outputs: da3_device_outputs,
    out: *mut *mut da3_result,
) -> da3_status {
    heavy_call("da3_infer_cuda", || {
        // SAFETY (all blocks below): pointer validity is the caller's contract above.
        let out = unsafe { out_arg(out, "out") }?;
        let model = unsafe { da3_model::borrow(model, "model") }?;
        let views = unsafe { slice_arg(views, n_views, "views", "n_views") }?;
        let images = views
            .iter()
            .enumerate()
            .map(|(i, view)| {
                let name = |field: &str| format!("views[{i}].{field}");
                if view.data.is_null() {
                    return Err(FfiError::null(&name("data")));
                }
                let image = CudaImage {
                    address: view.data as u64,
                    width: view.width,
                    height: view.height,
                    pitch: view.pitch,
                    format: pixel_format_from_c(view.format, &name("format"))?,
                };
                image.span().map_err(|e| match e {
                    Error::InvalidArgument(m) => FfiError::invalid(format!("views[{i}]: {m}")),
                    other => other.into(),
                })?;
                Ok(image)
            })
            .collect::<FfiResult<Vec<_>>>()?;
        let known = DA3_DEVICE_OUTPUT_DEPTH | DA3_DEVICE_OUTPUT_CONFIDENCE;
        if device_outputs & !known != 0 {
            return Err(FfiError::invalid(format!(
                "device_outputs is {device_outputs:#x}: only DA3_DEVICE_OUTPUT_DEPTH (1) and DA3_DEVICE_OUTPUT_CONFIDENCE (2) are defined"
            )));
        }
        let outputs = DeviceOutputs {
            depth: device_outputs & DA3_DEVICE_OUTPUT_DEPTH != 0,
            confidence: device_outputs & DA3_DEVICE_OUTPUT_CONFIDENCE != 0,
        };
        let call = unsafe { options_arg(options) }?;
        let cameras = call.cameras.map(|c| unsafe { c.slices(images.len()) }).transpose()?;
        let scene = Scene::new(Views::Cuda { images: &images, stream: cuda_stream as usize, outputs }).with_cameras(cameras);
        into_result(model.engine.infer(&scene, &call.options)?, out)
    })
}
