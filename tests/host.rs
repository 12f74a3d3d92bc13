//! The host in charge, in the safe core and through the C ABI's Rust exports: a cancel token
//! stops a call (set before it, or from another thread while a multi-view CPU forward runs)
//! and the engine stays usable; a load reports its progress and can be aborted; the thread
//! counts given at load apply; libda3's notes reach the host's log callback.
//! Uses the oracle's da3-small checkpoint.
use std::ffi::{c_char, c_void, CStr, CString};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use da3::{CancelToken, CheckedOptions, Engine, Error, ImageView, InferOptions, LoadOptions, PixelFormat, Precision, Scene, Views};

mod common;

fn checkpoint() -> String {
    common::oracle_checkpoint("da3-small").to_str().unwrap().to_owned()
}

const W: u32 = 320;
const H: u32 = 240;
const VIEWS: u32 = 6;

fn options(process_res: u32) -> CheckedOptions {
    InferOptions { process_res, ..InferOptions::default() }.check().unwrap()
}

fn load() -> Engine {
    Engine::load(&checkpoint(), LoadOptions::new(false, Precision::Fp32)).expect("loads")
}

#[test]
fn a_token_cancelled_before_the_call_stops_it_at_once() {
    let engine = load();
    let buffers: Vec<Vec<u8>> = (0..2).map(|s| common::pattern(W, H, s)).collect();
    let views: Vec<ImageView<'_>> = buffers.iter().map(|b| ImageView::new(b, W, H, (W * 3) as usize, PixelFormat::Rgb8).unwrap()).collect();
    let token = CancelToken::new();
    token.cancel();
    let opts = options(112).with_cancel_token(Some(token.clone()));
    let started = Instant::now();
    match engine.infer(&Scene::new(Views::Images(&views)), &opts) {
        Err(Error::Cancelled(m)) => assert!(m.contains("before preprocessing"), "{m}"),
        other => panic!("expected Cancelled, got {:?}", other.map(|p| p.views)),
    }
    assert!(started.elapsed() < Duration::from_millis(200), "took {:?}", started.elapsed());
    assert_eq!(token.polls(), 1, "stopped at the first check");
    // The batch API too: every scene cancelled.
    let scenes = [Scene::new(Views::Images(&views)), Scene::new(Views::Images(&views[..1]))];
    assert!(engine.infer_scenes(&scenes, &opts).iter().all(|r| matches!(r, Err(Error::Cancelled(_)))));
    // Reset: the same token lets the next call through.
    token.reset();
    let p = engine.infer(&Scene::new(Views::Images(&views)), &opts).expect("runs after reset");
    assert_eq!(p.views, 2);
}

#[test]
fn a_token_cancelled_from_another_thread_stops_a_running_forward() {
    let engine = load();
    let buffers: Vec<Vec<u8>> = (0..VIEWS).map(|s| common::pattern(W, H, s)).collect();
    let views: Vec<ImageView<'_>> = buffers.iter().map(|b| ImageView::new(b, W, H, (W * 3) as usize, PixelFormat::Rgb8).unwrap()).collect();
    let scene = Scene::new(Views::Images(&views));
    let token = CancelToken::new();
    let opts = options(504).with_cancel_token(Some(token.clone()));

    // Uncancelled first: the reference, and how long the whole call takes.
    let started = Instant::now();
    let expected = engine.infer(&scene, &options(504)).expect("reference");
    let whole = started.elapsed();

    // polls: 1 before preprocessing, 2 after, 3 before block 0, 4 before block 1: once 4 are
    // seen the forward is inside the backbone (12 blocks), and the canceller fires.
    let canceller = {
        let token = token.clone();
        std::thread::spawn(move || {
            while token.polls() < 4 {
                std::thread::sleep(Duration::from_micros(200));
            }
            token.cancel();
            Instant::now()
        })
    };
    let started = Instant::now();
    let result = engine.infer(&scene, &opts);
    let returned = Instant::now();
    let cancelled_at = canceller.join().unwrap();
    match result {
        Err(Error::Cancelled(m)) => assert!(m.contains("backbone block"), "stopped mid-forward: {m}"),
        other => panic!("expected Cancelled, got {:?}", other.map(|p| p.views)),
    }
    let latency = returned.duration_since(cancelled_at);
    println!("whole call {whole:?}; cancelled call {:?}; cancel -> return {latency:?}; polls {}", returned - started, token.polls());
    assert!(token.polls() < 2 + 12, "the backbone did not run to its end: {} polls", token.polls());
    assert!(latency < whole / 2, "cancel -> return took {latency:?}, the whole call {whole:?}");

    // The engine stays usable: the next call (token reset) gives the same result.
    token.reset();
    let again = engine.infer(&scene, &opts).expect("runs after a cancelled call");
    assert_eq!(again.depth, expected.depth);
}

#[test]
fn a_load_reports_progress_and_can_be_aborted_and_takes_thread_counts() {
    let seen: Arc<Mutex<Vec<(f32, String)>>> = Arc::default();
    let into = seen.clone();
    let engine = Engine::load(
        &checkpoint(),
        LoadOptions::new(false, Precision::Fp32)
            .with_torch_threads(Some(1))
            .with_preprocess_threads(Some(1))
            .with_progress(move |f, stage| {
                into.lock().unwrap().push((f, stage.to_owned()));
                true
            }),
    )
    .expect("loads");
    assert_eq!(tch::get_num_threads(), 1, "libtorch's threads as asked");
    assert_eq!(engine.preprocess_threads(), 1);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.first(), Some(&(0.0, "resolve".to_owned())), "{seen:?}");
    assert_eq!(seen.last(), Some(&(1.0, "done".to_owned())), "{seen:?}");
    assert!(seen.windows(2).all(|w| w[0].0 <= w[1].0), "never decreasing: {seen:?}");
    for stage in ["read", "build"] {
        assert!(seen.iter().any(|(_, s)| s == stage), "no '{stage}' in {seen:?}");
    }
    assert!(seen.len() > 10, "reported along the way: {seen:?}");

    // Returning false while building aborts the load.
    let calls = Arc::new(Mutex::new(0));
    let counted = calls.clone();
    let aborted = Engine::load(
        &checkpoint(),
        LoadOptions::new(false, Precision::Fp32).with_progress(move |f, stage| {
            *counted.lock().unwrap() += 1;
            !(stage == "build" && f > 0.5)
        }),
    );
    match aborted {
        Err(Error::Cancelled(m)) => assert!(m.contains("progress callback") && m.contains("build"), "{m}"),
        Err(other) => panic!("expected Cancelled, got {other}"),
        Ok(_) => panic!("expected Cancelled, the load went through"),
    }
    let after_abort = *calls.lock().unwrap();
    assert!(after_abort > 2, "{after_abort} calls");
}

static NOTES: Mutex<Vec<(u32, String)>> = Mutex::new(Vec::new());

unsafe extern "C" fn collect(level: u32, message: *const c_char, user_data: *mut c_void) {
    assert_eq!(user_data as usize, 42);
    // SAFETY: the library passes a NUL-terminated string valid during the call.
    let message = unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned();
    NOTES.lock().unwrap().push((level, message));
}

#[test]
fn notes_reach_the_log_callback_through_the_c_abi() {
    use da3::ffi::*;
    // SAFETY: `collect` is thread-safe and ignores user_data beyond checking it.
    assert_eq!(unsafe { da3_log_set(Some(collect), 42usize as *mut c_void) }, da3_status::DA3_OK);
    assert_eq!(da3_log_set_level(DA3_LOG_INFO), da3_status::DA3_OK);
    assert_eq!(da3_log_get_level(), DA3_LOG_INFO);
    assert_eq!(da3_log_set_level(9), da3_status::DA3_ERR_INVALID_ARGUMENT);
    let model = CString::new(checkpoint()).unwrap();
    let mut out = std::ptr::null_mut();
    // SAFETY: valid arguments.
    let status = unsafe { da3_create_with_options(model.as_ptr(), false, DA3_PRECISION_AUTO, std::ptr::null(), &mut out) };
    assert_eq!(status, da3_status::DA3_OK);
    // SAFETY: the handle just made.
    unsafe { da3_free(out) };
    // SAFETY: NULL restores stderr.
    assert_eq!(unsafe { da3_log_set(None, std::ptr::null_mut()) }, da3_status::DA3_OK);
    let count = NOTES.lock().unwrap().len();
    da3::log::info("after the callback was removed");
    assert_eq!(da3_log_set_level(DA3_LOG_WARN), da3_status::DA3_OK);
    let notes = NOTES.lock().unwrap().clone();
    assert_eq!(notes.len(), count, "nothing after da3_log_set(NULL)");
    let load = notes.iter().find(|(_, m)| m.starts_with("loading da3-small")).unwrap_or_else(|| panic!("{notes:?}"));
    assert_eq!(load.0, DA3_LOG_INFO);
    assert!(load.1.contains("precision Auto -> Fp32") && load.1.contains("cpu"), "{}", load.1);
}
