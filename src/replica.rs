//! A replica as the engine schedules it: one runner and, on a GPU, the one thread that does
//! all of that runner's device work (load, forwards, output copies).
//!
//! Why a thread of its own: libtorch keeps per-thread state for GPU work that grows with the
//! shapes the thread has run and is never given back. cuDNN's execution-plan caches
//! (convolutions, fused attention) are thread-local, and since cuDNN 9.10 PyTorch leaks them
//! on purpose when the thread exits (a teardown crash otherwise; pytorch/pytorch#104701).
//! Run on the host's threads, a process whose threads come and go (a thread per request, or
//! libda3's own batch threads, started per `da3_infer_scenes` call) grows with every new
//! thread, and 32 host threads hold 32 copies of every plan. This is the suspected cause of
//! the host memory growth of the 2 x H200 soak, 0.35 MB per call with batch threads coming
//! and going (bench/results/2026-11-30-soak-gpu.md; a GPU soak with this module, recorded in
//! bench/, is to confirm it). On its own thread a replica holds one copy, whatever the host's
//! threads do.
//!
//! The caller's thread waits while the replica's thread works (a lease already serialises
//! calls on a replica, so nothing is lost). Replica threads live as long as the process and
//! are reused by the next model loaded on the same device, so create/free cycles do not leak
//! them either. CPU replicas run on the caller's thread: libtorch's CPU kernels keep no such
//! caches, and a forked child (which inherits no threads) keeps working (header, "Processes
//! and threads").
use std::sync::{Mutex, PoisonError};

use tch::Device;

use crate::error::{Error, Result};
use crate::runner::Runner;

/// Stack of a replica thread: the size of a process's main thread, enough for libtorch's
/// deepest calls (a 64 KiB stack overflowed inside oneDNN).
const REPLICA_THREAD_STACK: usize = 8 << 20;

/// Replica threads not used by a loaded model now, with their device.
static IDLE_THREADS: Mutex<Vec<(Device, rayon::ThreadPool)>> = Mutex::new(Vec::new());

/// A long-lived thread that runs work for one GPU replica; back to the idle list on drop.
pub struct ReplicaThread {
    device: Device,
    /// A one-thread pool: `install` runs borrowed work there and waits for it (no `'static`
    /// bound, no unsafe); `None` only while dropping.
    pool: Option<rayon::ThreadPool>,
}

impl ReplicaThread {
    /// An idle thread that ran work on `device` before, else a new one.
    pub fn for_device(device: Device) -> Result<ReplicaThread> {
        let mut idle = IDLE_THREADS.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = idle.iter().position(|(d, _)| *d == device) {
            let (_, pool) = idle.swap_remove(at);
            return Ok(ReplicaThread { device, pool: Some(pool) });
        }
        drop(idle);
        let name = crate::gpu::device_name(device);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .stack_size(REPLICA_THREAD_STACK)
            .thread_name(move |_| format!("da3 {name}"))
            .build()
            .map_err(|e| Error::Internal(format!("starting the thread of the replica on {}: {e}", crate::gpu::device_name(device))))?;
        Ok(ReplicaThread { device, pool: Some(pool) })
    }

    /// Runs `work` on this thread and waits for it. A panic inside is kept off stderr there
    /// (`quiet_panics`) and resumed on the caller's thread, whose boundary reports it.
    pub fn run<R: Send>(&self, work: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => pool.install(|| crate::error::quiet_panics(work)),
            None => work(),
        }
    }
}

impl Drop for ReplicaThread {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            IDLE_THREADS.lock().unwrap_or_else(PoisonError::into_inner).push((self.device, pool));
        }
    }
}

/// A runner with the thread its device work runs on (`None`: the caller's thread).
pub struct Replica {
    runner: Runner,
    thread: Option<ReplicaThread>,
}

impl Replica {
    /// Loads a runner through `load`: on a CUDA device on a replica thread (so the thread's
    /// libtorch state is built once, there), elsewhere on the calling thread.
    pub fn load(device: Device, load: impl FnOnce() -> Result<Runner> + Send) -> Result<Replica> {
        if !device.is_cuda() {
            return Ok(Replica { runner: load()?, thread: None });
        }
        let thread = ReplicaThread::for_device(device)?;
        let runner = thread.run(load)?;
        Ok(Replica { runner, thread: Some(thread) })
    }

    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    /// Runs `work` on the runner, on the replica's thread, and waits for it.
    pub fn run<R: Send>(&mut self, work: impl FnOnce(&mut Runner) -> R + Send) -> R {
        let runner = &mut self.runner;
        match &self.thread {
            Some(thread) => thread.run(move || work(runner)),
            None => work(runner),
        }
    }

    /// Runs `work` on several replicas' runners at once (a scene sharded over their devices),
    /// on the first replica's thread, and waits for it.
    pub fn run_together<R: Send>(replicas: Vec<&mut Replica>, work: impl FnOnce(&[&Runner]) -> R + Send) -> R {
        let mut thread = None;
        let mut runners: Vec<&mut Runner> = Vec::with_capacity(replicas.len());
        for Replica { runner, thread: own } in replicas {
            let own: &Option<ReplicaThread> = own;
            thread = thread.or(own.as_ref());
            runners.push(runner);
        }
        let together = move || {
            let shared: Vec<&Runner> = runners.iter().map(|r| &**r).collect();
            work(&shared)
        };
        match thread {
            Some(thread) => thread.run(together),
            None => together(),
        }
    }

    /// Whether the replica runs on a thread of its own (a GPU replica).
    pub fn has_own_thread(&self) -> bool {
        self.thread.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::panic::{catch_unwind, AssertUnwindSafe};
    use std::thread::ThreadId;

    fn current() -> (ThreadId, Option<String>) {
        let thread = std::thread::current();
        (thread.id(), thread.name().map(str::to_owned))
    }

    // The devices are numbered apart from each other test's: the idle list is process-wide.

    #[test]
    fn work_runs_on_the_replica_thread_and_always_the_same_one() {
        let thread = ReplicaThread::for_device(Device::Cuda(90)).unwrap();
        let (first, name) = thread.run(current);
        assert_ne!(first, std::thread::current().id());
        assert_eq!(name.as_deref(), Some("da3 cuda:90"));
        let borrowed = vec![1, 2, 3];
        for _ in 0..5 {
            // Borrowed data goes in, results come out: the caller waits for the work.
            assert_eq!(thread.run(|| (current().0, borrowed.iter().sum::<i32>())), (first, 6));
        }
        // Another caller thread's work lands on the same thread.
        let from_elsewhere = std::thread::scope(|s| s.spawn(|| thread.run(current).0).join().unwrap());
        assert_eq!(from_elsewhere, first);
    }

    #[test]
    fn a_freed_thread_serves_the_next_replica_on_its_device_only() {
        let thread = ReplicaThread::for_device(Device::Cuda(91)).unwrap();
        let id = thread.run(current).0;
        drop(thread);
        let other_device = ReplicaThread::for_device(Device::Cuda(92)).unwrap();
        assert_ne!(other_device.run(current).0, id, "a thread is reused on its own device only");
        let again = ReplicaThread::for_device(Device::Cuda(91)).unwrap();
        assert_eq!(again.run(current).0, id, "the idle thread of the device is reused, not a new one started");
        // Two replicas on one device at once get two threads.
        let second = ReplicaThread::for_device(Device::Cuda(91)).unwrap();
        assert_ne!(second.run(current).0, id);
    }

    #[test]
    fn a_panic_reaches_the_caller_and_the_thread_keeps_working() {
        let thread = ReplicaThread::for_device(Device::Cuda(93)).unwrap();
        let id = thread.run(current).0;
        let caught = catch_unwind(AssertUnwindSafe(|| thread.run(|| -> i32 { panic!("inside the replica") })));
        let payload = caught.expect_err("the panic is resumed on the caller's thread");
        assert_eq!(crate::error::panic_message(payload.as_ref()), "inside the replica");
        assert_eq!(thread.run(current).0, id, "the same thread still serves");
    }

    #[test]
    fn a_cpu_replica_has_no_thread_of_its_own() {
        // `Replica::load` on the CPU runs the load on the calling thread; the error of a failed
        // load comes back as it is.
        let caller = std::thread::current().id();
        let outcome = Replica::load(Device::Cpu, || {
            assert_eq!(std::thread::current().id(), caller);
            Err(Error::InvalidArgument("no runner".into()))
        });
        assert!(matches!(outcome, Err(Error::InvalidArgument(m)) if m == "no runner"));
    }

    #[test]
    fn a_gpu_replica_loads_on_its_thread() {
        let caller = std::thread::current().id();
        let outcome = Replica::load(Device::Cuda(94), || {
            assert_ne!(std::thread::current().id(), caller);
            assert_eq!(current().1.as_deref(), Some("da3 cuda:94"));
            Err(Error::InvalidArgument("no runner".into()))
        });
        assert!(matches!(outcome, Err(Error::InvalidArgument(m)) if m == "no runner"));
        // The failed load's thread went back to the idle list.
        let idle = IDLE_THREADS.lock().unwrap();
        assert!(idle.iter().any(|(d, _)| *d == Device::Cuda(94)));
    }
}
