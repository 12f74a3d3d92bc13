//! `utils/ray_utils.py`: camera pose and intrinsics from the per-pixel rays of the DualDPT
//! auxiliary branch. Each ray map gives, per pixel, a world-space direction (channels 0-2)
//! and the camera centre (3-5); a weighted RANSAC homography between the pixel grid and the
//! directions factors (QL) into rotation and intrinsics.
//!
//! The official draws the RANSAC samples from torch's unseeded global generator; we draw the
//! identical kind of samples (`torch.randperm`, replicated by [`TorchCpuGenerator`]) from a
//! generator seeded with [`RAY_POSE_SEED`] at every call, so the result is deterministic and
//! equals the official's when torch's generator is seeded with the same value on the CPU.
use tch::{IndexOp, Kind, Tensor};

use super::geometry::unproject_unit_depth_normalized;
use super::rng::TorchCpuGenerator;
use crate::error::{Error, Result};

/// Seed of the ray-pose RANSAC sampling (the official leaves it to torch's global state).
pub const RAY_POSE_SEED: u64 = 42;

/// Why the rays of a view do not determine a camera.
#[derive(Clone, Debug, PartialEq)]
pub struct RayPoseError {
    pub view: usize,
    pub inliers: usize,
}

impl From<RayPoseError> for Error {
    fn from(e: RayPoseError) -> Self {
        Error::InvalidArgument(format!(
            "ray-based pose: the rays of view {} agree on no camera ({} consistent rays, 4 needed); \
             use the camera decoder (use_ray_pose = false) for these images",
            e.view, e.inliers
        ))
    }
}

/// `get_params_for_ransac(N)`: 100 draws of 8 indices among the `n_sample` most confident rays.
fn get_params_for_ransac(n: i64, generator: &mut TorchCpuGenerator) -> Result<(i64, i64, Tensor)> {
    const N_ITER: usize = 100;
    const SAMPLE_RATIO: f64 = 0.3;
    const NUM_SAMPLE_FOR_RANSAC: usize = 8;
    let n_sample = (NUM_SAMPLE_FOR_RANSAC as i64).max((n as f64 * SAMPLE_RATIO) as i64);
    let mut rows = Vec::with_capacity(N_ITER * NUM_SAMPLE_FOR_RANSAC);
    for _ in 0..N_ITER {
        rows.extend_from_slice(&generator.randperm(n_sample as usize)[..NUM_SAMPLE_FOR_RANSAC]);
    }
    let idx = Tensor::f_from_slice(&rows)?.f_reshape([N_ITER as i64, NUM_SAMPLE_FOR_RANSAC as i64])?;
    Ok((N_ITER as i64, n_sample, idx))
}

/// The homography equations `A h = 0` of weighted correspondences (..., K, 2) -> (..., 2K, 9).
fn homography_system(src: &Tensor, dst: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let last = src.dim() as i64 - 1;
    let w = weight.f_sqrt()?.f_unsqueeze(-1)?;
    let x = src.f_narrow(last, 0, 1)?;
    let y = src.f_narrow(last, 1, 1)?;
    let u = dst.f_narrow(last, 0, 1)?;
    let v = dst.f_narrow(last, 1, 1)?;
    let zeros = x.f_zeros_like()?;
    let neg_x_w = x.f_neg()?.f_mul(&w)?;
    let neg_y_w = y.f_neg()?.f_mul(&w)?;
    let neg_w = w.f_neg()?;
    let a1 = Tensor::f_cat(
        &[
            &neg_x_w,
            &neg_y_w,
            &neg_w,
            &zeros,
            &zeros,
            &zeros,
            &x.f_mul(&u)?.f_mul(&w)?,
            &y.f_mul(&u)?.f_mul(&w)?,
            &u.f_mul(&w)?,
        ],
        last,
    )?;
    let a2 = Tensor::f_cat(
        &[
            &zeros,
            &zeros,
            &zeros,
            &neg_x_w,
            &neg_y_w,
            &neg_w,
            &x.f_mul(&v)?.f_mul(&w)?,
            &y.f_mul(&v)?.f_mul(&w)?,
            &v.f_mul(&w)?,
        ],
        last,
    )?;
    Ok(Tensor::f_cat(&[a1, a2], last - 1)?)
}

/// `find_homography_least_squares_weighted_torch`: (K, 2), (K, 2), (K,) -> (3, 3), H[2, 2] = 1.
/// Like the official, a full SVD: it also builds a 2K x 2K U that is never used (1 GB and
/// seconds at the 8000 points kept), but a thin SVD takes another LAPACK path whose null
/// vector differs by ~1e-5, which the focal lengths amplify to near the parity tolerance.
fn find_homography_least_squares_weighted(src: &Tensor, dst: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let a = homography_system(src, dst, weight)?;
    let (_, _, v) = a.f_svd(false, true)?;
    let h = v.f_select(-1, -1)?.f_reshape([3, 3])?;
    Ok(h.f_div(&h.f_i((2, 2))?)?)
}

/// `find_homography_least_squares_weighted_torch_batch`: (B, K, 2) -> (B, 3, 3).
fn find_homography_least_squares_weighted_batch(src: &Tensor, dst: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let b = src.size()[0];
    let a = homography_system(src, dst, weight)?;
    // `torch.linalg.svd(A)` (full matrices); its last row of V^T is V's last column.
    let (_, _, v) = a.f_svd(false, true)?;
    let h = v.f_select(-1, -1)?.f_reshape([b, 3, 3])?;
    Ok(h.f_div(&h.f_narrow(1, 2, 1)?.f_narrow(2, 2, 1)?)?)
}

/// `ransac_find_homography_weighted_fast_batch` for a chunk of views: src, dst (B, N, 2),
/// weights (B, N); `rand_sample_iters_idx` (n_iter, 8) indexes the `n_sample` best rays.
#[allow(clippy::too_many_arguments)]
fn ransac_find_homography_weighted_fast_batch(
    src: &Tensor,
    dst: &Tensor,
    weight: &Tensor,
    n_sample: i64,
    n_iter: i64,
    reproj_threshold: f64,
    rand_sample_iters_idx: &Tensor,
    max_inlier_num: usize,
    first_view: usize,
    generator: &mut TorchCpuGenerator,
) -> Result<Tensor> {
    let (b, n, _) = src.size3()?;
    let device = src.device();
    let per_sample = rand_sample_iters_idx.size2()?.1;
    let sorted_idx = weight.f_argsort(1, true)?;
    let candidate_idx = sorted_idx.f_narrow(1, 0, n_sample)?;
    let rand_idx = candidate_idx.f_index_select(1, &rand_sample_iters_idx.f_reshape([-1])?.f_to_device(device)?)?; // (B, n_iter*8)
    let gather = |t: &Tensor| -> Result<Tensor> {
        let parts = (0..b)
            .map(|i| t.f_get(i)?.f_index_select(0, &rand_idx.f_get(i)?))
            .collect::<std::result::Result<Vec<Tensor>, _>>()?;
        Ok(Tensor::f_stack(&parts, 0)?)
    };
    let src_batch = gather(src)?.f_reshape([b * n_iter, per_sample, 2])?;
    let dst_batch = gather(dst)?.f_reshape([b * n_iter, per_sample, 2])?;
    let weight_batch = gather(&weight.f_unsqueeze(-1)?)?.f_reshape([b * n_iter, per_sample])?;
    let h_batch = find_homography_least_squares_weighted_batch(&src_batch, &dst_batch, &weight_batch)?;

    // Score every hypothesis on every ray: confidence-weighted count of rays reprojected
    // within the threshold.
    let src_homo = Tensor::f_cat(&[src, &src.f_narrow(2, 0, 1)?.f_ones_like()?], 2)?;
    let src_homo_flat = src_homo.f_unsqueeze(1)?.f_expand([b, n_iter, n, 3], false)?.f_reshape([-1, n, 3])?;
    let proj = src_homo_flat.f_bmm(&h_batch.f_transpose(1, 2)?)?;
    let proj_xy = proj.f_narrow(2, 0, 2)?.f_div(&proj.f_narrow(2, 2, 1)?)?.f_reshape([b, n_iter, n, 2])?;
    let dst_expand = dst.f_unsqueeze(1)?.f_expand([b, n_iter, n, 2], false)?;
    let error = proj_xy.f_sub(&dst_expand)?.f_square()?.f_sum_dim_intlist(&[3i64][..], false, Kind::Float)?.f_sqrt()?;
    let inlier_mask = error.f_lt(reproj_threshold)?;
    let weight_expand = weight.f_unsqueeze(1)?.f_expand([b, n_iter, n], false)?;
    let total_score = inlier_mask.f_mul(&weight_expand)?.f_sum_dim_intlist(&[2i64][..], false, Kind::Float)?;
    let best_idx = total_score.f_argmax(1, false)?;

    let mut refits = Vec::with_capacity(b as usize);
    for i in 0..b {
        let best = best_idx.f_int64_value(&[i])?;
        let mask = inlier_mask.f_get(i)?.f_get(best)?;
        let keep = mask.f_nonzero()?.f_squeeze_dim(1)?;
        let inlier_src = src.f_get(i)?.f_index_select(0, &keep)?;
        let inlier_dst = dst.f_get(i)?.f_index_select(0, &keep)?;
        let inlier_weight = weight.f_get(i)?.f_index_select(0, &keep)?;
        let mut sorted_idx = inlier_weight.f_argsort(0, true)?;
        let count = sorted_idx.size1()? as usize;
        if count > max_inlier_num {
            // A random subset of the 95 % most confident inliers.
            let keep_len = ((count as f64 * 0.95) as usize).max(max_inlier_num);
            sorted_idx = sorted_idx.f_narrow(0, 0, keep_len as i64)?;
            let perm = generator.randperm(keep_len);
            let perm = Tensor::f_from_slice(&perm[..max_inlier_num])?.f_to_device(device)?;
            sorted_idx = sorted_idx.f_index_select(0, &perm)?;
        }
        const MIN_POINTS: usize = 4;
        if sorted_idx.size1()? < MIN_POINTS as i64 {
            return Err(RayPoseError { view: first_view + i as usize, inliers: count }.into());
        }
        refits.push(find_homography_least_squares_weighted(
            &inlier_src.f_index_select(0, &sorted_idx)?,
            &inlier_dst.f_index_select(0, &sorted_idx)?,
            &inlier_weight.f_index_select(0, &sorted_idx)?,
        )?);
    }
    Ok(Tensor::f_stack(&refits, 0)?)
}

/// `ql_decomposition`: A = Q L with Q orthogonal and L lower triangular with a positive diagonal.
pub fn ql_decomposition(a: &Tensor) -> Result<(Tensor, Tensor)> {
    let options = (Kind::Float, a.device());
    let p = Tensor::f_from_slice(&[0f32, 0., 1., 0., 1., 0., 1., 0., 0.])?
        .f_reshape([3, 3])?
        .f_to_device(a.device())?
        .f_to_kind(options.0)?;
    let a_tilde = a.f_matmul(&p)?;
    let (q_tilde, r_tilde) = Tensor::f_linalg_qr(&a_tilde, "reduced")?;
    let q = q_tilde.f_matmul(&p)?;
    let l = p.f_matmul(&r_tilde)?.f_matmul(&p)?;
    let sign = l.f_diagonal(0, 0, 1)?.f_sign()?;
    // Q's columns and L's rows take the sign of L's diagonal.
    Ok((q.f_mul(&sign.f_unsqueeze(0)?)?, l.f_mul(&sign.f_unsqueeze(1)?)?))
}

/// `compute_optimal_rotation_intrinsics_batch` (views chunked by 2 as in the official).
#[allow(clippy::too_many_arguments)]
fn compute_optimal_rotation_intrinsics_batch(
    rays_origin: &Tensor,
    rays_target: &Tensor,
    weights: &Tensor,
    n_sample: i64,
    n_iter: i64,
    rand_sample_iters_idx: &Tensor,
    generator: &mut TorchCpuGenerator,
) -> Result<RotationIntrinsics> {
    const Z_THRESHOLD: f64 = 1e-4;
    const REPROJ_THRESHOLD: f64 = 0.2;
    const MAX_INLIER_NUM: usize = 8000;
    const MAX_CHUNK_SIZE: i64 = 2;
    let z_origin = rays_origin.f_select(2, 2)?;
    let z_target = rays_target.f_select(2, 2)?;
    let z_mask = z_target.f_abs()?.f_gt(Z_THRESHOLD)?.f_logical_and(&z_origin.f_abs()?.f_gt(Z_THRESHOLD)?)?;
    // Project onto z = 1 where z is far enough from 0; keep x, y elsewhere.
    let project = |rays: &Tensor, z: &Tensor| -> Result<Tensor> {
        let xy = rays.f_narrow(2, 0, 2)?;
        Ok(xy.f_where_self(&z_mask.f_logical_not()?.f_unsqueeze(-1)?, &xy.f_div(&z.f_unsqueeze(-1)?)?)?)
    };
    let origin = project(rays_origin, &z_origin)?;
    let target = project(rays_target, &z_target)?;
    // The official zeroes these weights in place, so the translation below sees them too.
    let weights = weights.f_where_self(&z_mask, &weights.f_zeros_like()?)?;

    let views = origin.size()[0];
    let mut homographies = Vec::new();
    let mut start = 0;
    while start < views {
        let len = MAX_CHUNK_SIZE.min(views - start);
        let h = ransac_find_homography_weighted_fast_batch(
            &origin.f_narrow(0, start, len)?,
            &target.f_narrow(0, start, len)?,
            &weights.f_narrow(0, start, len)?,
            n_sample,
            n_iter,
            REPROJ_THRESHOLD,
            rand_sample_iters_idx,
            MAX_INLIER_NUM,
            start as usize,
            generator,
        )?;
        // A homography is defined up to scale: take the sign with a positive determinant.
        let flip = Tensor::f_linalg_det(&h)?.f_lt(0.0)?.f_to_kind(Kind::Float)?.f_unsqueeze(-1)?.f_unsqueeze(-1)?;
        // `1.0 - flip * 2.0`, evaluated as tch's `f64 - Tensor` does: -(flip * 2.0 - 1.0).
        let sign = flip.f_mul_scalar(2.0)?.f_sub_scalar(1.0)?.f_neg()?;
        homographies.push(h.f_mul(&sign)?);
        start += len;
    }
    let a = Tensor::f_cat(&homographies, 0)?;

    let (mut rs, mut fs, mut pps) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..views {
        let (r, l) = ql_decomposition(&a.f_get(i)?)?;
        let l = l.f_div(&l.f_i((2, 2))?)?;
        fs.push(Tensor::f_stack(&[l.f_i((0, 0))?, l.f_i((1, 1))?], 0)?);
        pps.push(Tensor::f_stack(&[l.f_i((2, 0))?, l.f_i((2, 1))?], 0)?);
        rs.push(r);
    }
    Ok(RotationIntrinsics {
        rotation: Tensor::f_stack(&rs, 0)?,
        focal: Tensor::f_stack(&fs, 0)?,
        principal_point: Tensor::f_stack(&pps, 0)?,
        weights,
    })
}

/// What `compute_optimal_rotation_intrinsics_batch` gives back, plus the weights after its
/// in-place zeroing of the rays too close to z = 0 (the official's caller sees them).
struct RotationIntrinsics {
    /// (S, 3, 3)
    rotation: Tensor,
    /// (S, 2) focal lengths in units of half the image (the official's `f`, before inversion).
    focal: Tensor,
    /// (S, 2)
    principal_point: Tensor,
    weights: Tensor,
}

/// A camera per view from its rays, in the normalised 2 x 2 image.
pub struct CameraFromRays {
    /// (S, 4, 4) camera-to-world.
    pub c2w: Tensor,
    /// (S, 2) focal lengths as fractions of half the image size (fx, fy).
    pub focal_lengths: Tensor,
    /// (S, 2) principal point as fractions of half the image size (cx, cy).
    pub principal_points: Tensor,
}

/// `camray_to_caminfo` + `get_extrinsic_from_camray` for the S views of one scene:
/// `camray` (S, h, w, 6) directions and centres, `conf` (S, h, w). Rays that determine no
/// camera are an error made from `RayPoseError`.
pub fn get_extrinsic_from_camray(camray: &Tensor, conf: &Tensor) -> Result<CameraFromRays> {
    let (views, ny, nx, _) = camray.size4()?;
    let device = camray.device();
    // Identity intrinsics of an image normalised to 2 x 2: principal point (1, 1).
    let unit_k = Tensor::f_eye(3, (Kind::Float, device))?;
    let _ = unit_k.f_i((0, 2))?.f_fill_(1.0)?;
    let _ = unit_k.f_i((1, 2))?.f_fill_(1.0)?;
    let unit_k = unit_k.f_unsqueeze(0)?.f_expand([views, 3, 3], false)?;
    let plane = unproject_unit_depth_normalized(&unit_k, ny, nx)?.f_reshape([views, ny * nx, 3])?;
    let camray = camray.f_reshape([views, ny * nx, 6])?;
    let confidence = conf.f_reshape([views, ny * nx])?;

    let mut generator = TorchCpuGenerator::new(RAY_POSE_SEED);
    let (n_iter, n_sample, rand_sample_iters_idx) = get_params_for_ransac(ny * nx, &mut generator)?;
    let found = compute_optimal_rotation_intrinsics_batch(
        &plane,
        &camray.f_narrow(2, 0, 3)?,
        &confidence,
        n_sample,
        n_iter,
        &rand_sample_iters_idx,
        &mut generator,
    )?;
    // The camera centre: confidence-weighted mean of the per-ray centres.
    let weights = &found.weights;
    let centre = camray
        .f_narrow(2, 3, 3)?
        .f_mul(&weights.f_unsqueeze(-1)?)?
        .f_sum_dim_intlist(&[1i64][..], false, Kind::Float)?
        .f_div(&weights.f_sum_dim_intlist(&[-1i64][..], true, Kind::Float)?)?;
    let top = Tensor::f_cat(&[&found.rotation, &centre.f_unsqueeze(-1)?], -1)?;
    let bottom = Tensor::f_from_slice(&[0f32, 0., 0., 1.])?
        .f_to_device(device)?
        .f_reshape([1, 1, 4])?
        .f_expand([views, 1, 4], false)?;
    Ok(CameraFromRays {
        c2w: Tensor::f_cat(&[top, bottom], 1)?,
        // `1.0 / focal`, evaluated as tch's `f64 / Tensor` does: (focal / 1.0) ^ -1.
        focal_lengths: found.focal.f_div_scalar(1.0)?.f_pow_tensor_scalar(-1i64)?,
        principal_points: found.principal_point.f_add_scalar(1.0)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn ql_factors_into_orthogonal_times_lower_triangular() {
        let a = Tensor::from_slice(&[2.0f32, 0.3, -0.5, 0.1, 1.5, 0.2, 0.4, -0.2, 1.0]).reshape([3, 3]);
        let (q, l) = ql_decomposition(&a).unwrap();
        let eye = Tensor::eye(3, (Kind::Float, Device::Cpu));
        assert!((q.matmul(&q.tr()) - &eye).abs().max().double_value(&[]) < 1e-5);
        assert!((q.matmul(&l) - &a).abs().max().double_value(&[]) < 1e-5);
        assert!(l.triu(1).abs().max().double_value(&[]) == 0.0, "L is lower triangular");
        assert!(l.diagonal(0, 0, 1).min().double_value(&[]) > 0.0);
    }

    /// Rays of a known pinhole camera with a centred principal point (where the official's
    /// QL factorisation is exact): the estimate recovers its rotation, centre and focal lengths.
    #[test]
    fn recovers_a_known_camera() {
        let (ny, nx) = (24i64, 32i64);
        let angle = 0.3f64;
        let (s, c) = angle.sin_cos();
        let rotation = Tensor::from_slice(&[c as f32, 0., s as f32, 0., 1., 0., -s as f32, 0., c as f32]).reshape([3, 3]);
        let centre = Tensor::from_slice(&[0.5f32, -1.0, 2.0]);
        // Intrinsics in the normalised 2 x 2 image: focal 1.4 / 1.2, principal point at the centre.
        let (fx, fy, cx, cy) = (1.4f32, 1.2f32, 1.0f32, 1.0f32);
        let ys = Tensor::linspace(1.0 / ny as f64, 2.0 - 1.0 / ny as f64, ny, (Kind::Float, Device::Cpu));
        let xs = Tensor::linspace(1.0 / nx as f64, 2.0 - 1.0 / nx as f64, nx, (Kind::Float, Device::Cpu));
        let g = Tensor::meshgrid_indexing(&[&ys, &xs], "ij");
        let dirs_cam = Tensor::stack(&[(&g[1] - cx as f64) / fx as f64, (&g[0] - cy as f64) / fy as f64, g[0].ones_like()], -1);
        let dirs_world = dirs_cam.matmul(&rotation.tr());
        let camray = Tensor::cat(&[dirs_world, centre.expand([ny, nx, 3], false)], -1).unsqueeze(0);
        let conf = Tensor::ones([1, ny, nx], (Kind::Float, Device::Cpu));
        let cam = get_extrinsic_from_camray(&camray, &conf).unwrap();
        let close = |a: &Tensor, b: &Tensor| (a - b).abs().max().double_value(&[]);
        assert!(close(&cam.c2w.get(0).narrow(0, 0, 3).narrow(1, 0, 3), &rotation) < 1e-4);
        assert!(close(&cam.c2w.get(0).narrow(0, 0, 3).select(1, 3), &centre) < 1e-5);
        assert!(close(&cam.focal_lengths.get(0), &Tensor::from_slice(&[fx, fy])) < 1e-4);
        assert!(close(&cam.principal_points.get(0), &Tensor::from_slice(&[cx, cy])) < 1e-4);
    }
}
