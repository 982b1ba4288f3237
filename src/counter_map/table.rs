//! A shard: an open-addressing table of entry pointers that readers probe without a
//! lock, and that inserters and removers change under the shard's small mutex.

use super::cell::StripedCell;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::{lock, thread_local, Mutex, MutexGuard, UnsafeCell};
use core::borrow::Borrow;
use core::cell::Cell;
use core::mem::ManuallyDrop;
use crossbeam_epoch::{Atomic, Guard, Owned, Shared};
use crossbeam_utils::CachePadded;

/// A slot whose entry was removed: null with tag 1. Probes continue past it.
const TOMBSTONE: usize = 1;

/// The part of an entry whose layout does not depend on the key type, at offset 0 of
/// every [`Entry`]: a per-thread cache way holds entries of any map through a
/// type-erased pointer to it, and reads it before it knows the key type (see `local`).
pub(super) struct EntryHead {
    /// Gives up one reference on the whole entry (monomorphised for its key type).
    pub(super) release: unsafe fn(*const EntryHead),
    /// The key's full hash. Immutable.
    pub(super) hash: u64,
    /// References: one for the tables while the entry is listed, one per handle and
    /// per cache way.
    refs: AtomicUsize,
    /// Whether the entry holds one of the key cap's slots. Immutable.
    pub(super) reserved: bool,
    /// The count.
    pub(super) cell: StripedCell,
}

/// One key and its count. Shared by the tables that list it (one current table, plus
/// old tables still being read), by `Counter` handles and by per-thread cache ways;
/// freed when the last reference goes (invariant 5).
#[repr(C)]
pub(super) struct Entry<K> {
    /// Everything but the key; first, so that a pointer to the entry is a pointer to it.
    head: EntryHead,
    /// The key. Immutable; in a cell so that loom checks that every reader's access
    /// happens after the write that published the entry.
    key: UnsafeCell<K>,
}

// SAFETY: the key cell is written only at construction and read through shared
// references afterwards (see `Entry::key`), exactly like a plain `K` field; everything
// else is atomics or immutable. So an entry may be shared and sent exactly when `K` may.
unsafe impl<K: Send + Sync> Sync for Entry<K> {}
// SAFETY: as above; the last reference drops the entry on whichever thread holds it.
unsafe impl<K: Send + Sync> Send for Entry<K> {}

impl<K> core::ops::Deref for Entry<K> {
    type Target = EntryHead;

    #[inline]
    fn deref(&self) -> &EntryHead {
        &self.head
    }
}

impl EntryHead {
    /// Takes one more reference, for a handle or a cache way.
    #[inline]
    pub(super) fn acquire(&self) {
        // Ordering: Relaxed: the caller already holds the entry alive (epoch guard or
        // reference), so no memory needs to be published by the increment itself.
        self.refs.fetch_add(1, Ordering::Relaxed);
    }

    /// Drops one reference on the entry this head begins, freeing it with the last.
    ///
    /// # Safety
    ///
    /// `ptr` must point to the head of a live entry made by [`Entry::new`], and the
    /// caller must own one of its references, which it gives up here.
    #[inline]
    pub(super) unsafe fn release(ptr: *const EntryHead) {
        // SAFETY: forwarded from the caller; `release` is the entry's own.
        unsafe { ((*ptr).release)(ptr) }
    }
}

impl<K> Entry<K> {
    pub(super) fn new(hash: u64, key: K, reserved: bool) -> Owned<Entry<K>> {
        Owned::new(Entry {
            head: EntryHead {
                release: Self::release_head,
                hash,
                refs: AtomicUsize::new(1),
                reserved,
                cell: StripedCell::new(),
            },
            key: UnsafeCell::new(key),
        })
    }

    /// The entry as its type-erased head (the same address: `head` is at offset 0).
    #[inline]
    pub(super) fn as_head(ptr: *const Entry<K>) -> *const EntryHead {
        ptr.cast()
    }

    /// The key.
    #[inline]
    pub(super) fn key(&self) -> &K {
        // SAFETY: the key is written once, before the entry is published (Release slot
        // store, Acquire probe), and never mutated; readers hold the entry alive.
        self.key.with(|p| unsafe { &*p })
    }

    /// [`Entry::release`] through the head, as [`EntryHead::release`] calls it.
    ///
    /// # Safety
    ///
    /// As for [`Entry::release`], with `ptr` the head of an `Entry<K>`.
    unsafe fn release_head(ptr: *const EntryHead) {
        // SAFETY: forwarded from the caller; the head is at offset 0 of the entry
        // (`repr(C)`), so the cast gives back the entry pointer it was made from.
        unsafe { Entry::release(ptr.cast::<Entry<K>>()) }
    }

    /// Drops one reference, freeing the entry with the last.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a live entry made by [`Entry::new`], and the caller must own
    /// one of its references, which it gives up here.
    pub(super) unsafe fn release(ptr: *const Entry<K>) {
        // SAFETY: the caller owns a reference, so the entry is live.
        let e = unsafe { &*ptr };
        // Ordering: Release, so that our last uses of the entry happen before the
        // freeing thread's Acquire fence below (the `Arc` protocol). ThreadSanitizer
        // does not model fences, so under `atomkit_tsan` the decrement is AcqRel
        // instead (the same guarantee, one ordering stronger on every release).
        let order = if cfg!(atomkit_tsan) {
            Ordering::AcqRel
        } else {
            Ordering::Release
        };
        if e.refs.fetch_sub(1, order) == 1 {
            // Ordering: Acquire pairs with every other releaser's Release decrement
            // (their release sequences end in our decrement).
            #[cfg(not(atomkit_tsan))]
            crate::sync::atomic::fence(Ordering::Acquire);
            if unlocked::defer_free(Entry::as_head(ptr)) {
                return;
            }
            // SAFETY: ours was the last reference; the pointer came from `Owned::new`.
            drop(unsafe { Owned::from_raw(ptr.cast_mut()) });
        }
    }
}

/// Keeps a key's `Drop` out of the shard locks: the entries a thread frees while it
/// holds any shard lock (of any map) wait until it holds none.
///
/// User code runs under a shard lock (a key's `Eq` and `Clone`), and it can give up
/// the last reference on an entry without calling the map: by counting in another
/// map (its entries fill this thread's cache, which evicts one), by flushing the
/// epoch (which runs deferred releases), or by dropping a [`Counter`](super::Counter).
/// The key's `Drop` may count in its own map, which would then wait for a lock its
/// own thread holds.
mod unlocked {
    use super::{thread_local, Cell, EntryHead, Ordering};

    /// This thread's shard locks and the entries waiting for them.
    struct Unlocked {
        /// Shard locks this thread holds.
        held: Cell<usize>,
        /// Entries whose last reference was given up under a lock, their reference
        /// count set back to 1 (owned by this list).
        frees: Cell<Vec<*const EntryHead>>,
    }

    impl Drop for Unlocked {
        fn drop(&mut self) {
            // Only a key `Drop` that panicked in `leave` leaves entries here.
            for p in self.frees.take() {
                // SAFETY: the list owns one reference on each entry (`defer_free`).
                unsafe { EntryHead::release(p) };
            }
        }
    }

    #[cfg(not(atomkit_loom))]
    thread_local! {
        static UNLOCKED: Unlocked = const {
            Unlocked {
                held: Cell::new(0),
                frees: Cell::new(Vec::new()),
            }
        };
    }
    // loom's `thread_local!` takes no `const` initialiser.
    #[cfg(atomkit_loom)]
    thread_local! {
        static UNLOCKED: Unlocked = Unlocked {
            held: Cell::new(0),
            frees: Cell::new(Vec::new()),
        };
    }

    /// The thread takes a shard lock.
    pub(super) fn enter() {
        // A thread past its thread-locals' end keeps no count (and defers nothing).
        let _ = UNLOCKED.try_with(|u| u.held.set(u.held.get() + 1));
    }

    /// The thread gives up a shard lock; with the last one, it frees the entries
    /// that waited (their keys' `Drop` may take shard locks again).
    pub(super) fn leave() {
        let last = UNLOCKED
            .try_with(|u| {
                u.held.set(u.held.get() - 1);
                u.held.get() == 0
            })
            .unwrap_or(false);
        if !last {
            return;
        }
        while let Some(p) = UNLOCKED
            .try_with(|u| {
                let mut frees = u.frees.take();
                let p = frees.pop();
                u.frees.set(frees);
                p
            })
            .ok()
            .flatten()
        {
            // SAFETY: the list owned one reference on the entry (`defer_free`), handed
            // to us by the pop; no lock is held, so this frees it.
            unsafe { EntryHead::release(p) };
        }
    }

    /// If the thread holds a shard lock, takes over the entry at `p`, whose last
    /// reference was just given up (the count is 0), to free it once the thread
    /// holds none, and returns `true`.
    pub(super) fn defer_free(p: *const EntryHead) -> bool {
        UNLOCKED
            .try_with(|u| {
                if u.held.get() == 0 {
                    return false;
                }
                // SAFETY: nobody else holds a reference on the entry, so it is alive
                // until we free it and ours alone.
                let head = unsafe { &*p };
                // Ordering: Relaxed: the entry is ours alone (see above); the list's
                // reference is given up by this thread.
                head.refs.store(1, Ordering::Relaxed);
                let mut frees = u.frees.take();
                frees.push(p);
                u.frees.set(frees);
                true
            })
            .unwrap_or(false)
    }
}

/// A shard's mutex, held: see [`unlocked`]. Dereferences to the state it guards.
pub(super) struct ShardLock<'a> {
    guard: ManuallyDrop<MutexGuard<'a, ShardState>>,
}

impl core::ops::Deref for ShardLock<'_> {
    type Target = ShardState;

    fn deref(&self) -> &ShardState {
        &self.guard
    }
}

impl core::ops::DerefMut for ShardLock<'_> {
    fn deref_mut(&mut self) -> &mut ShardState {
        &mut self.guard
    }
}

impl Drop for ShardLock<'_> {
    fn drop(&mut self) {
        // SAFETY: dropped once, here; the field is not used afterwards.
        unsafe { ManuallyDrop::drop(&mut self.guard) };
        unlocked::leave();
    }
}

/// A power-of-two array of slots; linear probing from `hash & mask`.
pub(super) struct Table<K> {
    slots: Box<[Atomic<Entry<K>>]>,
}

impl<K> Table<K> {
    pub(super) fn new(cap: usize) -> Owned<Table<K>> {
        debug_assert!(cap.is_power_of_two());
        Owned::new(Table {
            slots: (0..cap).map(|_| Atomic::null()).collect(),
        })
    }

    pub(super) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Probes for `key`; lock-free. The entry returned may be dead (removed after this
    /// table was read); its cell says so.
    #[inline]
    pub(super) fn find<'g, Q>(&self, hash: u64, key: &Q, guard: &'g Guard) -> Option<&'g Entry<K>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.find_slot(hash, key, guard).map(|(_, e)| {
            // SAFETY: `find_slot` returns non-null entries read under `guard`; an entry
            // listed in a table is freed only after an epoch passes (invariant 5).
            unsafe { e.deref() }
        })
    }

    /// Probes for `key`, returning its slot index and entry pointer.
    #[inline]
    pub(super) fn find_slot<'g, Q>(
        &self,
        hash: u64,
        key: &Q,
        guard: &'g Guard,
    ) -> Option<(usize, Shared<'g, Entry<K>>)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        for _ in 0..self.slots.len() {
            // Ordering: Acquire pairs with the Release store in `put` (or the Release
            // store of the table in `Shard::grow`), so the entry's fields are visible.
            let s = self.slots[i].load(Ordering::Acquire, guard);
            if s.is_null() {
                if s.tag() != TOMBSTONE {
                    return None; // end of the probe chain (invariant 2)
                }
            } else {
                // SAFETY: non-null slot pointers are live entries while `guard` is held
                // (invariant 5).
                let e = unsafe { s.deref() };
                if e.hash == hash && e.key().borrow() == key {
                    return Some((i, s));
                }
            }
            i = (i + 1) & mask;
        }
        None
    }

    /// Under the shard lock: stores `e` in the first free slot (tombstone or empty) of
    /// its probe chain. Returns whether that slot was empty (not a tombstone).
    fn put(&self, e: Shared<'_, Entry<K>>, hash: u64, guard: &Guard) -> bool {
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            // Ordering: Relaxed: slots change only under the shard lock, which we hold.
            let s = self.slots[i].load(Ordering::Relaxed, guard);
            if s.is_null() {
                // Ordering: Release pairs with the Acquire probe in `find_slot`: the
                // entry's fields are written before it becomes reachable.
                self.slots[i].store(e, Ordering::Release);
                return s.tag() != TOMBSTONE;
            }
            i = (i + 1) & mask;
        }
    }

    /// Slot `i`: `None` past the end, `Some(None)` for an empty slot or tombstone.
    pub(super) fn entry_at<'g>(&self, i: usize, guard: &'g Guard) -> Option<Option<&'g Entry<K>>> {
        // Ordering: Acquire, as in `find_slot`.
        let s = self.slots.get(i)?.load(Ordering::Acquire, guard);
        // SAFETY: non-null slot pointers are live entries while `guard` is held
        // (invariant 5).
        Some(unsafe { s.as_ref() })
    }

    /// The live entries listed in this table.
    pub(super) fn entries<'g>(
        &'g self,
        guard: &'g Guard,
    ) -> impl Iterator<Item = Shared<'g, Entry<K>>> + 'g {
        self.slots
            .iter()
            // Ordering: Acquire, as in `find_slot`.
            .map(move |s| s.load(Ordering::Acquire, guard))
            .filter(|s| !s.is_null())
    }

    /// Calls `f` on every entry listed in this table, in slot order. Entries are
    /// scattered over the heap, so a walk of a big table waits on a cache miss per
    /// entry; this one prefetches each entry `AHEAD` entries before `f` reads it, so the
    /// misses overlap.
    pub(super) fn for_each_entry<'g>(&'g self, guard: &'g Guard, mut f: impl FnMut(&'g Entry<K>)) {
        self.for_each_entry_ptr(guard, |p| {
            // SAFETY: a listed entry read under `guard`, which pins it (invariant 5).
            f(unsafe { &*p })
        });
    }

    /// [`for_each_entry`](Self::for_each_entry) with raw pointers, for a caller that
    /// may free each entry in `f` (a reference passed to `f` would still be live while
    /// its entry is freed). The walk itself only prefetches an entry and hands its
    /// pointer to `f` once; it never reads an entry.
    pub(super) fn for_each_entry_ptr(&self, guard: &Guard, mut f: impl FnMut(*const Entry<K>)) {
        const AHEAD: usize = 8;
        let mut ring: [*const Entry<K>; AHEAD] = [core::ptr::null(); AHEAD];
        let mut pushed = 0usize;
        for s in self.entries(guard) {
            let p = s.as_raw();
            prefetch(p);
            if pushed >= AHEAD {
                f(ring[pushed % AHEAD]);
            }
            ring[pushed % AHEAD] = p;
            pushed += 1;
        }
        for i in pushed.saturating_sub(AHEAD)..pushed {
            f(ring[i % AHEAD]);
        }
    }
}

/// Hints the CPU to fetch the cache line at `p` (a no-op where there is no hint).
#[inline(always)]
pub(super) fn prefetch<T>(p: *const T) {
    #[cfg(all(
        target_arch = "x86_64",
        not(miri),
        not(atomkit_loom),
        not(atomkit_shuttle)
    ))]
    // SAFETY: a prefetch is only a hint: it never faults and reads no value, whatever
    // the address; SSE is part of the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(all(
        target_arch = "x86_64",
        not(miri),
        not(atomkit_loom),
        not(atomkit_shuttle)
    )))]
    let _ = p;
}

/// What a shard's mutex guards: its occupancy. Written only under the mutex.
pub(super) struct ShardState {
    /// Entries listed in the current table.
    pub(super) live: usize,
    /// Slots of the current table that are not empty (live entries plus tombstones).
    used: usize,
    /// The table never shrinks below this capacity.
    min_cap: usize,
}

/// A shard: the current table, replaced only under `state`'s mutex.
pub(super) struct Shard<K> {
    /// The current table; never null. Written (store) only under `state`'s mutex.
    table: Atomic<Table<K>>,
    /// The address of the current table's slot array, mirrored (under the mutex) for
    /// [`prefetch`](Self::prefetch). Only ever used as a prefetch address.
    hint_slots: AtomicUsize,
    /// The current table's capacity minus one, mirrored like `hint_slots`.
    hint_mask: AtomicUsize,
    /// What inserters write, on a cache line of its own: every add reads the fields
    /// above, which change only when the table is replaced, and would miss on them
    /// after each insert into the shard if they shared a line with the mutex.
    locked: CachePadded<Locked>,
}

/// A shard's mutex and the counter written with it.
struct Locked {
    /// Serialises inserters, removers, growth and `clear` of this shard. Taken
    /// through [`Shard::lock`] only.
    state: Mutex<ShardState>,
    /// `ShardState::live`, mirrored after every change (under the mutex) so that the
    /// map's `len` can add the shards up without locking. One per shard, so inserters
    /// of different shards do not share a counter.
    listed: AtomicUsize,
}

impl<K> Shard<K> {
    pub(super) fn new(cap: usize) -> Self {
        let table = Table::new(cap);
        let hint = table.slots.as_ptr().addr();
        Shard {
            hint_slots: AtomicUsize::new(hint),
            hint_mask: AtomicUsize::new(cap - 1),
            table: Atomic::from(table),
            locked: CachePadded::new(Locked {
                state: Mutex::new(ShardState {
                    live: 0,
                    used: 0,
                    min_cap: cap,
                }),
                listed: AtomicUsize::new(0),
            }),
        }
    }

    /// Takes the shard's mutex (invariant 1). Entries freed while it is held wait
    /// for it (see [`unlocked`]).
    pub(super) fn lock(&self) -> ShardLock<'_> {
        let guard = ManuallyDrop::new(lock(&self.locked.state));
        unlocked::enter();
        ShardLock { guard }
    }

    /// Entries listed in this shard (a statistic: exact when no writer is busy).
    pub(super) fn len(&self) -> usize {
        // Ordering: Relaxed: a statistic; it guards no memory.
        self.locked.listed.load(Ordering::Relaxed)
    }

    /// Under the lock: mirrors `st.live` for [`len`](Self::len).
    fn publish_len(&self, st: &ShardState) {
        // Ordering: Relaxed: a statistic; the mutex orders the stores of one shard.
        self.locked.listed.store(st.live, Ordering::Relaxed);
    }

    /// Under the lock: mirrors the table about to be published for
    /// [`prefetch`](Self::prefetch).
    fn publish_hint(&self, t: &Table<K>) {
        // Ordering: Relaxed: a hint; readers only prefetch from it, never dereference.
        self.hint_slots
            .store(t.slots.as_ptr().addr(), Ordering::Relaxed);
        // Ordering: Relaxed, as above.
        self.hint_mask.store(t.capacity() - 1, Ordering::Relaxed);
    }

    /// Starts fetching the slot where a probe for `hash` begins, before the caller
    /// pins the epoch (which a probe needs, and which takes a while): the slot's cache
    /// miss then overlaps the pin. Reads only the mirrored hint, so it needs no guard:
    /// a stale hint (the table was replaced, maybe freed) prefetches a useless line,
    /// which is harmless.
    #[inline]
    pub(super) fn prefetch(&self, hash: u64) {
        // Ordering: Relaxed: a hint (see above).
        let base = self.hint_slots.load(Ordering::Relaxed);
        // Ordering: Relaxed: a hint; a mask from another table than `base` only
        // prefetches another line.
        let mask = self.hint_mask.load(Ordering::Relaxed);
        let at = base.wrapping_add((hash as usize & mask) * size_of::<Atomic<Entry<K>>>());
        prefetch(core::ptr::without_provenance::<u8>(at));
    }

    /// The current table.
    #[inline]
    pub(super) fn table<'g>(&self, guard: &'g Guard) -> &'g Table<K> {
        // Ordering: Acquire pairs with the Release stores in `grow` and `take_all`, so
        // a new table's slots (written before it was published) are visible.
        let t = self.table.load(Ordering::Acquire, guard);
        // SAFETY: the table pointer is never null; a replaced table is destroyed only
        // after an epoch passes, and `guard` pins this one.
        unsafe { t.deref() }
    }

    /// Under the lock (`st` is its guard's state): lists the new entry `e`, growing the
    /// table first if it would pass half full.
    pub(super) fn insert<'g>(
        &self,
        st: &mut ShardState,
        e: Owned<Entry<K>>,
        guard: &'g Guard,
    ) -> &'g Entry<K> {
        let mut table = self.table(guard);
        if (st.used + 1) * 2 > table.capacity() {
            table = self.grow(st, table, guard);
        }
        let hash = e.hash;
        let e = e.into_shared(guard);
        if table.put(e, hash, guard) {
            st.used += 1;
        }
        st.live += 1;
        self.publish_len(st);
        // SAFETY: just published; freed only after removal and an epoch (invariant 5).
        unsafe { e.deref() }
    }

    /// Under the lock: moves the live entries to a fresh table sized for them (at most a
    /// quarter full), publishes it, and retires the old one.
    fn grow<'g>(&self, st: &mut ShardState, old: &'g Table<K>, guard: &'g Guard) -> &'g Table<K> {
        let cap = ((st.live + 1) * 4).next_power_of_two().max(st.min_cap);
        let new = Table::new(cap);
        for e in old.entries(guard) {
            // SAFETY: listed entries are live under `guard`.
            let hash = unsafe { e.deref() }.hash;
            new.put(e, hash, guard);
        }
        st.used = st.live;
        self.publish_hint(&new);
        // Ordering: Release pairs with the Acquire load in `table()`: the copied slots
        // are visible to anyone who reads the new table. Readers still on the old table
        // find the same entries there (invariant 3).
        let old = self.table.swap(new, Ordering::AcqRel, guard);
        // SAFETY: the old table is unreachable for new readers; readers that hold it are
        // pinned, so it is freed after they unpin. Its drop frees only the slot array,
        // not the entries, which live on in the new table.
        unsafe { guard.defer_destroy(old) };
        self.table(guard)
    }

    /// Under the lock: unlists `key`'s entry (leaving a tombstone) and returns it. The
    /// caller kills its cell and releases the tables' reference through the epoch.
    pub(super) fn unlist<'g, Q>(
        &self,
        st: &mut ShardState,
        hash: u64,
        key: &Q,
        guard: &'g Guard,
    ) -> Option<Shared<'g, Entry<K>>>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let table = self.table(guard);
        let (i, e) = table.find_slot(hash, key, guard)?;
        // Ordering: Release for symmetry with `put`; readers that see the tombstone
        // need nothing from us (the dead cell is what stops them).
        table.slots[i].store(Shared::null().with_tag(TOMBSTONE), Ordering::Release);
        st.live -= 1;
        self.publish_len(st);
        Some(e)
    }

    /// Under the lock: replaces the table with an empty one and returns the old one,
    /// whose entries the caller kills and releases; the caller also retires the table.
    pub(super) fn take_all<'g>(
        &self,
        st: &mut ShardState,
        guard: &'g Guard,
    ) -> Shared<'g, Table<K>> {
        st.live = 0;
        st.used = 0;
        self.publish_len(st);
        let new = Table::new(st.min_cap);
        self.publish_hint(&new);
        // Ordering: AcqRel, as in `grow`.
        self.table.swap(new, Ordering::AcqRel, guard)
    }
}

impl<K> Drop for Shard<K> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: no other thread can reach the shard; retired tables and
        // entries are the collector's business, not ours.
        let guard = unsafe { crossbeam_epoch::unprotected() };
        // Ordering: Relaxed: exclusive access.
        let t = self.table.load(Ordering::Relaxed, guard);
        // SAFETY: the current table is never null and is owned by the shard.
        let table = unsafe { t.into_owned() };
        // Kill every cell first, in a pass that runs no user code: a per-thread cache
        // may keep an entry past the map, and a later map at the same address must
        // not count into it (see invariant 6). Releasing may run `K::drop`; if
        // that panics, the entries not yet released leak, but all are dead.
        // Both walks prefetch ahead: the entries are scattered, and a big map's drop
        // would otherwise wait on a cache miss per entry, twice.
        table.for_each_entry_ptr(guard, |e| {
            // SAFETY: listed entries are live; we own the tables' reference.
            unsafe { &*e }.cell.kill();
        });
        table.for_each_entry_ptr(guard, |e| {
            // SAFETY: the tables' reference of each listed entry is released once, here;
            // no handle can be alive (handles borrow the map), and cache ways hold
            // references of their own. The walk never reads an entry after handing
            // it to us.
            unsafe { Entry::release(e) };
        });
    }
}
