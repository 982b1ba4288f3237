//! loom models of `Signal`: every interleaving of small scenarios.
//!
//! Run: `RUSTFLAGS="--cfg atomkit_loom --cfg crossbeam_loom" cargo test --release -p atomkit-loom-tests --test loom_signal`
//! (or `cargo xtask loom`). `LOOM_MAX_PREEMPTIONS` overrides the bound set here.
#![cfg(atomkit_loom)]

use atomkit::signal::{Cause, Signal};
use loom::thread;
use std::time::Duration;

fn model(f: impl Fn() + Sync + Send + 'static) {
    atomkit_loom_tests::loom_model(3, f);
}

/// A waiter that sleeps is always woken by a racing close: no lost wake-up.
#[test]
fn close_racing_wait() {
    model(|| {
        let s = Signal::new();
        let w = {
            let s = s.clone();
            thread::spawn(move || {
                s.wait();
                assert!(s.is_closed());
            })
        };
        assert!(s.close());
        w.join().unwrap();
    });
}

/// A waiter on a child is woken by the parent's close.
#[test]
fn parent_close_wakes_child_waiter() {
    model(|| {
        let s = Signal::new();
        let c = s.child();
        let w = thread::spawn(move || c.wait());
        s.close();
        w.join().unwrap();
    });
}

/// Racing closes: exactly one reports `true`.
#[test]
fn close_racing_close() {
    model(|| {
        let s = Signal::new();
        let t = {
            let s = s.clone();
            thread::spawn(move || s.close())
        };
        let mine = s.close();
        let theirs = t.join().unwrap();
        assert!(mine ^ theirs, "exactly one close wins");
        assert_eq!(s.cause(), Some(Cause::Closed));
    });
}

/// `child()` racing the parent's `close()`: the child is never left open.
#[test]
fn close_racing_child() {
    model(|| {
        let s = Signal::new();
        let t = {
            let s = s.clone();
            thread::spawn(move || {
                let c = s.child();
                c.wait(); // must return: the parent closes
                assert_eq!(c.cause(), Some(Cause::Closed));
                c
            })
        };
        s.close();
        let c = t.join().unwrap();
        assert!(c.is_closed());
    });
}

/// A child dropped while its parent closes: no leak (loom checks the Arcs), no panic.
#[test]
fn child_drop_racing_close() {
    model(|| {
        let s = Signal::new();
        let c = s.child();
        let t = thread::spawn(move || drop(c));
        s.close();
        t.join().unwrap();
    });
}

/// A timed wait racing close: the waiter returns `true` if and only if it saw the close,
/// and a waiter that timed out leaves no registration behind.
#[test]
fn timed_wait_racing_close() {
    model(|| {
        let s = Signal::new();
        let w = {
            let s = s.clone();
            thread::spawn(move || {
                let closed = s.wait_timeout(Duration::from_secs(3600));
                assert_eq!(closed, s.is_closed() && closed);
                closed
            })
        };
        s.close();
        let _ = w.join().unwrap();
    });
}

/// The deadline and an explicit close race: the cause is whichever won, and the
/// one close that won reports `true`.
#[test]
fn deadline_racing_close() {
    model(|| {
        let s = Signal::with_timeout(Duration::from_secs(3600));
        let w = {
            let s = s.clone();
            // Waits until the modelled deadline passes or the close comes.
            thread::spawn(move || {
                s.wait();
                s.cause()
            })
        };
        let closed_by_us = s.close();
        let seen = w.join().unwrap();
        let cause = s.cause();
        assert_eq!(seen, cause);
        if closed_by_us {
            assert_eq!(cause, Some(Cause::Closed));
        } else {
            assert_eq!(cause, Some(Cause::DeadlineExceeded));
        }
    });
}

/// What the closer wrote before `close()` is visible to a thread that saw the signal
/// closed (the Release/Acquire pairing of the closing CAS with `is_closed`/`wait`).
#[test]
fn close_publishes_prior_writes() {
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::sync::Arc;
    model(|| {
        let s = Signal::new();
        let data = Arc::new(AtomicUsize::new(0));
        let t = {
            let (s, data) = (s.clone(), data.clone());
            thread::spawn(move || {
                if s.is_closed() {
                    // Ordering: Relaxed on purpose; only the signal may order it.
                    assert_eq!(data.load(Ordering::Relaxed), 1);
                }
                s.wait();
                assert_eq!(data.load(Ordering::Relaxed), 1);
            })
        };
        data.store(1, Ordering::Relaxed);
        s.close();
        t.join().unwrap();
    });
}

/// Two closes of one tree racing: `r.close()` from this thread, `c.close()` (c is
/// r's child) from another. Whichever gets to `c` first, when `r.close()` returns,
/// `c`'s child `g` is closed too, even if the other close has closed `c` and not yet
/// reached `g`.
#[test]
fn close_returns_with_every_descendant_closed() {
    model(|| {
        let r = Signal::new();
        let c = r.child();
        let g = c.child();
        let t = {
            let c = c.clone();
            thread::spawn(move || {
                c.close();
            })
        };
        r.close();
        assert!(
            g.is_closed(),
            "close() returned with a descendant still open"
        );
        t.join().unwrap();
        assert_eq!(g.cause(), Some(Cause::Closed));
    });
}

/// A child's last handle dropping while a sibling is created (it may take the freed
/// slot) and the parent closes: the new sibling is closed once the close and its
/// creation are both done, and every node is freed (loom reports a leaked `Arc`, so a
/// parent-child link left behind by the race would fail the model).
#[test]
fn slot_reuse_racing_close() {
    model(|| {
        let p = Signal::new();
        let a = p.child();
        let dropper = thread::spawn(move || drop(a));
        let maker = {
            let p = p.clone();
            thread::spawn(move || p.child())
        };
        p.close();
        dropper.join().unwrap();
        let b = maker.join().unwrap();
        assert!(b.is_closed());
    });
}

/// Children created and dropped on two threads while the parent stays open, then the
/// parent dropped: each child unlinks itself, so every node is freed (loom reports a
/// leaked `Arc`: a link that outlived its child would keep a parent-child cycle alive).
#[test]
fn children_dropped_on_an_open_parent_free_everything() {
    model(|| {
        let p = Signal::new();
        let a = p.child();
        let t = {
            let p = p.clone();
            thread::spawn(move || {
                let b = p.child();
                let g = b.child();
                drop(b);
                g
            })
        };
        drop(a);
        let g = t.join().unwrap();
        assert!(!g.is_closed());
        drop(p);
        drop(g);
    });
}
