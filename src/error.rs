//! One error type for the whole safe core; the FFI layer maps each kind to a status code.
use std::path::PathBuf;

/// Everything that can go wrong in the safe core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A caller-supplied argument is out of range or inconsistent.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// No checkpoint could be found for the `model` argument.
    #[error("model not found: {0}")]
    ModelNotFound(String),

    /// The checkpoint exists but does not match the architecture (missing, unexpected or
    /// mis-shaped tensors, unknown preset, unreadable config).
    #[error("checkpoint mismatch: {0}")]
    Checkpoint(String),

    /// An image could not be read or decoded.
    #[error("cannot read image {path}: {reason}")]
    Image { path: PathBuf, reason: String },

    /// A file-system operation failed.
    #[error("i/o error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },

    /// The requested feature or device is not available in this build or on this machine.
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// libtorch reported an error (out of memory, kernel failure, ...).
    #[error("libtorch error: {0}")]
    Torch(String),

    /// A broken internal invariant: a bug in libda3, not the caller's fault.
    #[error("internal error: {0}; please report this bug")]
    Internal(String),
}

impl From<tch::TchError> for Error {
    fn from(e: tch::TchError) -> Self {
        Error::Torch(e.to_string())
    }
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Text of a caught panic payload (`&*payload` of a `catch_unwind` error: a `&Box` would
/// coerce to the box itself, not its contents).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}
