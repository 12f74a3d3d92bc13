//! Where one end-to-end inference spends its time: preprocessing, the network, the copy of
//! the outputs to the host, and the whole `Engine::infer` call (what `da3_infer` runs), from
//! packed RGB8 frames of random pixels.
//!
//!     cargo run --release --example e2e_profile -- CHECKPOINT [--views 1,4] [--frame 640x480]
//!         [--precision fp32|bf16|fp16|auto] [--warmup 2] [--iters 10] [--json] [--preprocess-only]
//!
//! `--preprocess-only` times `preprocess::process_image_views` alone (threads:
//! `DA3_PREPROCESS_THREADS`, default every core). Otherwise prints a table of median times per stage; with `--json`, one JSON line per view count in the
//! `da3_bench` format (`"mode":"e2e"`, the `Engine::infer` time) for `bench/side_by_side.py`.
use std::time::Instant;

use da3::preprocess;
use da3::{Engine, ImageView, InferOptions, LoadOptions, PixelFormat, Precision, Scene, Views};
use tch::Device;

struct Args {
    checkpoint: String,
    views: Vec<usize>,
    frame: (u32, u32),
    precision: Precision,
    warmup: usize,
    iters: usize,
    json: bool,
    preprocess_only: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut args = Args {
        checkpoint: String::new(),
        views: vec![1, 4],
        frame: (640, 480),
        precision: Precision::Fp32,
        warmup: 2,
        iters: 10,
        json: false,
        preprocess_only: false,
    };
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--views" => {
                args.views = value()?.split(',').map(|v| v.parse().map_err(|e| format!("--views: {e}"))).collect::<Result<_, _>>()?
            }
            "--frame" => {
                let v = value()?;
                let (w, h) = v.split_once('x').ok_or("--frame WxH")?;
                args.frame = (w.parse().map_err(|_| "--frame WxH")?, h.parse().map_err(|_| "--frame WxH")?);
            }
            "--precision" => {
                args.precision = match value()?.as_str() {
                    "auto" => Precision::Auto,
                    "fp32" => Precision::Fp32,
                    "fp16" => Precision::Fp16,
                    "bf16" => Precision::Bf16,
                    p => return Err(format!("unknown precision {p}")),
                }
            }
            "--warmup" => args.warmup = value()?.parse().map_err(|_| "--warmup N")?,
            "--iters" => args.iters = value()?.parse().map_err(|_| "--iters N")?,
            "--json" => args.json = true,
            "--preprocess-only" => args.preprocess_only = true,
            _ if args.checkpoint.is_empty() && !a.starts_with("--") => args.checkpoint = a,
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    if args.checkpoint.is_empty() || args.iters == 0 || args.views.is_empty() {
        return Err("usage: e2e_profile CHECKPOINT [--views 1,4] [--frame 640x480] [--precision fp32] \
                    [--warmup 2] [--iters 10] [--json] [--preprocess-only]"
            .into());
    }
    Ok(args)
}

/// Deterministic pseudo-random bytes (xorshift), so that runs see the same frames.
fn random_frame(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..width as usize * height as usize * 3)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

fn sync(device: &str) {
    if device.starts_with("cuda") {
        let index = device.trim_start_matches("cuda:").parse().unwrap_or(0);
        tch::Cuda::synchronize(index);
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| {
        eprintln!("e2e_profile: {e}");
        std::process::exit(2)
    });
    let load = LoadOptions::from_env(false, args.precision).expect("settings");
    let threads = load.settings.preprocess_thread_count();
    let engine = Engine::load(&args.checkpoint, load).unwrap_or_else(|e| {
        eprintln!("e2e_profile: cannot load {}: {e}", args.checkpoint);
        std::process::exit(1)
    });
    let device = engine.device_name();
    let options = InferOptions::default().check().unwrap();
    let (fw, fh) = args.frame;
    if !args.json && !args.preprocess_only {
        println!(
            "{} on {device}, {:?}, {fw}x{fh} RGB8 frames, torch intra-op threads {}, median of {} (after {} warm-up)",
            engine.preset_name(),
            engine.precision(),
            tch::get_num_threads(),
            args.iters,
            args.warmup
        );
        println!("| views | preprocess ms | network ms | to host ms | Engine::infer ms | other ms |");
        println!("|---:|---:|---:|---:|---:|---:|");
    }
    for &n in &args.views {
        let frames: Vec<Vec<u8>> = (0..n).map(|v| random_frame(fw, fh, v as u64 + 1)).collect();
        let views: Vec<ImageView> = frames
            .iter()
            .map(|f| ImageView::new(f, fw, fh, fw as usize * 3, PixelFormat::Rgb8).unwrap())
            .collect();
        if args.preprocess_only {
            let mut pre = vec![];
            for i in 0..args.warmup + args.iters {
                let t = Instant::now();
                std::hint::black_box(preprocess::process_image_views(&views, options.preprocess(), threads).unwrap());
                if i >= args.warmup {
                    pre.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
            let best = pre.iter().cloned().fold(f64::INFINITY, f64::min);
            println!("{n} view(s): preprocessing median {:.2} ms, min {best:.2} ms", median(&mut pre));
            continue;
        }
        let (mut pre, mut net, mut host, mut e2e) = (vec![], vec![], vec![], vec![]);
        for i in 0..args.warmup + args.iters {
            let keep = i >= args.warmup;
            // Stages one by one, as Engine::infer runs them.
            let t = Instant::now();
            let processed = preprocess::process_image_views(&views, options.preprocess(), threads).unwrap();
            let t_pre = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let out = engine.forward(&processed.images, None, options.forward(), false).unwrap();
            sync(&device);
            let t_net = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let depth = Vec::<f32>::try_from(&out.depth.to_device(Device::Cpu).reshape([-1])).unwrap();
            let conf = out.depth_conf.as_ref().map(|c| Vec::<f32>::try_from(&c.to_device(Device::Cpu).reshape([-1])).unwrap());
            let t_host = t.elapsed().as_secs_f64();
            std::hint::black_box((depth, conf));
            // The whole call.
            let t = Instant::now();
            let prediction = engine.infer(&Scene::new(Views::Images(&views)), &options).unwrap();
            let t_e2e = t.elapsed().as_secs_f64();
            std::hint::black_box(prediction);
            if keep {
                pre.push(t_pre * 1e3);
                net.push(t_net * 1e3);
                host.push(t_host * 1e3);
                e2e.push(t_e2e * 1e3);
            }
        }
        let (pre, net, host) = (median(&mut pre), median(&mut net), median(&mut host));
        let min_e2e = e2e.iter().cloned().fold(f64::INFINITY, f64::min);
        let e2e = median(&mut e2e);
        if args.json {
            println!(
                "{{\"impl\":\"libda3\",\"model\":\"{}\",\"views\":{n},\"precision\":\"{}\",\"accelerate\":false,\
                 \"mode\":\"e2e\",\"median_ms\":{e2e:.3},\"min_ms\":{min_e2e:.3},\"views_per_s\":{:.3},\
                 \"peak_mib\":null,\"device\":\"{device}\",\"iters\":{},\"preprocess_ms\":{pre:.3},\
                 \"network_ms\":{net:.3},\"to_host_ms\":{host:.3},\"source\":\"examples/e2e_profile.rs\"}}",
                engine.preset_name(),
                format!("{:?}", engine.precision()).to_lowercase(),
                n as f64 / (e2e / 1e3),
                args.iters
            );
        } else {
            println!("| {n} | {pre:.1} | {net:.1} | {host:.1} | {e2e:.1} | {:.1} |", e2e - pre - net - host);
        }
    }
}
