//! Links libda3 the way a C host does: `-lda3` from `DA3_LIB_DIR` (default: the library's own
//! `target/release`), with run paths `$ORIGIN` (a backend directory holding libda3.so.0 beside
//! libtriton_da3.so, as `scripts/triton_backend.sh` lays it out) before that directory.
//! Triton's own functions stay undefined: the server that loads the backend provides them.
use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=DA3_LIB_DIR");
    println!("cargo:rerun-if-changed=build.rs");
    let lib_dir = match env::var_os("DA3_LIB_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../target/release"),
    };
    let lib_dir = lib_dir.canonicalize().unwrap_or(lib_dir);
    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    println!("cargo:rustc-link-lib=dylib=da3");
    println!(
        "cargo:rustc-cdylib-link-arg=-Wl,-rpath,$ORIGIN:{}",
        lib_dir.display()
    );
}
