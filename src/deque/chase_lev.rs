//! The Chase-Lev deque shared by one [`Worker`](super::Worker) and its
//! [`Stealer`](super::Stealer)s. The module doc of [`deque`](super) describes the
//! algorithm, its invariants (cited here as I1..I7) and its memory orderings.

use super::{Reclaim, Steal};
use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::sync::UnsafeCell;
use core::mem::MaybeUninit;
use crossbeam_epoch::{self as epoch, Atomic, Owned};
use crossbeam_utils::CachePadded;

/// Smallest buffer, and the size a new deque starts with. Small under the model
/// checkers so that a handful of pushes already grows and shrinks the buffer.
#[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
pub(super) const MIN_CAP: usize = 16;
#[cfg(any(atomkit_loom, atomkit_shuttle))]
pub(super) const MIN_CAP: usize = 2;

/// Largest buffer: lengths must stay below half the index space (I6).
pub(super) const MAX_CAP: usize = 1 << 30;

/// Packs the heads word: the released index `s` in the high half, the claimed index
/// `h` in the low half.
#[inline]
pub(super) fn pack(s: u32, h: u32) -> u64 {
    (u64::from(s) << 32) | u64::from(h)
}

/// The released index `s` of a heads word.
#[inline]
pub(super) fn released(heads: u64) -> u32 {
    (heads >> 32) as u32
}

/// The claimed index `h` of a heads word.
#[inline]
pub(super) fn claimed(heads: u64) -> u32 {
    heads as u32
}

/// The heads word after the owner takes up to `h`: with no steal in flight
/// (`s == h`) the owner's take is released at once, else the stealer's release-CAS
/// moves `s` past it (I1).
#[inline]
fn after_take(heads: u64, h: u32) -> u64 {
    if released(heads) == claimed(heads) {
        pack(h, h)
    } else {
        pack(released(heads), h)
    }
}

/// `to - from` as a signed distance in the wrapping index space (I6).
#[inline]
pub(super) fn dist(from: u32, to: u32) -> i32 {
    to.wrapping_sub(from) as i32
}

/// A slot holds an item's bits; who may touch it is decided by the indices (I1-I3).
type Slot<T> = UnsafeCell<MaybeUninit<T>>;

/// A power-of-two ring of slots. Indices map to slots modulo the length, which
/// divides 2^32, so the mapping survives index wrap-around.
pub(super) struct Buffer<T> {
    slots: Box<[Slot<T>]>,
}

impl<T> Buffer<T> {
    fn new(cap: usize) -> Self {
        debug_assert!(cap.is_power_of_two() && cap <= MAX_CAP);
        Buffer {
            slots: (0..cap)
                .map(|_| UnsafeCell::new(MaybeUninit::uninit()))
                .collect(),
        }
    }

    #[inline]
    pub(super) fn cap(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    fn slot(&self, index: u32) -> &Slot<T> {
        &self.slots[index as usize & (self.slots.len() - 1)]
    }

    /// Writes `value` into the slot of `index`.
    ///
    /// # Safety
    ///
    /// The caller is the owner, `index` is in the owner's free range (I2: no
    /// stealer reads that slot) and the slot holds no live item.
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
    /// The caller has claimed `index` (I1, I3) so it is the only one taking this
    /// item, the slot holds an initialized item in this buffer (I4), and no thread
    /// writes the slot until the caller releases it (I2).
    #[inline]
    unsafe fn read(&self, index: u32) -> T {
        // SAFETY: the caller guarantees the slot is initialized and claimed by it.
        self.slot(index)
            .with(|p| unsafe { (*p).assume_init_read() })
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
    /// `pack(s, h)`: `h` is the next index to take from the top (claimed below it),
    /// `s` is the released index (I1). Written by stealers (claim and release CASes)
    /// and by the owner (last-item CAS in LIFO mode, every pop in FIFO mode).
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

/// Outcome of a claim of one index at the top.
enum Claim {
    Got,
    Empty,
    Retry,
}

/// A fence between the store of `bottom` and the load of `heads` in `pop` (and
/// between the load of `heads` and of `bottom` in a steal). Under ThreadSanitizer,
/// which ignores fences, the surrounding accesses are made `SeqCst` instead.
#[inline]
fn seqcst_fence() {
    #[cfg(not(atomkit_tsan))]
    // Ordering: the Dekker fence of Lê et al.: see "Memory orderings" in the module doc.
    crate::sync::atomic::fence(Ordering::SeqCst);
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
            heads: CachePadded::new(AtomicU64::new(pack(start, start))),
            bottom: CachePadded::new(AtomicU32::new(start)),
            buffer: CachePadded::new(Atomic::new(Buffer::new(MIN_CAP))),
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

    /// Pushes `value` at `bottom`. Returns the new buffer if it had to grow.
    ///
    /// # Safety
    ///
    /// Only the owner calls this; `buf` is the current buffer; `cached_s` is a
    /// released index the owner has read (with Acquire) before (any older one is
    /// a conservative stand-in: `s` only grows).
    pub(super) unsafe fn push(&self, buf: &mut *const Buffer<T>, cached_s: &mut u32, value: T) {
        // Ordering: Relaxed; only the owner writes `bottom`.
        let b = self.bottom.load(Ordering::Relaxed);
        // SAFETY: the owner's cached buffer is the current one, alive until the
        // owner retires it (I5).
        let mut cap = unsafe { (**buf).cap() };
        if dist(*cached_s, b) as usize >= cap {
            // Ordering: Acquire pairs with the Release release-CAS in
            // `Inner::finish_steal`: the stealers' reads of slots below `s` happen
            // before we overwrite them (I2). (Lê et al.: `load_acquire(top)`.)
            let s = released(self.heads.load(Ordering::Acquire));
            *cached_s = s;
            if dist(s, b) as usize >= cap {
                assert!(cap < MAX_CAP, "deque capacity overflow");
                cap *= 2;
                // SAFETY: owner only; `[s, b)` is everything a stealer may still read.
                *buf = unsafe { self.resize(*buf, s, b, cap) };
            }
        }
        // SAFETY: `b - s < cap`, so slot `b` is no stealer's (I2), and it holds no
        // live item (I3).
        unsafe { (**buf).write(b, value) };
        // Ordering: Release (Lê et al.: `fence(release)` + relaxed store) publishes
        // the slot write and any new buffer to stealers' Acquire load of `bottom`.
        self.bottom.store(b.wrapping_add(1), Ordering::Release);
    }

    /// Replaces the buffer by one of `cap` slots holding indices `[s, b)`.
    ///
    /// # Safety
    ///
    /// Only the owner calls this; `old` is the current buffer; `s` is a released
    /// index read by the owner (no stealer reads below it), `b` the current bottom,
    /// and `b - s <= cap`.
    unsafe fn resize(&self, old: *const Buffer<T>, s: u32, b: u32, cap: usize) -> *const Buffer<T> {
        let new = Buffer::new(cap);
        let mut i = s;
        while i != b {
            // SAFETY: owner only; `new` is unpublished; `[s, b)` holds every index a
            // stealer may claim or still read (I4), which we copy bit for bit.
            unsafe { (*old).copy_to(&new, i) };
            i = i.wrapping_add(1);
        }
        let guard = self.reclaim.pin();
        // Ordering: Release pairs with the Acquire load of `buffer` in a steal after
        // its claim, so the copied bits are visible there (I4). (Lê et al. use
        // `store_relaxed(array)` and rely on the later release of `bottom`; the
        // re-read after claiming needs the buffer itself published.)
        let old_shared = self.buffer.swap(Owned::new(new), Ordering::Release, &guard);
        // SAFETY: `old_shared` is no longer reachable from `self.buffer`; stealers
        // still reading it are pinned, so the collector frees it after them (I5).
        unsafe { guard.defer_destroy(old_shared) };
        // Ordering: Relaxed; we just stored it ourselves.
        self.buffer.load(Ordering::Relaxed, &guard).as_raw()
    }

    /// Pops from `bottom` (LIFO).
    ///
    /// # Safety
    ///
    /// Only the owner calls this; `buf` is the current buffer.
    pub(super) unsafe fn pop_lifo(&self, buf: &mut *const Buffer<T>) -> Option<T> {
        // Ordering: Relaxed; only the owner writes `bottom`.
        let b = self.bottom.load(Ordering::Relaxed);
        // Ordering: Relaxed; a stale `h` is smaller, so this only skips the protocol
        // when the deque is truly empty (`h` never decreases).
        if claimed(self.heads.load(Ordering::Relaxed)) == b {
            return None;
        }
        let nb = b.wrapping_sub(1);
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
        let mut heads = self.heads.load(around_fence(Ordering::Relaxed));
        let left = dist(claimed(heads), nb);
        if left < 0 {
            // Empty: undo the decrement.
            // Ordering: Release, for the slot writes it publishes (see the decrement).
            self.bottom.store(b, Ordering::Release);
            return None;
        }
        if left == 0 {
            // The last item: race the stealers for it with a CAS on `h` (I1).
            let won = loop {
                if claimed(heads) != nb {
                    break false;
                }
                match self.heads.compare_exchange_weak(
                    heads,
                    after_take(heads, b),
                    // Ordering: SeqCst as in Lê et al.; the CAS decides the race on
                    // the last item against the stealers' claim CAS on the same word.
                    Ordering::SeqCst,
                    // Ordering: Relaxed; the loop re-checks the fresh value.
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break true,
                    Err(cur) => heads = cur,
                }
            };
            // Ordering: Release, for the slot writes it publishes (see the decrement):
            // `bottom == h` again, empty.
            self.bottom.store(b, Ordering::Release);
            if !won {
                return None;
            }
        }
        // SAFETY: index `nb` is ours: either `h < nb` after the Dekker fence (no
        // stealer can claim it, I1) or we won the CAS on it; we wrote it ourselves.
        let value = unsafe { (**buf).read(nb) };
        // SAFETY: owner only, current buffer.
        unsafe { self.maybe_shrink(buf, released(heads), nb.wrapping_add((left == 0) as u32)) };
        Some(value)
    }

    /// Pops from the top (FIFO): the owner claims `h` with a CAS like a stealer.
    ///
    /// # Safety
    ///
    /// Only the owner calls this; `buf` is the current buffer.
    pub(super) unsafe fn pop_fifo(&self, buf: &mut *const Buffer<T>) -> Option<T> {
        // Ordering: Relaxed; only the owner writes `bottom`.
        let b = self.bottom.load(Ordering::Relaxed);
        // Ordering: Relaxed; the CAS below revalidates it.
        let mut heads = self.heads.load(Ordering::Relaxed);
        let h = loop {
            let h = claimed(heads);
            if h == b {
                return None;
            }
            match self.heads.compare_exchange_weak(
                heads,
                after_take(heads, h.wrapping_add(1)),
                // Ordering: Relaxed; the CAS only arbitrates index `h` with the
                // stealers' claims (one RMW order on one word). In FIFO mode `bottom`
                // never decreases, so there is no Dekker race, and the slot is our own
                // write.
                Ordering::Relaxed,
                // Ordering: Relaxed; the loop re-checks the fresh value.
                Ordering::Relaxed,
            ) {
                Ok(_) => break h,
                Err(cur) => heads = cur,
            }
        };
        // SAFETY: we claimed `h` (I1) and wrote it ourselves.
        let value = unsafe { (**buf).read(h) };
        // SAFETY: owner only, current buffer.
        unsafe { self.maybe_shrink(buf, released(heads), b) };
        Some(value)
    }

    /// Halves the buffer when it is at most a quarter full and everything a stealer
    /// may still read (`[s, b)`) fits.
    ///
    /// # Safety
    ///
    /// Only the owner calls this; `buf` is the current buffer; `s` a released index
    /// the owner has read, `b` the current bottom.
    unsafe fn maybe_shrink(&self, buf: &mut *const Buffer<T>, s: u32, b: u32) {
        // SAFETY: the owner's current buffer is alive (I5).
        let cap = unsafe { (**buf).cap() };
        let span = dist(s, b) as usize;
        if cap > MIN_CAP && span <= cap / 4 {
            // SAFETY: owner only; `b - s <= cap / 4 <= cap / 2`. A stale `s` is
            // smaller and only copies more (still released) bits.
            *buf = unsafe { self.resize(*buf, s, b, cap / 2) };
        }
    }

    /// Drops the items still in the deque. Called once, when the last handle goes.
    pub(super) fn drain_on_drop(&mut self) {
        // SAFETY: `&mut self`: no other thread holds a handle, so nothing is pinned
        // on this buffer and no stealer is in the middle of a claim (s == h).
        let guard = unsafe { epoch::unprotected() };
        // Ordering: Relaxed; exclusive access.
        let h = claimed(self.heads.load(Ordering::Relaxed));
        // Ordering: Relaxed; exclusive access.
        let b = self.bottom.load(Ordering::Relaxed);
        // Ordering: Relaxed; exclusive access.
        let buf = self.buffer.load(Ordering::Relaxed, guard);
        let mut i = h;
        while i != b {
            // SAFETY: `[h, b)` are the live items (I3); nobody else exists to take them.
            drop(unsafe { buf.deref().read(i) });
            i = i.wrapping_add(1);
        }
        // SAFETY: the last reference to the current buffer; retired ones belong to
        // the collector.
        drop(unsafe { buf.into_owned() });
    }

    // --------------------------------------------------------------- stealer side

    /// Claims index `h` given the heads word `(s0, h)` the stealer expects, after
    /// checking `h < bottom` behind the SeqCst fence (Lê et al., `steal`).
    fn claim_one(&self, s0: u32, h: u32) -> Claim {
        seqcst_fence();
        // Ordering: Acquire pairs with the Release store of `bottom` in `push`: the
        // slot write (and the buffer it went into) happen before our read (I4).
        let b = self.bottom.load(around_fence(Ordering::Acquire));
        if dist(h, b) <= 0 {
            return Claim::Empty;
        }
        match self.heads.compare_exchange(
            pack(s0, h),
            pack(s0, h.wrapping_add(1)),
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

    /// Starts a steal: returns `h` when no other steal is in flight (`s == h`).
    fn begin_steal(&self) -> Result<u32, Steal<()>> {
        // Ordering: Acquire (Lê et al.: `load_acquire(top)`); pairs with the Release
        // of the previous stealer's release-CAS, ordering its reads before ours.
        let heads = self.heads.load(around_fence(Ordering::Acquire));
        let (s, h) = (released(heads), claimed(heads));
        if s != h {
            // Another stealer holds `[s, h)` (I1): one steal at a time.
            return Err(Steal::Retry);
        }
        Ok(h)
    }

    /// Releases a steal that claimed from `s0`: sets `s := h` (I1).
    fn finish_steal(&self, s0: u32) {
        // Ordering: Relaxed; the CAS below revalidates it.
        let mut heads = self.heads.load(Ordering::Relaxed);
        loop {
            debug_assert_eq!(released(heads), s0);
            match self.heads.compare_exchange_weak(
                heads,
                pack(claimed(heads), claimed(heads)),
                // Ordering: Release pairs with the owner's Acquire load of `heads` in
                // `push` (and the next stealer's in `begin_steal`): our reads of the
                // claimed slots happen before the owner reuses them (I2).
                Ordering::Release,
                // Ordering: Relaxed; the loop re-checks the fresh value.
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(cur) => heads = cur,
            }
        }
    }

    /// Steals up to `max` items (at least one if any) from the top, giving them
    /// oldest first to `sink`. `half` limits the batch to half the length, rounded up.
    /// `fifo` is the owner's flavor: a FIFO owner never decrements `bottom`, so a
    /// range can be claimed with one CAS.
    pub(super) fn steal_into(
        &self,
        max: usize,
        fifo: bool,
        mut sink: impl FnMut(T),
    ) -> Steal<usize> {
        debug_assert!(max >= 1);
        let guard = self.reclaim.pin();
        let h = match self.begin_steal() {
            Ok(h) => h,
            Err(e) => return e.map_never(),
        };
        let mut n: u32 = if fifo && max > 1 {
            seqcst_fence();
            // Ordering: Acquire, as in `claim_one`.
            let b = self.bottom.load(around_fence(Ordering::Acquire));
            let len = dist(h, b);
            if len <= 0 {
                return Steal::Empty;
            }
            let want = (len as u32 as usize).div_ceil(2).min(max) as u32;
            match self.heads.compare_exchange(
                pack(h, h),
                pack(h, h.wrapping_add(want)),
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
            match self.claim_one(h, h) {
                Claim::Got => 1,
                Claim::Empty => return Steal::Empty,
                Claim::Retry => return Steal::Retry,
            }
        };
        if !fifo && max > 1 {
            // LIFO owner: claim one index at a time, each behind its own fence, so the
            // owner's fence-only pop stays correct (I1). Stop at half of what we saw.
            // Ordering: Relaxed; only a size hint, every claim rechecks `bottom`.
            let seen = dist(h, self.bottom.load(Ordering::Relaxed)).max(1) as u32 as usize;
            let want = seen.div_ceil(2).min(max) as u32;
            while n < want {
                match self.claim_one(h, h.wrapping_add(n)) {
                    Claim::Got => n += 1,
                    _ => break,
                }
            }
        }
        // Re-read the buffer after claiming (the CVE-2021-32810 fix), never before.
        // Ordering: Acquire pairs with the Release swap in `resize`; together with the
        // Acquire of `bottom` in the claim it yields a buffer holding `[h, h + n)` (I4).
        let buf = self.buffer.load(Ordering::Acquire, &guard);
        // SAFETY: loaded under our guard, never null (I5).
        let buf = unsafe { buf.deref() };
        for k in 0..n {
            // SAFETY: we claimed `h + k` (I1); it is initialized in `buf` (I4) and
            // nobody writes it before `finish_steal` (I2).
            sink(unsafe { buf.read(h.wrapping_add(k)) });
        }
        self.finish_steal(h);
        drop(guard);
        Steal::Success(n as usize)
    }
}

impl<T> Steal<T> {
    /// Converts a non-success.
    fn map_never<U>(self) -> Steal<U> {
        match self {
            Steal::Empty => Steal::Empty,
            _ => Steal::Retry,
        }
    }
}
