//! libda3's notes to the host, filtered by level: on stderr (prefixed `libda3: `), or to a
//! sink the host installs (`set_sink`; the C API's `da3_log_set`). Process-wide and
//! thread-safe: notes come from any thread that runs libda3 work, possibly at the same time.
//!
//! The level: `Warn` until a model is loaded, then `Settings::log_level` (`DA3_LOG`) of the
//! last load, unless the host set one explicitly (`set_level`, `da3_log_set_level`): that one
//! stays, whatever later loads find in the environment.
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

/// How much libda3 says, least to most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    /// Nothing.
    Off = 0,
    Error = 1,
    Warn = 2,
    /// What the library decided (devices, precision, placement, threads, CUDA graph captures,
    /// kernel fallbacks).
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

    pub fn from_u8(value: u8) -> Option<Level> {
        Some(match value {
            0 => Level::Off,
            1 => Level::Error,
            2 => Level::Warn,
            3 => Level::Info,
            4 => Level::Debug,
            _ => return None,
        })
    }
}

/// Where notes go instead of stderr: called with the level and the message (no prefix, no
/// newline), from any thread, possibly concurrently.
pub type Sink = Arc<dyn Fn(Level, &str) + Send + Sync>;

static LEVEL: AtomicU8 = AtomicU8::new(Level::Warn as u8);
/// Whether the host set the level (then loads leave it alone).
static LEVEL_SET_BY_HOST: AtomicBool = AtomicBool::new(false);
/// The host's sink. Held for reading while a note is delivered, so that once `set_sink`
/// returns the previous sink is neither running nor called again.
static SINK: RwLock<Option<Sink>> = RwLock::new(None);

thread_local! {
    /// Whether this thread is inside the sink (a note written from there goes to stderr, and
    /// `set_sink` from there would wait for itself).
    static IN_SINK: Cell<bool> = const { Cell::new(false) };
}

/// Sets the process-wide level on the host's behalf: later loads keep it.
pub fn set_level(level: Level) {
    LEVEL.store(level as u8, Ordering::Relaxed);
    LEVEL_SET_BY_HOST.store(true, Ordering::Relaxed);
}

/// Sets the level from the settings of a load, unless the host set one (`set_level`).
pub fn set_level_from_settings(level: Level) {
    if !LEVEL_SET_BY_HOST.load(Ordering::Relaxed) {
        LEVEL.store(level as u8, Ordering::Relaxed);
    }
}

/// The process-wide level now.
pub fn level() -> Level {
    Level::from_u8(LEVEL.load(Ordering::Relaxed)).unwrap_or(Level::Warn)
}

/// Installs `sink` (None: back to stderr). Waits for notes being delivered to the previous
/// sink; afterwards it is never called again. `Err` when called from inside the sink itself
/// (that would wait for itself).
pub fn set_sink(sink: Option<Sink>) -> Result<(), &'static str> {
    if IN_SINK.with(Cell::get) {
        return Err("the log sink cannot be changed from inside the log callback");
    }
    *SINK.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = sink;
    Ok(())
}

/// Whether messages of `level` are written.
pub fn enabled(level: Level) -> bool {
    level != Level::Off && level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes `message` at `level` when that level is enabled: to the sink, else to stderr (one
/// line, prefixed `libda3: `).
pub fn write(level: Level, message: &str) {
    if !enabled(level) {
        return;
    }
    if !IN_SINK.with(Cell::get) {
        let sink = SINK.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(sink) = sink.as_ref() {
            IN_SINK.with(|f| f.set(true));
            // A panicking Rust sink must not unwind through libda3's callers.
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink(level, message)));
            IN_SINK.with(|f| f.set(false));
            return;
        }
    }
    eprintln!("libda3: {message}");
}

pub fn error(message: &str) {
    write(Level::Error, message)
}

pub fn warn(message: &str) {
    write(Level::Warn, message)
}

pub fn info(message: &str) {
    write(Level::Info, message)
}

pub fn debug(message: &str) {
    write(Level::Debug, message)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::Mutex;

    /// The log is process-wide: tests that install a sink or change the level hold this.
    pub(crate) static LOG_TESTS: Mutex<()> = Mutex::new(());

    #[test]
    fn notes_go_to_the_sink_filtered_by_level_and_the_host_level_sticks() {
        let _serial = LOG_TESTS.lock().unwrap_or_else(|p| p.into_inner());
        let seen: Arc<Mutex<Vec<(Level, String)>>> = Arc::default();
        let into = seen.clone();
        set_sink(Some(Arc::new(move |level, message: &str| {
            into.lock().unwrap().push((level, message.to_owned()));
            // From inside the sink: not re-entered, and the sink cannot be swapped.
            assert!(set_sink(None).is_err());
            info("nested note");
        })))
        .unwrap();
        set_level(Level::Info);
        set_level_from_settings(Level::Off);
        assert_eq!(level(), Level::Info, "a load does not override the host's level");
        info("an info note");
        debug("a debug note");
        set_level(Level::Debug);
        debug("a debug note");
        set_sink(None).unwrap();
        info("to stderr");
        set_level(Level::Warn);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen, vec![(Level::Info, "an info note".to_owned()), (Level::Debug, "a debug note".to_owned())]);
    }
}
