//! The safe, thread-safe entry point: a loaded model plus its runtime.
//!
//! One loader (`Engine::load`) and one inference path: every entry point of the C API
//! (buffers, files, preprocessed views, batches of scenes) builds `Scene`s and reaches
//! `prepare` (preprocessing, camera checks) and then `run_prepared` (the forward on a replica
//! or sharded, the prediction, the alignment to known cameras), with options checked once
//! before (`CheckedOptions`).
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tch::{Device, Kind, Tensor};

use crate::camera_input::{self, CameraInput, KnownCameras};
use crate::cancel::{self, CancelToken};
use crate::faults;
use crate::error::{Error, Result};
use crate::gpu;
use crate::host_copy;
use crate::hub;
use crate::image_input::{CudaImage, ImageView, RgbImage};
use crate::model::{ForwardRequest, NetOutput};
use crate::options::{CheckedOptions, ForwardOptions, Precision};
use crate::prediction::{DeviceMaps, DeviceOutputs, FeatureMap, Prediction};
use crate::preprocess::{device_views, tensor_path};
use crate::preprocess::{self, Processed};
use crate::replica::Replica;
use crate::runner::{Capabilities, Runner, SceneMemory, StopCheck};
use crate::scheduler::Pool;
pub use crate::settings::Placement;
use crate::settings::{PreprocessOn, Settings};
use crate::weights::{LoadPhase, TensorProgress};

/// How to load a model (`Engine::load`).
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// The accelerated runner (see the README); on a GPU also every visible device when
    /// `devices` is `None`.
    pub use_accelerate: bool,
    /// `Auto`: bf16 on a GPU (fp16 before compute capability 8.0), fp32 on the CPU.
    pub precision: Precision,
    /// One replica per listed device (all CUDA or all CPU; a device may repeat). `None`: the
    /// settings' devices, else the default (`gpu::default_devices`). An explicit list wins
    /// over the settings.
    pub devices: Option<Vec<Device>>,
    /// Everything the environment may set (`Settings::from_env`, or `Settings::default()`).
    pub settings: Settings,
    /// libtorch's intra-op CPU threads, set at load with `tch::set_num_threads`: one setting
    /// for the whole process (every model, and the host's own libtorch use), so the last
    /// load that sets it wins. Wins over the accelerated runner's one thread on a GPU.
    /// `None`: left as it is (libtorch's default, one per core; 1 after an accelerated GPU load).
    pub torch_threads: Option<usize>,
    /// Threads that preprocess the views of one call (1: the calling thread); wins over
    /// `settings.preprocess_threads`. `None`: the settings', else every core.
    pub preprocess_threads: Option<usize>,
    /// Told how the load advances; returning false stops it with `Error::Cancelled`.
    pub progress: Option<LoadProgress>,
}

/// A load's progress callback: `(fraction, stage) -> keep going`. The fraction goes from 0
/// to 1 and never decreases; the stage is `"resolve"` (finding the checkpoint and reading its
/// configuration), `"read"` (reading the weights file's tensor table and checking it against
/// the architecture, per replica), `"build"` (reading each tensor, converting it and placing
/// it on the replicas' devices) or `"done"` (1.0, the last call). Called from the threads that load the replicas, one call at a time.
#[derive(Clone)]
pub struct LoadProgress(pub Arc<dyn Fn(f32, &str) -> bool + Send + Sync>);

impl fmt::Debug for LoadProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LoadProgress(..)")
    }
}

/// Turns the replicas' tensor counts into one progress for the host, throttled to steps of
/// 1 % (and every stage change), and stops every replica's load once the host said stop.
struct LoadReporter {
    callback: Option<LoadProgress>,
    /// Per replica progress in [0, 1], the last fraction and stage reported.
    state: Mutex<(Vec<f32>, f32, &'static str)>,
    stopped: AtomicBool,
}

impl LoadReporter {
    fn new(callback: Option<LoadProgress>) -> Self {
        LoadReporter { callback, state: Mutex::new((Vec::new(), 0.0, "")), stopped: AtomicBool::new(false) }
    }

    /// Reports `within` (the whole load's fraction, or with `replica` that replica's) at
    /// `stage`; `Error::Cancelled` once the host returned false.
    fn report(&self, replica: Option<(usize, usize)>, within: f32, stage: &'static str) -> Result<()> {
        let Some(callback) = &self.callback else { return Ok(()) };
        let cancelled = |fraction: f32| {
            Error::Cancelled(format!("the load was cancelled by the progress callback (at '{stage}', {:.0} %)", fraction * 100.0))
        };
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if self.stopped.load(Ordering::SeqCst) {
            return Err(cancelled(state.1));
        }
        let fraction = match replica {
            None => within,
            Some((index, count)) => {
                state.0.resize(count, 0.0);
                state.0[index] = state.0[index].max(within);
                0.02 + 0.97 * state.0.iter().sum::<f32>() / count as f32
            }
        };
        let fraction = fraction.clamp(state.1, 1.0);
        if stage == state.2 && fraction - state.1 < 0.01 && fraction < 1.0 {
            return Ok(());
        }
        state.1 = fraction;
        state.2 = stage;
        if !(callback.0)(fraction, stage) {
            self.stopped.store(true, Ordering::SeqCst);
            return Err(cancelled(fraction));
        }
        Ok(())
    }

    /// What replica `index` of `count` tells the loader: checking the tensor table is its first
    /// 5 % (no tensor data is read then), reading and placing the tensors the next 90 %.
    fn for_replica(self: &Arc<Self>, index: usize, count: usize) -> Option<TensorProgress> {
        self.callback.as_ref()?;
        let reporter = self.clone();
        Some(Arc::new(move |phase, done, total| {
            let part = done as f32 / total.max(1) as f32;
            match phase {
                LoadPhase::Read => reporter.report(Some((index, count)), 0.05 * part, "read"),
                LoadPhase::Place => reporter.report(Some((index, count)), 0.05 + 0.9 * part, "build"),
            }
        }))
    }
}

impl LoadOptions {
    /// Default devices and settings that ignore the environment.
    pub fn new(use_accelerate: bool, precision: Precision) -> LoadOptions {
        LoadOptions {
            use_accelerate,
            precision,
            devices: None,
            settings: Settings::default(),
            torch_threads: None,
            preprocess_threads: None,
            progress: None,
        }
    }

    /// What `da3_create` uses: default devices, settings from the environment.
    pub fn from_env(use_accelerate: bool, precision: Precision) -> Result<LoadOptions> {
        Ok(LoadOptions::new(use_accelerate, precision).with_settings(Settings::from_env()?))
    }

    pub fn on_devices(mut self, devices: &[Device]) -> LoadOptions {
        self.devices = Some(devices.to_vec());
        self
    }

    pub fn with_settings(mut self, settings: Settings) -> LoadOptions {
        self.settings = settings;
        self
    }

    /// See `LoadOptions::torch_threads`.
    pub fn with_torch_threads(mut self, threads: Option<usize>) -> LoadOptions {
        self.torch_threads = threads;
        self
    }

    /// See `LoadOptions::preprocess_threads`.
    pub fn with_preprocess_threads(mut self, threads: Option<usize>) -> LoadOptions {
        self.preprocess_threads = threads;
        self
    }

    /// See `LoadOptions::progress`.
    pub fn with_progress(mut self, progress: impl Fn(f32, &str) -> bool + Send + Sync + 'static) -> LoadOptions {
        self.progress = Some(LoadProgress(Arc::new(progress)));
        self
    }
}

/// The views of one scene, in any of the forms the C API accepts.
#[derive(Clone, Copy)]
pub enum Views<'a> {
    /// Pixel buffers (any supported format and stride), read in place where possible.
    Images(&'a [ImageView<'a>]),
    /// Packed RGB8 images.
    Rgb(&'a [RgbImage]),
    /// PNG or JPEG files.
    Files(&'a [PathBuf]),
    /// Views the caller already normalised: `views` x 3 x `height` x `width` floats (height
    /// and width multiples of 14). No resize: depth and intrinsics are in these pixels.
    Preprocessed { data: &'a [f32], views: usize, height: u32, width: u32 },
    /// 8-bit images in CUDA memory, preprocessed on their GPU (`preprocess::tensor_path`)
    /// after the work queued on the caller's `stream` (a `cudaStream_t` as an address; 0: the
    /// legacy default stream). Only read during the call. `outputs`: the maps the prediction
    /// also keeps in GPU memory (`Prediction::device_maps`).
    Cuda { images: &'a [CudaImage], stream: usize, outputs: DeviceOutputs },
}

/// One scene: its views, and their cameras when known (pose-conditioned inference: the
/// network is conditioned on them and the prediction aligned back to them).
#[derive(Clone, Copy)]
pub struct Scene<'a> {
    pub views: Views<'a>,
    pub cameras: Option<CameraInput<'a>>,
}

impl<'a> Scene<'a> {
    pub fn new(views: Views<'a>) -> Scene<'a> {
        Scene { views, cameras: None }
    }

    pub fn with_cameras(mut self, cameras: Option<CameraInput<'a>>) -> Scene<'a> {
        self.cameras = cameras;
        self
    }
}

/// A scene ready for the network: its input tensor and checked cameras.
struct PreparedScene {
    processed: Processed,
    known: Option<KnownCameras>,
    /// The maps to keep in GPU memory too.
    device_outputs: DeviceOutputs,
}

/// A loaded DA3 model: one replica (`Runner`) per device. `Send + Sync`: concurrent calls
/// run on whichever replica is free (calls on one replica are serialised); with one device,
/// calls are serialised on it.
pub struct Engine {
    runners: Pool<Replica>,
    /// Fixed at load (the same for every replica).
    capabilities: Capabilities,
    /// Whether the replicas run the accelerated runner (`use_accelerate` on a GPU).
    accelerated: bool,
    devices: Vec<Device>,
    placement: AtomicU8,
    scene_memory: SceneMemory,
    preset: &'static str,
    precision: Precision,
    use_accelerate: bool,
    preprocess_threads: usize,
    /// Where frames from host memory are preprocessed (`Settings::preprocess_on`).
    preprocess_on: PreprocessOn,
}

impl Engine {
    /// Loads `model` (a checkpoint directory, or a Hugging Face repo id found in the local
    /// cache under `settings.model_cache_roots`), one replica per device.
    pub fn load(model: &str, options: LoadOptions) -> Result<Engine> {
        let LoadOptions { use_accelerate, precision, devices, settings, torch_threads, preprocess_threads, progress } = options;
        crate::log::set_level_from_settings(settings.log_level);
        gpu::support::configure(settings.cuda_support_lib.clone());
        let reporter = Arc::new(LoadReporter::new(progress));
        reporter.report(None, 0.0, "resolve")?;
        let checkpoint = hub::resolve(model, &settings.model_cache_roots)?;
        let devices_from = if devices.is_some() { "the caller's list" } else { "the default choice and the settings" };
        let devices = match devices {
            Some(devices) => devices,
            None => gpu::default_devices(&settings, use_accelerate)?,
        };
        let device = *devices.first().ok_or_else(|| Error::InvalidArgument("devices: the list is empty".into()))?;
        if devices.iter().any(|d| d.is_cuda() != device.is_cuda()) {
            return Err(Error::InvalidArgument("devices: CPU and CUDA devices mixed; replicas share one precision".into()));
        }
        let asked = precision;
        let precision = gpu::resolve_precision(precision, device);
        let kind = gpu::compute_kind(precision);
        let preprocess_threads = preprocess_threads.filter(|&n| n > 0).unwrap_or_else(|| settings.preprocess_thread_count());
        let names: Vec<String> = devices.iter().map(|&d| gpu::device_name(d)).collect();
        crate::log::info(&format!(
            "loading {} from {} on {} ({} replica(s), devices from {devices_from}); precision {asked:?} -> {precision:?}; \
             use_accelerate {use_accelerate}; {preprocess_threads} preprocessing thread(s)",
            checkpoint.config.preset,
            checkpoint.dir.display(),
            names.join(", "),
            devices.len(),
        ));
        if asked == Precision::Auto && precision == Precision::Fp16 {
            crate::log::info(&format!("precision auto: fp16, as {} computes no bf16 (compute capability before 8.0)", names[0]));
        }
        gpu::keep_forked_children_usable();
        if let Some(threads) = torch_threads.filter(|&n| n > 0) {
            tch::set_num_threads(threads as i32);
            crate::log::info(&format!("libtorch's intra-op CPU threads set to {threads} for the whole process (asked at load)"));
        }
        // One replica per device, two at a time, which bounds the concurrent reads of the file
        // (each load reads it whole; a GPU load holds one tensor at a time in host memory).
        let mut runners = Vec::with_capacity(devices.len());
        let count = devices.len();
        for (p, pair) in devices.chunks(2).enumerate() {
            let loaded = std::thread::scope(|scope| {
                let loads: Vec<_> = pair
                    .iter()
                    .enumerate()
                    .map(|(i, &d)| {
                        let (checkpoint, settings, reporter) = (&checkpoint, &settings, &reporter);
                        let index = 2 * p + i;
                        scope.spawn(move || crate::error::quiet_panics(|| {
                            let progress = reporter.for_replica(index, count);
                            let replica = Replica::load(d, || Runner::load(checkpoint, d, kind, use_accelerate, settings, preprocess_threads, progress))?;
                            reporter.report(Some((index, count)), 1.0, "build")?;
                            Ok(replica)
                        }))
                    })
                    .collect();
                loads
                    .into_iter()
                    .map(|l| l.join().unwrap_or_else(|_| Err(Error::Internal("loading a replica panicked".into()))))
                    .collect::<Result<Vec<_>>>()
            })?;
            runners.extend(loaded);
        }
        if let Some(threads) = torch_threads.filter(|&n| n > 0) {
            // Again: an accelerated GPU replica set one thread while it loaded; the caller's
            // explicit count wins.
            tch::set_num_threads(threads as i32);
        }
        reporter.report(None, 1.0, "done")?;
        let scene_memory = runners[0].runner().scene_memory();
        let capabilities = runners[0].runner().capabilities();
        let accelerated = runners[0].runner().accelerated();
        Ok(Engine {
            runners: Pool::new(runners),
            capabilities,
            accelerated,
            devices,
            placement: AtomicU8::new(settings.placement as u8),
            scene_memory,
            preset: checkpoint.config.preset,
            precision,
            use_accelerate,
            preprocess_threads,
            preprocess_on: settings.preprocess_on,
        })
    }

    /// Runs one scene.
    /// Runs one scene. The options' cancel token (`CheckedOptions::with_cancel_token`) is
    /// checked before and after preprocessing, before every backbone block, between the
    /// backbone and the head and after the forward (`Error::Cancelled`).
    pub fn infer(&self, scene: &Scene<'_>, options: &CheckedOptions) -> Result<Prediction> {
        let cancel = options.cancel_token();
        cancel::check(cancel, "before preprocessing")?;
        let prepared = self.prepare(scene, options)?;
        cancel::check(cancel, "after preprocessing")?;
        let stop = forward_stop(cancel, self.memory_noted_on());
        let stop = stop.as_ref().map(|f| f as &StopCheck<'_>);
        let (views, height, width) = prepared.shape();
        if self.shards(views, height, width) {
            let mut lease = self.runners.lease_all();
            let device = self.devices[0];
            return Replica::run_together(lease.workers_mut(), |runners| {
                run_prepared(prepared, options, device, self.preprocess_threads, |images, cameras| {
                    Runner::forward_sharded(runners, images, cameras, &request_of(options.forward()), false, stop)
                })
            });
        }
        self.runners.lease().run(|runner| {
            let device = runner.device();
            run_prepared(prepared, options, device, self.preprocess_threads, |images, cameras| {
                runner.forward(images, cameras, &request_of(options.forward()), false, stop)
            })
        })
    }

    /// Runs independent scenes, each its own forward (no attention across scenes), spread over
    /// the replicas; returns one result per scene, in input order. A scene's failure (bad
    /// input, out of memory, ...) is that scene's result only. Scenes are prepared (decoded,
    /// resized) outside the replicas, overlapping the forwards. Each scene runs on one
    /// replica, except under `Placement::Shard` (forced), where they run one after the other,
    /// each split over all replicas.
    pub fn infer_scenes(&self, scenes: &[Scene<'_>], options: &CheckedOptions) -> Vec<Result<Prediction>> {
        if self.runners.len() > 1 && self.placement() == Placement::Shard {
            return scenes.iter().map(|scene| self.infer(scene, options)).collect();
        }
        let cancel = options.cancel_token();
        let stop = forward_stop(cancel, self.memory_noted_on());
        let stop = stop.as_ref().map(|f| f as &StopCheck<'_>);
        self.runners.run_batch(
            scenes.iter().collect(),
            |scene| {
                cancel::check(cancel, "before preprocessing")?;
                self.prepare(scene, options)
            },
            |replica, prepared| {
                cancel::check(cancel, "after preprocessing")?;
                replica.run(|runner| {
                    let device = runner.device();
                    run_prepared(prepared, options, device, self.preprocess_threads, |images, cameras| {
                        runner.forward(images, cameras, &request_of(options.forward()), false, stop)
                    })
                })
            },
            |panic| Error::Internal(format!("a scene panicked: {panic}")),
        )
    }

    /// The network alone on an already preprocessed (S, 3, H, W) batch, conditioned on known
    /// cameras as the network takes them (normalised world-to-camera extrinsics (S, 4, 4),
    /// intrinsics (S, 3, 3) in network-input pixels) when given; `keep_trace` keeps the
    /// intermediate tensors (features, camera tokens, head and sky logits, the nested model's
    /// alignment statistics). For model-level tests and tools; `infer` is the product path.
    pub fn forward(
        &self,
        images: &Tensor,
        cameras: Option<(&Tensor, &Tensor)>,
        options: &ForwardOptions,
        keep_trace: bool,
    ) -> Result<NetOutput> {
        let size = images.size();
        check_network_input(&size)?;
        if let Some((extrinsics, intrinsics)) = cameras {
            let views = size[0];
            if extrinsics.size() != [views, 4, 4] || intrinsics.size() != [views, 3, 3] {
                return Err(Error::InvalidArgument(format!(
                    "cameras must be ({views}, 4, 4) extrinsics and ({views}, 3, 3) intrinsics, got {:?} and {:?}",
                    extrinsics.size(),
                    intrinsics.size()
                )));
            }
        }
        self.capabilities.check(cameras.is_some(), options)?;
        // Owned handles of the caller's tensors (no copy): a tensor may move to the replica's
        // thread, not be shared with it.
        let images = images.shallow_clone();
        let cameras = cameras.map(|(e, k)| (e.shallow_clone(), k.shallow_clone()));
        fn borrowed(cameras: &Option<(Tensor, Tensor)>) -> Option<(&Tensor, &Tensor)> {
            cameras.as_ref().map(|(e, k)| (e, k))
        }
        if self.shards(size[0], size[2], size[3]) {
            let mut lease = self.runners.lease_all();
            return Replica::run_together(lease.workers_mut(), move |runners| {
                Runner::forward_sharded(runners, &images, borrowed(&cameras), &request_of(options), keep_trace, None)
            });
        }
        self.runners.lease().run(move |runner| runner.forward(&images, borrowed(&cameras), &request_of(options), keep_trace, None))
    }

    /// Preprocessing and checks of one scene: views into the network input, cameras
    /// validated, the request checked against what the model can do.
    fn prepare(&self, scene: &Scene<'_>, options: &CheckedOptions) -> Result<PreparedScene> {
        let threads = self.preprocess_threads;
        // Files are decoded first; then the cameras are checked, before any resizing.
        let decoded: Option<Vec<RgbImage>> = match scene.views {
            Views::Files(paths) => Some(
                paths
                    .iter()
                    .enumerate()
                    .map(|(i, p)| {
                        cancel::check(options.cancel_token(), &format!("before decoding file {i}"))?;
                        preprocess::load_image(p)
                    })
                    .collect::<Result<_>>()?,
            ),
            _ => None,
        };
        let views = match scene.views {
            Views::Images(images) => images.len(),
            Views::Rgb(images) => images.len(),
            Views::Files(paths) => paths.len(),
            Views::Preprocessed { views, .. } => views,
            Views::Cuda { images, .. } => images.len(),
        };
        let known = scene.cameras.as_ref().map(|c| c.validate(views)).transpose()?;
        let on_device = match self.preprocess_on {
            // With several replicas the scenes would all be preprocessed on the first GPU and
            // copied on: the host's threads keep the replicas independent (measured: 1.92x on
            // two GPUs with host preprocessing; the GPU path was not measured on two).
            PreprocessOn::Auto => self.devices[0].is_cuda() && self.runners.len() == 1,
            PreprocessOn::Host => false,
            PreprocessOn::Device => true,
        };
        let processed = match scene.views {
            Views::Images(images) if on_device => self.process_on_device(images, options)?,
            Views::Rgb(images) if on_device => self.process_on_device(&device_views::rgb_views(images), options)?,
            Views::Files(_) if on_device => {
                self.process_on_device(&device_views::rgb_views(decoded.as_deref().unwrap_or_default()), options)?
            }
            Views::Images(images) => preprocess::process_image_views(images, options.preprocess(), threads)?,
            Views::Rgb(images) => preprocess::process_views(images, options.preprocess(), threads)?,
            Views::Files(_) => preprocess::process_views(decoded.as_deref().unwrap_or_default(), options.preprocess(), threads)?,
            Views::Preprocessed { data, views, height, width } => {
                // On the one GPU, straight from the caller's floats through the page-locked
                // staging buffer (no host copy of its own: at 64 views one pass of 130 MB into
                // fresh memory fewer).
                let device = on_device.then_some(self.devices[0]);
                preprocessed_input(data, views, height, width, threads, device)?
            }
            Views::Cuda { images, stream, .. } => {
                if !self.devices[0].is_cuda() {
                    return Err(Error::Unsupported(format!(
                        "views in CUDA memory need a model on a GPU; this one runs on {}",
                        gpu::device_name(self.devices[0])
                    )));
                }
                tensor_path::process_pixel_rows(&device_views::cuda_views(images, stream)?, options.preprocess())?
            }
        };
        self.capabilities.check(known.is_some(), options.forward())?;
        let device_outputs = match scene.views {
            Views::Cuda { outputs, .. } => outputs,
            _ => DeviceOutputs::default(),
        };
        Ok(PreparedScene { processed, known, device_outputs })
    }

    /// Host frames uploaded as bytes to the model's (first) device and preprocessed there.
    fn process_on_device(&self, images: &[ImageView<'_>], options: &CheckedOptions) -> Result<Processed> {
        let rows = device_views::upload(images, self.devices[0], self.preprocess_threads)?;
        tensor_path::process_pixel_rows(&rows, options.preprocess())
    }

    /// Whether a scene of `views` images of `height` x `width` network-input pixels is split
    /// over the replicas (see `Placement`).
    fn shards(&self, views: i64, height: i64, width: i64) -> bool {
        if self.runners.len() < 2 {
            return false;
        }
        match self.placement() {
            Placement::Replicate => false,
            Placement::Shard => {
                crate::log::info(&format!(
                    "placement shard: a scene of {views} view(s) at {height}x{width} split over {} replicas",
                    self.runners.len()
                ));
                true
            }
            Placement::Auto => {
                let Device::Cuda(index) = self.devices[0] else { return false };
                let Some((free, _)) = gpu::cuda_memory_info(index) else { return false };
                let needed = self.scene_memory.bytes(views, height, width);
                let shard = needed > free;
                if shard {
                    crate::log::info(&format!(
                        "placement auto: a scene of {views} view(s) at {height}x{width} needs about {} MiB, more than the \
                         {} MiB free on cuda:{index}: split over {} replicas",
                        needed >> 20,
                        free >> 20,
                        self.runners.len()
                    ));
                }
                shard
            }
        }
    }

    /// How single scenes use several replicas.
    pub fn placement(&self) -> Placement {
        Placement::from_u8(self.placement.load(Ordering::Relaxed))
    }

    /// Sets how the following calls use several replicas (any thread, any time; calls
    /// already running keep their choice).
    pub fn set_placement(&self, placement: Placement) {
        self.placement.store(placement as u8, Ordering::Relaxed)
    }

    /// Number of replicas (devices) the model runs on.
    pub fn replica_count(&self) -> usize {
        self.devices.len()
    }

    /// The replicas' devices, e.g. `["cuda:0", "cuda:1"]`.
    pub fn device_names(&self) -> Vec<String> {
        self.devices.iter().map(|&d| gpu::device_name(d)).collect()
    }

    /// What the loaded model predicts and accepts (cameras, confidence, sky, metric depth,
    /// known cameras, ray pose) and its backbone depth.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities.clone()
    }

    /// Caching-allocator statistics of the model's GPU; `Error::Unsupported` on the CPU or
    /// when the CUDA support library is missing.
    pub fn memory_stats(&self) -> Result<gpu::support::MemoryStats> {
        gpu::support::memory_stats(self.cuda_index()?)
    }

    /// The caching allocator's statistics of replica `index`'s device.
    pub fn replica_memory_stats(&self, index: usize) -> Result<gpu::support::MemoryStats> {
        match self.devices.get(index) {
            Some(&Device::Cuda(device)) => gpu::support::memory_stats(device),
            Some(_) => Err(Error::Unsupported(format!("memory statistics: replica {index} runs on {}, not a GPU", self.device_name()))),
            None => Err(Error::InvalidArgument(format!(
                "replica index {index} is out of range: the model has {} replica(s)",
                self.devices.len()
            ))),
        }
    }

    /// Starts a new peak for `memory_stats` from the current usage.
    pub fn reset_peak_memory(&self) -> Result<()> {
        gpu::support::reset_peak_memory(self.cuda_index()?)
    }

    /// The GPU whose memory a forward notes at `DA3_LOG=debug` (see `forward_stop`): the
    /// model's, when it runs on one GPU.
    fn memory_noted_on(&self) -> Option<usize> {
        if self.devices.len() == 1 { self.cuda_index().ok() } else { None }
    }

    fn cuda_index(&self) -> Result<usize> {
        match self.devices[0] {
            Device::Cuda(index) => Ok(index),
            _ => Err(Error::Unsupported(format!("memory statistics: the model runs on {}, not a GPU", self.device_name()))),
        }
    }

    /// Whether the accelerated runner is in use (`use_accelerate` on a GPU).
    pub fn accelerated(&self) -> bool {
        self.accelerated
    }

    /// Official preset name of the loaded model, e.g. `da3-large`.
    pub fn preset_name(&self) -> &str {
        self.preset
    }

    /// Device the model runs on (the first replica's), e.g. `cpu` or `cuda:0`.
    pub fn device_name(&self) -> String {
        gpu::device_name(self.devices[0])
    }

    /// Whether the model runs on the CPU (no GPU statistics then).
    pub fn runs_on_cpu(&self) -> bool {
        self.devices[0] == Device::Cpu
    }

    /// The precision actually used (never `Auto`).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    pub fn use_accelerate(&self) -> bool {
        self.use_accelerate
    }

    /// Threads that preprocess the views of one call.
    pub fn preprocess_threads(&self) -> usize {
        self.preprocess_threads
    }
}

impl PreparedScene {
    fn shape(&self) -> (i64, i64, i64) {
        let s = self.processed.images.size();
        (s[0], s[2], s[3])
    }
}

/// `(S, 3, H, W)` with S > 0 and H, W multiples of 14, or why not.
fn check_network_input(size: &[i64]) -> Result<()> {
    let patch = preprocess::PATCH_SIZE as i64;
    if size.len() != 4 || size[1] != 3 || size[2] % patch != 0 || size[3] % patch != 0 || size[0] == 0 {
        return Err(Error::InvalidArgument(format!(
            "network input must be (S>0, 3, H, W) with H and W multiples of 14, got {size:?}"
        )));
    }
    Ok(())
}

/// Caller-normalised views as the network input (no resize, no grid change); the checks and
/// the copy on up to `threads` threads, into host memory or, with `device` (a GPU), onto it.
fn preprocessed_input(data: &[f32], views: usize, height: u32, width: u32, threads: usize, device: Option<Device>) -> Result<Processed> {
    let expected = views.checked_mul(3 * height as usize * width as usize);
    if views == 0 || height == 0 || width == 0 || expected != Some(data.len()) {
        return Err(Error::InvalidArgument(format!("images: {} floats for {views} views of 3 x {height} x {width}", data.len())));
    }
    if height > preprocess::MAX_PROCESSED_SIDE
        || width > preprocess::MAX_PROCESSED_SIDE
        || height as u64 * width as u64 > preprocess::MAX_PROCESSED_PIXELS
    {
        return Err(Error::InvalidArgument(format!(
            "images: views of {width}x{height} pixels exceed the most a view may have ({} pixels, {} per side)",
            preprocess::MAX_PROCESSED_PIXELS,
            preprocess::MAX_PROCESSED_SIDE
        )));
    }
    // The same policy as for outputs: NaN or infinity in, no result out (it would only
    // propagate into every output).
    if let Some(i) = host_copy::first_non_finite(data, threads) {
        let plane = 3 * height as usize * width as usize;
        return Err(Error::InvalidArgument(format!(
            "images: float {i} (view {}, channel {}) is {}: the network input must be finite",
            i / plane,
            i % plane / (height as usize * width as usize),
            data[i]
        )));
    }
    let size = [views as i64, 3, height as i64, width as i64];
    check_network_input(&size)?;
    let uploaded = match device {
        Some(device) => crate::runner::upload_f32(data, &size, device, threads)
            .map_err(|e| e.during(&format!("copying the input to {}", gpu::device_name(device))))?,
        None => None,
    };
    let images = match uploaded {
        Some(images) => images,
        None => {
            let images = Tensor::f_empty(size, (Kind::Float, Device::Cpu))?;
            // SAFETY: `images` is a new contiguous CPU tensor of exactly data.len() floats, not
            // shared, and `target` is dropped before it is used again.
            let target = unsafe { std::slice::from_raw_parts_mut(images.data_ptr() as *mut f32, data.len()) };
            host_copy::copy_f32(target, data, threads);
            images
        }
    };
    Ok(Processed { images, height, width, grid_changes: vec![Vec::new(); views], colors: None })
}

/// The network (`forward`) on a prepared scene, then the prediction: with known cameras,
/// conditioned on them and aligned back to them (the official `inference()`). `device` is
/// where `forward` runs (the extrinsics are normalised there, as the official does).
fn run_prepared(
    mut prepared: PreparedScene,
    options: &CheckedOptions,
    device: Device,
    host_threads: usize,
    forward: impl FnOnce(&Tensor, Option<(&Tensor, &Tensor)>) -> Result<NetOutput>,
) -> Result<Prediction> {
    // The colours move into the prediction (no copy); caller-normalised views have none.
    let colors = prepared.processed.colors.take().unwrap_or_default();
    let processed = &prepared.processed;
    let keep = prepared.device_outputs;
    let Some(known) = &prepared.known else {
        let out = forward(&processed.images, None)?;
        cancel::check(options.cancel_token(), "after the forward")?;
        // Copied on the GPU before the host copies, which wait for the device's work to end.
        let device_maps = device_maps(&out, keep, None)?;
        let mut prediction = to_prediction(processed, colors, &out, host_threads)?;
        prediction.device_maps = device_maps;
        return Ok(prediction);
    };
    // The caller's intrinsics through the resize and crops; extrinsics normalised for the
    // camera encoder (the alignment below uses them as given).
    let intrinsics: Vec<[f32; 9]> =
        known.intrinsics.iter().zip(&processed.grid_changes).map(|(k, c)| preprocess::adjust_intrinsics(k, c)).collect();
    let normalized = tch::no_grad(|| camera_input::normalize_extrinsics(&known.extrinsics_tensor()?.f_to_device(device)?))?;
    let intrinsics_t = camera_input::intrinsics_tensor(&intrinsics)?;
    let out = forward(&processed.images, Some((&normalized, &intrinsics_t)))?;
    cancel::check(options.cancel_token(), "after the forward")?;
    let mut prediction = to_prediction(processed, colors, &out, host_threads)?;
    let to_input_scale = options.alignment().to_input_scale;
    align_prediction(&mut prediction, known, &intrinsics, to_input_scale)?;
    // The alignment rescaled the depth on the host: that depth goes to the GPU.
    prediction.device_maps = device_maps(&out, keep, to_input_scale.then_some(prediction.depth.as_slice()))?;
    Ok(prediction)
}

/// The maps `keep` asks for, in new GPU buffers (the forward's own are reused by the next
/// forward): float32 copies of the network's, or `host_depth` uploaded instead of its depth.
fn device_maps(out: &NetOutput, keep: DeviceOutputs, host_depth: Option<&[f32]>) -> Result<Option<std::sync::Arc<DeviceMaps>>> {
    if !keep.any() {
        return Ok(None);
    }
    let Device::Cuda(index) = out.depth.device() else {
        return Err(Error::Unsupported("maps in GPU memory need a model on a GPU".into()));
    };
    let copy = |t: &Tensor| -> Result<Tensor> { Ok(t.f_to_dtype(Kind::Float, false, true)?.f_contiguous()?) };
    let depth = match (keep.depth, host_depth) {
        (false, _) => None,
        (true, Some(host)) => Some(Tensor::from_slice(host).f_view(out.depth.size().as_slice())?.f_to_device(out.depth.device())?),
        (true, None) => Some(copy(&out.depth)?),
    };
    let confidence = match (keep.confidence, &out.depth_conf) {
        (true, Some(c)) => Some(copy(c)?),
        _ => None,
    };
    Ok(Some(std::sync::Arc::new(DeviceMaps::new(index, depth, confidence))))
}

/// What a forward polls between its stages: the host's cancel token, in a failpoints build
/// the injected faults and, at `DA3_LOG=debug` on a GPU (`memory_on`), a note of the memory
/// in use at each stage (allocated now and the peak so far: where a scene's memory goes);
/// `None` (no polling) when there is none of them.
fn forward_stop(cancel: Option<&CancelToken>, memory_on: Option<usize>) -> Option<impl Fn(&str) -> Result<()> + Sync + '_> {
    let memory_on = memory_on.filter(|_| crate::log::enabled(crate::log::Level::Debug));
    (cancel.is_some() || faults::ENABLED || memory_on.is_some()).then_some(move |at: &str| {
        if let Some((device, Ok(stats))) = memory_on.map(|device| (device, gpu::support::memory_stats(device))) {
            const MIB: f64 = 1048576.0;
            crate::log::debug(&format!(
                "forward memory on cuda:{device} {at}: {:.1} MiB allocated, peak {:.1} MiB",
                stats.allocated as f64 / MIB,
                stats.peak_allocated as f64 / MIB
            ));
        }
        faults::check(faults::FORWARD)?;
        cancel::check(cancel, "")
    })
}

fn request_of(options: &ForwardOptions) -> ForwardRequest<'_> {
    ForwardRequest {
        ref_view_strategy: options.ref_view_strategy,
        cameras: None,
        use_ray_pose: options.use_ray_pose,
        export_feat_layers: &options.export_feat_layers,
    }
}

/// An output as host float32. From a GPU: through page-locked memory (see
/// `gpu::with_pinned_staging`; the device copy is then at full bus speed) and from there into
/// the vector on up to `threads` threads, with no zero-filling first; elsewhere one copy
/// straight into the vector (a `to_device` then `Vec::try_from` would copy twice). Converts
/// the kind when the output is not float32.
fn host_f32(t: &Tensor, threads: usize) -> Result<Vec<f32>> {
    faults::check(faults::OUTPUTS)?;
    let n = t.numel();
    // A freed result's buffer when one fits: its pages are already mapped (`BufferPool`).
    let mut out = host_copy::OUTPUT_BUFFERS
        .take(n)
        .map_err(|_| Error::OutOfMemory(format!("{n} floats of output could not be allocated on the host")))?;
    if n == 0 {
        return Ok(out);
    }
    let flat = t.f_reshape([-1])?;
    if flat.device().is_cuda() {
        let staged = gpu::with_pinned_staging(n * std::mem::size_of::<f32>(), |ptr| -> Result<()> {
            // SAFETY: the staging buffer holds at least n floats and is ours while this runs.
            let mut staging = unsafe { Tensor::f_from_blob(ptr as *const u8, &[n as i64], &[1], Kind::Float, Device::Cpu)? };
            staging.f_copy_(&flat)?;
            // SAFETY: the copy above wrote n floats there (a synchronous device-to-host copy).
            let staged = unsafe { std::slice::from_raw_parts(ptr as *const f32, n) };
            host_copy::copy_f32_uninit(&mut out.spare_capacity_mut()[..n], staged, threads);
            // SAFETY: copy_f32_uninit initialised all n elements within the reserved capacity.
            unsafe { out.set_len(n) };
            Ok(())
        });
        if let Some(result) = staged {
            result?;
            return Ok(out);
        }
    }
    out.resize(n, 0f32);
    {
        // SAFETY: `dst` views exactly `out`'s n contiguous floats, `out` is neither moved nor
        // touched while `dst` lives, and `dst` is dropped at the end of this block.
        let mut dst = unsafe { Tensor::f_from_blob(out.as_mut_ptr() as *const u8, &[n as i64], &[1], Kind::Float, Device::Cpu)? };
        dst.f_copy_(&flat)?;
    }
    Ok(out)
}

/// A result is finite throughout or not made (`Error::NonFinite`): one fused check per output
/// on its device and one synchronisation (the copies to the host that follow synchronise anyway).
fn check_finite(out: &NetOutput) -> Result<()> {
    let outputs: Vec<(&str, &Tensor)> = [
        ("depth", Some(&out.depth)),
        ("confidence", out.depth_conf.as_ref()),
        ("sky", out.sky.as_ref()),
        ("extrinsics", out.extrinsics.as_ref()),
        ("intrinsics", out.intrinsics.as_ref()),
    ]
    .into_iter()
    .filter_map(|(name, t)| t.map(|t| (name, t)))
    .collect();
    let finite = outputs.iter().map(|(_, t)| t.f_isfinite()?.f_all()).collect::<std::result::Result<Vec<_>, _>>()?;
    if bool::try_from(Tensor::f_stack(&finite, 0)?.f_all()?)? {
        return Ok(());
    }
    let (name, t) = outputs.iter().zip(&finite).find(|(_, f)| !bool::try_from(*f).unwrap_or(false)).map(|(o, _)| *o).unwrap_or(outputs[0]);
    let bad = t.numel() as i64 - t.f_isfinite()?.f_sum(Kind::Int64)?.int64_value(&[]);
    Err(Error::NonFinite(format!(
        "{bad} of {} values of the predicted {name} are NaN or infinite (at {:?} precision)",
        t.numel(),
        t.kind()
    )))
}

/// The outputs copied to the host on up to `threads` threads (see `host_f32`).
fn to_prediction(processed: &Processed, colors: Vec<u8>, out: &NetOutput, threads: usize) -> Result<Prediction> {
    check_finite(out)?;
    let features = out
        .exported_features
        .iter()
        .map(|(layer, f)| {
            let s = f.size();
            Ok(FeatureMap { layer: *layer, shape: [s[0], s[1], s[2], s[3]].map(|d| d as usize), data: host_f32(f, threads)? })
        })
        .collect::<Result<_>>()?;
    let optional = |t: &Option<Tensor>| t.as_ref().map(|t| host_f32(t, threads)).transpose();
    Ok(Prediction {
        views: out.depth.size()[0] as usize,
        height: processed.height as usize,
        width: processed.width as usize,
        depth: host_f32(&out.depth, threads)?,
        confidence: optional(&out.depth_conf)?.unwrap_or_default(),
        extrinsics: optional(&out.extrinsics)?,
        intrinsics: optional(&out.intrinsics)?,
        sky: optional(&out.sky)?,
        is_metric: out.is_metric,
        scale_factor: out.scale_factor,
        warnings: out.warnings.clone(),
        features,
        alignment_scale: None,
        grid_changes: processed.grid_changes.clone(),
        colors,
        device_maps: None,
    })
}

/// `_align_to_input_extrinsics_intrinsics` on a prediction made with known cameras.
fn align_prediction(prediction: &mut Prediction, known: &KnownCameras, intrinsics: &[[f32; 9]], to_input_scale: bool) -> Result<()> {
    let predicted = prediction.extrinsics.as_deref().ok_or_else(|| Error::Unsupported("the model predicted no cameras to align".into()))?;
    let aligned = camera_input::align_to_input_extrinsics_intrinsics(predicted, known, intrinsics, to_input_scale)?;
    if !(aligned.scale.is_finite() && (aligned.scale as f32).is_normal() && aligned.scale > 0.0) {
        return Err(Error::NonFinite(format!(
            "the alignment to the given cameras has scale {:e}: the given and predicted camera centres cannot be matched",
            aligned.scale
        )));
    }
    if to_input_scale {
        // numpy divides the float32 depth by the scale rounded to float32.
        let scale = aligned.scale as f32;
        prediction.depth.iter_mut().for_each(|d| *d /= scale);
    }
    prediction.extrinsics = Some(aligned.extrinsics);
    prediction.intrinsics = Some(aligned.intrinsics);
    prediction.alignment_scale = Some(aligned.scale as f32);
    Ok(())
}
