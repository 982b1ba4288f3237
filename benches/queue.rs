//! Criterion deep-dive benches for `ArrayQueue` against crossbeam-queue and
//! concurrent-queue, on the same workloads as the head-to-head table (`benches/h2h`,
//! run round-robin), whose module this file reuses.
//!
//! `cargo bench --bench queue`
#![allow(missing_docs, unreachable_pub)]

#[allow(dead_code)]
#[path = "h2h/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "h2h/queue.rs"]
mod workload;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::sync::Arc;
use std::time::Duration;
use workload::{transfer, uncontended, BenchQueue};

fn mpmc_of<Q: BenchQueue>(c: &mut Criterion, name: &str, group: &str, cap: usize, threads: u64) {
    const N: u64 = 200_000;
    let mut g = c.benchmark_group(group);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(N));
    g.bench_function(BenchmarkId::new(name, format!("cap {cap}")), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| transfer(&Arc::new(Q::with_capacity(cap)), threads, N))
                .sum()
        })
    });
    g.finish();
}

fn uncontended_of<Q: BenchQueue>(c: &mut Criterion, name: &str) {
    let q = Q::with_capacity(1024);
    let mut g = c.benchmark_group("uncontended push+pop");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    g.bench_function(name, |b| b.iter_custom(|iters| uncontended(&q, iters)));
    g.finish();
}

type Atomkit = atomkit::queue::ArrayQueue<u64>;
type Crossbeam = crossbeam_queue::ArrayQueue<u64>;
type Concurrent = concurrent_queue::ConcurrentQueue<u64>;

fn benches(c: &mut Criterion) {
    uncontended_of::<Atomkit>(c, "atomkit");
    uncontended_of::<Crossbeam>(c, "crossbeam-queue");
    uncontended_of::<Concurrent>(c, "concurrent-queue");
    for (group, threads) in [
        ("SPSC 1p1c", 1u64),
        ("MPMC 2p2c", 2),
        ("oversubscribed 4p4c", 4),
        ("oversubscribed 8p8c", 8),
    ] {
        for cap in [1024usize, 16] {
            mpmc_of::<Atomkit>(c, "atomkit", group, cap, threads);
            mpmc_of::<Crossbeam>(c, "crossbeam-queue", group, cap, threads);
            mpmc_of::<Concurrent>(c, "concurrent-queue", group, cap, threads);
        }
    }
}

criterion_group!(queue, benches);
criterion_main!(queue);
