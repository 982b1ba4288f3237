//! loom models of `Semaphore`: every interleaving of small scenarios.
//!
//! Run: `RUSTFLAGS="--cfg atomkit_loom --cfg crossbeam_loom" cargo nextest run --release -p atomkit-loom-tests --test loom_semaphore`
//! (or `cargo xtask loom`). `LOOM_MAX_PREEMPTIONS` overrides the bound set here.
//!
//! Models with two waiters run at preemption bound 1: every extra waiter multiplies the
//! futex-model steps, and at bound 2 they take minutes. The single-waiter models run
//! at bound 3.
//!
//! Under the model checkers a waiter turns hungry on its first unsuccessful wake-up
//! (no 1 ms threshold), so the hungry path is explored in every model with waiters.
#![cfg(atomkit_loom)]

use atomkit::semaphore::Semaphore;
use atomkit::signal::{Cause, Signal};
use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use std::time::Duration;

fn model(f: impl Fn() + Sync + Send + 'static) {
    model_bound(3, f);
}

fn model_bound(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    atomkit_loom_tests::loom_model(bound, f);
}

/// A release racing a thread that finds no permit and goes to sleep: the sleeper is
/// always woken (a lost wake-up is a loom deadlock).
#[test]
fn release_racing_acquire_then_sleep() {
    model(|| {
        let sem = Arc::new(Semaphore::new(0));
        let t = {
            let sem = sem.clone();
            thread::spawn(move || sem.acquire().unwrap().forget())
        };
        sem.add_permits(1);
        t.join().unwrap();
        assert_eq!(sem.available_permits(), 0);
    });
}

/// Two sleepers, two single-permit releases: each release wakes one (the single-wake
/// path); neither sleeper is left behind.
#[test]
fn two_releases_two_sleepers() {
    model_bound(3, || {
        let sem = Arc::new(Semaphore::new(0));
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let sem = sem.clone();
                thread::spawn(move || sem.acquire().unwrap().forget())
            })
            .collect();
        sem.add_permits(1);
        sem.add_permits(1);
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(sem.available_permits(), 0);
    });
}

/// A timed acquire racing a release: it either gets the permit or times out, and
/// the permit is never lost. A second, untimed sleeper must get it in the end, so
/// a timed-out waiter that swallowed the wake-up must pass it on.
#[test]
fn timeout_racing_release_leaks_nothing() {
    model_bound(3, || {
        let sem = Arc::new(Semaphore::new(0));
        let timed = {
            let sem = sem.clone();
            thread::spawn(move || {
                // Released at once if taken, so the other sleeper gets it then.
                sem.acquire_timeout(Duration::from_secs(1))
                    .map(drop)
                    .is_ok()
            })
        };
        let plain = {
            let sem = sem.clone();
            thread::spawn(move || sem.acquire().unwrap().forget())
        };
        sem.add_permits(1);
        timed.join().unwrap();
        plain.join().unwrap();
        assert_eq!(sem.available_permits(), 0);
    });
}

/// A hungry waiter that times out must wake the waiters its hungry bit held back:
/// `H` wants 2 permits while the main thread keeps one, turns hungry after one
/// unsuccessful wake-up, so `U`'s `acquire()` sleeps although a permit is free; when
/// `H` gives up it must wake `U`, as nobody else will.
#[test]
fn hungry_waiter_times_out_and_passes_on() {
    model_bound(3, || {
        let sem = Arc::new(Semaphore::new(2));
        let p = sem.acquire().unwrap();
        let h = {
            let sem = sem.clone();
            // Succeeds only if the main thread's re-take failed; then it releases.
            thread::spawn(move || drop(sem.acquire_many_timeout(2, Duration::from_secs(1))))
        };
        let u = {
            let sem = sem.clone();
            thread::spawn(move || sem.acquire().unwrap().forget())
        };
        // Release and re-take, as a barging acquirer would: wakes `H` for nothing.
        drop(p);
        let p2 = sem.try_acquire().ok();
        h.join().unwrap();
        u.join().unwrap();
        drop(p2);
    });
}

/// A timed acquire alone against a release: no permit leaked either way.
#[test]
fn timeout_racing_release_alone() {
    model(|| {
        let sem = Arc::new(Semaphore::new(0));
        let t = {
            let sem = sem.clone();
            thread::spawn(move || {
                sem.acquire_timeout(Duration::from_secs(1))
                    .map(|p| p.forget())
                    .is_ok()
            })
        };
        sem.add_permits(1);
        let got = t.join().unwrap();
        assert_eq!(sem.available_permits(), if got { 0 } else { 1 });
    });
}

/// Close racing a sleeping acquire: the acquire always returns, with `Closed`.
#[test]
fn close_racing_acquire() {
    model_bound(3, || {
        let sem = Arc::new(Semaphore::new(0));
        let ts: Vec<_> = [1usize, 2]
            .into_iter()
            .map(|n| {
                let sem = sem.clone();
                thread::spawn(move || sem.acquire_many(n).map(drop).unwrap_err().is_closed())
            })
            .collect();
        assert!(sem.close());
        for t in ts {
            assert!(t.join().unwrap());
        }
    });
}

/// Close racing an acquire that may win a permit first: either outcome, never a hang.
#[test]
fn close_racing_acquire_with_permit() {
    model(|| {
        let sem = Arc::new(Semaphore::new(0));
        let t = {
            let sem = sem.clone();
            thread::spawn(move || sem.acquire().map(|p| p.forget()).is_ok())
        };
        sem.add_permits(1);
        sem.close();
        let got = t.join().unwrap();
        assert_eq!(sem.available_permits(), if got { 0 } else { 1 });
    });
}

/// A raw pointer that may cross threads.
struct SendPtr(*const Semaphore);
// SAFETY: `Semaphore` is `Sync`; the model argues at the dereference why the
// semaphore is alive there.
unsafe impl Send for SendPtr {}

/// Release-then-free: the waiter frees the semaphore the moment its acquire returns,
/// while the releaser may still be inside `add_permits`. (loom does not flag a
/// use-after-free by itself; this model checks that the waiter never needs the
/// releaser after the release, and the Miri test `waiter_frees_semaphore_while_
/// releaser_returns` checks the memory access.)
#[test]
fn release_then_free() {
    model(|| {
        let sem = Box::new(Semaphore::new(0));
        let ptr = SendPtr(&*sem);
        let releaser = thread::spawn(move || {
            let ptr = ptr;
            // SAFETY: the semaphore lives until the waiter's acquire returns, which
            // needs this call's read-modify-write; after that `add_permits` only wakes
            // by address (the property under test).
            unsafe { (*ptr.0).add_permits(1) };
        });
        sem.acquire().unwrap().forget();
        drop(sem);
        releaser.join().unwrap();
    });
}

/// The semaphore with one permit is a lock: what one holder wrote is visible to the
/// next (the Acquire/Release pairing of the permit CASes), checked by loom's cell
/// tracking.
#[test]
fn permit_is_a_lock() {
    model(|| {
        let sem = Arc::new(Semaphore::new(1));
        let cell = Arc::new(UnsafeCell::new(0u32));
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let (sem, cell) = (sem.clone(), cell.clone());
                thread::spawn(move || {
                    let _p = sem.acquire().unwrap();
                    // SAFETY: the one permit is held: no other thread touches the cell.
                    cell.with_mut(|v| unsafe { *v += 1 });
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        let _p = sem.acquire().unwrap();
        // SAFETY: every writer has been joined and the permit is held.
        assert_eq!(cell.with(|v| unsafe { *v }), 2);
    });
}

/// A weighted waiter against a unit waiter and a holder that releases both permits:
/// both waiters finish (the hungry bit and the wake-all for weighted waiters).
#[test]
fn weighted_and_unit_waiters() {
    model_bound(3, || {
        let sem = Arc::new(Semaphore::new(2));
        let held = sem.try_acquire_many(2).unwrap().forget_count();
        let ts: Vec<_> = [2usize, 1]
            .into_iter()
            .map(|n| {
                let sem = sem.clone();
                thread::spawn(move || drop(sem.acquire_many(n).unwrap()))
            })
            .collect();
        sem.add_permits(held);
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(sem.available_permits(), 2);
    });
}

/// A Signal-cancellable acquire racing the signal's close: it returns `Cancelled`.
#[test]
fn signal_cancels_acquire() {
    model(|| {
        let sem = Arc::new(Semaphore::new(0));
        let stop = Signal::new();
        let t = {
            let (sem, stop) = (sem.clone(), stop.clone());
            thread::spawn(move || sem.acquire_until(&stop).map(drop).unwrap_err())
        };
        stop.close();
        assert_eq!(t.join().unwrap().cause(), Some(Cause::Closed));
    });
}

trait ForgetCount {
    fn forget_count(self) -> usize;
}

impl ForgetCount for atomkit::semaphore::Permit<'_> {
    fn forget_count(self) -> usize {
        let n = self.num_permits();
        self.forget();
        n
    }
}
