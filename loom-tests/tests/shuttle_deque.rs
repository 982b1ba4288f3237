//! shuttle models of `deque`: randomized and PCT schedules of an owner, several
//! stealers and an injector, bigger than loom can enumerate. shuttle treats every
//! atomic as SeqCst, so these find logic races (lost or doubled items, a steal stuck
//! in flight), not weak-memory bugs; those are loom's job.
//!
//! Run: `RUSTFLAGS="--cfg atomkit_shuttle" SHUTTLE_SILENCE_WARNINGS=1 cargo test --release -p atomkit-loom-tests --test shuttle_deque`
#![cfg(atomkit_shuttle)]

use atomkit::deque::{Injector, Steal, Worker};
use atomkit_loom_tests::shuttle_iters;
use shuttle::sync::atomic::{AtomicBool, Ordering};
use shuttle::sync::Arc;
use shuttle::thread;

const ITEMS: usize = 12;

/// The owner pushes `ITEMS` (growing the 2-slot buffer several times) and pops some
/// in LIFO or FIFO order; two stealers steal singly and in batches; a pusher feeds
/// the injector, which the stealers and the owner drain too. Every item is taken
/// exactly once.
fn scenario(fifo: bool) {
    let w = if fifo {
        Worker::new_fifo()
    } else {
        Worker::new_lifo()
    };
    let inj = Arc::new(Injector::new());
    let done = Arc::new(AtomicBool::new(false));
    let pusher = {
        let inj = inj.clone();
        thread::spawn(move || {
            for i in 0..ITEMS / 2 {
                inj.push(1000 + i);
            }
        })
    };
    let thieves: Vec<_> = (0..2)
        .map(|k| {
            let s = w.stealer();
            let inj = inj.clone();
            let done = done.clone();
            thread::spawn(move || {
                let mine = Worker::new_lifo();
                let mut got = Vec::new();
                loop {
                    let r = if k == 0 {
                        s.steal().or_else(|| inj.steal())
                    } else {
                        s.steal_batch_and_pop(&mine)
                            .or_else(|| inj.steal_batch_and_pop(&mine))
                    };
                    match r {
                        Steal::Success(v) => got.push(v),
                        Steal::Retry => thread::yield_now(),
                        Steal::Empty => {
                            if done.load(Ordering::SeqCst) {
                                break;
                            }
                            thread::yield_now();
                        }
                    }
                    got.extend(std::iter::from_fn(|| mine.pop()));
                }
                got
            })
        })
        .collect();
    let mut got = Vec::new();
    for i in 0..ITEMS {
        w.push(i);
        if i % 3 == 2 {
            got.extend(w.pop());
        }
    }
    got.extend(std::iter::from_fn(|| w.pop()));
    pusher.join().unwrap();
    loop {
        match inj.steal() {
            Steal::Success(v) => got.push(v),
            Steal::Retry => thread::yield_now(),
            Steal::Empty => break,
        }
    }
    // Both sources are empty for good now (the owner and the pusher are done).
    done.store(true, Ordering::SeqCst);
    for t in thieves {
        got.extend(t.join().unwrap());
    }
    got.extend(std::iter::from_fn(|| w.pop()));
    got.sort_unstable();
    let want: Vec<_> = (0..ITEMS).chain(1000..1000 + ITEMS / 2).collect();
    assert_eq!(got, want, "every item taken exactly once");
}

#[test]
fn lifo_owner_stealers_injector_random() {
    shuttle::check_random(|| scenario(false), shuttle_iters(3000));
}

#[test]
fn lifo_owner_stealers_injector_pct() {
    shuttle::check_pct(|| scenario(false), shuttle_iters(3000), 3);
}

#[test]
fn fifo_owner_stealers_injector_random() {
    shuttle::check_random(|| scenario(true), shuttle_iters(3000));
}

#[test]
fn fifo_owner_stealers_injector_pct() {
    shuttle::check_pct(|| scenario(true), shuttle_iters(3000), 3);
}
