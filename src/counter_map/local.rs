//! A per-thread cache of resolved entries, so that counting a key this thread counted
//! recently needs neither the epoch pin nor the table probe.
//!
//! Each thread has one small direct-mapped cache, shared by every map it uses. A slot
//! names a map (its address and its key type), a key hash, and an entry on which the
//! slot owns one reference, exactly like a [`Counter`](super::Counter) handle: the entry
//! cannot be freed while the slot holds it, whatever the map does (invariant 6 of the
//! module doc). A hit compares the entry's key and adds to its cell; a dead cell makes
//! the caller re-resolve the key under the pin and refresh the slot.
//!
//! Slots are filled on a key's second miss in a row in the same slot (or when the
//! slot is empty or holds the same key's dead entry), so that one-off keys do not
//! evict keys that are counted often; filling costs two reference-count updates (the
//! new entry's and the evicted one's).
//!
//! User code (`K::eq`, `K::drop`) may call back into a map. While a lookup runs user
//! code the cache is marked busy and nested calls bypass it; references are released
//! (dropping keys) only after the cache is no longer being read.

use crate::sync::thread_local;
use core::any::TypeId;
use core::cell::Cell;

/// Slots per thread: a power of two. 1,024 slots (64 KiB) hold the hot part of a
/// skewed key mix: on Zipf(1.1) keys, 91% of increments hit over 1,000 keys and 68%
/// over 100,000 keys (56% and 76% with 256 slots).
#[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
const SLOTS: usize = 1024;
/// Slots per thread under the model checkers: two, so that eviction is reached.
#[cfg(any(atomkit_loom, atomkit_shuttle))]
const SLOTS: usize = 2;

/// Gives up one reference on a type-erased entry.
pub(super) type Release = unsafe fn(*const ());

/// Which map (and key type) a slot belongs to. The key type fixes the entry's layout;
/// the map's address tells maps apart while both are alive. A map at a reused address
/// cannot be confused with a dropped one: dropping a map kills its entries, so a stale
/// slot can only fail its add and be refreshed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct MapTag {
    pub(super) map: usize,
    pub(super) ty: TypeId,
}

/// One cached entry.
struct Slot {
    /// The map and key type of `entry`, or `None` if the slot is empty.
    tag: Cell<Option<MapTag>>,
    /// The full hash of `entry`'s key.
    hash: Cell<u64>,
    /// The entry, on which this slot owns one reference; null if empty.
    entry: Cell<*const ()>,
    /// How to give that reference up (monomorphised for the entry's key type).
    release: Cell<Option<Release>>,
    /// The hash of the last key that missed here without being admitted.
    missed: Cell<u64>,
}

/// A thread's cache.
struct Cache {
    /// Set while a lookup runs user code; nested lookups bypass the cache.
    busy: Cell<bool>,
    slots: Box<[Slot]>,
}

impl Cache {
    fn new() -> Self {
        Cache {
            busy: Cell::new(false),
            slots: (0..SLOTS)
                .map(|_| Slot {
                    tag: Cell::new(None),
                    hash: Cell::new(0),
                    entry: Cell::new(core::ptr::null()),
                    release: Cell::new(None),
                    missed: Cell::new(0),
                })
                .collect(),
        }
    }

    #[inline]
    fn slot(&self, hash: u64) -> &Slot {
        // Bits 40.. of the hash: the table probes from the low bits and shards on bits
        // 32..; any well-mixed bits would do.
        &self.slots[(hash >> 40) as usize & (SLOTS - 1)]
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        for s in self.slots.iter() {
            take(s).release();
        }
    }
}

thread_local! {
    static CACHE: Cache = Cache::new();
}

/// A reference taken out of a slot, to be given up by [`Evicted::release`] once the
/// cache is no longer borrowed.
#[must_use]
pub(super) struct Evicted {
    entry: *const (),
    release: Option<Release>,
}

impl Evicted {
    /// Gives the reference up (this may drop the entry and its key, running user code).
    pub(super) fn release(self) {
        if let Some(release) = self.release {
            if !self.entry.is_null() {
                // SAFETY: the slot owned this reference (taken with the entry by the
                // `fill` caller), and taking it out of the slot transferred it to us;
                // `release` is the one monomorphised for the entry's key type.
                unsafe { release(self.entry) };
            }
        }
    }
}

/// Empties `s`, handing its reference to the caller.
fn take(s: &Slot) -> Evicted {
    s.tag.set(None);
    Evicted {
        entry: s.entry.replace(core::ptr::null()),
        release: s.release.take(),
    }
}

/// Clears the busy flag when dropped (also if user code panics).
struct Busy<'a>(&'a Cell<bool>);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

/// If this thread caches an entry of map `tag` for `hash`, runs `f` on it (the entry,
/// kept alive by the slot's reference for the whole call) and returns what `f`
/// returns; `false` if there is no such slot or the cache is busy or gone.
///
/// `f` must only read the entry as the key type named by `tag`.
#[inline]
pub(super) fn with_cached(tag: MapTag, hash: u64, f: impl FnOnce(*const ()) -> bool) -> bool {
    CACHE
        .try_with(|c| {
            if c.busy.get() {
                return false;
            }
            let s = c.slot(hash);
            if s.tag.get() != Some(tag) || s.hash.get() != hash {
                return false;
            }
            let _busy = Busy(&c.busy);
            c.busy.set(true);
            // The slot cannot change while busy (nested lookups bypass the cache and
            // `fill` refuses), so its reference keeps the entry alive during `f`.
            f(s.entry.get())
        })
        .unwrap_or(false)
}

/// Whether the caller should cache `hash`'s entry of map `tag` after a miss: the slot
/// is empty, or holds the same key (stale), or this key missed there last time too.
/// Records the miss otherwise.
#[inline]
pub(super) fn admit(tag: MapTag, hash: u64) -> bool {
    CACHE
        .try_with(|c| {
            if c.busy.get() {
                return false;
            }
            let s = c.slot(hash);
            match s.tag.get() {
                None => true,
                Some(t) if t == tag && s.hash.get() == hash => true,
                Some(_) if s.missed.get() == hash => true,
                Some(_) => {
                    s.missed.set(hash);
                    false
                }
            }
        })
        .unwrap_or(false)
}

/// Stores `entry` (on which the caller hands over one reference) in `hash`'s slot and
/// returns what the slot held before, for the caller to release. If the cache is
/// busy or gone, the new reference comes straight back instead.
///
/// # Safety
///
/// `entry` must point to a live entry of map `tag` (key type `tag.ty`) whose full hash
/// is `hash`, the caller must own one reference on it, and `release` must give up a
/// reference on such an entry.
pub(super) unsafe fn fill(tag: MapTag, hash: u64, entry: *const (), release: Release) -> Evicted {
    let mine = Evicted {
        entry,
        release: Some(release),
    };
    CACHE
        .try_with(|c| {
            if c.busy.get() {
                return mine;
            }
            let s = c.slot(hash);
            let old = take(s);
            s.entry.set(mine.entry);
            s.release.set(mine.release);
            s.hash.set(hash);
            s.tag.set(Some(tag));
            old
        })
        .unwrap_or(Evicted {
            entry,
            release: Some(release),
        })
}
