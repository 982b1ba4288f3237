//! Criterion deep-dive benches for `deque` (the ratio table comes from `benches/h2h`).
//! The workloads and the peer trait are those of `benches/h2h/deque.rs`.
//!
//! `cargo bench --bench deque`
#![allow(missing_docs, dead_code, unreachable_pub)]

#[path = "h2h/harness.rs"]
mod harness;
#[path = "h2h/deque.rs"]
mod workloads;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::time::Duration;
use workloads::{Atomkit, Crossbeam, Peer, St3Fifo, St3Lifo};

const PAIRS: u64 = 100_000;
const ITEMS: u64 = 100_000;

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
}

fn pair<P: Peer>(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    fifo: bool,
) {
    c.bench_function(BenchmarkId::new(name, PAIRS), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| workloads::push_pop_pair::<P>(PAIRS, fifo))
                .sum()
        })
    });
}

fn push_pop(c: &mut Criterion) {
    let mut g = c.benchmark_group("deque push+pop pair LIFO");
    pair::<Atomkit>(&mut g, "atomkit", false);
    pair::<Crossbeam>(&mut g, "crossbeam-deque", false);
    pair::<St3Lifo>(&mut g, "st3", false);
    g.finish();
    let mut g = c.benchmark_group("deque push+pop pair FIFO");
    pair::<Atomkit>(&mut g, "atomkit", true);
    pair::<Crossbeam>(&mut g, "crossbeam-deque", true);
    pair::<St3Fifo>(&mut g, "st3", true);
    g.finish();
}

fn thieves<P: Peer>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    k: usize,
    batch: bool,
) {
    g.bench_function(BenchmarkId::new(name, k), |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| workloads::owner_and_thieves::<P>(ITEMS, k, false, batch).0)
                .sum()
        })
    });
}

fn owner_thieves(c: &mut Criterion) {
    for batch in [false, true] {
        let mut g = c.benchmark_group(if batch {
            "deque owner + thieves steal_batch"
        } else {
            "deque owner + thieves steal"
        });
        for k in [1, 3] {
            thieves::<Atomkit>(&mut g, "atomkit", k, batch);
            thieves::<Crossbeam>(&mut g, "crossbeam-deque", k, batch);
            thieves::<St3Lifo>(&mut g, "st3", k, batch);
        }
        g.finish();
    }
}

fn injector(c: &mut Criterion) {
    let mut g = c.benchmark_group("deque injector mpmc");
    for (p, q) in [(2, 2), (4, 4)] {
        let id = format!("{p}p{q}c");
        g.bench_function(BenchmarkId::new("atomkit", &id), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| workloads::injector_mpmc::<atomkit::deque::Injector<u64>>(ITEMS, p, q))
                    .sum()
            })
        });
        g.bench_function(BenchmarkId::new("crossbeam-deque", &id), |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| {
                        workloads::injector_mpmc::<crossbeam_deque::Injector<u64>>(ITEMS, p, q)
                    })
                    .sum()
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = config();
    targets = push_pop, owner_thieves, injector
}
criterion_main!(benches);
