//! The host's log: a callback that receives libda3's notes instead of stderr, and the
//! process-wide level that filters them.
use std::ffi::{c_char, c_void, CString};
use std::sync::Arc;

use crate::log::{self, Level};

use super::boundary::{da3_status, status_call, value_call, FfiError};
use super::enums::unknown_value;

/// Severity of a libda3 note: one of the `DA3_LOG_*` constants. As a filter
/// (`da3_log_set_level`), a level lets through its notes and the more severe ones.
pub type da3_log_level = u32;
/// No notes at all (a filter only; never passed to a callback).
pub const DA3_LOG_OFF: da3_log_level = 0;
/// Something failed inside libda3 beyond what the failing call's status reports.
pub const DA3_LOG_ERROR: da3_log_level = 1;
/// Something the host should look at (the default filter).
pub const DA3_LOG_WARN: da3_log_level = 2;
/// What libda3 decided: the devices and precision of a load (e.g. `DA3_PRECISION_AUTO`
/// resolved to bf16, or to fp16 on a GPU without bf16), the threads set, a scene split over
/// several replicas, CUDA graph captures and kernel fallbacks.
pub const DA3_LOG_INFO: da3_log_level = 3;
/// Diagnostics, e.g. libtorch's whole error message with its C++ backtrace.
pub const DA3_LOG_DEBUG: da3_log_level = 4;

/// Receives one note: its level (`DA3_LOG_ERROR` to `DA3_LOG_DEBUG`), the message (one line,
/// UTF-8, no trailing newline, valid only during the call: copy it to keep it) and the
/// `user_data` given to `da3_log_set`.
///
/// Called from any thread that runs libda3 work (the caller's threads, the preprocessing
/// threads, the threads that load replicas, a GPU replica's own thread), possibly from
/// several at once: it must be
/// thread-safe. It must return (not throw, not longjmp) and must not call `da3_log_set`
/// (that call fails with `DA3_ERR_INVALID_ARGUMENT`); notes libda3 writes while it runs on
/// the same thread go to stderr.
pub type da3_log_callback = Option<unsafe extern "C" fn(level: da3_log_level, message: *const c_char, user_data: *mut c_void)>;

/// The C callback and its context, as a sink of the core's log.
struct CallbackSink {
    callback: unsafe extern "C" fn(da3_log_level, *const c_char, *mut c_void),
    user_data: *mut c_void,
}

// SAFETY: the host promises (see `da3_log_callback`) that the callback may be called with
// `user_data` from any thread, concurrently.
unsafe impl Send for CallbackSink {}
// SAFETY: as above.
unsafe impl Sync for CallbackSink {}

impl CallbackSink {
    fn deliver(&self, level: Level, message: &str) {
        let message = CString::new(message.replace('\0', "\\0")).unwrap_or_default();
        // SAFETY: a function pointer the host gave with its context; the message is a valid
        // NUL-terminated string for the duration of the call.
        unsafe { (self.callback)(level as da3_log_level, message.as_ptr(), self.user_data) }
    }
}

/// Sends libda3's notes to `callback` instead of stderr (process-wide: every model, every
/// thread); `callback` NULL restores stderr (lines prefixed "libda3: "). `user_data` is passed
/// back to every call and never touched by the library.
///
/// Which notes: those at or above the level filter (`da3_log_set_level`; without it,
/// `DA3_LOG` read at each load, default `DA3_LOG_WARN`).
///
/// Ownership: the library keeps `callback` and `user_data` until the next `da3_log_set`;
/// when that call returns, the previous callback is neither running nor called again, so its
/// `user_data` may be freed then.
/// Thread safety: any thread, at any time (it waits for notes being delivered); not from
/// inside the callback.
///
/// Errors: `DA3_ERR_INVALID_ARGUMENT` when called from inside the log callback.
///
/// # Safety
/// `callback` is NULL or a function satisfying `da3_log_callback`'s contract for `user_data`.
#[no_mangle]
pub unsafe extern "C" fn da3_log_set(callback: da3_log_callback, user_data: *mut c_void) -> da3_status {
    status_call("da3_log_set", || {
        let sink = callback.map(|callback| {
            let sink = CallbackSink { callback, user_data };
            Arc::new(move |level: Level, message: &str| sink.deliver(level, message)) as log::Sink
        });
        log::set_sink(sink).map_err(|why| FfiError::invalid(format!("da3_log_set: {why}")))
    })
}

/// Sets the process-wide level filter (`DA3_LOG_OFF` to `DA3_LOG_DEBUG`) for the callback
/// and stderr alike. Once set here, it stays: later loads no longer apply the `DA3_LOG`
/// environment variable.
///
/// Errors: `DA3_ERR_INVALID_ARGUMENT` for a value that is no `DA3_LOG_*` constant.
/// Thread safety: any thread, at any time (also from inside the log callback).
#[no_mangle]
pub extern "C" fn da3_log_set_level(level: da3_log_level) -> da3_status {
    status_call("da3_log_set_level", || {
        let level = u8::try_from(level).ok().and_then(Level::from_u8).ok_or_else(|| {
            unknown_value("level", level, "0 = DA3_LOG_OFF, 1 = DA3_LOG_ERROR, 2 = DA3_LOG_WARN, 3 = DA3_LOG_INFO, 4 = DA3_LOG_DEBUG")
        })?;
        log::set_level(level);
        Ok(())
    })
}

/// The process-wide level filter now (a `DA3_LOG_*` value). Thread safety: any thread.
#[no_mangle]
pub extern "C" fn da3_log_get_level() -> da3_log_level {
    value_call("da3_log_get_level", || Ok(log::level() as da3_log_level))
}
