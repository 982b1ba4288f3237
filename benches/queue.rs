//! Criterion deep-dive benches for `ArrayQueue` against crossbeam-queue and
//! concurrent-queue (the ratio table comes from `benches/h2h`, run round-robin).
//!
//! `cargo bench --bench queue`
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use crossbeam_utils::Backoff;
use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// Every peer behind one trait, so every scenario runs each of them.
trait Queue: Send + Sync + 'static {
    const NAME: &'static str;
    fn with_capacity(cap: usize) -> Self;
    fn try_push(&self, v: u64) -> Result<(), u64>;
    fn try_pop(&self) -> Option<u64>;
}

impl Queue for atomkit::queue::ArrayQueue<u64> {
    const NAME: &'static str = "atomkit";
    fn with_capacity(cap: usize) -> Self {
        Self::new(cap)
    }
    fn try_push(&self, v: u64) -> Result<(), u64> {
        self.push(v)
    }
    fn try_pop(&self) -> Option<u64> {
        self.pop()
    }
}

impl Queue for crossbeam_queue::ArrayQueue<u64> {
    const NAME: &'static str = "crossbeam-queue";
    fn with_capacity(cap: usize) -> Self {
        Self::new(cap)
    }
    fn try_push(&self, v: u64) -> Result<(), u64> {
        self.push(v)
    }
    fn try_pop(&self) -> Option<u64> {
        self.pop()
    }
}

impl Queue for concurrent_queue::ConcurrentQueue<u64> {
    const NAME: &'static str = "concurrent-queue";
    fn with_capacity(cap: usize) -> Self {
        Self::bounded(cap)
    }
    fn try_push(&self, v: u64) -> Result<(), u64> {
        self.push(v).map_err(|e| e.into_inner())
    }
    fn try_pop(&self) -> Option<u64> {
        self.pop().ok()
    }
}

/// `threads` producers and `threads` consumers move `n` values; everyone waits with
/// `Backoff::snooze` on Full/Empty.
fn transfer<Q: Queue>(cap: usize, threads: u64, n: u64) -> Duration {
    let q = Arc::new(Q::with_capacity(cap));
    let per = n / threads;
    let start = Instant::now();
    let mut hs = Vec::new();
    for p in 0..threads {
        let q = q.clone();
        hs.push(thread::spawn(move || {
            let b = Backoff::new();
            for i in 0..per {
                let mut v = p << 40 | i;
                while let Err(back) = q.try_push(v) {
                    v = back;
                    b.snooze();
                }
                b.reset();
            }
            0u64
        }));
    }
    for _ in 0..threads {
        let q = q.clone();
        hs.push(thread::spawn(move || {
            let b = Backoff::new();
            let mut sum = 0u64;
            for _ in 0..per {
                loop {
                    if let Some(v) = q.try_pop() {
                        sum = sum.wrapping_add(v);
                        break;
                    }
                    b.snooze();
                }
                b.reset();
            }
            sum
        }));
    }
    let sum = hs
        .into_iter()
        .fold(0u64, |s, h| s.wrapping_add(h.join().unwrap()));
    black_box(sum);
    start.elapsed()
}

fn mpmc_of<Q: Queue>(c: &mut Criterion, group: &str, cap: usize, threads: u64) {
    const N: u64 = 200_000;
    let mut g = c.benchmark_group(group);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Elements(N));
    g.bench_function(BenchmarkId::new(Q::NAME, format!("cap {cap}")), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| transfer::<Q>(cap, threads, N)).sum())
    });
    g.finish();
}

fn uncontended_of<Q: Queue>(c: &mut Criterion) {
    let q = Q::with_capacity(1024);
    let mut g = c.benchmark_group("uncontended push+pop");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    g.bench_function(Q::NAME, |b| {
        b.iter(|| {
            let _ = q.try_push(black_box(1));
            black_box(q.try_pop())
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    uncontended_of::<atomkit::queue::ArrayQueue<u64>>(c);
    uncontended_of::<crossbeam_queue::ArrayQueue<u64>>(c);
    uncontended_of::<concurrent_queue::ConcurrentQueue<u64>>(c);
    for (group, threads) in [
        ("SPSC 1p1c", 1u64),
        ("MPMC 2p2c", 2),
        ("oversubscribed 4p4c", 4),
        ("oversubscribed 8p8c", 8),
    ] {
        for cap in [1024usize, 16] {
            mpmc_of::<atomkit::queue::ArrayQueue<u64>>(c, group, cap, threads);
            mpmc_of::<crossbeam_queue::ArrayQueue<u64>>(c, group, cap, threads);
            mpmc_of::<concurrent_queue::ConcurrentQueue<u64>>(c, group, cap, threads);
        }
    }
}

criterion_group!(queue, benches);
criterion_main!(queue);
