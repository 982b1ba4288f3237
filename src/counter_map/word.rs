//! The word-key core of [`CounterMap`](super::CounterMap): per-key counters for keys
//! that fit in a machine word (the integer types and `char`), with each key and its
//! count in the slot the lookup probes. `CounterMap` picks it by the key's type; in
//! unstable builds it is also exported alone as [`WordCounterMap`].
//!
//! # Implementation
//!
//! A key's hash (of its word) picks a shard (bits 32..) and the slot a linear probe
//! starts from (low bits). A slot is two words, the key and the count word:
//!
//! | bits   | name      | meaning |
//! |--------|-----------|---------|
//! | 0..56  | count     | increments since the last reset, modulo 2<sup>56</sup>; with `CELL`, the cell's address shifted right by 4 |
//! | 56..60 | heat      | how contended the word has been lately: promotion's signal |
//! | 60     | `CELL`    | the count lives in a striped cell (a contended key) |
//! | 61     | `CARRIED` | this count includes the one growth moved here from the previous table |
//! | 62     | `FROZEN`  | growth has claimed the slot; the word never changes again |
//! | 63     | `DEAD`    | the key was removed; the slot is its tombstone, count 0 |
//!
//! One key word, drawn per map from its hasher, marks a free slot; the key that has
//! that word lives in a side word of the map instead. Keys are written once: a slot
//! goes from free to one key and keeps it, as a tombstone after `remove`, until the
//! table is dropped, so a stale adder's CAS can never land on another key's count.
//!
//! - **Add** (lock-free): through the thread's lease if it holds one (below); else pin
//!   the epoch, probe the current table for the key, then CAS
//!   the count word from `w` to `w + n` (flags kept, count masked). `DEAD`, or no slot:
//!   insert under the shard's lock. `FROZEN`: growth is moving the table; fence, follow
//!   the table's `next`, find or claim the key's slot there (a move, lock-free), and
//!   add there. Adds are CASes, not `fetch_add`, so that a frozen word holds an exact
//!   count and never changes again. `CELL` (frozen or not): add to the cell, the
//!   key's home in every table that lists it.
//! - **Promotion** (lock-free): an add whose CAS lost to another adder, once the word's
//!   heat (raised by adds that collide, lowered by adds that do not) is high enough,
//!   in a table it loaded as current (never one reached through `next`, into which growth
//!   may be moving counts), makes a `StripedCell` (the present map's count: a word
//!   that grows cache-line-padded stripes on collisions) holding the word's count and
//!   CASes the word to `CELL | address | CARRIED-as-before`; while other adds win the
//!   word, the same cell takes the new count and the CAS is tried again. Growth moves the word,
//!   not the count; the current table's listing owns the cell, and `remove` and
//!   `clear` kill it (adders still on it then fail and re-insert the key) and retire
//!   it through the epoch.
//! - **Leases, per thread** (module `lease`): a pinned add that counted in a plain
//!   word leases the shard's current table, taking a reference on it: tables are
//!   reference-counted, the shard owning one reference while the table is current
//!   (given up through the epoch when growth or `clear` replaces it) and each lease
//!   one more. The thread's next adds to keys of that shard probe the leased table
//!   and CAS a plain word there with no pin; any flag, a missing key or a lost CAS
//!   sends them down the pinned path. A replaced table's words are all frozen or
//!   tombstones, so a CAS through a stale lease fails or lands before the freeze (and
//!   is moved) or the tombstone (and is taken by `clear`). A thread leases the
//!   tables of one map at a time, named by an id no other map gets.
//! - **Hot keys, per thread**: an add that counted through a cell offers it to a small
//!   per-thread cache (module `hot`), which takes a reference on it; the thread's next
//!   adds to that key skip the pin and the probe, until the cell is found killed
//!   (removal, `clear`, or the drop of the map, which kills every cell it lists so
//!   that a later map at the same address never counts into a cached one).
//! - **Handles**: [`WordCounterMap::counter`] moves the key's count to a cell under
//!   the lock (if it is not in one already) and takes a reference on it. Cells are
//!   reference-counted: the listing owns one reference (growth moves the word, so the
//!   reference moves with it; `remove` and `clear` give it up through the epoch), each
//!   handle one more. A handle adds to its cell without pinning the epoch; finding it
//!   killed, it lists the key anew under the lock, adds there and re-points itself.
//! - **Insert, revive, remove, reset, clear, grow** run under the shard's mutex, on
//!   the current table loaded again under it. Growth allocates a table sized for the
//!   live keys at most half full, stores it in `next`, then for each slot
//!   freezes the word (`fetch_or(FROZEN)`), and adds a live key's frozen count to the
//!   key's slot in `next` by a CAS that also sets `CARRIED`; tombstones are dropped.
//!   It then publishes `next` as current and retires the old table through the epoch.
//! - **`get`**: a live word is the count, a `CELL` word its cell's sum. A frozen word
//!   `w` resolves through `next`, reading the key's word `w'` there once: the count is
//!   `w`'s count unless `w'` has `CARRIED` (then it is already in `w'`), plus the count
//!   `w'` gives by the same rule. So a move racing the `get` is counted once.
//!
//! Orderings, checked by the loom models in `loom-tests/tests/loom_word_counter_map.rs`
//! (each fails when one of these is weakened): the freeze's Release and an Acquire
//! fence on the frozen path, in `add` and in `get`, publish `next`; the current table
//! is swapped in with Release and loaded with Acquire; a promotion's Release CAS and
//! an Acquire fence on every `CELL` branch publish the cell. Adds CAS with Release and the
//! freeze also Acquires, so that growth sees the claim of any key whose add it reads;
//! with every new key claimed under the lock the map does not need that pair (the
//! models pass without it), and it is kept as a margin that costs nothing on x86.

use super::cell::StripedCell;
use super::{max_stripes, DefaultHashBuilder, MIN_TABLE};
#[cfg(any(atomkit_unstable, test))]
use super::{parallelism, MAX_SHARDS};
use crate::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};
use crate::sync::{lock, Mutex, MutexGuard};
use core::any::{Any, TypeId};
use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::marker::PhantomData;
use crossbeam_epoch::{Atomic, Guard, Owned, Shared};
use crossbeam_utils::CachePadded;
use std::collections::HashMap;

/// The count bits of a count word.
const COUNT: u64 = (1 << 56) - 1;
/// How contended the word has been lately (see `heated`), 0 to 15.
const HEAT: u64 = 0xF << 56;
/// Heat an add that collided adds; an add that did not takes 1 off.
const HEAT_UP: u64 = 4;
/// The count lives in a heap cell (a hot key's stripes); the count bits hold the
/// cell's address shifted right by 4.
const CELL: u64 = 1 << 60;
/// This count includes the one growth moved here from the previous table.
const CARRIED: u64 = 1 << 61;
/// Growth has claimed this slot; its word never changes again.
const FROZEN: u64 = 1 << 62;
/// The key was removed: a tombstone, count 0.
const DEAD: u64 = 1 << 63;
/// The flag bits.
const FLAGS: u64 = !COUNT;

/// The ordering of loads of a count word whose value may lead to a cell or to `next`
/// (and of failed CASes on it): Relaxed, with an Acquire fence on those paths only, so
/// that counting stays a Relaxed load and a CAS. ThreadSanitizer does not model fences,
/// so under `atomkit_tsan` these loads are Acquire instead: the same guarantee, one
/// ordering stronger on every load.
const WORD_LOAD: Ordering = if cfg!(atomkit_tsan) {
    Ordering::Acquire
} else {
    Ordering::Relaxed
};

/// Heat at which an add that collided moves the key to a striped cell. An add that
/// lost its CAS to another adder raises the word's heat by 4 (at most 15) and a clean
/// add lowers it by 1, so a key is promoted only while more than about one add in five
/// collides: a hot key soon, a warm key that collides now and then not at all (a cell
/// would cost it a dependent load per add). Reached by the first collision under the
/// model checkers, so that models reach promotion.
#[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
const PROMOTE_AT: u64 = 12;
#[cfg(any(atomkit_loom, atomkit_shuttle))]
const PROMOTE_AT: u64 = HEAT_UP;

/// A cell: a contended key's count, in stripes that adders spread over, or the count
/// of a key that has [`WordCounter`] handles. Reference-counted: the table listing
/// the key owns one reference (growth moves it with the word, never copies it), each
/// handle one more.
struct RcCell {
    count: StripedCell,
    /// Owners: the listing (until the key is removed or cleared, given up through the
    /// epoch) and each handle.
    refs: AtomicUsize,
}

/// A cell on its own cache line(s), so its address has four low zero bits to spare and
/// it shares no line with a slot.
type Cell = CachePadded<RcCell>;

/// The address a `CELL` word names.
#[inline]
fn cell_ptr(w: u64) -> *mut Cell {
    debug_assert!(w & CELL != 0);
    core::ptr::with_exposed_provenance_mut::<Cell>(((w & COUNT) << 4) as usize)
}

/// The cell a `CELL` word names.
///
/// # Safety
///
/// `w` must be a `CELL` word read under `guard`'s pin, after an Acquire fence: the
/// listing's reference on a cell is given up through the epoch once no current table
/// lists it.
#[inline]
unsafe fn cell_of(w: u64, _guard: &Guard) -> &StripedCell {
    // SAFETY: forwarded from the caller; `new_cell_word` stored this address of a live
    // cell.
    unsafe { &(&*cell_ptr(w)).count }
}

/// A `CELL` word for a new cell holding `count`, keeping `carried`. The cell's one
/// reference is the listing's, for whoever stores the word.
fn new_cell_word(count: u64, carried: u64, stripes: usize) -> (u64, *mut Cell) {
    let cell = Cell::new(RcCell {
        count: StripedCell::new(),
        refs: AtomicUsize::new(1),
    });
    if count != 0 {
        cell.count.add(count, stripes);
    }
    let p = Box::into_raw(Box::new(cell));
    (cell_word(p, carried), p)
}

/// The `CELL` word naming the cell at `p`, keeping `carried`.
fn cell_word(p: *mut Cell, carried: u64) -> u64 {
    let addr = p.expose_provenance() as u64;
    debug_assert!(addr & 15 == 0 && (addr >> 4) <= COUNT);
    CELL | carried | (addr >> 4)
}

/// Gives up one of the references counted in `refs` (a cell's or a table's); `true`
/// if it was the last, and the caller is to free the object: every other owner's
/// accesses to it then happen-before the free.
fn drop_reference(refs: &AtomicUsize) -> bool {
    // Ordering: Release, so that this owner's accesses to the object happen-before the
    // free by whichever owner drops the last reference (its Acquire fence below).
    // ThreadSanitizer does not model fences, so under `atomkit_tsan` the decrement is
    // AcqRel instead (the same guarantee, one ordering stronger on every release).
    let order = if cfg!(atomkit_tsan) {
        Ordering::AcqRel
    } else {
        Ordering::Release
    };
    if refs.fetch_sub(1, order) != 1 {
        return false;
    }
    // Ordering: pairs with the other owners' Release decrements.
    #[cfg(not(atomkit_tsan))]
    fence(Ordering::Acquire);
    true
}

/// Gives up one reference on the cell at `p`, freeing it with the last one.
///
/// # Safety
///
/// The caller owns a reference on the cell, which it gives up here. If it is the
/// listing's, no thread can reach the cell through a table any more (the epoch has
/// passed every reader that could).
unsafe fn release_cell(p: *mut Cell) {
    // SAFETY: the caller's reference keeps the cell alive until this decrement.
    if drop_reference(unsafe { &(&*p).refs }) {
        // SAFETY: the last reference: nobody else can reach the cell, which came from
        // `Box::into_raw` in `new_cell_word`.
        drop(unsafe { Box::from_raw(p) });
    }
}

/// A raw cell pointer moved into a deferred closure.
struct CellPtr(*mut Cell);
// SAFETY: a cell holds atomics only, so it may be released on any thread.
unsafe impl Send for CellPtr {}

/// Gives up the listing's reference on the cell of `CELL` word `w` (just unlisted
/// under the lock) through the epoch.
fn retire_cell(w: u64, guard: &Guard) {
    let p = CellPtr(cell_ptr(w));
    // SAFETY: the word was unlisted under the shard lock, so no current table lists
    // the cell; readers that reached it through a table are pinned, and the closure
    // runs after they unpin. The listing's reference is given up once, here.
    unsafe {
        guard.defer_unchecked(move || {
            let p = p;
            release_cell(p.0);
        });
    }
}

/// A per-thread cache of hot keys' cells, so that counting a key whose count lives
/// in a cell (a contended key, or one with handles) needs neither the epoch pin nor
/// the probe: the pin is most of an add's cost on one hot key.
///
/// Each thread has a few ways, direct-mapped by the key's word and shared by every
/// core it counts in. A way names a core (the address of its shard array, which does
/// not change when the map is moved), a key word, and a cell on which the way owns a
/// reference, like a [`WordCounter`]: the cell cannot be freed while the way holds
/// it. A hit adds to the cell; a killed cell (its key removed or
/// cleared, or its core dropped, which kills every cell it lists) fails the add,
/// empties the way and sends the caller down the pinned path. So a live cell in a way
/// is the listed count of that key in that core: cells are killed exactly when they
/// are unlisted, and a core at a reused address holds none of a dropped core's cells
/// alive.
///
/// A way is filled by an add that counted through a cell, if the way is empty or
/// holds a dead cell, or on the fourth such add in a row for other keys (so that two
/// hot keys sharing a way do not trade it, each time with reference-count updates on
/// their cells). No user code runs while a way is read or written: the key's word is
/// computed first, and giving up a reference frees at most a cell.
mod hot {
    use super::{release_cell, Cell as SharedCell};
    use crate::sync::atomic::Ordering;
    use crate::sync::const_thread_local;
    use core::cell::Cell;

    /// Ways per thread.
    #[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
    const WAYS: usize = 16;
    /// Under the model checkers: two, so that two keys can share one.
    #[cfg(any(atomkit_loom, atomkit_shuttle))]
    const WAYS: usize = 2;

    struct Way {
        /// The address of the core whose cell this is; 0 if the way is empty.
        core: Cell<usize>,
        /// The key's word.
        key: Cell<u64>,
        /// The cell, on which the way owns one reference; null if empty.
        cell: Cell<*mut SharedCell>,
        /// Adds through cells of other keys since this way was filled or hit.
        misses: Cell<u8>,
    }

    struct Cache([Way; WAYS]);

    impl Cache {
        const fn new() -> Self {
            Cache(
                [const {
                    Way {
                        core: Cell::new(0),
                        key: Cell::new(0),
                        cell: Cell::new(core::ptr::null_mut()),
                        misses: Cell::new(0),
                    }
                }; WAYS],
            )
        }

        #[inline]
        fn way(&self, k: u64) -> &Way {
            // The top bits of a Fibonacci hash of the word.
            let i = (k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 59) as usize % WAYS;
            &self.0[i]
        }
    }

    impl Drop for Cache {
        fn drop(&mut self) {
            for w in &self.0 {
                let p = w.cell.replace(core::ptr::null_mut());
                if !p.is_null() {
                    // SAFETY: the way owned this reference, given up once, here.
                    unsafe { release_cell(p) };
                }
            }
        }
    }

    const_thread_local! {
        static CACHE: Cache = Cache::new();
    }

    /// Adds `n` through this thread's cached cell of key word `k` in the core at
    /// address `core`. `false` if there is none, or it was killed (the way is then
    /// emptied): the caller counts on the pinned path.
    #[inline]
    pub(super) fn add(core: usize, k: u64, n: u64, stripes: usize) -> bool {
        CACHE
            .try_with(|c| {
                let w = c.way(k);
                if w.core.get() != core || w.key.get() != k {
                    return false;
                }
                let p = w.cell.get();
                // SAFETY: the way owns a reference on the cell, so it is live.
                if unsafe { &*p }.count.add(n, stripes) {
                    w.misses.set(0);
                    return true;
                }
                w.core.set(0);
                w.cell.set(core::ptr::null_mut());
                // SAFETY: the way owned this reference, given up once, here.
                unsafe { release_cell(p) };
                false
            })
            .unwrap_or(false)
    }

    /// Whether this thread's cache holds a cell of key word `k` of the core at `core`
    /// (for tests).
    #[cfg(test)]
    pub(super) fn holds(core: usize, k: u64) -> bool {
        CACHE.with(|c| {
            let w = c.way(k);
            w.core.get() == core && w.key.get() == k && !w.cell.get().is_null()
        })
    }

    /// Whether this thread's cache holds a live cell of key word `k` of the core at
    /// `core` (for tests).
    #[cfg(test)]
    pub(super) fn holds_live(core: usize, k: u64) -> bool {
        // SAFETY: a held way owns a reference on its cell.
        holds(core, k) && CACHE.with(|c| unsafe { &*c.way(k).cell.get() }.count.is_live())
    }

    /// The way key word `k` uses (for tests).
    #[cfg(test)]
    pub(super) fn way_of(k: u64) -> usize {
        CACHE.with(|c| core::ptr::from_ref(c.way(k)).addr())
    }

    /// Offers this thread's cache the cell at `p`, through which key word `k` of the
    /// core at address `core` was just counted.
    ///
    /// # Safety
    ///
    /// `p` must be that key's cell, read from a `CELL` word under a pin the caller
    /// still holds, after an Acquire fence.
    pub(super) unsafe fn fill(core: usize, k: u64, p: *mut SharedCell) {
        let _ = CACHE.try_with(|c| {
            let w = c.way(k);
            let old = w.cell.get();
            if old == p {
                return;
            }
            // SAFETY: a non-null way holds a reference on its cell.
            let stale = old.is_null() || !unsafe { &*old }.count.is_live();
            if !stale {
                let m = w.misses.get() + 1;
                w.misses.set(m);
                if m < 4 {
                    return;
                }
            }
            // Ordering: Relaxed: a new reference taken while the caller's pin keeps the
            // cell alive (a listing's reference is given up only through the epoch);
            // the decrements that free it order the accesses (see `release_cell`).
            // SAFETY: the caller's pin keeps the cell alive.
            unsafe { &*p }.refs.fetch_add(1, Ordering::Relaxed);
            w.core.set(core);
            w.key.set(k);
            w.cell.set(p);
            w.misses.set(0);
            if !old.is_null() {
                // SAFETY: the way owned this reference, given up once, here.
                unsafe { release_cell(old) };
            }
        });
    }
}

/// Per-thread leases on one map's tables, so that an add to a key whose count is a
/// plain word needs no epoch pin (the pin's read-modify-write is a good part of an
/// add's cost).
///
/// Each thread holds, for the last map it counted into (named by the map's id, which
/// no other map ever gets), one table per shard on which it owns a reference: the
/// table cannot be freed while leased, whether or not it is still current. An add
/// through a lease probes the leased table and CASes the key's word if the word is a
/// plain count (no `CELL`, `FROZEN` or `DEAD`): exactly the pinned path's add in a
/// table it loaded as current. A table stops being current only after growth froze
/// every word of it, or `clear` made every word a tombstone, so a CAS on a stale
/// leased table fails or lands before the freeze (and is moved) or the tombstone (and
/// is counted by `clear`). Anything else (no lease, a miss in the table, a flagged
/// word, a lost CAS) sends the add down the pinned path, which then leases the
/// shard's current table.
///
/// A lease is given up when the thread leases a newer table of the shard, switches to
/// another map (after a few pinned adds in a row there, so that alternating maps do
/// not trade leases on every add), or exits. A table replaced by growth or `clear`,
/// or left by a dropped map, is freed once no lease holds it.
mod lease {
    use super::{release_table, Table};
    use crate::sync::atomic::Ordering;
    use crate::sync::const_thread_local;
    use core::cell::{Cell, UnsafeCell};

    struct Leases {
        /// The id of the map whose tables are leased; 0 if none.
        map: Cell<u64>,
        /// Per shard of that map: a table on which this thread owns a reference, or
        /// null.
        tables: UnsafeCell<Vec<*const Table>>,
        /// Pinned adds into other maps since the leased map's last lease or leased add.
        strays: Cell<u8>,
    }

    impl Leases {
        #[allow(clippy::missing_const_for_fn)]
        const fn new() -> Self {
            Leases {
                map: Cell::new(0),
                tables: UnsafeCell::new(Vec::new()),
                strays: Cell::new(0),
            }
        }

        /// Gives up every lease.
        fn release_all(&self) {
            // SAFETY: only this thread reaches its leases, and nothing called while
            // this borrow lives reaches them (releasing frees at most a table).
            let tables = unsafe { &mut *self.tables.get() };
            for t in tables.drain(..) {
                if !t.is_null() {
                    // SAFETY: the lease owned this reference, given up once, here.
                    unsafe { release_table(t) };
                }
            }
        }
    }

    impl Drop for Leases {
        fn drop(&mut self) {
            self.release_all();
        }
    }

    const_thread_local! {
        static LEASES: Leases = Leases::new();
    }

    /// What [`add`] did.
    pub(super) enum Leased {
        /// Counted in the leased table.
        Done,
        /// Not counted: no lease, or the key has no plain word in the leased table.
        Miss,
        /// Not counted: the CAS lost to another change of the word.
        Lost,
    }

    /// Adds `n` to key word `k` (hash `hash`, in shard `shard`) of the map with id
    /// `map`, through this thread's lease on that shard's table, if it holds one.
    #[inline]
    pub(super) fn add(map: u64, shard: usize, k: u64, hash: u64, n: u64, empty: u64) -> Leased {
        LEASES
            .try_with(|l| {
                if l.map.get() != map {
                    return Leased::Miss;
                }
                // SAFETY: as in `release_all`.
                let tables = unsafe { &*l.tables.get() };
                let t = match tables.get(shard) {
                    Some(&t) if !t.is_null() => t,
                    _ => return Leased::Miss,
                };
                l.strays.set(0);
                // SAFETY: the lease owns a reference on the table, so it is live.
                super::add_leased(unsafe { &*t }, k, hash, n, empty)
            })
            .unwrap_or(Leased::Miss)
    }

    /// Leases table `t` of shard `shard` (of `shards`) of the map with id `map`, after
    /// a pinned add there.
    ///
    /// # Safety
    ///
    /// `t` must be that shard's current table, loaded under a pin the caller still
    /// holds.
    pub(super) unsafe fn offer(map: u64, shards: usize, shard: usize, t: *const Table) {
        let _ = LEASES.try_with(|l| {
            if l.map.get() != map {
                if l.map.get() != 0 {
                    let s = l.strays.get() + 1;
                    l.strays.set(s);
                    if s < 4 {
                        return;
                    }
                }
                l.release_all();
                l.map.set(map);
            }
            l.strays.set(0);
            // SAFETY: as in `release_all`.
            let tables = unsafe { &mut *l.tables.get() };
            if tables.len() != shards {
                tables.resize(shards, core::ptr::null());
            }
            let old = tables[shard];
            if old == t {
                return;
            }
            // Ordering: Relaxed: a new reference taken while the caller's pin keeps the
            // table alive (the shard's reference is given up only through the epoch);
            // the decrements that free it order the accesses (see `release_table`).
            // SAFETY: the caller's pin keeps the table alive.
            unsafe { &*t }.refs.fetch_add(1, Ordering::Relaxed);
            tables[shard] = t;
            if !old.is_null() {
                // SAFETY: the lease owned this reference, given up once, here.
                unsafe { release_table(old) };
            }
        });
    }

    /// The table this thread leases for shard `shard` of the map with id `map` (for
    /// tests); null if none.
    #[cfg(test)]
    pub(super) fn leased(map: u64, shard: usize) -> *const Table {
        LEASES.with(|l| {
            if l.map.get() != map {
                return core::ptr::null();
            }
            // SAFETY: as in `release_all`.
            let tables = unsafe { &*l.tables.get() };
            tables.get(shard).copied().unwrap_or(core::ptr::null())
        })
    }
}

/// Growth sizes a table for this many times the live keys (at most half full).
const GROWTH_SLACK: usize = 2;

/// A table is grown before an insert would make it more than `MAX_LOAD.0 /
/// MAX_LOAD.1` full (keys and tombstones): dense enough that a big map's tables stay
/// small (fewer cache and TLB misses on the probe), sparse enough that a probe for an
/// absent key stays short (13 slots on average at the limit, 3 for a present key).
const MAX_LOAD: (usize, usize) = (4, 5);

/// The id of the next map (see `WordCore::id`); 0 names no map.
static NEXT_ID: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(1);

/// Hashed with the map's hasher to pick the map's free-slot key word.
const EMPTY_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

mod sealed {
    pub trait Sealed {}
}

/// A key type that fits in a `u64` word, for [`WordCounterMap`]: the integer types and
/// `char`. Sealed.
pub trait WordKey: sealed::Sealed + Copy + Eq + Hash + 'static {
    /// The key's word. Distinct keys have distinct words.
    #[doc(hidden)]
    fn to_word(self) -> u64;
    /// The key whose word is `w` (`w` came from [`to_word`](WordKey::to_word)).
    #[doc(hidden)]
    fn from_word(w: u64) -> Self;
}

macro_rules! word_key {
    ($($t:ty),*) => {$(
        impl sealed::Sealed for $t {}
        impl WordKey for $t {
            #[inline]
            fn to_word(self) -> u64 {
                // Signed types sign-extend; `from_word` truncates back.
                self as u64
            }
            #[inline]
            fn from_word(w: u64) -> Self {
                w as $t
            }
        }
    )*};
}
word_key!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize);

impl sealed::Sealed for char {}
impl WordKey for char {
    #[inline]
    fn to_word(self) -> u64 {
        u64::from(self)
    }
    #[inline]
    fn from_word(w: u64) -> Self {
        // Words in the map came from `to_word`, so the conversion always succeeds.
        char::from_u32(w as u32).unwrap_or(char::REPLACEMENT_CHARACTER)
    }
}

/// Calls `$m!` with the list of word key types.
macro_rules! with_word_types {
    ($m:ident) => {
        $m!(u8, u16, u32, u64, usize, i8, i16, i32, i64, isize, char)
    };
}

/// Whether `K` is one of the [`WordKey`] types, whose keys a
/// [`CounterMap`](super::CounterMap) keeps in its slots. Decided by type identity, so
/// it folds to a constant when `K` is known.
pub(super) fn is_word_key<K: 'static>() -> bool {
    let id = TypeId::of::<K>();
    macro_rules! any_of {
        ($($t:ty),*) => { false $(|| id == TypeId::of::<$t>())* };
    }
    with_word_types!(any_of)
}

/// The word of key `k`, of a word key type (see [`is_word_key`]).
#[inline]
pub(super) fn encode<K: 'static>(k: &K) -> u64 {
    let k: &dyn Any = k;
    macro_rules! each {
        ($($t:ty),*) => {$(
            if let Some(v) = k.downcast_ref::<$t>() {
                return v.to_word();
            }
        )*};
    }
    with_word_types!(each);
    unreachable!("a word-key core holds only word key types")
}

/// The key whose word is `w`, of a word key type (see [`is_word_key`]).
#[inline]
fn decode<K: 'static>(w: u64) -> K {
    let mut out: Option<K> = None;
    let slot: &mut dyn Any = &mut out;
    macro_rules! each {
        ($($t:ty),*) => {$(
            if let Some(o) = slot.downcast_mut::<Option<$t>>() {
                *o = Some(<$t as WordKey>::from_word(w));
            }
        )*};
    }
    with_word_types!(each);
    out.expect("a word-key core holds only word key types")
}

/// What the lock-free paths need from the map, copied once.
#[derive(Clone, Copy)]
struct Consts {
    /// The key word that marks a free slot.
    empty: u64,
    /// Most stripes a cell grows (see `max_stripes`), computed once: asking the OS
    /// for the CPU count on every add to a cell would cost a system call.
    stripes: usize,
}

/// Adds `n` to a word's count bits, modulo 2<sup>56</sup>, keeping its flags and heat.
#[inline]
fn bump(w: u64, n: u64) -> u64 {
    (w & FLAGS) | (w.wrapping_add(n) & COUNT)
}

/// The word's heat after an add that collided (or not).
#[inline]
fn heated(w: u64, collided: bool) -> u64 {
    let h = (w & HEAT) >> 56;
    if collided {
        (h + HEAT_UP).min(15)
    } else {
        h.saturating_sub(1)
    }
}

/// One key and its count word. Two words in a cache line's quarter.
#[repr(align(16))]
struct Slot {
    key: AtomicU64,
    word: AtomicU64,
}

/// A power-of-two array of slots, probed linearly.
struct Table {
    slots: Box<[Slot]>,
    /// The table growth moves this one's keys to: set before any slot is frozen,
    /// published by the freezes. Not owned: it becomes the shard's current table.
    next: Atomic<Table>,
    /// Owners: the shard, while the table is current (given up through the epoch when
    /// it is replaced, or by the map's drop), and each thread's lease on it (module
    /// `lease`).
    refs: AtomicUsize,
}

impl Table {
    fn new(len: usize, empty: u64) -> Table {
        debug_assert!(len.is_power_of_two());
        Table {
            slots: (0..len)
                .map(|_| Slot {
                    key: AtomicU64::new(empty),
                    word: AtomicU64::new(0),
                })
                .collect(),
            next: Atomic::null(),
            refs: AtomicUsize::new(1),
        }
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The slot of the key whose word passes `eq`, or `None` if the probe meets a
    /// free slot first.
    #[inline]
    fn find(&self, hash: u64, eq: impl Fn(u64) -> bool, empty: u64) -> Option<&Slot> {
        let mask = self.mask();
        let mut i = hash as usize;
        for _ in 0..self.slots.len() {
            let s = &self.slots[i & mask];
            // Ordering: Relaxed: a key word publishes nothing but itself. Whoever
            // claimed it before this probe began happens-before it, by coherence.
            let cur = s.key.load(Ordering::Relaxed);
            if cur == empty {
                return None;
            }
            if eq(cur) {
                return Some(s);
            }
            i = i.wrapping_add(1);
        }
        None
    }

    /// `k`'s slot, claiming the first free one if `k` has none. Keys are written once,
    /// so racing claimers of one key agree on its slot. Callers keep the table at most
    /// four-fifths full (inserts under the lock; moves only of keys the old table lists).
    fn find_or_claim(&self, k: u64, hash: u64, empty: u64) -> &Slot {
        let mask = self.mask();
        let mut i = hash as usize;
        for _ in 0..self.slots.len() {
            let s = &self.slots[i & mask];
            // Ordering: Relaxed: the claim publishes only the key word. Growth, which
            // must see it to move the count, sees it through the Release CAS of the
            // add that follows (see `add_in`), or through the shard lock.
            match s
                .key
                .compare_exchange(empty, k, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return s,
                Err(cur) if cur == k => return s,
                Err(_) => i = i.wrapping_add(1),
            }
        }
        unreachable!("a counter-map table always has a free slot")
    }

    /// The table growth moves this one's keys to, for a thread that read a frozen
    /// word of this table and then fenced Acquire.
    #[inline]
    fn next<'g>(&self, guard: &'g Guard) -> &'g Table {
        // Ordering: Relaxed: the caller's Acquire fence, after reading a frozen word,
        // pairs with that freeze's Release, which follows the store of `next`.
        let n = self.next.load(Ordering::Relaxed, guard);
        if n.is_null() {
            // Only a broken ordering could get here (the models check that it does
            // not); better a panic than a null dereference.
            unreachable!("a frozen counter-map slot, but no next table in sight");
        }
        // SAFETY: non-null (stored before any slot was frozen, and the caller read a
        // frozen word); a table is retired only after it stopped being current, and
        // `guard` pinned the epoch before this table was loaded, when `next` was
        // current or not yet published, so it is freed after `guard` is dropped.
        unsafe { n.deref() }
    }
}

/// Gives up one reference on the table at `p`, freeing it with the last one.
///
/// # Safety
///
/// The caller owns a reference on the table, which it gives up here; the table came
/// from an `Owned<Table>`. If the reference is the shard's, no thread can reach the
/// table through the shard any more (the epoch has passed every reader that could).
unsafe fn release_table(p: *const Table) {
    // SAFETY: the caller's reference keeps the table alive until this decrement.
    if drop_reference(unsafe { &(*p).refs }) {
        // SAFETY: the last reference: nobody else can reach the table, which came from
        // an `Owned<Table>`. Dropping it frees its slots; `next` is not owned.
        drop(unsafe { Owned::from_raw(p.cast_mut()) });
    }
}

/// A raw table pointer moved into a deferred closure.
struct TablePtr(*const Table);
// SAFETY: a table holds atomics only, so it may be released on any thread.
unsafe impl Send for TablePtr {}

/// Gives up the shard's reference on `old`, just replaced as the shard's current
/// table under the lock, through the epoch.
fn retire_table(old: Shared<'_, Table>, guard: &Guard) {
    let p = TablePtr(old.as_raw());
    // SAFETY: unreachable for new readers; pinned readers that loaded it keep it until
    // they unpin, and the closure runs after that. The shard's reference is given up
    // once, here; leases keep the table alive past it.
    unsafe {
        guard.defer_unchecked(move || {
            let p = p;
            release_table(p.0);
        });
    }
}

/// The count word `w`, read from `k`'s slot in `t`, resolved to a count (the `get`
/// rule); `None` if the key turns out removed (a tombstone or a killed cell).
fn resolve<'g>(
    mut t: &'g Table,
    mut w: u64,
    hash: u64,
    eq: impl Fn(u64) -> bool + Copy,
    empty: u64,
    guard: &'g Guard,
) -> Option<u64> {
    let mut total = 0u64;
    loop {
        if w & DEAD != 0 {
            // Removed. A move always sets `CARRIED` before a removal can follow (both
            // hold the lock), and removal keeps it, so no frozen count is owed here.
            return None;
        }
        if w & CELL != 0 {
            // Ordering: with the `CELL` value read, pairs with the promotion's Release
            // (or the move's), so the cell is seen initialised.
            fence(Ordering::Acquire);
            // SAFETY: a `CELL` word read under `guard`, after the fence. The cell is
            // the key's home in every table that lists it, so it is counted once.
            let c = unsafe { cell_of(w, guard) }.sum()?;
            return Some(total.wrapping_add(c) & COUNT);
        }
        if w & FROZEN == 0 {
            return Some(total.wrapping_add(w & COUNT) & COUNT);
        }
        // Ordering: with the frozen value read, pairs with the freeze's Release, so
        // `next` and the slots of keys moved there are visible.
        fence(Ordering::Acquire);
        t = t.next(guard);
        let Some(s) = t.find(hash, eq, empty) else {
            // Not moved yet: the frozen count is the whole count.
            return Some(total.wrapping_add(w & COUNT) & COUNT);
        };
        // Ordering: `WORD_LOAD`: a count. Read once: this one read both says whether the
        // frozen count has arrived (`CARRIED`) and gives the count in `next`.
        let w2 = s.word.load(WORD_LOAD);
        if w2 & CARRIED == 0 {
            total = total.wrapping_add(w & COUNT);
        }
        w = w2;
    }
}

/// Where `add_in` added.
enum Added {
    /// To the key's count word.
    Word,
    /// To the key's cell, listed in the table the caller loaded (or one after it).
    Cell(*mut Cell),
    /// Nowhere: the key is not listed (no slot, a tombstone, or a dead cell), and the
    /// caller inserts it under the lock.
    Unlisted,
}

/// Adds `n` to the count of key word `k` in `t` (the shard's current table, as the
/// caller loaded it) or, if `t` is frozen, in the tables that follow it. `collided`:
/// an add through a lease just lost its CAS on the key's word.
#[inline]
fn add_in<'g>(
    mut t: &'g Table,
    k: u64,
    hash: u64,
    n: u64,
    m: Consts,
    mut collided: bool,
    guard: &'g Guard,
) -> Added {
    let empty = m.empty;
    let Some(mut s) = t.find(hash, |w| w == k, empty) else {
        return Added::Unlisted;
    };
    // Promotion happens only in a table loaded as current, never in one reached
    // through `next`, into which growth may still be moving counts.
    let mut current = true;
    loop {
        // Ordering: `WORD_LOAD`: a count publishes nothing; `CELL` and frozen values are
        // followed by Acquire fences below.
        let mut cur = s.word.load(WORD_LOAD);
        loop {
            if cur & DEAD != 0 {
                return Added::Unlisted;
            }
            if cur & CELL != 0 {
                // Frozen or not, the cell is the key's home in every table.
                // Ordering: pairs with the Release that published the `CELL` word, so
                // the cell is seen initialised.
                fence(Ordering::Acquire);
                // SAFETY: a `CELL` word read under `guard`, after the fence.
                return if unsafe { cell_of(cur, guard) }.add(n, m.stripes) {
                    Added::Cell(cell_ptr(cur))
                } else {
                    Added::Unlisted
                };
            }
            if cur & FROZEN != 0 {
                // Ordering: pairs with the freeze's Release, so `next` is visible.
                fence(Ordering::Acquire);
                t = t.next(guard);
                s = t.find_or_claim(k, hash, empty);
                current = false;
                break;
            }
            let heat = heated(cur, collided);
            if current && collided && heat >= PROMOTE_AT {
                match promote(&s.word, cur, m.stripes) {
                    Ok(()) => break, // the loop re-reads the word: the new cell
                    Err(actual) => {
                        cur = actual;
                        continue;
                    }
                }
            }
            // Ordering: Release on success, paired with the freeze's Acquire: growth,
            // reading this add, then sees the claim of the key's slot. The protocol
            // needs that only if a key can be claimed without the lock and without a
            // growth that also moves it, which this map never does (inserts take the
            // lock; a move's claim is also made or met by growth's own move, which
            // orders it): the models pass with Relaxed here. Kept as the design's
            // margin; on x86 a CAS is a full barrier either way. `WORD_LOAD` on
            // failure: the loop goes on from the value read, as from a load.
            let new = (bump(cur, n) & !HEAT) | heat << 56;
            match s
                .word
                .compare_exchange_weak(cur, new, Ordering::Release, WORD_LOAD)
            {
                Ok(_) => return Added::Word,
                Err(actual) => {
                    // Another adder changed the count: a collision (not a spurious
                    // failure, nor a flag change, which the checks above handle).
                    collided |= actual & COUNT != cur & COUNT;
                    cur = actual;
                }
            }
        }
    }
}

/// Adds `n` to key word `k`'s count in `t`, a table leased by this thread (see module
/// `lease`), if the key's word there is a plain count.
#[inline]
fn add_leased(t: &Table, k: u64, hash: u64, n: u64, empty: u64) -> lease::Leased {
    let Some(s) = t.find(hash, |w| w == k, empty) else {
        return lease::Leased::Miss;
    };
    // Ordering: `WORD_LOAD`: a count; flagged words are left to the pinned path.
    let cur = s.word.load(WORD_LOAD);
    if cur & (CELL | FROZEN | DEAD) != 0 {
        return lease::Leased::Miss;
    }
    let new = (bump(cur, n) & !HEAT) | heated(cur, false) << 56;
    // Ordering: Release on success, as in `add_in`; Relaxed on failure: the value read
    // is not used. A strong CAS, so that a failure means the word changed.
    match s
        .word
        .compare_exchange(cur, new, Ordering::Release, Ordering::Relaxed)
    {
        Ok(_) => lease::Leased::Done,
        Err(_) => lease::Leased::Lost,
    }
}

/// Moves a contended key's count from its word (`cur`, live, plain) to a new striped
/// cell. The cell is made once: while other adds win the word (it stays plain and
/// live), the cell takes the new count and the CAS is tried again, so that a hot key,
/// whose word changes all the time, is not left allocating and freeing a cell per
/// attempt. On failure (a freeze, a removal, another promotion) frees the cell and
/// returns the word's value.
#[cold]
fn promote(word: &AtomicU64, mut cur: u64, stripes: usize) -> Result<(), u64> {
    let (_, p) = new_cell_word(cur & COUNT, cur & CARRIED, stripes);
    loop {
        let w = cell_word(p, cur & CARRIED);
        // Ordering: Release on success publishes the cell's initialised words to
        // adders and readers that fence Acquire after reading the `CELL` word (and
        // growth's freeze reads it with Acquire). `WORD_LOAD` on failure: the value is
        // used as from a load.
        match word.compare_exchange(cur, w, Ordering::Release, WORD_LOAD) {
            Ok(_) => return Ok(()),
            Err(actual) if actual & (CELL | FROZEN | DEAD) == 0 => {
                // SAFETY: `p` came from `Box::into_raw` and is not published yet: only
                // this thread reaches it.
                let cell: &StripedCell = unsafe { &(&*p).count };
                cell.reset();
                if actual & COUNT != 0 {
                    cell.add(actual & COUNT, stripes);
                }
                cur = actual;
            }
            Err(actual) => {
                // SAFETY: `p` came from `Box::into_raw` and was never published.
                drop(unsafe { Box::from_raw(p) });
                return Err(actual);
            }
        }
    }
}

/// Adds `n` to a word the caller knows will stay unfrozen (it holds the shard lock,
/// or the word is the side word, which is never frozen or promoted). Returns `false`
/// if the word is a tombstone.
fn add_live(word: &AtomicU64, n: u64, stripes: usize, guard: &Guard) -> bool {
    // Ordering: `WORD_LOAD`: a count; the CAS below re-reads.
    let mut cur = word.load(WORD_LOAD);
    loop {
        if cur & DEAD != 0 {
            return false;
        }
        if cur & CELL != 0 {
            // Ordering: as in `add_in`.
            fence(Ordering::Acquire);
            // SAFETY: a `CELL` word read under `guard`, after the fence. A listed
            // key's cell is killed only after its word is unlisted, under the lock.
            return unsafe { cell_of(cur, guard) }.add(n, stripes);
        }
        debug_assert!(cur & FROZEN == 0);
        // Ordering: Release, as in `add_in`.
        match word.compare_exchange_weak(cur, bump(cur, n), Ordering::Release, WORD_LOAD) {
            Ok(_) => return true,
            Err(actual) => cur = actual,
        }
    }
}

/// Under the shard lock: takes a listed word's count, `None` for a tombstone. With
/// `unlist`, leaves a tombstone (a cell is killed and retired); else resets the count
/// to 0 and keeps the key (a cell is reset in place).
fn take(word: &AtomicU64, unlist: bool, guard: &Guard) -> Option<u64> {
    // Ordering: `WORD_LOAD`: a count; the CAS below re-reads.
    let mut cur = word.load(WORD_LOAD);
    loop {
        if cur & DEAD != 0 {
            return None;
        }
        if cur & CELL != 0 && !unlist {
            // Ordering: as in `add_in`.
            fence(Ordering::Acquire);
            // SAFETY: a `CELL` word read under `guard`, after the fence; its cell is
            // killed only by a holder of the lock the caller holds.
            return Some(unsafe { cell_of(cur, guard) }.reset().unwrap_or(0) & COUNT);
        }
        let new = if unlist {
            DEAD | (cur & CARRIED)
        } else {
            cur & FLAGS
        };
        // Ordering: Release, like every change of a count word (growth's freeze reads
        // it); the caller holds the shard lock, so no growth runs meanwhile. A `CELL`
        // word changes only under the lock, so only plain words' CASes can fail.
        match word.compare_exchange_weak(cur, new, Ordering::Release, WORD_LOAD) {
            Ok(_) if cur & CELL != 0 => {
                // Ordering: as in `add_in`.
                fence(Ordering::Acquire);
                // SAFETY: as above. Adders that still hold the cell add before the kill
                // (counted here) or fail after it and re-insert the key.
                let c = unsafe { cell_of(cur, guard) }.kill() & COUNT;
                retire_cell(cur, guard);
                return Some(c);
            }
            Ok(_) => return Some(cur & COUNT),
            Err(actual) => cur = actual,
        }
    }
}

struct Shard {
    /// The current table.
    table: Atomic<Table>,
    /// The current table's slot array address, mirrored for `prefetch`: read with no
    /// pin, never dereferenced, so a stale value (a replaced, maybe freed table) only
    /// prefetches a useless line.
    hint_slots: AtomicUsize,
    /// The current table's length minus one, mirrored like `hint_slots`.
    hint_mask: AtomicUsize,
    /// What inserts write, on a line of its own: every add reads the fields above,
    /// which change only when the table is replaced, and would miss on them after
    /// each insert into the shard if they shared a line with the lock.
    locked: CachePadded<Locked>,
}

/// A shard's lock and what is written with it.
struct Locked {
    /// Serialises inserts, revivals, removals, resets, `clear` and growth.
    state: Mutex<ShardState>,
    /// Live keys, mirrored from the state for `len`.
    live: AtomicUsize,
}

/// A shard's counts of keys, changed under its lock.
struct ShardState {
    /// Listed, not removed.
    live: usize,
    /// Slots of the current table holding a key: live ones and tombstones.
    used: usize,
    /// The table size the shard starts from and never shrinks below.
    min_len: usize,
}

impl Shard {
    #[inline]
    fn table<'g>(&self, guard: &'g Guard) -> &'g Table {
        // Ordering: Acquire pairs with the Release swaps in `grow` and `clear`, so a
        // new table's slots (written before it was published) are visible.
        let t = self.table.load(Ordering::Acquire, guard);
        // SAFETY: never null; a replaced table is retired through the epoch, which
        // `guard` pins.
        unsafe { t.deref() }
    }

    /// Hints the CPU to fetch the slot a probe for `hash` starts at, before the caller
    /// pins the epoch (which takes a while): the slot's cache miss overlaps the pin.
    #[inline]
    fn prefetch(&self, hash: u64) {
        // Ordering: Relaxed, both: a hint (see `hint_slots`); a mask from another
        // table than the address only prefetches another line.
        let base = self.hint_slots.load(Ordering::Relaxed);
        let mask = self.hint_mask.load(Ordering::Relaxed);
        let at = base.wrapping_add((hash as usize & mask) * size_of::<Slot>());
        super::table::prefetch(core::ptr::without_provenance::<u8>(at));
    }

    /// Mirrors table `t`, just made current under the lock, for `prefetch`.
    fn publish_hint(&self, t: &Table) {
        // Ordering: Relaxed, both: a hint.
        self.hint_slots
            .store(t.slots.as_ptr().addr(), Ordering::Relaxed);
        self.hint_mask.store(t.mask(), Ordering::Relaxed);
    }

    fn publish_len(&self, st: &ShardState) {
        // Ordering: Relaxed: a statistic; the lock orders the stores of one shard.
        self.locked.live.store(st.live, Ordering::Relaxed);
    }
}

/// A map from word-sized keys to `u64` counts, lock-free to count, with each key and
/// its count in the slot the lookup probes.
///
/// **Unstable.** This is the core [`CounterMap`](super::CounterMap) uses for keys of
/// these types, exported alone only with `--cfg atomkit_unstable` (and in atomkit's own
/// tests and models, which reach into it through hidden hooks). Use `CounterMap`: it
/// has the same behaviour for these keys, and this type may go.
///
/// ```
/// use atomkit::counter_map::WordCounterMap;
///
/// let hits: WordCounterMap<u64> = WordCounterMap::new();
/// hits.inc(7);
/// hits.add(7, 2);
/// assert_eq!(hits.get(7), 3);
/// assert_eq!(hits.get(8), 0);
/// assert_eq!(hits.snapshot_and_reset()[&7], 3);
/// assert_eq!(hits.remove(7), Some(0));
/// ```
///
/// # Consistency
///
/// As for [`CounterMap`](super::CounterMap): adds, `remove` and resets of one key are
/// linearizable; [`get`](WordCounterMap::get) and
/// [`snapshot`](WordCounterMap::snapshot) return, per key, a value between the count
/// when the call started and the count when it returned;
/// [`snapshot_and_reset`](WordCounterMap::snapshot_and_reset) reports every increment
/// exactly once (or `remove` does); an add racing `remove` is in the count `remove`
/// returns or on the key inserted anew. Counts are kept modulo 2<sup>56</sup>.
#[cfg(any(atomkit_unstable, test))]
pub struct WordCounterMap<K, S = DefaultHashBuilder> {
    core: WordCore<K>,
    hasher: S,
}

#[cfg(any(atomkit_unstable, test))]
/// Configures a [`WordCounterMap`]: shard count, initial capacity and hasher.
pub struct WordBuilder<K, S = DefaultHashBuilder> {
    shards: Option<usize>,
    capacity: usize,
    cap: Option<(usize, K)>,
    hasher: S,
}

#[cfg(any(atomkit_unstable, test))]
impl<K, S> fmt::Debug for WordBuilder<K, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WordBuilder")
            .field("shards", &self.shards)
            .field("capacity", &self.capacity)
            .field("key_cap", &self.cap.as_ref().map(|c| c.0))
            .finish_non_exhaustive()
    }
}

#[cfg(any(atomkit_unstable, test))]
impl<K, S> WordBuilder<K, S> {
    /// Sets the number of shards (rounded up to a power of two; default four per
    /// CPU, at most 256).
    ///
    /// # Panics
    ///
    /// If `n` is 0 or above 65,536.
    pub fn shards(mut self, n: usize) -> Self {
        assert!(
            (1..=MAX_SHARDS).contains(&n),
            "counter map shard count must be between 1 and {MAX_SHARDS}, got {n}"
        );
        self.shards = Some(n.next_power_of_two());
        self
    }

    /// Sizes the tables for `n` keys, so that they do not grow before then.
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n;
        self
    }

    /// Caps the number of distinct keys at `limit`. Past it, counting a new key counts
    /// `overflow` instead (which is always admitted and takes no place under the cap),
    /// so memory stays bounded however many keys callers make up. Removing keys frees
    /// places. A cap of 0 sends every key to `overflow`.
    ///
    /// ```
    /// use atomkit::counter_map::WordCounterMap;
    ///
    /// let m = WordCounterMap::<u32>::builder().key_cap(1, u32::MAX).build();
    /// m.inc(1);
    /// m.inc(2);
    /// m.inc(3);
    /// assert_eq!(m.get(u32::MAX), 2);
    /// m.remove(1);
    /// m.inc(3); // a place is free again
    /// assert_eq!(m.get(3), 1);
    /// ```
    pub fn key_cap(mut self, limit: usize, overflow: K) -> Self {
        self.cap = Some((limit, overflow));
        self
    }

    /// Hashes key words with `hasher` instead of the default.
    pub fn hasher<S2: BuildHasher>(self, hasher: S2) -> WordBuilder<K, S2> {
        WordBuilder {
            shards: self.shards,
            capacity: self.capacity,
            cap: self.cap,
            hasher,
        }
    }

    /// Builds the map.
    ///
    /// # Panics
    ///
    /// If the capacity is so large that a table's size overflows `usize`.
    pub fn build(self) -> WordCounterMap<K, S>
    where
        K: WordKey,
        S: BuildHasher,
    {
        let shards = self
            .shards
            .unwrap_or_else(|| (parallelism() * 4).next_power_of_two().min(256));
        let cap = self
            .cap
            .map(|(limit, overflow)| (limit, overflow.to_word()));
        WordCounterMap {
            core: WordCore::new(&self.hasher, shards, self.capacity, cap),
            hasher: self.hasher,
        }
    }
}

#[cfg(any(atomkit_unstable, test))]
impl<K: WordKey> WordCounterMap<K, DefaultHashBuilder> {
    /// An empty map.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// An empty map sized for `n` keys.
    pub fn with_capacity(n: usize) -> Self {
        Self::builder().capacity(n).build()
    }

    /// A [`WordBuilder`] for shard count, capacity and hasher.
    pub fn builder() -> WordBuilder<K, DefaultHashBuilder> {
        WordBuilder {
            shards: None,
            capacity: 0,
            cap: None,
            hasher: DefaultHashBuilder::default(),
        }
    }
}

#[cfg(any(atomkit_unstable, test))]
impl<K: WordKey> Default for WordCounterMap<K, DefaultHashBuilder> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(any(atomkit_unstable, test))]
impl<K: WordKey, S: BuildHasher> WordCounterMap<K, S> {
    /// Adds `n` to `key`'s count, inserting the key if it is absent. Counts wrap
    /// modulo 2<sup>56</sup>. If a key cap is set and full, a new key's `n` goes to
    /// the overflow key instead.
    #[inline]
    pub fn add(&self, key: K, n: u64) {
        self.core.add(&self.hasher, &key, n);
    }

    /// Adds 1 to `key`'s count.
    #[inline]
    pub fn inc(&self, key: K) {
        self.add(key, 1);
    }

    /// A handle on `key`'s count (inserting the key if absent) that counts without
    /// hashing, probing or pinning the epoch: one atomic read-modify-write on the
    /// key's cell, striped when threads collide on it.
    ///
    /// If the key is removed (or the map cleared), the handle's next add inserts it
    /// anew.
    ///
    /// ```
    /// use atomkit::counter_map::WordCounterMap;
    ///
    /// let m: WordCounterMap<u32> = WordCounterMap::new();
    /// let hits = m.counter(7);
    /// hits.inc();
    /// hits.add(2);
    /// assert_eq!(m.get(7), 3);
    /// assert_eq!(m.remove(7), Some(3));
    /// hits.inc(); // back in the map
    /// assert_eq!(hits.get(), 1);
    /// ```
    pub fn counter(&self, key: K) -> WordCounter<'_, K, S> {
        self.core.counter(&self.hasher, &key)
    }

    /// Grows the table of `key`'s shard now, as an insert that finds it full
    /// would: for models and tests that race adds and reads against growth.
    #[cfg(any(atomkit_loom, atomkit_shuttle, test))]
    #[doc(hidden)]
    pub fn grow_shard_of(&self, key: K) {
        self.core.grow_shard_of(&self.hasher, key.to_word());
    }

    /// Turns counting through per-thread table leases on or off (on by default but
    /// under loom, whose models of leases turn them on).
    #[cfg(any(atomkit_loom, atomkit_shuttle, test))]
    #[doc(hidden)]
    pub fn set_leases(&mut self, on: bool) {
        self.core.leased = on;
    }

    /// Whether `key`'s count lives in a striped cell (for models and tests).
    #[cfg(any(atomkit_loom, atomkit_shuttle, test))]
    #[doc(hidden)]
    pub fn has_cell(&self, key: K) -> bool {
        self.core.has_cell(&self.hasher, key.to_word())
    }

    /// Moves `key`'s count to a striped cell now, as contended adds would (for models
    /// and tests). Does nothing if the key is absent or already striped.
    #[cfg(any(atomkit_loom, atomkit_shuttle, test))]
    #[doc(hidden)]
    pub fn promote_key(&self, key: K) {
        self.core.promote_key(&self.hasher, key.to_word());
    }

    /// `key`'s count: 0 if absent. Weakly consistent (see the module docs).
    #[inline]
    pub fn get(&self, key: K) -> u64 {
        self.core.lookup(&self.hasher, &key).unwrap_or(0)
    }

    /// Whether `key` is listed (inserted and not removed since).
    ///
    /// ```
    /// use atomkit::counter_map::WordCounterMap;
    ///
    /// let m: WordCounterMap<i32> = WordCounterMap::new();
    /// m.add(-1, 0);
    /// assert!(m.contains_key(-1));
    /// assert!(!m.contains_key(1));
    /// ```
    pub fn contains_key(&self, key: K) -> bool {
        self.core.lookup(&self.hasher, &key).is_some()
    }

    /// Removes `key`, returning its count since the last reset, or `None` if it was
    /// absent. An add racing the removal is in the count returned, or re-inserts the
    /// key.
    pub fn remove(&self, key: K) -> Option<u64> {
        self.core.remove(&self.hasher, &key)
    }

    /// Keys listed (not removed). Exact when no insert or removal runs.
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// Whether no key is listed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` with every listed key and its count, over a weakly consistent view:
    /// each key listed for the whole call is visited once, with its count as `get`
    /// would return it; keys inserted or removed meanwhile may or may not be. Holds an
    /// epoch pin for the call, so keep `f` short.
    ///
    /// ```
    /// use atomkit::counter_map::WordCounterMap;
    ///
    /// let m: WordCounterMap<u64> = WordCounterMap::new();
    /// m.add(1, 2);
    /// m.add(2, 3);
    /// let mut total = 0;
    /// m.for_each(|_key, n| total += n);
    /// assert_eq!(total, 5);
    /// ```
    pub fn for_each(&self, mut f: impl FnMut(&K, u64)) {
        for (k, n) in self.iter() {
            f(&k, n);
        }
    }

    /// An iterator over `(key, count)` pairs, weakly consistent like
    /// [`for_each`](Self::for_each). It holds an epoch pin until dropped.
    ///
    /// ```
    /// use atomkit::counter_map::WordCounterMap;
    ///
    /// let m: WordCounterMap<u16> = WordCounterMap::new();
    /// m.add(1, 10);
    /// m.add(2, 20);
    /// let mut all: Vec<_> = m.iter().collect();
    /// all.sort();
    /// assert_eq!(all, [(1, 10), (2, 20)]);
    /// ```
    pub fn iter(&self) -> WordIter<'_, K, S> {
        self.core.iter(&self.hasher)
    }

    /// Every listed key with its count, weakly consistent like
    /// [`for_each`](Self::for_each).
    pub fn snapshot(&self) -> HashMap<K, u64> {
        let mut out = HashMap::with_capacity(self.len());
        out.extend(self.iter());
        out
    }

    /// Every listed key with its count since the last reset, resetting each to 0.
    /// Exact: every increment is reported by exactly one reset (or by `remove`). Takes
    /// each shard's lock in turn; adders do not wait for it.
    pub fn snapshot_and_reset(&self) -> HashMap<K, u64> {
        self.core.snapshot_and_reset(&self.hasher)
    }

    /// Removes every key, discarding the counts. An add racing `clear` is discarded
    /// or lands on the key inserted anew.
    pub fn clear(&self) {
        self.core.clear(&self.hasher);
    }
}

#[cfg(any(atomkit_unstable, test))]
impl<K, S> fmt::Debug for WordCounterMap<K, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WordCounterMap")
            .field("shards", &self.core.shards())
            .finish_non_exhaustive()
    }
}

/// The word-key core: shards of tables whose slots hold each key's word and count.
/// It keeps no hasher: [`WordCounterMap`] and [`CounterMap`](super::CounterMap) own
/// theirs and pass it in, so that a `CounterMap` of word keys holds one.
pub(super) struct WordCore<K> {
    shards: Box<[CachePadded<Shard>]>,
    shard_mask: usize,
    /// The key word that marks a free slot (also in `consts`).
    empty: u64,
    consts: Consts,
    /// The count word of the key whose word is `empty`; `DEAD` when absent. Changed
    /// under the lock of that key's shard, but for adds to a live word.
    side: CachePadded<AtomicU64>,
    /// The key cap, if any.
    cap: Option<WordCap>,
    /// This map's name in the threads' leases (module `lease`): unique in the process.
    id: u64,
    /// Whether adds go through leases. Off in the loom models but those of leases, whose
    /// reference counts would add to every model's state space.
    leased: bool,
    /// Under loom and shuttle, the map's own epoch collector (as for `CounterMap`).
    #[cfg(any(atomkit_loom, atomkit_shuttle))]
    collector: crossbeam_epoch::Collector,
    _key: PhantomData<fn(K) -> K>,
}

/// The optional cap on distinct keys.
struct WordCap {
    /// Most keys (besides `overflow`) the map lists.
    limit: usize,
    /// The word of the key that counts for every key the cap refuses.
    overflow: u64,
    /// Listed keys other than `overflow`: reserved by compare-and-swap before a key is
    /// listed, given back when it is unlisted. Changed by lock holders of any shard.
    reserved: CachePadded<AtomicUsize>,
}

impl<K: 'static> WordCore<K> {
    /// A core of `shards` shards (a power of two) sized for `capacity` keys, with a key
    /// cap of `(limit, overflow key word)` if any. `K` must be a word key type.
    ///
    /// # Panics
    ///
    /// If the capacity is so large that a table's size overflows `usize`.
    pub(super) fn new<S: BuildHasher>(
        h: &S,
        shards: usize,
        capacity: usize,
        cap: Option<(usize, u64)>,
    ) -> Self {
        debug_assert!(is_word_key::<K>() && shards.is_power_of_two());
        let len = capacity
            .div_ceil(shards)
            .checked_mul(MAX_LOAD.1)
            .map(|n| n.div_ceil(MAX_LOAD.0))
            .and_then(usize::checked_next_power_of_two)
            .expect("counter map capacity too large: its table size overflows")
            .max(MIN_TABLE);
        // A word some key of type `K` has (the round trip truncates it to one), so that
        // a lookup can tell whether its key is that one.
        let empty = encode(&decode::<K>(h.hash_one(EMPTY_SEED)));
        WordCore {
            shards: (0..shards)
                .map(|_| {
                    let t = Owned::new(Table::new(len, empty));
                    let hint = t.slots.as_ptr().addr();
                    CachePadded::new(Shard {
                        table: Atomic::from(t),
                        hint_slots: AtomicUsize::new(hint),
                        hint_mask: AtomicUsize::new(len - 1),
                        locked: CachePadded::new(Locked {
                            state: Mutex::new(ShardState {
                                live: 0,
                                used: 0,
                                min_len: len,
                            }),
                            live: AtomicUsize::new(0),
                        }),
                    })
                })
                .collect(),
            shard_mask: shards - 1,
            empty,
            consts: Consts {
                empty,
                stripes: max_stripes(),
            },
            side: CachePadded::new(AtomicU64::new(DEAD)),
            cap: cap.map(|(limit, overflow)| WordCap {
                limit,
                overflow,
                reserved: CachePadded::new(AtomicUsize::new(0)),
            }),
            // Ordering: Relaxed: only the uniqueness of the ids matters, which the
            // read-modify-write gives. Not a checker's atomic: no protocol runs on it.
            id: NEXT_ID.fetch_add(1, core::sync::atomic::Ordering::Relaxed),
            leased: !cfg!(atomkit_loom),
            #[cfg(any(atomkit_loom, atomkit_shuttle))]
            collector: crossbeam_epoch::Collector::new(),
            _key: PhantomData,
        }
    }
}

impl<K: Hash + Eq + 'static> WordCore<K> {
    #[inline]
    fn pin(&self) -> Guard {
        #[cfg(any(atomkit_loom, atomkit_shuttle))]
        {
            self.collector.register().pin()
        }
        #[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
        {
            crossbeam_epoch::pin()
        }
    }

    /// The hash of the key whose word is `k`: the key's own hash, as a lookup by a
    /// borrowed form computes it.
    #[inline]
    fn hash_word<S: BuildHasher>(&self, h: &S, k: u64) -> u64 {
        h.hash_one(decode::<K>(k))
    }

    #[inline]
    fn shard_of(&self, hash: u64) -> usize {
        (hash >> 32) as usize & self.shard_mask
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Shard {
        &self.shards[self.shard_of(hash)]
    }

    /// Adds `n` to `key`'s count, inserting the key (as `key.to_owned()`) if it is
    /// absent; past a full key cap, to the overflow key's.
    #[inline]
    pub(super) fn add<S, Q>(&self, h: &S, key: &Q, n: u64)
    where
        S: BuildHasher,
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        // The key's word first: `to_owned` (a copy, for the types of this core) is the
        // only user code on this path, and it runs before the thread's cache is read.
        let k = encode(&key.to_owned());
        if hot::add(self.tag(), k, n, self.consts.stripes) {
            return;
        }
        let mut collided = false;
        let hash = if k == self.empty {
            None
        } else {
            let hash = h.hash_one(key);
            if self.leased {
                match lease::add(self.id, self.shard_of(hash), k, hash, n, self.empty) {
                    lease::Leased::Done => return,
                    lease::Leased::Miss => {}
                    lease::Leased::Lost => collided = true,
                }
            }
            self.shard(hash).prefetch(hash);
            Some(hash)
        };
        let guard = self.pin();
        let added = match hash {
            Some(hash) => add_in(
                self.shard(hash).table(&guard),
                k,
                hash,
                n,
                self.consts,
                collided,
                &guard,
            ),
            None if add_live(&self.side, n, self.consts.stripes, &guard) => Added::Word,
            None => Added::Unlisted,
        };
        match added {
            Added::Word => {
                if let Some(hash) = hash.filter(|_| self.leased) {
                    // The table's own pointer (not one made from a reference), which
                    // may free it when the lease is given up last.
                    // Ordering: Acquire, as in `Shard::table`.
                    let t = self.shard(hash).table.load(Ordering::Acquire, &guard);
                    // SAFETY: the shard's current table, loaded under `guard`.
                    unsafe {
                        lease::offer(self.id, self.shards.len(), self.shard_of(hash), t.as_raw());
                    };
                }
            }
            // SAFETY: `p` is a cell found listed under `guard`, after the fence.
            Added::Cell(p) => unsafe { hot::fill(self.tag(), k, p) },
            Added::Unlisted => self.insert(h, k, n, &guard),
        }
    }

    /// This core's name in the threads' caches of hot cells: the address of its shard
    /// array, which no other live core shares and which, unlike the core's own
    /// address, stays put when the map is moved (a map moved away, then a new one built
    /// where it was, must not count into the first one's cells). Cells of a dropped
    /// core are dead (see `Drop`), so a later core at a reused address meets none.
    #[inline]
    fn tag(&self) -> usize {
        self.shards.as_ptr().addr()
    }

    /// Under the shard lock: lists key word `k` with count `n`, or adds `n` to it if
    /// another thread listed it first; past the key cap, adds `n` to the overflow key.
    #[cold]
    fn insert<S: BuildHasher>(&self, h: &S, k: u64, n: u64, guard: &Guard) {
        let (_, _st, word) = self.lock_listed(h, k, guard);
        let listed = add_live(word, n, self.consts.stripes, guard);
        debug_assert!(
            listed,
            "a word listed under the lock stays listed while it is held"
        );
    }

    /// Locks `k`'s shard and lists `k` (see `list`), or, if the key cap refuses it,
    /// the overflow key. Returns the key word listed, the lock and its count word.
    fn lock_listed<'g, S: BuildHasher>(
        &'g self,
        h: &S,
        k: u64,
        guard: &'g Guard,
    ) -> (u64, MutexGuard<'g, ShardState>, &'g AtomicU64) {
        let try_list = |k: u64| {
            let hash = self.hash_word(h, k);
            let shard = self.shard(hash);
            let mut st = lock(&shard.locked.state);
            let word = if k == self.empty {
                self.list_side(shard, &mut st, k)
            } else {
                self.list(h, shard, &mut st, k, hash, guard)
            };
            word.map(|w| (k, st, w))
        };
        try_list(k).unwrap_or_else(|| {
            let ov = self.cap.as_ref().map(|c| c.overflow);
            try_list(ov.expect("only a key cap refuses keys"))
                .expect("the overflow key is always admitted")
        })
    }

    /// Takes a place under the key cap for listing key word `k`; `false` if the cap
    /// is full. The overflow key takes none.
    fn reserve(&self, k: u64) -> bool {
        let Some(cap) = &self.cap else { return true };
        if k == cap.overflow {
            return true;
        }
        // Ordering: Relaxed for both: the count guards no memory; only the atomicity of
        // the RMW matters, so that at most `limit` succeed. A compare-and-swap, not an
        // add undone on refusal, which would count for a moment a place nobody holds.
        cap.reserved
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                (r < cap.limit).then_some(r + 1)
            })
            .is_ok()
    }

    /// Gives back the place under the key cap of key word `k`, just unlisted.
    fn unreserve(&self, k: u64) {
        if let Some(cap) = self.cap.as_ref().filter(|c| c.overflow != k) {
            // Ordering: Relaxed: see `reserve`.
            cap.reserved.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Under the side word's shard lock (`st`): the side word (key word `k`), listed
    /// with count 0 if it was absent; `None` if the key cap refuses it.
    fn list_side(&self, shard: &Shard, st: &mut ShardState, k: u64) -> Option<&AtomicU64> {
        // Ordering: Relaxed: only lock holders change a dead word.
        if self.side.load(Ordering::Relaxed) & DEAD != 0 {
            if !self.reserve(k) {
                return None;
            }
            // Ordering: Release, like every change of a count word.
            self.side.store(0, Ordering::Release);
            st.live += 1;
            shard.publish_len(st);
        }
        Some(&self.side)
    }

    /// Under the shard lock (`st`): `k`'s word in the current table, listed with count
    /// 0 if the key was absent (its tombstone revived in place, or a free slot claimed,
    /// after growing the table if it would be fuller than `MAX_LOAD`); `None` if the key
    /// cap refuses it.
    fn list<'g, S: BuildHasher>(
        &self,
        h: &S,
        shard: &Shard,
        st: &mut ShardState,
        k: u64,
        hash: u64,
        guard: &'g Guard,
    ) -> Option<&'g AtomicU64> {
        // The current table again: growth may have replaced the one the caller saw.
        let mut t = shard.table(guard);
        if let Some(s) = t.find(hash, |w| w == k, self.empty) {
            // Ordering: Relaxed: only lock holders change a dead word, and a live one
            // is returned as it is.
            let cur = s.word.load(Ordering::Relaxed);
            if cur & DEAD != 0 {
                if !self.reserve(k) {
                    return None;
                }
                // A tombstone: revive it in place (same slot, `CARRIED` kept). Adders
                // never change a dead word, so a store does.
                // Ordering: Release, like every change of a count word.
                s.word.store(cur & CARRIED, Ordering::Release);
                st.live += 1;
                shard.publish_len(st);
            }
            return Some(&s.word);
        }
        if !self.reserve(k) {
            return None;
        }
        if (st.used + 1) * MAX_LOAD.1 > t.slots.len() * MAX_LOAD.0 {
            t = self.grow(h, shard, st, t, guard);
        }
        let s = t.find_or_claim(k, hash, self.empty);
        st.used += 1;
        st.live += 1;
        shard.publish_len(st);
        Some(&s.word)
    }

    /// Lists `k` (if absent; the overflow key if the key cap refuses it), moves its
    /// count to a cell (if it is not in one), adds `n` to the cell and takes a
    /// reference on it: all under the key's shard lock, so the cell cannot be killed
    /// meanwhile. Returns the cell and the key word listed.
    fn acquire_cell<S: BuildHasher>(&self, h: &S, k: u64, n: u64) -> (*mut Cell, u64) {
        let guard = self.pin();
        let (k, st, word) = self.lock_listed(h, k, &guard);
        // Ordering: `WORD_LOAD`: a `CELL` value is followed by an Acquire fence below.
        let mut cur = word.load(WORD_LOAD);
        while cur & CELL == 0 {
            debug_assert!(cur & (DEAD | FROZEN) == 0, "listed, under the lock");
            cur = match promote(word, cur, self.consts.stripes) {
                // Ordering: as above. Only lock holders change a `CELL` word.
                Ok(()) => word.load(WORD_LOAD),
                Err(actual) => actual,
            };
        }
        // Ordering: pairs with the Release that published the `CELL` word (ours, or an
        // adder's promotion), so the cell is seen initialised.
        fence(Ordering::Acquire);
        let p = cell_ptr(cur);
        // SAFETY: the word lists the cell, and it stays listed while we hold the lock
        // (only lock holders unlist a word), so the listing's reference keeps it alive.
        let cell = unsafe { &*p };
        let live = cell.count.add(n, self.consts.stripes);
        debug_assert!(live, "a listed cell is killed only under the lock we hold");
        // Ordering: Relaxed: a new reference taken while the listing's keeps the cell
        // alive; the decrements that free it order the accesses (see `release_cell`).
        cell.refs.fetch_add(1, Ordering::Relaxed);
        drop(st);
        (p, k)
    }

    /// A handle on `key`'s count (inserting the key if absent; see
    /// [`WordCounterMap::counter`]).
    pub(super) fn counter<'a, S, Q>(&'a self, h: &'a S, key: &Q) -> WordCounter<'a, K, S>
    where
        S: BuildHasher,
        K: Borrow<Q>,
        Q: ToOwned<Owned = K> + ?Sized,
    {
        let (cell, k) = self.acquire_cell(h, encode(&key.to_owned()), 0);
        WordCounter {
            core: self,
            hasher: h,
            key: core::cell::Cell::new(k),
            cell: core::cell::Cell::new(cell),
        }
    }

    /// Under the lock: moves `old`'s live keys and counts to a table sized for them
    /// at most half full, publishes it and retires `old`.
    fn grow<'g, S: BuildHasher>(
        &self,
        h: &S,
        shard: &Shard,
        st: &mut ShardState,
        old: &'g Table,
        guard: &'g Guard,
    ) -> &'g Table {
        let len = ((st.live + 1) * GROWTH_SLACK)
            .next_power_of_two()
            .max(st.min_len);
        let new = Owned::new(Table::new(len, self.empty)).into_shared(guard);
        // Ordering: Relaxed: published to adders by each freeze's Release below.
        old.next.store(new, Ordering::Relaxed);
        // SAFETY: just allocated; retired only after a later growth or `clear`.
        let nt = unsafe { new.deref() };
        let mut moved = 0;
        for s in old.slots.iter() {
            // Ordering: AcqRel. Release: an adder or `get` that reads the frozen word
            // (and fences Acquire) sees `next` (the models fail without it). Acquire:
            // pairs with the adds' Release (see `add_in`), the same margin.
            let c = s.word.fetch_or(FROZEN, Ordering::AcqRel);
            // Ordering: Relaxed: the key was claimed under this lock, or by an earlier
            // growth (under it) that claimed or met it, so it is visible; a move's
            // claim into a frozen free slot is of a key listed elsewhere in `old`.
            let k = s.key.load(Ordering::Relaxed);
            if k == self.empty || c & DEAD != 0 {
                continue;
            }
            debug_assert!(c & FROZEN == 0, "the current table is frozen only here");
            let d = nt.find_or_claim(k, self.hash_word(h, k), self.empty);
            if c & CELL != 0 {
                // The cell moves, not its count: adders that read the frozen `CELL`
                // word keep adding to it, so none of them claimed this slot, whose
                // word is still 0. The listing (and ownership) of the cell moves here.
                // Ordering: Release, as for a promotion: whoever reads the word in the
                // new table, which is published by the Release swap below, sees the
                // cell too.
                let prev = d.word.swap(c | CARRIED, Ordering::Release);
                debug_assert_eq!(prev, 0, "no adder moves a key whose count is a cell");
                moved += 1;
                continue;
            }
            // Ordering: Relaxed: a count; the CAS below re-reads.
            let mut cur = d.word.load(Ordering::Relaxed);
            // Ordering: Release, as for adds: a later growth's freeze reads it.
            while let Err(actual) = d.word.compare_exchange_weak(
                cur,
                bump(cur, c & COUNT) | CARRIED,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                cur = actual;
            }
            moved += 1;
        }
        st.used = moved;
        // Ordering: Release pairs with the Acquire load in `Shard::table`, so the
        // moved slots are visible to whoever loads the new table.
        let old = shard.table.swap(new, Ordering::Release, guard);
        shard.publish_hint(nt);
        retire_table(old, guard);
        nt
    }

    /// Grows the table of key word `k`'s shard now, as an insert that finds it full
    /// would (for models and tests).
    #[cfg(any(atomkit_loom, atomkit_shuttle, test))]
    pub(super) fn grow_shard_of<S: BuildHasher>(&self, h: &S, k: u64) {
        let shard = self.shard(self.hash_word(h, k));
        let mut st = lock(&shard.locked.state);
        let guard = self.pin();
        let t = shard.table(&guard);
        self.grow(h, shard, &mut st, t, &guard);
    }

    /// Whether key word `k`'s count lives in a striped cell (for models and tests).
    #[cfg(any(atomkit_loom, atomkit_shuttle, test))]
    pub(super) fn has_cell<S: BuildHasher>(&self, h: &S, k: u64) -> bool {
        let hash = self.hash_word(h, k);
        let guard = self.pin();
        let t = self.shard(hash).table(&guard);
        // Ordering: Relaxed: a test's look at the flags.
        t.find(hash, |w| w == k, self.empty)
            .is_some_and(|s| s.word.load(Ordering::Relaxed) & (CELL | DEAD) == CELL)
    }

    /// Moves key word `k`'s count to a striped cell now, as contended adds would (for
    /// models and tests). Does nothing if the key is absent or already striped.
    #[cfg(any(atomkit_loom, atomkit_shuttle, test))]
    pub(super) fn promote_key<S: BuildHasher>(&self, h: &S, k: u64) {
        let hash = self.hash_word(h, k);
        let shard = self.shard(hash);
        let _st = lock(&shard.locked.state);
        let guard = self.pin();
        if let Some(s) = shard.table(&guard).find(hash, |w| w == k, self.empty) {
            // Ordering: Relaxed: `promote`'s CAS re-checks.
            let mut cur = s.word.load(Ordering::Relaxed);
            while cur & (CELL | DEAD) == 0 {
                match promote(&s.word, cur, self.consts.stripes) {
                    Ok(()) => break,
                    Err(actual) => cur = actual,
                }
            }
        }
    }

    /// `key`'s count, `None` if it is not listed. Weakly consistent (see the module
    /// docs).
    #[inline]
    pub(super) fn lookup<S, Q>(&self, h: &S, key: &Q) -> Option<u64>
    where
        S: BuildHasher,
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let eq = |w: u64| decode::<K>(w).borrow() == key;
        let guard = self.pin();
        if eq(self.empty) {
            return self.side_count(&guard);
        }
        let hash = h.hash_one(key);
        let t = self.shard(hash).table(&guard);
        let s = t.find(hash, eq, self.empty)?;
        // Ordering: `WORD_LOAD`: a count; frozen values fence in `resolve`.
        resolve(t, s.word.load(WORD_LOAD), hash, eq, self.empty, &guard)
    }

    /// Removes `key`, returning its count since the last reset, or `None` if it was
    /// absent. An add racing the removal is in the count returned, or re-inserts the
    /// key.
    pub(super) fn remove<S, Q>(&self, h: &S, key: &Q) -> Option<u64>
    where
        S: BuildHasher,
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let eq = |w: u64| decode::<K>(w).borrow() == key;
        let guard = self.pin();
        let side = eq(self.empty);
        let hash = if side {
            self.hash_word(h, self.empty)
        } else {
            h.hash_one(key)
        };
        let shard = self.shard(hash);
        let mut st = lock(&shard.locked.state);
        let (k, taken) = if side {
            (self.empty, take(&self.side, true, &guard))
        } else {
            let s = shard.table(&guard).find(hash, eq, self.empty)?;
            // Ordering: Relaxed: keys of the current table are claimed under this
            // lock, which orders them.
            (s.key.load(Ordering::Relaxed), take(&s.word, true, &guard))
        };
        if taken.is_some() {
            self.unreserve(k);
            st.live -= 1;
            shard.publish_len(&st);
        }
        taken
    }

    /// The side word's count, `None` if the key is absent.
    fn side_count(&self, guard: &Guard) -> Option<u64> {
        // Ordering: `WORD_LOAD`: a count; a `CELL` value is followed by an Acquire fence.
        let w = self.side.load(WORD_LOAD);
        if w & DEAD != 0 {
            return None;
        }
        if w & CELL != 0 {
            // Ordering: as in `add_in`.
            fence(Ordering::Acquire);
            // SAFETY: a `CELL` word read under `guard`, after the fence.
            return Some(unsafe { cell_of(w, guard) }.sum().unwrap_or(0) & COUNT);
        }
        Some(w & COUNT)
    }

    /// Keys listed (not removed). Exact when no insert or removal runs.
    pub(super) fn len(&self) -> usize {
        self.shards
            .iter()
            // Ordering: Relaxed: a statistic.
            .map(|s| s.locked.live.load(Ordering::Relaxed))
            .sum()
    }

    /// An iterator over `(key, count)` pairs, weakly consistent: each key listed for
    /// its whole life is visited once, with its count as `lookup` would return it.
    pub(super) fn iter<'a, S: BuildHasher>(&'a self, h: &'a S) -> WordIter<'a, K, S> {
        WordIter {
            core: self,
            hasher: h,
            guard: self.pin(),
            shard: 0,
            table: core::ptr::null(),
            slot: 0,
        }
    }

    /// Every listed key with its count since the last reset, resetting each to 0.
    /// Exact: every increment is reported by exactly one reset (or by `remove`). Takes
    /// each shard's lock in turn; adders do not wait for it.
    pub(super) fn snapshot_and_reset<S: BuildHasher>(&self, h: &S) -> HashMap<K, u64> {
        let mut out = HashMap::with_capacity(self.len());
        let guard = self.pin();
        for shard in self.shards.iter() {
            let _st = lock(&shard.locked.state);
            for s in shard.table(&guard).slots.iter() {
                // Ordering: Relaxed: keys of the current table are claimed under this
                // lock, which orders them.
                let k = s.key.load(Ordering::Relaxed);
                if k == self.empty {
                    continue;
                }
                if let Some(c) = take(&s.word, false, &guard) {
                    out.insert(decode(k), c);
                }
            }
        }
        let _st = lock(&self.shard(self.hash_word(h, self.empty)).locked.state);
        if let Some(c) = take(&self.side, false, &guard) {
            out.insert(decode(self.empty), c);
        }
        out
    }

    /// Removes every key, discarding the counts. An add racing `clear` is discarded
    /// or lands on the key inserted anew.
    pub(super) fn clear<S: BuildHasher>(&self, h: &S) {
        let guard = self.pin();
        let side_shard = self.shard(self.hash_word(h, self.empty));
        for shard in self.shards.iter() {
            let mut st = lock(&shard.locked.state);
            let t = shard.table(&guard);
            // Tombstones first, so that adders still on `t` re-insert instead of
            // counting into a table nobody lists.
            for s in t.slots.iter() {
                // Free slots are marked too (their words are live zeros).
                let taken = take(&s.word, true, &guard);
                // Ordering: Relaxed: keys of the current table are claimed under this
                // lock, which orders them.
                let k = s.key.load(Ordering::Relaxed);
                if taken.is_some() && k != self.empty {
                    self.unreserve(k);
                }
            }
            if core::ptr::eq::<Shard>(&**shard, side_shard)
                && take(&self.side, true, &guard).is_some()
            {
                self.unreserve(self.empty);
            }
            let new = Owned::new(Table::new(st.min_len, self.empty)).into_shared(&guard);
            // Ordering: Release pairs with the Acquire load in `Shard::table`.
            let old = shard.table.swap(new, Ordering::Release, &guard);
            // SAFETY: just allocated and published; retired only under this lock.
            shard.publish_hint(unsafe { new.deref() });
            retire_table(old, &guard);
            st.used = 0;
            st.live = 0;
            shard.publish_len(&st);
        }
    }
}

impl<K> WordCore<K> {
    /// The number of shards.
    pub(super) fn shards(&self) -> usize {
        self.shards.len()
    }
}

impl<K> Drop for WordCore<K> {
    fn drop(&mut self) {
        // The current tables' listings own one reference on each cell they list (the
        // retired tables' listings were moved or given up through the epoch); handles,
        // which borrow the map, are gone. The threads' caches of hot cells may hold
        // more: each cell is killed first, so that a cache never counts into it again
        // (a later core at this address, with the same key, finds it dead).
        let release = |w: u64| {
            if w & (CELL | DEAD) == CELL {
                let p = cell_ptr(w);
                // SAFETY: `&mut self`: no thread can reach the cell through the map, and
                // the listing's reference keeps it alive until it is given up, once,
                // here.
                unsafe {
                    (&*p).count.kill();
                    release_cell(p);
                }
            }
        };
        for shard in self.shards.iter() {
            // SAFETY: `&mut self`: no other thread can reach the map. Retired tables
            // belong to the collector; the current one's shard reference is ours.
            let t = unsafe {
                let guard = crossbeam_epoch::unprotected();
                // Ordering: Relaxed: exclusive access.
                let t: Shared<'_, Table> = shard.table.load(Ordering::Relaxed, guard);
                t.as_raw()
            };
            // SAFETY: the shard's reference keeps the table alive until it is released
            // below.
            for s in unsafe { &*t }.slots.iter() {
                // Ordering: Relaxed: exclusive access.
                release(s.word.load(Ordering::Relaxed));
            }
            // Threads' leases may keep the table a while, but never count into it
            // again: no other map has this one's id. So its slots, most of its memory,
            // go now.
            // Ordering: Relaxed: a lease taken before the drop happens-before it; one
            // given up meanwhile only makes this take the slots when it need not.
            // SAFETY: `t` is live (see above) and no thread reads its slots again;
            // other owners only decrement `refs`, a field this does not write.
            unsafe {
                if (*t).refs.load(Ordering::Relaxed) > 1 {
                    drop(core::ptr::replace(
                        &raw mut (*t.cast_mut()).slots,
                        Box::new([]),
                    ));
                }
            }
            // SAFETY: the shard's reference, given up once, here.
            unsafe { release_table(t) };
        }
        // Ordering: Relaxed: exclusive access.
        release(self.side.load(Ordering::Relaxed));
    }
}

/// Iterator over `(key, count)` pairs, from [`WordCounterMap::iter`]. Holds an epoch
/// pin.
pub struct WordIter<'a, K, S = DefaultHashBuilder> {
    core: &'a WordCore<K>,
    hasher: &'a S,
    guard: Guard,
    /// The shard being walked; `shards.len()` for the side word, past it when done.
    shard: usize,
    /// The table of `shard`, or null before it is loaded.
    table: *const Table,
    slot: usize,
}

impl<K: Hash + Eq + 'static, S: BuildHasher> Iterator for WordIter<'_, K, S> {
    type Item = (K, u64);

    fn next(&mut self) -> Option<(K, u64)> {
        let m = self.core;
        while let Some(shard) = m.shards.get(self.shard) {
            if self.table.is_null() {
                self.table = shard.table(&self.guard);
                self.slot = 0;
            }
            // SAFETY: loaded under `self.guard`, which lives as long as the iterator,
            // so the table is not freed meanwhile.
            let t = unsafe { &*self.table };
            let Some(s) = t.slots.get(self.slot) else {
                self.shard += 1;
                self.table = core::ptr::null();
                continue;
            };
            self.slot += 1;
            // Ordering: Relaxed: a key word.
            let k = s.key.load(Ordering::Relaxed);
            if k == m.empty {
                continue;
            }
            // Ordering: `WORD_LOAD`: a count; frozen values fence in `resolve`.
            let w = s.word.load(WORD_LOAD);
            // Only a frozen word's resolution probes another table with the hash.
            let hash = if w & FROZEN != 0 {
                m.hash_word(self.hasher, k)
            } else {
                0
            };
            if let Some(c) = resolve(t, w, hash, |x| x == k, m.empty, &self.guard) {
                return Some((decode(k), c));
            }
        }
        if self.shard == m.shards.len() {
            self.shard += 1;
            if let Some(c) = m.side_count(&self.guard) {
                return Some((decode(m.empty), c));
            }
        }
        None
    }
}

impl<K, S> fmt::Debug for WordIter<'_, K, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WordIter").finish_non_exhaustive()
    }
}

/// A pre-resolved handle on one key's count, from [`WordCounterMap::counter`] (and
/// inside a [`Counter`](super::Counter) of a word key type).
///
/// Counting through it skips hashing, probing and the epoch pin: one atomic
/// read-modify-write on the key's cell, striped when threads collide on it. It can be
/// sent to another thread but not shared; clone it for each thread. (The example is
/// on [`WordCounterMap::counter`], which exists in unstable builds only.)
pub struct WordCounter<'a, K, S = DefaultHashBuilder> {
    core: &'a WordCore<K>,
    hasher: &'a S,
    /// The word of the key counted: the overflow key's once the key cap refused the
    /// one asked for.
    key: core::cell::Cell<u64>,
    /// The cell this handle owns a reference on. Replaced by `add` (through `&self`;
    /// the handle is not `Sync`) when the cell was killed.
    cell: core::cell::Cell<*mut Cell>,
}

// SAFETY: the handle owns a reference on a cell (atomics only), which any thread may
// use and give up; the core and the hasher are shared by reference, which needs them
// `Sync` (the core is: atomics, mutexes and epoch pointers); `key` makes values of
// `K` on the thread that holds the handle, hence `K: Send`.
unsafe impl<K: Send, S: Sync> Send for WordCounter<'_, K, S> {}

impl<K: Hash + Eq + 'static, S: BuildHasher> WordCounter<'_, K, S> {
    #[inline]
    fn cell(&self) -> &RcCell {
        // SAFETY: the handle owns a reference on the cell, so it is live.
        unsafe { &*self.cell.get() }
    }

    /// Adds `n` to the key's count. If the key was removed, this inserts it anew
    /// (under its shard's lock) and re-points the handle.
    #[inline]
    pub fn add(&self, n: u64) {
        if !self.cell().count.add(n, self.core.consts.stripes) {
            self.readd(n);
        }
    }

    #[cold]
    fn readd(&self, n: u64) {
        let (new, k) = self.core.acquire_cell(self.hasher, self.key.get(), n);
        self.key.set(k);
        let old = self.cell.replace(new);
        // SAFETY: the handle owned this reference (on a dead cell), given up once.
        unsafe { release_cell(old) };
    }

    /// Adds 1 to the key's count.
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// The key's count, as [`WordCounterMap::get`] would report it.
    pub fn get(&self) -> u64 {
        match self.cell().count.sum() {
            Some(n) => n & COUNT,
            // The key was removed: it may have been inserted anew elsewhere.
            None => self
                .core
                .lookup(self.hasher, &decode::<K>(self.key.get()))
                .unwrap_or(0),
        }
    }

    /// The key this handle counts: the overflow key if the key cap refused the one
    /// asked for.
    pub fn key(&self) -> K {
        decode(self.key.get())
    }
}

impl<K, S> Clone for WordCounter<'_, K, S> {
    fn clone(&self) -> Self {
        let p = self.cell.get();
        // Ordering: Relaxed: a new reference taken while ours keeps the cell alive.
        // SAFETY: our reference keeps the cell alive.
        unsafe { &*p }.refs.fetch_add(1, Ordering::Relaxed);
        WordCounter {
            core: self.core,
            hasher: self.hasher,
            key: self.key.clone(),
            cell: core::cell::Cell::new(p),
        }
    }
}

impl<K, S> Drop for WordCounter<'_, K, S> {
    fn drop(&mut self) {
        // SAFETY: the handle's reference, given up once.
        unsafe { release_cell(self.cell.get()) };
    }
}

impl<K: Hash + Eq + fmt::Debug + 'static, S> fmt::Debug for WordCounter<'_, K, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WordCounter")
            .field("key", &decode::<K>(self.key.get()))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
