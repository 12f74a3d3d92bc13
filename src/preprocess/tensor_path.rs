//! The official preprocessing as tensor operations, on whichever device holds the views: the
//! path for views already in GPU memory (`da3_infer_cuda`) and, by default on a GPU (`DA3_PREPROCESS`),
//! for host frames uploaded as bytes. Same plan as the host path (`ViewPlan`), each OpenCV
//! resize as per-axis taps with OpenCV's weights, order of operations, float32 or exact
//! integer arithmetic and rounding (`cv_resize::Separable`), the same centre crops and the
//! same normalisation table: the same bytes and network input as the host path (the tests
//! compare them on every resize kind).
use tch::{Device, Kind, Tensor};

use super::cv_resize::{Arithmetic, AxisTaps, Resize, Separable};
use super::{normalisation_table, unify_batch_shapes, Processed, ViewPlan};
use crate::error::{Error, Result};
use crate::image_input::{PixelFormat, RgbImage};
use crate::options::PreprocessOptions;

/// One view's pixels as a tensor: `height` rows of `width * bytes_per_pixel` bytes, rows
/// `stride` elements apart (any device; uint8).
pub struct PixelRows {
    pub rows: Tensor,
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
}

impl PixelRows {
    /// `(H, W, 3)` uint8 RGB on the rows' device (a view where the format is RGB8).
    fn rgb(&self) -> Result<Tensor> {
        let (w, h) = (self.width as i64, self.height as i64);
        let bpp = self.format.bytes_per_pixel() as i64;
        let size = self.rows.size();
        if self.rows.kind() != Kind::Uint8 || size.len() != 2 || size[0] != h || size[1] < w * bpp {
            return Err(Error::Internal(format!("pixel rows of {:?} {size:?} for a {w}x{h} view", self.rows.kind())));
        }
        let pixels = self.rows.f_narrow(1, 0, w * bpp)?.f_view([h, w, bpp]);
        // A strided view cannot be viewed: copy the packed part of each row first.
        let pixels = match pixels {
            Ok(p) => p,
            Err(_) => self.rows.f_narrow(1, 0, w * bpp)?.f_contiguous()?.f_view([h, w, bpp])?,
        };
        let order: [i64; 3] = match self.format {
            PixelFormat::Rgb8 => return Ok(pixels),
            PixelFormat::Rgba8 => [0, 1, 2],
            PixelFormat::Bgr8 | PixelFormat::Bgra8 => [2, 1, 0],
        };
        let index = Tensor::from_slice(&order).f_to_device(pixels.device())?;
        Ok(pixels.f_index_select(2, &index)?)
    }
}

/// Float64 pixel bytes resized at once (the passes' temporaries are a few times this).
const BATCH_BYTES: usize = 256 << 20;

/// The row and column dimensions of `(..., H, W, 3)` pixels.
const ROWS: i64 = -3;
const COLUMNS: i64 = -2;

/// One axis's taps on the device: `(dst, taps)` indices and weights.
struct DeviceAxis {
    index: Tensor,
    weight: Tensor,
    dst: i64,
    taps: i64,
}

impl DeviceAxis {
    fn new(axis: &AxisTaps, device: Device) -> Result<DeviceAxis> {
        let taps = axis.taps as i64;
        let dst = axis.index.len() as i64 / taps;
        let index = Tensor::from_slice(&axis.index).f_view([dst, taps])?.f_to_device(device)?;
        let weight = Tensor::from_slice(&axis.weight).f_view([dst, taps])?.f_to_device(device)?;
        Ok(DeviceAxis { index, weight, dst, taps })
    }

    /// Tap `k` of every output index: the source slices along `dim` (`ROWS` or `COLUMNS` of
    /// `(..., H, W, 3)`) of `x` and their weights in `x`'s kind, shaped to broadcast.
    fn tap(&self, x: &Tensor, dim: i64, k: i64) -> Result<(Tensor, Tensor)> {
        let sources = x.f_index_select(dim, &self.index.f_select(1, k)?)?;
        let shape = if dim == ROWS { [self.dst, 1, 1] } else { [1, self.dst, 1] };
        let weight = self.weight.f_select(1, k)?.f_to_kind(x.kind())?.f_view(shape)?;
        Ok((sources, weight))
    }

    /// `sum_k x[tap k] * w_k` along `dim`, as `acc = x0 * w0; acc = acc + xk * wk` in `x`'s
    /// kind (OpenCV's order where the kind is float32; exact for integer sums in float64).
    fn accumulate(&self, x: &Tensor, dim: i64) -> Result<Tensor> {
        let (x0, w0) = self.tap(x, dim, 0)?;
        let mut acc = x0.f_mul(&w0)?;
        for k in 1..self.taps {
            let (xk, wk) = self.tap(x, dim, k)?;
            acc = acc.f_add(&xk.f_mul(&wk)?)?;
        }
        Ok(acc)
    }
}

/// A resize stage on the device, shared by the views of one call that have its sizes.
struct DeviceResize {
    x: DeviceAxis,
    y: DeviceAxis,
    arithmetic: Arithmetic,
    /// Per byte of an output row, whether OpenCV's vector loop computes it (`Cubic`).
    vector_bytes: Option<Tensor>,
}

impl DeviceResize {
    fn new(resize: &Resize, device: Device) -> Result<DeviceResize> {
        let Separable { x, y, arithmetic } = resize.separable();
        let vector_bytes = match arithmetic {
            Arithmetic::Cubic { vector_bytes } => {
                let dw = resize.dst_width();
                let mask: Vec<bool> = (0..dw * 3).map(|i| i < vector_bytes).collect();
                Some(Tensor::from_slice(&mask).f_view([dw as i64, 3])?.f_to_device(device)?)
            }
            _ => None,
        };
        Ok(DeviceResize { x: DeviceAxis::new(&x, device)?, y: DeviceAxis::new(&y, device)?, arithmetic, vector_bytes })
    }

    /// `(..., H, W, 3)` float64 bytes to `(..., dh, dw, 3)` float64 bytes: horizontal pass,
    /// vertical pass, OpenCV's rounding, saturation.
    fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let exact = |t: &Tensor| -> Result<Tensor> { self.y.accumulate(&self.x.accumulate(t, COLUMNS)?, ROWS) };
        let bytes = match self.arithmetic {
            Arithmetic::Copy => exact(x)?,
            Arithmetic::Block2x2 => (exact(x)? + 2.0).f_div_scalar(4.0)?.f_floor()?,
            Arithmetic::BlockScaled { scale } => {
                exact(x)?.f_to_kind(Kind::Float)?.f_mul_scalar(scale as f64)?.f_round()?.f_to_kind(Kind::Double)?
            }
            Arithmetic::AreaF32 => {
                let rows = self.x.accumulate(&x.f_to_kind(Kind::Float)?, COLUMNS)?;
                self.y.accumulate(&rows, ROWS)?.f_round()?.f_to_kind(Kind::Double)?
            }
            Arithmetic::Cubic { .. } => {
                let rows = self.x.accumulate(x, COLUMNS)?; // exact integers
                // Tail bytes: the exact Q22 sum, `(s + 2^21) >> 22`.
                let tail = (self.y.accumulate(&rows, ROWS)? + 2_097_152.0).f_div_scalar(4_194_304.0)?.f_floor()?;
                // Vector bytes: float32, taps added from the last, weights q * 2^-22.
                let rows32 = rows.f_to_kind(Kind::Float)?;
                let mut t: Option<Tensor> = None;
                for k in (0..self.y.taps).rev() {
                    let (v, q) = self.y.tap(&rows32, ROWS, k)?;
                    let product = v.f_mul(&q.f_mul_scalar(1.0 / 4_194_304.0)?)?;
                    t = Some(match t {
                        None => product,
                        Some(t) => product.f_add(&t)?,
                    });
                }
                let vector = t.ok_or_else(|| Error::Internal("a cubic resize without taps".into()))?.f_round()?.f_to_kind(Kind::Double)?;
                let mask = self.vector_bytes.as_ref().ok_or_else(|| Error::Internal("a cubic resize without its byte mask".into()))?;
                vector.f_where_self(mask, &tail)?
            }
        };
        Ok(bytes.f_clamp(0.0, 255.0)?)
    }
}

/// The views through the official pipeline into one (S, 3, H, W) float32 tensor on their
/// device (all views on one device); the processed colours come back to the host.
pub fn process_pixel_rows(views: &[PixelRows], options: &PreprocessOptions) -> Result<Processed> {
    process_in_batches(views, options, BATCH_BYTES)
}

/// `process_pixel_rows`, resizing at most `batch_bytes` of float64 pixels at once.
fn process_in_batches(views: &[PixelRows], options: &PreprocessOptions, batch_bytes: usize) -> Result<Processed> {
    let first = views.first().ok_or_else(|| Error::InvalidArgument("at least one view is needed".into()))?;
    let device = first.rows.device();
    if let Some((i, v)) = views.iter().enumerate().find(|(_, v)| v.rows.device() != device) {
        return Err(Error::InvalidArgument(format!(
            "views[{i}] is on {:?}, views[0] on {device:?}: a scene's views must be on one device",
            v.rows.device()
        )));
    }
    let mut plans = views
        .iter()
        .map(|v| ViewPlan::new(v.width as usize, v.height as usize, options.process_res, options.resize_method))
        .collect::<Result<Vec<_>>>()?;
    // Views of one size share their plan: they are resized together, as one batch.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, v) in views.iter().enumerate() {
        match groups.iter_mut().find(|g| (views[g[0]].width, views[g[0]].height) == (v.width, v.height)) {
            Some(group) => group.push(i),
            None => groups.push(vec![i]),
        }
    }
    let mut resized = Vec::with_capacity(groups.len());
    for group in &groups {
        let (plan, first) = (&plans[group[0]], &views[group[0]]);
        let stages =
            [&plan.first, &plan.second].into_iter().flatten().map(|r| DeviceResize::new(r, device)).collect::<Result<Vec<_>>>()?;
        // A bounded number of views at a time: the float64 pixels of a batch and the passes'
        // temporaries (a few times that) stay within about a gigabyte, whatever the frames.
        let view_bytes = first.width as usize * first.height as usize * 3 * 8;
        let batch = (batch_bytes / view_bytes.max(1)).max(1);
        let mut parts = Vec::with_capacity(group.len().div_ceil(batch));
        for chunk in group.chunks(batch) {
            let pixels = chunk.iter().map(|&i| views[i].rgb()).collect::<Result<Vec<_>>>()?;
            let mut x = Tensor::f_stack(&pixels, 0)?.f_to_kind(Kind::Double)?;
            for stage in &stages {
                x = stage.apply(&x)?;
            }
            parts.push(x.f_to_kind(Kind::Uint8)?); // exact bytes, an eighth of the memory
        }
        resized.push(Tensor::f_cat(&parts, 0)?);
    }
    crate::faults::check(crate::faults::PREPROCESS)?;
    let (height, width) = unify_batch_shapes(&mut plans)?;
    let mut windows = Vec::with_capacity(groups.len());
    for (group, x) in groups.iter().zip(&resized) {
        let p = &plans[group[0]];
        windows.push(x.f_narrow(1, p.top as i64, height as i64)?.f_narrow(2, p.left as i64, width as i64)?);
    }
    // Back to the caller's order of views.
    let mut position = vec![0i64; views.len()];
    for (k, &i) in groups.iter().flatten().enumerate() {
        position[i] = k as i64;
    }
    let order = Tensor::from_slice(&position).f_to_device(device)?;
    let colors = Tensor::f_cat(&windows, 0)?.f_index_select(0, &order)?; // (S, H, W, 3) uint8
    let table: Vec<f32> = normalisation_table().iter().flatten().copied().collect();
    let table = Tensor::from_slice(&table).f_view([3, 256])?.f_to_device(device)?;
    let levels = colors.f_to_kind(Kind::Int64)?;
    let channels = (0..3)
        .map(|c| table.get(c).f_index_select(0, &levels.f_select(3, c)?.f_flatten(0, -1)?))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let (s, h, w) = (views.len() as i64, height as i64, width as i64);
    let images = Tensor::f_stack(&channels, 0)?.f_view([3, s, h, w])?.f_permute([1, 0, 2, 3])?.f_contiguous()?;
    Ok(Processed {
        images,
        height: height as u32,
        width: width as u32,
        grid_changes: plans.into_iter().map(|p| p.changes).collect(),
        colors: Some(host_bytes(&colors)?),
    })
}

/// A uint8 tensor's bytes in host memory; from a GPU through the page-locked staging buffer.
fn host_bytes(t: &Tensor) -> Result<Vec<u8>> {
    let flat = t.f_contiguous()?.f_reshape([-1])?;
    let n = flat.numel();
    let mut bytes = vec![0u8; n];
    if flat.device().is_cuda() && n > 0 {
        let staged = crate::gpu::with_pinned_staging(n, |ptr| -> Result<()> {
            // SAFETY: the staging buffer holds at least n bytes and is ours while this runs.
            let mut staging = unsafe { Tensor::f_from_blob(ptr as *const u8, &[n as i64], &[1], Kind::Uint8, Device::Cpu)? };
            staging.f_copy_(&flat)?; // synchronous: the bytes are there when it returns
            // SAFETY: the copy above wrote n bytes there.
            bytes.copy_from_slice(unsafe { std::slice::from_raw_parts(ptr as *const u8, n) });
            Ok(())
        });
        if let Some(result) = staged {
            result?;
            return Ok(bytes);
        }
    }
    flat.f_to_device(Device::Cpu)?.f_copy_data_u8(&mut bytes, n)?;
    Ok(bytes)
}

/// A deterministic photo-like test image (gradients, block edges, noise) of `w x h`, for the
/// checks of this path against the host path (here and in `examples/device_input_check.rs`).
#[doc(hidden)]
pub fn test_pattern(w: u32, h: u32, seed: u32) -> RgbImage {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let data = (0..w * h * 3)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let (p, c) = (i / 3, i % 3);
            let (x, y) = (p % w, p / w);
            let smooth = (x * 255 / w.max(1) + y * 127 / h.max(1) + c * 40) % 256;
            let edge = if (x / 17 + y / 11) % 2 == 0 { 60 } else { 0 };
            ((smooth + edge + (state % 24)) % 256) as u8
        })
        .collect();
    RgbImage { width: w, height: h, data }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::ResizeMethod;

    use super::test_pattern as pattern;

    pub(crate) fn rows_of(image: &RgbImage) -> PixelRows {
        let rows = Tensor::from_slice(&image.data).view([image.height as i64, image.width as i64 * 3]);
        PixelRows { rows, width: image.width, height: image.height, format: PixelFormat::Rgb8 }
    }

    #[test]
    fn gives_the_host_paths_bytes_and_input_on_every_resize_kind() {
        // Area generic (640x480 -> 504x378), area 2x2 (1008x756 -> 504x378), area 3x3
        // (1512x1134), cubic up (320x240 -> 504x378; odd sizes) then a second resize to
        // multiples of 14, a crop method, and views of different sizes unified by a centre crop.
        let cases: Vec<(Vec<RgbImage>, ResizeMethod)> = vec![
            (vec![pattern(640, 480, 1)], ResizeMethod::UpperBoundResize),
            (vec![pattern(1008, 756, 2)], ResizeMethod::UpperBoundResize),
            (vec![pattern(1512, 1134, 3)], ResizeMethod::UpperBoundResize),
            (vec![pattern(320, 240, 4)], ResizeMethod::UpperBoundResize),
            (vec![pattern(333, 251, 5)], ResizeMethod::UpperBoundResize),
            (vec![pattern(640, 480, 6)], ResizeMethod::UpperBoundCrop),
            (vec![pattern(700, 300, 7), pattern(300, 700, 8)], ResizeMethod::LowerBoundResize),
            (vec![pattern(640, 480, 9), pattern(600, 500, 10)], ResizeMethod::UpperBoundResize),
            // Two sizes interleaved: resized as two batches, returned in the caller's order.
            (vec![pattern(640, 480, 11), pattern(600, 500, 12), pattern(640, 480, 13)], ResizeMethod::UpperBoundResize),
        ];
        for (images, method) in cases {
            let options = PreprocessOptions { process_res: 504, resize_method: method };
            let host = super::super::process_views(&images, &options, 2).unwrap();
            let views: Vec<PixelRows> = images.iter().map(rows_of).collect();
            let tensor = process_pixel_rows(&views, &options).unwrap();
            assert_eq!((host.width, host.height), (tensor.width, tensor.height), "{method:?}");
            assert_eq!(host.grid_changes, tensor.grid_changes, "{method:?}");
            let (a, b) = (host.colors.as_ref().unwrap(), tensor.colors.as_ref().unwrap());
            let differing = a.iter().zip(b).filter(|(x, y)| x != y).count();
            assert_eq!(differing, 0, "{method:?}: {differing} of {} bytes differ", a.len());
            assert!(host.images.equal(&tensor.images), "{method:?}: the network inputs differ");
        }
    }

    #[test]
    fn pixel_formats_and_strides_are_read_like_the_host_path() {
        let image = pattern(200, 150, 11);
        let options = PreprocessOptions { process_res: 140, resize_method: ResizeMethod::UpperBoundResize };
        let expected = super::super::process_views(std::slice::from_ref(&image), &options, 1).unwrap();
        for format in [PixelFormat::Rgb8, PixelFormat::Rgba8, PixelFormat::Bgr8, PixelFormat::Bgra8] {
            let bpp = format.bytes_per_pixel();
            let stride = 200 * bpp + 9;
            let mut bytes = vec![7u8; stride * 150];
            for (p, rgb) in image.data.chunks_exact(3).enumerate() {
                let at = (p / 200) * stride + (p % 200) * bpp;
                let px = match format {
                    PixelFormat::Rgb8 => vec![rgb[0], rgb[1], rgb[2]],
                    PixelFormat::Rgba8 => vec![rgb[0], rgb[1], rgb[2], 99],
                    PixelFormat::Bgr8 => vec![rgb[2], rgb[1], rgb[0]],
                    PixelFormat::Bgra8 => vec![rgb[2], rgb[1], rgb[0], 99],
                };
                bytes[at..at + bpp].copy_from_slice(&px);
            }
            let rows = Tensor::from_slice(&bytes).view([150, stride as i64]);
            let view = PixelRows { rows, width: 200, height: 150, format };
            let got = process_pixel_rows(&[view], &options).unwrap();
            assert_eq!(expected.colors, got.colors, "{format:?}");
            assert!(expected.images.equal(&got.images), "{format:?}");
        }
    }

    #[test]
    fn batches_of_any_size_give_the_same_result() {
        let images: Vec<RgbImage> = (0..5).map(|i| pattern(320, 240, 20 + i)).collect();
        let views: Vec<PixelRows> = images.iter().map(rows_of).collect();
        let options = PreprocessOptions { process_res: 280, resize_method: ResizeMethod::UpperBoundResize };
        let whole = process_pixel_rows(&views, &options).unwrap();
        for batch_bytes in [1, 2 * 320 * 240 * 3 * 8] {
            let batched = process_in_batches(&views, &options, batch_bytes).unwrap();
            assert_eq!(whole.colors, batched.colors, "batches of {batch_bytes} bytes");
            assert!(whole.images.equal(&batched.images));
        }
    }

    #[test]
    fn no_views_is_refused() {
        let options = PreprocessOptions { process_res: 140, resize_method: ResizeMethod::UpperBoundResize };
        assert!(matches!(process_pixel_rows(&[], &options), Err(Error::InvalidArgument(_))));
    }
}
