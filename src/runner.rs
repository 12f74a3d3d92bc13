//! One loaded network on one device: the unit the engine schedules (a GPU replica).
//!
//! The engine checks requests and converts results; the runner owns the weights and
//! everything tied to its device.
//!
//! Accelerated (`use_accelerate`): the reference view is chosen on the device (no read-back;
//! same view); in bf16/fp16 the DualDPT depth head computes in that precision, 4 views per
//! pass. On a CUDA device, in addition: cuDNN's fused attention, and a forward that never
//! reads back to the host (any-view models without ray pose, known cameras, exported
//! features or trace) is captured once per input shape and request in a CUDA graph, then
//! replayed: one launch instead of thousands. Everything else runs eagerly. Accuracy:
//! `accuracy::ACCELERATED_BF16_BOUND` (README, "Accuracy of the accelerated runner").
use tch::{Device, Kind, Tensor};

use crate::error::{guard, Error, Result};
use crate::gpu::support::{CudaGlueKernels, CudaGraph, CudnnAttention};
use crate::hub::Checkpoint;
use crate::weights::TensorProgress;
use crate::model::da3::Head;
use crate::model::{load_network, AttentionKernel, Execution, ForwardRequest, GlueKernels, NetOutput, Network, HeadKernels};
use crate::options::{ForwardOptions, RefViewStrategy};
use crate::settings::{AttentionChoice, GlueChoice, Settings};
use crate::sharding::ShardedBlocks;

/// Graphs captured per runner: the first shapes seen keep theirs for the runner's life, later
/// shapes run eagerly. Each holds its activations' memory pool, so this bounds the memory too.
pub const GRAPH_CACHE_CAPACITY: usize = 4;

/// Views per DualDPT head pass on the accelerated path (the official: 8).
pub const ACCELERATED_HEAD_CHUNK_VIEWS: i64 = 4;

/// Whether the host asked a forward to stop, told where the forward is (see `Execution::stop`).
pub type StopCheck<'a> = crate::model::StopPoll<'a>;

pub struct Runner {
    net: Network,
    preset: &'static str,
    device: Device,
    accelerate: bool,
    /// How this runner's forwards run (see `Profile::execution`).
    profile: Profile,
    graphs: GraphCache,
    /// Threads for the copy of a large input into page-locked memory (`to_device_f32`).
    host_threads: usize,
}

/// The runner's choice of execution profile, fixed at load.
struct Profile {
    /// Reference view chosen on the device (no read-back; same view).
    reference_on_device: bool,
    /// Kind of the features handed to a reduced-precision depth head.
    features_kind: Option<Kind>,
    /// cuDNN's fused attention, when used.
    attention: Option<CudnnAttention>,
    /// RoPE from tables gathered once per forward, LayerScale + residual in one pass.
    fused_glue: bool,
    /// That glue in run-time compiled kernels, when used; they also resample the
    /// reduced-precision head's maps.
    glue: Option<CudaGlueKernels>,
}

impl Profile {
    /// The execution of one forward: every block here.
    fn execution<'a>(&'a self, stop: Option<&'a StopCheck<'a>>) -> Execution<'a> {
        Execution {
            attention: self.attention.as_ref().map(|a| a as &dyn AttentionKernel),
            reference_on_device: self.reference_on_device,
            features_kind: self.features_kind,
            fused_glue: self.fused_glue,
            glue: self.glue.as_ref().map(|g| g as &dyn GlueKernels),
            head_kernels: self.glue.as_ref().map(|g| g as &dyn HeadKernels),
            blocks: None,
            stop,
        }
    }
}

impl Runner {
    /// Loads the weights of `checkpoint` onto `device`, matrix weights in `kind`, with the
    /// accelerated path when `accelerate` (see the module doc; `settings` holds its
    /// measurement switches).
    /// `progress` hears of every tensor read and placed (and may stop the load).
    /// `host_threads`: threads for large host copies of inputs (the engine's preprocessing
    /// threads).
    pub fn load(
        checkpoint: &Checkpoint,
        device: Device,
        kind: Kind,
        accelerate: bool,
        settings: &Settings,
        host_threads: usize,
        progress: Option<TensorProgress>,
    ) -> Result<Runner> {
        let on = crate::gpu::device_name(device);
        // On a GPU the camera encoder waits in host memory for the first call with known
        // cameras (da3-large: 194 MiB of device memory that unposed calls never touch).
        let camera_encoder_on_first_use = device.is_cuda();
        let mut net = guard(&format!("loading onto {on}"), || {
            tch::no_grad(|| {
                load_network(&checkpoint.config, &checkpoint.weights_path(), device, kind, camera_encoder_on_first_use, progress)
            })
        })?;
        // The reference view chosen on the device applies everywhere (same view, no wait);
        // CUDA graphs only on a GPU.
        // Reduced precision: RoPE in three passes from per-forward tables, LayerScale +
        // residual in one (fp32 arithmetic); DA3_ACCEL_GLUE=official: the official's passes.
        // On a GPU that glue, and the head's bilinear upsampling, run in the run-time compiled
        // kernels (DA3_ACCEL_GLUE=libtorch: in libtorch operations).
        let fused_glue = accelerate && kind != Kind::Float && settings.accelerated_glue != GlueChoice::Official;
        // With them, fc1 and its GELU run as one matrix product (DA3_ACCEL_GELU=exact: the
        // exact GELU in a pass of its own).
        let glue = (fused_glue && device.is_cuda() && settings.accelerated_glue == GlueChoice::Kernels)
            .then(|| CudaGlueKernels::new(!settings.accelerated_gelu_exact));
        let mut profile = Profile { reference_on_device: accelerate, features_kind: None, attention: None, fused_glue, glue };
        if accelerate && kind != Kind::Float && !settings.accelerated_head_fp32 {
            // The depth head's convolutions in the compute kind (the official runs them in
            // fp32), 4 views per head pass instead of 8 (half the head's peak memory);
            // DA3_ACCEL_HEAD=fp32 keeps the official head. Within the documented bound.
            // Channels-last convolutions (DA3_ACCEL_NHWC=0: NCHW) and the backbone's features
            // kept in the compute kind (DA3_ACCEL_FEATURES=fp32: fp32) go with it.
            let nhwc = settings.accelerated_head_nhwc;
            if tch::no_grad(|| net.convert_dualdpt_head(kind, ACCELERATED_HEAD_CHUNK_VIEWS, nhwc))? && !settings.accelerated_features_fp32 {
                profile.features_kind = Some(kind);
            }
        }
        let accelerate = accelerate && device.is_cuda();
        if accelerate {
            crate::gpu::backend::use_one_intra_op_thread_for_gpu_work();
            crate::log::info(&format!(
                "use_accelerate on {on}: libtorch's intra-op CPU threads set to 1 for the whole process \
                 (an explicit thread count at load wins)"
            ));
        }
        if accelerate && kind != Kind::Float && settings.attention == AttentionChoice::Cudnn {
            // cuDNN's fused attention called directly (DA3_ATTENTION=sdpa: libtorch's SDPA
            // picks the kernel, as without acceleration).
            profile.attention = Some(CudnnAttention::new());
        }
        Ok(Runner {
            net,
            preset: checkpoint.config.preset,
            device,
            accelerate,
            profile,
            graphs: GraphCache::default(),
            host_threads: host_threads.max(1),
        })
    }

    /// Whether this runner uses CUDA graphs (`use_accelerate` on a GPU).
    pub fn accelerated(&self) -> bool {
        self.accelerate
    }

    /// Number of CUDA graphs captured and kept now.
    pub fn cached_graphs(&self) -> usize {
        self.graphs.entries.len()
    }

    pub fn device(&self) -> Device {
        self.device
    }

    /// What the loaded network can compute beyond depth.
    pub fn capabilities(&self) -> Capabilities {
        let any_view = self.net.any_view();
        let nested = matches!(self.net, Network::Nested(_));
        Capabilities {
            preset: self.preset,
            camera_encoder: any_view.has_camera_encoder(),
            ray_head: any_view.ray_head().is_some(),
            backbone_depth: any_view.backbone_depth(),
            pose: any_view.cam_dec.is_some(),
            // DualDPT predicts confidence; a DPT head (metric, mono) predicts sky instead. The
            // nested model has both: the any-view branch's confidence, the metric branch's sky.
            confidence: any_view.ray_head().is_some(),
            sky: nested || matches!(any_view.head, Head::Dpt(_)),
            metric_depth: nested,
            canonical_metric_depth: self.preset == "da3metric-large",
        }
    }

    /// The network on a checked (S, 3, H, W) batch, on any device; `cameras` are the
    /// normalised extrinsics and the intrinsics (see `Engine::forward_with_cameras`) and
    /// replace `request.cameras`. `stop` is polled between stages and blocks (see
    /// `Execution::stop`): `Error::Cancelled` when it says so.
    pub fn forward(
        &mut self,
        images: &Tensor,
        cameras: Option<(&Tensor, &Tensor)>,
        request: &ForwardRequest<'_>,
        keep_trace: bool,
        stop: Option<&StopCheck<'_>>,
    ) -> Result<NetOutput> {
        let device = self.device;
        let (images, cameras) = to_device_f32(device, images, cameras, self.host_threads)?;
        let request = ForwardRequest { cameras: cameras.as_ref().map(|(e, k)| (e, k)), ..*request };
        if self.accelerate && !keep_trace && self.graphable(&request) {
            let key = GraphKey { shape: images.size(), strategy: request.ref_view_strategy };
            if self.graphs.serves(&key) {
                let exec = self.profile.execution(stop);
                let net = &self.net;
                let graphs = &mut self.graphs;
                let operation = format!("the forward on {}", crate::gpu::device_name(device));
                return guard(&operation, || tch::no_grad(|| graphs.run(net, exec, device, key, &images, &request)));
            }
        }
        let exec = self.profile.execution(stop);
        let net = &self.net;
        let operation = format!("the forward on {}", crate::gpu::device_name(device));
        guard(&operation, || tch::no_grad(|| net.forward(&images, &request, exec, keep_trace)))
    }

    /// One scene split over several runners (replicas of one checkpoint on different
    /// devices): the backbone's blocks in consecutive, equal shares over `runners` (the
    /// activations move at the share boundaries), everything else (patch embedding, heads,
    /// camera decoder) on `runners[0]`, whose device the outputs are on. Each device holds
    /// only its share of the activations, so a scene too large for one device can fit.
    pub fn forward_sharded(
        runners: &[&Runner],
        images: &Tensor,
        cameras: Option<(&Tensor, &Tensor)>,
        request: &ForwardRequest<'_>,
        keep_trace: bool,
        stop: Option<&StopCheck<'_>>,
    ) -> Result<NetOutput> {
        let first = runners.first().ok_or_else(|| Error::InvalidArgument("a sharded forward needs runners".into()))?;
        if runners.iter().any(|r| r.preset != first.preset) {
            return Err(Error::InvalidArgument("a sharded forward needs replicas of one checkpoint".into()));
        }
        let device = first.device;
        let (images, cameras) = to_device_f32(device, images, cameras, first.host_threads)?;
        let request = ForwardRequest { cameras: cameras.as_ref().map(|(e, k)| (e, k)), ..*request };
        let blocks = ShardedBlocks::new(runners.iter().map(|r| &r.net.any_view().backbone.pretrained).collect())?;
        let exec = Execution { blocks: Some(&blocks), ..first.profile.execution(stop) };
        let net = &first.net;
        let operation = format!("the sharded forward over {} devices", runners.len());
        guard(&operation, || tch::no_grad(|| net.forward(&images, &request, exec, keep_trace)))
    }

    /// What the memory estimate of a scene depends on (see `SceneMemory::bytes`).
    pub fn scene_memory(&self) -> SceneMemory {
        let cfg = &self.net.any_view().backbone.pretrained.cfg;
        SceneMemory {
            embed_dim: cfg.embed_dim,
            taken_layers: cfg.out_layers.len() as i64,
            cat_token: cfg.cat_token,
            nested: matches!(self.net, Network::Nested(_)),
        }
    }
}

/// The network input and the cameras as float32 on `device` (one copy each when elsewhere).
/// A large fp32 input from host memory to a GPU goes through page-locked memory (copied there
/// on `threads` threads): a copy from pageable memory runs at a fraction of the bus speed
/// (about 20 ms for 64 views of 336x504 on an H200 host, bench/results).
fn to_device_f32(
    device: Device,
    images: &Tensor,
    cameras: Option<(&Tensor, &Tensor)>,
    threads: usize,
) -> Result<(Tensor, Option<(Tensor, Tensor)>)> {
    let during = |e: tch::TchError| Error::from(e).during(&format!("copying the input to {}", crate::gpu::device_name(device)));
    let move_to = |t: &Tensor| -> Result<Tensor> { t.f_to_device(device)?.f_to_kind(Kind::Float).map_err(during) };
    let cameras = match cameras {
        Some((e, k)) => Some((move_to(e)?, move_to(k)?)),
        None => None,
    };
    let staged = staged_to_device(images, device, threads).map_err(|e| e.during(&format!("copying the input to {}", crate::gpu::device_name(device))))?;
    let images = match staged {
        Some(images) => images,
        None => move_to(images)?,
    };
    Ok((images, cameras))
}

/// Inputs from this many bytes on go through page-locked memory.
const STAGED_INPUT_BYTES: usize = 1 << 20;

/// `images` (contiguous fp32 in host memory) on the GPU `device` through the page-locked staging
/// buffer; `None` when it is not such a copy or no staging buffer can be had.
fn staged_to_device(images: &Tensor, device: Device, threads: usize) -> Result<Option<Tensor>> {
    let fits = device.is_cuda() && images.device() == Device::Cpu && images.kind() == Kind::Float && images.is_contiguous();
    if !fits {
        return Ok(None);
    }
    // SAFETY: `images` is a contiguous CPU tensor of numel() floats, alive and unchanged for
    // the call.
    let data = unsafe { std::slice::from_raw_parts(images.data_ptr() as *const f32, images.numel()) };
    upload_f32(data, &images.size(), device, threads)
}

/// `data` (fp32 in host memory, `size` in contiguous order) as a new tensor on the GPU `device`,
/// copied on `threads` threads into the page-locked staging buffer and from there at full bus
/// speed; `None` below `STAGED_INPUT_BYTES` or when no staging buffer can be had.
pub fn upload_f32(data: &[f32], size: &[i64], device: Device, threads: usize) -> Result<Option<Tensor>> {
    let n = data.len();
    let bytes = std::mem::size_of_val(data);
    if !device.is_cuda() || bytes < STAGED_INPUT_BYTES || size.iter().product::<i64>() != n as i64 {
        return Ok(None);
    }
    crate::gpu::with_pinned_staging(bytes, |ptr| -> Result<Tensor> {
        // SAFETY: the staging buffer holds at least n floats and is ours while this runs.
        let to = unsafe { std::slice::from_raw_parts_mut(ptr as *mut f32, n) };
        crate::host_copy::copy_f32(to, data, threads);
        let strides = contiguous_strides(size);
        // SAFETY: the staging buffer holds the n floats just written, in this shape and order.
        let pinned = unsafe { Tensor::f_from_blob(ptr as *const u8, size, &strides, Kind::Float, Device::Cpu)? };
        // A synchronous copy: the staging buffer is free again when it returns.
        Ok(pinned.f_to_device(device)?)
    })
    .transpose()
}

fn contiguous_strides(size: &[i64]) -> Vec<i64> {
    let mut strides = vec![1; size.len()];
    for i in (0..size.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * size[i + 1];
    }
    strides
}

/// The sizes a scene's memory estimate depends on.
#[derive(Clone, Copy, Debug)]
pub struct SceneMemory {
    embed_dim: i64,
    taken_layers: i64,
    cat_token: bool,
    nested: bool,
}

impl SceneMemory {
    /// A rough upper estimate of the device memory one scene of `views` images of
    /// `height` x `width` network-input pixels needs on top of the weights: the backbone's
    /// tokens (the taken layers, the residual streams, the attention and MLP temporaries, in
    /// fp32) and one chunk of the head. Used to decide when a scene is split over several
    /// devices; a heuristic, so callers can force either way.
    pub fn bytes(&self, views: i64, height: i64, width: i64) -> u64 {
        let patch = crate::config::BackboneConfig::PATCH_SIZE;
        let tokens = (height / patch) * (width / patch) + 1;
        let width_factor = if self.cat_token { 2 } else { 1 };
        // Per token, in fp32 channels: the taken layers at the concatenated width, plus about
        // 12 channels of dim for two residual streams and a block's working set. (Measured on
        // da3-large with use_accelerate, bf16: 28 MiB per 336x504 view, against the 68 MiB
        // this gives; fp32 holds the taken layers at twice the bytes.)
        let channels = (self.taken_layers * width_factor + 12) * self.embed_dim;
        let backbone = views * tokens * channels * 4;
        // One head chunk of 8 views: a few 256-channel maps at half to full resolution.
        let head = views.min(8) * height * width * 256 * 4 * 4;
        let branches = if self.nested { 2 } else { 1 };
        (branches * (backbone + head)).max(0) as u64
    }
}

impl Runner {
    /// Whether `request` can be served by a replayed CUDA graph: nothing in its forward may
    /// wait for the device (ray pose and the nested/DPT post-processing do).
    fn graphable(&self, request: &ForwardRequest<'_>) -> bool {
        self.net.forward_stays_on_device()
            && request.cameras.is_none()
            && !request.use_ray_pose
            && request.export_feat_layers.is_empty()
    }
}

/// What a captured graph was captured for: the (S, 3, H, W) input shape and the strategy.
#[derive(Clone, Debug, PartialEq, Eq)]
struct GraphKey {
    shape: Vec<i64>,
    strategy: RefViewStrategy,
}

/// A captured forward: its static input (copied into before each replay) and outputs
/// (rewritten by each replay).
struct GraphEntry {
    key: GraphKey,
    graph: CudaGraph,
    input: Tensor,
    output: NetOutput,
}

#[derive(Default)]
struct GraphCache {
    entries: Vec<GraphEntry>,
    /// Keys whose capture failed: they run eagerly from then on.
    failed: Vec<GraphKey>,
}

impl GraphCache {
    /// Whether `run` should take `key`: a captured shape, or a new one while there is room
    /// and its capture has not failed. A full cache captures nothing more (the first shapes
    /// keep their graphs, later ones run eagerly): evicting the least recently used instead
    /// let the GPU's reserved memory grow with every recapture until cuDNN failed for lack of
    /// memory (32 threads, 12 shapes on 2 x H200: reserved 66 -> 140 GB, most calls failing;
    /// bench/results/2026-11-30-soak-gpu.md).
    fn serves(&self, key: &GraphKey) -> bool {
        self.entries.iter().any(|e| &e.key == key)
            || (self.entries.len() < GRAPH_CACHE_CAPACITY && !self.failed.contains(key))
    }

    /// Replays the graph of `key`, or (first time) runs eagerly, which also warms up every
    /// lazily built table and library handle, and captures the graph for the next calls.
    fn run(
        &mut self,
        net: &Network,
        exec: Execution<'_>,
        device: Device,
        key: GraphKey,
        images: &Tensor,
        request: &ForwardRequest<'_>,
    ) -> Result<NetOutput> {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.key == key) {
            // A replay is one launch: the host can only stop before or after it.
            exec.check_stop(|| "before the CUDA graph replay".into())?;
            entry.input.f_copy_(images)?;
            entry.graph.replay()?;
            exec.check_stop(|| "after the CUDA graph replay".into())?;
            // Copies on the device: the next replay (another thread, once the runner's lock
            // is released) would overwrite the static outputs while the caller reads them.
            return copy_output(&entry.output);
        }
        let input = crate::nn::copy(images)?;
        let eager = net.forward(&input, request, exec, false)?;
        let index = match device {
            Device::Cuda(index) => index,
            _ => return Ok(eager),
        };
        // Without the support library (or on any capture failure) the eager result stands
        // and this shape stays eager.
        // Checked once more before capturing; never during the capture (a stop there would
        // leave this shape eager for good).
        exec.check_stop(|| "after the forward".into())?;
        let capture_exec = Execution { stop: None, ..exec };
        let captured = CudaGraph::new().and_then(|mut graph| {
            let output = graph.capture(index, || net.forward(&input, request, capture_exec, false))?;
            Ok((graph, output))
        });
        match captured {
            Ok((graph, output)) => {
                crate::log::info(&format!("captured a CUDA graph for {key:?}"));
                self.entries.push(GraphEntry { key, graph, input, output });
            }
            Err(error) => {
                crate::log::info(&format!("CUDA graph capture for {key:?} failed, running eagerly: {error}"));
                self.failed.push(key)
            }
        }
        Ok(eager)
    }
}

fn copy_output(out: &NetOutput) -> Result<NetOutput> {
    let copy = |t: &Option<Tensor>| t.as_ref().map(crate::nn::copy).transpose();
    Ok(NetOutput {
        depth: crate::nn::copy(&out.depth)?,
        depth_conf: copy(&out.depth_conf)?,
        extrinsics: copy(&out.extrinsics)?,
        intrinsics: copy(&out.intrinsics)?,
        sky: copy(&out.sky)?,
        is_metric: out.is_metric,
        scale_factor: out.scale_factor,
        warnings: out.warnings.clone(),
        exported_features: out.exported_features.iter().map(|(l, f)| Ok((*l, crate::nn::copy(f)?))).collect::<Result<_>>()?,
        trace: None,
    })
}

/// What a loaded network can compute beyond depth.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    pub preset: &'static str,
    /// Takes known cameras (a camera encoder).
    pub camera_encoder: bool,
    /// Ray-based pose (`use_ray_pose`): a DualDPT head with its ray branch.
    pub ray_head: bool,
    /// Blocks of the backbone that `export_feat_layers` indexes (the nested model's any-view
    /// branch).
    pub backbone_depth: usize,
    /// Predicts cameras (a camera decoder).
    pub pose: bool,
    /// Predicts depth confidence.
    pub confidence: bool,
    /// Predicts a sky map.
    pub sky: bool,
    /// Depth and translations in metres (the nested model, `Prediction::is_metric`).
    pub metric_depth: bool,
    /// Depth for a canonical 300-pixel focal length (`da3metric-large`, see
    /// `Prediction::metric_depth`).
    pub canonical_metric_depth: bool,
}

impl Capabilities {
    /// Whether a request (known cameras or not, and the options) can be served.
    pub fn check(&self, with_cameras: bool, options: &ForwardOptions) -> Result<()> {
        if with_cameras && !self.camera_encoder {
            return Err(Error::Unsupported(format!("{} has no camera encoder: it cannot take known cameras", self.preset)));
        }
        if options.use_ray_pose && !self.ray_head {
            return Err(Error::Unsupported(format!(
                "{} has no ray head: use_ray_pose needs a model with the DualDPT head",
                self.preset
            )));
        }
        if let Some(layer) = options.export_feat_layers.iter().find(|&&l| l >= self.backbone_depth) {
            return Err(Error::InvalidArgument(format!(
                "export_feat_layers: block {layer} does not exist, {} has blocks 0 to {}",
                self.preset,
                self.backbone_depth - 1
            )));
        }
        Ok(())
    }
}



#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_beyond_the_model_are_unsupported() {
        let depth_only = Capabilities {
            preset: "depth-only",
            camera_encoder: false,
            ray_head: false,
            backbone_depth: 24,
            pose: false,
            confidence: false,
            sky: true,
            metric_depth: false,
            canonical_metric_depth: false,
        };
        let plain = ForwardOptions::default();
        assert!(depth_only.check(false, &plain).is_ok());
        match depth_only.check(true, &plain) {
            Err(Error::Unsupported(m)) => assert!(m.contains("no camera encoder"), "{m}"),
            other => panic!("{other:?}"),
        }
        let ray = ForwardOptions { use_ray_pose: true, ..ForwardOptions::default() };
        match depth_only.check(false, &ray) {
            Err(Error::Unsupported(m)) => assert!(m.contains("use_ray_pose"), "{m}"),
            other => panic!("{other:?}"),
        }
        let full = Capabilities { preset: "any-view", camera_encoder: true, ray_head: true, pose: true, confidence: true, sky: false, ..depth_only };
        assert!(full.check(true, &ray).is_ok());
        let deep = ForwardOptions { export_feat_layers: vec![23, 24], ..ForwardOptions::default() };
        assert!(matches!(full.check(false, &deep), Err(Error::InvalidArgument(m)) if m.contains("block 24")));
    }
}
