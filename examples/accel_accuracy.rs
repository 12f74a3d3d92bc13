//! Measures how far `use_accelerate` (and each precision) lands from the fp32 reference
//! (non-accelerated, the official numerics) on real photos: the accuracy bound in README.
//! `cargo run --release --example accel_accuracy -- [--bf16-accelerated-only] [--scene-views N] CHECKPOINT IMAGE...`
//! (`--bf16-accelerated-only`: only the configuration the bound is about, for the large models
//! where five loads do not fit a short GPU call; `--scene-views N`: one more scene of N views,
//! crops of the images, where the accelerated path works on large activations in chunks.)
//!
//! Scenes: each image alone, all images together, and all images plus a left and a right
//! crop of each (so a reference view is chosen, from 3 views on). Every accelerated scene
//! runs three times (eager + capture, then two CUDA graph replays); the last is compared
//! with the reference, and the replays with the eager call. One JSON line per scene and
//! configuration on stdout.
use da3::accuracy::{compare, ACCELERATED_BF16_BOUND};
use da3::{Engine, InferOptions, LoadOptions, Precision, RgbImage, Scene, Views};

fn crop(image: &RgbImage, x0: u32, width: u32) -> RgbImage {
    let mut data = Vec::with_capacity((width * image.height * 3) as usize);
    for y in 0..image.height {
        let row = ((y * image.width + x0) * 3) as usize;
        data.extend_from_slice(&image.data[row..row + (width * 3) as usize]);
    }
    RgbImage { width, height: image.height, data }
}

fn main() -> da3::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut bf16_only = false;
    let mut scene_views = 0usize;
    while let Some(flag) = args.first().filter(|a| a.starts_with("--")).cloned() {
        args.remove(0);
        match flag.as_str() {
            "--bf16-accelerated-only" => bf16_only = true,
            "--scene-views" if !args.is_empty() => scene_views = args.remove(0).parse().unwrap_or(0),
            _ => args.clear(),
        }
    }
    if args.len() < 2 {
        eprintln!("usage: accel_accuracy [--bf16-accelerated-only] [--scene-views N] CHECKPOINT IMAGE...");
        std::process::exit(2);
    }
    let images: Vec<RgbImage> = args[1..].iter().map(|p| da3::preprocess::load_image(p.as_ref())).collect::<da3::Result<_>>()?;
    let mut scenes: Vec<(String, Vec<RgbImage>)> = images.iter().enumerate().map(|(i, im)| (format!("image{i}"), vec![im.clone()])).collect();
    scenes.push(("all".into(), images.clone()));
    let mut with_crops = images.clone();
    for im in &images {
        let w = im.width * 4 / 5;
        with_crops.push(crop(im, 0, w));
        with_crops.push(crop(im, im.width - w, w));
    }
    scenes.push(("all+crops".into(), with_crops));
    if scene_views > 0 {
        // A long scene: crops (4/5 of the width) of the images in turn, the window moving
        // across each image from view to view.
        let rounds = scene_views.div_ceil(images.len()).max(2) as u32;
        let views = (0..scene_views)
            .map(|k| {
                let im = &images[k % images.len()];
                let w = im.width * 4 / 5;
                crop(im, (im.width - w) * (k / images.len()) as u32 / (rounds - 1), w)
            })
            .collect();
        scenes.push((format!("{scene_views}-view crops"), views));
    }

    let options = InferOptions::default().check()?;
    let reference = Engine::load(&args[0], LoadOptions::from_env(false, Precision::Fp32)?)?;
    let references: Vec<_> =
        scenes.iter().map(|(_, s)| reference.infer(&Scene::new(Views::Rgb(s)), &options)).collect::<da3::Result<_>>()?;
    drop(reference);
    let env = |name: &str| std::env::var(name).unwrap_or_else(|_| "unset".into());
    println!(
        "# model {}, DA3_DEVICE={}, DA3_ACCEL_HEAD={}, DA3_ATTENTION={}",
        args[0],
        env("DA3_DEVICE"),
        env("DA3_ACCEL_HEAD"),
        env("DA3_ATTENTION")
    );
    let all = [(Precision::Fp32, true), (Precision::Bf16, false), (Precision::Bf16, true), (Precision::Fp16, false), (Precision::Fp16, true)];
    let configurations = if bf16_only { &all[2..3] } else { &all[..] };
    for &(precision, accelerate) in configurations {
        let engine = Engine::load(&args[0], LoadOptions::from_env(accelerate, precision)?)?;
        for ((name, scene), reference) in scenes.iter().zip(&references) {
            let runs = if accelerate { 3 } else { 1 };
            let predictions: Vec<_> = (0..runs).map(|_| engine.infer(&Scene::new(Views::Rgb(scene)), &options)).collect::<da3::Result<_>>()?;
            let last = predictions.last().expect("at least one run");
            let d = compare(reference, last)?;
            let replay_vs_eager = if runs > 1 { compare(&predictions[0], last)?.depth_rel_max } else { 0.0 };
            println!(
                "{{\"scene\":\"{name}\",\"views\":{},\"size\":\"{}x{}\",\"precision\":\"{:?}\",\"accelerate\":{accelerate},\
                 \"graphs\":{},\"depth_rel_median\":{:.3e},\"depth_rel_p99\":{:.3e},\"depth_rel_max\":{:.3e},\
                 \"rotation_deg_max\":{:.3e},\"translation_rel_max\":{:.3e},\"focal_rel_max\":{:.3e},\
                 \"replay_vs_eager_depth_rel_max\":{:.3e},\"within_bf16_bound\":{},\"sky_flip_share\":{},\
                 \"depth_rel_max_same_sky\":{}}}",
                scene.len(),
                last.width,
                last.height,
                engine.precision(),
                engine.accelerated(),
                d.depth_rel_median,
                d.depth_rel_p99,
                d.depth_rel_max,
                d.rotation_deg_max,
                d.translation_rel_max,
                d.focal_rel_max,
                replay_vs_eager,
                d.within(&ACCELERATED_BF16_BOUND),
                d.sky.map_or("null".into(), |s| format!("{:.3e}", s.share)),
                d.sky.map_or("null".into(), |s| format!("{:.3e}", s.depth_rel_max_elsewhere))
            );
        }
    }
    Ok(())
}
