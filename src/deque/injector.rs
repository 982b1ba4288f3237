//! The global queue: an unbounded lock-free MPMC queue of blocks with the stealer API.
//!
//! Invariants (cited as J1..J4):
//!
//! 1. A slot of a block is written once, by the pusher whose `fetch_add` on the
//!    block's `pushed` counter returned its index, and then marked ready (Release).
//! 2. A slot is read once, by the stealer whose CAS on the block's `taken` counter
//!    moved past it; a stealer only claims slots it saw ready (Acquire), so the read
//!    happens after the write and races nothing.
//! 3. A block gets a successor only once all its slots are handed out
//!    (`pushed >= BLOCK`); `head` moves past a block only once all its slots are taken
//!    (`taken == BLOCK`), so every value in it has been moved out.
//! 4. A block is retired (epoch) by the one stealer whose CAS moved `head` past it;
//!    `tail` has moved past it by then or is moved by a thread still pinned.

use super::{
    steal_batch_and_pop_into, steal_batch_into, steal_one, Reclaim, Source, Steal, Worker,
    MAX_BATCH,
};
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::UnsafeCell;
use core::fmt;
use core::mem::MaybeUninit;
use crossbeam_epoch::{self as epoch, Atomic, Guard, Owned, Shared};
use crossbeam_utils::CachePadded;

/// Slots per block; small under the model checkers so that models cross blocks.
#[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
const BLOCK: usize = 63;
#[cfg(any(atomkit_loom, atomkit_shuttle))]
const BLOCK: usize = 2;

struct Slot<T> {
    /// Set once the value is written (J1). Written by the pusher, read by stealers.
    ready: AtomicBool,
    value: UnsafeCell<MaybeUninit<T>>,
}

struct Block<T> {
    /// Index of slot 0 in the whole queue, for `len`. Immutable once linked.
    start: usize,
    /// The successor, linked once (J3). Written by one pusher's CAS.
    next: Atomic<Block<T>>,
    /// Slots handed out to pushers; may run past `BLOCK` (those pushers move on).
    /// On its own cache line: pushers and stealers hammer different counters.
    pushed: CachePadded<AtomicUsize>,
    /// Slots claimed by stealers, at most `BLOCK` (J2). On its own cache line.
    taken: CachePadded<AtomicUsize>,
    slots: [Slot<T>; BLOCK],
}

impl<T> Block<T> {
    fn new(start: usize) -> Self {
        Block {
            start,
            next: Atomic::null(),
            pushed: CachePadded::new(AtomicUsize::new(0)),
            taken: CachePadded::new(AtomicUsize::new(0)),
            slots: core::array::from_fn(|_| Slot {
                ready: AtomicBool::new(false),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            }),
        }
    }
}

/// The global queue of a work-stealing pool: unbounded, lock-free, any number of
/// pushers and stealers, with the same steal methods as [`Stealer`](super::Stealer).
///
/// # Examples
///
/// ```
/// use atomkit::deque::{Injector, Steal};
/// let q = Injector::new();
/// q.push(1);
/// q.push(2);
/// assert_eq!(q.steal(), Steal::Success(1));
/// assert_eq!(q.len(), 1);
/// ```
pub struct Injector<T> {
    /// The block stealers take from. Moved by the stealer that empties it (J4).
    head: CachePadded<Atomic<Block<T>>>,
    /// The block pushers write to. Moved by the pusher that links a successor, or
    /// by any pusher that finds it full with a successor (helping).
    tail: CachePadded<Atomic<Block<T>>>,
    reclaim: Reclaim,
}

// SAFETY: values move from pushers to stealers (`T: Send`); no `&T` is shared, and
// every slot access is ordered by J1/J2.
unsafe impl<T: Send> Send for Injector<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for Injector<T> {}

impl<T> Default for Injector<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Debug for Injector<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Injector").finish_non_exhaustive()
    }
}

impl<T> Injector<T> {
    /// A new, empty queue.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Injector;
    /// let q = Injector::<u32>::new();
    /// assert!(q.is_empty());
    /// ```
    pub fn new() -> Self {
        let first = Owned::new(Block::new(0));
        // SAFETY: not shared yet; the guard is only used to turn `first` into a pointer.
        let first = first.into_shared(unsafe { epoch::unprotected() });
        Injector {
            head: CachePadded::new(Atomic::from(first)),
            tail: CachePadded::new(Atomic::from(first)),
            reclaim: Reclaim::new(),
        }
    }

    /// Pushes an item at the back.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Injector;
    /// let q = Injector::new();
    /// q.push("job");
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn push(&self, value: T) {
        let guard = self.reclaim.pin();
        let mut spare: Option<Owned<Block<T>>> = None;
        let mut value = Some(value);
        loop {
            // Ordering: Acquire pairs with the Release CASes that move `tail`: the
            // block's initialisation happens before we use it.
            let tail = self.tail.load(Ordering::Acquire, &guard);
            // SAFETY: `tail` is never null and, loaded under our guard, not freed (J4).
            let t = unsafe { tail.deref() };
            // Ordering: Relaxed; the counter only hands out distinct slots (its RMWs
            // are totally ordered); the slot's contents are published by `ready`.
            let i = t.pushed.fetch_add(1, Ordering::Relaxed);
            if i < BLOCK {
                let slot = &t.slots[i];
                let v = value.take().expect("value pushed once");
                // SAFETY: slot `i` is ours alone (J1) and nobody reads it before `ready`.
                slot.value
                    .with_mut(|p| unsafe { p.write(MaybeUninit::new(v)) });
                // Ordering: Release pairs with the stealers' Acquire load of `ready`:
                // the write above happens before their read (J2).
                slot.ready.store(true, Ordering::Release);
                return;
            }
            // The block is full: link a successor holding our value in slot 0.
            // Ordering: Acquire pairs with the Release CAS that linked `next`.
            let next = t.next.load(Ordering::Acquire, &guard);
            if next.is_null() {
                let mut block = spare.take().unwrap_or_else(|| Owned::new(Block::new(0)));
                block.start = t.start + BLOCK;
                let v = value.take().expect("value pushed once");
                // SAFETY: the block is not shared yet: exclusive access.
                block.slots[0]
                    .value
                    .with_mut(|p| unsafe { p.write(MaybeUninit::new(v)) });
                // Ordering: Relaxed; the block is published by the CAS below.
                block.slots[0].ready.store(true, Ordering::Relaxed);
                // Ordering: Relaxed; published by the CAS below.
                block.pushed.store(1, Ordering::Relaxed);
                match t.next.compare_exchange(
                    Shared::null(),
                    block,
                    // Ordering: Release publishes the new block (its slot 0 included)
                    // to the Acquire loads of `next`; Acquire is not needed on success.
                    Ordering::Release,
                    // Ordering: Relaxed; on failure we load `next` again with Acquire.
                    Ordering::Relaxed,
                    &guard,
                ) {
                    Ok(new) => {
                        // Ordering: Release pairs with the Acquire load of `tail`; a
                        // failure means a helper already moved it.
                        let _ = self.tail.compare_exchange(
                            tail,
                            new,
                            Ordering::Release,
                            Ordering::Relaxed,
                            &guard,
                        );
                        return;
                    }
                    Err(e) => {
                        let block = e.new;
                        // SAFETY: the block never got published; slot 0 holds our value.
                        let v = block.slots[0]
                            .value
                            .with(|p| unsafe { (*p).assume_init_read() });
                        // Ordering: Relaxed; the block is ours alone again.
                        block.slots[0].ready.store(false, Ordering::Relaxed);
                        // Ordering: Relaxed; as above.
                        block.pushed.store(0, Ordering::Relaxed);
                        value = Some(v);
                        spare = Some(block);
                    }
                }
            } else {
                // Help the pusher that linked it.
                // Ordering: Release, as above; failure means it moved already.
                let _ = self.tail.compare_exchange(
                    tail,
                    next,
                    Ordering::Release,
                    Ordering::Relaxed,
                    &guard,
                );
            }
        }
    }

    /// Takes up to `max` ready values from the head block, oldest first.
    fn take_into(&self, max: usize, mut sink: impl FnMut(T)) -> Steal<usize> {
        debug_assert!(max >= 1);
        let guard = self.reclaim.pin();
        loop {
            // Ordering: Acquire pairs with the Release CAS moving `head` (and the
            // initial store): the block's initialisation is visible.
            let head = self.head.load(Ordering::Acquire, &guard);
            // SAFETY: never null; not freed while we are pinned (J4).
            let h = unsafe { head.deref() };
            // Ordering: Relaxed; the CAS below revalidates it, and the slot contents
            // are ordered by `ready`.
            let p = h.taken.load(Ordering::Relaxed);
            if p >= BLOCK {
                if !self.advance_head(head, h, &guard) {
                    return Steal::Empty;
                }
                continue;
            }
            // Count the ready slots from `p` on.
            let mut ready = 0;
            // Ordering: Acquire pairs with the pusher's Release store of `ready` (J2).
            while p + ready < BLOCK && h.slots[p + ready].ready.load(Ordering::Acquire) {
                ready += 1;
                if ready >= max.saturating_mul(2) {
                    break;
                }
            }
            if ready == 0 {
                // Ordering: Relaxed; only tells an unfinished push (Retry) from none.
                return if h.pushed.load(Ordering::Relaxed) > p {
                    Steal::Retry
                } else {
                    Steal::Empty
                };
            }
            let n = ready.div_ceil(2).min(max);
            if h.taken
                // Ordering: Relaxed; the slots were already acquired through `ready`
                // above, and the CAS only decides who takes `[p, p + n)` (J2).
                .compare_exchange(p, p + n, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
            {
                return Steal::Retry;
            }
            for i in p..p + n {
                // SAFETY: we claimed slot `i` and saw it ready with Acquire (J2).
                sink(
                    h.slots[i]
                        .value
                        .with(|q| unsafe { (*q).assume_init_read() }),
                );
            }
            if p + n == BLOCK {
                self.advance_head(head, h, &guard);
            }
            return Steal::Success(n);
        }
    }

    /// Moves `head` past an exhausted block; false if it has no successor yet.
    fn advance_head(&self, head: Shared<'_, Block<T>>, h: &Block<T>, guard: &Guard) -> bool {
        // Ordering: Acquire pairs with the Release CAS that linked it.
        let next = h.next.load(Ordering::Acquire, guard);
        if next.is_null() {
            return false;
        }
        // Ordering: Release passes on what we acquired from `next` to the Acquire
        // loads of `head`; failure means another stealer moved it.
        if self
            .head
            .compare_exchange(head, next, Ordering::Release, Ordering::Relaxed, guard)
            .is_ok()
        {
            // SAFETY: unlinked from `head`; every slot is taken (J3), so no value is
            // left; threads still looking at it are pinned (J4).
            unsafe { guard.defer_destroy(head) };
        }
        true
    }

    /// Steals the oldest item.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::{Injector, Steal};
    /// let q = Injector::new();
    /// assert_eq!(q.steal(), Steal::Empty);
    /// q.push(1);
    /// assert_eq!(q.steal(), Steal::Success(1));
    /// ```
    pub fn steal(&self) -> Steal<T> {
        steal_one(self)
    }

    /// Steals a batch (up to half of the ready items of the current block, at most
    /// 32) into `dest`. When `dest` is bounded and full, nothing moves (`Empty`).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::{Injector, Worker};
    /// let q = Injector::new();
    /// for i in 0..10 { q.push(i); }
    /// let w = Worker::new_fifo();
    /// assert!(q.steal_batch(&w).is_success());
    /// assert_eq!(w.len(), 5);
    /// ```
    pub fn steal_batch(&self, dest: &Worker<T>) -> Steal<()> {
        self.steal_batch_with_limit(dest, MAX_BATCH)
    }

    /// Steals at most `limit` items (and at most half) into `dest`.
    ///
    /// # Panics
    ///
    /// If `limit` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::{Injector, Worker};
    /// let q = Injector::new();
    /// for i in 0..10 { q.push(i); }
    /// let w = Worker::new_fifo();
    /// assert!(q.steal_batch_with_limit(&w, 3).is_success());
    /// assert_eq!(w.len(), 3);
    /// ```
    pub fn steal_batch_with_limit(&self, dest: &Worker<T>, limit: usize) -> Steal<()> {
        steal_batch_into(self, dest, limit)
    }

    /// Steals a batch (at most 32), returns the oldest and pushes the rest into `dest`.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::{Injector, Steal, Worker};
    /// let q = Injector::new();
    /// for i in 0..4 { q.push(i); }
    /// let w = Worker::new_lifo();
    /// assert_eq!(q.steal_batch_and_pop(&w), Steal::Success(0));
    /// assert_eq!(w.pop(), Some(1));
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
    /// use atomkit::deque::{Injector, Steal, Worker};
    /// let q = Injector::new();
    /// for i in 0..10 { q.push(i); }
    /// let w = Worker::new_fifo();
    /// assert_eq!(q.steal_batch_with_limit_and_pop(&w, 2), Steal::Success(0));
    /// assert_eq!(w.len(), 1);
    /// ```
    pub fn steal_batch_with_limit_and_pop(&self, dest: &Worker<T>, limit: usize) -> Steal<T> {
        steal_batch_and_pop_into(self, dest, limit)
    }

    /// The number of items (a snapshot; pushes in flight count).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Injector;
    /// let q = Injector::new();
    /// for i in 0..100 { q.push(i); }
    /// assert_eq!(q.len(), 100);
    /// ```
    pub fn len(&self) -> usize {
        let guard = self.reclaim.pin();
        // Ordering: Acquire, as in `push`/`steal_into`, to dereference the blocks.
        let head = self.head.load(Ordering::Acquire, &guard);
        // Ordering: Acquire, as above.
        let tail = self.tail.load(Ordering::Acquire, &guard);
        // SAFETY: never null; pinned (J4).
        let (h, t) = unsafe { (head.deref(), tail.deref()) };
        // Ordering: Relaxed; a snapshot.
        let taken = h.start + h.taken.load(Ordering::Relaxed);
        // Ordering: Relaxed; a snapshot.
        let pushed = t.start + t.pushed.load(Ordering::Relaxed).min(BLOCK);
        pushed.saturating_sub(taken)
    }

    /// Whether the queue is empty (a snapshot).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::deque::Injector;
    /// let q = Injector::<i32>::new();
    /// assert!(q.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T> Source<T> for Injector<T> {
    fn steal_into(&self, max: usize, sink: impl FnMut(T)) -> Steal<usize> {
        self.take_into(max, sink)
    }
}

impl<T> Drop for Injector<T> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other thread uses the queue.
        let guard = unsafe { epoch::unprotected() };
        // Ordering: Relaxed; exclusive access.
        let mut cur = self.head.load(Ordering::Relaxed, guard);
        while !cur.is_null() {
            // SAFETY: blocks from `head` on are owned by the queue and not retired (J4).
            let block = unsafe { cur.into_owned() };
            // Ordering: Relaxed; exclusive access.
            let from = block.taken.load(Ordering::Relaxed);
            // Ordering: Relaxed; exclusive access.
            let to = block.pushed.load(Ordering::Relaxed).min(BLOCK);
            for slot in &block.slots[from.min(to)..to] {
                // Ordering: Relaxed; exclusive access.
                if slot.ready.load(Ordering::Relaxed) {
                    // SAFETY: ready and not taken: a live value, dropped once.
                    slot.value.with_mut(|p| unsafe { (*p).assume_init_drop() });
                }
            }
            // Ordering: Relaxed; exclusive access.
            cur = block.next.load(Ordering::Relaxed, guard);
        }
    }
}
