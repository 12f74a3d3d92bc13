//! The panic and error boundary every export goes through: status codes, the one mapping
//! from `crate::Error` kinds to them, the thread-local last-error message, and the version.
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use crate::error::Error;

/// Major version of the header (and of the library it was generated with).
/// `da3_version()` gives the version of the library actually loaded.
pub const DA3_VERSION_MAJOR: u32 = 0;
/// Minor version of the header.
pub const DA3_VERSION_MINOR: u32 = 1;
/// Patch version of the header.
pub const DA3_VERSION_PATCH: u32 = 0;

/// Parses a decimal version component at compile time.
const fn parse_version_part(s: &str) -> u32 {
    let b = s.as_bytes();
    let mut i = 0;
    let mut v = 0u32;
    while i < b.len() {
        assert!(b[i].is_ascii_digit(), "version component is not a number");
        v = v * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    v
}

// The header's macros are generated from the constants above; these make a drift between them
// and Cargo.toml's `version` a compile error.
const _: () = assert!(
    DA3_VERSION_MAJOR == parse_version_part(env!("CARGO_PKG_VERSION_MAJOR")),
    "DA3_VERSION_MAJOR differs from Cargo.toml's version: update src/ffi/boundary.rs and regenerate include/da3.h"
);
const _: () = assert!(
    DA3_VERSION_MINOR == parse_version_part(env!("CARGO_PKG_VERSION_MINOR")),
    "DA3_VERSION_MINOR differs from Cargo.toml's version: update src/ffi/boundary.rs and regenerate include/da3.h"
);
const _: () = assert!(
    DA3_VERSION_PATCH == parse_version_part(env!("CARGO_PKG_VERSION_PATCH")),
    "DA3_VERSION_PATCH differs from Cargo.toml's version: update src/ffi/boundary.rs and regenerate include/da3.h"
);

const VERSION_CSTR: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");

/// Result of a fallible call. `DA3_OK` is 0; every other value is an error whose readable
/// description is in `da3_last_error_message()`. Values are stable across versions; new
/// codes may be added, so keep a `default:` branch when switching on them.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum da3_status {
    /// Success.
    DA3_OK = 0,
    /// An argument is out of range or inconsistent (unknown enum value, zero size, bad stride,
    /// view index past the end, ...). The message names the argument and its value.
    DA3_ERR_INVALID_ARGUMENT = 1,
    /// A required pointer argument is NULL. The message names it.
    DA3_ERR_NULL_POINTER = 2,
    /// No checkpoint was found for the `model` argument of `da3_create`; the message lists the
    /// places that were tried.
    DA3_ERR_MODEL_NOT_FOUND = 3,
    /// A checkpoint was found but cannot be used (unreadable or corrupt file, unknown preset,
    /// missing, unexpected or mis-shaped tensors).
    DA3_ERR_CHECKPOINT = 4,
    /// An input image file could not be read or decoded, or a PNG could not be encoded.
    DA3_ERR_IMAGE = 5,
    /// A file-system operation failed (e.g. writing a PNG into a missing directory).
    DA3_ERR_IO = 6,
    /// The requested feature or device is not available in this build or on this machine,
    /// the model cannot serve the request (known cameras without a camera encoder, ray pose
    /// without a ray head: see `da3_model_capabilities`), or `da3_options` comes from a newer
    /// `da3.h` than the loaded library.
    DA3_ERR_UNSUPPORTED = 7,
    /// libtorch reported an error (a kernel failure, an unsupported operation, ...); out of
    /// memory has its own status, `DA3_ERR_OUT_OF_MEMORY`. The message is libtorch's first
    /// line after the operation that failed (`DA3_LOG=debug` writes the whole text to stderr).
    DA3_ERR_TORCH = 8,
    /// The requested output is not in this result (e.g. cameras from a model without a camera
    /// head, an alignment scale without known cameras); see `da3_result_has_cameras`.
    DA3_ERR_NOT_AVAILABLE = 9,
    /// A bug inside libda3 (a Rust panic or a broken internal invariant) was caught at the
    /// API boundary. The handles involved stay valid but their state is unspecified; please
    /// report the message.
    DA3_ERR_PANIC = 10,
    /// Memory ran out on the model's device (GPU memory, or host memory for CPU work) while
    /// preprocessing or running the network. The call failed without side effects: the model
    /// handle stays usable and a smaller request (fewer views, a lower `process_res`) may
    /// succeed. The message names the operation and the device.
    DA3_ERR_OUT_OF_MEMORY = 11,
    /// The host stopped the call: a `da3_infer*` whose `da3_options.cancel` token was
    /// cancelled (before the call or while it ran), or a `da3_create_with_options` whose
    /// progress callback returned false. Nothing was returned (out-pointers are NULL), and the
    /// model handle stays usable: the next call runs normally (reset the token first, it stays
    /// cancelled until `da3_cancel_token_reset`). The message says where the call stopped.
    DA3_ERR_CANCELLED = 12,
    /// The network produced a non-finite value (NaN or infinity) in depth, confidence, sky or
    /// the cameras, or the alignment to known cameras a non-finite or zero scale (e.g. an
    /// overflow at reduced precision). Nothing is returned: a result is either finite
    /// throughout or not made. Inputs that would cause it are refused up front with
    /// `DA3_ERR_INVALID_ARGUMENT` where they can be recognised (non-finite input floats,
    /// cameras outside `DA3_MAX_CAMERA_MAGNITUDE`); the model handle stays usable.
    DA3_ERR_NON_FINITE = 13,
}

pub(super) use da3_status::*;

/// Maps every core error kind to its status code (exhaustive: a new `Error` variant will not
/// compile until it is mapped here). A broken internal invariant is a bug, like a panic.
fn status_of(error: &Error) -> da3_status {
    match error {
        Error::InvalidArgument(_) => DA3_ERR_INVALID_ARGUMENT,
        Error::ModelNotFound(_) => DA3_ERR_MODEL_NOT_FOUND,
        Error::Checkpoint(_) => DA3_ERR_CHECKPOINT,
        Error::Image { .. } => DA3_ERR_IMAGE,
        Error::Io { .. } => DA3_ERR_IO,
        Error::Unsupported(_) => DA3_ERR_UNSUPPORTED,
        Error::Torch(_) => DA3_ERR_TORCH,
        Error::Internal(_) => DA3_ERR_PANIC,
        Error::OutOfMemory(_) => DA3_ERR_OUT_OF_MEMORY,
        Error::Cancelled(_) => DA3_ERR_CANCELLED,
        Error::NonFinite(_) => DA3_ERR_NON_FINITE,
    }
}

fn status_name(status: c_int) -> &'static CStr {
    match status {
        0 => c"DA3_OK",
        1 => c"DA3_ERR_INVALID_ARGUMENT",
        2 => c"DA3_ERR_NULL_POINTER",
        3 => c"DA3_ERR_MODEL_NOT_FOUND",
        4 => c"DA3_ERR_CHECKPOINT",
        5 => c"DA3_ERR_IMAGE",
        6 => c"DA3_ERR_IO",
        7 => c"DA3_ERR_UNSUPPORTED",
        8 => c"DA3_ERR_TORCH",
        9 => c"DA3_ERR_NOT_AVAILABLE",
        10 => c"DA3_ERR_PANIC",
        11 => c"DA3_ERR_OUT_OF_MEMORY",
        12 => c"DA3_ERR_CANCELLED",
        13 => c"DA3_ERR_NON_FINITE",
        _ => c"DA3_UNKNOWN_STATUS",
    }
}

/// Version of the loaded library as "MAJOR.MINOR.PATCH". Compare it with the
/// `DA3_VERSION_*` macros to detect a header/library mismatch.
///
/// Ownership: static string, never free it. Thread safety: any thread.
#[no_mangle]
pub extern "C" fn da3_version() -> *const c_char {
    VERSION_CSTR.as_ptr().cast()
}

/// Symbolic name of a status code, e.g. "DA3_ERR_IO"; "DA3_UNKNOWN_STATUS" for values this
/// version does not know. Takes an `int` so any value is safe to pass.
///
/// Ownership: static string, never free it. Thread safety: any thread. Does not touch the
/// thread's error message.
#[no_mangle]
pub extern "C" fn da3_status_name(status: c_int) -> *const c_char {
    status_name(status).as_ptr()
}

/// Readable message describing the most recent failing da3 call on the calling thread, or
/// "" if no call on this thread has failed yet. Successful calls do not clear it, so read it
/// right after a call reported failure (a non-`DA3_OK` status, NULL or 0).
///
/// Ownership: the string belongs to the library; it stays valid until the next da3 call on
/// the same thread. Copy it if you need it longer; never free it.
/// Thread safety: messages are per thread, so failures on other threads never show here.
#[no_mangle]
pub extern "C" fn da3_last_error_message() -> *const c_char {
    LAST_ERROR.try_with(|slot| slot.borrow().as_ptr()).unwrap_or(c"".as_ptr())
}

/// An error on its way to C: a status plus the message for `da3_last_error_message`.
#[derive(Debug)]
pub(super) struct FfiError {
    pub(super) status: da3_status,
    pub(super) message: String,
}

pub(super) type FfiResult<T> = Result<T, FfiError>;

impl FfiError {
    pub(super) fn new(status: da3_status, message: impl Into<String>) -> Self {
        FfiError { status, message: message.into() }
    }

    pub(super) fn null(what: &str) -> Self {
        FfiError::new(DA3_ERR_NULL_POINTER, format!("null pointer: {what} is NULL"))
    }

    pub(super) fn invalid(message: impl Into<String>) -> Self {
        FfiError::new(DA3_ERR_INVALID_ARGUMENT, format!("invalid argument: {}", message.into()))
    }
}

impl From<Error> for FfiError {
    fn from(error: Error) -> Self {
        FfiError { status: status_of(&error), message: error.to_string() }
    }
}

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    // Interior NULs would truncate the C string; show them instead.
    let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
    // `try_with`: during thread teardown the slot may be gone; the status still tells.
    let _ = LAST_ERROR.try_with(|slot| *slot.borrow_mut() = message);
}

/// What an export returns when its body panicked (or, for value-returning functions, failed).
pub(super) trait ErrorValue {
    fn error_value() -> Self;
}

impl<T> ErrorValue for *const T {
    fn error_value() -> Self {
        ptr::null()
    }
}

impl ErrorValue for usize {
    fn error_value() -> Self {
        0
    }
}

impl ErrorValue for u32 {
    fn error_value() -> Self {
        0
    }
}

impl ErrorValue for i32 {
    fn error_value() -> Self {
        -1
    }
}

impl ErrorValue for bool {
    fn error_value() -> Self {
        false
    }
}

impl ErrorValue for () {
    fn error_value() -> Self {}
}

/// Runs `body` behind the panic boundary. `Err(())` means it panicked (message already set).
pub(super) fn catch<R>(name: &'static str, body: impl FnOnce() -> R) -> Result<R, ()> {
    crate::error::quiet_panics(|| {
        catch_unwind(AssertUnwindSafe(|| {
            #[cfg(test)]
            test_hooks::maybe_panic(name);
            body()
        }))
    })
    .map_err(|payload| {
        set_last_error(&format!(
            "internal error: {name} panicked: {}; please report this bug",
            crate::error::panic_message(payload.as_ref())
        ));
        // Dropping a payload can itself panic; never let that cross the boundary.
        let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
    })
}

/// Boundary for functions returning `da3_status`.
pub(super) fn status_call(name: &'static str, body: impl FnOnce() -> FfiResult<()>) -> da3_status {
    match catch(name, body) {
        Ok(Ok(())) => DA3_OK,
        Ok(Err(error)) => {
            set_last_error(&error.message);
            error.status
        }
        Err(()) => DA3_ERR_PANIC,
    }
}

/// `status_call` for a call that runs libtorch work (loads, inference): on a helper thread with
/// enough stack when the caller's thread is nearly out of it (`crate::stack`).
pub(super) fn heavy_call(name: &'static str, body: impl FnOnce() -> FfiResult<()>) -> da3_status {
    status_call(name, || crate::stack::with_enough_stack(body))
}

/// Boundary for functions returning a value, with NULL / 0 / false meaning failure.
pub(super) fn value_call<R: ErrorValue>(name: &'static str, body: impl FnOnce() -> FfiResult<R>) -> R {
    match catch(name, body) {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => {
            set_last_error(&error.message);
            R::error_value()
        }
        Err(()) => R::error_value(),
    }
}

#[cfg(test)]
pub(super) mod test_hooks {
    use std::cell::Cell;

    thread_local! {
        /// Name of an export that must panic on its next call on this thread.
        pub static PANIC_IN: Cell<Option<&'static str>> = const { Cell::new(None) };
    }

    pub fn maybe_panic(name: &str) {
        if PANIC_IN.with(|p| p.get()) == Some(name) {
            PANIC_IN.with(|p| p.set(None));
            panic!("test-induced panic");
        }
    }
}

