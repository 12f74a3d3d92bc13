//! Cancellation of running calls by the host: a shared flag the host sets from any thread
//! (`CancelToken::cancel`) and the library polls between stages of a call (before and after
//! preprocessing, between the backbone's blocks, between the backbone and the head, around a
//! CUDA graph replay). Like ONNX Runtime's `RunOptions::SetTerminate`: the flag stays set
//! until `reset`, so a call started with a set token stops at once.
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{Error, Result};

struct Flag {
    cancelled: AtomicBool,
    /// How many times a call looked at the flag (diagnostics and tests).
    polls: AtomicU64,
}

/// A cancellation flag shared by the host and the calls it is handed to. Cloning shares the
/// flag. `Send + Sync`: set it from any thread.
#[derive(Clone)]
pub struct CancelToken {
    flag: Arc<Flag>,
}

impl Default for CancelToken {
    fn default() -> Self {
        CancelToken { flag: Arc::new(Flag { cancelled: AtomicBool::new(false), polls: AtomicU64::new(0) }) }
    }
}

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }

    /// Asks every call that holds this token to stop at its next check (and every later call
    /// to stop at once, until `reset`).
    pub fn cancel(&self) {
        self.flag.cancelled.store(true, Ordering::SeqCst);
    }

    /// Clears the flag, so the token can be handed to new calls.
    pub fn reset(&self) {
        self.flag.cancelled.store(false, Ordering::SeqCst);
    }

    /// Whether `cancel` was called (and not reset since); counts as a poll.
    pub fn is_cancelled(&self) -> bool {
        self.flag.polls.fetch_add(1, Ordering::Relaxed);
        self.flag.cancelled.load(Ordering::SeqCst)
    }

    /// How many times calls have polled this token so far.
    pub fn polls(&self) -> u64 {
        self.flag.polls.load(Ordering::Relaxed)
    }

    /// `Err(Error::Cancelled)` naming `at` (where the call stopped) when cancelled.
    pub fn check(&self, at: &str) -> Result<()> {
        if self.is_cancelled() {
            return Err(Error::Cancelled(format!("the call was cancelled {at}")));
        }
        Ok(())
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CancelToken({})", if self.flag.cancelled.load(Ordering::Relaxed) { "cancelled" } else { "clear" })
    }
}

/// Tokens are equal when they share one flag.
impl PartialEq for CancelToken {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.flag, &other.flag)
    }
}

impl Eq for CancelToken {}

/// `Some(token)`'s check, or nothing.
pub fn check(token: Option<&CancelToken>, at: &str) -> Result<()> {
    token.map_or(Ok(()), |t| t.check(at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_shared_sticky_and_resettable() {
        let token = CancelToken::new();
        let shared = token.clone();
        assert!(token.check("here").is_ok());
        shared.cancel();
        assert!(matches!(token.check("before the forward"), Err(Error::Cancelled(m)) if m.contains("before the forward")));
        assert!(token.is_cancelled(), "stays set until reset");
        token.reset();
        assert!(!shared.is_cancelled());
        assert_eq!(token.polls(), 4);
        assert_eq!(token, shared);
        assert_ne!(token, CancelToken::new());
    }
}
