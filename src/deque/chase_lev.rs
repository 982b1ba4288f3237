//! The Chase-Lev deque shared by one [`Worker`](super::Worker) and its
//! [`Stealer`](super::Stealer)s. The module doc of [`deque`](super) describes the
//! algorithm, its invariants (cited here as I1..I7) and its memory orderings.

use super::{Reclaim, Steal};
use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::sync::UnsafeCell;
use core::cell::Cell;
use core::mem::MaybeUninit;
use crossbeam_epoch::{self as epoch, Atomic, Owned};
use crossbeam_utils::CachePadded;

/// Smallest buffer, and the size a new deque starts with: twice the default batch,
/// so that a thief's local deque does not grow and shrink on every batch steal (each
/// resize allocates). Small under the model checkers so that a handful of pushes
/// already grows and shrinks the buffer.
#[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
pub(super) const MIN_CAP: usize = 64;
#[cfg(any(atomkit_loom, atomkit_shuttle))]
pub(super) const MIN_CAP: usize = 2;

/// Items a steal reads (and releases) before handing them on.
const CHUNK: usize = 32;

/// Items bigger than this (bytes) are stolen one at a time, without a chunk: 32 of
/// them would put more than 4 KiB on the stealer's stack.
const BIG_ITEM: usize = 128;

/// Largest buffer: lengths must stay below half the index space (I6).
pub(super) const MAX_CAP: usize = 1 << 30;

/// A point in a buffer replacement where memory may be allocated. Unit-test builds
/// can make it fail (see [`alloc_fault`]); elsewhere it is nothing.
#[cfg(not(all(test, not(any(atomkit_loom, atomkit_shuttle)))))]
#[inline(always)]
fn alloc_point() {}

#[cfg(all(test, not(any(atomkit_loom, atomkit_shuttle))))]
use alloc_fault::point as alloc_point;

/// Unit-test builds: the allocations of a buffer replacement fail on demand, as they
/// do under an allocation-error handler that panics.
#[cfg(all(test, not(any(atomkit_loom, atomkit_shuttle))))]
pub(super) mod alloc_fault {
    use crate::sync::thread_local;
    use core::cell::Cell;

    thread_local! {
        /// How many allocation points this thread passes before one panics.
        static FAIL_IN: Cell<Option<u32>> = const { Cell::new(None) };
    }

    /// Makes this thread's allocation point `n` from now (0: the next one) panic, or
    /// none.
    pub(crate) fn fail_at(n: Option<u32>) {
        FAIL_IN.with(|f| f.set(n));
    }

    /// An allocation point: panics if it is the one chosen.
    pub(super) fn point() {
        FAIL_IN.with(|f| match f.get() {
            Some(0) => {
                f.set(None);
                panic!("memory allocation failed");
            }
            Some(n) => f.set(Some(n - 1)),
            None => {}
        });
    }
}

/// Takes from the top after which the owner moves the generation on at its next
/// chance, even with no resize due (I6): `h` then never gets through a whole lap of
/// its 32 bits within one generation. Small in unit tests and under the model
/// checkers, so that they reach the renewal (shuttle's scenarios take a dozen items,
/// loom's a handful); in unit tests larger than the smallest buffer, so that the
/// owner's takes also extend its run.
#[cfg(not(any(test, atomkit_shuttle, atomkit_loom)))]
pub(super) const RENEW_EVERY: u32 = 1 << 30;
#[cfg(all(atomkit_loom, not(test)))]
pub(super) const RENEW_EVERY: u32 = 2;
#[cfg(all(test, not(atomkit_shuttle)))]
pub(super) const RENEW_EVERY: u32 = 1 << 8;
#[cfg(atomkit_shuttle)]
pub(super) const RENEW_EVERY: u32 = 4;

/// Packs the heads word: the claimed index `h` in the high half (so that adding
/// `ONE_H` moves it and wraps without touching the rest), the buffer generation `g`
/// in the low half.
#[inline]
pub(super) fn pack(g: u32, h: u32) -> u64 {
    (u64::from(h) << 32) | u64::from(g)
}

/// `h += 1` on a heads word (wrapping).
const ONE_H: u64 = 1 << 32;

/// The buffer generation `g` of a heads word.
#[inline]
pub(super) fn generation(heads: u64) -> u32 {
    heads as u32
}

/// The claimed index `h` of a heads word.
#[inline]
pub(super) fn claimed(heads: u64) -> u32 {
    (heads >> 32) as u32
}

/// `to - from` as a signed distance in the wrapping index space (I6).
#[inline]
pub(super) fn dist(from: u32, to: u32) -> i32 {
    to.wrapping_sub(from) as i32
}

/// A slot holds an item's bits; who may touch it is decided by the indices (I1) and
/// the slot's stamp (I2).
type Slot<T> = UnsafeCell<MaybeUninit<T>>;

/// A power-of-two ring of slots. Indices map to slots modulo the length, which
/// divides 2^32, so the mapping survives index wrap-around.
pub(super) struct Buffer<T> {
    /// The generation of `heads` this buffer belongs to (I4).
    generation: u32,
    slots: Box<[Slot<T>]>,
    /// One stamp per slot, in an array of their own so that the thieves' stamp
    /// stores do not share cache lines with the owner's slot writes. The stamp is the
    /// index the owner may write into the slot next: while the slot holds the item
    /// of index `i` (not yet read by whoever takes it) it is `i`; the taker sets it
    /// to `i + capacity` once it has read the item (I2).
    stamps: Box<[AtomicU32]>,
}

impl<T> Buffer<T> {
    /// A buffer of generation `generation` whose slots are free for the indices
    /// `[from, from + cap)`.
    fn new(cap: usize, generation: u32, from: u32) -> Self {
        debug_assert!(cap.is_power_of_two() && cap <= MAX_CAP);
        let mask = cap as u32 - 1;
        Buffer {
            generation,
            slots: (0..cap)
                .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
                .collect(),
            // Slot `k` is free for the index of `[from, from + cap)` that maps to it.
            stamps: (0..cap as u32)
                .map(|k| AtomicU32::new(from.wrapping_add(k.wrapping_sub(from) & mask)))
                .collect(),
        }
    }

    #[inline]
    pub(super) fn cap(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    fn slot(&self, index: u32) -> &Slot<T> {
        let k = index as usize & (self.slots.len() - 1);
        // SAFETY: the length is a power of two (at least 1), so the mask keeps `k`
        // in bounds.
        unsafe { self.slots.get_unchecked(k) }
    }

    #[inline]
    fn stamp(&self, index: u32) -> &AtomicU32 {
        let k = index as usize & (self.stamps.len() - 1);
        // SAFETY: as in `slot`; `stamps` has the length of `slots`.
        unsafe { self.stamps.get_unchecked(k) }
    }

    /// The end of the run of indices from `b` on whose slots the owner may write:
    /// every read of the item that last lived in each of them is finished (I2).
    /// `b` itself is free iff the result is not `b`.
    fn free_run(&self, b: u32) -> u32 {
        let mut j = b;
        // Ordering: Acquire pairs with the Release store in `release` by the taker of
        // the slot's previous item: its read of the slot happens before our writes (I2).
        while (dist(b, j) as usize) < self.cap() && self.stamp(j).load(Ordering::Acquire) == j {
            j = j.wrapping_add(1);
        }
        j
    }

    /// Marks the slot of `index`, whose item the caller has just read, free for the
    /// index one lap later (I2).
    #[inline]
    fn release(&self, index: u32) {
        // Ordering: Release pairs with the owner's Acquire load in `free_run`: our
        // read of the slot happens before the owner writes it again (I2).
        self.stamp(index)
            .store(index.wrapping_add(self.cap() as u32), Ordering::Release);
    }

    /// Writes `value` into the slot of `index`.
    ///
    /// # Safety
    ///
    /// The caller is the owner, the slot is free for `index` (I2: no thief reads
    /// it) and holds no live item (I3).
    #[inline]
    unsafe fn write(&self, index: u32, value: T) {
        // SAFETY: the caller guarantees exclusive access to this slot (I2).
        self.slot(index)
            .with_mut(|p| unsafe { p.write(MaybeUninit::new(value)) });
    }

    /// Moves the item out of the slot of `index`.
    ///
    /// # Safety
    ///
    /// The caller has taken `index` (I1) so it is the only one reading this item,
    /// the slot holds that item in this buffer (I4), and the owner does not write
    /// the slot until it is released (I2).
    #[inline]
    unsafe fn read(&self, index: u32) -> T {
        // SAFETY: as `read_in`, which the caller guarantees.
        unsafe { Self::read_in(&self.slots, index) }
    }

    /// The slots: a caller that loads them before an RMW reads its slot with
    /// `read_in` after it without loading the buffer's fields again.
    #[inline]
    fn slots(&self) -> &[Slot<T>] {
        &self.slots
    }

    /// Moves the item out of the slot of `index` in `slots`.
    ///
    /// # Safety
    ///
    /// `slots` are the slots of a buffer, and the conditions of `read` hold for it.
    #[inline]
    unsafe fn read_in(slots: &[Slot<T>], index: u32) -> T {
        let k = index as usize & (slots.len() - 1);
        // SAFETY: the length is a power of two (at least 1), so the mask keeps `k`
        // in bounds; the caller guarantees the slot is initialized and taken by it.
        unsafe { slots.get_unchecked(k) }.with(|p| unsafe { (*p).assume_init_read() })
    }

    /// Copies the bits of slot `index` of `self` into the same index of `to`.
    ///
    /// # Safety
    ///
    /// Only the owner calls this, while resizing; `to` is not yet published, and
    /// nobody writes the slot of `self` (I2: only the owner writes slots).
    unsafe fn copy_to(&self, to: &Buffer<T>, index: u32) {
        self.slot(index).with(|src| {
            to.slot(index).with_mut(|dst| {
                // SAFETY: distinct allocations; `dst` is exclusively ours (unpublished),
                // and reading `src` can only overlap other reads (I2).
                unsafe { core::ptr::copy_nonoverlapping(src, dst, 1) }
            })
        });
    }
}

/// The shared state of one deque.
pub(super) struct Inner<T> {
    /// `pack(g, h)`: `h` is the next index to take from the top (everything below
    /// is taken, I1), `g` the generation of the current buffer (I4). `h` is moved by
    /// the thieves' claim CASes and the owner's top CASes (last item in LIFO mode,
    /// every pop in FIFO mode); `g` only by the owner, when it replaces the buffer.
    pub(super) heads: CachePadded<AtomicU64>,
    /// One past the newest item. Written only by the owner.
    pub(super) bottom: CachePadded<AtomicU32>,
    /// The current buffer. Swapped only by the owner; old ones retired through the
    /// epoch collector (I5).
    pub(super) buffer: CachePadded<Atomic<Buffer<T>>>,
    /// Where retired buffers go (I5).
    pub(super) reclaim: Reclaim,
}

// SAFETY: the items move between threads (push on the owner, take on a stealer), so
// `T: Send` is required and sufficient; every shared access to the slots is ordered by
// the index protocol (I1-I4), so no `&T` is ever shared and `T: Sync` is not needed.
unsafe impl<T: Send> Send for Inner<T> {}
// SAFETY: as above: `&Inner` only lets threads move items out of claimed slots.
unsafe impl<T: Send> Sync for Inner<T> {}

/// The owner's private state, kept in its `Worker` (which is `!Sync`): read and
/// written by the owner thread only.
pub(super) struct Owner<T> {
    /// The owner's copy of the current buffer pointer (only the owner swaps it).
    pub(super) buffer: Cell<*const Buffer<T>>,
    /// Every index from `bottom` up to this one is free in the current buffer (I2):
    /// the owner reads the stamps once per run, not once per push.
    pub(super) free_until: Cell<u32>,
    /// A value `h` had since the last LIFO pop: a lower bound of `h` (which never
    /// decreases in a LIFO deque), so `bottom - top_seen` bounds the length from
    /// above. Unused in FIFO mode.
    pub(super) top_seen: Cell<u32>,
    /// The `h` at which the owner last moved the generation (or the first index):
    /// once `h` is [`RENEW_EVERY`] past it, the owner replaces the buffer at its next
    /// refill, and stops growing its free run by its own takes meanwhile (I6).
    pub(super) renewed_at: Cell<u32>,
}

impl<T> Owner<T> {
    /// The state of the owner of `inner`, a new deque whose indices start at `start`.
    pub(super) fn new(inner: &Inner<T>, start: u32) -> Self {
        // SAFETY: no deref happens under this guard; the pointer stays valid for the
        // owner because only the owner retires buffers (I5).
        let guard = unsafe { epoch::unprotected() };
        // Ordering: Relaxed; the creator stored it itself.
        let buffer = inner.buffer.load(Ordering::Relaxed, guard).as_raw();
        Owner {
            buffer: Cell::new(buffer),
            free_until: Cell::new(start),
            top_seen: Cell::new(start),
            renewed_at: Cell::new(start),
        }
    }
}

/// Outcome of a claim of one index at the top.
enum Claim {
    Got,
    Empty,
    Retry,
}

/// The SeqCst fence of Lê et al.: the owner's in `pop`, between its store of
/// `bottom` and its load of `heads`, and the stealers' (through `steal_fence`) where
/// they need a real one. Under ThreadSanitizer, which ignores fences, the
/// surrounding accesses are made `SeqCst` instead (`around_fence`).
#[inline]
fn seqcst_fence() {
    #[cfg(not(atomkit_tsan))]
    // Ordering: the Dekker fence of Lê et al.: see "Memory orderings" in the module doc.
    crate::sync::atomic::fence(Ordering::SeqCst);
}

/// A stealer's fence between its load of `heads` (or its own claim CAS) and its load
/// of `bottom`: the stealer's half of the Dekker pairing with `pop`.
///
/// On x86_64 hardware this half needs no instruction: x86-TSO never reorders a load
/// with an earlier load or with an earlier locked RMW, so the two loads (or the CAS
/// and the load) reach memory in program order, and the owner's half is a real full
/// barrier. All the compiler must not do is move the load of `bottom` up, which the
/// Acquire load of `heads` (or the SeqCst CAS) before it already forbids; the compiler
/// fence states it once more. Everywhere else, and under the model checkers, Miri and
/// ThreadSanitizer, which check the C11 model and not x86-TSO, it is Lê et al.'s
/// SeqCst fence (see "Memory orderings" in the module doc).
#[inline]
fn steal_fence() {
    #[cfg(all(
        target_arch = "x86_64",
        not(any(miri, atomkit_loom, atomkit_shuttle, atomkit_tsan))
    ))]
    // Ordering: a compiler-only barrier; x86-TSO orders the loads around it (above).
    crate::sync::atomic::compiler_fence(Ordering::SeqCst);
    #[cfg(not(all(
        target_arch = "x86_64",
        not(any(miri, atomkit_loom, atomkit_shuttle, atomkit_tsan))
    )))]
    seqcst_fence();
}

/// The ordering of an access next to `seqcst_fence`: itself under TSan (where
/// the fence is gone and SeqCst accesses give the same total order), else `normal`.
#[inline]
fn around_fence(normal: Ordering) -> Ordering {
    if cfg!(atomkit_tsan) {
        Ordering::SeqCst
    } else {
        normal
    }
}

impl<T> Inner<T> {
    pub(super) fn new(start: u32) -> Self {
        Inner {
            heads: CachePadded::new(AtomicU64::new(pack(0, start))),
            bottom: CachePadded::new(AtomicU32::new(start)),
            buffer: CachePadded::new(Atomic::new(Buffer::new(MIN_CAP, 0, start))),
            reclaim: Reclaim::new(),
        }
    }

    /// Number of items as seen now (a snapshot when others run).
    pub(super) fn len(&self) -> usize {
        // Ordering: Relaxed; a snapshot, guards no memory.
        let h = claimed(self.heads.load(Ordering::Relaxed));
        // Ordering: Relaxed, as above.
        let b = self.bottom.load(Ordering::Relaxed);
        dist(h, b).max(0) as usize
    }

    // ----------------------------------------------------------------- owner side

    /// Pushes `value` at `bottom`, first replacing the buffer if the slot of `bottom`
    /// is not free (the deque is full, or a thief has not finished reading it).
    ///
    /// # Safety
    ///
    /// Only the owner calls this, with its `Owner` state.
    #[inline]
    pub(super) unsafe fn push(&self, o: &Owner<T>, value: T) {
        // Ordering: Relaxed; only the owner writes `bottom`.
        let b = self.bottom.load(Ordering::Relaxed);
        let mut buf = o.buffer.get();
        if dist(b, o.free_until.get()) <= 0 {
            // SAFETY: owner only, `b` the current bottom.
            buf = unsafe { self.refill(o, b) };
        }
        // SAFETY: the slot is free for `b` (`b < free_until`), so no thief reads it
        // (I2) and it holds no live item (I3).
        unsafe { (*buf).write(b, value) };
        // Ordering: Release (Lê et al.: `fence(release)` + relaxed store) publishes
        // the slot write to stealers' Acquire load of `bottom`.
        self.bottom.store(b.wrapping_add(1), Ordering::Release);
    }

    /// Finds the next run of free indices from `b` on, replacing the buffer when the
    /// slot of `b` itself is not free or when a renewal of the generation is due
    /// (I6); returns the current buffer. Out of line: it runs once per run, and
    /// inlined it would burden every push with its registers.
    ///
    /// # Safety
    ///
    /// Only the owner calls this, with its `Owner` state; `b` is the current bottom.
    #[cold]
    #[inline(never)]
    unsafe fn refill(&self, o: &Owner<T>, b: u32) -> *const Buffer<T> {
        let buf = o.buffer.get();
        // SAFETY: the owner's cached buffer is the current one, alive until the owner
        // retires it (I5).
        let free_until = unsafe { (*buf).free_run(b) };
        o.free_until.set(free_until);
        // `h <= b`: only when `b` is far enough is `heads` (a line the stealers
        // write) worth loading.
        let renew = b.wrapping_sub(o.renewed_at.get()) >= RENEW_EVERY && {
            // Ordering: Relaxed; any value `h` had will do: a stale one only puts
            // the renewal off to a later refill, and how far it can lag is bounded
            // (I6).
            let h = claimed(self.heads.load(Ordering::Relaxed));
            h.wrapping_sub(o.renewed_at.get()) >= RENEW_EVERY
        };
        if free_until != b && !renew {
            return buf;
        }
        // With the slot of `b` free, `grow` copies at the same size (I6).
        // SAFETY: owner only, current buffer.
        unsafe { self.grow(o, buf, b) }
    }

    /// Replaces the buffer so that the slot of `b` is free: twice as large when the
    /// deque is full, the same size when a thief is still reading the slot (or when
    /// the slot is free and the owner renews the generation, I6). Records
    /// the new buffer and its free run in `o` and returns the buffer.
    ///
    /// # Safety
    ///
    /// Only the owner calls this; `old` is the current buffer, `b` the current bottom.
    #[cold]
    #[inline(never)]
    unsafe fn grow(&self, o: &Owner<T>, old: *const Buffer<T>, b: u32) -> *const Buffer<T> {
        // SAFETY: the owner's current buffer is alive (I5).
        let cap = unsafe { (*old).cap() };
        // Ordering: Relaxed; a value `h` had (coherence: no older than any `h` we
        // saw, and every index below `b` we wrote was free, so `b - h0 <= cap`,
        // I2). It may lag the exact `h`, which only overstates the length: at
        // worst we double when a same-size copy would do, or panic slightly early
        // at the largest capacity. The check comes before the generation bump: a
        // panic after it would leave every steal answering `Retry` forever.
        let h0 = claimed(self.heads.load(Ordering::Relaxed));
        let seen = dist(h0, b);
        assert!(
            cap < MAX_CAP || seen < 0 || (seen as usize) < cap,
            "deque capacity overflow"
        );
        let cap = if seen as usize >= cap {
            debug_assert!(cap < MAX_CAP);
            cap * 2
        } else {
            cap
        };
        // SAFETY: owner only, current buffer; `h0` is a value `h` had and
        // `b - h0 <= cap`.
        unsafe { self.resize(o, old, h0, b, cap) }
    }

    /// Moves `heads` to the next generation (I4) and returns it with the exact
    /// `h` it was moved at: no claim made in an older generation succeeds after this.
    fn next_generation(&self) -> (u32, u32) {
        // Ordering: Relaxed; the CAS below revalidates it.
        let mut heads = self.heads.load(Ordering::Relaxed);
        loop {
            let g = generation(heads).wrapping_add(1);
            match self.heads.compare_exchange_weak(
                heads,
                pack(g, claimed(heads)),
                // Ordering: Relaxed; the RMW only fixes `h` and fails the thieves'
                // claims that expect the old generation (one modification order on
                // one word). The new buffer is published by the Release swap of
                // `buffer`, which comes after this in program order.
                Ordering::Relaxed,
                // Ordering: Relaxed; the loop re-checks the fresh value.
                Ordering::Relaxed,
            ) {
                Ok(_) => return (g, claimed(heads)),
                Err(cur) => heads = cur,
            }
        }
    }

    /// Replaces the buffer by one of the next generation and `cap` slots, holding
    /// the items from `h0` to `b`, and records it and its free run in `o`.
    ///
    /// The copy comes first, while stealers go on claiming in the current
    /// generation (they read the old buffer, which still holds every item of
    /// `[h0, b)` and which the owner no longer writes); then the generation bump
    /// fixes the exact `h >= h0` and fails every older claim (I4); then the Release
    /// swap publishes the buffer. So stealers are turned away (`Retry`) only
    /// between the bump and the swap, not for the length of the copy. The indices
    /// of `[h0, h)`, taken meanwhile, are dead copies in the new buffer; their
    /// slots' stamps are stale, but the free run `[b, h + cap)` covers their next
    /// lap, and stamps are read only beyond the run (I2).
    ///
    /// Nothing between the bump and the update of `o` may fail: a panic there (an
    /// allocation failing, with an allocation-error handler that panics) would leave
    /// every steal answering `Retry` until the next replacement (heads of the new
    /// generation, buffer of the old one), or the owner writing a buffer the
    /// stealers no longer read. So everything that allocates comes before the bump
    /// (the buffer, its box, the epoch pin, which registers a thread the first time),
    /// and the retirement of the old buffer (which may push a full bag of deferred
    /// frees to the collector) comes last, where a failure only leaks it.
    ///
    /// # Safety
    ///
    /// Only the owner calls this, with its `Owner` state; `old` is the current
    /// buffer, `b` the current bottom, `h0` a value `h` had, and `b - h0 <= cap`.
    unsafe fn resize(
        &self,
        o: &Owner<T>,
        old: *const Buffer<T>,
        h0: u32,
        b: u32,
        cap: usize,
    ) -> *const Buffer<T> {
        debug_assert!(dist(h0, b) >= 0 && dist(h0, b) as usize <= cap);
        // Ordering: Relaxed; only the owner moves the generation.
        let g = generation(self.heads.load(Ordering::Relaxed)).wrapping_add(1);
        alloc_point();
        let new = Buffer::new(cap, g, h0);
        alloc_point();
        let new = Owned::new(new);
        let mut i = h0;
        while i != b {
            // SAFETY: owner only; `new` is unpublished; `[h0, b)` holds every item a
            // thief can still claim (I4), which we copy bit for bit; nobody writes
            // the slots of `old` (only the owner writes slots, I2).
            unsafe { (*old).copy_to(&new, i) };
            i = i.wrapping_add(1);
        }
        alloc_point();
        let guard = self.reclaim.pin();
        let (bumped, h) = self.next_generation();
        debug_assert!(bumped == g && dist(h0, h) >= 0 && dist(h, b) >= 0);
        o.renewed_at.set(h);
        let new = new.into_shared(&guard);
        // Ordering: Release pairs with the Acquire load of `buffer` in a steal: the
        // copied bits, the stamps and the generation bump are visible there (I4).
        let old_shared = self.buffer.swap(new, Ordering::Release, &guard);
        let new = new.as_raw();
        o.buffer.set(new);
        o.free_until.set(h.wrapping_add(cap as u32));
        alloc_point();
        // SAFETY: `old_shared` is no longer reachable from `self.buffer`; thieves
        // still reading it are pinned, so the collector frees it after them (I5).
        unsafe { guard.defer_destroy(old_shared) };
        new
    }

    /// Pops from `bottom` (LIFO).
    ///
    /// # Safety
    ///
    /// Only the owner calls this, with its `Owner` state.
    #[inline]
    pub(super) unsafe fn pop_lifo(&self, o: &Owner<T>) -> Option<T> {
        // Ordering: Relaxed; only the owner writes `bottom`.
        let b = self.bottom.load(Ordering::Relaxed);
        let nb = b.wrapping_sub(1);
        // Read before the fence, into registers: after it, every load waits for
        // the fence.
        let buf = o.buffer.get();
        // SAFETY: the owner's current buffer is alive (I5).
        let slots = unsafe { (*buf).slots() };
        // `h` never decreases in a LIFO deque, so `b - top_seen` is at least the
        // length. When it says two items or more, skip the fast paths below: they
        // would read `heads`, which the stealers keep writing, only to find that the
        // fence is needed anyway.
        if dist(o.top_seen.get(), b) < 2 {
            // Ordering: Relaxed; a stale `h` is smaller, so this only skips the
            // protocol when the deque is truly empty (`h` never decreases), and the
            // CAS below revalidates it.
            let heads = self.heads.load(Ordering::Relaxed);
            if claimed(heads) == b {
                o.top_seen.set(b);
                return None;
            }
            if claimed(heads) == nb {
                // One item left (or none, if `h` moved on since): take it from the
                // top with a CAS, like a FIFO pop. `bottom` does not move, so there
                // is no Dekker race and no fence; the CAS decides index `nb` against
                // the thieves' claim CASes (I1). Whether we win or a thief does,
                // `h` is `b` after the CAS.
                o.top_seen.set(b);
                // SAFETY: owner only, current buffer.
                return unsafe { self.take_last(o, buf, heads, nb) };
            }
        }
        // Ordering: Release + the SeqCst fence below (Lê et al., `take`): the store
        // of `bottom` and the load of `heads` are ordered against a stealer's load
        // of `heads`, fence, load of `bottom` (Dekker): at least one of us sees the other.
        // Release (the paper has Relaxed, but its slots are atomics): a stealer whose
        // Acquire load of `bottom` reads this value must also see our earlier writes of
        // the slots below it, or its non-atomic read of a slot races them (Miri caught
        // this with Relaxed). Free on x86; one `stlr` on ARM.
        self.bottom.store(nb, around_fence(Ordering::Release));
        seqcst_fence();
        // Ordering: Relaxed after the fence (Lê et al.: `load_relaxed(top)`).
        let heads = self.heads.load(around_fence(Ordering::Relaxed));
        let left = dist(claimed(heads), nb);
        if left > 0 {
            o.top_seen.set(claimed(heads));
            // SAFETY: `h < nb` after the Dekker fence: no stealer can claim `nb` (I1);
            // we wrote it ourselves; `slots` are those of the current buffer.
            let value = unsafe { Buffer::read_in(slots, nb) };
            // SAFETY: owner only, current buffer.
            unsafe { self.maybe_shrink(o, buf, claimed(heads), nb) };
            return Some(value);
        }
        let won = left == 0
            && self
                .heads
                .compare_exchange(
                    heads,
                    pack(generation(heads), b),
                    // Ordering: SeqCst as in Lê et al.; the CAS decides the race on
                    // the last item against the stealers' claim CAS on the same word.
                    Ordering::SeqCst,
                    // Ordering: Relaxed; a failure means a stealer took it.
                    Ordering::Relaxed,
                )
                .is_ok();
        // Ordering: Release, for the slot writes it publishes (see the decrement):
        // `bottom == h` again, empty.
        self.bottom.store(b, Ordering::Release);
        // `h` is `b` now (if we lost the last item, a thief moved it there).
        o.top_seen.set(b);
        if !won {
            return None;
        }
        // SAFETY: we won the CAS on index `nb` (I1); we wrote it ourselves; `slots`
        // are those of the current buffer.
        let value = unsafe { Buffer::read_in(slots, nb) };
        // SAFETY: owner only, current buffer; we just read index `nb`.
        unsafe { Self::owner_took(o, buf, nb) };
        Some(value)
    }

    /// Records that the owner took index `i` from the top and read it: the slot is
    /// free for `i + capacity`. When that index is the end of the owner's free run,
    /// the run just grows by one and the stamp is left alone (only the owner's
    /// `free_run` reads it, and never for an index inside the run); else the stamp is
    /// advanced as a thief would (I2).
    ///
    /// # Safety
    ///
    /// Only the owner calls this, with its `Owner` state; `buf` is the current buffer.
    #[inline]
    unsafe fn owner_took(o: &Owner<T>, buf: *const Buffer<T>, i: u32) {
        // SAFETY: the owner's current buffer is alive (I5).
        let buf = unsafe { &*buf };
        let next = i.wrapping_add(buf.cap() as u32);
        // The run grows without a refill only while no renewal is due: a FIFO owner
        // that pops as fast as it pushes would otherwise never refill (I6).
        if o.free_until.get() == next && next.wrapping_sub(o.renewed_at.get()) < RENEW_EVERY {
            o.free_until.set(next.wrapping_add(1));
        } else {
            buf.release(i);
        }
    }

    /// Takes index `nb`, the last item, from the top with a CAS expecting `heads`.
    ///
    /// # Safety
    ///
    /// Only the owner calls this, with its `Owner` state; `buf` is the current
    /// buffer, `nb == bottom - 1` and `heads` a value of `heads` the owner has read.
    #[inline]
    unsafe fn take_last(
        &self,
        o: &Owner<T>,
        buf: *const Buffer<T>,
        heads: u64,
        nb: u32,
    ) -> Option<T> {
        self.heads
            .compare_exchange(
                heads,
                pack(generation(heads), nb.wrapping_add(1)),
                // Ordering: Relaxed, as the FIFO pop's CAS: it only arbitrates index
                // `nb` with the thieves' claims (one RMW order on one word); `bottom`
                // is not touched, and the slot is our own write.
                Ordering::Relaxed,
                // Ordering: Relaxed; a failure means a thief took it: empty.
                Ordering::Relaxed,
            )
            .ok()?;
        // SAFETY: we won the CAS on index `nb` (I1); we wrote it ourselves.
        let value = unsafe { (*buf).read(nb) };
        // SAFETY: owner only, current buffer; we just read index `nb`.
        unsafe { Self::owner_took(o, buf, nb) };
        Some(value)
    }

    /// Pops from the top (FIFO): the owner claims `h` with a CAS like a stealer.
    ///
    /// # Safety
    ///
    /// Only the owner calls this, with its `Owner` state.
    #[inline]
    pub(super) unsafe fn pop_fifo(&self, o: &Owner<T>) -> Option<T> {
        // Ordering: Relaxed; only the owner writes `bottom`.
        let b = self.bottom.load(Ordering::Relaxed);
        // Ordering: Relaxed; a stale `h` is smaller, so this only skips the RMW when
        // the deque is truly empty; the RMW below decides.
        if claimed(self.heads.load(Ordering::Relaxed)) == b {
            return None;
        }
        // Read before the RMW, into registers: after it, every load waits for it.
        let buf = o.buffer.get();
        // SAFETY: the owner's current buffer is alive (I5).
        let slots = unsafe { (*buf).slots() };
        // Ordering: Relaxed; the RMW only arbitrates index `h` with the stealers'
        // claim CASes (one RMW order on one word). In FIFO mode `bottom` never
        // decreases, so there is no Dekker race, and the slot is our own write.
        let h = claimed(self.heads.fetch_add(ONE_H, Ordering::Relaxed));
        if h == b {
            // The thieves took the last item since our check: undo. Nobody else
            // moves `h` meanwhile: thieves claim only below `bottom`, and the owner
            // (us) is the only one to move the generation.
            // Ordering: Relaxed, as the RMW above.
            self.heads.fetch_sub(ONE_H, Ordering::Relaxed);
            return None;
        }
        // SAFETY: we claimed `h` (I1) and wrote it ourselves; `slots` are those of
        // the current buffer.
        let value = unsafe { Buffer::read_in(slots, h) };
        // SAFETY: owner only, current buffer; we just read index `h`.
        unsafe { Self::owner_took(o, buf, h) };
        // SAFETY: owner only, current buffer.
        unsafe { self.maybe_shrink(o, buf, h.wrapping_add(1), b) };
        Some(value)
    }

    /// Halves the buffer when it is at most a quarter full.
    ///
    /// # Safety
    ///
    /// Only the owner calls this, with its `Owner` state; `buf` is the current
    /// buffer, `h` a claimed index the owner has read, `b` the current bottom.
    #[inline]
    unsafe fn maybe_shrink(&self, o: &Owner<T>, buf: *const Buffer<T>, h: u32, b: u32) {
        // SAFETY: the owner's current buffer is alive (I5).
        let cap = unsafe { (*buf).cap() };
        if cap > MIN_CAP && dist(h, b) as usize <= cap / 4 {
            // SAFETY: owner only, current buffer.
            unsafe { self.shrink(o, buf, b) };
        }
    }

    /// Halves the buffer.
    ///
    /// # Safety
    ///
    /// As `maybe_shrink`, and the deque holds at most a quarter of the capacity.
    #[cold]
    #[inline(never)]
    unsafe fn shrink(&self, o: &Owner<T>, buf: *const Buffer<T>, b: u32) {
        // SAFETY: the owner's current buffer is alive (I5).
        let cap = unsafe { (*buf).cap() } / 2;
        // Ordering: Relaxed; a value `h` had, no older than the one the caller
        // checked (coherence), so `b - h0 <= cap / 2` still holds.
        let h0 = claimed(self.heads.load(Ordering::Relaxed));
        // SAFETY: owner only, current buffer; `h0` is a value `h` had, and
        // `b - h0 <= cap / 2`.
        unsafe { self.resize(o, buf, h0, b, cap) };
    }

    /// Drops the items still in the deque and frees the buffer. Called once, when
    /// the last handle goes. If an item's `Drop` panics, the items after it are
    /// still dropped and the buffer freed during the unwind, as a `Vec` does (a
    /// second panic, during the unwind, aborts).
    pub(super) fn drain_on_drop(&mut self) {
        /// The items not yet dropped, `[next, end)`, and the buffer that holds
        /// them, freed with the guard.
        struct Rest<T> {
            buf: Owned<Buffer<T>>,
            next: u32,
            end: u32,
        }
        impl<T> Rest<T> {
            fn drop_items(&mut self) {
                while self.next != self.end {
                    let i = self.next;
                    // Moved on before the drop: an item whose `Drop` panics is not
                    // dropped again by the guard.
                    self.next = i.wrapping_add(1);
                    // SAFETY: `[next, end)` are live items (I3) that nobody else
                    // exists to take, each read once: `next` has moved past `i`.
                    drop(unsafe { self.buf.read(i) });
                }
            }
        }
        impl<T> Drop for Rest<T> {
            fn drop(&mut self) {
                self.drop_items();
            }
        }
        // SAFETY: `&mut self`: no other thread holds a handle, so nothing is pinned
        // on this buffer and no stealer is in the middle of a steal.
        let guard = unsafe { epoch::unprotected() };
        // Ordering: Relaxed; exclusive access.
        let h = claimed(self.heads.load(Ordering::Relaxed));
        // Ordering: Relaxed; exclusive access.
        let b = self.bottom.load(Ordering::Relaxed);
        // Ordering: Relaxed; exclusive access.
        let buf = self.buffer.load(Ordering::Relaxed, guard);
        let mut rest = Rest {
            // SAFETY: the last reference to the current buffer; retired ones belong
            // to the collector.
            buf: unsafe { buf.into_owned() },
            next: h,
            end: b,
        };
        // `[h, b)` are the live items (I3).
        rest.drop_items();
    }

    // --------------------------------------------------------------- stealer side

    /// Claims index `h` in generation `g`, after checking `h < bottom` behind the
    /// stealer's fence (Lê et al., `steal`; `steal_fence`).
    #[inline]
    fn claim_one(&self, g: u32, h: u32) -> Claim {
        steal_fence();
        // Ordering: Acquire pairs with the Release stores of `bottom` (push, pop): the
        // slot write happens before our read (I4).
        let b = self.bottom.load(around_fence(Ordering::Acquire));
        if dist(h, b) <= 0 {
            return Claim::Empty;
        }
        match self.heads.compare_exchange(
            pack(g, h),
            pack(g, h.wrapping_add(1)),
            // Ordering: SeqCst as in Lê et al.: decides index `h` against the owner's
            // last-item CAS and other stealers (I1).
            Ordering::SeqCst,
            // Ordering: Relaxed; a failed claim reads nothing.
            Ordering::Relaxed,
        ) {
            Ok(_) => Claim::Got,
            Err(_) => Claim::Retry,
        }
    }

    /// Steals up to `max` items (at least one if any) from the top, giving them
    /// oldest first to `sink`. A batch is at most half the length, rounded up.
    /// `fifo` is the owner's flavor: a FIFO owner never decrements `bottom`, so a
    /// range can be claimed with one CAS.
    #[inline]
    pub(super) fn steal_into(
        &self,
        max: usize,
        fifo: bool,
        mut sink: impl FnMut(T),
    ) -> Steal<usize> {
        debug_assert!(max >= 1);
        let guard = self.reclaim.pin();
        // Ordering: Acquire (Lê et al.: `load_acquire(top)`).
        let heads = self.heads.load(around_fence(Ordering::Acquire));
        let (g, h) = (generation(heads), claimed(heads));
        // Ordering: Acquire pairs with the Release swap in `resize`: the buffer's
        // copied bits and stamps are visible (I4).
        let buf = self.buffer.load(Ordering::Acquire, &guard);
        // SAFETY: loaded under our guard, never null (I5).
        let buf = unsafe { buf.deref() };
        // Loaded before the claim CAS, into registers: after it, every load waits.
        let slots = buf.slots();
        if buf.generation != g {
            // The owner is between a generation bump and the buffer swap (I4).
            return Steal::Retry;
        }
        let n: u32 = if fifo && max > 1 {
            steal_fence();
            // Ordering: Acquire, as in `claim_one`.
            let b = self.bottom.load(around_fence(Ordering::Acquire));
            let len = dist(h, b);
            if len <= 0 {
                return Steal::Empty;
            }
            let want = (len as u32 as usize).div_ceil(2).min(max) as u32;
            match self.heads.compare_exchange(
                pack(g, h),
                pack(g, h.wrapping_add(want)),
                // Ordering: SeqCst, as the single claim in `claim_one` (I1). `bottom`
                // never decreases in FIFO mode, so all of `[h, h + want)` is below it.
                Ordering::SeqCst,
                // Ordering: Relaxed; a failed claim reads nothing.
                Ordering::Relaxed,
            ) {
                Ok(_) => want,
                Err(_) => return Steal::Retry,
            }
        } else {
            let mut n = match self.claim_one(g, h) {
                Claim::Got => 1,
                Claim::Empty => return Steal::Empty,
                Claim::Retry => return Steal::Retry,
            };
            if max > 1 {
                // LIFO owner: claim one index at a time, each behind its own fence, so
                // the owner's fence-only pop stays correct (I1). Stop at half of what
                // we saw.
                // Ordering: Relaxed; only a size hint, every claim rechecks `bottom`.
                let seen = dist(h, self.bottom.load(Ordering::Relaxed)).max(1) as u32 as usize;
                let want = seen.div_ceil(2).min(max) as u32;
                while n < want {
                    match self.claim_one(g, h.wrapping_add(n)) {
                        Claim::Got => n += 1,
                        _ => break,
                    }
                }
            }
            n
        };
        // Read and release the claimed slots a chunk at a time *before* handing the
        // items to `sink` (which may be slow: a batch pushes into another deque), so
        // that the slots are free again as soon as possible (I2, I7: an owner that
        // laps an unreleased slot copies the deque). Big items go one at a time
        // instead: each is released before it is handed on, the later ones only after
        // the earlier ones' `sink` calls. If `sink` panics, the items of
        // the chunk not yet handed over are leaked, never dropped twice, and so are the
        // items of later chunks: claimed but never read, their slots stay stamped as
        // taken, so the owner copies the deque into a new buffer when it laps them.
        if size_of::<T>() > BIG_ITEM {
            // Big items go one at a time: a chunk of them would not fit on the stack.
            for k in 0..n {
                let i = h.wrapping_add(k);
                // SAFETY: as in `hand_over`: claimed in generation `g`, not yet released.
                let item = unsafe { Buffer::read_in(slots, i) };
                buf.release(i);
                sink(item);
            }
        } else {
            // SAFETY: we claimed `[h, h + n)` in generation `g`, the generation of
            // `buf`, whose slots `slots` are, and released none of them.
            unsafe { Self::hand_over(buf, slots, h, n, &mut sink) };
        }
        drop(guard);
        Steal::Success(n as usize)
    }

    /// Reads and releases the claimed slots `[h, h + n)` a chunk at a time, handing the
    /// items to `sink` after each chunk. A function of its own, so that its chunk
    /// array is on the stack only when it runs (never for big items).
    ///
    /// # Safety
    ///
    /// The caller claimed `[h, h + n)` in the generation of `buf`, whose slots
    /// `slots` are, and has released none of them.
    #[inline]
    unsafe fn hand_over(
        buf: &Buffer<T>,
        slots: &[Slot<T>],
        h: u32,
        n: u32,
        sink: &mut impl FnMut(T),
    ) {
        let mut k = 0;
        while k < n {
            let m = (n - k).min(CHUNK as u32);
            let mut items: [MaybeUninit<T>; CHUNK] = [const { MaybeUninit::uninit() }; CHUNK];
            for (j, item) in items.iter_mut().enumerate().take(m as usize) {
                let i = h.wrapping_add(k + j as u32);
                // SAFETY: we claimed `i` in generation `g`, the generation of `buf`,
                // so `buf` (whose slots `slots` are) holds its item (I4); nobody
                // writes the slot before we release it (I2).
                item.write(unsafe { Buffer::read_in(slots, i) });
                buf.release(i);
            }
            for item in &mut items[..m as usize] {
                // SAFETY: initialized just above, and read out exactly once here.
                sink(unsafe { item.assume_init_read() });
            }
            k += m;
        }
    }
}
