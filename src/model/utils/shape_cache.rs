//! Tensors that depend only on shapes (position embeddings resampled to a grid, the head's UV
//! embeddings), made once and kept: the official recomputes them in every forward.
use std::sync::Mutex;

use tch::Tensor;

use crate::error::Result;

/// Tensors kept by key, never evicted (a CUDA graph captured with an entry reads its memory;
/// the runner runs every shape eagerly before capturing it, so entries are made outside a
/// capture). Past `max_entries` entries or `max_bytes` bytes, new keys are made in each call
/// instead.
pub struct ShapeCache<K> {
    entries: Mutex<Vec<(K, Tensor)>>,
    max_entries: usize,
    max_bytes: i64,
}

impl<K: PartialEq> ShapeCache<K> {
    pub fn new(max_entries: usize, max_bytes: i64) -> Self {
        ShapeCache { entries: Mutex::new(Vec::new()), max_entries, max_bytes }
    }

    /// The tensor kept for `key`, or `make()` (kept when it fits).
    pub fn get_or_make(&self, key: K, make: impl FnOnce() -> Result<Tensor>) -> Result<Tensor> {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((_, kept)) = entries.iter().find(|(k, _)| *k == key) {
            return Ok(kept.shallow_clone());
        }
        let made = make()?;
        let held: i64 = entries.iter().map(|(_, t)| bytes_of(t)).sum();
        if entries.len() < self.max_entries && held + bytes_of(&made) <= self.max_bytes {
            entries.push((key, made.shallow_clone()));
        }
        Ok(made)
    }

    /// Entries kept.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }
}

fn bytes_of(t: &Tensor) -> i64 {
    t.numel() as i64 * t.kind().elt_size_in_bytes() as i64
}
