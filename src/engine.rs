//! The safe, thread-safe entry point: a loaded model plus its runtime.
use std::path::Path;
use std::sync::Mutex;

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};
use crate::hub::{self, Checkpoint};
use crate::image_input::{ImageView, RgbImage};
use crate::model::{load_network, NetOutput, Network};
use crate::options::{InferOptions, Precision};
use crate::prediction::Prediction;
use crate::preprocess::{self, Processed};
use crate::runtime;

/// A loaded DA3 model on one device. `Send + Sync`: calls from several threads are
/// serialised on the device.
pub struct Engine {
    net: Mutex<Network>,
    preset: &'static str,
    device: Device,
    precision: Precision,
    use_accelerate: bool,
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
    pub fn load_checkpoint(checkpoint: &Checkpoint, use_accelerate: bool, precision: Precision) -> Result<Engine> {
        let device = runtime::select_device()?;
        let precision = runtime::resolve_precision(precision, device);
        let kind = runtime::compute_kind(precision);
        let net = std::panic::catch_unwind(|| {
            tch::no_grad(|| load_network(&checkpoint.config, &checkpoint.weights_path(), device, kind))
        })
        // tch panics on libtorch errors (e.g. out of device memory): report them as errors.
        .map_err(|panic| Error::Torch(panic_message(&panic)))??;
        Ok(Engine { net: Mutex::new(net), preset: checkpoint.config.preset, device, precision, use_accelerate })
    }

    /// Runs one scene made of `images` (one per view).
    pub fn infer(&self, images: &[ImageView<'_>], options: &InferOptions) -> Result<Prediction> {
        let rgb: Vec<RgbImage> = images
            .iter()
            .map(|v| RgbImage { width: v.width, height: v.height, data: v.to_rgb8() })
            .collect();
        self.infer_rgb(&rgb, options)
    }

    /// Runs one scene made of the image files at `paths` (PNG or JPEG).
    pub fn infer_files<P: AsRef<Path>>(&self, paths: &[P], options: &InferOptions) -> Result<Prediction> {
        let rgb: Vec<RgbImage> = paths.iter().map(|p| preprocess::load_image(p.as_ref())).collect::<Result<_>>()?;
        self.infer_rgb(&rgb, options)
    }

    /// Runs one scene of packed RGB8 images.
    pub fn infer_rgb(&self, images: &[RgbImage], options: &InferOptions) -> Result<Prediction> {
        let processed = preprocess::process_views(images, options)?;
        let out = self.forward(&processed.images, options, false)?;
        to_prediction(&processed, &out)
    }

    /// The network on an already preprocessed (S, 3, H, W) batch; `keep_trace` keeps the
    /// intermediate tensors (features, camera tokens, head and sky logits, the nested
    /// model's alignment statistics).
    pub fn forward(&self, images: &Tensor, options: &InferOptions, keep_trace: bool) -> Result<NetOutput> {
        let size = images.size();
        let patch = preprocess::PATCH_SIZE as i64;
        if size.len() != 4 || size[1] != 3 || size[2] % patch != 0 || size[3] % patch != 0 || size[0] == 0 {
            return Err(Error::InvalidArgument(format!(
                "network input must be (S>0, 3, H, W) with H and W multiples of 14, got {size:?}"
            )));
        }
        let net = self.net.lock().map_err(|_| Error::Torch("a previous call panicked while holding the model".into()))?;
        let images = images.to_device(self.device).to_kind(Kind::Float);
        let strategy = options.ref_view_strategy;
        let out = tch::no_grad(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| net.forward(&images, strategy, keep_trace))));
        // tch panics on libtorch errors (e.g. out of memory): report them as errors.
        out.map_err(|panic| Error::Torch(panic_message(&panic)))?
    }

    /// Official preset name of the loaded model, e.g. `da3-large`.
    pub fn preset_name(&self) -> &str {
        self.preset
    }

    /// Device the model runs on, e.g. `cpu` or `cuda:0`.
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

/// Text of a caught panic payload.
pub fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

fn host_f32(t: &Tensor) -> Result<Vec<f32>> {
    let t = t.to_device(Device::Cpu).to_kind(Kind::Float).contiguous().reshape([-1]);
    Ok(Vec::<f32>::try_from(&t)?)
}

fn to_prediction(processed: &Processed, out: &NetOutput) -> Result<Prediction> {
    let optional = |t: &Option<Tensor>| t.as_ref().map(host_f32).transpose();
    Ok(Prediction {
        views: out.depth.size()[0] as usize,
        height: processed.height as usize,
        width: processed.width as usize,
        depth: host_f32(&out.depth)?,
        confidence: optional(&out.depth_conf)?.unwrap_or_default(),
        extrinsics: optional(&out.extrinsics)?,
        intrinsics: optional(&out.intrinsics)?,
        sky: optional(&out.sky)?,
        is_metric: out.is_metric,
        scale_factor: out.scale_factor,
        warnings: out.warnings.clone(),
    })
}
