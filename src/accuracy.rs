//! How far a prediction is from a reference prediction of the same views: the measure behind
//! the accuracy bound of the accelerated runner (README, "Accuracy of the accelerated runner").
use crate::error::{Error, Result};
use crate::model::utils::alignment::SKY_THRESHOLD;
use crate::prediction::Prediction;

/// Deviation of a prediction from a reference (usually the fp32, non-accelerated one).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Deviation {
    /// Per-pixel |d - d_ref| / d_ref over every view: median, 99th percentile and maximum.
    pub depth_rel_median: f64,
    pub depth_rel_p99: f64,
    pub depth_rel_max: f64,
    /// Largest angle between predicted and reference camera rotations, degrees.
    pub rotation_deg_max: f64,
    /// Largest |t - t_ref| of the world-to-camera translations over the median reference
    /// depth (the scene's scale).
    pub translation_rel_max: f64,
    /// Largest relative difference of the focal lengths (fx, fy).
    pub focal_rel_max: f64,
    /// Models with a sky map: the pixels whose sky decision differs (see `SkyFlips`). Not part
    /// of `within` (which bounds every pixel); reported beside it. `None` in a bound.
    pub sky: Option<SkyFlips>,
}

/// The share of pixels whose sky decision (sky >= 0.3, which the official post-processing acts
/// on: the mono/metric models give sky pixels a fill depth, the nested model leaves them out
/// of its alignment) differs from the reference's, and the largest per-pixel depth difference
/// over the other pixels. A flip is a discrete decision near the threshold, not numerical
/// drift: its pixel's depth can change by its own size.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SkyFlips {
    pub share: f64,
    pub depth_rel_max_elsewhere: f64,
}

/// The documented bound of `use_accelerate` (bf16) against the fp32 reference, per metric.
/// See README for how it was measured; `within` checks a deviation against it.
/// Measured on an H100 (bench/results/2026-11-24-h100-accel3-accuracy-large.txt, random-weight
/// da3-large, the two sample photos, 1 to 6 views): depth median 3.0e-3, p99 1.1e-2, max
/// 2.2e-2, rotation 0.79 degrees, translation 1.8e-3, focal 1.9e-3. The official bf16
/// autocast alone: depth median 1.4e-3, p99 4.8e-3, max 8.0e-3, the same camera numbers (the
/// bf16 depth head adds the rest). The bound leaves room for other models, sizes and GPUs.
pub const ACCELERATED_BF16_BOUND: Deviation = Deviation {
    depth_rel_median: 0.01,
    depth_rel_p99: 0.03,
    depth_rel_max: 0.10,
    rotation_deg_max: 2.0,
    translation_rel_max: 0.01,
    focal_rel_max: 0.01,
    sky: None,
};

impl Deviation {
    /// Whether every metric is at or below `bound`'s.
    pub fn within(&self, bound: &Deviation) -> bool {
        self.depth_rel_median <= bound.depth_rel_median
            && self.depth_rel_p99 <= bound.depth_rel_p99
            && self.depth_rel_max <= bound.depth_rel_max
            && self.rotation_deg_max <= bound.rotation_deg_max
            && self.translation_rel_max <= bound.translation_rel_max
            && self.focal_rel_max <= bound.focal_rel_max
    }
}

/// Compares `candidate` with `reference` (same views, same size).
pub fn compare(reference: &Prediction, candidate: &Prediction) -> Result<Deviation> {
    if reference.views != candidate.views || reference.depth.len() != candidate.depth.len() {
        return Err(Error::InvalidArgument("predictions of different views or sizes".into()));
    }
    let mut rel: Vec<f64> = reference
        .depth
        .iter()
        .zip(&candidate.depth)
        .map(|(&r, &c)| ((c as f64 - r as f64) / (r as f64).abs().max(1e-12)).abs())
        .collect();
    let sky = match (&reference.sky, &candidate.sky) {
        (Some(rs), Some(cs)) => {
            let is_sky = |v: f32| v as f64 >= SKY_THRESHOLD;
            let flips: Vec<bool> = rs.iter().zip(cs).map(|(&r, &c)| is_sky(r) != is_sky(c)).collect();
            Some(SkyFlips {
                share: flips.iter().filter(|&&f| f).count() as f64 / flips.len().max(1) as f64,
                depth_rel_max_elsewhere: rel.iter().zip(&flips).filter(|(_, &f)| !f).map(|(&e, _)| e).fold(0.0, f64::max),
            })
        }
        _ => None,
    };
    rel.sort_by(|a, b| a.total_cmp(b));
    let pick = |q: f64| rel[((rel.len() - 1) as f64 * q).round() as usize];
    let mut depths: Vec<f32> = reference.depth.clone();
    depths.sort_by(|a, b| a.total_cmp(b));
    let scale = (depths[depths.len() / 2] as f64).abs().max(1e-12);
    let mut deviation = Deviation {
        depth_rel_median: pick(0.5),
        depth_rel_p99: pick(0.99),
        depth_rel_max: pick(1.0),
        sky,
        ..Deviation::default()
    };
    if let (Some(re), Some(ce), Some(ri), Some(ci)) =
        (&reference.extrinsics, &candidate.extrinsics, &reference.intrinsics, &candidate.intrinsics)
    {
        for v in 0..reference.views {
            let (a, b) = (&re[v * 12..v * 12 + 12], &ce[v * 12..v * 12 + 12]);
            // trace(R_ref^T R) = sum of the element-wise products of the two rotations.
            let trace: f64 = (0..3).flat_map(|r| (0..3).map(move |c| r * 4 + c)).map(|i| a[i] as f64 * b[i] as f64).sum();
            let angle = ((trace - 1.0) / 2.0).clamp(-1.0, 1.0).acos().to_degrees();
            let dt = (0..3).map(|r| (a[r * 4 + 3] as f64 - b[r * 4 + 3] as f64).powi(2)).sum::<f64>().sqrt();
            let (ka, kb) = (&ri[v * 9..v * 9 + 9], &ci[v * 9..v * 9 + 9]);
            let focal = [0usize, 4].iter().map(|&i| ((kb[i] - ka[i]) as f64 / ka[i] as f64).abs()).fold(0.0, f64::max);
            deviation.rotation_deg_max = deviation.rotation_deg_max.max(angle);
            deviation.translation_rel_max = deviation.translation_rel_max.max(dt / scale);
            deviation.focal_rel_max = deviation.focal_rel_max.max(focal);
        }
    }
    Ok(deviation)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prediction(depth: Vec<f32>, sky: Option<Vec<f32>>) -> Prediction {
        Prediction { views: 1, depth, sky, ..Prediction::default() }
    }

    #[test]
    fn sky_decision_flips_are_counted_apart() {
        let reference = prediction(vec![1.0, 2.0, 4.0, 8.0], Some(vec![0.0, 0.299, 0.9, 0.0]));
        // Pixel 1 crosses the threshold and takes a fill depth; the others drift a little.
        let candidate = prediction(vec![1.01, 5.0, 4.0, 8.0], Some(vec![0.0, 0.301, 0.9, 0.0]));
        let d = compare(&reference, &candidate).unwrap();
        assert_eq!(d.depth_rel_max, 1.5);
        let sky = d.sky.unwrap();
        assert_eq!(sky.share, 0.25);
        assert!((sky.depth_rel_max_elsewhere - 0.01).abs() < 1e-6, "{d:?}");
        assert!(!d.within(&ACCELERATED_BF16_BOUND), "the flip still counts in the bound");
        // Without sky maps: nothing is set apart.
        let d = compare(&prediction(vec![1.0, 2.0], None), &prediction(vec![1.0, 3.0], None)).unwrap();
        assert_eq!(d.sky, None);
    }
}
