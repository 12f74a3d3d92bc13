//! Writers for a prediction: point clouds (PLY, GLB), COLMAP text, and depth maps (16-bit PNG,
//! PFM, NumPy `.npy`). Points come from `Prediction::select_points` (world frame, z-depth,
//! integer pixel coordinates: see `geometry`); colours from the processed images the
//! prediction keeps (`Prediction::colors`), white when it keeps none.
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder, ImageError};

use crate::error::{Error, Result};
use crate::geometry::{percentile, Camera, PointFilter};
use crate::prediction::Prediction;
use crate::preprocess::GridChange;

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

fn create(path: &Path) -> Result<BufWriter<File>> {
    Ok(BufWriter::new(File::create(path).map_err(io_error(path))?))
}

/// Binary little-endian PLY of the selected points of every view: `x y z` float, `red green
/// blue` uchar, `confidence` float (NaN for models without confidence), world frame.
/// Returns the number of points written.
pub fn write_ply(prediction: &Prediction, filter: &PointFilter, path: &Path) -> Result<usize> {
    let points = prediction.select_points(filter)?;
    let mut out = Vec::with_capacity(256 + points.len() * 19);
    write!(
        out,
        "ply\nformat binary_little_endian 1.0\ncomment libda3 {} world frame, z-depth, OpenCV cameras\nelement vertex {}\n\
         property float x\nproperty float y\nproperty float z\nproperty uchar red\nproperty uchar green\nproperty uchar blue\n\
         property float confidence\nend_header\n",
        env!("CARGO_PKG_VERSION"),
        points.len()
    )
    .expect("writing to a Vec");
    for p in &points {
        p.xyz.iter().for_each(|c| out.extend_from_slice(&c.to_le_bytes()));
        out.extend_from_slice(&p.rgb);
        out.extend_from_slice(&p.confidence.to_le_bytes());
    }
    std::fs::write(path, out).map_err(io_error(path))?;
    Ok(points.len())
}

/// The official GLB's alignment: world to the first camera, then OpenCV to glTF axes (y and z
/// flipped), then centred on the median of the points. A 3x4 row-major transform.
fn gltf_alignment(first: &Camera, points: &[[f64; 3]]) -> [f64; 12] {
    let mut a = first.w2c;
    for v in &mut a[4..12] {
        *v = -*v;
    }
    if !points.is_empty() {
        let moved: Vec<[f64; 3]> = points.iter().map(|p| apply(&a, *p)).collect();
        for axis in 0..3 {
            let mut values: Vec<f32> = moved.iter().map(|p| p[axis] as f32).collect();
            a[4 * axis + 3] -= percentile(&mut values, 50.0) as f64;
        }
    }
    a
}

fn apply(a: &[f64; 12], p: [f64; 3]) -> [f64; 3] {
    std::array::from_fn(|r| a[4 * r] * p[0] + a[4 * r + 1] * p[1] + a[4 * r + 2] * p[2] + a[4 * r + 3])
}

/// The official `_estimate_scene_scale`: the diagonal of the 5th to 95th percentile box.
fn scene_scale(points: &[[f64; 3]]) -> f64 {
    if points.len() < 2 {
        return 1.0;
    }
    let mut sq = 0.0;
    for axis in 0..3 {
        let mut values: Vec<f32> = points.iter().map(|p| p[axis] as f32).collect();
        let (lo, hi) = (percentile(&mut values, 5.0) as f64, percentile(&mut values, 95.0) as f64);
        sq += (hi - lo) * (hi - lo);
    }
    let d = sq.sqrt();
    if d.is_finite() && d > 0.0 {
        d
    } else {
        1.0
    }
}

/// The official `_camera_frustum_lines`: 8 segments (centre to the four image corners on the
/// plane z = `scale`, and the rectangle), world frame.
fn frustum_segments(camera: &Camera, width: usize, height: usize, scale: f64) -> Vec<[f64; 3]> {
    let (w, h) = ((width - 1) as f64, (height - 1) as f64);
    let corners: Vec<[f64; 3]> = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)]
        .iter()
        .map(|&(u, v)| {
            let ki = &camera.k_inv;
            let ray = [ki[0] * u + ki[1] * v + ki[2], ki[3] * u + ki[4] * v + ki[5], ki[6] * u + ki[7] * v + ki[8]];
            let z = if ray[2] == 0.0 { 1.0 } else { ray[2] };
            let c = [ray[0] / z * scale, ray[1] / z * scale, scale];
            let e = &camera.w2c;
            let d = [c[0] - e[3], c[1] - e[7], c[2] - e[11]];
            std::array::from_fn(|j| e[j] * d[0] + e[4 + j] * d[1] + e[8 + j] * d[2])
        })
        .collect();
    let centre = camera.centre();
    let mut segments = Vec::with_capacity(16);
    for c in &corners {
        segments.extend([centre, *c]);
    }
    for k in 0..4 {
        segments.extend([corners[k], corners[(k + 1) % 4]]);
    }
    segments
}

/// The official `_index_color_rgb`: hue (i + 0.5) / n at saturation 0.85, value 0.95.
fn index_color(i: usize, n: usize) -> [u8; 3] {
    let h = (i as f64 + 0.5) / n.max(1) as f64;
    let (s, v) = (0.85, 0.95);
    let k = (h * 6.0) as i64;
    let f = h * 6.0 - k as f64;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - f * s), v * (1.0 - (1.0 - f) * s));
    let (r, g, b) = match k.rem_euclid(6) {
        0 => (v, t, p),
        1 => (q, v, p),
        2 => (p, v, t),
        3 => (p, q, v),
        4 => (t, p, v),
        _ => (v, p, q),
    };
    [(r * 255.0) as u8, (g * 255.0) as u8, (b * 255.0) as u8]
}

/// glTF 2.0 binary of the selected points (a POINTS primitive, COLOR_0 RGBA8) and, with
/// `cameras`, each camera's frustum (a LINES primitive in the official's per-camera colour),
/// transformed as the official `export_to_glb` does (first camera's frame, glTF axes: x right,
/// y up, z backward; centred on the points' median; frusta sized 3 % of the scene's 5-95 %
/// diagonal). Unlike the official, no random down-sampling. Returns the number of points.
pub fn write_glb(prediction: &Prediction, filter: &PointFilter, cameras: bool, path: &Path) -> Result<usize> {
    let points = prediction.select_points(filter)?;
    let world: Vec<[f64; 3]> = points.iter().map(|p| p.xyz.map(|c| c as f64)).collect();
    let a = gltf_alignment(&prediction.camera(0)?, &world);
    let moved: Vec<[f64; 3]> = world.iter().map(|p| apply(&a, *p)).collect();
    let mut bin: Vec<u8> = Vec::new();
    let mut json_meshes = Vec::new();
    let mut json_accessors = Vec::new();
    let mut json_views = Vec::new();
    // Appends one primitive's positions and RGBA colours; returns its mesh JSON.
    let mut add = |positions: &[[f64; 3]], colors: &dyn Fn(usize) -> [u8; 3], mode: u32| {
        let (mut lo, mut hi) = ([f32::INFINITY; 3], [f32::NEG_INFINITY; 3]);
        let offset = bin.len();
        for p in positions {
            for (axis, c) in p.iter().enumerate() {
                let c = *c as f32;
                lo[axis] = lo[axis].min(c);
                hi[axis] = hi[axis].max(c);
                bin.extend_from_slice(&c.to_le_bytes());
            }
        }
        let color_offset = bin.len();
        for i in 0..positions.len() {
            bin.extend_from_slice(&colors(i));
            bin.push(255);
        }
        let (view, accessor) = (json_views.len(), json_accessors.len());
        json_views.push(format!(r#"{{"buffer":0,"byteOffset":{offset},"byteLength":{},"target":34962}}"#, positions.len() * 12));
        json_views.push(format!(r#"{{"buffer":0,"byteOffset":{color_offset},"byteLength":{},"target":34962}}"#, positions.len() * 4));
        let list = |v: [f32; 3]| format!("[{},{},{}]", v[0], v[1], v[2]);
        json_accessors.push(format!(
            r#"{{"bufferView":{view},"componentType":5126,"count":{},"type":"VEC3","min":{},"max":{}}}"#,
            positions.len(),
            list(lo),
            list(hi)
        ));
        json_accessors.push(format!(
            r#"{{"bufferView":{},"componentType":5121,"normalized":true,"count":{},"type":"VEC4"}}"#,
            view + 1,
            positions.len()
        ));
        json_meshes.push(format!(
            r#"{{"primitives":[{{"attributes":{{"POSITION":{accessor},"COLOR_0":{}}},"mode":{mode}}}]}}"#,
            accessor + 1
        ));
    };
    if !moved.is_empty() {
        add(&moved, &|i| points[i].rgb, 0);
    }
    if cameras {
        let scale = scene_scale(&moved) * 0.03;
        for view in 0..prediction.views {
            let camera = prediction.camera(view)?;
            let segments: Vec<[f64; 3]> =
                frustum_segments(&camera, prediction.width, prediction.height, scale).into_iter().map(|p| apply(&a, p)).collect();
            let color = index_color(view, prediction.views);
            add(&segments, &|_| color, 1);
        }
    }
    if json_meshes.is_empty() {
        // glTF arrays may not be empty: a scene without nodes is the whole file.
        let json = format!(r#"{{"asset":{{"version":"2.0","generator":"libda3 {}"}},"scene":0,"scenes":[{{}}]}}"#, env!("CARGO_PKG_VERSION"));
        return write_glb_chunks(json.into_bytes(), Vec::new(), path).map(|_| 0);
    }
    let nodes: Vec<String> = (0..json_meshes.len()).map(|i| format!(r#"{{"mesh":{i}}}"#)).collect();
    let node_ids: Vec<String> = (0..json_meshes.len()).map(|i| i.to_string()).collect();
    let json = format!(
        r#"{{"asset":{{"version":"2.0","generator":"libda3 {}"}},"scene":0,"scenes":[{{"nodes":[{}]}}],"nodes":[{}],"meshes":[{}],"accessors":[{}],"bufferViews":[{}],"buffers":[{{"byteLength":{}}}]}}"#,
        env!("CARGO_PKG_VERSION"),
        node_ids.join(","),
        nodes.join(","),
        json_meshes.join(","),
        json_accessors.join(","),
        json_views.join(","),
        bin.len()
    )
    .into_bytes();
    write_glb_chunks(json, bin, path)?;
    Ok(points.len())
}

/// The GLB container: header, the JSON chunk (padded with spaces), the BIN chunk when not
/// empty (padded with zeros).
fn write_glb_chunks(mut json: Vec<u8>, mut bin: Vec<u8>, path: &Path) -> Result<()> {
    while json.len() % 4 != 0 {
        json.push(b' ');
    }
    while bin.len() % 4 != 0 {
        bin.push(0);
    }
    let total = 12 + 8 + json.len() + if bin.is_empty() { 0 } else { 8 + bin.len() };
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(b"glTF");
    out.extend_from_slice(&2u32.to_le_bytes());
    out.extend_from_slice(&(total as u32).to_le_bytes());
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(b"JSON");
    out.extend_from_slice(&json);
    if !bin.is_empty() {
        out.extend_from_slice(&(bin.len() as u32).to_le_bytes());
        out.extend_from_slice(b"BIN\0");
        out.extend_from_slice(&bin);
    }
    std::fs::write(path, out).map_err(io_error(path))
}

/// Unit quaternion (w, x, y, z), w >= 0, of a row-major rotation matrix.
pub fn quaternion(r: &[f64; 9]) -> [f64; 4] {
    let [m00, m01, m02, m10, m11, m12, m20, m21, m22] = *r;
    let trace = m00 + m11 + m22;
    let q = if trace > 0.0 {
        let s = (trace + 1.0).sqrt() * 2.0;
        [0.25 * s, (m21 - m12) / s, (m02 - m20) / s, (m10 - m01) / s]
    } else if m00 > m11 && m00 > m22 {
        let s = (1.0 + m00 - m11 - m22).sqrt() * 2.0;
        [(m21 - m12) / s, 0.25 * s, (m01 + m10) / s, (m02 + m20) / s]
    } else if m11 > m22 {
        let s = (1.0 + m11 - m00 - m22).sqrt() * 2.0;
        [(m02 - m20) / s, (m01 + m10) / s, 0.25 * s, (m12 + m21) / s]
    } else {
        let s = (1.0 + m22 - m00 - m11).sqrt() * 2.0;
        [(m10 - m01) / s, (m02 + m20) / s, (m12 + m21) / s, 0.25 * s]
    };
    let n = q.iter().map(|v| v * v).sum::<f64>().sqrt();
    let sign = if q[0] < 0.0 { -1.0 } else { 1.0 };
    q.map(|v| sign * v / n)
}

/// COLMAP text model in `dir` (created if missing): `cameras.txt` (one PINHOLE camera per
/// view), `images.txt` (world-to-camera quaternion QW QX QY QZ and translation, the 2D
/// observations of the view's points), `points3D.txt` (the selected points, error 0, each
/// with its one track element). Cameras and 2D points are in processed pixels (W x H), or with
/// `input_pixels` in each view's input pixels (intrinsics through `input_intrinsics`, points
/// through `processed_to_input_camera`, consistent with them, as the official COLMAP
/// export). Pixel coordinates are the official's (pixel centres at
/// integers, as the network's intrinsics; COLMAP's own convention puts them at + 0.5).
/// `names`: the image names (default `view_0000.png`, ...). Returns the number of points.
pub fn write_colmap(prediction: &Prediction, filter: &PointFilter, input_pixels: bool, names: Option<&[String]>, dir: &Path) -> Result<usize> {
    if names.is_some_and(|n| n.len() != prediction.views) {
        return Err(Error::InvalidArgument(format!("names: {} names for {} views", names.map_or(0, |n| n.len()), prediction.views)));
    }
    if let Some(bad) = names.into_iter().flatten().find(|n| n.is_empty() || n.contains(char::is_whitespace)) {
        return Err(Error::InvalidArgument(format!("names: {bad:?} is empty or holds white space (COLMAP text separates by spaces)")));
    }
    let points = prediction.select_points(filter)?;
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let none: &[GridChange] = &[];
    let changes = |view: usize| if input_pixels { prediction.view_grid_changes(view) } else { none };
    let cameras_path = dir.join("cameras.txt");
    let mut cameras = create(&cameras_path)?;
    let mut text = String::from("# Camera list with one line of data per camera:\n#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n");
    text += &format!("# Number of cameras: {}\n", prediction.views);
    for view in 0..prediction.views {
        let (k, (w, h)) = if input_pixels {
            (prediction.intrinsics_at_input(view)?, prediction.input_size(view)?)
        } else {
            let k = prediction.camera(view)?.k.map(|v| v as f32);
            (k, (prediction.width as u32, prediction.height as u32))
        };
        text += &format!("{} PINHOLE {w} {h} {} {} {} {}\n", view + 1, k[0], k[4], k[2], k[5]);
    }
    cameras.write_all(text.as_bytes()).and_then(|_| cameras.flush()).map_err(io_error(&cameras_path))?;

    let images_path = dir.join("images.txt");
    let mut images = create(&images_path)?;
    let mut text = String::from(
        "# Image list with two lines of data per image:\n#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n#   POINTS2D[] as (X, Y, POINT3D_ID)\n",
    );
    text += &format!("# Number of images: {}\n", prediction.views);
    let mut start = 0;
    for view in 0..prediction.views {
        let e = prediction.camera(view)?.w2c;
        let q = quaternion(&[e[0], e[1], e[2], e[4], e[5], e[6], e[8], e[9], e[10]]);
        let name = names.map_or_else(|| format!("view_{view:04}.png"), |n| n[view].clone());
        text += &format!("{} {} {} {} {} {} {} {} {} {name}\n", view + 1, q[0], q[1], q[2], q[3], e[3], e[7], e[11], view + 1);
        let end = start + points[start..].iter().take_while(|p| p.view == view).count();
        let observations: Vec<String> = points[start..end]
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (x, y) = crate::geometry::processed_to_input_camera(p.u as f64, p.v as f64, changes(view));
                format!("{x} {y} {}", start + i + 1)
            })
            .collect();
        text += &observations.join(" ");
        text.push('\n');
        images.write_all(text.as_bytes()).map_err(io_error(&images_path))?;
        text.clear();
        start = end;
    }
    images.flush().map_err(io_error(&images_path))?;

    let points_path = dir.join("points3D.txt");
    let mut out = create(&points_path)?;
    let mut text = String::from("# 3D point list with one line of data per point:\n#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)\n");
    text += &format!("# Number of points: {}\n", points.len());
    let mut index_in_view = 0;
    for (i, p) in points.iter().enumerate() {
        if i > 0 && points[i - 1].view != p.view {
            index_in_view = 0;
        }
        let [x, y, z] = p.xyz;
        let [r, g, b] = p.rgb;
        text += &format!("{} {x} {y} {z} {r} {g} {b} 0 {} {index_in_view}\n", i + 1, p.view + 1);
        index_in_view += 1;
        if text.len() > 1 << 20 {
            out.write_all(text.as_bytes()).map_err(io_error(&points_path))?;
            text.clear();
        }
    }
    out.write_all(text.as_bytes()).and_then(|_| out.flush()).map_err(io_error(&points_path))?;
    Ok(points.len())
}

/// Depth of view `view` as a 16-bit grey PNG: value = round(depth * scale), clamped to
/// 1..65535; 0 where the depth is not finite or not positive. `scale` <= 0 (or not finite)
/// picks 65535 / the view's largest finite depth. Returns the scale used: depth = value / scale
/// (e.g. scale 1000 for millimetres of a metric depth).
pub fn write_depth_png16(prediction: &Prediction, view: usize, scale: f32, path: &Path) -> Result<f32> {
    let depth = prediction.map(crate::geometry::MapKind::Depth, view)?;
    let scale = if scale.is_finite() && scale > 0.0 {
        scale
    } else {
        let max = depth.iter().copied().filter(|d| d.is_finite() && *d > 0.0).fold(0.0f32, f32::max);
        if max > 0.0 {
            65535.0 / max
        } else {
            1.0
        }
    };
    let mut bytes = Vec::with_capacity(depth.len() * 2);
    for &d in depth {
        let v = if d.is_finite() && d > 0.0 { (d as f64 * scale as f64).round().clamp(1.0, 65535.0) as u16 } else { 0 };
        bytes.extend_from_slice(&v.to_ne_bytes());
    }
    let file = create(path)?;
    PngEncoder::new(file)
        .write_image(&bytes, prediction.width as u32, prediction.height as u32, ExtendedColorType::L16)
        .map_err(|e| match e {
            ImageError::IoError(source) => Error::Io { path: path.to_path_buf(), source },
            other => Error::Image { path: path.to_path_buf(), reason: other.to_string() },
        })?;
    Ok(scale)
}

/// Depth of view `view` as PFM (`Pf`, one channel float32, little-endian scale -1, rows
/// bottom to top as the format says).
pub fn write_depth_pfm(prediction: &Prediction, view: usize, path: &Path) -> Result<()> {
    let depth = prediction.map(crate::geometry::MapKind::Depth, view)?;
    let mut out = format!("Pf\n{} {}\n-1.0\n", prediction.width, prediction.height).into_bytes();
    for row in depth.chunks_exact(prediction.width).rev() {
        row.iter().for_each(|d| out.extend_from_slice(&d.to_le_bytes()));
    }
    std::fs::write(path, out).map_err(io_error(path))
}

/// Depth of view `view` as NumPy `.npy` (version 1.0, `<f4`, shape (H, W), C order).
pub fn write_depth_npy(prediction: &Prediction, view: usize, path: &Path) -> Result<()> {
    let depth = prediction.map(crate::geometry::MapKind::Depth, view)?;
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}", prediction.height, prediction.width);
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    depth.iter().for_each(|d| out.extend_from_slice(&d.to_le_bytes()));
    std::fs::write(path, out).map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prediction() -> Prediction {
        Prediction {
            views: 2,
            height: 2,
            width: 3,
            depth: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 1.0, 1.0, 1.0, 1.0, f32::NAN, 2.0],
            confidence: vec![1.0; 12],
            intrinsics: Some([2.0, 0.0, 1.0, 0.0, 2.0, 0.5, 0.0, 0.0, 1.0].repeat(2)),
            extrinsics: Some(vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, -1.0, 0.0, 1.0, 1.0, 0.0, 0.0, 2.0, 0.0, 0.0, 1.0, 3.0]),
            colors: (0..36).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn quaternion_of_known_rotations() {
        assert_eq!(quaternion(&[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]), [1.0, 0.0, 0.0, 0.0]);
        // 90 degrees about z: (cos 45, 0, 0, sin 45).
        let q = quaternion(&[0.0, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
        let h = std::f64::consts::FRAC_1_SQRT_2;
        assert!((q[0] - h).abs() < 1e-12 && q[1].abs() < 1e-12 && q[2].abs() < 1e-12 && (q[3] - h).abs() < 1e-12, "{q:?}");
        // 180 degrees about x (trace -1): (0, 1, 0, 0).
        assert_eq!(quaternion(&[1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, -1.0]), [0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn ply_header_and_body_sizes() {
        let dir = std::env::temp_dir().join(format!("da3-export-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = prediction();
        let path = dir.join("p.ply");
        assert_eq!(write_ply(&p, &PointFilter::default(), &path).unwrap(), 11);
        let bytes = std::fs::read(&path).unwrap();
        let end = bytes.windows(11).position(|w| w == b"end_header\n").unwrap() + 11;
        assert_eq!(bytes.len() - end, 11 * 19);
        // First point: pixel (0, 0) of view 0 at depth 1: (-0.5, -0.25, 1), colour (0, 1, 2).
        let f = |o: usize| f32::from_le_bytes(bytes[end + o..end + o + 4].try_into().unwrap());
        assert_eq!((f(0), f(4), f(8)), (-0.5, -0.25, 1.0));
        assert_eq!(&bytes[end + 12..end + 15], &[0, 1, 2]);
        let glb = dir.join("p.glb");
        assert_eq!(write_glb(&p, &PointFilter::default(), true, &glb).unwrap(), 11);
        let g = std::fs::read(&glb).unwrap();
        assert_eq!(&g[..4], b"glTF");
        assert_eq!(u32::from_le_bytes(g[8..12].try_into().unwrap()) as usize, g.len());
        // Nothing kept and no cameras: a valid empty scene, no BIN chunk.
        let none = PointFilter { min_confidence: 2.0, ..Default::default() };
        assert_eq!(write_glb(&p, &none, false, &glb).unwrap(), 0);
        let g = std::fs::read(&glb).unwrap();
        let json_len = u32::from_le_bytes(g[12..16].try_into().unwrap()) as usize;
        assert_eq!(g.len(), 20 + json_len);
        assert!(std::str::from_utf8(&g[20..]).unwrap().contains(r#""scenes":[{}]"#));
        let npy = dir.join("d.npy");
        write_depth_npy(&p, 1, &npy).unwrap();
        let n = std::fs::read(&npy).unwrap();
        assert_eq!(n.len() % 64, (6 * 4) % 64);
        let pfm = dir.join("d.pfm");
        write_depth_pfm(&p, 0, &pfm).unwrap();
        let b = std::fs::read(&pfm).unwrap();
        assert!(b.starts_with(b"Pf\n3 2\n-1.0\n"));
        // The bottom row (4, 5, 6) comes first.
        assert_eq!(f32::from_le_bytes(b[12..16].try_into().unwrap()), 4.0);
        let png = dir.join("d.png");
        assert_eq!(write_depth_png16(&p, 0, 0.0, &png).unwrap(), 65535.0 / 6.0);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
