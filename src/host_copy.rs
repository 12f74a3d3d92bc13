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

#[cfg(test)]
mod tests {
    use super::*;

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
