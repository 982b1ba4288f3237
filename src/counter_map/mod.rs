//! Per-key counters that never take a lock to count: Go's `UserCounters` (a map of
//! atomic counters behind an `RWMutex`) without the mutex.
//!
//! A [`CounterMap<K>`] maps keys to `u64` counts. Counting a key that is already in
//! the map is a lookup (plain loads) and one atomic read-modify-write on the key's
//! count: no lock, not even a reader lock, and no allocation. Keys of the integer
//! types and `char` are kept with their counts in the slots the lookup probes, and a
//! thread counts them through its lease on the tables, without even an epoch pin;
//! other keys in entries the slots point to, and a key the thread counted recently is
//! then found in a small per-thread cache, with no pin either. A key seen for the
//! first time is inserted under a small per-shard lock (and, in an entry, allocated
//! once). A key that many threads count at once spreads over cache-line-padded
//! stripes, so eight threads on one user do not queue on one cache line.
//! [`snapshot_and_reset`] reports each increment exactly once across successive
//! dumps.
//!
//! ```
//! use atomkit::counter_map::CounterMap;
//! use std::sync::Arc;
//! use std::thread;
//!
//! let requests: Arc<CounterMap<String>> = Arc::new(CounterMap::new());
//! let workers: Vec<_> = (0..4)
//!     .map(|t| {
//!         let requests = Arc::clone(&requests);
//!         thread::spawn(move || {
//!             for i in 0..100 {
//!                 let user = if i % 4 == 0 { "alice" } else { "bob" };
//!                 requests.inc(user); // &str: allocates only the first time
//!             }
//!             requests.add(&format!("worker-{t}"), 1);
//!         })
//!     })
//!     .collect();
//! for w in workers {
//!     w.join().unwrap();
//! }
//! let dump = requests.snapshot_and_reset();
//! assert_eq!(dump["alice"], 100);
//! assert_eq!(dump["bob"], 300);
//! assert_eq!(requests.get("bob"), 0); // reset
//! assert_eq!(requests.len(), 6); // keys stay until removed
//! ```
//!
//! # Consistency
//!
//! - Each operation on one key is linearizable: `inc`/`add` take effect at their
//!   read-modify-write, `remove` at its swap of the count words. (Under a key cap, a
//!   new key's slot is taken or refused a moment earlier: see the key cap below.)
//! - [`get`](CounterMap::get) and [`snapshot`](CounterMap::snapshot) are weakly
//!   consistent: they read each count word once, at different instants, so under
//!   concurrent increments they return some value between the count when the call
//!   started and the count when it returned (per key), and they may or may not see keys
//!   inserted or removed during the call. Increments that completed before the call
//!   started are always included. (A reset racing the read can make a hot key's sum
//!   mix words read before the reset with words read after it.)
//! - [`snapshot_and_reset`](CounterMap::snapshot_and_reset) is exact: every increment
//!   is reported by exactly one reset (or by the `remove` of its key), never lost and
//!   never counted twice, whatever runs concurrently; only [`clear`](CounterMap::clear)
//!   discards counts, by design. It is not an atomic cut across keys, nor one instant
//!   for a hot key (it takes the key's count words one by one): an increment racing a
//!   reset lands in this dump or the next.
//! - An increment racing [`remove`](CounterMap::remove) of its key is either included
//!   in the count `remove` returns, or it lands on a freshly inserted entry for the
//!   key (the key comes back with that increment; if the key cap is full by then, on
//!   the overflow key). It is never lost.
//! - The key cap decides a new key's fate before its count lands: an increment (or
//!   [`counter`](CounterMap::counter)) that finds the key absent lists it with a count
//!   of 0, taking a slot, or refuses it, under the key's shard lock; the count comes
//!   after, on the overflow key once that lock is let go. So another new key can be
//!   refused for a slot whose increment does not show in `get` yet, and a refused
//!   increment can land on the overflow key after a concurrent `remove` freed a slot,
//!   or after a concurrent `get` or `remove` of the overflow key missed it. Which key
//!   counts an increment is settled at that earlier instant; the count is exact all
//!   the same.
//! - A key type whose `Eq` or `Clone` calls into the *same* map can deadlock:
//!   inserting a key runs them, and removing one its `Eq`, under its shard's lock,
//!   and a thread that asks for a lock it holds waits for ever. (`Hash` runs before
//!   any lock is taken.) Other maps are fine, and so is a key's `Drop`, which never
//!   runs under a lock: when code that runs under one gives up the last reference on
//!   an entry (by counting in other maps, whose entries evict it from the thread's
//!   cache, or by flushing the epoch, which runs deferred releases), the entry and
//!   its key are dropped once the thread holds no shard lock.
//! - Counts are kept modulo 2<sup>56</sup> (the word-key core keeps the top 8 bits
//!   of its count words for flags, and entries report theirs alike). A key counted
//!   2<sup>56</sup> times between two resets (72 quadrillion: two years at a billion
//!   increments a second) wraps.
//!
//! # When keys are dropped
//!
//! [`remove`](CounterMap::remove), [`clear`](CounterMap::clear) and dropping the map
//! take keys out of the map at once, but a key (and its entry's stripes) is dropped
//! only when its last reference goes: its [`Counter`] handles, the epoch collector
//! (as in any crossbeam-epoch structure), and the per-thread cache of every thread
//! that counted it recently. A cached key is dropped when that thread evicts it or
//! exits, which can be after the thread was joined. Keys whose `Drop` has side
//! effects, or that hold an `Arc` whose count you check, see this delay; a `Drop`
//! that panics inside a thread-local destructor aborts the process.
//!
//! Memory follows the same rule. With keys of the integer types and `char`, each
//! thread leases the tables of the last map it counted into, one per shard: a table
//! replaced by growth or [`clear`](CounterMap::clear) is freed once every thread
//! that leased it has counted into that shard again, leased another map's tables, or
//! exited. Dropping the map frees its current tables' slots at once; only a small
//! header per leased table waits for the leases.
//!
//! # Implementation
//!
//! The map has two cores, picked by the key type when the map is built (by
//! [`TypeId`](core::any::TypeId): `K: 'static`, which every method needs anyway, so
//! each key type's code keeps only its own core):
//!
//! - **Word keys** (`u8` to `u64`, `i8` to `i64`, `usize`, `isize`, `char`): each
//!   slot holds the key's word and its count word, so counting is a probe and a CAS
//!   on the same cache line, with no epoch pin: each thread holds a counted reference
//!   (a lease) on the table of each shard it counts in, so the table outlives its
//!   replacement until the thread moves on, and a replaced table's words are all
//!   frozen or tombstones, so a stale lease only sends the add down the pinned path.
//!   Growth freezes each slot and moves
//!   its count to the next table while adders go on there; a contended key moves to
//!   a striped cell (the `StripedCell` below, reference-counted for [`Counter`]
//!   handles). Its design, orderings and invariants are in `word.rs`, with the loom
//!   models in `loom-tests/tests/loom_word_counter_map.rs`. The map runs lookups by a
//!   borrowed form `Q` through the key's own `Eq` on each probed word, so any `Borrow`
//!   works as for other keys. Its `snapshot_and_reset` takes each shard's lock in
//!   turn (adders do not wait for it; inserts and removals of that shard do). A
//!   per-thread cache of up to 16 hot keys' cells lets a thread count a contended key
//!   without the pin; like the entry cache below, it keeps those cells (up to 8 KiB
//!   each with their stripes) alive after their key is removed or their map dropped,
//!   until the thread evicts them or exits.
//! - **Other keys**: the entry core described in the rest of this section.
//!
//! The entry core is a sharded open-addressing hash table with lock-free readers (in the
//! spirit of Click's lock-free hash table and of Java's `ConcurrentHashMap`, whose
//! readers never lock), plus Java's `LongAdder` for the counts (Doug Lea,
//! `java.util.concurrent.atomic.Striped64`), with memory reclaimed by epochs
//! (Fraser, *Practical lock-freedom*, 2004, §5.2.3, via `crossbeam-epoch`).
//!
//! A key's hash picks a shard (bits 32.. of the hash); each shard has one current
//! table of slots, a power of two, probed linearly from the hash's low bits.
//! A slot is an epoch pointer with a one-bit tag:
//!
//! | slot                  | meaning |
//! |-----------------------|---------|
//! | null, tag 0           | empty: ends every probe chain through it |
//! | null, tag 1           | tombstone: a removed key; probes go on |
//! | non-null              | an entry: hash, key, count cell, reference count |
//!
//! An entry's count is a `StripedCell`: a `base` word and, after the first failed CAS
//! on it, a block of `CachePadded` stripe words (8 to 64, four per CPU; 2 under the
//! model checkers) that adders spread over by a per-thread probe, doubling the stripes in
//! use on each further collision. Each count word is:
//!
//! | bits  | name    | meaning |
//! |-------|---------|---------|
//! | 0..63 | count   | increments since the last reset, modulo 2<sup>63</sup> |
//! | 63    | `DEAD`  | the entry was removed; add nothing here, re-resolve the key |
//!
//! The stripes pointer has its own `DEAD` tag in bit 0, so no stripes can appear on an
//! entry after it was killed.
//!
//! Counting an existing key first looks in a small per-thread cache of entries this
//! thread counted recently (two-way set-associative, shared by all maps, allocated on
//! the thread's first miss at 1 KiB and grown eightfold while it churns, up to 1,024
//! sets = 2,048 entries = 64 KiB; see `local.rs`): a way names the map, the key's hash
//! and an entry on which the way owns a reference, so a hit checks the cell is alive,
//! compares the key and does the `compare_exchange` on the count word, with no epoch
//! pin, no table probe and no write to shared memory but the count. On a cache miss
//! the thread prefetches the slot its probe starts at (through an address mirrored in
//! the shard, so before it holds a pin), pins the epoch (one read-modify-write on its
//! own epoch record, a full fence on x86), loads the shard's table, probes, and counts;
//! the entry then goes into the cache on the key's second miss in a row in its set,
//! taking a reference for it (a one-off key does not evict a frequent one). On a table
//! miss or a dead cell the thread takes the shard's mutex, which serialises inserts,
//! removals, growth and `clear` of that shard only; readers never take it.
//!
//! Keys are hashed with foldhash ([`DefaultHashBuilder`], random seed per map) unless
//! the builder is given another hasher.
//!
//! Invariants:
//!
//! 1. A shard's current table and its slots change only under the shard's mutex.
//!    A key is listed in at most one slot of the current table.
//! 2. A table is at most half full of non-empty slots (entries plus tombstones), so
//!    every probe chain ends at an empty slot and an insert always finds one; growth
//!    rebuilds the table at most a quarter full, dropping the tombstones.
//! 3. Growth copies entry *pointers*, never counts: an old table and its successor
//!    list the same entries, so an increment through a stale table counts in the same
//!    cell as one through the new table.
//! 4. Removal (and `clear`) unlists the entry under the lock, then kills its cell:
//!    one `swap(DEAD)` per count word takes the count. After that, a count word is
//!    `DEAD` for good (resets use `fetch_and(DEAD)`, which keeps the flag), so an adder
//!    holding the dead entry fails its CAS or sees `DEAD`, adds nothing, and retries
//!    under the lock, where it finds or inserts a live entry. Hence every increment
//!    lands in exactly one live word, and each word's count is taken by exactly one
//!    `fetch_and`/`swap`: this is why `snapshot_and_reset` is exact.
//! 5. An entry is freed when its reference count drops to zero: one reference belongs
//!    to the tables (released through the epoch after unlisting, so every reader that
//!    could have found it has unpinned), one to each [`Counter`] handle, and one to
//!    a handle call that runs the key's code on its entry (`Counter::get` on a removed
//!    key, `Counter::key`), since that code may count through the same handle, which
//!    then re-points itself and gives up its own reference. Old tables
//!    are retired through the epoch too; dropping a table frees its slot array only.
//!    The stripes block lives as long as its entry. An entry whose last reference
//!    goes while its thread holds a shard lock (of any map) is freed when the thread
//!    holds none (`table::unlocked`), so that no key's `Drop` runs under a lock.
//! 6. A per-thread cache way owns one reference on its entry, like a handle, so a
//!    cache hit never touches freed memory, without any pin: the way's reference, not
//!    the epoch, keeps the entry alive. A cached entry may have been removed (or its
//!    map dropped: dropping a map kills every listed entry); its dead cell then fails
//!    the add, which falls back to the pinned path (invariant 4) and refreshes the
//!    way. A way is keyed by the map's address only and holds the entry through its
//!    head, whose layout does not depend on the key type (the key comes after it).
//!    A hit reads the head's base count word first: a map at a reused address is
//!    newer than the drop of the old one, which killed its entries, so a live word
//!    proves the entry is this map's, of this map's key type; only then is the key
//!    read. The cost: a thread keeps up to 2,048 entries (with their keys and stripes)
//!    alive after they are removed or their map is dropped, until it evicts them or
//!    exits.
//!
//! Growth, insertion and removal block only other writers of the same shard (they take
//! its mutex); counting, `get`, snapshots and iteration never block. This is the
//! documented middle ground: a lock-free table with concurrent migration (Click's
//! design) costs helping logic on every access, for inserts that a counter map sees
//! once per key.
//!
//! Under loom and shuttle, the map uses a collector of its own (registering for each
//! operation) instead of the process-wide one, so that models stay small, each
//! execution starts clean, and everything the map retires in an execution is freed
//! within it: freeing an entry touches the checker's atomics, which panic outside an
//! execution (with the process-wide collector, a test thread's exit could free a
//! leftover entry from a thread-local destructor and abort the test binary).
//!
//! ## Memory orderings
//!
//! - Slot stores of new entries are `Release` and probes load `Acquire`, so a reader
//!   that finds an entry sees its hash, key and cell initialised. Likewise the table
//!   pointer (`Release` swap in growth and `clear`, `Acquire` load) publishes a new
//!   table's slots, and the stripes pointer (`AcqRel` CAS, `Acquire` load) a new
//!   stripes block.
//! - All count-word operations are `Relaxed`. Exactness is a property of each word's
//!   modification order (every RMW on a word sees the one before it), which holds for
//!   any ordering; nothing else is published through a count. A thread that wants a
//!   total to include increments made by others synchronises with them by other means
//!   (a join, a channel), which the `Relaxed` reads then respect (coherence).
//! - An adder that meets `DEAD` retries under the shard mutex; the mutex orders it
//!   after the remover's unlisting, so it cannot find the dead entry again.
//! - Entry reference counts follow `Arc`: `Relaxed` increments (the caller already
//!   holds a reference or a pin), `Release` decrements, an `Acquire` fence before the
//!   free. An entry whose free waits for its thread's locks gets its count set back
//!   to 1 by a `Relaxed` store: after the fence, nobody else can reach it.
//! - The per-thread cache is read and written only by its thread (plain `Cell`s); the
//!   entry it points to was found under a pin, whose `Acquire` loads made its key and
//!   cell visible, and a thread's later reads are ordered after its earlier ones, so a
//!   hit needs no ordering of its own. Its `Relaxed` liveness check needs none either:
//!   the kill it must see (by a dropped map at the same address) happens before the
//!   new map exists, hence before the check, and coherence forbids reading an older
//!   value of the word.
//! - The prefetch hint (slot array address and mask) is `Relaxed`: it is never
//!   dereferenced, only handed to the CPU's prefetch instruction, which cannot fault.
//!
//! [`snapshot_and_reset`]: CounterMap::snapshot_and_reset

mod cell;
mod local;
mod table;
// `WordCounterMap` and its types are exported only with `--cfg atomkit_unstable`;
// without it, their public items are reachable only through `CounterMap`.
#[cfg_attr(not(any(atomkit_unstable, test)), allow(unreachable_pub, dead_code))]
mod word;

use self::table::{Entry, Shard, ShardState, Table};
use self::word::{is_word_key, WordCore};
#[cfg(any(atomkit_unstable, test))]
pub use self::word::{WordBuilder, WordCounterMap, WordKey};
#[cfg(any(atomkit_unstable, test))]
pub use self::word::{WordCounter, WordIter};
#[cfg(not(any(atomkit_unstable, test)))]
use self::word::{WordCounter, WordIter};
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::UnsafeCell;
use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use crossbeam_epoch::Guard;
use crossbeam_utils::CachePadded;
use std::collections::HashMap;

/// Smallest per-shard table (slots).
#[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
const MIN_TABLE: usize = 8;
/// Smallest per-shard table (slots): tiny under the model checkers so growth is reached.
#[cfg(any(atomkit_loom, atomkit_shuttle))]
const MIN_TABLE: usize = 2;

/// Most shards a map may have.
const MAX_SHARDS: usize = 1 << 16;

fn parallelism() -> usize {
    if cfg!(any(atomkit_loom, atomkit_shuttle)) {
        return 2;
    }
    std::thread::available_parallelism().map_or(4, |n| n.get())
}

/// Stripes a hot key gets: four per CPU, at least 8 and at most 64. Adders pick a
/// stripe at random and move on collision, so with as many stripes as running threads
/// two of them would still share one a good part of the time; 8 stripes keep 8
/// threads on 2 CPUs (the oversubscribed case) mostly apart, for 1 KiB per hot key.
/// Two under the model checkers, to keep models small.
fn max_stripes() -> usize {
    if cfg!(any(atomkit_loom, atomkit_shuttle)) {
        return 2;
    }
    (parallelism() * 4).next_power_of_two().clamp(8, 64)
}

/// The default hasher of a [`CounterMap`]: foldhash's `quality` variant, seeded at
/// random per map (from a per-process random seed), so that which keys collide cannot
/// be known in advance.
///
/// It hashes a `u64` in a few multiplications, against tens of cycles for the
/// standard library's SipHash-1-3, with a final avalanche step so that the low bits the
/// table probes from are well mixed. It resists casual hash flooding (the seed is
/// secret and per map) but is not a cryptographic PRF: a map keyed by untrusted input
/// that must withstand an attacker who can observe timings for a long time should pass
/// `std::collections::hash_map::RandomState` to [`Builder::hasher`].
///
/// # Examples
///
/// ```
/// use atomkit::counter_map::{CounterMap, DefaultHashBuilder};
/// let m: CounterMap<u64, DefaultHashBuilder> = CounterMap::new();
/// m.inc(&1);
/// assert_eq!(m.get(&1), 1);
/// ```
#[derive(Clone, Debug)]
pub struct DefaultHashBuilder(foldhash::quality::SeedableRandomState);

impl Default for DefaultHashBuilder {
    fn default() -> Self {
        // Under the model checkers, a fixed seed keeps every execution's slot layout
        // the same (they replay executions and expect identical choices).
        if cfg!(any(atomkit_loom, atomkit_shuttle)) {
            DefaultHashBuilder(foldhash::quality::SeedableRandomState::fixed())
        } else {
            DefaultHashBuilder(foldhash::quality::SeedableRandomState::random())
        }
    }
}

impl BuildHasher for DefaultHashBuilder {
    type Hasher = foldhash::quality::FoldHasher<'static>;

    #[inline]
    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}

/// A concurrent map from keys to `u64` counts; see the [module docs](self).
///
/// `K` is the key type, `S` the hasher. Keys are looked up by any borrowed form `Q`
/// (`&str` for `String`), and a key is cloned into the map only when it is first seen.
pub struct CounterMap<K, S = DefaultHashBuilder> {
    /// The shards; a power of two of them. Immutable (their insides are not).
    shards: Box<[CachePadded<Shard<K>>]>,
    /// `shards.len() - 1`.
    shard_mask: usize,
    /// Hashes keys. Immutable.
    hasher: S,
    /// Stripes allocated for a hot key. Immutable.
    max_stripes: usize,
    /// The key cap, if any.
    cap: Option<KeyCap<K>>,
    /// For a word key type (see `word`), the core holding keys and counts in its slots;
    /// then `shards` is empty and `cap` is `None` (the core has its own).
    word: Option<WordCore<K>>,
    /// The map's own epoch collector under loom and shuttle (see the module doc).
    #[cfg(any(atomkit_loom, atomkit_shuttle))]
    collector: crossbeam_epoch::Collector,
}

/// The optional cardinality cap.
struct KeyCap<K> {
    /// Most keys (besides `overflow`) the map holds.
    limit: usize,
    /// The key that counts for every key refused by the cap.
    overflow: K,
    /// Entries that hold a cap slot: reserved by compare-and-swap before insertion, given
    /// back on removal. Written by inserters and removers of any shard.
    reserved: CachePadded<AtomicUsize>,
}

/// Configures a [`CounterMap`]: shard count, initial capacity, key cap and hasher.
///
/// # Examples
///
/// ```
/// use atomkit::counter_map::CounterMap;
///
/// let m: CounterMap<String> = CounterMap::builder()
///     .shards(4)
///     .capacity(1_000)
///     .key_cap(2, "other".to_string())
///     .build();
/// m.inc("a");
/// m.inc("b");
/// m.inc("c"); // past the cap: counted under "other"
/// assert_eq!(m.get("c"), 0);
/// assert_eq!(m.get("other"), 1);
/// ```
pub struct Builder<K, S = DefaultHashBuilder> {
    shards: Option<usize>,
    capacity: usize,
    cap: Option<(usize, K)>,
    hasher: S,
}

impl<K, S> fmt::Debug for Builder<K, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("shards", &self.shards)
            .field("capacity", &self.capacity)
            .field("key_cap", &self.cap.as_ref().map(|c| c.0))
            .finish_non_exhaustive()
    }
}

impl<K> Builder<K, DefaultHashBuilder> {
    fn new() -> Self {
        Builder {
            shards: None,
            capacity: 0,
            cap: None,
            hasher: DefaultHashBuilder::default(),
        }
    }
}

impl<K, S> Builder<K, S> {
    /// Sets the number of shards, rounded up to a power of two. The default is four
    /// per available CPU. More shards means less contention between inserters.
    ///
    /// # Panics
    ///
    /// If `n` is 0 or more than 65,536.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m = CounterMap::<u64>::builder().shards(3).build(); // 4 shards
    /// m.inc(&7);
    /// assert_eq!(m.get(&7), 1);
    /// ```
    pub fn shards(mut self, n: usize) -> Self {
        assert!(
            (1..=MAX_SHARDS).contains(&n),
            "counter map shard count must be between 1 and {MAX_SHARDS}, got {n}"
        );
        self.shards = Some(n.next_power_of_two());
        self
    }

    /// Sizes the map for `n` keys without growing.
    ///
    /// # Panics
    ///
    /// [`build`](Self::build) panics if the tables for `n` keys (two slots per key,
    /// rounded up to a power of two) would have more slots than `usize` counts, or
    /// more bytes than an allocation may have.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m = CounterMap::<u64>::builder().capacity(10_000).build();
    /// assert!(m.is_empty());
    /// ```
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n;
        self
    }

    /// Caps the number of distinct keys at `limit`. Past it, counting a new key counts
    /// `overflow` instead (which is always admitted and does not take a slot), so memory
    /// stays bounded however many keys callers make up. Removing keys frees slots.
    ///
    /// A cap of 0 sends every key to `overflow`.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m = CounterMap::<u32>::builder().key_cap(1, u32::MAX).build();
    /// m.inc(&1);
    /// m.inc(&2);
    /// m.inc(&3);
    /// assert_eq!(m.get(&u32::MAX), 2);
    /// m.remove(&1);
    /// m.inc(&3); // a slot is free again
    /// assert_eq!(m.get(&3), 1);
    /// ```
    pub fn key_cap(mut self, limit: usize, overflow: K) -> Self {
        self.cap = Some((limit, overflow));
        self
    }

    /// Hashes keys with `hasher` instead of the default [`DefaultHashBuilder`].
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// use std::hash::BuildHasherDefault;
    /// use std::collections::hash_map::DefaultHasher;
    ///
    /// let m = CounterMap::<u64>::builder()
    ///     .hasher(BuildHasherDefault::<DefaultHasher>::default())
    ///     .build();
    /// m.add(&1, 5);
    /// assert_eq!(m.get(&1), 5);
    /// ```
    pub fn hasher<S2>(self, hasher: S2) -> Builder<K, S2> {
        Builder {
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
    /// If the [`capacity`](Self::capacity) asked for is too big to allocate.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m = CounterMap::<String>::builder().build();
    /// assert!(m.is_empty());
    /// ```
    pub fn build(self) -> CounterMap<K, S>
    where
        K: 'static,
        S: BuildHasher,
    {
        let shards = self
            .shards
            .unwrap_or_else(|| (parallelism() * 4).next_power_of_two().min(256));
        if is_word_key::<K>() {
            let cap = self
                .cap
                .map(|(limit, overflow)| (limit, word::encode(&overflow)));
            return CounterMap {
                word: Some(WordCore::new(&self.hasher, shards, self.capacity, cap)),
                shards: Box::new([]),
                shard_mask: 0,
                hasher: self.hasher,
                max_stripes: max_stripes(),
                cap: None,
                #[cfg(any(atomkit_loom, atomkit_shuttle))]
                collector: crossbeam_epoch::Collector::new(),
            };
        }
        let per_shard = self.capacity.div_ceil(shards);
        let table = per_shard
            .checked_mul(2)
            .and_then(usize::checked_next_power_of_two)
            .expect("counter map capacity too large: its table size overflows")
            .max(MIN_TABLE);
        CounterMap {
            shards: (0..shards)
                .map(|_| CachePadded::new(Shard::new(table)))
                .collect(),
            shard_mask: shards - 1,
            hasher: self.hasher,
            max_stripes: max_stripes(),
            cap: self.cap.map(|(limit, overflow)| KeyCap {
                limit,
                overflow,
                reserved: CachePadded::new(AtomicUsize::new(0)),
            }),
            word: None,
            #[cfg(any(atomkit_loom, atomkit_shuttle))]
            collector: crossbeam_epoch::Collector::new(),
        }
    }
}

impl<K: 'static> CounterMap<K, DefaultHashBuilder> {
    /// An empty map with the default shard count.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m: CounterMap<String> = CounterMap::new();
    /// m.inc("alice");
    /// assert_eq!(m.get("alice"), 1);
    /// ```
    pub fn new() -> Self {
        Builder::new().build()
    }

    /// An empty map sized for `n` keys.
    ///
    /// # Panics
    ///
    /// If the tables for `n` keys are too big to allocate (see
    /// [`Builder::capacity`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m: CounterMap<u64> = CounterMap::with_capacity(100_000);
    /// assert_eq!(m.len(), 0);
    /// ```
    pub fn with_capacity(n: usize) -> Self {
        Builder::new().capacity(n).build()
    }

    /// A [`Builder`] for shard count, capacity, key cap and hasher.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m = CounterMap::<u64>::builder().shards(8).build();
    /// m.inc(&1);
    /// assert_eq!(m.len(), 1);
    /// ```
    pub fn builder() -> Builder<K, DefaultHashBuilder> {
        Builder::new()
    }
}

impl<K: 'static> Default for CounterMap<K, DefaultHashBuilder> {
    fn default() -> Self {
        Self::new()
    }
}

/// A key-cap slot taken for an insert: handed back if dropped, which happens only
/// when the key's `to_owned` panics before the entry exists.
struct Reservation<'a>(Option<&'a AtomicUsize>);

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if let Some(reserved) = self.0 {
            // Ordering: Relaxed, as for the reservation itself.
            reserved.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// What the slow path hands back: the entry it found or inserted, under the lock.
enum Resolved<'g, K> {
    Entry(&'g Entry<K>),
    /// The key is new and the cap is full: count the overflow key instead.
    Overflow,
}

impl<K, S> CounterMap<K, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    S: BuildHasher,
{
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

    #[inline]
    fn shard(&self, hash: u64) -> &Shard<K> {
        &self.shards[(hash >> 32) as usize & self.shard_mask]
    }

    #[inline]
    fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The word-key core, for a word key type. A constant `None` for other types, so
    /// that their code keeps no trace of it.
    #[inline(always)]
    fn word(&self) -> Option<&WordCore<K>> {
        if is_word_key::<K>() {
            self.word.as_ref()
        } else {
            None
        }
    }

    /// This map's name in the per-thread caches (see `local`): its address, which no
    /// other live map shares.
    #[inline]
    fn tag(&self) -> usize {
        self.shards.as_ptr().addr()
    }

    /// Adds `n` to `key`'s count, inserting the key (as `key.to_owned()`) with `n` if it
    /// is new. Takes no lock and does not allocate when the key is present.
    ///
    /// If a key cap is set and full, a new key's `n` goes to the overflow key instead.
    /// Counts wrap modulo 2<sup>56</sup> (see the [module docs](self#consistency)).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m: CounterMap<String> = CounterMap::new();
    /// m.add("bytes", 1500);
    /// m.add("bytes", 500);
    /// assert_eq!(m.get("bytes"), 2000);
    /// ```
    #[inline]
    pub fn add<Q>(&self, key: &Q, n: u64)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(w) = self.word() {
            return w.add(&self.hasher, key, n);
        }
        let hash = self.hash(key);
        let seen = local::count_cached(self.tag(), hash, |p| {
            // SAFETY: the way's reference keeps the entry alive during this call
            // (invariant 6), and a head has the same layout whatever the key type.
            let head = unsafe { &*p };
            if !head.cell.is_live() {
                return false; // removed, or left by a dropped map at our address
            }
            // SAFETY: a live cell means the entry belongs to the live map at our
            // address, which is this map, so `p` is the head of an `Entry<K>`
            // (invariant 6).
            let e = unsafe { &*p.cast::<Entry<K>>() };
            e.key().borrow() == key && e.cell.add(n, self.max_stripes)
        });
        if let local::Lookup::Missed { admit } = seen {
            self.add_uncached(hash, key, n, admit);
        }
    }

    /// `add` without a cache hit: probe under the epoch pin, or resolve under the lock;
    /// then cache the entry for this thread if `cache` (the cache admitted the key).
    #[inline(never)]
    fn add_uncached<Q>(&self, hash: u64, key: &Q, n: u64, cache: bool)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let shard = self.shard(hash);
        shard.prefetch(hash);
        let tag = self.tag();
        let guard = self.pin();
        let take = |e: &Entry<K>| {
            if cache && e.hash == hash && e.key().borrow() == key {
                e.acquire();
                Some(e as *const Entry<K>)
            } else {
                None // not admitted, or counted on the overflow key
            }
        };
        let cached = match shard_find(shard, hash, key, &guard) {
            Some(e) if e.cell.add(n, self.max_stripes) => take(e),
            _ => self.resolve(hash, key, &guard, |e| {
                let alive = e.cell.add(n, self.max_stripes);
                debug_assert!(alive, "entries are killed only under the lock we hold");
                take(e)
            }),
        };
        drop(guard);
        if let Some(e) = cached {
            // SAFETY: `e` is a live entry of this map with full hash `hash`, on which
            // `take` took one reference for the cache.
            unsafe { local::fill(tag, hash, Entry::as_head(e)) }.release();
        }
    }

    /// Adds one to `key`'s count; see [`add`](Self::add).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m: CounterMap<String> = CounterMap::new();
    /// m.inc("GET /");
    /// m.inc("GET /");
    /// assert_eq!(m.get("GET /"), 2);
    /// ```
    #[inline]
    pub fn inc<Q>(&self, key: &Q)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        self.add(key, 1);
    }

    /// The slow path: under `key`'s shard mutex, finds or inserts its entry and runs
    /// `f` on it (a live entry: nothing is killed while we hold the lock). A new key
    /// past the cap runs `f` on the overflow key's entry instead.
    #[cold]
    fn resolve<Q, R>(&self, hash: u64, key: &Q, guard: &Guard, f: impl FnOnce(&Entry<K>) -> R) -> R
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let shard = self.shard(hash);
        let resolved = {
            let mut st = shard.lock();
            match self.find_or_insert(shard, &mut st, hash, key, guard) {
                Resolved::Entry(e) => return f(e),
                Resolved::Overflow => Resolved::<K>::Overflow,
            }
        };
        debug_assert!(matches!(resolved, Resolved::Overflow));
        let cap = self.cap.as_ref().expect("overflow only with a cap");
        let ohash = self.hash(&cap.overflow);
        let oshard = self.shard(ohash);
        let mut st = oshard.lock();
        match self.find_or_insert::<K>(oshard, &mut st, ohash, &cap.overflow, guard) {
            Resolved::Entry(e) => f(e),
            Resolved::Overflow => unreachable!("the overflow key is always admitted"),
        }
    }

    /// Under `shard`'s mutex (`st`): the key's live entry, inserted if new.
    fn find_or_insert<'g, Q>(
        &self,
        shard: &Shard<K>,
        st: &mut ShardState,
        hash: u64,
        key: &Q,
        guard: &'g Guard,
    ) -> Resolved<'g, K>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(e) = shard.table(guard).find(hash, key, guard) {
            return Resolved::Entry(e);
        }
        let mut reserved = false;
        if let Some(cap) = &self.cap {
            if cap.overflow.borrow() != key {
                // Ordering: Relaxed for both: the reservation count guards no memory;
                // only the atomicity of the RMW matters, so that at most `limit`
                // succeed. A compare-and-swap, not an add undone on refusal: a refused
                // add would count for a moment a slot nobody holds, and an insert that
                // follows a remove could then be refused with the slot free.
                if cap
                    .reserved
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| {
                        (r < cap.limit).then_some(r + 1)
                    })
                    .is_err()
                {
                    return Resolved::Overflow;
                }
                reserved = true;
            }
        }
        // A `to_owned` (the key's `Clone`) that panics must give the cap's slot back.
        let owned = {
            let cap = self.cap.as_ref().filter(|_| reserved);
            let slot = Reservation(cap.map(|c| &*c.reserved));
            let owned = key.to_owned();
            core::mem::forget(slot);
            owned
        };
        let e = shard.insert(st, Entry::new(hash, owned, reserved), guard);
        Resolved::Entry(e)
    }

    /// Retires an unlisted entry: kills its cell (taking the count), gives back its cap
    /// slot and the tables' reference (through the epoch).
    fn retire(&self, e: crossbeam_epoch::Shared<'_, Entry<K>>, guard: &Guard) -> u64 {
        // SAFETY: `e` was just unlisted under the lock and is pinned by `guard`.
        let entry = unsafe { e.deref() };
        let n = entry.cell.kill();
        if entry.reserved {
            if let Some(cap) = &self.cap {
                // Ordering: Relaxed: see `find_or_insert`.
                cap.reserved.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let ptr = SendPtr(e.as_raw());
        // SAFETY: the entry is unlisted, so no new reader can find it; readers that
        // found it are pinned, and the closure runs after they unpin. The tables'
        // reference is released exactly once, here. `K: Send + 'static`, so dropping
        // the entry on another thread, after the map, is sound.
        unsafe {
            guard.defer_unchecked(move || {
                let p = ptr;
                Entry::release(p.0);
            });
        }
        n
    }

    /// `key`'s count: 0 if absent. Weakly consistent under concurrent increments (see
    /// the [module docs](self#consistency)).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m: CounterMap<String> = CounterMap::new();
    /// assert_eq!(m.get("nobody"), 0);
    /// m.inc("somebody");
    /// assert_eq!(m.get("somebody"), 1);
    /// ```
    pub fn get<Q>(&self, key: &Q) -> u64
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(w) = self.word() {
            return w.lookup(&self.hasher, key).unwrap_or(0);
        }
        let hash = self.hash(key);
        let guard = self.pin();
        self.shard(hash)
            .table(&guard)
            .find(hash, key, &guard)
            .and_then(|e| e.cell.sum())
            .unwrap_or(0)
    }

    /// Whether `key` is in the map.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m: CounterMap<String> = CounterMap::new();
    /// m.add("zero", 0);
    /// assert!(m.contains_key("zero"));
    /// assert!(!m.contains_key("one"));
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(w) = self.word() {
            return w.lookup(&self.hasher, key).is_some();
        }
        let hash = self.hash(key);
        let guard = self.pin();
        self.shard(hash)
            .table(&guard)
            .find(hash, key, &guard)
            .is_some_and(|e| e.cell.sum().is_some())
    }

    /// Removes `key`, returning its count since the last reset, or `None` if it was
    /// absent. An increment racing the removal is either included in the returned
    /// count or re-inserts the key (see the [module docs](self#consistency)).
    /// The key itself may be dropped later (see
    /// [when keys are dropped](self#when-keys-are-dropped)).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m: CounterMap<String> = CounterMap::new();
    /// m.add("gone", 3);
    /// assert_eq!(m.remove("gone"), Some(3));
    /// assert_eq!(m.remove("gone"), None);
    /// assert_eq!(m.get("gone"), 0);
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> Option<u64>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if let Some(w) = self.word() {
            return w.remove(&self.hasher, key);
        }
        let hash = self.hash(key);
        let shard = self.shard(hash);
        let guard = self.pin();
        let mut st = shard.lock();
        let e = shard.unlist(&mut st, hash, key, &guard)?;
        let n = self.retire(e, &guard);
        drop(st);
        Some(n)
    }

    /// Removes every key. Increments racing `clear` are either removed with it or
    /// re-insert their key. The keys themselves may be dropped later (see
    /// [when keys are dropped](self#when-keys-are-dropped)).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m: CounterMap<u64> = CounterMap::new();
    /// m.inc(&1);
    /// m.inc(&2);
    /// m.clear();
    /// assert!(m.is_empty());
    /// assert_eq!(m.get(&1), 0);
    /// ```
    pub fn clear(&self) {
        if let Some(w) = self.word() {
            return w.clear(&self.hasher);
        }
        let guard = self.pin();
        for shard in self.shards.iter() {
            let mut st = shard.lock();
            let old = shard.take_all(&mut st, &guard);
            // SAFETY: the table pointer is never null, and `guard` pins the old table.
            let table: &Table<K> = unsafe { old.deref() };
            // Prefetching walk: the entries are scattered over the heap.
            table.for_each_entry_ptr(&guard, |e| {
                self.retire(crossbeam_epoch::Shared::from(e), &guard);
            });
            // SAFETY: the old table is no longer reachable from the shard; readers that
            // hold it are pinned. Its drop frees only its slot array.
            unsafe { guard.defer_destroy(old) };
        }
    }

    /// The number of keys in the map (including the overflow key once it has been
    /// counted). Exact when nothing is inserting or removing concurrently.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m: CounterMap<u64> = CounterMap::new();
    /// m.inc(&1);
    /// m.inc(&1);
    /// m.inc(&2);
    /// assert_eq!(m.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        if let Some(w) = self.word() {
            return w.len();
        }
        self.shards.iter().map(|s| s.len()).sum()
    }

    /// Whether the map has no keys; see [`len`](Self::len).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m: CounterMap<u64> = CounterMap::new();
    /// assert!(m.is_empty());
    /// m.inc(&1);
    /// assert!(!m.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `f` with every key and its count, over a weakly consistent view: each key
    /// present for the whole call is visited once, keys inserted or removed during the
    /// call may or may not be. Holds an epoch pin for the duration of the call, so keep
    /// `f` short (memory retired meanwhile waits for it).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m: CounterMap<String> = CounterMap::new();
    /// m.add("a", 2);
    /// m.add("b", 3);
    /// let mut total = 0;
    /// m.for_each(|_key, n| total += n);
    /// assert_eq!(total, 5);
    /// ```
    pub fn for_each(&self, mut f: impl FnMut(&K, u64)) {
        if let Some(w) = self.word() {
            return w.iter(&self.hasher).for_each(|(k, n)| f(&k, n));
        }
        let guard = self.pin();
        for shard in self.shards.iter() {
            shard.table(&guard).for_each_entry(&guard, |e| {
                if let Some(n) = e.cell.sum() {
                    f(e.key(), n);
                }
            });
        }
    }

    /// An iterator over `(key, count)` pairs (keys cloned), weakly consistent like
    /// [`for_each`](Self::for_each). It holds an epoch pin until dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m: CounterMap<u64> = CounterMap::new();
    /// m.add(&1, 10);
    /// m.add(&2, 20);
    /// let mut all: Vec<_> = m.iter().collect();
    /// all.sort();
    /// assert_eq!(all, [(1, 10), (2, 20)]);
    /// ```
    pub fn iter(&self) -> Iter<'_, K, S> {
        Iter {
            map: self,
            guard: self.pin(),
            shard: 0,
            table: core::ptr::null(),
            slot: 0,
            word: self.word().map(|w| w.iter(&self.hasher)),
        }
    }

    /// Every key with its count. Weakly consistent (see the
    /// [module docs](self#consistency)); counts are left as they are.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m: CounterMap<String> = CounterMap::new();
    /// m.add("alice", 3);
    /// let snap = m.snapshot();
    /// assert_eq!(snap["alice"], 3);
    /// assert_eq!(m.get("alice"), 3);
    /// ```
    pub fn snapshot(&self) -> HashMap<K, u64> {
        if let Some(w) = self.word() {
            let mut out = HashMap::with_capacity(w.len());
            out.extend(w.iter(&self.hasher));
            return out;
        }
        let mut out = HashMap::with_capacity(self.len());
        self.for_each(|k, n| {
            *out.entry(k.clone()).or_insert(0) += n;
        });
        out
    }

    /// Every key with its count since the previous reset, resetting the counts to zero
    /// (keys stay). Exact: every increment is reported by exactly one reset (or by the
    /// `remove` of its key), never lost between two dumps and never counted twice.
    /// Counting never waits for it; for keys of the integer types and `char` it takes
    /// each shard's lock in turn, so inserts and removals of that shard wait.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m: CounterMap<String> = CounterMap::new();
    /// m.add("alice", 3);
    /// assert_eq!(m.snapshot_and_reset()["alice"], 3);
    /// m.inc("alice");
    /// assert_eq!(m.snapshot_and_reset()["alice"], 1);
    /// assert_eq!(m.snapshot_and_reset()["alice"], 0);
    /// ```
    pub fn snapshot_and_reset(&self) -> HashMap<K, u64> {
        if let Some(w) = self.word() {
            return w.snapshot_and_reset(&self.hasher);
        }
        let mut out = HashMap::with_capacity(self.len());
        let guard = self.pin();
        for shard in self.shards.iter() {
            shard.table(&guard).for_each_entry(&guard, |e| {
                if let Some(n) = e.cell.reset() {
                    *out.entry(e.key().clone()).or_insert(0) += n;
                }
            });
        }
        out
    }

    /// A handle on `key`'s counter (inserting the key if new), which counts without
    /// hashing or probing: one atomic read-modify-write per increment.
    ///
    /// If the key is removed, the handle's next increment re-inserts it. If the key cap
    /// is full and `key` is new, the handle counts the overflow key.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m: CounterMap<String> = CounterMap::new();
    /// let hits = m.counter("/index.html");
    /// for _ in 0..10 {
    ///     hits.inc();
    /// }
    /// assert_eq!(hits.get(), 10);
    /// assert_eq!(m.get("/index.html"), 10);
    /// ```
    pub fn counter<Q>(&self, key: &Q) -> Counter<'_, K, S>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if let Some(w) = self.word() {
            return Counter {
                map: self,
                entry: UnsafeCell::new(core::ptr::null()),
                word: Some(w.counter(&self.hasher, key)),
            };
        }
        let hash = self.hash(key);
        let guard = self.pin();
        let entry = self.resolve(hash, key, &guard, |e| {
            e.acquire();
            e as *const Entry<K>
        });
        Counter {
            map: self,
            entry: UnsafeCell::new(entry),
            word: None,
        }
    }
}

/// Probes `shard`'s current table for `key`.
#[inline]
fn shard_find<'g, K, Q>(
    shard: &Shard<K>,
    hash: u64,
    key: &Q,
    guard: &'g Guard,
) -> Option<&'g Entry<K>>
where
    K: Borrow<Q>,
    Q: Eq + ?Sized,
{
    shard.table(guard).find(hash, key, guard)
}

/// A raw entry pointer moved into a deferred closure.
struct SendPtr<K>(*const Entry<K>);
// SAFETY: the pointer is used only to release a reference; entries hold `K: Send`,
// so dropping one on another thread is sound.
unsafe impl<K: Send> Send for SendPtr<K> {}

impl<K, S> Drop for CounterMap<K, S> {
    fn drop(&mut self) {
        // The shards release their entries (`Shard::drop`); retired tables and entries
        // are freed by the collector.
    }
}

impl<K, S> fmt::Debug for CounterMap<K, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shards = self
            .word
            .as_ref()
            .map_or(self.shards.len(), WordCore::shards);
        f.debug_struct("CounterMap")
            .field("shards", &shards)
            .finish_non_exhaustive()
    }
}

/// A pre-resolved handle on one key's counter, from [`CounterMap::counter`].
///
/// Counting through it skips hashing, the per-thread cache, probing and the epoch pin: one atomic
/// read-modify-write (striped if the key is hot). It can be sent to another thread but
/// not shared; clone it for each thread.
///
/// # Examples
///
/// ```
/// use atomkit::counter_map::CounterMap;
/// use std::thread;
///
/// let m: CounterMap<String> = CounterMap::new();
/// thread::scope(|s| {
///     for _ in 0..2 {
///         let c = m.counter("hot");
///         s.spawn(move || {
///             for _ in 0..1000 {
///                 c.inc();
///             }
///         });
///     }
/// });
/// assert_eq!(m.get("hot"), 2000);
/// ```
pub struct Counter<'a, K, S = DefaultHashBuilder>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    map: &'a CounterMap<K, S>,
    /// The entry this handle holds a reference on. Replaced (by `add`, through `&self`)
    /// when the entry is found dead; the handle is `!Sync`, so only its owner does.
    /// Null for a word key type, whose handle is `word`.
    entry: UnsafeCell<*const Entry<K>>,
    /// For a word key type, the word-key core's handle (on a cell).
    word: Option<WordCounter<'a, K, S>>,
}

// SAFETY: the handle owns one reference on its entry, which may be released from any
// thread (`K: Send + Sync`); the map is shared by reference (`S: Sync` for the hasher).
unsafe impl<K, S> Send for Counter<'_, K, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    S: BuildHasher + Sync,
{
}

impl<'a, K, S> Counter<'a, K, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// The word-key handle, for a word key type (a constant `None` for others).
    #[inline(always)]
    fn word(&self) -> Option<&WordCounter<'a, K, S>> {
        if is_word_key::<K>() {
            self.word.as_ref()
        } else {
            None
        }
    }

    fn entry(&self) -> &Entry<K> {
        let ptr = self.entry.with(|p| {
            // SAFETY: the cell is written only by `readd` of this `!Sync` handle, which
            // is not running now.
            unsafe { *p }
        });
        // SAFETY: the handle holds a reference on the entry (invariant 5), so it is live.
        unsafe { &*ptr }
    }

    /// Adds `n` to the key's count. If the key was removed, this re-inserts it (under
    /// its shard's lock) and re-points the handle.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m: CounterMap<u64> = CounterMap::new();
    /// let c = m.counter(&9);
    /// c.add(5);
    /// assert_eq!(m.remove(&9), Some(5));
    /// c.add(1); // back in the map
    /// assert_eq!(m.get(&9), 1);
    /// ```
    #[inline]
    pub fn add(&self, n: u64) {
        if let Some(w) = self.word() {
            return w.add(n);
        }
        if !self.entry().cell.add(n, self.map.max_stripes) {
            self.readd(n);
        }
    }

    /// One more reference on the current entry, given back when the guard drops: it
    /// keeps the entry (and its key) alive while user code runs (`K::hash`, `K::eq`,
    /// `K::clone`), which may re-enter this very handle (through a thread-local, say),
    /// find the entry dead, re-point the handle and give up the handle's reference.
    fn hold(&self) -> Held<K> {
        let e = self.entry();
        e.acquire();
        Held(e as *const Entry<K>)
    }

    #[cold]
    fn readd(&self, n: u64) {
        let old = self.hold();
        let guard = self.map.pin();
        let new = self.map.resolve(old.hash, old.key(), &guard, |e| {
            let alive = e.cell.add(n, self.map.max_stripes);
            debug_assert!(alive, "entries are killed only under the lock we hold");
            e.acquire();
            e as *const Entry<K>
        });
        let prev = self.entry.with_mut(|p| {
            core::mem::replace(
                // SAFETY: `!Sync` handle: no other access to the cell is in progress
                // (a re-entrant `readd` from the user code in `resolve` has returned).
                unsafe { &mut *p },
                new,
            )
        });
        // SAFETY: the handle owned a reference on `prev` (the entry it pointed at:
        // `old`, or the one a re-entrant `readd` installed), given up here.
        unsafe { Entry::release(prev) };
        drop(old);
    }

    /// Adds one to the key's count; see [`add`](Self::add).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m: CounterMap<u64> = CounterMap::new();
    /// let c = m.counter(&1);
    /// c.inc();
    /// assert_eq!(c.get(), 1);
    /// ```
    #[inline]
    pub fn inc(&self) {
        self.add(1);
    }

    /// The key's count, as [`CounterMap::get`] would report it.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m: CounterMap<u64> = CounterMap::new();
    /// let c = m.counter(&1);
    /// m.add(&1, 4);
    /// assert_eq!(c.get(), 4);
    /// ```
    pub fn get(&self) -> u64 {
        if let Some(w) = self.word() {
            return w.get();
        }
        if let Some(n) = self.entry().cell.sum() {
            return n;
        }
        // The key was removed: look it up, which runs the key's `Hash` and `Eq`.
        let e = self.hold();
        self.map.get(e.key())
    }

    /// A clone of the key this handle counts (the overflow key if the cap refused the
    /// original).
    ///
    /// A clone, not a reference: an [`add`](Self::add) through this handle after the
    /// key was removed re-points the handle at a new entry and may free the old one,
    /// key included, while a reference to it would still be in use.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::counter_map::CounterMap;
    /// let m: CounterMap<String> = CounterMap::new();
    /// assert_eq!(m.counter("k").key(), "k");
    /// ```
    pub fn key(&self) -> K {
        if let Some(w) = self.word() {
            return w.key();
        }
        // `K::clone` may count through this very handle (see `hold`).
        self.hold().key().clone()
    }
}

/// A reference on an entry taken by [`Counter::hold`], given back on drop.
struct Held<K>(*const Entry<K>);

impl<K> core::ops::Deref for Held<K> {
    type Target = Entry<K>;

    fn deref(&self) -> &Entry<K> {
        // SAFETY: the guard owns a reference on the entry, so it is live.
        unsafe { &*self.0 }
    }
}

impl<K> Drop for Held<K> {
    fn drop(&mut self) {
        // SAFETY: the guard owns one reference on the entry, given up once, here.
        unsafe { Entry::release(self.0) };
    }
}

impl<K, S> Clone for Counter<'_, K, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    fn clone(&self) -> Self {
        if let Some(w) = &self.word {
            return Counter {
                map: self.map,
                entry: UnsafeCell::new(core::ptr::null()),
                word: Some(w.clone()),
            };
        }
        let e = self.entry();
        e.acquire();
        Counter {
            map: self.map,
            entry: UnsafeCell::new(e as *const Entry<K>),
            word: None,
        }
    }
}

impl<K, S> Drop for Counter<'_, K, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    fn drop(&mut self) {
        if self.word.is_some() {
            return; // the word-key handle gives up its own reference
        }
        let e = self.entry.with(|p| {
            // SAFETY: `&mut self`: no other access.
            unsafe { *p }
        });
        // SAFETY: the handle owns one reference, given up here.
        unsafe { Entry::release(e) };
    }
}

impl<K, S> fmt::Debug for Counter<'_, K, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counter").finish_non_exhaustive()
    }
}

/// Iterator over `(key, count)` pairs, from [`CounterMap::iter`]. Holds an epoch pin.
pub struct Iter<'a, K, S = DefaultHashBuilder> {
    map: &'a CounterMap<K, S>,
    guard: Guard,
    shard: usize,
    /// The table of `shard` being walked, or null before it is loaded.
    table: *const Table<K>,
    slot: usize,
    /// For a word key type, the word-key core's iterator, which does the walk.
    word: Option<WordIter<'a, K, S>>,
}

impl<K, S> Iterator for Iter<'_, K, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    type Item = (K, u64);

    fn next(&mut self) -> Option<(K, u64)> {
        if let Some(w) = &mut self.word {
            return w.next();
        }
        loop {
            if self.table.is_null() {
                let shard = self.map.shards.get(self.shard)?;
                self.table = shard.table(&self.guard);
                self.slot = 0;
            }
            // SAFETY: the table was read under `self.guard`, which is held as long as
            // the iterator, so it is not freed (invariant 5).
            let table = unsafe { &*self.table };
            match table.entry_at(self.slot, &self.guard) {
                None => {
                    self.shard += 1;
                    self.table = core::ptr::null();
                }
                Some(e) => {
                    self.slot += 1;
                    if let Some(e) = e {
                        if let Some(n) = e.cell.sum() {
                            return Some((e.key().clone(), n));
                        }
                    }
                }
            }
        }
    }
}

impl<K, S> fmt::Debug for Iter<'_, K, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
