//! One side's sleeping place: the futex word that threads blocked on that side sleep
//! on, and the count of threads that may be asleep there (see the module doc of
//! [`channel`](super), "Waking").

use crate::sync::atomic::{AtomicU32, Ordering};
use crate::sync::time::Instant;
use crate::wait;

/// The Dekker fence of the sleep/wake protocol (invariant 5 of the module doc):
/// between "I registered as a sleeper" and "I look at the channel again" on the
/// sleeper's side, and between "I changed the channel" and "I look for sleepers" on
/// the waker's side. Under ThreadSanitizer, which ignores fences, the accesses around
/// it are SeqCst read-modify-writes instead (see [`Side::register`] and
/// [`Side::sleepers_after_change`]).
#[inline(always)]
fn dekker_fence() {
    #[cfg(not(atomkit_tsan))]
    // Ordering: SeqCst, pairing the two sides as described above: of two SeqCst
    // fences one precedes the other in the single total order, so either the waker's
    // load after its fence sees the sleeper's registration, or the sleeper's recheck
    // after its fence sees the waker's change.
    crate::sync::atomic::fence(Ordering::SeqCst);
}

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

    /// The waker's half: called right after a change that may let one sleeper of this
    /// side proceed (a push for receivers, a pop for senders). No syscall and no write
    /// unless someone is registered.
    #[inline(always)]
    pub(super) fn notify_one(&self) {
        if self.sleepers_after_change() != 0 {
            self.wake(false);
        }
    }

    /// Like [`notify_one`](Self::notify_one), waking every sleeper (close).
    pub(super) fn notify_all(&self) {
        if self.sleepers_after_change() != 0 {
            self.wake(true);
        }
    }

    /// Fence, then read the sleeper count (invariant 5).
    #[inline(always)]
    fn sleepers_after_change(&self) -> u32 {
        dekker_fence();
        #[cfg(not(atomkit_tsan))]
        {
            // Ordering: Relaxed; the fence before it pairs with the fence in
            // `register` (invariant 5), and the count guards no memory.
            self.sleepers.load(Ordering::Relaxed)
        }
        #[cfg(atomkit_tsan)]
        {
            // Ordering: a SeqCst read-modify-write stands in for fence + load under
            // TSan: it reads the latest count, and a sleeper whose registration comes
            // later in the word's order synchronizes with it (Release half) and so
            // sees our change.
            self.sleepers.fetch_add(0, Ordering::SeqCst)
        }
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

    /// The sleeper's half, step 1: count ourselves, read the epoch, fence. The caller
    /// must then look at the channel again and, only if it still has to wait, call
    /// [`sleep`](Self::sleep) with the returned epoch and [`unregister`] after.
    pub(super) fn register(&self) -> u32 {
        #[cfg(not(atomkit_tsan))]
        // Ordering: Relaxed; ordered before the recheck by the fence below.
        self.sleepers.fetch_add(1, Ordering::Relaxed);
        #[cfg(atomkit_tsan)]
        // Ordering: SeqCst read-modify-write, standing in for the fence under TSan
        // (see `sleepers_after_change`).
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        // Ordering: Acquire pairs with the Release bump in `wake`.
        let e = self.epoch.load(Ordering::Acquire);
        dekker_fence();
        e
    }

    /// Sleeps while the epoch is still `e`, at most until `until`.
    pub(super) fn sleep(&self, e: u32, until: Option<Instant>) {
        wait::wait_maybe_until(&self.epoch, e, until);
    }

    /// The sleeper leaves.
    pub(super) fn unregister(&self) {
        // Ordering: Relaxed; the count guards no memory, and an over-count only costs
        // a waker a spurious wake.
        self.sleepers.fetch_sub(1, Ordering::Relaxed);
    }
}
