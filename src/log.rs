//! libda3's notes to the host, on stderr, filtered by level. The level is process-wide: set
//! from `Settings::log_level` when a model is loaded (`DA3_LOG`), `Warn` until then.
use std::sync::atomic::{AtomicU8, Ordering};

/// How much libda3 says, least to most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// Nothing.
    Off = 0,
    Error = 1,
    Warn = 2,
    /// What the runner decided (CUDA graph captures, kernel fallbacks).
    Info = 3,
    /// Diagnostics, e.g. libtorch's whole message with its C++ backtrace.
    Debug = 4,
}

impl Level {
    pub fn from_name(name: &str) -> Option<Level> {
        Some(match name {
            "off" => Level::Off,
            "error" => Level::Error,
            "warn" => Level::Warn,
            "info" => Level::Info,
            "debug" => Level::Debug,
            _ => return None,
        })
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Warn as u8);

/// Sets the process-wide level.
pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Whether messages of `level` are written.
pub fn enabled(level: Level) -> bool {
    level != Level::Off && level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes `message` at `level` (one line, prefixed `libda3: `) when that level is enabled.
pub fn write(level: Level, message: &str) {
    if enabled(level) {
        eprintln!("libda3: {message}");
    }
}

pub fn info(message: &str) {
    write(Level::Info, message)
}

pub fn debug(message: &str) {
    write(Level::Debug, message)
}
