//! Preprocessing identical to the official `InputProcessor`
//! (`depth_anything_3/utils/io/input_processor.py`): boundary resize with OpenCV's
//! INTER_AREA (shrinking) or INTER_CUBIC (enlarging), sides made multiples of 14 by a small
//! resize or a centre crop, ImageNet normalisation, and views of different sizes
//! centre-cropped to the smallest.
pub mod cv_resize;

use std::path::Path;

use tch::{Kind, Tensor};

use crate::error::{Error, Result};
use crate::image_input::RgbImage;
use crate::options::{InferOptions, ResizeMethod};

pub const PATCH_SIZE: u32 = 14;
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Network input for one scene.
pub struct Processed {
    /// (S, 3, H, W) float32 on the CPU.
    pub images: Tensor,
    pub height: u32,
    pub width: u32,
    /// Per view, how its pixel grid went from the original image to the network input, for
    /// carrying intrinsics along (`adjust_intrinsics`).
    pub grid_changes: Vec<Vec<GridChange>>,
}

/// One step of a view's pixel grid from the original image to the network input, as the
/// official `InputProcessor` adjusts intrinsics for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GridChange {
    /// `_resize_ixt`: the first row of K scales by to_w / from_w, the second by to_h / from_h.
    Resize { from_w: u32, from_h: u32, to_w: u32, to_h: u32 },
    /// `_crop_ixt` and `_unify_batch_shapes`: the principal point moves by the crop offset.
    Crop { left: u32, top: u32 },
}

/// Row-major 3x3 intrinsics through a view's grid changes, in float32 like the official
/// (numpy scales a float32 K by the ratio rounded to float32).
pub fn adjust_intrinsics(k: &[f32; 9], changes: &[GridChange]) -> [f32; 9] {
    let mut k = *k;
    for change in changes {
        match *change {
            GridChange::Resize { from_w, from_h, to_w, to_h } => {
                let sx = (to_w as f64 / from_w as f64) as f32;
                let sy = (to_h as f64 / from_h as f64) as f32;
                k[..3].iter_mut().for_each(|v| *v *= sx);
                k[3..6].iter_mut().for_each(|v| *v *= sy);
            }
            GridChange::Crop { left, top } => {
                k[2] -= left as f32;
                k[5] -= top as f32;
            }
        }
    }
    k
}

/// Decodes a PNG or JPEG file to RGB8 the way the official `PIL.Image.open(path).convert("RGB")`
/// does: alpha dropped, grey replicated, no EXIF rotation. JPEG goes through libjpeg-turbo's
/// decoder (as in PIL), since other decoders differ by a few levels on many pixels.
pub fn load_image(path: &Path) -> Result<RgbImage> {
    let image_err = |reason: String| Error::Image { path: path.to_owned(), reason };
    let bytes = std::fs::read(path).map_err(|e| image_err(e.to_string()))?;
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return decode_jpeg(&bytes).map_err(image_err);
    }
    let img = image::load_from_memory(&bytes).map_err(|e| image_err(e.to_string()))?.to_rgb8();
    Ok(RgbImage { width: img.width(), height: img.height(), data: img.into_raw() })
}

fn decode_jpeg(bytes: &[u8]) -> std::result::Result<RgbImage, String> {
    // The mozjpeg crate reports libjpeg's fatal errors by unwinding.
    std::panic::catch_unwind(|| -> std::io::Result<RgbImage> {
        let mut decoder = mozjpeg::Decompress::new_mem(bytes)?.rgb()?;
        let (width, height) = (decoder.width() as u32, decoder.height() as u32);
        let pixels: Vec<[u8; 3]> = decoder.read_scanlines()?;
        decoder.finish()?;
        Ok(RgbImage { width, height, data: pixels.into_iter().flatten().collect() })
    })
    .map_err(|panic| format!("invalid JPEG: {}", crate::runner::panic_message(&panic)))?
    .map_err(|e| format!("invalid JPEG: {e}"))
}

fn resize(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    if (width, height) == (img.width, img.height) {
        return img.clone();
    }
    let (sw, sh, dw, dh) = (img.width as usize, img.height as usize, width as usize, height as usize);
    // The official picks INTER_CUBIC as soon as one side grows, else INTER_AREA.
    let data = if width > img.width || height > img.height {
        cv_resize::resize_cubic_rgb8(&img.data, sw, sh, dw, dh)
    } else {
        cv_resize::resize_area_rgb8(&img.data, sw, sh, dw, dh)
    };
    RgbImage { width, height, data }
}

fn crop(img: &RgbImage, left: u32, top: u32, width: u32, height: u32) -> RgbImage {
    if (left, top, width, height) == (0, 0, img.width, img.height) {
        return img.clone();
    }
    let row = img.width as usize * 3;
    let mut data = Vec::with_capacity(width as usize * height as usize * 3);
    for y in top..top + height {
        let start = y as usize * row + left as usize * 3;
        data.extend_from_slice(&img.data[start..start + width as usize * 3]);
    }
    RgbImage { width, height, data }
}

/// `_resize_longest_side` / `_resize_shortest_side`: Python's `int(round(side * scale))`
/// rounds halves to even.
fn boundary_size(width: u32, height: u32, target: u32, fit_longest: bool) -> (u32, u32) {
    let side = if fit_longest { width.max(height) } else { width.min(height) };
    if side == target {
        return (width, height);
    }
    let scale = target as f64 / side as f64;
    let scaled = |v: u32| ((v as f64 * scale).round_ties_even() as u32).max(1);
    (scaled(width), scaled(height))
}

/// `nearest_multiple`: ties go up.
fn nearest_multiple(x: u32, p: u32) -> u32 {
    let down = x / p * p;
    let up = down + p;
    if up - x <= x - down {
        up
    } else {
        down
    }
}

/// One view through `InputProcessor._process_one` (without normalisation).
pub fn process_one(img: &RgbImage, process_res: u32, method: ResizeMethod) -> Result<RgbImage> {
    process_one_tracked(img, process_res, method).map(|(out, _)| out)
}

/// `process_one`, also saying how the pixel grid changed (for the intrinsics).
fn process_one_tracked(img: &RgbImage, process_res: u32, method: ResizeMethod) -> Result<(RgbImage, Vec<GridChange>)> {
    let (w, h) = boundary_size(img.width, img.height, process_res, method.fits_longest_side());
    let resized = resize(img, w, h);
    let mut changes = vec![GridChange::Resize { from_w: img.width, from_h: img.height, to_w: w, to_h: h }];
    let out = if method.crops() {
        let (nw, nh) = (w / PATCH_SIZE * PATCH_SIZE, h / PATCH_SIZE * PATCH_SIZE);
        if nw == 0 || nh == 0 {
            return Err(too_small(img, w, h));
        }
        let (left, top) = ((w - nw) / 2, (h - nh) / 2);
        changes.push(GridChange::Crop { left, top });
        crop(&resized, left, top, nw, nh)
    } else {
        let (nw, nh) = (nearest_multiple(w, PATCH_SIZE), nearest_multiple(h, PATCH_SIZE));
        if nw == 0 || nh == 0 {
            return Err(too_small(img, w, h));
        }
        changes.push(GridChange::Resize { from_w: w, from_h: h, to_w: nw, to_h: nh });
        resize(&resized, nw, nh)
    };
    Ok((out, changes))
}

fn too_small(img: &RgbImage, w: u32, h: u32) -> Error {
    Error::InvalidArgument(format!(
        "a {}x{} image becomes {w}x{h} at this processing resolution, too small for 14-pixel patches",
        img.width, img.height
    ))
}

/// All views through the official pipeline into one (S, 3, H, W) tensor.
pub fn process_views(images: &[RgbImage], options: &InferOptions) -> Result<Processed> {
    options.validate()?;
    if images.is_empty() {
        return Err(Error::InvalidArgument("at least one view is needed".into()));
    }
    let (processed, mut grid_changes): (Vec<RgbImage>, Vec<Vec<GridChange>>) = images
        .iter()
        .map(|img| process_one_tracked(img, options.process_res, options.resize_method))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    // `_unify_batch_shapes`: centre-crop every view to the smallest height and width.
    let height = processed.iter().map(|p| p.height).min().expect("non-empty");
    let width = processed.iter().map(|p| p.width).min().expect("non-empty");
    for (img, changes) in processed.iter().zip(&mut grid_changes) {
        changes.push(GridChange::Crop { left: (img.width - width) / 2, top: (img.height - height) / 2 });
    }
    let (hw, plane) = (height as usize * width as usize, 3 * height as usize * width as usize);
    let mut data = vec![0f32; processed.len() * plane];
    for (view, img) in processed.iter().enumerate() {
        let img = crop(img, (img.width - width) / 2, (img.height - height) / 2, width, height);
        let out = &mut data[view * plane..(view + 1) * plane];
        for (i, px) in img.data.chunks_exact(3).enumerate() {
            for c in 0..3 {
                // ToTensor then Normalize, in float32 like torchvision.
                out[c * hw + i] = (px[c] as f32 / 255.0 - MEAN[c]) / STD[c];
            }
        }
    }
    let images = Tensor::from_slice(&data).reshape([processed.len() as i64, 3, height as i64, width as i64]);
    debug_assert_eq!(images.kind(), Kind::Float);
    Ok(Processed { images, height, width, grid_changes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_follow_the_official_rounding() {
        // 1208x680 longest side to 504: 680 * 504/1208 = 283.7 -> 284, then 504x280.
        assert_eq!(boundary_size(1208, 680, 504, true), (504, 284));
        assert_eq!(nearest_multiple(284, 14), 280);
        assert_eq!(nearest_multiple(287, 14), 294); // 287 = 280 + 7: ties go up
        assert_eq!(boundary_size(640, 480, 504, true), (504, 378));
        assert_eq!(boundary_size(640, 480, 504, false), (672, 504));
        // 2.5 rounds to even like Python's round().
        assert_eq!(boundary_size(5, 4, 2, false), (2, 2));
    }

    fn grey(width: u32, height: u32) -> RgbImage {
        RgbImage { width, height, data: vec![128; (width * height * 3) as usize] }
    }

    fn options(process_res: u32, resize_method: ResizeMethod) -> InferOptions {
        InferOptions { process_res, resize_method, ..InferOptions::default() }
    }

    #[test]
    fn intrinsics_follow_resize_and_crop() {
        let k = [1200.0f32, 0.5, 640.0, 0.0, 1100.0, 360.0, 0.0, 0.0, 1.0];
        // 1280x720 -> 504x284 (longest side) -> 504x280 (nearest multiple of 14).
        let p = process_views(&[grey(1280, 720)], &options(504, ResizeMethod::UpperBoundResize)).unwrap();
        assert_eq!((p.width, p.height), (504, 280));
        let got = adjust_intrinsics(&k, &p.grid_changes[0]);
        let (sx, sy) = (504.0 / 1280.0, (284.0 / 720.0) * (280.0 / 284.0));
        let want = [1200.0 * sx, 0.5 * sx, 640.0 * sx, 0.0, 1100.0 * sy, 360.0 * sy, 0.0, 0.0, 1.0];
        for (g, w) in got.iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-3, "{got:?} vs {want:?}");
        }
        // Crop method: 1280x720 -> 504x284, then a centre crop to 504x280 moves cy by 2.
        let p = process_views(&[grey(1280, 720)], &options(504, ResizeMethod::UpperBoundCrop)).unwrap();
        assert_eq!((p.width, p.height), (504, 280));
        let got = adjust_intrinsics(&k, &p.grid_changes[0]);
        let s = 504.0 / 1280.0;
        assert!((got[0] as f64 - 1200.0 * s).abs() < 1e-3 && (got[4] as f64 - 1100.0 * 284.0 / 720.0).abs() < 1e-3);
        assert!((got[2] as f64 - 640.0 * s).abs() < 1e-3);
        assert!((got[5] as f64 - (360.0 * 284.0 / 720.0 - 2.0)).abs() < 1e-3);
    }

    #[test]
    fn mixed_sizes_shift_the_principal_point_of_the_larger_views() {
        // 640x480 -> 504x378 -> 504x378; 500x333 -> 504x336 -> 504x336. Unified to 504x336:
        // the first view loses (378 - 336) / 2 = 21 rows at the top.
        let p = process_views(&[grey(640, 480), grey(500, 333)], &options(504, ResizeMethod::UpperBoundResize)).unwrap();
        assert_eq!((p.width, p.height), (504, 336));
        let k = [500.0f32, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0];
        let first = adjust_intrinsics(&k, &p.grid_changes[0]);
        let second = adjust_intrinsics(&k, &p.grid_changes[1]);
        assert!((first[5] as f64 - (240.0 * 378.0 / 480.0 - 21.0)).abs() < 1e-3, "{first:?}");
        assert!((second[5] as f64 - 240.0 * 336.0 / 333.0).abs() < 1e-3, "{second:?}");
        assert_eq!(p.grid_changes[1].last(), Some(&GridChange::Crop { left: 0, top: 0 }));
    }
}
