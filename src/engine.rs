//! The safe, thread-safe entry point: a loaded model plus its runtime.
use std::path::Path;

use crate::error::{Error, Result};
use crate::image_input::ImageView;
use crate::options::{InferOptions, Precision};
use crate::prediction::Prediction;

/// A loaded DA3 model on one device. `Send + Sync`: calls from several threads are
/// serialised on the device.
pub struct Engine {
    _private: (),
}

impl Engine {
    /// Loads `model` (a checkpoint directory or a Hugging Face repo id found in the local
    /// cache) onto the best device. `use_accelerate` turns on the fast runner;
    /// `precision` picks the arithmetic.
    pub fn load(model: &str, use_accelerate: bool, precision: Precision) -> Result<Engine> {
        let _ = (model, use_accelerate, precision);
        Err(Error::Unsupported("work in progress".into()))
    }

    /// Runs one scene made of `images` (one per view).
    pub fn infer(&self, images: &[ImageView<'_>], options: &InferOptions) -> Result<Prediction> {
        let _ = (images, options);
        Err(Error::Unsupported("work in progress".into()))
    }

    /// Runs one scene made of the image files at `paths` (PNG or JPEG).
    pub fn infer_files<P: AsRef<Path>>(&self, paths: &[P], options: &InferOptions) -> Result<Prediction> {
        let _ = (paths, options);
        Err(Error::Unsupported("work in progress".into()))
    }

    /// Official preset name of the loaded model, e.g. `da3-large`.
    pub fn preset_name(&self) -> &str {
        ""
    }

    /// Device the model runs on, e.g. `cpu` or `cuda:0`.
    pub fn device_name(&self) -> String {
        String::new()
    }

    /// The precision actually used (never `Auto`).
    pub fn precision(&self) -> Precision {
        Precision::Fp32
    }
}
