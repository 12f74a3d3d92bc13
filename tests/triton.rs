//! The Triton backend (`triton/`, libtriton_da3.so) in a real server: PyPI's tritonserver 2.51
//! (from nvidia-pytriton) on the loopback address, on the CPU, serving the random-weight
//! da3-small checkpoint with two instances; `tests/triton/client_test.py` talks to it over HTTP
//! with tritonclient (readiness, results bit-identical to the C API, known cameras, 8
//! concurrent clients with mixed scene sizes, bad requests, metrics); then the server gets
//! SIGTERM and must unload the model (freeing both libda3 models) and exit 0.
//!
//! Needs `scripts/triton.sh setup` and `scripts/triton.sh build` (scripts/test.sh runs both).
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Three distinct ports free right now on the loopback address (the server binds them a moment
/// later). The listeners are held until all three are chosen: one dropped at once can be handed
/// out again by the next bind (seen on a CI-like run: HTTP and metrics got the same port).
fn free_ports() -> (u16, u16, u16) {
    let listeners: Vec<TcpListener> = (0..3).map(|_| TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    let port = |i: usize| listeners[i].local_addr().unwrap().port();
    (port(0), port(1), port(2))
}

fn tritonserver() -> PathBuf {
    let out = Command::new(root().join("scripts/triton.sh")).arg("server-path").output().expect("scripts/triton.sh");
    assert!(out.status.success(), "no tritonserver: run scripts/triton.sh setup\n{}", String::from_utf8_lossy(&out.stderr));
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Kills the server if the test fails before stopping it.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn triton_server_serves_libda3() {
    let backends = root().join("target/triton/backends");
    assert!(
        backends.join("da3/libtriton_da3.so").is_file(),
        "no backend in {}: run scripts/triton.sh build",
        backends.display()
    );
    let checkpoint = root().join("target/oracle/da3-small/checkpoint");
    assert!(checkpoint.join("model.safetensors").is_file(), "no checkpoint at {}: run scripts/test.sh", checkpoint.display());
    let python = root().join(".venv-triton/bin/python");
    assert!(python.is_file(), "no .venv-triton: run scripts/triton.sh setup");

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("triton");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let repo = dir.join("models");
    let process_res = "140"; // small maps keep the CPU run short; also exercises a parameter
    let made = Command::new("python3")
        .arg(root().join("triton/make_model_repository.py"))
        .args(["--preset", "da3-small", "--checkpoint"])
        .arg(&checkpoint)
        .arg("--repository")
        .arg(&repo)
        .args(["--kind", "cpu", "--count", "2", "--max-batch-size", "8", "--process-res", process_res])
        .status()
        .unwrap();
    assert!(made.success(), "make_model_repository.py failed");

    let (http, grpc, metrics) = free_ports();
    let log_path = dir.join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = Server(
        Command::new(tritonserver())
            .arg("--model-repository")
            .arg(&repo)
            .arg("--backend-directory")
            .arg(&backends)
            .args(["--http-address", "127.0.0.1", "--http-port", &http.to_string()])
            .args(["--grpc-address", "127.0.0.1", "--grpc-port", &grpc.to_string()])
            .args(["--metrics-address", "127.0.0.1", "--metrics-port", &metrics.to_string()])
            .args(["--exit-timeout-secs", "30"])
            .env("DA3_DEVICE", "cpu")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting tritonserver"),
    );
    let server_log = || std::fs::read_to_string(&log_path).unwrap_or_default();

    // The client waits for readiness itself (bounded), then runs every check.
    let client = Command::new(&python)
        .arg(root().join("tests/triton/client_test.py"))
        .args(["--http", &format!("127.0.0.1:{http}"), "--metrics", &format!("127.0.0.1:{metrics}")])
        .args(["--model", "da3-small", "--process-res", process_res, "--checkpoint"])
        .arg(&checkpoint)
        .arg("--libda3")
        .arg(root().join("target/release/libda3.so"))
        .env("DA3_DEVICE", "cpu")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_with_timeout(client, Duration::from_secs(600));
    println!("{out}");
    assert!(out.contains("all passed") && !out.contains("FAIL"), "client checks failed:\n{out}\n--- server log ---\n{}", server_log());

    // Clean shutdown: SIGTERM unloads the model (each instance frees its libda3 model), exit 0.
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(server.0.id() as i32, libc::SIGTERM) };
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "tritonserver did not stop within 60 s of SIGTERM:\n{}", server_log());
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = server_log();
    assert!(status.success(), "tritonserver exited with {status}:\n{log}");
    assert_eq!(log.matches("libda3 model freed").count(), 2, "both instances free their model:\n{log}");
    assert!(log.contains("successfully unloaded 'da3-small'"), "{log}");
    assert!(!log.contains("panicked"), "{log}");
}

/// Output (stdout then stderr) of `child`, killed if it runs past `limit`.
fn wait_with_timeout(mut child: std::process::Child, limit: Duration) -> String {
    let started = Instant::now();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut timed_out = false;
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.wait();
    let mut out = out_reader.join().unwrap();
    out.push_str(&err_reader.join().unwrap());
    if timed_out {
        out.push_str(&format!("\nFAIL    the client ran past {} s and was killed", limit.as_secs()));
    }
    out
}
