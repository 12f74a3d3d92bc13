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
        .arg("-lm")
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
    // Probed once per test process: tests run in parallel, and two probes writing and running
    // the same file raced (one ran the other's half-written program and skipped its test).
    static WORKS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WORKS.get_or_init(|| {
        let dir = scratch("sanitizer-probe");
        let src = dir.join("probe.c");
        std::fs::write(&src, "int main(void) { return 0; }\n").unwrap();
        let exe = dir.join("probe");
        let built = Command::new(cc()).args(SANITIZE).arg("-o").arg(&exe).arg(&src).output();
        matches!(built, Ok(o) if o.status.success()) && matches!(Command::new(&exe).status(), Ok(s) if s.success())
    })
}

/// Environment for sanitized runs. Leak detection is on, with the committed suppressions of
/// `tests/sanitizers/lsan.supp` (libtorch's and ld.so's process-lifetime allocations only: libtorch
/// is not instrumented); CUDA needs the shadow gap unprotected; libtorch's C++ may legitimately
/// pair allocators in ways ASan's mismatch check dislikes. A report exits with status 86 (not 1,
/// which the programs use for library errors), so even a test that expects a failing exit status
/// cannot mistake a report for it.
fn sanitizer_env(cmd: &mut Command) -> &mut Command {
    let supp = root().join("tests/sanitizers/lsan.supp");
    cmd.env("ASAN_OPTIONS", ASAN_OPTIONS)
        .env("LSAN_OPTIONS", format!("suppressions={}:print_suppressions=0", supp.display()))
        .env("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=86")
}

const ASAN_OPTIONS: &str = "detect_leaks=1:protect_shadow_gap=0:alloc_dealloc_mismatch=0:abort_on_error=0:exitcode=86";

/// Fails on any ASan, LeakSanitizer or UBSan report in a sanitized program's stderr or status.
fn assert_no_sanitizer_report(code: i32, err: &str, what: &str) {
    let report = ["ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"].iter().any(|r| err.contains(r));
    assert!(!report && code != 86, "{what}: sanitizer report (exit {code}):\n{err}");
}

/// Runs `cmd` (a program built with `SANITIZE` from `source`) under `sanitizer_env`; fails on a
/// sanitizer report, else returns the exit status and output for the caller's own checks.
fn run_sanitized(cmd: &mut Command, source: &str) -> (i32, String, String) {
    let (code, out, err) = run(sanitizer_env(cmd));
    assert_no_sanitizer_report(code, &err, source);
    println!("{SANITIZED_RUN_MARK}{source}");
    (code, out, err)
}

/// Printed with the source of each program run cleanly under the sanitizers:
/// scripts/check_memory_safety.sh checks that every C/C++ program of the tree has such a run.
const SANITIZED_RUN_MARK: &str = "ran under ASan/UBSan: ";

/// How a test builds and runs its program: plainly, or with `SANITIZE` under `sanitizer_env`
/// (then any sanitizer report fails the test). One test body serves both.
#[derive(Clone, Copy, PartialEq)]
enum Build {
    Plain,
    Sanitized,
}

impl Build {
    fn flags(self) -> &'static [&'static str] {
        match self {
            Build::Plain => &[],
            Build::Sanitized => &SANITIZE,
        }
    }

    fn run(self, cmd: &mut Command, what: &str) -> (i32, String, String) {
        match self {
            Build::Plain => run(cmd),
            Build::Sanitized => run_sanitized(cmd, what),
        }
    }

    /// `false` (and says so) when a sanitized build cannot be made here.
    fn available(self) -> bool {
        let ok = self == Build::Plain || sanitizers_work();
        if !ok {
            println!("skipped: `{} -fsanitize=address,undefined` does not build or run a program here", cc());
        }
        ok
    }
}

/// The first C++ compiler (g++, clang++) that builds and runs a sanitized program here.
fn sanitizing_cxx() -> Option<&'static str> {
    static CXX: OnceLock<Option<&'static str>> = OnceLock::new();
    *CXX.get_or_init(|| {
        let dir = scratch("cxx-sanitizer-probe");
        let src = dir.join("probe.cpp");
        std::fs::write(&src, "#include <string>\nint main() { std::string s(\"x\"); return s.size() == 1 ? 0 : 1; }\n").unwrap();
        let probe = dir.join("probe");
        ["g++", "clang++"].into_iter().find(|cxx| {
            let built = Command::new(cxx).args(SANITIZE).arg("-o").arg(&probe).arg(&src).output();
            matches!(built, Ok(o) if o.status.success()) && matches!(Command::new(&probe).status(), Ok(s) if s.success())
        })
    })
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
fn c_host_tests_pass() {
    let dir = scratch("host");
    let exe = dir.join("test_host");
    compile(&[root().join("tests/c/test_host.c")], &exe, &[]);
    let checkpoint = checkpoint().expect("checkpoint");
    let (code, out, err) = run(Command::new(&exe).env("DA3_TEST_CHECKPOINT", checkpoint).env("DA3_DEVICE", "cpu"));
    assert_error_suite_passed(code, &out, &err, "tests/c/test_host.c");
}

/// Small thread stacks (D11), fork after inference (D10), a model outliving its creator thread.
fn process_tests(build: Build) {
    let dir = scratch(if build == Build::Sanitized { "process-asan" } else { "process" });
    let exe = dir.join("test_process");
    compile(&[root().join("tests/c/test_process.c")], &exe, build.flags());
    let checkpoint = checkpoint().expect("checkpoint");
    let mut cmd = Command::new(&exe);
    cmd.env("DA3_TEST_CHECKPOINT", checkpoint).env("DA3_DEVICE", "cpu");
    let (code, out, err) =
        if build == Build::Sanitized { run_sanitized(&mut cmd, "tests/c/test_process.c") } else { run(&mut cmd) };
    assert_error_suite_passed(code, &out, &err, "tests/c/test_process.c");
    if build == Build::Plain {
        assert!(!out.contains("skipped group"), "no group may be skipped:\n{out}");
    }
}

#[test]
fn c_process_tests_pass() {
    process_tests(Build::Plain);
}

#[test]
fn c_process_tests_pass_under_sanitizers() {
    // Under ASan a 64 KiB thread may not start (its stack holds ASan's own state too): that
    // group is then reported skipped; the plain run requires it.
    process_tests(Build::Sanitized);
}

/// The soak program (tests/soak.rs runs it at length) for a few seconds under the sanitizers.
#[test]
fn soak_example_runs_under_sanitizers() {
    let dir = scratch("soak-asan");
    let exe = dir.join("da3_soak");
    compile(&[root().join("examples_c/da3_soak.c")], &exe, &["-lm"].iter().chain(SANITIZE.iter()).copied().collect::<Vec<_>>());
    let checkpoint = checkpoint().expect("checkpoint");
    let images = root().join("assets/images");
    let photos = format!("{},{}", images.join("soh_000.png").display(), images.join("soh_010.png").display());
    let mut cmd = Command::new(&exe);
    cmd.env("DA3_DEVICE", "cpu")
        .arg("--model")
        .arg(checkpoint)
        .args(["--threads", "4", "--seconds", "6", "--process-res", "56", "--inputs", "8", "--sample-ms", "100"])
        // ASan owns malloc: glibc's mmap threshold is not ours to set there; memory is judged in tests/soak.rs.
        .args(["--mmap-threshold-kib", "0", "--max-rise-mib", "100000", "--images", &photos]);
    let (code, out, err) = run_sanitized(&mut cmd, "examples_c/da3_soak.c");
    assert_eq!(code, 0, "da3_soak under sanitizers:\n{out}\n{err}");
}

#[test]
fn c_host_tests_pass_under_sanitizers() {
    if !sanitizers_work() {
        println!("skipped: `{} -fsanitize=address,undefined` does not build or run a program here", cc());
        return;
    }
    let dir = scratch("host-asan");
    let exe = dir.join("test_host_asan");
    compile(&[root().join("tests/c/test_host.c")], &exe, &SANITIZE);
    let checkpoint = checkpoint().expect("checkpoint");
    let mut cmd = Command::new(&exe);
    cmd.env("DA3_TEST_CHECKPOINT", checkpoint).env("DA3_DEVICE", "cpu");
    let (code, out, err) = run_sanitized(&mut cmd, "tests/c/test_host.c");
    assert_error_suite_passed(code, &out, &err, "tests/c/test_host.c under ASan/UBSan");
}

#[test]
fn c_multi_replica_tests_pass() {
    let dir = scratch("multi");
    let exe = dir.join("test_multi");
    compile(&[root().join("tests/c/test_multi.c")], &exe, &["-lm"]);
    let checkpoint = checkpoint().expect("checkpoint");
    let (code, out, err) = run(Command::new(&exe).env("DA3_TEST_CHECKPOINT", checkpoint));
    assert_error_suite_passed(code, &out, &err, "tests/c/test_multi.c");
}

#[test]
fn c_multi_replica_tests_pass_under_sanitizers() {
    if !sanitizers_work() {
        println!("skipped: `{} -fsanitize=address,undefined` does not build or run a program here", cc());
        return;
    }
    let dir = scratch("multi-asan");
    let exe = dir.join("test_multi_asan");
    let mut flags = SANITIZE.to_vec();
    flags.push("-lm");
    compile(&[root().join("tests/c/test_multi.c")], &exe, &flags);
    let checkpoint = checkpoint().expect("checkpoint");
    let (code, out, err) =
        run_sanitized(Command::new(&exe).env("DA3_TEST_CHECKPOINT", checkpoint), "tests/c/test_multi.c");
    assert_error_suite_passed(code, &out, &err, "tests/c/test_multi.c under ASan/UBSan");
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
    let mut cmd = Command::new(&exe);
    cmd.env("TMPDIR", &dir).env("DA3_TEST_CHECKPOINT", checkpoint);
    let (code, out, err) = run_sanitized(&mut cmd, "tests/c/test_errors.c");
    assert_error_suite_passed(code, &out, &err, "tests/c/test_errors.c under ASan/UBSan");
}

/// `tests/c/test_errors.c` under valgrind memcheck: its `basic` and `checkpoint` groups (every
/// argument check that needs no model, and da3_create failing on missing, corrupt and mismatched
/// checkpoints) on the default device, which dlopens libtorch's CUDA backend. The `model` group
/// is left out: one inference under valgrind takes minutes (ASan runs it, above). An invalid
/// access or a definite leak is exit 99; `tests/sanitizers/valgrind.supp` suppresses only the
/// dynamic loader's known report. Slow (about a minute): run by scripts/check_memory_safety.sh.
#[test]
#[ignore = "valgrind: run by scripts/check_memory_safety.sh"]
fn c_error_tests_pass_under_valgrind() {
    let dir = scratch("errors-valgrind");
    let exe = dir.join("test_errors");
    compile(&[root().join("tests/c/test_errors.c")], &exe, &["-g"]);
    let supp = root().join("tests/sanitizers/valgrind.supp");
    let output = Command::new("valgrind")
        .args(["--error-exitcode=99", "--leak-check=full", "--errors-for-leak-kinds=definite", "--num-callers=30"])
        .arg(format!("--suppressions={}", supp.display()))
        .arg(&exe)
        .env("TMPDIR", &dir)
        .env_remove("DA3_TEST_CHECKPOINT")
        .env_remove("DA3_DEVICE")
        .output()
        .expect("cannot run valgrind: install it (apt-get install valgrind)");
    let (out, err) = text(&output);
    let code = output.status.code().unwrap_or(-1);
    assert!(code != 99 && err.contains("ERROR SUMMARY: 0 errors"), "valgrind reports (exit {code}):\n{err}");
    assert!(err.contains("definitely lost: 0 bytes") || err.contains("no leaks are possible"), "no leak check:\n{err}");
    assert_error_suite_passed(code, &out, &err, "tests/c/test_errors.c under valgrind");
    assert!(out.contains("== checkpoint") && out.contains("1 skipped"), "only the model group is skipped:\n{out}");
}

#[test]
fn example_builds_strictly_and_reports_errors() {
    example_reports_usage_and_library_errors(Build::Plain);
}

#[test]
fn example_reports_errors_under_sanitizers() {
    example_reports_usage_and_library_errors(Build::Sanitized);
}

/// `examples_c/da3_infer.c`: usage errors are exit 2, library errors exit 1 with the message.
fn example_reports_usage_and_library_errors(build: Build) {
    if !build.available() {
        return;
    }
    let dir = scratch(if build == Build::Plain { "example" } else { "example-asan" });
    let exe = dir.join("da3_infer");
    compile(&[root().join("examples_c/da3_infer.c")], &exe, build.flags());
    let run = |cmd: &mut Command| build.run(cmd, "examples_c/da3_infer.c");

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
    header_as_cpp(&cxx, Build::Plain);
}

#[test]
fn header_as_cpp_under_sanitizers() {
    let Some(cxx) = sanitizing_cxx() else {
        println!("skipped: neither g++ nor clang++ builds and runs a program with -fsanitize=address,undefined here");
        return;
    };
    header_as_cpp(cxx, Build::Sanitized);
}

/// `tests/c/test_cpp.cpp`: da3.h and check.h compile as strict C++11 and work from C++.
fn header_as_cpp(cxx: &str, build: Build) {
    let dir = scratch(if build == Build::Plain { "cpp" } else { "cpp-asan" });
    let exe = dir.join("test_cpp");
    let lib = lib_dir();
    let built = Command::new(cxx)
        .args(["-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .args(build.flags())
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
    let (code, out, err) = build.run(&mut Command::new(&exe), "tests/c/test_cpp.cpp");
    assert_eq!(code, 0, "{out}{err}");
}

/// The strict C++17 flags `include/da3.hpp` and its test are held to.
const STRICT_CXX17: [&str; 6] = ["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic", "-pthread"];

/// Compiles `tests/c/test_hpp.cpp` with `cxx` (strict C++17 plus `extra`) into `out`, linked to
/// libda3. `Err` when the compiler cannot be started at all (not installed).
fn compile_hpp(cxx: &str, out: &Path, extra: &[&str]) -> Result<(), String> {
    let lib = lib_dir();
    let built = Command::new(cxx)
        .args(STRICT_CXX17)
        .args(extra)
        .arg("-I")
        .arg(root().join("include"))
        .arg("-I")
        .arg(root().join("tests/c"))
        .arg("-o")
        .arg(out)
        .arg(root().join("tests/c/test_hpp.cpp"))
        .arg("-L")
        .arg(lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-lda3")
        .output()
        .map_err(|e| format!("cannot run `{cxx}`: {e}"))?;
    let (out_text, err_text) = text(&built);
    assert!(built.status.success(), "include/da3.hpp / tests/c/test_hpp.cpp do not compile with {cxx}:\n{out_text}{err_text}");
    Ok(())
}

/// Runs a compiled test_hpp on the test checkpoint; returns its exit code and output.
fn run_hpp(cmd: &mut Command, dir: &Path) -> (i32, String, String) {
    let checkpoint = checkpoint().expect("checkpoint");
    run(cmd.env("TMPDIR", dir).env("DA3_TEST_CHECKPOINT", checkpoint).env("DA3_SOURCE_DIR", root()))
}

/// The C++ layer (`include/da3.hpp`) with g++ and with clang++: enum values, exceptions with the
/// C status and message, move semantics, the Options builder and inferences whose views equal
/// the C accessors element for element (`tests/c/test_hpp.cpp`).
#[test]
fn cpp_layer_tests_pass_with_gcc_and_clang() {
    let mut ran = Vec::new();
    for cxx in ["g++", "clang++"] {
        let dir = scratch(&format!("hpp-{cxx}"));
        let exe = dir.join("test_hpp");
        if let Err(why) = compile_hpp(cxx, &exe, &[]) {
            println!("skipped {cxx}: {why}");
            continue;
        }
        let (code, out, err) = run_hpp(&mut Command::new(&exe), &dir);
        assert_error_suite_passed(code, &out, &err, &format!("tests/c/test_hpp.cpp ({cxx})"));
        assert!(out.contains(" passed, 0 failed, 0 skipped"), "no group may be skipped ({cxx}):\n{out}");
        ran.push(cxx);
    }
    assert!(!ran.is_empty(), "neither g++ nor clang++ could be run: the C++ layer went untested");
}

/// The same program once more under ASan/UBSan (with the first C++ compiler that builds a
/// sanitized program here).
#[test]
fn cpp_layer_tests_pass_under_sanitizers() {
    let dir = scratch("hpp-asan");
    let Some(cxx) = sanitizing_cxx() else {
        println!("skipped: neither g++ nor clang++ builds and runs a program with -fsanitize=address,undefined here");
        return;
    };
    let exe = dir.join("test_hpp_asan");
    compile_hpp(cxx, &exe, &SANITIZE).unwrap();
    let (code, out, err) = run_hpp(sanitizer_env(&mut Command::new(&exe)), &dir);
    assert_no_sanitizer_report(code, &err, "tests/c/test_hpp.cpp");
    println!("{SANITIZED_RUN_MARK}tests/c/test_hpp.cpp");
    assert_error_suite_passed(code, &out, &err, &format!("tests/c/test_hpp.cpp under ASan/UBSan ({cxx})"));
}

/// `examples_cpp/main.cpp` builds strictly (as its CMakeLists.txt builds it, without CMake) and
/// runs the two sample photos as one scene: per-view depth ranges and cameras, two depth PNGs;
/// a bad model path is exit 1 with the library's status and message.
#[test]
fn cpp_example_runs_on_the_sample_photos() {
    cpp_example_on_the_sample_photos("g++", Build::Plain);
}

#[test]
fn cpp_example_runs_under_sanitizers() {
    let Some(cxx) = sanitizing_cxx() else {
        println!("skipped: neither g++ nor clang++ builds and runs a program with -fsanitize=address,undefined here");
        return;
    };
    cpp_example_on_the_sample_photos(cxx, Build::Sanitized);
}

fn cpp_example_on_the_sample_photos(cxx: &str, build: Build) {
    let dir = scratch(if build == Build::Plain { "example-cpp" } else { "example-cpp-asan" });
    let exe = dir.join("da3_example");
    let lib = lib_dir();
    let built = Command::new(cxx)
        .args(STRICT_CXX17)
        .args(build.flags())
        .arg(format!("-DDA3_SOURCE_DIR=\"{}\"", root().display()))
        .arg("-I")
        .arg(root().join("include"))
        .arg("-o")
        .arg(&exe)
        .arg(root().join("examples_cpp/main.cpp"))
        .arg("-L")
        .arg(lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-lda3")
        .output();
    let Ok(built) = built else {
        println!("skipped: no {cxx}");
        return;
    };
    let (out, err) = text(&built);
    assert!(built.status.success(), "examples_cpp/main.cpp does not compile:\n{out}{err}");
    let run = |cmd: &mut Command| build.run(cmd, "examples_cpp/main.cpp");

    let (code, _, err) = run(Command::new(&exe).args(["--model", "/nonexistent/da3-cpp-example", "a.png"]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("DA3_ERR_MODEL_NOT_FOUND") && err.contains("/nonexistent/da3-cpp-example"), "{err}");

    let out_dir = dir.join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let (code, out, err) =
        run(Command::new(&exe).env("DA3_MODEL", checkpoint().expect("checkpoint")).arg("--out").arg(&out_dir));
    println!("{out}{err}");
    assert_eq!(code, 0, "da3_example failed:\n{out}\n{err}");
    assert!(out.contains("2 views, processed size 504x280") && out.contains("soh_010.png"), "{out}");
    assert_eq!(out.matches("depth min").count(), 2, "{out}");
    assert_eq!(out.matches("extrinsics (world-to-camera)").count(), 2, "{out}");
    for view in 0..2 {
        let png = image::open(out_dir.join(format!("depth_{view}.png"))).expect("a depth PNG");
        assert_eq!((png.width(), png.height()), (504, 280));
    }
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
    npy_writer_produces_valid_files(Build::Plain);
}

#[test]
fn example_npy_writer_under_sanitizers() {
    npy_writer_produces_valid_files(Build::Sanitized);
}

/// The .npy writer of `examples_c/da3_infer.c` (through `tests/c/test_npy.c`), files read back.
fn npy_writer_produces_valid_files(build: Build) {
    if !build.available() {
        return;
    }
    let dir = scratch(if build == Build::Plain { "npy" } else { "npy-asan" });
    let exe = dir.join("test_npy");
    compile(&[root().join("tests/c/test_npy.c")], &exe, build.flags());
    let (code, out, err) = build.run(Command::new(&exe).arg(&dir), "tests/c/test_npy.c");
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
    example_end_to_end(Build::Plain);
}

#[test]
fn example_end_to_end_under_sanitizers() {
    example_end_to_end(Build::Sanitized);
}

/// `examples_c/da3_infer.c` on two small PNGs at process_res 56: .npy and PNG outputs.
fn example_end_to_end(build: Build) {
    if !build.available() {
        return;
    }
    let checkpoint = checkpoint().expect("checkpoint");
    let dir = scratch(if build == Build::Plain { "example-e2e" } else { "example-e2e-asan" });
    let exe = dir.join("da3_infer");
    compile(&[root().join("examples_c/da3_infer.c")], &exe, build.flags());
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
    let (code, out, err) = build.run(
        Command::new(&exe)
            .args(["--model", &checkpoint, "--res", "56", "--precision", "fp32", "--png", "--out"])
            .arg(&out_dir)
            .args(&paths),
        "examples_c/da3_infer.c",
    );
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

// ---------------------------------------------------------------------------------------------
// The whole family: tests/c/test_family.c, and the C example against the official outputs
// ---------------------------------------------------------------------------------------------

/// `target/oracle` (or `DA3_ORACLE_DIR`): random-weight checkpoints and official outputs.
fn oracle() -> PathBuf {
    std::env::var_os("DA3_ORACLE_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target/oracle"))
}

fn oracle_checkpoint(model: &str, dir: &str) -> String {
    let path = oracle().join(model).join(dir);
    assert!(
        path.join("model.safetensors").is_file(),
        "no checkpoint at {}: run tests/oracle/run_oracle.sh {model} target/oracle/{model}",
        path.display()
    );
    path.display().to_string()
}

/// The checkpoints of tests/c/test_family.c, by environment variable.
fn family_env(cmd: &mut Command, with_large: bool) -> &mut Command {
    cmd.env("DA3_TEST_CHECKPOINT", checkpoint().unwrap())
        .env("DA3_TEST_NESTED_CHECKPOINT", oracle_checkpoint("da3nested-reduced", "checkpoint"))
        .env("DA3_TEST_NESTED_ALLSKY_CHECKPOINT", oracle_checkpoint("da3nested-reduced", "checkpoint_allsky"));
    if with_large {
        cmd.env("DA3_TEST_METRIC_CHECKPOINT", oracle_checkpoint("da3metric-large", "checkpoint"));
    }
    cmd.env("DA3_DEVICE", "cpu")
}

#[test]
fn c_family_tests_pass() {
    let dir = scratch("family");
    let exe = dir.join("test_family");
    compile(&[root().join("tests/c/test_family.c")], &exe, &[]);
    let (code, out, err) = run(family_env(&mut Command::new(&exe), true));
    assert_error_suite_passed(code, &out, &err, "tests/c/test_family.c");
    assert!(!out.contains("skipped group"), "no group may be skipped:\n{out}");
}

/// The any-view group (option structs of every size, camera and feature pointers) under
/// ASan/UBSan; the other groups only add accessors of the same kind and big models.
#[test]
fn c_family_tests_pass_under_sanitizers() {
    if !sanitizers_work() {
        println!("skipped: `{} -fsanitize=address,undefined` does not build or run a program here", cc());
        return;
    }
    let dir = scratch("family-asan");
    let exe = dir.join("test_family_asan");
    compile(&[root().join("tests/c/test_family.c")], &exe, &SANITIZE);
    let mut cmd = Command::new(&exe);
    cmd.env("DA3_TEST_CHECKPOINT", checkpoint().unwrap()).env("DA3_DEVICE", "cpu");
    let (code, out, err) = run_sanitized(&mut cmd, "tests/c/test_family.c");
    assert_error_suite_passed(code, &out, &err, "tests/c/test_family.c under ASan/UBSan");
}

/// Writes `data` shaped `shape` as a little-endian .npy of float32 (`f64: false`) or float64.
fn write_npy(path: &Path, shape: &[usize], data: &[f32], f64: bool) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': ({}{}), }}",
        if f64 { "<f8" } else { "<f4" },
        dims.join(", "),
        if shape.len() == 1 { "," } else { "" }
    );
    let pad = (64 - (10 + dict.len() + 1) % 64) % 64;
    let header = format!("{dict}{}\n", " ".repeat(pad));
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    bytes.extend_from_slice(header.as_bytes());
    for &v in data {
        if f64 {
            bytes.extend_from_slice(&(v as f64).to_le_bytes());
        } else {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    std::fs::write(path, bytes).unwrap();
}

/// An official reference file: its tensors and the case it was made for.
struct Official {
    tensors: std::collections::HashMap<String, tch::Tensor>,
    case: serde_json::Value,
}

fn official(path: &Path) -> Official {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e} (run the oracle)", path.display()));
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).expect("safetensors header");
    let case = meta.metadata().as_ref().and_then(|m| m.get("case")).map(|s| serde_json::from_str(s).unwrap());
    let tensors = tch::Tensor::read_safetensors(path).unwrap().into_iter().collect();
    Official { tensors, case: case.unwrap_or(serde_json::Value::Null) }
}

impl Official {
    fn t(&self, key: &str) -> &tch::Tensor {
        self.tensors.get(key).unwrap_or_else(|| panic!("reference lacks {key}"))
    }

    fn f32s(&self, key: &str) -> Vec<f32> {
        Vec::<f32>::try_from(&self.t(key).to_kind(tch::Kind::Float).contiguous().reshape([-1])).unwrap()
    }

    fn shape(&self, key: &str) -> Vec<usize> {
        self.t(key).size().iter().map(|&d| d as usize).collect()
    }
}

/// Compares the example's `file` with the official tensor `key`: same shape, max |a - b| over
/// the reference's range within `tol` (as tests/parity_pose.rs at pipeline level).
fn compare(out_dir: &Path, file: &str, reference: &Official, key: &str, tol: f64, failures: &mut Vec<String>) {
    let (shape, ours) = read_npy(&out_dir.join(file));
    let want = reference.f32s(key);
    let mut want_shape = reference.shape(key);
    if want_shape.is_empty() {
        want_shape = vec![1];
    }
    if shape != want_shape {
        failures.push(format!("{file}: shape {shape:?}, official {key} {want_shape:?}"));
        return;
    }
    let diff = ours.iter().zip(&want).map(|(a, b)| (a - b).abs() as f64).fold(0.0, f64::max);
    let (lo, hi) = want.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v as f64), hi.max(v as f64)));
    let range = if want.len() == 1 { want[0].abs() as f64 } else { hi - lo };
    let rel = diff / range.max(1e-12);
    println!("{file:<24} vs official {key:<22} rel err {rel:.3e}");
    if rel.is_nan() || rel > tol {
        failures.push(format!("{file} vs official {key}: rel err {rel:.3e} > {tol:.0e}"));
    }
}

const PIPELINE_TOL: f64 = 1e-3;

/// Runs the example; returns its stdout.
fn run_example(exe: &Path, args: &[String]) -> String {
    let (code, out, err) = run(Command::new(exe).env("DA3_DEVICE", "cpu").args(args));
    println!("{out}");
    assert_eq!(code, 0, "da3_infer {args:?} failed:\n{out}\n{err}");
    out
}

fn example_exe(name: &str) -> (PathBuf, PathBuf) {
    let dir = scratch(name);
    let exe = dir.join("da3_infer");
    compile(&[root().join("examples_c/da3_infer.c")], &exe, &[]);
    (dir, exe)
}

/// Known cameras through the example against the official `inference()` on the same images
/// and cameras: 4x4 float32 with the alignment to their scale, and 3x4 float64 with the
/// predicted scale kept plus an exported feature.
#[test]
fn example_known_cameras_match_official() {
    let model = "da3-small";
    let (dir, exe) = example_exe("example-cameras");
    let refs = oracle().join(model).join("pose_ref");
    let mut failures = Vec::new();
    for (case, rows, f64) in [("p_circle6_ubr_mixed", 4, false), ("p_circle6_lbc_noalign", 3, true)] {
        let r = official(&refs.join(format!("{case}.safetensors")));
        let views = r.case["sizes"].as_array().unwrap().len();
        let ext: Vec<f32> = r.f32s("given_extrinsics").chunks(16).flat_map(|m| m[..rows * 4].to_vec()).collect();
        write_npy(&dir.join("ext.npy"), &[views, rows, 4], &ext, f64);
        write_npy(&dir.join("int.npy"), &[views, 3, 3], &r.f32s("given_intrinsics"), f64);
        let out_dir = dir.join(case);
        let mut args: Vec<String> = vec![
            "--model".into(),
            oracle_checkpoint(model, "checkpoint"),
            "--precision".into(),
            "fp32".into(),
            "--res".into(),
            r.case["process_res"].to_string(),
            "--resize-method".into(),
            r.case["process_res_method"].as_str().unwrap().into(),
            "--extrinsics".into(),
            dir.join("ext.npy").display().to_string(),
            "--intrinsics".into(),
            dir.join("int.npy").display().to_string(),
            "--out".into(),
            out_dir.display().to_string(),
        ];
        let align = r.case["align_to_input_ext_scale"].as_bool().unwrap();
        if !align {
            args.push("--no-align-scale".into());
        }
        let layers: Vec<String> = r.case.get("export_feat_layers").and_then(|l| l.as_array()).map_or(vec![], |l| l.iter().map(|v| v.to_string()).collect());
        if !layers.is_empty() {
            args.extend(["--export-layers".into(), layers.join(",")]);
        }
        args.extend((0..views).map(|i| refs.join("images").join(format!("{case}_{i}.png")).display().to_string()));
        let out = run_example(&exe, &args);
        assert!(out.contains("capabilities: pose confidence known-cameras ray-pose (backbone of 12 blocks)"), "{out}");
        assert!(out.contains(if align { "depth divided by it" } else { "predicted depth scale kept" }), "{out}");
        for (file, key) in [
            ("depth.npy", "depth"),
            ("conf.npy", "depth_conf"),
            ("extrinsics.npy", "extrinsics"),
            ("intrinsics.npy", "intrinsics"),
            ("alignment_scale.npy", "alignment_scale"),
        ] {
            compare(&out_dir, file, &r, key, PIPELINE_TOL, &mut failures);
        }
        let reference_view = r.t("ref_view").int64_value(&[0]);
        for layer in &layers {
            // The official lists features in processing order (reference view first).
            let feature = r.t(&format!("feat_layer_{layer}"));
            let order = da3::model::reference_view_selector::original_order(views as i64, reference_view);
            let in_input_order = if reference_view < 0 { feature.shallow_clone() } else { feature.index_select(0, &tch::Tensor::from_slice(&order)) };
            let reordered = Official { tensors: [("f".to_owned(), in_input_order)].into(), case: serde_json::Value::Null };
            compare(&out_dir, &format!("features_{layer}.npy"), &reordered, "f", PIPELINE_TOL, &mut failures);
        }
    }
    assert!(failures.is_empty(), "C example differs from the official outputs:\n{}", failures.join("\n"));
}

/// Ray pose and two exported features through the example, against the official.
#[test]
fn example_ray_pose_and_features_match_official() {
    let model = "da3-small";
    let case = "p_ray_nocam3_feat";
    let (dir, exe) = example_exe("example-ray");
    let refs = oracle().join(model).join("pose_ref");
    let r = official(&refs.join(format!("{case}.safetensors")));
    let out_dir = dir.join("out");
    let views = r.case["sizes"].as_array().unwrap().len();
    let mut args: Vec<String> = ["--model", &oracle_checkpoint(model, "checkpoint"), "--precision", "fp32", "--ray-pose"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(["--res".into(), r.case["process_res"].to_string(), "--export-layers".into(), "4,11".into()]);
    args.extend(["--out".into(), out_dir.display().to_string()]);
    args.extend((0..views).map(|i| refs.join("images").join(format!("{case}_{i}.png")).display().to_string()));
    run_example(&exe, &args);
    let mut failures = Vec::new();
    for (file, key) in [("depth.npy", "depth"), ("conf.npy", "depth_conf"), ("extrinsics.npy", "extrinsics"), ("intrinsics.npy", "intrinsics")] {
        compare(&out_dir, file, &r, key, PIPELINE_TOL, &mut failures);
    }
    let reference_view = r.t("ref_view").int64_value(&[0]);
    for layer in [4, 11] {
        let feature = r.t(&format!("feat_layer_{layer}"));
        let order = da3::model::reference_view_selector::original_order(views as i64, reference_view);
        let in_input_order = if reference_view < 0 { feature.shallow_clone() } else { feature.index_select(0, &tch::Tensor::from_slice(&order)) };
        let reordered = Official { tensors: [("f".to_owned(), in_input_order)].into(), case: serde_json::Value::Null };
        compare(&out_dir, &format!("features_{layer}.npy"), &reordered, "f", PIPELINE_TOL, &mut failures);
    }
    assert!(!out_dir.join("alignment_scale.npy").exists(), "no cameras given, no alignment scale");
    assert!(failures.is_empty(), "C example differs from the official outputs:\n{}", failures.join("\n"));
}

/// The nested model (reduced) through the example: depth, confidence, cameras, sky and the
/// scale factor against the official; then a frame of blue sky: the warning, and the
/// unaligned outputs the official computed before its assertion.
#[test]
fn example_nested_matches_official() {
    let model = "da3nested-reduced";
    let (dir, exe) = example_exe("example-nested");
    let r = official(&oracle().join(model).join("ref").join("p_mixed3_ubr252.safetensors"));
    let images: Vec<String> = r.case["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| oracle().join(model).join("images").join(p.as_str().unwrap().trim_start_matches("@gen/")).display().to_string())
        .collect();
    let out_dir = dir.join("mixed3");
    let mut args: Vec<String> = ["--model", &oracle_checkpoint(model, "checkpoint"), "--precision", "fp32", "--res", "252", "--out"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(out_dir.display().to_string());
    args.extend(images);
    let out = run_example(&exe, &args);
    assert!(out.contains("capabilities: pose confidence sky metric-depth known-cameras ray-pose"), "{out}");
    assert!(out.contains("metric scale factor"), "{out}");
    let mut failures = Vec::new();
    for (file, key) in [
        ("depth.npy", "depth"),
        ("conf.npy", "depth_conf"),
        ("extrinsics.npy", "extrinsics"),
        ("intrinsics.npy", "intrinsics"),
        ("sky.npy", "sky"),
        ("scale_factor.npy", "scale_factor"),
    ] {
        compare(&out_dir, file, &r, key, PIPELINE_TOL, &mut failures);
    }

    let r = official(&oracle().join(model).join("ref").join("m1_allsky_blue_140x196.safetensors"));
    let (h, w) = (r.case["height"].as_u64().unwrap() as u32, r.case["width"].as_u64().unwrap() as u32);
    let rgb: Vec<u8> = r.case["fill_rgb"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u8).collect();
    let blue = dir.join("blue.png");
    image::RgbImage::from_fn(w, h, |_, _| image::Rgb([rgb[0], rgb[1], rgb[2]])).save(&blue).unwrap();
    let out_dir = dir.join("allsky");
    let args: Vec<String> = vec![
        "--model".into(),
        oracle_checkpoint(model, "checkpoint_allsky"),
        "--precision".into(),
        "fp32".into(),
        "--res".into(),
        w.max(h).to_string(),
        "--out".into(),
        out_dir.display().to_string(),
        blue.display().to_string(),
    ];
    let out = run_example(&exe, &args);
    assert!(out.contains("warning: metric_alignment_skipped: "), "{out}");
    assert!(!out.contains("metric scale factor") && !out_dir.join("scale_factor.npy").exists(), "{out}");
    for (file, key) in [
        ("depth.npy", "unaligned_depth"),
        ("conf.npy", "unaligned_depth_conf"),
        ("extrinsics.npy", "unaligned_extrinsics"),
        ("sky.npy", "sky"),
    ] {
        compare(&out_dir, file, &r, key, PIPELINE_TOL, &mut failures);
    }
    assert!(failures.is_empty(), "C example differs from the official outputs:\n{}", failures.join("\n"));
}

/// The example's own argument checks for the new options.
#[test]
fn example_checks_camera_and_layer_arguments() {
    let (dir, exe) = example_exe("example-args");
    let (code, _, err) = run(Command::new(&exe).args(["--model", "m", "--extrinsics", "e.npy", "a.png"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--extrinsics and --intrinsics go together"), "{err}");
    let (code, _, err) = run(Command::new(&exe).args(["--model", "m", "--export-layers", "3,x", "a.png"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--export-layers needs block numbers"), "{err}");
    // Shapes that do not fit the view count, and a file that is no .npy.
    write_npy(&dir.join("e.npy"), &[2, 4, 4], &[0.0; 32], false);
    write_npy(&dir.join("k.npy"), &[2, 3, 3], &[0.0; 18], true);
    std::fs::write(dir.join("bad.npy"), b"not numpy").unwrap();
    let arg = |f: &str| dir.join(f).display().to_string();
    let (code, _, err) =
        run(Command::new(&exe).args(["--model", "m", "--extrinsics", &arg("e.npy"), "--intrinsics", &arg("k.npy"), "a.png"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("with 1 images the cameras must be shaped (1,4,4) or (1,3,4) and (1,3,3)"), "{err}");
    let (code, _, err) =
        run(Command::new(&exe).args(["--model", "m", "--extrinsics", &arg("bad.npy"), "--intrinsics", &arg("k.npy"), "a.png"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a .npy file"), "{err}");
    // Camera values are the library's to check: NaN is reported by da3_infer_files.
    let mut nan = [0f32; 16];
    nan[0] = f32::NAN;
    write_npy(&dir.join("nan.npy"), &[1, 4, 4], &nan, false);
    write_npy(&dir.join("k1.npy"), &[1, 3, 3], &[100., 0., 10., 0., 100., 10., 0., 0., 1.], false);
    let png = dir.join("a.png");
    image::RgbImage::from_fn(28, 28, |x, y| image::Rgb([x as u8 * 9, y as u8 * 9, 90])).save(&png).unwrap();
    let (code, _, err) = run(Command::new(&exe).env("DA3_DEVICE", "cpu").args([
        "--model",
        &checkpoint().unwrap(),
        "--res",
        "28",
        "--extrinsics",
        &arg("nan.npy"),
        "--intrinsics",
        &arg("k1.npy"),
        &png.display().to_string(),
    ]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("DA3_ERR_INVALID_ARGUMENT") && err.contains("non-finite"), "{err}");
}

#[test]
fn forward_only_entry_and_memory_stats_from_c() {
    forward_only_entry_and_memory_stats(Build::Plain);
}

#[test]
fn forward_only_entry_and_memory_stats_under_sanitizers() {
    forward_only_entry_and_memory_stats(Build::Sanitized);
}

/// `tests/c/test_accel.c`: da3_infer_preprocessed against da3_infer, memory statistics.
fn forward_only_entry_and_memory_stats(build: Build) {
    if !build.available() {
        return;
    }
    let checkpoint = checkpoint().expect("checkpoint");
    let dir = scratch(if build == Build::Plain { "accel" } else { "accel-asan" });
    let exe = dir.join("test_accel");
    compile(&[root().join("tests/c/test_accel.c")], &exe, build.flags());
    let (code, out, err) = build.run(Command::new(&exe).arg(&checkpoint), "tests/c/test_accel.c");
    assert_error_suite_passed(code, &out, &err, "test_accel");
}

/// The benchmark program runs once, tiny, on the CPU, and prints its JSON contract.
#[test]
fn benchmark_example_runs_and_prints_json_lines() {
    benchmark_example_prints_json_lines(Build::Plain);
}

#[test]
fn benchmark_example_runs_under_sanitizers() {
    benchmark_example_prints_json_lines(Build::Sanitized);
}

fn benchmark_example_prints_json_lines(build: Build) {
    if !build.available() {
        return;
    }
    let checkpoint = checkpoint().expect("checkpoint");
    let dir = scratch(if build == Build::Plain { "bench" } else { "bench-asan" });
    let exe = dir.join("da3_bench");
    compile(&[root().join("examples_c/da3_bench.c")], &exe, build.flags());
    let (code, out, err) = build.run(
        Command::new(&exe).env("DA3_DEVICE", "cpu").args([
            "--model", &checkpoint, "--views", "1,3", "--warmup", "0", "--iters", "1", "--frame", "64x48", "--input",
            "42x56", "--precision", "fp32",
        ]),
        "examples_c/da3_bench.c",
    );
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
        assert!(v["peak_mib"].is_null() && v["loaded_mib"].is_null(), "{line}");
        assert!(v["median_ms"].as_f64().unwrap() > 0.0 && v["min_ms"].as_f64().unwrap() <= v["median_ms"].as_f64().unwrap());
        let views = v["views"].as_f64().unwrap();
        let expected = views / (v["median_ms"].as_f64().unwrap() / 1e3);
        assert!((v["views_per_s"].as_f64().unwrap() - expected).abs() <= 0.01 + expected * 1e-3, "{line}");
        assert!(["forward", "e2e"].contains(&v["mode"].as_str().unwrap()) && v["accelerate"].is_boolean());
    }
    assert!(err.contains("median_ms"), "no table on stderr:\n{err}");
}

// ---------------------------------------------------------------------------------------------
// The GPU-run examples, on the CPU under ASan/UBSan (their GPU runs: scripts/device/)
// ---------------------------------------------------------------------------------------------

/// `examples_c/da3_multi_gpu.c` with two CPU replicas: the throughput mode (scenes spread over
/// the replicas, depth dumped) and the capacity mode with a forced shard, smallest sizes.
#[test]
fn multi_device_example_runs_under_sanitizers() {
    if !Build::Sanitized.available() {
        return;
    }
    let checkpoint = checkpoint().expect("checkpoint");
    let dir = scratch("multi-gpu-asan");
    let exe = dir.join("da3_multi_gpu");
    compile(&[root().join("examples_c/da3_multi_gpu.c")], &exe, &[&SANITIZE[..], &["-ldl"]].concat());
    let what = "examples_c/da3_multi_gpu.c";

    let (code, _, err) = run_sanitized(&mut Command::new(&exe), what);
    assert_eq!(code, 2, "no arguments is a usage error:\n{err}");
    assert!(err.contains("usage: da3_multi_gpu"), "{err}");

    let dump = dir.join("throughput.f32");
    let (code, out, err) = run_sanitized(
        Command::new(&exe)
            .args(["throughput", "--model", &checkpoint, "--devices", "cpu,cpu", "--scenes", "2", "--views", "1"])
            .args(["--repeat", "1", "--dump"])
            .arg(&dump),
        what,
    );
    println!("{out}");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("replicas: 2 (cpu, cpu)") && out.contains("RESULT throughput devices=cpu,cpu scenes=2 views=1"), "{out}");
    // Two scenes of one 504x378 view (both multiples of 14: no resize) as float32.
    assert_eq!(std::fs::metadata(&dump).unwrap().len(), 2 * 504 * 378 * 4);

    let dump = dir.join("shard.f32");
    let (code, out, err) = run_sanitized(
        Command::new(&exe)
            .args(["capacity", "--model", &checkpoint, "--devices", "cpu,cpu", "--views", "1", "--placement", "shard"])
            .args(["--check-views", "2", "--dump"])
            .arg(&dump),
        what,
    );
    println!("{out}");
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("check scene: 2 views") && out.contains("status=ok"), "{out}");
    assert!(out.contains("RESULT capacity devices=cpu,cpu placement=shard largest_views=1"), "{out}");
    assert_eq!(std::fs::metadata(&dump).unwrap().len(), 2 * 504 * 378 * 4);
}

/// `examples_c/da3_oom.c` on the CPU: everything but its GPU ballast and the out-of-memory
/// itself (forcing one on the CPU takes an address-space limit, which ASan's shadow memory rules
/// out; tests/oom.rs covers that case). A tiny request, then its fixed 1x518 request on the same
/// handle; with no out-of-memory it reports FAIL and exits 1, as it should.
#[test]
fn out_of_memory_example_runs_under_sanitizers() {
    if !Build::Sanitized.available() {
        return;
    }
    let checkpoint = checkpoint().expect("checkpoint");
    let dir = scratch("oom-asan");
    let exe = dir.join("da3_oom");
    compile(&[root().join("examples_c/da3_oom.c")], &exe, &[&SANITIZE[..], &["-ldl"]].concat());
    let what = "examples_c/da3_oom.c";

    let (code, _, err) = run_sanitized(&mut Command::new(&exe), what);
    assert_eq!(code, 2, "no arguments is a usage error:\n{err}");
    assert!(err.contains("usage: da3_oom"), "{err}");

    let (code, out, err) =
        run_sanitized(Command::new(&exe).env("DA3_DEVICE", "cpu").args([&checkpoint, "0", "1", "28"]), what);
    println!("{out}");
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("model da3-small on cpu") && out.contains("1 x 28 x 28: DA3_OK"), "{out}");
    assert!(out.contains("1 x 518 x 518: DA3_OK") && out.contains("out of memory NOT reported"), "{out}");
}
