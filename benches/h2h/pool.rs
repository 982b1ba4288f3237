//! Worker pools against their peers: 1,000,000 trivial jobs submitted from one thread
//! and completed by 2 workers, and by 8 (oversubscribing the 2 cores); and the
//! submit-to-start latency of one job at a time on an idle 2-worker pool.
//!
//! Peers: rayon's `ThreadPool::spawn`, the threadpool crate (`execute`), and
//! hand-rolled workers on a crossbeam-channel `bounded(1024)` of boxed closures (the
//! usual do-it-yourself pool). atomkit runs with its defaults (queue capacity 1024,
//! metrics on, one job in 32 timed) and blocking `execute` (fire and forget, as every
//! peer's call is); a second atomkit row uses `submit` and drops the handle at once, a
//! third turns timing off; a last row runs hand-rolled
//! workers on atomkit's own channel, to separate the queue's cost from the pool's. Every peer signals completion the same way
//! (each job bumps one shared counter; the producer spins, then yields, until it
//! reaches the total). Pool start and teardown are outside the timed region.

use crate::harness::{Contender, Scale, Scenario};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// The one interface every pool is driven through.
pub trait Pool: Sized + 'static {
    /// A pool of `workers` threads.
    fn start(workers: usize) -> Self;
    /// Queues a job (blocking if the pool's queue is bounded and full).
    fn spawn(&self, job: impl FnOnce() + Send + 'static);
    /// Stops the workers and waits for them.
    fn stop(self);
}

/// An atomkit pool of `workers` with queue capacity 1024; `sample_timing` as the
/// builder's (`None`: its default, one job in 32 timed).
fn atomkit_pool(workers: usize, sample_timing: Option<u32>) -> atomkit::pool::WorkerPool {
    let mut b = atomkit::pool::WorkerPool::builder()
        .workers(workers)
        .queue_capacity(1024);
    if let Some(n) = sample_timing {
        b = b.sample_timing(n);
    }
    b.build().unwrap()
}

/// atomkit with its defaults, fire and forget (`execute`, like every peer's call).
pub struct Atomkit(atomkit::pool::WorkerPool);

impl Pool for Atomkit {
    fn start(workers: usize) -> Self {
        Atomkit(atomkit_pool(workers, None))
    }
    fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        self.0.execute(job).unwrap();
    }
    fn stop(self) {
        self.0.shutdown_timeout(Duration::from_secs(60)).unwrap();
    }
}

/// atomkit with its defaults, `submit` with the handle dropped at once.
pub struct AtomkitSubmit(Atomkit);

impl Pool for AtomkitSubmit {
    fn start(workers: usize) -> Self {
        AtomkitSubmit(Atomkit::start(workers))
    }
    fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        drop(self.0 .0.submit(job).unwrap());
    }
    fn stop(self) {
        self.0.stop();
    }
}

/// atomkit with timing off (no clock reads at all), fire and forget.
pub struct AtomkitNoTiming(Atomkit);

impl Pool for AtomkitNoTiming {
    fn start(workers: usize) -> Self {
        AtomkitNoTiming(Atomkit(atomkit_pool(workers, Some(0))))
    }
    fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        self.0.spawn(job);
    }
    fn stop(self) {
        self.0.stop();
    }
}

/// rayon's `ThreadPool::spawn` (unbounded injector queue).
pub struct Rayon(rayon::ThreadPool);

impl Pool for Rayon {
    fn start(workers: usize) -> Self {
        Rayon(
            rayon::ThreadPoolBuilder::new()
                .num_threads(workers)
                .build()
                .unwrap(),
        )
    }
    fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        self.0.spawn(job);
    }
    fn stop(self) {
        drop(self.0);
    }
}

/// The threadpool crate (std mpsc channel behind a mutex, unbounded).
pub struct ThreadPoolCrate(threadpool::ThreadPool);

impl Pool for ThreadPoolCrate {
    fn start(workers: usize) -> Self {
        ThreadPoolCrate(threadpool::ThreadPool::new(workers))
    }
    fn spawn(&self, job: impl FnOnce() + Send + 'static) {
        self.0.execute(job);
    }
    fn stop(self) {
        self.0.join();
    }
}

type Boxed = Box<dyn FnOnce() + Send>;

/// Hand-rolled workers: `n` threads ranging over a `bounded(1024)` channel of boxed
/// closures from `$krate` (crossbeam-channel, or atomkit's own: the pool's queue
/// without the pool).
macro_rules! channel_workers {
    ($(#[$doc:meta])* $name:ident, $krate:ident) => {
        $(#[$doc])*
        pub struct $name {
            tx: $krate::Sender<Boxed>,
            workers: Vec<thread::JoinHandle<()>>,
        }

        impl Pool for $name {
            fn start(workers: usize) -> Self {
                let (tx, rx) = $krate::bounded::<Boxed>(1024);
                let workers = (0..workers)
                    .map(|_| {
                        let rx = rx.clone();
                        thread::spawn(move || {
                            for job in rx.iter() {
                                job();
                            }
                        })
                    })
                    .collect();
                $name { tx, workers }
            }
            fn spawn(&self, job: impl FnOnce() + Send + 'static) {
                self.tx.send(Box::new(job)).unwrap();
            }
            fn stop(self) {
                drop(self.tx);
                for w in self.workers {
                    w.join().unwrap();
                }
            }
        }
    };
}

channel_workers!(
    /// Hand-rolled workers on a crossbeam-channel `bounded(1024)`.
    Crossbeam,
    crossbeam_channel
);
use atomkit::channel as atomkit_channel;
channel_workers!(
    /// Hand-rolled workers on atomkit's own `channel::bounded(1024)`.
    AtomkitChannel,
    atomkit_channel
);

/// Spins, then yields, until `c` reads `want`.
fn await_count(c: &AtomicU64, want: u64) {
    let mut spins = 0u32;
    while c.load(Ordering::Acquire) != want {
        spins += 1;
        if spins % 64 == 0 {
            thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

/// A counter that lives for the rest of the process (8 bytes per run), so jobs can
/// reach it without an `Arc` clone each.
fn counter() -> &'static AtomicU64 {
    Box::leak(Box::new(AtomicU64::new(0)))
}

/// `jobs` trivial jobs from one producer, `workers` workers; time from the first
/// submit to the last completion.
pub fn throughput<P: Pool>(workers: usize, jobs: u64) -> Duration {
    let pool = P::start(workers);
    let done = counter();
    let start = Instant::now();
    for i in 0..jobs {
        pool.spawn(move || {
            black_box(i);
            done.fetch_add(1, Ordering::Release);
        });
    }
    await_count(done, jobs);
    let elapsed = start.elapsed();
    pool.stop();
    elapsed
}

/// `jobs` jobs one at a time on an idle pool; returns the summed time from just before
/// each submit to the moment the job starts.
pub fn latency<P: Pool>(workers: usize, jobs: u64) -> Duration {
    let pool = P::start(workers);
    let started = counter();
    let mut total = Duration::ZERO;
    for _ in 0..jobs {
        started.store(0, Ordering::Relaxed);
        let t0 = Instant::now();
        pool.spawn(move || {
            let ns = t0.elapsed().as_nanos() as u64;
            started.store(ns + 1, Ordering::Release);
        });
        let mut spins = 0u32;
        let ns = loop {
            let v = started.load(Ordering::Acquire);
            if v != 0 {
                break v - 1;
            }
            spins += 1;
            if spins % 64 == 0 {
                thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        };
        total += Duration::from_nanos(ns);
    }
    pool.stop();
    total
}

/// The peers in report order, atomkit first.
macro_rules! contenders {
    ($f:ident $(, $arg:expr)*) => {
        vec![
            Contender::new("atomkit", move || $f::<Atomkit>($($arg),*)),
            Contender::new("atomkit submit, handle dropped", move || $f::<AtomkitSubmit>($($arg),*)),
            Contender::new("atomkit, timing off", move || $f::<AtomkitNoTiming>($($arg),*)),
            Contender::new("rayon ThreadPool::spawn", move || $f::<Rayon>($($arg),*)),
            Contender::new("threadpool", move || $f::<ThreadPoolCrate>($($arg),*)),
            Contender::new("crossbeam-channel workers", move || $f::<Crossbeam>($($arg),*)),
            Contender::new("atomkit-channel workers", move || $f::<AtomkitChannel>($($arg),*)),
        ]
    };
}

/// All pool scenarios. The first contender of each is atomkit.
pub fn scenarios(scale: Scale) -> Vec<Scenario> {
    let jobs = scale.n(1_000_000);
    let lat = scale.n(20_000);
    let mut v = Vec::new();
    for workers in [2usize, 8] {
        v.push(Scenario::new(
            "pool",
            format!("{jobs} trivial jobs, 1 producer, {workers} workers"),
            jobs,
            contenders!(throughput, workers, jobs),
        ));
    }
    v.push(Scenario::new(
        "pool",
        format!("submit-to-start latency, idle, 2 workers, {lat} jobs one at a time"),
        lat,
        contenders!(latency, 2, lat),
    ));
    v
}
