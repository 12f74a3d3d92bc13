//! Arbitrary `da3_image` descriptors (width, height, stride, format) over fuzzer-owned pixel
//! buffers through what `da3_infer` does with them before the network: the boundary's
//! validation (`image_arg`), the RGB8 conversion and the preprocessing (resize, crop,
//! normalisation), one or two views per call.
//!
//! The harness computes independently how many bytes a descriptor covers; the library must
//! accept exactly the descriptors its contract allows (checked both ways), and only those are
//! given buffers that hold the bytes the contract promises.
#![no_main]
use arbitrary::Arbitrary;
use da3::ffi::fuzzing::{image_view, process_image_views};
use da3::ffi::{da3_image, DA3_PIXEL_BGR8, DA3_PIXEL_BGRA8, DA3_PIXEL_RGB8, DA3_PIXEL_RGBA8};
use da3::options::PreprocessOptions;
use da3::ResizeMethod;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct View {
    /// Small sizes most of the time (they fit the buffer), any u32 otherwise.
    small: bool,
    width: u32,
    height: u32,
    /// Extra bytes per row beyond width * bytes per pixel, or (with `raw_stride`) the stride.
    stride: u64,
    raw_stride: bool,
    format: u32,
    pixels: Vec<u8>,
}

#[derive(Arbitrary, Debug)]
struct Input {
    views: Vec<View>,
    process_res: u8,
    method: u8,
}

fn bytes_per_pixel(format: u32) -> Option<u128> {
    match format {
        DA3_PIXEL_RGB8 | DA3_PIXEL_BGR8 => Some(3),
        DA3_PIXEL_RGBA8 | DA3_PIXEL_BGRA8 => Some(4),
        _ => None,
    }
}

/// The bytes `da3_image`'s contract says a valid descriptor covers, or None when the
/// descriptor is invalid (zero size, unknown format, stride under a row, over isize::MAX).
fn covered_bytes(width: u32, height: u32, stride: usize, format: u32) -> Option<usize> {
    let bpp = bytes_per_pixel(format)?;
    let row = width as u128 * bpp;
    if width == 0 || height == 0 || (stride as u128) < row {
        return None;
    }
    let needed = stride as u128 * (height as u128 - 1) + row;
    (needed <= isize::MAX as u128).then_some(needed as usize)
}

fuzz_target!(|input: Input| {
    let mut buffers = Vec::new();
    for view in input.views.iter().take(2) {
        let (width, height) = if view.small { (view.width % 48, view.height % 48) } else { (view.width, view.height) };
        let row = width as u64 * bytes_per_pixel(view.format).unwrap_or(3) as u64;
        let stride = if view.raw_stride { view.stride } else { row.saturating_add(view.stride % 16) } as usize;
        let covered = covered_bytes(width, height, stride, view.format);
        // A buffer for valid descriptors of at most 64 KiB; none for the others, which must be
        // refused before any byte is read (a dangling but non-NULL pointer would show a read).
        let data = match covered {
            Some(n) if n <= 1 << 16 => (0..n).map(|i| view.pixels.get(i % view.pixels.len().max(1)).copied().unwrap_or(7)).collect(),
            Some(_) => continue,
            None => Vec::new(),
        };
        let pointer = if data.is_empty() { std::ptr::NonNull::<u8>::dangling().as_ptr() } else { data.as_ptr() };
        let image = da3_image { data: pointer, width, height, stride, format: view.format };
        // SAFETY: valid descriptors point at `covered` readable bytes; invalid ones at none,
        // which the contract allows only because they must be refused unread.
        match (unsafe { image_view(&image) }, covered) {
            (Ok(view), Some(n)) => {
                assert_eq!((view.width, view.height, view.stride), (width, height, stride));
                assert_eq!(view.data.len(), n);
                // The buffer is the fuzzer's (small): converting it cannot run out of memory.
                let rgb = view.to_rgb8().expect("a small buffer converts");
                assert_eq!(rgb.len(), width as usize * height as usize * 3);
                buffers.push((data, width, height, stride, view.format));
            }
            (Err((status, message)), None) => {
                assert!(status != da3::ffi::da3_status::DA3_OK && !message.is_empty());
            }
            (Ok(_), None) => panic!("accepted an invalid descriptor {width}x{height} stride {stride} format {}", view.format),
            (Err((_, message)), Some(_)) => panic!("refused a valid descriptor: {message}"),
        }
    }
    if buffers.is_empty() {
        return;
    }
    let views: Vec<_> = buffers
        .iter()
        .map(|(data, w, h, stride, format)| da3::ImageView::new(data, *w, *h, *stride, *format).expect("accepted above"))
        .collect();
    let methods = [
        ResizeMethod::UpperBoundResize,
        ResizeMethod::UpperBoundCrop,
        ResizeMethod::LowerBoundResize,
        ResizeMethod::LowerBoundCrop,
    ];
    let options = PreprocessOptions {
        process_res: 14 + input.process_res as u32 % 128,
        resize_method: methods[input.method as usize % methods.len()],
    };
    match process_image_views(&views, &options, 1) {
        Ok(processed) => {
            let size = processed.images.size();
            assert_eq!(size, [views.len() as i64, 3, processed.height as i64, processed.width as i64]);
            assert!(processed.height % 14 == 0 && processed.width % 14 == 0 && processed.height > 0);
        }
        // Views too thin for 14-pixel patches at this resolution.
        Err(da3::Error::InvalidArgument(_)) => {}
        Err(other) => panic!("preprocessing failed: {other}"),
    }
});
