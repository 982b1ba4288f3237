//! A worker pool driven by an op sequence and compared with a plain model. The one
//! worker is held inside a gate job, so the queue's contents are deterministic: the
//! model is a `VecDeque` of the outcomes accepted (a value, or a planned panic), a
//! count of refusals, and counts of the jobs run so far. `Release` lets the worker run
//! everything queued and then holds it again, so a job after a panicking one must
//! still run on the same worker. At the end the pool either shuts down gracefully
//! (every accepted job runs, in order) or at once (every queued job is cancelled);
//! each kept handle must tell the model's story, and every job must be dropped
//! exactly once. `Backoff` ops check the delay sequence against its documented
//! formula; they need no pool.
#![no_main]

use arbitrary::Arbitrary;
use atomkit::pool::{
    Backoff, JobError, JobHandle, SubmitError, SubmitTimeoutError, SubmitUntilError, WorkerPool,
};
use atomkit::signal::{Cause, Signal};
use libfuzzer_sys::fuzz_target;
use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Once};
use std::time::{Duration, Instant};

#[derive(Arbitrary, Debug)]
enum Op {
    /// `try_submit` of a job returning `v * 2`, or panicking if `panics`.
    TrySubmit(u16, bool),
    /// `submit_deadline` with a deadline already past: one attempt.
    SubmitNow(u16),
    /// `submit_timeout` of `n` µs: against a full queue it gives up with `Timeout`.
    SubmitTimeout(u16, u8),
    /// `submit_until` a signal that is closed, or whose deadline is past or a few µs
    /// away: with room it goes through; against a full queue it gives up with the
    /// signal's cause.
    SubmitUntil(u16, Until),
    /// `submit_with_retry` with a tiny backoff: against a full queue it waits out
    /// every delay and then hands the job back as `Full`.
    SubmitRetry(u16, Retry),
    /// Drop kept handle `i % len` (the job is detached and still runs).
    DropHandle(u8),
    /// Join kept handle `i % len`: its outcome if the job ran, else a zero timeout.
    Join(u8),
    /// `execute` (no handle) of a job returning `v * 2` or panicking, only when the
    /// model has room: it would block on a full queue. `big` makes a job too large to
    /// travel inline in the queue entry.
    Execute { v: u16, panics: bool, big: bool },
    /// Let the worker run everything queued, then hold it again.
    Release,
    /// Compare `metrics()` and the kept handles with the model.
    Metrics,
    /// A backoff built from these settings, checked against the documented formula.
    Backoff(BackoffSpec),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Until {
    Closed,
    Past,
    Micros(u8),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct Retry {
    base_us: u8,
    cap_us: u8,
    jitter: f64,
    /// 0 to 4 attempts (0 counts as 1): at most three waits of at most 255 µs.
    attempts: u8,
    seed: u64,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Dur {
    Zero,
    Nanos(u32),
    Micros(u16),
    Secs(u64),
    Max,
}

impl Dur {
    fn get(self) -> Duration {
        match self {
            Dur::Zero => Duration::ZERO,
            Dur::Nanos(n) => Duration::from_nanos(n.into()),
            Dur::Micros(n) => Duration::from_micros(n.into()),
            Dur::Secs(n) => Duration::from_secs(n),
            Dur::Max => Duration::MAX,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Factor {
    /// A whole factor: the delays are then exact whole nanoseconds, so the formula
    /// can be checked exactly.
    Whole(u8),
    /// Any float, NaN, infinities and negatives included.
    Any(f64),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct BackoffSpec {
    base: Dur,
    factor: Option<Factor>,
    cap: Option<Dur>,
    jitter: Option<f64>,
    attempts: Option<u8>,
    seed: u64,
}

/// What a job does when it runs.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    Value(u16),
    Panic(u16),
}

/// The message of a planned panic. Such panics are silenced (see
/// `quiet_planned_panics`); any other panic still aborts the run.
const PLANNED: &str = "planned job panic ";

struct Counted(Arc<AtomicUsize>);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A job with the given outcome that counts its drop.
fn job(o: Outcome, c: Counted) -> impl FnOnce() -> u32 + Send + 'static {
    move || {
        let _c = c;
        match o {
            Outcome::Value(v) => u32::from(v) * 2,
            Outcome::Panic(v) => std::panic::panic_any(format!("{PLANNED}{v}")),
        }
    }
}

/// Checks a joined job against its planned outcome.
fn check(o: Outcome, r: Result<u32, JobError>) {
    match (o, r) {
        (Outcome::Value(v), Ok(got)) => assert_eq!(got, u32::from(v) * 2),
        (Outcome::Panic(v), Err(JobError::Panicked(p))) => {
            assert_eq!(p.message(), Some(format!("{PLANNED}{v}").as_str()));
        }
        (o, r) => panic!("planned {o:?}, got {r:?}"),
    }
}

/// The fuzzer's panic hook aborts on every panic, even one a worker catches. Let the
/// planned ones through quietly; everything else still goes to that hook.
fn quiet_planned_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let abort = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let planned = info
                .payload()
                .downcast_ref::<String>()
                .is_some_and(|m| m.starts_with(PLANNED));
            if !planned {
                abort(info);
            }
        }));
    });
}

/// A job that holds the only worker until `open` closes. The gate is a `Signal` (a
/// futex wait): a blocking std channel receive would leave a thread-local allocation
/// in a worker that may still be exiting when the fuzzer checks for leaks.
struct Gate {
    open: Signal,
    job: JobHandle<()>,
}

impl Gate {
    /// Queues a gate job and returns once the worker runs it: with one worker and a
    /// FIFO queue, every job queued before it has finished by then.
    fn hold(pool: &WorkerPool) -> Gate {
        let open = Signal::new();
        let gate = open.clone();
        let (started_tx, started) = mpsc::channel::<()>();
        let job = pool
            .submit(move || {
                started_tx.send(()).unwrap();
                gate.wait();
            })
            .unwrap();
        started.recv().unwrap();
        Gate { open, job }
    }
}

struct Kept {
    outcome: Outcome,
    /// Whether the job has run (after a `Release`).
    ran: bool,
    handle: JobHandle<u32>,
}

fuzz_target!(|input: (u8, bool, bool, Vec<Op>)| {
    quiet_planned_panics();
    let (cap, graceful, retry_at_shutdown, ops) = input;
    let cap = 1 + cap as usize % 8;
    let pool = WorkerPool::builder()
        .workers(1)
        .queue_capacity(cap)
        .sample_timing(0)
        .build()
        .unwrap();
    let mut gate = Gate::hold(&pool);

    let dropped = Arc::new(AtomicUsize::new(0));
    let mut made = 0usize;
    let mut counted = || {
        made += 1;
        Counted(dropped.clone())
    };
    let mut queued: VecDeque<Outcome> = VecDeque::new();
    let mut rejected = 0u64;
    // Jobs run to the end so far, gates included, and jobs that panicked.
    let (mut completed, mut panicked) = (0u64, 0u64);
    let mut kept: Vec<Kept> = Vec::new();
    for op in ops.into_iter().take(64) {
        let full = queued.len() == cap;
        match op {
            Op::TrySubmit(v, _)
            | Op::SubmitNow(v)
            | Op::SubmitTimeout(v, _)
            | Op::SubmitUntil(v, _)
            | Op::SubmitRetry(v, _) => {
                let outcome = match op {
                    Op::TrySubmit(_, true) => Outcome::Panic(v),
                    _ => Outcome::Value(v),
                };
                let job = job(outcome, counted());
                let r = match op {
                    Op::TrySubmit(..) => pool.try_submit(job).map_err(|e| match e {
                        SubmitError::Full(j) => j,
                        SubmitError::ShutDown(_) => panic!("not shut down"),
                    }),
                    Op::SubmitNow(_) => {
                        pool.submit_deadline(job, Instant::now())
                            .map_err(|e| match e {
                                SubmitTimeoutError::Timeout(j) => j,
                                SubmitTimeoutError::ShutDown(_) => panic!("not shut down"),
                            })
                    }
                    Op::SubmitTimeout(_, us) => pool
                        .submit_timeout(job, Duration::from_micros(us.into()))
                        .map_err(|e| match e {
                            SubmitTimeoutError::Timeout(j) => j,
                            SubmitTimeoutError::ShutDown(_) => panic!("not shut down"),
                        }),
                    Op::SubmitUntil(_, until) => {
                        let (signal, cause) = match until {
                            Until::Closed => {
                                let s = Signal::new();
                                s.close();
                                (s, Cause::Closed)
                            }
                            Until::Past => (
                                Signal::with_deadline(Instant::now()),
                                Cause::DeadlineExceeded,
                            ),
                            Until::Micros(us) => (
                                Signal::with_timeout(Duration::from_micros(us.into())),
                                Cause::DeadlineExceeded,
                            ),
                        };
                        pool.submit_until(job, &signal).map_err(|e| match e {
                            SubmitUntilError::Cancelled(j, c) => {
                                assert_eq!(c, cause, "cancelled with the signal's cause");
                                j
                            }
                            SubmitUntilError::ShutDown(_) => panic!("not shut down"),
                        })
                    }
                    Op::SubmitRetry(_, spec) => {
                        let backoff = Backoff::new(Duration::from_micros(spec.base_us.into()))
                            .cap(Duration::from_micros(spec.cap_us.into()))
                            .jitter(spec.jitter)
                            .max_attempts(u32::from(spec.attempts % 5))
                            .seed(spec.seed);
                        // Seeded, so a clone yields the very delays the submit waits.
                        let waits: Duration = backoff.clone().sum();
                        let start = Instant::now();
                        let r = pool.submit_with_retry(job, backoff);
                        if r.is_err() {
                            assert!(start.elapsed() >= waits, "gave up before the last delay");
                        }
                        r.map_err(|e| match e {
                            SubmitError::Full(j) => j,
                            SubmitError::ShutDown(_) => panic!("not shut down"),
                        })
                    }
                    _ => unreachable!(),
                };
                match r {
                    Ok(handle) => {
                        assert!(!full, "accepted into a full queue");
                        queued.push_back(outcome);
                        kept.push(Kept {
                            outcome,
                            ran: false,
                            handle,
                        });
                    }
                    Err(job) => {
                        assert!(full, "refused with room in the queue");
                        rejected += 1;
                        // A refused panicking job is dropped unrun: running it here
                        // would panic this thread.
                        if let Outcome::Value(v) = outcome {
                            assert_eq!(job(), u32::from(v) * 2, "the job came back intact");
                        }
                    }
                }
            }
            Op::Execute { v, panics, big } => {
                if !full {
                    let outcome = if panics {
                        Outcome::Panic(v)
                    } else {
                        Outcome::Value(v)
                    };
                    let job = job(outcome, counted());
                    let r = if big {
                        let pad = [0u64; 6];
                        pool.execute(move || {
                            black_box(&pad);
                            job()
                        })
                        .map_err(drop)
                    } else {
                        pool.execute(job).map_err(drop)
                    };
                    r.expect("not shut down");
                    queued.push_back(outcome);
                }
            }
            Op::DropHandle(i) => {
                if !kept.is_empty() {
                    let i = i as usize % kept.len();
                    drop(kept.remove(i));
                }
            }
            Op::Join(i) => {
                if !kept.is_empty() {
                    let i = i as usize % kept.len();
                    let k = kept.remove(i);
                    if k.ran {
                        check(k.outcome, k.handle.join());
                    } else {
                        // Still queued behind the gate: the wait must time out and
                        // hand the handle back.
                        let e = k.handle.join_timeout(Duration::ZERO).unwrap_err();
                        assert!(e.is_timeout(), "a queued job reported done: {e:?}");
                        let handle = e.into_handle().unwrap();
                        kept.insert(i, Kept { handle, ..k });
                    }
                }
            }
            Op::Release => {
                // Open the old gate first: the new one may need room in a full queue.
                gate.open.close();
                let old = std::mem::replace(&mut gate, Gate::hold(&pool));
                old.job.join().unwrap();
                completed += 1;
                for o in queued.drain(..) {
                    match o {
                        Outcome::Value(_) => completed += 1,
                        Outcome::Panic(_) => panicked += 1,
                    }
                }
                for k in &mut kept {
                    k.ran = true;
                }
            }
            Op::Metrics => {
                let m = pool.metrics();
                assert_eq!(m.workers, 1);
                assert_eq!(m.queued, queued.len());
                assert_eq!(m.running, 1);
                assert_eq!(m.rejected, rejected);
                assert_eq!((m.completed, m.panicked), (completed, panicked));
                assert_eq!(m.cancelled, 0);
                assert_eq!(m.failed(), panicked);
                for k in &kept {
                    assert_eq!(k.handle.is_finished(), k.ran);
                }
            }
            Op::Backoff(spec) => check_backoff(spec),
        }
    }

    // A retry asleep on a full queue when the pool shuts down must end at once,
    // however long its delay. Only against a full queue and `shutdown_now`, so that
    // no slot frees while intake is open.
    let retrier = (retry_at_shutdown && !graceful && queued.len() == cap).then(|| {
        let submitter = pool.submitter();
        let job = job(Outcome::Value(7), counted());
        let (tx, rx) = mpsc::channel();
        let t = std::thread::spawn(move || {
            let hour = Backoff::new(Duration::from_secs(3600)).jitter(0.0);
            let r = submitter.submit_with_retry(job, hour);
            tx.send(r.map_err(|e| (e.is_shut_down(), e.into_inner()())))
                .unwrap();
        });
        (t, rx)
    });

    let (values, panics) = queued.iter().fold((0, 0), |(v, p), o| match o {
        Outcome::Value(_) => (v + 1, p),
        Outcome::Panic(_) => (v, p + 1),
    });
    if graceful {
        gate.open.close();
        let r = pool
            .shutdown(Instant::now() + Duration::from_secs(60))
            .unwrap();
        assert_eq!(
            (r.completed, r.panicked, r.cancelled, r.still_running),
            (completed + values + 1, panicked + panics, 0, 0)
        );
        for k in kept {
            check(k.outcome, k.handle.join());
        }
    } else {
        let r = pool.shutdown_now();
        let landed = match retrier {
            None => 0,
            Some((t, rx)) => {
                let r = rx
                    .recv_timeout(Duration::from_secs(10))
                    .expect("the shutdown did not end the retry's delay");
                t.join().unwrap();
                match r {
                    Err(e) => {
                        assert_eq!(e, (true, 14), "refused as shut down, job intact");
                        0
                    }
                    // The queue was full until the shutdown drained it, and a send
                    // succeeds only if it took its place before the close: an attempt
                    // under way when intake closes cannot land in the slot the drain
                    // frees.
                    Ok(h) => panic!(
                        "a retry landed in a queue that was full until the shutdown: {:?}",
                        h.join()
                    ),
                }
            }
        };
        assert_eq!(
            (r.completed, r.panicked, r.cancelled, r.still_running),
            (completed, panicked, queued.len() as u64 + landed, 1)
        );
        for k in kept {
            if k.ran {
                check(k.outcome, k.handle.join());
            } else {
                assert!(matches!(k.handle.join(), Err(JobError::Cancelled)));
            }
        }
        gate.open.close();
    }
    gate.job.join().unwrap();
    drop(counted);
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        made,
        "a job was lost or dropped twice"
    );
});

/// Checks a backoff against its documentation: `n - 1` delays for `n` attempts (7 by
/// default); before jitter the `k`-th is `min(cap, base * factor^k)` (the cap defaults
/// to the larger of 100 ms and `base`, a factor below 1 or NaN is 1); jitter only
/// shortens a delay, by at most `jitter` of it (clamped into `[0, 1]`, NaN is 0); the
/// same seed gives the same delays; no setting panics.
fn check_backoff(spec: BackoffSpec) {
    let build = || {
        let mut b = Backoff::new(spec.base.get());
        match spec.factor {
            Some(Factor::Whole(f)) => b = b.factor(f.into()),
            Some(Factor::Any(f)) => b = b.factor(f),
            None => {}
        }
        if let Some(c) = spec.cap {
            b = b.cap(c.get());
        }
        if let Some(j) = spec.jitter {
            b = b.jitter(j);
        }
        if let Some(n) = spec.attempts {
            b = b.max_attempts(n.into());
        }
        b.seed(spec.seed)
    };
    let base = spec.base.get();
    let factor = match spec.factor {
        Some(Factor::Whole(f)) => f64::from(f),
        Some(Factor::Any(f)) => f,
        None => 2.0,
    };
    let factor = if factor >= 1.0 { factor } else { 1.0 };
    let cap = spec
        .cap
        .map_or(Duration::from_millis(100).max(base), Dur::get);
    let jitter = spec
        .jitter
        .map_or(0.5, |j| if j >= 0.0 { j.min(1.0) } else { 0.0 });
    let n = spec
        .attempts
        .map_or(7, |a| usize::from(a).saturating_sub(1));

    let mut b = build();
    assert_eq!(b.len(), n);
    let mut delays = Vec::with_capacity(n);
    while let Some(d) = b.next() {
        delays.push(d);
        assert_eq!(b.len(), n - delays.len(), "exact size as it goes");
    }
    assert_eq!(delays.len(), n);
    assert_eq!((b.next(), b.next()), (None, None), "stays exhausted");
    assert!(
        build().eq(delays.iter().copied()),
        "the same seed, the same delays"
    );
    if spec.base.get() == Duration::from_millis(1) && spec.factor.is_none() && spec.cap.is_none() {
        let d = Backoff::default().jitter(jitter).max_attempts(n as u32 + 1);
        assert!(d.seed(spec.seed).eq(delays.iter().copied()), "the default");
    }

    // Jitter draws from the random state only: without it, the same settings give
    // the delays before jitter.
    let plain: Vec<Duration> = build().jitter(0.0).collect();
    assert_eq!(plain.len(), n);
    let secs = |d: Duration| d.as_secs_f64();
    for (k, &p) in plain.iter().enumerate() {
        assert!(p <= cap, "delay {k} above the cap");
        if k == 0 {
            assert_eq!(p, base.min(cap), "the first delay is the base, capped");
        } else {
            let prev = plain[k - 1];
            // Never shrinking (factor >= 1), up to the rounding of a delay through an
            // `f64`: beyond 2^53 s that rounding can shorten it by one part in 2^53.
            assert!(secs(p) >= secs(prev) * (1.0 - 1e-12), "delay {k} shrank");
            if prev.is_zero() {
                assert!(p.is_zero(), "zero stays zero");
            } else {
                // One step of the formula, up to the rounding to whole nanoseconds.
                let want = (secs(prev) * factor).min(secs(cap));
                let err = (secs(p) - want).abs();
                assert!(err <= 1e-9 + want * 1e-12, "delay {k}: {p:?}, want {want}s");
            }
        }
    }
    // A whole factor and a cap within 2^40 ns: the formula holds exactly.
    if let Some(Factor::Whole(f)) = spec.factor {
        if cap.as_nanos() <= 1 << 40 {
            let f = u128::from(f.max(1));
            let mut want = base.min(cap).as_nanos();
            for (k, &p) in plain.iter().enumerate() {
                assert_eq!(p.as_nanos(), want, "delay {k}");
                want = want.saturating_mul(f).min(cap.as_nanos());
            }
        }
    }
    for (k, (&d, &p)) in delays.iter().zip(&plain).enumerate() {
        assert!(d <= p, "delay {k}: jitter lengthened it");
        let floor = secs(p) * (1.0 - jitter);
        assert!(
            secs(d) >= floor - 1e-9 - floor * 1e-12,
            "delay {k}: {d:?} shortened past {jitter} of {p:?}"
        );
    }
}
