//! `utils/alignment.py`: sky masks, the metric scaling of the metric network's output, the
//! least-squares alignment of the nested model, and sky filling.
//!
//! One deliberate difference: where the official estimates a quantile from a random sample
//! of at most 100 000 elements (`sample_tensor_for_quantile`, and the inline
//! `torch.randint` sampling in `model/da3.py`), this library takes the exact quantile of all
//! elements, which is what the sample estimates. The official samples only because
//! `torch.quantile` refuses inputs above 2^24 elements; with at most 100 000 elements it
//! samples nothing and both agree exactly. See [`quantile`].
use tch::{Kind, Tensor};

use crate::error::Result;

/// `compute_sky_mask`'s threshold: a sky value below it is non-sky.
pub const SKY_THRESHOLD: f64 = 0.3;
/// `OutputProcessor._extract_sky`'s threshold for the boolean sky mask of the official
/// `Prediction.sky` (`sky >= 0.5`).
pub const SKY_MASK_THRESHOLD: f64 = 0.5;
/// Above this many elements the official quantiles are estimated from a random sample.
pub const OFFICIAL_QUANTILE_SAMPLES: i64 = 100_000;
/// `apply_metric_scaling`'s focal length of the metric network's canonical camera, in pixels:
/// metric depth = raw output * focal / 300.
pub const METRIC_CANONICAL_FOCAL: f64 = 300.0;
/// `_handle_sky_regions`'s cap on the depth given to sky pixels (`sky_depth_def`), metres.
pub const SKY_DEPTH_CAP: f64 = 200.0;
/// Both sky routines need more than this many non-sky (and, for filling, sky) pixels.
pub const MIN_REGION_PIXELS: i64 = 10;
/// `compute_alignment_mask`'s lower bounds on the any-view and the metric depth.
pub const MIN_DEPTH: f64 = 1e-3;
pub const MIN_METRIC_DEPTH: f64 = 1e-2;
/// `least_squares_scale_scalar`'s floor on the denominator.
pub const LEAST_SQUARES_EPS: f64 = 1e-12;

/// Largest input `torch.quantile` accepts.
const TORCH_QUANTILE_MAX_NUMEL: i64 = 1 << 24;

/// `compute_sky_mask`: true where `sky < threshold` (non-sky).
pub fn compute_sky_mask(sky: &Tensor, threshold: f64) -> Result<Tensor> {
    Ok(sky.f_lt(threshold)?)
}

/// `least_squares_scale_scalar(a, b)`: the scale s minimising |a - s b|^2, a 0-dim tensor.
pub fn least_squares_scale_scalar(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let a = a.f_reshape([-1])?;
    let b = b.f_reshape([-1])?;
    Ok(a.f_dot(&b)?.f_div(&b.f_dot(&b)?.f_clamp_min(LEAST_SQUARES_EPS)?)?)
}

/// `compute_alignment_mask`: confident (at least the median confidence), non-sky pixels
/// where both depths are meaningful.
pub fn compute_alignment_mask(
    depth_conf: &Tensor,
    non_sky_mask: &Tensor,
    depth: &Tensor,
    metric_depth: &Tensor,
    median_conf: &Tensor,
) -> Result<Tensor> {
    Ok(depth_conf
        .f_ge_tensor(median_conf)?
        .f_logical_and(non_sky_mask)?
        .f_logical_and(&metric_depth.f_gt(MIN_METRIC_DEPTH)?)?
        .f_logical_and(&depth.f_gt(MIN_DEPTH)?)?)
}

/// `apply_metric_scaling`: the metric network predicts depth for a canonical focal length of
/// 300 pixels; multiplied by focal / 300 (focal = (fx + fy) / 2 of each view, in the
/// processed image's pixels) it is in metres. `depth` (S, H, W), `intrinsics` (S, 3, 3).
pub fn apply_metric_scaling(depth: &Tensor, intrinsics: &Tensor) -> Result<Tensor> {
    let fx = intrinsics.f_select(-2, 0)?.f_select(-1, 0)?;
    let fy = intrinsics.f_select(-2, 1)?.f_select(-1, 1)?;
    let focal = fx.f_add(&fy)?.f_div_scalar(2.0)?;
    Ok(depth.f_mul(&focal.f_unsqueeze(-1)?.f_unsqueeze(-1)?.f_div_scalar(METRIC_CANONICAL_FOCAL)?)?)
}

/// `set_sky_regions_to_max_depth`: sky pixels (where `non_sky_mask` is false) get
/// `max_depth` (a 0-dim tensor) and, if given, confidence 1.
pub fn set_sky_regions_to_max_depth(
    depth: &Tensor,
    depth_conf: Option<&Tensor>,
    non_sky_mask: &Tensor,
    max_depth: &Tensor,
) -> Result<(Tensor, Option<Tensor>)> {
    let sky = non_sky_mask.f_logical_not()?;
    let depth = depth.f_where_self(non_sky_mask, &max_depth.f_to_kind(depth.kind())?.f_expand_as(depth)?)?;
    let conf = depth_conf.map(|c| c.f_masked_fill(&sky, 1.0)).transpose()?;
    Ok((depth, conf))
}

/// The exact `q`-quantile (linear interpolation, as `torch.quantile`) of all elements of
/// `values`, a 0-dim tensor of its kind; NaN for an empty input.
///
/// Deterministic stand-in for the official `torch.quantile(sample)`: with at most 100 000
/// elements the official uses them all and the two are identical; with more it draws a
/// random sample of 100 000 (with replacement for the sky depth, without for the median
/// confidence), whose quantile has a rank error of about sqrt(q (1 - q) / 100 000) (3e-4
/// for q = 0.99, 1.6e-3 for the median) around this exact value.
pub fn quantile(values: &Tensor, q: f64) -> Result<Tensor> {
    let flat = values.f_reshape([-1])?;
    let n = flat.numel() as i64;
    if n == 0 {
        return Ok(Tensor::f_full([], f64::NAN, (values.kind(), values.device()))?);
    }
    if n <= TORCH_QUANTILE_MAX_NUMEL {
        Ok(flat.f_quantile_scalar(q, None::<i64>, false, "linear")?)
    } else {
        sorted_quantile(&flat, q)
    }
}

/// `torch.quantile`'s linear interpolation on a sorted copy, for inputs it refuses: the
/// rank is computed in the input's precision as ATen does, then the two neighbours lerped.
fn sorted_quantile(flat: &Tensor, q: f64) -> Result<Tensor> {
    let n = flat.numel() as i64;
    let (sorted, _) = flat.f_sort(0, false)?;
    let rank = Tensor::f_from_slice(&[q])?.f_view(())?.f_to_kind(flat.kind())?.f_mul_scalar((n - 1) as f64)?;
    let below = rank.f_to_kind(Kind::Int64)?;
    let above = rank.f_ceil()?.f_to_kind(Kind::Int64)?.f_clamp_max(n - 1)?;
    let weight = rank.f_sub(&below.f_to_kind(flat.kind())?)?;
    let lo = sorted.f_index_select(0, &below.f_reshape([1])?.f_to_device(flat.device())?)?;
    let hi = sorted.f_index_select(0, &above.f_reshape([1])?.f_to_device(flat.device())?)?;
    Ok(lo.f_lerp_tensor(&hi, &weight.f_to_device(flat.device())?)?.f_reshape([])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(t: &Tensor) -> f64 {
        t.double_value(&[])
    }

    #[test]
    fn quantile_matches_torch_and_the_sorted_fallback() {
        tch::manual_seed(3);
        for n in [1i64, 2, 7, 100, 1001, 65_537] {
            let v = Tensor::randn([n], (Kind::Float, tch::Device::Cpu)).exp();
            for q in [0.0, 0.5, 0.99, 1.0] {
                let torch = v.quantile_scalar(q, None::<i64>, false, "linear");
                assert_eq!(scalar(&quantile(&v, q).unwrap()), scalar(&torch), "n={n} q={q}");
                assert_eq!(scalar(&sorted_quantile(&v, q).unwrap()), scalar(&torch), "fallback n={n} q={q}");
            }
        }
        assert!(scalar(&quantile(&Tensor::zeros([0], (Kind::Float, tch::Device::Cpu)), 0.5).unwrap()).is_nan());
    }

    #[test]
    fn metric_scaling_uses_the_mean_focal_over_300() {
        let depth = Tensor::ones([2, 1, 2], (Kind::Float, tch::Device::Cpu));
        let k = Tensor::from_slice(&[600f32, 0., 0., 0., 300., 0., 0., 0., 1., 30., 0., 0., 0., 30., 0., 0., 0., 1.]).reshape([2, 3, 3]);
        let m = apply_metric_scaling(&depth, &k).unwrap();
        assert_eq!(Vec::<f32>::try_from(&m.reshape([-1])).unwrap(), vec![1.5, 1.5, 0.1, 0.1]);
    }

    #[test]
    fn least_squares_and_masks() {
        let b = Tensor::from_slice(&[1f32, 2., 3.]);
        let a = &b * 2.5;
        assert!((scalar(&least_squares_scale_scalar(&a, &b).unwrap()) - 2.5).abs() < 1e-6);
        // An empty selection gives 0, as the official (0 / clamp(0, 1e-12)).
        let none = Tensor::zeros([0], (Kind::Float, tch::Device::Cpu));
        assert_eq!(scalar(&least_squares_scale_scalar(&none, &none).unwrap()), 0.0);
        let sky = Tensor::from_slice(&[0.0f32, 0.29, 0.3, 2.0]);
        let non_sky = compute_sky_mask(&sky, SKY_THRESHOLD).unwrap();
        assert_eq!(Vec::<bool>::try_from(&non_sky).unwrap(), vec![true, true, false, false]);
        let depth = Tensor::from_slice(&[1f32, 2., 3., 4.]);
        let conf = Tensor::from_slice(&[1f32, 2., 3., 4.]);
        let (d, c) = set_sky_regions_to_max_depth(&depth, Some(&conf), &non_sky, &Tensor::from(9f32)).unwrap();
        assert_eq!(Vec::<f32>::try_from(&d).unwrap(), vec![1., 2., 9., 9.]);
        assert_eq!(Vec::<f32>::try_from(&c.unwrap()).unwrap(), vec![1., 2., 1., 1.]);
        let mask = compute_alignment_mask(&conf, &non_sky, &depth, &depth, &Tensor::from(2f32)).unwrap();
        assert_eq!(Vec::<bool>::try_from(&mask).unwrap(), vec![false, true, false, false]);
    }
}
