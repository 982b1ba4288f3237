//! Go's buffered channel for threads: a bounded MPMC channel with close-as-broadcast,
//! timeouts and [`Signal`] cancellation, built on the lock-free
//! [`ArrayQueue`](crate::queue::ArrayQueue).
//!
//! [`bounded(cap)`](bounded) returns a [`Sender`] and a [`Receiver`]; both are
//! `Clone` (any number of producers and consumers) and `Send + Sync`.
//!
//! ```
//! use atomkit::channel::bounded;
//! use std::thread;
//!
//! let (tx, rx) = bounded(16);
//! let producers: Vec<_> = (0..4u64)
//!     .map(|p| {
//!         let tx = tx.clone();
//!         thread::spawn(move || {
//!             for i in 0..100 {
//!                 tx.send(p * 1000 + i).unwrap();
//!             }
//!         })
//!     })
//!     .collect();
//! drop(tx); // the channel closes when the last sender goes
//! let consumer = thread::spawn(move || rx.iter().count());
//! for p in producers {
//!     p.join().unwrap();
//! }
//! assert_eq!(consumer.join().unwrap(), 400);
//! ```
//!
//! # Semantics (Go's, with values handed back)
//!
//! - **Blocking.** [`send`](Sender::send) waits while the channel is full,
//!   [`recv`](Receiver::recv) while it is empty. Each has a non-blocking form
//!   (`try_*`), a timed form (`*_timeout`, `*_deadline`; a deadline already past
//!   tries once and returns at once) and a form that gives up when a [`Signal`]
//!   closes (`*_until`, Go's `select` with `<-ctx.Done()`).
//! - **Close** ([`Sender::close`] or [`Receiver::close`], idempotent; the call that
//!   closed it gets `true`): sends fail at once and hand the value back; receivers
//!   still get every value sent before, then [`RecvError`] / `Closed`; every blocked
//!   sender and receiver wakes (close is a broadcast). Dropping the last `Sender`
//!   closes the channel; dropping the last `Receiver` closes it and drops the values
//!   still queued. A `send` that returned `Ok` is received unless every receiver is
//!   dropped: it is never lost to a racing close.
//! - **Errors hand the value back**: [`SendError`], [`TrySendError`],
//!   [`SendTimeoutError`] and [`SendUntilError`] carry it, with `into_inner`.
//! - **Capacity** is a `usize` ([`Sender::capacity`]): this module has bounded
//!   channels only, so there is no "unbounded" case to express with an `Option`.
//!   `len`, `is_empty` and `is_full` are snapshots, as for
//!   [`ArrayQueue`](crate::queue::ArrayQueue).
//! - **Rendezvous**: `bounded(0)` is Go's unbuffered channel: a send completes only
//!   when a receiver has taken the value; `try_send` succeeds only if a receiver is
//!   blocked in a receive, `try_recv` only if a sender is blocked in a send. A send
//!   that times out or is cancelled gets its value back whole, never half-delivered.
//!
//! # Cancellation latency
//!
//! A `*_until` call that sleeps waits on two futex words at once, its side's and the
//! signal's (`futex_waitv` on Linux 5.16+, on x86-64, AArch64 and RISC-V 64), so
//! closing the signal wakes it directly; it also wakes exactly at the signal's
//! deadline, if it has one. Where that call is not used (other platforms and
//! architectures, Android, older kernels, Miri) it sleeps in 1 ms slices and looks at
//! the signal between them: a cancel is then seen within about 1 ms. Nothing polls while
//! the call spins (its first few microseconds), nor in plain and timed calls.
//!
//! # Implementation
//!
//! ## Buffered (`cap > 0`)
//!
//! Values travel through an [`ArrayQueue`](crate::queue::ArrayQueue) (SCQ, lock-free),
//! which also holds the closed flag: the top bit of the `tail` of its ring of full
//! slots (the queue's invariant 8). Beside it the channel keeps:
//!
//! | field      | what | written by |
//! |------------|------|------------|
//! | `send_stripes` | 8 cache-padded words that stay 0 (2 under the model checkers); each `Sender` handle picks one when made | senders (`+0` after each successful push); touched by `close` and by receivers about to sleep |
//! | `recv_stripes` | 8 cache-padded words that stay 0; each `Receiver` handle picks one | receivers (`+0` after each pop); touched by `close` and by senders about to sleep |
//! | `senders`, `receivers` | a sleeping place per side: `epoch`, the futex word, bumped by every wake; `sleepers`, threads registered to sleep there | wakers bump `epoch`; sleepers count themselves |
//!
//! Invariants:
//!
//! 1. Every value pushed is popped exactly once: by a receiver, by the last
//!    receiver's drop, or by the queue's own drop when the last handle goes.
//! 2. `close` is one `fetch_or` of the closed bit on the ring's `tail`. A send
//!    succeeds only if the fetch-and-add that gave its value a position came before
//!    it in `tail`'s modification order; every later one fails, and the send takes
//!    its value back and returns its slot. So a send and a close are ordered by one
//!    read-modify-write word, as in crossbeam-channel (whose senders CAS the tail
//!    that its disconnect marks): no send can succeed after a close that it did not
//!    precede, whatever the receivers do meanwhile. (An earlier design kept the flag
//!    beside the queue and counted sends in flight; a send could then read the flag
//!    open before a close, and push after a receive that followed the close, into a
//!    channel full until then. The loom model
//!    `send_into_full_channel_racing_close_then_recv_fails` reproduces that
//!    history.)
//! 3. A receiver reports "closed" only after a pop found nothing, it saw the closed
//!    bit, and a closed-queue pop (`pop_closed`) found `head` at or past `tail`:
//!    every position handed to a sender has been handed to a receiver, which returns
//!    its value or voids it, and a sender whose position is voided fails. So close is
//!    linearizable against sends and receives, a send that returned `Ok` is never
//!    stranded, and no receiver waits for a sender: one suspended in the middle of
//!    its push has its position voided and fails when it resumes.
//! 4. The last receiver's drop closes and then pops with `pop_closed` until it
//!    reports nothing left: by 3 no value can enter after that.
//! 5. **No lost wake-up.** This is a store-load (Dekker) pairing: "I am about to
//!    sleep, then I look at the queue" against "I changed the queue, then I look for
//!    sleepers". It goes through read-modify-writes of the stripes instead of
//!    standalone fences. A thread goes to sleep only as: count itself in its side's
//!    `sleepers`, read `epoch`, touch every stripe of the other side (`fetch_add(0)`,
//!    AcqRel), try its operation again, then futex-wait while `epoch` still holds
//!    what it read. A thread that changed the queue read-modify-writes its own
//!    stripe with AcqRel right after (`fetch_add(0)`), then reads the other side's
//!    `sleepers`, and only if that is non-zero bumps `epoch` and wakes. The waker's
//!    and the sleeper's
//!    read-modify-writes of that stripe are totally ordered: if the waker's comes
//!    first, the sleeper's touch acquires it and its retry sees the change; if the
//!    touch comes first, the waker's read-modify-write acquires it and sees the
//!    sleeper counted, and then it bumps `epoch` (so the futex compare fails) or
//!    wakes the sleeper. `close` is a waker of both sides: it touches every stripe
//!    after setting the closed bit and before reading `sleepers`. With nobody
//!    counted, a send or receive costs no write and no syscall beyond the queue operation and
//!    its own stripe, which stays in its own cache line; no SeqCst fence is needed
//!    anywhere, which is cheaper than a fence on every send and receive (measured:
//!    the uncontended pair went from 1.28x to 1.13x the queue's push+pop) and is
//!    understood by ThreadSanitizer as it is. The sleepers pay: one
//!    read-modify-write per stripe before they sleep, next to a futex call.
//!
//!    On x86-64 the touches are not executed at all: LLVM lowers a read-modify-write
//!    that leaves its word unchanged, is weaker than SeqCst and whose result is
//!    unused to a compiler barrier (llvm/llvm-project#101551), which is not what the
//!    argument above needs. The pairing holds there all the same, because the last
//!    write each side makes before its touch is itself a `lock`-prefixed
//!    read-modify-write, a full barrier on x86: the sleeper's `sleepers` increment,
//!    and the waker's entry CAS in the queue (the push's in `aq`, the pop's return
//!    of the slot to `fq`) or close's `fetch_or`. So a change there must keep a
//!    read-modify-write as that last write: a plain store would leave the pairing
//!    to touches that x86 never runs, and no model would notice (loom runs the
//!    touches).
//! 6. A push or pop wakes one sleeper of the other side (it made room for, or
//!    brought, one value); close wakes all of both sides.
//! 7. A woken thread always retries its operation before it looks at its deadline
//!    or signal, so a wake is never swallowed by a thread that then gives up: it
//!    either uses the value or room it was woken for, or someone else did.
//!
//! Before registering, a blocked call spins with `crossbeam_utils::Backoff` (spin,
//! then yield) and then yields 16 more times (receivers 64: see `RECV_EXTRA_YIELDS`
//! in `array.rs`), retrying between steps: a registered
//! sleeper costs every push (or pop) on the other side a futex wake until it runs
//! again, so on a busy machine a few more yields pay for themselves. (A variant that
//! counted wakes in flight, to skip wakes already on their way, lost a wake-up by
//! ABA on the futex word in the loom model `two_receivers_two_sends`, and was
//! dropped.)
//!
//! The queue's capacity-1 window (module doc of [`queue`](crate::queue), "What is
//! *not* promised": a `push` that took the only slot makes a `pop` see "empty" and
//! another `push` see "full" at once) is harmless here: a receiver that sleeps on
//! such an "empty" is woken by that push when it completes (5), and a sender that
//! sleeps on such a "full" is woken by the pop in progress when it returns the slot.
//! The loom model `cap1_full_and_empty_at_once` exercises it.
//!
//! ## Rendezvous (`cap == 0`)
//!
//! A rendezvous has no buffer to make lock-free: every transfer matches one sender
//! with one receiver, and a sender that times out must take its value back exactly
//! when no receiver has taken it. That match-or-withdraw decision is made under a
//! small mutex, as Go's runtime does under `hchan.lock` (and crossbeam-channel's zero
//! flavor under its own lock): blocked senders queue with their values, blocked
//! receivers queue empty-handed; an arriving receiver takes the oldest sender's
//! value, an arriving sender hands its value to the oldest receiver. Each blocked
//! thread sleeps on its own word (set under the lock, woken after unlocking), so a
//! hand-off wakes exactly its partner. Every hand-off costs a sleep and a wake of
//! one side anyway, next to which the uncontended lock is cheap.
//!
//! ## Memory orderings
//!
//! - The queue orders a value's write before its read (its invariant 4).
//! - The closed bit: the queue's `fetch_or` is AcqRel, its Release half pairing with
//!   every Acquire load that reports "closed" (Go: a close happens before a receive
//!   that returns because of it); as a read-modify-write of `tail` it is ordered with
//!   every send's fetch-and-add there (invariant 2). `close`'s touches are AcqRel
//!   (invariant 5).
//! - Sleep/wake (invariant 5): the stripe read-modify-writes on both sides are
//!   AcqRel, each pairing with the other in whichever order they fall; `sleepers`
//!   itself is Relaxed. The wake bumps `epoch` with Release and the sleeper reads it
//!   with Acquire, so a sleeper that reads an epoch already bumped also sees the
//!   change behind it. No standalone fence is used, so the ThreadSanitizer build
//!   (`--cfg atomkit_tsan`) needs no special case.
//! - Rendezvous: the mutex orders everything; the per-waiter words are Release /
//!   Acquire only to end the wait.

mod array;
mod error;
mod side;
mod zero;

pub use error::{
    RecvError, RecvTimeoutError, RecvUntilError, SendError, SendTimeoutError, SendUntilError,
    TryRecvError, TrySendError,
};

use crate::signal::{Cause, Signal};
use crate::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use crate::sync::time::{self, Duration, Instant};
use crate::sync::Arc;
use crate::wait;
use core::fmt;

/// Why a try operation was refused (the value, if any, travels beside it).
enum Refused {
    Full,
    Closed,
}

/// Why a blocking operation gave up.
enum Fail {
    Closed,
    Timeout,
    Cancelled(Cause),
}

/// When a blocking call gives up: a deadline, a signal, both or neither.
#[derive(Clone, Copy)]
struct Until<'a> {
    deadline: Option<Instant>,
    signal: Option<&'a Signal>,
}

impl<'a> Until<'a> {
    const NEVER: Until<'static> = Until {
        deadline: None,
        signal: None,
    };

    fn deadline(deadline: Option<Instant>) -> Self {
        Until {
            deadline,
            signal: None,
        }
    }

    fn signal(signal: &'a Signal) -> Self {
        Until {
            deadline: None,
            signal: Some(signal),
        }
    }

    /// Whether to give up now, and why. The signal wins over the deadline.
    #[inline]
    fn expired(&self) -> Option<Fail> {
        if let Some(cause) = self.signal.and_then(Signal::cause) {
            return Some(Fail::Cancelled(cause));
        }
        match self.deadline {
            Some(d) if time::now() >= d => Some(Fail::Timeout),
            _ => None,
        }
    }

    /// Whether a wait can end other than by the awaited event: a deadline or a signal.
    fn is_bounded(&self) -> bool {
        self.deadline.is_some() || self.signal.is_some()
    }

    /// Sleeps while `word` holds `expected` (a futex wait, so spurious returns
    /// happen), at most until the deadline, the signal's own deadline, or the
    /// signal's close, which wakes the sleep directly (see [`wait::wait_either`]).
    fn sleep(&self, word: &AtomicU32, expected: u32) {
        match self.signal {
            None => wait::wait_maybe_until(word, expected, self.deadline),
            Some(s) => {
                if let Some((sword, sval)) = s.arm() {
                    let at = earliest(self.deadline, s.deadline());
                    wait::wait_either(word, expected, sword, sval, at);
                }
                // Closed: return at once; the caller's loop reports it.
            }
        }
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

// The flavor lives once, inside the shared `Arc`; boxing the big variant would only
// add a pointer chase to every operation.
#[allow(clippy::large_enum_variant)]
enum Flavor<T> {
    Array(array::Channel<T>),
    Zero(zero::Channel<T>),
}

/// What the handles share.
struct Chan<T> {
    flavor: Flavor<T>,
    /// Live `Sender` handles; the last one to go closes the channel.
    senders: AtomicUsize,
    /// Live `Receiver` handles; the last one to go closes and drains the channel.
    receivers: AtomicUsize,
    /// Hands out stripes to new handles of either side, round-robin.
    next_stripe: AtomicUsize,
}

impl<T> Chan<T> {
    fn close(&self) -> bool {
        match &self.flavor {
            Flavor::Array(c) => c.close(),
            Flavor::Zero(c) => c.close(),
        }
    }

    fn is_closed(&self) -> bool {
        match &self.flavor {
            Flavor::Array(c) => c.is_closed(),
            Flavor::Zero(c) => c.is_closed(),
        }
    }

    fn len(&self) -> usize {
        match &self.flavor {
            Flavor::Array(c) => c.len(),
            Flavor::Zero(_) => 0,
        }
    }

    fn capacity(&self) -> usize {
        match &self.flavor {
            Flavor::Array(c) => c.capacity(),
            Flavor::Zero(_) => 0,
        }
    }

    fn is_empty(&self) -> bool {
        match &self.flavor {
            Flavor::Array(c) => c.is_empty(),
            Flavor::Zero(_) => true,
        }
    }

    fn is_full(&self) -> bool {
        match &self.flavor {
            Flavor::Array(c) => c.is_full(),
            Flavor::Zero(_) => true,
        }
    }

    fn new_stripe(&self) -> usize {
        // Ordering: Relaxed; any stripe is correct, this only spreads handles out.
        self.next_stripe.fetch_add(1, Ordering::Relaxed) % array::STRIPES
    }
}

/// Creates a channel that holds at most `cap` values; `cap == 0` makes a rendezvous
/// channel (Go's unbuffered channel): see the [module documentation](self).
///
/// # Panics
///
/// With "channel capacity overflow" if `cap` exceeds
/// [`queue::MAX_CAPACITY`](crate::queue::MAX_CAPACITY) (2^31 on 64-bit targets, 2^26
/// on 32-bit ones).
///
/// # Examples
///
/// ```
/// let (tx, rx) = atomkit::channel::bounded(2);
/// tx.send("a").unwrap();
/// tx.send("b").unwrap();
/// assert!(tx.is_full());
/// assert_eq!(rx.recv(), Ok("a"));
/// assert_eq!(tx.capacity(), 2);
/// ```
pub fn bounded<T>(cap: usize) -> (Sender<T>, Receiver<T>) {
    assert!(
        cap <= crate::queue::MAX_CAPACITY,
        "channel capacity overflow: {cap} exceeds the maximum of {}",
        crate::queue::MAX_CAPACITY
    );
    let flavor = if cap == 0 {
        Flavor::Zero(zero::Channel::new())
    } else {
        Flavor::Array(array::Channel::new(cap))
    };
    let chan = Arc::new(Chan {
        flavor,
        senders: AtomicUsize::new(1),
        receivers: AtomicUsize::new(1),
        next_stripe: AtomicUsize::new(1),
    });
    (
        Sender {
            chan: chan.clone(),
            stripe: 0,
        },
        Receiver { chan, stripe: 0 },
    )
}

/// The methods [`Sender`] and [`Receiver`] share, documented with examples on either
/// handle: `$h` names the handle in the examples (`tx` or `rx`), `$other` the other one.
macro_rules! shared_methods {
    ($Handle:ident, $h:literal, $other:literal, $verb:literal) => {
        impl<T> $Handle<T> {
            /// Closes the channel (see the [module documentation](self)) from this side;
            /// returns `true` if this call closed it, `false` if it was closed already.
            /// Values already queued can still be received, then receives fail.
            ///
            /// # Examples
            ///
            /// ```
            /// let (tx, rx) = atomkit::channel::bounded(2);
            /// tx.send(1).unwrap();
            #[doc = concat!("assert!(", $h, ".close());")]
            #[doc = concat!("assert!(!", $other, ".close());")]
            /// assert!(tx.send(2).is_err());
            /// assert_eq!(rx.recv(), Ok(1)); // drained first
            /// assert!(rx.recv().is_err()); // then closed
            /// ```
            pub fn close(&self) -> bool {
                self.chan.close()
            }

            /// Whether the channel is closed (values may still be queued).
            ///
            /// # Examples
            ///
            /// ```
            /// let (tx, rx) = atomkit::channel::bounded::<i32>(1);
            #[doc = concat!("assert!(!", $h, ".is_closed());")]
            #[doc = concat!("drop(", $other, ");")]
            #[doc = concat!("assert!(", $h, ".is_closed());")]
            /// ```
            pub fn is_closed(&self) -> bool {
                self.chan.is_closed()
            }

            /// The number of values queued (a snapshot; always 0 for a rendezvous
            /// channel).
            ///
            /// # Examples
            ///
            /// ```
            /// let (tx, rx) = atomkit::channel::bounded(4);
            /// tx.send(()).unwrap();
            #[doc = concat!("assert_eq!(", $h, ".len(), 1);")]
            /// ```
            pub fn len(&self) -> usize {
                self.chan.len()
            }

            /// The channel's capacity: the `cap` it was made with (0 for rendezvous).
            ///
            /// # Examples
            ///
            /// ```
            /// let (tx, rx) = atomkit::channel::bounded::<u8>(8);
            #[doc = concat!("assert_eq!(", $h, ".capacity(), 8);")]
            /// ```
            pub fn capacity(&self) -> usize {
                self.chan.capacity()
            }

            /// Whether no value is queued (a snapshot; always true for rendezvous).
            ///
            /// # Examples
            ///
            /// ```
            /// let (tx, rx) = atomkit::channel::bounded::<u8>(1);
            #[doc = concat!("assert!(", $h, ".is_empty());")]
            /// ```
            pub fn is_empty(&self) -> bool {
                self.chan.is_empty()
            }

            /// Whether the channel is full (a snapshot; always true for rendezvous).
            ///
            /// # Examples
            ///
            /// ```
            /// let (tx, rx) = atomkit::channel::bounded(1);
            /// tx.send(0).unwrap();
            #[doc = concat!("assert!(", $h, ".is_full());")]
            /// ```
            pub fn is_full(&self) -> bool {
                self.chan.is_full()
            }

            #[doc = concat!("Whether `self` and `other` ", $verb, " the same channel.")]
            ///
            /// # Examples
            ///
            /// ```
            /// let (tx, rx) = atomkit::channel::bounded::<u8>(1);
            /// let (otx, orx) = atomkit::channel::bounded::<u8>(1);
            #[doc = concat!("assert!(", $h, ".same_channel(&", $h, ".clone()));")]
            #[doc = concat!("assert!(!", $h, ".same_channel(&o", $h, "));")]
            /// ```
            pub fn same_channel(&self, other: &$Handle<T>) -> bool {
                Arc::ptr_eq(&self.chan, &other.chan)
            }
        }
    };
}

/// The sending half of a channel. Clone it for more producers.
///
/// # Examples
///
/// ```
/// use atomkit::channel::bounded;
///
/// let (tx, rx) = bounded(4);
/// let tx2 = tx.clone();
/// tx.send(1).unwrap();
/// tx2.send(2).unwrap();
/// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
/// ```
pub struct Sender<T> {
    chan: Arc<Chan<T>>,
    /// This handle's wake-check stripe (buffered flavor).
    stripe: usize,
}

// SAFETY: a `Sender` only moves `T`s into the channel; the channel hands each value to
// exactly one receiver and never shares a `&T` between threads, so `T: Send` suffices
// (as for `std::sync::mpsc::SyncSender`).
unsafe impl<T: Send> Send for Sender<T> {}
// SAFETY: as above: through `&Sender` a thread can only move values in.
unsafe impl<T: Send> Sync for Sender<T> {}

impl<T> Sender<T> {
    /// Sends `value`, waiting while the channel is full (on a rendezvous channel:
    /// until a receiver has taken it).
    ///
    /// # Errors
    ///
    /// [`SendError`] with the value if the channel is closed (before or while
    /// waiting).
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = atomkit::channel::bounded(1);
    /// let t = std::thread::spawn(move || {
    ///     tx.send(1).unwrap();
    ///     tx.send(2).unwrap(); // waits until the 1 is received
    /// });
    /// assert_eq!(rx.recv(), Ok(1));
    /// assert_eq!(rx.recv(), Ok(2));
    /// t.join().unwrap();
    /// ```
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.send_inner(value, Until::NEVER)
            .map_err(|(v, _)| SendError(v))
    }

    /// Sends `value` if there is room now (on a rendezvous channel: if a receiver is
    /// blocked waiting); never blocks.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`] or [`TrySendError::Closed`], with the value.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::channel::{bounded, TrySendError};
    ///
    /// let (tx, _rx) = bounded(1);
    /// assert_eq!(tx.try_send(1), Ok(()));
    /// assert_eq!(tx.try_send(2), Err(TrySendError::Full(2)));
    /// ```
    #[inline]
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let r = match &self.chan.flavor {
            Flavor::Array(c) => c.try_send(value, self.stripe),
            Flavor::Zero(c) => c.try_send(value),
        };
        r.map_err(|(v, why)| match why {
            Refused::Full => TrySendError::Full(v),
            Refused::Closed => TrySendError::Closed(v),
        })
    }

    /// Sends `value`, waiting at most `timeout` for room (or, on a rendezvous
    /// channel, for a receiver to take it). A zero `timeout` tries once and returns
    /// at once; one too large to add to the current [`Instant`] (such as
    /// [`Duration::MAX`]) waits without limit, like [`send`](Self::send).
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`] or [`SendTimeoutError::Closed`], with the value.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::channel::{bounded, SendTimeoutError};
    /// use std::time::Duration;
    ///
    /// let (tx, _rx) = bounded(1);
    /// tx.send_timeout(1, Duration::from_millis(1)).unwrap();
    /// let err = tx.send_timeout(2, Duration::from_millis(1)).unwrap_err();
    /// assert_eq!(err, SendTimeoutError::Timeout(2));
    /// ```
    pub fn send_timeout(&self, value: T, timeout: Duration) -> Result<(), SendTimeoutError<T>> {
        self.timed(value, time::now().checked_add(timeout))
    }

    /// Sends `value`, waiting until `deadline` at most. A deadline already past
    /// tries once and returns at once.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`] or [`SendTimeoutError::Closed`], with the value.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::channel::{bounded, SendTimeoutError};
    /// use std::time::Instant;
    ///
    /// let (tx, _rx) = bounded(1);
    /// tx.send(1).unwrap();
    /// let err = tx.send_deadline(2, Instant::now()).unwrap_err();
    /// assert!(err.is_timeout());
    /// ```
    pub fn send_deadline(&self, value: T, deadline: Instant) -> Result<(), SendTimeoutError<T>> {
        self.timed(value, Some(deadline))
    }

    fn timed(&self, value: T, deadline: Option<Instant>) -> Result<(), SendTimeoutError<T>> {
        self.send_inner(value, Until::deadline(deadline))
            .map_err(|(v, why)| match why {
                Fail::Closed => SendTimeoutError::Closed(v),
                _ => SendTimeoutError::Timeout(v),
            })
    }

    /// Sends `value`, giving up when `signal` closes (or its deadline passes): Go's
    /// `select { case ch <- v: case <-ctx.Done(): }`. A signal already closed still
    /// lets a send that needs no waiting go through.
    ///
    /// While asleep the call is woken by the signal's close directly where the
    /// platform can wait on two words at once, and otherwise looks at the signal every
    /// millisecond (module doc, "Cancellation latency").
    ///
    /// # Errors
    ///
    /// [`SendUntilError::Cancelled`] with the value and the signal's cause, or
    /// [`SendUntilError::Closed`] with the value.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::channel::{bounded, SendUntilError};
    /// use atomkit::signal::{Cause, Signal};
    /// use std::time::Duration;
    ///
    /// let (tx, _rx) = bounded(1);
    /// tx.send(1).unwrap(); // now full
    /// let ctx = Signal::with_timeout(Duration::from_millis(5));
    /// let err = tx.send_until(2, &ctx).unwrap_err();
    /// assert_eq!(err, SendUntilError::Cancelled(2, Cause::DeadlineExceeded));
    /// ```
    pub fn send_until(&self, value: T, signal: &Signal) -> Result<(), SendUntilError<T>> {
        self.send_inner(value, Until::signal(signal))
            .map_err(|(v, why)| match why {
                Fail::Cancelled(c) => SendUntilError::Cancelled(v, c),
                _ => SendUntilError::Closed(v),
            })
    }

    fn send_inner(&self, value: T, until: Until<'_>) -> Result<(), (T, Fail)> {
        match &self.chan.flavor {
            Flavor::Array(c) => c.send(value, self.stripe, until),
            Flavor::Zero(c) => c.send(value, until),
        }
    }
}

shared_methods!(Sender, "tx", "rx", "send into");

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        // Ordering: Relaxed, as for `Arc::clone`: a new handle is made from a live
        // one, so the count cannot reach zero concurrently.
        self.chan.senders.fetch_add(1, Ordering::Relaxed);
        Sender {
            chan: self.chan.clone(),
            stripe: self.chan.new_stripe(),
        }
    }
}

impl<T> Drop for Sender<T> {
    /// Closes the channel if this is the last sender.
    fn drop(&mut self) {
        // Ordering: AcqRel, as for `Arc`'s drop: the last dropper sees every other
        // handle's last use before it closes.
        if self.chan.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.chan.close();
        }
    }
}

impl<T> fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

/// The receiving half of a channel. Clone it for more consumers; each value goes to
/// exactly one receiver.
///
/// # Examples
///
/// ```
/// use atomkit::channel::bounded;
///
/// let (tx, rx) = bounded(4);
/// tx.send(10).unwrap();
/// drop(tx);
/// assert_eq!(rx.recv(), Ok(10));
/// assert!(rx.recv().is_err()); // closed and drained
/// ```
pub struct Receiver<T> {
    chan: Arc<Chan<T>>,
    /// This handle's wake-check stripe (buffered flavor).
    stripe: usize,
}

// SAFETY: a `Receiver` only moves `T`s out of the channel, each to one thread; no `&T`
// is ever shared, so `T: Send` suffices.
unsafe impl<T: Send> Send for Receiver<T> {}
// SAFETY: as above: through `&Receiver` a thread can only move values out.
unsafe impl<T: Send> Sync for Receiver<T> {}

impl<T> Receiver<T> {
    /// Receives a value, waiting while the channel is empty.
    ///
    /// # Errors
    ///
    /// [`RecvError`] once the channel is closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = atomkit::channel::bounded(1);
    /// std::thread::spawn(move || tx.send(5).unwrap());
    /// assert_eq!(rx.recv(), Ok(5));
    /// ```
    pub fn recv(&self) -> Result<T, RecvError> {
        self.recv_inner(Until::NEVER).map_err(|_| RecvError)
    }

    /// Receives a value if one is there now (on a rendezvous channel: if a sender is
    /// blocked sending); never blocks. On a closed buffered channel it does not wait
    /// for a send in progress either: it makes that send fail unless its value is
    /// already in (module doc, invariant 3).
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`], or [`TryRecvError::Closed`] once closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::channel::{bounded, TryRecvError};
    ///
    /// let (tx, rx) = bounded(1);
    /// assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    /// tx.send(1).unwrap();
    /// assert_eq!(rx.try_recv(), Ok(1));
    /// ```
    #[inline]
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let r = match &self.chan.flavor {
            Flavor::Array(c) => c.try_recv(self.stripe),
            Flavor::Zero(c) => c.try_recv(),
        };
        match r {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(TryRecvError::Empty),
            Err(()) => Err(TryRecvError::Closed),
        }
    }

    /// Receives a value, waiting at most `timeout`. A zero `timeout` tries once and
    /// returns at once; one too large to add to the current [`Instant`] (such as
    /// [`Duration::MAX`]) waits without limit, like [`recv`](Self::recv).
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`], or [`RecvTimeoutError::Closed`] once closed and
    /// drained.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::channel::{bounded, RecvTimeoutError};
    /// use std::time::Duration;
    ///
    /// let (_tx, rx) = bounded::<u8>(1);
    /// assert_eq!(rx.recv_timeout(Duration::from_millis(1)), Err(RecvTimeoutError::Timeout));
    /// ```
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.timed(time::now().checked_add(timeout))
    }

    /// Receives a value, waiting until `deadline` at most. A deadline already past
    /// tries once and returns at once.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`], or [`RecvTimeoutError::Closed`] once closed and
    /// drained.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::channel::bounded;
    /// use std::time::Instant;
    ///
    /// let (tx, rx) = bounded(1);
    /// tx.send(3).unwrap();
    /// assert_eq!(rx.recv_deadline(Instant::now()), Ok(3)); // no wait needed
    /// assert!(rx.recv_deadline(Instant::now()).unwrap_err().is_timeout());
    /// ```
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.timed(Some(deadline))
    }

    fn timed(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        self.recv_inner(Until::deadline(deadline))
            .map_err(|why| match why {
                Fail::Closed => RecvTimeoutError::Closed,
                _ => RecvTimeoutError::Timeout,
            })
    }

    /// Receives a value, giving up when `signal` closes (or its deadline passes): Go's
    /// `select { case v := <-ch: case <-ctx.Done(): }`. A value already there is
    /// received even if the signal is closed.
    ///
    /// While asleep the call is woken by the signal's close directly where the
    /// platform can wait on two words at once, and otherwise looks at the signal every
    /// millisecond (module doc, "Cancellation latency").
    ///
    /// # Errors
    ///
    /// [`RecvUntilError::Cancelled`] with the signal's cause, or
    /// [`RecvUntilError::Closed`] once closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::channel::{bounded, RecvUntilError};
    /// use atomkit::signal::{Cause, Signal};
    ///
    /// let (_tx, rx) = bounded::<u8>(1);
    /// let stop = Signal::new();
    /// let s = stop.clone();
    /// let t = std::thread::spawn(move || rx.recv_until(&s));
    /// stop.close();
    /// assert_eq!(t.join().unwrap(), Err(RecvUntilError::Cancelled(Cause::Closed)));
    /// ```
    pub fn recv_until(&self, signal: &Signal) -> Result<T, RecvUntilError> {
        self.recv_inner(Until::signal(signal))
            .map_err(|why| match why {
                Fail::Cancelled(c) => RecvUntilError::Cancelled(c),
                _ => RecvUntilError::Closed,
            })
    }

    fn recv_inner(&self, until: Until<'_>) -> Result<T, Fail> {
        match &self.chan.flavor {
            Flavor::Array(c) => c.recv(self.stripe, until),
            Flavor::Zero(c) => c.recv(until),
        }
    }

    /// A blocking iterator: yields values until the channel is closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = atomkit::channel::bounded(4);
    /// std::thread::spawn(move || {
    ///     for i in 0..3 {
    ///         tx.send(i).unwrap();
    ///     }
    /// }); // tx drops: closed
    /// assert_eq!(rx.iter().collect::<Vec<_>>(), [0, 1, 2]);
    /// ```
    pub fn iter(&self) -> Iter<'_, T> {
        Iter { rx: self }
    }

    /// A non-blocking iterator: yields the values there now, stops at the first
    /// empty (or closed) answer.
    ///
    /// # Examples
    ///
    /// ```
    /// let (tx, rx) = atomkit::channel::bounded(4);
    /// tx.send(1).unwrap();
    /// tx.send(2).unwrap();
    /// assert_eq!(rx.try_iter().collect::<Vec<_>>(), [1, 2]);
    /// assert_eq!(rx.try_iter().next(), None); // empty, still open
    /// ```
    pub fn try_iter(&self) -> TryIter<'_, T> {
        TryIter { rx: self }
    }
}

shared_methods!(Receiver, "rx", "tx", "receive from");

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        // Ordering: Relaxed, as for `Arc::clone` (see `Sender::clone`).
        self.chan.receivers.fetch_add(1, Ordering::Relaxed);
        Receiver {
            chan: self.chan.clone(),
            stripe: self.chan.new_stripe(),
        }
    }
}

impl<T> Drop for Receiver<T> {
    /// Closes the channel and drops the queued values if this is the last receiver.
    fn drop(&mut self) {
        // Ordering: AcqRel, as in `Sender::drop`.
        if self.chan.receivers.fetch_sub(1, Ordering::AcqRel) == 1 {
            match &self.chan.flavor {
                Flavor::Array(c) => c.disconnect_receivers(),
                Flavor::Zero(c) => {
                    c.close();
                }
            }
        }
    }
}

impl<T> fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Receiver")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

/// A blocking iterator over a [`Receiver`]'s values: see [`Receiver::iter`].
///
/// # Examples
///
/// ```
/// let (tx, rx) = atomkit::channel::bounded(2);
/// tx.send(1).unwrap();
/// drop(tx);
/// let mut it = rx.iter();
/// assert_eq!(it.next(), Some(1));
/// assert_eq!(it.next(), None);
/// ```
pub struct Iter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for Iter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> core::iter::FusedIterator for Iter<'_, T> {}

impl<T> fmt::Debug for Iter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}

/// A non-blocking iterator over the values a [`Receiver`] has now: see
/// [`Receiver::try_iter`].
///
/// # Examples
///
/// ```
/// let (tx, rx) = atomkit::channel::bounded(2);
/// tx.send(1).unwrap();
/// assert_eq!(rx.try_iter().sum::<i32>(), 1);
/// ```
pub struct TryIter<'a, T> {
    rx: &'a Receiver<T>,
}

impl<T> Iterator for TryIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.try_recv().ok()
    }
}

impl<T> fmt::Debug for TryIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryIter").finish_non_exhaustive()
    }
}

/// An owning blocking iterator over a [`Receiver`]'s values: see
/// [`Receiver::into_iter`](struct.Receiver.html#impl-IntoIterator-for-Receiver<T>).
///
/// # Examples
///
/// ```
/// let (tx, rx) = atomkit::channel::bounded(2);
/// tx.send('x').unwrap();
/// drop(tx);
/// assert_eq!(rx.into_iter().collect::<String>(), "x");
/// ```
pub struct IntoIter<T> {
    rx: Receiver<T>,
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.rx.recv().ok()
    }
}

impl<T> core::iter::FusedIterator for IntoIter<T> {}

impl<T> fmt::Debug for IntoIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter").finish_non_exhaustive()
    }
}

impl<'a, T> IntoIterator for &'a Receiver<T> {
    type Item = T;
    type IntoIter = Iter<'a, T>;

    /// Same as [`Receiver::iter`].
    fn into_iter(self) -> Iter<'a, T> {
        self.iter()
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    /// Receives until the channel is closed and drained, owning the receiver.
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { rx: self }
    }
}
