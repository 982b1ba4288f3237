//! criterion benches of `CounterMap` against its peers, one group per scenario (the
//! same workloads as the head-to-head module `h2h/counter_map.rs`, which they share).
//! `atomkit` keeps its `u64` keys in the slots; `atomkit, entry keys` is the same map
//! with a `u64` newtype key, kept in entries.
//!
//! Run: `cargo bench --bench counter_map`. The ratio table of `cargo xtask bench` is
//! what counts on a noisy machine; these are for deep dives.
#![allow(missing_docs, unreachable_pub, dead_code)]

#[path = "h2h/harness.rs"]
mod harness;
#[path = "h2h/counter_map.rs"]
mod workloads;

use atomkit::counter_map::CounterMap;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use dashmap::DashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use workloads::{
    run_hot, run_hot_handle, run_snapshot, run_stream, zipf_keys, Counters, EntryKeyed, MutexMap,
    OneAtomic, RwLockMap,
};

const N: u64 = 2_000_000;

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_millis(1500))
}

fn zipf(c: &mut Criterion) {
    for distinct in [1_000u64, 100_000] {
        let keys = Arc::new(zipf_keys(distinct, 1.1, N, 0x5EED ^ distinct));
        for threads in [2usize, 4] {
            let mut g = c.benchmark_group(format!("zipf1.1_{distinct}keys_{threads}t"));
            g.throughput(Throughput::Elements(N));
            fn one<C: Counters>(
                g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
                keys: &Arc<Vec<u64>>,
                distinct: u64,
                threads: usize,
            ) {
                g.bench_function(BenchmarkId::from_parameter(C::NAME), |b| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| run_stream::<C>(keys, distinct as usize, threads))
                            .sum()
                    })
                });
            }
            one::<CounterMap<u64>>(&mut g, &keys, distinct, threads);
            one::<EntryKeyed>(&mut g, &keys, distinct, threads);
            one::<DashMap<u64, AtomicU64>>(&mut g, &keys, distinct, threads);
            one::<RwLockMap>(&mut g, &keys, distinct, threads);
            one::<MutexMap>(&mut g, &keys, distinct, threads);
            one::<scc::HashMap<u64, AtomicU64>>(&mut g, &keys, distinct, threads);
            g.finish();
        }
    }
}

fn hot(c: &mut Criterion) {
    for threads in [2usize, 4, 8] {
        let mut g = c.benchmark_group(format!("hot_key_{threads}t"));
        g.throughput(Throughput::Elements(N));
        fn one<C: Counters>(
            g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
            threads: usize,
        ) {
            g.bench_function(BenchmarkId::from_parameter(C::NAME), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| run_hot::<C>(N, threads)).sum())
            });
        }
        one::<CounterMap<u64>>(&mut g, threads);
        one::<EntryKeyed>(&mut g, threads);
        g.bench_function(BenchmarkId::from_parameter("atomkit Counter handle"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| run_hot_handle(N, threads)).sum())
        });
        one::<OneAtomic>(&mut g, threads);
        one::<DashMap<u64, AtomicU64>>(&mut g, threads);
        one::<RwLockMap>(&mut g, threads);
        one::<MutexMap>(&mut g, threads);
        one::<scc::HashMap<u64, AtomicU64>>(&mut g, threads);
        g.finish();
    }
}

fn snapshot(c: &mut Criterion) {
    const KEYS: u64 = 100_000;
    let mut g = c.benchmark_group("snapshot_100000keys");
    g.throughput(Throughput::Elements(KEYS));
    fn one<C: Counters>(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
        let map = C::with_keys(KEYS as usize);
        for k in 0..KEYS {
            map.inc(k);
        }
        g.bench_function(BenchmarkId::from_parameter(C::NAME), |b| {
            b.iter_custom(|iters| run_snapshot(&map, iters))
        });
    }
    one::<CounterMap<u64>>(&mut g);
    one::<EntryKeyed>(&mut g);
    one::<DashMap<u64, AtomicU64>>(&mut g);
    one::<RwLockMap>(&mut g);
    one::<MutexMap>(&mut g);
    one::<scc::HashMap<u64, AtomicU64>>(&mut g);
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = zipf, hot, snapshot
}
criterion_main!(benches);
