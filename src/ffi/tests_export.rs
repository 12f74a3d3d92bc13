//! Unit tests of the geometry and export exports (`geometry`, `export`), called as C would on
//! a hand-made result (no model needed).
use std::ffi::{CStr, CString};
use std::ptr;

use crate::prediction::Prediction;
use crate::preprocess::GridChange;

use super::args::Handle;
use super::*;
use da3_status::*;

fn last_error() -> String {
    // SAFETY: the library returns a valid NUL-terminated string.
    unsafe { CStr::from_ptr(da3_last_error_message()) }.to_string_lossy().into_owned()
}

/// One 2x3 view from a 6x4 input halved, identity pose, fx = fy = 2, (cx, cy) = (1, 0.5).
fn result(cameras: bool, confidence: bool) -> *mut da3_result {
    let prediction = Prediction {
        views: 1,
        height: 2,
        width: 3,
        depth: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        confidence: if confidence { vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0] } else { Vec::new() },
        intrinsics: cameras.then(|| vec![2.0, 0.0, 1.0, 0.0, 2.0, 0.5, 0.0, 0.0, 1.0]),
        extrinsics: cameras.then(|| vec![1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
        grid_changes: vec![vec![GridChange::Resize { from_w: 6, from_h: 4, to_w: 3, to_h: 2 }]],
        colors: (0..18).collect(),
        ..Default::default()
    };
    da3_result::new(prediction).unwrap().into_raw()
}

#[test]
fn points_sizes_maps_and_mappings() {
    unsafe {
        let r = result(true, true);
        let mut xyz = [0f32; 18];
        assert_eq!(da3_result_points(r, 0, xyz.as_mut_ptr()), DA3_OK);
        // Pixel (2, 1), depth 6: (6 * (2 - 1) / 2, 6 * (1 - 0.5) / 2, 6).
        assert_eq!(&xyz[15..], &[3.0, 1.5, 6.0]);
        assert_eq!(da3_result_points(r, 1, xyz.as_mut_ptr()), DA3_ERR_INVALID_ARGUMENT);
        assert_eq!(da3_result_points(r, 0, ptr::null_mut()), DA3_ERR_NULL_POINTER);
        let (mut w, mut h) = (0u32, 0u32);
        assert_eq!(da3_result_input_size(r, 0, &mut w, &mut h), DA3_OK);
        assert_eq!((w, h), (6, 4));
        let mut k = [0f32; 9];
        assert_eq!(da3_result_intrinsics_at_input(r, 0, k.as_mut_ptr()), DA3_OK);
        assert_eq!(k, [4.0, 0.0, 2.0, 0.0, 4.0, 1.0, 0.0, 0.0, 1.0]);
        let mut map = [0f32; 24];
        assert_eq!(da3_result_map_at_input(r, 0, DA3_MAP_DEPTH, DA3_INTERPOLATION_NEAREST, map.as_mut_ptr(), 6, 4), DA3_OK);
        assert_eq!(&map[..6], &[1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
        assert_eq!(da3_result_map_at_input(r, 0, DA3_MAP_DEPTH, DA3_INTERPOLATION_BILINEAR, map.as_mut_ptr(), 6, 4), DA3_OK);
        // Input pixel 1 sits at processed 0.25: 1 * 0.75 + 2 * 0.25.
        assert_eq!(map[1], 1.25);
        assert_eq!(da3_result_map_at_input(r, 0, DA3_MAP_DEPTH, 7, map.as_mut_ptr(), 6, 4), DA3_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains("DA3_INTERPOLATION_"), "{}", last_error());
        assert_eq!(da3_result_map_at_input(r, 0, 9, DA3_INTERPOLATION_NEAREST, map.as_mut_ptr(), 6, 4), DA3_ERR_INVALID_ARGUMENT);
        assert_eq!(da3_result_map_at_input(r, 0, DA3_MAP_DEPTH, DA3_INTERPOLATION_NEAREST, map.as_mut_ptr(), 3, 2), DA3_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains("input size is 6x4"), "{}", last_error());
        assert_eq!(da3_result_map_at_input(r, 0, DA3_MAP_SKY, DA3_INTERPOLATION_NEAREST, map.as_mut_ptr(), 6, 4), DA3_ERR_NOT_AVAILABLE);
        let mut xy = [0f64; 2];
        assert_eq!(da3_result_pixel_to_input(r, 0, 0.0, 0.0, DA3_PIXEL_MAPPING_SAMPLE, xy.as_mut_ptr()), DA3_OK);
        assert_eq!(xy, [0.5, 0.5]);
        assert_eq!(da3_result_pixel_to_input(r, 0, 1.0, 1.0, DA3_PIXEL_MAPPING_CAMERA, xy.as_mut_ptr()), DA3_OK);
        assert_eq!(xy, [2.0, 2.0]);
        assert_eq!(da3_result_pixel_to_input(r, 0, 1.0, 1.0, 2, xy.as_mut_ptr()), DA3_ERR_INVALID_ARGUMENT);
        let colors = da3_result_colors(r, 0);
        assert_eq!(*colors.add(17), 17);
        assert!(da3_result_colors(r, 1).is_null());
        da3_result_free(r);

        let r = result(false, false);
        assert_eq!(da3_result_points(r, 0, xyz.as_mut_ptr()), DA3_ERR_NOT_AVAILABLE);
        assert!(last_error().contains("not available"), "{}", last_error());
        assert_eq!(da3_result_intrinsics_at_input(r, 0, k.as_mut_ptr()), DA3_ERR_NOT_AVAILABLE);
        da3_result_free(r);
    }
}

#[test]
fn writers_report_their_errors() {
    let dir = std::env::temp_dir().join(format!("da3-ffi-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| CString::new(dir.join(name).to_str().unwrap()).unwrap();
    unsafe {
        let r = result(true, true);
        let mut n = 0usize;
        assert_eq!(da3_result_write_ply(r, path("a.ply").as_ptr(), 0.0, 50.0, 0, &mut n), DA3_OK);
        assert_eq!(n, 3);
        assert_eq!(da3_result_write_glb(r, path("a.glb").as_ptr(), 2.5, 0.0, DA3_EXPORT_NO_CAMERAS, &mut n), DA3_OK);
        assert_eq!(n, 4);
        assert_eq!(da3_result_write_ply(r, path("b.ply").as_ptr(), 0.0, 0.0, 64, ptr::null_mut()), DA3_ERR_INVALID_ARGUMENT);
        assert_eq!(da3_result_write_ply(r, path("b.ply").as_ptr(), 0.0, 101.0, 0, ptr::null_mut()), DA3_ERR_INVALID_ARGUMENT);
        assert_eq!(da3_result_write_ply(r, ptr::null(), 0.0, 0.0, 0, ptr::null_mut()), DA3_ERR_NULL_POINTER);
        let missing = CString::new(dir.join("no/such/dir/a.ply").to_str().unwrap()).unwrap();
        assert_eq!(da3_result_write_ply(r, missing.as_ptr(), 0.0, 0.0, 0, ptr::null_mut()), DA3_ERR_IO);
        let names = [CString::new("a b.png").unwrap()];
        let name_ptrs = [names[0].as_ptr()];
        let colmap = path("colmap");
        assert_eq!(da3_result_write_colmap(r, colmap.as_ptr(), name_ptrs.as_ptr(), 0.0, 0.0, 0, &mut n), DA3_ERR_INVALID_ARGUMENT);
        let null_names = [ptr::null()];
        assert_eq!(da3_result_write_colmap(r, colmap.as_ptr(), null_names.as_ptr(), 0.0, 0.0, 0, &mut n), DA3_ERR_NULL_POINTER);
        assert_eq!(da3_result_write_colmap(r, colmap.as_ptr(), ptr::null(), 0.0, 0.0, DA3_EXPORT_INPUT_PIXELS, &mut n), DA3_OK);
        let cameras = std::fs::read_to_string(dir.join("colmap/cameras.txt")).unwrap();
        assert!(cameras.contains("1 PINHOLE 6 4 4 4 2 1\n"), "{cameras}");
        let mut scale = 0f32;
        assert_eq!(da3_result_write_depth_png16(r, 0, path("d.png").as_ptr(), 1000.0, &mut scale), DA3_OK);
        assert_eq!(scale, 1000.0);
        assert_eq!(da3_result_write_depth_png16(r, 1, path("d.png").as_ptr(), 0.0, &mut scale), DA3_ERR_INVALID_ARGUMENT);
        assert_eq!(da3_result_write_depth_pfm(r, 0, path("d.pfm").as_ptr()), DA3_OK);
        assert_eq!(da3_result_write_depth_npy(r, 0, path("d.npy").as_ptr()), DA3_OK);
        assert_eq!(da3_result_write_depth_npy(ptr::null(), 0, path("d.npy").as_ptr()), DA3_ERR_NULL_POINTER);
        da3_result_free(r);

        // No cameras: no point cloud; no confidence: no confidence filter. Depth maps still work.
        let r = result(false, false);
        assert_eq!(da3_result_write_ply(r, path("c.ply").as_ptr(), 0.0, 0.0, 0, ptr::null_mut()), DA3_ERR_NOT_AVAILABLE);
        assert_eq!(da3_result_write_depth_pfm(r, 0, path("c.pfm").as_ptr()), DA3_OK);
        da3_result_free(r);
        let r = result(true, false);
        assert_eq!(da3_result_write_ply(r, path("c.ply").as_ptr(), 0.0, 10.0, 0, ptr::null_mut()), DA3_ERR_NOT_AVAILABLE);
        assert!(last_error().contains("confidence"), "{}", last_error());
        assert_eq!(da3_result_write_ply(r, path("c.ply").as_ptr(), 0.0, 0.0, DA3_EXPORT_DROP_SKY, &mut n), DA3_OK);
        assert_eq!(n, 6);
        da3_result_free(r);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
