//! shuttle tests of `Semaphore`: more threads, weights, timeouts and closes than loom
//! can explore, under random and PCT schedules. shuttle runs every atomic as SeqCst,
//! so these find lost wake-ups and logic races, not weak-memory bugs (the loom models
//! do that).
//!
//! Run: `RUSTFLAGS="--cfg atomkit_shuttle" cargo test --release -p atomkit-loom-tests --test shuttle_semaphore`
//! (or `cargo xtask shuttle`).
#![cfg(atomkit_shuttle)]

#[path = "../../tests/support/lincheck.rs"]
mod lincheck;

use atomkit::semaphore::{Semaphore, TryAcquireError};
use atomkit_loom_tests::shuttle_iters;
use lincheck::{check, Model, Recorder};
use shuttle::sync::atomic::{AtomicUsize, Ordering};
use shuttle::sync::Arc;
use shuttle::thread;
use std::time::Duration;

fn both(iters: usize, f: impl Fn() + Send + Sync + 'static) {
    let f = std::sync::Arc::new(f);
    let g = f.clone();
    shuttle::check_random(move || g(), shuttle_iters(iters));
    shuttle::check_pct(move || f(), shuttle_iters(iters), 3);
}

/// Weighted blocking and timed acquirers on 3 permits: the permits held never exceed
/// the total, everybody finishes, and every permit comes back.
#[test]
fn weighted_acquirers_and_timeouts() {
    both(10_000, || {
        const TOTAL: usize = 3;
        let sem = Arc::new(Semaphore::new(TOTAL));
        let held = Arc::new(AtomicUsize::new(0));
        let ts: Vec<_> = (0..4)
            .map(|i| {
                let (sem, held) = (sem.clone(), held.clone());
                thread::spawn(move || {
                    let n = [1, 2, 3, 1][i];
                    for _ in 0..2 {
                        let p = if i % 2 == 0 {
                            sem.acquire_many(n).unwrap()
                        } else {
                            match sem.acquire_many_timeout(n, Duration::from_millis(1)) {
                                Ok(p) => p,
                                Err(e) => {
                                    assert!(e.is_timeout());
                                    continue;
                                }
                            }
                        };
                        let h = held.fetch_add(n, Ordering::SeqCst) + n;
                        assert!(h <= TOTAL, "{h} of {TOTAL} permits held");
                        held.fetch_sub(n, Ordering::SeqCst);
                        drop(p);
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(sem.available_permits(), TOTAL);
    });
}

/// Blocking, timed and weighted acquirers while another thread closes: every
/// acquirer returns (a permit, `Closed` or `Timeout`), the permits held never exceed
/// the total, and at the end held (none) + available == total.
#[test]
fn closes_racing_acquirers() {
    both(10_000, || {
        const TOTAL: usize = 2;
        let sem = Arc::new(Semaphore::new(TOTAL));
        let held = Arc::new(AtomicUsize::new(0));
        let ts: Vec<_> = (0..3)
            .map(|i| {
                let (sem, held) = (sem.clone(), held.clone());
                thread::spawn(move || {
                    for _ in 0..3 {
                        let r = match i {
                            0 => sem.acquire().map_err(|e| e.is_closed()),
                            1 => sem.acquire_many(2).map_err(|e| e.is_closed()),
                            _ => sem
                                .acquire_timeout(Duration::from_millis(1))
                                .map_err(|e| e.is_closed() || e.is_timeout()),
                        };
                        match r {
                            Ok(p) => {
                                let n = p.num_permits();
                                let h = held.fetch_add(n, Ordering::SeqCst) + n;
                                assert!(h <= TOTAL, "{h} of {TOTAL} permits held");
                                held.fetch_sub(n, Ordering::SeqCst);
                            }
                            Err(expected) => assert!(expected),
                        }
                    }
                })
            })
            .collect();
        thread::yield_now();
        sem.close();
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(sem.available_permits(), TOTAL);
    });
}

/// Releases racing sleepers with a permit forgotten and one added: each sleeper gets
/// exactly one permit, none is lost.
#[test]
fn sleepers_and_add_permits() {
    both(10_000, || {
        let sem = Arc::new(Semaphore::new(1));
        let ts: Vec<_> = (0..3)
            .map(|_| {
                let sem = sem.clone();
                thread::spawn(move || sem.acquire().unwrap().forget())
            })
            .collect();
        sem.add_permits(1);
        sem.add_permits(1);
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(sem.available_permits(), 0);
    });
}

/// The sequential counter a semaphore must look like.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Counter {
    avail: usize,
}

#[derive(Clone, Debug)]
enum Op {
    TryAcquire(usize),
    Release(usize),
    Add(usize),
    Forget(usize),
}

#[derive(Clone, Debug, PartialEq)]
enum Ret {
    Got(bool),
    Unit,
    Forgot(usize),
}

impl Model for Counter {
    type Op = Op;
    type Ret = Ret;
    fn step(&mut self, op: &Op) -> Ret {
        match *op {
            Op::TryAcquire(n) => {
                let ok = self.avail >= n;
                if ok {
                    self.avail -= n;
                }
                Ret::Got(ok)
            }
            Op::Release(n) | Op::Add(n) => {
                self.avail += n;
                Ret::Unit
            }
            Op::Forget(n) => {
                let k = n.min(self.avail);
                self.avail -= k;
                Ret::Forgot(k)
            }
        }
    }
}

/// try_acquire / release / add / forget histories from 3 threads are linearizable
/// against a plain counter (no blocking waiter exists, so the hungry bit never
/// refuses a free permit here).
#[test]
fn try_acquire_release_linearizable() {
    both(2_000, || {
        let sem = Arc::new(Semaphore::new(2));
        let rec = std::sync::Arc::new(Recorder::<Op, Ret>::default());
        let ts: Vec<_> = (0..3)
            .map(|t| {
                let (sem, rec) = (sem.clone(), rec.clone());
                thread::spawn(move || {
                    for k in 0..3 {
                        let n = 1 + (t + k) % 2;
                        let mut held = None;
                        rec.record(t, Op::TryAcquire(n), || match sem.try_acquire_many(n) {
                            Ok(p) => {
                                held = Some(p);
                                Ret::Got(true)
                            }
                            Err(TryAcquireError::NoPermits) => Ret::Got(false),
                            Err(e) => panic!("{e}"),
                        });
                        if let Some(permit) = held {
                            // The permit's own release: dropping it.
                            rec.record(t, Op::Release(n), || {
                                drop(permit);
                                Ret::Unit
                            });
                        } else if t == 2 {
                            rec.record(t, Op::Add(1), || {
                                sem.add_permits(1);
                                Ret::Unit
                            });
                        } else {
                            rec.record(t, Op::Forget(1), || Ret::Forgot(sem.forget_permits(1)));
                        }
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        let history = rec.history();
        if let Err(msg) = check(Counter { avail: 2 }, &history) {
            panic!("{msg}");
        }
    });
}
