//! Geometry and export end to end: `examples_c/da3_infer` (built here against the library of
//! this test run) on the two sample photos with the oracle's random-weight da3-small
//! checkpoint writes every format (--ply --glb --colmap --png16 --pfm --points --at-input), and
//! `tests/export/check_exports.py` checks each with a reader independent of libda3 (plyfile,
//! trimesh, numpy, PIL, its own COLMAP text and PFM parsers) against the official package's
//! point construction and preprocessing. Once with the default resize and a confidence
//! percentile, once with a centre crop and COLMAP in input pixels.
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The directory of the libda3 this test run built (beside the test executable, or one up).
fn lib_dir() -> PathBuf {
    let name = format!("{}da3{}", std::env::consts::DLL_PREFIX, std::env::consts::DLL_SUFFIX);
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap().to_path_buf();
    [deps.clone(), deps.parent().unwrap().to_path_buf()]
        .into_iter()
        .find(|d| d.join(&name).is_file())
        .unwrap_or_else(|| panic!("{name} not found beside {}", deps.display()))
}

/// `examples_c/da3_infer` compiled strictly into `dir` (one per test: they run in parallel).
fn example(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let exe = dir.join("da3_infer");
    let lib = lib_dir();
    let cc = std::env::var("CC").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "cc".into());
    let out = Command::new(&cc)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I"])
        .arg(root().join("include"))
        .arg("-o")
        .arg(&exe)
        .arg(root().join("examples_c/da3_infer.c"))
        .arg("-L")
        .arg(&lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lda3", "-lm"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cc}: {e}"));
    assert!(out.status.success(), "compiling da3_infer failed:\n{}", String::from_utf8_lossy(&out.stderr));
    exe
}

fn checkpoint() -> PathBuf {
    let dir = std::env::var_os("DA3_ORACLE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/oracle"))
        .join("da3-small/checkpoint");
    assert!(dir.join("model.safetensors").is_file(), "{} missing: run tests/oracle/run_oracle.sh da3-small target/oracle/da3-small", dir.display());
    dir
}

fn run_case(name: &str, method: &str, percentile: &str, input_pixels: bool) {
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("export").join(name);
    let _ = std::fs::remove_dir_all(&out_dir);
    let images = [root().join("assets/images/soh_000.png"), root().join("assets/images/soh_010.png")];
    let mut cmd = Command::new(example(&out_dir.with_extension("bin")));
    cmd.arg("--model")
        .arg(checkpoint())
        .args(["--precision", "fp32", "--res", "280", "--resize-method", method, "--conf-percentile", percentile])
        .args(["--ply", "--glb", "--colmap", "--png16", "--pfm", "--points", "--at-input", "--out"])
        .arg(&out_dir);
    if input_pixels {
        cmd.arg("--input-pixels");
    }
    let out = cmd.args(&images).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "da3_infer failed:\n{text}");
    for wrote in ["scene.ply", "scene.glb", "colmap", "depth16_1.png", "depth_1.pfm", "points.npy", "depth_input_1.npy"] {
        assert!(text.contains(wrote), "no {wrote} in:\n{text}");
    }
    let mut check = Command::new(root().join(".venv/bin/python"));
    check
        .arg(root().join("tests/export/check_exports.py"))
        .arg(&out_dir)
        .arg("--images")
        .args(&images)
        .args(["--res", "280", "--method", method, "--conf-percentile", percentile]);
    if input_pixels {
        check.arg("--input-pixels");
    }
    let out = check.output().expect("cannot run .venv/bin/python (scripts/setup.sh makes it)");
    let report = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    println!("{report}");
    assert!(out.status.success() && report.contains(" checks passed"), "the export checks failed:\n{report}");
}

#[test]
fn every_format_reads_back_with_independent_readers() {
    run_case("resize", "upper_bound_resize", "10", false);
}

#[test]
fn crops_and_input_pixels_read_back_with_independent_readers() {
    run_case("crop", "upper_bound_crop", "0", true);
}
