//! Install and ship, as a C++ host does it: `scripts/install.sh` into a scratch prefix,
//! `scripts/bundle.sh PREFIX cpu` beside it, the C++17 consumer `tests/install/consumer.cpp`
//! built twice against the installed files (CMake `find_package(da3 CONFIG)` + `da3::da3`,
//! and `pkg-config --cflags --libs da3`), then the whole prefix MOVED elsewhere and both
//! programs run there without LD_LIBRARY_PATH, loading libda3 and libtorch from the moved
//! prefix. Also: the installed library's SONAME, `$ORIGIN` run path and exports (`da3_*` only).
//!
//! Needs `pkg-config`, a C++ compiler (`CXX`, default `c++`) and CMake (`.venv/bin/cmake`, else
//! `cmake`). The consumers run the oracle's random-weight da3-small checkpoint
//! (`DA3_TEST_CHECKPOINT` overrides); without it that part is skipped, saying so.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where `cargo test` left the libda3.so it built for this run (see tests/c_api.rs).
fn lib_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("no current_exe");
    let deps = exe.parent().expect("test executable has no directory").to_path_buf();
    let candidates = [deps.clone(), deps.parent().map(Path::to_path_buf).unwrap_or_default()];
    candidates
        .iter()
        .find(|d| d.join("libda3.so").is_file())
        .cloned()
        .unwrap_or_else(|| panic!("libda3.so not found in {candidates:?}; build it with `cargo build --release --lib`"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("install").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `cmd`, asserting success; returns stdout.
fn run(cmd: &mut Command, what: &str) -> String {
    let output = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    let out = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{out}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

fn major() -> &'static str {
    env!("CARGO_PKG_VERSION_MAJOR")
}

fn install(prefix: &Path) {
    let out = run(
        Command::new("bash").arg(root().join("scripts/install.sh")).arg("--lib-dir").arg(lib_dir()).arg(prefix),
        "scripts/install.sh",
    );
    println!("{out}");
}

/// The `da3_*` functions `include/da3.h` declares.
fn declared_functions() -> BTreeSet<String> {
    let header = std::fs::read_to_string(root().join("include/da3.h")).unwrap();
    let mut names = BTreeSet::new();
    for line in header.lines().filter(|l| !l.starts_with(' ') && !l.starts_with('#') && !l.starts_with('*')) {
        if let Some(open) = line.find('(') {
            if let Some(name) = line[..open].split(|c: char| !c.is_alphanumeric() && c != '_').last() {
                if name.starts_with("da3_") {
                    names.insert(name.to_string());
                }
            }
        }
    }
    names
}

#[test]
fn installed_library_is_versioned_relocatable_and_exports_only_da3() {
    let prefix = scratch("layout");
    install(&prefix);
    let lib = prefix.join("lib");
    let real = lib.join(format!("libda3.so.{}", version()));
    assert!(real.is_file() && !real.is_symlink(), "{} is not a file", real.display());
    for (link, target) in [
        (format!("libda3.so.{}", major()), format!("libda3.so.{}", version())),
        ("libda3.so".into(), format!("libda3.so.{}", major())),
    ] {
        let points_to = std::fs::read_link(lib.join(&link)).unwrap_or_else(|e| panic!("{link}: {e}"));
        assert_eq!(points_to, Path::new(&target), "{link} points to {}", points_to.display());
    }
    for file in [
        "include/da3.h",
        "lib/pkgconfig/da3.pc",
        "lib/cmake/da3/da3-config.cmake",
        "lib/cmake/da3/da3-config-version.cmake",
    ] {
        assert!(prefix.join(file).is_file(), "{file} not installed");
    }
    if root().join("include/da3.hpp").is_file() {
        assert!(prefix.join("include/da3.hpp").is_file(), "include/da3.hpp not installed");
    }
    for file in ["lib/pkgconfig/da3.pc", "lib/cmake/da3/da3-config.cmake", "lib/cmake/da3/da3-config-version.cmake"] {
        let text = std::fs::read_to_string(prefix.join(file)).unwrap();
        assert!(!text.contains('@'), "{file} has an unfilled @PLACEHOLDER@:\n{text}");
        assert!(!text.contains(prefix.to_str().unwrap()), "{file} holds the absolute prefix (not relocatable)");
    }

    let dynamic = run(Command::new("readelf").arg("-d").arg(&real), "readelf -d");
    let soname = format!("Library soname: [libda3.so.{}]", major());
    assert!(dynamic.contains(&soname), "no `{soname}` in:\n{dynamic}");
    let runpath = dynamic.lines().find(|l| l.contains("(RUNPATH)")).unwrap_or_else(|| panic!("no RUNPATH:\n{dynamic}"));
    assert!(
        runpath.contains("runpath: [$ORIGIN:$ORIGIN/../lib"),
        "the run path does not start with $ORIGIN: {runpath}"
    );

    let symbols = run(Command::new("nm").args(["-D", "--defined-only"]).arg(&real), "nm -D --defined-only");
    let exported: BTreeSet<String> = symbols
        .lines()
        .filter_map(|l| l.split_whitespace().nth(2))
        .map(|s| s.split('@').next().unwrap().to_string())
        .collect();
    let foreign: Vec<&String> =
        exported.iter().filter(|s| !s.starts_with("da3_") && !matches!(s.as_str(), "_init" | "_fini")).collect();
    assert!(foreign.is_empty(), "libda3 exports symbols other than da3_*: {foreign:?}");
    let declared = declared_functions();
    assert!(declared.len() > 40, "too few functions parsed from da3.h: {declared:?}");
    let missing: Vec<&String> = declared.difference(&exported).collect();
    assert!(missing.is_empty(), "da3.h functions not exported: {missing:?}");
    let undeclared: Vec<&String> =
        exported.iter().filter(|s| s.starts_with("da3_")).filter(|s| !declared.contains(*s)).collect();
    assert!(undeclared.is_empty(), "exported but not in da3.h: {undeclared:?}");
    println!("{} symbols exported, all da3_*; SONAME libda3.so.{}; {}", exported.len(), major(), runpath.trim());
    let _ = std::fs::remove_dir_all(&prefix);
}

fn cmake() -> PathBuf {
    let venv = root().join(".venv/bin/cmake");
    if venv.is_file() {
        venv
    } else {
        PathBuf::from("cmake")
    }
}

fn cxx() -> String {
    std::env::var("CXX").ok().filter(|s| !s.is_empty()).unwrap_or_else(|| "c++".into())
}

fn checkpoint() -> Option<PathBuf> {
    let path = std::env::var_os("DA3_TEST_CHECKPOINT")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/oracle/da3-small/checkpoint"));
    path.join("model.safetensors").is_file().then_some(path)
}

/// A consumer run from the moved prefix: no LD_LIBRARY_PATH, CPU, the checkpoint's depth.
fn run_consumer(exe: &Path, checkpoint: &Path, prefix: &Path) {
    // Every library that is not the system's resolves inside the moved prefix.
    let ldd = run(Command::new("ldd").arg(exe).env_remove("LD_LIBRARY_PATH"), "ldd");
    for name in ["libda3.so.", "libtorch_cpu.so", "libc10.so", "libgomp.so"] {
        let line =
            ldd.lines().find(|l| l.trim_start().starts_with(name)).unwrap_or_else(|| panic!("{name} not in:\n{ldd}"));
        assert!(
            line.contains(&format!("=> {}/", prefix.join("bin/../lib").display())),
            "{name} not loaded from the moved prefix: {line}"
        );
    }
    assert!(!ldd.contains("not found"), "unresolved libraries:\n{ldd}");
    let out = run(
        Command::new(exe)
            .arg(checkpoint)
            .current_dir(prefix)
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("DA3_DEVICE")
            .env_remove("DA3_DEVICES")
            .env_remove("DA3_CUDA_SUPPORT_LIB"),
        &format!("{} from the moved prefix", exe.display()),
    );
    println!("{}:\n{out}", exe.display());
    assert!(out.contains(&format!("da3 {}\n", version())), "no version line:\n{out}");
    assert!(out.contains("device cpu\n"), "not on the CPU:\n{out}");
    let range = out.lines().find_map(|l| l.split_once(" range ")).unwrap_or_else(|| panic!("no depth range:\n{out}")).1;
    let (lo, hi) = range.split_once(" .. ").unwrap_or_else(|| panic!("bad range {range}"));
    let (lo, hi): (f64, f64) = (lo.trim().parse().unwrap(), hi.trim().parse().unwrap());
    assert!(lo.is_finite() && hi.is_finite() && lo > 0.0 && hi > lo, "implausible depth range {lo} .. {hi}");
}

#[test]
fn cpp_consumers_build_against_the_install_and_run_from_a_moved_bundle() {
    let base = scratch("ship");
    let prefix = base.join("prefix");
    install(&prefix);
    let bundle = run(
        Command::new("bash").arg(root().join("scripts/bundle.sh")).arg(&prefix).arg("cpu"),
        "scripts/bundle.sh cpu",
    );
    println!("{bundle}");
    for name in ["libtorch_cpu.so", "libc10.so", "libgomp.so.1"] {
        assert!(prefix.join("lib").join(name).is_file(), "bundle.sh did not copy {name}:\n{bundle}");
    }
    assert!(bundle.contains("total"), "bundle.sh printed no total:\n{bundle}");
    let bin = prefix.join("bin");

    // CMake: find_package(da3 CONFIG REQUIRED) + da3::da3 (tests/install/CMakeLists.txt).
    let build = base.join("cmake-build");
    run(
        Command::new(cmake())
            .args(["-G", "Unix Makefiles", "-S"])
            .arg(root().join("tests/install"))
            .arg("-B")
            .arg(&build)
            .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
            .arg(format!("-DCONSUMER_OUTPUT_DIR={}", bin.display()))
            .arg(format!("-DCMAKE_CXX_COMPILER={}", cxx())),
        "cmake configure",
    );
    run(Command::new(cmake()).arg("--build").arg(&build), "cmake --build");
    let cmake_exe = bin.join("consumer");
    assert!(cmake_exe.is_file(), "CMake built no {}", cmake_exe.display());
    // The C++ example (examples_cpp/, da3.hpp) built by its own CMakeLists against the install,
    // its binary beside the consumers so that it moves with the prefix.
    let example_build = base.join("example-build");
    run(
        Command::new(cmake())
            .args(["-G", "Unix Makefiles", "-S"])
            .arg(root().join("examples_cpp"))
            .arg("-B")
            .arg(&example_build)
            .arg(format!("-DCMAKE_PREFIX_PATH={}", prefix.display()))
            .arg(format!("-DCMAKE_RUNTIME_OUTPUT_DIRECTORY={}", bin.display()))
            .arg("-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON")
            .arg("-DCMAKE_INSTALL_RPATH=$ORIGIN/../lib")
            .arg(format!("-DCMAKE_CXX_COMPILER={}", cxx())),
        "cmake configure examples_cpp",
    );
    run(Command::new(cmake()).arg("--build").arg(&example_build), "cmake --build examples_cpp");
    assert!(bin.join("da3_example").is_file(), "CMake built no da3_example");

    // pkg-config.
    let flags = run(
        Command::new("pkg-config")
            .args(["--cflags", "--libs", "da3"])
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")),
        "pkg-config --cflags --libs da3",
    );
    let modversion = run(
        Command::new("pkg-config").args(["--modversion", "da3"]).env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")),
        "pkg-config --modversion da3",
    );
    assert_eq!(modversion.trim(), version());
    let pc_exe = bin.join("consumer_pkgconfig");
    run(
        Command::new(cxx())
            .args(["-std=c++17", "-Wall", "-Wextra", "-Werror", "-pedantic", "-o"])
            .arg(&pc_exe)
            .arg(root().join("tests/install/consumer.cpp"))
            .args(flags.split_whitespace())
            .arg("-Wl,-rpath,$ORIGIN/../lib"),
        "c++ with pkg-config's flags",
    );

    // Move the whole prefix; nothing may refer to its old place.
    let moved = base.join("elsewhere").join("da3");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&prefix, &moved).unwrap();
    let Some(checkpoint) = checkpoint() else {
        println!(
            "SKIPPED running the consumers: no checkpoint (target/oracle/da3-small/checkpoint; make it with \
             tests/oracle/run_oracle.sh da3-small target/oracle/da3-small, or set DA3_TEST_CHECKPOINT)"
        );
        let _ = std::fs::remove_dir_all(&base);
        return;
    };
    for exe in ["consumer", "consumer_pkgconfig"] {
        run_consumer(&moved.join("bin").join(exe), &checkpoint, &moved);
    }
    // The example, from the moved prefix, on the two sample photos as one scene.
    let out_dir = base.join("example-out");
    let out = run(
        Command::new(moved.join("bin/da3_example"))
            .arg("--model")
            .arg(&checkpoint)
            .arg("--out")
            .arg(&out_dir)
            .arg(root().join("assets/images/soh_000.png"))
            .arg(root().join("assets/images/soh_010.png"))
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("DA3_DEVICE")
            .env_remove("DA3_DEVICES"),
        "examples_cpp's da3_example from the moved prefix",
    );
    println!("da3_example:\n{out}");
    for png in ["depth_0.png", "depth_1.png"] {
        assert!(out_dir.join(png).is_file(), "da3_example wrote no {png}:\n{out}");
    }
    // Its point cloud, read by an independent reader (plyfile, in the test venv).
    let ply = out_dir.join("points.ply");
    let written = out
        .lines()
        .find_map(|l| l.strip_prefix(&format!("wrote {} (", ply.display())))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("da3_example reported no points.ply:\n{out}"));
    let read = run(
        Command::new(root().join(".venv/bin/python"))
            .args(["-c", "import sys, plyfile; v = plyfile.PlyData.read(sys.argv[1])['vertex']; print(v.count, ' '.join(p.name for p in v.properties))"])
            .arg(&ply),
        "plyfile reads points.ply",
    );
    let (count, properties) = read.trim().split_once(' ').unwrap_or_else(|| panic!("plyfile printed {read}"));
    assert_eq!(count, written, "plyfile reads another point count than da3_example wrote");
    assert!(written.parse::<usize>().unwrap() > 0, "no points");
    for property in ["x", "y", "z", "red", "green", "blue"] {
        assert!(properties.split(' ').any(|p| p == property), "points.ply has no {property}: {properties}");
    }
    let _ = std::fs::remove_dir_all(&base);
}
