//! The cancel token: how a host stops a running `da3_infer*` from another thread.
use crate::cancel::CancelToken;

use super::args::{out_arg, Handle};
use super::boundary::{catch, da3_status, status_call};

/// A cancellation flag (opaque), shared between the host and the calls it is handed to
/// through `da3_options.cancel`. Create with `da3_cancel_token_new`, set with
/// `da3_cancel_token_cancel` (from any thread, e.g. while a `da3_infer` runs on another),
/// clear with `da3_cancel_token_reset`, destroy with `da3_cancel_token_free`.
///
/// A call holding a cancelled token returns `DA3_ERR_CANCELLED` at its next check: before
/// and after preprocessing (and before each file of `da3_infer_files`), before each block of
/// the transformer backbone, between the backbone and the head, between the nested model's
/// branches and after the forward; `da3_infer_scenes` stops every scene not yet finished.
/// On a GPU the checks happen as the host queues the work, so kernels already queued still
/// run to the end (the call returns once they are done); a forward replayed from a CUDA graph
/// (`use_accelerate`) is one launch, checked only before and after it. The flag stays set
/// until reset: a call started with a cancelled token stops at once. One token may serve
/// many calls at once (cancelling stops them all).
pub struct da3_cancel_token {
    pub(super) token: CancelToken,
}

impl Handle for da3_cancel_token {}

/// Creates a token (not cancelled) in `*out`.
///
/// Errors: `DA3_ERR_NULL_POINTER` (out is NULL).
/// Ownership: the caller owns `*out` and releases it with `da3_cancel_token_free`, after
/// every call that was given it has returned.
/// Thread safety: any thread.
///
/// # Safety
/// `out` is NULL or valid for writing a pointer.
#[no_mangle]
pub unsafe extern "C" fn da3_cancel_token_new(out: *mut *mut da3_cancel_token) -> da3_status {
    status_call("da3_cancel_token_new", || {
        // SAFETY: per the caller.
        let out = unsafe { out_arg(out, "out") }?;
        *out = da3_cancel_token { token: CancelToken::new() }.into_raw();
        Ok(())
    })
}

/// Cancels: every call holding the token stops at its next check with `DA3_ERR_CANCELLED`,
/// and so does every later call given it, until `da3_cancel_token_reset`. Returns at once (it
/// does not wait for the calls to stop).
///
/// Errors: `DA3_ERR_NULL_POINTER`.
/// Thread safety: any thread, also while calls use the token (that is its purpose); it
/// only sets an atomic flag, so it may be called from a signal handler's helper thread, a UI
/// thread or a timer.
///
/// # Safety
/// `token` is NULL or a live token.
#[no_mangle]
pub unsafe extern "C" fn da3_cancel_token_cancel(token: *const da3_cancel_token) -> da3_status {
    status_call("da3_cancel_token_cancel", || {
        // SAFETY: per the caller.
        unsafe { da3_cancel_token::borrow(token, "token") }?.token.cancel();
        Ok(())
    })
}

/// Clears the flag, so the token can be given to new calls. Calls that already stopped stay
/// stopped; a call still running that has not yet checked will run on.
///
/// Errors: `DA3_ERR_NULL_POINTER`.
/// Thread safety: any thread.
///
/// # Safety
/// `token` is NULL or a live token.
#[no_mangle]
pub unsafe extern "C" fn da3_cancel_token_reset(token: *const da3_cancel_token) -> da3_status {
    status_call("da3_cancel_token_reset", || {
        // SAFETY: per the caller.
        unsafe { da3_cancel_token::borrow(token, "token") }?.token.reset();
        Ok(())
    })
}

/// Whether the token is cancelled now (1) or not (0); 0 for NULL. Thread safety: any thread.
///
/// # Safety
/// `token` is NULL or a live token.
#[no_mangle]
pub unsafe extern "C" fn da3_cancel_token_is_cancelled(token: *const da3_cancel_token) -> bool {
    // SAFETY: per the caller.
    catch("da3_cancel_token_is_cancelled", || unsafe { token.as_ref() }.is_some_and(|t| t.token.is_cancelled()))
        .unwrap_or(false)
}

/// Destroys a token. NULL is a no-op.
///
/// Thread safety: no call may still hold it (free it after the calls given it returned).
///
/// # Safety
/// `token` is NULL or a token from `da3_cancel_token_new` not yet freed.
#[no_mangle]
pub unsafe extern "C" fn da3_cancel_token_free(token: *mut da3_cancel_token) {
    // SAFETY: from `da3_cancel_token_new`, freed once, per the caller.
    let _ = catch("da3_cancel_token_free", || unsafe { da3_cancel_token::free(token) });
}
