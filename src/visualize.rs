//! Depth maps a person can look at: inverse depth, normalised per view between its 2nd and
//! 98th percentiles, through a turbo-like colour map (near = red, far = blue), as 8-bit RGB.
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder, ImageError};

use crate::error::{Error, Result};
use crate::image_input::RgbImage;
use crate::prediction::Prediction;

/// Lower percentile of inverse depth mapped to the far end of the colour map.
pub const LOW_PERCENTILE: f64 = 0.02;
/// Upper percentile of inverse depth mapped to the near end of the colour map.
pub const HIGH_PERCENTILE: f64 = 0.98;

/// Turbo-like colour for `x` in `[0, 1]` (clamped): 0 is dark blue, 1 is dark red.
/// Degree-5 polynomial fit of the "Turbo" rainbow map (A. Mikhailov, Google, 2019).
pub fn turbo(x: f32) -> [u8; 3] {
    let x = if x.is_nan() { 0.0 } else { x.clamp(0.0, 1.0) } as f64;
    let poly = |c: [f64; 6]| c[0] + x * (c[1] + x * (c[2] + x * (c[3] + x * (c[4] + x * c[5]))));
    let r = poly([0.135_721_38, 4.615_392_60, -42.660_322_58, 132.131_082_34, -152.942_393_96, 59.286_379_43]);
    let g = poly([0.091_402_61, 2.194_188_39, 4.842_966_58, -14.185_033_33, 4.277_298_57, 2.829_566_04]);
    let b = poly([0.106_673_30, 12.641_946_08, -60.582_048_36, 110.362_767_71, -89.903_109_12, 27.348_249_73]);
    let to_u8 = |v: f64| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    [to_u8(r), to_u8(g), to_u8(b)]
}

/// Value at fraction `q` of `sorted` (nearest rank).
fn quantile(sorted: &[f32], q: f64) -> f32 {
    let idx = (q * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Colours one `height x width` row-major depth map. Pixels whose depth is not finite or not
/// positive come out black; a constant map comes out in the middle colour.
pub fn colorize_depth(depth: &[f32], width: usize, height: usize) -> Result<RgbImage> {
    let n = width
        .checked_mul(height)
        .ok_or_else(|| Error::InvalidArgument(format!("depth map {width}x{height} is too large")))?;
    if n == 0 || depth.len() != n {
        return Err(Error::InvalidArgument(format!(
            "depth map holds {} values, {width}x{height} needs {n} (and must be non-empty)",
            depth.len()
        )));
    }
    let (w32, h32) = match (u32::try_from(width), u32::try_from(height)) {
        (Ok(w), Ok(h)) => (w, h),
        _ => return Err(Error::InvalidArgument(format!("depth map {width}x{height} is too large"))),
    };
    let inverse = |d: f32| if d.is_finite() && d > 0.0 { Some(1.0 / d) } else { None };
    let mut valid: Vec<f32> = depth.iter().filter_map(|&d| inverse(d)).filter(|v| v.is_finite()).collect();
    let (lo, hi) = if valid.is_empty() {
        (0.0, 0.0)
    } else {
        valid.sort_unstable_by(f32::total_cmp);
        (quantile(&valid, LOW_PERCENTILE), quantile(&valid, HIGH_PERCENTILE))
    };
    let span = hi - lo;
    let mut data = Vec::with_capacity(n * 3);
    for &d in depth {
        let rgb = match inverse(d) {
            Some(v) if v.is_finite() => turbo(if span > 0.0 { (v - lo) / span } else { 0.5 }),
            _ => [0, 0, 0],
        };
        data.extend_from_slice(&rgb);
    }
    Ok(RgbImage { width: w32, height: h32, data })
}

/// Writes a packed RGB8 image as PNG.
pub fn write_png(image: &RgbImage, path: &Path) -> Result<()> {
    let file = File::create(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let encoder = PngEncoder::new(BufWriter::new(file));
    encoder.write_image(&image.data, image.width, image.height, ExtendedColorType::Rgb8).map_err(|e| match e {
        ImageError::IoError(source) => Error::Io { path: path.to_path_buf(), source },
        other => Error::Image { path: path.to_path_buf(), reason: other.to_string() },
    })
}

/// Colours the depth of view `view` of `prediction` and writes it as PNG at `path`.
pub fn write_depth_png(prediction: &Prediction, view: usize, path: &Path) -> Result<()> {
    if view >= prediction.views {
        return Err(Error::InvalidArgument(format!(
            "view index {view} is out of range: the result has {} view(s)",
            prediction.views
        )));
    }
    let hw = prediction.pixels_per_view();
    let depth = prediction.depth.get(view * hw..(view + 1) * hw).ok_or_else(|| {
        Error::InvalidArgument(format!(
            "prediction holds {} depth values, fewer than its size says",
            prediction.depth.len()
        ))
    })?;
    write_png(&colorize_depth(depth, prediction.width, prediction.height)?, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turbo_ends_are_blue_and_red() {
        let far = turbo(0.15);
        let mid = turbo(0.5);
        let near = turbo(0.9);
        assert!(far[2] > 2 * far[0], "far side should be blue, got {far:?}");
        assert!(mid[1] > mid[0] && mid[1] > mid[2], "middle should be green, got {mid:?}");
        assert!(near[0] > 2 * near[2], "near side should be red, got {near:?}");
        assert_eq!(turbo(-3.0), turbo(0.0));
        assert_eq!(turbo(f32::NAN), turbo(0.0));
        assert_eq!(turbo(7.0), turbo(1.0));
    }

    #[test]
    fn near_is_hot_far_is_cold_invalid_is_black() {
        // 1 x 4: near, far, invalid (0), NaN.
        let img = colorize_depth(&[1.0, 10.0, 0.0, f32::NAN], 4, 1).unwrap();
        assert_eq!((img.width, img.height, img.data.len()), (4, 1, 12));
        let px = |i: usize| [img.data[3 * i], img.data[3 * i + 1], img.data[3 * i + 2]];
        assert_eq!(px(0), turbo(1.0));
        assert_eq!(px(1), turbo(0.0));
        assert_eq!(px(2), [0, 0, 0]);
        assert_eq!(px(3), [0, 0, 0]);
    }

    #[test]
    fn percentiles_clip_outliers_and_constant_maps_are_mid() {
        let mut depth = vec![2.0f32; 100];
        for (i, d) in depth.iter_mut().enumerate() {
            *d = 1.0 + i as f32 * 0.01;
        }
        depth[0] = 1e-6; // absurdly near outlier
        let img = colorize_depth(&depth, 10, 10).unwrap();
        assert_eq!(&img.data[0..3], &turbo(1.0));
        let flat = colorize_depth(&[3.0; 6], 3, 2).unwrap();
        assert!(flat.data.chunks(3).all(|p| p == turbo(0.5)));
    }

    #[test]
    fn size_mismatch_is_an_error() {
        assert!(matches!(colorize_depth(&[1.0; 5], 3, 2), Err(Error::InvalidArgument(_))));
        assert!(matches!(colorize_depth(&[], 0, 0), Err(Error::InvalidArgument(_))));
    }

    #[test]
    fn writes_a_png_and_checks_the_view_index() {
        let pred = Prediction {
            views: 2,
            height: 2,
            width: 3,
            depth: (1..=12).map(|v| v as f32).collect(),
            confidence: vec![1.0; 12],
            extrinsics: None,
            intrinsics: None,
            ..Default::default()
        };
        let dir = std::env::temp_dir().join(format!("da3-visualize-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("d.png");
        write_depth_png(&pred, 1, &path).unwrap();
        let back = image::open(&path).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), (3, 2));
        assert!(
            matches!(write_depth_png(&pred, 2, &path), Err(Error::InvalidArgument(m)) if m.contains("out of range"))
        );
        let missing = dir.join("no/such/dir/d.png");
        assert!(matches!(write_depth_png(&pred, 0, &missing), Err(Error::Io { .. })));
        std::fs::remove_dir_all(&dir).ok();
    }
}
