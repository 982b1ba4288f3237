//! A worker pool driven by an op sequence and compared with a plain model. The one
//! worker is held inside a gate job for the whole sequence, so the queue's contents
//! are deterministic: the model is a `VecDeque` of the values accepted, a count of
//! refusals and a count of jobs dropped. At the end the pool either shuts down
//! gracefully (every accepted job runs, in order) or at once (every queued job is
//! cancelled); each kept handle must tell the model's story, and every job must be
//! dropped exactly once.
#![no_main]

use arbitrary::Arbitrary;
use atomkit::pool::{JobError, SubmitError, SubmitTimeoutError, WorkerPool};
use atomkit::signal::Signal;
use libfuzzer_sys::fuzz_target;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

#[derive(Arbitrary, Debug)]
enum Op {
    /// `try_submit` of a job returning `v * 2`.
    TrySubmit(u16),
    /// `submit_deadline` with a deadline already past: one attempt.
    SubmitNow(u16),
    /// Drop kept handle `i % len` (the job is detached and still runs).
    DropHandle(u8),
    /// `execute` (no handle) of a job returning `v * 2`, only when the model has
    /// room: it would block on a full queue.
    Execute(u16),
    /// Compare `metrics()` with the model.
    Metrics,
}

struct Counted(Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fuzz_target!(|input: (u8, bool, Vec<Op>)| {
    let (cap, graceful, ops) = input;
    let cap = 1 + cap as usize % 8;
    let pool = WorkerPool::builder()
        .workers(1)
        .queue_capacity(cap)
        .sample_timing(0)
        .build()
        .unwrap();
    // Hold the only worker. The gate is a `Signal` (a futex wait): a blocking std
    // channel receive would leave a thread-local allocation in a worker that may
    // still be exiting when the fuzzer checks for leaks.
    let open = Signal::new();
    let gate = open.clone();
    let (started_tx, started) = mpsc::channel::<()>();
    let gate_job = pool
        .submit(move || {
            started_tx.send(()).unwrap();
            gate.wait();
        })
        .unwrap();
    started.recv().unwrap();

    let dropped = Arc::new(AtomicUsize::new(0));
    let mut made = 0usize;
    let mut queued: VecDeque<u16> = VecDeque::new();
    let mut rejected = 0u64;
    let mut kept = Vec::new();
    for op in ops.into_iter().take(64) {
        match op {
            Op::TrySubmit(v) | Op::SubmitNow(v) => {
                let c = Counted(dropped.clone());
                made += 1;
                let job = move || {
                    let _c = c;
                    u32::from(v) * 2
                };
                let full = queued.len() == cap;
                let r = match op {
                    Op::TrySubmit(_) => pool.try_submit(job).map_err(|e| match e {
                        SubmitError::Full(j) => j,
                        SubmitError::ShutDown(_) => panic!("not shut down"),
                    }),
                    _ => pool
                        .submit_deadline(job, Instant::now())
                        .map_err(|e| match e {
                            SubmitTimeoutError::Timeout(j) => j,
                            SubmitTimeoutError::ShutDown(_) => panic!("not shut down"),
                        }),
                };
                match r {
                    Ok(h) => {
                        assert!(!full, "accepted into a full queue");
                        queued.push_back(v);
                        kept.push((v, h));
                    }
                    Err(job) => {
                        assert!(full, "refused with room in the queue");
                        rejected += 1;
                        assert_eq!(job(), u32::from(v) * 2, "the job came back intact");
                    }
                }
            }
            Op::Execute(v) => {
                if queued.len() < cap {
                    let c = Counted(dropped.clone());
                    made += 1;
                    pool.execute(move || {
                        let _c = c;
                        u32::from(v) * 2
                    })
                    .map_err(|_| ())
                    .expect("not shut down");
                    queued.push_back(v);
                }
            }
            Op::DropHandle(i) => {
                if !kept.is_empty() {
                    let i = i as usize % kept.len();
                    drop(kept.remove(i));
                }
            }
            Op::Metrics => {
                let m = pool.metrics();
                assert_eq!(m.queued, queued.len());
                assert_eq!(m.running, 1);
                assert_eq!(m.rejected, rejected);
                assert_eq!((m.completed, m.cancelled), (0, 0));
            }
        }
    }
    let accepted = queued.len() as u64;
    if graceful {
        open.close();
        let r = pool
            .shutdown(Instant::now() + Duration::from_secs(60))
            .unwrap();
        assert_eq!((r.completed, r.cancelled), (accepted + 1, 0));
        for (v, h) in kept {
            assert_eq!(h.join().unwrap(), u32::from(v) * 2);
        }
    } else {
        let r = pool.shutdown_now();
        assert_eq!((r.completed, r.cancelled), (0, accepted));
        for (_, h) in kept {
            assert!(matches!(h.join(), Err(JobError::Cancelled)));
        }
        open.close();
    }
    gate_job.join().unwrap();
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        made,
        "a job was lost or dropped twice"
    );
});
