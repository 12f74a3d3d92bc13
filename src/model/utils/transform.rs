//! `model/utils/transform.py`: the 9-number pose encoding (translation, quaternion xyzw,
//! vertical and horizontal field of view) to camera matrices.
use tch::{Kind, Tensor};

/// Quaternions (..., 4), real part last, to rotation matrices (..., 3, 3).
pub fn quat_to_mat(q: &Tensor) -> Tensor {
    let parts = q.unbind(-1);
    let (i, j, k, r) = (&parts[0], &parts[1], &parts[2], &parts[3]);
    let two_s = 2.0 / (q * q).sum_dim_intlist(&[-1i64][..], false, q.kind());
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

/// `affine_inverse` of (..., 3, 4) rigid transforms: [R | t] -> [R^T | -R^T t].
pub fn affine_inverse(a: &Tensor) -> Tensor {
    let r = a.narrow(-1, 0, 3);
    let t = a.narrow(-1, 3, 1);
    let rt = r.transpose(-2, -1);
    let neg = -rt.matmul(&t);
    Tensor::cat(&[rt, neg], -1)
}

/// Pose encoding (S, 9) of an H x W image to world-to-camera extrinsics (S, 3, 4) and
/// intrinsics (S, 3, 3), as `pose_encoding_to_extri_intri` followed by `affine_inverse`.
pub fn pose_encoding_to_extrinsics_intrinsics(encoding: &Tensor, height: i64, width: i64) -> (Tensor, Tensor) {
    let t = encoding.narrow(-1, 0, 3);
    let quat = encoding.narrow(-1, 3, 4);
    let fov_h = encoding.select(-1, 7);
    let fov_w = encoding.select(-1, 8);
    let c2w = Tensor::cat(&[quat_to_mat(&quat), t.unsqueeze(-1)], -1);
    let fy = (height as f64 / 2.0) / (&fov_h / 2.0).tan().clamp_min(1e-6);
    let fx = (width as f64 / 2.0) / (&fov_w / 2.0).tan().clamp_min(1e-6);
    let zero = fx.zeros_like();
    let one = fx.ones_like();
    let cx = zero.full_like(width as f64 / 2.0);
    let cy = zero.full_like(height as f64 / 2.0);
    let intrinsics = Tensor::stack(&[&fx, &zero, &cx, &zero, &fy, &cy, &zero, &zero, &one], -1);
    let mut shape = fx.size();
    shape.extend([3, 3]);
    (affine_inverse(&c2w), intrinsics.reshape(shape).to_kind(Kind::Float))
}
