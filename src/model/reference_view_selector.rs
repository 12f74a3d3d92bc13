//! `model/reference_view_selector.py`: which view anchors a scene of three views or more.
use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// Which view anchors the scene when there are three views or more (official `ref_view_strategy`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefViewStrategy {
    SaddleBalanced,
    First,
    Middle,
    SaddleSimRange,
}

impl RefViewStrategy {
    pub fn official_name(self) -> &'static str {
        match self {
            RefViewStrategy::SaddleBalanced => "saddle_balanced",
            RefViewStrategy::First => "first",
            RefViewStrategy::Middle => "middle",
            RefViewStrategy::SaddleSimRange => "saddle_sim_range",
        }
    }

    pub fn from_official_name(name: &str) -> Result<Self> {
        Ok(match name {
            "saddle_balanced" => RefViewStrategy::SaddleBalanced,
            "first" => RefViewStrategy::First,
            "middle" => RefViewStrategy::Middle,
            "saddle_sim_range" => RefViewStrategy::SaddleSimRange,
            other => {
                return Err(Error::InvalidArgument(format!("unknown reference-view strategy '{other}'")))
            }
        })
    }
}

/// Index of the reference view. `x`: (S, N, C) tokens; the class token (index 0) decides.
pub fn select_reference_view(x: &Tensor, strategy: RefViewStrategy) -> Result<i64> {
    Ok(select_reference_view_on_device(x, strategy)?.f_int64_value(&[])?)
}

/// `select_reference_view` without reading the result back: a 0-dim int64 tensor on `x`'s
/// device (the same computation, so the same view), so that a forward with three views or
/// more never waits for the device (and can be captured in a CUDA graph).
pub fn select_reference_view_on_device(x: &Tensor, strategy: RefViewStrategy) -> Result<Tensor> {
    let s = x.size()[0];
    let constant = |v: i64| Tensor::f_full([], v, (Kind::Int64, x.device()));
    if s <= 1 {
        return Ok(constant(0)?);
    }
    Ok(match strategy {
        RefViewStrategy::First => constant(0)?,
        RefViewStrategy::Middle => constant(s / 2)?,
        RefViewStrategy::SaddleBalanced | RefViewStrategy::SaddleSimRange => {
            let cls = x.f_select(1, 0)?;
            let cls_norm = cls.f_norm_scalaropt_dim(2.0, [-1], true)?;
            let feat = cls.f_div(&cls_norm)?;
            let eye = Tensor::f_eye(s, (feat.kind(), feat.device()))?;
            let sim_no_diag = feat.f_matmul(&feat.f_transpose(0, 1)?)?.f_sub(&eye)?;
            if strategy == RefViewStrategy::SaddleBalanced {
                let sim_score = sim_no_diag.f_sum_dim_intlist(&[-1i64][..], false, Kind::Float)?.f_div_scalar((s - 1) as f64)?;
                let feat_norm = cls_norm.f_squeeze_dim(-1)?;
                let feat_var = feat.f_var_dim(&[-1i64][..], true, false)?;
                let normalize = |m: &Tensor| -> Result<Tensor> {
                    let (min, max) = (m.f_min()?, m.f_max()?);
                    Ok(m.f_sub(&min)?.f_div(&max.f_sub(&min)?.f_add_scalar(1e-8)?)?)
                };
                let balance = normalize(&sim_score)?
                    .f_sub_scalar(0.5)?
                    .f_abs()?
                    .f_add(&normalize(&feat_norm)?.f_sub_scalar(0.5)?.f_abs()?)?
                    .f_add(&normalize(&feat_var)?.f_sub_scalar(0.5)?.f_abs()?)?;
                // the view closest to the middle on all three metrics
                balance.f_argmin(0, false)?
            } else {
                sim_no_diag.f_amax([-1], false)?.f_sub(&sim_no_diag.f_amin([-1], false)?)?.f_argmax(0, false)?
            }
        }
    })
}

/// `reference_first_order` for a reference held on the device: (S,) int64.
pub fn reference_first_order_on_device(views: i64, reference: &Tensor) -> Result<Tensor> {
    let j = Tensor::f_arange(views, (Kind::Int64, reference.device()))?;
    let shifted = j.f_where_self(&j.f_gt_tensor(reference)?, &j.f_sub_scalar(1i64)?)?;
    Ok(reference.f_expand([views], false)?.f_where_self(&j.f_eq(0i64)?, &shifted)?)
}

/// `original_order` for a reference held on the device: (S,) int64.
pub fn original_order_on_device(views: i64, reference: &Tensor) -> Result<Tensor> {
    let v = Tensor::f_arange(views, (Kind::Int64, reference.device()))?;
    let after = v.f_where_self(&v.f_gt_tensor(reference)?, &v.f_zeros_like()?)?;
    Ok(v.f_add_scalar(1i64)?.f_where_self(&v.f_lt_tensor(reference)?, &after)?)
}

/// View order with the reference first, the others in their original order.
pub fn reference_first_order(views: i64, reference: i64) -> Vec<i64> {
    std::iter::once(reference).chain((0..views).filter(|&v| v != reference)).collect()
}

/// The inverse of `reference_first_order`.
pub fn original_order(views: i64, reference: i64) -> Vec<i64> {
    (0..views)
        .map(|v| match v.cmp(&reference) {
            std::cmp::Ordering::Less => v + 1,
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Greater => v,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_orders_match_the_host_orders() {
        for s in 1..7 {
            for r in 0..s {
                let reference = Tensor::full([], r, (Kind::Int64, tch::Device::Cpu));
                let first = Vec::<i64>::try_from(&reference_first_order_on_device(s, &reference).unwrap()).unwrap();
                let back = Vec::<i64>::try_from(&original_order_on_device(s, &reference).unwrap()).unwrap();
                assert_eq!(first, reference_first_order(s, r));
                assert_eq!(back, original_order(s, r));
            }
        }
        let x = Tensor::randn([5, 3, 8], (Kind::Float, tch::Device::Cpu));
        for strategy in [RefViewStrategy::First, RefViewStrategy::Middle, RefViewStrategy::SaddleBalanced, RefViewStrategy::SaddleSimRange] {
            assert_eq!(select_reference_view_on_device(&x, strategy).unwrap().int64_value(&[]), select_reference_view(&x, strategy).unwrap());
        }
    }

    #[test]
    fn orders_are_inverse() {
        for s in 1..7 {
            for r in 0..s {
                let fwd = reference_first_order(s, r);
                let back = original_order(s, r);
                let restored: Vec<i64> = back.iter().map(|&i| fwd[i as usize]).collect();
                assert_eq!(restored, (0..s).collect::<Vec<_>>());
                assert_eq!(fwd[0], r);
            }
        }
    }
}
