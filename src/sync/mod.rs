//! The switch: the one module that names the platform's concurrency primitives.
//!
//! Every atomic, cell, lock, thread call, spin hint and clock read in atomkit goes
//! through here, so that one cfg swaps the whole crate onto a model checker:
//!
//! | build                      | atomics, cells, threads from |
//! |----------------------------|------------------------------|
//! | default                    | `std` / `core`               |
//! | `--cfg atomkit_loom`       | `loom` (exhaustive, weak memory) |
//! | `--cfg atomkit_shuttle`    | `shuttle` (randomized / PCT schedules) |
//!
//! The cfgs are crate-prefixed and never keyed on `test`, so the models in
//! `loom-tests/` and in downstream crates run the real library code.

#[cfg(all(atomkit_loom, atomkit_shuttle))]
compile_error!("`--cfg atomkit_loom` and `--cfg atomkit_shuttle` cannot be combined: pick one model checker per build");

#[cfg(all(atomkit_loom, not(crossbeam_loom)))]
compile_error!(
    "`--cfg atomkit_loom` needs `--cfg crossbeam_loom` as well, so that crossbeam-epoch's \
     reclamation is modelled too: RUSTFLAGS=\"--cfg atomkit_loom --cfg crossbeam_loom\""
);

mod cell;
// Not every build uses every item: primitives pick what they need.
#[allow(unused_imports)]
pub(crate) use cell::UnsafeCell;

#[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
mod imp {
    pub(crate) use std::sync::atomic;
    pub(crate) use std::sync::{Arc, Mutex, MutexGuard};
    pub(crate) use std::thread;
    pub(crate) use std::thread_local;

    /// A spin-loop hint for a busy wait.
    #[inline]
    #[allow(dead_code)]
    pub(crate) fn spin_loop() {
        std::hint::spin_loop();
    }
}

#[cfg(atomkit_loom)]
mod imp {
    pub(crate) use loom::sync::atomic;
    pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
    pub(crate) use loom::thread;
    pub(crate) use loom::thread_local;

    /// Under loom a spin is a yield, so the model can schedule the thread it waits for.
    #[inline]
    #[allow(dead_code)]
    pub(crate) fn spin_loop() {
        loom::thread::yield_now();
    }
}

#[cfg(atomkit_shuttle)]
mod imp {
    pub(crate) use shuttle::sync::atomic;
    pub(crate) use shuttle::sync::{Arc, Mutex, MutexGuard};
    pub(crate) use shuttle::thread;
    pub(crate) use shuttle::thread_local;

    /// Under shuttle a spin is a yield, so the scheduler can run the thread it waits for.
    #[inline]
    #[allow(dead_code)]
    pub(crate) fn spin_loop() {
        shuttle::thread::yield_now();
    }
}

#[allow(unused_imports)]
pub(crate) use imp::{atomic, spin_loop, thread, thread_local, Arc, Mutex, MutexGuard};

/// Declares a thread-local with a `const` initialiser (no lazy-init check on access)
/// in std and shuttle builds, and a plain one under loom, whose `thread_local!` takes
/// no `const` initialiser.
macro_rules! const_thread_local {
    (static $name:ident: $t:ty = $init:expr;) => {
        #[cfg(not(atomkit_loom))]
        $crate::sync::thread_local! {
            static $name: $t = const { $init };
        }
        #[cfg(atomkit_loom)]
        $crate::sync::thread_local! {
            static $name: $t = $init;
        }
    };
}
#[allow(unused_imports)]
pub(crate) use const_thread_local;

/// Locks a mutex, ignoring poisoning: atomkit never leaves shared state half-written
/// across a panic while a lock is held, so a poisoned lock is still consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The clock. Real time in every build; under the model checkers, a timed wait that
/// gives up moves this clock past its deadline (see `wait`), so the code that called it
/// sees the deadline as passed without the model having to model time.
pub(crate) mod time {
    pub(crate) use std::time::{Duration, Instant};

    /// The current instant, as atomkit sees it.
    #[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
    #[inline]
    pub(crate) fn now() -> Instant {
        Instant::now()
    }

    /// The current instant, as atomkit sees it: real time, or later if a
    /// modelled timed wait has given up at a later deadline.
    #[cfg(any(atomkit_loom, atomkit_shuttle))]
    pub(crate) fn now() -> Instant {
        crate::wait::model::now()
    }
}
