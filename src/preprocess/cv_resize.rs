//! Bit-exact, dependency-free ports of OpenCV's `cv::resize` for packed RGB8
//! images (`H x W x 3`, row-major, no padding) with `INTER_AREA` (downscaling)
//! and `INTER_CUBIC` (upscaling).
//!
//! Reference: `modules/imgproc/src/resize.cpp` of OpenCV 5.0.0, as shipped in
//! `opencv-python-headless==5.0.0.93` (x86_64 wheel: SSE3 baseline, IPP on).
//! Verified with `tests/oracle/check_cv_resize.py` (max abs difference 0).
//!
//! What is reproduced is OpenCV's *own* code path, including the places where
//! its SIMD kernels round differently from its scalar fallbacks (the outputs of
//! those differ, so both have to be mimicked per element):
//! * `INTER_AREA`, integer ratios (`resizeAreaFast_`): 2x2 blocks use
//!   `(sum + 2) >> 2`, other block sizes `cvRound(sum * (1.f / area))`.
//! * `INTER_AREA`, other ratios (`resizeArea_`): `computeResizeAreaTab`
//!   weights, `f32` accumulation in OpenCV's order, `cvRound` + saturation.
//! * `INTER_CUBIC` (`resizeGeneric_` + `HResizeCubic` + `VResizeCubic`):
//!   `A = -0.75` weights computed in `f32`, rounded one by one to Q11 (OpenCV
//!   5.0 applies no sum correction here), exact `i32` horizontal pass, and a
//!   vertical pass that is `f32` for the first `floor(3*dst_w / 8) * 8` bytes of
//!   every row (`VResizeCubicVec_32s8u`, 128-bit SSE lanes) and Q22 integer
//!   rounding for the remaining tail (`FixedPtCast<int, uchar, 22>`).
//!
//! **IPP caveat (`INTER_CUBIC` only).** The x86_64 opencv-python wheels are
//! built with Intel IPP, and by default `cv2.resize(..., INTER_CUBIC)` on 8-bit
//! images is handed to `ippiResizeCubic` (closed source) instead of the code
//! above; its output differs from OpenCV's own algorithm by +-1 on a few percent
//! of the bytes. This module matches `cv2.resize` with `cv2.ipp.setUseIPP(False)`,
//! which is also what OpenCV builds without IPP (e.g. ARM wheels) produce.
//! `INTER_AREA` is never delegated to IPP (it is "not exact" there), so
//! `resize_area_rgb8` matches default `cv2.resize` bit for bit.

const CN: usize = 3;

/// One resize of a packed RGB8 size to another, planned once (OpenCV's tables), then run on
/// any band of output rows: `Resize::rows` computes each output row from the source alone,
/// so bands computed apart (e.g. on several threads) give the bytes of one whole-image call.
#[derive(Clone, Debug)]
pub struct Resize {
    src_w: usize,
    src_h: usize,
    dst_w: usize,
    dst_h: usize,
    kernel: Kernel,
}

#[derive(Clone, Debug)]
enum Kernel {
    /// An empty source: zeros, as the whole-image functions have always returned.
    Zeros,
    /// Same size: cv::resize copies.
    Copy,
    AreaFast2x2,
    AreaFastInt { ix: usize, iy: usize },
    AreaGeneric { xtaps: Vec<(usize, f32)>, xgroups: Vec<(usize, usize)>, ytab: Vec<AreaTap>, ygroups: Vec<(usize, usize)> },
    Cubic { xofs: Vec<[usize; 4]>, xcoef: Vec<[i32; 4]>, yofs: Vec<[usize; 4]>, ycoef: Vec<[i32; 4]> },
}

impl Resize {
    /// `cv2.resize(..., INTER_AREA)` from `src_w x src_h` to `dst_w x dst_h` (see
    /// `resize_area_rgb8` for the requirement that no axis grows).
    pub fn area(src_w: usize, src_h: usize, dst_w: usize, dst_h: usize) -> Resize {
        debug_assert!(dst_w <= src_w && dst_h <= src_h, "INTER_AREA port only supports downscaling");
        let kernel = if src_w == 0 || src_h == 0 || dst_w == 0 || dst_h == 0 {
            Kernel::Zeros
        } else if dst_w == src_w && dst_h == src_h {
            Kernel::Copy
        } else {
            area_kernel(src_w, src_h, dst_w, dst_h)
        };
        Resize { src_w, src_h, dst_w, dst_h, kernel }
    }

    /// `cv2.resize(..., INTER_CUBIC)` (OpenCV's own code, IPP off; see `resize_cubic_rgb8`).
    pub fn cubic(src_w: usize, src_h: usize, dst_w: usize, dst_h: usize) -> Resize {
        let kernel = if src_w == 0 || src_h == 0 || dst_w == 0 || dst_h == 0 {
            Kernel::Zeros
        } else if dst_w == src_w && dst_h == src_h {
            Kernel::Copy
        } else {
            let (xofs, xcoef) = cubic_tab(src_w, dst_w, CN);
            let (yofs, ycoef) = cubic_tab(src_h, dst_h, 1);
            Kernel::Cubic { xofs, xcoef, yofs, ycoef }
        };
        Resize { src_w, src_h, dst_w, dst_h, kernel }
    }

    pub fn dst_width(&self) -> usize {
        self.dst_w
    }

    pub fn dst_height(&self) -> usize {
        self.dst_h
    }

    /// Writes output rows `first_row .. first_row + dst.len() / (3 * dst_width)` into `dst`
    /// (packed). `src` holds the source rows `stride` bytes apart (>= 3 * src_width).
    pub fn rows(&self, src: &[u8], stride: usize, first_row: usize, dst: &mut [u8]) {
        let width = self.dst_w * CN;
        if width == 0 || dst.is_empty() {
            return;
        }
        debug_assert!(dst.len() % width == 0 && first_row + dst.len() / width <= self.dst_h);
        if let Kernel::Zeros = self.kernel {
            dst.fill(0);
            return;
        }
        debug_assert!(stride >= self.src_w * CN && src.len() >= stride * (self.src_h - 1) + self.src_w * CN);
        match &self.kernel {
            Kernel::Zeros => unreachable!("handled above"),
            Kernel::Copy => {
                for (i, d) in dst.chunks_exact_mut(width).enumerate() {
                    d.copy_from_slice(&src[(first_row + i) * stride..][..width]);
                }
            }
            Kernel::AreaFast2x2 => area_fast_2x2(src, stride, self.src_w, first_row, dst, width),
            &Kernel::AreaFastInt { ix, iy } => area_fast_int(src, stride, self.src_w, first_row, dst, width, ix, iy),
            Kernel::AreaGeneric { xtaps, xgroups, ytab, ygroups } => {
                area_generic_rows(src, stride, self.src_w, first_row, dst, width, xtaps, xgroups, ytab, ygroups)
            }
            Kernel::Cubic { xofs, xcoef, yofs, ycoef } => {
                cubic_rows(src, stride, self.src_w, first_row, dst, width, xofs, xcoef, yofs, ycoef)
            }
        }
    }

    /// The whole image at once.
    pub fn run(&self, src: &[u8], stride: usize) -> Vec<u8> {
        let mut dst = vec![0u8; self.dst_w * self.dst_h * CN];
        self.rows(src, stride, 0, &mut dst);
        dst
    }
}

/// A resize as per-axis tap tables and OpenCV's arithmetic, for an implementation in tensor
/// operations (`preprocess::tensor_path`) that gives `Resize::rows`' bytes: horizontal pass
/// first, taps added in OpenCV's order, float32 where OpenCV computes in float32.
#[derive(Clone, Debug)]
pub struct Separable {
    pub x: AxisTaps,
    pub y: AxisTaps,
    pub arithmetic: Arithmetic,
}

/// Per output index along one axis, `taps` source indices and weights (`dst * taps` entries,
/// row-major) in accumulation order; unused slots have weight 0 and index 0.
#[derive(Clone, Debug, PartialEq)]
pub struct AxisTaps {
    pub taps: usize,
    pub index: Vec<i64>,
    pub weight: Vec<f64>,
}

impl AxisTaps {
    /// From each output index's `(source index, weight)` list.
    fn from_lists(lists: Vec<Vec<(usize, f64)>>) -> AxisTaps {
        let taps = lists.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let mut index = vec![0i64; lists.len() * taps];
        let mut weight = vec![0f64; lists.len() * taps];
        for (d, list) in lists.iter().enumerate() {
            for (k, &(i, w)) in list.iter().enumerate() {
                index[d * taps + k] = i as i64;
                weight[d * taps + k] = w;
            }
        }
        AxisTaps { taps, index, weight }
    }

    fn blocks(dst: usize, size: usize) -> AxisTaps {
        AxisTaps::from_lists((0..dst).map(|d| (0..size).map(|k| (d * size + k, 1.0)).collect()).collect())
    }
}

/// How OpenCV computes a resize's sums and turns them into bytes (then saturated to 0..=255).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arithmetic {
    /// Integer sums (exact in any order) that are the bytes: a copy.
    Copy,
    /// Integer sums of 2x2 blocks, `(s + 2) >> 2`.
    Block2x2,
    /// Integer sums of other blocks, cvRound of `float32(s) * scale` in float32.
    BlockScaled { scale: f32 },
    /// Non-integer area ratios: float32 sums in the tables' order (`acc += s * alpha`
    /// horizontally, then `sum = beta * row`, `sum += beta * row`), cvRound.
    AreaF32,
    /// Cubic: exact integer rows with Q11 weights, then vertically for the first
    /// `vector_bytes` bytes of a row float32 `t = v3*b3; t = v2*b2 + t; ...` with
    /// `b = float32(q) * 2^-22` and cvRound, for the rest `(sum + 2^21) >> 22` exactly.
    Cubic { vector_bytes: usize },
}

impl Resize {
    /// This resize's taps and arithmetic (see `Separable`).
    pub fn separable(&self) -> Separable {
        let (dw, dh) = (self.dst_w, self.dst_h);
        let identity = |n: usize| AxisTaps::from_lists((0..n).map(|d| vec![(d, 1.0)]).collect());
        match &self.kernel {
            Kernel::Zeros => {
                let zero = |n: usize| AxisTaps::from_lists((0..n).map(|_| vec![(0, 0.0)]).collect());
                Separable { x: zero(dw), y: zero(dh), arithmetic: Arithmetic::Copy }
            }
            Kernel::Copy => Separable { x: identity(dw), y: identity(dh), arithmetic: Arithmetic::Copy },
            Kernel::AreaFast2x2 => Separable { x: AxisTaps::blocks(dw, 2), y: AxisTaps::blocks(dh, 2), arithmetic: Arithmetic::Block2x2 },
            &Kernel::AreaFastInt { ix, iy } => Separable {
                x: AxisTaps::blocks(dw, ix),
                y: AxisTaps::blocks(dh, iy),
                arithmetic: Arithmetic::BlockScaled { scale: 1.0f32 / (ix * iy) as i32 as f32 },
            },
            Kernel::AreaGeneric { xtaps, xgroups, ytab, ygroups } => Separable {
                x: AxisTaps::from_lists(
                    xgroups.iter().map(|&(x0, x1)| xtaps[x0..x1].iter().map(|&(si, a)| (si / CN, a as f64)).collect()).collect(),
                ),
                y: AxisTaps::from_lists(
                    ygroups.iter().map(|&(y0, y1)| ytab[y0..y1].iter().map(|t| (t.si, t.alpha as f64)).collect()).collect(),
                ),
                arithmetic: Arithmetic::AreaF32,
            },
            Kernel::Cubic { xofs, xcoef, yofs, ycoef } => {
                let lists = |ofs: &[[usize; 4]], coef: &[[i32; 4]], stride: usize| {
                    ofs.iter().zip(coef).map(|(o, c)| (0..4).map(|k| (o[k] / stride, c[k] as f64)).collect()).collect()
                };
                Separable {
                    x: AxisTaps::from_lists(lists(xofs, xcoef, CN)),
                    y: AxisTaps::from_lists(lists(yofs, ycoef, 1)),
                    arithmetic: Arithmetic::Cubic { vector_bytes: dw * CN / 8 * 8 },
                }
            }
        }
    }
}

/// OpenCV `cv2.resize(src, (dst_w, dst_h), interpolation=cv2.INTER_AREA)` on packed RGB8.
///
/// Requires `dst_w <= src_w && dst_h <= src_h` (true area averaging; OpenCV
/// switches to a bilinear variant when an axis grows). If that is violated in a
/// release build, the area tables are still used (a box filter that degrades to
/// nearest neighbour): sane output, but not OpenCV's.
pub fn resize_area_rgb8(
    src: &[u8],
    src_w: usize,
    src_h: usize,
    dst_w: usize,
    dst_h: usize,
) -> Vec<u8> {
    debug_assert_eq!(src.len(), src_w * src_h * CN);
    Resize::area(src_w, src_h, dst_w, dst_h).run(src, src_w * CN)
}

/// Picks OpenCV's INTER_AREA code path for a non-trivial downscale.
fn area_kernel(src_w: usize, src_h: usize, dst_w: usize, dst_h: usize) -> Kernel {
    // OpenCV derives the scale as 1 / (dst/src) in f64, not src/dst; the two can
    // differ in the last bit, which decides between the fast and generic paths.
    let scale_x = 1.0 / (dst_w as f64 / src_w as f64);
    let scale_y = 1.0 / (dst_h as f64 / src_h as f64);
    let ix = scale_x.round_ties_even();
    let iy = scale_y.round_ties_even();
    let is_area_fast = (scale_x - ix).abs() < f64::EPSILON && (scale_y - iy).abs() < f64::EPSILON;
    if is_area_fast {
        let (ix, iy) = (ix as usize, iy as usize);
        // With an exact integer ratio this always holds; the check only keeps
        // release builds from indexing out of bounds on nonsensical inputs.
        if ix >= 1 && iy >= 1 && dst_w * ix == src_w && dst_h * iy == src_h {
            return if ix == 2 && iy == 2 { Kernel::AreaFast2x2 } else { Kernel::AreaFastInt { ix, iy } };
        }
    }
    let xtab = area_tab(src_w, dst_w, scale_x);
    let ytab = area_tab(src_h, dst_h, scale_y);
    let xgroups = group_by_dst(&xtab, dst_w);
    let ygroups = group_by_dst(&ytab, dst_h);
    // Byte offsets, to keep index arithmetic out of the hot loop.
    let xtaps = xtab.iter().map(|t| (t.si * CN, t.alpha)).collect();
    Kernel::AreaGeneric { xtaps, xgroups, ytab, ygroups }
}

/// `resizeAreaFast_` for 2x2 blocks. They run through ResizeAreaFastVec (SIMD + its scalar
/// tail), which rounds half up with `(s + 2) >> 2`, unlike the float path of other blocks.
fn area_fast_2x2(src: &[u8], stride: usize, src_w: usize, first_row: usize, dst: &mut [u8], width: usize) {
    let dst_w = width / CN;
    for (i, d) in dst.chunks_exact_mut(width).enumerate() {
        let dy = first_row + i;
        let r0 = &src[2 * dy * stride..][..src_w * CN];
        let r1 = &src[(2 * dy + 1) * stride..][..src_w * CN];
        for dx in 0..dst_w {
            let s = 6 * dx;
            for c in 0..CN {
                let sum = r0[s + c] as u32 + r0[s + 3 + c] as u32 + r1[s + c] as u32 + r1[s + 3 + c] as u32;
                d[dx * CN + c] = ((sum + 2) >> 2) as u8;
            }
        }
    }
}

/// `resizeAreaFast_` for other integer ratios `ix x iy`: exact integer sum, then
/// `sum * (1.f/area)` in f32 and cvRound (ties to even). 1/area is inexact for non powers of
/// two, so the f32 product must be formed exactly like OpenCV does.
#[allow(clippy::too_many_arguments)]
fn area_fast_int(src: &[u8], stride: usize, src_w: usize, first_row: usize, dst: &mut [u8], width: usize, ix: usize, iy: usize) {
    let dst_w = width / CN;
    let sstride = src_w * CN;
    let area = (ix * iy) as i32;
    let scale = 1.0f32 / area as f32;
    let mut colsum = vec![0u32; sstride];
    for (i, d) in dst.chunks_exact_mut(width).enumerate() {
        let dy = first_row + i;
        colsum.fill(0);
        for sy in dy * iy..(dy + 1) * iy {
            let row = &src[sy * stride..][..sstride];
            for (a, &v) in colsum.iter_mut().zip(row) {
                *a += v as u32;
            }
        }
        for dx in 0..dst_w {
            for c in 0..CN {
                let mut sum = 0u32;
                for k in 0..ix {
                    sum += colsum[(dx * ix + k) * CN + c];
                }
                d[dx * CN + c] = sat_u8_f32(sum as i32 as f32 * scale);
            }
        }
    }
}

/// One entry of OpenCV's `DecimateAlpha` table: source index, destination index, weight.
#[derive(Clone, Copy, Debug)]
struct AreaTap {
    si: usize,
    di: usize,
    alpha: f32,
}

/// `computeResizeAreaTab` (with `cn == 1`; callers scale indices). Weights are
/// computed in f64 and stored as f32, and the 1e-3 thresholds drop slivers,
/// exactly as OpenCV does; the table order is the accumulation order.
fn area_tab(ssize: usize, dsize: usize, scale: f64) -> Vec<AreaTap> {
    let mut tab = Vec::with_capacity(ssize * 2 + dsize);
    let ssize_i = ssize as i64;
    for dx in 0..dsize {
        let fsx1 = dx as f64 * scale;
        let fsx2 = fsx1 + scale;
        let cell_width = scale.min(ssize as f64 - fsx1);
        let mut sx1 = fsx1.ceil() as i64;
        let mut sx2 = fsx2.floor() as i64;
        sx2 = sx2.min(ssize_i - 1);
        sx1 = sx1.min(sx2);
        if sx1 as f64 - fsx1 > 1e-3 {
            tab.push(AreaTap {
                si: (sx1 - 1).max(0) as usize,
                di: dx,
                alpha: ((sx1 as f64 - fsx1) / cell_width) as f32,
            });
        }
        for sx in sx1.max(0)..sx2 {
            tab.push(AreaTap {
                si: sx as usize,
                di: dx,
                alpha: (1.0 / cell_width) as f32,
            });
        }
        if fsx2 - sx2 as f64 > 1e-3 {
            let w = (fsx2 - sx2 as f64).min(1.0).min(cell_width) / cell_width;
            tab.push(AreaTap {
                si: sx2.max(0) as usize,
                di: dx,
                alpha: w as f32,
            });
        }
    }
    tab
}

/// `[start, end)` ranges of `tab` sharing one destination index (the table is sorted by it).
fn group_by_dst(tab: &[AreaTap], dsize: usize) -> Vec<(usize, usize)> {
    let mut ranges = vec![(0, 0); dsize];
    let mut k = 0;
    while k < tab.len() {
        let d = tab[k].di;
        let start = k;
        while k < tab.len() && tab[k].di == d {
            k += 1;
        }
        if d < dsize {
            ranges[d] = (start, k);
        }
    }
    ranges
}

/// `resizeArea_` / `ResizeArea_Invoker<uchar, float>` for non-integer ratios, output rows
/// `first_row..` of `dst`.
#[allow(clippy::too_many_arguments)]
fn area_generic_rows(
    src: &[u8],
    stride: usize,
    src_w: usize,
    first_row: usize,
    dst: &mut [u8],
    width: usize,
    xtaps: &[(usize, f32)],
    xgroups: &[(usize, usize)],
    ytab: &[AreaTap],
    ygroups: &[(usize, usize)],
) {
    let sstride = src_w * CN;
    let mut buf = vec![0f32; width];
    let mut sum = vec![0f32; width];
    // A source row straddling two output rows is filtered once; `buf` depends only on it.
    let mut buf_row = usize::MAX;
    for (i, d) in dst.chunks_exact_mut(width).enumerate() {
        let (y0, y1) = ygroups[first_row + i];
        if y0 == y1 {
            sum.fill(0.0); // cannot happen for valid scales; keeps stale rows out
        }
        for (j, t) in ytab[y0..y1].iter().enumerate() {
            let (sy, beta) = (t.si, t.alpha);
            if buf_row != sy {
                let row = &src[sy * stride..][..sstride];
                // OpenCV adds the taps of an output pixel one by one in f32
                // (buf = buf + S*alpha, starting from 0); keeping the running sum in
                // registers per pixel gives the same values without store/load chains.
                for (b, &(x0, x1)) in buf.chunks_exact_mut(CN).zip(xgroups) {
                    let mut acc = [0f32; CN];
                    for &(si, alpha) in &xtaps[x0..x1] {
                        let s: &[u8; CN] = row[si..][..CN].try_into().unwrap();
                        for c in 0..CN {
                            acc[c] += s[c] as f32 * alpha;
                        }
                    }
                    b.copy_from_slice(&acc);
                }
                buf_row = sy;
            }
            if j == 0 {
                for (s, &b) in sum.iter_mut().zip(&buf) {
                    *s = beta * b;
                }
            } else {
                for (s, &b) in sum.iter_mut().zip(&buf) {
                    *s += beta * b;
                }
            }
        }
        for (d, &s) in d.iter_mut().zip(&sum) {
            *d = sat_u8_f32(s);
        }
    }
}

/// OpenCV `cv2.resize(src, (dst_w, dst_h), interpolation=cv2.INTER_CUBIC)` on packed RGB8.
///
/// Matches OpenCV's own implementation (identical to `cv2.resize` with IPP disabled;
/// see the module docs for the IPP caveat). Any size combination works, including
/// shrinking one axis; there is no antialiasing, as in OpenCV.
pub fn resize_cubic_rgb8(
    src: &[u8],
    src_w: usize,
    src_h: usize,
    dst_w: usize,
    dst_h: usize,
) -> Vec<u8> {
    debug_assert_eq!(src.len(), src_w * src_h * CN);
    Resize::cubic(src_w, src_h, dst_w, dst_h).run(src, src_w * CN)
}

/// `resizeGeneric_` + `HResizeCubic` + `VResizeCubic`, output rows `first_row..` of `dst`.
#[allow(clippy::too_many_arguments)]
fn cubic_rows(
    src: &[u8],
    stride: usize,
    src_w: usize,
    first_row: usize,
    dst: &mut [u8],
    width: usize,
    xofs: &[[usize; 4]],
    xcoef: &[[i32; 4]],
    yofs: &[[usize; 4]],
    ycoef: &[[i32; 4]],
) {
    let sstride = src_w * CN;
    // VResizeCubicVec_32s8u handles 8 bytes per step (v_int16x8); the rest of the
    // row goes through the integer scalar loop, which rounds differently.
    let simd_end = width / 8 * 8;
    // Ring of horizontally filtered rows keyed by source row (as OpenCV reuses them).
    let mut rows: [Vec<i32>; 4] = std::array::from_fn(|_| vec![0i32; width]);
    let mut row_id = [usize::MAX; 4];
    for (i, d) in dst.chunks_exact_mut(width).enumerate() {
        let dy = first_row + i;
        let need = yofs[dy];
        let mut slot = [0usize; 4];
        for k in 0..4 {
            let sy = need[k];
            if let Some(s) = row_id.iter().position(|&r| r == sy) {
                slot[k] = s;
                continue;
            }
            // Evict a slot whose row is not needed for this output row.
            let s = (0..4).find(|&s| !need.contains(&row_id[s])).expect("4 slots suffice for 4 rows");
            hresize_cubic(&src[sy * stride..][..sstride], xofs, xcoef, &mut rows[s]);
            row_id[s] = sy;
            slot[k] = s;
        }
        let (s0, s1, s2, s3) = (&rows[slot[0]], &rows[slot[1]], &rows[slot[2]], &rows[slot[3]]);
        let b = ycoef[dy];

        // SIMD part: f32 multiply-adds (no FMA at the SSE3 baseline), evaluated as
        // S0*b0 + (S1*b1 + (S2*b2 + S3*b3)), then round-to-nearest-even.
        let scale = 1.0f32 / (2048.0 * 2048.0);
        let bf = [b[0] as f32 * scale, b[1] as f32 * scale, b[2] as f32 * scale, b[3] as f32 * scale];
        let n = simd_end;
        for ((((o, &v0), &v1), &v2), &v3) in d[..n].iter_mut().zip(&s0[..n]).zip(&s1[..n]).zip(&s2[..n]).zip(&s3[..n]) {
            let t = v3 as f32 * bf[3];
            let t = v2 as f32 * bf[2] + t;
            let t = v1 as f32 * bf[1] + t;
            let t = v0 as f32 * bf[0] + t;
            *o = sat_u8_f32(t);
        }
        // Scalar tail: Q22 with round-half-up (`(v + (1 << 21)) >> 22`).
        let bi = b.map(i64::from);
        for x in simd_end..width {
            let v = s0[x] as i64 * bi[0] + s1[x] as i64 * bi[1] + s2[x] as i64 * bi[2] + s3[x] as i64 * bi[3];
            d[x] = ((v + (1 << 21)) >> 22).clamp(0, 255) as u8;
        }
    }
}

/// `HResizeCubic<uchar, int, short>`: exact integer 4-tap filter. Indices are
/// pre-clamped to the image (OpenCV clamps out-of-range taps to the edge pixel).
fn hresize_cubic(row: &[u8], xofs: &[[usize; 4]], xcoef: &[[i32; 4]], out: &mut [i32]) {
    for ((o, ofs), a) in out.chunks_exact_mut(CN).zip(xofs).zip(xcoef) {
        let o: &mut [i32; CN] = o.try_into().unwrap();
        if ofs[3] == ofs[0] + 3 * CN {
            // Interior: the 4 taps are adjacent pixels, one 12-byte window.
            let p: &[u8; 4 * CN] = row[ofs[0]..][..4 * CN].try_into().unwrap();
            for c in 0..CN {
                o[c] = p[c] as i32 * a[0]
                    + p[CN + c] as i32 * a[1]
                    + p[2 * CN + c] as i32 * a[2]
                    + p[3 * CN + c] as i32 * a[3];
            }
        } else {
            let p0: &[u8; CN] = row[ofs[0]..][..CN].try_into().unwrap();
            let p1: &[u8; CN] = row[ofs[1]..][..CN].try_into().unwrap();
            let p2: &[u8; CN] = row[ofs[2]..][..CN].try_into().unwrap();
            let p3: &[u8; CN] = row[ofs[3]..][..CN].try_into().unwrap();
            for c in 0..CN {
                o[c] = p0[c] as i32 * a[0]
                    + p1[c] as i32 * a[1]
                    + p2[c] as i32 * a[2]
                    + p3[c] as i32 * a[3];
            }
        }
    }
}

/// Per output index: the 4 clamped source indices (times `stride`) and the Q11
/// weights, computed like `cv::hal::resize` does for `INTER_CUBIC` on 8-bit data.
fn cubic_tab(ssize: usize, dsize: usize, stride: usize) -> (Vec<[usize; 4]>, Vec<[i32; 4]>) {
    let scale = 1.0 / (dsize as f64 / ssize as f64);
    let last = ssize as i64 - 1;
    let mut ofs = Vec::with_capacity(dsize);
    let mut coef = Vec::with_capacity(dsize);
    for dx in 0..dsize {
        // Source position in f64, then narrowed to f32 before floor/fraction.
        let f = ((dx as f64 + 0.5) * scale - 0.5) as f32;
        let sx = f.floor();
        let fx = f - sx;
        let sx = sx as i64;
        let c = interpolate_cubic(fx);
        // saturate_cast<short>(c * 2048): each weight rounded on its own (ties to
        // even); their sum may be 2047..2049 and OpenCV keeps it that way.
        coef.push(c.map(|w| {
            (w * 2048.0)
                .round_ties_even()
                .clamp(i16::MIN as f32, i16::MAX as f32) as i32
        }));
        ofs.push([0i64, 1, 2, 3].map(|k| (sx - 1 + k).clamp(0, last) as usize * stride));
    }
    (ofs, coef)
}

/// OpenCV's `interpolateCubic` (Keys kernel, A = -0.75), same f32 operation order;
/// the last weight is `1 - others` so the float weights sum to one.
fn interpolate_cubic(x: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let c0 = ((A * (x + 1.0) - 5.0 * A) * (x + 1.0) + 8.0 * A) * (x + 1.0) - 4.0 * A;
    let c1 = ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let c2 = ((A + 2.0) * (1.0 - x) - (A + 3.0)) * (1.0 - x) * (1.0 - x) + 1.0;
    let c3 = 1.0 - c0 - c1 - c2;
    [c0, c1, c2, c3]
}

/// `saturate_cast<uchar>(float)`: cvRound (ties to even, like cvtps2dq) then clamp.
/// Clamping first is equivalent (rounding is monotone, the bounds are integers) and
/// lets the magic-number rounding below stay exact (it needs |v| < 2^22) and branch-free,
/// which keeps the loops vectorizable on a plain x86_64 target.
#[inline(always)]
fn sat_u8_f32(v: f32) -> u8 {
    const MAGIC: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer, ties to even
                                     // Written as compare+select so it lowers to maxps/minps (NaN maps to 0).
    let c = if v > 0.0 { v } else { 0.0 };
    let c = if c < 255.0 { c } else { 255.0 };
    // In [MAGIC, MAGIC + 255] the float's low mantissa byte is the integer itself.
    (c + MAGIC).to_bits() as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic test pattern (same formula as the generator used for the goldens:
    /// `(x*37 + y*59 + c*101 + (x*y % 7)*13) % 256`).
    fn pattern(w: usize, h: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    v.push(((x * 37 + y * 59 + c * 101 + (x * y % 7) * 13) % 256) as u8);
                }
            }
        }
        v
    }

    // Expected bytes from cv2.resize, opencv-python-headless 5.0.0.93 (CUBIC with
    // cv2.ipp.setUseIPP(False); AREA with default settings).

    #[test]
    fn golden_area_generic_7x5_to_3x2() {
        let want = [
            81, 138, 115, 118, 132, 130, 126, 139, 138, 167, 107, 113, 105, 148, 88, 174, 143, 127,
        ];
        assert_eq!(resize_area_rgb8(&pattern(7, 5), 7, 5, 3, 2), want);
    }

    #[test]
    fn golden_area_fast_2x2_8x6_to_4x3() {
        let want = [
            51, 152, 125, 138, 111, 84, 97, 134, 171, 98, 135, 108, 182, 91, 128, 107, 144, 117,
            91, 192, 101, 161, 134, 107, 121, 158, 131, 135, 108, 81, 107, 144, 181, 138, 111, 212,
        ];
        assert_eq!(resize_area_rgb8(&pattern(8, 6), 8, 6, 4, 3), want);
    }

    #[test]
    fn golden_area_fast_3x3_9x6_to_3x2() {
        let want = [
            109, 125, 112, 97, 141, 156, 111, 155, 114, 134, 150, 109, 117, 133, 120, 127, 114, 158,
        ];
        assert_eq!(resize_area_rgb8(&pattern(9, 6), 9, 6, 3, 2), want);
    }

    #[test]
    fn golden_area_height_only_6x4_to_6x3() {
        let want = [
            15, 116, 153, 55, 156, 193, 95, 132, 41, 136, 172, 82, 112, 213, 122, 152, 61, 162, 88,
            190, 34, 145, 118, 91, 202, 46, 148, 130, 103, 204, 13, 114, 215, 70, 170, 144, 162,
            71, 108, 235, 80, 181, 116, 153, 62, 56, 157, 66, 106, 207, 116, 111, 212, 57,
        ];
        assert_eq!(resize_area_rgb8(&pattern(6, 4), 6, 4, 6, 3), want);
    }

    #[test]
    fn golden_cubic_5x4_to_11x9() {
        // 33 bytes per row: the first 32 take the f32 (SIMD) path, the last one the Q22 path.
        let want = [
            0, 91, 219, 0, 99, 234, 13, 111, 255, 34, 137, 242, 48, 164, 121, 65, 194, 11, 79, 213,
            0, 94, 225, 40, 126, 246, 63, 154, 255, 77, 171, 255, 86, 3, 104, 168, 13, 115, 182,
            28, 137, 218, 51, 153, 200, 66, 150, 111, 85, 149, 31, 108, 163, 26, 125, 182, 63, 132,
            206, 88, 128, 222, 104, 127, 232, 114, 26, 124, 68, 36, 146, 80, 54, 194, 107, 79, 196,
            115, 95, 125, 87, 118, 59, 64, 166, 59, 74, 192, 96, 101, 151, 126, 131, 78, 149, 154,
            41, 162, 167, 58, 161, 0, 71, 175, 7, 91, 213, 27, 121, 191, 58, 143, 91, 84, 166, 1,
            112, 207, 0, 137, 215, 45, 157, 138, 74, 185, 32, 93, 204, 0, 104, 215, 82, 224, 4, 96,
            200, 17, 117, 162, 36, 155, 105, 77, 203, 51, 123, 226, 22, 172, 207, 42, 211, 154, 82,
            232, 77, 96, 245, 11, 91, 240, 0, 90, 239, 107, 245, 52, 122, 192, 67, 146, 93, 91,
            185, 24, 129, 239, 36, 159, 247, 82, 193, 173, 119, 232, 74, 144, 255, 23, 145, 255,
            20, 124, 235, 13, 116, 227, 139, 164, 85, 158, 131, 104, 195, 64, 141, 219, 33, 164,
            222, 73, 149, 189, 130, 135, 115, 156, 148, 46, 163, 167, 30, 170, 175, 59, 168, 173,
            70, 168, 173, 161, 48, 107, 184, 55, 130, 234, 64, 180, 238, 92, 183, 175, 131, 117,
            99, 163, 45, 59, 165, 24, 53, 157, 37, 72, 180, 62, 107, 210, 92, 125, 226, 107, 175,
            0, 121, 200, 16, 146, 255, 61, 203, 250, 118, 196, 153, 160, 102, 54, 183, 0, 28, 173,
            0, 52, 157, 0, 90, 188, 5, 132, 233, 50, 155, 255, 74,
        ];
        assert_eq!(resize_cubic_rgb8(&pattern(5, 4), 5, 4, 11, 9), want);
    }

    #[test]
    fn golden_cubic_6x2_to_4x5_mixed_axes() {
        let want = [
            0, 100, 240, 54, 177, 64, 117, 250, 57, 194, 74, 110, 12, 114, 201, 70, 154, 69, 126,
            219, 76, 166, 86, 134, 38, 143, 116, 104, 106, 79, 144, 150, 119, 106, 113, 185, 64,
            173, 31, 138, 57, 88, 162, 82, 161, 46, 139, 235, 75, 186, 0, 153, 34, 93, 171, 51,
            181, 19, 151, 255,
        ];
        assert_eq!(resize_cubic_rgb8(&pattern(6, 2), 6, 2, 4, 5), want);
    }

    #[test]
    fn area_rounding_quirks_match_opencv() {
        // 2x2 blocks round half up ((s + 2) >> 2): mean 0.5 -> 1.
        assert_eq!(
            resize_area_rgb8(&[1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0], 2, 2, 1, 1),
            [1, 1, 1]
        );
        // Other integer blocks use cvRound (ties to even): 0.5 -> 0, 1.5 -> 2.
        assert_eq!(resize_area_rgb8(&[1, 1, 1, 0, 0, 0], 2, 1, 1, 1), [0, 0, 0]);
        assert_eq!(resize_area_rgb8(&[3, 3, 3, 0, 0, 0], 2, 1, 1, 1), [2, 2, 2]);
    }

    #[test]
    fn uniform_stays_uniform() {
        let values: &[u8] = if cfg!(miri) { &[0, 77, 255] } else { &[0, 1, 77, 128, 254, 255] };
        for &v in values {
            let img = |w: usize, h: usize| vec![v; w * h * 3];
            // Under miri, smaller images with the same kinds of ratio.
            let area: &[(usize, usize, usize, usize)] = if cfg!(miri) {
                &[(17, 10, 7, 4), (14, 8, 14, 7), (9, 9, 3, 3), (10, 7, 7, 5), (8, 6, 4, 3)]
            } else {
                &[(1208, 680, 504, 284), (504, 284, 504, 280), (9, 9, 3, 3), (100, 37, 14, 5), (8, 6, 4, 3)]
            };
            for &(sw, sh, dw, dh) in area {
                assert!(
                    resize_area_rgb8(&img(sw, sh), sw, sh, dw, dh)
                        .iter()
                        .all(|&x| x == v),
                    "area {sw}x{sh}->{dw}x{dh} v={v}"
                );
            }
            let cubic: &[(usize, usize, usize, usize)] = if cfg!(miri) {
                &[(5, 4, 12, 9), (3, 3, 14, 14), (12, 9, 13, 8), (1, 1, 5, 7), (4, 6, 3, 9)]
            } else {
                &[(200, 150, 504, 378), (3, 3, 14, 14), (500, 300, 504, 294), (1, 1, 5, 7), (33, 50, 20, 80)]
            };
            for &(sw, sh, dw, dh) in cubic {
                assert!(
                    resize_cubic_rgb8(&img(sw, sh), sw, sh, dw, dh)
                        .iter()
                        .all(|&x| x == v),
                    "cubic {sw}x{sh}->{dw}x{dh} v={v}"
                );
            }
        }
    }

    #[test]
    fn row_bands_and_strides_give_the_whole_image_bytes() {
        // Every kernel: area 2x2, other integer blocks, generic ratios, cubic up and mixed.
        // Under miri (an interpreter) the same kinds of resize on smaller images.
        let cases: &[(usize, usize, usize, usize)] = if cfg!(miri) {
            &[(8, 6, 4, 3), (9, 6, 3, 2), (17, 13, 13, 10), (17, 10, 7, 4), (5, 4, 12, 9), (12, 9, 13, 8), (4, 6, 3, 9), (13, 7, 13, 7)]
        } else {
            &[
                (640, 480, 504, 378),
                (64, 48, 32, 24),
                (63, 45, 21, 15),
                (1208, 680, 504, 284),
                (200, 150, 504, 378),
                (500, 300, 504, 294),
                (33, 50, 20, 80),
                (13, 7, 13, 7),
            ]
        };
        for &(sw, sh, dw, dh) in cases {
            let src = pattern(sw, sh);
            let plan = if dw <= sw && dh <= sh { Resize::area(sw, sh, dw, dh) } else { Resize::cubic(sw, sh, dw, dh) };
            let whole = plan.run(&src, sw * 3);
            // The same source with 5 bytes of padding per row.
            let stride = sw * 3 + 5;
            let mut padded = vec![0xAB; stride * sh];
            for y in 0..sh {
                padded[y * stride..][..sw * 3].copy_from_slice(&src[y * sw * 3..][..sw * 3]);
            }
            for band in [1, 3, 7, dh] {
                let mut banded = vec![0u8; whole.len()];
                for (i, chunk) in banded.chunks_mut(band * dw * 3).enumerate() {
                    plan.rows(&padded, stride, i * band, chunk);
                }
                assert!(banded == whole, "{sw}x{sh}->{dw}x{dh} in bands of {band}");
            }
        }
    }

    #[test]
    fn same_size_is_copy() {
        let src = pattern(13, 7);
        assert_eq!(resize_area_rgb8(&src, 13, 7, 13, 7), src);
        assert_eq!(resize_cubic_rgb8(&src, 13, 7, 13, 7), src);
    }

    #[test]
    fn output_sizes_and_degenerate_inputs() {
        let src = pattern(7, 5);
        assert_eq!(resize_area_rgb8(&src, 7, 5, 1, 1).len(), 3);
        assert_eq!(resize_cubic_rgb8(&src, 7, 5, 1, 20).len(), 60);
        assert_eq!(
            resize_cubic_rgb8(&[9, 8, 7], 1, 1, 4, 3),
            [9, 8, 7].repeat(12)
        );
    }

    #[test]
    #[cfg(not(debug_assertions))]
    fn area_upscale_does_not_panic_in_release() {
        let src = pattern(4, 3);
        assert_eq!(resize_area_rgb8(&src, 4, 3, 9, 2).len(), 9 * 2 * 3);
    }
}
