//! Work-stealing deques: a [`Worker`] per thread, [`Stealer`]s for the others, and a
//! global [`Injector`]; the API of crossbeam-deque, so code ports by changing one import.
//!
//! A worker thread pushes and pops its own tasks at one end of its [`Worker`]
//! (newest first with [`Worker::new_lifo`], oldest first with [`Worker::new_fifo`]);
//! idle threads take the oldest tasks from the other end through [`Stealer`]s, one at
//! a time or in batches of up to half the deque. New work from outside the pool goes
//! into an [`Injector`], a lock-free unbounded MPMC queue with the same steal methods.
//!
//! ```
//! use atomkit::deque::{Injector, Steal, Worker};
//! use std::thread;
//!
//! let injector = Injector::new();
//! for task in 0..100u64 {
//!     injector.push(task);
//! }
//! let local = Worker::new_lifo();
//! let stealer = local.stealer();
//! let thief = thread::spawn(move || {
//!     let mut sum = 0;
//!     loop {
//!         match stealer.steal() {
//!             Steal::Success(t) => sum += t,
//!             Steal::Retry => continue,
//!             Steal::Empty => break sum,
//!         }
//!     }
//! });
//! let mut sum = 0;
//! loop {
//!     // Local work first, then a batch from the global queue.
//!     if let Some(t) = local.pop() {
//!         sum += t;
//!         continue;
//!     }
//!     match injector.steal_batch_and_pop(&local) {
//!         Steal::Success(t) => sum += t,
//!         Steal::Retry => continue,
//!         Steal::Empty => break,
//!     }
//! }
//! sum += thief.join().unwrap();
//! // The thief may have quit early, before the worker refilled: drain what is left.
//! while let Some(t) = local.pop() {
//!     sum += t;
//! }
//! assert_eq!(sum, (0..100).sum::<u64>());
//! ```
//!
//! Beyond crossbeam-deque: [`Worker::push_was_empty`] tells the pusher whether the
//! deque looked empty (so it knows when to wake a sleeping thief), and bounded workers
//! ([`Worker::new_lifo_bounded`], [`Worker::new_fifo_bounded`]) whose
//! [`try_push`](Worker::try_push) hands the item back when full.
//!
//! # Implementation
//!
//! [`Worker`]/[`Stealer`] are the Chase-Lev deque (Chase and Lev, SPAA 2005) with the
//! C11 memory orderings of Lê, Pop, Cohen and Zappa Nardelli, "Correct and Efficient
//! Work-Stealing for Weak Memory Models" (PPoPP 2013, figure 1), changed in two ways:
//! a stealer *claims an index first and reads its slot afterwards*, and every slot
//! carries a *stamp* that tells the owner whether the last reader of the slot is done.
//!
//! In the paper a thief reads `a[t]` and then tries `CAS(top, t, t+1)`. That read is
//! a data race whenever the CAS is going to fail: by then other thieves may have
//! advanced `top` and the owner may be writing the same slot again after wrapping
//! around (crossbeam-deque reads it with a volatile read and discards the value, which
//! is still undefined behaviour, and why its tests run Miri without preemption).
//! Here a thief reads only slots it has already won, and the owner never writes a slot
//! that a thief has won but not yet finished reading: the thief marks the slot free
//! (its stamp) after reading, and an owner that finds the slot of `bottom` not free
//! moves to a fresh buffer instead of waiting.
//!
//! | bits of `heads` (u64) | name | written by | meaning |
//! |-----------------------|------|------------|---------|
//! | 0..32  | `g` (generation) | the owner, when it replaces the buffer | which buffer a claim is valid for |
//! | 32..64 | `h` (claimed)    | claim CASes of stealers; the owner's last-item CAS (LIFO) and pop `fetch_add` (FIFO) | next index to take from the top; everything below is taken |
//!
//! `bottom` (u32) is one past the newest item, written only by the owner. The buffer
//! is a power-of-two ring of slots behind a `crossbeam-epoch` pointer, swapped only by
//! the owner; it records its generation. A slot is a `MaybeUninit` cell and an atomic
//! `stamp`: the index the owner may write into it next. Indices are `u32` and wrap;
//! the slot of index `i` is `i mod capacity`. Deques start 8 indices below the wrap
//! point, so every test, model and fuzz run crosses it.
//!
//! The owner keeps private state in its [`Worker`] (`!Sync`, so only its thread
//! touches it): its copy of the buffer pointer, the end of its *free run* (indices
//! from `bottom` on whose slots it already knows to be free, I2, so it reads the
//! stamps once per run and not once per push), in LIFO mode a lower bound of `h`
//! (the last `h` it read), and the `h` at which the generation last moved (I6). Push and pop read this state into locals on entry
//! and write it back only when it changes, and load the buffer's slice of slots
//! before their fence or RMW, so that after that serializing instruction the item
//! is one load away.
//!
//! Invariants:
//!
//! 1. (claims) An index is taken by exactly one party: a stealer by a CAS moving `h`
//!    past it, the owner by a `fetch_add` (FIFO pop, undone if it overshot `bottom`),
//!    a CAS (the LIFO last item) or, in LIFO mode, by
//!    decrementing `bottom` past it while it saw `h` below it behind the SeqCst fence.
//!    Claims by different stealers are independent: any number may be in flight.
//! 2. (no racing write) While a slot holds the item of index `i` its stamp is `i`,
//!    outside the owner's free run (the owner's own takes from the top extend the run
//!    without storing a stamp, unless a renewal is due (I6), a resize starts the run at `h + capacity` so that it
//!    covers the next lap of the indices `[h0, h)` taken during its copy, whose
//!    stamps are stale, and stamps are read only beyond the run);
//!    whoever takes `i` from the top reads the item and then stores `i + capacity`
//!    (Release). The owner writes index `b` only into a slot whose stamp it read
//!    (Acquire) as `b`, so every read of a slot happens before the slot is written
//!    again. A LIFO pop leaves the stamp at `i`: the next push writes `i` again.
//! 3. (live items) `[h, bottom)` are the items in the deque; slots of indices below
//!    `h` whose stamp is not yet advanced are being read by their takers.
//! 4. (generations) A stealer loads `heads` = `(g, h)`, then the buffer, and goes on
//!    only if the buffer's generation is `g`; its claim CAS expects `(g, h)`. To
//!    replace the buffer the owner reads a value `h0` of `h`, copies `[h0, bottom)`
//!    into a new buffer of generation `g + 1` whose stamps make every index of
//!    `[h0, h0 + capacity)` writable-or-live, then moves `heads` to `(g + 1, h)`
//!    with a CAS (which fixes the exact `h >= h0` and fails every claim still
//!    expecting `g`), and publishes the buffer (Release swap). While it copies,
//!    stealers go on claiming in generation `g` and read the old buffer, which
//!    holds every item of `[h0, bottom)` and which the owner no longer writes; the
//!    indices `[h0, h)` they took are dead copies in the new buffer. So a claim that
//!    succeeds reads the buffer it was made for, which holds the item (the
//!    CVE-2021-32810 double take came from reading through a buffer loaded before the
//!    CAS without such a check). A stealer that sees the new generation but still
//!    the old buffer returns [`Steal::Retry`]: items pushed after the swap exist only
//!    in the new buffer, so reading the old one could return a stale item. Stealers
//!    are turned away only between the bump and the swap, not during the copy.
//!    Nothing between the bump and the owner's record of the new buffer can fail:
//!    the replacement allocates (buffer, box, epoch pin) before the bump and retires
//!    the old buffer after, so a failed allocation (with an allocation-error handler
//!    that panics) leaves the deque as it was, or leaks the old buffer.
//! 5. (reclamation) A replaced buffer is retired with `defer_destroy`; every stealer
//!    holds an epoch guard from before it loads the buffer to after its last read, so
//!    a stealer still reading a replaced buffer keeps it alive.
//! 6. (wrap-around) `bottom - h` never exceeds the capacity, at most 2^30, so every
//!    difference of two indices fits an `i32` and `wrapping_sub` gives the distance.
//!    The heads word packs a 32-bit `h` with a 32-bit `g`, so a stealer stalled
//!    between its load of `heads` and its claim CAS would have its CAS succeed on a
//!    stale view if the owner brought back the same `(g, h)`: the stealer would then
//!    claim an index at or past `bottom`, or read a retired buffer. `h` alone comes
//!    back after 2<sup>32</sup> takes from the top (a FIFO owner popping as fast as
//!    it pushes would do that in tens of seconds), so the owner renews the
//!    generation: once `h` is 2<sup>30</sup> past where the generation last moved,
//!    its next refill replaces the buffer at the same size (one copy of at most the
//!    capacity per 2<sup>30</sup> takes), and its own takes stop extending its free
//!    run so that the refill comes. A refill comes at least once per 2<sup>31</sup>
//!    takes (the length and the free run are each at most the capacity), so `h`
//!    moves less than 2<sup>32</sup> within one generation, and the same word can
//!    only come back after 2<sup>32</sup> generation moves: about 2<sup>32</sup>
//!    buffer replacements by resizes, each an allocation and a copy, while one
//!    stealer stays stalled. crossbeam-deque's 64-bit indices without a generation
//!    have the same kind of window at 2<sup>64</sup> takes.
//! 7. (growth and shrinking) A push whose slot is not free replaces the buffer: twice
//!    as large when `bottom - h` reached the capacity, the same size when only a
//!    stalled reader holds the slot (or for a renewal, I6). A pop halves it when `bottom - h` is at most a
//!    quarter of it (never below 64 slots, 2 under the model checkers).
//!
//! A steal is one CAS to claim and one Release store to the stamp. A batch steal from
//! a LIFO worker claims one index at a time, each behind its own fence (a compiler
//! fence on x86_64), because the owner pops without a CAS; from a FIFO worker, whose
//! owner claims with an atomic `fetch_add` on the same word (and never lowers
//! `bottom`), it claims the whole range in one CAS. A batch is at most half the items (rounded up),
//! at most the limit (32 by default) and at most the room in a bounded destination.
//!
//! Progress: push and pop are wait-free apart from the buffer copy on a resize and
//! the last-item and generation CASes. Stealers are lock-free: a stealer preempted
//! in the middle of its steal blocks nobody. Other stealers claim the next indices
//! (nothing waits for a release), and an owner that wraps around to the slot it
//! still reads copies the deque into a fresh buffer instead of waiting; the stalled
//! stealer finishes in the old buffer, which the epoch keeps alive. The only
//! [`Steal::Retry`]s are a lost claim CAS (someone else took an item) and the short
//! window of a buffer replacement in which the owner itself is between its two steps.
//!
//! [`Injector`] is a linked list of blocks of slots, with a head and a tail index
//! outside the blocks. Pushers and stealers claim slots by CAS on those indices
//! before they touch a block, so neither pins the epoch: a claimed slot keeps its
//! block alive, and a block is freed by the thread that finishes its last slot. No
//! one waits for another: a stealer that finds its claimed slot not yet written
//! skips it and the pusher pushes again, and a position stuck at a block boundary
//! is moved on by whoever finds it so. Its module (`injector.rs`) has the details,
//! invariants and orderings.
//!
//! ## Memory orderings
//!
//! Lê et al.'s orderings, operation by operation, with what each pairs with:
//!
//! - `push`: `load_relaxed(bottom)`; `load_acquire(top)` becomes an Acquire load of
//!   the stamp of the slot of `bottom` (it pairs with the Release stamp store of the
//!   slot's last reader, I2); `fence(release)` + `store_relaxed(bottom)` becomes a
//!   Release store of `bottom`, pairing with the stealers' Acquire load of `bottom`.
//! - `pop` (LIFO, the paper's `take`): `store_relaxed(bottom, b-1)` becomes a Release
//!   store; `fence(seq_cst)`; `load_relaxed(top)` — the Dekker pairing with the
//!   stealer's fence: of the owner's store of `bottom` and a stealer's load of it, at
//!   least one sees the other's side. The last item is decided by `CAS(top, seq_cst)`;
//!   `bottom` is restored with a Release store. The paper's stores of `bottom` in
//!   `take` are relaxed because its slots are atomics; ours are plain cells, so a
//!   stealer whose Acquire load of `bottom` reads a value stored by `pop` must still
//!   synchronize with the owner's earlier slot writes: every store of `bottom` is
//!   Release (Miri's race detector caught the relaxed version).
//! - `pop` (FIFO): a Relaxed `fetch_add` on `h` (undone by a `fetch_sub` when the
//!   thieves emptied the deque since the owner looked: while `h` is past `bottom` no
//!   claim succeeds); `bottom` never decreases in FIFO mode, so there is no Dekker
//!   race, and the owner reads only its own writes. A LIFO pop that sees one item
//!   left takes it the same way, with a Relaxed CAS at the top, without touching
//!   `bottom` and without the fence. That early Relaxed load of `heads` (which also
//!   answers an empty deque without the fence) is made only when the owner's lower
//!   bound of `h` (the last `h` it read; `h` never decreases in LIFO mode) leaves
//!   at most one item: with more, the fast paths cannot apply, and the load would
//!   only fetch the line the stealers keep writing. Either path is correct whatever
//!   the bound says: it only picks which one runs.
//! - `steal`: `load_acquire(top)` (here `heads`); an Acquire load of the buffer
//!   pointer (pairs with the Release swap of a resize: copied bits and stamps);
//!   `fence(seq_cst)` (a compiler fence on x86_64, see below); `load_acquire(bottom)` (pairs with the Release stores of
//!   `bottom`); `CAS(top, seq_cst)` to claim. Then, unlike the paper, the read of the
//!   slot and a Release store of its stamp (pairs with the owner's Acquire load of
//!   the stamp in `push`).
//! - A resize moves the generation with a Relaxed CAS (it only has to fail older
//!   claims, one modification order on one word) and publishes the new buffer with a
//!   Release swap before the Release store of `bottom` that publishes the next item.
//! - The stealer's fence is emitted only where the C11 model is what runs or is
//!   checked: on every target but x86_64, and under loom, shuttle, Miri and
//!   ThreadSanitizer. On x86_64 hardware it is a compiler fence only. The stealer's
//!   half of the Dekker pairing orders a load (of `heads`, or the stealer's own claim
//!   CAS in a batch) before its load of `bottom`; x86-TSO never reorders a load with
//!   an earlier load or locked RMW, and the owner's half, `fence(SeqCst)` (a locked
//!   RMW on the stack on x86_64), drains its store of `bottom` before it loads
//!   `heads`. So if the owner's load of `heads` reads a value older than the one a
//!   stealer read, the owner's store of `bottom` precedes, in the one memory order
//!   of x86, that stealer's load of `bottom`, which therefore sees it: no index is
//!   taken by both (I1). The compiler may not hoist the load of `bottom` above the
//!   Acquire load (or SeqCst CAS) before it, so the instructions keep program order.
//!   This saves one full barrier per claim; the epoch pin's own barrier stays.
//! - Under `--cfg atomkit_tsan` the two SeqCst fences are left out and the accesses
//!   around them (`bottom` store and `heads` load in `pop`, `heads` and `bottom` loads
//!   in a steal) are SeqCst: one total order over them gives the same Dekker argument,
//!   and ThreadSanitizer understands it.
//! - [`Injector`]: the slot's `WRITE` bit Release (pusher) / Acquire (stealer); claim
//!   CASes on the indices Relaxed (they only hand out slots); a position's block
//!   pointer and index moves Release, their loads Acquire; `READ`/`DESTROY` AcqRel
//!   (the block is freed after every slot's last access); helpers and block
//!   retirement pair through SeqCst fences. Each is argued in `injector.rs`.

mod chase_lev;
mod injector;

pub use injector::Injector;

use crate::sync::Arc;
use chase_lev::{Inner, Owner, MAX_CAP};
use core::cell::Cell;
use core::fmt;
use core::iter::FromIterator;
use core::marker::PhantomData;
use crossbeam_epoch as epoch;

/// Items a batch steal takes at most when no limit is given.
const MAX_BATCH: usize = 32;

/// First index of every deque: 8 below the wrap point of `u32`, so that every use
/// crosses it early (invariant 6).
const START: u32 = u32::MAX - 7;

/// Where retired buffers and blocks go: the global epoch collector, or under loom a
/// collector per structure (much smaller models).
pub(crate) struct Reclaim {
    #[cfg(atomkit_loom)]
    collector: epoch::Collector,
}

impl Reclaim {
    fn new() -> Self {
        Reclaim {
            #[cfg(atomkit_loom)]
            collector: epoch::Collector::new(),
        }
    }

    /// Pins the current thread.
    #[inline]
    fn pin(&self) -> epoch::Guard {
        #[cfg(atomkit_loom)]
        {
            self.collector.register().pin()
        }
        #[cfg(not(atomkit_loom))]
        {
            epoch::pin()
        }
    }
}

/// The result of a steal.
///
/// # Examples
///
/// ```
/// use atomkit::deque::{Steal, Worker};
///
/// let w = Worker::new_fifo();
/// let s = w.stealer();
/// assert_eq!(s.steal(), Steal::Empty);
/// w.push(7);
/// assert_eq!(s.steal(), Steal::Success(7));
/// ```
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Steal<T> {
    /// The queue was empty.
    Empty,
    /// An item was stolen.
    Success(T),
    /// Another thread got in the way (a concurrent steal or pop); try again.
    Retry,
}

impl<T> Steal<T> {
    /// Whether this is `Empty`.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Steal;
    /// assert!(Steal::<i32>::Empty.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        matches!(self, Steal::Empty)
    }

    /// Whether this is `Success`.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Steal;
    /// assert!(Steal::Success(1).is_success());
    /// ```
    pub fn is_success(&self) -> bool {
        matches!(self, Steal::Success(_))
    }

    /// Whether this is `Retry`.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Steal;
    /// assert!(Steal::<i32>::Retry.is_retry());
    /// ```
    pub fn is_retry(&self) -> bool {
        matches!(self, Steal::Retry)
    }

    /// The stolen item, if any.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Steal;
    /// assert_eq!(Steal::Success(1).success(), Some(1));
    /// assert_eq!(Steal::<i32>::Retry.success(), None);
    /// ```
    pub fn success(self) -> Option<T> {
        match self {
            Steal::Success(t) => Some(t),
            _ => None,
        }
    }

    /// `self` if it is a success, else the result of `f`; a `Retry` in `self`
    /// turns an `Empty` from `f` into `Retry` (something may still be there).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Steal;
    /// assert_eq!(Steal::Empty.or_else(|| Steal::Success(2)), Steal::Success(2));
    /// assert_eq!(Steal::Retry.or_else(|| Steal::<i32>::Empty), Steal::Retry);
    /// assert_eq!(Steal::Success(1).or_else(|| Steal::Success(2)), Steal::Success(1));
    /// ```
    pub fn or_else<F: FnOnce() -> Steal<T>>(self, f: F) -> Steal<T> {
        match self {
            Steal::Empty => f(),
            Steal::Success(_) => self,
            Steal::Retry => match f() {
                Steal::Empty => Steal::Retry,
                other => other,
            },
        }
    }
}

impl<T> FromIterator<Steal<T>> for Steal<T> {
    /// The first `Success`; else `Retry` if any was `Retry`; else `Empty`. Stops at
    /// the first success.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Steal;
    /// let all: Steal<i32> = vec![Steal::Empty, Steal::Retry, Steal::Empty].into_iter().collect();
    /// assert_eq!(all, Steal::Retry);
    /// let all: Steal<i32> = vec![Steal::Retry, Steal::Success(3)].into_iter().collect();
    /// assert_eq!(all, Steal::Success(3));
    /// ```
    fn from_iter<I: IntoIterator<Item = Steal<T>>>(iter: I) -> Self {
        let mut retry = false;
        for s in iter {
            match s {
                Steal::Success(t) => return Steal::Success(t),
                Steal::Retry => retry = true,
                Steal::Empty => {}
            }
        }
        if retry {
            Steal::Retry
        } else {
            Steal::Empty
        }
    }
}

/// The error of [`Worker::try_push`] on a full bounded worker: hands the item back.
///
/// # Examples
///
/// ```
/// use atomkit::deque::Worker;
///
/// let w = Worker::new_lifo_bounded(1);
/// w.try_push(1).unwrap();
/// let err = w.try_push(2).unwrap_err();
/// assert_eq!(err.to_string(), "deque is full");
/// assert_eq!(err.into_inner(), 2);
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PushError<T>(pub T);

impl<T> PushError<T> {
    /// The item that was not pushed.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::PushError;
    /// assert_eq!(PushError(5).into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PushError(..)")
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deque is full")
    }
}

impl<T> std::error::Error for PushError<T> {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavor {
    Lifo,
    Fifo,
}

/// The owner's end of a work-stealing deque. Not `Sync`: one thread pushes and pops;
/// it can be sent to another thread.
///
/// # Examples
///
/// ```
/// use atomkit::deque::Worker;
///
/// let w = Worker::new_lifo();
/// w.push(1);
/// w.push(2);
/// assert_eq!(w.pop(), Some(2));
/// assert_eq!(w.stealer().steal().success(), Some(1));
/// ```
pub struct Worker<T> {
    inner: Arc<Inner<T>>,
    /// The owner's private state: its copy of the buffer pointer, its run of free
    /// indices, its lower bound of `h`, where the generation last moved.
    owner: Owner<T>,
    flavor: Flavor,
    /// Maximum length, for bounded workers.
    bound: Option<usize>,
    _not_sync: PhantomData<Cell<()>>,
}

// SAFETY: a `Worker` may move to another thread with its items (`T: Send`); its
// owner-only cells move with it and are used by one thread at a time (`!Sync`).
unsafe impl<T: Send> Send for Worker<T> {}

impl<T> Worker<T> {
    fn with(flavor: Flavor, bound: Option<usize>) -> Self {
        let inner = Arc::new(Inner::new(START));
        let owner = Owner::new(&inner, START);
        Worker {
            inner,
            owner,
            flavor,
            bound,
            _not_sync: PhantomData,
        }
    }

    fn check_bound(cap: usize) -> usize {
        assert!(cap > 0, "deque capacity must be at least 1");
        assert!(
            cap <= MAX_CAP,
            "deque capacity {cap} exceeds the maximum {MAX_CAP}"
        );
        cap
    }

    /// A new deque whose owner pops the newest item first (stealers take the oldest).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Worker;
    /// let w = Worker::new_lifo();
    /// w.push('a');
    /// w.push('b');
    /// assert_eq!(w.pop(), Some('b'));
    /// ```
    pub fn new_lifo() -> Self {
        Self::with(Flavor::Lifo, None)
    }

    /// A new deque whose owner pops the oldest item first, like the stealers.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Worker;
    /// let w = Worker::new_fifo();
    /// w.push('a');
    /// w.push('b');
    /// assert_eq!(w.pop(), Some('a'));
    /// ```
    pub fn new_fifo() -> Self {
        Self::with(Flavor::Fifo, None)
    }

    /// A LIFO deque holding at most `cap` items: [`try_push`](Self::try_push) hands
    /// the item back when it is full.
    ///
    /// # Panics
    ///
    /// If `cap` is 0 or above 2^30.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Worker;
    /// let w = Worker::new_lifo_bounded(2);
    /// assert!(w.try_push(1).is_ok());
    /// assert!(w.try_push(2).is_ok());
    /// assert!(w.try_push(3).is_err());
    /// assert_eq!(w.capacity(), Some(2));
    /// ```
    pub fn new_lifo_bounded(cap: usize) -> Self {
        Self::with(Flavor::Lifo, Some(Self::check_bound(cap)))
    }

    /// A FIFO deque holding at most `cap` items.
    ///
    /// # Panics
    ///
    /// If `cap` is 0 or above 2^30.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Worker;
    /// let w = Worker::new_fifo_bounded(1);
    /// assert!(w.try_push(1).is_ok());
    /// assert_eq!(w.try_push(2).unwrap_err().into_inner(), 2);
    /// ```
    pub fn new_fifo_bounded(cap: usize) -> Self {
        Self::with(Flavor::Fifo, Some(Self::check_bound(cap)))
    }

    /// The bound of a bounded worker; `None` when unbounded.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Worker;
    /// assert_eq!(Worker::<i32>::new_lifo().capacity(), None);
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.bound
    }

    /// A handle for other threads to steal from this deque.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Worker;
    /// let w = Worker::new_lifo();
    /// let s = w.stealer();
    /// w.push(1);
    /// assert_eq!(std::thread::spawn(move || s.steal().success()).join().unwrap(), Some(1));
    /// ```
    pub fn stealer(&self) -> Stealer<T> {
        Stealer {
            inner: self.inner.clone(),
            flavor: self.flavor,
        }
    }

    /// Pushes without checking the bound.
    #[inline]
    fn push_unbounded(&self, value: T) {
        // SAFETY: we are the owner (`Worker` is `!Sync` and owns the only owner
        // handle), and `self.owner` is our state.
        unsafe { self.inner.push(&self.owner, value) };
    }

    /// Pushes an item.
    ///
    /// # Panics
    ///
    /// On a bounded worker that is full (use [`try_push`](Self::try_push)), and if
    /// the deque would exceed 2^30 items.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Worker;
    /// let w = Worker::new_fifo();
    /// w.push(1);
    /// assert_eq!(w.len(), 1);
    /// ```
    #[inline]
    pub fn push(&self, value: T) {
        if let Some(cap) = self.bound {
            assert!(self.inner.len() < cap, "push on a full bounded deque");
        }
        self.push_unbounded(value);
    }

    /// Pushes an item and tells whether the deque was empty just before (as far as
    /// the owner could see): the moment to wake a sleeping thief.
    ///
    /// # Panics
    ///
    /// As [`push`](Self::push).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Worker;
    /// let w = Worker::new_lifo();
    /// assert!(w.push_was_empty(1));
    /// assert!(!w.push_was_empty(2));
    /// ```
    pub fn push_was_empty(&self, value: T) -> bool {
        let was_empty = self.inner.len() == 0;
        self.push(value);
        was_empty
    }

    /// Pushes an item unless a bounded worker is full; then hands it back. Always
    /// succeeds on an unbounded worker below 2<sup>30</sup> items.
    ///
    /// # Panics
    ///
    /// As [`push`](Self::push), if an unbounded worker would hold more than
    /// 2<sup>30</sup> items.
    ///
    /// # Errors
    ///
    /// [`PushError`] holding `value` when the worker holds its bound of items.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Worker;
    /// let w = Worker::new_lifo_bounded(1);
    /// assert!(w.try_push(1).is_ok());
    /// assert_eq!(w.try_push(2).unwrap_err().into_inner(), 2);
    /// assert_eq!(w.pop(), Some(1));
    /// assert!(w.try_push(3).is_ok());
    /// ```
    pub fn try_push(&self, value: T) -> Result<(), PushError<T>> {
        if let Some(cap) = self.bound {
            if self.inner.len() >= cap {
                return Err(PushError(value));
            }
        }
        self.push_unbounded(value);
        Ok(())
    }

    /// Pops an item: the newest in a LIFO worker, the oldest in a FIFO one.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Worker;
    /// let w = Worker::new_lifo();
    /// assert_eq!(w.pop(), None);
    /// w.push(1);
    /// assert_eq!(w.pop(), Some(1));
    /// ```
    #[inline]
    pub fn pop(&self) -> Option<T> {
        // SAFETY: we are the owner (`Worker` is `!Sync` and owns the only owner
        // handle), and `self.owner` is our state.
        unsafe {
            match self.flavor {
                Flavor::Lifo => self.inner.pop_lifo(&self.owner),
                Flavor::Fifo => self.inner.pop_fifo(&self.owner),
            }
        }
    }

    /// Whether the deque is empty.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Worker;
    /// let w = Worker::<i32>::new_lifo();
    /// assert!(w.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.inner.len() == 0
    }

    /// The number of items (a snapshot: stealers may be taking some).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Worker;
    /// let w = Worker::new_lifo();
    /// w.push(1);
    /// w.push(2);
    /// assert_eq!(w.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Room left in a bounded worker (at least what is there now: stealers only add room).
    fn room(&self) -> usize {
        match self.bound {
            Some(cap) => cap.saturating_sub(self.inner.len()),
            None => usize::MAX,
        }
    }
}

impl<T> Drop for Inner<T> {
    fn drop(&mut self) {
        self.drain_on_drop();
    }
}

impl<T> fmt::Debug for Worker<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("flavor", &self.flavor)
            .field("bound", &self.bound)
            .finish_non_exhaustive()
    }
}

/// A handle that steals the oldest items of a [`Worker`]'s deque. `Clone`, `Send`
/// and `Sync`.
///
/// # Examples
///
/// ```
/// use atomkit::deque::{Steal, Worker};
/// let w = Worker::new_lifo();
/// let s = w.stealer();
/// w.push(1);
/// w.push(2);
/// assert_eq!(s.clone().steal(), Steal::Success(1));
/// ```
pub struct Stealer<T> {
    inner: Arc<Inner<T>>,
    flavor: Flavor,
}

impl<T> Clone for Stealer<T> {
    fn clone(&self) -> Self {
        Stealer {
            inner: self.inner.clone(),
            flavor: self.flavor,
        }
    }
}

impl<T> fmt::Debug for Stealer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stealer").finish_non_exhaustive()
    }
}

fn check_limit(limit: usize) {
    assert!(limit > 0, "steal limit must be at least 1");
}

/// Where steals take items from: a [`Stealer`]'s deque or the [`Injector`]. The
/// public steal methods of both are this one operation plus the helpers below.
trait Source<T> {
    /// Takes up to `max >= 1` items (at least one if any), oldest first, into `sink`.
    fn steal_into(&self, max: usize, sink: impl FnMut(T)) -> Steal<usize>;
}

impl<T> Steal<T> {
    /// Maps a success, keeping `Empty` and `Retry`.
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Steal<U> {
        match self {
            Steal::Success(t) => Steal::Success(f(t)),
            Steal::Empty => Steal::Empty,
            Steal::Retry => Steal::Retry,
        }
    }
}

/// One item from `src`.
fn steal_one<T>(src: &impl Source<T>) -> Steal<T> {
    let mut out = None;
    src.steal_into(1, |v| out = Some(v))
        .map(|_| out.expect("a successful steal takes an item"))
}

/// At most `limit` items (and at most what `src` allows) from `src` into `dest`.
fn steal_batch_into<T>(src: &impl Source<T>, dest: &Worker<T>, limit: usize) -> Steal<()> {
    check_limit(limit);
    let max = limit.min(dest.room());
    if max == 0 {
        return Steal::Empty;
    }
    src.steal_into(max, |v| dest.push_unbounded(v)).map(|_| ())
}

/// As `steal_batch_into`, but the oldest item is returned instead of pushed.
fn steal_batch_and_pop_into<T>(src: &impl Source<T>, dest: &Worker<T>, limit: usize) -> Steal<T> {
    check_limit(limit);
    let max = limit.min(dest.room().saturating_add(1));
    let mut first = None;
    src.steal_into(max, |v| {
        if first.is_none() {
            first = Some(v);
        } else {
            dest.push_unbounded(v);
        }
    })
    .map(|_| first.expect("a successful steal takes an item"))
}

impl<T> Source<T> for Stealer<T> {
    fn steal_into(&self, max: usize, sink: impl FnMut(T)) -> Steal<usize> {
        self.inner
            .steal_into(max, self.flavor == Flavor::Fifo, sink)
    }
}

impl<T> Stealer<T> {
    /// Steals the oldest item.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::{Steal, Worker};
    /// let w = Worker::new_lifo();
    /// w.push(1);
    /// w.push(2);
    /// assert_eq!(w.stealer().steal(), Steal::Success(1));
    /// ```
    pub fn steal(&self) -> Steal<T> {
        steal_one(self)
    }

    /// Steals a batch (up to half the items, at most 32) into `dest`.
    ///
    /// Returns `Success(())` when at least one item moved. Stolen items are pushed
    /// into `dest` oldest first. When `dest` is bounded and full, nothing moves and
    /// the result is `Empty`.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Worker;
    /// let w = Worker::new_fifo();
    /// for i in 0..10 { w.push(i); }
    /// let mine = Worker::new_fifo();
    /// assert!(w.stealer().steal_batch(&mine).is_success());
    /// assert_eq!(mine.len(), 5);
    /// assert_eq!(mine.pop(), Some(0));
    /// ```
    pub fn steal_batch(&self, dest: &Worker<T>) -> Steal<()> {
        self.steal_batch_with_limit(dest, MAX_BATCH)
    }

    /// Steals a batch of at most `limit` items (and at most half) into `dest`.
    ///
    /// # Panics
    ///
    /// If `limit` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Worker;
    /// let w = Worker::new_lifo();
    /// for i in 0..10 { w.push(i); }
    /// let mine = Worker::new_lifo();
    /// assert!(w.stealer().steal_batch_with_limit(&mine, 2).is_success());
    /// assert_eq!(mine.len(), 2);
    /// ```
    pub fn steal_batch_with_limit(&self, dest: &Worker<T>, limit: usize) -> Steal<()> {
        if Arc::ptr_eq(&self.inner, &dest.inner) {
            check_limit(limit);
            return if dest.is_empty() {
                Steal::Empty
            } else {
                Steal::Success(())
            };
        }
        steal_batch_into(self, dest, limit)
    }

    /// Steals a batch (up to half, at most 32), returns the oldest stolen item and
    /// pushes the rest into `dest`.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::{Steal, Worker};
    /// let w = Worker::new_fifo();
    /// for i in 0..6 { w.push(i); }
    /// let mine = Worker::new_fifo();
    /// assert_eq!(w.stealer().steal_batch_and_pop(&mine), Steal::Success(0));
    /// assert_eq!(mine.len(), 2);
    /// ```
    pub fn steal_batch_and_pop(&self, dest: &Worker<T>) -> Steal<T> {
        self.steal_batch_with_limit_and_pop(dest, MAX_BATCH)
    }

    /// Steals at most `limit` items (and at most half), returns the oldest and pushes
    /// the rest into `dest`.
    ///
    /// # Panics
    ///
    /// If `limit` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::{Steal, Worker};
    /// let w = Worker::new_fifo();
    /// for i in 0..6 { w.push(i); }
    /// let mine = Worker::new_fifo();
    /// assert_eq!(w.stealer().steal_batch_with_limit_and_pop(&mine, 2), Steal::Success(0));
    /// assert_eq!(mine.pop(), Some(1));
    /// assert_eq!(mine.pop(), None);
    /// ```
    pub fn steal_batch_with_limit_and_pop(&self, dest: &Worker<T>, limit: usize) -> Steal<T> {
        if Arc::ptr_eq(&self.inner, &dest.inner) {
            check_limit(limit);
            return match dest.pop() {
                Some(v) => Steal::Success(v),
                None => Steal::Empty,
            };
        }
        steal_batch_and_pop_into(self, dest, limit)
    }

    /// Whether the deque is empty (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Worker;
    /// let w = Worker::<i32>::new_lifo();
    /// assert!(w.stealer().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.inner.len() == 0
    }

    /// The number of items (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Worker;
    /// let w = Worker::new_lifo();
    /// w.push(1);
    /// assert_eq!(w.stealer().len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.inner.len()
    }
}

#[cfg(all(test, not(any(atomkit_loom, atomkit_shuttle))))]
mod tests {
    use super::chase_lev::{claimed, generation, RENEW_EVERY};
    use super::*;
    use crate::sync::atomic::Ordering;

    /// The generation of `w`'s heads word, and how far `h` is past the point where
    /// the generation last moved.
    fn state_of<T>(w: &Worker<T>) -> (u32, u32) {
        // Ordering: Relaxed; single-threaded test.
        let heads = w.inner.heads.load(Ordering::Relaxed);
        (
            generation(heads),
            claimed(heads).wrapping_sub(w.owner.renewed_at.get()),
        )
    }

    /// Checks the bound of I6 after every take: within one generation `h` moves less
    /// than `RENEW_EVERY` plus twice the capacity (one run beyond the point where the
    /// renewal fell due, and the items then in the deque), and the generation does
    /// move. Returns how many times it moved.
    fn check_renewals(n: u32, mut op: impl FnMut(u32) -> (u32, u32, u32)) -> u32 {
        let mut renewals = 0;
        let mut last_gen = None;
        for i in 0..n {
            let (g, since, cap) = op(i);
            assert!(
                since < RENEW_EVERY + 2 * cap,
                "h is {since} past the last generation move"
            );
            if last_gen.is_some_and(|l| l != g) {
                renewals += 1;
            }
            last_gen = Some(g);
        }
        renewals
    }

    /// `(generation, distance, capacity)` of `w` now, for `check_renewals`.
    fn record<T>(w: &Worker<T>) -> (u32, u32, u32) {
        let (g, since) = state_of(w);
        // SAFETY: the owner's buffer is alive while the owner holds it (I5).
        let cap = unsafe { (*w.owner.buffer.get()).cap() } as u32;
        (g, since, cap)
    }

    /// A FIFO owner that pops as fast as it pushes never runs out of free slots, so
    /// without the renewal it would keep one generation forever while `h` goes round
    /// its 32 bits (I6). With it, `h` stays within the bound of one generation move
    /// and no item is lost or repeated.
    #[test]
    fn a_fifo_owner_popping_as_fast_as_it_pushes_renews_the_generation() {
        let w = Worker::new_fifo();
        for i in 0..8u32 {
            w.push(i);
        }
        let mut next_out = 0u32;
        let n = if cfg!(miri) { 800 } else { 5_000u32 };
        let renewals = check_renewals(n, |i| {
            w.push(i + 8);
            assert_eq!(w.pop(), Some(next_out));
            next_out += 1;
            record(&w)
        });
        assert!(renewals >= n / (RENEW_EVERY + 2 * 64));
        while let Some(v) = w.pop() {
            assert_eq!(v, next_out);
            next_out += 1;
        }
        assert_eq!(next_out, n + 8);
    }

    /// The same for items taken by a thief from a LIFO owner that keeps its length
    /// steady: the owner's refills renew the generation.
    #[test]
    fn a_lifo_owner_robbed_at_its_push_rate_renews_the_generation() {
        let w = Worker::new_lifo();
        let s = w.stealer();
        let mut stolen = Vec::new();
        let n = if cfg!(miri) { 800 } else { 5_000u32 };
        let renewals = check_renewals(n, |i| {
            w.push(i);
            match s.steal() {
                Steal::Success(v) => stolen.push(v),
                other => panic!("steal from a non-empty deque: {other:?}"),
            }
            record(&w)
        });
        assert!(renewals >= n / (RENEW_EVERY + 2 * 64));
        assert_eq!(stolen, (0..n).collect::<Vec<_>>());
    }

    /// A deque larger than the renewal distance, kept about half full by a FIFO
    /// owner: renewals copy a buffer that holds items, and none is lost.
    #[test]
    fn renewals_copy_a_deque_that_holds_items() {
        let w = Worker::new_fifo();
        let len = 2 * RENEW_EVERY;
        for i in 0..len {
            w.push(i);
        }
        let mut next_out = 0u32;
        let n = if cfg!(miri) { 800 } else { 5_000u32 };
        let renewals = check_renewals(n, |i| {
            w.push(len + i);
            assert_eq!(w.pop(), Some(next_out));
            next_out += 1;
            record(&w)
        });
        assert!(renewals >= 1);
        while let Some(v) = w.pop() {
            assert_eq!(v, next_out);
            next_out += 1;
        }
        assert_eq!(next_out, n + len);
    }

    /// An item that counts its drops, so that one lost or dropped twice shows.
    struct Item(u32, std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl Drop for Item {
        fn drop(&mut self) {
            self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// A steal with nobody else running: never `Retry`.
    fn steal_alone(s: &Stealer<Item>) -> Option<Item> {
        match s.steal() {
            Steal::Success(item) => Some(item),
            Steal::Empty => None,
            Steal::Retry => panic!("a steal answered Retry with nobody else running"),
        }
    }

    /// Each allocation of a buffer replacement in turn fails, as under an
    /// allocation-error handler that panics: the push that grew the deque unwinds
    /// (dropping its item), and the deque is whole. Stealers are not turned away for
    /// good, the owner's next writes land where the stealers read, and every other
    /// item is taken once. Before, the buffer's box and the epoch pin were allocated
    /// after the generation bump (every steal answered `Retry` until the next
    /// replacement), and the retirement of the old buffer came before the owner
    /// recorded the new one (it went on writing the old buffer: a LIFO owner's pop and
    /// push left a stealer the popped item's bits, taken twice).
    #[test]
    fn a_failed_allocation_in_a_resize_leaves_the_deque_whole() {
        use super::chase_lev::{alloc_fault, MIN_CAP};
        use std::panic::{catch_unwind, AssertUnwindSafe};
        let min = MIN_CAP as u32;
        for fifo in [false, true] {
            let mut points = 0;
            loop {
                let drops = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let item = |i| Item(i, drops.clone());
                let w = if fifo {
                    Worker::new_fifo()
                } else {
                    Worker::new_lifo()
                };
                let s = w.stealer();
                for i in 0..min {
                    w.push(item(i));
                }
                // The deque is full: this push replaces the buffer.
                alloc_fault::fail_at(Some(points));
                let grew = catch_unwind(AssertUnwindSafe(|| w.push(item(min))));
                alloc_fault::fail_at(None);
                if grew.is_ok() {
                    break; // past the last allocation point
                }
                let point = points;
                points += 1;
                let mut taken = vec![steal_alone(&s).expect("the deque holds items").0];
                taken.push(w.pop().expect("the deque holds items").0);
                w.push(item(1000));
                while let Some(it) = steal_alone(&s) {
                    taken.push(it.0);
                }
                // A later replacement works too.
                for i in 0..2 * min {
                    w.push(item(2000 + i));
                }
                while let Some(it) = w.pop() {
                    taken.push(it.0);
                }
                taken.sort_unstable();
                let expected: Vec<u32> =
                    (0..min).chain([1000]).chain(2000..2000 + 2 * min).collect();
                assert_eq!(taken, expected, "fifo {fifo}, allocation point {point}");
                drop((w, s));
                assert_eq!(
                    drops.load(std::sync::atomic::Ordering::Relaxed),
                    expected.len() + 1,
                    "fifo {fifo}, allocation point {point}: drops"
                );
            }
            assert!(
                points >= 4,
                "a resize has 4 allocation points, {points} reached"
            );
        }
    }
}
