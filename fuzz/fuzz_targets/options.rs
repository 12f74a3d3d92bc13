//! Arbitrary bytes as a C `da3_options` (any `struct_size`, every published version, any enum
//! and flag values, camera arrays and feature-layer lists) through the boundary's reading and
//! checks (`options_arg`, `InferOptions::check`, the known cameras checked for the call's view
//! count) and `da3_options_validate`.
//!
//! Every pointer the struct carries is NULL, a fuzzer-owned buffer holding what the contract
//! promises for the call's view count, or (to probe the alignment check) that buffer moved by
//! 1 to 3 bytes; the cancel pointer is NULL or a live token.
#![no_main]
use std::mem::size_of;
use std::ptr;

use arbitrary::Arbitrary;
use da3::ffi::fuzzing::call_options;
use da3::ffi::{da3_cancel_token, da3_cancel_token_free, da3_cancel_token_new, da3_options, da3_options_validate, da3_status};
use da3::InferOptions;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    /// The struct's bytes as the caller wrote them (the pointers are replaced below).
    raw: [u8; size_of::<da3_options>()],
    /// Which `struct_size`: 0..=3 the published versions, 4 this header's, else `raw`'s own.
    size_choice: u8,
    views: u8,
    extrinsics: Option<Vec<f32>>,
    intrinsics: Option<Vec<f32>>,
    layers: Option<Vec<u32>>,
    /// Bytes to move a pointer off its alignment (0 keeps it aligned).
    misalign: [u8; 3],
    cancel: bool,
}

/// The published sizes on this platform (see `da3_options`' doc).
const VERSIONS: [u32; 4] = [16, 24, 32 + 3 * size_of::<usize>() as u32, size_of::<da3_options>() as u32];

/// `values` cycled to `len` floats, with an extra element for a misaligned start.
fn buffer<T: Copy + Default>(values: &[T], len: usize) -> Vec<T> {
    (0..len + 1).map(|i| values.get(i % values.len().max(1)).copied().unwrap_or_default()).collect()
}

fn pointer<T>(buffer: &[T], shift: u8) -> *const T {
    let shift = (shift % 4) as usize;
    // SAFETY: within the buffer, which has one element to spare.
    unsafe { buffer.as_ptr().cast::<u8>().add(shift).cast() }
}

fuzz_target!(|input: Input| {
    // SAFETY: every bit pattern is a valid da3_options value (integers and raw pointers).
    let mut options: da3_options = unsafe { ptr::read_unaligned(input.raw.as_ptr().cast()) };
    if let Some(&size) = VERSIONS.get(input.size_choice as usize) {
        options.struct_size = size;
    }
    let views = 1 + input.views as usize % 16;
    // Buffers that hold what the contract promises for `views` views: rows 3 or 4 (other
    // values are refused before the pointers are read, so 4 rows are enough then).
    let rows = if options.extrinsics_rows == 3 { 3 } else { 4 };
    let extrinsics = input.extrinsics.as_deref().map(|v| buffer(v, views * rows * 4));
    let intrinsics = input.intrinsics.as_deref().map(|v| buffer(v, views * 9));
    let layers = input.layers.as_deref().map(|v| buffer(v, v.len().min(256)));
    options.extrinsics = extrinsics.as_deref().map_or(ptr::null(), |b| pointer(b, input.misalign[0]));
    options.intrinsics = intrinsics.as_deref().map_or(ptr::null(), |b| pointer(b, input.misalign[1]));
    options.export_feat_layers = layers.as_deref().map_or(ptr::null(), |b| pointer(b, input.misalign[2]));
    if let Some(layers) = &layers {
        // The count may be anything up to what the buffer holds (0 included).
        options.export_feat_layer_count %= layers.len() as u32;
    }
    let mut token: *mut da3_cancel_token = ptr::null_mut();
    if input.cancel {
        // SAFETY: a valid out-pointer.
        assert_eq!(unsafe { da3_cancel_token_new(&mut token) }, da3_status::DA3_OK);
    }
    options.cancel = token;

    // SAFETY: the struct and everything it points to are live for these calls, as above.
    let result = unsafe { call_options(&options, views) };
    let validated = unsafe { da3_options_validate(&options) };
    match result {
        Ok((checked, known)) => {
            assert_eq!(validated, da3_status::DA3_OK);
            let res = checked.preprocess().process_res;
            assert!((14..=InferOptions::MAX_PROCESS_RES).contains(&res), "process_res {res} accepted");
            if let Some(known) = known {
                assert_eq!((known.extrinsics.len(), known.intrinsics.len()), (views, views));
                assert!(known.extrinsics.iter().flatten().chain(known.intrinsics.iter().flatten()).all(|v| v.is_finite()));
            }
        }
        Err((status, message)) => {
            assert!(status != da3_status::DA3_OK && !message.is_empty());
        }
    }
    if !token.is_null() {
        // SAFETY: made above, freed once.
        unsafe { da3_cancel_token_free(token) };
    }
});
