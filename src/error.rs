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

    /// libtorch reported an error (a kernel failure, an unsupported operation, ...).
    #[error("libtorch error: {0}")]
    Torch(String),

    /// A broken invariant of the library itself (a bug to report), e.g. a caught panic.
    #[error("internal error: {0}; please report this bug")]
    Internal(String),

    /// Memory ran out on a device (a GPU, or the host for CPU work): the call failed, the model
    /// stays usable, a smaller request (fewer views, a lower resolution) may succeed.
    #[error("out of memory: {0}")]
    OutOfMemory(String),

    /// The host asked the call to stop (a cancel token set, a load progress callback that
    /// returned false): the call did nothing the host sees, the model stays usable.
    #[error("cancelled: {0}")]
    Cancelled(String),

    /// The network produced a non-finite value (NaN or infinity) in an output, or an alignment
    /// gave a non-finite or zero scale: nothing is returned rather than numbers no consumer
    /// should use. Inputs that would cause it are refused up front where they can be
    /// recognised (`InvalidArgument`); this is for what slips past, e.g. fp16 overflow.
    #[error("non-finite output: {0}")]
    NonFinite(String),
}

impl Error {
    /// The same error with `operation` (what was being done, e.g. "the forward on cuda:0")
    /// in front of its message.
    pub fn during(self, operation: &str) -> Error {
        match self {
            Error::Torch(m) => Error::Torch(format!("{operation}: {m}")),
            Error::OutOfMemory(m) => Error::OutOfMemory(format!("{operation}: {m}")),
            other => other,
        }
    }
}

/// libtorch's messages carry the C++ backtrace after the first line ("Exception raised from
/// ...", "frame #0: ..."): a host gets the first line, the debug log the whole text.
impl From<tch::TchError> for Error {
    fn from(e: tch::TchError) -> Self {
        torch_error(&e.to_string())
    }
}

/// The error for a libtorch message: `OutOfMemory` when an allocator ran out (CUDA's caching
/// allocator, or the CPU allocator), else `Torch`; the message reduced to its first line.
pub fn torch_error(message: &str) -> Error {
    let summary = torch_message_summary(message);
    if summary.len() < message.trim_end().len() {
        crate::log::debug(&format!("libtorch error, whole message: {message}"));
    }
    if is_out_of_memory(&summary) {
        Error::OutOfMemory(summary)
    } else {
        Error::Torch(summary)
    }
}

/// The first line of a libtorch message (tch prefixes `Internal torch error: `, dropped).
pub fn torch_message_summary(message: &str) -> String {
    let first = message.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    let first = first.strip_prefix("Internal torch error:").map(str::trim).unwrap_or(first);
    // c10's "[enforce fail at alloc_cpu.cpp:127] " names a source line, not the problem.
    match first.strip_prefix("[enforce fail at ").and_then(|rest| rest.split_once("] ")) {
        Some((_, rest)) => rest.to_owned(),
        None => first.to_owned(),
    }
}

/// Whether a libtorch message reports an allocation failure: CUDA's "CUDA out of memory",
/// the CPU allocator's "not enough memory", cuBLAS/cuDNN's allocation statuses.
fn is_out_of_memory(summary: &str) -> bool {
    let lower = summary.to_ascii_lowercase();
    [
        "out of memory",
        "not enough memory",
        "can't allocate memory",
        "cannot allocate memory",
        "cublas_status_alloc_failed",
        "cudnn_status_alloc_failed",
        "failed to allocate",
    ]
        .iter()
        .any(|needle| lower.contains(needle))
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, Error>;

thread_local! {
    /// How many `quiet_panics` scopes this thread is in.
    static QUIET_DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Runs `work` with panics on this thread kept off stderr: a panic inside is a bug that the
/// caller catches and reports as an error (the C boundary as `DA3_ERR_PANIC` with the text in
/// the error message), so the panic hook only notes it in the debug log. Panics outside such
/// scopes (e.g. a Rust program's own, when libda3 is linked as an rlib) still reach the
/// previous hook. Every thread libda3 starts runs its work inside one.
pub fn quiet_panics<R>(work: impl FnOnce() -> R) -> R {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET_DEPTH.try_with(|d| d.get() > 0).unwrap_or(false) {
                let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
                crate::log::debug(&format!("panic{location}: {}", panic_message(info.payload())));
            } else {
                previous(info);
            }
        }));
    });
    struct Depth;
    impl Drop for Depth {
        fn drop(&mut self) {
            let _ = QUIET_DEPTH.try_with(|d| d.set(d.get().saturating_sub(1)));
        }
    }
    let _ = QUIET_DEPTH.try_with(|d| d.set(d.get() + 1));
    let _depth = Depth;
    work()
}

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

/// Runs `work` for `operation` (e.g. "the forward on cuda:0"), putting the operation in front
/// of a libtorch error's message. A panic is caught as a backstop: a libtorch error that
/// reached a panicking tch method becomes its `Torch`/`OutOfMemory` error (first line only),
/// anything else `Internal`.
pub fn guard<T>(operation: &str, work: impl FnOnce() -> Result<T>) -> Result<T> {
    match quiet_panics(|| std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))) {
        Ok(result) => result.map_err(|e| e.during(operation)),
        Err(payload) => Err(from_panic(&panic_message(&*payload)).during(operation)),
    }
}

/// The error for a caught panic's text: tch's `unwrap` of a libtorch error reads
/// `called `Result::unwrap()` on an `Err` value: Torch("<message>")`.
fn from_panic(text: &str) -> Error {
    const TORCH: &str = "Torch(\"";
    match text.find(TORCH) {
        Some(start) => {
            let quoted = &text[start + TORCH.len()..];
            // The Debug form escapes newlines: the first line ends at the first `\n`.
            let first = quoted.split("\\n").next().unwrap_or(quoted).trim_end_matches("\")");
            crate::log::debug(&format!("libtorch error caught as a panic: {text}"));
            torch_error(first)
        }
        None => Error::Internal(format!("a panic: {text}")),
    }
}
