//! Signal against its peers: the cost of asking "closed yet?" and the close-to-wake-up
//! latency of blocked waiters.

use crate::harness::{Contender, Scale, Scenario};
use atomkit::signal::Signal;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn poll_loop(n: u64, mut probe: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    let mut seen = 0u64;
    for _ in 0..n {
        seen += black_box(probe()) as u64;
    }
    black_box(seen);
    start.elapsed()
}

fn is_closed_scenario(scale: Scale, closed: bool) -> Scenario {
    let n = scale.n(20_000_000);
    let sig = Signal::new();
    let tok = CancellationToken::new();
    let flag = Arc::new(AtomicBool::new(false));
    if closed {
        sig.close();
        tok.cancel();
        flag.store(true, Ordering::Release);
    }
    let name = if closed {
        "is_closed, closed"
    } else {
        "is_closed, open"
    };
    Scenario::new(
        "signal",
        name,
        n,
        vec![
            Contender::new("atomkit", move || {
                poll_loop(n, || black_box(&sig).is_closed())
            }),
            Contender::new("tokio-util CancellationToken", move || {
                poll_loop(n, || black_box(&tok).is_cancelled())
            }),
            Contender::new("AtomicBool (Acquire load)", move || {
                poll_loop(n, || black_box(&flag).load(Ordering::Acquire))
            }),
        ],
    )
}

/// Spawns `waiters` threads that block through `block`, waits until all have announced
/// themselves and had time to fall asleep, then times `close` until the last one woke.
fn wake_latency<S: Send + Sync + 'static>(
    waiters: usize,
    make: impl Fn() -> S,
    block: fn(&S),
    close: fn(&S),
) -> Duration {
    let shared = Arc::new(make());
    let ready = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..waiters)
        .map(|_| {
            let s = shared.clone();
            let ready = ready.clone();
            thread::spawn(move || {
                ready.fetch_add(1, Ordering::AcqRel);
                block(&s);
                Instant::now()
            })
        })
        .collect();
    while ready.load(Ordering::Acquire) < waiters {
        thread::yield_now();
    }
    // Give every waiter time to get from "ready" into its sleep.
    thread::sleep(Duration::from_millis(5));
    let start = Instant::now();
    close(&shared);
    let last = handles
        .into_iter()
        .map(|h| h.join().unwrap())
        .max()
        .unwrap();
    last.saturating_duration_since(start)
}

struct CondvarFlag {
    closed: Mutex<bool>,
    cv: Condvar,
}

fn wake_scenario(waiters: usize) -> Scenario {
    Scenario::new(
        "signal",
        format!("close→last wake-up, {waiters} waiters"),
        1,
        vec![
            Contender::new("atomkit", move || {
                wake_latency(
                    waiters,
                    Signal::new,
                    |s| s.wait(),
                    |s| {
                        s.close();
                    },
                )
            }),
            Contender::new("Mutex+Condvar", move || {
                wake_latency(
                    waiters,
                    || CondvarFlag {
                        closed: Mutex::new(false),
                        cv: Condvar::new(),
                    },
                    |s| {
                        let mut g = s.closed.lock().unwrap();
                        while !*g {
                            g = s.cv.wait(g).unwrap();
                        }
                    },
                    |s| {
                        *s.closed.lock().unwrap() = true;
                        s.cv.notify_all();
                    },
                )
            }),
            Contender::new("crossbeam-channel disconnect", move || {
                wake_latency(
                    waiters,
                    || {
                        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
                        (Mutex::new(Some(tx)), rx)
                    },
                    |s| {
                        let _ = s.1.recv();
                    },
                    |s| {
                        s.0.lock().unwrap().take();
                    },
                )
            }),
        ],
    )
}

/// Go's `select { case v := <-ch: case <-ctx.Done(): }` on an empty channel: how
/// long from the cancel until the last blocked receive has returned.
fn cancel_scenario(waiters: usize) -> Scenario {
    type Cb = (
        crossbeam_channel::Sender<u64>,
        crossbeam_channel::Receiver<u64>,
        Mutex<Option<crossbeam_channel::Sender<()>>>,
        crossbeam_channel::Receiver<()>,
    );
    Scenario::new(
        "signal",
        format!("cancel→blocked receives return, {waiters} receivers"),
        1,
        vec![
            Contender::new("atomkit recv_until(&Signal)", move || {
                wake_latency(
                    waiters,
                    || (Signal::new(), atomkit::channel::bounded::<u64>(16)),
                    |s| {
                        assert!(s.1 .1.recv_until(&s.0).is_err());
                    },
                    |s| {
                        s.0.close();
                    },
                )
            }),
            Contender::new("crossbeam-channel select!", move || {
                wake_latency(
                    waiters,
                    || -> Cb {
                        let (tx, rx) = crossbeam_channel::bounded::<u64>(16);
                        let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
                        (tx, rx, Mutex::new(Some(done_tx)), done_rx)
                    },
                    |s| {
                        crossbeam_channel::select! {
                            recv(s.1) -> _ => panic!("nothing is sent"),
                            recv(s.3) -> _ => {}
                        }
                    },
                    |s| {
                        s.2.lock().unwrap().take();
                    },
                )
            }),
        ],
    )
}

pub fn scenarios(scale: Scale) -> Vec<Scenario> {
    vec![
        is_closed_scenario(scale, false),
        is_closed_scenario(scale, true),
        wake_scenario(1),
        wake_scenario(8),
        wake_scenario(64),
        cancel_scenario(1),
        cancel_scenario(8),
    ]
}
