//! Large host-memory passes over network inputs and outputs (tens to hundreds of MB at many
//! views) split over scoped threads: a single core copies about 10 GB/s, so at 64 views these
//! passes alone cost tens of milliseconds next to the forward (bench/results, 2026-12-01
//! glue kernels). Scoped threads rather than a pool: nothing outlives the call (a forked child
//! inherits no threads; see the header's "Processes and threads").
use std::mem::MaybeUninit;

/// Bytes below which one thread does the whole pass (starting threads costs more).
const BYTES_PER_THREAD: usize = 4 << 20;

/// Threads for a pass over `bytes`: one per `BYTES_PER_THREAD`, at most `threads`, at least 1.
fn threads_for(bytes: usize, threads: usize) -> usize {
    (bytes / BYTES_PER_THREAD).clamp(1, threads.max(1))
}

/// `dst.copy_from_slice(src)` on up to `threads` threads. Panics if the lengths differ.
pub fn copy_f32(dst: &mut [f32], src: &[f32], threads: usize) {
    assert_eq!(dst.len(), src.len(), "copy_f32: lengths differ");
    let workers = threads_for(std::mem::size_of_val(src), threads);
    if workers == 1 {
        dst.copy_from_slice(src);
        return;
    }
    let chunk = src.len().div_ceil(workers);
    std::thread::scope(|scope| {
        for (d, s) in dst.chunks_mut(chunk).zip(src.chunks(chunk)) {
            scope.spawn(move || d.copy_from_slice(s));
        }
    });
}

/// `src` into the uninitialised `dst` on up to `threads` threads; every element of `dst` is
/// initialised when it returns. Panics if the lengths differ.
pub fn copy_f32_uninit(dst: &mut [MaybeUninit<f32>], src: &[f32], threads: usize) {
    assert_eq!(dst.len(), src.len(), "copy_f32_uninit: lengths differ");
    let fill = |d: &mut [MaybeUninit<f32>], s: &[f32]| {
        // SAFETY: MaybeUninit<f32> has f32's layout; the slices have equal lengths (chunks of
        // equal-length slices) and do not overlap (one is borrowed mutably).
        unsafe { std::ptr::copy_nonoverlapping(s.as_ptr(), d.as_mut_ptr().cast::<f32>(), s.len()) }
    };
    let workers = threads_for(std::mem::size_of_val(src), threads);
    if workers == 1 {
        fill(dst, src);
        return;
    }
    let chunk = src.len().div_ceil(workers);
    std::thread::scope(|scope| {
        for (d, s) in dst.chunks_mut(chunk).zip(src.chunks(chunk)) {
            scope.spawn(move || fill(d, s));
        }
    });
}

/// The index of the first value of `data` that is NaN or infinite, on up to `threads` threads.
pub fn first_non_finite(data: &[f32], threads: usize) -> Option<usize> {
    let workers = threads_for(std::mem::size_of_val(data), threads);
    if workers == 1 {
        return data.iter().position(|v| !v.is_finite());
    }
    let chunk = data.len().div_ceil(workers);
    std::thread::scope(|scope| {
        let found: Vec<_> = data
            .chunks(chunk)
            .enumerate()
            .map(|(i, part)| {
                scope.spawn(move || {
                    part.iter()
                        .position(|v| !v.is_finite())
                        .map(|at| i * chunk + at)
                })
            })
            .collect();
        // The first chunk with one holds the first index.
        found.into_iter().find_map(|handle| {
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    })
}

/// Host buffers of freed results, kept for the next results' maps: a fresh allocation of
/// tens of MB comes from the kernel as untouched pages (glibc serves it with `mmap` above its
/// threshold, at most 32 MB), and writing the outputs into it then takes one page fault per 4
/// KiB: at 64 views of 336x504 the depth and confidence cost about 21,000 faults per call
/// (bench/results/2026-12-01-h200-output-buffers.md). Buffers of at least
/// `POOLED_MIN_BYTES` are kept, `POOLED_MAX_BYTES` in all (the oldest go first).
pub struct BufferPool {
    kept: std::sync::Mutex<std::collections::VecDeque<Vec<f32>>>,
    max_bytes: usize,
}

/// The smallest buffer worth keeping (below it, glibc's heap already reuses memory).
pub const POOLED_MIN_BYTES: usize = 1 << 20;
/// The most bytes of freed buffers kept for the process (two 64-view results of da3-large's
/// depth and confidence at 336x504 are 173 MB).
pub const POOLED_MAX_BYTES: usize = 256 << 20;

/// The process's pool of output buffers (`BufferPool`).
pub static OUTPUT_BUFFERS: once_cell::sync::Lazy<BufferPool> = once_cell::sync::Lazy::new(|| BufferPool::new(POOLED_MAX_BYTES));

fn bytes_of(buffer: &Vec<f32>) -> usize {
    buffer.capacity() * std::mem::size_of::<f32>()
}

impl BufferPool {
    pub fn new(max_bytes: usize) -> Self {
        BufferPool { kept: Default::default(), max_bytes }
    }

    /// An empty vector with room for `n` floats: a kept buffer when one fits (the smallest of
    /// those holding `n` to `2 n` floats), else a new allocation (`Err` when the host has no
    /// memory for it).
    pub fn take(&self, n: usize) -> std::result::Result<Vec<f32>, std::collections::TryReserveError> {
        if n * std::mem::size_of::<f32>() >= POOLED_MIN_BYTES {
            let mut kept = self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let best = kept
                .iter()
                .enumerate()
                .filter(|(_, b)| b.capacity() >= n && b.capacity() / 2 <= n)
                .min_by_key(|(_, b)| b.capacity())
                .map(|(i, _)| i);
            if let Some(mut buffer) = best.and_then(|i| kept.remove(i)) {
                buffer.clear();
                return Ok(buffer);
            }
        }
        let mut fresh = Vec::new();
        fresh.try_reserve_exact(n)?;
        Ok(fresh)
    }

    /// Keeps `buffer` for a later `take` if it is large enough and fits in the pool's bytes
    /// (making room by dropping the oldest kept buffers); otherwise frees it.
    pub fn give(&self, buffer: Vec<f32>) {
        let bytes = bytes_of(&buffer);
        if bytes < POOLED_MIN_BYTES || bytes > self.max_bytes {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        while kept.iter().map(bytes_of).sum::<usize>() + bytes > self.max_bytes {
            kept.pop_front();
        }
        kept.push_back(buffer);
    }

    /// Bytes kept now.
    pub fn kept_bytes(&self) -> usize {
        self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).iter().map(bytes_of).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A freed buffer comes back for a request it fits (the same memory), not for one it is
    /// too small or more than twice too large for; small buffers are not kept, and the pool
    /// keeps its bytes bound by dropping the oldest.
    #[test]
    fn freed_buffers_serve_later_requests_within_bounds() {
        let floats = POOLED_MIN_BYTES / 4;
        let pool = BufferPool::new(3 * POOLED_MIN_BYTES);
        let mut first = pool.take(floats).unwrap();
        first.resize(floats, 1.0);
        let address = first.as_ptr();
        pool.give(first);
        assert_eq!(pool.kept_bytes(), POOLED_MIN_BYTES);
        let larger = pool.take(2 * floats + 1).unwrap();
        assert_ne!(larger.as_ptr(), address, "too small: a new buffer");
        let smaller = pool.take(floats / 2 - 1).unwrap();
        assert_ne!(smaller.as_ptr(), address, "below the pooled size: a new buffer");
        let again = pool.take(floats).unwrap();
        assert_eq!((again.as_ptr(), again.len()), (address, 0), "the kept buffer, emptied");
        assert_eq!(pool.kept_bytes(), 0);
        pool.give(vec![0.0; 16]);
        assert_eq!(pool.kept_bytes(), 0, "small buffers are freed");
        for _ in 0..4 {
            pool.give(vec![0.0; floats]);
        }
        assert_eq!(pool.kept_bytes(), 3 * POOLED_MIN_BYTES, "bounded");
        pool.give(vec![0.0; 4 * floats]);
        assert_eq!(pool.kept_bytes(), 3 * POOLED_MIN_BYTES, "larger than the pool: freed, nothing evicted for it");
    }

    fn values(n: usize) -> Vec<f32> {
        (0..n).map(|i| i as f32 * 0.5 - 7.0).collect()
    }

    /// Sizes around the thread split (one thread, several, a ragged last chunk) give exact copies.
    #[test]
    fn copies_are_exact_at_every_split() {
        for n in [
            0,
            1,
            1000,
            BYTES_PER_THREAD / 4 + 3,
            5 * BYTES_PER_THREAD / 4 + 17,
        ] {
            let src = values(n);
            for threads in [1, 2, 3, 8] {
                let mut dst = vec![0f32; n];
                copy_f32(&mut dst, &src, threads);
                assert_eq!(dst, src, "copy_f32 n={n} threads={threads}");
                let mut out: Vec<f32> = Vec::with_capacity(n);
                copy_f32_uninit(&mut out.spare_capacity_mut()[..n], &src, threads);
                // SAFETY: copy_f32_uninit initialised all n elements.
                unsafe { out.set_len(n) };
                assert_eq!(out, src, "copy_f32_uninit n={n} threads={threads}");
            }
        }
    }

    /// The first non-finite value is found wherever it is, also with later ones in other chunks.
    #[test]
    fn finds_the_first_non_finite_value() {
        let n = 5 * BYTES_PER_THREAD / 4 + 17;
        let clean = values(n);
        for threads in [1, 4] {
            assert_eq!(first_non_finite(&clean, threads), None);
            for (at, bad) in [
                (0, f32::NAN),
                (n / 2, f32::INFINITY),
                (n - 1, f32::NEG_INFINITY),
            ] {
                let mut data = clean.clone();
                data[at] = bad;
                data[n - 1] = if at == n - 1 { bad } else { f32::NAN };
                assert_eq!(
                    first_non_finite(&data, threads),
                    Some(at),
                    "threads={threads} at={at}"
                );
            }
        }
    }
}
