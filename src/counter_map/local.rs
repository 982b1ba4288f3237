//! A per-thread cache of resolved entries, so that counting a key this thread counted
//! recently needs neither the epoch pin nor the table probe.
//!
//! Each thread has one small two-way set-associative cache, shared by every map it
//! uses. A way names a map (its address), a key hash, and an entry on which the way
//! owns one reference, exactly like a [`Counter`](super::Counter) handle: the entry
//! cannot be freed while the way holds it, whatever the map does (invariant 6 of the
//! module doc). The entry is held through its key-independent head (`EntryHead`), so
//! the cache needs no key type: a hit first checks that the head's cell is alive
//! (which proves the entry belongs to the live map at that address, whose key type
//! the caller knows), then compares the key and adds to the cell; a dead cell makes
//! the caller re-resolve the key under the pin and refresh the way.
//!
//! A way is filled on a key's second miss in a row in its set (or when a way of the
//! set is empty or holds the same key's dead entry), so that one-off keys do not
//! evict keys that are counted often; the victim is the way not used last. Filling
//! costs two reference-count updates (the new entry's and the evicted one's).
//!
//! The sets are allocated on the thread's first fill, small, and grow eightfold (up
//! to `MAX_SETS`) each time the thread has evicted twice as many entries as there
//! are sets: a thread that counts a few keys keeps a 1 KiB cache, one that counts a
//! wide key mix gets the full 64 KiB. Growth moves every entry (set `i` of `n` sets
//! maps onto sets `i + k * n` of the bigger array, two ways at most), releasing none.
//!
//! User code (`K::eq`, `K::drop`) may call back into a map. While a lookup runs user
//! code the cache is marked busy and nested calls bypass it; references are released
//! (dropping keys) only after the cache is no longer being read.

use super::table::EntryHead;
use crate::sync::const_thread_local;
use core::cell::Cell;

/// Sets a thread's cache starts with (two ways each).
#[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
const MIN_SETS: usize = 16;
/// Most sets a thread's cache grows to: 1,024 sets of two ways (64 KiB) hold the hot
/// part of a skewed key mix. On a million Zipf(1.1) keys from one thread, 99.9% of
/// increments hit over 1,000 keys and 77% over 100,000 keys (with 1,024 direct-mapped
/// slots: 98% and 72%).
#[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
const MAX_SETS: usize = 1024;
/// Under the model checkers: one set, so that eviction is reached with three keys.
#[cfg(any(atomkit_loom, atomkit_shuttle))]
const MIN_SETS: usize = 1;
/// Under the model checkers, growth is reached with a few evictions.
#[cfg(any(atomkit_loom, atomkit_shuttle))]
const MAX_SETS: usize = 2;
/// Growth factor of the sets.
const GROW: usize = if MAX_SETS / MIN_SETS >= 8 { 8 } else { 2 };

/// One cached entry.
struct Way {
    /// The address of the map whose entry this is, or 0 if the way is empty.
    map: Cell<usize>,
    /// The full hash of the entry's key.
    hash: Cell<u64>,
    /// The entry, on which this way owns one reference; null if empty.
    entry: Cell<*const EntryHead>,
}

impl Way {
    const fn empty() -> Self {
        Way {
            map: Cell::new(0),
            hash: Cell::new(0),
            entry: Cell::new(core::ptr::null()),
        }
    }

    #[inline]
    fn holds(&self, map: usize, hash: u64) -> bool {
        self.map.get() == map && self.hash.get() == hash
    }

    /// Empties the way, handing its reference to the caller.
    fn take(&self) -> Evicted {
        self.map.set(0);
        Evicted(self.entry.replace(core::ptr::null()))
    }
}

/// Two ways, in one cache line.
#[repr(align(64))]
struct Set {
    ways: [Way; 2],
    /// The hash of the last key that missed here without being admitted.
    missed: Cell<u64>,
    /// The way used last (the other one is the next victim).
    recent: Cell<u8>,
}

impl Set {
    const fn empty() -> Self {
        Set {
            ways: [Way::empty(), Way::empty()],
            missed: Cell::new(0),
            recent: Cell::new(0),
        }
    }
}

/// A thread's cache.
struct Cache {
    /// Set while a lookup runs user code or the sets are being replaced; nested
    /// lookups bypass the cache.
    busy: Cell<bool>,
    /// The sets (`mask + 1` of them, from `Box<[Set]>::into_raw`), or null before the
    /// first fill. Replaced only by `fill`, which refuses while busy.
    sets: Cell<*mut Set>,
    /// Number of sets minus one.
    mask: Cell<usize>,
    /// Entries evicted since the sets were last allocated.
    evictions: Cell<usize>,
}

impl Cache {
    const fn new() -> Self {
        Cache {
            busy: Cell::new(false),
            sets: Cell::new(core::ptr::null_mut()),
            mask: Cell::new(0),
            evictions: Cell::new(0),
        }
    }

    /// `hash`'s set, or `None` before the first fill.
    #[inline]
    fn set(&self, hash: u64) -> Option<&Set> {
        let sets = self.sets.get();
        if sets.is_null() {
            return None;
        }
        // Bits 40.. of the hash: the table probes from the low bits and shards on bits
        // 32..; any well-mixed bits would do.
        let i = (hash >> 40) as usize & self.mask.get();
        // SAFETY: `sets` holds `mask + 1` sets owned by this cache; it is replaced only
        // by `fill`, which runs no user code and cannot run while a borrow from here
        // is in use (the borrows end before `fill` is called, or the cache is busy).
        Some(unsafe { &*sets.add(i) })
    }

    /// Allocates `n` empty sets.
    fn alloc(n: usize) -> *mut Set {
        let sets: Box<[Set]> = (0..n).map(|_| Set::empty()).collect();
        Box::into_raw(sets).cast::<Set>()
    }

    /// Frees the sets at `sets` (`n` of them, from `alloc`), which hold no references.
    ///
    /// # Safety
    ///
    /// `sets` must come from `alloc(n)` and not be used afterwards.
    unsafe fn free(sets: *mut Set, n: usize) {
        // SAFETY: forwarded from the caller.
        drop(unsafe { Box::from_raw(core::ptr::slice_from_raw_parts_mut(sets, n)) });
    }

    /// Replaces the sets with `GROW` times as many, moving every entry.
    fn grow(&self) {
        let old = self.sets.get();
        let n = self.mask.get() + 1;
        let m = n * GROW;
        let new = Self::alloc(m);
        for i in 0..n {
            // SAFETY: `old` holds `n` sets (see `sets`).
            let from = unsafe { &*old.add(i) };
            for w in &from.ways {
                if w.entry.get().is_null() {
                    continue;
                }
                let j = (w.hash.get() >> 40) as usize & (m - 1);
                // SAFETY: `new` holds `m` sets; `j < m`.
                let to = unsafe { &*new.add(j) };
                // Set `j` receives only the entries of old set `j % n`: two at most.
                let dst = if to.ways[0].entry.get().is_null() {
                    &to.ways[0]
                } else {
                    &to.ways[1]
                };
                dst.map.set(w.map.get());
                dst.hash.set(w.hash.get());
                dst.entry.set(w.entry.get());
            }
        }
        // SAFETY: `old` came from `alloc(n)`; its references moved to `new` above.
        unsafe { Self::free(old, n) };
        self.sets.set(new);
        self.mask.set(m - 1);
        self.evictions.set(0);
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        let sets = self.sets.replace(core::ptr::null_mut());
        if sets.is_null() {
            return;
        }
        let n = self.mask.get() + 1;
        let mut held = Vec::new();
        for i in 0..n {
            // SAFETY: `sets` holds `n` sets.
            let s = unsafe { &*sets.add(i) };
            for w in &s.ways {
                held.push(w.take());
            }
        }
        // SAFETY: `sets` came from `alloc(n)`; its references were taken out above.
        unsafe { Self::free(sets, n) };
        // Released last: a key's `Drop` may use a map (and find no cache).
        for e in held {
            e.release();
        }
    }
}

const_thread_local! {
    static CACHE: Cache = Cache::new();
}

/// A reference taken out of a way, to be given up by [`Evicted::release`] once the
/// cache is no longer borrowed. Null if there is none.
#[must_use]
pub(super) struct Evicted(*const EntryHead);

impl Evicted {
    /// Gives the reference up (this may drop the entry and its key, running user code).
    pub(super) fn release(self) {
        if !self.0.is_null() {
            // SAFETY: the way owned this reference (handed over by the `fill` caller),
            // and taking it out of the way transferred it to us.
            unsafe { EntryHead::release(self.0) };
        }
    }
}

/// Clears the busy flag when dropped (also if user code panics).
struct Busy<'a>(&'a Cell<bool>);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// What [`count_cached`] did.
pub(super) enum Lookup {
    /// `f` ran on the cached entry and returned `true`: counted.
    Counted,
    /// Not counted; `admit` says whether the caller should cache the key's entry
    /// once it has resolved it.
    Missed { admit: bool },
}

/// If this thread caches an entry of the map at address `map` for `hash`, runs `f` on
/// it (the entry's head, kept alive by the way's reference for the whole call), and
/// reports [`Lookup::Counted`] if `f` returns `true`.
///
/// Otherwise the key missed, and the answer says whether to cache its entry: yes if
/// the cache is not allocated yet, or a way of the set is empty or holds the same key
/// (stale: `f` found its cell dead), or this key missed there last time too; a miss
/// that is not admitted is recorded. A busy or gone cache admits nothing.
///
/// The entry's key type is the one of the map that had address `map` when the way was
/// filled; `f` must check that the head's cell is alive before reading the entry as
/// the caller's key type (see invariant 6).
#[inline]
pub(super) fn count_cached(
    map: usize,
    hash: u64,
    f: impl FnOnce(*const EntryHead) -> bool,
) -> Lookup {
    CACHE
        .try_with(|c| {
            if c.busy.get() {
                return Lookup::Missed { admit: false };
            }
            let Some(s) = c.set(hash) else {
                return Lookup::Missed { admit: true };
            };
            let w = if s.ways[0].holds(map, hash) {
                0
            } else if s.ways[1].holds(map, hash) {
                1
            } else {
                return admit(s, hash);
            };
            s.recent.set(w as u8);
            let counted = {
                let _busy = Busy(&c.busy);
                c.busy.set(true);
                // The way cannot change while busy (nested lookups bypass the cache and
                // `fill` refuses), so its reference keeps the entry alive during `f`.
                f(s.ways[w].entry.get())
            };
            if counted {
                Lookup::Counted
            } else {
                Lookup::Missed { admit: true }
            }
        })
        .unwrap_or(Lookup::Missed { admit: false })
}

/// The admission decision for a key that `s` does not hold (see [`count_cached`]).
#[inline]
fn admit(s: &Set, hash: u64) -> Lookup {
    if s.ways.iter().any(|w| w.entry.get().is_null()) || s.missed.get() == hash {
        return Lookup::Missed { admit: true };
    }
    s.missed.set(hash);
    Lookup::Missed { admit: false }
}

/// Stores `entry` (on which the caller hands over one reference) in `hash`'s set and
/// returns what the chosen way held before, for the caller to release. If the cache is
/// busy or gone, the new reference comes straight back instead.
///
/// # Safety
///
/// `entry` must point to the head of a live entry of the map at address `map` whose
/// full hash is `hash`, and the caller must own one reference on it.
pub(super) unsafe fn fill(map: usize, hash: u64, entry: *const EntryHead) -> Evicted {
    CACHE
        .try_with(|c| {
            if c.busy.get() {
                return Evicted(entry);
            }
            if c.sets.get().is_null() {
                c.sets.set(Cache::alloc(MIN_SETS));
                c.mask.set(MIN_SETS - 1);
            } else if c.evictions.get() >= 2 * (c.mask.get() + 1) && c.mask.get() + 1 < MAX_SETS {
                c.grow();
            }
            let s = c.set(hash).expect("allocated above");
            // The same key's (stale) way, else an empty way, else the way not used last.
            let w = if s.ways[0].holds(map, hash) || s.ways[0].entry.get().is_null() {
                0
            } else if s.ways[1].holds(map, hash) || s.ways[1].entry.get().is_null() {
                1
            } else {
                c.evictions.set(c.evictions.get() + 1);
                1 - s.recent.get() as usize
            };
            let way = &s.ways[w];
            let old = way.take();
            way.entry.set(entry);
            way.hash.set(hash);
            way.map.set(map);
            s.recent.set(w as u8);
            old
        })
        .unwrap_or(Evicted(entry))
}
