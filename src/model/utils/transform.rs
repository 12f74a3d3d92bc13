//! `model/utils/transform.py`: the 9-number pose encoding (translation, quaternion xyzw,
//! vertical and horizontal field of view) to camera matrices and back.
//!
//! `scalar / tensor` is written `tensor.reciprocal() * scalar`: that is how PyTorch evaluates
//! it (`Tensor.__rtruediv__`), and it rounds differently from a division.
use tch::{Kind, Tensor};

use crate::error::Result;
use crate::utils::geometry::affine_inverse;

/// `1.0 - t` as tch evaluates `f64 - Tensor`: -(t - 1.0).
fn one_minus(t: &Tensor) -> Result<Tensor> {
    Ok(t.f_sub_scalar(1.0)?.f_neg()?)
}

/// Quaternions (..., 4), real part last, to rotation matrices (..., 3, 3).
pub fn quat_to_mat(q: &Tensor) -> Result<Tensor> {
    let parts = q.f_unbind(-1)?;
    let (i, j, k, r) = (&parts[0], &parts[1], &parts[2], &parts[3]);
    let two_s = q.f_mul(q)?.f_sum_dim_intlist(&[-1i64][..], false, q.kind())?.f_reciprocal()?.f_mul_scalar(2.0)?;
    // a * b + c * d and a * b - c * d, scaled by two_s.
    let sum = |a: &Tensor, b: &Tensor, c: &Tensor, d: &Tensor| -> Result<Tensor> {
        Ok(two_s.f_mul(&a.f_mul(b)?.f_add(&c.f_mul(d)?)?)?)
    };
    let difference = |a: &Tensor, b: &Tensor, c: &Tensor, d: &Tensor| -> Result<Tensor> {
        Ok(two_s.f_mul(&a.f_mul(b)?.f_sub(&c.f_mul(d)?)?)?)
    };
    let o = Tensor::f_stack(
        &[
            one_minus(&sum(j, j, k, k)?)?,
            difference(i, j, k, r)?,
            sum(i, k, j, r)?,
            sum(i, j, k, r)?,
            one_minus(&sum(i, i, k, k)?)?,
            difference(j, k, i, r)?,
            difference(i, k, j, r)?,
            sum(j, k, i, r)?,
            one_minus(&sum(i, i, j, j)?)?,
        ],
        -1,
    )?;
    let mut shape = q.size();
    shape.pop();
    shape.extend([3, 3]);
    Ok(o.f_reshape(shape)?)
}

/// `_sqrt_positive_part`: sqrt(max(0, x)).
fn sqrt_positive_part(x: &Tensor) -> Result<Tensor> {
    Ok(x.f_sqrt()?.f_where_self(&x.f_gt(0.0)?, &x.f_zeros_like()?)?)
}

/// `standardize_quaternion`: the sign with a non-negative real part (last component).
fn standardize_quaternion(q: &Tensor) -> Result<Tensor> {
    Ok(q.f_neg()?.f_where_self(&q.f_narrow(-1, 3, 1)?.f_lt(0.0)?, q)?)
}

/// Rotation matrices (..., 3, 3) to quaternions (..., 4), real part last (`mat_to_quat`): of
/// the four algebraically equal candidates, the best-conditioned one.
pub fn mat_to_quat(matrix: &Tensor) -> Result<Tensor> {
    let mut batch = matrix.size();
    batch.truncate(batch.len() - 2);
    let mut flat_shape = batch.clone();
    flat_shape.push(9);
    let m = matrix.f_reshape(flat_shape)?.f_unbind(-1)?;
    let (m00, m01, m02, m10, m11, m12, m20, m21, m22) = (&m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &m[6], &m[7], &m[8]);
    // `1.0 + a` is tch's `a + 1.0`; `1.0 - a` is `-(a - 1.0)` (see `one_minus`).
    let q_abs = sqrt_positive_part(&Tensor::f_stack(
        &[
            m00.f_add_scalar(1.0)?.f_add(m11)?.f_add(m22)?,
            m00.f_add_scalar(1.0)?.f_sub(m11)?.f_sub(m22)?,
            one_minus(m00)?.f_add(m11)?.f_sub(m22)?,
            one_minus(m00)?.f_sub(m11)?.f_add(m22)?,
        ],
        -1,
    )?)?;
    let sq = |i: i64| q_abs.f_select(-1, i)?.f_pow_tensor_scalar(2i64);
    // The quaternion multiplied by each of r, i, j, k.
    let quat_by_rijk = Tensor::f_stack(
        &[
            Tensor::f_stack(&[sq(0)?, m21.f_sub(m12)?, m02.f_sub(m20)?, m10.f_sub(m01)?], -1)?,
            Tensor::f_stack(&[m21.f_sub(m12)?, sq(1)?, m10.f_add(m01)?, m02.f_add(m20)?], -1)?,
            Tensor::f_stack(&[m02.f_sub(m20)?, m10.f_add(m01)?, sq(2)?, m12.f_add(m21)?], -1)?,
            Tensor::f_stack(&[m10.f_sub(m01)?, m20.f_add(m02)?, m21.f_add(m12)?, sq(3)?], -1)?,
        ],
        -2,
    )?;
    const FLOOR: f64 = 0.1;
    let candidates = quat_by_rijk.f_div(&q_abs.f_unsqueeze(-1)?.f_clamp_min(FLOOR)?.f_mul_scalar(2.0)?)?;
    let best = q_abs.f_argmax(-1, true)?; // (..., 1)
    let mut index_shape = batch.clone();
    index_shape.extend([1, 4]);
    let out = candidates.f_gather(-2, &best.f_unsqueeze(-1)?.f_expand(index_shape, false)?, false)?.f_squeeze_dim(-2)?;
    // rijk -> ijkr
    // [1, 2, 3, 0], made on the device (no host copy: capturable in a CUDA graph).
    let rijk_to_ijkr = Tensor::f_arange(4, (Kind::Int64, out.device()))?.f_add_scalar(1i64)?.f_remainder(4i64)?;
    let out = out.f_index_select(-1, &rijk_to_ijkr)?;
    standardize_quaternion(&out)
}

/// `extri_intri_to_pose_encoding`: camera-to-world (S, 3|4, 4) and intrinsics (S, 3, 3) of an
/// H x W image to (S, 9) encodings [t, quaternion xyzw, fov_h, fov_w].
pub fn extri_intri_to_pose_encoding(c2w: &Tensor, intrinsics: &Tensor, height: i64, width: i64) -> Result<Tensor> {
    let r = c2w.f_narrow(-2, 0, 3)?.f_narrow(-1, 0, 3)?;
    let t = c2w.f_narrow(-2, 0, 3)?.f_select(-1, 3)?;
    let quat = mat_to_quat(&r)?;
    let fy = intrinsics.f_select(-2, 1)?.f_select(-1, 1)?;
    let fx = intrinsics.f_select(-2, 0)?.f_select(-1, 0)?;
    let fov_h = fy.f_reciprocal()?.f_mul_scalar(height as f64 / 2.0)?.f_atan()?.f_mul_scalar(2.0)?;
    let fov_w = fx.f_reciprocal()?.f_mul_scalar(width as f64 / 2.0)?.f_atan()?.f_mul_scalar(2.0)?;
    Ok(Tensor::f_cat(&[t, quat, fov_h.f_unsqueeze(-1)?, fov_w.f_unsqueeze(-1)?], -1)?.f_to_kind(Kind::Float)?)
}

/// Pose encoding (S, 9) of an H x W image to world-to-camera extrinsics (S, 3, 4) and
/// intrinsics (S, 3, 3), as `pose_encoding_to_extri_intri` followed by `affine_inverse`.
pub fn pose_encoding_to_extrinsics_intrinsics(encoding: &Tensor, height: i64, width: i64) -> Result<(Tensor, Tensor)> {
    let t = encoding.f_narrow(-1, 0, 3)?;
    let quat = encoding.f_narrow(-1, 3, 4)?;
    let fov_h = encoding.f_select(-1, 7)?;
    let fov_w = encoding.f_select(-1, 8)?;
    let c2w = Tensor::f_cat(&[quat_to_mat(&quat)?, t.f_unsqueeze(-1)?], -1)?;
    let focal = |fov: &Tensor, size: i64| -> Result<Tensor> {
        Ok(fov.f_div_scalar(2.0)?.f_tan()?.f_clamp_min(1e-6)?.f_reciprocal()?.f_mul_scalar(size as f64 / 2.0)?)
    };
    let fy = focal(&fov_h, height)?;
    let fx = focal(&fov_w, width)?;
    let zero = fx.f_zeros_like()?;
    let one = fx.f_ones_like()?;
    let cx = zero.f_full_like(width as f64 / 2.0)?;
    let cy = zero.f_full_like(height as f64 / 2.0)?;
    let intrinsics = Tensor::f_stack(&[&fx, &zero, &cx, &zero, &fy, &cy, &zero, &zero, &one], -1)?;
    let mut shape = fx.size();
    shape.extend([3, 3]);
    Ok((affine_inverse(&c2w)?, intrinsics.f_reshape(shape)?.f_to_kind(Kind::Float)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quaternions_round_trip_through_matrices() {
        // Rotations near each of the four branches of mat_to_quat (w, x, y, z largest).
        let q = Tensor::from_slice(&[
            0.1f32, -0.2, 0.3, 0.9, //
            0.9, 0.1, -0.3, 0.2, //
            0.2, -0.9, 0.1, 0.3, //
            -0.1, 0.3, 0.95, -0.2,
        ])
        .reshape([4, 4]);
        let q = &q / q.norm_scalaropt_dim(2.0, [-1], true);
        let back = mat_to_quat(&quat_to_mat(&q).unwrap()).unwrap();
        // Same rotation up to the sign; standardised to a non-negative real part.
        let expected = standardize_quaternion(&q).unwrap();
        assert!((back - expected).abs().max().double_value(&[]) < 1e-6);
    }

    #[test]
    fn pose_encoding_round_trips() {
        let q = Tensor::from_slice(&[0.1f32, -0.2, 0.3, 0.9]).reshape([1, 4]);
        let q = &q / q.norm_scalaropt_dim(2.0, [-1], true);
        let t = Tensor::from_slice(&[0.5f32, -1.0, 2.0]).reshape([1, 3]);
        let c2w = Tensor::cat(&[quat_to_mat(&q).unwrap(), t.unsqueeze(-1)], -1);
        let k = Tensor::from_slice(&[300f32, 0., 70., 0., 280., 49., 0., 0., 1.]).reshape([1, 3, 3]);
        let enc = extri_intri_to_pose_encoding(&c2w, &k, 98, 140).unwrap();
        let (w2c, k_back) = pose_encoding_to_extrinsics_intrinsics(&enc, 98, 140).unwrap();
        assert!((affine_inverse(&w2c).unwrap() - &c2w).abs().max().double_value(&[]) < 1e-5);
        assert!((k_back - k).abs().max().double_value(&[]) < 1e-3);
    }
}
