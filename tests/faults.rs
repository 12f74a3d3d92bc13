//! Injected failures (issue 11, "Faults"): out of memory in preprocessing, at each stage of the
//! forward (before a backbone block, between the backbone and the head) and while the outputs
//! are copied to the host. Each call fails with `DA3_ERR_OUT_OF_MEMORY` (or the injected
//! libtorch error), nothing is returned, and the same handle's next call gives the result it
//! gave before the fault, bit for bit. Needs the failpoints build:
//! `cargo test --release --locked --features failpoints --test faults`.
#![cfg(feature = "failpoints")]

use std::ffi::{CStr, CString};
use std::ptr;

use da3::faults;
use da3::ffi::*;

mod common;

fn last_error() -> String {
    // SAFETY: the library returns a valid NUL-terminated string for this thread.
    unsafe { CStr::from_ptr(da3_last_error_message()) }.to_string_lossy().into_owned()
}

/// Depth and confidence of one call, or its status and message.
fn infer(model: *const da3_model, views: &[(Vec<u8>, u32, u32)], o: &da3_options) -> Result<Vec<f32>, (da3_status, String)> {
    let images: Vec<da3_image> = views
        .iter()
        .map(|(d, w, h)| da3_image { data: d.as_ptr(), width: *w, height: *h, stride: *w as usize * 3, format: DA3_PIXEL_RGB8 })
        .collect();
    let mut result = ptr::null_mut();
    // SAFETY: every view points at its own buffer; valid out-pointer.
    let status = unsafe { da3_infer(model, images.as_ptr(), images.len(), o, &mut result) };
    if status != da3_status::DA3_OK {
        assert!(result.is_null(), "a failed call returns no result");
        return Err((status, last_error()));
    }
    // SAFETY: a live result; its maps hold views * height * width floats until it is freed.
    let out = unsafe {
        let n = da3_result_view_count(result) * da3_result_height(result) as usize * da3_result_width(result) as usize;
        let depth = std::slice::from_raw_parts(da3_result_depth_all(result), n).to_vec();
        let conf = std::slice::from_raw_parts(da3_result_confidence_all(result), n).to_vec();
        da3_result_free(result);
        [depth, conf].concat()
    };
    Ok(out)
}

#[test]
fn every_injected_failure_is_an_error_and_the_handle_serves_the_next_call() {
    let scenario = fail::FailScenario::setup();
    let path = CString::new(common::oracle_checkpoint("da3-small").to_str().unwrap()).unwrap();
    let mut model = ptr::null_mut();
    // SAFETY: valid C string and out-pointer.
    assert_eq!(unsafe { da3_create(path.as_ptr(), false, DA3_PRECISION_FP32, &mut model) }, da3_status::DA3_OK, "{}", last_error());
    // SAFETY: a zeroed plain struct, then filled by the library.
    let mut o: da3_options = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { da3_options_default(&mut o, std::mem::size_of::<da3_options>()) }, da3_status::DA3_OK);
    o.process_res = 70;
    let views = [(common::pattern(64, 48, 1), 64, 48), (common::pattern(48, 64, 2), 48, 64)];
    let reference = infer(model, &views, &o).expect("the reference call");
    // SAFETY: a live handle.
    let blocks = unsafe { da3_model_backbone_depth(model) } as usize;
    assert_eq!(blocks, 12, "da3-small");

    let cases: Vec<(&str, String, &str)> = vec![
        (faults::PREPROCESS, "return(oom)".into(), "injected fault at da3::preprocess"),
        (faults::FORWARD, "return(oom)".into(), "the forward before backbone block 0 of 12"),
        (faults::FORWARD, "5*off->return(oom)".into(), "the forward before backbone block 5 of 12"),
        (faults::FORWARD, format!("{blocks}*off->return(oom)"), "the forward between the backbone and the head"),
        (faults::OUTPUTS, "return(oom)".into(), "injected fault at da3::outputs"),
        (faults::OUTPUTS, "1*off->return(oom)".into(), "injected fault at da3::outputs"),
        (faults::FORWARD, "3*off->return(torch)".into(), "the forward before backbone block 3 of 12"),
    ];
    for (point, action, expected) in cases {
        fail::cfg(point, &action).unwrap();
        let err = infer(model, &views, &o).expect_err(&format!("{point} {action} fails the call"));
        fail::remove(point);
        let status = if action.ends_with("(torch)") { da3_status::DA3_ERR_TORCH } else { da3_status::DA3_ERR_OUT_OF_MEMORY };
        assert_eq!(err.0, status, "{point} {action}: {}", err.1);
        assert!(err.1.contains(expected), "{point} {action}: {}", err.1);
        let again = infer(model, &views, &o).unwrap_or_else(|e| panic!("after {point} {action}: {e:?}"));
        assert!(again == reference, "after {point} {action} the handle gives a different result");
    }
    // SAFETY: a handle from da3_create, freed once.
    unsafe { da3_free(model) };
    scenario.teardown();
}
