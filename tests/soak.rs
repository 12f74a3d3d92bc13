//! The soak, short, on the CPU: `examples_c/da3_soak.c` built strictly against the library
//! `cargo test` built, run with 8 threads on one da3-small handle for 20 s at a low
//! resolution (every entry point, resize method, pixel format and crop of its input table);
//! every result must be bit-identical to the serial result of its input, no call may fail, and
//! RSS must be flat over the second half of the timed window. The long runs (10 minutes on the
//! CPU, the GPU script) are in bench/results and scripts/device/soak.sh.
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

/// Where `cargo test` put libda3's cdylib: beside this executable (`deps/`) or one level up.
fn lib_dir() -> PathBuf {
    let name = format!("{}da3{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    [deps.to_path_buf(), deps.parent().unwrap().to_path_buf()]
        .into_iter()
        .find(|d| d.join(&name).is_file())
        .unwrap_or_else(|| panic!("{name} not found near {}", deps.display()))
}

/// `examples_c/da3_soak.c` compiled with the suite's strict flags into `out`.
fn compile_soak(out: &Path) {
    let root = common::repo_root();
    let lib = lib_dir();
    let cc = std::env::var("CC").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "cc".into());
    let built = Command::new(&cc)
        .args(["-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-pthread", "-I"])
        .arg(root.join("include"))
        .arg("-o")
        .arg(out)
        .arg(root.join("examples_c/da3_soak.c"))
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .arg("-lda3")
        .output()
        .unwrap_or_else(|e| panic!("cannot run the C compiler `{cc}`: {e}"));
    assert!(
        built.status.success(),
        "compiling da3_soak.c failed:\n{}{}",
        String::from_utf8_lossy(&built.stdout),
        String::from_utf8_lossy(&built.stderr)
    );
}

#[test]
fn many_threads_on_one_handle_give_the_serial_results_and_flat_memory() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("soak");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("da3_soak");
    compile_soak(&exe);
    let images = common::repo_root().join("assets/images");
    let photos = format!("{},{}", images.join("soh_000.png").display(), images.join("soh_010.png").display());
    let json = dir.join("soak.json");
    let checkpoint = common::oracle_checkpoint("da3-small");
    let output = Command::new(&exe)
        .env("DA3_DEVICE", "cpu")
        .arg("--model")
        .arg(&checkpoint)
        .args(["--threads", "8", "--seconds", "20", "--process-res", "56", "--inputs", "8", "--sample-ms", "100"])
        // The program's default flatness bound (32 MiB of fitted rise over the second half): a
        // leak-free run here fitted 2 MiB (12 MiB before glibc's mmap threshold was fixed), a
        // temporary 1 MiB leak per call 102 MiB.
        .args(["--stall-s", "60", "--images", &photos, "--json"])
        .arg(&json)
        .output()
        .expect("runs da3_soak");
    let (out, err) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    println!("{out}");
    assert_eq!(output.status.code(), Some(0), "da3_soak failed:\n{out}\n{err}");

    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    assert_eq!((v["verdict"].as_str(), v["device"].as_str(), v["threads"].as_u64()), (Some("pass"), Some("cpu"), Some(8)));
    assert_eq!((v["mismatches"].as_u64(), v["errors"].as_u64()), (Some(0), Some(0)), "{out}");
    // Bit-identical on the CPU in fp32: no other bit pattern was accepted.
    assert_eq!(v["identical"], v["results_checked"], "{out}");
    assert_eq!(v["variants_max"].as_u64(), Some(1));
    for entry in ["da3_infer", "da3_infer_scenes", "da3_infer_files", "da3_infer_preprocessed"] {
        assert!(v["calls_by_entry"][entry].as_u64().unwrap() > 0, "{entry} never called: {out}");
    }
    let inputs = v["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 8);
    // The warm-up alone runs every input once per thread.
    assert!(inputs.iter().all(|i| i["results"].as_u64().unwrap() >= 8), "{out}");
    assert!(v["timed_calls"].as_u64().unwrap() > 0 && v["rss_mib"]["flat"] == true, "{out}");
    assert!(v["rss_mib"]["second_half_samples"].as_u64().unwrap() >= 50, "{out}");
    assert!(v["device_reserved_mib"].is_null(), "no GPU figures on the CPU");
    // The file adds the samples to the summary.
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(file["samples"].as_array().unwrap().len() > 100);
}
