//! Integration tests of `CounterMap`.

#[path = "support/counter_model.rs"]
mod counter_model;
#[path = "support/lincheck.rs"]
mod lincheck;

use atomkit::counter_map::{Counter, CounterMap, DefaultHashBuilder, Iter};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

/// Scales a loop count down under Miri.
fn scale(n: u64) -> u64 {
    if cfg!(miri) {
        (n / 4000).max(10)
    } else {
        n
    }
}

/// A tiny deterministic generator (xorshift64*), so tests need no rand crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A skewed key in `0..n`: small keys are much more likely.
    fn skewed(&mut self, n: u64) -> u64 {
        let a = self.next() % n;
        let b = self.next() % (a + 1);
        self.next() % (b + 1)
    }
}

#[test]
fn borrowed_keys_allocate_only_for_new_keys() {
    let m: CounterMap<String> = CounterMap::new();
    m.inc("alice");
    m.add("alice", 4);
    m.inc(&String::from("bob"));
    assert_eq!(m.get("alice"), 5);
    assert_eq!(m.get(&String::from("alice")), 5);
    assert_eq!(m.get("bob"), 1);
    assert_eq!(m.get("carol"), 0);
    assert!(m.contains_key("bob"));
    assert!(!m.contains_key("carol"));
    assert_eq!(m.len(), 2);

    let v: CounterMap<Vec<u8>> = CounterMap::new();
    v.inc(&b"bytes"[..]);
    assert_eq!(v.get(&b"bytes"[..]), 1);
}

/// A key whose clones are counted: the map must clone only when inserting.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Tracked(u32);
static CLONES: AtomicUsize = AtomicUsize::new(0);
static DROPS: AtomicUsize = AtomicUsize::new(0);
impl Clone for Tracked {
    fn clone(&self) -> Self {
        CLONES.fetch_add(1, Ordering::Relaxed);
        Tracked(self.0)
    }
}
impl Drop for Tracked {
    fn drop(&mut self) {
        DROPS.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn keys_are_cloned_once_and_dropped_once() {
    // The map is used on its own thread: a thread's entry cache keeps the entries it
    // counted (and their keys) until the thread exits, also past the map.
    thread::spawn(move || {
        let k = Tracked(1);
        let m: CounterMap<Tracked> = CounterMap::new();
        let before = CLONES.load(Ordering::Relaxed);
        for _ in 0..10 {
            m.inc(&k);
        }
        assert_eq!(
            CLONES.load(Ordering::Relaxed) - before,
            1,
            "one clone for a new key"
        );
        m.inc(&Tracked(2));
        let c = m.counter(&Tracked(3));
        c.inc();
        drop(c);
        assert_eq!(m.remove(&Tracked(2)), Some(1));
        m.clear();
        m.inc(&Tracked(4));
    })
    .join()
    .unwrap();
    // Removed entries are freed through the epoch: flush it (other tests' threads may
    // hold pins for a moment, so keep flushing until the drops arrive).
    let clones = CLONES.load(Ordering::Relaxed);
    // Every key the map cloned (1, 2, 3, 4) is dropped once; plus `k` and the
    // temporaries `Tracked(2)` x2, `Tracked(3)`, `Tracked(4)` made there.
    let mut drops = DROPS.load(Ordering::Relaxed);
    for _ in 0..100_000 {
        if drops >= clones + 5 {
            break;
        }
        crossbeam_epoch::pin().flush();
        thread::yield_now();
        drops = DROPS.load(Ordering::Relaxed);
    }
    assert_eq!(clones, 4);
    assert_eq!(
        drops,
        clones + 5,
        "every map-owned key dropped exactly once"
    );
}

#[test]
fn remove_and_reinsert() {
    let m: CounterMap<String> = CounterMap::new();
    m.add("k", 7);
    assert_eq!(m.remove("k"), Some(7));
    assert_eq!(m.remove("k"), None);
    assert_eq!(m.get("k"), 0);
    assert!(m.is_empty());
    m.inc("k");
    assert_eq!(m.get("k"), 1);
    assert_eq!(m.len(), 1);
    // Many rounds of insert/remove through growth and tombstone cleanup.
    for round in 0..scale(50) {
        for i in 0..50u64 {
            m.add(&format!("{round}-{i}"), i);
        }
        for i in 0..50u64 {
            assert_eq!(m.remove(&format!("{round}-{i}")), Some(i));
        }
    }
    assert_eq!(m.len(), 1);
    assert_eq!(m.snapshot(), HashMap::from([("k".to_string(), 1)]));
}

#[test]
fn snapshot_iter_for_each_agree() {
    let m: CounterMap<u64> = CounterMap::with_capacity(10);
    let keys = if cfg!(miri) { 200 } else { 1000u64 };
    for k in 0..keys {
        m.add(&k, k);
    }
    let snap = m.snapshot();
    assert_eq!(snap.len(), keys as usize);
    let it: HashMap<u64, u64> = m.iter().collect();
    assert_eq!(snap, it);
    let mut fe = HashMap::new();
    m.for_each(|k, n| {
        fe.insert(*k, n);
    });
    assert_eq!(snap, fe);
    assert!(snap.iter().all(|(k, n)| k == n));
    let reset = m.snapshot_and_reset();
    assert_eq!(reset, snap);
    assert!(m.snapshot().values().all(|&n| n == 0));
    assert_eq!(m.len(), keys as usize);
}

#[test]
fn conservation_under_four_threads_on_a_skewed_mix() {
    let m: Arc<CounterMap<u64>> = Arc::new(CounterMap::builder().shards(2).build());
    let per = scale(100_000);
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                let mut rng = Rng(0x9E37_79B9 + t);
                let mut mine: HashMap<u64, u64> = HashMap::new();
                for _ in 0..per {
                    let k = rng.skewed(5_000);
                    let n = 1 + rng.next() % 3;
                    m.add(&k, n);
                    *mine.entry(k).or_default() += n;
                }
                mine
            })
        })
        .collect();
    let mut expected: HashMap<u64, u64> = HashMap::new();
    for h in handles {
        for (k, n) in h.join().unwrap() {
            *expected.entry(k).or_default() += n;
        }
    }
    assert_eq!(m.snapshot(), expected);
    assert_eq!(m.len(), expected.len());
}

#[test]
fn snapshot_and_reset_is_exact_against_concurrent_writers() {
    let m: Arc<CounterMap<u64>> = Arc::new(CounterMap::builder().shards(2).build());
    let stop = Arc::new(AtomicBool::new(false));
    let per = scale(200_000);
    let writers: Vec<_> = (0..3u64)
        .map(|t| {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                let mut rng = Rng(77 + t);
                let mut sent: HashMap<u64, u64> = HashMap::new();
                for i in 0..per {
                    let k = if i % 8 == 0 { 0 } else { rng.skewed(300) };
                    m.inc(&k);
                    *sent.entry(k).or_default() += 1;
                }
                sent
            })
        })
        .collect();
    let dumper = {
        let m = Arc::clone(&m);
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut seen: HashMap<u64, u64> = HashMap::new();
            let mut dumps = 0;
            while !stop.load(Ordering::Acquire) {
                for (k, n) in m.snapshot_and_reset() {
                    *seen.entry(k).or_default() += n;
                }
                dumps += 1;
                thread::yield_now();
            }
            (seen, dumps)
        })
    };
    let mut sent: HashMap<u64, u64> = HashMap::new();
    for w in writers {
        for (k, n) in w.join().unwrap() {
            *sent.entry(k).or_default() += n;
        }
    }
    stop.store(true, Ordering::Release);
    let (mut seen, dumps) = dumper.join().unwrap();
    for (k, n) in m.snapshot_and_reset() {
        *seen.entry(k).or_default() += n;
    }
    seen.retain(|_, n| *n != 0);
    assert!(dumps > 0);
    assert_eq!(seen, sent, "every increment reported by exactly one reset");
}

#[test]
fn increments_racing_removes_are_never_lost() {
    let m: Arc<CounterMap<u64>> = Arc::new(CounterMap::builder().shards(1).build());
    let stop = Arc::new(AtomicBool::new(false));
    let per = scale(100_000);
    let writers: Vec<_> = (0..2)
        .map(|_| {
            let m = Arc::clone(&m);
            thread::spawn(move || {
                for i in 0..per {
                    m.inc(&(i % 4));
                }
            })
        })
        .collect();
    let remover = {
        let m = Arc::clone(&m);
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut taken = 0;
            let mut k = 0u64;
            while !stop.load(Ordering::Acquire) {
                taken += m.remove(&(k % 4)).unwrap_or(0);
                k += 1;
            }
            taken
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    stop.store(true, Ordering::Release);
    let taken = remover.join().unwrap();
    let left: u64 = m.snapshot().values().sum();
    assert_eq!(taken + left, 2 * per);
}

#[test]
fn one_hot_key_from_eight_threads() {
    let m: CounterMap<String> = CounterMap::new();
    let per = scale(100_000);
    thread::scope(|s| {
        for t in 0..8 {
            let m = &m;
            s.spawn(move || {
                if t % 2 == 0 {
                    for _ in 0..per {
                        m.inc("hot");
                    }
                } else {
                    let c = m.counter("hot");
                    for _ in 0..per {
                        c.inc();
                    }
                }
            });
        }
    });
    assert_eq!(m.get("hot"), 8 * per);
    assert_eq!(m.len(), 1);
}

#[test]
fn hot_key_reset_is_exact_with_stripes() {
    let m: CounterMap<u64> = CounterMap::new();
    let per = scale(100_000);
    let stop = AtomicBool::new(false);
    let total = thread::scope(|s| {
        let dumper = s.spawn(|| {
            let mut seen = 0;
            while !stop.load(Ordering::Acquire) {
                seen += m.snapshot_and_reset().get(&5).copied().unwrap_or(0);
            }
            seen
        });
        let ws: Vec<_> = (0..4)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..per {
                        m.inc(&5);
                    }
                })
            })
            .collect();
        for w in ws {
            w.join().unwrap();
        }
        stop.store(true, Ordering::Release);
        dumper.join().unwrap()
    });
    assert_eq!(total + m.get(&5), 4 * per);
}

#[test]
fn counter_handle_survives_remove_and_clear() {
    let m: CounterMap<String> = CounterMap::new();
    let c = m.counter("h");
    c.add(3);
    assert_eq!(c.key(), "h");
    assert_eq!(m.remove("h"), Some(3));
    assert_eq!(c.get(), 0);
    c.inc();
    assert_eq!(m.get("h"), 1);
    m.clear();
    let c2 = c.clone();
    c2.add(2);
    assert_eq!(m.get("h"), 2);
    assert_eq!(c.get(), 2);
    drop(c);
    c2.inc();
    assert_eq!(m.get("h"), 3);
}

#[test]
fn key_cap_sends_new_keys_to_the_overflow_bucket() {
    let m: CounterMap<String> = CounterMap::builder()
        .key_cap(3, "(other)".to_string())
        .build();
    for u in ["a", "b", "c", "d", "e", "a"] {
        m.inc(u);
    }
    assert_eq!(m.get("a"), 2);
    assert_eq!(m.get("d"), 0);
    assert_eq!(m.get("(other)"), 2);
    assert_eq!(m.len(), 4, "three keys plus the overflow key");
    let snap = m.snapshot();
    assert_eq!(snap["(other)"], 2);
    assert_eq!(snap.values().sum::<u64>(), 6);
    // A handle on a refused key counts the overflow key.
    let c = m.counter("f");
    c.inc();
    assert_eq!(c.key(), "(other)");
    assert_eq!(m.get("(other)"), 3);
    // Removing a key frees a slot; removing the overflow key frees none.
    assert_eq!(m.remove("(other)"), Some(3));
    m.inc("g");
    assert_eq!(m.get("g"), 0);
    assert_eq!(m.get("(other)"), 1);
    m.remove("b");
    m.inc("g");
    assert_eq!(m.get("g"), 1);
    // The overflow key itself is always admitted.
    m.clear();
    let z: CounterMap<u8> = CounterMap::builder().key_cap(0, 255).build();
    z.inc(&1);
    z.inc(&255);
    assert_eq!(z.get(&255), 2);
    assert_eq!(z.len(), 1);
}

#[test]
fn key_cap_holds_under_concurrent_inserts() {
    let m: CounterMap<u64> = CounterMap::builder()
        .shards(4)
        .key_cap(100, u64::MAX)
        .build();
    let per = scale(20_000).max(40);
    thread::scope(|s| {
        for t in 0..4u64 {
            let m = &m;
            s.spawn(move || {
                for i in 0..per {
                    m.inc(&(t * 1_000_000 + i));
                }
            });
        }
    });
    let keys = 4 * per as usize;
    let expected = if keys > 100 { 101 } else { keys };
    assert_eq!(m.len(), expected, "at most 100 keys plus the overflow key");
    assert_eq!(m.snapshot().values().sum::<u64>(), 4 * per);
}

#[test]
fn counts_wrap_modulo_two_to_the_63() {
    let m: CounterMap<u8> = CounterMap::new();
    m.add(&1, (1 << 63) - 1);
    m.add(&1, 2);
    assert_eq!(m.get(&1), 1);
}

#[test]
#[should_panic(expected = "shard count")]
fn zero_shards_panics() {
    let _ = CounterMap::<u8>::builder().shards(0);
}

#[test]
fn debug_is_opaque() {
    let m: CounterMap<u8> = CounterMap::builder().shards(2).build();
    assert_eq!(format!("{m:?}"), "CounterMap { shards: 2, .. }");
    let c = m.counter(&1);
    assert_eq!(format!("{c:?}"), "Counter { .. }");
    assert!(format!("{:?}", m.iter()).starts_with("Iter"));
    assert!(format!("{:?}", CounterMap::<u8>::builder()).starts_with("Builder"));
}

#[allow(dead_code)]
fn assert_send_sync() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<CounterMap<String>>();
    sync::<CounterMap<String>>();
    send::<Counter<'static, String>>();
    fn not_sync_is_fine<T>() {}
    not_sync_is_fine::<Iter<'static, String>>();
}

#[test]
fn cached_entry_of_removed_key_re_inserts() {
    let m: CounterMap<u64> = CounterMap::new();
    m.inc(&1);
    m.inc(&1); // through this thread's entry cache
    assert_eq!(m.remove(&1), Some(2));
    m.inc(&1); // the cached entry is dead: falls back and re-inserts
    assert_eq!(m.get(&1), 1);
    m.clear();
    m.add(&1, 5);
    assert_eq!(m.snapshot_and_reset()[&1], 5);
}

#[test]
fn dropped_maps_never_take_counts_through_stale_cache_slots() {
    // Maps built and dropped in a row often reuse the same address; the entries a
    // dropped map leaves in this thread's cache are dead and must not take counts.
    // A fixed hasher gives the key the same hash in every map, as an unlucky seed
    // would.
    type Fixed = std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>;
    for round in 0..if cfg!(miri) { 5 } else { 200 } {
        let m: CounterMap<u64, Fixed> = CounterMap::builder().hasher(Fixed::default()).build();
        m.inc(&7);
        m.inc(&7);
        assert_eq!(m.get(&7), 2, "round {round}");
        drop(m);
        let s: CounterMap<String> = CounterMap::new();
        s.inc("x");
        s.inc("x");
        assert_eq!(s.get("x"), 2);
    }
}

/// A key whose comparison counts into another map: user code running inside a
/// lookup may re-enter the maps (the nested call bypasses the busy cache).
#[derive(Clone, Hash, PartialEq, Eq, Debug)]
struct Plain(u64);

#[derive(Clone, Debug)]
struct Reentrant(u64);

impl std::hash::Hash for Reentrant {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

static NESTED: std::sync::OnceLock<CounterMap<Plain>> = std::sync::OnceLock::new();

impl PartialEq for Reentrant {
    fn eq(&self, other: &Self) -> bool {
        NESTED.get_or_init(CounterMap::new).inc(&Plain(self.0));
        self.0 == other.0
    }
}
impl Eq for Reentrant {}

#[test]
fn user_code_may_reenter_the_map_during_a_lookup() {
    let m: CounterMap<Reentrant> = CounterMap::new();
    for _ in 0..10 {
        m.inc(&Reentrant(1));
        m.inc(&Reentrant(2));
    }
    assert_eq!(m.get(&Reentrant(1)), 10);
    assert_eq!(m.get(&Reentrant(2)), 10);
    let nested = NESTED.get().expect("eq ran");
    assert!(nested.get(&Plain(1)) > 0);
}

/// A hasher that gives every key the same hash.
#[derive(Clone, Default)]
struct ConstHasher;
impl std::hash::Hasher for ConstHasher {
    fn finish(&self) -> u64 {
        0x5EED_0000_0000_0042
    }
    fn write(&mut self, _: &[u8]) {}
}
type Const = std::hash::BuildHasherDefault<ConstHasher>;

#[test]
fn stale_cache_entries_of_another_key_type_are_never_read_as_it() {
    // A dropped map's entries stay in this thread's cache; a map of another key type
    // built at the same address, whose key has the same hash, finds them there. They
    // are dead, and must be recognised as such before their key is read (as a
    // `String`, a `u64` key would be garbage).
    for round in 0..if cfg!(miri) { 8 } else { 200 } {
        let m: CounterMap<u64, Const> = CounterMap::builder().hasher(Const::default()).build();
        m.inc(&7);
        m.inc(&7);
        assert_eq!(m.get(&7), 2, "round {round}");
        drop(m);
        let s: CounterMap<String, Const> = CounterMap::builder().hasher(Const::default()).build();
        s.inc("x");
        s.inc("x");
        assert_eq!(s.get("x"), 2, "round {round}");
    }
}

/// A key that counts its drops in counters of its own (tests run in parallel).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Counted(u32);
static COUNTED_CLONES: AtomicUsize = AtomicUsize::new(0);
static COUNTED_DROPS: AtomicUsize = AtomicUsize::new(0);
impl Clone for Counted {
    fn clone(&self) -> Self {
        COUNTED_CLONES.fetch_add(1, Ordering::Relaxed);
        Counted(self.0)
    }
}
impl Drop for Counted {
    fn drop(&mut self) {
        COUNTED_DROPS.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn a_growing_thread_cache_drops_every_key_once() {
    // Enough keys, each counted twice in a row, that the thread's cache fills, evicts
    // and grows to its largest size; the keys it holds are released when the thread
    // exits, after the map is gone. Every clone the map made is dropped exactly once.
    let keys = if cfg!(miri) { 200 } else { 20_000 };
    let probes = thread::spawn(move || {
        let m: CounterMap<Counted> = CounterMap::new();
        for k in 0..keys {
            let key = Counted(k);
            m.inc(&key);
            m.inc(&key);
        }
        // Half of the keys again: many are cached (the rest re-resolve).
        for k in (0..keys).step_by(2) {
            m.inc(&Counted(k));
        }
        for k in (0..keys).step_by(3) {
            assert_eq!(m.remove(&Counted(k)), Some(2 + u64::from(k % 2 == 0)));
        }
        let total: u64 = m.snapshot().values().sum();
        let removed: u64 = (0..keys)
            .step_by(3)
            .map(|k| 2 + u64::from(k % 2 == 0))
            .sum();
        assert_eq!(
            total + removed,
            2 * u64::from(keys) + u64::from(keys.div_ceil(2))
        );
        // Made here and dropped here, not by cloning: one key per key on the first
        // pass, one per even key, one per removed key.
        keys + keys.div_ceil(2) + keys.div_ceil(3)
    })
    .join()
    .unwrap();
    let clones = COUNTED_CLONES.load(Ordering::Relaxed);
    let mut drops = COUNTED_DROPS.load(Ordering::Relaxed);
    // Keys held by the epoch go once every pinned thread has moved on. Another test
    // may keep its thread pinned for a while (a panic's hook, which can capture a
    // backtrace, runs before unwinding drops the guard), so wait by the clock.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if drops >= clones + probes as usize {
            break;
        }
        crossbeam_epoch::pin().flush();
        thread::yield_now();
        drops = COUNTED_DROPS.load(Ordering::Relaxed);
    }
    assert_eq!(
        drops,
        clones + probes as usize,
        "every key dropped exactly once"
    );
}

/// A key whose `Clone` panics (the map clones a key once, to insert it) leaves the
/// map as it was: the key is not inserted and its key-cap slot is given back.
#[test]
fn a_panicking_key_clone_gives_its_cap_slot_back() {
    #[derive(PartialEq, Eq, Hash, Debug)]
    struct K(u32);
    impl Clone for K {
        fn clone(&self) -> Self {
            assert_ne!(self.0, 13, "clone of 13");
            K(self.0)
        }
    }
    let m: CounterMap<K> = CounterMap::builder().key_cap(1, K(0)).build();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.inc(&K(13))));
    assert!(r.is_err());
    assert_eq!(m.len(), 0);
    m.inc(&K(1)); // the one slot under the cap is still free
    assert_eq!((m.get(&K(1)), m.get(&K(0))), (1, 0));
}

/// A key whose `Hash` or `Clone` counts through a `Counter` handle held in a
/// thread-local, re-entering the handle while the handle's own call still borrows the
/// key. The handle's entry was removed, and the handle holds its last reference: the
/// re-entrant `inc` re-inserts the key and gives that reference up. The outer call
/// must keep the entry, key included, alive until it is done with it (it takes a
/// reference of its own); before, the key was freed under it.
mod reentrant_key {
    use atomkit::counter_map::{Counter, CounterMap};
    use std::cell::{Cell, RefCell};
    use std::hash::{Hash, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;

    static SERIAL: AtomicU64 = AtomicU64::new(1);
    /// Serial numbers of the keys dropped so far.
    static DROPPED: Mutex<Vec<u64>> = Mutex::new(Vec::new());

    #[derive(Debug)]
    struct Key {
        id: u64,
        serial: u64,
        payload: Box<u64>,
    }

    impl Key {
        fn new(id: u64) -> Self {
            Key {
                id,
                serial: SERIAL.fetch_add(1, Ordering::Relaxed),
                payload: Box::new(id),
            }
        }
    }

    thread_local! {
        static REENTER: Cell<bool> = const { Cell::new(false) };
        static HANDLE: RefCell<Option<Counter<'static, Key>>> = const { RefCell::new(None) };
        static FREED_UNDER_US: Cell<bool> = const { Cell::new(false) };
    }

    /// Counts through the thread's handle, then records whether the key `me` (the
    /// one the caller is still reading) has been dropped meanwhile.
    fn reenter(me: u64) {
        HANDLE.with(|c| c.borrow().as_ref().unwrap().inc());
        let freed = DROPPED.lock().unwrap().contains(&me);
        FREED_UNDER_US.with(|f| f.set(freed));
    }

    impl Hash for Key {
        fn hash<H: Hasher>(&self, h: &mut H) {
            self.id.hash(h);
            if REENTER.with(|r| r.replace(false)) {
                reenter(self.serial);
            }
            // Goes on reading `self` after the re-entry.
            (*self.payload).hash(h);
        }
    }

    impl PartialEq for Key {
        fn eq(&self, o: &Self) -> bool {
            self.id == o.id
        }
    }
    impl Eq for Key {}

    impl Clone for Key {
        fn clone(&self) -> Self {
            if REENTER.with(|r| r.replace(false)) {
                reenter(self.serial);
            }
            Key {
                id: self.id,
                serial: SERIAL.fetch_add(1, Ordering::Relaxed),
                payload: Box::new(*self.payload),
            }
        }
    }

    impl Drop for Key {
        fn drop(&mut self) {
            DROPPED.lock().unwrap().push(self.serial);
        }
    }

    /// A map whose key 1 was counted through this thread's handle and then removed,
    /// with the handle holding the entry's last reference.
    fn setup() -> &'static CounterMap<Key> {
        let m: &'static CounterMap<Key> = Box::leak(Box::new(CounterMap::new()));
        let c = m.counter(&Key::new(1));
        c.inc();
        HANDLE.with(|h| *h.borrow_mut() = Some(c));
        assert_eq!(m.remove(&Key::new(1)), Some(1));
        // Let the epoch release the tables' reference.
        for _ in 0..64 {
            crossbeam_epoch::pin().flush();
        }
        m
    }

    #[test]
    fn counter_get_keeps_the_key_it_hashes_alive() {
        let m = setup();
        REENTER.with(|r| r.set(true));
        // The entry is dead, so `get` looks the key up, hashing it; the hash counts
        // through the handle, which re-inserts the key and re-points the handle.
        let n = HANDLE.with(|h| h.borrow().as_ref().unwrap().get());
        assert!(
            !FREED_UNDER_US.with(Cell::get),
            "Counter::get: the key being hashed was dropped"
        );
        assert!(!REENTER.with(Cell::get), "the re-entry did not happen");
        assert!(n <= 1);
        assert_eq!(m.get(&Key::new(1)), 1);
        HANDLE.with(|h| h.borrow_mut().take());
    }

    #[test]
    fn counter_key_keeps_the_key_it_clones_alive() {
        let m = setup();
        REENTER.with(|r| r.set(true));
        let k = HANDLE.with(|h| h.borrow().as_ref().unwrap().key());
        assert!(
            !FREED_UNDER_US.with(Cell::get),
            "Counter::key: the key being cloned was dropped"
        );
        assert!(!REENTER.with(Cell::get), "the re-entry did not happen");
        assert_eq!(k.id, 1);
        assert_eq!(m.get(&Key::new(1)), 1);
        HANDLE.with(|h| h.borrow_mut().take());
    }
}

/// Stress: many short histories of 2-4 threads doing small random operations on 1-3
/// keys (increments, removals, handles made and counted through, gets; with and
/// without a key cap), in two phases with a reset or a snapshot between them and
/// exact reads at the end, each checked for linearizability against a sequential
/// map (`support/counter_model.rs` says which operations the doc makes
/// linearizable and how the weakly consistent `get` is checked). The threads of a
/// phase start together so that their operations overlap.
#[test]
fn lincheck_increments_removes_and_handles() {
    lincheck_rounds::<u64>(); // keys in the slots
    lincheck_rounds::<u128>(); // keys in entries
}

fn lincheck_rounds<K: counter_model::ModelKey>() {
    use counter_model::{apply, plan, Op, Rng, HANDLES, SHAPES};
    let mut overlapped = 0;
    let mut gets = 0;
    // Under Miri, one round of each shape but the four-thread one, whose checks
    // dominate its run time there (shuttle covers it).
    let rounds = if cfg!(miri) { SHAPES.len() as u64 } else { 400 };
    for round in 0..rounds {
        let shape = SHAPES[round as usize % SHAPES.len()];
        if cfg!(miri) && shape.threads > 3 {
            continue;
        }
        let mut rng = Rng::new(round);
        let map = shape.map::<K, _>(DefaultHashBuilder::default());
        let rec = lincheck::Recorder::default();
        let alone = shape.threads;
        for phase in 0..2 {
            if phase > 0 {
                for op in shape.between_phases(&mut rng) {
                    rec.record(alone, op.clone(), || apply(&map, &mut [], &op));
                }
            }
            let plans: Vec<Vec<Op>> = (0..shape.threads)
                .map(|t| plan(&mut rng, t, 4, shape.keys, &mut [false; 4]))
                .collect();
            let start = std::sync::Barrier::new(shape.threads);
            thread::scope(|s| {
                for (t, ops) in plans.iter().enumerate() {
                    let (map, rec, start) = (&map, &rec, &start);
                    s.spawn(move || {
                        let mut handles: Vec<Option<Counter<'_, K>>> =
                            (0..HANDLES).map(|_| None).collect();
                        start.wait();
                        for op in ops {
                            rec.record(t, op.clone(), || apply(map, &mut handles, op));
                        }
                    });
                }
            });
        }
        for op in shape.tail() {
            rec.record(alone, op.clone(), || apply(&map, &mut [], &op));
        }
        let history = rec.history();
        if lincheck::overlapping(&history) {
            overlapped += 1;
        }
        match shape.check(&history) {
            Ok(kept) => gets += kept,
            Err(e) => panic!("round {round} ({shape:?}): {e}"),
        }
    }
    // Sequential histories would make the check vacuous. (Miri's few rounds on its
    // own scheduler are not held to it, nor a single CPU, where a thread is rarely
    // preempted inside an operation of a microsecond: the shuttle models interleave
    // them there.)
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        cfg!(miri) || cpus == 1 || overlapped > 0,
        "no round had overlapping operations"
    );
    assert!(gets > 0, "every get raced a removal");
}

/// The key cap decides a new key's fate before its count lands (see the module doc's
/// `# Consistency`): two histories, made step by step with a key that parks its
/// thread inside the map, that no order of the operations explains if the cap
/// decided at the count, and that the model (which splits the decision from the
/// count) accepts. The checker found both in the shuttle histories.
mod key_cap_routing {
    use super::counter_model::{self, CounterModel, Op, Ret};
    use super::lincheck::{self, Recorder};
    use atomkit::counter_map::CounterMap;
    use std::cell::RefCell;
    use std::hash::{BuildHasherDefault, Hash, Hasher};
    use std::sync::mpsc::{channel, Receiver, Sender};
    use std::thread;

    /// Where a key parks its thread.
    #[derive(Clone, Copy, PartialEq)]
    enum At {
        /// In the key's `Hash`.
        Hash,
        /// In the key's `Clone` (the map clones a new key once, to insert it).
        Clone,
    }

    struct Park {
        id: u64,
        at: At,
        parked: Sender<()>,
        resume: Receiver<()>,
    }

    thread_local! {
        static PARK: RefCell<Option<Park>> = const { RefCell::new(None) };
    }

    /// Parks this thread once, if it was asked to at `at` of key `id`.
    fn maybe_park(id: u64, at: At) {
        let park = PARK.with(|p| {
            let mut p = p.borrow_mut();
            if p.as_ref().is_some_and(|k| k.id == id && k.at == at) {
                p.take()
            } else {
                None
            }
        });
        if let Some(k) = park {
            k.parked.send(()).unwrap();
            k.resume.recv().unwrap();
        }
    }

    #[derive(Debug, PartialEq, Eq)]
    struct K(u64);

    impl Hash for K {
        fn hash<H: Hasher>(&self, h: &mut H) {
            maybe_park(self.0, At::Hash);
            h.write_u64(self.0);
        }
    }

    impl Clone for K {
        fn clone(&self) -> Self {
            maybe_park(self.0, At::Clone);
            K(self.0)
        }
    }

    /// Puts key `k` in shard `k % shards`, so that the keys here never share a
    /// shard (and its lock).
    #[derive(Default)]
    struct ShardById(u64);

    impl Hasher for ShardById {
        fn finish(&self) -> u64 {
            self.0 << 32 | self.0
        }
        fn write(&mut self, _: &[u8]) {
            unreachable!("keys hash one u64");
        }
        fn write_u64(&mut self, v: u64) {
            self.0 = v;
        }
    }

    type Map = CounterMap<K, BuildHasherDefault<ShardById>>;

    /// A map of four shards with a cap of one key, `K(0)` taking the rest.
    fn map() -> Map {
        CounterMap::builder()
            .shards(4)
            .hasher(BuildHasherDefault::default())
            .key_cap(1, K(counter_model::OVERFLOW))
            .build()
    }

    /// Runs `op` (recorded as `rec_op`) on a thread that parks at `at` of key `id`,
    /// runs `meanwhile` while it is parked, then lets it finish.
    fn while_parked(
        m: &Map,
        rec: &Recorder<Op, Ret>,
        (id, at): (u64, At),
        (rec_op, op): (Op, impl FnOnce(&Map) + Send),
        meanwhile: impl FnOnce(),
    ) {
        let (parked_tx, parked) = channel();
        let (resume, resume_rx) = channel();
        thread::scope(|s| {
            s.spawn(move || {
                PARK.with(|p| {
                    *p.borrow_mut() = Some(Park {
                        id,
                        at,
                        parked: parked_tx,
                        resume: resume_rx,
                    })
                });
                rec.record(0, rec_op, || {
                    op(m);
                    Ret::Unit
                });
            });
            parked.recv().unwrap();
            meanwhile();
            resume.send(()).unwrap();
        });
    }

    /// Records `op` of the main thread, which returned `ret`.
    fn main(rec: &Recorder<Op, Ret>, op: Op, ret: Ret) {
        rec.record(1, op, || ret);
    }

    /// Linearizable against the model, but not if the cap decided at the count.
    fn holds_only_with_the_split(history: &[lincheck::Event<Op, Ret>]) {
        if let Err(e) = counter_model::check(Some(1), history) {
            panic!("{e}");
        }
        let (at_the_count, _) = counter_model::weaken_gets(history);
        assert!(
            lincheck::check(CounterModel::new(Some(1)), &at_the_count).is_err(),
            "linearizable with the cap deciding at the count after all"
        );
    }

    /// An increment of a new key is refused while the cap is full, and parked before
    /// it counts on the overflow key. Meanwhile the key holding the slot is removed
    /// and the overflow key read: the increment then lands on the overflow key, not
    /// on its free slot, and after a read that missed it.
    #[test]
    fn a_refused_increment_lands_on_the_overflow_key_after_a_slot_frees() {
        let m = map();
        let rec = Recorder::default();
        m.inc(&K(1));
        main(&rec, Op::Inc(1), Ret::Unit);
        // Refused under the lock of `K(3)`'s shard, it parks hashing the overflow key.
        while_parked(
            &m,
            &rec,
            (0, At::Hash),
            (Op::Inc(3), |m: &Map| m.inc(&K(3))),
            || {
                let r = m.remove(&K(1));
                main(&rec, Op::Remove(1), Ret::Removed(r));
                let n = m.get(&K(0));
                main(&rec, Op::Get(0), Ret::Count(n));
                assert_eq!((r, n), (Some(1), 0));
            },
        );
        let (overflow, refused) = (m.get(&K(0)), m.get(&K(3)));
        main(&rec, Op::Get(0), Ret::Count(overflow));
        main(&rec, Op::Get(3), Ret::Count(refused));
        assert_eq!(
            (overflow, refused),
            (1, 0),
            "the count went to the overflow key"
        );
        holds_only_with_the_split(&rec.history());
        m.inc(&K(2));
        assert_eq!(m.get(&K(2)), 1, "the slot was free");
    }

    /// An increment of a new key takes the cap's slot and parks before its key is
    /// listed. Meanwhile another new key is refused for that slot, and a read of the
    /// first key finds nothing: the slot is held before the count shows.
    #[test]
    fn a_new_key_holds_its_slot_before_its_count_shows() {
        let m = map();
        let rec = Recorder::default();
        // Its slot reserved under the lock of `K(1)`'s shard, it parks cloning the key.
        while_parked(
            &m,
            &rec,
            (1, At::Clone),
            (Op::Inc(1), |m: &Map| m.inc(&K(1))),
            || {
                m.inc(&K(2));
                main(&rec, Op::Inc(2), Ret::Unit);
                let n = m.get(&K(1));
                main(&rec, Op::Get(1), Ret::Count(n));
                assert_eq!(n, 0);
            },
        );
        for k in [0, 1, 2] {
            let n = m.get(&K(k));
            main(&rec, Op::Get(k), Ret::Count(n));
        }
        assert_eq!(
            (m.get(&K(0)), m.get(&K(1)), m.get(&K(2))),
            (1, 1, 0),
            "K(2) was refused for the slot K(1) took"
        );
        holds_only_with_the_split(&rec.history());
    }
}

/// A key's `Drop` may count in its own map: the module promises that it never runs
/// under a shard lock. But code the map runs under a shard's lock (a key's `Clone`,
/// on insert) can give up the last reference on another entry of the same shard: by
/// counting in other maps, whose entries fill this thread's entry cache and evict
/// the entry, or by flushing the epoch, which runs the deferred release of a removed
/// entry. That entry's key was dropped right there, under the lock, and the count in
/// its `Drop` waited for the lock its own thread held.
mod reentrant_drop {
    use super::Const;
    use atomkit::counter_map::CounterMap;
    use std::cell::Cell;
    use std::hash::{Hash, Hasher};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    /// Every key has the same hash: one shard, one set of the thread's entry cache.
    type Map = CounterMap<Key, Const>;

    /// What the `Drop` of a key that has one does while it is armed.
    struct OnDrop {
        map: &'static Map,
        /// The key the `Drop` counts in `map`.
        counts: u64,
        armed: AtomicBool,
        /// Armed drops on the thread that armed them.
        here: AtomicUsize,
        /// Armed drops that ran inside the `Clone` of the key being inserted.
        under_lock: AtomicUsize,
        thread: std::thread::ThreadId,
    }

    struct Key {
        id: u64,
        on_drop: Option<&'static OnDrop>,
        /// Run by `Clone`, which the map calls under the shard lock on insert.
        on_clone: Option<fn()>,
    }

    impl Key {
        fn plain(id: u64) -> Self {
            Key {
                id,
                on_drop: None,
                on_clone: None,
            }
        }
    }

    thread_local! {
        static IN_CLONE: Cell<bool> = const { Cell::new(false) };
    }

    impl Hash for Key {
        fn hash<H: Hasher>(&self, h: &mut H) {
            self.id.hash(h);
        }
    }
    impl PartialEq for Key {
        fn eq(&self, o: &Self) -> bool {
            self.id == o.id
        }
    }
    impl Eq for Key {}

    impl Clone for Key {
        fn clone(&self) -> Self {
            if let Some(f) = self.on_clone {
                IN_CLONE.with(|c| c.set(true));
                f();
                IN_CLONE.with(|c| c.set(false));
            }
            Key {
                id: self.id,
                on_drop: self.on_drop,
                on_clone: self.on_clone,
            }
        }
    }

    impl Drop for Key {
        fn drop(&mut self) {
            let Some(d) = self.on_drop else { return };
            if !d.armed.load(SeqCst) || std::thread::current().id() != d.thread {
                return;
            }
            if IN_CLONE.with(Cell::get) {
                d.under_lock.fetch_add(1, SeqCst);
            }
            // Under the lock of this key's shard (the only one), this never returned.
            d.map.inc(&Key::plain(d.counts));
            d.here.fetch_add(1, SeqCst);
        }
    }

    fn const_map<K: 'static>() -> CounterMap<K, Const> {
        CounterMap::builder().hasher(Const::default()).build()
    }

    fn on_drop(map: &'static Map, counts: u64) -> &'static OnDrop {
        Box::leak(Box::new(OnDrop {
            map,
            counts,
            armed: AtomicBool::new(false),
            here: AtomicUsize::new(0),
            under_lock: AtomicUsize::new(0),
            thread: std::thread::current().id(),
        }))
    }

    /// Runs `f` on a thread of its own (with an empty entry cache) and fails the test
    /// if it has not returned after a while: a thread that waits for a lock it holds
    /// never does.
    fn on_fresh_thread<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || tx.send(f()).unwrap());
        rx.recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!("{what}: deadlock (a key's drop ran under its shard's lock)")
            })
    }

    /// Counts in two other maps, so that the entry cache set that every key of these
    /// maps shares (they all have the same hash) evicts this thread's other way.
    fn count_elsewhere() {
        type Other = CounterMap<u64, Const>;
        static OTHERS: std::sync::OnceLock<(Other, Other)> = std::sync::OnceLock::new();
        let (b, c) = OTHERS.get_or_init(|| (const_map(), const_map()));
        b.inc(&1); // fills the empty way
        c.inc(&1); // a first miss: not admitted
        c.inc(&1); // a second miss: admitted, evicts the way not used last
    }

    #[test]
    fn a_key_dropped_by_a_cache_eviction_under_the_lock_may_count_in_its_map() {
        let (n1, n2, n3, d) = on_fresh_thread("cache eviction", || {
            let m: &'static Map = Box::leak(Box::new(const_map()));
            let d = on_drop(m, 3);
            let x = || Key {
                on_drop: Some(d),
                ..Key::plain(1)
            };
            m.inc(&x()); // this thread's first count: cached at once
            assert_eq!(m.remove(&x()), Some(1));
            // Wait until the epoch has released the tables' reference (the deferred
            // flag goes after it): the cache way then holds the entry's last one.
            let released = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&released);
            crossbeam_epoch::pin().defer(move || flag.store(true, SeqCst));
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while !released.load(SeqCst) && std::time::Instant::now() < deadline {
                crossbeam_epoch::pin().flush();
                std::thread::yield_now();
            }
            assert!(released.load(SeqCst), "the epoch never moved on");
            d.armed.store(true, SeqCst);
            // Key 1's cached entry is dead: key 2 is inserted under the lock, and its
            // clone counts elsewhere, which evicts key 1's way.
            m.inc(&Key {
                on_clone: Some(count_elsewhere),
                ..Key::plain(2)
            });
            d.armed.store(false, SeqCst);
            (
                m.get(&Key::plain(1)),
                m.get(&Key::plain(2)),
                m.get(&Key::plain(3)),
                d,
            )
        });
        assert_eq!(d.here.load(SeqCst), 1, "key 1 was dropped by the eviction");
        assert_eq!(
            d.under_lock.load(SeqCst),
            0,
            "key 1 was dropped under the lock"
        );
        assert_eq!((n1, n2, n3), (0, 1, 1));
    }

    /// Flushes the epoch, which may run deferred releases (of any map) right here.
    fn flush() {
        for _ in 0..8 {
            crossbeam_epoch::pin().flush();
        }
    }

    #[test]
    fn a_key_dropped_by_an_epoch_flush_under_the_lock_may_count_in_its_map() {
        // The flush in the clone runs the release of the removed key only if the
        // epoch moved on once between the removal and the insert's pin, and not
        // twice: other tests' pins may get in the way, so try a few times.
        let hits = on_fresh_thread("epoch flush", || {
            let m: &'static Map = Box::leak(Box::new(const_map()));
            let mut hits = 0;
            for round in 0..if cfg!(miri) { 3 } else { 20 } {
                let d = on_drop(m, 3_000_000 + round);
                let x = move || Key {
                    on_drop: Some(d),
                    ..Key::plain(1_000_000 + round)
                };
                // Counted on a thread that has exited (its entry cache released its
                // reference) by the time `join` returns: the tables hold the only one.
                let key = x();
                std::thread::scope(|s| s.spawn(|| m.inc(&key)).join().unwrap());
                assert_eq!(m.remove(&x()), Some(1));
                crossbeam_epoch::pin().flush(); // the removal's release goes global
                d.armed.store(true, SeqCst);
                m.inc(&Key {
                    on_clone: Some(flush),
                    ..Key::plain(2_000_000 + round)
                });
                d.armed.store(false, SeqCst);
                assert_eq!(
                    d.under_lock.load(SeqCst),
                    0,
                    "a key was dropped under the lock"
                );
                if d.here.load(SeqCst) == 1 {
                    assert_eq!(m.get(&Key::plain(3_000_000 + round)), 1);
                    hits += 1;
                }
            }
            hits
        });
        assert!(hits > 0, "the flush never released the removed key");
    }
}
