//! Unit tests of the C ABI, calling the exports as C would (no model needed).
use std::ffi::{c_int, CStr};
use std::mem::size_of;
use std::ptr;

use crate::error::Error;
use crate::image_input::PixelFormat;
use crate::options::{CheckedOptions, InferOptions, RefViewStrategy, ResizeMethod};
use crate::prediction::{Prediction, Warning};
use crate::runner::Capabilities;

use super::args::{slice_arg, Handle};
use super::boundary::{test_hooks, FfiError};
use super::enums::{
    capability_flags, pixel_format_from_c, precision_from_c, precision_to_c, ref_view_from_c, ref_view_to_c,
    resize_method_from_c, resize_method_to_c,
};
use super::infer::image_arg;
use super::options::{options_arg, options_from_raw, OPTIONS_V1_SIZE, OPTIONS_V2_SIZE};
use super::*;
use da3_status::*;

fn last_error() -> String {
    // SAFETY: the library returns a valid NUL-terminated string.
    unsafe { CStr::from_ptr(da3_last_error_message()) }.to_string_lossy().into_owned()
}

fn panic_next(name: &'static str) {
    test_hooks::PANIC_IN.with(|p| p.set(Some(name)));
}

fn result_of(views: usize, h: usize, w: usize, cameras: bool) -> *mut da3_result {
    let n = views * h * w;
    let prediction = Prediction {
        views,
        height: h,
        width: w,
        depth: (0..n).map(|i| i as f32).collect(),
        confidence: vec![1.0; n],
        extrinsics: cameras.then(|| (0..views * 12).map(|i| i as f32).collect()),
        intrinsics: cameras.then(|| (0..views * 9).map(|i| i as f32).collect()),
        ..Default::default()
    };
    da3_result::new(prediction).unwrap().into_raw()
}

/// A freed result's large maps serve the next results' maps (their pages already mapped).
#[test]
fn freed_results_lend_their_maps_to_the_next() {
    // An unusual size, so that no other test's buffers fit it.
    let (views, h, w) = (1, 1111, 1111);
    let result = result_of(views, h, w, false);
    // SAFETY: a live result; view 0 exists.
    let (depth, confidence) = unsafe { (da3_result_depth(result, 0), da3_result_confidence(result, 0)) };
    // SAFETY: from result_of, freed once.
    unsafe { da3_result_free(result) };
    let reused = crate::host_copy::OUTPUT_BUFFERS.take(views * h * w).unwrap();
    assert!([depth, confidence].contains(&reused.as_ptr()), "a kept map serves the request");
    assert!(reused.is_empty());
}

#[test]
fn sky_metric_scale_and_warnings_are_reported() {
    use crate::prediction::Warning;
    unsafe {
        // An any-view result: none of them.
        let r = result_of(1, 2, 2, true);
        assert!(da3_result_sky(r, 0).is_null());
        assert!(last_error().contains("no sky head"), "{}", last_error());
        assert!(!da3_result_is_metric(r));
        let mut scale = -1f32;
        assert_eq!(da3_result_scale_factor(r, &mut scale), DA3_ERR_NOT_AVAILABLE);
        assert_eq!(scale, -1.0);
        assert_eq!(da3_result_warning_count(r), 0);
        assert!(da3_result_warning(r, 0).is_null());
        da3_result_free(r);

        // A nested-like result without confidence, with sky, scale and a warning.
        let prediction = Prediction {
            views: 2,
            height: 1,
            width: 2,
            depth: vec![1.0; 4],
            sky: Some(vec![0.0, 0.1, 0.9, 1.0]),
            is_metric: true,
            scale_factor: Some(2.5),
            warnings: vec![Warning::EmptyAlignmentMask],
            ..Default::default()
        };
        let r = da3_result::new(prediction).unwrap().into_raw();
        assert_eq!(*da3_result_sky(r, 1), 0.9);
        assert!(da3_result_sky(r, 2).is_null());
        assert!(da3_result_confidence(r, 0).is_null());
        assert!(last_error().contains("no confidence"), "{}", last_error());
        assert!(da3_result_is_metric(r));
        assert_eq!(da3_result_scale_factor(r, &mut scale), DA3_OK);
        assert_eq!(scale, 2.5);
        assert_eq!(da3_result_scale_factor(r, ptr::null_mut()), DA3_ERR_NULL_POINTER);
        assert_eq!(da3_result_warning_count(r), 1);
        let w = CStr::from_ptr(da3_result_warning(r, 0)).to_str().unwrap();
        assert!(w.starts_with("empty_alignment_mask: "), "{w}");
        da3_result_free(r);
    }
}

#[test]
fn option_flags_must_be_zero_or_one() {
    let mut o = da3_options::from_core(&InferOptions::default());
    assert_eq!(o.align_to_input_ext_scale, 1);
    o.use_ray_pose = 1;
    assert!(unsafe { options_from_raw(&o) }.unwrap().options.forward().use_ray_pose);
    o.use_ray_pose = 2;
    let err = unsafe { options_from_raw(&o) }.unwrap_err();
    assert_eq!(err.status, DA3_ERR_INVALID_ARGUMENT);
    assert!(err.message.contains("options.use_ray_pose is 2"), "{}", err.message);
}

#[test]
fn version_matches_cargo() {
    let v = unsafe { CStr::from_ptr(da3_version()) }.to_str().unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
    assert_eq!(v, format!("{DA3_VERSION_MAJOR}.{DA3_VERSION_MINOR}.{DA3_VERSION_PATCH}"));
}

#[test]
fn status_names_cover_every_code() {
    for code in 0..=12 {
        let name = unsafe { CStr::from_ptr(da3_status_name(code)) }.to_str().unwrap();
        assert!(name.starts_with("DA3_OK") || name.starts_with("DA3_ERR_"), "{code}: {name}");
    }
    assert_eq!(unsafe { CStr::from_ptr(da3_status_name(DA3_ERR_PANIC as c_int)) }, c"DA3_ERR_PANIC");
    assert_eq!(unsafe { CStr::from_ptr(da3_status_name(DA3_ERR_OUT_OF_MEMORY as c_int)) }, c"DA3_ERR_OUT_OF_MEMORY");
    assert_eq!(unsafe { CStr::from_ptr(da3_status_name(DA3_ERR_CANCELLED as c_int)) }, c"DA3_ERR_CANCELLED");
    assert_eq!(unsafe { CStr::from_ptr(da3_status_name(14)) }, c"DA3_UNKNOWN_STATUS");
    assert_eq!(unsafe { CStr::from_ptr(da3_status_name(-1)) }, c"DA3_UNKNOWN_STATUS");
}

#[test]
fn every_core_error_maps_to_its_status() {
    let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
    let cases = [
        (Error::InvalidArgument("a".into()), DA3_ERR_INVALID_ARGUMENT),
        (Error::ModelNotFound("b".into()), DA3_ERR_MODEL_NOT_FOUND),
        (Error::Checkpoint("c".into()), DA3_ERR_CHECKPOINT),
        (Error::Image { path: "x.png".into(), reason: "bad".into() }, DA3_ERR_IMAGE),
        (Error::Io { path: "y".into(), source: io() }, DA3_ERR_IO),
        (Error::Unsupported("d".into()), DA3_ERR_UNSUPPORTED),
        (Error::Torch("e".into()), DA3_ERR_TORCH),
        (Error::Internal("f".into()), DA3_ERR_PANIC),
        (Error::Cancelled("g".into()), DA3_ERR_CANCELLED),
        (Error::NonFinite("h".into()), DA3_ERR_NON_FINITE),
    ];
    for (error, status) in cases {
        let text = error.to_string();
        let e = FfiError::from(error);
        assert_eq!(e.status, status);
        assert_eq!(e.message, text);
    }
}

#[test]
fn panics_become_da3_err_panic_with_a_message() {
    let mut model: *mut da3_model = ptr::null_mut();
    panic_next("da3_create");
    let st = unsafe { da3_create(c"whatever".as_ptr(), false, DA3_PRECISION_AUTO, &mut model) };
    assert_eq!(st, DA3_ERR_PANIC);
    assert!(model.is_null());
    let msg = last_error();
    assert!(msg.contains("da3_create panicked") && msg.contains("test-induced panic"), "{msg}");

    // Value-returning exports fall back to NULL / 0 / false.
    let r = result_of(1, 2, 2, true);
    panic_next("da3_result_depth");
    assert!(unsafe { da3_result_depth(r, 0) }.is_null());
    assert!(last_error().contains("da3_result_depth panicked"));
    panic_next("da3_result_view_count");
    assert_eq!(unsafe { da3_result_view_count(r) }, 0);
    panic_next("da3_result_has_cameras");
    assert!(!unsafe { da3_result_has_cameras(r) });
    // The handle is still usable afterwards.
    assert_eq!(unsafe { da3_result_view_count(r) }, 1);
    panic_next("da3_result_free");
    unsafe { da3_result_free(r) }; // panics before freeing: leaks, never unwinds into C
    assert!(last_error().contains("da3_result_free panicked"));
    let r = result_of(1, 1, 1, false);
    unsafe { da3_result_free(r) };

    panic_next("da3_options_default");
    let mut o = da3_options::from_core(&InferOptions::default());
    assert_eq!(unsafe { da3_options_default(&mut o, size_of::<da3_options>()) }, DA3_ERR_PANIC);
}

#[test]
fn last_error_is_per_thread_and_sticky() {
    std::thread::spawn(|| {
        assert_eq!(last_error(), "");
        assert_eq!(unsafe { da3_result_view_count(ptr::null()) }, 0);
        assert!(last_error().contains("result is NULL"));
        // A success does not clear it.
        let r = result_of(1, 1, 1, false);
        assert_eq!(unsafe { da3_result_view_count(r) }, 1);
        assert!(last_error().contains("result is NULL"));
        unsafe { da3_result_free(r) };
    })
    .join()
    .unwrap();
    std::thread::spawn(|| assert_eq!(last_error(), "")).join().unwrap();
}

#[test]
fn create_checks_pointers_and_precision() {
    let mut model: *mut da3_model = 1 as *mut da3_model; // must be reset to NULL
    let st = unsafe { da3_create(ptr::null(), false, DA3_PRECISION_AUTO, &mut model) };
    assert_eq!(st, DA3_ERR_NULL_POINTER);
    assert!(model.is_null());
    assert!(last_error().contains("model is NULL"), "{}", last_error());

    let st = unsafe { da3_create(c"/x".as_ptr(), false, DA3_PRECISION_AUTO, ptr::null_mut()) };
    assert_eq!(st, DA3_ERR_NULL_POINTER);
    assert!(last_error().contains("out is NULL"));

    let st = unsafe { da3_create(c"/x".as_ptr(), false, 7, &mut model) };
    assert_eq!(st, DA3_ERR_INVALID_ARGUMENT);
    let msg = last_error();
    assert!(msg.contains("precision") && msg.contains('7'), "{msg}");

    let st = unsafe { da3_create(c"\xff\xfe".as_ptr(), false, DA3_PRECISION_AUTO, &mut model) };
    assert_eq!(st, DA3_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("UTF-8"));
}

#[test]
fn infer_checks_out_and_model_first() {
    let img = [0u8; 12];
    let view = da3_image { data: img.as_ptr(), width: 2, height: 2, stride: 6, format: DA3_PIXEL_RGB8 };
    let mut out: *mut da3_result = ptr::null_mut();
    let st = unsafe { da3_infer(ptr::null(), &view, 1, ptr::null(), &mut out) };
    assert_eq!(st, DA3_ERR_NULL_POINTER);
    assert!(last_error().contains("model is NULL"));
    // Even with garbage views, a NULL model is what is reported (views are not read).
    let st = unsafe { da3_infer(ptr::null(), 8 as *const da3_image, 1, ptr::null(), &mut out) };
    assert_eq!(st, DA3_ERR_NULL_POINTER);
    let st = unsafe { da3_infer(ptr::null(), &view, 1, ptr::null(), ptr::null_mut()) };
    assert_eq!(st, DA3_ERR_NULL_POINTER);
    assert!(last_error().contains("out is NULL"));
    let paths = [c"a.png".as_ptr()];
    let st = unsafe { da3_infer_files(ptr::null(), paths.as_ptr(), 1, ptr::null(), &mut out) };
    assert_eq!(st, DA3_ERR_NULL_POINTER);
    assert!(last_error().contains("model is NULL"));
}

#[test]
fn view_and_path_arrays_are_checked() {
    let e = unsafe { slice_arg::<da3_image>(ptr::null(), 0, "views", "n_views") }.unwrap_err();
    assert_eq!(e.status, DA3_ERR_INVALID_ARGUMENT);
    assert!(e.message.contains("n_views is 0"), "{}", e.message);
    let e = unsafe { slice_arg::<da3_image>(ptr::null(), 2, "views", "n_views") }.unwrap_err();
    assert_eq!(e.status, DA3_ERR_NULL_POINTER);
    assert!(e.message.contains("views is NULL") && e.message.contains("n_views is 2"), "{}", e.message);
    let e =
        unsafe { slice_arg::<da3_image>(8 as *const da3_image, usize::MAX / 2, "views", "n_views") }.unwrap_err();
    assert_eq!(e.status, DA3_ERR_INVALID_ARGUMENT);
}

#[test]
fn images_are_validated_field_by_field() {
    let buf = [7u8; 4 * 3 * 4];
    let good = da3_image { data: buf.as_ptr(), width: 4, height: 3, stride: 12, format: DA3_PIXEL_RGB8 };
    let view = unsafe { image_arg(&good, 0) }.unwrap();
    assert_eq!((view.width, view.height, view.stride, view.data.len()), (4, 3, 12, 36));
    // Padded rows: only stride*(h-1) + w*bpp bytes are borrowed.
    let padded = da3_image { stride: 14, format: DA3_PIXEL_RGB8, ..good };
    assert_eq!(unsafe { image_arg(&padded, 0) }.unwrap().data.len(), 14 * 2 + 12);
    let bgra = da3_image { stride: 16, format: DA3_PIXEL_BGRA8, ..good };
    assert_eq!(unsafe { image_arg(&bgra, 0) }.unwrap().format, PixelFormat::Bgra8);

    let check = |img: da3_image, status: da3_status, words: &[&str]| {
        let e = unsafe { image_arg(&img, 3) }.unwrap_err();
        assert_eq!(e.status, status, "{}", e.message);
        for w in words {
            assert!(e.message.contains(w), "'{}' lacks '{w}'", e.message);
        }
    };
    check(da3_image { data: ptr::null(), ..good }, DA3_ERR_NULL_POINTER, &["views[3].data is NULL"]);
    check(da3_image { width: 0, ..good }, DA3_ERR_INVALID_ARGUMENT, &["views[3]", "0x3", "non-zero"]);
    check(da3_image { height: 0, ..good }, DA3_ERR_INVALID_ARGUMENT, &["views[3]", "4x0"]);
    check(da3_image { stride: 11, ..good }, DA3_ERR_INVALID_ARGUMENT, &["views[3].stride", "11", "12"]);
    check(da3_image { stride: 0, ..good }, DA3_ERR_INVALID_ARGUMENT, &["views[3].stride", "0"]);
    check(da3_image { format: 4, ..good }, DA3_ERR_INVALID_ARGUMENT, &["views[3].format", "unknown value 4"]);
    check(da3_image { stride: usize::MAX / 2, ..good }, DA3_ERR_INVALID_ARGUMENT, &["views[3]", "too large"]);
}

#[test]
fn the_published_limits_are_the_cores() {
    assert_eq!(DA3_MAX_PROCESS_RES, InferOptions::MAX_PROCESS_RES);
    assert_eq!(DA3_MAX_PROCESSED_PIXELS, crate::preprocess::MAX_PROCESSED_PIXELS);
    assert_eq!(DA3_MAX_PROCESSED_SIDE, crate::preprocess::MAX_PROCESSED_SIDE);
    assert_eq!(DA3_MAX_CAMERA_MAGNITUDE, crate::camera_input::MAX_CAMERA_MAGNITUDE);
    assert_eq!(DA3_MIN_FOCAL_LENGTH, crate::camera_input::MIN_FOCAL_LENGTH);
}

#[test]
fn options_default_validate_and_enum_checks() {
    let mut o = da3_options { struct_size: 0, process_res: 0, align_to_input_ext_scale: 0, ..da3_options::from_core(&InferOptions::default()) };
    assert_eq!(unsafe { da3_options_default(&mut o, size_of::<da3_options>()) }, DA3_OK);
    assert_eq!(o.struct_size as usize, size_of::<da3_options>());
    assert_eq!(o.process_res, 504);
    assert_eq!(o.resize_method, DA3_RESIZE_UPPER_BOUND_RESIZE);
    assert_eq!(o.ref_view_strategy, DA3_REF_VIEW_SADDLE_BALANCED);
    assert_eq!(o.align_to_input_ext_scale, 1);
    assert!(o.extrinsics.is_null() && o.intrinsics.is_null() && o.export_feat_layers.is_null());
    assert_eq!(unsafe { options_arg(&o) }.unwrap().options, CheckedOptions::default());
    assert_eq!(unsafe { options_arg(ptr::null()) }.unwrap().options, CheckedOptions::default());
    assert_eq!(unsafe { da3_options_validate(ptr::null()) }, DA3_OK);

    let mut all = o;
    all.resize_method = DA3_RESIZE_LOWER_BOUND_CROP;
    all.ref_view_strategy = DA3_REF_VIEW_SADDLE_SIM_RANGE;
    all.process_res = 280;
    let core = unsafe { options_arg(&all) }.unwrap().options;
    assert_eq!(core.preprocess().resize_method, ResizeMethod::LowerBoundCrop);
    assert_eq!(core.forward().ref_view_strategy, RefViewStrategy::SaddleSimRange);
    assert_eq!(core.preprocess().process_res, 280);

    let expect = |opts: da3_options, status: da3_status, words: &[&str]| {
        assert_eq!(unsafe { da3_options_validate(&opts) }, status);
        let msg = last_error();
        for w in words {
            assert!(msg.contains(w), "'{msg}' lacks '{w}'");
        }
    };
    expect(da3_options { resize_method: 99, ..o }, DA3_ERR_INVALID_ARGUMENT, &["options.resize_method", "99"]);
    expect(
        da3_options { ref_view_strategy: 99, ..o },
        DA3_ERR_INVALID_ARGUMENT,
        &["options.ref_view_strategy", "99"],
    );
    expect(da3_options { process_res: 0, ..o }, DA3_ERR_INVALID_ARGUMENT, &["options.process_res", "got 0"]);
    expect(da3_options { process_res: 5000, ..o }, DA3_ERR_INVALID_ARGUMENT, &["process_res", "5000"]);
    expect(
        da3_options { struct_size: 0, ..o },
        DA3_ERR_INVALID_ARGUMENT,
        &["struct_size is 0", "da3_options_default"],
    );
    expect(da3_options { struct_size: 6, ..o }, DA3_ERR_INVALID_ARGUMENT, &["struct_size is 6"]);
    // Between published versions: would end inside a field.
    expect(da3_options { struct_size: 28, ..o }, DA3_ERR_INVALID_ARGUMENT, &["struct_size is 28", "16, 24"]);
    expect(da3_options { struct_size: 40, ..o }, DA3_ERR_INVALID_ARGUMENT, &["struct_size is 40"]);
    // Between the 56-byte version and this one (64): would end inside the cancel pointer.
    expect(da3_options { struct_size: 60, ..o }, DA3_ERR_INVALID_ARGUMENT, &["struct_size is 60"]);
    expect(da3_options { struct_size: 72, ..o }, DA3_ERR_UNSUPPORTED, &["struct_size is 72", "newer da3.h"]);

    assert_eq!(unsafe { da3_options_default(ptr::null_mut(), 16) }, DA3_ERR_NULL_POINTER);
    assert_eq!(unsafe { da3_options_default(&mut o, 0) }, DA3_ERR_INVALID_ARGUMENT);
    assert_eq!(unsafe { da3_options_default(&mut o, 4096) }, DA3_ERR_UNSUPPORTED);

    for v in 0..4 {
        assert!(precision_from_c(v, "p").is_ok());
        assert!(resize_method_from_c(v, "r").is_ok());
        assert!(ref_view_from_c(v, "s").is_ok());
        assert!(pixel_format_from_c(v, "f").is_ok());
        assert_eq!(precision_to_c(precision_from_c(v, "p").unwrap()), v);
        assert_eq!(resize_method_to_c(resize_method_from_c(v, "r").unwrap()), v);
        assert_eq!(ref_view_to_c(ref_view_from_c(v, "s").unwrap()), v);
    }
    for v in [4, 99, u32::MAX] {
        let e = precision_from_c(v, "precision").unwrap_err();
        assert_eq!(e.status, DA3_ERR_INVALID_ARGUMENT);
        assert!(e.message.contains(&format!("precision: unknown value {v}")), "{}", e.message);
        assert!(pixel_format_from_c(v, "f").is_err());
    }
}

#[test]
fn older_options_struct_gets_defaults_for_missing_fields() {
    // Programs built against the 16- and 24-byte versions: only `struct_size` bytes are
    // written and read; what lies beyond (here 0xff poison, which as pointers and counts
    // would be garbage) never matters.
    for size in [OPTIONS_V1_SIZE, OPTIONS_V2_SIZE] {
        let mut bytes = [0xffu8; size_of::<da3_options>()];
        let opts = bytes.as_mut_ptr().cast::<da3_options>();
        assert_eq!(unsafe { da3_options_default(opts, size) }, DA3_OK);
        assert!(bytes[size..].iter().all(|&b| b == 0xff), "wrote past {size} bytes");
        let mut old = [0u32; 6];
        old[..size / 4].copy_from_slice(&bytemuck_u32(&bytes[..size]));
        assert_eq!(old[0] as usize, size);
        assert_eq!(old[1], 504);
        // `bytes` may be misaligned for da3_options; options_arg reads bytes only.
        let call = unsafe { options_arg(opts) }.unwrap();
        assert_eq!(call.options, CheckedOptions::default());
        assert!(call.cameras.is_none());
        if size == OPTIONS_V2_SIZE {
            // The 24-byte version already carries the flags.
            bytes[16..20].copy_from_slice(&1u32.to_ne_bytes()); // use_ray_pose
            // A fresh pointer: writing through `bytes` invalidated `opts` (Stacked Borrows; miri).
            let opts = bytes.as_mut_ptr().cast::<da3_options>();
            assert!(unsafe { options_arg(opts) }.unwrap().options.forward().use_ray_pose);
        }
    }
}

fn bytemuck_u32(bytes: &[u8]) -> Vec<u32> {
    bytes.chunks_exact(4).map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]])).collect()
}

#[test]
fn option_pointers_are_checked() {
    let base = da3_options::from_core(&InferOptions::default());
    let e = [0f32; 32];
    let k = [0f32; 18];
    let layers = [3u32, 7];
    let expect = |o: da3_options, status: da3_status, words: &[&str]| {
        let err = unsafe { options_arg(&o) }.unwrap_err();
        assert_eq!(err.status, status, "{}", err.message);
        for w in words {
            assert!(err.message.contains(w), "'{}' lacks '{w}'", err.message);
        }
    };
    expect(da3_options { extrinsics: e.as_ptr(), extrinsics_rows: 4, ..base }, DA3_ERR_NULL_POINTER, &["options.intrinsics is NULL"]);
    expect(da3_options { intrinsics: k.as_ptr(), ..base }, DA3_ERR_NULL_POINTER, &["options.extrinsics is NULL", "both"]);
    let both = da3_options { extrinsics: e.as_ptr(), intrinsics: k.as_ptr(), ..base };
    expect(both, DA3_ERR_INVALID_ARGUMENT, &["extrinsics_rows is 0"]);
    expect(da3_options { extrinsics_rows: 5, ..both }, DA3_ERR_INVALID_ARGUMENT, &["extrinsics_rows is 5"]);
    expect(da3_options { extrinsics_rows: 2, ..base }, DA3_ERR_INVALID_ARGUMENT, &["extrinsics_rows is 2"]);
    let misaligned = unsafe { e.as_ptr().cast::<u8>().add(1).cast::<f32>() };
    expect(da3_options { extrinsics: misaligned, extrinsics_rows: 3, ..both }, DA3_ERR_INVALID_ARGUMENT, &["aligned"]);
    expect(da3_options { export_feat_layer_count: 2, ..base }, DA3_ERR_NULL_POINTER, &["export_feat_layers is NULL", "2"]);
    let twice = [3u32, 3];
    expect(
        da3_options { export_feat_layers: twice.as_ptr(), export_feat_layer_count: 2, ..base },
        DA3_ERR_INVALID_ARGUMENT,
        &["options.export_feat_layers lists block 3 twice"],
    );

    let call = unsafe { options_arg(&da3_options { extrinsics_rows: 3, export_feat_layers: layers.as_ptr(), export_feat_layer_count: 2, ..both }) }.unwrap();
    assert_eq!(call.options.forward().export_feat_layers, vec![3, 7]);
    let cameras = unsafe { call.cameras.unwrap().slices(2) }.unwrap();
    assert_eq!((cameras.extrinsics.len(), cameras.intrinsics.len()), (24, 18));
    let call = unsafe { options_arg(&da3_options { extrinsics_rows: 4, ..both }) }.unwrap();
    assert_eq!(unsafe { call.cameras.unwrap().slices(2) }.unwrap().extrinsics.len(), 32);
    // A count with a NULL list is an error, but an unused list with count 0 is fine.
    assert!(unsafe { options_arg(&da3_options { export_feat_layers: layers.as_ptr(), ..base }) }.unwrap().options.forward().export_feat_layers.is_empty());
}

#[test]
fn features_alignment_scale_and_warning_codes_are_reported() {
    use crate::prediction::FeatureMap;
    let prediction = Prediction {
        views: 2,
        height: 1,
        width: 2,
        depth: vec![1.0; 4],
        confidence: vec![1.0; 4],
        features: vec![
            FeatureMap { layer: 7, shape: [2, 1, 1, 3], data: (0..6).map(|v| v as f32).collect() },
            FeatureMap { layer: 3, shape: [2, 1, 2, 1], data: vec![9.0; 4] },
        ],
        alignment_scale: Some(0.5),
        warnings: vec![Warning::MetricAlignmentSkipped { non_sky_pixels: 2 }, Warning::EmptyAlignmentMask],
        ..Default::default()
    };
    let r = da3_result::new(prediction).unwrap().into_raw();
    unsafe {
        assert_eq!(da3_result_feature_count(r), 2);
        let (mut layer, mut shape) = (0u32, [0usize; 4]);
        assert_eq!(da3_result_feature_info(r, 0, &mut layer, shape.as_mut_ptr()), DA3_OK);
        assert_eq!((layer, shape), (7, [2, 1, 1, 3]));
        assert_eq!(*da3_result_feature_data(r, 0).add(5), 5.0);
        assert_eq!(da3_result_feature_info(r, 1, &mut layer, shape.as_mut_ptr()), DA3_OK);
        assert_eq!((layer, shape), (3, [2, 1, 2, 1]));
        assert_eq!(da3_result_feature_info(r, 2, &mut layer, shape.as_mut_ptr()), DA3_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains("feature index 2 is out of range"), "{}", last_error());
        assert_eq!(da3_result_feature_info(r, 0, ptr::null_mut(), shape.as_mut_ptr()), DA3_ERR_NULL_POINTER);
        assert_eq!(da3_result_feature_info(r, 0, &mut layer, ptr::null_mut()), DA3_ERR_NULL_POINTER);
        assert!(da3_result_feature_data(r, 2).is_null());
        let mut scale = 0f32;
        assert_eq!(da3_result_alignment_scale(r, &mut scale), DA3_OK);
        assert_eq!(scale, 0.5);
        assert_eq!(da3_result_warning_code(r, 0), DA3_WARNING_METRIC_ALIGNMENT_SKIPPED);
        assert_eq!(da3_result_warning_code(r, 1), DA3_WARNING_EMPTY_ALIGNMENT_MASK);
        assert_eq!(da3_result_warning_code(r, 2), DA3_WARNING_NONE);
        assert!(da3_result_has_confidence(r) && !da3_result_has_sky(r));
        da3_result_free(r);

        let r = result_of(1, 1, 1, true);
        assert_eq!(da3_result_feature_count(r), 0);
        assert_eq!(da3_result_alignment_scale(r, &mut scale), DA3_ERR_NOT_AVAILABLE);
        assert!(last_error().contains("no known cameras"), "{}", last_error());
        da3_result_free(r);
    }
    let bad = Prediction {
        views: 1,
        height: 1,
        width: 1,
        depth: vec![0.0],
        features: vec![FeatureMap { layer: 0, shape: [1, 1, 1, 2], data: vec![0.0; 3] }],
        ..Default::default()
    };
    assert_eq!(da3_result::new(bad).err().unwrap().status, DA3_ERR_PANIC);
}

#[test]
fn capability_flags_follow_the_model() {
    let any_view = Capabilities {
        preset: "da3-small",
        camera_encoder: true,
        ray_head: true,
        backbone_depth: 12,
        pose: true,
        confidence: true,
        sky: false,
        metric_depth: false,
        canonical_metric_depth: false,
    };
    assert_eq!(capability_flags(&any_view), DA3_CAP_POSE | DA3_CAP_CONFIDENCE | DA3_CAP_KNOWN_CAMERAS | DA3_CAP_RAY_POSE);
    let metric = Capabilities {
        camera_encoder: false,
        ray_head: false,
        pose: false,
        confidence: false,
        sky: true,
        canonical_metric_depth: true,
        ..any_view.clone()
    };
    assert_eq!(capability_flags(&metric), DA3_CAP_SKY | DA3_CAP_CANONICAL_METRIC_DEPTH);
    unsafe {
        let mut flags = 0;
        assert_eq!(da3_model_capabilities(ptr::null(), &mut flags), DA3_ERR_NULL_POINTER);
        assert_eq!(da3_model_backbone_depth(ptr::null()), 0);
    }
}

#[test]
fn result_accessors_check_views_and_pointers() {
    let r = result_of(2, 3, 4, true);
    unsafe {
        assert_eq!(da3_result_view_count(r), 2);
        assert_eq!((da3_result_width(r), da3_result_height(r)), (4, 3));
        let d1 = da3_result_depth(r, 1);
        assert_eq!(*d1, 12.0);
        assert_eq!(da3_result_depth_all(r), da3_result_depth(r, 0));
        assert!(!da3_result_confidence(r, 1).is_null());
        assert!(da3_result_depth(r, 2).is_null());
        assert!(last_error().contains("view index 2 is out of range"), "{}", last_error());
        assert!(da3_result_confidence(r, usize::MAX).is_null());
        assert!(da3_result_has_cameras(r));
        let mut e = [0f32; 12];
        assert_eq!(da3_result_extrinsics(r, 1, e.as_mut_ptr()), DA3_OK);
        assert_eq!(e[0], 12.0);
        let mut k = [0f32; 9];
        assert_eq!(da3_result_intrinsics(r, 1, k.as_mut_ptr()), DA3_OK);
        assert_eq!(k[8], 17.0);
        assert_eq!(da3_result_extrinsics(r, 2, e.as_mut_ptr()), DA3_ERR_INVALID_ARGUMENT);
        assert_eq!(da3_result_intrinsics(r, 0, ptr::null_mut()), DA3_ERR_NULL_POINTER);
        assert_eq!(da3_result_extrinsics(ptr::null(), 0, e.as_mut_ptr()), DA3_ERR_NULL_POINTER);
        assert_eq!(da3_result_write_depth_png(r, 5, c"/tmp/x.png".as_ptr()), DA3_ERR_INVALID_ARGUMENT);
        assert_eq!(da3_result_write_depth_png(r, 0, ptr::null()), DA3_ERR_NULL_POINTER);
        assert_eq!(da3_result_write_depth_png(r, 0, c"/nonexistent-da3-dir/x.png".as_ptr()), DA3_ERR_IO);
        assert!(last_error().contains("/nonexistent-da3-dir/x.png"));
        da3_result_free(r);

        let r = result_of(1, 2, 2, false);
        assert!(!da3_result_has_cameras(r));
        assert_eq!(da3_result_extrinsics(r, 0, e.as_mut_ptr()), DA3_ERR_NOT_AVAILABLE);
        assert!(last_error().contains("extrinsics"));
        assert_eq!(da3_result_intrinsics(r, 0, k.as_mut_ptr()), DA3_ERR_NOT_AVAILABLE);
        da3_result_free(r);

        assert!(da3_result_depth_all(ptr::null()).is_null());
        assert_eq!(da3_result_width(ptr::null()), 0);
        assert!(da3_model_preset(ptr::null()).is_null());
        assert!(da3_model_device(ptr::null()).is_null());
        assert_eq!(da3_model_precision(ptr::null()), DA3_PRECISION_AUTO);
        da3_free(ptr::null_mut());
        da3_result_free(ptr::null_mut());
    }
}

#[test]
fn inconsistent_predictions_are_internal_errors() {
    let bad = Prediction {
        views: 2,
        height: 2,
        width: 2,
        depth: vec![0.0; 7],
        confidence: vec![0.0; 8],
        ..Default::default()
    };
    let e = da3_result::new(bad).err().unwrap();
    assert_eq!(e.status, DA3_ERR_PANIC);
    assert!(e.message.contains("depth holds 7"), "{}", e.message);
    assert!(da3_result::new(Prediction::default()).is_err());
}
