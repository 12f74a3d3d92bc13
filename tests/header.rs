//! Keeps the committed `include/da3.h` identical to what cbindgen generates from `src/ffi/`
//! (`mod.rs` and the modules it declares) with `cbindgen.toml`. Run with `DA3_UPDATE_HEADER=1`
//! to rewrite the header instead.
use std::path::Path;

fn generate() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(root.join("cbindgen.toml")).expect("cannot read cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(root.join("src/ffi/mod.rs"))
        .generate()
        .expect("cbindgen cannot generate the header from src/ffi/mod.rs");
    let mut out = Vec::new();
    bindings.write(&mut out);
    String::from_utf8(out).expect("cbindgen wrote non-UTF-8")
}

#[test]
fn committed_header_is_up_to_date() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("include/da3.h");
    let generated = generate();
    if std::env::var_os("DA3_UPDATE_HEADER").is_some_and(|v| v != "0" && !v.is_empty()) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &generated).unwrap();
        eprintln!("wrote {} ({} lines)", path.display(), generated.lines().count());
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    if committed != generated {
        let first_diff = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        let line = |text: &str| text.lines().nth(first_diff).unwrap_or("<end of file>").to_owned();
        panic!(
            "include/da3.h is out of date with src/ffi/ / cbindgen.toml (first difference at line {}):\n  \
             committed: {}\n  generated: {}\nRegenerate it with:\n    \
             DA3_UPDATE_HEADER=1 cargo test --release --test header\nand commit the result.",
            first_diff + 1,
            line(&committed),
            line(&generated)
        );
    }
}

#[test]
fn header_version_macros_match_cargo() {
    let header = generate();
    for (name, value) in [
        ("DA3_VERSION_MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("DA3_VERSION_MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("DA3_VERSION_PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ] {
        let line = format!("#define {name} {value}");
        assert!(header.lines().any(|l| l.trim_end() == line), "header lacks `{line}`");
    }
}

#[test]
fn header_declares_the_whole_api() {
    let header = generate();
    for symbol in [
        "da3_version(void)",
        "da3_status_name(",
        "da3_last_error_message(void)",
        "da3_create(",
        "da3_free(",
        "da3_infer(",
        "da3_infer_files(",
        "da3_result_free(",
        "da3_model_capabilities(",
        "da3_model_backbone_depth(",
        "da3_result_alignment_scale(",
        "da3_result_feature_count(",
        "da3_result_feature_info(",
        "da3_result_feature_data(",
        "da3_result_warning_code(",
        "#define DA3_CAP_KNOWN_CAMERAS",
        "const float *extrinsics;",
        "const uint32_t *export_feat_layers;",
        "typedef struct da3_model da3_model;",
        "typedef struct da3_result da3_result;",
        "typedef enum da3_status {",
        "#ifdef __cplusplus",
        "#ifndef DA3_H",
    ] {
        assert!(header.contains(symbol), "header lacks `{symbol}`");
    }
}
