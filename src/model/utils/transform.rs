//! `model/utils/transform.py`: the 9-number pose encoding (translation, quaternion xyzw,
//! vertical and horizontal field of view) to camera matrices and back.
//!
//! `scalar / tensor` is written `tensor.reciprocal() * scalar`: that is how PyTorch evaluates
//! it (`Tensor.__rtruediv__`), and it rounds differently from a division.
use tch::{Kind, Tensor};

use crate::utils::geometry::affine_inverse;

/// Quaternions (..., 4), real part last, to rotation matrices (..., 3, 3).
pub fn quat_to_mat(q: &Tensor) -> Tensor {
    let parts = q.unbind(-1);
    let (i, j, k, r) = (&parts[0], &parts[1], &parts[2], &parts[3]);
    let two_s = (q * q).sum_dim_intlist(&[-1i64][..], false, q.kind()).reciprocal() * 2.0;
    let o = Tensor::stack(
        &[
            1.0 - &two_s * (j * j + k * k),
            &two_s * (i * j - k * r),
            &two_s * (i * k + j * r),
            &two_s * (i * j + k * r),
            1.0 - &two_s * (i * i + k * k),
            &two_s * (j * k - i * r),
            &two_s * (i * k - j * r),
            &two_s * (j * k + i * r),
            1.0 - &two_s * (i * i + j * j),
        ],
        -1,
    );
    let mut shape = q.size();
    shape.pop();
    shape.extend([3, 3]);
    o.reshape(shape)
}

/// `_sqrt_positive_part`: sqrt(max(0, x)).
fn sqrt_positive_part(x: &Tensor) -> Tensor {
    x.sqrt().where_self(&x.gt(0.0), &x.zeros_like())
}

/// `standardize_quaternion`: the sign with a non-negative real part (last component).
fn standardize_quaternion(q: &Tensor) -> Tensor {
    (-q).where_self(&q.narrow(-1, 3, 1).lt(0.0), q)
}

/// Rotation matrices (..., 3, 3) to quaternions (..., 4), real part last (`mat_to_quat`): of
/// the four algebraically equal candidates, the best-conditioned one.
pub fn mat_to_quat(matrix: &Tensor) -> Tensor {
    let mut batch = matrix.size();
    batch.truncate(batch.len() - 2);
    let mut flat_shape = batch.clone();
    flat_shape.push(9);
    let m = matrix.reshape(flat_shape).unbind(-1);
    let (m00, m01, m02, m10, m11, m12, m20, m21, m22) = (&m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &m[6], &m[7], &m[8]);
    let q_abs = sqrt_positive_part(&Tensor::stack(
        &[
            1.0 + m00 + m11 + m22,
            1.0 + m00 - m11 - m22,
            1.0 - m00 + m11 - m22,
            1.0 - m00 - m11 + m22,
        ],
        -1,
    ));
    let sq = |i: i64| q_abs.select(-1, i).pow_tensor_scalar(2);
    // The quaternion multiplied by each of r, i, j, k.
    let quat_by_rijk = Tensor::stack(
        &[
            Tensor::stack(&[sq(0), m21 - m12, m02 - m20, m10 - m01], -1),
            Tensor::stack(&[m21 - m12, sq(1), m10 + m01, m02 + m20], -1),
            Tensor::stack(&[m02 - m20, m10 + m01, sq(2), m12 + m21], -1),
            Tensor::stack(&[m10 - m01, m20 + m02, m21 + m12, sq(3)], -1),
        ],
        -2,
    );
    const FLOOR: f64 = 0.1;
    let candidates = quat_by_rijk / (q_abs.unsqueeze(-1).clamp_min(FLOOR) * 2.0);
    let best = q_abs.argmax(-1, true); // (..., 1)
    let mut index_shape = batch.clone();
    index_shape.extend([1, 4]);
    let out = candidates.gather(-2, &best.unsqueeze(-1).expand(index_shape, false), false).squeeze_dim(-2);
    // rijk -> ijkr
    // [1, 2, 3, 0], made on the device (no host copy: capturable in a CUDA graph).
    let rijk_to_ijkr = (Tensor::arange(4, (Kind::Int64, out.device())) + 1).remainder(4);
    let out = out.index_select(-1, &rijk_to_ijkr);
    standardize_quaternion(&out)
}

/// `extri_intri_to_pose_encoding`: camera-to-world (S, 3|4, 4) and intrinsics (S, 3, 3) of an
/// H x W image to (S, 9) encodings [t, quaternion xyzw, fov_h, fov_w].
pub fn extri_intri_to_pose_encoding(c2w: &Tensor, intrinsics: &Tensor, height: i64, width: i64) -> Tensor {
    let r = c2w.narrow(-2, 0, 3).narrow(-1, 0, 3);
    let t = c2w.narrow(-2, 0, 3).select(-1, 3);
    let quat = mat_to_quat(&r);
    let fy = intrinsics.select(-2, 1).select(-1, 1);
    let fx = intrinsics.select(-2, 0).select(-1, 0);
    let fov_h = (fy.reciprocal() * (height as f64 / 2.0)).atan() * 2.0;
    let fov_w = (fx.reciprocal() * (width as f64 / 2.0)).atan() * 2.0;
    Tensor::cat(&[t, quat, fov_h.unsqueeze(-1), fov_w.unsqueeze(-1)], -1).to_kind(Kind::Float)
}

/// Pose encoding (S, 9) of an H x W image to world-to-camera extrinsics (S, 3, 4) and
/// intrinsics (S, 3, 3), as `pose_encoding_to_extri_intri` followed by `affine_inverse`.
pub fn pose_encoding_to_extrinsics_intrinsics(encoding: &Tensor, height: i64, width: i64) -> (Tensor, Tensor) {
    let t = encoding.narrow(-1, 0, 3);
    let quat = encoding.narrow(-1, 3, 4);
    let fov_h = encoding.select(-1, 7);
    let fov_w = encoding.select(-1, 8);
    let c2w = Tensor::cat(&[quat_to_mat(&quat), t.unsqueeze(-1)], -1);
    let fy = (&fov_h / 2.0).tan().clamp_min(1e-6).reciprocal() * (height as f64 / 2.0);
    let fx = (&fov_w / 2.0).tan().clamp_min(1e-6).reciprocal() * (width as f64 / 2.0);
    let zero = fx.zeros_like();
    let one = fx.ones_like();
    let cx = zero.full_like(width as f64 / 2.0);
    let cy = zero.full_like(height as f64 / 2.0);
    let intrinsics = Tensor::stack(&[&fx, &zero, &cx, &zero, &fy, &cy, &zero, &zero, &one], -1);
    let mut shape = fx.size();
    shape.extend([3, 3]);
    (affine_inverse(&c2w), intrinsics.reshape(shape).to_kind(Kind::Float))
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
        let back = mat_to_quat(&quat_to_mat(&q));
        // Same rotation up to the sign; standardised to a non-negative real part.
        let expected = standardize_quaternion(&q);
        assert!((back - expected).abs().max().double_value(&[]) < 1e-6);
    }

    #[test]
    fn pose_encoding_round_trips() {
        let q = Tensor::from_slice(&[0.1f32, -0.2, 0.3, 0.9]).reshape([1, 4]);
        let q = &q / q.norm_scalaropt_dim(2.0, [-1], true);
        let t = Tensor::from_slice(&[0.5f32, -1.0, 2.0]).reshape([1, 3]);
        let c2w = Tensor::cat(&[quat_to_mat(&q), t.unsqueeze(-1)], -1);
        let k = Tensor::from_slice(&[300f32, 0., 70., 0., 280., 49., 0., 0., 1.]).reshape([1, 3, 3]);
        let enc = extri_intri_to_pose_encoding(&c2w, &k, 98, 140);
        let (w2c, k_back) = pose_encoding_to_extrinsics_intrinsics(&enc, 98, 140);
        assert!((affine_inverse(&w2c) - &c2w).abs().max().double_value(&[]) < 1e-5);
        assert!((k_back - k).abs().max().double_value(&[]) < 1e-3);
    }
}
