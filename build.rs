//! Embeds the libtorch directory as a run path so the library, its tests and the C
//! examples find libtorch without LD_LIBRARY_PATH on the machine that built them.
//! Elsewhere (a carried build) LD_LIBRARY_PATH pointing at `torch/lib` takes over.
//!
//! Also builds `libda3_cuda_support.so` from `cpp/cuda_support.cpp` (CUDA graphs and
//! allocator statistics, which tch does not expose) when libtorch has its CUDA backend and
//! the CUDA headers are there. It is a separate library, opened at run time, so that
//! libda3 keeps loading on machines without CUDA; without it the library still builds and
//! the accelerated runner runs without CUDA graphs.
use std::env;
use std::path::{Path, PathBuf};
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

/// Complete CUDA runtime headers: `DA3_CUDA_INCLUDE`, else `CUDA_HOME/include`, else the
/// copy Triton ships next to torch (the `nvidia/cu13` wheel's headers lack `crt/`). The shim
/// uses only long-stable runtime declarations, so a minor version apart is fine.
fn cuda_include_dir(torch_lib: &Path) -> Option<PathBuf> {
    if let Ok(dir) = env::var("DA3_CUDA_INCLUDE") {
        return Some(PathBuf::from(dir));
    }
    let site_packages = torch_lib.parent()?.parent()?;
    let cuda_home = env::var("CUDA_HOME").ok().map(|h| PathBuf::from(h).join("include"));
    let bundled = ["nvidia/cu13/include", "triton/backends/nvidia/include"].map(|d| site_packages.join(d));
    cuda_home.into_iter().chain(bundled).find(|d| d.join("cuda_runtime_api.h").is_file() && d.join("crt/host_config.h").is_file())
}

/// The directory holding `libcudart.so.<major>` that libtorch_cuda uses.
fn cudart_dir(torch_lib: &Path) -> Option<(PathBuf, String)> {
    let site_packages = torch_lib.parent()?.parent()?;
    let cuda_home = env::var("CUDA_HOME").ok().map(|h| PathBuf::from(h).join("lib64"));
    let dirs = ["nvidia/cu13/lib", "nvidia/cuda_runtime/lib"].map(|d| site_packages.join(d));
    cuda_home.into_iter().chain(dirs).find_map(|dir| {
        let name = std::fs::read_dir(&dir).ok()?.filter_map(|e| e.ok()?.file_name().into_string().ok()).find(|n| n.starts_with("libcudart.so"))?;
        Some((dir, name))
    })
}

/// Compiles and links the shim; returns its path, or why it was not built.
fn build_cuda_support(torch_lib: &Path) -> Result<PathBuf, String> {
    if !torch_lib.join("libtorch_cuda.so").is_file() {
        return Err(format!("{} has no libtorch_cuda.so (a CPU-only libtorch)", torch_lib.display()));
    }
    let cuda_include = cuda_include_dir(torch_lib).ok_or("no CUDA headers found (set DA3_CUDA_INCLUDE)")?;
    let (cudart_dir, cudart) = cudart_dir(torch_lib).ok_or("no libcudart found (set CUDA_HOME)")?;
    let torch_include = torch_lib.parent().ok_or("torch/lib has no parent")?.join("include");
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    let output = out_dir.join("libda3_cuda_support.so");
    let compiler = cc::Build::new().cpp(true).opt_level(2).pic(true).cargo_metadata(false).get_compiler();
    let mut command = compiler.to_command();
    command
        .args(["-std=c++17", "-shared", "-D_GLIBCXX_USE_CXX11_ABI=1", "-w"])
        .arg("-I")
        .arg(&torch_include)
        .arg("-I")
        .arg(&cuda_include)
        .arg("cpp/cuda_support.cpp")
        .arg("-o")
        .arg(&output)
        .arg(format!("-L{}", torch_lib.display()))
        .arg(format!("-L{}", cudart_dir.display()))
        .args(["-Wl,--no-as-needed", "-ltorch_cuda", "-lc10_cuda", "-ltorch_cpu", "-lc10"])
        .arg(format!("-l:{cudart}"))
        .arg(format!("-Wl,-rpath,{}", torch_lib.display()))
        .arg(format!("-Wl,-rpath,{}", cudart_dir.display()));
    let result = command.output().map_err(|e| format!("cannot run the C++ compiler: {e}"))?;
    if !result.status.success() {
        return Err(format!("the C++ compiler failed:\n{}", String::from_utf8_lossy(&result.stderr)));
    }
    // Next to libda3.so in target/<profile>/, where the library looks first.
    if let Some(profile_dir) = out_dir.ancestors().nth(3) {
        let _ = std::fs::copy(&output, profile_dir.join("libda3_cuda_support.so"));
    }
    Ok(output)
}

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=VIRTUAL_ENV");
    println!("cargo:rerun-if-changed=build.rs");
    if let Some(dir) = torch_lib_dir() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
        println!("cargo:rustc-env=DA3_BUILD_TORCH_LIB={}", dir.display());
        println!("cargo:rerun-if-changed=cpp/cuda_support.cpp");
        println!("cargo:rerun-if-env-changed=DA3_CUDA_INCLUDE");
        match build_cuda_support(&dir) {
            Ok(path) => println!("cargo:rustc-env=DA3_BUILD_CUDA_SUPPORT={}", path.display()),
            Err(why) => println!("cargo:warning=libda3_cuda_support.so not built: {why}"),
        }
    }
}
