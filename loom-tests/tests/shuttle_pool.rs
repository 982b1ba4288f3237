//! shuttle tests of `WorkerPool`: submits, panics and shutdowns racing, with a small
//! pool, under random and PCT schedules. shuttle runs every atomic as SeqCst, so these
//! find lost wake-ups, lost jobs and logic races, not weak-memory bugs (loom does that).
//!
//! Run: `RUSTFLAGS="--cfg atomkit_shuttle" cargo test --release -p atomkit-loom-tests --test shuttle_pool`
//! (or `cargo xtask shuttle`).
#![cfg(atomkit_shuttle)]

use atomkit::pool::{JobError, WorkerPool};
use atomkit_loom_tests::shuttle_iters;
use shuttle::sync::atomic::{AtomicUsize, Ordering};
use shuttle::sync::Arc;
use shuttle::thread;
use std::time::{Duration, Instant};

fn both(iters: usize, f: impl Fn() + Send + Sync + 'static) {
    let f = std::sync::Arc::new(f);
    let g = f.clone();
    shuttle::check_random(move || g(), shuttle_iters(iters));
    shuttle::check_pct(move || f(), shuttle_iters(iters), 3);
}

fn pool(workers: usize, cap: usize) -> WorkerPool {
    WorkerPool::builder()
        .workers(workers)
        .queue_capacity(cap)
        .sample_timing(0)
        .build()
        .unwrap()
}

/// Counts its drops: a job lost or dropped twice shows in the count. It counts with a
/// std atomic, not shuttle's: it is dropped while a panicking job unwinds, and a
/// shuttle scheduling point there would let another task run while the OS thread (all
/// tasks share one) reports `panicking()`, which poisons any `Once` that task
/// finishes (shuttle's `lazy_static`s included).
struct Counted(std::sync::Arc<std::sync::atomic::AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Two producers (try_submit, blocking submit, timed submit, and `execute`, whose small
/// job travels inline with no handle; every third job panics) race a shutdown. Every
/// accepted job either ran (value or panic) or was cancelled, never both, never
/// neither; every job (accepted or refused) is dropped exactly once.
fn submit_shutdown_panic(now: bool) {
    let p = pool(2, 2);
    let made = Arc::new(AtomicUsize::new(0));
    let dropped = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let producers: Vec<_> = (0..2)
        .map(|k| {
            let (s, made, dropped) = (p.submitter(), made.clone(), dropped.clone());
            thread::spawn(move || {
                let mut hs = Vec::new();
                let mut detached = 0u64;
                for i in 0..4usize {
                    made.fetch_add(1, Ordering::SeqCst);
                    let c = Counted(dropped.clone());
                    let job = move || {
                        let _c = c;
                        if (i + k) % 3 == 0 {
                            panic!("planned");
                        }
                        i
                    };
                    if i == 3 {
                        detached += u64::from(s.execute(job).is_ok());
                        continue;
                    }
                    let r = match i {
                        0 => s.try_submit(job).map_err(drop),
                        1 => s.submit(job).map_err(drop),
                        _ => s.submit_timeout(job, Duration::from_secs(1)).map_err(drop),
                    };
                    if let Ok(h) = r {
                        hs.push((i, k, h));
                    }
                }
                (hs, detached)
            })
        })
        .collect();
    let report = if now {
        p.shutdown_now()
    } else {
        match p.shutdown(Instant::now() + Duration::from_secs(60)) {
            Ok(r) => r,
            // Under the model checker a timed wait may give up: still a valid run.
            Err(e) => *e.report(),
        }
    };
    let mut cancelled = 0u64;
    let mut detached = 0u64;
    for t in producers {
        let (hs, d) = t.join().unwrap();
        detached += d;
        for (i, k, h) in hs {
            match h.join() {
                Ok(v) => assert_eq!(v, i),
                Err(JobError::Panicked(_)) => assert_eq!((i + k) % 3, 0),
                Err(JobError::Cancelled) => cancelled += 1,
                Err(e) => panic!("{e}"),
            }
        }
    }
    // The report also counts detached jobs it cancelled, which no handle sees.
    assert!(report.cancelled <= cancelled + detached);
    // A shutdown that timed out leaves the workers running, and one of them may hold a
    // detached job it popped (no handle waits for that one): it runs or cancels the
    // job on its own. Give the workers the processor until every job is dropped; a
    // job that never is shows as a failure below.
    let mut turns = 0;
    while dropped.load(std::sync::atomic::Ordering::SeqCst) < made.load(Ordering::SeqCst)
        && turns < 1_000
    {
        thread::yield_now();
        turns += 1;
    }
    assert_eq!(
        dropped.load(std::sync::atomic::Ordering::SeqCst),
        made.load(Ordering::SeqCst),
        "a job was lost or dropped twice"
    );
}

#[test]
fn submit_racing_graceful_shutdown() {
    both(5_000, || submit_shutdown_panic(false));
}

#[test]
fn submit_racing_shutdown_now() {
    both(5_000, || submit_shutdown_panic(true));
}

/// A pool dropped without shutdown still runs every queued job, and `join` returns.
#[test]
fn drop_without_shutdown_runs_the_queue() {
    both(5_000, || {
        let p = pool(1, 2);
        let hs: Vec<_> = (0..3).map(|i| p.submit(move || i * 2).unwrap()).collect();
        drop(p);
        for (i, h) in hs.into_iter().enumerate() {
            assert_eq!(h.join().unwrap(), i * 2);
        }
    });
}

/// A handle joined from another thread while the worker completes the job: no lost
/// wake-up.
#[test]
fn join_from_another_thread() {
    both(5_000, || {
        let p = pool(1, 1);
        let h = p.submit(|| 7).unwrap();
        let t = thread::spawn(move || h.join().unwrap());
        assert_eq!(t.join().unwrap(), 7);
        let r = p.shutdown(Instant::now() + Duration::from_secs(60));
        if let Ok(r) = r {
            assert_eq!(r.completed, 1);
        }
    });
}

/// Two producers submit (some jobs panic, some submits find the queue full) while the
/// workers run; once every handle is joined the pool is quiet, and the metrics add
/// up: every accepted job completed or panicked, every refused submit is counted as
/// rejected, and nothing is queued or running.
#[test]
fn metrics_add_up_at_a_quiet_point() {
    both(2_000, || {
        let p = pool(2, 1);
        let producers: Vec<_> = (0..2)
            .map(|k| {
                let s = p.submitter();
                thread::spawn(move || {
                    let mut hs = Vec::new();
                    let mut refused = 0u64;
                    for i in 0..3usize {
                        let job = move || {
                            if (i + k) % 2 == 0 {
                                panic!("planned");
                            }
                            i
                        };
                        match s.try_submit(job) {
                            Ok(h) => hs.push(h),
                            Err(e) => {
                                assert!(e.is_full());
                                refused += 1;
                            }
                        }
                    }
                    (hs, refused)
                })
            })
            .collect();
        let (mut accepted, mut refused, mut panicked) = (0u64, 0u64, 0u64);
        for t in producers {
            let (hs, r) = t.join().unwrap();
            refused += r;
            for h in hs {
                accepted += 1;
                panicked += u64::from(h.join().is_err());
            }
        }
        let m = p.metrics();
        assert_eq!((m.queued, m.running), (0, 0));
        assert_eq!((m.completed + m.panicked, m.cancelled), (accepted, 0));
        assert_eq!((m.panicked, m.rejected), (panicked, refused));
        let r = p.shutdown(Instant::now() + Duration::from_secs(60));
        if let Ok(r) = r {
            assert_eq!((r.completed + r.panicked, r.still_running), (accepted, 0));
        }
    });
}

/// One of the pool's own jobs shuts it down, with no deadline, while the other worker
/// runs the queued jobs: the shutdown waits for that worker (a lost wake-up when it
/// exits deadlocks the model) but not for the job calling it; every other job runs
/// once, and the report counts them and not the caller.
#[test]
fn shutdown_from_a_job_racing_the_other_worker() {
    both(2_000, || {
        let p = pool(2, 4);
        let s = p.submitter();
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let hs: Vec<_> = (0..2)
            .map(|i| {
                let c = Counted(dropped.clone());
                s.submit(move || {
                    let _c = c;
                    i
                })
                .unwrap()
            })
            .collect();
        let slot = Arc::new(shuttle::sync::Mutex::new(Some(p)));
        let caller = s
            .submit({
                let slot = slot.clone();
                move || {
                    let p = slot.lock().unwrap().take().unwrap();
                    p.shutdown_timeout(Duration::MAX)
                }
            })
            .unwrap();
        let mut finished = 0u64;
        let mut cancelled = 0u64;
        for (i, h) in hs.into_iter().enumerate() {
            match h.join() {
                Ok(v) => {
                    assert_eq!(v, i);
                    finished += 1;
                }
                Err(e) => {
                    assert!(e.is_cancelled());
                    cancelled += 1;
                }
            }
        }
        // Untimed: a lost wake-up deadlocks the model instead of timing out.
        let r = caller.join().unwrap().unwrap();
        assert_eq!((r.completed, r.cancelled), (finished, cancelled));
        assert_eq!((r.cancelled, r.still_running), (0, 0));
        assert_eq!(dropped.load(std::sync::atomic::Ordering::SeqCst), 2);
    });
}
