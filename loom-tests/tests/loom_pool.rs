//! loom models of `WorkerPool`: every interleaving of one worker, one job, and a
//! submit, join, drop or shutdown racing it.
//!
//! Run: `RUSTFLAGS="--cfg atomkit_loom --cfg crossbeam_loom" cargo test --release -p atomkit-loom-tests --test loom_pool`
//! (or `cargo xtask loom`). `LOOM_MAX_PREEMPTIONS` overrides the bound set here.
#![cfg(atomkit_loom)]

use atomkit::pool::{JobError, Submitter, WorkerPool};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use std::time::Duration;

fn model(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    atomkit_loom_tests::loom_model(bound, f);
}

fn pool(cap: usize) -> WorkerPool {
    WorkerPool::builder()
        .workers(1)
        .queue_capacity(cap)
        .sample_timing(0)
        .build()
        .unwrap()
}

/// Counts its drops.
struct Counted(Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Shuts down and joins every worker: loom ends the model when the main thread
/// returns, so no worker may outlive it (the drop and deadline paths, which leave
/// workers to exit on their own, are covered by the shuttle tests).
fn shutdown_and_join(p: WorkerPool) -> u64 {
    p.shutdown_timeout(Duration::MAX).unwrap().completed
}

/// A job's result reaches a handle that joins while the worker runs it: the value is
/// visible (loom checks the cell accesses) and a sleeping join is woken.
#[test]
fn join_racing_completion() {
    model(2, || {
        let p = pool(1);
        let h = p.submit(|| 7u32).unwrap();
        assert_eq!(h.join().unwrap(), 7);
        assert_eq!(shutdown_and_join(p), 1);
    });
}

/// Runs `submit` on another thread, with a submitter of a one-worker pool and a
/// drop-counted capture for its job, while this thread shuts the pool down. Returns
/// the jobs the shutdown counted as completed, what `submit` returned, and how many
/// times the capture was dropped.
fn race_shutdown<R: Send + 'static>(
    submit: impl FnOnce(Submitter, Counted) -> R + Send + 'static,
) -> (u64, R, usize) {
    let p = pool(1);
    let dropped = Arc::new(AtomicUsize::new(0));
    let (s, c) = (p.submitter(), Counted(dropped.clone()));
    let t = thread::spawn(move || submit(s, c));
    let completed = shutdown_and_join(p);
    let r = t.join().unwrap();
    (completed, r, dropped.load(Ordering::Relaxed))
}

/// A submit from another thread races the shutdown: the job is refused with
/// `ShutDown`, or it is accepted and runs; it is dropped exactly once, and the
/// report counts it exactly when it was accepted.
#[test]
fn submit_racing_shutdown() {
    model(1, || {
        let (completed, accepted, dropped) = race_shutdown(|s, c| {
            match s.try_submit(move || {
                drop(c);
                1u32
            }) {
                Ok(h) => Some(h),
                Err(e) => {
                    assert!(e.is_shut_down(), "capacity 1 and one job: never full");
                    None
                }
            }
        });
        assert_eq!(completed, u64::from(accepted.is_some()));
        if let Some(h) = accepted {
            assert_eq!(h.join().unwrap(), 1);
        }
        assert_eq!(dropped, 1);
    });
}

/// As above for a small `execute` job, which travels inline in the queue entry: it
/// is refused (and handed back whole, to be dropped by the caller) or accepted and
/// run; its capture is dropped exactly once either way.
#[test]
fn inline_execute_racing_shutdown() {
    model(1, || {
        let (completed, accepted, dropped) =
            race_shutdown(|s, c| match s.execute(move || drop(c)) {
                Ok(()) => true,
                Err(refused) => {
                    drop(refused.into_inner());
                    false
                }
            });
        assert_eq!(completed, u64::from(accepted));
        assert_eq!(dropped, 1);
    });
}

/// A submit blocked on a full queue is woken by the shutdown (intake close is a
/// broadcast) or gets in first; the jobs it got in all run.
#[test]
fn blocked_submit_racing_shutdown() {
    model(1, || {
        let p = pool(1);
        let first = p.submit(|| 1u32).unwrap();
        let s = p.submitter();
        let t = thread::spawn(move || s.submit(|| 2u32).ok());
        let completed = shutdown_and_join(p);
        let second = t.join().unwrap();
        assert_eq!(first.join().unwrap(), 1);
        assert_eq!(completed, 1 + u64::from(second.is_some()));
        if let Some(h) = second {
            assert_eq!(h.join().unwrap(), 2);
        }
    });
}

/// A job that panics: the worker catches it, the handle reports it, and the worker
/// is still there for the shutdown to join.
#[test]
fn panic_is_a_result() {
    model(1, || {
        let p = pool(1);
        let h = p.submit(|| -> u32 { std::panic::panic_any(9u8) }).unwrap();
        assert!(matches!(h.join(), Err(JobError::Panicked(_))));
        let r = p.shutdown_timeout(Duration::MAX).unwrap();
        assert_eq!((r.completed, r.panicked), (0, 1));
    });
}

/// A handle dropped while the worker runs the job: the worker either still sees the
/// handle (and publishes the result) or sees its reference as the last (and only
/// stores it); either way the result is dropped exactly once, by whoever lets go of
/// the task last. A small detached job (`execute`) travels inline, with no task: its
/// result is dropped by the worker that ran it.
#[test]
fn handle_drop_racing_completion() {
    model(1, || {
        let p = pool(1);
        let drops = Arc::new(AtomicUsize::new(0));
        let d = drops.clone();
        let h = p.submit(move || Counted(d)).unwrap();
        let t = thread::spawn(move || drop(h));
        let d = drops.clone();
        p.execute(move || Counted(d)).unwrap();
        t.join().unwrap();
        assert_eq!(shutdown_and_join(p), 2);
        assert_eq!(drops.load(Ordering::Relaxed), 2);
    });
}
