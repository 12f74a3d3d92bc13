//! Several replicas in one handle, on the CPU (two CPU "devices"): the batch API, concurrent
//! callers and one scene sharded over the replicas give the single-replica results.
//! Uses the oracle's da3-small checkpoint (see tests/parity.rs); inputs are kept small.
use da3::engine::Placement;
use da3::{CheckedOptions, Engine, ImageView, InferOptions, LoadOptions, PixelFormat, Precision, Prediction, Scene, Views};
use tch::Device;

mod common;

fn checkpoint() -> String {
    common::oracle_checkpoint("da3-small").to_str().unwrap().to_owned()
}

const W: u32 = 84;
const H: u32 = 70;

fn views<'a>(buffers: &'a [Vec<u8>]) -> Vec<ImageView<'a>> {
    buffers.iter().map(|b| ImageView::new(b, W, H, (W * 3) as usize, PixelFormat::Rgb8).unwrap()).collect()
}

fn options() -> CheckedOptions {
    InferOptions { process_res: 84, ..InferOptions::default() }.check().unwrap()
}

/// One scene of `views` (no known cameras).
fn scene<'a>(views: &'a [ImageView<'a>]) -> Scene<'a> {
    Scene::new(Views::Images(views))
}

/// Largest difference between two predictions relative to the range of `b`, over depth,
/// confidence and cameras.
fn max_relative_difference(a: &Prediction, b: &Prediction) -> f64 {
    fn rel(a: &[f32], b: &[f32]) -> f64 {
        assert_eq!(a.len(), b.len());
        let (lo, hi) = b.iter().fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        let range = f64::from(hi - lo).max(1e-12);
        a.iter().zip(b).map(|(x, y)| f64::from((x - y).abs()) / range).fold(0.0, f64::max)
    }
    assert_eq!((a.views, a.height, a.width), (b.views, b.height, b.width));
    let mut d = rel(&a.depth, &b.depth).max(rel(&a.confidence, &b.confidence));
    if let (Some(x), Some(y)) = (&a.extrinsics, &b.extrinsics) {
        d = d.max(rel(x, y));
    }
    if let (Some(x), Some(y)) = (&a.intrinsics, &b.intrinsics) {
        d = d.max(rel(x, y));
    }
    d
}

/// The same CPU arithmetic on every replica: results agree to float rounding (in practice
/// exactly).
const TOLERANCE: f64 = 1e-6;

#[test]
fn two_cpu_replicas_serve_batches_concurrent_callers_and_sharded_scenes_like_one() {
    let ckpt = checkpoint();
    let single = Engine::load(&ckpt, LoadOptions::new(true, Precision::Fp32).on_devices(&[Device::Cpu])).unwrap();
    let pair = Engine::load(&ckpt, LoadOptions::new(true, Precision::Fp32).on_devices(&[Device::Cpu, Device::Cpu])).unwrap();
    assert_eq!(pair.replica_count(), 2);
    assert_eq!(pair.device_names(), vec!["cpu", "cpu"]);
    let opts = options();

    // Scenes of 1, 2 and 3 views (3 runs the reference-view selection), and one bad scene.
    let buffers: Vec<Vec<Vec<u8>>> =
        [1u32, 2, 3].iter().enumerate().map(|(s, &n)| (0..n).map(|v| common::pattern(W, H, 10 * s as u32 + v)).collect()).collect();
    let view_sets: Vec<Vec<ImageView<'_>>> = buffers.iter().map(|b| views(b)).collect();
    let expected: Vec<Prediction> = view_sets.iter().map(|v| single.infer(&scene(v), &opts).unwrap()).collect();
    let mut scenes: Vec<Scene<'_>> = view_sets.iter().map(|v| scene(v)).collect();
    scenes.insert(1, scene(&[]));

    // Batch over the two replicas: in input order, the bad scene fails alone.
    pair.set_placement(Placement::Replicate);
    let results = pair.infer_scenes(&scenes, &opts);
    assert_eq!(results.len(), 4);
    assert!(results[1].is_err(), "a scene without views is an error");
    for (got, want) in [&results[0], &results[2], &results[3]].into_iter().zip(&expected) {
        let d = max_relative_difference(got.as_ref().unwrap(), want);
        assert!(d <= TOLERANCE, "batched scene differs from the single-replica result by {d}");
    }

    // A scene with known cameras through the batch: as through `infer_with_cameras`.
    let extrinsics: Vec<f32> =
        (0..3).flat_map(|v| [1.0, 0.0, 0.0, 0.1 * v as f32, 0.0, 1.0, 0.0, 0.05 * (v * v) as f32, 0.0, 0.0, 1.0, 0.02 * v as f32]).collect();
    let intrinsics: Vec<f32> = (0..3).flat_map(|_| [80.0, 0.0, 42.0, 0.0, 80.0, 35.0, 0.0, 0.0, 1.0]).collect();
    let cameras = || da3::CameraInput { extrinsics: &extrinsics, intrinsics: &intrinsics };
    let want = single.infer(&scene(&view_sets[2]).with_cameras(Some(cameras())), &opts).unwrap();
    assert!(want.alignment_scale.is_some());
    let with_cameras = [
        scene(&view_sets[0]),
        scene(&view_sets[2]).with_cameras(Some(cameras())),
    ];
    let results = pair.infer_scenes(&with_cameras, &opts);
    assert!(max_relative_difference(results[0].as_ref().unwrap(), &expected[0]) <= TOLERANCE);
    let got = results[1].as_ref().unwrap();
    assert_eq!(got.alignment_scale, want.alignment_scale);
    assert!(max_relative_difference(got, &want) <= TOLERANCE, "known-camera scene differs");

    // Concurrent callers on the pair.
    std::thread::scope(|scope| {
        for caller in 0..4 {
            let (pair, view_sets, expected, opts) = (&pair, &view_sets, &expected, &opts);
            scope.spawn(move || {
                for round in 0..2 {
                    let s = (caller + round) % view_sets.len();
                    let got = pair.infer(&scene(&view_sets[s]), opts).unwrap();
                    let d = max_relative_difference(&got, &expected[s]);
                    assert!(d <= TOLERANCE, "caller {caller}: differs by {d}");
                }
            });
        }
    });

    // One scene split over the two replicas (blocks in two shares): same result.
    pair.set_placement(Placement::Shard);
    for (v, want) in view_sets.iter().zip(&expected) {
        let got = pair.infer(&scene(v), &opts).unwrap();
        let d = max_relative_difference(&got, want);
        assert!(d <= TOLERANCE, "sharded scene differs by {d}");
    }
    // A forced-shard batch runs the scenes one after the other, each sharded.
    let results = pair.infer_scenes(&scenes, &opts);
    assert!(results[1].is_err());
    let d = max_relative_difference(results[3].as_ref().unwrap(), &expected[2]);
    assert!(d <= TOLERANCE, "sharded batch scene differs by {d}");
    // Auto on the CPU: there is no free-memory figure, so scenes are replicated.
    pair.set_placement(Placement::Auto);
    let got = pair.infer(&scene(&view_sets[2]), &opts).unwrap();
    assert!(max_relative_difference(&got, &expected[2]) <= TOLERANCE);
}

#[test]
fn device_lists_are_checked() {
    let ckpt = checkpoint();
    let err = Engine::load(&ckpt, LoadOptions::new(false, Precision::Fp32).on_devices(&[])).err().expect("empty list");
    assert!(err.to_string().contains("empty"), "{err}");
    let err = da3::gpu::parse_device_list("cpu,gpu").expect_err("unknown device");
    assert!(err.to_string().contains("gpu"), "{err}");
    assert_eq!(da3::gpu::parse_device_list("cpu, cpu").unwrap(), vec![Device::Cpu, Device::Cpu]);
}
