//! The global queue: an unbounded lock-free MPMC queue of blocks with the stealer API.
//!
//! # Implementation
//!
//! A linked list of blocks of `BLOCK` slots. Two positions, `head` and `tail`, each
//! an index and a block pointer, say where stealers and pushers are. Indices count
//! `LAP = BLOCK + 1` per block: index `i` is slot `i % LAP` of the block of lap
//! `i / LAP`, and `i % LAP == BLOCK` is the *boundary*: every slot of the block is
//! handed out and the position waits to move to the successor.
//!
//! - `push`: CAS `tail.index` from `i` to `i + 1` (a claim, made before touching the
//!   block), write the value, set the slot's `WRITE` bit. The pusher that claims a
//!   block's last slot links a successor (allocated before its claim) and moves
//!   `tail` to it before it writes.
//! - `steal`: read `head.index` (`i`) and `tail.index` (empty if `tail <= i`), CAS
//!   `head.index` from `i` to `i + n` (a claim of `n` slots, all below `tail`, in
//!   one block), and only then read the slots. The stealer that claims a block's
//!   last slot moves `head` to the successor, linking one itself if the pusher of
//!   that slot has not yet. Stealers keep the last `tail.index` they read next to
//!   `head` (`tail_seen`, a lower bound of `tail`) and read `tail` itself only when
//!   that bound is used up, so while the queue has a backlog they leave the pushers'
//!   cache line alone.
//! - No thread waits for another. A stealer that finds a claimed slot not yet
//!   written spins briefly, then sets `SKIP` and goes on (`Retry`); the pusher, whose
//!   `fetch_or(WRITE)` then returns `SKIP`, takes its value back and pushes again (its
//!   push had not taken effect). A thread that finds a position at a boundary for
//!   longer than a brief spin moves it on itself (under an epoch pin, below): the
//!   thread whose job it was may be suspended. The price of not waiting: a scheduler
//!   that suspends a pusher right after each of its claims, every time for longer
//!   than the stealer's spin, makes stealers skip each of its pushes and return
//!   `Retry` while that push never lands. Every call still returns; it takes that
//!   adversarial timing on every single claim, which the spin makes rare.
//! - Blocks are freed without a pin on the fast path. Claiming a slot keeps its block
//!   alive until the slot is *finished* (`READ`: its value was taken, by the stealer or
//!   by a skipped pusher); the finisher of a block's last slot checks every other
//!   slot, setting `DESTROY` on any not yet finished, and the finisher of such a slot
//!   carries on the check from the next slot. Whoever completes the check retires the
//!   block. Helpers that move a stuck position read a block they hold no slot of;
//!   they count themselves in `helpers` and pin the epoch, and a retirer that sees a
//!   helper counted frees the block through the epoch. Otherwise (nearly always) it
//!   keeps the block for the next successor, if none is kept yet, or frees it at
//!   once: a steady state (blocks drained as fast as they fill) calls the allocator
//!   not at all.
//!
//! Invariants (cited as J1..J5):
//!
//! 1. Each slot is claimed by exactly one pusher (the CAS from `i` to `i + 1` on
//!    `tail.index`) and at most one stealer (a CAS on `head.index` moving past it);
//!    stealers claim only indices below a `tail.index` they read, so only written or
//!    being-written slots.
//! 2. The value in a slot belongs to exactly one of its pusher and its stealer:
//!    the pusher's `fetch_or(WRITE)` and the stealer's `fetch_or(SKIP)` are ordered
//!    on the slot's state word, and whichever comes second sees the other's bit.
//!    Without `SKIP` the stealer owns it from its Acquire load of `WRITE` on.
//! 3. A position's block pointer is moved (CAS) before its index crosses into the new
//!    lap (CAS, Release), and each is moved only forward, from the boundary of lap `L`
//!    to lap `L + 1`; a thread that reads an index of lap `L` and then the pointer
//!    gets the block of lap `L` or a later one, and in the latter case its claim CAS
//!    fails.
//! 4. A block is retired only once all its slots are finished, which happens after
//!    both positions have left it (the last slot's pusher and stealer each moved their
//!    position before touching the slot), and a slot is finished only by the thread
//!    that last touches its value. A thread touches a block only while it holds an
//!    unfinished slot of it or is pinned and read the block from a position.
//! 5. Every block from `head`'s on is linked to the next by `next`, set once by CAS.

use super::{
    steal_batch_and_pop_into, steal_batch_into, steal_one, Reclaim, Source, Steal, Worker,
    MAX_BATCH,
};
use crate::sync::atomic::{fence, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use crate::sync::UnsafeCell;
use core::fmt;
use core::mem::MaybeUninit;
use core::ptr;
use crossbeam_epoch::Shared;
use crossbeam_utils::CachePadded;

/// Slots per block; small under the model checkers so that models cross blocks.
#[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
const BLOCK: usize = 63;
#[cfg(any(atomkit_loom, atomkit_shuttle))]
const BLOCK: usize = 2;

/// Indices per block: the slots and the boundary.
const LAP: u64 = BLOCK as u64 + 1;

/// How long a thread waits (spin-loop hints) for another thread's unfinished step
/// before it skips the slot or moves the position itself. Long enough for a thread
/// that is running to finish its step; a thread suspended for longer is gone round.
/// None under the model checkers and Miri, so that they reach the skip and help
/// paths as often as possible. (A function rather than a constant so that the
/// zero does not make lints call the waiting loops empty.)
#[inline(always)]
fn patience() -> u32 {
    if cfg!(any(atomkit_loom, atomkit_shuttle, miri)) {
        0
    } else {
        128
    }
}

// Slot state bits.
/// The value is written (set by the pusher).
const WRITE: usize = 1;
/// The stealer gave up on the slot before `WRITE`: the pusher takes its value back.
const SKIP: usize = 2;
/// The slot is finished: nobody touches its value again (J4).
const READ: usize = 4;
/// The block's destruction waits for this slot's finisher to carry it on (J4).
const DESTROY: usize = 8;

struct Slot<T> {
    /// `WRITE | SKIP | READ | DESTROY` bits.
    state: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

struct Block<T> {
    /// The lap of this block. Immutable once linked.
    lap: u64,
    /// The successor, linked once by CAS (J5).
    next: AtomicPtr<Block<T>>,
    slots: [Slot<T>; BLOCK],
}

impl<T> Block<T> {
    /// A new block with every slot empty. Allocated zeroed, which is an empty block:
    /// the allocator can skip the writes for fresh pages (a block is about 1 KiB for a
    /// word-sized `T`), where building the block and moving it into a `Box` would
    /// write it twice.
    #[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
    fn boxed(lap: u64) -> Box<Self> {
        let layout = core::alloc::Layout::new::<Self>();
        // SAFETY: `Block` is not zero-sized (it has `next`).
        let p = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<Self>();
        if p.is_null() {
            std::alloc::handle_alloc_error(layout);
        }
        // SAFETY: `p` is a fresh allocation with `Block`'s layout, and all-zero bytes
        // are a valid empty block: lap 0, a null `next`, every slot state 0, and the
        // values uninitialised `MaybeUninit`s.
        let mut b = unsafe { Box::from_raw(p) };
        b.lap = lap;
        b
    }

    /// A new block with every slot empty. The model checkers' atomics and cells are
    /// not plain memory, so here the block is built field by field.
    #[cfg(any(atomkit_loom, atomkit_shuttle))]
    fn boxed(lap: u64) -> Box<Self> {
        Box::new(Block {
            lap,
            next: AtomicPtr::new(ptr::null_mut()),
            slots: core::array::from_fn(|_| Slot {
                state: AtomicUsize::new(0),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            }),
        })
    }
}

/// Where pushers (`tail`) or stealers (`head`) are.
struct Position<T> {
    /// `lap * LAP + slot`, or `lap * LAP + BLOCK` at the boundary.
    index: AtomicU64,
    /// The block of `index`'s lap (or, briefly, of the next lap: J3).
    block: AtomicPtr<Block<T>>,
    /// For `head` only: a value `tail.index` had (so a lower bound of it), stored by
    /// the stealers that read `tail`. While it is above their index, stealers use it
    /// instead of reading `tail`, whose cache line the pushers write on every push.
    tail_seen: AtomicU64,
}

/// The boundary index of lap `lap`.
#[inline]
fn boundary(lap: u64) -> u64 {
    lap * LAP + BLOCK as u64
}

/// How many slots come before index `i`.
#[inline]
fn slots_before(i: u64) -> u64 {
    i / LAP * BLOCK as u64 + (i % LAP).min(BLOCK as u64)
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
    head: CachePadded<Position<T>>,
    tail: CachePadded<Position<T>>,
    /// Threads in `unstick`, which read a block they hold no slot of (J4).
    helpers: CachePadded<AtomicUsize>,
    /// One drained block kept for the next successor, or null: in a steady state
    /// (the queue short, blocks drained as fast as they fill) pushes and steals
    /// never call the allocator, whose locks a suspended thread may hold, and the
    /// next block's memory is still in cache. Owned by the queue while stored here.
    stash: CachePadded<AtomicPtr<Block<T>>>,
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
        let first = Box::into_raw(Block::boxed(0));
        Injector {
            head: CachePadded::new(Position {
                index: AtomicU64::new(0),
                block: AtomicPtr::new(first),
                tail_seen: AtomicU64::new(0),
            }),
            tail: CachePadded::new(Position {
                index: AtomicU64::new(0),
                block: AtomicPtr::new(first),
                tail_seen: AtomicU64::new(0),
            }),
            helpers: CachePadded::new(AtomicUsize::new(0)),
            stash: CachePadded::new(AtomicPtr::new(ptr::null_mut())),
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
        let mut value = value;
        // A successor for the block whose last slot we may claim, allocated before the
        // claim so that the window between claim and link stays short.
        let mut spare: Option<Box<Block<T>>> = None;
        loop {
            // Ordering: Acquire pairs with the Release CAS that moved the index into
            // this lap, so the block load below sees that lap's block (J3).
            let i = self.tail.index.load(Ordering::Acquire);
            let off = (i % LAP) as usize;
            if off == BLOCK {
                self.unstick(&self.tail, i);
                continue;
            }
            // Ordering: Acquire pairs with the Release CAS (or initial store) that set
            // it: the block's initialisation happens before our use.
            let block = self.tail.block.load(Ordering::Acquire);
            if off + 1 == BLOCK && spare.is_none() {
                spare = Some(self.new_block());
            }
            // Ordering: Relaxed on both sides; the CAS only hands out slot `off` (one
            // modification order on one word); the block came with the Acquire loads
            // above, the value is published by the slot's `WRITE` bit.
            if self
                .tail
                .index
                .compare_exchange_weak(i, i + 1, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
            {
                crate::sync::spin_loop();
                continue;
            }
            // SAFETY: `block` is the block of `i`'s lap (J3: our claim succeeded), and
            // our unfinished slot keeps it alive (J4).
            let b = unsafe { &*block };
            if off + 1 == BLOCK {
                self.advance(&self.tail, b, spare.take());
            }
            let slot = &b.slots[off];
            // SAFETY: slot `off` is ours alone until `WRITE` (J1, J2).
            slot.value.with_mut(|p| unsafe { (*p).write(value) });
            // Ordering: AcqRel. Release publishes the value to the stealer's Acquire
            // load or `fetch_or(SKIP)` (J2); Acquire, when the stealer skipped, orders
            // its accesses of the state before our reading the value back.
            let before = slot.state.fetch_or(WRITE, Ordering::AcqRel);
            if before & SKIP == 0 {
                if let Some(unused) = spare {
                    // Allocated for a claim we then lost: keep it for the next one.
                    self.recycle(unused);
                }
                return;
            }
            // The stealer gave up on this slot: the value is still ours (J2).
            // SAFETY: written just above and never read by the stealer (J2).
            value = slot.value.with(|p| unsafe { (*p).assume_init_read() });
            self.finish(block, off);
        }
    }

    /// An empty block (its lap set by whoever links it): the stashed one if any.
    fn new_block(&self) -> Box<Block<T>> {
        // Ordering: Acquire pairs with the Release CAS in `recycle`: the block's last
        // uses happen before we reset it.
        let p = self.stash.swap(ptr::null_mut(), Ordering::Acquire);
        if p.is_null() {
            return Block::boxed(0);
        }
        // SAFETY: a stashed block is owned by the stash (`recycle`), and the swap made
        // it ours alone; it came from `Box::into_raw`.
        let mut b = unsafe { Box::from_raw(p) };
        for slot in &mut b.slots {
            // Ordering: Relaxed; the block is ours alone until it is linked, which
            // publishes it (Release CAS on `next`).
            slot.state.store(0, Ordering::Relaxed);
        }
        // Ordering: Relaxed, as above.
        b.next.store(ptr::null_mut(), Ordering::Relaxed);
        b
    }

    /// Keeps a block that nobody else can reach (retired, or never linked) for
    /// `new_block`; frees it if a block is kept already.
    fn recycle(&self, b: Box<Block<T>>) {
        let p = Box::into_raw(b);
        // Ordering: Release publishes our last uses of the block (and its reads by the
        // finishers, acquired by `destroy`) to the Acquire swap in `new_block`;
        // Relaxed on failure, when the block is simply freed.
        if self
            .stash
            .compare_exchange(ptr::null_mut(), p, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            // SAFETY: not stored: still ours alone, from `Box::into_raw` above.
            drop(unsafe { Box::from_raw(p) });
        }
    }

    /// Moves a position stuck at the boundary `i` on to the next lap: first waits a
    /// little for the thread whose job that is, then does it itself.
    #[cold]
    fn unstick(&self, pos: &Position<T>, i: u64) {
        for _ in 0..patience() {
            crate::sync::spin_loop();
            // Ordering: Relaxed; only decides whether to keep waiting (the caller
            // reloads the index with Acquire).
            if pos.index.load(Ordering::Relaxed) != i {
                return;
            }
        }
        let _guard = self.reclaim.pin();
        // Ordering: Relaxed increment followed by a SeqCst fence: the store-load
        // pairing with `retire`'s fence and load of `helpers`. Either `retire` sees us
        // (and leaves its block to the epoch, which our pin holds back), or its fence
        // precedes ours and the loads below see the positions moved off the block it
        // frees (J4).
        self.helpers.fetch_add(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        self.help(pos, i);
        // Ordering: Release; after it we touch no block of the queue.
        self.helpers.fetch_sub(1, Ordering::Release);
    }

    /// `unstick`'s work, once counted as a helper and pinned.
    fn help(&self, pos: &Position<T>, i: u64) {
        // Ordering: Acquire, as in `push`: the block load below then sees the block
        // of `i`'s lap or a later one (J3).
        if pos.index.load(Ordering::Acquire) != i {
            return;
        }
        // Ordering: Acquire, as in `push`.
        let block = pos.block.load(Ordering::Acquire);
        // SAFETY: read from a position while counted as a helper and pinned: a block is
        // retired only after both positions have left it, and freed at once only if
        // no helper was counted (`retire`), otherwise through the epoch (J4).
        let b = unsafe { &*block };
        if b.lap == i / LAP {
            self.advance(pos, b, None);
        } else {
            // The block pointer already moved (J3): only the index is left.
            // Ordering: Release passes on the new block to the Acquire index loads
            // (J3); the pointer's move was acquired by the load above. Failure: the
            // index moved already.
            let _ = pos.index.compare_exchange(
                i,
                (i / LAP + 1) * LAP,
                Ordering::Release,
                Ordering::Relaxed,
            );
        }
    }

    /// Moves `pos` from the boundary of `b`'s lap to `b`'s successor, linking one
    /// (`spare` or a new block) if there is none yet. The caller holds a slot of `b`
    /// or is pinned (J4). Safe to run by several threads: every step is a CAS from
    /// the old value.
    fn advance(&self, pos: &Position<T>, b: &Block<T>, spare: Option<Box<Block<T>>>) {
        // Ordering: Acquire pairs with the Release CAS that linked it (the successor's
        // initialisation).
        let mut next = b.next.load(Ordering::Acquire);
        if next.is_null() {
            let mut fresh = spare.unwrap_or_else(|| self.new_block());
            fresh.lap = b.lap + 1;
            let fresh = Box::into_raw(fresh);
            // Ordering: Release publishes the new block's initialisation; Acquire on
            // failure, as for the load above.
            match b.next.compare_exchange(
                ptr::null_mut(),
                fresh,
                Ordering::Release,
                Ordering::Acquire,
            ) {
                Ok(_) => next = fresh,
                Err(linked) => {
                    // SAFETY: never shared (our CAS failed) and from `Box::into_raw`.
                    self.recycle(unsafe { Box::from_raw(fresh) });
                    next = linked;
                }
            }
        } else if let Some(unused) = spare {
            self.recycle(unused);
        }
        let this = (b as *const Block<T>).cast_mut();
        // Pointer first, then index (J3).
        // Ordering: Release passes on the successor's initialisation (acquired
        // above); Acquire on failure so that our index CAS below, which a failure
        // does not skip, carries whatever moved the pointer (J3).
        let _ = pos
            .block
            .compare_exchange(this, next, Ordering::Release, Ordering::Acquire);
        // Ordering: Release: a thread that acquires the new index sees the pointer
        // moved (J3). Acquire on failure: whoever moved it did so before what we do
        // next with our slots, so the block's retirement follows both moves (J4).
        let _ = pos.index.compare_exchange(
            boundary(b.lap),
            (b.lap + 1) * LAP,
            Ordering::Release,
            Ordering::Acquire,
        );
    }

    /// Marks slot `off` of `b` finished (its value was taken or taken back) and, if
    /// it is the block's last slot or the block's destruction waits for it, carries
    /// the destruction on (J4). The caller holds slot `off` unfinished.
    ///
    /// The block may be freed inside: it is passed (and read) through a raw pointer,
    /// never a reference that would have to outlive the call.
    fn finish(&self, b: *const Block<T>, off: usize) {
        if off + 1 == BLOCK {
            self.destroy(b, 0);
            return;
        }
        // Ordering: AcqRel. Release: our accesses of the slot happen before the
        // destroyer's Acquire of `READ`. Acquire: if the destroyer set `DESTROY`, what
        // it saw (the earlier slots finished) happens before we carry on.
        // SAFETY: the block lives while we hold slot `off` unfinished (J4).
        let state = unsafe { &(*b).slots[off].state };
        let before = state.fetch_or(READ, Ordering::AcqRel);
        if before & DESTROY != 0 {
            self.destroy(b, off + 1);
        }
    }

    /// Checks that slots `from..BLOCK - 1` are finished, handing the check to the
    /// finisher of the first one that is not; retires the block once they all are.
    /// Only the finisher of the last slot, or of a slot marked `DESTROY`, calls it.
    fn destroy(&self, b: *const Block<T>, from: usize) {
        for j in from..BLOCK - 1 {
            // SAFETY: the block lives until this check completes: slots before `j` are
            // finished, the last one is ours (or was handed to us with `DESTROY`), and
            // no one else retires it (J4).
            let slot = unsafe { &(*b).slots[j] };
            // Ordering: Acquire pairs with the finisher's Release `fetch_or(READ)`:
            // its accesses happen before the block is freed.
            if slot.state.load(Ordering::Acquire) & READ == 0
                // Ordering: AcqRel; Release hands what we saw to the finisher (see
                // `finish`), Acquire as for the load above.
                && slot.state.fetch_or(DESTROY, Ordering::AcqRel) & READ == 0
            {
                return; // that slot's finisher carries on
            }
        }
        self.retire(b);
    }

    /// Disposes of a block whose slots are all finished: at once (kept for reuse or
    /// freed) if no helper may be reading it, else freed through the epoch.
    #[cold]
    fn retire(&self, b: *const Block<T>) {
        // Ordering: SeqCst fence, then the load: the other half of the pairing in
        // `unstick`. Both positions left the block before this point (J4); if no
        // helper is counted, any helper that comes later loads positions that have
        // moved on and never reaches this block. Acquire pairs with the Release
        // decrement of a helper that has just left: its reads of the block happen
        // before we free it (Miri's race detector caught a Relaxed load here).
        fence(Ordering::SeqCst);
        if self.helpers.load(Ordering::Acquire) == 0 {
            // SAFETY: every slot is finished, so no thread holds a slot of the block,
            // both positions have left it, and no helper can reach it (above): we own
            // it. It came from `Box::into_raw`. Its values are all gone (a `Block`
            // drops no `T`), so it may be reused or freed.
            let b = unsafe { Box::from_raw(b.cast_mut()) };
            self.recycle(b);
        } else {
            let guard = self.reclaim.pin();
            // SAFETY: as above, except that a counted helper may still read it: it is
            // pinned, and the epoch frees the block only after it unpins.
            unsafe { guard.defer_destroy(Shared::from(b)) };
        }
    }

    /// Claims up to `max` slots of the head block, oldest first, and moves the values
    /// that were written into `sink` (J1, J2).
    fn take_into(&self, max: usize, mut sink: impl FnMut(T)) -> Steal<usize> {
        debug_assert!(max >= 1);
        // Ordering: Acquire, as for `tail.index` in `push` (J3).
        let i = self.head.index.load(Ordering::Acquire);
        // Ordering: Relaxed; any value `tail.index` had is a bound below which every
        // index was claimed by a pusher (J1); the slots' contents come with `WRITE`.
        let mut t = self.head.tail_seen.load(Ordering::Relaxed);
        if t <= i {
            // Ordering: Acquire; an index of a push that happened before this call is
            // seen (coherence), and the claim below stays below it (J1).
            t = self.tail.index.load(Ordering::Acquire);
            if t <= i {
                return Steal::Empty;
            }
            // Ordering: Relaxed: a hint (above). A racing stealer may store an older
            // value over ours; it is still a lower bound.
            self.head.tail_seen.store(t, Ordering::Relaxed);
        }
        let off = (i % LAP) as usize;
        if off == BLOCK {
            self.unstick(&self.head, i);
            return Steal::Retry;
        }
        // Ordering: Acquire, as in `push` (J3).
        let block = self.head.block.load(Ordering::Acquire);
        // Slots from `off` to the end of the block or to `tail`: pushed or being pushed.
        let avail = if t / LAP == i / LAP {
            (t % LAP) as usize - off
        } else {
            BLOCK - off
        };
        let n = avail.div_ceil(2).min(max);
        // Ordering: Relaxed on both sides: the claim only decides who takes
        // `off..off + n` (J1); the block came with the Acquire loads, the values come
        // with the slots' `WRITE` bits.
        if self
            .head
            .index
            .compare_exchange_weak(i, i + n as u64, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return Steal::Retry;
        }
        // SAFETY: `block` is the block of `i`'s lap (J3), kept alive by the slots we
        // just claimed and have not finished (J4).
        let b = unsafe { &*block };
        if off + n == BLOCK {
            self.advance(&self.head, b, None);
        }
        let mut taken = 0;
        for j in off..off + n {
            if let Some(v) = self.take_slot(block, j) {
                sink(v);
                taken += 1;
            }
        }
        if taken == 0 {
            Steal::Retry
        } else {
            Steal::Success(taken)
        }
    }

    /// Takes the value of claimed slot `j`, or skips the slot if its pusher has not
    /// written it after a brief wait (the pusher then takes it back, J2).
    #[inline]
    fn take_slot(&self, b: *const Block<T>, j: usize) -> Option<T> {
        // SAFETY: the block lives while we hold slot `j` unfinished (J4); the reference
        // is not used after `finish`, which may free the block.
        let slot = unsafe { &(*b).slots[j] };
        // Ordering: Acquire pairs with the pusher's Release `fetch_or(WRITE)` (J2).
        let mut written = slot.state.load(Ordering::Acquire) & WRITE != 0;
        let mut waited = 0;
        while !written && waited < patience() {
            crate::sync::spin_loop();
            waited += 1;
            // Ordering: Acquire, as above.
            written = slot.state.load(Ordering::Acquire) & WRITE != 0;
        }
        if !written {
            // Ordering: AcqRel. Acquire: if the pusher wrote in the meantime, its
            // value is ours and visible (J2). Release: our claim and this bit happen
            // before the pusher takes its value back.
            if slot.state.fetch_or(SKIP, Ordering::AcqRel) & WRITE == 0 {
                return None; // the pusher will find SKIP and finish the slot
            }
        }
        // SAFETY: written (acquired above) and ours: we claimed it (J1) and did not
        // skip it (J2).
        let v = slot.value.with(|p| unsafe { (*p).assume_init_read() });
        self.finish(b, j);
        Some(v)
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
        loop {
            // Ordering: Acquire for the three loads: a snapshot, no memory guarded;
            // Acquire keeps the re-read of `tail` after the `head` load.
            let tail = self.tail.index.load(Ordering::Acquire);
            // Ordering: as above.
            let head = self.head.index.load(Ordering::Acquire);
            // Ordering: as above.
            if self.tail.index.load(Ordering::Acquire) == tail {
                return slots_before(tail).saturating_sub(slots_before(head)) as usize;
            }
        }
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
        /// The blocks not yet freed, from `block` on along `next`, and the values not
        /// yet dropped, the indices `[next, tail)` in them. A guard: if a value's
        /// `Drop` panics, the values after it are still dropped and the blocks freed
        /// during the unwind, as a `Vec` does (a second panic, during the unwind,
        /// aborts).
        struct Rest<T> {
            block: *mut Block<T>,
            next: u64,
            tail: u64,
        }
        impl<T> Rest<T> {
            fn drop_all(&mut self) {
                while !self.block.is_null() {
                    // SAFETY: blocks from `head`'s on are owned by the queue and not
                    // retired (J4, J5), and `self.block` is not freed yet (below).
                    let block = unsafe { &*self.block };
                    let first = block.lap * LAP;
                    self.next = self.next.max(first);
                    let to = self.tail.min(first + BLOCK as u64);
                    while self.next < to {
                        let slot = &block.slots[(self.next - first) as usize];
                        // Moved on before the drop: a value whose `Drop` panics is
                        // not dropped again by the guard.
                        self.next += 1;
                        // Ordering: Relaxed; exclusive access.
                        debug_assert!(slot.state.load(Ordering::Relaxed) & WRITE != 0);
                        // SAFETY: written and never claimed by a stealer: a live
                        // value, dropped once (`next` has moved past it).
                        slot.value.with_mut(|p| unsafe { (*p).assume_init_drop() });
                    }
                    let cur = self.block;
                    // Ordering: Relaxed; exclusive access.
                    self.block = block.next.load(Ordering::Relaxed);
                    // SAFETY: from `Box::into_raw`; every value in it is dropped, and
                    // `self.block` has moved past it, so it is freed once.
                    drop(unsafe { Box::from_raw(cur) });
                }
            }
        }
        impl<T> Drop for Rest<T> {
            fn drop(&mut self) {
                self.drop_all();
            }
        }
        // `&mut self`: every push and steal has returned, so every claimed slot is
        // finished and the unclaimed ones, `head..tail`, are written (J1, J2); the
        // blocks before `head`'s are retired (J4).
        // Ordering: Relaxed for all loads here: exclusive access.
        let head = self.head.index.load(Ordering::Relaxed);
        let tail = self.tail.index.load(Ordering::Relaxed);
        let stashed = self.stash.load(Ordering::Relaxed);
        if !stashed.is_null() {
            // SAFETY: owned by the stash (`recycle`), from `Box::into_raw`.
            drop(unsafe { Box::from_raw(stashed) });
        }
        let mut rest = Rest {
            block: self.head.block.load(Ordering::Relaxed),
            next: head,
            tail,
        };
        rest.drop_all();
    }
}
