//! ArrayQueue against crossbeam-queue's `ArrayQueue` and `concurrent-queue`'s bounded
//! queue: 2,000,000 u64 through capacity 1024 and 16 with 1p1c, 2p2c, 4p4c and 8p8c
//! (4p4c and 8p8c oversubscribe a 2-core machine), and the uncontended push+pop pair.
//! Every peer waits on Full/Empty the same way: `crossbeam_utils::Backoff::snooze`.

use crate::harness::{Contender, Scale, Scenario};
use crossbeam_utils::Backoff;
use std::hint::black_box;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// The operations the workload needs, so every peer runs the same code.
pub trait BenchQueue: Send + Sync + 'static {
    fn with_capacity(cap: usize) -> Self;
    fn try_push(&self, v: u64) -> Result<(), u64>;
    fn try_pop(&self) -> Option<u64>;
}

impl BenchQueue for atomkit::queue::ArrayQueue<u64> {
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

impl BenchQueue for crossbeam_queue::ArrayQueue<u64> {
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

impl BenchQueue for concurrent_queue::ConcurrentQueue<u64> {
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

/// `threads` producers push `n` values in total and `threads` consumers pop them,
/// each side waiting with `Backoff::snooze` on Full/Empty. Returns the wall time from
/// the first spawn to the last join.
pub fn transfer<Q: BenchQueue>(q: &Arc<Q>, threads: u64, n: u64) -> Duration {
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
            0
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
    let mut sum = 0u64;
    for h in hs {
        sum = sum.wrapping_add(h.join().unwrap());
    }
    black_box(sum);
    start.elapsed()
}

/// `n` push+pop pairs on one thread.
pub fn uncontended<Q: BenchQueue>(q: &Q, n: u64) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        let _ = black_box(q.try_push(black_box(i)));
        black_box(q.try_pop());
    }
    start.elapsed()
}

fn contender<Q: BenchQueue>(name: &'static str, cap: usize, threads: u64, n: u64) -> Contender {
    let q = Arc::new(Q::with_capacity(cap));
    Contender::new(name, move || transfer(&q, threads, n))
}

pub fn scenarios(scale: Scale) -> Vec<Scenario> {
    let n = scale.n(2_000_000);
    let mut out = Vec::new();
    for cap in [1024usize, 16] {
        for threads in [1u64, 2, 4, 8] {
            out.push(Scenario::new(
                "queue",
                format!("{threads}p{threads}c cap {cap}"),
                n,
                vec![
                    contender::<atomkit::queue::ArrayQueue<u64>>("atomkit", cap, threads, n),
                    contender::<crossbeam_queue::ArrayQueue<u64>>(
                        "crossbeam-queue",
                        cap,
                        threads,
                        n,
                    ),
                    contender::<concurrent_queue::ConcurrentQueue<u64>>(
                        "concurrent-queue",
                        cap,
                        threads,
                        n,
                    ),
                ],
            ));
        }
    }
    let pairs = scale.n(20_000_000);
    let a = atomkit::queue::ArrayQueue::<u64>::new(1024);
    let c = crossbeam_queue::ArrayQueue::<u64>::new(1024);
    let k = concurrent_queue::ConcurrentQueue::<u64>::bounded(1024);
    out.push(Scenario::new(
        "queue",
        "uncontended push+pop",
        pairs,
        vec![
            Contender::new("atomkit", move || uncontended(&a, pairs)),
            Contender::new("crossbeam-queue", move || uncontended(&c, pairs)),
            Contender::new("concurrent-queue", move || uncontended(&k, pairs)),
        ],
    ));
    out
}
