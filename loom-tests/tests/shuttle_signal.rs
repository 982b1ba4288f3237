//! shuttle tests of `Signal`: bigger trees and more threads than loom can explore,
//! under random and PCT schedules. shuttle runs every atomic as SeqCst, so these find
//! lost wake-ups and logic races, not weak-memory bugs (the loom models do that).
//!
//! Run: `RUSTFLAGS="--cfg atomkit_shuttle" cargo test --release -p atomkit-loom-tests --test shuttle_signal`
//! (or `cargo xtask shuttle`).
#![cfg(atomkit_shuttle)]

use atomkit::signal::{Cause, Signal};
use atomkit_loom_tests::shuttle_iters;
use shuttle::thread;
use std::time::Duration;

fn both(iters: usize, f: impl Fn() + Send + Sync + 'static) {
    let f = std::sync::Arc::new(f);
    let g = f.clone();
    shuttle::check_random(move || g(), shuttle_iters(iters));
    shuttle::check_pct(move || f(), shuttle_iters(iters), 3);
}

/// A root with a few dozen children and grandchildren; threads wait on leaves, create
/// and drop children, and close inner nodes while the root closes. Afterwards every
/// node still held is closed, every waiter returned, and exactly one root close won.
#[test]
fn tree_with_dozens_of_children() {
    both(2_000, || {
        let root = Signal::new();
        let mids: Vec<Signal> = (0..4).map(|_| root.child()).collect();
        let leaves: Vec<Signal> = mids
            .iter()
            .flat_map(|m| (0..8).map(move |_| m.child()))
            .collect();
        let waiters: Vec<_> = leaves
            .iter()
            .step_by(8)
            .map(|leaf| {
                let leaf = leaf.clone();
                thread::spawn(move || {
                    leaf.wait();
                    leaf.cause()
                })
            })
            .collect();
        let churn = {
            let m = mids[1].clone();
            thread::spawn(move || {
                let mut kept = Vec::new();
                for i in 0..6 {
                    let c = m.child();
                    if i % 2 == 0 {
                        kept.push(c.child());
                    }
                }
                kept
            })
        };
        let inner_closer = {
            let m = mids[2].clone();
            thread::spawn(move || m.close())
        };
        let r2 = root.clone();
        let racer = thread::spawn(move || r2.close());
        let mine = root.close();
        let theirs = racer.join().unwrap();
        assert!(mine ^ theirs, "exactly one root close wins");
        let _ = inner_closer.join().unwrap();
        let kept = churn.join().unwrap();
        for w in waiters {
            assert_eq!(w.join().unwrap(), Some(Cause::Closed));
        }
        assert!(kept.iter().all(Signal::is_closed));
        assert!(leaves.iter().all(Signal::is_closed));
        assert!(mids.iter().all(Signal::is_closed));
    });
}

/// Dropping intermediate handles while the root closes never disconnects a
/// descendant that is still held.
#[test]
fn drops_racing_close() {
    both(2_000, || {
        let root = Signal::new();
        let mid = root.child();
        let leaf = mid.child();
        let t1 = thread::spawn(move || drop(mid));
        let l2 = leaf.clone();
        let t2 = thread::spawn(move || {
            l2.wait();
        });
        root.close();
        t1.join().unwrap();
        t2.join().unwrap();
        assert!(leaf.is_closed());
    });
}

/// Timed waits racing a close: a waiter that returns `true` saw the close, one that
/// returns `false` timed out while the signal was still open at some point.
#[test]
fn timed_waits_racing_close() {
    both(2_000, || {
        let s = Signal::new();
        let ws: Vec<_> = (0..3)
            .map(|_| {
                let s = s.clone();
                thread::spawn(move || s.wait_timeout(Duration::from_secs(60)))
            })
            .collect();
        s.close();
        for w in ws {
            let _ = w.join().unwrap();
        }
        assert!(s.is_closed());
    });
}

/// Deadline signals: waiters on a child of a deadline parent always return, with the
/// cause of whichever came first.
#[test]
fn deadline_tree() {
    both(2_000, || {
        let root = Signal::with_timeout(Duration::from_secs(60));
        let kids: Vec<_> = (0..3).map(|_| root.child()).collect();
        let ws: Vec<_> = kids
            .into_iter()
            .map(|k| {
                thread::spawn(move || {
                    k.wait();
                    k.cause()
                })
            })
            .collect();
        let closed_by_us = root.close();
        for w in ws {
            let c = w.join().unwrap();
            assert!(c.is_some());
        }
        let expect = if closed_by_us {
            Cause::Closed
        } else {
            Cause::DeadlineExceeded
        };
        assert_eq!(root.cause(), Some(expect));
    });
}

/// Children created under a node whose last handle is being dropped, and children
/// created while an earlier sibling unlinks itself (its freed slot is reused), all
/// racing the root's close: every child still held afterwards is closed and its waiter
/// returned, whichever of "created closed" and "linked, then closed by the walk" it was.
#[test]
fn children_made_around_drops_while_the_root_closes() {
    both(2_000, || {
        let root = Signal::new();
        let mid = root.child();
        let leaf = mid.child();
        let maker = {
            let leaf = leaf.clone();
            thread::spawn(move || {
                let a = leaf.child();
                let b = leaf.child_with_timeout(Duration::from_secs(60));
                let w = thread::spawn(move || {
                    a.wait();
                    a
                });
                (w.join().unwrap(), b)
            })
        };
        let reuser = {
            let mid = mid.clone();
            thread::spawn(move || {
                let first = mid.child();
                drop(first); // frees a slot of `mid`...
                mid.child() // ...which this one may take
            })
        };
        drop(mid);
        root.close();
        let (a, b) = maker.join().unwrap();
        let c = reuser.join().unwrap();
        for s in [&leaf, &a, &b, &c] {
            assert!(s.is_closed());
        }
        assert_eq!(leaf.cause(), Some(Cause::Closed));
        assert_eq!(a.cause(), Some(Cause::Closed));
    });
}

/// A deadline (the model moves the clock when a timed wait gives up) racing an
/// explicit close of the root: every node ends with one cause that never changes
/// once seen, the waiter's view agrees with it, and a root closed by its deadline
/// has only deadline-closed descendants (theirs is never later, invariant 3).
#[test]
fn causes_agree_when_a_deadline_races_a_close() {
    both(2_000, || {
        let root = Signal::with_timeout(Duration::from_secs(60));
        let kid = root.child();
        let grandkid = kid.child();
        let timer = {
            // Its timed wait giving up moves the clock past every deadline here.
            let g = grandkid.clone();
            thread::spawn(move || {
                g.wait_timeout(Duration::from_secs(120));
                g.cause()
            })
        };
        let observer = {
            let k = kid.clone();
            thread::spawn(move || {
                let first = k.cause();
                k.wait();
                let later = k.cause();
                if first.is_some() {
                    assert_eq!(first, later, "a cause once seen never changes");
                }
                later
            })
        };
        let won = root.close();
        let seen_by_timer = timer.join().unwrap();
        let seen_by_observer = observer.join().unwrap();
        let (r, k, g) = (root.cause(), kid.cause(), grandkid.cause());
        assert_eq!(
            r,
            Some(if won {
                Cause::Closed
            } else {
                Cause::DeadlineExceeded
            })
        );
        assert_eq!(seen_by_observer, k);
        assert!(seen_by_timer.is_none() || seen_by_timer == g);
        assert!(k.is_some() && g.is_some());
        if r == Some(Cause::DeadlineExceeded) {
            assert_eq!(k, r);
            assert_eq!(g, r);
        }
    });
}
