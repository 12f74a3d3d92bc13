//! `model/reference_view_selector.py`: which view anchors a scene of three views or more.
use tch::{Kind, Tensor};

use crate::options::RefViewStrategy;

/// Index of the reference view. `x`: (S, N, C) tokens; the class token (index 0) decides.
pub fn select_reference_view(x: &Tensor, strategy: RefViewStrategy) -> i64 {
    select_reference_view_on_device(x, strategy).int64_value(&[])
}

/// `select_reference_view` without reading the result back: a 0-dim int64 tensor on `x`'s
/// device (the same computation, so the same view), so that a forward with three views or
/// more never waits for the device (and can be captured in a CUDA graph).
pub fn select_reference_view_on_device(x: &Tensor, strategy: RefViewStrategy) -> Tensor {
    let s = x.size()[0];
    let constant = |v: i64| Tensor::full([], v, (Kind::Int64, x.device()));
    if s <= 1 {
        return constant(0);
    }
    match strategy {
        RefViewStrategy::First => constant(0),
        RefViewStrategy::Middle => constant(s / 2),
        RefViewStrategy::SaddleBalanced | RefViewStrategy::SaddleSimRange => {
            let cls = x.select(1, 0);
            let cls_norm = cls.norm_scalaropt_dim(2.0, [-1], true);
            let feat = &cls / &cls_norm;
            let eye = Tensor::eye(s, (feat.kind(), feat.device()));
            let sim_no_diag = feat.matmul(&feat.transpose(0, 1)) - eye;
            if strategy == RefViewStrategy::SaddleBalanced {
                let sim_score = sim_no_diag.sum_dim_intlist(&[-1i64][..], false, Kind::Float) / (s - 1) as f64;
                let feat_norm = cls_norm.squeeze_dim(-1);
                let feat_var = feat.var_dim(&[-1i64][..], true, false);
                let normalize = |m: &Tensor| {
                    let (min, max) = (m.min(), m.max());
                    (m - &min) / (max - &min + 1e-8)
                };
                let balance = (normalize(&sim_score) - 0.5).abs()
                    + (normalize(&feat_norm) - 0.5).abs()
                    + (normalize(&feat_var) - 0.5).abs();
                // the view closest to the middle on all three metrics
                balance.argmin(0, false)
            } else {
                (sim_no_diag.amax([-1], false) - sim_no_diag.amin([-1], false)).argmax(0, false)
            }
        }
    }
}

/// `reference_first_order` for a reference held on the device: (S,) int64.
pub fn reference_first_order_on_device(views: i64, reference: &Tensor) -> Tensor {
    let j = Tensor::arange(views, (Kind::Int64, reference.device()));
    let shifted = j.where_self(&j.gt_tensor(reference), &(&j - 1));
    reference.expand([views], false).where_self(&j.eq(0), &shifted)
}

/// `original_order` for a reference held on the device: (S,) int64.
pub fn original_order_on_device(views: i64, reference: &Tensor) -> Tensor {
    let v = Tensor::arange(views, (Kind::Int64, reference.device()));
    let after = v.where_self(&v.gt_tensor(reference), &v.zeros_like());
    (&v + 1).where_self(&v.lt_tensor(reference), &after)
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
                let first = Vec::<i64>::try_from(&reference_first_order_on_device(s, &reference)).unwrap();
                let back = Vec::<i64>::try_from(&original_order_on_device(s, &reference)).unwrap();
                assert_eq!(first, reference_first_order(s, r));
                assert_eq!(back, original_order(s, r));
            }
        }
        let x = Tensor::randn([5, 3, 8], (Kind::Float, tch::Device::Cpu));
        for strategy in [RefViewStrategy::First, RefViewStrategy::Middle, RefViewStrategy::SaddleBalanced, RefViewStrategy::SaddleSimRange] {
            assert_eq!(select_reference_view_on_device(&x, strategy).int64_value(&[]), select_reference_view(&x, strategy));
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
