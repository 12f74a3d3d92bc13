//! Runs pose-conditioned inference with ray-based pose and exported features on the GPU and on
//! the CPU (fp32 both) and prints how far apart they are: a check that every tensor of these
//! paths lands on the right device. GPU convolutions use TF32 and cuSOLVER, so agreement is
//! approximate; the ray-pose RANSAC may pick other inliers.
//! `cargo run --release --example pose_gpu_check -- CHECKPOINT [VIEWS]`
use da3::{CameraInput, Engine, InferOptions, LoadOptions, Precision, RgbImage, Scene, Views};

/// A smooth synthetic image with a moving pattern (content matters little with random weights).
fn image(width: u32, height: u32, view: usize) -> RgbImage {
    let mut data = Vec::with_capacity((width * height * 3) as usize);
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
            let p = (fx * 9.0 + view as f32 * 0.7).sin() * (fy * 7.0 - view as f32 * 0.3).cos();
            data.extend([(128.0 + 100.0 * p) as u8, (255.0 * fx) as u8, (255.0 * fy) as u8]);
        }
    }
    RgbImage { width, height, data }
}

/// World-to-camera 4x4 of `views` cameras on a circle of radius 4 looking at the origin.
fn circle_rig(views: usize) -> Vec<f32> {
    let mut out = Vec::new();
    for i in 0..views {
        let a = 2.0 * std::f32::consts::PI * i as f32 / views as f32;
        let centre = [4.0 * a.cos(), 0.3 * (3.0 * a).sin(), 4.0 * a.sin()];
        let norm = |v: [f32; 3]| {
            let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
            v.map(|c| c / n)
        };
        let cross = |a: [f32; 3], b: [f32; 3]| [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
        let z = norm(centre.map(|c| -c));
        let x = norm(cross(z, [0.0, 1.0, 0.0]));
        let y = cross(z, x);
        for row in [x, y, z] {
            let t = -(row[0] * centre[0] + row[1] * centre[1] + row[2] * centre[2]);
            out.extend([row[0], row[1], row[2], t]);
        }
        out.extend([0.0, 0.0, 0.0, 1.0]);
    }
    out
}

fn max_rel(a: &[f32], b: &[f32]) -> f64 {
    let (lo, hi) = b.iter().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
    diff as f64 / ((hi - lo) as f64).max(1e-12)
}

fn main() -> da3::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let checkpoint = args.get(1).expect("usage: pose_gpu_check CHECKPOINT [VIEWS]");
    let views: usize = args.get(2).map(|v| v.parse().expect("VIEWS is a number")).unwrap_or(10);
    let images: Vec<RgbImage> = (0..views).map(|v| image(320, 240, v)).collect();
    let extrinsics = circle_rig(views);
    let intrinsics: Vec<f32> = (0..views).flat_map(|_| [300.0, 0.0, 160.0, 0.0, 300.0, 120.0, 0.0, 0.0, 1.0]).collect();
    let cameras = CameraInput { extrinsics: &extrinsics, intrinsics: &intrinsics };
    let mut results = Vec::new();
    for device in ["cuda", "cpu"] {
        let mut load = LoadOptions::from_env(false, Precision::Fp32)?;
        load.settings.device = Some(device.to_owned());
        let engine = Engine::load(checkpoint, load)?;
        // On a GPU the camera encoder reaches device memory with the first posed call.
        let allocated_mib = || engine.memory_stats().map(|m| format!("{:.1} MiB", m.allocated as f64 / 1048576.0)).unwrap_or_default();
        println!("{} loaded: {}", engine.device_name(), allocated_mib());
        for use_ray_pose in [false, true] {
            let options = InferOptions { process_res: 280, use_ray_pose, export_feat_layers: vec![3, 11], ..InferOptions::default() }.check()?;
            let posed = Scene::new(Views::Rgb(&images)).with_cameras(Some(cameras));
            let t0 = std::time::Instant::now();
            let with = engine.infer(&posed, &options)?;
            let first = t0.elapsed();
            let t1 = std::time::Instant::now();
            engine.infer(&posed, &options)?;
            let again = t1.elapsed();
            let without = engine.infer(&Scene::new(Views::Rgb(&images)), &options)?;
            println!(
                "{} ray_pose={use_ray_pose}: {views} views {}x{}, posed call {first:.2?} then {again:.2?}, scale {:?}, \
                 finite {}, {} allocated",
                engine.device_name(),
                with.width,
                with.height,
                with.alignment_scale,
                with.depth.iter().chain(without.extrinsics.as_ref().unwrap()).all(|v| v.is_finite()),
                allocated_mib()
            );
            results.push((device, use_ray_pose, with, without));
        }
    }
    for ray in [false, true] {
        let pick = |d: &str| results.iter().find(|r| r.0 == d && r.1 == ray).unwrap();
        let (gpu, cpu) = (pick("cuda"), pick("cpu"));
        println!(
            "ray_pose={ray} GPU vs CPU, max rel: depth {:.2e}, features {:.2e}, scale {:?} vs {:?}, \
             unconditioned extrinsics {:.2e}, intrinsics {:.2e}",
            max_rel(&gpu.2.depth, &cpu.2.depth),
            max_rel(&gpu.2.features[1].data, &cpu.2.features[1].data),
            gpu.2.alignment_scale,
            cpu.2.alignment_scale,
            max_rel(gpu.3.extrinsics.as_ref().unwrap(), cpu.3.extrinsics.as_ref().unwrap()),
            max_rel(gpu.3.intrinsics.as_ref().unwrap(), cpu.3.intrinsics.as_ref().unwrap()),
        );
    }
    Ok(())
}
