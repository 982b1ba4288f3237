//! Head-to-head workloads for `deque`: atomkit's `Worker`/`Stealer`/`Injector`
//! against crossbeam-deque and st3, every peer through the same small trait, every
//! peer waiting the same way on `Empty`/`Retry` (`crossbeam_utils::Backoff`).
//! The criterion bench `benches/deque.rs` runs the same workload functions.

use crate::harness::{Contender, Scale, Scenario};
use crossbeam_utils::Backoff;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// The outcome of one steal attempt.
pub enum Got {
    Item(u64),
    Empty,
    Retry,
}

/// A work-stealing deque as the workloads see it.
pub trait Peer: 'static {
    /// The owner's handle (also a thief's local queue).
    type W: Send + 'static;
    /// A thief's handle.
    type S: Clone + Send + 'static;
    /// A worker in the given flavor, able to hold `cap` items without growing
    /// (st3 is bounded; the growable peers ignore it).
    fn worker(fifo: bool, cap: usize) -> Self::W;
    fn push(w: &Self::W, v: u64);
    fn pop(w: &Self::W) -> Option<u64>;
    fn stealer(w: &Self::W) -> Self::S;
    /// Steals one item (`local` is the thief's own queue, which st3 needs).
    fn steal(s: &Self::S, local: &Self::W) -> Got;
    /// Steals a batch (at most 32, at most half), returns one, the rest into `local`.
    fn steal_batch_and_pop(s: &Self::S, local: &Self::W) -> Got;
}

pub struct Atomkit;

impl Peer for Atomkit {
    type W = atomkit::deque::Worker<u64>;
    type S = atomkit::deque::Stealer<u64>;
    fn worker(fifo: bool, _cap: usize) -> Self::W {
        if fifo {
            Self::W::new_fifo()
        } else {
            Self::W::new_lifo()
        }
    }
    fn push(w: &Self::W, v: u64) {
        w.push(v)
    }
    fn pop(w: &Self::W) -> Option<u64> {
        w.pop()
    }
    fn stealer(w: &Self::W) -> Self::S {
        w.stealer()
    }
    fn steal(s: &Self::S, _local: &Self::W) -> Got {
        match s.steal() {
            atomkit::deque::Steal::Success(v) => Got::Item(v),
            atomkit::deque::Steal::Empty => Got::Empty,
            atomkit::deque::Steal::Retry => Got::Retry,
        }
    }
    fn steal_batch_and_pop(s: &Self::S, local: &Self::W) -> Got {
        match s.steal_batch_and_pop(local) {
            atomkit::deque::Steal::Success(v) => Got::Item(v),
            atomkit::deque::Steal::Empty => Got::Empty,
            atomkit::deque::Steal::Retry => Got::Retry,
        }
    }
}

pub struct Crossbeam;

impl Peer for Crossbeam {
    type W = crossbeam_deque::Worker<u64>;
    type S = crossbeam_deque::Stealer<u64>;
    fn worker(fifo: bool, _cap: usize) -> Self::W {
        if fifo {
            Self::W::new_fifo()
        } else {
            Self::W::new_lifo()
        }
    }
    fn push(w: &Self::W, v: u64) {
        w.push(v)
    }
    fn pop(w: &Self::W) -> Option<u64> {
        w.pop()
    }
    fn stealer(w: &Self::W) -> Self::S {
        w.stealer()
    }
    fn steal(s: &Self::S, _local: &Self::W) -> Got {
        match s.steal() {
            crossbeam_deque::Steal::Success(v) => Got::Item(v),
            crossbeam_deque::Steal::Empty => Got::Empty,
            crossbeam_deque::Steal::Retry => Got::Retry,
        }
    }
    fn steal_batch_and_pop(s: &Self::S, local: &Self::W) -> Got {
        match s.steal_batch_with_limit_and_pop(local, 32) {
            crossbeam_deque::Steal::Success(v) => Got::Item(v),
            crossbeam_deque::Steal::Empty => Got::Empty,
            crossbeam_deque::Steal::Retry => Got::Retry,
        }
    }
}

macro_rules! st3_peer {
    ($name:ident, $flavor:ident) => {
        pub struct $name;

        impl Peer for $name {
            type W = st3::$flavor::Worker<u64>;
            type S = st3::$flavor::Stealer<u64>;
            fn worker(_fifo: bool, cap: usize) -> Self::W {
                Self::W::new(cap.max(64))
            }
            fn push(w: &Self::W, v: u64) {
                // Sized so that it never fills in these workloads.
                w.push(v).expect("st3 worker sized for the workload")
            }
            fn pop(w: &Self::W) -> Option<u64> {
                w.pop()
            }
            fn stealer(w: &Self::W) -> Self::S {
                w.stealer()
            }
            fn steal(s: &Self::S, local: &Self::W) -> Got {
                match s.steal_and_pop(local, |_| 1) {
                    Ok((v, _)) => Got::Item(v),
                    Err(st3::StealError::Empty) => Got::Empty,
                    Err(st3::StealError::Busy) => Got::Retry,
                }
            }
            fn steal_batch_and_pop(s: &Self::S, local: &Self::W) -> Got {
                match s.steal_and_pop(local, |n| n.div_ceil(2).min(32)) {
                    Ok((v, _)) => Got::Item(v),
                    Err(st3::StealError::Empty) => Got::Empty,
                    Err(st3::StealError::Busy) => Got::Retry,
                }
            }
        }
    };
}

st3_peer!(St3Lifo, lifo);
st3_peer!(St3Fifo, fifo);

/// The owner pushes one item and pops it, `n` times.
pub fn push_pop_pair<P: Peer>(n: u64, fifo: bool) -> Duration {
    let w = P::worker(fifo, 1024);
    let start = Instant::now();
    for i in 0..n {
        P::push(&w, i);
        black_box(P::pop(&w));
    }
    start.elapsed()
}

/// The cost of running one task: a short computation, so that thieves get scheduled
/// while the owner works (without it the owner empties its deque before a thief runs).
#[inline]
pub fn work(v: u64) {
    let mut x = v;
    for _ in 0..32 {
        x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    black_box(x);
}

/// The owner pushes `n` tasks, then pops and runs what is left, while `thieves`
/// threads steal tasks one at a time (`batch == false`) or in batches into their own
/// queue and run them. Returns the time and the number of tasks the thieves took.
pub fn owner_and_thieves<P: Peer>(
    n: u64,
    thieves: usize,
    fifo: bool,
    batch: bool,
) -> (Duration, u64) {
    let w = P::worker(fifo, n as usize);
    let done = Arc::new(AtomicBool::new(false));
    let stolen = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(thieves + 1));
    let handles: Vec<_> = (0..thieves)
        .map(|_| {
            let s = P::stealer(&w);
            let (done, stolen, barrier) = (done.clone(), stolen.clone(), barrier.clone());
            thread::spawn(move || {
                let local = P::worker(fifo, 1024);
                let mut mine = 0u64;
                let backoff = Backoff::new();
                barrier.wait();
                loop {
                    let got = if batch {
                        P::steal_batch_and_pop(&s, &local)
                    } else {
                        P::steal(&s, &local)
                    };
                    match got {
                        Got::Item(v) => {
                            work(v);
                            mine += 1;
                            while let Some(v) = P::pop(&local) {
                                work(v);
                                mine += 1;
                            }
                            backoff.reset();
                        }
                        Got::Retry => backoff.spin(),
                        Got::Empty => {
                            if done.load(Ordering::Acquire) {
                                break;
                            }
                            backoff.snooze();
                        }
                    }
                }
                stolen.fetch_add(mine, Ordering::Relaxed);
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for i in 0..n {
        P::push(&w, i);
    }
    while let Some(v) = P::pop(&w) {
        work(v);
    }
    done.store(true, Ordering::Release);
    for h in handles {
        h.join().unwrap();
    }
    let elapsed = start.elapsed();
    (elapsed, stolen.load(Ordering::Relaxed))
}

/// The global queue as the workloads see it.
pub trait InjPeer: Send + Sync + 'static {
    fn new() -> Self;
    fn push(&self, v: u64);
    fn steal(&self) -> Got;
}

impl InjPeer for atomkit::deque::Injector<u64> {
    fn new() -> Self {
        atomkit::deque::Injector::new()
    }
    fn push(&self, v: u64) {
        atomkit::deque::Injector::push(self, v)
    }
    fn steal(&self) -> Got {
        match atomkit::deque::Injector::steal(self) {
            atomkit::deque::Steal::Success(v) => Got::Item(v),
            atomkit::deque::Steal::Empty => Got::Empty,
            atomkit::deque::Steal::Retry => Got::Retry,
        }
    }
}

impl InjPeer for crossbeam_deque::Injector<u64> {
    fn new() -> Self {
        crossbeam_deque::Injector::new()
    }
    fn push(&self, v: u64) {
        crossbeam_deque::Injector::push(self, v)
    }
    fn steal(&self) -> Got {
        match crossbeam_deque::Injector::steal(self) {
            crossbeam_deque::Steal::Success(v) => Got::Item(v),
            crossbeam_deque::Steal::Empty => Got::Empty,
            crossbeam_deque::Steal::Retry => Got::Retry,
        }
    }
}

/// `producers` threads push `n` items in all, `consumers` threads steal them.
pub fn injector_mpmc<Q: InjPeer>(n: u64, producers: usize, consumers: usize) -> Duration {
    let q = Arc::new(Q::new());
    let taken = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(Barrier::new(producers + consumers + 1));
    let per = n / producers as u64;
    let total = per * producers as u64;
    let mut handles = Vec::new();
    for p in 0..producers as u64 {
        let (q, barrier) = (q.clone(), barrier.clone());
        handles.push(thread::spawn(move || {
            barrier.wait();
            for i in 0..per {
                q.push(p * per + i);
            }
        }));
    }
    for _ in 0..consumers {
        let (q, barrier, taken) = (q.clone(), barrier.clone(), taken.clone());
        handles.push(thread::spawn(move || {
            let backoff = Backoff::new();
            barrier.wait();
            while taken.load(Ordering::Relaxed) < total {
                match q.steal() {
                    Got::Item(v) => {
                        black_box(v);
                        taken.fetch_add(1, Ordering::Relaxed);
                        backoff.reset();
                    }
                    Got::Retry => backoff.spin(),
                    Got::Empty => backoff.snooze(),
                }
            }
        }));
    }
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        h.join().unwrap();
    }
    start.elapsed()
}

fn pair_contender<P: Peer>(name: &'static str, n: u64, fifo: bool) -> Contender {
    Contender::new(name, move || push_pop_pair::<P>(n, fifo))
}

/// Runs `owner_and_thieves` and prints the fraction stolen in every run (warm-up
/// included): on a loaded 2-core machine it swings with scheduling.
fn thieves_contender<P: Peer>(name: &'static str, n: u64, k: usize, batch: bool) -> Contender {
    Contender::new(name, move || {
        let (t, stolen) = owner_and_thieves::<P>(n, k, false, batch);
        let what = if batch { " batch" } else { "" };
        eprintln!(
            "    {name} owner+{k}{what}: {:.1}% stolen",
            100.0 * stolen as f64 / n as f64
        );
        t
    })
}

/// All scenarios of this primitive. The first contender of each is atomkit.
pub fn scenarios(scale: Scale) -> Vec<Scenario> {
    let pairs = scale.n(2_000_000);
    let n = scale.n(1_000_000);
    let mut v = vec![
        Scenario::new(
            "deque",
            "owner push+pop pair, LIFO",
            pairs,
            vec![
                pair_contender::<Atomkit>("atomkit", pairs, false),
                pair_contender::<Crossbeam>("crossbeam-deque", pairs, false),
                pair_contender::<St3Lifo>("st3", pairs, false),
            ],
        ),
        Scenario::new(
            "deque",
            "owner push+pop pair, FIFO",
            pairs,
            vec![
                pair_contender::<Atomkit>("atomkit", pairs, true),
                pair_contender::<Crossbeam>("crossbeam-deque", pairs, true),
                pair_contender::<St3Fifo>("st3", pairs, true),
            ],
        ),
    ];
    for (k, batch) in [(1, false), (3, false), (7, false), (1, true), (3, true)] {
        let what = if batch { "steal_batch" } else { "steal" };
        v.push(Scenario::new(
            "deque",
            format!("owner pushes {n}, {k} thieves {what} (LIFO)"),
            n,
            vec![
                thieves_contender::<Atomkit>("atomkit", n, k, batch),
                thieves_contender::<Crossbeam>("crossbeam-deque", n, k, batch),
                thieves_contender::<St3Lifo>("st3", n, k, batch),
            ],
        ));
    }
    for (p, c) in [(1, 1), (2, 2), (4, 4), (8, 8)] {
        v.push(Scenario::new(
            "deque",
            format!("injector {p}p{c}c"),
            n,
            vec![
                Contender::new("atomkit", move || {
                    injector_mpmc::<atomkit::deque::Injector<u64>>(n, p, c)
                }),
                Contender::new("crossbeam-deque", move || {
                    injector_mpmc::<crossbeam_deque::Injector<u64>>(n, p, c)
                }),
            ],
        ));
    }
    v
}
