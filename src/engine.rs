//! The safe, thread-safe entry point: a loaded model plus its runtime.
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};

use tch::{Device, Kind, Tensor};

use crate::camera_input::{self, CameraInput, KnownCameras};
use crate::error::{Error, Result};
use crate::hub::{self, Checkpoint};
use crate::image_input::{ImageView, RgbImage};
use crate::model::{ForwardRequest, NetOutput};
use crate::options::{InferOptions, Precision};
use crate::prediction::{FeatureMap, Prediction};
use crate::preprocess::{self, Processed};
use crate::runner::{Capabilities, Runner, SceneMemory};
use crate::runtime;
use crate::scheduler::Pool;

/// A loaded DA3 model: one replica (`Runner`) per device. `Send + Sync`: concurrent calls
/// run on whichever replica is free (calls on one replica are serialised); with one device,
/// calls are serialised on it.
pub struct Engine {
    runners: Pool<Runner>,
    /// Fixed at load (the same for every replica).
    capabilities: Capabilities,
    /// Whether the replicas run the accelerated runner (`use_accelerate` on a GPU).
    accelerated: bool,
    devices: Vec<Device>,
    placement: AtomicU8,
    scene_memory: SceneMemory,
    preset: &'static str,
    device: Device,
    precision: Precision,
    use_accelerate: bool,
}

/// How a single scene uses several replicas (`Engine::set_placement`; `DA3_PLACEMENT`
/// = `auto`, `replicate` or `shard` sets the default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Placement {
    /// Replicated, unless the scene's estimated memory (`Runner::estimate_scene_bytes`)
    /// exceeds the free memory of the first CUDA device: then sharded.
    Auto = 0,
    /// Every scene on one replica (throughput: concurrent calls use the others).
    Replicate = 1,
    /// Every scene split over all replicas: the backbone's blocks in shares over the
    /// devices (`Runner::forward_sharded`). With one replica, the same as `Replicate`.
    Shard = 2,
}

impl Placement {
    fn from_u8(v: u8) -> Placement {
        match v {
            1 => Placement::Replicate,
            2 => Placement::Shard,
            _ => Placement::Auto,
        }
    }

    fn from_env() -> Result<Placement> {
        match std::env::var("DA3_PLACEMENT").as_deref() {
            Err(_) | Ok("auto") => Ok(Placement::Auto),
            Ok("replicate") => Ok(Placement::Replicate),
            Ok("shard") => Ok(Placement::Shard),
            Ok(other) => Err(Error::InvalidArgument(format!("DA3_PLACEMENT='{other}': expected auto, replicate or shard"))),
        }
    }
}

/// One scene of a batch (`Engine::infer_scenes`): its views, and their cameras if known.
pub struct SceneInput<'a> {
    pub images: Vec<ImageView<'a>>,
    pub cameras: Option<CameraInput<'a>>,
}

impl Engine {
    /// Loads `model` (a checkpoint directory or a Hugging Face repo id found in the local
    /// cache) onto the best device. `use_accelerate` is recorded for the accelerated
    /// runner; `precision` picks the arithmetic (`Auto`: bf16 on a GPU, fp32 on the CPU).
    pub fn load(model: &str, use_accelerate: bool, precision: Precision) -> Result<Engine> {
        Self::load_checkpoint(&hub::resolve(model)?, use_accelerate, precision)
    }

    /// Loads the weights of `checkpoint.dir` for the architecture `checkpoint.config` (what
    /// `load` does once the checkpoint is found; also loads a checkpoint of an architecture
    /// that is no official preset, e.g. a reduced model for tests).
    /// Devices: see `runtime::select_devices` (one replica per device: every visible GPU with
    /// `use_accelerate`, one device otherwise; `DA3_DEVICES` lists them).
    pub fn load_checkpoint(checkpoint: &Checkpoint, use_accelerate: bool, precision: Precision) -> Result<Engine> {
        let devices = runtime::select_devices(use_accelerate)?;
        Self::load_checkpoint_on_devices(checkpoint, &devices, use_accelerate, precision)
    }

    /// `load` with one replica on each of `devices` (all CUDA or all CPU; the same device
    /// may repeat, e.g. two CPU replicas).
    pub fn load_on_devices(model: &str, devices: &[Device], use_accelerate: bool, precision: Precision) -> Result<Engine> {
        Self::load_checkpoint_on_devices(&hub::resolve(model)?, devices, use_accelerate, precision)
    }

    /// `load_checkpoint` with one replica on each of `devices`.
    pub fn load_checkpoint_on_devices(
        checkpoint: &Checkpoint,
        devices: &[Device],
        use_accelerate: bool,
        precision: Precision,
    ) -> Result<Engine> {
        let device = *devices.first().ok_or_else(|| Error::InvalidArgument("devices: the list is empty".into()))?;
        if devices.iter().any(|d| d.is_cuda() != device.is_cuda()) {
            return Err(Error::InvalidArgument("devices: CPU and CUDA devices mixed; replicas share one precision".into()));
        }
        let precision = runtime::resolve_precision(precision, device);
        let kind = runtime::compute_kind(precision);
        // One replica per device, two at a time: each load holds a host copy of the checkpoint
        // while it runs (da3-giant: 4.5 GB in fp32), so all at once could exhaust host memory.
        let mut runners = Vec::with_capacity(devices.len());
        for pair in devices.chunks(2) {
            let loaded = std::thread::scope(|scope| {
                let loads: Vec<_> = pair.iter().map(|&d| scope.spawn(move || Runner::load_with(checkpoint, d, kind, use_accelerate))).collect();
                loads
                    .into_iter()
                    .map(|l| l.join().unwrap_or_else(|_| Err(Error::Torch("loading a replica panicked".into()))))
                    .collect::<Result<Vec<_>>>()
            })?;
            runners.extend(loaded);
        }
        let scene_memory = runners[0].scene_memory();
        let capabilities = runners[0].capabilities();
        let accelerated = runners[0].accelerated();
        Ok(Engine {
            runners: Pool::new(runners),
            capabilities,
            accelerated,
            devices: devices.to_vec(),
            placement: AtomicU8::new(Placement::from_env()? as u8),
            scene_memory,
            preset: checkpoint.config.preset,
            device,
            precision,
            use_accelerate,
        })
    }

    /// Runs one scene made of `images` (one per view).
    pub fn infer(&self, images: &[ImageView<'_>], options: &InferOptions) -> Result<Prediction> {
        self.infer_with_cameras(images, None, options)
    }

    /// Runs one scene made of `images`, with the cameras of every view when they are known
    /// (pose-conditioned inference): the network is conditioned on them, and the prediction
    /// is aligned back to them (`Prediction::alignment_scale`).
    pub fn infer_with_cameras(
        &self,
        images: &[ImageView<'_>],
        cameras: Option<&CameraInput<'_>>,
        options: &InferOptions,
    ) -> Result<Prediction> {
        options.validate()?;
        let known = cameras.map(|c| c.validate(images.len())).transpose()?;
        // RGB8 buffers are read in place, without a packed copy.
        let processed = preprocess::process_image_views(images, options)?;
        run_scene(&processed, known, options, self.device, |images, cameras| {
            self.forward_with_cameras(images, cameras, options, false)
        })
    }

    /// Runs one scene made of the image files at `paths` (PNG or JPEG).
    pub fn infer_files<P: AsRef<Path>>(&self, paths: &[P], options: &InferOptions) -> Result<Prediction> {
        self.infer_files_with_cameras(paths, None, options)
    }

    /// `infer_files` with known cameras (see `infer_with_cameras`).
    pub fn infer_files_with_cameras<P: AsRef<Path>>(
        &self,
        paths: &[P],
        cameras: Option<&CameraInput<'_>>,
        options: &InferOptions,
    ) -> Result<Prediction> {
        let rgb: Vec<RgbImage> = paths.iter().map(|p| preprocess::load_image(p.as_ref())).collect::<Result<_>>()?;
        self.infer_rgb_with_cameras(&rgb, cameras, options)
    }

    /// Runs one scene of packed RGB8 images.
    pub fn infer_rgb(&self, images: &[RgbImage], options: &InferOptions) -> Result<Prediction> {
        self.infer_rgb_with_cameras(images, None, options)
    }

    /// `infer_rgb` with known cameras (see `infer_with_cameras`): the official `inference()`.
    pub fn infer_rgb_with_cameras(
        &self,
        images: &[RgbImage],
        cameras: Option<&CameraInput<'_>>,
        options: &InferOptions,
    ) -> Result<Prediction> {
        options.validate()?;
        let known = cameras.map(|c| c.validate(images.len())).transpose()?;
        let processed = preprocess::process_views(images, options)?;
        run_scene(&processed, known, options, self.device, |images, cameras| {
            self.forward_with_cameras(images, cameras, options, false)
        })
    }

    /// The network on an already preprocessed (S, 3, H, W) batch; `keep_trace` keeps the
    /// intermediate tensors (features, camera tokens, head and sky logits, the nested
    /// model's alignment statistics).
    pub fn forward(&self, images: &Tensor, options: &InferOptions, keep_trace: bool) -> Result<NetOutput> {
        self.forward_with_cameras(images, None, options, keep_trace)
    }

    /// `forward` conditioned on known cameras as the network takes them: normalised
    /// world-to-camera extrinsics (S, 4, 4) and intrinsics (S, 3, 3) in network-input pixels.
    /// Also honours `use_ray_pose` and `export_feat_layers`.
    pub fn forward_with_cameras(
        &self,
        images: &Tensor,
        cameras: Option<(&Tensor, &Tensor)>,
        options: &InferOptions,
        keep_trace: bool,
    ) -> Result<NetOutput> {
        options.validate()?;
        let size = images.size();
        let patch = preprocess::PATCH_SIZE as i64;
        if size.len() != 4 || size[1] != 3 || size[2] % patch != 0 || size[3] % patch != 0 || size[0] == 0 {
            return Err(Error::InvalidArgument(format!(
                "network input must be (S>0, 3, H, W) with H and W multiples of 14, got {size:?}"
            )));
        }
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
        if self.shards(size[0], size[2], size[3]) {
            let lease = self.runners.lease_all();
            let runners = lease.workers();
            return Runner::forward_sharded(&runners, images, cameras, &request_of(options), keep_trace);
        }
        let mut runner = self.runners.lease();
        runner.forward(images, cameras, &request_of(options), keep_trace)
    }

    /// Whether a scene of `views` images of `height` x `width` network-input pixels is split
    /// over the replicas (see `Placement`).
    fn shards(&self, views: i64, height: i64, width: i64) -> bool {
        if self.runners.len() < 2 {
            return false;
        }
        match self.placement() {
            Placement::Replicate => false,
            Placement::Shard => true,
            Placement::Auto => {
                let Device::Cuda(index) = self.device else { return false };
                let Some((free, _)) = runtime::cuda_memory_info(index) else { return false };
                self.scene_memory.bytes(views, height, width) > free
            }
        }
    }

    /// Runs independent scenes, each its own forward (no attention across scenes), spread over
    /// the replicas; returns one result per scene, in input order. A scene's failure (bad
    /// input, out of memory, ...) is that scene's result only. Scenes are decoded and resized
    /// outside the replicas, overlapping the forwards. Each scene runs on one replica, except
    /// under `Placement::Shard` (forced), where they run one after the other, each split over
    /// all replicas.
    pub fn infer_scenes(&self, scenes: &[SceneInput<'_>], options: &InferOptions) -> Vec<Result<Prediction>> {
        if let Err(e) = options.validate() {
            let message = match &e {
                Error::InvalidArgument(m) => m.clone(),
                other => other.to_string(),
            };
            return scenes.iter().map(|_| Err(Error::InvalidArgument(message.clone()))).collect();
        }
        if self.runners.len() > 1 && self.placement() == Placement::Shard {
            return scenes.iter().map(|s| self.infer_with_cameras(&s.images, s.cameras.as_ref(), options)).collect();
        }
        self.runners.run_batch(
            scenes.iter().collect(),
            |scene| {
                let known = scene.cameras.as_ref().map(|c| c.validate(scene.images.len())).transpose()?;
                Ok((preprocess::process_image_views(&scene.images, options)?, known))
            },
            |runner, (processed, known)| {
                self.capabilities.check(known.is_some(), options)?;
                let device = runner.device();
                run_scene(&processed, known, options, device, |images, cameras| {
                    runner.forward(images, cameras, &request_of(options), false)
                })
            },
            |panic| Error::Torch(format!("a scene panicked: {panic}")),
        )
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
        self.devices.iter().map(|&d| runtime::device_name(d)).collect()
    }

    /// What the loaded model predicts and accepts (cameras, confidence, sky, metric depth,
    /// known cameras, ray pose) and its backbone depth.
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities.clone()
    }

    /// The network on caller-preprocessed views: `images` holds `views` x 3 x `height` x
    /// `width` floats (RGB planes normalised as the official `InputProcessor` does, height and
    /// width multiples of 14). No resize: depth and intrinsics are in these pixels.
    pub fn infer_preprocessed(&self, images: &[f32], views: usize, height: u32, width: u32, options: &InferOptions) -> Result<Prediction> {
        let expected = views.checked_mul(3 * height as usize * width as usize);
        if views == 0 || height == 0 || width == 0 || expected != Some(images.len()) {
            return Err(Error::InvalidArgument(format!(
                "images: {} floats for {views} views of 3 x {height} x {width}",
                images.len()
            )));
        }
        let batch = Tensor::from_slice(images).reshape([views as i64, 3, height as i64, width as i64]);
        let out = self.forward(&batch, options, false)?;
        to_prediction_sized(height, width, &out)
    }

    /// Caching-allocator statistics of the model's GPU; `Error::Unsupported` on the CPU or
    /// when the CUDA support library is missing.
    pub fn memory_stats(&self) -> Result<crate::cuda_support::MemoryStats> {
        crate::cuda_support::memory_stats(self.cuda_index()?)
    }

    /// Starts a new peak for `memory_stats` from the current usage.
    pub fn reset_peak_memory(&self) -> Result<()> {
        crate::cuda_support::reset_peak_memory(self.cuda_index()?)
    }

    fn cuda_index(&self) -> Result<usize> {
        match self.device {
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
        runtime::device_name(self.device)
    }

    /// The precision actually used (never `Auto`).
    pub fn precision(&self) -> Precision {
        self.precision
    }

    pub fn use_accelerate(&self) -> bool {
        self.use_accelerate
    }
}

/// The network (`forward`) on a preprocessed scene, then the prediction: with known
/// cameras, conditioned on them and aligned back to them (the official `inference()`).
/// `device` is where `forward` runs.
fn run_scene(
    processed: &Processed,
    known: Option<KnownCameras>,
    options: &InferOptions,
    device: Device,
    forward: impl FnOnce(&Tensor, Option<(&Tensor, &Tensor)>) -> Result<NetOutput>,
) -> Result<Prediction> {
    let Some(known) = known else {
        let out = forward(&processed.images, None)?;
        return to_prediction(processed, &out);
    };
    // The caller's intrinsics through the resize and crops; extrinsics normalised for the
    // camera encoder (the alignment below uses them as given).
    let intrinsics: Vec<[f32; 9]> =
        known.intrinsics.iter().zip(&processed.grid_changes).map(|(k, c)| preprocess::adjust_intrinsics(k, c)).collect();
    let normalized = tch::no_grad(|| camera_input::normalize_extrinsics(&known.extrinsics_tensor().to_device(device)))?;
    let intrinsics_t = camera_input::intrinsics_tensor(&intrinsics);
    let out = forward(&processed.images, Some((&normalized, &intrinsics_t)))?;
    let mut prediction = to_prediction(processed, &out)?;
    align_prediction(&mut prediction, &known, &intrinsics, options.align_to_input_ext_scale)?;
    Ok(prediction)
}

fn request_of(options: &InferOptions) -> ForwardRequest<'_> {
    ForwardRequest {
        ref_view_strategy: options.ref_view_strategy,
        cameras: None,
        use_ray_pose: options.use_ray_pose,
        export_feat_layers: &options.export_feat_layers,
    }
}

/// An output as host float32, in one copy from its device straight into the vector (a
/// `to_device` then `Vec::try_from` would copy twice).
fn host_f32(t: &Tensor) -> Result<Vec<f32>> {
    let n = t.numel();
    let mut out = vec![0f32; n];
    if n == 0 {
        return Ok(out);
    }
    {
        // SAFETY: `dst` views exactly `out`'s n contiguous floats, `out` is neither moved nor
        // touched while `dst` lives, and `dst` is dropped at the end of this block.
        let mut dst = unsafe { Tensor::f_from_blob(out.as_mut_ptr() as *const u8, &[n as i64], &[1], Kind::Float, Device::Cpu)? };
        let flat = t.reshape([-1]);
        // Through page-locked memory when the output is on a GPU (see
        // `runtime::with_pinned_staging`); a synchronous copy that converts the kind when the
        // output is not float32.
        let staged = flat.device().is_cuda().then(|| {
            runtime::with_pinned_staging(n * std::mem::size_of::<f32>(), |ptr| -> Result<()> {
                // SAFETY: the staging buffer holds at least n floats and is ours while this runs.
                let mut staging =
                    unsafe { Tensor::f_from_blob(ptr as *const u8, &[n as i64], &[1], Kind::Float, Device::Cpu)? };
                staging.f_copy_(&flat)?;
                dst.f_copy_(&staging)?;
                Ok(())
            })
        });
        match staged.flatten() {
            Some(result) => result?,
            None => {
                dst.f_copy_(&flat)?;
            }
        }
    }
    Ok(out)
}

fn to_prediction(processed: &Processed, out: &NetOutput) -> Result<Prediction> {
    to_prediction_sized(processed.height, processed.width, out)
}

fn to_prediction_sized(height: u32, width: u32, out: &NetOutput) -> Result<Prediction> {
    let features = out
        .exported_features
        .iter()
        .map(|(layer, f)| {
            let s = f.size();
            Ok(FeatureMap { layer: *layer, shape: [s[0], s[1], s[2], s[3]].map(|d| d as usize), data: host_f32(f)? })
        })
        .collect::<Result<_>>()?;
    let optional = |t: &Option<Tensor>| t.as_ref().map(host_f32).transpose();
    Ok(Prediction {
        views: out.depth.size()[0] as usize,
        height: height as usize,
        width: width as usize,
        depth: host_f32(&out.depth)?,
        confidence: optional(&out.depth_conf)?.unwrap_or_default(),
        extrinsics: optional(&out.extrinsics)?,
        intrinsics: optional(&out.intrinsics)?,
        sky: optional(&out.sky)?,
        is_metric: out.is_metric,
        scale_factor: out.scale_factor,
        warnings: out.warnings.clone(),
        features,
        alignment_scale: None,
    })
}

/// `_align_to_input_extrinsics_intrinsics` on a prediction made with known cameras.
fn align_prediction(prediction: &mut Prediction, known: &KnownCameras, intrinsics: &[[f32; 9]], to_input_scale: bool) -> Result<()> {
    let predicted = prediction.extrinsics.as_deref().ok_or_else(|| Error::Unsupported("the model predicted no cameras to align".into()))?;
    let aligned = camera_input::align_to_input_extrinsics_intrinsics(predicted, known, intrinsics, to_input_scale)?;
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

