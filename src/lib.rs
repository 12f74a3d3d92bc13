//! libda3: Depth Anything 3 inference on libtorch, with a C ABI (see `include/da3.h`).
//!
//! The safe core (`Engine`, the model in `model`, preprocessing in `preprocess`) returns
//! `Result` everywhere; `ffi` is a thin layer that converts types, checks pointers,
//! catches panics and maps errors to status codes.

pub mod camera_input;
pub mod cancel;
pub mod engine;
pub mod gpu;
pub mod log;
pub mod settings;
pub mod error;
pub mod faults;
pub mod stack;
pub mod ffi;
pub mod export;
pub mod geometry;
pub mod image_input;
pub mod options;
pub mod prediction;
pub mod visualize;

pub use cancel::CancelToken;
pub use engine::{Engine, LoadOptions, LoadProgress, Scene, Views};
pub use settings::Settings;
pub use error::{Error, Result};
pub use image_input::{ImageView, PixelFormat, RgbImage};
pub use options::{CheckedOptions, InferOptions, Precision, RefViewStrategy, ResizeMethod};
pub use camera_input::CameraInput;
pub use prediction::{FeatureMap, Prediction};
pub mod accuracy;
pub mod config;
pub mod model;
pub mod nn;
pub mod weights;
pub mod host_copy;
pub mod hub;
pub mod preprocess;
pub mod replica;
pub mod runner;
pub mod scheduler;
pub mod sharding;
pub mod utils;
