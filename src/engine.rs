//! The safe, thread-safe entry point: a loaded model plus its runtime.
use std::path::Path;
use std::sync::Mutex;

use tch::{Device, Kind, Tensor};

use crate::camera_input::{self, CameraInput, KnownCameras};
use crate::error::{Error, Result};
use crate::hub::{self, Checkpoint};
use crate::image_input::{ImageView, RgbImage};
use crate::model::{ForwardRequest, NetOutput};
use crate::options::{InferOptions, Precision};
use crate::prediction::{FeatureMap, Prediction};
use crate::preprocess::{self, Processed};
use crate::runner::Runner;
use crate::runtime;

/// A loaded DA3 model on one device. `Send + Sync`: calls from several threads are
/// serialised on the device.
pub struct Engine {
    runner: Mutex<Runner>,
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
        let runner = Runner::load(checkpoint, device, kind)?;
        Ok(Engine { runner: Mutex::new(runner), preset: checkpoint.config.preset, device, precision, use_accelerate })
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
        self.infer_processed(&processed, known.as_ref(), options)
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
        self.infer_processed(&processed, known.as_ref(), options)
    }

    /// The network and the output conversion on preprocessed views (what follows the
    /// preprocessing in `infer_rgb_with_cameras`).
    fn infer_processed(&self, processed: &Processed, known: Option<&KnownCameras>, options: &InferOptions) -> Result<Prediction> {
        let Some(known) = known else {
            let out = self.forward(&processed.images, options, false)?;
            return to_prediction(processed, &out);
        };
        // The caller's intrinsics through the resize and crops; extrinsics normalised for the
        // camera encoder (the alignment below uses them as given).
        let intrinsics: Vec<[f32; 9]> =
            known.intrinsics.iter().zip(&processed.grid_changes).map(|(k, c)| preprocess::adjust_intrinsics(k, c)).collect();
        let normalized = tch::no_grad(|| camera_input::normalize_extrinsics(&known.extrinsics_tensor().to_device(self.device)));
        let intrinsics_t = camera_input::intrinsics_tensor(&intrinsics);
        let out = self.forward_with_cameras(&processed.images, Some((&normalized, &intrinsics_t)), options, false)?;
        let mut prediction = to_prediction(processed, &out)?;
        align_prediction(&mut prediction, known, &intrinsics, options.align_to_input_ext_scale)?;
        Ok(prediction)
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
        let mut runner =
            self.runner.lock().map_err(|_| Error::Torch("a previous call panicked while holding the model".into()))?;
        runner.capabilities().check(cameras.is_some(), options)?;
        let request = ForwardRequest {
            ref_view_strategy: options.ref_view_strategy,
            cameras: None,
            use_ray_pose: options.use_ray_pose,
            export_feat_layers: &options.export_feat_layers,
        };
        runner.forward(images, cameras, &request, keep_trace)
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
        // A synchronous copy; converts the kind when the output is not float32.
        dst.f_copy_(&t.reshape([-1]))?;
    }
    Ok(out)
}

fn to_prediction(processed: &Processed, out: &NetOutput) -> Result<Prediction> {
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

