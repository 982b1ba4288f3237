//! The buffered flavor (`bounded(cap)`, `cap > 0`): an [`ArrayQueue`] with a closed
//! flag, per-stripe counts of sends in flight, and a sleeping place per side. The
//! design, its invariants and its orderings are in the module doc of
//! [`channel`](super).

use super::side::Side;
use super::{Fail, Refused, Until};
use crate::queue::ArrayQueue;
use crate::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use crossbeam_utils::{Backoff, CachePadded};

/// `state`: a `close` has begun; sends fail from now on.
const CLOSING: u32 = 1;
/// `state`: the `close` that began has touched every stripe (invariant 3).
const CLOSED: u32 = 1 << 1;

/// How many in-flight counters a channel has. Each `Sender` handle picks one when it
/// is made, so senders on different threads rarely share a cache line.
#[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
pub(super) const STRIPES: usize = 8;
/// Two stripes under the model checkers: enough to model the close scan, few enough
/// to keep the state space small.
#[cfg(any(atomkit_loom, atomkit_shuttle))]
pub(super) const STRIPES: usize = 2;

pub(super) struct Channel<T> {
    /// The values. Pushed only by a sender counted in a stripe (invariant 2).
    queue: ArrayQueue<T>,
    /// `CLOSING | CLOSED`, set once each by the one winning `close`, in that order.
    state: CachePadded<AtomicU32>,
    /// Sends in flight per stripe: +1 before a sender checks `CLOSING`, -1 after its
    /// push (or after it saw `CLOSING`). Written by senders, and touched (`+0`) by
    /// `close` and by receivers about to sleep.
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
            state: CachePadded::new(AtomicU32::new(0)),
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
        // Ordering: Acquire pairs with the AcqRel `fetch_or` in `close`, so what the
        // closer wrote before closing is visible to whoever sees the channel closed.
        self.state.load(Ordering::Acquire) & CLOSING != 0
    }

    /// Pushes `value` unless the channel is full or closed; wakes a receiver if one
    /// sleeps. Lock-free; one syscall at most, only when a receiver sleeps.
    #[inline]
    pub(super) fn try_send(&self, value: T, stripe: usize) -> Result<(), (T, Refused)> {
        // A closed channel is refused before the stripe is touched, so that a sender
        // looping on a closed channel does not keep its stripe busy (invariant 3).
        if self.is_closed() {
            return Err((value, Refused::Closed));
        }
        let count = &self.send_stripes[stripe];
        // Ordering: Acquire pairs with the AcqRel touch in `close` (invariant 3): if
        // this increment comes after the touch, the load of `state` below sees
        // `CLOSING`. Its Release half is not needed: the decrement publishes the push.
        count.fetch_add(1, Ordering::Acquire);
        if self.is_closed() {
            // Ordering: Relaxed; nothing was pushed, so there is nothing to publish.
            count.fetch_sub(1, Ordering::Relaxed);
            return Err((value, Refused::Closed));
        }
        let pushed = self.queue.push(value);
        // Ordering: AcqRel. Release pairs with the Acquire loads in
        // `wait_closed_quiet` (a receiver that sees the count drop also sees the push,
        // invariant 4) and with a sleeping receiver's touch (invariant 5: it then sees
        // the push). Acquire pairs with that touch the other way round (if the touch
        // came first, `notify_one` below sees the receiver counted).
        count.fetch_sub(1, Ordering::AcqRel);
        match pushed {
            Ok(()) => {
                self.receivers.notify_one();
                Ok(())
            }
            Err(value) => Err((value, Refused::Full)),
        }
    }

    /// Pops a value; `Ok(None)` if empty and open, `Err(())` if closed and drained.
    /// Wakes a sender if one sleeps.
    #[inline]
    pub(super) fn try_recv(&self, stripe: usize) -> Result<Option<T>, ()> {
        if let Some(v) = self.queue.pop() {
            // Ordering: AcqRel, the receiving waker's side of invariant 5 (see the
            // decrement in `try_send`): ordered with a sleeping sender's touch, so
            // either it sees the slot we freed or `notify_one` sees it counted.
            self.recv_stripes[stripe].fetch_add(0, Ordering::AcqRel);
            self.senders.notify_one();
            return Ok(Some(v));
        }
        self.try_recv_empty()
    }

    /// The queue looked empty: decide between empty and closed (invariant 4).
    #[cold]
    fn try_recv_empty(&self) -> Result<Option<T>, ()> {
        if !self.is_closed() {
            return Ok(None);
        }
        self.wait_closed_quiet();
        // No sender can wait for the room this frees: sends fail once closed.
        self.queue.pop().map(Some).ok_or(())
    }

    /// Waits until the close that began has finished and no send is in flight; after
    /// that no value can enter the queue (invariant 4). Bounded by the closer's scan
    /// and by the senders' pushes, which are lock-free; it waits only if one of them
    /// is suspended midway.
    fn wait_closed_quiet(&self) {
        let backoff = Backoff::new();
        // Ordering: Acquire pairs with the Release `fetch_or(CLOSED)` in `close`, so
        // the stripe loads below see the closer's touches or later values.
        while self.state.load(Ordering::Acquire) & CLOSED == 0 {
            snooze(&backoff);
        }
        for count in self.send_stripes.iter() {
            // Ordering: Acquire pairs with the Release decrement in `try_send`, so the
            // push of a send counted here is visible to the pop that follows.
            while count.load(Ordering::Acquire) != 0 {
                snooze(&backoff);
            }
        }
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

    /// Closes the channel; true if this call closed it. Returns once the close is
    /// complete (`CLOSED` set), also for a losing caller.
    pub(super) fn close(&self) -> bool {
        // Ordering: AcqRel; Release pairs with the Acquire loads of `state` that report
        // the channel closed (Go's "close happens before a receive that returns
        // because the channel is closed").
        let prev = self.state.fetch_or(CLOSING, Ordering::AcqRel);
        if prev & CLOSING != 0 {
            let backoff = Backoff::new();
            // Ordering: Acquire pairs with the winner's Release `fetch_or(CLOSED)`.
            while self.state.load(Ordering::Acquire) & CLOSED == 0 {
                snooze(&backoff);
            }
            return false;
        }
        for count in self.send_stripes.iter() {
            // Invariant 3: the touch. Ordering: AcqRel; as a read-modify-write it is
            // ordered with every sender's increment of this stripe: an increment
            // before it is counted in what later readers see, an increment after it
            // acquires it (Release half) and so sees `CLOSING`. It also orders this
            // close with receivers about to sleep (invariant 5, as a waker).
            count.fetch_add(0, Ordering::AcqRel);
        }
        for stripe in self.recv_stripes.iter() {
            // Ordering: AcqRel; orders this close with senders about to sleep, which
            // touch these stripes (invariant 5, as a waker).
            stripe.fetch_add(0, Ordering::AcqRel);
        }
        // Ordering: Release pairs with the Acquire loads in `wait_closed_quiet`, so a
        // receiver that sees `CLOSED` sees every touch above.
        self.state.fetch_or(CLOSED, Ordering::Release);
        // Close is a broadcast (invariant 6).
        self.senders.notify_all();
        self.receivers.notify_all();
        true
    }

    /// The last receiver went: close, wait until no send is in flight, and drop what
    /// is queued.
    pub(super) fn disconnect_receivers(&self) {
        self.close();
        self.wait_closed_quiet();
        while self.queue.pop().is_some() {}
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

/// A busy wait's step: `Backoff::snooze` in std builds, a yield under the checkers.
#[inline]
pub(super) fn snooze(backoff: &Backoff) {
    #[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
    backoff.snooze();
    #[cfg(any(atomkit_loom, atomkit_shuttle))]
    {
        let _ = backoff;
        crate::sync::spin_loop();
    }
}
