//! A counting semaphore for threads: lock-free when uncontended, sleeping on a futex
//! when not, with timeouts, [`Signal`] cancellation, weighted acquires, and a bound
//! on how long a large request can be starved by small ones.
//!
//! A [`Semaphore`] holds a number of permits. [`acquire`](Semaphore::acquire) takes
//! one (sleeping while there are none) and returns a [`Permit`] that gives it back
//! when dropped; [`acquire_many`](Semaphore::acquire_many) takes several at once.
//! Go code limits concurrency with `make(chan struct{}, n)` or
//! `golang.org/x/sync/semaphore`; this is that, for Rust threads.
//!
//! ```
//! use atomkit::semaphore::Semaphore;
//! use std::sync::atomic::{AtomicUsize, Ordering};
//! use std::sync::Arc;
//! use std::thread;
//!
//! // At most 2 of the 8 workers run the guarded section at once.
//! let sem = Arc::new(Semaphore::new(2));
//! let inside = Arc::new(AtomicUsize::new(0));
//! let workers: Vec<_> = (0..8)
//!     .map(|_| {
//!         let (sem, inside) = (sem.clone(), inside.clone());
//!         thread::spawn(move || {
//!             let _permit = sem.acquire().unwrap();
//!             assert!(inside.fetch_add(1, Ordering::SeqCst) < 2);
//!             inside.fetch_sub(1, Ordering::SeqCst);
//!         }) // `_permit` drops here and releases
//!     })
//!     .collect();
//! for w in workers {
//!     w.join().unwrap();
//! }
//! assert_eq!(sem.available_permits(), 2);
//! ```
//!
//! # Fairness: the hungry bit
//!
//! Permits are not handed out in strict arrival order: a thread that finds a permit
//! free takes it at once, even while others sleep ("barging"), which keeps the
//! uncontended path at one atomic read-modify-write and keeps throughput high under
//! contention. Left alone, barging could starve a waiter forever, most of all an
//! [`acquire_many(n)`](Semaphore::acquire_many) that needs `n` permits free at the
//! same moment while a stream of `acquire()` callers keeps taking them one by one.
//!
//! So a waiter that has been waiting for longer than 1 ms (and has been woken at
//! least once without getting its permits; where a `Signal`-cancellable wait polls
//! rather than waits on two words at once, wherever `futex_waitv` is not used (see
//! [Cancellation](#cancellation)), each 1 ms poll counts as a wake-up) turns
//! **hungry**: it sets a bit in the state word, and from then on every other
//! acquirer, the lock-free fast path and
//! [`try_acquire`](Semaphore::try_acquire) included, treats the semaphore as empty.
//! Released permits pile up until the hungry waiter's request fits; it takes them
//! and clears the bit. At most one waiter is hungry at a time. The bound: once
//! hungry, a waiter waits at most however long the current holders keep the permits
//! it needs. Turning hungry is a race among the waiters that qualify, though: each
//! time the bit clears, another long waiter may win it first, so a big
//! `acquire_many` behind a stream of long-waiting `acquire()` callers takes turns
//! with them rather than going next. (The 512th and later concurrent waiters,
//! beyond the state word's waiter count, never turn hungry.)
//! The price is paid only under starvation: while nobody is hungry the fast path
//! is untouched. As with any fair semaphore, a request for more permits than will
//! ever be free blocks the others once it turns hungry; give it a timeout.
//!
//! # Cancellation
//!
//! [`acquire_until`](Semaphore::acquire_until) gives up when a [`Signal`] closes (or
//! its deadline passes) and returns [`AcquireUntilError::Cancelled`] with the cause.
//! A waiter with a signal sleeps on two futex words at once, the semaphore's and
//! the signal's (`futex_waitv` on Linux 5.16+, on x86-64, AArch64 and RISC-V 64), so
//! the signal's close wakes it directly; it also wakes at the signal's own deadline,
//! if it has one. Where that call is not used (other platforms and architectures,
//! Android, older kernels, Miri) it sleeps in slices of 1 ms and looks at the signal
//! between them, so cancellation is seen within about a millisecond there.
//!
//! # Implementation
//!
//! One `AtomicU32` is the whole semaphore. It is both the state and the futex word
//! the waiters sleep on (the `wait` layer (`src/wait`)), so every decision a thread
//! makes comes from the same read-modify-write that changes the state:
//!
//! | bits   | name       | written by | meaning |
//! |--------|------------|------------|---------|
//! | 0      | `CLOSED`   | `close` (`fetch_or`) | closed for good; acquires fail |
//! | 1      | `HUNGRY`   | one starving waiter sets it, and clears it when it leaves | everyone else sees no permits |
//! | 2      | `WEIGHTED` | a waiter for more than one permit; cleared when the waiter count drops to 0 | a single wake might reach a waiter that cannot use it |
//! | 3..12  | waiters    | waiters, +1 before sleeping, -1 when they leave (9 bits, up to 511) | how many threads may be asleep on the word |
//! | 12..32 | permits    | acquirers (-n), releases and `add_permits` (+n), `forget_permits` | available permits, at most [`MAX_PERMITS`](Semaphore::MAX_PERMITS) = 2^20 - 1 |
//!
//! The design is the futex semaphore of Drepper's "Futexes Are Tricky" (2011, §§ 6-7)
//! and of glibc's 2016 `sem_post`, which learns whether to wake from the same atomic
//! add that publishes the permit, with the waiter count packed next to the value.
//!
//! Invariants:
//!
//! 1. Permits only move by compare-and-swap on the word: an acquirer takes `n` only
//!    if at least `n` are there and (`HUNGRY` is clear or it is the hungry waiter);
//!    so the count never goes negative and available + held never changes except
//!    through `add_permits` / `forget_permits` / [`Permit::forget`].
//! 2. A thread sleeps on the word only after counting itself in `waiters`, and only
//!    while the word still holds the value it decided on (the futex compares). So
//!    every wake reaches a counted waiter, which passes it on if it cannot use it
//!    (3). Any change to
//!    the permits, `HUNGRY` or `CLOSED` changes the word, so a sleeper never sleeps
//!    through a change it has not seen.
//! 3. Whoever changes the word in a way that may let a sleeper proceed wakes,
//!    deciding from the value its own read-modify-write returned: a release with
//!    waiters wakes one when it adds a single permit and no waiter is weighted or
//!    hungry, else all; `close` wakes all; a hungry waiter that takes its permits or
//!    leaves wakes all if permits remain; a waiter that times out or is cancelled
//!    passes the wake on if permits remain (it may have been the one woken).
//! 4. A waiter that has been woken once and has waited 1 ms sets `HUNGRY` if it is
//!    clear; only the thread that set it clears it.
//! 5. After the read-modify-write that may let a waiter return, a releaser (or
//!    closer, or departing waiter) does nothing but call `wake_*` with the word's
//!    address, taken beforehand, which the wait layer never dereferences (its rule
//!    3). A waiter may therefore free the semaphore as soon as its acquire returns,
//!    even while the thread that released to it is still inside `release`: the C
//!    contract of `sem_post` / `sem_destroy` that glibc bug 12674 broke.
//! 6. A waiter that cannot count itself (511 already counted) never sleeps on the
//!    word: it sleeps in 1 ms slices elsewhere (on its signal's word if it has one)
//!    and rechecks between them, counting itself as soon as there is room. Releases
//!    do not wake it. (It once slept on the word and set `WEIGHTED` instead; then,
//!    once the counted waiters had left and `WEIGHTED` was cleared, a release's
//!    single wake could reach it, a waiter for more permits than were free, which
//!    does not pass wakes on, while a counted waiter slept on with a permit free.)
//!
//! With one permit added and only unit waiters, waking one is enough: the woken
//! thread either takes the permit, or finds that a barging thread took it (that
//! thread will release it and wake again), or has timed out and passes the wake on
//! (invariant 3). When waiters want different amounts, a single wake might reach a
//! waiter that cannot use what was released while another that could sleeps on, so
//! releases then wake everyone; `WEIGHTED` stays set until the waiters are gone.
//!
//! ## Memory orderings
//!
//! - An acquire's successful CAS is `Acquire`; every CAS that adds permits (release,
//!   `add_permits`) is `Release`. They pair, directly or through the release sequence
//!   of read-modify-writes on the word, so whatever a holder wrote before dropping
//!   its permit is visible to the thread that takes it next (the semaphore is a lock
//!   when it has one permit).
//! - Registering and leaving as a waiter, setting `HUNGRY` and `forget_permits` are
//!   `Relaxed`: they publish no memory. They are read-modify-writes of the same word
//!   as the releases, so they are totally ordered with them and each sees the
//!   other's effect; no fence is needed because no second word is involved.
//! - `close` is `AcqRel` (a `fetch_or`); the loads that report "closed" are
//!   `Acquire`, so what the closer wrote before closing is visible to a thread whose
//!   acquire fails with `Closed`.
//! - Wakes go by address only, after the last access (invariant 5).

use crate::signal::{Cause, Signal};
use crate::sync::atomic::{AtomicU32, Ordering};
use crate::sync::time::{self, Duration, Instant};
use crate::wait;
use core::fmt;
use std::sync::Arc;

const CLOSED: u32 = 1;
const HUNGRY: u32 = 1 << 1;
const WEIGHTED: u32 = 1 << 2;
const WAITER_SHIFT: u32 = 3;
/// Bits of the waiter count: 511 counted waiters. The stall-test build (`--cfg
/// atomkit_stall`, test-only) counts at most 3, so that a test reaches the
/// uncounted waiters of invariant 6 with a handful of threads.
#[cfg(not(all(atomkit_stall, not(any(atomkit_loom, atomkit_shuttle)))))]
const WAITER_BITS: u32 = 9;
#[cfg(all(atomkit_stall, not(any(atomkit_loom, atomkit_shuttle))))]
const WAITER_BITS: u32 = 2;
const WAITER: u32 = 1 << WAITER_SHIFT;
const MAX_WAITERS: u32 = (1 << WAITER_BITS) - 1;
const WAITER_MASK: u32 = MAX_WAITERS << WAITER_SHIFT;
const PERMIT_SHIFT: u32 = WAITER_SHIFT + WAITER_BITS;
const PERMIT: u32 = 1 << PERMIT_SHIFT;
const MAX: u32 = u32::MAX >> PERMIT_SHIFT;

/// How long a woken waiter waits before it turns hungry (module doc, "Fairness").
/// Zero under the model checkers, which do not model time, so that the hungry path
/// is explored.
#[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
const HUNGRY_AFTER: Duration = Duration::from_millis(1);
#[cfg(any(atomkit_loom, atomkit_shuttle))]
const HUNGRY_AFTER: Duration = Duration::ZERO;

/// The longest a waiter that could not count itself as a waiter sleeps before it
/// rechecks the word (invariant 6). A whole second in the stall-test build, so that a
/// test can act while such a waiter sleeps.
#[cfg(not(all(atomkit_stall, not(any(atomkit_loom, atomkit_shuttle)))))]
const POLL_SLICE: Duration = Duration::from_millis(1);
#[cfg(all(atomkit_stall, not(any(atomkit_loom, atomkit_shuttle))))]
const POLL_SLICE: Duration = Duration::from_secs(1);

#[inline]
fn permits(s: u32) -> u32 {
    s >> PERMIT_SHIFT
}

#[inline]
fn waiters(s: u32) -> u32 {
    (s & WAITER_MASK) >> WAITER_SHIFT
}

/// Which wake a change that left the word at `after` owes, given what it did.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Wake {
    None,
    One,
    All,
}

/// Why a blocking acquire failed, before it is turned into the caller's error type.
enum Fail {
    Closed,
    TooMany,
    Timeout,
    Cancelled(Cause),
}

/// Converts a requested count, rejecting anything above [`Semaphore::MAX_PERMITS`].
#[inline]
fn checked(n: usize) -> Option<u32> {
    if n <= MAX as usize {
        Some(n as u32)
    } else {
        None
    }
}

/// A counting semaphore. See the [module documentation](self) for the guarantees.
///
/// # Examples
///
/// ```
/// use atomkit::semaphore::{Semaphore, TryAcquireError};
///
/// let sem = Semaphore::new(1);
/// let p = sem.acquire().unwrap();
/// assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
/// drop(p);
/// assert!(sem.try_acquire().is_ok());
/// ```
pub struct Semaphore {
    /// The state word and futex word; its bits are in the module doc's table.
    /// Written by every operation, always by an atomic read-modify-write.
    state: AtomicU32,
}

impl Semaphore {
    /// The most permits a semaphore can hold, and the most one call can ask for:
    /// 2^20 - 1 = 1,048,575.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::semaphore::{AcquireError, Semaphore};
    ///
    /// let sem = Semaphore::new(Semaphore::MAX_PERMITS);
    /// assert_eq!(sem.available_permits(), Semaphore::MAX_PERMITS);
    /// let err = sem.acquire_many(Semaphore::MAX_PERMITS + 1).unwrap_err();
    /// assert_eq!(err, AcquireError::TooMany);
    /// ```
    pub const MAX_PERMITS: usize = MAX as usize;

    /// Creates a semaphore with `permits` permits.
    ///
    /// # Panics
    ///
    /// If `permits` exceeds [`MAX_PERMITS`](Self::MAX_PERMITS).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = atomkit::semaphore::Semaphore::new(3);
    /// assert_eq!(sem.available_permits(), 3);
    /// ```
    pub fn new(permits: usize) -> Self {
        assert!(
            permits <= Self::MAX_PERMITS,
            "Semaphore::new: {permits} permits exceed Semaphore::MAX_PERMITS ({})",
            Self::MAX_PERMITS
        );
        Semaphore {
            state: AtomicU32::new((permits as u32) << PERMIT_SHIFT),
        }
    }

    /// Takes one permit, sleeping until one is free.
    ///
    /// # Errors
    ///
    /// [`AcquireError::Closed`] if the semaphore is closed (before or while waiting).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = atomkit::semaphore::Semaphore::new(1);
    /// let permit = sem.acquire().unwrap();
    /// assert_eq!(permit.num_permits(), 1);
    /// assert_eq!(sem.available_permits(), 0);
    /// ```
    pub fn acquire(&self) -> Result<Permit<'_>, AcquireError> {
        self.acquire_many(1)
    }

    /// Takes `n` permits at once, sleeping until `n` are free together. `n == 0`
    /// succeeds at once (unless closed).
    ///
    /// # Errors
    ///
    /// [`AcquireError::Closed`] if the semaphore is closed; [`AcquireError::TooMany`]
    /// if `n` exceeds [`MAX_PERMITS`](Self::MAX_PERMITS) (such a request could never
    /// be served).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = atomkit::semaphore::Semaphore::new(5);
    /// let p = sem.acquire_many(3).unwrap();
    /// assert_eq!(sem.available_permits(), 2);
    /// drop(p);
    /// assert_eq!(sem.available_permits(), 5);
    /// ```
    pub fn acquire_many(&self, n: usize) -> Result<Permit<'_>, AcquireError> {
        match self.acquire_inner(n, None, None) {
            Ok(n) => Ok(Permit { sem: self, n }),
            Err(Fail::TooMany) => Err(AcquireError::TooMany),
            Err(_) => Err(AcquireError::Closed),
        }
    }

    /// Takes one permit if one is free, without blocking.
    ///
    /// While a starving waiter is hungry (see the module doc), this fails with
    /// [`TryAcquireError::NoPermits`] even if permits are free, so that the waiter
    /// is served first.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::NoPermits`] if none is free; [`TryAcquireError::Closed`] if
    /// the semaphore is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::semaphore::{Semaphore, TryAcquireError};
    ///
    /// let sem = Semaphore::new(1);
    /// let _p = sem.try_acquire().unwrap();
    /// assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::NoPermits);
    /// sem.close();
    /// assert_eq!(sem.try_acquire().unwrap_err(), TryAcquireError::Closed);
    /// ```
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, TryAcquireError> {
        self.try_acquire_many(1)
    }

    /// Takes `n` permits if `n` are free, without blocking.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError::NoPermits`] if fewer than `n` are free (or a waiter is
    /// hungry); [`TryAcquireError::Closed`] if the semaphore is closed;
    /// [`TryAcquireError::TooMany`] if `n` exceeds [`MAX_PERMITS`](Self::MAX_PERMITS).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = atomkit::semaphore::Semaphore::new(4);
    /// let p = sem.try_acquire_many(3).unwrap();
    /// assert!(sem.try_acquire_many(2).is_err());
    /// assert_eq!(p.num_permits(), 3);
    /// ```
    #[inline]
    pub fn try_acquire_many(&self, n: usize) -> Result<Permit<'_>, TryAcquireError> {
        let n = self.try_inner(n)?;
        Ok(Permit { sem: self, n })
    }

    /// Takes one permit, sleeping at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`AcquireTimeoutError::Timeout`] if no permit came in time;
    /// [`AcquireTimeoutError::Closed`] if the semaphore is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::semaphore::{AcquireTimeoutError, Semaphore};
    /// use std::time::Duration;
    ///
    /// let sem = Semaphore::new(1);
    /// let _p = sem.acquire_timeout(Duration::from_secs(1)).unwrap();
    /// let err = sem.acquire_timeout(Duration::from_millis(1)).unwrap_err();
    /// assert_eq!(err, AcquireTimeoutError::Timeout);
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<Permit<'_>, AcquireTimeoutError> {
        self.acquire_many_timeout(1, timeout)
    }

    /// Takes one permit, sleeping at most until `deadline`. A deadline in the past
    /// makes this a [`try_acquire`](Self::try_acquire) that reports `Timeout`.
    ///
    /// # Errors
    ///
    /// As [`acquire_timeout`](Self::acquire_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::semaphore::{AcquireTimeoutError, Semaphore};
    /// use std::time::Instant;
    ///
    /// let sem = Semaphore::new(0);
    /// let err = sem.acquire_deadline(Instant::now()).unwrap_err();
    /// assert!(err.is_timeout());
    /// ```
    pub fn acquire_deadline(&self, deadline: Instant) -> Result<Permit<'_>, AcquireTimeoutError> {
        self.acquire_many_deadline(1, deadline)
    }

    /// Takes `n` permits at once, sleeping at most `timeout`. A timeout too large
    /// to represent as an `Instant` waits without a limit.
    ///
    /// # Errors
    ///
    /// [`AcquireTimeoutError::Timeout`], [`AcquireTimeoutError::Closed`], or
    /// [`AcquireTimeoutError::TooMany`] if `n` exceeds
    /// [`MAX_PERMITS`](Self::MAX_PERMITS).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::semaphore::Semaphore;
    /// use std::time::Duration;
    ///
    /// let sem = Semaphore::new(2);
    /// assert!(sem.acquire_many_timeout(3, Duration::from_millis(1)).unwrap_err().is_timeout());
    /// assert!(sem.acquire_many_timeout(2, Duration::from_millis(1)).is_ok());
    /// ```
    pub fn acquire_many_timeout(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Permit<'_>, AcquireTimeoutError> {
        let deadline = time::now().checked_add(timeout);
        self.timed(n, deadline)
    }

    /// Takes `n` permits at once, sleeping at most until `deadline`.
    ///
    /// # Errors
    ///
    /// As [`acquire_many_timeout`](Self::acquire_many_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::semaphore::Semaphore;
    /// use std::time::{Duration, Instant};
    ///
    /// let sem = Semaphore::new(2);
    /// let p = sem.acquire_many_deadline(2, Instant::now() + Duration::from_secs(1)).unwrap();
    /// assert_eq!(p.num_permits(), 2);
    /// ```
    pub fn acquire_many_deadline(
        &self,
        n: usize,
        deadline: Instant,
    ) -> Result<Permit<'_>, AcquireTimeoutError> {
        self.timed(n, Some(deadline))
    }

    fn timed(
        &self,
        n: usize,
        deadline: Option<Instant>,
    ) -> Result<Permit<'_>, AcquireTimeoutError> {
        match self.acquire_inner(n, deadline, None) {
            Ok(n) => Ok(Permit { sem: self, n }),
            Err(Fail::TooMany) => Err(AcquireTimeoutError::TooMany),
            Err(Fail::Closed) => Err(AcquireTimeoutError::Closed),
            Err(_) => Err(AcquireTimeoutError::Timeout),
        }
    }

    /// Takes one permit, sleeping until one is free or `signal` closes (or reaches
    /// its deadline). A free permit is taken even if the signal is already closed.
    /// The signal is checked at least every millisecond (module doc, "Cancellation").
    ///
    /// # Errors
    ///
    /// [`AcquireUntilError::Cancelled`] with the signal's [`Cause`];
    /// [`AcquireUntilError::Closed`] if the semaphore is closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::semaphore::{AcquireUntilError, Semaphore};
    /// use atomkit::signal::{Cause, Signal};
    ///
    /// let sem = Semaphore::new(0);
    /// let stop = Signal::new();
    /// let s2 = stop.clone();
    /// std::thread::spawn(move || s2.close());
    /// let err = sem.acquire_until(&stop).unwrap_err();
    /// assert_eq!(err, AcquireUntilError::Cancelled(Cause::Closed));
    /// ```
    pub fn acquire_until(&self, signal: &Signal) -> Result<Permit<'_>, AcquireUntilError> {
        self.acquire_many_until(1, signal)
    }

    /// Takes `n` permits at once, sleeping until they are free or `signal` closes.
    ///
    /// # Errors
    ///
    /// As [`acquire_until`](Self::acquire_until), plus [`AcquireUntilError::TooMany`]
    /// if `n` exceeds [`MAX_PERMITS`](Self::MAX_PERMITS).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::semaphore::Semaphore;
    /// use atomkit::signal::Signal;
    /// use std::time::Duration;
    ///
    /// let sem = Semaphore::new(1);
    /// let call = Signal::with_timeout(Duration::from_millis(5));
    /// let err = sem.acquire_many_until(2, &call).unwrap_err();
    /// assert!(err.is_cancelled());
    /// ```
    pub fn acquire_many_until(
        &self,
        n: usize,
        signal: &Signal,
    ) -> Result<Permit<'_>, AcquireUntilError> {
        match self.acquire_inner(n, None, Some(signal)) {
            Ok(n) => Ok(Permit { sem: self, n }),
            Err(Fail::TooMany) => Err(AcquireUntilError::TooMany),
            Err(Fail::Cancelled(c)) => Err(AcquireUntilError::Cancelled(c)),
            Err(_) => Err(AcquireUntilError::Closed),
        }
    }

    /// Takes one permit for a semaphore behind an `Arc`, returning a permit that
    /// owns a handle to it (`'static`, `Send`).
    ///
    /// # Errors
    ///
    /// As [`acquire`](Self::acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::semaphore::Semaphore;
    /// use std::sync::Arc;
    ///
    /// let sem = Arc::new(Semaphore::new(1));
    /// let permit = sem.clone().acquire_owned().unwrap();
    /// std::thread::spawn(move || drop(permit)).join().unwrap();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn acquire_owned(self: Arc<Self>) -> Result<OwnedPermit, AcquireError> {
        self.acquire_many_owned(1)
    }

    /// Takes `n` permits for a semaphore behind an `Arc`; see
    /// [`acquire_owned`](Self::acquire_owned).
    ///
    /// # Errors
    ///
    /// As [`acquire_many`](Self::acquire_many).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::semaphore::Semaphore;
    /// use std::sync::Arc;
    ///
    /// let sem = Arc::new(Semaphore::new(3));
    /// let p = sem.clone().acquire_many_owned(2).unwrap();
    /// assert_eq!(p.num_permits(), 2);
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn acquire_many_owned(self: Arc<Self>, n: usize) -> Result<OwnedPermit, AcquireError> {
        let n = self.acquire_many(n)?.into_count();
        Ok(OwnedPermit { sem: self, n })
    }

    /// Takes one permit without blocking, for a semaphore behind an `Arc`.
    ///
    /// # Errors
    ///
    /// As [`try_acquire`](Self::try_acquire).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::semaphore::Semaphore;
    /// use std::sync::Arc;
    ///
    /// let sem = Arc::new(Semaphore::new(1));
    /// let p = sem.clone().try_acquire_owned().unwrap();
    /// assert!(sem.clone().try_acquire_owned().is_err());
    /// drop(p);
    /// ```
    pub fn try_acquire_owned(self: Arc<Self>) -> Result<OwnedPermit, TryAcquireError> {
        self.try_acquire_many_owned(1)
    }

    /// Takes `n` permits without blocking, for a semaphore behind an `Arc`.
    ///
    /// # Errors
    ///
    /// As [`try_acquire_many`](Self::try_acquire_many).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::semaphore::Semaphore;
    /// use std::sync::Arc;
    ///
    /// let sem = Arc::new(Semaphore::new(2));
    /// let p = sem.clone().try_acquire_many_owned(2).unwrap();
    /// assert_eq!(p.num_permits(), 2);
    /// ```
    pub fn try_acquire_many_owned(
        self: Arc<Self>,
        n: usize,
    ) -> Result<OwnedPermit, TryAcquireError> {
        let n = self.try_inner(n)?;
        Ok(OwnedPermit { sem: self, n })
    }

    /// Adds `n` permits, waking waiters that can now proceed.
    ///
    /// # Panics
    ///
    /// If the available permits would exceed [`MAX_PERMITS`](Self::MAX_PERMITS); the
    /// semaphore is left unchanged. (Permits handed out count too: if this pushes
    /// available + held above `MAX_PERMITS`, the permit drop that would overflow
    /// panics instead.)
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = atomkit::semaphore::Semaphore::new(0);
    /// sem.add_permits(2);
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn add_permits(&self, n: usize) {
        match checked(n) {
            Some(n) => self.release(n),
            None => panic!(
                "Semaphore::add_permits: adding {n} permits would exceed Semaphore::MAX_PERMITS ({})",
                Self::MAX_PERMITS
            ),
        }
    }

    /// Removes up to `n` available permits for good; returns how many it removed
    /// (fewer than `n` if fewer were free). Held permits are not affected.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = atomkit::semaphore::Semaphore::new(3);
    /// assert_eq!(sem.forget_permits(2), 2);
    /// assert_eq!(sem.forget_permits(5), 1);
    /// assert_eq!(sem.available_permits(), 0);
    /// ```
    pub fn forget_permits(&self, n: usize) -> usize {
        let n = n.min(MAX as usize) as u32;
        // Ordering: Relaxed; the CAS revalidates what it acts on.
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let take = n.min(permits(s));
            if take == 0 {
                return 0;
            }
            // Ordering: Relaxed; forgetting publishes no memory, and as an RMW of the
            // word it is ordered with every acquire and release (module doc).
            match self.state.compare_exchange_weak(
                s,
                s - take * PERMIT,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return take as usize,
                Err(a) => s = a,
            }
        }
    }

    /// The number of permits free right now (a snapshot: it may change at once).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = atomkit::semaphore::Semaphore::new(2);
    /// let _p = sem.acquire().unwrap();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn available_permits(&self) -> usize {
        // Ordering: Relaxed; a snapshot that orders nothing.
        permits(self.state.load(Ordering::Relaxed)) as usize
    }

    /// Closes the semaphore: every current and future acquire fails with `Closed`,
    /// and every waiter wakes. Permits may still be released and added. Returns
    /// `true` only for the call that closed it.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = atomkit::semaphore::Semaphore::new(1);
    /// assert!(sem.close());
    /// assert!(!sem.close());
    /// assert!(sem.acquire().unwrap_err().is_closed());
    /// ```
    pub fn close(&self) -> bool {
        let word: *const AtomicU32 = &self.state;
        // Ordering: AcqRel; Release pairs with the Acquire loads that report
        // `Closed`, so the closer's earlier writes are visible there. The Acquire
        // half orders nothing `close` relies on (it reads only the returned word).
        let prev = self.state.fetch_or(CLOSED, Ordering::AcqRel);
        // Invariant 5: nothing but the wake, by address, after the RMW.
        if prev & CLOSED == 0 && waiters(prev) > 0 {
            wait::wake_all(word);
        }
        prev & CLOSED == 0
    }

    /// Whether [`close`](Self::close) has been called.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = atomkit::semaphore::Semaphore::new(1);
    /// assert!(!sem.is_closed());
    /// sem.close();
    /// assert!(sem.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        // Ordering: Acquire pairs with the `fetch_or` in `close`.
        self.state.load(Ordering::Acquire) & CLOSED != 0
    }

    /// The non-blocking attempt behind every `try_*` and every fast path.
    #[inline]
    fn try_inner(&self, n: usize) -> Result<u32, TryAcquireError> {
        let Some(n) = checked(n) else {
            return Err(TryAcquireError::TooMany);
        };
        match self.try_take(n) {
            Ok(()) => Ok(n),
            Err(s) if s & CLOSED != 0 => Err(TryAcquireError::Closed),
            Err(_) => Err(TryAcquireError::NoPermits),
        }
    }

    /// Takes `n` permits if they are free and nobody is hungry; on failure returns the
    /// word it saw. One load and one CAS when uncontended.
    #[inline]
    fn try_take(&self, n: u32) -> Result<(), u32> {
        // Ordering: Acquire, only so that a `Closed` seen here is ordered after the
        // closer's writes; the CAS below revalidates the rest.
        let mut s = self.state.load(Ordering::Acquire);
        if n == 0 {
            // Nothing to take and no turn to wait for: only a close refuses. (Waiting
            // behind a hungry waiter would make a zero-permit caller a sleeper that no
            // wake rule accounts for.)
            return if s & CLOSED != 0 { Err(s) } else { Ok(()) };
        }
        loop {
            if s & (CLOSED | HUNGRY) != 0 || permits(s) < n {
                return Err(s);
            }
            // Ordering: Acquire on success pairs with the Release CAS in `release`
            // (invariant 1, `## Memory orderings`); Acquire on failure for the
            // `Closed` report above.
            match self.state.compare_exchange_weak(
                s,
                s - n * PERMIT,
                Ordering::Acquire,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(()),
                Err(a) => s = a,
            }
        }
    }

    /// Gives back (or adds) `n` permits and wakes as invariant 3 says.
    fn release(&self, n: u32) {
        if n == 0 {
            return;
        }
        // Taken before the RMW: after it, `self` may be freed (invariant 5).
        let word: *const AtomicU32 = &self.state;
        // Ordering: Relaxed; the CAS revalidates it.
        let mut s = self.state.load(Ordering::Relaxed);
        loop {
            let avail = permits(s);
            assert!(
                n <= MAX - avail,
                "Semaphore: releasing {n} permits onto {avail} available would exceed \
                 Semaphore::MAX_PERMITS ({MAX})"
            );
            // Ordering: Release pairs with the Acquire CAS of the next acquirer, so
            // the holder's writes are visible to it.
            match self.state.compare_exchange_weak(
                s,
                s + n * PERMIT,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(a) => s = a,
            }
        }
        // Invariant 5: from here on only the address is used.
        let wake = if waiters(s) == 0 {
            Wake::None
        } else if n == 1 && s & (HUNGRY | WEIGHTED | CLOSED) == 0 {
            Wake::One
        } else {
            Wake::All
        };
        do_wake(word, wake);
    }

    /// The blocking acquire: spin briefly, then count ourselves as a waiter and sleep
    /// (invariants 2-4, 6). Returns the number of permits taken.
    fn acquire_inner(
        &self,
        n: usize,
        deadline: Option<Instant>,
        signal: Option<&Signal>,
    ) -> Result<u32, Fail> {
        let Some(n) = checked(n) else {
            return Err(Fail::TooMany);
        };
        // Fast path: one CAS. (`s` is refreshed only by the std build's spin below.)
        #[cfg_attr(any(atomkit_loom, atomkit_shuttle), allow(unused_mut))]
        let mut s = match self.try_take(n) {
            Ok(()) => return Ok(n),
            Err(s) => s,
        };
        if s & CLOSED != 0 {
            return Err(Fail::Closed);
        }
        // Spin a little before sleeping (not under the model checkers, where a spin
        // only multiplies the interleavings).
        #[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
        {
            let backoff = crossbeam_utils::Backoff::new();
            while !backoff.is_completed() {
                backoff.snooze();
                match self.try_take(n) {
                    Ok(()) => return Ok(n),
                    Err(now) if now & CLOSED != 0 => return Err(Fail::Closed),
                    Err(now) => s = now,
                }
            }
        }
        self.wait_for(n, s, deadline, signal)
    }

    #[cold]
    fn wait_for(
        &self,
        n: u32,
        mut s: u32,
        deadline: Option<Instant>,
        signal: Option<&Signal>,
    ) -> Result<u32, Fail> {
        let word: *const AtomicU32 = &self.state;
        let mut registered = false;
        let mut hungry = false;
        let mut woken = false;
        let mut since: Option<Instant> = None;
        loop {
            if s & CLOSED != 0 {
                self.leave(registered, hungry);
                return Err(Fail::Closed);
            }
            // Invariant 1: take only if enough are free and nobody else is hungry.
            if (s & HUNGRY == 0 || hungry) && permits(s) >= n {
                let mut new = s - n * PERMIT;
                if registered {
                    new -= WAITER;
                    if waiters(new) == 0 {
                        new &= !WEIGHTED;
                    }
                }
                if hungry {
                    new &= !HUNGRY;
                }
                // Ordering: Acquire on success pairs with the Release CAS in
                // `release`; Acquire on failure because the reload may be `Closed`.
                match self
                    .state
                    .compare_exchange(s, new, Ordering::Acquire, Ordering::Acquire)
                {
                    Ok(_) => {
                        // Invariant 3: while we were hungry, others slept with
                        // permits free; let them look again.
                        if hungry && permits(new) > 0 && waiters(new) > 0 {
                            do_wake(word, Wake::All);
                        }
                        return Ok(n);
                    }
                    Err(a) => {
                        s = a;
                        continue;
                    }
                }
            }
            // Give up?
            if let Some(sig) = signal {
                if let Some(cause) = sig.cause() {
                    self.leave(registered, hungry);
                    return Err(Fail::Cancelled(cause));
                }
            }
            if deadline.is_some_and(|d| time::now() >= d) {
                self.leave(registered, hungry);
                return Err(Fail::Timeout);
            }
            if !registered && waiters(s) < MAX_WAITERS {
                // Invariant 2: count ourselves before sleeping on the word. (If the
                // count is full we stay uncounted and poll instead: invariant 6.)
                let new = if n > 1 {
                    (s + WAITER) | WEIGHTED
                } else {
                    s + WAITER
                };
                // Ordering: Relaxed; publishes no memory, ordered with releases as an
                // RMW of the same word. Acquire on failure: `Closed`.
                match self
                    .state
                    .compare_exchange(s, new, Ordering::Relaxed, Ordering::Acquire)
                {
                    Ok(_) => {
                        s = new;
                        registered = true;
                        since = Some(time::now());
                    }
                    Err(a) => {
                        s = a;
                        continue;
                    }
                }
            } else if woken
                && !hungry
                && s & HUNGRY == 0
                && since.is_some_and(|t| time::now().saturating_duration_since(t) >= HUNGRY_AFTER)
            {
                // Invariant 4: we have waited too long; everyone else now queues
                // behind us.
                // Ordering: Relaxed, as for registering.
                match self.state.compare_exchange(
                    s,
                    s | HUNGRY,
                    Ordering::Relaxed,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        hungry = true;
                        s |= HUNGRY;
                    }
                    Err(a) => s = a,
                }
                continue;
            }
            if registered {
                // Sleep while the word still holds `s` (invariant 2).
                match signal {
                    // The signal's close wakes this sleep directly (`wait_either`); a
                    // closed signal skips it, and the loop gives up above.
                    Some(sig) => {
                        if let Some((sword, sval)) = sig.arm() {
                            let at = earliest(deadline, sig.deadline());
                            wait::wait_either(&self.state, s, sword, sval, at);
                        }
                    }
                    None => wait::wait_maybe_until(&self.state, s, deadline),
                }
            } else {
                // Uncounted (invariant 6): never on the word, where a release's single
                // wake could reach us instead of a counted waiter that can use it. Sleep
                // one slice elsewhere (on the signal's word if there is one, so that its
                // close still wakes us at once), then look again.
                match time::now().checked_add(POLL_SLICE) {
                    Some(slice_end) => {
                        let at = earliest(deadline, Some(slice_end)).unwrap_or(slice_end);
                        match signal {
                            // A closed signal skips the sleep; the loop gives up above.
                            Some(sig) => {
                                if let Some((sword, sval)) = sig.arm() {
                                    let at = earliest(Some(at), sig.deadline());
                                    wait::wait_maybe_until(sword, sval, at);
                                }
                            }
                            None => {
                                let idle = AtomicU32::new(0);
                                wait::wait_until(&idle, 0, at);
                            }
                        }
                    }
                    // The clock cannot name the slice's end: just let others run.
                    None => crate::sync::thread::yield_now(),
                }
            }
            woken = true;
            // Ordering: Acquire, so that a `Closed` seen here is ordered after the
            // closer's writes; the CAS revalidates everything else.
            s = self.state.load(Ordering::Acquire);
        }
    }

    /// A waiter gives up: uncounts itself, clears `HUNGRY` if it set it, and passes
    /// on a wake it may have consumed (invariant 3).
    fn leave(&self, registered: bool, hungry: bool) {
        if !registered {
            return;
        }
        let word: *const AtomicU32 = &self.state;
        // Ordering: Relaxed; the CAS revalidates it.
        let mut s = self.state.load(Ordering::Relaxed);
        let new = loop {
            let mut new = s - WAITER;
            if waiters(new) == 0 {
                new &= !WEIGHTED;
            }
            if hungry {
                new &= !HUNGRY;
            }
            // Ordering: Relaxed; leaving publishes no memory.
            match self
                .state
                .compare_exchange_weak(s, new, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break new,
                Err(a) => s = a,
            }
        };
        // Invariant 5: only the address from here on.
        let wake = if permits(new) == 0 || waiters(new) == 0 || new & CLOSED != 0 {
            Wake::None
        } else if hungry || new & (HUNGRY | WEIGHTED) != 0 {
            Wake::All
        } else {
            Wake::One
        };
        do_wake(word, wake);
    }
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Wakes by address only (invariant 5).
#[inline]
fn do_wake(word: *const AtomicU32, wake: Wake) {
    match wake {
        Wake::None => {}
        Wake::One => wait::wake_one(word),
        Wake::All => wait::wake_all(word),
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore").finish_non_exhaustive()
    }
}

/// Permits taken from a [`Semaphore`], given back when dropped.
///
/// # Examples
///
/// ```
/// let sem = atomkit::semaphore::Semaphore::new(2);
/// {
///     let p = sem.acquire_many(2).unwrap();
///     assert_eq!(p.num_permits(), 2);
///     assert_eq!(sem.available_permits(), 0);
/// }
/// assert_eq!(sem.available_permits(), 2);
/// ```
#[must_use = "dropping a permit releases it at once"]
pub struct Permit<'a> {
    sem: &'a Semaphore,
    n: u32,
}

impl<'a> Permit<'a> {
    /// How many permits this holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = atomkit::semaphore::Semaphore::new(3);
    /// assert_eq!(sem.acquire_many(2).unwrap().num_permits(), 2);
    /// ```
    pub fn num_permits(&self) -> usize {
        self.n as usize
    }

    /// Keeps the permits taken for good: they are not released (see
    /// [`Semaphore::add_permits`] to put permits back).
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = atomkit::semaphore::Semaphore::new(2);
    /// sem.acquire().unwrap().forget();
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn forget(self) {
        core::mem::forget(self);
    }

    /// The semaphore this permit came from.
    ///
    /// # Examples
    ///
    /// ```
    /// let sem = atomkit::semaphore::Semaphore::new(1);
    /// let p = sem.acquire().unwrap();
    /// assert!(std::ptr::eq(p.semaphore(), &sem));
    /// ```
    pub fn semaphore(&self) -> &'a Semaphore {
        self.sem
    }

    fn into_count(self) -> u32 {
        let n = self.n;
        core::mem::forget(self);
        n
    }
}

impl Drop for Permit<'_> {
    /// Releases the permits.
    ///
    /// # Panics
    ///
    /// If releasing would push the available permits above
    /// [`Semaphore::MAX_PERMITS`] (only possible after `add_permits` overfilled it).
    fn drop(&mut self) {
        self.sem.release(self.n);
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit").field("permits", &self.n).finish()
    }
}

/// Permits taken from a [`Semaphore`] behind an `Arc`; owns a handle to it, so it is
/// `'static` and can move to another thread. Released when dropped.
///
/// # Examples
///
/// ```
/// use atomkit::semaphore::Semaphore;
/// use std::sync::Arc;
///
/// let sem = Arc::new(Semaphore::new(1));
/// let p = sem.clone().acquire_owned().unwrap();
/// let t = std::thread::spawn(move || p.num_permits());
/// assert_eq!(t.join().unwrap(), 1);
/// assert_eq!(sem.available_permits(), 1);
/// ```
#[must_use = "dropping a permit releases it at once"]
pub struct OwnedPermit {
    sem: Arc<Semaphore>,
    n: u32,
}

impl OwnedPermit {
    /// How many permits this holds.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::semaphore::Semaphore;
    /// use std::sync::Arc;
    ///
    /// let sem = Arc::new(Semaphore::new(4));
    /// assert_eq!(sem.acquire_many_owned(3).unwrap().num_permits(), 3);
    /// ```
    pub fn num_permits(&self) -> usize {
        self.n as usize
    }

    /// Keeps the permits taken for good; the handle to the semaphore is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::semaphore::Semaphore;
    /// use std::sync::Arc;
    ///
    /// let sem = Arc::new(Semaphore::new(1));
    /// sem.clone().acquire_owned().unwrap().forget();
    /// assert_eq!(sem.available_permits(), 0);
    /// ```
    pub fn forget(mut self) {
        self.n = 0;
    }

    /// The semaphore this permit came from.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::semaphore::Semaphore;
    /// use std::sync::Arc;
    ///
    /// let sem = Arc::new(Semaphore::new(1));
    /// let p = sem.clone().acquire_owned().unwrap();
    /// assert!(Arc::ptr_eq(p.semaphore(), &sem));
    /// ```
    pub fn semaphore(&self) -> &Arc<Semaphore> {
        &self.sem
    }
}

impl Drop for OwnedPermit {
    /// Releases the permits, then drops the handle.
    ///
    /// # Panics
    ///
    /// As for [`Permit`]'s drop.
    fn drop(&mut self) {
        self.sem.release(self.n);
    }
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("permits", &self.n)
            .finish()
    }
}

const TOO_MANY: &str = "requested more permits than Semaphore::MAX_PERMITS";

/// Why [`Semaphore::acquire`] / [`acquire_many`](Semaphore::acquire_many) failed.
///
/// # Examples
///
/// ```
/// use atomkit::semaphore::{AcquireError, Semaphore};
///
/// let sem = Semaphore::new(1);
/// sem.close();
/// let err = sem.acquire().unwrap_err();
/// assert_eq!(err, AcquireError::Closed);
/// assert_eq!(err.to_string(), "semaphore closed");
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AcquireError {
    /// The semaphore is closed.
    Closed,
    /// More than [`Semaphore::MAX_PERMITS`] were requested.
    TooMany,
}

impl AcquireError {
    /// Whether the semaphore was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(atomkit::semaphore::AcquireError::Closed.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        *self == AcquireError::Closed
    }
}

impl fmt::Display for AcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireError::Closed => f.write_str("semaphore closed"),
            AcquireError::TooMany => f.write_str(TOO_MANY),
        }
    }
}

impl std::error::Error for AcquireError {}

/// Why a `try_acquire*` call failed.
///
/// # Examples
///
/// ```
/// use atomkit::semaphore::{Semaphore, TryAcquireError};
///
/// let sem = Semaphore::new(0);
/// let err = sem.try_acquire().unwrap_err();
/// assert!(err.is_no_permits());
/// assert_eq!(err.to_string(), "no permits available");
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TryAcquireError {
    /// Not enough permits are free right now (or a starving waiter goes first).
    NoPermits,
    /// The semaphore is closed.
    Closed,
    /// More than [`Semaphore::MAX_PERMITS`] were requested.
    TooMany,
}

impl TryAcquireError {
    /// Whether the semaphore was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(atomkit::semaphore::TryAcquireError::Closed.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        *self == TryAcquireError::Closed
    }

    /// Whether there were not enough permits.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(atomkit::semaphore::TryAcquireError::NoPermits.is_no_permits());
    /// ```
    pub fn is_no_permits(&self) -> bool {
        *self == TryAcquireError::NoPermits
    }
}

impl fmt::Display for TryAcquireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TryAcquireError::NoPermits => f.write_str("no permits available"),
            TryAcquireError::Closed => f.write_str("semaphore closed"),
            TryAcquireError::TooMany => f.write_str(TOO_MANY),
        }
    }
}

impl std::error::Error for TryAcquireError {}

/// Why a timed acquire (`*_timeout`, `*_deadline`) failed.
///
/// # Examples
///
/// ```
/// use atomkit::semaphore::{AcquireTimeoutError, Semaphore};
/// use std::time::Duration;
///
/// let sem = Semaphore::new(0);
/// let err = sem.acquire_timeout(Duration::from_millis(1)).unwrap_err();
/// assert_eq!(err, AcquireTimeoutError::Timeout);
/// assert_eq!(err.to_string(), "timed out waiting for a permit");
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AcquireTimeoutError {
    /// The time ran out first.
    Timeout,
    /// The semaphore is closed.
    Closed,
    /// More than [`Semaphore::MAX_PERMITS`] were requested.
    TooMany,
}

impl AcquireTimeoutError {
    /// Whether the time ran out.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(atomkit::semaphore::AcquireTimeoutError::Timeout.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        *self == AcquireTimeoutError::Timeout
    }

    /// Whether the semaphore was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(atomkit::semaphore::AcquireTimeoutError::Closed.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        *self == AcquireTimeoutError::Closed
    }
}

impl fmt::Display for AcquireTimeoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireTimeoutError::Timeout => f.write_str("timed out waiting for a permit"),
            AcquireTimeoutError::Closed => f.write_str("semaphore closed"),
            AcquireTimeoutError::TooMany => f.write_str(TOO_MANY),
        }
    }
}

impl std::error::Error for AcquireTimeoutError {}

/// Why a [`Signal`]-cancellable acquire (`*_until`) failed.
///
/// # Examples
///
/// ```
/// use atomkit::semaphore::{AcquireUntilError, Semaphore};
/// use atomkit::signal::{Cause, Signal};
///
/// let sem = Semaphore::new(0);
/// let stop = Signal::new();
/// stop.close();
/// let err = sem.acquire_until(&stop).unwrap_err();
/// assert_eq!(err, AcquireUntilError::Cancelled(Cause::Closed));
/// assert_eq!(err.to_string(), "acquire cancelled: signal closed");
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AcquireUntilError {
    /// The signal closed first; carries its cause.
    Cancelled(Cause),
    /// The semaphore is closed.
    Closed,
    /// More than [`Semaphore::MAX_PERMITS`] were requested.
    TooMany,
}

impl AcquireUntilError {
    /// Whether the signal cancelled the acquire.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::semaphore::AcquireUntilError;
    /// use atomkit::signal::Cause;
    ///
    /// assert!(AcquireUntilError::Cancelled(Cause::Closed).is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, AcquireUntilError::Cancelled(_))
    }

    /// Whether the semaphore was closed.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(atomkit::semaphore::AcquireUntilError::Closed.is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        *self == AcquireUntilError::Closed
    }

    /// The signal's cause, if the signal cancelled the acquire.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::semaphore::AcquireUntilError;
    /// use atomkit::signal::Cause;
    ///
    /// let e = AcquireUntilError::Cancelled(Cause::DeadlineExceeded);
    /// assert_eq!(e.cause(), Some(Cause::DeadlineExceeded));
    /// ```
    pub fn cause(&self) -> Option<Cause> {
        match self {
            AcquireUntilError::Cancelled(c) => Some(*c),
            _ => None,
        }
    }
}

impl fmt::Display for AcquireUntilError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AcquireUntilError::Cancelled(c) => write!(f, "acquire cancelled: {c}"),
            AcquireUntilError::Closed => f.write_str("semaphore closed"),
            AcquireUntilError::TooMany => f.write_str(TOO_MANY),
        }
    }
}

impl std::error::Error for AcquireUntilError {}
