//! shuttle tests of `ArrayQueue`: more threads and operations than loom can explore,
//! under random and PCT schedules, each history checked for linearizability against a
//! sequential FIFO. shuttle runs every atomic as SeqCst, so these find logic races
//! (lost, duplicated or reordered values), not weak-memory bugs (the loom models do
//! that).
//!
//! Run: `RUSTFLAGS="--cfg atomkit_shuttle" cargo test --release -p atomkit-loom-tests --test shuttle_queue`
//! (or `cargo xtask shuttle`).
#![cfg(atomkit_shuttle)]

#[path = "../../tests/support/lincheck.rs"]
mod lincheck;

use atomkit::queue::ArrayQueue;
use atomkit_loom_tests::shuttle_iters;
use lincheck::{check, Model, Recorder};
use shuttle::sync::Arc;
use shuttle::thread;
use std::collections::VecDeque;

fn both(iters: usize, f: impl Fn() + Send + Sync + 'static) {
    let f = std::sync::Arc::new(f);
    let g = f.clone();
    shuttle::check_random(move || g(), shuttle_iters(iters));
    shuttle::check_pct(move || f(), shuttle_iters(iters), 3);
}

/// The sequential specification: a FIFO of capacity `cap`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Fifo {
    cap: usize,
    items: VecDeque<u64>,
}

#[derive(Clone, Debug)]
enum Op {
    Push(u64),
    Pop,
}

impl Model for Fifo {
    type Op = Op;
    type Ret = Result<Option<u64>, u64>;
    fn step(&mut self, op: &Op) -> Self::Ret {
        match *op {
            Op::Push(v) if self.items.len() < self.cap => {
                self.items.push_back(v);
                Ok(None)
            }
            Op::Push(v) => Err(v),
            Op::Pop => Ok(self.items.pop_front()),
        }
    }
}

/// `threads` threads each run `ops` operations (even threads mostly push, odd ones
/// mostly pop) on a queue large enough never to fill; the history must linearize.
fn linearizable(threads: u64, ops: u64, cap: usize) {
    let q = Arc::new(ArrayQueue::new(cap));
    let rec = std::sync::Arc::new(Recorder::default());
    let hs: Vec<_> = (0..threads)
        .map(|t| {
            let (q, rec) = (q.clone(), rec.clone());
            thread::spawn(move || {
                for i in 0..ops {
                    if (t + i) % 3 != 2 && t % 2 == 0 || (t + i) % 3 == 0 {
                        let v = t * 100 + i;
                        let _ = rec.record(t as usize, Op::Push(v), || q.push(v).map(|()| None));
                    } else {
                        let _ = rec.record(t as usize, Op::Pop, || Ok(q.pop()));
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let history = rec.history();
    let init = Fifo {
        cap,
        items: VecDeque::new(),
    };
    if let Err(e) = check(init, &history) {
        panic!("{e}");
    }
}

#[test]
fn three_threads_linearizable() {
    both(3_000, || linearizable(3, 4, 16));
}

#[test]
fn four_threads_linearizable_small_ring() {
    // Capacity 12 rounds up to 16 (32 ring entries); 12 pushes at most never fill it.
    both(2_000, || linearizable(4, 3, 12));
}

/// Producers and consumers at capacity 1 and 2, waiting (yielding) on full and empty:
/// every value arrives exactly once, and per-producer order holds for each consumer.
fn transfer(producers: u64, consumers: u64, cap: usize, per: u64) {
    let q = Arc::new(ArrayQueue::new(cap));
    let total = producers * per;
    let taken = Arc::new(shuttle::sync::atomic::AtomicU64::new(0));
    let ps: Vec<_> = (0..producers)
        .map(|p| {
            let q = q.clone();
            thread::spawn(move || {
                for i in 0..per {
                    let mut v = p << 16 | i;
                    while let Err(back) = q.push(v) {
                        v = back;
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    let cs: Vec<_> = (0..consumers)
        .map(|_| {
            let (q, taken) = (q.clone(), taken.clone());
            thread::spawn(move || {
                use shuttle::sync::atomic::Ordering::SeqCst;
                let mut got = Vec::new();
                while taken.load(SeqCst) < total {
                    match q.pop() {
                        Some(v) => {
                            taken.fetch_add(1, SeqCst);
                            got.push(v);
                        }
                        None => thread::yield_now(),
                    }
                }
                got
            })
        })
        .collect();
    for p in ps {
        p.join().unwrap();
    }
    let mut all = Vec::new();
    for c in cs {
        let got = c.join().unwrap();
        for p in 0..producers {
            let mine: Vec<u64> = got.iter().copied().filter(|v| v >> 16 == p).collect();
            assert!(
                mine.windows(2).all(|w| w[0] < w[1]),
                "producer {p} reordered: {mine:?}"
            );
        }
        all.extend(got);
    }
    all.sort_unstable();
    let want: Vec<u64> = (0..producers)
        .flat_map(|p| (0..per).map(move |i| p << 16 | i))
        .collect();
    assert_eq!(all, want);
    assert_eq!(q.pop(), None);
}

#[test]
fn mpmc_cap1() {
    both(2_000, || transfer(2, 2, 1, 3));
}

#[test]
fn mpmc_cap2_three_producers() {
    both(2_000, || transfer(3, 1, 2, 3));
}

/// `force_push` racing pushes and pops at capacity 2: nothing lost or duplicated.
#[test]
fn force_push_conserves_values() {
    both(2_000, || {
        let q = Arc::new(ArrayQueue::new(2));
        let hs: Vec<_> = (0..3u64)
            .map(|t| {
                let q = q.clone();
                thread::spawn(move || {
                    let mut out = Vec::new();
                    for i in 0..3 {
                        let v = t * 10 + i;
                        match t {
                            0 => out.extend(q.force_push(v)),
                            1 => {
                                if let Err(v) = q.push(v) {
                                    out.push(v);
                                }
                            }
                            _ => out.extend(q.pop()),
                        }
                    }
                    out
                })
            })
            .collect();
        let mut all: Vec<u64> = hs.into_iter().flat_map(|h| h.join().unwrap()).collect();
        all.extend(Arc::try_unwrap(q).ok().unwrap());
        all.sort_unstable();
        assert_eq!(all, [0, 1, 2, 10, 11, 12]);
    });
}
