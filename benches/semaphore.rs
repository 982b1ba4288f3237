//! criterion deep-dive for `Semaphore`, one group per scenario, every peer in every
//! group, through the `Sem` trait of the head-to-head module (`benches/h2h/semaphore.rs`).
//! The ratio table that counts comes from `cargo xtask bench` (round-robin); these
//! per-peer runs are for profiling one case at a time.

#![allow(missing_docs, unreachable_pub)]

#[allow(dead_code)]
#[path = "h2h/semaphore.rs"]
mod h2h_semaphore;
#[allow(dead_code)]
#[path = "h2h/harness.rs"]
mod harness;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use h2h_semaphore::{contended, uncontended, AsyncLock, ParkingLot, Sem, StdCondvar, Tokio};
use std::time::Duration;

type Peer = (
    &'static str,
    fn(u64) -> Duration,
    fn(usize, u64) -> Duration,
);

fn peer<S: Sem>(name: &'static str) -> Peer {
    (name, uncontended::<S>, contended::<S>)
}

fn peers() -> Vec<Peer> {
    vec![
        peer::<atomkit::semaphore::Semaphore>("atomkit"),
        peer::<Tokio>("tokio"),
        peer::<AsyncLock>("async-lock"),
        peer::<StdCondvar>("std-condvar"),
        peer::<ParkingLot>("parking_lot-condvar"),
    ]
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("semaphore/uncontended pair");
    for (name, unc, _) in peers() {
        // One criterion iteration = one acquire+release pair.
        g.bench_function(BenchmarkId::from_parameter(name), |b| b.iter_custom(unc));
    }
    g.finish();
    // 20,000 cycles per thread per sample (the h2h module runs the full 200,000).
    const PER: u64 = 20_000;
    for threads in [2usize, 4, 8] {
        let mut g = c.benchmark_group(format!("semaphore/{threads} threads on 2 permits"));
        g.throughput(criterion::Throughput::Elements(PER * threads as u64));
        for (name, _, con) in peers() {
            g.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| con(threads, PER)).sum())
            });
        }
        g.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = semaphore;
    config = config();
    targets = benches
}
criterion_main!(semaphore);
