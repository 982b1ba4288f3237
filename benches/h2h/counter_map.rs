//! CounterMap against its peers: per-key counting on a Zipf(1.1) key mix (1,000 and
//! 100,000 keys, 2 and 4 threads, keys inserted as first seen), one hot key from 2, 4
//! and 8 threads, and the cost of a snapshot at 100,000 keys.
//!
//! `atomkit` is `CounterMap<u64>`, which keeps keys of the integer types in its slots;
//! `atomkit, entry keys` is the same map with a `u64` newtype key, kept in entries.
//! Peers, all behind [`Counters`]: dashmap (`DashMap<u64, AtomicU64>`), the seeds'
//! `RwLock<HashMap<u64, Arc<AtomicU64>>>` with a double-checked insert,
//! `Mutex<HashMap<u64, u64>>`, scc's `HashMap<u64, AtomicU64>`, and for the hot key a
//! single shared `AtomicU64`. Every contender counts the same precomputed key stream.

use crate::harness::{Contender, Scale, Scenario};
use atomkit::counter_map::CounterMap;
use dashmap::DashMap;
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

/// One peer: a concurrent map of `u64` keys to counts.
pub trait Counters: Send + Sync + 'static {
    /// The peer's name in the report.
    const NAME: &'static str;
    /// An empty map sized for `keys` keys.
    fn with_keys(keys: usize) -> Self;
    /// Adds one to `k`'s count, inserting it if new.
    fn inc(&self, k: u64);
    /// `k`'s count (0 if absent).
    fn get(&self, k: u64) -> u64;
    /// Every key with its count, as a new `HashMap`.
    fn snapshot(&self) -> HashMap<u64, u64>;
}

impl Counters for CounterMap<u64> {
    const NAME: &'static str = "atomkit";
    fn with_keys(keys: usize) -> Self {
        CounterMap::with_capacity(keys)
    }
    #[inline]
    fn inc(&self, k: u64) {
        CounterMap::inc(self, &k);
    }
    fn get(&self, k: u64) -> u64 {
        CounterMap::get(self, &k)
    }
    fn snapshot(&self) -> HashMap<u64, u64> {
        CounterMap::snapshot(self)
    }
}

/// A `u64` that is not a word key type, hashed as one: the same map with its keys in
/// entries instead of its slots (the core every key type that is not an integer or
/// `char` gets).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EntryKey(u64);

/// `CounterMap` with keys in entries: see [`EntryKey`].
pub struct EntryKeyed(CounterMap<EntryKey>);

impl Counters for EntryKeyed {
    const NAME: &'static str = "atomkit, entry keys";
    fn with_keys(keys: usize) -> Self {
        EntryKeyed(CounterMap::with_capacity(keys))
    }
    #[inline]
    fn inc(&self, k: u64) {
        self.0.inc(&EntryKey(k));
    }
    fn get(&self, k: u64) -> u64 {
        self.0.get(&EntryKey(k))
    }
    fn snapshot(&self) -> HashMap<u64, u64> {
        self.0.iter().map(|(k, n)| (k.0, n)).collect()
    }
}

impl Counters for DashMap<u64, AtomicU64> {
    const NAME: &'static str = "dashmap";
    fn with_keys(keys: usize) -> Self {
        DashMap::with_capacity(keys)
    }
    #[inline]
    fn inc(&self, k: u64) {
        if let Some(c) = DashMap::get(self, &k) {
            c.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.entry(k)
            .or_insert_with(|| AtomicU64::new(0))
            .fetch_add(1, Ordering::Relaxed);
    }
    fn get(&self, k: u64) -> u64 {
        DashMap::get(self, &k).map_or(0, |c| c.load(Ordering::Relaxed))
    }
    fn snapshot(&self) -> HashMap<u64, u64> {
        self.iter()
            .map(|e| (*e.key(), e.value().load(Ordering::Relaxed)))
            .collect()
    }
}

/// The seeds' design: a reader lock to count, a double-checked writer lock to insert.
pub struct RwLockMap(RwLock<HashMap<u64, Arc<AtomicU64>>>);

impl Counters for RwLockMap {
    const NAME: &'static str = "RwLock<HashMap>";
    fn with_keys(keys: usize) -> Self {
        RwLockMap(RwLock::new(HashMap::with_capacity(keys)))
    }
    #[inline]
    fn inc(&self, k: u64) {
        if let Some(c) = self.0.read().unwrap().get(&k) {
            c.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut w = self.0.write().unwrap();
        w.entry(k)
            .or_insert_with(|| Arc::new(AtomicU64::new(0)))
            .fetch_add(1, Ordering::Relaxed);
    }
    fn get(&self, k: u64) -> u64 {
        self.0
            .read()
            .unwrap()
            .get(&k)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
    fn snapshot(&self) -> HashMap<u64, u64> {
        self.0
            .read()
            .unwrap()
            .iter()
            .map(|(k, c)| (*k, c.load(Ordering::Relaxed)))
            .collect()
    }
}

/// One mutex around a plain map.
pub struct MutexMap(Mutex<HashMap<u64, u64>>);

impl Counters for MutexMap {
    const NAME: &'static str = "Mutex<HashMap>";
    fn with_keys(keys: usize) -> Self {
        MutexMap(Mutex::new(HashMap::with_capacity(keys)))
    }
    #[inline]
    fn inc(&self, k: u64) {
        *self.0.lock().unwrap().entry(k).or_insert(0) += 1;
    }
    fn get(&self, k: u64) -> u64 {
        self.0.lock().unwrap().get(&k).copied().unwrap_or(0)
    }
    fn snapshot(&self) -> HashMap<u64, u64> {
        self.0.lock().unwrap().clone()
    }
}

impl Counters for scc::HashMap<u64, AtomicU64> {
    const NAME: &'static str = "scc";
    fn with_keys(keys: usize) -> Self {
        scc::HashMap::with_capacity(keys)
    }
    #[inline]
    fn inc(&self, k: u64) {
        if self
            .read_sync(&k, |_, c| c.fetch_add(1, Ordering::Relaxed))
            .is_some()
        {
            return;
        }
        self.entry_sync(k)
            .or_insert(AtomicU64::new(0))
            .fetch_add(1, Ordering::Relaxed);
    }
    fn get(&self, k: u64) -> u64 {
        self.read_sync(&k, |_, c| c.load(Ordering::Relaxed))
            .unwrap_or(0)
    }
    fn snapshot(&self) -> HashMap<u64, u64> {
        let mut out = HashMap::with_capacity(self.len());
        self.iter_sync(|k, c| {
            out.insert(*k, c.load(Ordering::Relaxed));
            true
        });
        out
    }
}

/// One shared word: the floor for the hot key (ignores the key).
pub struct OneAtomic(AtomicU64);

impl Counters for OneAtomic {
    const NAME: &'static str = "AtomicU64";
    fn with_keys(_: usize) -> Self {
        OneAtomic(AtomicU64::new(0))
    }
    #[inline]
    fn inc(&self, _: u64) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn get(&self, _: u64) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
    fn snapshot(&self) -> HashMap<u64, u64> {
        HashMap::from([(0, self.0.load(Ordering::Relaxed))])
    }
}

/// `n` keys drawn from Zipf(s) over `1..=keys` (inverse CDF, xorshift), fixed seed.
pub fn zipf_keys(keys: u64, s: f64, n: u64, seed: u64) -> Vec<u64> {
    let mut cdf = Vec::with_capacity(keys as usize);
    let mut acc = 0.0;
    for r in 1..=keys {
        acc += 1.0 / (r as f64).powf(s);
        cdf.push(acc);
    }
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64 * acc;
            cdf.partition_point(|&c| c < u) as u64 + 1
        })
        .collect()
}

/// Counts `keys` (split evenly) from `threads` threads into a fresh `C`; returns the
/// elapsed time (threads spawned and joined inside it). Checks the total.
pub fn run_stream<C: Counters>(keys: &Arc<Vec<u64>>, distinct: usize, threads: usize) -> Duration {
    let map = Arc::new(C::with_keys(distinct));
    let chunk = keys.len() / threads;
    let start = Instant::now();
    thread::scope(|s| {
        for t in 0..threads {
            let map = &map;
            let part = &keys[t * chunk..(t + 1) * chunk];
            s.spawn(move || {
                for &k in part {
                    map.inc(k);
                }
            });
        }
    });
    let took = start.elapsed();
    let total: u64 = map.snapshot().values().sum();
    assert_eq!(total, (chunk * threads) as u64, "{} lost counts", C::NAME);
    took
}

/// Counts one key `n` times in total from `threads` threads.
pub fn run_hot<C: Counters>(n: u64, threads: usize) -> Duration {
    let map = C::with_keys(1);
    let per = n / threads as u64;
    let start = Instant::now();
    thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                for _ in 0..per {
                    map.inc(42);
                }
            });
        }
    });
    let took = start.elapsed();
    assert_eq!(map.get(42), per * threads as u64, "{} lost counts", C::NAME);
    took
}

/// The hot key through a pre-resolved atomkit `Counter` handle per thread.
pub fn run_hot_handle(n: u64, threads: usize) -> Duration {
    let map: CounterMap<u64> = CounterMap::new();
    let per = n / threads as u64;
    let start = Instant::now();
    thread::scope(|s| {
        for _ in 0..threads {
            let c = map.counter(&42);
            s.spawn(move || {
                for _ in 0..per {
                    c.inc();
                }
            });
        }
    });
    let took = start.elapsed();
    assert_eq!(map.get(&42), per * threads as u64);
    took
}

/// `reps` snapshots of a map holding `keys` keys (filled outside the timing).
pub fn run_snapshot<C: Counters>(map: &C, reps: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..reps {
        black_box(map.snapshot());
    }
    start.elapsed()
}

fn zipf_contenders(keys: &Arc<Vec<u64>>, distinct: usize, threads: usize) -> Vec<Contender> {
    fn one<C: Counters>(keys: &Arc<Vec<u64>>, distinct: usize, threads: usize) -> Contender {
        let keys = Arc::clone(keys);
        Contender::new(C::NAME, move || run_stream::<C>(&keys, distinct, threads))
    }
    let mut v = vec![
        one::<CounterMap<u64>>(keys, distinct, threads),
        one::<DashMap<u64, AtomicU64>>(keys, distinct, threads),
        one::<RwLockMap>(keys, distinct, threads),
        one::<MutexMap>(keys, distinct, threads),
        one::<scc::HashMap<u64, AtomicU64>>(keys, distinct, threads),
    ];
    v.insert(1, one::<EntryKeyed>(keys, distinct, threads));
    v
}

fn hot_contenders(n: u64, threads: usize) -> Vec<Contender> {
    fn one<C: Counters>(n: u64, threads: usize) -> Contender {
        Contender::new(C::NAME, move || run_hot::<C>(n, threads))
    }
    let mut v = vec![
        one::<CounterMap<u64>>(n, threads),
        Contender::new("atomkit Counter handle", move || run_hot_handle(n, threads)),
        one::<OneAtomic>(n, threads),
        one::<DashMap<u64, AtomicU64>>(n, threads),
        one::<RwLockMap>(n, threads),
        one::<MutexMap>(n, threads),
        one::<scc::HashMap<u64, AtomicU64>>(n, threads),
    ];
    v.insert(2, one::<EntryKeyed>(n, threads));
    v
}

fn snapshot_contenders(keys: u64, reps: u64) -> Vec<Contender> {
    fn one<C: Counters>(keys: u64, reps: u64) -> Contender {
        let map = C::with_keys(keys as usize);
        for k in 0..keys {
            map.inc(k);
        }
        Contender::new(C::NAME, move || run_snapshot(&map, reps))
    }
    let mut v = vec![
        one::<CounterMap<u64>>(keys, reps),
        one::<DashMap<u64, AtomicU64>>(keys, reps),
        one::<RwLockMap>(keys, reps),
        one::<MutexMap>(keys, reps),
        one::<scc::HashMap<u64, AtomicU64>>(keys, reps),
    ];
    v.insert(1, one::<EntryKeyed>(keys, reps));
    v
}

/// All counter-map scenarios. The first contender of each is atomkit.
pub fn scenarios(scale: Scale) -> Vec<Scenario> {
    let n = scale.n(2_000_000);
    let mut out = Vec::new();
    for distinct in [1_000u64, 100_000] {
        let keys = Arc::new(zipf_keys(distinct, 1.1, n, 0x5EED ^ distinct));
        for threads in [2usize, 4] {
            out.push(Scenario::new(
                "counter_map",
                format!("zipf1.1 {distinct} keys, {threads} threads"),
                n,
                zipf_contenders(&keys, distinct as usize, threads),
            ));
        }
    }
    for threads in [2usize, 4, 8] {
        out.push(Scenario::new(
            "counter_map",
            format!("hot key, {threads} threads"),
            n,
            hot_contenders(n, threads),
        ));
    }
    let reps = scale.n(20).max(2);
    out.push(Scenario::new(
        "counter_map",
        "snapshot, 100000 keys",
        reps * 100_000,
        snapshot_contenders(100_000, reps),
    ));
    out
}
