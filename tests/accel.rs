//! The accelerated runner on the CPU, where the part of `use_accelerate` that applies there
//! runs: the reference view chosen on the device (no read-back), the depth head in bf16 (4
//! views per pass) and the cached RoPE tables. (CUDA graphs and cuDNN attention need a GPU:
//! `examples/accel_accuracy.rs` measures them, see bench/.)
//!
//! - fp32: accelerate on gives exactly the numbers of accelerate off (the reference-view
//!   selection on the device picks the same view and reorders the same way);
//! - bf16 with accelerate on stays within the documented bound
//!   (`da3::accuracy::ACCELERATED_BF16_BOUND`) of the fp32 reference on the sample photos.

use da3::accuracy::{compare, ACCELERATED_BF16_BOUND};
use da3::settings::{GlueChoice, Settings};
use da3::{Engine, InferOptions, LoadOptions, Precision, RgbImage, Scene, Views};

fn checkpoint() -> String {
    let path = std::env::var("DA3_TEST_CHECKPOINT")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/target/oracle/da3-small/checkpoint").to_owned());
    assert!(std::path::Path::new(&path).join("model.safetensors").is_file(), "no checkpoint at {path}");
    path
}

/// The two sample photos and a left and a right crop of each: 6 views (a reference view is
/// chosen from 3 views on).
fn photos() -> Vec<RgbImage> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/images");
    let images: Vec<RgbImage> =
        ["soh_000.png", "soh_010.png"].iter().map(|f| da3::preprocess::load_image(format!("{dir}/{f}").as_ref()).unwrap()).collect();
    let mut views = images.clone();
    for im in &images {
        let w = im.width * 4 / 5;
        for x0 in [0, im.width - w] {
            let mut data = Vec::with_capacity((w * im.height * 3) as usize);
            for y in 0..im.height {
                let row = ((y * im.width + x0) * 3) as usize;
                data.extend_from_slice(&im.data[row..row + (w * 3) as usize]);
            }
            views.push(RgbImage { width: w, height: im.height, data });
        }
    }
    views
}

#[test]
fn accelerated_path_on_the_cpu_matches_and_stays_within_the_bound() {
    std::env::set_var("DA3_DEVICE", "cpu");
    let ck = checkpoint();
    let views = photos();
    let options = InferOptions { process_res: 196, ..InferOptions::default() };
    let infer = |engine: Engine| engine.infer(&Scene::new(Views::Rgb(&views)), &options.check().unwrap()).unwrap();
    let reference = infer(Engine::load(&ck, LoadOptions::new(false, Precision::Fp32)).unwrap());

    let fp32_accel = infer(Engine::load(&ck, LoadOptions::new(true, Precision::Fp32)).unwrap());
    assert_eq!(fp32_accel.depth, reference.depth, "fp32: accelerate on must not change the numbers");
    assert_eq!(fp32_accel.extrinsics, reference.extrinsics);
    assert_eq!(fp32_accel.confidence, reference.confidence);

    let bf16_accel = infer(Engine::load(&ck, LoadOptions::new(true, Precision::Bf16)).unwrap());
    let deviation = compare(&reference, &bf16_accel).unwrap();
    println!("bf16 + accelerate vs fp32 reference (CPU, {} views): {deviation:?}", views.len());
    assert!(deviation.depth_rel_median > 0.0, "bf16 should differ from fp32 somewhere: {deviation:?}");
    assert!(deviation.within(&ACCELERATED_BF16_BOUND), "outside the documented bound {ACCELERATED_BF16_BOUND:?}: {deviation:?}");

    // DA3_ACCEL_GLUE=official: the official RoPE, LayerScale and residual passes; also in bound.
    let settings = Settings { accelerated_glue: GlueChoice::Official, ..Settings::default() };
    let official_glue = infer(Engine::load(&ck, LoadOptions::new(true, Precision::Bf16).with_settings(settings)).unwrap());
    let deviation_official_glue = compare(&reference, &official_glue).unwrap();
    println!("... with the official glue passes: {deviation_official_glue:?}");
    assert_ne!(official_glue.depth, bf16_accel.depth, "the fused glue is a real change");
    assert!(
        deviation_official_glue.within(&ACCELERATED_BF16_BOUND),
        "outside the documented bound {ACCELERATED_BF16_BOUND:?}: {deviation_official_glue:?}"
    );

    // DA3_ACCEL_GLUE=libtorch: the fused glue in libtorch operations, which is also what the
    // default runs where the GPU kernels cannot (this CPU): the same numbers.
    let settings = Settings { accelerated_glue: GlueChoice::Libtorch, ..Settings::default() };
    let libtorch_glue = infer(Engine::load(&ck, LoadOptions::new(true, Precision::Bf16).with_settings(settings)).unwrap());
    assert_eq!(libtorch_glue.depth, bf16_accel.depth, "on the CPU the default glue is libtorch's");
}
