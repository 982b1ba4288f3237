//! Criterion deep-dive benches for `atomkit::channel` against crossbeam-channel,
//! flume, kanal and std's `sync_channel`, on the same workloads as the head-to-head
//! table (`benches/h2h`, run round-robin), whose module this file reuses. All
//! workloads use each peer's blocking `send`/`recv`; std's single-consumer receiver
//! sits behind a `Mutex` in the multi-consumer groups.
//!
//! `cargo bench --bench channel`
#![allow(missing_docs, unreachable_pub)]

#[allow(dead_code)]
#[path = "h2h/harness.rs"]
mod harness;
#[allow(dead_code)]
#[path = "h2h/channel.rs"]
mod workload;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use workload::{transfer, uncontended, Atomkit, BenchChan, Crossbeam, Flume, Kanal};
use workload::{StdMpsc, StdMutex};

fn transfer_of<C: BenchChan>(
    c: &mut Criterion,
    name: &str,
    group: &str,
    cap: usize,
    threads: u64,
    n: u64,
) {
    let mut g = c.benchmark_group(group);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(n));
    g.bench_function(BenchmarkId::new(name, format!("cap {cap}")), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| transfer::<C>(cap, threads, n)).sum())
    });
    g.finish();
}

fn uncontended_of<C: BenchChan>(c: &mut Criterion, name: &str) {
    let (s, r) = C::new(1024);
    let mut g = c.benchmark_group("uncontended try_send+try_recv");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(1));
    g.bench_function(name, |b| {
        b.iter_custom(|iters| uncontended::<C>(&s, &r, iters))
    });
    g.finish();
}

/// Every group for one peer; `Multi` is the peer's multi-consumer form (std's
/// receiver behind a `Mutex`, everyone else's own).
fn all<C: BenchChan, Multi: BenchChan>(c: &mut Criterion, name: &str) {
    uncontended_of::<C>(c, name);
    for (group, threads, cap) in [
        ("SPSC 1p1c", 1u64, 1024usize),
        ("SPSC 1p1c", 1, 16),
        ("MPMC 2p2c", 2, 16),
        ("oversubscribed 4p4c", 4, 1024),
        ("oversubscribed 8p8c", 8, 16),
    ] {
        if threads == 1 {
            transfer_of::<C>(c, name, group, cap, threads, 100_000);
        } else {
            transfer_of::<Multi>(c, name, group, cap, threads, 100_000);
        }
    }
    transfer_of::<C>(c, name, "rendezvous 1p1c", 0, 1, 10_000);
}

fn benches(c: &mut Criterion) {
    all::<Atomkit, Atomkit>(c, "atomkit");
    all::<Crossbeam, Crossbeam>(c, "crossbeam-channel");
    all::<Flume, Flume>(c, "flume");
    all::<Kanal, Kanal>(c, "kanal");
    all::<StdMpsc, StdMutex>(c, "std-mpsc");
}

criterion_group!(channel, benches);
criterion_main!(channel);
