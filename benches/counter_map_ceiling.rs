//! How fast could a concurrent counter map count the h2h Zipf workload at all? This
//! bench runs `CounterMap` and dashmap beside idealised tables that count the same key
//! stream with none of the duties a real map has (no growth, no removal, no
//! reclamation, no striping of hot keys, no key type but `u64`), so that the gap
//! between the map and its peer can be split into what the table layout costs and what
//! the code around it costs.
//!
//! ```text
//! cargo bench --bench counter_map_ceiling -- [--keys N] [--threads 1,2,4] [--rounds N] [--quick]
//!     [--only NAME,NAME]
//! ```
//!
//! The workload is h2h's (`benches/h2h/counter_map.rs`): 2,000,000 increments (200,000
//! with `--quick`) drawn Zipf(1.1) over `1..=N` keys (100,000 by default), split evenly
//! over the threads, into a fresh map sized for `N` keys; keys are inserted as first
//! seen. Contenders run round-robin (the starting one rotates) after two warm-up
//! rounds; `--only` keeps the named contenders (and dashmap, the reference). The report gives, per contender, the median wall and CPU time per increment
//! (CPU time summed over the counting threads, Linux only) and the median over rounds
//! of dashmap's time divided by the contender's (above 1: faster than dashmap).
//!
//! Contenders:
//! - `atomkit`, `dashmap`: as in h2h.
//! - `ideal inline`: open addressing over 16-byte slots holding the key and its count;
//!   a new key is claimed by CAS on the key word, a count is one `fetch_add`.
//! - `ideal inline+pin`: `ideal inline` with an epoch pin per increment, as a table
//!   that frees its old slot arrays after growth while readers run would need.
//! - `ideal split`: the same with the keys and the counts in two arrays.
//! - `ideal ptr`: slots of pointers to 16-byte heap nodes (key, count): one dependent
//!   load more than `ideal inline`, nodes never freed before the table.
//! - `ideal ptr+pin`: `ideal ptr` with a `crossbeam_epoch::pin()` around each increment,
//!   as a map that frees nodes while readers run would need.
//! - `ideal fat ptr`, `ideal fat ptr+pin`: the same with 56-byte nodes laid out like
//!   `CounterMap`'s entries (hash, count and key where the entry has them), so that
//!   the difference from `ideal ptr` is what the entry's size and layout cost, and the
//!   difference from atomkit is what its code path costs.
//! - `grow proto`, `grow proto from 1k`: not a ceiling but a prototype of the core
//!   proposed in `docs/design/counter_map_core.md` (key and count in the slot, adds by
//!   CAS, a pin per increment, growth that freezes slots and moves their counts while
//!   adders go on in the next table), sized for every key or starting at 1,024 slots.
//!   `u64` keys only, and no removal, reset or striping: it measures what the proposed
//!   counting path and growth cost, not a finished map.
//! - `… serial` (x86-64 only): the contender with an `lfence` after each increment, so
//!   that the processor cannot start the next increment's loads before this one is
//!   done. The difference from the plain row is what overlapping consecutive
//!   increments (memory-level parallelism) was worth to that contender.

#![allow(missing_docs, unreachable_pub, dead_code)]

#[path = "h2h/harness.rs"]
mod harness;
#[path = "h2h/counter_map.rs"]
mod workloads;

use atomkit::counter_map::CounterMap;
use dashmap::DashMap;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};
use workloads::{zipf_keys, Counters};

type Hasher = foldhash::quality::SeedableRandomState;

/// Slots for `keys` keys at a load of at most one half, as `CounterMap` sizes them.
fn slots_for(keys: usize) -> usize {
    (keys * 2).next_power_of_two()
}

/// Probes from `k`'s home slot until `claim(i)` settles the key there; `claim` says
/// whether slot `i` now holds `k` (found, or claimed from empty).
#[inline]
fn probe(hasher: &Hasher, mask: usize, k: u64, mut claim: impl FnMut(usize) -> bool) -> usize {
    let mut i = hasher.hash_one(k) as usize & mask;
    while !claim(i) {
        i = (i + 1) & mask;
    }
    i
}

/// Whether key word `w` holds `k` after this call: it did, or it was empty (0) and
/// this call claimed it, or another thread claimed it for `k` meanwhile.
#[inline]
fn claim_key(w: &AtomicU64, k: u64) -> bool {
    // Ordering: Relaxed throughout: the key word is the only data a slot publishes
    // (its count is an atomic of its own), so no other memory needs ordering.
    match w.load(Ordering::Relaxed) {
        cur if cur == k => true,
        0 => match w.compare_exchange(0, k, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => true,
            Err(other) => other == k,
        },
        _ => false,
    }
}

/// `ideal inline` (`PIN = false`) and `ideal inline+pin` (`PIN = true`): 16-byte
/// slots (key, count); key 0 marks an empty slot.
struct IdealInline<const PIN: bool = false> {
    slots: Box<[[AtomicU64; 2]]>,
    mask: usize,
    hasher: Hasher,
}

impl<const PIN: bool> Counters for IdealInline<PIN> {
    const NAME: &'static str = if PIN {
        "ideal inline+pin"
    } else {
        "ideal inline"
    };
    fn with_keys(keys: usize) -> Self {
        let n = slots_for(keys);
        IdealInline {
            slots: (0..n)
                .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
                .collect(),
            mask: n - 1,
            hasher: Hasher::random(),
        }
    }
    #[inline]
    fn inc(&self, k: u64) {
        let _guard = PIN.then(crossbeam_epoch::pin);
        let i = probe(&self.hasher, self.mask, k, |i| {
            claim_key(&self.slots[i][0], k)
        });
        // Ordering: Relaxed: a count publishes nothing.
        self.slots[i][1].fetch_add(1, Ordering::Relaxed);
    }
    fn get(&self, k: u64) -> u64 {
        self.snapshot().get(&k).copied().unwrap_or(0)
    }
    fn snapshot(&self) -> HashMap<u64, u64> {
        // Ordering: Relaxed: read after the counting threads were joined.
        let word = |w: &AtomicU64| w.load(Ordering::Relaxed);
        self.slots
            .iter()
            .filter(|s| word(&s[0]) != 0)
            .map(|s| (word(&s[0]), word(&s[1])))
            .collect()
    }
}

/// `ideal split`: a key array and a count array.
struct IdealSplit {
    keys: Box<[AtomicU64]>,
    counts: Box<[AtomicU64]>,
    mask: usize,
    hasher: Hasher,
}

impl Counters for IdealSplit {
    const NAME: &'static str = "ideal split";
    fn with_keys(keys: usize) -> Self {
        let n = slots_for(keys);
        IdealSplit {
            keys: (0..n).map(|_| AtomicU64::new(0)).collect(),
            counts: (0..n).map(|_| AtomicU64::new(0)).collect(),
            mask: n - 1,
            hasher: Hasher::random(),
        }
    }
    #[inline]
    fn inc(&self, k: u64) {
        let i = probe(&self.hasher, self.mask, k, |i| claim_key(&self.keys[i], k));
        // Ordering: Relaxed: a count publishes nothing.
        self.counts[i].fetch_add(1, Ordering::Relaxed);
    }
    fn get(&self, k: u64) -> u64 {
        self.snapshot().get(&k).copied().unwrap_or(0)
    }
    fn snapshot(&self) -> HashMap<u64, u64> {
        // Ordering: Relaxed: read after the counting threads were joined.
        let word = |w: &AtomicU64| w.load(Ordering::Relaxed);
        self.keys
            .iter()
            .zip(self.counts.iter())
            .filter(|(k, _)| word(k) != 0)
            .map(|(k, c)| (word(k), word(c)))
            .collect()
    }
}

/// A heap node of `ideal ptr`: a key and its count.
trait PtrNode: Send + Sync + 'static {
    fn new(key: u64, hash: u64) -> Self;
    /// Whether the node holds `key`, whose hash is `hash`.
    fn holds(&self, key: u64, hash: u64) -> bool;
    fn key(&self) -> u64;
    fn count(&self) -> &AtomicU64;
}

/// A 16-byte node: the key and the count.
struct Node {
    key: u64,
    count: AtomicU64,
}

impl PtrNode for Node {
    fn new(key: u64, _hash: u64) -> Self {
        Node {
            key,
            count: AtomicU64::new(0),
        }
    }
    #[inline]
    fn holds(&self, key: u64, _hash: u64) -> bool {
        self.key == key
    }
    fn key(&self) -> u64 {
        self.key
    }
    #[inline]
    fn count(&self) -> &AtomicU64 {
        &self.count
    }
}

/// A 56-byte node laid out as `CounterMap`'s entry for a `u64` key is (as compiled for
/// x86-64 when this was written): the hash at offset 8, the count word at 24, the key
/// at 48, the other words unused; a probe compares the hash, then the key, as the
/// map's does. With the allocator's 16-byte alignment such a node spans two cache lines
/// at three offsets out of four.
#[repr(C)]
struct FatNode {
    _release: usize,
    hash: u64,
    _refs: usize,
    count: AtomicU64,
    _stripes: usize,
    _reserved: usize,
    key: u64,
}

impl PtrNode for FatNode {
    fn new(key: u64, hash: u64) -> Self {
        FatNode {
            _release: 0,
            hash,
            _refs: 1,
            count: AtomicU64::new(0),
            _stripes: 0,
            _reserved: 0,
            key,
        }
    }
    #[inline]
    fn holds(&self, key: u64, hash: u64) -> bool {
        self.hash == hash && self.key == key
    }
    fn key(&self) -> u64 {
        self.key
    }
    #[inline]
    fn count(&self) -> &AtomicU64 {
        &self.count
    }
}

/// `ideal ptr` (`PIN = false`) and `ideal ptr+pin` (`PIN = true`): slots of pointers
/// to nodes, which live until the table is dropped.
struct IdealPtr<const PIN: bool, N = Node> {
    slots: Box<[AtomicPtr<N>]>,
    mask: usize,
    hasher: Hasher,
}

impl<const PIN: bool, N: PtrNode> Counters for IdealPtr<PIN, N> {
    const NAME: &'static str = match (PIN, size_of::<N>() > 16) {
        (false, false) => "ideal ptr",
        (true, false) => "ideal ptr+pin",
        (false, true) => "ideal fat ptr",
        (true, true) => "ideal fat ptr+pin",
    };
    fn with_keys(keys: usize) -> Self {
        let n = slots_for(keys);
        IdealPtr {
            slots: (0..n).map(|_| AtomicPtr::new(ptr::null_mut())).collect(),
            mask: n - 1,
            hasher: Hasher::random(),
        }
    }
    #[inline]
    fn inc(&self, k: u64) {
        let _guard = PIN.then(crossbeam_epoch::pin);
        let hash = self.hasher.hash_one(k);
        let mut node = ptr::null();
        probe(&self.hasher, self.mask, k, |i| {
            let slot = &self.slots[i];
            // Ordering: Acquire pairs with the Release CAS below, so a node's key is
            // visible to whoever finds the node.
            let mut cur = slot.load(Ordering::Acquire);
            if cur.is_null() {
                let mine = Box::into_raw(Box::new(N::new(k, hash)));
                // Ordering: Release publishes the node's key; Acquire on failure as
                // for the load above.
                match slot.compare_exchange(
                    ptr::null_mut(),
                    mine,
                    Ordering::Release,
                    Ordering::Acquire,
                ) {
                    Ok(_) => cur = mine,
                    Err(other) => {
                        // SAFETY: `mine` was never published; this is its only owner.
                        drop(unsafe { Box::from_raw(mine) });
                        cur = other;
                    }
                }
            }
            // SAFETY: a non-null slot holds a node that lives until the table drops.
            let found = unsafe { &*cur }.holds(k, hash);
            if found {
                node = cur;
            }
            found
        });
        // SAFETY: as above; `node` was set by the probe that returned.
        // Ordering: Relaxed: a count publishes nothing.
        unsafe { &*node }.count().fetch_add(1, Ordering::Relaxed);
    }
    fn get(&self, k: u64) -> u64 {
        self.snapshot().get(&k).copied().unwrap_or(0)
    }
    fn snapshot(&self) -> HashMap<u64, u64> {
        self.slots
            .iter()
            .map(|s| s.load(Ordering::Acquire))
            .filter(|p| !p.is_null())
            // SAFETY: as in `inc`.
            // Ordering: Relaxed: read after the counting threads were joined.
            .map(|p| unsafe { ((*p).key(), (*p).count().load(Ordering::Relaxed)) })
            .collect()
    }
}

impl<const PIN: bool, N> Drop for IdealPtr<PIN, N> {
    fn drop(&mut self) {
        for s in self.slots.iter_mut() {
            let p = *s.get_mut();
            if !p.is_null() {
                // SAFETY: each node was published once, by `Box::into_raw`, and the
                // table is its only owner.
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}

/// The word of a slot of `grow proto` that growth has claimed; it never changes again.
const FROZEN: u64 = 1 << 62;
/// In a table that growth is filling: the count includes the one moved from the
/// previous table.
const CARRIED: u64 = 1 << 61;
/// The count bits of a `grow proto` word.
const GROW_COUNT: u64 = CARRIED - 1;

/// Adds `n` to the count bits of `w`, modulo 2^61, keeping its flags.
#[inline]
fn grow_bump(w: u64, n: u64) -> u64 {
    (w & !GROW_COUNT) | (w.wrapping_add(n) & GROW_COUNT)
}

/// A table of `grow proto`: 16-byte slots (key, word), key 0 free.
struct GrowTable {
    slots: Box<[[AtomicU64; 2]]>,
    mask: usize,
    /// Slots claimed (keys, live or not).
    used: std::sync::atomic::AtomicUsize,
    /// The table growth is moving this one's keys to; set before any slot is frozen.
    next: AtomicPtr<GrowTable>,
}

impl GrowTable {
    fn new(slots: usize) -> Self {
        GrowTable {
            slots: (0..slots)
                .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
                .collect(),
            mask: slots - 1,
            used: Default::default(),
            next: AtomicPtr::new(ptr::null_mut()),
        }
    }

    /// The slot holding `k`, claiming a free one if `k` is absent; `None` if the table
    /// is too full to claim one (the caller grows it). Growth itself (`fill`) may
    /// claim past half full: the next table has room for every key it moves.
    fn find_or_claim(&self, k: u64, hash: u64, fill: bool) -> Option<&AtomicU64> {
        let mut i = hash as usize & self.mask;
        loop {
            let [key, word] = &self.slots[i];
            // Ordering: Relaxed: the key word is the only data a claim publishes.
            let cur = key.load(Ordering::Relaxed);
            if cur == k {
                return Some(word);
            }
            if cur == 0 {
                // Ordering: Relaxed: a statistic deciding growth.
                if !fill && (self.used.load(Ordering::Relaxed) + 1) * 2 > self.slots.len() {
                    return None;
                }
                // Ordering: Relaxed, as above.
                match key.compare_exchange(0, k, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => {
                        // Ordering: Relaxed, as above.
                        self.used.fetch_add(1, Ordering::Relaxed);
                        return Some(word);
                    }
                    Err(other) if other == k => return Some(word),
                    Err(_) => {}
                }
            }
            i = (i + 1) & self.mask;
        }
    }
}

/// `grow proto` (`FROM_SMALL = false`: sized for every key; `true`: starting at 1,024
/// slots and doubling while the keys arrive): a prototype of the core proposed in
/// `docs/design/counter_map_core.md`, for `u64` keys (never 0) only: key and count in
/// a 16-byte slot, counts added by CAS so that a frozen word is exact, an epoch pin per
/// increment, and growth (under a lock) that freezes each slot, moves its count to the
/// next table with `CARRIED`, and retires the old table through the epoch while adders
/// that meet a frozen word go on in the next table. No removal, reset or striping.
struct GrowProto<const FROM_SMALL: bool> {
    current: crossbeam_epoch::Atomic<GrowTable>,
    grow_lock: std::sync::Mutex<()>,
    hasher: Hasher,
}

impl<const FROM_SMALL: bool> GrowProto<FROM_SMALL> {
    /// Moves `t`'s keys to a table twice its size, if `t` is still the current table.
    #[cold]
    fn grow(&self, t: &GrowTable, guard: &crossbeam_epoch::Guard) {
        let _lock = self.grow_lock.lock().unwrap();
        // Ordering: Acquire pairs with the Release store that published the table.
        let cur = self.current.load(Ordering::Acquire, guard);
        if !ptr::eq(cur.as_raw(), t) {
            return; // grown meanwhile
        }
        let next = Box::into_raw(Box::new(GrowTable::new(t.slots.len() * 2)));
        // Ordering: Relaxed: adders that meet a frozen word see this store through
        // the freeze's Release and their Acquire fence; the table's contents are
        // published by the same pairing.
        t.next.store(next, Ordering::Relaxed);
        // SAFETY: just allocated; freed only after it is retired in turn.
        let n = unsafe { &*next };
        for [key, word] in t.slots.iter() {
            // Ordering: the word's modification order alone decides which adds the
            // frozen count holds (every other change is a CAS). Acquire pairs with the
            // Release CAS of the adds it reads (through their release sequence), so an
            // add that the count holds has its key claim visible to the load below
            // (with Relaxed, growth could read the claimed slot as free and drop the
            // count); Release pairs with the Acquire fence of an adder that finds the
            // word frozen, so it sees `next` set (with Acquire alone, it could load a
            // null `next`).
            let c = word.fetch_or(FROZEN, Ordering::AcqRel);
            // Ordering: Relaxed: the Acquire above orders every claim that counted;
            // a claim this load misses has no count, and its adder fails over to
            // `next` when it finds the word frozen.
            let k = key.load(Ordering::Relaxed);
            if k == 0 {
                continue;
            }
            let w = n
                .find_or_claim(k, self.hasher.hash_one(k), true)
                .expect("a fill always finds a slot");
            // Ordering: Relaxed, as for adds; the CAS below is Release, as theirs are.
            let mut cur = w.load(Ordering::Relaxed);
            while let Err(a) = w.compare_exchange_weak(
                cur,
                grow_bump(cur, c & GROW_COUNT) | CARRIED,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                cur = a;
            }
        }
        // SAFETY: `next` came from `Box::into_raw`; from now on the map owns it.
        let next = unsafe { crossbeam_epoch::Owned::from_raw(next) };
        // Ordering: Release publishes the filled table (AcqRel: the old one is retired).
        let old = self.current.swap(next, Ordering::AcqRel, guard);
        // SAFETY: unreachable from `current`; readers still on it are pinned.
        unsafe { guard.defer_destroy(old) };
    }
}

impl<const FROM_SMALL: bool> Counters for GrowProto<FROM_SMALL> {
    const NAME: &'static str = if FROM_SMALL {
        "grow proto from 1k"
    } else {
        "grow proto"
    };
    fn with_keys(keys: usize) -> Self {
        let slots = if FROM_SMALL { 1024 } else { slots_for(keys) };
        GrowProto {
            current: crossbeam_epoch::Atomic::new(GrowTable::new(slots)),
            grow_lock: std::sync::Mutex::new(()),
            hasher: Hasher::random(),
        }
    }
    #[inline]
    fn inc(&self, k: u64) {
        debug_assert_ne!(k, 0);
        let guard = crossbeam_epoch::pin();
        let hash = self.hasher.hash_one(k);
        // Ordering: Acquire pairs with the Release swap in `grow`.
        // SAFETY: the table is never null; a replaced one is freed only after an epoch
        // passes, which our pin holds back.
        let mut t = unsafe { self.current.load(Ordering::Acquire, &guard).deref() };
        'table: loop {
            let Some(w) = t.find_or_claim(k, hash, false) else {
                self.grow(t, &guard);
                // Ordering: Acquire, as above.
                // SAFETY: as above.
                t = unsafe { self.current.load(Ordering::Acquire, &guard).deref() };
                continue;
            };
            // Ordering: Relaxed: a count publishes nothing; a frozen value is followed by
            // the Acquire fence below.
            let mut cur = w.load(Ordering::Relaxed);
            loop {
                if cur & FROZEN != 0 {
                    // Ordering: Acquire, with the word read above, pairs with the
                    // freeze's Release, so the `next` stored before it is seen; only
                    // this path pays for it.
                    std::sync::atomic::fence(Ordering::Acquire);
                    // Ordering: Relaxed: ordered by the fence above.
                    // SAFETY: `next` is set before any word is frozen, and freed only
                    // after an epoch passes, which our pin holds back.
                    t = unsafe { &*t.next.load(Ordering::Relaxed) };
                    continue 'table;
                }
                // Ordering: Release on success, so that a growth whose freeze reads
                // this add also sees the key claim made before it (see `grow`).
                match w.compare_exchange_weak(
                    cur,
                    grow_bump(cur, 1),
                    Ordering::Release,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return,
                    Err(a) => cur = a,
                }
            }
        }
    }
    fn get(&self, k: u64) -> u64 {
        self.snapshot().get(&k).copied().unwrap_or(0)
    }
    fn snapshot(&self) -> HashMap<u64, u64> {
        let guard = crossbeam_epoch::pin();
        // SAFETY: as in `inc`; read after the counting threads were joined.
        let t = unsafe { self.current.load(Ordering::Acquire, &guard).deref() };
        // Ordering: Relaxed: read after the counting threads were joined.
        let word = |w: &AtomicU64| w.load(Ordering::Relaxed);
        t.slots
            .iter()
            .filter(|s| word(&s[0]) != 0)
            .map(|s| (word(&s[0]), word(&s[1]) & GROW_COUNT))
            .collect()
    }
}

impl<const FROM_SMALL: bool> Drop for GrowProto<FROM_SMALL> {
    fn drop(&mut self) {
        // SAFETY: `&mut self`: nobody else can reach the table; retired ones are the
        // collector's.
        unsafe {
            let guard = crossbeam_epoch::unprotected();
            drop(self.current.load(Ordering::Relaxed, guard).into_owned());
        }
    }
}

/// `C` with an `lfence` after every increment (x86-64), so that consecutive
/// increments cannot overlap.
struct Serial<C>(C);

impl<C: Counters> Counters for Serial<C> {
    const NAME: &'static str = "serial";
    fn with_keys(keys: usize) -> Self {
        Serial(C::with_keys(keys))
    }
    #[inline]
    fn inc(&self, k: u64) {
        self.0.inc(k);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `lfence` only orders instruction dispatch; SSE2 is part of the x86-64
        // baseline.
        unsafe {
            std::arch::x86_64::_mm_lfence()
        };
    }
    fn get(&self, k: u64) -> u64 {
        self.0.get(k)
    }
    fn snapshot(&self) -> HashMap<u64, u64> {
        self.0.snapshot()
    }
}

/// CPU time of the calling thread (0 where it cannot be read).
fn thread_cpu() -> Duration {
    #[cfg(target_os = "linux")]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec.
        if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } == 0 {
            return Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
        }
    }
    Duration::ZERO
}

/// Counts `keys` (split evenly over `threads`) into a fresh `C` sized for `distinct`
/// keys; returns the wall time (threads spawned and joined inside it) and the CPU time
/// of the counting threads. Checks that no count was lost.
fn run<C: Counters>(keys: &[u64], distinct: usize, threads: usize) -> (Duration, Duration) {
    let map = C::with_keys(distinct);
    let chunk = keys.len() / threads;
    let start = Instant::now();
    let cpu = thread::scope(|s| {
        let counting: Vec<_> = keys
            .chunks_exact(chunk)
            .map(|part| {
                let map = &map;
                s.spawn(move || {
                    let before = thread_cpu();
                    for &k in part {
                        map.inc(k);
                    }
                    thread_cpu() - before
                })
            })
            .collect();
        counting.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let wall = start.elapsed();
    let total: u64 = map.snapshot().values().sum();
    assert_eq!(total, (chunk * threads) as u64, "{} lost a count", C::NAME);
    (wall, cpu)
}

type Runner = fn(&[u64], usize, usize) -> (Duration, Duration);

fn contenders() -> Vec<(&'static str, Runner)> {
    let mut v: Vec<(&'static str, Runner)> = vec![
        ("dashmap", run::<DashMap<u64, AtomicU64>>),
        ("atomkit", run::<CounterMap<u64>>),
        ("ideal inline", run::<IdealInline>),
        ("ideal inline+pin", run::<IdealInline<true>>),
        ("ideal split", run::<IdealSplit>),
        ("ideal ptr", run::<IdealPtr<false>>),
        ("ideal ptr+pin", run::<IdealPtr<true>>),
        ("grow proto", run::<GrowProto<false>>),
        ("grow proto from 1k", run::<GrowProto<true>>),
        ("ideal fat ptr", run::<IdealPtr<false, FatNode>>),
        ("ideal fat ptr+pin", run::<IdealPtr<true, FatNode>>),
    ];
    #[cfg(atomkit_unstable)]
    v.push((
        "atomkit WordCounterMap",
        run::<atomkit::counter_map::WordCounterMap<u64>>,
    ));
    if cfg!(target_arch = "x86_64") {
        v.extend([
            (
                "dashmap serial",
                run::<Serial<DashMap<u64, AtomicU64>>> as Runner,
            ),
            ("atomkit serial", run::<Serial<CounterMap<u64>>>),
            ("ideal split serial", run::<Serial<IdealSplit>>),
            ("ideal ptr+pin serial", run::<Serial<IdealPtr<true>>>),
        ]);
    }
    v
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let mut keys = 100_000u64;
    let mut threads = vec![2, 4];
    let mut rounds = 11;
    let mut n = 2_000_000u64;
    let mut only: Option<Vec<String>> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--keys" => keys = value().parse().expect("--keys N"),
            "--rounds" => rounds = value().parse().expect("--rounds N"),
            "--threads" => {
                threads = value()
                    .split(',')
                    .map(|t| t.parse().expect("--threads 1,2,4"))
                    .collect()
            }
            "--quick" => n = 200_000,
            "--only" => only = Some(value().split(',').map(str::to_owned).collect()),
            "--bench" => {} // passed by `cargo bench`
            other => panic!("unknown argument {other}"),
        }
    }
    let stream = zipf_keys(keys, 1.1, n, 0x5EED ^ keys);
    let mut all = contenders();
    if let Some(only) = &only {
        all.retain(|(name, _)| *name == "dashmap" || only.iter().any(|o| o == name));
    }
    println!("{n} increments, Zipf(1.1) over {keys} keys, {rounds} rounds after 2 warm-up\n");
    for &t in &threads {
        let mut wall = vec![Vec::new(); all.len()];
        let mut cpu = vec![Vec::new(); all.len()];
        for r in 0..rounds + 2 {
            for j in 0..all.len() {
                let c = (r + j) % all.len();
                let (w, cp) = (all[c].1)(&stream, keys as usize, t);
                if r >= 2 {
                    wall[c].push(w.as_nanos() as f64);
                    cpu[c].push(cp.as_nanos() as f64);
                }
            }
        }
        println!("### {t} threads\n");
        println!("| contender | wall ns/op | CPU ns/op | dashmap / contender, wall | dashmap / contender, CPU |");
        println!("|---|---:|---:|---:|---:|");
        for (c, (name, _)) in all.iter().enumerate() {
            let ratio = |m: &[Vec<f64>]| median((0..rounds).map(|r| m[0][r] / m[c][r]).collect());
            println!(
                "| {name} | {:.1} | {:.1} | {:.2}x | {:.2}x |",
                median(wall[c].clone()) / n as f64,
                median(cpu[c].clone()) / n as f64,
                ratio(&wall),
                ratio(&cpu),
            );
        }
        println!();
    }
}
