//! The buffered flavor (`bounded(cap)`, `cap > 0`): an [`ArrayQueue`] that closes,
//! a stripe of wake-up words per side, and a sleeping place per side. The design,
//! its invariants and its orderings are in the module doc of [`channel`](super).

use super::side::Side;
use super::{Fail, Refused, Until};
use crate::queue::ArrayQueue;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crossbeam_utils::{Backoff, CachePadded};

/// How many wake-up words each side has. Each handle picks one when it is made, so
/// handles on different threads rarely share a cache line.
#[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
pub(super) const STRIPES: usize = 8;
/// Two stripes under the model checkers: enough to model the close scan, few enough
/// to keep the state space small.
#[cfg(any(atomkit_loom, atomkit_shuttle))]
pub(super) const STRIPES: usize = 2;

pub(super) struct Channel<T> {
    /// The values, and the closed flag: closing the queue is closing the channel
    /// (invariant 2).
    queue: ArrayQueue<T>,
    /// Always 0: each sender read-modify-writes its own stripe (`+0`) after a
    /// successful push, before it looks for sleeping receivers; touched by `close`
    /// and by receivers about to sleep (invariant 5).
    send_stripes: Box<[CachePadded<AtomicUsize>]>,
    /// Always 0: each receiver read-modify-writes its own stripe (`+0`) after a pop,
    /// before it looks for sleeping senders; touched by `close` and by senders about
    /// to sleep (invariant 5).
    recv_stripes: Box<[CachePadded<AtomicUsize>]>,
    /// Senders waiting for room.
    senders: CachePadded<Side>,
    /// Receivers waiting for a value.
    receivers: CachePadded<Side>,
}

impl<T> Channel<T> {
    pub(super) fn new(cap: usize) -> Self {
        Channel {
            queue: ArrayQueue::new(cap),
            send_stripes: stripes(),
            recv_stripes: stripes(),
            senders: CachePadded::new(Side::new()),
            receivers: CachePadded::new(Side::new()),
        }
    }

    pub(super) fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub(super) fn is_full(&self) -> bool {
        self.queue.is_full()
    }

    pub(super) fn is_closed(&self) -> bool {
        // The queue's Acquire load pairs with the Release half of its close, so what
        // the closer wrote before closing is visible to whoever sees it closed.
        self.queue.is_closed()
    }

    /// Pushes `value` unless the channel is full or closed; wakes a receiver if one
    /// sleeps. Lock-free; one syscall at most, only when a receiver sleeps.
    #[inline]
    pub(super) fn try_send(&self, value: T, stripe: usize) -> Result<(), (T, Refused)> {
        // A send on a closed channel is refused without taking a slot first (the
        // queue would refuse it too, after taking one and giving it back).
        if self.is_closed() {
            return Err((value, Refused::Closed));
        }
        match self.queue.push_unless_closed(value) {
            Ok(()) => {
                // Ordering: AcqRel, the sending waker's side of invariant 5: ordered
                // with a sleeping receiver's touch of this stripe, so either that
                // receiver's retry sees the push (Release half) or `notify_one`
                // below sees it counted (Acquire half).
                self.send_stripes[stripe].fetch_add(0, Ordering::AcqRel);
                self.receivers.notify_one();
                Ok(())
            }
            Err((value, true)) => Err((value, Refused::Closed)),
            Err((value, false)) => Err((value, Refused::Full)),
        }
    }

    /// Pops a value; `Ok(None)` if empty and open, `Err(())` if closed and drained.
    /// Wakes a sender if one sleeps.
    #[inline]
    pub(super) fn try_recv(&self, stripe: usize) -> Result<Option<T>, ()> {
        if let Some(v) = self.queue.pop() {
            // Ordering: AcqRel, the receiving waker's side of invariant 5 (see
            // `try_send`): ordered with a sleeping sender's touch, so either it sees
            // the slot we freed or `notify_one` sees it counted.
            self.recv_stripes[stripe].fetch_add(0, Ordering::AcqRel);
            self.senders.notify_one();
            return Ok(Some(v));
        }
        self.try_recv_empty()
    }

    /// The queue looked empty: decide between empty and closed (invariant 3).
    #[cold]
    fn try_recv_empty(&self) -> Result<Option<T>, ()> {
        if !self.is_closed() {
            return Ok(None);
        }
        // No sender can wait for the room this frees: sends fail once closed.
        self.queue.pop_closed().map(Some).ok_or(())
    }

    /// Sends, waiting for room until `until` gives up.
    pub(super) fn send(
        &self,
        mut value: T,
        stripe: usize,
        until: Until<'_>,
    ) -> Result<(), (T, Fail)> {
        let backoff = Backoff::new();
        let mut yields = 0;
        loop {
            match self.try_send(value, stripe) {
                Ok(()) => return Ok(()),
                Err((v, Refused::Closed)) => return Err((v, Fail::Closed)),
                Err((v, Refused::Full)) => value = v,
            }
            if let Some(fail) = until.expired() {
                return Err((value, fail));
            }
            if spin(&backoff, &mut yields) {
                continue;
            }
            // Invariant 5: register, then look again, then sleep.
            let epoch = self.senders.register(&self.recv_stripes);
            match self.try_send(value, stripe) {
                Ok(()) => {
                    self.senders.unregister();
                    return Ok(());
                }
                Err((v, Refused::Closed)) => {
                    self.senders.unregister();
                    return Err((v, Fail::Closed));
                }
                Err((v, Refused::Full)) => value = v,
            }
            self.senders.sleep(epoch, until);
            self.senders.unregister();
        }
    }

    /// Receives, waiting for a value until `until` gives up.
    pub(super) fn recv(&self, stripe: usize, until: Until<'_>) -> Result<T, Fail> {
        let backoff = Backoff::new();
        let mut yields = 0;
        loop {
            match self.try_recv(stripe) {
                Ok(Some(v)) => return Ok(v),
                Err(()) => return Err(Fail::Closed),
                Ok(None) => {}
            }
            if let Some(fail) = until.expired() {
                return Err(fail);
            }
            if spin_long(&backoff, &mut yields) {
                continue;
            }
            // Invariant 5: register, then look again, then sleep.
            let epoch = self.receivers.register(&self.send_stripes);
            let again = self.try_recv(stripe);
            if !matches!(again, Ok(None)) {
                self.receivers.unregister();
                return again
                    .map(|v| v.expect("checked above"))
                    .map_err(|()| Fail::Closed);
            }
            self.receivers.sleep(epoch, until);
            self.receivers.unregister();
        }
    }

    /// Closes the channel; true if this call closed it.
    pub(super) fn close(&self) -> bool {
        if !self.queue.close() {
            return false;
        }
        for stripe in self.send_stripes.iter().chain(self.recv_stripes.iter()) {
            // Ordering: AcqRel; a waker's touch (invariant 5): ordered with every
            // sleeper's touch of this stripe, so a receiver or sender about to
            // sleep either sees the close when it looks again, or is counted when
            // the notifications below read `sleepers`.
            stripe.fetch_add(0, Ordering::AcqRel);
        }
        // Close is a broadcast (invariant 6).
        self.senders.notify_all();
        self.receivers.notify_all();
        true
    }

    /// The last receiver went: close and drop what is queued. A send still in
    /// progress either lands before the drain passes its position (and is dropped
    /// here) or fails (invariant 3).
    pub(super) fn disconnect_receivers(&self) {
        self.close();
        while self.queue.pop_closed().is_some() {}
    }
}

fn stripes() -> Box<[CachePadded<AtomicUsize>]> {
    (0..STRIPES)
        .map(|_| CachePadded::new(AtomicUsize::new(0)))
        .collect()
}

/// How many extra yields a waiter makes after `Backoff` is done, before it
/// registers to sleep. A registered sleeper costs every push (or pop) a futex wake
/// until it runs again, so on a busy machine a few more yields pay for themselves.
#[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
const EXTRA_YIELDS: u32 = 16;

/// The receivers' extra yields: more than the senders', because idle receivers are
/// a worker pool's workers, and with more workers than cores every one that sleeps
/// costs the submitter a futex wake, while one that yields hands it the core. At 8
/// workers on 2 cores, 64 yields measured 1.5-2x the pool's throughput of 16; no
/// change at 2 workers.
#[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
const RECV_EXTRA_YIELDS: u32 = 64;

/// The spin before sleeping: `Backoff` (spin, then yield), then [`EXTRA_YIELDS`]
/// more yields. True while the caller should keep spinning. Under the model checkers
/// there is no spin: it would only multiply interleavings.
#[inline]
pub(super) fn spin(backoff: &Backoff, yields: &mut u32) -> bool {
    #[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
    return spin_up_to(backoff, yields, EXTRA_YIELDS);
    #[cfg(any(atomkit_loom, atomkit_shuttle))]
    {
        let _ = (backoff, yields);
        false
    }
}

/// [`spin`] with the receivers' [`RECV_EXTRA_YIELDS`].
#[inline]
fn spin_long(backoff: &Backoff, yields: &mut u32) -> bool {
    #[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
    return spin_up_to(backoff, yields, RECV_EXTRA_YIELDS);
    #[cfg(any(atomkit_loom, atomkit_shuttle))]
    spin(backoff, yields)
}

#[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
#[inline]
fn spin_up_to(backoff: &Backoff, yields: &mut u32, extra: u32) -> bool {
    if !backoff.is_completed() {
        backoff.snooze();
        return true;
    }
    if *yields < extra {
        *yields += 1;
        crate::sync::thread::yield_now();
        return true;
    }
    false
}
