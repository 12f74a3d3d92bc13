//! The C API seen from C: compiles `examples_c/da3_infer.c` and the C test programs in
//! `tests/c/` with `cc -std=c11 -Wall -Wextra -Werror -pedantic` (and once more with
//! `-fsanitize=address,undefined` where the compiler supports it) against the `libda3`
//! shared library that `cargo test` has just built, runs them and checks their output.
//!
//! Model-dependent parts run only when `DA3_TEST_CHECKPOINT` names a checkpoint directory;
//! otherwise they say what they skipped. `CC` picks the C compiler (default `cc`).
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const STRICT: [&str; 6] = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-pthread"];
const SANITIZE: [&str; 4] =
    ["-fsanitize=address,undefined", "-fno-omit-frame-pointer", "-fno-sanitize-recover=all", "-g"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cc() -> String {
    std::env::var("CC").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "cc".into())
}

/// Directory holding the shared library built for this test run.
///
/// `cargo test` compiles the library's cdylib next to the test executables
/// (`<target>/<profile>/deps/`) without copying it up to `<target>/<profile>/` (only
/// `cargo build` does that), so look beside this executable first, then one level up.
fn lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let name = format!("{}da3{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
        let exe = std::env::current_exe().expect("no current_exe");
        let deps = exe.parent().expect("test executable has no directory");
        let candidates = [deps.to_path_buf(), deps.parent().map(Path::to_path_buf).unwrap_or_default()];
        candidates.iter().find(|d| d.join(&name).is_file()).cloned().unwrap_or_else(|| {
            panic!(
                "{name} not found in {:?}; build it with `cargo build --release --lib` (crate-type cdylib)",
                candidates
            )
        })
    })
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_api").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles `sources` into `out` with the strict flags (plus `extra`), linked to libda3.
fn compile(sources: &[PathBuf], out: &Path, extra: &[&str]) {
    let lib = lib_dir();
    let output = Command::new(cc())
        .args(STRICT)
        .args(extra)
        .arg("-I")
        .arg(root().join("include"))
        .arg("-I")
        .arg(root().join("examples_c"))
        .arg("-o")
        .arg(out)
        .args(sources)
        .arg("-L")
        .arg(lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-lda3")
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{}`: {e}", cc()));
    assert!(
        output.status.success(),
        "compiling {sources:?} failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn text(output: &Output) -> (String, String) {
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let output = cmd.output().expect("cannot run the compiled program");
    let (out, err) = text(&output);
    (output.status.code().unwrap_or(-1), out, err)
}

/// Whether `cc -fsanitize=address,undefined` builds and runs a trivial program here.
fn sanitizers_work() -> bool {
    let dir = scratch("sanitizer-probe");
    let src = dir.join("probe.c");
    std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
    let exe = dir.join("probe");
    let built = Command::new(cc()).args(SANITIZE).arg("-o").arg(&exe).arg(&src).output();
    matches!(built, Ok(o) if o.status.success()) && matches!(Command::new(&exe).status(), Ok(s) if s.success())
}

/// Environment for sanitized runs: leaks inside libtorch's own globals are not ours, CUDA
/// needs the shadow gap unprotected, and libtorch's C++ may legitimately pair allocators in
/// ways ASan's mismatch check dislikes; everything in our C and at the API boundary is checked.
fn sanitizer_env<'a>(cmd: &'a mut Command, dir: &Path) -> &'a mut Command {
    let supp = dir.join("lsan.supp");
    std::fs::write(&supp, "leak:libtorch\nleak:libc10\nleak:libgomp\nleak:libcuda\nleak:libcudnn\n").unwrap();
    cmd.env("ASAN_OPTIONS", "detect_leaks=1:protect_shadow_gap=0:alloc_dealloc_mismatch=0:abort_on_error=0")
        .env("LSAN_OPTIONS", format!("suppressions={}:print_suppressions=0", supp.display()))
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
}

/// The checkpoint the model-dependent checks load: `DA3_TEST_CHECKPOINT`, else the oracle's
/// random-weight da3-small checkpoint (made by `scripts/test.sh`). Missing, the tests fail.
fn checkpoint() -> Option<String> {
    let path = std::env::var("DA3_TEST_CHECKPOINT")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| root().join("target/oracle/da3-small/checkpoint").display().to_string());
    assert!(
        std::path::Path::new(&path).join("model.safetensors").is_file(),
        "no checkpoint at {path}: run tests/oracle/run_oracle.sh da3-small target/oracle/da3-small or set DA3_TEST_CHECKPOINT"
    );
    Some(path)
}

fn assert_error_suite_passed(code: i32, out: &str, err: &str, what: &str) {
    println!("{out}");
    assert!(
        code == 0 && out.lines().any(|l| l.contains(" passed, 0 failed")),
        "{what} failed (exit {code}):\n{out}\n{err}"
    );
}

#[test]
fn c_error_tests_pass() {
    let dir = scratch("errors");
    let exe = dir.join("test_errors");
    compile(&[root().join("tests/c/test_errors.c")], &exe, &[]);
    let checkpoint = checkpoint().expect("checkpoint");
    let (code, out, err) = run(Command::new(&exe).env("TMPDIR", &dir).env("DA3_TEST_CHECKPOINT", checkpoint));
    assert_error_suite_passed(code, &out, &err, "tests/c/test_errors.c");
    assert!(!out.contains("skipped group"), "no group may be skipped:\n{out}");
}

#[test]
fn c_error_tests_pass_under_sanitizers() {
    if !sanitizers_work() {
        println!("skipped: `{} -fsanitize=address,undefined` does not build or run a program here", cc());
        return;
    }
    let dir = scratch("errors-asan");
    let exe = dir.join("test_errors_asan");
    compile(&[root().join("tests/c/test_errors.c")], &exe, &SANITIZE);
    let checkpoint = checkpoint().expect("checkpoint");
    let (code, out, err) =
        run(sanitizer_env(Command::new(&exe).env("TMPDIR", &dir).env("DA3_TEST_CHECKPOINT", checkpoint), &dir));
    assert!(!err.contains("ERROR: AddressSanitizer") && !err.contains("runtime error:"), "sanitizer report:\n{err}");
    assert_error_suite_passed(code, &out, &err, "tests/c/test_errors.c under ASan/UBSan");
}

#[test]
fn example_builds_strictly_and_reports_errors() {
    let dir = scratch("example");
    let exe = dir.join("da3_infer");
    compile(&[root().join("examples_c/da3_infer.c")], &exe, &[]);

    let (code, _, err) = run(&mut Command::new(&exe));
    assert_eq!(code, 2, "no arguments is a usage error:\n{err}");
    assert!(err.contains("--model is required") && err.contains("usage:"), "{err}");

    let (code, out, _) = run(Command::new(&exe).arg("--help"));
    assert_eq!(code, 0);
    assert!(out.contains("--resize-method") && out.contains("--ref-view"), "{out}");

    let (code, _, err) = run(Command::new(&exe).args(["--model", "m", "--resize-method", "sideways", "a.png"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown resize method 'sideways'"), "{err}");

    let (code, _, err) = run(Command::new(&exe).args(["--model", "m", "--precision", "fp8", "a.png"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown precision 'fp8'"), "{err}");

    // Library errors come back as exit 1 with the library's own message.
    let (code, _, err) = run(Command::new(&exe).args(["--model", "m", "--res", "0", "a.png"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("DA3_ERR_INVALID_ARGUMENT") && err.contains("process_res"), "{err}");

    let missing = "/nonexistent/da3-example-no-such-checkpoint";
    let (code, _, err) = run(Command::new(&exe).args(["--model", missing, "a.png"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("da3_create failed"), "{err}");
    assert!(err.contains(missing), "the message should name the checkpoint path:\n{err}");
}

#[test]
fn header_compiles_as_cpp() {
    let cxx = std::env::var("CXX").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "c++".into());
    let dir = scratch("cpp");
    let exe = dir.join("test_cpp");
    let lib = lib_dir();
    let built = Command::new(&cxx)
        .args(["-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg("-I")
        .arg(root().join("include"))
        .arg("-o")
        .arg(&exe)
        .arg(root().join("tests/c/test_cpp.cpp"))
        .arg("-L")
        .arg(lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-lda3")
        .output();
    let built = match built {
        Ok(o) => o,
        Err(_) => {
            println!("skipped: no C++ compiler `{cxx}`");
            return;
        }
    };
    let (out, err) = text(&built);
    assert!(built.status.success(), "da3.h does not compile as C++:\n{out}{err}");
    let (code, out, err) = run(&mut Command::new(&exe));
    assert_eq!(code, 0, "{out}{err}");
}

/// Reads a little-endian float32 .npy v1.0 file, checking the header layout on the way.
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00", "{}: bad magic/version", path.display());
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + header_len) % 64, 0, "{}: data not 64-byte aligned", path.display());
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(header.ends_with('\n'), "{}: header must end with a newline", path.display());
    assert!(
        header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': ("),
        "{}: unexpected header {header:?}",
        path.display()
    );
    let dims = &header[header.find("'shape': (").unwrap() + 10..header.find(')').unwrap()];
    let shape: Vec<usize> =
        dims.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    let data: Vec<f32> =
        bytes[10 + header_len..].chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    assert_eq!(data.len(), shape.iter().product::<usize>(), "{}: data length", path.display());
    (shape, data)
}

#[test]
fn example_npy_writer_produces_valid_files() {
    let dir = scratch("npy");
    let exe = dir.join("test_npy");
    compile(&[root().join("tests/c/test_npy.c")], &exe, &[]);
    let (code, out, err) = run(Command::new(&exe).arg(&dir));
    assert_eq!(code, 0, "{out}{err}");
    let expected = |n: usize| (0..n).map(|i| i as f32 * 0.5 - 1.0).collect::<Vec<_>>();
    assert_eq!(read_npy(&dir.join("a.npy")), (vec![2, 3, 4], expected(24)));
    assert_eq!(read_npy(&dir.join("b.npy")), (vec![5], expected(5)));
    assert_eq!(read_npy(&dir.join("c.npy")), (vec![1, 7], expected(7)));
    let header = std::fs::read(dir.join("b.npy")).unwrap();
    assert!(String::from_utf8_lossy(&header[..128]).contains("'shape': (5,), }"), "1-tuples need a comma");

    // Cross-check with NumPy itself when it is installed (it is in the project's venv).
    let numpy = Command::new("python3")
        .arg("-c")
        .arg("import sys, numpy as np\nfor f in sys.argv[1:]:\n    a = np.load(f)\n    print(a.dtype, a.shape, float(a.sum()))")
        .args(["a.npy", "b.npy", "c.npy"].map(|f| dir.join(f)))
        .output();
    match numpy {
        Ok(o) if o.status.success() => {
            let out = String::from_utf8_lossy(&o.stdout);
            assert_eq!(out, "float32 (2, 3, 4) 114.0\nfloat32 (5,) 0.0\nfloat32 (1, 7) 3.5\n");
        }
        _ => println!("skipped the NumPy cross-check: python3 with numpy is not available"),
    }
}

#[test]
fn example_end_to_end_with_checkpoint() {
    let Some(checkpoint) = checkpoint() else {
        println!("skipped: set DA3_TEST_CHECKPOINT to a checkpoint directory to run the example end to end");
        return;
    };
    let dir = scratch("example-e2e");
    let exe = dir.join("da3_infer");
    compile(&[root().join("examples_c/da3_infer.c")], &exe, &[]);
    let mut paths = Vec::new();
    for (i, (w, h)) in [(80u32, 60u32), (64, 64)].into_iter().enumerate() {
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 3) as u8, (y * 4) as u8, ((x + y) * 2 + i as u32 * 40) as u8])
        });
        let path = dir.join(format!("view{i}.png"));
        img.save(&path).unwrap();
        paths.push(path);
    }
    let out_dir = dir.join("out");
    let (code, out, err) = run(Command::new(&exe)
        .args(["--model", &checkpoint, "--res", "56", "--precision", "fp32", "--png", "--out"])
        .arg(&out_dir)
        .args(&paths));
    println!("{out}{err}");
    assert_eq!(code, 0, "da3_infer failed:\n{out}\n{err}");
    assert!(out.contains("processed size") && out.contains("inference") && out.contains("depth min"), "{out}");

    let (depth_shape, depth) = read_npy(&out_dir.join("depth.npy"));
    assert_eq!(depth_shape.len(), 3);
    assert_eq!(depth_shape[0], 2);
    assert!(depth.iter().all(|d| d.is_finite()), "depth has non-finite values");
    let (conf_shape, _) = read_npy(&out_dir.join("conf.npy"));
    assert_eq!(conf_shape, depth_shape);
    let (h, w) = (depth_shape[1], depth_shape[2]);
    if out.contains("predicts no cameras") {
        assert!(!out_dir.join("extrinsics.npy").exists());
    } else {
        assert_eq!(read_npy(&out_dir.join("extrinsics.npy")).0, vec![2, 3, 4]);
        assert_eq!(read_npy(&out_dir.join("intrinsics.npy")).0, vec![2, 3, 3]);
    }
    for v in 0..2 {
        let png = image::open(out_dir.join(format!("depth_{v}.png"))).expect("depth PNG missing or unreadable");
        assert_eq!((png.width() as usize, png.height() as usize), (w, h));
    }
}

#[test]
fn forward_only_entry_and_memory_stats_from_c() {
    let Some(checkpoint) = checkpoint() else { return };
    let dir = scratch("accel");
    let exe = dir.join("test_accel");
    compile(&[root().join("tests/c/test_accel.c")], &exe, &[]);
    let (code, out, err) = run(Command::new(&exe).arg(&checkpoint));
    assert_error_suite_passed(code, &out, &err, "test_accel");
}

/// The benchmark program runs once, tiny, on the CPU, and prints its JSON contract.
#[test]
fn benchmark_example_runs_and_prints_json_lines() {
    let Some(checkpoint) = checkpoint() else { return };
    let dir = scratch("bench");
    let exe = dir.join("da3_bench");
    compile(&[root().join("examples_c/da3_bench.c")], &exe, &[]);
    let (code, out, err) = run(Command::new(&exe).env("DA3_DEVICE", "cpu").args([
        "--model", &checkpoint, "--views", "1,3", "--warmup", "0", "--iters", "1", "--frame", "64x48", "--input",
        "42x56", "--precision", "fp32",
    ]));
    assert_eq!(code, 0, "da3_bench failed:\n{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    // 2 accelerate settings x 2 modes x 2 view counts.
    assert_eq!(lines.len(), 8, "{out}");
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert_eq!(v["impl"], "libda3");
        assert_eq!(v["model"], "da3-small");
        assert_eq!(v["precision"], "fp32");
        assert_eq!(v["device"], "cpu");
        assert_eq!(v["iters"], 1);
        assert!(v["peak_mib"].is_null(), "{line}");
        assert!(v["median_ms"].as_f64().unwrap() > 0.0 && v["min_ms"].as_f64().unwrap() <= v["median_ms"].as_f64().unwrap());
        let views = v["views"].as_f64().unwrap();
        let expected = views / (v["median_ms"].as_f64().unwrap() / 1e3);
        assert!((v["views_per_s"].as_f64().unwrap() - expected).abs() <= 0.01 + expected * 1e-3, "{line}");
        assert!(["forward", "e2e"].contains(&v["mode"].as_str().unwrap()) && v["accelerate"].is_boolean());
    }
    assert!(err.contains("median_ms"), "no table on stderr:\n{err}");
}
