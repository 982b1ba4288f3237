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
use atomkit::signal::Signal;
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

/// Weighted acquires that are cancelled (a `Signal` closing) or time out just as
/// permits are released, added and forgotten: every acquirer returns, the permits
/// held never exceed what exists, and at the end nothing was lost or created:
/// available == initial + added - forgotten.
#[test]
fn cancelled_and_timed_out_acquires_conserve_permits() {
    both(10_000, || {
        const INIT: usize = 3;
        let sem = Arc::new(Semaphore::new(INIT));
        let stop = Signal::new();
        let held = Arc::new(AtomicUsize::new(0));
        let forgotten = Arc::new(AtomicUsize::new(0));
        let ts: Vec<_> = (0..3)
            .map(|i| {
                let (sem, stop, held) = (sem.clone(), stop.clone(), held.clone());
                let forgotten = forgotten.clone();
                thread::spawn(move || {
                    for _ in 0..2 {
                        let got = match i {
                            0 => sem.acquire_many_until(2, &stop).map_err(|e| {
                                assert!(e.is_cancelled(), "{e}");
                            }),
                            1 => sem
                                .acquire_many_timeout(3, Duration::from_millis(1))
                                .map_err(|e| assert!(e.is_timeout(), "{e}")),
                            _ => {
                                // A unit holder that also adds one permit and
                                // forgets one, so the total moves under the others.
                                let p = sem.acquire().unwrap();
                                sem.add_permits(1);
                                forgotten.fetch_add(sem.forget_permits(1), Ordering::SeqCst);
                                Ok(p)
                            }
                        };
                        if let Ok(p) = got {
                            let n = p.num_permits();
                            // Adds and forgets balance only over time, so bound by
                            // the most there can ever be: INIT + the 2 adds.
                            let h = held.fetch_add(n, Ordering::SeqCst) + n;
                            assert!(h <= INIT + 2, "{h} permits held");
                            held.fetch_sub(n, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        thread::yield_now();
        stop.close();
        for t in ts {
            t.join().unwrap();
        }
        let total = INIT + 2 - forgotten.load(Ordering::SeqCst);
        assert_eq!(sem.available_permits(), total);
        assert!(sem.try_acquire_many(total).is_ok());
    });
}

/// A weighted waiter that may turn hungry is cancelled (its `Signal` closes), or
/// times out, while a unit waiter sleeps behind it and a barging thread releases and
/// re-takes a permit: the unit waiter must be woken when the weighted one leaves (a
/// permit is free, and nobody else will wake it), so every thread finishes (a lost
/// wake-up is a shuttle deadlock).
#[test]
fn unit_waiter_behind_cancelled_weighted_waiter_is_woken() {
    for timed in [false, true] {
        both(10_000, move || {
            let sem = Arc::new(Semaphore::new(2));
            let p = sem.acquire().unwrap();
            let stop = Signal::new();
            let heavy = {
                let (sem, stop) = (sem.clone(), stop.clone());
                // It may get both permits (and give them back); it must not hang.
                thread::spawn(move || {
                    if timed {
                        drop(sem.acquire_many_timeout(2, Duration::from_millis(1)));
                    } else {
                        drop(sem.acquire_many_until(2, &stop));
                    }
                })
            };
            let unit = {
                let sem = sem.clone();
                thread::spawn(move || sem.acquire().unwrap().forget())
            };
            // Release and re-take, as a barging acquirer would: wakes the heavy
            // waiter for nothing, so it may turn hungry and hold the unit waiter back.
            drop(p);
            let p2 = sem.try_acquire().ok();
            stop.close();
            heavy.join().unwrap();
            unit.join().unwrap();
            drop(p2);
            // The unit waiter forgot one permit; the other came back.
            assert_eq!(sem.available_permits(), 1);
        });
    }
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
