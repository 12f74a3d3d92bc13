//! Embeds the libtorch directory as a run path so the library, its tests and the C
//! examples find libtorch without LD_LIBRARY_PATH on the machine that built them.
//! Elsewhere (a carried build) LD_LIBRARY_PATH pointing at `torch/lib` takes over.
use std::env;
use std::path::PathBuf;
use std::process::Command;

fn torch_lib_dir() -> Option<PathBuf> {
    if let Ok(dir) = env::var("LIBTORCH") {
        return Some(PathBuf::from(dir).join("lib"));
    }
    let python = if env::var_os("VIRTUAL_ENV").is_some() { "python" } else { "python3" };
    let out = Command::new(python)
        .args(["-c", "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))"])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(PathBuf::from(String::from_utf8(out.stdout).ok()?.trim()))
}

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=VIRTUAL_ENV");
    println!("cargo:rerun-if-changed=build.rs");
    if let Some(dir) = torch_lib_dir() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
        println!("cargo:rustc-env=DA3_BUILD_TORCH_LIB={}", dir.display());
    }
}
