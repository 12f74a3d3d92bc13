//! Turning C arguments into Rust values: handles, out-pointers, strings, paths, arrays and
//! flags. Each check names the argument in its error, and NULL is always an error here.
use std::ffi::{c_char, CStr};
use std::mem::size_of;
use std::path::PathBuf;
use std::ptr;

use super::boundary::{FfiError, FfiResult, DA3_ERR_NULL_POINTER};

/// An opaque handle C holds as a pointer (`da3_model`, `da3_result`): the one place where such
/// a pointer is made, read and released, so every handle goes through the same checks.
pub(super) trait Handle: Sized {
    /// Moves the value to the heap and hands its ownership to C.
    fn into_raw(self) -> *mut Self {
        Box::into_raw(Box::new(self))
    }

    /// Takes ownership back from C and drops the value; NULL is a no-op.
    ///
    /// # Safety
    /// `ptr` is NULL or came from `into_raw` on this type and is not used again.
    unsafe fn free(ptr: *mut Self) {
        if !ptr.is_null() {
            // SAFETY: made by `Box::into_raw` in `into_raw`, released once per the caller.
            drop(unsafe { Box::from_raw(ptr) });
        }
    }

    /// Borrows the handle behind `ptr`; NULL is `DA3_ERR_NULL_POINTER` naming `what`.
    ///
    /// # Safety
    /// `ptr` is NULL or a live handle (from `into_raw`, not yet freed) that outlives `'a`.
    unsafe fn borrow<'a>(ptr: *const Self, what: &str) -> FfiResult<&'a Self> {
        // SAFETY: forwarded to the caller.
        unsafe { ref_arg(ptr, what) }
    }
}

/// # Safety
/// `ptr` is NULL or points to a valid `T` that outlives `'a`.
unsafe fn ref_arg<'a, T>(ptr: *const T, what: &str) -> FfiResult<&'a T> {
    // SAFETY: forwarded to the caller.
    unsafe { ptr.as_ref() }.ok_or_else(|| FfiError::null(what))
}

/// Checks an out-pointer and sets `*out = NULL`, so it is NULL on every later failure.
///
/// # Safety
/// `out` is NULL or valid for writing a pointer.
pub(super) unsafe fn out_arg<'a, T>(out: *mut *mut T, what: &str) -> FfiResult<&'a mut *mut T> {
    // SAFETY: forwarded to the caller.
    let out = unsafe { out.as_mut() }.ok_or_else(|| FfiError::null(what))?;
    *out = ptr::null_mut();
    Ok(out)
}

/// # Safety
/// `ptr` is NULL or points to a NUL-terminated string that outlives `'a`.
pub(super) unsafe fn cstr_arg<'a>(ptr: *const c_char, what: &str) -> FfiResult<&'a CStr> {
    if ptr.is_null() {
        return Err(FfiError::null(what));
    }
    // SAFETY: non-NULL, and NUL-terminated per the caller.
    Ok(unsafe { CStr::from_ptr(ptr) })
}

pub(super) fn utf8_arg<'a>(s: &'a CStr, what: &str) -> FfiResult<&'a str> {
    s.to_str().map_err(|_| FfiError::invalid(format!("{what} is not valid UTF-8: {}", s.to_string_lossy())))
}

/// A C path: raw bytes on Unix (any file name works), UTF-8 elsewhere.
pub(super) fn path_arg(s: &CStr, what: &str) -> FfiResult<PathBuf> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let _ = what;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(s.to_bytes())))
    }
    #[cfg(not(unix))]
    {
        Ok(PathBuf::from(utf8_arg(s, what)?))
    }
}

/// # Safety
/// `ptr` is NULL or points to `n` readable `T`s that outlive `'a`.
pub(super) unsafe fn slice_arg<'a, T>(ptr: *const T, n: usize, what: &str, count_name: &str) -> FfiResult<&'a [T]> {
    if n == 0 {
        return Err(FfiError::invalid(format!("{count_name} is 0: at least one is needed")));
    }
    if ptr.is_null() {
        return Err(FfiError::new(
            DA3_ERR_NULL_POINTER,
            format!("null pointer: {what} is NULL but {count_name} is {n}"),
        ));
    }
    if n.checked_mul(size_of::<T>()).map_or(true, |bytes| bytes > isize::MAX as usize) {
        return Err(FfiError::invalid(format!("{count_name} = {n} is absurdly large")));
    }
    // SAFETY: non-NULL, size checked, readable per the caller.
    Ok(unsafe { std::slice::from_raw_parts(ptr, n) })
}

/// A C boolean carried as `uint32_t`: 0 or 1, anything else is an error (not silently true).
pub(super) fn flag_from_c(value: u32, field: &str) -> FfiResult<bool> {
    match value {
        0 => Ok(false),
        1 => Ok(true),
        other => Err(FfiError::invalid(format!("{field} is {other}: must be 0 or 1"))),
    }
}
