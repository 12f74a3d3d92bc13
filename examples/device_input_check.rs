//! Views on the GPU: the tensor preprocessing path (`preprocess::tensor_path`) on CUDA against
//! the host path, and `da3_infer_cuda` against `da3_infer` on the same frames:
//! `device_input_check CHECKPOINT [TIMING_CHECKPOINT]` (a GPU is required).
//!
//! 1. preprocessing: the bytes and network input of the tensor path on the GPU must equal the
//!    host path's (area generic / 2x2 / 3x3, cubic, crop, mixed sizes, the sample photos);
//! 2. `da3_infer_cuda` with the photos in device memory (BGRA, padded pitch, from
//!    `cudaMallocPitch`-like tensors) must give `da3_infer`'s depth bit for bit (fp32,
//!    accelerate off and on), with the caller's stream when libcudart offers one;
//!    and with `DA3_DEVICE_OUTPUT_DEPTH | _CONFIDENCE` the maps in GPU memory equal the host
//!    maps bit for bit;
//! 3. refusals: a host pointer, an image running past the end of its allocation, an unknown
//!    device_outputs bit; an image at an offset inside an allocation is accepted;
//! 4. timing (with TIMING_CHECKPOINT, bf16 + accelerate): end to end from 640x480 frames at
//!    1 / 16 / 64 views, host frames preprocessed on the host, host frames preprocessed on the
//!    GPU (`DA3_PREPROCESS=device`), and frames already on the GPU (`da3_infer_cuda`),
//!    alternating rounds in one process (`DA3_PREPROCESS` set for each model). One JSON line per
//!    measurement.
//! Exit status 1 when a check fails.
use std::ffi::{c_void, CStr, CString};
use std::ptr;
use std::time::Instant;

use da3::ffi::*;
use da3::image_input::PixelFormat;
use da3::options::{PreprocessOptions, ResizeMethod};
use da3::preprocess::tensor_path::{process_pixel_rows, test_pattern as pattern, PixelRows};
use da3::RgbImage;
use tch::{Device, Tensor};

fn last_error() -> String {
    // SAFETY: NUL-terminated, valid until the next call on this thread.
    unsafe { CStr::from_ptr(da3_last_error_message()) }.to_string_lossy().into_owned()
}

/// `image` as BGRA8 rows `pitch` bytes apart in a new CUDA tensor (kept alive by the caller).
fn on_gpu_bgra(image: &RgbImage, pitch: usize, device: Device) -> Tensor {
    let (w, h) = (image.width as usize, image.height as usize);
    let mut bytes = vec![0u8; pitch * h];
    for (p, rgb) in image.data.chunks_exact(3).enumerate() {
        let at = (p / w) * pitch + (p % w) * 4;
        bytes[at..at + 4].copy_from_slice(&[rgb[2], rgb[1], rgb[0], 255]);
    }
    Tensor::from_slice(&bytes).to_device(device)
}

fn cuda_view(image: &RgbImage, rows: &Tensor, pitch: usize) -> da3_cuda_image {
    da3_cuda_image { data: rows.data_ptr() as *const c_void, width: image.width, height: image.height, pitch, format: DA3_PIXEL_BGRA8 }
}

fn create(checkpoint: &str, accelerate: bool, precision: da3_precision) -> *mut da3_model {
    let path = CString::new(checkpoint).unwrap();
    let mut model = ptr::null_mut();
    // SAFETY: valid C string and out-pointer.
    let status = unsafe { da3_create(path.as_ptr(), accelerate, precision, &mut model) };
    assert_eq!(status, da3_status::DA3_OK, "{}", last_error());
    model
}

fn depth_of(result: *mut da3_result) -> Vec<f32> {
    // SAFETY: a live result; depth_all holds views * width * height floats.
    unsafe {
        let n = da3_result_view_count(result) * da3_result_width(result) as usize * da3_result_height(result) as usize;
        let depth = std::slice::from_raw_parts(da3_result_depth_all(result), n).to_vec();
        da3_result_free(result);
        depth
    }
}

fn infer_host(model: *const da3_model, images: &[RgbImage]) -> *mut da3_result {
    let views: Vec<da3_image> = images
        .iter()
        .map(|i| da3_image { data: i.data.as_ptr(), width: i.width, height: i.height, stride: i.width as usize * 3, format: DA3_PIXEL_RGB8 })
        .collect();
    let mut out = ptr::null_mut();
    // SAFETY: live views and out-pointer.
    let status = unsafe { da3_infer(model, views.as_ptr(), views.len(), ptr::null(), &mut out) };
    assert_eq!(status, da3_status::DA3_OK, "{}", last_error());
    out
}

fn infer_cuda(model: *const da3_model, views: &[da3_cuda_image], stream: *mut c_void) -> (da3_status, *mut da3_result) {
    infer_cuda_keeping(model, views, stream, 0)
}

fn infer_cuda_keeping(model: *const da3_model, views: &[da3_cuda_image], stream: *mut c_void, outputs: da3_device_outputs) -> (da3_status, *mut da3_result) {
    let mut out = ptr::null_mut();
    // SAFETY: the views' memory is alive (the caller holds the tensors); out-pointer valid.
    let status = unsafe { da3_infer_cuda(model, views.as_ptr(), views.len(), ptr::null(), stream, outputs, &mut out) };
    (status, out)
}

/// Whether the result's maps in GPU memory hold its host maps, bit for bit.
fn device_maps_equal_host_maps(result: *const da3_result) -> Result<(), String> {
    // SAFETY: a live result; the device addresses hold views * H * W floats on that GPU.
    unsafe {
        let (views, h, w) = (da3_result_view_count(result), da3_result_height(result) as i64, da3_result_width(result) as i64);
        let device = da3_result_device(result);
        if device < 0 {
            return Err(format!("no device: {}", last_error()));
        }
        for (name, on_gpu, on_host) in [
            ("depth", da3_result_depth_device(result, 0), da3_result_depth_all(result)),
            ("confidence", da3_result_confidence_device(result, 0), da3_result_confidence_all(result)),
        ] {
            if on_gpu.is_null() || on_host.is_null() {
                return Err(format!("{name}: a map is missing: {}", last_error()));
            }
            let n = views * (h * w) as usize;
            let gpu = Tensor::from_blob(on_gpu as *const u8, &[n as i64], &[1], tch::Kind::Float, Device::Cuda(device as usize)).to_device(Device::Cpu);
            let mut copied = vec![0f32; n];
            gpu.copy_data(&mut copied, n);
            if copied.as_slice() != std::slice::from_raw_parts(on_host, n) {
                return Err(format!("{name}: the GPU map differs from the host map"));
            }
            let second = da3_result_depth_device(result, views - 1);
            if name == "depth" && second as usize != on_gpu as usize + (views - 1) * n / views * 4 {
                return Err("the views of the depth map do not follow one another".into());
            }
        }
        Ok(())
    }
}

/// `cudaStreamCreateWithFlags(non-blocking)` from the libcudart libtorch loaded, if found.
fn new_stream() -> Option<*mut c_void> {
    for name in ["libcudart.so.13", "libcudart.so.12"] {
        let c = CString::new(name).unwrap();
        // SAFETY: looking up an already loaded library and a symbol in it.
        unsafe {
            let lib = libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD);
            if lib.is_null() {
                continue;
            }
            let sym = libc::dlsym(lib, c"cudaStreamCreateWithFlags".as_ptr());
            if sym.is_null() {
                continue;
            }
            let create: unsafe extern "C" fn(*mut *mut c_void, u32) -> i32 = std::mem::transmute(sym);
            let mut stream = ptr::null_mut();
            if create(&mut stream, 1) == 0 {
                return Some(stream);
            }
        }
    }
    None
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(checkpoint) = args.first() else {
        eprintln!("usage: device_input_check CHECKPOINT [TIMING_CHECKPOINT]");
        std::process::exit(2);
    };
    if !da3::gpu::cuda_available() {
        eprintln!("no GPU");
        std::process::exit(2);
    }
    let device = Device::Cuda(0);
    let mut failures = 0;
    let mut check = |name: &str, ok: bool, detail: String| {
        println!("{{\"check\":\"{name}\",\"ok\":{ok},\"detail\":{detail:?}}}");
        if !ok {
            failures += 1;
        }
    };
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/images");
    let photos: Vec<RgbImage> =
        ["soh_000.png", "soh_010.png"].iter().map(|f| da3::preprocess::load_image(format!("{dir}/{f}").as_ref()).unwrap()).collect();

    // 1. The tensor path on the GPU against the host path.
    let cases: Vec<(&str, Vec<RgbImage>, ResizeMethod)> = vec![
        ("area 640x480", vec![pattern(640, 480, 1)], ResizeMethod::UpperBoundResize),
        ("area 2x2", vec![pattern(1008, 756, 2)], ResizeMethod::UpperBoundResize),
        ("area 3x3", vec![pattern(1512, 1134, 3)], ResizeMethod::UpperBoundResize),
        ("cubic 320x240", vec![pattern(320, 240, 4)], ResizeMethod::UpperBoundResize),
        ("cubic 333x251", vec![pattern(333, 251, 5)], ResizeMethod::UpperBoundResize),
        ("crop", vec![pattern(640, 480, 6)], ResizeMethod::UpperBoundCrop),
        ("mixed sizes", vec![pattern(700, 300, 7), pattern(300, 700, 8)], ResizeMethod::LowerBoundResize),
        ("photos", photos.clone(), ResizeMethod::UpperBoundResize),
        ("interleaved sizes", vec![pattern(640, 480, 11), pattern(600, 500, 12), pattern(640, 480, 13)], ResizeMethod::UpperBoundResize),
    ];
    for (name, images, method) in cases {
        let options = PreprocessOptions { process_res: 504, resize_method: method };
        let host = da3::preprocess::process_views(&images, &options, 4).unwrap();
        let views: Vec<PixelRows> = images
            .iter()
            .map(|i| PixelRows {
                rows: Tensor::from_slice(&i.data).view([i.height as i64, i.width as i64 * 3]).to_device(device),
                width: i.width,
                height: i.height,
                format: PixelFormat::Rgb8,
            })
            .collect();
        let gpu = process_pixel_rows(&views, &options).unwrap();
        let (a, b) = (host.colors.as_ref().unwrap(), gpu.colors.as_ref().unwrap());
        let differing = a.iter().zip(b).filter(|(x, y)| x != y).count();
        let same_input = host.images.equal(&gpu.images.to_device(Device::Cpu));
        check(&format!("tensor path on the GPU = host path: {name}"), differing == 0 && same_input, format!("{differing} of {} bytes differ; input equal: {same_input}", a.len()));
    }

    // 2. da3_infer_cuda against da3_infer (fp32; accelerate off, then on).
    let pitch = |i: &RgbImage| (i.width as usize * 4).div_ceil(256) * 256;
    let rows: Vec<Tensor> = photos.iter().map(|i| on_gpu_bgra(i, pitch(i), device)).collect();
    let views: Vec<da3_cuda_image> = photos.iter().zip(&rows).map(|(i, r)| cuda_view(i, r, pitch(i))).collect();
    let stream = new_stream();
    // The models preprocess host frames on the host: da3_infer is the host path here.
    std::env::set_var("DA3_PREPROCESS", "host");
    for accelerate in [false, true] {
        let model = create(checkpoint, accelerate, DA3_PRECISION_FP32);
        let want = depth_of(infer_host(model, &photos));
        for (label, s) in [("null stream", Some(ptr::null_mut())), ("caller stream", stream)] {
            let Some(s) = s else {
                check("da3_infer_cuda with a caller stream", true, "skipped: no cudaStreamCreateWithFlags found".into());
                continue;
            };
            let (status, result) = infer_cuda(model, &views, s);
            let ok = status == da3_status::DA3_OK;
            let got = if ok { depth_of(result) } else { Vec::new() };
            // Depth and confidence kept in GPU memory: the host maps' values, bit for bit.
            let both = DA3_DEVICE_OUTPUT_DEPTH | DA3_DEVICE_OUTPUT_CONFIDENCE;
            let (kept_status, kept) = infer_cuda_keeping(model, &views, s, both);
            let kept_ok = kept_status == da3_status::DA3_OK;
            let equal = if kept_ok { device_maps_equal_host_maps(kept) } else { Err(last_error()) };
            let kept_depth = if kept_ok { depth_of(kept) } else { Vec::new() };
            check(
                &format!("device outputs = host outputs (fp32, accelerate {accelerate}, {label})"),
                equal.is_ok() && kept_depth == want,
                format!("{equal:?}"),
            );
            check(&format!("da3_infer_cuda = da3_infer (fp32, accelerate {accelerate}, {label})"), ok && got == want, format!("status {status:?} {}", if ok { String::new() } else { last_error() }));
        }
        if !accelerate {
            // 3. Refusals, then the model still serves.
            let host_bytes = vec![0u8; 64 * 48 * 4];
            let host_view = da3_cuda_image { data: host_bytes.as_ptr() as *const c_void, width: 64, height: 48, pitch: 256, format: DA3_PIXEL_BGRA8 };
            let (status, _) = infer_cuda(model, &[host_view], ptr::null_mut());
            check("a host pointer is refused", status == da3_status::DA3_ERR_INVALID_ARGUMENT, last_error());
            // A caching allocator hands out ranges of bigger CUDA allocations: the check is
            // against the CUDA allocation, so the image must overrun that.
            let too_long = da3_cuda_image { height: 1 << 20, ..views[0] };
            let (status, _) = infer_cuda(model, &[too_long], ptr::null_mut());
            let message = last_error();
            check("an image past its allocation is refused", status == da3_status::DA3_ERR_INVALID_ARGUMENT && message.contains("past the end"), message);
            let inside = da3_cuda_image { data: (views[0].data as usize + 8) as *const c_void, width: views[0].width - 2, ..views[0] };
            let (status, result) = infer_cuda(model, &[inside], ptr::null_mut());
            check("an image inside an allocation (offset) is accepted", status == da3_status::DA3_OK, last_error());
            if status == da3_status::DA3_OK {
                depth_of(result);
            }
            let (status, result) = infer_cuda(model, &views, ptr::null_mut());
            check("the model serves after refusals", status == da3_status::DA3_OK, last_error());
            if status == da3_status::DA3_OK {
                depth_of(result);
            }
            let (status, _) = infer_cuda_keeping(model, &views, ptr::null_mut(), 4);
            check("an unknown device_outputs bit is refused", status == da3_status::DA3_ERR_INVALID_ARGUMENT, last_error());
            // Known cameras: the depth aligned to them (rescaled on the host) is what the GPU map holds.
            let three = [views[0], views[1], views[0]];
            let extrinsics: Vec<f32> = [[0.0f32, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
                .iter()
                .flat_map(|t| [1.0, 0.0, 0.0, -t[0], 0.0, 1.0, 0.0, -t[1], 0.0, 0.0, 1.0, -t[2]])
                .collect();
            let intrinsics: Vec<f32> = three
                .iter()
                .flat_map(|v| [500.0, 0.0, v.width as f32 / 2.0, 0.0, 500.0, v.height as f32 / 2.0, 0.0, 0.0, 1.0])
                .collect();
            // SAFETY: a valid out-pointer of the right size.
            let mut options: da3_options = unsafe { std::mem::zeroed() };
            // SAFETY: `options` is writable for its size.
            unsafe { da3_options_default(&mut options, std::mem::size_of::<da3_options>()) };
            options.extrinsics_rows = 3;
            options.extrinsics = extrinsics.as_ptr();
            options.intrinsics = intrinsics.as_ptr();
            let mut out = ptr::null_mut();
            let both = DA3_DEVICE_OUTPUT_DEPTH | DA3_DEVICE_OUTPUT_CONFIDENCE;
            // SAFETY: live views, cameras for three views and out-pointer.
            let status = unsafe { da3_infer_cuda(model, three.as_ptr(), 3, &options, ptr::null_mut(), both, &mut out) };
            let detail = if status == da3_status::DA3_OK { device_maps_equal_host_maps(out) } else { Err(last_error()) };
            if status == da3_status::DA3_OK {
                depth_of(out);
            }
            check("device outputs = host outputs with known cameras (aligned depth)", detail.is_ok(), format!("{detail:?}"));
        }
        // SAFETY: created above, freed once.
        unsafe { da3_free(model) };
    }

    // 4. Timing, bf16 + accelerate.
    if let Some(timing) = args.get(1) {
        let frames: Vec<RgbImage> = (0..64).map(|v| pattern(640, 480, 100 + v)).collect();
        std::env::set_var("DA3_PREPROCESS", "host");
        let host_model = create(timing, true, DA3_PRECISION_BF16);
        std::env::set_var("DA3_PREPROCESS", "device");
        let device_model = create(timing, true, DA3_PRECISION_BF16);
        std::env::remove_var("DA3_PREPROCESS");
        let gpu_rows: Vec<Tensor> = frames.iter().map(|i| on_gpu_bgra(i, 2560, device)).collect();
        let gpu_views: Vec<da3_cuda_image> = frames.iter().zip(&gpu_rows).map(|(i, r)| cuda_view(i, r, 2560)).collect();
        for n in [1usize, 16, 64] {
            let mut times: [Vec<f64>; 3] = Default::default();
            for round in 0..13 {
                for (k, times) in times.iter_mut().enumerate() {
                    let start = Instant::now();
                    let result = match k {
                        0 => infer_host(host_model, &frames[..n]),
                        1 => infer_host(device_model, &frames[..n]),
                        _ => {
                            let (status, r) = infer_cuda(host_model, &gpu_views[..n], ptr::null_mut());
                            assert_eq!(status, da3_status::DA3_OK, "{}", last_error());
                            r
                        }
                    };
                    // SAFETY: a live result, freed once.
                    unsafe { da3_result_free(result) };
                    if round >= 3 {
                        times.push(start.elapsed().as_secs_f64() * 1e3);
                    }
                }
            }
            for (k, mut t) in times.into_iter().enumerate() {
                t.sort_by(f64::total_cmp);
                let path = ["host frames, preprocessed on the host", "host frames, DA3_PREPROCESS=device", "frames in CUDA memory, da3_infer_cuda"][k];
                println!("{{\"views\":{n},\"path\":\"{path}\",\"median_ms\":{:.2},\"min_ms\":{:.2},\"iters\":{}}}", t[t.len() / 2], t[0], t.len());
            }
        }
        // SAFETY: created above, freed once each.
        unsafe {
            da3_free(host_model);
            da3_free(device_model);
        }
    }
    std::process::exit(if failures == 0 { 0 } else { 1 });
}
