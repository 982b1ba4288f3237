//! criterion deep-dive for `WorkerPool`, one group per scenario, every peer in every
//! group, through the `Pool` trait of the head-to-head module (`benches/h2h/pool.rs`).
//! The ratio table that counts comes from `cargo xtask bench` (round-robin); these
//! per-peer runs are for profiling one case at a time.

#![allow(missing_docs, unreachable_pub)]

#[allow(dead_code)]
#[path = "h2h/pool.rs"]
mod h2h_pool;
#[allow(dead_code)]
#[path = "h2h/harness.rs"]
mod harness;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use h2h_pool::{
    latency, throughput, Atomkit, AtomkitChannel, AtomkitNoTiming, AtomkitSubmit, Crossbeam, Pool,
    Rayon, ThreadPoolCrate,
};
use std::time::Duration;

type Peer = (
    &'static str,
    fn(usize, u64) -> Duration,
    fn(usize, u64) -> Duration,
);

fn peer<P: Pool>(name: &'static str) -> Peer {
    (name, throughput::<P>, latency::<P>)
}

fn peers() -> Vec<Peer> {
    vec![
        peer::<Atomkit>("atomkit"),
        peer::<AtomkitSubmit>("atomkit-submit"),
        peer::<AtomkitNoTiming>("atomkit-timing-off"),
        peer::<Rayon>("rayon"),
        peer::<ThreadPoolCrate>("threadpool"),
        peer::<Crossbeam>("crossbeam-channel-workers"),
        peer::<AtomkitChannel>("atomkit-channel-workers"),
    ]
}

fn benches(c: &mut Criterion) {
    // 100,000 jobs per sample (the h2h module runs the full 1,000,000).
    const JOBS: u64 = 100_000;
    for workers in [2usize, 8] {
        let mut g = c.benchmark_group(format!("pool/{JOBS} trivial jobs, {workers} workers"));
        g.throughput(Throughput::Elements(JOBS));
        for (name, thr, _) in peers() {
            g.bench_function(BenchmarkId::from_parameter(name), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| thr(workers, JOBS)).sum())
            });
        }
        g.finish();
    }
    let mut g = c.benchmark_group("pool/submit-to-start latency, idle, 2 workers");
    for (name, _, lat) in peers() {
        // One criterion iteration = one job's submit-to-start time.
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter_custom(|iters| lat(2, iters))
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = pool;
    config = config();
    targets = benches
}
criterion_main!(pool);
