//! `utils/geometry.py`: the camera-matrix helpers the pose code uses, on tensors (as the
//! network code calls them) and on host 4x4 matrices in f64 (as the numpy pose alignment does).
use tch::{Kind, Tensor};

use crate::error::Result;

/// Row-major 4x4 matrix on the host.
pub type Mat4 = [[f64; 4]; 4];
/// Row-major 3x3 matrix on the host.
pub type Mat3 = [[f64; 3]; 3];

/// `affine_inverse` of (..., 4, 4) (or (..., 3, 4)) rigid transforms: [R | t] -> [R^T | -R^T t],
/// keeping whatever rows follow the first three (the official copies them, it does not invert them).
pub fn affine_inverse(a: &Tensor) -> Result<Tensor> {
    let rows = a.size()[a.dim() - 2];
    let top = a.f_narrow(-2, 0, 3)?;
    let r = top.f_narrow(-1, 0, 3)?;
    let t = top.f_narrow(-1, 3, 1)?;
    let rt = r.f_transpose(-2, -1)?;
    let neg = rt.f_matmul(&t)?.f_neg()?;
    let inverted = Tensor::f_cat(&[rt, neg], -1)?;
    Ok(if rows > 3 { Tensor::f_cat(&[inverted, a.f_narrow(-2, 3, rows - 3)?], -2)? } else { inverted })
}

/// `as_homogeneous`: (..., 3, 4) -> (..., 4, 4) with a [0, 0, 0, 1] last row; (..., 4, 4) as is.
pub fn as_homogeneous(ext: &Tensor) -> Result<Tensor> {
    if ext.size()[ext.dim() - 2] == 4 {
        return Ok(ext.shallow_clone());
    }
    let last = ext.f_narrow(-2, 0, 1)?.f_zeros_like()?;
    let _ = last.f_narrow(-1, 3, 1)?.f_fill_(1.0)?;
    Ok(Tensor::f_cat(&[ext, &last], -2)?)
}

/// `unproject_depth(ones, K, c2w=None, ixt_normalized=True, ...)`: the camera-space points at
/// depth 1 of an `ny` x `nx` grid of patch centres on an image normalised to 2 x 2
/// (the only form `utils/ray_utils.py` calls). `intrinsics`: (S, 3, 3) -> (S, ny, nx, 3).
pub fn unproject_unit_depth_normalized(intrinsics: &Tensor, ny: i64, nx: i64) -> Result<Tensor> {
    let device = intrinsics.device();
    let (dx, dy) = (1.0 / nx as f64, 1.0 / ny as f64);
    let (max_x, max_y) = (1.0 - dx, 1.0 - dy);
    const GRID_SHIFT: f64 = 1.0;
    let ys = Tensor::f_linspace(-max_y + GRID_SHIFT, max_y + GRID_SHIFT, ny, (Kind::Float, device))?;
    let xs = Tensor::f_linspace(-max_x + GRID_SHIFT, max_x + GRID_SHIFT, nx, (Kind::Float, device))?;
    let grids = Tensor::f_meshgrid_indexing(&[&ys, &xs], "ij")?;
    let (y_grid, x_grid) = (&grids[0], &grids[1]);
    // pixel_space_to_camera_space: K^-1 [x, y, 1]^T times the depth (1).
    let pixels = Tensor::f_stack(&[x_grid, y_grid, &x_grid.f_ones_like()?], -1)?;
    let camera = Tensor::f_einsum("vij,hwj->vhwi", &[intrinsics.f_inverse()?, pixels], None::<i64>)?;
    // camera_space_to_world_space with the identity c2w.
    let homogeneous = Tensor::f_cat(&[&camera, &camera.f_narrow(-1, 0, 1)?.f_ones_like()?], -1)?;
    let views = intrinsics.size()[0];
    let eye = Tensor::f_eye(4, (Kind::Float, device))?.f_unsqueeze(0)?.f_expand([views, 4, 4], false)?;
    Ok(Tensor::f_einsum("vij,vhwj->vhwi", &[eye, homogeneous], None::<i64>)?.f_narrow(-1, 0, 3)?)
}

/// `affine_inverse_np` of one host 4x4 rigid transform.
pub fn affine_inverse_mat4(a: &Mat4) -> Mat4 {
    let mut out = *a;
    for i in 0..3 {
        for j in 0..3 {
            out[i][j] = a[j][i];
        }
        out[i][3] = -(0..3).map(|k| a[k][i] * a[k][3]).sum::<f64>();
    }
    out
}

/// The 3x3 rotation block and translation column of a 4x4 transform.
pub fn rotation_translation(a: &Mat4) -> (Mat3, [f64; 3]) {
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        r[i].copy_from_slice(&a[i][..3]);
    }
    (r, [a[0][3], a[1][3], a[2][3]])
}

pub fn mat3_mul(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut out = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            out[i][j] = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    out
}

pub fn mat3_vec(a: &Mat3, v: &[f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|i| (0..3).map(|k| a[i][k] * v[k]).sum())
}

pub fn det3(a: &Mat3) -> f64 {
    a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) - a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0])
        + a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0])
}

/// `np.linalg.svd` of a 3x3 matrix: (U, singular values descending, V^T), through LAPACK in f64.
/// None for a matrix with a non-finite entry (LAPACK refuses it) or when libtorch fails.
pub fn svd3(a: &Mat3) -> Option<(Mat3, [f64; 3], Mat3)> {
    if a.iter().flatten().any(|v| !v.is_finite()) {
        return None;
    }
    let flat: Vec<f64> = a.iter().flatten().copied().collect();
    let run = || -> std::result::Result<(Mat3, [f64; 3], Mat3), tch::TchError> {
        let t = Tensor::f_from_slice(&flat)?.f_reshape([3, 3])?;
        let (u, s, v) = t.f_svd(false, true)?;
        let vh = v.f_transpose(-2, -1)?;
        let to_mat = |m: &Tensor| -> std::result::Result<Mat3, tch::TchError> {
            let v = Vec::<f64>::try_from(&m.f_contiguous()?.f_reshape([-1])?)?;
            Ok([[v[0], v[1], v[2]], [v[3], v[4], v[5]], [v[6], v[7], v[8]]])
        };
        let s = Vec::<f64>::try_from(&s)?;
        Ok((to_mat(&u)?, [s[0], s[1], s[2]], to_mat(&vh)?))
    };
    run().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn affine_inverse_inverts_rigid_transforms() {
        let a: Mat4 = [[0.0, -1.0, 0.0, 1.0], [1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 1.0, 3.0], [0.0, 0.0, 0.0, 1.0]];
        let inv = affine_inverse_mat4(&a);
        let flat: Vec<f32> = a.iter().flatten().map(|&v| v as f32).collect();
        let t = Tensor::from_slice(&flat).reshape([1, 4, 4]);
        let prod = t.matmul(&affine_inverse(&t).unwrap());
        assert!((prod - Tensor::eye(4, (Kind::Float, Device::Cpu))).abs().max().double_value(&[]) < 1e-6);
        let inv_t: Vec<f32> = Vec::try_from(&affine_inverse(&t).unwrap().reshape([-1])).unwrap();
        for (x, y) in inv.iter().flatten().zip(inv_t) {
            assert!((*x as f32 - y).abs() < 1e-6);
        }
        // 3x4 in, 3x4 out; as_homogeneous adds the last row back.
        let top = t.narrow(1, 0, 3);
        assert_eq!(affine_inverse(&top).unwrap().size(), [1, 3, 4]);
        assert!(as_homogeneous(&top).unwrap().equal(&t));
    }

    #[test]
    fn unit_depth_grid_spans_the_normalised_image() {
        let k = Tensor::eye(3, (Kind::Float, Device::Cpu));
        let _ = k.get(0).get(2).fill_(1.0);
        let _ = k.get(1).get(2).fill_(1.0);
        let pts = unproject_unit_depth_normalized(&k.unsqueeze(0), 2, 4).unwrap();
        assert_eq!(pts.size(), [1, 2, 4, 3]);
        // Patch centres at x = -0.75, -0.25, 0.25, 0.75 and y = -0.5, 0.5, depth 1.
        let v: Vec<f32> = Vec::try_from(&pts.reshape([-1])).unwrap();
        assert_eq!(&v[..3], &[-0.75, -0.5, 1.0]);
        assert_eq!(&v[v.len() - 3..], &[0.75, 0.5, 1.0]);
    }
}
