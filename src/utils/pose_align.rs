//! `utils/pose_align.py`: Umeyama Sim(3) alignment of one camera trajectory onto another,
//! optionally with RANSAC over the views, on host matrices in f64.
//!
//! The official computes the similarity with evo's `PosePath3D.align` (evo's
//! `geometry.umeyama_alignment`, reproduced here with its degeneracy check) and draws the
//! RANSAC subsets from `np.random.default_rng(random_state)`, reproduced bit for bit by
//! [`NumpyGenerator`], so that the same seed picks the same subsets.
use super::geometry::{affine_inverse_mat4, det3, mat3_mul, mat3_vec, rotation_translation, svd3, Mat3, Mat4};
use super::rng::NumpyGenerator;

/// A similarity p -> s * R p + t taking the estimated trajectory onto the reference.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sim3 {
    pub rotation: Mat3,
    pub translation: [f64; 3],
    pub scale: f64,
}

/// evo's `GeometryException`: the points do not determine a similarity.
#[derive(Clone, Debug, PartialEq)]
pub struct DegenerateAlignment;

/// evo's `geometry.umeyama_alignment(x, y, with_scale=True)`: the similarity taking the
/// points `x` onto `y` in the least-squares sense (Umeyama 1991).
pub fn umeyama_alignment(x: &[[f64; 3]], y: &[[f64; 3]]) -> Result<Sim3, DegenerateAlignment> {
    assert_eq!(x.len(), y.len(), "data matrices must have the same shape");
    let n = x.len() as f64;
    let mean = |p: &[[f64; 3]]| [0, 1, 2].map(|k| p.iter().map(|v| v[k]).sum::<f64>() / n);
    let (mean_x, mean_y) = (mean(x), mean(y));
    let sigma_x = x.iter().map(|v| (0..3).map(|k| (v[k] - mean_x[k]).powi(2)).sum::<f64>()).sum::<f64>() / n;
    let mut cov = [[0.0; 3]; 3];
    for (xi, yi) in x.iter().zip(y) {
        for (i, row) in cov.iter_mut().enumerate() {
            for (j, c) in row.iter_mut().enumerate() {
                *c += (yi[i] - mean_y[i]) * (xi[j] - mean_x[j]);
            }
        }
    }
    cov.iter_mut().flatten().for_each(|c| *c /= n);
    // Non-finite points (or an SVD that LAPACK cannot do) determine no similarity either.
    let (u, d, vh) = svd3(&cov).ok_or(DegenerateAlignment)?;
    // Fewer than two non-zero singular values: collinear or coincident points.
    if d.iter().filter(|&&s| s > f64::EPSILON).count() < 2 {
        return Err(DegenerateAlignment);
    }
    let mut s = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
    if det3(&u) * det3(&vh) < 0.0 {
        s[2][2] = -1.0; // a rotation, not a reflection (Kabsch)
    }
    let rotation = mat3_mul(&mat3_mul(&u, &s), &vh);
    let scale = (d[0] * s[0][0] + d[1] * s[1][1] + d[2] * s[2][2]) / sigma_x;
    let rotated = mat3_vec(&rotation, &mean_x);
    let translation = [0, 1, 2].map(|k| mean_y[k] - scale * rotated[k]);
    Ok(Sim3 { rotation, translation, scale })
}

fn position(pose: &Mat4) -> [f64; 3] {
    [pose[0][3], pose[1][3], pose[2][3]]
}

fn distance(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    (0..3).map(|k| (a[k] - b[k]).powi(2)).sum::<f64>().sqrt()
}

/// `_umeyama_sim3_from_paths`: the similarity between camera centres (poses are camera-to-world).
fn umeyama_from_poses(pose_ref: &[Mat4], pose_est: &[Mat4]) -> Result<Sim3, DegenerateAlignment> {
    let x: Vec<[f64; 3]> = pose_est.iter().map(position).collect();
    let y: Vec<[f64; 3]> = pose_ref.iter().map(position).collect();
    umeyama_alignment(&x, &y)
}

/// `_apply_sim3_to_poses`: R_i -> R R_i, t_i -> s R t_i + t.
pub fn apply_sim3_to_poses(poses: &[Mat4], sim: &Sim3) -> Vec<Mat4> {
    poses
        .iter()
        .map(|p| {
            let (r, t) = rotation_translation(p);
            let r_new = mat3_mul(&sim.rotation, &r);
            let rt = mat3_vec(&sim.rotation, &t);
            let mut out = *p;
            for i in 0..3 {
                out[i][..3].copy_from_slice(&r_new[i]);
                out[i][3] = sim.scale * rt[i] + sim.translation[i];
            }
            out
        })
        .collect()
}

/// `_median_nn_thresh`: median over the aligned estimated centres of the distance to the
/// nearest reference centre (numpy's median: the mean of the two middle values when even).
fn median_nn_threshold(pose_ref: &[Mat4], pose_est_aligned: &[Mat4]) -> f64 {
    let mut dists: Vec<f64> = pose_est_aligned
        .iter()
        .map(|p| pose_ref.iter().map(|r| distance(&position(r), &position(p))).fold(f64::INFINITY, f64::min))
        .collect();
    if dists.is_empty() {
        return 0.0;
    }
    dists.sort_by(|a, b| a.total_cmp(b));
    let n = dists.len();
    if n % 2 == 1 {
        dists[n / 2]
    } else {
        (dists[n / 2 - 1] + dists[n / 2]) / 2.0
    }
}

/// `_ransac_align_sim3` with the official defaults (`sub_n` = half the views rounded up, at
/// least 3; threshold = `_median_nn_thresh` after a full pre-alignment; 10 iterations).
fn ransac_align_sim3(pose_ref: &[Mat4], pose_est: &[Mat4], max_iters: usize, random_state: u32) -> Result<Sim3, DegenerateAlignment> {
    let mut rng = NumpyGenerator::new(random_state);
    let n = pose_ref.len();
    let sub_n = n.div_ceil(2).max(3);
    let pre = umeyama_from_poses(pose_ref, pose_est)?;
    let inlier_thresh = median_nn_threshold(pose_ref, &apply_sim3_to_poses(pose_est, &pre));
    let ref_centres: Vec<[f64; 3]> = pose_ref.iter().map(position).collect();

    let mut best_model = pre;
    let mut best_inliers: Option<Vec<bool>> = None;
    let mut best_score = (-1i64, f64::INFINITY); // (inlier count, mean inlier error)
    for _ in 0..max_iters {
        let sample = rng.choice_without_replacement(n, sub_n);
        let pick = |poses: &[Mat4]| sample.iter().map(|&i| poses[i]).collect::<Vec<_>>();
        let Ok(model) = umeyama_from_poses(&pick(pose_ref), &pick(pose_est)) else {
            continue; // the official skips a degenerate subset
        };
        let errs: Vec<f64> =
            apply_sim3_to_poses(pose_est, &model).iter().zip(&ref_centres).map(|(p, c)| distance(&position(p), c)).collect();
        let inliers: Vec<bool> = errs.iter().map(|&e| e <= inlier_thresh).collect();
        let k = inliers.iter().filter(|&&i| i).count() as i64;
        let mean_err = if k > 0 {
            errs.iter().zip(&inliers).filter(|(_, &i)| i).map(|(e, _)| e).sum::<f64>() / k as f64
        } else {
            f64::INFINITY
        };
        if k > best_score.0 || (k == best_score.0 && mean_err < best_score.1) {
            best_score = (k, mean_err);
            best_model = model;
            best_inliers = Some(inliers);
        }
    }
    match best_inliers {
        Some(inliers) if inliers.iter().filter(|&&i| i).count() >= 3 => {
            let keep = |poses: &[Mat4]| poses.iter().zip(&inliers).filter(|(_, &i)| i).map(|(p, _)| *p).collect::<Vec<_>>();
            umeyama_from_poses(&keep(pose_ref), &keep(pose_est))
        }
        _ => Ok(best_model),
    }
}

/// `align_poses_umeyama(ext_ref, ext_est, return_aligned=True, ransac, random_state)`: the
/// similarity taking the camera centres of the world-to-camera extrinsics `ext_est` onto
/// those of `ext_ref`, and `ext_est` expressed in `ext_ref`'s frame.
pub fn align_poses_umeyama(
    ext_ref: &[Mat4],
    ext_est: &[Mat4],
    ransac: bool,
    random_state: u32,
) -> Result<(Sim3, Vec<Mat4>), DegenerateAlignment> {
    const RANSAC_MAX_ITERS: usize = 10;
    let pose_ref: Vec<Mat4> = ext_ref.iter().map(affine_inverse_mat4).collect();
    let pose_est: Vec<Mat4> = ext_est.iter().map(affine_inverse_mat4).collect();
    let sim = if ransac {
        ransac_align_sim3(&pose_ref, &pose_est, RANSAC_MAX_ITERS, random_state)?
    } else {
        umeyama_from_poses(&pose_ref, &pose_est)?
    };
    let aligned = apply_sim3_to_poses(&pose_est, &sim).iter().map(affine_inverse_mat4).collect();
    Ok((sim, aligned))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rotation(axis: [f64; 3], angle: f64) -> Mat3 {
        let n = (axis.iter().map(|a| a * a).sum::<f64>()).sqrt();
        let [x, y, z] = axis.map(|a| a / n);
        let (s, c) = angle.sin_cos();
        let t = 1.0 - c;
        [
            [t * x * x + c, t * x * y - s * z, t * x * z + s * y],
            [t * x * y + s * z, t * y * y + c, t * y * z - s * x],
            [t * x * z - s * y, t * y * z + s * x, t * z * z + c],
        ]
    }

    fn pose(r: Mat3, t: [f64; 3]) -> Mat4 {
        let mut p = [[0.0; 4]; 4];
        for i in 0..3 {
            p[i][..3].copy_from_slice(&r[i]);
            p[i][3] = t[i];
        }
        p[3][3] = 1.0;
        p
    }

    fn max_abs_diff(a: &Mat3, b: &Mat3) -> f64 {
        a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
    }

    /// Camera-to-world poses of a small non-planar trajectory.
    fn trajectory(n: usize) -> Vec<Mat4> {
        (0..n)
            .map(|i| {
                let a = i as f64 * 0.7;
                pose(rotation([0.2, 1.0, 0.1], a), [a.cos() * 2.0, 0.3 * a.sin() + 0.1 * i as f64, a.sin() * 2.0])
            })
            .collect()
    }

    #[test]
    fn umeyama_recovers_a_known_similarity() {
        let truth = Sim3 { rotation: rotation([1.0, -2.0, 0.5], 1.1), translation: [0.5, -3.0, 2.0], scale: 2.5 };
        let x: Vec<[f64; 3]> = trajectory(6).iter().map(position).collect();
        let y: Vec<[f64; 3]> = x
            .iter()
            .map(|p| {
                let r = mat3_vec(&truth.rotation, p);
                [0, 1, 2].map(|k| truth.scale * r[k] + truth.translation[k])
            })
            .collect();
        let got = umeyama_alignment(&x, &y).unwrap();
        assert!((got.scale - truth.scale).abs() < 1e-12, "{}", got.scale);
        assert!(max_abs_diff(&got.rotation, &truth.rotation) < 1e-12);
        assert!(got.translation.iter().zip(truth.translation).all(|(a, b)| (a - b).abs() < 1e-12));
    }

    #[test]
    fn coincident_centres_are_degenerate() {
        // evo's test is absolute (singular values above machine epsilon), so only exactly
        // degenerate sets fail: one point, or all points equal.
        assert_eq!(umeyama_alignment(&[[1.0, 2.0, 3.0]], &[[0.0, 0.0, 1.0]]), Err(DegenerateAlignment));
        let point = vec![[1.0, 2.0, 3.0]; 4];
        let spread: Vec<[f64; 3]> = (0..4).map(|i| [i as f64, (i * i) as f64, 1.0]).collect();
        assert_eq!(umeyama_alignment(&point, &spread), Err(DegenerateAlignment));
        assert_eq!(umeyama_alignment(&spread, &point), Err(DegenerateAlignment));
    }

    #[test]
    fn a_straight_trajectory_still_gives_the_scale() {
        // The rotation about the line is undetermined, the scale is not.
        let line: Vec<[f64; 3]> = (0..5).map(|i| [i as f64, 2.0 * i as f64, 0.5]).collect();
        let scaled: Vec<[f64; 3]> = line.iter().map(|p| p.map(|v| 3.0 * v + 1.0)).collect();
        let sim = umeyama_alignment(&line, &scaled).unwrap();
        assert!((sim.scale - 3.0).abs() < 1e-12, "{}", sim.scale);
    }

    #[test]
    fn aligned_extrinsics_land_on_the_reference() {
        // ext_est = the reference trajectory seen through an unknown similarity; aligning it
        // back must give the reference extrinsics, with and without RANSAC.
        let truth = Sim3 { rotation: rotation([0.3, 0.2, 1.0], -0.8), translation: [1.0, 2.0, -1.0], scale: 0.4 };
        let pose_ref = trajectory(12);
        let inverse = Sim3 {
            rotation: [0, 1, 2].map(|i| [0, 1, 2].map(|j| truth.rotation[j][i])),
            translation: {
                let rt = [0, 1, 2].map(|i| (0..3).map(|k| truth.rotation[k][i] * truth.translation[k]).sum::<f64>());
                rt.map(|v| -v / truth.scale)
            },
            scale: 1.0 / truth.scale,
        };
        let pose_est = apply_sim3_to_poses(&pose_ref, &inverse);
        let ext_ref: Vec<Mat4> = pose_ref.iter().map(affine_inverse_mat4).collect();
        let ext_est: Vec<Mat4> = pose_est.iter().map(affine_inverse_mat4).collect();
        for ransac in [false, true] {
            let (sim, aligned) = align_poses_umeyama(&ext_ref, &ext_est, ransac, 42).unwrap();
            assert!((sim.scale - truth.scale).abs() < 1e-10, "ransac={ransac}: {}", sim.scale);
            for (a, r) in aligned.iter().zip(&ext_ref) {
                let err = a.iter().flatten().zip(r.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max);
                assert!(err < 1e-9, "ransac={ransac}: {err}");
            }
        }
    }

    #[test]
    fn ransac_ignores_an_outlier_view() {
        let pose_ref = trajectory(12);
        let mut pose_est = pose_ref.clone();
        pose_est[4][0][3] += 50.0; // one wildly wrong camera centre
        let ext = |p: &[Mat4]| p.iter().map(affine_inverse_mat4).collect::<Vec<_>>();
        let (plain, _) = align_poses_umeyama(&ext(&pose_ref), &ext(&pose_est), false, 42).unwrap();
        let (robust, _) = align_poses_umeyama(&ext(&pose_ref), &ext(&pose_est), true, 42).unwrap();
        assert!((plain.scale - 1.0).abs() > 0.1, "the outlier pulls the plain fit: {}", plain.scale);
        assert!((robust.scale - 1.0).abs() < 1e-9, "RANSAC drops it: {}", robust.scale);
    }
}
