//! loom models of `deque`: every interleaving (up to the preemption bound) of small
//! scenarios. Under loom a buffer starts with 2 slots and an injector block holds 2,
//! and every deque starts 8 indices below the `u32` wrap point, so these models also
//! cross growth, shrinking, blocks and index wrap-around.
//!
//! Run: `RUSTFLAGS="--cfg atomkit_loom --cfg crossbeam_loom" cargo nextest run --release -p atomkit-loom-tests --test loom_deque`
//! (or `cargo xtask loom`). `LOOM_MAX_PREEMPTIONS` overrides the bound set here.
#![cfg(atomkit_loom)]

use atomkit::deque::{Injector, Steal, Stealer, Worker};
use loom::sync::Arc;
use loom::thread;

fn model(bound: usize, f: impl Fn() + Sync + Send + 'static) {
    atomkit_loom_tests::loom_model(bound, f);
}

/// Steals until success or empty (a `Retry` means another party got in the way).
fn steal_one<T>(s: &Stealer<T>) -> Option<T> {
    loop {
        match s.steal() {
            Steal::Success(v) => return Some(v),
            Steal::Empty => return None,
            Steal::Retry => thread::yield_now(),
        }
    }
}

/// Checks that `got` holds each of `0..n` exactly once.
fn exactly_once(mut got: Vec<usize>, n: usize) {
    got.sort_unstable();
    assert_eq!(
        got,
        (0..n).collect::<Vec<_>>(),
        "every item taken exactly once"
    );
}

/// The owner pops and a thief steals the last item: exactly one of them gets it.
#[test]
fn pop_vs_steal_last_item() {
    model(3, || {
        let w = Worker::new_lifo();
        w.push(0usize);
        let s = w.stealer();
        let t = thread::spawn(move || steal_one(&s));
        let mine = w.pop();
        let theirs = t.join().unwrap();
        assert!(
            mine.is_some() ^ theirs.is_some(),
            "exactly one wins: {mine:?} {theirs:?}"
        );
        assert_eq!(mine.or(theirs), Some(0));
    });
}

/// Two items, owner pops twice while a thief steals: nothing lost or taken twice.
#[test]
fn pop_pop_vs_steal() {
    model(2, || {
        let w = Worker::new_lifo();
        w.push(0usize);
        w.push(1);
        let s = w.stealer();
        let t = thread::spawn(move || steal_one(&s).into_iter().collect::<Vec<_>>());
        let mut got: Vec<_> = std::iter::from_fn(|| w.pop()).collect();
        got.extend(t.join().unwrap());
        exactly_once(got, 2);
    });
}

/// A thief steals while the owner's push grows the buffer (2 -> 4 slots): the thief
/// must read the item from a buffer that holds it (the CVE-2021-32810 race: a steal
/// that read through a buffer loaded before its claim took a stale or freed slot).
#[test]
fn steal_during_growth() {
    model(2, || {
        let w = Worker::new_lifo();
        w.push(0usize);
        w.push(1);
        let s = w.stealer();
        let t = thread::spawn(move || {
            let mut got = Vec::new();
            got.extend(steal_one(&s));
            got.extend(steal_one(&s));
            got
        });
        w.push(2); // full: grows
        let mut got = t.join().unwrap();
        got.extend(std::iter::from_fn(|| w.pop()));
        exactly_once(got, 3);
    });
}

/// Exactly the race of CVE-2021-32810. A thief starts its steal while the buffer has
/// 2 slots holding items 0 and 1; the owner (FIFO) pushes 2 (the buffer grows), pops
/// 0 and 1, and the thief then wins index 2. Its slot in the old buffer still holds
/// the bits of item 0: a steal that read through the buffer it loaded before its
/// claim returns a second copy of item 0 (and item 2 is lost). Re-reading the buffer
/// after the claim returns item 2.
#[test]
fn steal_after_buffer_swap_cve_2021_32810() {
    model(2, || {
        let w = Worker::new_fifo();
        w.push(0usize);
        w.push(1);
        let s = w.stealer();
        // One attempt: a `Retry` leaves the item to the owner (a smaller model).
        let t = thread::spawn(move || s.steal().success().into_iter().collect::<Vec<_>>());
        w.push(2); // full: grows
        let mut got: Vec<_> = w.pop().into_iter().collect();
        got.extend(w.pop());
        got.extend(t.join().unwrap());
        got.extend(std::iter::from_fn(|| w.pop()));
        exactly_once(got, 3);
    });
}

/// A thief steals while the owner pops enough to shrink the buffer and then pushes
/// into the new one (the other direction of the buffer swap).
#[test]
fn steal_during_shrink() {
    model(2, || {
        let w = Worker::new_fifo();
        for i in 0..5usize {
            w.push(i); // grows to 8 slots
        }
        let s = w.stealer();
        let t = thread::spawn(move || steal_one(&s).into_iter().collect::<Vec<_>>());
        let mut got = Vec::new();
        for _ in 0..3 {
            got.extend(w.pop()); // 2 or 1 left of 8: shrinks to 4
        }
        w.push(5);
        got.extend(t.join().unwrap());
        got.extend(std::iter::from_fn(|| w.pop()));
        exactly_once(got, 6);
    });
}

/// A shrink copies the deque while stealers go on claiming in the old generation;
/// only the generation bump after the copy keeps a stealer that loaded the old
/// buffer (before the swap) from claiming an index pushed into the new one after
/// it. Here the thief may take item 0 during the copy, then load the old buffer,
/// and see `bottom` only after the owner's push of item 3: its claim of that index
/// must fail (else it reads the old slot, which holds item 1, popped already).
#[test]
fn steal_across_shrink_copy() {
    model(2, || {
        let w = Worker::new_lifo();
        for i in 0..3usize {
            w.push(i); // 4 slots under loom
        }
        let s = w.stealer();
        let t = thread::spawn(move || {
            let mut got = Vec::new();
            for _ in 0..2 {
                if let Steal::Success(v) = s.steal() {
                    got.push(v);
                }
            }
            got
        });
        let mut got: Vec<_> = w.pop().into_iter().collect();
        got.extend(w.pop()); // one item left of 4 slots: shrinks to 2
        w.push(3);
        got.extend(t.join().unwrap());
        got.extend(std::iter::from_fn(|| w.pop()));
        exactly_once(got, 4);
    });
}

/// A batch steal (one claim at a time from a LIFO owner) against the owner's pops.
/// Bound 3: the stealer's fence between its own claim CAS and its next load of
/// `bottom` matters only when the owner's pops slip in between two claims, which
/// needs the third preemption (without that fence this model fails at bound 3).
#[test]
fn steal_batch_vs_pop() {
    model(3, || {
        let w = Worker::new_lifo();
        for i in 0..3usize {
            w.push(i);
        }
        let s = w.stealer();
        let t = thread::spawn(move || {
            let mine = Worker::new_lifo();
            let mut got = Vec::new();
            if let Steal::Success(v) = s.steal_batch_and_pop(&mine) {
                got.push(v);
            }
            got.extend(std::iter::from_fn(|| mine.pop()));
            got
        });
        let mut got: Vec<_> = std::iter::from_fn(|| w.pop()).collect();
        got.extend(t.join().unwrap());
        exactly_once(got, 3);
    });
}

/// A range claim from a FIFO owner against the owner's CAS pops.
#[test]
fn steal_batch_vs_fifo_pop() {
    model(2, || {
        let w = Worker::new_fifo();
        for i in 0..4usize {
            w.push(i);
        }
        let s = w.stealer();
        let t = thread::spawn(move || {
            let mine = Worker::new_fifo();
            let _ = s.steal_batch(&mine);
            std::iter::from_fn(|| mine.pop()).collect::<Vec<_>>()
        });
        let mut got = Vec::new();
        got.extend(w.pop());
        got.extend(w.pop());
        got.extend(t.join().unwrap());
        got.extend(std::iter::from_fn(|| w.pop()));
        exactly_once(got, 4);
    });
}

/// Two thieves and the owner on one item each way: both thieves may have claims in
/// flight at once (neither waits for the other); nothing is taken twice.
#[test]
fn two_stealers_vs_pop() {
    model(2, || {
        let w = Worker::new_lifo();
        w.push(0usize);
        w.push(1);
        let ts: Vec<_> = (0..2)
            .map(|_| {
                let s = w.stealer();
                thread::spawn(move || steal_one(&s).into_iter().collect::<Vec<_>>())
            })
            .collect();
        let mut got: Vec<_> = w.pop().into_iter().collect();
        for t in ts {
            got.extend(t.join().unwrap());
        }
        got.extend(std::iter::from_fn(|| w.pop()));
        exactly_once(got, 2);
    });
}

/// A thief claims index 0 and reads its slot while the owner pushes item 2, whose
/// index maps to the same slot (2 slots under loom). The owner may write the slot
/// only after the thief's read: it sees the slot's stamp advanced (Acquire, paired
/// with the thief's Release store after its read), or it copies the deque into a
/// fresh buffer and writes there. Nobody waits for the thief.
#[test]
fn owner_reuses_slot_after_thief_read() {
    model(2, || {
        let w = Worker::new_lifo();
        w.push(0usize);
        w.push(1);
        let s = w.stealer();
        // One attempt: a `Retry` leaves the item to the owner (a smaller model).
        let t = thread::spawn(move || s.steal().success().into_iter().collect::<Vec<_>>());
        w.push(2); // slot of index 0: in place once the thief is done, else a new buffer
        let mut got: Vec<_> = std::iter::from_fn(|| w.pop()).collect();
        got.extend(t.join().unwrap());
        exactly_once(got, 3);
    });
}

/// The owner pushes *after* the thief starts (so nothing but `bottom` orders the
/// slot writes before the thief's read), then pops with two items, storing
/// `bottom - 1`. A thief whose Acquire load of `bottom` reads that store must
/// synchronize with the earlier slot writes: were the store Relaxed (as in Lê et
/// al., whose slots are atomics), the thief's read of slot 0 would race the owner's
/// write of it.
#[test]
fn steal_reads_bottom_stored_by_pop() {
    model(3, || {
        let w = Worker::new_lifo();
        let s = w.stealer();
        let t = thread::spawn(move || steal_one(&s).into_iter().collect::<Vec<_>>());
        w.push(0usize);
        w.push(1);
        let mut got: Vec<_> = w.pop().into_iter().collect();
        got.extend(t.join().unwrap());
        got.extend(std::iter::from_fn(|| w.pop()));
        exactly_once(got, 2);
    });
}

// The injector models make every stealer keep trying until it has taken what it
// waits for, rather than steal once: loom 0.7 keeps only the last load of each
// atomic for its partial-order reduction, so a steal whose only contact with a push
// is a load of `tail.index` that the pusher also loads before its claim CAS is never
// scheduled after that CAS (one execution). A stealer that must see the push's
// writes races the claim and the slot's state word instead, which loom does explore.

/// Steals from `q` until `want` items are taken (yielding on `Empty` and `Retry`, so
/// that the pushers it waits for can run).
fn steal_n(q: &Injector<usize>, want: usize) -> Vec<usize> {
    let mut got = Vec::new();
    while got.len() < want {
        match q.steal() {
            Steal::Success(v) => got.push(v),
            Steal::Retry | Steal::Empty => thread::yield_now(),
        }
    }
    got
}

/// A steal races the push it waits for, in every order of the push's claim, write
/// and `WRITE` bit against the steal's claim and skip: the item is taken exactly
/// once, and a skipped push pushes again.
#[test]
fn injector_steal_during_push() {
    model(3, || {
        let q = Arc::new(Injector::new());
        let p = {
            let q = q.clone();
            thread::spawn(move || q.push(0usize))
        };
        let got = steal_n(&q, 1);
        p.join().unwrap();
        assert!(q.is_empty());
        exactly_once(got, 1);
    });
}

/// A steal races a push that claims a block's last slot (so it links the successor
/// and moves `tail`), then the push of the successor's first slot: FIFO order, each
/// item once, and the first block retired while the stealer may be in it.
#[test]
fn injector_push_vs_steal() {
    model(2, || {
        let q = Arc::new(Injector::new());
        q.push(0usize);
        let p = {
            let q = q.clone();
            thread::spawn(move || {
                q.push(1); // the first block's last slot: links block 1
                q.push(2);
            })
        };
        let got = steal_n(&q, 3);
        p.join().unwrap();
        assert_eq!(got, [0, 1, 2], "one pusher's items come out in order");
    });
}

/// As above, with a batch steal (which claims several slots at once, skipping any
/// not yet written) racing two pushes.
#[test]
fn injector_steal_batch_during_push() {
    model(2, || {
        let q = Arc::new(Injector::new());
        let p = {
            let q = q.clone();
            thread::spawn(move || {
                q.push(0usize);
                q.push(1);
            })
        };
        let w = Worker::new_fifo();
        let mut got = Vec::new();
        while got.len() < 2 {
            match q.steal_batch_and_pop(&w) {
                Steal::Success(v) => got.push(v),
                Steal::Retry | Steal::Empty => thread::yield_now(),
            }
            got.extend(std::iter::from_fn(|| w.pop()));
        }
        p.join().unwrap();
        exactly_once(got, 2);
    });
}

/// Two stealers race for a block's last slot (the winner moves `head` and retires
/// the block with the other perhaps still reading it) while a pusher fills the next
/// block.
#[test]
fn injector_two_stealers_cross_block() {
    model(2, || {
        let q = Arc::new(Injector::new());
        q.push(0usize);
        q.push(1);
        let p = {
            let q = q.clone();
            thread::spawn(move || q.push(2))
        };
        let s = {
            let q = q.clone();
            thread::spawn(move || steal_n(&q, 1))
        };
        let mut got = steal_n(&q, 2);
        got.extend(s.join().unwrap());
        p.join().unwrap();
        exactly_once(got, 3);
    });
}

/// A pusher claims a block's last slot and moves `tail` on while another pusher
/// claims the next index: the second must land in the new block, never in the old
/// one (the pointer moves before the index, J3).
#[test]
fn injector_push_while_tail_moves() {
    model(2, || {
        let q = Arc::new(Injector::new());
        q.push(0usize);
        push_concurrently(&q, 1..3);
        let mut got = Vec::new();
        drain(&q, &mut got);
        exactly_once(got, 3);
    });
}

/// Two pushers race to link the successor of a full block.
#[test]
fn injector_two_pushers_link() {
    // One preemption is enough for the race: a pusher stopped between allocating the
    // successor and its CAS on `next`.
    model(1, || {
        let q = Arc::new(Injector::new());
        q.push(0usize);
        q.push(1); // block 0 full
        push_concurrently(&q, 2..4);
        let mut got = Vec::new();
        drain(&q, &mut got);
        exactly_once(got, 4);
    });
}

/// Pushes each of `items` from a thread of its own and waits for them all.
fn push_concurrently(q: &Arc<Injector<usize>>, items: std::ops::Range<usize>) {
    let ps: Vec<_> = items
        .map(|i| {
            let q = q.clone();
            thread::spawn(move || q.push(i))
        })
        .collect();
    for p in ps {
        p.join().unwrap();
    }
}

fn drain(q: &Injector<usize>, got: &mut Vec<usize>) {
    loop {
        match q.steal() {
            Steal::Success(v) => got.push(v),
            Steal::Retry => thread::yield_now(),
            Steal::Empty => break,
        }
    }
}

/// A thread that tries `tries` steals once each and returns what it took.
fn thief(s: Stealer<usize>, tries: usize) -> thread::JoinHandle<Vec<usize>> {
    thread::spawn(move || (0..tries).filter_map(|_| s.steal().success()).collect())
}

/// The renewal (a same-size copy that moves the buffer generation once `h` is
/// `RENEW_EVERY` past the last move; 2 under loom, so these scenarios renew several
/// times) racing a thief, FIFO owner: nothing lost or taken twice.
#[test]
fn renewal_racing_a_thief_fifo() {
    model(2, || {
        let w = Worker::new_fifo();
        w.push(0usize);
        w.push(1);
        let t = thief(w.stealer(), 2);
        let mut got: Vec<_> = w.pop().into_iter().collect();
        w.push(2);
        got.extend(w.pop());
        w.push(3);
        got.extend(t.join().unwrap());
        got.extend(std::iter::from_fn(|| w.pop()));
        exactly_once(got, 4);
    });
}

/// As [`renewal_racing_a_thief_fifo`], LIFO owner.
#[test]
fn renewal_racing_a_thief_lifo() {
    model(2, || {
        let w = Worker::new_lifo();
        w.push(0usize);
        w.push(1);
        let t = thief(w.stealer(), 2);
        w.push(2);
        let mut got: Vec<_> = w.pop().into_iter().collect();
        w.push(3);
        got.extend(w.pop());
        w.push(4);
        got.extend(t.join().unwrap());
        got.extend(std::iter::from_fn(|| w.pop()));
        exactly_once(got, 5);
    });
}
