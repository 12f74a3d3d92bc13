//! Embeds the libtorch directory as a run path so the library, its tests and the C
//! examples find libtorch without LD_LIBRARY_PATH on the machine that built them.
//!
//! The shared library (cdylib) is also made shippable: SONAME `libda3.so.<major>`, run paths
//! `$ORIGIN` and `$ORIGIN/../lib` BEFORE the build machine's libtorch directory (so a bundle
//! with libtorch beside libda3, `scripts/bundle.sh`, loads its own copy and the build tree
//! keeps working with no LD_LIBRARY_PATH; elsewhere the absolute entry names nothing and is
//! skipped), and only the `da3_*` C functions exported (see `cdylib_link_args`). Because of
//! the SONAME, programs linked against `target/<profile>/libda3.so` ask for `libda3.so.<major>`
//! at run time: the build leaves that name beside the library as a symlink.
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
        // Beside libda3 in an installed bundle first, then the build machine's libraries.
        .arg("-Wl,-rpath,$ORIGIN:$ORIGIN/../lib")
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

/// Link arguments of the shared library only (tests and examples link the rlib).
///
/// Exports: rustc hands the linker its own anonymous version script listing every
/// `#[no_mangle]` symbol of every crate linked in (tch's `tch_*` stream callbacks, bzip2's
/// `bz_internal_error`), and GNU ld refuses a second version script ("anonymous version tag
/// cannot be combined with other version tags"). `--exclude-libs,ALL` instead keeps every
/// symbol that comes from a static archive (the dependency rlibs and their C/C++ objects) out
/// of the dynamic symbol table, leaving the ones defined in this crate's own objects: the
/// `da3_*` functions. `tests/install.rs` checks the result with `nm -D --defined-only`.
fn cdylib_link_args() {
    let major = env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    let soname = format!("libda3.so.{major}");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    // Emitted before the absolute libtorch run path of `main`, so they come first in RUNPATH.
    println!("cargo:rustc-cdylib-link-arg=-Wl,-rpath,$ORIGIN:$ORIGIN/../lib");
    println!("cargo:rustc-cdylib-link-arg=-Wl,--exclude-libs,ALL");
    // `libda3.so.<major>` -> `libda3.so` where cargo leaves the library: <profile>/ for
    // `cargo build`, <profile>/deps/ for `cargo test` (dangling until the link, harmless).
    let Ok(out_dir) = env::var("OUT_DIR") else { return };
    if let Some(profile_dir) = Path::new(&out_dir).ancestors().nth(3) {
        for dir in [profile_dir.to_path_buf(), profile_dir.join("deps")] {
            let link = dir.join(&soname);
            if std::fs::symlink_metadata(&link).is_err() {
                let made = std::fs::create_dir_all(&dir).and_then(|()| std::os::unix::fs::symlink("libda3.so", &link));
                if let Err(e) = made {
                    println!("cargo:warning=cannot create {}: {e}", link.display());
                }
            }
        }
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=VIRTUAL_ENV");
    println!("cargo:rerun-if-changed=build.rs");
    cdylib_link_args();
    if let Some(dir) = torch_lib_dir() {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
        println!("cargo:rustc-env=DA3_BUILD_TORCH_LIB={}", dir.display());
        println!("cargo:rerun-if-changed=cpp/cuda_support.cpp");
        println!("cargo:rerun-if-changed=cpp/glue_kernels_source.h");
        println!("cargo:rerun-if-env-changed=DA3_CUDA_INCLUDE");
        // `cargo miri` (set for build scripts) neither links nor loads the shim: skip its C++ build.
        if env::var_os("CARGO_CFG_MIRI").is_some() {
            return;
        }
        match build_cuda_support(&dir) {
            Ok(path) => println!("cargo:rustc-env=DA3_BUILD_CUDA_SUPPORT={}", path.display()),
            Err(why) => println!("cargo:warning=libda3_cuda_support.so not built: {why}"),
        }
    }
}
