//! Preprocessing identical to the official `InputProcessor`
//! (`depth_anything_3/utils/io/input_processor.py`): boundary resize with OpenCV's
//! INTER_AREA (shrinking) or INTER_CUBIC (enlarging), sides made multiples of 14 by a small
//! resize or a centre crop, ImageNet normalisation, and views of different sizes
//! centre-cropped to the smallest.
pub mod cv_resize;
mod decode;
pub mod device_views;
pub mod tensor_path;

use std::sync::{Mutex, PoisonError};

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::image_input::{ImageView, PixelFormat, RgbImage};
use crate::options::{PreprocessOptions, ResizeMethod};

pub use decode::{
    decode_image, decode_image_within, load_image, read_image_file, ImageLimits, MAX_IMAGE_FILE_BYTES, MAX_IMAGE_PIXELS,
    MAX_IMAGE_SIDE,
};

pub const PATCH_SIZE: u32 = 14;
/// Most pixels a view may have at any step of preprocessing (4200 x 4200, about 90,000
/// patches: the largest process_res, 4096, on a square image becomes 4102 x 4102): checked from
/// the sizes before anything is allocated, so that a legal but extreme request (a 1x60000 image
/// at a lower-bound resize asks for 140 x 8,400,000) is refused instead of asking the host for
/// tens of gigabytes.
pub const MAX_PROCESSED_PIXELS: u64 = 4200 * 4200;
/// Longest side a view may have at any step of preprocessing (bounds extreme aspect ratios,
/// and the patch positions the rotary embedding sees).
pub const MAX_PROCESSED_SIDE: u32 = 16384;
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
    /// The network input as RGB8 (S x H x W x 3), the bytes that were normalised; `None` for
    /// views the caller normalised (the prediction then keeps no colours: `to_rgb8` recovers
    /// them from the floats on request, not on every call).
    pub colors: Option<Vec<u8>>,
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

/// The network input (S, 3, H, W) float32 as RGB8 (S x H x W x 3): the ImageNet normalisation
/// undone and rounded, exact for the values `process_views` writes (each byte maps to its own
/// float); other values are clamped to 0..255.
pub fn to_rgb8(images: &Tensor) -> Result<Vec<u8>> {
    let size = images.size();
    if size.len() != 4 || size[1] != 3 {
        return Err(Error::InvalidArgument(format!("images must be (S, 3, H, W), got {size:?}")));
    }
    let (views, hw) = (size[0] as usize, (size[2] * size[3]) as usize);
    let data = Vec::<f32>::try_from(&images.f_to_kind(Kind::Float)?.f_contiguous()?.f_reshape([-1])?)?;
    let mut out = vec![0u8; views * hw * 3];
    for v in 0..views {
        for c in 0..3 {
            let plane = &data[(v * 3 + c) * hw..][..hw];
            for (i, x) in plane.iter().enumerate() {
                out[(v * hw + i) * 3 + c] = level_of(*x, c);
            }
        }
    }
    Ok(out)
}

/// The byte that normalises to `x` in channel `c` (rounded, clamped; NaN gives 0).
fn level_of(x: f32, c: usize) -> u8 {
    let level = ((x as f64 * STD[c] as f64 + MEAN[c] as f64) * 255.0).round();
    if level.is_nan() {
        0
    } else {
        level.clamp(0.0, 255.0) as u8
    }
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
    let src = Rgb8::packed(img)?;
    let plan = ViewPlan::new(src.width, src.height, process_res, method)?;
    let first = plan.first.as_ref().map(|r| r.run(src.data, src.stride));
    let mid = first.as_deref().map_or(src, |data| Rgb8::of(data, plan.mid_w, plan.mid_h));
    let second = plan.second.as_ref().map(|r| r.run(mid.data, mid.stride));
    let last = second.as_deref().map_or(mid, |data| Rgb8::of(data, plan.out_w, plan.out_h));
    let (w, h) = (plan.out_w, plan.out_h);
    let mut data = Vec::with_capacity(w * h * 3);
    for y in plan.top..plan.top + h {
        data.extend_from_slice(&last.data[y * last.stride + plan.left * 3..][..w * 3]);
    }
    Ok(RgbImage { width: w as u32, height: h as u32, data })
}

fn too_small(src_w: usize, src_h: usize, w: u32, h: u32) -> Error {
    Error::InvalidArgument(format!(
        "a {src_w}x{src_h} image becomes {w}x{h} at this processing resolution, too small for 14-pixel patches"
    ))
}

/// A borrowed RGB8 image whose rows are `stride` bytes apart.
#[derive(Clone, Copy)]
struct Rgb8<'a> {
    data: &'a [u8],
    width: usize,
    height: usize,
    stride: usize,
}

impl<'a> Rgb8<'a> {
    fn of(data: &'a [u8], width: usize, height: usize) -> Self {
        Rgb8 { data, width, height, stride: width * 3 }
    }

    fn packed(img: &'a RgbImage) -> Result<Self> {
        let (w, h) = (img.width as usize, img.height as usize);
        if w == 0 || h == 0 || img.data.len() != w * h * 3 {
            return Err(Error::InvalidArgument(format!(
                "an RGB8 image of {w}x{h} needs {} bytes, got {}",
                w * h * 3,
                img.data.len()
            )));
        }
        Ok(Rgb8::of(&img.data, w, h))
    }
}

/// What `_process_one` does to one view, planned from the sizes alone: an optional resize to
/// the boundary size, then the crop method's centre crop (a window) or the resize method's
/// second resize to multiples of 14.
struct ViewPlan {
    first: Option<cv_resize::Resize>,
    mid_w: usize,
    mid_h: usize,
    second: Option<cv_resize::Resize>,
    /// Window of the view's final pixels in the last resized image (or the source).
    left: usize,
    top: usize,
    out_w: usize,
    out_h: usize,
    changes: Vec<GridChange>,
}

/// The official picks INTER_CUBIC as soon as one side grows, else INTER_AREA; None when the
/// size stays.
fn resize_plan(sw: usize, sh: usize, dw: usize, dh: usize) -> Option<cv_resize::Resize> {
    if (sw, sh) == (dw, dh) {
        None
    } else if dw > sw || dh > sh {
        Some(cv_resize::Resize::cubic(sw, sh, dw, dh))
    } else {
        Some(cv_resize::Resize::area(sw, sh, dw, dh))
    }
}

impl ViewPlan {
    fn new(src_w: usize, src_h: usize, process_res: u32, method: ResizeMethod) -> Result<ViewPlan> {
        let (sw, sh) = (src_w as u32, src_h as u32);
        let (w, h) = boundary_size(sw, sh, process_res, method.fits_longest_side());
        // The boundary size, or its rounding to multiples of 14, is the largest this view gets:
        // bound it before any buffer or resize table exists.
        let (rw, rh) = (nearest_multiple(w, PATCH_SIZE).max(w), nearest_multiple(h, PATCH_SIZE).max(h));
        if rw > MAX_PROCESSED_SIDE || rh > MAX_PROCESSED_SIDE || rw as u64 * rh as u64 > MAX_PROCESSED_PIXELS {
            return Err(Error::InvalidArgument(format!(
                "a {src_w}x{src_h} image at process_res {process_res} ({}) would be processed at {w}x{h} pixels; \
                 the most is {MAX_PROCESSED_PIXELS} pixels and {MAX_PROCESSED_SIDE} per side (DA3_MAX_PROCESSED_PIXELS, \
                 DA3_MAX_PROCESSED_SIDE): use an upper-bound resize method, a lower process_res or a less elongated image",
                method.official_name()
            )));
        }
        let first = resize_plan(src_w, src_h, w as usize, h as usize);
        let mut changes = vec![GridChange::Resize { from_w: sw, from_h: sh, to_w: w, to_h: h }];
        let (second, left, top, nw, nh) = if method.crops() {
            let (nw, nh) = (w / PATCH_SIZE * PATCH_SIZE, h / PATCH_SIZE * PATCH_SIZE);
            if nw == 0 || nh == 0 {
                return Err(too_small(src_w, src_h, w, h));
            }
            let (left, top) = ((w - nw) / 2, (h - nh) / 2);
            changes.push(GridChange::Crop { left, top });
            (None, left, top, nw, nh)
        } else {
            let (nw, nh) = (nearest_multiple(w, PATCH_SIZE), nearest_multiple(h, PATCH_SIZE));
            if nw == 0 || nh == 0 {
                return Err(too_small(src_w, src_h, w, h));
            }
            changes.push(GridChange::Resize { from_w: w, from_h: h, to_w: nw, to_h: nh });
            (resize_plan(w as usize, h as usize, nw as usize, nh as usize), 0, 0, nw, nh)
        };
        Ok(ViewPlan {
            first,
            mid_w: w as usize,
            mid_h: h as usize,
            second,
            left: left as usize,
            top: top as usize,
            out_w: nw as usize,
            out_h: nh as usize,
            changes,
        })
    }
}

/// `_unify_batch_shapes`: every view's window centre-cropped to the smallest height and width
/// of `plans`, which it returns.
fn unify_batch_shapes(plans: &mut [ViewPlan]) -> Result<(usize, usize)> {
    let none = || Error::InvalidArgument("at least one view is needed".into());
    let height = plans.iter().map(|p| p.out_h).min().ok_or_else(none)?;
    let width = plans.iter().map(|p| p.out_w).min().ok_or_else(none)?;
    for p in plans.iter_mut() {
        let (left, top) = ((p.out_w - width) / 2, (p.out_h - height) / 2);
        p.changes.push(GridChange::Crop { left: left as u32, top: top as u32 });
        p.left += left;
        p.top += top;
    }
    Ok((height, width))
}

/// All views through the official pipeline into one (S, 3, H, W) tensor, on up to `threads`
/// threads (the caller's among them).
pub fn process_views(images: &[RgbImage], options: &PreprocessOptions, threads: usize) -> Result<Processed> {
    let sources = images.iter().map(Rgb8::packed).collect::<Result<Vec<_>>>()?;
    process_rgb8(&sources, options, Workers::new(threads))
}

/// `process_views` on caller-owned pixel buffers (any supported format and stride). RGB8
/// buffers are read in place; other formats are converted first.
pub fn process_image_views(views: &[ImageView<'_>], options: &PreprocessOptions, threads: usize) -> Result<Processed> {
    let workers = Workers::new(threads);
    // The fields are public: check what `ImageView::new` checks before reading rows in place.
    for v in views {
        ImageView::new(v.data, v.width, v.height, v.stride, v.format)?;
    }
    let mut converted: Vec<Option<Result<Vec<u8>>>> = views.iter().map(|_| None).collect();
    let tasks: Vec<Task> = views
        .iter()
        .zip(&mut converted)
        .filter(|(v, _)| v.format != PixelFormat::Rgb8)
        .map(|(v, out)| Box::new(move || *out = Some(v.to_rgb8())) as Task)
        .collect();
    workers.run(tasks);
    let converted = converted.into_iter().map(Option::transpose).collect::<Result<Vec<_>>>()?;
    let sources: Vec<Rgb8> = views
        .iter()
        .zip(&converted)
        .map(|(v, c)| match c {
            Some(data) => Rgb8::of(data, v.width as usize, v.height as usize),
            None => Rgb8 { data: v.data, width: v.width as usize, height: v.height as usize, stride: v.stride },
        })
        .collect();
    process_rgb8(&sources, options, workers)
}

/// A unit of preprocessing work (one band of rows of one view), run on any thread.
type Task<'a> = Box<dyn FnOnce() + Send + 'a>;

/// The threads preprocessing may use (`Settings::preprocess_threads`, passed down by the
/// engine; the network does not run while the views are prepared).
#[derive(Clone, Copy, Debug)]
struct Workers(usize);

impl Workers {
    fn new(threads: usize) -> Workers {
        Workers(threads.max(1))
    }

    /// Runs `tasks` on up to this many scoped threads (the caller's among them), each taking
    /// the next task from a shared queue. A panicking task propagates to the caller.
    fn run(self, tasks: Vec<Task<'_>>) {
        let workers = self.0.min(tasks.len());
        if workers <= 1 {
            tasks.into_iter().for_each(|t| t());
            return;
        }
        let queue = Mutex::new(tasks.into_iter());
        let work = || loop {
            // The guard is dropped at the end of this statement, before the task runs.
            let next = queue.lock().unwrap_or_else(PoisonError::into_inner).next();
            match next {
                Some(task) => task(),
                None => break,
            }
        };
        std::thread::scope(|s| {
            for _ in 1..workers {
                s.spawn(|| crate::error::quiet_panics(work));
            }
            work();
        });
    }

    /// Rows per task: about four tasks per worker over all views, at least 8 rows.
    fn band_rows(self, total_rows: usize) -> usize {
        total_rows.div_ceil(4 * self.0).max(8)
    }
}

/// A zeroed byte buffer, or `Error::OutOfMemory` instead of aborting the process.
fn zeroed_bytes(len: usize, what: &str) -> Result<Vec<u8>> {
    let mut buffer = Vec::new();
    buffer
        .try_reserve_exact(len)
        .map_err(|_| Error::OutOfMemory(format!("preprocessing: {len} bytes for {what} could not be allocated")))?;
    buffer.resize(len, 0);
    Ok(buffer)
}

/// One resize stage for every view that has one: `plans[v]` maps `inputs[v]` into a new
/// buffer, in row bands on the worker threads. Views without one get `None`.
fn resize_stage(inputs: &[Rgb8<'_>], plans: &[Option<&cv_resize::Resize>], workers: Workers) -> Result<Vec<Option<Vec<u8>>>> {
    let mut outputs: Vec<Option<Vec<u8>>> = plans
        .iter()
        .map(|p| p.map(|r| zeroed_bytes(r.dst_width() * r.dst_height() * 3, "a resized view")).transpose())
        .collect::<Result<_>>()?;
    let rows: usize = plans.iter().flatten().map(|r| r.dst_height()).sum();
    let band = workers.band_rows(rows);
    let mut tasks: Vec<Task> = Vec::new();
    for ((input, plan), out) in inputs.iter().zip(plans).zip(&mut outputs) {
        let (Some(plan), Some(out)) = (plan, out.as_mut()) else { continue };
        let input = *input;
        let plan: &cv_resize::Resize = plan;
        for (i, chunk) in out.chunks_mut(band * plan.dst_width() * 3).enumerate() {
            tasks.push(Box::new(move || plan.rows(input.data, input.stride, i * band, chunk)));
        }
    }
    workers.run(tasks);
    Ok(outputs)
}

/// ToTensor then Normalize, in float32 like torchvision: `(v / 255 - mean) / std`, tabulated
/// per channel and byte (the same float operations, done once).
fn normalisation_table() -> &'static [[f32; 256]; 3] {
    static TABLE: once_cell::sync::Lazy<[[f32; 256]; 3]> = once_cell::sync::Lazy::new(|| {
        std::array::from_fn(|c| std::array::from_fn(|v| (v as f32 / 255.0 - MEAN[c]) / STD[c]))
    });
    &TABLE
}

/// The views, planned and resized, centre-cropped to a common size and normalised straight
/// into the network input tensor.
fn process_rgb8(sources: &[Rgb8<'_>], options: &PreprocessOptions, workers: Workers) -> Result<Processed> {
    if sources.is_empty() {
        return Err(Error::InvalidArgument("at least one view is needed".into()));
    }
    let mut plans = sources
        .iter()
        .map(|s| ViewPlan::new(s.width, s.height, options.process_res, options.resize_method))
        .collect::<Result<Vec<_>>>()?;
    let first = resize_stage(sources, &plans.iter().map(|p| p.first.as_ref()).collect::<Vec<_>>(), workers)?;
    let mids: Vec<Rgb8> = sources
        .iter()
        .zip(&first)
        .zip(&plans)
        .map(|((s, f), p)| f.as_deref().map_or(*s, |data| Rgb8::of(data, p.mid_w, p.mid_h)))
        .collect();
    let second = resize_stage(&mids, &plans.iter().map(|p| p.second.as_ref()).collect::<Vec<_>>(), workers)?;
    crate::faults::check(crate::faults::PREPROCESS)?;
    let lasts: Vec<Rgb8> = mids
        .iter()
        .zip(&second)
        .zip(&plans)
        .map(|((m, s), p)| s.as_deref().map_or(*m, |data| Rgb8::of(data, p.out_w, p.out_h)))
        .collect();
    let (height, width) = unify_batch_shapes(&mut plans)?;
    let views = sources.len();
    let hw = height * width;
    let mut colors = zeroed_bytes(views * hw * 3, "the processed colours")?;
    let images = Tensor::f_empty([views as i64, 3, height as i64, width as i64], (Kind::Float, Device::Cpu))
        .map_err(|e| Error::from(e).during("preprocessing: the network input"))?;
    {
        // SAFETY: `images` is a new contiguous float32 CPU tensor of exactly `views * 3 * hw`
        // elements that nothing else references; the slice is dropped at the end of this block,
        // before the tensor is moved or read.
        let data: &mut [f32] = unsafe { std::slice::from_raw_parts_mut(images.data_ptr() as *mut f32, views * 3 * hw) };
        let table = normalisation_table();
        let band = workers.band_rows(views * height);
        let mut planes = data.chunks_mut(hw);
        let mut color_views = colors.chunks_mut(hw * 3);
        let mut tasks: Vec<Task> = Vec::new();
        for (img, plan) in lasts.iter().zip(&plans) {
            let (img, left, top) = (*img, plan.left, plan.top);
            let (r, g, b) = (planes.next().unwrap(), planes.next().unwrap(), planes.next().unwrap());
            let c = color_views.next().unwrap();
            let bands = r
                .chunks_mut(band * width)
                .zip(g.chunks_mut(band * width))
                .zip(b.chunks_mut(band * width))
                .zip(c.chunks_mut(band * width * 3));
            for (i, (((r, g), b), c)) in bands.enumerate() {
                tasks.push(Box::new(move || {
                    let y0 = top + i * band;
                    for (k, ((r, g), b)) in
                        r.chunks_exact_mut(width).zip(g.chunks_exact_mut(width)).zip(b.chunks_exact_mut(width)).enumerate()
                    {
                        let row = &img.data[(y0 + k) * img.stride + left * 3..][..width * 3];
                        c[k * width * 3..][..width * 3].copy_from_slice(row);
                        for (x, px) in row.chunks_exact(3).enumerate() {
                            r[x] = table[0][px[0] as usize];
                            g[x] = table[1][px[1] as usize];
                            b[x] = table[2][px[2] as usize];
                        }
                    }
                }));
            }
        }
        workers.run(tasks);
    }
    let grid_changes = plans.into_iter().map(|p| p.changes).collect();
    Ok(Processed { images, height: height as u32, width: width as u32, grid_changes, colors: Some(colors) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_processed_size_is_bounded_before_anything_is_allocated() {
        // D2: a 1x60000 image at a lower-bound resize to 140 asks for 140 x 8,400,000 pixels.
        for (w, h, res, method) in [
            (1, 60000, 140, ResizeMethod::LowerBoundResize),
            (60000, 1, 140, ResizeMethod::LowerBoundCrop),
            (3, 4000, 140, ResizeMethod::LowerBoundResize),
            (16, 9, 4096, ResizeMethod::LowerBoundResize),
        ] {
            let err = ViewPlan::new(w, h, res, method).err().expect("refused");
            assert!(err.to_string().contains("DA3_MAX_PROCESSED_PIXELS"), "{err}");
        }
        // The largest legal requests still plan: a square at the largest process_res; and an
        // upper-bound 1x60000 is too small. (Their resize tables take minutes to build under
        // miri, which checks the refusals from the sizes only.)
        if !cfg!(miri) {
            let plan = ViewPlan::new(200, 200, 4096, ResizeMethod::UpperBoundResize).unwrap();
            assert_eq!((plan.out_w, plan.out_h), (4102, 4102));
            let plan = ViewPlan::new(4000, 3000, 4096, ResizeMethod::UpperBoundCrop).unwrap();
            assert_eq!((plan.out_w, plan.out_h), (4088, 3066));
            assert!(ViewPlan::new(1, 60000, 140, ResizeMethod::UpperBoundResize).is_err()); // 0 x 140: too small
        }
    }

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

    fn options(process_res: u32, resize_method: ResizeMethod) -> PreprocessOptions {
        PreprocessOptions { process_res, resize_method }
    }

    #[test]
    #[cfg_attr(miri, ignore = "libtorch (FFI)")]
    fn intrinsics_follow_resize_and_crop() {
        let k = [1200.0f32, 0.5, 640.0, 0.0, 1100.0, 360.0, 0.0, 0.0, 1.0];
        // 1280x720 -> 504x284 (longest side) -> 504x280 (nearest multiple of 14).
        let p = process_views(&[grey(1280, 720)], &options(504, ResizeMethod::UpperBoundResize), 2).unwrap();
        assert_eq!((p.width, p.height), (504, 280));
        let got = adjust_intrinsics(&k, &p.grid_changes[0]);
        let (sx, sy) = (504.0 / 1280.0, (284.0 / 720.0) * (280.0 / 284.0));
        let want = [1200.0 * sx, 0.5 * sx, 640.0 * sx, 0.0, 1100.0 * sy, 360.0 * sy, 0.0, 0.0, 1.0];
        for (g, w) in got.iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-3, "{got:?} vs {want:?}");
        }
        // Crop method: 1280x720 -> 504x284, then a centre crop to 504x280 moves cy by 2.
        let p = process_views(&[grey(1280, 720)], &options(504, ResizeMethod::UpperBoundCrop), 2).unwrap();
        assert_eq!((p.width, p.height), (504, 280));
        let got = adjust_intrinsics(&k, &p.grid_changes[0]);
        let s = 504.0 / 1280.0;
        assert!((got[0] as f64 - 1200.0 * s).abs() < 1e-3 && (got[4] as f64 - 1100.0 * 284.0 / 720.0).abs() < 1e-3);
        assert!((got[2] as f64 - 640.0 * s).abs() < 1e-3);
        assert!((got[5] as f64 - (360.0 * 284.0 / 720.0 - 2.0)).abs() < 1e-3);
    }

    #[test]
    #[cfg_attr(miri, ignore = "libtorch (FFI)")]
    fn mixed_sizes_shift_the_principal_point_of_the_larger_views() {
        // 640x480 -> 504x378 -> 504x378; 500x333 -> 504x336 -> 504x336. Unified to 504x336:
        // the first view loses (378 - 336) / 2 = 21 rows at the top.
        let p = process_views(&[grey(640, 480), grey(500, 333)], &options(504, ResizeMethod::UpperBoundResize), 2).unwrap();
        assert_eq!((p.width, p.height), (504, 336));
        let k = [500.0f32, 0.0, 320.0, 0.0, 500.0, 240.0, 0.0, 0.0, 1.0];
        let first = adjust_intrinsics(&k, &p.grid_changes[0]);
        let second = adjust_intrinsics(&k, &p.grid_changes[1]);
        assert!((first[5] as f64 - (240.0 * 378.0 / 480.0 - 21.0)).abs() < 1e-3, "{first:?}");
        assert!((second[5] as f64 - 240.0 * 336.0 / 333.0).abs() < 1e-3, "{second:?}");
        assert_eq!(p.grid_changes[1].last(), Some(&GridChange::Crop { left: 0, top: 0 }));
    }

    /// Deterministic noise, so that resize rounding and channel order both matter.
    fn noise(width: u32, height: u32, seed: u32) -> RgbImage {
        let mut state = seed.wrapping_mul(2_654_435_761) | 1;
        let data = (0..width * height * 3)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state >> 11) as u8
            })
            .collect();
        RgbImage { width, height, data }
    }

    #[test]
    #[cfg_attr(miri, ignore = "libtorch (FFI)")]
    fn every_pixel_format_and_stride_gives_the_packed_rgb_result() {
        // Mixed sizes (a downscale, an enlargement, one that needs no resize) and both methods.
        let images = [noise(640, 480, 1), noise(200, 150, 2), noise(504, 378, 3)];
        for method in [ResizeMethod::UpperBoundResize, ResizeMethod::LowerBoundCrop] {
            let opts = options(504, method);
            let want = process_views(&images, &opts, 2).unwrap();
            for format in [PixelFormat::Rgb8, PixelFormat::Rgba8, PixelFormat::Bgr8, PixelFormat::Bgra8] {
                let bpp = format.bytes_per_pixel();
                let buffers: Vec<(Vec<u8>, usize)> = images
                    .iter()
                    .map(|img| {
                        let stride = img.width as usize * bpp + 7;
                        let mut buf = vec![0x5A; stride * img.height as usize];
                        for (i, px) in img.data.chunks_exact(3).enumerate() {
                            let (y, x) = (i / img.width as usize, i % img.width as usize);
                            let p = &mut buf[y * stride + x * bpp..][..bpp];
                            let (r, g, b) = (px[0], px[1], px[2]);
                            match format {
                                PixelFormat::Rgb8 => p.copy_from_slice(&[r, g, b]),
                                PixelFormat::Rgba8 => p.copy_from_slice(&[r, g, b, 9]),
                                PixelFormat::Bgr8 => p.copy_from_slice(&[b, g, r]),
                                PixelFormat::Bgra8 => p.copy_from_slice(&[b, g, r, 9]),
                            }
                        }
                        (buf, stride)
                    })
                    .collect();
                let views: Vec<ImageView> = buffers
                    .iter()
                    .zip(&images)
                    .map(|((buf, stride), img)| ImageView::new(buf, img.width, img.height, *stride, format).unwrap())
                    .collect();
                let got = process_image_views(&views, &opts, 2).unwrap();
                assert_eq!((got.width, got.height), (want.width, want.height));
                assert_eq!(got.grid_changes, want.grid_changes);
                assert!(got.images.equal(&want.images), "{format:?} {method:?}");
                assert_eq!(got.colors, want.colors);
                // The bytes kept are the bytes normalised (mixed sizes: unified by centre crops).
                assert_eq!(want.colors.as_deref(), Some(&to_rgb8(&want.images).unwrap()[..]));
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "libtorch (FFI)")]
    fn normalisation_is_torchvision_in_float32() {
        let img = RgbImage { width: 14, height: 14, data: (0..14 * 14 * 3).map(|i| (i * 7 % 256) as u8).collect() };
        let p = process_views(std::slice::from_ref(&img), &options(14, ResizeMethod::UpperBoundResize), 2).unwrap();
        let got = Vec::<f32>::try_from(&p.images.reshape([-1])).unwrap();
        for (i, px) in img.data.chunks_exact(3).enumerate() {
            for c in 0..3 {
                let want = (px[c] as f32 / 255.0 - MEAN[c]) / STD[c];
                assert_eq!(got[c * 196 + i].to_bits(), want.to_bits());
            }
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "libtorch (FFI)")]
    fn rgb8_recovers_every_byte_from_the_normalised_input() {
        let img = noise(32, 28, 9);
        let p = process_views(std::slice::from_ref(&img), &options(28, ResizeMethod::UpperBoundCrop), 1).unwrap();
        assert_eq!((p.width, p.height), (28, 14));
        let back = to_rgb8(&p.images).unwrap();
        let processed = process_one(&img, 28, ResizeMethod::UpperBoundCrop).unwrap();
        assert_eq!(back, processed.data);
        assert_eq!(p.colors.as_deref(), Some(&processed.data[..]));
        let table = normalisation_table();
        for c in 0..3 {
            for v in 0..=255u8 {
                assert_eq!(level_of(table[c][v as usize], c), v);
            }
        }
        assert_eq!((level_of(f32::NAN, 0), level_of(100.0, 1), level_of(-100.0, 2)), (0, 255, 0));
    }

    #[test]
    fn a_short_buffer_is_an_error_not_a_panic() {
        let img = RgbImage { width: 10, height: 10, data: vec![0; 299] };
        assert!(matches!(process_views(&[img], &options(504, ResizeMethod::UpperBoundResize), 2), Err(Error::InvalidArgument(_))));
    }
}
