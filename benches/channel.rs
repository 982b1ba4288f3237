//! Criterion deep-dive benches for `atomkit::channel` against crossbeam-channel,
//! flume, kanal and std's `sync_channel` (the ratio table comes from `benches/h2h`,
//! run round-robin). All workloads use each peer's blocking `send`/`recv`; std's
//! single-consumer receiver sits behind a `Mutex` in the multi-consumer groups.
//!
//! `cargo bench --bench channel`
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Every peer behind one trait, so every scenario runs each of them.
trait Chan: 'static {
    const NAME: &'static str;
    type S: Clone + Send + 'static;
    type R: Clone + Send + 'static;
    fn new(cap: usize) -> (Self::S, Self::R);
    fn send(s: &Self::S, v: u64);
    fn recv(r: &Self::R) -> u64;
    fn try_send(s: &Self::S, v: u64) -> bool;
    fn try_recv(r: &Self::R) -> Option<u64>;
}

macro_rules! peer {
    ($ty:ident, $name:literal, $s:ty, $r:ty, $new:expr) => {
        struct $ty;
        impl Chan for $ty {
            const NAME: &'static str = $name;
            type S = $s;
            type R = $r;
            fn new(cap: usize) -> (Self::S, Self::R) {
                $new(cap)
            }
            fn send(s: &Self::S, v: u64) {
                s.send(v).unwrap();
            }
            fn recv(r: &Self::R) -> u64 {
                r.recv().unwrap()
            }
            fn try_send(s: &Self::S, v: u64) -> bool {
                s.try_send(v).is_ok()
            }
            fn try_recv(r: &Self::R) -> Option<u64> {
                r.try_recv().ok()
            }
        }
    };
}

peer!(
    Atomkit,
    "atomkit",
    atomkit::channel::Sender<u64>,
    atomkit::channel::Receiver<u64>,
    atomkit::channel::bounded
);
peer!(
    Crossbeam,
    "crossbeam-channel",
    crossbeam_channel::Sender<u64>,
    crossbeam_channel::Receiver<u64>,
    crossbeam_channel::bounded
);
peer!(
    Flume,
    "flume",
    flume::Sender<u64>,
    flume::Receiver<u64>,
    flume::bounded
);

struct Kanal;
impl Chan for Kanal {
    const NAME: &'static str = "kanal";
    type S = kanal::Sender<u64>;
    type R = kanal::Receiver<u64>;
    fn new(cap: usize) -> (Self::S, Self::R) {
        kanal::bounded(cap)
    }
    fn send(s: &Self::S, v: u64) {
        s.send(v).unwrap();
    }
    fn recv(r: &Self::R) -> u64 {
        r.recv().unwrap()
    }
    fn try_send(s: &Self::S, v: u64) -> bool {
        s.try_send(v).unwrap()
    }
    fn try_recv(r: &Self::R) -> Option<u64> {
        r.try_recv().unwrap()
    }
}

/// std's `sync_channel`; the receiver behind a `Mutex` so it can be cloned (an
/// uncontended lock in the 1-consumer groups).
struct Std;
impl Chan for Std {
    const NAME: &'static str = "std-mpsc";
    type S = std::sync::mpsc::SyncSender<u64>;
    type R = Arc<Mutex<std::sync::mpsc::Receiver<u64>>>;
    fn new(cap: usize) -> (Self::S, Self::R) {
        let (s, r) = std::sync::mpsc::sync_channel(cap);
        (s, Arc::new(Mutex::new(r)))
    }
    fn send(s: &Self::S, v: u64) {
        s.send(v).unwrap();
    }
    fn recv(r: &Self::R) -> u64 {
        r.lock().unwrap().recv().unwrap()
    }
    fn try_send(s: &Self::S, v: u64) -> bool {
        s.try_send(v).is_ok()
    }
    fn try_recv(r: &Self::R) -> Option<u64> {
        r.lock().unwrap().try_recv().ok()
    }
}

/// `threads` producers and `threads` consumers move `n` values with blocking calls.
fn transfer<C: Chan>(cap: usize, threads: u64, n: u64) -> Duration {
    let (s, r) = C::new(cap);
    let per = n / threads;
    let start = Instant::now();
    let mut hs = Vec::new();
    for p in 0..threads {
        let s = s.clone();
        hs.push(thread::spawn(move || {
            for i in 0..per {
                C::send(&s, p << 40 | i);
            }
            0u64
        }));
    }
    for _ in 0..threads {
        let r = r.clone();
        hs.push(thread::spawn(move || {
            (0..per).fold(0u64, |sum, _| sum.wrapping_add(C::recv(&r)))
        }));
    }
    let sum = hs
        .into_iter()
        .fold(0u64, |s, h| s.wrapping_add(h.join().unwrap()));
    black_box(sum);
    start.elapsed()
}

fn transfer_of<C: Chan>(c: &mut Criterion, group: &str, cap: usize, threads: u64, n: u64) {
    let mut g = c.benchmark_group(group);
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(1))
        .throughput(Throughput::Elements(n));
    g.bench_function(BenchmarkId::new(C::NAME, format!("cap {cap}")), |b| {
        b.iter_custom(|iters| (0..iters).map(|_| transfer::<C>(cap, threads, n)).sum())
    });
    g.finish();
}

fn uncontended_of<C: Chan>(c: &mut Criterion) {
    let (s, r) = C::new(1024);
    let mut g = c.benchmark_group("uncontended try_send+try_recv");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(1));
    g.bench_function(C::NAME, |b| {
        b.iter(|| {
            black_box(C::try_send(&s, black_box(1)));
            black_box(C::try_recv(&r))
        })
    });
    g.finish();
}

fn all<C: Chan>(c: &mut Criterion) {
    uncontended_of::<C>(c);
    for (group, threads, cap) in [
        ("SPSC 1p1c", 1u64, 1024usize),
        ("SPSC 1p1c", 1, 16),
        ("MPMC 2p2c", 2, 16),
        ("oversubscribed 4p4c", 4, 1024),
        ("oversubscribed 8p8c", 8, 16),
    ] {
        transfer_of::<C>(c, group, cap, threads, 100_000);
    }
    transfer_of::<C>(c, "rendezvous 1p1c", 0, 1, 10_000);
}

fn benches(c: &mut Criterion) {
    all::<Atomkit>(c);
    all::<Crossbeam>(c);
    all::<Flume>(c);
    all::<Kanal>(c);
    all::<Std>(c);
}

criterion_group!(channel, benches);
criterion_main!(channel);
