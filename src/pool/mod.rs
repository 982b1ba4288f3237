//! A fixed pool of worker threads pulling jobs from a bounded queue: backpressure,
//! retry with backoff, panics as results, and shutdown within a deadline.
//!
//! This is the pool every Go service ends up writing: `n` workers ranging over a
//! buffered channel of jobs, a full channel pushing back on producers, a `done`
//! channel to stop them, and a `WaitGroup` with a timer for a graceful exit.
//!
//! - **Backpressure.** The queue is bounded. [`try_submit`](WorkerPool::try_submit)
//!   hands the job back with [`SubmitError::Full`] instead of blocking;
//!   [`submit`](WorkerPool::submit) blocks while the queue is full;
//!   [`submit_timeout`](WorkerPool::submit_timeout),
//!   [`submit_deadline`](WorkerPool::submit_deadline) and
//!   [`submit_until`](WorkerPool::submit_until) block for a while;
//!   [`submit_with_retry`](WorkerPool::submit_with_retry) retries a full queue with
//!   exponential [`Backoff`] and jitter; [`execute`](WorkerPool::execute) blocks like
//!   `submit` but returns no handle (fire and forget).
//! - **Jobs** are closures `FnOnce() -> T`, or `FnOnce(&Signal) -> T` wrapped by
//!   [`with_signal`] to see the pool's cancellation [`Signal`] (any [`Job`] works).
//!   Each submit returns a [`JobHandle`]; [`join`](JobHandle::join) gives the value,
//!   or [`JobError::Panicked`] / [`JobError::Cancelled`]. Dropping the handle detaches
//!   the job: it still runs. A panic is caught on the worker, which goes on.
//! - **Shutdown.** [`shutdown`](WorkerPool::shutdown) stops intake, lets queued and
//!   running jobs finish, and returns a [`ShutdownReport`]; if the deadline passes
//!   with jobs queued or running, it closes the pool's signal, cancels the jobs that
//!   never started (their handles say [`JobError::Cancelled`]) and returns
//!   [`ShutdownTimedOut`] with the count of jobs still running (an idle pool has
//!   nothing to cut short: `Ok`, even with a deadline already past). Called from
//!   one of the pool's own jobs, it does not wait for that job (see
//!   [`shutdown`](WorkerPool::shutdown)).
//!   [`shutdown_now`](WorkerPool::shutdown_now) cancels at once.
//! - **Drop does not block.** Dropping a pool closes intake and returns; the workers
//!   finish the queued jobs and exit on their own (Rust API guideline C-DTOR-BLOCK).
//!   Call `shutdown` to wait.
//! - **Metrics** ([`metrics`](WorkerPool::metrics)): queued, running, completed,
//!   panicked, cancelled, rejected, total wait and run time. Each worker writes its
//!   own cache line, without read-modify-writes. Times are measured on a sample of
//!   the jobs (one in 32 by default, [`Builder::sample_timing`]), because a clock
//!   read costs tens of nanoseconds on some machines and a timed job needs three.
//!
//! ```
//! use atomkit::pool::{SubmitError, WorkerPool};
//! use std::time::{Duration, Instant};
//!
//! let pool = WorkerPool::builder()
//!     .workers(4)
//!     .queue_capacity(64)
//!     .thread_name("resize")
//!     .build()
//!     .unwrap();
//! let mut handles = Vec::new();
//! for i in 0..100u64 {
//!     let job = move || i * i;
//!     match pool.try_submit(job) {
//!         Ok(h) => handles.push(h),
//!         // Backpressure: the queue is full. Here we wait; a server might shed load.
//!         Err(SubmitError::Full(job)) => handles.push(pool.submit(job).unwrap()),
//!         Err(SubmitError::ShutDown(_)) => unreachable!(),
//!     }
//! }
//! let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
//! assert_eq!(sum, (0..100).map(|i| i * i).sum());
//! let report = pool.shutdown(Instant::now() + Duration::from_secs(5)).unwrap();
//! assert_eq!(report.completed, 100);
//! ```
//!
//! # Implementation
//!
//! The queue is a bounded [`channel`](crate::channel::bounded) of type-erased tasks; the
//! workers loop on `recv` until it reports the channel closed and drained. A task is
//! one allocation, an `Arc` shared by the queue entry and the [`JobHandle`]: the job
//! (`Option<J>`), the result slot, and the submit time. The queue carries it as a
//! trait object; the handle finds its typed result slot through `Any` (a type-id
//! compare). Per job: one allocation, the channel's send and receive, three `Arc`
//! reference-count changes, and one read-modify-write on the slot; no lock. A job
//! whose handle is gone by the time it finishes (dropped, or never made) skips
//! the slot's read-modify-write: a worker that sees the task's reference count at 1
//! holds the last reference, and no handle can appear again (handles are never
//! cloned), so it only stores the result, which drops with the task.
//!
//! A job given to [`execute`](WorkerPool::execute) has no handle and so needs no
//! result slot: if it fits in five words with at most a word's alignment (a closure
//! capturing an `Arc` and a few integers does), it travels *inline* in the queue
//! entry, its bytes next to a pointer to a static table of its type's functions (run
//! it, drop it, name its type), and costs no allocation at all. The worker moves it
//! out, runs it (catching a panic), counts the outcome and drops the result, as it
//! would for a task. Every drop of a job, a result or a panic payload on a worker or
//! in `shutdown` goes through `drop_quietly`, which catches a panicking `Drop` and
//! also one in the `Drop` of that panic's payload. A bigger job gets a task
//! like any other. The allocation and the cross-thread free were a third of a
//! trivial job's cost; every peer allocates per job.
//!
//! The result slot's state word, also the futex word a joining handle sleeps on:
//!
//! | bit | name      | set by | meaning |
//! |-----|-----------|--------|---------|
//! | 0   | `DONE`    | the task's owner, once (`fetch_or`) | the result is written |
//! | 1   | `WAITING` | the handle (CAS), before it sleeps | wake me when done |
//!
//! The pool's shared state: the cancellation [`Signal`] (closed past a shutdown
//! deadline), a `stopping` signal (closed when intake closes, to cut a retry's
//! sleep short), `live` (workers not yet exited; the futex word `shutdown` sleeps
//! on, woken when it reaches 1 and 0), and one cache-padded block of counters per
//! worker, written only by it. A worker thread also notes its pool's address in a
//! thread-local while it works, so that a shutdown called from one of the pool's own
//! jobs waits for every worker but that one.
//!
//! Invariants:
//!
//! 1. **Intake is the channel.** A submit is accepted exactly when its send
//!    succeeds. Shutdown and drop close the channel, after which every send fails
//!    and hands the task back ([`SubmitError::ShutDown`] and friends); the channel
//!    delivers every accepted task to exactly one receive.
//! 2. **One owner per task.** The submitter owns a task until its send succeeds (and
//!    again if it is refused: it takes the job back out); then the thread whose
//!    receive returns it (a worker, or the shutdown's drain). Only the owner touches
//!    the job cell, and it calls exactly one of `run` or `cancel`, once. An inline
//!    job is owned the same way, by value: it is moved out once (run, or taken
//!    back) or dropped once with its queue entry.
//! 3. **The result is written once, before `DONE`.** The owner writes the slot, then
//!    sets `DONE`; the handle reads the slot only after seeing `DONE`, and takes the
//!    value at most once (`join` consumes the handle).
//! 4. **Every accepted task is run or cancelled.** Workers receive until the
//!    channel is closed *and drained*, so closing intake never strands a task. Past
//!    the shutdown deadline the cancellation signal is closed first; a worker that
//!    then receives a task cancels it instead of running it, and the shutdown drains
//!    and cancels what is left. A task is never dropped unrun while its handle lives
//!    (the handle keeps it alive), so a `join` always returns.
//! 5. **Counters before results.** A worker updates its counters before it sets
//!    `DONE`, so a joined job is already counted in [`metrics`](WorkerPool::metrics).
//!
//! ## Memory orderings
//!
//! - Submitter to worker: the channel's send/receive pair (its own Release/Acquire)
//!   makes the task's construction visible to the worker that receives it.
//! - `DONE` is set by a `Release` `fetch_or`; the handle's loads are `Acquire`, so a
//!   handle that sees `DONE` sees the value. `WAITING` is set by a `Relaxed` CAS: it
//!   and the `fetch_or` are read-modify-writes of one word, so whichever is second
//!   sees the other, and a sleeping handle is always woken (the futex compares).
//! - A worker leaves with a `Release` `fetch_sub` on `live`; the shutdown's `Acquire`
//!   load that sees 0 therefore sees every counter the workers wrote, so the report
//!   of a shutdown within its deadline is exact. (One called from a job waits for 1
//!   instead: the `fetch_sub`s form one release sequence, so it sees every other
//!   worker's counters, and its own worker's are its thread's.)
//! - Counters are `Relaxed` load-then-store by their one writer; snapshots read them
//!   `Relaxed` (a snapshot taken while jobs run is approximate by nature).
//! - The cancellation signal's close is `AcqRel` and `is_closed` `Acquire` (see
//!   [`Signal`]): a worker that sees it closed cancels.

mod backoff;
mod job;

pub use backoff::Backoff;
pub use job::{with_signal, Job, JobError, JobHandle, JoinTimeoutError, Panic, WithSignal};

use crate::channel::{self, Receiver, SendTimeoutError, SendUntilError, Sender, TrySendError};
use crate::signal::{Cause, Signal};
use crate::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use crate::sync::time::{self, Duration, Instant};
use crate::sync::{thread, Arc};
use crate::wait;
use core::fmt;
use crossbeam_utils::CachePadded;
use job::{detached, new_task, take_back, Outcome, Queued};

/// The default of [`Builder::sample_timing`]: one job in 32 is timed.
pub const DEFAULT_TIMING_SAMPLE: u32 = 32;

/// How often a shutdown past its deadline looks for a job while it waits for idle
/// workers to exit (`WorkerPool::wait_for_idle_workers`).
const IDLE_POLL: Duration = Duration::from_millis(1);

/// The most workers a pool may have.
pub const MAX_WORKERS: usize = 1 << 16;

/// The largest queue capacity a pool accepts:
/// [`queue::MAX_CAPACITY`](crate::queue::MAX_CAPACITY), 2^31 on 64-bit targets and
/// 2^26 on 32-bit ones.
pub const MAX_QUEUE_CAPACITY: usize = crate::queue::MAX_CAPACITY;

/// One worker's counters. Written only by that worker (load, add, store: no
/// read-modify-write), read by snapshots.
struct WorkerStats {
    /// 1 from the moment the worker takes a task until its outcome is counted (by
    /// `record`, before the result is published), else 0: a job that a handle saw
    /// finish no longer counts as running.
    busy: AtomicU32,
    completed: AtomicU64,
    panicked: AtomicU64,
    cancelled: AtomicU64,
    /// Jobs whose times were measured.
    timed: AtomicU64,
    /// Sum of submit-to-start times of the timed jobs, ns.
    wait_ns: AtomicU64,
    /// Sum of run times of the timed jobs, ns.
    run_ns: AtomicU64,
}

impl WorkerStats {
    fn new() -> Self {
        WorkerStats {
            busy: AtomicU32::new(0),
            completed: AtomicU64::new(0),
            panicked: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            timed: AtomicU64::new(0),
            wait_ns: AtomicU64::new(0),
            run_ns: AtomicU64::new(0),
        }
    }

    /// Adds `n` to a counter of this worker's. Only this worker writes it.
    #[inline]
    fn bump(counter: &AtomicU64, n: u64) {
        // Ordering: Relaxed; single writer, so load-then-store loses nothing, and the
        // counter publishes no memory (see `# Implementation`).
        counter.store(
            counter.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Records how a task ended, and that the worker no longer runs it; called before
    /// its result is published (invariant 5).
    fn record(&self, outcome: Outcome, enqueued: Option<Instant>, started: Option<Instant>) {
        match outcome {
            Outcome::Completed => Self::bump(&self.completed, 1),
            Outcome::Panicked => Self::bump(&self.panicked, 1),
            Outcome::Cancelled => Self::bump(&self.cancelled, 1),
        }
        if let (Some(q), Some(started)) = (enqueued, started) {
            Self::bump(&self.timed, 1);
            Self::bump(&self.wait_ns, nanos(started.saturating_duration_since(q)));
            Self::bump(
                &self.run_ns,
                nanos(time::now().saturating_duration_since(started)),
            );
        }
        // Ordering: Relaxed; a metric (see `busy`).
        self.busy.store(0, Ordering::Relaxed);
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

std::thread_local! {
    /// This thread's random state (xorshift32; 0 until first used) for choosing which
    /// jobs to time: per thread, so the sampling needs no shared write; random, not a
    /// counter, so a thread that submits to several pools in turn (or a fast and a
    /// slow job in turn) does not always time the same pool's (or kind of) jobs.
    static SAMPLER: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
}

#[cfg(not(atomkit_loom))]
crate::sync::thread_local! {
    /// On a worker thread while it works, the address of its pool's `Shared` (0
    /// elsewhere): a shutdown called from one of the pool's own jobs finds here that it
    /// runs on a worker it must not wait for (`WorkerPool::own_worker`).
    static WORKER_OF: core::cell::Cell<usize> = const { core::cell::Cell::new(0) };
}
// loom's `thread_local!` takes no `const` initialiser.
#[cfg(atomkit_loom)]
crate::sync::thread_local! {
    static WORKER_OF: core::cell::Cell<usize> = core::cell::Cell::new(0);
}

/// What the pool's threads share.
struct Shared {
    /// Closed past a shutdown deadline (or by `shutdown_now`); passed to every job.
    cancel: Signal,
    /// Closed when intake closes; a retrying submit sleeps on it.
    stopping: Signal,
    /// Workers that have not exited yet; the futex word `shutdown` sleeps on.
    live: AtomicU32,
    /// Per-worker counters (invariant 5).
    stats: Box<[CachePadded<WorkerStats>]>,
    /// Submits refused (full, timed out, cancelled or shut down). Written by submitters.
    rejected: CachePadded<AtomicU64>,
    /// Tasks cancelled by a shutdown's drain.
    drained: AtomicU64,
    /// Time one job in this many per submitting thread (0: none).
    sample: u32,
}

impl Shared {
    /// Whether the job being submitted now is timed.
    #[inline]
    fn timed(&self) -> bool {
        match self.sample {
            0 => false,
            1 => true,
            n => SAMPLER.with(|c| {
                let mut x = c.get();
                if x == 0 {
                    // Seeded from the cell's address: differs between live threads.
                    x = (c as *const core::cell::Cell<u32>).addr() as u32 | 1;
                }
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                c.set(x);
                // True with probability 1/n (Lemire's multiply-shift range reduction).
                (u64::from(x) * u64::from(n)) >> 32 == 0
            }),
        }
    }
}

/// A fixed pool of worker threads with a bounded job queue. See the
/// [module documentation](self).
///
/// # Examples
///
/// ```
/// use atomkit::pool::WorkerPool;
///
/// let pool = WorkerPool::builder().workers(2).queue_capacity(8).build().unwrap();
/// let h = pool.submit(|| 1 + 1).unwrap();
/// assert_eq!(h.join().unwrap(), 2);
/// ```
pub struct WorkerPool {
    /// The pool's own intake handle (it holds the shared state too).
    submitter: Submitter,
    /// Kept for the shutdown's drain; the workers have their own clones.
    rx: Receiver<Queued>,
    threads: Vec<thread::JoinHandle<()>>,
    capacity: usize,
}

/// A cloneable handle for submitting jobs to a [`WorkerPool`] from other threads;
/// from [`WorkerPool::submitter`].
///
/// It has the pool's submit methods and nothing else: it cannot shut the pool down,
/// and it does not keep it running. After the pool's shutdown begins (or the pool is
/// dropped) every submit through it fails with `ShutDown` and hands the job back.
///
/// # Examples
///
/// ```
/// use atomkit::pool::WorkerPool;
///
/// let pool = WorkerPool::builder().workers(1).build().unwrap();
/// let s = pool.submitter();
/// drop(pool);
/// assert!(s.try_submit(|| 1).unwrap_err().is_shut_down());
/// ```
#[derive(Clone)]
pub struct Submitter {
    tx: Sender<Queued>,
    shared: Arc<Shared>,
}

impl fmt::Debug for Submitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Submitter").finish_non_exhaustive()
    }
}

impl Submitter {
    fn rejected(&self) {
        // Ordering: Relaxed; a metric only.
        self.shared.rejected.fetch_add(1, Ordering::Relaxed);
    }
    /// See [`WorkerPool::try_submit`].
    ///
    /// # Errors
    ///
    /// As for [`WorkerPool::try_submit`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = atomkit::pool::WorkerPool::builder().workers(1).build().unwrap();
    /// let s = pool.submitter();
    /// let h = std::thread::spawn(move || s.try_submit(|| 1)).join().unwrap();
    /// assert_eq!(h.unwrap().join().unwrap(), 1);
    /// ```
    pub fn try_submit<J: Job>(&self, job: J) -> Result<JobHandle<J::Output>, SubmitError<J>> {
        let (task, handle) = new_task(job, self.shared.timed());
        match self.tx.try_send(task) {
            Ok(()) => Ok(handle),
            Err(e) => {
                self.rejected();
                drop(handle);
                Err(match e {
                    TrySendError::Full(t) => SubmitError::Full(take_back(t)),
                    TrySendError::Closed(t) => SubmitError::ShutDown(take_back(t)),
                })
            }
        }
    }
    /// See [`WorkerPool::execute`].
    ///
    /// # Errors
    ///
    /// As for [`WorkerPool::execute`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = atomkit::pool::WorkerPool::builder().workers(1).build().unwrap();
    /// let s = pool.submitter();
    /// std::thread::spawn(move || s.execute(|| println!("hello")).unwrap()).join().unwrap();
    /// pool.shutdown_timeout(std::time::Duration::from_secs(10)).unwrap();
    /// ```
    pub fn execute<J: Job>(&self, job: J) -> Result<(), ShutDownError<J>> {
        let task = detached(job, self.shared.timed());
        self.tx.send(task).map_err(|e| {
            self.rejected();
            ShutDownError(take_back(e.into_inner()))
        })
    }
    /// See [`WorkerPool::submit`].
    ///
    /// # Errors
    ///
    /// As for [`WorkerPool::submit`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = atomkit::pool::WorkerPool::builder().workers(1).build().unwrap();
    /// let s = pool.submitter();
    /// let h = std::thread::spawn(move || s.submit(|| 2 + 2)).join().unwrap();
    /// assert_eq!(h.unwrap().join().unwrap(), 4);
    /// ```
    pub fn submit<J: Job>(&self, job: J) -> Result<JobHandle<J::Output>, ShutDownError<J>> {
        let (task, handle) = new_task(job, self.shared.timed());
        match self.tx.send(task) {
            Ok(()) => Ok(handle),
            Err(e) => {
                self.rejected();
                drop(handle);
                Err(ShutDownError(take_back(e.into_inner())))
            }
        }
    }
    /// See [`WorkerPool::submit_timeout`].
    ///
    /// # Errors
    ///
    /// As for [`WorkerPool::submit_timeout`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = atomkit::pool::WorkerPool::builder().workers(1).build().unwrap();
    /// let s = pool.submitter();
    /// let h = std::thread::spawn(move || s.submit_timeout(|| 1, std::time::Duration::from_secs(1))).join().unwrap();
    /// assert_eq!(h.unwrap().join().unwrap(), 1);
    /// ```
    pub fn submit_timeout<J: Job>(
        &self,
        job: J,
        timeout: Duration,
    ) -> Result<JobHandle<J::Output>, SubmitTimeoutError<J>> {
        match time::now().checked_add(timeout) {
            Some(deadline) => self.submit_deadline(job, deadline),
            None => self
                .submit(job)
                .map_err(|e| SubmitTimeoutError::ShutDown(e.into_inner())),
        }
    }
    /// See [`WorkerPool::submit_deadline`].
    ///
    /// # Errors
    ///
    /// As for [`WorkerPool::submit_deadline`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = atomkit::pool::WorkerPool::builder().workers(1).build().unwrap();
    /// let s = pool.submitter();
    /// let h = std::thread::spawn(move || s.submit_deadline(|| 1, std::time::Instant::now() + std::time::Duration::from_secs(1))).join().unwrap();
    /// assert_eq!(h.unwrap().join().unwrap(), 1);
    /// ```
    pub fn submit_deadline<J: Job>(
        &self,
        job: J,
        deadline: Instant,
    ) -> Result<JobHandle<J::Output>, SubmitTimeoutError<J>> {
        let (task, handle) = new_task(job, self.shared.timed());
        match self.tx.send_deadline(task, deadline) {
            Ok(()) => Ok(handle),
            Err(e) => {
                self.rejected();
                drop(handle);
                Err(match e {
                    SendTimeoutError::Timeout(t) => SubmitTimeoutError::Timeout(take_back(t)),
                    SendTimeoutError::Closed(t) => SubmitTimeoutError::ShutDown(take_back(t)),
                })
            }
        }
    }
    /// See [`WorkerPool::submit_until`].
    ///
    /// # Errors
    ///
    /// As for [`WorkerPool::submit_until`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = atomkit::pool::WorkerPool::builder().workers(1).build().unwrap();
    /// let s = pool.submitter();
    /// let h = std::thread::spawn(move || s.submit_until(|| 1, &atomkit::Signal::new())).join().unwrap();
    /// assert_eq!(h.unwrap().join().unwrap(), 1);
    /// ```
    pub fn submit_until<J: Job>(
        &self,
        job: J,
        signal: &Signal,
    ) -> Result<JobHandle<J::Output>, SubmitUntilError<J>> {
        let (task, handle) = new_task(job, self.shared.timed());
        match self.tx.send_until(task, signal) {
            Ok(()) => Ok(handle),
            Err(e) => {
                self.rejected();
                drop(handle);
                Err(match e {
                    SendUntilError::Cancelled(t, cause) => {
                        SubmitUntilError::Cancelled(take_back(t), cause)
                    }
                    SendUntilError::Closed(t) => SubmitUntilError::ShutDown(take_back(t)),
                })
            }
        }
    }
    /// See [`WorkerPool::submit_with_retry`].
    ///
    /// # Errors
    ///
    /// As for [`WorkerPool::submit_with_retry`].
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = atomkit::pool::WorkerPool::builder().workers(1).build().unwrap();
    /// let s = pool.submitter();
    /// let h = std::thread::spawn(move || s.submit_with_retry(|| 1, atomkit::pool::Backoff::default())).join().unwrap();
    /// assert_eq!(h.unwrap().join().unwrap(), 1);
    /// ```
    pub fn submit_with_retry<J: Job>(
        &self,
        job: J,
        backoff: Backoff,
    ) -> Result<JobHandle<J::Output>, SubmitError<J>> {
        let (mut task, handle) = new_task(job, self.shared.timed());
        let mut delays = backoff;
        let refused = loop {
            match self.tx.try_send(task) {
                Ok(()) => return Ok(handle),
                Err(TrySendError::Full(t)) => match delays.next() {
                    Some(delay) => {
                        task = t;
                        self.pause(delay);
                    }
                    None => break SubmitError::Full(take_back(t)),
                },
                Err(TrySendError::Closed(t)) => break SubmitError::ShutDown(take_back(t)),
            }
        };
        self.rejected();
        drop(handle);
        Err(refused)
    }

    /// Sleeps for `delay`, or until intake closes.
    fn pause(&self, delay: Duration) {
        match time::now().checked_add(delay) {
            Some(until) => {
                self.shared.stopping.wait_deadline(until);
            }
            None => self.shared.stopping.wait(),
        }
    }
}

/// Configures and builds a [`WorkerPool`].
///
/// # Examples
///
/// ```
/// use atomkit::pool::WorkerPool;
///
/// let pool = WorkerPool::builder()
///     .workers(3)
///     .queue_capacity(100)
///     .thread_name("image-resize")
///     .sample_timing(1)
///     .build()
///     .unwrap();
/// assert_eq!(pool.workers(), 3);
/// assert_eq!(pool.queue_capacity(), 100);
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    workers: Option<usize>,
    capacity: usize,
    name: String,
    /// Time one job in this many (0: none).
    sample: u32,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            workers: None,
            capacity: 1024,
            name: "atomkit-pool".to_string(),
            sample: DEFAULT_TIMING_SAMPLE,
        }
    }
}

impl Builder {
    /// The number of worker threads (default: the machine's available parallelism).
    /// 0 is an error at [`build`](Self::build).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = atomkit::pool::WorkerPool::builder().workers(2).build().unwrap();
    /// assert_eq!(pool.workers(), 2);
    /// ```
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = Some(n);
        self
    }

    /// How many jobs may wait in the queue (default 1024). 0 makes a rendezvous
    /// queue: a submit succeeds only when a worker is ready to take the job.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = atomkit::pool::WorkerPool::builder().queue_capacity(16).build().unwrap();
    /// assert_eq!(pool.queue_capacity(), 16);
    /// ```
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// The worker threads' name prefix: workers are named `"{prefix}-{i}"`
    /// (default `"atomkit-pool"`).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = atomkit::pool::WorkerPool::builder()
    ///     .workers(1)
    ///     .thread_name("mailer")
    ///     .build()
    ///     .unwrap();
    /// let name = pool.submit(|| std::thread::current().name().map(str::to_owned));
    /// assert_eq!(name.unwrap().join().unwrap().as_deref(), Some("mailer-0"));
    /// ```
    pub fn thread_name(mut self, prefix: impl Into<String>) -> Self {
        self.name = prefix.into();
        self
    }

    /// Measures wait and run time on one job in `every` (default
    /// [`DEFAULT_TIMING_SAMPLE`]); `1` times every job, `0` none. A timed job costs
    /// three clock reads (tens of ns each on some machines), so the default samples;
    /// [`PoolMetrics::total_wait`] and [`total_run`](PoolMetrics::total_run) are then
    /// the sampled sums scaled up to all started jobs (exact with `1`). Each job is
    /// timed with probability `1 / every`, drawn by the submitting thread from a
    /// random state of its own: no shared write, and no bias from the order of
    /// submits.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = atomkit::pool::WorkerPool::builder().sample_timing(0).build().unwrap();
    /// pool.submit(|| ()).unwrap().join().unwrap();
    /// assert_eq!(pool.metrics().total_run, Duration::ZERO);
    /// assert_eq!(pool.metrics().timed_jobs, 0);
    /// ```
    pub fn sample_timing(mut self, every: u32) -> Self {
        self.sample = every;
        self
    }

    /// Starts the workers.
    ///
    /// # Errors
    ///
    /// [`BuildError::NoWorkers`] for 0 workers, [`BuildError::TooManyWorkers`] above
    /// [`MAX_WORKERS`], [`BuildError::CapacityTooLarge`] above
    /// [`MAX_QUEUE_CAPACITY`], [`BuildError::BadThreadName`] for a name prefix with a
    /// NUL byte, [`BuildError::Spawn`] if the OS refuses a thread (the workers already
    /// started then exit on their own).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::{BuildError, WorkerPool};
    ///
    /// assert_eq!(WorkerPool::builder().workers(0).build().unwrap_err(), BuildError::NoWorkers);
    /// ```
    pub fn build(self) -> Result<WorkerPool, BuildError> {
        // `available_parallelism` is a query of the machine, not a thread operation:
        // the same in every build.
        let workers = self.workers.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, core::num::NonZeroUsize::get)
        });
        if workers == 0 {
            return Err(BuildError::NoWorkers);
        }
        if workers > MAX_WORKERS {
            return Err(BuildError::TooManyWorkers(workers));
        }
        if self.capacity > MAX_QUEUE_CAPACITY {
            return Err(BuildError::CapacityTooLarge(self.capacity));
        }
        if self.name.contains('\0') {
            return Err(BuildError::BadThreadName(self.name));
        }
        let (tx, rx) = channel::bounded::<Queued>(self.capacity);
        let shared = Arc::new(Shared {
            cancel: Signal::new(),
            stopping: Signal::new(),
            // Counted up front. If a spawn fails, `build` fails and nothing waits on
            // this count again.
            live: AtomicU32::new(workers as u32),
            stats: (0..workers)
                .map(|_| CachePadded::new(WorkerStats::new()))
                .collect(),
            rejected: CachePadded::new(AtomicU64::new(0)),
            drained: AtomicU64::new(0),
            sample: self.sample,
        });
        let mut threads = Vec::with_capacity(workers);
        for i in 0..workers {
            let (shared2, rx2) = (shared.clone(), rx.clone());
            let spawned = thread::Builder::new()
                .name(format!("{}-{i}", self.name))
                .spawn(move || work(&shared2, &rx2, i));
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    // The workers already running see the channel closed and exit.
                    tx.close();
                    shared.stopping.close();
                    return Err(BuildError::Spawn(e.to_string()));
                }
            }
        }
        Ok(WorkerPool {
            submitter: Submitter { tx, shared },
            rx,
            threads,
            capacity: self.capacity,
        })
    }
}

/// A worker: receive, run (or cancel, once the pool cancels), repeat until the queue
/// is closed and drained (invariant 4).
fn work(shared: &Shared, rx: &Receiver<Queued>, me: usize) {
    let stats = &*shared.stats[me];
    WORKER_OF.with(|w| w.set(shared as *const Shared as usize));
    while let Ok(queued) = rx.recv() {
        // Ordering: Relaxed; a metric only.
        stats.busy.store(1, Ordering::Relaxed);
        if shared.cancel.is_closed() {
            stats.record(Outcome::Cancelled, None, None);
            queued.cancel();
        } else {
            match queued {
                Queued::Shared(task) => {
                    // No handle left (dropped, or a detached task): skip the result's
                    // publication. A count of 1 is final: only handles hold other
                    // references, and none is ever made after the task is queued.
                    // Ordering: `strong_count` is a Relaxed load, which suffices:
                    // reading 1 means the handle's decrement happened and nobody will
                    // read the slot; the task is freed later by `Arc`'s own Release
                    // decrement and Acquire fence, which order our slot write before it.
                    let detached = Arc::strong_count(&task) == 1;
                    task.run(&shared.cancel, stats, detached);
                    // Our reference may be the last: an unjoined result is dropped
                    // here, and its `Drop` may panic. The worker survives that too.
                    job::drop_quietly(task);
                }
                // Runs, records and drops the result, catching every panic.
                Queued::Inline(job) => job.run(&shared.cancel, stats),
            }
        }
        // Ordering: Relaxed; a metric only. `record` has cleared it for every task
        // that had its job; this covers one that had none left.
        stats.busy.store(0, Ordering::Relaxed);
    }
    // Cleared before `live` counts us out: once `shared` is freed, another pool's may
    // take its address, and this thread (running thread-local destructors) is not
    // that pool's worker.
    WORKER_OF.with(|w| w.set(0));
    let word: *const AtomicU32 = &shared.live;
    // Ordering: Release pairs with the Acquire load in `wait_for_workers`: our counters
    // are visible to a shutdown that sees the count reach 0 (or 1, for one called from
    // a job: the last worker left is its own, whose counters it reads itself). Both
    // counts wake the shutdown.
    if shared.live.fetch_sub(1, Ordering::Release) <= 2 {
        // We hold `shared` (an `Arc`), so the word is alive; address only anyway.
        wait::wake_all(word);
    }
}

impl WorkerPool {
    /// A [`Builder`] with the defaults: one worker per CPU, queue capacity 1024,
    /// threads named `atomkit-pool-{i}`, one job in 32 timed.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = atomkit::pool::WorkerPool::builder().build().unwrap();
    /// assert!(pool.workers() >= 1);
    /// ```
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// The number of worker threads.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = atomkit::pool::WorkerPool::builder().workers(2).build().unwrap();
    /// assert_eq!(pool.workers(), 2);
    /// ```
    pub fn workers(&self) -> usize {
        self.submitter.shared.stats.len()
    }

    /// The queue's capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = atomkit::pool::WorkerPool::builder().queue_capacity(3).build().unwrap();
    /// assert_eq!(pool.queue_capacity(), 3);
    /// ```
    pub fn queue_capacity(&self) -> usize {
        self.capacity
    }

    /// Queues `job` if there is room, without blocking.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Full`] with the job if the queue is full (backpressure: retry,
    /// block with [`submit`](Self::submit), or shed the load);
    /// [`SubmitError::ShutDown`] with the job if the pool is shutting down.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::{SubmitError, WorkerPool};
    /// use std::sync::mpsc;
    ///
    /// let pool = WorkerPool::builder().workers(1).queue_capacity(1).build().unwrap();
    /// let (release, gate) = mpsc::channel::<()>();
    /// let (started, running) = mpsc::channel();
    /// let busy = pool
    ///     .submit(move || {
    ///         started.send(()).unwrap();
    ///         gate.recv().unwrap()
    ///     })
    ///     .unwrap();
    /// running.recv().unwrap(); // the worker is busy
    /// let queued = pool.try_submit(|| 1).unwrap(); // fills the queue
    /// match pool.try_submit(|| 2) {
    ///     Err(SubmitError::Full(job)) => assert_eq!(job(), 2), // handed back
    ///     other => panic!("{other:?}"),
    /// }
    /// release.send(()).unwrap();
    /// busy.join().unwrap();
    /// assert_eq!(queued.join().unwrap(), 1);
    /// ```
    pub fn try_submit<J: Job>(&self, job: J) -> Result<JobHandle<J::Output>, SubmitError<J>> {
        self.submitter.try_submit(job)
    }

    /// Queues `job`, blocking while the queue is full (backpressure).
    ///
    /// # Errors
    ///
    /// [`ShutDownError`] with the job if the pool is shutting down (also when the
    /// shutdown begins while this call waits).
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = atomkit::pool::WorkerPool::builder().workers(2).build().unwrap();
    /// let hs: Vec<_> = (0..10).map(|i| pool.submit(move || i).unwrap()).collect();
    /// let got: Vec<i32> = hs.into_iter().map(|h| h.join().unwrap()).collect();
    /// assert_eq!(got, (0..10).collect::<Vec<_>>());
    /// ```
    pub fn submit<J: Job>(&self, job: J) -> Result<JobHandle<J::Output>, ShutDownError<J>> {
        self.submitter.submit(job)
    }

    /// Queues `job` with no handle, blocking while the queue is full (backpressure):
    /// fire and forget, like `threadpool`'s `execute` or rayon's `spawn`. The job's
    /// result is dropped by the worker; a panic is caught and counted in
    /// [`PoolMetrics::panicked`], and a job cancelled by
    /// [`shutdown_now`](Self::shutdown_now) or a late [`shutdown`](Self::shutdown) is
    /// dropped unrun and counted in [`PoolMetrics::cancelled`]. Cheaper than
    /// [`submit`](Self::submit) with the handle dropped: no second reference to the
    /// task is taken and released.
    ///
    /// # Errors
    ///
    /// [`ShutDownError`] with the job if the pool is shutting down (also when the
    /// shutdown begins while this call waits).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let pool = atomkit::pool::WorkerPool::builder().workers(2).build().unwrap();
    /// let sum = Arc::new(AtomicU64::new(0));
    /// for i in 1..=10 {
    ///     let sum = sum.clone();
    ///     pool.execute(move || sum.fetch_add(i, Ordering::Relaxed)).unwrap();
    /// }
    /// let report = pool.shutdown_timeout(Duration::from_secs(10)).unwrap();
    /// assert_eq!(report.completed, 10);
    /// assert_eq!(sum.load(Ordering::Relaxed), 55);
    /// ```
    pub fn execute<J: Job>(&self, job: J) -> Result<(), ShutDownError<J>> {
        self.submitter.execute(job)
    }

    /// Queues `job`, blocking at most `timeout` while the queue is full.
    ///
    /// # Errors
    ///
    /// [`SubmitTimeoutError::Timeout`] if the queue stayed full,
    /// [`SubmitTimeoutError::ShutDown`] if the pool is shutting down; both hand the
    /// job back.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::WorkerPool;
    /// use std::time::Duration;
    ///
    /// let pool = WorkerPool::builder().workers(1).build().unwrap();
    /// let h = pool.submit_timeout(|| 5, Duration::from_secs(1)).unwrap();
    /// assert_eq!(h.join().unwrap(), 5);
    /// ```
    pub fn submit_timeout<J: Job>(
        &self,
        job: J,
        timeout: Duration,
    ) -> Result<JobHandle<J::Output>, SubmitTimeoutError<J>> {
        self.submitter.submit_timeout(job, timeout)
    }

    /// Queues `job`, blocking until `deadline` at most while the queue is full. A
    /// deadline in the past makes one attempt.
    ///
    /// # Errors
    ///
    /// As for [`submit_timeout`](Self::submit_timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::WorkerPool;
    /// use std::time::{Duration, Instant};
    ///
    /// let pool = WorkerPool::builder().workers(1).build().unwrap();
    /// let h = pool.submit_deadline(|| 5, Instant::now() + Duration::from_secs(1)).unwrap();
    /// assert_eq!(h.join().unwrap(), 5);
    /// ```
    pub fn submit_deadline<J: Job>(
        &self,
        job: J,
        deadline: Instant,
    ) -> Result<JobHandle<J::Output>, SubmitTimeoutError<J>> {
        self.submitter.submit_deadline(job, deadline)
    }

    /// Queues `job`, blocking while the queue is full until `signal` closes (or its
    /// deadline passes): the request-scoped form of [`submit`](Self::submit).
    ///
    /// # Errors
    ///
    /// [`SubmitUntilError::Cancelled`] with the job and the signal's [`Cause`],
    /// [`SubmitUntilError::ShutDown`] with the job if the pool is shutting down.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::WorkerPool;
    /// use atomkit::Signal;
    ///
    /// let pool = WorkerPool::builder().workers(1).build().unwrap();
    /// let request = Signal::new();
    /// let h = pool.submit_until(|| 5, &request).unwrap();
    /// assert_eq!(h.join().unwrap(), 5);
    /// ```
    pub fn submit_until<J: Job>(
        &self,
        job: J,
        signal: &Signal,
    ) -> Result<JobHandle<J::Output>, SubmitUntilError<J>> {
        self.submitter.submit_until(job, signal)
    }

    /// Queues `job`, retrying while the queue is full after each delay of `backoff`
    /// (exponential, with jitter); gives up when `backoff` runs out. A shutdown
    /// during a delay ends the wait at once.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Full`] with the job if the queue was still full at the last
    /// attempt, [`SubmitError::ShutDown`] if the pool is shutting down.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::{Backoff, WorkerPool};
    /// use std::time::Duration;
    ///
    /// let pool = WorkerPool::builder().workers(1).queue_capacity(1).build().unwrap();
    /// let backoff = Backoff::new(Duration::from_millis(1)).max_attempts(20);
    /// let hs: Vec<_> = (0..5)
    ///     .map(|i| pool.submit_with_retry(move || i, backoff.clone()).unwrap())
    ///     .collect();
    /// assert_eq!(hs.into_iter().map(|h| h.join().unwrap()).sum::<i32>(), 10);
    /// ```
    pub fn submit_with_retry<J: Job>(
        &self,
        job: J,
        backoff: Backoff,
    ) -> Result<JobHandle<J::Output>, SubmitError<J>> {
        self.submitter.submit_with_retry(job, backoff)
    }

    /// A cloneable handle for submitting from other threads. It keeps no worker
    /// alive: once the pool shuts down (or is dropped), its submits fail with
    /// `ShutDown`.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::WorkerPool;
    /// use std::time::Duration;
    ///
    /// let pool = WorkerPool::builder().workers(2).build().unwrap();
    /// let producers: Vec<_> = (0..4)
    ///     .map(|i| {
    ///         let s = pool.submitter();
    ///         std::thread::spawn(move || s.submit(move || i).unwrap().join().unwrap())
    ///     })
    ///     .collect();
    /// let sum: i32 = producers.into_iter().map(|t| t.join().unwrap()).sum();
    /// assert_eq!(sum, 6);
    /// pool.shutdown_timeout(Duration::from_secs(10)).unwrap();
    /// ```
    pub fn submitter(&self) -> Submitter {
        self.submitter.clone()
    }

    /// A snapshot of the pool's counters. Cheap (a few loads per worker); taken while
    /// jobs run, the figures are each current but not one consistent instant.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().workers(1).build().unwrap();
    /// pool.submit(|| ()).unwrap().join().unwrap();
    /// let _ = pool.submit(|| -> () { panic!("bad input") }).unwrap().join();
    /// let m = pool.metrics();
    /// assert_eq!((m.completed, m.panicked, m.failed()), (1, 1, 1));
    /// ```
    pub fn metrics(&self) -> PoolMetrics {
        let mut m = PoolMetrics {
            workers: self.workers(),
            queued: self.rx.len(),
            ..PoolMetrics::default()
        };
        let mut wait_ns = 0u64;
        let mut run_ns = 0u64;
        let mut timed = 0u64;
        // Ordering (every load below): Relaxed; counters publish no memory.
        for s in self.submitter.shared.stats.iter() {
            m.running += s.busy.load(Ordering::Relaxed) as usize;
            m.completed += s.completed.load(Ordering::Relaxed);
            m.panicked += s.panicked.load(Ordering::Relaxed);
            m.cancelled += s.cancelled.load(Ordering::Relaxed);
            timed += s.timed.load(Ordering::Relaxed);
            wait_ns = wait_ns.saturating_add(s.wait_ns.load(Ordering::Relaxed));
            run_ns = run_ns.saturating_add(s.run_ns.load(Ordering::Relaxed));
        }
        m.cancelled += self.submitter.shared.drained.load(Ordering::Relaxed);
        m.rejected = self.submitter.shared.rejected.load(Ordering::Relaxed);
        // Scale the sampled sums up to every started job (exact when all are timed).
        let started = m.completed + m.panicked;
        let scale = |ns: u64| {
            if timed == 0 {
                Duration::ZERO
            } else {
                let total = u128::from(ns) * u128::from(started.max(timed)) / u128::from(timed);
                Duration::from_nanos(u64::try_from(total).unwrap_or(u64::MAX))
            }
        };
        m.timed_jobs = timed;
        m.total_wait = scale(wait_ns);
        m.total_run = scale(run_ns);
        m
    }

    /// Stops intake, waits until the queued and running jobs have finished or
    /// `deadline` passes, and reports.
    ///
    /// Past the deadline it closes the pool's cancellation signal (jobs made with
    /// [`with_signal`] see it), cancels every job that has not started (its handle's
    /// `join` returns [`JobError::Cancelled`]; a worker that picks one up after the
    /// signal closed cancels it too) and returns without waiting for the jobs still
    /// running; their threads exit when those jobs return.
    ///
    /// If no job is queued or running when the deadline has passed (an idle pool, or
    /// a deadline already past on the call), there is nothing to cut short: it
    /// waits for the idle workers to exit and returns `Ok`, as a shutdown within its
    /// deadline does.
    ///
    /// # Errors
    ///
    /// [`ShutdownTimedOut`] if the deadline passed with jobs queued or running; its
    /// [`report`](ShutdownTimedOut::report) counts the jobs still running and those
    /// cancelled. A job picked up by a worker at the very moment of the deadline may
    /// be counted as running, or in neither count, and then be cancelled by that
    /// worker after `shutdown` returned: each handle tells its own job's fate
    /// exactly.
    ///
    /// # From one of the pool's own jobs
    ///
    /// A job may shut down its own pool (one that owns it, say). The shutdown cannot
    /// wait for that job, which goes on running after it returns, nor for jobs still
    /// queued once the other workers have exited, which only the calling job's worker
    /// could run: it waits for the other workers and their jobs, and returns `Ok` if
    /// they finish within the deadline; jobs left queued with no other worker to run
    /// them are cancelled at once (`ShutdownTimedOut`), as if the deadline had passed.
    /// The calling job is in none of the report's counts, and its worker exits when
    /// it returns.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::WorkerPool;
    /// use std::time::{Duration, Instant};
    ///
    /// let pool = WorkerPool::builder().workers(2).build().unwrap();
    /// for _ in 0..10 {
    ///     pool.submit(|| std::thread::sleep(Duration::from_millis(1))).unwrap();
    /// }
    /// let report = pool.shutdown(Instant::now() + Duration::from_secs(10)).unwrap();
    /// assert_eq!((report.completed, report.cancelled, report.still_running), (10, 0, 0));
    /// ```
    pub fn shutdown(self, deadline: Instant) -> Result<ShutdownReport, ShutdownTimedOut> {
        self.shutdown_inner(Some(Some(deadline)))
    }

    /// [`shutdown`](Self::shutdown) with a deadline `timeout` from now.
    ///
    /// # Errors
    ///
    /// As for [`shutdown`](Self::shutdown).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let pool = atomkit::pool::WorkerPool::builder().workers(1).build().unwrap();
    /// let h = pool.submit(|| 7).unwrap();
    /// pool.shutdown_timeout(Duration::from_secs(10)).unwrap();
    /// assert_eq!(h.join().unwrap(), 7);
    /// ```
    pub fn shutdown_timeout(self, timeout: Duration) -> Result<ShutdownReport, ShutdownTimedOut> {
        // A timeout past the end of time (`None`): wait for the workers however long.
        self.shutdown_inner(Some(time::now().checked_add(timeout)))
    }

    /// Stops intake and cancels at once: closes the cancellation signal, cancels every
    /// queued job, and returns without waiting for the running ones.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::WorkerPool;
    ///
    /// let pool = WorkerPool::builder().workers(1).build().unwrap();
    /// let report = pool.shutdown_now();
    /// assert_eq!(report.completed, 0);
    /// ```
    pub fn shutdown_now(self) -> ShutdownReport {
        match self.shutdown_inner(None) {
            Ok(r) => r,
            Err(e) => e.report,
        }
    }

    /// `wait` `None` means "cancel now", `Some(None)` "wait however long",
    /// `Some(Some(d))` "wait until `d`, then cancel".
    fn shutdown_inner(
        self,
        wait: Option<Option<Instant>>,
    ) -> Result<ShutdownReport, ShutdownTimedOut> {
        let start = time::now();
        self.close_intake();
        let own = self.own_worker();
        // A job taken off the queue that only the calling worker was left to run.
        let mut stranded = None;
        if let Some(deadline) = wait {
            let done = self.wait_for_workers(deadline, own)
                || (deadline.is_some() && self.wait_for_idle_workers(own));
            if done {
                // Every other worker has exited. Called from a job, the queue may still
                // hold jobs (a one-worker pool), which the caller's worker would run
                // only after we return: they are cancelled, as past the deadline. No
                // worker receives any more, so taking one now races with nobody.
                stranded = if own == 0 {
                    None
                } else {
                    self.rx.try_recv().ok()
                };
                if stranded.is_none() {
                    return Ok(self.finish(start, true, own));
                }
            }
        }
        // Invariant 4: cancel first, so that workers stop starting jobs; then drain.
        self.submitter.shared.cancel.close();
        let rest = core::iter::from_fn(|| self.rx.try_recv().ok());
        for queued in stranded.into_iter().chain(rest) {
            // Ordering: Relaxed; a metric, counted before the result (invariant 5).
            self.submitter
                .shared
                .drained
                .fetch_add(1, Ordering::Relaxed);
            queued.cancel();
        }
        // The workers may all have exited meanwhile; if not, we do not wait for them.
        let exited = self.wait_for_workers(Some(start), own);
        Err(ShutdownTimedOut {
            report: self.finish(start, exited, own),
        })
    }

    /// 1 if the calling thread is one of this pool's workers (the shutdown is called
    /// from one of the pool's own jobs, which it cannot wait for), else 0.
    fn own_worker(&self) -> u32 {
        let me = &*self.submitter.shared as *const Shared as usize;
        WORKER_OF.with(|w| u32::from(w.get() == me))
    }

    /// Closes intake: later submits fail with `ShutDown`; workers drain and exit.
    fn close_intake(&self) {
        self.submitter.tx.close();
        self.submitter.shared.stopping.close();
    }

    /// Past the shutdown's deadline: if no job is queued and none is running, there is
    /// nothing to cut short, and this waits for the idle workers to exit (they only
    /// need to be scheduled), looking again every [`IDLE_POLL`]. Gives up (false) as
    /// soon as it finds a job: one queued, or one a worker holds (a worker may have
    /// taken one just before intake closed and mark itself busy only now). True once
    /// every worker but the `own` calling one (see `own_worker`) has exited. A worker
    /// still dropping the result of a job nobody joins is idle: the wait includes that
    /// drop.
    fn wait_for_idle_workers(&self, own: u32) -> bool {
        let shared = &self.submitter.shared;
        loop {
            // Ordering: Acquire pairs with the workers' Release `fetch_sub`, as in
            // `wait_for_workers`.
            let live = shared.live.load(Ordering::Acquire);
            if live <= own {
                return true;
            }
            // Intake is closed: the queue only shrinks, into workers that mark
            // themselves busy.
            // Ordering: Relaxed; a worker's busy mark is a metric that orders nothing:
            // one set late is seen at the next look (coherence), and the report's
            // counts are read after `live` reaches 0 (Acquire above). The calling
            // worker's own mark is set (it runs the calling job), and it set it itself.
            let running = shared
                .stats
                .iter()
                .map(|s| s.busy.load(Ordering::Relaxed))
                .sum::<u32>();
            if running > own || !self.rx.is_empty() {
                return false;
            }
            wait::wait_until(&shared.live, live, time::now() + IDLE_POLL);
        }
    }

    /// Waits until every worker but the `own` calling one (see `own_worker`) has
    /// exited or `deadline` passes; true if they have.
    fn wait_for_workers(&self, deadline: Option<Instant>, own: u32) -> bool {
        loop {
            // Ordering: Acquire pairs with the workers' Release `fetch_sub`.
            let live = self.submitter.shared.live.load(Ordering::Acquire);
            if live <= own {
                return true;
            }
            if deadline.is_some_and(|d| time::now() >= d) {
                return false;
            }
            wait::wait_maybe_until(&self.submitter.shared.live, live, deadline);
        }
    }

    /// Builds the report. The worker threads are not joined: a worker that has
    /// counted itself out of `live` may still be running thread-local destructors
    /// (a job's), and joining would wait for them past the caller's deadline (even a
    /// `JoinHandle::is_finished` worker: it reports the closure's return, not the
    /// thread's end). They end on their own. Under the model checkers, whose threads
    /// must all be joined, exited workers are joined (unless we run on one: `own`).
    ///
    /// `exited`: every worker but the `own` calling one has exited. The calling job
    /// (`own` 1) is in none of the counts: it is still running, and it is the caller.
    fn finish(mut self, start: Instant, exited: bool, own: u32) -> ShutdownReport {
        #[cfg(any(atomkit_loom, atomkit_shuttle))]
        if exited && own == 0 {
            for t in self.threads.drain(..) {
                // A worker never panics (jobs' panics are caught), so join succeeds.
                let _ = t.join();
            }
        }
        #[cfg(not(any(atomkit_loom, atomkit_shuttle)))]
        let _ = exited;
        self.threads.clear();
        let m = self.metrics();
        ShutdownReport {
            completed: m.completed,
            panicked: m.panicked,
            cancelled: m.cancelled,
            // The calling worker marked itself running before it started the calling
            // job: `m.running >= own`.
            still_running: if exited {
                0
            } else {
                m.running.saturating_sub(own as usize)
            },
            elapsed: time::now().saturating_duration_since(start),
        }
    }
}

impl Drop for WorkerPool {
    /// Closes intake and returns at once: the workers finish the queued jobs and exit
    /// on their own. Never blocks (C-DTOR-BLOCK); use
    /// [`shutdown`](WorkerPool::shutdown) to wait.
    fn drop(&mut self) {
        self.close_intake();
    }
}

impl fmt::Debug for WorkerPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerPool")
            .field("workers", &self.workers())
            .field("queue_capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

/// A snapshot of a pool's counters, from [`WorkerPool::metrics`].
///
/// # Examples
///
/// ```
/// let pool = atomkit::pool::WorkerPool::builder().workers(1).build().unwrap();
/// pool.submit(|| ()).unwrap().join().unwrap();
/// let m = pool.metrics();
/// assert_eq!((m.workers, m.completed, m.queued, m.rejected), (1, 1, 0, 0));
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolMetrics {
    /// Worker threads.
    pub workers: usize,
    /// Jobs waiting in the queue.
    pub queued: usize,
    /// Jobs a worker is running right now: taken from the queue, their outcome not
    /// yet counted.
    pub running: usize,
    /// Jobs that returned a value.
    pub completed: u64,
    /// Jobs that panicked.
    pub panicked: u64,
    /// Jobs accepted but cancelled before they ran.
    pub cancelled: u64,
    /// Submits refused: queue full (after any timeout or retries), cancelled by the
    /// caller's signal, or pool shutting down.
    pub rejected: u64,
    /// Jobs whose wait and run times were measured (see [`Builder::sample_timing`]).
    pub timed_jobs: u64,
    /// Sum over started jobs of the time from submit to start: measured on the timed
    /// jobs and scaled up to all of them (zero if timing is off).
    pub total_wait: Duration,
    /// Sum over started jobs of their run time, likewise.
    pub total_run: Duration,
}

impl PoolMetrics {
    /// Jobs that finished without a value: `panicked + cancelled`.
    ///
    /// # Examples
    ///
    /// ```
    /// let m = atomkit::pool::PoolMetrics::default();
    /// assert_eq!(m.failed(), 0);
    /// ```
    pub fn failed(&self) -> u64 {
        self.panicked + self.cancelled
    }
}

/// What a shutdown saw: counts over the pool's whole life.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let pool = atomkit::pool::WorkerPool::builder().workers(1).build().unwrap();
/// pool.submit(|| ()).unwrap();
/// let r = pool.shutdown_timeout(Duration::from_secs(10)).unwrap();
/// assert_eq!((r.completed, r.panicked, r.cancelled, r.still_running), (1, 0, 0, 0));
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Jobs that returned a value.
    pub completed: u64,
    /// Jobs that panicked.
    pub panicked: u64,
    /// Jobs accepted but never started (their handles report `Cancelled`).
    pub cancelled: u64,
    /// Jobs still running when the shutdown returned (0 unless it timed out or was
    /// `shutdown_now`).
    pub still_running: usize,
    /// How long the shutdown took.
    pub elapsed: Duration,
}

/// [`WorkerPool::shutdown`] passed its deadline with jobs queued or running.
///
/// # Examples
///
/// ```
/// use atomkit::pool::WorkerPool;
/// use std::time::{Duration, Instant};
///
/// let pool = WorkerPool::builder().workers(1).build().unwrap();
/// let (started_tx, started) = std::sync::mpsc::channel();
/// pool.submit(move || {
///     started_tx.send(()).unwrap();
///     std::thread::sleep(Duration::from_millis(200));
/// })
/// .unwrap();
/// let queued = pool.submit(|| ()).unwrap();
/// started.recv().unwrap(); // the worker runs the first job
/// let e = pool.shutdown(Instant::now()).unwrap_err();
/// assert_eq!((e.report().still_running, e.report().cancelled), (1, 1));
/// assert!(queued.join().unwrap_err().is_cancelled());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShutdownTimedOut {
    report: ShutdownReport,
}

impl ShutdownTimedOut {
    /// The counts at the moment the shutdown gave up.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    ///
    /// let pool = atomkit::pool::WorkerPool::builder().workers(1).build().unwrap();
    /// pool.submit(|| std::thread::sleep(std::time::Duration::from_millis(100))).unwrap();
    /// if let Err(e) = pool.shutdown(Instant::now()) {
    ///     assert!(e.report().still_running + e.report().cancelled as usize >= 1);
    /// }
    /// ```
    pub fn report(&self) -> &ShutdownReport {
        &self.report
    }
}

impl fmt::Display for ShutdownTimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "shutdown deadline passed with {} jobs still running and {} cancelled",
            self.report.still_running, self.report.cancelled
        )
    }
}

impl std::error::Error for ShutdownTimedOut {}

/// [`Builder::build`] failed.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// A pool needs at least one worker.
    NoWorkers,
    /// More than [`MAX_WORKERS`] workers.
    TooManyWorkers(usize),
    /// A queue capacity above [`MAX_QUEUE_CAPACITY`].
    CapacityTooLarge(usize),
    /// The OS refused to start a worker thread (its message).
    Spawn(String),
    /// The thread-name prefix contains a NUL byte, which thread names cannot hold.
    BadThreadName(String),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::NoWorkers => f.write_str("a worker pool needs at least one worker"),
            BuildError::TooManyWorkers(n) => {
                write!(f, "{n} workers exceed the maximum of {MAX_WORKERS}")
            }
            BuildError::CapacityTooLarge(c) => write!(
                f,
                "queue capacity {c} exceeds the maximum of {MAX_QUEUE_CAPACITY}"
            ),
            BuildError::Spawn(e) => write!(f, "could not start a worker thread: {e}"),
            BuildError::BadThreadName(n) => {
                write!(f, "thread name prefix {n:?} contains a NUL byte")
            }
        }
    }
}

impl std::error::Error for BuildError {}

/// Defines a submit error enum whose every variant hands the job back.
macro_rules! job_error_common {
    ($name:ident) => {
        impl<J> fmt::Debug for $name<J> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(..)", self.variant())
            }
        }
        impl<J> std::error::Error for $name<J> {}
    };
}

/// [`WorkerPool::try_submit`] or [`WorkerPool::submit_with_retry`] refused the job; it
/// is handed back.
///
/// # Examples
///
/// ```
/// use atomkit::pool::{SubmitError, WorkerPool};
///
/// let pool = WorkerPool::builder().workers(1).build().unwrap();
/// let e: SubmitError<fn() -> u8> = SubmitError::Full(|| 1);
/// assert!(e.is_full());
/// assert_eq!(e.into_inner()(), 1);
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SubmitError<J> {
    /// The queue is full.
    Full(J),
    /// The pool is shutting down.
    ShutDown(J),
}

impl<J> SubmitError<J> {
    /// The job handed back.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = atomkit::pool::SubmitError::ShutDown(5);
    /// assert_eq!(e.into_inner(), 5);
    /// ```
    pub fn into_inner(self) -> J {
        match self {
            SubmitError::Full(j) | SubmitError::ShutDown(j) => j,
        }
    }

    /// Whether the queue was full.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(atomkit::pool::SubmitError::Full(()).is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        matches!(self, SubmitError::Full(_))
    }

    /// Whether the pool is shutting down.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(atomkit::pool::SubmitError::ShutDown(()).is_shut_down());
    /// ```
    pub fn is_shut_down(&self) -> bool {
        matches!(self, SubmitError::ShutDown(_))
    }

    fn variant(&self) -> &'static str {
        match self {
            SubmitError::Full(_) => "Full",
            SubmitError::ShutDown(_) => "ShutDown",
        }
    }
}

impl<J> fmt::Display for SubmitError<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Full(_) => f.write_str("job queue is full"),
            SubmitError::ShutDown(_) => f.write_str("worker pool is shutting down"),
        }
    }
}

job_error_common!(SubmitError);

/// [`WorkerPool::submit`] refused the job because the pool is shutting down; it is
/// handed back.
///
/// # Examples
///
/// ```
/// let e = atomkit::pool::ShutDownError(7);
/// assert_eq!(e.to_string(), "worker pool is shutting down");
/// assert_eq!(e.into_inner(), 7);
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub struct ShutDownError<J>(pub J);

impl<J> ShutDownError<J> {
    /// The job handed back.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(atomkit::pool::ShutDownError("job").into_inner(), "job");
    /// ```
    pub fn into_inner(self) -> J {
        self.0
    }

    fn variant(&self) -> &'static str {
        "ShutDownError"
    }
}

impl<J> fmt::Display for ShutDownError<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("worker pool is shutting down")
    }
}

job_error_common!(ShutDownError);

/// [`WorkerPool::submit_timeout`] / [`submit_deadline`](WorkerPool::submit_deadline)
/// refused the job; it is handed back.
///
/// # Examples
///
/// ```
/// use atomkit::pool::SubmitTimeoutError;
///
/// let e = SubmitTimeoutError::Timeout(1);
/// assert!(e.is_timeout() && !e.is_shut_down());
/// assert_eq!(e.to_string(), "timed out waiting for room in the job queue");
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SubmitTimeoutError<J> {
    /// The queue stayed full until the deadline.
    Timeout(J),
    /// The pool is shutting down.
    ShutDown(J),
}

impl<J> SubmitTimeoutError<J> {
    /// The job handed back.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(atomkit::pool::SubmitTimeoutError::Timeout(3).into_inner(), 3);
    /// ```
    pub fn into_inner(self) -> J {
        match self {
            SubmitTimeoutError::Timeout(j) | SubmitTimeoutError::ShutDown(j) => j,
        }
    }

    /// Whether the deadline passed.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(atomkit::pool::SubmitTimeoutError::Timeout(()).is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, SubmitTimeoutError::Timeout(_))
    }

    /// Whether the pool is shutting down.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(atomkit::pool::SubmitTimeoutError::ShutDown(()).is_shut_down());
    /// ```
    pub fn is_shut_down(&self) -> bool {
        matches!(self, SubmitTimeoutError::ShutDown(_))
    }

    fn variant(&self) -> &'static str {
        match self {
            SubmitTimeoutError::Timeout(_) => "Timeout",
            SubmitTimeoutError::ShutDown(_) => "ShutDown",
        }
    }
}

impl<J> fmt::Display for SubmitTimeoutError<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitTimeoutError::Timeout(_) => {
                f.write_str("timed out waiting for room in the job queue")
            }
            SubmitTimeoutError::ShutDown(_) => f.write_str("worker pool is shutting down"),
        }
    }
}

job_error_common!(SubmitTimeoutError);

/// [`WorkerPool::submit_until`] refused the job; it is handed back.
///
/// # Examples
///
/// ```
/// use atomkit::pool::SubmitUntilError;
/// use atomkit::Cause;
///
/// let e = SubmitUntilError::Cancelled(1, Cause::DeadlineExceeded);
/// assert_eq!(e.cause(), Some(Cause::DeadlineExceeded));
/// assert_eq!(e.to_string(), "submit cancelled: deadline exceeded");
/// ```
#[derive(PartialEq, Eq, Clone, Copy)]
pub enum SubmitUntilError<J> {
    /// The signal closed (or its deadline passed) while the queue was full.
    Cancelled(J, Cause),
    /// The pool is shutting down.
    ShutDown(J),
}

impl<J> SubmitUntilError<J> {
    /// The job handed back.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(atomkit::pool::SubmitUntilError::ShutDown(2).into_inner(), 2);
    /// ```
    pub fn into_inner(self) -> J {
        match self {
            SubmitUntilError::Cancelled(j, _) | SubmitUntilError::ShutDown(j) => j,
        }
    }

    /// Whether the signal closed.
    ///
    /// # Examples
    ///
    /// ```
    /// use atomkit::pool::SubmitUntilError;
    /// assert!(SubmitUntilError::Cancelled((), atomkit::Cause::Closed).is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        matches!(self, SubmitUntilError::Cancelled(..))
    }

    /// Whether the pool is shutting down.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(atomkit::pool::SubmitUntilError::ShutDown(()).is_shut_down());
    /// ```
    pub fn is_shut_down(&self) -> bool {
        matches!(self, SubmitUntilError::ShutDown(_))
    }

    /// Why the signal closed, if it did.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(atomkit::pool::SubmitUntilError::ShutDown(()).cause(), None);
    /// ```
    pub fn cause(&self) -> Option<Cause> {
        match self {
            SubmitUntilError::Cancelled(_, c) => Some(*c),
            SubmitUntilError::ShutDown(_) => None,
        }
    }

    fn variant(&self) -> &'static str {
        match self {
            SubmitUntilError::Cancelled(..) => "Cancelled",
            SubmitUntilError::ShutDown(_) => "ShutDown",
        }
    }
}

impl<J> fmt::Display for SubmitUntilError<J> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitUntilError::Cancelled(_, c) => write!(f, "submit cancelled: {c}"),
            SubmitUntilError::ShutDown(_) => f.write_str("worker pool is shutting down"),
        }
    }
}

job_error_common!(SubmitUntilError);
