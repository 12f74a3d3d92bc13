//! Enough stack for libtorch, whatever thread the host calls from (D11): oneDNN's CPU kernels
//! use more stack than a small thread has (a 96 KiB thread overflowed inside a da3-small
//! forward, 128 KiB sufficed; glibc's default is 8 MiB). A call that finds less than
//! `MIN_STACK` left on the calling thread runs on a helper thread with `HELPER_STACK` bytes,
//! the caller waiting for it, instead of overflowing the host's stack.

/// Stack a heavy call wants left on its thread (8x what a da3-small forward was seen to need).
pub const MIN_STACK: usize = 1 << 20;
/// Stack of the helper thread (glibc's default for new threads).
pub const HELPER_STACK: usize = 8 << 20;

/// Bytes left below the current frame on this thread's stack, if the platform tells.
pub fn remaining() -> Option<usize> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: pthread_getattr_np initialises `attr` on success (then destroyed below); the
    // stack bounds it reports are this thread's own.
    unsafe {
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return None;
        }
        let (mut low, mut size) = (std::ptr::null_mut(), 0usize);
        let rc = libc::pthread_attr_getstack(attr.as_ptr(), &mut low, &mut size);
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        if rc != 0 {
            return None;
        }
        let here = &size as *const usize as usize;
        Some(here.saturating_sub(low as usize))
    }
}

/// Runs `work` here when this thread has `MIN_STACK` left, else on a helper thread with
/// `HELPER_STACK` (same result; a panic in it resumes here).
pub fn with_enough_stack<R>(work: impl FnOnce() -> R) -> R {
    if remaining().map_or(true, |left| left >= MIN_STACK) {
        return work();
    }
    crate::log::debug("the calling thread has less than 1 MiB of stack left: running the call on a helper thread");
    /// The caller blocks until the helper returns, so `work` and its result are used by one
    /// thread at a time, as if on the caller's own thread.
    struct Carry<T>(T);
    // SAFETY: see above: the value moves to the helper and back while the caller waits.
    unsafe impl<T> Send for Carry<T> {}
    // The work stays here until the helper takes it, so a helper that cannot be started
    // leaves it to run on this thread (the stack may suffice; there is no better option).
    let mut pending = Some(work);
    let mut output = None;
    let carried = Carry((&mut pending, &mut output));
    let joined = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("libda3-call".into())
            .stack_size(HELPER_STACK)
            .spawn_scoped(scope, move || {
                let carried = carried;
                let (pending, output) = carried.0;
                if let Some(work) = pending.take() {
                    *output = Some(crate::error::quiet_panics(work));
                }
            })
            .map(|handle| handle.join())
    });
    if let Ok(Err(panic)) = joined {
        std::panic::resume_unwind(panic);
    }
    if let Some(work) = pending.take() {
        crate::log::warn("no helper thread could be started: the call runs on the calling thread's small stack");
        return work();
    }
    output.expect("the helper took the work and finished it (a panic in it resumed above)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_stack_gets_a_helper_and_a_large_one_runs_in_place() {
        let here = std::thread::current().id();
        assert_eq!(with_enough_stack(|| std::thread::current().id()), here);
        let small = std::thread::Builder::new().stack_size(128 << 10).spawn(|| {
            let left = remaining().expect("glibc tells");
            assert!(left < MIN_STACK, "{left}");
            let caller = std::thread::current().id();
            let (ran_on, helper_left) = with_enough_stack(|| (std::thread::current().id(), remaining().unwrap()));
            assert_ne!(ran_on, caller);
            assert!(helper_left > MIN_STACK, "{helper_left}");
        });
        small.unwrap().join().unwrap();
    }
}
