//! Known cameras (pose-conditioned inference): the caller's input and its checks, and the two
//! parts of the official `api.py` around the network that use it: `_normalize_extrinsics`
//! (what the camera encoder sees) and `_align_to_input_extrinsics_intrinsics` (the prediction
//! brought back to the caller's cameras).
use tch::Tensor;

use crate::error::{Error, Result};
use crate::utils::geometry::{affine_inverse, Mat4};
use crate::utils::pose_align::align_poses_umeyama;

/// Known cameras of every view of a scene, laid out as a C caller holds them (row-major f32).
#[derive(Clone, Copy, Debug)]
pub struct CameraInput<'a> {
    /// World-to-camera extrinsics (OpenCV convention: x right, y down, z forward):
    /// `views * 16` floats (4x4, last row 0 0 0 1) or `views * 12` (3x4).
    pub extrinsics: &'a [f32],
    /// Pinhole intrinsics in pixels of the caller's original images: `views * 9` floats
    /// (fx, skew, cx / 0, fy, cy / 0, 0, 1).
    pub intrinsics: &'a [f32],
}

/// Cameras that passed the checks, per view.
#[derive(Clone, Debug, PartialEq)]
pub struct KnownCameras {
    /// 4x4 world-to-camera, row-major.
    pub extrinsics: Vec<[f32; 16]>,
    /// 3x3 intrinsics in original-image pixels, row-major.
    pub intrinsics: Vec<[f32; 9]>,
}

/// Largest deviation of R R^T from the identity accepted as a rotation (float32 poses that
/// went through a few products stay far below it).
const ROTATION_TOLERANCE: f64 = 1e-3;

/// Largest magnitude accepted for a translation component, a focal length, the principal
/// point or the skew. Beyond it float32 geometry stops being meaningful (squared distances
/// overflow near 1e19; a translation of 1e8 already has a float32 resolution of 8 units),
/// so such cameras are refused instead of giving non-finite depth or a meaningless scale.
/// 1e8 leaves room for any unit a caller may use (UTM northings are below 1e7 metres).
pub const MAX_CAMERA_MAGNITUDE: f32 = 1e8;

/// Smallest focal length accepted, in pixels (a positive focal length below it is a unit
/// mistake, not a camera: the rays it implies are parallel to the image plane).
pub const MIN_FOCAL_LENGTH: f32 = 1e-3;

impl CameraInput<'_> {
    /// Checks the cameras of `views` views: counts, finiteness, rigid extrinsics (a proper
    /// rotation, last row 0 0 0 1), positive focal lengths.
    pub fn validate(&self, views: usize) -> Result<KnownCameras> {
        let invalid = |m: String| Err(Error::InvalidArgument(m));
        if views == 0 {
            return invalid("at least one view is needed".into());
        }
        let rows = match self.extrinsics.len() {
            n if n == views * 16 => 4,
            n if n == views * 12 => 3,
            n => {
                return invalid(format!(
                    "extrinsics holds {n} floats; {views} views need {} (4x4 each) or {} (3x4 each)",
                    views * 16,
                    views * 12
                ))
            }
        };
        if self.intrinsics.len() != views * 9 {
            return invalid(format!("intrinsics holds {} floats; {views} views need {} (3x3 each)", self.intrinsics.len(), views * 9));
        }
        let mut cameras = KnownCameras { extrinsics: Vec::with_capacity(views), intrinsics: Vec::with_capacity(views) };
        for view in 0..views {
            let e = &self.extrinsics[view * rows * 4..(view + 1) * rows * 4];
            let k = &self.intrinsics[view * 9..(view + 1) * 9];
            if let Some(v) = e.iter().find(|v| !v.is_finite()) {
                return invalid(format!("extrinsics of view {view} contain a non-finite value ({v})"));
            }
            if let Some(v) = k.iter().find(|v| !v.is_finite()) {
                return invalid(format!("intrinsics of view {view} contain a non-finite value ({v})"));
            }
            let mut m = [0f32; 16];
            m[..12].copy_from_slice(&e[..12]);
            m[12..].copy_from_slice(&[0.0, 0.0, 0.0, 1.0]);
            if rows == 4 && e[12..] != [0.0, 0.0, 0.0, 1.0] {
                return invalid(format!("extrinsics of view {view}: the last row must be 0 0 0 1, got {:?}", &e[12..]));
            }
            check_rotation(&m, view)?;
            let translation = [m[3], m[7], m[11]];
            if translation.iter().any(|t| t.abs() > MAX_CAMERA_MAGNITUDE) {
                return invalid(format!(
                    "extrinsics of view {view}: translation {translation:?} is beyond the supported magnitude \
                     {MAX_CAMERA_MAGNITUDE:e} (DA3_MAX_CAMERA_MAGNITUDE); express the poses in a nearer origin or a larger unit"
                ));
            }
            let (fx, fy) = (k[0], k[4]);
            if fx <= 0.0 || fy <= 0.0 {
                return invalid(format!("intrinsics of view {view}: focal lengths must be positive, got fx = {fx}, fy = {fy}"));
            }
            if fx < MIN_FOCAL_LENGTH || fy < MIN_FOCAL_LENGTH || k.iter().any(|v| v.abs() > MAX_CAMERA_MAGNITUDE) {
                return invalid(format!(
                    "intrinsics of view {view}: focal lengths must be between {MIN_FOCAL_LENGTH:e} and \
                     {MAX_CAMERA_MAGNITUDE:e} pixels and the principal point and skew at most {MAX_CAMERA_MAGNITUDE:e} \
                     in magnitude (DA3_MIN_FOCAL_LENGTH, DA3_MAX_CAMERA_MAGNITUDE), got {k:?}"
                ));
            }
            if k[6..] != [0.0, 0.0, 1.0] || k[3] != 0.0 {
                return invalid(format!(
                    "intrinsics of view {view} are not a pinhole matrix (fx s cx / 0 fy cy / 0 0 1): got {k:?}"
                ));
            }
            cameras.extrinsics.push(m);
            cameras.intrinsics.push(k.try_into().expect("9 floats"));
        }
        Ok(cameras)
    }
}

/// The 3x3 block of a world-to-camera matrix must be a rotation: orthonormal, determinant +1.
fn check_rotation(m: &[f32; 16], view: usize) -> Result<()> {
    let r = |i: usize, j: usize| m[i * 4 + j] as f64;
    let mut deviation = 0f64;
    for i in 0..3 {
        for j in 0..3 {
            let dot: f64 = (0..3).map(|k| r(i, k) * r(j, k)).sum();
            deviation = deviation.max((dot - if i == j { 1.0 } else { 0.0 }).abs());
        }
    }
    let det = r(0, 0) * (r(1, 1) * r(2, 2) - r(1, 2) * r(2, 1)) - r(0, 1) * (r(1, 0) * r(2, 2) - r(1, 2) * r(2, 0))
        + r(0, 2) * (r(1, 0) * r(2, 1) - r(1, 1) * r(2, 0));
    if deviation > ROTATION_TOLERANCE || det <= 0.0 {
        return Err(Error::InvalidArgument(format!(
            "extrinsics of view {view}: the 3x3 block is not a rotation (max |R R^T - I| = {deviation:.3e}, det = {det:.4}); \
             world-to-camera extrinsics must be rigid transforms"
        )));
    }
    Ok(())
}

impl KnownCameras {
    /// (S, 4, 4) world-to-camera extrinsics on the host.
    pub fn extrinsics_tensor(&self) -> Result<Tensor> {
        let flat: Vec<f32> = self.extrinsics.iter().flatten().copied().collect();
        Ok(Tensor::f_from_slice(&flat)?.f_reshape([self.extrinsics.len() as i64, 4, 4])?)
    }
}

/// `_normalize_extrinsics`: the scene in the first camera's frame, translations divided by
/// the median camera distance from it (torch's median: the lower middle value), at least 0.1.
/// `extrinsics`: (S, 4, 4) world-to-camera.
pub fn normalize_extrinsics(extrinsics: &Tensor) -> Result<Tensor> {
    let transform = affine_inverse(&extrinsics.f_narrow(0, 0, 1)?)?;
    let normalized = extrinsics.f_matmul(&transform)?;
    let c2w = affine_inverse(&normalized)?;
    let dists = c2w.f_narrow(-2, 0, 3)?.f_select(-1, 3)?.f_norm_scalaropt_dim(2.0, [-1], false)?;
    const MIN_MEDIAN_DIST: f64 = 0.1;
    let median = dists.f_median()?.f_clamp_min(MIN_MEDIAN_DIST)?;
    let translation = normalized.f_narrow(-2, 0, 3)?.f_narrow(-1, 3, 1)?;
    let scaled = translation.f_div(&median)?;
    normalized.f_narrow(-2, 0, 3)?.f_narrow(-1, 3, 1)?.f_copy_(&scaled)?;
    Ok(normalized)
}

/// The prediction brought back to the caller's cameras (`_align_to_input_extrinsics_intrinsics`).
pub struct AlignedCameras {
    /// (S * 12) world-to-camera 3x4: the caller's (`align_to_input_ext_scale`), or the caller's
    /// moved into the prediction's frame.
    pub extrinsics: Vec<f32>,
    /// (S * 9) the caller's intrinsics in processed-image pixels.
    pub intrinsics: Vec<f32>,
    /// Scale of the similarity from the given camera centres to the predicted ones.
    pub scale: f64,
}

/// Views from which the official aligns with RANSAC (`ransac_view_thresh`).
pub const RANSAC_VIEW_THRESH: usize = 10;
/// The official's `random_state` for the alignment RANSAC.
pub const ALIGNMENT_RANDOM_STATE: u32 = 42;

/// `_align_to_input_extrinsics_intrinsics`: the Sim(3) taking the given camera centres onto
/// the predicted ones (RANSAC from 10 views). `predicted`: (S * 12) world-to-camera 3x4;
/// `processed_intrinsics`: the caller's intrinsics adjusted to the network input.
pub fn align_to_input_extrinsics_intrinsics(
    predicted: &[f32],
    given: &KnownCameras,
    processed_intrinsics: &[[f32; 9]],
    align_to_input_ext_scale: bool,
) -> Result<AlignedCameras> {
    let views = given.extrinsics.len();
    let to_mat4 = |m: &[f32]| -> Mat4 {
        let mut out = [[0.0; 4]; 4];
        for (i, v) in m.iter().enumerate() {
            out[i / 4][i % 4] = *v as f64;
        }
        out[3] = [0.0, 0.0, 0.0, 1.0];
        out
    };
    let ext_ref: Vec<Mat4> = predicted.chunks_exact(12).map(to_mat4).collect();
    let ext_est: Vec<Mat4> = given.extrinsics.iter().map(|m| to_mat4(&m[..12])).collect();
    let (sim, aligned) = align_poses_umeyama(&ext_ref, &ext_est, views >= RANSAC_VIEW_THRESH, ALIGNMENT_RANDOM_STATE)
        .map_err(|_| {
            Error::InvalidArgument(format!(
                "cannot align the prediction to the given cameras: the {views} given camera centres (or the \
                 predicted ones) are collinear or coincide, so no similarity is determined (at least 3 \
                 non-collinear centres are needed)"
            ))
        })?;
    let extrinsics = if align_to_input_ext_scale {
        given.extrinsics.iter().flat_map(|m| m[..12].to_vec()).collect()
    } else {
        aligned.iter().flat_map(|m| m[..3].iter().flatten().map(|&v| v as f32).collect::<Vec<_>>()).collect()
    };
    Ok(AlignedCameras { extrinsics, intrinsics: processed_intrinsics.iter().flatten().copied().collect(), scale: sim.scale })
}

/// (S, 3, 3) intrinsics on the host.
pub fn intrinsics_tensor(intrinsics: &[[f32; 9]]) -> Result<Tensor> {
    let flat: Vec<f32> = intrinsics.iter().flatten().copied().collect();
    Ok(Tensor::f_from_slice(&flat)?.f_reshape([intrinsics.len() as i64, 3, 3])?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    const IDENTITY: [f32; 16] = [1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1., 0., 0., 0., 0., 1.];
    const K: [f32; 9] = [500., 0., 320., 0., 500., 240., 0., 0., 1.];

    fn message(r: Result<KnownCameras>) -> String {
        match r {
            Err(Error::InvalidArgument(m)) => m,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn accepts_4x4_and_3x4() {
        let four = CameraInput { extrinsics: &IDENTITY, intrinsics: &K }.validate(1).unwrap();
        let three = CameraInput { extrinsics: &IDENTITY[..12], intrinsics: &K }.validate(1).unwrap();
        assert_eq!(four, three);
    }

    #[test]
    fn rejects_bad_cameras_with_the_reason() {
        let k2: Vec<f32> = K.iter().chain(&K).copied().collect();
        assert!(message(CameraInput { extrinsics: &IDENTITY, intrinsics: &k2 }.validate(2)).contains("extrinsics holds 16 floats"));
        assert!(message(CameraInput { extrinsics: &IDENTITY, intrinsics: &K[..8] }.validate(1)).contains("intrinsics holds 8"));
        let mut e = IDENTITY;
        e[3] = f32::NAN;
        assert!(message(CameraInput { extrinsics: &e, intrinsics: &K }.validate(1)).contains("non-finite"));
        let mut e = IDENTITY;
        e[0] = 2.0; // scaled axis: not a rotation
        assert!(message(CameraInput { extrinsics: &e, intrinsics: &K }.validate(1)).contains("not a rotation"));
        let mut e = IDENTITY;
        e[0] = -1.0; // a reflection
        assert!(message(CameraInput { extrinsics: &e, intrinsics: &K }.validate(1)).contains("not a rotation"));
        let mut e = IDENTITY;
        e[0..3].copy_from_slice(&[0.0, 0.0, 0.0]); // singular
        assert!(message(CameraInput { extrinsics: &e, intrinsics: &K }.validate(1)).contains("not a rotation"));
        let mut e = IDENTITY;
        e[14] = 0.5;
        assert!(message(CameraInput { extrinsics: &e, intrinsics: &K }.validate(1)).contains("last row"));
        let mut k = K;
        k[0] = 0.0;
        assert!(message(CameraInput { extrinsics: &IDENTITY, intrinsics: &k }.validate(1)).contains("focal lengths must be positive"));
        let mut k = K;
        k[8] = 2.0;
        assert!(message(CameraInput { extrinsics: &IDENTITY, intrinsics: &k }.validate(1)).contains("pinhole"));
        // D8: finite but absurd cameras (a baseline of 1e20, a translation of 3e38, a focal
        // length of 1e-30 or 1e12) are refused by the documented bounds.
        for t in [1e20f32, -3e38, 1.5e8] {
            let mut e = IDENTITY;
            e[7] = t;
            assert!(message(CameraInput { extrinsics: &e, intrinsics: &K }.validate(1)).contains("DA3_MAX_CAMERA_MAGNITUDE"));
        }
        for (i, v) in [(0, 1e-30f32), (4, 1e12), (2, -2e8), (1, 1e9)] {
            let mut k = K;
            k[i] = v;
            assert!(message(CameraInput { extrinsics: &IDENTITY, intrinsics: &k }.validate(1)).contains("DA3_MIN_FOCAL_LENGTH"));
        }
        let mut e = IDENTITY;
        e[3] = 9.9e7; // within the bound
        CameraInput { extrinsics: &e, intrinsics: &K }.validate(1).unwrap();
    }

    #[test]
    fn normalisation_puts_the_first_camera_at_the_origin_with_unit_median_distance() {
        // Three cameras translated along x by 0, 2, 4 (world-to-camera t = -centre).
        let mut flat = Vec::new();
        for c in [0.0f32, 2.0, 4.0] {
            let mut m = IDENTITY;
            m[3] = -c;
            m[7] = 1.0;
            flat.extend_from_slice(&m);
        }
        let ext = Tensor::from_slice(&flat).reshape([3, 4, 4]);
        let n = normalize_extrinsics(&ext).unwrap();
        let eye = Tensor::eye(4, (Kind::Float, Device::Cpu));
        assert!((n.get(0) - eye).abs().max().double_value(&[]) < 1e-6);
        // Distances 0, 2, 4: the median 2 becomes 1.
        let t: Vec<f32> = Vec::try_from(&n.narrow(1, 0, 3).select(2, 3).reshape([-1])).unwrap();
        assert_eq!(t, [0., 0., 0., -1., 0., 0., -2., 0., 0.]);
    }
}
