//! Views as pixel rows on a device for the tensor path (`tensor_path`): frames from host
//! memory uploaded as bytes, and frames already in CUDA memory wrapped in place after CUDA
//! vouches for them.
use tch::{Device, Kind, Tensor};

use super::tensor_path::PixelRows;
use crate::error::{Error, Result};
use crate::gpu;
use crate::image_input::{CudaImage, ImageView, PixelFormat, RgbImage};

/// Packed RGB8 images as pixel buffers.
pub fn rgb_views(images: &[RgbImage]) -> Vec<ImageView<'_>> {
    images
        .iter()
        .map(|i| ImageView { data: &i.data, width: i.width, height: i.height, stride: i.width as usize * 3, format: PixelFormat::Rgb8 })
        .collect()
}

/// `e` with "views[index]: " in front of an invalid-argument message.
fn naming_view(e: Error, index: usize) -> Error {
    match e {
        Error::InvalidArgument(m) => Error::InvalidArgument(format!("views[{index}]: {m}")),
        other => other.during(&format!("views[{index}]")),
    }
}

/// The views' bytes on `device`: gathered (on up to `threads` threads) into the page-locked
/// staging buffer and uploaded in one copy (a quarter of the float input's bytes); from
/// ordinary memory where there is no staging buffer (the CPU).
pub fn upload(images: &[ImageView<'_>], device: Device, threads: usize) -> Result<Vec<PixelRows>> {
    if images.is_empty() {
        return Err(Error::InvalidArgument("at least one view is needed".into()));
    }
    let mut spans = Vec::with_capacity(images.len());
    let mut total = 0usize;
    for (i, v) in images.iter().enumerate() {
        // The fields are public: check what `ImageView::new` checks before reading the bytes.
        let view = ImageView::new(v.data, v.width, v.height, v.stride, v.format).map_err(|e| naming_view(e, i))?;
        let span = view.stride * (view.height as usize - 1) + view.width as usize * view.format.bytes_per_pixel();
        spans.push((total, span));
        total += span;
    }
    let gather = |target: &mut [u8]| {
        let mut parts: Vec<(&mut [u8], &[u8])> = Vec::with_capacity(images.len());
        let mut rest = target;
        for (v, &(_, span)) in images.iter().zip(&spans) {
            let (part, tail) = rest.split_at_mut(span);
            parts.push((part, &v.data[..span]));
            rest = tail;
        }
        let per_thread = parts.len().div_ceil(threads.clamp(1, parts.len()));
        std::thread::scope(|scope| {
            for chunk in parts.chunks_mut(per_thread) {
                scope.spawn(move || chunk.iter_mut().for_each(|(to, from)| to.copy_from_slice(from)));
            }
        });
    };
    let staged = if device.is_cuda() {
        gpu::with_pinned_staging(total, |ptr| -> Result<Tensor> {
            // SAFETY: the staging buffer holds at least `total` bytes and is ours while this runs.
            gather(unsafe { std::slice::from_raw_parts_mut(ptr, total) });
            // SAFETY: the bytes were just written there; the copy to the GPU is synchronous.
            let pinned = unsafe { Tensor::f_from_blob(ptr as *const u8, &[total as i64], &[1], Kind::Uint8, Device::Cpu)? };
            Ok(pinned.f_to_device(device)?)
        })
        .transpose()?
    } else {
        None
    };
    let bytes = match staged {
        Some(bytes) => bytes,
        None => {
            let mut host = vec![0u8; total];
            gather(&mut host);
            Tensor::from_slice(&host).f_to_device(device)?
        }
    };
    images
        .iter()
        .zip(&spans)
        .map(|(v, &(offset, _))| {
            let row = v.width as i64 * v.format.bytes_per_pixel() as i64;
            let rows = bytes.f_as_strided([v.height as i64, row], [v.stride as i64, 1], offset as i64)?;
            Ok(PixelRows { rows, width: v.width, height: v.height, format: v.format })
        })
        .collect()
}

/// Views in CUDA memory, wrapped in place: each checked against the CUDA allocation holding it
/// (device or managed memory, the whole image inside it, all views on one GPU) before anything
/// reads it; then the GPU's next work ordered after the caller's `stream` (a `cudaStream_t` as
/// an address; 0: the legacy default stream).
pub fn cuda_views(images: &[CudaImage], stream: usize) -> Result<Vec<PixelRows>> {
    let mut device = None;
    for (i, image) in images.iter().enumerate() {
        let at = |e: Error| naming_view(e, i);
        let span = image.span().map_err(at)?;
        let allocation = gpu::support::device_memory_range(image.address).map_err(at)?;
        if image.address < allocation.start || image.address - allocation.start + span > allocation.len {
            return Err(Error::InvalidArgument(format!(
                "views[{i}]: {span} bytes from {:#x} (pitch {} x {} rows) run past the end of the allocation holding it \
                 ({} bytes from {:#x})",
                image.address, image.pitch, image.height, allocation.len, allocation.start
            )));
        }
        match device {
            Some(d) if d != allocation.device => {
                return Err(Error::InvalidArgument(format!(
                    "views[{i}] is on cuda:{}, views[0] on cuda:{d}: a scene's views must be on one GPU",
                    allocation.device
                )))
            }
            _ => device = Some(allocation.device),
        }
    }
    let device = device.ok_or_else(|| Error::InvalidArgument("at least one view is needed".into()))?;
    // SAFETY: the stream is the caller's, documented to be a live stream of that device.
    unsafe { gpu::support::wait_for_stream(stream as *mut std::ffi::c_void, device) }?;
    images
        .iter()
        .map(|image| {
            let row = image.width as i64 * image.format.bytes_per_pixel() as i64;
            // SAFETY: the range was checked to lie inside one live device allocation (the caller
            // keeps it alive for the call); the tensor is only read, and the preprocessing copies
            // it before returning.
            let rows = unsafe {
                Tensor::f_from_blob(
                    image.address as *const u8,
                    &[image.height as i64, row],
                    &[image.pitch as i64, 1],
                    Kind::Uint8,
                    Device::Cuda(device),
                )
            }?;
            Ok(PixelRows { rows, width: image.width, height: image.height, format: image.format })
        })
        .collect()
}
