//! Hostile but fair input through the C API (issue 11's D2, D8, D9 and the non-finite policy):
//! each is refused with a named error, quickly and before anything large is allocated, and the
//! handle serves the next call. The image-file and checkpoint cases live in their own tests.
use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr;
use std::time::{Duration, Instant};

use da3::ffi::*;
use safetensors::tensor::TensorView;
use safetensors::SafeTensors;

mod common;

fn last_error() -> String {
    // SAFETY: the library returns a valid NUL-terminated string for this thread.
    unsafe { CStr::from_ptr(da3_last_error_message()) }.to_string_lossy().into_owned()
}

fn create(dir: &Path) -> *mut da3_model {
    let path = CString::new(dir.to_str().unwrap()).unwrap();
    let mut model = ptr::null_mut();
    // SAFETY: valid C string and out-pointer.
    let status = unsafe { da3_create(path.as_ptr(), false, DA3_PRECISION_FP32, &mut model) };
    assert_eq!(status, da3_status::DA3_OK, "{}", last_error());
    model
}

fn options(process_res: u32, resize_method: da3_resize_method) -> da3_options {
    // SAFETY: a zeroed plain struct, then filled by the library.
    let mut o: da3_options = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { da3_options_default(&mut o, std::mem::size_of::<da3_options>()) }, da3_status::DA3_OK);
    o.process_res = process_res;
    o.resize_method = resize_method;
    o
}

/// `da3_infer` on RGB8 buffers; returns the status, the message and how long it took.
fn infer_rgb(model: *const da3_model, images: &[(Vec<u8>, u32, u32)], o: &da3_options) -> (da3_status, String, Duration) {
    let views: Vec<da3_image> = images
        .iter()
        .map(|(data, w, h)| da3_image { data: data.as_ptr(), width: *w, height: *h, stride: *w as usize * 3, format: DA3_PIXEL_RGB8 })
        .collect();
    let mut result = ptr::null_mut();
    let start = Instant::now();
    // SAFETY: every view points at its own buffer of height * stride bytes; valid out-pointer.
    let status = unsafe { da3_infer(model, views.as_ptr(), views.len(), o, &mut result) };
    let took = start.elapsed();
    let message = last_error();
    // SAFETY: NULL or a result this call returned.
    unsafe { da3_result_free(result) };
    (status, message, took)
}

fn pattern(w: u32, h: u32, seed: u32) -> (Vec<u8>, u32, u32) {
    (common::pattern(w, h, seed), w, h)
}

#[test]
fn extreme_sizes_shapes_cameras_and_floats_are_refused_and_the_handle_serves_the_next_call() {
    let model = create(&common::oracle_checkpoint("da3-small"));
    let good = options(70, DA3_RESIZE_UPPER_BOUND_RESIZE);
    let (status, message, _) = infer_rgb(model, &[pattern(64, 48, 1)], &good);
    assert_eq!(status, da3_status::DA3_OK, "{message}");

    // D2: a 1x60000 (or 1x65535) buffer at a lower-bound resize to 140 asked for 140 x 8.4M
    // pixels (a 15 GB tensor); a 3x4000 one for 140 x 186662. Refused from the sizes alone.
    for (w, h, method) in [
        (1, 60000, DA3_RESIZE_LOWER_BOUND_RESIZE),
        (65535, 1, DA3_RESIZE_LOWER_BOUND_CROP),
        (3, 4000, DA3_RESIZE_LOWER_BOUND_RESIZE),
    ] {
        let (status, message, took) = infer_rgb(model, &[pattern(w, h, 2)], &options(140, method));
        assert_eq!(status, da3_status::DA3_ERR_INVALID_ARGUMENT, "{w}x{h}: {message}");
        assert!(message.contains("DA3_MAX_PROCESSED_PIXELS") && message.contains(&format!("{w}x{h}")), "{message}");
        assert!(took < Duration::from_secs(2), "{w}x{h} took {took:?}");
    }

    // D8: finite but absurd known cameras (a 1e20 baseline) are refused by the documented bounds.
    let mut o = good;
    let mut extrinsics = Vec::new();
    for x in [0.0f32, 1e20, 2e20] {
        extrinsics.extend_from_slice(&[1.0, 0.0, 0.0, -x, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
    }
    let intrinsics: Vec<f32> = (0..3).flat_map(|_| [50.0, 0.0, 32.0, 0.0, 50.0, 24.0, 0.0, 0.0, 1.0]).collect();
    o.extrinsics_rows = 3;
    o.extrinsics = extrinsics.as_ptr();
    o.intrinsics = intrinsics.as_ptr();
    let three = [pattern(64, 48, 3), pattern(64, 48, 4), pattern(64, 48, 5)];
    let (status, message, _) = infer_rgb(model, &three, &o);
    assert_eq!(status, da3_status::DA3_ERR_INVALID_ARGUMENT, "{message}");
    assert!(message.contains("DA3_MAX_CAMERA_MAGNITUDE"), "{message}");

    // NaN in caller-normalised input: refused, naming where (not a result full of NaN).
    let (side, views) = (28u32, 2usize);
    let mut floats = vec![0.25f32; views * 3 * (side * side) as usize];
    let mut result = ptr::null_mut();
    floats[3 * 784 + 784 + 5] = f32::NAN; // view 1, channel 1
    // SAFETY: `floats` holds views * 3 * side * side floats; valid out-pointer.
    let status = unsafe { da3_infer_preprocessed(model, floats.as_ptr(), views, side, side, ptr::null(), &mut result) };
    assert_eq!(status, da3_status::DA3_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("view 1, channel 1") && result.is_null(), "{}", last_error());
    // D9: a NULL image pointer names the float count it was given, not "n_views".
    // SAFETY: NULL images is the case under test; valid out-pointer.
    let status = unsafe { da3_infer_preprocessed(model, ptr::null(), views, side, side, ptr::null(), &mut result) };
    assert_eq!(status, da3_status::DA3_ERR_NULL_POINTER);
    assert!(last_error().contains("n_views * 3 * height * width is 4704"), "{}", last_error());

    let (status, message, _) = infer_rgb(model, &[pattern(64, 48, 1)], &good);
    assert_eq!(status, da3_status::DA3_OK, "the handle serves the next call: {message}");
    // SAFETY: a handle from da3_create, freed once.
    unsafe { da3_free(model) };
}

/// A copy of the da3-small checkpoint whose depth/confidence logit bias is NaN.
fn checkpoint_with_nan_output() -> tempfile::TempDir {
    let src = common::oracle_checkpoint("da3-small");
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let target = "model.head.scratch.output_conv2.2.bias";
    let nan: Vec<u8> = {
        let view = file.tensor(target).unwrap();
        f32::NAN.to_le_bytes().repeat(view.data().len() / 4)
    };
    let tensors: Vec<(String, TensorView<'_>)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            if name == target {
                let poisoned = TensorView::new(view.dtype(), view.shape().to_vec(), &nan).unwrap();
                (name, poisoned)
            } else {
                (name, view)
            }
        })
        .collect();
    let out = tempfile::tempdir().unwrap();
    safetensors::serialize_to_file(tensors, None, &out.path().join("model.safetensors")).unwrap();
    std::fs::copy(src.join("config.json"), out.path().join("config.json")).unwrap();
    out
}

#[test]
fn a_non_finite_output_is_an_error_not_a_result() {
    let dir = checkpoint_with_nan_output();
    let model = create(dir.path());
    let (status, message, _) = infer_rgb(model, &[pattern(64, 48, 1)], &options(70, DA3_RESIZE_UPPER_BOUND_RESIZE));
    assert_eq!(status, da3_status::DA3_ERR_NON_FINITE, "{message}");
    assert!(message.contains("of the predicted depth are NaN or infinite"), "{message}");
    // SAFETY: a handle from da3_create, freed once.
    unsafe { da3_free(model) };
}

/// A panic inside libda3's work (caught and reported as an error) writes nothing to the host's
/// stderr; a panic of the host's own (libda3 linked as an rlib) still reaches the previous hook.
/// The panics happen in a child process (this test binary again) whose stderr is read.
#[test]
fn panics_inside_libda3_stay_off_stderr() {
    if std::env::var_os("DA3_TEST_PANIC_CHILD").is_some() {
        let quiet = da3::error::quiet_panics(|| std::panic::catch_unwind(|| panic!("quiet boom")));
        assert!(quiet.is_err());
        let loud = std::panic::catch_unwind(|| panic!("loud boom"));
        assert!(loud.is_err());
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "panics_inside_libda3_stay_off_stderr", "--nocapture", "--test-threads=1"])
        .env("DA3_TEST_PANIC_CHILD", "1")
        .env("DA3_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("quiet boom"), "{stderr}");
    assert!(stderr.contains("loud boom"), "{stderr}");
}
