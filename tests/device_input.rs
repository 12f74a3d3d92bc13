//! Views preprocessed as tensors (`preprocess::tensor_path`) and views in CUDA memory
//! (`da3_infer_cuda`), where no GPU runs the suite:
//! - `DA3_PREPROCESS=device` on a CPU model runs the tensor path on the CPU: the prediction
//!   equals the host path's bit for bit (the same bytes, the same network input), for
//!   interleaved buffers of every pixel format, packed images and files;
//! - `da3_infer_cuda` checks its arguments as `da3_infer` does and refuses a model on the CPU.
//! (`examples/device_input_check.rs` runs both on a GPU: bench/.)
use std::ffi::{c_void, CStr};
use std::ptr;

use da3::ffi::*;
use da3::image_input::{ImageView, PixelFormat};
use da3::settings::{PreprocessOn, Settings};
use da3::{Engine, InferOptions, LoadOptions, Precision, RgbImage, Scene, Views};

mod common;

fn photos() -> Vec<RgbImage> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/images");
    ["soh_000.png", "soh_010.png"].iter().map(|f| da3::preprocess::load_image(format!("{dir}/{f}").as_ref()).unwrap()).collect()
}

#[test]
fn preprocessing_as_tensors_gives_the_host_paths_prediction() {
    let ck = common::oracle_checkpoint("da3-small");
    let ck = ck.to_str().unwrap();
    let load = |on: PreprocessOn| {
        let settings = Settings { device: Some("cpu".into()), preprocess_on: on, ..Settings::default() };
        Engine::load(ck, LoadOptions::new(false, Precision::Fp32).with_settings(settings)).unwrap()
    };
    let (host, tensors) = (load(PreprocessOn::Host), load(PreprocessOn::Device));
    let images = photos();
    // The first photo as BGRA with a padded stride, the second as RGB8: both conversions.
    let (w, h) = (images[0].width as usize, images[0].height as usize);
    let stride = w * 4 + 12;
    let mut bgra = vec![0u8; stride * h];
    for (p, rgb) in images[0].data.chunks_exact(3).enumerate() {
        let at = (p / w) * stride + (p % w) * 4;
        bgra[at..at + 4].copy_from_slice(&[rgb[2], rgb[1], rgb[0], 255]);
    }
    let buffers = [
        ImageView::new(&bgra, w as u32, h as u32, stride, PixelFormat::Bgra8).unwrap(),
        ImageView::new(&images[1].data, images[1].width, images[1].height, images[1].width as usize * 3, PixelFormat::Rgb8)
            .unwrap(),
    ];
    for process_res in [252, 280] {
        let options = InferOptions { process_res, ..InferOptions::default() }.check().unwrap();
        for views in [Views::Images(&buffers), Views::Rgb(&images)] {
            let a = host.infer(&Scene::new(views), &options).unwrap();
            let b = tensors.infer(&Scene::new(views), &options).unwrap();
            assert_eq!((a.width, a.height), (b.width, b.height));
            assert_eq!(a.colors, b.colors, "the processed bytes");
            assert_eq!(a.depth, b.depth, "depth at process_res {process_res}");
            assert_eq!(a.confidence, b.confidence);
            assert_eq!(a.extrinsics, b.extrinsics);
        }
    }
}

fn last_error() -> String {
    // SAFETY: the library returns a NUL-terminated string valid until the next call here.
    unsafe { CStr::from_ptr(da3_last_error_message()) }.to_string_lossy().into_owned()
}

#[test]
fn views_in_cuda_memory_are_checked_and_need_a_gpu_model() {
    let ck = common::oracle_checkpoint("da3-small");
    let path = std::ffi::CString::new(ck.to_str().unwrap()).unwrap();
    std::env::set_var("DA3_DEVICE", "cpu");
    let mut model = ptr::null_mut();
    // SAFETY: valid C string and out-pointer.
    let status = unsafe { da3_create(path.as_ptr(), false, DA3_PRECISION_FP32, &mut model) };
    assert_eq!(status, da3_status::DA3_OK, "{}", last_error());
    let bytes = vec![0u8; 64 * 48 * 4];
    let view = da3_cuda_image { data: bytes.as_ptr() as *const c_void, width: 64, height: 48, pitch: 64 * 3, format: DA3_PIXEL_RGB8 };
    let call = |views: &[da3_cuda_image]| {
        let mut out = ptr::null_mut();
        // SAFETY: `views` is a live array; the data pointers are never read by a CPU model.
        let status = unsafe { da3_infer_cuda(model, views.as_ptr(), views.len(), ptr::null(), ptr::null_mut(), 0, &mut out) };
        assert!(out.is_null());
        (status, last_error())
    };
    let (status, message) = call(&[view]);
    assert_eq!(status, da3_status::DA3_ERR_UNSUPPORTED, "{message}");
    assert!(message.contains("need a model on a GPU"), "{message}");
    let cases = [
        (da3_cuda_image { data: ptr::null(), ..view }, da3_status::DA3_ERR_NULL_POINTER, "views[1].data"),
        (da3_cuda_image { pitch: 64 * 4 - 1, format: DA3_PIXEL_RGBA8, ..view }, da3_status::DA3_ERR_INVALID_ARGUMENT, "pitch 255"),
        (da3_cuda_image { width: 0, ..view }, da3_status::DA3_ERR_INVALID_ARGUMENT, "non-zero"),
        (da3_cuda_image { format: 7, ..view }, da3_status::DA3_ERR_INVALID_ARGUMENT, "views[1].format"),
        (da3_cuda_image { data: usize::MAX as *const c_void, ..view }, da3_status::DA3_ERR_INVALID_ARGUMENT, "overflows"),
    ];
    for (bad, expected, needle) in cases {
        let (status, message) = call(&[view, bad]);
        assert_eq!(status, expected, "{message}");
        assert!(message.contains(needle), "'{needle}' not in: {message}");
    }
    // SAFETY: NULL views with a count is the case under test.
    let status = unsafe { da3_infer_cuda(model, ptr::null(), 1, ptr::null(), ptr::null_mut(), 0, &mut ptr::null_mut()) };
    assert_eq!(status, da3_status::DA3_ERR_NULL_POINTER);
    // An unknown bit in device_outputs, checked before the model's device.
    let mut out = ptr::null_mut();
    // SAFETY: a live one-element array; the data pointer is never read by a CPU model.
    let status = unsafe { da3_infer_cuda(model, &view, 1, ptr::null(), ptr::null_mut(), 4, &mut out) };
    assert_eq!(status, da3_status::DA3_ERR_INVALID_ARGUMENT);
    assert!(last_error().contains("device_outputs is 0x4"), "{}", last_error());
    // A result from host frames keeps no maps in GPU memory: NULL / -1 with a message.
    let image = photos().remove(1);
    let host_view = da3_image { data: image.data.as_ptr(), width: image.width, height: image.height, stride: image.width as usize * 3, format: DA3_PIXEL_RGB8 };
    let mut result = ptr::null_mut();
    // SAFETY: live view and out-pointer; the result is freed below.
    unsafe {
        assert_eq!(da3_infer(model, &host_view, 1, ptr::null(), &mut result), da3_status::DA3_OK, "{}", last_error());
        assert!(da3_result_depth_device(result, 0).is_null());
        assert!(last_error().contains("DA3_DEVICE_OUTPUT_DEPTH"), "{}", last_error());
        assert!(da3_result_confidence_device(result, 0).is_null());
        assert_eq!(da3_result_device(result), -1);
        assert!(da3_result_depth_device(result, 1).is_null());
        assert!(last_error().contains("out of range"), "{}", last_error());
        da3_result_free(result);
    }
    // SAFETY: a handle from da3_create, freed once.
    unsafe { da3_free(model) };
}
