//! A bounded multi-producer multi-consumer queue that is lock-free in the strict
//! sense: a thread suspended anywhere inside [`push`](ArrayQueue::push) or
//! [`pop`](ArrayQueue::pop) never stops other threads from finishing theirs.
//!
//! [`ArrayQueue`] has crossbeam-queue's `ArrayQueue` API, so code ports by changing
//! one import. Unlike it (and unlike `std`'s channels built the same way), no
//! operation ever waits for a slot another thread has claimed but not yet filled or
//! emptied: with crossbeam, a producer preempted between claiming a slot and writing
//! it makes every consumer spin on that slot until the producer runs again.
//!
//! ```
//! use atomkit::queue::ArrayQueue;
//! use std::sync::Arc;
//! use std::thread;
//!
//! let q = Arc::new(ArrayQueue::new(64));
//! let producer = {
//!     let q = q.clone();
//!     thread::spawn(move || {
//!         for i in 0..1000u64 {
//!             let mut v = i;
//!             while let Err(back) = q.push(v) {
//!                 v = back; // full: try again
//!                 thread::yield_now();
//!             }
//!         }
//!     })
//! };
//! let mut sum = 0;
//! let mut got = 0;
//! while got < 1000 {
//!     match q.pop() {
//!         Some(v) => {
//!             sum += v;
//!             got += 1;
//!         }
//!         None => thread::yield_now(),
//!     }
//! }
//! producer.join().unwrap();
//! assert_eq!(sum, 999 * 1000 / 2);
//! ```
//!
//! # Implementation
//!
//! SCQ, the Scalable Circular Queue of R. Nikolaev, "A Scalable, Portable, and
//! Memory-Efficient Lock-Free FIFO Queue" (DISC 2019), in its indirect form (§5):
//! values sit in a data array of `capacity` slots, and slot indices are passed
//! around through two SCQ rings (`ring.rs`).
//!
//! - `fq` holds the indices of free slots (initially all of them, in order), `aq`
//!   the indices of full slots in FIFO order (initially none).
//! - `push`: take an index from `fq` (none: the queue is full), write the value into
//!   that slot, append the index to `aq`.
//! - `pop`: take an index from `aq` (none: the queue is empty), move the value out
//!   of that slot, append the index to `fq`.
//! - `force_push`: a `push`; if `fq` is empty, a `pop` whose slot is refilled with
//!   the new value and appended to `aq` (retrying the `push` if `aq` was empty too).
//!
//! Free slots go back to `fq` in FIFO order, so a producer reuses the slot freed
//! longest ago, not the one a consumer on another core has just touched. (A
//! Treiber stack of free indices was tried: one CAS per take or give made the
//! uncontended pair about 25% cheaper, but producers and consumers then CAS one
//! shared word per value, and with threads on different cores it was 1.1-2x slower
//! at capacity 1024. The ring keeps producers on `fq`'s `head` and consumers on its
//! `tail`, in different cache lines.)
//!
//! Each ring (the paper's Figure 8) has `2n` entries for at most `n`
//! indices, `n` = `capacity` rounded up to a power of two, and three counters in
//! their own cache lines: `head` and `tail` are positions (`u64`, starting at `2n`,
//! only ever increased) handed out by fetch-and-add, so producers never retry on a
//! contended CAS; the position's lap (`position / 2n`) is its *cycle*. An entry is
//! one `AtomicU64`:
//!
//! | bits                 | field   | meaning |
//! |----------------------|---------|---------|
//! | `0 .. order`         | index   | a slot index, or all ones (⊥): none |
//! | `order`              | safe    | cleared by a dequeuer that passed while an older index sat here |
//! | `order + 1 .. 64`    | cycle   | the lap of the position that last wrote it |
//!
//! where `order = log2(2n)`. With 16 entries or more, position `p`'s entry is
//! remapped so that consecutive positions are spread apart: on different cache lines
//! from 64 entries up, 2 or 4 entries (16 or 32 bytes) apart with 16 or 32 entries.
//! Cycles do not wrap before `2^63` operations on one ring.
//!
//! Invariants (1-3, 5, 6 and 8 are each ring's, 4 and 7 the queue's):
//!
//! 1. At most `n` indices are in a ring at a time (there are only `capacity <= n`
//!    indices, and each is in one place at a time, invariant 7), so an
//!    enqueue always finds a free entry within a bounded number of positions
//!    (the paper's Lemma 4.2); an enqueue into the ring therefore never fails, a
//!    dequeue fails only on an empty ring, and each step is bounded (lock-free).
//! 2. Position `p` is handed to exactly one enqueuer and one dequeuer. Only they
//!    write cycle `p / 2n` into entry `p`: the enqueuer with its index (if the entry
//!    is still of an older cycle and empty), or the dequeuer with ⊥ (if it arrives
//!    first, which voids the position: the enqueuer's CAS fails and it takes a new
//!    position). So a dequeuer that finds its own cycle there finds its own index.
//! 3. An unsafe entry is reused by an enqueuer at position `t` only if `head <= t`,
//!    i.e. the dequeuer for `t` has not passed yet. The dequeuer that cleared `safe`
//!    took its position before its Release CAS on the entry, which the enqueuer
//!    acquires before reading `head`; so it never reads a `head` from before that
//!    dequeuer passed.
//! 4. A data slot is written only by the thread holding its index taken from `fq`,
//!    and read only by the thread holding it taken from `aq`; the index travels
//!    through each ring by a Release CAS (enqueue) and an Acquire load (dequeue):
//!    through `aq` this orders the slot's write before its read, through `fq` the
//!    read before the next write.
//! 5. The threshold is reset to `3n - 1` after every enqueue and decremented by
//!    every failed dequeue attempt; once it is negative, dequeuers stop taking
//!    positions. That bounds the work of dequeuers racing ahead of enqueuers (the
//!    livelock SCQ is named for avoiding). An enqueuer skips the reset when it
//!    reads `3n - 1` already (so the line stays shared), and dequeuers that voided
//!    their positions before an enqueue may count those failures after it: so the
//!    threshold can be exhausted while an index waits at `head`. Hence an exhausted
//!    threshold is never taken for "empty" by itself: a dequeuer that finds it
//!    negative (or makes it so) rechecks, scanning the positions from `head` to
//!    `tail` for a published index; if one is there it resets the threshold and
//!    goes on, else the ring was empty for it. Every such dequeuer rechecks on its
//!    own, so none waits for the one whose decrement exhausted the threshold (it
//!    may be suspended before its recheck). A reset needs a published index, which
//!    dequeuers then take, so dequeuers racing enqueuers still stop.
//! 6. A dequeue that reads `head` (`h`), then the entry for `h` holding no index of
//!    `h`'s cycle, then `tail <= h + 1`, returns "empty" without taking a position,
//!    linearized when it read the entry: every position below `h` had been handed
//!    to a dequeuer (`head` only grows), which takes the index published there or
//!    voids the position (invariant 2); position `h` held no index; and no position
//!    past `h` had been handed to an enqueuer yet (`tail` only grows). This is the
//!    paper's own "empty" condition (`tail <= h + 1` after a failed attempt at
//!    `h`), tested before the attempt instead of after it: polling an empty queue
//!    then costs four loads (`tail`, `head`, the entry, the threshold), not a fetch-and-add on `head`, a CAS voiding a
//!    position that an enqueuer must then give up, a CAS on `tail` and a decrement
//!    of the threshold. (An enqueuer that has taken position `h` but not yet
//!    published there is left to finish.)
//! 7. An index is in at most one place at a time: in `fq`, in `aq`, or in one
//!    thread's hands (a ring hands each enqueued index to exactly one dequeuer,
//!    invariant 2). `fq` is empty exactly when every index is in `aq` or held by an
//!    operation in progress: that is "full".
//! 8. (closing, used by the channel; the public API never closes a queue) The top
//!    bit of a ring's `tail` is its closed flag, set by one `fetch_or`. An enqueue
//!    whose fetch-and-add on `tail` returns the bit fails (its position is void,
//!    and the dequeuer that reaches it voids it like any other); as
//!    read-modify-writes of one word, the fetch-and-adds and the `fetch_or` are
//!    totally ordered, so an enqueue succeeds only if it took its position before
//!    the close. `catchup` keeps the bit. On a closed ring, a dequeuer that must know
//!    whether anything is left (`dequeue_closed`) does not stop at "looks empty": it
//!    takes every position below `tail` and settles it (consumes the index there, or
//!    voids the position so that its enqueuer, if still on its way, fails), and
//!    answers "nothing left" only once `head` reaches `tail`. The pushes that close
//!    `aq` hand their slot index back to `fq` and their value to the caller.
//!
//! What is *not* promised:
//!
//! - [`len`](ArrayQueue::len) is a snapshot: the smaller of `aq`'s `tail - head`
//!   and the capacity minus `fq`'s `tail - head`. Each counts at least the values
//!   present when it was read: the first also counts positions of `aq` that no
//!   value will fill until dequeuers pass them (pushes that a close refused), the
//!   second also counts slots that a `push` or `pop` in progress holds. So it may
//!   exceed the number of values while operations are in flight, but is exact when
//!   the queue is quiet, and never above the capacity.
//! - "Full" means every slot is in use: holding a value, or held by a `push` or
//!   `pop` in progress. With capacity 1, a `push` suspended after taking the slot
//!   makes another `push` fail and a `pop` see "empty" at the same time, which no
//!   sequential queue does; crossbeam's queue has the same window but answers it
//!   by making the `pop` wait. Histories that never fill the queue are
//!   linearizable (checked in the shuttle tests).
//! - `force_push` on a full queue is a `pop` then a `push`, two linearization
//!   points: a racing `pop` can make it replace a value in a queue that was no
//!   longer full (see its doc).
//!
//! ## Memory orderings
//!
//! - Entry CAS in enqueue: `SeqCst` on success (its Release half publishes the
//!   index and the data slot written before it; `SeqCst` for the threshold,
//!   below); entry load and consume (`fetch_or`) in dequeue: `Acquire`
//!   (pairs with it) and `AcqRel` (Release keeps invariant 3). Dequeuer CAS that
//!   voids or marks an entry: `AcqRel` (invariant 3).
//! - `head` fetch-and-add: `AcqRel`; `tail` fetch-and-add: `SeqCst` (below).
//! - Closing (invariant 8): the `fetch_or` on `tail` is `AcqRel`, its Release half
//!   pairing with the `Acquire` load that reports the ring closed; whether an
//!   enqueue comes before or after it needs no ordering beyond atomicity (both
//!   read-modify-write `tail`). `dequeue_closed` loads `head` and then `tail`, both
//!   `Acquire`, like the empty check below.
//!   Positions need only atomicity; the stronger orderings are free on x86 (every
//!   RMW is a full barrier) and keep the counter reads that follow entry
//!   acquisitions simple to argue.
//! - The threshold is a store-load (Dekker) pairing: an enqueuer publishes its entry
//!   then reads the threshold (to skip the write when it is already `3n - 1`), a
//!   dequeuer that read or made a negative threshold then reads `tail` and the
//!   entries (invariant 5's recheck). The enqueuer's side is `SeqCst` accesses: its
//!   `tail` fetch-and-add, its entry CAS and its threshold load; the dequeuer's side
//!   is a `SeqCst` decrement or load of the threshold followed by a `SeqCst` fence
//!   before its re-reads. In the single total order of `SeqCst` operations, either
//!   the enqueuer's threshold load reads the exhausting decrement (then it resets
//!   the threshold), or the load, and with it the enqueuer's FAA and CAS sequenced
//!   before it, precede the decrement and so the fence; a load sequenced after a
//!   `SeqCst` fence sees every `SeqCst` modification that precedes the fence in
//!   that order (C++20 \[atomics.order\], which Rust follows), so the dequeuer finds
//!   the index even when the enqueue is concurrent with it. On x86 a `SeqCst` CAS or
//!   RMW is the same `lock`-prefixed instruction as an `AcqRel` one and a `SeqCst`
//!   load a plain load, so the hot path pays no fence (an earlier version had a
//!   `fence(SeqCst)` after the entry CAS: about 5 ns per enqueue, two per push+pop
//!   pair); on AArch64 a `SeqCst` CAS ends with a release store and a `SeqCst` load
//!   is `ldar`, which is not reordered before it. loom models `SeqCst` fences but
//!   treats `SeqCst` loads and read-modify-writes as `AcqRel`, so under `--cfg
//!   atomkit_loom` the enqueuer also runs the fence that its `SeqCst` accesses stand
//!   for. Since every dequeuer that finds the threshold exhausted rechecks (it once
//!   trusted the one that exhausted it), a pop that happens after a push finds its
//!   index through that happens-before alone, so no model fails any more when
//!   either side of the pairing is removed: the pairing now only makes a recheck
//!   see an enqueue that is concurrent with it, which no model observes.
//! - The emptiness check before a dequeue (invariant 6) loads `head` and the entry
//!   `Acquire`, then `tail`. The Acquires synchronise with the RMWs that wrote what
//!   they read (the `head` FAA and the consuming `fetch_or`, both `AcqRel`), so every
//!   push ordered before those is ordered before the `tail` load: the check never
//!   pairs a new `head` or entry with an older `tail`. With either load `Relaxed`,
//!   the loom model `empty_check_sees_pushes_ordered_before_what_it_read` finds a
//!   pop answering `None` while the queue held a value throughout.
//! - Resets are `swap`s rather than stores: equivalent on hardware, but loom 0.7
//!   can order a plain store before a read-modify-write that the storing thread
//!   already read from (a coherence violation in the model), which showed up as
//!   false "stranded index" failures.
//! - The data slots are plain cells ordered by invariant 4.

mod ring;

#[cfg(all(atomkit_stall, not(any(atomkit_loom, atomkit_shuttle))))]
#[doc(hidden)]
pub mod stall;
#[cfg(not(all(atomkit_stall, not(any(atomkit_loom, atomkit_shuttle)))))]
mod stall;

use crate::sync::UnsafeCell;
use core::fmt;
use core::mem::MaybeUninit;
use ring::Ring;
use stall::point;

/// The largest capacity [`ArrayQueue::new`] accepts: `2^31` slots on 64-bit targets,
/// `2^26` on 32-bit ones. A queue of capacity `cap` has two rings of
/// `2 * cap.next_power_of_two()` 8-byte entries, and on a 32-bit target a ring for
/// more than `2^26` slots would have more bytes than an allocation may have there
/// (`isize::MAX`); from `2^30` on, its entry count would not even fit a `usize`.
pub const MAX_CAPACITY: usize = if usize::BITS >= 64 { 1 << 31 } else { 1 << 26 };

// The rings of every capacity up to the maximum have a size an allocation may have
// (and so every size computed in `new` fits a `usize`).
const _: () = assert!(MAX_CAPACITY.is_power_of_two() && MAX_CAPACITY <= isize::MAX as usize / 16);

/// A bounded lock-free MPMC FIFO queue (SCQ).
///
/// The API is crossbeam-queue's `ArrayQueue`; see the [module
/// documentation](self) for the algorithm and the guarantees.
///
/// # Examples
///
/// ```
/// use atomkit::queue::ArrayQueue;
///
/// let q = ArrayQueue::new(2);
/// assert_eq!(q.push('a'), Ok(()));
/// assert_eq!(q.push('b'), Ok(()));
/// assert_eq!(q.push('c'), Err('c')); // full: the value comes back
/// assert_eq!(q.pop(), Some('a'));
/// ```
pub struct ArrayQueue<T> {
    /// Indices of full slots, oldest first.
    aq: Ring,
    /// Indices of free slots.
    fq: Ring,
    /// The values; slot `i` is initialised exactly while index `i` is in `aq` or in
    /// the hands of a `pop` that took it from `aq` (invariant 4).
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
}

// SAFETY: the queue owns its values and hands each one to exactly one thread (the one
// whose `pop` takes its index), so sending the queue sends `T`s: `T: Send` suffices.
unsafe impl<T: Send> Send for ArrayQueue<T> {}
// SAFETY: sharing the queue lets any thread move `T`s in and out, never share a `&T`
// between threads (slots are accessed only by the thread holding their index,
// invariant 4), so `T: Send` suffices, as for `Mutex<T>`.
unsafe impl<T: Send> Sync for ArrayQueue<T> {}

impl<T> ArrayQueue<T> {
    /// Creates an empty queue that holds at most `cap` values.
    ///
    /// Memory: `cap` slots of `T`, plus two rings of `2 * cap.next_power_of_two()`
    /// 8-byte entries.
    ///
    /// # Panics
    ///
    /// Panics with "capacity must be non-zero" if `cap` is 0, and with "capacity
    /// overflow" if `cap` exceeds [`MAX_CAPACITY`] (on every target, whatever the
    /// size; the standard library's own "capacity overflow" if `cap` values of `T`
    /// take more bytes than an allocation may have).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = atomkit::queue::ArrayQueue::<u64>::new(100);
    /// assert_eq!(q.capacity(), 100);
    /// ```
    pub fn new(cap: usize) -> ArrayQueue<T> {
        assert!(cap > 0, "capacity must be non-zero");
        assert!(
            cap <= MAX_CAPACITY,
            "capacity overflow: {cap} exceeds ArrayQueue's maximum of {MAX_CAPACITY}"
        );
        let n = cap.next_power_of_two();
        ArrayQueue {
            aq: Ring::new_empty(n),
            fq: Ring::new_full(n, cap),
            slots: (0..cap)
                .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
                .collect(),
        }
    }

    /// Appends `value` at the back, or hands it back if the queue is full.
    ///
    /// Lock-free: finishes in a bounded number of its own steps whatever other
    /// threads do, including stopping midway.
    ///
    /// # Errors
    ///
    /// `Err(value)` if the queue is full.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = atomkit::queue::ArrayQueue::new(1);
    /// assert_eq!(q.push(10), Ok(()));
    /// assert_eq!(q.push(20), Err(20));
    /// ```
    pub fn push(&self, value: T) -> Result<(), T> {
        match self.fq.dequeue() {
            Some(i) => {
                self.fill(i, value);
                Ok(())
            }
            None => Err(value),
        }
    }

    /// Appends `value`; if the queue is full, first removes the oldest value and
    /// returns it.
    ///
    /// Linearizes as a [`pop`](Self::pop) followed by a [`push`](Self::push) when it
    /// replaces, and those are two steps, not one: it decides to replace when it
    /// finds the queue full, and a `pop` that completes between that check and its
    /// own removal leaves it replacing in a queue that has room again (with `[a, b]`
    /// full and a racing `pop` taking `a`, it can return `b` and leave `[c]`).
    /// crossbeam's `force_push` replaces in one atomic step. Nothing is lost either
    /// way: every value is popped, returned, or still queued. It is lock-free as long
    /// as fewer than `capacity` other operations
    /// are suspended midway (each may hold one slot; with all of them held there is no
    /// slot to put the value in, and this call retries until one is let go).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = atomkit::queue::ArrayQueue::new(2);
    /// assert_eq!(q.force_push(1), None);
    /// assert_eq!(q.force_push(2), None);
    /// assert_eq!(q.force_push(3), Some(1));
    /// assert_eq!(q.pop(), Some(2));
    /// ```
    pub fn force_push(&self, value: T) -> Option<T> {
        loop {
            if let Some(i) = self.fq.dequeue() {
                self.fill(i, value);
                return None;
            }
            if let Some(i) = self.aq.dequeue() {
                point("force_push: took a full slot");
                // SAFETY: index `i` came from `aq`, so slot `i` holds a value and only
                // this thread may touch it until the index is enqueued again
                // (invariant 4).
                let old = unsafe { self.slots[i as usize].with_mut(|p| (*p).assume_init_read()) };
                self.fill(i, value);
                return Some(old);
            }
            // Every slot is in another thread's hands right now: try again.
            crate::sync::spin_loop();
        }
    }

    /// Writes `value` into slot `i`, taken from `fq` (or just emptied), and appends
    /// `i` to `aq`.
    #[inline]
    fn fill(&self, i: u64, value: T) {
        point("push: took a free slot");
        // SAFETY: index `i` is held by this thread alone (taken from `fq`, or taken from
        // `aq` and its value moved out), so slot `i` is uninitialised and no other
        // thread accesses it until `aq.enqueue(i)` publishes it (invariant 4).
        unsafe {
            self.slots[i as usize].with_mut(|p| {
                (*p).write(value);
            })
        };
        point("push: wrote the value");
        // A failed enqueue here would lose slot `i` for good: only
        // `push_unless_closed` may push to a closed queue.
        let published = self.aq.enqueue(i);
        assert!(published, "push or force_push on a closed queue");
    }

    /// [`push`](Self::push) that fails on a closed queue (see [`close`]): `Err` with
    /// the value and `true` if the queue was closed, `false` if it was full and open.
    /// The push succeeds exactly when its position in `aq` was taken before the close
    /// (invariant 8).
    ///
    /// [`close`]: ArrayQueue::close
    #[inline]
    pub(crate) fn push_unless_closed(&self, value: T) -> Result<(), (T, bool)> {
        let Some(i) = self.fq.dequeue() else {
            // Full; a close that came first makes it "closed" (both held at this
            // point: a close is never undone).
            return Err((value, self.aq.is_closed()));
        };
        point("push: took a free slot");
        // SAFETY: as in `fill`: index `i` is ours alone until `aq.enqueue(i)`.
        unsafe {
            self.slots[i as usize].with_mut(|p| {
                (*p).write(value);
            })
        };
        point("push: wrote the value");
        if self.aq.enqueue(i) {
            return Ok(());
        }
        // Closed: `i` was never published, so the value is still ours alone.
        // SAFETY: written just above and not published; no other thread reads slot
        // `i` until `fq.enqueue(i)` hands the index out again.
        let value = unsafe { self.slots[i as usize].with_mut(|p| (*p).assume_init_read()) };
        self.free(i);
        Err((value, true))
    }

    /// Hands slot index `i`, whose value has been moved out, back to `fq`.
    #[inline]
    fn free(&self, i: u64) {
        let freed = self.fq.enqueue(i);
        debug_assert!(freed, "fq is never closed");
    }

    /// Closes the queue for [`push_unless_closed`](Self::push_unless_closed): every
    /// push through it that had not taken its position fails from now on. `true` if
    /// this call closed it. `pop` goes on; [`pop_closed`](Self::pop_closed) tells
    /// when nothing is left. The plain `push` must not be used after a close.
    pub(crate) fn close(&self) -> bool {
        self.aq.close()
    }

    /// Whether [`close`](Self::close) has been called.
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.aq.is_closed()
    }

    /// On a closed queue: removes the front value, or returns `None` once the queue
    /// is empty for good: every push that succeeded has had its value popped, and
    /// every other one fails. Lock-free: it never waits for a push in progress, it
    /// makes that push fail instead (invariant 8).
    pub(crate) fn pop_closed(&self) -> Option<T> {
        let i = self.aq.dequeue_closed()?;
        // SAFETY: as in `pop`: index `i` came from `aq`.
        let value = unsafe { self.slots[i as usize].with_mut(|p| (*p).assume_init_read()) };
        self.free(i);
        Some(value)
    }

    /// Removes the value at the front, or returns `None` if the queue is empty.
    ///
    /// Lock-free, like [`push`](Self::push).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = atomkit::queue::ArrayQueue::new(4);
    /// assert_eq!(q.pop(), None);
    /// q.push(7).unwrap();
    /// assert_eq!(q.pop(), Some(7));
    /// ```
    pub fn pop(&self) -> Option<T> {
        let i = self.aq.dequeue()?;
        point("pop: took a full slot");
        // SAFETY: index `i` came from `aq`, so slot `i` holds a value published by the
        // enqueue we acquired, and no other thread accesses it until `fq.give(i)`
        // (invariant 4).
        let value = unsafe { self.slots[i as usize].with_mut(|p| (*p).assume_init_read()) };
        point("pop: read the value");
        self.free(i);
        Some(value)
    }

    /// The maximum number of values the queue holds.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(atomkit::queue::ArrayQueue::<i32>::new(3).capacity(), 3);
    /// ```
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// The number of values in the queue: a snapshot that may be stale by the time it
    /// returns. Exact when no other thread is using the queue, except that after
    /// contended use it may over-count a non-empty queue (see the [module
    /// documentation](self)); never above the capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// let q = atomkit::queue::ArrayQueue::new(4);
    /// q.push(1).unwrap();
    /// q.push(2).unwrap();
    /// assert_eq!(q.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        let cap = self.capacity() as u64;
        // See "What is *not* promised" in the module doc: both bounds hold, and the
        // second is exact when quiet even after a close refused pushes (which leave
        // positions in `aq` that only dequeuers passing them remove).
        let in_use = cap.saturating_sub(self.fq.span());
        self.aq.span().min(in_use).min(cap) as usize
    }

    /// Whether the queue is empty (a snapshot, as [`len`](Self::len)).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = atomkit::queue::ArrayQueue::new(4);
    /// assert!(q.is_empty());
    /// q.push(1).unwrap();
    /// assert!(!q.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the queue is full (a snapshot, as [`len`](Self::len)).
    ///
    /// # Examples
    ///
    /// ```
    /// let q = atomkit::queue::ArrayQueue::new(1);
    /// assert!(!q.is_full());
    /// q.push(1).unwrap();
    /// assert!(q.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.len() == self.capacity()
    }
}

impl<T> ArrayQueue<T> {
    /// Both rings' counters and entries, for debugging a
    /// failing loom model.
    #[cfg(atomkit_loom)]
    #[doc(hidden)]
    pub fn dump(&self) -> String {
        format!("aq: {}\nfq: {}", self.aq.dump(), self.fq.dump())
    }
}

impl<T> ArrayQueue<T> {
    /// Runs the bookkeeping of one failed `pop` attempt (a unit of the ring's
    /// threshold, and the recheck when that exhausts it) without the attempt, for
    /// the loom models of the threshold. Returns whether the threshold was left
    /// exhausted with no index waiting.
    #[cfg(atomkit_loom)]
    #[doc(hidden)]
    pub fn model_failed_pop_attempt(&self) -> bool {
        self.aq.model_failed_attempt()
    }
}

impl<T> Drop for ArrayQueue<T> {
    fn drop(&mut self) {
        if !core::mem::needs_drop::<T>() {
            return;
        }
        /// Drops what is left if a value's `Drop` panics, as a `Vec` does (a second
        /// panic, during the unwind, aborts).
        struct Rest<'a, T>(&'a ArrayQueue<T>);
        impl<T> Drop for Rest<'_, T> {
            fn drop(&mut self) {
                while self.0.pop().is_some() {}
            }
        }
        let rest = Rest(self);
        while rest.0.pop().is_some() {}
    }
}

impl<T> fmt::Debug for ArrayQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArrayQueue")
            .field("capacity", &self.capacity())
            .finish_non_exhaustive()
    }
}

/// An owning iterator over a queue's values, front to back: see
/// [`ArrayQueue::into_iter`](struct.ArrayQueue.html#impl-IntoIterator-for-ArrayQueue<T>).
///
/// # Examples
///
/// ```
/// let q = atomkit::queue::ArrayQueue::new(3);
/// q.push(1).unwrap();
/// q.push(2).unwrap();
/// let v: Vec<i32> = q.into_iter().collect();
/// assert_eq!(v, [1, 2]);
/// ```
pub struct IntoIter<T> {
    queue: ArrayQueue<T>,
}

impl<T> fmt::Debug for IntoIter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter").finish_non_exhaustive()
    }
}

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.queue.pop()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // `len` never under-counts, so it is an upper bound.
        (0, Some(self.queue.len()))
    }
}

impl<T> core::iter::FusedIterator for IntoIter<T> {}

impl<T> IntoIterator for ArrayQueue<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    /// Drains the queue front to back; values not taken are dropped with the iterator.
    fn into_iter(self) -> IntoIter<T> {
        IntoIter { queue: self }
    }
}
