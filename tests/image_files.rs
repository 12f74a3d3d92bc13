//! Image files against hostile input (issue 11): the size limits checked from the header,
//! the bounded read of special and oversized files, and truncated JPEGs refused as PIL
//! refuses them, with valid JPEGs still decoded bit for bit as PIL decodes them.
mod common;

use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use da3::preprocess::{decode_image, load_image, MAX_IMAGE_FILE_BYTES, MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE};

/// A baseline JPEG header (SOI, one quantisation table, SOF0 claiming `width` x `height` with
/// three 4:4:4 components, one DC and one AC Huffman table, SOS) followed by `scan` bytes of
/// entropy-coded data and no end marker: a few hundred bytes that claim any size.
fn jpeg_claiming(width: u16, height: u16, scan: &[u8]) -> Vec<u8> {
    let mut jpeg = vec![0xFF, 0xD8];
    let mut segment = |marker: u8, body: &[u8]| {
        jpeg.extend_from_slice(&[0xFF, marker]);
        jpeg.extend_from_slice(&((body.len() + 2) as u16).to_be_bytes());
        jpeg.extend_from_slice(body);
    };
    let mut dqt = vec![0x00];
    dqt.extend_from_slice(&[1; 64]);
    segment(0xDB, &dqt);
    let [wh, wl] = width.to_be_bytes();
    let [hh, hl] = height.to_be_bytes();
    segment(0xC0, &[8, hh, hl, wh, wl, 3, 1, 0x11, 0, 2, 0x11, 0, 3, 0x11, 0]);
    // DC table 0 and AC table 0, each with a single 1-bit code for symbol 0.
    let table = |class_id: u8| {
        let mut body = vec![class_id, 1];
        body.extend_from_slice(&[0; 15]);
        body.push(0);
        body
    };
    let (dc, ac) = (table(0x00), table(0x10));
    segment(0xC4, &dc);
    segment(0xC4, &ac);
    segment(0xDA, &[3, 1, 0x00, 2, 0x00, 3, 0x00, 0, 63, 0]);
    jpeg.extend_from_slice(scan);
    jpeg
}

/// The tests of this binary run one at a time, so that one can measure the process's peak
/// memory while it decodes.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn load_err(path: &Path) -> String {
    match load_image(path) {
        Ok(img) => panic!("{} decoded ({}x{}) but must be refused", path.display(), img.width, img.height),
        Err(e @ da3::Error::Image { .. }) => e.to_string(),
        Err(other) => panic!("{}: not an image error: {other}", path.display()),
    }
}

fn assert_has(message: &str, words: &[&str]) {
    for w in words {
        assert!(message.contains(w), "message {message:?} lacks {w:?}");
    }
}

#[test]
fn a_jpeg_claiming_65500_squared_is_refused_from_its_header() {
    let _serial = serial();
    let dir = temp_dir();
    let path = dir.path().join("bomb.jpg");
    std::fs::write(&path, jpeg_claiming(65500, 65500, &[0; 64])).unwrap();
    let start = Instant::now();
    let message = load_err(&path);
    // Each side is within DA3_IMAGE_MAX_SIDE (65500 is JPEG's largest); the product is not.
    assert_has(&message, &["65500x65500", "4290250000", &MAX_IMAGE_PIXELS.to_string(), "DA3_IMAGE_MAX_PIXELS"]);
    assert!(start.elapsed() < Duration::from_secs(1), "took {:?}", start.elapsed());
}

#[test]
fn a_jpeg_over_the_pixel_limit_is_refused_from_its_header() {
    let _serial = serial();
    // 13400 x 13400 = 179.6 million pixels: both sides allowed, their product not.
    let message = decode_image(&jpeg_claiming(13400, 13400, &[0; 64])).unwrap_err();
    assert_has(&message, &["13400x13400", "179560000", &MAX_IMAGE_PIXELS.to_string(), "DA3_IMAGE_MAX_PIXELS"]);
}

/// The process's peak resident memory in bytes since the last `reset_peak_memory`.
fn peak_memory() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM");
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() * 1024
}

fn reset_peak_memory() {
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
}

#[test]
fn a_small_jpeg_claiming_12000_squared_fails_fast_on_its_missing_data() {
    let _serial = serial();
    // Under the pixel limit (a real 144-megapixel photo would decode), but its 64 bytes of scan
    // run out on the first rows: refused as truncated at once, not decoded into 432 MB of grey
    // (before: DA3_OK after a 1.3 GB peak).
    let jpeg = jpeg_claiming(12000, 12000, &[0; 64]);
    reset_peak_memory();
    let before = peak_memory();
    let start = Instant::now();
    let message = decode_image(&jpeg).unwrap_err();
    let grown = peak_memory().saturating_sub(before);
    assert_has(&message, &["truncated", "of 12000"]);
    assert!(start.elapsed() < Duration::from_secs(2), "took {:?}", start.elapsed());
    assert!(grown < 64 << 20, "peak memory grew by {grown} bytes");
}

/// A PNG header (signature and IHDR with a correct CRC) claiming `width` x `height` RGB8, then
/// one empty IDAT and IEND.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    let mut png = vec![0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A];
    let mut chunk = |kind: &[u8; 4], body: &[u8]| {
        png.extend_from_slice(&(body.len() as u32).to_be_bytes());
        let mut crc_input = kind.to_vec();
        crc_input.extend_from_slice(body);
        png.extend_from_slice(&crc_input);
        png.extend_from_slice(&crc32(&crc_input).to_be_bytes());
    };
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &[0x78, 0x9C, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01]);
    chunk(b"IEND", &[]);
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn pngs_over_the_limits_are_refused_from_their_header() {
    let _serial = serial();
    let message = decode_image(&png_claiming(100_000, 10)).unwrap_err();
    assert_has(&message, &["PNG", "100000x10", &MAX_IMAGE_SIDE.to_string(), "DA3_IMAGE_MAX_SIDE"]);
    let message = decode_image(&png_claiming(20_000, 20_000)).unwrap_err();
    assert_has(&message, &["PNG", "20000x20000", "400000000", "DA3_IMAGE_MAX_PIXELS"]);
    // Within the limits the same header reaches the decoder, which finds the data missing.
    let message = decode_image(&png_claiming(64, 64)).unwrap_err();
    assert!(!message.contains("DA3_IMAGE_MAX"), "{message}");
}

#[test]
fn special_files_are_refused_before_reading() {
    let _serial = serial();
    let dir = temp_dir();
    let zero = dir.path().join("zero.jpg");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    assert_has(&load_err(&zero), &["not a regular file", "character device"]);
    let fifo = dir.path().join("fifo.png");
    let status = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(status.success());
    // Opening a FIFO for reading would block until a writer came: this must return at once.
    assert_has(&load_err(&fifo), &["not a regular file", "FIFO"]);
    assert_has(&load_err(dir.path()), &["not a regular file", "directory"]);
}

#[test]
fn a_sparse_file_over_the_byte_limit_is_refused_unread() {
    let _serial = serial();
    let dir = temp_dir();
    let path = dir.path().join("sparse.jpg");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(20 << 30).unwrap(); // 20 GiB of holes: no disk used
    let start = Instant::now();
    assert_has(&load_err(&path), &["21474836480 bytes", &MAX_IMAGE_FILE_BYTES.to_string(), "DA3_IMAGE_MAX_FILE_BYTES"]);
    assert!(start.elapsed() < Duration::from_secs(1), "took {:?}", start.elapsed());
}

/// Fixtures written and decoded by PIL (`tests/image_files/pil_jpeg.py`).
struct PilJpegs {
    dir: tempfile::TempDir,
    report: serde_json::Value,
}

fn pil_jpegs() -> PilJpegs {
    let root = common::repo_root();
    let dir = temp_dir();
    let out = Command::new(root.join(".venv/bin/python"))
        .arg(root.join("tests/image_files/pil_jpeg.py"))
        .arg(root.join("assets/images/soh_000.png"))
        .arg(dir.path())
        .output()
        .expect("cannot run .venv/bin/python (scripts/setup.sh makes it)");
    assert!(out.status.success(), "pil_jpeg.py failed: {}", String::from_utf8_lossy(&out.stderr));
    let report = serde_json::from_slice(&out.stdout).expect("JSON report");
    PilJpegs { dir, report }
}

impl PilJpegs {
    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

#[test]
fn valid_jpegs_decode_bit_identical_to_pil() {
    let _serial = serial();
    let pil = pil_jpegs();
    let fixtures = pil.report.as_object().unwrap();
    assert_eq!(fixtures.len(), 6);
    for (name, info) in fixtures {
        let img = load_image(&pil.file(&format!("{name}.jpg"))).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((img.width as u64, img.height as u64), (info["width"].as_u64().unwrap(), info["height"].as_u64().unwrap()));
        assert!(img.data == std::fs::read(pil.file(&format!("{name}.rgb"))).unwrap(), "{name}: pixels differ from PIL's");
    }
}

#[test]
fn truncated_jpegs_are_refused_where_pil_refuses_them() {
    let _serial = serial();
    let pil = pil_jpegs();
    let mut checked = 0;
    for (name, info) in pil.report.as_object().unwrap() {
        let whole = std::fs::read(pil.file(&format!("{name}.jpg"))).unwrap();
        for cut in info["cuts"].as_array().unwrap() {
            let (length, pil_accepts) = (cut[0].as_u64().unwrap() as usize, cut[1].as_bool().unwrap());
            match (decode_image(&whole[..length]), pil_accepts) {
                (Err(_), false) => {}
                (Ok(img), true) => {
                    let expected = std::fs::read(pil.file(&format!("{name}.cut{length}.rgb"))).unwrap();
                    assert!(img.data == expected, "{name} cut to {length} bytes: pixels differ from PIL's");
                }
                (Ok(_), false) => panic!("{name} cut to {length} of {} bytes decodes, PIL refuses it", whole.len()),
                (Err(e), true) => panic!("{name} cut to {length} bytes: PIL decodes it, we refuse: {e}"),
            }
            checked += 1;
        }
    }
    assert!(checked > 5000, "only {checked} cuts");
}

#[test]
fn the_c_api_reports_each_bad_file_as_an_image_error() {
    let _serial = serial();
    use da3::ffi::*;
    let dir = temp_dir();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let pil = pil_jpegs();
    let whole = std::fs::read(pil.file("baseline420.jpg")).unwrap();
    let zero = dir.path().join("zero.jpg");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let fifo = dir.path().join("fifo.jpg");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let sparse = dir.path().join("sparse.jpg");
    std::fs::File::create(&sparse).unwrap().set_len(MAX_IMAGE_FILE_BYTES + 1).unwrap();
    let cases: Vec<(PathBuf, &[&str])> = vec![
        (write("bomb.jpg", &jpeg_claiming(65500, 65500, &[0; 64])), &["bomb.jpg", "DA3_IMAGE_MAX_PIXELS", "65500x65500"]),
        (write("12000.jpg", &jpeg_claiming(12000, 12000, &[0; 64])), &["12000.jpg", "truncated"]),
        (write("cut.jpg", &whole[..whole.len() / 2]), &["cut.jpg", "truncated"]),
        (zero, &["zero.jpg", "character device"]),
        (fifo, &["fifo.jpg", "FIFO"]),
        (sparse, &["sparse.jpg", "DA3_IMAGE_MAX_FILE_BYTES"]),
    ];
    let checkpoint = CString::new(common::oracle_checkpoint("da3-small").to_str().unwrap()).unwrap();
    let mut model = std::ptr::null_mut();
    // SAFETY: valid arguments; the model is freed below.
    assert_eq!(unsafe { da3_create(checkpoint.as_ptr(), false, DA3_PRECISION_FP32, &mut model) }, da3_status::DA3_OK);
    let infer = |path: &Path| {
        let c_path = CString::new(path.to_str().unwrap()).unwrap();
        let paths = [c_path.as_ptr()];
        let mut result = std::ptr::null_mut();
        // SAFETY: a live model, one valid path, default options.
        let status = unsafe { da3_infer_files(model, paths.as_ptr(), 1, std::ptr::null(), &mut result) };
        let message = unsafe { CStr::from_ptr(da3_last_error_message()) }.to_string_lossy().into_owned();
        if !result.is_null() {
            unsafe { da3_result_free(result) };
        }
        (status, message)
    };
    for (path, words) in &cases {
        let (status, message) = infer(path);
        assert_eq!(status, da3_status::DA3_ERR_IMAGE, "{}: {message}", path.display());
        assert_has(&message, words);
    }
    // The handle still serves a valid file.
    assert_eq!(infer(&pil.file("baseline420.jpg")).0, da3_status::DA3_OK);
    unsafe { da3_free(model) };
}

#[test]
fn libjpeg_errors_carry_its_message() {
    let _serial = serial();
    let mut jpeg = jpeg_claiming(16, 16, &[0; 64]);
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
    jpeg[sof + 4] = 7; // sample precision
    let message = decode_image(&jpeg).unwrap_err();
    assert_has(&message, &["invalid JPEG", "Unsupported JPEG data precision 7"]);
}

#[test]
fn a_jpeg_that_pil_finds_broken_after_its_rows_is_an_error() {
    let _serial = serial();
    // Found by the image_bytes fuzzer (a timeout under ASan): 320 bytes claiming 12000x12000
    // whose scan is cut by a second frame header. libjpeg decodes every row (grey past the
    // cut, with a warning) and then fails on the marker; PIL says "broken data stream".
    let jpeg = std::fs::read(common::repo_root().join("tests/image_files/two_sof_12000x12000.jpg")).unwrap();
    assert_eq!(jpeg.len(), 320);
    assert_has(&decode_image(&jpeg).unwrap_err(), &["invalid JPEG", "two SOF markers"]);
}
