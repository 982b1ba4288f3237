//! Lock-free, model-checked concurrency primitives for threads: the patterns Go
//! services are built from (buffered channels, `close(done)` broadcast, `context`
//! deadlines, semaphores, per-key counters, worker pools), written with atomics by
//! hand and checked with loom, shuttle, Miri, ThreadSanitizer and fuzzing.
//!
//! # Which primitive when
//!
//! | module | what | pick it for |
//! |--------|------|-------------|
//! | [`channel`] | [`bounded`] → [`Sender`] / [`Receiver`]: Go's buffered (and unbuffered) channel on the lock-free queue, close-as-broadcast, timeouts, [`Signal`] cancellation | passing work between threads with backpressure (Go's `make(chan T, n)`, `close(ch)`, `select` with `ctx.Done()`) |
//! | [`counter_map`] | [`CounterMap`]: per-key `u64` counters, lock-free to count, hot keys striped, exact `snapshot_and_reset` | per-user / per-route request counting with periodic dumps (Go's mutex'd map of counters) |
//! | [`deque`] | [`Worker`](deque::Worker) / [`Stealer`](deque::Stealer) (Chase-Lev work-stealing deque) and [`Injector`](deque::Injector) (global MPMC queue) | per-thread task queues of a work-stealing scheduler: the owner pushes and pops locally, idle threads steal the oldest tasks, in batches of up to half (at most 32 by default) |
//! | [`pool`] | [`WorkerPool`]: fixed worker threads on a bounded job queue; `try_submit` hands the job back when full, blocking / timed / retrying submits, [`JobHandle`](pool::JobHandle) results with panics caught, shutdown within a deadline, metrics | running jobs on a few threads with backpressure and a graceful exit (Go's workers ranging over a buffered channel) |
//! | [`queue`] | [`ArrayQueue`]: bounded MPMC FIFO, lock-free in the strict sense (SCQ) | handing values between threads without blocking; a drop-in for crossbeam's `ArrayQueue` that never wedges behind a preempted thread |
//! | [`semaphore`] | [`Semaphore`]: counting semaphore with timed, cancellable and weighted acquires, RAII permits | limiting concurrency across threads (Go's `make(chan struct{}, n)` and `x/sync/semaphore`); one atomic op per acquire and release when uncontended |
//! | [`signal`] | [`Signal`]: close-as-broadcast with parent/child trees and deadlines | stopping many threads at once; request-scoped cancellation and timeouts (Go's `close(done)` and `context`) |
//!
//! # Layers
//!
//! `sync` (the switch between std, loom and shuttle) and `wait` (futex-style sleeping)
//! sit at the bottom; primitives build on them and never on each other's internals.
//! Every blocking call spins briefly, then sleeps on the wait layer; nothing on a hot
//! path takes a lock.
//!
//! # Model-checking your own code with atomkit inside
//!
//! atomkit picks its atomics, cells, locks and threads from one internal switch keyed
//! on crate-level cfgs, not on `cfg(test)`. A downstream crate that checks its own code
//! with loom or shuttle turns the same cfg on, and atomkit's primitives then run on the
//! model checker too, with their blocking paths modelled (a forgotten wake-up in your
//! code shows as a deadlock the checker reports):
//!
//! ```text
//! # loom: atomkit needs crossbeam-epoch modelled as well
//! RUSTFLAGS="--cfg atomkit_loom --cfg crossbeam_loom" cargo test --release --test my_loom_models
//! # shuttle
//! RUSTFLAGS="--cfg atomkit_shuttle" cargo test --release --test my_shuttle_models
//! ```
//!
//! Under those cfgs every use of atomkit must happen inside `loom::model` or
//! `shuttle::check_*`, exactly as for loom's and shuttle's own types. Both cfgs at once
//! is a compile error, and so is `atomkit_loom` without `crossbeam_loom`.
//! A timed wait under a model checker gives up at a point the checker chooses, and
//! then atomkit's clock jumps to that deadline: both "woken in time" and "timed out"
//! are explored without modelling time.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub(crate) mod sync;
pub(crate) mod wait;

pub mod channel;
pub mod counter_map;
pub mod deque;
pub mod pool;
pub mod queue;
pub mod semaphore;
pub mod signal;

#[doc(inline)]
pub use channel::{bounded, Receiver, Sender};
#[doc(inline)]
pub use counter_map::CounterMap;
#[doc(inline)]
pub use pool::WorkerPool;
#[doc(inline)]
pub use queue::ArrayQueue;
#[doc(inline)]
pub use semaphore::{OwnedPermit, Permit, Semaphore};
#[doc(inline)]
pub use signal::{Cause, Signal};
