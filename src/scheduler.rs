//! A pool of interchangeable workers (the model replicas, one per device) shared by any
//! number of threads. Generic over the worker type, so its logic is tested without torch.
//!
//! - `lease` takes one free worker, `lease_all` every worker (a scene sharded over all the
//!   devices). Waiters are served strictly first come, first served (a ticket queue under a
//!   `Condvar`): a caller waiting for every worker is not overtaken by later single leases,
//!   so nobody starves.
//! - A lease gives its workers back when dropped, also when the caller returns an error or
//!   unwinds from a panic. A worker must therefore stay usable after a failed call (the
//!   runner holds only its weights; libtorch errors, out-of-memory included, come back as
//!   `Err`), and a poisoned worker mutex is recovered rather than propagated.
//! - `run_batch` runs independent items (scenes) over the workers and returns one result per
//!   item, in input order: an item's error or panic is that item's result only.
use std::collections::VecDeque;
use std::ops::{Deref, DerefMut};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Workers of one kind, leased to one caller at a time each.
pub struct Pool<W> {
    workers: Vec<Mutex<W>>,
    state: Mutex<PoolState>,
    changed: Condvar,
}

struct PoolState {
    free: Vec<bool>,
    next_ticket: u64,
    /// Tickets of the callers waiting, in arrival order; only the first may take workers.
    queue: VecDeque<u64>,
}

/// Workers taken from a pool; given back on drop. Derefs to the first (or only) worker.
pub struct Lease<'p, W> {
    pool: &'p Pool<W>,
    indices: Vec<usize>,
    guards: Vec<MutexGuard<'p, W>>,
}

impl<W> Pool<W> {
    /// A pool of the given workers (at least one).
    pub fn new(workers: Vec<W>) -> Pool<W> {
        assert!(!workers.is_empty(), "a pool needs at least one worker");
        let n = workers.len();
        Pool {
            workers: workers.into_iter().map(Mutex::new).collect(),
            state: Mutex::new(PoolState { free: vec![true; n], next_ticket: 0, queue: VecDeque::new() }),
            changed: Condvar::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.workers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.workers.is_empty()
    }

    /// Callers waiting for a worker now (for tests and monitoring).
    pub fn waiting(&self) -> usize {
        self.lock_state().queue.len()
    }

    fn lock_state(&self) -> MutexGuard<'_, PoolState> {
        // The state is only changed by this module's short, non-panicking sections.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// One free worker, waiting in line for one if all are busy.
    pub fn lease(&self) -> Lease<'_, W> {
        self.take(false)
    }

    /// Every worker (in pool order), waiting in line until all are free.
    pub fn lease_all(&self) -> Lease<'_, W> {
        self.take(true)
    }

    fn take(&self, all: bool) -> Lease<'_, W> {
        let mut state = self.lock_state();
        let ticket = state.next_ticket;
        state.next_ticket += 1;
        state.queue.push_back(ticket);
        let indices = loop {
            if state.queue.front() == Some(&ticket) {
                let free: Vec<usize> = (0..state.free.len()).filter(|&i| state.free[i]).collect();
                let taken = if all {
                    (free.len() == state.free.len()).then_some(free)
                } else {
                    free.first().map(|&i| vec![i])
                };
                if let Some(indices) = taken {
                    for &i in &indices {
                        state.free[i] = false;
                    }
                    state.queue.pop_front();
                    break indices;
                }
            }
            state = self.changed.wait(state).unwrap_or_else(PoisonError::into_inner);
        };
        drop(state);
        // The next in line may be able to take a worker too.
        self.changed.notify_all();
        // Uncontended: the pool hands each worker to one lease at a time. A worker poisoned by
        // an earlier panic is reused (see the module doc).
        let guards = indices.iter().map(|&i| self.workers[i].lock().unwrap_or_else(PoisonError::into_inner)).collect();
        Lease { pool: self, indices, guards }
    }

    /// Runs `items` over the workers: `prepare` (no worker held: e.g. decoding and resizing
    /// images) then `run` on whichever worker is free, by up to two threads per worker (one
    /// prepares while the other runs). Returns one result per item, in input order; an error
    /// or a panic in an item's `prepare` or `run` is that item's result (`on_panic` turns the
    /// panic message into an error) and the other items go on.
    pub fn run_batch<T, P, R, E>(
        &self,
        items: Vec<T>,
        prepare: impl Fn(T) -> Result<P, E> + Sync,
        run: impl Fn(&mut W, P) -> Result<R, E> + Sync,
        on_panic: impl Fn(String) -> E + Sync,
    ) -> Vec<Result<R, E>>
    where
        W: Send,
        T: Send,
        R: Send,
        E: Send,
    {
        let count = items.len();
        let one = |item: T| -> Result<R, E> {
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                let prepared = prepare(item)?;
                let mut lease = self.lease();
                run(&mut lease, prepared)
            }));
            outcome.unwrap_or_else(|panic| Err(on_panic(crate::error::panic_message(panic.as_ref()))))
        };
        if count <= 1 {
            return items.into_iter().map(one).collect();
        }
        let pending = Mutex::new(items.into_iter().enumerate());
        let results: Mutex<Vec<Option<Result<R, E>>>> = Mutex::new((0..count).map(|_| None).collect());
        let threads = count.min(2 * self.len());
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    crate::error::quiet_panics(|| loop {
                        let next = pending.lock().unwrap_or_else(PoisonError::into_inner).next();
                        let Some((index, item)) = next else { break };
                        let result = one(item);
                        results.lock().unwrap_or_else(PoisonError::into_inner)[index] = Some(result);
                    })
                });
            }
        });
        results
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
            .into_iter()
            .map(|r| r.expect("every item is taken by exactly one thread, which stores its result"))
            .collect()
    }
}

impl<W> Lease<'_, W> {
    /// Pool positions of the leased workers.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// The leased workers, in pool order.
    pub fn workers(&self) -> Vec<&W> {
        self.guards.iter().map(|g| &**g).collect()
    }

    /// The leased workers, in pool order, to change or to hand to another thread together.
    pub fn workers_mut(&mut self) -> Vec<&mut W> {
        self.guards.iter_mut().map(|g| &mut **g).collect()
    }
}

impl<W> Deref for Lease<'_, W> {
    type Target = W;
    fn deref(&self) -> &W {
        &self.guards[0]
    }
}

impl<W> DerefMut for Lease<'_, W> {
    fn deref_mut(&mut self) -> &mut W {
        &mut self.guards[0]
    }
}

impl<W> Drop for Lease<'_, W> {
    fn drop(&mut self) {
        // Unlock the workers before marking them free, so the next lease never blocks on them.
        self.guards.clear();
        let mut state = self.pool.lock_state();
        for &i in &self.indices {
            state.free[i] = true;
        }
        drop(state);
        self.pool.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::sync::Arc;
    use std::time::Duration;

    /// A stand-in for a model replica: knows its id, counts its calls, and detects being
    /// used by two callers at once.
    struct FakeWorker {
        id: usize,
        calls: usize,
        busy: Arc<AtomicBool>,
    }

    impl FakeWorker {
        fn work<T>(&mut self, value: T, millis: u64) -> T {
            assert!(!self.busy.swap(true, Ordering::SeqCst), "worker {} used by two callers at once", self.id);
            std::thread::sleep(Duration::from_millis(millis));
            self.calls += 1;
            self.busy.store(false, Ordering::SeqCst);
            value
        }
    }

    fn pool(n: usize) -> Pool<FakeWorker> {
        Pool::new((0..n).map(|id| FakeWorker { id, calls: 0, busy: Arc::new(AtomicBool::new(false)) }).collect())
    }

    /// Fails the test instead of hanging when `body` deadlocks.
    fn within<F: FnOnce() + Send + 'static>(seconds: u64, body: F) {
        let (done, finished) = mpsc::channel();
        let handle = std::thread::spawn(move || {
            body();
            let _ = done.send(());
        });
        match finished.recv_timeout(Duration::from_secs(seconds)) {
            Ok(()) => handle.join().expect("body"),
            // The sender was dropped without sending: the body panicked.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                std::panic::resume_unwind(handle.join().expect_err("body panicked"))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("no progress within {seconds} s: deadlock"),
        }
    }

    #[test]
    fn batch_results_come_back_in_input_order_and_use_every_worker() {
        let p = pool(3);
        let items: Vec<u64> = (0..40).collect();
        let used = Mutex::new(std::collections::HashSet::new());
        let results = p.run_batch(
            items,
            |i| Ok::<_, String>(i * 10),
            |w, x| {
                used.lock().unwrap().insert(w.id);
                // Uneven durations, so items finish out of order.
                Ok(w.work(x + 1, (x % 7) * 2))
            },
            |m| m,
        );
        let values: Vec<u64> = results.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(values, (0..40).map(|i| i * 10 + 1).collect::<Vec<_>>());
        assert_eq!(used.into_inner().unwrap().len(), 3, "every replica takes part");
        let calls: usize = p.workers.iter().map(|w| w.lock().unwrap().calls).sum();
        assert_eq!(calls, 40);
    }

    #[test]
    fn an_error_or_panic_is_that_items_result_only_and_workers_stay_usable() {
        let p = pool(2);
        let results = p.run_batch(
            (0..10).collect::<Vec<i32>>(),
            |i| if i == 7 { Err(format!("cannot prepare {i}")) } else { Ok(i) },
            |w, i| match i {
                // An injected out-of-memory, as the runner reports it.
                3 => Err("libtorch error: CUDA out of memory".to_owned()),
                5 => panic!("injected panic in item 5"),
                _ => Ok(w.work(i * i, 1)),
            },
            |m| format!("panicked: {m}"),
        );
        for (i, r) in results.iter().enumerate() {
            match i {
                3 => assert_eq!(r.as_ref().unwrap_err(), "libtorch error: CUDA out of memory"),
                5 => assert_eq!(r.as_ref().unwrap_err(), "panicked: injected panic in item 5"),
                7 => assert_eq!(r.as_ref().unwrap_err(), "cannot prepare 7"),
                _ => assert_eq!(*r.as_ref().unwrap(), (i * i) as i32),
            }
        }
        // Every worker was given back (also by the panicking item) and works.
        let all = p.lease_all();
        assert_eq!(all.indices(), &[0, 1]);
        drop(all);
        let again = p.run_batch(vec![1, 2, 3], Ok::<_, String>, |w, i| Ok(w.work(i, 0)), |m| m);
        assert_eq!(again.into_iter().map(Result::unwrap).collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn a_worker_poisoned_by_a_panic_is_reused() {
        let p = pool(1);
        let caught = catch_unwind(AssertUnwindSafe(|| {
            let _lease = p.lease();
            panic!("injected");
        }));
        assert!(caught.is_err());
        let mut lease = p.lease();
        assert_eq!(lease.work(5, 0), 5);
    }

    #[test]
    fn waiters_are_served_first_come_first_served() {
        within(30, || {
            let p = Arc::new(pool(1));
            let held = p.lease();
            let order = Arc::new(Mutex::new(Vec::new()));
            let mut handles = Vec::new();
            for caller in 0..8 {
                let (p2, order2) = (Arc::clone(&p), Arc::clone(&order));
                handles.push(std::thread::spawn(move || {
                    let mut lease = p2.lease();
                    order2.lock().unwrap().push(caller);
                    lease.work((), 1);
                }));
                // The next caller arrives only once this one is queued.
                while p.waiting() < caller + 1 {
                    std::thread::yield_now();
                }
            }
            drop(held);
            for h in handles {
                h.join().unwrap();
            }
            assert_eq!(*order.lock().unwrap(), (0..8).collect::<Vec<_>>());
        });
    }

    #[test]
    fn a_caller_waiting_for_every_worker_is_not_overtaken() {
        within(30, || {
            let p = Arc::new(pool(2));
            let first = p.lease();
            let got_all = Arc::new(AtomicBool::new(false));
            let (p2, got_all2) = (Arc::clone(&p), Arc::clone(&got_all));
            let sharded = std::thread::spawn(move || {
                let all = p2.lease_all();
                got_all2.store(true, Ordering::SeqCst);
                assert_eq!(all.workers().len(), 2);
            });
            while p.waiting() < 1 {
                std::thread::yield_now();
            }
            // One worker is free, but the caller in front needs both: a later single lease waits.
            let (p3, got_all3) = (Arc::clone(&p), Arc::clone(&got_all));
            let single = std::thread::spawn(move || {
                let _lease = p3.lease();
                assert!(got_all3.load(Ordering::SeqCst), "a later single lease overtook the caller waiting for all");
            });
            while p.waiting() < 2 {
                std::thread::yield_now();
            }
            drop(first);
            sharded.join().unwrap();
            single.join().unwrap();
        });
    }

    #[test]
    fn sixteen_concurrent_callers_make_progress_without_sharing_a_worker() {
        // Under miri (an interpreter that explores thread interleavings) fewer of each.
        let (callers, rounds) = if cfg!(miri) { (6, 4) } else { (16, 20) };
        within(120, move || {
            let p = Arc::new(pool(3));
            let done = Arc::new(AtomicUsize::new(0));
            let handles: Vec<_> = (0..callers)
                .map(|caller| {
                    let (p, done) = (Arc::clone(&p), Arc::clone(&done));
                    std::thread::spawn(move || {
                        for round in 0..rounds {
                            match (caller + round) % 4 {
                                // A batch of scenes, one of them failing.
                                0 => {
                                    let r = p.run_batch(
                                        (0..5).collect::<Vec<usize>>(),
                                        Ok::<_, String>,
                                        |w, i| if i == 2 { Err("fail".to_owned()) } else { Ok(w.work(i, 1)) },
                                        |m| m,
                                    );
                                    assert_eq!(r[4], Ok(4));
                                    assert!(r[2].is_err());
                                }
                                // A sharded scene: every worker at once.
                                1 => {
                                    let mut all = p.lease_all();
                                    assert_eq!(all.indices(), &[0, 1, 2]);
                                    all.work((), 1);
                                }
                                _ => {
                                    let mut one = p.lease();
                                    one.work((), 1);
                                }
                            }
                            done.fetch_add(1, Ordering::SeqCst);
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            assert_eq!(done.load(Ordering::SeqCst), callers * rounds);
            assert_eq!(p.waiting(), 0);
            assert_eq!(p.lease_all().indices(), &[0, 1, 2], "every worker given back");
        });
    }
}
