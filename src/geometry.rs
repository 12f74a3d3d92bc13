//! Geometry a host can use directly: world-space points from depth and cameras, the mapping
//! between processed (network-input) pixels and the caller's input pixels, maps resampled to
//! the input size, and point filters.
//!
//! Conventions (verified against the official `depth_anything_3/utils/export/glb.py`,
//! `_depths_to_world_points_with_colors`, and `utils/geometry.py::unproject_depth`):
//! - depth is **z-depth** along the optical axis, not the distance along the ray: the official
//!   multiplies `K^-1 [u v 1]^T` (whose z is 1) by the depth;
//! - pixel (u, v) of a map sits at the **integer** coordinates (u, v) (the official builds its
//!   pixel grid with `np.arange(W)`, no + 0.5), so
//!   `X_cam = depth[v][u] * K^-1 [u v 1]^T` and, with world-to-camera `[R | t]`,
//!   `X_world = R^T (X_cam - t)`;
//! - the intrinsics are carried through the preprocessing as the official `InputProcessor`
//!   does (`preprocess::adjust_intrinsics`: rows of K scaled by each resize's ratio, the
//!   principal point shifted by each crop); `input_intrinsics` inverts exactly that;
//! - image samples (resampling a map to the input size) follow OpenCV's resize, which places
//!   pixel centres at half-integers of the continuous grid: through a resize from `from` to
//!   `to` pixels, input coordinate x maps to `(x + 0.5) * to / from - 0.5`; through a crop,
//!   to `x - left`.
use crate::error::{Error, Result};
use crate::prediction::Prediction;
use crate::preprocess::GridChange;

/// How a map is resampled to the input size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interpolation {
    /// The nearest processed pixel: no new values (use it for masks and to avoid mixing the
    /// depths of the two sides of an edge).
    Nearest,
    /// Bilinear between the four nearest processed pixels (smooth; as the ROS 2 TensorRT DA
    /// node resizes depth). Mixes depths across discontinuities.
    Bilinear,
}

/// Which per-pixel map of a prediction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    Depth,
    Confidence,
    Sky,
}

/// A 3x3 row-major matrix inverse (f64), or `None` when singular or not finite.
pub fn invert3(m: &[f64; 9]) -> Option<[f64; 9]> {
    let [a, b, c, d, e, f, g, h, i] = *m;
    let (co0, co1, co2) = (e * i - f * h, f * g - d * i, d * h - e * g);
    let det = a * co0 + b * co1 + c * co2;
    if det == 0.0 || !det.is_finite() {
        return None;
    }
    let inv = [
        co0 / det,
        (c * h - b * i) / det,
        (b * f - c * e) / det,
        co1 / det,
        (a * i - c * g) / det,
        (c * d - a * f) / det,
        co2 / det,
        (b * g - a * h) / det,
        (a * e - b * d) / det,
    ];
    inv.iter().all(|v| v.is_finite()).then_some(inv)
}

/// A pinhole camera: intrinsics K and world-to-camera [R | t], both row-major.
#[derive(Clone, Copy, Debug)]
pub struct Camera {
    pub k: [f64; 9],
    pub k_inv: [f64; 9],
    /// 3x4 row-major world-to-camera.
    pub w2c: [f64; 12],
}

impl Camera {
    /// From float32 intrinsics (9) and extrinsics (12) as a prediction holds them.
    pub fn new(intrinsics: &[f32], extrinsics: &[f32]) -> Result<Camera> {
        if intrinsics.len() != 9 || extrinsics.len() != 12 {
            return Err(Error::InvalidArgument("a camera needs 9 intrinsics and 12 extrinsics".into()));
        }
        let k: [f64; 9] = std::array::from_fn(|i| intrinsics[i] as f64);
        let w2c: [f64; 12] = std::array::from_fn(|i| extrinsics[i] as f64);
        let k_inv = invert3(&k).ok_or_else(|| Error::InvalidArgument(format!("intrinsics are singular: {k:?}")))?;
        Ok(Camera { k, k_inv, w2c })
    }

    /// World point of pixel (u, v) at z-depth `depth`: `R^T (depth K^-1 [u v 1]^T - t)`.
    pub fn unproject(&self, u: f64, v: f64, depth: f64) -> [f64; 3] {
        let ki = &self.k_inv;
        let c = [
            depth * (ki[0] * u + ki[1] * v + ki[2]),
            depth * (ki[3] * u + ki[4] * v + ki[5]),
            depth * (ki[6] * u + ki[7] * v + ki[8]),
        ];
        let e = &self.w2c;
        let d = [c[0] - e[3], c[1] - e[7], c[2] - e[11]];
        // R^T d: column j of R is (e[j], e[4 + j], e[8 + j]).
        std::array::from_fn(|j| e[j] * d[0] + e[4 + j] * d[1] + e[8 + j] * d[2])
    }

    /// Pixel (u, v) and z-depth of a world point: `K (R X + t)`, divided by its z.
    pub fn project(&self, x: [f64; 3]) -> (f64, f64, f64) {
        let e = &self.w2c;
        let c: [f64; 3] = std::array::from_fn(|r| e[4 * r] * x[0] + e[4 * r + 1] * x[1] + e[4 * r + 2] * x[2] + e[4 * r + 3]);
        let k = &self.k;
        let p: [f64; 3] = std::array::from_fn(|r| k[3 * r] * c[0] + k[3 * r + 1] * c[1] + k[3 * r + 2] * c[2]);
        (p[0] / p[2], p[1] / p[2], c[2])
    }

    /// Camera centre in world coordinates, `-R^T t`.
    pub fn centre(&self) -> [f64; 3] {
        let e = &self.w2c;
        std::array::from_fn(|j| -(e[j] * e[3] + e[4 + j] * e[7] + e[8 + j] * e[11]))
    }
}

/// Intrinsics in the caller's input pixels: `preprocess::adjust_intrinsics` undone (crops
/// shift the principal point back, resizes divide the rows by their ratio), last change first.
pub fn input_intrinsics(k: &[f32; 9], changes: &[GridChange]) -> [f32; 9] {
    let mut k = *k;
    for change in changes.iter().rev() {
        match *change {
            GridChange::Resize { from_w, from_h, to_w, to_h } => {
                let sx = (to_w as f64 / from_w as f64) as f32;
                let sy = (to_h as f64 / from_h as f64) as f32;
                k[..3].iter_mut().for_each(|v| *v /= sx);
                k[3..6].iter_mut().for_each(|v| *v /= sy);
            }
            GridChange::Crop { left, top } => {
                k[2] += left as f32;
                k[5] += top as f32;
            }
        }
    }
    k
}

/// Processed-pixel coordinates of input pixel (x, y) (OpenCV's half-pixel centres through
/// each resize, offsets through each crop).
pub fn input_to_processed(x: f64, y: f64, changes: &[GridChange]) -> (f64, f64) {
    changes.iter().fold((x, y), |(x, y), change| match *change {
        GridChange::Resize { from_w, from_h, to_w, to_h } => (
            (x + 0.5) * to_w as f64 / from_w as f64 - 0.5,
            (y + 0.5) * to_h as f64 / from_h as f64 - 0.5,
        ),
        GridChange::Crop { left, top } => (x - left as f64, y - top as f64),
    })
}

/// Input pixel coordinates of processed pixel (x, y): `input_to_processed` inverted.
pub fn processed_to_input(x: f64, y: f64, changes: &[GridChange]) -> (f64, f64) {
    changes.iter().rev().fold((x, y), |(x, y), change| match *change {
        GridChange::Resize { from_w, from_h, to_w, to_h } => (
            (x + 0.5) * from_w as f64 / to_w as f64 - 0.5,
            (y + 0.5) * from_h as f64 / to_h as f64 - 0.5,
        ),
        GridChange::Crop { left, top } => (x + left as f64, y + top as f64),
    })
}

/// Input pixel coordinates of processed pixel (x, y) as the intrinsics see it: the linear map
/// that `input_intrinsics` applies to K (through each crop x + left, through each resize
/// x * from / to, no half-pixel shift), so that a point projecting to (x, y) with the
/// processed intrinsics projects to the result with the input intrinsics. This is how the
/// official COLMAP export scales its 2D points; it differs from the sample mapping
/// (`processed_to_input`) by 0.5 * (from / to - 1) input pixels per resize, the official's own
/// half-pixel inconsistency between its intrinsics and its resize.
pub fn processed_to_input_camera(x: f64, y: f64, changes: &[GridChange]) -> (f64, f64) {
    changes.iter().rev().fold((x, y), |(x, y), change| match *change {
        GridChange::Resize { from_w, from_h, to_w, to_h } => {
            // The same float32 ratios as `adjust_intrinsics`.
            let sx = (to_w as f64 / from_w as f64) as f32 as f64;
            let sy = (to_h as f64 / from_h as f64) as f32 as f64;
            (x / sx, y / sy)
        }
        GridChange::Crop { left, top } => (x + left as f64, y + top as f64),
    })
}

/// Resamples one `width` x `height` map to `out_w` x `out_h` input pixels through `changes`.
/// An input pixel whose processed coordinate falls outside the processed image by more than
/// half a pixel (the parts a crop removed) gets NaN; within that half pixel, the edge value.
pub fn resample_to_input(
    map: &[f32],
    width: usize,
    height: usize,
    changes: &[GridChange],
    out_w: usize,
    out_h: usize,
    interpolation: Interpolation,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(out_w * out_h);
    let (wf, hf) = (width as f64, height as f64);
    for y in 0..out_h {
        for x in 0..out_w {
            let (px, py) = input_to_processed(x as f64, y as f64, changes);
            if !(px >= -0.5 && px <= wf - 0.5 && py >= -0.5 && py <= hf - 0.5) {
                out.push(f32::NAN);
                continue;
            }
            let (px, py) = (px.clamp(0.0, wf - 1.0), py.clamp(0.0, hf - 1.0));
            let value = match interpolation {
                Interpolation::Nearest => map[(py.round() as usize) * width + px.round() as usize],
                Interpolation::Bilinear => {
                    let (x0, y0) = (px.floor() as usize, py.floor() as usize);
                    let (x1, y1) = ((x0 + 1).min(width - 1), (y0 + 1).min(height - 1));
                    let (fx, fy) = (px - x0 as f64, py - y0 as f64);
                    let at = |xx: usize, yy: usize| map[yy * width + xx] as f64;
                    let top = at(x0, y0) * (1.0 - fx) + at(x1, y0) * fx;
                    let bottom = at(x0, y1) * (1.0 - fx) + at(x1, y1) * fx;
                    (top * (1.0 - fy) + bottom * fy) as f32
                }
            };
            out.push(value);
        }
    }
    out
}

/// Which points of a prediction to keep (`Prediction::select_points`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PointFilter {
    /// Drop points whose confidence is below this value (0: none dropped by value).
    pub min_confidence: f32,
    /// Drop points whose confidence is below this percentile (0..100, linear interpolation as
    /// numpy's default) of the confidence of all views' non-sky pixels; 0: none.
    pub confidence_percentile: f32,
    /// Drop sky pixels (sky >= 0.5, the official `sky_mask`) when the prediction has sky.
    pub drop_sky: bool,
}

/// numpy's default (linear) percentile of `values`, `p` in 0..=100 (NaN when empty).
pub fn percentile(values: &mut [f32], p: f32) -> f32 {
    if values.is_empty() {
        return f32::NAN;
    }
    values.sort_unstable_by(|a, b| a.total_cmp(b));
    let rank = (p as f64 / 100.0) * (values.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    let f = rank - lo as f64;
    (values[lo] as f64 * (1.0 - f) + values[hi] as f64 * f) as f32
}

/// One kept point of `Prediction::select_points`: where it came from and where it is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub view: usize,
    /// Processed pixel.
    pub u: u32,
    pub v: u32,
    pub xyz: [f32; 3],
    pub rgb: [u8; 3],
    /// Confidence, or NaN for models without one.
    pub confidence: f32,
}

impl Prediction {
    /// The camera of view `view`, or `Error::Unsupported` when the prediction has none.
    pub fn camera(&self, view: usize) -> Result<Camera> {
        self.check_view(view)?;
        match (&self.intrinsics, &self.extrinsics) {
            (Some(k), Some(e)) => Camera::new(&k[view * 9..][..9], &e[view * 12..][..12]),
            _ => Err(Error::Unsupported("this prediction holds no cameras (the model predicts none)".into())),
        }
    }

    pub(crate) fn check_view(&self, view: usize) -> Result<()> {
        if view >= self.views {
            return Err(Error::InvalidArgument(format!(
                "view index {view} is out of range: the result has {} view(s)",
                self.views
            )));
        }
        Ok(())
    }

    /// World-space points of view `view`: `height * width * 3` float32, row-major (pixel
    /// (u, v) at `(v * width + u) * 3`, x y z), from its depth and camera. Pixels whose depth is
    /// not finite give NaN.
    pub fn points(&self, view: usize) -> Result<Vec<f32>> {
        let camera = self.camera(view)?;
        let hw = self.pixels_per_view();
        let depth = &self.depth[view * hw..][..hw];
        let mut out = Vec::with_capacity(hw * 3);
        for (i, &d) in depth.iter().enumerate() {
            if d.is_finite() {
                let p = camera.unproject((i % self.width) as f64, (i / self.width) as f64, d as f64);
                out.extend(p.map(|c| c as f32));
            } else {
                out.extend([f32::NAN; 3]);
            }
        }
        Ok(out)
    }

    /// Input size (width, height) of view `view`: the size of the image the caller gave (the
    /// first grid change's source), the processed size when there was no resize.
    pub fn input_size(&self, view: usize) -> Result<(u32, u32)> {
        self.check_view(view)?;
        Ok(match self.grid_changes.get(view).and_then(|c| c.first()) {
            Some(GridChange::Resize { from_w, from_h, .. }) => (*from_w, *from_h),
            _ => (self.width as u32, self.height as u32),
        })
    }

    /// The grid changes of view `view` (empty: processed pixels are input pixels).
    pub fn view_grid_changes(&self, view: usize) -> &[GridChange] {
        self.grid_changes.get(view).map_or(&[], |c| c.as_slice())
    }

    /// Intrinsics of view `view` in input pixels (see `input_intrinsics`).
    pub fn intrinsics_at_input(&self, view: usize) -> Result<[f32; 9]> {
        self.check_view(view)?;
        let k = self.intrinsics.as_ref().ok_or_else(|| Error::Unsupported("this prediction holds no intrinsics".into()))?;
        let k: [f32; 9] = std::array::from_fn(|i| k[view * 9 + i]);
        Ok(input_intrinsics(&k, self.view_grid_changes(view)))
    }

    /// The map `kind` of view `view`, borrowed, or `Error::Unsupported` when absent.
    pub fn map(&self, kind: MapKind, view: usize) -> Result<&[f32]> {
        self.check_view(view)?;
        let hw = self.pixels_per_view();
        let all = match kind {
            MapKind::Depth => Some(&self.depth),
            MapKind::Confidence => Some(&self.confidence).filter(|c| !c.is_empty()),
            MapKind::Sky => self.sky.as_ref(),
        };
        let all = all.ok_or_else(|| Error::Unsupported(format!("this prediction holds no {kind:?} map")))?;
        Ok(&all[view * hw..][..hw])
    }

    /// The map `kind` of view `view` at the view's input size (`input_size`), see
    /// `resample_to_input`.
    pub fn map_at_input(&self, kind: MapKind, view: usize, interpolation: Interpolation) -> Result<Vec<f32>> {
        let map = self.map(kind, view)?;
        let (w, h) = self.input_size(view)?;
        Ok(resample_to_input(map, self.width, self.height, self.view_grid_changes(view), w as usize, h as usize, interpolation))
    }

    /// The processed RGB8 colours of view `view` (`height * width * 3`), if kept.
    pub fn view_colors(&self, view: usize) -> Option<&[u8]> {
        let n = self.pixels_per_view() * 3;
        self.colors.get(view * n..(view + 1) * n)
    }

    /// Confidence threshold of `filter` over all views (the larger of its two parts), or
    /// None when nothing is filtered by confidence. `Error::Unsupported` when a confidence
    /// filter is asked of a prediction without confidence.
    pub fn confidence_threshold(&self, filter: &PointFilter) -> Result<Option<f32>> {
        if filter.min_confidence <= 0.0 && filter.confidence_percentile <= 0.0 {
            return Ok(None);
        }
        if !self.has_confidence() {
            return Err(Error::Unsupported("a confidence filter was asked, but this model predicts no confidence".into()));
        }
        if !(0.0..=100.0).contains(&filter.confidence_percentile) {
            return Err(Error::InvalidArgument(format!(
                "confidence_percentile must be in 0..100, got {}",
                filter.confidence_percentile
            )));
        }
        let mut threshold = filter.min_confidence;
        if filter.confidence_percentile > 0.0 {
            let mut values: Vec<f32> = match &self.sky {
                Some(sky) => self.confidence.iter().zip(sky).filter(|(_, s)| **s < 0.5).map(|(c, _)| *c).collect(),
                None => self.confidence.clone(),
            };
            if values.is_empty() {
                values = self.confidence.clone();
            }
            threshold = threshold.max(percentile(&mut values, filter.confidence_percentile));
        }
        Ok(Some(threshold))
    }

    /// The points every exporter writes: all views, pixels with finite positive depth that
    /// pass `filter`, in view then row-major pixel order.
    pub fn select_points(&self, filter: &PointFilter) -> Result<Vec<Point>> {
        let threshold = self.confidence_threshold(filter)?;
        let hw = self.pixels_per_view();
        let mut out = Vec::new();
        for view in 0..self.views {
            let camera = self.camera(view)?;
            let colors = self.view_colors(view);
            for i in 0..hw {
                let at = view * hw + i;
                let d = self.depth[at];
                if !(d.is_finite() && d > 0.0) {
                    continue;
                }
                let confidence = self.confidence.get(at).copied().unwrap_or(f32::NAN);
                if threshold.is_some_and(|t| !(confidence >= t)) {
                    continue;
                }
                if filter.drop_sky && self.sky.as_ref().is_some_and(|s| s[at] >= 0.5) {
                    continue;
                }
                let (u, v) = (i % self.width, i / self.width);
                let xyz = camera.unproject(u as f64, v as f64, d as f64).map(|c| c as f32);
                let rgb = colors.map_or([255, 255, 255], |c| [c[i * 3], c[i * 3 + 1], c[i * 3 + 2]]);
                out.push(Point { view, u: u as u32, v: v as u32, xyz, rgb, confidence });
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera() -> Camera {
        // R: 90 degrees about z (x -> y), t = (1, 2, 3); fx 100, fy 200, cx 10, cy 20.
        let k = [100.0, 0.0, 10.0, 0.0, 200.0, 20.0, 0.0, 0.0, 1.0];
        let e = [0.0, -1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 2.0, 0.0, 0.0, 1.0, 3.0];
        Camera::new(&k, &e).unwrap()
    }

    #[test]
    fn unprojection_matches_a_hand_computation() {
        let c = camera();
        // Pixel (30, 60) at depth 2: X_cam = 2 * ((30-10)/100, (60-20)/200, 1) = (0.4, 0.4, 2).
        // X_cam - t = (-0.6, -1.6, -1); R^T = [[0,1,0],[-1,0,0],[0,0,1]] -> (-1.6, 0.6, -1).
        let p = c.unproject(30.0, 60.0, 2.0);
        for (a, b) in p.iter().zip([-1.6, 0.6, -1.0]) {
            assert!((a - b).abs() < 1e-12, "{p:?}");
        }
        let centre = c.centre();
        let q = c.unproject(10.0, 20.0, 0.0);
        assert!(centre.iter().zip(q).all(|(a, b)| (a - b).abs() < 1e-12), "{centre:?} {q:?}");
    }

    #[test]
    fn project_inverts_unproject() {
        let c = camera();
        for (u, v, d) in [(0.0, 0.0, 1.0), (13.5, 7.25, 4.0), (503.0, 279.0, 0.3)] {
            let (pu, pv, pd) = c.project(c.unproject(u, v, d));
            assert!((pu - u).abs() < 1e-9 && (pv - v).abs() < 1e-9 && (pd - d).abs() < 1e-12);
        }
    }

    #[test]
    fn points_use_integer_pixel_coordinates_and_z_depth() {
        let p = Prediction {
            views: 1,
            height: 2,
            width: 3,
            depth: vec![1.0, 2.0, 3.0, 4.0, f32::NAN, 6.0],
            intrinsics: Some(vec![2.0, 0.0, 1.0, 0.0, 2.0, 0.5, 0.0, 0.0, 1.0]),
            extrinsics: Some(vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
            ..Default::default()
        };
        let pts = p.points(0).unwrap();
        // Pixel (2, 1): depth 6 -> (6 * (2 - 1) / 2, 6 * (1 - 0.5) / 2, 6).
        assert_eq!(&pts[15..18], &[3.0, 1.5, 6.0]);
        // Pixel (0, 0): (1 * -0.5, 1 * -0.25, 1).
        assert_eq!(&pts[0..3], &[-0.5, -0.25, 1.0]);
        assert!(pts[12..15].iter().all(|v| v.is_nan()));
        assert!(matches!(p.points(1), Err(Error::InvalidArgument(_))));
        let none = Prediction { intrinsics: None, ..p };
        assert!(matches!(none.points(0), Err(Error::Unsupported(_))));
    }

    #[test]
    fn input_intrinsics_undo_adjust_intrinsics() {
        let changes = [
            GridChange::Resize { from_w: 1280, from_h: 720, to_w: 504, to_h: 284 },
            GridChange::Crop { left: 0, top: 2 },
            GridChange::Crop { left: 0, top: 7 },
        ];
        let k = [1200.0f32, 0.0, 640.0, 0.0, 1100.0, 360.0, 0.0, 0.0, 1.0];
        let back = input_intrinsics(&crate::preprocess::adjust_intrinsics(&k, &changes), &changes);
        for (a, b) in back.iter().zip(k) {
            assert!((a - b).abs() < 1e-3, "{back:?}");
        }
    }

    #[test]
    fn pixel_mapping_round_trips_and_follows_half_pixel_centres() {
        let changes = [
            GridChange::Resize { from_w: 100, from_h: 50, to_w: 50, to_h: 25 },
            GridChange::Crop { left: 3, top: 1 },
        ];
        // Input pixels 0 and 1 average into processed pixel 0: its centre is at input 0.5.
        let (x, y) = processed_to_input(0.0, 0.0, &[changes[0]]);
        assert_eq!((x, y), (0.5, 0.5));
        let (px, py) = input_to_processed(10.0, 20.0, &changes);
        assert_eq!((px, py), (10.5 / 2.0 - 0.5 - 3.0, 20.5 / 2.0 - 0.5 - 1.0));
        assert_eq!(processed_to_input(px, py, &changes), (10.0, 20.0));
        // The camera mapping agrees with the intrinsics: project with K in processed pixels,
        // map, and it equals the projection with the input intrinsics.
        let k_in = [300.0f32, 0.0, 49.5, 0.0, 280.0, 24.5, 0.0, 0.0, 1.0];
        let k_proc = crate::preprocess::adjust_intrinsics(&k_in, &changes);
        let x = [0.3, -0.2, 2.0];
        let proj = |k: &[f32; 9]| (k[0] as f64 * x[0] / x[2] + k[2] as f64, k[4] as f64 * x[1] / x[2] + k[5] as f64);
        let (u, v) = proj(&k_proc);
        let (ui, vi) = processed_to_input_camera(u, v, &changes);
        let want = proj(&input_intrinsics(&k_proc, &changes));
        assert!((ui - want.0).abs() < 1e-9 && (vi - want.1).abs() < 1e-9, "{ui} {vi} {want:?}");
    }

    #[test]
    fn resampling_interpolates_inside_and_marks_cropped_pixels() {
        // A 2x1 processed map from a 4x1 input halved: input pixel centres 0..3 sit at processed
        // -0.25, 0.25, 0.75, 1.25.
        let changes = [GridChange::Resize { from_w: 4, from_h: 1, to_w: 2, to_h: 1 }];
        let map = [10.0f32, 20.0];
        assert_eq!(resample_to_input(&map, 2, 1, &changes, 4, 1, Interpolation::Bilinear), vec![10.0, 12.5, 17.5, 20.0]);
        assert_eq!(resample_to_input(&map, 2, 1, &changes, 4, 1, Interpolation::Nearest), vec![10.0, 10.0, 20.0, 20.0]);
        // A crop of one column on the left: input column 0 has no prediction.
        let crop = [GridChange::Crop { left: 1, top: 0 }];
        let got = resample_to_input(&map, 2, 1, &crop, 3, 1, Interpolation::Bilinear);
        assert!(got[0].is_nan() && got[1..] == [10.0, 20.0], "{got:?}");
    }

    #[test]
    fn percentile_is_numpys_linear_one() {
        let mut v = [4.0f32, 1.0, 3.0, 2.0];
        assert_eq!(percentile(&mut v, 0.0), 1.0);
        assert_eq!(percentile(&mut v, 50.0), 2.5);
        assert_eq!(percentile(&mut v, 100.0), 4.0);
        assert!(percentile(&mut [], 50.0).is_nan());
    }

    #[test]
    fn select_points_filters_confidence_sky_and_invalid_depth() {
        let p = Prediction {
            views: 1,
            height: 1,
            width: 4,
            depth: vec![1.0, -1.0, 2.0, 3.0],
            confidence: vec![1.0, 5.0, 2.0, 3.0],
            sky: Some(vec![0.0, 0.0, 0.0, 0.9]),
            intrinsics: Some(vec![1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]),
            extrinsics: Some(vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
            colors: vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
            ..Default::default()
        };
        let all = p.select_points(&PointFilter::default()).unwrap();
        assert_eq!(all.iter().map(|q| q.u).collect::<Vec<_>>(), vec![0, 2, 3]);
        assert_eq!(all[1].rgb, [7, 8, 9]);
        assert_eq!(all[1].xyz, [4.0, 0.0, 2.0]);
        let filtered = p.select_points(&PointFilter { min_confidence: 1.5, drop_sky: true, ..Default::default() }).unwrap();
        assert_eq!(filtered.iter().map(|q| q.u).collect::<Vec<_>>(), vec![2]);
        // Percentile over non-sky confidence [1, 5, 2]: the 50th is 2.
        let half = p.select_points(&PointFilter { confidence_percentile: 50.0, ..Default::default() }).unwrap();
        assert_eq!(half.iter().map(|q| q.u).collect::<Vec<_>>(), vec![2, 3]);
    }
}
