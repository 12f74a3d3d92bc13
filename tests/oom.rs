//! Out of memory through the C API, forced on the CPU: the call fails with
//! `DA3_ERR_OUT_OF_MEMORY` and a short message (libtorch's first line and the operation, no
//! C++ backtrace), and the same handle then serves a smaller request.
//!
//! The process's address space is capped (`RLIMIT_AS`) a few hundred MB above what the loaded
//! model uses, so a request whose activations need more makes libtorch's CPU allocator fail
//! at once, as a GPU's would. Its own test binary: the cap is process-wide.
use std::ffi::{CStr, CString};
use std::ptr;

use da3::ffi::*;

mod common;

fn checkpoint() -> CString {
    CString::new(common::oracle_checkpoint("da3-small").to_str().unwrap()).unwrap()
}

fn last_error() -> String {
    // SAFETY: the library returns a valid NUL-terminated string for this thread.
    unsafe { CStr::from_ptr(da3_last_error_message()) }.to_string_lossy().into_owned()
}

/// Virtual memory the process maps now, in bytes (`VmSize` of /proc/self/status).
fn mapped_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmSize:")).expect("VmSize");
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

fn set_address_space_limit(bytes: u64) -> libc::rlimit {
    let mut old = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain getrlimit/setrlimit with valid pointers; only the soft limit changes, so
    // it can be raised again below.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_AS, &mut old), 0);
        let new = libc::rlimit { rlim_cur: bytes.min(old.rlim_max), rlim_max: old.rlim_max };
        assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &new), 0);
    }
    old
}

/// `views` normalised 3 x `side` x `side` views through `da3_infer_preprocessed`.
fn infer(model: *const da3_model, images: &[f32], views: usize, side: u32) -> (da3_status, *mut da3_result) {
    let mut result = ptr::null_mut();
    // SAFETY: `images` holds views * 3 * side * side floats; `result` is a valid out-pointer.
    let status = unsafe { da3_infer_preprocessed(model, images.as_ptr(), views, side, side, ptr::null(), &mut result) };
    (status, result)
}

#[test]
fn out_of_memory_is_its_own_status_and_the_handle_stays_usable() {
    let path = checkpoint();
    let mut model = ptr::null_mut();
    // SAFETY: valid C string and out-pointer.
    let status = unsafe { da3_create(path.as_ptr(), false, DA3_PRECISION_FP32, &mut model) };
    assert_eq!(status, da3_status::DA3_OK, "{}", last_error());

    // Warm up at a small size: libtorch's thread pool and lazily built state exist before the cap.
    let small: Vec<f32> = (0..3 * 56 * 56).map(|i| ((i % 97) as f32 - 48.0) / 50.0).collect();
    let (status, result) = infer(model, &small, 1, 56);
    assert_eq!(status, da3_status::DA3_OK, "{}", last_error());
    // SAFETY: a result of this library, freed once.
    unsafe { da3_result_free(result) };

    // 32 views of 518 x 518: the first block alone needs about a gigabyte of activations.
    let (views, side) = (32usize, 518u32);
    let large: Vec<f32> = (0..views * 3 * (side * side) as usize).map(|i| ((i % 89) as f32 - 44.0) / 45.0).collect();
    // Reached without a panic: libtorch's error comes back as a value all the way up.
    static PANICKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| PANICKED.store(true, std::sync::atomic::Ordering::SeqCst)));
    let old = set_address_space_limit(mapped_bytes() + 512 * 1024 * 1024);
    let (status, result) = infer(model, &large, views, side);
    let message = last_error();
    // SAFETY: restores the soft limit read above (never above the hard limit).
    unsafe { assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &old), 0) };
    std::panic::set_hook(default_hook);
    assert_eq!(status, da3_status::DA3_ERR_OUT_OF_MEMORY, "{message}");
    assert!(!PANICKED.load(std::sync::atomic::Ordering::SeqCst), "the out-of-memory error went through a panic");
    assert!(result.is_null());
    assert!(message.starts_with("out of memory: "), "{message}");
    assert!(message.contains("cpu"), "the message names the device: {message}");
    for backtrace in ["frame #", "Exception raised from", "\n"] {
        assert!(!message.contains(backtrace), "the message carries a backtrace ({backtrace:?}): {message}");
    }
    assert!(message.len() < 400, "{} characters: {message}", message.len());

    // The same handle serves the next request.
    let (status, result) = infer(model, &small, 1, 56);
    assert_eq!(status, da3_status::DA3_OK, "after the failure: {}", last_error());
    // SAFETY: as above; the model handle is freed once.
    unsafe {
        assert_eq!(da3_result_view_count(result), 1);
        da3_result_free(result);
        da3_free(model);
    }
}
