//! Semaphore against its peers: the uncontended acquire+release pair, and 2, 4 and 8
//! threads each doing 200,000 blocking acquire/release cycles on 2 permits (4 and 8
//! threads oversubscribe the 2 cores).
//!
//! Peers: tokio's `Semaphore` (`try_acquire` for the uncontended pair; blocking use
//! through a current-thread runtime per thread), async-lock's `Semaphore`
//! (`try_acquire` / `acquire_blocking`), and two counting semaphores written here in a
//! few lines, on `std::sync::{Mutex, Condvar}` and on parking_lot's, which notify only
//! when someone waits.

use crate::harness::{Contender, Scale, Scenario};
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// The one interface every peer is driven through.
pub trait Sem: Send + Sync + 'static {
    /// A semaphore with `n` permits.
    fn with_permits(n: usize) -> Self;
    /// Non-blocking acquire then release; true if a permit was taken.
    fn try_pair(&self) -> bool;
    /// Blocking acquire, then release.
    fn cycle(&self);
}

impl Sem for atomkit::semaphore::Semaphore {
    fn with_permits(n: usize) -> Self {
        Self::new(n)
    }
    fn try_pair(&self) -> bool {
        self.try_acquire().is_ok()
    }
    fn cycle(&self) {
        drop(black_box(self.acquire().unwrap()));
    }
}

/// tokio's semaphore; blocking use goes through this thread's current-thread runtime.
pub struct Tokio(tokio::sync::Semaphore);

thread_local! {
    static RT: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("current-thread runtime");
}

impl Sem for Tokio {
    fn with_permits(n: usize) -> Self {
        Tokio(tokio::sync::Semaphore::new(n))
    }
    fn try_pair(&self) -> bool {
        self.0.try_acquire().is_ok()
    }
    fn cycle(&self) {
        RT.with(|rt| drop(black_box(rt.block_on(self.0.acquire()).unwrap())));
    }
}

/// async-lock's semaphore.
pub struct AsyncLock(async_lock::Semaphore);

impl Sem for AsyncLock {
    fn with_permits(n: usize) -> Self {
        AsyncLock(async_lock::Semaphore::new(n))
    }
    fn try_pair(&self) -> bool {
        self.0.try_acquire().is_some()
    }
    fn cycle(&self) {
        drop(black_box(self.0.acquire_blocking()));
    }
}

/// A counting semaphore on `std::sync::{Mutex, Condvar}`: (available, sleepers);
/// notifies only when someone sleeps.
pub struct StdCondvar {
    m: std::sync::Mutex<(usize, usize)>,
    cv: std::sync::Condvar,
}

impl Sem for StdCondvar {
    fn with_permits(n: usize) -> Self {
        StdCondvar {
            m: std::sync::Mutex::new((n, 0)),
            cv: std::sync::Condvar::new(),
        }
    }
    fn try_pair(&self) -> bool {
        let mut g = self.m.lock().unwrap();
        if g.0 == 0 {
            return false;
        }
        g.0 -= 1;
        drop(g);
        self.release();
        true
    }
    fn cycle(&self) {
        let mut g = self.m.lock().unwrap();
        while g.0 == 0 {
            g.1 += 1;
            g = self.cv.wait(g).unwrap();
            g.1 -= 1;
        }
        g.0 -= 1;
        drop(g);
        self.release();
    }
}

impl StdCondvar {
    fn release(&self) {
        let mut g = self.m.lock().unwrap();
        g.0 += 1;
        let wake = g.1 > 0;
        drop(g);
        if wake {
            self.cv.notify_one();
        }
    }
}

/// The same on parking_lot's `Mutex` and `Condvar`.
pub struct ParkingLot {
    m: parking_lot::Mutex<(usize, usize)>,
    cv: parking_lot::Condvar,
}

impl Sem for ParkingLot {
    fn with_permits(n: usize) -> Self {
        ParkingLot {
            m: parking_lot::Mutex::new((n, 0)),
            cv: parking_lot::Condvar::new(),
        }
    }
    fn try_pair(&self) -> bool {
        let mut g = self.m.lock();
        if g.0 == 0 {
            return false;
        }
        g.0 -= 1;
        drop(g);
        self.release();
        true
    }
    fn cycle(&self) {
        let mut g = self.m.lock();
        while g.0 == 0 {
            g.1 += 1;
            self.cv.wait(&mut g);
            g.1 -= 1;
        }
        g.0 -= 1;
        drop(g);
        self.release();
    }
}

impl ParkingLot {
    fn release(&self) {
        let mut g = self.m.lock();
        g.0 += 1;
        let wake = g.1 > 0;
        drop(g);
        if wake {
            self.cv.notify_one();
        }
    }
}

/// `n` uncontended acquire+release pairs on one thread.
pub fn uncontended<S: Sem>(n: u64) -> Duration {
    let s = S::with_permits(1);
    let start = Instant::now();
    let mut ok = 0u64;
    for _ in 0..n {
        ok += black_box(&s).try_pair() as u64;
    }
    let t = start.elapsed();
    assert_eq!(black_box(ok), n);
    t
}

/// `threads` threads, each doing `per_thread` blocking cycles on 2 permits.
pub fn contended<S: Sem>(threads: usize, per_thread: u64) -> Duration {
    let s = Arc::new(S::with_permits(2));
    let barrier = Arc::new(Barrier::new(threads + 1));
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            let (s, barrier) = (s.clone(), barrier.clone());
            thread::spawn(move || {
                barrier.wait();
                for _ in 0..per_thread {
                    s.cycle();
                }
            })
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in hs {
        h.join().unwrap();
    }
    start.elapsed()
}

/// The peers in report order, atomkit first.
macro_rules! contenders {
    ($f:ident $(, $arg:expr)*) => {
        vec![
            Contender::new("atomkit", move || $f::<atomkit::semaphore::Semaphore>($($arg),*)),
            Contender::new("tokio Semaphore", move || $f::<Tokio>($($arg),*)),
            Contender::new("async-lock Semaphore", move || $f::<AsyncLock>($($arg),*)),
            Contender::new("std Mutex+Condvar", move || $f::<StdCondvar>($($arg),*)),
            Contender::new("parking_lot Mutex+Condvar", move || $f::<ParkingLot>($($arg),*)),
        ]
    };
}

/// All semaphore scenarios. The first contender of each is atomkit.
pub fn scenarios(scale: Scale) -> Vec<Scenario> {
    let pairs = scale.n(10_000_000);
    // Per thread: at 20,000 cycles (a tenth of the old full size) a round took less
    // than a thread's wake-up from the start barrier, so it measured scheduling; this
    // keeps every round at several milliseconds even in quick mode.
    let per = scale.n(2_000_000);
    let mut v = vec![Scenario::new(
        "semaphore",
        "uncontended acquire+release (try_acquire for async peers)",
        pairs,
        contenders!(uncontended, pairs),
    )];
    for threads in [2usize, 4, 8] {
        v.push(Scenario::new(
            "semaphore",
            format!("{threads} threads x {per} cycles, 2 permits"),
            per * threads as u64,
            contenders!(contended, threads, per),
        ));
    }
    v
}
