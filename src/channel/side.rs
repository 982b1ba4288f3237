//! One side's sleeping place: the futex word that threads blocked on that side sleep
//! on, and the count of threads that may be asleep there (see the module doc of
//! [`channel`](super), invariant 5).

use super::Until;
use crate::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use crate::wait;
use crossbeam_utils::CachePadded;

/// A sleeping place for the senders (waiting for room) or the receivers (waiting for
/// a value) of one channel.
pub(super) struct Side {
    /// The futex word. Bumped (wrapping) by every waker that found a sleeper, so a
    /// thread that read it before the bump does not go to sleep (the futex compare
    /// fails). Written only by `fetch_add` in [`Side::wake`].
    epoch: AtomicU32,
    /// Threads between [`Side::register`] and [`Side::unregister`]: an upper bound on
    /// the threads asleep on `epoch`. Written by sleepers only.
    sleepers: AtomicU32,
}

impl Side {
    pub(super) fn new() -> Self {
        Side {
            epoch: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
        }
    }

    /// The waker's half, step 2: the caller has just made a change that may let one
    /// sleeper of this side proceed (a push for receivers, a pop for senders) and then
    /// read-modify-written its own stripe with `AcqRel` (step 1, invariant 5). No
    /// write and no syscall unless someone is registered.
    #[inline(always)]
    pub(super) fn notify_one(&self) {
        if self.sleepers() != 0 {
            self.wake(false);
        }
    }

    /// Like [`notify_one`](Self::notify_one), waking every sleeper (close, after its
    /// touches of every stripe).
    pub(super) fn notify_all(&self) {
        if self.sleepers() != 0 {
            self.wake(true);
        }
    }

    #[inline(always)]
    fn sleepers(&self) -> u32 {
        // Ordering: Relaxed; the caller's AcqRel stripe read-modify-write just before
        // it orders this load after any sleeper registration that touched that
        // stripe earlier (invariant 5), and the count guards no memory.
        self.sleepers.load(Ordering::Relaxed)
    }

    #[cold]
    #[inline(never)]
    fn wake(&self, all: bool) {
        // Ordering: Release pairs with the Acquire load in `register`: a sleeper that
        // reads the bumped epoch sees the change that led to it (so it never sleeps
        // on a value that already carries our wake).
        self.epoch.fetch_add(1, Ordering::Release);
        if all {
            wait::wake_all(&self.epoch);
        } else {
            wait::wake_one(&self.epoch);
        }
    }

    /// The sleeper's half: count ourselves, read the epoch, then touch every stripe
    /// of the other side's wakers (invariant 5). The caller must then try its
    /// operation again and, only if it still has to wait, call
    /// [`sleep`](Self::sleep) with the returned epoch; [`unregister`](Self::unregister)
    /// after either.
    pub(super) fn register(&self, wakers: &[CachePadded<AtomicUsize>]) -> u32 {
        // Ordering: Relaxed; the AcqRel touches below carry it to the wakers.
        self.sleepers.fetch_add(1, Ordering::Relaxed);
        // Ordering: Acquire pairs with the Release bump in `wake`.
        let e = self.epoch.load(Ordering::Acquire);
        for stripe in wakers {
            // Ordering: AcqRel, the sleeper's side of invariant 5. Release: a waker
            // whose stripe read-modify-write comes later reads this touch (or a later
            // value) and so sees our registration. Acquire: if the waker's comes
            // first, we see the change it made before it.
            stripe.fetch_add(0, Ordering::AcqRel);
        }
        e
    }

    /// Sleeps while the epoch is still `e`, at most until `until` gives up.
    pub(super) fn sleep(&self, e: u32, until: Until<'_>) {
        until.sleep(&self.epoch, e);
        // Ordering: Acquire pairs with the Release bump in `wake`. A futex wake is
        // not a synchronisation in the language's memory model: without this load a
        // woken thread's retry could, on paper, miss the change that woke it (and
        // then, giving up at its deadline or signal, leave it to a thread still
        // asleep). Reading the bumped epoch here orders that change before the
        // retry. One load, on the slow path only.
        let _ = self.epoch.load(Ordering::Acquire);
    }

    /// The sleeper leaves.
    pub(super) fn unregister(&self) {
        // Ordering: Relaxed; the count guards no memory, and an over-count only costs
        // a waker a spurious wake.
        self.sleepers.fetch_sub(1, Ordering::Relaxed);
    }
}
